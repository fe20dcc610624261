"""Base class of the inference noise models."""
from rpusim._params import Params, UnsupportedConfigError, field, f32
from rpusim.inference.converter.base import BaseConductanceConverter
from rpusim.inference.converter.conductance import SinglePairConductanceConverter

__all__ = ["BaseNoiseModel"]


class BaseNoiseModel(Params):
    """A statistical model of programming noise, drift and read noise (spec §6.2),
    rendered onto the C keys noise_model.*. g_converter must be a
    SinglePairConductanceConverter; its g_min is noise_model.g_min."""

    g_converter = field(factory=SinglePairConductanceConverter,
                        classes=(BaseConductanceConverter,), key=False)

    def _render_noise_model(self, path):
        raise UnsupportedConfigError("%s: %s is not a noise model rpusim implements"
                                     % (path, type(self).__name__))

    def _render_g(self, path):
        """noise_model.g_max / g_min: rpusim converts and adds noise with one g_max."""
        conv = self.g_converter
        if not isinstance(conv, SinglePairConductanceConverter):
            raise UnsupportedConfigError("%s.g_converter: %s is not supported; use "
                                         "SinglePairConductanceConverter"
                                         % (path, type(conv).__name__))
        if f32(conv.g_max) != f32(self.g_max):
            raise UnsupportedConfigError(
                "%s.g_max = %r differs from %s.g_converter.g_max = %r: rpusim converts "
                "weights and adds noise with one g_max; set both alike"
                % (path, self.g_max, path, conv.g_max))
        return [("noise_model.g_max", repr(float(self.g_max))),
                ("noise_model.g_min", repr(float(conv.g_min)))]
