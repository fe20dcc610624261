"""aihwkit's compound devices in rpusim.configs (compound-devices spec §2-§9):
UnitCellRPUConfig / DigitalRankUpdateRPUConfig with VectorUnitCell, ReferenceUnitCell,
OneSidedUnitCell, TransferCompound, BufferedTransferCompound, ChoppedTransferCompound,
DynamicTransferCompound, MixedPrecisionCompound.

Checks: the aihwkit defaults of every class (written out here from the spec tables); the
rendered C config equals one built from hand-written C keys (README "Compound devices"
syntax); the errors of configs rpusim cannot run name the field; and a network with a
UnitCellRPUConfig / DigitalRankUpdateRPUConfig trains to the same weights, bit for bit, as
the same network with the hand-written C keys, on COMM_WORLD and on COMM_SELF (rank
invariance: CTest runs this at 1-4 ranks).
"""
import pytest
import torch
from mpi4py import MPI
from torch import nn

import rpusim
from rpusim._config import CConfig, c_config
from rpusim._params import UnsupportedConfigError
from rpusim import configs as C
from rpusim import presets as P
from rpusim.nn import AnalogConv2dMapped, AnalogLinearMapped, AnalogSequential
from rpusim.optim import AnalogSGD

torch.set_num_threads(1)
WORLD, SELF = MPI.COMM_WORLD, MPI.COMM_SELF
POL = C.VectorUnitCellUpdatePolicy


def c_text(pairs):
    return CConfig(pairs).to_text()


# ---------------------------------------------------------------- defaults (spec tables)

SPEC_DEFAULTS = {
    C.VectorUnitCell: dict(unit_cell_devices=[], construction_seed=0, update_policy=POL.ALL,
                           first_update_idx=0, gamma_vec=[]),
    C.ReferenceUnitCell: dict(update_policy=POL.SINGLE_FIXED, first_update_idx=0,
                              gamma_vec=[1.0, -1.0]),
    C.OneSidedUnitCell: dict(refresh_every=0, units_in_mbatch=True, refresh_upper_thres=0.75,
                             refresh_lower_thres=0.25, copy_inverted=False),
    C.TransferCompound: dict(gamma=0.0, gamma_vec=[], transfer_every=1.0,
                             no_self_transfer=True, transfer_every_vec=[],
                             units_in_mbatch=True, n_reads_per_transfer=1,
                             transfer_columns=True, with_reset_prob=0.0,
                             random_selection=False, fast_lr=1.0, scale_fast_lr=False,
                             transfer_lr=1.0, transfer_lr_vec=[], scale_transfer_lr=True),
    C.BufferedTransferCompound: dict(thres_scale=1.0, step=1.0, momentum=0.1,
                                     forget_buffer=True, units_in_mbatch=True),
    C.ChoppedTransferCompound: dict(in_chop_prob=0.1, in_chop_random=True, out_chop_prob=0.0,
                                    buffer_granularity=1.0, auto_granularity=0.0, step=1.0,
                                    momentum=0.0, forget_buffer=True, no_buffer=False,
                                    units_in_mbatch=False, auto_scale=False,
                                    auto_momentum=0.99, correct_gradient_magnitudes=False,
                                    dechop_visible_weight=False),
    C.DynamicTransferCompound: dict(in_chop_prob=0.1, in_chop_random=False,
                                    experimental_correct_accumulation=False, step=1.0,
                                    momentum=0.0, buffer_cap=0.0, tail_weightening=5.0,
                                    units_in_mbatch=False),
    C.MixedPrecisionCompound: dict(transfer_every=1, n_rows_per_transfer=-1, random_row=False,
                                   granularity=0.0, transfer_lr=1.0, n_x_bins=0, n_d_bins=0,
                                   stoc_round_x=True, stoc_round_d=True, construction_seed=0),
}


