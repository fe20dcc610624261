/* rpusim — the key table of rpu_config: the enum spellings, one row per settable field,
 * key lookup with suggestions, and the conversion of one field's value to and from text
 * (with its accepted range). See config_table_impl.h. No mutable static state. */
#include "config_table_impl.h"

#include "config_ini_impl.h"
#include "error_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
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
static const char *const device_names[] = {"floating_point",
                                           "ideal",
                                           "constant_step",
                                           "linear_step",
                                           "soft_bounds",
                                           "soft_bounds_pmax",
                                           "exp_step",
                                           "pow_step",
                                           "piecewise_step",
                                           "soft_bounds_reference",
                                           "vector",
                                           "reference",
                                           "one_sided",
                                           "transfer",
                                           "buffered_transfer",
                                           "chopped_transfer",
                                           "dynamic_transfer",
                                           "mixed_precision",
                                           NULL};
_Static_assert(sizeof device_names / sizeof device_names[0] ==
                   (size_t)RPU_DEVICE_MIXED_PRECISION + 2,
               "device_names: one name per rpu_device_type, in order");
static const char *const policy_names[] = {"all", "single_fixed", "single_sequential",
                                           "single_random", NULL};
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
_Static_assert(sizeof(rpu_update_policy) == sizeof(int), "enum size");
_Static_assert(RPU_MAX_MODIFIER_COEFFS <= RPU_MAX_PIECEWISE, "list scratch size");

/* ---------------------------------------------------------------------------------------
 * The field table.
 * ------------------------------------------------------------------------------------- */

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

/* UpdateParameters (spec §3.1): the main update and the compounds' transfer/refresh writes. */
#define RPU_UPDATE_FIELDS(X, P, M)                                                                 \
    FI(X, P "desired_bl", M.desired_bl, 1.0)                                                       \
    FB(X, P "fixed_bl", M.fixed_bl)                                                                \
    FE(X, P "pulse_type", M.pulse_type, pulse_names)                                               \
    RF_PROB(X, P "res", M.res)                                                                     \
    RF_PROB(X, P "x_res_implicit", M.x_res_implicit)                                               \
    RF_PROB(X, P "d_res_implicit", M.d_res_implicit)                                               \
    FB(X, P "d_sparsity", M.d_sparsity)                                                            \
    FB(X, P "sto_round", M.sto_round)                                                              \
    FB(X, P "update_bl_management", M.update_bl_management)                                        \
    FB(X, P "update_management", M.update_management)                                              \
    RF_NONNEG(X, P "um_grad_scale", M.um_grad_scale)                                               \
    RF_NONNEG(X, P "um_reg_scale", M.um_reg_scale)

/* Compound-level parameters (compound spec §2.1, §3, §4.1, §5.1) under aihwkit's names.
 * Which compound types a key belongs to follows from where its member sits in
 * rpu_compound_params (config_field_types below). The sub-devices' keys,
 * device.unit_cell_devices.N.*, are not rows: they are the single-device rows (device.*)
 * moved onto sub-device N (config_sub_field). */
/* BufferedTransferCompound, ChoppedTransferCompound, DynamicTransferCompound (compound spec
 * §6.1, §7.1, §8.1); dechop_visible_weight is rpusim's switch for the post-1.1 visible
 * weight of §7.7. */
#define RPU_TRANSFER2_FIELDS(X)                                                                    \
    RF_POS(X, "device.thres_scale", compound.thres_scale)                                          \
    RF_POS(X, "device.step", compound.step)                                                        \
    RF_PROB(X, "device.momentum", compound.momentum)                                               \
    FB(X, "device.forget_buffer", compound.forget_buffer)                                          \
    RF_PROB(X, "device.in_chop_prob", compound.in_chop_prob)                                       \
    FB(X, "device.in_chop_random", compound.in_chop_random)                                        \
    RF_PROB(X, "device.out_chop_prob", compound.out_chop_prob)                                     \
    RF_ANY(X, "device.buffer_granularity", compound.buffer_granularity)                            \
    RF_NONNEG(X, "device.auto_granularity", compound.auto_granularity)                             \
    FB(X, "device.no_buffer", compound.no_buffer)                                                  \
    FB(X, "device.auto_scale", compound.auto_scale)                                                \
    RF_PROB(X, "device.auto_momentum", compound.auto_momentum)                                     \
    FB(X, "device.correct_gradient_magnitudes", compound.correct_gradient_magnitudes)              \
    FB(X, "device.dechop_visible_weight", compound.dechop_visible_weight)                          \
    FB(X, "device.experimental_correct_accumulation", compound.experimental_correct_accumulation)  \
    RF_NONNEG(X, "device.buffer_cap", compound.buffer_cap)                                         \
    RF_NONNEG(X, "device.tail_weightening", compound.tail_weightening)

