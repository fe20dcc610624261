/* Realistic weight read-out (spec §8.1): dense least squares min ||X B - Y||_F with
 * ScaLAPACK pdgels on a 2-D BLACS grid, replicated inputs and outputs.
 *
 * Steps of one call (all collective on a duplicate of the caller's communicator):
 *   1. arguments checked on every rank, agreed (the lowest failing rank's status and
 *      message go to every rank);
 *   2. BLACS system handle of the duplicate, pr x pc grid in row-major order; ranks
 *      outside the grid get context -1 and skip 3-5;
 *   3. descriptors and the local block-cyclic pieces of A = X [m, n] and B = Y [m, k]
 *      (column-major, lld = max(1, local rows)), filled straight from the replicated
 *      row-major X and Y; allocation failures agreed;
 *   4. pdgels workspace query (lwork = -1), workspace allocated, agreed;
 *   5. pdgels: A becomes the QR factor (R in its upper triangle), rows 0..n-1 of B the
 *      solution;
 *   6. smallest |R_jj| over the grid (MPI_MIN) against max(m, n) * eps * max column norm
 *      of X: rank-deficient X is an error on every rank;
 *   7. each grid rank writes its pieces of rows 0..n-1 of B into the zeroed caller's B,
 *      one MPI_Allreduce(SUM) assembles it (exact: each element has one nonzero
 *      contributor, so every rank gets the same bits);
 *   8. grid exit, system handle freed, duplicate freed. */
#include "rpusim/readout.h"

#include "agree_impl.h"
#include "error_impl.h"
#include "readout_impl.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ScaLAPACK and BLACS (libscalapack-openmpi; Debian installs no C header). The Fortran
 * routines take every argument by reference; gfortran passes the length of each CHARACTER
 * argument as a trailing hidden size_t. The C BLACS interface takes values and MPI_Comm. */
extern int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
                   const int *nprocs);
extern void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
                      const int *irsrc, const int *icsrc, const int *ictxt, const int *lld,
                      int *info);
extern void pdgels_(const char *trans, const int *m, const int *n, const int *nrhs, double *a,
                    const int *ia, const int *ja, const int *desca, double *b, const int *ib,
                    const int *jb, const int *descb, double *work, const int *lwork, int *info,
                    size_t trans_len);
extern int Csys2blacs_handle(MPI_Comm comm);
extern void Cfree_blacs_system_handle(int handle);
extern void Cblacs_gridinit(int *ctxt, char *order, int nprow, int npcol);
extern void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
extern void Cblacs_gridexit(int ctxt);

#define RO_FN "rpu_readout_lstsq"
#define RO_MSG 900 /* longest message passed between ranks */
#define RO_MAX_NB 32

void rpu_readout_grid(int P, int *pr, int *pc) {
    int r = 0, c = 0;
    if (P >= 1) {
        c = (int)sqrt((double)P);
        while (c > 1 && c * c > P)
            --c;
        while ((c + 1) * (c + 1) <= P)
            ++c;
        r = P / c;
    }
    if (pr) *pr = r;
    if (pc) *pc = c;
}

int rpu_readout_block_size(int n, int pr) {
    if (pr < 1) pr = 1;
    if (n < 1) return 1;
    const int nb = n / pr + (n % pr != 0);
    return nb < RO_MAX_NB ? nb : RO_MAX_NB;
}