@pytest.mark.parametrize("cls", list(SPEC_DEFAULTS), ids=lambda c: c.__name__)
def test_spec_defaults(cls):
    obj = cls()
    for name, want in SPEC_DEFAULTS[cls].items():
        assert getattr(obj, name) == want, (cls.__name__, name, getattr(obj, name), want)


def test_transfer_io_defaults():
    # TransferCompound: IOParameters() and UpdateParameters(); buffered family: BL 1, no UM
    t = C.TransferCompound()
    assert t.transfer_forward == C.IOParameters() and t.transfer_update == C.UpdateParameters()
    for cls in (C.BufferedTransferCompound, C.ChoppedTransferCompound,
                C.DynamicTransferCompound):
        up = cls().transfer_update
        assert (up.desired_bl, up.update_bl_management, up.update_management) == (1, False,
                                                                                 False)
    assert isinstance(C.MixedPrecisionCompound().device, C.VectorUnitCell)
    assert C.OneSidedUnitCell().refresh_update == C.UpdateParameters()


# ---------------------------------------------------------------- rendering vs hand-written keys

def sub(k, dev_type, **fields):
    out = [("device.unit_cell_devices.%d.type" % k, dev_type)]
    out += [("device.unit_cell_devices.%d.%s" % (k, f), v) for f, v in fields.items()]
    return out


