/* Checkpoints: rpu_ckpt_save — the room check, the collective write of <path>.tmp and its
 * atomic publication (rename, rotation of the previous copies).
 *
 * Writing: HDF5 1.10 writes filtered (Fletcher32) datasets in parallel only collectively,
 * so every rank takes part in every H5Dwrite, the owner of a tile with the whole selection
 * and the others with empty ones. Underneath, MPI-IO writes independently
 * (H5FD_MPIO_INDIVIDUAL_IO): every chunk has one writer, so two-phase collective buffering
 * has nothing to merge, and it was 20-35 % faster per dataset. The 1 x 1 state items are
 * attributes of their tile group (metadata, written by every rank with the value shared in
 * the plan): no collective data transfer for them. Attributes and links live in version-2
 * object headers (library format v1.10) with their own checksums; attributes are kept in
 * the header (compact storage), never in the unchecksummed global heap.
 *
 * A full file system: parallel HDF5 allocates the chunks of a filtered dataset when it is
 * created and writes them (fill values pushed through the filter) collectively inside
 * H5Dcreate, whatever the fill time; a write that fails on some ranks there or in H5Dwrite
 * leaves the ranks in different collectives of HDF5's own, and a failed H5Fclose leaves a
 * file id that crashes HDF5's shutdown in MPI_Finalize. So the writes must not run out of
 * room: before anything is written every rank compares an upper bound of the file's size
 * (ck_plan_file_bytes) with the file size limit of its process (RLIMIT_FSIZE) and the free
 * space of the directory, and all agree; then rank 0 reserves that many bytes for the
 * .tmp (fallocate, where the file system supports it), which also covers quotas and space
 * taken by others after the check. A save that does not fit fails before its first write,
 * with the same message on every rank, and leaves nothing behind. */
#define _GNU_SOURCE /* fallocate, FALLOC_FL_KEEP_SIZE */
#include "ckpt_impl.h"

#include "rpusim/tile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* ------------------------------------------------------------------ the writer */

enum { CK_DCPL_CACHE = 16 };

typedef struct {
    ck_ctx *cx;
    hid_t dxpl, gcpl, lcpl; /* made once per save: property lists are costly to build */
    int n_dcpl;
    struct {
        int ndim;
        hsize_t chunk[RPU_CKPT_MAX_DIMS];
        hid_t dcpl;
    } dcpl[CK_DCPL_CACHE]; /* chunked + Fletcher32, by chunk shape */
    int rank;
    int fail_rank, fail_write; /* fault injection */
    int writes;                /* own dataset writes so far */
} ck_writer;

static int writer_init(ck_writer *w) {
    w->gcpl = H5Pcreate(H5P_GROUP_CREATE);
    w->lcpl = H5Pcreate(H5P_LINK_CREATE);
    w->dxpl = H5Pcreate(H5P_DATASET_XFER);
    return w->gcpl >= 0 && w->lcpl >= 0 && w->dxpl >= 0 && ck_set_group_props(w->gcpl) == 0 &&
                   H5Pset_create_intermediate_group(w->lcpl, 1) >= 0 &&
                   H5Pset_dxpl_mpio(w->dxpl, H5FD_MPIO_COLLECTIVE) >= 0 &&
                   H5Pset_dxpl_mpio_collective_opt(w->dxpl, H5FD_MPIO_INDIVIDUAL_IO) >= 0
               ? 0
               : -1;
}

static void writer_free(ck_writer *w) {
    if (w->gcpl >= 0) H5Pclose(w->gcpl);
    if (w->lcpl >= 0) H5Pclose(w->lcpl);
    if (w->dxpl >= 0) H5Pclose(w->dxpl);
    for (int k = 0; k < w->n_dcpl; ++k)
        H5Pclose(w->dcpl[k].dcpl);
    w->gcpl = w->lcpl = w->dxpl = -1;
    w->n_dcpl = 0;
}

/* The creation property list of a dataset of ndim/dims: chunks of at most CK_CHUNK_ELEMS
 * elements (whole rows) with Fletcher32; a contiguous layout for an empty dataset (a chunk
 * cannot be empty and there is no data to check). *owned: the caller closes it. */
