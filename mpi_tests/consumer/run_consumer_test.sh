#!/usr/bin/env bash
# CTest test "install_consumer" (registered in mpi_tests/CMakeLists.txt).
#
# Installs a finished rpusim build into a scratch prefix, checks what was installed, then
# builds the consumer program in this directory against it twice -- through the CMake
# package (find_package(rpusim)) and through `pkg-config rpusim` -- and runs each build
# under mpiexec -n 2. The MPI environment (root, oversubscribe, ...) comes from the test's
# ENVIRONMENT property (RPUSIM_MPI_TEST_ENV).
#
# usage: run_consumer_test.sh BUILD_DIR CONSUMER_SRC_DIR WORK_DIR CMAKE C_COMPILER MPIEXEC
set -euo pipefail

if [ $# -ne 6 ]; then
    echo "usage: $0 BUILD_DIR CONSUMER_SRC_DIR WORK_DIR CMAKE C_COMPILER MPIEXEC" >&2
    exit 2
fi
build=$1 src=$2 work=$3 cmake=$4 cc=$5 mpiexec=$6
top=$(cd "$src/../.." && pwd)
prefix=$work/prefix

fail() {
    echo "install_consumer: FAIL: $*" >&2
    exit 1
}
step() { echo "== $*"; }

rm -rf "$work"
mkdir -p "$work"

step "cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix"

step "installed files"
[ -x "$prefix/bin/rpusim" ] || fail "bin/rpusim not installed"
lib=$(find "$prefix" -name 'librpusim.a' -o -name 'librpusim.so' | head -n1)
[ -n "$lib" ] || fail "librpusim.{a,so} not installed"
config=$(find "$prefix" -name rpusimConfig.cmake | head -n1)
[ -n "$config" ] || fail "rpusimConfig.cmake not installed"
[ -f "$(dirname "$config")/rpusimConfigVersion.cmake" ] || fail "rpusimConfigVersion.cmake not installed"
[ -f "$(dirname "$config")/rpusimTargets.cmake" ] || fail "rpusimTargets.cmake not installed"
pc=$(find "$prefix" -name rpusim.pc | head -n1)
[ -n "$pc" ] || fail "rpusim.pc not installed"
for h in "$top"/include/rpusim/*.h; do
    [ -f "$prefix/include/rpusim/$(basename "$h")" ] || fail "header $(basename "$h") not installed"
done
echo "library $lib"
echo "config  $config"
echo "pc      $pc"
if ldd "$prefix/bin/rpusim" | grep 'not found'; then
    fail "installed bin/rpusim has unresolved shared libraries"
fi

step "consumer through find_package(rpusim)"
"$cmake" -S "$src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release
"$cmake" --build "$work/cmake-build"
"$mpiexec" -n 2 "$work/cmake-build/rpusim_consumer" | tee "$work/cmake-run.txt"
grep -q 'rpusim consumer: 2 rank(s), .* OK$' "$work/cmake-run.txt" || fail "CMake-built consumer"

step "consumer through pkg-config rpusim"
PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
pkg-config --exists --print-errors rpusim || fail "pkg-config cannot read rpusim.pc"
flags=$(pkg-config --cflags --libs rpusim)
cflags=$(pkg-config --cflags rpusim)
libdir=$(pkg-config --variable=libdir rpusim)
echo "pkg-config --cflags --libs rpusim: $flags"
# Every public header compiles on its own with the package's flags.
for h in "$prefix"/include/rpusim/*.h; do
    # shellcheck disable=SC2086  # $cflags is a list of words
    printf '#include <rpusim/%s>\n' "$(basename "$h")" |
        "$cc" -std=c11 -Wall -Wextra -Werror -fsyntax-only -x c - $cflags ||
        fail "installed header $(basename "$h") does not compile on its own"
done
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -o "$work/consumer-pkgconfig" "$src/main.c" $flags \
    -Wl,-rpath,"$libdir"
"$mpiexec" -n 2 "$work/consumer-pkgconfig" | tee "$work/pkgconfig-run.txt"
grep -q 'rpusim consumer: 2 rank(s), .* OK$' "$work/pkgconfig-run.txt" || fail "pkg-config-built consumer"

echo "install_consumer: OK"
