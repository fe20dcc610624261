/* rpusim — the RPU configuration (aihwkit's rpu_config) for one analog layer or tile.
 *
 * rpu_config is a plain struct with every parameter aihwkit exposes (spec §2.1, §3.1,
 * §4, §6, §7), named as in aihwkit. rpu_config_default() fills the defaults of a kind;
 * rpu_config_set() sets one field from text by its dotted aihwkit name; the text form
 * written by rpu_config_write() parses back to an equal config.
 *
 * Nothing here is collective; nothing here knows about MPI or tensors. */
#ifndef RPUSIM_CONFIG_H
#define RPUSIM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "rpusim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kinds of configuration (aihwkit classes). */
typedef enum {
    RPU_KIND_FLOATING_POINT = 0, /* FloatingPointRPUConfig: exact GEMMs, no IO model */
    RPU_KIND_SINGLE = 1,         /* SingleRPUConfig: pulsed training, ConstantStep device */
    RPU_KIND_INFERENCE = 2       /* InferenceRPUConfig: noisy forward, perfect backward */
} rpu_config_kind;

/* Enum values are spelled in config text as the lower-case aihwkit names given here. */
typedef enum {
    RPU_NM_NONE = 0,       /* none */
    RPU_NM_ABS_MAX,        /* abs_max */
    RPU_NM_MAX,            /* max */
    RPU_NM_CONSTANT,       /* constant */
    RPU_NM_ABS_MAX_NP_SUM, /* abs_max_np_sum */
    RPU_NM_AVERAGE_ABS_MAX /* average_abs_max */
} rpu_noise_management;

typedef enum {
    RPU_BM_NONE = 0,            /* none */
    RPU_BM_ITERATIVE,           /* iterative */
    RPU_BM_ITERATIVE_WORST_CASE /* iterative_worst_case */
} rpu_bound_management;

typedef enum {
    RPU_WNOISE_NONE = 0,          /* none */
    RPU_WNOISE_ADDITIVE_CONSTANT, /* additive_constant */
    RPU_WNOISE_PCM_READ           /* pcm_read */
} rpu_w_noise_type;

typedef enum {
    RPU_MV_ONE_PASS = 0,                /* one_pass */
    RPU_MV_POS_NEG_SEPARATE,            /* pos_neg_separate */
    RPU_MV_POS_NEG_SEPARATE_DIGITAL_SUM /* pos_neg_separate_digital_sum */
} rpu_mv_type;

/* IOParameters (spec §2.1): one set for the forward, one for the backward pass. */
typedef struct {
    bool is_perfect;
    rpu_mv_type mv_type;
    float inp_bound;
    float inp_noise;
    float inp_res;
    bool inp_sto_round;
    float inp_asymmetry;
    float out_bound;
    float out_noise;
    float out_noise_std;
    float out_res;
    bool out_sto_round;
    float out_scale;
    float out_asymmetry;
    rpu_bound_management bound_management;
    rpu_noise_management noise_management;
    float w_noise;
    rpu_w_noise_type w_noise_type;
    float ir_drop;
    float ir_drop_g_ratio;
    float out_nonlinearity;
    float out_nonlinearity_std;
    float slope_calibration;
    float v_offset_std;
    float v_offset_w_min;
    float r_series;
    float w_read_asymmetry_dtod;
    float max_bm_factor;
    float max_bm_res;
    bool bm_test_negative_bound;
    float nm_thres;
    float nm_assumed_wmax; /* C++-only in aihwkit, settable here */
    float nm_decay;        /* C++-only in aihwkit, settable here */
} rpu_io_params;

typedef enum {
    RPU_PULSE_NONE = 0,              /* none */
    RPU_PULSE_STOCHASTIC_COMPRESSED, /* stochastic_compressed */
    RPU_PULSE_STOCHASTIC,            /* stochastic */
    RPU_PULSE_NONE_WITH_DEVICE,      /* none_with_device */
    RPU_PULSE_MEAN_COUNT,            /* mean_count */
    RPU_PULSE_DETERMINISTIC_IMPLICIT /* deterministic_implicit */
} rpu_pulse_type;

/* UpdateParameters (spec §3.1). */
typedef struct {
    int desired_bl;
    bool fixed_bl;
    rpu_pulse_type pulse_type;
    float res;
    float x_res_implicit;
    float d_res_implicit;
    bool d_sparsity;
    bool sto_round;
    bool update_bl_management;
    bool update_management;
    float um_grad_scale;
    float um_reg_scale;
} rpu_update_params;

