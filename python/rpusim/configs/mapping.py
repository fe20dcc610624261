"""MappingParameter: digital bias, weight scaling and the tile size limits of mapped
layers (spec §7); C keys mapping.* under the same names."""
from rpusim._params import Params, field

__all__ = ["MappingParameter"]


class MappingParameter(Params):
    """aihwkit's MappingParameter with its defaults (digital bias, no weight scaling,
    tiles of at most 512 x 512)."""

    digital_bias = field(True)
    weight_scaling_omega = field(0.0)
    weight_scaling_columnwise = field(False)
    weight_scaling_lr_compensation = field(False)
    learn_out_scaling = field(False)
    out_scaling_columnwise = field(False)
    max_input_size = field(512)
    max_output_size = field(512)

    def compatible_with(self, mapping):
        """True if the two mappings give the same tiles and the same bias/out-scaling
        handling (the weight-scaling fields may differ), as aihwkit's method."""
        skip = ("weight_scaling_omega", "weight_scaling_columnwise",
                "weight_scaling_lr_compensation")
        return all(getattr(self, n) == getattr(mapping, n)
                   for n in self._fields if n not in skip)
