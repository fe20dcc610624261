/* Helper program of the checkpoint shell tests (ckpt_kill_test.sh, ckpt_tools_test.sh) and
 * of the checkpoint timings in README.md. Subcommands (run under mpiexec or alone):
 *
 *   write PATH STEP [--loop]   saves the tool model with weights w(step) (see weights_for)
 *                              and root step STEP; --loop saves STEP, STEP+1, ... until
 *                              killed. Each rank first writes its pid to PATH.pid<rank>.
 *   verify PATH MIN_STEP       loads PATH into a fresh tool model and checks that the step
 *                              is >= MIN_STEP and the weights and biases are exactly those of
 *                              a model given w(step); prints "verified step N".
 *   fixture DIR                writes DIR/a.h5 and DIR/b.h5 (the same state saved twice),
 *                              DIR/c.h5 (one stored tile weight changed) and
 *                              DIR/expected.txt: the statistics `rpusim inspect` must print,
 *                              computed here from the tiles' own state items.
 *   bench PATH SCALE REPEATS [TILE]
 *                              times save and load of a model with SCALE x the tool
 *                              model's channels, tiles of at most TILE x TILE (default
 *                              36 x 8); prints the best seconds of REPEATS and the MB.
 *
 * Exit status 0 on success, 1 on a failed check, 2 on bad usage. */
#define _POSIX_C_SOURCE 200809L
#include "rpusim/ckpt.h"
#include "rpusim/config.h"
#include "rpusim/layer.h"
#include "rpusim/tile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_rank, g_size;

typedef struct {
    rpu_conv *conv;
    rpu_linear *fc;
    rpu_ckpt_layer ckl[2];
} tool_model;

/* The tool model: conv2d 8s -> 12s (3x3, padding 1) and linear 40s -> 10s for scale s, kind
 * single (constant_step), tiles of at most tile_in x tile_out (36 x 8 unless given). */
static int model_create_tiles(tool_model *m, MPI_Comm comm, int scale, int tile_in, int tile_out) {
    memset(m, 0, sizeof *m);
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_SINGLE);
    char in[16], out[16];
    snprintf(in, sizeof in, "%d", tile_in);
    snprintf(out, sizeof out, "%d", tile_out);
    rpu_config_set(&cfg, "mapping.max_input_size", in);
    rpu_config_set(&cfg, "mapping.max_output_size", out);
    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, 8 * scale, 12 * scale, 3);
    p.padding[0] = p.padding[1] = 1;
    p.layer_id = 1;
    p.seed = 11;
    rpu_linear_params lp = {.in_features = 40 * scale,
                            .out_features = 10 * scale,
                            .bias = RPU_BIAS_DIGITAL,
                            .layer_id = 2,
                            .seed = 11,
                            .mac = RPU_MAC_BLAS};
    if (rpu_conv_create(comm, &p, &cfg, &m->conv) != RPU_OK ||
        rpu_linear_create(comm, &lp, &cfg, &m->fc) != RPU_OK) {
        fprintf(stderr, "ckpt_tool: create: %s\n", rpu_last_error());
        return 0;
    }
    m->ckl[0].name = "conv";
    m->ckl[0].layer = m->conv;
    m->ckl[1].name = "fc";
    m->ckl[1].layer = rpu_linear_as_conv(m->fc);
    return 1;
}

static int model_create(tool_model *m, MPI_Comm comm, int scale) {
    return model_create_tiles(m, comm, scale, 36, 8);
}

static void model_destroy(tool_model *m) {
    rpu_conv_destroy(&m->conv);
    rpu_linear_destroy(&m->fc);
}

/* Weights and biases of step s: smooth functions of the index and s. */
static void weights_for(rpu_conv *l, long step, float *w, float *b) {
    const int n = rpu_conv_weight_count(l), out = rpu_conv_get_params(l)->out_channels;
    for (int i = 0; i < n; ++i)
        w[i] = 0.5f * sinf(0.37f * (float)i + 0.11f * (float)step);
    for (int j = 0; j < out; ++j)
        b[j] = 0.01f * (float)step + 0.001f * (float)j;
}

static int model_set_step(tool_model *m, long step) {
    for (int k = 0; k < 2; ++k) {
        rpu_conv *l = m->ckl[k].layer;
        float *w = malloc(sizeof(float) * (size_t)rpu_conv_weight_count(l));
        float *b = malloc(sizeof(float) * (size_t)rpu_conv_get_params(l)->out_channels);
        weights_for(l, step, w, b);
        rpu_status s = rpu_conv_set_weights(l, w, b);
        free(w), free(b);
        if (s != RPU_OK) {
            fprintf(stderr, "ckpt_tool: set_weights: %s\n", rpu_last_error());
            return 0;
        }
    }
    return 1;
}

