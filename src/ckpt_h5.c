/* Checkpoints: HDF5 plumbing shared by the save, the load and the serial reader — error
 * records and their agreement across ranks, element types, attributes, files and objects
 * (see ckpt_impl.h). */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "ckpt_impl.h"

#include "agree_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ errors */

ck_ctx ck_ctx_for(const char *path) {
    ck_ctx cx;
    memset(&cx, 0, sizeof cx);
    cx.path = path;
    cx.st = RPU_OK;
    return cx;
}

rpu_status ck_fail_at(ck_ctx *cx, rpu_status code, const char *file, int line, const char *obj,
                      const char *fmt, ...) {
    if (cx->st != RPU_OK) return code; /* keep the first failure: it is the cause */
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (obj)
        snprintf(cx->text, sizeof cx->text, "checkpoint %s: %s: %s", cx->path, obj, what);
    else
        snprintf(cx->text, sizeof cx->text, "checkpoint %s: %s", cx->path, what);
    cx->st = code;
    cx->file = file;
    cx->line = line;
    return rpu_error_at(code, file, line, "%s", cx->text);
}

rpu_status ck_agree(MPI_Comm comm, ck_ctx *cx) {
    /* this rank's first failure is the message to share (later calls may have recorded
     * others) */
    if (cx->st != RPU_OK && cx->file) rpu_error_at(cx->st, cx->file, cx->line, "%s", cx->text);
    const rpu_status s = rpu_agree(comm, cx->st);
    if (s != RPU_OK) {
        cx->st = s;
        cx->file = NULL; /* rpu_last_error() holds the agreed message */
    }
    return s;
}

/* ------------------------------------------------------------------ HDF5's printing */

