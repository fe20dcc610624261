"""Model conversion as aihwkit's: convert_to_analog (aihwkit 1.1's AnalogConv1d/2d/3d and
AnalogLinear, tile-array split), convert_to_analog_mapped (aihwkit 1.0's mapped layers)
and convert_to_digital. Every Conv1d/Conv2d/Conv3d and Linear of a model (exact classes)
becomes the analog layer with the digital weights copied into the tiles (from_digital),
every torch Sequential an AnalogSequential holding the same modules, and every other
module (BatchNorm, pooling, dropout, activations, the model's own forward with residual
adds) stays as it is and runs in torch.

Layers are created in the order of named_modules() (depth first), so their layer ids
(rpusim._ids) are the same on every rank; every rank must call this with the same model.
"""
from copy import deepcopy

from torch import nn

from rpusim.exceptions import ArgumentError
from rpusim.nn.array import AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogLinear
from rpusim.nn.base import AnalogLayerBase, AnalogMappedLayer
from rpusim.nn.container import AnalogSequential, AnalogWrapper
from rpusim.nn.mapped import (AnalogConv1dMapped, AnalogConv2dMapped, AnalogConv3dMapped,
                              AnalogLinearMapped)

__all__ = ["convert_to_analog", "convert_to_analog_mapped", "convert_to_digital",
           "specific_rpu_config_id"]

_DEFAULT_CONVERSION_MAP = {nn.Linear: AnalogLinear, nn.Conv1d: AnalogConv1d,
                           nn.Conv2d: AnalogConv2d, nn.Conv3d: AnalogConv3d,
                           nn.Sequential: AnalogSequential}
_DEFAULT_MAPPED_CONVERSION_MAP = {nn.Linear: AnalogLinearMapped, nn.Conv1d: AnalogConv1dMapped,
                                  nn.Conv2d: AnalogConv2dMapped, nn.Conv3d: AnalogConv3dMapped,
                                  nn.Sequential: AnalogSequential}
_DEFAULT_DIGITAL_CONVERSION_SET = {*_DEFAULT_CONVERSION_MAP.values(),
                                   *_DEFAULT_MAPPED_CONVERSION_MAP.values()}


def specific_rpu_config_id(module_name, module, rpu_config):  # pylint: disable=unused-argument
    """The default specific_rpu_config_fun: the same config for every layer."""
    return rpu_config


def _from_digital(cls, module, name, how):
    rpu_config, tile_module_class, fun, verbose, comm = how
    if verbose:
        print("Converted '%s' to '%s'." % (name, cls.__name__))
    cfg = fun(name, module, deepcopy(rpu_config))
    if issubclass(cls, AnalogMappedLayer):
        return cls.from_digital(module, cfg, tile_module_class, comm=comm, name=name or None)
    return cls.from_digital(module, cfg, tile_module_class)


def _convert(module, conversion_map, name, exclude, how):
    if type(module) in conversion_map and name not in exclude:
        module = _from_digital(conversion_map[type(module)], module, name, how)
    for child_name, child in list(module.named_children()):
        full = name + "." + child_name if name else child_name
        if full in exclude:
            continue
        new = _convert(child, conversion_map, full, exclude, how)
        if new is not child:
            module._modules[child_name] = new  # pylint: disable=protected-access
    return module


def convert_to_analog(module, rpu_config, tile_module_class=None, conversion_map=None,
                      specific_rpu_config_fun=None, module_name="", ensure_analog_root=True,
                      exclude_modules=None, inplace=False, verbose=False, *, comm=None):
    """aihwkit 1.1's convert_to_analog: replaces the modules of conversion_map's classes
    (default: Conv1d/2d/3d and Linear by AnalogConv1d/2d/3d and AnalogLinear, Sequential
    by AnalogSequential; exact classes, recursively) through the target's from_digital,
    with specific_rpu_config_fun(name, module, copy of rpu_config) as each layer's config;
    keeps every other module; skips the names in exclude_modules; copies the model first
    unless inplace; and (ensure_analog_root) wraps the root in AnalogWrapper so that
    model.program_analog_weights() etc. exist. Collective on comm (default
    MPI.COMM_WORLD). Layers are named by their module path in messages.
    Raises ArgumentError when conversion_map is not a dict."""
    if conversion_map is None:
        conversion_map = _DEFAULT_CONVERSION_MAP
    if not isinstance(conversion_map, dict):
        raise ArgumentError("convert_to_analog: conversion_map should be a dictionary, got %s"
                            % type(conversion_map).__name__)
    if not inplace:
        module = deepcopy(module)
    how = (rpu_config, tile_module_class, specific_rpu_config_fun or specific_rpu_config_id,
           verbose, comm)
    module = _convert(module, conversion_map, module_name, set(exclude_modules or ()), how)
    if ensure_analog_root and not module_name and not isinstance(module, AnalogLayerBase):
        module = AnalogWrapper(module)
    return module


def convert_to_analog_mapped(module, rpu_config, tile_module_class=None,
                             specific_rpu_config_fun=None, module_name="",
                             ensure_analog_root=True, exclude_modules=None, inplace=False,
                             verbose=False, *, comm=None):
    """aihwkit 1.0's convert_to_analog_mapped: convert_to_analog with the mapped classes
    (AnalogConvNdMapped, AnalogLinearMapped; Sequential by AnalogSequential)."""
    return convert_to_analog(module, rpu_config, tile_module_class,
                             _DEFAULT_MAPPED_CONVERSION_MAP, specific_rpu_config_fun,
                             module_name, ensure_analog_root, exclude_modules, inplace, verbose,
                             comm=comm)


def convert_to_digital(module, conversion_set=None, module_name="", inplace=False):
    """aihwkit's convert_to_digital: replaces every module of conversion_set's classes
    (default: rpusim's analog layers of both generations and AnalogSequential) by its
    class's to_digital (the torch layer with the exact weights; collective). The analog
    layers cannot be deep-copied, so the conversion is always in place (inplace is
    accepted for aihwkit's signature). An AnalogWrapper root stays wrapped.
    Raises ArgumentError when conversion_set is not a set or holds a class without
    to_digital."""
    # pylint: disable=unused-argument
    if conversion_set is None:
        conversion_set = _DEFAULT_DIGITAL_CONVERSION_SET
    if not isinstance(conversion_set, set):
        raise ArgumentError("convert_to_digital: conversion_set should be a set, got %s"
                            % type(conversion_set).__name__)
    for cls in conversion_set:
        if not hasattr(cls, "to_digital"):
            raise ArgumentError("convert_to_digital: %s in conversion_set has no to_digital"
                                % getattr(cls, "__name__", cls))
    if type(module) in conversion_set:
        module = type(module).to_digital(module)
    for child_name, child in list(module.named_children()):
        new = convert_to_digital(child, conversion_set)
        if new is not child:
            module._modules[child_name] = new  # pylint: disable=protected-access
    return module
