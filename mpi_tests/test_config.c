/* Tests of the rpu_config module: defaults per kind and device type against the spec
 * tables (expected values written out here, not read from the library), get/set of every
 * key, text round trips, rejection of bad input, reset semantics, validation. */
#include "rpusim/config.h"

#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * helpers
 * ------------------------------------------------------------------------------------- */

#define EXPECT_F(what, actual, want)                                                               \
    CHECK((actual) == (float)(want), "%s: %s = %.9g, want %.9g", (what), #actual,                  \
          (double)(actual), (double)(float)(want))
#define EXPECT_I(what, actual, want)                                                               \
    CHECK((long long)(actual) == (long long)(want), "%s: %s = %lld, want %lld", (what), #actual,   \
          (long long)(actual), (long long)(want))
#define EXPECT_B(what, actual, want)                                                               \
    CHECK((actual) == (want), "%s: %s = %d, want %d", (what), #actual, (int)(actual), (int)(want))

static bool mentions(const char *needle) {
    return strstr(rpu_last_error(), needle) != NULL;
}

static void expect_text(const rpu_config *cfg, const char *key, const char *want) {
    char buf[512];
    rpu_status s = rpu_config_get(cfg, key, buf, sizeof buf);
    CHECK(s == RPU_OK, "get %s: %s", key, rpu_last_error());
    if (s == RPU_OK) CHECK(strcmp(buf, want) == 0, "get %s = \"%s\", want \"%s\"", key, buf, want);
}

static void set_ok(rpu_config *cfg, const char *key, const char *value) {
    rpu_status s = rpu_config_set(cfg, key, value);
    CHECK(s == RPU_OK, "set %s = \"%s\" -> %s: %s", key, value, rpu_status_name(s),
          rpu_last_error());
}

/* ---------------------------------------------------------------------------------------
 * defaults (spec §2.1, §3.1, §4, §6, §7)
 * ------------------------------------------------------------------------------------- */

static void check_io_defaults(const rpu_io_params *io, bool perfect, const char *what) {
    EXPECT_B(what, io->is_perfect, perfect);
    EXPECT_I(what, io->mv_type, RPU_MV_ONE_PASS);
    EXPECT_F(what, io->inp_bound, 1.0);
    EXPECT_F(what, io->inp_noise, 0.0);
    EXPECT_F(what, io->inp_res, 1.0 / 126.0);
    EXPECT_B(what, io->inp_sto_round, false);
    EXPECT_F(what, io->inp_asymmetry, 0.0);
    EXPECT_F(what, io->out_bound, 12.0);
    EXPECT_F(what, io->out_noise, 0.06);
    EXPECT_F(what, io->out_noise_std, 0.0);
    EXPECT_F(what, io->out_res, 1.0 / 510.0);
    EXPECT_B(what, io->out_sto_round, false);
    EXPECT_F(what, io->out_scale, 1.0);
    EXPECT_F(what, io->out_asymmetry, 0.0);
    EXPECT_I(what, io->bound_management, RPU_BM_ITERATIVE);
    EXPECT_I(what, io->noise_management, RPU_NM_ABS_MAX);
    EXPECT_F(what, io->w_noise, 0.0);
    EXPECT_I(what, io->w_noise_type, RPU_WNOISE_NONE);
    EXPECT_F(what, io->ir_drop, 0.0);
    EXPECT_F(what, io->ir_drop_g_ratio, 1.0 / 0.35 / 5e-6);
    CHECK(fabsf(io->ir_drop_g_ratio - 571428.57f) < 0.1f, "%s: ir_drop_g_ratio %g", what,
          (double)io->ir_drop_g_ratio);
    EXPECT_F(what, io->out_nonlinearity, 0.0);
    EXPECT_F(what, io->out_nonlinearity_std, 0.0);
    EXPECT_F(what, io->slope_calibration, 0.0);
    EXPECT_F(what, io->v_offset_std, 0.0);
    EXPECT_F(what, io->v_offset_w_min, -1.0);
    EXPECT_F(what, io->r_series, 0.0);
    EXPECT_F(what, io->w_read_asymmetry_dtod, 0.0);
    EXPECT_F(what, io->max_bm_factor, 1000.0);
    EXPECT_F(what, io->max_bm_res, 0.25);
    EXPECT_B(what, io->bm_test_negative_bound, true);
    EXPECT_F(what, io->nm_thres, 0.0);
    EXPECT_F(what, io->nm_assumed_wmax, 0.6);
    EXPECT_F(what, io->nm_decay, 1e-3);
}

static void check_update_defaults(const rpu_update_params *u, rpu_pulse_type pulse,
                                  const char *what) {
    EXPECT_I(what, u->desired_bl, 31);
    EXPECT_B(what, u->fixed_bl, true);
    EXPECT_I(what, u->pulse_type, pulse);
    EXPECT_F(what, u->res, 0.0);
    EXPECT_F(what, u->x_res_implicit, 0.0);
    EXPECT_F(what, u->d_res_implicit, 0.0);
    EXPECT_B(what, u->d_sparsity, false);
    EXPECT_B(what, u->sto_round, false);
    EXPECT_B(what, u->update_bl_management, true);
    EXPECT_B(what, u->update_management, true);
    EXPECT_F(what, u->um_grad_scale, 1.0);
    EXPECT_F(what, u->um_reg_scale, 1.0);
}

/* PulsedDevice defaults (§4.1) and drift defaults, shared by every device type. */
static void check_pulsed_common(const rpu_device_params *d, const char *what) {
    EXPECT_I(what, d->construction_seed, 0);
    EXPECT_F(what, d->dw_min, 0.001);
    EXPECT_F(what, d->dw_min_dtod, 0.3);
    EXPECT_B(what, d->dw_min_dtod_log_normal, false);
    EXPECT_F(what, d->dw_min_std, 0.3);
    EXPECT_F(what, d->up_down, 0.0);
    EXPECT_F(what, d->up_down_dtod, 0.01);
    EXPECT_F(what, d->w_max, 0.6);
    EXPECT_F(what, d->w_max_dtod, 0.3);
    EXPECT_F(what, d->w_min, -0.6);
    EXPECT_F(what, d->w_min_dtod, 0.3);
    EXPECT_B(what, d->enforce_consistency, true);
    EXPECT_B(what, d->perfect_bias, false);
    EXPECT_F(what, d->reset, 0.0);
    EXPECT_F(what, d->reset_dtod, 0.0);
    EXPECT_F(what, d->reset_std, 0.01);
    EXPECT_F(what, d->lifetime, 0.0);
    EXPECT_F(what, d->lifetime_dtod, 0.0);
    EXPECT_F(what, d->diffusion, 0.0);
    EXPECT_F(what, d->diffusion_dtod, 0.0);
    EXPECT_F(what, d->corrupt_devices_prob, 0.0);
    EXPECT_F(what, d->corrupt_devices_range, 0.1);
    EXPECT_F(what, d->write_noise_std, 0.0);
    EXPECT_B(what, d->apply_write_noise_on_set, true);
    EXPECT_F(what, d->drift.nu, 0.0);
    EXPECT_F(what, d->drift.t_0, 1.0);
    EXPECT_F(what, d->drift.reset_tol, 1e-7);
    EXPECT_F(what, d->drift.nu_dtod, 0.0);
    EXPECT_F(what, d->drift.nu_std, 0.0);
    EXPECT_F(what, d->drift.wg_ratio, 1.0);
    EXPECT_F(what, d->drift.g_offset, 0.0);
    EXPECT_F(what, d->drift.w_offset, 0.0);
    EXPECT_F(what, d->drift.nu_k, 0.0);
    EXPECT_F(what, d->drift.log_g0, 0.0);
    EXPECT_F(what, d->drift.w_noise_std, 0.0);
}

static void check_linear_step_extras(const rpu_device_params *d, const char *what) {
    EXPECT_F(what, d->gamma_up, 0.0);
    EXPECT_F(what, d->gamma_down, 0.0);
    EXPECT_F(what, d->gamma_up_dtod, 0.05);
    EXPECT_F(what, d->gamma_down_dtod, 0.05);
    EXPECT_B(what, d->allow_increasing, false);
    EXPECT_B(what, d->mean_bound_reference, true);
    EXPECT_B(what, d->mult_noise, true);
    EXPECT_B(what, d->reverse_up, false);
    EXPECT_B(what, d->reverse_down, false);
    EXPECT_F(what, d->reverse_offset, 0.01);
}

static void check_soft_bounds_extras(const rpu_device_params *d, const char *what) {
    EXPECT_F(what, d->gamma_up, 1.0);
    EXPECT_F(what, d->gamma_down, 1.0);
    EXPECT_F(what, d->gamma_up_dtod, 0.0);
    EXPECT_F(what, d->gamma_down_dtod, 0.0);
    EXPECT_B(what, d->allow_increasing, false);
    EXPECT_B(what, d->mean_bound_reference, false);
    EXPECT_B(what, d->mult_noise, true);
    EXPECT_B(what, d->reverse_up, false);
    EXPECT_B(what, d->reverse_down, false);
    EXPECT_F(what, d->reverse_offset, 0.01);
}

static void test_device_defaults(void) {
    rpu_device_params d;
    const char *w;

    w = "constant_step";
    CHECK_OK(rpu_device_params_default(&d, RPU_DEVICE_CONSTANT_STEP));
    EXPECT_I(w, d.type, RPU_DEVICE_CONSTANT_STEP);
    check_pulsed_common(&d, w);

    w = "linear_step";
    CHECK_OK(rpu_device_params_default(&d, RPU_DEVICE_LINEAR_STEP));
    EXPECT_I(w, d.type, RPU_DEVICE_LINEAR_STEP);
    check_pulsed_common(&d, w);
    check_linear_step_extras(&d, w);

    w = "soft_bounds";
    CHECK_OK(rpu_device_params_default(&d, RPU_DEVICE_SOFT_BOUNDS));
    EXPECT_I(w, d.type, RPU_DEVICE_SOFT_BOUNDS);
    check_pulsed_common(&d, w);
    check_soft_bounds_extras(&d, w);

    w = "soft_bounds_pmax";
    CHECK_OK(rpu_device_params_default(&d, RPU_DEVICE_SOFT_BOUNDS_PMAX));
    EXPECT_I(w, d.type, RPU_DEVICE_SOFT_BOUNDS_PMAX);
    check_pulsed_common(&d, w);
    check_soft_bounds_extras(&d, w);
    EXPECT_F(w, d.p_max, 1000.0);
    EXPECT_F(w, d.alpha, 0.0005);
    EXPECT_F(w, d.range_min, -1.0);
    EXPECT_F(w, d.range_max, 1.0);

    w = "pow_step";
    CHECK_OK(rpu_device_params_default(&d, RPU_DEVICE_POW_STEP));
    EXPECT_I(w, d.type, RPU_DEVICE_POW_STEP);
    check_pulsed_common(&d, w);
    EXPECT_F(w, d.pow_gamma, 1.0);
    EXPECT_F(w, d.pow_gamma_dtod, 0.1);
    EXPECT_F(w, d.pow_up_down, 0.0);
    EXPECT_F(w, d.pow_up_down_dtod, 0.0);

    w = "exp_step";
    CHECK_OK(rpu_device_params_default(&d, RPU_DEVICE_EXP_STEP));
    EXPECT_I(w, d.type, RPU_DEVICE_EXP_STEP);
    check_pulsed_common(&d, w);
    EXPECT_F(w, d.A_up, 0.00081);
    EXPECT_F(w, d.A_down, 0.36833);
    EXPECT_F(w, d.gamma_up, 12.44625);
    EXPECT_F(w, d.gamma_down, 12.78785);
    EXPECT_F(w, d.a, 0.244);
    EXPECT_F(w, d.b, 0.2425);
    EXPECT_F(w, d.dw_min_std_add, 0.0);
    EXPECT_F(w, d.dw_min_std_slope, 0.0);

    w = "piecewise_step";
    CHECK_OK(rpu_device_params_default(&d, RPU_DEVICE_PIECEWISE_STEP));
    EXPECT_I(w, d.type, RPU_DEVICE_PIECEWISE_STEP);
    check_pulsed_common(&d, w);
    EXPECT_I(w, d.n_piecewise_up, 1);
    EXPECT_F(w, d.piecewise_up[0], 1.0);
    EXPECT_I(w, d.n_piecewise_down, 1);
    EXPECT_F(w, d.piecewise_down[0], 1.0);

    w = "ideal";
    CHECK_OK(rpu_device_params_default(&d, RPU_DEVICE_IDEAL));
    EXPECT_I(w, d.type, RPU_DEVICE_IDEAL);
    EXPECT_I(w, d.construction_seed, 0);
    EXPECT_F(w, d.diffusion, 0.0);
    EXPECT_F(w, d.lifetime, 0.0);
    EXPECT_F(w, d.reset_std, 0.01);
    EXPECT_F(w, d.drift.nu, 0.0);

    w = "floating_point";
    CHECK_OK(rpu_device_params_default(&d, RPU_DEVICE_FLOATING_POINT));
    EXPECT_I(w, d.type, RPU_DEVICE_FLOATING_POINT);
    EXPECT_F(w, d.diffusion, 0.0);
    EXPECT_F(w, d.lifetime, 0.0);
    EXPECT_F(w, d.drift.nu, 0.0);
    EXPECT_F(w, d.drift.t_0, 1.0);
    EXPECT_F(w, d.drift.reset_tol, 1e-7);

    CHECK_STATUS(rpu_device_params_default(NULL, RPU_DEVICE_IDEAL), RPU_ERR_ARG);
    CHECK_STATUS(rpu_device_params_default(&d, (rpu_device_type)99), RPU_ERR_ARG);
}

static void check_inference_blocks(const rpu_config *c, rpu_noise_model_type nm,
                                   rpu_drift_compensation dc, const char *what) {
    EXPECT_I(what, c->noise_model.type, nm);
    EXPECT_F(what, c->noise_model.prog_coeff[0], 0.26348);
    EXPECT_F(what, c->noise_model.prog_coeff[1], 1.9650);
    EXPECT_F(what, c->noise_model.prog_coeff[2], -1.1731);
    EXPECT_F(what, c->noise_model.g_max, 25.0);
    EXPECT_F(what, c->noise_model.g_min, 0.0);
    EXPECT_F(what, c->noise_model.t_read, 250e-9);
    EXPECT_F(what, c->noise_model.t_0, 20.0);
    EXPECT_F(what, c->noise_model.prog_noise_scale, 1.0);
    EXPECT_F(what, c->noise_model.read_noise_scale, 1.0);
    EXPECT_F(what, c->noise_model.drift_scale, 1.0);
    EXPECT_F(what, c->noise_model.prog_std, 0.2);
    EXPECT_F(what, c->noise_model.drift_nu_mean, 0.1);
    EXPECT_F(what, c->noise_model.drift_nu_std, 0.05);
    EXPECT_I(what, c->drift_compensation, dc);
    EXPECT_I(what, c->clip.type, RPU_CLIP_NONE);
    EXPECT_F(what, c->clip.fixed_value, -1.0);
    EXPECT_F(what, c->clip.sigma, 2.5);
    EXPECT_I(what, c->remap.type, RPU_REMAP_NONE);
    EXPECT_F(what, c->remap.remapped_wmax, 1.0);
    EXPECT_F(what, c->remap.max_scale_range, 0.0);
    EXPECT_F(what, c->remap.max_scale_ref, 0.0);
    EXPECT_I(what, c->modifier.type, RPU_MOD_NONE);
    EXPECT_F(what, c->modifier.std_dev, 0.0);
    EXPECT_B(what, c->modifier.per_batch_sample, false);
    EXPECT_F(what, c->modifier.res, 0.0);
    EXPECT_B(what, c->modifier.sto_round, false);
    EXPECT_F(what, c->modifier.dorefa_clip, 0.6);
    EXPECT_F(what, c->modifier.pdrop, 0.0);
    EXPECT_B(what, c->modifier.enable_during_test, false);
    EXPECT_B(what, c->modifier.rel_to_actual_wmax, true);
    EXPECT_F(what, c->modifier.assumed_wmax, 1.0);
    EXPECT_B(what, c->modifier.copy_last_column, false);
    EXPECT_I(what, c->modifier.n_coeffs, 3);
    EXPECT_F(what, c->modifier.coeffs[0], 0.0105392);
    EXPECT_F(what, c->modifier.coeffs[1], 0.0768);
    EXPECT_F(what, c->modifier.coeffs[2], -0.046925);
    EXPECT_F(what, c->modifier.g_max, 25.0);
}

static void check_mapping_defaults(const rpu_mapping_params *m, const char *what) {
    EXPECT_B(what, m->digital_bias, true);
    EXPECT_F(what, m->weight_scaling_omega, 0.0);
    EXPECT_B(what, m->weight_scaling_columnwise, false);
    EXPECT_B(what, m->weight_scaling_lr_compensation, false);
    EXPECT_B(what, m->learn_out_scaling, false);
    EXPECT_B(what, m->out_scaling_columnwise, false);
    EXPECT_I(what, m->max_input_size, 512);
    EXPECT_I(what, m->max_output_size, 512);
}

static void test_kind_defaults(void) {
    rpu_config c;
    const char *w;

    w = "floating_point";
    CHECK_OK(rpu_config_default(&c, RPU_KIND_FLOATING_POINT));
    EXPECT_I(w, c.kind, RPU_KIND_FLOATING_POINT);
    check_io_defaults(&c.forward, true, "floating_point forward");
    check_io_defaults(&c.backward, true, "floating_point backward");
    check_update_defaults(&c.update, RPU_PULSE_NONE, w);
    EXPECT_I(w, c.device.type, RPU_DEVICE_FLOATING_POINT);
    check_inference_blocks(&c, RPU_NOISE_MODEL_NONE, RPU_DRIFT_COMP_NONE, w);
    check_mapping_defaults(&c.mapping, w);
    expect_text(&c, "kind", "floating_point");
    expect_text(&c, "device.type", "floating_point");
    expect_text(&c, "update.pulse_type", "none");

    w = "single";
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    EXPECT_I(w, c.kind, RPU_KIND_SINGLE);
    check_io_defaults(&c.forward, false, "single forward");
    check_io_defaults(&c.backward, false, "single backward");
    check_update_defaults(&c.update, RPU_PULSE_STOCHASTIC_COMPRESSED, w);
    EXPECT_I(w, c.device.type, RPU_DEVICE_CONSTANT_STEP);
    check_pulsed_common(&c.device, w);
    check_inference_blocks(&c, RPU_NOISE_MODEL_NONE, RPU_DRIFT_COMP_NONE, w);
    check_mapping_defaults(&c.mapping, w);
    expect_text(&c, "kind", "single");
    expect_text(&c, "device.type", "constant_step");
    expect_text(&c, "forward.noise_management", "abs_max");
    expect_text(&c, "backward.bound_management", "iterative");
    expect_text(&c, "update.pulse_type", "stochastic_compressed");
    expect_text(&c, "forward.out_noise", "0.06");
    expect_text(&c, "update.desired_bl", "31");
    expect_text(&c, "forward.is_perfect", "false");
    expect_text(&c, "mapping.digital_bias", "true");
    expect_text(&c, "device.construction_seed", "0");

    w = "inference";
    CHECK_OK(rpu_config_default(&c, RPU_KIND_INFERENCE));
    EXPECT_I(w, c.kind, RPU_KIND_INFERENCE);
    check_io_defaults(&c.forward, false, "inference forward");
    check_io_defaults(&c.backward, true, "inference backward");
    check_update_defaults(&c.update, RPU_PULSE_NONE, w);
    EXPECT_I(w, c.device.type, RPU_DEVICE_IDEAL);
    EXPECT_F(w, c.device.reset_std, 0.01);
    EXPECT_F(w, c.device.diffusion, 0.0);
    EXPECT_F(w, c.device.lifetime, 0.0);
    check_inference_blocks(&c, RPU_NOISE_MODEL_PCM_LIKE, RPU_DRIFT_COMP_GLOBAL, w);
    check_mapping_defaults(&c.mapping, w);
    expect_text(&c, "kind", "inference");
    expect_text(&c, "device.type", "ideal");
    expect_text(&c, "noise_model.type", "pcm_like");
    expect_text(&c, "drift_compensation", "global");
    expect_text(&c, "noise_model.prog_coeff", "[0.26348, 1.965, -1.1731]");
    expect_text(&c, "modifier.coeffs", "[0.0105392, 0.0768, -0.046925]");
    expect_text(&c, "noise_model.t_read", "2.5e-07");

    CHECK_STATUS(rpu_config_default(NULL, RPU_KIND_SINGLE), RPU_ERR_ARG);
    CHECK_STATUS(rpu_config_default(&c, (rpu_config_kind)3), RPU_ERR_ARG);
    CHECK_STATUS(rpu_config_default(&c, (rpu_config_kind)-1), RPU_ERR_ARG);

    /* The heap config of bindings: the same defaults as by value, NULL on error. */
    for (int k = RPU_KIND_FLOATING_POINT; k <= RPU_KIND_INFERENCE; ++k) {
        rpu_config *h = NULL, v;
        CHECK_OK(rpu_config_create((rpu_config_kind)k, &h));
        CHECK_OK(rpu_config_default(&v, (rpu_config_kind)k));
        CHECK(h != NULL && rpu_config_equal(h, &v), "rpu_config_create(%d) equals the default", k);
        rpu_config_destroy(&h);
        CHECK(h == NULL, "rpu_config_destroy sets the pointer to NULL");
    }
    rpu_config *bad = &c;
    CHECK_STATUS(rpu_config_create((rpu_config_kind)3, &bad), RPU_ERR_ARG);
    CHECK(bad == NULL, "rpu_config_create: NULL on error");
    CHECK_STATUS(rpu_config_create(RPU_KIND_SINGLE, NULL), RPU_ERR_ARG);
    rpu_config_destroy(NULL);
    rpu_config_destroy(&bad);

    rpu_io_params io;
    rpu_io_params_default(&io);
    check_io_defaults(&io, false, "rpu_io_params_default");
    rpu_io_params_default(NULL); /* must not crash */
}

/* ---------------------------------------------------------------------------------------
 * keys
 * ------------------------------------------------------------------------------------- */

static bool has_key(const char *key) {
    const char *const *keys;
    int n = rpu_config_keys(&keys);
    for (int i = 0; i < n; ++i)
        if (strcmp(keys[i], key) == 0) return true;
    return false;
}

static void test_keys(void) {
    const char *const *keys = NULL;
    int n = rpu_config_keys(&keys);
    CHECK(n > 150 && keys != NULL, "rpu_config_keys: %d keys", n);
    CHECK(rpu_config_keys(NULL) == n, "rpu_config_keys(NULL) gives the count");
    if (n < 2 || !keys) return;
    CHECK(strcmp(keys[0], "kind") == 0, "first key %s", keys[0]);
    CHECK(strcmp(keys[1], "device.type") == 0, "second key %s", keys[1]);
    for (int i = 0; i < n; ++i)
        for (int j = i + 1; j < n; ++j)
            CHECK(strcmp(keys[i], keys[j]) != 0, "duplicate key %s", keys[i]);

    /* every IOParameters field of spec §2.1, in both directions */
    static const char *const io_fields[] = {"is_perfect",
                                            "mv_type",
                                            "inp_bound",
                                            "inp_noise",
                                            "inp_res",
                                            "inp_sto_round",
                                            "inp_asymmetry",
                                            "out_bound",
                                            "out_noise",
                                            "out_noise_std",
                                            "out_res",
                                            "out_sto_round",
                                            "out_scale",
                                            "out_asymmetry",
                                            "bound_management",
                                            "noise_management",
                                            "w_noise",
                                            "w_noise_type",
                                            "ir_drop",
                                            "ir_drop_g_ratio",
                                            "out_nonlinearity",
                                            "out_nonlinearity_std",
                                            "slope_calibration",
                                            "v_offset_std",
                                            "v_offset_w_min",
                                            "r_series",
                                            "w_read_asymmetry_dtod",
                                            "max_bm_factor",
                                            "max_bm_res",
                                            "bm_test_negative_bound",
                                            "nm_thres",
                                            "nm_assumed_wmax",
                                            "nm_decay"};
    for (size_t i = 0; i < sizeof io_fields / sizeof io_fields[0]; ++i) {
        char k[128];
        snprintf(k, sizeof k, "forward.%s", io_fields[i]);
        CHECK(has_key(k), "missing key %s", k);
        snprintf(k, sizeof k, "backward.%s", io_fields[i]);
        CHECK(has_key(k), "missing key %s", k);
    }
    static const char *const others[] = {"update.desired_bl",
                                         "update.fixed_bl",
                                         "update.pulse_type",
                                         "update.res",
                                         "update.x_res_implicit",
                                         "update.d_res_implicit",
                                         "update.d_sparsity",
                                         "update.sto_round",
                                         "update.update_bl_management",
                                         "update.update_management",
                                         "update.um_grad_scale",
                                         "update.um_reg_scale",
                                         "device.construction_seed",
                                         "device.dw_min",
                                         "device.dw_min_dtod",
                                         "device.dw_min_dtod_log_normal",
                                         "device.dw_min_std",
                                         "device.up_down",
                                         "device.up_down_dtod",
                                         "device.w_max",
                                         "device.w_max_dtod",
                                         "device.w_min",
                                         "device.w_min_dtod",
                                         "device.enforce_consistency",
                                         "device.perfect_bias",
                                         "device.reset",
                                         "device.reset_dtod",
                                         "device.reset_std",
                                         "device.lifetime",
                                         "device.lifetime_dtod",
                                         "device.diffusion",
                                         "device.diffusion_dtod",
                                         "device.corrupt_devices_prob",
                                         "device.corrupt_devices_range",
                                         "device.write_noise_std",
                                         "device.apply_write_noise_on_set",
                                         "device.gamma_up",
                                         "device.gamma_down",
                                         "device.gamma_up_dtod",
                                         "device.gamma_down_dtod",
                                         "device.allow_increasing",
                                         "device.mean_bound_reference",
                                         "device.mult_noise",
                                         "device.reverse_up",
                                         "device.reverse_down",
                                         "device.reverse_offset",
                                         "device.p_max",
                                         "device.alpha",
                                         "device.range_min",
                                         "device.range_max",
                                         "device.pow_gamma",
                                         "device.pow_gamma_dtod",
                                         "device.pow_up_down",
                                         "device.pow_up_down_dtod",
                                         "device.A_up",
                                         "device.A_down",
                                         "device.a",
                                         "device.b",
                                         "device.dw_min_std_add",
                                         "device.dw_min_std_slope",
                                         "device.piecewise_up",
                                         "device.piecewise_down",
                                         "device.slope_up_dtod",
                                         "device.slope_down_dtod",
                                         "device.reference_mean",
                                         "device.reference_std",
                                         "device.subtract_symmetry_point",
                                         "device.drift.nu",
                                         "device.drift.t_0",
                                         "device.drift.reset_tol",
                                         "device.drift.nu_dtod",
                                         "device.drift.nu_std",
                                         "device.drift.wg_ratio",
                                         "device.drift.g_offset",
                                         "device.drift.w_offset",
                                         "device.drift.nu_k",
                                         "device.drift.log_g0",
                                         "device.drift.w_noise_std",
                                         "noise_model.type",
                                         "noise_model.prog_coeff",
                                         "noise_model.g_max",
                                         "noise_model.g_min",
                                         "noise_model.t_read",
                                         "noise_model.t_0",
                                         "noise_model.prog_noise_scale",
                                         "noise_model.read_noise_scale",
                                         "noise_model.drift_scale",
                                         "noise_model.prog_coeff_g_max_reference",
                                         "noise_model.prog_std",
                                         "noise_model.drift_nu_mean",
                                         "noise_model.drift_nu_std",
                                         "drift_compensation",
                                         "clip.type",
                                         "clip.fixed_value",
                                         "clip.sigma",
                                         "remap.type",
                                         "remap.remapped_wmax",
                                         "remap.max_scale_range",
                                         "remap.max_scale_ref",
                                         "modifier.type",
                                         "modifier.std_dev",
                                         "modifier.per_batch_sample",
                                         "modifier.res",
                                         "modifier.sto_round",
                                         "modifier.dorefa_clip",
                                         "modifier.pdrop",
                                         "modifier.enable_during_test",
                                         "modifier.rel_to_actual_wmax",
                                         "modifier.assumed_wmax",
                                         "modifier.copy_last_column",
                                         "modifier.coeffs",
                                         "modifier.g_max",
                                         "mapping.digital_bias",
                                         "mapping.weight_scaling_omega",
                                         "mapping.weight_scaling_columnwise",
                                         "mapping.weight_scaling_lr_compensation",
                                         "mapping.learn_out_scaling",
                                         "mapping.out_scaling_columnwise",
                                         "mapping.max_input_size",
                                         "mapping.max_output_size"};
    size_t n_others = sizeof others / sizeof others[0];
    for (size_t i = 0; i < n_others; ++i)
        CHECK(has_key(others[i]), "missing key %s", others[i]);
    /* the compound-level keys (compound spec §2.1, §4.1, §5.1), with an IOParameters and an
     * UpdateParameters set each for the transfer and the refresh */
    static const char *const compound[] = {"device.update_policy",
                                           "device.first_update_idx",
                                           "device.gamma_vec",
                                           "device.refresh_every",
                                           "device.refresh_upper_thres",
                                           "device.refresh_lower_thres",
                                           "device.copy_inverted",
                                           "device.units_in_mbatch",
                                           "device.gamma",
                                           "device.transfer_every",
                                           "device.no_self_transfer",
                                           "device.transfer_every_vec",
                                           "device.n_reads_per_transfer",
                                           "device.transfer_columns",
                                           "device.with_reset_prob",
                                           "device.random_selection",
                                           "device.fast_lr",
                                           "device.scale_fast_lr",
                                           "device.transfer_lr",
                                           "device.transfer_lr_vec",
                                           "device.scale_transfer_lr",
                                           "device.n_rows_per_transfer",
                                           "device.random_row",
                                           "device.granularity",
                                           "device.n_x_bins",
                                           "device.n_d_bins",
                                           "device.stoc_round_x",
                                           "device.stoc_round_d"};
    const size_t n_compound = sizeof compound / sizeof compound[0];
    for (size_t i = 0; i < n_compound; ++i)
        CHECK(has_key(compound[i]), "missing key %s", compound[i]);
    /* buffered, chopped and dynamic transfer (compound spec §6.1, §7.1, §8.1) */
    static const char *const transfer2[] = {"device.thres_scale",
                                            "device.step",
                                            "device.momentum",
                                            "device.forget_buffer",
                                            "device.in_chop_prob",
                                            "device.in_chop_random",
                                            "device.out_chop_prob",
                                            "device.buffer_granularity",
                                            "device.auto_granularity",
                                            "device.no_buffer",
                                            "device.auto_scale",
                                            "device.auto_momentum",
                                            "device.correct_gradient_magnitudes",
                                            "device.dechop_visible_weight",
                                            "device.experimental_correct_accumulation",
                                            "device.buffer_cap",
                                            "device.tail_weightening"};
    const size_t n_transfer2 = sizeof transfer2 / sizeof transfer2[0];
    for (size_t i = 0; i < n_transfer2; ++i)
        CHECK(has_key(transfer2[i]), "missing key %s", transfer2[i]);
    const size_t n_io = sizeof io_fields / sizeof io_fields[0];
    for (size_t i = 0; i < n_io; ++i) {
        char k[128];
        snprintf(k, sizeof k, "device.transfer_forward.%s", io_fields[i]);
        CHECK(has_key(k), "missing key %s", k);
        snprintf(k, sizeof k, "device.refresh_forward.%s", io_fields[i]);
        CHECK(has_key(k), "missing key %s", k);
    }
    size_t n_update = 0;
    for (size_t i = 0; i < n_others; ++i) {
        if (strncmp(others[i], "update.", 7) != 0) continue;
        ++n_update;
        char k[128];
        snprintf(k, sizeof k, "device.transfer_update.%s", others[i] + 7);
        CHECK(has_key(k), "missing key %s", k);
        snprintf(k, sizeof k, "device.refresh_update.%s", others[i] + 7);
        CHECK(has_key(k), "missing key %s", k);
    }
    const size_t want = 2 + 4 * n_io + n_others + n_compound + n_transfer2 + 2 * n_update;
    CHECK((size_t)n == want, "%d keys, expected exactly the %zu listed in this test", n, want);
}

/* Candidate values tried for every key; each key must accept one that changes it. */
static const char *const candidates[] = {
    "[0.25, 0.5, 0.75]", "0.5", "0.25", "3", "7", "true", "false",
    /* enum names of every enum (each enum has a non-default one here) */
    "inference", "single", "linear_step", "soft_bounds", "pos_neg_separate", "max", "abs_max",
    "iterative_worst_case", "none", "additive_constant", "stochastic", "state_independent",
    "pcm_like", "per_column", "layer_gaussian", "layerwise_symmetric", "poly", "single_random",
    NULL};

/* Sets key on cfg to the first candidate that is accepted and changes its text; writes the
 * candidate into *used. Returns false if none does. */
static bool set_changed(rpu_config *cfg, const char *key, const char **used) {
    char before[512], after[512];
    if (rpu_config_get(cfg, key, before, sizeof before) != RPU_OK) return false;
    for (int c = 0; candidates[c]; ++c) {
        rpu_config tmp = *cfg;
        if (rpu_config_set(&tmp, key, candidates[c]) != RPU_OK) continue;
        if (rpu_config_get(&tmp, key, after, sizeof after) != RPU_OK) return false;
        if (strcmp(before, after) == 0) continue;
        *cfg = tmp;
        *used = candidates[c];
        return true;
    }
    return false;
}

/* A config of device type `type` (single types: the SINGLE kind's with that device; compounds:
 * two constant_step sub-devices) for the key tests. */
static void config_of_type(rpu_config *c, const char *type) {
    CHECK_OK(rpu_config_default(c, RPU_KIND_SINGLE));
    set_ok(c, "device.type", type);
    if (strcmp(type, "vector") == 0 || strcmp(type, "reference") == 0 ||
        strcmp(type, "one_sided") == 0 || strcmp(type, "transfer") == 0 ||
        strstr(type, "_transfer") != NULL) {
        set_ok(c, "device.unit_cell_devices.0.type", "constant_step");
        set_ok(c, "device.unit_cell_devices.1.type", "constant_step");
    }
}

/* Every key set and read back on a config of a device type it applies to (the SINGLE kind's
 * constant_step for all but the compound keys, which are tried on each compound type that has
 * them); only the key set changes. */
static void test_every_key_set_get(void) {
    const char *const *keys;
    int n = rpu_config_keys(&keys);
    char(*before)[512] = calloc((size_t)n, sizeof *before);
    char(*after)[512] = calloc((size_t)n, sizeof *after);
    if (!before || !after) {
        CHECK(false, "calloc");
        free(before);
        free(after);
        return;
    }
    static const char *const types[] = {"constant_step",    "vector",           "reference",
                                        "one_sided",        "transfer",         "buffered_transfer",
                                        "chopped_transfer", "dynamic_transfer", "mixed_precision"};
    rpu_config single;
    config_of_type(&single, "constant_step");
    int *tested = calloc((size_t)n, sizeof *tested);
    for (size_t t = 0; tested && t < sizeof types / sizeof types[0]; ++t) {
        rpu_config base;
        config_of_type(&base, types[t]);
        for (int i = 0; i < n; ++i)
            CHECK_OK(rpu_config_get(&base, keys[i], before[i], 512));
        for (int i = 0; i < n; ++i) {
            if (!rpu_config_key_applies(&base, keys[i])) continue;
            if (t > 0 && rpu_config_key_applies(&single, keys[i])) continue;
            tested[i] = 1;
            rpu_config cfg = base;
            const char *used = NULL;
            bool ok = set_changed(&cfg, keys[i], &used);
            CHECK(ok, "key %s (%s): no candidate value accepted that changes it", keys[i],
                  types[t]);
            if (!ok) continue;
            char got[512];
            CHECK_OK(rpu_config_get(&cfg, keys[i], got, sizeof got));
            CHECK(strcmp(got, used) == 0, "key %s: set \"%s\", read back \"%s\"", keys[i], used,
                  got);
            /* setting the text read back gives the same config */
            rpu_config again = cfg;
            CHECK_OK(rpu_config_set(&again, keys[i], got));
            CHECK(rpu_config_equal(&again, &cfg), "key %s: set(get()) changed the config", keys[i]);
            CHECK(!rpu_config_equal(&cfg, &base), "key %s: rpu_config_equal misses the change",
                  keys[i]);
            if (strcmp(keys[i], "kind") == 0 || strcmp(keys[i], "device.type") == 0) continue;
            /* exactly this key changed: every key has its own storage */
            for (int j = 0; j < n; ++j) {
                CHECK_OK(rpu_config_get(&cfg, keys[j], after[j], 512));
                if (j != i)
                    CHECK(strcmp(after[j], before[j]) == 0,
                          "setting %s changed %s from \"%s\" to \"%s\"", keys[i], keys[j],
                          before[j], after[j]);
            }
        }
    }
    for (int i = 0; tested && i < n; ++i)
        CHECK(tested[i], "key %s applies to none of the device types tried", keys[i]);
    free(tested);
    free(before);
    free(after);
}

/* ---------------------------------------------------------------------------------------
 * text round trips
 * ------------------------------------------------------------------------------------- */

static void round_trip(const rpu_config *a, const char *what) {
    char *text = NULL;
    CHECK_OK(rpu_config_to_text(a, &text));
    if (!text) return;
    CHECK(strncmp(text, "kind = ", 7) == 0, "%s: text starts with \"%.20s\"", what, text);
    const char *second = strchr(text, '\n');
    CHECK(second && strncmp(second + 1, "device.type = ", 14) == 0,
          "%s: second line is not device.type", what);

    /* parse onto a config of another kind: kind/device.type first make it equal anyway */
    rpu_config b;
    CHECK_OK(rpu_config_default(&b, a->kind == RPU_KIND_INFERENCE ? RPU_KIND_SINGLE
                                                                  : RPU_KIND_INFERENCE));
    CHECK_OK(rpu_config_parse(&b, text, what));
    CHECK(rpu_config_equal(a, &b), "%s: parse(to_text(cfg)) differs from cfg", what);

    /* rpu_config_write prints the same text */
    FILE *f = tmpfile();
    CHECK(f != NULL, "tmpfile");
    if (f) {
        CHECK_OK(rpu_config_write(a, f));
        long len = ftell(f);
        CHECK(len == (long)strlen(text), "%s: write gave %ld bytes, to_text %zu", what, len,
              strlen(text));
        char *buf = calloc((size_t)len + 1, 1);
        rewind(f);
        if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len)
            CHECK(strcmp(buf, text) == 0, "%s: write and to_text differ", what);
        else
            CHECK(false, "%s: reading back the written file", what);
        free(buf);
        fclose(f);
    }
    /* every key that applies to the device type appears exactly once, then per sub-device
     * its type and its single-device keys */
    const char *const *keys;
    int n = rpu_config_keys(&keys);
    int want = 0, per_sub = 1;
    rpu_config one;
    CHECK_OK(rpu_config_default(&one, RPU_KIND_SINGLE));
    for (int i = 0; i < n; ++i) {
        want += rpu_config_key_applies(a, keys[i]);
        per_sub += strncmp(keys[i], "device.", 7) == 0 && strcmp(keys[i], "device.type") != 0 &&
                   strcmp(keys[i], "device.construction_seed") != 0 &&
                   rpu_config_key_applies(&one, keys[i]);
    }
    if (rpu_device_type_is_compound(a->device.type)) want += a->compound.n_devices * per_sub;
    int lines = 0;
    for (const char *p = text; *p; ++p)
        lines += *p == '\n';
    CHECK(lines == want, "%s: %d lines for %d keys", what, lines, want);
    free(text);
}

