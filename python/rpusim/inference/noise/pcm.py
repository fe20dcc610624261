"""PCMLikeNoiseModel (spec §6.2): PCM programming noise, drift and 1/f read noise."""
from rpusim._params import UnsupportedConfigError, f32, field, unsupported_class
from rpusim.inference.converter.conductance import SinglePairConductanceConverter
from rpusim.inference.noise.base import BaseNoiseModel

__all__ = ["PCMLikeNoiseModel", "CustomDriftPCMLikeNoiseModel"]

_DEFAULT_PROG_COEFF = [0.26348, 1.9650, -1.1731]   # µS, fitted at g_max = 25 µS
_DEFAULT_REFERENCE = 25.0


class PCMLikeNoiseModel(BaseNoiseModel):
    """aihwkit's PCMLikeNoiseModel, with its constructor: prog_coeff (a polynomial of at
    most degree 2 in g/g_max here; aihwkit allows any degree), g_converter, g_max,
    t_read, t_0, prog_noise_scale, read_noise_scale, drift_scale,
    prog_coeff_g_max_reference.

    prog_coeff_g_max_reference, when not given, resolves as in aihwkit: 25 for the default
    coefficients, g_max for coefficients given explicitly. When given explicitly it is
    used (aihwkit 1.0 ignores an explicit value: it keeps 25 for the default coefficients
    and leaves the attribute unset for explicit ones)."""

    prog_coeff = field(factory=lambda: list(_DEFAULT_PROG_COEFF), init=False)
    g_max = field(25.0, init=False)
    t_read = field(250.0e-9, init=False)
    t_0 = field(20.0, init=False)
    prog_noise_scale = field(1.0, init=False)
    read_noise_scale = field(1.0, init=False)
    drift_scale = field(1.0, init=False)
    prog_coeff_g_max_reference = field(_DEFAULT_REFERENCE, init=False)

    def __init__(self, prog_coeff=None, g_converter=None, g_max=None, t_read=250.0e-9,
                 t_0=20.0, prog_noise_scale=1.0, read_noise_scale=1.0, drift_scale=1.0,
                 prog_coeff_g_max_reference=None):
        super().__init__()
        self.g_converter = g_converter if g_converter is not None \
            else SinglePairConductanceConverter(g_max=g_max)
        self.g_max = getattr(self.g_converter, "g_max", g_max)
        if prog_coeff is None:
            self.prog_coeff = list(_DEFAULT_PROG_COEFF)
            reference = _DEFAULT_REFERENCE
        else:
            self.prog_coeff = prog_coeff
            reference = self.g_max
        if prog_coeff_g_max_reference is not None:
            reference = prog_coeff_g_max_reference
        self.prog_coeff_g_max_reference = reference
        self.t_read = t_read
        self.t_0 = t_0
        self.prog_noise_scale = prog_noise_scale
        self.read_noise_scale = read_noise_scale
        self.drift_scale = drift_scale

    def _render_noise_model(self, path):
        coeffs = list(self.prog_coeff)
        if not 1 <= len(coeffs) <= 3:
            raise UnsupportedConfigError(
                "%s.prog_coeff = %r: rpusim takes 1 to 3 coefficients (a polynomial of "
                "degree <= 2 in g/g_max)" % (path, self.prog_coeff))
        coeffs += [0.0] * (3 - len(coeffs))
        # C's reference 0 means aihwkit's rule for a reference that was not given (25
        # while the coefficients are the defaults, else g_max): render 0 when the rule
        # gives the resolved value, the value itself otherwise.
        is_default = [f32(c) for c in coeffs] == [f32(c) for c in _DEFAULT_PROG_COEFF]
        rule = _DEFAULT_REFERENCE if is_default else self.g_max
        ref = self.prog_coeff_g_max_reference
        ref_text = "0" if f32(ref) == f32(rule) else repr(float(ref))
        return ([("noise_model.type", "pcm_like"),
                 ("noise_model.prog_coeff", "[" + ", ".join(repr(float(c)) for c in coeffs)
                  + "]")]
                + self._render_g(path)
                + [("noise_model.t_read", repr(float(self.t_read))),
                   ("noise_model.t_0", repr(float(self.t_0))),
                   ("noise_model.prog_noise_scale", repr(float(self.prog_noise_scale))),
                   ("noise_model.read_noise_scale", repr(float(self.read_noise_scale))),
                   ("noise_model.drift_scale", repr(float(self.drift_scale))),
                   ("noise_model.prog_coeff_g_max_reference", ref_text)])


CustomDriftPCMLikeNoiseModel = unsupported_class(
    "CustomDriftPCMLikeNoiseModel", BaseNoiseModel,
    "custom drift models are not implemented; use PCMLikeNoiseModel or "
    "StateIndependentNoiseModel", __name__)
