/* rpusim inspect FILE [--layer L] [--tile KEY]: what a checkpoint holds, independent of the
 * ranks that wrote it — schema and rpusim version, run metadata, the experiment config,
 * each layer's tile grid with statistics of every tile's weights (mean, std, min, max and
 * the fraction of weights at the device bounds) and of the device arrays over the layer.
 * With --tile, every dataset of that tile. rpusim inspect FILE --verify: every object read
 * and checked as a load would (rpu_ckpt_verify). Reads through the checkpoint module's
 * serial reader (include/rpusim/ckpt.h): no MPI is initialised, no mpiexec needed. */
#include "args.h"
#include "cli.h"

#include "rpusim/ckpt.h"
#include "rpusim/config.h"
#include "rpusim/net.h"

#include <mpi.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_BOUND_REL 1e-6 /* |w - bound| <= 1e-6 (max_bound - min_bound) counts as at a bound */

static void usage(FILE *f) {
    fprintf(f, "usage: rpusim inspect FILE [--layer NAME] [--tile KEY] [--no-config]\n"
               "       rpusim inspect FILE --verify\n"
               "       rpusim inspect FILE --readout [--over-sampling N] [--set k=v ...]\n"
               "\n"
               "Prints a checkpoint's schema and rpusim version, seed, step, epoch, the\n"
               "experiment config, and for each layer its tile grid with per-tile statistics of\n"
               "the stored tile weights (mean, population std, min, max; at_bounds = fraction of\n"
               "weights within 1e-6 x (max_bound - min_bound) of max_bound or min_bound, when the\n"
               "device has bounds) and statistics of each device array over all tiles of the\n"
               "layer. Needs no mpiexec.\n"
               "\n"
               "  --layer NAME  only this layer (also prints its rpu_config)\n"
               "  --tile KEY    only this tile (KEY as in the file: I_J, or gG_I_J with groups),\n"
               "                with every dataset of the tile; needs --layer when the file has\n"
               "                more than one layer\n"
               "  --no-config   do not print the experiment config text\n"
               "  --verify      instead: read every group, attribute and dataset of the file\n"
               "                and check it as loading it would (schema, shapes, Fletcher32\n"
               "                checksums of all data, object header checksums); exit status 0\n"
               "                and one line \"verified N objects\" when all is well, else 1 and\n"
               "                a message naming the first bad object\n"
               "  --readout     instead: rebuild the network from the experiment stored in the\n"
               "                file (--set overrides, e.g. data.path=...), read every layer's\n"
               "                weights out realistically (least squares over noisy forwards,\n"
               "                ScaLAPACK across the ranks; run under mpiexec for several ranks)\n"
               "                and print the error against the stored weights per layer\n"
               "  --over-sampling N  probe vectors per tile input for --readout (default 10)\n");
}

/* Running statistics, combinable (Chan et al.): n, mean, M2, min, max. */
typedef struct {
    double n, mean, m2, min, max;
} stats;

static void stats_init(stats *s) {
    s->n = s->mean = s->m2 = 0;
    s->min = INFINITY;
    s->max = -INFINITY;
}

/* Statistics of v[0..n) (two passes). */
static stats stats_of(const double *v, int64_t n) {
    stats s;
    stats_init(&s);
    if (n <= 0) return s;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        sum += v[i];
        if (v[i] < s.min) s.min = v[i];
        if (v[i] > s.max) s.max = v[i];
    }
    s.n = (double)n;
    s.mean = sum / (double)n;
    for (int64_t i = 0; i < n; ++i)
        s.m2 += (v[i] - s.mean) * (v[i] - s.mean);
    return s;
}

static void stats_merge(stats *a, const stats *b) {
    if (b->n == 0) return;
    if (a->n == 0) {
        *a = *b;
        return;
    }
    const double n = a->n + b->n, d = b->mean - a->mean;
    a->m2 += b->m2 + d * d * a->n * b->n / n;
    a->mean += d * b->n / n;
    a->n = n;
    if (b->min < a->min) a->min = b->min;
    if (b->max > a->max) a->max = b->max;
}

static void stats_print(const stats *s) {
    if (s->n == 0) {
        printf("n=0");
        return;
    }
    printf("mean=%.6g std=%.6g min=%.6g max=%.6g", s->mean, sqrt(s->m2 / s->n), s->min, s->max);
}

