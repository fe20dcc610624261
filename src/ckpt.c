/* HDF5 checkpoints (DESIGN.md "Checkpoint"; schema in README.md "Checkpoints").
 *
 * Parallel HDF5 1.10: the file is opened with the MPI-IO driver, collective metadata reads
 * and writes (H5Pset_all_coll_metadata_ops, H5Pset_coll_metadata_write) and collective data
 * transfers. Every tile dataset is chunked with the Fletcher32 filter; HDF5 1.10 writes
 * filtered datasets in parallel only collectively, so every rank takes part in every
 * H5Dwrite and H5Dread, the owner of a tile with the whole selection and the others with
 * empty ones. Underneath, MPI-IO writes independently (H5FD_MPIO_INDIVIDUAL_IO): every
 * chunk has one writer, so two-phase collective buffering has nothing to merge, and it was
 * 20-35 % faster per dataset. The 1 x 1 state items are attributes of their tile group
 * (metadata, written by every rank with the value shared in the plan): no collective data
 * transfer for them. Attributes and links live in version-2 object headers (library format
 * v1.10) with their own checksums; attributes are kept in the header (compact storage),
 * never in the unchecksummed global heap.
 *
 * Collectivity: every rank makes the same sequence of HDF5 calls. A failure that depends
 * only on the file's metadata (missing object, wrong shape) happens on every rank at the
 * same point (collective metadata reads give every rank the same bytes) and all stop there;
 * a failure of one rank's own data (a checksum, an allocation, an injected write failure)
 * is recorded and that rank keeps taking part with empty selections. ck_agree() then gives
 * every rank the first failing rank's status and message. */
#define _POSIX_C_SOURCE 200809L /* fsync, link, O_DIRECTORY, strdup */
#include "rpusim/ckpt.h"

#include "rpusim/config.h"
#include "rpusim/mapping.h"
#include "rpusim/tile.h"

#include "error_impl.h"

#include <hdf5.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef RPUSIM_VERSION
#define RPUSIM_VERSION "unknown"
#endif

#define CK_ITEM_NAME 48          /* longest state item name + NUL */
#define CK_LAYER_NAME 64         /* longest layer name + NUL */
#define CK_ARRAY_PATH 256        /* longest extra array path + NUL */
#define CK_CHUNK_ELEMS (1 << 20) /* elements per chunk (4 MiB of float32) */
#define CK_MSG 1024
#define CK_COMPACT_ATTRS 1000 /* attributes kept in the (checksummed) object header */
#define CK_COMPACT_LINKS                                                                           \
    64 /* links kept in the object header up to this count (more: dense                            \
          storage; a compact header scan would cost O(links^2)) */
#define CK_MAX_SPLITS 65536

/* ------------------------------------------------------------------ errors */

typedef struct {
    const char *path; /* the checkpoint named in messages */
    rpu_status st;    /* first failure on this rank */
    char msg[CK_MSG]; /* its message */
    char where[128];  /* and where it was detected (rpu_last_error_location) */
} ck_ctx;

static rpu_status ck_fail_at(ck_ctx *cx, rpu_status code, const char *file, int line,
                             const char *obj, const char *fmt, ...) RPU_PRINTF(6, 7);

static rpu_status ck_fail_at(ck_ctx *cx, rpu_status code, const char *file, int line,
                             const char *obj, const char *fmt, ...) {
    if (cx->st != RPU_OK) return code; /* keep the first failure: it is the cause */
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (obj)
        rpu_error_at(code, file, line, "checkpoint %s: %s: %s", cx->path, obj, what);
    else
        rpu_error_at(code, file, line, "checkpoint %s: %s", cx->path, what);
    cx->st = code;
    snprintf(cx->msg, sizeof cx->msg, "%s", rpu_error_message());
    snprintf(cx->where, sizeof cx->where, "%s", rpu_last_error_location());
    return code;
}
#define CK_FAIL(cx, code, obj, ...) ck_fail_at((cx), (code), __FILE__, __LINE__, (obj), __VA_ARGS__)

/* The innermost message of HDF5's error stack (then cleared), e.g. "data error detected by
 * Fletcher32 checksum". */
static herr_t why_cb(unsigned n, const H5E_error2_t *e, void *data) {
    char *buf = (char *)data;
    if (n == 0) {
        char minor[160] = "";
        H5Eget_msg(e->min_num, NULL, minor, sizeof minor);
        const char *d = e->desc ? e->desc : "";
        snprintf(buf, 320, "%s%s%s", d, *d && *minor ? "; " : "", minor);
    }
    return 0;
}
static const char *h5_why(char buf[320]) {
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, why_cb, buf);
    H5Eclear2(H5E_DEFAULT);
    if (!buf[0]) snprintf(buf, 320, "HDF5 error");
    return buf;
}

/* HDF5's automatic error printing is switched off for the duration of a call. */
typedef struct {
    H5E_auto2_t func;
    void *data;
} ck_quiet;
static void quiet_on(ck_quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void quiet_off(const ck_quiet *q) {
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

/* Every rank gets the status and message of the lowest failing rank (collective). */
static rpu_status ck_agree(MPI_Comm comm, ck_ctx *cx) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int mine = cx->st != RPU_OK ? rank : size, first = size;
    if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS) {
        rpu_status s = RPU_FAIL(RPU_ERR_MPI, "checkpoint %s: MPI_Allreduce failed", cx->path);
        cx->st = s;
        return s;
    }
    if (first == size) return RPU_OK;
    struct {
        int st;
        char msg[CK_MSG];
        char where[128];
    } m;
    memset(&m, 0, sizeof m);
    if (rank == first) {
        m.st = (int)cx->st;
        memcpy(m.msg, cx->msg, sizeof m.msg);
        memcpy(m.where, cx->where, sizeof m.where);
    }
    if (MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, first, comm) != MPI_SUCCESS) {
        rpu_status s = RPU_FAIL(RPU_ERR_MPI, "checkpoint %s: MPI_Bcast failed", cx->path);
        cx->st = s;
        return s;
    }
    m.msg[CK_MSG - 1] = '\0';
    m.where[sizeof m.where - 1] = '\0';
    cx->st = (rpu_status)m.st;
    /* re-record with the original location so that every rank shows the same text */
    char text[CK_MSG + 32];
    if (size > 1)
        snprintf(text, sizeof text, "%s (on rank %d)", m.msg, first);
    else
        snprintf(text, sizeof text, "%s", m.msg);
    rpu_error_set(cx->st, text, m.where);
    snprintf(cx->msg, sizeof cx->msg, "%s", rpu_error_message());
    snprintf(cx->where, sizeof cx->where, "%s", m.where);
    return cx->st;
}

/* ------------------------------------------------------------------ small helpers */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; ++i) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}
static uint64_t fnv_i64(uint64_t h, int64_t v) {
    unsigned char b[sizeof v];
    memcpy(b, &v, sizeof v);
    return fnv(h, b, sizeof b);
}
static uint64_t fnv_str(uint64_t h, const char *s) {
    return fnv(h, s ? s : "", (s ? strlen(s) : 0) + 1);
}

static int valid_component(const char *s, size_t n) {
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
    for (size_t i = 0; i < n; ++i) {
        const char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int valid_array_path(const char *p) {
    if (!p || strlen(p) >= CK_ARRAY_PATH) return 0;
    const char *s = p;
    int first = 1;
    for (;;) {
        const char *e = strchr(s, '/');
        const size_t n = e ? (size_t)(e - s) : strlen(s);
        if (!valid_component(s, n)) return 0;
        if (first && n == 6 && !strncmp(s, "layers", 6)) return 0;
        first = 0;
        if (!e) return 1;
        s = e + 1;
    }
}

static hid_t file_type(rpu_ckpt_dtype t) {
    switch (t) {
    case RPU_CKPT_F32:
        return H5T_IEEE_F32LE;
    case RPU_CKPT_F64:
        return H5T_IEEE_F64LE;
    case RPU_CKPT_I32:
        return H5T_STD_I32LE;
    case RPU_CKPT_I64:
        return H5T_STD_I64LE;
    case RPU_CKPT_U64:
        return H5T_STD_U64LE;
    case RPU_CKPT_U8:
        return H5T_STD_U8LE;
    }
    return -1;
}
static hid_t mem_type(rpu_ckpt_dtype t) {
    switch (t) {
    case RPU_CKPT_F32:
        return H5T_NATIVE_FLOAT;
    case RPU_CKPT_F64:
        return H5T_NATIVE_DOUBLE;
    case RPU_CKPT_I32:
        return H5T_NATIVE_INT32;
    case RPU_CKPT_I64:
        return H5T_NATIVE_INT64;
    case RPU_CKPT_U64:
        return H5T_NATIVE_UINT64;
    case RPU_CKPT_U8:
        return H5T_NATIVE_UINT8;
    }
    return -1;
}
static size_t dtype_size(rpu_ckpt_dtype t) {
    switch (t) {
    case RPU_CKPT_F32:
    case RPU_CKPT_I32:
        return 4;
    case RPU_CKPT_F64:
    case RPU_CKPT_I64:
    case RPU_CKPT_U64:
        return 8;
    case RPU_CKPT_U8:
        return 1;
    }
    return 0;
}
static const char *dtype_name(int t) {
    static const char *const names[] = {"float32", "float64", "int32", "int64", "uint64", "uint8"};
    return t >= 0 && t <= RPU_CKPT_U8 ? names[t] : "unknown type";
}
static int valid_dtype(int t) {
    return t >= RPU_CKPT_F32 && t <= RPU_CKPT_U8;
}
/* The rpu_ckpt_dtype of a stored type, -1 if it is none of them. */
static int dtype_of(hid_t type) {
    for (int k = RPU_CKPT_F32; k <= RPU_CKPT_U8; ++k)
        if (H5Tequal(type, file_type((rpu_ckpt_dtype)k)) > 0) return k;
    return -1;
}
static rpu_ckpt_dtype state_dtype(rpu_state_type t) {
    return t == RPU_STATE_F32 ? RPU_CKPT_F32 : t == RPU_STATE_U64 ? RPU_CKPT_U64 : RPU_CKPT_F64;
}

static void tile_key(int groups, int n_in, int n_out, int t, char key[48]) {
    const int j = t % n_out, i = (t / n_out) % n_in, g = t / (n_out * n_in);
    if (groups > 1)
        snprintf(key, 48, "g%d_%d_%d", g, i, j);
    else
        snprintf(key, 48, "%d_%d", i, j);
}

static char *str_printf(const char *fmt, ...) RPU_PRINTF(1, 2);
static char *str_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = (char *)malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* ------------------------------------------------------------------ attributes */

/* Writes a scalar (n < 0) or 1-d (n >= 0) attribute. Returns 0 or -1. */
static int attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, int n, const void *v) {
    hsize_t d = (hsize_t)(n < 0 ? 0 : n);
    hid_t sp = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, NULL);
    if (sp < 0) return -1;
    hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, mtype, v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok ? 0 : -1;
}
static int attr_write_str(hid_t obj, const char *name, const char *s) {
    /* fixed length, NUL-terminated: stored inside the (checksummed) object header */
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    int ok = H5Tset_size(t, strlen(s) + 1) >= 0 && H5Tset_strpad(t, H5T_STR_NULLTERM) >= 0 &&
             H5Tset_cset(t, H5T_CSET_UTF8) >= 0 && attr_write(obj, name, t, t, -1, s) == 0;
    H5Tclose(t);
    return ok ? 0 : -1;
}
static int attr_write_i32(hid_t obj, const char *name, int v) {
    int32_t x = v;
    return attr_write(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, -1, &x);
}
static int attr_write_i32s(hid_t obj, const char *name, const int *v, int n) {
    int32_t *y = (int32_t *)malloc((size_t)n * sizeof *y);
    if (!y) return -1;
    for (int i = 0; i < n; ++i)
        y[i] = v[i];
    int r = attr_write(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, n, y);
    free(y);
    return r;
}

/* An open attribute with its type and dataspace (any of them < 0 when opening failed). */
typedef struct {
    hid_t a, t, sp;
} attr_h;

