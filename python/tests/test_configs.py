"""rpusim.configs against the C config table: every Python field reaches exactly the C key
of the same dotted name (set in Python, rendered, parsed by C, read back with
rpu_config_get), every C key is reachable from Python, the defaults of every class equal
C's defaults of its kind and device type, and unknown or unsupported fields raise errors
that name them. Needs no MPI collective; runs on every rank alike."""
import copy
import ctypes
import enum
import importlib

import pytest

from rpusim import RPUError, _lib
from rpusim._config import CConfig, c_config
from rpusim._params import Params, f32
from rpusim import configs as C
from rpusim import inference as I

_keys_fn = _lib.declare("rpu_config_keys", ctypes.c_int,
                        ctypes.POINTER(ctypes.POINTER(ctypes.c_char_p)))


def c_keys():
    arr = ctypes.POINTER(ctypes.c_char_p)()
    n = _keys_fn(ctypes.byref(arr))
    return [arr[i].decode() for i in range(n)]


_applies_fn = _lib.declare("rpu_config_key_applies", ctypes.c_bool, ctypes.c_void_p,
                           ctypes.c_char_p)


def _compound_keys():
    """The compound-level C keys (device.transfer_every, ...: keys of no single-device
    config). The Python compound classes (UnitCellRPUConfig, TransferCompound, ...) come
    later in issue 16; until then no Python field reaches these keys."""
    single = CConfig([("kind", "single")])
    return {k for k in c_keys() if not _applies_fn(single.ptr, k.encode())}


COMPOUND_KEYS = _compound_keys()
C_KEYS = [k for k in c_keys() if k not in COMPOUND_KEYS]


def dump(pairs):
    """Every C key's text after applying pairs to a fresh C config (rpu_config_set each,
    no cross-field validation)."""
    cfg = CConfig(pairs)
    return {k: cfg.get(k) for k in C_KEYS}


# The C device type of each device class, written out here (not read from the classes).
DEVICE_TYPES = {
    C.FloatingPointDevice: "floating_point", C.IdealDevice: "ideal",
    C.ConstantStepDevice: "constant_step", C.LinearStepDevice: "linear_step",
    C.SoftBoundsDevice: "soft_bounds", C.SoftBoundsPmaxDevice: "soft_bounds_pmax",
    C.ExpStepDevice: "exp_step", C.PowStepDevice: "pow_step",
    C.PiecewiseStepDevice: "piecewise_step",
    C.SoftBoundsReferenceDevice: "soft_bounds_reference",
}

# (name, factory, the C pairs whose C defaults the factory's defaults must equal)
CASES = [("FloatingPointRPUConfig", C.FloatingPointRPUConfig, [("kind", "floating_point")]),
         ("InferenceRPUConfig", C.InferenceRPUConfig, [("kind", "inference")]),
         ("InferenceRPUConfig/state_independent",
          lambda: C.InferenceRPUConfig(noise_model=C.StateIndependentNoiseModel()),
          [("kind", "inference"), ("noise_model.type", "state_independent")]),
         ("InferenceRPUConfig/per_column",
          lambda: C.InferenceRPUConfig(drift_compensation=C.PerColumnDriftCompensation()),
          [("kind", "inference"), ("drift_compensation", "per_column")]),
         ("InferenceRPUConfig/no_compensation",
          lambda: C.InferenceRPUConfig(drift_compensation=None),
          [("kind", "inference"), ("drift_compensation", "none")])]
for _cls, _name in DEVICE_TYPES.items():
    CASES.append(("SingleRPUConfig/%s" % _cls.__name__,
                  (lambda cls=_cls: C.SingleRPUConfig(device=cls())),
                  [("kind", "single"), ("device.type", _name)]))
CASES.append(("SingleRPUConfig", C.SingleRPUConfig,
              [("kind", "single"), ("device.type", "constant_step")]))
CASE_IDS = [c[0] for c in CASES]

