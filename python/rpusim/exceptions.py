"""Exceptions under aihwkit's names (aihwkit.exceptions). Errors that come from the C
library are RPUError (rpusim._lib) with the C message; a C RPU_ERR_MODULE becomes
ModuleError, which is also an RPUError, so `except ModuleError` works as with aihwkit.
rpusim.configs raises its own ConfigError family (rpusim._params) for config fields;
ConfigError here derives from it too."""
from rpusim._lib import RPUError, lib
from rpusim._params import ConfigError as _FieldConfigError

__all__ = ["RPUError", "ModuleError", "ConfigError", "ArgumentError", "raise_for_status"]

RPU_ERR_MODULE = 4
RPU_ERR_CONFIG = 2
RPU_ERR_ARG = 1


class ModuleError(RPUError):
    """A layer cannot be built or used this way (aihwkit's ModuleError)."""

    def __init__(self, message, status=RPU_ERR_MODULE):
        super().__init__(status, message)


class ConfigError(RPUError, _FieldConfigError):
    """A config does not fit the requested use (aihwkit's ConfigError); also an
    rpusim.configs.ConfigError, so one `except ConfigError` catches both kinds."""

    def __init__(self, message, status=RPU_ERR_CONFIG):
        super().__init__(status, message)


class ArgumentError(RPUError, ValueError):
    """A wrong argument (aihwkit's ArgumentError)."""

    def __init__(self, message, status=RPU_ERR_ARG):
        super().__init__(status, message)


def raise_for_status(status):
    """Raises the exception of a nonzero C status with rpu_last_error()'s message:
    ModuleError for RPU_ERR_MODULE, ConfigError for RPU_ERR_CONFIG, else RPUError."""
    if status == 0:
        return
    raw = lib.rpu_last_error()
    msg = raw.decode("utf-8", "replace") if raw else "rpusim error"
    if status == RPU_ERR_MODULE:
        raise ModuleError(msg)
    if status == RPU_ERR_CONFIG:
        raise ConfigError(msg)
    raise RPUError(status, msg)
