"""aihwkit.simulator.presets.configs: RPU configs of one preset device each
(SingleRPUConfig with PresetIOParameters forward and backward and PresetUpdateParameters;
C: preset = <name>), and aihwkit's compound presets by name only."""
from rpusim._params import field, unsupported_class
from rpusim.configs.configs import SingleRPUConfig, _RPUConfig
from rpusim.configs.devices import _Device
from rpusim.configs.io import IOParameters
from rpusim.configs.training import UpdateParameters
from rpusim.presets.devices import (CapacitorPresetDevice, EcRamMOPresetDevice,
                                    EcRamPresetDevice, GokmenVlasovPresetDevice,
                                    IdealizedPresetDevice, ReRamESPresetDevice,
                                    ReRamSBPresetDevice)
from rpusim.presets.utils import PresetIOParameters, PresetUpdateParameters

_SINGLE = ["ReRamESPreset", "ReRamSBPreset", "CapacitorPreset", "EcRamPreset",
           "EcRamMOPreset", "IdealizedPreset", "GokmenVlasovPreset"]
_FAMILIES = ["ReRamES", "ReRamSB", "Capacitor", "EcRam", "EcRamMO", "Idealized"]
_COMPOUND = (["PCMPreset"]
             + ["%s2Preset" % f for f in _FAMILIES] + ["%s4Preset" % f for f in _FAMILIES]
             + ["TikiTaka%sPreset" % f for f in _FAMILIES]
             + ["TTv2%sPreset" % f for f in _FAMILIES]
             + ["ChoppedTTv2%sPreset" % f for f in _FAMILIES]
             + ["AGAD%sPreset" % f for f in _FAMILIES]
             + ["MixedPrecision%sPreset" % f
                for f in _FAMILIES + ["GokmenVlasov", "PCM"]])
__all__ = _SINGLE + _COMPOUND


def _single_preset(name, device_cls, doc):
    body = {
        "__doc__": doc,
        "__module__": __name__,
        "device": field(factory=device_cls, classes=(_Device,), key=False),
        "forward": field(factory=PresetIOParameters, classes=(IOParameters,), key=False),
        "backward": field(factory=PresetIOParameters, classes=(IOParameters,), key=False),
        "update": field(factory=PresetUpdateParameters, classes=(UpdateParameters,),
                        key=False),
    }
    return type(name, (SingleRPUConfig,), body)


ReRamESPreset = _single_preset("ReRamESPreset", ReRamESPresetDevice,
                               "One ReRAM device per cross point (exponential step).")
ReRamSBPreset = _single_preset("ReRamSBPreset", ReRamSBPresetDevice,
                               "One ReRAM device per cross point (soft bounds).")
CapacitorPreset = _single_preset("CapacitorPreset", CapacitorPresetDevice,
                                 "One capacitor device per cross point (with leakage).")
EcRamPreset = _single_preset("EcRamPreset", EcRamPresetDevice,
                             "One Li-based ECRAM device per cross point.")
EcRamMOPreset = _single_preset("EcRamMOPreset", EcRamMOPresetDevice,
                               "One metal-oxide ECRAM device per cross point.")
IdealizedPreset = _single_preset("IdealizedPreset", IdealizedPresetDevice,
                                 "One idealized constant-step device per cross point.")
GokmenVlasovPreset = _single_preset("GokmenVlasovPreset", GokmenVlasovPresetDevice,
                                    "One Gokmen-Vlasov constant-step device per cross "
                                    "point.")

_WHY = ("compound presets need rpusim's compound devices (issue 16, not merged yet); use "
        "a single-device preset such as ReRamSBPreset")
for _name in _COMPOUND:
    globals()[_name] = unsupported_class(_name, _RPUConfig, _WHY, __name__)
del _name