typedef enum {
    RPU_DEVICE_FLOATING_POINT = 0,    /* floating_point */
    RPU_DEVICE_IDEAL,                 /* ideal */
    RPU_DEVICE_CONSTANT_STEP,         /* constant_step */
    RPU_DEVICE_LINEAR_STEP,           /* linear_step */
    RPU_DEVICE_SOFT_BOUNDS,           /* soft_bounds */
    RPU_DEVICE_SOFT_BOUNDS_PMAX,      /* soft_bounds_pmax */
    RPU_DEVICE_EXP_STEP,              /* exp_step */
    RPU_DEVICE_POW_STEP,              /* pow_step */
    RPU_DEVICE_PIECEWISE_STEP,        /* piecewise_step */
    RPU_DEVICE_SOFT_BOUNDS_REFERENCE, /* soft_bounds_reference: SoftBoundsReferenceDevice */
    /* compound devices (compound-devices spec): several sub-devices behind one tile, their
     * parameters under device.unit_cell_devices.N.* (see rpu_compound_params) */
    RPU_DEVICE_VECTOR,            /* vector: VectorUnitCell (§2) */
    RPU_DEVICE_REFERENCE,         /* reference: ReferenceUnitCell (§3) */
    RPU_DEVICE_ONE_SIDED,         /* one_sided: OneSidedUnitCell (§4) */
    RPU_DEVICE_TRANSFER,          /* transfer: TransferCompound, Tiki-Taka v1 (§5) */
    RPU_DEVICE_BUFFERED_TRANSFER, /* buffered_transfer: BufferedTransferCompound, TTv2 (§6) */
    RPU_DEVICE_CHOPPED_TRANSFER,  /* chopped_transfer: ChoppedTransferCompound, c-TTv2 (§7) */
    RPU_DEVICE_DYNAMIC_TRANSFER,  /* dynamic_transfer: DynamicTransferCompound, AGAD (§8) */
    RPU_DEVICE_MIXED_PRECISION    /* mixed_precision: MixedPrecisionCompound (§9) */
} rpu_device_type;

/* True for the compound device types. Local (pure). */
static inline bool rpu_device_type_is_compound(rpu_device_type t) {
    return t >= RPU_DEVICE_VECTOR && t <= RPU_DEVICE_MIXED_PRECISION;
}

/* True for the unit cells (vector, reference, one_sided): the compounds that may also be a
 * sub-device of a transfer-family or mixed_precision compound. Local (pure). */
static inline bool rpu_device_type_is_unit_cell(rpu_device_type t) {
    return t >= RPU_DEVICE_VECTOR && t <= RPU_DEVICE_ONE_SIDED;
}

/* True for the transfer family (transfer, buffered_transfer, chopped_transfer,
 * dynamic_transfer): a fast device A and slower devices fed by transfers. Local (pure). */
static inline bool rpu_device_type_is_transfer(rpu_device_type t) {
    return t == RPU_DEVICE_TRANSFER ||
           (t >= RPU_DEVICE_BUFFERED_TRANSFER && t <= RPU_DEVICE_DYNAMIC_TRANSFER);
}

/* DriftParameter of pulsed devices (spec §4.1); nu = 0 disables drift. */
typedef struct {
    float nu;
    float t_0;
    float reset_tol;
    float nu_dtod;
    float nu_std;
    float wg_ratio;
    float g_offset;
    float w_offset;
    float nu_k;
    float log_g0;
    float w_noise_std;
} rpu_drift_params;

#define RPU_MAX_PIECEWISE 64

/* Device parameters (spec §4). Fields that only some device types use keep the default
 * of the selected type; setting "device.type" resets all device fields to that type's
 * defaults, so it must come first. */
