#!/usr/bin/env bash
# Regenerates the scaling figures of the README (data/scale/): for the Fashion LeNet-5 in
# aihwkit's layout (examples/lenet5.ini at batch 64) and VGG-8 (data/vgg8-synthetic.ini),
#   1. the model of a cluster to 1024 ranks: `mpiexec -n 2 rpusim bench scale ...
#      --measure-transport --ranks 1,2,...,1024` (nodes of 32 ranks and cores, 100 Gb/s,
#      1 us between nodes; within a node 0.5 us and 4 GB/s, this machine's shared memory
#      when nothing else runs: an MPI_Allreduce of 8 B on 2 ranks in 0.44-0.60 us, of
#      1 MiB in 0.27-0.30 ms)                             -> data/scale/NAME-model.csv
#   2. predicted against measured step times at 1-4 ranks, shared memory and TCP, strong
#      and weak (scripts/scale_check.sh)               -> data/scale/NAME-{strong,weak}.csv
#   3. the plot (scripts/plot_scale.py)                -> data/scale/NAME.png
# usage: scripts/scale_plots.sh [--rounds 3] [--only lenet5|vgg8] [--out data/scale]
#            [--model-only]   (steps 1 and 3: keep the checks of an earlier run)
# Takes some minutes per experiment on a 2-core machine (VGG-8 most of them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/env.sh
. "$here/env.sh"
rounds=3
only=""
model_only=0
out="$root/data/scale"
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --model-only) model_only=1; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "scale_plots.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
rpusim="$root/build/src/rpusim"
mkdir -p "$out"
ranks=1,2,4,8,16,32,64,128,256,512,1024

plot_one() { # plot_one NAME TITLE STEPS EXPERIMENT [--set ...]
    local name=$1 title=$2 steps=$3
    shift 3
    echo "== $name: model of a cluster" >&2
    mpiexec -n 2 "$rpusim" bench scale "$@" --measure-transport --steps "$steps" \
        --ranks "$ranks" --ranks-per-node 32 --bandwidth 100Gb/s --latency 1us \
        --node-latency 0.5us --node-bandwidth 4GB/s \
        --csv "$out/$name-model.csv" | tee "$out/$name-model.txt"
    if [ "$model_only" = 0 ]; then
        echo "== $name: strong scaling check" >&2
        bash "$here/scale_check.sh" "$@" --rounds "$rounds" --steps "$steps" \
            --csv "$out/$name-strong.csv" | tee "$out/$name-strong.txt"
        echo "== $name: weak scaling check" >&2
        bash "$here/scale_check.sh" "$@" --weak --rounds "$rounds" --steps "$steps" \
            --csv "$out/$name-weak.csv" | tee "$out/$name-weak.txt"
    fi
    /usr/bin/python3 "$here/plot_scale.py" "$out/$name.png" --model "$out/$name-model.csv" \
        --strong "$out/$name-strong.csv" --weak "$out/$name-weak.csv" --title "$title"
}

if [ -z "$only" ] || [ "$only" = lenet5 ]; then
    plot_one lenet5 "Fashion LeNet-5 (aihwkit layout, 4 tiles, batch 64, constant_step)" 5 \
        "$root/examples/lenet5.ini" --set run.batch_size=64
fi
if [ -z "$only" ] || [ "$only" = vgg8 ]; then
    plot_one vgg8 "VGG-8 on 3x32x32 (39 tiles of at most 256x256, batch 16, constant_step)" 3 \
        "$root/data/vgg8-synthetic.ini"
fi
