/* Tests of the compound-device configuration (compound spec §2.1, §3, §4.1, §5.1): the
 * defaults of each compound type (expected values written out here from the spec tables),
 * the sub-device keys device.unit_cell_devices.N.*, text round trips with every compound key
 * changed, and the errors of wrong keys and wrong combinations, each naming the key. */
#include "rpusim/config.h"

#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool mentions(const char *needle) {
    return strstr(rpu_last_error(), needle) != NULL;
}

static void set_ok(rpu_config *cfg, const char *key, const char *value) {
    rpu_status s = rpu_config_set(cfg, key, value);
    CHECK(s == RPU_OK, "set %s = \"%s\" -> %s: %s", key, value, rpu_status_name(s),
          rpu_last_error());
}

static void expect_text(const rpu_config *cfg, const char *key, const char *want) {
    char buf[512];
    rpu_status s = rpu_config_get(cfg, key, buf, sizeof buf);
    CHECK(s == RPU_OK, "get %s: %s", key, rpu_last_error());
    if (s == RPU_OK) CHECK(strcmp(buf, want) == 0, "get %s = \"%s\", want \"%s\"", key, buf, want);
}

/* set key = value must fail with RPU_ERR_CONFIG, leave cfg unchanged and name m1 (and m2). */
static void expect_reject(rpu_config *cfg, const char *key, const char *value, const char *m1,
                          const char *m2) {
    rpu_config before = *cfg;
    rpu_clear_error();
    rpu_status s = rpu_config_set(cfg, key, value);
    CHECK(s == RPU_ERR_CONFIG, "set %s = \"%s\" -> %s, want RPU_ERR_CONFIG", key, value,
          rpu_status_name(s));
    CHECK(mentions(m1), "set %s = \"%s\": message \"%s\" lacks \"%s\"", key, value,
          rpu_last_error(), m1);
    if (m2)
        CHECK(mentions(m2), "set %s = \"%s\": message \"%s\" lacks \"%s\"", key, value,
              rpu_last_error(), m2);
    CHECK(memcmp(cfg, &before, sizeof *cfg) == 0, "set %s = \"%s\" changed cfg on error", key,
          value);
}

static void expect_invalid(const rpu_config *c, const char *m1, const char *m2, const char *what) {
    rpu_clear_error();
    rpu_status s = rpu_config_validate(c);
    CHECK(s == RPU_ERR_CONFIG, "%s: validate -> %s, want RPU_ERR_CONFIG", what, rpu_status_name(s));
    CHECK(mentions(m1), "%s: message \"%s\" lacks \"%s\"", what, rpu_last_error(), m1);
    if (m2) CHECK(mentions(m2), "%s: message \"%s\" lacks \"%s\"", what, rpu_last_error(), m2);
}

static void compound(rpu_config *c, const char *type, int n, const char *sub_type) {
    CHECK_OK(rpu_config_default(c, RPU_KIND_SINGLE));
    set_ok(c, "device.type", type);
    for (int k = 0; k < n; ++k) {
        char key[64];
        snprintf(key, sizeof key, "device.unit_cell_devices.%d.type", k);
        set_ok(c, key, sub_type);
    }
}

/* ------------------------------------------------------------------------ defaults */

