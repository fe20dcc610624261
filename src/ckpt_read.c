/* Checkpoints: verified reading — datasets (type, shape, Fletcher32 filter, data
 * checksums), 1 x 1 items, whole layer groups against a plan — and rpu_ckpt_load, which
 * replaces the model's state only after every rank read and checked everything. The
 * serial verifier (ckpt_file.c) reads through the same functions. */
#define _POSIX_C_SOURCE 200809L
#include "ckpt_impl.h"

#include "rpusim/tile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ datasets and items */

static void shape_text(int nd, const hsize_t *d, char *buf, size_t cap) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int k = 0; k < nd && len < cap; ++k)
        len += (size_t)snprintf(buf + len, cap - len, "%s%llu", k ? ", " : "",
                                (unsigned long long)d[k]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* Checks a dataset's header (type, shape, filter); fills *dt, nd, dims. -1 on failure
 * (recorded). */
static int check_header(ck_ctx *cx, hid_t ds, const char *objpath, int *dt, int want_ndim,
                        const hsize_t *want, bool allow_ndim, int *nd, hsize_t *dims) {
    char why[CK_WHY];
    hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds), dcpl = H5Dget_create_plist(ds);
    int res = -1;
    *nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    const int k = t >= 0 ? ck_dtype_of(t) : -1;
    if (t < 0 || sp < 0 || dcpl < 0 || *nd < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "unreadable dataset header (%s)", rpu_h5_why(why));
    } else if (k < 0 || (*dt >= 0 && k != *dt)) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "element type is %s, expected %s", ck_dtype_name(k),
                *dt >= 0 ? ck_dtype_name(*dt) : "a numeric type of the schema");
    } else if (*nd < 1 || *nd > RPU_CKPT_MAX_DIMS || (!allow_ndim && *nd != want_ndim)) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "dataset has %d dimensions, expected %d", *nd,
                want_ndim);
    } else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        const hsize_t n = ck_elems(*nd, dims);
        unsigned flags = 0, conf = 0;
        size_t nel = 0;
        res = 0;
        for (int d = 0; want && d < *nd && res == 0; ++d)
            if (dims[d] != want[d]) {
                char a[256], b[256];
                shape_text(*nd, dims, a, sizeof a);
                shape_text(*nd, want, b, sizeof b);
                CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "shape is %s, expected %s", a, b);
                res = -1;
            }
        if (res == 0 && n > 0 &&
            H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nel, NULL, 0, NULL, &conf) <
                0) {
            H5Eclear2(H5E_DEFAULT);
            CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "dataset has no Fletcher32 checksum");
            res = -1;
        }
        *dt = k;
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    return res;
}

/* Reads the data of ds (nd, dims, type dt): collective, the reading rank(s) with the whole
 * selection. 0, or 1 on a failure of this rank's data (recorded). */
static int read_data(ck_reader *r, hid_t ds, const char *objpath, rpu_ckpt_dtype dt, int nd,
                     const hsize_t *dims, bool mine, void **buf) {
    ck_ctx *cx = r->cx;
    const hsize_t n = ck_elems(nd, dims);
    int res = 0;
    void *data = NULL;
    if (mine) {
        const size_t bytes = (size_t)n * ck_dtype_size(dt);
        if (n > SIZE_MAX / ck_dtype_size(dt) || !(data = malloc(bytes))) {
            CK_FAIL(cx, RPU_ERR_NOMEM, objpath, "out of memory");
            res = 1;
        }
    }
    hid_t ms = H5Screate_simple(nd, dims, NULL), fs = H5Dget_space(ds);
    const bool take = mine && data;
    if (!take) {
        H5Sselect_none(ms);
        H5Sselect_none(fs);
    }
    static char dummy[8];
    if (H5Dread(ds, ck_mem_type(dt), ms, fs, r->dxpl, take ? data : dummy) < 0) {
        char why[CK_WHY];
        rpu_h5_why(why);
        if (strstr(why, "Fletcher32") || strstr(why, "checksum"))
            CK_FAIL(cx, RPU_ERR_FORMAT, objpath,
                    "data checksum (Fletcher32) mismatch: the data is corrupted (%s)", why);
        else
            CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "cannot read data (%s)", why);
        free(data);
        data = NULL;
        res = 1;
    }
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    *buf = data;
    return res;
}