static attr_h attr_open(hid_t obj, const char *name) {
    attr_h h;
    h.a = H5Aopen(obj, name, H5P_DEFAULT);
    h.t = h.a >= 0 ? H5Aget_type(h.a) : -1;
    h.sp = h.a >= 0 ? H5Aget_space(h.a) : -1;
    return h;
}

static int attr_ok(const attr_h *h) {
    return h->a >= 0 && h->t >= 0 && h->sp >= 0;
}

static void attr_close(attr_h *h) {
    if (h->sp >= 0) H5Sclose(h->sp);
    if (h->t >= 0) H5Tclose(h->t);
    if (h->a >= 0) H5Aclose(h->a);
    h->a = h->t = h->sp = -1;
}

/* Attribute reads fill `why` (>= 160 bytes) on failure and return -1. */

/* An integer attribute, scalar or 1-d with at most max values, as int64. */
static int attr_read_ints(hid_t obj, const char *name, int64_t *v, int max, int *n, char *why) {
    if (H5Aexists(obj, name) <= 0) {
        snprintf(why, 160, "attribute '%s' is missing", name);
        return -1;
    }
    attr_h h = attr_open(obj, name);
    int r = -1;
    if (!attr_ok(&h)) {
        char w[320];
        snprintf(why, 160, "attribute '%s' unreadable (%.100s)", name, h5_why(w));
    } else if (H5Tget_class(h.t) != H5T_INTEGER) {
        snprintf(why, 160, "attribute '%s' is not an integer", name);
    } else {
        const int nd = H5Sget_simple_extent_ndims(h.sp);
        const hssize_t np = H5Sget_simple_extent_npoints(h.sp);
        if (nd < 0 || nd > 1 || np < 0 || np > max) {
            snprintf(why, 160, "attribute '%s' has %lld values, expected at most %d", name,
                     (long long)np, max);
        } else if (np > 0 && H5Aread(h.a, H5T_NATIVE_INT64, v) < 0) {
            char w[320];
            snprintf(why, 160, "attribute '%s' unreadable (%.100s)", name, h5_why(w));
        } else {
            *n = (int)np;
            r = 0;
        }
    }
    attr_close(&h);
    return r;
}
static int attr_read_int(hid_t obj, const char *name, int64_t *v, char *why) {
    int n = 0;
    if (attr_read_ints(obj, name, v, 1, &n, why) < 0) return -1;
    if (n != 1) {
        snprintf(why, 160, "attribute '%s' has no value", name);
        return -1;
    }
    return 0;
}
static int attr_read_u64(hid_t obj, const char *name, uint64_t *v, char *why) {
    if (H5Aexists(obj, name) <= 0) {
        snprintf(why, 160, "attribute '%s' is missing", name);
        return -1;
    }
    attr_h h = attr_open(obj, name);
    int r = -1;
    if (!attr_ok(&h) || H5Tget_class(h.t) != H5T_INTEGER ||
        H5Sget_simple_extent_npoints(h.sp) != 1) {
        snprintf(why, 160, "attribute '%s' is not one integer", name);
    } else if (H5Aread(h.a, H5T_NATIVE_UINT64, v) < 0) {
        char w[320];
        snprintf(why, 160, "attribute '%s' unreadable (%.100s)", name, h5_why(w));
    } else {
        r = 0;
    }
    attr_close(&h);
    return r;
}
/* A string attribute (fixed or variable length) into a malloc'ed string. */
static int attr_read_str(hid_t obj, const char *name, char **out, char *why) {
    *out = NULL;
    if (H5Aexists(obj, name) <= 0) {
        snprintf(why, 160, "attribute '%s' is missing", name);
        return -1;
    }
    attr_h h = attr_open(obj, name);
    int r = -1;
    if (!attr_ok(&h) || H5Tget_class(h.t) != H5T_STRING ||
        H5Sget_simple_extent_npoints(h.sp) != 1) {
        snprintf(why, 160, "attribute '%s' is not one string", name);
    } else if (H5Tis_variable_str(h.t) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        char *p = NULL;
        if (mt >= 0 && H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(h.a, mt, &p) >= 0 && p) {
            *out = strdup(p);
            H5free_memory(p);
            if (*out)
                r = 0;
            else
                snprintf(why, 160, "out of memory");
        } else {
            snprintf(why, 160, "attribute '%s' unreadable", name);
        }
        if (mt >= 0) H5Tclose(mt);
    } else {
        const size_t sz = H5Tget_size(h.t);
        char *buf = sz > 0 && sz < (1u << 30) ? (char *)malloc(sz + 1) : NULL;
        if (!buf) {
            snprintf(why, 160, "attribute '%s': bad size %zu", name, sz);
        } else if (H5Aread(h.a, h.t, buf) < 0) {
            char w[320];
            snprintf(why, 160, "attribute '%s' unreadable (%.100s)", name, h5_why(w));
            free(buf);
        } else {
            buf[sz] = '\0';
            *out = buf;
            r = 0;
        }
    }
    attr_close(&h);
    return r;
}

/* ------------------------------------------------------------------ layer description */

/* Everything a layer group's attributes say about the layer. */
typedef struct {
    char type[8];
    int ndim; /* 0: linear */
    int in_ch, out_ch, groups;
    int kernel[3], stride[3], padding[3], dilation[3];
    char padding_mode[16];
    char bias[8];
    uint32_t layer_id;
    uint64_t seed;
    char mac[8];
    int use_indexed;
    int n_in, n_out, n_tiles;
    int *in_split, *out_split;
    char *rpu_config;
} ck_lattrs;

static void lattrs_free(ck_lattrs *a) {
    free(a->in_split);
    free(a->out_split);
    free(a->rpu_config);
    a->in_split = a->out_split = NULL;
    a->rpu_config = NULL;
}

static const char *pad_mode_name(rpu_padding_mode m) {
    switch (m) {
    case RPU_PAD_ZEROS:
        return "zeros";
    case RPU_PAD_REFLECT:
        return "reflect";
    case RPU_PAD_REPLICATE:
        return "replicate";
    case RPU_PAD_CIRCULAR:
        return "circular";
    }
    return "unknown";
}

static rpu_status lattrs_from_layer(rpu_conv *l, ck_lattrs *a) {
    memset(a, 0, sizeof *a);
    const rpu_conv_params *p = rpu_conv_get_params(l);
    const rpu_tile_grid *g = rpu_conv_grid(l);
    const bool lin = rpu_conv_is_linear(l);
    a->ndim = lin ? 0 : p->ndim;
    if (lin)
        snprintf(a->type, sizeof a->type, "linear");
    else
        snprintf(a->type, sizeof a->type, "conv%dd", p->ndim);
    a->in_ch = p->in_channels;
    a->out_ch = p->out_channels;
    a->groups = lin ? 1 : p->groups;
    for (int d = 0; d < a->ndim; ++d) {
        a->kernel[d] = p->kernel[d];
        a->stride[d] = p->stride[d];
        a->padding[d] = p->padding[d];
        a->dilation[d] = p->dilation[d];
    }
    snprintf(a->padding_mode, sizeof a->padding_mode, "%s", pad_mode_name(p->padding_mode));
    snprintf(a->bias, sizeof a->bias, "%s",
             !p->bias         ? "none"
             : g->analog_bias ? "analog"
                              : "digital");
    a->layer_id = p->layer_id;
    a->seed = p->seed;
    snprintf(a->mac, sizeof a->mac, "%s", p->mac == RPU_MAC_EXACT ? "exact" : "blas");
    a->use_indexed = p->use_indexed ? 1 : 0;
    a->n_in = g->n_in;
    a->n_out = g->n_out;
    a->n_tiles = g->n_tiles;
    a->in_split = (int *)malloc((size_t)g->n_in * sizeof(int));
    a->out_split = (int *)malloc((size_t)g->n_out * sizeof(int));
    if (!a->in_split || !a->out_split) {
        lattrs_free(a);
        return RPU_FAIL(RPU_ERR_NOMEM, "checkpoint: out of memory");
    }
    for (int i = 0; i < g->n_in; ++i)
        a->in_split[i] = g->tiles[(size_t)i * (size_t)g->n_out].in_ch;
    for (int j = 0; j < g->n_out; ++j)
        a->out_split[j] = g->tiles[j].out_ch;
    rpu_status s = rpu_config_to_text(rpu_conv_config(l), &a->rpu_config);
    if (s != RPU_OK) lattrs_free(a);
    return s;
}

static int lattrs_write(hid_t g, const ck_lattrs *a) {
    int e = 0;
    e |= attr_write_str(g, "type", a->type);
    e |= attr_write_i32(g, "in_channels", a->in_ch);
    e |= attr_write_i32(g, "out_channels", a->out_ch);
    if (a->ndim > 0) {
        e |= attr_write_i32s(g, "kernel", a->kernel, a->ndim);
        e |= attr_write_i32s(g, "stride", a->stride, a->ndim);
        e |= attr_write_i32s(g, "padding", a->padding, a->ndim);
        e |= attr_write_i32s(g, "dilation", a->dilation, a->ndim);
        e |= attr_write_str(g, "padding_mode", a->padding_mode);
        e |= attr_write_i32(g, "use_indexed", a->use_indexed);
    }
    e |= attr_write_i32(g, "groups", a->groups);
    e |= attr_write_str(g, "bias", a->bias);
    e |= attr_write_i32s(g, "in_split_sizes", a->in_split, a->n_in);
    e |= attr_write_i32s(g, "out_split_sizes", a->out_split, a->n_out);
    e |= attr_write(g, "layer_id", H5T_STD_U32LE, H5T_NATIVE_UINT32, -1, &a->layer_id);
    e |= attr_write(g, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, -1, &a->seed);
    e |= attr_write_str(g, "mac", a->mac);
    e |= attr_write_str(g, "rpu_config", a->rpu_config);
    return e ? -1 : 0;
}

static int read_small_str(hid_t g, const char *name, char *dst, size_t cap, char *why) {
    char *s = NULL;
    if (attr_read_str(g, name, &s, why) < 0) return -1;
    if (strlen(s) >= cap) {
        snprintf(why, 160, "attribute '%s' is too long", name);
        free(s);
        return -1;
    }
    snprintf(dst, cap, "%s", s);
    free(s);
    return 0;
}

static int read_split(hid_t g, const char *name, int **out, int *n, char *why) {
    int64_t *v = (int64_t *)malloc(CK_MAX_SPLITS * sizeof *v);
    if (!v) {
        snprintf(why, 160, "out of memory");
        return -1;
    }
    int cnt = 0;
    int r = attr_read_ints(g, name, v, CK_MAX_SPLITS, &cnt, why);
    if (r == 0 && cnt < 1) {
        snprintf(why, 160, "attribute '%s' is empty", name);
        r = -1;
    }
    if (r == 0) {
        *out = (int *)malloc((size_t)cnt * sizeof(int));
        if (!*out) {
            snprintf(why, 160, "out of memory");
            r = -1;
        }
        for (int i = 0; r == 0 && i < cnt; ++i) {
            if (v[i] < 1 || v[i] > INT_MAX) {
                snprintf(why, 160, "attribute '%s' holds %lld", name, (long long)v[i]);
                r = -1;
            } else {
                (*out)[i] = (int)v[i];
            }
        }
        *n = cnt;
    }
    free(v);
    return r;
}