/* Local argument checks (no communication). */
static rpu_status ro_check_args(int size, int pr, int pc, int nb, int m, int n, int k,
                                const double *X, const double *Y, const double *B) {
    if (!X || !Y || !B)
        return RPU_FAIL(RPU_ERR_ARG, RO_FN ": NULL pointer (X %s, Y %s, B %s)", X ? "ok" : "NULL",
                        Y ? "ok" : "NULL", B ? "ok" : "NULL");
    if (n < 1 || k < 1 || m < n)
        return RPU_FAIL(RPU_ERR_ARG, RO_FN ": need m >= n >= 1 and k >= 1 (X [%d, %d], Y [%d, %d])",
                        m, n, m, k);
    if ((long long)n * k > INT_MAX)
        return RPU_FAIL(RPU_ERR_ARG, RO_FN ": solution of %d x %d values exceeds INT_MAX", n, k);
    if (pr < 1 || pc < 1 || (long long)pr * pc > size || nb < 1)
        return RPU_FAIL(RPU_ERR_ARG, RO_FN ": grid %d x %d with block %d on %d ranks", pr, pc, nb,
                        size);
    const size_t nx = (size_t)m * (size_t)n, ny = (size_t)m * (size_t)k;
    for (size_t i = 0; i < nx; ++i)
        if (!isfinite(X[i]))
            return RPU_FAIL(RPU_ERR_ARG, RO_FN ": X[%zu, %zu] is not finite (%g)", i / (size_t)n,
                            i % (size_t)n, X[i]);
    for (size_t i = 0; i < ny; ++i)
        if (!isfinite(Y[i]))
            return RPU_FAIL(RPU_ERR_ARG, RO_FN ": Y[%zu, %zu] is not finite (%g)", i / (size_t)k,
                            i % (size_t)k, Y[i]);
    return RPU_OK;
}

/* Largest column 2-norm of X [m, n] (scaled, so no overflow for finite X). */
static double ro_max_col_norm(int m, int n, const double *X) {
    double amax = 0.0;
    const size_t nx = (size_t)m * (size_t)n;
    for (size_t i = 0; i < nx; ++i)
        if (fabs(X[i]) > amax) amax = fabs(X[i]);
    if (amax == 0.0) return 0.0;
    double best = 0.0;
    for (int j = 0; j < n; ++j) {
        double s = 0.0;
        for (int i = 0; i < m; ++i) {
            const double v = X[(size_t)i * (size_t)n + (size_t)j] / amax;
            s += v * v;
        }
        if (s > best) best = s;
    }
    return amax * sqrt(best);
}

/* Global index of local index l in a block-cyclic dimension (0-based, source process 0). */
static inline int ro_l2g(int l, int nb, int p, int np) {
    return ((l / nb) * np + p) * nb + l % nb;
}

/* Local index of global index g, valid on the owning process (g / nb) % np. */
static inline int ro_g2l(int g, int nb, int np) {
    return (g / (nb * np)) * nb + g % nb;
}

