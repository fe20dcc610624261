/* rpusim train / rpusim eval: run an experiment file under mpirun, with progress on rank 0
 * (a live bar on a terminal, plain lines otherwise, e.g. in SLURM logs). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "signals.h"

#include "rpusim/net.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int rank;
    int tty;
} progress_ctx;

static void fmt_time(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

static void on_progress(void *vctx, const rpu_progress *p) {
    const progress_ctx *c = (const progress_ctx *)vctx;
    if (c->rank != 0) return;
    char eta[32];
    fmt_time(p->eta_s, eta, sizeof eta);
    if (c->tty) {
        const int width = 30, done = (int)((double)p->batch / p->batches * width);
        char bar[64];
        for (int k = 0; k < width; ++k)
            bar[k] = k < done ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\repoch %d/%d [%s] %d/%d loss %.4f acc %.3f %.0f samples/s eta %s ",
                p->epoch, p->epochs, bar, p->batch, p->batches, p->loss, p->acc, p->samples_per_s,
                eta);
        if (p->batch == p->batches) fputc('\n', stderr);
    } else {
        fprintf(stderr,
                "epoch %d/%d step %lld batch %d/%d loss %.4f acc %.4f samples/s %.0f eta %s\n",
                p->epoch, p->epochs, (long long)p->step, p->batch, p->batches, p->loss, p->acc,
                p->samples_per_s, eta);
    }
    fflush(stderr);
}

static int should_stop(void *vctx) {
    (void)vctx;
    return cli_signal_received() != 0;
}

static void on_epoch(void *vctx, const rpu_epoch_metrics *m) {
    const progress_ctx *c = (const progress_ctx *)vctx;
    if (c->rank != 0) return;
    printf("epoch %3d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  %.1f s\n", m->epoch,
           m->train_loss, m->train_acc, m->test_loss, m->test_acc, m->seconds);
    fflush(stdout);
}

/* Common options: FILE [--set k=v]... [--resume C | --checkpoint C]. */
typedef struct {
    const char *file;
    const char *checkpoint;
    const char *sets[256];
    int n_sets;
} run_args;

static int parse_args(const char *cmd, int argc, char **argv, run_args *a, const char *ck_flag) {
    memset(a, 0, sizeof *a);
    for (int k = 0; k < argc; ++k) {
        if (!strcmp(argv[k], "--set") && k + 1 < argc) {
            if (a->n_sets == 256) return fprintf(stderr, "rpusim %s: too many --set\n", cmd), 2;
            a->sets[a->n_sets++] = argv[++k];
        } else if (!strncmp(argv[k], "--set=", 6)) {
            if (a->n_sets == 256) return fprintf(stderr, "rpusim %s: too many --set\n", cmd), 2;
            a->sets[a->n_sets++] = argv[k] + 6;
        } else if (!strcmp(argv[k], ck_flag) && k + 1 < argc) {
            a->checkpoint = argv[++k];
        } else if (argv[k][0] == '-') {
            fprintf(stderr, "rpusim %s: unknown option %s (options: --set key=value, %s FILE)\n",
                    cmd, argv[k], ck_flag);
            return 2;
        } else if (!a->file) {
            a->file = argv[k];
        } else {
            fprintf(stderr, "rpusim %s: unexpected argument %s\n", cmd, argv[k]);
            return 2;
        }
    }
    if (!a->file) {
        fprintf(stderr, "usage: rpusim %s EXPERIMENT.ini [--set section.key=value ...] [%s FILE]\n",
                cmd, ck_flag);
        return 2;
    }
    return 0;
}

static int run(const char *cmd, int argc, char **argv) {
    const int eval = !strcmp(cmd, "eval");
    run_args a;
    int rc = parse_args(cmd, argc, argv, &a, eval ? "--checkpoint" : "--resume");
    if (rc) return rc;
    if (eval && !a.checkpoint) {
        fprintf(stderr, "rpusim eval: --checkpoint FILE is required\n");
        return 2;
    }
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    rpu_experiment *e = NULL;
    rpu_status s = rpu_experiment_load(a.file, a.sets, a.n_sets, &e);
    if (s != RPU_OK) {
        if (rank == 0) fprintf(stderr, "rpusim %s: %s\n", cmd, rpu_last_error());
        return s == RPU_ERR_CONFIG || s == RPU_ERR_IO ? 2 : 1;
    }
    if (eval) {
        double loss = 0, acc = 0;
        int *conf = NULL, K = 0;
        s = rpu_evaluate(MPI_COMM_WORLD, e, a.checkpoint, &loss, &acc, &conf, &K);
        if (s == RPU_OK && rank == 0) {
            printf("test loss %.4f accuracy %.4f\nconfusion matrix (rows: true class, columns: "
                   "predicted)\n",
                   loss, acc);
            for (int i = 0; i < K; ++i) {
                for (int j = 0; j < K; ++j)
                    printf("%6d", conf[i * K + j]);
                printf("\n");
            }
        }
        free(conf);
    } else {
        const rpu_run_params *r = rpu_experiment_run(e);
        if (rank == 0)
            printf("rpusim train %s: %d rank(s), %d epochs, batch %d, lr %g, data %s, output %s\n",
                   a.file, size, r->epochs, r->batch_size, (double)r->lr, r->dataset,
                   r->output_dir);
        if (rank == 0 && a.checkpoint) printf("resuming from %s\n", a.checkpoint);
        fflush(stdout);
        progress_ctx ctx = {rank, isatty(STDERR_FILENO)};
        rpu_train_hooks hooks = {on_progress, on_epoch, &ctx, should_stop, NULL};
        /* should_stop must be set on every rank or on none */
        int ok = cli_signals_install(rank == 0) == 0, all = 0;
        MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (!all) {
            if (rank == 0)
                fprintf(stderr, "rpusim train: cannot install the signal handlers; SIGTERM and "
                                "SIGUSR1 will end the run without a checkpoint\n");
            hooks.should_stop = NULL;
        }
        s = rpu_train(MPI_COMM_WORLD, e, a.checkpoint, &hooks);
        cli_signals_restore();
        if (s == RPU_STOPPED) {
            const int sig = cli_signal_received();
            if (rank == 0)
                fprintf(stderr, "rpusim train: %s%s: %s\n", sig ? cli_signal_name(sig) : "",
                        sig ? "" : "a signal on another rank", rpu_last_error());
            const int rc = r->checkpoint[0] ? CLI_EXIT_STOPPED : 1; /* 1: nothing to resume */
            if (rank == 0 && rc == CLI_EXIT_STOPPED)
                fprintf(stderr, "rpusim train: exit code %d; continue with --resume %s\n",
                        CLI_EXIT_STOPPED, r->checkpoint);
            rpu_experiment_free(&e);
            return rc;
        }
    }
    if (s != RPU_OK && rank == 0) fprintf(stderr, "rpusim %s: %s\n", cmd, rpu_last_error());
    rpu_experiment_free(&e);
    return s == RPU_OK ? 0 : (s == RPU_ERR_CONFIG ? 2 : 1);
}

int cli_train(const char *cmd, int argc, char **argv) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(NULL, NULL);
    int rc = run(cmd, argc, argv);
    /* every rank returns the worst exit code so that mpirun reports it */
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!inited) MPI_Finalize();
    return worst;
}