static hid_t dataset_dcpl(ck_writer *w, int ndim, const hsize_t *dims, int *owned) {
    *owned = 0;
    const hsize_t n = ck_elems(ndim, dims);
    if (n == 0) return H5P_DEFAULT;
    hsize_t chunk[RPU_CKPT_MAX_DIMS];
    for (int d = 0; d < ndim; ++d)
        chunk[d] = dims[d];
    const hsize_t row = ck_elems(ndim - 1, dims + 1); /* elements per index of dims[0] */
    const hsize_t rows = row >= CK_CHUNK_ELEMS ? 1 : CK_CHUNK_ELEMS / row;
    if (rows < chunk[0]) chunk[0] = rows;
    for (int k = 0; k < w->n_dcpl; ++k)
        if (w->dcpl[k].ndim == ndim &&
            !memcmp(w->dcpl[k].chunk, chunk, (size_t)ndim * sizeof chunk[0]))
            return w->dcpl[k].dcpl;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0) return -1;
    if (H5Pset_chunk(dcpl, ndim, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0) {
        H5Pclose(dcpl);
        return -1;
    }
    if (w->n_dcpl < CK_DCPL_CACHE) {
        w->dcpl[w->n_dcpl].ndim = ndim;
        memcpy(w->dcpl[w->n_dcpl].chunk, chunk, (size_t)ndim * sizeof chunk[0]);
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
    char why[CK_WHY];
    const hsize_t n = ck_elems(ndim, dims);
    int owned = 0;
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t dcpl = dataset_dcpl(w, ndim, dims, &owned);
    hid_t ds = sp >= 0 && dcpl >= 0
                   ? H5Dcreate2(loc, name, ck_file_type(dt), sp, w->lcpl, dcpl, H5P_DEFAULT)
                   : -1;
    if (ds < 0) {
        CK_FAIL(w->cx, RPU_ERR_IO, objpath, "cannot create dataset (%s)", rpu_h5_why(why));
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
        if (H5Dwrite(ds, ck_mem_type(dt), sp, sp, w->dxpl, write ? data : (const void *)dummy) < 0)
            CK_FAIL(w->cx, RPU_ERR_IO, objpath, "write failed (%s)", rpu_h5_why(why));
    }
    if (ds >= 0) H5Dclose(ds);
    if (owned) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
}

/* Writes /layers/<name>: attributes, digital bias, one group per tile with its items. */
static void write_layer(hid_t layers_g, ck_lplan *pl, ck_writer *w) {
    ck_ctx *cx = w->cx;
    char obj[CK_LAYER_NAME + 128], why[CK_WHY];
    snprintf(obj, sizeof obj, "/layers/%s", pl->name);
    hid_t g = H5Gcreate2(layers_g, pl->name, H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
    if (g < 0) {
        CK_FAIL(cx, RPU_ERR_IO, obj, "cannot create group (%s)", rpu_h5_why(why));
        return;
    }
    if (ck_lattrs_write(g, &pl->attrs) < 0)
        CK_FAIL(cx, RPU_ERR_IO, obj, "cannot write attributes (%s)", rpu_h5_why(why));
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
    hid_t tg = H5Gcreate2(g, "tiles", H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
    if (tg < 0) {
        snprintf(obj, sizeof obj, "/layers/%s/tiles", pl->name);
        CK_FAIL(cx, RPU_ERR_IO, obj, "cannot create group (%s)", rpu_h5_why(why));
        H5Gclose(g);
        return;
    }
    const ck_lattrs *a = &pl->attrs;
    for (int t = 0; t < a->n_tiles; ++t) {
        char key[48];
        ck_tile_key(a->groups, a->n_in, a->n_out, t, key);
        hid_t kg = H5Gcreate2(tg, key, H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
        if (kg < 0) {
            snprintf(obj, sizeof obj, "/layers/%s/tiles/%s", pl->name, key);
            CK_FAIL(cx, RPU_ERR_IO, obj, "cannot create group (%s)", rpu_h5_why(why));
            continue;
        }
        rpu_tile *tile = rpu_conv_tile_owned(pl->layer, t);
        rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
        const int n = tile ? rpu_tile_state_items(tile, it, RPU_TILE_MAX_STATE_ITEMS) : 0;
        const ck_tile *ct = &pl->tiles[t];
        if (tile && n != ct->n_items)
            CK_FAIL(cx, RPU_ERR_INTERNAL, NULL, "tile %d of layer '%s': item count changed", t,
                    pl->name);
        for (int k = 0; k < ct->n_items; ++k) {
            const ck_item *ci = &ct->items[k];
            snprintf(obj, sizeof obj, "/layers/%s/tiles/%s/%s", pl->name, key, ci->name);
            const rpu_ckpt_dtype dt = (rpu_ckpt_dtype)ci->dtype;
            if (ci->attr) {
                /* every rank writes the owner's value, shared through the plan */
                if (ck_attr_write(kg, ci->name, ck_file_type(dt), ck_mem_type(dt), -1, ci->value) <
                    0)
                    CK_FAIL(cx, RPU_ERR_IO, obj, "cannot write attribute (%s)", rpu_h5_why(why));
                continue;
            }
            hsize_t dims[2] = {(hsize_t)ci->rows, (hsize_t)ci->cols};
            const bool mine = tile && k < n;
            write_dataset(w, kg, ci->name, obj, dt, 2, dims, mine ? it[k].data : NULL, mine);
        }
        H5Gclose(kg);
    }
    H5Gclose(tg);
    H5Gclose(g);
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

/* ------------------------------------------------------------------ room */

static double mb(int64_t bytes) {
    return (double)bytes / 1e6;
}

/* Whether `need` bytes fit (this rank): the file size limit of this process, a writable
 * directory of tmp and (with free_space) its file system's free space, counting the blocks
 * of a stale tmp that the save replaces. */
static void check_room(const char *path, const char *tmp, int64_t need, bool free_space,
                       ck_ctx *cx) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (int64_t)rl.rlim_cur < need) {
        CK_FAIL(cx, RPU_ERR_IO, NULL,
                "the checkpoint needs about %.1f MB, more than the file size limit of %.1f MB of "
                "this process (ulimit -f); nothing was written, %s is as before",
                mb(need), mb((int64_t)rl.rlim_cur), path);
        return;
    }
    char *dir = dir_of(tmp);
    struct statvfs sv;
    if (dir && access(dir, W_OK | X_OK) != 0)
        CK_FAIL(cx, RPU_ERR_IO, NULL, "cannot write in directory %s: %s; %s is as before", dir,
                strerror(errno), path);
    else if (dir && free_space && statvfs(dir, &sv) == 0) {
        /* root may use the blocks reserved for it */
        const uint64_t blocks = geteuid() == 0 ? (uint64_t)sv.f_bfree : (uint64_t)sv.f_bavail;
        int64_t avail = (int64_t)(blocks * (uint64_t)sv.f_frsize);
        struct stat st;
        if (stat(tmp, &st) == 0 && S_ISREG(st.st_mode)) avail += (int64_t)st.st_blocks * 512;
        if (avail < need)
            CK_FAIL(cx, RPU_ERR_IO, NULL,
                    "not enough space: the checkpoint needs about %.1f MB, the file system of %s "
                    "has %.1f MB free; nothing was written, %s is as before",
                    mb(need), dir, mb(avail), path);
    }
    free(dir);
}

/* Rank 0: reserves `need` bytes of blocks for the freshly created tmp without changing its
 * size, so that the writes cannot run out of space (the file system may have filled since
 * the check; quotas do not show in statvfs). Returns 1 when reserved, 0 when the file
 * system cannot reserve (the check alone then stands), -1 on failure (recorded). */
static int reserve(const char *path, const char *tmp, int64_t need, ck_ctx *cx) {
#if defined(__linux__) && defined(FALLOC_FL_KEEP_SIZE)
    const int fd = open(tmp, O_WRONLY);
    if (fd < 0) return 0;
    int r = 0;
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)need) == 0) {
        r = 1;
    } else if (errno == ENOSPC || errno == EDQUOT || errno == EFBIG) {
        CK_FAIL(cx, RPU_ERR_IO, NULL,
                "not enough space: reserving %.1f MB for %s failed (%s); nothing was written, %s "
                "is as before",
                mb(need), tmp, strerror(errno), path);
        r = -1;
    }
    close(fd);
    return r;
#else
    (void)path, (void)tmp, (void)need, (void)cx;
    return 0;
#endif
}

