/* rpusim — rpu_config_validate: every field against the table's type and range, then the
 * cross-field rules (see config.h). */
#include "config_table_impl.h"

#include "error_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool is_pulsed_device(rpu_device_type t) {
    return t != RPU_DEVICE_FLOATING_POINT && t != RPU_DEVICE_IDEAL;
}

static rpu_status check_io(const rpu_io_params *io, const char *dir) {
    if (!io->is_perfect && io->noise_management != RPU_NM_NONE && io->inp_bound != 1.0f)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s.inp_bound = %g: must be 1 when %s.noise_management is %s and "
                        "%s.is_perfect is false (set %s.noise_management = none to use "
                        "another input bound)",
                        dir, (double)io->inp_bound, dir,
                        config_enum_name("forward.noise_management", io->noise_management), dir,
                        dir);
    return RPU_OK;
}

/* The cross-field rules of one device's parameters; p is the key prefix of messages
 * ("device." or "device.unit_cell_devices.N."). */
static rpu_status check_device(const rpu_device_params *dev, const char *p) {
    if (dev->type == RPU_DEVICE_SOFT_BOUNDS_PMAX) {
        /* bounds derive from the range (spec §4.4): w_min = range_min,
         * w_max = range_min + (range_max - range_min) / (1 - exp(-p_max alpha)) */
        if (!(dev->range_max > dev->range_min))
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%srange_max (%g) must be greater than %srange_min (%g)", p,
                            (double)dev->range_max, p, (double)dev->range_min);
        double span = ((double)dev->range_max - dev->range_min) /
                      (1.0 - exp(-(double)dev->p_max * dev->alpha));
        if (dev->range_min > 0.0f || (double)dev->range_min + span < 0.0)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%srange_min = %g, %srange_max = %g: the derived weight "
                            "range [%g, %g] must contain 0",
                            p, (double)dev->range_min, p, (double)dev->range_max,
                            (double)dev->range_min, (double)dev->range_min + span);
    } else if (is_pulsed_device(dev->type)) {
        if (dev->w_min > 0.0f || dev->w_max < 0.0f)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%sw_min = %g, %sw_max = %g: the weight range must "
                            "contain 0 (w_min <= 0 <= w_max)",
                            p, (double)dev->w_min, p, (double)dev->w_max);
    }
    if (dev->type == RPU_DEVICE_PIECEWISE_STEP) {
        if (dev->n_piecewise_up < 1 || dev->n_piecewise_up != dev->n_piecewise_down)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%spiecewise_up (%d elements) and %spiecewise_down (%d "
                            "elements) must be non-empty and of the same length",
                            p, dev->n_piecewise_up, p, dev->n_piecewise_down);
    }
    return RPU_OK;
}

/* An explicit per-device list (gamma_vec, ...) is empty or has one entry per device. */
static rpu_status check_vec_len(int len, int n, const char *key, const char *tname) {
    if (len != 0 && len != n)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s has %d entries but the %s compound has %d sub-devices "
                        "(device.unit_cell_devices.0 .. %d): give one per sub-device or none",
                        key, len, tname, n, n - 1);
    return RPU_OK;
}

/* The rules of buffered_transfer, chopped_transfer and dynamic_transfer beyond those of
 * transfer (compound spec §6.1, §7.1, §8.1); transfer: transfer_every >= 0. */
static rpu_status check_transfer2(const rpu_config *cfg, const char *tname) {
    const rpu_compound_params *cp = &cfg->compound;
    const rpu_device_type t = cfg->device.type;
    const bool chopped = t == RPU_DEVICE_CHOPPED_TRANSFER || t == RPU_DEVICE_DYNAMIC_TRANSFER;
    if (cp->transfer_every < 0 && !chopped)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "device.transfer_every = %g: must be >= 0 for the %s compound (a "
                        "negative value, the automatic period, is for chopped_transfer and "
                        "dynamic_transfer)",
                        (double)cp->transfer_every, tname);
    if (!chopped) return RPU_OK;
    if (cp->n_devices != 2)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "device.unit_cell_devices: the %s compound has exactly two sub-devices "
                        "(aihwkit: \"Only 2 devices supported\"), got %d",
                        tname, cp->n_devices);
    if (cp->n_reads_per_transfer != 1)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "device.n_reads_per_transfer = %d: the %s compound reads one column "
                        "(row) per transfer",
                        cp->n_reads_per_transfer, tname);
    return RPU_OK;
}

/* The rules of a unit cell (compound spec §2.1, §3, §4.1): cp of type t, keys under prefix P
 * ("device." for the top level, "device.unit_cell_devices.N." for a cell inside a
 * compound). */
