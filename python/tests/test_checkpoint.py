"""rpusim.save / rpusim.load (python/rpusim/checkpoint.py).

Restart: a run saved after 3 steps and continued for 3 more is the reference; a fresh
model and optimizer (torch's generator deliberately moved elsewhere) loaded from the file
and trained the same 3 steps must give bitwise the same losses, tile weights, digital
state, momentum buffers and random state. (Restarts on another rank count: the driver
ckpt_restart_test.py, CTest py_checkpoint_restart.)

Errors: a missing file, a file of another model (digital shape mismatch, analog mismatch,
optimizer mismatch) raise RPUError / ValueError naming the file and the entry, on every
rank, and leave the model, the optimizer and torch's random state exactly as they were.

The file: readable by h5py (the datasets hold the model's values), by h5dump, by
`rpusim inspect` (layers and their rpu_configs) and its --check verifier.
"""
import json
import os
import subprocess

import pytest
import torch
from mpi4py import MPI
from torch import nn

import rpusim
from ckpt_common import build, data, optimizer, pulsed, snapshot, train
from rpusim import RPUError

torch.set_num_threads(1)
WORLD = MPI.COMM_WORLD
RANK, SIZE = WORLD.Get_rank(), WORLD.Get_size()


def fname(stem):
    return "ckpt_%s_np%d.h5" % (stem, SIZE)


def all_same(value):
    vals = WORLD.allgather(value)
    return all(v == vals[0] for v in vals)


@pytest.fixture(scope="module")
def saved():
    """The reference run: 3 steps, save, 3 more steps."""
    batches = data(6)
    model = build()
    opt = optimizer(model)
    torch.manual_seed(5)
    first = train(model, opt, batches[:3])
    path = fname("mid")
    rpusim.save(model, opt, path, epoch=1, step=3, metadata={"best": 0.5, "note": "mid",
                                                              "hist": torch.arange(4.0)})
    at_save = snapshot(model, opt)
    state = {k: v.numpy().tobytes() for k, v in model.state_dict().items()}
    rest = train(model, opt, batches[3:])
    return {"path": path, "batches": batches, "first": first, "rest": rest,
            "at_save": at_save, "state": state, "end": snapshot(model, opt)}


def test_restart_is_bitwise(saved):
    model = build()
    opt = optimizer(model)
    torch.manual_seed(12345)  # a different random state: load must restore the saved one
    assert snapshot(model, opt) != saved["at_save"]
    info = rpusim.load(model, opt, saved["path"])
    assert info["epoch"] == 1 and info["step"] == 3 and info["ranks_at_save"] == SIZE
    assert info["seed"] == rpusim.initial_seed()
    md = info["metadata"]
    assert md["best"] == 0.5 and md["note"] == "mid" and torch.equal(md["hist"],
                                                                      torch.arange(4.0))
    assert snapshot(model, opt) == saved["at_save"]
    rest = train(model, opt, saved["batches"][3:])
    assert rest == saved["rest"]
    assert snapshot(model, opt) == saved["end"]
    assert all_same((rest, snapshot(model, opt)))


def _nested_configs():
    """Unit cells inside compounds (compound spec §1.2): aihwkit's MixedPrecisionPCMPreset
    and a TransferCompound of two ReferenceUnitCells, split over several tiles."""
    from rpusim import configs as C
    from rpusim import presets as P
    mapping = C.MappingParameter(max_input_size=18, max_output_size=3)
    return {
        "mixed_precision_pcm": P.MixedPrecisionPCMPreset(mapping=mapping),
        "transfer_of_reference_cells": C.UnitCellRPUConfig(
            device=C.TransferCompound(
                unit_cell_devices=[
                    C.ReferenceUnitCell(unit_cell_devices=[C.SoftBoundsDevice()] * 2),
                    C.ReferenceUnitCell(unit_cell_devices=[C.ConstantStepDevice()] * 2)],
                gamma=0.1, transfer_forward=C.IOParameters(out_noise=0.02)),
            mapping=mapping),
    }


