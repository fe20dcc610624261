/* Device models of a tile (spec §3.5, §4): construction of the device-to-device values,
 * the update-once rules of every device type, and the whole-array operations (set-weights
 * clip, diffusion, decay, reset, drift).
 *
 * Reference and fast paths. rpu_device_pulses() is the plain per-cell reference of the
 * update engine (run_cell and the run_* rule functions). rpu_device_pulse_row() applies a
 * row of pulse counts. For exp_step, pow_step and piecewise_step it calls the same run_*
 * functions cell by cell. constant_step and linear_step/soft_bounds, the devices of the hot
 * training loop, have row kernels (row_constant, row_linear) that run one branch-free,
 * vectorisable pass per pulse over a chunk of the row: pass k applies the k-th pulse (step,
 * then the clip) to every cell with count > k and leaves the others as they are; with
 * cycle-to-cycle noise the k-th pulse of cell j reads normal off[j] + k (off = prefix sum
 * of the counts, the order the reference consumes them in). Each cell still sees the
 * identical sequence of float operations of its run_* rule, one pulse at a time, so the
 * results are bitwise those of the reference (checked in mpi_tests/test_device.c).
 *
 * Floating point: a*b + c must never be contracted into a fused multiply-add (which GCC
 * does by default outside ISO mode, differently in vectorised and scalar code), so that an
 * expression gives the same float wherever it is evaluated; the pragmas below turn
 * contraction off for this file whatever the build's -std.
 *
 * Resolved readings of the spec (documented where they are used):
 *  - soft_bounds / soft_bounds_pmax are LinearStep devices with gamma fixed to 1, no d2d on
 *    gamma, per-device bound references (whatever the gamma fields of the config say);
 *  - write noise only exists for linear_step, soft_bounds(_pmax), exp_step, pow_step and
 *    piecewise_step; for other types write_noise_std is ignored (effective value 0);
 *  - drift nu_ij are drawn after the device-specific values, in their own loop (i outer,
 *    j inner); floating_point and ideal devices drift too when drift.nu > 0 (no clip);
 *  - piecewise_step interpolates its step factor over the cell's own [min_bound, max_bound];
 *  - exp_step granularity uses the mean step including the up/down bias. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "device_impl.h"
#include "rng_impl.h"

#include "error_impl.h"

#include <math.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

/* Kinds of update-once rule (soft_bounds and soft_bounds_pmax are linear_step). */
typedef enum {
    RULE_NONE = 0,
    RULE_CONSTANT,
    RULE_LINEAR,
    RULE_EXP,
    RULE_POW,
    RULE_PIECEWISE,
    RULE_SBREF /* soft_bounds_reference */
} rule;

static rule rule_of(rpu_device_type t) {
    switch (t) {
    case RPU_DEVICE_CONSTANT_STEP:
        return RULE_CONSTANT;
    case RPU_DEVICE_LINEAR_STEP:
    case RPU_DEVICE_SOFT_BOUNDS:
    case RPU_DEVICE_SOFT_BOUNDS_PMAX:
        return RULE_LINEAR;
    case RPU_DEVICE_EXP_STEP:
        return RULE_EXP;
    case RPU_DEVICE_POW_STEP:
        return RULE_POW;
    case RPU_DEVICE_PIECEWISE_STEP:
        return RULE_PIECEWISE;
    case RPU_DEVICE_SOFT_BOUNDS_REFERENCE:
        return RULE_SBREF;
    case RPU_DEVICE_FLOATING_POINT:
    case RPU_DEVICE_IDEAL:
    case RPU_DEVICE_VECTOR: /* compounds are built from their sub-devices (compound.c) */
    case RPU_DEVICE_REFERENCE:
    case RPU_DEVICE_ONE_SIDED:
    case RPU_DEVICE_TRANSFER:
    case RPU_DEVICE_BUFFERED_TRANSFER:
    case RPU_DEVICE_CHOPPED_TRANSFER:
    case RPU_DEVICE_DYNAMIC_TRANSFER:
    case RPU_DEVICE_MIXED_PRECISION:
        break;
    }
    return RULE_NONE;
}

static int supports_write_noise(rule r) {
    return r == RULE_LINEAR || r == RULE_EXP || r == RULE_POW || r == RULE_PIECEWISE ||
           r == RULE_SBREF;
}

/* Elements per chunk of the whole-array operations (a multiple of 4, so every chunk starts
 * on a block boundary of its random range). */
enum { CHUNK = 256 };

static inline float clip(float w, float lo, float hi) {
    w = w > hi ? hi : w;
    return w < lo ? lo : w;
}

/* ------------------------------------------------------------------------------------
 * Effective parameters and construction
 * ---------------------------------------------------------------------------------- */

/* Maps the configured parameters onto the ones the models use (spec §4.4). */
static rpu_status effective_params(const rpu_device_params *in, rpu_device_params *p) {
    *p = *in;
    if ((int)p->type < (int)RPU_DEVICE_FLOATING_POINT ||
        (int)p->type > (int)RPU_DEVICE_SOFT_BOUNDS_REFERENCE)
        return RPU_FAIL(RPU_ERR_CONFIG, "device.type: unknown device type %d", (int)p->type);
    rule r = rule_of(p->type);
    if (p->type == RPU_DEVICE_SOFT_BOUNDS_PMAX) {
        double span = (double)p->range_max - (double)p->range_min;
        double denom = 1.0 - exp(-(double)p->p_max * (double)p->alpha);
        if (!(span > 0.0) || !(denom > 0.0))
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "soft_bounds_pmax needs device.range_max > device.range_min and "
                            "device.p_max * device.alpha > 0 (got range [%g, %g], p_max %g, "
                            "alpha %g)",
                            (double)p->range_min, (double)p->range_max, (double)p->p_max,
                            (double)p->alpha);
        double B = span / denom;
        p->w_min = p->range_min;
        p->w_max = (float)((double)p->range_min + B);
        p->dw_min = (float)(B * (double)p->alpha);
        p->up_down = (float)(1.0 + 2.0 * (double)p->range_min / B);
    }
    if (p->type == RPU_DEVICE_SOFT_BOUNDS || p->type == RPU_DEVICE_SOFT_BOUNDS_PMAX) {
        p->gamma_up = 1.0f;
        p->gamma_down = 1.0f;
        p->gamma_up_dtod = 0.0f;
        p->gamma_down_dtod = 0.0f;
        p->allow_increasing = false;
        p->mean_bound_reference = false;
    }
    if (!supports_write_noise(r)) p->write_noise_std = 0.0f;
    if (r != RULE_NONE && (p->w_min > 0.0f || p->w_max < 0.0f))
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "device.w_min = %g, device.w_max = %g: the weight range must contain 0",
                        (double)p->w_min, (double)p->w_max);
    if (r == RULE_PIECEWISE && (p->n_piecewise_up < 1 || p->n_piecewise_up > RPU_MAX_PIECEWISE ||
                                p->n_piecewise_up != p->n_piecewise_down))
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "device.piecewise_up (%d elements) and device.piecewise_down (%d "
                        "elements) must be non-empty, of equal length and at most %d long",
                        p->n_piecewise_up, p->n_piecewise_down, RPU_MAX_PIECEWISE);
    if (p->drift.nu > 0.0f && !(p->drift.t_0 > 0.0f))
        return RPU_FAIL(RPU_ERR_CONFIG, "device.drift.t_0 must be > 0 (got %g)",
                        (double)p->drift.t_0);
    return RPU_OK;
}

/* Weight granularity from the mean parameters (spec §3.3, §4.6). */
static float granularity_of(const rpu_device_params *p, rule r) {
    switch (r) {
    case RULE_POW:
        return p->dw_min * powf(0.5f, p->pow_gamma);
    case RULE_EXP: {
        /* at w = 0 with the mean step scale: z = b; aihwkit averages dw_down with itself */
        float down_bias = p->up_down > 0.0f ? -p->up_down : 0.0f;
        float y = 1.0f - p->A_down * expf(-p->gamma_down * p->b);
        y = y > 0.0f ? y : 0.0f;
        float dw_down = y * (1.0f + down_bias) * p->dw_min;
        float g = (dw_down + dw_down) / 2.0f;
        return g > 0.0f ? g : p->dw_min;
    }
    case RULE_NONE:
    case RULE_CONSTANT:
    case RULE_LINEAR:
    case RULE_PIECEWISE:
    case RULE_SBREF:
        break;
    }
    return p->dw_min;
}

static float *add_array(rpu_device_state *dev, const char *name, size_t *next, size_t cells) {
    float *a = dev->block + *next;
    *next += cells;
    dev->arrays[dev->n_arrays].name = name;
    dev->arrays[dev->n_arrays].data = a;
    dev->n_arrays++;
    return a;
}