/* MixedPrecisionCompound (compound spec §9.1); it also takes device.transfer_every and
 * device.transfer_lr above. */
#define RPU_MIXED_FIELDS(X)                                                                        \
    FI(X, "device.n_rows_per_transfer", compound.n_rows_per_transfer, -1.0)                        \
    FB(X, "device.random_row", compound.random_row)                                                \
    RF_NONNEG(X, "device.granularity", compound.granularity)                                       \
    FI(X, "device.n_x_bins", compound.n_x_bins, 0.0)                                               \
    FI(X, "device.n_d_bins", compound.n_d_bins, 0.0)                                               \
    FB(X, "device.stoc_round_x", compound.stoc_round_x)                                            \
    FB(X, "device.stoc_round_d", compound.stoc_round_d)

#define RPU_COMPOUND_FIELDS(X)                                                                     \
    FE(X, "device.update_policy", compound.update_policy, policy_names)                            \
    FI(X, "device.first_update_idx", compound.first_update_idx, 0.0)                               \
    RL_ANY(X, "device.gamma_vec", compound.gamma_vec, compound.n_gamma_vec)                        \
    FI(X, "device.refresh_every", compound.refresh_every, 0.0)                                     \
    RF_ANY(X, "device.refresh_upper_thres", compound.refresh_upper_thres)                          \
    RF_ANY(X, "device.refresh_lower_thres", compound.refresh_lower_thres)                          \
    RPU_IO_FIELDS(X, "device.refresh_forward.", compound.refresh_forward)                          \
    RPU_UPDATE_FIELDS(X, "device.refresh_update.", compound.refresh_update)                        \
    FB(X, "device.copy_inverted", compound.copy_inverted)                                          \
    FB(X, "device.units_in_mbatch", compound.units_in_mbatch)                                      \
    RF_ANY(X, "device.gamma", compound.gamma)                                                      \
    RF_ANY(X, "device.transfer_every", compound.transfer_every)                                    \
    FB(X, "device.no_self_transfer", compound.no_self_transfer)                                    \
    RL_NONNEG(X, "device.transfer_every_vec", compound.transfer_every_vec,                         \
              compound.n_transfer_every_vec)                                                       \
    FI(X, "device.n_reads_per_transfer", compound.n_reads_per_transfer, 1.0)                       \
    FB(X, "device.transfer_columns", compound.transfer_columns)                                    \
    RF_PROB(X, "device.with_reset_prob", compound.with_reset_prob)                                 \
    FB(X, "device.random_selection", compound.random_selection)                                    \
    RF_ANY(X, "device.fast_lr", compound.fast_lr)                                                  \
    FB(X, "device.scale_fast_lr", compound.scale_fast_lr)                                          \
    RF_ANY(X, "device.transfer_lr", compound.transfer_lr)                                          \
    RL_ANY(X, "device.transfer_lr_vec", compound.transfer_lr_vec, compound.n_transfer_lr_vec)      \
    FB(X, "device.scale_transfer_lr", compound.scale_transfer_lr)                                  \
    RPU_IO_FIELDS(X, "device.transfer_forward.", compound.transfer_forward)                        \
    RPU_UPDATE_FIELDS(X, "device.transfer_update.", compound.transfer_update)                      \
    RPU_TRANSFER2_FIELDS(X)                                                                        \
    RPU_MIXED_FIELDS(X)

/* Every key, in the order rpu_config_write prints them: "kind" and "device.type" first,
 * because setting them resets other fields. */
#define RPU_CONFIG_FIELDS(X)                                                                       \
    X(T_KIND, "kind", kind, kind, 0.0, 0.0, 0u, kind_names)                                        \
    X(T_DEVTYPE, "device.type", device.type, kind, 0.0, 0.0, 0u, device_names)                     \
    RPU_IO_FIELDS(X, "forward.", forward)                                                          \
    RPU_IO_FIELDS(X, "backward.", backward)                                                        \
    /* UpdateParameters (spec §3.1) */                                                            \
    RPU_UPDATE_FIELDS(X, "update.", update)                                                        \
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
    /* SoftBoundsReference (spec §4.4) */                                                         \
    RF_NONNEG(X, "device.slope_up_dtod", device.slope_up_dtod)                                     \
    RF_NONNEG(X, "device.slope_down_dtod", device.slope_down_dtod)                                 \
    RF_ANY(X, "device.reference_mean", device.reference_mean)                                      \
    RF_NONNEG(X, "device.reference_std", device.reference_std)                                     \
    FB(X, "device.subtract_symmetry_point", device.subtract_symmetry_point)                        \
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
    RF_NONNEG(X, "noise_model.prog_coeff_g_max_reference", noise_model.prog_coeff_g_max_reference) \
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
    FI(X, "mapping.max_output_size", mapping.max_output_size, 0.0)                                 \
    RPU_COMPOUND_FIELDS(X)

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

