"""rpusim.nn's mapped layers against torch's digital layers and against the C API.

1. Floating-point config: forward, input gradient, weight and bias gradient
   (get_gradients = rpu_conv_get_grad) of every module against torch.nn.functional's
   conv1d/conv2d/conv3d/linear computed in float64 with the weights the layer reports
   (get_weights), over stride, padding, dilation, groups, no/digital/analog bias and
   forced splits (several tiles). Tolerance from float32 rounding: each value is a sum
   of K products, so |got - ref| <= (K + 2) u S with u = 2^-24 and S the same sum of
   absolute values (the op applied to |x|, |W|, |b|, |dy| in float64): the standard bound
   of recursive summation, which the tiles' float MACs and the exact fixed-point reduction
   of partial sums stay within.
2. The same analog layer driven through rpusim.nn (forward, loss.backward, AnalogSGD) and
   through the C API directly (rpusim._capi calls on a layer with the same parameters,
   layer id and seed), pulsed constant_step config: outputs, input gradients and the tile
   weights after the update are bitwise identical, and the next forward too.
3. Non-contiguous inputs, batch size 1 and 0, leading dimensions of Linear.
4. train()/eval() switch the C tiles' training mode: after an eval-mode backward the
   layer has no kept gradient (get_gradients fails in C, the optimizer step leaves the
   weights unchanged); after train() it has again.
"""
import ctypes

import pytest
import torch
import torch.nn.functional as F
from mpi4py import MPI

import rpusim
from rpusim import _capi
from rpusim._config import c_config
from rpusim._lib import check, comm_handle
from rpusim.nn import (AnalogConv1dMapped, AnalogConv2dMapped, AnalogConv3dMapped,
                       AnalogLinearMapped)
from rpusim.optim import AnalogSGD
from standin import make_config

torch.set_num_threads(1)
U = 2.0 ** -24
WORLD = MPI.COMM_WORLD

CONV = {1: (AnalogConv1dMapped, F.conv1d), 2: (AnalogConv2dMapped, F.conv2d),
        3: (AnalogConv3dMapped, F.conv3d)}

# (ndim, in, out, kernel, stride, padding, dilation, groups, bias, max_in, max_out, size)
CASES = [
    (1, 3, 4, 3, 1, 0, 1, 1, "digital", 0, 0, (9,)),
    (1, 6, 4, 3, 2, 1, 2, 2, "analog", 4, 3, (11,)),
    (1, 5, 7, 2, 1, 2, 3, 1, "none", 4, 2, (8,)),
    (2, 3, 5, 3, 1, 1, 1, 1, "digital", 18, 2, (6, 5)),
    (2, 4, 6, (3, 2), (2, 1), (1, 0), (1, 2), 2, "analog", 6, 4, (7, 6)),
    (2, 6, 12, 3, 1, 1, 1, 6, "digital", 9, 1, (5, 5)),      # depthwise x2, 1 output per tile
    (2, 5, 3, 1, 1, 0, 1, 1, "none", 2, 0, (4, 3)),
    (3, 2, 3, 2, 1, 1, 1, 1, "digital", 8, 2, (4, 3, 4)),
    (3, 4, 4, (2, 1, 2), (1, 2, 1), 0, (2, 1, 1), 2, "analog", 4, 3, (5, 4, 4)),
]


def fp_config(max_in, max_out, bias):
    return make_config("floating_point", max_in, max_out, digital_bias=(bias != "analog"))


def assert_close(got, ref, absref, k, what):
    bound = (k + 2) * U * absref + 1e-30
    err = (got.double() - ref).abs()
    worst = (err - bound).max().item()
    assert worst <= 0, "%s: |got - ref| exceeds (K+2) u S by %g (max err %g)" % (
        what, worst, err.max().item())


def _ref_grads(fn, x, w, b, dy, **kw):
    """Forward and gradients in float64 (and the same for absolute values)."""
    out = []
    for xx, ww, bb, dd in ((x, w, b, dy), (x.abs(), w.abs(), None if b is None else b.abs(),
                                           dy.abs())):
        xx = xx.double().requires_grad_()
        ww = ww.double().requires_grad_()
        bb = None if bb is None else bb.double().requires_grad_()
        y = fn(xx, ww, bb, **kw)
        y.backward(dd.double())
        out.append((y.detach(), xx.grad, ww.grad, None if bb is None else bb.grad))
    return out


