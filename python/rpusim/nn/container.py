"""Analog containers (aihwkit's AnalogSequential and AnalogWrapper): torch containers
that also have the analog methods (program_analog_weights, drift_analog_weights,
analog_layers) acting on every analog layer inside them."""
from torch import nn

from rpusim.nn.base import AnalogLayerBase

__all__ = ["AnalogSequential", "AnalogWrapper"]


class AnalogSequential(AnalogLayerBase, nn.Sequential):
    """torch.nn.Sequential with the analog methods of aihwkit's AnalogSequential."""

    @classmethod
    def from_digital(cls, module, *_, **__):
        """An AnalogSequential holding the same modules as a torch Sequential."""
        return cls(*module.children())

    @classmethod
    def to_digital(cls, module, *_, **__):
        """A torch Sequential holding the same modules."""
        return nn.Sequential(*module.children())


class AnalogWrapper(AnalogLayerBase):
    """Adds the analog methods to any torch module, in place (aihwkit's AnalogWrapper):
    AnalogWrapper(model) is an instance of a class derived from both AnalogWrapper and
    type(model), sharing the model's modules and parameters."""

    _SUBCLASSES = {}

    def __new__(cls, module=None, **_):
        if module is None:
            return super().__new__(cls)
        mcls = module.__class__
        key = (cls, mcls)
        if key not in cls._SUBCLASSES:
            cls._SUBCLASSES[key] = type(cls.__name__ + mcls.__name__, (cls, mcls), {})
        return super().__new__(cls._SUBCLASSES[key])

    def __init__(self, module):  # pylint: disable=super-init-not-called
        self.__dict__.update(module.__dict__)