static rpu_status check_unit_cell(const rpu_compound_params *cp, rpu_device_type t, const char *P) {
    const char *tname = config_enum_name("device.type", (int)t);
    const int n = cp->n_devices;
    char key[96];
    snprintf(key, sizeof key, "%sgamma_vec", P);
    switch (t) {
    case RPU_DEVICE_VECTOR:
        if (n < 1)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%sunit_cell_devices: the vector compound needs at least one "
                            "sub-device (set %sunit_cell_devices.0.type)",
                            P, P);
        RPU_CHECK(check_vec_len(cp->n_gamma_vec, n, key, tname));
        if (cp->first_update_idx >= n)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%sfirst_update_idx = %d: must be below the number of "
                            "sub-devices (%d)",
                            P, cp->first_update_idx, n);
        break;
    case RPU_DEVICE_REFERENCE:
        /* aihwkit duplicates a single entry and refuses an empty list */
        if (n < 1 || n > 2)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%sunit_cell_devices: the reference compound has one or two "
                            "sub-devices (one is duplicated), got %d",
                            P, n);
        RPU_CHECK(check_vec_len(cp->n_gamma_vec, 2, key, tname));
        if (cp->first_update_idx >= 2)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%sfirst_update_idx = %d: must be 0 or 1 for a reference cell", P,
                            cp->first_update_idx);
        break;
    case RPU_DEVICE_ONE_SIDED:
        if (n < 1 || n > 2)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%sunit_cell_devices: the one_sided compound has one or two "
                            "sub-devices (only the first one's parameters are used), got %d",
                            P, n);
        if (n == 2 && cp->unit_cell_devices[1].type != cp->unit_cell_devices[0].type)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%sunit_cell_devices.1.type = %s: the two sub-devices of a "
                            "one_sided compound must be of the same type (device 0 is %s)",
                            P, config_enum_name("device.type", (int)cp->unit_cell_devices[1].type),
                            config_enum_name("device.type", (int)cp->unit_cell_devices[0].type));
        break;
    default:
        break;
    }
    return RPU_OK;
}

/* The first row whose stored value is out of its type or range. */
typedef struct {
    const rpu_config *cfg;
    char err[CONFIG_ERR_MAX];
    bool bad;
} row_check;

static void check_row(const field_desc *d, void *ctx) {
    row_check *r = (row_check *)ctx;
    if (!r->bad) r->bad = !config_check_field(r->cfg, d, r->err, sizeof r->err);
}

/* A compound: its sub-devices' fields and rules, and the rules of the compound type
 * (compound spec §1.2, §2.1, §3, §4.1, §5.1-5.2). A sub-device may be a unit cell when the
 * compound is a transfer type or mixed_precision. */