static void test_defaults(void) {
    rpu_config c;
    /* VectorUnitCell §2.1 */
    compound(&c, "vector", 0, NULL);
    CHECK(c.device.type == RPU_DEVICE_VECTOR, "device.type vector");
    CHECK(c.compound.n_devices == 0, "no sub-devices after device.type");
    expect_text(&c, "device.update_policy", "all");
    expect_text(&c, "device.first_update_idx", "0");
    expect_text(&c, "device.gamma_vec", "[]");
    expect_text(&c, "device.construction_seed", "0");
    /* ReferenceUnitCell §3: single_fixed, gamma [1, -1] */
    compound(&c, "reference", 0, NULL);
    expect_text(&c, "device.update_policy", "single_fixed");
    expect_text(&c, "device.gamma_vec", "[1, -1]");
    /* OneSidedUnitCell §4.1 */
    compound(&c, "one_sided", 0, NULL);
    expect_text(&c, "device.refresh_every", "0");
    expect_text(&c, "device.units_in_mbatch", "true");
    expect_text(&c, "device.refresh_upper_thres", "0.75");
    expect_text(&c, "device.refresh_lower_thres", "0.25");
    expect_text(&c, "device.copy_inverted", "false");
    expect_text(&c, "device.refresh_forward.out_noise", "0.06"); /* IOParameters() */
    expect_text(&c, "device.refresh_forward.noise_management", "abs_max");
    expect_text(&c, "device.refresh_update.desired_bl", "31"); /* UpdateParameters() */
    expect_text(&c, "device.refresh_update.update_bl_management", "true");
    /* TransferCompound §5.1 (Python defaults; scale_fast_lr off = aihwkit 1.1.0) */
    compound(&c, "transfer", 0, NULL);
    expect_text(&c, "device.gamma", "0");
    expect_text(&c, "device.gamma_vec", "[]");
    expect_text(&c, "device.transfer_every", "1");
    expect_text(&c, "device.no_self_transfer", "true");
    expect_text(&c, "device.transfer_every_vec", "[]");
    expect_text(&c, "device.units_in_mbatch", "true");
    expect_text(&c, "device.n_reads_per_transfer", "1");
    expect_text(&c, "device.transfer_columns", "true");
    expect_text(&c, "device.with_reset_prob", "0");
    expect_text(&c, "device.random_selection", "false");
    expect_text(&c, "device.fast_lr", "1");
    expect_text(&c, "device.scale_fast_lr", "false");
    expect_text(&c, "device.transfer_lr", "1");
    expect_text(&c, "device.transfer_lr_vec", "[]");
    expect_text(&c, "device.scale_transfer_lr", "true");
    expect_text(&c, "device.transfer_forward.out_noise", "0.06");
    expect_text(&c, "device.transfer_forward.inp_res", "0.007936508");
    expect_text(&c, "device.transfer_update.desired_bl", "31");
    expect_text(&c, "device.transfer_update.pulse_type", "stochastic_compressed");
    /* MixedPrecisionCompound §9.1 (Python defaults) */
    compound(&c, "mixed_precision", 0, NULL);
    CHECK(c.device.type == RPU_DEVICE_MIXED_PRECISION, "device.type mixed_precision");
    expect_text(&c, "device.transfer_every", "1");
    expect_text(&c, "device.n_rows_per_transfer", "-1");
    expect_text(&c, "device.random_row", "false");
    expect_text(&c, "device.granularity", "0");
    expect_text(&c, "device.transfer_lr", "1");
    expect_text(&c, "device.n_x_bins", "0");
    expect_text(&c, "device.n_d_bins", "0");
    expect_text(&c, "device.stoc_round_x", "true");
    expect_text(&c, "device.stoc_round_d", "true");
    expect_text(&c, "device.construction_seed", "0");
    CHECK(!rpu_config_key_applies(&c, "device.fast_lr"), "fast_lr applies to mixed_precision");
    CHECK(!rpu_config_key_applies(&c, "device.transfer_forward.out_noise"),
          "transfer_forward applies to mixed_precision");
    /* device.device.* (aihwkit's MixedPrecisionCompound.device) is device.unit_cell_devices.0.* */
    CHECK_OK(rpu_config_set(&c, "device.device.type", "soft_bounds"));
    CHECK(c.compound.n_devices == 1 &&
              c.compound.unit_cell_devices[0].type == RPU_DEVICE_SOFT_BOUNDS,
          "device.device.type set the analog device (%d devices)", c.compound.n_devices);
    CHECK_OK(rpu_config_set(&c, "device.device.dw_min", "0.0125"));
    expect_text(&c, "device.unit_cell_devices.0.dw_min", "0.0125");
    expect_text(&c, "device.device.dw_min", "0.0125");
    expect_reject(&c, "device.device.fast_lr", "1", "device.unit_cell_devices.0.fast_lr",
                  "not a parameter of a single device");
    compound(&c, "transfer", 0, NULL);
    CHECK(!rpu_config_key_applies(&c, "device.random_row"), "random_row applies to transfer");
    expect_reject(&c, "device.device.type", "soft_bounds", "device.device",
                  "device.type = mixed_precision");

    /* a sub-device gets the defaults of its type (soft_bounds: gamma 1, spec AT §4.4) */
    compound(&c, "transfer", 2, "soft_bounds");
    CHECK(c.compound.n_devices == 2, "two sub-devices: %d", c.compound.n_devices);
    expect_text(&c, "device.unit_cell_devices.1.type", "soft_bounds");
    expect_text(&c, "device.unit_cell_devices.1.dw_min", "0.001");
    expect_text(&c, "device.unit_cell_devices.1.gamma_up", "1");
    expect_text(&c, "device.unit_cell_devices.1.drift.t_0", "1");
    CHECK_OK(rpu_config_validate(&c));
}