static rpu_status ro_solve(MPI_Comm comm_in, int pr, int pc, int nb, int m, int n, int k,
                           const double *X, const double *Y, double *B) {
    if (comm_in == MPI_COMM_NULL) return RPU_FAIL(RPU_ERR_ARG, RO_FN ": comm is MPI_COMM_NULL");
    int inter = 0;
    if (MPI_Comm_test_inter(comm_in, &inter) != MPI_SUCCESS)
        return RPU_FAIL(RPU_ERR_MPI, RO_FN ": MPI_Comm_test_inter failed");
    if (inter) return RPU_FAIL(RPU_ERR_ARG, RO_FN ": comm is an intercommunicator");
    MPI_Comm comm;
    if (MPI_Comm_dup(comm_in, &comm) != MPI_SUCCESS)
        return RPU_FAIL(RPU_ERR_MPI, RO_FN ": MPI_Comm_dup failed");
    int size;
    if (MPI_Comm_size(comm, &size) != MPI_SUCCESS) {
        MPI_Comm_free(&comm);
        return RPU_FAIL(RPU_ERR_MPI, RO_FN ": MPI_Comm_size failed");
    }

    rpu_status st = rpu_agree(comm, ro_check_args(size, pr, pc, nb, m, n, k, X, Y, B));
    if (st != RPU_OK) {
        MPI_Comm_free(&comm);
        return st;
    }

    /* 2. grid; ranks pr*pc..size-1 are outside it and get context -1 */
    const int handle = Csys2blacs_handle(comm);
    int ctxt = handle;
    char order[] = "R";
    Cblacs_gridinit(&ctxt, order, pr, pc);
    const int in_grid = ctxt >= 0;

    /* 3. descriptors and local pieces */
    const int izero = 0, ione = 1;
    int myrow = -1, mycol = -1, mp = 0, nqa = 0, nqb = 0, lld = 1;
    int desca[9], descb[9];
    double *a = NULL, *b = NULL, *work = NULL;
    st = RPU_OK;
    if (in_grid) {
        int nprow = 0, npcol = 0;
        Cblacs_gridinfo(ctxt, &nprow, &npcol, &myrow, &mycol);
        if (nprow != pr || npcol != pc || myrow < 0 || myrow >= pr || mycol < 0 || mycol >= pc) {
            st = RPU_FAIL(RPU_ERR_INTERNAL,
                          RO_FN ": BLACS grid is %d x %d at (%d, %d), asked for %d x %d", nprow,
                          npcol, myrow, mycol, pr, pc);
        } else {
            mp = numroc_(&m, &nb, &myrow, &izero, &pr);
            nqa = numroc_(&n, &nb, &mycol, &izero, &pc);
            nqb = numroc_(&k, &nb, &mycol, &izero, &pc);
            lld = mp > 1 ? mp : 1;
            int info_a = 0, info_b = 0;
            descinit_(desca, &m, &n, &nb, &nb, &izero, &izero, &ctxt, &lld, &info_a);
            descinit_(descb, &m, &k, &nb, &nb, &izero, &izero, &ctxt, &lld, &info_b);
            if (info_a != 0 || info_b != 0) {
                st = RPU_FAIL(RPU_ERR_INTERNAL, RO_FN ": descinit info %d (A), %d (B)", info_a,
                              info_b);
            } else {
                const size_t na = (size_t)lld * (size_t)(nqa > 0 ? nqa : 1);
                const size_t nbb = (size_t)lld * (size_t)(nqb > 0 ? nqb : 1);
                a = malloc(na * sizeof *a);
                b = malloc(nbb * sizeof *b);
                if (!a || !b)
                    st = RPU_FAIL(RPU_ERR_NOMEM,
                                  RO_FN ": no memory for the local pieces (%zu + %zu doubles)", na,
                                  nbb);
            }
        }
    }
    st = rpu_agree(comm, st);
    int go = st == RPU_OK; /* the agreed status: the same on every rank */

    /* 4. workspace */
    int lwork = 1;
    if (go && in_grid) {
        double wq = 0.0;
        const int query = -1;
        int info = 0;
        pdgels_("N", &m, &n, &k, a, &ione, &ione, desca, b, &ione, &ione, descb, &wq, &query, &info,
                1);
        if (info != 0) {
            st = RPU_FAIL(RPU_ERR_INTERNAL, RO_FN ": pdgels workspace query: info %d", info);
        } else if (!(wq < (double)INT_MAX)) {
            st = RPU_FAIL(RPU_ERR_NOMEM, RO_FN ": pdgels wants %g doubles of workspace", wq);
        } else {
            lwork = wq > 1.0 ? (int)ceil(wq) : 1;
            work = malloc((size_t)lwork * sizeof *work);
            if (!work)
                st = RPU_FAIL(RPU_ERR_NOMEM, RO_FN ": no memory for the workspace (%d doubles)",
                              lwork);
        }
    }
    if (go) {
        st = rpu_agree(comm, st);
        go = st == RPU_OK;
    }

    /* 5. fill and solve; 6. local part of the rank check */
    double local[2] = {INFINITY, 0.0}; /* min |R_jj| owned; -1 if a solution value is not finite */
    if (go && in_grid) {
        for (int lj = 0; lj < nqa; ++lj) {
            const size_t j = (size_t)ro_l2g(lj, nb, mycol, pc);
            for (int li = 0; li < mp; ++li)
                a[(size_t)lj * (size_t)lld + (size_t)li] =
                    X[(size_t)ro_l2g(li, nb, myrow, pr) * (size_t)n + j];
        }
        for (int lj = 0; lj < nqb; ++lj) {
            const size_t j = (size_t)ro_l2g(lj, nb, mycol, pc);
            for (int li = 0; li < mp; ++li)
                b[(size_t)lj * (size_t)lld + (size_t)li] =
                    Y[(size_t)ro_l2g(li, nb, myrow, pr) * (size_t)k + j];
        }
        int info = 0;
        pdgels_("N", &m, &n, &k, a, &ione, &ione, desca, b, &ione, &ione, descb, work, &lwork,
                &info, 1);
        if (info != 0) {
            st = RPU_FAIL(RPU_ERR_INTERNAL, RO_FN ": pdgels info %d", info);
        } else {
            for (int d = 0; d < n; ++d) {
                if ((d / nb) % pr != myrow || (d / nb) % pc != mycol) continue;
                const double r =
                    fabs(a[(size_t)ro_g2l(d, nb, pc) * (size_t)lld + (size_t)ro_g2l(d, nb, pr)]);
                if (!(r >= local[0])) local[0] = r; /* NaN sticks */
            }
            for (int lj = 0; lj < nqb; ++lj)
                for (int li = 0; li < mp && ro_l2g(li, nb, myrow, pr) < n; ++li)
                    if (!isfinite(b[(size_t)lj * (size_t)lld + (size_t)li])) local[1] = -1.0;
        }
    }
    if (go) {
        st = rpu_agree(comm, st);
        go = st == RPU_OK;
    }
    if (go) {
        double global[2];
        if (MPI_Allreduce(local, global, 2, MPI_DOUBLE, MPI_MIN, comm) != MPI_SUCCESS) {
            st = RPU_FAIL(RPU_ERR_MPI, RO_FN ": MPI_Allreduce (rank check) failed");
        } else {
            /* the same numbers on every rank, so the same decision and message */
            const double cmax = ro_max_col_norm(m, n, X);
            const double tol = (double)(m > n ? m : n) * DBL_EPSILON * cmax;
            if (!(global[0] > tol)) {
                st = RPU_FAIL(RPU_ERR_ARG,
                              RO_FN ": X [%d, %d] is rank deficient (numerically): smallest "
                                    "|R_jj| of its QR factor %.3g <= %.3g = max(m, n) * eps * "
                                    "largest column norm; the least-squares solution is not "
                                    "unique",
                              m, n, global[0], tol);
            } else if (global[1] < 0.0) {
                st = RPU_FAIL(RPU_ERR_ARG,
                              RO_FN ": the solution overflowed (non-finite values); X [%d, %d] "
                                    "is too ill-conditioned or Y too large",
                              m, n);
            }
        }
    }

    /* 7. assemble B on every rank */
    if (st == RPU_OK) {
        memset(B, 0, (size_t)n * (size_t)k * sizeof *B);
        if (in_grid) {
            for (int lj = 0; lj < nqb; ++lj) {
                const size_t j = (size_t)ro_l2g(lj, nb, mycol, pc);
                for (int li = 0; li < mp; ++li) {
                    const int i = ro_l2g(li, nb, myrow, pr);
                    if (i >= n) break; /* local rows ascend with global rows */
                    B[(size_t)i * (size_t)k + j] = b[(size_t)lj * (size_t)lld + (size_t)li];
                }
            }
        }
        if (MPI_Allreduce(MPI_IN_PLACE, B, n * k, MPI_DOUBLE, MPI_SUM, comm) != MPI_SUCCESS)
            st = RPU_FAIL(RPU_ERR_MPI, RO_FN ": MPI_Allreduce (solution) failed");
    }

    /* 8. clean up */
    free(work);
    free(b);
    free(a);
    if (in_grid) Cblacs_gridexit(ctxt);
    Cfree_blacs_system_handle(handle);
    MPI_Comm_free(&comm);
    return st;
}

rpu_status rpu_readout_lstsq(MPI_Comm comm, int m, int n, int k, const double *X, const double *Y,
                             double *B) {
    if (comm == MPI_COMM_NULL) return RPU_FAIL(RPU_ERR_ARG, RO_FN ": comm is MPI_COMM_NULL");
    int size;
    if (MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return RPU_FAIL(RPU_ERR_MPI, RO_FN ": MPI_Comm_size failed");
    int pr, pc;
    rpu_readout_grid(size, &pr, &pc);
    return ro_solve(comm, pr, pc, rpu_readout_block_size(n, pr), m, n, k, X, Y, B);
}

rpu_status rpu_readout_lstsq_grid(MPI_Comm comm, int pr, int pc, int nb, int m, int n, int k,
                                  const double *X, const double *Y, double *B) {
    return ro_solve(comm, pr, pc, nb, m, n, k, X, Y, B);
}
