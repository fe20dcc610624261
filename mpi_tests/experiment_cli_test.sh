#!/usr/bin/env bash
# rpusim train on experiment files and --set overrides (issue 13, defects 4-7 and 9): what
# a user sees. Bad inputs exit 2 before any epoch (no epoch or progress line, no metrics
# file) with a message naming the file and line or the --set override; a checkpoint in a
# directory that does not exist yet is written there; a long comment line sets nothing.
# usage: experiment_cli_test.sh RPUSIM MPIEXEC WORKDIR
set -u
rpusim=$1
mpiexec=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
# shellcheck source=testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/testlib.sh"

exp=$work/exp.ini
cat >"$exp" <<EOF
[run]
epochs = 1
batch_size = 8
output_dir = $work/out
[rpu]
kind = floating_point
[data]
dataset = synthetic
synthetic_n = 16
synthetic_classes = 3
synthetic_size = 4
[layer.flat]
type = flatten
[layer.fc]
type = linear
out = 3
EOF

# train LOG [ARGS...]: rpusim train on 2 ranks; LOG gets stdout and stderr, $rc the status
train() {
    local log=$1
    shift
    "$mpiexec" -n 2 "$rpusim" train "$@" >"$log" 2>&1
    rc=$?
}
no_epoch() { # no_epoch LOG: nothing trained
    ! grep -Eq '^epoch +[0-9]|^epoch [0-9]+/' "$1" && [ ! -e "$work/out/metrics.csv" ]
}
says() { grep -qF -- "$2" "$1" || { echo "  $1 lacks: $2" >&2; cat "$1" >&2; return 1; }; }

# a layer name a checkpoint cannot store (defect 7): refused at parse, with its line
sed 's/^\[layer.fc\]$/[layer.f c]/' "$exp" >"$work/badname.ini"
train "$work/badname.log" "$work/badname.ini"
check "bad layer name: exit 2" test "$rc" -eq 2
check "bad layer name: names the file and line" says "$work/badname.log" "badname.ini:14:"
check "bad layer name: names the rule" says "$work/badname.log" "[A-Za-z0-9_.-]"
check "bad layer name: nothing trained" no_epoch "$work/badname.log"

# a checkpoint directory that cannot be created (defect 7): stops before the first step
touch "$work/a-file"
train "$work/ckfile.log" "$exp" --set "run.checkpoint=$work/a-file/sub/ck.h5"
check "checkpoint under a file: exit 1" test "$rc" -eq 1
check "checkpoint under a file: names the key" says "$work/ckfile.log" "(--set run.checkpoint)"
check "checkpoint under a file: names the path" says "$work/ckfile.log" "$work/a-file"
check "checkpoint under a file: nothing trained" no_epoch "$work/ckfile.log"

# a checkpoint directory that does not exist yet (defect 7): created, the checkpoint written
train "$work/newdir.log" "$exp" --set "run.checkpoint=$work/new/dir/ck.h5"
check "checkpoint in a new directory: exit 0" test "$rc" -eq 0
check "checkpoint in a new directory: written" test -f "$work/new/dir/ck.h5"
check "checkpoint in a new directory: one epoch" says "$work/newdir.log" "epoch   1"
rm -rf "$work/out"

# a --set value with a newline (defect 6): refused, shown escaped
train "$work/newline.log" "$exp" --set "run.checkpoint=ck.h5
[run]
epochs=2"
check "--set with a newline: exit 2" test "$rc" -eq 2
check "--set with a newline: names --set, escaped" says "$work/newline.log" \
    "--set 'run.checkpoint=ck.h5\\n[run]\\nepochs=2': control character"
check "--set with a newline: nothing trained" no_epoch "$work/newline.log"

# --set on a layer the file does not have (defect 9)
train "$work/nope.log" "$exp" --set layer.nope.out=3
check "--set layer.nope: exit 2" test "$rc" -eq 2
check "--set layer.nope: names the override, the file and its layers" says "$work/nope.log" \
    "--set 'layer.nope.out=3': $exp has no [layer.nope] (its layers: flat, fc)"

# a checkpoint name longer than MPI-IO can open (Open MPI's OMPIO aborts on 241+ bytes
# plus ".tmp"): refused before the first step
pad() { printf "$1%.0s" $(seq 1 "$2"); }
ckdir=$work/$(pad e $((250 - ${#work} - 7)))
train "$work/ck250.log" "$exp" --set "run.checkpoint=$ckdir/ck.h5"
check "250-byte checkpoint path: exit 1" test "$rc" -eq 1
check "250-byte checkpoint path: names the limit" says "$work/ck250.log" \
    "[run] checkpoint is 250 bytes long; MPI-IO"
check "250-byte checkpoint path: nothing trained" no_epoch "$work/ck250.log"

# a 300-byte comment whose tail reads "epochs = 3" (defect 4), a 234-byte checkpoint path
# and a value with " ;" by --set: one epoch, the checkpoint where the path says, and the
# stored experiment.ini reads back the same (rpusim eval of it with that checkpoint)
long=$(pad x 290)
ckdir=$work/$(pad d $((234 - ${#work} - 7)))
{
    echo "# ${long}epochs = 3"
    cat "$exp"
} >"$work/long.ini"
sed -i "s|^output_dir = .*|output_dir = $work/out ; the output\ncheckpoint = $ckdir/ck.h5|" \
    "$work/long.ini"
train "$work/long.log" "$work/long.ini" --set "data.path=a ;b"
check "long lines: exit 0" test "$rc" -eq 0
check "long lines: one epoch (the comment set nothing)" \
    bash -c "[ \$(grep -cE '^epoch +[0-9]+  train' '$work/long.log') -eq 1 ]"
check "long lines: the checkpoint at a 234-byte path" test -f "$ckdir/ck.h5"
check "long lines: the stored text quotes the ' ;' value" \
    grep -qxF 'path = "a ;b"' "$work/out/experiment.ini"
check "long lines: the stored experiment evaluates its checkpoint" \
    "$rpusim" eval "$work/out/experiment.ini" --checkpoint "$ckdir/ck.h5"

finish experiment_cli
