/* rpusim — the RPU configuration: defaults per kind, text get/set, validation, text form.
 *
 * Every settable field is described once, in the const table built from RPU_CONFIG_FIELDS
 * below (key, value type, offset in rpu_config, accepted range, enum names). Setting,
 * reading, printing, comparing, validating and listing keys all walk that table, so a
 * field added there is handled everywhere. The module has no mutable static state. */
#include "rpusim/config.h"

#include "config_ini_impl.h"
#include "error_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Enum spellings (index = enum value; NULL-terminated).
 * ------------------------------------------------------------------------------------- */

static const char *const kind_names[] = {"floating_point", "single", "inference", NULL};
static const char *const mv_names[] = {"one_pass", "pos_neg_separate",
                                       "pos_neg_separate_digital_sum", NULL};
static const char *const nm_names[] = {"none",           "abs_max",         "max", "constant",
                                       "abs_max_np_sum", "average_abs_max", NULL};
static const char *const bm_names[] = {"none", "iterative", "iterative_worst_case", NULL};
static const char *const wnoise_names[] = {"none", "additive_constant", "pcm_read", NULL};
static const char *const pulse_names[] = {
    "none",       "stochastic_compressed",  "stochastic", "none_with_device",
    "mean_count", "deterministic_implicit", NULL};
static const char *const device_names[] = {
    "floating_point",   "ideal",    "constant_step", "linear_step",    "soft_bounds",
    "soft_bounds_pmax", "exp_step", "pow_step",      "piecewise_step", NULL};
static const char *const noise_model_names[] = {"none", "pcm_like", "state_independent", NULL};
static const char *const drift_comp_names[] = {"none", "global", "per_column", NULL};
static const char *const clip_names[] = {"none", "fixed_value", "layer_gaussian",
                                         "average_channel_max", NULL};
static const char *const remap_names[] = {"none", "layerwise_symmetric", "channelwise_symmetric",
                                          NULL};
static const char *const modifier_names[] = {
    "none",   "discretize", "mult_normal", "add_normal",   "discretize_add_normal",
    "dorefa", "poly",       "prog_noise",  "drop_connect", NULL};