typedef struct {
    rpu_device_type type;
    /* common pulsed-device parameters (§4.1) */
    uint64_t construction_seed;
    float dw_min;
    float dw_min_dtod;
    bool dw_min_dtod_log_normal;
    float dw_min_std;
    float up_down;
    float up_down_dtod;
    float w_max;
    float w_max_dtod;
    float w_min;
    float w_min_dtod;
    bool enforce_consistency;
    bool perfect_bias;
    float reset;
    float reset_dtod;
    float reset_std;
    float lifetime;
    float lifetime_dtod;
    float diffusion;
    float diffusion_dtod;
    float corrupt_devices_prob;
    float corrupt_devices_range;
    float write_noise_std;
    bool apply_write_noise_on_set;
    rpu_drift_params drift;
    /* linear_step / soft_bounds (§4.3, §4.4) */
    float gamma_up;
    float gamma_down;
    float gamma_up_dtod;
    float gamma_down_dtod;
    bool allow_increasing;
    bool mean_bound_reference;
    bool mult_noise;
    bool reverse_up;
    bool reverse_down;
    float reverse_offset;
    /* soft_bounds_pmax (§4.4) */
    float p_max;
    float alpha;
    float range_min;
    float range_max;
    /* pow_step (§4.5) */
    float pow_gamma;
    float pow_gamma_dtod;
    float pow_up_down;
    float pow_up_down_dtod;
    /* exp_step (§4.6); exp_step's gamma_up/gamma_down are the fields above */
    float A_up;
    float A_down;
    float a;
    float b;
    float dw_min_std_add;
    float dw_min_std_slope;
    /* piecewise_step (§4.8): comma-separated lists in config text */
    int n_piecewise_up;
    float piecewise_up[RPU_MAX_PIECEWISE];
    int n_piecewise_down;
    float piecewise_down[RPU_MAX_PIECEWISE];
    /* soft_bounds_reference (§4.4): extra d2d of the slopes, a per-device reference that the
     * soft bounds act around, optionally shifted by the device's symmetry point */
    float slope_up_dtod;
    float slope_down_dtod;
    float reference_mean;
    float reference_std;
    bool subtract_symmetry_point;
} rpu_device_params;

/* Sub-devices a compound may hold. */
#define RPU_MAX_UNIT_CELL_DEVICES 8

/* VectorUnitCell.update_policy (compound spec §2.3). */
typedef enum {
    RPU_POLICY_ALL = 0,           /* all */
    RPU_POLICY_SINGLE_FIXED,      /* single_fixed */
    RPU_POLICY_SINGLE_SEQUENTIAL, /* single_sequential */
    RPU_POLICY_SINGLE_RANDOM      /* single_random */
} rpu_update_policy;

/* The compound-level parameters of a compound device (device.type vector, reference,
 * one_sided, transfer, buffered_transfer, chopped_transfer, dynamic_transfer,
 * mixed_precision), under aihwkit's names as keys "device.<name>", and the
 * sub-devices ("device.unit_cell_devices.N.<single-device key>", N = 0, 1, ...).
 * A field belongs to the types named beside it; setting it for another device.type is an
 * error, and setting device.type resets every field here to that type's defaults (no
 * sub-devices). Sub-device N is created by setting device.unit_cell_devices.N.type (N must
 * be at most the number of sub-devices so far: they are appended in order); that resets
 * it to the defaults of its type, so its other keys come after it. */
typedef struct {
    int n_devices;                                                  /* all compounds */
    rpu_device_params unit_cell_devices[RPU_MAX_UNIT_CELL_DEVICES]; /* single pulsed types */
    /* vector, reference (§2.1, §3) */
    rpu_update_policy update_policy; /* vector all; reference single_fixed */
    int first_update_idx;            /* 0 */
    /* vector, reference, transfer: explicit weights (empty: the type's rule); reference
     * [1, -1] */
    int n_gamma_vec;
    float gamma_vec[RPU_MAX_UNIT_CELL_DEVICES];
    /* one_sided (§4.1) */
    int refresh_every;         /* 0: never */
    float refresh_upper_thres; /* 0.75 */
    float refresh_lower_thres; /* 0.25 */
    rpu_io_params refresh_forward;
    rpu_update_params refresh_update;
    bool copy_inverted;
    /* one_sided and transfer */
    bool units_in_mbatch; /* true */
    /* transfer (§5.1) */
    float gamma;          /* 0 */
    float transfer_every; /* 1 */
    bool no_self_transfer;
    int n_transfer_every_vec;
    float transfer_every_vec[RPU_MAX_UNIT_CELL_DEVICES];
    int n_reads_per_transfer; /* 1 */
    bool transfer_columns;    /* true */
    float with_reset_prob;    /* 0 */
    bool random_selection;    /* false */
    float fast_lr;            /* 1 */
    /* post-1.1 (aihwkit PR after 1.1.0): fast_lr > 0 is multiplied by the SGD lr. Default
     * false = aihwkit 1.1.0 behaviour (fast_lr is an absolute learning rate) */
    bool scale_fast_lr;
    float transfer_lr; /* 1 */
    int n_transfer_lr_vec;
    float transfer_lr_vec[RPU_MAX_UNIT_CELL_DEVICES];
    bool scale_transfer_lr; /* true */
    rpu_io_params transfer_forward;
    rpu_update_params transfer_update;
    /* buffered_transfer (§6.1); buffered_transfer, chopped_transfer and dynamic_transfer
     * also take every transfer key above, with transfer_update defaulting to desired_bl 1,
     * no update management, no BL management */
    float thres_scale; /* 1: threshold thres_scale * g(target) */
    /* buffered_transfer, chopped_transfer, dynamic_transfer (§6.1, §7.1, §8.1) */
    float step;         /* 1: write LR step * g(target) */
    float momentum;     /* buffered 0.1; chopped, dynamic 0 */
    bool forget_buffer; /* true */
    /* chopped_transfer, dynamic_transfer (§7.1, §8.1) */
    float in_chop_prob;               /* 0.1 */
    bool in_chop_random;              /* chopped true; dynamic false */
    float out_chop_prob;              /* 0 (dynamic: ignored, as aihwkit's CPU) */
    float buffer_granularity;         /* 1 */
    float auto_granularity;           /* 0 */
    bool no_buffer;                   /* false (dynamic: ignored, as aihwkit's CPU) */
    bool auto_scale;                  /* false */
    float auto_momentum;              /* 0.99 */
    bool correct_gradient_magnitudes; /* false */
    /* rpusim switch for aihwkit's post-1.1 visible weight of a chopped compound with
     * gamma != 0: false (1.1.0) W = gamma A + C with the stored (chopped) A; true (post-1.1)
     * W = gamma sigma.A + C, de-chopped per element (§7.7) */
    bool dechop_visible_weight;
    /* dynamic_transfer (§8.1) */
    bool experimental_correct_accumulation; /* false */
    float buffer_cap;                       /* 0 */
    float tail_weightening;                 /* 5 */
    /* mixed_precision (§9.1): its analog device is device.unit_cell_devices.0 (aihwkit's
     * MixedPrecisionCompound.device); it also uses transfer_every (a whole number of update
     * calls here) and transfer_lr (lambda) above */
    int n_rows_per_transfer; /* -1: all rows; 0: never transfer */
    bool random_row;         /* false */
    float granularity;       /* epsilon; 0: the analog device's granularity */
    int n_x_bins;            /* 0: x not quantised */
    int n_d_bins;            /* 0: d not quantised */
    bool stoc_round_x;       /* true */
    bool stoc_round_d;       /* true */
} rpu_compound_params;

