"""aihwkit's mapped layers over rpusim's C layers: AnalogConv1dMapped,
AnalogConv2dMapped, AnalogConv3dMapped and AnalogLinearMapped.

Constructor signatures and defaults are aihwkit 1.0's, plus keyword-only rpusim
arguments: comm (mpi4py communicator, default MPI.COMM_WORLD), layer_id and seed (keys
of the random streams, default: creation order and rpusim.manual_seed's seed) and name
(for messages). The split of the weights over tiles is aihwkit's rule, computed by C
(in_sizes / out_sizes). Differences from aihwkit 1.0, all extensions: groups > 1,
dilation in 1d and an analog bias (mapping.digital_bias = False) are supported;
the initial weights are drawn by C from the layer's stream (torch's kaiming-uniform
distribution), not from torch's generator, so every rank and rank count gets the same.
tile_module_class is accepted and ignored (the tiles are rpusim's).
"""
import ctypes

from torch import nn
from torch.nn.modules.utils import _pair, _single, _triple

from rpusim import _capi
from rpusim.nn.base import AnalogMappedLayer, _check, check_input_tensor

__all__ = ["AnalogConv1dMapped", "AnalogConv2dMapped", "AnalogConv3dMapped",
           "AnalogLinearMapped"]

_PADDING_MODES = {"zeros": _capi.PAD_ZEROS, "reflect": _capi.PAD_REFLECT,
                  "replicate": _capi.PAD_REPLICATE, "circular": _capi.PAD_CIRCULAR}


