"""aihwkit's compound devices (compound-devices spec §2-§9) under their aihwkit class and
field names and with aihwkit's defaults, rendered onto rpusim's C keys (README "Compound
devices"): device.type from the class, the compound's own fields as device.<field>
(IO and update parameters as device.transfer_forward.<f>, device.refresh_update.<f>, ...),
and sub-device N of unit_cell_devices as device.unit_cell_devices.N.<field> (its
device.type first). MixedPrecisionCompound's device is rpusim's sub-device 0
(device.unit_cell_devices.0.<field>).

Sub-devices are single pulsed devices (ConstantStepDevice ... SoftBoundsReferenceDevice) or,
inside a transfer compound or MixedPrecisionCompound, unit cells of such devices
(VectorUnitCell, ReferenceUnitCell, OneSidedUnitCell: compound spec §1.2; e.g.
TransferCompound(unit_cell_devices=[ReferenceUnitCell(...), ReferenceUnitCell(...)]) or
MixedPrecisionCompound(device=PCMPresetUnitCell())); deeper nesting raises
UnsupportedConfigError, as do IdealDevice / FloatingPointDevice sub-devices (aihwkit refuses
them too). As in aihwkit,
only the top-level construction_seed counts (the sub-devices' are ignored)."""
from rpusim._params import Params, UnsupportedConfigError, field
from rpusim.configs.devices import FloatingPointDevice, IdealDevice, PulsedDevice, _Device
from rpusim.configs.enums import VectorUnitCellUpdatePolicy
from rpusim.configs.io import IOParameters
from rpusim.configs.training import UpdateParameters

__all__ = ["UnitCell", "VectorUnitCell", "ReferenceUnitCell", "OneSidedUnitCell",
           "DifferenceUnitCell", "TransferCompound", "BufferedTransferCompound",
           "ChoppedTransferCompound", "DynamicTransferCompound", "DigitalRankUpdateCell",
           "MixedPrecisionCompound"]

_SUB = "device.unit_cell_devices.%d."


def _sub_device_keys(dev, k, path, outer):
    """The keys of sub-device k: device.unit_cell_devices.k.type first, then its fields
    (without construction_seed, which aihwkit ignores for sub-devices). A unit cell
    (VectorUnitCell, ReferenceUnitCell, OneSidedUnitCell) inside a transfer compound or
    MixedPrecisionCompound renders its own keys and devices under that prefix
    (device.unit_cell_devices.k.unit_cell_devices.m.<field>)."""
    if isinstance(dev, (UnitCell, DigitalRankUpdateCell)):
        if not isinstance(dev, _CELLS):
            raise UnsupportedConfigError(
                "%s = %s: only the unit cells VectorUnitCell, ReferenceUnitCell and "
                "OneSidedUnitCell can be the device of another compound"
                % (path, type(dev).__name__))
        if not isinstance(outer, (TransferCompound, DigitalRankUpdateCell)):
            raise UnsupportedConfigError(
                "%s = %s: a %s holds single pulsed devices; unit cells nest only in the "
                "transfer compounds and MixedPrecisionCompound" % (
                    path, type(dev).__name__, type(outer).__name__))
        for m, inner in enumerate(dev.unit_cell_devices):
            if isinstance(inner, (UnitCell, DigitalRankUpdateCell)):
                raise UnsupportedConfigError(
                    "%s.unit_cell_devices[%d] = %s: a unit cell inside a compound holds "
                    "single pulsed devices" % (path, m, type(inner).__name__))
    elif isinstance(dev, (IdealDevice, FloatingPointDevice)) or not isinstance(dev, PulsedDevice):
        raise UnsupportedConfigError(
            "%s = %s: a compound's devices must be pulsed devices (aihwkit refuses %s too)"
            % (path, type(dev).__name__, type(dev).__name__))
    out = []
    for key, value in dev._render_device(path):
        if key == "device.construction_seed":
            continue
        out.append(((_SUB % k) + key[len("device."):], value))
    return out


