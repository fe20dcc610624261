/* Tests of the readout module (least squares with ScaLAPACK, spec §8.1):
 *   - consistent systems X B0 = Y recover B0 (several shapes, blocks that do not divide n,
 *     a column scaled by 1e-6 that must not be taken for rank deficiency);
 *   - inconsistent systems against an independent reference in this file: the normal
 *     equations X^T X B = X^T Y solved by Cholesky in long double;
 *   - the result is bitwise identical on every rank, and equal (bitwise after rounding to
 *     float, 1e-13 relative as doubles) on sub-communicators of 1..P ranks, in reversed
 *     rank order, and on forced grids (ranks outside the grid, pc > pr, blocks of 1..32);
 *   - the grid table for P = 1..9 and its invariants;
 *   - errors (sizes, NULL, a NULL on one rank only, non-finite values, rank-deficient X):
 *     the same status on every rank, B untouched.
 * Random data from Philox streams (purpose RPU_PURPOSE_TEST). */
#include "rpusim/readout.h"
#include "rpusim/rng.h"
#include "readout_impl.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 0x5eadull

/* ------------------------------------------------------------------ helpers */

static double *dalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "test_readout: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    return p;
}

/* n standard normal values (float draws widened to double) from stream id. */
static void fill_normal(double *x, size_t n, uint32_t id) {
    rpu_rng r;
    rpu_rng_init(&r, SEED, rpu_stream_id(id, 7, RPU_PURPOSE_TEST));
    for (size_t i = 0; i < n; ++i)
        x[i] = (double)rpu_rng_normal(&r);
}

/* C [m, k] = A [m, n] B [n, k], accumulated in long double, rounded once. */
static void matmul(int m, int n, int k, const double *A, const double *B, double *C) {
    for (int i = 0; i < m; ++i)
        for (int c = 0; c < k; ++c) {
            long double s = 0.0L;
            for (int j = 0; j < n; ++j)
                s += (long double)A[(size_t)i * n + j] * B[(size_t)j * k + c];
            C[(size_t)i * k + c] = (double)s;
        }
}

/* max |a - b| / max |b| */
static double rel_diff(size_t n, const double *a, const double *b) {
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; ++i) {
        if (fabs(a[i] - b[i]) > d || isnan(a[i])) d = isnan(a[i]) ? INFINITY : fabs(a[i] - b[i]);
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return s > 0.0 ? d / s : d;
}

/* 1 when a and b rounded to float are the same bits. */
static int same_as_float(size_t n, const double *a, const double *b) {
    for (size_t i = 0; i < n; ++i) {
        const float fa = (float)a[i], fb = (float)b[i];
        if (memcmp(&fa, &fb, sizeof fa) != 0) return 0;
    }
    return 1;
}

/* 1 when B is bitwise the same on every rank of comm (rank 0's copy broadcast). */
static int same_on_all_ranks(MPI_Comm comm, size_t n, const double *B) {
    double *b0 = dalloc(n);
    memcpy(b0, B, n * sizeof *B);
    MPI_Bcast(b0, (int)n, MPI_DOUBLE, 0, comm);
    int mine = memcmp(b0, B, n * sizeof *B) == 0, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm);
    free(b0);
    return all;
}

/* 1 when every rank of comm got status s. */
static int same_status(MPI_Comm comm, rpu_status s) {
    int v[2] = {(int)s, -(int)s}, r[2];
    MPI_Allreduce(v, r, 2, MPI_INT, MPI_MIN, comm);
    return r[0] == -r[1];
}

