"""Legacy import location of aihwkit's parameters and enums
(aihwkit.simulator.configs.utils)."""
# pylint: disable=unused-import
from rpusim.configs.enums import (  # noqa: F401
    AnalogMVType, BoundManagementType, NoiseManagementType, PulseType,
    VectorUnitCellUpdatePolicy, WeightClipType, WeightModifierType, WeightNoiseType,
    WeightRemapType)
from rpusim.configs.inference import (  # noqa: F401
    DriftParameter, SimpleDriftParameter, WeightClipParameter, WeightModifierParameter,
    WeightRemapParameter)
from rpusim.configs.io import IOParameters  # noqa: F401
from rpusim.configs.mapping import MappingParameter  # noqa: F401
from rpusim.configs.pre_post import InputRangeParameter, PrePostProcessingParameter  # noqa: F401
from rpusim.configs.training import UpdateParameters  # noqa: F401
