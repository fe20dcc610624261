#!/bin/bash
# A checkpoint save that runs out of room, for real (issue 13, defect 2), on NP ranks:
# through the library (test_ckpt_full) and through `rpusim train` end to end.
# Usage: ckpt_full_test.sh RPUSIM TEST_CKPT_FULL MPIEXEC SRCDIR WORKDIR NP
#
# Run as root (CI), an 8 MiB tmpfs is mounted under WORKDIR (unmounted by a trap) and both
# a full file system and a file size limit (RLIMIT_FSIZE) are tested; otherwise only the
# file size limit. Every command runs under `timeout`: a hang shows as a failure.
#
# End to end: the digits MLP with a 3072-unit hidden layer (checkpoint ~4.6 MB), two epochs,
# a checkpoint after each. On the tmpfs the first checkpoint fits and the second does not;
# with `ulimit -f` the first is written before the limit is lowered for a resumed run.
# Expected: exit status 1, exactly one "rpusim train:" line on stderr naming the file and
# the fault, no other diagnostics (no HDF5-DIAG, no MPI-IO noise, no crash; mpiexec runs
# with -q so that its own report of a nonzero exit is not counted), no .tmp left, the
# previous checkpoint verifies (`rpusim inspect --verify`), holds exactly the layers of an
# uninterrupted run's epoch-1 checkpoint (h5diff of /layers) and evaluates like it, and
# resuming from it elsewhere finishes epoch 2 with the same numbers as that run.
set -u
RPUSIM=$1 TEST=$2 MPIEXEC=$3 SRC=$4 WORK=$5 NP=$6
T=${CKPT_FULL_TIMEOUT:-240} # seconds per command
. "$(dirname "$0")/testlib.sh"

FS=$WORK/fs
cleanup() {
    if mountpoint -q "$FS" 2>/dev/null; then umount "$FS" || umount -l "$FS"; fi
}
trap cleanup EXIT
cleanup
rm -rf "$WORK" && mkdir -p "$WORK/scratch" "$FS" || exit 1
full=0
if [ "$(id -u)" = 0 ]; then
    # root (CI): a full file system must be tested, so a failing mount fails the test
    mount -t tmpfs -o size=8m tmpfs "$FS" || { echo "FAIL: cannot mount a tmpfs on $FS"; exit 1; }
    full=1
else
    echo "not root: no tmpfs; only the file size limit is tested"
fi

mpirun_t() { timeout -k 10 "$T" "$MPIEXEC" -q -n "$NP" "$@"; }

# ---- 1. the library
if [ $full = 1 ]; then
    mpirun_t "$TEST" "$WORK/scratch" "$FS"
else
    mpirun_t "$TEST" "$WORK/scratch"
fi
check "library test on $NP rank(s) (exit $?)" test $? -eq 0
[ $full = 1 ] && check "tmpfs empty after the library test" test -z "$(ls -A "$FS")"

# ---- 2. rpusim train end to end
exp=$WORK/mlp.ini
cat > "$exp" <<EOF
[run]
seed = 3
epochs = 2
batch_size = 16
lr = 0.1
output_dir = $WORK/out
checkpoint = $WORK/ref/ck.h5
checkpoint_every = 1
keep_checkpoints = 2
progress_every = 1000

[rpu]
kind = single

[data]
dataset = digits
path = $SRC/data

[layer.flatten]
type = flatten

[layer.fc1]
type = linear
out = 3072

[layer.relu]
type = relu

[layer.fc2]
type = linear
out = 10

[loss]
type = cross_entropy
EOF

# the epoch lines ("epoch   N  train loss ... test loss L acc A  S s") without the seconds
epoch_line() { grep "^epoch *$1 " "$2" | sed 's/  *[0-9.]* s$//'; }

# eval_numbers CKPT: "LOSS ACC" of `rpusim eval`
eval_numbers() {
    mpirun_t "$RPUSIM" eval "$exp" --checkpoint "$1" 2>&1 |
        sed -n 's/^test loss \([0-9.]*\) accuracy \([0-9.]*\)$/\1 \2/p'
}

# the reference: two epochs without a fault; its epoch-1 checkpoint is ref/ck.h5.1
mkdir -p "$WORK/ref"
mpirun_t "$RPUSIM" train "$exp" > "$WORK/ref.out" 2> "$WORK/ref.err"
check "reference run (exit $?): $(tail -3 "$WORK/ref.err")" test $? -eq 0
ref1=$(epoch_line 1 "$WORK/ref.out") ref2=$(epoch_line 2 "$WORK/ref.out")
check "reference run printed both epochs" test -n "$ref1" -a -n "$ref2"
ref_eval=$(eval_numbers "$WORK/ref/ck.h5.1")
check "eval of the reference's epoch-1 checkpoint: '$ref_eval'" test -n "$ref_eval"