static void print_ints(const int *v, int n, const char *sep) {
    for (int i = 0; i < n; ++i)
        printf("%s%d", i ? sep : "", v[i]);
}

/* Reads layers/<layer>/tiles/<key>/<item>; NULL (and a message) on error. */
static double *read_item(rpu_ckpt_file *f, const char *layer, const char *key, const char *item,
                         int64_t *n, int *err) {
    char path[512];
    snprintf(path, sizeof path, "layers/%.200s/tiles/%.47s/%.200s", layer, key, item);
    double *v = NULL;
    int nd = 0;
    int64_t dims[RPU_CKPT_MAX_DIMS];
    if (rpu_ckpt_file_read(f, path, &v, &nd, dims) != RPU_OK) {
        fprintf(stderr, "rpusim inspect: %s\n", rpu_last_error());
        *err = 1;
        return NULL;
    }
    *n = 1;
    for (int d = 0; d < nd; ++d)
        *n *= dims[d];
    return v;
}

/* The layer's device from its rpu_config text: the type, and for a compound its sub-devices
 * (their arrays carry the suffix _k, their hidden weights are hidden_weights_k). */
static void print_device(const char *text) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    if (!text || rpu_config_parse(&c, text, "rpu_config") != RPU_OK) return;
    char type[64];
    if (rpu_config_get(&c, "device.type", type, sizeof type) != RPU_OK) return;
    printf("  device: %s", type);
    if (rpu_device_type_is_compound(c.device.type)) {
        printf(", %d sub-device%s:", c.compound.n_devices, c.compound.n_devices == 1 ? "" : "s");
        for (int k = 0; k < c.compound.n_devices; ++k) {
            char key[96], sub[64];
            snprintf(key, sizeof key, "device.unit_cell_devices.%d.type", k);
            if (rpu_config_get(&c, key, sub, sizeof sub) != RPU_OK) continue;
            printf("%s %d %s", k ? "," : "", k, sub);
            if (!rpu_device_type_is_unit_cell(c.compound.unit_cell_devices[k].type)) continue;
            printf(" of"); /* a unit cell inside: its devices (arrays <name>_l_k) */
            for (int m = 0; m < c.cells[k].n_devices; ++m) {
                snprintf(key, sizeof key, "device.unit_cell_devices.%d.unit_cell_devices.%d.type",
                         k, m);
                if (rpu_config_get(&c, key, sub, sizeof sub) == RPU_OK)
                    printf("%s %s", m ? " +" : "", sub);
            }
        }
        if (c.device.type == RPU_DEVICE_MIXED_PRECISION)
            printf(" (its arrays unsuffixed; the digital accumulator hidden_weights_chi)");
        else
            printf(" (arrays <name>_k and hidden_weights_k of sub-device k; <name>_l_k of device l "
                   "of a unit cell k)");
    }
    printf("\n");
}

