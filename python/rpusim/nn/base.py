"""The common part of rpusim's analog layers: one C layer (rpu_conv / rpu_linear) per
module, its autograd Function, weights access, training mode, inference calls.

Every numeric step is a C call; this file only moves tensors in and out (contiguous
float32 CPU buffers) and keeps the bookkeeping torch needs.

Collectivity: the C layer lives on a duplicate of the module's communicator (comm=,
default MPI.COMM_WORLD). Forward, backward, get_weights, set_weights(realistic=True) and
get_gradients are collective: every rank of the communicator calls them in the same order
with the same (replicated) inputs, as an SPMD script does by itself. The optimizer's
update and post-update step, program and drift are local (each rank its own tiles).
"""
import ctypes
import warnings
import weakref

import torch
from mpi4py import MPI
from torch import nn

from rpusim import _capi, _ids
from rpusim._config import c_config
from rpusim._lib import comm_handle
from rpusim.exceptions import ConfigError, ModuleError
from rpusim.exceptions import raise_for_status as _check  # the C calls of rpusim.nn

__all__ = ["AnalogLayerBase", "AnalogMappedLayer", "analog_layers", "named_analog_layers",
           "program_analog_weights", "drift_analog_weights", "check_input_tensor"]


def check_input_tensor(x, label, what="input"):
    """The checks every analog layer makes on a tensor it hands to C: a torch tensor on the
    CPU with dtype float32. Raises TypeError naming the layer otherwise."""
    if not isinstance(x, torch.Tensor):
        raise TypeError("%s: %s must be a torch.Tensor, got %s" % (label, what, type(x).__name__))
    if x.device.type != "cpu":
        raise TypeError("%s: %s is on device %s; rpusim's analog layers compute on the CPU "
                        "(the tiles are C objects spread over MPI ranks): move it with .cpu()"
                        % (label, what, x.device))
    if x.dtype != torch.float32:
        raise TypeError("%s: %s has dtype %s; rpusim's analog layers compute in float32 "
                        "(convert with .float())" % (label, what, x.dtype))


class _AnalogFunction(torch.autograd.Function):
    """One analog layer as an autograd node: forward and backward are the C layer's
    (collective); backward leaves what the pulsed update needs in the C layer and marks
    the layer for the optimizer. Inputs: the module, its analog context parameter (so that
    backward runs even when nothing else needs a gradient), x, the digital bias or None."""

    @staticmethod
    def forward(ctx, module, analog_ctx, x, bias):  # pylint: disable=arguments-differ
        y, seq = module._run_forward(x, bias)
        ctx.module = module
        ctx.seq = seq
        ctx.x_shape = x.shape
        return y

    @staticmethod
    def backward(ctx, dy):  # pylint: disable=arguments-differ
        dx, db = ctx.module._run_backward(ctx.seq, dy, ctx.x_shape, ctx.needs_input_grad[2],
                                          ctx.needs_input_grad[3])
        return None, None, dx, db


class AnalogLayerBase:
    """Analog methods of aihwkit's AnalogLayerBase for a module and all its sub-modules
    (mixed into the analog layers, AnalogSequential and AnalogWrapper). For a plain
    torch module use the functions of the same names in rpusim.nn."""

    def analog_layers(self):
        """The analog layers of this module and its sub-modules (itself included)."""
        return analog_layers(self)

    def named_analog_layers(self):
        """(name, layer) for the analog layers of this module and its sub-modules."""
        return named_analog_layers(self)

    def program_analog_weights(self, noise_model=None):
        """Programs every analog layer's tiles (inference configs; eval mode only)."""
        program_analog_weights(self, noise_model)

    def drift_analog_weights(self, t_inference=0.0):
        """(Programs if needed and) drifts every inference layer to t_inference seconds."""
        drift_analog_weights(self, t_inference)


def named_analog_layers(module):
    """(name, layer) for every rpusim analog layer of a torch module (itself included)."""
    for name, mod in module.named_modules():
        if isinstance(mod, AnalogMappedLayer):
            yield name, mod