/* Independent reference: normal equations (X^T X) B = X^T Y by Cholesky in long double. */
static int ref_normal_equations(int m, int n, int k, const double *X, const double *Y, double *B) {
    long double *G = calloc((size_t)n * n, sizeof *G), *H = calloc((size_t)n * k, sizeof *H);
    if (!G || !H) {
        free(G);
        free(H);
        return 0;
    }
    for (int a = 0; a < n; ++a) {
        for (int b = 0; b <= a; ++b) {
            long double s = 0.0L;
            for (int i = 0; i < m; ++i)
                s += (long double)X[(size_t)i * n + a] * X[(size_t)i * n + b];
            G[(size_t)a * n + b] = G[(size_t)b * n + a] = s;
        }
        for (int c = 0; c < k; ++c) {
            long double s = 0.0L;
            for (int i = 0; i < m; ++i)
                s += (long double)X[(size_t)i * n + a] * Y[(size_t)i * k + c];
            H[(size_t)a * k + c] = s;
        }
    }
    /* G = L L^T, L in the lower triangle of G */
    for (int j = 0; j < n; ++j) {
        long double d = G[(size_t)j * n + j];
        for (int p = 0; p < j; ++p)
            d -= G[(size_t)j * n + p] * G[(size_t)j * n + p];
        if (!(d > 0.0L)) {
            free(G);
            free(H);
            return 0;
        }
        d = sqrtl(d);
        G[(size_t)j * n + j] = d;
        for (int i = j + 1; i < n; ++i) {
            long double s = G[(size_t)i * n + j];
            for (int p = 0; p < j; ++p)
                s -= G[(size_t)i * n + p] * G[(size_t)j * n + p];
            G[(size_t)i * n + j] = s / d;
        }
    }
    for (int c = 0; c < k; ++c) {
        /* L z = h, then L^T b = z (in place in column c of H) */
        for (int i = 0; i < n; ++i) {
            long double s = H[(size_t)i * k + c];
            for (int p = 0; p < i; ++p)
                s -= G[(size_t)i * n + p] * H[(size_t)p * k + c];
            H[(size_t)i * k + c] = s / G[(size_t)i * n + i];
        }
        for (int i = n - 1; i >= 0; --i) {
            long double s = H[(size_t)i * k + c];
            for (int p = i + 1; p < n; ++p)
                s -= G[(size_t)p * n + i] * H[(size_t)p * k + c];
            H[(size_t)i * k + c] = s / G[(size_t)i * n + i];
        }
    }
    for (size_t i = 0; i < (size_t)n * k; ++i)
        B[i] = (double)H[i];
    free(G);
    free(H);
    return 1;
}

/* ------------------------------------------------------------------ tests */

/* (1) consistent systems: X B0 = Y exactly up to the rounding of Y. */
static void test_consistent(int m, int n, int k, uint32_t id) {
    double *X = dalloc((size_t)m * n), *B0 = dalloc((size_t)n * k), *Y = dalloc((size_t)m * k),
           *B = dalloc((size_t)n * k);
    fill_normal(X, (size_t)m * n, id);
    fill_normal(B0, (size_t)n * k, id + 1);
    matmul(m, n, k, X, B0, Y);
    CHECK_OK(rpu_readout_lstsq(MPI_COMM_WORLD, m, n, k, X, Y, B));
    const double e = rel_diff((size_t)n * k, B, B0);
    CHECK(e <= 1e-10, "consistent %dx%dx%d: relative error %.3g > 1e-10", m, n, k, e);
    CHECK(same_on_all_ranks(MPI_COMM_WORLD, (size_t)n * k, B),
          "consistent %dx%dx%d: B differs between ranks", m, n, k);
    free(X);
    free(B0);
    free(Y);
    free(B);
}

/* (1b) a column 1e-6 times smaller than the others is badly scaled, not rank deficient:
 * it must be accepted and its coefficients recovered (relative to their size). */
static void test_scaled_column(void) {
    const int m = 80, n = 6, k = 2;
    double *X = dalloc((size_t)m * n), *B0 = dalloc((size_t)n * k), *Y = dalloc((size_t)m * k),
           *B = dalloc((size_t)n * k);
    fill_normal(X, (size_t)m * n, 40);
    fill_normal(B0, (size_t)n * k, 41);
    for (int i = 0; i < m; ++i)
        X[(size_t)i * n + 2] *= 1e-6;
    for (int c = 0; c < k; ++c)
        B0[2 * k + c] *= 1e6;
    matmul(m, n, k, X, B0, Y);
    CHECK_OK(rpu_readout_lstsq(MPI_COMM_WORLD, m, n, k, X, Y, B));
    double worst = 0.0;
    for (int j = 0; j < n; ++j) {
        const double e = rel_diff((size_t)k, B + (size_t)j * k, B0 + (size_t)j * k);
        if (e > worst) worst = e;
    }
    CHECK(worst <= 1e-8, "scaled column: worst row relative error %.3g > 1e-8", worst);
    free(X);
    free(B0);
    free(Y);
    free(B);
}