/* Common d2d draws (spec §4.1): j outer, i inner. */
static void draw_common(rpu_device_state *dev, rpu_rng *rng) {
    const rpu_device_params *p = &dev->par;
    const int rows = dev->rows, cols = dev->cols;
    const float up_bias = p->up_down < 0.0f ? p->up_down : 0.0f;
    const float down_bias = p->up_down > 0.0f ? -p->up_down : 0.0f;
    const float R = p->corrupt_devices_range;
    for (int j = 0; j < cols; ++j) {
        for (int i = 0; i < rows; ++i) {
            size_t c = (size_t)i * (size_t)cols + (size_t)j;
            float bmax = p->w_max * (1.0f + p->w_max_dtod * rpu_rng_normal(rng));
            float bmin = p->w_min * (1.0f + p->w_min_dtod * rpu_rng_normal(rng));
            float x3 = rpu_rng_normal(rng);
            float gain =
                p->dw_min_dtod_log_normal ? expf(p->dw_min_dtod * x3) : 1.0f + p->dw_min_dtod * x3;
            float r = p->up_down_dtod * rpu_rng_normal(rng);
            float up = (up_bias + gain + r) * p->dw_min;
            float down = (down_bias + gain - r) * p->dw_min;
            if (p->enforce_consistency) {
                up = fabsf(up);
                down = fabsf(down);
                if (bmin > bmax) {
                    float t = bmin;
                    bmin = bmax;
                    bmax = t;
                }
                bmax = fabsf(bmax);
                bmin = -fabsf(bmin);
            } else if (bmin > bmax) {
                float mid = (bmin + bmax) / 2.0f;
                bmin = mid;
                bmax = mid;
            }
            float u5 = rpu_rng_uniform(rng);
            if (p->corrupt_devices_prob > u5) {
                float lo = fmaxf(fminf(bmin, bmax), -R);
                float hi = fminf(fmaxf(bmin, bmax), R);
                float v = lo + (hi - lo) * rpu_rng_uniform(rng);
                bmin = v;
                bmax = v;
                up = 0.0f;
                down = 0.0f;
            }
            if (p->perfect_bias && j == cols - 1) {
                up = p->dw_min;
                down = p->dw_min;
                bmin = 100.0f * p->w_min;
                bmax = 100.0f * p->w_max;
            }
            float rho = fabsf(p->diffusion * (1.0f + p->diffusion_dtod * rpu_rng_normal(rng)));
            float rb = p->reset + p->reset_dtod * rpu_rng_normal(rng);
            float delta = 1.0f;
            if (p->lifetime > 0.0f) {
                float t = p->lifetime * (1.0f + p->lifetime_dtod * rpu_rng_normal(rng));
                delta = t > 1.0f ? 1.0f - 1.0f / t : 0.0f;
            }
            dev->max_bound[c] = bmax;
            dev->min_bound[c] = bmin;
            dev->dwmin_up[c] = up;
            dev->dwmin_down[c] = down;
            if (dev->diffusion_rates) dev->diffusion_rates[c] = rho;
            if (dev->reset_bias) dev->reset_bias[c] = rb;
            if (dev->decay_scales) dev->decay_scales[c] = delta;
        }
    }
}

/* Device-specific draws (spec §4.3-§4.5): i outer, j inner. */
static void draw_specific(rpu_device_state *dev, rule r, rpu_rng *rng) {
    const rpu_device_params *p = &dev->par;
    const size_t cells = (size_t)dev->rows * (size_t)dev->cols;
    if (r == RULE_LINEAR) {
        for (size_t c = 0; c < cells; ++c) {
            float gu = p->gamma_up + p->gamma_up_dtod * rpu_rng_normal(rng);
            float gd = p->gamma_down + p->gamma_down_dtod * rpu_rng_normal(rng);
            if (!p->allow_increasing) {
                gu = fabsf(gu);
                gd = fabsf(gd);
            }
            float ru, rd;
            if (p->mean_bound_reference) {
                ru = p->reverse_up ? p->w_min - p->reverse_offset : p->w_max;
                rd = p->reverse_down ? p->w_max + p->reverse_offset : p->w_min;
            } else {
                ru = p->reverse_up ? dev->min_bound[c] - p->reverse_offset : dev->max_bound[c];
                rd = p->reverse_down ? dev->max_bound[c] + p->reverse_offset : dev->min_bound[c];
            }
            /* up: w += slope_up w + scale_up = scale_up (1 - g_up w / r_up);
             * down: w -= slope_down w + scale_down = scale_down (1 - g_down w / r_down) */
            dev->slope_up[c] = ru != 0.0f ? -gu * dev->dwmin_up[c] / ru : 0.0f;
            dev->slope_down[c] = rd != 0.0f ? -gd * dev->dwmin_down[c] / rd : 0.0f;
        }
    } else if (r == RULE_SBREF) {
        /* SoftBoundsReference (§4.4), per cell: with consistent bounds (b_min < 0 < b_max)
         * the slopes scale/b get an extra d2d factor |1 + dtod xi| (bounds rescaled; no draw
         * and no change when the dtod is 0), then the reference r = mean + std xi (no draw
         * when std is 0), plus the symmetry point if requested (also added to the reset
         * bias) */
        for (size_t c = 0; c < cells; ++c) {
            float bmax = dev->max_bound[c], bmin = dev->min_bound[c];
            const float su = dev->dwmin_up[c], sd = dev->dwmin_down[c];
            const bool consistent = bmax > 0.0f && bmin < 0.0f;
            if (consistent && p->slope_down_dtod > 0.0f) {
                float sl = -sd / bmin;
                sl *= fabsf(1.0f + p->slope_down_dtod * rpu_rng_normal(rng));
                bmin = -sd / sl;
            }
            if (consistent && p->slope_up_dtod > 0.0f) {
                float sl = su / bmax;
                sl *= fabsf(1.0f + p->slope_up_dtod * rpu_rng_normal(rng));
                bmax = su / sl;
            }
            dev->max_bound[c] = bmax;
            dev->min_bound[c] = bmin;
            float ref = p->reference_mean;
            if (p->reference_std > 0.0f) ref += p->reference_std * rpu_rng_normal(rng);
            if (p->subtract_symmetry_point && consistent) {
                const float sp = (su - sd) / (su / bmax - sd / bmin);
                ref += sp;
                if (dev->reset_bias) dev->reset_bias[c] += sp;
            }
            dev->reference[c] = ref;
        }
    } else if (r == RULE_POW) {
        const float up_bias = p->pow_up_down < 0.0f ? p->pow_up_down : 0.0f;
        const float down_bias = p->pow_up_down > 0.0f ? -p->pow_up_down : 0.0f;
        for (size_t c = 0; c < cells; ++c) {
            float gain = 1.0f + p->pow_gamma_dtod * rpu_rng_normal(rng);
            float rr = p->pow_up_down_dtod * rpu_rng_normal(rng);
            float gu = (up_bias + gain + rr) * p->pow_gamma;
            float gd = (down_bias + gain - rr) * p->pow_gamma;
            if (p->enforce_consistency) {
                gu = fabsf(gu);
                gd = fabsf(gd);
            }
            dev->gamma_up[c] = gu;
            dev->gamma_down[c] = gd;
        }
    }
}

rpu_status rpu_device_create(rpu_device_state *dev, const rpu_device_params *par, int rows,
                             int cols, rpu_rng *construct) {
    if (!dev) return RPU_FAIL(RPU_ERR_ARG, "rpu_device_create: dev is NULL");
    memset(dev, 0, sizeof *dev);
    if (!par || !construct)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_device_create: par or construct stream is NULL");
    if (rows <= 0 || cols <= 0)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_device_create: shape %d x %d must be positive", rows,
                        cols);
    if (rpu_device_type_is_compound(par->type))
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_device_create: a compound device is built by its tile from its "
                        "sub-devices");
    rpu_device_params p;
    RPU_CHECK(effective_params(par, &p));
    const rule r = rule_of(p.type);
    const size_t cells = (size_t)rows * (size_t)cols;

    /* which arrays exist */
    const int pulsed = r != RULE_NONE;
    int n = 0;
    if (pulsed) {
        n += 4;
        n += p.lifetime > 0.0f;
        n += p.diffusion > 0.0f;
        n += p.reset_dtod > 0.0f;
        n += r == RULE_LINEAR ? 2 : 0;
        n += r == RULE_POW ? 2 : 0;
        n += r == RULE_SBREF ? 1 : 0;
        n += p.write_noise_std > 0.0f;
    }
    n += p.drift.nu > 0.0f ? 4 : 0;
    if (cells > (size_t)-1 / sizeof(float) / (size_t)(n > 0 ? n : 1))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_device_create: %d x %d tile is too large", rows, cols);

    dev->type = par->type;
    dev->par = p;
    dev->rows = rows;
    dev->cols = cols;
    dev->row0 = 0;
    dev->rows_total = rows;
    dev->pulsed = pulsed;
    dev->granularity = granularity_of(&p, r);
    dev->block_floats = cells * (size_t)n;
    if (n > 0) {
        dev->block = (float *)calloc(dev->block_floats, sizeof(float));
        if (!dev->block) {
            memset(dev, 0, sizeof *dev);
            return RPU_FAIL(RPU_ERR_NOMEM, "rpu_device_create: cannot allocate %zu bytes",
                            cells * (size_t)n * sizeof(float));
        }
    }
    size_t next = 0;
    if (pulsed) {
        dev->max_bound = add_array(dev, "max_bound", &next, cells);
        dev->min_bound = add_array(dev, "min_bound", &next, cells);
        dev->dwmin_up = add_array(dev, "dwmin_up", &next, cells);
        dev->dwmin_down = add_array(dev, "dwmin_down", &next, cells);
        if (p.lifetime > 0.0f) dev->decay_scales = add_array(dev, "decay_scales", &next, cells);
        if (p.diffusion > 0.0f)
            dev->diffusion_rates = add_array(dev, "diffusion_rates", &next, cells);
        if (p.reset_dtod > 0.0f) dev->reset_bias = add_array(dev, "reset_bias", &next, cells);
        if (r == RULE_LINEAR) {
            dev->slope_up = add_array(dev, "slope_up", &next, cells);
            dev->slope_down = add_array(dev, "slope_down", &next, cells);
        }
        if (r == RULE_POW) {
            dev->gamma_up = add_array(dev, "gamma_up", &next, cells);
            dev->gamma_down = add_array(dev, "gamma_down", &next, cells);
        }
        if (r == RULE_SBREF) dev->reference = add_array(dev, "reference", &next, cells);
        if (p.write_noise_std > 0.0f)
            dev->persistent_weights = add_array(dev, "persistent_weights", &next, cells);
    }
    if (p.drift.nu > 0.0f) {
        dev->drift_nu = add_array(dev, "drift_nu", &next, cells);
        dev->drift_w0 = add_array(dev, "drift_w0", &next, cells);
        dev->drift_t = add_array(dev, "drift_t", &next, cells);
        dev->drift_prev = add_array(dev, "drift_prev", &next, cells);
    }
    if (next != dev->block_floats) {
        rpu_device_free(dev);
        return RPU_FAIL(RPU_ERR_INTERNAL, "rpu_device_create: array layout mismatch");
    }

    if (pulsed) {
        draw_common(dev, construct);
        draw_specific(dev, r, construct);
    }
    if (dev->drift_nu) {
        const float nu = p.drift.nu, s = p.drift.nu_dtod * p.drift.nu;
        for (size_t c = 0; c < cells; ++c)
            dev->drift_nu[c] = nu + s * rpu_rng_normal(construct);
    }
    return RPU_OK;
}

