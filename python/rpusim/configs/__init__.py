"""aihwkit's RPU configurations (aihwkit.simulator.configs, aihwkit.simulator.parameters)
under their aihwkit names, rendered onto rpusim's C config keys.

    from rpusim.configs import SingleRPUConfig, SoftBoundsDevice
    rpu_config = SingleRPUConfig(device=SoftBoundsDevice(dw_min=0.01))
    rpu_config.forward.out_noise = 0.1
    rpu_config.to_keys()   # [("kind", "single"), ("device.type", "soft_bounds"), ...]

Module layout as aihwkit's, so that imports only change their package:
rpusim.configs.{configs, devices, compounds, utils, enums, io, training, mapping,
inference, pre_post, runtime}; the noise models and drift compensations live in
rpusim.inference (aihwkit.inference) and are re-exported here.

Unknown field names raise UnknownFieldError (naming the class and the closest field);
aihwkit features rpusim does not implement raise UnsupportedConfigError naming the field,
when the class is constructed (compound devices, other RPU configs) or when the config is
rendered (a value such as BoundManagementType.SHIFT).
"""
# pylint: disable=unused-import
from rpusim._params import ConfigError, UnknownFieldError, UnsupportedConfigError  # noqa: F401
from rpusim.configs.enums import (  # noqa: F401
    AnalogMVType, BoundManagementType, CountLRFeedbackPolicy, NoiseManagementType,
    PulseType, RPUDataType, VectorUnitCellUpdatePolicy, WeightClipType, WeightModifierType,
    WeightNoiseType, WeightRemapType)
from rpusim.configs.io import IOParameters, IOParametersIRDropT  # noqa: F401
from rpusim.configs.training import UpdateParameters  # noqa: F401
from rpusim.configs.mapping import MappingParameter  # noqa: F401
from rpusim.configs.inference import (  # noqa: F401
    DriftParameter, SimpleDriftParameter, WeightClipParameter, WeightModifierParameter,
    WeightRemapParameter)
from rpusim.configs.pre_post import InputRangeParameter, PrePostProcessingParameter  # noqa: F401
from rpusim.configs.runtime import RuntimeParameter  # noqa: F401
from rpusim.configs.devices import (  # noqa: F401
    ConstantStepDevice, ExpStepDevice, FloatingPointDevice, IdealDevice, LinearStepDevice,
    PiecewiseStepDevice, PowStepDevice, PowStepReferenceDevice, PulsedDevice,
    SoftBoundsDevice, SoftBoundsPmaxDevice, SoftBoundsReferenceDevice)
from rpusim.configs.compounds import (  # noqa: F401
    BufferedTransferCompound, ChoppedTransferCompound, DifferenceUnitCell,
    DigitalRankUpdateCell, DynamicTransferCompound, MixedPrecisionCompound,
    OneSidedUnitCell, ReferenceUnitCell, TransferCompound, UnitCell, VectorUnitCell)
from rpusim.configs.configs import (  # noqa: F401
    DigitalRankUpdateRPUConfig, FloatingPointRPUConfig, InferenceRPUConfig,
    QuantizedTorchInferenceRPUConfig, SingleRPUConfig, TorchInferenceRPUConfig,
    TorchInferenceRPUConfigIRDropT, UnitCellRPUConfig)
from rpusim.inference import (  # noqa: F401
    BaseDriftCompensation, BaseNoiseModel, GlobalDriftCompensation, PCMLikeNoiseModel,
    PerColumnDriftCompensation, SinglePairConductanceConverter,
    StateIndependentNoiseModel)
