"""Inference tools under aihwkit's names (aihwkit.inference): the noise models, drift
compensations and conductance converters that InferenceRPUConfig takes."""
from rpusim.inference.converter import (  # noqa: F401
    BaseConductanceConverter, SinglePairConductanceConverter,
    SingleDeviceConductanceConverter, DualPairConductanceConverter,
    NPairConductanceConverter, CustomPairConductanceConverter)
from rpusim.inference.noise import (  # noqa: F401
    BaseNoiseModel, PCMLikeNoiseModel, CustomDriftPCMLikeNoiseModel,
    StateIndependentNoiseModel, ReRamWan2022NoiseModel, ReRamCMONoiseModel)
from rpusim.inference.compensation import (  # noqa: F401
    BaseDriftCompensation, GlobalDriftCompensation, PerColumnDriftCompensation)
