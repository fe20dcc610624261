"""aihwkit.simulator.presets.devices: device models fitted to published devices
(compound-devices spec §10.2), with aihwkit's class names and values. They render as
the device type they derive from (device.type and device.* keys); the C library knows
them by name too (device.preset = reram_sb, ...)."""
from rpusim._params import field
from rpusim.configs.devices import (ConstantStepDevice, ExpStepDevice, LinearStepDevice,
                                    SoftBoundsReferenceDevice)

__all__ = ["ReRamESPresetDevice", "ReRamSBPresetDevice", "CapacitorPresetDevice",
           "EcRamPresetDevice", "EcRamMOPresetDevice", "IdealizedPresetDevice",
           "GokmenVlasovPresetDevice", "PCMPresetDevice"]


class ReRamESPresetDevice(ExpStepDevice):
    """ReRAM, exponential-step fit to Gong et al., Nat. Commun. 2018."""

    dw_min = field(0.00135)
    up_down = field(0.259359)
    w_max = field(1.0)
    w_min = field(-1.0)
    a = field(-0.5)
    b = field(-0.5)
    gamma_up = field(5.0)
    gamma_down = field(5.0)
    A_up = field(-1.18445)
    A_down = field(-0.081404)
    dw_min_dtod = field(0.2)
    up_down_dtod = field(0.05)
    w_max_dtod = field(0.3)
    w_min_dtod = field(0.3)
    dw_min_std = field(5.0)
    write_noise_std = field(75.0)


class ReRamSBPresetDevice(SoftBoundsReferenceDevice):
    """ReRAM, soft-bounds fit to Gong et al., Nat. Commun. 2018 (calibrated to the
    symmetry point): a SoftBoundsReferenceDevice, as in aihwkit."""

    dw_min = field(0.002)
    up_down = field(0.0)
    w_max = field(1.25)
    w_min = field(-0.75)
    mult_noise = field(False)
    dw_min_dtod = field(0.3)
    up_down_dtod = field(0.01)
    w_max_dtod = field(0.3 / 1.25)
    w_min_dtod = field(0.3 / 0.75)
    dw_min_std = field(3.75)
    write_noise_std = field(56.0)


class CapacitorPresetDevice(LinearStepDevice):
    """Capacitor, linear-step fit to Li et al., VLSI 2018, with leakage: lifetime 1e6
    counted in mini-batches (the device decays after every update)."""

    dw_min = field(0.005)
    up_down = field(0.0)
    w_max = field(1.0)
    w_min = field(-1.0)
    mult_noise = field(False)
    gamma_up = field(0.05)
    gamma_down = field(0.05)
    dw_min_dtod = field(0.1)
    up_down_dtod = field(0.06)
    w_max_dtod = field(0.07)
    w_min_dtod = field(0.07)
    gamma_up_dtod = field(0.01)
    gamma_down_dtod = field(0.01)
    dw_min_std = field(0.3)
    write_noise_std = field(0.0)
    mean_bound_reference = field(True)
    lifetime = field(1.0e6)
    lifetime_dtod = field(0.3)


class EcRamPresetDevice(LinearStepDevice):
    """Lithium-based ECRAM, linear-step fit to Tang et al., IEDM 2018."""

    dw_min = field(0.002)
    up_down = field(0.0)
    w_max = field(1.1724)
    w_min = field(-0.8276)
    mult_noise = field(True)
    gamma_up = field(0.1153)
    gamma_down = field(0.5085)
    dw_min_dtod = field(0.1)
    up_down_dtod = field(0.01)
    w_max_dtod = field(0.05)
    w_min_dtod = field(0.05)
    gamma_up_dtod = field(0.05)
    gamma_down_dtod = field(0.05)
    dw_min_std = field(0.3)
    write_noise_std = field(0.0)
    mean_bound_reference = field(True)


class EcRamMOPresetDevice(LinearStepDevice):
    """Metal-oxide ECRAM, linear step, after Kim et al., IEDM 2019."""

    dw_min = field(2.8214e-4)
    up_down = field(0.0)
    w_max = field(1.1714)
    w_min = field(-0.8286)
    mult_noise = field(True)
    gamma_up = field(0.4152)
    gamma_down = field(0.7342)
    dw_min_dtod = field(0.1)
    up_down_dtod = field(0.01)
    w_max_dtod = field(0.05)
    w_min_dtod = field(0.05)
    gamma_up_dtod = field(0.05)
    gamma_down_dtod = field(0.05)
    dw_min_std = field(2.0)
    write_noise_std = field(0.0)
    mean_bound_reference = field(True)


class IdealizedPresetDevice(ConstantStepDevice):
    """Constant step, symmetric on average, about 10000 states (Gokmen & Vlasov 2016 with
    no device-to-device asymmetry and 8x more states)."""

    dw_min = field(0.0002)
    dw_min_dtod = field(0.3)
    dw_min_std = field(0.3)
    up_down = field(0.0)
    up_down_dtod = field(0.0)
    w_max = field(1.0)
    w_min = field(-1.0)
    w_max_dtod = field(0.3)
    w_min_dtod = field(0.3)


class GokmenVlasovPresetDevice(ConstantStepDevice):
    """Constant step after Gokmen & Vlasov, Front. Neurosci. 2016, range -1..1 (1200
    states)."""

    dw_min = field(0.0016)
    dw_min_dtod = field(0.3)
    dw_min_std = field(0.3)
    up_down = field(0.0)
    up_down_dtod = field(0.01)
    w_max = field(1.0)
    w_min = field(-1.0)
    w_max_dtod = field(0.3)
    w_min_dtod = field(0.3)


class PCMPresetDevice(ExpStepDevice):
    """Phase-change memory, exponential step with complex noise (Nandakumar et al. 2020).
    One-directional (weights in [0, 2]): aihwkit uses it in pairs (PCMPresetUnitCell)."""

    dw_min = field(0.01)
    up_down = field(0.0)
    w_max = field(2.0)
    w_min = field(0.0)
    a = field(-1.0)
    b = field(0.0)
    gamma_up = field(2.5)
    gamma_down = field(2.5)
    A_up = field(-27.235)
    A_down = field(-2.235)
    dw_min_dtod = field(0.2)
    up_down_dtod = field(0.05)
    w_max_dtod = field(0.1)
    w_min_dtod = field(0.0)
    dw_min_std = field(0.6)
    dw_min_std_add = field(0.042)
    dw_min_std_slope = field(0.108)
    write_noise_std = field(0.0)
    reset = field(0.01)
    reset_dtod = field(0.02)
