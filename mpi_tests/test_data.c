/* Tests of the data module (include/rpusim/data.h):
 *   - the digits shipped in data/: split sizes, shapes, label histograms, pixel values;
 *   - IDX files written here (plain and gzip) read back to the same data, also through
 *     rpu_dataset_load_dir's naming variants;
 *   - malformed files (bad magic, wrong dimensions, truncated or too long data, corrupt
 *     gzip, count mismatch, label out of range, hostile huge headers) give RPU_ERR_FORMAT
 *     naming the file, a missing file RPU_ERR_IO naming it;
 *   - the synthetic set: reproducible, seed-dependent, balanced, learnable, the same on
 *     every rank.
 *
 * usage: test_data DATA_DIR TMP_DIR       (DATA_DIR = the repository's data/)
 *        test_data --fashion DIR          (Fashion-MNIST as installed by Debian's
 *                                          dataset-fashion-mnist; scripts/setup.sh)
 * Every rank runs every check; files are written under TMP_DIR/np<size>_r<rank>. */
#define _POSIX_C_SOURCE 200809L /* mkdir */

#include "rpusim/data.h"
#include "rpusim/rng.h"
#include "rpusim/status.h"
#include "testlib.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* ---- helpers ----------------------------------------------------------------------- */

static char tmp_dir[2200];

static const char *tmp_path(const char *name) {
    static char buf[64][2304]; /* the last 64 paths stay valid */
    static int next;
    char *p = buf[next++ % 64];
    snprintf(p, sizeof buf[0], "%s/%s", tmp_dir, name);
    return p;
}

static int make_dir(const char *path) {
    return mkdir(path, 0755) == 0 || errno == EEXIST;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        CHECK(false, "cannot create %s", path);
        return;
    }
    CHECK(fwrite(data, 1, n, f) == n, "cannot write %s", path);
    CHECK(fclose(f) == 0, "cannot close %s", path);
}

static void write_gz(const char *path, const void *data, size_t n) {
    gzFile g = gzopen(path, "wb");
    if (!g) {
        CHECK(false, "cannot create %s", path);
        return;
    }
    CHECK(gzwrite(g, data, (unsigned)n) == (int)n, "cannot write %s", path);
    CHECK(gzclose(g) == Z_OK, "cannot close %s", path);
}

