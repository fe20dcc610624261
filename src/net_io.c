/* Network I/O, the layer below the commands (train.c, infer.c, net_export.c): opening an
 * experiment (its data sets, its network, a checkpoint loaded into it), the layout of a
 * network checkpoint (analog layers, metadata, /train arrays) that rpu_train writes, and a
 * reader for HDF5 files of PyTorch-layout weights (one dataset per layer weight and bias)
 * that turns them into an analog network and its checkpoint. */
#define _POSIX_C_SOURCE 200809L
#include "net_io_impl.h"

#include "agree_impl.h"
#include "error_impl.h"
#include "rpusim/layer.h"

#include <errno.h>
#include <float.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ checkpoint layout */

int net_ckpt_layers(rpu_net *net, rpu_ckpt_layer *out, int max) {
    int n = rpu_net_analog_count(net);
    for (int k = 0; k < n && k < max; ++k) {
        out[k].name = rpu_net_analog_name(net, k);
        out[k].layer = rpu_net_analog_layer(net, k);
    }
    return n < max ? n : max;
}

int net_train_arrays(rpu_net *net, double *hist, int64_t epochs, double *partial,
                     rpu_ckpt_array *arr, char names[][96], int max) {
    int n = 0;
    arr[n] = (rpu_ckpt_array){.path = "train/history",
                              .dtype = RPU_CKPT_F64,
                              .ndim = 2,
                              .dims = {epochs, HIST_COLS},
                              .data = hist};
    ++n;
    for (int k = 0; k < rpu_net_analog_count(net) && n < max; ++k) {
        int len = 0;
        float *m = rpu_net_momentum(net, k, &len);
        if (!m) continue;
        snprintf(names[n], 96, "train/momentum/%s", rpu_net_analog_name(net, k));
        arr[n] = (rpu_ckpt_array){
            .path = names[n], .dtype = RPU_CKPT_F32, .ndim = 1, .dims = {len, 0}, .data = m};
        ++n;
    }
    if (partial && n < max) {
        arr[n] = (rpu_ckpt_array){.path = PARTIAL_PATH,
                                  .dtype = RPU_CKPT_F64,
                                  .ndim = 1,
                                  .dims = {PARTIAL_COLS, 0},
                                  .data = partial};
        ++n;
    }
    return n;
}

rpu_status rpu_net_save_checkpoint(MPI_Comm comm, rpu_net *net, const rpu_experiment *e,
                                   const char *path, int64_t step, int64_t epoch,
                                   const double *history, int64_t history_rows, int keep_last) {
    return net_save_state(comm, net, e, path, step, epoch, history, history_rows, keep_last, NULL);
}

rpu_status net_save_state(MPI_Comm comm, rpu_net *net, const rpu_experiment *e, const char *path,
                          int64_t step, int64_t epoch, const double *history, int64_t history_rows,
                          int keep_last, const double *partial) {
    if (!net || !e || !path || (history_rows > 0 && !history) || history_rows < 0)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_net_save_checkpoint: NULL or negative argument");
    rpu_ckpt_layer cl[EXP_MAX_LAYERS];
    const int ncl = net_ckpt_layers(net, cl, EXP_MAX_LAYERS);
    rpu_ckpt_array arr[EXP_MAX_LAYERS + 2];
    char names[EXP_MAX_LAYERS + 2][96];
    /* the arrays are only read by save */
    const int na = net_train_arrays(net, (double *)(uintptr_t)history, history_rows,
                                    (double *)(uintptr_t)partial, arr, names, EXP_MAX_LAYERS + 2);
    rpu_ckpt_meta meta = {.seed = e->run.seed, .step = step, .epoch = epoch, .config = e->text};
    rpu_ckpt_save_opts o;
    rpu_ckpt_save_opts_default(&o);
    o.keep_last = keep_last;
    return rpu_ckpt_save(comm, path, &meta, cl, ncl, arr, na, &o);
}

/* ------------------------------------------------------------------ weights file */