const field_desc config_fields[] = {RPU_CONFIG_FIELDS(AS_DESC)};
const char *const config_field_keys[] = {RPU_CONFIG_FIELDS(AS_KEY)};

#define N_FIELDS (sizeof config_fields / sizeof config_fields[0])
const size_t config_n_fields = N_FIELDS;
_Static_assert(N_FIELDS == sizeof config_field_keys / sizeof config_field_keys[0],
               "one key per field");

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
    case T_SUBTYPE:
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
        size_t d = edit_distance(key, config_fields[i].key);
        if (d > 1 && ieq(last_component(key), last_component(config_fields[i].key))) d = 1;
        if (d < best_d) {
            best_d = d;
            best = config_fields[i].key;
        }
    }
    size_t limit = n / 4 > 2 ? n / 4 : 2;
    return best_d <= limit ? best : NULL;
}

const field_desc *config_find_field(const char *key) {
    for (size_t i = 0; i < N_FIELDS; ++i)
        if (strcmp(config_fields[i].key, key) == 0) return &config_fields[i];
    return NULL;
}

void config_unknown_key_message(const char *key, char *err, size_t errsz) {
    const char *near = closest_key(key);
    char vis[160];
    ini_visible(vis, sizeof vis, key, 100);
    snprintf(err, errsz, "unknown config key \"%s\"", vis);
    if (near)
        appendf(err, errsz, " (did you mean \"%s\"?)", near);
    else
        appendf(err, errsz, " (rpu_config_keys() lists the %zu known keys)", N_FIELDS);
}

/* ---------------------------------------------------------------------------------------
 * Which device types a key belongs to, and the sub-device keys.
 * ------------------------------------------------------------------------------------- */

#define TBIT(t) (1u << (unsigned)(t))
#define SINGLE_TYPES (TBIT(RPU_DEVICE_SOFT_BOUNDS_REFERENCE + 1) - 1u)
#define ALL_TYPES (TBIT(RPU_DEVICE_MIXED_PRECISION + 1) - 1u)
#define CHOPPED_TYPES (TBIT(RPU_DEVICE_CHOPPED_TRANSFER) | TBIT(RPU_DEVICE_DYNAMIC_TRANSFER))
#define BUFFERED_TYPES (TBIT(RPU_DEVICE_BUFFERED_TRANSFER) | CHOPPED_TYPES)
#define TRANSFER_TYPES (TBIT(RPU_DEVICE_TRANSFER) | BUFFERED_TYPES)
#define UNIT_CELL_TYPES                                                                            \
    (TBIT(RPU_DEVICE_VECTOR) | TBIT(RPU_DEVICE_REFERENCE) | TBIT(RPU_DEVICE_ONE_SIDED))
#define CMP_OFF(m) offsetof(rpu_config, compound.m)

bool config_is_single_device_field(const field_desc *d) {
    const size_t o0 = offsetof(rpu_config, device), o1 = o0 + sizeof(rpu_device_params);
    return d->off >= o0 && d->off < o1 && d->type != T_DEVTYPE &&
           d->off != offsetof(rpu_config, device.construction_seed);
}

/* Bit t set when the row applies to device.type t. Compound members are grouped in
 * rpu_compound_params by the types that have them. */
static unsigned config_field_types(const field_desc *d) {
    if (config_is_single_device_field(d)) return SINGLE_TYPES;
    const size_t o = d->off;
    if (o < CMP_OFF(update_policy) ||
        o >= offsetof(rpu_config, compound) + sizeof(rpu_compound_params))
        return ALL_TYPES;
    if (o < CMP_OFF(n_gamma_vec)) return TBIT(RPU_DEVICE_VECTOR) | TBIT(RPU_DEVICE_REFERENCE);
    if (o < CMP_OFF(refresh_every))
        return TBIT(RPU_DEVICE_VECTOR) | TBIT(RPU_DEVICE_REFERENCE) | TRANSFER_TYPES;
    if (o < CMP_OFF(units_in_mbatch)) return TBIT(RPU_DEVICE_ONE_SIDED);
    if (o < CMP_OFF(gamma)) return TBIT(RPU_DEVICE_ONE_SIDED) | TRANSFER_TYPES;
    if (o < CMP_OFF(thres_scale)) {
        /* mixed_precision shares two transfer keys (§9.1) */
        if (o == CMP_OFF(transfer_every) || o == CMP_OFF(transfer_lr))
            return TRANSFER_TYPES | TBIT(RPU_DEVICE_MIXED_PRECISION);
        return TRANSFER_TYPES;
    }
    if (o < CMP_OFF(step)) return TBIT(RPU_DEVICE_BUFFERED_TRANSFER);
    if (o < CMP_OFF(in_chop_prob)) return BUFFERED_TYPES;
    if (o < CMP_OFF(experimental_correct_accumulation)) return CHOPPED_TYPES;
    if (o < CMP_OFF(n_rows_per_transfer)) return TBIT(RPU_DEVICE_DYNAMIC_TRANSFER);
    /* mixed_precision's own block: n_rows_per_transfer to the end of rpu_compound_params
     * (the first test above bounds it) */
    return TBIT(RPU_DEVICE_MIXED_PRECISION);
}