typedef enum {
    RPU_NOISE_MODEL_NONE = 0,         /* none */
    RPU_NOISE_MODEL_PCM_LIKE,         /* pcm_like */
    RPU_NOISE_MODEL_STATE_INDEPENDENT /* state_independent */
} rpu_noise_model_type;

/* PCMLikeNoiseModel / StateIndependentNoiseModel (spec §6.2). */
typedef struct {
    rpu_noise_model_type type;
    float prog_coeff[3];
    float g_max;
    float g_min;
    float t_read;
    float t_0;
    float prog_noise_scale;
    float read_noise_scale;
    float drift_scale;
    /* g_max (µS) at which prog_coeff were fitted: the programming-noise std is
     * (c0 + c1 g/g_max + c2 (g/g_max)^2) g_max / prog_coeff_g_max_reference (spec §6.2).
     * 0 (the default) applies aihwkit's rule for a reference that is not given: 25 while
     * prog_coeff holds the default coefficients [0.26348, 1.9650, -1.1731] (fitted at
     * 25 µS), else noise_model.g_max (coefficients given explicitly). Coefficients given
     * explicitly but equal to the defaults count as the defaults here (aihwkit would use
     * g_max); set the reference explicitly to choose. */
    float prog_coeff_g_max_reference;
    /* state_independent only */
    float prog_std;      /* µS, default 0.2 */
    float drift_nu_mean; /* default 0.1 */
    float drift_nu_std;  /* default 0.05 */
} rpu_noise_model_params;

typedef enum {
    RPU_DRIFT_COMP_NONE = 0,  /* none */
    RPU_DRIFT_COMP_GLOBAL,    /* global */
    RPU_DRIFT_COMP_PER_COLUMN /* per_column */
} rpu_drift_compensation;

typedef enum {
    RPU_CLIP_NONE = 0,           /* none */
    RPU_CLIP_FIXED_VALUE,        /* fixed_value */
    RPU_CLIP_LAYER_GAUSSIAN,     /* layer_gaussian */
    RPU_CLIP_AVERAGE_CHANNEL_MAX /* average_channel_max */
} rpu_clip_type;

typedef struct {
    rpu_clip_type type;
    float fixed_value;
    float sigma;
} rpu_clip_params;

typedef enum {
    RPU_REMAP_NONE = 0,             /* none */
    RPU_REMAP_LAYERWISE_SYMMETRIC,  /* layerwise_symmetric */
    RPU_REMAP_CHANNELWISE_SYMMETRIC /* channelwise_symmetric */
} rpu_remap_type;

