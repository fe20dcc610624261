"""Drift compensations (aihwkit.inference.compensation)."""
from rpusim.inference.compensation.base import BaseDriftCompensation  # noqa: F401
from rpusim.inference.compensation.drift import (  # noqa: F401
    GlobalDriftCompensation, PerColumnDriftCompensation)
