"""Conductance converters. rpusim maps a weight to one pair of conductances (G+, G-)
with SinglePairConductanceConverter (spec §6.2); its g_max / g_min render onto
noise_model.g_max / noise_model.g_min. The other converters of aihwkit are not
supported."""
from rpusim._params import ConfigError, field, unsupported_class
from rpusim.inference.converter.base import BaseConductanceConverter

__all__ = ["SinglePairConductanceConverter", "SingleDeviceConductanceConverter",
           "DualPairConductanceConverter", "NPairConductanceConverter",
           "CustomPairConductanceConverter"]


class SinglePairConductanceConverter(BaseConductanceConverter):
    """One pair of conductances per weight in [g_min, g_max] µS (defaults 25, 0);
    constructor arguments None take the defaults, as in aihwkit."""

    g_max = field(25.0)
    g_min = field(0.0)

    def __init__(self, g_max=None, g_min=None):
        super().__init__(g_max=25.0 if g_max is None else g_max,
                         g_min=0.0 if g_min is None else g_min)
        if self.g_max < 0.0:
            raise ConfigError("SinglePairConductanceConverter: g_max should be a positive "
                              "value (got %r)" % self.g_max)
        if self.g_min < 0.0:
            raise ConfigError("SinglePairConductanceConverter: g_min should be a positive "
                              "value (got %r)" % self.g_min)
        if self.g_min >= self.g_max:
            raise ConfigError("SinglePairConductanceConverter: g_min (%r) should be smaller "
                              "than g_max (%r)" % (self.g_min, self.g_max))


_WHY = "rpusim programs one pair of conductances per weight; use " \
       "SinglePairConductanceConverter"
SingleDeviceConductanceConverter = unsupported_class(
    "SingleDeviceConductanceConverter", BaseConductanceConverter, _WHY, __name__)
DualPairConductanceConverter = unsupported_class(
    "DualPairConductanceConverter", BaseConductanceConverter, _WHY, __name__)
NPairConductanceConverter = unsupported_class(
    "NPairConductanceConverter", BaseConductanceConverter, _WHY, __name__)
CustomPairConductanceConverter = unsupported_class(
    "CustomPairConductanceConverter", BaseConductanceConverter, _WHY, __name__)
