"""aihwkit.simulator.presets.configs: RPU configs of one preset device each
(SingleRPUConfig with PresetIOParameters forward and backward and PresetUpdateParameters;
C: preset = <name>), the mixed-precision and vector-cell presets (C: preset =
mixed_precision_<x>, <x>2, <x>4), and aihwkit's other compound presets by name only."""
from rpusim._params import field, unsupported_class
from rpusim.configs.compounds import MixedPrecisionCompound, TransferCompound, VectorUnitCell
from rpusim.configs.configs import (DigitalRankUpdateRPUConfig, SingleRPUConfig,
                                    UnitCellRPUConfig, _RPUConfig)
from rpusim.configs.enums import (BoundManagementType, NoiseManagementType,
                                  VectorUnitCellUpdatePolicy)
from rpusim.configs.devices import _Device
from rpusim.configs.io import IOParameters
from rpusim.configs.training import UpdateParameters
from rpusim.presets.devices import (CapacitorPresetDevice, EcRamMOPresetDevice,
                                    EcRamPresetDevice, GokmenVlasovPresetDevice,
                                    IdealizedPresetDevice, ReRamESPresetDevice,
                                    ReRamSBPresetDevice)
from rpusim.presets.compounds import PCMPresetUnitCell
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


def _compound_preset(name, base, device_factory, doc):
    body = {
        "__doc__": doc,
        "__module__": __name__,
        "device": field(factory=device_factory, classes=base._fields["device"].classes,
                        key=False),
        "forward": field(factory=PresetIOParameters, classes=(IOParameters,), key=False),
        "backward": field(factory=PresetIOParameters, classes=(IOParameters,), key=False),
        "update": field(factory=PresetUpdateParameters, classes=(UpdateParameters,),
                        key=False),
    }
    return type(name, (base,), body)


_DEVICES = {"ReRamES": ReRamESPresetDevice, "ReRamSB": ReRamSBPresetDevice,
            "Capacitor": CapacitorPresetDevice, "EcRam": EcRamPresetDevice,
            "EcRamMO": EcRamMOPresetDevice, "Idealized": IdealizedPresetDevice,
            "GokmenVlasov": GokmenVlasovPresetDevice}
_DONE = []

# MixedPrecision<X>Preset (spec §10.3): DigitalRankUpdateRPUConfig(device=
# MixedPrecisionCompound(device=<X>PresetDevice())), C: preset = mixed_precision_<x>
for _fam in _FAMILIES + ["GokmenVlasov"]:
    _name = "MixedPrecision%sPreset" % _fam
    globals()[_name] = _compound_preset(
        _name, DigitalRankUpdateRPUConfig,
        (lambda dev=_DEVICES[_fam]: MixedPrecisionCompound(device=dev())),
        "Mixed precision (digital rank update, transfers into one %sPresetDevice per cross "
        "point)." % _fam)
    _DONE.append(_name)

# <X>2Preset, <X>4Preset (spec §10.3): UnitCellRPUConfig(device=VectorUnitCell(n x
# <X>PresetDevice(), update_policy=SINGLE_RANDOM)), C: preset = <x>2, <x>4
for _fam in _FAMILIES:
    for _n in (2, 4):
        _name = "%s%dPreset" % (_fam, _n)
        globals()[_name] = _compound_preset(
            _name, UnitCellRPUConfig,
            (lambda dev=_DEVICES[_fam], n=_n: VectorUnitCell(
                unit_cell_devices=[dev() for _ in range(n)],
                update_policy=VectorUnitCellUpdatePolicy.SINGLE_RANDOM)),
            "%d %sPresetDevices per cross point, one updated per vector at random." % (_n, _fam))
        _DONE.append(_name)


def _tiki_taka_device(fam):
    def make():
        dev = _DEVICES[fam]
        devs = ([dev(subtract_symmetry_point=True), dev(subtract_symmetry_point=True)]
                if fam == "ReRamSB" else [dev(), dev()])
        return TransferCompound(
            unit_cell_devices=devs,
            transfer_forward=PresetIOParameters(noise_management=NoiseManagementType.NONE,
                                                bound_management=BoundManagementType.NONE),
            transfer_update=PresetUpdateParameters(), transfer_every=1.0,
            units_in_mbatch=True)
    return make


# TikiTaka<X>Preset (spec §10.3): UnitCellRPUConfig(device=TransferCompound(2 x
# <X>PresetDevice(), preset transfer IO without NM/BM, preset transfer update,
# units_in_mbatch)); the ReRamSB devices subtract their symmetry point. C: tiki_taka_<x>
for _fam in _FAMILIES:
    _name = "TikiTaka%sPreset" % _fam
    globals()[_name] = _compound_preset(
        _name, UnitCellRPUConfig, _tiki_taka_device(_fam),
        "Tiki-Taka v1 with two %sPresetDevices per cross point." % _fam)
    _DONE.append(_name)

# PCMPreset (spec §10.3): UnitCellRPUConfig(device=PCMPresetUnitCell()), C: preset = pcm
PCMPreset = _compound_preset("PCMPreset", UnitCellRPUConfig, PCMPresetUnitCell,
                             "A one-sided pair of PCM devices with refresh per cross point.")
_DONE.append("PCMPreset")

_WHY = ("this compound preset needs a compound device rpusim does not have yet (TTv2, "
        "chopped TTv2 and AGAD presets, or MixedPrecisionPCMPreset's one-sided cell inside a compound); use "
        "e.g. "
        "MixedPrecisionReRamSBPreset or ReRamSB2Preset")
for _name in _COMPOUND:
    if _name not in _DONE:
        globals()[_name] = unsupported_class(_name, _RPUConfig, _WHY, __name__)
del _name, _fam, _n
