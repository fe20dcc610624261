"""rpusim.presets (aihwkit.simulator.presets) against the spec and against the C presets:
every aihwkit preset name of the single-device configs and devices exists, each class
renders to the same C config as the C library's preset of that name (two tables written
independently from compound-devices spec §10), the values are the spec's (table below,
written from the spec), and the reference fields that rpusim lacks raise
UnsupportedConfigError. No MPI collective; runs on every rank alike."""
import ctypes

import pytest

from rpusim import RPUError, _lib
from rpusim._config import CConfig, c_config
from rpusim._params import UnsupportedConfigError, f32
from rpusim import configs as C
from rpusim import presets as P

_keys_fn = _lib.declare("rpu_config_keys", ctypes.c_int,
                        ctypes.POINTER(ctypes.POINTER(ctypes.c_char_p)))


def c_keys():
    arr = ctypes.POINTER(ctypes.c_char_p)()
    n = _keys_fn(ctypes.byref(arr))
    return [arr[i].decode() for i in range(n)]


C_KEYS = c_keys()


def dump(pairs):
    """Every C key's text after applying pairs to a fresh C config."""
    cfg = CConfig(pairs)
    return {k: cfg.get(k) for k in C_KEYS}


def diff(a, b):
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


# aihwkit 1.1 class -> C preset name (config presets; device presets take the same name)
CONFIGS = {"ReRamESPreset": "reram_es", "ReRamSBPreset": "reram_sb",
           "CapacitorPreset": "capacitor", "EcRamPreset": "ecram", "EcRamMOPreset": "ecram_mo",
           "IdealizedPreset": "idealized", "GokmenVlasovPreset": "gokmen_vlasov"}
DEVICES = {"ReRamESPresetDevice": "reram_es", "ReRamSBPresetDevice": "reram_sb",
           "CapacitorPresetDevice": "capacitor", "EcRamPresetDevice": "ecram",
           "EcRamMOPresetDevice": "ecram_mo", "IdealizedPresetDevice": "idealized",
           "GokmenVlasovPresetDevice": "gokmen_vlasov", "PCMPresetDevice": "pcm"}
COMPOUND = ["PCMPreset", "ReRamSB2Preset", "Idealized4Preset", "TikiTakaReRamSBPreset",
            "TTv2ReRamSBPreset", "ChoppedTTv2ReRamSBPreset", "AGADReRamSBPreset",
            "MixedPrecisionReRamSBPreset", "MixedPrecisionGokmenVlasovPreset",
            "MixedPrecisionPCMPreset"]

# spec §10.2, row by row: device type and the listed fields
SPEC = {
    "ReRamESPresetDevice": ("exp_step", dict(
        dw_min=0.00135, up_down=0.259359, w_min=-1, w_max=1, dw_min_dtod=0.2,
        up_down_dtod=0.05, w_min_dtod=0.3, w_max_dtod=0.3, dw_min_std=5.0,
        write_noise_std=75.0, a=-0.5, b=-0.5, gamma_up=5, gamma_down=5, A_up=-1.18445,
        A_down=-0.081404)),
    "ReRamSBPresetDevice": ("soft_bounds_reference", dict(
        dw_min=0.002, up_down=0, w_min=-0.75, w_max=1.25, dw_min_dtod=0.3, up_down_dtod=0.01,
        w_min_dtod=0.3 / 0.75, w_max_dtod=0.3 / 1.25, dw_min_std=3.75, write_noise_std=56,
        mult_noise=False)),
    "CapacitorPresetDevice": ("linear_step", dict(
        dw_min=0.005, up_down=0, w_min=-1, w_max=1, dw_min_dtod=0.1, up_down_dtod=0.06,
        w_min_dtod=0.07, w_max_dtod=0.07, dw_min_std=0.3, write_noise_std=0,
        mult_noise=False, gamma_up=0.05, gamma_down=0.05, gamma_up_dtod=0.01,
        gamma_down_dtod=0.01, mean_bound_reference=True, lifetime=1e6, lifetime_dtod=0.3)),
    "EcRamPresetDevice": ("linear_step", dict(
        dw_min=0.002, up_down=0, w_min=-0.8276, w_max=1.1724, dw_min_dtod=0.1,
        up_down_dtod=0.01, w_min_dtod=0.05, w_max_dtod=0.05, dw_min_std=0.3,
        write_noise_std=0, mult_noise=True, gamma_up=0.1153, gamma_down=0.5085,
        gamma_up_dtod=0.05, gamma_down_dtod=0.05, mean_bound_reference=True)),
    "EcRamMOPresetDevice": ("linear_step", dict(
        dw_min=2.8214e-4, up_down=0, w_min=-0.8286, w_max=1.1714, dw_min_dtod=0.1,
        up_down_dtod=0.01, w_min_dtod=0.05, w_max_dtod=0.05, dw_min_std=2.0,
        write_noise_std=0, mult_noise=True, gamma_up=0.4152, gamma_down=0.7342,
        gamma_up_dtod=0.05, gamma_down_dtod=0.05, mean_bound_reference=True)),
    "IdealizedPresetDevice": ("constant_step", dict(
        dw_min=0.0002, up_down=0, w_min=-1, w_max=1, dw_min_dtod=0.3, up_down_dtod=0.0,
        w_min_dtod=0.3, w_max_dtod=0.3, dw_min_std=0.3)),
    "GokmenVlasovPresetDevice": ("constant_step", dict(
        dw_min=0.0016, up_down=0, w_min=-1, w_max=1, dw_min_dtod=0.3, up_down_dtod=0.01,
        w_min_dtod=0.3, w_max_dtod=0.3, dw_min_std=0.3)),
    "PCMPresetDevice": ("exp_step", dict(
        dw_min=0.01, up_down=0, w_min=0, w_max=2, dw_min_dtod=0.2, up_down_dtod=0.05,
        w_min_dtod=0.0, w_max_dtod=0.1, dw_min_std=0.6, write_noise_std=0, a=-1, b=0,
        gamma_up=2.5, gamma_down=2.5, A_up=-27.235, A_down=-2.235, dw_min_std_add=0.042,
        dw_min_std_slope=0.108, reset=0.01, reset_dtod=0.02)),
}