/* Enums are stored and read as int. */
_Static_assert(sizeof(rpu_config_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(rpu_mv_type) == sizeof(int), "enum size");
_Static_assert(sizeof(rpu_noise_management) == sizeof(int), "enum size");
_Static_assert(sizeof(rpu_bound_management) == sizeof(int), "enum size");
_Static_assert(sizeof(rpu_w_noise_type) == sizeof(int), "enum size");
_Static_assert(sizeof(rpu_pulse_type) == sizeof(int), "enum size");
_Static_assert(sizeof(rpu_device_type) == sizeof(int), "enum size");
_Static_assert(sizeof(rpu_noise_model_type) == sizeof(int), "enum size");
_Static_assert(sizeof(rpu_drift_compensation) == sizeof(int), "enum size");
_Static_assert(sizeof(rpu_clip_type) == sizeof(int), "enum size");
_Static_assert(sizeof(rpu_remap_type) == sizeof(int), "enum size");
_Static_assert(sizeof(rpu_modifier_type) == sizeof(int), "enum size");
_Static_assert(RPU_MAX_MODIFIER_COEFFS <= RPU_MAX_PIECEWISE, "list scratch size");

/* ---------------------------------------------------------------------------------------
 * The field table.
 * ------------------------------------------------------------------------------------- */

typedef enum {
    T_BOOL,   /* bool */
    T_INT,    /* int, range-checked */
    T_U64,    /* uint64_t, any value */
    T_FLOAT,  /* float, finite, range-checked */
    T_ENUM,   /* int-sized enum, spelled by names[] */
    T_LIST,   /* float array (+ int count unless F_FIXED_LEN), elements range-checked */
    T_KIND,   /* "kind": an enum whose setting resets the whole config */
    T_DEVTYPE /* "device.type": an enum whose setting resets the device fields */
} field_type;

enum {
    F_LO_OPEN = 1u,  /* lower bound excluded */
    F_HI_OPEN = 2u,  /* upper bound excluded */
    F_FIXED_LEN = 4u /* list has exactly cap elements (no count field) */
};

typedef struct {
    const char *key;
    size_t off;               /* offset of the value in rpu_config */
    size_t cnt_off;           /* T_LIST without F_FIXED_LEN: offset of the int element count */
    size_t cap;               /* T_LIST: capacity in elements */
    double lo, hi;            /* accepted range (T_INT, T_FLOAT, T_LIST elements) */
    const char *const *names; /* enum spellings */
    field_type type;
    unsigned flags;
} field_desc;

/* Per-type shorthands; X(type, key, member, count_member, lo, hi, flags, names). Members
 * without a count use `kind` as a placeholder count member (never read). Floats and list
 * elements come with their accepted range in the name: ANY (finite), NONNEG (>= 0),
 * POS (> 0), PROB ([0, 1]), GE1 (>= 1). */
#define FB(X, k, m) X(T_BOOL, k, m, kind, 0.0, 0.0, 0u, NULL)
#define FU(X, k, m) X(T_U64, k, m, kind, 0.0, 0.0, 0u, NULL)
#define FI(X, k, m, lo) X(T_INT, k, m, kind, lo, HUGE_VAL, 0u, NULL)
#define FE(X, k, m, nm) X(T_ENUM, k, m, kind, 0.0, 0.0, 0u, nm)
#define RF_ANY(X, k, m) X(T_FLOAT, k, m, kind, -HUGE_VAL, HUGE_VAL, 0u, NULL)
#define RF_NONNEG(X, k, m) X(T_FLOAT, k, m, kind, 0.0, HUGE_VAL, 0u, NULL)
#define RF_POS(X, k, m) X(T_FLOAT, k, m, kind, 0.0, HUGE_VAL, F_LO_OPEN, NULL)
#define RF_PROB(X, k, m) X(T_FLOAT, k, m, kind, 0.0, 1.0, 0u, NULL)
#define RF_GE1(X, k, m) X(T_FLOAT, k, m, kind, 1.0, HUGE_VAL, 0u, NULL)
#define RL_ANY(X, k, m, cnt) X(T_LIST, k, m, cnt, -HUGE_VAL, HUGE_VAL, 0u, NULL)
#define RL_NONNEG(X, k, m, cnt) X(T_LIST, k, m, cnt, 0.0, HUGE_VAL, 0u, NULL)
#define RL_FIXED_ANY(X, k, m) X(T_LIST, k, m, kind, -HUGE_VAL, HUGE_VAL, F_FIXED_LEN, NULL)

/* IOParameters (spec §2.1), once per direction. */
#define RPU_IO_FIELDS(X, P, M)                                                                     \
    FB(X, P "is_perfect", M.is_perfect)                                                            \
    FE(X, P "mv_type", M.mv_type, mv_names)                                                        \
    RF_ANY(X, P "inp_bound", M.inp_bound)                                                          \
    RF_NONNEG(X, P "inp_noise", M.inp_noise)                                                       \
    RF_ANY(X, P "inp_res", M.inp_res)                                                              \
    FB(X, P "inp_sto_round", M.inp_sto_round)                                                      \
    RF_ANY(X, P "inp_asymmetry", M.inp_asymmetry)                                                  \
    RF_ANY(X, P "out_bound", M.out_bound)                                                          \
    RF_NONNEG(X, P "out_noise", M.out_noise)                                                       \
    RF_NONNEG(X, P "out_noise_std", M.out_noise_std)                                               \
    RF_ANY(X, P "out_res", M.out_res)                                                              \
    FB(X, P "out_sto_round", M.out_sto_round)                                                      \
    RF_ANY(X, P "out_scale", M.out_scale)                                                          \
    RF_ANY(X, P "out_asymmetry", M.out_asymmetry)                                                  \
    FE(X, P "bound_management", M.bound_management, bm_names)                                      \
    FE(X, P "noise_management", M.noise_management, nm_names)                                      \
    RF_NONNEG(X, P "w_noise", M.w_noise)                                                           \
    FE(X, P "w_noise_type", M.w_noise_type, wnoise_names)                                          \
    RF_NONNEG(X, P "ir_drop", M.ir_drop)                                                           \
    RF_POS(X, P "ir_drop_g_ratio", M.ir_drop_g_ratio)                                              \
    RF_NONNEG(X, P "out_nonlinearity", M.out_nonlinearity)                                         \
    RF_NONNEG(X, P "out_nonlinearity_std", M.out_nonlinearity_std)                                 \
    RF_NONNEG(X, P "slope_calibration", M.slope_calibration)                                       \
    RF_NONNEG(X, P "v_offset_std", M.v_offset_std)                                                 \
    RF_ANY(X, P "v_offset_w_min", M.v_offset_w_min)                                                \
    RF_NONNEG(X, P "r_series", M.r_series)                                                         \
    RF_NONNEG(X, P "w_read_asymmetry_dtod", M.w_read_asymmetry_dtod)                               \
    RF_GE1(X, P "max_bm_factor", M.max_bm_factor)                                                  \
    RF_NONNEG(X, P "max_bm_res", M.max_bm_res)                                                     \
    FB(X, P "bm_test_negative_bound", M.bm_test_negative_bound)                                    \
    RF_NONNEG(X, P "nm_thres", M.nm_thres)                                                         \
    RF_POS(X, P "nm_assumed_wmax", M.nm_assumed_wmax)                                              \
    RF_PROB(X, P "nm_decay", M.nm_decay)

/* Every key, in the order rpu_config_write prints them: "kind" and "device.type" first,
 * because setting them resets other fields. */
#define RPU_CONFIG_FIELDS(X)                                                                       \
    X(T_KIND, "kind", kind, kind, 0.0, 0.0, 0u, kind_names)                                        \
    X(T_DEVTYPE, "device.type", device.type, kind, 0.0, 0.0, 0u, device_names)                     \
    RPU_IO_FIELDS(X, "forward.", forward)                                                          \
    RPU_IO_FIELDS(X, "backward.", backward)                                                        \
    /* UpdateParameters (spec §3.1) */                                                            \
    FI(X, "update.desired_bl", update.desired_bl, 1.0)                                             \
    FB(X, "update.fixed_bl", update.fixed_bl)                                                      \
    FE(X, "update.pulse_type", update.pulse_type, pulse_names)                                     \
    RF_PROB(X, "update.res", update.res)                                                           \
    RF_PROB(X, "update.x_res_implicit", update.x_res_implicit)                                     \
    RF_PROB(X, "update.d_res_implicit", update.d_res_implicit)                                     \
    FB(X, "update.d_sparsity", update.d_sparsity)                                                  \
    FB(X, "update.sto_round", update.sto_round)                                                    \
    FB(X, "update.update_bl_management", update.update_bl_management)                              \
    FB(X, "update.update_management", update.update_management)                                    \
    RF_NONNEG(X, "update.um_grad_scale", update.um_grad_scale)                                     \
    RF_NONNEG(X, "update.um_reg_scale", update.um_reg_scale)                                       \
    /* PulsedDevice (spec §4.1) */                                                                \
    FU(X, "device.construction_seed", device.construction_seed)                                    \
    RF_NONNEG(X, "device.dw_min", device.dw_min)                                                   \
    RF_NONNEG(X, "device.dw_min_dtod", device.dw_min_dtod)                                         \
    FB(X, "device.dw_min_dtod_log_normal", device.dw_min_dtod_log_normal)                          \
    RF_NONNEG(X, "device.dw_min_std", device.dw_min_std)                                           \
    RF_ANY(X, "device.up_down", device.up_down)                                                    \
    RF_NONNEG(X, "device.up_down_dtod", device.up_down_dtod)                                       \
    RF_ANY(X, "device.w_max", device.w_max)                                                        \
    RF_NONNEG(X, "device.w_max_dtod", device.w_max_dtod)                                           \
    RF_ANY(X, "device.w_min", device.w_min)                                                        \
    RF_NONNEG(X, "device.w_min_dtod", device.w_min_dtod)                                           \
    FB(X, "device.enforce_consistency", device.enforce_consistency)                                \
    FB(X, "device.perfect_bias", device.perfect_bias)                                              \
    RF_ANY(X, "device.reset", device.reset)                                                        \
    RF_NONNEG(X, "device.reset_dtod", device.reset_dtod)                                           \
    RF_NONNEG(X, "device.reset_std", device.reset_std)                                             \
    RF_NONNEG(X, "device.lifetime", device.lifetime)                                               \
    RF_NONNEG(X, "device.lifetime_dtod", device.lifetime_dtod)                                     \
    RF_NONNEG(X, "device.diffusion", device.diffusion)                                             \
    RF_NONNEG(X, "device.diffusion_dtod", device.diffusion_dtod)                                   \
    RF_PROB(X, "device.corrupt_devices_prob", device.corrupt_devices_prob)                         \
    RF_NONNEG(X, "device.corrupt_devices_range", device.corrupt_devices_range)                     \
    RF_NONNEG(X, "device.write_noise_std", device.write_noise_std)                                 \
    FB(X, "device.apply_write_noise_on_set", device.apply_write_noise_on_set)                      \
    /* LinearStep / SoftBounds (spec §4.3, §4.4); exp_step shares gamma_up/gamma_down */         \
    RF_ANY(X, "device.gamma_up", device.gamma_up)                                                  \
    RF_ANY(X, "device.gamma_down", device.gamma_down)                                              \
    RF_NONNEG(X, "device.gamma_up_dtod", device.gamma_up_dtod)                                     \
    RF_NONNEG(X, "device.gamma_down_dtod", device.gamma_down_dtod)                                 \
    FB(X, "device.allow_increasing", device.allow_increasing)                                      \
    FB(X, "device.mean_bound_reference", device.mean_bound_reference)                              \
    FB(X, "device.mult_noise", device.mult_noise)                                                  \
    FB(X, "device.reverse_up", device.reverse_up)                                                  \
    FB(X, "device.reverse_down", device.reverse_down)                                              \
    RF_ANY(X, "device.reverse_offset", device.reverse_offset)                                      \
    /* SoftBoundsPmax (spec §4.4) */                                                              \
    RF_POS(X, "device.p_max", device.p_max)                                                        \
    RF_POS(X, "device.alpha", device.alpha)                                                        \
    RF_ANY(X, "device.range_min", device.range_min)                                                \
    RF_ANY(X, "device.range_max", device.range_max)                                                \
    /* PowStep (spec §4.5) */                                                                     \
    RF_NONNEG(X, "device.pow_gamma", device.pow_gamma)                                             \
    RF_NONNEG(X, "device.pow_gamma_dtod", device.pow_gamma_dtod)                                   \
    RF_ANY(X, "device.pow_up_down", device.pow_up_down)                                            \
    RF_NONNEG(X, "device.pow_up_down_dtod", device.pow_up_down_dtod)                               \
    /* ExpStep (spec §4.6) */                                                                     \
    RF_ANY(X, "device.A_up", device.A_up)                                                          \
    RF_ANY(X, "device.A_down", device.A_down)                                                      \
    RF_ANY(X, "device.a", device.a)                                                                \
    RF_ANY(X, "device.b", device.b)                                                                \
    RF_NONNEG(X, "device.dw_min_std_add", device.dw_min_std_add)                                   \
    RF_NONNEG(X, "device.dw_min_std_slope", device.dw_min_std_slope)                               \
    /* PiecewiseStep (spec §4.8) */                                                               \
    RL_NONNEG(X, "device.piecewise_up", device.piecewise_up, device.n_piecewise_up)                \
    RL_NONNEG(X, "device.piecewise_down", device.piecewise_down, device.n_piecewise_down)          \
    /* DriftParameter (spec §4.1) */                                                              \
    RF_ANY(X, "device.drift.nu", device.drift.nu)                                                  \
    RF_POS(X, "device.drift.t_0", device.drift.t_0)                                                \
    RF_NONNEG(X, "device.drift.reset_tol", device.drift.reset_tol)                                 \
    RF_NONNEG(X, "device.drift.nu_dtod", device.drift.nu_dtod)                                     \
    RF_NONNEG(X, "device.drift.nu_std", device.drift.nu_std)                                       \
    RF_POS(X, "device.drift.wg_ratio", device.drift.wg_ratio)                                      \
    RF_ANY(X, "device.drift.g_offset", device.drift.g_offset)                                      \
    RF_ANY(X, "device.drift.w_offset", device.drift.w_offset)                                      \
    RF_ANY(X, "device.drift.nu_k", device.drift.nu_k)                                              \
    RF_ANY(X, "device.drift.log_g0", device.drift.log_g0)                                          \
    RF_NONNEG(X, "device.drift.w_noise_std", device.drift.w_noise_std)                             \
    /* Inference noise model (spec §6.2) */                                                       \
    FE(X, "noise_model.type", noise_model.type, noise_model_names)                                 \
    RL_FIXED_ANY(X, "noise_model.prog_coeff", noise_model.prog_coeff)                              \
    RF_POS(X, "noise_model.g_max", noise_model.g_max)                                              \
    RF_NONNEG(X, "noise_model.g_min", noise_model.g_min)                                           \
    RF_POS(X, "noise_model.t_read", noise_model.t_read)                                            \
    RF_POS(X, "noise_model.t_0", noise_model.t_0)                                                  \
    RF_NONNEG(X, "noise_model.prog_noise_scale", noise_model.prog_noise_scale)                     \
    RF_NONNEG(X, "noise_model.read_noise_scale", noise_model.read_noise_scale)                     \
    RF_NONNEG(X, "noise_model.drift_scale", noise_model.drift_scale)                               \
    RF_NONNEG(X, "noise_model.prog_std", noise_model.prog_std)                                     \
    RF_ANY(X, "noise_model.drift_nu_mean", noise_model.drift_nu_mean)                              \
    RF_NONNEG(X, "noise_model.drift_nu_std", noise_model.drift_nu_std)                             \
    /* Drift compensation, clip, remap, modifier (spec §6.3-§6.6) */                             \
    FE(X, "drift_compensation", drift_compensation, drift_comp_names)                              \
    FE(X, "clip.type", clip.type, clip_names)                                                      \
    RF_ANY(X, "clip.fixed_value", clip.fixed_value)                                                \
    RF_POS(X, "clip.sigma", clip.sigma)                                                            \
    FE(X, "remap.type", remap.type, remap_names)                                                   \
    RF_POS(X, "remap.remapped_wmax", remap.remapped_wmax)                                          \
    RF_NONNEG(X, "remap.max_scale_range", remap.max_scale_range)                                   \
    RF_NONNEG(X, "remap.max_scale_ref", remap.max_scale_ref)                                       \
    FE(X, "modifier.type", modifier.type, modifier_names)                                          \
    RF_NONNEG(X, "modifier.std_dev", modifier.std_dev)                                             \
    FB(X, "modifier.per_batch_sample", modifier.per_batch_sample)                                  \
    RF_NONNEG(X, "modifier.res", modifier.res)                                                     \
    FB(X, "modifier.sto_round", modifier.sto_round)                                                \
    RF_NONNEG(X, "modifier.dorefa_clip", modifier.dorefa_clip)                                     \
    RF_PROB(X, "modifier.pdrop", modifier.pdrop)                                                   \
    FB(X, "modifier.enable_during_test", modifier.enable_during_test)                              \
    FB(X, "modifier.rel_to_actual_wmax", modifier.rel_to_actual_wmax)                              \
    RF_POS(X, "modifier.assumed_wmax", modifier.assumed_wmax)                                      \
    FB(X, "modifier.copy_last_column", modifier.copy_last_column)                                  \
    RL_ANY(X, "modifier.coeffs", modifier.coeffs, modifier.n_coeffs)                               \
    RF_POS(X, "modifier.g_max", modifier.g_max)                                                    \
    /* MappingParameter (spec §7) */                                                              \
    FB(X, "mapping.digital_bias", mapping.digital_bias)                                            \
    RF_NONNEG(X, "mapping.weight_scaling_omega", mapping.weight_scaling_omega)                     \
    FB(X, "mapping.weight_scaling_columnwise", mapping.weight_scaling_columnwise)                  \
    FB(X, "mapping.weight_scaling_lr_compensation", mapping.weight_scaling_lr_compensation)        \
    FB(X, "mapping.learn_out_scaling", mapping.learn_out_scaling)                                  \
    FB(X, "mapping.out_scaling_columnwise", mapping.out_scaling_columnwise)                        \
    FI(X, "mapping.max_input_size", mapping.max_input_size, 0.0)                                   \
    FI(X, "mapping.max_output_size", mapping.max_output_size, 0.0)

#define CFG_MEMBER_SIZE(m) sizeof(((const rpu_config *)0)->m)

#define AS_DESC(t, k, m, cnt, lo_, hi_, fl, nm)                                                    \
    {.key = k,                                                                                     \
     .type = t,                                                                                    \
     .off = offsetof(rpu_config, m),                                                               \
     .cnt_off = offsetof(rpu_config, cnt),                                                         \
     .cap = CFG_MEMBER_SIZE(m) / sizeof(float),                                                    \
     .lo = lo_,                                                                                    \
     .hi = hi_,                                                                                    \
     .flags = fl,                                                                                  \
     .names = nm},
#define AS_KEY(t, k, m, cnt, lo, hi, fl, nm) k,

static const field_desc fields[] = {RPU_CONFIG_FIELDS(AS_DESC)};
static const char *const field_keys[] = {RPU_CONFIG_FIELDS(AS_KEY)};

#define N_FIELDS (sizeof fields / sizeof fields[0])
_Static_assert(sizeof fields / sizeof fields[0] == sizeof field_keys / sizeof field_keys[0],
               "one key per field");

/* Longest value text (a 64-element list) and longest error message we produce. */
#define VALUE_MAX 4096
#define ERR_MAX 900

/* ---------------------------------------------------------------------------------------
 * Defaults.
 * ------------------------------------------------------------------------------------- */

void rpu_io_params_default(rpu_io_params *io) {
    if (!io) return;
    memset(io, 0, sizeof *io);
    io->is_perfect = false;
    io->mv_type = RPU_MV_ONE_PASS;
    io->inp_bound = 1.0f;
    io->inp_noise = 0.0f;
    io->inp_res = (float)(1.0 / 126.0);
    io->inp_sto_round = false;
    io->inp_asymmetry = 0.0f;
    io->out_bound = 12.0f;
    io->out_noise = 0.06f;
    io->out_noise_std = 0.0f;
    io->out_res = (float)(1.0 / 510.0);
    io->out_sto_round = false;
    io->out_scale = 1.0f;
    io->out_asymmetry = 0.0f;
    io->bound_management = RPU_BM_ITERATIVE;
    io->noise_management = RPU_NM_ABS_MAX;
    io->w_noise = 0.0f;
    io->w_noise_type = RPU_WNOISE_NONE;
    io->ir_drop = 0.0f;
    io->ir_drop_g_ratio = (float)(1.0 / 0.35 / 5e-6);
    io->out_nonlinearity = 0.0f;
    io->out_nonlinearity_std = 0.0f;
    io->slope_calibration = 0.0f;
    io->v_offset_std = 0.0f;
    io->v_offset_w_min = -1.0f;
    io->r_series = 0.0f;
    io->w_read_asymmetry_dtod = 0.0f;
    io->max_bm_factor = 1000.0f;
    io->max_bm_res = 0.25f;
    io->bm_test_negative_bound = true;
    io->nm_thres = 0.0f;
    io->nm_assumed_wmax = 0.6f;
    io->nm_decay = 1e-3f;
}

static void update_params_default(rpu_update_params *up) {
    memset(up, 0, sizeof *up);
    up->desired_bl = 31;
    up->fixed_bl = true;
    up->pulse_type = RPU_PULSE_STOCHASTIC_COMPRESSED;
    up->res = 0.0f;
    up->x_res_implicit = 0.0f;
    up->d_res_implicit = 0.0f;
    up->d_sparsity = false;
    up->sto_round = false;
    up->update_bl_management = true;
    up->update_management = true;
    up->um_grad_scale = 1.0f;
    up->um_reg_scale = 1.0f;
}

static void drift_params_default(rpu_drift_params *d) {
    memset(d, 0, sizeof *d);
    d->nu = 0.0f;
    d->t_0 = 1.0f;
    d->reset_tol = 1e-7f;
    d->nu_dtod = 0.0f;
    d->nu_std = 0.0f;
    d->wg_ratio = 1.0f;
    d->g_offset = 0.0f;
    d->w_offset = 0.0f;
    d->nu_k = 0.0f;
    d->log_g0 = 0.0f;
    d->w_noise_std = 0.0f;
}

rpu_status rpu_device_params_default(rpu_device_params *dev, rpu_device_type type) {
    if (!dev) return RPU_FAIL(RPU_ERR_ARG, "rpu_device_params_default: dev is NULL");
    if ((int)type < 0 || (int)type > (int)RPU_DEVICE_PIECEWISE_STEP)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_device_params_default: unknown device type %d",
                        (int)type);
    memset(dev, 0, sizeof *dev);
    dev->type = type;
    /* PulsedDevice (§4.1); IdealDevice and FloatingPointDevice share the values they have
     * (construction_seed 0, diffusion 0, lifetime 0, reset_std 0.01, drift off). */
    dev->construction_seed = 0;
    dev->dw_min = 0.001f;
    dev->dw_min_dtod = 0.3f;
    dev->dw_min_dtod_log_normal = false;
    dev->dw_min_std = 0.3f;
    dev->up_down = 0.0f;
    dev->up_down_dtod = 0.01f;
    dev->w_max = 0.6f;
    dev->w_max_dtod = 0.3f;
    dev->w_min = -0.6f;
    dev->w_min_dtod = 0.3f;
    dev->enforce_consistency = true;
    dev->perfect_bias = false;
    dev->reset = 0.0f;
    dev->reset_dtod = 0.0f;
    dev->reset_std = 0.01f;
    dev->lifetime = 0.0f;
    dev->lifetime_dtod = 0.0f;
    dev->diffusion = 0.0f;
    dev->diffusion_dtod = 0.0f;
    dev->corrupt_devices_prob = 0.0f;
    dev->corrupt_devices_range = 0.1f;
    dev->write_noise_std = 0.0f;
    dev->apply_write_noise_on_set = true;
    drift_params_default(&dev->drift);
    /* Type-specific fields hold the defaults of the type that defines them, whatever the
     * selected type: LinearStep (§4.3) ... */
    dev->gamma_up = 0.0f;
    dev->gamma_down = 0.0f;
    dev->gamma_up_dtod = 0.05f;
    dev->gamma_down_dtod = 0.05f;
    dev->allow_increasing = false;
    dev->mean_bound_reference = true;
    dev->mult_noise = true;
    dev->reverse_up = false;
    dev->reverse_down = false;
    dev->reverse_offset = 0.01f;
    /* ... SoftBoundsPmax (§4.4) ... */
    dev->p_max = 1000.0f;
    dev->alpha = 0.0005f;
    dev->range_min = -1.0f;
    dev->range_max = 1.0f;
    /* ... PowStep (§4.5) ... */
    dev->pow_gamma = 1.0f;
    dev->pow_gamma_dtod = 0.1f;
    dev->pow_up_down = 0.0f;
    dev->pow_up_down_dtod = 0.0f;
    /* ... ExpStep (§4.6; gamma_up/gamma_down below) ... */
    dev->A_up = 0.00081f;
    dev->A_down = 0.36833f;
    dev->a = 0.244f;
    dev->b = 0.2425f;
    dev->dw_min_std_add = 0.0f;
    dev->dw_min_std_slope = 0.0f;
    /* ... PiecewiseStep (aihwkit: piecewise_up = piecewise_down = [1]). */
    dev->n_piecewise_up = 1;
    dev->piecewise_up[0] = 1.0f;
    dev->n_piecewise_down = 1;
    dev->piecewise_down[0] = 1.0f;

    switch (type) {
    case RPU_DEVICE_SOFT_BOUNDS:
    case RPU_DEVICE_SOFT_BOUNDS_PMAX:
        /* a LinearStep with gamma fixed to 1, no d2d on gamma, per-device bounds */
        dev->gamma_up = 1.0f;
        dev->gamma_down = 1.0f;
        dev->gamma_up_dtod = 0.0f;
        dev->gamma_down_dtod = 0.0f;
        dev->allow_increasing = false;
        dev->mean_bound_reference = false;
        break;
    case RPU_DEVICE_EXP_STEP:
        dev->gamma_up = 12.44625f;
        dev->gamma_down = 12.78785f;
        break;
    case RPU_DEVICE_FLOATING_POINT:
    case RPU_DEVICE_IDEAL:
    case RPU_DEVICE_CONSTANT_STEP:
    case RPU_DEVICE_LINEAR_STEP:
    case RPU_DEVICE_POW_STEP:
    case RPU_DEVICE_PIECEWISE_STEP:
        break;
    }
    return RPU_OK;
}