def analog_layers(module):
    """Every rpusim analog layer of a torch module (itself included)."""
    for _, mod in named_analog_layers(module):
        yield mod


def _eval_only(module, what):
    for name, layer in named_analog_layers(module):
        if layer.training:
            raise ModuleError("%s can only be applied in evaluation mode: %s is in training "
                              "mode (call model.eval() first)" % (what, name or layer.label))


def program_analog_weights(module, noise_model=None):
    """aihwkit's program_analog_weights for any torch module (local: each rank programs
    the tiles it owns). Every analog layer's tiles get programming noise and drift
    exponents (a new independent realisation with every call, keyed by the call's count)
    and a drift-compensation baseline. Eval mode only; inference configs (C: RPU_ERR_CONFIG
    otherwise). noise_model: only None (the config's noise model) is supported."""
    if noise_model is not None:
        raise ConfigError("program_analog_weights: a noise_model argument is not supported; "
                          "set rpu_config.noise_model of the layers' config instead")
    _eval_only(module, "program_analog_weights")
    for layer in analog_layers(module):
        layer._program()


def drift_analog_weights(module, t_inference=0.0):
    """aihwkit's drift_analog_weights for any torch module (local): every inference layer
    (others are skipped, as aihwkit) is programmed first if it was not, then drifted to
    t_inference seconds after programming with a fresh read-out, and its drift
    compensation updated. Eval mode only."""
    t_inference = float(t_inference)
    _eval_only(module, "drift_analog_weights")
    for layer in analog_layers(module):
        if layer.is_inference():
            layer._drift(t_inference)


def _default_rpu_config():
    try:
        from rpusim.configs import SingleRPUConfig  # pylint: disable=import-outside-toplevel
    except ImportError as err:
        raise ConfigError("rpu_config=None needs rpusim.configs.SingleRPUConfig (aihwkit's "
                          "default): %s" % err) from err
    return SingleRPUConfig()


