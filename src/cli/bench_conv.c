/* rpusim bench conv: one training step (forward + backward + update) of Conv2d 16->32,
 * 3x3, padding 1, on input 32x16x32x32, for floating_point and single (constant_step)
 * configs, beside an im2col + sgemm digital convolution step of the same shape (forward
 * GEMM, input-gradient GEMM + col2im, weight-gradient GEMM) timed in the same run, and,
 * with --torch, PyTorch's own Conv2d step (torch.nn.Conv2d + SGD, one thread) timed in the
 * same run by a Python child process. Run it under mpiexec to time several ranks; a variant
 * with small tiles (8 tiles) shows the parallel speed-up. Figures of aihwkit 1.0 and
 * PyTorch measured elsewhere are printed as such (with their date and machine), never as a
 * ratio against this run.
 *
 * Every timed step starts from the layer's initial weights (set back before it, untimed):
 * a pulsed tile's update slows down as its weights reach their bounds (cells near a bound
 * cannot merge their pulses), and the same gradient at lr 0.1 repeated step after step
 * would take them there, so later steps would time a state a training step does not start
 * from. One untimed warm-up step allocates the workspaces. The columns are the parts of the
 * fastest step, so that they add up to it. */
#define _POSIX_C_SOURCE 200809L
#include "args.h"
#include "bench.h"
#include "blas_note.h"
#include "budget.h"

#include "rpusim/layer.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The clock of the timings: wall time, or with --cpu this process's CPU time (on a machine
 * shared with other work, where waiting for a core inflates wall times). */
static clockid_t timer = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec ts;
    clock_gettime(timer, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Digital im2col + sgemm training step of the same convolution (stride 1). */
typedef struct {
    int N, C, O, H, W, k, pad;
    float *cols, *w, *y, *dcols, *dw;
} digital_conv;

static void im2col(const digital_conv *d, const float *x) {
    const int L = d->H * d->W, K = d->C * d->k * d->k;
    for (int n = 0; n < d->N; ++n)
        for (int c = 0; c < d->C; ++c)
            for (int kh = 0; kh < d->k; ++kh)
                for (int kw = 0; kw < d->k; ++kw) {
                    float *dst = d->cols + ((size_t)n * K + (c * d->k + kh) * d->k + kw) * L;
                    for (int oh = 0; oh < d->H; ++oh) {
                        int ih = oh - d->pad + kh;
                        for (int ow = 0; ow < d->W; ++ow) {
                            int iw = ow - d->pad + kw;
                            dst[oh * d->W + ow] =
                                (ih >= 0 && ih < d->H && iw >= 0 && iw < d->W)
                                    ? x[((size_t)(n * d->C + c) * d->H + ih) * d->W + iw]
                                    : 0.0f;
                        }
                    }
                }
}

static void col2im(const digital_conv *d, float *dx) {
    const int L = d->H * d->W, K = d->C * d->k * d->k;
    memset(dx, 0, sizeof(float) * (size_t)d->N * d->C * L);
    for (int n = 0; n < d->N; ++n)
        for (int c = 0; c < d->C; ++c)
            for (int kh = 0; kh < d->k; ++kh)
                for (int kw = 0; kw < d->k; ++kw) {
                    const float *src = d->dcols + ((size_t)n * K + (c * d->k + kh) * d->k + kw) * L;
                    for (int oh = 0; oh < d->H; ++oh) {
                        int ih = oh - d->pad + kh;
                        if (ih < 0 || ih >= d->H) continue;
                        for (int ow = 0; ow < d->W; ++ow) {
                            int iw = ow - d->pad + kw;
                            if (iw >= 0 && iw < d->W)
                                dx[((size_t)(n * d->C + c) * d->H + ih) * d->W + iw] +=
                                    src[oh * d->W + ow];
                        }
                    }
                }
}

static void digital_step(digital_conv *d, const float *x, const float *dy, float *dx) {
    const int L = d->H * d->W, K = d->C * d->k * d->k;
    im2col(d, x);
    for (int n = 0; n < d->N; ++n) /* y_n [O, L] = W [O, K] cols_n [K, L] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->O, L, K, 1.0f, d->w, K,
                    d->cols + (size_t)n * K * L, L, 0.0f, d->y + (size_t)n * d->O * L, L);
    for (int n = 0; n < d->N; ++n) { /* dcols_n = Wᵀ dy_n; dW += dy_n cols_nᵀ */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, L, d->O, 1.0f, d->w, K,
                    dy + (size_t)n * d->O * L, L, 0.0f, d->dcols + (size_t)n * K * L, L);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d->O, K, L, 1.0f,
                    dy + (size_t)n * d->O * L, L, d->cols + (size_t)n * K * L, L, n ? 1.0f : 0.0f,
                    d->dw, K);
    }
    col2im(d, dx);
}