@pytest.mark.parametrize("name", sorted(_nested_configs()))
def test_nested_compound_restart_is_bitwise(name):
    """Save after 3 steps, continue 3; a fresh model loaded from the file continues the
    same: the cells' arrays, counters and streams are in the file."""
    cfg = _nested_configs()[name]
    batches = data(6)
    model = build(cfg=cfg)
    opt = optimizer(model)
    torch.manual_seed(5)
    train(model, opt, batches[:3])
    path = fname("nested_" + name)
    rpusim.save(model, opt, path, epoch=1, step=3)
    rest = train(model, opt, batches[3:])
    end = snapshot(model, opt)
    again = build(cfg=_nested_configs()[name])
    opt2 = optimizer(again)
    torch.manual_seed(777)
    rpusim.load(again, opt2, path)
    assert train(again, opt2, batches[3:]) == rest, name
    assert snapshot(again, opt2) == end, name
    # and the restart is not trivially equal: a fresh model that did not load differs
    other = build(cfg=_nested_configs()[name])
    opt3 = optimizer(other)
    torch.manual_seed(5)
    assert train(other, opt3, batches[3:]) != rest, name


def test_optimizer_state_is_restored(saved):
    model = build()
    opt = optimizer(model)
    opt.set_learning_rate(0.01)  # load restores the saved hyper-parameters
    rpusim.load(model, opt, saved["path"])
    assert all(g["lr"] == 0.1 and g["momentum"] == 0.9 for g in opt.param_groups)
    bufs = [opt.state[p]["momentum_buffer"] for g in opt.param_groups for p in g["params"]
            if p in opt.state and opt.state[p].get("momentum_buffer") is not None]
    digital = [p for n, p in model.named_parameters() if not n.endswith("analog_ctx")]
    assert len(bufs) == len(digital) and all(b.abs().sum() > 0 for b in bufs)