int ck_read_dataset(ck_reader *r, hid_t loc, const char *name, const char *objpath, int dt,
                    int want_ndim, const hsize_t *want, bool allow_ndim, int *got_ndim,
                    hsize_t *got, int *got_dt, bool mine, void **buf) {
    *buf = NULL;
    hid_t ds = ck_open_obj(loc, name, H5O_TYPE_DATASET, objpath, r->cx);
    if (ds < 0) return -1;
    ++r->objs;
    int nd = 0;
    hsize_t dims[H5S_MAX_RANK];
    int res = check_header(r->cx, ds, objpath, &dt, want_ndim, want, allow_ndim, &nd, dims);
    if (res == 0) {
        if (got_ndim) *got_ndim = nd;
        for (int d = 0; got && d < nd; ++d)
            got[d] = dims[d];
        if (got_dt) *got_dt = dt;
        if (ck_elems(nd, dims) > 0)
            res = read_data(r, ds, objpath, (rpu_ckpt_dtype)dt, nd, dims, mine, buf);
    }
    H5Dclose(ds);
    return res;
}

/* Reads the 1 x 1 item `name` stored as an attribute of g: type dt, one element. Metadata:
 * every rank reads it; the value goes into a malloc'ed *buf where `mine`. Returns as
 * ck_read_dataset. */
static int read_scalar_attr(ck_ctx *cx, hid_t g, const char *name, const char *objpath, int dt,
                            bool mine, void **buf) {
    char why[CK_WHY];
    *buf = NULL;
    const htri_t ex = H5Aexists(g, name);
    if (ex <= 0) {
        if (ex == 0)
            CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "attribute is missing");
        else
            CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "unreadable attribute (%s)", rpu_h5_why(why));
        return -1;
    }
    ck_attr_h h = ck_attr_open(g, name);
    int res = -1;
    unsigned char v[8];
    const int k = ck_attr_ok(&h) ? ck_dtype_of(h.t) : -1;
    if (!ck_attr_ok(&h)) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "unreadable attribute (%s)", rpu_h5_why(why));
    } else if (k < 0 || (dt >= 0 && k != dt)) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "element type is %s, expected %s", ck_dtype_name(k),
                dt >= 0 ? ck_dtype_name(dt) : "a numeric type of the schema");
    } else if (H5Sget_simple_extent_npoints(h.sp) != 1) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "attribute has %lld values, expected 1",
                (long long)H5Sget_simple_extent_npoints(h.sp));
    } else if (H5Aread(h.a, ck_mem_type((rpu_ckpt_dtype)k), v) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "unreadable attribute (%s)", rpu_h5_why(why));
    } else {
        res = 0;
        if (mine) {
            if ((*buf = malloc(sizeof v)) != NULL) {
                memcpy(*buf, v, sizeof v);
            } else {
                CK_FAIL(cx, RPU_ERR_NOMEM, objpath, "out of memory");
                res = 1;
            }
        }
    }
    ck_attr_close(&h);
    return res;
}

/* ------------------------------------------------------------------ layers */

/* The first link of group g whose name is none of n expected names, into extra (or "").
 * The names are at names, names + stride, ... (a member of an array of structs). */
typedef struct {
    const char *names;
    size_t stride;
    int n;
    char extra[CK_LAYER_NAME + 16];
} ck_extra_scan;

static herr_t extra_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g, (void)info;
    ck_extra_scan *s = (ck_extra_scan *)data;
    for (int k = 0; k < s->n; ++k)
        if (!strcmp(s->names + (size_t)k * s->stride, name)) return 0;
    snprintf(s->extra, sizeof s->extra, "%s", name);
    return 1;
}

static void first_extra(hid_t g, ck_extra_scan *s) {
    hsize_t idx = 0;
    s->extra[0] = '\0';
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, extra_cb, s);
}

