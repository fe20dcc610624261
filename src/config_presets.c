/* rpusim — named presets (aihwkit.simulator.presets, spec compound-devices.md §10) and the
 * order in which a text's resetting keys are applied.
 *
 * A preset is data: a list of "key = value" texts applied with config_set_key, so that
 * every value is range-checked like a user's and a preset can use any key there is,
 * including another preset (the config presets name their device by "device.preset").
 *   - device presets (aihwkit's *PresetDevice classes): a device type and device fields,
 *     keys relative to the device prefix ("dw_min"), applied under "device." (the key
 *     "device.preset") or under any prefix P whose "P type" is a device-type key, so a
 *     compound's sub-device can take one ("device.unit_cell_devices.0.preset");
 *   - config presets (aihwkit's *Preset RPU configs): full keys, "kind" first; the
 *     compound presets of §10.3 are rows of the same table once their keys exist.
 * Keys "preset" and "P preset" are directives, not fields: rpu_config_write prints the
 * keys they set (see config.h).
 *
 * No mutable static state. */
#include "config_table_impl.h"

#include "rpusim/config.h"

#include "error_impl.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *key, *value;
} preset_kv;

typedef struct {
    const char *name;    /* config text spelling */
    const char *aihwkit; /* aihwkit class it stands for */
    const preset_kv *kv; /* applied in order; NULL-key terminated */
} preset;

/* ---------------------------------------------------------------------------------------
 * Device presets (spec §10.2; fields not listed keep the defaults of the device type).
 * Keys are relative to the device prefix; "type" comes first (it resets the device).
 * ------------------------------------------------------------------------------------- */

/* ReRamESPresetDevice: ExpStep fit to Gong et al., Nat. Commun. 2018. */
static const preset_kv dev_reram_es[] = {{"type", "exp_step"},
                                         {"dw_min", "0.00135"},
                                         {"up_down", "0.259359"},
                                         {"w_max", "1.0"},
                                         {"w_min", "-1.0"},
                                         {"a", "-0.5"},
                                         {"b", "-0.5"},
                                         {"gamma_up", "5.0"},
                                         {"gamma_down", "5.0"},
                                         {"A_up", "-1.18445"},
                                         {"A_down", "-0.081404"},
                                         {"dw_min_dtod", "0.2"},
                                         {"up_down_dtod", "0.05"},
                                         {"w_max_dtod", "0.3"},
                                         {"w_min_dtod", "0.3"},
                                         {"dw_min_std", "5.0"},
                                         {"write_noise_std", "75.0"},
                                         {NULL, NULL}};

/* ReRamSBPresetDevice: aihwkit's SoftBoundsReferenceDevice (additive cycle-to-cycle noise,
 * reference fields at their defaults; the Tiki-Taka family of presets sets
 * subtract_symmetry_point). w_max_dtod = 0.3/1.25, w_min_dtod = 0.3/0.75. */
static const preset_kv dev_reram_sb[] = {{"type", "soft_bounds_reference"},
                                         {"dw_min", "0.002"},
                                         {"up_down", "0.0"},
                                         {"w_max", "1.25"},
                                         {"w_min", "-0.75"},
                                         {"mult_noise", "false"},
                                         {"dw_min_dtod", "0.3"},
                                         {"up_down_dtod", "0.01"},
                                         {"w_max_dtod", "0.24"},
                                         {"w_min_dtod", "0.4"},
                                         {"dw_min_std", "3.75"},
                                         {"write_noise_std", "56"},
                                         {NULL, NULL}};

/* CapacitorPresetDevice: LinearStep fit to Li et al., VLSI 2018, with leakage (lifetime
 * counted in mini-batches). */
static const preset_kv dev_capacitor[] = {{"type", "linear_step"},
                                          {"dw_min", "0.005"},
                                          {"up_down", "0.0"},
                                          {"w_max", "1.0"},
                                          {"w_min", "-1.0"},
                                          {"mult_noise", "false"},
                                          {"gamma_up", "0.05"},
                                          {"gamma_down", "0.05"},
                                          {"dw_min_dtod", "0.1"},
                                          {"up_down_dtod", "0.06"},
                                          {"w_max_dtod", "0.07"},
                                          {"w_min_dtod", "0.07"},
                                          {"gamma_up_dtod", "0.01"},
                                          {"gamma_down_dtod", "0.01"},
                                          {"dw_min_std", "0.3"},
                                          {"write_noise_std", "0.0"},
                                          {"mean_bound_reference", "true"},
                                          {"lifetime", "1e6"},
                                          {"lifetime_dtod", "0.3"},
                                          {NULL, NULL}};

/* EcRamPresetDevice: LinearStep fit to Tang et al., IEDM 2018 (Li-based ECRAM). */
static const preset_kv dev_ecram[] = {{"type", "linear_step"},
                                      {"dw_min", "0.002"},
                                      {"up_down", "0.0"},
                                      {"w_max", "1.1724"},
                                      {"w_min", "-0.8276"},
                                      {"mult_noise", "true"},
                                      {"gamma_up", "0.1153"},
                                      {"gamma_down", "0.5085"},
                                      {"dw_min_dtod", "0.1"},
                                      {"up_down_dtod", "0.01"},
                                      {"w_max_dtod", "0.05"},
                                      {"w_min_dtod", "0.05"},
                                      {"gamma_up_dtod", "0.05"},
                                      {"gamma_down_dtod", "0.05"},
                                      {"dw_min_std", "0.3"},
                                      {"write_noise_std", "0.0"},
                                      {"mean_bound_reference", "true"},
                                      {NULL, NULL}};