def check_conv_against_torch(layer, fn, x_shape, gen, groups=1):
    """An analog convolution on a random input of x_shape: output and every gradient
    against torch's fn (F.conv1d/2d/3d) in float64 with the layer's own weights, within
    (K+2) u S for each sum's length K. Returns the layer's bias and its gradient."""
    x = (torch.rand(x_shape, generator=gen) * 2 - 1).requires_grad_()
    y = layer(x)
    w, b = layer.get_weights()
    w = w.reshape(layer._weight_shape())
    dy = torch.rand(y.shape, generator=gen) * 2 - 1
    y.backward(dy)
    (ry, rdx, rdw, rdb), (ay, adx, adw, adb) = _ref_grads(
        fn, x.detach(), w, b, dy, stride=layer.stride, padding=layer.padding,
        dilation=layer.dilation, groups=groups)
    fan_in = w[0].numel() + (1 if b is not None else 0)
    assert y.shape == ry.shape
    assert_close(y, ry, ay, fan_in, "forward")
    k_dx = w.shape[0] // groups * w[0, 0].numel()
    assert_close(x.grad, rdx, adx, k_dx, "input gradient")
    gw, gb = layer.get_gradients()
    k_dw = x_shape[0] * y[0, 0].numel()
    assert_close(gw, rdw, adw, k_dw, "weight gradient")
    if b is not None:
        assert_close(gb, rdb, adb, k_dw, "bias gradient")
    return b, gb


@pytest.mark.parametrize("case", CASES, ids=lambda c: "conv%dd-g%d-%s-max%d/%d" % (
    c[0], c[7], c[8], c[9], c[10]))
def test_conv_against_torch(case):
    nd, cin, cout, k, s, p, d, g, bias, mi, mo, size = case
    cls, fn = CONV[nd]
    gen = torch.Generator().manual_seed(1000 + len(size) * 7 + cin)
    layer = cls(cin, cout, k, stride=s, padding=p, dilation=d, groups=g,
                bias=(bias != "none"), rpu_config=fp_config(mi, mo, bias))
    assert layer.analog_bias == (bias == "analog")
    assert (layer.bias is not None) == (bias == "digital")
    if mi or mo:
        assert len(layer.tile_owners) > g, "the case is meant to split the layer"
    b, gb = check_conv_against_torch(layer, fn, (3, cin) + size, gen, groups=g)
    if b is not None:
        if bias == "digital":
            assert torch.equal(layer.bias.grad, gb), "autograd's bias grad is C's"
    else:
        assert gb is None
    assert layer.analog_ctx.grad is None  # the tiles are updated by the optimizer


@pytest.mark.parametrize("bias,mi,mo", [("digital", 5, 3), ("analog", 4, 0), ("none", 0, 2),
                                        ("digital", 1, 1)])
def test_linear_against_torch(bias, mi, mo):
    gen = torch.Generator().manual_seed(77 + mi)
    layer = AnalogLinearMapped(13, 7, bias=(bias != "none"), rpu_config=fp_config(mi, mo, bias))
    check_linear_against_torch(layer, gen)


def check_linear_against_torch(layer, gen):
    """A 13 -> 7 analog linear layer on a (2, 3, 13) input: output and every gradient
    against torch's F.linear with the layer's own weights (float32 rounding bounds)."""
    x = (torch.rand((2, 3, 13), generator=gen) * 2 - 1).requires_grad_()
    y = layer(x)
    assert y.shape == (2, 3, 7)
    w, b = layer.get_weights()
    dy = torch.rand(y.shape, generator=gen) * 2 - 1
    y.backward(dy)
    (ry, rdx, rdw, rdb), (ay, adx, adw, adb) = _ref_grads(F.linear, x.detach(), w, b, dy)
    assert_close(y, ry, ay, 14, "forward")
    assert_close(x.grad, rdx, adx, 7, "input gradient")
    gw, gb = layer.get_gradients()
    assert_close(gw, rdw, adw, 6, "weight gradient")
    if b is not None:
        assert_close(gb, rdb, adb, 6, "bias gradient")


def test_noncontiguous_and_batch_sizes():
    layer = AnalogConv2dMapped(3, 4, 3, padding=1, rpu_config=fp_config(9, 2, "digital"))
    gen = torch.Generator().manual_seed(5)
    base = torch.rand((5, 3, 6, 7), generator=gen)
    nc = base.transpose(2, 3).contiguous().transpose(2, 3)   # same values, other strides
    assert not nc.is_contiguous()
    assert torch.equal(layer(nc), layer(base))
    one = layer(base[2:3])
    assert one.shape == (1, 4, 6, 7)
    empty = layer(base[:0])
    assert empty.shape == (0, 4, 6, 7)
    lin = AnalogLinearMapped(6, 2, rpu_config=fp_config(4, 0, "digital"))
    xl = torch.rand((6, 4), generator=gen).t()               # [4, 6], not contiguous
    assert torch.equal(lin(xl), lin(xl.contiguous()))