typedef struct {
    rpu_remap_type type;
    float remapped_wmax;
    float max_scale_range;
    float max_scale_ref;
} rpu_remap_params;

typedef enum {
    RPU_MOD_NONE = 0,              /* none */
    RPU_MOD_DISCRETIZE,            /* discretize */
    RPU_MOD_MULT_NORMAL,           /* mult_normal */
    RPU_MOD_ADD_NORMAL,            /* add_normal */
    RPU_MOD_DISCRETIZE_ADD_NORMAL, /* discretize_add_normal */
    RPU_MOD_DOREFA,                /* dorefa */
    RPU_MOD_POLY,                  /* poly */
    RPU_MOD_PROG_NOISE,            /* prog_noise */
    RPU_MOD_DROP_CONNECT           /* drop_connect */
} rpu_modifier_type;

#define RPU_MAX_MODIFIER_COEFFS 8

typedef struct {
    rpu_modifier_type type;
    float std_dev;
    bool per_batch_sample;
    float res;
    bool sto_round;
    float dorefa_clip;
    float pdrop;
    bool enable_during_test;
    bool rel_to_actual_wmax;
    float assumed_wmax;
    bool copy_last_column;
    int n_coeffs;
    float coeffs[RPU_MAX_MODIFIER_COEFFS];
    float g_max;
} rpu_modifier_params;

/* MappingParameter (spec §7). */
typedef struct {
    bool digital_bias;
    float weight_scaling_omega;
    bool weight_scaling_columnwise;
    bool weight_scaling_lr_compensation;
    bool learn_out_scaling;
    bool out_scaling_columnwise;
    int max_input_size;
    int max_output_size;
} rpu_mapping_params;

typedef struct {
    rpu_config_kind kind;
    rpu_io_params forward;
    rpu_io_params backward;
    rpu_update_params update;
    rpu_device_params device;
    rpu_noise_model_params noise_model;
    rpu_drift_compensation drift_compensation;
    rpu_clip_params clip;
    rpu_remap_params remap;
    rpu_modifier_params modifier;
    rpu_mapping_params mapping;
    rpu_compound_params compound; /* keys device.* when device.type is a compound */
    /* A compound inside a compound (compound spec §1.2): when device.type is a transfer
     * type or mixed_precision and sub-device N is a unit cell
     * (device.unit_cell_devices.N.type = vector, reference or one_sided), cells[N] holds
     * that cell's parameters under keys device.unit_cell_devices.N.<cell key> (update_policy,
     * gamma_vec, refresh_every, ...) and its own devices under
     * device.unit_cell_devices.N.unit_cell_devices.M.<device key>; unused otherwise. */
    rpu_compound_params cells[RPU_MAX_UNIT_CELL_DEVICES];
} rpu_config;

/* Fills cfg with aihwkit's defaults for a kind (spec tables; Python defaults win over
 * C++ ones, spec §10 item 3):
 *   RPU_KIND_FLOATING_POINT  forward/backward = IOParameters() with is_perfect = true,
 *                            update.pulse_type = none, device floating_point;
 *   RPU_KIND_SINGLE          forward = backward = IOParameters() (bound management is
 *                            never used in the backward), UpdateParameters(), device
 *                            constant_step;
 *   RPU_KIND_INFERENCE       forward = IOParameters(), backward.is_perfect = true,
 *                            update.pulse_type = none, device ideal, noise_model pcm_like,
 *                            drift_compensation global.
 * clip/remap/modifier are type none and mapping is MappingParameter() for every kind; the
 * kinds that have no noise model in aihwkit get noise_model.type = none and
 * drift_compensation = none (their parameters still hold the PCM defaults).
 * Inputs: cfg (output), kind. Errors: RPU_ERR_ARG on a NULL cfg or an unknown kind (cfg
 * unchanged). Not collective. */
rpu_status rpu_config_default(rpu_config *cfg, rpu_config_kind kind);

/* A config on the heap, filled as rpu_config_default(kind) would: for callers that cannot
 * hold an rpu_config by value (language bindings). Errors: RPU_ERR_ARG on a NULL cfg or an
 * unknown kind, RPU_ERR_NOMEM; *cfg is NULL on error. Not collective. */
rpu_status rpu_config_create(rpu_config_kind kind, rpu_config **cfg);
/* Frees a config of rpu_config_create and sets *cfg to NULL; accepts NULL and *cfg NULL.
 * Not collective. */
void rpu_config_destroy(rpu_config **cfg);