static void test_round_trips(void) {
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_FLOATING_POINT));
    round_trip(&c, "floating_point");
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    round_trip(&c, "single");
    CHECK_OK(rpu_config_default(&c, RPU_KIND_INFERENCE));
    round_trip(&c, "inference");

    /* every field non-default */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    set_ok(&c, "device.type", "piecewise_step");
    const char *const *keys;
    int n = rpu_config_keys(&keys);
    for (int i = 2; i < n; ++i) {
        const char *used;
        if (!rpu_config_key_applies(&c, keys[i])) continue; /* compound keys: below */
        CHECK(set_changed(&c, keys[i], &used), "key %s not changeable", keys[i]);
    }
    /* awkward floats, extreme integers, lists of every length */
    set_ok(&c, "forward.out_scale", "0.1");
    set_ok(&c, "backward.out_scale", "0.333333343");
    set_ok(&c, "forward.inp_asymmetry", "-1.17549435e-38");
    set_ok(&c, "backward.inp_asymmetry", "1e-45");
    set_ok(&c, "device.up_down", "3.40282347e38");
    set_ok(&c, "device.reset", "-123456.789");
    set_ok(&c, "device.construction_seed", "18446744073709551615");
    set_ok(&c, "update.desired_bl", "2147483647");
    set_ok(&c, "device.piecewise_up", "[]");
    set_ok(&c, "modifier.coeffs", "0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8");
    char list64[2048] = "";
    for (int i = 0; i < RPU_MAX_PIECEWISE; ++i) {
        char num[32];
        snprintf(num, sizeof num, "%s%.7g", i ? "," : "", 1.0 / (i + 3));
        strcat(list64, num);
    }
    set_ok(&c, "device.piecewise_down", list64);
    CHECK(c.device.n_piecewise_down == RPU_MAX_PIECEWISE, "64-element list: %d",
          c.device.n_piecewise_down);
    EXPECT_F("awkward", c.backward.inp_asymmetry, 1e-45);
    CHECK(c.device.construction_seed == UINT64_MAX, "seed %llu",
          (unsigned long long)c.device.construction_seed);
    round_trip(&c, "non-default");

    /* same for an inference config with every field changed */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_INFERENCE));
    for (int i = 2; i < n; ++i) {
        const char *used;
        if (!rpu_config_key_applies(&c, keys[i])) continue; /* compound keys: below */
        CHECK(set_changed(&c, keys[i], &used), "key %s not changeable", keys[i]);
    }
    round_trip(&c, "non-default inference");

    /* equality notices a single changed field, and list contents */
    rpu_config a, b;
    CHECK_OK(rpu_config_default(&a, RPU_KIND_INFERENCE));
    b = a;
    CHECK(rpu_config_equal(&a, &b), "copy equal");
    b.noise_model.prog_coeff[2] = -1.0f;
    CHECK(!rpu_config_equal(&a, &b), "prog_coeff change unnoticed");
    b = a;
    b.device.drift.w_noise_std = 1e-3f;
    CHECK(!rpu_config_equal(&a, &b), "drift change unnoticed");
    b = a;
    b.modifier.n_coeffs = 2;
    CHECK(!rpu_config_equal(&a, &b), "list length change unnoticed");
    CHECK(!rpu_config_equal(&a, NULL), "equal with NULL");
}

