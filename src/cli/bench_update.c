/* rpusim bench update: one pulsed update of a 512x512 tile with batch 256 (x ~ U(-1,1),
 * d ~ U(-0.01,0.01), dw_min 0.001) at lr 0.1, 1 and 10 (pulse trains of 1, 10 and 31
 * slots under update management), for constant_step and soft_bounds or the device named by
 * --device, beside a floating-point update (one sgemm) of the same shape. Also bytes of
 * state per cell for every device type.
 *
 * No figures of another tool are printed: a ratio to aihwkit belongs to a run that times
 * both tools side by side on the same machine (README, "Performance", has such a run and
 * its commands). */
#define _POSIX_C_SOURCE 200809L
#include "args.h"
#include "bench.h"
#include "budget.h"

#include "rpusim/config.h"
#include "rpusim/tile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: rpusim bench update [--size N] [--batch N] [--repeats R] [--device NAME]\n"
            "                           [--sub TYPE] [--cell-device TYPE] [--json FILE]\n"
            "Times one pulsed update of an N x N tile (default 512, batch 256) at lr 0.1, 1, 10\n"
            "(the second update of a new tile, best of R, default 2) for constant_step and\n"
            "soft_bounds, or for the pulsed device\n"
            "NAME (constant_step, linear_step, soft_bounds, soft_bounds_pmax, exp_step,\n"
            "pow_step, piecewise_step, soft_bounds_reference; or a compound: vector,\n"
            "reference, one_sided, transfer, buffered_transfer, chopped_transfer,\n"
            "dynamic_transfer, each of two sub-devices of type TYPE (default constant_step)\n"
            "with its defaults and scale_fast_lr = true, mixed_precision of one; then timed\n"
            "beside TYPE alone, with the ratio), and a floating-point update of the same shape.\n"
            "A transfer compound or mixed_precision also takes unit cells as --sub (vector,\n"
            "reference, one_sided), each of two devices of --cell-device TYPE (default\n"
            "constant_step); the ratio is then against one such cell alone.\n");
}

/* Sub-device k of cfg (a compound) of type sub; a unit cell of two devices of type cell. */
static bool set_sub(rpu_config *cfg, int k, const char *sub, const char *cell) {
    char key[96];
    snprintf(key, sizeof key, "device.unit_cell_devices.%d.type", k);
    if (rpu_config_set(cfg, key, sub) != RPU_OK) return false;
    if (!rpu_device_type_is_unit_cell(cfg->compound.unit_cell_devices[k].type)) return true;
    for (int m = 0; m < 2; ++m) {
        snprintf(key, sizeof key, "device.unit_cell_devices.%d.unit_cell_devices.%d.type", k, m);
        if (rpu_config_set(cfg, key, cell) != RPU_OK) return false;
    }
    return true;
}

/* A tile of `device` (a compound: of sub-devices of type sub, unit cells of cell devices). */
static rpu_tile *make_tile(const char *device, const char *sub, const char *cell, int N,
                           rpu_config_kind kind) {
    rpu_config cfg;
    rpu_config_default(&cfg, kind);
    if (device && rpu_config_set(&cfg, "device.type", device) != RPU_OK) return NULL;
    if (rpu_device_type_is_compound(cfg.device.type) &&
        (!set_sub(&cfg, 0, sub, cell) ||
         (cfg.device.type != RPU_DEVICE_MIXED_PRECISION && /* mixed_precision: one device */
          !set_sub(&cfg, 1, sub, cell))))
        return NULL;
    /* the transfer family's fast device at the SGD learning rate (post-1.1 scale_fast_lr with
     * fast_lr 1), so that its pulses are those of the single device it is compared with */
    if (rpu_device_type_is_transfer(cfg.device.type) &&
        rpu_config_set(&cfg, "device.scale_fast_lr", "true") != RPU_OK)
        return NULL;
    rpu_tile_params p = {.out_size = N, .in_size = N, .seed = 1, .mac = RPU_MAC_BLAS};
    rpu_tile *t = NULL;
    if (rpu_tile_create(&p, &cfg, &t) != RPU_OK) return NULL;
    return t;
}

