/* Data sets: IDX reader (gzip or plain, through zlib), MNIST-style directories, the
 * shipped digits, the synthetic set, the checks of a split against a network or its
 * training split, and the data order and batches of training and evaluation. See
 * include/rpusim/data.h. */
#include "rpusim/data.h"
#include "rpusim/rng.h"

#include "error_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08

/* Synthetic set: stream ids rpu_stream_id(SYNTH_LAYER, k, RPU_PURPOSE_DATA), k = 1..3.
 * The data order uses rpu_stream_id(ORDER_LAYER, epoch, RPU_PURPOSE_DATA); the two layer
 * ids differ, so no epoch's order reuses the numbers that made a synthetic set of the
 * same seed. */
#define SYNTH_LAYER 0xFFFFFEu
#define ORDER_LAYER 0xFFFFFFu
#define SYNTH_PROTO_LO 0.15f
#define SYNTH_PROTO_SPAN 0.7f
#define SYNTH_NOISE 0.25f

/* ---- one open IDX file, plain or gzip (zlib's inflate) ------------------------------- */

#define GZ_IN_BYTES (1u << 17)

typedef struct {
    const char *path;
    FILE *f;
    int gz;             /* gzip-compressed: read through z */
    z_stream z;         /* inflate state (gz) */
    unsigned char *in;  /* compressed input buffer (gz) */
    int in_eof;         /* the file has no more bytes to read into in */
    int done;           /* gz: the last member ended at the end of the file */
    long long consumed; /* gz: compressed bytes of the members before the current one */
} idx_file;

