"""aihwkit.simulator.presets.utils: the IO and update parameters every preset uses
(compound-devices spec §10.1)."""
from rpusim._params import field
from rpusim.configs.enums import (BoundManagementType, NoiseManagementType, PulseType,
                                  WeightNoiseType)
from rpusim.configs.io import IOParameters
from rpusim.configs.training import UpdateParameters

__all__ = ["PresetIOParameters", "PresetUpdateParameters"]


class PresetIOParameters(IOParameters):
    """IOParameters of the presets: output bound 20 and output noise 0.1 (about one ADC
    step); 7-bit DAC, 9-bit ADC, iterative bound management and abs-max noise management
    restated as aihwkit does, no weight noise."""

    bound_management = field(BoundManagementType.ITERATIVE)
    noise_management = field(NoiseManagementType.ABS_MAX)
    inp_res = field(1.0 / (2 ** 7 - 2))
    inp_sto_round = field(False)
    out_bound = field(20.0)
    out_noise = field(0.1)
    out_res = field(1.0 / (2 ** 9 - 2))
    w_noise = field(0.0)
    w_noise_type = field(WeightNoiseType.NONE)


class PresetUpdateParameters(UpdateParameters):
    """UpdateParameters of the presets: stochastic compressed pulses, at most 31 per
    update, update and BL management on (the UpdateParameters defaults, restated)."""

    desired_bl = field(31)
    pulse_type = field(PulseType.STOCHASTIC_COMPRESSED)
    update_bl_management = field(True)
    update_management = field(True)