/* What one analog layer expects from the file, and the values read for it. */
typedef struct {
    const char *name;
    rpu_conv *l;
    int rank;        /* of the weight dataset */
    hsize_t dims[5]; /* [out, in/groups, k...] or [out, in] */
    size_t nw;       /* weights */
    int out;         /* bias length */
    bool bias;
    float *w, *b;
} wl_layer;

static void shape_text(int rank, const hsize_t *dims, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int a = 0; a < rank && k < n; ++a)
        k += (size_t)snprintf(buf + k, n - k, "%s%llu", a ? ", " : "", (unsigned long long)dims[a]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static void type_text(hid_t t, char *buf, size_t n) {
    const size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        snprintf(buf, n, "%s%zu (integer)", H5Tget_sign(t) == H5T_SGN_NONE ? "uint" : "int", bits);
        break;
    case H5T_FLOAT:
        snprintf(buf, n, "float%zu", bits);
        break;
    case H5T_STRING:
        snprintf(buf, n, "string");
        break;
    case H5T_COMPOUND:
        snprintf(buf, n, "compound");
        break;
    case H5T_ENUM:
        snprintf(buf, n, "enum (e.g. bool)");
        break;
    default:
        snprintf(buf, n, "HDF5 type class %d", (int)H5Tget_class(t));
        break;
    }
}

/* "[i, j, ...]" of flat index idx in an array of shape dims. */
static void index_text(size_t idx, int rank, const hsize_t *dims, char *buf, size_t n) {
    size_t sub[5] = {0};
    for (int a = rank - 1; a >= 0; --a) {
        sub[a] = (size_t)(idx % dims[a]);
        idx /= dims[a];
    }
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int a = 0; a < rank && k < n; ++a)
        k += (size_t)snprintf(buf + k, n - k, "%s%zu", a ? ", " : "", sub[a]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Reads dataset /dname (expected rank and dims, what = "weights of layer conv1") into
 * out (float32), converting from float32/float64 and checking every value. */
static rpu_status read_dataset(hid_t f, const char *file, const char *dname, const char *what,
                               int rank, const hsize_t *dims, float *out) {
    char want[96], got[96];
    shape_text(rank, dims, want, sizeof want);
    htri_t ex = H5Lexists(f, dname, H5P_DEFAULT);
    if (ex <= 0)
        return RPU_FAIL(RPU_ERR_FORMAT, "weights %s: missing dataset /%s (%s, shape %s)", file,
                        dname, what, want);
    hid_t d = H5Dopen2(f, dname, H5P_DEFAULT);
    if (d < 0)
        return RPU_FAIL(RPU_ERR_FORMAT, "weights %s: /%s is not a dataset (%s, shape %s)", file,
                        dname, what, want);
    rpu_status s = RPU_OK;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    double *buf = NULL;
    if (t < 0 || sp < 0) {
        s = RPU_FAIL(RPU_ERR_FORMAT, "weights %s: /%s: cannot read its type or shape", file, dname);
        goto out;
    }
    if (H5Tget_class(t) != H5T_FLOAT || (H5Tget_size(t) != 4 && H5Tget_size(t) != 8)) {
        char tt[64];
        type_text(t, tt, sizeof tt);
        s = RPU_FAIL(RPU_ERR_FORMAT, "weights %s: /%s: type %s; expected float32 or float64", file,
                     dname, tt);
        goto out;
    }
    const H5S_class_t cls = H5Sget_simple_extent_type(sp);
    int frank = cls == H5S_SIMPLE ? H5Sget_simple_extent_ndims(sp) : 0;
    hsize_t fdims[H5S_MAX_RANK] = {0};
    if (cls == H5S_SIMPLE && (frank < 0 || H5Sget_simple_extent_dims(sp, fdims, NULL) < 0)) {
        s = RPU_FAIL(RPU_ERR_FORMAT, "weights %s: /%s: cannot read its shape", file, dname);
        goto out;
    }
    bool same = cls == H5S_SIMPLE && frank == rank;
    for (int a = 0; same && a < rank; ++a)
        same = fdims[a] == dims[a];
    if (!same) {
        if (cls == H5S_SIMPLE)
            shape_text(frank, fdims, got, sizeof got);
        else
            snprintf(got, sizeof got, "%s",
                     cls == H5S_SCALAR ? "a scalar" : "no data (null dataspace)");
        s = RPU_FAIL(RPU_ERR_FORMAT, "weights %s: /%s: expected shape %s (%s), found %s", file,
                     dname, want, what, got);
        goto out;
    }
    size_t n = 1;
    for (int a = 0; a < rank; ++a)
        n *= (size_t)dims[a];
    buf = (double *)malloc(sizeof(double) * (n ? n : 1));
    if (!buf) {
        s = RPU_FAIL(RPU_ERR_NOMEM, "weights %s: /%s: out of memory", file, dname);
        goto out;
    }
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        s = RPU_FAIL(RPU_ERR_IO, "weights %s: /%s: read failed (damaged file?)", file, dname);
        goto out;
    }
    for (size_t i = 0; i < n; ++i) {
        if (isfinite(buf[i]) && fabs(buf[i]) <= FLT_MAX) {
            out[i] = (float)buf[i];
            continue;
        }
        char at[96];
        index_text(i, rank, dims, at, sizeof at);
        s = RPU_FAIL(RPU_ERR_FORMAT, "weights %s: /%s: %s value %g at index %s (flat %zu)", file,
                     dname, isfinite(buf[i]) ? "out-of-float32-range" : "non-finite", buf[i], at,
                     i);
        break;
    }
out:
    free(buf);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Dclose(d);
    return s;
}

