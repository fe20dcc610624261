/* Fuzz target: the IDX reader (rpu_dataset_load_idx, rpu_dataset_load_idx_classes), plain
 * and gzip-compressed.
 *
 * Input layout: bytes 0-1 are a little-endian length L; the next min(L, rest) bytes are
 * the image file, the remaining bytes the label file. Both are written to a private
 * temporary directory (the reader takes paths). On success the loaded set must satisfy
 * the contract of data.h (positive shape, pixels in [0, 1], labels < n_classes, one label
 * per image); on failure nothing may be allocated and a message must name a file. Any
 * violation aborts, which libFuzzer reports as a crash. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include "rpusim/data.h"

#include <stdint.h>
#include <stdio.h>
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

static void check_loaded(const rpu_dataset *ds, int n_classes) {
    if (ds->n < 1 || ds->channels != 1 || ds->height < 1 || ds->width < 1) abort();
    if (ds->n_classes < 1 || ds->n_classes > 256) abort();
    if (n_classes > 0 && ds->n_classes != n_classes) abort();
    if (!ds->x || !ds->y) abort();
    const size_t m = rpu_dataset_sample_size(ds) * (size_t)ds->n;
    for (size_t i = 0; i < m; i++)
        if (!(ds->x[i] >= 0.0f && ds->x[i] <= 1.0f)) abort();
    for (int i = 0; i < ds->n; i++)
        if (ds->y[i] >= ds->n_classes) abort();
}

static void check_failed(rpu_status s, const rpu_dataset *ds) {
    if (s == RPU_OK) abort();
    if (ds->x || ds->y || ds->n) abort();
    const char *msg = rpu_last_error();
    if (!strstr(msg, images) && !strstr(msg, labels)) abort(); /* names the file */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t len = (size_t)data[0] | (size_t)data[1] << 8;
    data += 2;
    size -= 2;
    if (len > size) len = size;
    write_file(images, data, len);
    write_file(labels, data + len, size - len);

    rpu_dataset ds;
    rpu_status s = rpu_dataset_load_idx(images, labels, &ds);
    if (s == RPU_OK)
        check_loaded(&ds, 0);
    else
        check_failed(s, &ds);
    rpu_dataset_free(&ds);

    s = rpu_dataset_load_idx_classes(images, labels, 10, &ds);
    if (s == RPU_OK)
        check_loaded(&ds, 10);
    else
        check_failed(s, &ds);
    rpu_dataset_free(&ds);
    return 0;
}