def test_model_only_and_state_dict(saved):
    """optimizer=None on both sides; torch's state_dict/load_state_dict keep working and
    agree with the file."""
    model = build()
    rpusim.load(model, None, saved["path"], restore_rng=False)
    other = build()
    other.load_state_dict(model.state_dict())
    for (k, a), (k2, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    rpusim.save(model, None, fname("noopt"))
    fresh = build()
    rpusim.load(fresh, None, fname("noopt"))
    assert snapshot(fresh) == snapshot(model)
    with pytest.raises(ValueError, match=r"/torch/optim: missing"):
        rpusim.load(build(), optimizer(build()), fname("noopt"))


def _unchanged_after(fn, model, opt):
    before = snapshot(model, opt)
    fn()
    assert snapshot(model, opt) == before


def test_missing_file():
    model = build()
    opt = optimizer(model)
    with pytest.raises(RPUError) as err:
        _unchanged_after(lambda: rpusim.load(model, opt, "no_such_file.h5"), model, opt)
    assert "no_such_file.h5" in str(err.value)
    assert all_same(str(err.value))


def test_other_model_digital_mismatch(saved):
    model = build(out_channels=6)
    opt = optimizer(model)
    torch.manual_seed(77)
    with pytest.raises(ValueError) as err:
        _unchanged_after(lambda: rpusim.load(model, opt, saved["path"]), model, opt)
    msg = str(err.value)
    assert saved["path"] in msg and "/torch/model/" in msg and "shape" in msg, msg
    assert all_same(msg)


def test_other_model_analog_mismatch(saved):
    """Same torch side, other tile split: the C load refuses, naming the layer; the tiles,
    the torch side, the optimizer and the random state are untouched."""
    model = build(cfg=pulsed(max_in=9, max_out=2))
    opt = optimizer(model)
    torch.manual_seed(78)
    with pytest.raises(RPUError) as err:
        _unchanged_after(lambda: rpusim.load(model, opt, saved["path"]), model, opt)
    msg = str(err.value)
    assert saved["path"] in msg and "/layers/0" in msg, msg
    assert all_same(msg)


def test_other_optimizer_mismatch(saved):
    model = build()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # one group, not regrouped
    with pytest.raises(ValueError) as err:
        _unchanged_after(lambda: rpusim.load(model, opt, saved["path"]), model, opt)
    assert "/torch/optim/param_groups" in str(err.value)


def test_extra_entry_in_file(saved):
    """A model without the digital conv (the file has entries the model does not)."""
    model = build()
    model[3] = nn.Identity()
    opt = optimizer(model)
    with pytest.raises(ValueError) as err:
        _unchanged_after(lambda: rpusim.load(model, opt, saved["path"]), model, opt)
    assert "/torch/model/3.weight" in str(err.value)


def test_unstorable_names_and_values():
    model = build()
    model.add_module("bad name", nn.Linear(2, 2))
    with pytest.raises(ValueError, match="bad name"):
        rpusim.save(model, None, fname("bad"))
    assert not os.path.exists(fname("bad"))
    with pytest.raises(TypeError, match="metadata 'obj'"):
        rpusim.save(build(), None, fname("bad"), metadata={"obj": object()})
    assert not os.path.exists(fname("bad"))


def test_h5py_reads_the_file(saved):
    if RANK != 0:
        return
    h5py = pytest.importorskip("h5py")
    values = saved["state"]  # the state_dict at save, as bytes

    def text(v):
        return v.decode() if isinstance(v, bytes) else str(v)
    with h5py.File(saved["path"], "r") as f:
        assert text(f.attrs["format"]) == "rpusim-checkpoint"
        assert int(f.attrs["epoch"]) == 1 and int(f.attrs["step"]) == 3
        assert int(f.attrs["ranks_at_save"]) == SIZE
        assert "[layer 0]" in text(f.attrs["config"]) and "[layer 7]" in text(f.attrs["config"])
        assert sorted(f["layers"].keys()) == ["0", "7"]
        w = f["torch/model/3.weight"]
        assert w.shape == (5, 5, 1, 1) and w.dtype == "float32"
        assert f["torch/model/1.num_batches_tracked"][...].tolist() == [3]
        assert f["torch/model/1.running_mean"].shape == (5,)
        for k, b in values.items():
            assert f["torch/model/" + k][...].tobytes() == b, k
        assert f["torch/optim/param_groups/0/lr"][0] == 0.1
        assert f["torch/optim/state/3.weight/momentum_buffer"].shape == (5, 5, 1, 1)
        assert f["torch/rng/torch_cpu"].shape[0] == SIZE
        manifest = json.loads(bytes(f["torch/manifest"][...]).decode())
        assert manifest["format"] == "rpusim-torch"
        assert [e["name"] for e in manifest["model"]] == list(values)


def _tool_env():
    # a clean environment: the tools must not see the MPI job this test runs in, nor the
    # shared ASan runtime a sanitized build preloads into python3 (the tools link their own)
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("OMPI_", "PMIX_", "PMI_", "OPAL_", "HYDRA_", "LD_PRELOAD"))}


def test_inspect_and_h5dump(saved):
    if RANK != 0:
        return
    cli = os.environ.get("RPUSIM_CLI")
    assert cli, "RPUSIM_CLI is not set (CTest sets it)"
    out = subprocess.run([cli, "inspect", saved["path"]], capture_output=True, text=True,
                         env=_tool_env(), check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "layer 0: conv2d" in out.stdout and "layer 7: linear" in out.stdout, out.stdout
    assert "[layer 0]" in out.stdout and "device.type = constant_step" in out.stdout
    chk = subprocess.run([cli, "inspect", saved["path"], "--verify"], capture_output=True,
                         text=True, env=_tool_env(), check=False, timeout=120)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    dump = subprocess.run(["h5dump", "-d", "/torch/model/3.weight", saved["path"]],
                          capture_output=True, text=True, env=_tool_env(), check=False,
                          timeout=120)
    assert dump.returncode == 0, dump.stderr
    assert "DATASPACE  SIMPLE { ( 5, 5, 1, 1 )" in dump.stdout, dump.stdout[:400]