void rpu_ckpt_silence_hdf5(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* ------------------------------------------------------------------ element types */

/* The file (little endian) and memory types of t; -1 for an unknown t. */
static void types_of(rpu_ckpt_dtype t, hid_t *file, hid_t *mem) {
    *file = *mem = -1;
    switch (t) {
    case RPU_CKPT_F32:
        *file = H5T_IEEE_F32LE, *mem = H5T_NATIVE_FLOAT;
        break;
    case RPU_CKPT_F64:
        *file = H5T_IEEE_F64LE, *mem = H5T_NATIVE_DOUBLE;
        break;
    case RPU_CKPT_I32:
        *file = H5T_STD_I32LE, *mem = H5T_NATIVE_INT32;
        break;
    case RPU_CKPT_I64:
        *file = H5T_STD_I64LE, *mem = H5T_NATIVE_INT64;
        break;
    case RPU_CKPT_U64:
        *file = H5T_STD_U64LE, *mem = H5T_NATIVE_UINT64;
        break;
    case RPU_CKPT_U8:
        *file = H5T_STD_U8LE, *mem = H5T_NATIVE_UINT8;
        break;
    }
}

hid_t ck_file_type(rpu_ckpt_dtype t) {
    hid_t f, m;
    types_of(t, &f, &m);
    return f;
}

hid_t ck_mem_type(rpu_ckpt_dtype t) {
    hid_t f, m;
    types_of(t, &f, &m);
    return m;
}

size_t ck_dtype_size(rpu_ckpt_dtype t) {
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

const char *rpu_ckpt_dtype_name(rpu_ckpt_dtype t) {
    static const char *const names[] = {"float32", "float64", "int32", "int64", "uint64", "uint8"};
    return ck_valid_dtype((int)t) ? names[t] : "unknown type";
}

const char *ck_dtype_name(int t) {
    return rpu_ckpt_dtype_name((rpu_ckpt_dtype)t);
}

bool ck_valid_dtype(int t) {
    return t >= RPU_CKPT_F32 && t <= RPU_CKPT_U8;
}

int ck_dtype_of(hid_t type) {
    for (int k = RPU_CKPT_F32; k <= RPU_CKPT_U8; ++k)
        if (H5Tequal(type, ck_file_type((rpu_ckpt_dtype)k)) > 0) return k;
    return -1;
}

/* ------------------------------------------------------------------ attributes */

int ck_attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, int n, const void *v) {
    hsize_t d = (hsize_t)(n < 0 ? 0 : n);
    hid_t sp = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, NULL);
    if (sp < 0) return -1;
    hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, mtype, v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

int ck_attr_write_str(hid_t obj, const char *name, const char *s) {
    /* fixed length, NUL-terminated: stored inside the (checksummed) object header */
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    int ok = H5Tset_size(t, strlen(s) + 1) >= 0 && H5Tset_strpad(t, H5T_STR_NULLTERM) >= 0 &&
             H5Tset_cset(t, H5T_CSET_UTF8) >= 0 && ck_attr_write(obj, name, t, t, -1, s) == 0;
    H5Tclose(t);
    return ok ? 0 : -1;
}

int ck_attr_write_i32(hid_t obj, const char *name, int v) {
    int32_t x = v;
    return ck_attr_write(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, -1, &x);
}

int ck_attr_write_i32s(hid_t obj, const char *name, const int *v, int n) {
    int32_t *y = (int32_t *)malloc((size_t)(n > 0 ? n : 1) * sizeof *y);
    if (!y) return -1;
    for (int i = 0; i < n; ++i)
        y[i] = v[i];
    int r = ck_attr_write(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, n, y);
    free(y);
    return r;
}

ck_attr_h ck_attr_open(hid_t obj, const char *name) {
    ck_attr_h h;
    h.a = H5Aopen(obj, name, H5P_DEFAULT);
    h.t = h.a >= 0 ? H5Aget_type(h.a) : -1;
    h.sp = h.a >= 0 ? H5Aget_space(h.a) : -1;
    return h;
}

bool ck_attr_ok(const ck_attr_h *h) {
    return h->a >= 0 && h->t >= 0 && h->sp >= 0;
}

void ck_attr_close(ck_attr_h *h) {
    if (h->sp >= 0) H5Sclose(h->sp);
    if (h->t >= 0) H5Tclose(h->t);
    if (h->a >= 0) H5Aclose(h->a);
    h->a = h->t = h->sp = -1;
}

/* Opens attribute obj/name for a read: -1 and why when it is missing or unreadable. */
static int attr_open_checked(hid_t obj, const char *name, ck_attr_h *h, char *why) {
    h->a = h->t = h->sp = -1;
    const htri_t ex = H5Aexists(obj, name);
    if (ex == 0) {
        snprintf(why, CK_WHY, "attribute '%s' is missing", name);
        return -1;
    }
    if (ex > 0) *h = ck_attr_open(obj, name);
    if (ex < 0 || !ck_attr_ok(h)) {
        char w[CK_WHY];
        snprintf(why, CK_WHY, "attribute '%s' unreadable (%.200s)", name, rpu_h5_why(w));
        ck_attr_close(h);
        return -1;
    }
    return 0;
}

static void unreadable(const char *name, char *why) {
    char w[CK_WHY];
    snprintf(why, CK_WHY, "attribute '%s' unreadable (%.200s)", name, rpu_h5_why(w));
}

int ck_attr_read_ints(hid_t obj, const char *name, int64_t *v, int max, int *n, char *why) {
    ck_attr_h h;
    if (attr_open_checked(obj, name, &h, why) < 0) return -1;
    int r = -1;
    if (H5Tget_class(h.t) != H5T_INTEGER) {
        snprintf(why, CK_WHY, "attribute '%s' is not an integer", name);
    } else {
        const int nd = H5Sget_simple_extent_ndims(h.sp);
        const hssize_t np = H5Sget_simple_extent_npoints(h.sp);
        if (nd < 0 || nd > 1 || np < 0 || np > max) {
            snprintf(why, CK_WHY, "attribute '%s' has %lld values, expected at most %d", name,
                     (long long)np, max);
        } else if (np > 0 && H5Aread(h.a, H5T_NATIVE_INT64, v) < 0) {
            unreadable(name, why);
        } else {
            *n = (int)np;
            r = 0;
        }
    }
    ck_attr_close(&h);
    return r;
}

int ck_attr_read_int(hid_t obj, const char *name, int64_t *v, char *why) {
    int n = 0;
    if (ck_attr_read_ints(obj, name, v, 1, &n, why) < 0) return -1;
    if (n != 1) {
        snprintf(why, CK_WHY, "attribute '%s' has no value", name);
        return -1;
    }
    return 0;
}

int ck_attr_read_u64(hid_t obj, const char *name, uint64_t *v, char *why) {
    ck_attr_h h;
    if (attr_open_checked(obj, name, &h, why) < 0) return -1;
    int r = -1;
    if (H5Tget_class(h.t) != H5T_INTEGER || H5Sget_simple_extent_npoints(h.sp) != 1)
        snprintf(why, CK_WHY, "attribute '%s' is not one integer", name);
    else if (H5Aread(h.a, H5T_NATIVE_UINT64, v) < 0)
        unreadable(name, why);
    else
        r = 0;
    ck_attr_close(&h);
    return r;
}

int ck_attr_read_str(hid_t obj, const char *name, char **out, char *why) {
    *out = NULL;
    ck_attr_h h;
    if (attr_open_checked(obj, name, &h, why) < 0) return -1;
    int r = -1;
    if (H5Tget_class(h.t) != H5T_STRING || H5Sget_simple_extent_npoints(h.sp) != 1) {
        snprintf(why, CK_WHY, "attribute '%s' is not one string", name);
    } else if (H5Tis_variable_str(h.t) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        char *p = NULL;
        if (mt >= 0 && H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(h.a, mt, &p) >= 0 && p) {
            *out = strdup(p);
            H5free_memory(p);
            if (*out)
                r = 0;
            else
                snprintf(why, CK_WHY, "out of memory");
        } else {
            unreadable(name, why);
        }
        if (mt >= 0) H5Tclose(mt);
    } else {
        const size_t sz = H5Tget_size(h.t);
        char *buf = sz > 0 && sz < (1u << 30) ? (char *)malloc(sz + 1) : NULL;
        if (!buf) {
            snprintf(why, CK_WHY, "attribute '%s': bad size %zu", name, sz);
        } else if (H5Aread(h.a, h.t, buf) < 0) {
            unreadable(name, why);
            free(buf);
        } else {
            buf[sz] = '\0';
            *out = buf;
            r = 0;
        }
    }
    ck_attr_close(&h);
    return r;
}

/* ------------------------------------------------------------------ files and objects */

hid_t ck_make_fapl(MPI_Comm comm) {
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

int ck_set_group_props(hid_t gcpl) {
    const unsigned order = H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED;
    return H5Pset_link_creation_order(gcpl, order) >= 0 &&
                   H5Pset_attr_creation_order(gcpl, order) >= 0 &&
                   H5Pset_attr_phase_change(gcpl, CK_COMPACT_ATTRS, CK_COMPACT_ATTRS) >= 0 &&
                   H5Pset_link_phase_change(gcpl, CK_COMPACT_LINKS, CK_COMPACT_LINKS - 16) >= 0
               ? 0
               : -1;
}

hid_t ck_open_file(const char *path, hid_t fapl, ck_ctx *cx, bool check_exists) {
    char why[CK_WHY];
    if (check_exists && access(path, R_OK) != 0) {
        CK_FAIL(cx, RPU_ERR_IO, NULL, "cannot read the file: %s", strerror(errno));
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (f < 0)
        CK_FAIL(cx, RPU_ERR_FORMAT, "(file)",
                "not a readable HDF5 file: truncated or corrupted (%s)", rpu_h5_why(why));
    return f;
}

hid_t ck_open_obj(hid_t loc, const char *name, H5O_type_t want, const char *objpath, ck_ctx *cx) {
    char why[CK_WHY];
    const char *what = want == H5O_TYPE_GROUP ? "group" : "dataset";
    const htri_t ex = H5Lexists(loc, name, H5P_DEFAULT);
    if (ex == 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "%s is missing", what);
        return -1;
    }
    if (ex < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "cannot read the link (%s)", rpu_h5_why(why));
        return -1;
    }
    H5O_info_t oi;
    if (H5Oget_info_by_name2(loc, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "unreadable object header (%s)", rpu_h5_why(why));
        return -1;
    }
    if (oi.type != want) {
        CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "is not a %s", what);
        return -1;
    }
    hid_t h = want == H5O_TYPE_GROUP ? H5Gopen2(loc, name, H5P_DEFAULT)
                                     : H5Dopen2(loc, name, H5P_DEFAULT);
    if (h < 0) CK_FAIL(cx, RPU_ERR_FORMAT, objpath, "cannot open %s (%s)", what, rpu_h5_why(why));
    return h;
}

bool ck_path_exists(hid_t file, const char *path) {
    char *buf = strdup(path);
    if (!buf) return false;
    bool ok = true;
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

herr_t ck_iterate(hid_t g, H5L_iterate_t cb, void *data) {
    hsize_t idx = 0;
    hid_t gcpl = H5Gget_create_plist(g);
    unsigned flags = 0;
    const bool crt = gcpl >= 0 && H5Pget_link_creation_order(gcpl, &flags) >= 0 &&
                     (flags & H5P_CRT_ORDER_INDEXED);
    if (gcpl >= 0) H5Pclose(gcpl);
    return H5Literate(g, crt ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME, H5_ITER_INC, &idx, cb, data);
}

hsize_t ck_link_count(hid_t g) {
    H5G_info_t gi;
    return H5Gget_info(g, &gi) < 0 ? (hsize_t)-1 : gi.nlinks;
}