bool config_field_applies(const rpu_config *cfg, const field_desc *d) {
    const int t = (int)cfg->device.type;
    return t >= 0 && t <= (int)RPU_DEVICE_MIXED_PRECISION && ((config_field_types(d) >> t) & 1u);
}

/* Row d moved from the struct at offset `from` onto the one of the same type at `to`, under
 * key prefix + (d's key after "device."). */
static void shift_field(const field_desc *d, size_t from, size_t to, const char *prefix,
                        config_sub_desc *out) {
    out->d = *d;
    out->d.off = d->off - from + to;
    if (d->type == T_LIST && !(d->flags & F_FIXED_LEN)) out->d.cnt_off = d->cnt_off - from + to;
    if (d->type == T_DEVTYPE) out->d.type = T_SUBTYPE;
    snprintf(out->key, sizeof out->key, "%s%s", prefix, d->key + strlen("device."));
    out->d.key = out->key;
}

void config_sub_field(const field_desc *d, int n, config_sub_desc *out) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "device.unit_cell_devices.%d.", n);
    shift_field(d, offsetof(rpu_config, device),
                offsetof(rpu_config, compound.unit_cell_devices) +
                    (size_t)n * sizeof(rpu_device_params),
                prefix, out);
}

void config_cell_field(const field_desc *d, int n, config_sub_desc *out) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "device.unit_cell_devices.%d.", n);
    shift_field(d, offsetof(rpu_config, compound),
                offsetof(rpu_config, cells) + (size_t)n * sizeof(rpu_compound_params), prefix, out);
}

void config_cell_sub_field(const field_desc *d, int n, int m, config_sub_desc *out) {
    char prefix[80];
    snprintf(prefix, sizeof prefix, "device.unit_cell_devices.%d.unit_cell_devices.%d.", n, m);
    shift_field(d, offsetof(rpu_config, device),
                offsetof(rpu_config, cells) + (size_t)n * sizeof(rpu_compound_params) +
                    offsetof(rpu_compound_params, unit_cell_devices) +
                    (size_t)m * sizeof(rpu_device_params),
                prefix, out);
}

/* True for the rows of a compound's own parameters (rpu_compound_params past n_devices and
 * the sub-devices). */
static bool is_compound_row(const field_desc *d) {
    return d->off >= CMP_OFF(update_policy) &&
           d->off < offsetof(rpu_config, compound) + sizeof(rpu_compound_params);
}

bool config_is_cell_field(const field_desc *d, rpu_device_type cell) {
    return is_compound_row(d) && ((config_field_types(d) >> (unsigned)cell) & 1u);
}

void config_visit_sub_rows(const rpu_config *cfg, config_row_fn fn, void *ctx) {
    if (!rpu_device_type_is_compound(cfg->device.type)) return;
    const field_desc *type_row = config_find_field("device.type");
    config_sub_desc sub;
    for (int n = 0; n < cfg->compound.n_devices && n < RPU_MAX_UNIT_CELL_DEVICES; ++n) {
        config_sub_field(type_row, n, &sub);
        fn(&sub.d, ctx);
        const rpu_device_type t = cfg->compound.unit_cell_devices[n].type;
        if (!rpu_device_type_is_unit_cell(t)) {
            for (size_t i = 0; i < config_n_fields; ++i)
                if (config_is_single_device_field(&config_fields[i])) {
                    config_sub_field(&config_fields[i], n, &sub);
                    fn(&sub.d, ctx);
                }
            continue;
        }
        for (size_t i = 0; i < config_n_fields; ++i)
            if (config_is_cell_field(&config_fields[i], t)) {
                config_cell_field(&config_fields[i], n, &sub);
                fn(&sub.d, ctx);
            }
        const rpu_compound_params *cell = &cfg->cells[n];
        for (int m = 0; m < cell->n_devices && m < RPU_MAX_UNIT_CELL_DEVICES; ++m) {
            config_cell_sub_field(type_row, n, m, &sub);
            fn(&sub.d, ctx);
            for (size_t i = 0; i < config_n_fields; ++i)
                if (config_is_single_device_field(&config_fields[i])) {
                    config_cell_sub_field(&config_fields[i], n, m, &sub);
                    fn(&sub.d, ctx);
                }
        }
    }
}