/* EcRamMOPresetDevice: LinearStep, metal-oxide ECRAM (Kim et al., IEDM 2019). */
static const preset_kv dev_ecram_mo[] = {{"type", "linear_step"},
                                         {"dw_min", "2.8214e-4"},
                                         {"up_down", "0.0"},
                                         {"w_max", "1.1714"},
                                         {"w_min", "-0.8286"},
                                         {"mult_noise", "true"},
                                         {"gamma_up", "0.4152"},
                                         {"gamma_down", "0.7342"},
                                         {"dw_min_dtod", "0.1"},
                                         {"up_down_dtod", "0.01"},
                                         {"w_max_dtod", "0.05"},
                                         {"w_min_dtod", "0.05"},
                                         {"gamma_up_dtod", "0.05"},
                                         {"gamma_down_dtod", "0.05"},
                                         {"dw_min_std", "2.0"},
                                         {"write_noise_std", "0.0"},
                                         {"mean_bound_reference", "true"},
                                         {NULL, NULL}};

/* IdealizedPresetDevice: ConstantStep, symmetric on average, about 10000 states. */
static const preset_kv dev_idealized[] = {
    {"type", "constant_step"}, {"dw_min", "0.0002"}, {"dw_min_dtod", "0.3"},
    {"dw_min_std", "0.3"},     {"up_down", "0.0"},   {"up_down_dtod", "0.0"},
    {"w_max", "1.0"},          {"w_min", "-1.0"},    {"w_max_dtod", "0.3"},
    {"w_min_dtod", "0.3"},     {NULL, NULL}};

/* GokmenVlasovPresetDevice: ConstantStep after Gokmen & Vlasov 2016, range -1..1. */
static const preset_kv dev_gokmen_vlasov[] = {
    {"type", "constant_step"}, {"dw_min", "0.0016"}, {"dw_min_dtod", "0.3"},
    {"dw_min_std", "0.3"},     {"up_down", "0.0"},   {"up_down_dtod", "0.01"},
    {"w_max", "1.0"},          {"w_min", "-1.0"},    {"w_max_dtod", "0.3"},
    {"w_min_dtod", "0.3"},     {NULL, NULL}};

/* PCMPresetDevice: ExpStep with complex noise (Nandakumar et al. 2020); one-directional,
 * meant for aihwkit's PCMPresetUnitCell (a one-sided pair with refresh). */
static const preset_kv dev_pcm[] = {{"type", "exp_step"},
                                    {"dw_min", "0.01"},
                                    {"up_down", "0.0"},
                                    {"w_max", "2.0"},
                                    {"w_min", "0.0"},
                                    {"a", "-1.0"},
                                    {"b", "0.0"},
                                    {"gamma_up", "2.5"},
                                    {"gamma_down", "2.5"},
                                    {"A_up", "-27.235"},
                                    {"A_down", "-2.235"},
                                    {"dw_min_dtod", "0.2"},
                                    {"up_down_dtod", "0.05"},
                                    {"w_max_dtod", "0.1"},
                                    {"w_min_dtod", "0.0"},
                                    {"dw_min_std", "0.6"},
                                    {"dw_min_std_add", "0.042"},
                                    {"dw_min_std_slope", "0.108"},
                                    {"write_noise_std", "0.0"},
                                    {"reset", "0.01"},
                                    {"reset_dtod", "0.02"},
                                    {NULL, NULL}};

/* X(name, aihwkit class, key list) */
#define DEVICE_PRESETS(X)                                                                          \
    X("reram_es", "ReRamESPresetDevice", dev_reram_es)                                             \
    X("reram_sb", "ReRamSBPresetDevice", dev_reram_sb)                                             \
    X("capacitor", "CapacitorPresetDevice", dev_capacitor)                                         \
    X("ecram", "EcRamPresetDevice", dev_ecram)                                                     \
    X("ecram_mo", "EcRamMOPresetDevice", dev_ecram_mo)                                             \
    X("idealized", "IdealizedPresetDevice", dev_idealized)                                         \
    X("gokmen_vlasov", "GokmenVlasovPresetDevice", dev_gokmen_vlasov)                              \
    X("pcm", "PCMPresetDevice", dev_pcm)

#define AS_PRESET(name, cls, kv) {name, cls, kv},
#define AS_NAME(name, cls, kv) name,

static const preset device_presets[] = {DEVICE_PRESETS(AS_PRESET)};
static const char *const device_preset_names[] = {DEVICE_PRESETS(AS_NAME) NULL};
#define N_DEVICE_PRESETS (sizeof device_presets / sizeof device_presets[0])

/* ---------------------------------------------------------------------------------------
 * Config presets (spec §10.1, §10.3).
 * ------------------------------------------------------------------------------------- */

/* PresetIOParameters: IOParameters with out_bound 20 and out_noise 0.1, the rest restated
 * as aihwkit does (7-bit DAC, 9-bit ADC, iterative BM, abs_max NM, no weight noise). */
#define PRESET_IO(P)                                                                               \
    {P "bound_management", "iterative"}, {P "noise_management", "abs_max"},                        \
        {P "inp_res", "0.00793650793650794"}, /* 1/126 */                                          \
        {P "inp_sto_round", "false"}, {P "out_bound", "20.0"}, {P "out_noise", "0.1"},             \
        {P "out_res", "0.00196078431372549"}, /* 1/510 */                                          \
        {P "w_noise", "0.0"}, {                                                                    \
        P "w_noise_type", "none"                                                                   \
    }

