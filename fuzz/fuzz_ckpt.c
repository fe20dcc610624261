/* Fuzz target: the checkpoint reader without MPI (rpu_ckpt_open, the layer and tile
 * descriptions, rpu_ckpt_file_read, rpu_ckpt_verify) — the code behind `rpusim inspect`
 * and `inspect --verify`, whose checks rpu_ckpt_load shares.
 *
 * The input is a checkpoint file: it is written to a private temporary directory (HDF5
 * opens paths). Contract checked (a violation aborts, which libFuzzer reports as a crash):
 * a failure returns RPU_ERR_IO, RPU_ERR_FORMAT or RPU_ERR_NOMEM with a message naming the
 * file and leaves *file NULL; an opened file describes consistent layers (type and ndim,
 * positive channels and groups, n_tiles = groups x n_in x n_out, positive split sizes, a
 * config text); every tile key and item listing, every item read (1 or 2 dimensions, the
 * count of values it says) and the verification either succeed or fail as above. Seed:
 * fuzz/corpus/fuzz_ckpt/tiny.h5 (mpi_tests/ckpt_tool tiny). */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include "rpusim/ckpt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TILES 32 /* tiles and items looked at per layer (bounds the time per input) */
#define MAX_ITEMS 24

static char dir[64];
static char path[96];

static void cleanup(void) {
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/rpusim-fuzz-ckpt-XXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
    if (!mkdtemp(dir)) abort();
    snprintf(path, sizeof path, "%s/ck.h5", dir);
    atexit(cleanup);
    /* as the rpusim command: HDF5 prints nothing (see rpu_ckpt_silence_hdf5) */
    rpu_ckpt_silence_hdf5();
    return 0;
}

/* A failed call: an expected status and a message naming the file. */
static void check_failed(rpu_status s) {
    if (s != RPU_ERR_IO && s != RPU_ERR_FORMAT && s != RPU_ERR_NOMEM) abort();
    if (!strstr(rpu_last_error(), path)) abort();
}

static void check_desc(const rpu_ckpt_layer_desc *d) {
    if (!d->name || !d->type || !d->bias || !d->rpu_config) abort();
    if (d->ndim < 0 || d->ndim > 3 || (d->ndim == 0) != !strcmp(d->type, "linear")) abort();
    if (d->in_channels < 1 || d->out_channels < 1 || d->groups < 1) abort();
    if (d->n_in < 1 || d->n_out < 1 || d->n_tiles != d->groups * d->n_in * d->n_out) abort();
    for (int i = 0; i < d->n_in; ++i)
        if (d->in_split_sizes[i] < 1) abort();
    for (int j = 0; j < d->n_out; ++j)
        if (d->out_split_sizes[j] < 1) abort();
}

static void read_item(rpu_ckpt_file *f, const char *layer, const char *key,
                      const rpu_ckpt_item_desc *it) {
    char p[256];
    snprintf(p, sizeof p, "layers/%s/tiles/%s/%s", layer, key, it->name);
    double *v = NULL;
    int nd = 0;
    int64_t dims[RPU_CKPT_MAX_DIMS];
    for (int d = 0; d < RPU_CKPT_MAX_DIMS; ++d)
        dims[d] = -1;
    const rpu_status s = rpu_ckpt_file_read(f, p, &v, &nd, dims);
    if (s != RPU_OK) {
        check_failed(s);
        if (v) abort();
        return;
    }
    if (nd < 1 || nd > RPU_CKPT_MAX_DIMS) abort();
    int64_t n = 1;
    for (int d = 0; d < RPU_CKPT_MAX_DIMS; ++d) {
        if (d < nd ? dims[d] < 0 : dims[d] != 0) abort(); /* unused entries are 0 */
        if (d < nd) n *= dims[d];
    }
    if (!v && n > 0) abort();
    volatile double sum = 0; /* every value is readable (ASan checks the extent) */
    for (int64_t i = 0; i < n; ++i)
        sum += v[i];
    (void)sum;
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *out = fopen(path, "wb");
    if (!out) abort();
    if (size && fwrite(data, 1, size, out) != size) abort();
    if (fclose(out) != 0) abort();

    rpu_ckpt_file *f = NULL;
    rpu_status s = rpu_ckpt_open(path, &f);
    if (s != RPU_OK) {
        check_failed(s);
        if (f) abort();
        return 0;
    }
    const rpu_ckpt_info *info = rpu_ckpt_file_info(f);
    if (!info || !info->config || info->schema_version != RPU_CKPT_SCHEMA_VERSION) abort();
    const int nl = rpu_ckpt_file_layer_count(f);
    if (nl < 0) abort();
    for (int li = 0; li < nl; ++li) {
        rpu_ckpt_layer_desc d;
        if (rpu_ckpt_file_layer(f, li, &d) != RPU_OK) abort();
        check_desc(&d);
        for (int t = 0; t < d.n_tiles && t < MAX_TILES; ++t) {
            char key[48];
            if (rpu_ckpt_tile_key(&d, t, key) != RPU_OK) abort();
            rpu_ckpt_item_desc items[MAX_ITEMS];
            int n = -1;
            s = rpu_ckpt_file_tile_items(f, li, t, items, MAX_ITEMS, &n);
            if (s != RPU_OK) {
                check_failed(s);
                continue;
            }
            if (n < 0) abort();
            for (int k = 0; k < n && k < MAX_ITEMS; ++k)
                read_item(f, d.name, key, &items[k]);
        }
    }
    int64_t objects = -1;
    s = rpu_ckpt_verify(f, &objects);
    if (s != RPU_OK)
        check_failed(s);
    else if (objects < 2)
        abort();
    rpu_ckpt_close(&f);
    if (f) abort();
    return 0;
}
