"""Parameters of hardware-aware training and of drift: WeightModifierParameter,
WeightClipParameter, WeightRemapParameter (spec §6.4-§6.6; C keys modifier.*, clip.*,
remap.*) and the device drift parameters SimpleDriftParameter / DriftParameter (spec
§4.1; C keys device.drift.*)."""
from rpusim._params import Params, field
from rpusim.configs.enums import WeightClipType, WeightModifierType, WeightRemapType

__all__ = ["WeightModifierParameter", "WeightClipParameter", "WeightRemapParameter",
           "SimpleDriftParameter", "DriftParameter"]


def _pcm_noise_only(default):
    def check(value):
        if value != default:
            return ("a parameter of WeightModifierType.PCM_NOISE, which rpusim (like "
                    "aihwkit on CPU) does not implement; leave it at %r" % default)
        return None
    return check


class WeightModifierParameter(Params):
    """aihwkit's WeightModifierParameter (type NONE by default). The pcm_* fields belong
    to PCM_NOISE, which is not implemented: they must keep their defaults."""

    std_dev = field(0.0)
    per_batch_sample = field(False)
    res = field(0.0)
    sto_round = field(False)
    dorefa_clip = field(0.6)
    pdrop = field(0.0)
    enable_during_test = field(False)
    rel_to_actual_wmax = field(True)
    assumed_wmax = field(1.0)
    copy_last_column = field(False)
    coeffs = field(factory=lambda: [0.0105392, 0.0768, -0.046925])
    type = field(WeightModifierType.NONE)
    g_max = field(25.0)
    pcm_zero_thres = field(0.0, key=False, check=_pcm_noise_only(0.0))
    pcm_t_inference = field(0.0, key=False, check=_pcm_noise_only(0.0))
    pcm_prob_at_reset = field(0.0, key=False, check=_pcm_noise_only(0.0))
    pcm_prob_at_gmax = field(0.0, key=False, check=_pcm_noise_only(0.0))
    pcm_prob_at_random = field(0.0, key=False, check=_pcm_noise_only(0.0))
    pcm_t0 = field(20.0, key=False, check=_pcm_noise_only(20.0))


class WeightClipParameter(Params):
    """aihwkit's WeightClipParameter (type NONE by default)."""

    fixed_value = field(-1.0)
    sigma = field(2.5)
    type = field(WeightClipType.NONE)


class WeightRemapParameter(Params):
    """aihwkit's WeightRemapParameter (type NONE by default)."""

    remapped_wmax = field(1.0)
    max_scale_range = field(0.0)
    max_scale_ref = field(0.0)
    type = field(WeightRemapType.NONE)


class SimpleDriftParameter(Params):
    """Power-law drift of a device (nu = 0: off)."""

    nu = field(0.0)
    t_0 = field(1.0)
    reset_tol = field(1e-7)


class DriftParameter(SimpleDriftParameter):
    """Drift of pulsed devices, with device-to-device and cycle-to-cycle spreads."""

    nu_dtod = field(0.0)
    nu_std = field(0.0)
    wg_ratio = field(1.0)
    g_offset = field(0.0)
    w_offset = field(0.0)
    nu_k = field(0.0)
    log_g0 = field(0.0)
    w_noise_std = field(0.0)
