"""aihwkit.simulator.presets.compounds: the preset unit cells (compound-devices spec §10.3)."""
from rpusim._params import field
from rpusim.configs.compounds import OneSidedUnitCell
from rpusim.configs.io import IOParameters
from rpusim.configs.training import UpdateParameters
from rpusim.presets.devices import PCMPresetDevice
from rpusim.presets.utils import PresetIOParameters, PresetUpdateParameters

__all__ = ["PCMPresetUnitCell"]


class PCMPresetUnitCell(OneSidedUnitCell):
    """Two one-directional PCMPresetDevices (g+ and g-) refreshed after every update call
    (C: the device of preset = pcm)."""

    unit_cell_devices = field(factory=lambda: [PCMPresetDevice(), PCMPresetDevice()],
                              kind="any", key=False)
    refresh_every = field(1)
    units_in_mbatch = field(True)
    refresh_forward = field(factory=PresetIOParameters, classes=(IOParameters,))
    refresh_update = field(factory=lambda: PresetUpdateParameters(desired_bl=31),
                           classes=(UpdateParameters,))
