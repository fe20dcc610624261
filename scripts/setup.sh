#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages rpusim needs (only those missing), then configures
# and builds rpusim with CMake. Safe to run again: it installs nothing that is present and
# rebuilds incrementally.
#
# usage: bash scripts/setup.sh [--sanitize] [--build-dir DIR] [--no-install] [--dry-run]
#                              [--with-fashion | --no-fashion] [--print-packages]
#                              [-- CMAKE_ARGS...]
#   --sanitize        AddressSanitizer + UBSan build (-DRPUSIM_SANITIZE=ON) in ./build-sanitize,
#                     compiled with clang when it is installed (then the libFuzzer targets
#                     of fuzz/ are built and run by ctest too), else with the default cc
#   --build-dir DIR   build here instead of ./build (./build-sanitize with --sanitize)
#   --no-install      skip the package step
#   --dry-run         print the package and build commands instead of running them
#   --with-fashion    install Fashion-MNIST (Debian dataset-fashion-mnist, 30 MB installed,
#                     IDX files in /usr/share/datasets/fashion-mnist) and test loading it;
#                     the default
#   --no-fashion      neither install it nor register its test (-DRPUSIM_TEST_FASHION=OFF)
#   --print-packages  print the Debian packages it installs, one a line, and exit (the
#                     test `deps` checks that every module and command the scripts and
#                     tests use comes from one of them)
#   -- CMAKE_ARGS     passed to the CMake configure step (e.g. -DBUILD_SHARED_LIBS=ON)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sanitize=0
build_dir=""
install=1
dry_run=0
fashion=1
print_packages=0
cmake_args=()

while [ $# -gt 0 ]; do
    case "$1" in
    --sanitize) sanitize=1 ;;
    --build-dir)
        [ $# -ge 2 ] || { echo "setup.sh: --build-dir needs a directory" >&2; exit 2; }
        build_dir=$2
        shift
        ;;
    --build-dir=*) build_dir=${1#--build-dir=} ;;
    --no-install) install=0 ;;
    --dry-run) dry_run=1 ;;
    --with-fashion) fashion=1 ;;
    --no-fashion) fashion=0 ;;
    --print-packages) print_packages=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    --)
        shift
        cmake_args=("$@")
        break
        ;;
    *)
        echo "setup.sh: unknown option '$1' (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done

if [ -z "$build_dir" ]; then
    if [ $sanitize = 1 ]; then build_dir=$root/build-sanitize; else build_dir=$root/build; fi
fi

run() {
    echo "+ $*"
    if [ $dry_run = 0 ]; then "$@"; fi
}

# --- packages ---------------------------------------------------------------------------
# Everything the build, the scripts and the tests use beyond Debian's required base
# system; the test `deps` (mpi_tests/deps_check.py) fails when a Python module or a
# command of scripts/ or mpi_tests/ comes from a package that is neither listed here nor
# pulled in by one listed here (Depends/Pre-Depends).
packages=(
    build-essential cmake pkg-config
    openmpi-bin libopenmpi-dev
    libopenblas-dev libscalapack-openmpi-dev
    libhdf5-openmpi-dev hdf5-tools
    zlib1g-dev
    clang libclang-rt-dev
    # glibc's symbols for sanitizer stacks: lsan.supp names __vasprintf_internal
    libc6-dbg
    python3 python3-h5py python3-numpy python3-matplotlib
    python3-torch python3-mpi4py python3-pytest
    # pip install ./python into a venv: the venv gets pip and setuptools, bdist_wheel
    # comes from the system's wheel (a fresh Debian 12 lacks it: "invalid command")
    python3-venv python3-setuptools python3-wheel
    slurmctld slurmd slurm-client munge
)
if [ $fashion = 1 ]; then
    packages+=(dataset-fashion-mnist)
fi
if [ $print_packages = 1 ]; then
    printf '%s\n' "${packages[@]}"
    exit 0
fi

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

if [ $install = 1 ]; then
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "setup.sh: no dpkg-query (not Debian/Ubuntu): install the equivalents of" \
            "${packages[*]} yourself; continuing with the build" >&2
    else
        missing=()
        for p in "${packages[@]}"; do
            is_installed "$p" || missing+=("$p")
        done
        if [ ${#missing[@]} -eq 0 ]; then
            echo "setup.sh: all ${#packages[@]} packages present"
        else
            echo "setup.sh: installing ${missing[*]}"
            if [ "$(id -u)" -eq 0 ]; then
                as_root=()
            elif command -v sudo >/dev/null 2>&1; then
                as_root=(sudo)
            else
                echo "setup.sh: need root (or sudo) to install: ${missing[*]}" >&2
                exit 1
            fi
            apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900)
            run "${apt[@]}" update
            run "${apt[@]}" install -y "${missing[@]}"
            if [ $dry_run = 0 ]; then
                for p in "${missing[@]}"; do
                    is_installed "$p" || { echo "setup.sh: $p did not install" >&2; exit 1; }
                done
            fi
        fi
    fi
fi

# --- configure and build ----------------------------------------------------------------
configure=(cmake -S "$root" -B "$build_dir")
if [ $sanitize = 1 ]; then
    # -O2 -g: sanitizer reports with line numbers at a bearable speed.
    configure+=(-DRPUSIM_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
    # clang brings libFuzzer: the sanitized build then also builds and runs fuzz/.
    if command -v clang >/dev/null 2>&1; then
        configure+=(-DCMAKE_C_COMPILER=clang)
    fi
else
    configure+=(-DRPUSIM_SANITIZE=OFF)
fi
if [ $fashion = 1 ]; then
    configure+=(-DRPUSIM_TEST_FASHION=ON)
else
    configure+=(-DRPUSIM_TEST_FASHION=OFF)
fi
configure+=("${cmake_args[@]}")
run "${configure[@]}"
run cmake --build "$build_dir" -j"$(nproc)"
echo "setup.sh: built in $build_dir"
