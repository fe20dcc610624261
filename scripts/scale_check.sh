#!/usr/bin/env bash
# Predicted against measured step time of `rpusim bench scale` on this machine: for each
# rank count (default 1 2 3 4) and each transport (shared memory, and TCP forced with
# `mpiexec --mca btl tcp,self`, which behaves like separate nodes), runs
#   mpiexec -n P [--mca btl tcp,self] rpusim bench scale EXPERIMENT --measure-transport
# ROUNDS times, alternating the configurations within each round, and prints per
# configuration the median measured step, the median model step and the median and range
# of model / measured. With --weak the batch grows with P (BATCH x P; the one-rank profile
# stays at BATCH, so the model's batch scaling is checked too).
#
# usage: scripts/scale_check.sh EXPERIMENT [--ranks "1 2 3 4"] [--transports "shm tcp"]
#            [--rounds 3] [--steps 5] [--weak] [--set key=value ...] [--csv OUT.csv]
#            [--rpusim build/src/rpusim]
# Environment: scripts/env.sh (sourced here). Output: the table on stdout; with --csv
# every run's `measured` record (round, np, transport, batch, measured, model, ...).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/env.sh
. "$here/env.sh"

exp=""
ranks="1 2 3 4"
transports="shm tcp"
rounds=3
steps=5
weak=0
out=""
rpusim="$here/../build/src/rpusim"
sets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --ranks) ranks=$2; shift 2 ;;
    --transports) transports=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --weak) weak=1; shift ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --csv) out=$2; shift 2 ;;
    --rpusim) rpusim=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "scale_check.sh: unknown option $1" >&2; exit 2 ;;
    *) exp=$1; shift ;;
    esac
done
if [ -z "$exp" ]; then
    echo "scale_check.sh: no experiment given (try --help)" >&2
    exit 2
fi
if [ ! -x "$rpusim" ]; then
    echo "scale_check.sh: $rpusim is not built (bash scripts/setup.sh)" >&2
    exit 2
fi
# the experiment's batch (for --weak): a --set run.batch_size=... wins over the file
batch=$(sed -n 's/^[[:space:]]*batch_size[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$exp" | head -1)
for s in "${sets[@]}"; do
    case "$s" in run.batch_size=*) batch=${s#run.batch_size=} ;; esac
done
batch=${batch:-32}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
all="$tmp/all.csv"
echo "round,np,transport,batch,step_measured_s,step_model_s,compute_model_s,comm_model_s,ratio,calls,payload_bytes,paired_ratio" >"$all"
for r in $(seq 1 "$rounds"); do
    for np in $ranks; do
        for tr in $transports; do
            mca=()
            [ "$tr" = tcp ] && mca=(--mca btl tcp,self)
            extra=()
            [ "$np" -ge 2 ] && extra=(--measure-transport)
            b=$batch
            if [ "$weak" = 1 ]; then
                b=$((batch * np))
                extra+=(--profile-batch "$batch")
            fi
            csv="$tmp/r$r-np$np-$tr.csv"
            if ! mpiexec "${mca[@]}" -n "$np" "$rpusim" bench scale "$exp" "${sets[@]}" \
                --set "run.batch_size=$b" --steps "$steps" --ranks 1 "${extra[@]}" \
                --csv "$csv" >"$tmp/r$r-np$np-$tr.out" 2>&1; then
                echo "scale_check.sh: np $np $tr failed:" >&2
                cat "$tmp/r$r-np$np-$tr.out" >&2
                exit 1
            fi
            # measured,P,batch,transport,cores,measured,model,compute,comm,ratio,calls,
            # payload,formula,paired,paired_min,paired_max
            awk -F, -v r="$r" -v tr="$tr" '$1 == "measured" {
                print r "," $2 "," tr "," $3 "," $6 "," $7 "," $8 "," $9 "," $10 "," $11 "," \
                      $12 "," $14 }' "$csv" >>"$all"
        done
    done
done
[ -n "$out" ] && cp "$all" "$out"
/usr/bin/python3 - "$all" "$exp" "$weak" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(f"scale check of {sys.argv[2]} ({'weak: batch x P' if sys.argv[3] == '1' else 'strong'}), "
      f"{max(int(r['round']) for r in rows)} round(s); step times in ms")
print(f"{'np':>3} {'transport':>9} {'batch':>6} {'measured':>10} {'model':>10} "
      f"{'model/meas':>10} {'range':>13} {'paired':>7} {'comm_model':>10} {'calls':>6} "
      f"{'payload_B':>11}")
seen = []
for r in rows:
    k = (int(r["np"]), r["transport"])
    if k not in seen:
        seen.append(k)
worst = 0.0
for np_, tr in sorted(seen):
    rs = [r for r in rows if int(r["np"]) == np_ and r["transport"] == tr]
    meas = statistics.median(float(r["step_measured_s"]) for r in rs)
    model = statistics.median(float(r["step_model_s"]) for r in rs)
    ratios = [float(r["ratio"]) for r in rs]
    ratio = statistics.median(ratios)
    worst = max(worst, abs(ratio - 1))
    comm = statistics.median(float(r["comm_model_s"]) for r in rs)
    paired = statistics.median(float(r["paired_ratio"]) for r in rs)
    print(f"{np_:>3} {tr:>9} {rs[0]['batch']:>6} {1e3 * meas:>10.2f} {1e3 * model:>10.2f} "
          f"{ratio:>10.3f} {min(ratios):>6.3f}-{max(ratios):<6.3f} {paired:>7.3f} "
          f"{1e3 * comm:>10.3f} {rs[0]['calls']:>6} {rs[0]['payload_bytes']:>11}")
print(f"largest deviation of the median model/measured from 1: {100 * worst:.1f}%")
print("model/meas: each run's model (median profile, probe) over its median measured step;"
      " range over the runs; paired: the median over the runs of each run's round-by-round"
      " median")
EOF