static void noise_model_default(rpu_noise_model_params *nm, rpu_noise_model_type type) {
    memset(nm, 0, sizeof *nm);
    nm->type = type;
    nm->prog_coeff[0] = 0.26348f;
    nm->prog_coeff[1] = 1.9650f;
    nm->prog_coeff[2] = -1.1731f;
    nm->g_max = 25.0f;
    nm->g_min = 0.0f;
    nm->t_read = 250e-9f;
    nm->t_0 = 20.0f;
    nm->prog_noise_scale = 1.0f;
    nm->read_noise_scale = 1.0f;
    nm->drift_scale = 1.0f;
    nm->prog_std = 0.2f;
    nm->drift_nu_mean = 0.1f;
    nm->drift_nu_std = 0.05f;
}

static void modifier_default(rpu_modifier_params *m) {
    memset(m, 0, sizeof *m);
    m->type = RPU_MOD_NONE;
    m->std_dev = 0.0f;
    m->per_batch_sample = false;
    m->res = 0.0f;
    m->sto_round = false;
    m->dorefa_clip = 0.6f;
    m->pdrop = 0.0f;
    m->enable_during_test = false;
    m->rel_to_actual_wmax = true;
    m->assumed_wmax = 1.0f;
    m->copy_last_column = false;
    m->n_coeffs = 3;
    m->coeffs[0] = 0.0105392f;
    m->coeffs[1] = 0.0768f;
    m->coeffs[2] = -0.046925f;
    m->g_max = 25.0f;
}

