#!/usr/bin/env bash
# Time per epoch of the LeNet-5 example through Python (examples/lenet5_training.py) and
# through `rpusim train` on the same network (examples/lenet5.ini), the same data, batch
# size, learning rate and device, at the given rank counts, alternating the two tools
# (CLI first in odd rounds, Python first in even ones) so that both see the same load.
# Prints every run and, per rank count, the median epoch time of each tool and the ratio
# Python / CLI. Epoch time = training + test evaluation of epoch 1 as each tool reports it
# (CSV column "seconds"); "wall" adds the process start (MPI, Python, torch import).
#
# usage: examples/bench_lenet5.sh [--np "1 2"] [--rounds 3] [--train-samples N]
#                                 [--test-samples M] [--work DIR] [--cpu]
#   --train-samples N / --test-samples M: both tools read the first N / M images (written
#   as IDX files into DIR/data); default: the full 60000 / 10000.
#   --cpu: measure CPU time instead of wall time, for a machine shared with other work
#   (where the wall time of the same run varies by tens of percent): CPU seconds of all
#   ranks per epoch = (user + sys of a 3-epoch run - the same of a 1-epoch run) / 2, so the
#   process start (MPI, imports, data, network) cancels; bash's `times` counts mpiexec
#   with its ranks. Ranks waiting in MPI poll, so at np > 1 this counts waiting too (for both).
# Environment: RPUSIM_BUILD (default: build/ of this checkout), MPIEXEC (default mpiexec),
# PYTHON (default /usr/bin/python3).
set -eu
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${RPUSIM_BUILD:-$root/build}
mpiexec=${MPIEXEC:-mpiexec}
python=${PYTHON:-/usr/bin/python3}
nps="1 2" rounds=3 train= test= work=${TMPDIR:-/tmp}/rpusim-bench-lenet5 cpu=
while [ $# -gt 0 ]; do
    case $1 in
    --np) nps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --train-samples) train=$2; shift 2 ;;
    --test-samples) test=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --cpu) cpu=1; shift ;;
    *) echo "bench_lenet5.sh: unknown option '$1' (see the head of the script)" >&2; exit 2 ;;
    esac
done
cli=$build/src/rpusim
lib=$build/src/librpusim.so
for f in "$cli" "$lib"; do
    [ -e "$f" ] || { echo "bench_lenet5.sh: $f missing (build first: bash scripts/setup.sh)" >&2; exit 1; }
done
export PYTHONPATH=$root/python${PYTHONPATH:+:$PYTHONPATH} RPUSIM_LIBRARY=$lib
mkdir -p "$work"
data=/usr/share/datasets/fashion-mnist
if [ -n "$train$test" ]; then
    data=$work/data
    PYTHONPATH=$root/examples "$python" -c "import fashion_mnist as f, sys
f.write_subset(f.DEFAULT_ROOT, sys.argv[1], int(sys.argv[2]) if sys.argv[2] else None,
               int(sys.argv[3]) if sys.argv[3] else None)" "$data" "$train" "$test"
fi
py_args=(--data "$data")
[ -n "$train" ] && py_args+=(--train-samples "$train")
[ -n "$test" ] && py_args+=(--test-samples "$test")

# train_cli / train_py NP OUT EPOCHS: one training run of each tool (OUT: its files' stem)
train_cli() {
    rm -rf "$2"
    "$mpiexec" -n "$1" "$cli" train "$root/examples/lenet5.ini" --set "run.epochs=$3" \
        --set "data.path=$data" --set "run.output_dir=$2" --set "run.checkpoint=" \
        >"$2.log" 2>&1 || { echo "rpusim train failed, see $2.log" >&2; exit 1; }
}
train_py() {
    "$mpiexec" -n "$1" "$python" "$root/examples/lenet5_training.py" "${py_args[@]}" \
        --epochs "$3" --out "$2.csv" >"$2.log" 2>&1 || { echo "python failed, see $2.log" >&2; exit 1; }
}
epoch_cli() { awk -F, 'NR == 2 { print $6 }' "$1/metrics.csv"; } # epoch_TOOL OUT: seconds
epoch_py() { awk -F, 'NR == 2 { print $5 }' "$1.csv"; }
run_tool() { # run_tool TOOL NP TAG -> prints "epoch_seconds wall_seconds"
    local out=$work/$1-np$2-$3 t0 t1
    t0=$(date +%s.%N)
    "train_$1" "$2" "$out" 1
    t1=$(date +%s.%N)
    echo "$("epoch_$1" "$out") $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
}
children_cpu() { # user + sys seconds of the children of the subshell that wrote $work/times.out
    # (bash's `times`: line 2 holds the children's user and sys time, as "1m2.345s")
    awk 'NR == 2 { t = 0; for (i = 1; i <= 2; ++i) { split($i, a, "m"); t += a[1] * 60 + a[2] }
                   print t }' "$work/times.out"
}
cpu_tool() { # cpu_tool TOOL NP TAG -> prints "cpu_seconds_per_epoch cpu_seconds_of_the_3_epoch_run"
    local out=$work/$1-np$2-$3 t=()
    for e in 1 3; do
        ("train_$1" "$2" "$out" $e && times >"$work/times.out") || exit 1
        t+=("$(children_cpu)")
    done
    awk -v a="${t[0]}" -v b="${t[1]}" 'BEGIN { print (b - a) / 2, b }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "LeNet-5 (aihwkit example layout), Fashion-MNIST ${train:-60000} training /" \
     "${test:-10000} test images, batch 8, constant-step devices; $rounds rounds;" \
     "${cpu:+CPU time per epoch; }load: $(cut -d' ' -f1-3 /proc/loadavg)"
summary=()
for np in $nps; do
    : >"$work/cli-np$np.times"
    : >"$work/py-np$np.times"
    for r in $(seq 1 "$rounds"); do
        if [ $((r % 2)) -eq 1 ]; then order="cli py"; else order="py cli"; fi
        for tool in $order; do
            if [ -n "$cpu" ]; then
                t=$(cpu_tool "$tool" "$np" "$r")
                printf 'np %d round %d %-3s epoch %8.2f CPU s  (3-epoch run %8.2f CPU s)\n' \
                    "$np" "$r" "$tool" $t
            else
                t=$(run_tool "$tool" "$np" "$r")
                printf 'np %d round %d %-3s epoch %8.2f s  wall %8.2f s\n' "$np" "$r" "$tool" $t
            fi
            echo "$t" >>"$work/$tool-np$np.times"
        done
    done
    c=$(cut -d' ' -f1 "$work/cli-np$np.times" | median)
    p=$(cut -d' ' -f1 "$work/py-np$np.times" | median)
    summary+=("$(printf 'np %d: median epoch  CLI %8.2f %s  Python %8.2f %s  ratio Python/CLI %.3f' \
                 "$np" "$c" "${cpu:+CPU }s" "$p" "${cpu:+CPU }s" \
                 "$(awk -v p="$p" -v c="$c" 'BEGIN { print p / c }')")")
done
printf '%s\n' "${summary[@]}"