# Python fields that have no C key of their own, and why. Each either must keep its
# default (rendering refuses other values: see test_python_only_fields) or has no effect
# on CPU / when its feature is off.
PYTHON_ONLY = {
    "runtime.data_type": "unsupported",          # only FLOAT
    "runtime.on_the_fly_bindings": "unsupported",
    "runtime.offload_input": "no effect",        # GPU memory only
    "runtime.offload_gradient": "no effect",
    "pre_post.input_range.enable": "unsupported",
    "device.count_pulses": "unsupported",        # GPU only
    "modifier.pcm_zero_thres": "unsupported",    # PCM_NOISE modifier
    "modifier.pcm_t_inference": "unsupported",
    "modifier.pcm_prob_at_reset": "unsupported",
    "modifier.pcm_prob_at_gmax": "unsupported",
    "modifier.pcm_prob_at_random": "unsupported",
    "modifier.pcm_t0": "unsupported",
    "device.w_min@soft_bounds_pmax": "unsupported",   # derived from range/p_max/alpha
    "device.w_max@soft_bounds_pmax": "unsupported",
    "device.dw_min@soft_bounds_pmax": "unsupported",
    "device.up_down@soft_bounds_pmax": "unsupported",
    # one g_max: noise_model.g_max and noise_model.g_converter.g_max must be set alike
    "noise_model.g_max": "unsupported alone",
    "noise_model.g_converter.g_max": "unsupported alone",
}
# input range learning parameters act only when enabled (which is refused)
for _f in C.InputRangeParameter._fields:
    if _f != "enable":
        PYTHON_ONLY["pre_post.input_range." + _f] = "no effect"

# Python paths whose C key is not the path itself.
KEY_OF_PATH = {"noise_model.g_converter.g_min": "noise_model.g_min",
               "noise_model.prog_coeff@state_independent": "noise_model.prog_std"}

# C keys set by a class choice rather than a field value (test_class_valued_keys).
CLASS_KEYS = {"kind", "device.type", "noise_model.type", "drift_compensation"}
# C keys of two Python fields set together (test_g_max_set_alike_reaches_noise_model_g_max).
SET_TOGETHER = {"noise_model.g_max"}


def leaves(obj, path=""):
    """(dotted path, owner object, field name, field) of every scalar field below obj."""
    for name, f in obj._fields.items():
        value = getattr(obj, name)
        p = path + name
        if isinstance(value, Params):
            yield from leaves(value, p + ".")
        elif f.kind != "obj":
            yield p, obj, name, f


def tag(path, cfg):
    """path with a qualifier where the same path means different things."""
    if path.startswith("device.") and isinstance(cfg.device, C.SoftBoundsPmaxDevice):
        if path in ("device.w_min", "device.w_max", "device.dw_min", "device.up_down"):
            return path + "@soft_bounds_pmax"
    if path == "noise_model.prog_coeff" and isinstance(
            getattr(cfg, "noise_model", None), C.StateIndependentNoiseModel):
        return path + "@state_independent"
    return path


def other_value(f, value):
    """A value of field f other than value, inside C's accepted range."""
    if f.kind == "float":
        return value * 0.5 if value else 0.25
    if f.kind in ("int", "u64"):
        return value // 2 if value > 1 else value + 1
    if f.kind == "bool":
        return not value
    if f.kind == "enum":
        for m in f.enum_cls:
            if m != value and supported(m):
                return m
    if f.kind == "list":
        return [v * 0.5 for v in value]
    return "changed"


def supported(member):
    from rpusim._params import c_enum_name
    return c_enum_name(member) is not None


def parse_list(text):
    body = text.strip()[1:-1].strip()
    return [float(t) for t in body.split(",")] if body else []


def assert_c_value(key, text, f, value):
    """C's text of key equals the Python value (floats as float32, as C stores them)."""
    if f.kind == "float":
        assert f32(float(text)) == f32(value), (key, text, value)
    elif f.kind in ("int", "u64"):
        assert int(text) == value, (key, text, value)
    elif f.kind == "bool":
        assert text == ("true" if value else "false"), (key, text, value)
    elif f.kind == "enum":
        assert text == value.name.lower(), (key, text, value)
    elif f.kind == "list":
        if key == "noise_model.prog_std":
            assert f32(float(text)) == f32(value[0]), (key, text, value)
        else:
            assert [f32(v) for v in parse_list(text)] == [f32(v) for v in value], (key, text, value)
    else:
        raise AssertionError("unexpected field kind %s at %s" % (f.kind, key))