/* PresetUpdateParameters: the UpdateParameters defaults, restated. */
#define PRESET_UPDATE(P)                                                                           \
    {P "desired_bl", "31"}, {P "pulse_type", "stochastic_compressed"},                             \
        {P "update_bl_management", "true"}, {                                                      \
        P "update_management", "true"                                                              \
    }

/* SingleRPUConfig(device=<X>PresetDevice(), forward=backward=PresetIOParameters(),
 * update=PresetUpdateParameters()). */
#define SINGLE_PRESET(var, dev)                                                                    \
    static const preset_kv var[] = {{"kind", "single"},       {"device.preset", dev},              \
                                    PRESET_IO("forward."),    PRESET_IO("backward."),              \
                                    PRESET_UPDATE("update."), {NULL, NULL}};

SINGLE_PRESET(cfg_reram_es, "reram_es")
SINGLE_PRESET(cfg_reram_sb, "reram_sb")
SINGLE_PRESET(cfg_capacitor, "capacitor")
SINGLE_PRESET(cfg_ecram, "ecram")
SINGLE_PRESET(cfg_ecram_mo, "ecram_mo")
SINGLE_PRESET(cfg_idealized, "idealized")
SINGLE_PRESET(cfg_gokmen_vlasov, "gokmen_vlasov")

/* MixedPrecision<X>Preset (§10.3): DigitalRankUpdateRPUConfig(device=MixedPrecisionCompound(
 * device=<X>PresetDevice())) with all compound defaults (transfer every call, all rows, no
 * quantisation, epsilon = the device's granularity, lambda 1); the update parameters (used
 * for the transfer pulses) are PresetUpdateParameters. */
#define MIXED_PRESET(var, dev)                                                                     \
    static const preset_kv var[] = {{"kind", "single"},                                            \
                                    {"device.type", "mixed_precision"},                            \
                                    {"device.unit_cell_devices.0.preset", dev},                    \
                                    PRESET_IO("forward."),                                         \
                                    PRESET_IO("backward."),                                        \
                                    PRESET_UPDATE("update."),                                      \
                                    {NULL, NULL}};

MIXED_PRESET(cfg_mp_reram_es, "reram_es")
MIXED_PRESET(cfg_mp_reram_sb, "reram_sb")
MIXED_PRESET(cfg_mp_capacitor, "capacitor")
MIXED_PRESET(cfg_mp_ecram, "ecram")
MIXED_PRESET(cfg_mp_ecram_mo, "ecram_mo")
MIXED_PRESET(cfg_mp_idealized, "idealized")
MIXED_PRESET(cfg_mp_gokmen_vlasov, "gokmen_vlasov")

/* MixedPrecisionPCMPreset (§10.3): the mixed-precision compound whose device is
 * PCMPresetUnitCell, a one_sided cell of two PCMPresetDevices refreshed after every update
 * call of the cell (refresh_forward PresetIOParameters, refresh_update BL 31): a unit cell
 * inside a compound (compound spec §1.2). */
static const preset_kv cfg_mp_pcm[] = {
    {"kind", "single"},
    {"device.type", "mixed_precision"},
    {"device.unit_cell_devices.0.type", "one_sided"},
    {"device.unit_cell_devices.0.unit_cell_devices.0.preset", "pcm"},
    {"device.unit_cell_devices.0.unit_cell_devices.1.preset", "pcm"},
    {"device.unit_cell_devices.0.refresh_every", "1"},
    {"device.unit_cell_devices.0.units_in_mbatch", "true"},
    PRESET_IO("device.unit_cell_devices.0.refresh_forward."),
    PRESET_UPDATE("device.unit_cell_devices.0.refresh_update."),
    PRESET_IO("forward."),
    PRESET_IO("backward."),
    PRESET_UPDATE("update."),
    {NULL, NULL}};

#define MIXED_PRECISION_PRESETS(X)                                                                 \
    X("mixed_precision_reram_es", "MixedPrecisionReRamESPreset", cfg_mp_reram_es)                  \
    X("mixed_precision_reram_sb", "MixedPrecisionReRamSBPreset", cfg_mp_reram_sb)                  \
    X("mixed_precision_capacitor", "MixedPrecisionCapacitorPreset", cfg_mp_capacitor)              \
    X("mixed_precision_ecram", "MixedPrecisionEcRamPreset", cfg_mp_ecram)                          \
    X("mixed_precision_ecram_mo", "MixedPrecisionEcRamMOPreset", cfg_mp_ecram_mo)                  \
    X("mixed_precision_idealized", "MixedPrecisionIdealizedPreset", cfg_mp_idealized)              \
    X("mixed_precision_gokmen_vlasov", "MixedPrecisionGokmenVlasovPreset", cfg_mp_gokmen_vlasov)   \
    X("mixed_precision_pcm", "MixedPrecisionPCMPreset", cfg_mp_pcm)

/* <X>2Preset, <X>4Preset (§10.3): UnitCellRPUConfig(device=VectorUnitCell(2 or 4 x
 * <X>PresetDevice(), update_policy=SINGLE_RANDOM)), default gamma 1/n, preset IO and update. */