# expect_fault NAME CKPT NEEDLE: the run's exit status, stderr, files; then the previous
# checkpoint CKPT (epoch 1) verifies, evaluates like epoch 1 and resumes like the reference
expect_fault() {
    local name=$1 ck=$2 needle=$3 rc=$4
    local err=$WORK/$name.err
    check "$name: exit status $rc, expected 1" test "$rc" -eq 1
    # nothing on stderr but the progress lines and the one message
    grep -v '^epoch [0-9]*/[0-9]* step ' "$err" > "$err.rest"
    check "$name: stderr has exactly one line besides progress: $(head -c 3000 "$err.rest")" \
        test "$(wc -l < "$err.rest")" -eq 1
    check "$name: the message names $ck and '$needle': $(cat "$err")" \
        grep -q "^rpusim train: checkpoint $ck: .*$needle" "$err.rest"
    check "$name: $ck.tmp left behind" test ! -e "$ck.tmp"
    check "$name: epoch 1 was printed as in the reference" \
        test "$(epoch_line 1 "$WORK/$name.out")" = "$ref1"
    timeout -k 10 "$T" "$RPUSIM" inspect "$ck" --verify > "$WORK/$name.verify" 2>&1
    check "$name: inspect --verify of the previous checkpoint: $(cat "$WORK/$name.verify")" \
        grep -q "^verified [0-9]* objects" "$WORK/$name.verify"
    h5diff "$WORK/ref/ck.h5.1" "$ck" /layers /layers > "$WORK/$name.diff" 2>&1
    check "$name: /layers differ from the reference's epoch 1: $(head -5 "$WORK/$name.diff")" \
        test $? -eq 0
    local got
    got=$(eval_numbers "$ck")
    check "$name: eval gives '$got', the reference's epoch 1 '$ref_eval'" test "$got" = "$ref_eval"
    mkdir -p "$WORK/$name.resume"
    mpirun_t "$RPUSIM" train "$exp" --resume "$ck" --set "run.checkpoint=$WORK/$name.resume/ck.h5" \
        > "$WORK/$name.resume.out" 2> "$WORK/$name.resume.err"
    check "$name: resume (exit $?): $(tail -3 "$WORK/$name.resume.err")" test $? -eq 0
    check "$name: the resumed epoch 2 equals the reference's" \
        test "$(epoch_line 2 "$WORK/$name.resume.out")" = "$ref2"
}

if [ $full = 1 ]; then
    mpirun_t "$RPUSIM" train "$exp" --set "run.checkpoint=$FS/ck.h5" > "$WORK/full.out" 2> "$WORK/full.err"
    expect_fault full "$FS/ck.h5" "space" $?
    check "full: only the checkpoint is on the tmpfs: $(ls -A "$FS")" test "$(ls -A "$FS")" = ck.h5
fi

# the file size limit: epoch 1's checkpoint without a limit (a run of one epoch), then a
# resumed run under `ulimit -f` below the checkpoint's size (SIGXFSZ at its default action)
mkdir -p "$WORK/lim"
mpirun_t "$RPUSIM" train "$exp" --set "run.checkpoint=$WORK/lim/ck.h5" --set run.epochs=1 \
    > "$WORK/limit.out" 2> "$WORK/lim1.err"
check "limit: first epoch (exit $?)" test $? -eq 0
kb=$(( $(stat -c %s "$WORK/lim/ck.h5") / 1024 * 6 / 10 ))
# (the limit is set in each rank: mpiexec itself needs larger files for its shared memory,
# and so do the ranks for Open MPI's shared-memory transport, hence TCP between them)
mpirun_t --mca btl self,tcp bash -c 'ulimit -f "$0" && exec "$@"' "$kb" "$RPUSIM" train "$exp" \
    --resume "$WORK/lim/ck.h5" --set "run.checkpoint=$WORK/lim/ck.h5" \
    > "$WORK/limit2.out" 2> "$WORK/limit.err"
rc=$?
expect_fault limit "$WORK/lim/ck.h5" "file size limit" $rc

finish "ckpt_full np$NP" || { echo "files kept in $WORK"; exit 1; }
cleanup
rm -rf "$WORK"