static void mapping_default(rpu_mapping_params *m) {
    memset(m, 0, sizeof *m);
    m->digital_bias = true;
    m->weight_scaling_omega = 0.0f;
    m->weight_scaling_columnwise = false;
    m->weight_scaling_lr_compensation = false;
    m->learn_out_scaling = false;
    m->out_scaling_columnwise = false;
    m->max_input_size = 512;
    m->max_output_size = 512;
}

rpu_status rpu_config_default(rpu_config *cfg, rpu_config_kind kind) {
    if (!cfg) return RPU_FAIL(RPU_ERR_ARG, "rpu_config_default: cfg is NULL");
    if ((int)kind < 0 || (int)kind > (int)RPU_KIND_INFERENCE)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_default: unknown kind %d", (int)kind);
    rpu_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    rpu_io_params_default(&c.forward);
    rpu_io_params_default(&c.backward);
    update_params_default(&c.update);
    noise_model_default(&c.noise_model, RPU_NOISE_MODEL_NONE);
    c.drift_compensation = RPU_DRIFT_COMP_NONE;
    c.clip.type = RPU_CLIP_NONE;
    c.clip.fixed_value = -1.0f;
    c.clip.sigma = 2.5f;
    c.remap.type = RPU_REMAP_NONE;
    c.remap.remapped_wmax = 1.0f;
    c.remap.max_scale_range = 0.0f;
    c.remap.max_scale_ref = 0.0f;
    modifier_default(&c.modifier);
    mapping_default(&c.mapping);

    rpu_device_type dev = RPU_DEVICE_CONSTANT_STEP;
    switch (kind) {
    case RPU_KIND_FLOATING_POINT:
        c.forward.is_perfect = true;
        c.backward.is_perfect = true;
        c.update.pulse_type = RPU_PULSE_NONE;
        dev = RPU_DEVICE_FLOATING_POINT;
        break;
    case RPU_KIND_SINGLE:
        dev = RPU_DEVICE_CONSTANT_STEP;
        break;
    case RPU_KIND_INFERENCE:
        c.backward.is_perfect = true;
        c.update.pulse_type = RPU_PULSE_NONE;
        dev = RPU_DEVICE_IDEAL;
        c.noise_model.type = RPU_NOISE_MODEL_PCM_LIKE;
        c.drift_compensation = RPU_DRIFT_COMP_GLOBAL;
        break;
    }
    RPU_CHECK(rpu_device_params_default(&c.device, dev));
    *cfg = c;
    return RPU_OK;
}