/* Where a sub-device type row (T_SUBTYPE) points: *cell = -1 and *n for
 * compound.unit_cell_devices[n], else *cell = j and *n for cells[j].unit_cell_devices[n]. */
static void subtype_place(size_t off, int *cell, int *n) {
    const size_t l1 = offsetof(rpu_config, compound.unit_cell_devices);
    const size_t cells0 = offsetof(rpu_config, cells);
    if (off < cells0) {
        *cell = -1;
        *n = (int)((off - l1) / sizeof(rpu_device_params));
        return;
    }
    const size_t r = off - cells0;
    *cell = (int)(r / sizeof(rpu_compound_params));
    *n =
        (int)((r % sizeof(rpu_compound_params) - offsetof(rpu_compound_params, unit_cell_devices)) /
              sizeof(rpu_device_params));
}

/* Whether the sub-device type row d (T_SUBTYPE) may hold type v: a pulsed single device, or
 * at the first level a unit cell (vector, reference, one_sided). */
static bool subtype_allows(const field_desc *d, int v) {
    int cell, n;
    subtype_place(d->off, &cell, &n);
    const rpu_device_type t = (rpu_device_type)v;
    return v > (int)RPU_DEVICE_IDEAL && v <= (int)RPU_DEVICE_MIXED_PRECISION &&
           (!rpu_device_type_is_compound(t) || (cell < 0 && rpu_device_type_is_unit_cell(t)));
}

static const char *const sub_prefix = "device.unit_cell_devices.";
static const char sub_segment[] = "unit_cell_devices.";

/* The names of the types a row belongs to, for messages. */
static void type_list(unsigned mask, char *buf, size_t size) {
    buf[0] = '\0';
    int k = 0;
    for (int t = 0; device_names[t]; ++t)
        if ((mask >> t) & 1u) appendf(buf, size, "%s%s", k++ ? ", " : "", device_names[t]);
}

/* Reads "N." at *p (N without leading zeros, at most 6 digits); advances *p past the dot. */
static bool parse_index(const char **p, long *n) {
    const char *q = *p;
    long v = 0;
    int digits = 0;
    while (*q >= '0' && *q <= '9' && digits < 6) {
        v = v * 10 + (*q++ - '0');
        ++digits;
    }
    if (digits == 0 || *q != '.' || (digits > 1 && **p == '0')) return false;
    *n = v;
    *p = q + 1;
    return true;
}

/* Sub-device n (of have) may be named: it exists, or (for_set with a type row) it is next. */
static bool sub_exists(long n, int have, bool is_type, bool for_set, const char *vis,
                       const char *where, char *err, size_t errsz) {
    if (n >= RPU_MAX_UNIT_CELL_DEVICES) {
        snprintf(err, errsz, "%s: at most %d sub-devices (N = 0 .. %d)", vis,
                 RPU_MAX_UNIT_CELL_DEVICES, RPU_MAX_UNIT_CELL_DEVICES - 1);
        return false;
    }
    if ((is_type && for_set) ? n <= have : n < have) return true;
    if (have == 0)
        snprintf(err, errsz,
                 "%s: sub-device %ld does not exist; sub-devices are added in order, starting "
                 "with %s0.type",
                 vis, n, where);
    else
        snprintf(err, errsz,
                 "%s: sub-device %ld does not exist (there are %d); add it with %s%d.type first",
                 vis, n, have, where, have);
    return false;
}

/* The row of "device.<rest>" if it is a device key (a single device's parameter or the type
 * row), else NULL. */
static const field_desc *device_row(const char *rest) {
    char base_key[CONFIG_SUBKEY_MAX];
    snprintf(base_key, sizeof base_key, "device.%s", rest);
    const field_desc *b = config_find_field(base_key);
    return b && (config_is_single_device_field(b) || b->type == T_DEVTYPE) ? b : NULL;
}

/* device.unit_cell_devices.N.<rest> of a compound cfg (rest at p): a key of sub-device N,
 * or, when sub-device N is a unit cell, one of the cell's own keys or
 * unit_cell_devices.M.<device key> of its devices. */
