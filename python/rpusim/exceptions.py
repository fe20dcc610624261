"""Exceptions under aihwkit's names (aihwkit.exceptions). Errors that come from the C
library are RPUError (rpusim._lib) with the C message; a C RPU_ERR_MODULE becomes
ModuleError, which is also an RPUError, so `except ModuleError` works as with aihwkit.
rpusim.configs raises its own ConfigError family (rpusim._params) for config fields;
ConfigError here derives from it too."""
from rpusim._lib import RPUError
from rpusim._params import ConfigError as _FieldConfigError

__all__ = ["RPUError", "ModuleError", "ConfigError", "ArgumentError"]

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