/* ---------------------------------------------------------------------------------------
 * Small text helpers.
 * ------------------------------------------------------------------------------------- */

/* Locale-independent ASCII classification (config text is ASCII). */
static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ieq(const char *a, const char *b) {
    for (; *a && *b; ++a, ++b)
        if (to_lower(*a) != to_lower(*b)) return false;
    return *a == *b;
}

/* Trims leading and trailing white space in place; returns the new start. */
static char *trim(char *s) {
    while (is_space(*s))
        ++s;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Copies src into dst (size bytes) trimmed; false if it does not fit. */
static bool copy_trimmed(char *dst, size_t size, const char *src) {
    while (is_space(*src))
        ++src;
    size_t n = strlen(src);
    while (n > 0 && is_space(src[n - 1]))
        --n;
    if (n >= size) return false;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return true;
}

static int count_names(const char *const *names) {
    int n = 0;
    while (names[n])
        ++n;
    return n;
}

/* Appends formatted text to the string in buf (size bytes), always NUL-terminated. */
static void appendf(char *buf, size_t size, const char *fmt, ...) RPU_PRINTF(3, 4);
static void appendf(char *buf, size_t size, const char *fmt, ...) {
    size_t pos = strlen(buf);
    if (pos + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + pos, size - pos, fmt, ap);
    va_end(ap);
}

/* Shortest %g text (6..9 significant digits) that reads back as exactly v. */
static void format_float(char *buf, size_t size, float v) {
    for (int prec = 6; prec <= 9; ++prec) {
        snprintf(buf, size, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

/* "what is accepted" for messages. */
static void describe_range(const field_desc *d, char *buf, size_t size) {
    bool lo_inf = isinf(d->lo), hi_inf = isinf(d->hi);
    if (lo_inf && hi_inf) return;
    if (hi_inf) {
        appendf(buf, size, " %s %.10g", (d->flags & F_LO_OPEN) ? ">" : ">=", d->lo);
    } else if (lo_inf) {
        appendf(buf, size, " %s %.10g", (d->flags & F_HI_OPEN) ? "<" : "<=", d->hi);
    } else {
        appendf(buf, size, " in %c%.10g, %.10g%c", (d->flags & F_LO_OPEN) ? '(' : '[', d->lo, d->hi,
                (d->flags & F_HI_OPEN) ? ')' : ']');
    }
}

static void describe(const field_desc *d, char *buf, size_t size) {
    buf[0] = '\0';
    switch (d->type) {
    case T_BOOL:
        appendf(buf, size, "true or false (also 1/0, yes/no, on/off)");
        break;
    case T_INT:
        appendf(buf, size, "an integer");
        describe_range(d, buf, size);
        break;
    case T_U64:
        appendf(buf, size, "an integer in [0, %" PRIu64 "]", UINT64_MAX);
        break;
    case T_FLOAT:
        appendf(buf, size, "a finite number");
        describe_range(d, buf, size);
        break;
    case T_LIST:
        if (d->flags & F_FIXED_LEN)
            appendf(buf, size, "a comma-separated list of exactly %zu finite numbers", d->cap);
        else
            appendf(buf, size, "a comma-separated list of at most %zu finite numbers", d->cap);
        if (!isinf(d->lo) || !isinf(d->hi)) {
            appendf(buf, size, ", each");
            describe_range(d, buf, size);
        }
        appendf(buf, size, ", optionally in [ ]");
        break;
    case T_ENUM:
    case T_KIND:
    case T_DEVTYPE:
        appendf(buf, size, "one of:");
        for (int i = 0; d->names[i]; ++i)
            appendf(buf, size, "%s %s", i ? "," : "", d->names[i]);
        break;
    }
}

static bool in_range(const field_desc *d, double x) {
    if (d->flags & F_LO_OPEN ? !(x > d->lo) : !(x >= d->lo)) return false;
    if (d->flags & F_HI_OPEN ? !(x < d->hi) : !(x <= d->hi)) return false;
    return true;
}

/* Edit distance (case-insensitive) between two short strings; SIZE_MAX if too long. */
static size_t edit_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    enum { MAXLEN = 127 };
    if (na > MAXLEN || nb > MAXLEN) return SIZE_MAX;
    size_t prev[MAXLEN + 1], cur[MAXLEN + 1];
    for (size_t j = 0; j <= nb; ++j)
        prev[j] = j;
    for (size_t i = 1; i <= na; ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= nb; ++j) {
            size_t cost = to_lower(a[i - 1]) != to_lower(b[j - 1]);
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            cur[j] = best;
        }
        memcpy(prev, cur, (nb + 1) * sizeof prev[0]);
    }
    return prev[nb];
}

static const char *last_component(const char *key) {
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

/* The known key closest to an unknown one, or NULL if none is close. A key whose last
 * component matches (e.g. "out_noise" -> "forward.out_noise") counts as close. */
static const char *closest_key(const char *key) {
    size_t n = strlen(key);
    if (n == 0) return NULL;
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < N_FIELDS; ++i) {
        size_t d = edit_distance(key, fields[i].key);
        if (d > 1 && ieq(last_component(key), last_component(fields[i].key))) d = 1;
        if (d < best_d) {
            best_d = d;
            best = fields[i].key;
        }
    }
    size_t limit = n / 4 > 2 ? n / 4 : 2;
    return best_d <= limit ? best : NULL;
}

static const field_desc *find_field(const char *key) {
    for (size_t i = 0; i < N_FIELDS; ++i)
        if (strcmp(fields[i].key, key) == 0) return &fields[i];
    return NULL;
}

static void unknown_key_message(const char *key, char *err, size_t errsz) {
    const char *near = closest_key(key);
    snprintf(err, errsz, "unknown config key \"%.100s\"", key);
    if (near)
        appendf(err, errsz, " (did you mean \"%s\"?)", near);
    else
        appendf(err, errsz, " (rpu_config_keys() lists the %zu known keys)", N_FIELDS);
}

/* ---------------------------------------------------------------------------------------
 * Field access.
 * ------------------------------------------------------------------------------------- */

static void *field_ptr(rpu_config *cfg, const field_desc *d) {
    return (char *)cfg + d->off;
}

static const void *field_cptr(const rpu_config *cfg, const field_desc *d) {
    return (const char *)cfg + d->off;
}

static int get_int(const rpu_config *cfg, size_t off) {
    int v;
    memcpy(&v, (const char *)cfg + off, sizeof v);
    return v;
}

static void set_int(rpu_config *cfg, size_t off, int v) {
    memcpy((char *)cfg + off, &v, sizeof v);
}

static int list_count(const rpu_config *cfg, const field_desc *d) {
    return (d->flags & F_FIXED_LEN) ? (int)d->cap : get_int(cfg, d->cnt_off);
}

/* Formats the value of one field as config text. */
static void format_value(const rpu_config *cfg, const field_desc *d, char *buf, size_t size) {
    const void *p = field_cptr(cfg, d);
    buf[0] = '\0';
    switch (d->type) {
    case T_BOOL:
        snprintf(buf, size, "%s", *(const bool *)p ? "true" : "false");
        break;
    case T_INT:
        snprintf(buf, size, "%d", get_int(cfg, d->off));
        break;
    case T_U64:
        snprintf(buf, size, "%" PRIu64, *(const uint64_t *)p);
        break;
    case T_FLOAT:
        format_float(buf, size, *(const float *)p);
        break;
    case T_ENUM:
    case T_KIND:
    case T_DEVTYPE: {
        int v = get_int(cfg, d->off);
        if (v >= 0 && v < count_names(d->names))
            snprintf(buf, size, "%s", d->names[v]);
        else
            snprintf(buf, size, "%d", v); /* invalid stored value; validate reports it */
        break;
    }
    case T_LIST: {
        const float *arr = (const float *)p;
        int n = list_count(cfg, d);
        if (n < 0) n = 0;
        if ((size_t)n > d->cap) n = (int)d->cap;
        appendf(buf, size, "[");
        for (int i = 0; i < n; ++i) {
            char num[48];
            format_float(num, sizeof num, arr[i]);
            appendf(buf, size, "%s%s", i ? ", " : "", num);
        }
        appendf(buf, size, "]");
        break;
    }
    }
}

/* A parsed value, before it is stored. */
typedef struct {
    bool b;
    int i;
    uint64_t u;
    float f;
    int n;
    float list[RPU_MAX_PIECEWISE];
} parsed_value;

static bool parse_float_token(const char *s, float *out) {
    if (*s == '\0') return false;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (end == s || *end != '\0') return false;
    *out = v;
    return true;
}

/* Parses trimmed text s for field d into v; on failure writes a message naming the key. */
static bool parse_value(const field_desc *d, const char *s, parsed_value *v, char *err,
                        size_t errsz) {
    char accepted[512];
    describe(d, accepted, sizeof accepted);
    switch (d->type) {
    case T_BOOL: {
        static const char *const yes[] = {"true", "1", "yes", "on"};
        static const char *const no[] = {"false", "0", "no", "off"};
        for (int i = 0; i < 4; ++i) {
            if (ieq(s, yes[i])) {
                v->b = true;
                return true;
            }
            if (ieq(s, no[i])) {
                v->b = false;
                return true;
            }
        }
        snprintf(err, errsz, "%s: \"%.64s\" is not a boolean; expected %s", d->key, s, accepted);
        return false;
    }
    case T_INT: {
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (*s == '\0' || end == s || *end != '\0') {
            snprintf(err, errsz, "%s: \"%.64s\" is not an integer; expected %s", d->key, s,
                     accepted);
            return false;
        }
        if (errno == ERANGE || x < INT_MIN || x > INT_MAX || !in_range(d, (double)x)) {
            snprintf(err, errsz, "%s: %.64s is out of range; expected %s", d->key, s, accepted);
            return false;
        }
        v->i = (int)x;
        return true;
    }
    case T_U64: {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (*s == '\0' || strchr(s, '-') || end == s || *end != '\0') {
            snprintf(err, errsz, "%s: \"%.64s\" is not a non-negative integer; expected %s", d->key,
                     s, accepted);
            return false;
        }
        if (errno == ERANGE) {
            snprintf(err, errsz, "%s: %.64s is out of range; expected %s", d->key, s, accepted);
            return false;
        }
        v->u = (uint64_t)x;
        return true;
    }
    case T_FLOAT: {
        float x;
        if (!parse_float_token(s, &x)) {
            snprintf(err, errsz, "%s: \"%.64s\" is not a number; expected %s", d->key, s, accepted);
            return false;
        }
        if (!isfinite(x)) {
            snprintf(err, errsz, "%s: \"%.64s\" is not a finite float; expected %s", d->key, s,
                     accepted);
            return false;
        }
        if (!in_range(d, (double)x)) {
            snprintf(err, errsz, "%s: %.64s is out of range; expected %s", d->key, s, accepted);
            return false;
        }
        v->f = x;
        return true;
    }
    case T_ENUM:
    case T_KIND:
    case T_DEVTYPE:
        for (int i = 0; d->names[i]; ++i) {
            if (ieq(s, d->names[i])) {
                v->i = i;
                return true;
            }
        }
        snprintf(err, errsz, "%s: unknown value \"%.64s\"; expected %s", d->key, s, accepted);
        return false;
    case T_LIST: {
        char body[VALUE_MAX];
        if (!copy_trimmed(body, sizeof body, s)) {
            snprintf(err, errsz, "%s: value too long; expected %s", d->key, accepted);
            return false;
        }
        char *b = body;
        size_t len = strlen(b);
        if (len > 0 && b[0] == '[') {
            if (b[len - 1] != ']') {
                snprintf(err, errsz, "%s: \"%.64s\" has '[' without closing ']'; expected %s",
                         d->key, s, accepted);
                return false;
            }
            b[len - 1] = '\0';
            b = trim(b + 1);
        }
        int n = 0;
        if (*b != '\0') {
            for (;;) {
                char *comma = strchr(b, ',');
                if (comma) *comma = '\0';
                char *tok = trim(b);
                float x;
                if (!parse_float_token(tok, &x) || !isfinite(x)) {
                    snprintf(err, errsz,
                             "%s: element %d (\"%.32s\") of \"%.64s\" is not a finite number; "
                             "expected %s",
                             d->key, n + 1, tok, s, accepted);
                    return false;
                }
                if (!in_range(d, (double)x)) {
                    snprintf(err, errsz, "%s: element %d (%.32s) is out of range; expected %s",
                             d->key, n + 1, tok, accepted);
                    return false;
                }
                if ((size_t)n >= d->cap) {
                    snprintf(err, errsz, "%s: too many elements; expected %s", d->key, accepted);
                    return false;
                }
                v->list[n++] = x;
                if (!comma) break;
                b = comma + 1;
            }
        }
        if ((d->flags & F_FIXED_LEN) && (size_t)n != d->cap) {
            snprintf(err, errsz, "%s: got %d elements; expected %s", d->key, n, accepted);
            return false;
        }
        v->n = n;
        return true;
    }
    }
    snprintf(err, errsz, "%s: internal error: unknown field type", d->key);
    return false;
}

/* Stores a parsed value; "kind" and "device.type" reset what they govern. */
static void store_value(rpu_config *cfg, const field_desc *d, const parsed_value *v) {
    void *p = field_ptr(cfg, d);
    switch (d->type) {
    case T_BOOL:
        *(bool *)p = v->b;
        break;
    case T_INT:
    case T_ENUM:
        set_int(cfg, d->off, v->i);
        break;
    case T_U64:
        *(uint64_t *)p = v->u;
        break;
    case T_FLOAT:
        *(float *)p = v->f;
        break;
    case T_KIND:
        (void)rpu_config_default(cfg, (rpu_config_kind)v->i);
        break;
    case T_DEVTYPE:
        (void)rpu_device_params_default(&cfg->device, (rpu_device_type)v->i);
        break;
    case T_LIST: {
        float *arr = (float *)p;
        for (size_t i = 0; i < d->cap; ++i)
            arr[i] = (int)i < v->n ? v->list[i] : 0.0f;
        if (!(d->flags & F_FIXED_LEN)) set_int(cfg, d->cnt_off, v->n);
        break;
    }
    }
}

/* Sets one field; on failure cfg is untouched and err holds the message. */
static rpu_status set_one(rpu_config *cfg, const char *key, const char *value, char *err,
                          size_t errsz) {
    char k[256] = {0};
    if (!copy_trimmed(k, sizeof k, key)) {
        snprintf(err, errsz, "unknown config key \"%.100s...\" (too long)", key);
        return RPU_ERR_CONFIG;
    }
    const field_desc *d = find_field(k);
    if (!d) {
        unknown_key_message(k, err, errsz);
        return RPU_ERR_CONFIG;
    }
    char val[VALUE_MAX];
    if (!copy_trimmed(val, sizeof val, value)) {
        snprintf(err, errsz, "%s: value too long (at most %d characters)", d->key, VALUE_MAX - 1);
        return RPU_ERR_CONFIG;
    }
    parsed_value v;
    memset(&v, 0, sizeof v);
    if (!parse_value(d, val, &v, err, errsz)) return RPU_ERR_CONFIG;
    store_value(cfg, d, &v);
    return RPU_OK;
}

/* ---------------------------------------------------------------------------------------
 * Public API.
 * ------------------------------------------------------------------------------------- */

rpu_status rpu_config_set(rpu_config *cfg, const char *key, const char *value) {
    if (!cfg || !key || !value)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_set: %s is NULL",
                        !cfg ? "cfg" : (!key ? "key" : "value"));
    char err[ERR_MAX];
    if (set_one(cfg, key, value, err, sizeof err) != RPU_OK)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s", err);
    return RPU_OK;
}

rpu_status rpu_config_get(const rpu_config *cfg, const char *key, char *buf, size_t size) {
    if (!cfg || !key || !buf)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_get: %s is NULL",
                        !cfg ? "cfg" : (!key ? "key" : "buf"));
    const field_desc *d = find_field(key);
    if (!d) {
        char err[ERR_MAX];
        unknown_key_message(key, err, sizeof err);
        return RPU_FAIL(RPU_ERR_CONFIG, "%s", err);
    }
    char val[VALUE_MAX];
    format_value(cfg, d, val, sizeof val);
    size_t need = strlen(val) + 1;
    if (need > size)
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_config_get(%s): buffer of %zu bytes too small (%zu needed)", d->key,
                        size, need);
    memcpy(buf, val, need);
    return RPU_OK;
}