static const field_desc *sub_lookup(const rpu_config *cfg, const char *vis, const char *p, long n,
                                    bool for_set, config_sub_desc *sub, char *err, size_t errsz) {
    const rpu_compound_params *cp = &cfg->compound;
    const rpu_device_type st =
        n < cp->n_devices ? cp->unit_cell_devices[n].type : RPU_DEVICE_FLOATING_POINT;
    const bool cell = n < cp->n_devices && rpu_device_type_is_unit_cell(st);
    const char *sname = config_enum_name("device.type", (int)st);
    const size_t sl = strlen(sub_segment);
    if (strncmp(p, sub_segment, sl) == 0) { /* a device of a unit cell */
        if (!sub_exists(n, cp->n_devices, false, for_set, vis, "device.unit_cell_devices.", err,
                        errsz))
            return NULL;
        if (!cell) {
            snprintf(err, errsz,
                     "%s: device.unit_cell_devices.%ld.type = %s is a single device; only unit "
                     "cells (vector, reference, one_sided) have devices of their own",
                     vis, n, sname);
            return NULL;
        }
        const char *q = p + sl;
        long m = 0;
        const field_desc *b = parse_index(&q, &m) ? device_row(q) : NULL;
        if (!b) {
            snprintf(err, errsz,
                     "unknown config key \"%s\" (the devices of a unit cell are "
                     "device.unit_cell_devices.%ld.unit_cell_devices.M.<device key>)",
                     vis, n);
            return NULL;
        }
        char where[64];
        snprintf(where, sizeof where, "device.unit_cell_devices.%ld.unit_cell_devices.", n);
        if (!sub_exists(m, cfg->cells[n].n_devices, b->type == T_DEVTYPE, for_set, vis, where, err,
                        errsz))
            return NULL;
        config_cell_sub_field(b, (int)n, (int)m, sub);
        return &sub->d;
    }
    const field_desc *b = device_row(p);
    if (b) {
        if (!sub_exists(n, cp->n_devices, b->type == T_DEVTYPE, for_set, vis,
                        "device.unit_cell_devices.", err, errsz))
            return NULL;
        if (cell && b->type != T_DEVTYPE) {
            snprintf(err, errsz,
                     "%s: device.unit_cell_devices.%ld.type = %s is a unit cell; its devices "
                     "have this parameter: set device.unit_cell_devices.%ld.unit_cell_devices.M.%s",
                     vis, n, sname, n, p);
            return NULL;
        }
        config_sub_field(b, (int)n, sub);
        return &sub->d;
    }
    char base_key[CONFIG_SUBKEY_MAX];
    snprintf(base_key, sizeof base_key, "device.%s", p);
    b = config_find_field(base_key);
    if (b && is_compound_row(b)) {
        if (!sub_exists(n, cp->n_devices, false, for_set, vis, "device.unit_cell_devices.", err,
                        errsz))
            return NULL;
        if (!cell) {
            snprintf(err, errsz,
                     "%s: not a parameter of a single device (device.unit_cell_devices.%ld.type = "
                     "%s)",
                     vis, n, sname);
            return NULL;
        }
        if (!config_is_cell_field(b, st)) {
            char types[160];
            type_list(config_field_types(b) & UNIT_CELL_TYPES, types, sizeof types);
            snprintf(err, errsz,
                     "%s: not a parameter of device.unit_cell_devices.%ld.type = %s%s%s%s", vis, n,
                     sname, types[0] ? " (it belongs to: " : "", types, types[0] ? ")" : "");
            return NULL;
        }
        config_cell_field(b, (int)n, sub);
        return &sub->d;
    }
    snprintf(err, errsz,
             "unknown config key \"%s\" (\"%s\" is not a parameter of a single device or a "
             "unit cell)",
             vis, p);
    return NULL;
}