/* Fills io with IOParameters() defaults (spec §2.1): 7-bit DAC (inp_res 1/126), 9-bit ADC
 * (out_res 1/510), out_noise 0.06, out_bound 12, abs_max noise management, iterative
 * bound management, .... A NULL io is ignored. Not collective. */
void rpu_io_params_default(rpu_io_params *io);

/* Fills up with UpdateParameters() defaults (spec §3.1): desired_bl 31, stochastic
 * compressed pulses, update management and update BL management on. A NULL up is
 * ignored. Not collective. */
void rpu_update_params_default(rpu_update_params *up);

/* Fills cp with the compound-level defaults of a device type (compound spec §2.1, §3,
 * §4.1, §5.1; no sub-devices): reference gets update_policy single_fixed and gamma_vec
 * [1, -1], every other type the dataclass defaults listed in rpu_compound_params (single
 * device types keep them unused). Errors: RPU_ERR_ARG on a NULL cp or an unknown type (cp
 * unchanged). Not collective. */
rpu_status rpu_compound_params_default(rpu_compound_params *cp, rpu_device_type type);

/* True if key is a parameter of cfg's current device.type (rpu_config_set accepts it and
 * rpu_config_write prints it): keys of single devices (device.dw_min, ...) apply to single
 * device types, compound keys (device.transfer_every, ...) to the compound types that
 * have them, device.unit_cell_devices.N.* to existing sub-devices; every other key always
 * applies. False for unknown keys and NULL arguments. Not collective. */
bool rpu_config_key_applies(const rpu_config *cfg, const char *key);

/* Fills dev with the defaults of a device type (spec §4): the PulsedDevice defaults for
 * the common fields and drift, and for the type-specific fields the defaults of the type
 * that defines them (linear_step extras, soft_bounds_pmax p_max/alpha/range, pow_step,
 * exp_step A/a/b, piecewise lists [1]) whatever the selected type, except that
 * soft_bounds and soft_bounds_pmax have gamma_up = gamma_down = 1, gamma dtod 0,
 * mean_bound_reference false, exp_step has gamma_up 12.44625, gamma_down 12.78785, and
 * soft_bounds_reference has mult_noise false.
 * Errors: RPU_ERR_ARG on a NULL dev or an unknown type (dev unchanged). Not collective. */
rpu_status rpu_device_params_default(rpu_device_params *dev, rpu_device_type type);

/* Sets one field from text by its dotted aihwkit name, e.g. ("forward.out_noise", "0.06"),
 * ("forward.noise_management", "abs_max"), ("device.type", "soft_bounds"). Key prefixes:
 * kind, forward.*, backward.*, update.*, device.* (device.type, device.drift.*),
 * noise_model.*, drift_compensation, clip.*, remap.*, modifier.*, mapping.*;
 * rpu_config_keys() lists them all. Keys are case-sensitive ("device.A_up").
 * Setting "kind" resets the whole config to that kind's defaults and "device.type" resets
 * all device fields (including drift and construction_seed) to that type's defaults, even
 * when the value is unchanged; set them before the fields they reset.
 * Values (surrounding white space ignored):
 *   booleans  true/false/1/0/yes/no/on/off (any case);
 *   enums     the lower-case aihwkit names listed beside each enum above (any case);
 *   integers  decimal, no fraction or exponent;
 *   floats    finite numbers as strtof reads them (C locale decimal point);
 *   lists     noise_model.prog_coeff (exactly 3), modifier.coeffs (at most
 *             RPU_MAX_MODIFIER_COEFFS), device.piecewise_up/_down (at most
 *             RPU_MAX_PIECEWISE): comma-separated numbers, optionally in [ ]; "[]" is
 *             the empty list where one is allowed.
 * Each numeric field has an accepted range (stds, noises, dtods >= 0; probabilities in
 * [0, 1]; update.desired_bl >= 1; max_bm_factor >= 1; times, g_max, ratios > 0; ...).
 * Errors: RPU_ERR_ARG for a NULL argument; RPU_ERR_CONFIG for an unknown key (the message
 * suggests the closest known key), a wrong type or trailing garbage, NaN/inf or an
 * out-of-range value: the message names the key and what is accepted (for enums the
 * accepted names). On error cfg is unchanged. Not collective; thread-safe on distinct
 * cfgs. */
rpu_status rpu_config_set(rpu_config *cfg, const char *key, const char *value);

