/* Fuzz target: the IDX reader (rpu_dataset_load_idx, rpu_dataset_load_idx_classes), plain
 * and gzip-compressed (single and concatenated members), and what runs on a loaded set
 * before training: the label and split checks and the batches of rpu_dataset_batch.
 *
 * Input layout: bytes 0-1 are a little-endian length L; the next min(L, rest) bytes are
 * the image file, the remaining bytes the label file. Both are written to a private
 * temporary directory (the reader takes paths). L >= 0xC000 means: L - 0xC000 bytes of
 * image file, and both files gzip-compressed by this harness before they are written (the
 * mutations then explore IDX structure through the gzip path, which mutated compressed
 * bytes rarely reach). Lengths 0x8000..0xBFFF are plain, as below 0x8000. On success the loaded set
 * must satisfy the contract of data.h (positive shape, pixels in [0, 1], labels < n_classes, one
 * label per image, the two paths as source names); the label check must pass at n_classes and fail,
 * naming the label file, one class below; the inferred-class set must pass the split check against
 * the 10-class load; every batch (batch size 1 + size % 7, the epoch-0 order) must hold the samples
 * the order names. On failure the set must be all zero and the message must name a file. Any
 * violation aborts, which libFuzzer reports as a crash. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include "rpusim/data.h"

#include <stdint.h>
#include <stdio.h>
#include <zlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char images[96];
static char labels[96];

static void cleanup(void) {
    unlink(images);
    unlink(labels);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/rpusim-fuzz-idx-XXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
    if (!mkdtemp(dir)) abort();
    snprintf(images, sizeof images, "%s/images", dir);
    snprintf(labels, sizeof labels, "%s/labels", dir);
    atexit(cleanup);
    return 0;
}

static void write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(p, 1, n, f) != n) abort();
    if (fclose(f) != 0) abort();
}

/* Writes p as one gzip member (deflate with the gzip wrapper). */
static void write_gz(const char *path, const uint8_t *p, size_t n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    const size_t cap = deflateBound(&z, (uLong)n) + 32;
    uint8_t *out = malloc(cap);
    if (!out) abort();
    z.next_in = (Bytef *)(uintptr_t)p;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    write_file(path, out, cap - z.avail_out);
    deflateEnd(&z);
    free(out);
}

static void check_loaded(const rpu_dataset *ds, int n_classes) {
    if (ds->n < 1 || ds->channels != 1 || ds->height < 1 || ds->width < 1) abort();
    if (!ds->images_name || strcmp(ds->images_name, images) != 0) abort();
    if (!ds->labels_name || strcmp(ds->labels_name, labels) != 0) abort();
    if (ds->n_classes < 1 || ds->n_classes > 256) abort();
    if (n_classes > 0 && ds->n_classes != n_classes) abort();
    if (!ds->x || !ds->y) abort();
    const size_t m = rpu_dataset_sample_size(ds) * (size_t)ds->n;
    for (size_t i = 0; i < m; i++)
        if (!(ds->x[i] >= 0.0f && ds->x[i] <= 1.0f)) abort();
    for (int i = 0; i < ds->n; i++)
        if (ds->y[i] >= ds->n_classes) abort();
    if (rpu_dataset_check_labels(ds, ds->n_classes) != RPU_OK) abort();
}

/* Every batch of ds in the epoch-0 order holds the samples the order names. */
static void check_batches(const rpu_dataset *ds, int batch, uint64_t seed) {
    const size_t per = rpu_dataset_sample_size(ds);
    int *order = malloc(sizeof(int) * (size_t)ds->n);
    float *x = malloc(sizeof(float) * per * (size_t)batch);
    uint8_t *y = malloc((size_t)batch);
    if (!order || !x || !y) abort();
    if (rpu_data_order(ds->n, seed, 0, order) != RPU_OK) abort();
    const int nb = rpu_data_batches(ds->n, batch);
    int seen = 0;
    for (int b = 0; b < nb; b++) {
        int c = -1;
        if (rpu_dataset_batch(ds, order, batch, b, x, y, &c) != RPU_OK) abort();
        if (c != (b + 1 < nb ? batch : ds->n - b * batch)) abort();
        for (int i = 0; i < c; i++, seen++) {
            const int k = order[seen];
            if (y[i] != ds->y[k]) abort();
            if (memcmp(x + (size_t)i * per, ds->x + (size_t)k * per, sizeof(float) * per)) abort();
        }
    }
    if (seen != ds->n) abort();
    int c = 0;
    if (rpu_dataset_batch(ds, order, batch, nb, x, y, &c) != RPU_ERR_ARG) abort();
    free(order), free(x), free(y);
}

static void check_failed(rpu_status s, const rpu_dataset *ds) {
    if (s == RPU_OK) abort();
    const rpu_dataset zero = {0};
    if (memcmp(ds, &zero, sizeof zero) != 0) abort();
    const char *msg = rpu_last_error();
    if (!strstr(msg, images) && !strstr(msg, labels)) abort(); /* names the file */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t len = (size_t)data[0] | (size_t)data[1] << 8;
    const int gz = len >= 0xC000;
    if (gz) len -= 0xC000;
    data += 2;
    size -= 2;
    if (len > size) len = size;
    (gz ? write_gz : write_file)(images, data, len);
    (gz ? write_gz : write_file)(labels, data + len, size - len);

    rpu_dataset ds, ten;
    rpu_status s = rpu_dataset_load_idx(images, labels, &ds);
    if (s == RPU_OK) {
        check_loaded(&ds, 0);
        /* the inferred count is the largest label + 1: one less must fail on that label */
        if (ds.n_classes > 1) {
            if (rpu_dataset_check_labels(&ds, ds.n_classes - 1) != RPU_ERR_FORMAT) abort();
            if (!strstr(rpu_last_error(), labels)) abort();
        }
        check_batches(&ds, 1 + (int)(size % 7), size);
    } else {
        check_failed(s, &ds);
    }

    rpu_status s10 = rpu_dataset_load_idx_classes(images, labels, 10, &ten);
    if (s10 == RPU_OK)
        check_loaded(&ten, 10);
    else
        check_failed(s10, &ten);
    /* the same files as both splits: they match exactly when every label is below 10 */
    if (s == RPU_OK && s10 == RPU_OK) {
        if (rpu_dataset_check_split(&ten, &ds) != RPU_OK || ds.n_classes != 10) abort();
    }
    if (s == RPU_OK && s10 != RPU_OK && ds.n_classes <= 10) abort();
    rpu_dataset_free(&ds);
    rpu_dataset_free(&ten);
    return 0;
}