void rpu_device_free(rpu_device_state *dev) {
    if (!dev) return;
    free(dev->block);
    memset(dev, 0, sizeof *dev);
}

rpu_status rpu_device_rows_view(const rpu_device_state *src, int r0, int r1,
                                rpu_device_state *view) {
    if (!view) return RPU_FAIL(RPU_ERR_ARG, "rpu_device_rows_view: view is NULL");
    memset(view, 0, sizeof *view);
    if (!src || r0 < 0 || r1 <= r0 || r1 > src->rows)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_device_rows_view: rows [%d, %d) of a state of %d rows",
                        r0, r1, src ? src->rows : 0);
    *view = *src;
    const size_t off = (size_t)r0 * (size_t)src->cols;
    float **views[] = {&view->max_bound,  &view->min_bound,    &view->dwmin_up,
                       &view->dwmin_down, &view->decay_scales, &view->diffusion_rates,
                       &view->reset_bias, &view->slope_up,     &view->slope_down,
                       &view->gamma_up,   &view->gamma_down,   &view->persistent_weights,
                       &view->drift_nu,   &view->drift_w0,     &view->drift_t,
                       &view->drift_prev, &view->reference};
    for (size_t v = 0; v < sizeof views / sizeof views[0]; ++v)
        if (*views[v]) *views[v] += off;
    for (int k = 0; k < view->n_arrays; ++k)
        view->arrays[k].data += off;
    view->block = NULL; /* a view owns nothing */
    view->block_floats = 0;
    view->rows = r1 - r0;
    view->row0 = src->row0 + r0;
    view->rows_total = src->rows_total > 0 ? src->rows_total : src->rows;
    return RPU_OK;
}

rpu_status rpu_device_slice_rows(const rpu_device_state *src, int r0, int r1,
                                 rpu_device_state *out) {
    if (!out) return RPU_FAIL(RPU_ERR_ARG, "rpu_device_slice_rows: out is NULL");
    memset(out, 0, sizeof *out);
    if (!src || r0 < 0 || r1 <= r0 || r1 > src->rows)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_device_slice_rows: rows [%d, %d) of a state of %d rows",
                        r0, r1, src ? src->rows : 0);
    const size_t cells = (size_t)(r1 - r0) * (size_t)src->cols;
    const size_t n = (size_t)src->n_arrays;
    *out = *src;
    out->block = NULL;
    out->block_floats = cells * n;
    if (n > 0) {
        out->block = (float *)malloc(out->block_floats * sizeof(float));
        if (!out->block) {
            memset(out, 0, sizeof *out);
            return RPU_FAIL(RPU_ERR_NOMEM, "rpu_device_slice_rows: cannot allocate %zu bytes",
                            out->block_floats * sizeof(float));
        }
    }
    out->rows = r1 - r0;
    out->row0 = src->row0 + r0;
    out->rows_total = src->rows_total > 0 ? src->rows_total : src->rows;
    /* every view moves to the same array's rows [r0, r1) in the new block */
    float **views[] = {&out->max_bound,  &out->min_bound,    &out->dwmin_up,
                       &out->dwmin_down, &out->decay_scales, &out->diffusion_rates,
                       &out->reset_bias, &out->slope_up,     &out->slope_down,
                       &out->gamma_up,   &out->gamma_down,   &out->persistent_weights,
                       &out->drift_nu,   &out->drift_w0,     &out->drift_t,
                       &out->drift_prev, &out->reference};
    for (size_t k = 0; k < n; ++k) {
        const float *from = src->arrays[k].data + (size_t)r0 * (size_t)src->cols;
        float *to = out->block + k * cells;
        memcpy(to, from, cells * sizeof(float));
        for (size_t v = 0; v < sizeof views / sizeof views[0]; ++v)
            if (*views[v] == src->arrays[k].data) *views[v] = to;
        out->arrays[k].data = to;
    }
    return RPU_OK;
}

float *rpu_device_array_by_name(const rpu_device_state *dev, const char *name) {
    if (!dev || !name) return NULL;
    for (int k = 0; k < dev->n_arrays; ++k)
        if (strcmp(dev->arrays[k].name, name) == 0) return dev->arrays[k].data;
    return NULL;
}

int rpu_device_normals_per_pulse(const rpu_device_state *dev) {
    return (dev && dev->pulsed && dev->par.dw_min_std != 0.0f) ? 1 : 0;
}

double rpu_device_bytes_per_cell(const rpu_device_state *dev) {
    if (!dev || dev->rows <= 0 || dev->cols <= 0) return 0.0;
    return (double)(dev->block_floats * sizeof(float)) / ((double)dev->rows * dev->cols);
}

/* ------------------------------------------------------------------------------------
 * Update-once rules. Each function applies n pulses of one sign to one cell and returns
 * the new weight; xi is NULL (no cycle-to-cycle noise) or holds n normals. "down" means
 * sign > 0. They define the arithmetic: rpu_device_pulses calls them, and the row kernels
 * further down repeat the expressions of run_constant and run_linear operation for
 * operation (change both together; the tests compare them bit for bit).
 * ---------------------------------------------------------------------------------- */

/* constant_step (§4.2): step is +scale_up (up) or -scale_down (down); w - s == w + (-s)
 * exactly in IEEE arithmetic. */
static inline float run_constant(float w, float step, float lo, float hi, int n, const float *xi,
                                 float sigma) {
    if (xi) {
        for (int k = 0; k < n; ++k)
            w = clip(w + step * (1.0f + sigma * xi[k]), lo, hi);
    } else {
        for (int k = 0; k < n; ++k)
            w = clip(w + step, lo, hi);
    }
    return w;
}

/* linear_step / soft_bounds (§4.3, §4.4). */
static inline float run_linear(float w, int down, float slope, float scale, float lo, float hi,
                               int n, const float *xi, float sigma, int mult) {
    for (int k = 0; k < n; ++k) {
        float nz = xi ? 1.0f + sigma * xi[k] : 1.0f;
        float dw = mult ? (slope * w + scale) * nz : slope * w + scale * nz;
        w = down ? w - dw : w + dw;
        w = clip(w, lo, hi);
    }
    return w;
}

/* soft_bounds_reference (§4.4): the soft bounds act on w + ref (a = (w + ref)/b, 0 when the
 * bound has the wrong sign), clipped to the bounds, then ref is taken off again. */
static inline float run_sbref(float w, int down, float scale, float ref, float lo, float hi, int n,
                              const float *xi, float sigma, int mult) {
    for (int k = 0; k < n; ++k) {
        float v = w + ref;
        const float z = xi ? sigma * xi[k] : 0.0f;
        if (down) {
            const float a = lo < 0.0f ? v / lo : 0.0f;
            v -= mult ? scale * (1.0f - a) * (1.0f + z) : scale * (1.0f - a + z);
        } else {
            const float a = hi > 0.0f ? v / hi : 0.0f;
            v += mult ? scale * (1.0f - a) * (1.0f + z) : scale * (1.0f - a + z);
        }
        v = clip(v, lo, hi);
        w = v - ref;
    }
    return w;
}

typedef struct {
    float two_a, b, A_up, A_down, g_up, g_down, std_add, std_slope;
    int complex_noise;
} exp_par;

static exp_par exp_par_of(const rpu_device_params *p) {
    exp_par e;
    e.two_a = 2.0f * p->a;
    e.b = p->b;
    e.A_up = p->A_up;
    e.A_down = p->A_down;
    e.g_up = p->gamma_up;
    e.g_down = p->gamma_down;
    e.std_add = p->dw_min_std_add;
    e.std_slope = p->dw_min_std_slope;
    e.complex_noise =
        p->dw_min_std > 0.0f && (p->dw_min_std_add != 0.0f || p->dw_min_std_slope != 0.0f);
    return e;
}

/* exp_step (§4.6). Skipped when the cell's range is empty. */
static inline float run_exp(float w, int down, float scale, float lo, float hi, int n,
                            const float *xi, float sigma, const exp_par *e) {
    float R = hi - lo;
    if (!(R > 0.0f)) return w;
    for (int k = 0; k < n; ++k) {
        float z = e->two_a * w / R + e->b;
        float y =
            down ? 1.0f - e->A_down * expf(-e->g_down * z) : 1.0f - e->A_up * expf(e->g_up * z);
        y = y > 0.0f ? y : 0.0f;
        if (xi && e->complex_noise) {
            float dw = down ? -(y * scale) : y * scale;
            w = w + dw + sigma * (fabsf(dw) + e->std_add + e->std_slope * fabsf(w)) * xi[k];
        } else {
            float dw = (xi ? y * (1.0f + sigma * xi[k]) : y) * scale;
            w = down ? w - dw : w + dw;
        }
        w = clip(w, lo, hi);
    }
    return w;
}

/* pow_step (§4.5). Skipped when the cell's range is empty. The base is kept >= 0 so that a
 * weight set outside the bounds cannot produce NaN (inside the bounds it changes nothing). */
