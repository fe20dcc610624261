"""Configs of these tests, built from rpusim.configs (aihwkit's classes)."""
from rpusim.configs import (ConstantStepDevice, FloatingPointRPUConfig, InferenceRPUConfig,
                            MappingParameter, SingleRPUConfig)

_KINDS = {"floating_point": FloatingPointRPUConfig, "single": SingleRPUConfig,
          "inference": InferenceRPUConfig}


def make_config(kind="floating_point", max_input_size=0, max_output_size=0,
                digital_bias=True, constant_step=False):
    """An rpu_config of `kind` with the given mapping (SingleRPUConfig's device:
    ConstantStepDevice, aihwkit's default, named explicitly with constant_step)."""
    mapping = MappingParameter(max_input_size=max_input_size, max_output_size=max_output_size,
                               digital_bias=digital_bias)
    if constant_step:
        return SingleRPUConfig(device=ConstantStepDevice(), mapping=mapping)
    return _KINDS[kind](mapping=mapping)
