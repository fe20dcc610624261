/* Export of a checkpoint's logical weights in PyTorch layout (the file format rpusim import
 * reads), exactly or by realistic read-out. */
#define _POSIX_C_SOURCE 200809L
#include "agree_impl.h"
#include "error_impl.h"
#include "net_io_impl.h"

#include "rpusim/layer.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes one float32 dataset /name of the given shape (rank 0 only). */
static rpu_status write_dataset(hid_t f, const char *path, const char *name, int rank,
                                const hsize_t *dims, const float *v) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = sp < 0
                   ? -1
                   : H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t w = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (ds >= 0) H5Dclose(ds);
    if (sp >= 0) H5Sclose(sp);
    if (w < 0) return RPU_FAIL(RPU_ERR_IO, "export: writing dataset /%s of %s failed", name, path);
    return RPU_OK;
}

/* Shape of layer l's weight in PyTorch layout: [out, in/groups, k...] or [out, in]. */
static int weight_shape(const rpu_conv *l, hsize_t *dims) {
    const rpu_conv_params *p = rpu_conv_get_params(l);
    dims[0] = (hsize_t)p->out_channels;
    dims[1] = (hsize_t)(p->in_channels / p->groups);
    if (rpu_conv_is_linear(l)) return 2;
    for (int d = 0; d < p->ndim; ++d)
        dims[2 + d] = (hsize_t)p->kernel[d];
    return 2 + p->ndim;
}

rpu_status rpu_net_export(MPI_Comm comm, const rpu_experiment *e, const char *checkpoint,
                          const char *out, bool realistic, int over_sampling, bool overwrite) {
    if (!e || !checkpoint || !out) return RPU_FAIL(RPU_ERR_ARG, "rpu_net_export: NULL argument");
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    rpu_net *net = NULL;
    rpu_status s = net_for_output(comm, e, out, overwrite, checkpoint, &net);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    hid_t f = -1;
    if (s == RPU_OK && rank == 0) {
        f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        if (f < 0) s = RPU_FAIL(RPU_ERR_IO, "export: cannot create %s", tmp);
    }
    s = rpu_agree(comm, s);
    const int L = s == RPU_OK ? rpu_net_analog_count(net) : 0;
    for (int k = 0; k < L && s == RPU_OK; ++k) {
        rpu_conv *l = rpu_net_analog_layer(net, k);
        const int nw = rpu_conv_weight_count(l), O = rpu_conv_get_params(l)->out_channels;
        const bool has_bias = rpu_conv_get_params(l)->bias != RPU_BIAS_NONE;
        float *w = (float *)malloc(sizeof(float) * ((size_t)nw + (size_t)O));
        if (!w) s = RPU_FAIL(RPU_ERR_NOMEM, "export: out of memory");
        s = rpu_agree(comm, s);
        if (s == RPU_OK && realistic) s = rpu_conv_set_readout_oversampling(l, over_sampling);
        if (s == RPU_OK)
            s = rpu_conv_get_weights(l, w, has_bias ? w + nw : NULL,
                                     realistic ? RPU_READ_REALISTIC : RPU_READ_EXACT);
        if (s == RPU_OK && rank == 0) {
            const char *name = rpu_net_analog_name(net, k);
            char dname[160];
            hsize_t dims[5];
            const int nd = weight_shape(l, dims);
            snprintf(dname, sizeof dname, "%s.weight", name);
            s = write_dataset(f, out, dname, nd, dims, w);
            if (s == RPU_OK && has_bias) {
                snprintf(dname, sizeof dname, "%s.bias", name);
                hsize_t bd[1] = {(hsize_t)O};
                s = write_dataset(f, out, dname, 1, bd, w + nw);
            }
        }
        s = rpu_agree(comm, s);
        free(w);
    }
    if (f >= 0 && H5Fclose(f) < 0 && s == RPU_OK)
        s = RPU_FAIL(RPU_ERR_IO, "export: closing %s failed", tmp);
    if (rank == 0 && s == RPU_OK && rename(tmp, out) != 0)
        s = RPU_FAIL(RPU_ERR_IO, "export: renaming %s to %s: %s", tmp, out, strerror(errno));
    if (rank == 0 && s != RPU_OK) remove(tmp);
    s = rpu_agree(comm, s);
    rpu_net_destroy(&net);
    return s;
}