static rpu_status idx_open(idx_file *fl, const char *path) {
    memset(fl, 0, sizeof *fl);
    fl->path = path;
    FILE *f = fopen(path, "rb");
    if (!f) return RPU_FAIL(RPU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char magic[2] = {0, 0};
    const size_t got = fread(magic, 1, 2, f);
    if (ferror(f) || fseek(f, 0, SEEK_SET) != 0) {
        const int e = errno;
        fclose(f);
        return RPU_FAIL(RPU_ERR_IO, "%s: read error: %s", path, strerror(e));
    }
    fl->f = f;
    if (got < 2 || magic[0] != 0x1f || magic[1] != 0x8b) return RPU_OK;
    fl->gz = 1;
    fl->in = malloc(GZ_IN_BYTES);
    /* windowBits 15 + 16: the gzip wrapper only (header, CRC-32 and length checked) */
    if (!fl->in || inflateInit2(&fl->z, 15 + 16) != Z_OK) {
        free(fl->in);
        fclose(f);
        memset(fl, 0, sizeof *fl);
        return RPU_FAIL(RPU_ERR_NOMEM, "%s: cannot set up gzip decompression", path);
    }
    return RPU_OK;
}

static void idx_close(idx_file *fl) {
    if (fl->gz) inflateEnd(&fl->z);
    free(fl->in);
    if (fl->f) fclose(fl->f);
    memset(fl, 0, sizeof *fl);
}

/* gz: refills the input buffer when it is empty (at the end of the file it stays empty). */
static rpu_status gz_fill(idx_file *fl) {
    if (fl->z.avail_in > 0 || fl->in_eof) return RPU_OK;
    const size_t n = fread(fl->in, 1, GZ_IN_BYTES, fl->f);
    if (n < GZ_IN_BYTES) {
        if (ferror(fl->f))
            return RPU_FAIL(RPU_ERR_IO, "%s: read error: %s", fl->path, strerror(errno));
        fl->in_eof = 1;
    }
    fl->z.next_in = fl->in;
    fl->z.avail_in = (uInt)n;
    return RPU_OK;
}

/* gz: reads up to n decompressed bytes. Concatenated gzip members are one stream (as
 * gzip -d reads them); a stream cut before its end, corrupt data and bytes after the last
 * member that do not start another one are RPU_ERR_FORMAT. */
static rpu_status gz_read(idx_file *fl, unsigned char *p, size_t n, size_t *got) {
    z_stream *z = &fl->z;
    while (*got < n && !fl->done) {
        RPU_CHECK(gz_fill(fl));
        if (z->avail_in == 0)
            return RPU_FAIL(RPU_ERR_FORMAT,
                            "%s: truncated gzip data: the file ends inside the compressed stream "
                            "(%lld bytes)",
                            fl->path, fl->consumed + (long long)z->total_in);
        const size_t left = n - *got;
        const uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        z->next_out = p + *got;
        z->avail_out = chunk;
        const int rc = inflate(z, Z_NO_FLUSH);
        *got += chunk - z->avail_out;
        if (rc == Z_STREAM_END) {
            /* the member is complete: the file ends here or another member follows */
            fl->consumed += (long long)z->total_in;
            RPU_CHECK(gz_fill(fl));
            if (z->avail_in == 0) {
                fl->done = 1;
                break;
            }
            if (inflateReset(z) != Z_OK)
                return RPU_FAIL(RPU_ERR_INTERNAL, "%s: inflateReset failed", fl->path);
            continue;
        }
        if (rc == Z_OK) continue;
        if (rc == Z_MEM_ERROR)
            return RPU_FAIL(RPU_ERR_NOMEM, "%s: out of memory in gzip decompression", fl->path);
        if (fl->consumed > 0 && z->total_out == 0 && rc == Z_DATA_ERROR)
            return RPU_FAIL(RPU_ERR_FORMAT,
                            "%s: too long: the bytes after the end of the gzip stream (byte "
                            "%lld) are not another gzip member (%s)",
                            fl->path, fl->consumed, z->msg ? z->msg : "bad data");
        return RPU_FAIL(RPU_ERR_FORMAT, "%s: corrupt gzip data: %s (zlib code %d)", fl->path,
                        z->msg ? z->msg : "no message", rc);
    }
    return RPU_OK;
}

/* Reads up to n bytes; *got = bytes read (short only at the end of the data). */
static rpu_status idx_read(idx_file *fl, void *buf, size_t n, size_t *got) {
    *got = 0;
    if (fl->gz) return gz_read(fl, buf, n, got);
    *got = fread(buf, 1, n, fl->f);
    if (*got < n && ferror(fl->f))
        return RPU_FAIL(RPU_ERR_IO, "%s: read error: %s", fl->path, strerror(errno));
    return RPU_OK;
}

/* Size of a plain file in bytes, or -1 if it cannot be told (then the reads decide). */
static long long plain_size(idx_file *fl) {
    if (fl->gz) return -1;
    const long here = ftell(fl->f);
    if (here < 0 || fseek(fl->f, 0, SEEK_END) != 0) return -1;
    const long end = ftell(fl->f);
    if (fseek(fl->f, here, SEEK_SET) != 0) return -1;
    return end;
}

/* Reads a whole IDX file of unsigned bytes with ndim dimensions (3 for images, 1 for
 * labels): dims[0..ndim) and the payload (*data, malloc'ed, prod(dims) bytes). */
static rpu_status idx_load(const char *path, int ndim, uint32_t *dims, uint8_t **data) {
    *data = NULL;
    const uint32_t want_magic = (uint32_t)(IDX_TYPE_UBYTE << 8) | (uint32_t)ndim;
    const char *what = ndim == 3 ? "images [n, rows, cols]" : "labels [n]";
    idx_file fl;
    RPU_CHECK(idx_open(&fl, path));
    rpu_status s = RPU_OK;
    uint8_t *buf = NULL;
    unsigned char hdr[4 + 4 * 3];
    size_t got = 0;

    if ((s = idx_read(&fl, hdr, 4, &got)) != RPU_OK) goto fail;
    if (got < 4) {
        s = RPU_FAIL(RPU_ERR_FORMAT, "%s: truncated: %zu bytes, too short for an IDX header", path,
                     got);
        goto fail;
    }
    const uint32_t magic = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) |
                           ((uint32_t)hdr[2] << 8) | (uint32_t)hdr[3];
    if (hdr[0] != 0 || hdr[1] != 0) {
        s = RPU_FAIL(RPU_ERR_FORMAT, "%s: bad magic 0x%08x: not an IDX file (want 0x%08x, %s)",
                     path, (unsigned)magic, (unsigned)want_magic, what);
        goto fail;
    }
    if (hdr[2] != IDX_TYPE_UBYTE) {
        s = RPU_FAIL(RPU_ERR_FORMAT,
                     "%s: bad magic 0x%08x: element type 0x%02x is not unsigned byte (want "
                     "0x%08x, %s)",
                     path, (unsigned)magic, (unsigned)hdr[2], (unsigned)want_magic, what);
        goto fail;
    }
    if (hdr[3] != ndim) {
        s = RPU_FAIL(RPU_ERR_FORMAT, "%s: bad magic 0x%08x: %u dimensions, want %d (0x%08x, %s)",
                     path, (unsigned)magic, (unsigned)hdr[3], ndim, (unsigned)want_magic, what);
        goto fail;
    }
    if ((s = idx_read(&fl, hdr + 4, 4 * (size_t)ndim, &got)) != RPU_OK) goto fail;
    if (got < 4 * (size_t)ndim) {
        s = RPU_FAIL(RPU_ERR_FORMAT, "%s: truncated header: %zu of %d dimension bytes", path, got,
                     4 * ndim);
        goto fail;
    }
    /* Products in 64 bits: each dimension < 2^32, and every partial product is checked
     * against a limit < 2^32 before the next multiplication, so nothing overflows. */
    uint64_t total = 1;
    for (int d = 0; d < ndim; ++d) {
        const unsigned char *b = hdr + 4 + 4 * d;
        dims[d] = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) |
                  (uint32_t)b[3];
        if (dims[d] == 0) {
            if (d == 0)
                s = RPU_FAIL(RPU_ERR_FORMAT, "%s: empty: the header says 0 %s (%s)", path,
                             ndim == 3 ? "images" : "labels", what);
            else
                s = RPU_FAIL(RPU_ERR_FORMAT, "%s: dimension %d is 0 (%s)", path, d, what);
            goto fail;
        }
    }
    if (ndim == 3) {
        const uint64_t sample = (uint64_t)dims[1] * dims[2]; /* < 2^64 */
        if (dims[1] > RPU_DATA_MAX_SAMPLE_PIXELS || dims[2] > RPU_DATA_MAX_SAMPLE_PIXELS ||
            sample > RPU_DATA_MAX_SAMPLE_PIXELS) {
            s = RPU_FAIL(RPU_ERR_FORMAT,
                         "%s: image size %u x %u exceeds the limit of %d pixels per image", path,
                         (unsigned)dims[1], (unsigned)dims[2], RPU_DATA_MAX_SAMPLE_PIXELS);
            goto fail;
        }
        total = sample;
    }
    if (dims[0] > (uint64_t)RPU_DATA_MAX_PIXELS / total) {
        s = RPU_FAIL(RPU_ERR_FORMAT,
                     "%s: %u samples of %llu bytes exceed the limit of %lld bytes per file", path,
                     (unsigned)dims[0], (unsigned long long)total, RPU_DATA_MAX_PIXELS);
        goto fail;
    }
    total *= dims[0]; /* <= RPU_DATA_MAX_PIXELS */
    const size_t header = 4 + 4 * (size_t)ndim;

    /* Plain file: its length must match before anything is allocated. */
    const long long size = plain_size(&fl);
    if (size >= 0 && (unsigned long long)size != header + total) {
        s = RPU_FAIL(RPU_ERR_FORMAT, "%s: %s: file has %lld bytes, its header says %llu", path,
                     (unsigned long long)size < header + total ? "truncated" : "too long", size,
                     (unsigned long long)(header + total));
        goto fail;
    }

    /* Read the payload into a buffer that grows as data arrives, so that a small gzip file
     * with a huge header costs no huge allocation. */
    size_t cap = total < ((size_t)1 << 24) ? (size_t)total : ((size_t)1 << 24), have = 0;
    buf = malloc(cap);
    if (!buf) {
        s = RPU_FAIL(RPU_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, cap);
        goto fail;
    }
    for (;;) {
        if ((s = idx_read(&fl, buf + have, cap - have, &got)) != RPU_OK) goto fail;
        have += got;
        if (have < cap || have == total) break;
        size_t next = cap * 2 < total ? cap * 2 : (size_t)total;
        uint8_t *nb = realloc(buf, next);
        if (!nb) {
            s = RPU_FAIL(RPU_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, next);
            goto fail;
        }
        buf = nb;
        cap = next;
    }
    if (have < total) {
        s = RPU_FAIL(RPU_ERR_FORMAT, "%s: truncated: %zu data bytes after the header, it says %llu",
                     path, have, (unsigned long long)total);
        goto fail;
    }
    /* Nothing may follow the data (this read also makes zlib check the gzip trailer and
     * what follows the stream). */
    unsigned char extra;
    if ((s = idx_read(&fl, &extra, 1, &got)) != RPU_OK) goto fail;
    if (got != 0) {
        s = RPU_FAIL(RPU_ERR_FORMAT,
                     "%s: too long: data continues after the %llu bytes its "
                     "header says",
                     path, (unsigned long long)(header + total));
        goto fail;
    }
    idx_close(&fl);
    *data = buf;
    return RPU_OK;

