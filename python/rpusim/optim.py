"""rpusim.optim.AnalogSGD: aihwkit's analog-aware SGD.

Digital parameters (the torch modules' and the analog layers' digital biases) follow
torch.optim.SGD exactly (lr, momentum, dampening, weight_decay, nesterov). The analog
layers' tile weights (their ``analog_ctx`` parameters) are updated by their C tiles with
the group's learning rate: rpu_conv_update, a pulsed update on each rank holding the tile
for pulsed devices, the exact update for floating-point and inference configs; then the
tiles' post-update step (decay, diffusion, clip, remap, modifier). As in aihwkit, every
analog layer gets one post-update step per optimizer step, also when it has no gradient
or the learning rate is 0 (rpu_conv_post_update). Momentum and weight decay do not act on
pulsed or floating-point tiles (aihwkit's tile update ignores them); aihwkit applies them
to inference (hardware-aware) tiles through torch, which rpusim's C update does not do
yet, so that combination raises ConfigError instead of training differently.

step() is collective (call it on every rank): each rank updates the tiles it holds and its
replica of the digital parameters (the same values on every rank, since their gradients
are replicated); where a tile has several holders (more ranks than tiles, or a
floating-point convolution of several tiles, which every rank holds), they split an exact update
by samples and a pulsed one by rows, and exchange them. As in ``rpusim train``, when every
analog layer's pulsed update splits among holders, a step runs every layer's own part
before any exchange (rpu_conv_update_begin / _end) and then chooses who updates each tile
in the next step (rpu_conv_update_owners: whole tiles dealt to different holders when the
estimate favours it) and announces it to the layers (rpu_conv_set_update_owners), so that
only a tile's updating holder keeps every sample. The results are the same bits either way.
"""
import ctypes

import torch
from torch.optim import SGD

from rpusim import _capi
from rpusim.exceptions import ConfigError
from rpusim.nn.base import _check

__all__ = ["AnalogSGD"]


def _layer_of(param):
    ref = getattr(param, "_rpusim_layer", None)
    return ref() if ref is not None else None


class AnalogSGD(SGD):
    """torch.optim.SGD whose analog parameters are updated through rpusim's tiles."""

    def regroup_param_groups(self, *_):
        """aihwkit's regroup_param_groups: moves every analog layer's parameter into a group
        of its own (with the optimizer's defaults). Optional in rpusim: step() finds the
        analog parameters in any group."""
        analog = []
        for group in self.param_groups:
            keep = []
            for p in group["params"]:
                (analog if _layer_of(p) is not None else keep).append(p)
            group["params"] = keep
        self.param_groups = [g for g in self.param_groups if g["params"]]
        for p in analog:
            self.add_param_group({"params": [p]})

    def set_learning_rate(self, learning_rate=0.1):
        """aihwkit's set_learning_rate: the learning rate of every group."""
        for group in self.param_groups:
            group["lr"] = learning_rate

    @torch.no_grad()
    def step(self, closure=None):
        """torch's SGD step for the digital parameters, then each analog layer's tile
        update (when a training-mode backward is waiting) and post-update step (local)."""
        layers = []
        for group in self.param_groups:
            for p in group["params"]:
                layer = _layer_of(p)
                if layer is None:
                    continue
                # momentum / weight decay first: is_inference() queries the C config
                if (group.get("momentum", 0) or group.get("weight_decay", 0)) and \
                        layer.is_inference():
                    raise ConfigError(
                        "AnalogSGD: momentum=%g / weight_decay=%g on %s (an inference "
                        "config): aihwkit applies them to hardware-aware-trained tiles "
                        "through torch, rpusim's tile update has no momentum state yet; use "
                        "momentum=0 and weight_decay=0 for this parameter group"
                        % (group.get("momentum", 0), group.get("weight_decay", 0),
                           layer.label))
                layers.append((layer, group["lr"]))
        loss = super().step(closure)
        _analog_steps(layers)
        return loss


# pylint: disable=protected-access
def _analog_steps(layers):
    """Every analog layer's step (collective). Where every layer has a gradient, a learning
    rate > 0 and an update that splits among holders, their own parts run first and the
    exchanges after, in order, and the next step's owners are announced; else layer by
    layer, and no owners for the next step."""
    deferred = bool(layers) and all(
        layer.has_gradient() and lr != 0.0 and layer._update_splits() for layer, lr in layers)
    if deferred:
        begun = [layer._update_begin(lr) for layer, lr in layers]
        failure = None
        for (layer, _), status in zip(layers, begun):
            try:
                layer._update_end(status)  # every rank calls every end (collective)
            except Exception as exc:  # pylint: disable=broad-except
                failure = failure or exc
        if failure is not None:
            raise failure
    else:
        for layer, lr in layers:
            layer._analog_step(lr)
    owners = _next_owners([layer for layer, _ in layers]) if deferred else None
    for k, (layer, _) in enumerate(layers):
        layer._announce_owners(owners[k] if owners else None)


def _next_owners(layers):
    """rpu_conv_update_owners of the layers (ctypes int arrays, one per layer)."""
    n = len(layers)
    int_p = ctypes.POINTER(ctypes.c_int)
    convs = (ctypes.c_void_p * n)(*[layer._conv.value for layer in layers])
    owners = [(ctypes.c_int * max(1, len(layer.tile_shapes)))() for layer in layers]
    ptrs = (int_p * n)(*[ctypes.cast(o, int_p) for o in owners])
    _check(_capi.conv_update_owners(convs, n, ptrs))
    return owners
