"""Digital pre/post-processing parameters (input range learning). rpusim does not learn
input ranges: InputRangeParameter.enable must stay False."""
from rpusim._params import Params, field

__all__ = ["InputRangeParameter", "PrePostProcessingParameter"]


def _not_enabled(value):
    if value:
        return ("input range learning is not implemented by rpusim; use noise and bound "
                "management (forward.noise_management / bound_management) instead")
    return None


class InputRangeParameter(Params):
    """aihwkit's InputRangeParameter; only enable=False (the default) is supported. The
    other fields act only when enabled and are accepted as they are."""

    enable = field(False, check=_not_enabled)
    learn_input_range = field(True)
    init_value = field(3.0)
    init_from_data = field(100)
    init_std_alpha = field(3.0)
    decay = field(0.001)
    input_min_percentage = field(0.95)
    manage_output_clipping = field(False)
    output_min_percentage = field(0.95)
    gradient_scale = field(1.0)
    gradient_relative = field(True)
    calibration_info = field(None, kind="any")

    def _render(self, prefix, path):
        self._check_supported(path)
        return []


class PrePostProcessingParameter(Params):
    """aihwkit's PrePostProcessingParameter: the input range parameters."""

    input_range = field(factory=InputRangeParameter, classes=(InputRangeParameter,))

    def _render(self, prefix, path):
        return self.input_range._render(prefix, path + ".input_range")
