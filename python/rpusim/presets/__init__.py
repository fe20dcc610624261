"""aihwkit's presets (aihwkit.simulator.presets) under their aihwkit names: the
single-device RPU configs (ReRamSBPreset, ...), their devices (ReRamSBPresetDevice, ...)
and the shared PresetIOParameters / PresetUpdateParameters.

    from rpusim.presets import ReRamSBPreset, ReRamSBPresetDevice
    from rpusim.configs import SingleRPUConfig
    rpu_config = ReRamSBPreset()                          # C: preset = reram_sb
    rpu_config = SingleRPUConfig(device=ReRamSBPresetDevice())   # C: device.preset = reram_sb

The classes render their expanded fields (to_keys()), like every rpusim.configs class;
the C library holds the same presets by name for INI files and `--set`
(rpu.preset = reram_sb, rpu.device.preset = reram_sb), and the tests check that the two
agree. The compound presets (MixedPrecisionReRamSBPreset, ReRamSB2Preset,
TikiTakaReRamSBPreset, TTv2ReRamSBPreset, ChoppedTTv2ReRamSBPreset, AGADReRamSBPreset, ...,
PCMPreset, MixedPrecisionPCMPreset with a one-sided PCM cell inside) are real.
"""
# pylint: disable=unused-import
from rpusim.presets.utils import PresetIOParameters, PresetUpdateParameters  # noqa: F401
from rpusim.presets.devices import (  # noqa: F401
    CapacitorPresetDevice, EcRamMOPresetDevice, EcRamPresetDevice, GokmenVlasovPresetDevice,
    IdealizedPresetDevice, PCMPresetDevice, ReRamESPresetDevice, ReRamSBPresetDevice)
from rpusim.presets.compounds import PCMPresetUnitCell  # noqa: F401
from rpusim.presets.configs import *  # noqa: F401,F403
from rpusim.presets.configs import __all__ as _configs_all

__all__ = (["PresetIOParameters", "PresetUpdateParameters", "ReRamESPresetDevice",
            "ReRamSBPresetDevice", "CapacitorPresetDevice", "EcRamPresetDevice",
            "EcRamMOPresetDevice", "IdealizedPresetDevice", "GokmenVlasovPresetDevice",
            "PCMPresetDevice", "PCMPresetUnitCell"] + list(_configs_all))
