/* Checkpoints: the plan of a save or load — every tile's state items, the same on every
 * rank — the checks of the arguments (equal on every rank) and the size estimate of a
 * save.
 *
 * An item that is 1 x 1 in every tile of its layer (the counters, nm_running, the drift
 * time: "scalars" in tile.h) is stored as an attribute of the tile group, the others as
 * datasets. Attributes are metadata: every rank writes them with the same value (hence the
 * values in the plan), they cost no collective data transfer and live in the tile group's
 * checksummed object header. The rule depends only on the layer's shape and config, so
 * save and load agree on it. */
#include "ckpt_impl.h"

#include "rpusim/mapping.h"
#include "rpusim/tile.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One item as shared between ranks. */
typedef struct {
    int32_t layer, tile, k, n, dtype, rows, cols;
    char name[CK_ITEM_NAME];
    unsigned char value[8];
} ck_rec;

static rpu_ckpt_dtype state_dtype(rpu_state_type t) {
    return t == RPU_STATE_F32 ? RPU_CKPT_F32 : t == RPU_STATE_U64 ? RPU_CKPT_U64 : RPU_CKPT_F64;
}

void ck_plan_free(ck_lplan *pl, int n_layers) {
    if (!pl) return;
    for (int i = 0; i < n_layers; ++i) {
        if (pl[i].tiles)
            for (int t = 0; t < pl[i].attrs.n_tiles; ++t) {
                if (pl[i].tiles[t].buf)
                    for (int k = 0; k < pl[i].tiles[t].n_items; ++k)
                        free(pl[i].tiles[t].buf[k]);
                free(pl[i].tiles[t].buf);
                free(pl[i].tiles[t].items);
            }
        free(pl[i].tiles);
        free(pl[i].bias_buf);
        ck_lattrs_free(&pl[i].attrs);
    }
    free(pl);
}

/* This rank's records: the items of its owned tiles. 0, or -1 when out of memory. */
static int own_records(ck_lplan *pl, const rpu_ckpt_layer *layers, int n_layers, ck_rec **out,
                       size_t *n_out, ck_ctx *cx) {
    size_t n_rec = 0, cap = 0;
    ck_rec *rec = NULL;
    for (int i = 0; i < n_layers; ++i) {
        pl[i].layer = layers[i].layer;
        snprintf(pl[i].name, sizeof pl[i].name, "%s", layers[i].name);
        if (ck_lattrs_from_layer(layers[i].layer, &pl[i].attrs) != RPU_OK) goto nomem;
        pl[i].tiles = (ck_tile *)calloc((size_t)pl[i].attrs.n_tiles, sizeof(ck_tile));
        if (!pl[i].tiles) goto nomem;
        for (int t = 0; t < pl[i].attrs.n_tiles; ++t) {
            rpu_tile *tile = rpu_conv_tile_owned(layers[i].layer, t);
            if (!tile) continue;
            rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
            const int n = rpu_tile_state_items(tile, it, RPU_TILE_MAX_STATE_ITEMS);
            if (n_rec + (size_t)n > cap) {
                cap = 2 * cap + (size_t)n + 16;
                ck_rec *r = (ck_rec *)realloc(rec, cap * sizeof *rec);
                if (!r) goto nomem;
                rec = r;
            }
            for (int k = 0; k < n; ++k) {
                ck_rec *r = &rec[n_rec++];
                memset(r, 0, sizeof *r);
                r->layer = i;
                r->tile = t;
                r->k = k;
                r->n = n;
                r->dtype = (int32_t)state_dtype(it[k].type);
                r->rows = it[k].rows;
                r->cols = it[k].cols;
                if (it[k].count == 1) /* scalar values travel with the plan */
                    memcpy(r->value, it[k].data, ck_dtype_size(state_dtype(it[k].type)));
                if (strlen(it[k].name) >= CK_ITEM_NAME ||
                    !ck_valid_component(it[k].name, strlen(it[k].name)))
                    CK_FAIL(cx, RPU_ERR_INTERNAL, NULL, "state item name '%s' cannot be stored",
                            it[k].name);
                snprintf(r->name, sizeof r->name, "%s", it[k].name);
            }
        }
    }
    *out = rec;
    *n_out = n_rec;
    return 0;
nomem:
    free(rec);
    return -1;
}

