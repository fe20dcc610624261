"""Shared by test_abi.py and test_ckpt_abi.py: reads what a layout program (compiled with
the project's headers) prints, "kind name value" per line, and compares a ctypes
Structure's size and field offsets with it."""
import ctypes
import os
import subprocess

import pytest


def layout(env_var):
    """{(kind, name): value} printed by the program whose path CTest puts in env_var."""
    exe = os.environ.get(env_var)
    if not exe:
        pytest.fail("%s is not set (CTest sets it to the layout program of python/tests)"
                    % env_var)
    # a sanitized build preloads the shared ASan runtime into python3 (LD_PRELOAD); the
    # program has its own (static) one, which refuses to start beside it
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    run = subprocess.run([exe], capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 0, "%s failed: %s" % (exe, run.stderr)
    return {(kind, name): int(value) for kind, name, value in
            (line.split() for line in run.stdout.splitlines())}


def check_struct(rows, cname, cls):
    """The ctypes Structure cls has the size and field offsets of C's struct cname."""
    assert ctypes.sizeof(cls) == rows[("struct", cname)], cname
    c_fields = {name.split(".", 1)[1]: off for (kind, name), off in rows.items()
                if kind == "field" and name.startswith(cname + ".")}
    py_fields = {f[0]: getattr(cls, f[0]).offset for f in cls._fields_}
    assert py_fields == c_fields, cname