class AnalogMappedLayer(AnalogLayerBase, nn.Module):
    """Base of the mapped analog layers: owns one C layer.

    Attributes as aihwkit: ``weight`` is None (the weights live in the tiles: use
    get_weights / set_weights), ``bias`` is a torch Parameter when the bias is digital
    (trained by the torch part of the optimizer, as aihwkit's mapped layers) and None
    otherwise (no bias, or an analog bias that lives in the tiles: ``analog_bias`` is
    True). ``analog_ctx`` is an empty Parameter standing for the tile weights in
    ``parameters()``; AnalogSGD recognises it and updates the tiles through C.
    ``in_sizes`` / ``out_sizes``: the channel (feature) split over tiles, from C (for
    the tile-array split of aihwkit 1.1's classes, rpusim.nn.array, ``in_sizes`` counts
    columns of the unfolded patch). ``tile_shapes``: (rows, cols) of every tile in C's
    order (cols include an analog bias column). ``tile_owners`` / ``tile_holders``: the
    rank that owns each tile (writes it to checkpoints) and how many ranks hold a copy
    (owner, owner + 1, ... mod ranks: more ranks than tiles, or every rank for a
    floating-point convolution of several tiles, which runs data parallel).
    ``layer_id``, ``seed``: the keys of the layer's random streams (see rpusim._ids).

    Subclasses choose the split rule (``_split``, rpu_split) and where the digital bias
    Parameter lives (``_attach_digital_bias`` / ``_digital_bias``).
    """

    _is_linear = False
    _split = _capi.SPLIT_MAPPED

    def _init_analog(self, params, bias, rpu_config, comm, layer_id, seed, name):
        if rpu_config is None:
            rpu_config = _default_rpu_config()
        self.rpu_config = rpu_config
        self.comm = MPI.COMM_WORLD if comm is None else comm
        handle_comm = comm_handle(self.comm)
        self.layer_id = _ids.next_layer_id() if layer_id is None else int(layer_id)
        self.seed = _ids.initial_seed() if seed is None else int(seed)
        self.label = name or "%s (layer %d)" % (type(self).__name__, self.layer_id)
        self._cconfig = c_config(rpu_config)
        out_per_group = params.out_features if self._is_linear else \
            params.out_channels // params.groups
        params.split = self._split
        params.bias = _capi.bias_for_split(bool(bias), self._cconfig.ptr, self._split,
                                           self.in_features, out_per_group)
        params.layer_id = self.layer_id
        params.seed = self.seed
        params.name = self.label.encode("utf-8")[:_capi.LAYER_NAME_MAX]
        self._params = params
        self._bias_kind = params.bias
        self._handle = ctypes.c_void_p()
        create = _capi.linear_create if self._is_linear else _capi.conv_create
        _check(create(handle_comm, ctypes.byref(params), self._cconfig.ptr,
                      ctypes.byref(self._handle)))
        self._conv = ctypes.c_void_p(_capi.linear_as_conv(self._handle)) if self._is_linear \
            else self._handle
        grid = _capi.conv_grid(self._conv).contents
        slots = [grid.tiles[t] for t in range(grid.n_tiles)]
        per_col = self._split == _capi.SPLIT_TILE_ARRAY
        self.in_sizes = [s.ncol if per_col else s.in_ch for s in slots
                         if s.group == 0 and s.out_split == 0]
        self.out_sizes = [s.out_ch for s in slots if s.group == 0 and s.in_split == 0]
        self.tile_owners = [s.owner for s in slots]
        self.tile_holders = [s.holders for s in slots]
        self.tile_shapes = [(s.rows, s.cols) for s in slots]
        self._weight_count = _capi.conv_weight_count(self._conv)
        self.weight = None
        self.analog_bias = self._bias_kind == _capi.BIAS_ANALOG
        b = None
        if self._bias_kind == _capi.BIAS_DIGITAL:
            b = torch.empty(self.out_features_(), dtype=torch.float32)
            _check(_capi.conv_get_digital_bias(self._conv, _capi.float_ptr(b)))
        self._attach_digital_bias(bool(bias), b)
        self.analog_ctx = nn.Parameter(torch.empty(0))
        self.analog_ctx._rpusim_layer = weakref.ref(self)
        self._fwd_seq = 0
        self._bwd_seq = 0
        self._pending = False
        # update owners (rpu_conv_set_update_owners): announced for the next forward, and
        # those announced before the forward whose gradient is pending (ctypes int arrays)
        self._owners_next = None
        self._owners_kept = None
        self._warned_dropped = False
        self._program_count = 0
        self._drift_draw = 0

    def _attach_digital_bias(self, bias, initial):  # pylint: disable=unused-argument
        """Keeps the digital bias (initial: C's values, None unless the bias is digital):
        aihwkit's mapped layers have it as ``self.bias`` (None otherwise)."""
        self.bias = None if initial is None else nn.Parameter(initial)

    def _digital_bias(self):
        """The digital bias Parameter, or None."""
        return self.bias

    # -- the C layer ---------------------------------------------------------------
    def out_features_(self):
        """Output channels (features) of the layer."""
        return self._params.out_features if self._is_linear else self._params.out_channels

    def __del__(self):
        h = getattr(self, "_handle", None)
        if h is not None and h.value and not MPI.Is_finalized():
            destroy = _capi.linear_destroy if self._is_linear else _capi.conv_destroy
            destroy(ctypes.byref(h))

    def __deepcopy__(self, memo):
        raise TypeError("%s: an analog layer cannot be deep-copied (its tiles are C objects "
                        "spread over MPI ranks); build a new one and copy the weights with "
                        "get_weights / set_weights" % self.label)

    def is_inference(self):
        """True for an inference (hardware-aware training) config."""
        return self._cconfig.get("kind") == "inference"

    def train(self, mode=True):
        """torch's train()/eval(), also switching the C tiles' training mode."""
        super().train(mode)
        setter = _capi.linear_set_training if self._is_linear else _capi.conv_set_training
        setter(self._handle, bool(mode))
        return self

    # -- forward / backward --------------------------------------------------------
    def _output_shape(self, x):  # pragma: no cover - overridden
        raise NotImplementedError

    def _c_forward(self, x, y):  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, x):  # pylint: disable=arguments-differ
        check_input_tensor(x, self.label)
        self._check_shape(x)
        x = x.contiguous()
        return _AnalogFunction.apply(self, self.analog_ctx, x, self._digital_bias())

    def _run_forward(self, x, bias):
        if self.training and self._pending:
            if not self._warned_dropped:
                warnings.warn("%s: a forward pass replaced the gradient of the previous "
                              "backward before optimizer.step() used it (rpusim keeps one "
                              "forward/backward per layer; that update is dropped)"
                              % self.label, RuntimeWarning)
                self._warned_dropped = True
            self._pending = False
        if bias is not None:
            b = bias.detach().contiguous()
            _check(_capi.conv_set_digital_bias(self._conv, _capi.float_ptr(b)))
        y = torch.empty(self._output_shape(x), dtype=torch.float32)
        self._fwd_seq += 1
        self._owners_kept = self._owners_next
        if x.shape[0] > 0:
            self._c_forward(x, y)
        return y, self._fwd_seq

    def _run_backward(self, seq, dy, x_shape, need_dx, need_db):
        if seq != self._fwd_seq:
            raise RuntimeError("%s: backward of a forward pass that is not the layer's last "
                               "one (rpusim keeps the last forward of each layer: call "
                               "backward before the layer's next forward; a layer used twice "
                               "in one graph is not supported)" % self.label)
        if self._bwd_seq == seq:
            raise RuntimeError("%s: a second backward of the same forward pass (rpusim "
                               "keeps one backward per forward)" % self.label)
        self._bwd_seq = seq
        if x_shape[0] == 0:
            dx = torch.zeros(x_shape, dtype=torch.float32) if need_dx else None
            db = torch.zeros(self.out_features_()) if need_db else None
            return dx, db
        dy = dy.detach().to(torch.float32).contiguous()
        dx = torch.empty(x_shape, dtype=torch.float32) if need_dx else None
        backward = _capi.linear_backward if self._is_linear else _capi.conv_backward
        _check(backward(self._handle, _capi.float_ptr(dy), _capi.float_ptr(dx)))
        db = None
        if self.training:
            self._pending = True
            if need_db:
                db = torch.empty(self.out_features_(), dtype=torch.float32)
                _check(_capi.conv_get_grad(self._conv, None, _capi.float_ptr(db)))
        return dx, db

    def get_gradients(self):
        """(weight_grad, bias_grad) of the last training-mode forward and backward, as torch
        computes them for the digital layer (weight_grad in torch's weight layout; bias_grad
        None without a bias). Collective (rpu_conv_get_grad)."""
        w = torch.empty(self._weight_shape(), dtype=torch.float32)
        b = torch.empty(self.out_features_(), dtype=torch.float32) \
            if self._bias_kind != _capi.BIAS_NONE else None
        _check(_capi.conv_get_grad(self._conv, _capi.float_ptr(w), _capi.float_ptr(b)))
        return w, b

    # -- optimizer hooks (local) ---------------------------------------------------
    def has_gradient(self):
        """True when a training-mode backward is waiting for the optimizer's step."""
        return self._pending

    def _analog_step(self, lr):
        """One optimizer step of the tiles (collective over each tile's holders): the
        pulsed/exact update with lr and the post-update step when a gradient is waiting and
        lr > 0, else the post-update step alone (aihwkit runs post_update_step on every
        analog tile at every step)."""
        if self._pending and lr != 0.0:
            self._update_end(self._update_begin(lr))
        else:
            _check(_capi.conv_post_update(self._conv))
        self._pending = False

    def _update_begin(self, lr):
        """The update's own part (rpu_conv_update_begin with the owners announced before the
        pending forward); returns its status for _update_end."""
        return _capi.conv_update_begin(self._conv, float(lr), self._owners_kept)

    def _update_end(self, begun):
        """The update's exchanges and post-update step (rpu_conv_update_end; collective)."""
        self._pending = False
        _check(_capi.conv_update_end(self._conv, self._owners_kept, begun))

    def _update_splits(self):
        """rpu_conv_update_splits: the holders of every tile split its update."""
        return bool(_capi.conv_update_splits(self._conv))

    def _announce_owners(self, owners):
        """rpu_conv_set_update_owners for the next forward (a ctypes int array, or None)."""
        _check(_capi.conv_set_update_owners(self._conv, owners))
        self._owners_next = owners

    @property
    def update_owners(self):
        """Who updates each tile after the next forward: the holder index per tile (-1: its
        holders split it by rows), or None (every tile split by rows). AnalogSGD announces
        them after each step where every analog layer's update splits (rpusim.optim)."""
        return None if self._owners_next is None else list(self._owners_next)

    # -- weights -------------------------------------------------------------------
    def _weight_shape(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def _tensor_arg(self, t, count, what):
        t = torch.as_tensor(t)
        check_input_tensor(t.detach(), self.label, what)
        t = t.detach().reshape(-1).contiguous()
        if t.numel() != count:
            raise ValueError("%s: %s has %d elements, the layer needs %d"
                             % (self.label, what, t.numel(), count))
        return t

    def _sync_bias(self):
        bias = self._digital_bias()
        if bias is not None:
            b = bias.detach().contiguous()
            _check(_capi.conv_set_digital_bias(self._conv, _capi.float_ptr(b)))

    @torch.no_grad()
    def set_weights(self, weight, bias=None, realistic=False):
        """Writes the weights (any shape with the layer's number of weights, torch's order)
        and the bias into the tiles; the digital bias Parameter takes the bias. bias None
        keeps the layer's bias; a bias for a layer without one is ignored (as aihwkit).
        realistic=True programs the tiles by closed-loop pulsed writes
        (rpu_conv_program_weights, collective) instead of writing them exactly.
        Every rank passes the same values."""
        w = self._tensor_arg(weight, self._weight_count, "weight")
        b = None
        if self._bias_kind != _capi.BIAS_NONE:
            if bias is None:
                b = self.get_weights()[1]
            b = self._tensor_arg(bias if bias is not None else b, self.out_features_(), "bias")
        if realistic:
            _check(_capi.conv_program_weights(self._conv, _capi.float_ptr(w), _capi.float_ptr(b),
                                              None, None, None))
        else:
            _check(_capi.conv_set_weights(self._conv, _capi.float_ptr(w), _capi.float_ptr(b)))
        bias = self._digital_bias()
        if bias is not None:
            bias.data.copy_(b)

    @torch.no_grad()
    def get_weights(self, realistic=False):
        """(weight, bias) from the tiles, the same on every rank (collective): weight as
        aihwkit's mapped layers return it, [out, in_features] (in_features = in/groups x
        prod(kernel) for a convolution); bias [out] or None. realistic=True estimates them
        from noisy read-outs (aihwkit's realistic read; rpu_conv_get_weights)."""
        self._sync_bias()
        w = torch.empty(self._weight_count, dtype=torch.float32)
        b = torch.empty(self.out_features_(), dtype=torch.float32) \
            if self._bias_kind != _capi.BIAS_NONE else None
        read = _capi.READ_REALISTIC if realistic else _capi.READ_EXACT
        _check(_capi.conv_get_weights(self._conv, _capi.float_ptr(w), _capi.float_ptr(b), read))
        return w.reshape(self.out_features_(), -1), b

    # -- inference (local) ---------------------------------------------------------
    def _program(self):
        _check(_capi.conv_program(self._conv, self._program_count))
        self._program_count += 1
        self._drift_draw = 0

    def _drift(self, t_inference):
        if self._program_count == 0:
            self._program()
        _check(_capi.conv_drift(self._conv, t_inference, self._drift_draw))
        self._drift_draw += 1

    def extra_repr(self):
        return "%s, layer_id=%d, tiles=%d, in_sizes=%s, out_sizes=%s" % (
            self._extra_repr_shape(), self.layer_id, len(self.tile_owners), self.in_sizes,
            self.out_sizes)

    def _extra_repr_shape(self):  # pragma: no cover - overridden
        return ""
