"""The model, data and training loop shared by test_checkpoint.py and ckpt_restart_worker.py.

A small network with every kind of state a checkpoint must carry: an analog conv and an
analog linear layer with a pulsed config (constant_step: device-to-device variation, IO
noise, stochastic pulse trains, so the tiles' random streams and update counters matter)
split over several tiles (spread over the ranks), a digital conv (4-d weight), BatchNorm
(running stats, num_batches_tracked), Dropout (torch's random generator), AnalogSGD with
momentum and weight decay on the digital parameters.
"""
import torch
from torch import nn

import rpusim
from rpusim.nn import AnalogConv2dMapped, AnalogLinearMapped, AnalogSequential
from rpusim.optim import AnalogSGD
from standin import make_config

MODEL_SEED = 2024


def pulsed(max_in=18, max_out=3):
    """SingleRPUConfig(device=ConstantStepDevice()) with a mapping that splits the layers."""
    return make_config("single", max_in, max_out, digital_bias=True, constant_step=True)


def build(comm=None, out_channels=5, cfg=None):
    """The model, after rpusim.manual_seed(MODEL_SEED) (same layer ids and initial tiles on
    every build), with torch's generator seeded for the digital layers' initial weights."""
    cfg = cfg or pulsed()
    rpusim.manual_seed(MODEL_SEED)
    torch.manual_seed(11)
    c = out_channels
    return AnalogSequential(
        AnalogConv2dMapped(2, c, 3, padding=1, rpu_config=cfg, comm=comm),
        nn.BatchNorm2d(c), nn.ReLU(),
        nn.Conv2d(c, c, 1),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25),
        AnalogLinearMapped(c * 3 * 3, 4, rpu_config=cfg, comm=comm))


def optimizer(model):
    opt = AnalogSGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    opt.regroup_param_groups(model)
    return opt


def data(steps):
    gen = torch.Generator().manual_seed(9)
    return [(torch.rand(6, 2, 6, 6, generator=gen), torch.randint(0, 4, (6,), generator=gen))
            for _ in range(steps)]


def train(model, opt, batches):
    """Training steps; the losses as floats."""
    losses = []
    model.train()
    for x, t in batches:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), t)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def snapshot(model, opt=None):
    """Everything that must survive a restart, as bytes: the tile weights (read exactly),
    the torch state_dict, the optimizer's momentum buffers and torch's random state."""
    out = []
    for name, m in model.named_analog_layers():
        w, b = m.get_weights()
        out.append((name, w.numpy().tobytes(), b.detach().numpy().tobytes() if b is not None
                    else b""))
    for k, v in model.state_dict().items():
        out.append((k, v.numpy().tobytes()))
    if opt is not None:
        for group in opt.param_groups:
            out.append(tuple(sorted((k, repr(v)) for k, v in group.items() if k != "params")))
            for p in group["params"]:
                buf = opt.state.get(p, {}).get("momentum_buffer")
                out.append(buf.numpy().tobytes() if buf is not None else None)
    out.append(torch.get_rng_state().numpy().tobytes())
    return out
