"""aihwkit 1.1's layers (rpusim.nn.AnalogConv1d/2d/3d, AnalogLinear; tile-array split),
convert_to_analog / convert_to_digital, and their training, rank invariance and
checkpoints.

1. Floating-point config with forced splits (mapping.max_input_size / max_output_size
   small): every tile's shape is aihwkit 1.1's even split of the raw column count
   in_features = C_in x prod(kernel), computed here from the documented rule
   (n = ceil(F / max_in) tiles, the first F mod n one column wider; outputs the same with
   max_out), and the cases are chosen so that it differs from the mapped split (whole
   kernel blocks per tile), which is also computed here. Forward, input gradient, weight
   and bias gradients against torch.nn.functional in float64 with the layer's weights,
   within the (K + 2) u S bound of test_nn.py; 1d/2d/3d, stride, padding, dilation (2d),
   no / digital / analog bias, and 1.1's bias rule: an array of tiles keeps the bias
   digital even with mapping.digital_bias = False, one tile follows digital_bias.
2. 1.1's errors: ValueError for groups != 1, padding_mode != "zeros", dilation != 1 in
   1d/3d (also through from_digital); ArgumentError for a conversion map that is not a
   dict / a conversion set that is not a set.
3. convert_to_analog of a model with BatchNorm, a residual add, a Sequential and a
   Linear: the 1.1 classes with the digital weights bit for bit, AnalogSequential for the
   Sequential, the other modules kept, eval output within float32 rounding of the digital
   model's; convert_to_digital gives back torch modules whose output is the digital
   model's bit for bit; convert_to_digital(model, conversion_set) converts only the
   set's classes (aihwkit's signature); convert_to_analog_mapped turns a Sequential into
   an AnalogSequential (aihwkit's mapped conversion map).
4. Rank invariance: the same model (pulsed constant_step config, tiles cutting kernel
   blocks; and floating point, whose six-tile convolution every rank holds: tile_holders)
   built on COMM_WORLD and on COMM_SELF and trained with AnalogSGD: losses and all
   weights bitwise identical, and identical on every rank (as test_train.py).
5. Checkpoints (both configs): rpusim.save after training at P ranks (COMM_WORLD),
   rpusim.load into a model on COMM_SELF (1 rank: a restart at another rank count for
   P > 1) and into one on COMM_WORLD; both continue training bit for bit as the
   uninterrupted run.
"""
import os

import pytest
import torch
import torch.nn.functional as F
from mpi4py import MPI
from torch import nn

import rpusim
import rpusim.nn.conversion
from rpusim.exceptions import ArgumentError, ModuleError
from rpusim.nn import (AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogConv3dMapped,
                       AnalogLinear, AnalogLinearMapped, AnalogSequential, AnalogWrapper,
                       convert_to_analog, convert_to_analog_mapped, convert_to_digital)
from rpusim.nn.array import TileModule, TileModuleArray
from ckpt_common import data, optimizer, snapshot, train
from standin import make_config
from test_convert import make_digital
from test_nn import check_conv_against_torch, check_linear_against_torch

torch.set_num_threads(1)
WORLD, SELF = MPI.COMM_WORLD, MPI.COMM_SELF


