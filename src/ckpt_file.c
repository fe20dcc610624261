/* Checkpoints without MPI: the serial reader for tools (rpu_ckpt_open, the layer and tile
 * descriptions, rpu_ckpt_file_read) and rpu_ckpt_verify, which reads every object of the
 * file through the load's own verified readers (ckpt_read.c). */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "ckpt_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rpu_ckpt_file {
    hid_t file;
    char *path;
    rpu_ckpt_info info;
    int n_layers;
    char (*names)[CK_LAYER_NAME];
    ck_lattrs *attrs;
    rpu_ckpt_layer_desc *desc;
    /* the items of the last tile scan (rpu_ckpt_file_tile_items, rpu_ckpt_verify) */
    ck_item *scan;
    int scan_cap;
};

/* ------------------------------------------------------------------ open and close */

typedef struct {
    char (*names)[CK_LAYER_NAME];
    int n, cap;
    int bad;
} ck_name_list;

static herr_t collect_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g, (void)info;
    ck_name_list *l = (ck_name_list *)data;
    if (strlen(name) >= CK_LAYER_NAME) {
        l->bad = 1;
        return 1;
    }
    if (l->n == l->cap) {
        int cap = 2 * l->cap + 8;
        char(*p)[CK_LAYER_NAME] =
            (char(*)[CK_LAYER_NAME])realloc(l->names, (size_t)cap * CK_LAYER_NAME);
        if (!p) {
            l->bad = 2;
            return 1;
        }
        l->names = p;
        l->cap = cap;
    }
    snprintf(l->names[l->n++], CK_LAYER_NAME, "%s", name);
    return 0;
}

static void describe(rpu_ckpt_layer_desc *d, const char *name, const ck_lattrs *a) {
    d->name = name;
    d->type = a->type;
    d->ndim = a->ndim;
    d->in_channels = a->in_ch;
    d->out_channels = a->out_ch;
    d->groups = a->groups;
    for (int k = 0; k < 3; ++k) {
        d->kernel[k] = a->kernel[k];
        d->stride[k] = a->stride[k];
        d->padding[k] = a->padding[k];
        d->dilation[k] = a->dilation[k];
    }
    d->bias = a->bias;
    d->split = a->split;
    d->layer_id = a->layer_id;
    d->seed = a->seed;
    d->n_in = a->n_in;
    d->n_out = a->n_out;
    d->n_tiles = a->n_tiles;
    d->in_split_sizes = a->in_split;
    d->out_split_sizes = a->out_split;
    d->rpu_config = a->rpu_config;
}

/* Reads the layer list and every layer's attributes. */
static void read_layers(rpu_ckpt_file *f, ck_ctx *cx) {
    ck_name_list nl = {NULL, 0, 0, 0};
    hid_t lg = ck_open_obj(f->file, "layers", H5O_TYPE_GROUP, "/layers", cx);
    if (lg < 0) return;
    if (ck_iterate(lg, collect_cb, &nl) < 0 || nl.bad) {
        CK_FAIL(cx, nl.bad == 2 ? RPU_ERR_NOMEM : RPU_ERR_FORMAT, "/layers",
                "cannot list the layers");
        goto out;
    }
    f->n_layers = nl.n;
    f->names = nl.names;
    nl.names = NULL;
    f->attrs = (ck_lattrs *)calloc((size_t)(f->n_layers ? f->n_layers : 1), sizeof *f->attrs);
    f->desc =
        (rpu_ckpt_layer_desc *)calloc((size_t)(f->n_layers ? f->n_layers : 1), sizeof *f->desc);
    if (!f->attrs || !f->desc) {
        CK_FAIL(cx, RPU_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < f->n_layers; ++i) {
        char obj[CK_LAYER_NAME + 16], why[CK_WHY];
        snprintf(obj, sizeof obj, "/layers/%s", f->names[i]);
        hid_t g = ck_open_obj(lg, f->names[i], H5O_TYPE_GROUP, obj, cx);
        if (g < 0) goto out;
        const int r = ck_lattrs_read(g, &f->attrs[i], why);
        H5Gclose(g);
        if (r < 0) {
            CK_FAIL(cx, RPU_ERR_FORMAT, obj, "%s", why);
            goto out;
        }
        describe(&f->desc[i], f->names[i], &f->attrs[i]);
    }
out:
    H5Gclose(lg);
    free(nl.names);
}

rpu_status rpu_ckpt_open(const char *path, rpu_ckpt_file **file) {
    if (!file) return RPU_FAIL(RPU_ERR_ARG, "rpu_ckpt_open: file is NULL");
    *file = NULL;
    if (!path || !*path) return RPU_FAIL(RPU_ERR_ARG, "rpu_ckpt_open: path is NULL or empty");
    ck_ctx cx = ck_ctx_for(path);
    rpu_h5_quiet q;
    rpu_h5_quiet_on(&q);
    rpu_ckpt_file *f = (rpu_ckpt_file *)calloc(1, sizeof *f);
    if (f) f->file = -1;
    hid_t fapl = ck_make_fapl(MPI_COMM_NULL);
    if (!f || !(f->path = strdup(path))) {
        CK_FAIL(&cx, RPU_ERR_NOMEM, NULL, "out of memory");
    } else if (fapl < 0) {
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "cannot set up HDF5");
    } else {
        f->file = ck_open_file(path, fapl, &cx, true);
        if (f->file >= 0 && ck_read_root(f->file, &f->info, &cx) == 0) read_layers(f, &cx);
    }
    if (fapl >= 0) H5Pclose(fapl);
    rpu_h5_quiet_off(&q);
    if (cx.st != RPU_OK) {
        rpu_ckpt_close(&f);
        return cx.st;
    }
    *file = f;
    return RPU_OK;
}