#define VECTOR_PRESET2(var, dev)                                                                   \
    static const preset_kv var[] = {{"kind", "single"},                                            \
                                    {"device.type", "vector"},                                     \
                                    {"device.update_policy", "single_random"},                     \
                                    {"device.unit_cell_devices.0.preset", dev},                    \
                                    {"device.unit_cell_devices.1.preset", dev},                    \
                                    PRESET_IO("forward."),                                         \
                                    PRESET_IO("backward."),                                        \
                                    PRESET_UPDATE("update."),                                      \
                                    {NULL, NULL}};
#define VECTOR_PRESET4(var, dev)                                                                   \
    static const preset_kv var[] = {{"kind", "single"},                                            \
                                    {"device.type", "vector"},                                     \
                                    {"device.update_policy", "single_random"},                     \
                                    {"device.unit_cell_devices.0.preset", dev},                    \
                                    {"device.unit_cell_devices.1.preset", dev},                    \
                                    {"device.unit_cell_devices.2.preset", dev},                    \
                                    {"device.unit_cell_devices.3.preset", dev},                    \
                                    PRESET_IO("forward."),                                         \
                                    PRESET_IO("backward."),                                        \
                                    PRESET_UPDATE("update."),                                      \
                                    {NULL, NULL}};

VECTOR_PRESET2(cfg_reram_es2, "reram_es")
VECTOR_PRESET2(cfg_reram_sb2, "reram_sb")
VECTOR_PRESET2(cfg_capacitor2, "capacitor")
VECTOR_PRESET2(cfg_ecram2, "ecram")
VECTOR_PRESET2(cfg_ecram_mo2, "ecram_mo")
VECTOR_PRESET2(cfg_idealized2, "idealized")
VECTOR_PRESET4(cfg_reram_es4, "reram_es")
VECTOR_PRESET4(cfg_reram_sb4, "reram_sb")
VECTOR_PRESET4(cfg_capacitor4, "capacitor")
VECTOR_PRESET4(cfg_ecram4, "ecram")
VECTOR_PRESET4(cfg_ecram_mo4, "ecram_mo")
VECTOR_PRESET4(cfg_idealized4, "idealized")

/* TikiTaka<X>Preset (§10.3): UnitCellRPUConfig(device=TransferCompound(2 x <X>PresetDevice(),
 * transfer_forward=PresetIOParameters(noise_management=NONE, bound_management=NONE),
 * transfer_update=PresetUpdateParameters(), units_in_mbatch=True)), all else the compound
 * defaults (gamma 0, fast_lr 1, transfer_every 1, one read). The ReRamSB devices subtract
 * their symmetry point (ReRamSBPresetDevice(subtract_symmetry_point=True)). */
#define TIKI_TAKA_PRESET(var, dev, extra)                                                          \
    static const preset_kv var[] = {{"kind", "single"},                                            \
                                    {"device.type", "transfer"},                                   \
                                    {"device.unit_cell_devices.0.preset", dev},                    \
                                    {"device.unit_cell_devices.1.preset", dev},                    \
                                    extra PRESET_IO("device.transfer_forward."),                   \
                                    {"device.transfer_forward.noise_management", "none"},          \
                                    {"device.transfer_forward.bound_management", "none"},          \
                                    PRESET_UPDATE("device.transfer_update."),                      \
                                    {"device.units_in_mbatch", "true"},                            \
                                    {"device.transfer_every", "1.0"},                              \
                                    PRESET_IO("forward."),                                         \
                                    PRESET_IO("backward."),                                        \
                                    PRESET_UPDATE("update."),                                      \
                                    {NULL, NULL}};
#define NO_EXTRA
#define SB_SYMMETRY                                                                                \
    {"device.unit_cell_devices.0.subtract_symmetry_point", "true"},                                \
        {"device.unit_cell_devices.1.subtract_symmetry_point", "true"},

TIKI_TAKA_PRESET(cfg_tt_reram_es, "reram_es", NO_EXTRA)
TIKI_TAKA_PRESET(cfg_tt_reram_sb, "reram_sb", SB_SYMMETRY)
TIKI_TAKA_PRESET(cfg_tt_capacitor, "capacitor", NO_EXTRA)
TIKI_TAKA_PRESET(cfg_tt_ecram, "ecram", NO_EXTRA)
TIKI_TAKA_PRESET(cfg_tt_ecram_mo, "ecram_mo", NO_EXTRA)
TIKI_TAKA_PRESET(cfg_tt_idealized, "idealized", NO_EXTRA)

#define TIKI_TAKA_PRESETS(X)                                                                       \
    X("tiki_taka_reram_es", "TikiTakaReRamESPreset", cfg_tt_reram_es)                              \
    X("tiki_taka_reram_sb", "TikiTakaReRamSBPreset", cfg_tt_reram_sb)                              \
    X("tiki_taka_capacitor", "TikiTakaCapacitorPreset", cfg_tt_capacitor)                          \
    X("tiki_taka_ecram", "TikiTakaEcRamPreset", cfg_tt_ecram)                                      \
    X("tiki_taka_ecram_mo", "TikiTakaEcRamMOPreset", cfg_tt_ecram_mo)                              \
    X("tiki_taka_idealized", "TikiTakaIdealizedPreset", cfg_tt_idealized)

/* PCMPreset (§10.3): UnitCellRPUConfig(device=PCMPresetUnitCell()), a one_sided cell of two
 * PCMPresetDevices refreshed after every update call (refresh_forward PresetIOParameters,
 * refresh_update PresetUpdateParameters(desired_bl=31)). */
