#!/usr/bin/env bash
# Installs what is missing, builds ./build, and runs the main job with the MPI/OpenBLAS
# environment of scripts/env.sh: training the small CNN of data/digits-cnn.ini on the
# handwritten digits shipped in data/, on 2 MPI ranks.
#
# usage: bash scripts/run.sh                  (the main job)
#        bash scripts/run.sh RPUSIM_ARGS...   (build/src/rpusim RPUSIM_ARGS..., one process)
#        RANKS=4 bash scripts/run.sh          (the main job on 4 ranks)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
# shellcheck source=scripts/env.sh
. "$root/scripts/env.sh"
cd "$root"
if [ $# -eq 0 ]; then
    ranks=${RANKS:-2}
    echo "+ mpirun -n $ranks build/src/rpusim train data/digits-cnn.ini"
    exec mpirun -n "$ranks" build/src/rpusim train data/digits-cnn.ini
fi
echo "+ build/src/rpusim $*"
exec build/src/rpusim "$@"
