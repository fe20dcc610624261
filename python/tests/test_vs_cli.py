"""The LeNet-5 layout trained through Python (rpusim.nn) and through `rpusim train`
(examples/lenet5.ini) gives the same tiles and losses, up to the float rounding of the
digital parts.

Same experiment on both sides:
  * network: the layers of examples/lenet5_training.py (conv 1->16 k5, tanh, maxpool 2,
    conv 16->32 k5, tanh, maxpool 2, tanh, flatten, linear 512->128, tanh, linear
    128->10, log-softmax + cross-entropy), read by `rpusim train` from examples/lenet5.ini
    (which leaves out the log-softmax: cross-entropy of log-softmax outputs equals that of
    the logits); batch size and learning rate are read back from the CLI's checkpoint;
  * initial weights and every random stream: `rpusim train` gives the analog layer at
    position k (1-based, counting every [layer.*] section) layer id k and seeds it with
    run.seed; the Python layers are built with the documented keyword arguments
    layer_id=k, seed=run.seed (ids 1, 4, 9, 11), so the C engine draws the same initial
    weights, device-to-device variation and noise streams on both sides;
  * data: the first N_TRAIN / N_TEST images of Debian's Fashion-MNIST, written as IDX
    files for the CLI and read by examples/fashion_mnist.py for Python (both byte / 255 in
    float32), visited in `rpusim train`'s order rpu_data_order(n, seed, epoch) (called
    through ctypes), with a partial last batch; the test set is evaluated in stored order;
  * optimizer: AnalogSGD(lr) (no momentum), `rpusim train` with run.momentum = 0.

What differs is only the digital part: torch's tanh (vectorised, within 2 ulp of the
glibc tanhf that C uses; 14 % of float inputs in [-4, 4] give another float), torch's
float32 log-softmax + NLL against C's double-precision cross-entropy (gradients within
1.2e-7 of the largest one; the loss within 1.7e-7 relative), torch's SGD step of the
digital biases (a fused multiply-add, b + (-lr) g in one rounding) against C's
b - lr * g (two roundings; 1 % of the values differ by 1 ulp). Max pooling, flatten and
the data are exact on both sides.

Measured (this machine, torch 1.13, seed 1, 2 epochs of 6 batches = 12 steps; the same at
1-4 ranks, since both sides are rank invariant):
  * floating-point tiles: tile weights within 1.5e-8 (conv1; 7.5e-9 = 1 ulp of weights of
    magnitude ~0.1 for the others; 2.2e-8 after 100 steps), digital biases within 7.5e-9,
    per-epoch losses within 4.5e-8 relative;
  * the example's config (SingleRPUConfig(ConstantStepDevice()): IO noise, device
    variation, stochastic pulse trains): tile weights bitwise identical, device arrays
    and stream counters identical, biases within 7.5e-9, losses within 7.8e-8 relative.

Bounds asserted, from float32 rounding (u = 2^-24 relative):
  * per-epoch losses: |py - cli| <= 64 u * cli. A loss is a mean of log-sum-exp terms of
    logits of magnitude <= ~10 computed in float32 by torch (a few roundings each), the
    logits themselves within a few ulps (below);
  * floating-point tiles: |W_py - W_cli| <= 4 S ulp(max |W|) for S steps: every step adds
    lr * sum_n d_n x_n^T, whose factors come from the digital parts within a few ulps, so
    each step changes the difference by at most a few ulps of the weights (the feedback
    of a weight difference into later steps is second order at lr = 0.01 over 12 steps);
    the digital biases the same;
  * the pulsed config: the C engine consumes its streams by call (forward, backward and
    update draws per tile), so both sides draw the same random numbers: device arrays
    and stream counters must be identical. The tile weights are bitwise identical as
    long as no stochastic pulse decision (a uniform draw compared with a probability
    computed from x and d) falls between the two sides' slightly different
    probabilities; each decision flips with probability ~ |dp| ~ 1e-7 p, which over the
    ~10^7 decisions of a step flips one every ~25 steps on average (measured on runs
    like this one: first difference after 44, 22, 49, 6 and 21 steps for seeds 1-5;
    after it the two runs are independent realisations of the same training, and the
    weights differ by up to ~20 dw_min after 20 more steps). For these 12 steps with
    seed 1 the tiles are bitwise equal, so this is asserted; with another torch or libm
    (other roundings) a flip can occur here, and the message then says whether the
    device arrays and stream counters still agree (a flip: the drivers call the engine
    identically) or not (the drivers diverge: a defect).
"""
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import pytest
import torch
from mpi4py import MPI
from torch import nn