def even_split(size, max_size):
    """aihwkit 1.1's TileModuleArray rule, as documented: n = ceil(size / max) chunks, the
    first size mod n one larger."""
    if max_size <= 0:
        return [size]
    n = -(-size // max_size)
    return [size // n + (1 if i < size % n else 0) for i in range(n)]


def mapped_split(channels, kernel, max_size):
    """The mapped rule in columns: whole kernel blocks, at most max_size columns a tile
    (None when one kernel block does not fit)."""
    if max_size <= 0:
        return [channels * kernel]
    if kernel > max_size:
        return None
    return [c * kernel for c in even_split(channels, max_size // kernel)]


def expected_tiles(in_features, out_features, max_in, max_out, analog_bias):
    """(rows, cols) of every tile in C's order (input split major), and whether aihwkit 1.1
    uses a TileModuleArray (max sizes not both 0 and the layer exceeds one of them)."""
    array = (max_in > 0 or max_out > 0) and (max_in < in_features or max_out < out_features)
    ins, outs = even_split(in_features, max_in), even_split(out_features, max_out)
    extra = 1 if analog_bias and not array else 0
    return [(o, c + (extra if i == 0 else 0)) for i, c in enumerate(ins) for o in outs], array


CONV = {1: (AnalogConv1d, F.conv1d), 2: (AnalogConv2d, F.conv2d), 3: (AnalogConv3d, F.conv3d)}

# (ndim, in, out, kernel, stride, padding, dilation, bias, digital_bias, max_in, max_out, size)
CASES = [
    (1, 3, 4, 3, 2, 1, 1, True, True, 5, 3, (9,)),           # [5, 4] vs mapped [3, 3, 3]
    (1, 2, 3, 2, 1, 0, 1, True, False, 0, 0, (6,)),          # one tile, analog bias
    (2, 4, 6, 3, 1, 1, 1, True, True, 16, 4, (5, 5)),        # [12, 12, 12] vs [9] x 4
    (2, 3, 5, (3, 2), (2, 1), (1, 0), (2, 1), True, False, 10, 0, (7, 6)),  # array: digital
    (2, 3, 4, 2, 1, 0, 1, False, True, 7, 2, (4, 3)),        # [6, 6] vs [4, 4, 4]
    (2, 2, 3, 2, 1, 0, 1, True, False, 8, 3, (4, 4)),        # fits one tile: analog bias
    (3, 2, 3, 2, 1, 1, 1, True, True, 5, 2, (4, 3, 4)),      # [4] x 4; mapped: 8 > 5 refused
    (3, 3, 2, (2, 1, 2), (1, 2, 1), (0, 1, 0), 1, True, False, 0, 0, (4, 4, 3)),
]


def _kernel_elems(k, nd):
    k = (k,) * nd if isinstance(k, int) else k
    out = 1
    for v in k:
        out *= v
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: "conv%dd-bias%d-db%d-max%d/%d" % (
    c[0], c[7], c[8], c[9], c[10]))
def test_conv_against_torch(case):
    nd, cin, cout, k, s, p, d, bias, dbias, mi, mo, size = case
    cls, fn = CONV[nd]
    cfg = make_config("floating_point", mi, mo, digital_bias=dbias)
    layer = cls(cin, cout, k, stride=s, padding=p, dilation=d, bias=bias, rpu_config=cfg)
    kel = _kernel_elems(k, nd)
    in_f = cin * kel
    assert layer.in_features == in_f == layer.get_tile_size(cin, 1, layer.kernel_size)
    shapes, array = expected_tiles(in_f, cout, mi, mo, bias and not dbias)
    assert layer.tile_shapes == shapes
    assert layer.in_sizes == even_split(in_f, mi)
    if mi > 0 and kel > 1 and in_f > mi:
        assert mapped_split(cin, kel, mi) != layer.in_sizes, "the case must tell the rules apart"
    # 1.1's bias: the flag on the layer, the values in analog_module
    assert layer.bias is bias and layer.weight is None
    assert type(layer.analog_module) is (TileModuleArray if array else TileModule)
    analog = bias and not dbias and not array
    assert layer.analog_bias == analog
    digital = layer.analog_module.bias
    assert (digital is not None) == (bias and not analog)
    if digital is not None:
        assert isinstance(digital, nn.Parameter)
        assert "analog_module.bias" in dict(layer.named_parameters())

    b, gb = check_conv_against_torch(layer, fn, (3, cin) + size,
                                     torch.Generator().manual_seed(100 + 10 * nd + cin))
    assert (b is not None) == bias
    if digital is not None:
        assert torch.equal(digital.grad, gb), "autograd's bias grad is C's"
    if not bias:
        assert gb is None


@pytest.mark.parametrize("bias,dbias,mi,mo", [(True, False, 5, 3), (True, False, 0, 0),
                                              (False, True, 4, 0), (True, True, 13, 7)])
def test_linear_against_torch(bias, dbias, mi, mo):
    layer = AnalogLinear(13, 7, bias=bias,
                         rpu_config=make_config("floating_point", mi, mo, digital_bias=dbias))
    shapes, array = expected_tiles(13, 7, mi, mo, bias and not dbias)
    assert layer.tile_shapes == shapes
    assert layer.analog_bias == (bias and not dbias and not array)
    assert layer.bias is bias
    check_linear_against_torch(layer, torch.Generator().manual_seed(7 + mi))


def test_mapped_refuses_what_the_array_splits():
    cfg = make_config("floating_point", 5, 2)
    with pytest.raises(ModuleError, match="tile size too small"):
        AnalogConv3dMapped(2, 3, 2, rpu_config=cfg)
    assert len(AnalogConv3d(2, 3, 2, rpu_config=cfg).tile_shapes) == 4 * 2


def test_weights_and_digital_round_trip():
    cfg = make_config("floating_point", 16, 4, digital_bias=False)
    d = nn.Conv2d(4, 6, 3, padding=1)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        d.weight.copy_(torch.rand(d.weight.shape, generator=gen) - 0.5)
        d.bias.copy_(torch.rand(6, generator=gen))
    a = AnalogConv2d.from_digital(d, cfg)
    w, b = a.get_weights()
    assert w.shape == (6, 36) and torch.equal(w, d.weight.reshape(6, -1))
    assert torch.equal(b, d.bias) and torch.equal(a.analog_module.bias, d.bias)
    back = AnalogConv2d.to_digital(a)
    assert type(back) is nn.Conv2d and torch.equal(back.weight, d.weight)
    assert torch.equal(back.bias, d.bias)
    assert (back.padding, back.kernel_size) == (d.padding, d.kernel_size)
    w2 = torch.rand(6, 36, generator=gen)
    a.set_weights(w2, torch.zeros(6))
    w3, b3 = a.get_weights()
    assert torch.equal(w3, w2) and torch.equal(b3, torch.zeros(6))
    a.set_weights(w2.reshape(6, 4, 3, 3))          # bias None keeps the bias
    assert torch.equal(a.get_weights()[1], torch.zeros(6))
    torch.manual_seed(8)                           # the same digital layer on every rank
    lin = nn.Linear(5, 3)
    al = AnalogLinear.from_digital(lin, make_config("floating_point", 2, 2))
    assert isinstance(al.analog_module, TileModuleArray) and al.analog_module.in_sizes == [2, 2, 1]
    back = AnalogLinear.to_digital(al)
    assert torch.equal(back.weight, lin.weight) and torch.equal(back.bias, lin.bias)


def test_errors_of_aihwkit_1_1():
    cfg = make_config("floating_point", 8, 0)
    with pytest.raises(ValueError, match="AnalogConv2d: only one group"):
        AnalogConv2d(4, 4, 3, groups=2, rpu_config=cfg)
    with pytest.raises(ValueError, match="AnalogConv1d: only dilation = 1"):
        AnalogConv1d(2, 2, 3, dilation=2, rpu_config=cfg)
    with pytest.raises(ValueError, match="AnalogConv3d: only dilation = 1"):
        AnalogConv3d(2, 2, 2, dilation=(1, 2, 1), rpu_config=cfg)
    with pytest.raises(ValueError, match="padding mode"):
        AnalogConv2d(2, 2, 3, padding_mode="reflect", rpu_config=cfg)
    with pytest.raises(ValueError, match="only dilation = 1"):
        AnalogConv1d.from_digital(nn.Conv1d(2, 2, 3, dilation=2), cfg)
    with pytest.raises(ValueError, match="only one group"):
        convert_to_analog(nn.Sequential(nn.Conv2d(2, 2, 1, groups=2)), cfg)
    assert AnalogConv2d(2, 2, 3, dilation=2, rpu_config=cfg).dilation == (2, 2)
    with pytest.raises(TypeError, match="use_indexed"):
        AnalogConv1d(2, 2, 3, use_indexed=False)  # pylint: disable=unexpected-keyword-arg
    with pytest.raises(ArgumentError, match="conversion_map should be a dictionary"):
        convert_to_analog(nn.Linear(2, 2), cfg, conversion_map=[nn.Linear])
    with pytest.raises(ArgumentError, match="conversion_set should be a set"):
        convert_to_digital(nn.Linear(2, 2), [AnalogLinear])


def test_convert_to_analog_and_back():
    assert rpusim.nn.conversion.convert_to_analog is convert_to_analog
    digital = make_digital()
    cfg = make_config("floating_point", 16, 3)
    seen = []
    analog = convert_to_analog(digital, cfg, specific_rpu_config_fun=lambda n, m, c:
                               seen.append(n) or c)
    assert seen == ["stem", "stem.0", "block.conv1", "block.conv2", "fc"]  # as aihwkit
    assert isinstance(analog, AnalogWrapper) and isinstance(digital.stem[0], nn.Conv2d)
    assert isinstance(analog.stem, AnalogSequential)
    assert isinstance(analog.stem[1], nn.ReLU) and isinstance(analog.stem[2], nn.MaxPool2d)
    assert isinstance(analog.block.bn1, nn.BatchNorm2d)
    for name, cls in (("stem.0", AnalogConv2d), ("block.conv1", AnalogConv2d),
                      ("block.conv2", AnalogConv2d), ("fc", AnalogLinear)):
        a, d = analog.get_submodule(name), digital.get_submodule(name)
        assert type(a) is cls and a.label == name
        back = cls.to_digital(a)
        assert type(back) is type(d) and torch.equal(back.weight, d.weight), name
        assert (d.bias is None) == (back.bias is None)
        if d.bias is not None:
            assert torch.equal(back.bias, d.bias)
    assert analog.block.conv1.in_sizes == [12, 12, 12]   # 4 x 3 x 3 = 36 columns by 16
    assert len(list(analog.analog_layers())) == 4
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    analog.eval()
    with torch.no_grad():
        ya, yd = analog(x), digital(x)
    assert (ya - yd).abs().max() <= 1e-5 * (1 + yd.abs().max()), (ya - yd).abs().max()
    restored = convert_to_digital(analog)
    assert type(restored.stem) is nn.Sequential and type(restored.stem[0]) is nn.Conv2d
    assert type(restored.block.conv2) is nn.Conv2d and type(restored.fc) is nn.Linear
    assert not list(rpusim.nn.analog_layers(restored))
    with torch.no_grad():
        assert torch.equal(restored(x), yd)
    excl = convert_to_analog(make_digital(), cfg, exclude_modules=["fc", "block"])
    assert type(excl.fc) is nn.Linear and type(excl.block.conv1) is nn.Conv2d
    assert type(excl.stem[0]) is AnalogConv2d
    # aihwkit's convert_to_digital(module, conversion_set): only the classes of the set
    part = convert_to_digital(excl, {AnalogSequential})
    assert type(part.stem) is nn.Sequential and type(part.stem[0]) is AnalogConv2d
    # convert_to_analog_mapped uses aihwkit's mapped map, Sequential included
    mapped = convert_to_analog_mapped(nn.Sequential(nn.Linear(2, 2)), cfg)
    assert type(mapped) is AnalogSequential and type(mapped[0]) is AnalogLinearMapped


def build(comm, cfg=None):
    """A model of the 1.1 classes whose tiles cut kernel blocks (2 x 3 x 3 = 18 columns by
    8: [6, 6, 6]; the mapped rule cannot split it), with BatchNorm; pulsed config."""
    cfg = cfg or make_config("single", 8, 3, digital_bias=True, constant_step=True)
    rpusim.manual_seed(31)
    torch.manual_seed(5)
    return AnalogSequential(
        AnalogConv2d(2, 5, 3, padding=1, rpu_config=cfg, comm=comm),
        nn.BatchNorm2d(5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        AnalogLinear(5 * 3 * 3, 4, rpu_config=cfg, comm=comm))


@pytest.mark.parametrize("kind", ["single", "floating_point"])
def test_training_is_rank_invariant(kind):
    """Also for floating point, whose convolution of six tiles every rank holds (data
    parallel: each rank runs every tile on its own samples)."""
    batches = data(3)
    cfg = make_config("floating_point", 8, 3) if kind == "floating_point" else None
    world, single = build(WORLD, cfg), build(SELF, cfg)
    assert world[0].in_sizes == [6, 6, 6]
    P = WORLD.Get_size()
    conv_holders = [P] * 6 if kind == "floating_point" or P > 6 else [1] * 6
    assert world[0].tile_holders == conv_holders, world[0].tile_holders
    assert single[0].tile_holders == [1] * 6
    before = snapshot(world)
    assert snapshot(single) == before
    lw = train(world, optimizer(world), batches)
    ls = train(single, optimizer(single), batches)
    assert lw == ls, (lw, ls)
    after = snapshot(world)
    assert after == snapshot(single) and after != before
    every = WORLD.allgather((lw, after))
    assert all(e == every[0] for e in every)


@pytest.mark.parametrize("kind", ["single", "floating_point"])
def test_checkpoint_restart_on_other_rank_count(kind):
    path = os.path.abspath("array_ckpt_%s.h5" % kind)
    cfg = make_config("floating_point", 8, 3) if kind == "floating_point" else None
    batches = data(4)
    model = build(WORLD, cfg)
    opt = optimizer(model)
    train(model, opt, batches[:2])
    rpusim.save(model, opt, path, epoch=2)
    state = snapshot(model, opt)
    cont = train(model, opt, batches[2:])
    final = snapshot(model, opt)
    for comm in (SELF, WORLD):
        WORLD.Barrier()
        m = build(comm, cfg)
        o = optimizer(m)
        info = rpusim.load(m, o, path, comm=comm)
        assert info["epoch"] == 2 and info["ranks_at_save"] == WORLD.Get_size()
        assert snapshot(m, o) == state
        assert train(m, o, batches[2:]) == cont
        assert snapshot(m, o) == final
