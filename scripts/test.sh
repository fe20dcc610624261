#!/usr/bin/env bash
# Installs what is missing, then builds and runs the whole test suite twice:
#   1. normal build            ./build            (scripts/setup.sh)
#   2. ASan + UBSan build      ./build-sanitize   (scripts/setup.sh --sanitize)
# Exits nonzero if a build or either suite fails; prints the time of each part.
#
# usage: bash scripts/test.sh [CTEST_ARGS...]     e.g. bash scripts/test.sh -R tile
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
. "$root/scripts/env.sh"

t_start=$SECONDS
status=0
summary=()

# suite NAME BUILD_DIR [SETUP_ARGS...]
suite() {
    local name=$1 dir=$2 t=$SECONDS result
    shift 2
    echo "=== $name: build ($dir)"
    if ! bash "$root/scripts/setup.sh" --build-dir "$dir" "$@"; then
        result="BUILD FAILED"
    else
        echo "=== $name: ctest"
        if (cd "$dir" && ctest --output-on-failure -j "$jobs" "${ctest_args[@]}"); then
            result="passed"
        else
            result="TESTS FAILED"
        fi
    fi
    [ "$result" = passed ] || status=1
    summary+=("$(printf '%-10s %-13s %4d s' "$name" "$result" $((SECONDS - t)))")
}

ctest_args=("$@")
# As many tests at once as there are cores: each MPI test declares its rank count
# (PROCESSORS), so ctest never runs more ranks than cores except for a test that alone
# needs more (np 3/4 on 2 cores run alone, oversubscribed).
jobs=$(nproc 2>/dev/null || echo 1)
suite normal "$root/build"
suite sanitized "$root/build-sanitize" --sanitize

echo "=== summary"
printf '%s\n' "${summary[@]}"
total=$((SECONDS - t_start))
printf 'total      %-13s %4d s (%dm%02ds)\n' "$([ $status = 0 ] && echo passed || echo FAILED)" \
    $total $((total / 60)) $((total % 60))
exit $status