const field_desc *config_lookup(const rpu_config *cfg, const char *key, bool for_set,
                                config_sub_desc *sub, char *err, size_t errsz) {
    const char *tname = config_enum_name("device.type", (int)cfg->device.type);
    const field_desc *d = config_find_field(key);
    if (d) {
        if (config_field_applies(cfg, d)) return d;
        if (config_is_single_device_field(d))
            snprintf(err, errsz,
                     "%s: device.type = %s is a compound device; its sub-devices have this "
                     "parameter: set device.unit_cell_devices.N.%s",
                     key, tname, key + strlen("device."));
        else {
            char types[160];
            type_list(config_field_types(d), types, sizeof types);
            snprintf(err, errsz, "%s: not a parameter of device.type = %s (it belongs to: %s)", key,
                     tname, types);
        }
        return NULL;
    }
    /* device.device.<key>: aihwkit's MixedPrecisionCompound.device, the mixed-precision
     * compound's one analog device, i.e. device.unit_cell_devices.0.<key> */
    static const char *const mp_prefix = "device.device.";
    if (strncmp(key, mp_prefix, strlen(mp_prefix)) == 0) {
        if (cfg->device.type != RPU_DEVICE_MIXED_PRECISION) {
            char vis[160];
            ini_visible(vis, sizeof vis, key, 100);
            snprintf(err, errsz,
                     "%s: device.device.* is the analog device of device.type = mixed_precision "
                     "(device.type is %s; other compounds name their sub-devices "
                     "device.unit_cell_devices.N.*)",
                     vis, tname);
            return NULL;
        }
        char alias[CONFIG_SUBKEY_MAX];
        snprintf(alias, sizeof alias, "%s0.%s", sub_prefix, key + strlen(mp_prefix));
        return config_lookup(cfg, alias, for_set, sub, err, errsz);
    }
    const size_t np = strlen(sub_prefix);
    if (strncmp(key, sub_prefix, np) != 0) {
        config_unknown_key_message(key, err, errsz);
        return NULL;
    }
    /* device.unit_cell_devices.N.<rest> */
    const char *p = key + np;
    char vis[160];
    ini_visible(vis, sizeof vis, key, 100);
    long n = 0;
    if (!parse_index(&p, &n)) {
        snprintf(err, errsz,
                 "unknown config key \"%s\" (sub-device keys are "
                 "device.unit_cell_devices.N.<device key>, N = 0, 1, ...)",
                 vis);
        return NULL;
    }
    if (!rpu_device_type_is_compound(cfg->device.type)) {
        snprintf(err, errsz,
                 "%s: device.type = %s has no sub-devices (set device.type = vector, reference, "
                 "one_sided, transfer, buffered_transfer, chopped_transfer or dynamic_transfer "
                 "first)",
                 vis, tname);
        return NULL;
    }
    return sub_lookup(cfg, vis, p, n, for_set, sub, err, errsz);
}

