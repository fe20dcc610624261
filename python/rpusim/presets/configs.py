"""aihwkit.simulator.presets.configs: RPU configs of one preset device each
(SingleRPUConfig with PresetIOParameters forward and backward and PresetUpdateParameters;
C: preset = <name>), the compound presets of spec §10.3 (C: preset = mixed_precision_<x>,
<x>2, <x>4, tiki_taka_<x>, ttv2_<x>, chopped_ttv2_<x>, agad_<x>, pcm) and
MixedPrecisionPCMPreset (a one_sided cell inside the mixed-precision compound, C:
mixed_precision_pcm)."""
from rpusim._params import field
from rpusim.configs.compounds import (ChoppedTransferCompound, DynamicTransferCompound,
                                      MixedPrecisionCompound, TransferCompound, VectorUnitCell)
from rpusim.configs.configs import (DigitalRankUpdateRPUConfig, SingleRPUConfig,
                                    UnitCellRPUConfig)
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


def _compound_preset(name, base, device_factory, doc, update=PresetUpdateParameters):
    body = {
        "__doc__": doc,
        "__module__": __name__,
        "device": field(factory=device_factory, classes=base._fields["device"].classes,
                        key=False),
        "forward": field(factory=PresetIOParameters, classes=(IOParameters,), key=False),
        "backward": field(factory=PresetIOParameters, classes=(IOParameters,), key=False),
        "update": field(factory=update, classes=(UpdateParameters,),
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


# The transfer-family presets (spec §10.3): two <X>PresetDevices (ReRamSB: subtracting their
# symmetry point), transfer reads PresetIOParameters without NM/BM, transfer writes
# PresetUpdateParameters(desired_bl=1) without UM/BL management, auto_scale; per family
# (fast_lr, auto_granularity, main-update BL) and the type's own values below.
# TTv2<X>Preset: ChoppedTransferCompound(in_chop_prob=0, units_in_mbatch=False),
# C: ttv2_<x>; ChoppedTTv2<X>Preset: the same with in_chop_prob (EcRam keeps fast_lr 1.0),
# C: chopped_ttv2_<x>; AGAD<X>Preset: DynamicTransferCompound with tail_weightening and
# in_chop_prob, C: agad_<x>.
_TTV2 = {"ReRamES": (0.5, 1000, 31), "ReRamSB": (0.5, 1000, 31),
         "Capacitor": (0.1, 1000, 31), "EcRam": (0.1, 500, 100),
         "EcRamMO": (0.1, 500, 100), "Idealized": (0.1, 500, 100)}
_CTTV2 = {"ReRamES": (0.5, 1000, 31, 0.01), "ReRamSB": (0.5, 1000, 31, 0.01),
          "Capacitor": (0.1, 1000, 31, 0.01), "EcRam": (1.0, 500, 100, 0.01),
          "EcRamMO": (0.1, 500, 100, 0.001), "Idealized": (0.1, 500, 100, 0.001)}
_AGAD = {"ReRamES": (0.5, 1000, 31, 5.0, 0.02), "ReRamSB": (0.5, 1000, 31, 5.0, 0.02),
         "Capacitor": (0.1, 1000, 31, 20.0, 0.01), "EcRam": (0.1, 750, 31, 50.0, 0.005),
         "EcRamMO": (0.1, 500, 100, 50.0, 0.005), "Idealized": (0.1, 500, 100, 50.0, 0.005)}


def _transfer2_device(cls, fam, **kw):
    def make():
        dev = _DEVICES[fam]
        devs = ([dev(subtract_symmetry_point=True), dev(subtract_symmetry_point=True)]
                if fam == "ReRamSB" else [dev(), dev()])
        return cls(
            unit_cell_devices=devs,
            transfer_forward=PresetIOParameters(noise_management=NoiseManagementType.NONE,
                                                bound_management=BoundManagementType.NONE),
            transfer_update=PresetUpdateParameters(desired_bl=1, update_bl_management=False,
                                                   update_management=False),
            auto_scale=True, **kw)
    return make


def _transfer2_preset(name, device_factory, bl, doc):
    return _compound_preset(name, UnitCellRPUConfig, device_factory, doc,
                            update=lambda: PresetUpdateParameters(desired_bl=bl))


for _fam in _FAMILIES:
    _flr, _ag, _bl = _TTV2[_fam]
    _name = "TTv2%sPreset" % _fam
    globals()[_name] = _transfer2_preset(
        _name, _transfer2_device(ChoppedTransferCompound, _fam, units_in_mbatch=False,
                                 in_chop_prob=0.0, fast_lr=_flr, auto_granularity=_ag),
        _bl, "TTv2 (buffered transfer, no choppers) with two %sPresetDevices per cross point."
        % _fam)
    _DONE.append(_name)
    _flr, _ag, _bl, _chop = _CTTV2[_fam]
    _name = "ChoppedTTv2%sPreset" % _fam
    globals()[_name] = _transfer2_preset(
        _name, _transfer2_device(ChoppedTransferCompound, _fam, units_in_mbatch=False,
                                 in_chop_prob=_chop, fast_lr=_flr, auto_granularity=_ag),
        _bl, "Chopped TTv2 with two %sPresetDevices per cross point." % _fam)
    _DONE.append(_name)
    _flr, _ag, _bl, _tail, _chop = _AGAD[_fam]
    _name = "AGAD%sPreset" % _fam
    globals()[_name] = _transfer2_preset(
        _name, _transfer2_device(DynamicTransferCompound, _fam, fast_lr=_flr,
                                 auto_granularity=_ag, tail_weightening=_tail,
                                 in_chop_prob=_chop),
        _bl, "AGAD (dynamic transfer) with two %sPresetDevices per cross point." % _fam)
    _DONE.append(_name)

# MixedPrecisionPCMPreset (spec §10.3): DigitalRankUpdateRPUConfig(device=
# MixedPrecisionCompound(device=PCMPresetUnitCell())), C: preset = mixed_precision_pcm
MixedPrecisionPCMPreset = _compound_preset(
    "MixedPrecisionPCMPreset", DigitalRankUpdateRPUConfig,
    lambda: MixedPrecisionCompound(device=PCMPresetUnitCell()),
    "Mixed precision transferring into a refreshing one-sided pair of PCM devices.")
_DONE.append("MixedPrecisionPCMPreset")
assert sorted(_DONE) == sorted(_COMPOUND), "a compound preset without a class"
del _name, _fam, _n, _flr, _ag, _bl, _chop, _tail