void rpu_ckpt_close(rpu_ckpt_file **file) {
    if (!file || !*file) return;
    rpu_ckpt_file *f = *file;
    if (f->file >= 0) {
        rpu_h5_quiet q;
        rpu_h5_quiet_on(&q);
        H5Fclose(f->file);
        rpu_h5_quiet_off(&q);
    }
    if (f->attrs)
        for (int i = 0; i < f->n_layers; ++i)
            ck_lattrs_free(&f->attrs[i]);
    free(f->attrs);
    free(f->desc);
    free(f->names);
    free(f->scan);
    rpu_ckpt_info_free(&f->info);
    free(f->path);
    free(f);
    *file = NULL;
}

const rpu_ckpt_info *rpu_ckpt_file_info(const rpu_ckpt_file *f) {
    return f ? &f->info : NULL;
}

int rpu_ckpt_file_layer_count(const rpu_ckpt_file *f) {
    return f ? f->n_layers : 0;
}

rpu_status rpu_ckpt_file_layer(const rpu_ckpt_file *f, int index, rpu_ckpt_layer_desc *desc) {
    if (!f || !desc || index < 0 || index >= f->n_layers)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_ckpt_file_layer: no layer %d", index);
    *desc = f->desc[index];
    return RPU_OK;
}

rpu_status rpu_ckpt_tile_key(const rpu_ckpt_layer_desc *desc, int t, char key[48]) {
    if (!desc || !key || t < 0 || t >= desc->n_tiles)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_ckpt_tile_key: no tile %d", t);
    ck_tile_key(desc->groups, desc->n_in, desc->n_out, t, key);
    return RPU_OK;
}

/* ------------------------------------------------------------------ tile items */

typedef struct {
    rpu_ckpt_file *f;
    int n;
    int bad; /* 1: format, 2: memory */
    char why[CK_WHY];
} ck_item_scan;

/* Appends one item to f->scan. Returns 0, or 1 (stop). */
static int scan_push(ck_item_scan *s, const char *name, int dtype, hsize_t rows, hsize_t cols,
                     bool attribute) {
    if (s->n == s->f->scan_cap) {
        const int cap = 2 * s->f->scan_cap + 16;
        ck_item *p = (ck_item *)realloc(s->f->scan, (size_t)cap * sizeof *p);
        if (!p) {
            snprintf(s->why, sizeof s->why, "out of memory");
            s->bad = 2;
            return 1;
        }
        s->f->scan = p;
        s->f->scan_cap = cap;
    }
    ck_item *it = &s->f->scan[s->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", name);
    it->dtype = dtype;
    it->rows = (int)rows;
    it->cols = (int)cols;
    it->attr = attribute;
    return 0;
}

static int scan_fail(ck_item_scan *s, const char *what, const char *name) {
    snprintf(s->why, sizeof s->why, what, name);
    s->bad = 1;
    return 1;
}

static herr_t item_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    ck_item_scan *s = (ck_item_scan *)data;
    if (strlen(name) >= CK_ITEM_NAME) return scan_fail(s, "object name '%.60s' is too long", name);
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0) return scan_fail(s, "'%.60s' is not a readable dataset", name);
    hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds);
    const int k = t >= 0 ? ck_dtype_of(t) : -1;
    const int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[2] = {0, 0};
    if (nd == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    if (k < 0 || nd != 2 || dims[0] > INT32_MAX || dims[1] > INT32_MAX)
        return scan_fail(s, "dataset '%.60s' is not a 2-d array of a known type", name);
    return scan_push(s, name, k, dims[0], dims[1], false);
}