/* (2) inconsistent systems (Y independent of X) against the normal equations. */
static void test_vs_normal_equations(int m, int n, int k, uint32_t id) {
    double *X = dalloc((size_t)m * n), *Y = dalloc((size_t)m * k), *B = dalloc((size_t)n * k),
           *R = dalloc((size_t)n * k), *XB = dalloc((size_t)m * k);
    fill_normal(X, (size_t)m * n, id);
    fill_normal(Y, (size_t)m * k, id + 1);
    CHECK(ref_normal_equations(m, n, k, X, Y, R), "reference Cholesky failed (%dx%d)", m, n);
    CHECK_OK(rpu_readout_lstsq(MPI_COMM_WORLD, m, n, k, X, Y, B));
    const double e = rel_diff((size_t)n * k, B, R);
    CHECK(e <= 1e-9, "inconsistent %dx%dx%d: relative difference to normal equations %.3g > 1e-9",
          m, n, k, e);
    /* really inconsistent: the residual is far from zero */
    matmul(m, n, k, X, B, XB);
    double r2 = 0.0, y2 = 0.0;
    for (size_t i = 0; i < (size_t)m * k; ++i) {
        r2 += (XB[i] - Y[i]) * (XB[i] - Y[i]);
        y2 += Y[i] * Y[i];
    }
    CHECK(r2 > 0.5 * y2, "inconsistent %dx%dx%d: residual %.3g of %.3g, expected a large one", m, n,
          k, sqrt(r2), sqrt(y2));
    free(X);
    free(Y);
    free(B);
    free(R);
    free(XB);
}

/* Compares a solution with the 1-rank reference: bitwise as floats, 1e-13 as doubles. */
static void check_like_ref(const char *what, int s, size_t nk, const double *B, const double *ref) {
    const double e = rel_diff(nk, B, ref);
    CHECK(e <= 1e-13, "%s on %d rank(s): relative difference %.3g to 1 rank > 1e-13", what, s, e);
    CHECK(same_as_float(nk, B, ref),
          "%s on %d rank(s): differs from 1 rank after rounding to float", what, s);
}

/* (3) rank-count invariance: sub-communicators of 1..P ranks (and reversed order), forced
 * grids with ranks outside the grid, wide grids and small blocks. */
