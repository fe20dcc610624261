#!/usr/bin/env bash
# SLURM job scripts and signal handling (issue 8), against a real single-node SLURM that
# this test starts (scripts/slurm/local_slurm.sh: munged, slurmctld, slurmd in a scratch
# directory, own ports and config; stopped by PID on exit, also on failure).
#
#   1. train.sbatch, 2 tasks (srun --mpi=pmix): COMPLETED 0:0, metrics.csv with 3 epochs,
#      a checkpoint that `rpusim eval` loads
#   2. train.sbatch, 4 tasks through mpirun: the same, and the same final tiles as 1
#   3. sweep.sbatch as a 3-task array over a parameter file (with a comment and a blank
#      line), then sweep_summary.py: 3 rows with the parameters as given, all complete
#   4. train.sbatch signalled mid-run (scancel -b -s USR1, the path of --signal=B:USR1):
#      rpusim writes a mid-epoch checkpoint and exits 75, the script requeues the job, the
#      job resumes and ends with the tiles (h5diff) and metrics of run 1
#   5. without SLURM (mpiexec -n 2): SIGUSR1 to one rank stops both, exit 75, exact resume
#   6. without SLURM: SIGUSR1 then SIGTERM to a rank exits at once (143) and leaves the
#      previous checkpoint byte for byte as it was, still loadable
#
# usage: slurm_test.sh RPUSIM SOURCE_DIR WORK_DIR MPIEXEC
set -uo pipefail

rpusim=$1
src=$2
work=$3
mpiexec=$4
t_start=$SECONDS

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
note() { echo "[$((SECONDS - t_start)) s] $*"; }

for t in slurmctld slurmd munged sbatch scontrol scancel h5diff h5ls; do
    command -v $t >/dev/null || fail "$t not found: install slurmctld slurmd slurm-client munge hdf5-tools (scripts/setup.sh does), or configure with -DRPUSIM_TEST_SLURM=OFF"
done
[ "$(id -u)" -eq 0 ] || fail "needs root (slurmd runs the jobs; local_slurm.sh)"

rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
cd "$work" || fail "cannot enter $work"

