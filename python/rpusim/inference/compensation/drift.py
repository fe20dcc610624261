"""The drift compensations rpusim implements (spec §6.3): the output of the drifted tile
is rescaled by a read-out of the identity taken after programming, over all outputs
(global) or per output column."""
from rpusim.inference.compensation.base import BaseDriftCompensation

__all__ = ["GlobalDriftCompensation", "PerColumnDriftCompensation"]


class GlobalDriftCompensation(BaseDriftCompensation):
    """One compensation factor per tile (drift_compensation = global)."""

    _c_name = "global"


class PerColumnDriftCompensation(BaseDriftCompensation):
    """One compensation factor per output column (drift_compensation = per_column)."""

    _c_name = "per_column"