/* Reads a layer group's attributes (why: first problem). */
static int lattrs_read(hid_t g, ck_lattrs *a, char *why) {
    memset(a, 0, sizeof *a);
    int64_t v[3];
    int n;
    if (read_small_str(g, "type", a->type, sizeof a->type, why) < 0) return -1;
    if (!strcmp(a->type, "linear"))
        a->ndim = 0;
    else if (!strcmp(a->type, "conv1d"))
        a->ndim = 1;
    else if (!strcmp(a->type, "conv2d"))
        a->ndim = 2;
    else if (!strcmp(a->type, "conv3d"))
        a->ndim = 3;
    else {
        snprintf(why, 160, "unknown layer type '%s'", a->type);
        return -1;
    }
    if (attr_read_int(g, "in_channels", v, why) < 0) return -1;
    a->in_ch = (int)v[0];
    if (attr_read_int(g, "out_channels", v, why) < 0) return -1;
    a->out_ch = (int)v[0];
    if (attr_read_int(g, "groups", v, why) < 0) return -1;
    a->groups = (int)v[0];
    if (a->in_ch < 1 || a->out_ch < 1 || a->groups < 1) {
        snprintf(why, 160, "channels %d -> %d, groups %d are invalid", a->in_ch, a->out_ch,
                 a->groups);
        return -1;
    }
    snprintf(a->padding_mode, sizeof a->padding_mode, "zeros");
    if (a->ndim > 0) {
        static const char *const names[4] = {"kernel", "stride", "padding", "dilation"};
        int *dst[4] = {a->kernel, a->stride, a->padding, a->dilation};
        for (int k = 0; k < 4; ++k) {
            if (attr_read_ints(g, names[k], v, 3, &n, why) < 0) return -1;
            if (n != a->ndim) {
                snprintf(why, 160, "attribute '%s' has %d values for a %s", names[k], n, a->type);
                return -1;
            }
            for (int d = 0; d < n; ++d)
                dst[k][d] = (int)v[d];
        }
        if (read_small_str(g, "padding_mode", a->padding_mode, sizeof a->padding_mode, why) < 0)
            return -1;
        if (attr_read_int(g, "use_indexed", v, why) < 0) return -1;
        a->use_indexed = v[0] != 0;
    }
    if (read_small_str(g, "bias", a->bias, sizeof a->bias, why) < 0) return -1;
    if (strcmp(a->bias, "none") && strcmp(a->bias, "digital") && strcmp(a->bias, "analog")) {
        snprintf(why, 160, "bias is '%s' (none, digital or analog)", a->bias);
        return -1;
    }
    if (read_split(g, "in_split_sizes", &a->in_split, &a->n_in, why) < 0) goto fail;
    if (read_split(g, "out_split_sizes", &a->out_split, &a->n_out, why) < 0) goto fail;
    if ((int64_t)a->groups * a->n_in * a->n_out > INT_MAX) {
        snprintf(why, 160, "too many tiles");
        goto fail;
    }
    a->n_tiles = a->groups * a->n_in * a->n_out;
    if (attr_read_int(g, "layer_id", v, why) < 0) goto fail;
    a->layer_id = (uint32_t)v[0];
    if (attr_read_u64(g, "seed", &a->seed, why) < 0) goto fail;
    if (read_small_str(g, "mac", a->mac, sizeof a->mac, why) < 0) goto fail;
    if (attr_read_str(g, "rpu_config", &a->rpu_config, why) < 0) goto fail;
    return 0;
fail:
    lattrs_free(a);
    return -1;
}

static int ints_equal(const int *a, const int *b, int n) {
    for (int i = 0; i < n; ++i)
        if (a[i] != b[i]) return 0;
    return 1;
}
static void ints_text(const int *v, int n, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && o + 16 < cap; ++i)
        o += (size_t)snprintf(buf + o, cap - o, "%s%d", i ? "," : "", v[i]);
    if (n > 0 && o + 16 >= cap) snprintf(buf + o, cap - o, ",...");
}

/* Compares the file's layer description f with the model's m; why gets the first
 * difference. */
static int lattrs_match(const ck_lattrs *f, const ck_lattrs *m, char *why) {
    char x[96], y[96];
    if (strcmp(f->type, m->type)) {
        snprintf(why, 320, "type is %s in the file, %s in the model", f->type, m->type);
        return 0;
    }
    if (f->in_ch != m->in_ch || f->out_ch != m->out_ch || f->groups != m->groups) {
        snprintf(why, 320,
                 "channels %d -> %d (groups %d) in the file, %d -> %d (groups %d) in the model",
                 f->in_ch, f->out_ch, f->groups, m->in_ch, m->out_ch, m->groups);
        return 0;
    }
    static const char *const names[4] = {"kernel", "stride", "padding", "dilation"};
    const int *fv[4] = {f->kernel, f->stride, f->padding, f->dilation};
    const int *mv[4] = {m->kernel, m->stride, m->padding, m->dilation};
    for (int k = 0; k < 4; ++k)
        if (!ints_equal(fv[k], mv[k], m->ndim)) {
            ints_text(fv[k], m->ndim, x, sizeof x);
            ints_text(mv[k], m->ndim, y, sizeof y);
            snprintf(why, 320, "%s is %s in the file, %s in the model", names[k], x, y);
            return 0;
        }
    if (strcmp(f->padding_mode, m->padding_mode)) {
        snprintf(why, 320, "padding_mode is %s in the file, %s in the model", f->padding_mode,
                 m->padding_mode);
        return 0;
    }
    if (strcmp(f->bias, m->bias)) {
        snprintf(why, 320, "bias is %s in the file, %s in the model", f->bias, m->bias);
        return 0;
    }
    if (f->n_in != m->n_in || !ints_equal(f->in_split, m->in_split, m->n_in)) {
        ints_text(f->in_split, f->n_in, x, sizeof x);
        ints_text(m->in_split, m->n_in, y, sizeof y);
        snprintf(why, 320, "in_split_sizes are [%s] in the file, [%s] in the model", x, y);
        return 0;
    }
    if (f->n_out != m->n_out || !ints_equal(f->out_split, m->out_split, m->n_out)) {
        ints_text(f->out_split, f->n_out, x, sizeof x);
        ints_text(m->out_split, m->n_out, y, sizeof y);
        snprintf(why, 320, "out_split_sizes are [%s] in the file, [%s] in the model", x, y);
        return 0;
    }
    if (f->layer_id != m->layer_id || f->seed != m->seed) {
        snprintf(why, 320,
                 "random streams keyed by layer_id %u, seed %llu in the file, layer_id %u, "
                 "seed %llu in the model",
                 f->layer_id, (unsigned long long)f->seed, m->layer_id,
                 (unsigned long long)m->seed);
        return 0;
    }
    return 1;
}

/* The stored rpu_config text against the layer's config (why: the first differing key). */
static int config_match(const char *text, const rpu_config *model, char *why) {
    rpu_config fc;
    rpu_config_default(&fc, RPU_KIND_SINGLE);
    if (rpu_config_parse(&fc, text, "rpu_config") != RPU_OK) {
        snprintf(why, 320, "attribute rpu_config does not parse: %.250s", rpu_last_error());
        return 0;
    }
    /* inference-time parameters are not training state: a trained network may be
     * programmed with another noise model or compensation than it was saved with */
    fc.noise_model = model->noise_model;
    fc.drift_compensation = model->drift_compensation;
    if (rpu_config_equal(&fc, model)) return 1;
    const char *const *keys;
    const int nk = rpu_config_keys(&keys);
    for (int k = 0; k < nk; ++k) {
        char a[256], b[256];
        if (rpu_config_get(&fc, keys[k], a, sizeof a) != RPU_OK ||
            rpu_config_get(model, keys[k], b, sizeof b) != RPU_OK)
            continue;
        if (strcmp(a, b)) {
            snprintf(why, 320, "rpu_config differs: %s = %.100s in the file, %.100s in the model",
                     keys[k], a, b);
            return 0;
        }
    }
    snprintf(why, 320, "rpu_config differs from the model's");
    return 0;
}

/* ------------------------------------------------------------------ the plan */

/* The state items of every tile of every layer (names, types, shapes, and the values of the
 * 1 x 1 items), the same on every rank: each rank lists its owned tiles' items and one
 * Allgatherv shares them.
 *
 * An item that is 1 x 1 in every tile of its layer (the counters, nm_running, the drift
 * time: "scalars" in tile.h) is stored as an attribute of the tile group, the others as
 * datasets. Attributes are metadata: every rank writes them with the same value (hence the
 * values in the plan), they cost no collective data transfer and live in the tile group's
 * checksummed object header. The rule depends only on the layer's shape and config, so
 * save and load agree on it. */
typedef struct {
    char name[CK_ITEM_NAME];
    int dtype;
    int rows, cols;
    int attr;               /* stored as an attribute of the tile group */
    unsigned char value[8]; /* 1 x 1 items: the value (save) */
} ck_item;

typedef struct {
    int n_items;
    ck_item *items;
    void **buf; /* load: temporaries of an owned tile's items */
} ck_tile;

typedef struct {
    rpu_conv *layer;
    char name[CK_LAYER_NAME];
    ck_lattrs attrs;
    ck_tile *tiles;
    float *bias_buf; /* load: temporary digital bias */
} ck_lplan;

typedef struct {
    int32_t layer, tile, k, n, dtype, rows, cols;
    char name[CK_ITEM_NAME];
    unsigned char value[8];
} ck_rec;

static void plan_free(ck_lplan *pl, int n_layers) {
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
        lattrs_free(&pl[i].attrs);
    }
    free(pl);
}