# ---- a private SLURM --------------------------------------------------------------------
# The munge socket path must fit a Unix socket address (108 bytes): use /tmp for a deep
# build tree.
sdir=$work/slurm
if [ ${#sdir} -gt 70 ]; then sdir=$(mktemp -d /tmp/rpusim-slurm.XXXXXX); fi
local_slurm=$src/scripts/slurm/local_slurm.sh
cleanup() {
    bash "$local_slurm" stop "$sdir" >/dev/null 2>&1 || echo "slurm_test.sh: stopping SLURM in $sdir failed" >&2
    if [ "$sdir" != "$work/slurm" ]; then rm -rf "$sdir"; fi
}
trap cleanup EXIT

# two free ports next to each other (slurmctld, slurmd), away from the default 6817/6818
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for p in $(seq $((20000 + $$ % 20000)) 2 $((20200 + $$ % 20000))); do
    if port_free "$p" && port_free $((p + 1)); then port=$p; break; fi
done
[ -n "$port" ] || fail "no free port pair found"
# 4 virtual CPUs: 4-task jobs without --overcommit on a 2-core machine
LOCAL_SLURM_CPUS=4 LOCAL_SLURM_PORT=$port bash "$local_slurm" start "$sdir" ||
    fail "local SLURM did not start (logs in $sdir/log)"
export SLURM_CONF=$sdir/etc/slurm.conf
note "SLURM up in $sdir (ports $port, $((port + 1)))"

# Settings the job scripts read (sbatch passes the environment on to the job).
export RPUSIM_HOME=$src RPUSIM=$rpusim
unset RPUSIM_LAUNCHER
base=(--set run.epochs=3 --set run.progress_every=5 --set "data.path=$src/data")

# wait_job ID [SECONDS]: until no task of the job is pending, running or completing.
wait_job() {
    local n=$((${2:-120} * 5))
    while scontrol show job -o "$1" 2>/dev/null | grep -qE 'JobState=(PENDING|CONFIGURING|RUNNING|COMPLETING|REQUEUED)'; do
        n=$((n - 1))
        [ $n -gt 0 ] || { scancel "$1"; fail "job $1 did not finish in ${2:-120} s"; }
        sleep 0.2
    done
}
# job_field ID FIELD: FIELD=value of a (non-array) job
job_field() { scontrol show job -o "$1" | grep -oE "(^| )$2=[^ ]*" | head -1 | sed 's/^ //; s/^[^=]*=//'; }
expect_done() { # ID LOG: COMPLETED with exit code 0:0
    local st ec
    st=$(job_field "$1" JobState)
    ec=$(job_field "$1" ExitCode)
    if [ "$st" != COMPLETED ] || [ "$ec" != 0:0 ]; then
        cat "$2" >&2
        fail "job $1: JobState=$st ExitCode=$ec, want COMPLETED 0:0"
    fi
}
# check_run DIR EPOCHS: metrics.csv rows 1..EPOCHS, a checkpoint that rpusim eval loads
check_run() {
    local d=$1 n=$2
    [ -s "$d/checkpoint.h5" ] || fail "$d/checkpoint.h5 missing"
    [ -s "$d/metrics.csv" ] || fail "$d/metrics.csv missing"
    [ "$(head -1 "$d/metrics.csv")" = "epoch,train_loss,train_acc,test_loss,test_acc,seconds,step" ] ||
        fail "$d/metrics.csv: bad header"
    [ "$(tail -n +2 "$d/metrics.csv" | cut -d, -f1 | tr '\n' ' ')" = "$(seq -s ' ' 1 "$n") " ] ||
        fail "$d/metrics.csv: epochs $(tail -n +2 "$d/metrics.csv" | cut -d, -f1 | tr '\n' ' '), want 1..$n"
    "$rpusim" eval "$d/experiment.ini" --checkpoint "$d/checkpoint.h5" >"$d/eval.txt" 2>&1 ||
        { cat "$d/eval.txt" >&2; fail "rpusim eval of $d/checkpoint.h5 failed"; }
    grep -q "^test loss .* accuracy" "$d/eval.txt" || fail "rpusim eval printed no accuracy"
}
same_tiles() { # A B: the /layers groups are equal (tiles, device state, bias)
    h5diff -q "$1" "$2" /layers /layers || { h5diff -r "$1" "$2" /layers /layers | head -20 >&2; fail "$1 and $2 differ in /layers"; }
}
same_metrics() { # A B: metrics.csv equal except the seconds column
    diff <(cut -d, -f1-5,7 "$1") <(cut -d, -f1-5,7 "$2") >&2 || fail "$1 and $2 differ"
}

# ---- 1. train.sbatch, 2 tasks, srun -----------------------------------------------------
j1=$(sbatch --parsable --ntasks=2 "$src/scripts/slurm/train.sbatch" "${base[@]}") || fail "sbatch failed"
wait_job "$j1"
expect_done "$j1" "rpusim-train-$j1.out"
grep -q "srun --mpi=pmix" "rpusim-train-$j1.out" || fail "job $j1 did not launch with srun --mpi=pmix"
grep -q "2 rank(s)" "rpusim-train-$j1.out" || fail "job $j1 did not run 2 ranks"
grep -qE '^epoch 3/3 step 270 batch 90/90 loss [0-9.]+ acc [0-9.]+ samples/s [0-9]+ eta 00:00$' "rpusim-train-$j1.out" ||
    fail "job $j1: no final progress line in the log"
ref=runs/train-$j1
check_run "$ref" 3
note "1. train.sbatch 2 tasks (srun): job $j1 COMPLETED 0:0, checkpoint loads"

# ---- 2. train.sbatch, 4 tasks, mpirun ---------------------------------------------------
j2=$(RPUSIM_LAUNCHER=mpirun sbatch --parsable --ntasks=4 "$src/scripts/slurm/train.sbatch" "${base[@]}") || fail "sbatch failed"
wait_job "$j2"
expect_done "$j2" "rpusim-train-$j2.out"
grep -q "4 tasks; mpirun" "rpusim-train-$j2.out" || fail "job $j2 did not launch with mpirun"
grep -q "4 rank(s)" "rpusim-train-$j2.out" || fail "job $j2 did not run 4 ranks"
check_run "runs/train-$j2" 3
same_tiles "$ref/checkpoint.h5" "runs/train-$j2/checkpoint.h5"
same_metrics "$ref/metrics.csv" "runs/train-$j2/metrics.csv"
note "2. train.sbatch 4 tasks (mpirun): job $j2 COMPLETED 0:0, same tiles and metrics as 2 tasks"

# ---- 3. sweep.sbatch array + summary ----------------------------------------------------
cat >params.txt <<'EOF'
# lr x device
run.lr=0.1 rpu.device.type=constant_step

run.lr=0.05 rpu.device.type=soft_bounds
run.lr=0.2 rpu.device.type=linear_step
EOF
j3=$(sbatch --parsable --array=1-3 --ntasks=1 "$src/scripts/slurm/sweep.sbatch" params.txt \
    "$src/data/digits-cnn.ini" --set run.epochs=1 --set "data.path=$src/data") || fail "sbatch failed"
wait_job "$j3"
states=$(scontrol show job -o "$j3" | grep -oE 'JobState=[^ ]* .*ExitCode=[^ ]*' | sed -E 's/JobState=([^ ]*) .*ExitCode=([^ ]*)/\1 \2/' | sort | uniq -c | tr -s ' ')
[ "$states" = " 3 COMPLETED 0:0" ] || { cat rpusim-sweep-"$j3"_*.out >&2; fail "array $j3: task states '$states', want 3 COMPLETED 0:0"; }
python3 "$src/scripts/slurm/sweep_summary.py" "runs/sweep-$j3" || fail "sweep_summary.py failed"
summary=runs/sweep-$j3/summary.csv
want='task,run.lr,rpu.device.type,status,epoch,train_loss,train_acc,test_loss,test_acc,seconds,step'
[ "$(head -1 "$summary")" = "$want" ] || fail "summary header '$(head -1 "$summary")', want '$want'"
[ "$(tail -n +2 "$summary" | wc -l)" -eq 3 ] || fail "summary has $(tail -n +2 "$summary" | wc -l) rows, want 3"
[ "$(tail -n +2 "$summary" | cut -d, -f1-5 | tr '\n' ' ')" = "1,0.1,constant_step,complete,1 2,0.05,soft_bounds,complete,1 3,0.2,linear_step,complete,1 " ] ||
    { cat "$summary" >&2; fail "summary rows do not match the parameter file"; }
for i in 1 2 3; do
    d=runs/sweep-$j3/task-$i
    check_run "$d" 1
    # the summary's metrics are the task's last metrics row
    [ "$(sed -n "$((i + 1))p" "$summary" | cut -d, -f5-)" = "$(tail -1 "$d/metrics.csv")" ] ||
        fail "summary row $i does not hold $d/metrics.csv's last row"
    grep -q "^device.type = $(sed -n "$((i + 1))p" "$summary" | cut -d, -f3)$" "$d/experiment.ini" ||
        fail "$d/experiment.ini does not have the task's device.type"
done
note "3. sweep.sbatch: array $j3, 3 tasks COMPLETED 0:0, summary.csv as expected"

# ---- 4. signal, checkpoint, requeue, resume ---------------------------------------------
j4=$(sbatch --parsable --ntasks=2 "$src/scripts/slurm/train.sbatch" "${base[@]}") || fail "sbatch failed"
log4=rpusim-train-$j4.out
n=600
until grep -q "^epoch 2/3 step" "$log4" 2>/dev/null; do
    n=$((n - 1))
    [ $n -gt 0 ] || { scancel "$j4"; fail "job $j4 never reached epoch 2"; }
    sleep 0.05
done
scancel -b -s USR1 "$j4" || fail "scancel -b -s USR1 $j4 failed"
n=600
until [ "$(job_field "$j4" JobState)" = PENDING ] && [ "$(job_field "$j4" Restarts)" = 1 ]; do
    n=$((n - 1))
    [ $n -gt 0 ] || { cat "$log4" >&2; scancel "$j4"; fail "job $j4 was not requeued"; }
    sleep 0.1
done
grep -qE "rpusim train: SIGUSR1: stopped on request after epoch [23] batch [0-9]+/90 \(step [0-9]+\); checkpoint written" "$log4" ||
    { cat "$log4" >&2; fail "job $j4: no stop message"; }
grep -q "rpusim exited with 75" "$log4" || fail "job $j4: rpusim did not exit with 75"
grep -q "requeueing job $j4" "$log4" || fail "job $j4: the script did not requeue"
d4=runs/train-$j4
cp "$d4/checkpoint.h5" stopped.h5
step=$("$rpusim" inspect stopped.h5 | sed -n 's/^step: //p')
if [ -z "$step" ] || [ "$step" -le 90 ] || [ "$step" -ge 270 ]; then
    fail "stopped checkpoint: step '$step', want within epochs 2-3"
fi
h5ls stopped.h5/train | grep -q partial_epoch || fail "stopped checkpoint has no /train/partial_epoch"
"$rpusim" eval "$d4/experiment.ini" --checkpoint stopped.h5 >/dev/null 2>&1 || fail "rpusim eval of the stopped checkpoint failed"
# Slurm holds a requeued job for 2 minutes; release it once the old credential has aged
# (a start in the same second is refused with "Job credential revoked").
sleep 2
scontrol update JobId="$j4" StartTime=now || fail "cannot release job $j4"
wait_job "$j4"
expect_done "$j4" "$log4"
[ "$(job_field "$j4" Restarts)" = 1 ] || fail "job $j4: Restarts=$(job_field "$j4" Restarts), want 1"
grep -q "^resuming from $d4/checkpoint.h5" "$log4" || fail "job $j4 did not resume from its checkpoint"
check_run "$d4" 3
same_tiles "$ref/checkpoint.h5" "$d4/checkpoint.h5"
same_metrics "$ref/metrics.csv" "$d4/metrics.csv"
note "4. signalled job $j4: stopped at step $step, exit 75, requeued, resumed; final tiles and metrics equal run 1"

# ---- 5. mpiexec: one rank signalled, both stop; exact resume ----------------------------
d5=$work/direct
run5=("$mpiexec" -n 2 "$rpusim" train "$src/data/digits-cnn.ini" "${base[@]}"
    --set "run.output_dir=$d5" --set "run.checkpoint=$d5/checkpoint.h5")
"${run5[@]}" >direct.log 2>&1 &
pid=$!
n=600
until grep -q "^epoch 1/3 step [3-9]0 " direct.log 2>/dev/null; do
    n=$((n - 1))
    [ $n -gt 0 ] || { kill "$pid"; fail "direct run never reached step 30"; }
    sleep 0.05
done
mapfile -t ranks < <(pgrep -P "$pid" -x rpusim)
[ ${#ranks[@]} -eq 2 ] || { kill "$pid"; fail "found ${#ranks[@]} rank processes under mpiexec, want 2"; }
kill -USR1 "${ranks[1]}"
rc=0
wait "$pid" || rc=$?
[ $rc -eq 75 ] || { cat direct.log >&2; fail "mpiexec exit code $rc after SIGUSR1 to one rank, want 75"; }
grep -q "stopped on request after epoch 1 batch" direct.log || fail "no stop message in direct.log"
"${run5[@]}" --resume "$d5/checkpoint.h5" >direct2.log 2>&1 || { cat direct2.log >&2; fail "resume failed"; }
same_tiles "$ref/checkpoint.h5" "$d5/checkpoint.h5"
same_metrics "$ref/metrics.csv" "$d5/metrics.csv"
note "5. mpiexec: SIGUSR1 to one rank -> both stopped, exit 75; resume equals run 1"

# ---- 6. a second signal exits at once, the previous checkpoint intact -------------------
d6=$work/twice
"$mpiexec" -n 2 "$rpusim" train "$src/data/digits-cnn.ini" --set run.epochs=50 \
    --set run.checkpoint_every=1 --set run.progress_every=5 --set "data.path=$src/data" \
    --set "run.output_dir=$d6" --set "run.checkpoint=$d6/checkpoint.h5" >twice.log 2>&1 &
pid=$!
n=600
until grep -q "^epoch 2/50 step" twice.log 2>/dev/null; do # epoch 1's checkpoint is written
    n=$((n - 1))
    [ $n -gt 0 ] || { kill "$pid"; fail "run never reached epoch 2"; }
    sleep 0.05
done
mapfile -t ranks < <(pgrep -P "$pid" -x rpusim)
[ ${#ranks[@]} -eq 2 ] || { kill "$pid"; fail "found ${#ranks[@]} rank processes, want 2"; }
# Each step is deterministic: every wait below is for a state the test can see (a process
# state, a file, a line in the log), never for an amount of time.
# Rank 0 (by its MPI rank; it prints the notices) gets the signals; rank 1 is stopped.
r0="" r1=""
for p in "${ranks[@]}"; do
    case "$(tr '\0' '\n' <"/proc/$p/environ" | grep '^OMPI_COMM_WORLD_RANK=')" in
    OMPI_COMM_WORLD_RANK=0) r0=$p ;;
    OMPI_COMM_WORLD_RANK=1) r1=$p ;;
    esac
done
[ -n "$r0" ] && [ -n "$r1" ] || { kill "$pid"; fail "cannot tell rank 0 from rank 1"; }
proc_state() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1; } # R, S, T, Z or ''
# Stop rank 1 at a moment when no save is in flight (no checkpoint.h5.tmp; a save that
# rank 1 has finished its part of is completed and renamed by rank 0 alone): from then on
# no save can complete, since each needs both ranks, and checkpoint.h5 stays as it is.
while :; do
    kill -STOP "$r1"
    until [ "$(proc_state "$r1")" = T ]; do sleep 0.01; done
    [ -e "$d6/checkpoint.h5.tmp" ] || break
    kill -CONT "$r1"
    until [ ! -e "$d6/checkpoint.h5.tmp" ]; do sleep 0.01; done
done
sum_before=$(md5sum <"$d6/checkpoint.h5")
# The first signal; its handler has run when rank 0's notice is in the log. Only then the
# second (sent together, both could be taken by two threads of the process at once and
# neither would see the other's flag).
kill -USR1 "$r0"
n=600
until grep -q "rpusim: SIGUSR1 received" twice.log; do
    n=$((n - 1))
    [ $n -gt 0 ] || { kill -CONT "$r1"; kill "$pid"; fail "rank 0 did not report SIGUSR1"; }
    sleep 0.05
done
kill -TERM "$r0"
until [ -z "$(proc_state "$r0")" ] || [ "$(proc_state "$r0")" = Z ]; do sleep 0.01; done
kill -CONT "$r1" # rank 0 is gone: rank 1 cannot save alone; mpiexec ends it
rc=0
wait "$pid" || rc=$?
[ $rc -eq 143 ] || { cat twice.log >&2; fail "mpiexec exit code $rc after two signals, want 143 (128 + SIGTERM)"; }
grep -q "second signal SIGTERM: exiting at once" twice.log || fail "no second-signal message"
[ "$(md5sum <"$d6/checkpoint.h5")" = "$sum_before" ] || fail "the previous checkpoint changed"
step=$("$rpusim" inspect "$d6/checkpoint.h5" | sed -n 's/^step: //p')
if [ -z "$step" ] || [ "$step" -le 0 ] || [ $((step % 90)) -ne 0 ]; then
    fail "checkpoint step '$step', want an epoch end"
fi
"$rpusim" eval "$d6/experiment.ini" --checkpoint "$d6/checkpoint.h5" >/dev/null 2>&1 || fail "the previous checkpoint does not load"
note "6. two signals: exit 143 at once, the step-$step checkpoint unchanged and loadable"

# ---- 7. infer.sbatch: a drift study as a batch job --------------------------------------
# A hardware-aware model of data/digits-mlp-hwa.ini (1 s), then infer.sbatch with 2 tasks:
# the job completes and its table equals a direct rpusim infer on 1 rank (repeats are
# keyed, so the rank count and grouping do not matter).
d7=$work/hwa
"$mpiexec" -n 2 "$rpusim" train "$src/data/digits-mlp-hwa.ini" --set "data.path=$src/data" \
    --set "run.output_dir=$d7" --set "run.checkpoint=$d7/checkpoint.h5" >hwa.log 2>&1 ||
    { cat hwa.log >&2; fail "training data/digits-mlp-hwa.ini failed"; }
j7=$(CHECKPOINT=$d7/checkpoint.h5 T_INFERENCE=1,86400 REPEATS=3 OUT_DIR=$work/infer7 \
    sbatch --parsable --ntasks=2 "$src/scripts/slurm/infer.sbatch" --set "data.path=$src/data") ||
    fail "sbatch infer.sbatch failed"
wait_job "$j7"
expect_done "$j7" "rpusim-infer-$j7.out"
[ "$(tail -n +2 "$work/infer7/drift.csv" | wc -l)" -eq 2 ] || fail "infer7/drift.csv: want 2 rows"
"$rpusim" infer "$d7/experiment.ini" --checkpoint "$d7/checkpoint.h5" --t-inference 1,86400 \
    --repeats 3 --compensation global --set "data.path=$src/data" --out "$work/infer7-direct.csv" \
    >infer7.log 2>&1 || { cat infer7.log >&2; fail "direct rpusim infer failed"; }
cmp -s "$work/infer7/drift.csv" "$work/infer7-direct.csv" || fail "infer.sbatch table differs from a direct run"
note "7. infer.sbatch: job $j7 COMPLETED 0:0, the same table as rpusim infer on 1 rank"

note "all SLURM and signal checks passed"