static int cmd_write(const char *path, long step, int loop) {
    char pidf[512];
    snprintf(pidf, sizeof pidf, "%s.pid%d", path, g_rank);
    FILE *f = fopen(pidf, "w");
    if (f) {
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
    }
    tool_model m;
    if (!model_create(&m, MPI_COMM_WORLD, 2)) return 1;
    int rc = 0;
    for (;; ++step) {
        if (!model_set_step(&m, step)) {
            rc = 1;
            break;
        }
        rpu_ckpt_meta meta = {.seed = 11, .step = step, .epoch = 0, .config = "tool = write\n"};
        if (rpu_ckpt_save(MPI_COMM_WORLD, path, &meta, m.ckl, 2, NULL, 0, NULL) != RPU_OK) {
            fprintf(stderr, "ckpt_tool: save: %s\n", rpu_last_error());
            rc = 1;
            break;
        }
        if (!loop) break;
    }
    model_destroy(&m);
    return rc;
}

static int cmd_verify(const char *path, long min_step) {
    tool_model m, ref;
    if (!model_create(&m, MPI_COMM_WORLD, 2) || !model_create(&ref, MPI_COMM_WORLD, 2)) return 1;
    rpu_ckpt_info info;
    int rc = 0;
    if (rpu_ckpt_load(MPI_COMM_WORLD, path, m.ckl, 2, NULL, 0, &info) != RPU_OK) {
        if (g_rank == 0) fprintf(stderr, "ckpt_tool: verify: %s\n", rpu_last_error());
        rc = 1;
    } else {
        if (info.step < min_step) {
            if (g_rank == 0)
                fprintf(stderr, "ckpt_tool: verify: step %lld < %ld\n", (long long)info.step,
                        min_step);
            rc = 1;
        }
        model_set_step(&ref, (long)info.step);
        for (int k = 0; k < 2 && !rc; ++k) {
            rpu_conv *a = m.ckl[k].layer, *b = ref.ckl[k].layer;
            const int n = rpu_conv_weight_count(a), o = rpu_conv_get_params(a)->out_channels;
            float *wa = malloc(sizeof(float) * (size_t)n), *wb = malloc(sizeof(float) * (size_t)n);
            float *ba = malloc(sizeof(float) * (size_t)o), *bb = malloc(sizeof(float) * (size_t)o);
            rpu_conv_get_weights(a, wa, ba, RPU_READ_EXACT);
            rpu_conv_get_weights(b, wb, bb, RPU_READ_EXACT);
            if (memcmp(wa, wb, sizeof(float) * (size_t)n) ||
                memcmp(ba, bb, sizeof(float) * (size_t)o)) {
                if (g_rank == 0)
                    fprintf(stderr, "ckpt_tool: verify: layer %s differs from step %lld\n",
                            m.ckl[k].name, (long long)info.step);
                rc = 1;
            }
            free(wa), free(wb), free(ba), free(bb);
        }
        if (!rc && g_rank == 0) printf("verified step %lld\n", (long long)info.step);
        rpu_ckpt_info_free(&info);
    }
    model_destroy(&m);
    model_destroy(&ref);
    return rc;
}

/* ------------------------------------------------------------------ fixture */

typedef struct {
    double n, sum, min, max;
    double *vals; /* for the second pass */
    size_t len, cap;
} acc;

static void acc_add(acc *a, const float *v, size_t n) {
    if (a->len + n > a->cap) {
        a->cap = 2 * (a->len + n);
        a->vals = realloc(a->vals, a->cap * sizeof(double));
    }
    for (size_t i = 0; i < n; ++i) {
        const double x = v[i];
        if (a->n == 0 || x < a->min) a->min = x;
        if (a->n == 0 || x > a->max) a->max = x;
        a->sum += x;
        a->n += 1;
        a->vals[a->len++] = x;
    }
}

static void acc_print(FILE *f, const acc *a) {
    const double mean = a->sum / a->n;
    double m2 = 0;
    for (size_t i = 0; i < a->len; ++i)
        m2 += (a->vals[i] - mean) * (a->vals[i] - mean);
    fprintf(f, "mean=%.9g std=%.9g min=%.9g max=%.9g", mean, sqrt(m2 / a->n), a->min, a->max);
}

/* The fixture's layer: linear 10 -> 6 on 2 x 2 tiles, constant_step with device-to-device
 * variation of the bounds, weights beyond the bounds so that some sit on them; one forward
 * pass (counters 1). */