/* One layer: grid, per-tile weight statistics, device arrays over the layer. */
static int print_layer(rpu_ckpt_file *f, int li, const char *tile_sel, bool show_config) {
    rpu_ckpt_layer_desc d;
    if (rpu_ckpt_file_layer(f, li, &d) != RPU_OK) return 1;
    printf("layer %s: %s in=%d out=%d", d.name, d.type, d.in_channels, d.out_channels);
    if (d.ndim > 0) {
        printf(" kernel=");
        print_ints(d.kernel, d.ndim, "x");
        printf(" stride=");
        print_ints(d.stride, d.ndim, "x");
        printf(" padding=");
        print_ints(d.padding, d.ndim, "x");
        printf(" dilation=");
        print_ints(d.dilation, d.ndim, "x");
    }
    printf(" groups=%d bias=%s split=%s layer_id=%u seed=%llu\n", d.groups, d.bias, d.split,
           d.layer_id, (unsigned long long)d.seed);
    printf("  grid: %d group%s x %d input split%s [", d.groups, d.groups == 1 ? "" : "s", d.n_in,
           d.n_in == 1 ? "" : "s");
    print_ints(d.in_split_sizes, d.n_in, ",");
    printf("]%s x %d output split%s [", strcmp(d.split, "mapped") ? " columns" : "", d.n_out,
           d.n_out == 1 ? "" : "s");
    print_ints(d.out_split_sizes, d.n_out, ",");
    printf("] = %d tile%s\n", d.n_tiles, d.n_tiles == 1 ? "" : "s");
    print_device(d.rpu_config);
    if (show_config) {
        printf("  rpu_config:\n");
        const char *s = d.rpu_config;
        while (*s) {
            const char *e = strchr(s, '\n');
            const int n = e ? (int)(e - s) : (int)strlen(s);
            printf("    %.*s\n", n, s);
            s += n + (e ? 1 : 0);
        }
    }

    /* the device arrays: datasets of tile 0 with the weights' shape other than weights */
    enum { MAXI = RPU_TILE_MAX_STATE_ITEMS };
    rpu_ckpt_item_desc items[MAXI];
    int n_items = 0;
    if (rpu_ckpt_file_tile_items(f, li, 0, items, MAXI, &n_items) != RPU_OK) {
        fprintf(stderr, "rpusim inspect: %s\n", rpu_last_error());
        return 1;
    }
    if (n_items > MAXI) n_items = MAXI;
    char names[MAXI][48];
    int is_cell[MAXI], n_dev = 0, wk = -1;
    for (int k = 0; k < n_items; ++k) {
        snprintf(names[k], sizeof names[k], "%s", items[k].name);
        if (!strcmp(names[k], "weights")) wk = k;
    }
    for (int k = 0; k < n_items; ++k) {
        is_cell[k] = wk >= 0 && k != wk && items[k].rows == items[wk].rows &&
                     items[k].cols == items[wk].cols;
        n_dev += is_cell[k];
    }
    stats dev[MAXI];
    for (int k = 0; k < n_items; ++k)
        stats_init(&dev[k]);

    int err = 0, found = tile_sel == NULL;
    for (int t = 0; t < d.n_tiles && !err; ++t) {
        char key[48];
        rpu_ckpt_tile_key(&d, t, key);
        if (tile_sel && strcmp(tile_sel, key)) continue;
        found = 1;
        rpu_ckpt_item_desc ti[MAXI];
        int nt = 0;
        if (rpu_ckpt_file_tile_items(f, li, t, ti, MAXI, &nt) != RPU_OK) {
            fprintf(stderr, "rpusim inspect: %s\n", rpu_last_error());
            return 1;
        }
        if (nt > MAXI) nt = MAXI;
        char tn[MAXI][48];
        for (int k = 0; k < nt; ++k)
            snprintf(tn[k], sizeof tn[k], "%s", ti[k].name);
        int64_t nw = 0, nmax = 0, nmin = 0;
        double *w = read_item(f, d.name, key, "weights", &nw, &err);
        if (err) break;
        double *bmax = NULL, *bmin = NULL;
        for (int k = 0; k < nt; ++k) {
            if (!strcmp(tn[k], "max_bound")) bmax = read_item(f, d.name, key, tn[k], &nmax, &err);
            if (!strcmp(tn[k], "min_bound")) bmin = read_item(f, d.name, key, tn[k], &nmin, &err);
        }
        const stats ws = stats_of(w, nw);
        int64_t rows = 0, cols = 0;
        for (int k = 0; k < nt; ++k)
            if (!strcmp(tn[k], "weights")) rows = ti[k].rows, cols = ti[k].cols;
        printf("  tile %s %lldx%lld weights ", key, (long long)rows, (long long)cols);
        stats_print(&ws);
        if (!err && bmax && bmin && nmax == nw && nmin == nw && nw > 0) {
            int64_t at = 0;
            for (int64_t i = 0; i < nw; ++i) {
                const double tol = AT_BOUND_REL * (bmax[i] - bmin[i]);
                at += fabs(w[i] - bmax[i]) <= tol || fabs(w[i] - bmin[i]) <= tol;
            }
            printf(" at_bounds=%.6g\n", (double)at / (double)nw);
        } else {
            printf(" at_bounds=n/a\n");
        }
        free(w), free(bmax), free(bmin);
        if (err) break;
        if (tile_sel) {
            /* every dataset of the selected tile */
            for (int k = 0; k < nt && !err; ++k) {
                int64_t n = 0;
                double *v = read_item(f, d.name, key, tn[k], &n, &err);
                if (err) break;
                printf("    %s %s %lldx%lld ", tn[k], rpu_ckpt_dtype_name(ti[k].dtype),
                       (long long)ti[k].rows, (long long)ti[k].cols);
                if (n == 1) {
                    if (ti[k].dtype == RPU_CKPT_U64 || ti[k].dtype == RPU_CKPT_I64)
                        printf("value=%.17g\n", v[0]);
                    else
                        printf("value=%.9g\n", v[0]);
                } else {
                    const stats s = stats_of(v, n);
                    stats_print(&s);
                    printf("\n");
                }
                free(v);
            }
        } else {
            for (int k = 0; k < n_items && !err; ++k) {
                if (!is_cell[k]) continue;
                int64_t n = 0;
                double *v = read_item(f, d.name, key, names[k], &n, &err);
                if (err) break;
                const stats s = stats_of(v, n);
                stats_merge(&dev[k], &s);
                free(v);
            }
        }
    }
    if (err) return 1;
    if (!found) {
        fprintf(stderr, "rpusim inspect: layer %s has no tile '%s' (keys like ", d.name, tile_sel);
        char key[48];
        rpu_ckpt_tile_key(&d, 0, key);
        fprintf(stderr, "%s", key);
        if (d.n_tiles > 1) {
            rpu_ckpt_tile_key(&d, d.n_tiles - 1, key);
            fprintf(stderr, " .. %s", key);
        }
        fprintf(stderr, ")\n");
        return 1;
    }
    if (!tile_sel && n_dev > 0)
        for (int k = 0; k < n_items; ++k) {
            if (!is_cell[k]) continue;
            printf("  device %s (all tiles) ", names[k]);
            stats_print(&dev[k]);
            printf("\n");
        }
    return 0;
}