RENDER_CASES = [
    ("vector",
     C.UnitCellRPUConfig(device=C.VectorUnitCell(
         unit_cell_devices=[C.ConstantStepDevice(dw_min=0.01), C.SoftBoundsDevice(w_max=0.9)],
         update_policy=POL.SINGLE_RANDOM, gamma_vec=[0.5, 0.25])),
     [("kind", "single"), ("device.type", "vector"),
      ("device.update_policy", "single_random"), ("device.gamma_vec", "[0.5, 0.25]")]
     + sub(0, "constant_step", dw_min="0.01") + sub(1, "soft_bounds", w_max="0.9")),
    ("reference",
     C.UnitCellRPUConfig(device=C.ReferenceUnitCell(
         unit_cell_devices=[C.LinearStepDevice(gamma_up=0.1)], first_update_idx=1)),
     [("kind", "single"), ("device.type", "reference"), ("device.first_update_idx", "1")]
     + sub(0, "linear_step", gamma_up="0.1")),
    ("one_sided",
     C.UnitCellRPUConfig(device=C.OneSidedUnitCell(
         unit_cell_devices=[C.ConstantStepDevice(w_max=0.3)], refresh_every=2,
         refresh_forward=C.IOParameters(out_noise=0.02),
         refresh_update=C.UpdateParameters(desired_bl=15))),
     [("kind", "single"), ("device.type", "one_sided"), ("device.refresh_every", "2"),
      ("device.refresh_forward.out_noise", "0.02"), ("device.refresh_update.desired_bl", "15")]
     + sub(0, "constant_step", w_max="0.3")),
    ("transfer",
     C.UnitCellRPUConfig(
         device=C.TransferCompound(
             unit_cell_devices=[C.SoftBoundsDevice(dw_min=0.002),
                                C.SoftBoundsReferenceDevice(subtract_symmetry_point=True)],
             gamma=0.1, n_reads_per_transfer=2, fast_lr=0.5, scale_fast_lr=True,
             transfer_forward=C.IOParameters(out_noise=0.1),
             transfer_update=C.UpdateParameters(desired_bl=5)),
         forward=C.IOParameters(out_noise=0.07)),
     [("kind", "single"), ("device.type", "transfer"), ("forward.out_noise", "0.07"),
      ("device.gamma", "0.1"), ("device.n_reads_per_transfer", "2"), ("device.fast_lr", "0.5"),
      ("device.scale_fast_lr", "true"), ("device.transfer_forward.out_noise", "0.1"),
      ("device.transfer_update.desired_bl", "5")]
     + sub(0, "soft_bounds", dw_min="0.002")
     + sub(1, "soft_bounds_reference", subtract_symmetry_point="true")),
    ("buffered_transfer",
     C.UnitCellRPUConfig(device=C.BufferedTransferCompound(
         unit_cell_devices=[C.SoftBoundsDevice(dw_min=0.002), C.ConstantStepDevice(),
                            C.ConstantStepDevice()],
         gamma=0.1, thres_scale=0.8, step=2.0, momentum=0.2, forget_buffer=False,
         transfer_forward=C.IOParameters(out_noise=0.05))),
     [("kind", "single"), ("device.type", "buffered_transfer"), ("device.gamma", "0.1"),
      ("device.thres_scale", "0.8"), ("device.step", "2"), ("device.momentum", "0.2"),
      ("device.forget_buffer", "false"), ("device.transfer_forward.out_noise", "0.05")]
     + sub(0, "soft_bounds", dw_min="0.002") + sub(1, "constant_step")
     + sub(2, "constant_step")),
    ("chopped_transfer",
     C.UnitCellRPUConfig(device=C.ChoppedTransferCompound(
         unit_cell_devices=[C.SoftBoundsReferenceDevice(subtract_symmetry_point=True),
                            C.ConstantStepDevice(dw_min=0.002)],
         gamma=0.2, transfer_every=-1.0, in_chop_prob=0.3, in_chop_random=False,
         out_chop_prob=0.1, buffer_granularity=0.5, auto_granularity=100.0, no_buffer=True,
         auto_scale=True, auto_momentum=0.9, correct_gradient_magnitudes=True,
         dechop_visible_weight=True)),
     [("kind", "single"), ("device.type", "chopped_transfer"), ("device.gamma", "0.2"),
      ("device.transfer_every", "-1"), ("device.in_chop_prob", "0.3"),
      ("device.in_chop_random", "false"), ("device.out_chop_prob", "0.1"),
      ("device.buffer_granularity", "0.5"), ("device.auto_granularity", "100"),
      ("device.no_buffer", "true"), ("device.auto_scale", "true"),
      ("device.auto_momentum", "0.9"), ("device.correct_gradient_magnitudes", "true"),
      ("device.dechop_visible_weight", "true")]
     + sub(0, "soft_bounds_reference", subtract_symmetry_point="true")
     + sub(1, "constant_step", dw_min="0.002")),
    ("dynamic_transfer",
     C.UnitCellRPUConfig(device=C.DynamicTransferCompound(
         unit_cell_devices=[C.SoftBoundsDevice(), C.ConstantStepDevice()],
         in_chop_prob=0.25, in_chop_random=True, experimental_correct_accumulation=True,
         buffer_cap=3.0, tail_weightening=10.0, fast_lr=0.5,
         transfer_update=C.UpdateParameters(desired_bl=2, update_bl_management=False,
                                            update_management=False))),
     [("kind", "single"), ("device.type", "dynamic_transfer"), ("device.in_chop_prob", "0.25"),
      ("device.in_chop_random", "true"), ("device.experimental_correct_accumulation", "true"),
      ("device.buffer_cap", "3"), ("device.tail_weightening", "10"), ("device.fast_lr", "0.5"),
      ("device.transfer_update.desired_bl", "2")]
     + sub(0, "soft_bounds") + sub(1, "constant_step")),
    ("transfer_of_reference_cells",  # compound spec §1.2: unit cells inside a compound
     C.UnitCellRPUConfig(device=C.TransferCompound(
         unit_cell_devices=[
             C.ReferenceUnitCell(unit_cell_devices=[C.SoftBoundsDevice(dw_min=0.002),
                                                    C.SoftBoundsDevice()]),
             C.VectorUnitCell(unit_cell_devices=[C.ConstantStepDevice()] * 2,
                              update_policy=POL.SINGLE_SEQUENTIAL)],
         gamma=0.1)),
     [("kind", "single"), ("device.type", "transfer"), ("device.gamma", "0.1"),
      ("device.unit_cell_devices.0.type", "reference"),
      ("device.unit_cell_devices.0.unit_cell_devices.0.type", "soft_bounds"),
      ("device.unit_cell_devices.0.unit_cell_devices.0.dw_min", "0.002"),
      ("device.unit_cell_devices.0.unit_cell_devices.1.type", "soft_bounds"),
      ("device.unit_cell_devices.1.type", "vector"),
      ("device.unit_cell_devices.1.update_policy", "single_sequential"),
      ("device.unit_cell_devices.1.unit_cell_devices.0.type", "constant_step"),
      ("device.unit_cell_devices.1.unit_cell_devices.1.type", "constant_step")]),
    ("mixed_precision_one_sided",
     C.DigitalRankUpdateRPUConfig(device=C.MixedPrecisionCompound(
         device=C.OneSidedUnitCell(unit_cell_devices=[C.ConstantStepDevice(w_max=0.3)],
                                   refresh_every=1),
         n_rows_per_transfer=2)),
     [("kind", "single"), ("device.type", "mixed_precision"),
      ("device.n_rows_per_transfer", "2"),
      ("device.unit_cell_devices.0.type", "one_sided"),
      ("device.unit_cell_devices.0.refresh_every", "1"),
      ("device.unit_cell_devices.0.unit_cell_devices.0.type", "constant_step"),
      ("device.unit_cell_devices.0.unit_cell_devices.0.w_max", "0.3")]),
    ("mixed_precision",
     C.DigitalRankUpdateRPUConfig(
         device=C.MixedPrecisionCompound(device=C.ExpStepDevice(dw_min=0.003), n_x_bins=8,
                                         n_d_bins=6, transfer_every=2, random_row=True,
                                         n_rows_per_transfer=3, granularity=0.004,
                                         transfer_lr=0.5, stoc_round_d=False),
         update=C.UpdateParameters(desired_bl=10)),
     [("kind", "single"), ("device.type", "mixed_precision"), ("update.desired_bl", "10"),
      ("device.n_x_bins", "8"), ("device.n_d_bins", "6"), ("device.transfer_every", "2"),
      ("device.random_row", "true"), ("device.n_rows_per_transfer", "3"),
      ("device.granularity", "0.004"), ("device.transfer_lr", "0.5"),
      ("device.stoc_round_d", "false")]
     + sub(0, "exp_step", dw_min="0.003")),
]