def test_every_field_reaches_its_c_key_and_every_c_key_is_reachable():
    covered = set()
    for name, factory, _ in CASES:
        base_cfg = factory()
        base = dump(base_cfg.to_keys())
        for path, _, field_name, f in list(leaves(base_cfg)):
            tagged = tag(path, base_cfg)
            if tagged in PYTHON_ONLY:
                continue
            cfg = factory()
            owner = cfg
            for part in path.split(".")[:-1]:
                owner = getattr(owner, part)
            value = other_value(f, getattr(owner, field_name))
            setattr(owner, field_name, value)
            after = dump(cfg.to_keys())
            changed = {k for k in C_KEYS if after[k] != base[k]}
            key = KEY_OF_PATH.get(tagged, KEY_OF_PATH.get(path, path))
            assert changed == {key}, "%s: setting %s changed %s" % (name, path, changed)
            assert_c_value(key, after[key], f, value)
            covered.add(key)
    # the class-valued keys: kind and device.type by the defaults test, the noise model
    # and compensation by test_class_valued_keys
    missing = set(C_KEYS) - covered - CLASS_KEYS - SET_TOGETHER
    assert not missing, "C keys no Python field reaches: %s" % sorted(missing)
    assert not (covered & CLASS_KEYS)


def test_g_max_set_alike_reaches_noise_model_g_max():
    for nm in (C.PCMLikeNoiseModel(g_max=40.0), C.StateIndependentNoiseModel(g_max=40.0)):
        cfg = C.InferenceRPUConfig(noise_model=nm)
        cfg2 = C.InferenceRPUConfig(noise_model=type(nm)())
        cfg2.noise_model.g_max = 40.0
        cfg2.noise_model.g_converter.g_max = 40.0
        for c in (cfg, cfg2):
            after = dump(c.to_keys())
            base = dump(C.InferenceRPUConfig(noise_model=type(nm)()).to_keys())
            assert {k for k in C_KEYS if after[k] != base[k]} == {"noise_model.g_max"}
            assert float(after["noise_model.g_max"]) == 40.0


def test_class_valued_keys():
    for comp, text in ((C.GlobalDriftCompensation(), "global"),
                       (C.PerColumnDriftCompensation(), "per_column"), (None, "none")):
        assert dump(C.InferenceRPUConfig(drift_compensation=comp).to_keys())[
            "drift_compensation"] == text
    for nm, text in ((C.PCMLikeNoiseModel(), "pcm_like"),
                     (C.StateIndependentNoiseModel(), "state_independent")):
        assert dump(C.InferenceRPUConfig(noise_model=nm).to_keys())["noise_model.type"] == text
    for cls, text in DEVICE_TYPES.items():
        assert dump(C.SingleRPUConfig(device=cls()).to_keys())["device.type"] == text


@pytest.mark.parametrize("name,factory,c_pairs", CASES, ids=CASE_IDS)
def test_defaults_equal_c_defaults(name, factory, c_pairs):
    cfg = factory()
    pairs = cfg.to_keys()
    assert pairs[0][0] == "kind" and pairs[1][0] == "device.type"
    assert all(k not in ("kind", "device.type") for k, _ in pairs[2:])
    py, c = dump(pairs), dump(c_pairs)
    diff = {k: (py[k], c[k]) for k in C_KEYS if py[k] != c[k]}
    assert not diff, "%s: Python default != C default: %s" % (name, diff)
    c_config(cfg)  # and it validates