#define CMD "bench conv"
#define MAX_BATCH (1 << 20)
#define MAX_SIZE 46340 /* size^2 (one feature map) fits an int */

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: [mpiexec -n P] rpusim bench conv [--batch 32] [--size 32] [--repeats 3]\n"
        "                                        [--torch] [--python /usr/bin/python3] [--cpu]\n"
        "Times a Conv2d 16->32 3x3 pad 1 training step on batch x 16 x size x size\n"
        "inputs (batch 1..%d, size 1..%d, repeats 1..1000; after one warm-up step, each\n"
        "timed step from the layer's initial weights; the parts of the fastest step are\n"
        "printed); every rank holds all\n"
        "buffers (the memory estimate is per rank). --torch also times PyTorch's Conv2d\n"
        "step of the same shapes (one thread, best of the same repeats) with the given\n"
        "Python (default /usr/bin/python3, which must import torch) and prints each\n"
        "step's ratio to it. --cpu times by CPU time of the process (each rank's; PyTorch's\n"
        "too) instead of wall time, for a machine shared with other work.\n",
        MAX_BATCH, MAX_SIZE);
}

typedef struct {
    int N, HW, repeats;
    bool torch, cpu;
    const char *python;
} conv_opts;

/* Option values; 0 or the exit code. The same on every rank (the same arguments). */
static int parse(int argc, char **argv, conv_opts *o) {
    for (int a = 0; a < argc; ++a) {
        const char *k = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            return -1;
        }
        if (!strcmp(k, "--torch") || !strcmp(k, "--cpu")) {
            *(!strcmp(k, "--torch") ? &o->torch : &o->cpu) = true;
            continue;
        }
        const bool known = !strcmp(k, "--batch") || !strcmp(k, "--size") ||
                           !strcmp(k, "--repeats") || !strcmp(k, "--python");
        if (!known || !v) {
            fprintf(stderr, "rpusim bench conv: %s %s\n",
                    known ? "missing value for" : "unknown option", k);
            usage(stderr);
            return 2;
        }
        ++a;
        if (!strcmp(k, "--python")) {
            if (!*v) {
                fprintf(stderr, "rpusim bench conv: --python: empty path\n");
                return 2;
            }
            o->python = v;
            o->torch = true;
            continue;
        }
        const bool ok = !strcmp(k, "--batch")  ? cli_arg_int(CMD, k, v, 1, MAX_BATCH, &o->N)
                        : !strcmp(k, "--size") ? cli_arg_int(CMD, k, v, 1, MAX_SIZE, &o->HW)
                                               : cli_arg_int(CMD, k, v, 1, 1000, &o->repeats);
        if (!ok) return 2;
    }
    return 0;
}

/* PyTorch's step of the same layer: forward, backward (input and weight gradients), SGD
 * step, one thread; the best of `repeats` after one warm-up step, by wall or CPU time
 * (argument 4). Prints "rpusim-torch MS VERSION". */
