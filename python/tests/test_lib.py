"""The binding itself: the library is found, C errors become RPUError with the C message,
communicators convert, and a config made on the heap reads back aihwkit's defaults."""
import ctypes

import pytest
from mpi4py import MPI

from rpusim import _lib


def test_error_carries_the_c_message():
    create = _lib.declare("rpu_config_create", ctypes.c_int, ctypes.c_int,
                          ctypes.POINTER(ctypes.c_void_p))
    handle = ctypes.c_void_p()
    with pytest.raises(_lib.RPUError) as err:
        _lib.check(create(7, ctypes.byref(handle)))
    assert err.value.status == 1 and err.value.status_name == "RPU_ERR_ARG"
    assert "unknown kind 7" in str(err.value)
    assert handle.value is None


def test_config_heap_defaults():
    create = _lib.declare("rpu_config_create", ctypes.c_int, ctypes.c_int,
                          ctypes.POINTER(ctypes.c_void_p))
    get = _lib.declare("rpu_config_get", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                       ctypes.c_char_p, ctypes.c_size_t)
    destroy = _lib.declare("rpu_config_destroy", None, ctypes.POINTER(ctypes.c_void_p))
    h = ctypes.c_void_p()
    _lib.check(create(1, ctypes.byref(h)))
    buf = ctypes.create_string_buffer(256)
    _lib.check(get(h, b"forward.out_noise", buf, 256))
    assert buf.value == b"0.06"          # aihwkit's IOParameters().out_noise
    _lib.check(get(h, b"update.desired_bl", buf, 256))
    assert buf.value == b"31"
    destroy(ctypes.byref(h))
    assert h.value is None


def test_comm_handle():
    world = _lib.comm_handle(MPI.COMM_WORLD)
    assert isinstance(world, _lib.MPI_Comm) and world.value
    with pytest.raises(TypeError, match="mpi4py communicator"):
        _lib.comm_handle(42)
