# shellcheck shell=bash
# Environment for running rpusim with Open MPI + OpenBLAS on a small machine
# (shared/notes/toolchain.md §3). Source it:  . scripts/env.sh
# Values already set in the environment are kept.

# mpiexec refuses to run as root unless both are set (harmless for other users).
export OMPI_ALLOW_RUN_AS_ROOT="${OMPI_ALLOW_RUN_AS_ROOT:-1}"
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}"
# More ranks than cores: allow it, and let idle ranks yield instead of busy-polling.
export OMPI_MCA_rmaps_base_oversubscribe="${OMPI_MCA_rmaps_base_oversubscribe:-1}"
export OMPI_MCA_mpi_yield_when_idle="${OMPI_MCA_mpi_yield_when_idle:-1}"
# One OpenBLAS thread per rank: ranks already fill the cores.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
# OpenBLAS 0.3.21 does not know recent Intel CPUs and falls back to slow SSE3 kernels;
# name a kernel family the CPU supports (only when the user has not chosen one).
if [ -z "${OPENBLAS_CORETYPE+x}" ] && [ -r /proc/cpuinfo ]; then
    if grep -qw avx512f /proc/cpuinfo; then
        export OPENBLAS_CORETYPE=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo; then
        export OPENBLAS_CORETYPE=Haswell
    fi
fi