static int fixture_layer(MPI_Comm comm, rpu_linear **l) {
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_SINGLE);
    rpu_config_set(&cfg, "mapping.max_input_size", "6");
    rpu_config_set(&cfg, "mapping.max_output_size", "4");
    rpu_config_set(&cfg, "device.w_max_dtod", "0.3");
    rpu_config_set(&cfg, "device.w_min_dtod", "0.3");
    rpu_linear_params lp = {.in_features = 10,
                            .out_features = 6,
                            .bias = RPU_BIAS_DIGITAL,
                            .layer_id = 5,
                            .seed = 3,
                            .mac = RPU_MAC_BLAS};
    float w[60], b[6];
    for (int i = 0; i < 60; ++i)
        w[i] = 1.2f * sinf(0.7f * (float)i);
    for (int j = 0; j < 6; ++j)
        b[j] = 0.1f * (float)j;
    float x[20], y[12];
    for (int i = 0; i < 20; ++i)
        x[i] = 0.05f * (float)(i - 10);
    if (rpu_linear_from_digital(comm, &lp, &cfg, w, b, l) != RPU_OK ||
        rpu_linear_forward(*l, x, 2, y) != RPU_OK) {
        fprintf(stderr, "ckpt_tool: fixture: %s\n", rpu_last_error());
        return 0;
    }
    return 1;
}

static float *item(rpu_tile *t, const char *name, size_t *n) {
    rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
    const int k = rpu_tile_state_items(t, it, RPU_TILE_MAX_STATE_ITEMS);
    for (int i = 0; i < k; ++i)
        if (!strcmp(it[i].name, name)) {
            *n = it[i].count;
            return it[i].data;
        }
    return NULL;
}

static int cmd_fixture(const char *dir) {
    char pa[512], pb[512], pc[512], pe[512];
    snprintf(pa, sizeof pa, "%s/a.h5", dir);
    snprintf(pb, sizeof pb, "%s/b.h5", dir);
    snprintf(pc, sizeof pc, "%s/c.h5", dir);
    snprintf(pe, sizeof pe, "%s/expected.txt", dir);
    rpu_linear *l = NULL;
    if (!fixture_layer(MPI_COMM_WORLD, &l)) return 1;
    rpu_ckpt_layer ckl = {"lin", rpu_linear_as_conv(l)};
    rpu_ckpt_meta meta = {
        .seed = 3, .step = 4242, .epoch = 7, .config = "[train]\nepochs = 7\nbatch = 16\n"};
    int rc = 0;
    if (rpu_ckpt_save(MPI_COMM_WORLD, pa, &meta, &ckl, 1, NULL, 0, NULL) != RPU_OK ||
        rpu_ckpt_save(MPI_COMM_WORLD, pb, &meta, &ckl, 1, NULL, 0, NULL) != RPU_OK) {
        fprintf(stderr, "ckpt_tool: fixture save: %s\n", rpu_last_error());
        rc = 1;
    }
    /* c.h5: the stored weight [1][2] of tile 0_0 changed (by its owner) */
    rpu_tile *t0 = rpu_conv_tile(ckl.layer, 0);
    if (t0) {
        size_t n;
        float *w = item(t0, "weights", &n);
        w[1 * rpu_tile_in_size(t0) + 2] += 0.25f;
    }
    if (!rc && rpu_ckpt_save(MPI_COMM_WORLD, pc, &meta, &ckl, 1, NULL, 0, NULL) != RPU_OK) {
        fprintf(stderr, "ckpt_tool: fixture save: %s\n", rpu_last_error());
        rc = 1;
    }
    rpu_linear_destroy(&l);
    /* expected statistics of a.h5, from the same layer built on one rank (results do not
     * depend on the rank count, so its tiles hold the saved state) */
    if (!rc && g_rank == 0) {
        rpu_linear *s = NULL;
        if (!fixture_layer(MPI_COMM_SELF, &s)) return 1;
        rpu_conv *c = rpu_linear_as_conv(s);
        const rpu_tile_grid *g = rpu_conv_grid(c);
        FILE *f = fopen(pe, "w");
        if (!f) return 1;
        fprintf(f, "header step: 4242\nheader epoch: 7\nheader seed: 3\n");
        fprintf(f, "header   | batch = 16\n");
        fprintf(
            f, "header   grid: 1 group x 2 input splits [5,5] x 2 output splits [3,3] = 4 tiles\n");
        acc dev[2];
        memset(dev, 0, sizeof dev);
        const char *dn[2] = {"max_bound", "dwmin_up"};
        for (int t = 0; t < g->n_tiles; ++t) {
            rpu_tile *tile = rpu_conv_tile(c, t);
            size_t n = 0, nmax = 0, nmin = 0;
            const float *w = item(tile, "weights", &n);
            const float *bmax = item(tile, "max_bound", &nmax);
            const float *bmin = item(tile, "min_bound", &nmin);
            acc a;
            memset(&a, 0, sizeof a);
            acc_add(&a, w, n);
            size_t at = 0;
            for (size_t i = 0; i < n; ++i) {
                const double tol = 1e-6 * ((double)bmax[i] - (double)bmin[i]);
                at += fabs((double)w[i] - bmax[i]) <= tol || fabs((double)w[i] - bmin[i]) <= tol;
            }
            fprintf(f, "tile %d_%d ", g->tiles[t].in_split, g->tiles[t].out_split);
            acc_print(f, &a);
            fprintf(f, " at_bounds=%.9g\n", (double)at / (double)n);
            free(a.vals);
            for (int k = 0; k < 2; ++k) {
                size_t m = 0;
                const float *v = item(tile, dn[k], &m);
                acc_add(&dev[k], v, m);
            }
        }
        for (int k = 0; k < 2; ++k) {
            fprintf(f, "device %s ", dn[k]);
            acc_print(f, &dev[k]);
            fprintf(f, "\n");
            free(dev[k].vals);
        }
        /* --tile 1_0: the scalar forward_calls and the mapping scales */
        fprintf(f, "tileitem 1_0 forward_calls value=1\n");
        fclose(f);
        rpu_linear_destroy(&s);
    }
    return rc;
}