/* Named presets (aihwkit.simulator.presets; compound-devices spec §10).
 *
 * Config presets (aihwkit's *Preset RPU configs): the key "preset", e.g.
 * rpu_config_set(cfg, "preset", "reram_sb") or "preset = reram_sb" in config text, resets
 * the whole config to that preset (as "kind" resets it to a kind's defaults). Names:
 *   reram_es       ReRamESPreset        reram_sb       ReRamSBPreset
 *   capacitor      CapacitorPreset      ecram          EcRamPreset
 *   ecram_mo       EcRamMOPreset        idealized      IdealizedPreset
 *   gokmen_vlasov  GokmenVlasovPreset
 * each SingleRPUConfig(device=<X>PresetDevice(), forward=backward=PresetIOParameters(),
 * update=PresetUpdateParameters()): kind single, forward/backward out_bound 20 and
 * out_noise 0.1 (the other IO fields at the IOParameters defaults), update defaults.
 * Compound presets (§10.3), same IO and update: mixed_precision_<x> (MixedPrecision<X>Preset,
 * x = any of the above), <x>2 / <x>4 (<X>2Preset / <X>4Preset: vector cells, single_random;
 * x = any above but gokmen_vlasov), tiki_taka_<x> (TikiTaka<X>Preset: transfer of two x
 * devices; same x), pcm (PCMPreset: a refreshing one_sided pair of pcm devices),
 * mixed_precision_pcm (MixedPrecisionPCMPreset: mixed precision writing PCMPreset's
 * one_sided cell, a unit cell inside a compound), and the transfer family ttv2_<x>,
 * chopped_ttv2_<x>, agad_<x>.
 *
 * Device presets (aihwkit's *PresetDevice classes): the key "device.preset" (and
 * "P preset" for any prefix P whose "P type" is a device-type key, e.g. a compound's
 * sub-device) resets the device fields to that preset's type and values:
 *   reram_es       ReRamESPresetDevice (exp_step)
 *   reram_sb       ReRamSBPresetDevice (soft_bounds_reference, additive noise)
 *   capacitor      CapacitorPresetDevice (linear_step, lifetime 1e6)
 *   ecram          EcRamPresetDevice (linear_step)
 *   ecram_mo       EcRamMOPresetDevice (linear_step)
 *   idealized      IdealizedPresetDevice (constant_step)
 *   gokmen_vlasov  GokmenVlasovPresetDevice (constant_step)
 *   pcm            PCMPresetDevice (exp_step, weight range [0, 2]: one-sided)
 *
 * "preset" and "device.preset" are directives, not fields: rpu_config_get and
 * rpu_config_keys do not know them, and rpu_config_write prints the keys a preset set
 * (the expanded values), so a written config (and a checkpoint) keeps its values if a
 * preset's table changes later.
 *
 * Preset names are spelled in any case.
 *
 * Ordering in texts (rpu_config_parse, rpu_config_set_entries, experiment [rpu]
 * sections): the keys that reset what they govern are applied first, widest first,
 * whatever their position: "kind" or "preset", then "device.type" or "device.preset",
 * then sub-device ones; every other key is applied after them, in text order (later
 * wins). So "preset = reram_sb" anywhere in a text, with "forward.out_noise = 0.05"
 * anywhere else, gives the preset with out_noise 0.05. Two different resetting keys of
 * the same level ("kind" with "preset", "device.type" with "device.preset") are an error.
 * Single calls of rpu_config_set apply immediately, in the caller's order. */

/* rpu_config_set(cfg, "preset", name). Errors: RPU_ERR_ARG for NULL; RPU_ERR_CONFIG for
 * an unknown name (the message lists the accepted names and their aihwkit classes); on
 * error cfg is unchanged. Not collective. */
rpu_status rpu_config_preset(rpu_config *cfg, const char *name);
/* Fills dev with a device preset (as "device.preset" would on a config). Errors as
 * rpu_config_preset; dev unchanged on error. Not collective. */
rpu_status rpu_device_params_preset(rpu_device_params *dev, const char *name);
/* The config / device preset names; *names (if not NULL) points to a static
 * NULL-terminated array. Returns the count. Not collective. */
int rpu_config_presets(const char *const **names);
int rpu_device_presets(const char *const **names);
/* The aihwkit class a preset name stands for ("ReRamSBPreset", or with device true
 * "ReRamSBPresetDevice"), or NULL for an unknown name. Not collective. */
const char *rpu_config_preset_class(const char *name, bool device);

/* Applies n "key = value" entries onto cfg as a text would (see "Ordering in texts"
 * above): resetting keys first, widest first, then the others in order. Errors:
 * RPU_ERR_ARG for NULL arguments; RPU_ERR_CONFIG for the first bad entry (its index in
 * *bad if bad is not NULL, else -1): a bad key or value (the message of rpu_config_set),
 * or a resetting key that clashes with another of its level (the message names both).
 * On error cfg is unchanged. Not collective. */