/* gzip-compressed copy of data in memory (gzip wrapper: windowBits 15 + 16). */
static unsigned char *gz_bytes(const void *data, size_t n, size_t *out_n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    const size_t cap = deflateBound(&z, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    const int rc = deflate(&z, Z_FINISH);
    CHECK(rc == Z_STREAM_END, "deflate: %d", rc);
    *out_n = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* IDX file image: magic, ndim dims, then payload (plen bytes). *n = total length. */
static unsigned char *idx_bytes(uint32_t magic, const uint32_t *dims, int ndim,
                                const unsigned char *payload, size_t plen, size_t *n) {
    *n = 4 + 4 * (size_t)ndim + plen;
    unsigned char *b = malloc(*n);
    put_be32(b, magic);
    for (int d = 0; d < ndim; ++d)
        put_be32(b + 4 + 4 * d, dims[d]);
    if (plen) memcpy(b + 4 + 4 * ndim, payload, plen);
    return b;
}

static void write_idx(const char *path, int gz, uint32_t magic, const uint32_t *dims, int ndim,
                      const unsigned char *payload, size_t plen) {
    size_t n;
    unsigned char *b = idx_bytes(magic, dims, ndim, payload, plen, &n);
    if (gz)
        write_gz(path, b, n);
    else
        write_bytes(path, b, n);
    free(b);
}

static bool is_empty(const rpu_dataset *ds) {
    return ds->n == 0 && ds->x == NULL && ds->y == NULL && ds->channels == 0 && ds->height == 0 &&
           ds->width == 0 && ds->n_classes == 0;
}

/* Loads images + labels expecting status want with `file` (and `word`, if not NULL) in the
 * message; the data set must be left empty. */
static void expect_fail(const char *what, const char *images, const char *labels, int n_classes,
                        rpu_status want, const char *file, const char *word) {
    rpu_dataset ds;
    memset(&ds, 0xA5, sizeof ds); /* garbage in: the loader must clear it */
    rpu_clear_error();
    rpu_status s = rpu_dataset_load_idx_classes(images, labels, n_classes, &ds);
    const char *msg = rpu_last_error();
    CHECK(s == want, "%s: status %s, want %s (%s)", what, rpu_status_name(s), rpu_status_name(want),
          msg);
    CHECK(strstr(msg, file) != NULL, "%s: message does not name %s: %s", what, file, msg);
    if (word) CHECK(strstr(msg, word) != NULL, "%s: message lacks '%s': %s", what, word, msg);
    CHECK(is_empty(&ds), "%s: data set not left empty", what);
    if (s == RPU_OK) rpu_dataset_free(&ds);
}

static void histogram(const rpu_dataset *ds, int *h, int nh) {
    for (int k = 0; k < nh; ++k)
        h[k] = 0;
    for (int i = 0; i < ds->n; ++i)
        if (ds->y[i] < nh) h[ds->y[i]]++;
}

/* ---- the shipped digits -------------------------------------------------------------- */

/* Numbers computed from Debian python3-sklearn's digits.csv.gz by awk, independently of
 * scripts/convert_digits.py (which printed the same):
 *   zcat digits.csv.gz | head -1437 | awk -F, '{h[$NF]++; for(i=1;i<NF;i++) s+=$i} END{...}'
 *   zcat digits.csv.gz | tail -360  | awk -F, ...
 * label histograms 0..9 and the sum of all pixel values on the CSV's 0..16 scale. */
static const int digits_train_hist[10] = {143, 146, 142, 146, 144, 145, 144, 143, 141, 143};
static const int digits_test_hist[10] = {35, 36, 35, 37, 37, 37, 37, 36, 33, 37};
static const long digits_train_sum16 = 449372, digits_test_sum16 = 112346;
/* CSV rows 1 (first train sample, label 0) and 1438 (first test sample, label 2). */
static const unsigned char csv_row1[64] = {0, 0, 5,  13, 9,  1,  0, 0, 0, 0, 13, 15, 10, 15, 5, 0,
                                           0, 3, 15, 2,  0,  11, 8, 0, 0, 4, 12, 0,  0,  8,  8, 0,
                                           0, 5, 8,  0,  0,  9,  8, 0, 0, 4, 11, 0,  1,  12, 7, 0,
                                           0, 2, 14, 5,  10, 12, 0, 0, 0, 0, 6,  13, 10, 0,  0, 0};
static const unsigned char csv_row1438[64] = {
    0, 4, 16, 15, 2, 0, 0,  0,  0,  11, 15, 15, 7, 0,  0,  0,  0,  9,  10, 6, 14, 0,
    0, 0, 0,  0,  0, 7, 15, 0,  0,  0,  0,  0,  0, 13, 10, 0,  0,  0,  0,  0, 1,  16,
    7, 2, 2,  0,  0, 1, 12, 16, 15, 16, 15, 0,  0, 4,  16, 16, 16, 12, 11, 0};

static void check_digits_split(const char *dir, bool train) {
    const char *name = train ? "train" : "test";
    rpu_dataset ds;
    rpu_status s = rpu_dataset_load_digits(dir, train, &ds);
    if (!CHECK(s == RPU_OK, "load_digits(%s): %s", name, rpu_last_error())) return;
    const int want_n = train ? 1437 : 360;
    CHECK(ds.n == want_n, "digits %s: n = %d, want %d", name, ds.n, want_n);
    CHECK(ds.channels == 1 && ds.height == 8 && ds.width == 8, "digits %s: shape %dx%dx%d", name,
          ds.channels, ds.height, ds.width);
    CHECK(ds.n_classes == 10, "digits %s: n_classes %d", name, ds.n_classes);
    CHECK(rpu_dataset_sample_size(&ds) == 64, "digits sample size %zu",
          rpu_dataset_sample_size(&ds));

    int h[10];
    histogram(&ds, h, 10);
    const int *want_h = train ? digits_train_hist : digits_test_hist;
    for (int k = 0; k < 10; ++k)
        CHECK(h[k] == want_h[k], "digits %s: %d samples of class %d, want %d", name, h[k], k,
              want_h[k]);

    /* Every pixel is (v * 255 + 8) / 16 / 255 for an integer v in 0..16 (exactly as
     * float: byte / 255.0f), min 0 and max 1, and the v add up to the CSV's sum. */
    float lo = 1e30f, hi = -1e30f;
    long sum16 = 0, bad = 0;
    const size_t total = (size_t)ds.n * 64;
    for (size_t k = 0; k < total; ++k) {
        const float v = ds.x[k];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        const long v16 = lrintf(v * 16.0f);
        if (v16 < 0 || v16 > 16 || v != (float)((v16 * 255 + 8) / 16) / 255.0f) bad++;
        sum16 += v16;
    }
    CHECK(lo == 0.0f && hi == 1.0f, "digits %s: pixel range [%g, %g], want [0, 1]", name, lo, hi);
    CHECK(bad == 0, "digits %s: %ld pixels are not a scaled 0..16 value", name, bad);
    const long want_sum = train ? digits_train_sum16 : digits_test_sum16;
    CHECK(sum16 == want_sum, "digits %s: pixel sum %ld (0..16 scale), want %ld", name, sum16,
          want_sum);

    const unsigned char *row = train ? csv_row1 : csv_row1438;
    int mism = 0;
    for (int k = 0; k < 64; ++k)
        mism += ds.x[k] != (float)((row[k] * 255 + 8) / 16) / 255.0f;
    CHECK(mism == 0, "digits %s: first sample differs from its CSV row in %d pixels", name, mism);
    CHECK(ds.y[0] == (train ? 0 : 2), "digits %s: first label %d", name, ds.y[0]);
    rpu_dataset_free(&ds);
    CHECK(is_empty(&ds), "rpu_dataset_free leaves an empty set");
    rpu_dataset_free(&ds); /* twice is fine */
    rpu_dataset_free(NULL);
}

static void test_digits(const char *data_dir) {
    check_digits_split(data_dir, true);
    check_digits_split(data_dir, false);

    /* a missing directory: RPU_ERR_IO naming the file looked for */
    rpu_dataset ds;
    const char *nodir = tmp_path("no-such-dir");
    CHECK_STATUS(rpu_dataset_load_digits(nodir, true, &ds), RPU_ERR_IO);
    CHECK(strstr(rpu_last_error(), "no-such-dir/digits-train-images-idx3-ubyte") != NULL,
          "missing digits: message %s", rpu_last_error());
    CHECK(is_empty(&ds), "missing digits: empty set");

    /* a digits directory whose labels reach 12: the 10-class check rejects it */
    const char *fake = tmp_path("fake-digits");
    CHECK(make_dir(fake), "mkdir %s", fake);
    unsigned char pix[3 * 64] = {0}, lab[3] = {1, 12, 3};
    char im[4400], lb[4400];
    snprintf(im, sizeof im, "%s/digits-test-images-idx3-ubyte", fake);
    snprintf(lb, sizeof lb, "%s/digits-test-labels-idx1-ubyte", fake);
    write_idx(im, 0, 0x803, (const uint32_t[]){3, 8, 8}, 3, pix, sizeof pix);
    write_idx(lb, 0, 0x801, (const uint32_t[]){3}, 1, lab, sizeof lab);
    rpu_clear_error();
    CHECK_STATUS(rpu_dataset_load_digits(fake, false, &ds), RPU_ERR_FORMAT);
    CHECK(strstr(rpu_last_error(), lb) && strstr(rpu_last_error(), "label 12"),
          "digits label 12: %s", rpu_last_error());
    /* ... and 7x9 images are not digits */
    lab[1] = 9;
    write_idx(lb, 0, 0x801, (const uint32_t[]){3}, 1, lab, sizeof lab);
    write_idx(im, 0, 0x803, (const uint32_t[]){3, 7, 9}, 3, pix, 3 * 63);
    CHECK_STATUS(rpu_dataset_load_digits(fake, false, &ds), RPU_ERR_FORMAT);
    CHECK(strstr(rpu_last_error(), "7 x 9") != NULL, "digits 7x9: %s", rpu_last_error());
    CHECK(is_empty(&ds), "digits 7x9: empty set");
}

/* ---- round trips ------------------------------------------------------------------- */

enum { RT_N = 37, RT_H = 5, RT_W = 7, RT_S = RT_H * RT_W };

static void rt_data(unsigned char *pix, unsigned char *lab) {
    rpu_rng r;
    rpu_rng_init(&r, 2024, rpu_stream_id(1, 0, RPU_PURPOSE_TEST));
    for (int k = 0; k < RT_N * RT_S; ++k)
        pix[k] = (unsigned char)(rpu_rng_u32(&r) & 0xFF);
    pix[3] = 0;
    pix[4] = 255;
    for (int i = 0; i < RT_N; ++i)
        lab[i] = (unsigned char)(rpu_rng_u32(&r) % 6);
    lab[RT_N / 2] = 6; /* largest label: n_classes 7 */
}

static bool same_as(const rpu_dataset *ds, const unsigned char *pix, const unsigned char *lab,
                    const char *what) {
    bool ok = CHECK(ds->n == RT_N && ds->channels == 1 && ds->height == RT_H && ds->width == RT_W &&
                        ds->n_classes == 7,
                    "%s: n %d shape %dx%dx%d classes %d", what, ds->n, ds->channels, ds->height,
                    ds->width, ds->n_classes);
    if (!ok) return false;
    int bad = 0;
    for (int k = 0; k < RT_N * RT_S; ++k)
        bad += ds->x[k] != (float)pix[k] / 255.0f;
    for (int i = 0; i < RT_N; ++i)
        bad += ds->y[i] != lab[i];
    return CHECK(bad == 0, "%s: %d values differ from what was written", what, bad);
}

static void test_roundtrip(void) {
    unsigned char pix[RT_N * RT_S], lab[RT_N];
    rt_data(pix, lab);
    const uint32_t idims[3] = {RT_N, RT_H, RT_W}, ldims[1] = {RT_N};
    const char *pi = tmp_path("rt-images-idx3-ubyte"), *pl = tmp_path("rt-labels-idx1-ubyte");
    const char *gi = tmp_path("rt-images-idx3-ubyte.gz"), *gl = tmp_path("rt-labels-idx1-ubyte.gz");
    write_idx(pi, 0, 0x803, idims, 3, pix, sizeof pix);
    write_idx(pl, 0, 0x801, ldims, 1, lab, sizeof lab);
    write_idx(gi, 1, 0x803, idims, 3, pix, sizeof pix);
    write_idx(gl, 1, 0x801, ldims, 1, lab, sizeof lab);

    rpu_dataset a, b, c;
    CHECK_OK(rpu_dataset_load_idx(pi, pl, &a));
    CHECK_OK(rpu_dataset_load_idx(gi, gl, &b));
    CHECK_OK(rpu_dataset_load_idx(gi, pl, &c)); /* mixed */
    if (same_as(&a, pix, lab, "plain") && same_as(&b, pix, lab, "gzip") &&
        same_as(&c, pix, lab, "mixed")) {
        CHECK(memcmp(a.x, b.x, sizeof(float) * RT_N * RT_S) == 0, "gzip and plain pixels differ");
        CHECK(memcmp(a.y, b.y, RT_N) == 0, "gzip and plain labels differ");
    }
    rpu_dataset_free(&a);
    rpu_dataset_free(&b);
    rpu_dataset_free(&c);

    /* gzip is recognised by its magic bytes, not by the name */
    const char *hidden = tmp_path("rt-gzip-without-suffix");
    write_idx(hidden, 1, 0x803, idims, 3, pix, sizeof pix);
    CHECK_OK(rpu_dataset_load_idx(hidden, pl, &a));
    same_as(&a, pix, lab, "gzip without .gz");
    rpu_dataset_free(&a);

    /* a known class count */
    CHECK_OK(rpu_dataset_load_idx_classes(pi, pl, 10, &a));
    CHECK(a.n_classes == 10, "n_classes given: %d", a.n_classes);
    rpu_dataset_free(&a);

    /* MNIST naming in a directory: train gzip, test plain with the dotted variant */
    const char *dir = tmp_path("mnist-like");
    CHECK(make_dir(dir), "mkdir %s", dir);
    char p[4400];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(p, 1, 0x803, idims, 3, pix, sizeof pix);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", dir);
    write_idx(p, 1, 0x801, ldims, 1, lab, sizeof lab);
    snprintf(p, sizeof p, "%s/t10k-images.idx3-ubyte", dir);
    write_idx(p, 0, 0x803, idims, 3, pix, sizeof pix);
    snprintf(p, sizeof p, "%s/t10k-labels.idx1-ubyte", dir);
    write_idx(p, 0, 0x801, ldims, 1, lab, sizeof lab);
    CHECK_OK(rpu_dataset_load_dir(dir, true, &a));
    same_as(&a, pix, lab, "load_dir train (.gz)");
    rpu_dataset_free(&a);
    CHECK_OK(rpu_dataset_load_dir(dir, false, &a));
    same_as(&a, pix, lab, "load_dir test (dotted names)");
    rpu_dataset_free(&a);

    /* a directory without the files */
    const char *empty = tmp_path("empty-dir");
    CHECK(make_dir(empty), "mkdir %s", empty);
    CHECK_STATUS(rpu_dataset_load_dir(empty, true, &a), RPU_ERR_IO);
    CHECK(strstr(rpu_last_error(), "empty-dir/train-images-idx3-ubyte") != NULL,
          "load_dir on an empty directory: %s", rpu_last_error());
    CHECK(is_empty(&a), "load_dir failure leaves an empty set");
}

/* ---- malformed files --------------------------------------------------------------- */

static void test_malformed(void) {
    unsigned char pix[RT_N * RT_S], lab[RT_N];
    rt_data(pix, lab);
    const uint32_t idims[3] = {RT_N, RT_H, RT_W}, ldims[1] = {RT_N};
    char pi[2304], pl[2304]; /* used throughout: copies, not ring entries */
    snprintf(pi, sizeof pi, "%s", tmp_path("ok-images"));
    snprintf(pl, sizeof pl, "%s", tmp_path("ok-labels"));
    write_idx(pi, 0, 0x803, idims, 3, pix, sizeof pix);
    write_idx(pl, 0, 0x801, ldims, 1, lab, sizeof lab);
    const char *f;

    /* missing files */
    f = tmp_path("missing-images");
    expect_fail("missing images", f, pl, 0, RPU_ERR_IO, f, NULL);
    f = tmp_path("missing-labels");
    expect_fail("missing labels", pi, f, 0, RPU_ERR_IO, f, NULL);

    /* bad magic */
    f = tmp_path("bad-magic");
    write_idx(f, 0, 0x12345678, idims, 3, pix, sizeof pix);
    expect_fail("bad magic", f, pl, 0, RPU_ERR_FORMAT, f, "magic");
    f = tmp_path("bad-magic.gz");
    write_idx(f, 1, 0x12345678, idims, 3, pix, sizeof pix);
    expect_fail("bad magic gzip", f, pl, 0, RPU_ERR_FORMAT, f, "magic");
    f = tmp_path("float-type");
    write_idx(f, 0, 0x0D03, idims, 3, pix, sizeof pix);
    expect_fail("element type float", f, pl, 0, RPU_ERR_FORMAT, f, "unsigned byte");
    expect_fail("labels as images", pl, pl, 0, RPU_ERR_FORMAT, pl, "dimensions");
    expect_fail("images as labels", pi, pi, 0, RPU_ERR_FORMAT, pi, "dimensions");
    f = tmp_path("not-idx-text");
    write_bytes(f, "hello, world\n", 13);
    expect_fail("text file", f, pl, 0, RPU_ERR_FORMAT, f, "magic");

    /* wrong dimensions */
    f = tmp_path("two-dims");
    write_idx(f, 0, 0x802, (const uint32_t[]){RT_N, RT_S}, 2, pix, sizeof pix);
    expect_fail("2-d images", f, pl, 0, RPU_ERR_FORMAT, f, "dimensions");
    f = tmp_path("zero-rows");
    write_idx(f, 0, 0x803, (const uint32_t[]){RT_N, 0, RT_W}, 3, pix, 0);
    expect_fail("zero rows", f, pl, 0, RPU_ERR_FORMAT, f, "is 0");
    f = tmp_path("zero-labels");
    write_idx(f, 0, 0x801, (const uint32_t[]){0}, 1, lab, 0);
    expect_fail("zero labels", pi, f, 0, RPU_ERR_FORMAT, f, "is 0");
    f = tmp_path("wrong-shape"); /* header 37x7x5 over 37*35 bytes: fine; 37x7x6: short */
    write_idx(f, 0, 0x803, (const uint32_t[]){RT_N, 7, 6}, 3, pix, sizeof pix);
    expect_fail("header shape larger than the data", f, pl, 0, RPU_ERR_FORMAT, f, "truncated");

    /* truncated */
    f = tmp_path("short-header");
    write_bytes(f, "\0\0\x08\x03\0\0", 6);
    expect_fail("truncated header", f, pl, 0, RPU_ERR_FORMAT, f, "truncated");
    f = tmp_path("empty-file");
    write_bytes(f, "", 0);
    expect_fail("empty file", f, pl, 0, RPU_ERR_FORMAT, f, "truncated");
    f = tmp_path("short-data");
    write_idx(f, 0, 0x803, idims, 3, pix, sizeof pix - 1);
    expect_fail("data one byte short", f, pl, 0, RPU_ERR_FORMAT, f, "truncated");
    f = tmp_path("short-data.gz");
    write_idx(f, 1, 0x803, idims, 3, pix, sizeof pix - 1);
    expect_fail("gzip data one byte short", f, pl, 0, RPU_ERR_FORMAT, f, "truncated");
    f = tmp_path("short-labels.gz");
    write_idx(f, 1, 0x801, ldims, 1, lab, sizeof lab - 5);
    expect_fail("gzip labels short", pi, f, 0, RPU_ERR_FORMAT, f, "truncated");
    {
        /* a gzip stream cut in the middle / with one byte of its trailer missing / with a
         * flipped byte in the compressed data */
        size_t n, gn;
        unsigned char *raw = idx_bytes(0x803, idims, 3, pix, sizeof pix, &n);
        unsigned char *gz = gz_bytes(raw, n, &gn);
        f = tmp_path("cut-stream.gz");
        write_bytes(f, gz, gn / 2);
        expect_fail("gzip stream cut in half", f, pl, 0, RPU_ERR_FORMAT, f, "gzip");
        f = tmp_path("cut-trailer.gz");
        write_bytes(f, gz, gn - 1);
        expect_fail("gzip trailer cut", f, pl, 0, RPU_ERR_FORMAT, f, "gzip");
        f = tmp_path("flipped.gz");
        gz[gn / 2] ^= 0x5A;
        write_bytes(f, gz, gn);
        expect_fail("gzip data corrupt", f, pl, 0, RPU_ERR_FORMAT, f, NULL);
        free(gz);
        free(raw);
    }

    /* too long */
    {
        unsigned char more[sizeof pix + 1];
        memcpy(more, pix, sizeof pix);
        more[sizeof pix] = 7;
        f = tmp_path("long-data");
        write_idx(f, 0, 0x803, idims, 3, more, sizeof more);
        expect_fail("one byte too many", f, pl, 0, RPU_ERR_FORMAT, f, "too long");
        f = tmp_path("long-data.gz");
        write_idx(f, 1, 0x803, idims, 3, more, sizeof more);
        expect_fail("gzip one byte too many", f, pl, 0, RPU_ERR_FORMAT, f, "too long");
    }

    /* count mismatch */
    f = tmp_path("fewer-labels");
    write_idx(f, 0, 0x801, (const uint32_t[]){RT_N - 1}, 1, lab, sizeof lab - 1);
    expect_fail("36 labels for 37 images", pi, f, 0, RPU_ERR_FORMAT, f, "37 images");
    CHECK(strstr(rpu_last_error(), pi) != NULL, "count mismatch names the image file too: %s",
          rpu_last_error());

    /* label out of range for a given class count (the largest label is 6) */
    expect_fail("labels 5, 6 with 5 classes", pi, pl, 5, RPU_ERR_FORMAT, pl, "(5 classes)");
    expect_fail("label 6 with 6 classes", pi, pl, 6, RPU_ERR_FORMAT, pl, "label 6 of sample");
    rpu_dataset ds;
    CHECK_OK(rpu_dataset_load_idx_classes(pi, pl, 7, &ds));
    rpu_dataset_free(&ds);
    CHECK_STATUS(rpu_dataset_load_idx_classes(pi, pl, 257, &ds), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_load_idx_classes(pi, pl, -1, &ds), RPU_ERR_ARG);

    /* hostile headers: products that overflow 32 (or 64) bits, or only exceed the limits,
     * over a few bytes of data; plain and gzip */
    const uint32_t huge[][3] = {
        {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, /* 2^96: overflows even 64 bits */
        {1, 65536, 65536},                       /* 2^32 pixels in one image: 0 in 32 bits */
        {0x80000000u, 2, 2},                     /* 2^33 bytes */
        {65537, 65536, 1},                       /* 2^32 + 65536 bytes: small in 32 bits */
    };
    for (int v = 0; v < 4; ++v) {
        for (int gzv = 0; gzv < 2; ++gzv) {
            char name[64];
            snprintf(name, sizeof name, "huge-%d%s", v, gzv ? ".gz" : "");
            f = tmp_path(name);
            write_idx(f, gzv, 0x803, huge[v], 3, pix, 64);
            expect_fail(name, f, pl, 0, RPU_ERR_FORMAT, f, "limit");
        }
    }
    f = tmp_path("huge-labels");
    write_idx(f, 0, 0x801, (const uint32_t[]){0xFFFFFFFFu}, 1, lab, 16);
    expect_fail("2^32 - 1 labels", pi, f, 0, RPU_ERR_FORMAT, f, "limit");
    /* within the limits but far larger than the data (a gzip file cannot be measured
     * before decompression): truncated, without allocating what the header says */
    f = tmp_path("claims-1g.gz");
    write_idx(f, 1, 0x803, (const uint32_t[]){1u << 20, 32, 32}, 3, pix, 100);
    expect_fail("gzip claims 1 GiB", f, pl, 0, RPU_ERR_FORMAT, f, "truncated");
    f = tmp_path("claims-1g");
    write_idx(f, 0, 0x803, (const uint32_t[]){1u << 20, 32, 32}, 3, pix, 100);
    expect_fail("plain claims 1 GiB", f, pl, 0, RPU_ERR_FORMAT, f, "truncated");

    /* NULL arguments */
    CHECK_STATUS(rpu_dataset_load_idx(NULL, pl, &ds), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_load_idx(pi, NULL, &ds), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_load_idx(pi, pl, NULL), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_load_dir(NULL, true, &ds), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_load_digits(tmp_dir, true, NULL), RPU_ERR_ARG);
}

/* ---- synthetic ------------------------------------------------------------------------- */

static uint64_t fnv1a(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t k = 0; k < n; ++k)
        h = (h ^ b[k]) * 0x100000001b3ull;
    return h;
}

static void test_synthetic(void) {
    enum { N = 1000, C = 2, H = 6, W = 5, K = 10, S = C * H * W };
    rpu_dataset a, b, c;
    CHECK_OK(rpu_dataset_synthetic(N, C, H, W, K, 7, &a));
    CHECK_OK(rpu_dataset_synthetic(N, C, H, W, K, 7, &b));
    CHECK_OK(rpu_dataset_synthetic(N, C, H, W, K, 8, &c));
    if (!CHECK(a.n == N && a.channels == C && a.height == H && a.width == W && a.n_classes == K,
               "synthetic shape %d %dx%dx%d %d", a.n, a.channels, a.height, a.width, a.n_classes) ||
        !c.x) {
        rpu_dataset_free(&a);
        rpu_dataset_free(&b);
        rpu_dataset_free(&c);
        return;
    }
    CHECK(memcmp(a.x, b.x, sizeof(float) * N * S) == 0 && memcmp(a.y, b.y, N) == 0,
          "same seed, different data");
    int diff_x = 0, diff_y = 0;
    for (int k = 0; k < N * S; ++k)
        diff_x += a.x[k] != c.x[k];
    for (int i = 0; i < N; ++i)
        diff_y += a.y[i] != c.y[i];
    CHECK(diff_x > N * S * 9 / 10, "another seed changes only %d of %d pixels", diff_x, N * S);
    CHECK(diff_y > N / 2, "another seed changes only %d of %d labels", diff_y, N);

    /* identical on every rank */
    uint64_t h = fnv1a(a.x, sizeof(float) * N * S, 1469598103934665603ull);
    h = fnv1a(a.y, N, h);
    unsigned long long hl = h, hmin, hmax;
    MPI_Allreduce(&hl, &hmin, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&hl, &hmax, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    CHECK(hmin == hmax, "synthetic data differs between ranks");

    /* balanced classes, shuffled order, pixels in [0, 1] */
    int hist[K];
    histogram(&a, hist, K);
    for (int k = 0; k < K; ++k)
        CHECK(hist[k] == N / K, "class %d has %d samples, want %d", k, hist[k], N / K);
    int in_order = 0;
    for (int i = 0; i < N; ++i)
        in_order += a.y[i] == i % K;
    CHECK(in_order < N / 2, "labels not shuffled (%d in i %% K order)", in_order);
    int out_of_range = 0, zeros = 0, ones = 0;
    for (int k = 0; k < N * S; ++k) {
        out_of_range += !(a.x[k] >= 0.0f && a.x[k] <= 1.0f);
        zeros += a.x[k] == 0.0f;
        ones += a.x[k] == 1.0f;
    }
    CHECK(out_of_range == 0, "%d synthetic pixels outside [0, 1]", out_of_range);
    CHECK(zeros > 0 && ones > 0, "clamping never reached (zeros %d, ones %d)", zeros, ones);

    /* learnable: nearest class mean of the first 800 samples classifies the last 200 */
    static float mean[K][S];
    int cnt[K] = {0};
    memset(mean, 0, sizeof mean);
    for (int i = 0; i < 800; ++i) {
        cnt[a.y[i]]++;
        for (int k = 0; k < S; ++k)
            mean[a.y[i]][k] += a.x[(size_t)i * S + k];
    }
    for (int c2 = 0; c2 < K; ++c2)
        for (int k = 0; k < S; ++k)
            mean[c2][k] /= cnt[c2] ? (float)cnt[c2] : 1.0f;
    int correct = 0;
    for (int i = 800; i < N; ++i) {
        int best = -1;
        double bestd = 1e300;
        for (int c2 = 0; c2 < K; ++c2) {
            double d = 0;
            for (int k = 0; k < S; ++k) {
                const double e = a.x[(size_t)i * S + k] - mean[c2][k];
                d += e * e;
            }
            if (d < bestd) bestd = d, best = c2;
        }
        correct += best == a.y[i];
    }
    CHECK(correct >= 190, "nearest class mean: %d / 200 correct (want >= 190)", correct);
    rpu_dataset_free(&a);
    rpu_dataset_free(&b);
    rpu_dataset_free(&c);

    /* n not a multiple of the class count: counts differ by at most one */
    CHECK_OK(rpu_dataset_synthetic(1003, 1, 4, 4, 10, 3, &a));
    if (a.y) {
        histogram(&a, hist, K);
        for (int k = 0; k < K; ++k)
            CHECK(hist[k] == 100 + (k < 3), "n = 1003: class %d has %d", k, hist[k]);
    }
    rpu_dataset_free(&a);

    CHECK_STATUS(rpu_dataset_synthetic(0, 1, 8, 8, 10, 1, &a), RPU_ERR_ARG);
    CHECK(is_empty(&a), "failed synthetic leaves an empty set");
    CHECK_STATUS(rpu_dataset_synthetic(10, 1, 0, 8, 10, 1, &a), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_synthetic(10, 1, 8, 8, 0, 1, &a), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_synthetic(10, 1, 8, 8, 257, 1, &a), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_synthetic(1 << 30, 64, 64, 64, 10, 1, &a), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_synthetic(10, 65536, 65536, 65536, 10, 1, &a), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_synthetic(10, 1, 8, 8, 10, 1, NULL), RPU_ERR_ARG);
}

/* ---- Fashion-MNIST ------------------------------------------------------------------- */

/* Numbers computed with Python's gzip module from the files of Debian's
 * dataset-fashion-mnist 0.0~git20200523.55506a9-1: every class has 6,000 training and
 * 1,000 test images; first ten labels; sum of all pixel bytes. */
static void check_fashion_split(const char *dir, bool train) {
    const char *name = train ? "train" : "test";
    rpu_dataset ds;
    rpu_status s = rpu_dataset_load_dir(dir, train, &ds);
    if (!CHECK(s == RPU_OK,
               "Fashion-MNIST %s from %s: %s -- install Debian's dataset-fashion-mnist "
               "(bash scripts/setup.sh --with-fashion) or configure with "
               "-DRPUSIM_TEST_FASHION=OFF",
               name, dir, rpu_last_error()))
        return;
    const int want_n = train ? 60000 : 10000;
    CHECK(ds.n == want_n && ds.channels == 1 && ds.height == 28 && ds.width == 28 &&
              ds.n_classes == 10,
          "Fashion-MNIST %s: n %d shape %dx%dx%d classes %d", name, ds.n, ds.channels, ds.height,
          ds.width, ds.n_classes);
    if (ds.n == want_n && rpu_dataset_sample_size(&ds) == 784) {
        int h[10];
        histogram(&ds, h, 10);
        for (int k = 0; k < 10; ++k)
            CHECK(h[k] == want_n / 10, "Fashion-MNIST %s: class %d has %d", name, k, h[k]);
        static const unsigned char first_train[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
        static const unsigned char first_test[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
        CHECK(memcmp(ds.y, train ? first_train : first_test, 10) == 0,
              "Fashion-MNIST %s: first labels differ", name);
        unsigned long long sum = 0;
        float lo = 1e30f, hi = -1e30f;
        for (size_t k = 0; k < (size_t)ds.n * 784; ++k) {
            sum += (unsigned long long)lrintf(ds.x[k] * 255.0f);
            lo = ds.x[k] < lo ? ds.x[k] : lo;
            hi = ds.x[k] > hi ? ds.x[k] : hi;
        }
        const unsigned long long want_sum = train ? 3431114169ull : 573469082ull;
        CHECK(sum == want_sum, "Fashion-MNIST %s: pixel byte sum %llu, want %llu", name, sum,
              want_sum);
        CHECK(lo == 0.0f && hi == 1.0f, "Fashion-MNIST %s: range [%g, %g]", name, lo, hi);
    }
    rpu_dataset_free(&ds);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    if (argc == 3 && !strcmp(argv[1], "--fashion")) {
        check_fashion_split(argv[2], true);
        check_fashion_split(argv[2], false);
        return tl_finish();
    }
    if (argc != 3) {
        if (tl_rank() == 0)
            fprintf(stderr, "usage: test_data DATA_DIR TMP_DIR | test_data --fashion DIR\n");
        CHECK(false, "bad arguments");
        return tl_finish();
    }
    char base[2048];
    snprintf(base, sizeof base, "%s", argv[2]);
    CHECK(make_dir(base), "mkdir %s: %s", base, strerror(errno));
    snprintf(tmp_dir, sizeof tmp_dir, "%s/np%d_r%d", base, tl_size(), tl_rank());
    CHECK(make_dir(tmp_dir), "mkdir %s: %s", tmp_dir, strerror(errno));

    test_digits(argv[1]);
    test_roundtrip();
    test_malformed();
    test_synthetic();
    return tl_finish();
}