/* ------------------------------------------------------------------------ syntax */

static void test_syntax(void) {
    /* an experiment-file style block: the compound, its sub-devices, their parameters */
    const char *text = "device.type = transfer\n"
                       "device.transfer_every = 2\n"
                       "device.gamma_vec = [0.5, 1]\n"
                       "device.transfer_forward.is_perfect = true\n"
                       "device.transfer_update.desired_bl = 5\n"
                       "device.unit_cell_devices.0.type = soft_bounds\n"
                       "device.unit_cell_devices.0.dw_min = 0.002\n"
                       "device.unit_cell_devices.0.w_max = 1.25\n"
                       "device.unit_cell_devices.1.type = constant_step\n"
                       "device.unit_cell_devices.1.drift.nu = 0.05\n";
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_parse(&c, text, "exp.ini"));
    CHECK(c.device.type == RPU_DEVICE_TRANSFER, "type");
    CHECK(c.compound.n_devices == 2, "n_devices %d", c.compound.n_devices);
    CHECK(c.compound.transfer_every == 2.0f, "transfer_every");
    CHECK(c.compound.n_gamma_vec == 2 && c.compound.gamma_vec[0] == 0.5f, "gamma_vec");
    CHECK(c.compound.transfer_forward.is_perfect, "transfer_forward.is_perfect");
    CHECK(c.compound.transfer_update.desired_bl == 5, "transfer_update.desired_bl");
    CHECK(c.compound.unit_cell_devices[0].type == RPU_DEVICE_SOFT_BOUNDS, "sub 0 type");
    CHECK(c.compound.unit_cell_devices[0].dw_min == 0.002f, "sub 0 dw_min");
    CHECK(c.compound.unit_cell_devices[0].w_max == 1.25f, "sub 0 w_max");
    CHECK(c.compound.unit_cell_devices[1].type == RPU_DEVICE_CONSTANT_STEP, "sub 1 type");
    CHECK(c.compound.unit_cell_devices[1].drift.nu == 0.05f, "sub 1 drift.nu");
    /* the main update and the other sub-device are untouched */
    CHECK(c.update.desired_bl == 31, "update.desired_bl");
    CHECK(c.compound.unit_cell_devices[1].dw_min == 0.001f, "sub 1 dw_min");
    CHECK_OK(rpu_config_validate(&c));

    /* the printed text: compound keys, then per sub-device its type first, no single-device
     * key of the top level, and nothing of the other compounds */
    char *out = NULL;
    CHECK_OK(rpu_config_to_text(&c, &out));
    if (out) {
        CHECK(strstr(out, "\ndevice.type = transfer\n") != NULL, "device.type line");
        CHECK(strstr(out, "\ndevice.transfer_every = 2\n") != NULL, "transfer_every line");
        CHECK(strstr(out, "\ndevice.dw_min = ") == NULL, "top-level device.dw_min printed");
        CHECK(strstr(out, "\ndevice.update_policy") == NULL, "vector key printed for transfer");
        CHECK(strstr(out, "\ndevice.refresh_every") == NULL, "one_sided key printed");
        const char *t0 = strstr(out, "\ndevice.unit_cell_devices.0.type = soft_bounds\n");
        const char *d0 = strstr(out, "\ndevice.unit_cell_devices.0.dw_min = 0.002\n");
        const char *t1 = strstr(out, "\ndevice.unit_cell_devices.1.type = constant_step\n");
        CHECK(t0 && d0 && t1 && t0 < d0 && d0 < t1, "sub-device lines in order");
        CHECK(strstr(out, "device.unit_cell_devices.0.construction_seed") == NULL,
              "sub-devices have no construction_seed (only the top-level one counts, §1.2)");
        rpu_config back;
        CHECK_OK(rpu_config_default(&back, RPU_KIND_INFERENCE));
        CHECK_OK(rpu_config_parse(&back, out, "round trip"));
        CHECK(rpu_config_equal(&c, &back), "parse(to_text) differs");
        free(out);
    }

    /* --set style: one key at a time, and the equality notices a sub-device change */
    rpu_config d = c;
    set_ok(&d, "device.unit_cell_devices.1.dw_min", "0.0015");
    CHECK(!rpu_config_equal(&c, &d), "sub-device change unnoticed by rpu_config_equal");
    expect_text(&d, "device.unit_cell_devices.1.dw_min", "0.0015");
    /* re-typing a sub-device resets it to its type's defaults, the others stay */
    set_ok(&d, "device.unit_cell_devices.0.type", "linear_step");
    expect_text(&d, "device.unit_cell_devices.0.dw_min", "0.001");
    expect_text(&d, "device.unit_cell_devices.1.dw_min", "0.0015");
    CHECK(d.compound.n_devices == 2, "re-typing keeps the count");
    /* device.type resets the compound: sub-devices and compound parameters */
    set_ok(&d, "device.type", "transfer");
    CHECK(d.compound.n_devices == 0 && d.compound.transfer_every == 1.0f, "device.type reset");
    /* and back to a single device */
    set_ok(&d, "device.type", "constant_step");
    set_ok(&d, "device.dw_min", "0.01");
    CHECK(rpu_config_key_applies(&d, "device.dw_min"), "device.dw_min applies to constant_step");
    CHECK(!rpu_config_key_applies(&d, "device.transfer_every"), "transfer key on constant_step");
    CHECK(!rpu_config_key_applies(&d, "device.unit_cell_devices.0.dw_min"), "sub key on single");
    CHECK(rpu_config_key_applies(&c, "device.unit_cell_devices.1.dw_min"), "sub 1 key");
    CHECK(!rpu_config_key_applies(&c, "device.unit_cell_devices.2.dw_min"), "sub 2 key");
    CHECK(!rpu_config_key_applies(&c, "no.such.key"), "unknown key");
}

