"""Base class of the conductance converters."""
from rpusim._params import Params

__all__ = ["BaseConductanceConverter"]


class BaseConductanceConverter(Params):
    """Maps weights to conductances for programming and drift (aihwkit's base)."""