/* Checks the stored value of one field against its type and range. */
static bool check_field(const rpu_config *cfg, const field_desc *d, char *err, size_t errsz) {
    char accepted[512];
    const void *p = field_cptr(cfg, d);
    switch (d->type) {
    case T_BOOL:
    case T_U64:
        return true;
    case T_INT: {
        int v = get_int(cfg, d->off);
        if (in_range(d, (double)v)) return true;
        describe(d, accepted, sizeof accepted);
        snprintf(err, errsz, "%s = %d is out of range; expected %s", d->key, v, accepted);
        return false;
    }
    case T_FLOAT: {
        float v = *(const float *)p;
        if (isfinite(v) && in_range(d, (double)v)) return true;
        describe(d, accepted, sizeof accepted);
        snprintf(err, errsz, "%s = %g is invalid; expected %s", d->key, (double)v, accepted);
        return false;
    }
    case T_ENUM:
    case T_KIND:
    case T_DEVTYPE: {
        int v = get_int(cfg, d->off);
        if (v >= 0 && v < count_names(d->names)) return true;
        describe(d, accepted, sizeof accepted);
        snprintf(err, errsz, "%s = %d is not a valid value; expected %s", d->key, v, accepted);
        return false;
    }
    case T_LIST: {
        int n = list_count(cfg, d);
        describe(d, accepted, sizeof accepted);
        if (n < 0 || (size_t)n > d->cap) {
            snprintf(err, errsz, "%s has %d elements; expected %s", d->key, n, accepted);
            return false;
        }
        const float *arr = (const float *)p;
        for (int i = 0; i < n; ++i) {
            if (!isfinite(arr[i]) || !in_range(d, (double)arr[i])) {
                snprintf(err, errsz, "%s: element %d = %g is invalid; expected %s", d->key, i + 1,
                         (double)arr[i], accepted);
                return false;
            }
        }
        return true;
    }
    }
    return true;
}