def test_names():
    for name in list(CONFIGS) + list(DEVICES) + COMPOUND + ["PresetIOParameters",
                                                             "PresetUpdateParameters"]:
        assert hasattr(P, name), name
        assert name in P.__all__, name
    # the compound presets rpusim has (test_compounds.py checks their values)
    for name in ["ReRamSB2Preset", "Idealized4Preset", "MixedPrecisionReRamSBPreset",
                 "MixedPrecisionGokmenVlasovPreset", "PCMPreset", "TikiTakaReRamSBPreset",
                 "TTv2ReRamSBPreset", "ChoppedTTv2ReRamSBPreset", "AGADReRamSBPreset",
                 "MixedPrecisionPCMPreset"]:
        getattr(P, name)().to_keys()


@pytest.mark.parametrize("cls_name", sorted(CONFIGS))
def test_config_preset_is_the_c_preset(cls_name):
    py = dump(getattr(P, cls_name)().to_keys())
    c = dump([("preset", CONFIGS[cls_name])])
    assert py == c, diff(py, c)
    c_config(getattr(P, cls_name)())  # validates
    # the preset's IO and update (spec §10.1)
    assert py["kind"] == "single"
    for d in ("forward.", "backward."):
        assert f32(float(py[d + "out_bound"])) == 20.0
        assert f32(float(py[d + "out_noise"])) == f32(0.1)
    assert py["update.desired_bl"] == "31"


@pytest.mark.parametrize("cls_name", sorted(DEVICES))
def test_device_preset_is_the_c_preset(cls_name):
    py = dump(C.SingleRPUConfig(device=getattr(P, cls_name)()).to_keys())
    c = dump([("kind", "single"), ("device.preset", DEVICES[cls_name])])
    assert py == c, diff(py, c)


@pytest.mark.parametrize("cls_name", sorted(SPEC))
def test_device_values_are_the_spec(cls_name):
    c_type, values = SPEC[cls_name]
    got = dump(C.SingleRPUConfig(device=getattr(P, cls_name)()).to_keys())
    base = dump([("kind", "single"), ("device.type", c_type)])
    assert got["device.type"] == c_type
    for name, want in values.items():
        text = got["device." + name]
        if isinstance(want, bool):
            assert text == ("true" if want else "false"), name
        else:
            assert f32(float(text)) == f32(want), (name, text, want)
    # every device field the spec does not list keeps the type's default
    for key in C_KEYS:
        if key.startswith("device.") and key[len("device."):] not in values:
            assert got[key] == base[key], key


def test_preset_io_and_update():
    io, base = P.PresetIOParameters(), C.IOParameters()
    for name in io._fields:
        if name not in ("out_bound", "out_noise"):
            assert getattr(io, name) == getattr(base, name), name
    assert io.out_bound == 20.0 and io.out_noise == 0.1
    assert P.PresetUpdateParameters() == P.PresetUpdateParameters()
    up, ubase = P.PresetUpdateParameters(), C.UpdateParameters()
    assert all(getattr(up, n) == getattr(ubase, n) for n in up._fields)


def test_overrides_and_use_elsewhere():
    cfg = P.ReRamSBPreset(forward=P.PresetIOParameters(out_noise=0.05))
    cfg.device.dw_min = 0.003
    got = dump(cfg.to_keys())
    assert f32(float(got["forward.out_noise"])) == f32(0.05)
    assert f32(float(got["device.dw_min"])) == f32(0.003)
    assert f32(float(got["backward.out_noise"])) == f32(0.1)
    # a preset device in a plain SingleRPUConfig keeps that config's IO
    got = dump(C.SingleRPUConfig(device=P.CapacitorPresetDevice()).to_keys())
    assert f32(float(got["forward.out_noise"])) == f32(0.06)


def test_reference_fields_render():
    """ReRamSBPresetDevice is a SoftBoundsReferenceDevice: its reference fields are keys
    of device.type = soft_bounds_reference (values written out here)."""
    dev = P.ReRamSBPresetDevice(slope_up_dtod=0.1, slope_down_dtod=0.2, reference_mean=0.05,
                                reference_std=0.01, subtract_symmetry_point=True)
    got = dump(C.SingleRPUConfig(device=dev).to_keys())
    assert got["device.type"] == "soft_bounds_reference"
    assert f32(float(got["device.slope_up_dtod"])) == f32(0.1)
    assert f32(float(got["device.slope_down_dtod"])) == f32(0.2)
    assert f32(float(got["device.reference_mean"])) == f32(0.05)
    assert f32(float(got["device.reference_std"])) == f32(0.01)
    assert got["device.subtract_symmetry_point"] == "true"
    c_config(P.ReRamSBPreset(device=dev))  # validates


def test_unknown_c_preset_lists_names():
    with pytest.raises(RPUError) as err:
        CConfig([("preset", "reram")])
    for name in CONFIGS.values():
        assert name in str(err.value)