fail:
    free(buf);
    idx_close(&fl);
    return s;
}

/* ---- data sets --------------------------------------------------------------------- */

void rpu_dataset_free(rpu_dataset *ds) {
    if (!ds) return;
    free(ds->x);
    free(ds->y);
    free(ds->images_name);
    free(ds->labels_name);
    memset(ds, 0, sizeof *ds);
}

static char *dup_text(const char *t) {
    const size_t n = strlen(t) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, t, n);
    return c;
}

/* Sets the source names of ds (copies). */
static rpu_status set_names(rpu_dataset *ds, const char *images, const char *labels) {
    ds->images_name = dup_text(images);
    ds->labels_name = dup_text(labels);
    if (!ds->images_name || !ds->labels_name) {
        free(ds->images_name);
        free(ds->labels_name);
        ds->images_name = ds->labels_name = NULL;
        return RPU_FAIL(RPU_ERR_NOMEM, "%s: cannot allocate its name", images);
    }
    return RPU_OK;
}

static const char *images_of(const rpu_dataset *ds) {
    return ds->images_name ? ds->images_name : "images";
}

static const char *labels_of(const rpu_dataset *ds) {
    return ds->labels_name ? ds->labels_name : "labels";
}

rpu_status rpu_dataset_load_idx_classes(const char *images, const char *labels, int n_classes,
                                        rpu_dataset *ds) {
    if (!ds) return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_load_idx: ds is NULL");
    memset(ds, 0, sizeof *ds);
    if (!images || !labels)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_load_idx: %s file name is NULL",
                        images ? "label" : "image");
    if (n_classes < 0 || n_classes > 256)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_load_idx: n_classes %d is outside 0..256",
                        n_classes);

    uint32_t idims[3] = {0, 0, 0}, ldims[1] = {0};
    uint8_t *pix = NULL, *lab = NULL;
    RPU_CHECK(idx_load(images, 3, idims, &pix));
    rpu_status s = idx_load(labels, 1, ldims, &lab);
    if (s != RPU_OK) {
        free(pix);
        return s;
    }
    if (idims[0] != ldims[0]) {
        s = RPU_FAIL(RPU_ERR_FORMAT, "%s has %u images but %s has %u labels", images,
                     (unsigned)idims[0], labels, (unsigned)ldims[0]);
        goto fail;
    }
    const int n = (int)idims[0]; /* <= RPU_DATA_MAX_PIXELS = INT_MAX */
    int max_label = 0;
    for (int i = 0; i < n; ++i) {
        if (n_classes > 0 && lab[i] >= n_classes) {
            s = RPU_FAIL(RPU_ERR_FORMAT, "%s: label %u of sample %d is out of range (%d classes)",
                         labels, (unsigned)lab[i], i, n_classes);
            goto fail;
        }
        if (lab[i] > max_label) max_label = lab[i];
    }
    const size_t total = (size_t)idims[0] * idims[1] * idims[2];
    if (total == 0 || !pix || !lab) { /* idx_load rejects zero dimensions */
        s = RPU_FAIL(RPU_ERR_INTERNAL, "%s: empty data after a successful read", images);
        goto fail;
    }
    float *x = malloc(total * sizeof *x);
    if (!x) {
        s = RPU_FAIL(RPU_ERR_NOMEM, "%s: cannot allocate %zu floats", images, total);
        goto fail;
    }
    if ((s = set_names(ds, images, labels)) != RPU_OK) {
        free(x);
        goto fail;
    }
    for (size_t k = 0; k < total; ++k)
        x[k] = (float)pix[k] / 255.0f;
    free(pix);
    ds->n = n;
    ds->channels = 1;
    ds->height = (int)idims[1];
    ds->width = (int)idims[2];
    ds->n_classes = n_classes > 0 ? n_classes : max_label + 1;
    ds->x = x;
    ds->y = lab;
    return RPU_OK;