/* --readout: the realistic read-out error of every layer, with the network rebuilt from
 * the experiment stored in the checkpoint (collective; initialises MPI). */
static int readout_report(const char *file, int over_sampling, const char *const *sets,
                          int n_sets) {
    int inited = 0, rank = 0, rc = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    rpu_ckpt_file *f = NULL;
    rpu_experiment *e = NULL;
    rpu_status s = rpu_ckpt_open(file, &f);
    if (s == RPU_OK) {
        const char *text = rpu_ckpt_file_info(f)->config;
        s = rpu_experiment_parse(text ? text : "", file, sets, n_sets, &e);
        rpu_ckpt_close(&f);
    }
    rpu_readout_layer_report rep[64];
    int n = 0;
    if (s == RPU_OK) s = rpu_readout_report(MPI_COMM_WORLD, e, file, over_sampling, rep, 64, &n);
    if (s != RPU_OK) {
        if (rank == 0) fprintf(stderr, "rpusim inspect: %s\n", rpu_last_error());
        rc = 1;
    } else if (rank == 0) {
        printf("realistic read-out (over_sampling %d): least squares over noisy forwards vs the "
               "stored weights\n",
               over_sampling);
        printf("%-16s %6s %8s %12s %12s %12s %9s\n", "layer", "tiles", "weights", "mean|W|",
               "mean|err|", "max|err|", "rel.err");
        for (int k = 0; k < n; ++k)
            printf("%-16s %6d %8d %12.5g %12.5g %12.5g %9.4f\n", rep[k].name, rep[k].tiles,
                   rep[k].weights, rep[k].mean_abs_w, rep[k].mean_abs_err, rep[k].max_abs_err,
                   rep[k].rel_err);
    }
    rpu_experiment_free(&e);
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!inited) MPI_Finalize();
    return worst;
}

/* --verify: 0 and one line when every object checks out, else 1 and the message. */
static int verify(const char *file) {
    rpu_ckpt_file *f = NULL;
    int64_t n = 0;
    rpu_status s = rpu_ckpt_open(file, &f);
    if (s == RPU_OK) s = rpu_ckpt_verify(f, &n);
    rpu_ckpt_close(&f);
    if (s != RPU_OK) {
        fprintf(stderr, "rpusim inspect: %s\n", rpu_last_error());
        return 1;
    }
    printf("verified %lld objects in %s\n", (long long)n, file);
    return 0;
}