class _AnalogConvNdMapped(AnalogMappedLayer):
    """Convolution over rpu_conv (see the module doc): the mapped classes and, with the
    tile-array split, aihwkit 1.1's AnalogConvNd (rpusim.nn.array). The constructor is
    the 2d/3d one (with use_indexed); _NoUseIndexed gives the signature without it."""

    _ndim = 0
    _tuple = None
    _digital = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", rpu_config=None,
                 tile_module_class=None, use_indexed=None, *, comm=None, layer_id=None,
                 seed=None, name=None):
        # pylint: disable=too-many-arguments,unused-argument
        super().__init__()
        n = self._ndim
        to_tuple = type(self)._tuple
        self._check_arguments(to_tuple(dilation), int(groups), padding_mode)
        if isinstance(padding, str):
            raise ValueError("%s: padding=%r is not supported (give the padding in elements)"
                             % (type(self).__name__, padding))
        if padding_mode not in _PADDING_MODES:
            raise ValueError("padding_mode must be one of %s, got %r"
                             % (sorted(_PADDING_MODES), padding_mode))
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride = to_tuple(kernel_size), to_tuple(stride)
        self.padding, self.dilation = to_tuple(padding), to_tuple(dilation)
        self.groups, self.padding_mode = int(groups), padding_mode
        self.transposed, self.output_padding = False, to_tuple(0)
        p = _capi.ConvParams()
        _capi.conv_params_default(ctypes.byref(p), n, self.in_channels, self.out_channels, 1)
        for i in range(n):
            p.kernel[i], p.stride[i] = self.kernel_size[i], self.stride[i]
            p.padding[i], p.dilation[i] = self.padding[i], self.dilation[i]
        p.groups = self.groups
        p.padding_mode = _PADDING_MODES[padding_mode]
        if use_indexed is not None:
            p.use_indexed = bool(use_indexed)
        self.use_indexed = bool(p.use_indexed)
        self.in_features = self.get_tile_size(self.in_channels, self.groups, self.kernel_size)
        self.out_features = self.out_channels
        self._init_analog(p, bias, rpu_config, comm, layer_id, seed, name)

    def _check_arguments(self, dilation, groups, padding_mode):
        """Refuses arguments the class does not support (the mapped classes: none here;
        C checks the rest)."""

    def get_tile_size(self, in_channels, groups, kernel_size):
        """aihwkit's tile size: (in_channels / groups) x prod(kernel_size) (C)."""
        k = (ctypes.c_int * 3)(*(list(kernel_size) + [1, 1, 1])[:3])
        return _capi.conv_tile_size(int(in_channels), int(groups), len(kernel_size), k)

    def _weight_shape(self):
        return (self.out_channels, self.in_channels // self.groups) + tuple(self.kernel_size)

    def _check_shape(self, x):
        want = self._ndim + 2
        if x.dim() != want or x.shape[1] != self.in_channels:
            raise ValueError("%s: input of shape %s; expected [N, %d, %s] (%d dimensions)"
                             % (self.label, tuple(x.shape), self.in_channels,
                                {1: "L", 2: "H, W", 3: "D, H, W"}[self._ndim], want))

    def _output_shape(self, x):
        n = self._ndim
        in_size = (ctypes.c_int * n)(*x.shape[2:])
        out_size = (ctypes.c_int * n)()
        _check(_capi.conv_output_size(ctypes.byref(self._params), in_size, out_size))
        return (x.shape[0], self.out_channels) + tuple(out_size)

    def _c_forward(self, x, y):
        in_size = (ctypes.c_int * self._ndim)(*x.shape[2:])
        _check(_capi.conv_forward(self._handle, _capi.float_ptr(x), x.shape[0], in_size,
                                  _capi.float_ptr(y)))

    @classmethod
    def from_digital(cls, module, rpu_config, tile_module_class=None, *, comm=None, name=None):
        """The analog layer of a torch convolution with its weights and bias (aihwkit's
        from_digital; collective on comm)."""
        if not isinstance(module, cls._digital):
            raise TypeError("%s.from_digital needs a torch.nn.%s, got %s"
                            % (cls.__name__, cls._digital.__name__, type(module).__name__))
        layer = cls(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                    module.padding, module.dilation, module.groups, module.bias is not None,
                    module.padding_mode, rpu_config, tile_module_class, comm=comm, name=name)
        layer.set_weights(module.weight, module.bias)
        return layer

    @classmethod
    def to_digital(cls, module, realistic=False):
        """The torch convolution with the analog layer's weights (aihwkit's to_digital;
        collective: get_weights)."""
        weight, bias = module.get_weights(realistic=realistic)
        digital = cls._digital(module.in_channels, module.out_channels, module.kernel_size,
                               module.stride, module.padding, module.dilation, module.groups,
                               bias is not None, module.padding_mode)
        digital.weight.data = weight.reshape(module._weight_shape()).clone()
        if bias is not None:
            digital.bias.data = bias.clone()
        return digital

    def _extra_repr_shape(self):
        return "%d, %d, kernel_size=%s, stride=%s, padding=%s, dilation=%s, groups=%d, bias=%s" \
            % (self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
               self.dilation, self.groups,
               {0: "none", 1: "digital", 2: "analog"}[self._bias_kind])


class _NoUseIndexed:
    """The constructor signature of the convolutions without use_indexed (aihwkit's
    AnalogConv1dMapped, AnalogConv1d and AnalogConv3d)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", rpu_config=None,
                 tile_module_class=None, *, comm=None, layer_id=None, seed=None, name=None):
        # pylint: disable=too-many-arguments
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, rpu_config, tile_module_class, None,
                         comm=comm, layer_id=layer_id, seed=seed, name=name)


class AnalogConv1dMapped(_NoUseIndexed, _AnalogConvNdMapped):
    """aihwkit's AnalogConv1dMapped: a 1d convolution on analog tiles (see the module doc).
    Input [N, C, L]."""
    _ndim, _tuple, _digital = 1, staticmethod(_single), nn.Conv1d


class AnalogConv2dMapped(_AnalogConvNdMapped):
    """aihwkit's AnalogConv2dMapped: a 2d convolution on analog tiles (see the module doc).
    Input [N, C, H, W]."""
    _ndim, _tuple, _digital = 2, staticmethod(_pair), nn.Conv2d


class AnalogConv3dMapped(_AnalogConvNdMapped):
    """aihwkit's AnalogConv3dMapped: a 3d convolution on analog tiles (see the module doc).
    Input [N, C, D, H, W]."""
    _ndim, _tuple, _digital = 3, staticmethod(_triple), nn.Conv3d


class _AnalogLinear(AnalogMappedLayer):
    """Linear layer over rpu_linear: AnalogLinearMapped and, with the tile-array split,
    aihwkit 1.1's AnalogLinear (rpusim.nn.array)."""

    _is_linear = True

    def __init__(self, in_features, out_features, bias=True, rpu_config=None,
                 tile_module_class=None, *, comm=None, layer_id=None, seed=None, name=None):
        # pylint: disable=unused-argument
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        p = _capi.LinearParams()
        _capi.linear_params_default(ctypes.byref(p), self.in_features, self.out_features)
        self._init_analog(p, bias, rpu_config, comm, layer_id, seed, name)

    def _weight_shape(self):
        return (self.out_features, self.in_features)

    def _check_shape(self, x):
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError("%s: input of shape %s; expected [..., %d]"
                             % (self.label, tuple(x.shape), self.in_features))

    def forward(self, x):  # pylint: disable=arguments-differ
        check_input_tensor(x, self.label)
        self._check_shape(x)
        lead = x.shape[:-1]
        y = super().forward(x.reshape(-1, self.in_features))
        return y.reshape(*lead, self.out_features)

    def _output_shape(self, x):
        return (x.shape[0], self.out_features)

    def _c_forward(self, x, y):
        _check(_capi.linear_forward(self._handle, _capi.float_ptr(x), x.shape[0],
                                    _capi.float_ptr(y)))

    @classmethod
    def from_digital(cls, module, rpu_config, tile_module_class=None, *, comm=None, name=None):
        """The analog layer of a torch Linear with its weights and bias (collective)."""
        if not isinstance(module, nn.Linear):
            raise TypeError("%s.from_digital needs a torch.nn.Linear, got %s"
                            % (cls.__name__, type(module).__name__))
        layer = cls(module.in_features, module.out_features, module.bias is not None,
                    rpu_config, tile_module_class, comm=comm, name=name)
        layer.set_weights(module.weight, module.bias)
        return layer

    @classmethod
    def to_digital(cls, module, realistic=False):
        """The torch Linear with the analog layer's weights (collective)."""
        weight, bias = module.get_weights(realistic=realistic)
        digital = nn.Linear(module.in_features, module.out_features, bias is not None)
        digital.weight.data = weight.clone()
        if bias is not None:
            digital.bias.data = bias.clone()
        return digital

    def _extra_repr_shape(self):
        return "in_features=%d, out_features=%d, bias=%s" % (
            self.in_features, self.out_features,
            {0: "none", 1: "digital", 2: "analog"}[self._bias_kind])


class AnalogLinearMapped(_AnalogLinear):
    """aihwkit's AnalogLinearMapped: a linear layer on analog tiles, input features split by
    mapping.max_input_size, outputs by max_output_size. Input [..., in_features] (any
    leading dimensions, as torch's Linear)."""
