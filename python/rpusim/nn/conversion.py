"""convert_to_analog_mapped (aihwkit 1.0): every Conv1d/Conv2d/Conv3d and Linear of a
model becomes rpusim's mapped analog layer with the digital weights copied into the
tiles (from_digital); every other module (BatchNorm, pooling, dropout, activations, the
model's own forward with residual adds) stays as it is and runs in torch.

Layers are created in the order of named_modules() (depth first), so their layer ids
(rpusim._ids) are the same on every rank; every rank must call this with the same model.
"""
from copy import deepcopy

from torch import nn

from rpusim.nn.base import AnalogLayerBase
from rpusim.nn.container import AnalogWrapper
from rpusim.nn.mapped import (AnalogConv1dMapped, AnalogConv2dMapped, AnalogConv3dMapped,
                              AnalogLinearMapped)

__all__ = ["convert_to_analog_mapped", "convert_to_digital", "specific_rpu_config_id"]

_MAPPED = {nn.Conv1d: AnalogConv1dMapped, nn.Conv2d: AnalogConv2dMapped,
           nn.Conv3d: AnalogConv3dMapped, nn.Linear: AnalogLinearMapped}


def specific_rpu_config_id(module_name, module, rpu_config):  # pylint: disable=unused-argument
    """The default specific_rpu_config_fun: the same config for every layer."""
    return rpu_config


def _convert(module, rpu_config, tile_module_class, fun, name, exclude, verbose, comm):
    if type(module) in _MAPPED and name not in exclude:
        cls = _MAPPED[type(module)]
        if verbose:
            print("Converted '%s' to '%s'." % (name, cls.__name__))
        return cls.from_digital(module, fun(name, module, deepcopy(rpu_config)),
                                tile_module_class, comm=comm, name=name or None)
    for child_name, child in list(module.named_children()):
        full = name + "." + child_name if name else child_name
        if full in exclude:
            continue
        new = _convert(child, rpu_config, tile_module_class, fun, full, exclude, verbose, comm)
        if new is not child:
            module._modules[child_name] = new  # pylint: disable=protected-access
    return module


def convert_to_analog_mapped(module, rpu_config, tile_module_class=None,
                             specific_rpu_config_fun=None, module_name="",
                             ensure_analog_root=True, exclude_modules=None, inplace=False,
                             verbose=False, *, comm=None):
    """aihwkit 1.0's convert_to_analog_mapped: replaces every torch Conv1d/2d/3d and Linear
    (exact classes, recursively) by AnalogConvNdMapped / AnalogLinearMapped with the same
    weights, keeps every other module, and (ensure_analog_root) wraps the root in
    AnalogWrapper so that model.program_analog_weights() etc. exist. Collective on comm
    (default MPI.COMM_WORLD). Layers are named by their module path in messages."""
    if not inplace:
        module = deepcopy(module)
    fun = specific_rpu_config_fun or specific_rpu_config_id
    module = _convert(module, rpu_config, tile_module_class, fun, module_name,
                      set(exclude_modules or ()), verbose, comm)
    if ensure_analog_root and not module_name and not isinstance(module, AnalogLayerBase):
        module = AnalogWrapper(module)
    return module


def convert_to_digital(module, module_name="", inplace=False):  # pylint: disable=unused-argument
    """Replaces every rpusim analog layer by its torch layer with the exact weights
    (to_digital); collective. The analog layers themselves cannot be deep-copied, so the
    conversion is always in place."""
    for child_name, child in list(module.named_children()):
        if isinstance(child, (AnalogConv1dMapped, AnalogConv2dMapped, AnalogConv3dMapped,
                              AnalogLinearMapped)):
            module._modules[child_name] = type(child).to_digital(child)  # pylint: disable=W0212
        else:
            convert_to_digital(child)
    return module