@pytest.mark.parametrize("name,cfg,pairs", RENDER_CASES, ids=[c[0] for c in RENDER_CASES])
def test_rendering_equals_hand_written_keys(name, cfg, pairs):
    assert c_text(cfg.to_keys()) == c_text(pairs), name
    c_config(cfg)  # and validates


def test_sub_device_keys_shape():
    keys = [k for k, _ in C.UnitCellRPUConfig(device=C.TransferCompound(
        unit_cell_devices=[C.SoftBoundsDevice(), C.ConstantStepDevice()])).to_keys()]
    i0 = keys.index("device.unit_cell_devices.0.type")
    i1 = keys.index("device.unit_cell_devices.1.type")
    assert keys.index("device.type") < i0 < keys.index("device.unit_cell_devices.0.dw_min") < i1
    assert "device.unit_cell_devices.0.construction_seed" not in keys  # aihwkit ignores it
    assert "device.transfer_forward.out_noise" in keys
    assert "device.transfer_update.desired_bl" in keys


def test_presets_equal_c_presets():
    names = {"MixedPrecisionReRamESPreset": "mixed_precision_reram_es",
             "MixedPrecisionReRamSBPreset": "mixed_precision_reram_sb",
             "MixedPrecisionCapacitorPreset": "mixed_precision_capacitor",
             "MixedPrecisionEcRamPreset": "mixed_precision_ecram",
             "MixedPrecisionEcRamMOPreset": "mixed_precision_ecram_mo",
             "MixedPrecisionIdealizedPreset": "mixed_precision_idealized",
             "MixedPrecisionGokmenVlasovPreset": "mixed_precision_gokmen_vlasov"}
    for fam, c in (("ReRamES", "reram_es"), ("ReRamSB", "reram_sb"),
                   ("Capacitor", "capacitor"), ("EcRam", "ecram"), ("EcRamMO", "ecram_mo"),
                   ("Idealized", "idealized")):
        names["%s2Preset" % fam] = c + "2"
        names["%s4Preset" % fam] = c + "4"
        names["TikiTaka%sPreset" % fam] = "tiki_taka_" + c
        names["TTv2%sPreset" % fam] = "ttv2_" + c
        names["ChoppedTTv2%sPreset" % fam] = "chopped_ttv2_" + c
        names["AGAD%sPreset" % fam] = "agad_" + c
    names["PCMPreset"] = "pcm"
    names["MixedPrecisionPCMPreset"] = "mixed_precision_pcm"
    for cls, cname in names.items():
        assert c_text(getattr(P, cls)().to_keys()) == c_text([("preset", cname)]), cls
    assert len(P.ReRamSB4Preset().device.unit_cell_devices) == 4
    assert isinstance(P.MixedPrecisionReRamSBPreset().device.device, P.ReRamSBPresetDevice)
    assert isinstance(P.PCMPreset().device, P.PCMPresetUnitCell)
    assert P.PCMPresetUnitCell().refresh_every == 1
    # spec §10.3: MixedPrecisionPCMPreset's device is PCMPresetUnitCell (a cell inside)
    mp = dict(P.MixedPrecisionPCMPreset().to_keys())
    assert isinstance(P.MixedPrecisionPCMPreset().device.device, P.PCMPresetUnitCell)
    assert mp["device.type"] == "mixed_precision"
    assert mp["device.unit_cell_devices.0.type"] == "one_sided"
    assert mp["device.unit_cell_devices.0.refresh_every"] == "1"
    assert mp["device.unit_cell_devices.0.unit_cell_devices.1.type"] == "exp_step"
    assert mp["device.unit_cell_devices.0.unit_cell_devices.1.A_up"] == "-27.235"
    # spec §10.3, written out: ReRamSB's Tiki-Taka devices subtract their symmetry point
    tt = dict(P.TikiTakaReRamSBPreset().to_keys())
    assert tt["device.type"] == "transfer"
    assert tt["device.unit_cell_devices.1.subtract_symmetry_point"] == "true"
    assert tt["device.transfer_forward.noise_management"] == "none"
    assert tt["device.transfer_forward.bound_management"] == "none"
    assert tt["device.units_in_mbatch"] == "true"
    assert CConfig(P.TikiTakaCapacitorPreset().to_keys()).get(
        "device.unit_cell_devices.0.subtract_symmetry_point") == "false"
    # spec §10.3, written out: the transfer-family presets (ReRamSB rows subtract the
    # symmetry point too; the main update BL and the family's values)
    for cls, typ, chop, bl in ((P.TTv2ReRamSBPreset, "chopped_transfer", "0", "31"),
                               (P.ChoppedTTv2ReRamSBPreset, "chopped_transfer", "0.01", "31"),
                               (P.AGADReRamSBPreset, "dynamic_transfer", "0.02", "31"),
                               (P.TTv2IdealizedPreset, "chopped_transfer", "0", "100"),
                               (P.AGADEcRamPreset, "dynamic_transfer", "0.005", "31")):
        k = CConfig(cls().to_keys())
        assert (k.get("device.type"), k.get("device.in_chop_prob"),
                k.get("update.desired_bl")) == (typ, chop, bl), cls.__name__
        assert k.get("device.auto_scale") == "true", cls.__name__
        assert k.get("device.units_in_mbatch") == "false", cls.__name__
        assert k.get("device.transfer_update.desired_bl") == "1", cls.__name__
        assert k.get("device.transfer_forward.noise_management") == "none", cls.__name__
        sym = "true" if "ReRamSB" in cls.__name__ else "false"
        for d in (0, 1):
            assert k.get("device.unit_cell_devices.%d.subtract_symmetry_point" % d) == sym
    assert CConfig(P.AGADEcRamPreset().to_keys()).get("device.tail_weightening") == "50"
    assert CConfig(P.ChoppedTTv2EcRamPreset().to_keys()).get("device.fast_lr") == "1"