static void test_rank_counts(int m, int n, int k, uint32_t id) {
    const int P = tl_size(), rank = tl_rank();
    const size_t nk = (size_t)n * k;
    double *X = dalloc((size_t)m * n), *Y = dalloc((size_t)m * k), *ref = dalloc(nk),
           *B = dalloc(nk);
    fill_normal(X, (size_t)m * n, id);
    fill_normal(Y, (size_t)m * k, id + 1);
    /* 1-rank result: every rank solves on its own (P concurrent BLACS grids) */
    CHECK_OK(rpu_readout_lstsq(MPI_COMM_SELF, m, n, k, X, Y, ref));
    CHECK(same_on_all_ranks(MPI_COMM_WORLD, nk, ref),
          "%dx%dx%d: 1-rank solutions differ between processes", m, n, k);

    for (int s = 1; s <= P; ++s) {
        for (int reversed = 0; reversed <= 1; ++reversed) {
            MPI_Comm sub;
            MPI_Comm_split(MPI_COMM_WORLD, rank < s ? 0 : MPI_UNDEFINED, reversed ? -rank : rank,
                           &sub);
            if (sub == MPI_COMM_NULL) continue;
            memset(B, 0, nk * sizeof *B);
            rpu_status st = rpu_readout_lstsq(sub, m, n, k, X, Y, B);
            CHECK(st == RPU_OK, "%dx%dx%d on %d ranks%s: %s: %s", m, n, k, s,
                  reversed ? " (reversed)" : "", rpu_status_name(st), rpu_last_error());
            CHECK(same_on_all_ranks(sub, nk, B), "%dx%dx%d on %d ranks: B differs between ranks", m,
                  n, k, s);
            check_like_ref(reversed ? "sub-communicator (reversed)" : "sub-communicator", s, nk, B,
                           ref);
            MPI_Comm_free(&sub);
        }
    }

    /* forced grids on the whole world: every pr x pc <= P, blocks from 1 to 32 */
    static const int nbs[] = {1, 2, 3, 5, 32};
    for (int pr = 1; pr <= P; ++pr)
        for (int pc = 1; pr * pc <= P; ++pc)
            for (size_t t = 0; t < sizeof nbs / sizeof nbs[0]; ++t) {
                memset(B, 0, nk * sizeof *B);
                rpu_status st =
                    rpu_readout_lstsq_grid(MPI_COMM_WORLD, pr, pc, nbs[t], m, n, k, X, Y, B);
                CHECK(st == RPU_OK, "%dx%dx%d on grid %dx%d nb %d: %s: %s", m, n, k, pr, pc, nbs[t],
                      rpu_status_name(st), rpu_last_error());
                CHECK(same_on_all_ranks(MPI_COMM_WORLD, nk, B),
                      "%dx%dx%d on grid %dx%d nb %d: B differs between ranks", m, n, k, pr, pc,
                      nbs[t]);
                const double e = rel_diff(nk, B, ref);
                CHECK(e <= 1e-13, "%dx%dx%d on grid %dx%d nb %d: relative difference %.3g > 1e-13",
                      m, n, k, pr, pc, nbs[t], e);
            }
    free(X);
    free(Y);
    free(ref);
    free(B);
}

/* (4) the grid for P ranks, hand-written, and its invariants; block sizes. */
static void test_grid(void) {
    static const int want[10][2] = {{0, 0}, {1, 1}, {2, 1}, {3, 1}, {2, 2},
                                    {2, 2}, {3, 2}, {3, 2}, {4, 2}, {3, 3}};
    for (int P = 0; P <= 9; ++P) {
        int pr = -7, pc = -7;
        rpu_readout_grid(P, &pr, &pc);
        CHECK(pr == want[P][0] && pc == want[P][1], "grid(%d) = %dx%d, want %dx%d", P, pr, pc,
              want[P][0], want[P][1]);
    }
    int pr, pc;
    rpu_readout_grid(12, &pr, &pc);
    CHECK(pr == 4 && pc == 3, "grid(12) = %dx%d, want 4x3", pr, pc);
    rpu_readout_grid(16, &pr, &pc);
    CHECK(pr == 4 && pc == 4, "grid(16) = %dx%d, want 4x4", pr, pc);
    rpu_readout_grid(-3, &pr, &pc);
    CHECK(pr == 0 && pc == 0, "grid(-3) = %dx%d, want 0x0", pr, pc);
    rpu_readout_grid(5, NULL, &pc); /* NULL outputs are skipped */
    CHECK(pc == 2, "grid(5) with NULL pr: pc %d", pc);
    int bad = 0;
    for (int P = 1; P <= 5000; ++P) {
        rpu_readout_grid(P, &pr, &pc);
        if (!(pr >= pc && pc >= 1 && pr * pc <= P && pc * pc <= P && (pc + 1) * (pc + 1) > P &&
              (pr + 1) * pc > P) &&
            bad++ < 3)
            CHECK(false, "grid(%d) = %dx%d breaks an invariant", P, pr, pc);
    }
    CHECK(bad == 0, "%d grids break an invariant", bad);
    CHECK(rpu_readout_block_size(7, 2) == 4, "block(7, 2) = %d", rpu_readout_block_size(7, 2));
    CHECK(rpu_readout_block_size(36, 2) == 18, "block(36, 2) = %d", rpu_readout_block_size(36, 2));
    CHECK(rpu_readout_block_size(13, 3) == 5, "block(13, 3) = %d", rpu_readout_block_size(13, 3));
    CHECK(rpu_readout_block_size(100, 1) == 32, "block(100, 1) = %d",
          rpu_readout_block_size(100, 1));
    CHECK(rpu_readout_block_size(1, 4) == 1, "block(1, 4) = %d", rpu_readout_block_size(1, 4));
}