/* ---------------------------------------------------------------------------------------
 * rejection of bad input
 * ------------------------------------------------------------------------------------- */

static void expect_reject(const char *key, const char *value, const char *mention1,
                          const char *mention2) {
    rpu_config cfg, before;
    CHECK_OK(rpu_config_default(&cfg, RPU_KIND_SINGLE));
    set_ok(&cfg, "forward.out_noise", "0.125"); /* some non-default state */
    before = cfg;
    rpu_clear_error();
    rpu_status s = rpu_config_set(&cfg, key, value);
    CHECK(s == RPU_ERR_CONFIG, "set %s = \"%s\" -> %s, want RPU_ERR_CONFIG", key, value,
          rpu_status_name(s));
    CHECK(mentions(mention1), "set %s = \"%s\": message \"%s\" lacks \"%s\"", key, value,
          rpu_last_error(), mention1);
    if (mention2)
        CHECK(mentions(mention2), "set %s = \"%s\": message \"%s\" lacks \"%s\"", key, value,
              rpu_last_error(), mention2);
    CHECK(memcmp(&cfg, &before, sizeof cfg) == 0, "set %s = \"%s\" changed cfg on error", key,
          value);
}

static void test_rejections(void) {
    /* unknown keys, with a suggestion when one is close */
    expect_reject("forward.out_nosie", "0.1", "forward.out_nosie",
                  "did you mean \"forward.out_noise\"");
    expect_reject("out_noise", "0.1", "out_noise", "did you mean \"forward.out_noise\"");
    expect_reject("device.nu", "0.1", "device.nu", "did you mean \"device.drift.nu\"");
    expect_reject("Forward.Out_Noise", "0.1", "Forward.Out_Noise", "forward.out_noise");
    expect_reject("totally.unrelated.thing", "1", "totally.unrelated.thing", NULL);
    expect_reject("", "1", "unknown", NULL);
    /* enum names */
    expect_reject("forward.noise_management", "absmax", "forward.noise_management",
                  "average_abs_max");
    expect_reject("forward.noise_management", "abs_max extra", "forward.noise_management",
                  "abs_max");
    expect_reject("kind", "pulsed", "kind", "inference");
    expect_reject("device.type", "constant", "device.type", "constant_step");
    expect_reject("drift_compensation", "local", "drift_compensation", "per_column");
    expect_reject("update.pulse_type", "1", "update.pulse_type", "stochastic_compressed");
    /* wrong types / not finite / trailing garbage */
    expect_reject("forward.out_noise", "abc", "forward.out_noise", ">= 0");
    expect_reject("forward.out_noise", "0.06x", "forward.out_noise", NULL);
    expect_reject("forward.out_noise", "0.06 0.07", "forward.out_noise", NULL);
    expect_reject("forward.out_noise", "", "forward.out_noise", NULL);
    expect_reject("forward.out_noise", "nan", "forward.out_noise", "finite");
    expect_reject("forward.out_noise", "inf", "forward.out_noise", "finite");
    expect_reject("forward.out_scale", "-inf", "forward.out_scale", "finite");
    expect_reject("forward.out_scale", "1e39", "forward.out_scale", "finite");
    expect_reject("update.desired_bl", "1.5", "update.desired_bl", "integer");
    expect_reject("update.desired_bl", "1e3", "update.desired_bl", "integer");
    expect_reject("update.desired_bl", "abc", "update.desired_bl", "integer");
    expect_reject("update.desired_bl", "99999999999", "update.desired_bl", "range");
    expect_reject("forward.is_perfect", "maybe", "forward.is_perfect", "true");
    expect_reject("forward.is_perfect", "2", "forward.is_perfect", "true");
    expect_reject("device.construction_seed", "-1", "device.construction_seed", NULL);
    expect_reject("device.construction_seed", "18446744073709551616", "device.construction_seed",
                  "range");
    expect_reject("device.construction_seed", "1.0", "device.construction_seed", NULL);
    /* out of range */
    expect_reject("forward.out_noise", "-0.1", "forward.out_noise", ">= 0");
    expect_reject("backward.inp_noise", "-1e-9", "backward.inp_noise", ">= 0");
    expect_reject("device.dw_min_std", "-1", "device.dw_min_std", NULL);
    expect_reject("device.corrupt_devices_prob", "1.5", "device.corrupt_devices_prob", "[0, 1]");
    expect_reject("modifier.pdrop", "-0.01", "modifier.pdrop", "[0, 1]");
    expect_reject("forward.nm_decay", "2", "forward.nm_decay", NULL);
    expect_reject("update.desired_bl", "0", "update.desired_bl", ">= 1");
    expect_reject("update.desired_bl", "-3", "update.desired_bl", ">= 1");
    expect_reject("forward.max_bm_factor", "0.5", "forward.max_bm_factor", ">= 1");
    expect_reject("noise_model.g_max", "0", "noise_model.g_max", "> 0");
    expect_reject("device.drift.t_0", "0", "device.drift.t_0", "> 0");
    expect_reject("mapping.max_input_size", "-1", "mapping.max_input_size", NULL);
    /* lists */
    expect_reject("noise_model.prog_coeff", "1, 2", "noise_model.prog_coeff", "exactly 3");
    expect_reject("noise_model.prog_coeff", "1, 2, 3, 4", "noise_model.prog_coeff", NULL);
    expect_reject("modifier.coeffs", "1, x", "modifier.coeffs", NULL);
    expect_reject("modifier.coeffs", "[1, 2", "modifier.coeffs", NULL);
    expect_reject("modifier.coeffs", "1,,2", "modifier.coeffs", NULL);
    expect_reject("modifier.coeffs", "1, 2,", "modifier.coeffs", NULL);
    expect_reject("modifier.coeffs", "1,2,3,4,5,6,7,8,9", "modifier.coeffs", "at most 8");
    expect_reject("modifier.coeffs", "1, nan", "modifier.coeffs", NULL);
    expect_reject("device.piecewise_up", "1, -1", "device.piecewise_up", NULL);

    /* accepted spellings */
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    set_ok(&c, "forward.is_perfect", "YES");
    EXPECT_B("spelling", c.forward.is_perfect, true);
    set_ok(&c, "forward.is_perfect", "off");
    EXPECT_B("spelling", c.forward.is_perfect, false);
    set_ok(&c, "forward.is_perfect", "1");
    EXPECT_B("spelling", c.forward.is_perfect, true);
    set_ok(&c, "forward.is_perfect", "False");
    EXPECT_B("spelling", c.forward.is_perfect, false);
    set_ok(&c, "forward.is_perfect", "on");
    EXPECT_B("spelling", c.forward.is_perfect, true);
    set_ok(&c, "forward.is_perfect", "no");
    EXPECT_B("spelling", c.forward.is_perfect, false);
    set_ok(&c, "forward.noise_management", "AVERAGE_ABS_MAX");
    EXPECT_I("spelling", c.forward.noise_management, RPU_NM_AVERAGE_ABS_MAX);
    set_ok(&c, "forward.out_noise", "  0.1  ");
    EXPECT_F("spelling", c.forward.out_noise, 0.1);
    set_ok(&c, "forward.out_noise", "1e-2");
    EXPECT_F("spelling", c.forward.out_noise, 0.01);
    set_ok(&c, "noise_model.prog_coeff", "[1,2,3]");
    EXPECT_F("spelling", c.noise_model.prog_coeff[2], 3.0);
    set_ok(&c, "modifier.coeffs", " 4 , 5 ");
    EXPECT_I("spelling", c.modifier.n_coeffs, 2);
    EXPECT_F("spelling", c.modifier.coeffs[1], 5.0);
    set_ok(&c, "modifier.coeffs", "[ ]");
    EXPECT_I("spelling", c.modifier.n_coeffs, 0);
    set_ok(&c, "update.desired_bl", "+7");
    EXPECT_I("spelling", c.update.desired_bl, 7);
    set_ok(&c, "device.construction_seed", "42");
    EXPECT_I("spelling", c.device.construction_seed, 42);
    set_ok(&c, "forward.out_noise", "0");
    EXPECT_F("boundary", c.forward.out_noise, 0.0);
    set_ok(&c, "device.corrupt_devices_prob", "1");
    EXPECT_F("boundary", c.device.corrupt_devices_prob, 1.0);
    set_ok(&c, "forward.max_bm_factor", "1");
    set_ok(&c, "update.desired_bl", "1");

    /* NULL arguments */
    CHECK_STATUS(rpu_config_set(NULL, "kind", "single"), RPU_ERR_ARG);
    CHECK_STATUS(rpu_config_set(&c, NULL, "single"), RPU_ERR_ARG);
    CHECK_STATUS(rpu_config_set(&c, "kind", NULL), RPU_ERR_ARG);
    char buf[8];
    CHECK_STATUS(rpu_config_get(NULL, "kind", buf, sizeof buf), RPU_ERR_ARG);
    CHECK_STATUS(rpu_config_get(&c, "kind", NULL, 8), RPU_ERR_ARG);
    CHECK_STATUS(rpu_config_get(&c, "forward.out_nosie", buf, sizeof buf), RPU_ERR_CONFIG);
    CHECK(mentions("forward.out_noise"), "get of unknown key: %s", rpu_last_error());
    CHECK_STATUS(rpu_config_validate(NULL), RPU_ERR_ARG);
    CHECK_STATUS(rpu_config_write(NULL, stdout), RPU_ERR_ARG);
    CHECK_STATUS(rpu_config_write(&c, NULL), RPU_ERR_ARG);
    char *text = NULL;
    CHECK_STATUS(rpu_config_to_text(NULL, &text), RPU_ERR_ARG);
    CHECK_STATUS(rpu_config_to_text(&c, NULL), RPU_ERR_ARG);
    CHECK_STATUS(rpu_config_parse(NULL, "", "x"), RPU_ERR_ARG);
    CHECK_STATUS(rpu_config_parse(&c, NULL, "x"), RPU_ERR_ARG);

    /* get: buffer sizes */
    set_ok(&c, "forward.out_noise", "0.06");
    char small[5];
    CHECK_OK(rpu_config_get(&c, "forward.out_noise", small, 5)); /* "0.06" + NUL */
    CHECK(strcmp(small, "0.06") == 0, "got %s", small);
    CHECK_STATUS(rpu_config_get(&c, "forward.out_noise", small, 4), RPU_ERR_ARG);
    CHECK(mentions("forward.out_noise"), "small buffer message: %s", rpu_last_error());

    /* messages are one line: control characters of a bad key or value are shown escaped
     * (found by fuzz_config: a "\r" inside a device.type value reached the message) */
    const char *ctl[][4] = {
        {"device.type", "linear\rstep", "linear\\rstep", NULL},
        {"forward.out_noise", "0.1\n[x]", "0.1\\n[x]", NULL},
        {"update.desired_bl", "3\x01", "3\\x01", NULL},
        {"modifier.coeffs", "[1, 2\t3]", "2\\t3", NULL},
        {"forward.out\nnoise", "0.1", "forward.out\\nnoise", NULL},
    };
    for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; ++i) {
        expect_reject(ctl[i][0], ctl[i][1], ctl[i][2], NULL);
        const char *m = rpu_last_error();
        CHECK(!strchr(m, '\n') && !strchr(m, '\r') && !strchr(m, '\t') && !strchr(m, '\x01'),
              "control characters case %zu: raw control character in \"%s\"", i, m);
    }
}