/* Every root link must be a layer's weight, or the bias of a layer that has one. */
static rpu_status check_names(hid_t f, const char *file, const wl_layer *L, int nl) {
    H5G_info_t gi;
    if (H5Gget_info(f, &gi) < 0)
        return RPU_FAIL(RPU_ERR_FORMAT, "weights %s: cannot list the root group", file);
    char list[512] = "";
    for (int k = 0; k < nl; ++k) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", L[k].name);
    }
    for (hsize_t i = 0; i < gi.nlinks; ++i) {
        char name[256];
        ssize_t len = H5Lget_name_by_idx(f, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                                         H5P_DEFAULT);
        if (len < 0)
            return RPU_FAIL(RPU_ERR_FORMAT, "weights %s: cannot read the name of root link %llu",
                            file, (unsigned long long)i);
        bool known = false;
        for (int k = 0; k < nl && !known; ++k) {
            const size_t ln = strlen(L[k].name);
            if (strncmp(name, L[k].name, ln) != 0) continue;
            if (!strcmp(name + ln, ".weight"))
                known = true;
            else if (!strcmp(name + ln, ".bias")) {
                if (!L[k].bias)
                    return RPU_FAIL(RPU_ERR_FORMAT,
                                    "weights %s: /%s: layer %s has no bias (bias = false), but "
                                    "the file has one",
                                    file, name, L[k].name);
                known = true;
            }
        }
        if (!known)
            return RPU_FAIL(RPU_ERR_FORMAT,
                            "weights %s: unknown dataset /%s%s: not the weight or bias of an "
                            "analog layer (analog layers: %s; expected /<layer>.weight and "
                            "/<layer>.bias)",
                            file, name, (size_t)len >= sizeof name ? "..." : "", list);
    }
    return RPU_OK;
}