static inline float run_pow(float w, int down, float scale, float gamma, float lo, float hi, int n,
                            const float *xi, float sigma) {
    float R = hi - lo;
    if (!(R > 0.0f)) return w;
    for (int k = 0; k < n; ++k) {
        float base = down ? (w - lo) / R : (hi - w) / R;
        base = base > 0.0f ? base : 0.0f;
        float dw = scale * powf(base, gamma);
        if (xi) dw = dw * (1.0f + sigma * xi[k]);
        w = down ? w - dw : w + dw;
        w = clip(w, lo, hi);
    }
    return w;
}

/* piecewise_step step factor. Reading of aihwkit's PiecewiseStep: the n values are the
 * relative step sizes at n equally spaced weights spanning the cell's own
 * [min_bound, max_bound]; at w the position is t = (w - b_min)/(b_max - b_min)·(n-1),
 * clamped to [0, n-1]; segment s = floor(t) clamped to n-2, f = v[s] + (t-s)·(v[s+1]-v[s]).
 * One value (or an empty range) gives v[0]. */
static inline float piecewise_factor(const float *v, int nv, float w, float lo, float hi) {
    if (nv < 2) return v[0];
    float R = hi - lo;
    if (!(R > 0.0f)) return v[0];
    float t = (w - lo) / R * (float)(nv - 1);
    t = t > 0.0f ? t : 0.0f;
    t = t < (float)(nv - 1) ? t : (float)(nv - 1);
    int s = (int)t;
    if (s > nv - 2) s = nv - 2;
    float f = t - (float)s;
    return v[s] + f * (v[s + 1] - v[s]);
}

/* piecewise_step: step = scale·factor(w)·(1 + σξ), then the clip. */
static inline float run_piecewise(float w, int down, float scale, const float *v, int nv, float lo,
                                  float hi, int n, const float *xi, float sigma) {
    for (int k = 0; k < n; ++k) {
        float dw = scale * piecewise_factor(v, nv, w, lo, hi);
        if (xi) dw = dw * (1.0f + sigma * xi[k]);
        w = down ? w - dw : w + dw;
        w = clip(w, lo, hi);
    }
    return w;
}

/* One cell, any rule (xi already NULL when there is no cycle-to-cycle noise). */
static inline float run_cell(const rpu_device_state *dev, rule r, const exp_par *e, size_t c,
                             float w, int sign, int n, const float *xi) {
    const rpu_device_params *p = &dev->par;
    const int down = sign > 0;
    const float lo = dev->min_bound[c], hi = dev->max_bound[c];
    const float scale = down ? dev->dwmin_down[c] : dev->dwmin_up[c];
    switch (r) {
    case RULE_CONSTANT:
        return run_constant(w, down ? -scale : scale, lo, hi, n, xi, p->dw_min_std);
    case RULE_LINEAR:
        return run_linear(w, down, down ? dev->slope_down[c] : dev->slope_up[c], scale, lo, hi, n,
                          xi, p->dw_min_std, p->mult_noise);
    case RULE_EXP:
        return run_exp(w, down, scale, lo, hi, n, xi, p->dw_min_std, e);
    case RULE_POW:
        return run_pow(w, down, scale, down ? dev->gamma_down[c] : dev->gamma_up[c], lo, hi, n, xi,
                       p->dw_min_std);
    case RULE_SBREF:
        return run_sbref(w, down, scale, dev->reference[c], lo, hi, n, xi, p->dw_min_std,
                         p->mult_noise);
    case RULE_PIECEWISE:
        return run_piecewise(w, down, scale, down ? p->piecewise_down : p->piecewise_up,
                             down ? p->n_piecewise_down : p->n_piecewise_up, lo, hi, n, xi,
                             p->dw_min_std);
    case RULE_NONE:
        break;
    }
    return w;
}

void rpu_device_pulses(const rpu_device_state *dev, size_t c, float *w, int sign, int n,
                       const float *xi) {
    if (!dev || !dev->pulsed || !w || n <= 0) return;
    rule r = rule_of(dev->par.type);
    exp_par e = exp_par_of(&dev->par);
    if (rpu_device_normals_per_pulse(dev) == 0) xi = NULL;
    *w = run_cell(dev, r, &e, c, *w, sign, n, xi);
}

/* Merged pulses of constant_step (device_impl.h). The normals of the source lie in
 * |xi| <= sqrt(-2 ln 2^-24) = 5.77 (Box-Muller on 24-bit uniforms, rng.c), bounded here by
 * MERGE_Z = 6: one pulse moves the weight by step (1 + sigma xi), between
 * step min(0, 1 - sigma Z) and step (1 + sigma Z), so after any m <= n pulses the weight
 * lies in w + n |step| [-max(0, sigma Z - 1), 1 + sigma Z] (in the direction of the step).
 * When that interval lies inside [lo, hi] no pulse is clipped on any path, the n pulses
 * add up to w + step (n + sigma sum xi) with sum xi ~ N(0, n), which is distributed as
 * w + step (n + sigma sqrt(n) xi) with one normal xi. */
#define MERGE_Z RPU_MERGE_Z

static inline int merge_ok(float w, float s, int down, float lo, float hi, float n, float sigma) {
    const float z = sigma * MERGE_Z;
    const float ns = n * s;
    const float fwd = ns * (1.0f + z);
    const float back = ns * (z > 1.0f ? z - 1.0f : 0.0f);
    const float mn = down ? w - fwd : w - back;
    const float mx = down ? w + back : w + fwd;
    return mn >= lo && mx <= hi;
}

int rpu_device_merges_pulses(const rpu_device_state *dev) {
    return dev && dev->pulsed && rule_of(dev->par.type) == RULE_CONSTANT;
}

int rpu_device_merge_ok(const rpu_device_state *dev, size_t c, float w, int sign, int n) {
    if (!rpu_device_merges_pulses(dev) || n < 2) return 0;
    const int down = sign > 0;
    const float s = down ? dev->dwmin_down[c] : dev->dwmin_up[c];
    return merge_ok(w, s, down, dev->min_bound[c], dev->max_bound[c], (float)n,
                    dev->par.dw_min_std);
}

void rpu_device_pulses_merged(const rpu_device_state *dev, size_t c, float *w, int sign, int n,
                              const float *xi) {
    if (!rpu_device_merges_pulses(dev) || !w || n <= 0) return;
    const float step = sign > 0 ? -dev->dwmin_down[c] : dev->dwmin_up[c];
    const float nf = (float)n, sigma = dev->par.dw_min_std;
    const float y = rpu_device_normals_per_pulse(dev) && xi
                        ? *w + step * (nf + (sigma * sqrtf(nf)) * xi[0])
                        : *w + step * nf;
    *w = clip(y, dev->min_bound[c], dev->max_bound[c]);
}

int rpu_device_span_ok(const rpu_device_state *dev, size_t c, float w, int n_up, int n_down) {
    if (!rpu_device_merges_pulses(dev) || n_up + n_down < 1) return 0;
    return rpu_span_ok(w, dev->dwmin_up[c], dev->dwmin_down[c], dev->min_bound[c],
                       dev->max_bound[c], (float)n_up, (float)n_down, dev->par.dw_min_std);
}

void rpu_device_pulses_span(const rpu_device_state *dev, size_t c, float *w, int n_up, int n_down,
                            const float *xi) {
    if (!rpu_device_merges_pulses(dev) || !w || n_up + n_down < 1) return;
    *w = rpu_span_step(*w, dev->dwmin_up[c], dev->dwmin_down[c], dev->min_bound[c],
                       dev->max_bound[c], (float)n_up, (float)n_down, dev->par.dw_min_std,
                       rpu_device_normals_per_pulse(dev) ? xi : NULL);
}

/* Row kernels of constant_step and linear_step/soft_bounds. Pass k applies the k-th pulse
 * to every cell with count > k; the cycle-to-cycle normals of the row are consumed pass by
 * pass in column order (the contract of rpu_device_pulse_row), so a pass takes the next
 * run of normals for its active cells: with AVX-512 an expand-load puts them into the
 * lanes of the active cells, 16 cells at a time. Per cell the float operations are
 * exactly those of run_constant()/run_linear(), in the same order, so the results are
 * bitwise those of the reference. Built with -O3 by GCC whatever the file's level, since
 * these loops are the hot spot of training. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("O3", "fp-contract=off")
#endif

static inline unsigned max_count(const uint8_t *restrict cnt, int m) {
    uint8_t mx = 0;
    int j = 0;
#if defined(__AVX512BW__)
    if (m >= 64) {
        __m512i acc = _mm512_setzero_si512();
        for (; j + 64 <= m; j += 64)
            acc = _mm512_max_epu8(acc, _mm512_loadu_si512((const void *)(cnt + j)));
        uint8_t lanes[64];
        _mm512_storeu_si512((void *)lanes, acc);
        for (int k = 0; k < 64; ++k)
            mx = lanes[k] > mx ? lanes[k] : mx;
    }
#endif
    for (; j < m; ++j)
        mx = cnt[j] > mx ? cnt[j] : mx;
    return mx;
}

#if defined(__AVX512F__)
/* lanes j..j+15: active mask (count > k), down mask (sign > 0) */
static inline __mmask16 lanes_active(const uint8_t *cnt, unsigned k) {
    __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)cnt));
    return _mm512_cmpgt_epi32_mask(c, _mm512_set1_epi32((int)k));
}
static inline __mmask16 lanes_down(const int8_t *sign) {
    __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)sign));
    return _mm512_cmpgt_epi32_mask(v, _mm512_setzero_si512());
}
/* clip(y, lo, hi) exactly as clip(): (y > hi ? hi : y), then (y < lo ? lo : y) */
static inline __m512 clip16(__m512 y, __m512 lo, __m512 hi) {
    return _mm512_max_ps(lo, _mm512_min_ps(hi, y));
}
#endif

