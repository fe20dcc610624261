"""StateIndependentNoiseModel (spec §6.2): programming noise and drift that do not
depend on the conductance."""
from rpusim._params import UnsupportedConfigError, field
from rpusim.inference.converter.conductance import SinglePairConductanceConverter
from rpusim.inference.noise.base import BaseNoiseModel

__all__ = ["StateIndependentNoiseModel"]


class StateIndependentNoiseModel(BaseNoiseModel):
    """aihwkit's StateIndependentNoiseModel, with its constructor. prog_coeff[0] is the
    programming-noise std in µS (noise_model.prog_std); the other coefficients (terms in
    g/g_max) must be 0 in rpusim."""

    g_max = field(25.0, init=False)
    prog_coeff = field(factory=lambda: [0.2, 0.0, 0.0], init=False)
    prog_noise_scale = field(1.0, init=False)
    drift_nu_mean = field(0.1, init=False)
    drift_nu_std = field(0.05, init=False)
    drift_scale = field(1.0, init=False)
    t_0 = field(20.0, init=False)
    read_noise_scale = field(1.0, init=False)
    t_read = field(250.0e-9, init=False)

    def __init__(self, g_converter=None, g_max=None, prog_coeff=None, prog_noise_scale=1.0,
                 drift_nu_mean=0.1, drift_nu_std=0.05, drift_scale=1.0, t_0=20.0,
                 read_noise_scale=1.0, t_read=250.0e-9):
        super().__init__()
        self.g_converter = g_converter if g_converter is not None \
            else SinglePairConductanceConverter(g_max=g_max)
        self.g_max = getattr(self.g_converter, "g_max", g_max)
        self.prog_coeff = [0.2, 0.0, 0.0] if prog_coeff is None else prog_coeff
        self.prog_noise_scale = prog_noise_scale
        self.drift_nu_mean = drift_nu_mean
        self.drift_nu_std = drift_nu_std
        self.drift_scale = drift_scale
        self.t_0 = t_0
        self.read_noise_scale = read_noise_scale
        self.t_read = t_read

    def _render_noise_model(self, path):
        coeffs = list(self.prog_coeff)
        if not coeffs or any(c != 0 for c in coeffs[1:]):
            raise UnsupportedConfigError(
                "%s.prog_coeff = %r: rpusim's state-independent model has a constant "
                "programming noise (prog_coeff[0] µS); the terms in g/g_max must be 0 "
                "(PCMLikeNoiseModel has state-dependent programming noise)"
                % (path, self.prog_coeff))
        return ([("noise_model.type", "state_independent"),
                 ("noise_model.prog_std", repr(float(coeffs[0])))]
                + self._render_g(path)
                + [("noise_model.prog_noise_scale", repr(float(self.prog_noise_scale))),
                   ("noise_model.drift_nu_mean", repr(float(self.drift_nu_mean))),
                   ("noise_model.drift_nu_std", repr(float(self.drift_nu_std))),
                   ("noise_model.drift_scale", repr(float(self.drift_scale))),
                   ("noise_model.t_0", repr(float(self.t_0))),
                   ("noise_model.read_noise_scale", repr(float(self.read_noise_scale))),
                   ("noise_model.t_read", repr(float(self.t_read)))])
