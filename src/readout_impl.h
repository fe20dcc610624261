/* Private: the least-squares solver of readout.c with the grid and block size chosen by
 * the caller, so that tests can exercise grids with ranks left out (2 ranks on a 1x1
 * grid), wide grids (pc > pr) and tiny blocks (many blocks per rank) at the rank counts
 * the test suite runs. */
#ifndef RPUSIM_READOUT_IMPL_H
#define RPUSIM_READOUT_IMPL_H

#include <mpi.h>

#include "rpusim/status.h"

/* Block size of rpu_readout_lstsq for n unknowns on pr process rows (pure):
 * min(32, max(1, ceil(n / pr))); pr < 1 is taken as 1. */
int rpu_readout_block_size(int n, int pr);

/* rpu_readout_lstsq on a pr x pc grid (pr * pc <= size of comm) with nb x nb blocks
 * (collective on comm). pr, pc, nb must be >= 1 and the same on every rank; otherwise as
 * rpu_readout_lstsq (same errors; a grid larger than comm is RPU_ERR_ARG). */
rpu_status rpu_readout_lstsq_grid(MPI_Comm comm, int pr, int pc, int nb, int m, int n, int k,
                                  const double *X, const double *Y, double *B);

#endif
