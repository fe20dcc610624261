/* rpusim export: a checkpoint's logical weights in PyTorch layout (the input format of
 * rpusim import), exactly or by realistic read-out, under mpirun on any number of ranks. */
#define _POSIX_C_SOURCE 200809L
#include "args.h"
#include "cli.h"

#include "rpusim/ckpt.h"
#include "rpusim/net.h"

#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_SETS 256

static void usage(FILE *f) {
    fprintf(f,
            "usage: rpusim export CHECKPOINT.h5 -o WEIGHTS.h5 [--realistic [--over-sampling N]]\n"
            "                     [--experiment FILE] [--set section.key=value ...] [--force]\n"
            "\n"
            "Writes the logical weights of every analog layer (stored tile weights x mapping\n"
            "scales) as /NAME.weight [out, in/groups, k...] or [out, in] and /NAME.bias [out]\n"
            "(float32), the layout rpusim import reads and a PyTorch state_dict has. With\n"
            "--realistic the weights are read out from noisy forwards (least squares).\n"
            "\n"
            "  --experiment FILE   the experiment (default: the one stored in the checkpoint)\n"
            "  --set k=v           override an experiment key (e.g. data.path=...)\n"
            "  --realistic         realistic read-out; --over-sampling N probes per input (10)\n"
            "  -o FILE             the weights file to write; --force replaces it\n");
}

typedef struct {
    const char *ckpt, *out, *experiment;
    const char *sets[MAX_SETS];
    int n_sets, over_sampling;
    bool realistic, force;
} export_args;

static int parse(int argc, char **argv, export_args *a) {
    memset(a, 0, sizeof *a);
    a->over_sampling = 10;
    for (int k = 0; k < argc; ++k) {
        const char *o = argv[k];
        const bool has = k + 1 < argc;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(o, "--set") && has) {
            if (a->n_sets == MAX_SETS) return fprintf(stderr, "rpusim export: too many --set\n"), 2;
            a->sets[a->n_sets++] = argv[++k];
        } else if (!strcmp(o, "--experiment") && has) {
            a->experiment = argv[++k];
        } else if ((!strcmp(o, "-o") || !strcmp(o, "--output")) && has) {
            a->out = argv[++k];
        } else if (!strcmp(o, "--over-sampling") && has) {
            if (!cli_arg_int("export", o, argv[++k], 1, 1000, &a->over_sampling)) return 2;
        } else if (!strcmp(o, "--realistic")) {
            a->realistic = true;
        } else if (!strcmp(o, "--force")) {
            a->force = true;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "rpusim export: unknown option or missing value: %s\n", o);
            usage(stderr);
            return 2;
        } else if (!a->ckpt) {
            a->ckpt = o;
        } else {
            fprintf(stderr, "rpusim export: unexpected argument %s\n", o);
            return 2;
        }
    }
    if (!a->ckpt || !a->out) {
        fprintf(stderr, "rpusim export: %s is required\n", !a->ckpt ? "the checkpoint" : "-o FILE");
        usage(stderr);
        return 2;
    }
    return 0;
}

static int run(int argc, char **argv, int rank) {
    export_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    rpu_experiment *e = NULL;
    rpu_status s;
    if (a.experiment) {
        s = rpu_experiment_load(a.experiment, a.sets, a.n_sets, &e);
    } else {
        rpu_ckpt_file *f = NULL;
        s = rpu_ckpt_open(a.ckpt, &f);
        if (s == RPU_OK) {
            const char *text = rpu_ckpt_file_info(f)->config;
            s = rpu_experiment_parse(text ? text : "", a.ckpt, a.sets, a.n_sets, &e);
            rpu_ckpt_close(&f);
        }
    }
    if (s == RPU_OK)
        s = rpu_net_export(MPI_COMM_WORLD, e, a.ckpt, a.out, a.realistic, a.over_sampling, a.force);
    if (rank == 0) {
        if (s != RPU_OK)
            fprintf(stderr, "rpusim export: %s\n", rpu_last_error());
        else
            printf("rpusim export: %s -> %s (%s weights)\n", a.ckpt, a.out,
                   a.realistic ? "realistic read-out" : "stored");
    }
    rpu_experiment_free(&e);
    return s == RPU_OK ? 0 : (s == RPU_ERR_CONFIG ? 2 : 1);
}

int cli_export(int argc, char **argv) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(NULL, NULL);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int rc = run(argc, argv, rank);
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!inited) MPI_Finalize();
    return worst;
}