/* Every compound key of a type and every sub-device key set to a non-default value, then
 * the text round trip. */
static const char *const candidates[] = {"[0.25, 0.5]",
                                         "0.5",
                                         "0.25",
                                         "3",
                                         "1",
                                         "true",
                                         "false",
                                         "single_random",
                                         "stochastic",
                                         "max",
                                         "iterative_worst_case",
                                         "pos_neg_separate",
                                         "additive_constant",
                                         NULL};

static bool set_changed(rpu_config *cfg, const char *key) {
    char before[512], after[512];
    if (rpu_config_get(cfg, key, before, sizeof before) != RPU_OK) return false;
    for (int c = 0; candidates[c]; ++c) {
        rpu_config tmp = *cfg;
        if (rpu_config_set(&tmp, key, candidates[c]) != RPU_OK) continue;
        if (rpu_config_get(&tmp, key, after, sizeof after) != RPU_OK) return false;
        if (strcmp(before, after) == 0) continue;
        *cfg = tmp;
        return true;
    }
    return false;
}

static void test_round_trips(void) {
    static const char *const types[] = {"vector",           "reference",         "one_sided",
                                        "transfer",         "buffered_transfer", "chopped_transfer",
                                        "dynamic_transfer", "mixed_precision"};
    const char *const *keys;
    const int n = rpu_config_keys(&keys);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; ++t) {
        rpu_config c;
        const int nsub = strcmp(types[t], "mixed_precision") == 0 ? 1 : 2;
        compound(&c, types[t], nsub, "linear_step");
        int changed = 0;
        for (int i = 2; i < n; ++i) {
            if (!rpu_config_key_applies(&c, keys[i])) continue;
            if (strncmp(keys[i], "device.", 7) != 0) continue; /* the others: test_config */
            CHECK(set_changed(&c, keys[i]), "%s: key %s not changeable", types[t], keys[i]);
            ++changed;
        }
        /* the last sub-device: every single-device key */
        for (int i = 2; i < n; ++i) {
            if (strncmp(keys[i], "device.", 7) != 0 || strcmp(keys[i], "device.type") == 0 ||
                strcmp(keys[i], "device.construction_seed") == 0 ||
                strncmp(keys[i], "device.drift.", 13) == 0)
                continue;
            char sub[160];
            snprintf(sub, sizeof sub, "device.unit_cell_devices.%d.%s", nsub - 1, keys[i] + 7);
            if (!rpu_config_key_applies(&c, sub)) continue;
            CHECK(set_changed(&c, sub), "%s: key %s not changeable", types[t], sub);
            ++changed;
        }
        CHECK(changed > 45, "%s: only %d keys changed", types[t], changed);
        char *text = NULL;
        CHECK_OK(rpu_config_to_text(&c, &text));
        if (!text) continue;
        rpu_config back;
        CHECK_OK(rpu_config_default(&back, RPU_KIND_FLOATING_POINT));
        CHECK_OK(rpu_config_parse(&back, text, types[t]));
        CHECK(rpu_config_equal(&c, &back), "%s: parse(to_text) differs", types[t]);
        char *again = NULL;
        CHECK_OK(rpu_config_to_text(&back, &again));
        CHECK(again && strcmp(text, again) == 0, "%s: text not stable", types[t]);
        free(again);
        free(text);
    }
}

