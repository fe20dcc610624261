"""UpdateParameters: the pulsed update (spec §3.1); C keys update.* under the same
names."""
from rpusim._params import Params, field
from rpusim.configs.enums import PulseType

__all__ = ["UpdateParameters"]


class UpdateParameters(Params):
    """aihwkit's UpdateParameters with its defaults (desired_bl 31, stochastic compressed
    pulses, update and BL management on).

    rpusim extension (C++-only in aihwkit): um_reg_scale (1.0), the regularisation of the
    update-management scale."""

    desired_bl = field(31)
    fixed_bl = field(True)
    pulse_type = field(PulseType.STOCHASTIC_COMPRESSED)
    res = field(0.0)
    x_res_implicit = field(0.0)
    d_res_implicit = field(0.0)
    d_sparsity = field(False)
    sto_round = field(False)
    update_bl_management = field(True)
    update_management = field(True)
    um_grad_scale = field(1.0)
    um_reg_scale = field(1.0)