class _Compound(Params):
    """A compound device: its C type, own fields rendered under device.*, and devices."""

    _c_type = None

    def _check_c_type(self, path):
        if self._c_type is None:
            raise UnsupportedConfigError(
                "%s: %s is not a device rpusim can simulate (an abstract base class); use "
                "VectorUnitCell, ReferenceUnitCell, OneSidedUnitCell, TransferCompound, "
                "BufferedTransferCompound, ChoppedTransferCompound, DynamicTransferCompound or "
                "MixedPrecisionCompound" % (path, type(self).__name__))

    def _devices(self):
        return list(self.unit_cell_devices)

    def _render_device(self, path):
        """[("device.type", name), ("device.<field>", text), ..., sub-device keys]."""
        self._check_c_type(path)
        why = _check_devices(self._devices())
        if why:
            raise UnsupportedConfigError("%s: %s" % (path, why))
        pairs = [("device.type", self._c_type)] + self._render("device.", path)
        for k, dev in enumerate(self._devices()):
            where = ("%s.device" % path if self._devices_name == "device"
                     else "%s.unit_cell_devices[%d]" % (path, k))
            if isinstance(dev, UnitCell) and not dev.unit_cell_devices:
                raise UnsupportedConfigError(
                    "%s = %s() without devices (aihwkit's default, which must be replaced): "
                    "give a pulsed device, e.g. %s(device=SoftBoundsDevice())"
                    % (where, type(dev).__name__, type(self).__name__)
                    if self._devices_name == "device" else
                    "%s: an empty %s inside a compound" % (where, type(dev).__name__))
            pairs += _sub_device_keys(dev, k, where, self)
        return pairs

    _devices_name = "unit_cell_devices"

    def requires_diffusion(self):
        """Whether any device diffuses after each update (aihwkit's method)."""
        return any(d.requires_diffusion() for d in self._devices())

    def requires_decay(self):
        """Whether any device decays after each update (aihwkit's method)."""
        return any(d.requires_decay() for d in self._devices())


def _check_devices(value):
    if not isinstance(value, (list, tuple)):
        return "unit_cell_devices must be a list of devices"
    for dev in value:
        if not isinstance(dev, (_Device, _Compound)):
            return "unit_cell_devices holds %s, not a device" % type(dev).__name__
    return None


class UnitCell(_Compound):
    """Base of the unit cells (abstract): a list of devices and a construction seed."""

    unit_cell_devices = field(factory=list, kind="any", key=False, check=_check_devices)
    construction_seed = field(0, kind="u64")


class VectorUnitCell(UnitCell):
    """Several devices per cross point; the visible weight is sum_k gamma_k W_k (spec §2)."""

    _c_type = "vector"
    update_policy = field(VectorUnitCellUpdatePolicy.ALL)
    first_update_idx = field(0)
    gamma_vec = field(factory=list, kind="list")


class ReferenceUnitCell(UnitCell):
    """A device and its reference: W = W_0 - W_1, only device 0 updated (spec §3)."""

    _c_type = "reference"
    update_policy = field(VectorUnitCellUpdatePolicy.SINGLE_FIXED)
    first_update_idx = field(0)
    gamma_vec = field(factory=lambda: [1.0, -1.0], kind="list")


class OneSidedUnitCell(UnitCell):
    """A pair g+ / g- of one-directional devices with refresh (spec §4)."""

    _c_type = "one_sided"
    refresh_every = field(0)
    units_in_mbatch = field(True)
    refresh_upper_thres = field(0.75)
    refresh_lower_thres = field(0.25)
    refresh_forward = field(factory=IOParameters, classes=(IOParameters,))
    refresh_update = field(factory=UpdateParameters, classes=(UpdateParameters,))
    copy_inverted = field(False)


class DifferenceUnitCell(OneSidedUnitCell):
    """Deprecated alias of OneSidedUnitCell in aihwkit."""


