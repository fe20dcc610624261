"""One side of a restart on another rank count (driven by ckpt_restart_test.py):

    mpiexec -n P python3 ckpt_restart_worker.py save DIR
        trains 3 steps, rpusim.save(DIR/mid_npP.h5), trains 3 more; rank 0 writes the
        uninterrupted run's losses of steps 4-6 and its final state (ckpt_common.snapshot)
        to DIR/ref_npP.pkl
    mpiexec -n Q python3 ckpt_restart_worker.py resume DIR P
        a fresh model and optimizer (torch's generator moved elsewhere) load DIR/mid_npP.h5,
        train steps 4-6; the losses and the final state must equal DIR/ref_npP.pkl bit for
        bit on every rank (exit status 1 and a message otherwise)
"""
import os
import pickle
import sys

import torch
from mpi4py import MPI

import rpusim
from ckpt_common import build, data, optimizer, snapshot, train

torch.set_num_threads(1)
WORLD = MPI.COMM_WORLD


def main():
    mode, work = sys.argv[1], sys.argv[2]
    batches = data(6)
    model = build()
    opt = optimizer(model)
    if mode == "save":
        p = WORLD.Get_size()
        torch.manual_seed(5)
        train(model, opt, batches[:3])
        rpusim.save(model, opt, os.path.join(work, "mid_np%d.h5" % p), epoch=1, step=3)
        rest = train(model, opt, batches[3:])
        end = snapshot(model, opt)
        if WORLD.Get_rank() == 0:
            with open(os.path.join(work, "ref_np%d.pkl" % p), "wb") as f:
                pickle.dump({"rest": rest, "end": end}, f)
        return 0
    p = int(sys.argv[3])
    torch.manual_seed(999)
    info = rpusim.load(model, opt, os.path.join(work, "mid_np%d.h5" % p))
    rest = train(model, opt, batches[3:])
    end = snapshot(model, opt)
    with open(os.path.join(work, "ref_np%d.pkl" % p), "rb") as f:
        ref = pickle.load(f)
    bad = []
    if info["ranks_at_save"] != p or info["step"] != 3:
        bad.append("info %s" % info)
    if rest != ref["rest"]:
        bad.append("losses %s, uninterrupted run %s" % (rest, ref["rest"]))
    if end != ref["end"]:
        diff = [i for i, (a, b) in enumerate(zip(end, ref["end"])) if a != b]
        bad.append("final state differs in snapshot entries %s" % diff)
    if bad:
        print("rank %d: restart np%d -> np%d: %s" % (WORLD.Get_rank(), p, WORLD.Get_size(),
                                                    "; ".join(bad)), flush=True)
    return 1 if WORLD.allreduce(len(bad)) else 0


if __name__ == "__main__":
    sys.exit(main())
