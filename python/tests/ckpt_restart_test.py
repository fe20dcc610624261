"""Restart of a Python training run on another rank count (CTest py_checkpoint_restart).

Usage: ckpt_restart_test.py MPIEXEC WORKDIR

Runs ckpt_restart_worker.py's save side at 1, 2, 3 and 4 ranks (each: 3 steps, checkpoint,
3 more steps as the uninterrupted reference), then resumes every checkpoint at another
rank count (1->3, 2->4, 3->1, 4->2: every count saves once and loads once) and requires
the resumed run's losses and final state (tile weights, digital state, momentum buffers,
torch random state) to equal the uninterrupted run's bit for bit; the four uninterrupted
runs must also equal each other (rank invariance). Each step is its own mpiexec job, as a
user's restart would be.
"""
import os
import pickle
import subprocess
import sys

PAIRS = [(1, 3), (2, 4), (3, 1), (4, 2)]


def run(mpiexec, n, args, log):
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ckpt_restart_worker.py")
    cmd = [mpiexec, "-n", str(n), sys.executable, worker] + args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    log.append("$ %s -> %d\n%s%s" % (" ".join(cmd), out.returncode, out.stdout, out.stderr))
    return out.returncode == 0


def main():
    mpiexec, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    for name in os.listdir(work):
        os.remove(os.path.join(work, name))
    log, fails = [], []
    for p in (1, 2, 3, 4):
        if not run(mpiexec, p, ["save", work], log):
            fails.append("save at np%d" % p)
    refs = {}
    for p in (1, 2, 3, 4):
        path = os.path.join(work, "ref_np%d.pkl" % p)
        if os.path.exists(path):
            with open(path, "rb") as f:
                refs[p] = pickle.load(f)
    if len(refs) == 4 and any(refs[p] != refs[1] for p in refs):
        fails.append("the uninterrupted runs differ between rank counts: %s"
                     % [p for p in refs if refs[p] != refs[1]])
    for p, q in PAIRS:
        if not run(mpiexec, q, ["resume", work, str(p)], log):
            fails.append("restart np%d -> np%d" % (p, q))
    print("\n".join(log))
    print("py_checkpoint_restart: %d checks, %d failed%s" % (4 + 1 + len(PAIRS), len(fails),
                                                             "".join("\nFAIL: " + f for f in fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