/* Reads the items of tile t (group kg, named obj): all of them, nothing more. */
static void read_tile(hid_t kg, const char *obj, ck_lplan *pl, int t, ck_reader *r, int *stop) {
    ck_ctx *cx = r->cx;
    ck_tile *ct = &pl->tiles[t];
    /* with a model: the tiles this rank owns, kept; the verifier: every tile, dropped */
    const bool mine = pl->layer ? rpu_conv_tile(pl->layer, t) != NULL : true;
    const bool keep = pl->layer && mine;
    if (keep && !(ct->buf = (void **)calloc((size_t)ct->n_items, sizeof(void *))))
        CK_FAIL(cx, RPU_ERR_NOMEM, obj, "out of memory");
    int n_attr = 0;
    for (int k = 0; k < ct->n_items && !*stop; ++k) {
        const ck_item *ci = &ct->items[k];
        hsize_t want[2] = {(hsize_t)ci->rows, (hsize_t)ci->cols};
        char iobj[CK_LAYER_NAME + 128 + CK_ITEM_NAME];
        snprintf(iobj, sizeof iobj, "%s/%s", obj, ci->name);
        void *buf = NULL;
        int rr;
        const bool take = mine && (!keep || ct->buf);
        if (ci->attr) {
            ++n_attr;
            rr = read_scalar_attr(cx, kg, ci->name, iobj, ci->dtype, take, &buf);
        } else {
            rr = ck_read_dataset(r, kg, ci->name, iobj, ci->dtype, 2, ci->rows < 0 ? NULL : want,
                                 false, NULL, NULL, NULL, take, &buf);
        }
        if (keep && ct->buf)
            ct->buf[k] = buf;
        else
            free(buf);
        if (rr < 0) *stop = 1;
    }
    if (!*stop && ck_link_count(kg) != (hsize_t)(ct->n_items - n_attr)) {
        ck_extra_scan s = {ct->items[0].name, sizeof(ck_item), ct->n_items, ""};
        first_extra(kg, &s);
        CK_FAIL(cx, RPU_ERR_FORMAT, obj,
                "tile group has %llu datasets, the %s tile %d (first unexpected: '%s')",
                (unsigned long long)ck_link_count(kg), pl->layer ? "model's" : "first",
                ct->n_items - n_attr, s.extra);
        *stop = 1;
    }
    if (!*stop) {
        H5O_info_t oi;
        memset(&oi, 0, sizeof oi);
        if (H5Oget_info2(kg, &oi, H5O_INFO_NUM_ATTRS) < 0 || oi.num_attrs != (hsize_t)n_attr) {
            CK_FAIL(cx, RPU_ERR_FORMAT, obj, "tile group has %llu attributes, the %s tile %d",
                    (unsigned long long)oi.num_attrs, pl->layer ? "model's" : "first", n_attr);
            *stop = 1;
        }
    }
}

void ck_read_layer(hid_t layers_g, ck_lplan *pl, ck_reader *r, int *stop) {
    ck_ctx *cx = r->cx;
    char obj[CK_LAYER_NAME + 128], why[CK_WHY];
    snprintf(obj, sizeof obj, "/layers/%s", pl->name);
    if (H5Lexists(layers_g, pl->name, H5P_DEFAULT) == 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, obj, "the file has no layer '%s' (model mismatch)", pl->name);
        *stop = 1;
        return;
    }
    hid_t g = ck_open_obj(layers_g, pl->name, H5O_TYPE_GROUP, obj, cx);
    if (g < 0) {
        *stop = 1;
        return;
    }
    ++r->objs;
    ck_lattrs fa;
    if (ck_lattrs_read(g, &fa, why) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, obj, "%s", why);
        *stop = 1;
        H5Gclose(g);
        return;
    }
    const ck_lattrs *ma = &pl->attrs;
    if (!ck_lattrs_match(&fa, ma, why) ||
        !ck_config_match(fa.rpu_config, pl->layer ? rpu_conv_config(pl->layer) : NULL, why)) {
        CK_FAIL(cx, RPU_ERR_FORMAT, obj, "%s%s", pl->layer ? "model mismatch: " : "", why);
        *stop = 1;
    }
    ck_lattrs_free(&fa);
    if (!*stop && !strcmp(ma->bias, "digital")) {
        hsize_t d = (hsize_t)ma->out_ch;
        void *buf = NULL;
        snprintf(obj, sizeof obj, "/layers/%s/bias", pl->name);
        if (ck_read_dataset(r, g, "bias", obj, RPU_CKPT_F32, 1, &d, false, NULL, NULL, NULL, true,
                            &buf) < 0)
            *stop = 1;
        if (pl->layer)
            pl->bias_buf = (float *)buf;
        else
            free(buf);
    }
    hid_t tg = -1;
    if (!*stop) {
        snprintf(obj, sizeof obj, "/layers/%s/tiles", pl->name);
        tg = ck_open_obj(g, "tiles", H5O_TYPE_GROUP, obj, cx);
        if (tg < 0) *stop = 1;
    }
    if (tg >= 0) {
        ++r->objs;
        if (ck_link_count(tg) != (hsize_t)ma->n_tiles) {
            CK_FAIL(cx, RPU_ERR_FORMAT, obj, "%llu tiles in the file, %d in the %s",
                    (unsigned long long)ck_link_count(tg), ma->n_tiles,
                    pl->layer ? "model" : "layer's grid");
            *stop = 1;
        }
        if (!*stop && ck_link_count(g) != (hsize_t)(1 + !strcmp(ma->bias, "digital"))) {
            snprintf(obj, sizeof obj, "/layers/%s", pl->name);
            CK_FAIL(cx, RPU_ERR_FORMAT, obj, "layer group has %llu links, expected %s",
                    (unsigned long long)ck_link_count(g),
                    strcmp(ma->bias, "digital") ? "'tiles'" : "'bias' and 'tiles'");
            *stop = 1;
        }
        for (int t = 0; t < ma->n_tiles && !*stop; ++t) {
            char key[48];
            ck_tile_key(ma->groups, ma->n_in, ma->n_out, t, key);
            snprintf(obj, sizeof obj, "/layers/%s/tiles/%s", pl->name, key);
            hid_t kg = ck_open_obj(tg, key, H5O_TYPE_GROUP, obj, cx);
            if (kg < 0) {
                *stop = 1;
                break;
            }
            ++r->objs;
            read_tile(kg, obj, pl, t, r, stop);
            H5Gclose(kg);
        }
        H5Gclose(tg);
    }
    H5Gclose(g);
}

