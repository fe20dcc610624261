#!/usr/bin/env bash
# CTest test "install_consumer" (registered in mpi_tests/CMakeLists.txt).
#
# Installs rpusim twice into scratch prefixes -- the finished build under test, and a
# second build of the same sources with the other library type (BUILD_SHARED_LIBS flipped;
# library and command only, same build type and sanitizer setting) -- so that both a shared
# librpusim.so and a static librpusim.a are covered. For each it checks what was installed,
# then builds the consumer program in this directory against it twice -- through the CMake
# package (find_package(rpusim)) and through pkg-config (`pkg-config --libs rpusim` for the
# shared library, `pkg-config --static --libs rpusim` for the static one) -- and runs each
# build under mpiexec -n 2. The link lines are checked: a shared consumer links librpusim
# and MPI only (no HDF5, ScaLAPACK, curl, crypto or szip); a static one adds HDF5 and
# ScaLAPACK, but not what HDF5 itself links (curl, crypto, szip). The MPI environment
# (root, oversubscribe, ...) comes from the test's ENVIRONMENT property.
#
# usage: run_consumer_test.sh BUILD_DIR CONSUMER_SRC_DIR WORK_DIR CMAKE C_COMPILER MPIEXEC
set -euo pipefail

if [ $# -ne 6 ]; then
    echo "usage: $0 BUILD_DIR CONSUMER_SRC_DIR WORK_DIR CMAKE C_COMPILER MPIEXEC" >&2
    exit 2
fi
build=$1 src=$2 work=$3 cmake=$4 cc=$5 mpiexec=$6
top=$(cd "$src/../.." && pwd)

fail() {
    echo "install_consumer: FAIL: $*" >&2
    exit 1
}
step() { echo "== $*"; }
cache_value() { # the value of a CMake cache entry of build dir $1
    sed -n "s/^$2:[A-Z]*=//p" "$1/CMakeCache.txt" | head -n1
}

rm -rf "$work"
mkdir -p "$work"

# Installs build dir $1 into prefix $2 and checks the installed files; prints the kind.
install_and_check() {
    local b=$1 prefix=$2
    "$cmake" --install "$b" --prefix "$prefix" >"$prefix.install.log" ||
        { cat "$prefix.install.log"; fail "cmake --install $b"; }
    [ -x "$prefix/bin/rpusim" ] || fail "bin/rpusim not installed in $prefix"
    local lib
    lib=$(find "$prefix" -name 'librpusim.a' -o -name 'librpusim.so' | head -n1)
    [ -n "$lib" ] || fail "librpusim.{a,so} not installed in $prefix"
    local config pc
    config=$(find "$prefix" -name rpusimConfig.cmake | head -n1)
    [ -n "$config" ] || fail "rpusimConfig.cmake not installed"
    [ -f "$(dirname "$config")/rpusimConfigVersion.cmake" ] || fail "rpusimConfigVersion.cmake not installed"
    [ -f "$(dirname "$config")/rpusimTargets.cmake" ] || fail "rpusimTargets.cmake not installed"
    pc=$(find "$prefix" -name rpusim.pc | head -n1)
    [ -n "$pc" ] || fail "rpusim.pc not installed"
    for h in "$top"/include/rpusim/*.h; do
        [ -f "$prefix/include/rpusim/$(basename "$h")" ] || fail "header $(basename "$h") not installed"
    done
    if ldd "$prefix/bin/rpusim" | grep 'not found' >&2; then
        fail "installed bin/rpusim has unresolved shared libraries"
    fi
    grep -q 'Requires.private:.*hdf5' "$pc" || fail "rpusim.pc: HDF5 is not in Requires.private"
    if grep -E '^(Requires|Libs):.*(hdf5|scalapack|curl)' "$pc" >&2; then
        fail "rpusim.pc: a private dependency is public"
    fi
    case $lib in
    *.so) echo shared ;;
    *) echo static ;;
    esac
}

# Builds and runs the consumer against prefix $1 of kind $2 (shared|static) both ways.
consume() {
    local prefix=$1 kind=$2 d=$work/$2
    mkdir -p "$d"
    step "$kind: consumer through find_package(rpusim)"
    "$cmake" -S "$src" -B "$d/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release >"$d/cmake-configure.log" ||
        { cat "$d/cmake-configure.log"; fail "$kind: configure of the CMake consumer"; }
    grep -q "($(echo "$kind" | tr "[:lower:]" "[:upper:]")_LIBRARY)" "$d/cmake-configure.log" ||
        fail "$kind: the CMake package does not say it is a $kind library"
    "$cmake" --build "$d/cmake-build" >"$d/cmake-build.log" ||
        { cat "$d/cmake-build.log"; fail "$kind: build of the CMake consumer"; }
    local link
    link=$(cat "$d/cmake-build/CMakeFiles/rpusim_consumer.dir/link.txt")
    echo "link line: $link"
    check_link "$kind" "CMake" "$link"
    mkdir -p "$d/scratch-cmake"
    "$mpiexec" -n 2 "$d/cmake-build/rpusim_consumer" "$d/scratch-cmake" | tee "$d/cmake-run.txt"
    grep -q 'rpusim consumer: 2 rank(s), .* OK$' "$d/cmake-run.txt" || fail "$kind: CMake-built consumer"

    step "$kind: consumer through pkg-config rpusim"
    local pcdir
    pcdir=$(dirname "$(find "$prefix" -name rpusim.pc | head -n1)")
    local static_flag=""
    [ "$kind" = static ] && static_flag=--static
    local flags cflags libdir
    flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config $static_flag --libs rpusim) ||
        fail "$kind: pkg-config cannot read rpusim.pc"
    cflags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags rpusim)
    libdir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir rpusim)
    echo "pkg-config $static_flag --libs rpusim: $flags"
    check_link "$kind" "pkg-config" "$flags"
    # Every public header compiles on its own with the package's flags.
    for h in "$prefix"/include/rpusim/*.h; do
        # shellcheck disable=SC2086  # $cflags is a list of words
        printf '#include <rpusim/%s>\n' "$(basename "$h")" |
            "$cc" -std=c11 -Wall -Wextra -Werror -fsyntax-only -x c - $cflags ||
            fail "installed header $(basename "$h") does not compile on its own"
    done
    # shellcheck disable=SC2086
    "$cc" -std=c11 -Wall -Wextra -o "$d/consumer-pkgconfig" "$src/main.c" $cflags $flags -lm \
        -Wl,-rpath,"$libdir"
    mkdir -p "$d/scratch-pc"
    "$mpiexec" -n 2 "$d/consumer-pkgconfig" "$d/scratch-pc" | tee "$d/pkgconfig-run.txt"
    grep -q 'rpusim consumer: 2 rank(s), .* OK$' "$d/pkgconfig-run.txt" ||
        fail "$kind: pkg-config-built consumer"
}

# The link line $3 of a $1 consumer built through $2.
check_link() {
    local kind=$1 how=$2 line=$3
    if echo "$line" | grep -Eio 'curl|crypto|libsz|-lsz\b' >&2; then
        fail "$kind consumer ($how): HDF5's own dependencies on the link line"
    fi
    if [ "$kind" = shared ]; then
        if echo "$line" | grep -Eio 'hdf5|scalapack|inih|openblas' >&2; then
            fail "shared consumer ($how): rpusim's private dependencies on the link line"
        fi
        echo "$line" | grep -Eq 'librpusim\.so|-lrpusim' || fail "shared consumer ($how): no librpusim"
    else
        echo "$line" | grep -q hdf5 || fail "static consumer ($how): HDF5 missing from the link line"
        echo "$line" | grep -q scalapack || fail "static consumer ($how): ScaLAPACK missing"
        echo "$line" | grep -Eq 'librpusim\.a|-lrpusim' || fail "static consumer ($how): no librpusim"
    fi
}

step "install the build under test ($build)"
kind_a=$(install_and_check "$build" "$work/prefix-a")
echo "build under test: $kind_a library"

if [ "$kind_a" = shared ]; then other=OFF; kind_b=static; else other=ON; kind_b=shared; fi
step "build and install the $kind_b library from $top"
"$cmake" -S "$top" -B "$work/build-b" -DBUILD_SHARED_LIBS=$other -DRPUSIM_TESTS=OFF \
    -DRPUSIM_BENCHMARKS=OFF -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE="$(cache_value "$build" CMAKE_BUILD_TYPE)" \
    -DRPUSIM_SANITIZE="$(cache_value "$build" RPUSIM_SANITIZE)" \
    -DRPUSIM_NATIVE="$(cache_value "$build" RPUSIM_NATIVE)" >"$work/build-b.log" ||
    { cat "$work/build-b.log"; fail "configure of the $kind_b build"; }
"$cmake" --build "$work/build-b" -j2 >>"$work/build-b.log" ||
    { tail -n 50 "$work/build-b.log"; fail "build of the $kind_b library"; }
kind_b_got=$(install_and_check "$work/build-b" "$work/prefix-b")
[ "$kind_b_got" = "$kind_b" ] || fail "the second build gave a $kind_b_got library, want $kind_b"

consume "$work/prefix-a" "$kind_a"
consume "$work/prefix-b" "$kind_b"

echo "install_consumer: OK (shared and static, CMake and pkg-config)"
