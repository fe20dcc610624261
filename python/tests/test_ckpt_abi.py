"""The ctypes structures of rpusim._capi_ckpt against the C compiler's layout (sizes,
field offsets, enum size and constants as abi_ckpt_layout.c prints them)."""
import ctypes
import os
import subprocess

import pytest

from rpusim import _capi_ckpt as C
from rpusim import checkpoint


def _layout():
    exe = os.environ.get("RPUSIM_ABI_CKPT_LAYOUT")
    if not exe:
        pytest.fail("RPUSIM_ABI_CKPT_LAYOUT is not set (CTest sets it to the "
                    "rpusim_abi_ckpt_layout program built from python/tests/abi_ckpt_layout.c)")
    # without the ASan runtime a sanitized build preloads into python3 (exe links its own)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    out = subprocess.run([exe], check=True, capture_output=True, text=True, env=env).stdout
    return {(kind, name): int(value) for kind, name, value in
            (line.split() for line in out.splitlines())}


LAYOUT = _layout()


@pytest.mark.parametrize("cname", sorted(C.STRUCTS))
def test_struct_layout(cname):
    cls = C.STRUCTS[cname]
    assert ctypes.sizeof(cls) == LAYOUT[("struct", cname)], cname
    c_fields = {name.split(".", 1)[1]: off for (kind, name), off in LAYOUT.items()
                if kind == "field" and name.startswith(cname + ".")}
    py_fields = {f[0]: getattr(cls, f[0]).offset for f in cls._fields_}
    assert py_fields == c_fields, cname


def test_constants():
    assert LAYOUT[("enum", "rpu_ckpt_dtype")] == ctypes.sizeof(ctypes.c_int)
    assert LAYOUT[("const", "RPU_CKPT_MAX_DIMS")] == C.MAX_DIMS
    assert LAYOUT[("const", "RPU_CKPT_MAX_TEXT")] == checkpoint.MAX_TEXT
    for name, value in C.DTYPES.items():
        cname = {"float32": "F32", "float64": "F64", "int32": "I32", "int64": "I64",
                 "uint64": "U64", "uint8": "U8"}[name]
        assert LAYOUT[("const", "RPU_CKPT_" + cname)] == value, name
