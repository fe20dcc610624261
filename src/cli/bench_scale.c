/* rpusim bench scale: a scale model you can check. Under mpiexec -n P it
 *   1. measures on rank 0 alone (the others wait without spinning) the compute of every
 *      layer of the experiment's network on one rank (forward, backward, update), every
 *      tile's MVMs through the tile API, and the cost per element of assembling a reduced
 *      output (the part every rank repeats), and from them the compute of each tile;
 *   2. with --measure-transport, the transport in use: ping-pong between ranks 0 and 1
 *      (latency and bandwidth fitted) and an allreduce sweep, against the model;
 *   3. times real training steps on the P ranks (each bracketed by MPI_Pcontrol(1) / (0),
 *      so a PMPI tool can count exactly a step's calls);
 *   4. predicts, with the alpha-beta + compute model of scale_model.c and the library's
 *      communication plan (rpu_net_comm_plan), the step time on this machine at P (beside
 *      the measurement) and on N ranks of a cluster (nodes x ranks per node, network from
 *      the command line), for a fixed batch (strong scaling) and a batch growing with N
 *      (weak scaling).
 * Output: readable tables on stdout (rank 0), and with --csv every number as CSV. */
#define _POSIX_C_SOURCE 200809L
#include "args.h"
#include "bench.h"
#include "blas_note.h"
#include "scale_model.h"

#include "rpusim/net.h"

#include <cblas.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CMD "bench scale"
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        rpu_status try_s_ = (expr);                                                                \
        if (try_s_ != RPU_OK) return try_s_;                                                       \
    } while (0)
#define MAX_LIST 64
#define MAX_RANKS (1 << 20)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A barrier whose waiting ranks sleep instead of polling, so that rank 0 measures alone on
 * an oversubscribed machine. */