static const char torch_script[] =
    "import sys, time\n"
    "import torch\n"
    "torch.set_num_threads(1)\n"
    "n, s, r = (int(a) for a in sys.argv[1:4])\n"
    "torch.manual_seed(0)\n"
    "conv = torch.nn.Conv2d(16, 32, 3, padding=1)\n"
    "x = (torch.rand(n, 16, s, s) * 2 - 1).requires_grad_(True)\n"
    "dy = (torch.rand(n, 32, s, s) * 2 - 1) * 0.01\n"
    "opt = torch.optim.SGD(conv.parameters(), lr=0.1)\n"
    "best = None\n"
    "clock = time.process_time if sys.argv[4] == 'cpu' else time.perf_counter\n"
    "for k in range(r + 1):\n"
    "    t0 = clock()\n"
    "    opt.zero_grad()\n"
    "    conv(x).backward(dy)\n"
    "    opt.step()\n"
    "    t = clock() - t0\n"
    "    if k and (best is None or t < best): best = t\n"
    "print('rpusim-torch %.6f %s' % (best * 1e3, torch.__version__))\n";

/* glibc malloc settings of the PyTorch child where the environment has none: blocks up to
 * 32 MiB (glibc's largest mmap threshold on 64-bit) from the heap, which keeps up to 1 GiB
 * of free memory instead of returning it. */
#define TORCH_MMAP_THRESHOLD "33554432"
#define TORCH_TRIM_THRESHOLD "1073741824"

/* Runs the script above with `python` (a child process, OMP_NUM_THREADS=1 and the malloc
 * settings above); the best step in ms and torch's version, or false with the reason in
 * why. */
static bool time_torch(const char *python, int N, int HW, int repeats, bool cpu, double *ms,
                       char version[64], char *why, size_t wn) {
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(why, wn, "pipe failed");
        return false;
    }
    char a1[16], a2[16], a3[16];
    snprintf(a1, sizeof a1, "%d", N);
    snprintf(a2, sizeof a2, "%d", HW);
    snprintf(a3, sizeof a3, "%d", repeats);
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        snprintf(why, wn, "fork failed");
        return false;
    }
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        dup2(fd[1], STDERR_FILENO);
        close(fd[0]), close(fd[1]);
        setenv("OMP_NUM_THREADS", "1", 1);
        setenv("MKL_NUM_THREADS", "1", 1);
        /* glibc's heap keeps the memory of the step's tensors (unless the user chose): with
         * the defaults each step's multi-MB tensors come from fresh mmap pages, whose faults
         * made PyTorch's step 2-6x slower in most runs here */
        setenv("MALLOC_MMAP_THRESHOLD_", TORCH_MMAP_THRESHOLD, 0);
        setenv("MALLOC_TRIM_THRESHOLD_", TORCH_TRIM_THRESHOLD, 0);
        execl(python, python, "-c", torch_script, a1, a2, a3, cpu ? "cpu" : "wall", (char *)NULL);
        fprintf(stderr, "cannot run %s\n", python);
        _exit(127);
    }
    close(fd[1]);
    char out[4096];
    size_t len = 0;
    ssize_t r;
    while ((r = read(fd[0], out + len, sizeof out - 1 - len)) > 0 && len < sizeof out - 1)
        len += (size_t)r;
    while (r > 0) /* drain the rest */
        r = read(fd[0], (char[256]){0}, 256);
    close(fd[0]);
    out[len] = '\0';
    int status = 0;
    waitpid(pid, &status, 0);
    const char *line = strstr(out, "rpusim-torch ");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !line ||
        sscanf(line, "rpusim-torch %lf %63s", ms, version) != 2) {
        /* the last line of its output says why (e.g. ModuleNotFoundError) */
        while (len > 0 && out[len - 1] == '\n')
            out[--len] = '\0';
        const char *last = strrchr(out, '\n');
        snprintf(why, wn, "%s exited with status %d: %.300s", python,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 len ? (last ? last + 1 : out) : "no output");
        return false;
    }
    return true;
}