int cli_inspect(int argc, char **argv) {
    const char *file = NULL, *layer = NULL, *tile = NULL;
    bool show_config = true, readout = false, check = false;
    int over_sampling = 10, n_sets = 0;
    const char *sets[64];
    for (int i = 0; i < argc; ++i) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--readout")) {
            readout = true;
        } else if (!strcmp(argv[i], "--verify")) {
            check = true;
        } else if (!strcmp(argv[i], "--over-sampling") && i + 1 < argc) {
            if (cli_parse_int_list(argv[++i], &over_sampling, 1) != 1 || over_sampling > 1000) {
                fprintf(stderr, "rpusim inspect: --over-sampling '%s': expected 1..1000\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            if (n_sets == 64) return fprintf(stderr, "rpusim inspect: too many --set\n"), 2;
            sets[n_sets++] = argv[++i];
        } else if (!strcmp(argv[i], "--layer") && i + 1 < argc) {
            layer = argv[++i];
        } else if (!strcmp(argv[i], "--tile") && i + 1 < argc) {
            tile = argv[++i];
        } else if (!strcmp(argv[i], "--no-config")) {
            show_config = false;
        } else if (argv[i][0] == '-' || file) {
            fprintf(stderr, "rpusim inspect: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            file = argv[i];
        }
    }
    if (!file) {
        usage(stderr);
        return 2;
    }
    if (check && (readout || layer || tile)) {
        fprintf(stderr, "rpusim inspect: --verify checks the whole file; it takes no --readout, "
                        "--layer or --tile\n");
        return 2;
    }
    if (check) return verify(file);
    if (readout) return readout_report(file, over_sampling, sets, n_sets);
    rpu_ckpt_file *f = NULL;
    if (rpu_ckpt_open(file, &f) != RPU_OK) {
        fprintf(stderr, "rpusim inspect: %s\n", rpu_last_error());
        return 1;
    }
    const rpu_ckpt_info *in = rpu_ckpt_file_info(f);
    const int nl = rpu_ckpt_file_layer_count(f);
    int sel = -1;
    if (layer) {
        for (int i = 0; i < nl; ++i) {
            rpu_ckpt_layer_desc d;
            rpu_ckpt_file_layer(f, i, &d);
            if (!strcmp(d.name, layer)) sel = i;
        }
        if (sel < 0) {
            fprintf(stderr, "rpusim inspect: %s has no layer '%s' (layers:", file, layer);
            for (int i = 0; i < nl; ++i) {
                rpu_ckpt_layer_desc d;
                rpu_ckpt_file_layer(f, i, &d);
                fprintf(stderr, " %s", d.name);
            }
            fprintf(stderr, ")\n");
            rpu_ckpt_close(&f);
            return 1;
        }
    } else if (tile) {
        if (nl != 1) {
            fprintf(stderr, "rpusim inspect: --tile needs --layer (the file has %d layers)\n", nl);
            rpu_ckpt_close(&f);
            return 2;
        }
        sel = 0;
    }
    printf("checkpoint: %s\n", file);
    printf("format: %s, schema_version %d, written by rpusim %s on %d rank%s\n", RPU_CKPT_FORMAT,
           in->schema_version, in->rpusim_version, in->ranks_at_save,
           in->ranks_at_save == 1 ? "" : "s");
    printf("seed: %llu\nstep: %lld\nepoch: %lld\n", (unsigned long long)in->seed,
           (long long)in->step, (long long)in->epoch);
    if (show_config) {
        if (!in->config || !in->config[0]) {
            printf("config: (empty)\n");
        } else {
            printf("config:\n");
            const char *s = in->config;
            while (*s) {
                const char *e = strchr(s, '\n');
                const int n = e ? (int)(e - s) : (int)strlen(s);
                printf("  | %.*s\n", n, s);
                s += n + (e ? 1 : 0);
            }
        }
    }
    printf("layers: %d\n", nl);
    int rc = 0;
    for (int i = 0; i < nl && !rc; ++i) {
        if (sel >= 0 && i != sel) continue;
        rc = print_layer(f, i, tile, sel >= 0 && layer != NULL);
    }
    rpu_ckpt_close(&f);
    return rc;
}