rpu_status rpu_config_set_entries(rpu_config *cfg, int n, const char *const *keys,
                                  const char *const *values, int *bad);

/* True if an override of key (e.g. --set rpu.preset=...) replaces other in a text (so the
 * text's `other` entry must be dropped): the other resetting key of the same level
 * ("preset" replaces "kind" and back, "device.preset" and "device.type" each other), and
 * a preset key also replaces every resetting key below its level ("preset" replaces
 * "device.type" and "device.preset": the preset chooses the device). Not collective. */
bool rpu_config_key_replaces(const char *key, const char *other);

/* Reads one field as text into buf (size bytes, NUL-terminated): the spelling
 * rpu_config_write uses (floats with the fewest digits that read back exactly, lists as
 * "[a, b, c]", booleans true/false, enums by name), which rpu_config_set accepts back.
 * Errors: RPU_ERR_ARG for a NULL argument or a buffer too small for the text (buf then
 * unspecified), RPU_ERR_CONFIG for an unknown key. Not collective. */
rpu_status rpu_config_get(const rpu_config *cfg, const char *key, char *buf, size_t size);

/* Checks a config, also one filled in directly in C: every field against the type and
 * range rpu_config_set would accept (finite floats, valid enum values, list lengths), then
 * cross-field consistency:
 *   - pulsed devices: device.w_min <= 0 <= device.w_max (spec §4.1); for soft_bounds_pmax
 *     the range derived from device.range_min/range_max/p_max/alpha (spec §4.4);
 *   - forward/backward: inp_bound must be 1 when noise_management != none and
 *     is_perfect is false (C++ fatal otherwise, spec §2.1);
 *   - piecewise_step: piecewise_up and piecewise_down non-empty and of equal length;
 *   - noise_model (type != none): g_max > g_min;
 *   - modifier type poly / prog_noise: modifier.coeffs not empty.
 * Errors: RPU_ERR_ARG for NULL; RPU_ERR_CONFIG for the first problem found, the message
 * naming the offending key(s). Not collective. */
rpu_status rpu_config_validate(const rpu_config *cfg);

/* Writes every field as "key = value" lines, one per key in rpu_config_keys() order
 * ("kind" first, then "device.type"), values as rpu_config_get spells them, so that
 * rpu_config_parse of the output gives an equal config (floats round-trip exactly).
 * Errors: RPU_ERR_ARG for NULL, RPU_ERR_IO if writing fails. Not collective. */
rpu_status rpu_config_write(const rpu_config *cfg, FILE *out);

/* The same text as rpu_config_write in a malloc'ed, NUL-terminated string (*text; the
 * caller frees it). Errors: RPU_ERR_ARG for NULL, RPU_ERR_NOMEM. Not collective. */
rpu_status rpu_config_to_text(const rpu_config *cfg, char **text);

/* Applies "key = value" lines from text onto cfg in order, as rpu_config_set would
 * (later lines win; "kind" and "device.type" reset what they govern). The syntax is that
 * of experiment files without sections: lines of any length ("\r\n" accepted), white
 * space around keys and values trimmed; blank lines and lines starting with # or ; are
 * skipped; # or ; at the start of a value or after a blank starts a comment; a value may
 * be quoted ("0.5", with \" and \\ as escapes); control characters outside comments are
 * errors. source names the text in messages (NULL: "<config text>").
 * Errors: RPU_ERR_ARG for a NULL cfg or text; RPU_ERR_CONFIG for the first bad line, with
 * the message "source:LINE: ..." naming the key and what is accepted (or the column and
 * what is wrong with the line); RPU_ERR_NOMEM. On error cfg is unchanged. Not collective. */
rpu_status rpu_config_parse(rpu_config *cfg, const char *text, const char *source);

/* True if every settable field of a and b is equal (floats by value; lists by length and
 * their first n elements, ignoring unused array slots). False if exactly one is NULL.
 * Not collective. */
bool rpu_config_equal(const rpu_config *a, const rpu_config *b);

/* Lists every settable key in the order rpu_config_write prints them ("kind",
 * "device.type", then forward.*, backward.*, update.*, device.*, device.drift.*,
 * noise_model.*, drift_compensation, clip.*, remap.*, modifier.*, mapping.*). If keys is
 * not NULL, *keys points to a static array of static strings. Returns the count. Not collective. */
int rpu_config_keys(const char *const **keys);

#ifdef __cplusplus
}
#endif
#endif