static void row_constant(float *restrict w, const float *restrict up, const float *restrict dn,
                         const float *restrict lo, const float *restrict hi,
                         const uint8_t *restrict cnt, const int8_t *restrict sign, int cols,
                         const float *restrict xi, float sigma) {
    const unsigned maxn = max_count(cnt, cols);
    if (!xi) {
        for (unsigned k = 0; k < maxn; ++k)
            for (int j = 0; j < cols; ++j) {
                float a = w[j];
                float step = sign[j] > 0 ? -dn[j] : up[j];
                float y = a + step;
                y = y > hi[j] ? hi[j] : y;
                y = y < lo[j] ? lo[j] : y;
                w[j] = cnt[j] > k ? y : a;
            }
        return;
    }
    const float *p = xi;
    for (unsigned k = 0; k < maxn; ++k) {
        int j = 0;
#if defined(__AVX512F__)
        const __m512 one = _mm512_set1_ps(1.0f), sg = _mm512_set1_ps(sigma);
        for (; j + 16 <= cols; j += 16) {
            __mmask16 m = lanes_active(cnt + j, k);
            if (!m) continue;
            __m512 z = _mm512_maskz_expandloadu_ps(m, p);
            p += __builtin_popcount((unsigned)m);
            __m512 step =
                _mm512_mask_blend_ps(lanes_down(sign + j), _mm512_loadu_ps(up + j),
                                     _mm512_sub_ps(_mm512_setzero_ps(), _mm512_loadu_ps(dn + j)));
            __m512 a = _mm512_loadu_ps(w + j);
            __m512 y =
                _mm512_add_ps(a, _mm512_mul_ps(step, _mm512_add_ps(one, _mm512_mul_ps(sg, z))));
            y = clip16(y, _mm512_loadu_ps(lo + j), _mm512_loadu_ps(hi + j));
            _mm512_mask_storeu_ps(w + j, m, y);
        }
#endif
        for (; j < cols; ++j) {
            if (cnt[j] <= k) continue;
            float step = sign[j] > 0 ? -dn[j] : up[j];
            w[j] = clip(w[j] + step * (1.0f + sigma * *p++), lo[j], hi[j]);
        }
    }
}

/* up: w + dw, down: w - dw (= w + (-1)·dw exactly), dw as in run_linear(). */
static void row_linear(float *restrict w, const float *restrict sl_up, const float *restrict sl_dn,
                       const float *restrict up, const float *restrict dn, const float *restrict lo,
                       const float *restrict hi, const uint8_t *restrict cnt,
                       const int8_t *restrict sign, int cols, const float *restrict xi, float sigma,
                       int mult) {
    const unsigned maxn = max_count(cnt, cols);
    if (!xi) {
        for (unsigned k = 0; k < maxn; ++k)
            for (int j = 0; j < cols; ++j) {
                const int down = sign[j] > 0;
                const float su = sl_up[j], sd = sl_dn[j], cu = up[j], cd = dn[j];
                const float slope = down ? sd : su, scale = down ? cd : cu;
                const float dir = down ? -1.0f : 1.0f;
                float a = w[j];
                float y = a + dir * (slope * a + scale);
                y = y > hi[j] ? hi[j] : y;
                y = y < lo[j] ? lo[j] : y;
                w[j] = cnt[j] > k ? y : a;
            }
        return;
    }
    const float *p = xi;
    for (unsigned k = 0; k < maxn; ++k) {
        int j = 0;
#if defined(__AVX512F__)
        const __m512 one = _mm512_set1_ps(1.0f), sg = _mm512_set1_ps(sigma);
        for (; j + 16 <= cols; j += 16) {
            __mmask16 m = lanes_active(cnt + j, k);
            if (!m) continue;
            __m512 z = _mm512_maskz_expandloadu_ps(m, p);
            p += __builtin_popcount((unsigned)m);
            __mmask16 dm = lanes_down(sign + j);
            __m512 slope =
                _mm512_mask_blend_ps(dm, _mm512_loadu_ps(sl_up + j), _mm512_loadu_ps(sl_dn + j));
            __m512 scale =
                _mm512_mask_blend_ps(dm, _mm512_loadu_ps(up + j), _mm512_loadu_ps(dn + j));
            __m512 dir = _mm512_mask_blend_ps(dm, one, _mm512_set1_ps(-1.0f));
            __m512 a = _mm512_loadu_ps(w + j);
            __m512 nz = _mm512_add_ps(one, _mm512_mul_ps(sg, z));
            __m512 dw = mult ? _mm512_mul_ps(_mm512_add_ps(_mm512_mul_ps(slope, a), scale), nz)
                             : _mm512_add_ps(_mm512_mul_ps(slope, a), _mm512_mul_ps(scale, nz));
            __m512 y = _mm512_add_ps(a, _mm512_mul_ps(dir, dw));
            y = clip16(y, _mm512_loadu_ps(lo + j), _mm512_loadu_ps(hi + j));
            _mm512_mask_storeu_ps(w + j, m, y);
        }
#endif
        for (; j < cols; ++j) {
            if (cnt[j] <= k) continue;
            const int down = sign[j] > 0;
            const float slope = down ? sl_dn[j] : sl_up[j], scale = down ? dn[j] : up[j];
            const float dir = down ? -1.0f : 1.0f;
            float a = w[j];
            float nz = 1.0f + sigma * *p++;
            float dw = mult ? (slope * a + scale) * nz : slope * a + scale * nz;
            w[j] = clip(a + dir * dw, lo[j], hi[j]);
        }
    }
}

/* soft_bounds_reference: pass k applies the k-th pulse to every cell with count > k, with
 * exactly run_sbref()'s operations (the bounds' divisions included); normals consumed pass
 * by pass in column order. */
static void row_sbref(float *restrict w, const float *restrict ref, const float *restrict up,
                      const float *restrict dn, const float *restrict lo, const float *restrict hi,
                      const uint8_t *restrict cnt, const int8_t *restrict sign, int cols,
                      const float *restrict xi, float sigma, int mult) {
    const unsigned maxn = max_count(cnt, cols);
    const float *p = xi;
    for (unsigned k = 0; k < maxn; ++k) {
        int j = 0;
#if defined(__AVX512F__)
        const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps(),
                     sg = _mm512_set1_ps(sigma);
        for (; j + 16 <= cols; j += 16) {
            __mmask16 m = lanes_active(cnt + j, k);
            if (!m) continue;
            __m512 z = zero;
            if (p) {
                z = _mm512_mul_ps(sg, _mm512_maskz_expandloadu_ps(m, p));
                p += __builtin_popcount((unsigned)m);
            }
            const __mmask16 dm = lanes_down(sign + j);
            const __m512 r = _mm512_loadu_ps(ref + j), l = _mm512_loadu_ps(lo + j),
                         h = _mm512_loadu_ps(hi + j);
            __m512 v = _mm512_add_ps(_mm512_loadu_ps(w + j), r);
            const __m512 a_dn = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(l, zero, _CMP_LT_OQ), v, l);
            const __m512 a_up = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(h, zero, _CMP_GT_OQ), v, h);
            const __m512 a = _mm512_mask_blend_ps(dm, a_up, a_dn);
            const __m512 c =
                _mm512_mask_blend_ps(dm, _mm512_loadu_ps(up + j), _mm512_loadu_ps(dn + j));
            const __m512 oma = _mm512_sub_ps(one, a);
            const __m512 t = mult ? _mm512_mul_ps(_mm512_mul_ps(c, oma), _mm512_add_ps(one, z))
                                  : _mm512_mul_ps(c, _mm512_add_ps(oma, z));
            v = _mm512_mask_blend_ps(dm, _mm512_add_ps(v, t), _mm512_sub_ps(v, t));
            v = clip16(v, l, h);
            _mm512_mask_storeu_ps(w + j, m, _mm512_sub_ps(v, r));
        }
#endif
        for (; j < cols; ++j) {
            if (cnt[j] <= k) continue;
            const float r = ref[j], l = lo[j], h = hi[j];
            float v = w[j] + r;
            const float z = p ? sigma * *p++ : 0.0f;
            if (sign[j] > 0) {
                const float a = l < 0.0f ? v / l : 0.0f;
                const float c = dn[j];
                v -= mult ? c * (1.0f - a) * (1.0f + z) : c * (1.0f - a + z);
            } else {
                const float a = h > 0.0f ? v / h : 0.0f;
                const float c = up[j];
                v += mult ? c * (1.0f - a) * (1.0f + z) : c * (1.0f - a + z);
            }
            v = clip(v, l, h);
            w[j] = v - r;
        }
    }
}

/* constant_step with merged pulses: passes[j] = 1 for a merged cell (count[j] pulses as
 * one step), count[j] otherwise. Pass k applies, to every cell with passes > k, one step
 * a + step (nf + (sigma sf) z) with nf = count, sf = sqrt(count) for a merged cell in pass
 * 0 and nf = sf = 1 otherwise (then exactly run_constant()'s a + step (1 + sigma z)).
 * Pass 0 runs over the whole row; the later passes, which only the few cells near a bound
 * take, run over a list of those cells (in column order, so the normals are consumed in
 * the same order), or over the row when there are many. */
enum { MERGE_LIST = 1024 };

