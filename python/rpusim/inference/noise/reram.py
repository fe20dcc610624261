"""aihwkit's ReRAM noise models by name only: not implemented by rpusim."""
from rpusim._params import unsupported_class
from rpusim.inference.noise.base import BaseNoiseModel

__all__ = ["ReRamWan2022NoiseModel", "ReRamCMONoiseModel"]

_WHY = "ReRAM noise models are not implemented; use PCMLikeNoiseModel or " \
       "StateIndependentNoiseModel"
ReRamWan2022NoiseModel = unsupported_class("ReRamWan2022NoiseModel", BaseNoiseModel, _WHY,
                                           __name__)
ReRamCMONoiseModel = unsupported_class("ReRamCMONoiseModel", BaseNoiseModel, _WHY, __name__)
