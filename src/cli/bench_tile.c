/* rpusim bench tile: forward/backward time per batch of one analog tile, beside a bare
 * sgemm of the same shape timed in the same run (the ratio is what to read; absolute
 * times on a shared machine are noisy). */
#define _POSIX_C_SOURCE 200809L
#include "args.h"
#include "bench.h"
#include "blas_note.h"
#include "budget.h"

#include "rpusim/config.h"
#include "rpusim/tile.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    rpu_tile *tile;
    const float *w, *x, *d;
    float *y, *dx;
    int out, in, n;
    int what; /* 0 tile forward, 1 tile backward, 2 sgemm forward shape, 3 sgemm backward */
} job;

static int run_job(job *j) {
    switch (j->what) {
    case 0:
        return rpu_tile_forward(j->tile, j->x, j->n, j->y, RPU_MODE_TRAIN) != RPU_OK;
    case 1:
        return rpu_tile_backward(j->tile, j->d, j->n, j->dx) != RPU_OK;
    case 2:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, j->out, j->in, 1.0f, j->x, j->in,
                    j->w, j->in, 0.0f, j->y, j->out);
        return 0;
    default:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->n, j->in, j->out, 1.0f, j->d,
                    j->out, j->w, j->in, 0.0f, j->dx, j->in);
        return 0;
    }
}

/* Seconds per call: calls repeated for at least `ms` milliseconds per trial. */
static double time_trial(job *j, double ms, int *err) {
    int reps = 0;
    double t0 = now(), t;
    do {
        *err |= run_job(j);
        ++reps;
        t = now();
    } while ((t - t0) * 1e3 < ms);
    return (t - t0) / reps;
}

static void usage(FILE *f) {
    fprintf(f, "usage: rpusim bench tile [--sizes 64,128,256,512] [--batches 1,64,256]\n"
               "                         [--trial-ms 15] [--trials 5] [--mac blas|exact]\n"
               "                         [--io perfect|default|both] [--json FILE]\n"
               "Times the forward and backward of an N x N tile (is_perfect and default IO)\n"
               "and a bare sgemm of the same shape, alternating, best of the trials.\n");
}

#define CMD "bench tile"
#define MAX_N 65536     /* tile size; the library takes at most 2^31 cells */
#define MAX_BATCH 65536 /* vectors per call */
#define MAX_LIST 16

/* Bytes of one tile's state per cell (weights + device + IO) for the config of the run. */
static double bytes_per_cell(const rpu_config *cfg, rpu_mac_mode mac) {
    rpu_tile_params p = {.out_size = 2, .in_size = 2, .seed = 1, .mac = mac};
    rpu_tile *t = NULL;
    if (rpu_tile_create(&p, cfg, &t) != RPU_OK) return -1;
    const double b = rpu_tile_bytes_per_cell(t);
    rpu_tile_destroy(&t);
    return b;
}

