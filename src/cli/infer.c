/* rpusim infer: accuracy of a trained network over time after programming (drift study),
 * mean and standard deviation over independent programming repeats. */
#define _POSIX_C_SOURCE 200809L
#include "args.h"
#include "cli.h"

#include "rpusim/net.h"

#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_TIMES 64

static const char *const usage_text =
    "usage: rpusim infer EXPERIMENT.ini --checkpoint C.h5 [--t-inference T1,T2,...]\n"
    "                    [--repeats R] [--groups G] [--compensation global|column|none]\n"
    "                    [--set section.key=value ...] [--out FILE.csv]\n"
    "  --t-inference   seconds after programming (default 1,60,3600,86400,2592000,31536000)\n"
    "  --repeats       independent programmings of every tile (default 10, at most 4095)\n"
    "  --groups        groups of ranks evaluating repeats in parallel (default min(ranks,\n"
    "                  repeats)); each group holds all tiles; the table does not depend on it\n"
    "  --compensation  drift compensation (default: the experiment's rpu.drift_compensation)\n"
    "  --out           summary CSV (default <run.output_dir>/infer.csv); the per-repeat\n"
    "                  values go to the same name with -repeats before .csv\n";

typedef struct {
    const char *file, *checkpoint, *out, *comp;
    const char *sets[258];
    int n_sets;
    double times[MAX_TIMES];
    int n_times, repeats, groups;
} infer_args;

static int parse(int argc, char **argv, infer_args *a) {
    memset(a, 0, sizeof *a);
    static const double def[] = {1, 60, 3600, 86400, 2592000, 31536000};
    a->n_times = 6;
    memcpy(a->times, def, sizeof def);
    a->repeats = 10;
    for (int k = 0; k < argc; ++k) {
        const char *o = argv[k];
        const int has = k + 1 < argc;
        if (!strcmp(o, "--set") && has) {
            if (a->n_sets >= 256) return fprintf(stderr, "rpusim infer: too many --set\n"), 2;
            a->sets[a->n_sets++] = argv[++k];
        } else if (!strcmp(o, "--checkpoint") && has) {
            a->checkpoint = argv[++k];
        } else if (!strcmp(o, "--out") && has) {
            a->out = argv[++k];
        } else if (!strcmp(o, "--t-inference") && has) {
            a->n_times = cli_arg_double_list("infer", o, argv[++k], 0, RPU_INFER_MAX_TIME, a->times,
                                             MAX_TIMES);
            if (a->n_times < 0) return 2;
        } else if (!strcmp(o, "--repeats") && has) {
            if (!cli_arg_int("infer", o, argv[++k], 1, RPU_INFER_MAX_REPEATS, &a->repeats))
                return 2;
        } else if (!strcmp(o, "--groups") && has) {
            if (!cli_arg_int("infer", o, argv[++k], 1, 1 << 24, &a->groups)) return 2;
        } else if (!strcmp(o, "--compensation") && has) {
            a->comp = argv[++k];
            if (strcmp(a->comp, "global") && strcmp(a->comp, "column") && strcmp(a->comp, "none")) {
                fprintf(stderr,
                        "rpusim infer: --compensation '%s': expected global, column or none\n",
                        a->comp);
                return 2;
            }
        } else if (o[0] == '-') {
            fprintf(stderr, "rpusim infer: unknown option %s\n%s", o, usage_text);
            return 2;
        } else if (!a->file) {
            a->file = o;
        } else {
            fprintf(stderr, "rpusim infer: unexpected argument %s\n", o);
            return 2;
        }
    }
    if (!a->file || !a->checkpoint) {
        fprintf(stderr, "rpusim infer: %s\n%s",
                a->file ? "--checkpoint FILE is required" : "no experiment file", usage_text);
        return 2;
    }
    return 0;
}

static int ensure_parent(const char *path) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; ++p) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0777) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (dir[0] && mkdir(dir, 0777) && errno != EEXIST) return -1;
    return 0;
}

