/* rpusim — rpu_config_validate: every field against the table's type and range, then the
 * cross-field rules (see config.h). */
#include "config_table_impl.h"

#include "error_impl.h"

#include <math.h>
#include <stdio.h>

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

rpu_status rpu_config_validate(const rpu_config *cfg) {
    if (!cfg) return RPU_FAIL(RPU_ERR_ARG, "rpu_config_validate: cfg is NULL");
    char err[CONFIG_ERR_MAX];
    for (size_t i = 0; i < config_n_fields; ++i)
        if (!config_check_field(cfg, &config_fields[i], err, sizeof err))
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
                        config_enum_name("modifier.type", cfg->modifier.type));
    return RPU_OK;
}