_CELLS = (VectorUnitCell, ReferenceUnitCell, OneSidedUnitCell)


class TransferCompound(UnitCell):
    """Tiki-Taka v1 (spec §5): a fast array A takes the SGD updates, transfers move them
    into the slow devices. scale_fast_lr (post-1.1) is False by default: aihwkit 1.1.0's
    absolute fast_lr."""

    _c_type = "transfer"
    gamma = field(0.0)
    gamma_vec = field(factory=list, kind="list")
    transfer_every = field(1.0)
    no_self_transfer = field(True)
    transfer_every_vec = field(factory=list, kind="list")
    units_in_mbatch = field(True)
    n_reads_per_transfer = field(1)
    transfer_columns = field(True)
    with_reset_prob = field(0.0)
    random_selection = field(False)
    fast_lr = field(1.0)
    scale_fast_lr = field(False)
    transfer_lr = field(1.0)
    transfer_lr_vec = field(factory=list, kind="list")
    scale_transfer_lr = field(True)
    transfer_forward = field(factory=IOParameters, classes=(IOParameters,))
    transfer_update = field(factory=UpdateParameters, classes=(UpdateParameters,))


def _bl1_update():
    return UpdateParameters(desired_bl=1, update_bl_management=False, update_management=False)


class BufferedTransferCompound(TransferCompound):
    """TTv2 (spec §6): transfers go through a floating-point buffer per source device."""

    _c_type = "buffered_transfer"
    thres_scale = field(1.0)
    step = field(1.0)
    momentum = field(0.1)
    forget_buffer = field(True)
    transfer_update = field(factory=_bl1_update, classes=(UpdateParameters,))


class ChoppedTransferCompound(TransferCompound):
    """c-TTv2 (spec §7): TTv2 with choppers on the fast array; exactly two devices.
    dechop_visible_weight (rpusim's switch, not an aihwkit field) selects aihwkit's post-1.1
    visible weight gamma sigma.A + C of a compound with gamma != 0 (§7.7); False is 1.1.0's
    gamma A + C with the stored, chopped A."""

    _c_type = "chopped_transfer"
    in_chop_prob = field(0.1)
    in_chop_random = field(True)
    out_chop_prob = field(0.0)
    buffer_granularity = field(1.0)
    auto_granularity = field(0.0)
    step = field(1.0)
    momentum = field(0.0)
    forget_buffer = field(True)
    no_buffer = field(False)
    units_in_mbatch = field(False)
    auto_scale = field(False)
    auto_momentum = field(0.99)
    correct_gradient_magnitudes = field(False)
    dechop_visible_weight = field(False)
    transfer_update = field(factory=_bl1_update, classes=(UpdateParameters,))


class DynamicTransferCompound(ChoppedTransferCompound):
    """AGAD (spec §8): chopped transfer with a running-mean reference."""

    _c_type = "dynamic_transfer"
    in_chop_random = field(False)
    experimental_correct_accumulation = field(False)
    buffer_cap = field(0.0)
    tail_weightening = field(5.0)


class DigitalRankUpdateCell(_Compound):
    """Base of the digital rank-update cells (abstract): one analog device."""

    _devices_name = "device"
    device = field(factory=VectorUnitCell, kind="any", key=False)
    construction_seed = field(0, kind="u64")

    def _devices(self):
        return [self.device]


class MixedPrecisionCompound(DigitalRankUpdateCell):
    """Mixed precision (spec §9): the rank update goes into a digital accumulator chi that
    is moved into the analog device in whole pulses. The device (aihwkit's default, an
    empty VectorUnitCell, must be replaced) is rpusim's device.unit_cell_devices.0."""

    _c_type = "mixed_precision"
    transfer_every = field(1)
    n_rows_per_transfer = field(-1)
    random_row = field(False)
    granularity = field(0.0)
    transfer_lr = field(1.0)
    n_x_bins = field(0)
    n_d_bins = field(0)
    stoc_round_x = field(True)
    stoc_round_d = field(True)