static herr_t attr_cb(hid_t g, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    ck_item_scan *s = (ck_item_scan *)data;
    if (strlen(name) >= CK_ITEM_NAME)
        return scan_fail(s, "attribute name '%.60s' is too long", name);
    ck_attr_h h = ck_attr_open(g, name);
    const int k = h.t >= 0 ? ck_dtype_of(h.t) : -1;
    const hssize_t np = h.sp >= 0 ? H5Sget_simple_extent_npoints(h.sp) : -1;
    ck_attr_close(&h);
    if (k < 0 || np != 1)
        return scan_fail(s, "attribute '%.60s' is not one number of a known type", name);
    return scan_push(s, name, k, 1, 1, true);
}

/* Lists the items of tile t of layer li into f->scan: the datasets, then the attributes
 * (the 1 x 1 items), each in creation order. Returns the count, or -1 (recorded). */
static int scan_tile(rpu_ckpt_file *f, int li, int t, ck_ctx *cx) {
    const rpu_ckpt_layer_desc *d = &f->desc[li];
    char key[48], obj[CK_LAYER_NAME + 80];
    ck_tile_key(d->groups, d->n_in, d->n_out, t, key);
    snprintf(obj, sizeof obj, "/layers/%s/tiles/%s", f->names[li], key);
    hid_t g =
        ck_path_exists(f->file, obj + 1) ? ck_open_obj(f->file, obj, H5O_TYPE_GROUP, obj, cx) : -1;
    if (g < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, obj, "tile group is missing");
        return -1;
    }
    ck_item_scan s = {f, 0, 0, ""};
    hid_t gcpl = H5Gget_create_plist(g);
    unsigned flags = 0;
    const bool crt = gcpl >= 0 && H5Pget_attr_creation_order(gcpl, &flags) >= 0 &&
                     (flags & H5P_CRT_ORDER_INDEXED);
    if (gcpl >= 0) H5Pclose(gcpl);
    hsize_t idx = 0;
    if (ck_iterate(g, item_cb, &s) < 0 || s.bad ||
        H5Aiterate2(g, crt ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME, H5_ITER_INC, &idx, attr_cb, &s) <
            0 ||
        s.bad)
        CK_FAIL(cx, s.bad == 2 ? RPU_ERR_NOMEM : RPU_ERR_FORMAT, obj, "%s",
                s.why[0] ? s.why : "cannot list the datasets and attributes");
    H5Gclose(g);
    return cx->st == RPU_OK ? s.n : -1;
}

rpu_status rpu_ckpt_file_tile_items(rpu_ckpt_file *f, int layer, int t, rpu_ckpt_item_desc *items,
                                    int max, int *count) {
    if (count) *count = 0;
    if (!f || !count || (max > 0 && !items) || layer < 0 || layer >= f->n_layers || t < 0 ||
        t >= f->desc[layer].n_tiles)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_ckpt_file_tile_items: bad arguments (layer %d, tile %d)",
                        layer, t);
    ck_ctx cx = ck_ctx_for(f->path);
    rpu_h5_quiet q;
    rpu_h5_quiet_on(&q);
    const int n = scan_tile(f, layer, t, &cx);
    for (int k = 0; k < n && k < max; ++k) {
        items[k].name = f->scan[k].name;
        items[k].dtype = (rpu_ckpt_dtype)f->scan[k].dtype;
        items[k].rows = f->scan[k].rows;
        items[k].cols = f->scan[k].cols;
        items[k].attribute = f->scan[k].attr;
    }
    if (n > 0) *count = n;
    rpu_h5_quiet_off(&q);
    return cx.st;
}

/* ------------------------------------------------------------------ reading one array */