/* Builds the plan (collective). Local failures are recorded in cx; the caller agrees. */
static ck_lplan *plan_build(MPI_Comm comm, const rpu_ckpt_layer *layers, int n_layers, ck_ctx *cx) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    ck_lplan *pl = (ck_lplan *)calloc((size_t)(n_layers > 0 ? n_layers : 1), sizeof *pl);
    size_t n_rec = 0, cap = 0;
    ck_rec *rec = NULL;
    int ok = pl != NULL;
    for (int i = 0; ok && i < n_layers; ++i) {
        pl[i].layer = layers[i].layer;
        snprintf(pl[i].name, sizeof pl[i].name, "%s", layers[i].name);
        if (lattrs_from_layer(layers[i].layer, &pl[i].attrs) != RPU_OK) {
            ok = 0;
            break;
        }
        pl[i].tiles = (ck_tile *)calloc((size_t)pl[i].attrs.n_tiles, sizeof(ck_tile));
        if (!pl[i].tiles) {
            ok = 0;
            break;
        }
        for (int t = 0; ok && t < pl[i].attrs.n_tiles; ++t) {
            rpu_tile *tile = rpu_conv_tile(layers[i].layer, t);
            if (!tile) continue;
            rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
            const int n = rpu_tile_state_items(tile, it, RPU_TILE_MAX_STATE_ITEMS);
            if (n_rec + (size_t)n > cap) {
                cap = 2 * cap + (size_t)n + 16;
                ck_rec *r = (ck_rec *)realloc(rec, cap * sizeof *rec);
                if (!r) {
                    ok = 0;
                    break;
                }
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
                    memcpy(r->value, it[k].data, dtype_size(state_dtype(it[k].type)));
                if (strlen(it[k].name) >= CK_ITEM_NAME ||
                    !valid_component(it[k].name, strlen(it[k].name)))
                    CK_FAIL(cx, RPU_ERR_INTERNAL, NULL, "state item name '%s' cannot be stored",
                            it[k].name);
                snprintf(r->name, sizeof r->name, "%s", it[k].name);
            }
        }
    }
    if (!ok) CK_FAIL(cx, RPU_ERR_NOMEM, NULL, "out of memory");
    /* share: counts, then the records; every allocation is agreed on before the collective
     * that needs it, so that no rank skips a collective the others make */
    const long long bytes = ok ? (long long)(n_rec * sizeof(ck_rec)) : 0;
    if (bytes > INT_MAX) CK_FAIL(cx, RPU_ERR_UNSUPPORTED, NULL, "too many tile state items");
    const int mine = bytes > INT_MAX ? 0 : (int)bytes;
    int *counts = (int *)calloc((size_t)size, sizeof(int));
    int *displs = (int *)calloc((size_t)size, sizeof(int));
    ck_rec *all = NULL;
    long long total = 0;
    int have = counts && displs, all_have = 0;
    if (MPI_Allreduce(&have, &all_have, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS || !all_have) {
        CK_FAIL(cx, RPU_ERR_NOMEM, NULL, "out of memory (or MPI failure) sharing the tile items");
        goto shared;
    }
    if (!counts || !displs ||
        MPI_Allgather(&mine, 1, MPI_INT, counts, 1, MPI_INT, comm) != MPI_SUCCESS) {
        CK_FAIL(cx, RPU_ERR_MPI, NULL, "MPI_Allgather failed");
        goto shared;
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
        goto shared;
    }
    if (MPI_Allgatherv(rec, mine, MPI_BYTE, all, counts, displs, MPI_BYTE, comm) != MPI_SUCCESS) {
        CK_FAIL(cx, RPU_ERR_MPI, NULL, "MPI_Allgatherv failed");
        free(all);
        all = NULL;
    }
shared:
    free(rec);
    /* distribute the records into the tiles (on every rank: the same result) */
    if (all && pl && ok && cx->st == RPU_OK) {
        const size_t nr = (size_t)total / sizeof(ck_rec);
        for (size_t q = 0; q < nr && cx->st == RPU_OK; ++q) {
            const ck_rec *r = &all[q];
            if (r->layer < 0 || r->layer >= n_layers || r->tile < 0 ||
                r->tile >= pl[r->layer].attrs.n_tiles || r->k < 0 || r->k >= r->n) {
                CK_FAIL(cx, RPU_ERR_INTERNAL, NULL, "bad item record");
                break;
            }
            ck_tile *tt = &pl[r->layer].tiles[r->tile];
            if (!tt->items) {
                tt->items = (ck_item *)calloc((size_t)r->n, sizeof(ck_item));
                if (!tt->items) {
                    CK_FAIL(cx, RPU_ERR_NOMEM, NULL, "out of memory");
                    break;
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
                    CK_FAIL(cx, RPU_ERR_INTERNAL, NULL, "layer '%s': tile %d has no owner",
                            pl[i].name, t);
                    break;
                }
        /* attributes: the items that are 1 x 1 in every tile (tile.h: every tile of a layer
         * lists the same names in the same order; if not, everything is a dataset) */
        for (int i = 0; i < n_layers && cx->st == RPU_OK; ++i) {
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
    free(all);
    free(counts);
    free(displs);
    return pl;
}

/* ------------------------------------------------------------------ argument checks */

static const char *layer_name_problem(const rpu_ckpt_layer *layers, int i) {
    const char *n = layers[i].name;
    if (!n) return "is NULL";
    if (strlen(n) >= CK_LAYER_NAME) return "is longer than 63 characters";
    if (!valid_component(n, strlen(n))) return "must be made of [A-Za-z0-9_.-] (not . or ..)";
    for (int k = 0; k < i; ++k)
        if (layers[k].name && !strcmp(layers[k].name, n)) return "is used twice";
    return NULL;
}

/* Local checks of save/load arguments plus a hash that must match on every rank. */
static uint64_t check_args(MPI_Comm comm, const rpu_ckpt_layer *layers, int n_layers,
                           const rpu_ckpt_array *arrays, int n_arrays, bool saving, ck_ctx *cx) {
    uint64_t h = 1469598103934665603ull;
    if (n_layers < 0 || (n_layers > 0 && !layers) || n_arrays < 0 || (n_arrays > 0 && !arrays)) {
        CK_FAIL(cx, RPU_ERR_ARG, NULL, "bad layer or array list (n_layers %d, n_arrays %d)",
                n_layers, n_arrays);
        return h;
    }
    h = fnv_i64(h, n_layers);
    for (int i = 0; i < n_layers; ++i) {
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
        h = fnv_str(h, layers[i].name);
        int32_t v[16] = {p->ndim,         p->in_channels,
                         p->out_channels, p->groups,
                         p->bias,         (int32_t)p->layer_id,
                         p->kernel[0],    p->kernel[1],
                         p->kernel[2],    p->stride[0],
                         p->stride[1],    p->stride[2],
                         p->padding[0],   p->padding[1],
                         p->padding[2],   rpu_conv_is_linear(layers[i].layer)};
        h = fnv(h, v, sizeof v);
        h = fnv_i64(h, (int64_t)p->seed);
    }
    h = fnv_i64(h, n_arrays);
    for (int i = 0; i < n_arrays; ++i) {
        const rpu_ckpt_array *a = &arrays[i];
        if (!valid_array_path(a->path)) {
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
        if (!valid_dtype((int)a->dtype)) {
            CK_FAIL(cx, RPU_ERR_ARG, NULL, "array '%s': unknown dtype %d", a->path, (int)a->dtype);
            return h;
        }
        h = fnv_str(h, a->path);
        h = fnv_i64(h, (int64_t)a->dtype);
        if (saving) {
            if (a->ndim < 1 || a->ndim > 2 || a->dims[0] < 0 || (a->ndim == 2 && a->dims[1] < 0)) {
                CK_FAIL(cx, RPU_ERR_ARG, NULL, "array '%s': ndim %d, dims must be 1 or 2, >= 0",
                        a->path, a->ndim);
                return h;
            }
            const int64_t cnt = a->dims[0] * (a->ndim == 2 ? a->dims[1] : 1);
            if (cnt > 0 && !a->data) {
                CK_FAIL(cx, RPU_ERR_ARG, NULL, "array '%s': data is NULL", a->path);
                return h;
            }
            h = fnv_i64(h, a->ndim);
            h = fnv(h, a->dims, (size_t)a->ndim * sizeof a->dims[0]);
        }
    }
    return h;
}

/* Checks that h is the same on every rank (collective); records a failure otherwise. */
static void check_same(MPI_Comm comm, uint64_t h, ck_ctx *cx) {
    uint64_t v[2] = {h, ~h}, m[2] = {0, 0};
    if (MPI_Allreduce(v, m, 2, MPI_UINT64_T, MPI_MAX, comm) != MPI_SUCCESS) {
        CK_FAIL(cx, RPU_ERR_MPI, NULL, "MPI_Allreduce failed");
        return;
    }
    if (m[0] != v[0] || m[1] != v[1])
        CK_FAIL(cx, RPU_ERR_ARG, NULL,
                "the layers or arrays passed differ between ranks (names, shapes, paths, types)");
}

/* ------------------------------------------------------------------ property lists */

static hid_t make_fapl(MPI_Comm comm) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    if ((comm != MPI_COMM_NULL &&
         (H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0 ||
          H5Pset_all_coll_metadata_ops(fapl, 1) < 0 || H5Pset_coll_metadata_write(fapl, 1) < 0)) ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* Group (or file) creation properties: links in creation order, attributes and links in the
 * object header. */
static int set_group_props(hid_t gcpl) {
    return H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) >= 0 &&
                   H5Pset_attr_creation_order(gcpl,
                                              H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) >= 0 &&
                   H5Pset_attr_phase_change(gcpl, CK_COMPACT_ATTRS, CK_COMPACT_ATTRS) >= 0 &&
                   H5Pset_link_phase_change(gcpl, CK_COMPACT_LINKS, CK_COMPACT_LINKS - 16) >= 0
               ? 0
               : -1;
}

static hid_t make_group(hid_t loc, const char *name, hid_t gcpl) {
    return H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
}

/* ------------------------------------------------------------------ collective write */

enum { CK_DCPL_CACHE = 16 };

typedef struct {
    ck_ctx *cx;
    hid_t dxpl, gcpl, lcpl; /* made once per save: property lists are costly to build */
    int n_dcpl;
    struct {
        int ndim;
        hsize_t chunk[2];
        hid_t dcpl;
    } dcpl[CK_DCPL_CACHE]; /* chunked + Fletcher32, by chunk shape */
    int rank;
    int fail_rank, fail_write; /* fault injection */
    int writes;                /* own dataset writes so far */
} ck_writer;

static int writer_init(ck_writer *w) {
    w->gcpl = H5Pcreate(H5P_GROUP_CREATE);
    w->lcpl = H5Pcreate(H5P_LINK_CREATE);
    return w->gcpl >= 0 && w->lcpl >= 0 && set_group_props(w->gcpl) == 0 &&
                   H5Pset_create_intermediate_group(w->lcpl, 1) >= 0
               ? 0
               : -1;
}

static void writer_free(ck_writer *w) {
    if (w->gcpl >= 0) H5Pclose(w->gcpl);
    if (w->lcpl >= 0) H5Pclose(w->lcpl);
    for (int k = 0; k < w->n_dcpl; ++k)
        H5Pclose(w->dcpl[k].dcpl);
    w->gcpl = w->lcpl = -1;
    w->n_dcpl = 0;
}

/* The creation property list of a dataset of ndim/dims: chunks of at most CK_CHUNK_ELEMS
 * elements (whole rows) with Fletcher32; a contiguous layout for an empty dataset (a chunk
 * cannot be empty and there is no data to check). *owned: the caller closes it. */
static hid_t dataset_dcpl(ck_writer *w, int ndim, const hsize_t *dims, int *owned) {
    *owned = 0;
    const hsize_t n = dims[0] * (ndim == 2 ? dims[1] : 1);
    if (n == 0) return H5P_DEFAULT;
    hsize_t chunk[2] = {dims[0], ndim == 2 ? dims[1] : 1};
    const hsize_t row = ndim == 2 ? dims[1] : 1;
    const hsize_t rows = row >= CK_CHUNK_ELEMS ? 1 : CK_CHUNK_ELEMS / row;
    if (rows < chunk[0]) chunk[0] = rows;
    for (int k = 0; k < w->n_dcpl; ++k)
        if (w->dcpl[k].ndim == ndim && w->dcpl[k].chunk[0] == chunk[0] &&
            (ndim == 1 || w->dcpl[k].chunk[1] == chunk[1]))
            return w->dcpl[k].dcpl;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0) return -1;
    if (H5Pset_chunk(dcpl, ndim, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0) {
        H5Pclose(dcpl);
        return -1;
    }
    if (w->n_dcpl < CK_DCPL_CACHE) {
        w->dcpl[w->n_dcpl].ndim = ndim;
        w->dcpl[w->n_dcpl].chunk[0] = chunk[0];
        w->dcpl[w->n_dcpl].chunk[1] = chunk[1];
        w->dcpl[w->n_dcpl++].dcpl = dcpl;
    } else {
        *owned = 1;
    }
    return dcpl;
}

/* Creates dataset `name` in loc (objpath for messages) of type dt and shape dims, chunked
 * with Fletcher32 (contiguous when empty), and writes `data` from the rank(s) where `mine`
 * (collective: every rank calls it; the others write empty selections). */
static void write_dataset(ck_writer *w, hid_t loc, const char *name, const char *objpath,
                          rpu_ckpt_dtype dt, int ndim, const hsize_t *dims, const void *data,
                          bool mine) {
    char why[320];
    const hsize_t n = dims[0] * (ndim == 2 ? dims[1] : 1);
    int owned = 0;
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t dcpl = dataset_dcpl(w, ndim, dims, &owned);
    hid_t ds = sp >= 0 && dcpl >= 0
                   ? H5Dcreate2(loc, name, file_type(dt), sp, w->lcpl, dcpl, H5P_DEFAULT)
                   : -1;
    if (ds < 0) {
        CK_FAIL(w->cx, RPU_ERR_IO, objpath, "cannot create dataset (%s)", h5_why(why));
    } else if (n > 0) {
        bool write = mine && w->cx->st == RPU_OK;
        if (mine && ++w->writes == w->fail_write && w->rank == w->fail_rank) {
            write = false;
            CK_FAIL(w->cx, RPU_ERR_IO, objpath, "injected write failure (write %d of rank %d)",
                    w->writes, w->rank);
        }
        /* the same extent in memory and in the file: sp serves as both */
        if (!write) H5Sselect_none(sp);
        static const char dummy[8];
        if (H5Dwrite(ds, mem_type(dt), sp, sp, w->dxpl, write ? data : (const void *)dummy) < 0)
            CK_FAIL(w->cx, RPU_ERR_IO, objpath, "write failed (%s)", h5_why(why));
    }
    if (ds >= 0) H5Dclose(ds);
    if (owned) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
}

/* ------------------------------------------------------------------ file helpers */

static int fsync_path(const char *p, int dir) {
    int fd = open(p, O_RDONLY | (dir ? O_DIRECTORY : 0));
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static char *dir_of(const char *path) {
    const char *s = strrchr(path, '/');
    if (!s) return strdup(".");
    if (s == path) return strdup("/");
    char *d = (char *)malloc((size_t)(s - path) + 1);
    if (d) {
        memcpy(d, path, (size_t)(s - path));
        d[s - path] = '\0';
    }
    return d;
}

static int copy_file(const char *from, const char *to) {
    int in = open(from, O_RDONLY);
    if (in < 0) return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[1 << 16];
    int ok = 1;
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            ok = r == 0;
            break;
        }
        for (ssize_t o = 0; o < r;) {
            ssize_t wr = write(out, buf + o, (size_t)(r - o));
            if (wr < 0 && errno == EINTR) continue;
            if (wr <= 0) {
                ok = 0;
                break;
            }
            o += wr;
        }
        if (!ok) break;
    }
    if (ok && fsync(out) != 0) ok = 0;
    close(in);
    if (close(out) != 0) ok = 0;
    return ok ? 0 : -1;
}

/* Rank 0: makes the fully written tmp the checkpoint. */
static void publish(const char *path, const char *tmp, int keep_last, ck_ctx *cx) {
    if (fsync_path(tmp, 0) != 0) {
        CK_FAIL(cx, RPU_ERR_IO, NULL, "fsync of %s failed: %s", tmp, strerror(errno));
        return;
    }
    const size_t len = strlen(path) + 24;
    char *a = (char *)malloc(len), *b = (char *)malloc(len);
    if (!a || !b) {
        free(a), free(b);
        CK_FAIL(cx, RPU_ERR_NOMEM, NULL, "out of memory");
        return;
    }
    struct stat st;
    if (keep_last > 0 && stat(path, &st) == 0) {
        /* <path>.K-1 -> .K, ..., .1 -> .2, then <path> hard-linked (or copied) to .1: <path>
         * itself stays in place until the rename below replaces it */
        for (int k = keep_last - 1; k >= 1; --k) {
            snprintf(a, len, "%s.%d", path, k);
            snprintf(b, len, "%s.%d", path, k + 1);
            if (rename(a, b) != 0 && errno != ENOENT) {
                CK_FAIL(cx, RPU_ERR_IO, NULL, "cannot rotate %s to %s: %s", a, b, strerror(errno));
                goto done;
            }
        }
        snprintf(b, len, "%s.1", path);
        if (unlink(b) != 0 && errno != ENOENT) {
            CK_FAIL(cx, RPU_ERR_IO, NULL, "cannot remove %s: %s", b, strerror(errno));
            goto done;
        }
        if (link(path, b) != 0 && copy_file(path, b) != 0) {
            CK_FAIL(cx, RPU_ERR_IO, NULL, "cannot keep the previous checkpoint as %s: %s", b,
                    strerror(errno));
            goto done;
        }
    }
    if (rename(tmp, path) != 0) {
        CK_FAIL(cx, RPU_ERR_IO, NULL, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto done;
    }
    char *dir = dir_of(path);
    if (dir) fsync_path(dir, 1); /* best effort: some file systems refuse directory fsync */
    free(dir);
done:
    free(a);
    free(b);
}

/* ------------------------------------------------------------------ save */

void rpu_ckpt_save_opts_default(rpu_ckpt_save_opts *opts) {
    if (!opts) return;
    memset(opts, 0, sizeof *opts);
}

void rpu_ckpt_info_free(rpu_ckpt_info *info) {
    if (!info) return;
    free(info->config);
    info->config = NULL;
}

/* Writes the root attributes. */
static void write_root(hid_t file, const rpu_ckpt_meta *m, const char *config, int size,
                       ck_ctx *cx) {
    int e = 0;
    e |= attr_write_str(file, "format", RPU_CKPT_FORMAT);
    e |= attr_write_i32(file, "schema_version", RPU_CKPT_SCHEMA_VERSION);
    e |= attr_write_str(file, "rpusim_version", RPUSIM_VERSION);
    e |= attr_write_str(file, "config", config);
    e |= attr_write(file, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, -1, &m->seed);
    e |= attr_write(file, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, -1, &m->step);
    e |= attr_write(file, "epoch", H5T_STD_I64LE, H5T_NATIVE_INT64, -1, &m->epoch);
    e |= attr_write_i32(file, "ranks_at_save", size);
    if (e) {
        char why[320];
        CK_FAIL(cx, RPU_ERR_IO, "/", "cannot write the root attributes (%s)", h5_why(why));
    }
}

static void write_layer(hid_t layers_g, ck_lplan *pl, ck_writer *w) {
    ck_ctx *cx = w->cx;
    char obj[CK_LAYER_NAME + 128], why[320];
    snprintf(obj, sizeof obj, "/layers/%s", pl->name);
    hid_t g = make_group(layers_g, pl->name, w->gcpl);
    if (g < 0) {
        CK_FAIL(cx, RPU_ERR_IO, obj, "cannot create group (%s)", h5_why(why));
        return;
    }
    if (lattrs_write(g, &pl->attrs) < 0)
        CK_FAIL(cx, RPU_ERR_IO, obj, "cannot write attributes (%s)", h5_why(why));
    if (!strcmp(pl->attrs.bias, "digital")) {
        hsize_t d = (hsize_t)pl->attrs.out_ch;
        float *bias = (float *)malloc(sizeof(float) * (d ? d : 1));
        snprintf(obj, sizeof obj, "/layers/%s/bias", pl->name);
        if (!bias || rpu_conv_get_digital_bias(pl->layer, bias) != RPU_OK)
            CK_FAIL(cx, RPU_ERR_NOMEM, obj, "out of memory for the bias");
        /* every rank takes part in the dataset's collective creation */
        write_dataset(w, g, "bias", obj, RPU_CKPT_F32, 1, &d, bias, w->rank == 0 && bias);
        free(bias);
    }
    hid_t tg = make_group(g, "tiles", w->gcpl);
    if (tg < 0) {
        snprintf(obj, sizeof obj, "/layers/%s/tiles", pl->name);
        CK_FAIL(cx, RPU_ERR_IO, obj, "cannot create group (%s)", h5_why(why));
        H5Gclose(g);
        return;
    }
    const ck_lattrs *a = &pl->attrs;
    for (int t = 0; t < a->n_tiles; ++t) {
        char key[48];
        tile_key(a->groups, a->n_in, a->n_out, t, key);
        hid_t kg = make_group(tg, key, w->gcpl);
        if (kg < 0) {
            snprintf(obj, sizeof obj, "/layers/%s/tiles/%s", pl->name, key);
            CK_FAIL(cx, RPU_ERR_IO, obj, "cannot create group (%s)", h5_why(why));
            continue;
        }
        rpu_tile *tile = rpu_conv_tile(pl->layer, t);
        rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
        const int n = tile ? rpu_tile_state_items(tile, it, RPU_TILE_MAX_STATE_ITEMS) : 0;
        const ck_tile *ct = &pl->tiles[t];
        if (tile && n != ct->n_items)
            CK_FAIL(cx, RPU_ERR_INTERNAL, NULL, "tile %d of layer '%s': item count changed", t,
                    pl->name);
        for (int k = 0; k < ct->n_items; ++k) {
            const ck_item *ci = &ct->items[k];
            snprintf(obj, sizeof obj, "/layers/%s/tiles/%s/%s", pl->name, key, ci->name);
            if (ci->attr) {
                /* every rank writes the owner's value, shared through the plan */
                const rpu_ckpt_dtype dt = (rpu_ckpt_dtype)ci->dtype;
                if (attr_write(kg, ci->name, file_type(dt), mem_type(dt), -1, ci->value) < 0)
                    CK_FAIL(cx, RPU_ERR_IO, obj, "cannot write attribute (%s)", h5_why(why));
                continue;
            }
            hsize_t dims[2] = {(hsize_t)ci->rows, (hsize_t)ci->cols};
            const bool mine = tile && k < n;
            write_dataset(w, kg, ci->name, obj, (rpu_ckpt_dtype)ci->dtype, 2, dims,
                          mine ? it[k].data : NULL, mine);
        }
        H5Gclose(kg);
    }
    H5Gclose(tg);
    H5Gclose(g);
}

rpu_status rpu_ckpt_save(MPI_Comm comm_in, const char *path, const rpu_ckpt_meta *meta,
                         const rpu_ckpt_layer *layers, int n_layers, const rpu_ckpt_array *arrays,
                         int n_arrays, const rpu_ckpt_save_opts *opts) {
    if (comm_in == MPI_COMM_NULL) return RPU_FAIL(RPU_ERR_ARG, "checkpoint save: MPI_COMM_NULL");
    if (!path || !*path) return RPU_FAIL(RPU_ERR_ARG, "checkpoint save: path is NULL or empty");
    MPI_Comm comm;
    if (MPI_Comm_dup(comm_in, &comm) != MPI_SUCCESS)
        return RPU_FAIL(RPU_ERR_MPI, "checkpoint %s: MPI_Comm_dup failed", path);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    ck_ctx cx = {.path = path, .st = RPU_OK, .msg = ""};
    ck_quiet q;
    quiet_on(&q);
    rpu_ckpt_save_opts o;
    rpu_ckpt_save_opts_default(&o);
    if (opts) o = *opts;
    ck_lplan *pl = NULL;
    char *tmp = NULL, *config = NULL;
    hid_t fapl = -1, fcpl = -1, dxpl = -1, file = -1;
    ck_writer w;
    memset(&w, 0, sizeof w);
    w.cx = &cx;
    w.dxpl = w.gcpl = w.lcpl = -1;
    w.rank = rank;
    w.fail_rank = opts ? opts->fail_rank : 0;
    w.fail_write = opts && opts->fail_write > 0 ? opts->fail_write : -1;

    /* arguments, the same on every rank */
    uint64_t h = check_args(comm, layers, n_layers, arrays, n_arrays, true, &cx);
    if (o.keep_last < 0 || o.keep_last > 1000)
        CK_FAIL(&cx, RPU_ERR_ARG, NULL, "keep_last %d is outside [0, 1000]", o.keep_last);
    h = fnv_i64(h, o.keep_last);
    if (strlen(path) > PATH_MAX - 24) CK_FAIL(&cx, RPU_ERR_ARG, NULL, "path is too long");
    h = fnv_str(h, path);
    check_same(comm, h, &cx);
    if (ck_agree(comm, &cx) != RPU_OK) goto out;

    /* the root metadata is rank 0's */
    rpu_ckpt_meta m = {0, 0, 0, NULL};
    if (meta) m = *meta;
    long long clen = m.config ? (long long)strlen(m.config) : 0;
    MPI_Bcast(&clen, 1, MPI_LONG_LONG, 0, comm);
    uint64_t head[3] = {m.seed, (uint64_t)m.step, (uint64_t)m.epoch};
    MPI_Bcast(head, 3, MPI_UINT64_T, 0, comm);
    m.seed = head[0];
    m.step = (int64_t)head[1];
    m.epoch = (int64_t)head[2];
    if (clen > RPU_CKPT_MAX_TEXT) {
        CK_FAIL(&cx, RPU_ERR_ARG, NULL, "the config text has %lld bytes (at most %d)", clen,
                RPU_CKPT_MAX_TEXT);
        ck_agree(comm, &cx);
        goto out;
    }
    config = (char *)calloc((size_t)clen + 1, 1);
    if (!config) CK_FAIL(&cx, RPU_ERR_NOMEM, NULL, "out of memory");
    if (ck_agree(comm, &cx) != RPU_OK) goto out;
    if (rank == 0 && clen > 0 && config && m.config) memcpy(config, m.config, (size_t)clen);
    if (clen > 0) MPI_Bcast(config, (int)clen, MPI_CHAR, 0, comm);

    pl = plan_build(comm, layers, n_layers, &cx);
    for (int i = 0; pl && i < n_layers && cx.st == RPU_OK; ++i)
        if (strlen(pl[i].attrs.rpu_config) > RPU_CKPT_MAX_TEXT)
            CK_FAIL(&cx, RPU_ERR_INTERNAL, NULL, "layer '%s': rpu_config text too long",
                    pl[i].name);
    if (ck_agree(comm, &cx) != RPU_OK) goto out;

    /* write <path>.tmp */
    tmp = str_printf("%s.tmp", path);
    fapl = make_fapl(comm);
    fcpl = H5Pcreate(H5P_FILE_CREATE);
    dxpl = H5Pcreate(H5P_DATASET_XFER);
    w.dxpl = dxpl;
    if (!tmp || fapl < 0 || fcpl < 0 || dxpl < 0 || set_group_props(fcpl) < 0 ||
        H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0 ||
        H5Pset_dxpl_mpio_collective_opt(dxpl, H5FD_MPIO_INDIVIDUAL_IO) < 0 || writer_init(&w) < 0) {
        char why[320];
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "cannot set up HDF5 (%s)", h5_why(why));
    }
    if (ck_agree(comm, &cx) != RPU_OK) goto out;
    file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
    if (file < 0) {
        char why[320];
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "cannot create %s (%s)", tmp, h5_why(why));
    }
    if (ck_agree(comm, &cx) != RPU_OK) {
        if (file >= 0) H5Fclose(file);
        file = -1;
        goto out;
    }
    write_root(file, &m, config, size, &cx);
    hid_t lg = make_group(file, "layers", w.gcpl);
    if (lg < 0) {
        char why[320];
        CK_FAIL(&cx, RPU_ERR_IO, "/layers", "cannot create group (%s)", h5_why(why));
    } else {
        for (int i = 0; pl && i < n_layers; ++i)
            write_layer(lg, &pl[i], &w);
        H5Gclose(lg);
    }
    for (int i = 0; i < n_arrays; ++i) {
        const rpu_ckpt_array *a = &arrays[i];
        hsize_t dims[2] = {(hsize_t)a->dims[0], (hsize_t)(a->ndim == 2 ? a->dims[1] : 1)};
        char obj[CK_ARRAY_PATH + 2];
        snprintf(obj, sizeof obj, "/%s", a->path);
        write_dataset(&w, file, a->path, obj, a->dtype, a->ndim, dims, a->data, rank == 0);
    }
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) {
        char why[320];
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "flush of %s failed (%s)", tmp, h5_why(why));
    }
    if (H5Fclose(file) < 0) {
        char why[320];
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "close of %s failed (%s)", tmp, h5_why(why));
    }
    file = -1;
    if (ck_agree(comm, &cx) != RPU_OK) {
        if (rank == 0) unlink(tmp);
        MPI_Barrier(comm);
        goto out;
    }
    /* every rank wrote everything: rank 0 renames (and rotates), the others wait */
    if (rank == 0) {
        publish(path, tmp, o.keep_last, &cx);
        if (cx.st != RPU_OK) unlink(tmp);
    }
    ck_agree(comm, &cx);

out:
    if (file >= 0) H5Fclose(file);
    writer_free(&w);
    if (dxpl >= 0) H5Pclose(dxpl);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (fapl >= 0) H5Pclose(fapl);
    quiet_off(&q);
    plan_free(pl, n_layers);
    free(tmp);
    free(config);
    MPI_Comm_free(&comm);
    return cx.st;
}

