"""The ctypes structures of rpusim._capi against the C compiler's layout: every mirrored
struct's size and every field's offset as abi_layout.c (compiled with the project's
headers) prints them, and the size of the enums the binding passes as int."""
import ctypes

import pytest
from abi_check import check_struct, layout

from rpusim import _capi

LAYOUT = layout("RPUSIM_ABI_LAYOUT")


@pytest.mark.parametrize("cname", sorted(_capi.STRUCTS))
def test_struct_layout(cname):
    check_struct(LAYOUT, cname, _capi.STRUCTS[cname])


def test_enums_are_int_sized():
    for name in ("rpu_bias", "rpu_padding_mode", "rpu_weight_read", "rpu_mac_mode",
                 "rpu_status"):
        assert LAYOUT[("enum", name)] == ctypes.sizeof(ctypes.c_int), name
    assert LAYOUT[("const", "RPU_LAYER_NAME_MAX")] == _capi.LAYER_NAME_MAX