/* A 1 x 1 tile item stored as attribute `name` of the group at gpath: *v (malloc'ed). */
static bool read_attr_item(hid_t file, const char *gpath, const char *name, double **v) {
    if (!ck_path_exists(file, gpath + 1) || H5Aexists_by_name(file, gpath, name, H5P_DEFAULT) <= 0)
        return false;
    hid_t a = H5Aopen_by_name(file, gpath, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t at = a >= 0 ? H5Aget_type(a) : -1, as = a >= 0 ? H5Aget_space(a) : -1;
    const H5T_class_t c = at >= 0 ? H5Tget_class(at) : H5T_NO_CLASS;
    *v = (double *)malloc(sizeof(double));
    const bool found = *v && as >= 0 && H5Sget_simple_extent_npoints(as) == 1 &&
                       (c == H5T_INTEGER || c == H5T_FLOAT) &&
                       H5Aread(a, H5T_NATIVE_DOUBLE, *v) >= 0;
    if (!found) {
        free(*v);
        *v = NULL;
    }
    if (at >= 0) H5Tclose(at);
    if (as >= 0) H5Sclose(as);
    if (a >= 0) H5Aclose(a);
    return found;
}

rpu_status rpu_ckpt_file_read(rpu_ckpt_file *f, const char *path, double **values, int *ndim,
                              int64_t dims[2]) {
    if (!f || !path || !values || !ndim || !dims)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_ckpt_file_read: NULL argument");
    *values = NULL;
    *ndim = 0;
    dims[0] = dims[1] = 0;
    ck_ctx cx = ck_ctx_for(f->path);
    char obj[CK_ARRAY_PATH + 80], why[CK_WHY];
    snprintf(obj, sizeof obj, "/%s", path[0] == '/' ? path + 1 : path);
    rpu_h5_quiet q;
    rpu_h5_quiet_on(&q);
    hid_t ds = -1, sp = -1, t = -1;
    if (strlen(obj) >= CK_ARRAY_PATH + 64) {
        CK_FAIL(&cx, RPU_ERR_FORMAT, obj, "dataset is missing");
        goto out;
    }
    if (!ck_path_exists(f->file, obj + 1)) {
        /* a 1 x 1 item: an attribute of the parent group */
        char *slash = strrchr(obj, '/');
        bool found = false;
        if (slash && slash > obj) {
            *slash = '\0';
            found = read_attr_item(f->file, obj, slash + 1, values);
            *slash = '/';
        }
        if (found) {
            *ndim = 2;
            dims[0] = dims[1] = 1;
        } else {
            CK_FAIL(&cx, RPU_ERR_FORMAT, obj, "dataset is missing");
        }
        goto out;
    }
    ds = ck_open_obj(f->file, obj, H5O_TYPE_DATASET, obj, &cx);
    if (ds < 0) goto out;
    t = H5Dget_type(ds);
    sp = H5Dget_space(ds);
    const int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    const H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (nd < 1 || nd > 2 || (cls != H5T_INTEGER && cls != H5T_FLOAT)) {
        CK_FAIL(&cx, RPU_ERR_FORMAT, obj, "not a numeric array of 1 or 2 dimensions");
        goto out;
    }
    hsize_t d[2] = {0, 1};
    H5Sget_simple_extent_dims(sp, d, NULL);
    const hsize_t n = d[0] * (nd == 2 ? d[1] : 1);
    double *v = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!v) {
        CK_FAIL(&cx, RPU_ERR_NOMEM, obj, "out of memory");
        goto out;
    }
    if (n > 0 && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        rpu_h5_why(why);
        if (strstr(why, "Fletcher32") || strstr(why, "checksum"))
            CK_FAIL(&cx, RPU_ERR_FORMAT, obj,
                    "data checksum (Fletcher32) mismatch: the data is corrupted (%s)", why);
        else
            CK_FAIL(&cx, RPU_ERR_FORMAT, obj, "cannot read data (%s)", why);
        free(v);
        goto out;
    }
    *values = v;
    *ndim = nd;
    dims[0] = (int64_t)d[0];
    dims[1] = nd == 2 ? (int64_t)d[1] : 0;
out:
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    rpu_h5_quiet_off(&q);
    return cx.st;
}

/* ------------------------------------------------------------------ verify */

/* The names of a group's links (creation order), malloc'ed. */
static int list_links(hid_t g, ck_name_list *nl, const char *obj, ck_ctx *cx) {
    if (ck_iterate(g, collect_cb, nl) < 0 || nl->bad) {
        CK_FAIL(cx, nl->bad == 2 ? RPU_ERR_NOMEM : RPU_ERR_FORMAT, obj,
                nl->bad == 1 ? "a link name is too long" : "cannot list the group");
        return -1;
    }
    return 0;
}

/* Everything under group g (path obj) outside /layers: groups and datasets of the schema's
 * element types, 1 or 2 dimensions, checksummed. depth bounds the recursion. */