/* ------------------------------------------------------------------ bench */

static int cmd_bench(const char *path, int scale, int repeats, int tile) {
    tool_model m, r;
    const int ti = tile > 0 ? tile : 36, to = tile > 0 ? tile : 8;
    if (!model_create_tiles(&m, MPI_COMM_WORLD, scale, ti, to) ||
        !model_create_tiles(&r, MPI_COMM_WORLD, scale, ti, to))
        return 1;
    double ts = 1e30, tl = 1e30;
    for (int k = 0; k < repeats; ++k) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (rpu_ckpt_save(MPI_COMM_WORLD, path, NULL, m.ckl, 2, NULL, 0, NULL) != RPU_OK) {
            fprintf(stderr, "ckpt_tool: bench save: %s\n", rpu_last_error());
            return 1;
        }
        double t1 = MPI_Wtime();
        if (rpu_ckpt_load(MPI_COMM_WORLD, path, r.ckl, 2, NULL, 0, NULL) != RPU_OK) {
            fprintf(stderr, "ckpt_tool: bench load: %s\n", rpu_last_error());
            return 1;
        }
        double t2 = MPI_Wtime();
        if (t1 - t0 < ts) ts = t1 - t0;
        if (t2 - t1 < tl) tl = t2 - t1;
    }
    double mx[2] = {ts, tl}, g[2];
    MPI_Allreduce(mx, g, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (g_rank == 0) {
        struct stat st;
        stat(path, &st);
        int tiles = rpu_conv_grid(m.ckl[0].layer)->n_tiles + rpu_conv_grid(m.ckl[1].layer)->n_tiles;
        printf("ranks %d scale %d tile %dx%d: %d tiles, file %.2f MB: save %.4f s, load %.4f s "
               "(best of %d)\n",
               g_size, scale, ti, to, tiles, (double)st.st_size / 1e6, g[0], g[1], repeats);
    }
    model_destroy(&m);
    model_destroy(&r);
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    int rc = 2;
    if (argc >= 4 && !strcmp(argv[1], "write"))
        rc = cmd_write(argv[2], atol(argv[3]), argc > 4 && !strcmp(argv[4], "--loop"));
    else if (argc == 4 && !strcmp(argv[1], "verify"))
        rc = cmd_verify(argv[2], atol(argv[3]));
    else if (argc == 3 && !strcmp(argv[1], "fixture"))
        rc = cmd_fixture(argv[2]);
    else if ((argc == 5 || argc == 6) && !strcmp(argv[1], "bench"))
        rc = cmd_bench(argv[2], atoi(argv[3]), atoi(argv[4]), argc == 6 ? atoi(argv[5]) : 0);
    else if (g_rank == 0)
        fprintf(stderr, "usage: ckpt_tool write PATH STEP [--loop] | verify PATH MIN_STEP | "
                        "fixture DIR | bench PATH SCALE REPEATS [TILE]\n");
    int all = 0;
    MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return all;
}
