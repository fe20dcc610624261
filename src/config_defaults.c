/* rpusim — aihwkit's defaults of rpu_config per kind, of the IO parameters and of each
 * device type (spec tables; see config.h). */
#include "rpusim/config.h"

#include "error_impl.h"

#include <string.h>
#include <stdlib.h>

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

void rpu_update_params_default(rpu_update_params *up) {
    if (!up) return;
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
    if ((int)type < 0 || (int)type > (int)RPU_DEVICE_MIXED_PRECISION)
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
    /* SoftBoundsReference (§4.4) */
    dev->slope_up_dtod = 0.0f;
    dev->slope_down_dtod = 0.0f;
    dev->reference_mean = 0.0f;
    dev->reference_std = 0.0f;
    dev->subtract_symmetry_point = false;

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
    case RPU_DEVICE_SOFT_BOUNDS_REFERENCE:
        /* SoftBoundsReferenceDevice: a PulsedDevice with additive noise by default */
        dev->mult_noise = false;
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
    case RPU_DEVICE_VECTOR: /* compounds: only type and construction_seed are used */
    case RPU_DEVICE_REFERENCE:
    case RPU_DEVICE_ONE_SIDED:
    case RPU_DEVICE_TRANSFER:
    case RPU_DEVICE_BUFFERED_TRANSFER:
    case RPU_DEVICE_CHOPPED_TRANSFER:
    case RPU_DEVICE_DYNAMIC_TRANSFER:
    case RPU_DEVICE_MIXED_PRECISION:
        break;
    }
    return RPU_OK;
}

rpu_status rpu_compound_params_default(rpu_compound_params *cp, rpu_device_type type) {
    if (!cp) return RPU_FAIL(RPU_ERR_ARG, "rpu_compound_params_default: cp is NULL");
    if ((int)type < 0 || (int)type > (int)RPU_DEVICE_MIXED_PRECISION)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_compound_params_default: unknown device type %d",
                        (int)type);
    memset(cp, 0, sizeof *cp);
    cp->n_devices = 0;
    /* VectorUnitCell (§2.1) */
    cp->update_policy = RPU_POLICY_ALL;
    cp->first_update_idx = 0;
    cp->n_gamma_vec = 0;
    /* OneSidedUnitCell (§4.1) */
    cp->refresh_every = 0;
    cp->refresh_upper_thres = 0.75f;
    cp->refresh_lower_thres = 0.25f;
    rpu_io_params_default(&cp->refresh_forward);
    rpu_update_params_default(&cp->refresh_update);
    cp->copy_inverted = false;
    cp->units_in_mbatch = true;
    /* TransferCompound (§5.1), Python defaults; scale_fast_lr is post-1.1 (off = 1.1.0) */
    cp->gamma = 0.0f;
    cp->transfer_every = 1.0f;
    cp->no_self_transfer = true;
    cp->n_transfer_every_vec = 0;
    cp->n_reads_per_transfer = 1;
    cp->transfer_columns = true;
    cp->with_reset_prob = 0.0f;
    cp->random_selection = false;
    cp->fast_lr = 1.0f;
    cp->scale_fast_lr = false;
    cp->transfer_lr = 1.0f;
    cp->n_transfer_lr_vec = 0;
    cp->scale_transfer_lr = true;
    rpu_io_params_default(&cp->transfer_forward);
    rpu_update_params_default(&cp->transfer_update);
    /* MixedPrecisionCompound (§9.1), Python defaults (transfer_every 1, transfer_lr 1 above) */
    cp->n_rows_per_transfer = -1;
    cp->random_row = false;
    cp->granularity = 0.0f;
    cp->n_x_bins = 0;
    cp->n_d_bins = 0;
    cp->stoc_round_x = true;
    cp->stoc_round_d = true;
    if (type == RPU_DEVICE_REFERENCE) {
        /* ReferenceUnitCell (§3): W = W_0 - W_1, only device 0 updated */
        cp->update_policy = RPU_POLICY_SINGLE_FIXED;
        cp->n_gamma_vec = 2;
        cp->gamma_vec[0] = 1.0f;
        cp->gamma_vec[1] = -1.0f;
    }
    /* BufferedTransferCompound (§6.1), ChoppedTransferCompound (§7.1),
     * DynamicTransferCompound (§8.1): Python dataclass defaults */
    cp->thres_scale = 1.0f;
    cp->step = 1.0f;
    cp->momentum = 0.0f;
    cp->forget_buffer = true;
    cp->in_chop_prob = 0.1f;
    cp->in_chop_random = true;
    cp->out_chop_prob = 0.0f;
    cp->buffer_granularity = 1.0f;
    cp->auto_granularity = 0.0f;
    cp->no_buffer = false;
    cp->auto_scale = false;
    cp->auto_momentum = 0.99f;
    cp->correct_gradient_magnitudes = false;
    cp->dechop_visible_weight = false;
    cp->experimental_correct_accumulation = false;
    cp->buffer_cap = 0.0f;
    cp->tail_weightening = 5.0f;
    if (type == RPU_DEVICE_BUFFERED_TRANSFER || type == RPU_DEVICE_CHOPPED_TRANSFER ||
        type == RPU_DEVICE_DYNAMIC_TRANSFER) {
        /* transfer writes: one pulse per step, no management */
        cp->transfer_update.desired_bl = 1;
        cp->transfer_update.update_bl_management = false;
        cp->transfer_update.update_management = false;
    }
    if (type == RPU_DEVICE_BUFFERED_TRANSFER) cp->momentum = 0.1f;
    if (type == RPU_DEVICE_CHOPPED_TRANSFER || type == RPU_DEVICE_DYNAMIC_TRANSFER)
        cp->units_in_mbatch = false;
    if (type == RPU_DEVICE_DYNAMIC_TRANSFER) cp->in_chop_random = false;
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
    rpu_update_params_default(&c.update);
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
    RPU_CHECK(rpu_compound_params_default(&c.compound, dev));
    *cfg = c;
    return RPU_OK;
}

rpu_status rpu_config_create(rpu_config_kind kind, rpu_config **cfg) {
    if (!cfg) return RPU_FAIL(RPU_ERR_ARG, "rpu_config_create: cfg is NULL");
    *cfg = NULL;
    rpu_config *c = malloc(sizeof *c);
    if (!c) return RPU_FAIL(RPU_ERR_NOMEM, "rpu_config_create: out of memory");
    rpu_status st = rpu_config_default(c, kind);
    if (st != RPU_OK) {
        free(c);
        return st;
    }
    *cfg = c;
    return RPU_OK;
}

void rpu_config_destroy(rpu_config **cfg) {
    if (!cfg) return;
    free(*cfg);
    *cfg = NULL;
}
