"""IOParameters: the forward / backward MVM periphery (spec §2.1); C keys forward.* and
backward.* under the same names."""
from rpusim._params import Params, field, unsupported_class
from rpusim.configs.enums import (AnalogMVType, BoundManagementType, NoiseManagementType,
                                  WeightNoiseType)

__all__ = ["IOParameters", "IOParametersIRDropT"]


class IOParameters(Params):
    """aihwkit's IOParameters with its defaults (7-bit DAC, 9-bit ADC, out_noise 0.06,
    out_bound 12, abs_max noise management, iterative bound management, ...).

    rpusim extensions (C++-only in aihwkit, settable here): nm_assumed_wmax (0.6, the
    weight assumed by ABS_MAX_NP_SUM noise management) and nm_decay (1e-3, the history
    decay of AVERAGE_ABS_MAX)."""

    is_perfect = field(False)
    mv_type = field(AnalogMVType.ONE_PASS)
    inp_bound = field(1.0)
    inp_noise = field(0.0)
    inp_res = field(1 / (2 ** 7 - 2))
    inp_sto_round = field(False)
    inp_asymmetry = field(0.0)
    out_bound = field(12.0)
    out_noise = field(0.06)
    out_noise_std = field(0.0)
    out_res = field(1 / (2 ** 9 - 2))
    out_sto_round = field(False)
    out_scale = field(1.0)
    out_asymmetry = field(0.0)
    bound_management = field(BoundManagementType.ITERATIVE)
    noise_management = field(NoiseManagementType.ABS_MAX)
    w_noise = field(0.0)
    w_noise_type = field(WeightNoiseType.NONE)
    ir_drop = field(0.0)
    ir_drop_g_ratio = field(1.0 / 0.35 / 5e-6)
    out_nonlinearity = field(0.0)
    out_nonlinearity_std = field(0.0)
    slope_calibration = field(0.0)
    v_offset_std = field(0.0)
    v_offset_w_min = field(-1.0)
    r_series = field(0.0)
    w_read_asymmetry_dtod = field(0.0)
    max_bm_factor = field(1000, kind="float")   # aihwkit declares int; C holds a float
    max_bm_res = field(0.25)
    bm_test_negative_bound = field(True)
    nm_thres = field(0.0)
    nm_assumed_wmax = field(0.6)
    nm_decay = field(1e-3)


IOParametersIRDropT = unsupported_class(
    "IOParametersIRDropT", IOParameters,
    "time-dependent IR drop (TorchInferenceRPUConfigIRDropT) is not implemented; "
    "IOParameters.ir_drop models the static IR drop", __name__)