static void row_constant_merged(float *restrict w, const float *restrict up,
                                const float *restrict dn, const float *restrict lo,
                                const float *restrict hi, const uint8_t *restrict cnt,
                                const uint8_t *restrict pas, const int8_t *restrict sign, int cols,
                                const float *restrict xi, float sigma) {
    const float *p = xi;
    int32_t list[MERGE_LIST + 16];
    int nl = 0, overflow = 0;
    int j = 0;
#if defined(__AVX512F__)
    const __m512 one = _mm512_set1_ps(1.0f), sg = _mm512_set1_ps(sigma);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; j + 16 <= cols; j += 16) {
        __m512i pc = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(pas + j)));
        __mmask16 m = _mm512_cmpgt_epi32_mask(pc, _mm512_setzero_si512());
        if (!m) continue;
        __mmask16 merged = _mm512_cmpeq_epi32_mask(pc, _mm512_set1_epi32(1));
        __mmask16 more = m & ~merged;
        if (more) {
            if (nl + 16 <= MERGE_LIST) {
                _mm512_mask_compressstoreu_epi32(list + nl, more,
                                                 _mm512_add_epi32(lane, _mm512_set1_epi32(j)));
                nl += __builtin_popcount((unsigned)more);
            } else {
                overflow = 1;
            }
        }
        __m512 c =
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(cnt + j))));
        __m512 nf = _mm512_mask_blend_ps(merged, one, c);
        __m512 step =
            _mm512_mask_blend_ps(lanes_down(sign + j), _mm512_loadu_ps(up + j),
                                 _mm512_sub_ps(_mm512_setzero_ps(), _mm512_loadu_ps(dn + j)));
        __m512 a = _mm512_loadu_ps(w + j);
        __m512 f = nf;
        if (xi) {
            __m512 z = _mm512_maskz_expandloadu_ps(m, p);
            p += __builtin_popcount((unsigned)m);
            f = _mm512_add_ps(nf, _mm512_mul_ps(_mm512_mul_ps(sg, _mm512_sqrt_ps(nf)), z));
        }
        __m512 y = _mm512_add_ps(a, _mm512_mul_ps(step, f));
        y = clip16(y, _mm512_loadu_ps(lo + j), _mm512_loadu_ps(hi + j));
        _mm512_mask_storeu_ps(w + j, m, y);
    }
#endif
    for (; j < cols; ++j) {
        if (pas[j] == 0) continue;
        if (pas[j] > 1) {
            if (nl < MERGE_LIST)
                list[nl++] = j;
            else
                overflow = 1;
        }
        const float nf = pas[j] == 1 ? (float)cnt[j] : 1.0f;
        const float step = sign[j] > 0 ? -dn[j] : up[j];
        const float f = xi ? nf + (sigma * sqrtf(nf)) * *p++ : nf;
        w[j] = clip(w[j] + step * f, lo[j], hi[j]);
    }
    if (nl == 0 && !overflow) return;
    /* passes 1, 2, ...: single pulses of the cells with passes > k, in column order */
    if (overflow) {
        const unsigned maxp = max_count(pas, cols);
        for (unsigned k = 1; k < maxp; ++k)
            for (int q = 0; q < cols; ++q) {
                if (pas[q] <= k) continue;
                const float step = sign[q] > 0 ? -dn[q] : up[q];
                const float f = xi ? 1.0f + sigma * *p++ : 1.0f;
                w[q] = clip(w[q] + step * f, lo[q], hi[q]);
            }
        return;
    }
#if defined(__AVX512F__)
    {
        /* the listed cells' weights, steps, bounds and passes, contiguous; lanes retire as
         * their passes run out */
        float wl[MERGE_LIST + 16], stl[MERGE_LIST + 16], lol[MERGE_LIST + 16], hil[MERGE_LIST + 16];
        int32_t pl[MERGE_LIST + 16];
        unsigned maxp = 0;
        for (int t = 0; t < nl; ++t) {
            const int q = list[t];
            wl[t] = w[q];
            stl[t] = sign[q] > 0 ? -dn[q] : up[q];
            lol[t] = lo[q];
            hil[t] = hi[q];
            pl[t] = pas[q];
            maxp = pas[q] > maxp ? pas[q] : maxp;
        }
        for (unsigned k = 1; k < maxp; ++k)
            for (int t = 0; t < nl; t += 16) {
                const __mmask16 in =
                    nl - t >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nl - t)) - 1u);
                __mmask16 m = _mm512_mask_cmpgt_epi32_mask(in, _mm512_loadu_si512(pl + t),
                                                           _mm512_set1_epi32((int)k));
                if (!m) continue;
                __m512 f = one;
                if (xi) {
                    __m512 z = _mm512_maskz_expandloadu_ps(m, p);
                    p += __builtin_popcount((unsigned)m);
                    f = _mm512_add_ps(one, _mm512_mul_ps(sg, z));
                }
                __m512 y = _mm512_add_ps(_mm512_loadu_ps(wl + t),
                                         _mm512_mul_ps(_mm512_loadu_ps(stl + t), f));
                y = clip16(y, _mm512_loadu_ps(lol + t), _mm512_loadu_ps(hil + t));
                _mm512_mask_storeu_ps(wl + t, m, y);
            }
        for (int t = 0; t < nl; ++t)
            w[list[t]] = wl[t];
    }
#else
    for (unsigned k = 1; nl > 0; ++k) {
        int keep = 0;
        for (int t = 0; t < nl; ++t) {
            const int q = list[t];
            const float step = sign[q] > 0 ? -dn[q] : up[q];
            const float f = xi ? 1.0f + sigma * *p++ : 1.0f;
            w[q] = clip(w[q] + step * f, lo[q], hi[q]);
            if (pas[q] > k + 1) list[keep++] = q;
        }
        nl = keep;
    }
#endif
}

/* passes[j] of row_constant_merged (see rpu_device_row_passes); returns their sum. */
static size_t passes_constant(const float *restrict w, const float *restrict up,
                              const float *restrict dn, const float *restrict lo,
                              const float *restrict hi, const uint8_t *restrict cnt,
                              const int8_t *restrict sign, int cols, float sigma,
                              uint8_t *restrict pas) {
    unsigned total = 0;
    int j = 0;
#if defined(__AVX512F__)
    {
        const float z = sigma * MERGE_Z;
        const __m512 f_fwd = _mm512_set1_ps(1.0f + z),
                     f_back = _mm512_set1_ps(z > 1.0f ? z - 1.0f : 0.0f);
        __m512i acc = _mm512_setzero_si512();
        for (; j + 16 <= cols; j += 16) {
            __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(cnt + j)));
            __mmask16 dm = lanes_down(sign + j);
            __m512 ns = _mm512_mul_ps(
                _mm512_cvtepi32_ps(c),
                _mm512_mask_blend_ps(dm, _mm512_loadu_ps(up + j), _mm512_loadu_ps(dn + j)));
            __m512 fwd = _mm512_mul_ps(ns, f_fwd), back = _mm512_mul_ps(ns, f_back);
            __m512 a = _mm512_loadu_ps(w + j);
            __m512 mn = _mm512_sub_ps(a, _mm512_mask_blend_ps(dm, back, fwd));
            __m512 mx = _mm512_add_ps(a, _mm512_mask_blend_ps(dm, fwd, back));
            __mmask16 ok = _mm512_cmp_ps_mask(mn, _mm512_loadu_ps(lo + j), _CMP_GE_OQ) &
                           _mm512_cmp_ps_mask(mx, _mm512_loadu_ps(hi + j), _CMP_LE_OQ) &
                           _mm512_cmpge_epi32_mask(c, _mm512_set1_epi32(2));
            __m512i q = _mm512_mask_blend_epi32(ok, c, _mm512_set1_epi32(1));
            _mm_storeu_si128((__m128i *)(pas + j), _mm512_cvtepi32_epi8(q));
            acc = _mm512_add_epi32(acc, q);
        }
        total = (unsigned)_mm512_reduce_add_epi32(acc);
    }
#endif
    for (; j < cols; ++j) {
        const int down = sign[j] > 0;
        const unsigned n = cnt[j];
        const int ok =
            n >= 2 && merge_ok(w[j], down ? dn[j] : up[j], down, lo[j], hi[j], (float)n, sigma);
        const unsigned q = ok ? 1u : n;
        pas[j] = (uint8_t)q;
        total += q;
    }
    return total;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

void rpu_device_pulse_row_range(const rpu_device_state *dev, int i, int j0, int j1, float *w_row,
                                const uint8_t *count, const int8_t *sign, const float *xi,
                                const float *wn) {
    if (!dev || !dev->pulsed || !w_row || !count || !sign || j0 < 0 || j1 > dev->cols || j0 >= j1)
        return;
    const int m = j1 - j0;
    const size_t row = (size_t)i * (size_t)dev->cols, base = row + (size_t)j0;
    float *w = (dev->persistent_weights ? dev->persistent_weights + row : w_row) + j0;
    const uint8_t *cnt = count + j0;
    const int8_t *sg = sign + j0;
    const int npp = rpu_device_normals_per_pulse(dev);
    const float *q = npp ? xi : NULL;
    const rule r = rule_of(dev->par.type);
    const rpu_device_params *p = &dev->par;

    if (r == RULE_CONSTANT) {
        row_constant(w, dev->dwmin_up + base, dev->dwmin_down + base, dev->min_bound + base,
                     dev->max_bound + base, cnt, sg, m, q, p->dw_min_std);
    } else if (r == RULE_LINEAR) {
        row_linear(w, dev->slope_up + base, dev->slope_down + base, dev->dwmin_up + base,
                   dev->dwmin_down + base, dev->min_bound + base, dev->max_bound + base, cnt, sg, m,
                   q, p->dw_min_std, p->mult_noise);
    } else if (r == RULE_SBREF) {
        row_sbref(w, dev->reference + base, dev->dwmin_up + base, dev->dwmin_down + base,
                  dev->min_bound + base, dev->max_bound + base, cnt, sg, m, q, p->dw_min_std,
                  p->mult_noise);
    } else {
        /* pass-major like the kernels above: one pulse per active cell per pass */
        exp_par e = exp_par_of(p);
        unsigned maxn = 0;
        for (int j = 0; j < m; ++j)
            maxn = cnt[j] > maxn ? cnt[j] : maxn;
        for (unsigned k = 0; k < maxn; ++k)
            for (int j = 0; j < m; ++j) {
                if (cnt[j] <= k) continue;
                w[j] = run_cell(dev, r, &e, base + (size_t)j, w[j], sg[j], 1, q);
                if (q) q += npp;
            }
    }

    if (dev->persistent_weights) {
        const float ws = p->write_noise_std * p->dw_min;
        float *vis = w_row + j0;
        if (wn) {
            for (int j = 0; j < m; ++j)
                vis[j] = cnt[j] ? w[j] + ws * wn[j] : vis[j];
        } else {
            for (int j = 0; j < m; ++j)
                vis[j] = cnt[j] ? w[j] : vis[j];
        }
    }
}

