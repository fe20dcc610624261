"""The ctypes structures of rpusim._capi against the C compiler's layout: every mirrored
struct's size and every field's offset as abi_layout.c (compiled with the project's
headers) prints them, and the size of the enums the binding passes as int."""
import ctypes
import os
import subprocess

import pytest

from rpusim import _capi


def _layout():
    exe = os.environ.get("RPUSIM_ABI_LAYOUT")
    if not exe:
        pytest.fail("RPUSIM_ABI_LAYOUT is not set (CTest sets it to the rpusim_abi_layout "
                    "program built from python/tests/abi_layout.c)")
    # a sanitized build preloads the shared ASan runtime into python3 (LD_PRELOAD); the
    # program has its own (static) one, which refuses to start beside it
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    run = subprocess.run([exe], capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 0, "%s failed: %s" % (exe, run.stderr)
    out = run.stdout
    rows = {}
    for line in out.splitlines():
        kind, name, value = line.split()
        rows[(kind, name)] = int(value)
    return rows


LAYOUT = _layout()


@pytest.mark.parametrize("cname", sorted(_capi.STRUCTS))
def test_struct_layout(cname):
    cls = _capi.STRUCTS[cname]
    assert ctypes.sizeof(cls) == LAYOUT[("struct", cname)], cname
    c_fields = {name.split(".", 1)[1]: off for (kind, name), off in LAYOUT.items()
                if kind == "field" and name.startswith(cname + ".")}
    py_fields = {f[0]: getattr(cls, f[0]).offset for f in cls._fields_}
    assert py_fields == c_fields, cname


def test_enums_are_int_sized():
    for name in ("rpu_bias", "rpu_padding_mode", "rpu_weight_read", "rpu_mac_mode",
                 "rpu_status"):
        assert LAYOUT[("enum", name)] == ctypes.sizeof(ctypes.c_int), name
    assert LAYOUT[("const", "RPU_LAYER_NAME_MAX")] == _capi.LAYER_NAME_MAX