/* ------------------------------------------------------------------ load */

/* Opens loc/name as a group or a dataset (want). The object's type is checked with
 * H5Oget_info first, so that a group where a dataset belongs (or the reverse) is reported
 * as such. Records "missing", the wrong type or HDF5's reason (a corrupted header fails its
 * checksum here). */
static hid_t open_obj(hid_t loc, const char *name, H5O_type_t want, const char *objpath,
                      ck_ctx *cx) {
    char why[320];
    const char *what = want == H5O_TYPE_GROUP ? "group" : "dataset";
    const htri_t ex = H5Lexists(loc, name, H5P_DEFAULT);
    if (ex == 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "%s is missing", what);
        return -1;
    }
    if (ex < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "cannot read the link (%s)", h5_why(why));
        return -1;
    }
    H5O_info_t oi;
    if (H5Oget_info_by_name2(loc, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "unreadable object header (%s)", h5_why(why));
        return -1;
    }
    if (oi.type != want) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "is not a %s", what);
        return -1;
    }
    hid_t h = want == H5O_TYPE_GROUP ? H5Gopen2(loc, name, H5P_DEFAULT)
                                     : H5Dopen2(loc, name, H5P_DEFAULT);
    if (h < 0) CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "cannot open %s (%s)", what, h5_why(why));
    return h;
}