static void idle_barrier(MPI_Comm comm) {
    MPI_Request req;
    MPI_Ibarrier(comm, &req);
    for (int done = 0;;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (done) return;
        const struct timespec ts = {0, 1000000}; /* 1 ms */
        nanosleep(&ts, NULL);
    }
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (reorders v). */
static double median(double *v, int n) {
    if (n < 1) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------------ options */

typedef struct {
    const char *experiment;
    const char *sets[64];
    int n_sets;
    int ranks[MAX_LIST], n_ranks; /* projection rank counts */
    int nodes, per_node, cores;   /* nodes 0: from the list */
    double bw, lat;               /* between nodes */
    double node_bw, node_lat;     /* within a node; 0: measured (shared memory) or defaults */
    bool measure_transport;
    int steps, warmup;
    int profile_batch; /* 0: the run's batch */
    const char *csv;
} options;

static void usage(FILE *f) {
    fprintf(
        f, "usage: [mpiexec -n P] rpusim bench scale EXPERIMENT [--set key=value ...]\n"
           "       [--ranks LIST] [--nodes N] [--ranks-per-node R] [--cores-per-node C]\n"
           "       [--bandwidth 100Gb/s] [--latency 1us] [--node-bandwidth BW] [--node-latency T]\n"
           "       [--measure-transport] [--steps 5] [--warmup 1] [--profile-batch B]\n"
           "       [--csv FILE]\n"
           "\n"
           "Measures the experiment's network here (compute of every layer and tile on one\n"
           "rank; with --measure-transport the latency and bandwidth of the MPI transport in\n"
           "use; the step time on the P ranks of this run) and predicts the training step\n"
           "time and parallel efficiency on N ranks with an alpha-beta + compute model\n"
           "whose byte counts come from the library's communication plan.\n"
           "\n"
           "  --set key=value      experiment override (as rpusim train), e.g. run.batch_size=64\n"
           "  --ranks LIST         rank counts to predict (default 1,2,4,...,4096)\n"
           "  --nodes N            predict N x ranks-per-node ranks only\n"
           "  --ranks-per-node R   ranks per node of the predicted cluster (default 32)\n"
           "  --cores-per-node C   cores per node (default R: one core per rank)\n"
           "  --bandwidth BW       network between nodes, e.g. 100Gb/s (default), 12.5GB/s\n"
           "  --latency T          network latency per message, e.g. 1us (default)\n"
           "  --node-bandwidth BW, --node-latency T\n"
           "                       within a node (default: measured when --measure-transport\n"
           "                       ran over shared memory, else 10GB/s and 0.5us)\n"
           "  --measure-transport  ping-pong and allreduce sweep (needs P >= 2)\n"
           "  --steps S            timed steps (median; default 5), after --warmup W (1)\n"
           "  --profile-batch B    batch of the one-rank measurement (default: the run's);\n"
           "                       the model scales compute linearly with the batch\n"
           "  --csv FILE           every number as CSV (record types: see the README)\n");
}

static int parse(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    for (int k = 0; k <= 12; ++k)
        o->ranks[o->n_ranks++] = 1 << k;
    o->per_node = 32;
    o->bw = 100e9 / 8;
    o->lat = 1e-6;
    o->steps = 5;
    o->warmup = 1;
    for (int a = 0; a < argc; ++a) {
        const char *k = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            return -1;
        }
        if (!strcmp(k, "--measure-transport")) {
            o->measure_transport = true;
            continue;
        }
        if (k[0] != '-') {
            if (o->experiment) {
                fprintf(stderr, "rpusim %s: more than one experiment ('%s', '%s')\n", CMD,
                        o->experiment, k);
                return 2;
            }
            o->experiment = k;
            continue;
        }
        static const char *const with_value[] = {"--set",
                                                 "--ranks",
                                                 "--nodes",
                                                 "--ranks-per-node",
                                                 "--cores-per-node",
                                                 "--bandwidth",
                                                 "--latency",
                                                 "--node-bandwidth",
                                                 "--node-latency",
                                                 "--steps",
                                                 "--warmup",
                                                 "--profile-batch",
                                                 "--csv",
                                                 NULL};
        bool known = false;
        for (int q = 0; with_value[q]; ++q)
            known |= !strcmp(k, with_value[q]);
        if (!known) {
            fprintf(stderr, "rpusim %s: unknown option '%s' (try: rpusim bench scale --help)\n",
                    CMD, k);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "rpusim %s: missing value for %s\n", CMD, k);
            return 2;
        }
        ++a;
        bool ok = true;
        const char *fault = NULL;
        if (!strcmp(k, "--set")) {
            if (o->n_sets == 64) {
                fprintf(stderr, "rpusim %s: more than 64 --set options\n", CMD);
                return 2;
            }
            o->sets[o->n_sets++] = v;
        } else if (!strcmp(k, "--ranks")) {
            o->n_ranks = cli_arg_int_list(CMD, k, v, 1, MAX_RANKS, o->ranks, MAX_LIST);
            ok = o->n_ranks > 0;
        } else if (!strcmp(k, "--nodes")) {
            ok = cli_arg_int(CMD, k, v, 1, MAX_RANKS, &o->nodes);
        } else if (!strcmp(k, "--ranks-per-node")) {
            ok = cli_arg_int(CMD, k, v, 1, 4096, &o->per_node);
        } else if (!strcmp(k, "--cores-per-node")) {
            ok = cli_arg_int(CMD, k, v, 1, 4096, &o->cores);
        } else if (!strcmp(k, "--steps")) {
            ok = cli_arg_int(CMD, k, v, 1, 10000, &o->steps);
        } else if (!strcmp(k, "--warmup")) {
            ok = cli_arg_int(CMD, k, v, 0, 10000, &o->warmup);
        } else if (!strcmp(k, "--profile-batch")) {
            ok = cli_arg_int(CMD, k, v, 1, 1 << 20, &o->profile_batch);
        } else if (!strcmp(k, "--csv")) {
            o->csv = v;
        } else if (!strcmp(k, "--bandwidth") || !strcmp(k, "--node-bandwidth")) {
            fault = sm_parse_bandwidth(v, k[2] == 'b' ? &o->bw : &o->node_bw);
        } else {
            fault = sm_parse_latency(v, k[2] == 'l' ? &o->lat : &o->node_lat);
        }
        if (fault) {
            fprintf(stderr, "rpusim %s: %s '%s': %s\n", CMD, k, v, fault);
            return 2;
        }
        if (!ok) return 2;
    }
    if (!o->experiment) {
        fprintf(stderr, "rpusim %s: no experiment file given\n", CMD);
        usage(stderr);
        return 2;
    }
    if (!o->cores) o->cores = o->per_node;
    if (o->nodes) {
        if ((long long)o->nodes * o->per_node > MAX_RANKS) {
            fprintf(stderr, "rpusim %s: --nodes %d x --ranks-per-node %d is more than %d ranks\n",
                    CMD, o->nodes, o->per_node, MAX_RANKS);
            return 2;
        }
        o->ranks[0] = o->nodes * o->per_node;
        o->n_ranks = 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the run's state */

#define N_PH 3 /* forward, backward, update */
static const char *const phase_names[N_PH] = {"forward", "backward", "update"};
#define N_PP 7 /* ping-pong sizes */
#define N_AR 8 /* allreduce sizes */

typedef struct {
    int rank, size;
    options o;
    rpu_experiment *exp;
    rpu_dataset train, test;
    float *x;
    uint8_t *y;
    int n, n0;     /* samples per step on P ranks, in the one-rank profile */
    rpu_net *net1; /* rank 0: the network on one rank (MPI_COMM_SELF) */
    int L;         /* layers */
    rpu_net_layer *info;
    double *t1, *tP; /* [L * N_PH] median seconds: one rank, P ranks (slowest) */
    double step1, stepP, loss1, lossP;
    double other1;    /* median over the one-rank steps of step - its layers */
    double cores_eff; /* cores' worth of CPU the P ranks got together (probe) */
    /* per round (after the warmup) of measure(): [steps][W] rows of timed_step (one rank,
     * P ranks), the probe alone and together */
    double *v1, *vP, *pa, *pc;
    double kappa[2]; /* replicated assembly, seconds per element: float, int64 */
    double **api;    /* [L * 2] tile API forward / backward seconds per tile */
    double **urep;   /* [L] per tile: the replicated fraction of a row-split update */
    bool have_link;  /* transport measured */
    sm_link link;    /* measured: ping-pong fit */
    sm_link arfit;   /* measured: allreduce sweep fit on the P ranks */
    double late;     /* measured: mean time in an 8-byte allreduce of the rank arriving last */
    double pp[N_PP]; /* one-way seconds per ping-pong size */
    double ar[N_AR]; /* allreduce seconds per size (slowest rank) */
    sm_profile prof;
} run_state;

static const int pp_bytes[N_PP] = {8, 64, 512, 4096, 32768, 262144, 2097152};
static const int ar_count[N_AR] = {1, 8, 64, 512, 4096, 32768, 262144, 1048576}; /* int64 */

/* One training step; mark: bracketed by MPI_Pcontrol(1) / (0) for PMPI tools
 * (mpi_tests/pmpi_count.c counts exactly the calls in between). */
static rpu_status one_step(rpu_net *net, const float *x, const uint8_t *y, int n, bool mark) {
    double loss = 0;
    int correct = 0;
    if (mark) MPI_Pcontrol(1);
    rpu_status s = rpu_net_forward(net, x, n, NULL);
    if (s == RPU_OK) s = rpu_net_backward(net, y, &loss, &correct);
    if (s == RPU_OK) s = rpu_net_update(net, 0.01f);
    if (mark) MPI_Pcontrol(0);
    return s;
}

/* One profiled training step of net: row[l * N_PH + f] the seconds of layer l in phase f,
 * row[L * N_PH] the step, row[L * N_PH + 1] the loss, row[L * N_PH + 2] the step less its
 * layers. */
static rpu_status timed_step(rpu_net *net, const float *x, const uint8_t *y, int n, bool mark,
                             double *row) {
    const int L = rpu_net_layer_count(net);
    rpu_net_set_profiling(net, true);
    const double t0 = now();
    rpu_status s = one_step(net, x, y, n, mark);
    row[L * N_PH] = now() - t0;
    row[L * N_PH + 1] = rpu_net_loss_seconds(net);
    row[L * N_PH + 2] = row[L * N_PH];
    for (int l = 0; l < L; ++l) {
        rpu_net_layer info;
        rpu_net_layer_info(net, l, &info);
        for (int f = 0; f < N_PH; ++f) {
            row[l * N_PH + f] = info.seconds[f];
            row[L * N_PH + 2] -= info.seconds[f];
        }
    }
    rpu_net_set_profiling(net, false);
    return s;
}

#define PROBE_M 256
/* A fixed amount of compute (40 single-precision GEMMs of 256^3, 1.3 GFLOP, some 20 ms:
 * longer than a scheduler's time slice): the probe of how much CPU the ranks get. */
static void probe_kernel(float *a) {
    const int m = PROBE_M;
    for (int r = 0; r < 40; ++r)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0f, a, m, a + m * m, m,
                    0.0f, a + 2 * m * m, m);
}

/* The measurement, interleaved so that every part sees the same load of the machine: for
 * each of warmup + steps rounds, (1) rank 0 alone (the others wait idle) runs a profiled
 * step of the one-rank network st->net1 on st->n0 samples, (2) the CPU probe runs on rank
 * 0 alone and then on all ranks at once, (3) all ranks run a profiled step of net (on P
 * ranks) on st->n samples, marked with MPI_Pcontrol. Medians over the rounds after the
 * warmup: st->t1 / step1 / loss1 / other1 (one rank), st->tP / stepP / lossP (the slowest rank of
 * each step), st->cores_eff = P x probe alone / probe together (at least 1, at most P):
 * the cores' worth of CPU the P ranks get when all compute. */
static rpu_status measure(run_state *st, rpu_net *net) {
    const int L = st->L, S = st->o.steps, W = L * N_PH + 3, P = st->size;
    double *v1 = calloc((size_t)S * W, sizeof *v1), *vP = calloc((size_t)S * W, sizeof *vP);
    double *row = calloc((size_t)W, sizeof *row), *col = calloc((size_t)S * 2 + 2, sizeof *col);
    double *pa = calloc((size_t)S, sizeof *pa), *pc = calloc((size_t)S, sizeof *pc);
    float *probe = calloc((size_t)3 * PROBE_M * PROBE_M, sizeof *probe);
    int bad = !(v1 && vP && row && col && pa && pc && probe);
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    rpu_status s = bad ? RPU_ERR_NOMEM : RPU_OK;
    for (int k = 0; k < st->o.warmup + S && s == RPU_OK; ++k) {
        const int keep = k - st->o.warmup;
        if (st->rank == 0) {
            s = timed_step(st->net1, st->x, st->y, st->n0, false, row);
            if (keep >= 0) memcpy(v1 + (size_t)keep * W, row, sizeof *row * (size_t)W);
        }
        idle_barrier(MPI_COMM_WORLD);
        bad = s != RPU_OK;
        MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (bad) {
            if (s == RPU_OK) s = RPU_ERR_MPI;
            break;
        }
        /* the probe: alone on rank 0, then on all ranks from one barrier to the last one's
         * end (CLOCK_MONOTONIC is one clock for the processes of a machine) */
        double alone = now();
        if (st->rank == 0) probe_kernel(probe);
        alone = now() - alone;
        idle_barrier(MPI_COMM_WORLD);
        MPI_Barrier(MPI_COMM_WORLD);
        double span[2] = {-now(), 0};
        probe_kernel(probe);
        span[1] = now();
        MPI_Allreduce(MPI_IN_PLACE, span, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (keep >= 0) pa[keep] = alone, pc[keep] = span[1] + span[0];
        MPI_Barrier(MPI_COMM_WORLD);
        s = timed_step(net, st->x, st->y, st->n, true, row);
        MPI_Allreduce(MPI_IN_PLACE, row, W, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (keep >= 0) memcpy(vP + (size_t)keep * W, row, sizeof *row * (size_t)W);
    }
    for (int c = 0; c < W && s == RPU_OK; ++c) {
        for (int q = 0; q < 2; ++q) {
            const double *v = q ? vP : v1;
            for (int k = 0; k < S; ++k)
                col[k] = v[(size_t)k * W + c];
            const double m = median(col, S);
            if (c < L * N_PH)
                (q ? st->tP : st->t1)[c] = m;
            else if (c == L * N_PH)
                *(q ? &st->stepP : &st->step1) = m;
            else if (c == L * N_PH + 1)
                *(q ? &st->lossP : &st->loss1) = m;
            else if (!q)
                st->other1 = m;
        }
    }
    if (s == RPU_OK) {
        const double a = median(pa, S), t = median(pc, S);
        st->cores_eff = t > 0 ? P * a / t : P;
        if (st->cores_eff > P) st->cores_eff = P;
        if (st->cores_eff < 1) st->cores_eff = 1;
    }
    st->v1 = v1, st->vP = vP, st->pa = pa, st->pc = pc; /* for paired_ratios */
    free(row), free(col), free(probe);
    return s;
}

/* Seconds per element of what every rank repeats after a reduction in layer.c: zeroing the
 * full buffer and converting the reduced values back (int64 partial sums to float plus the
 * bias), or adding to floats. k[0]: float path, k[1]: int64 path. Median of 5 over 1M
 * elements. */
static void time_kappa(double k[2]) {
    const size_t E = (size_t)1 << 20;
    int64_t *acc = malloc(sizeof *acc * E);
    float *y = malloc(sizeof *y * E);
    k[0] = k[1] = 0;
    if (acc && y) {
        volatile float sink = 0;
        double tf[5], ti[5];
        for (int r = 0; r < 5; ++r) {
            double t0 = now();
            memset(y, 0, sizeof *y * E);
            for (size_t q = 0; q < E; ++q)
                y[q] += 0.5f;
            sink += y[E / 2];
            tf[r] = now() - t0;
            t0 = now();
            memset(acc, 0, sizeof *acc * E);
            for (size_t q = 0; q < E; ++q)
                y[q] = (float)acc[q] * 0x1p-40f + 0.5f;
            sink += y[E / 3];
            ti[r] = now() - t0;
        }
        (void)sink;
        k[0] = median(tf, 5) / (double)E;
        k[1] = median(ti, 5) / (double)E;
    }
    free(acc), free(y);
}

/* Inputs X [nx] uniform in [-1, 1] and gradients D [ny] in [-0.01, 0.01] from seed. */
static void random_io(float *X, size_t nx, float *D, size_t ny, uint64_t seed) {
    rpu_rng r;
    rpu_rng_init(&r, seed, rpu_stream_id(0, 0, RPU_PURPOSE_TEST));
    rpu_rng_uniform_fill(&r, X, nx);
    rpu_rng_uniform_fill(&r, D, ny);
    for (size_t q = 0; q < nx; ++q)
        X[q] = 2 * X[q] - 1;
    for (size_t q = 0; q < ny; ++q)
        D[q] = 0.02f * D[q] - 0.01f;
}

/* Tile API forward and backward seconds of a rows x cols tile on M vectors (median of 3;
 * inputs uniform in [-1, 1], gradients in [-0.01, 0.01]). */
static rpu_status time_tile(rpu_tile *tile, int rows, int cols, int M, double *fwd, double *bwd) {
    const size_t nx = (size_t)M * cols, ny = (size_t)M * rows;
    float *X = malloc(sizeof(float) * nx), *DX = malloc(sizeof(float) * nx);
    float *Y = malloc(sizeof(float) * ny), *D = malloc(sizeof(float) * ny);
    rpu_status s = X && DX && Y && D ? RPU_OK : RPU_ERR_NOMEM;
    if (s == RPU_OK) random_io(X, nx, D, ny, 11);
    double f[3] = {0}, b[3] = {0};
    for (int k = 0; k < 3 && s == RPU_OK; ++k) {
        double t0 = now();
        s = rpu_tile_forward(tile, X, M, Y, RPU_MODE_TRAIN);
        f[k] = now() - t0;
        t0 = now();
        if (s == RPU_OK) s = rpu_tile_backward(tile, D, M, DX);
        b[k] = now() - t0;
    }
    *fwd = median(f, 3);
    *bwd = median(b, 3);
    free(X), free(DX), free(Y), free(D);
    return s;
}

/* The fraction of a row-split pulsed update that every row slice repeats (the pulse trains
 * of the columns, each vector's preparation): the update of all rows and of the first
 * block of B rows (rpu_tile_update_rows) of a new rows x cols tile of configuration cfg on
 * M vectors (inputs as time_tile's, lr 0.01; median of 3 each), fitted to t(r) = F + r g;
 * F / t(rows), in [0, 1]. 0 when the tile has at most B rows. */
static rpu_status time_update_split(const rpu_config *cfg, int rows, int cols, int M, int B,
                                    double *frac) {
    *frac = 0;
    if (rows <= B) return RPU_OK;
    rpu_tile_params p = {.out_size = rows, .in_size = cols, .seed = 3, .mac = RPU_MAC_BLAS};
    rpu_tile *tile = NULL;
    rpu_status s = rpu_tile_create(&p, cfg, &tile);
    const size_t nx = (size_t)M * cols, ny = (size_t)M * rows;
    float *X = malloc(sizeof(float) * nx), *D = malloc(sizeof(float) * ny);
    if (s == RPU_OK && (!X || !D)) s = RPU_ERR_NOMEM;
    if (s == RPU_OK) random_io(X, nx, D, ny, 13);
    double all[3] = {0}, part[3] = {0};
    for (int k = 0; k < 3 && s == RPU_OK; ++k) {
        double t0 = now();
        s = rpu_tile_update(tile, X, D, M, 0.01f);
        all[k] = now() - t0;
        t0 = now();
        if (s == RPU_OK) s = rpu_tile_update_rows(tile, X, D, M, 0.01f, 0, B);
        part[k] = now() - t0;
    }
    if (s == RPU_OK) {
        const double ta = median(all, 3), tb = median(part, 3);
        const double g = (ta - tb) / (rows - B), F = ta - rows * g;
        *frac = ta > 0 ? F / ta : 0;
        *frac = *frac < 0 ? 0 : (*frac > 1 ? 1 : *frac);
    }
    rpu_tile_destroy(&tile);
    free(X), free(D);
    return s;
}

static long long spatial(int nd, const int *sp) {
    long long n = 1;
    for (int a = 0; a < nd; ++a)
        n *= sp[a];
    return n;
}

/* The tile API times of every tile of the analog layers of st->net1 (tiles of one shape
 * timed once). */
static rpu_status time_tiles(run_state *st) {
    for (int l = 0; l < st->L; ++l) {
        const rpu_net_layer *li = &st->info[l];
        if (!li->conv) continue;
        const rpu_tile_grid *g = rpu_conv_grid(li->conv);
        double *f = calloc((size_t)g->n_tiles, sizeof *f),
               *b = calloc((size_t)g->n_tiles, sizeof *b),
               *u = calloc((size_t)g->n_tiles, sizeof *u);
        st->api[2 * l] = f, st->api[2 * l + 1] = b, st->urep[l] = u;
        if (!f || !b || !u) return RPU_ERR_NOMEM;
        const rpu_tile *t0 = rpu_conv_tile(li->conv, 0);
        const bool split = t0 && rpu_tile_update_row_splittable(t0) && !rpu_tile_update_summable(t0);
        const long long M = (long long)st->n0 * spatial(li->out_nd, li->out_sp);
        if (M > 1 << 30) return RPU_ERR_ARG;
        for (int t = 0; t < g->n_tiles; ++t) {
            const rpu_tile_slot *ts = &g->tiles[t];
            int same = -1;
            for (int u = 0; u < t && same < 0; ++u)
                if (g->tiles[u].rows == ts->rows && g->tiles[u].cols == ts->cols) same = u;
            if (same >= 0) {
                f[t] = f[same], b[t] = b[same], u[t] = u[same];
                continue;
            }
            TRY(time_tile(rpu_conv_tile(li->conv, t), ts->rows, ts->cols, (int)M, &f[t], &b[t]));
            if (split)
                TRY(time_update_split(rpu_conv_config(li->conv), ts->rows, ts->cols, (int)M,
                                      rpu_tile_update_row_block(t0), &u[t]));
        }
    }
    return RPU_OK;
}

/* The model's view of layer l (st->prof.layers[l]) from the one-rank measurement: the
 * replicated part F = kappa x the elements of the layer's reductions (its plan at one
 * rank: what every rank assembles after the reduction); each tile's forward and backward =
 * its tile API time plus the rest of the layer's time shared by cells (the patch
 * gathering and conversions that go with the tile; when the tile API times exceed the
 * rest, the rest shared in their proportion); the update shared by cells. A digital layer
 * is replicated. */
static rpu_status profile_layer(run_state *st, int l) {
    const rpu_net_layer *li = &st->info[l];
    sm_layer *S = &st->prof.layers[l];
    S->name = li->name;
    S->type = li->type;
    for (int f = 0; f < N_PH; ++f)
        S->t1[f] = st->t1[l * N_PH + f];
    if (!li->conv) {
        for (int f = 0; f < N_PH; ++f)
            S->fixed[f] = S->t1[f];
        return RPU_OK;
    }
    S->p = rpu_conv_get_params(li->conv);
    S->cfg = rpu_conv_config(li->conv);
    S->input_grad = li->input_grad;
    memcpy(S->in_size, li->in_sp, sizeof S->in_size);
    const rpu_tile_grid *g = rpu_conv_grid(li->conv);
    S->n_tiles = g->n_tiles;
    for (int f = 0; f < N_PH; ++f)
        if (!S->tile[f] && !(S->tile[f] = calloc((size_t)g->n_tiles, sizeof(double))))
            return RPU_ERR_NOMEM;
    for (int f = 0; f < 2; ++f)
        if (!S->mvm[f] && !(S->mvm[f] = calloc((size_t)g->n_tiles, sizeof(double))))
            return RPU_ERR_NOMEM;
    /* how the holders of a tile would split it (rank 0 holds every tile of net1) */
    const rpu_tile *t0 = rpu_conv_tile(li->conv, 0);
    S->batch_split = t0 && rpu_tile_batch_splittable(t0);
    S->summable = t0 && rpu_tile_update_summable(t0);
    S->row_update = t0 && rpu_tile_update_row_splittable(t0);
    S->row_block = rpu_tile_update_row_block(t0);
    S->upd_rep = st->urep[l];
    S->lout = (int)spatial(li->out_nd, li->out_sp);
    int n = 0;
    TRY(rpu_conv_comm_plan(S->p, S->cfg, st->n0, li->in_sp, li->input_grad, 1, 0, NULL, 0, &n));
    rpu_comm_call *calls = calloc((size_t)n + 1, sizeof *calls);
    if (!calls) return RPU_ERR_NOMEM;
    rpu_status s =
        rpu_conv_comm_plan(S->p, S->cfg, st->n0, li->in_sp, li->input_grad, 1, 0, calls, n, &n);
    const double cells = (double)rpu_tile_grid_cells(g);
    for (int f = 0; f < 2 && s == RPU_OK; ++f) {
        double E[2] = {0, 0};
        for (int q = 0; q < n; ++q)
            if ((int)calls[q].phase == f) E[calls[q].type_bytes == 8] += (double)calls[q].count;
        S->fixed[f] = st->kappa[0] * E[0] + st->kappa[1] * E[1];
        if (S->fixed[f] > S->t1[f]) S->fixed[f] = S->t1[f];
        const double rest = S->t1[f] - S->fixed[f], *api = st->api[2 * l + f];
        double api_sum = 0;
        for (int t = 0; t < g->n_tiles; ++t)
            api_sum += api[t];
        for (int t = 0; t < g->n_tiles; ++t) {
            const double share = (double)rpu_tile_work(&g->tiles[t]) / cells;
            S->tile[f][t] =
                api_sum <= rest ? api[t] + (rest - api_sum) * share : rest * api[t] / api_sum;
            S->mvm[f][t] = api_sum <= rest ? api[t] : S->tile[f][t];
        }
    }
    S->fixed[RPU_PHASE_UPDATE] = 0; /* the digital bias step is a few values */
    for (int t = 0; t < g->n_tiles; ++t)
        S->tile[RPU_PHASE_UPDATE][t] =
            S->t1[RPU_PHASE_UPDATE] * (double)rpu_tile_work(&g->tiles[t]) / cells;
    free(calls);
    return s;
}

/* ------------------------------------------------------------------ transport */

/* Ping-pong between ranks 0 and 1 (one-way seconds per size, best of 5 trials, into st->pp
 * on rank 0), the other ranks waiting idle; fit: alpha = the 8-byte time, 1/beta =
 * least-squares slope of (t - alpha) against the bytes of the sizes from 32 KiB. Then an
 * allreduce sweep of int64 on all ranks (the slowest rank's mean per call into st->ar:
 * what an allreduce costs under the machine's present load). */
static void measure_transport(run_state *st) {
    /* (the sweep also gets a fit of its own, st->arfit: t = a + bytes / b) */
    char *buf = calloc((size_t)8 * ar_count[N_AR - 1], 1);
    int ok = buf != NULL;
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!ok) {
        free(buf);
        return;
    }
    if (st->rank < 2) {
        const int peer = 1 - st->rank;
        for (int k = 0; k < N_PP; ++k) {
            const int B = pp_bytes[k], reps = B <= 4096 ? 100 : B <= 262144 ? 20 : 4;
            st->pp[k] = 1e30;
            for (int trial = 0; trial < 5; ++trial) { /* best of 5: the link, not the load */
                double t0 = 0;
                for (int r = -2; r < reps; ++r) {
                    if (r == 0) t0 = now();
                    if (st->rank == 0) {
                        MPI_Send(buf, B, MPI_BYTE, peer, 7, MPI_COMM_WORLD);
                        MPI_Recv(buf, B, MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                    } else {
                        MPI_Recv(buf, B, MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                        MPI_Send(buf, B, MPI_BYTE, peer, 7, MPI_COMM_WORLD);
                    }
                }
                const double t = (now() - t0) / reps / 2;
                if (t < st->pp[k]) st->pp[k] = t;
            }
        }
    }
    idle_barrier(MPI_COMM_WORLD);
    if (st->rank == 0) {
        double num = 0, den = 0;
        st->link.alpha = st->pp[0];
        for (int k = 0; k < N_PP; ++k)
            if (pp_bytes[k] >= 32768) {
                num += (double)pp_bytes[k] * (st->pp[k] - st->link.alpha);
                den += (double)pp_bytes[k] * pp_bytes[k];
            }
        st->link.beta = num > 0 ? den / num : 1e12;
    }
    MPI_Bcast(&st->link, 2, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    int64_t *v = (int64_t *)buf;
    for (int k = 0; k < N_AR; ++k) {
        const int c = ar_count[k], reps = c <= 512 ? 200 : c <= 32768 ? 30 : 6;
        for (int r = 0; r < 3; ++r)
            MPI_Allreduce(MPI_IN_PLACE, v, c, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = now();
        for (int r = 0; r < reps; ++r)
            MPI_Allreduce(MPI_IN_PLACE, v, c, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        double t = (now() - t0) / reps;
        MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        st->ar[k] = t;
    }
    /* t = a + B / b by least squares in relative error (weights 1 / t): linear in a, 1/b */
    double s00 = 0, s01 = 0, s11 = 0, r0 = 0, r1 = 0;
    for (int k = 0; k < N_AR; ++k) {
        const double B = 8.0 * ar_count[k], w = 1.0 / (st->ar[k] * st->ar[k]);
        s00 += w, s01 += w * B, s11 += w * B * B, r0 += w * st->ar[k], r1 += w * B * st->ar[k];
    }
    const double det = s00 * s11 - s01 * s01;
    double a = det != 0 ? (r0 * s11 - r1 * s01) / det : st->ar[0];
    double inv_b = det != 0 ? (s00 * r1 - s01 * r0) / det : 0;
    if (a < 0) a = 0;
    st->arfit.alpha = a;
    st->arfit.beta = inv_b > 0 ? 1.0 / inv_b : 1e12;
    /* the latency a reduction has in a step: one rank arrives 2 ms after the others (busy,
     * in turn), and its time inside the allreduce is what the step waits on top of the
     * imbalance. Back to back (the sweep) every rank is already polling; after an
     * imbalance the others may have yielded their core, which costs time to get back on an
     * oversubscribed or loaded machine. */
    double late[2] = {0, 0};
    for (int k = 0; k < 10 * st->size; ++k) {
        MPI_Barrier(MPI_COMM_WORLD);
        if (st->rank == k % st->size) {
            const double t0 = now();
            while (now() - t0 < 2e-3) {
            }
            const double t1 = now();
            MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
            late[0] += now() - t1, late[1] += 1;
        } else {
            MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, late, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    st->late = late[0] / late[1];
    st->have_link = true;
    free(buf);
}

/* The transport Open MPI was told to use (mpiexec --mca btl ... sets OMPI_MCA_btl). */
static const char *transport_name(void) {
    const char *b = getenv("OMPI_MCA_btl");
    return b && *b ? b : "default (shared memory on one node)";
}

static bool transport_is_tcp(void) {
    const char *b = getenv("OMPI_MCA_btl");
    return b && strstr(b, "tcp") && !strstr(b, "vader") && !strstr(b, "sm");
}

/* ------------------------------------------------------------------ report */

/* The link within a node for predictions: --node-latency / --node-bandwidth, else the
 * measured transport when it was shared memory, else 0.5 us and 10 GB/s (an assumption,
 * printed). */
static sm_link node_link(const run_state *st, const char **source) {
    sm_link k = {0.5e-6, 10e9};
    *source = "assumed";
    if (st->have_link && !transport_is_tcp()) {
        k = st->link;
        *source = "measured here";
    }
    if (st->o.node_lat > 0) k.alpha = st->o.node_lat, *source = "given";
    if (st->o.node_bw > 0) k.beta = st->o.node_bw, *source = "given";
    return k;
}

/* This machine for the run's P ranks: one node with the cores' worth of CPU the ranks got
 * (the probe of measure(): on an idle machine min(P, cores), less when others load it);
 * the link is the measured transport (whatever it was), else as node_link; fitted: the
 * allreduces on P ranks cost what the fit to the measured sweep says, with the latency of
 * an allreduce entered late (the larger of the two). */
static sm_machine here(const run_state *st, bool fitted) {
    const char *src;
    sm_machine m = {st->size, st->cores_eff, node_link(st, &src), {0, 1}, 0, {0, 1}};
    if (st->have_link) m.node = st->link;
    m.net = m.node;
    if (fitted && st->have_link) {
        m.fit_group = st->size, m.fit = st->arfit;
        if (st->late > m.fit.alpha) m.fit.alpha = st->late; /* what a step's reduction waits */
    }
    return m;
}

static rpu_status build_profile(run_state *st);

/* The model against the measurement round by round (a paired comparison, robust to a
 * machine whose load changes between rounds): for each round k the profile built from
 * that round's one-rank step and the cores' worth of its probe predicts that round's step
 * on the P ranks; ratio[k] = model / measured. Restores the median profile after. */
static rpu_status paired_ratios(run_state *st, double *ratio) {
    const int L = st->L, W = L * N_PH + 3, S = st->o.steps, P = st->size;
    double *keep = malloc(sizeof *keep * (size_t)L * N_PH);
    if (!keep) return RPU_ERR_NOMEM;
    memcpy(keep, st->t1, sizeof *keep * (size_t)L * N_PH);
    const double keep_other = st->other1, keep_cores = st->cores_eff;
    rpu_status s = RPU_OK;
    for (int k = 0; k < S && s == RPU_OK; ++k) {
        const double *row = st->v1 + (size_t)k * W;
        memcpy(st->t1, row, sizeof *keep * (size_t)L * N_PH);
        st->other1 = row[L * N_PH + 2];
        st->cores_eff = st->pc[k] > 0 ? P * st->pa[k] / st->pc[k] : P;
        st->cores_eff = st->cores_eff > P ? P : st->cores_eff < 1 ? 1 : st->cores_eff;
        s = build_profile(st);
        const sm_machine m = here(st, true);
        sm_result r;
        if (s == RPU_OK) s = sm_predict(&st->prof, &m, P, st->n, &r, NULL);
        const double meas = st->vP[(size_t)k * W + L * N_PH];
        ratio[k] = s == RPU_OK && meas > 0 ? r.step / meas : 0;
    }
    memcpy(st->t1, keep, sizeof *keep * (size_t)L * N_PH);
    st->other1 = keep_other, st->cores_eff = keep_cores;
    free(keep);
    if (s == RPU_OK) s = build_profile(st);
    return s;
}

static void report(run_state *st) {
    const options *o = &st->o;
    const int L = st->L, P = st->size;
    FILE *csv = NULL;
    if (o->csv && !(csv = fopen(o->csv, "w")))
        fprintf(stderr, "rpusim %s: cannot write %s\n", CMD, o->csv);
    const sm_machine mh = here(st, true), mf = here(st, false);
    const char *nsrc;
    const sm_link nl = node_link(st, &nsrc);
    const sm_machine mc = {o->per_node, o->cores, nl, {o->lat, o->bw}, 0, {0, 1}};
    double *lp = calloc((size_t)L * N_PH, sizeof *lp);
    sm_result rh, rf;
    rpu_status s = sm_predict(&st->prof, &mh, P, st->n, &rh, lp);
    if (s == RPU_OK) s = sm_predict(&st->prof, &mf, P, st->n, &rf, NULL);
    int analog = 0, tiles = 0;
    for (int l = 0; l < L; ++l)
        if (st->info[l].conv) ++analog, tiles += rpu_conv_grid(st->info[l].conv)->n_tiles;

    printf("rpusim bench scale: %s, %d rank%s, transport %s\n", o->experiment, P, P == 1 ? "" : "s",
           transport_name());
    printf("network: %d layers (%d analog, %d tiles); batch %d per step, one-rank profile at "
           "batch %d; OpenBLAS %s\n",
           L, analog, tiles, st->n, st->n0, openblas_get_corename());
    cli_bench_print_blas_note(stdout, openblas_get_corename());
    printf("CPU: %ld cores online; the %d rank%s got %.2f cores' worth together (probe)\n",
           sysconf(_SC_NPROCESSORS_ONLN), P, P == 1 ? "" : "s", st->cores_eff);
    printf("\none rank, median of %d steps (ms); replicated: the part every rank repeats; "
           "calls and payload per step on %d ranks (communication plan):\n",
           o->steps, P);
    printf("  %-10s %-8s %5s %9s %9s %9s %9s %9s %6s %13s\n", "layer", "type", "tiles", "fwd",
           "bwd", "upd", "repl_fwd", "repl_bwd", "calls", "payload_B");
    if (csv)
        fprintf(csv, "#layer,index,name,type,tiles,t1_fwd_s,t1_bwd_s,t1_upd_s,repl_fwd_s,"
                     "repl_bwd_s,measured_fwd_s,measured_bwd_s,measured_upd_s,predicted_fwd_s,"
                     "predicted_bwd_s,predicted_upd_s,calls,payload_bytes\n");
    double sum1 = 0;
    for (int l = 0; l < L; ++l) {
        const sm_layer *S = &st->prof.layers[l];
        int nc = 0, cl = 0;
        double pay = 0;
        rpu_comm_call *calls = NULL;
        if (S->p &&
            rpu_conv_comm_plan(S->p, S->cfg, st->n, S->in_size, S->input_grad, P, 0, NULL, 0,
                               &nc) == RPU_OK &&
            (calls = calloc((size_t)nc + 1, sizeof *calls)) &&
            rpu_conv_comm_plan(S->p, S->cfg, st->n, S->in_size, S->input_grad, P, 0, calls, nc,
                               &cl) == RPU_OK)
            for (int q = 0; q < cl; ++q)
                pay += (double)calls[q].count * calls[q].type_bytes;
        free(calls);
        for (int f = 0; f < N_PH; ++f)
            sum1 += S->t1[f];
        printf("  %-10.10s %-8s %5d %9.3f %9.3f %9.3f %9.3f %9.3f %6d %13.0f\n", S->name, S->type,
               S->n_tiles, 1e3 * S->t1[0], 1e3 * S->t1[1], 1e3 * S->t1[2], 1e3 * S->fixed[0],
               1e3 * S->fixed[1], nc, pay);
        if (csv)
            fprintf(csv,
                    "layer,%d,%s,%s,%d,%.6e,%.6e,%.6e,%.6e,%.6e,%.6e,%.6e,%.6e,%.6e,%.6e,%.6e,%d,%."
                    "0f\n",
                    l, S->name, S->type, S->n_tiles, S->t1[0], S->t1[1], S->t1[2], S->fixed[0],
                    S->fixed[1], st->tP[l * N_PH], st->tP[l * N_PH + 1], st->tP[l * N_PH + 2],
                    lp[l * N_PH], lp[l * N_PH + 1], lp[l * N_PH + 2], nc, pay);
    }
    printf("  outside the layers (loss %.3f ms, copies): %.3f ms; step %.3f ms\n", 1e3 * st->loss1,
           1e3 * st->prof.other, 1e3 * st->step1);
    printf("  replicated assembly: %.2f ns per float, %.2f ns per int64 element\n",
           1e9 * st->kappa[0], 1e9 * st->kappa[1]);
    if (csv) {
        fprintf(csv, "#step1,step_s,layers_s,other_s,loss_s,kappa_float_s,kappa_int64_s,batch\n");
        fprintf(csv, "step1,%.6e,%.6e,%.6e,%.6e,%.6e,%.6e,%d\n", st->step1, sum1, st->prof.other,
                st->loss1, st->kappa[0], st->kappa[1], st->n0);
        fprintf(csv, "#tile,layer,tile,rows,cols,owner,fwd_s,bwd_s,upd_s,api_fwd_s,api_bwd_s,"
                     "upd_replicated\n");
        for (int l = 0; l < L; ++l) {
            const sm_layer *S = &st->prof.layers[l];
            if (!S->p) continue;
            rpu_tile_grid g;
            if (rpu_conv_placement(S->p, S->cfg, P, &g) != RPU_OK) continue;
            for (int t = 0; t < S->n_tiles && t < g.n_tiles; ++t)
                fprintf(csv, "tile,%d,%d,%d,%d,%d,%.6e,%.6e,%.6e,%.6e,%.6e,%.4f\n", l, t,
                        g.tiles[t].rows, g.tiles[t].cols, g.tiles[t].owner, S->tile[0][t],
                        S->tile[1][t], S->tile[2][t], st->api[2 * l][t], st->api[2 * l + 1][t],
                        S->upd_rep ? S->upd_rep[t] : 0.0);
            rpu_tile_grid_free(&g);
        }
        /* every rank's calls of one step at P ranks (for PMPI checks; up to 64 ranks) */
        fprintf(csv, "#call,rank,layer,phase,op,count,type_bytes,group,peer,payload_bytes,what\n");
        for (int r = 0; r < P && r < 64; ++r) {
            int n = 0;
            if (rpu_net_comm_plan(st->net1, st->n, P, r, NULL, 0, &n) != RPU_OK) continue;
            rpu_comm_call *c = calloc((size_t)n + 1, sizeof *c);
            if (c && rpu_net_comm_plan(st->net1, st->n, P, r, c, n, &n) == RPU_OK)
                for (int q = 0; q < n; ++q)
                    fprintf(csv, "call,%d,%d,%s,%s,%lld,%d,%d,%d,%lld,%s\n", r, c[q].layer,
                            phase_names[c[q].phase], rpu_comm_op_name(c[q].op),
                            (long long)c[q].count, c[q].type_bytes, c[q].group, c[q].peer,
                            (long long)c[q].count * c[q].type_bytes, c[q].what);
            free(c);
        }
    }

    if (st->have_link) {
        printf("\ntransport %s: ping-pong 0 <-> 1 (one way, us):", transport_name());
        for (int k = 0; k < N_PP; ++k)
            printf(" %dB %.2f", pp_bytes[k], 1e6 * st->pp[k]);
        printf("\n  fit: alpha %.2f us, beta %.2f GB/s\n", 1e6 * st->link.alpha,
               1e-9 * st->link.beta);
        printf("  allreduce on %d ranks fitted: %.2f us + bytes / %.3f GB/s; 8 bytes after a "
               "2 ms late arrival: %.2f us\n",
               P, 1e6 * st->arfit.alpha, 1e-9 * st->arfit.beta, 1e6 * st->late);
        printf("  allreduce of int64 on %d ranks: %10s %12s %12s %7s  %s\n", P, "bytes",
               "measured_us", "model_us", "ratio", "algorithm");
        if (csv) {
            fprintf(csv,
                    "#link,alpha_s,beta_Bps,transport,allreduce_alpha_s,allreduce_beta_Bps,"
                    "late_allreduce_s\n"
                    "link,%.6e,%.6e,%s,%.6e,%.6e,%.6e\n",
                    st->link.alpha, st->link.beta, transport_name(), st->arfit.alpha,
                    st->arfit.beta, st->late);
            fprintf(csv, "#pingpong,bytes,seconds\n");
            for (int k = 0; k < N_PP; ++k)
                fprintf(csv, "pingpong,%d,%.6e\n", pp_bytes[k], st->pp[k]);
            fprintf(csv, "#allreduce,ranks,bytes,measured_s,model_s,algorithm\n");
        }
        for (int k = 0; k < N_AR; ++k) {
            const double B = 8.0 * ar_count[k];
            const sm_cost c = sm_call_cost(&mf, RPU_COMM_ALLREDUCE, B, P);
            printf("  %43.0f %12.2f %12.2f %7.2f  %s\n", B, 1e6 * st->ar[k], 1e6 * c.seconds,
                   c.seconds > 0 ? st->ar[k] / c.seconds : 0.0, c.algo);
            if (csv)
                fprintf(csv, "allreduce,%d,%.0f,%.6e,%.6e,%s\n", P, B, st->ar[k], c.seconds,
                        c.algo);
        }
    }

    if (s == RPU_OK) {
        printf("\nmeasured on %d rank%s vs the model of this machine (1 node, %.2f cores, link "
               "alpha %.2f us, beta %.2f GB/s%s), ms:\n",
               P, P == 1 ? "" : "s", mh.cores, 1e6 * mh.node.alpha, 1e-9 * mh.node.beta,
               st->have_link ? ", measured" : ", not measured: --measure-transport");
        printf("  %-10s %9s %9s %9s   %9s %9s %9s\n", "layer", "fwd", "bwd", "upd", "fwd_model",
               "bwd_model", "upd_model");
        for (int l = 0; l < L; ++l)
            printf("  %-10.10s %9.3f %9.3f %9.3f   %9.3f %9.3f %9.3f\n", st->info[l].name,
                   1e3 * st->tP[l * N_PH], 1e3 * st->tP[l * N_PH + 1], 1e3 * st->tP[l * N_PH + 2],
                   1e3 * lp[l * N_PH], 1e3 * lp[l * N_PH + 1], 1e3 * lp[l * N_PH + 2]);
        printf("  step: measured %.3f ms, model %.3f ms (compute %.3f, communication %.3f); "
               "model / measured %.3f\n",
               1e3 * st->stepP, 1e3 * rh.step, 1e3 * rh.compute, 1e3 * rh.comm,
               st->stepP > 0 ? rh.step / st->stepP : 0.0);
        double *pr = calloc((size_t)o->steps, sizeof *pr), paired = 0, lo = 0, hi = 0;
        if (pr && paired_ratios(st, pr) == RPU_OK) {
            double *c = malloc(sizeof *c * (size_t)o->steps);
            if (c) {
                memcpy(c, pr, sizeof *c * (size_t)o->steps);
                paired = median(c, o->steps); /* sorts c */
                lo = c[0], hi = c[o->steps - 1];
                free(c);
            }
            printf("  round by round (each round's profile, probe and step): model / measured "
                   "median %.3f, range %.3f-%.3f over %d rounds\n",
                   paired, lo, hi, o->steps);
        }
        free(pr);
        if (st->have_link)
            printf("  (communication from the allreduce fit; with the alpha-beta formulas of the "
                   "ping-pong instead: %.3f ms, model / measured %.3f)\n",
                   1e3 * rf.step, st->stepP > 0 ? rf.step / st->stepP : 0.0);
        printf("  per step and rank: %d MPI calls, %.0f payload bytes; model: %.0f bytes and %.0f "
               "messages sent\n",
               rh.calls, rh.payload, rh.wire_bytes, rh.messages);
        if (csv) {
            fprintf(csv, "#measured,ranks,batch,transport,cores,step_measured_s,step_model_s,"
                         "compute_model_s,comm_model_s,ratio,calls,payload_bytes,"
                         "step_formula_s,paired_ratio,paired_min,paired_max\n");
            fprintf(csv,
                    "measured,%d,%d,%s,%.3f,%.6e,%.6e,%.6e,%.6e,%.4f,%d,%.0f,%.6e,%.4f,%.4f,%.4f\n",
                    P, st->n, transport_is_tcp() ? "tcp" : "shm", mh.cores, st->stepP, rh.step,
                    rh.compute, rh.comm, st->stepP > 0 ? rh.step / st->stepP : 0.0, rh.calls,
                    rh.payload, rf.step, paired, lo, hi);
        }

        printf("\nprojection: nodes of %d ranks and %.0f cores; network alpha %.2f us, %.2f GB/s; "
               "within a node alpha %.2f us, %.2f GB/s (%s)\n",
               mc.per_node, mc.cores, 1e6 * mc.net.alpha, 1e-9 * mc.net.beta, 1e6 * mc.node.alpha,
               1e-9 * mc.node.beta, nsrc);
        printf("  strong scaling: batch %d per step; weak scaling: batch %d per rank\n", st->n,
               st->n);
        printf("  %6s %5s | %11s %8s %6s %6s | %8s %11s %6s\n", "ranks", "nodes", "step_ms",
               "speedup", "eff", "comm%", "batch", "step_ms", "eff");
        if (csv)
            fprintf(csv, "#predict,mode,ranks,nodes,per_node,cores,batch,step_s,compute_s,comm_s,"
                         "speedup,efficiency,payload_bytes,wire_bytes,messages,calls\n");
        sm_result r1;
        if (sm_predict(&st->prof, &mc, 1, st->n, &r1, NULL) != RPU_OK) r1.step = 0;
        for (int k = 0; k < o->n_ranks; ++k) {
            const int N = o->ranks[k], nodes = (N + mc.per_node - 1) / mc.per_node;
            const long long wb = (long long)st->n * N;
            sm_result a, w;
            if (sm_predict(&st->prof, &mc, N, st->n, &a, NULL) != RPU_OK ||
                sm_predict(&st->prof, &mc, N, (int)(wb < (1 << 30) ? wb : (1 << 30)), &w, NULL) !=
                    RPU_OK) {
                fprintf(stderr, "rpusim %s: model at %d ranks: %s\n", CMD, N, rpu_last_error());
                continue;
            }
            const double sp = a.step > 0 ? r1.step / a.step : 0,
                         we = w.step > 0 ? r1.step / w.step : 0;
            printf("  %6d %5d | %11.3f %8.2f %6.3f %5.1f%% | %8lld %11.3f %6.3f\n", N, nodes,
                   1e3 * a.step, sp, sp / N, a.step > 0 ? 100 * a.comm / a.step : 0.0, wb,
                   1e3 * w.step, we);
            if (csv) {
                fprintf(
                    csv,
                    "predict,strong,%d,%d,%d,%.0f,%d,%.6e,%.6e,%.6e,%.4f,%.4f,%.0f,%.0f,%.0f,%d\n",
                    N, nodes, mc.per_node, mc.cores, st->n, a.step, a.compute, a.comm, sp, sp / N,
                    a.payload, a.wire_bytes, a.messages, a.calls);
                fprintf(
                    csv,
                    "predict,weak,%d,%d,%d,%.0f,%lld,%.6e,%.6e,%.6e,%.4f,%.4f,%.0f,%.0f,%.0f,%d\n",
                    N, nodes, mc.per_node, mc.cores, wb, w.step, w.compute, w.comm, we * N, we,
                    w.payload, w.wire_bytes, w.messages, w.calls);
            }
        }
        printf("  (eff: speedup / ranks for strong scaling, T(1 rank, batch b) / T(N ranks, "
               "batch N b) for weak)\n");
    } else {
        fprintf(stderr, "rpusim %s: the model failed: %s\n", CMD,
                s == RPU_ERR_NOMEM ? "out of memory" : rpu_last_error());
    }
    free(lp);
    if (csv && fclose(csv) != 0) fprintf(stderr, "rpusim %s: cannot write %s\n", CMD, o->csv);
}

/* ------------------------------------------------------------------ command */

static void free_state(run_state *st) {
    for (int l = 0; st->prof.layers && l < st->L; ++l) {
        for (int f = 0; f < N_PH; ++f)
            free(st->prof.layers[l].tile[f]);
        free(st->prof.layers[l].mvm[0]), free(st->prof.layers[l].mvm[1]);
    }
    for (int k = 0; st->api && k < 2 * st->L; ++k)
        free(st->api[k]);
    for (int k = 0; st->urep && k < st->L; ++k)
        free(st->urep[k]);
    free(st->urep);
    free(st->api), free(st->prof.layers), free(st->info), free(st->t1), free(st->tP);
    free(st->v1), free(st->vP), free(st->pa), free(st->pc);
    free(st->x), free(st->y);
    rpu_net_destroy(&st->net1);
    rpu_dataset_free(&st->train);
    rpu_dataset_free(&st->test);
    rpu_experiment_free(&st->exp);
}

/* Rank 0 alone, before the measurement: the network on MPI_COMM_SELF, its tiles timed
 * through the tile API, the replicated assembly. */
static rpu_status setup_one_rank(run_state *st) {
    const int sp[2] = {st->train.height, st->train.width};
    TRY(rpu_net_create(MPI_COMM_SELF, st->exp, st->train.channels, 2, sp, &st->net1));
    const int L = st->L = rpu_net_layer_count(st->net1);
    st->info = calloc((size_t)L, sizeof *st->info);
    st->api = calloc((size_t)L * 2, sizeof *st->api);
    st->urep = calloc((size_t)L, sizeof *st->urep);
    st->prof.layers = calloc((size_t)L, sizeof *st->prof.layers);
    if (!st->info || !st->api || !st->urep || !st->prof.layers) return RPU_ERR_NOMEM;
    for (int l = 0; l < L; ++l)
        TRY(rpu_net_layer_info(st->net1, l, &st->info[l]));
    TRY(time_tiles(st));
    time_kappa(st->kappa);
    return RPU_OK;
}

/* Rank 0, after the measurement: the model's profile of every layer. */
static rpu_status build_profile(run_state *st) {
    st->prof.n_layers = st->L;
    st->prof.batch0 = st->n0;
    for (int l = 0; l < st->L; ++l)
        TRY(profile_layer(st, l));
    st->prof.other = st->other1 > 0 ? st->other1 : 0;
    return RPU_OK;
}

static int run(int argc, char **argv) {
    run_state st;
    memset(&st, 0, sizeof st);
    MPI_Comm_rank(MPI_COMM_WORLD, &st.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &st.size);
    int rc = parse(argc, argv, &st.o);
    if (rc) return rc < 0 ? 0 : rc;
    const options *o = &st.o;
    /* the same files and arguments on every rank: the same outcome, no agreement needed */
    rpu_status s = rpu_experiment_load(o->experiment, o->sets, o->n_sets, &st.exp);
    if (s == RPU_OK) s = rpu_experiment_data(st.exp, &st.train, &st.test);
    if (s != RPU_OK) {
        if (st.rank == 0) fprintf(stderr, "rpusim %s: %s\n", CMD, rpu_last_error());
        free_state(&st);
        return 2;
    }
    const int batch = rpu_experiment_run(st.exp)->batch_size;
    const int b0 = o->profile_batch ? o->profile_batch : batch, nmax = b0 > batch ? b0 : batch;
    const size_t per = rpu_dataset_sample_size(&st.train);
    st.x = malloc(sizeof(float) * per * (size_t)nmax);
    st.y = malloc((size_t)nmax);
    int nb = 0;
    s = st.x && st.y ? rpu_dataset_batch(&st.train, NULL, nmax < st.train.n ? nmax : st.train.n, 0,
                                         st.x, st.y, &nb)
                     : RPU_ERR_NOMEM;
    st.n = batch < nb ? batch : nb;
    st.n0 = b0 < nb ? b0 : nb;

    /* 1. rank 0 alone: the one-rank network, tile API times, replicated assembly */
    if (st.rank == 0 && s == RPU_OK) {
        s = setup_one_rank(&st);
        if (s != RPU_OK)
            fprintf(stderr, "rpusim %s: one-rank setup: %s\n", CMD,
                    s == RPU_ERR_NOMEM ? "out of memory" : rpu_last_error());
    }
    idle_barrier(MPI_COMM_WORLD);
    int bad = s != RPU_OK;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (bad) {
        free_state(&st);
        return 1;
    }
    /* 2. transport */
    if (o->measure_transport) {
        if (st.size >= 2)
            measure_transport(&st);
        else if (st.rank == 0)
            printf("(--measure-transport needs 2 or more ranks: not measured)\n");
    }
    /* 3. the steps, one rank and P ranks interleaved */
    rpu_net *net = NULL;
    const int sp[2] = {st.train.height, st.train.width};
    s = rpu_net_create(MPI_COMM_WORLD, st.exp, st.train.channels, 2, sp, &net);
    if (s == RPU_OK) {
        st.L = rpu_net_layer_count(net); /* rank 0 knows it already: the same network */
        st.t1 = calloc((size_t)st.L * N_PH, sizeof *st.t1);
        st.tP = calloc((size_t)st.L * N_PH, sizeof *st.tP);
        if (!st.t1 || !st.tP) s = RPU_ERR_NOMEM;
    }
    int ok = s == RPU_OK;
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (ok) s = measure(&st, net);
    rpu_net_destroy(&net);
    if (st.rank == 0 && ok && s == RPU_OK) s = build_profile(&st);
    if (!ok || s != RPU_OK) {
        if (st.rank == 0)
            fprintf(stderr, "rpusim %s: steps on %d ranks: %s\n", CMD, st.size,
                    s == RPU_ERR_NOMEM ? "out of memory" : rpu_last_error());
        free_state(&st);
        return 1;
    }
    /* 4. the model */
    if (st.rank == 0) report(&st);
    free_state(&st);
    return 0;
}

int cli_bench_scale(int argc, char **argv) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(NULL, NULL);
    int rc = run(argc, argv);
    if (!inited) MPI_Finalize();
    return rc;
}
