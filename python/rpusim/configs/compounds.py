"""aihwkit's compound devices (unit cells, transfer and mixed-precision compounds) by
name only: rpusim does not implement them yet (issue 16), so constructing one raises
UnsupportedConfigError instead of failing at import."""
from rpusim._params import Params, unsupported_class

__all__ = ["UnitCell", "VectorUnitCell", "ReferenceUnitCell", "OneSidedUnitCell",
           "DifferenceUnitCell", "TransferCompound", "BufferedTransferCompound",
           "ChoppedTransferCompound", "DynamicTransferCompound", "DigitalRankUpdateCell",
           "MixedPrecisionCompound"]

_WHY = "compound devices are not implemented yet (rpusim issue 16); use a single device " \
       "in SingleRPUConfig"

for _name in __all__:
    globals()[_name] = unsupported_class(_name, Params, _WHY, __name__)
del _name