typedef struct {
    ck_ctx *cx;
    hid_t dxpl;
} ck_reader;

/* Result of read_dataset: 0 ok, -1 a failure of the file's metadata (the same on every
 * rank: the caller stops), 1 a failure of this rank's data (recorded; carry on). */
static int read_dataset(ck_reader *r, hid_t loc, const char *name, const char *objpath,
                        rpu_ckpt_dtype dt, int want_ndim, const hsize_t *want, bool allow_ndim,
                        int *got_ndim, hsize_t *got, bool mine, void **buf) {
    ck_ctx *cx = r->cx;
    char why[320];
    *buf = NULL;
    hid_t ds = open_obj(loc, name, H5O_TYPE_DATASET, objpath, cx);
    if (ds < 0) return -1;
    int res = -1;
    hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds), dcpl = H5Dget_create_plist(ds);
    hsize_t dims[H5S_MAX_RANK];
    const int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    const int k = t >= 0 ? dtype_of(t) : -1;
    if (t < 0 || sp < 0 || dcpl < 0 || nd < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "unreadable dataset header (%s)", h5_why(why));
        goto done;
    }
    if (k != (int)dt) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "element type is %s, expected %s", dtype_name(k),
                dtype_name((int)dt));
        goto done;
    }
    if (nd < 1 || nd > 2 || (!allow_ndim && nd != want_ndim)) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "dataset has %d dimensions, expected %d", nd,
                want_ndim);
        goto done;
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    hsize_t n = 1;
    for (int d = 0; d < nd; ++d)
        n *= dims[d];
    if (want) {
        for (int d = 0; d < nd; ++d)
            if (dims[d] != want[d]) {
                char a[64], b[64];
                if (nd == 2) {
                    snprintf(a, sizeof a, "[%llu, %llu]", (unsigned long long)dims[0],
                             (unsigned long long)dims[1]);
                    snprintf(b, sizeof b, "[%llu, %llu]", (unsigned long long)want[0],
                             (unsigned long long)want[1]);
                } else {
                    snprintf(a, sizeof a, "[%llu]", (unsigned long long)dims[0]);
                    snprintf(b, sizeof b, "[%llu]", (unsigned long long)want[0]);
                }
                CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "shape is %s, expected %s", a, b);
                goto done;
            }
    }
    if (n > 0) {
        unsigned flags = 0, conf = 0;
        size_t nel = 0;
        if (H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nel, NULL, 0, NULL, &conf) <
            0) {
            H5Eclear2(H5E_DEFAULT);
            CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "dataset has no Fletcher32 checksum");
            goto done;
        }
    }
    if (got_ndim) *got_ndim = nd;
    if (got)
        for (int d = 0; d < nd; ++d)
            got[d] = dims[d];
    res = 0;
    if (n == 0) goto done;
    /* the data: collective, the reading ranks with the whole selection */
    void *data = NULL;
    if (mine) {
        const size_t bytes = (size_t)n * dtype_size(dt);
        if (n > SIZE_MAX / dtype_size(dt) || !(data = malloc(bytes))) {
            CK_FAIL(cx, RPU_ERR_NOMEM, objpath, "out of memory");
            res = 1;
        }
    }
    hid_t ms = H5Screate_simple(nd, dims, NULL);
    const bool take = mine && data;
    if (!take) {
        H5Sselect_none(ms);
        H5Sselect_none(sp);
    }
    static char dummy[8];
    if (H5Dread(ds, mem_type(dt), ms, sp, r->dxpl, take ? data : dummy) < 0) {
        h5_why(why);
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
    *buf = data;
done:
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Dclose(ds);
    return res;
}

/* Reads the 1 x 1 item `name` stored as an attribute of g: type dt, one element. Metadata:
 * every rank reads it; the value goes into a malloc'ed *buf where `mine`. Returns as
 * read_dataset. */
static int read_scalar_attr(ck_ctx *cx, hid_t g, const char *name, const char *objpath,
                            rpu_ckpt_dtype dt, bool mine, void **buf) {
    char why[320];
    *buf = NULL;
    const htri_t ex = H5Aexists(g, name);
    if (ex <= 0) {
        if (ex == 0)
            CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "attribute is missing");
        else
            CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "unreadable attribute (%s)", h5_why(why));
        return -1;
    }
    attr_h h = attr_open(g, name);
    int res = -1;
    unsigned char v[8];
    if (!attr_ok(&h)) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "unreadable attribute (%s)", h5_why(why));
    } else if (dtype_of(h.t) != (int)dt) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "element type is %s, expected %s",
                dtype_name(dtype_of(h.t)), dtype_name((int)dt));
    } else if (H5Sget_simple_extent_npoints(h.sp) != 1) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "attribute has %lld values, expected 1",
                (long long)H5Sget_simple_extent_npoints(h.sp));
    } else if (H5Aread(h.a, mem_type(dt), v) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "unreadable attribute (%s)", h5_why(why));
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
    attr_close(&h);
    return res;
}

/* Links in group g other than the expected names: the first one into extra (or ""). */
typedef struct {
    const ck_item *items;
    int n;
    char extra[CK_ITEM_NAME + 16];
} ck_extra_scan;
static herr_t extra_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g, (void)info;
    ck_extra_scan *s = (ck_extra_scan *)data;
    for (int k = 0; k < s->n; ++k)
        if (!strcmp(s->items[k].name, name)) return 0;
    snprintf(s->extra, sizeof s->extra, "%s", name);
    return 1;
}

static hsize_t link_count(hid_t g) {
    H5G_info_t gi;
    return H5Gget_info(g, &gi) < 0 ? (hsize_t)-1 : gi.nlinks;
}

/* Reads and checks the root attributes. Returns -1 on failure (recorded). */
static int read_root(hid_t file, rpu_ckpt_info *info, ck_ctx *cx) {
    char why[320];
    char *fmt = NULL;
    memset(info, 0, sizeof *info);
    if (attr_read_str(file, "format", &fmt, why) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, "/", "not an rpusim checkpoint (%s)", why);
        return -1;
    }
    int bad = strcmp(fmt, RPU_CKPT_FORMAT);
    if (bad)
        CK_FAIL(cx, RPU_ERR_FORMAT, "/", "not an rpusim checkpoint (format is '%.60s', not '%s')",
                fmt, RPU_CKPT_FORMAT);
    free(fmt);
    if (bad) return -1;
    int64_t v;
    if (attr_read_int(file, "schema_version", &v, why) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, "/", "%s", why);
        return -1;
    }
    if (v != RPU_CKPT_SCHEMA_VERSION) {
        CK_FAIL(cx, RPU_ERR_FORMAT, "/",
                "schema_version %lld is not supported (this rpusim %s reads version %d)",
                (long long)v, RPUSIM_VERSION, RPU_CKPT_SCHEMA_VERSION);
        return -1;
    }
    info->schema_version = (int)v;
    char *ver = NULL;
    if (attr_read_str(file, "rpusim_version", &ver, why) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, "/", "%s", why);
        return -1;
    }
    snprintf(info->rpusim_version, sizeof info->rpusim_version, "%s", ver);
    free(ver);
    if (attr_read_u64(file, "seed", &info->seed, why) < 0 ||
        attr_read_int(file, "step", &info->step, why) < 0 ||
        attr_read_int(file, "epoch", &info->epoch, why) < 0 ||
        attr_read_int(file, "ranks_at_save", &v, why) < 0 ||
        attr_read_str(file, "config", &info->config, why) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, "/", "%s", why);
        rpu_ckpt_info_free(info);
        return -1;
    }
    info->ranks_at_save = (int)v;
    return 0;
}