/* Rank 0: open the file, check the names, read every layer. */
static rpu_status read_file(const char *path, wl_layer *L, int nl) {
    struct stat st;
    if (stat(path, &st) != 0)
        return RPU_FAIL(RPU_ERR_IO, "weights %s: cannot open: %s", path, strerror(errno));
    H5E_auto2_t efunc;
    void *edata;
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    rpu_status s = RPU_OK;
    hid_t f = -1;
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        s = RPU_FAIL(is == 0 ? RPU_ERR_FORMAT : RPU_ERR_IO, "weights %s: %s", path,
                     is == 0 ? "not an HDF5 file" : "cannot open");
        goto out;
    }
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        s = RPU_FAIL(RPU_ERR_IO, "weights %s: cannot open (HDF5 error)", path);
        goto out;
    }
    s = check_names(f, path, L, nl);
    for (int k = 0; k < nl && s == RPU_OK; ++k) {
        char dname[96], what[128];
        snprintf(dname, sizeof dname, "%s.weight", L[k].name);
        snprintf(what, sizeof what, "weights of analog layer %s", L[k].name);
        s = read_dataset(f, path, dname, what, L[k].rank, L[k].dims, L[k].w);
        if (s != RPU_OK || !L[k].bias) continue;
        const hsize_t bd[1] = {(hsize_t)L[k].out};
        snprintf(dname, sizeof dname, "%s.bias", L[k].name);
        snprintf(what, sizeof what, "bias of analog layer %s", L[k].name);
        s = read_dataset(f, path, dname, what, 1, bd, L[k].b);
    }
out:
    if (f >= 0) H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    return s;
}

/* Reads the layer's weights back (collective) and records how far they are from the file's. */
static rpu_status read_back(const wl_layer *w, rpu_import_layer *r) {
    float *w2 = (float *)malloc(sizeof(float) * w->nw),
          *b2 = (float *)malloc(sizeof(float) * (size_t)w->out);
    rpu_status s = w2 && b2 ? RPU_OK : RPU_FAIL(RPU_ERR_NOMEM, "import: out of memory");
    /* every rank takes part in the collective read-back, even after a local failure */
    rpu_status g = rpu_conv_get_weights(w->l, w2 ? w2 : w->w, w->bias ? (b2 ? b2 : w->b) : NULL,
                                        RPU_READ_EXACT);
    if (s == RPU_OK) s = g;
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", w->name);
    r->values = (int64_t)w->nw + (w->bias ? w->out : 0);
    for (size_t i = 0; s == RPU_OK && w2 && i < w->nw; ++i) {
        r->max_abs = fmax(r->max_abs, fabs((double)w->w[i]));
        r->max_change = fmax(r->max_change, fabs((double)w2[i] - (double)w->w[i]));
    }
    for (int i = 0; s == RPU_OK && b2 && w->bias && i < w->out; ++i) {
        r->max_abs = fmax(r->max_abs, fabs((double)w->b[i]));
        r->max_change = fmax(r->max_change, fabs((double)b2[i] - (double)w->b[i]));
    }
    free(w2);
    free(b2);
    return s;
}

rpu_status rpu_net_load_weights(MPI_Comm comm, rpu_net *net, const char *path,
                                const rpu_program_params *program, rpu_import_layer *report) {
    if (!net || !path) return RPU_FAIL(RPU_ERR_ARG, "rpu_net_load_weights: NULL argument");
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    const int nl = rpu_net_analog_count(net);
    wl_layer *L = (wl_layer *)calloc((size_t)(nl > 0 ? nl : 1), sizeof *L);
    rpu_status s = L ? RPU_OK : RPU_FAIL(RPU_ERR_NOMEM, "import: out of memory");
    for (int k = 0; L && k < nl && s == RPU_OK; ++k) {
        wl_layer *w = &L[k];
        w->name = rpu_net_analog_name(net, k);
        w->l = rpu_net_analog_layer(net, k);
        const rpu_conv_params *p = rpu_conv_get_params(w->l);
        w->out = p->out_channels;
        w->bias = p->bias;
        w->dims[0] = (hsize_t)p->out_channels;
        w->dims[1] = (hsize_t)(p->in_channels / p->groups);
        w->rank = 2;
        if (!rpu_conv_is_linear(w->l))
            for (int a = 0; a < p->ndim; ++a)
                w->dims[w->rank++] = (hsize_t)p->kernel[a];
        w->nw = (size_t)rpu_conv_weight_count(w->l);
        w->w = (float *)malloc(sizeof(float) * w->nw);
        w->b = (float *)malloc(sizeof(float) * (size_t)w->out);
        if (!w->w || !w->b) s = RPU_FAIL(RPU_ERR_NOMEM, "import: out of memory");
    }
    if (s == RPU_OK && L && rank == 0) s = read_file(path, L, nl);
    s = rpu_agree(comm, s);
    for (int k = 0; L && k < nl && s == RPU_OK; ++k) {
        if (MPI_Bcast(L[k].w, (int)L[k].nw, MPI_FLOAT, 0, comm) != MPI_SUCCESS ||
            (L[k].bias && MPI_Bcast(L[k].b, L[k].out, MPI_FLOAT, 0, comm) != MPI_SUCCESS))
            s = RPU_FAIL(RPU_ERR_MPI, "weights %s: MPI_Bcast failed", path);
    }
    for (int k = 0; L && k < nl && s == RPU_OK; ++k) {
        s = program ? rpu_conv_program_weights(L[k].l, L[k].w, L[k].bias ? L[k].b : NULL, program,
                                               NULL, NULL)
                    : rpu_conv_set_weights(L[k].l, L[k].w, L[k].bias ? L[k].b : NULL);
        if (s != RPU_OK) {
            char inner[768];
            snprintf(inner, sizeof inner, "%s", rpu_error_message());
            s = RPU_FAIL(s, "weights %s: layer %s: %s", path, L[k].name, inner);
        }
    }
    s = rpu_agree(comm, s);
    if (s == RPU_OK && L && report) {
        for (int k = 0; k < nl; ++k) { /* every rank calls every collective read-back */
            rpu_status r = read_back(&L[k], &report[k]);
            if (s == RPU_OK) s = r;
        }
        s = rpu_agree(comm, s);
    }
    for (int k = 0; L && k < nl; ++k)
        free(L[k].w), free(L[k].b);
    free(L);
    return s;
}