@pytest.mark.parametrize("name,factory,c_pairs", CASES, ids=CASE_IDS)
def test_every_enum_member(name, factory, c_pairs):
    """Supported members reach C under their lower-case names; the others raise
    UnsupportedConfigError naming the field."""
    for path, _, field_name, f in list(leaves(factory())):
        if f.kind != "enum" or tag(path, factory()) in PYTHON_ONLY:
            continue
        for member in f.enum_cls:
            cfg = factory()
            owner = cfg
            for part in path.split(".")[:-1]:
                owner = getattr(owner, part)
            setattr(owner, field_name, member)
            if supported(member):
                text = dump(cfg.to_keys())[path]
                expect = "none" if member.name == "COPY" else member.name.lower()
                assert text == expect, (path, member, text)
            else:
                with pytest.raises(C.UnsupportedConfigError, match=path.replace(".", r"\.")):
                    cfg.to_keys()


def set_path(cfg, path, value):
    owner = cfg
    parts = path.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    setattr(owner, parts[-1], value)


@pytest.mark.parametrize("path,value,factory", [
    ("runtime.data_type", C.RPUDataType.DOUBLE, C.SingleRPUConfig),
    ("runtime.on_the_fly_bindings", True, C.InferenceRPUConfig),
    ("pre_post.input_range.enable", True, C.FloatingPointRPUConfig),
    ("device.count_pulses", True, C.SingleRPUConfig),
    ("modifier.pcm_zero_thres", 0.1, C.InferenceRPUConfig),
    ("modifier.pcm_t_inference", 1.0, C.InferenceRPUConfig),
    ("modifier.pcm_prob_at_reset", 0.1, C.InferenceRPUConfig),
    ("modifier.pcm_prob_at_gmax", 0.1, C.InferenceRPUConfig),
    ("modifier.pcm_prob_at_random", 0.1, C.InferenceRPUConfig),
    ("modifier.pcm_t0", 10.0, C.InferenceRPUConfig),
    ("device.w_min", -0.5, lambda: C.SingleRPUConfig(device=C.SoftBoundsPmaxDevice())),
    ("device.w_max", 0.5, lambda: C.SingleRPUConfig(device=C.SoftBoundsPmaxDevice())),
    ("device.dw_min", 0.01, lambda: C.SingleRPUConfig(device=C.SoftBoundsPmaxDevice())),
    ("device.up_down", 0.1, lambda: C.SingleRPUConfig(device=C.SoftBoundsPmaxDevice())),
    ("noise_model.g_max", 40.0, C.InferenceRPUConfig),
    ("noise_model.g_converter.g_max", 40.0, C.InferenceRPUConfig),
    ("noise_model.prog_coeff", [0.1, 0.2, 0.3, 0.4], C.InferenceRPUConfig),
    ("noise_model.prog_coeff", [],
     lambda: C.InferenceRPUConfig(noise_model=C.StateIndependentNoiseModel())),
    ("noise_model.prog_coeff", [0.2, 0.1],
     lambda: C.InferenceRPUConfig(noise_model=C.StateIndependentNoiseModel())),
    ("forward.bound_management", C.BoundManagementType.SHIFT, C.SingleRPUConfig),
    ("forward.mv_type", C.AnalogMVType.IDEAL, C.InferenceRPUConfig),
    ("modifier.type", C.WeightModifierType.PCM_NOISE, C.InferenceRPUConfig),
])
def test_unsupported_values_name_the_field(path, value, factory):
    cfg = factory()
    cfg.to_keys()  # the default is fine
    set_path(cfg, path, value)
    with pytest.raises(C.UnsupportedConfigError) as err:
        cfg.to_keys()
    assert "%s.%s" % (type(cfg).__name__, path) in str(err.value)


def test_python_only_fields_without_effect():
    for path, why in PYTHON_ONLY.items():
        if why != "no effect":
            continue
        factory = C.SingleRPUConfig
        cfg = factory()
        f = [lf for p, _, _, lf in leaves(cfg) if p == path][0]
        before = dump(cfg.to_keys())
        set_path(cfg, path, other_value(f, eval("cfg." + path)) if f.kind != "any" else "x")
        assert dump(cfg.to_keys()) == before, path


