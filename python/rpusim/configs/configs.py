"""The RPU configurations of aihwkit that rpusim implements: FloatingPointRPUConfig,
SingleRPUConfig, InferenceRPUConfig, UnitCellRPUConfig and DigitalRankUpdateRPUConfig
(compound devices), with aihwkit's fields and defaults, and
to_keys(), their rendering onto the C config keys (rpu_config_keys(), the table of INI
files and `--set`): "kind" first, then "device.type" (both reset fields in C), then every
other field. rpusim._config.c_config(cfg) builds and validates the C config.

aihwkit's other RPU configs exist by name and raise UnsupportedConfigError."""
from rpusim._params import Params, UnsupportedConfigError, field, unsupported_class
from rpusim.configs.compounds import DigitalRankUpdateCell, UnitCell
from rpusim.configs.devices import (ConstantStepDevice, FloatingPointDevice, IdealDevice,
                                    _Device)
from rpusim.configs.enums import PulseType
from rpusim.configs.inference import (WeightClipParameter, WeightModifierParameter,
                                      WeightRemapParameter)
from rpusim.configs.io import IOParameters
from rpusim.configs.mapping import MappingParameter
from rpusim.configs.pre_post import PrePostProcessingParameter
from rpusim.configs.runtime import RuntimeParameter
from rpusim.configs.training import UpdateParameters
from rpusim.inference.compensation import BaseDriftCompensation, GlobalDriftCompensation
from rpusim.inference.noise import BaseNoiseModel, PCMLikeNoiseModel

__all__ = ["FloatingPointRPUConfig", "SingleRPUConfig", "InferenceRPUConfig",
           "UnitCellRPUConfig", "DigitalRankUpdateRPUConfig", "TorchInferenceRPUConfig",
           "TorchInferenceRPUConfigIRDropT", "QuantizedTorchInferenceRPUConfig"]


class _RPUConfig(Params):
    """Fields every RPU config has: runtime, mapping, pre_post (aihwkit's RPUConfigBase,
    MappableRPU, PrePostProcessingRPU)."""

    _kind = None
    runtime = field(factory=RuntimeParameter, classes=(RuntimeParameter,), key=False)
    mapping = field(factory=MappingParameter, classes=(MappingParameter,), key=False)
    pre_post = field(factory=PrePostProcessingParameter,
                     classes=(PrePostProcessingParameter,), key=False)

    def to_keys(self):
        """The (C key, text value) pairs of this config: "kind", "device.type", then the
        other fields. Raises UnsupportedConfigError (naming the field) for a feature rpusim
        does not implement. Values are not range-checked here: rpu_config_set and
        rpu_config_validate do that and name the key."""
        path = type(self).__name__
        self.runtime._render("", path + ".runtime")
        self.pre_post._render("", path + ".pre_post")
        device = self._device_keys(path)
        pairs = [("kind", self._kind), device[0]]
        pairs += self._body_keys(path)
        pairs += device[1:]
        pairs += self.mapping._render("mapping.", path + ".mapping")
        return pairs

    def _device_keys(self, path):
        return self.device._render_device(path + ".device")

    def _body_keys(self, path):
        return []


class FloatingPointRPUConfig(_RPUConfig):
    """Exact (floating-point) tiles; the device may decay, diffuse and drift."""

    _kind = "floating_point"
    device = field(factory=FloatingPointDevice, classes=(FloatingPointDevice,), key=False)


class _IOManagedRPUConfig(_RPUConfig):
    forward = field(factory=IOParameters, classes=(IOParameters,), key=False)
    backward = field(factory=IOParameters, classes=(IOParameters,), key=False)
    update = field(factory=UpdateParameters, classes=(UpdateParameters,), key=False)

    def _body_keys(self, path):
        return (self.forward._render("forward.", path + ".forward")
                + self.backward._render("backward.", path + ".backward")
                + self.update._render("update.", path + ".update"))