/* ------------------------------------------------------------------------ errors */

static void test_rejections(void) {
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    /* compound keys on a single device, sub-device keys on a single device */
    expect_reject(&c, "device.transfer_every", "2", "device.transfer_every", "transfer");
    expect_reject(&c, "device.unit_cell_devices.0.type", "constant_step",
                  "device.unit_cell_devices.0.type", "device.type = constant_step");
    /* a key of another compound type */
    compound(&c, "vector", 2, "constant_step");
    expect_reject(&c, "device.transfer_every", "2", "device.transfer_every",
                  "not a parameter of device.type = vector");
    expect_reject(&c, "device.refresh_every", "2", "device.refresh_every", "one_sided");
    /* a single-device key at the top level of a compound */
    expect_reject(&c, "device.dw_min", "0.01", "device.dw_min",
                  "device.unit_cell_devices.N.dw_min");
    /* sub-devices are appended in order; parameters need the sub-device */
    expect_reject(&c, "device.unit_cell_devices.3.type", "constant_step",
                  "device.unit_cell_devices.3.type", "device.unit_cell_devices.2.type");
    expect_reject(&c, "device.unit_cell_devices.2.dw_min", "0.1",
                  "device.unit_cell_devices.2.dw_min", "does not exist");
    expect_reject(&c, "device.unit_cell_devices.8.type", "constant_step",
                  "device.unit_cell_devices.8.type", "at most 8");
    /* sub-devices are pulsed single devices */
    expect_reject(&c, "device.unit_cell_devices.1.type", "ideal", "device.unit_cell_devices.1.type",
                  "pulsed");
    expect_reject(&c, "device.unit_cell_devices.1.type", "transfer",
                  "device.unit_cell_devices.1.type", "cannot be a sub-device");
    /* unknown sub-device keys, malformed indices, values checked like the device's */
    expect_reject(&c, "device.unit_cell_devices.0.transfer_every", "1",
                  "device.unit_cell_devices.0.transfer_every", "not a parameter of a single");
    expect_reject(&c, "device.unit_cell_devices.0.dw_mni", "1", "device.unit_cell_devices.0.dw_mni",
                  NULL);
    expect_reject(&c, "device.unit_cell_devices.x.dw_min", "1", "device.unit_cell_devices.N", NULL);
    expect_reject(&c, "device.unit_cell_devices.01.dw_min", "1", "device.unit_cell_devices.01",
                  NULL);
    expect_reject(&c, "device.unit_cell_devices.0.dw_min", "-1",
                  "device.unit_cell_devices.0.dw_min", "out of range");
    expect_reject(&c, "device.update_policy", "random", "device.update_policy", "single_random");
    expect_reject(&c, "device.first_update_idx", "-1", "device.first_update_idx", "out of range");
    /* a bad line of a file names the file, line and key; nothing is applied */
    rpu_config before = c;
    rpu_clear_error();
    CHECK(rpu_config_parse(&c,
                           "device.unit_cell_devices.0.dw_min = 0.5\n"
                           "device.unit_cell_devices.1.w_max = oops\n",
                           "exp.ini") == RPU_ERR_CONFIG,
          "parse of a bad sub-device value");
    CHECK(mentions("exp.ini:2:") && mentions("device.unit_cell_devices.1.w_max"),
          "parse message: %s", rpu_last_error());
    CHECK(rpu_config_equal(&c, &before), "parse error applied a line");
}