bool rpu_config_key_applies(const rpu_config *cfg, const char *key) {
    if (!cfg || !key) return false;
    config_sub_desc sub;
    char err[CONFIG_ERR_MAX];
    return config_lookup(cfg, key, false, &sub, err, sizeof err) != NULL;
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
void config_format_value(const rpu_config *cfg, const field_desc *d, char *buf, size_t size) {
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
    case T_DEVTYPE:
    case T_SUBTYPE: {
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

/* Parses trimmed text s for field d into v; on failure writes a message naming the key
 * (the caller appends what is accepted). */
static bool parse_value(const field_desc *d, const char *s, parsed_value *v, char *err,
                        size_t errsz) {
    char vs[100]; /* s for messages: control characters escaped */
    ini_visible(vs, sizeof vs, s, 64);
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
        snprintf(err, errsz, "%s: \"%s\" is not a boolean", d->key, vs);
        return false;
    }
    case T_INT: {
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (*s == '\0' || end == s || *end != '\0') {
            snprintf(err, errsz, "%s: \"%s\" is not an integer", d->key, vs);
            return false;
        }
        if (errno == ERANGE || x < INT_MIN || x > INT_MAX || !in_range(d, (double)x)) {
            snprintf(err, errsz, "%s: %s is out of range", d->key, vs);
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
            snprintf(err, errsz, "%s: \"%s\" is not a non-negative integer", d->key, vs);
            return false;
        }
        if (errno == ERANGE) {
            snprintf(err, errsz, "%s: %s is out of range", d->key, vs);
            return false;
        }
        v->u = (uint64_t)x;
        return true;
    }
    case T_FLOAT: {
        float x;
        if (!parse_float_token(s, &x)) {
            snprintf(err, errsz, "%s: \"%s\" is not a number", d->key, vs);
            return false;
        }
        if (!isfinite(x)) {
            snprintf(err, errsz, "%s: \"%s\" is not a finite float", d->key, vs);
            return false;
        }
        if (!in_range(d, (double)x)) {
            snprintf(err, errsz, "%s: %s is out of range", d->key, vs);
            return false;
        }
        v->f = x;
        return true;
    }
    case T_ENUM:
    case T_KIND:
    case T_DEVTYPE:
    case T_SUBTYPE:
        for (int i = 0; d->names[i]; ++i) {
            if (ieq(s, d->names[i])) {
                v->i = i;
                if (d->type == T_SUBTYPE && !subtype_allows(d, i)) {
                    int cell, sn;
                    subtype_place(d->off, &cell, &sn);
                    snprintf(err, errsz,
                             "%s: %s cannot be a sub-device (sub-devices are pulsed single "
                             "devices: constant_step, linear_step, soft_bounds, soft_bounds_pmax, "
                             "exp_step, pow_step, piecewise_step, soft_bounds_reference%s)",
                             d->key, d->names[i],
                             cell >= 0 ? "; a unit cell's devices are single devices"
                                       : ", or the unit cells vector, reference, one_sided inside "
                                         "a transfer compound or mixed_precision");
                    return false;
                }
                return true;
            }
        }
        snprintf(err, errsz, "%s: unknown value \"%s\"", d->key, vs);
        return false;
    case T_LIST: {
        char body[CONFIG_VALUE_MAX];
        if (!copy_trimmed(body, sizeof body, s)) {
            snprintf(err, errsz, "%s: value too long", d->key);
            return false;
        }
        char *b = body;
        size_t len = strlen(b);
        if (len > 0 && b[0] == '[') {
            if (b[len - 1] != ']') {
                snprintf(err, errsz, "%s: \"%s\" has '[' without closing ']'", d->key, vs);
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
                char tv[64];
                ini_visible(tv, sizeof tv, tok, 32);
                float x;
                if (!parse_float_token(tok, &x) || !isfinite(x)) {
                    snprintf(err, errsz, "%s: element %d (\"%s\") of \"%s\" is not a finite number",
                             d->key, n + 1, tv, vs);
                    return false;
                }
                if (!in_range(d, (double)x)) {
                    snprintf(err, errsz, "%s: element %d (%s) is out of range", d->key, n + 1, tv);
                    return false;
                }
                if ((size_t)n >= d->cap) {
                    snprintf(err, errsz, "%s: too many elements", d->key);
                    return false;
                }
                v->list[n++] = x;
                if (!comma) break;
                b = comma + 1;
            }
        }
        if ((d->flags & F_FIXED_LEN) && (size_t)n != d->cap) {
            snprintf(err, errsz, "%s: got %d elements", d->key, n);
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
        (void)rpu_compound_params_default(&cfg->compound, (rpu_device_type)v->i);
        break;
    case T_SUBTYPE: { /* a sub-device's type resets it (a unit cell: its cell too) */
        int cell, n;
        subtype_place(d->off, &cell, &n);
        rpu_compound_params *cp = cell < 0 ? &cfg->compound : &cfg->cells[cell];
        const rpu_device_type t = (rpu_device_type)v->i;
        (void)rpu_device_params_default(&cp->unit_cell_devices[n], t);
        if (n >= cp->n_devices) cp->n_devices = n + 1;
        if (cell < 0 && rpu_device_type_is_unit_cell(t))
            (void)rpu_compound_params_default(&cfg->cells[n], t);
        break;
    }
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
rpu_status config_set_field(rpu_config *cfg, const char *key, const char *value, char *err,
                            size_t errsz) {
    char k[256] = {0};
    if (!copy_trimmed(k, sizeof k, key)) {
        char vis[160];
        ini_visible(vis, sizeof vis, key, 100);
        snprintf(err, errsz, "unknown config key \"%s\" (too long)", vis);
        return RPU_ERR_CONFIG;
    }
    config_sub_desc sub;
    const field_desc *d = config_lookup(cfg, k, true, &sub, err, errsz);
    if (!d) return RPU_ERR_CONFIG;
    char val[CONFIG_VALUE_MAX];
    if (!copy_trimmed(val, sizeof val, value)) {
        snprintf(err, errsz, "%s: value too long (at most %d characters)", d->key,
                 CONFIG_VALUE_MAX - 1);
        return RPU_ERR_CONFIG;
    }
    parsed_value v;
    memset(&v, 0, sizeof v);
    if (!parse_value(d, val, &v, err, errsz)) {
        char accepted[512]; /* described only on failure: parsing stays cheap */
        describe(d, accepted, sizeof accepted);
        appendf(err, errsz, "; expected %s", accepted);
        return RPU_ERR_CONFIG;
    }
    store_value(cfg, d, &v);
    return RPU_OK;
}

/* Checks the stored value of one field against its type and range. */
bool config_check_field(const rpu_config *cfg, const field_desc *d, char *err, size_t errsz) {
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
    case T_DEVTYPE:
    case T_SUBTYPE: {
        int v = get_int(cfg, d->off);
        if (v >= 0 && v < count_names(d->names) && (d->type != T_SUBTYPE || subtype_allows(d, v)))
            return true;
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

bool config_field_equal(const rpu_config *a, const rpu_config *b, const field_desc *d) {
    const void *pa = field_cptr(a, d), *pb = field_cptr(b, d);
    switch (d->type) {
    case T_BOOL:
        return *(const bool *)pa == *(const bool *)pb;
    case T_INT:
    case T_ENUM:
    case T_KIND:
    case T_DEVTYPE:
    case T_SUBTYPE:
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

const char *config_enum_name(const char *key, int v) {
    const field_desc *d = config_find_field(key);
    if (!d || !d->names || v < 0 || v >= count_names(d->names)) return "?";
    return d->names[v];
}