static rpu_status check_compound(const rpu_config *cfg) {
    const rpu_compound_params *cp = &cfg->compound;
    const char *tname = config_enum_name("device.type", (int)cfg->device.type);
    const int n = cp->n_devices;
    if (n < 0 || n > RPU_MAX_UNIT_CELL_DEVICES)
        return RPU_FAIL(RPU_ERR_CONFIG, "device.unit_cell_devices: %d sub-devices (at most %d)", n,
                        RPU_MAX_UNIT_CELL_DEVICES);
    for (int k = 0; k < n; ++k) {
        const rpu_compound_params *cell = &cfg->cells[k];
        if (rpu_device_type_is_unit_cell(cp->unit_cell_devices[k].type) &&
            (cell->n_devices < 0 || cell->n_devices > RPU_MAX_UNIT_CELL_DEVICES))
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.unit_cell_devices.%d.unit_cell_devices: %d devices (at most "
                            "%d)",
                            k, cell->n_devices, RPU_MAX_UNIT_CELL_DEVICES);
    }
    row_check rc = {.cfg = cfg, .bad = false};
    config_visit_sub_rows(cfg, check_row, &rc);
    if (rc.bad) return RPU_FAIL(RPU_ERR_CONFIG, "%s", rc.err);
    const bool nests = rpu_device_type_is_transfer(cfg->device.type) ||
                       cfg->device.type == RPU_DEVICE_MIXED_PRECISION;
    for (int k = 0; k < n; ++k) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "device.unit_cell_devices.%d.", k);
        const rpu_device_type st = cp->unit_cell_devices[k].type;
        if (!rpu_device_type_is_unit_cell(st)) {
            RPU_CHECK(check_device(&cp->unit_cell_devices[k], prefix));
            continue;
        }
        if (!nests)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.unit_cell_devices.%d.type = %s: a %s compound holds single "
                            "devices; unit cells nest only in the transfer compounds and "
                            "mixed_precision",
                            k, config_enum_name("device.type", (int)st), tname);
        const rpu_compound_params *cell = &cfg->cells[k];
        for (int m = 0; m < cell->n_devices; ++m) {
            char p2[96];
            snprintf(p2, sizeof p2, "%sunit_cell_devices.%d.", prefix, m);
            RPU_CHECK(check_device(&cell->unit_cell_devices[m], p2));
        }
        RPU_CHECK(check_unit_cell(cell, st, prefix));
    }
    switch (cfg->device.type) {
    case RPU_DEVICE_VECTOR:
    case RPU_DEVICE_REFERENCE:
    case RPU_DEVICE_ONE_SIDED:
        RPU_CHECK(check_unit_cell(cp, cfg->device.type, "device."));
        break;
    case RPU_DEVICE_TRANSFER:
    case RPU_DEVICE_BUFFERED_TRANSFER:
    case RPU_DEVICE_CHOPPED_TRANSFER:
    case RPU_DEVICE_DYNAMIC_TRANSFER:
        if (n < 2)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.unit_cell_devices: the %s compound needs at least two "
                            "sub-devices (a fast and a slow array), got %d",
                            tname, n);
        RPU_CHECK(check_transfer2(cfg, tname));
        for (int k = 2; k < n; ++k)
            if (cp->unit_cell_devices[k].type != cp->unit_cell_devices[1].type)
                return RPU_FAIL(
                    RPU_ERR_CONFIG,
                    "device.unit_cell_devices.%d.type = %s: the slow devices 1 .. n-1 of a "
                    "transfer compound must be of one type (device 1 is %s)",
                    k, config_enum_name("device.type", (int)cp->unit_cell_devices[k].type),
                    config_enum_name("device.type", (int)cp->unit_cell_devices[1].type));
        RPU_CHECK(check_vec_len(cp->n_gamma_vec, n, "device.gamma_vec", tname));
        RPU_CHECK(check_vec_len(cp->n_transfer_every_vec, n, "device.transfer_every_vec", tname));
        RPU_CHECK(check_vec_len(cp->n_transfer_lr_vec, n, "device.transfer_lr_vec", tname));
        if (cp->n_gamma_vec == n && cp->gamma_vec[n - 1] == 0.0f)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.gamma_vec: the last entry (the weight of the slowest "
                            "device) must not be 0");
        if (cp->with_reset_prob > 0 && !cp->transfer_columns)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.with_reset_prob = %g needs device.transfer_columns = true "
                            "(rows cannot be reset)",
                            (double)cp->with_reset_prob);
        break;
    case RPU_DEVICE_MIXED_PRECISION: /* §9.1 */
        if (n != 1)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.unit_cell_devices: the mixed_precision compound has exactly "
                            "one analog device (device.unit_cell_devices.0), got %d",
                            n);
        /* transfer_every is accepted negative at set time (the automatic period of
         * chopped_transfer / dynamic_transfer); here it counts update calls */
        if (!(cp->transfer_every >= 0) || cp->transfer_every != floorf(cp->transfer_every) ||
            cp->transfer_every > 1e9f)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.transfer_every = %g: mixed_precision transfers every whole "
                            "number (>= 0) of update calls (0 = never)",
                            (double)cp->transfer_every);
        if (cp->n_x_bins == 1 || cp->n_d_bins == 1)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.%s = 1: one bin has half-width 0; use 0 (no quantisation) "
                            "or at least 2",
                            cp->n_x_bins == 1 ? "n_x_bins" : "n_d_bins");
        break;
    default:
        break;
    }
    return RPU_OK;
}

rpu_status rpu_config_validate(const rpu_config *cfg) {
    if (!cfg) return RPU_FAIL(RPU_ERR_ARG, "rpu_config_validate: cfg is NULL");
    char err[CONFIG_ERR_MAX];
    for (size_t i = 0; i < config_n_fields; ++i)
        if (!config_check_field(cfg, &config_fields[i], err, sizeof err))
            return RPU_FAIL(RPU_ERR_CONFIG, "%s", err);

    RPU_CHECK(check_io(&cfg->forward, "forward"));
    RPU_CHECK(check_io(&cfg->backward, "backward"));

    if (rpu_device_type_is_compound(cfg->device.type))
        RPU_CHECK(check_compound(cfg));
    else
        RPU_CHECK(check_device(&cfg->device, "device."));
    if (cfg->noise_model.type != RPU_NOISE_MODEL_NONE &&
        !(cfg->noise_model.g_max > cfg->noise_model.g_min))
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "noise_model.g_max (%g) must be greater than noise_model.g_min (%g)",
                        (double)cfg->noise_model.g_max, (double)cfg->noise_model.g_min);
    if (cfg->mapping.learn_out_scaling) /* accepted silently, it would train otherwise */
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "mapping.learn_out_scaling = true is not supported: rpusim does not "
                        "learn output scales (aihwkit makes them trainable parameters of the "
                        "layer); set it to false");
    if ((cfg->modifier.type == RPU_MOD_POLY || cfg->modifier.type == RPU_MOD_PROG_NOISE) &&
        cfg->modifier.n_coeffs < 1)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "modifier.coeffs must not be empty when modifier.type "
                        "is %s",
                        config_enum_name("modifier.type", cfg->modifier.type));
    return RPU_OK;
}