def test_prog_coeff_g_max_reference_resolution():
    """aihwkit's rule for a reference not given: 25 for its default coefficients, g_max
    for explicit ones (even if equal to the defaults); an explicit reference is used."""
    ref = "noise_model.prog_coeff_g_max_reference"

    def c_ref(nm):
        return float(dump(C.InferenceRPUConfig(noise_model=nm).to_keys())[ref])

    assert C.PCMLikeNoiseModel(g_max=40.0).prog_coeff_g_max_reference == 25.0
    assert c_ref(C.PCMLikeNoiseModel(g_max=40.0)) == 0.0   # C applies the same rule
    nm = C.PCMLikeNoiseModel(prog_coeff=[0.26348, 1.9650, -1.1731], g_max=40.0)
    assert nm.prog_coeff_g_max_reference == 40.0
    assert c_ref(nm) == 40.0   # C's rule would take 25 for coefficients equal to defaults
    nm = C.PCMLikeNoiseModel(prog_coeff=[0.1, 1.0, -0.5], g_max=40.0)
    assert nm.prog_coeff_g_max_reference == 40.0 and c_ref(nm) == 0.0
    nm = C.PCMLikeNoiseModel(g_max=40.0, prog_coeff_g_max_reference=30.0)
    assert nm.prog_coeff_g_max_reference == 30.0 and c_ref(nm) == 30.0
    nm = C.PCMLikeNoiseModel(prog_coeff=[0.1, 1.0])   # shorter polynomial: padded
    assert dump(C.InferenceRPUConfig(noise_model=nm).to_keys())[
        "noise_model.prog_coeff"] == "[0.1, 1, 0]"


def test_unknown_fields_name_the_field_and_class():
    cfg = C.SingleRPUConfig()
    with pytest.raises(C.UnknownFieldError, match=r"IOParameters has no field 'out_nosie'"
                       r" \(did you mean 'out_noise'\?\)"):
        cfg.forward.out_nosie = 0.1
    with pytest.raises(AttributeError):       # also an AttributeError
        cfg.devce = C.ConstantStepDevice()
    with pytest.raises(C.UnknownFieldError, match=r"SoftBoundsDevice\(\) got an unknown "
                       r"field 'dw_mn' \(did you mean 'dw_min'\?\)"):
        C.SoftBoundsDevice(dw_mn=0.01)
    with pytest.raises(TypeError):             # also a TypeError, as Python's own
        C.SingleRPUConfig(forwrd=C.IOParameters())
    with pytest.raises(C.UnknownFieldError, match="ConstantStepDevice has no field "
                       "'gamma_up'; its fields are"):
        cfg.device.gamma_up = 0.1              # a field of another device class
    with pytest.raises(C.UnknownFieldError, match="PCMLikeNoiseModel has no field 'g_mx'"):
        C.PCMLikeNoiseModel().g_mx = 3
    with pytest.raises(TypeError, match="g_mx"):
        C.PCMLikeNoiseModel(g_mx=3)
    with pytest.raises(TypeError, match="InferenceRPUConfig.*'device'"):
        C.InferenceRPUConfig(device=C.IdealDevice())   # fixed by aihwkit: not an argument
    assert cfg == C.SingleRPUConfig()          # nothing was set by the failures


def test_wrong_types_name_the_field():
    cfg = C.SingleRPUConfig()
    with pytest.raises(C.ConfigError, match=r"IOParameters\.out_noise must be a number"):
        cfg.forward.out_noise = "0.1"
    with pytest.raises(C.ConfigError, match=r"IOParameters\.noise_management must be a "
                       r"NoiseManagementType"):
        cfg.forward.noise_management = "abs_max"
    with pytest.raises(C.ConfigError, match=r"UpdateParameters\.desired_bl must be an integer"):
        cfg.update.desired_bl = 3.5
    with pytest.raises(C.ConfigError, match=r"SingleRPUConfig\.forward must be IOParameters"):
        cfg.forward = C.UpdateParameters()
    with pytest.raises(C.ConfigError, match=r"FloatingPointRPUConfig\.device must be "
                       r"FloatingPointDevice"):
        C.FloatingPointRPUConfig(device=C.ConstantStepDevice())