/* ------------------------------------------------------------------ save */

void rpu_ckpt_save_opts_default(rpu_ckpt_save_opts *opts) {
    if (!opts) return;
    memset(opts, 0, sizeof *opts);
}

/* The state of one save. */
typedef struct {
    MPI_Comm comm;
    int rank, size;
    const char *path;
    ck_ctx cx;
    rpu_ckpt_save_opts o;
    rpu_ckpt_meta m;
    char *config; /* rank 0's config text */
    ck_lplan *pl;
    int n_layers;
    char *tmp;
    int64_t need; /* upper bound of the file's size */
    hid_t fapl, fcpl, file;
    ck_writer w;
    int reserved; /* rank 0: the tmp's blocks are reserved */
} ck_save;

/* Arguments, the same on every rank. */
static rpu_status agree_args(ck_save *s, const rpu_ckpt_layer *layers, const rpu_ckpt_array *arrays,
                             int n_arrays) {
    uint64_t h = ck_check_args(s->comm, layers, s->n_layers, arrays, n_arrays, true, &s->cx);
    if (s->o.keep_last < 0 || s->o.keep_last > 1000)
        CK_FAIL(&s->cx, RPU_ERR_ARG, NULL, "keep_last %d is outside [0, 1000]", s->o.keep_last);
    h = ck_hash_i64(h, s->o.keep_last);
    if (strlen(s->path) > PATH_MAX - 24) CK_FAIL(&s->cx, RPU_ERR_ARG, NULL, "path is too long");
    h = ck_hash_str(h, s->path);
    ck_check_same(s->comm, h, &s->cx);
    return ck_agree(s->comm, &s->cx);
}