fail:
    free(pix);
    free(lab);
    return s;
}

rpu_status rpu_dataset_load_idx(const char *images, const char *labels, rpu_dataset *ds) {
    return rpu_dataset_load_idx_classes(images, labels, 0, ds);
}

/* Finds dir/<prefix><stem><variant> among the MNIST naming variants; *path malloc'ed. */
static rpu_status find_file(const char *dir, const char *prefix, const char *split,
                            const char *kind, char **path) {
    *path = NULL;
    /* kind is "images-idx3" or "labels-idx1"; variants: <split>-<kind>-ubyte[.gz] and
     * <split>-<kind with its '-' as '.'>-ubyte[.gz]. */
    char dotted[32];
    snprintf(dotted, sizeof dotted, "%s", kind);
    char *dash = strchr(dotted, '-');
    if (dash) *dash = '.';
    const char *stems[2] = {kind, dotted};
    const char *sfx[2] = {"", ".gz"};
    const size_t len = strlen(dir) + strlen(prefix) + strlen(split) + strlen(kind) + 32;
    char *p = malloc(len);
    if (!p) return RPU_FAIL(RPU_ERR_NOMEM, "cannot allocate a path of %zu bytes", len);
    for (int v = 0; v < 4; ++v) {
        snprintf(p, len, "%s/%s%s-%s-ubyte%s", dir, prefix, split, stems[v / 2], sfx[v % 2]);
        FILE *f = fopen(p, "rb");
        if (f) {
            fclose(f);
            *path = p;
            return RPU_OK;
        }
    }
    snprintf(p, len, "%s/%s%s-%s-ubyte", dir, prefix, split, kind);
    rpu_status s =
        RPU_FAIL(RPU_ERR_IO, "%s: cannot open: no such file (nor .gz, nor %s%s-%s-ubyte)", p,
                 prefix, split, dotted);
    free(p);
    return s;
}