/* Opens path with fapl; a missing, unreadable or non-HDF5/truncated file is recorded. */
static hid_t open_file(const char *path, hid_t fapl, ck_ctx *cx, int check_exists) {
    char why[320];
    if (check_exists && access(path, R_OK) != 0) {
        CK_FAIL(cx, RPU_ERR_IO, NULL, "cannot read the file: %s", strerror(errno));
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (f < 0) {
        h5_why(why);
        CK_FAIL(cx, RPU_ERR_FORMAT, "(file)",
                "not a readable HDF5 file: truncated or corrupted (%s)", why);
    }
    return f;
}

static void load_layer(hid_t layers_g, ck_lplan *pl, ck_reader *r, int *stop) {
    ck_ctx *cx = r->cx;
    char obj[CK_LAYER_NAME + 128], why[320];
    snprintf(obj, sizeof obj, "/layers/%s", pl->name);
    if (H5Lexists(layers_g, pl->name, H5P_DEFAULT) == 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, obj, "the file has no layer '%s' (model mismatch)", pl->name);
        *stop = 1;
        return;
    }
    hid_t g = open_obj(layers_g, pl->name, H5O_TYPE_GROUP, obj, cx);
    if (g < 0) {
        *stop = 1;
        return;
    }
    ck_lattrs fa;
    if (lattrs_read(g, &fa, why) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, obj, "%s", why);
        *stop = 1;
        H5Gclose(g);
        return;
    }
    const ck_lattrs *ma = &pl->attrs;
    if (!lattrs_match(&fa, ma, why) ||
        !config_match(fa.rpu_config, rpu_conv_config(pl->layer), why)) {
        CK_FAIL(cx, RPU_ERR_FORMAT, obj, "model mismatch: %s", why);
        *stop = 1;
    }
    lattrs_free(&fa);
    if (*stop) {
        H5Gclose(g);
        return;
    }
    if (!strcmp(ma->bias, "digital")) {
        hsize_t d = (hsize_t)ma->out_ch;
        void *buf = NULL;
        snprintf(obj, sizeof obj, "/layers/%s/bias", pl->name);
        int rr =
            read_dataset(r, g, "bias", obj, RPU_CKPT_F32, 1, &d, false, NULL, NULL, true, &buf);
        pl->bias_buf = (float *)buf;
        if (rr < 0) {
            *stop = 1;
            H5Gclose(g);
            return;
        }
    }
    snprintf(obj, sizeof obj, "/layers/%s/tiles", pl->name);
    hid_t tg = open_obj(g, "tiles", H5O_TYPE_GROUP, obj, cx);
    if (tg < 0) {
        *stop = 1;
        H5Gclose(g);
        return;
    }
    if (link_count(tg) != (hsize_t)ma->n_tiles) {
        CK_FAIL(cx, RPU_ERR_FORMAT, obj, "%llu tiles in the file, %d in the model",
                (unsigned long long)link_count(tg), ma->n_tiles);
        *stop = 1;
    }
    for (int t = 0; t < ma->n_tiles && !*stop; ++t) {
        char key[48];
        tile_key(ma->groups, ma->n_in, ma->n_out, t, key);
        snprintf(obj, sizeof obj, "/layers/%s/tiles/%s", pl->name, key);
        hid_t kg = open_obj(tg, key, H5O_TYPE_GROUP, obj, cx);
        if (kg < 0) {
            *stop = 1;
            break;
        }
        ck_tile *ct = &pl->tiles[t];
        const bool mine = rpu_conv_tile(pl->layer, t) != NULL;
        if (mine && !(ct->buf = (void **)calloc((size_t)ct->n_items, sizeof(void *))))
            CK_FAIL(cx, RPU_ERR_NOMEM, obj, "out of memory");
        int n_attr = 0;
        for (int k = 0; k < ct->n_items && !*stop; ++k) {
            const ck_item *ci = &ct->items[k];
            hsize_t want[2] = {(hsize_t)ci->rows, (hsize_t)ci->cols};
            char iobj[sizeof obj + CK_ITEM_NAME];
            snprintf(iobj, sizeof iobj, "%s/%s", obj, ci->name);
            void *buf = NULL;
            int rr;
            if (ci->attr) {
                ++n_attr;
                rr = read_scalar_attr(cx, kg, ci->name, iobj, (rpu_ckpt_dtype)ci->dtype,
                                      mine && ct->buf, &buf);
            } else {
                rr = read_dataset(r, kg, ci->name, iobj, (rpu_ckpt_dtype)ci->dtype, 2, want, false,
                                  NULL, NULL, mine && ct->buf, &buf);
            }
            if (ct->buf)
                ct->buf[k] = buf;
            else
                free(buf);
            if (rr < 0) *stop = 1;
        }
        if (!*stop && link_count(kg) != (hsize_t)(ct->n_items - n_attr)) {
            ck_extra_scan s = {ct->items, ct->n_items, ""};
            hsize_t idx = 0;
            H5Literate(kg, H5_INDEX_NAME, H5_ITER_INC, &idx, extra_cb, &s);
            CK_FAIL(cx, RPU_ERR_FORMAT, obj,
                    "tile group has %llu datasets, the model's tile %d (first unexpected: "
                    "'%s')",
                    (unsigned long long)link_count(kg), ct->n_items - n_attr, s.extra);
            *stop = 1;
        }
        if (!*stop) {
            H5O_info_t oi;
            memset(&oi, 0, sizeof oi);
            if (H5Oget_info2(kg, &oi, H5O_INFO_NUM_ATTRS) < 0 || oi.num_attrs != (hsize_t)n_attr) {
                CK_FAIL(cx, RPU_ERR_FORMAT, obj,
                        "tile group has %llu attributes, the model's tile %d",
                        (unsigned long long)oi.num_attrs, n_attr);
                *stop = 1;
            }
        }
        H5Gclose(kg);
    }
    H5Gclose(tg);
    H5Gclose(g);
}

/* Layer names in /layers that the model does not have: the first into s->extra. */
typedef struct {
    const ck_lplan *pl;
    int n;
    char extra[CK_LAYER_NAME + 16];
} ck_layer_scan;
static herr_t layer_extra_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g, (void)info;
    ck_layer_scan *s = (ck_layer_scan *)data;
    for (int k = 0; k < s->n; ++k)
        if (!strcmp(s->pl[k].name, name)) return 0;
    snprintf(s->extra, sizeof s->extra, "%s", name);
    return 1;
}

/* Checks that every component of path exists (H5Lexists needs existing parents). */
static int path_exists(hid_t file, const char *path) {
    char *buf = strdup(path);
    if (!buf) return 0;
    int ok = 1;
    for (char *s = buf; ok; ++s) {
        const char c = *s;
        if (c == '/' || c == '\0') {
            *s = '\0';
            ok = H5Lexists(file, buf, H5P_DEFAULT) > 0;
            if (c == '\0') break;
            *s = '/';
        }
    }
    free(buf);
    return ok;
}

rpu_status rpu_ckpt_load(MPI_Comm comm_in, const char *path, const rpu_ckpt_layer *layers,
                         int n_layers, rpu_ckpt_array *arrays, int n_arrays, rpu_ckpt_info *info) {
    if (comm_in == MPI_COMM_NULL) return RPU_FAIL(RPU_ERR_ARG, "checkpoint load: MPI_COMM_NULL");
    if (!path || !*path) return RPU_FAIL(RPU_ERR_ARG, "checkpoint load: path is NULL or empty");
    MPI_Comm comm;
    if (MPI_Comm_dup(comm_in, &comm) != MPI_SUCCESS)
        return RPU_FAIL(RPU_ERR_MPI, "checkpoint %s: MPI_Comm_dup failed", path);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    ck_ctx cx = {.path = path, .st = RPU_OK, .msg = ""};
    ck_quiet q;
    quiet_on(&q);
    ck_lplan *pl = NULL;
    hid_t fapl = -1, dxpl = -1, file = -1, lg = -1;
    rpu_ckpt_info fi;
    memset(&fi, 0, sizeof fi);
    void **abuf = NULL;
    int *andim = NULL;
    int64_t(*adims)[2] = NULL;
    int stop = 0;

    uint64_t h = check_args(comm, layers, n_layers, arrays, n_arrays, false, &cx);
    h = fnv_str(h, path);
    check_same(comm, h, &cx);
    if (ck_agree(comm, &cx) != RPU_OK) goto out;
    pl = plan_build(comm, layers, n_layers, &cx);
    if (n_arrays > 0) {
        abuf = (void **)calloc((size_t)n_arrays, sizeof *abuf);
        andim = (int *)calloc((size_t)n_arrays, sizeof *andim);
        adims = (int64_t(*)[2])calloc((size_t)n_arrays, sizeof *adims);
        if (!abuf || !andim || !adims) CK_FAIL(&cx, RPU_ERR_NOMEM, NULL, "out of memory");
    }
    if (rank == 0 && access(path, R_OK) != 0)
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "cannot read the file: %s", strerror(errno));
    fapl = make_fapl(comm);
    dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (fapl < 0 || dxpl < 0 || H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0 ||
        H5Pset_edc_check(dxpl, H5Z_ENABLE_EDC) < 0) {
        char why[320];
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "cannot set up HDF5 (%s)", h5_why(why));
    }
    if (ck_agree(comm, &cx) != RPU_OK) goto out;
    file = open_file(path, fapl, &cx, 0);
    if (ck_agree(comm, &cx) != RPU_OK) goto out;

    /* metadata, layers and tiles: every rank makes the same calls */
    if (read_root(file, &fi, &cx) < 0) stop = 1;
    if (!stop) {
        lg = open_obj(file, "layers", H5O_TYPE_GROUP, "/layers", &cx);
        if (lg < 0) stop = 1;
    }
    if (!stop) {
        ck_layer_scan s = {pl, n_layers, ""};
        hsize_t idx = 0;
        H5Literate(lg, H5_INDEX_NAME, H5_ITER_INC, &idx, layer_extra_cb, &s);
        if (s.extra[0]) {
            char obj[CK_LAYER_NAME + 16];
            snprintf(obj, sizeof obj, "/layers/%s", s.extra);
            CK_FAIL(&cx, RPU_ERR_FORMAT, obj,
                    "model mismatch: the file has layer '%s', which the model does not have",
                    s.extra);
            stop = 1;
        }
    }
    ck_reader rd = {&cx, dxpl};
    for (int i = 0; i < n_layers && !stop; ++i)
        load_layer(lg, &pl[i], &rd, &stop);
    for (int i = 0; i < n_arrays && !stop; ++i) {
        rpu_ckpt_array *a = &arrays[i];
        char obj[CK_ARRAY_PATH + 2];
        snprintf(obj, sizeof obj, "/%s", a->path);
        if (!path_exists(file, a->path)) {
            if (!a->optional) {
                CK_FAIL(&cx, RPU_ERR_FORMAT, obj, "dataset is missing");
                stop = 1;
            }
            continue;
        }
        hsize_t got[2] = {0, 0};
        int nd = 0;
        if (read_dataset(&rd, file, a->path, obj, a->dtype, 1, NULL, true, &nd, got, true,
                         &abuf[i]) < 0)
            stop = 1;
        andim[i] = nd;
        adims[i][0] = (int64_t)got[0];
        adims[i][1] = nd == 2 ? (int64_t)got[1] : 0;
    }
    if (lg >= 0) H5Gclose(lg);
    lg = -1;
    if (H5Fclose(file) < 0 && cx.st == RPU_OK) {
        char why[320];
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "close failed (%s)", h5_why(why));
    }
    file = -1;
    if (ck_agree(comm, &cx) != RPU_OK) goto out;

    /* verified on every rank: replace the state */
    for (int i = 0; i < n_layers; ++i) {
        for (int t = 0; t < pl[i].attrs.n_tiles; ++t) {
            rpu_tile *tile = rpu_conv_tile(pl[i].layer, t);
            ck_tile *ct = &pl[i].tiles[t];
            if (!tile || !ct->buf) continue;
            rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
            const int n = rpu_tile_state_items(tile, it, RPU_TILE_MAX_STATE_ITEMS);
            for (int k = 0; k < n && k < ct->n_items; ++k)
                memcpy(it[k].data, ct->buf[k],
                       it[k].count * dtype_size((rpu_ckpt_dtype)ct->items[k].dtype));
        }
        if (pl[i].bias_buf) rpu_conv_set_digital_bias(pl[i].layer, pl[i].bias_buf);
        rpu_conv_state_loaded(pl[i].layer);
    }
    for (int i = 0; i < n_arrays; ++i) {
        arrays[i].data = abuf[i];
        abuf[i] = NULL;
        arrays[i].ndim = andim[i];
        arrays[i].dims[0] = adims[i][0];
        arrays[i].dims[1] = adims[i][1];
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
    quiet_off(&q);
    rpu_ckpt_info_free(&fi);
    plan_free(pl, n_layers);
    if (abuf)
        for (int i = 0; i < n_arrays; ++i)
            free(abuf[i]);
    free(abuf);
    free(andim);
    free(adims);
    MPI_Comm_free(&comm);
    return cx.st;
}

/* ------------------------------------------------------------------ reader (no MPI) */

