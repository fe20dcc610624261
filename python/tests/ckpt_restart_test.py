"""Restart of a Python training run on another rank count (CTest py_checkpoint_restart).

Usage: ckpt_restart_test.py MPIEXEC WORKDIR [RANKS...]   (default ranks 1 2 3 4)

Runs ckpt_restart_worker.py's save side at each rank count (each: 3 steps, checkpoint,
3 more steps as the uninterrupted reference), then resumes every checkpoint at another
rank count (for 1 2 3 4: 1->3, 2->4, 3->1, 4->2; for 1 2 3: 1->2, 2->3, 3->1: every count
saves once and loads once) and requires
the resumed run's losses and final state (tile weights, digital state, momentum buffers,
torch random state) to equal the uninterrupted run's bit for bit; the four uninterrupted
runs must also equal each other (rank invariance). Each step is its own mpiexec job, as a
user's restart would be.
"""
import os
import pickle
import subprocess
import sys

def restart_pairs(ranks):
    """(save count, resume count) pairs: each count saves once and resumes once, never on
    its own count."""
    shift = max(1, len(ranks) // 2)
    return [(p, ranks[(i + shift) % len(ranks)]) for i, p in enumerate(ranks)]


def run(mpiexec, n, args, log):
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ckpt_restart_worker.py")
    cmd = [mpiexec, "-n", str(n), sys.executable, worker] + args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    log.append("$ %s -> %d\n%s%s" % (" ".join(cmd), out.returncode, out.stdout, out.stderr))
    return out.returncode == 0


def main():
    mpiexec, work = sys.argv[1], sys.argv[2]
    ranks = [int(a) for a in sys.argv[3:]] or [1, 2, 3, 4]
    pairs = restart_pairs(ranks)
    os.makedirs(work, exist_ok=True)
    for name in os.listdir(work):
        os.remove(os.path.join(work, name))
    log, fails = [], []
    for p in ranks:
        if not run(mpiexec, p, ["save", work], log):
            fails.append("save at np%d" % p)
    refs = {}
    for p in ranks:
        path = os.path.join(work, "ref_np%d.pkl" % p)
        if os.path.exists(path):
            with open(path, "rb") as f:
                refs[p] = pickle.load(f)
    if len(refs) == len(ranks) and any(refs[p] != refs[ranks[0]] for p in refs):
        fails.append("the uninterrupted runs differ between rank counts: %s"
                     % [p for p in refs if refs[p] != refs[ranks[0]]])
    for p, q in pairs:
        if not run(mpiexec, q, ["resume", work, str(p)], log):
            fails.append("restart np%d -> np%d" % (p, q))
    print("\n".join(log))
    print("py_checkpoint_restart: %d checks, %d failed%s" % (2 * len(ranks) + 1, len(fails),
                                                             "".join("\nFAIL: " + f for f in fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
