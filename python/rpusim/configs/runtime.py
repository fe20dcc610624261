"""RuntimeParameter: simulation settings that are not hardware parameters."""
from rpusim._params import Params, field, render_value
from rpusim.configs.enums import RPUDataType

__all__ = ["RuntimeParameter"]


def _no_on_the_fly(value):
    if value:
        return ("rpusim reads a layer's config once when the layer is built; changing "
                "clip/remap/modifier parameters during training is not supported")
    return None


class RuntimeParameter(Params):
    """aihwkit's RuntimeParameter. data_type must be FLOAT (rpusim computes in float32);
    offload_input / offload_gradient concern GPU memory and have no effect on CPU (as in
    aihwkit's CPU simulator)."""

    data_type = field(RPUDataType.FLOAT)
    on_the_fly_bindings = field(False, check=_no_on_the_fly)
    offload_input = field(False)
    offload_gradient = field(False)

    def _render(self, prefix, path):
        self._check_supported(path)
        render_value(self._fields["data_type"], self.data_type, path + ".data_type")
        return []