static rpu_status load_named(const char *dir, const char *prefix, bool train, int n_classes,
                             rpu_dataset *ds) {
    if (!ds) return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_load: ds is NULL");
    memset(ds, 0, sizeof *ds);
    if (!dir) return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_load: directory is NULL");
    const char *split = train ? "train" : "t10k";
    if (prefix[0]) split = train ? "train" : "test";
    char *images = NULL, *labels = NULL;
    RPU_CHECK(find_file(dir, prefix, split, "images-idx3", &images));
    rpu_status s = find_file(dir, prefix, split, "labels-idx1", &labels);
    if (s == RPU_OK) s = rpu_dataset_load_idx_classes(images, labels, n_classes, ds);
    free(images);
    free(labels);
    return s;
}

rpu_status rpu_dataset_load_dir(const char *dir, bool train, rpu_dataset *ds) {
    return load_named(dir, "", train, 0, ds);
}

rpu_status rpu_dataset_load_digits(const char *data_dir, bool train, rpu_dataset *ds) {
    RPU_CHECK(load_named(data_dir, "digits-", train, 10, ds));
    if (ds->height != 8 || ds->width != 8) {
        const int h = ds->height, w = ds->width;
        rpu_dataset_free(ds);
        return RPU_FAIL(RPU_ERR_FORMAT,
                        "%s/digits-%s-images-idx3-ubyte: images are %d x %d, want 8 x 8", data_dir,
                        train ? "train" : "test", h, w);
    }
    return RPU_OK;
}

