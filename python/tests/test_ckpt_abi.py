"""The ctypes structures of rpusim._capi_ckpt against the C compiler's layout (sizes,
field offsets, enum size and constants as abi_ckpt_layout.c prints them)."""
import ctypes

import pytest
from abi_check import check_struct, layout

from rpusim import _capi_ckpt as C
from rpusim import checkpoint

LAYOUT = layout("RPUSIM_ABI_CKPT_LAYOUT")


@pytest.mark.parametrize("cname", sorted(C.STRUCTS))
def test_struct_layout(cname):
    check_struct(LAYOUT, cname, C.STRUCTS[cname])


def test_constants():
    assert LAYOUT[("enum", "rpu_ckpt_dtype")] == ctypes.sizeof(ctypes.c_int)
    assert LAYOUT[("const", "RPU_CKPT_MAX_DIMS")] == C.MAX_DIMS
    assert LAYOUT[("const", "RPU_CKPT_MAX_TEXT")] == checkpoint.MAX_TEXT
    for name, value in C.DTYPES.items():
        cname = {"float32": "F32", "float64": "F64", "int32": "I32", "int64": "I64",
                 "uint64": "U64", "uint8": "U8"}[name]
        assert LAYOUT[("const", "RPU_CKPT_" + cname)] == value, name