import rpusim
from rpusim._lib import declare
from rpusim.configs import ConstantStepDevice, FloatingPointRPUConfig, SingleRPUConfig
from rpusim.nn import AnalogConv2dMapped, AnalogLinearMapped, AnalogSequential
from rpusim.optim import AnalogSGD

torch.set_num_threads(1)
COMM = MPI.COMM_WORLD
RANK = COMM.Get_rank()
SOURCE = os.environ.get("RPUSIM_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "examples"))
import fashion_mnist  # noqa: E402  pylint: disable=wrong-import-position

INI = os.path.join(SOURCE, "examples", "lenet5.ini")
SEED, EPOCHS, N_TRAIN, N_TEST = 1, 2, 44, 20  # 6 batches of 8 (the last of 4) per epoch
U = 2.0 ** -24  # float32 unit roundoff
# analog layers of the example: Python module name -> [layer.NAME] of lenet5.ini, layer id
# (its position among the INI's [layer.*] sections, 1-based)
LAYERS = {"0": ("conv1", 1), "3": ("conv2", 4), "8": ("fc1", 9), "10": ("fc2", 11)}

_order = declare("rpu_data_order", ctypes.c_int, ctypes.c_int, ctypes.c_uint64, ctypes.c_int,
                 ctypes.POINTER(ctypes.c_int))


def data_order(n, seed, epoch):
    """rpu_data_order: the permutation `rpusim train` visits in epoch `epoch`."""
    out = (ctypes.c_int * n)()
    assert _order(n, seed, epoch, out) == 0
    return torch.tensor(list(out), dtype=torch.int64)


def network(cfg):
    """examples/lenet5_training.py's create_analog_network, with the CLI's layer ids."""
    ids = {k: v[1] for k, v in LAYERS.items()}
    return AnalogSequential(
        AnalogConv2dMapped(1, 16, 5, stride=1, rpu_config=cfg, layer_id=ids["0"], seed=SEED),
        nn.Tanh(),
        nn.MaxPool2d(kernel_size=2),
        AnalogConv2dMapped(16, 32, 5, stride=1, rpu_config=cfg, layer_id=ids["3"], seed=SEED),
        nn.Tanh(),
        nn.MaxPool2d(kernel_size=2),
        nn.Tanh(),
        nn.Flatten(),
        AnalogLinearMapped(512, 128, rpu_config=cfg, layer_id=ids["8"], seed=SEED),
        nn.Tanh(),
        AnalogLinearMapped(128, 10, rpu_config=cfg, layer_id=ids["10"], seed=SEED),
        nn.LogSoftmax(dim=1),
    )


def train_python(cfg, data_dir, batch, lr, path):
    """The example's train_step / test_evaluation in rpusim train's data order; saves the
    model with rpusim.save (collective). Returns [(train_loss, test_loss)] per epoch."""
    xtr, ytr = fashion_mnist.load_split(data_dir, True)
    xte, yte = fashion_mnist.load_split(data_dir, False)
    model = network(cfg)
    optimizer = AnalogSGD(model.parameters(), lr=lr)
    optimizer.regroup_param_groups(model)
    criterion = nn.CrossEntropyLoss()
    history = []
    for epoch in range(EPOCHS):
        model.train()
        order = data_order(len(xtr), SEED, epoch)
        total = 0.0
        for b in range(0, len(xtr), batch):
            idx = order[b:b + batch]
            optimizer.zero_grad()
            loss = criterion(model(xtr[idx]), ytr[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        model.eval()
        test = 0.0
        with torch.no_grad():
            for b in range(0, len(xte), batch):
                test += criterion(model(xte[b:b + batch]), yte[b:b + batch]).item() * \
                    len(xte[b:b + batch])
        history.append((total / len(xtr), test / len(xte)))
    rpusim.save(model, optimizer, path, epoch=EPOCHS)
    return history


def tool_env():
    """The CLI runs as a singleton (1 rank): it must not see this MPI job, nor the ASan
    runtime a sanitized build preloads into python3."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("OMPI_", "PMIX_", "PMI_", "OPAL_", "HYDRA_", "LD_PRELOAD"))}


def train_cli(work, data_dir, overrides):
    cli = os.environ.get("RPUSIM_CLI")
    assert cli, "RPUSIM_CLI is not set (CTest sets it)"
    out = os.path.join(work, "cli")
    cmd = [cli, "train", INI, "--set", "run.epochs=%d" % EPOCHS, "--set", "run.seed=%d" % SEED,
           "--set", "run.momentum=0", "--set", "data.path=" + data_dir,
           "--set", "run.output_dir=" + out, "--set", "run.checkpoint=" + out + "/ck.h5"]
    for o in overrides:
        cmd += ["--set", o]
    res = subprocess.run(cmd, capture_output=True, text=True, env=tool_env(), check=False,
                         timeout=600)
    assert res.returncode == 0, "rpusim train failed:\n" + res.stdout + res.stderr
    return out + "/ck.h5"


def ini_value(config_text, section, key):
    """A value of the experiment text stored in the CLI's checkpoint."""
    current = None
    for line in config_text.splitlines():
        line = line.strip()
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section and "=" in line:
            k, v = (s.strip() for s in line.split("=", 1))
            if k == key:
                return v
    raise KeyError("[%s] %s not in the CLI's experiment text" % (section, key))


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def ulp(x):
    return float(np.spacing(np.float32(x)))


def compare(cli_path, py_path, py_history, pulsed):
    """Every check (on rank 0): returns the list of failures (empty: agreement) and the
    measured differences."""
    bad, measured = [], {}
    drivers = []  # differences of construction or stream use (not of rounding)
    with h5py.File(cli_path, "r") as f, h5py.File(py_path, "r") as g:
        steps = int(f.attrs["step"])
        # the losses: /train/history rows (epoch, train_loss, train_acc, test_loss, ...)
        hist = f["train/history"][...]
        worst = 0.0
        for e, (tr, te) in enumerate(py_history):
            for name, p, c in (("train", tr, hist[e, 1]), ("test", te, hist[e, 3])):
                rel = abs(p - c) / abs(c)
                worst = max(worst, rel)
                if rel > 64 * U:
                    bad.append("epoch %d %s loss: Python %.17g, rpusim train %.17g (rel %.3g > "
                               "64 u)" % (e + 1, name, p, c, rel))
        measured["loss_rel"] = worst
        for pname, (cname, _) in LAYERS.items():
            lc, lp = f["layers/" + cname], g["layers/" + pname]
            if sorted(lc["tiles"]) != sorted(lp["tiles"]):
                bad.append("%s: tiles %s vs %s" % (cname, sorted(lc["tiles"]),
                                                   sorted(lp["tiles"])))
                continue
            for t in lc["tiles"]:
                tc, tp = lc["tiles"][t], lp["tiles"][t]
                where = "%s tile %s" % (cname, t)
                for k in sorted(tc.attrs):
                    if not np.array_equal(tc.attrs[k], tp.attrs[k]):
                        drivers.append("%s: attribute %s (stream counter or state) %s vs %s"
                                   % (where, k, tc.attrs[k], tp.attrs[k]))
                for k in sorted(tc):
                    if k != "weights" and not np.array_equal(tc[k][...], tp[k][...]):
                        drivers.append("%s: %s differs (construction draws)" % (where, k))
                wc, wp = tc["weights"][...], tp["weights"][...]
                d = float(np.abs(wc - wp).max())
                measured["w_" + cname] = max(measured.get("w_" + cname, 0.0), d)
                if pulsed:
                    if d != 0.0:
                        bad.append("%s: weights differ in %d of %d (max %.3g); the device "
                                   "arrays and stream counters %s, so the two drove the "
                                   "tiles with different inputs (a flipped pulse decision "
                                   "if only rounding differs, see the module doc)"
                                   % (where, int((wc != wp).sum()), wc.size, d,
                                      "also differ" if drivers else "agree"))
                else:
                    tol = 4 * steps * ulp(np.abs(wc).max())
                    if d > tol:
                        bad.append("%s: weights differ by %.3g > 4 S ulp = %.3g"
                                   % (where, d, tol))
            bc, bp = lc["bias"][...], lp["bias"][...]
            d = float(np.abs(bc - bp).max())
            measured["b_" + cname] = d
            tol = 4 * steps * ulp(np.abs(bc).max())
            if d > tol:
                bad.append("%s: digital bias differs by %.3g > 4 S ulp = %.3g"
                           % (cname, d, tol))
    measured["steps"] = steps
    return drivers + bad, measured


def config_text(cfg):
    """rpu_config_to_text of the C config an rpusim.configs object renders to."""
    from rpusim._config import CConfig, c_config  # pylint: disable=import-outside-toplevel
    return (cfg if isinstance(cfg, CConfig) else c_config(cfg)).to_text()


@pytest.fixture(scope="module")
def data_dir():
    work = tempfile.mkdtemp(prefix="rpusim-vs-cli-") if RANK == 0 else None
    work = COMM.bcast(work)
    if RANK == 0:
        fashion_mnist.write_subset(fashion_mnist.DEFAULT_ROOT, os.path.join(work, "data"),
                                   N_TRAIN, N_TEST)
    COMM.Barrier()
    yield work
    COMM.Barrier()
    if RANK == 0:
        shutil.rmtree(work, ignore_errors=True)


def run_both(work, cfg, overrides, pulsed, tag):
    from rpusim._config import CConfig  # pylint: disable=import-outside-toplevel
    data = os.path.join(work, "data")
    sub = os.path.join(work, tag)
    if RANK == 0:
        os.makedirs(sub)
    cli_path = train_cli(sub, data, overrides) if RANK == 0 else None
    cfg_text = None
    if RANK == 0:
        with h5py.File(cli_path, "r") as f:
            cfg_text = text(f.attrs["config"])
    cfg_text = COMM.bcast(cfg_text)
    batch = int(ini_value(cfg_text, "run", "batch_size"))
    lr = float(ini_value(cfg_text, "run", "lr"))
    # the Python config renders to the same C config as the INI's [rpu] section
    rpu = [("kind", ini_value(cfg_text, "rpu", "kind")),
           ("device.type", ini_value(cfg_text, "rpu", "device.type"))]
    assert config_text(CConfig(rpu)) == config_text(cfg), \
        "the Python config and the INI's [rpu] %s differ as C configs" % rpu
    py_path = os.path.join(sub, "py.h5")
    history = train_python(cfg, data, batch, lr, py_path)
    result = compare(cli_path, py_path, history, pulsed) if RANK == 0 else None
    bad, measured = COMM.bcast(result)
    if RANK == 0:
        print("\n%s: measured %s" % (tag, measured))
    assert not bad, "Python vs rpusim train (%s):\n  " % tag + "\n  ".join(bad)
    return measured


def test_floating_point_tiles_agree_to_rounding(data_dir):
    """Noise off: FloatingPointRPUConfig vs rpu.kind = floating_point. Every difference is
    a float rounding of the digital parts, carried through 12 exact SGD steps: the weights
    and biases agree within 4 ulp per step, the losses within 64 u relative."""
    m = run_both(data_dir, FloatingPointRPUConfig(),
                 ["rpu.kind=floating_point", "rpu.device.type=floating_point"], False, "fp")
    assert m["steps"] == EPOCHS * 6


def test_example_config_draws_identically(data_dir):
    """The example's SingleRPUConfig(device=ConstantStepDevice()) (IO noise, device
    variation, stochastic pulses), the same seed and layer ids: the same device arrays,
    the same stream counters and, for these 12 steps, bitwise the same tile weights."""
    m = run_both(data_dir, SingleRPUConfig(device=ConstantStepDevice()), [], True, "pulsed")
    assert m["steps"] == EPOCHS * 6