static void test_validate(void) {
    rpu_config c;
    /* a transfer compound with one sub-device */
    compound(&c, "transfer", 1, "constant_step");
    expect_invalid(&c, "device.unit_cell_devices", "at least two", "transfer with one device");
    compound(&c, "transfer", 0, NULL);
    expect_invalid(&c, "device.unit_cell_devices", "transfer", "transfer with no device");
    compound(&c, "vector", 0, NULL);
    expect_invalid(&c, "device.unit_cell_devices", "vector", "vector with no device");
    compound(&c, "reference", 3, "constant_step");
    expect_invalid(&c, "device.unit_cell_devices", "reference", "reference with three devices");
    compound(&c, "one_sided", 3, "constant_step");
    expect_invalid(&c, "device.unit_cell_devices", "one_sided", "one_sided with three devices");
    compound(&c, "one_sided", 2, "constant_step");
    set_ok(&c, "device.unit_cell_devices.1.type", "soft_bounds");
    expect_invalid(&c, "device.unit_cell_devices.1.type", "same type", "one_sided mixed types");
    /* the slow devices of a transfer compound are of one type */
    compound(&c, "transfer", 3, "constant_step");
    set_ok(&c, "device.unit_cell_devices.2.type", "soft_bounds");
    expect_invalid(&c, "device.unit_cell_devices.2.type", "one type", "transfer mixed slow");
    set_ok(&c, "device.unit_cell_devices.0.type", "soft_bounds"); /* the fast one may differ */
    set_ok(&c, "device.unit_cell_devices.2.type", "constant_step");
    CHECK_OK(rpu_config_validate(&c));
    /* per-device lists: one entry per sub-device */
    set_ok(&c, "device.gamma_vec", "0.5, 1");
    expect_invalid(&c, "device.gamma_vec", "3 sub-devices", "gamma_vec length");
    set_ok(&c, "device.gamma_vec", "0.5, 1, 0");
    expect_invalid(&c, "device.gamma_vec", "last entry", "gamma_vec last zero");
    set_ok(&c, "device.gamma_vec", "[]");
    set_ok(&c, "device.transfer_every_vec", "1");
    expect_invalid(&c, "device.transfer_every_vec", "one per sub-device", "te_vec length");
    set_ok(&c, "device.transfer_every_vec", "[]");
    set_ok(&c, "device.transfer_lr_vec", "1, 2");
    expect_invalid(&c, "device.transfer_lr_vec", "one per sub-device", "tlr_vec length");
    set_ok(&c, "device.transfer_lr_vec", "[]");
    set_ok(&c, "device.with_reset_prob", "0.5");
    set_ok(&c, "device.transfer_columns", "false");
    expect_invalid(&c, "device.with_reset_prob", "transfer_columns", "reset with rows");
    compound(&c, "vector", 2, "constant_step");
    set_ok(&c, "device.first_update_idx", "2");
    expect_invalid(&c, "device.first_update_idx", "below", "first_update_idx >= n");
    /* a sub-device's own rules name the sub-device */
    compound(&c, "vector", 2, "constant_step");
    set_ok(&c, "device.unit_cell_devices.1.w_min", "0.2");
    expect_invalid(&c, "device.unit_cell_devices.1.w_min", NULL, "sub-device w_min > 0");
    /* fields written directly in the struct */
    compound(&c, "vector", 2, "constant_step");
    c.compound.unit_cell_devices[1].dw_min = -1.0f;
    expect_invalid(&c, "device.unit_cell_devices.1.dw_min", NULL, "direct negative sub dw_min");
    compound(&c, "vector", 2, "constant_step");
    c.compound.unit_cell_devices[0].type = RPU_DEVICE_IDEAL;
    expect_invalid(&c, "device.unit_cell_devices.0.type", NULL, "direct ideal sub-device");
    compound(&c, "vector", 2, "constant_step");
    c.compound.n_devices = RPU_MAX_UNIT_CELL_DEVICES + 1;
    expect_invalid(&c, "device.unit_cell_devices", NULL, "direct too many sub-devices");
    /* every compound with valid sub-devices validates */
    static const char *const types[] = {"vector", "reference", "one_sided", "transfer"};
    for (size_t t = 0; t < 4; ++t) {
        compound(&c, types[t], 2, "soft_bounds");
        CHECK_OK(rpu_config_validate(&c));
    }
    compound(&c, "reference", 1, "soft_bounds"); /* duplicated at construction */
    CHECK_OK(rpu_config_validate(&c));
    compound(&c, "one_sided", 1, "soft_bounds");
    CHECK_OK(rpu_config_validate(&c));
}

/* ------------------------------------------------- buffered, chopped, dynamic transfer */