# ---------------------------------------------------------------- errors

def test_errors_name_the_field():
    with pytest.raises(UnsupportedConfigError, match=r"MixedPrecisionCompound.*device"):
        C.DigitalRankUpdateRPUConfig(device=C.MixedPrecisionCompound()).to_keys()
    # unit cells nest in transfer compounds and mixed precision only, one level deep
    with pytest.raises(UnsupportedConfigError,
                       match=r"unit_cell_devices\[1\] = ReferenceUnitCell: a VectorUnitCell "
                             r"holds single"):
        C.UnitCellRPUConfig(device=C.VectorUnitCell(unit_cell_devices=[
            C.SoftBoundsDevice(),
            C.ReferenceUnitCell(unit_cell_devices=[C.SoftBoundsDevice()])])).to_keys()
    with pytest.raises(UnsupportedConfigError,
                       match=r"unit_cell_devices\[0\] = TransferCompound: only the unit cells"):
        C.UnitCellRPUConfig(device=C.TransferCompound(unit_cell_devices=[
            C.TransferCompound(unit_cell_devices=[C.SoftBoundsDevice()] * 2),
            C.SoftBoundsDevice()])).to_keys()
    with pytest.raises(UnsupportedConfigError,
                       match=r"unit_cell_devices\[1\].unit_cell_devices\[0\] = VectorUnitCell"):
        C.UnitCellRPUConfig(device=C.TransferCompound(unit_cell_devices=[
            C.SoftBoundsDevice(),
            C.VectorUnitCell(unit_cell_devices=[
                C.VectorUnitCell(unit_cell_devices=[C.SoftBoundsDevice()])])])).to_keys()
    with pytest.raises(UnsupportedConfigError, match=r"unit_cell_devices\[0\] = IdealDevice"):
        C.UnitCellRPUConfig(device=C.VectorUnitCell(
            unit_cell_devices=[C.IdealDevice()])).to_keys()
    with pytest.raises(UnsupportedConfigError, match="abstract"):
        C.UnitCellRPUConfig().to_keys()
    with pytest.raises(C.ConfigError, match="UnitCellRPUConfig.device"):
        C.UnitCellRPUConfig(device=C.SoftBoundsDevice())
    with pytest.raises(C.UnknownFieldError, match="fast_lr"):
        C.MixedPrecisionCompound(fast_lr=0.1)
    # C's rules, named by key: a transfer compound of one device, n_x_bins 1
    with pytest.raises(rpusim.RPUError, match="unit_cell_devices"):
        c_config(C.UnitCellRPUConfig(device=C.TransferCompound(
            unit_cell_devices=[C.SoftBoundsDevice()])))
    with pytest.raises(rpusim.RPUError, match="device.n_x_bins"):
        c_config(C.DigitalRankUpdateRPUConfig(device=C.MixedPrecisionCompound(
            device=C.SoftBoundsDevice(), n_x_bins=1)))