int cli_bench_tile(int argc, char **argv) {
    int sizes[MAX_LIST] = {64, 128, 256, 512}, nsizes = 4;
    int batches[MAX_LIST] = {1, 64, 256}, nbatches = 3;
    double trial_ms = 15;
    int trials = 5;
    rpu_mac_mode mac = RPU_MAC_BLAS;
    const char *json = NULL;
    int io_from = 1, io_to = 0; /* perfect (1) down to default (0) */
    for (int a = 0; a < argc; ++a) {
        const char *k = argv[a];
        const char *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            return 0;
        }
        const bool known = !strcmp(k, "--sizes") || !strcmp(k, "--batches") ||
                           !strcmp(k, "--trial-ms") || !strcmp(k, "--trials") ||
                           !strcmp(k, "--mac") || !strcmp(k, "--io") || !strcmp(k, "--json");
        if (!known) {
            fprintf(stderr, "rpusim bench tile: unknown option %s\n", k);
            usage(stderr);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "rpusim bench tile: option %s needs a value\n", k);
            return 2;
        }
        ++a; /* the value */
        if (!strcmp(k, "--sizes")) {
            if ((nsizes = cli_arg_int_list(CMD, k, v, 1, MAX_N, sizes, MAX_LIST)) < 0) return 2;
        } else if (!strcmp(k, "--batches")) {
            if ((nbatches = cli_arg_int_list(CMD, k, v, 1, MAX_BATCH, batches, MAX_LIST)) < 0)
                return 2;
        } else if (!strcmp(k, "--trial-ms")) {
            if (!cli_arg_double(CMD, k, v, 0.001, 3.6e6, &trial_ms)) return 2;
        } else if (!strcmp(k, "--trials")) {
            if (!cli_arg_int(CMD, k, v, 1, 1000000, &trials)) return 2;
        } else if (!strcmp(k, "--mac")) {
            if (!strcmp(v, "blas"))
                mac = RPU_MAC_BLAS;
            else if (!strcmp(v, "exact"))
                mac = RPU_MAC_EXACT;
            else {
                fprintf(stderr, "rpusim bench tile: --mac '%s': want blas or exact\n", v);
                return 2;
            }
        } else if (!strcmp(k, "--io")) {
            if (!strcmp(v, "perfect"))
                io_from = io_to = 1;
            else if (!strcmp(v, "default"))
                io_from = io_to = 0;
            else if (!strcmp(v, "both"))
                io_from = 1, io_to = 0;
            else {
                fprintf(stderr, "rpusim bench tile: --io '%s': want perfect, default or both\n", v);
                return 2;
            }
        } else {
            json = v;
        }
    }
    /* memory of the largest case (it grows with size and batch): the tile's state, a copy
     * of its weights, and the four vector buffers (x, d, y, dx) of batch x size floats */
    {
        int maxn = 0, maxb = 0;
        for (int si = 0; si < nsizes; ++si)
            if (sizes[si] > maxn) maxn = sizes[si];
        for (int bi = 0; bi < nbatches; ++bi)
            if (batches[bi] > maxb) maxb = batches[bi];
        rpu_config cfg;
        rpu_config_default(&cfg, RPU_KIND_SINGLE);
        const double bpc = bytes_per_cell(&cfg, mac);
        cli_budget b = {0, false};
        cli_budget_add(&b, cli_mul((size_t)maxn, (size_t)maxn, &b.overflow),
                       sizeof(float) + (size_t)(bpc > 0 ? bpc + 0.5 : 0));
        cli_budget_add(&b, cli_mul(4 * (size_t)maxb, (size_t)maxn, &b.overflow), sizeof(float));
        char what[96];
        snprintf(what, sizeof what, "the largest case (tile %dx%d, batch %d)", maxn, maxn, maxb);
        if (cli_budget_check(CMD, what, &b, stdout)) return 2;
    }
    FILE *jf = NULL;
    if (json && !(jf = fopen(json, "w"))) {
        fprintf(stderr, "rpusim bench tile: cannot write %s\n", json);
        return 1;
    }
    const char *core = openblas_get_corename();
    const char *blas_env = getenv("OPENBLAS_NUM_THREADS");
    printf("rpusim bench tile: OpenBLAS core %s, threads %d (OPENBLAS_NUM_THREADS=%s), MAC %s\n",
           core, openblas_get_num_threads(), blas_env ? blas_env : "unset",
           mac == RPU_MAC_BLAS ? "blas" : "exact");
    cli_bench_print_blas_note(stdout, core);
    printf("times in microseconds per batch, best of %d trials of >= %g ms; ratio = tile/sgemm\n\n",
           trials, trial_ms);
    printf("%-8s %5s %-8s %12s %12s %7s %12s %12s %7s\n", "tile", "batch", "io", "fwd_us",
           "sgemm_us", "ratio", "bwd_us", "sgemm_us", "ratio");
    if (jf)
        fprintf(jf, "{\"openblas_core\": \"%s\", \"mac\": \"%s\", \"trials\": %d, \"rows\": [\n",
                core, mac == RPU_MAC_BLAS ? "blas" : "exact", trials);
    int err = 0, first = 1;
    for (int si = 0; si < nsizes; ++si)
        for (int bi = 0; bi < nbatches; ++bi)
            for (int perfect = io_from; perfect >= io_to; --perfect) {
                const int N = sizes[si], n = batches[bi];
                rpu_config cfg;
                rpu_config_default(&cfg, RPU_KIND_SINGLE);
                cfg.forward.is_perfect = cfg.backward.is_perfect = perfect;
                rpu_tile_params p = {.out_size = N, .in_size = N, .seed = 1, .mac = mac};
                rpu_tile *t = NULL;
                if (rpu_tile_create(&p, &cfg, &t) != RPU_OK) {
                    fprintf(stderr, "rpusim bench tile: %s\n", rpu_last_error());
                    if (jf) fclose(jf);
                    return 1;
                }
                size_t cells = (size_t)N * N, vec = (size_t)n * N;
                float *w = malloc(cells * sizeof(float)), *x = malloc(vec * sizeof(float));
                float *d = malloc(vec * sizeof(float)), *y = malloc(vec * sizeof(float));
                float *dx = malloc(vec * sizeof(float));
                if (!w || !x || !d || !y || !dx) {
                    fprintf(stderr, "rpusim bench tile: out of memory for a %dx%d tile, batch %d\n",
                            N, N, n);
                    free(w), free(x), free(d), free(y), free(dx);
                    rpu_tile_destroy(&t);
                    if (jf) fclose(jf);
                    return 1;
                }
                rpu_rng r;
                rpu_rng_init(&r, 1, rpu_stream_id(0, 0, RPU_PURPOSE_TEST));
                for (size_t q = 0; q < cells; ++q)
                    w[q] = 0.6f * (2 * rpu_rng_uniform(&r) - 1) / 8;
                for (size_t q = 0; q < vec; ++q)
                    x[q] = 2 * rpu_rng_uniform(&r) - 1;
                for (size_t q = 0; q < vec; ++q)
                    d[q] = 2 * rpu_rng_uniform(&r) - 1;
                rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED);
                job j = {t, w, x, d, y, dx, N, N, n, 0};
                double best[4] = {1e30, 1e30, 1e30, 1e30};
                for (int tr = 0; tr < trials; ++tr)
                    for (int what = 0; what < 4; ++what) {
                        j.what = what;
                        double s = time_trial(&j, trial_ms, &err);
                        if (s < best[what]) best[what] = s;
                    }
                const char *io = perfect ? "perfect" : "default";
                printf("%4dx%-4d %5d %-8s %12.1f %12.1f %7.2f %12.1f %12.1f %7.2f\n", N, N, n, io,
                       best[0] * 1e6, best[2] * 1e6, best[0] / best[2], best[1] * 1e6,
                       best[3] * 1e6, best[1] / best[3]);
                fflush(stdout);
                if (jf)
                    fprintf(
                        jf,
                        "%s  {\"size\": %d, \"batch\": %d, \"io\": \"%s\", \"forward_us\": %.3f, "
                        "\"forward_sgemm_us\": %.3f, \"forward_ratio\": %.4f, \"backward_us\": "
                        "%.3f, \"backward_sgemm_us\": %.3f, \"backward_ratio\": %.4f}",
                        first ? "" : ",\n", N, n, io, best[0] * 1e6, best[2] * 1e6,
                        best[0] / best[2], best[1] * 1e6, best[3] * 1e6, best[1] / best[3]);
                first = 0;
                free(w), free(x), free(d), free(y), free(dx);
                rpu_tile_destroy(&t);
            }
    if (jf) {
        fprintf(jf, "\n]}\n");
        if (fclose(jf) != 0) {
            fprintf(stderr, "rpusim bench tile: error writing %s\n", json);
            return 1;
        }
    }
    if (err) {
        fprintf(stderr, "rpusim bench tile: a tile call failed: %s\n", rpu_last_error());
        return 1;
    }
    return 0;
}
