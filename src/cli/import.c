/* rpusim import: digitally trained weights (an HDF5 file in PyTorch layout, e.g. from
 * scripts/export_torch.py) into an analog checkpoint of an experiment's network, under
 * mpirun on any number of ranks. */
#define _POSIX_C_SOURCE 200809L
#include "args.h"
#include "cli.h"

#include "rpusim/net.h"

#include <float.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SETS 256
#define MAX_REPORT 64
/* relative read-back change above which the import warns (float rounding is ~1e-7) */
#define CHANGE_WARN 1e-4

static void usage(FILE *f) {
    fprintf(f,
            "usage: rpusim import WEIGHTS.h5 --experiment FILE [--set section.key=value ...]\n"
            "                     -o CHECKPOINT.h5 [--force]\n"
            "\n"
            "Sets the analog layers of the experiment's network to digitally trained weights\n"
            "and writes a checkpoint that `rpusim eval FILE --checkpoint CHECKPOINT.h5` loads\n"
            "(and `rpusim train FILE --resume CHECKPOINT.h5` continues from). WEIGHTS.h5 holds\n"
            "one dataset per analog layer NAME in PyTorch layout: /NAME.weight [out, in/groups,\n"
            "k...] (conv) or [out, in] (linear), and /NAME.bias [out] for layers with a bias;\n"
            "float32 or float64. scripts/export_torch.py writes it from a PyTorch state_dict.\n"
            "\n"
            "  --experiment FILE   the experiment file (layers, rpu config, data set for shapes)\n"
            "  --set k=v           override an experiment key, as for rpusim train\n"
            "  -o FILE             the checkpoint to write\n"
            "  --force             replace FILE if it exists\n"
            "  --program           write the weights by closed-loop pulsed programming (noisy\n"
            "                      read, pulsed update, repeated; aihwkit's program_weights)\n"
            "                      instead of setting them exactly; the report shows the result\n"
            "  --program-max-iter N, --program-tolerance X, --program-lr X\n"
            "                      its rounds (10000), stop criterion mean|err|/max|w| (0.01) and\n"
            "                      learning rate (0.1)\n");
}

typedef struct {
    const char *weights, *experiment, *out;
    const char *sets[MAX_SETS];
    int n_sets;
    bool force, program;
    rpu_program_params prog;
} import_args;

/* 0: parsed; 2: usage error (printed); -1: --help (printed). */
static int parse(int argc, char **argv, import_args *a) {
    memset(a, 0, sizeof *a);
    rpu_program_params_default(&a->prog);
    for (int k = 0; k < argc; ++k) {
        const char *o = argv[k];
        const bool has_val = k + 1 < argc;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(o, "--set") || !strncmp(o, "--set=", 6)) {
            const char *v = o[5] == '=' ? o + 6 : (has_val ? argv[++k] : NULL);
            if (!v) return fprintf(stderr, "rpusim import: --set needs section.key=value\n"), 2;
            if (a->n_sets == MAX_SETS) return fprintf(stderr, "rpusim import: too many --set\n"), 2;
            a->sets[a->n_sets++] = v;
        } else if (!strcmp(o, "--experiment") || !strncmp(o, "--experiment=", 13)) {
            a->experiment = o[12] == '=' ? o + 13 : (has_val ? argv[++k] : NULL);
            if (!a->experiment)
                return fprintf(stderr, "rpusim import: --experiment needs a file\n"), 2;
        } else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
            if (!has_val) return fprintf(stderr, "rpusim import: %s needs a file\n", o), 2;
            a->out = argv[++k];
        } else if (!strcmp(o, "--force")) {
            a->force = true;
        } else if (!strcmp(o, "--program")) {
            a->program = true;
        } else if (!strcmp(o, "--program-max-iter") && has_val) {
            if (!cli_arg_int("import", o, argv[++k], 0, 1000000000, &a->prog.max_iter)) return 2;
            a->program = true;
        } else if ((!strcmp(o, "--program-tolerance") || !strcmp(o, "--program-lr")) && has_val) {
            /* float parameters: finite, representable; a learning rate > 0 (at least the
             * smallest normal float) */
            const bool lr = !strcmp(o, "--program-lr");
            double v;
            if (!cli_arg_double("import", o, argv[++k], lr ? FLT_MIN : 0, FLT_MAX, &v)) return 2;
            if (lr)
                a->prog.learning_rate = (float)v;
            else
                a->prog.tolerance = (float)v;
            a->program = true;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr,
                    "rpusim import: unknown option %s (options: --experiment FILE, --set "
                    "key=value, -o FILE, --force)\n",
                    o);
            return 2;
        } else if (!a->weights) {
            a->weights = o;
        } else {
            fprintf(stderr, "rpusim import: unexpected argument %s\n", o);
            return 2;
        }
    }
    const char *missing = !a->weights      ? "the weights file"
                          : !a->experiment ? "--experiment FILE"
                          : !a->out        ? "-o CHECKPOINT.h5"
                                           : NULL;
    if (missing) {
        fprintf(stderr, "rpusim import: %s is required\n", missing);
        usage(stderr);
        return 2;
    }
    return 0;
}

static int run(int argc, char **argv, int rank, int size) {
    import_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    /* refuse early, with the option that allows it; the library checks again */
    int exists = 0;
    struct stat st;
    if (rank == 0 && !a.force && stat(a.out, &st) == 0) exists = 1;
    MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (exists) {
        if (rank == 0)
            fprintf(stderr, "rpusim import: output %s already exists (--force replaces it)\n",
                    a.out);
        return 1;
    }
    rpu_experiment *e = NULL;
    rpu_status s = rpu_experiment_load(a.experiment, a.sets, a.n_sets, &e);
    rpu_import_layer rep[MAX_REPORT];
    int n_rep = 0;
    if (s == RPU_OK)
        s = rpu_net_import(MPI_COMM_WORLD, e, a.weights, a.out, a.force, a.program ? &a.prog : NULL,
                           rep, MAX_REPORT, &n_rep);
    if (s != RPU_OK) {
        if (rank == 0) fprintf(stderr, "rpusim import: %s\n", rpu_last_error());
    } else if (rank == 0) {
        printf("rpusim import: %s -> %s (experiment %s, %d rank(s))\n", a.weights, a.out,
               a.experiment, size);
        for (int k = 0; k < n_rep; ++k) {
            const rpu_import_layer *r = &rep[k];
            const double rel = r->max_change / (r->max_abs > 0 ? r->max_abs : 1.0);
            printf("  layer %-12s %9lld values  max |w| %-10.4g read back: max change %.3g "
                   "(%.2g of max |w|)\n",
                   r->name, (long long)r->values, r->max_abs, r->max_change, rel);
            if (rel > CHANGE_WARN && !a.program)
                fprintf(stderr,
                        "rpusim import: warning: layer %s: the tiles changed the weights by up "
                        "to %.3g (%.2g of max |w|): device bounds clip them (check "
                        "rpu.device.type, rpu.mapping.weight_scaling_omega)\n",
                        r->name, r->max_change, rel);
        }
    }
    rpu_experiment_free(&e);
    return s == RPU_OK ? 0 : (s == RPU_ERR_CONFIG ? 2 : 1);
}

int cli_import(int argc, char **argv) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(NULL, NULL);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int rc = run(argc, argv, rank, size);
    /* every rank returns the worst exit code so that mpirun reports it */
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!inited) MPI_Finalize();
    return worst;
}