# ---------------------------------------------------------------- networks

class Keys:
    """A config given as hand-written C keys (what an experiment file says)."""

    def __init__(self, pairs):
        self.pairs = pairs

    def to_keys(self):
        return self.pairs


MAP = [("mapping.max_input_size", "18"), ("mapping.max_output_size", "3")]


def _visible(cfg):
    """cfg with gamma 0.1: the fast array is part of the visible weight (a fully hidden
    compound may not transfer in the few steps trained)."""
    cfg.device.gamma = 0.1
    return cfg


NET_CASES = [
    ("transfer",
     C.UnitCellRPUConfig(
         device=C.TransferCompound(
             unit_cell_devices=[C.SoftBoundsDevice(), C.ConstantStepDevice(dw_min=0.002)],
             gamma=0.1, with_reset_prob=0.2,
             transfer_forward=C.IOParameters(out_noise=0.1)),
         mapping=C.MappingParameter(max_input_size=18, max_output_size=3)),
     [("kind", "single"), ("device.type", "transfer"), ("device.gamma", "0.1"),
      ("device.with_reset_prob", "0.2"), ("device.transfer_forward.out_noise", "0.1")]
     + sub(0, "soft_bounds") + sub(1, "constant_step", dw_min="0.002") + MAP),
    ("mixed_precision",
     C.DigitalRankUpdateRPUConfig(
         device=C.MixedPrecisionCompound(device=C.SoftBoundsReferenceDevice(
             reference_std=0.05), n_x_bins=9, n_d_bins=7, n_rows_per_transfer=1,
             random_row=True),
         mapping=C.MappingParameter(max_input_size=18, max_output_size=3)),
     [("kind", "single"), ("device.type", "mixed_precision"), ("device.n_x_bins", "9"),
      ("device.n_d_bins", "7"), ("device.n_rows_per_transfer", "1"),
      ("device.random_row", "true")]
     + sub(0, "soft_bounds_reference", reference_std="0.05") + MAP),
    ("buffered_transfer",
     C.UnitCellRPUConfig(
         device=C.BufferedTransferCompound(
             unit_cell_devices=[C.SoftBoundsDevice(), C.ConstantStepDevice(dw_min=0.002),
                                C.ConstantStepDevice(dw_min=0.002)],
             gamma=0.1, thres_scale=0.5, transfer_forward=C.IOParameters(out_noise=0.05)),
         mapping=C.MappingParameter(max_input_size=18, max_output_size=3)),
     [("kind", "single"), ("device.type", "buffered_transfer"), ("device.gamma", "0.1"),
      ("device.thres_scale", "0.5"), ("device.transfer_forward.out_noise", "0.05")]
     + sub(0, "soft_bounds") + sub(1, "constant_step", dw_min="0.002")
     + sub(2, "constant_step", dw_min="0.002") + MAP),
    ("chopped_transfer",
     C.UnitCellRPUConfig(
         device=C.ChoppedTransferCompound(
             unit_cell_devices=[C.SoftBoundsDevice(), C.ConstantStepDevice(dw_min=0.002)],
             in_chop_prob=0.3, out_chop_prob=0.1, auto_scale=True, buffer_granularity=0.2,
             gamma=0.1, dechop_visible_weight=True),
         mapping=C.MappingParameter(max_input_size=18, max_output_size=3)),
     [("kind", "single"), ("device.type", "chopped_transfer"), ("device.in_chop_prob", "0.3"),
      ("device.out_chop_prob", "0.1"), ("device.auto_scale", "true"),
      ("device.buffer_granularity", "0.2"), ("device.gamma", "0.1"),
      ("device.dechop_visible_weight", "true")]
     + sub(0, "soft_bounds") + sub(1, "constant_step", dw_min="0.002") + MAP),
    ("dynamic_transfer",
     C.UnitCellRPUConfig(
         device=C.DynamicTransferCompound(
             unit_cell_devices=[C.SoftBoundsDevice(), C.ConstantStepDevice(dw_min=0.002)],
             in_chop_prob=0.25, in_chop_random=True, buffer_granularity=0.2, gamma=0.1),
         mapping=C.MappingParameter(max_input_size=18, max_output_size=3)),
     [("kind", "single"), ("device.type", "dynamic_transfer"), ("device.in_chop_prob", "0.25"),
      ("device.in_chop_random", "true"), ("device.buffer_granularity", "0.2"),
      ("device.gamma", "0.1")]
     + sub(0, "soft_bounds") + sub(1, "constant_step", dw_min="0.002") + MAP),
    ("agad_preset", _visible(P.AGADReRamSBPreset(
        mapping=C.MappingParameter(max_input_size=18, max_output_size=3))),
     [("preset", "agad_reram_sb"), ("device.gamma", "0.1")] + MAP),
    ("vector",
     P.ReRamSB2Preset(mapping=C.MappingParameter(max_input_size=18, max_output_size=3)),
     [("preset", "reram_sb2")] + MAP),
    ("nested_chopped",  # a vector cell as fast device, a refreshing one_sided cell as slow
     C.UnitCellRPUConfig(
         device=C.ChoppedTransferCompound(
             unit_cell_devices=[
                 C.VectorUnitCell(unit_cell_devices=[C.SoftBoundsDevice()] * 2,
                                  update_policy=POL.SINGLE_RANDOM),
                 C.OneSidedUnitCell(unit_cell_devices=[C.ConstantStepDevice(w_max=0.2)],
                                    refresh_every=1, refresh_upper_thres=0.05,
                                    refresh_lower_thres=0.01)],
             in_chop_prob=0.3, auto_scale=True),
         mapping=C.MappingParameter(max_input_size=18, max_output_size=3)),
     [("kind", "single"), ("device.type", "chopped_transfer"), ("device.in_chop_prob", "0.3"),
      ("device.auto_scale", "true"),
      ("device.unit_cell_devices.0.type", "vector"),
      ("device.unit_cell_devices.0.update_policy", "single_random"),
      ("device.unit_cell_devices.0.unit_cell_devices.0.type", "soft_bounds"),
      ("device.unit_cell_devices.0.unit_cell_devices.1.type", "soft_bounds"),
      ("device.unit_cell_devices.1.type", "one_sided"),
      ("device.unit_cell_devices.1.refresh_every", "1"),
      ("device.unit_cell_devices.1.refresh_upper_thres", "0.05"),
      ("device.unit_cell_devices.1.refresh_lower_thres", "0.01"),
      ("device.unit_cell_devices.1.unit_cell_devices.0.type", "constant_step"),
      ("device.unit_cell_devices.1.unit_cell_devices.0.w_max", "0.2")] + MAP),
    ("mixed_precision_pcm_preset",
     P.MixedPrecisionPCMPreset(mapping=C.MappingParameter(max_input_size=18,
                                                           max_output_size=3)),
     [("preset", "mixed_precision_pcm")] + MAP),
]