/* Every rank's records on every rank (collective); NULL on failure (recorded). Every
 * allocation is agreed on before the collective that needs it, so that no rank skips a
 * collective the others make. */
static ck_rec *share_records(MPI_Comm comm, const ck_rec *rec, size_t n_rec, size_t *n_all,
                             ck_ctx *cx) {
    int size;
    MPI_Comm_size(comm, &size);
    const long long bytes = (long long)(n_rec * sizeof(ck_rec));
    if (bytes > INT_MAX) CK_FAIL(cx, RPU_ERR_UNSUPPORTED, NULL, "too many tile state items");
    const int mine = bytes > INT_MAX ? 0 : (int)bytes;
    int *counts = (int *)calloc((size_t)size, sizeof(int));
    int *displs = (int *)calloc((size_t)size, sizeof(int));
    ck_rec *all = NULL;
    long long total = 0;
    int have = counts && displs, all_have = 0;
    if (MPI_Allreduce(&have, &all_have, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS || !all_have) {
        CK_FAIL(cx, RPU_ERR_NOMEM, NULL, "out of memory (or MPI failure) sharing the tile items");
        goto done;
    }
    if (MPI_Allgather(&mine, 1, MPI_INT, counts, 1, MPI_INT, comm) != MPI_SUCCESS) {
        CK_FAIL(cx, RPU_ERR_MPI, NULL, "MPI_Allgather failed");
        goto done;
    }
    for (int r = 0; r < size; ++r) {
        displs[r] = (int)(total < INT_MAX ? total : 0);
        total += counts[r];
    }
    have = total <= INT_MAX && (all = (ck_rec *)malloc((size_t)(total > 0 ? total : 1))) != NULL;
    if (MPI_Allreduce(&have, &all_have, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS || !all_have) {
        CK_FAIL(cx, RPU_ERR_NOMEM, NULL,
                "out of memory (or too many items) sharing the tile items");
        free(all);
        all = NULL;
        goto done;
    }
    if (MPI_Allgatherv(rec, mine, MPI_BYTE, all, counts, displs, MPI_BYTE, comm) != MPI_SUCCESS) {
        CK_FAIL(cx, RPU_ERR_MPI, NULL, "MPI_Allgatherv failed");
        free(all);
        all = NULL;
    }
done:
    free(counts);
    free(displs);
    *n_all = all ? (size_t)total / sizeof(ck_rec) : 0;
    return all;
}

/* Distributes the records into the tiles (on every rank: the same result). */
static void place_records(ck_lplan *pl, int n_layers, const ck_rec *all, size_t nr, ck_ctx *cx) {
    for (size_t q = 0; q < nr && cx->st == RPU_OK; ++q) {
        const ck_rec *r = &all[q];
        if (r->layer < 0 || r->layer >= n_layers || r->tile < 0 ||
            r->tile >= pl[r->layer].attrs.n_tiles || r->k < 0 || r->k >= r->n) {
            CK_FAIL(cx, RPU_ERR_INTERNAL, NULL, "bad item record");
            return;
        }
        ck_tile *tt = &pl[r->layer].tiles[r->tile];
        if (!tt->items) {
            tt->items = (ck_item *)calloc((size_t)r->n, sizeof(ck_item));
            if (!tt->items) {
                CK_FAIL(cx, RPU_ERR_NOMEM, NULL, "out of memory");
                return;
            }
            tt->n_items = r->n;
        }
        ck_item *it = &tt->items[r->k];
        memcpy(it->name, r->name, sizeof it->name);
        it->name[CK_ITEM_NAME - 1] = '\0';
        it->dtype = r->dtype;
        it->rows = r->rows;
        it->cols = r->cols;
        memcpy(it->value, r->value, sizeof it->value);
    }
    for (int i = 0; i < n_layers && cx->st == RPU_OK; ++i)
        for (int t = 0; t < pl[i].attrs.n_tiles; ++t)
            if (!pl[i].tiles[t].items) {
                CK_FAIL(cx, RPU_ERR_INTERNAL, NULL, "layer '%s': tile %d has no owner", pl[i].name,
                        t);
                return;
            }
    /* attributes: the items that are 1 x 1 in every tile (tile.h: every tile of a layer
     * lists the same names in the same order; if not, everything is a dataset) */
    for (int i = 0; i < n_layers; ++i) {
        const ck_tile *t0 = &pl[i].tiles[0];
        int same = 1;
        for (int t = 1; t < pl[i].attrs.n_tiles && same; ++t) {
            const ck_tile *tt = &pl[i].tiles[t];
            same = tt->n_items == t0->n_items;
            for (int k = 0; k < t0->n_items && same; ++k)
                same = !strcmp(tt->items[k].name, t0->items[k].name);
        }
        for (int k = 0; same && k < t0->n_items; ++k) {
            int one = 1;
            for (int t = 0; t < pl[i].attrs.n_tiles && one; ++t)
                one = pl[i].tiles[t].items[k].rows == 1 && pl[i].tiles[t].items[k].cols == 1;
            for (int t = 0; t < pl[i].attrs.n_tiles; ++t)
                pl[i].tiles[t].items[k].attr = one;
        }
    }
}

ck_lplan *ck_plan_build(MPI_Comm comm, const rpu_ckpt_layer *layers, int n_layers, ck_ctx *cx) {
    ck_lplan *pl = (ck_lplan *)calloc((size_t)(n_layers > 0 ? n_layers : 1), sizeof *pl);
    ck_rec *rec = NULL;
    size_t n_rec = 0;
    const int ok = pl && own_records(pl, layers, n_layers, &rec, &n_rec, cx) == 0;
    if (!ok) CK_FAIL(cx, RPU_ERR_NOMEM, NULL, "out of memory");
    size_t n_all = 0;
    ck_rec *all = share_records(comm, rec, ok ? n_rec : 0, &n_all, cx);
    free(rec);
    if (all && ok && cx->st == RPU_OK) place_records(pl, n_layers, all, n_all, cx);
    free(all);
    return pl;
}

/* ------------------------------------------------------------------ argument checks */

uint64_t ck_hash_i64(uint64_t h, int64_t v) {
    unsigned char b[sizeof v];
    memcpy(b, &v, sizeof v);
    for (size_t i = 0; i < sizeof b; ++i)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; ++i)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

uint64_t ck_hash_str(uint64_t h, const char *s) {
    return hash_bytes(h, s ? s : "", (s ? strlen(s) : 0) + 1);
}

static const char *layer_name_problem(const rpu_ckpt_layer *layers, int i) {
    const char *n = layers[i].name;
    if (!n) return "is NULL";
    if (strlen(n) >= CK_LAYER_NAME) return "is longer than 63 characters";
    if (!ck_valid_component(n, strlen(n))) return "must be made of [A-Za-z0-9_.-] (not . or ..)";
    for (int k = 0; k < i; ++k)
        if (layers[k].name && !strcmp(layers[k].name, n)) return "is used twice";
    return NULL;
}

/* Checks layer i; returns its contribution to the hash. */
static uint64_t check_layer(MPI_Comm comm, const rpu_ckpt_layer *layers, int i, uint64_t h,
                            ck_ctx *cx) {
    const char *prob = layer_name_problem(layers, i);
    if (prob) {
        CK_FAIL(cx, RPU_ERR_ARG, NULL, "layer %d: name '%s' %s", i,
                layers[i].name ? layers[i].name : "(null)", prob);
        return h;
    }
    if (!layers[i].layer) {
        CK_FAIL(cx, RPU_ERR_ARG, NULL, "layer '%s' is NULL", layers[i].name);
        return h;
    }
    int cmp = MPI_UNEQUAL;
    MPI_Comm_compare(comm, rpu_conv_comm(layers[i].layer), &cmp);
    if (cmp != MPI_CONGRUENT && cmp != MPI_IDENT) {
        CK_FAIL(cx, RPU_ERR_ARG, NULL,
                "layer '%s' lives on a communicator with other ranks or another rank order "
                "than the checkpoint's",
                layers[i].name);
        return h;
    }
    const rpu_conv_params *p = rpu_conv_get_params(layers[i].layer);
    h = ck_hash_str(h, layers[i].name);
    const int32_t v[16] = {
        p->ndim,       p->in_channels,       p->out_channels, p->groups,
        p->bias,       (int32_t)p->layer_id, p->kernel[0],    p->kernel[1],
        p->kernel[2],  p->stride[0],         p->stride[1],    p->stride[2],
        p->padding[0], p->padding[1],        p->padding[2],   rpu_conv_is_linear(layers[i].layer)};
    h = hash_bytes(h, v, sizeof v);
    h = ck_hash_i64(h, (int64_t)p->split);
    return ck_hash_i64(h, (int64_t)p->seed);
}

/* Checks array i; returns its contribution to the hash. */
static uint64_t check_array(const rpu_ckpt_array *arrays, int i, bool saving, uint64_t h,
                            ck_ctx *cx) {
    const rpu_ckpt_array *a = &arrays[i];
    if (!ck_valid_array_path(a->path)) {
        CK_FAIL(cx, RPU_ERR_ARG, NULL,
                "array %d: path '%s' must be components of [A-Za-z0-9_.-] separated by '/', "
                "not starting with 'layers', at most %d characters",
                i, a->path ? a->path : "(null)", CK_ARRAY_PATH - 1);
        return h;
    }
    for (int k = 0; k < i; ++k)
        if (!strcmp(arrays[k].path, a->path)) {
            CK_FAIL(cx, RPU_ERR_ARG, NULL, "array path '%s' is used twice", a->path);
            return h;
        }
    if (!ck_valid_dtype((int)a->dtype)) {
        CK_FAIL(cx, RPU_ERR_ARG, NULL, "array '%s': unknown dtype %d", a->path, (int)a->dtype);
        return h;
    }
    h = ck_hash_str(h, a->path);
    h = ck_hash_i64(h, (int64_t)a->dtype);
    if (!saving && !a->check_shape) return h;
    if (a->ndim < 1 || a->ndim > RPU_CKPT_MAX_DIMS) {
        CK_FAIL(cx, RPU_ERR_ARG, NULL, "array '%s': ndim %d, must be 1..%d", a->path, a->ndim,
                RPU_CKPT_MAX_DIMS);
        return h;
    }
    int64_t cnt = 1;
    for (int d = 0; d < a->ndim; ++d) {
        if (a->dims[d] < 0 || (a->dims[d] > 0 && cnt > INT64_MAX / a->dims[d])) {
            CK_FAIL(cx, RPU_ERR_ARG, NULL,
                    "array '%s': dims[%d] = %lld (dims must be >= 0 with a product of at most "
                    "INT64_MAX)",
                    a->path, d, (long long)a->dims[d]);
            return h;
        }
        cnt *= a->dims[d];
    }
    if (saving && cnt > 0 && !a->data) {
        CK_FAIL(cx, RPU_ERR_ARG, NULL, "array '%s': data is NULL", a->path);
        return h;
    }
    h = ck_hash_i64(h, a->ndim);
    return hash_bytes(h, a->dims, (size_t)a->ndim * sizeof a->dims[0]);
}

uint64_t ck_check_args(MPI_Comm comm, const rpu_ckpt_layer *layers, int n_layers,
                       const rpu_ckpt_array *arrays, int n_arrays, bool saving, ck_ctx *cx) {
    uint64_t h = 1469598103934665603ull;
    if (n_layers < 0 || (n_layers > 0 && !layers) || n_arrays < 0 || (n_arrays > 0 && !arrays)) {
        CK_FAIL(cx, RPU_ERR_ARG, NULL, "bad layer or array list (n_layers %d, n_arrays %d)",
                n_layers, n_arrays);
        return h;
    }
    h = ck_hash_i64(h, n_layers);
    for (int i = 0; i < n_layers && cx->st == RPU_OK; ++i)
        h = check_layer(comm, layers, i, h, cx);
    h = ck_hash_i64(h, n_arrays);
    for (int i = 0; i < n_arrays && cx->st == RPU_OK; ++i)
        h = check_array(arrays, i, saving, h, cx);
    return h;
}

void ck_check_same(MPI_Comm comm, uint64_t h, ck_ctx *cx) {
    uint64_t v[2] = {h, ~h}, m[2] = {0, 0};
    if (MPI_Allreduce(v, m, 2, MPI_UINT64_T, MPI_MAX, comm) != MPI_SUCCESS) {
        CK_FAIL(cx, RPU_ERR_MPI, NULL, "MPI_Allreduce failed");
        return;
    }
    if (m[0] != v[0] || m[1] != v[1])
        CK_FAIL(cx, RPU_ERR_ARG, NULL,
                "the layers or arrays passed differ between ranks (names, shapes, paths, types)");
}

/* ------------------------------------------------------------------ size estimate */

/* Bounds of HDF5's metadata in bytes, from files of this schema (h5stat: 1.10 object
 * headers, slack included, take ~290 B per dataset and ~1.1 kB per tile group with its 11
 * attributes and 6 links) with room to spare: a dataset's header, a group's header
 * without its attributes and links, one attribute without its name and value, one link
 * without its name, one chunk's index entry and Fletcher32 checksum, and a fixed part
 * (superblock, root group, aggregator blocks left partly unused). */
#define EST_DATASET 384
#define EST_GROUP 256
#define EST_ATTR 80
#define EST_LINK 48
#define EST_CHUNK 40
#define EST_FIXED (256 * 1024)

/* Header, data and chunk overhead of a dataset of n elements of `bytes` bytes, and its
 * link. */
static int64_t dataset_bytes(int64_t n, int64_t bytes) {
    const int64_t chunks = n > 0 ? (n + CK_CHUNK_ELEMS - 1) / CK_CHUNK_ELEMS : 0;
    return EST_LINK + EST_DATASET + n * bytes + chunks * EST_CHUNK;
}

int64_t ck_plan_file_bytes(const ck_lplan *pl, int n_layers, const rpu_ckpt_array *arrays,
                           int n_arrays, int64_t config_bytes) {
    /* the root with its attributes, /layers */
    int64_t b = EST_FIXED + 2 * config_bytes + 12 * EST_ATTR + EST_GROUP + EST_LINK;
    for (int i = 0; i < n_layers; ++i) {
        const ck_lattrs *a = &pl[i].attrs;
        /* the layer and its tiles group, 20 attributes with the config text */
        b += 2 * (EST_GROUP + EST_LINK) + 20 * EST_ATTR + 2 * (int64_t)strlen(a->rpu_config) +
             8 * (int64_t)(a->n_in + a->n_out);
        if (!strcmp(a->bias, "digital")) b += dataset_bytes(a->out_ch, 4);
        for (int t = 0; t < a->n_tiles; ++t) {
            const ck_tile *ct = &pl[i].tiles[t];
            b += EST_GROUP + EST_LINK + 48;
            for (int k = 0; k < ct->n_items; ++k) {
                const ck_item *it = &ct->items[k];
                const int64_t sz = (int64_t)ck_dtype_size((rpu_ckpt_dtype)it->dtype);
                const int64_t name = (int64_t)strlen(it->name);
                if (it->attr)
                    b += EST_ATTR + name + sz;
                else
                    b += name + dataset_bytes((int64_t)it->rows * it->cols, sz);
            }
        }
    }
    for (int i = 0; i < n_arrays; ++i) {
        const rpu_ckpt_array *a = &arrays[i];
        int64_t n = 1;
        for (int d = 0; d < a->ndim; ++d)
            n *= a->dims[d];
        /* the dataset and at most one new group on its path */
        b += EST_GROUP + EST_LINK + (int64_t)strlen(a->path) +
             dataset_bytes(n, (int64_t)ck_dtype_size(a->dtype));
    }
    return b + b / 64; /* and 1.5 % for the allocator's alignment */
}