def _pulsed():
    return make_config("single", 10, 3, digital_bias=False, constant_step=True)


def test_python_and_c_api_bitwise():
    """The same layer through rpusim.nn and through direct C calls: same bits."""
    rpusim.manual_seed(4242)
    layer = AnalogConv2dMapped(4, 5, 3, stride=1, padding=1, bias=True, rpu_config=_pulsed(),
                               layer_id=17, seed=99)
    cfg = c_config(_pulsed())
    p = _capi.ConvParams()
    _capi.conv_params_default(ctypes.byref(p), 2, 4, 5, 3)
    p.padding[0] = p.padding[1] = 1
    p.bias = _capi.BIAS_ANALOG
    p.layer_id, p.seed = 17, 99
    h = ctypes.c_void_p()
    check(_capi.conv_create(comm_handle(WORLD), ctypes.byref(p), cfg.ptr, ctypes.byref(h)))
    try:
        gen = torch.Generator().manual_seed(3)
        x = torch.rand((3, 4, 6, 6), generator=gen).requires_grad_()
        dy = torch.rand((3, 5, 6, 6), generator=gen) - 0.5
        opt = AnalogSGD(layer.parameters(), lr=0.05)
        y = layer(x)
        y.backward(dy)
        opt.step()

        yc = torch.empty(3, 5, 6, 6)
        dxc = torch.empty(3, 4, 6, 6)
        size = (ctypes.c_int * 2)(6, 6)
        xd = x.detach().contiguous()
        check(_capi.conv_forward(h, _capi.float_ptr(xd), 3, size, _capi.float_ptr(yc)))
        check(_capi.conv_backward(h, _capi.float_ptr(dy), _capi.float_ptr(dxc)))
        check(_capi.conv_update(h, ctypes.c_float(0.05)))
        assert torch.equal(y.detach(), yc), "outputs"
        assert torch.equal(x.grad, dxc), "input gradients"
        wc = torch.empty(5 * 4 * 9)
        bc = torch.empty(5)
        check(_capi.conv_get_weights(h, _capi.float_ptr(wc), _capi.float_ptr(bc),
                                     _capi.READ_EXACT))
        w, b = layer.get_weights()
        assert torch.equal(w.reshape(-1), wc) and torch.equal(b, bc), "weights after update"
        assert not torch.equal(wc, torch.zeros_like(wc))
        y2 = layer(x.detach())
        check(_capi.conv_forward(h, _capi.float_ptr(xd), 3, size, _capi.float_ptr(yc)))
        assert torch.equal(y2.detach(), yc), "forward after the update"
    finally:
        _capi.conv_destroy(ctypes.byref(h))


def test_train_eval_switch_the_tiles():
    layer = AnalogLinearMapped(5, 3, rpu_config=fp_config(2, 0, "digital"))
    opt = AnalogSGD(layer.parameters(), lr=0.5)
    # the same input on every rank (SPMD; torch's default seed differs between processes):
    # with more ranks than tiles, a tile's holders must see the same patches
    x = torch.rand(4, 5, generator=torch.Generator().manual_seed(11))
    w0, _ = layer.get_weights()
    layer.eval()
    layer(x).sum().backward()
    assert not layer.has_gradient()
    with pytest.raises(rpusim.RPUError, match="backward"):
        layer.get_gradients()          # the C layer kept nothing in eval mode
    opt.step()
    assert torch.equal(layer.get_weights()[0], w0)
    layer.train()
    layer(x).sum().backward()
    assert layer.has_gradient()
    gw, _ = layer.get_gradients()
    opt.step()
    assert not torch.equal(layer.get_weights()[0], w0)
    assert gw.abs().sum() > 0


def test_same_on_every_rank_and_ids():
    rpusim.manual_seed(7)
    a = AnalogConv1dMapped(2, 3, 2, rpu_config=fp_config(0, 0, "digital"))
    b = AnalogLinearMapped(4, 2, rpu_config=fp_config(0, 0, "digital"))
    assert (a.layer_id, b.layer_id, a.seed) == (0, 1, 7)
    w = a.get_weights()[0]
    every = WORLD.allgather(w.numpy().tobytes())
    assert all(e == every[0] for e in every)
    # torch's kaiming-uniform range U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn in C
    assert w.abs().max() <= 1 / 2 ** 0.5 and w.std() > 0
    rpusim.manual_seed(7)
    a2 = AnalogConv1dMapped(2, 3, 2, rpu_config=fp_config(0, 0, "digital"))
    assert torch.equal(a2.get_weights()[0], w) and torch.equal(a2.bias, a.bias)
