"""A C rpu_config built from dotted keys: the one place where Python configs meet C.

rpusim.configs renders an aihwkit-style config object into (key, text) pairs with the C
names of rpu_config_keys() (the table that INI files and `--set` use too); CConfig applies
them with rpu_config_set, so every value is checked and every message comes from C.
"""
import ctypes

from rpusim._lib import check, declare
from rpusim.exceptions import raise_for_status

_create = declare("rpu_config_create", ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p))
_destroy = declare("rpu_config_destroy", None, ctypes.POINTER(ctypes.c_void_p))
_set = declare("rpu_config_set", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p)
_get = declare("rpu_config_get", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
               ctypes.c_size_t)
_validate = declare("rpu_config_validate", ctypes.c_int, ctypes.c_void_p)

KIND_FLOATING_POINT, KIND_SINGLE, KIND_INFERENCE = 0, 1, 2


class CConfig:
    """Owns one C rpu_config (rpu_config_create ... rpu_config_destroy). ptr is the
    c_void_p to pass to C functions that take `const rpu_config *`."""

    def __init__(self, pairs=()):
        self.ptr = ctypes.c_void_p()
        check(_create(KIND_FLOATING_POINT, ctypes.byref(self.ptr)))
        for key, value in pairs:
            self.set(key, value)

    def set(self, key, value):
        check(_set(self.ptr, key.encode(), str(value).encode()))

    def get(self, key):
        buf = ctypes.create_string_buffer(4096)
        check(_get(self.ptr, key.encode(), buf, len(buf)))
        return buf.value.decode()

    def validate(self):
        """rpu_config_validate: a rule the config breaks raises ConfigError (aihwkit's
        exception for a config that does not fit), with C's message naming the key."""
        raise_for_status(_validate(self.ptr))

    def to_text(self):
        """rpu_config_to_text: every key of the config as INI text."""
        from rpusim import _capi_ckpt  # pylint: disable=import-outside-toplevel
        text = ctypes.c_void_p()
        check(_capi_ckpt.config_to_text(self.ptr, ctypes.byref(text)))
        try:
            return ctypes.string_at(text).decode()
        finally:
            _capi_ckpt.libc_free(text)

    def __del__(self):
        if getattr(self, "ptr", None) is not None and self.ptr.value:
            _destroy(ctypes.byref(self.ptr))


def c_config(rpu_config):
    """The CConfig of an rpusim.configs object (anything with to_keys(): an iterable of
    (C key, value) pairs, "kind" first), validated."""
    cfg = CConfig(rpu_config.to_keys())
    cfg.validate()
    return cfg
