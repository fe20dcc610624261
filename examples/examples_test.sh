#!/usr/bin/env bash
# The examples on a small subset of Fashion-MNIST at 1, 2 and 3 ranks (examples/README.md,
# "Tests"): each run finishes and writes its CSVs with the expected rows; the training
# loss decreases and the final test accuracy exceeds chance by 4 standard deviations of a
# guessing classifier on the test subset; for resnet_drift.py the drift study's mean
# accuracy at 1 year is not above the one at 1 s by more than 3 standard deviations, and
# the one at 1 s exceeds chance likewise; and the CSVs of 2 and 3 ranks equal the 1-rank
# ones in every column but the timings (losses written with 17 digits: bitwise equal).
# usage: examples_test.sh PYTHON MPIEXEC SOURCE_DIR WORKDIR lenet5|resnet
set -u
python=$1
mpiexec=$2
src=$3
work=$4
which=$5
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
# shellcheck source=../mpi_tests/testlib.sh
source "$src/mpi_tests/testlib.sh"
checker=$src/examples/check_metrics.py

case $which in
lenet5)
    epochs=2 train=600 test=500
    args=(--epochs $epochs --train-samples $train --test-samples $test --batch-size 8 --lr 0.01)
    script=$src/examples/lenet5_training.py
    ;;
resnet)
    epochs=2 train=384 test=256 repeats=2 times=1,86400,31536000
    args=(--epochs $epochs --train-samples $train --test-samples $test --batch-size 16 --lr 0.1
          --repeats $repeats)
    script=$src/examples/resnet_drift.py
    ;;
*)
    echo "examples_test.sh: unknown example '$which' (lenet5 or resnet)" >&2
    exit 2
    ;;
esac

for np in 1 2 3; do
    "$mpiexec" -n $np "$python" "$script" "${args[@]}" --out "$work/np$np.csv" >"np$np.log" 2>&1
    status=$?
    check "$which np $np finishes (see $work/np$np.log)" test $status -eq 0
    if [ $status -ne 0 ]; then tail -20 "np$np.log" >&2; continue; fi
    check "$which np $np: only rank 0 prints" test "$(grep -c 'Started' "np$np.log")" -eq 1
    check "$which np $np: one progress line per epoch" \
        test "$(grep -c 'Epoch: ' "np$np.log")" -eq $epochs
    check "$which np $np: training metrics" "$python" "$checker" train np$np.csv $epochs $test
    if [ "$which" = resnet ]; then
        check "$which np $np: drift study" "$python" "$checker" drift np${np}_drift.csv \
            $times $repeats $test
    fi
    if [ $np -gt 1 ]; then
        check "$which: np $np metrics equal np 1's" "$python" "$checker" same np1.csv np$np.csv
        if [ "$which" = resnet ]; then
            check "$which: np $np drift study equals np 1's" \
                "$python" "$checker" same np1_drift.csv np${np}_drift.csv
        fi
    fi
done
finish "examples_test $which"