static void verify_tree(hid_t g, const char *obj, ck_reader *r, int depth) {
    ck_ctx *cx = r->cx;
    ck_name_list nl = {NULL, 0, 0, 0};
    if (list_links(g, &nl, obj, cx) < 0) {
        free(nl.names);
        return;
    }
    for (int i = 0; i < nl.n && cx->st == RPU_OK; ++i) {
        if (depth == 0 && !strcmp(nl.names[i], "layers")) continue;
        char sub[CK_ARRAY_PATH + CK_LAYER_NAME + 2];
        snprintf(sub, sizeof sub, "%s/%s", depth == 0 ? "" : obj, nl.names[i]);
        H5O_info_t oi;
        if (H5Oget_info_by_name2(g, nl.names[i], &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
            char why[CK_WHY];
            CK_FAIL(cx, RPU_ERR_FORMAT, sub, "unreadable object header (%s)", rpu_h5_why(why));
        } else if (oi.type == H5O_TYPE_GROUP && depth >= 16) {
            CK_FAIL(cx, RPU_ERR_FORMAT, sub, "groups nested more than 16 deep");
        } else if (oi.type == H5O_TYPE_GROUP) {
            hid_t sg = ck_open_obj(g, nl.names[i], H5O_TYPE_GROUP, sub, cx);
            if (sg >= 0) {
                ++r->objs;
                verify_tree(sg, sub, r, depth + 1);
                H5Gclose(sg);
            }
        } else if (oi.type == H5O_TYPE_DATASET) {
            void *buf = NULL;
            ck_read_dataset(r, g, nl.names[i], sub, -1, 1, NULL, true, NULL, NULL, NULL, true,
                            &buf);
            free(buf);
        } else {
            CK_FAIL(cx, RPU_ERR_FORMAT, sub, "unexpected object (not a group or dataset)");
        }
    }
    free(nl.names);
}

/* Layer li against itself: its attributes, bias and every tile, each tile holding the
 * items of the layer's first tile. */
static void verify_layer(rpu_ckpt_file *f, int li, hid_t lg, ck_reader *r) {
    const int n = scan_tile(f, li, 0, r->cx);
    if (n < 0) return;
    ck_lplan pl;
    memset(&pl, 0, sizeof pl);
    snprintf(pl.name, sizeof pl.name, "%s", f->names[li]);
    pl.attrs = f->attrs[li]; /* borrowed: not freed here */
    pl.tiles = (ck_tile *)calloc((size_t)pl.attrs.n_tiles, sizeof(ck_tile));
    if (!pl.tiles) {
        CK_FAIL(r->cx, RPU_ERR_NOMEM, NULL, "out of memory");
        return;
    }
    for (int k = 0; k < n; ++k)
        if (!f->scan[k].attr) f->scan[k].rows = f->scan[k].cols = -1; /* shapes vary */
    for (int t = 0; t < pl.attrs.n_tiles; ++t) {
        pl.tiles[t].n_items = n;
        pl.tiles[t].items = f->scan;
    }
    int stop = 0;
    ck_read_layer(lg, &pl, r, &stop);
    free(pl.tiles);
}

rpu_status rpu_ckpt_verify(rpu_ckpt_file *f, int64_t *objects) {
    if (objects) *objects = 0;
    if (!f) return RPU_FAIL(RPU_ERR_ARG, "rpu_ckpt_verify: file is NULL");
    ck_ctx cx = ck_ctx_for(f->path);
    rpu_h5_quiet q;
    rpu_h5_quiet_on(&q);
    ck_reader r = {&cx, H5Pcreate(H5P_DATASET_XFER), 2}; /* the root and /layers */
    hid_t lg = -1;
    if (r.dxpl < 0 || H5Pset_edc_check(r.dxpl, H5Z_ENABLE_EDC) < 0)
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "cannot set up HDF5");
    else
        lg = ck_open_obj(f->file, "layers", H5O_TYPE_GROUP, "/layers", &cx);
    if (lg >= 0 && ck_link_count(lg) != (hsize_t)f->n_layers)
        CK_FAIL(&cx, RPU_ERR_FORMAT, "/layers", "the layer list changed while reading");
    for (int i = 0; i < f->n_layers && cx.st == RPU_OK; ++i)
        verify_layer(f, i, lg, &r);
    if (cx.st == RPU_OK) verify_tree(f->file, "/", &r, 0);
    if (lg >= 0) H5Gclose(lg);
    if (r.dxpl >= 0) H5Pclose(r.dxpl);
    rpu_h5_quiet_off(&q);
    if (cx.st == RPU_OK && objects) *objects = r.objs;
    return cx.st;
}