/* Runs a call expected to fail with `want` on every rank, leaving B untouched. */
#define EXPECT_FAIL(label, want, call, Bbuf, nk)                                                   \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < (nk); ++i_)                                                       \
            (Bbuf)[i_] = 12345.0;                                                                  \
        rpu_clear_error();                                                                         \
        rpu_status s_ = (call);                                                                    \
        CHECK(s_ == (want), "%s: %s, want %s (%s)", label, rpu_status_name(s_),                    \
              rpu_status_name(want), rpu_last_error());                                            \
        CHECK(same_status(MPI_COMM_WORLD, s_), "%s: ranks disagree on the status", label);         \
        CHECK(rpu_last_error()[0] != '\0', "%s: no message", label);                               \
        int same_ = 1;                                                                             \
        for (size_t i_ = 0; i_ < (nk); ++i_)                                                       \
            same_ &= (Bbuf)[i_] == 12345.0;                                                        \
        CHECK(same_, "%s: B was written on failure", label);                                       \
    } while (0)

/* (5) errors. */
static void test_errors(void) {
    const int m = 30, n = 5, k = 2, P = tl_size(), rank = tl_rank();
    double *X = dalloc((size_t)m * n), *Y = dalloc((size_t)m * k), *B = dalloc(64),
           *Xd = dalloc((size_t)m * n);
    fill_normal(X, (size_t)m * n, 60);
    fill_normal(Y, (size_t)m * k, 61);
    MPI_Comm w = MPI_COMM_WORLD;

    EXPECT_FAIL("m < n", RPU_ERR_ARG, rpu_readout_lstsq(w, 4, 5, k, X, Y, B), B, 64);
    EXPECT_FAIL("n = 0", RPU_ERR_ARG, rpu_readout_lstsq(w, m, 0, k, X, Y, B), B, 64);
    EXPECT_FAIL("n < 0", RPU_ERR_ARG, rpu_readout_lstsq(w, m, -2, k, X, Y, B), B, 64);
    EXPECT_FAIL("k = 0", RPU_ERR_ARG, rpu_readout_lstsq(w, m, n, 0, X, Y, B), B, 64);
    EXPECT_FAIL("X NULL", RPU_ERR_ARG, rpu_readout_lstsq(w, m, n, k, NULL, Y, B), B, 64);
    EXPECT_FAIL("Y NULL", RPU_ERR_ARG, rpu_readout_lstsq(w, m, n, k, X, NULL, B), B, 64);
    rpu_status s = rpu_readout_lstsq(w, m, n, k, X, Y, NULL);
    CHECK(s == RPU_ERR_ARG && same_status(w, s), "B NULL: %s (%s)", rpu_status_name(s),
          rpu_last_error());
    EXPECT_FAIL("comm NULL", RPU_ERR_ARG, rpu_readout_lstsq(MPI_COMM_NULL, m, n, k, X, Y, B), B,
                64);
    EXPECT_FAIL("grid larger than comm", RPU_ERR_ARG,
                rpu_readout_lstsq_grid(w, P + 1, 1, 4, m, n, k, X, Y, B), B, 64);
    EXPECT_FAIL("block 0", RPU_ERR_ARG, rpu_readout_lstsq_grid(w, 1, 1, 0, m, n, k, X, Y, B), B,
                64);

    /* a NULL on the last rank only: every rank fails, nobody hangs, the message names it */
    EXPECT_FAIL("Y NULL on the last rank", RPU_ERR_ARG,
                rpu_readout_lstsq(w, m, n, k, X, rank == P - 1 ? NULL : Y, B), B, 64);
    if (P > 1)
        CHECK(strstr(rpu_last_error(), "on rank") && strstr(rpu_last_error(), "NULL"),
              "NULL on one rank: message '%s' does not name the rank and the cause",
              rpu_last_error());

    /* non-finite input */
    memcpy(Xd, X, (size_t)m * n * sizeof *X);
    Xd[7 * n + 3] = NAN;
    EXPECT_FAIL("NaN in X", RPU_ERR_ARG, rpu_readout_lstsq(w, m, n, k, Xd, Y, B), B, 64);
    Y[3] = INFINITY;
    EXPECT_FAIL("Inf in Y", RPU_ERR_ARG, rpu_readout_lstsq(w, m, n, k, X, Y, B), B, 64);
    fill_normal(Y, (size_t)m * k, 61);

    /* rank deficient: two identical columns, a zero column, a combination, all zero */
    memcpy(Xd, X, (size_t)m * n * sizeof *X);
    for (int i = 0; i < m; ++i)
        Xd[(size_t)i * n + 3] = Xd[(size_t)i * n + 1];
    EXPECT_FAIL("identical columns", RPU_ERR_ARG, rpu_readout_lstsq(w, m, n, k, Xd, Y, B), B, 64);
    CHECK(strstr(rpu_last_error(), "rank deficient") != NULL,
          "identical columns: message '%s' does not say rank deficient", rpu_last_error());
    /* the same on forced grids with small blocks (the tiny pivot on another rank) */
    for (int pr = 1; pr <= P; ++pr)
        for (int pc = 1; pr * pc <= P; ++pc) {
            char label[64];
            snprintf(label, sizeof label, "identical columns on %dx%d nb 1", pr, pc);
            EXPECT_FAIL(label, RPU_ERR_ARG, rpu_readout_lstsq_grid(w, pr, pc, 1, m, n, k, Xd, Y, B),
                        B, 64);
        }
    memcpy(Xd, X, (size_t)m * n * sizeof *X);
    for (int i = 0; i < m; ++i)
        Xd[(size_t)i * n + 4] = 0.0;
    EXPECT_FAIL("zero column", RPU_ERR_ARG, rpu_readout_lstsq(w, m, n, k, Xd, Y, B), B, 64);
    memcpy(Xd, X, (size_t)m * n * sizeof *X);
    for (int i = 0; i < m; ++i)
        Xd[(size_t)i * n + 2] = Xd[(size_t)i * n + 0] - 3.0 * Xd[(size_t)i * n + 4];
    EXPECT_FAIL("dependent column", RPU_ERR_ARG, rpu_readout_lstsq(w, m, n, k, Xd, Y, B), B, 64);
    memset(Xd, 0, (size_t)m * n * sizeof *Xd);
    EXPECT_FAIL("zero X", RPU_ERR_ARG, rpu_readout_lstsq(w, m, n, k, Xd, Y, B), B, 64);

    /* after all these failures the solver still works (BLACS state cleaned up) */
    CHECK_OK(rpu_readout_lstsq(w, m, n, k, X, Y, B));
    free(X);
    free(Y);
    free(B);
    free(Xd);
}

/* m == n and n == 1 edge shapes: square system, one unknown. */
static void test_edges(void) {
    test_consistent(13, 13, 2, 70);
    test_consistent(9, 1, 1, 72);
    test_consistent(5, 2, 9, 74); /* k > n, and m smaller than P * block for larger P */
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_grid();
    test_consistent(50, 7, 3, 10);
    test_consistent(360, 36, 8, 12);
    test_consistent(97, 13, 5, 14);
    test_edges();
    test_scaled_column();
    test_vs_normal_equations(60, 9, 4, 20);
    test_vs_normal_equations(97, 13, 5, 22);
    test_vs_normal_equations(360, 36, 8, 24);
    test_rank_counts(97, 13, 5, 30);
    test_rank_counts(360, 36, 8, 32);
    /* tiny: on forced grids some ranks hold no rows (4x1) or no columns (1x4) at all */
    test_rank_counts(3, 2, 2, 34);
    test_rank_counts(1, 1, 1, 36);
    test_errors();
    return tl_finish();
}
