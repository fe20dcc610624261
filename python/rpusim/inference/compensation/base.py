"""Base class of the drift compensations."""
from rpusim._params import Params

__all__ = ["BaseDriftCompensation"]


class BaseDriftCompensation(Params):
    """A drift compensation: its C value of drift_compensation (spec §6.3)."""

    _c_name = None