/* Whether name spells a pulsed device type, single or compound (not floating_point or
 * ideal, whose update is the sgemm row); its type into *type. */
static bool pulsed_type(const char *name, rpu_device_type *type) {
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_SINGLE);
    if (rpu_config_set(&cfg, "device.type", name) != RPU_OK) return false;
    *type = cfg.device.type;
    return *type != RPU_DEVICE_FLOATING_POINT && *type != RPU_DEVICE_IDEAL;
}

/* Pulse-train length of the first vector under update BL management (spec §3.3):
 * min(ceil(lr max|x| max|d| / g), desired_bl) with the device's weight granularity g. */
static int first_bl(const char *device, const char *sub, const char *cell, float xm, float dm,
                    float lr) {
    rpu_tile *t = make_tile(device, sub, cell, 2, RPU_KIND_SINGLE);
    if (!t) return 0;
    const float g = rpu_tile_granularity(t);
    rpu_tile_destroy(&t);
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_SINGLE);
    const double k = ceil((double)(lr * xm * dm / g));
    return k < 1 ? 1 : (k > cfg.update.desired_bl ? cfg.update.desired_bl : (int)k);
}

#define CMD "bench update"
#define MAX_N 65536 /* tile size; the library takes at most 2^31 cells */

int cli_bench_update(int argc, char **argv) {
    int N = 512, n = 256, repeats = 2;
    const char *json = NULL, *device = NULL, *sub = "constant_step", *cell = "constant_step";
    for (int a = 0; a < argc; ++a) {
        const char *k = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            return 0;
        }
        const bool known = !strcmp(k, "--size") || !strcmp(k, "--batch") ||
                           !strcmp(k, "--repeats") || !strcmp(k, "--json") ||
                           !strcmp(k, "--device") || !strcmp(k, "--sub") ||
                           !strcmp(k, "--cell-device");
        if (!v || !known) {
            fprintf(stderr, "rpusim bench update: %s %s\n",
                    known ? "missing value for" : "unknown option", k);
            usage(stderr);
            return 2;
        }
        ++a;
        if (!strcmp(k, "--size")) {
            if (!cli_arg_int(CMD, k, v, 1, MAX_N, &N)) return 2;
        } else if (!strcmp(k, "--batch")) {
            if (!cli_arg_int(CMD, k, v, 1, 1 << 20, &n)) return 2;
        } else if (!strcmp(k, "--repeats")) {
            if (!cli_arg_int(CMD, k, v, 1, 1000, &repeats)) return 2;
        } else if (!strcmp(k, "--device")) {
            device = v;
        } else if (!strcmp(k, "--sub")) {
            sub = v;
        } else if (!strcmp(k, "--cell-device")) {
            cell = v;
        } else {
            json = v;
        }
    }
    rpu_device_type sub_type = RPU_DEVICE_CONSTANT_STEP, dtype = RPU_DEVICE_CONSTANT_STEP,
                    cell_type = RPU_DEVICE_CONSTANT_STEP;
    if (!pulsed_type(sub, &sub_type) ||
        (rpu_device_type_is_compound(sub_type) && !rpu_device_type_is_unit_cell(sub_type))) {
        fprintf(stderr,
                "rpusim bench update: --sub '%s': not a pulsed single device type "
                "(constant_step, linear_step, soft_bounds, soft_bounds_pmax, exp_step, "
                "pow_step, piecewise_step, soft_bounds_reference) or unit cell (vector, "
                "reference, one_sided)\n",
                sub);
        return 2;
    }
    if (!pulsed_type(cell, &cell_type) || rpu_device_type_is_compound(cell_type)) {
        fprintf(stderr,
                "rpusim bench update: --cell-device '%s': not a pulsed single device type\n", cell);
        return 2;
    }
    const char *devices[2] = {"constant_step", "soft_bounds"};
    int ndev = 2;
    if (device) {
        if (!pulsed_type(device, &dtype)) {
            fprintf(stderr,
                    "rpusim bench update: --device '%s': not a pulsed device type (constant_step, "
                    "linear_step, soft_bounds, soft_bounds_pmax, exp_step, pow_step, "
                    "piecewise_step, soft_bounds_reference, vector, reference, one_sided, "
                    "transfer, buffered_transfer, chopped_transfer, dynamic_transfer, "
                    "mixed_precision)\n",
                    device);
            return 2;
        }
        devices[0] = device;
        ndev = 1;
        if (rpu_device_type_is_compound(dtype)) {
            /* and its sub-device alone, for the ratio */
            devices[1] = sub;
            ndev = 2;
        }
    }
    /* x and d (batch x size floats each), the weights, and one tile's state (the largest
     * device: every device type is created at the end, on an 8 x 8 tile) */
    cli_budget b = {0, false};
    const size_t nx = cli_mul((size_t)n, (size_t)N, &b.overflow);
    const size_t cells = cli_mul((size_t)N, (size_t)N, &b.overflow);
    cli_budget_add(&b, nx, 2 * sizeof(float));
    cli_budget_add(&b, cells, sizeof(float));
    {
        double bpc = 0;
        for (int dv = 0; dv < ndev; ++dv) {
            rpu_tile *t = make_tile(devices[dv], dv ? cell : sub, cell, 2, RPU_KIND_SINGLE);
            const double v = t ? rpu_tile_bytes_per_cell(t) : 0;
            bpc = v > bpc ? v : bpc;
            rpu_tile_destroy(&t);
        }
        cli_budget_add(&b, cells, (size_t)(bpc + 0.5));
    }
    char what[64];
    snprintf(what, sizeof what, "a %dx%d tile, batch %d", N, N, n);
    if (cli_budget_check(CMD, what, &b, stdout)) return 2;
    float *x = malloc(nx * sizeof(float)), *d = malloc(nx * sizeof(float));
    float *w = malloc(cells * sizeof(float));
    if (!x || !d || !w) {
        fprintf(stderr, "rpusim bench update: out of memory\n");
        free(x), free(d), free(w);
        return 1;
    }
    rpu_rng r;
    rpu_rng_init(&r, 3, rpu_stream_id(0, 0, RPU_PURPOSE_TEST));
    float xm = 0, dm = 0; /* max |x|, max |d| of the first vector */
    for (size_t q = 0; q < nx; ++q) {
        x[q] = 2 * rpu_rng_uniform(&r) - 1;
        if (q < (size_t)N) xm = fabsf(x[q]) > xm ? fabsf(x[q]) : xm;
    }
    for (size_t q = 0; q < nx; ++q) {
        d[q] = 0.01f * (2 * rpu_rng_uniform(&r) - 1);
        if (q < (size_t)N) dm = fabsf(d[q]) > dm ? fabsf(d[q]) : dm;
    }
    for (size_t q = 0; q < cells; ++q)
        w[q] = 0.1f * (2 * rpu_rng_uniform(&r) - 1);

    FILE *jf = json ? fopen(json, "w") : NULL;
    if (json && !jf) {
        fprintf(stderr, "rpusim bench update: cannot write %s\n", json);
        free(x), free(d), free(w);
        return 1;
    }
    printf(
        "rpusim bench update: %dx%d tile, batch %d, x ~ U(-1,1), d ~ U(-0.01,0.01), best of %d\n",
        N, N, n, repeats);
    printf("(BL: pulse-train length of the first update vector, update management on)\n\n");
    printf("%-14s %6s %12s %4s\n", "device", "lr", "seconds", "BL");
    if (jf) fprintf(jf, "{\"size\": %d, \"batch\": %d, \"rows\": [\n", N, n);
    const float lrs[] = {0.1f, 1.0f, 10.0f};
    double bests[2][3] = {{0}};
    int first = 1, err = 0;
    double fp_s = 1e30;
    {
        rpu_tile *t = make_tile(NULL, sub, cell, N, RPU_KIND_FLOATING_POINT);
        if (!t) {
            fprintf(stderr, "rpusim bench update: %s\n", rpu_last_error());
            goto fail;
        }
        rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED);
        for (int rep = 0; rep < repeats + 1; ++rep) {
            double t0 = now();
            err |= rpu_tile_update(t, x, d, n, 0.1f) != RPU_OK;
            double s = now() - t0;
            if (s < fp_s) fp_s = s;
        }
        rpu_tile_destroy(&t);
    }
    printf("%-14s %6s %12.4f %4s\n", "floating_point", "0.1", fp_s, "-");
    if (jf) fprintf(jf, "  {\"device\": \"floating_point\", \"lr\": 0.1, \"seconds\": %.6f}", fp_s);
    first = 0;
    for (int dv = 0; dv < ndev; ++dv)
        for (int l = 0; l < 3; ++l) {
            double best = 1e30;
            for (int rep = 0; rep < repeats; ++rep) {
                rpu_tile *t = make_tile(devices[dv], dv ? cell : sub, cell, N, RPU_KIND_SINGLE);
                if (!t) {
                    fprintf(stderr, "rpusim bench update: %s\n", rpu_last_error());
                    goto fail;
                }
                rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED);
                /* one update first: the timed one is a training step's (workspaces exist) */
                err |= rpu_tile_update(t, x, d, n, lrs[l]) != RPU_OK;
                double t0 = now();
                err |= rpu_tile_update(t, x, d, n, lrs[l]) != RPU_OK;
                double s = now() - t0;
                if (s < best) best = s;
                rpu_tile_destroy(&t);
            }
            bests[dv][l] = best;
            const int bl = first_bl(devices[dv], dv ? cell : sub, cell, xm, dm, lrs[l]);
            printf("%-14s %6g %12.4f %4d\n", devices[dv], (double)lrs[l], best, bl);
            fflush(stdout);
            if (jf)
                fprintf(jf,
                        "%s  {\"device\": \"%s\", \"lr\": %g, \"bl\": %d, \"seconds\": "
                        "%.6f}",
                        first ? "" : ",\n", devices[dv], (double)lrs[l], bl, best);
            first = 0;
        }
    if (ndev == 2 && device) {
        printf("\n%s / %s (its sub-device alone), same lr:", device, sub);
        for (int l = 0; l < 3; ++l)
            printf("  lr %g: %.2fx", (double)lrs[l], bests[0][l] / bests[1][l]);
        printf("\n");
    }
    printf("\n(no aihwkit figures here: compare tools only when timed side by side in one run,\n"
           " see README, Performance)\n\n");
    printf("%-18s %14s\n", "device", "bytes_per_cell");
    const char *all[] = {"floating_point", "ideal",       "constant_step",
                         "linear_step",    "soft_bounds", "soft_bounds_pmax",
                         "exp_step",       "pow_step",    "piecewise_step"};
    if (jf) fprintf(jf, "\n], \"bytes_per_cell\": {");
    for (size_t k = 0; k < sizeof all / sizeof all[0]; ++k) {
        rpu_tile *t = make_tile(all[k], sub, cell, 8, RPU_KIND_SINGLE);
        double b = t ? rpu_tile_bytes_per_cell(t) : -1;
        printf("%-18s %14.1f\n", all[k], b);
        if (jf) fprintf(jf, "%s\"%s\": %.1f", k ? ", " : "", all[k], b);
        rpu_tile_destroy(&t);
    }
    if (device && rpu_device_type_is_compound(dtype)) {
        /* the compound's state: sub-devices, hidden arrays, buffers */
        rpu_tile *t = make_tile(device, sub, cell, 8, RPU_KIND_SINGLE);
        double b = t ? rpu_tile_bytes_per_cell(t) : -1;
        printf("%-18s %14.1f\n", device, b);
        if (jf) fprintf(jf, ", \"%s\": %.1f", device, b);
        rpu_tile_destroy(&t);
    }
    if (jf) {
        fprintf(jf, "}}\n");
        fclose(jf);
    }
    free(x), free(d), free(w);
    if (err) {
        fprintf(stderr, "rpusim bench update: an update failed: %s\n", rpu_last_error());
        return 1;
    }
    return 0;
fail:
    if (jf) fclose(jf);
    free(x), free(d), free(w);
    return 1;
}