class SingleRPUConfig(_IOManagedRPUConfig):
    """Analog tiles with one pulsed device per cross point, trained by pulsed updates."""

    _kind = "single"
    device = field(factory=ConstantStepDevice, classes=(_Device,), key=False)


class InferenceRPUConfig(_IOManagedRPUConfig):
    """Hardware-aware training (noisy forward, perfect backward, exact update) and
    inference with programming noise, drift and drift compensation. device, backward and
    update are fixed by aihwkit (not constructor arguments); they can be assigned."""

    _kind = "inference"
    forward = field(factory=IOParameters, classes=(IOParameters,), key=False)
    noise_model = field(factory=PCMLikeNoiseModel, classes=(BaseNoiseModel,), key=False)
    drift_compensation = field(factory=GlobalDriftCompensation,
                               classes=(BaseDriftCompensation,), optional=True, key=False)
    clip = field(factory=WeightClipParameter, classes=(WeightClipParameter,), key=False)
    remap = field(factory=WeightRemapParameter, classes=(WeightRemapParameter,), key=False)
    modifier = field(factory=WeightModifierParameter, classes=(WeightModifierParameter,),
                     key=False)
    device = field(factory=IdealDevice, classes=(_Device,), key=False, init=False)
    backward = field(factory=lambda: IOParameters(is_perfect=True), classes=(IOParameters,),
                     key=False, init=False)
    update = field(factory=lambda: UpdateParameters(pulse_type=PulseType.NONE),
                   classes=(UpdateParameters,), key=False, init=False)

    def _body_keys(self, path):
        comp = self.drift_compensation
        if comp is not None and comp._c_name is None:
            raise UnsupportedConfigError("%s.drift_compensation: %s is not supported; use "
                                         "GlobalDriftCompensation, "
                                         "PerColumnDriftCompensation or None"
                                         % (path, type(comp).__name__))
        return (super()._body_keys(path)
                + self.noise_model._render_noise_model(path + ".noise_model")
                + [("drift_compensation", "none" if comp is None else comp._c_name)]
                + self.clip._render("clip.", path + ".clip")
                + self.remap._render("remap.", path + ".remap")
                + self.modifier._render("modifier.", path + ".modifier"))


class UnitCellRPUConfig(_IOManagedRPUConfig):
    """Analog tiles with a compound device per cross point (unit cells, Tiki-Taka):
    UnitCellRPUConfig(device=TransferCompound(unit_cell_devices=[...])). aihwkit's default
    device, the abstract UnitCell(), must be replaced."""

    _kind = "single"
    device = field(factory=UnitCell, classes=(UnitCell,), key=False)


class DigitalRankUpdateRPUConfig(_IOManagedRPUConfig):
    """Analog forward and backward, the rank update computed digitally:
    DigitalRankUpdateRPUConfig(device=MixedPrecisionCompound(device=...)). The update
    parameters drive the transfer pulses (update management and update BL management are
    forced on, spec §9.1)."""

    _kind = "single"
    device = field(factory=DigitalRankUpdateCell, classes=(DigitalRankUpdateCell,), key=False)


TorchInferenceRPUConfig = unsupported_class(
    "TorchInferenceRPUConfig", _RPUConfig,
    "aihwkit's pure-torch inference tile is not simulated; InferenceRPUConfig gives "
    "aihwkit's RPUCuda inference tile", __name__)
TorchInferenceRPUConfigIRDropT = unsupported_class(
    "TorchInferenceRPUConfigIRDropT", _RPUConfig,
    "time-dependent IR drop is not implemented; use InferenceRPUConfig (forward.ir_drop "
    "models the static IR drop)", __name__)
QuantizedTorchInferenceRPUConfig = unsupported_class(
    "QuantizedTorchInferenceRPUConfig", _RPUConfig,
    "quantized periphery tiles are not implemented; use InferenceRPUConfig", __name__)
