/* Tests of the data module (include/rpusim/data.h):
 *   - the digits shipped in data/: split sizes, shapes, label histograms, pixel values;
 *   - IDX files written here (plain and gzip) read back to the same data, also through
 *     rpu_dataset_load_dir's naming variants;
 *   - malformed files (bad magic, wrong dimensions, truncated or too long data, corrupt
 *     gzip, count mismatch, label out of range, hostile huge headers) give RPU_ERR_FORMAT
 *     naming the file, a missing file RPU_ERR_IO naming it;
 *   - the synthetic set: reproducible, seed-dependent, balanced, learnable, the same on
 *     every rank;
 *   - (issue 13, defect 3) split checks: test images of another shape (4x4, 16x16 gzip,
 *     3 channels) name both image sources and both shapes; a test label that is no
 *     training class, or one the network cannot give, names the label file, the sample
 *     and the value; a test split without the last class is evaluated over the training
 *     classes. The same through rpu_train and rpu_evaluate on IDX directories (collective
 *     on MPI_COMM_WORLD): the error comes before any batch (on_batch/on_epoch hooks);
 *   - (issue 13, batch assembly) rpu_data_order against its documented definition
 *     (doc_order), a permutation, epoch- and seed-dependent, fair (first position over
 *     6000 epochs), identical on every rank; rpu_dataset_batch on a hand-made set (both
 *     orders, partial last batch, argument errors); and end to end every batch that
 *     rpu_train feeds its network, seen through on_batch over 2 epochs with 37 training
 *     and 19 test samples in batches of 8: each image is intact and identifies its
 *     sample, its label is that sample's label, training samples follow doc_order of the
 *     epoch and test samples the stored order, the last batches hold 5 and 3 samples.
 *     The mutation "labels of the last partial batch shifted by one" in rpu_dataset_batch
 *     fails 16 checks at np1 (unit and end to end, training and evaluation).
 *
 * usage: test_data DATA_DIR TMP_DIR       (DATA_DIR = the repository's data/)
 *        test_data --fashion DIR          (Fashion-MNIST as installed by Debian's
 *                                          dataset-fashion-mnist; scripts/setup.sh)
 * Every rank runs every check; files are written under TMP_DIR/np<size>_r<rank>. */
#define _POSIX_C_SOURCE 200809L /* mkdir */

