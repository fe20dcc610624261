"""The resistive devices rpusim implements (spec §4), under aihwkit's class and field
names and with aihwkit's defaults; C keys device.* (device.type from the class,
device.drift.* from the drift parameters).

A class renders only its own fields; the C fields a class does not have (e.g. the gamma
of SoftBoundsDevice, fixed at 1) keep the C defaults of the device type, which setting
device.type restores."""
from rpusim._params import Params, UnsupportedConfigError, field, unsupported_class
from rpusim.configs.inference import DriftParameter, SimpleDriftParameter

__all__ = ["FloatingPointDevice", "PulsedDevice", "IdealDevice", "ConstantStepDevice",
           "LinearStepDevice", "SoftBoundsDevice", "SoftBoundsPmaxDevice",
           "SoftBoundsReferenceDevice", "ExpStepDevice", "PowStepDevice",
           "PowStepReferenceDevice", "PiecewiseStepDevice"]


class _Device(Params):
    """A device: its C type name (device.type) and its fields under device.*."""

    _c_type = None

    def _render_device(self, path):
        """[("device.type", name), ("device.<field>", text), ...]."""
        if self._c_type is None:
            raise UnsupportedConfigError(
                "%s: %s is not a device rpusim can simulate (an abstract base class); "
                "use ConstantStepDevice, LinearStepDevice, SoftBoundsDevice, ..."
                % (path, type(self).__name__))
        return [("device.type", self._c_type)] + self._render("device.", path)

    def requires_diffusion(self):
        """Whether the device diffuses after each update (aihwkit's method)."""
        return self.diffusion > 0.0

    def requires_decay(self):
        """Whether the device decays after each update (aihwkit's method)."""
        return self.lifetime > 0.0


class FloatingPointDevice(_Device):
    """Floating-point (exact) weights, with optional decay, diffusion and drift."""

    _c_type = "floating_point"
    diffusion = field(0.0)
    lifetime = field(0.0)
    drift = field(factory=SimpleDriftParameter, classes=(SimpleDriftParameter,))


class IdealDevice(_Device):
    """Ideal update (the device of InferenceRPUConfig)."""

    _c_type = "ideal"
    construction_seed = field(0, kind="u64")
    diffusion = field(0.0)
    lifetime = field(0.0)
    reset_std = field(0.01)


class PulsedDevice(_Device):
    """Common parameters of the pulsed devices (spec §4.1); abstract."""

    construction_seed = field(0, kind="u64")
    corrupt_devices_prob = field(0.0)
    corrupt_devices_range = field(0.1)
    diffusion = field(0.0)
    diffusion_dtod = field(0.0)
    drift = field(factory=DriftParameter, classes=(DriftParameter,))
    dw_min = field(0.001)
    dw_min_dtod = field(0.3)
    dw_min_dtod_log_normal = field(False)
    dw_min_std = field(0.3)
    enforce_consistency = field(True)
    lifetime = field(0.0)
    lifetime_dtod = field(0.0)
    perfect_bias = field(False)
    reset = field(0.0)
    reset_dtod = field(0.0)
    reset_std = field(0.01)
    up_down = field(0.0)
    up_down_dtod = field(0.01)
    w_max = field(0.6)
    w_max_dtod = field(0.3)
    w_min = field(-0.6)
    w_min_dtod = field(0.3)
    count_pulses = field(False, key=False, check=lambda v: v and (
        "pulse counting is a GPU feature of aihwkit; rpusim does not count pulses"))


class ConstantStepDevice(PulsedDevice):
    """Constant step size (the device of SingleRPUConfig)."""

    _c_type = "constant_step"


class LinearStepDevice(PulsedDevice):
    """Step size linear in the weight (spec §4.3)."""

    _c_type = "linear_step"
    gamma_up = field(0.0)
    gamma_down = field(0.0)
    gamma_up_dtod = field(0.05)
    gamma_down_dtod = field(0.05)
    allow_increasing = field(False)
    mean_bound_reference = field(True)
    mult_noise = field(True)
    write_noise_std = field(0.0)
    apply_write_noise_on_set = field(True)
    reverse_up = field(False)
    reverse_down = field(False)
    reverse_offset = field(0.01)


class SoftBoundsDevice(PulsedDevice):
    """Soft bounds: a linear step with gamma fixed to 1 (spec §4.4)."""

    _c_type = "soft_bounds"
    mult_noise = field(True)
    write_noise_std = field(0.0)
    apply_write_noise_on_set = field(True)
    reverse_up = field(False)
    reverse_down = field(False)
    reverse_offset = field(0.01)


def _derived(name):
    def check(value):
        if value is not None:
            return ("SoftBoundsPmaxDevice derives %s from range_min, range_max, p_max and "
                    "alpha (aihwkit overwrites it silently); leave it None and set those"
                    % name)
        return None
    return check


class SoftBoundsPmaxDevice(SoftBoundsDevice):
    """Soft bounds given by the number of pulses p_max from range_min to range_max
    (spec §4.4); w_min, w_max, dw_min and up_down are derived and must stay None."""

    _c_type = "soft_bounds_pmax"
    p_max = field(1000, kind="float")   # aihwkit declares int; C holds a float
    alpha = field(0.001 / 2)
    range_min = field(-1.0)
    range_max = field(1.0)
    w_min = field(None, kind="float", optional=True, key=False, check=_derived("w_min"))
    w_max = field(None, kind="float", optional=True, key=False, check=_derived("w_max"))
    dw_min = field(None, kind="float", optional=True, key=False, check=_derived("dw_min"))
    up_down = field(None, kind="float", optional=True, key=False, check=_derived("up_down"))


class ExpStepDevice(PulsedDevice):
    """Exponential step-size dependence on the weight (spec §4.6)."""

    _c_type = "exp_step"
    A_up = field(0.00081)
    A_down = field(0.36833)
    gamma_up = field(12.44625)
    gamma_down = field(12.78785)
    a = field(0.244)
    b = field(0.2425)
    dw_min_std_add = field(0.0)
    dw_min_std_slope = field(0.0)
    write_noise_std = field(0.0)
    apply_write_noise_on_set = field(True)


class PowStepDevice(PulsedDevice):
    """Power-law step-size dependence on the weight (spec §4.5)."""

    _c_type = "pow_step"
    pow_gamma = field(1.0)
    pow_gamma_dtod = field(0.1)
    pow_up_down = field(0.0)
    pow_up_down_dtod = field(0.0)
    write_noise_std = field(0.0)
    apply_write_noise_on_set = field(True)


class PiecewiseStepDevice(PulsedDevice):
    """Step size interpolated piecewise linearly over the weight range (spec §4.8)."""

    _c_type = "piecewise_step"
    piecewise_up = field(factory=lambda: [1.0])
    piecewise_down = field(factory=lambda: [1.0])
    write_noise_std = field(0.0)
    apply_write_noise_on_set = field(True)


class SoftBoundsReferenceDevice(PulsedDevice):
    """Soft bounds around a per-device reference, with optional extra variation of the
    slopes and subtraction of the symmetry point (spec §4.4)."""

    _c_type = "soft_bounds_reference"
    mult_noise = field(False)
    write_noise_std = field(0.0)
    apply_write_noise_on_set = field(True)
    slope_up_dtod = field(0.0)
    slope_down_dtod = field(0.0)
    reference_mean = field(0.0)
    reference_std = field(0.0)
    subtract_symmetry_point = field(False)


PowStepReferenceDevice = unsupported_class(
    "PowStepReferenceDevice", PulsedDevice,
    "reference devices are not implemented yet; use PowStepDevice", __name__)