void rpu_device_pulse_row(const rpu_device_state *dev, int i, float *w_row, const uint8_t *count,
                          const int8_t *sign, const float *xi, const float *wn) {
    if (!dev) return;
    rpu_device_pulse_row_range(dev, i, 0, dev->cols, w_row, count, sign, xi, wn);
}

size_t rpu_device_row_span_ok(const rpu_device_state *dev, int i, const float *w_row,
                              const uint16_t *n_up, const uint16_t *n_down, uint8_t *merged) {
    if (!dev || !w_row || !n_up || !n_down || !merged) return 0;
    const int cols = dev->cols;
    if (!rpu_device_merges_pulses(dev)) {
        memset(merged, 0, (size_t)cols);
        return 0;
    }
    const size_t b = (size_t)i * (size_t)cols;
    const float *up = dev->dwmin_up + b, *dn = dev->dwmin_down + b;
    const float *lo = dev->min_bound + b, *hi = dev->max_bound + b;
    const float sigma = dev->par.dw_min_std;
    size_t m = 0;
    int j = 0;
#if defined(__AVX512F__)
    {
        const float z = sigma * MERGE_Z;
        const __m512 fwd = _mm512_set1_ps(1.0f + z),
                     back = _mm512_set1_ps(z > 1.0f ? z - 1.0f : 0.0f);
        for (; j + 16 <= cols; j += 16) {
            __m512i iu = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(n_up + j)));
            __m512i id = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(n_down + j)));
            __mmask16 any =
                _mm512_test_epi32_mask(_mm512_or_si512(iu, id), _mm512_or_si512(iu, id));
            __m512 a = _mm512_mul_ps(_mm512_cvtepi32_ps(iu), _mm512_loadu_ps(up + j));
            __m512 c = _mm512_mul_ps(_mm512_cvtepi32_ps(id), _mm512_loadu_ps(dn + j));
            __m512 ru = _mm512_add_ps(_mm512_mul_ps(a, fwd), _mm512_mul_ps(c, back));
            __m512 rd = _mm512_add_ps(_mm512_mul_ps(c, fwd), _mm512_mul_ps(a, back));
            __m512 w = _mm512_loadu_ps(w_row + j);
            __mmask16 ok =
                any &
                _mm512_cmp_ps_mask(_mm512_sub_ps(w, rd), _mm512_loadu_ps(lo + j), _CMP_GE_OQ) &
                _mm512_cmp_ps_mask(_mm512_add_ps(w, ru), _mm512_loadu_ps(hi + j), _CMP_LE_OQ);
            _mm_storeu_si128((__m128i *)(merged + j), _mm_maskz_set1_epi8(ok, 1));
            m += (size_t)__builtin_popcount((unsigned)ok);
        }
    }
#endif
    for (; j < cols; ++j) {
        const int any = n_up[j] + n_down[j] > 0;
        const int ok = any && rpu_span_ok(w_row[j], up[j], dn[j], lo[j], hi[j], (float)n_up[j],
                                          (float)n_down[j], sigma);
        merged[j] = (uint8_t)ok;
        m += (size_t)ok;
    }
    return m;
}

void rpu_device_row_span(const rpu_device_state *dev, int i, float *w_row, const uint16_t *n_up,
                         const uint16_t *n_down, const uint8_t *merged, const float *xi) {
    if (!rpu_device_merges_pulses(dev) || !w_row || !n_up || !n_down || !merged) return;
    const int cols = dev->cols;
    const size_t b = (size_t)i * (size_t)cols;
    const float *up = dev->dwmin_up + b, *dn = dev->dwmin_down + b;
    const float *lo = dev->min_bound + b, *hi = dev->max_bound + b;
    const float sigma = dev->par.dw_min_std;
    const float *p = rpu_device_normals_per_pulse(dev) ? xi : NULL;
    int j = 0;
#if defined(__AVX512F__)
    const __m512 sg = _mm512_set1_ps(sigma);
    for (; j + 16 <= cols; j += 16) {
        __mmask16 m = _mm_test_epi8_mask(_mm_loadu_si128((const __m128i *)(merged + j)),
                                         _mm_loadu_si128((const __m128i *)(merged + j)));
        if (!m) continue;
        __m512 fu = _mm512_cvtepi32_ps(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(n_up + j))));
        __m512 fd = _mm512_cvtepi32_ps(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(n_down + j))));
        __m512 vu = _mm512_loadu_ps(up + j), vd = _mm512_loadu_ps(dn + j);
        __m512 a = _mm512_mul_ps(fu, vu), c = _mm512_mul_ps(fd, vd);
        __m512 mean = _mm512_sub_ps(a, c);
        __m512 w = _mm512_loadu_ps(w_row + j);
        __m512 y;
        if (p) {
            __m512 zz = _mm512_maskz_expandloadu_ps(m, p);
            p += __builtin_popcount((unsigned)m);
            __m512 var = _mm512_add_ps(_mm512_mul_ps(a, vu), _mm512_mul_ps(c, vd));
            y = _mm512_add_ps(
                w, _mm512_add_ps(mean, _mm512_mul_ps(_mm512_mul_ps(sg, _mm512_sqrt_ps(var)), zz)));
        } else {
            y = _mm512_add_ps(w, mean);
        }
        y = clip16(y, _mm512_loadu_ps(lo + j), _mm512_loadu_ps(hi + j));
        _mm512_mask_storeu_ps(w_row + j, m, y);
    }
#endif
    for (; j < cols; ++j) {
        if (!merged[j]) continue;
        w_row[j] = rpu_span_step(w_row[j], up[j], dn[j], lo[j], hi[j], (float)n_up[j],
                                 (float)n_down[j], sigma, p);
        if (p) ++p;
    }
}

size_t rpu_device_row_passes_range(const rpu_device_state *dev, int i, int j0, int j1,
                                   const float *w_row, const uint8_t *count, const int8_t *sign,
                                   uint8_t *passes) {
    if (!dev || !dev->pulsed || !w_row || !count || !sign || !passes || j0 < 0 || j1 > dev->cols ||
        j0 >= j1)
        return 0;
    if (!rpu_device_merges_pulses(dev)) {
        size_t total = 0;
        for (int j = j0; j < j1; ++j)
            total += passes[j] = count[j];
        return total;
    }
    const size_t base = (size_t)i * (size_t)dev->cols + (size_t)j0;
    return passes_constant(w_row + j0, dev->dwmin_up + base, dev->dwmin_down + base,
                           dev->min_bound + base, dev->max_bound + base, count + j0, sign + j0,
                           j1 - j0, dev->par.dw_min_std, passes + j0);
}

size_t rpu_device_row_passes(const rpu_device_state *dev, int i, const float *w_row,
                             const uint8_t *count, const int8_t *sign, uint8_t *passes) {
    if (!dev) return 0;
    return rpu_device_row_passes_range(dev, i, 0, dev->cols, w_row, count, sign, passes);
}

void rpu_device_pulse_row_merged_range(const rpu_device_state *dev, int i, int j0, int j1,
                                       float *w_row, const uint8_t *count, const uint8_t *passes,
                                       const int8_t *sign, const float *xi, const float *wn) {
    if (!dev || !dev->pulsed || !w_row || !count || !passes || !sign || j0 < 0 || j1 > dev->cols ||
        j0 >= j1)
        return;
    if (!rpu_device_merges_pulses(dev)) {
        rpu_device_pulse_row_range(dev, i, j0, j1, w_row, count, sign, xi, wn);
        return;
    }
    const size_t base = (size_t)i * (size_t)dev->cols + (size_t)j0;
    row_constant_merged(w_row + j0, dev->dwmin_up + base, dev->dwmin_down + base,
                        dev->min_bound + base, dev->max_bound + base, count + j0, passes + j0,
                        sign + j0, j1 - j0, rpu_device_normals_per_pulse(dev) ? xi : NULL,
                        dev->par.dw_min_std);
}

void rpu_device_pulse_row_merged(const rpu_device_state *dev, int i, float *w_row,
                                 const uint8_t *count, const uint8_t *passes, const int8_t *sign,
                                 const float *xi, const float *wn) {
    if (!dev) return;
    rpu_device_pulse_row_merged_range(dev, i, 0, dev->cols, w_row, count, passes, sign, xi, wn);
}

/* ------------------------------------------------------------------------------------
 * Whole-array operations
 * ---------------------------------------------------------------------------------- */

static size_t n_cells(const rpu_device_state *dev) {
    return (size_t)dev->rows * (size_t)dev->cols;
}

/* Blocks of a cell-ordered range of the whole tile (per_row values per row). */
static uint64_t tile_blocks(const rpu_device_state *dev, size_t per_row) {
    const int rt = dev->rows_total > 0 ? dev->rows_total : dev->rows;
    return rpu_rng_blocks_for((size_t)rt * per_row);
}

/* Values [first, first + m) of this state's cells (m <= CHUNK) in a cell-ordered range of
 * the whole tile that starts at block blk, per_row values per row: the whole tile's values
 * row0*per_row + first, ... (a row slice draws what the whole tile draws for its rows).
 * buf has room for CHUNK + 4 values; returns where the values start in it. */
static const float *cell_values(const rpu_device_state *dev, const rpu_rng *s, uint64_t blk,
                                size_t per_row, size_t first, size_t m, float *buf, int normal) {
    return rpu_rng_values_at(s, blk, (uint64_t)dev->row0 * per_row + first, m, buf, normal);
}

/* Visible weights = persistent + write_noise_std·dw_min·ξ over all cells, normals from
 * block blk (one per cell, in cell order). Returns the blocks used. Without a stream the
 * visible weights become the persistent ones. */