#include "rpusim/data.h"
#include "rpusim/net.h"
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
           ds->width == 0 && ds->n_classes == 0 && ds->images_name == NULL &&
           ds->labels_name == NULL;
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
    CHECK(a.images_name && !strcmp(a.images_name, pi) && a.labels_name &&
              !strcmp(a.labels_name, pl),
          "source names %s, %s; want %s, %s", a.images_name ? a.images_name : "(null)",
          a.labels_name ? a.labels_name : "(null)", pi, pl);
    CHECK(c.images_name && !strcmp(c.images_name, gi) && c.labels_name &&
              !strcmp(c.labels_name, pl),
          "mixed source names %s, %s", c.images_name ? c.images_name : "(null)",
          c.labels_name ? c.labels_name : "(null)");
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
    expect_fail("zero labels", pi, f, 0, RPU_ERR_FORMAT, f, "empty: the header says 0 labels");
    f = tmp_path("zero-images.gz");
    write_idx(f, 1, 0x803, (const uint32_t[]){0, RT_H, RT_W}, 3, pix, 0);
    expect_fail("zero images", f, pl, 0, RPU_ERR_FORMAT, f, "empty: the header says 0 images");
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

    /* gzip members: concatenated members are one stream (as gzip -d reads them), also with
     * an empty member; bytes after the last member that are not another member are an
     * error like a plain file's extra bytes (zlib's gzread ignored them) */
    {
        size_t n, g1, g2, g0;
        unsigned char *raw = idx_bytes(0x803, idims, 3, pix, sizeof pix, &n);
        unsigned char *a = gz_bytes(raw, 100, &g1);
        unsigned char *b = gz_bytes(raw + 100, n - 100, &g2);
        unsigned char *e = gz_bytes(raw, 0, &g0);
        unsigned char *cat = malloc(g1 + g0 + g2 + 64);
        memcpy(cat, a, g1);
        memcpy(cat + g1, e, g0);
        memcpy(cat + g1 + g0, b, g2);
        f = tmp_path("members.gz");
        write_bytes(f, cat, g1 + g0 + g2);
        rpu_dataset ds;
        CHECK_OK(rpu_dataset_load_idx(f, pl, &ds));
        same_as(&ds, pix, lab, "three gzip members");
        rpu_dataset_free(&ds);
        memcpy(cat + g1 + g0 + g2, "trailing garbage", 16);
        f = tmp_path("trailing-garbage.gz");
        write_bytes(f, cat, g1 + g0 + g2 + 16);
        expect_fail("gzip + trailing garbage", f, pl, 0, RPU_ERR_FORMAT, f,
                    "not another gzip member");
        memset(cat + g1 + g0 + g2, 0, 16);
        f = tmp_path("trailing-zeros.gz");
        write_bytes(f, cat, g1 + g0 + g2 + 16);
        expect_fail("gzip + trailing zeros", f, pl, 0, RPU_ERR_FORMAT, f, "too long");
        f = tmp_path("trailing-half-member.gz");
        memcpy(cat + g1 + g0 + g2, a, 10);
        write_bytes(f, cat, g1 + g0 + g2 + 10);
        expect_fail("gzip + a cut member", f, pl, 0, RPU_ERR_FORMAT, f, "truncated gzip data");
        f = tmp_path("magic-only.gz");
        write_bytes(f, "\x1f\x8b", 2);
        expect_fail("gzip magic only", f, pl, 0, RPU_ERR_FORMAT, f, "truncated gzip data");
        free(cat), free(e), free(b), free(a), free(raw);
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

/* ---- split checks (issue 13, defect 3) ------------------------------------------------ */

/* A hand-filled set (no source names) of n samples c x h x w, labels from lab. */
static rpu_dataset hand_set(int n, int c, int h, int w, int n_classes, const uint8_t *lab) {
    rpu_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = n, ds.channels = c, ds.height = h, ds.width = w, ds.n_classes = n_classes;
    ds.x = calloc((size_t)n * c * h * w + 1, sizeof(float));
    ds.y = malloc((size_t)n + 1);
    for (int i = 0; i < n; ++i)
        ds.y[i] = lab[i];
    return ds;
}

static void test_split_checks(void) {
    /* a training split 8x8 (labels 0..9) and test splits of 4x4, 16x16, 8x8 with a label
     * 12 at sample 5, 8x8 with labels 0..8 only, written as IDX files */
    enum { NTR = 30, NTE = 12 };
    static unsigned char pix[NTR * 256];
    unsigned char ltr[NTR], lte[NTE];
    for (int k = 0; k < NTR * 256; ++k)
        pix[k] = (unsigned char)(k * 37 + 11);
    for (int i = 0; i < NTR; ++i)
        ltr[i] = (unsigned char)(i % 10);
    char ti[2304], tl[2304], i4[2304], i16[2304], i8[2304], lbad[2304], lnine[2304];
    snprintf(ti, sizeof ti, "%s", tmp_path("split-train-images"));
    snprintf(tl, sizeof tl, "%s", tmp_path("split-train-labels"));
    snprintf(i4, sizeof i4, "%s", tmp_path("split-test-images-4x4"));
    snprintf(i16, sizeof i16, "%s", tmp_path("split-test-images-16x16.gz"));
    snprintf(i8, sizeof i8, "%s", tmp_path("split-test-images-8x8"));
    snprintf(lbad, sizeof lbad, "%s", tmp_path("split-test-labels-12"));
    snprintf(lnine, sizeof lnine, "%s", tmp_path("split-test-labels-0-8"));
    write_idx(ti, 0, 0x803, (const uint32_t[]){NTR, 8, 8}, 3, pix, NTR * 64);
    write_idx(tl, 0, 0x801, (const uint32_t[]){NTR}, 1, ltr, NTR);
    write_idx(i4, 0, 0x803, (const uint32_t[]){NTE, 4, 4}, 3, pix, NTE * 16);
    write_idx(i16, 1, 0x803, (const uint32_t[]){NTE, 16, 16}, 3, pix, NTE * 256);
    write_idx(i8, 0, 0x803, (const uint32_t[]){NTE, 8, 8}, 3, pix, NTE * 64);
    for (int i = 0; i < NTE; ++i)
        lte[i] = (unsigned char)(i % 9);
    write_idx(lnine, 0, 0x801, (const uint32_t[]){NTE}, 1, lte, NTE);
    lte[5] = 12;
    write_idx(lbad, 0, 0x801, (const uint32_t[]){NTE}, 1, lte, NTE);

    rpu_dataset tr, te;
    CHECK_OK(rpu_dataset_load_idx(ti, tl, &tr));
    CHECK(tr.n_classes == 10, "training split: %d classes", tr.n_classes);
    const char *const imgs[2] = {i4, i16};
    const char *const shapes[2] = {"1 x 4 x 4", "1 x 16 x 16"};
    for (int v = 0; v < 2; ++v) {
        CHECK_OK(rpu_dataset_load_idx(imgs[v], lnine, &te));
        rpu_clear_error();
        CHECK_STATUS(rpu_dataset_check_split(&tr, &te), RPU_ERR_FORMAT);
        const char *m = rpu_last_error();
        CHECK(strstr(m, imgs[v]) && strstr(m, ti) && strstr(m, shapes[v]) && strstr(m, "1 x 8 x 8"),
              "%s test images: message names both files and shapes: %s", shapes[v], m);
        rpu_dataset_free(&te);
    }
    /* a test label that is no class of the training split */
    CHECK_OK(rpu_dataset_load_idx(i8, lbad, &te));
    CHECK_STATUS(rpu_dataset_check_split(&tr, &te), RPU_ERR_FORMAT);
    CHECK(strstr(rpu_last_error(), lbad) && strstr(rpu_last_error(), "label 12 of sample 5") &&
              strstr(rpu_last_error(), tl) && strstr(rpu_last_error(), "10 classes"),
          "test label 12: %s", rpu_last_error());
    /* the same labels against a network's 10 outputs */
    CHECK_STATUS(rpu_dataset_check_labels(&te, 10), RPU_ERR_FORMAT);
    CHECK(strstr(rpu_last_error(), lbad) && strstr(rpu_last_error(), "label 12 of sample 5") &&
              strstr(rpu_last_error(), "not below 10"),
          "check_labels: %s", rpu_last_error());
    CHECK_OK(rpu_dataset_check_labels(&te, 13));
    rpu_dataset_free(&te);
    /* a test split without class 9: evaluated over the training split's 10 classes */
    CHECK_OK(rpu_dataset_load_idx(i8, lnine, &te));
    CHECK(te.n_classes == 9, "labels 0..8: %d classes inferred", te.n_classes);
    CHECK_OK(rpu_dataset_check_split(&tr, &te));
    CHECK(te.n_classes == 10, "after the split check: %d classes, want 10", te.n_classes);
    rpu_dataset_free(&te);

    /* channels: two synthetic sets, named by their seed; an empty hand-made test set */
    rpu_dataset a, b;
    CHECK_OK(rpu_dataset_synthetic(10, 1, 8, 8, 4, 5, &a));
    CHECK_OK(rpu_dataset_synthetic(10, 3, 8, 8, 4, 6, &b));
    CHECK(a.images_name && !strcmp(a.images_name, "synthetic set (seed 5)"), "synthetic name %s",
          a.images_name ? a.images_name : "(null)");
    CHECK_STATUS(rpu_dataset_check_split(&a, &b), RPU_ERR_FORMAT);
    CHECK(strstr(rpu_last_error(), "synthetic set (seed 6) are 3 x 8 x 8") &&
              strstr(rpu_last_error(), "synthetic set (seed 5) are 1 x 8 x 8"),
          "channels 3 vs 1: %s", rpu_last_error());
    rpu_dataset_free(&b);
    const uint8_t none[1] = {0}, some[4] = {0, 3, 1, 4};
    b = hand_set(0, 1, 8, 8, 4, none);
    CHECK_STATUS(rpu_dataset_check_split(&a, &b), RPU_ERR_FORMAT);
    CHECK(strstr(rpu_last_error(), "images is empty"), "empty test set: %s", rpu_last_error());
    free(b.x), free(b.y);
    b = hand_set(4, 1, 8, 8, 5, some); /* labels without a source name */
    CHECK_STATUS(rpu_dataset_check_labels(&b, 4), RPU_ERR_FORMAT);
    CHECK(strstr(rpu_last_error(), "labels: label 4 of sample 3 is not below 4"),
          "unnamed labels: %s", rpu_last_error());
    CHECK_STATUS(rpu_dataset_check_labels(&b, 0), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_check_labels(NULL, 4), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_check_split(NULL, &b), RPU_ERR_ARG);
    free(b.x), free(b.y);
    rpu_dataset_free(&a);
    rpu_dataset_free(&tr);
}

/* ---- data order and batches (issue 13, test gap "batch assembly") ----------------------- */

/* The order as data.h documents it, written from that text. */
static void doc_order(int n, uint64_t seed, int epoch, int *o) {
    rpu_rng r;
    rpu_rng_init(&r, seed, rpu_stream_id(0xFFFFFF, (uint32_t)epoch, RPU_PURPOSE_DATA));
    for (int i = 0; i < n; ++i)
        o[i] = i;
    for (int i = n - 1; i > 0; --i) {
        int j = (int)(rpu_rng_uniform(&r) * (float)(i + 1));
        j = j > i ? i : j;
        const int t = o[i];
        o[i] = o[j];
        o[j] = t;
    }
}

static bool is_permutation(const int *o, int n) {
    char *seen = calloc((size_t)n, 1);
    bool ok = seen != NULL;
    for (int i = 0; ok && i < n; ++i) {
        ok = o[i] >= 0 && o[i] < n && !seen[o[i]];
        if (ok) seen[o[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_order(void) {
    enum { N = 1437 };
    static int o[N], w[N], o2[N];
    CHECK_OK(rpu_data_order(N, 9, 0, o));
    doc_order(N, 9, 0, w);
    CHECK(is_permutation(o, N), "rpu_data_order: not a permutation");
    CHECK(!memcmp(o, w, sizeof o), "rpu_data_order differs from its documented definition");
    int fixed = 0;
    for (int i = 0; i < N; ++i)
        fixed += o[i] == i;
    CHECK(fixed < 10, "order: %d of %d samples stay in place", fixed, N);
    CHECK_OK(rpu_data_order(N, 9, 1, o2));
    CHECK(is_permutation(o2, N) && memcmp(o, o2, sizeof o) != 0, "epoch 1 order == epoch 0's");
    CHECK_OK(rpu_data_order(N, 10, 0, o2));
    CHECK(memcmp(o, o2, sizeof o) != 0, "seed 10 order == seed 9's");
    CHECK_OK(rpu_data_order(N, 9, 0, o2));
    CHECK(!memcmp(o, o2, sizeof o), "the same arguments give another order");
    /* the same on every rank */
    uint64_t h = fnv1a(o, sizeof o, 1469598103934665603ull);
    unsigned long long hl = h, hmin, hmax;
    MPI_Allreduce(&hl, &hmin, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&hl, &hmax, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    CHECK(hmin == hmax, "rpu_data_order differs between ranks");
    /* a fair shuffle: over 6000 epochs every sample of 6 is first 1000 times on average
     * (binomial, sd 28.9): each count within 1000 +- 150 (5.2 sd) */
    int first[6] = {0};
    for (int ep = 0; ep < 6000; ++ep) {
        int s6[6];
        CHECK_OK(rpu_data_order(6, 4, ep, s6));
        first[s6[0]]++;
    }
    for (int k = 0; k < 6; ++k)
        CHECK(first[k] > 850 && first[k] < 1150, "sample %d first in %d of 6000 epochs", k,
              first[k]);
    CHECK_OK(rpu_data_order(1, 3, 0, o2));
    CHECK(o2[0] == 0, "n = 1: order[0] = %d", o2[0]);
    CHECK_STATUS(rpu_data_order(0, 3, 0, o2), RPU_ERR_ARG);
    CHECK_STATUS(rpu_data_order(5, 3, -1, o2), RPU_ERR_ARG);
    CHECK_STATUS(rpu_data_order(5, 3, 0, NULL), RPU_ERR_ARG);
}

static void test_batches(void) {
    /* 11 samples of 3 values: sample k is (10k, 10k + 1, 10k + 2), label (7k) % 5 */
    enum { N = 11, S = 3, B = 4 };
    uint8_t lab[N];
    for (int k = 0; k < N; ++k)
        lab[k] = (uint8_t)(k * 7 % 5);
    rpu_dataset ds = hand_set(N, 1, 1, S, 5, lab);
    for (int k = 0; k < N * S; ++k)
        ds.x[k] = (float)(k / S * 10 + k % S);
    CHECK(rpu_data_batches(N, B) == 3 && rpu_data_batches(12, 4) == 3 &&
              rpu_data_batches(1, 4) == 1 && rpu_data_batches(0, 4) == 0 &&
              rpu_data_batches(5, 0) == 0,
          "rpu_data_batches");
    const int rev[N] = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    float x[B * S];
    uint8_t y[B];
    for (int pass = 0; pass < 2; ++pass) { /* 0: order rev, 1: stored order */
        const int *order = pass ? NULL : rev;
        int seen = 0;
        for (int b = 0; b < 3; ++b) {
            int c = -1;
            memset(x, 0xA5, sizeof x);
            memset(y, 0xA5, sizeof y);
            CHECK_OK(rpu_dataset_batch(&ds, order, B, b, x, y, &c));
            CHECK(c == (b < 2 ? 4 : 3), "pass %d batch %d: %d samples", pass, b, c);
            for (int i = 0; i < c && i < B; ++i, ++seen) {
                const int k = pass ? seen : N - 1 - seen;
                CHECK(x[i * S] == 10.0f * k && x[i * S + 1] == 10.0f * k + 1 &&
                          x[i * S + 2] == 10.0f * k + 2 && y[i] == k * 7 % 5,
                      "pass %d batch %d item %d: (%g %g %g | %d), want sample %d", pass, b, i,
                      x[i * S], x[i * S + 1], x[i * S + 2], y[i], k);
            }
        }
        CHECK(seen == N, "pass %d: %d samples in all", pass, seen);
    }
    int c = 7;
    CHECK_OK(rpu_dataset_batch(&ds, rev, B, 2, x, NULL, &c)); /* images only */
    CHECK(c == 3 && x[0] == 20.0f, "images only: %d samples, first %g", c, x[0]);
    CHECK_STATUS(rpu_dataset_batch(&ds, rev, B, 3, x, y, &c), RPU_ERR_ARG);
    CHECK(c == 0, "a failed batch has %d samples", c);
    CHECK_STATUS(rpu_dataset_batch(&ds, rev, B, -1, x, y, &c), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_batch(&ds, rev, 0, 0, x, y, &c), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_batch(&ds, rev, B, 0, NULL, y, &c), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dataset_batch(NULL, rev, B, 0, x, y, &c), RPU_ERR_ARG);
    const int bad[N] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 10};
    CHECK_STATUS(rpu_dataset_batch(&ds, bad, B, 2, x, y, &c), RPU_ERR_ARG);
    CHECK(strstr(rpu_last_error(), "order[9] = 11"), "bad order entry: %s", rpu_last_error());
    free(ds.x), free(ds.y);
}

/* ---- through rpu_train / rpu_evaluate (collective on MPI_COMM_WORLD) ---------------- */

static char shared_dir[2200]; /* one directory for all ranks of this run */

/* Writes <dir>/<split>-{images-idx3,labels-idx1}-ubyte (rank 0; the caller synchronises). */
static void write_split(const char *dir, const char *split, int n, int h, int w,
                        const unsigned char *pix, const unsigned char *lab) {
    if (tl_rank() != 0) return;
    char p[2600];
    CHECK(make_dir(dir), "mkdir %s", dir);
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", dir, split);
    write_idx(p, 0, 0x803, (const uint32_t[]){(uint32_t)n, (uint32_t)h, (uint32_t)w}, 3, pix,
              (size_t)n * h * w);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", dir, split);
    write_idx(p, 0, 0x801, (const uint32_t[]){(uint32_t)n}, 1, lab, (size_t)n);
}

/* An experiment on the IDX files in data_dir: flatten + linear(out), floating point. */
static rpu_experiment *idx_experiment(const char *data_dir, int out, int epochs, int batch,
                                      const char *checkpoint) {
    char text[8192];
    snprintf(text, sizeof text,
             "[run]\nseed = 3\nepochs = %d\nbatch_size = %d\nlr = 0.05\n"
             "output_dir = %s/out-%d\ncheckpoint = %s\n"
             "[rpu]\nkind = floating_point\n"
             "[data]\ndataset = idx\npath = %s\n"
             "[layer.flat]\ntype = flatten\n"
             "[layer.fc]\ntype = linear\nout = %d\n",
             epochs, batch, shared_dir, out, checkpoint ? checkpoint : "", data_dir, out);
    rpu_experiment *e = NULL;
    rpu_status s = rpu_experiment_parse(text, "data-test.ini", NULL, 0, &e);
    CHECK(s == RPU_OK, "experiment on %s: %s", data_dir, rpu_last_error());
    return s == RPU_OK ? e : NULL;
}

typedef struct {
    int epochs, batches; /* on_epoch and on_batch calls */
} call_count;

static void count_epoch(void *ctx, const rpu_epoch_metrics *m) {
    (void)m;
    ((call_count *)ctx)->epochs++;
}

static void count_batch(void *ctx, const rpu_batch_view *b) {
    (void)b;
    ((call_count *)ctx)->batches++;
}

/* Status s of `call` is want and its message (the last error) holds every word. */
static void expect_words(const char *label, const char *call, rpu_status s, rpu_status want,
                         const char *const *words) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", rpu_last_error());
    CHECK(s == want, "%s: %s -> %s, want %s (%s)", label, call, rpu_status_name(s),
          rpu_status_name(want), msg);
    for (int k = 0; words[k]; ++k)
        CHECK(strstr(msg, words[k]) != NULL, "%s: %s message lacks '%s': %s", label, call, words[k],
              msg);
}

/* rpu_train and rpu_evaluate (with checkpoint good_ck) on data_dir fail with want before
 * any batch, their message containing every string of words (NULL-terminated). */
static void expect_rejected(const char *label, const char *data_dir, int out, const char *good_ck,
                            rpu_status want, const char *const *words) {
    rpu_experiment *e = idx_experiment(data_dir, out, 1, 8, NULL);
    if (!e) return;
    call_count n = {0, 0};
    rpu_train_hooks h = {.on_epoch = count_epoch, .on_batch = count_batch, .ctx = &n};
    rpu_clear_error();
    expect_words(label, "rpu_train", rpu_train(MPI_COMM_WORLD, e, NULL, &h), want, words);
    CHECK(n.epochs == 0 && n.batches == 0, "%s: %d epochs and %d batches ran", label, n.epochs,
          n.batches);
    double loss = -1, acc = -1;
    int *conf = NULL, k_out = 0;
    rpu_clear_error();
    const rpu_status s = rpu_evaluate(MPI_COMM_WORLD, e, good_ck, &loss, &acc, &conf, &k_out);
    expect_words(label, "rpu_evaluate", s, want, words);
    if (s == RPU_OK) free(conf);
    rpu_experiment_free(&e);
}

/* Defect 3 end to end: test images of another shape or with labels the network cannot
 * give stop rpu_train and rpu_evaluate before any batch, naming the files. */
static void test_train_rejects(void) {
    enum { NTR = 40, NTE = 12, K = 10 };
    static unsigned char pix[NTR * 256];
    unsigned char ltr[NTR], lte[NTE];
    for (int k = 0; k < NTR * 256; ++k)
        pix[k] = (unsigned char)((k * 131) >> 3);
    for (int i = 0; i < NTR; ++i)
        ltr[i] = (unsigned char)(i % K);
    for (int i = 0; i < NTE; ++i)
        lte[i] = (unsigned char)(i % K);
    char good[2400], d4[2400], d16[2400], dlab[2400], dnine[2400], ck[2400];
    snprintf(good, sizeof good, "%s/good", shared_dir);
    snprintf(d4, sizeof d4, "%s/test4x4", shared_dir);
    snprintf(d16, sizeof d16, "%s/test16x16", shared_dir);
    snprintf(dlab, sizeof dlab, "%s/label12", shared_dir);
    snprintf(dnine, sizeof dnine, "%s/no-class-9", shared_dir);
    snprintf(ck, sizeof ck, "%s/good.h5", shared_dir);
    const char *dirs[5] = {good, d4, d16, dlab, dnine};
    for (int d = 0; d < 5; ++d)
        write_split(dirs[d], "train", NTR, 8, 8, pix, ltr);
    write_split(good, "t10k", NTE, 8, 8, pix, lte);
    write_split(d4, "t10k", NTE, 4, 4, pix, lte);
    write_split(d16, "t10k", NTE, 16, 16, pix, lte);
    lte[5] = 12;
    write_split(dlab, "t10k", NTE, 8, 8, pix, lte);
    for (int i = 0; i < NTE; ++i)
        lte[i] = (unsigned char)(i % (K - 1));
    write_split(dnine, "t10k", NTE, 8, 8, pix, lte);
    MPI_Barrier(MPI_COMM_WORLD);

    /* a checkpoint of the 8x8 network to evaluate with */
    rpu_experiment *e = idx_experiment(good, K, 1, 8, ck);
    if (!e) return;
    CHECK_OK(rpu_train(MPI_COMM_WORLD, e, NULL, NULL));
    rpu_experiment_free(&e);

    char tr_img[2600], te_img[2600], te_lab[2600], tr_lab[2600];
    snprintf(tr_img, sizeof tr_img, "%s/train-images-idx3-ubyte", d4);
    snprintf(te_img, sizeof te_img, "%s/t10k-images-idx3-ubyte", d4);
    expect_rejected("4x4 test images", d4, K, ck, RPU_ERR_FORMAT,
                    (const char *const[]){tr_img, te_img, "1 x 4 x 4", "1 x 8 x 8", NULL});
    snprintf(tr_img, sizeof tr_img, "%s/train-images-idx3-ubyte", d16);
    snprintf(te_img, sizeof te_img, "%s/t10k-images-idx3-ubyte", d16);
    expect_rejected("16x16 test images", d16, K, ck, RPU_ERR_FORMAT,
                    (const char *const[]){tr_img, te_img, "1 x 16 x 16", "1 x 8 x 8", NULL});
    snprintf(te_lab, sizeof te_lab, "%s/t10k-labels-idx1-ubyte", dlab);
    expect_rejected("test label 12", dlab, K, ck, RPU_ERR_FORMAT,
                    (const char *const[]){te_lab, "label 12 of sample 5", NULL});
    /* labels 0..9 (both splits: sample 8 has label 8) and a network of 8 outputs: the
     * first label it cannot give (training labels in rpu_train, test labels in
     * rpu_evaluate) */
    snprintf(tr_lab, sizeof tr_lab, "%s/", good);
    expect_rejected("8 outputs for labels 0..9", good, 8, ck, RPU_ERR_CONFIG,
                    (const char *const[]){tr_lab, "-labels-idx1-ubyte: label 8 of sample 8",
                                          "data-test.ini:15: [layer.fc]", NULL});

    /* only rank 1 sees the 4x4 test split: every rank returns its error (no rank goes on
     * into the collective set-up alone), the data of the others is freed (LSan) */
    if (tl_size() > 1) {
        e = idx_experiment(tl_rank() == 1 ? d4 : good, K, 1, 8, NULL);
        if (e) {
            rpu_clear_error();
            expect_words("4x4 on rank 1 only", "rpu_train",
                         rpu_train(MPI_COMM_WORLD, e, NULL, NULL), RPU_ERR_FORMAT,
                         (const char *const[]){"1 x 4 x 4", "(on rank 1)", NULL});
            rpu_experiment_free(&e);
        }
    }

    /* a test split without class 9 is evaluated over the training set's 10 classes */
    e = idx_experiment(dnine, K, 1, 8, NULL);
    if (e) {
        double loss = -1, acc = -1;
        int *conf = NULL, k_out = 0;
        CHECK_OK(rpu_evaluate(MPI_COMM_WORLD, e, ck, &loss, &acc, &conf, &k_out));
        CHECK(k_out == K && conf && acc >= 0 && acc <= 1, "no class 9: %d classes, acc %g", k_out,
              acc);
        free(conf);
        rpu_experiment_free(&e);
    }
}

/* Batch assembly end to end: every batch that rpu_train feeds its network (training and
 * the test-set evaluation after each epoch) is observed through on_batch and checked
 * against the data written to the files: each (image, label) pair is one sample's pair
 * (the image identifies its sample), training batches follow the documented order
 * (doc_order) of each epoch, evaluation batches the stored order, every batch but the
 * last is full, the last is partial, and every sample is seen once per pass. */
enum { BT_NTR = 37, BT_NTE = 19, BT_B = 8, BT_H = 4, BT_W = 5, BT_S = BT_H * BT_W, BT_K = 5 };
enum { BT_EPOCHS = 2, BT_SEED = 3 };

typedef struct {
    const unsigned char *pix_tr, *lab_tr, *pix_te, *lab_te;
    int order[BT_EPOCHS][BT_NTR];
    int pos_tr[BT_EPOCHS + 1], pos_te[BT_EPOCHS + 1]; /* samples seen per pass (1-based) */
    int calls, bad;
} batch_log;

static void check_batch(void *ctx, const rpu_batch_view *v) {
    batch_log *L = ctx;
    L->calls++;
    const int n = v->train ? BT_NTR : BT_NTE, nbat = (n + BT_B - 1) / BT_B;
    if (!CHECK(v->epoch >= 1 && v->epoch <= BT_EPOCHS && v->batches == nbat && v->batch >= 1 &&
                   v->batch <= nbat,
               "on_batch: epoch %d batch %d/%d (%s)", v->epoch, v->batch, v->batches,
               v->train ? "train" : "eval")) {
        L->bad++;
        return;
    }
    int *pos = v->train ? &L->pos_tr[v->epoch] : &L->pos_te[v->epoch];
    const int want_n = v->batch < nbat ? BT_B : n - (nbat - 1) * BT_B;
    if (!CHECK(v->n == want_n && *pos == (v->batch - 1) * BT_B,
               "%s epoch %d batch %d: %d samples after %d, want %d after %d",
               v->train ? "train" : "eval", v->epoch, v->batch, v->n, *pos, want_n,
               (v->batch - 1) * BT_B)) {
        L->bad++;
        return;
    }
    const unsigned char *pix = v->train ? L->pix_tr : L->pix_te;
    const unsigned char *lab = v->train ? L->lab_tr : L->lab_te;
    for (int i = 0; i < v->n; ++i, ++*pos) {
        const float *x = v->x + (size_t)i * BT_S;
        const int k = (int)lrintf(x[0] * 255.0f) - 1; /* pixel 0 of sample k is k + 1 */
        const int want_k = v->train ? L->order[v->epoch - 1][*pos] : *pos;
        int same = k >= 0 && k < n;
        for (int j = 0; same && j < BT_S; ++j)
            same = x[j] == (float)pix[(size_t)k * BT_S + j] / 255.0f;
        if (!CHECK(same && k == want_k && v->y[i] == lab[k],
                   "%s epoch %d batch %d item %d: image of sample %d (%s), label %d; want "
                   "sample %d, label %d",
                   v->train ? "train" : "eval", v->epoch, v->batch, i, k,
                   same ? "intact" : "not a sample", v->y[i], want_k,
                   want_k >= 0 && want_k < n ? lab[want_k] : -1))
            L->bad++;
    }
}

static void test_train_batches(void) {
    static unsigned char pix_tr[BT_NTR * BT_S], pix_te[BT_NTE * BT_S];
    unsigned char lab_tr[BT_NTR], lab_te[BT_NTE];
    rpu_rng r;
    rpu_rng_init(&r, 77, rpu_stream_id(2, 0, RPU_PURPOSE_TEST));
    for (int k = 0; k < BT_NTR * BT_S; ++k)
        pix_tr[k] =
            k % BT_S ? (unsigned char)(rpu_rng_u32(&r) & 0xFF) : (unsigned char)(k / BT_S + 1);
    for (int k = 0; k < BT_NTE * BT_S; ++k)
        pix_te[k] =
            k % BT_S ? (unsigned char)(rpu_rng_u32(&r) & 0xFF) : (unsigned char)(k / BT_S + 1);
    /* labels: every class present, neighbours in the data order differ often */
    for (int i = 0; i < BT_NTR; ++i)
        lab_tr[i] = (unsigned char)(i < BT_K ? (uint32_t)i : rpu_rng_u32(&r) % BT_K);
    for (int i = 0; i < BT_NTE; ++i)
        lab_te[i] = (unsigned char)(rpu_rng_u32(&r) % BT_K);
    char dir[2400];
    snprintf(dir, sizeof dir, "%s/batches", shared_dir);
    write_split(dir, "train", BT_NTR, BT_H, BT_W, pix_tr, lab_tr);
    write_split(dir, "t10k", BT_NTE, BT_H, BT_W, pix_te, lab_te);
    MPI_Barrier(MPI_COMM_WORLD);

    static batch_log L;
    memset(&L, 0, sizeof L);
    L.pix_tr = pix_tr, L.lab_tr = lab_tr, L.pix_te = pix_te, L.lab_te = lab_te;
    for (int ep = 0; ep < BT_EPOCHS; ++ep)
        doc_order(BT_NTR, BT_SEED, ep, L.order[ep]);
    rpu_experiment *e = idx_experiment(dir, BT_K, BT_EPOCHS, BT_B, NULL);
    if (!e) return;
    rpu_train_hooks h = {.on_batch = check_batch, .ctx = &L};
    CHECK_OK(rpu_train(MPI_COMM_WORLD, e, NULL, &h));
    rpu_experiment_free(&e);
    const int per_epoch = (BT_NTR + BT_B - 1) / BT_B + (BT_NTE + BT_B - 1) / BT_B;
    CHECK(L.calls == BT_EPOCHS * per_epoch, "on_batch called %d times, want %d", L.calls,
          BT_EPOCHS * per_epoch);
    for (int ep = 1; ep <= BT_EPOCHS; ++ep)
        CHECK(L.pos_tr[ep] == BT_NTR && L.pos_te[ep] == BT_NTE,
              "epoch %d: %d training and %d test samples seen, want %d and %d", ep, L.pos_tr[ep],
              L.pos_te[ep], BT_NTR, BT_NTE);
    CHECK(L.bad == 0, "%d batch items out of order or mispaired", L.bad);
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

    snprintf(shared_dir, sizeof shared_dir, "%s/np%d", base, tl_size());
    if (tl_rank() == 0) CHECK(make_dir(shared_dir), "mkdir %s: %s", shared_dir, strerror(errno));
    MPI_Barrier(MPI_COMM_WORLD);

    test_digits(argv[1]);
    test_roundtrip();
    test_malformed();
    test_synthetic();
    test_split_checks();
    test_order();
    test_batches();
    test_train_rejects();
    test_train_batches();
    return tl_finish();
}
