"""Rank invariance of training and inference through rpusim.nn.

Design of the check: CTest runs this file at 1, 2, 3 and 4 ranks, and results of one run
cannot be compared with another's. So each run builds the same model twice in one
process, after the same rpusim.manual_seed: once on COMM_WORLD (tiles spread over the P
ranks, partial results reduced across them) and once on COMM_SELF (each rank holds every
tile itself, i.e. the 1-rank computation), trains both on the same data and requires the
losses and all weights (tile weights read exactly, digital parameters, BatchNorm buffers)
to be bitwise identical, and the COMM_WORLD results to be identical on every rank
(allgather). At P = 1 this checks determinism only; at P = 2..4 it checks the P-rank run
against the 1-rank run bit for bit. The config is pulsed (constant_step with its default
device-to-device variation, IO noise and stochastic pulse trains), so the random streams
must be keyed by layer and tile, not by rank, for this to hold.
"""
import torch
from mpi4py import MPI
from torch import nn

import rpusim
from rpusim.nn import AnalogConv2dMapped, AnalogLinearMapped, AnalogSequential
from rpusim.optim import AnalogSGD
from standin import make_config

torch.set_num_threads(1)
WORLD, SELF = MPI.COMM_WORLD, MPI.COMM_SELF


def pulsed():
    return make_config("single", 18, 3, digital_bias=True, constant_step=True)


def build(comm, cfg):
    rpusim.manual_seed(2024)
    return AnalogSequential(
        AnalogConv2dMapped(2, 5, 3, padding=1, rpu_config=cfg, comm=comm),
        nn.BatchNorm2d(5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        AnalogLinearMapped(5 * 3 * 3, 4, rpu_config=cfg, comm=comm))


def data(steps):
    gen = torch.Generator().manual_seed(9)
    return [(torch.rand(6, 2, 6, 6, generator=gen), torch.randint(0, 4, (6,), generator=gen))
            for _ in range(steps)]


def snapshot(model):
    out = []
    for m in model.analog_layers():
        w, b = m.get_weights()
        out.append(w.numpy().tobytes())
        out.append(b.detach().numpy().tobytes() if b is not None else b"")
    for k, v in model.state_dict().items():
        out.append((k, v.numpy().tobytes()))
    return out


def train(model, batches):
    opt = AnalogSGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    opt.regroup_param_groups(model)
    losses = []
    model.train()
    for x, t in batches:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), t)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_training_is_rank_invariant():
    batches = data(4)
    world = build(WORLD, pulsed())
    single = build(SELF, pulsed())
    before = snapshot(world)
    assert snapshot(single) == before
    lw = train(world, batches)
    ls = train(single, batches)
    assert lw == ls, (lw, ls)
    after = snapshot(world)
    assert after == snapshot(single)
    assert after != before
    every = WORLD.allgather((lw, after))
    assert all(e == every[0] for e in every)


def test_inference_drift_is_rank_invariant():
    cfg = make_config("inference", 18, 3)
    outs = []
    x = torch.rand(3, 2, 6, 6, generator=torch.Generator().manual_seed(4))
    for comm in (WORLD, SELF):
        model = build(comm, cfg).eval()
        model.program_analog_weights()
        res = [model(x)]
        for t in (1.0, 86400.0, 3.15e7):
            model.drift_analog_weights(t)
            res.append(model(x))
        outs.append([r.detach().numpy().tobytes() for r in res])
        assert not torch.equal(res[1], res[3]), "drift changes the outputs"
    assert outs[0] == outs[1]
    assert len(set(map(tuple, WORLD.allgather(outs[0])))) == 1


def whole_model(comm):
    """One tile per analog layer (conv 1->4, conv 4->4, linear 16->4 on 8 x 8 inputs), as
    test_net's whole-tile case: on 2..4 ranks every layer's pulsed update splits among
    holders, so AnalogSGD deals the tiles whole (rpu_conv_update_owners)."""
    cfg = make_config("single", 512, 512, digital_bias=True, constant_step=True)
    cfg.forward.out_noise = 0.1
    rpusim.manual_seed(77)
    return AnalogSequential(
        AnalogConv2dMapped(1, 4, 3, padding=1, rpu_config=cfg, comm=comm), nn.Tanh(),
        nn.MaxPool2d(2), AnalogConv2dMapped(4, 4, 3, padding=1, rpu_config=cfg, comm=comm),
        nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(),
        AnalogLinearMapped(16, 4, rpu_config=cfg, comm=comm))


def test_whole_tile_updates_are_rank_invariant():
    gen = torch.Generator().manual_seed(71)
    batches = [(torch.rand(16, 1, 8, 8, generator=gen) * 2 - 1,
                torch.randint(0, 4, (16,), generator=gen)) for _ in range(3)]
    world, single = whole_model(WORLD), whole_model(SELF)
    lw, ls = train(world, batches[:1]), train(single, batches[:1])
    owners = [m.update_owners for m in list(world.analog_layers())]
    if WORLD.Get_size() == 1:
        assert owners == [None, None, None]
    else:  # announced after the first step: each tile whole, the two convs on two ranks
        assert all(o is not None and len(o) == 1 and 0 <= o[0] < WORLD.Get_size()
                   for o in owners), owners
        convs = list(world.analog_layers())[:2]
        ranks = [m.tile_owners[0] + o[0] for m, o in zip(convs, owners)]
        assert ranks[0] % WORLD.Get_size() != ranks[1] % WORLD.Get_size(), (owners, ranks)
    assert all(m.update_owners is None for m in single.analog_layers())
    lw += train(world, batches[1:])
    ls += train(single, batches[1:])
    assert lw == ls, (lw, ls)
    assert snapshot(world) == snapshot(single)
    every = WORLD.allgather((lw, snapshot(world)))
    assert all(e == every[0] for e in every)
