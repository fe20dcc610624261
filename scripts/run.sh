#!/usr/bin/env bash
# Installs what is missing, builds ./build, and runs the main job with the MPI/OpenBLAS
# environment of scripts/env.sh. Until the training driver exists, the main job is the
# tile benchmark: build/src/rpusim bench tile.
#
# usage: bash scripts/run.sh [RPUSIM_ARGS...]     (default: bench tile)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
# shellcheck source=scripts/env.sh
. "$root/scripts/env.sh"
if [ $# -eq 0 ]; then
    set -- bench tile
fi
echo "+ build/src/rpusim $*"
exec "$root/build/src/rpusim" "$@"