/* The root metadata and config text: rank 0's. */
static rpu_status agree_meta(ck_save *s, const rpu_ckpt_meta *meta) {
    rpu_ckpt_meta m = {0, 0, 0, NULL};
    if (meta) m = *meta;
    long long clen = m.config ? (long long)strlen(m.config) : 0;
    uint64_t head[3] = {m.seed, (uint64_t)m.step, (uint64_t)m.epoch};
    if (MPI_Bcast(&clen, 1, MPI_LONG_LONG, 0, s->comm) != MPI_SUCCESS ||
        MPI_Bcast(head, 3, MPI_UINT64_T, 0, s->comm) != MPI_SUCCESS)
        CK_FAIL(&s->cx, RPU_ERR_MPI, NULL, "MPI_Bcast of the metadata failed");
    s->m.seed = head[0];
    s->m.step = (int64_t)head[1];
    s->m.epoch = (int64_t)head[2];
    if (clen > RPU_CKPT_MAX_TEXT)
        CK_FAIL(&s->cx, RPU_ERR_ARG, NULL, "the config text has %lld bytes (at most %d)", clen,
                RPU_CKPT_MAX_TEXT);
    else if (!(s->config = (char *)calloc((size_t)clen + 1, 1)))
        CK_FAIL(&s->cx, RPU_ERR_NOMEM, NULL, "out of memory");
    if (ck_agree(s->comm, &s->cx) != RPU_OK) return s->cx.st;
    if (s->rank == 0 && clen > 0 && m.config) memcpy(s->config, m.config, (size_t)clen);
    if (clen > 0 && MPI_Bcast(s->config, (int)clen, MPI_CHAR, 0, s->comm) != MPI_SUCCESS)
        CK_FAIL(&s->cx, RPU_ERR_MPI, NULL, "MPI_Bcast of the config text failed");
    return ck_agree(s->comm, &s->cx);
}

