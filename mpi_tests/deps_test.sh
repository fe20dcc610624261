#!/usr/bin/env bash
# The test `deps`: scripts/setup.sh installs every package that the scripts and tests use
# (issue 13: on a fresh Debian 12 the test `infer` failed because plot_infer.py imports
# matplotlib and setup.sh did not install python3-matplotlib).
#  (a) mpi_tests/deps_check.py on a small made-up tree whose setup.sh lists too little:
#      it names each module and command whose package is missing, also inside test
#      wrappers, $(...), <(...), bash -c and python3 -c, and a wrapper function it does
#      not know; it does not count heredoc text, case patterns, array words, optional
#      imports, or packages that are merely installed here;
#  (b) the project itself: every module and command is covered by setup.sh's list.
# usage: deps_test.sh SOURCE_DIR WORKDIR
set -u
src=$1
work=$2
py=/usr/bin/python3
checker=$src/mpi_tests/deps_check.py
rm -rf "$work"
mkdir -p "$work/tree/scripts" "$work/tree/mpi_tests"
cd "$work" || exit 1
# shellcheck source=testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/testlib.sh"

# ---------------------------------------------------------------- (a) a made-up tree
t=$work/tree
cat >"$t/scripts/setup.sh" <<'SETUP'
#!/usr/bin/env bash
# lists python3 and hdf5-tools only
[ "${1:-}" = --print-packages ] && printf '%s\n' python3 hdf5-tools
SETUP
cat >"$t/scripts/tool.py" <<'PY'
import os
import numpy
import rpusim_no_such_module
try:
    import matplotlib
except ImportError:
    matplotlib = None
PY
cat >"$t/mpi_tests/a_test.sh" <<'SH'
source testlib.sh
check "dump" h5dump -H x.h5
check "version" expect_rc 0 v.log sbatch --version
diff <(pgrep -x rpusim) want.txt
n=$(bash -c 'scontrol show config | wc -l')
/usr/bin/python3 -c "import h5py"
cat <<EOF
srun in a heredoc is text
EOF
case $n in
h5ls) echo pattern ;;
esac
launch=(mpirun -n 2)
wrap() { "$@"; }
pkgs=(
    # a comment's apostrophe in an array (this hung the checker once)
    h5ls
)
squeue -h
SH
timeout 60 "$py" "$checker" "$t" >a.out 2>a.err
check "(a) the checker fails (and does not hang)" test $? -eq 1
has_fail() { # has_fail TEXT...: a FAIL line with every TEXT
    local line x
    line=$(grep '^FAIL: ' a.err)
    for x in "$@"; do line=$(grep -F -- "$x" <<<"$line"); done
    [ -n "$line" ] || { echo "  no FAIL line with: $*" >&2; cat a.err >&2; return 1; }
}
check "(a) numpy: module, file, package" has_fail "module numpy (scripts/tool.py:2)" python3-numpy
check "(a) a module that does not exist" has_fail "module rpusim_no_such_module" "not found"
check "(a) sbatch inside check and expect_rc" \
    has_fail "command sbatch (mpi_tests/a_test.sh:3)" slurm-client
check "(a) pgrep inside <(...)" has_fail "command pgrep (mpi_tests/a_test.sh:4)" procps
check "(a) scontrol inside \$(bash -c '...')" \
    has_fail "command scontrol (mpi_tests/a_test.sh:5)" slurm-client
check "(a) h5py inside python3 -c" has_fail "module h5py (mpi_tests/a_test.sh:6)" python3-h5py
check "(a) an unknown wrapper function" has_fail "function wrap runs its arguments as a command"
check "(a) squeue after an array with a quote in a comment" \
    has_fail "command squeue (mpi_tests/a_test.sh:19)" slurm-client
check "(a) exactly these 8 faults" test "$(grep -c '^FAIL: ' a.err)" -eq 8
check "(a) listed, heredoc, case pattern, array words, optional import: no fault" \
    bash -c "! grep -E 'h5dump|srun|h5ls|mpirun|matplotlib|module os' a.err"

# ---------------------------------------------------------------- (b) the project
timeout 60 "$py" "$checker" "$src" --verbose >b.out 2>b.err
rc=$?
check "(b) every module and command of scripts/ and mpi_tests/ is installed by setup.sh" \
    test $rc -eq 0
[ $rc -eq 0 ] || cat b.err >&2
check "(b) plot_infer.py's matplotlib is covered by a listed package" \
    grep -q '^module matplotlib .*python3-matplotlib (listed)' b.out
check "(b) h5diff of the tests is covered" grep -q '^command h5diff .*hdf5-tools (listed)' b.out
tail -1 b.out
finish deps_test
