#define _XOPEN_SOURCE 700 /* dirent, unlink, nftw */
#include "testlib.h"

#include "rpusim/rng.h"
#include "rpusim/tile.h"

#include <dirent.h>
#include <math.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Test-harness counters (test tree only; the library has no such state). */
static long tl_passed, tl_failed;
static int tl_rank_, tl_size_;

void tl_init(int *argc, char ***argv) {
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &tl_rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &tl_size_);
}

int tl_rank(void) {
    return tl_rank_;
}

int tl_size(void) {
    return tl_size_;
}

bool tl_check(bool ok, const char *file, int line, const char *fmt, ...) {
    if (ok) {
        tl_passed++;
        return true;
    }
    tl_failed++;
    if (tl_failed <= 25) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "[rank %d] FAIL %s:%d: ", tl_rank_, file, line);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    return false;
}

int tl_finish(void) {
    long local[2] = {tl_passed, tl_failed}, total[2];
    MPI_Allreduce(local, total, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (tl_rank_ == 0) printf("%ld passed, %ld failed\n", total[0], total[1]);
    MPI_Finalize();
    return total[1] == 0 ? 0 : 1;
}

void tl_fill_uniform(float *x, int n, float lo, float hi, uint64_t seed, uint64_t id) {
    rpu_rng r;
    rpu_rng_init(&r, seed, rpu_stream_id((uint32_t)id, 0, RPU_PURPOSE_TEST));
    for (int i = 0; i < n; ++i)
        x[i] = lo + (hi - lo) * rpu_rng_uniform(&r);
}

void tl_fill_normal(float *x, int n, float scale, uint64_t seed, uint64_t id) {
    rpu_rng r;
    rpu_rng_init(&r, seed, rpu_stream_id((uint32_t)id, 1, RPU_PURPOSE_TEST));
    rpu_rng_normal_fill(&r, x, (size_t)n);
    for (int i = 0; i < n; ++i)
        x[i] *= scale;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; ++i)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

uint64_t tl_hash_layer_state(uint64_t h, rpu_conv *l) {
    const rpu_tile_grid *g = rpu_conv_grid(l);
    for (int t = 0; t < g->n_tiles; ++t) {
        rpu_tile *tile = rpu_conv_tile_owned(l, t); /* each tile once over the ranks */
        if (!tile) continue;
        rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
        const int n = rpu_tile_state_items(tile, it, RPU_TILE_MAX_STATE_ITEMS);
        for (int k = 0; k < n; ++k)
            h = hash_bytes(h, it[k].data, rpu_state_item_bytes(&it[k]));
    }
    const rpu_conv_params *p = rpu_conv_get_params(l);
    if (p->bias == RPU_BIAS_DIGITAL) {
        float *b = (float *)malloc(sizeof(float) * (size_t)p->out_channels);
        if (b && rpu_conv_get_digital_bias(l, b) == RPU_OK)
            h = hash_bytes(h, b, sizeof(float) * (size_t)p->out_channels);
        free(b);
    }
    return h;
}

void tl_remove_dir(const char *d) {
    DIR *dir = opendir(d);
    if (!dir) return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            unlink(p);
        }
    closedir(dir);
    rmdir(d);
}

static int tl_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void tl_remove_tree(const char *path) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (tl_rank() == 0) nftw(path, tl_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    MPI_Barrier(MPI_COMM_WORLD);
}

rpu_tile *tl_tile(const rpu_config *c, int out, int in, uint64_t seed) {
    rpu_tile_params p;
    rpu_tile_params_default(&p, out, in);
    p.seed = seed;
    rpu_tile *t = NULL;
    const rpu_status s = rpu_tile_create(&p, c, &t);
    CHECK(s == RPU_OK, "rpu_tile_create: %s", rpu_last_error());
    return t;
}

float tl_weight_at(rpu_tile *t, int cell) {
    const size_t cells = (size_t)rpu_tile_out_size(t) * (size_t)rpu_tile_in_size(t);
    float *w = malloc(cells * sizeof(float));
    float v = NAN;
    if (w && rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED) == RPU_OK && (size_t)cell < cells)
        v = w[cell];
    CHECK(!isnan(v), "weight %d of the tile: %s", cell, rpu_last_error());
    free(w);
    return v;
}

float tl_array_at(rpu_tile *t, const char *name, int cell) {
    const float *a = rpu_tile_device_array_by_name(t, name);
    CHECK(a != NULL, "no array %s", name);
    return a ? a[cell] : NAN;
}

float tl_hidden_at(rpu_tile *t, int k, int cell) {
    char name[32];
    snprintf(name, sizeof name, "hidden_weights_%d", k);
    return tl_array_at(t, name, cell);
}

double tl_state_item(rpu_tile *t, const char *name, int i) {
    rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
    const int n = rpu_tile_state_items(t, it, RPU_TILE_MAX_STATE_ITEMS);
    for (int k = 0; k < n; ++k)
        if (strcmp(it[k].name, name) == 0) {
            if (it[k].type == RPU_STATE_U64) return (double)((const uint64_t *)it[k].data)[i];
            if (it[k].type == RPU_STATE_F32) return ((const float *)it[k].data)[i];
            return ((const double *)it[k].data)[i];
        }
    CHECK(false, "no state item %s", name);
    return NAN;
}