/* The plan and the room it needs. */
static rpu_status agree_plan(ck_save *s, const rpu_ckpt_layer *layers, const rpu_ckpt_array *arrays,
                             int n_arrays) {
    s->pl = ck_plan_build(s->comm, layers, s->n_layers, &s->cx);
    for (int i = 0; s->pl && i < s->n_layers && s->cx.st == RPU_OK; ++i)
        if (strlen(s->pl[i].attrs.rpu_config) > RPU_CKPT_MAX_TEXT)
            CK_FAIL(&s->cx, RPU_ERR_INTERNAL, NULL, "layer '%s': rpu_config text too long",
                    s->pl[i].name);
    if (!(s->tmp = (char *)malloc(strlen(s->path) + 5)))
        CK_FAIL(&s->cx, RPU_ERR_NOMEM, NULL, "out of memory");
    else
        snprintf(s->tmp, strlen(s->path) + 5, "%s.tmp", s->path);
    if (ck_agree(s->comm, &s->cx) != RPU_OK) return s->cx.st;
    s->need = ck_plan_file_bytes(s->pl, s->n_layers, arrays, n_arrays, (int64_t)strlen(s->config));
    check_room(s->path, s->tmp, s->need, !s->o.skip_free_space_check, &s->cx);
    return ck_agree(s->comm, &s->cx);
}

/* Creates the tmp (collective) and reserves its blocks (rank 0). */
static rpu_status create_tmp(ck_save *s) {
    char why[CK_WHY];
    s->fapl = ck_make_fapl(s->comm);
    s->fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (s->fapl < 0 || s->fcpl < 0 || ck_set_group_props(s->fcpl) < 0 || writer_init(&s->w) < 0)
        CK_FAIL(&s->cx, RPU_ERR_IO, NULL, "cannot set up HDF5 (%s)", rpu_h5_why(why));
    if (ck_agree(s->comm, &s->cx) != RPU_OK) return s->cx.st;
    s->file = H5Fcreate(s->tmp, H5F_ACC_TRUNC, s->fcpl, s->fapl);
    if (s->file < 0)
        CK_FAIL(&s->cx, RPU_ERR_IO, NULL, "cannot create %s (%s)", s->tmp, rpu_h5_why(why));
    if (ck_agree(s->comm, &s->cx) != RPU_OK) return s->cx.st;
    if (s->rank == 0) s->reserved = reserve(s->path, s->tmp, s->need, &s->cx) > 0;
    return ck_agree(s->comm, &s->cx);
}

/* Everything into the tmp (collective; failures recorded). */
static void write_all(ck_save *s, const rpu_ckpt_array *arrays, int n_arrays) {
    char why[CK_WHY];
    ck_write_root(s->file, &s->m, s->config, s->size, &s->cx);
    hid_t lg = H5Gcreate2(s->file, "layers", H5P_DEFAULT, s->w.gcpl, H5P_DEFAULT);
    if (lg < 0) {
        CK_FAIL(&s->cx, RPU_ERR_IO, "/layers", "cannot create group (%s)", rpu_h5_why(why));
    } else {
        for (int i = 0; i < s->n_layers; ++i)
            write_layer(lg, &s->pl[i], &s->w);
        H5Gclose(lg);
    }
    for (int i = 0; i < n_arrays; ++i) {
        const rpu_ckpt_array *a = &arrays[i];
        hsize_t dims[RPU_CKPT_MAX_DIMS];
        for (int d = 0; d < a->ndim; ++d)
            dims[d] = (hsize_t)a->dims[d];
        char obj[CK_ARRAY_PATH + 2];
        snprintf(obj, sizeof obj, "/%s", a->path);
        write_dataset(&s->w, s->file, a->path, obj, a->dtype, a->ndim, dims, a->data, s->rank == 0);
    }
    if (H5Fflush(s->file, H5F_SCOPE_GLOBAL) < 0)
        CK_FAIL(&s->cx, RPU_ERR_IO, NULL, "flush of %s failed (%s)", s->tmp, rpu_h5_why(why));
}

/* Closes the tmp on every rank (collective). After an agreed failure rank 0 first cuts
 * the tmp to nothing, which returns its blocks, so that HDF5's final metadata writes
 * find room. */