/* Summary (per time) and per-repeat CSV files; returns 0 or an exit code. */
static int write_csv(const char *path, const char *comp, const infer_args *a,
                     const rpu_infer_result *r) {
    char raw[1100];
    const size_t L = strlen(path);
    if (L > 4 && !strcmp(path + L - 4, ".csv"))
        snprintf(raw, sizeof raw, "%.*s-repeats.csv", (int)(L - 4), path);
    else
        snprintf(raw, sizeof raw, "%s-repeats.csv", path);
    FILE *f = NULL, *g = NULL;
    if (ensure_parent(path) || !(f = fopen(path, "w")) || !(g = fopen(raw, "w"))) {
        fprintf(stderr, "rpusim infer: cannot write %s: %s\n", f ? raw : path, strerror(errno));
        if (f) fclose(f);
        return 1;
    }
    fprintf(f, "t_inference,compensation,repeats,acc_mean,acc_std,acc_min,acc_max,loss_mean,"
               "loss_std\n");
    fprintf(g, "repeat,t_inference,compensation,acc,loss\n");
    for (int j = 0; j < r->n_times; ++j) {
        double sa = 0, sl = 0, mn = 1e300, mx = -1e300;
        for (int q = 0; q < r->repeats; ++q) {
            const double v = r->acc[(size_t)q * r->n_times + j];
            sa += v;
            sl += r->loss[(size_t)q * r->n_times + j];
            mn = fmin(mn, v);
            mx = fmax(mx, v);
            fprintf(g, "%d,%.17g,%s,%.17g,%.17g\n", q, a->times[j], comp, v,
                    r->loss[(size_t)q * r->n_times + j]);
        }
        const double ma = sa / r->repeats, ml = sl / r->repeats;
        double va = 0, vl = 0;
        for (int q = 0; q < r->repeats; ++q) {
            const double da = r->acc[(size_t)q * r->n_times + j] - ma;
            const double dl = r->loss[(size_t)q * r->n_times + j] - ml;
            va += da * da;
            vl += dl * dl;
        }
        const double den = r->repeats > 1 ? r->repeats - 1 : 1;
        fprintf(f, "%.17g,%s,%d,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", a->times[j], comp,
                r->repeats, ma, sqrt(va / den), mn, mx, ml, sqrt(vl / den));
        printf("t = %-12g acc %.4f +- %.4f  (min %.4f max %.4f)  loss %.4f\n", a->times[j], ma,
               sqrt(va / den), mn, mx, ml);
    }
    int bad = ferror(f) || ferror(g);
    bad |= fclose(f) != 0;
    bad |= fclose(g) != 0;
    if (bad) {
        fprintf(stderr, "rpusim infer: writing %s failed\n", path);
        return 1;
    }
    printf("wrote %s and %s\n", path, raw);
    return 0;
}

static int run(int argc, char **argv) {
    infer_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc;
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char comp_set[64];
    if (a.comp) {
        snprintf(comp_set, sizeof comp_set, "rpu.drift_compensation=%s",
                 !strcmp(a.comp, "column") ? "per_column" : a.comp);
        a.sets[a.n_sets++] = comp_set;
    }
    rpu_experiment *e = NULL;
    rpu_status s = rpu_experiment_load(a.file, a.sets, a.n_sets, &e);
    if (s != RPU_OK) {
        if (rank == 0) fprintf(stderr, "rpusim infer: %s\n", rpu_last_error());
        return s == RPU_ERR_CONFIG || s == RPU_ERR_IO ? 2 : 1;
    }
    char comp[32];
    rpu_config_get(rpu_experiment_config(e), "drift_compensation", comp, sizeof comp);
    const int groups = a.groups ? a.groups : rpu_infer_default_groups(size, a.repeats);
    if (rank == 0) {
        printf("rpusim infer %s: checkpoint %s, %d time(s), %d repeat(s), %d rank(s) in %d "
               "group(s), compensation %s\n",
               a.file, a.checkpoint, a.n_times, a.repeats, size, groups, comp);
        fflush(stdout);
    }
    rpu_infer_params p = {
        .times = a.times, .n_times = a.n_times, .repeats = a.repeats, .groups = groups};
    rpu_infer_result r;
    s = rpu_infer(MPI_COMM_WORLD, e, a.checkpoint, &p, &r);
    rc = s == RPU_OK ? 0 : (s == RPU_ERR_CONFIG || s == RPU_ERR_ARG ? 2 : 1);
    if (s != RPU_OK && rank == 0) fprintf(stderr, "rpusim infer: %s\n", rpu_last_error());
    if (s == RPU_OK && rank == 0) {
        char path[1024];
        if (a.out)
            snprintf(path, sizeof path, "%s", a.out);
        else
            snprintf(path, sizeof path, "%s/infer.csv", rpu_experiment_run(e)->output_dir);
        rc = write_csv(path, comp, &a, &r);
    }
    if (s == RPU_OK) rpu_infer_result_free(&r);
    rpu_experiment_free(&e);
    return rc;
}

int cli_infer(int argc, char **argv) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(NULL, NULL);
    int rc = run(argc, argv);
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!inited) MPI_Finalize();
    return worst;
}