/* The defaults of §6.1, §7.1, §8.1 (Python dataclass values, written out from the spec). */
static void test_transfer2_defaults(void) {
    static const char *const common[][2] = {
        {"device.step", "1"},
        {"device.forget_buffer", "true"},
        {"device.transfer_update.desired_bl", "1"},
        {"device.transfer_update.update_bl_management", "false"},
        {"device.transfer_update.update_management", "false"},
        {"device.transfer_update.fixed_bl", "true"},
        {"device.gamma", "0"},
        {"device.transfer_every", "1"},
        {"device.fast_lr", "1"},
        {"device.scale_fast_lr", "false"},
        {"device.transfer_lr", "1"},
        {"device.scale_transfer_lr", "true"},
        {"device.n_reads_per_transfer", "1"},
        {"device.transfer_forward.out_noise", "0.06"}};
    static const char *const types[] = {"buffered_transfer", "chopped_transfer",
                                        "dynamic_transfer"};
    for (int t = 0; t < 3; ++t) {
        rpu_config c;
        compound(&c, types[t], 2, "soft_bounds");
        for (size_t k = 0; k < sizeof common / sizeof common[0]; ++k)
            expect_text(&c, common[k][0], common[k][1]);
        CHECK(rpu_config_validate(&c) == RPU_OK, "%s: validate: %s", types[t], rpu_last_error());
    }
    rpu_config c;
    compound(&c, "buffered_transfer", 2, "soft_bounds");
    expect_text(&c, "device.thres_scale", "1");
    expect_text(&c, "device.momentum", "0.1");
    expect_text(&c, "device.units_in_mbatch", "true");
    CHECK(!rpu_config_key_applies(&c, "device.in_chop_prob"), "in_chop_prob on buffered");
    compound(&c, "chopped_transfer", 2, "soft_bounds");
    expect_text(&c, "device.momentum", "0");
    expect_text(&c, "device.units_in_mbatch", "false");
    expect_text(&c, "device.in_chop_prob", "0.1");
    expect_text(&c, "device.in_chop_random", "true");
    expect_text(&c, "device.out_chop_prob", "0");
    expect_text(&c, "device.buffer_granularity", "1");
    expect_text(&c, "device.auto_granularity", "0");
    expect_text(&c, "device.no_buffer", "false");
    expect_text(&c, "device.auto_scale", "false");
    expect_text(&c, "device.auto_momentum", "0.99");
    expect_text(&c, "device.correct_gradient_magnitudes", "false");
    expect_text(&c, "device.dechop_visible_weight", "false");
    CHECK(!rpu_config_key_applies(&c, "device.thres_scale"), "thres_scale on chopped");
    CHECK(!rpu_config_key_applies(&c, "device.tail_weightening"), "tail_weightening on chopped");
    compound(&c, "dynamic_transfer", 2, "soft_bounds");
    expect_text(&c, "device.in_chop_prob", "0.1");
    expect_text(&c, "device.in_chop_random", "false");
    expect_text(&c, "device.experimental_correct_accumulation", "false");
    expect_text(&c, "device.buffer_cap", "0");
    expect_text(&c, "device.tail_weightening", "5");
    expect_text(&c, "device.momentum", "0");
    expect_text(&c, "device.units_in_mbatch", "false");
}