static bool is_pulsed_device(rpu_device_type t) {
    return t != RPU_DEVICE_FLOATING_POINT && t != RPU_DEVICE_IDEAL;
}

static rpu_status check_io(const rpu_io_params *io, const char *dir) {
    if (!io->is_perfect && io->noise_management != RPU_NM_NONE && io->inp_bound != 1.0f)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s.inp_bound = %g: must be 1 when %s.noise_management is %s and "
                        "%s.is_perfect is false (set %s.noise_management = none to use "
                        "another input bound)",
                        dir, (double)io->inp_bound, dir, nm_names[io->noise_management], dir, dir);
    return RPU_OK;
}

rpu_status rpu_config_validate(const rpu_config *cfg) {
    if (!cfg) return RPU_FAIL(RPU_ERR_ARG, "rpu_config_validate: cfg is NULL");
    char err[ERR_MAX];
    for (size_t i = 0; i < N_FIELDS; ++i)
        if (!check_field(cfg, &fields[i], err, sizeof err))
            return RPU_FAIL(RPU_ERR_CONFIG, "%s", err);

    RPU_CHECK(check_io(&cfg->forward, "forward"));
    RPU_CHECK(check_io(&cfg->backward, "backward"));

    const rpu_device_params *dev = &cfg->device;
    if (dev->type == RPU_DEVICE_SOFT_BOUNDS_PMAX) {
        /* bounds derive from the range (spec §4.4): w_min = range_min,
         * w_max = range_min + (range_max - range_min) / (1 - exp(-p_max alpha)) */
        if (!(dev->range_max > dev->range_min))
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.range_max (%g) must be greater than device.range_min (%g)",
                            (double)dev->range_max, (double)dev->range_min);
        double span = ((double)dev->range_max - dev->range_min) /
                      (1.0 - exp(-(double)dev->p_max * dev->alpha));
        if (dev->range_min > 0.0f || (double)dev->range_min + span < 0.0)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.range_min = %g, device.range_max = %g: the derived weight "
                            "range [%g, %g] must contain 0",
                            (double)dev->range_min, (double)dev->range_max, (double)dev->range_min,
                            (double)dev->range_min + span);
    } else if (is_pulsed_device(dev->type)) {
        if (dev->w_min > 0.0f || dev->w_max < 0.0f)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.w_min = %g, device.w_max = %g: the weight range must "
                            "contain 0 (device.w_min <= 0 <= device.w_max)",
                            (double)dev->w_min, (double)dev->w_max);
    }
    if (dev->type == RPU_DEVICE_PIECEWISE_STEP) {
        if (dev->n_piecewise_up < 1 || dev->n_piecewise_up != dev->n_piecewise_down)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.piecewise_up (%d elements) and device.piecewise_down (%d "
                            "elements) must be non-empty and of the same length",
                            dev->n_piecewise_up, dev->n_piecewise_down);
    }
    if (cfg->noise_model.type != RPU_NOISE_MODEL_NONE &&
        !(cfg->noise_model.g_max > cfg->noise_model.g_min))
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "noise_model.g_max (%g) must be greater than noise_model.g_min (%g)",
                        (double)cfg->noise_model.g_max, (double)cfg->noise_model.g_min);
    if ((cfg->modifier.type == RPU_MOD_POLY || cfg->modifier.type == RPU_MOD_PROG_NOISE) &&
        cfg->modifier.n_coeffs < 1)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "modifier.coeffs must not be empty when modifier.type "
                        "is %s",
                        modifier_names[cfg->modifier.type]);
    return RPU_OK;
}