/* ------------------------------------------------------------------ load */

/* Reads the arrays (collective): every rank gets every array. */
static void read_arrays(hid_t file, rpu_ckpt_array *arrays, int n_arrays, ck_reader *rd,
                        void **abuf, int *andim, int64_t (*adims)[RPU_CKPT_MAX_DIMS], int *stop) {
    for (int i = 0; i < n_arrays && !*stop; ++i) {
        rpu_ckpt_array *a = &arrays[i];
        char obj[CK_ARRAY_PATH + 2];
        snprintf(obj, sizeof obj, "/%s", a->path);
        if (!ck_path_exists(file, a->path)) {
            if (!a->optional) {
                CK_FAIL(rd->cx, RPU_ERR_FORMAT, obj, "dataset is missing");
                *stop = 1;
            }
            continue;
        }
        hsize_t got[RPU_CKPT_MAX_DIMS] = {0}, want[RPU_CKPT_MAX_DIMS] = {0};
        int nd = 0;
        for (int d = 0; a->check_shape && d < a->ndim; ++d)
            want[d] = (hsize_t)a->dims[d];
        if (ck_read_dataset(rd, file, a->path, obj, (int)a->dtype, a->check_shape ? a->ndim : 1,
                            a->check_shape ? want : NULL, !a->check_shape, &nd, got, NULL, true,
                            &abuf[i]) < 0)
            *stop = 1;
        andim[i] = nd;
        for (int d = 0; d < RPU_CKPT_MAX_DIMS; ++d)
            adims[i][d] = d < nd ? (int64_t)got[d] : 0;
    }
}

/* Every rank checked everything: replaces the layers' state. */
static void install(ck_lplan *pl, int n_layers) {
    for (int i = 0; i < n_layers; ++i) {
        for (int t = 0; t < pl[i].attrs.n_tiles; ++t) {
            rpu_tile *tile = rpu_conv_tile(pl[i].layer, t);
            ck_tile *ct = &pl[i].tiles[t];
            if (!tile || !ct->buf) continue;
            rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
            const int n = rpu_tile_state_items(tile, it, RPU_TILE_MAX_STATE_ITEMS);
            for (int k = 0; k < n && k < ct->n_items; ++k)
                memcpy(it[k].data, ct->buf[k],
                       it[k].count * ck_dtype_size((rpu_ckpt_dtype)ct->items[k].dtype));
        }
        if (pl[i].bias_buf) rpu_conv_set_digital_bias(pl[i].layer, pl[i].bias_buf);
        rpu_conv_state_loaded(pl[i].layer);
    }
}

