# shellcheck shell=bash
# Functions shared by the rpusim job scripts (train.sbatch, sweep.sbatch, infer.sbatch).
# Sourced, not run: . "$RPUSIM_HOME/scripts/slurm/rpusim_job.sh"
#
#   rpusim_job_env       environment for Open MPI, OpenBLAS and HDF5 inside the allocation
#   rpusim_job_launcher  sets the array RPUSIM_LAUNCH: srun --mpi=pmix, or mpirun
#   rpusim_job_train OUT_DIR EXPERIMENT [--set k=v ...]
#                        one `rpusim train` with output and checkpoint in OUT_DIR, resumed
#                        from OUT_DIR/checkpoint.h5 when that exists; forwards SIGUSR1 to
#                        the ranks and requeues the job when they stopped on it (exit 75)
#
# Settings (environment; the job scripts set defaults):
#   RPUSIM           the rpusim command (default: rpusim on PATH, else build/src/rpusim)
#   RPUSIM_LAUNCHER  auto (default) | srun | mpirun
#   RPUSIM_REQUEUE   1 (default): requeue the job after a SIGUSR1 stop; 0: just exit 75

RPUSIM_EXIT_STOPPED=75 # rpusim train: stopped by a signal, checkpoint written

rpusim_job_log() { echo "[rpusim-job $(date '+%F %T')] $*"; }

rpusim_job_env() {
    # One BLAS thread per rank unless the job asked for more CPUs per task.
    export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
    # Parallel HDF5 on NFS/Lustre/GPFS: POSIX file locks are missing or slow there.
    export HDF5_USE_FILE_LOCKING=${HDF5_USE_FILE_LOCKING:-FALSE}
    # More ranks than CPUs on this node (e.g. --overcommit): let idle ranks yield.
    local here=${SLURM_TASKS_PER_NODE:-1}
    here=${here%%[(,]*}
    if [ -n "${SLURM_CPUS_ON_NODE:-}" ] && [ "$here" -gt "$SLURM_CPUS_ON_NODE" ] 2>/dev/null; then
        export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
    fi
    # mpirun refuses to run as root without these (containers, test clusters).
    if [ "$(id -u)" -eq 0 ]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
}

rpusim_job_launcher() {
    local how=${RPUSIM_LAUNCHER:-auto}
    if [ "$how" = auto ]; then
        # srun launches the ranks directly when Slurm and Open MPI share PMIx.
        if command -v srun >/dev/null 2>&1 && srun --mpi=list 2>&1 | grep -qw pmix; then
            how=srun
        else
            how=mpirun
        fi
    fi
    case "$how" in
    srun) RPUSIM_LAUNCH=(srun --mpi=pmix) ;;
    mpirun) RPUSIM_LAUNCH=(mpirun) ;; # takes the ranks and hosts from the allocation
    *)
        echo "rpusim_job.sh: RPUSIM_LAUNCHER must be auto, srun or mpirun (got '$how')" >&2
        return 2
        ;;
    esac
}

# rpusim_job_run CMD...: runs CMD in the background and waits for it. SIGUSR1 to this shell
# (#SBATCH --signal=B:USR1@SECONDS before the time limit, or scancel -b -s USR1 JOBID) is
# passed on to CMD (srun and mpirun pass it on to the ranks); a SIGTERM to this shell is
# only noted, since Slurm sends SIGTERM to the job steps itself. Returns CMD's exit code.
rpusim_job_run() {
    RPUSIM_GOT_USR1=0
    RPUSIM_GOT_TERM=0
    RPUSIM_CHILD=""
    trap '_rpusim_job_usr1' USR1
    trap 'RPUSIM_GOT_TERM=1; rpusim_job_log "SIGTERM received (the job is ending)"' TERM
    "$@" &
    RPUSIM_CHILD=$!
    # a SIGUSR1 that came before the launch
    if [ "$RPUSIM_GOT_USR1" = 1 ]; then kill -USR1 "$RPUSIM_CHILD" 2>/dev/null; fi
    # wait returns early when a trapped signal arrives: wait again until CMD has ended
    while kill -0 "$RPUSIM_CHILD" 2>/dev/null; do wait "$RPUSIM_CHILD"; done
    local rc=0
    wait "$RPUSIM_CHILD" || rc=$?
    trap - USR1 TERM
    return $rc
}

_rpusim_job_usr1() {
    RPUSIM_GOT_USR1=1
    rpusim_job_log "SIGUSR1: asking rpusim to checkpoint and stop"
    if [ -n "$RPUSIM_CHILD" ]; then kill -USR1 "$RPUSIM_CHILD" 2>/dev/null; fi
}

rpusim_job_train() {
    local out=$1 experiment=$2
    shift 2
    local rpusim=${RPUSIM:-$(command -v rpusim || echo build/src/rpusim)}
    local ckpt=$out/checkpoint.h5
    mkdir -p "$out"
    # output_dir and checkpoint last, so that they win over the caller's --set
    local args=(train "$experiment" "$@" --set "run.output_dir=$out" --set "run.checkpoint=$ckpt")
    if [ -s "$ckpt" ]; then
        args+=(--resume "$ckpt")
        rpusim_job_log "resuming from $ckpt (restart ${SLURM_RESTART_COUNT:-0})"
    fi
    rpusim_job_launcher || return $?
    rpusim_job_log "job ${SLURM_JOB_ID:-?} on ${SLURM_JOB_NODELIST:-?}: ${SLURM_NTASKS:-?} tasks; ${RPUSIM_LAUNCH[*]} $rpusim ${args[*]}"
    local rc=0
    rpusim_job_run "${RPUSIM_LAUNCH[@]}" "$rpusim" "${args[@]}" || rc=$?
    rpusim_job_log "rpusim exited with $rc"
    if [ $rc -eq $RPUSIM_EXIT_STOPPED ] && [ "$RPUSIM_GOT_USR1" = 1 ] && [ "$RPUSIM_GOT_TERM" = 0 ] &&
        [ "${RPUSIM_REQUEUE:-1}" = 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
        # The job continues from $ckpt when it runs again (same job id, same $out).
        rpusim_job_log "checkpoint written; requeueing job $SLURM_JOB_ID"
        if scontrol requeue "$SLURM_JOB_ID"; then
            # Slurm ends this script now; the job runs again when it is eligible (Slurm
            # holds a requeued job for about 2 minutes)
            sleep 60
        else
            rpusim_job_log "requeue failed; resubmit with OUT_DIR=$out to continue"
        fi
    fi
    return $rc
}
