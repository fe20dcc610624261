"""Conductance converters (aihwkit.inference.converter)."""
from rpusim.inference.converter.base import BaseConductanceConverter  # noqa: F401
from rpusim.inference.converter.conductance import *  # noqa: F401,F403
