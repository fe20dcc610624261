"""Inference noise models (aihwkit.inference.noise)."""
from rpusim.inference.noise.base import BaseNoiseModel  # noqa: F401
from rpusim.inference.noise.pcm import PCMLikeNoiseModel, CustomDriftPCMLikeNoiseModel  # noqa: F401
from rpusim.inference.noise.custom import StateIndependentNoiseModel  # noqa: F401
from rpusim.inference.noise.reram import ReRamWan2022NoiseModel, ReRamCMONoiseModel  # noqa: F401
