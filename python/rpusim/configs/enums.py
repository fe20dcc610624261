"""aihwkit's enumerations (member names and values as aihwkit 1.0 has them), with the
members rpusim does not implement marked: rendering a config that uses one raises
UnsupportedConfigError naming the field. The C spelling of a member is its lower-case
name (NoiseManagementType.ABS_MAX -> "abs_max"), the names config.h lists."""
from enum import Enum

from rpusim._params import register_enum

__all__ = ["RPUDataType", "BoundManagementType", "NoiseManagementType", "WeightNoiseType",
           "PulseType", "WeightModifierType", "WeightClipType", "WeightRemapType",
           "VectorUnitCellUpdatePolicy", "AnalogMVType", "CountLRFeedbackPolicy"]


class RPUDataType(Enum):
    """Data type of the simulation; rpusim computes in float32 (FLOAT) only."""

    FLOAT = "float"
    DOUBLE = "double"
    HALF = "half"

    def as_torch(self):
        """The torch dtype of this data type."""
        import torch  # pylint: disable=import-outside-toplevel
        return {"float": torch.float32, "double": torch.float64, "half": torch.half}[self.value]


class BoundManagementType(Enum):
    """Bound management of the forward pass (spec §2.5)."""

    NONE = "None"
    ITERATIVE = "Iterative"
    ITERATIVE_WORST_CASE = "IterativeWorstCase"
    SHIFT = "Shift"


class NoiseManagementType(Enum):
    """Input scaling before the DAC (spec §2.4)."""

    NONE = "None"
    ABS_MAX = "AbsMax"
    ABS_MAX_NP_SUM = "AbsMaxNPSum"
    MAX = "Max"
    CONSTANT = "Constant"
    AVERAGE_ABS_MAX = "AverageAbsMax"


class WeightNoiseType(Enum):
    """Output-referred weight noise of each MVM."""

    NONE = "None"
    ADDITIVE_CONSTANT = "AdditiveConstant"
    PCM_READ = "PCMRead"


class PulseType(Enum):
    """Pulse generation of the pulsed update (spec §3)."""

    NONE = "None"
    STOCHASTIC_COMPRESSED = "StochasticCompressed"
    STOCHASTIC = "Stochastic"
    NONE_WITH_DEVICE = "NoneWithDevice"
    MEAN_COUNT = "MeanCount"
    DETERMINISTIC_IMPLICIT = "DeterministicImplicit"


class WeightModifierType(Enum):
    """Hardware-aware training weight modifier (spec §6.4)."""

    NONE = "None"
    DISCRETIZE = "Discretize"
    MULT_NORMAL = "MultNormal"
    ADD_NORMAL = "AddNormal"
    DISCRETIZE_ADD_NORMAL = "DiscretizeAddNormal"
    DOREFA = "DoReFa"
    POLY = "Poly"
    PCM_NOISE = "PCMNoise"
    PROG_NOISE = "ProgNoise"
    DROP_CONNECT = "DropConnect"
    COPY = "Copy"


class WeightClipType(Enum):
    """Weight clipping after each update (spec §6.5)."""

    NONE = "None"
    FIXED_VALUE = "FixedValue"
    LAYER_GAUSSIAN = "LayerGaussian"
    AVERAGE_CHANNEL_MAX = "AverageChannelMax"


class WeightRemapType(Enum):
    """Weight remapping after each update (spec §6.6)."""

    NONE = "None"
    LAYERWISE_SYMMETRIC = "LayerwiseSymmetric"
    CHANNELWISE_SYMMETRIC = "ChannelwiseSymmetric"


class VectorUnitCellUpdatePolicy(Enum):
    """Update policy of vector and reference unit cells (compound spec §2.3)."""

    ALL = "All"
    SINGLE_FIXED = "SingleFixed"
    SINGLE_SEQUENTIAL = "SingleSequential"
    SINGLE_RANDOM = "SingleRandom"


class AnalogMVType(Enum):
    """How the analog MVM treats the signs of the input (spec §2.3)."""

    IDEAL = "Ideal"
    ONE_PASS = "OnePass"
    POS_NEG_SEPARATE = "PosNegSeparate"
    POS_NEG_SEPARATE_DIGITAL_SUM = "PosNegSeparateDigitalSum"
    SPLIT_MODE = "SplitMode"
    BIT_WISE = "BitWise"


class CountLRFeedbackPolicy(Enum):
    """Legacy (transfer compounds, not supported yet)."""

    NONE = "None"
    PAST_MOMENTUM = "PastMomentum"
    EXTERN = "Extern"


register_enum(BoundManagementType, unsupported={
    "SHIFT": "output shifting is not implemented; use ITERATIVE or ITERATIVE_WORST_CASE"})
register_enum(AnalogMVType, unsupported={
    "IDEAL": "set is_perfect=True for an ideal MVM",
    "SPLIT_MODE": "TorchInferenceRPUConfigIRDropT only",
    "BIT_WISE": "TorchInferenceRPUConfigIRDropT only"})
register_enum(WeightModifierType, unsupported={
    "PCM_NOISE": "aihwkit's CPU simulator does not implement it either (C++ fatal); use "
                 "PROG_NOISE or POLY"},
    aliases={"COPY": "none"})   # aihwkit: legacy name of "no modification"
register_enum(RPUDataType, unsupported={
    "DOUBLE": "rpusim computes in float32 only",
    "HALF": "rpusim computes in float32 only"})