/* ------------------------------------------------------------------ opening an experiment */

rpu_status net_load_data(const rpu_experiment *e, rpu_dataset *train, rpu_dataset *test) {
    const rpu_run_params *r = &e->run;
    rpu_status s;
    if (!strcmp(r->dataset, "digits")) {
        s = rpu_dataset_load_digits(r->data_path, true, train);
        if (s == RPU_OK) s = rpu_dataset_load_digits(r->data_path, false, test);
    } else if (!strcmp(r->dataset, "idx") || !strcmp(r->dataset, "fashion_mnist")) {
        s = rpu_dataset_load_dir(r->data_path, true, train);
        if (s == RPU_OK) s = rpu_dataset_load_dir(r->data_path, false, test);
    } else {
        const int sz = r->synthetic_size, n = r->synthetic_n, ch = r->synthetic_channels;
        s = rpu_dataset_synthetic(n, ch, sz, sz, r->synthetic_classes, r->seed, train);
        if (s == RPU_OK)
            s = rpu_dataset_synthetic(n / 4 + 1, ch, sz, sz, r->synthetic_classes, r->seed + 7919,
                                      test);
    }
    /* both splits have the same sample shape and the test labels are training classes */
    if (s == RPU_OK) s = rpu_dataset_check_split(train, test);
    if (s != RPU_OK) {
        char inner[1024];
        snprintf(inner, sizeof inner, "%s", rpu_error_message());
        rpu_dataset_free(train);
        rpu_dataset_free(test);
        char w[600];
        const char *key = strcmp(r->dataset, "synthetic") ? "path" : "dataset";
        snprintf(w, sizeof w, "%s", e->source);
        for (int k = 0; k < e->n_entries; ++k) {
            const exp_entry *x = &e->entries[k];
            if (strcmp(x->section, "data") || strcmp(x->key, key)) continue;
            if (x->line > 0)
                snprintf(w, sizeof w, "%s:%d", e->source, x->line);
            else
                snprintf(w, sizeof w, "%s (--set data.%s)", e->source, key);
        }
        return RPU_FAIL(s, "%s: [data] %s: %s", w, key, inner);
    }
    return RPU_OK;
}

rpu_status rpu_experiment_data(const rpu_experiment *e, rpu_dataset *train, rpu_dataset *test) {
    if (!e || !train || !test) return RPU_FAIL(RPU_ERR_ARG, "rpu_experiment_data: NULL argument");
    return net_load_data(e, train, test);
}

