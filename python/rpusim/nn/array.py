"""aihwkit 1.1's analog layers over rpusim's C layers with the tile-array split:
AnalogConv1d, AnalogConv2d, AnalogConv3d and AnalogLinear (rpu_conv_params.split =
RPU_SPLIT_TILE_ARRAY; README "Two split rules").

aihwkit 1.1 keeps such a layer on one tile while it fits mapping.max_input_size and
max_output_size, and otherwise puts it on a TileModuleArray: the raw input column count
in_features = in_channels x prod(kernel) is divided evenly, with no regard to kernel
blocks (n = ceil(in_features / max_input_size) tiles, the first in_features mod n of them
one column wider), the outputs as in the mapped rule. C builds that grid (mapping.h); this
file only asks for it. So the tiles differ from the mapped classes' (rpusim.nn.mapped),
which split in whole kernel blocks.

Constructor signatures and defaults are aihwkit 1.1's (AnalogConv2d has use_indexed,
AnalogConv1d and AnalogConv3d do not), plus the keyword-only rpusim arguments of the
mapped classes (comm, layer_id, seed, name). As aihwkit 1.1 they raise ValueError for
groups != 1, for a padding_mode other than "zeros", and (AnalogConv1d, AnalogConv3d) for
dilation != 1; the mapped classes have none of these limits.

Bias as aihwkit 1.1: ``layer.bias`` is the constructor's flag (a bool) and ``layer.weight``
None; the bias values belong to ``layer.analog_module`` (TileModuleArray or TileModule,
below). An array of tiles always adds the bias digitally (Parameter
``analog_module.bias``, trained by the torch part of the optimizer), whatever
mapping.digital_bias says; a layer on one tile keeps it digital when
mapping.digital_bias is True (the default) and as an analog tile column otherwise
(``analog_module.bias`` None, ``layer.analog_bias`` True). C decides
(rpu_bias_for_split). Everything else (forward and backward, get_weights / set_weights,
get_gradients, from_digital, to_digital, inference, AnalogSGD, rpusim.save / load) is the
mapped classes' code, with the same collectivity; see rpusim.nn.base.
"""
from torch import nn
from torch.nn.modules.utils import _pair, _single, _triple

from rpusim import _capi
from rpusim.nn.mapped import _AnalogConvNdMapped, _AnalogLinear, _NoUseIndexed

__all__ = ["AnalogConv1d", "AnalogConv2d", "AnalogConv3d", "AnalogLinear", "TileModuleArray",
           "TileModule"]


class TileModuleArray(nn.Module):
    """What aihwkit 1.1's TileModuleArray tells about a layer on several tiles (the tiles
    themselves are the owning layer's C objects, spread over the ranks): in_size,
    out_size, in_sizes (input columns per input split), out_sizes (outputs per output
    split), analog_tile_count, and the digital bias Parameter ``bias`` (None without a
    bias)."""

    def __init__(self, layer, bias):
        super().__init__()
        self.in_size = layer.in_features
        self.out_size = layer.out_features_()
        self.in_sizes = list(layer.in_sizes)
        self.out_sizes = list(layer.out_sizes)
        self.analog_tile_count = len(self.in_sizes) * len(self.out_sizes)
        self.analog_bias = layer.analog_bias
        self.digital_bias = bias is not None
        self.bias = None if bias is None else nn.Parameter(bias)

    def extra_repr(self):
        return "in_sizes=%s, out_sizes=%s, bias=%s" % (
            self.in_sizes, self.out_sizes,
            "digital" if self.digital_bias else "analog" if self.analog_bias else "none")


class TileModule(TileModuleArray):
    """The same for a layer that fits one tile (aihwkit 1.1 then uses the rpu_config's
    tile class): ``bias`` is the digital bias Parameter, None for no bias or an analog
    bias column (``analog_bias``)."""


class _TileArrayLayer:
    """The aihwkit 1.1 part of a layer: the tile-array split, 1.1's argument checks and
    the bias held by ``analog_module``."""

    _split = _capi.SPLIT_TILE_ARRAY
    _only_dilation_one = False

    def _check_arguments(self, dilation, groups, padding_mode):
        name = type(self).__name__
        if self._only_dilation_one and any(d != 1 for d in dilation):
            raise ValueError("%s: only dilation = 1 is supported (as aihwkit 1.1), got "
                             "dilation=%s; %sMapped supports dilation"
                             % (name, tuple(dilation), name))
        if groups != 1:
            raise ValueError("%s: only one group is supported (as aihwkit 1.1), got groups=%d; "
                             "%sMapped supports groups" % (name, groups, name))
        if padding_mode != "zeros":
            raise ValueError("%s: only \"zeros\" padding mode is supported (as aihwkit 1.1), "
                             "got padding_mode=%r" % (name, padding_mode))

    def _attach_digital_bias(self, bias, initial):
        used = _capi.tile_array_used(self.in_features, self.out_features_(),
                                     int(self._cconfig.get("mapping.max_input_size")),
                                     int(self._cconfig.get("mapping.max_output_size")))
        self.analog_module = (TileModuleArray if used else TileModule)(self, initial)
        self.bias = bool(bias)

    def _digital_bias(self):
        return self.analog_module.bias


class AnalogConv1d(_TileArrayLayer, _NoUseIndexed, _AnalogConvNdMapped):
    """aihwkit 1.1's AnalogConv1d (see the module doc). Input [N, C, L]."""
    _ndim, _tuple, _digital = 1, staticmethod(_single), nn.Conv1d
    _only_dilation_one = True


class AnalogConv2d(_TileArrayLayer, _AnalogConvNdMapped):
    """aihwkit 1.1's AnalogConv2d (see the module doc). Input [N, C, H, W]."""
    _ndim, _tuple, _digital = 2, staticmethod(_pair), nn.Conv2d


class AnalogConv3d(_TileArrayLayer, _NoUseIndexed, _AnalogConvNdMapped):
    """aihwkit 1.1's AnalogConv3d (see the module doc). Input [N, C, D, H, W]."""
    _ndim, _tuple, _digital = 3, staticmethod(_triple), nn.Conv3d
    _only_dilation_one = True


class AnalogLinear(_TileArrayLayer, _AnalogLinear):
    """aihwkit 1.1's AnalogLinear (see the module doc). Input [..., in_features]. For a
    linear layer the tile-array split equals the mapped one (kernel 1); the bias rule is
    1.1's."""