static void close_tmp(ck_save *s) {
    if (s->file < 0) return;
    if (s->cx.st != RPU_OK && s->rank == 0 && truncate(s->tmp, 0) != 0) {
        /* nothing more to do: the close reports what it cannot write */
    }
    if (s->cx.st != RPU_OK) MPI_Barrier(s->comm);
    char why[CK_WHY];
    if (H5Fclose(s->file) < 0)
        CK_FAIL(&s->cx, RPU_ERR_IO, NULL, "close of %s failed (%s)", s->tmp, rpu_h5_why(why));
    s->file = -1;
}

rpu_status rpu_ckpt_save(MPI_Comm comm_in, const char *path, const rpu_ckpt_meta *meta,
                         const rpu_ckpt_layer *layers, int n_layers, const rpu_ckpt_array *arrays,
                         int n_arrays, const rpu_ckpt_save_opts *opts) {
    if (comm_in == MPI_COMM_NULL) return RPU_FAIL(RPU_ERR_ARG, "checkpoint save: MPI_COMM_NULL");
    if (!path || !*path) return RPU_FAIL(RPU_ERR_ARG, "checkpoint save: path is NULL or empty");
    ck_save s;
    memset(&s, 0, sizeof s);
    if (MPI_Comm_dup(comm_in, &s.comm) != MPI_SUCCESS)
        return RPU_FAIL(RPU_ERR_MPI, "checkpoint %s: MPI_Comm_dup failed", path);
    MPI_Comm_set_errhandler(s.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(s.comm, &s.rank);
    MPI_Comm_size(s.comm, &s.size);
    s.path = path;
    s.cx = ck_ctx_for(path);
    s.n_layers = n_layers;
    rpu_ckpt_save_opts_default(&s.o);
    if (opts) s.o = *opts;
    s.fapl = s.fcpl = s.file = -1;
    s.w.cx = &s.cx;
    s.w.dxpl = s.w.gcpl = s.w.lcpl = -1;
    s.w.rank = s.rank;
    s.w.fail_rank = s.o.fail_rank;
    s.w.fail_write = s.o.fail_write > 0 ? s.o.fail_write : -1;
    rpu_h5_quiet q;
    rpu_h5_quiet_on(&q);

    if (agree_args(&s, layers, arrays, n_arrays) == RPU_OK && agree_meta(&s, meta) == RPU_OK &&
        agree_plan(&s, layers, arrays, n_arrays) == RPU_OK && create_tmp(&s) == RPU_OK) {
        write_all(&s, arrays, n_arrays);
        /* agreed before the close: after a failure, close_tmp makes room for it first */
        if (ck_agree(s.comm, &s.cx) == RPU_OK) {
            close_tmp(&s);
            if (ck_agree(s.comm, &s.cx) == RPU_OK) {
                /* every rank wrote everything: rank 0 returns the unused reservation,
                 * renames (and rotates); the others wait */
                struct stat st;
                if (s.rank == 0 && s.reserved && stat(s.tmp, &st) == 0 &&
                    truncate(s.tmp, st.st_size) != 0)
                    CK_FAIL(&s.cx, RPU_ERR_IO, NULL, "cannot trim %s: %s", s.tmp, strerror(errno));
                if (s.rank == 0 && s.cx.st == RPU_OK) publish(path, s.tmp, s.o.keep_last, &s.cx);
                ck_agree(s.comm, &s.cx);
            }
        }
    }
    close_tmp(&s); /* after an agreed failure the file may still be open */
    if (s.cx.st != RPU_OK && s.tmp && s.rank == 0 && s.file < 0) unlink(s.tmp);
    MPI_Barrier(s.comm); /* nobody returns before the tmp is gone */
    writer_free(&s.w);
    if (s.fcpl >= 0) H5Pclose(s.fcpl);
    if (s.fapl >= 0) H5Pclose(s.fapl);
    rpu_h5_quiet_off(&q);
    ck_plan_free(s.pl, n_layers);
    free(s.tmp);
    free(s.config);
    MPI_Comm_free(&s.comm);
    return s.cx.st;
}