struct rpu_ckpt_file {
    hid_t file;
    char *path;
    rpu_ckpt_info info;
    int n_layers;
    char (*names)[CK_LAYER_NAME];
    ck_lattrs *attrs;
    rpu_ckpt_layer_desc *desc;
    /* names of the last rpu_ckpt_file_tile_items call */
    char (*item_names)[CK_ITEM_NAME];
    int item_cap;
};

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

/* Iterates links in creation order when tracked, else by name. */
static herr_t iterate(hid_t g, H5L_iterate_t cb, void *data) {
    hsize_t idx = 0;
    hid_t gcpl = H5Gget_create_plist(g);
    unsigned flags = 0;
    int crt = gcpl >= 0 && H5Pget_link_creation_order(gcpl, &flags) >= 0 &&
              (flags & H5P_CRT_ORDER_INDEXED);
    if (gcpl >= 0) H5Pclose(gcpl);
    return H5Literate(g, crt ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME, H5_ITER_INC, &idx, cb, data);
}

rpu_status rpu_ckpt_open(const char *path, rpu_ckpt_file **file) {
    if (!file) return RPU_FAIL(RPU_ERR_ARG, "rpu_ckpt_open: file is NULL");
    *file = NULL;
    if (!path || !*path) return RPU_FAIL(RPU_ERR_ARG, "rpu_ckpt_open: path is NULL or empty");
    ck_ctx cx = {.path = path, .st = RPU_OK, .msg = ""};
    ck_quiet q;
    quiet_on(&q);
    rpu_ckpt_file *f = (rpu_ckpt_file *)calloc(1, sizeof *f);
    hid_t fapl = make_fapl(MPI_COMM_NULL);
    ck_name_list nl = {NULL, 0, 0, 0};
    hid_t lg = -1;
    if (!f || !(f->path = strdup(path))) {
        CK_FAIL(&cx, RPU_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    f->file = -1;
    if (fapl < 0) {
        CK_FAIL(&cx, RPU_ERR_IO, NULL, "cannot set up HDF5");
        goto out;
    }
    f->file = open_file(path, fapl, &cx, 1);
    if (f->file < 0) goto out;
    if (read_root(f->file, &f->info, &cx) < 0) goto out;
    lg = open_obj(f->file, "layers", H5O_TYPE_GROUP, "/layers", &cx);
    if (lg < 0) goto out;
    if (iterate(lg, collect_cb, &nl) < 0 || nl.bad) {
        CK_FAIL(&cx, RPU_ERR_FORMAT, "/layers", "cannot list the layers");
        goto out;
    }
    f->n_layers = nl.n;
    f->names = nl.names;
    nl.names = NULL;
    f->attrs = (ck_lattrs *)calloc((size_t)(f->n_layers ? f->n_layers : 1), sizeof *f->attrs);
    f->desc =
        (rpu_ckpt_layer_desc *)calloc((size_t)(f->n_layers ? f->n_layers : 1), sizeof *f->desc);
    if (!f->attrs || !f->desc) {
        CK_FAIL(&cx, RPU_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < f->n_layers; ++i) {
        char obj[CK_LAYER_NAME + 16], why[320];
        snprintf(obj, sizeof obj, "/layers/%s", f->names[i]);
        hid_t g = open_obj(lg, f->names[i], H5O_TYPE_GROUP, obj, &cx);
        if (g < 0) goto out;
        int r = lattrs_read(g, &f->attrs[i], why);
        H5Gclose(g);
        if (r < 0) {
            CK_FAIL(&cx, RPU_ERR_FORMAT, obj, "%s", why);
            goto out;
        }
        const ck_lattrs *a = &f->attrs[i];
        rpu_ckpt_layer_desc *d = &f->desc[i];
        d->name = f->names[i];
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
        d->layer_id = a->layer_id;
        d->seed = a->seed;
        d->n_in = a->n_in;
        d->n_out = a->n_out;
        d->n_tiles = a->n_tiles;
        d->in_split_sizes = a->in_split;
        d->out_split_sizes = a->out_split;
        d->rpu_config = a->rpu_config;
    }
out:
    if (lg >= 0) H5Gclose(lg);
    if (fapl >= 0) H5Pclose(fapl);
    free(nl.names);
    quiet_off(&q);
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
        ck_quiet q;
        quiet_on(&q);
        H5Fclose(f->file);
        quiet_off(&q);
    }
    if (f->attrs)
        for (int i = 0; i < f->n_layers; ++i)
            lattrs_free(&f->attrs[i]);
    free(f->attrs);
    free(f->desc);
    free(f->names);
    free(f->item_names);
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
    tile_key(desc->groups, desc->n_in, desc->n_out, t, key);
    return RPU_OK;
}

typedef struct {
    rpu_ckpt_file *f;
    rpu_ckpt_item_desc *items;
    int max, n;
    int bad;
    char why[320];
} ck_item_scan;

/* Appends one item (name stored in f->item_names). Returns 0 or 1 (stop). */
static int scan_push(ck_item_scan *s, const char *name, int dtype, hsize_t rows, hsize_t cols,
                     bool attribute) {
    if (s->n == s->f->item_cap) {
        int cap = 2 * s->f->item_cap + 16;
        char(*p)[CK_ITEM_NAME] =
            (char(*)[CK_ITEM_NAME])realloc(s->f->item_names, (size_t)cap * CK_ITEM_NAME);
        if (!p) {
            snprintf(s->why, sizeof s->why, "out of memory");
            s->bad = 2;
            return 1;
        }
        s->f->item_names = p;
        s->f->item_cap = cap;
    }
    snprintf(s->f->item_names[s->n], CK_ITEM_NAME, "%s", name);
    if (s->n < s->max) {
        s->items[s->n].dtype = (rpu_ckpt_dtype)dtype;
        s->items[s->n].rows = (int64_t)rows;
        s->items[s->n].cols = (int64_t)cols;
        s->items[s->n].attribute = attribute;
    }
    s->n++;
    return 0;
}

static herr_t item_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    ck_item_scan *s = (ck_item_scan *)data;
    if (strlen(name) >= CK_ITEM_NAME) {
        snprintf(s->why, sizeof s->why, "object name '%.60s' is too long", name);
        s->bad = 1;
        return 1;
    }
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0) {
        snprintf(s->why, sizeof s->why, "'%s' is not a dataset", name);
        s->bad = 1;
        return 1;
    }
    hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds);
    const int k = t >= 0 ? dtype_of(t) : -1;
    const int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[2] = {0, 0};
    if (nd == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    if (k < 0 || nd != 2) {
        snprintf(s->why, sizeof s->why, "dataset '%s' is not a 2-d array of a known type", name);
        s->bad = 1;
        return 1;
    }
    return scan_push(s, name, k, dims[0], dims[1], false);
}

static herr_t attr_cb(hid_t g, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    ck_item_scan *s = (ck_item_scan *)data;
    if (strlen(name) >= CK_ITEM_NAME) {
        snprintf(s->why, sizeof s->why, "attribute name '%.60s' is too long", name);
        s->bad = 1;
        return 1;
    }
    attr_h h = attr_open(g, name);
    const int k = h.t >= 0 ? dtype_of(h.t) : -1;
    const hssize_t np = h.sp >= 0 ? H5Sget_simple_extent_npoints(h.sp) : -1;
    attr_close(&h);
    if (k < 0 || np != 1) {
        snprintf(s->why, sizeof s->why, "attribute '%s' is not one number of a known type", name);
        s->bad = 1;
        return 1;
    }
    return scan_push(s, name, k, 1, 1, true);
}

rpu_status rpu_ckpt_file_tile_items(rpu_ckpt_file *f, int layer, int t, rpu_ckpt_item_desc *items,
                                    int max, int *count) {
    if (count) *count = 0;
    if (!f || !count || (max > 0 && !items) || layer < 0 || layer >= f->n_layers || t < 0 ||
        t >= f->desc[layer].n_tiles)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_ckpt_file_tile_items: bad arguments (layer %d, tile %d)",
                        layer, t);
    ck_ctx cx = {.path = f->path, .st = RPU_OK, .msg = ""};
    char key[48], obj[CK_LAYER_NAME + 80];
    tile_key(f->desc[layer].groups, f->desc[layer].n_in, f->desc[layer].n_out, t, key);
    snprintf(obj, sizeof obj, "/layers/%s/tiles/%s", f->names[layer], key);
    ck_quiet q;
    quiet_on(&q);
    hid_t g = path_exists(f->file, obj + 1) ? open_obj(f->file, obj, H5O_TYPE_GROUP, obj, &cx) : -1;
    if (g < 0) {
        CK_FAIL(&cx, RPU_ERR_FORMAT, obj, "tile group is missing");
    } else {
        ck_item_scan s = {f, items, max < 0 ? 0 : max, 0, 0, ""};
        /* the datasets, then the attributes (the 1 x 1 items), each in creation order */
        hid_t gcpl = H5Gget_create_plist(g);
        unsigned flags = 0;
        const int crt = gcpl >= 0 && H5Pget_attr_creation_order(gcpl, &flags) >= 0 &&
                        (flags & H5P_CRT_ORDER_INDEXED);
        if (gcpl >= 0) H5Pclose(gcpl);
        hsize_t idx = 0;
        if (iterate(g, item_cb, &s) < 0 || s.bad ||
            H5Aiterate2(g, crt ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME, H5_ITER_INC, &idx, attr_cb,
                        &s) < 0 ||
            s.bad)
            CK_FAIL(&cx, s.bad == 2 ? RPU_ERR_NOMEM : RPU_ERR_FORMAT, obj, "%s",
                    s.why[0] ? s.why : "cannot list the datasets and attributes");
        else {
            for (int k = 0; k < s.n && k < max; ++k)
                items[k].name = f->item_names[k];
            *count = s.n;
        }
        H5Gclose(g);
    }
    quiet_off(&q);
    return cx.st;
}

rpu_status rpu_ckpt_file_read(rpu_ckpt_file *f, const char *path, double **values, int *ndim,
                              int64_t dims[2]) {
    if (!f || !path || !values || !ndim || !dims)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_ckpt_file_read: NULL argument");
    *values = NULL;
    *ndim = 0;
    dims[0] = dims[1] = 0;
    ck_ctx cx = {.path = f->path, .st = RPU_OK, .msg = ""};
    char obj[CK_ARRAY_PATH + 80], why[320];
    snprintf(obj, sizeof obj, "/%s", path[0] == '/' ? path + 1 : path);
    ck_quiet q;
    quiet_on(&q);
    hid_t ds = -1, sp = -1, t = -1;
    if (strlen(obj) >= CK_ARRAY_PATH + 64) {
        CK_FAIL(&cx, RPU_ERR_FORMAT, obj, "dataset is missing");
        goto out;
    }
    if (!path_exists(f->file, obj + 1)) {
        /* a 1 x 1 item: an attribute of the parent group */
        char *slash = strrchr(obj, '/');
        int found = 0;
        if (slash && slash > obj) {
            *slash = '\0';
            if (path_exists(f->file, obj + 1) &&
                H5Aexists_by_name(f->file, obj, slash + 1, H5P_DEFAULT) > 0) {
                hid_t a = H5Aopen_by_name(f->file, obj, slash + 1, H5P_DEFAULT, H5P_DEFAULT);
                hid_t at = a >= 0 ? H5Aget_type(a) : -1, as = a >= 0 ? H5Aget_space(a) : -1;
                const H5T_class_t c = at >= 0 ? H5Tget_class(at) : H5T_NO_CLASS;
                double *v = (double *)malloc(sizeof(double));
                found = v && as >= 0 && H5Sget_simple_extent_npoints(as) == 1 &&
                        (c == H5T_INTEGER || c == H5T_FLOAT) &&
                        H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0;
                if (found) {
                    *values = v;
                    *ndim = 2;
                    dims[0] = dims[1] = 1;
                } else {
                    free(v);
                }
                if (at >= 0) H5Tclose(at);
                if (as >= 0) H5Sclose(as);
                if (a >= 0) H5Aclose(a);
            }
            *slash = '/';
        }
        if (!found) CK_FAIL(&cx, RPU_ERR_FORMAT, obj, "dataset is missing");
        goto out;
    }
    ds = open_obj(f->file, obj, H5O_TYPE_DATASET, obj, &cx);
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
        h5_why(why);
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
    quiet_off(&q);
    return cx.st;
}
