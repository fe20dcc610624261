#!/bin/bash
# The rpusim commands that read or write HDF5 files report a bad file with one message
# naming it, and nothing else (issue 13, defect 9: `rpusim export -o missing-dir/w.h5`
# printed 14 lines of HDF5-DIAG first). Usage: ckpt_errors_test.sh RPUSIM MPIEXEC WORKDIR
#
# For export, import, inspect (with and without --verify) and eval, on 1 and 2 ranks where
# the command runs under mpiexec (with -q: mpiexec's own report of a nonzero exit is not
# rpusim's): exit status 1, stderr exactly one line "rpusim CMD: ..." naming the file and
# the fault, nothing printed by HDF5. Every command runs under `timeout`.
set -u
RPUSIM=$1 MPIEXEC=$2 WORK=$3
. "$(dirname "$0")/testlib.sh"
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
T=120

cat > "$WORK/e.ini" <<EOF
[run]
seed = 3
epochs = 1
batch_size = 8
output_dir = $WORK/out
checkpoint = $WORK/ck.h5

[rpu]
kind = single
mapping.max_input_size = 16
mapping.max_output_size = 8

[data]
dataset = synthetic
synthetic_n = 32
synthetic_classes = 4
synthetic_size = 4

[layer.flat]
type = flatten

[layer.fc]
type = linear
out = 4

[loss]
type = cross_entropy
EOF
timeout "$T" "$MPIEXEC" -q -n 1 "$RPUSIM" train "$WORK/e.ini" > "$WORK/train.log" 2>&1
check "train a checkpoint (exit $?): $(tail -3 "$WORK/train.log")" test -s "$WORK/ck.h5"
timeout "$T" "$MPIEXEC" -q -n 1 "$RPUSIM" export "$WORK/ck.h5" -o "$WORK/w.h5" > /dev/null 2>&1
check "export the weights (exit $?)" test -s "$WORK/w.h5"
echo "this is not an HDF5 file" > "$WORK/text.h5"
head -c $(( $(stat -c %s "$WORK/ck.h5") - 200 )) "$WORK/ck.h5" > "$WORK/trunc.h5"

# one NAME NP PATTERN CMD...: CMD (under mpiexec on NP ranks; NP 0: alone) exits 1 with one
# line on stderr matching PATTERN (grep -E), none of HDF5's own ("HDF5-DIAG", "HDF5: ...")
one() {
    local name=$1 np=$2 pat=$3
    shift 3
    local err=$WORK/$name.np$np.err
    if [ "$np" = 0 ]; then
        timeout "$T" "$@" > /dev/null 2> "$err"
    else
        timeout "$T" "$MPIEXEC" -q -n "$np" "$@" > /dev/null 2> "$err"
    fi
    local rc=$?
    check "$name (np $np): exit $rc, expected 1" test $rc -eq 1
    check "$name (np $np): stderr is not one line: $(head -c 1500 "$err")" test "$(wc -l < "$err")" -eq 1
    check "$name (np $np): message: $(head -c 600 "$err")" grep -Eq "$pat" "$err"
    check "$name (np $np): HDF5 printed: $(grep -E 'HDF5-DIAG|^HDF5:' "$err" | head -3)" \
        test "$(grep -cE 'HDF5-DIAG|^HDF5:' "$err")" -eq 0
    echo "$name (np $np): $(cat "$err")"
}

nodir=$WORK/missing-dir
for np in 1 2; do
    one export_nodir $np "^rpusim export: export $nodir/w.h5: cannot write in directory $nodir: No such file or directory" \
        "$RPUSIM" export "$WORK/ck.h5" -o "$nodir/w.h5"
    one export_text $np "^rpusim export: checkpoint $WORK/text.h5: .*not a readable HDF5 file" \
        "$RPUSIM" export "$WORK/text.h5" --experiment "$WORK/e.ini" -o "$WORK/w2.h5"
    one export_trunc $np "^rpusim export: checkpoint $WORK/trunc.h5: .*truncated" \
        "$RPUSIM" export "$WORK/trunc.h5" --experiment "$WORK/e.ini" -o "$WORK/w2.h5"
    one import_missing $np "^rpusim import: weights $WORK/missing.h5: .*No such file" \
        "$RPUSIM" import "$WORK/missing.h5" --experiment "$WORK/e.ini" -o "$WORK/ck2.h5"
    one import_text $np "^rpusim import: weights $WORK/text.h5: not an HDF5 file" \
        "$RPUSIM" import "$WORK/text.h5" --experiment "$WORK/e.ini" -o "$WORK/ck2.h5"
    one import_nodir $np "^rpusim import: checkpoint $nodir/ck.h5: cannot write in directory $nodir: No such file" \
        "$RPUSIM" import "$WORK/w.h5" --experiment "$WORK/e.ini" -o "$nodir/ck.h5"
    one eval_trunc $np "^rpusim eval: checkpoint $WORK/trunc.h5: .*truncated" \
        "$RPUSIM" eval "$WORK/e.ini" --checkpoint "$WORK/trunc.h5"
done
for f in text trunc; do
    one inspect_$f 0 "^rpusim inspect: checkpoint $WORK/$f.h5: .*(not a readable HDF5 file|truncated)" \
        "$RPUSIM" inspect "$WORK/$f.h5"
    one verify_$f 0 "^rpusim inspect: checkpoint $WORK/$f.h5: .*(not a readable HDF5 file|truncated)" \
        "$RPUSIM" inspect "$WORK/$f.h5" --verify
done
one inspect_missing 0 "^rpusim inspect: checkpoint $WORK/missing.h5: cannot read the file: No such file" \
    "$RPUSIM" inspect "$WORK/missing.h5" --verify

finish ckpt_errors || { echo "files kept in $WORK"; exit 1; }
rm -rf "$WORK"