static const preset_kv cfg_pcm[] = {{"kind", "single"},
                                    {"device.type", "one_sided"},
                                    {"device.unit_cell_devices.0.preset", "pcm"},
                                    {"device.unit_cell_devices.1.preset", "pcm"},
                                    {"device.refresh_every", "1"},
                                    {"device.units_in_mbatch", "true"},
                                    PRESET_IO("device.refresh_forward."),
                                    PRESET_UPDATE("device.refresh_update."),
                                    PRESET_IO("forward."),
                                    PRESET_IO("backward."),
                                    PRESET_UPDATE("update."),
                                    {NULL, NULL}};

#define VECTOR_PRESETS(X)                                                                          \
    X("reram_es2", "ReRamES2Preset", cfg_reram_es2)                                                \
    X("reram_sb2", "ReRamSB2Preset", cfg_reram_sb2)                                                \
    X("capacitor2", "Capacitor2Preset", cfg_capacitor2)                                            \
    X("ecram2", "EcRam2Preset", cfg_ecram2)                                                        \
    X("ecram_mo2", "EcRamMO2Preset", cfg_ecram_mo2)                                                \
    X("idealized2", "Idealized2Preset", cfg_idealized2)                                            \
    X("reram_es4", "ReRamES4Preset", cfg_reram_es4)                                                \
    X("reram_sb4", "ReRamSB4Preset", cfg_reram_sb4)                                                \
    X("capacitor4", "Capacitor4Preset", cfg_capacitor4)                                            \
    X("ecram4", "EcRam4Preset", cfg_ecram4)                                                        \
    X("ecram_mo4", "EcRamMO4Preset", cfg_ecram_mo4)                                                \
    X("idealized4", "Idealized4Preset", cfg_idealized4)                                            \
    X("pcm", "PCMPreset", cfg_pcm)

/* The transfer-family presets of §10.3 built on ChoppedTransferCompound (TTv2 without
 * choppers, chopped TTv2) and DynamicTransferCompound (AGAD): two sub-devices of preset
 * device X, transfer reads with PresetIOParameters without noise and bound management,
 * transfer writes PresetUpdateParameters(desired_bl=1) without UM / BL management,
 * units_in_mbatch false, auto_scale true, the main update PresetUpdateParameters with
 * desired_bl bl; then the row's own keys (fast_lr, auto_granularity, in_chop_prob, ...) and
 * its extra sub-device keys: the ReRamSB rows' devices subtract their symmetry point
 * (ReRamSBPresetDevice(subtract_symmetry_point=True)). An extra is empty or starts with a
 * comma (SB_SYMMETRY2), so that it extends the row list. */
#define TRANSFER2_PRESET(var, type, dev, bl, ...)                                                  \
    static const preset_kv var[] = {{"kind", "single"},                                            \
                                    {"device.type", type},                                         \
                                    {"device.unit_cell_devices.0.preset", dev},                    \
                                    {"device.unit_cell_devices.1.preset", dev},                    \
                                    PRESET_IO("device.transfer_forward."),                         \
                                    {"device.transfer_forward.noise_management", "none"},          \
                                    {"device.transfer_forward.bound_management", "none"},          \
                                    PRESET_UPDATE("device.transfer_update."),                      \
                                    {"device.transfer_update.desired_bl", "1"},                    \
                                    {"device.transfer_update.update_bl_management", "false"},      \
                                    {"device.transfer_update.update_management", "false"},         \
                                    {"device.units_in_mbatch", "false"},                           \
                                    {"device.auto_scale", "true"},                                 \
                                    __VA_ARGS__,                                                   \
                                    PRESET_IO("forward."),                                         \
                                    PRESET_IO("backward."),                                        \
                                    PRESET_UPDATE("update."),                                      \
                                    {"update.desired_bl", bl},                                     \
                                    {NULL, NULL}};