/* Writes all "key = value" lines into buf (size bytes, may be 0 with buf NULL); returns the
 * length of the full text. */
static size_t emit_text(const rpu_config *cfg, char *buf, size_t size) {
    size_t pos = 0;
    char val[VALUE_MAX];
    for (size_t i = 0; i < N_FIELDS; ++i) {
        format_value(cfg, &fields[i], val, sizeof val);
        char *dst = (buf && pos < size) ? buf + pos : NULL;
        size_t room = dst ? size - pos : 0;
        int n = snprintf(dst, room, "%s = %s\n", fields[i].key, val);
        if (n > 0) pos += (size_t)n;
    }
    return pos;
}

rpu_status rpu_config_write(const rpu_config *cfg, FILE *out) {
    if (!cfg || !out)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_write: %s is NULL", !cfg ? "cfg" : "out");
    char val[VALUE_MAX];
    for (size_t i = 0; i < N_FIELDS; ++i) {
        format_value(cfg, &fields[i], val, sizeof val);
        if (fprintf(out, "%s = %s\n", fields[i].key, val) < 0)
            return RPU_FAIL(RPU_ERR_IO, "rpu_config_write: write failed at key %s", fields[i].key);
    }
    return RPU_OK;
}

rpu_status rpu_config_to_text(const rpu_config *cfg, char **text) {
    if (!cfg || !text)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_to_text: %s is NULL", !cfg ? "cfg" : "text");
    size_t len = emit_text(cfg, NULL, 0);
    char *s = malloc(len + 1);
    if (!s)
        return RPU_FAIL(RPU_ERR_NOMEM, "rpu_config_to_text: cannot allocate %zu bytes", len + 1);
    emit_text(cfg, s, len + 1);
    *text = s;
    return RPU_OK;
}

rpu_status rpu_config_parse(rpu_config *cfg, const char *text, const char *source) {
    if (!cfg || !text)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_config_parse: %s is NULL", !cfg ? "cfg" : "text");
    const char *src = source ? source : "<config text>";
    rpu_config tmp = *cfg;
    char err[ERR_MAX];
    ini_reader r;
    ini_open(&r, text, strlen(text));
    rpu_status s = RPU_OK;
    for (ini_token t; s == RPU_OK && (t = ini_next(&r)) != INI_END;) {
        if (t == INI_ERROR)
            s = RPU_FAIL(r.nomem ? RPU_ERR_NOMEM : RPU_ERR_CONFIG, "%s:%d: %s", src, r.line, r.err);
        else if (t == INI_SECTION)
            s = RPU_FAIL(RPU_ERR_CONFIG,
                         "%s:%d: [%.80s]: config text has no sections (write forward.out_noise "
                         "= 0.1, not [forward])",
                         src, r.line, r.name);
        else if (set_one(&tmp, r.name, r.value, err, sizeof err) != RPU_OK)
            s = RPU_FAIL(RPU_ERR_CONFIG, "%s:%d: %s", src, r.line, err);
    }
    ini_close(&r);
    if (s == RPU_OK) *cfg = tmp;
    return s;
}

static bool field_equal(const rpu_config *a, const rpu_config *b, const field_desc *d) {
    const void *pa = field_cptr(a, d), *pb = field_cptr(b, d);
    switch (d->type) {
    case T_BOOL:
        return *(const bool *)pa == *(const bool *)pb;
    case T_INT:
    case T_ENUM:
    case T_KIND:
    case T_DEVTYPE:
        return get_int(a, d->off) == get_int(b, d->off);
    case T_U64:
        return *(const uint64_t *)pa == *(const uint64_t *)pb;
    case T_FLOAT:
        return *(const float *)pa == *(const float *)pb;
    case T_LIST: {
        int na = list_count(a, d), nb = list_count(b, d);
        if (na != nb) return false;
        if (na < 0 || (size_t)na > d->cap) return false;
        const float *fa = (const float *)pa, *fb = (const float *)pb;
        for (int i = 0; i < na; ++i)
            if (fa[i] != fb[i]) return false;
        return true;
    }
    }
    return false;
}

bool rpu_config_equal(const rpu_config *a, const rpu_config *b) {
    if (!a || !b) return a == b;
    for (size_t i = 0; i < N_FIELDS; ++i)
        if (!field_equal(a, b, &fields[i])) return false;
    return true;
}

int rpu_config_keys(const char *const **keys) {
    if (keys) *keys = field_keys;
    return (int)N_FIELDS;
}