rpu_status rpu_dataset_synthetic(int n, int channels, int height, int width, int n_classes,
                                 uint64_t seed, rpu_dataset *ds) {
    if (!ds) return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_synthetic: ds is NULL");
    memset(ds, 0, sizeof *ds);
    if (n < 1 || channels < 1 || height < 1 || width < 1)
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_dataset_synthetic: n %d and shape %d x %d x %d must be >= 1", n,
                        channels, height, width);
    if (n_classes < 1 || n_classes > 256)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_synthetic: n_classes %d is outside 1..256",
                        n_classes);
    const uint64_t sample = (uint64_t)channels * (uint64_t)height * (uint64_t)width;
    if (sample > RPU_DATA_MAX_SAMPLE_PIXELS || (uint64_t)n > RPU_DATA_MAX_PIXELS / sample ||
        (uint64_t)n_classes > RPU_DATA_MAX_PIXELS / sample)
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_dataset_synthetic: %d samples of %d x %d x %d exceed the limits "
                        "(%d pixels per sample, %lld in all)",
                        n, channels, height, width, RPU_DATA_MAX_SAMPLE_PIXELS,
                        RPU_DATA_MAX_PIXELS);
    const size_t S = (size_t)sample;
    float *x = malloc((size_t)n * S * sizeof *x);
    uint8_t *y = malloc((size_t)n);
    float *proto = malloc((size_t)n_classes * S * sizeof *proto);
    if (!x || !y || !proto) {
        free(x);
        free(y);
        free(proto);
        return RPU_FAIL(RPU_ERR_NOMEM, "rpu_dataset_synthetic: cannot allocate %d samples of %zu",
                        n, S);
    }

    rpu_rng r;
    rpu_rng_init(&r, seed, rpu_stream_id(SYNTH_LAYER, 1, RPU_PURPOSE_DATA));
    rpu_rng_uniform_fill(&r, proto, (size_t)n_classes * S);
    for (size_t k = 0; k < (size_t)n_classes * S; ++k)
        proto[k] = SYNTH_PROTO_LO + SYNTH_PROTO_SPAN * proto[k];

    for (int i = 0; i < n; ++i)
        y[i] = (uint8_t)(i % n_classes);
    rpu_rng_init(&r, seed, rpu_stream_id(SYNTH_LAYER, 2, RPU_PURPOSE_DATA));
    for (int i = n - 1; i > 0; --i) {
        const int j = (int)(((uint64_t)rpu_rng_u32(&r) * (uint64_t)(i + 1)) >> 32);
        const uint8_t t = y[i];
        y[i] = y[j];
        y[j] = t;
    }

    rpu_rng_init(&r, seed, rpu_stream_id(SYNTH_LAYER, 3, RPU_PURPOSE_DATA));
    const uint64_t blocks = rpu_rng_blocks_for(S);
    for (int i = 0; i < n; ++i) {
        float *xi = x + (size_t)i * S;
        const float *p = proto + (size_t)y[i] * S;
        rpu_rng_normal_at(&r, (uint64_t)i * blocks, xi, S);
        for (size_t k = 0; k < S; ++k) {
            const float v = p[k] + SYNTH_NOISE * xi[k];
            xi[k] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
        }
    }
    free(proto);
    char name[64];
    snprintf(name, sizeof name, "synthetic set (seed %llu)", (unsigned long long)seed);
    if (set_names(ds, name, name) != RPU_OK) {
        free(x);
        free(y);
        return RPU_FAIL(RPU_ERR_NOMEM, "rpu_dataset_synthetic: cannot allocate its name");
    }

    ds->n = n;
    ds->channels = channels;
    ds->height = height;
    ds->width = width;
    ds->n_classes = n_classes;
    ds->x = x;
    ds->y = y;
    return RPU_OK;
}