@pytest.mark.parametrize("path,value,key", [
    ("forward.out_noise", -0.1, "forward.out_noise"),
    ("backward.inp_res", float("nan"), "backward.inp_res"),
    ("update.desired_bl", 0, "update.desired_bl"),
    ("device.dw_min_std", -1.0, "device.dw_min_std"),
    ("device.w_min", 0.1, "device.w_min"),       # validate: range must contain 0
    ("mapping.max_input_size", -1, "mapping.max_input_size"),
])
def test_c_rejections_are_rpu_errors_naming_the_key(path, value, key):
    cfg = C.SingleRPUConfig()
    set_path(cfg, path, value)
    with pytest.raises(RPUError) as err:
        c_config(cfg)
    assert key in str(err.value)
    assert err.value.status_name == "RPU_ERR_CONFIG"


def test_c_rejects_inference_values():
    cfg = C.InferenceRPUConfig()
    cfg.modifier.pdrop = 1.5
    with pytest.raises(RPUError, match=r"modifier\.pdrop"):
        c_config(cfg)
    cfg = C.InferenceRPUConfig(noise_model=C.PCMLikeNoiseModel(t_read=0.0))
    with pytest.raises(RPUError, match=r"noise_model\.t_read"):
        c_config(cfg)


UNSUPPORTED_CLASSES = [
    (C, "TorchInferenceRPUConfig"), (C, "TorchInferenceRPUConfigIRDropT"),
    (C, "QuantizedTorchInferenceRPUConfig"), (C, "IOParametersIRDropT"),
    (C, "PowStepReferenceDevice"),
    (I, "CustomDriftPCMLikeNoiseModel"), (I, "ReRamWan2022NoiseModel"),
    (I, "ReRamCMONoiseModel"), (I, "SingleDeviceConductanceConverter"),
    (I, "DualPairConductanceConverter"), (I, "NPairConductanceConverter"),
    (I, "CustomPairConductanceConverter"),
]


@pytest.mark.parametrize("module,name", UNSUPPORTED_CLASSES,
                         ids=[n for _, n in UNSUPPORTED_CLASSES])
def test_unsupported_classes_raise_on_construction(module, name):
    with pytest.raises(C.UnsupportedConfigError, match="%s is not supported" % name):
        getattr(module, name)()


def test_pulsed_device_base_is_not_a_device():
    with pytest.raises(C.UnsupportedConfigError, match=r"SingleRPUConfig\.device: "
                       r"PulsedDevice is not a device"):
        C.SingleRPUConfig(device=C.PulsedDevice()).to_keys()


def test_aihwkit_import_paths():
    """The names aihwkit 1.0 scripts import, from the modules they import them from."""
    expect = {
        "rpusim.configs": [
            "IOParameters", "UpdateParameters", "WeightModifierParameter",
            "WeightClipParameter", "WeightRemapParameter", "SimpleDriftParameter",
            "DriftParameter", "MappingParameter", "InputRangeParameter",
            "PrePostProcessingParameter", "RPUDataType", "BoundManagementType",
            "NoiseManagementType", "WeightNoiseType", "PulseType", "WeightModifierType",
            "WeightClipType", "WeightRemapType", "VectorUnitCellUpdatePolicy",
            "AnalogMVType", "CountLRFeedbackPolicy", "FloatingPointDevice", "IdealDevice",
            "ConstantStepDevice", "LinearStepDevice", "SoftBoundsDevice",
            "SoftBoundsPmaxDevice", "SoftBoundsReferenceDevice", "ExpStepDevice",
            "PowStepDevice", "PowStepReferenceDevice", "PiecewiseStepDevice",
            "FloatingPointRPUConfig", "InferenceRPUConfig", "SingleRPUConfig",
            "UnitCellRPUConfig", "PCMLikeNoiseModel", "GlobalDriftCompensation"],
        "rpusim.configs.configs": ["FloatingPointRPUConfig", "SingleRPUConfig",
                                   "InferenceRPUConfig"],
        "rpusim.configs.devices": ["PulsedDevice", "ConstantStepDevice", "IdealDevice"],
        "rpusim.configs.utils": ["IOParameters", "UpdateParameters", "MappingParameter",
                                 "WeightNoiseType", "PulseType", "WeightModifierType",
                                 "WeightClipType", "BoundManagementType",
                                 "NoiseManagementType"],
        "rpusim.configs.enums": ["NoiseManagementType", "PulseType"],
        "rpusim.configs.io": ["IOParameters"],
        "rpusim.configs.training": ["UpdateParameters"],
        "rpusim.configs.mapping": ["MappingParameter"],
        "rpusim.configs.inference": ["WeightModifierParameter", "DriftParameter"],
        "rpusim.inference": ["PCMLikeNoiseModel", "StateIndependentNoiseModel",
                             "GlobalDriftCompensation", "BaseDriftCompensation",
                             "BaseNoiseModel", "SinglePairConductanceConverter"],
        "rpusim.inference.noise.pcm": ["PCMLikeNoiseModel"],
        "rpusim.inference.noise.custom": ["StateIndependentNoiseModel"],
        "rpusim.inference.compensation.drift": ["GlobalDriftCompensation",
                                                "PerColumnDriftCompensation"],
        "rpusim.inference.converter.conductance": ["SinglePairConductanceConverter"],
    }
    for module, names in expect.items():
        mod = importlib.import_module(module)
        for n in names:
            assert hasattr(mod, n), "%s.%s" % (module, n)