#define SB_SYM(k)                                                                                  \
    { "device.unit_cell_devices." #k ".subtract_symmetry_point", "true" }
#define SB_SYMMETRY2 , SB_SYM(0), SB_SYM(1)

/* TTv2XPreset: chopped compound with in_chop_prob 0 (no choppers). */
#define TTV2(var, dev, bl, flr, ag, ...)                                                           \
    TRANSFER2_PRESET(var, "chopped_transfer", dev, bl, {"device.in_chop_prob", "0.0"},             \
                     {"device.fast_lr", flr}, {"device.auto_granularity", ag} __VA_ARGS__)
TTV2(cfg_ttv2_reram_es, "reram_es", "31", "0.5", "1000", )
TTV2(cfg_ttv2_reram_sb, "reram_sb", "31", "0.5", "1000", SB_SYMMETRY2)
TTV2(cfg_ttv2_capacitor, "capacitor", "31", "0.1", "1000", )
TTV2(cfg_ttv2_ecram, "ecram", "100", "0.1", "500", )
TTV2(cfg_ttv2_ecram_mo, "ecram_mo", "100", "0.1", "500", )
TTV2(cfg_ttv2_idealized, "idealized", "100", "0.1", "500", )

/* ChoppedTTv2XPreset: random input choppers (aihwkit's EcRam row keeps fast_lr 1.0). */
#define CTTV2(var, dev, bl, flr, ag, chop, ...)                                                    \
    TRANSFER2_PRESET(var, "chopped_transfer", dev, bl, {"device.in_chop_prob", chop},              \
                     {"device.fast_lr", flr}, {"device.auto_granularity", ag} __VA_ARGS__)
CTTV2(cfg_chopped_ttv2_reram_es, "reram_es", "31", "0.5", "1000", "0.01", )
CTTV2(cfg_chopped_ttv2_reram_sb, "reram_sb", "31", "0.5", "1000", "0.01", SB_SYMMETRY2)
CTTV2(cfg_chopped_ttv2_capacitor, "capacitor", "31", "0.1", "1000", "0.01", )
CTTV2(cfg_chopped_ttv2_ecram, "ecram", "100", "1.0", "500", "0.01", )
CTTV2(cfg_chopped_ttv2_ecram_mo, "ecram_mo", "100", "0.1", "500", "0.001", )
CTTV2(cfg_chopped_ttv2_idealized, "idealized", "100", "0.1", "500", "0.001", )

/* AGADXPreset: regular chopping (in_chop_random false, the dynamic default). */
#define AGAD(var, dev, bl, flr, ag, tail, chop, ...)                                               \
    TRANSFER2_PRESET(var, "dynamic_transfer", dev, bl, {"device.in_chop_prob", chop},              \
                     {"device.fast_lr", flr}, {"device.auto_granularity", ag},                     \
                     {"device.tail_weightening", tail} __VA_ARGS__)
AGAD(cfg_agad_reram_es, "reram_es", "31", "0.5", "1000", "5.0", "0.02", )
AGAD(cfg_agad_reram_sb, "reram_sb", "31", "0.5", "1000", "5.0", "0.02", SB_SYMMETRY2)
AGAD(cfg_agad_capacitor, "capacitor", "31", "0.1", "1000", "20.0", "0.01", )
AGAD(cfg_agad_ecram, "ecram", "31", "0.1", "750", "50.0", "0.005", )
AGAD(cfg_agad_ecram_mo, "ecram_mo", "100", "0.1", "500", "50.0", "0.005", )
AGAD(cfg_agad_idealized, "idealized", "100", "0.1", "500", "50.0", "0.005", )

#define TRANSFER2_PRESETS(X)                                                                       \
    X("ttv2_reram_es", "TTv2ReRamESPreset", cfg_ttv2_reram_es)                                     \
    X("ttv2_reram_sb", "TTv2ReRamSBPreset", cfg_ttv2_reram_sb)                                     \
    X("ttv2_capacitor", "TTv2CapacitorPreset", cfg_ttv2_capacitor)                                 \
    X("ttv2_ecram", "TTv2EcRamPreset", cfg_ttv2_ecram)                                             \
    X("ttv2_ecram_mo", "TTv2EcRamMOPreset", cfg_ttv2_ecram_mo)                                     \
    X("ttv2_idealized", "TTv2IdealizedPreset", cfg_ttv2_idealized)                                 \
    X("chopped_ttv2_reram_es", "ChoppedTTv2ReRamESPreset", cfg_chopped_ttv2_reram_es)              \
    X("chopped_ttv2_reram_sb", "ChoppedTTv2ReRamSBPreset", cfg_chopped_ttv2_reram_sb)              \
    X("chopped_ttv2_capacitor", "ChoppedTTv2CapacitorPreset", cfg_chopped_ttv2_capacitor)          \
    X("chopped_ttv2_ecram", "ChoppedTTv2EcRamPreset", cfg_chopped_ttv2_ecram)                      \
    X("chopped_ttv2_ecram_mo", "ChoppedTTv2EcRamMOPreset", cfg_chopped_ttv2_ecram_mo)              \
    X("chopped_ttv2_idealized", "ChoppedTTv2IdealizedPreset", cfg_chopped_ttv2_idealized)          \
    X("agad_reram_es", "AGADReRamESPreset", cfg_agad_reram_es)                                     \
    X("agad_reram_sb", "AGADReRamSBPreset", cfg_agad_reram_sb)                                     \
    X("agad_capacitor", "AGADCapacitorPreset", cfg_agad_capacitor)                                 \
    X("agad_ecram", "AGADEcRamPreset", cfg_agad_ecram)                                             \
    X("agad_ecram_mo", "AGADEcRamMOPreset", cfg_agad_ecram_mo)                                     \
    X("agad_idealized", "AGADIdealizedPreset", cfg_agad_idealized)

/* Further compound presets go here as rows like these, with the compound's keys and
 * "device.unit_cell_devices.N.preset = <x>" for their sub-devices. */

#define CONFIG_PRESETS(X)                                                                          \
    X("reram_es", "ReRamESPreset", cfg_reram_es)                                                   \
    X("reram_sb", "ReRamSBPreset", cfg_reram_sb)                                                   \
    X("capacitor", "CapacitorPreset", cfg_capacitor)                                               \
    X("ecram", "EcRamPreset", cfg_ecram)                                                           \
    X("ecram_mo", "EcRamMOPreset", cfg_ecram_mo)                                                   \
    X("idealized", "IdealizedPreset", cfg_idealized)                                               \
    X("gokmen_vlasov", "GokmenVlasovPreset", cfg_gokmen_vlasov)                                    \
    MIXED_PRECISION_PRESETS(X)                                                                     \
    TIKI_TAKA_PRESETS(X)                                                                           \
    VECTOR_PRESETS(X)                                                                              \
    TRANSFER2_PRESETS(X)

static const preset config_presets[] = {CONFIG_PRESETS(AS_PRESET)};
static const char *const config_preset_names[] = {CONFIG_PRESETS(AS_NAME) NULL};
#define N_CONFIG_PRESETS (sizeof config_presets / sizeof config_presets[0])

/* ---------------------------------------------------------------------------------------
 * Keys.
 * ------------------------------------------------------------------------------------- */

static bool ends_with(const char *s, size_t n, const char *suffix) {
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* The sub-device segment of compound devices (aihwkit's UnitCell.unit_cell_devices). */
static const char sub_segment[] = "unit_cell_devices.";

/* True if prefix[0, n) names a device: a prefix P whose "P type" is a device-type row of
 * the table ("device."), or such a prefix followed by sub-device segments
 * "unit_cell_devices.<N>." (a compound's sub-devices, compound spec §1; those keys are not
 * rows of the table, so they are recognised by their shape). */
static bool is_device_prefix(const char *prefix, size_t n) {
    size_t base = n;
    for (;;) { /* strip trailing "unit_cell_devices.<N>." segments */
        size_t e = base;
        if (e < 2 || prefix[e - 1] != '.') break;
        size_t d = e - 1;
        while (d > 0 && prefix[d - 1] >= '0' && prefix[d - 1] <= '9')
            --d;
        size_t m = sizeof sub_segment - 1;
        if (d == e - 1 || d < m || memcmp(prefix + d - m, sub_segment, m) != 0) break;
        base = d - m;
    }
    char k[300];
    if (base + 5 > sizeof k) return false;
    memcpy(k, prefix, base);
    memcpy(k + base, "type", 5);
    const field_desc *d = config_find_field(k);
    return d && d->type == T_DEVTYPE;
}

/* ASCII case-insensitive equality (preset names are spelled in any case, as enum values). */
static bool name_eq(const char *a, const char *b) {
    for (; *a && *b; ++a, ++b) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
        if (x != y) return false;
    }
    return *a == *b;
}

config_key_role config_key_role_of(const char *key, size_t *prefix_len) {
    size_t n = strlen(key);
    size_t pl = 0;
    config_key_role r = KEY_PLAIN;
    if (!strcmp(key, "preset")) {
        r = KEY_CONFIG_PRESET;
    } else if (!strcmp(key, "kind")) {
        r = KEY_RESET;
    } else if (ends_with(key, n, ".preset") && is_device_prefix(key, n - 6)) {
        r = KEY_DEVICE_PRESET;
        pl = n - 6;
    } else if (ends_with(key, n, ".type") && is_device_prefix(key, n - 4)) {
        r = KEY_RESET;
        pl = n - 4;
    }
    if (prefix_len) *prefix_len = pl;
    return r;
}

/* ---------------------------------------------------------------------------------------
 * Applying a preset.
 * ------------------------------------------------------------------------------------- */

static const preset *find_preset(const preset *tab, size_t n, const char *name) {
    for (size_t i = 0; i < n; ++i)
        if (name_eq(tab[i].name, name)) return &tab[i];
    return NULL;
}

/* The names of a table, with their aihwkit classes if with_class (the device presets; the
 * config presets are too many for one message: rpu_config_preset_class gives theirs). */
static void list_names(const preset *tab, size_t n, bool with_class, char *buf, size_t size) {
    size_t pos = strlen(buf);
    for (size_t i = 0; i < n && pos + 1 < size; ++i) {
        int w = with_class ? snprintf(buf + pos, size - pos, "%s%s (%s)", i ? ", " : "",
                                      tab[i].name, tab[i].aihwkit)
                           : snprintf(buf + pos, size - pos, "%s%s", i ? ", " : "", tab[i].name);
        if (w > 0) pos += (size_t)w;
    }
}

/* The config presets for a message, compactly (there are too many to name each with its
 * class): those named like a device preset with their aihwkit class, the others by family,
 * "mixed_precision_X (X = reram_es, ...)", "X2 (X = ...)": a name is family + "_" + device
 * preset, or device preset + digits. */
static void list_config_names(char *buf, size_t size) {
    size_t pos = strlen(buf);
#define APPEND(...)                                                                                \
    do {                                                                                           \
        int w_ = pos + 1 < size ? snprintf(buf + pos, size - pos, __VA_ARGS__) : 0;                \
        if (w_ > 0) pos = pos + (size_t)w_ < size ? pos + (size_t)w_ : size - 1;                   \
    } while (0)
    int k = 0;
    for (size_t i = 0; i < N_CONFIG_PRESETS; ++i)
        if (find_preset(device_presets, N_DEVICE_PRESETS, config_presets[i].name))
            APPEND("%s%s (%s)", k++ ? ", " : "", config_presets[i].name, config_presets[i].aihwkit);
    /* families: the pattern of a name with its device preset replaced by X */
    char fam[N_CONFIG_PRESETS][48];
    const char *dev_of[N_CONFIG_PRESETS];
    for (size_t i = 0; i < N_CONFIG_PRESETS; ++i) {
        fam[i][0] = '\0';
        dev_of[i] = NULL;
        const char *nm = config_presets[i].name;
        const size_t n = strlen(nm);
        if (find_preset(device_presets, N_DEVICE_PRESETS, nm)) continue;
        for (size_t d = 0; d < N_DEVICE_PRESETS; ++d) {
            const char *dn = device_presets[d].name;
            const size_t m = strlen(dn);
            if (n > m + 1 && nm[n - m - 1] == '_' && !strcmp(nm + n - m, dn) &&
                (!dev_of[i] || m > strlen(dev_of[i]))) {
                snprintf(fam[i], sizeof fam[i], "%.*sX", (int)(n - m), nm);
                dev_of[i] = dn;
            } else if (n > m && !strncmp(nm, dn, m) && strspn(nm + m, "0123456789") == n - m &&
                       (!dev_of[i] || m > strlen(dev_of[i]))) {
                snprintf(fam[i], sizeof fam[i], "X%s", nm + m);
                dev_of[i] = dn;
            }
        }
        if (!dev_of[i]) snprintf(fam[i], sizeof fam[i], "%s", nm); /* no family: as is */
    }
    for (size_t i = 0; i < N_CONFIG_PRESETS; ++i) {
        if (!fam[i][0]) continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; ++j)
            seen = !strcmp(fam[j], fam[i]);
        if (seen) continue;
        APPEND("%s%s", k++ ? ", " : "", fam[i]);
        if (!dev_of[i]) continue;
        int q = 0;
        for (size_t j = i; j < N_CONFIG_PRESETS; ++j)
            if (!strcmp(fam[j], fam[i])) APPEND("%s%s", q++ ? ", " : " (X = ", dev_of[j]);
        APPEND(")");
    }
#undef APPEND
}

/* Applies preset name for the preset key (trimmed); cfg may be partly changed on failure. */
static rpu_status apply_preset(rpu_config *cfg, const char *key, const char *name, char *err,
                               size_t errsz) {
    size_t pl = 0;
    bool dev = config_key_role_of(key, &pl) == KEY_DEVICE_PRESET;
    const preset *tab = dev ? device_presets : config_presets;
    size_t n = dev ? N_DEVICE_PRESETS : N_CONFIG_PRESETS;
    const preset *p = find_preset(tab, n, name);
    if (!p) {
        char vis[80];
        snprintf(vis, sizeof vis, "%.64s", name);
        for (char *c = vis; *c; ++c)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
        snprintf(err, errsz, "%s: unknown %spreset \"%s\"; expected one of: ", key,
                 dev ? "device " : "", vis);
        if (dev)
            list_names(tab, n, true, err, errsz);
        else
            list_config_names(err, errsz);
        return RPU_ERR_CONFIG;
    }
    for (const preset_kv *kv = p->kv; kv->key; ++kv) {
        char full[300], inner[CONFIG_ERR_MAX];
        snprintf(full, sizeof full, "%.*s%s", (int)pl, key, kv->key);
        if (config_set_key(cfg, full, kv->value, inner, sizeof inner) != RPU_OK) {
            /* a preset's own values are checked by the tests; this names the row */
            snprintf(err, errsz, "%s = %s: %.700s", key, name, inner);
            return RPU_ERR_CONFIG;
        }
    }
    return RPU_OK;
}

/* Copies src into dst (size bytes) without surrounding blanks; false if it does not fit. */
static bool copy_trimmed(char *dst, size_t size, const char *src) {
    while (*src == ' ' || *src == '\t')
        ++src;
    size_t n = strlen(src);
    while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\t'))
        --n;
    if (n >= size) return false;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return true;
}

rpu_status config_set_key(rpu_config *cfg, const char *key, const char *value, char *err,
                          size_t errsz) {
    char k[256], name[100];
    if (!copy_trimmed(k, sizeof k, key)) return config_set_field(cfg, key, value, err, errsz);
    config_key_role role = config_key_role_of(k, NULL);
    if (role != KEY_CONFIG_PRESET && role != KEY_DEVICE_PRESET)
        return config_set_field(cfg, key, value, err, errsz);
    if (!copy_trimmed(name, sizeof name, value)) {
        snprintf(err, errsz, "%s: preset name too long", k);
        return RPU_ERR_CONFIG;
    }
    rpu_config tmp = *cfg;
    rpu_status s = apply_preset(&tmp, k, name, err, errsz);
    if (s == RPU_OK) *cfg = tmp;
    return s;
}

/* ---------------------------------------------------------------------------------------
 * Public API.
 * ------------------------------------------------------------------------------------- */

rpu_status rpu_config_preset(rpu_config *cfg, const char *name) {
    if (!cfg || !name)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_preset: %s is NULL", !cfg ? "cfg" : "name");
    char err[CONFIG_ERR_MAX];
    if (config_set_key(cfg, "preset", name, err, sizeof err) != RPU_OK)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s", err);
    return RPU_OK;
}

rpu_status rpu_device_params_preset(rpu_device_params *dev, const char *name) {
    if (!dev || !name)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_device_params_preset: %s is NULL", !dev ? "dev" : "name");
    rpu_config tmp;
    rpu_config_default(&tmp, RPU_KIND_SINGLE);
    char err[CONFIG_ERR_MAX];
    if (config_set_key(&tmp, "device.preset", name, err, sizeof err) != RPU_OK)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s", err);
    *dev = tmp.device;
    return RPU_OK;
}

int rpu_config_presets(const char *const **names) {
    if (names) *names = config_preset_names;
    return (int)N_CONFIG_PRESETS;
}

int rpu_device_presets(const char *const **names) {
    if (names) *names = device_preset_names;
    return (int)N_DEVICE_PRESETS;
}

const char *rpu_config_preset_class(const char *name, bool device) {
    if (!name) return NULL;
    const preset *p = device ? find_preset(device_presets, N_DEVICE_PRESETS, name)
                             : find_preset(config_presets, N_CONFIG_PRESETS, name);
    return p ? p->aihwkit : NULL;
}