/* ---- checks ------------------------------------------------------------------------ */

rpu_status rpu_dataset_check_labels(const rpu_dataset *ds, int n_classes) {
    if (!ds || (ds->n > 0 && !ds->y) || n_classes < 1)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_check_labels: NULL set or labels, or %d classes",
                        n_classes);
    for (int i = 0; i < ds->n; ++i)
        if (ds->y[i] >= n_classes)
            return RPU_FAIL(RPU_ERR_FORMAT, "%s: label %u of sample %d is not below %d",
                            labels_of(ds), (unsigned)ds->y[i], i, n_classes);
    return RPU_OK;
}

rpu_status rpu_dataset_check_split(const rpu_dataset *train, rpu_dataset *test) {
    if (!train || !test) return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_check_split: NULL argument");
    if (test->channels != train->channels || test->height != train->height ||
        test->width != train->width)
        return RPU_FAIL(RPU_ERR_FORMAT,
                        "test images %s are %d x %d x %d (channels x height x width), but the "
                        "training images %s are %d x %d x %d: the splits must have the same shape",
                        images_of(test), test->channels, test->height, test->width,
                        images_of(train), train->channels, train->height, train->width);
    if (test->n < 1 || !test->x || !test->y)
        return RPU_FAIL(RPU_ERR_FORMAT, "test set %s is empty", images_of(test));
    for (int i = 0; i < test->n; ++i)
        if (test->y[i] >= train->n_classes)
            return RPU_FAIL(RPU_ERR_FORMAT,
                            "%s: label %u of sample %d is not a class of the training set (%s "
                            "has %d classes, labels 0..%d)",
                            labels_of(test), (unsigned)test->y[i], i, labels_of(train),
                            train->n_classes, train->n_classes - 1);
    test->n_classes = train->n_classes;
    return RPU_OK;
}

/* ---- data order and batches ------------------------------------------------------------ */

rpu_status rpu_data_order(int n, uint64_t seed, int epoch, int *order) {
    if (!order || n < 1 || epoch < 0)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_data_order: %s, n %d, epoch %d",
                        order ? "order given" : "order is NULL", n, epoch);
    rpu_rng r;
    rpu_rng_init(&r, seed, rpu_stream_id(ORDER_LAYER, (uint32_t)epoch, RPU_PURPOSE_DATA));
    for (int i = 0; i < n; ++i)
        order[i] = i;
    for (int i = n - 1; i > 0; --i) {
        int j = (int)(rpu_rng_uniform(&r) * (float)(i + 1));
        if (j > i) j = i;
        const int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    return RPU_OK;
}

int rpu_data_batches(int n, int batch_size) {
    if (n < 1 || batch_size < 1) return 0;
    return n / batch_size + (n % batch_size != 0);
}

rpu_status rpu_dataset_batch(const rpu_dataset *ds, const int *order, int batch_size, int b,
                             float *x, uint8_t *y, int *count) {
    if (count) *count = 0;
    if (!ds || !x || !count || batch_size < 1 || (ds->n > 0 && (!ds->x || (y && !ds->y))))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_batch: NULL argument or batch size %d",
                        batch_size);
    const int nb = rpu_data_batches(ds->n, batch_size);
    if (b < 0 || b >= nb)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_batch: batch %d is outside 0..%d (%d samples)", b,
                        nb - 1, ds->n);
    const size_t per = rpu_dataset_sample_size(ds);
    const int first = b * batch_size; /* b < nb, so first < n: no overflow */
    const int c = ds->n - first < batch_size ? ds->n - first : batch_size;
    for (int i = 0; i < c; ++i) {
        const int k = order ? order[first + i] : first + i;
        if (k < 0 || k >= ds->n)
            return RPU_FAIL(RPU_ERR_ARG, "rpu_dataset_batch: order[%d] = %d is outside 0..%d",
                            first + i, k, ds->n - 1);
        memcpy(x + (size_t)i * per, ds->x + (size_t)k * per, sizeof(float) * per);
        if (y) y[i] = ds->y[k];
    }
    *count = c;
    return RPU_OK;
}