def test_enum_names_and_values_are_aihwkits():
    assert C.NoiseManagementType.ABS_MAX.value == "AbsMax"
    assert C.PulseType.STOCHASTIC_COMPRESSED.value == "StochasticCompressed"
    assert C.WeightModifierType.DOREFA.value == "DoReFa"
    assert [m.name for m in C.BoundManagementType] == [
        "NONE", "ITERATIVE", "ITERATIVE_WORST_CASE", "SHIFT"]
    assert all(issubclass(getattr(C, n), enum.Enum) for n in (
        "NoiseManagementType", "BoundManagementType", "WeightNoiseType", "PulseType",
        "WeightModifierType", "WeightClipType", "WeightRemapType", "AnalogMVType"))


def test_copies_and_defaults_are_independent():
    a, b = C.SingleRPUConfig(), C.SingleRPUConfig()
    assert a == b and a.forward is not b.forward
    a.forward.out_noise = 0.5
    assert b.forward.out_noise == 0.06 and a != b
    c = copy.deepcopy(a)
    assert c == a
    c.device.dw_min = 0.5
    assert a.device.dw_min == 0.001
    with pytest.raises(C.UnknownFieldError):
        c.forward.out_nosie = 1.0             # the guard survives the copy
    m = C.InferenceRPUConfig().mapping
    assert (m.max_input_size, m.max_output_size, m.digital_bias) == (512, 512, True)


def test_aihwkit_style_usage():
    """The issue's examples render to the expected C values."""
    cfg = C.SingleRPUConfig(device=C.SoftBoundsDevice(dw_min=0.01))
    cfg.forward.out_noise = 0.1
    cfg.mapping.max_input_size = 256
    d = dump(cfg.to_keys())
    assert (d["kind"], d["device.type"], d["device.dw_min"], d["forward.out_noise"],
            d["mapping.max_input_size"]) == ("single", "soft_bounds", "0.01", "0.1", "256")
    cfg = C.InferenceRPUConfig(noise_model=C.PCMLikeNoiseModel(g_max=25.0))
    cfg.forward.w_noise_type = C.WeightNoiseType.ADDITIVE_CONSTANT
    cfg.forward.w_noise = 0.02
    cfg.modifier.type = C.WeightModifierType.ADD_NORMAL
    cfg.modifier.std_dev = 0.1
    cfg.clip.type = C.WeightClipType.FIXED_VALUE
    cfg.clip.fixed_value = 1.0
    cc = c_config(cfg)
    assert (cc.get("forward.w_noise_type"), cc.get("modifier.type"), cc.get("clip.type"),
            cc.get("noise_model.g_max")) == ("additive_constant", "add_normal",
                                             "fixed_value", "25")
