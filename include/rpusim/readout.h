/* rpusim — realistic weight read-out (spec §8.1): the dense least-squares solve
 * min ||X B - Y||_F that turns a tile's responses Y to probe inputs X into weights, done
 * in parallel with ScaLAPACK (pdgels, QR) on a 2-D BLACS process grid.
 *
 * Inputs and outputs are replicated: every rank of the communicator passes the same X and
 * Y and receives the same B, bit for bit. Each grid rank copies its own block-cyclic pieces
 * straight out of the replicated X and Y (no redistribution), and the solution is gathered
 * by an exact MPI_Allreduce (one nonzero contributor per element).
 *
 * The BLACS keep process-wide state (context tables), so calls must not run concurrently
 * from several threads of one process. The library never calls blacs_exit (which may
 * finalize MPI); each call frees the grid and the system handle it created. The BLACS
 * themselves initialise on MPI_COMM_WORLD on first use (that is inside ScaLAPACK; rpusim
 * does not use MPI_COMM_WORLD). */
#ifndef RPUSIM_READOUT_H
#define RPUSIM_READOUT_H

#include <mpi.h>

#include "rpusim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The process grid rpu_readout_lstsq uses on P ranks (pure function, not collective):
 * pc = floor(sqrt(P)), pr = floor(P / pc), so pr >= pc, pr * pc <= P and the grid is as
 * square as possible: P = 1..9 give 1x1, 2x1, 3x1, 2x2, 2x2, 3x2, 3x2, 4x2, 3x3. Ranks
 * pr * pc .. P-1 of the communicator are outside the grid. P < 1 gives 0x0. NULL outputs
 * are skipped. */
void rpu_readout_grid(int P, int *pr, int *pc);

/* Least squares: B = argmin ||X B - Y||_F (collective on comm).
 *
 * X [m, n] and Y [m, k] are row-major doubles with the same contents on every rank of
 * comm (replicated inputs); on success B [n, k] (row-major) is written on every rank and is
 * bitwise identical on all of them. Requires m >= n >= 1, k >= 1, n * k <= INT_MAX, finite
 * X and Y, and B not overlapping X or Y. X, Y are not modified.
 *
 * Method: Householder QR with ScaLAPACK pdgels (no pivoting) on the grid
 * rpu_readout_grid(size of comm) with square nb x nb blocks,
 * nb = min(32, max(1, ceil(n / pr))) (every process row holds part of the leading n x n
 * block, where the triangular factor lives, when n >= pr; 32 caps the QR panel width), built
 * on a duplicate of comm (Csys2blacs_handle, row-major grid); ranks outside the grid only
 * take part in the agreement and the final reduction. Results agree across rank counts to
 * rounding (the grid, and so the order of operations, depends on the rank count).
 *
 * X must have full column rank: X is rejected as rank deficient when the smallest
 * |R_jj| of its QR factor is <= max(m, n) * DBL_EPSILON * (largest column 2-norm of X),
 * which bounds the reciprocal condition number from above like numpy's default rcond. (pdgels
 * itself does not detect rank deficiency; without this check it would return huge,
 * meaningless values.) The minimizer is then unique.
 *
 * Errors (the same status and message on every rank; B is left untouched):
 *   RPU_ERR_ARG     comm is MPI_COMM_NULL or an intercommunicator (these two only on the
 *                   calling rank, nothing collective is attempted), m < n, n < 1, k < 1,
 *                   n * k > INT_MAX, a NULL pointer, a non-finite value in X or Y, X rank
 *                   deficient (message says so, with min |R_jj| and the threshold), or a
 *                   solution that overflowed to a non-finite value;
 *   RPU_ERR_NOMEM   the local pieces or the workspace could not be allocated;
 *   RPU_ERR_MPI     an MPI call failed;
 *   RPU_ERR_INTERNAL ScaLAPACK rejected an argument (info < 0; a bug in rpusim).
 * Local failures (e.g. a NULL pointer on one rank) are agreed on before any ScaLAPACK
 * call, so no rank is left waiting inside a collective. */
rpu_status rpu_readout_lstsq(MPI_Comm comm, int m, int n, int k, const double *X, const double *Y,
                             double *B);

#ifdef __cplusplus
}
#endif
#endif