/* ---------------------------------------------------------------------------------------
 * parse
 * ------------------------------------------------------------------------------------- */

static void test_parse(void) {
    rpu_config c, before;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    const char *good = "# an experiment\n"
                       "\n"
                       "kind = inference\n"
                       "   ; another comment style\n"
                       "forward.out_noise = 0.1   # inline comment\r\n"
                       "\tdevice.type=linear_step\n"
                       "  device.gamma_up =  0.5 ; inline\n"
                       "modifier.coeffs = [1, 2]\n"
                       "modifier.type = poly\n"
                       "mapping.max_input_size = 256"; /* no final newline */
    CHECK_OK(rpu_config_parse(&c, good, "good.ini"));
    EXPECT_I("parse", c.kind, RPU_KIND_INFERENCE);
    EXPECT_F("parse", c.forward.out_noise, 0.1);
    EXPECT_I("parse", c.device.type, RPU_DEVICE_LINEAR_STEP);
    EXPECT_F("parse", c.device.gamma_up, 0.5);
    EXPECT_I("parse", c.modifier.n_coeffs, 2);
    EXPECT_I("parse", c.modifier.type, RPU_MOD_POLY);
    EXPECT_I("parse", c.mapping.max_input_size, 256);
    EXPECT_I("parse", c.noise_model.type, RPU_NOISE_MODEL_PCM_LIKE); /* from kind */

    before = c;
    CHECK_OK(rpu_config_parse(&c, "", "empty"));
    CHECK_OK(rpu_config_parse(&c, "\n\n# only comments\n", "comments"));
    CHECK(memcmp(&c, &before, sizeof c) == 0, "empty text changed cfg");

    struct {
        const char *text, *mention1, *mention2;
    } bad[] = {
        {"kind = single\nforward.out_noise = 0.1\n\nforward.bogus = 1\n",
         "exp.ini:4:", "forward.bogus"},
        {"kind = single\nforward.out_noise\n", "exp.ini:2:", "key = value"},
        {"forward.out_noise = -1\n", "exp.ini:1:", "forward.out_noise"},
        {"# c\n\n\nforward.noise_management = abs\n", "exp.ini:4:", "abs_max"},
        {"a\r\nb\r\n = 3\n", "exp.ini:1:", NULL},
        {"forward.out_noise = 0.1\n = 3\n", "exp.ini:2:", "missing key"},
        {"[forward]\nout_noise = 0.1\n", "exp.ini:1:", NULL},
        {"update.desired_bl = 3.5 # comment\n", "exp.ini:1:", "update.desired_bl"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        before = c;
        rpu_clear_error();
        CHECK_STATUS(rpu_config_parse(&c, bad[i].text, "exp.ini"), RPU_ERR_CONFIG);
        CHECK(mentions(bad[i].mention1), "bad text %zu: \"%s\" lacks \"%s\"", i, rpu_last_error(),
              bad[i].mention1);
        if (bad[i].mention2)
            CHECK(mentions(bad[i].mention2), "bad text %zu: \"%s\" lacks \"%s\"", i,
                  rpu_last_error(), bad[i].mention2);
        CHECK(memcmp(&c, &before, sizeof c) == 0, "bad text %zu changed cfg", i);
    }
    /* NULL source still gives a line number */
    CHECK_STATUS(rpu_config_parse(&c, "\nx = 1\n", NULL), RPU_ERR_CONFIG);
    CHECK(mentions(":2:"), "NULL source: %s", rpu_last_error());
}

/* ---------------------------------------------------------------------------------------
 * kind / device.type resets
 * ------------------------------------------------------------------------------------- */

static void test_resets(void) {
    rpu_config c, ref;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    set_ok(&c, "forward.out_noise", "0.1");
    set_ok(&c, "device.dw_min", "0.01");
    set_ok(&c, "mapping.max_input_size", "256");
    set_ok(&c, "kind", "single"); /* resets even to the same kind */
    EXPECT_F("kind reset", c.forward.out_noise, 0.06);
    EXPECT_F("kind reset", c.device.dw_min, 0.001);
    EXPECT_I("kind reset", c.mapping.max_input_size, 512);
    CHECK_OK(rpu_config_default(&ref, RPU_KIND_SINGLE));
    CHECK(rpu_config_equal(&c, &ref), "kind=single is not the single default");
    set_ok(&c, "kind", "inference");
    CHECK_OK(rpu_config_default(&ref, RPU_KIND_INFERENCE));
    CHECK(rpu_config_equal(&c, &ref), "kind=inference is not the inference default");
    set_ok(&c, "kind", "FLOATING_POINT");
    CHECK_OK(rpu_config_default(&ref, RPU_KIND_FLOATING_POINT));
    CHECK(rpu_config_equal(&c, &ref), "kind=floating_point is not the default");

    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    set_ok(&c, "forward.out_noise", "0.1");
    set_ok(&c, "device.dw_min", "0.01");
    set_ok(&c, "device.drift.nu", "0.05");
    set_ok(&c, "device.construction_seed", "7");
    set_ok(&c, "device.piecewise_up", "1, 2, 3");
    set_ok(&c, "device.type", "linear_step");
    EXPECT_I("device reset", c.device.type, RPU_DEVICE_LINEAR_STEP);
    EXPECT_F("device reset", c.device.dw_min, 0.001);
    EXPECT_F("device reset", c.device.drift.nu, 0.0);
    EXPECT_I("device reset", c.device.construction_seed, 0);
    EXPECT_I("device reset", c.device.n_piecewise_up, 1);
    EXPECT_F("device reset", c.device.gamma_up_dtod, 0.05);
    EXPECT_F("device reset keeps IO", c.forward.out_noise, 0.1);
    EXPECT_I("device reset keeps kind", c.kind, RPU_KIND_SINGLE);
    set_ok(&c, "device.gamma_up", "0.3");
    set_ok(&c, "device.type", "linear_step"); /* same type still resets */
    EXPECT_F("device reset", c.device.gamma_up, 0.0);
    set_ok(&c, "device.type", "exp_step");
    EXPECT_F("exp_step", c.device.gamma_up, 12.44625);
    EXPECT_F("exp_step", c.device.gamma_down, 12.78785);
    set_ok(&c, "device.type", "soft_bounds");
    EXPECT_F("soft_bounds", c.device.gamma_up, 1.0);
    EXPECT_B("soft_bounds", c.device.mean_bound_reference, false);
}

/* ---------------------------------------------------------------------------------------
 * validate
 * ------------------------------------------------------------------------------------- */

static void expect_invalid(const rpu_config *c, const char *mention, const char *what) {
    rpu_clear_error();
    rpu_status s = rpu_config_validate(c);
    CHECK(s == RPU_ERR_CONFIG, "%s: validate -> %s, want RPU_ERR_CONFIG", what, rpu_status_name(s));
    CHECK(mentions(mention), "%s: message \"%s\" lacks \"%s\"", what, rpu_last_error(), mention);
}

static void test_validate(void) {
    rpu_config c;
    for (int k = 0; k <= 2; ++k) {
        CHECK_OK(rpu_config_default(&c, (rpu_config_kind)k));
        CHECK_OK(rpu_config_validate(&c));
    }
    static const char *const types[] = {"floating_point", "ideal",       "constant_step",
                                        "linear_step",    "soft_bounds", "soft_bounds_pmax",
                                        "exp_step",       "pow_step",    "piecewise_step"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; ++i) {
        CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
        set_ok(&c, "device.type", types[i]);
        CHECK_OK(rpu_config_validate(&c));
    }

    /* weight range must contain 0 (spec §4.1) */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    set_ok(&c, "device.w_min", "0.1");
    expect_invalid(&c, "device.w_min", "w_min > 0");
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    set_ok(&c, "device.w_max", "-0.1");
    expect_invalid(&c, "device.w_max", "w_max < 0");
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    set_ok(&c, "device.w_min", "0");
    CHECK_OK(rpu_config_validate(&c));
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    set_ok(&c, "device.type", "soft_bounds_pmax");
    set_ok(&c, "device.range_min", "0.5");
    expect_invalid(&c, "device.range_min", "pmax range_min > 0");
    set_ok(&c, "device.range_min", "2");
    expect_invalid(&c, "device.range_max", "pmax range_min > range_max");

    /* inp_bound must be 1 under noise management (spec §2.1) */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    set_ok(&c, "forward.inp_bound", "2");
    expect_invalid(&c, "forward.inp_bound", "forward inp_bound");
    set_ok(&c, "forward.noise_management", "none");
    CHECK_OK(rpu_config_validate(&c));
    set_ok(&c, "backward.inp_bound", "0.5");
    expect_invalid(&c, "backward.inp_bound", "backward inp_bound");
    set_ok(&c, "backward.is_perfect", "true");
    CHECK_OK(rpu_config_validate(&c));

    /* piecewise lists of equal, non-zero length */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    set_ok(&c, "device.type", "piecewise_step");
    set_ok(&c, "device.piecewise_up", "1, 1.2, 1.4");
    set_ok(&c, "device.piecewise_down", "1, 0.8");
    expect_invalid(&c, "device.piecewise_up", "piecewise lengths");
    set_ok(&c, "device.piecewise_down", "1, 0.8, 0.6");
    CHECK_OK(rpu_config_validate(&c));

    /* poly modifier needs coefficients */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_INFERENCE));
    set_ok(&c, "modifier.type", "poly");
    set_ok(&c, "modifier.coeffs", "[]");
    expect_invalid(&c, "modifier.coeffs", "poly without coeffs");

    /* output scales that aihwkit learns: refused rather than silently left fixed */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    set_ok(&c, "mapping.learn_out_scaling", "true");
    expect_invalid(&c, "mapping.learn_out_scaling", "learn_out_scaling");
    set_ok(&c, "mapping.learn_out_scaling", "false");
    set_ok(&c, "mapping.out_scaling_columnwise", "true");
    CHECK_OK(rpu_config_validate(&c));

    /* noise model conductance range */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_INFERENCE));
    set_ok(&c, "noise_model.g_min", "30");
    expect_invalid(&c, "noise_model.g_max", "g_min > g_max");

    /* fields written directly in the struct are range-checked too */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    c.forward.out_noise = -1.0f;
    expect_invalid(&c, "forward.out_noise", "direct negative out_noise");
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    c.device.dw_min = NAN;
    expect_invalid(&c, "device.dw_min", "direct NaN dw_min");
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    c.forward.noise_management = (rpu_noise_management)42;
    expect_invalid(&c, "forward.noise_management", "direct bad enum");
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    c.update.desired_bl = 0;
    expect_invalid(&c, "update.desired_bl", "direct desired_bl 0");
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    c.modifier.n_coeffs = RPU_MAX_MODIFIER_COEFFS + 1;
    expect_invalid(&c, "modifier.coeffs", "direct n_coeffs too large");
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_kind_defaults();
    test_device_defaults();
    test_keys();
    test_every_key_set_get();
    test_round_trips();
    test_rejections();
    test_parse();
    test_resets();
    test_validate();
    return tl_finish();
}