static int run(int argc, char **argv) {
    const int C = 16, O = 32;
    conv_opts o = {.N = 32, .HW = 32, .repeats = 3, .torch = false, .python = "/usr/bin/python3"};
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    const int N = o.N, HW = o.HW, repeats = o.repeats;
    timer = o.cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC;
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    /* sizes in size_t with overflow checks; the reductions count elements in an int */
    bool ovf = false;
    const size_t L = (size_t)HW * (size_t)HW, K = (size_t)C * 9;
    const size_t nx = cli_mul((size_t)N * C, L, &ovf);
    const size_t ny = cli_mul((size_t)N * O, L, &ovf);
    const size_t ncols = cli_mul(cli_mul((size_t)N, K, &ovf), L, &ovf);
    if (rank == 0) {
        if (ovf || ny > INT_MAX) {
            fprintf(stderr,
                    "rpusim bench conv: --batch %d --size %d: the output has %d x %d x %d x %d "
                    "= %.0f elements, more than the %d an MPI reduction counts\n",
                    N, HW, N, O, HW, HW, (double)N * O * HW * HW, INT_MAX);
            rc = 2;
        } else {
            /* this benchmark's buffers (x, dx, dy, y, the digital output, im2col columns
             * and their gradient, weights) and the layer's own (its patches, int64
             * partial sums of the output and the input gradient, float copies) */
            cli_budget b = {0, false};
            cli_budget_add(&b, nx, 2 * sizeof(float));
            cli_budget_add(&b, ny, 3 * sizeof(float));
            cli_budget_add(&b, ncols, 2 * sizeof(float));
            cli_budget_add(&b, (size_t)O * K, 2 * sizeof(float));
            cli_budget_add(&b, ncols, sizeof(float));
            cli_budget_add(&b, ny, sizeof(int64_t) + sizeof(float));
            cli_budget_add(&b, nx, sizeof(int64_t) + sizeof(float));
            char what[96];
            snprintf(what, sizeof what, "batch %d of 16x%dx%d, per rank", N, HW, HW);
            rc = cli_budget_check(CMD, what, &b, stdout);
        }
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rc) return rc;
    float *x = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float));
    float *y = malloc(ny * sizeof(float)), *dx = malloc(nx * sizeof(float));
    digital_conv d = {N, C, O, HW, HW, 3, 1, NULL, NULL, NULL, NULL, NULL};
    d.cols = malloc(sizeof(float) * ncols);
    d.dcols = malloc(sizeof(float) * ncols);
    d.w = malloc(sizeof(float) * O * K);
    d.dw = malloc(sizeof(float) * O * K);
    d.y = malloc(sizeof(float) * ny);
    /* every rank or none goes on: a rank alone in the collectives below would hang */
    int have = x && dy && y && dx && d.cols && d.dcols && d.w && d.dw && d.y, all = 0;
    MPI_Allreduce(&have, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all) {
        fprintf(stderr, "rpusim bench conv: out of memory%s\n", have ? " on another rank" : "");
        rc = 1;
        goto out;
    }
    rpu_rng r;
    rpu_rng_init(&r, 9, rpu_stream_id(0, 0, RPU_PURPOSE_TEST));
    for (size_t q = 0; q < nx; ++q)
        x[q] = 2 * rpu_rng_uniform(&r) - 1;
    for (size_t q = 0; q < ny; ++q)
        dy[q] = 0.01f * (2 * rpu_rng_uniform(&r) - 1);
    for (size_t q = 0; q < (size_t)O * K; ++q)
        d.w[q] = 0.1f * (2 * rpu_rng_uniform(&r) - 1);

    double dig = 1e30;
    for (int rep = 0; rep < repeats; ++rep) {
        double t0 = now();
        digital_step(&d, x, dy, dx);
        double s = now() - t0;
        if (s < dig) dig = s;
    }
    if (rank == 0) {
        printf(
            "rpusim bench conv: Conv2d %d->%d 3x3 pad 1 on %dx%dx%dx%d, %d rank(s), OpenBLAS %s\n",
            C, O, N, C, HW, HW, size, openblas_get_corename());
        cli_bench_print_blas_note(stdout, openblas_get_corename());
        printf("one training step (forward + backward + update), best of %d, %s\n", repeats,
               o.cpu ? "CPU time of the process (--cpu)" : "wall time");
        printf("digital im2col + sgemm step: %.1f ms\n", dig * 1e3);
        fflush(stdout);
    }
    /* PyTorch's step, timed by rank 0 while the others wait */
    double torch_ms = 0;
    if (o.torch) {
        char version[64] = "", why[512] = "";
        int ok = 1;
        if (rank == 0) {
            ok = time_torch(o.python, N, HW, repeats, o.cpu, &torch_ms, version, why, sizeof why);
            if (ok) {
                printf("PyTorch %s Conv2d step (torch.nn.Conv2d + SGD, 1 thread%s): %.1f ms\n",
                       version, o.cpu ? ", CPU time" : "", torch_ms);
                const char *mm = getenv("MALLOC_MMAP_THRESHOLD_"),
                           *tr = getenv("MALLOC_TRIM_THRESHOLD_");
                printf("PyTorch's heap: MALLOC_MMAP_THRESHOLD_=%s MALLOC_TRIM_THRESHOLD_=%s%s\n",
                       mm ? mm : TORCH_MMAP_THRESHOLD, tr ? tr : TORCH_TRIM_THRESHOLD,
                       mm && tr   ? " (from the environment)"
                       : mm || tr ? " (one from the environment)"
                                  : "");
            } else {
                fprintf(stderr, "rpusim bench conv: --torch: could not time PyTorch: %s\n", why);
            }
        }
        MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (!ok) {
            rc = 1;
            goto out;
        }
    }
    if (rank == 0) {
        printf("\n%-16s %6s %10s %10s %10s %10s %9s", "config", "tiles", "fwd_ms", "bwd_ms",
               "upd_ms", "step_ms", "/digital");
        printf(o.torch ? " %9s\n" : "\n", "/torch");
    }
    const char *names[] = {"floating_point", "constant_step", "fp_8tiles", "cs_8tiles"};
    int err = 0;
    for (int v = 0; v < 4; ++v) {
        rpu_config cfg;
        rpu_config_default(&cfg, (v % 2) ? RPU_KIND_SINGLE : RPU_KIND_FLOATING_POINT);
        if (v >= 2) {
            cfg.mapping.max_input_size = 36; /* 4 channels of 3x3 per tile */
            cfg.mapping.max_output_size = 16;
        }
        rpu_conv_params p;
        rpu_conv_params_default(&p, 2, C, O, 3);
        p.padding[0] = p.padding[1] = 1;
        p.seed = 1;
        rpu_conv *l = NULL;
        if (rpu_conv_create(MPI_COMM_WORLD, &p, &cfg, &l) != RPU_OK) {
            fprintf(stderr, "rpusim bench conv: %s\n", rpu_last_error());
            rc = 1;
            goto out;
        }
        int in[2] = {HW, HW};
        double best[4] = {1e30, 1e30, 1e30, 1e30};
        /* the initial weights, set back before every step */
        const bool biased = p.bias != RPU_BIAS_NONE;
        float *w0 = malloc(sizeof(float) * (size_t)O * K), *b0 = malloc(sizeof(float) * O);
        if (!w0 || !b0 ||
            rpu_conv_get_weights(l, w0, biased ? b0 : NULL, RPU_READ_EXACT) != RPU_OK) {
            fprintf(stderr, "rpusim bench conv: initial weights: %s\n", rpu_last_error());
            free(w0), free(b0);
            rpu_conv_destroy(&l);
            rc = 1;
            goto out;
        }
        for (int rep = -1; rep < repeats; ++rep) { /* rep -1: warm-up */
            err |= rpu_conv_set_weights(l, w0, biased ? b0 : NULL) != RPU_OK;
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = now();
            err |= rpu_conv_forward(l, x, N, in, y) != RPU_OK;
            double t1 = now();
            err |= rpu_conv_backward(l, dy, dx) != RPU_OK;
            double t2 = now();
            err |= rpu_conv_update(l, 0.1f) != RPU_OK;
            MPI_Barrier(MPI_COMM_WORLD);
            double t3 = now();
            double ts[4] = {t1 - t0, t2 - t1, t3 - t2, t3 - t0};
            MPI_Allreduce(MPI_IN_PLACE, ts, 4, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (rep >= 0 && ts[3] < best[3])
                for (int k = 0; k < 4; ++k)
                    best[k] = ts[k];
        }
        free(w0), free(b0);
        if (rank == 0) {
            printf("%-16s %6d %10.1f %10.1f %10.1f %10.1f %8.2fx", names[v],
                   rpu_conv_grid(l)->n_tiles, best[0] * 1e3, best[1] * 1e3, best[2] * 1e3,
                   best[3] * 1e3, best[3] / dig);
            if (o.torch)
                printf(" %8.2fx\n", best[3] * 1e3 / torch_ms);
            else
                printf("\n");
            fflush(stdout);
        }
        rpu_conv_destroy(&l);
    }
    /* the exact reduction against a plain float Allreduce of the same output tensor */
    {
        int64_t *acc = malloc(sizeof(int64_t) * ny);
        double tf = 1e30, ti = 1e30;
        for (int rep = 0; rep < repeats + 2 && acc; ++rep) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = now();
            MPI_Allreduce(y, dy, (int)ny, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t1 = now();
            const double up = 1099511627776.0; /* 2^40 */
            const float down = 1.0f / 1099511627776.0f;
            for (size_t q = 0; q < ny; ++q)
                acc[q] = (int64_t)llrint((double)y[q] * up);
            MPI_Allreduce(MPI_IN_PLACE, acc, (int)ny, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
            for (size_t q = 0; q < ny; ++q) /* one rounding, as the layer (layer.c) */
                dy[q] = (float)acc[q] * down;
            double t2 = now();
            double ts[2] = {t1 - t0, t2 - t1};
            MPI_Allreduce(MPI_IN_PLACE, ts, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (ts[0] < tf) tf = ts[0];
            if (ts[1] < ti) ti = ts[1];
        }
        free(acc);
        if (rank == 0)
            printf(
                "\nreduction of the %zu-element output: float MPI_Allreduce %.2f ms, exact int64 "
                "(convert, MPI_Allreduce, convert back) %.2f ms\n",
                ny, tf * 1e3, ti * 1e3);
    }
    if (rank == 0) {
        printf("\n/digital: step time over the digital step%s.\n",
               o.torch ? "; /torch: over PyTorch's step, both timed in this run" : "");
        printf("Not measured in this run (issue 15, 2026-12-05, the project's 2-core AMD EPYC\n"
               "development VM, OpenBLAS 0.3.21 with its Haswell kernels, one thread per tool,\n"
               "batch 32, size 32): aihwkit 1.0 CPU 62.7 ms floating_point and 557 ms\n"
               "constant_step with 1 tile, 96.6 ms and 904 ms with 8 tiles; PyTorch 1.13\n"
               "Conv2d 10.6 ms. Use --torch for a ratio measured in this run.\n");
    }
    if (err) {
        fprintf(stderr, "rpusim bench conv: a step failed: %s\n", rpu_last_error());
        rc = 1;
    }
out:
    free(x), free(dy), free(y), free(dx), free(d.cols), free(d.dcols), free(d.w), free(d.dw),
        free(d.y);
    return rc;
}

int cli_bench_conv(int argc, char **argv) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(NULL, NULL);
    int rc = run(argc, argv);
    if (!inited) MPI_Finalize();
    return rc;
}