static uint64_t redraw_visible(const rpu_device_state *dev, float *w, const rpu_rng *s,
                               uint64_t blk) {
    const size_t cells = n_cells(dev);
    if (!s) {
        memcpy(w, dev->persistent_weights, cells * sizeof *w);
        return 0;
    }
    const float ws = dev->par.write_noise_std * dev->par.dw_min;
    const float *p = dev->persistent_weights;
    float buf[CHUNK + 4];
    const size_t C = (size_t)dev->cols;
    for (size_t m0 = 0; m0 < cells; m0 += CHUNK) {
        size_t m = cells - m0 < CHUNK ? cells - m0 : CHUNK;
        const float *xi = cell_values(dev, s, blk, C, m0, m, buf, 1);
        for (size_t k = 0; k < m; ++k)
            w[m0 + k] = p[m0 + k] + ws * xi[k];
    }
    return tile_blocks(dev, C);
}

uint64_t rpu_device_apply_bounds(rpu_device_state *dev, float *w, const rpu_rng *s, uint64_t blk) {
    if (!dev || !w || !dev->pulsed) return 0;
    const size_t cells = n_cells(dev);
    float *t = dev->persistent_weights ? dev->persistent_weights : w;
    for (size_t c = 0; c < cells; ++c)
        t[c] = clip(w[c], dev->min_bound[c], dev->max_bound[c]);
    if (!dev->persistent_weights) return 0;
    return redraw_visible(dev, w, dev->par.apply_write_noise_on_set ? s : NULL, blk);
}

uint64_t rpu_device_diffuse(rpu_device_state *dev, float *w, const rpu_rng *s, uint64_t blk) {
    if (!dev || !w || !s || !(dev->par.diffusion > 0.0f)) return 0;
    const size_t cells = n_cells(dev);
    const size_t C = (size_t)dev->cols;
    float buf[CHUNK + 4];
    if (!dev->pulsed) {
        const float d = dev->par.diffusion;
        for (size_t m0 = 0; m0 < cells; m0 += CHUNK) {
            size_t m = cells - m0 < CHUNK ? cells - m0 : CHUNK;
            const float *xi = cell_values(dev, s, blk, C, m0, m, buf, 1);
            for (size_t k = 0; k < m; ++k)
                w[m0 + k] += d * xi[k];
        }
        return tile_blocks(dev, C);
    }
    float *t = dev->persistent_weights ? dev->persistent_weights : w;
    for (size_t m0 = 0; m0 < cells; m0 += CHUNK) {
        size_t m = cells - m0 < CHUNK ? cells - m0 : CHUNK;
        const float *xi = cell_values(dev, s, blk, C, m0, m, buf, 1);
        for (size_t k = 0; k < m; ++k) {
            size_t c = m0 + k;
            t[c] =
                clip(t[c] + dev->diffusion_rates[c] * xi[k], dev->min_bound[c], dev->max_bound[c]);
        }
    }
    uint64_t used = tile_blocks(dev, C);
    if (dev->persistent_weights) used += redraw_visible(dev, w, s, blk + used);
    return used;
}

uint64_t rpu_device_decay(rpu_device_state *dev, float *w, float alpha, const rpu_rng *s,
                          uint64_t blk) {
    if (!dev || !w || !(dev->par.lifetime > 0.0f)) return 0;
    const size_t cells = n_cells(dev);
    if (!dev->pulsed) {
        if (!(dev->par.lifetime > 1.0f)) return 0;
        const float f = 1.0f - alpha / dev->par.lifetime;
        for (size_t c = 0; c < cells; ++c)
            w[c] *= f;
        return 0;
    }
    float *t = dev->persistent_weights ? dev->persistent_weights : w;
    const float rb = dev->par.reset;
    for (size_t c = 0; c < cells; ++c) {
        float b = dev->reset_bias ? dev->reset_bias[c] : rb;
        float f = 1.0f + alpha * (dev->decay_scales[c] - 1.0f);
        t[c] = clip((t[c] - b) * f + b, dev->min_bound[c], dev->max_bound[c]);
    }
    if (!dev->persistent_weights) return 0;
    return redraw_visible(dev, w, s, blk);
}

uint64_t rpu_device_reset_columns(rpu_device_state *dev, float *w, int start, int count, float prob,
                                  const rpu_rng *s, uint64_t blk) {
    if (!dev || !w || !s || !(prob > 0.0f)) return 0;
    const int rows = dev->rows, cols = dev->cols;
    int nsel = count < 0 || count > cols ? cols : count;
    if (nsel == 0) return 0;
    int j0 = start % cols;
    if (j0 < 0) j0 += cols;
    const size_t msel = (size_t)rows * (size_t)nsel;
    const uint64_t nb = tile_blocks(dev, (size_t)nsel);
    const int use_u = prob < 1.0f;
    const uint64_t blk_u = blk + nb;
    const uint64_t blk_wn = blk + nb + (use_u ? nb : 0);
    const float std = dev->par.reset_std;
    float *t = dev->persistent_weights ? dev->persistent_weights : w;
    const float ws = dev->par.write_noise_std * dev->par.dw_min;
    float bx[CHUNK + 4], bu[CHUNK + 4], bw[CHUNK + 4];
    const float *u = NULL, *wn = NULL;
    for (size_t m0 = 0; m0 < msel; m0 += CHUNK) {
        size_t m = msel - m0 < CHUNK ? msel - m0 : CHUNK;
        const float *xi = cell_values(dev, s, blk, (size_t)nsel, m0, m, bx, 1);
        if (use_u) u = cell_values(dev, s, blk_u, (size_t)nsel, m0, m, bu, 0);
        if (dev->persistent_weights) wn = cell_values(dev, s, blk_wn, (size_t)nsel, m0, m, bw, 1);
        for (size_t k = 0; k < m; ++k) {
            if (use_u && !(u[k] < prob)) continue;
            size_t mm = m0 + k;
            int i = (int)(mm / (size_t)nsel);
            int jj = (int)(mm % (size_t)nsel) + j0;
            if (jj >= cols) jj -= cols;
            size_t c = (size_t)i * (size_t)cols + (size_t)jj;
            if (!dev->pulsed) {
                w[c] = std * xi[k];
                continue;
            }
            float b = dev->reset_bias ? dev->reset_bias[c] : dev->par.reset;
            t[c] = clip(b + std * xi[k], dev->min_bound[c], dev->max_bound[c]);
            if (dev->persistent_weights) w[c] = t[c] + ws * wn[k];
        }
    }
    return nb * (uint64_t)(1 + use_u + (dev->persistent_weights != NULL));
}

uint64_t rpu_device_drift(rpu_device_state *dev, float *w, double dt, const rpu_rng *s,
                          uint64_t blk) {
    if (!dev || !w || !dev->drift_nu) return 0;
    const rpu_drift_params *d = &dev->par.drift;
    const size_t cells = n_cells(dev);
    float *t = dev->persistent_weights ? dev->persistent_weights : w;
    const uint64_t nb = tile_blocks(dev, (size_t)dev->cols);
    const int use_nu = d->nu_std > 0.0f && s;
    const int use_wn = d->w_noise_std > 0.0f && s;
    const uint64_t blk_nu = blk;
    const uint64_t blk_wn = blk + (use_nu ? nb : 0);
    uint64_t used = nb * (uint64_t)(use_nu + use_wn);

    if (!dev->drift_started) {
        for (size_t c = 0; c < cells; ++c) {
            dev->drift_t[c] = 0.0f;
            dev->drift_w0[c] = t[c];
            dev->drift_prev[c] = t[c];
        }
        dev->drift_current_t = 0.0;
        dev->drift_started = 1;
    }
    dev->drift_current_t += dt / (double)d->t_0;
    const double now = dev->drift_current_t;
    const float a = d->g_offset * d->wg_ratio + d->w_offset;
    float bnu[CHUNK + 4], bwn[CHUNK + 4];
    const float *xnu = NULL, *xwn = NULL;
    for (size_t m0 = 0; m0 < cells; m0 += CHUNK) {
        size_t m = cells - m0 < CHUNK ? cells - m0 : CHUNK;
        if (use_nu) xnu = cell_values(dev, s, blk_nu, (size_t)dev->cols, m0, m, bnu, 1);
        if (use_wn) xwn = cell_values(dev, s, blk_wn, (size_t)dev->cols, m0, m, bwn, 1);
        for (size_t k = 0; k < m; ++k) {
            size_t c = m0 + k;
            float x = t[c];
            if (fabsf(dev->drift_prev[c] - x) > d->reset_tol) {
                /* changed since the last call: restart the drift from here */
                dev->drift_t[c] = (float)now;
                dev->drift_w0[c] = x;
            } else {
                float nu = dev->drift_nu[c];
                if (use_nu) nu += d->nu_std * d->nu * xnu[k];
                if (d->nu_k != 0.0f) {
                    /* conductance-dependent exponent; skipped where the conductance would
                     * not be positive (the log is undefined there) */
                    float g = (x - d->w_offset) / d->wg_ratio + d->g_offset;
                    if (g > 0.0f) nu += -d->nu_k * logf(g) + d->nu_k * d->log_g0;
                }
                double age = now - (double)dev->drift_t[c];
                age = age > 1.0 ? age : 1.0;
                float sc = (float)pow(age, -(double)nu);
                x = dev->drift_w0[c] * sc;
                if (a != 0.0f) x += a * (sc - 1.0f);
            }
            if (use_wn) x += d->w_noise_std * xwn[k];
            if (dev->pulsed) x = clip(x, dev->min_bound[c], dev->max_bound[c]);
            dev->drift_prev[c] = x;
            t[c] = x;
        }
    }
    if (dev->persistent_weights) used += redraw_visible(dev, w, s, blk + used);
    return used;
}