rpu_status rpu_ckpt_load(MPI_Comm comm_in, const char *path, const rpu_ckpt_layer *layers,
                         int n_layers, rpu_ckpt_array *arrays, int n_arrays, rpu_ckpt_info *info) {
    if (comm_in == MPI_COMM_NULL) return RPU_FAIL(RPU_ERR_ARG, "checkpoint load: MPI_COMM_NULL");
    if (!path || !*path) return RPU_FAIL(RPU_ERR_ARG, "checkpoint load: path is NULL or empty");
    MPI_Comm comm;
    if (MPI_Comm_dup(comm_in, &comm) != MPI_SUCCESS)
        return RPU_FAIL(RPU_ERR_MPI, "checkpoint %s: MPI_Comm_dup failed", path);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    int rank;
    MPI_Comm_rank(comm, &rank);
    ck_ctx cx = ck_ctx_for(path);
    rpu_h5_quiet q;
    rpu_h5_quiet_on(&q);
    ck_lplan *pl = NULL;
    hid_t fapl = -1, dxpl = -1, file = -1, lg = -1;
    rpu_ckpt_info fi;
    memset(&fi, 0, sizeof fi);
    void **abuf = NULL;
    int *andim = NULL;
    int64_t(*adims)[RPU_CKPT_MAX_DIMS] = NULL;
    int stop = 0;

    uint64_t h = ck_check_args(comm, layers, n_layers, arrays, n_arrays, false, &cx);
    h = ck_hash_str(h, path);
    ck_check_same(comm, h, &cx);
    if (ck_agree(comm, &cx) != RPU_OK) goto out;
    pl = ck_plan_build(comm, layers, n_layers, &cx);
    if (n_arrays > 0) {
        abuf = (void **)calloc((size_t)n_arrays, sizeof *abuf);
        andim = (int *)calloc((size_t)n_arrays, sizeof *andim);
        adims = (int64_t(*)[RPU_CKPT_MAX_DIMS])calloc((size_t)n_arrays, sizeof *adims);
        if (!abuf || !andim || !adims) CK_FAIL(&cx, RPU_ERR_NOMEM, NULL, "out of memory");
    }
    if (rank == 0 && access(path, R_OK) != 0)
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "cannot read the file: %s", strerror(errno));
    fapl = ck_make_fapl(comm);
    dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (fapl < 0 || dxpl < 0 || H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0 ||
        H5Pset_edc_check(dxpl, H5Z_ENABLE_EDC) < 0) {
        char why[CK_WHY];
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "cannot set up HDF5 (%s)", rpu_h5_why(why));
    }
    if (ck_agree(comm, &cx) != RPU_OK) goto out;
    file = ck_open_file(path, fapl, &cx, false);
    if (ck_agree(comm, &cx) != RPU_OK) goto out;

    /* metadata, layers and tiles: every rank makes the same calls */
    if (ck_read_root(file, &fi, &cx) < 0) stop = 1;
    if (!stop) {
        lg = ck_open_obj(file, "layers", H5O_TYPE_GROUP, "/layers", &cx);
        if (lg < 0) stop = 1;
    }
    if (!stop) {
        /* layer names in /layers that the model does not have */
        ck_extra_scan s = {n_layers > 0 ? pl[0].name : "", sizeof(ck_lplan), n_layers, ""};
        first_extra(lg, &s);
        if (s.extra[0]) {
            char obj[CK_LAYER_NAME + 16];
            snprintf(obj, sizeof obj, "/layers/%s", s.extra);
            CK_FAIL(&cx, RPU_ERR_FORMAT, obj,
                    "model mismatch: the file has layer '%s', which the model does not have",
                    s.extra);
            stop = 1;
        }
    }
    ck_reader rd = {&cx, dxpl, 0};
    for (int i = 0; i < n_layers && !stop; ++i)
        ck_read_layer(lg, &pl[i], &rd, &stop);
    read_arrays(file, arrays, n_arrays, &rd, abuf, andim, adims, &stop);
    if (lg >= 0) H5Gclose(lg);
    lg = -1;
    if (H5Fclose(file) < 0) {
        char why[CK_WHY];
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "close failed (%s)", rpu_h5_why(why));
    }
    file = -1;
    if (ck_agree(comm, &cx) != RPU_OK) goto out;

    /* verified on every rank: replace the state */
    install(pl, n_layers);
    for (int i = 0; i < n_arrays; ++i) {
        arrays[i].data = abuf[i];
        abuf[i] = NULL;
        arrays[i].ndim = andim[i];
        memcpy(arrays[i].dims, adims[i], sizeof arrays[i].dims);
    }
    if (info) {
        *info = fi;
        fi.config = NULL;
    }

out:
    if (lg >= 0) H5Gclose(lg);
    if (file >= 0) H5Fclose(file);
    if (dxpl >= 0) H5Pclose(dxpl);
    if (fapl >= 0) H5Pclose(fapl);
    rpu_h5_quiet_off(&q);
    rpu_ckpt_info_free(&fi);
    ck_plan_free(pl, n_layers);
    if (abuf)
        for (int i = 0; i < n_arrays; ++i)
            free(abuf[i]);
    free(abuf);
    free(andim);
    free(adims);
    MPI_Comm_free(&comm);
    return cx.st;
}