/* Wrong keys and combinations of the three types, each error naming the key. */
static void test_transfer2_errors(void) {
    rpu_config c;
    compound(&c, "chopped_transfer", 2, "soft_bounds");
    expect_reject(&c, "device.thres_scale", "2", "device.thres_scale", "buffered_transfer");
    expect_reject(&c, "device.tail_weightening", "2", "device.tail_weightening",
                  "dynamic_transfer");
    expect_reject(&c, "device.in_chop_prob", "1.5", "device.in_chop_prob", NULL);
    expect_reject(&c, "device.momentum", "-0.1", "device.momentum", NULL);
    expect_reject(&c, "device.step", "0", "device.step", NULL);
    compound(&c, "buffered_transfer", 2, "soft_bounds");
    expect_reject(&c, "device.in_chop_prob", "0.5", "device.in_chop_prob", "chopped_transfer");
    /* three sub-devices: fine for buffered, not for chopped / dynamic */
    compound(&c, "buffered_transfer", 3, "soft_bounds");
    CHECK(rpu_config_validate(&c) == RPU_OK, "buffered 3 devices: %s", rpu_last_error());
    compound(&c, "chopped_transfer", 3, "soft_bounds");
    expect_invalid(&c, "device.unit_cell_devices", "exactly two", "chopped 3 devices");
    compound(&c, "dynamic_transfer", 1, "soft_bounds");
    expect_invalid(&c, "device.unit_cell_devices", "at least two", "dynamic 1 device");
    compound(&c, "chopped_transfer", 2, "soft_bounds");
    set_ok(&c, "device.n_reads_per_transfer", "2");
    expect_invalid(&c, "device.n_reads_per_transfer", "one column", "chopped n_reads 2");
    /* the automatic period (transfer_every < 0) is for chopped / dynamic only */
    compound(&c, "chopped_transfer", 2, "soft_bounds");
    set_ok(&c, "device.transfer_every", "-2");
    CHECK(rpu_config_validate(&c) == RPU_OK, "chopped auto period: %s", rpu_last_error());
    compound(&c, "buffered_transfer", 2, "soft_bounds");
    set_ok(&c, "device.transfer_every", "-2");
    expect_invalid(&c, "device.transfer_every", "chopped_transfer", "buffered te < 0");
    compound(&c, "transfer", 2, "soft_bounds");
    set_ok(&c, "device.transfer_every", "-1");
    expect_invalid(&c, "device.transfer_every", ">= 0", "transfer te < 0");
    compound(&c, "dynamic_transfer", 2, "soft_bounds");
    set_ok(&c, "device.transfer_columns", "false");
    set_ok(&c, "device.with_reset_prob", "0.5");
    expect_invalid(&c, "device.with_reset_prob", "transfer_columns", "dynamic rows reset");
}

/* mixed_precision's keys sit after the buffered family's in rpu_compound_params: each block
 * belongs to its own types only (the types named in the error), and the two transfer keys
 * mixed_precision shares apply to it; its transfer_every (set-time any sign, for the
 * automatic period of chopped / dynamic) must be a whole number >= 0 at validation. */
static void test_mixed_vs_transfer2(void) {
    rpu_config c;
    compound(&c, "dynamic_transfer", 2, "soft_bounds");
    CHECK(!rpu_config_key_applies(&c, "device.n_rows_per_transfer"), "n_rows on dynamic");
    CHECK(!rpu_config_key_applies(&c, "device.stoc_round_d"), "stoc_round_d on dynamic");
    expect_reject(&c, "device.n_rows_per_transfer", "2", "device.n_rows_per_transfer",
                  "mixed_precision");
    expect_reject(&c, "device.granularity", "0.1", "device.granularity", "mixed_precision");
    rpu_clear_error();
    CHECK(rpu_config_set(&c, "device.stoc_round_x", "false") == RPU_ERR_CONFIG &&
              mentions("(it belongs to: mixed_precision)"),
          "stoc_round_x on dynamic belongs to mixed_precision only: %s", rpu_last_error());
    compound(&c, "mixed_precision", 1, "soft_bounds");
    CHECK(rpu_config_key_applies(&c, "device.transfer_every"), "transfer_every on mixed");
    CHECK(rpu_config_key_applies(&c, "device.transfer_lr"), "transfer_lr on mixed");
    CHECK(rpu_config_key_applies(&c, "device.n_x_bins"), "n_x_bins on mixed");
    CHECK(!rpu_config_key_applies(&c, "device.gamma"), "gamma on mixed");
    expect_reject(&c, "device.tail_weightening", "2", "device.tail_weightening",
                  "dynamic_transfer");
    expect_reject(&c, "device.buffer_cap", "2", "device.buffer_cap", "dynamic_transfer");
    expect_reject(&c, "device.thres_scale", "2", "device.thres_scale", "buffered_transfer");
    expect_reject(&c, "device.in_chop_prob", "0.5", "device.in_chop_prob", "chopped_transfer");
    CHECK(rpu_config_validate(&c) == RPU_OK, "mixed defaults: %s", rpu_last_error());
    set_ok(&c, "device.transfer_every", "-1");
    expect_invalid(&c, "device.transfer_every", ">= 0", "mixed te < 0");
    set_ok(&c, "device.transfer_every", "2.5");
    expect_invalid(&c, "device.transfer_every", "whole", "mixed te 2.5");
    set_ok(&c, "device.transfer_every", "3");
    CHECK(rpu_config_validate(&c) == RPU_OK, "mixed te 3: %s", rpu_last_error());
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_defaults();
    test_syntax();
    test_round_trips();
    test_rejections();
    test_validate();
    test_transfer2_defaults();
    test_transfer2_errors();
    test_mixed_vs_transfer2();
    return tl_finish();
}