def build(comm, cfg):
    rpusim.manual_seed(2024)
    return AnalogSequential(
        AnalogConv2dMapped(2, 5, 3, padding=1, rpu_config=cfg, comm=comm),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        AnalogLinearMapped(5 * 3 * 3, 4, rpu_config=cfg, comm=comm))


def train(model, steps=3):
    gen = torch.Generator().manual_seed(9)
    opt = AnalogSGD(model.parameters(), lr=0.2)
    opt.regroup_param_groups(model)
    losses = []
    for _ in range(steps):
        x, t = torch.rand(6, 2, 6, 6, generator=gen), torch.randint(0, 4, (6,), generator=gen)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), t)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def weights(model):
    out = []
    for m in model.analog_layers():
        w, b = m.get_weights()
        out.append(w.numpy().tobytes())
        out.append(b.detach().numpy().tobytes() if b is not None else b"")
    return out


@pytest.mark.parametrize("name,cfg,pairs", NET_CASES, ids=[c[0] for c in NET_CASES])
def test_network_matches_c_keys_and_is_rank_invariant(name, cfg, pairs):
    runs = {}
    for label, conf, comm in (("py-world", cfg, WORLD), ("c-world", Keys(pairs), WORLD),
                              ("py-self", cfg, SELF)):
        model = build(comm, conf)
        before = weights(model)
        losses = train(model)
        runs[label] = (losses, weights(model))
        assert runs[label][1] != before, (name, label, "training changed nothing")
    assert runs["py-world"] == runs["c-world"], name
    assert runs["py-world"] == runs["py-self"], name
    every = WORLD.allgather(runs["py-world"])
    assert all(e == every[0] for e in every), name