rpu_status net_make(MPI_Comm comm, const rpu_experiment *e, const rpu_dataset *ds, rpu_net **net) {
    int sp[2] = {ds->height, ds->width};
    RPU_CHECK(rpu_net_create(comm, e, ds->channels, 2, sp, net));
    const int got = rpu_net_outputs(*net);
    if (got != ds->n_classes) {
        /* fewer outputs than classes: name the first label the network cannot give */
        char what[1024] = "";
        if (got < ds->n_classes && rpu_dataset_check_labels(ds, got) != RPU_OK)
            snprintf(what, sizeof what, ": %s", rpu_error_message());
        else
            snprintf(what, sizeof what, " (%s)", ds->labels_name ? ds->labels_name : "labels");
        rpu_net_destroy(net);
        const exp_layer *last = &e->layers[e->n_layers - 1];
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s:%d: [layer.%s] the last layer gives %d outputs, but the data set has "
                        "%d classes%s",
                        e->source, last->line, last->name, got, ds->n_classes, what);
    }
    return RPU_OK;
}

rpu_status net_open(MPI_Comm comm, const rpu_experiment *e, const char *checkpoint,
                    rpu_dataset *test, rpu_net **net) {
    rpu_dataset tr = {0}, te = {0};
    rpu_status s = rpu_agree(comm, net_load_data(e, &tr, &te));
    if (s == RPU_OK) s = net_make(comm, e, &te, net);
    rpu_ckpt_layer cl[EXP_MAX_LAYERS];
    if (s == RPU_OK && checkpoint)
        s = rpu_ckpt_load(comm, checkpoint, cl, net_ckpt_layers(*net, cl, EXP_MAX_LAYERS), NULL, 0,
                          NULL);
    rpu_dataset_free(&tr);
    if (s == RPU_OK && test)
        *test = te;
    else
        rpu_dataset_free(&te);
    if (s != RPU_OK) rpu_net_destroy(net);
    return s;
}

rpu_status net_for_output(MPI_Comm comm, const rpu_experiment *e, const char *out, bool overwrite,
                          const char *checkpoint, rpu_net **net) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    rpu_status s = RPU_OK;
    struct stat st;
    if (rank == 0 && !overwrite && stat(out, &st) == 0)
        s = RPU_FAIL(RPU_ERR_IO,
                     "output %s already exists and is left as it is (--force replaces it)", out);
    RPU_CHECK(rpu_agree(comm, s));
    return net_open(comm, e, checkpoint, NULL, net);
}

/* ------------------------------------------------------------------ import */

rpu_status rpu_net_import(MPI_Comm comm, const rpu_experiment *e, const char *weights,
                          const char *out, bool overwrite, const rpu_program_params *program,
                          rpu_import_layer *report, int max_report, int *n_report) {
    if (!e || !weights || !out || (report && max_report < 0))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_net_import: NULL argument");
    if (n_report) *n_report = 0;
    rpu_net *net = NULL;
    rpu_status s = net_for_output(comm, e, out, overwrite, NULL, &net);
    rpu_import_layer *rep = NULL;
    const int nl = net ? rpu_net_analog_count(net) : 0;
    if (s == RPU_OK && report &&
        !(rep = (rpu_import_layer *)calloc((size_t)(nl > 0 ? nl : 1), sizeof *rep)))
        s = RPU_FAIL(RPU_ERR_NOMEM, "import: out of memory");
    if (report) s = rpu_agree(comm, s);
    if (s == RPU_OK) s = rpu_net_load_weights(comm, net, weights, program, rep);
    if (s == RPU_OK) s = rpu_net_save_checkpoint(comm, net, e, out, 0, 0, NULL, 0, 0);
    if (s == RPU_OK && report && rep) {
        const int n = nl < max_report ? nl : max_report;
        memcpy(report, rep, sizeof *rep * (size_t)n);
        if (n_report) *n_report = n;
    }
    free(rep);
    rpu_net_destroy(&net);
    return s;
}
