/* Tests of the device models (spec §3.5, §4) in src/device.c.
 *
 * - update-once arithmetic of every device type without noise (and with one given normal)
 *   against values worked out by hand from the spec formulas;
 * - moments of single noisy pulses against the formulas, bounds from the sample size;
 * - pulse response without variation (constant_step, soft_bounds), spec §4 / issue 3;
 * - construction: draw order (replayed by hand), reproducibility, different streams,
 *   device-to-device statistics, consistency/corrupt/perfect-bias rules;
 * - memory: bytes per cell and which arrays exist per device type and feature;
 * - the row kernel equals the per-cell reference bit for bit for every device type, with
 *   and without cycle-to-cycle and write noise;
 * - post-update operations: decay, diffusion, reset, drift, set-weights clip/write noise;
 * - argument and configuration errors.
 *
 * Statistical checks use fixed seeds (stated at each test) and bounds of 5 standard
 * errors: for a mean, 5 sd / sqrt(N); for a variance of normal data, 5 var sqrt(2/(N-1)).
 * Every rank runs the same checks (the device module knows nothing of MPI). */
/* Some checks replay the device arithmetic exactly (draw order, write-noise redraw): no
 * fused multiply-add contraction here either, whatever the build's -std. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "device_impl.h"

#include "rpusim/config.h"
#include "rpusim/rng.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static rpu_device_params params(rpu_device_type type) {
    rpu_device_params p;
    rpu_device_params_default(&p, type);
    return p;
}

/* No device-to-device variation and no cycle-to-cycle noise. */
static void no_variation(rpu_device_params *p) {
    p->dw_min_dtod = 0;
    p->dw_min_std = 0;
    p->up_down_dtod = 0;
    p->w_max_dtod = 0;
    p->w_min_dtod = 0;
    p->gamma_up_dtod = 0;
    p->gamma_down_dtod = 0;
    p->pow_gamma_dtod = 0;
    p->pow_up_down_dtod = 0;
    p->reset_dtod = 0;
    p->lifetime_dtod = 0;
    p->diffusion_dtod = 0;
    p->drift.nu_dtod = 0;
}

/* Creates a device from the construct stream of (seed, layer 1, tile). */
static int make(rpu_device_state *d, const rpu_device_params *p, int rows, int cols, uint64_t seed,
                uint32_t tile) {
    rpu_rng r;
    rpu_rng_init(&r, seed, rpu_stream_id(1, tile, RPU_PURPOSE_CONSTRUCT));
    rpu_status s = rpu_device_create(d, p, rows, cols, &r);
    CHECK(s == RPU_OK, "create type %d %dx%d: %s", (int)p->type, rows, cols, rpu_last_error());
    return s == RPU_OK;
}

static float pulse1(const rpu_device_state *d, float w, int sign, int n, const float *xi) {
    rpu_device_pulses(d, 0, &w, sign, n, xi);
    return w;
}

#define UP (-1)
#define DOWN (+1)

static bool near(double got, double want, double tol) {
    return fabs(got - want) <= tol;
}

#define CHECK_NEAR(got, want, tol, what)                                                           \
    CHECK(near((got), (want), (tol)), "%s: got %.9g want %.9g (tol %g)", (what), (double)(got),    \
          (double)(want), (double)(tol))

typedef struct {
    double mean, var;
    long n;
} moments;

static moments moments_of(const float *x, long n) {
    double s = 0, s2 = 0;
    for (long k = 0; k < n; ++k)
        s += x[k];
    double m = s / (double)n;
    for (long k = 0; k < n; ++k)
        s2 += ((double)x[k] - m) * ((double)x[k] - m);
    moments r = {m, s2 / (double)(n - 1), n};
    return r;
}

/* mean within 5 standard errors, variance within 5 standard errors of a normal sample */
static void check_moments(const float *x, long n, double mean, double sd, const char *what) {
    moments m = moments_of(x, n);
    double tol_m = 5.0 * sd / sqrt((double)n);
    double tol_v = 5.0 * sd * sd * sqrt(2.0 / (double)(n - 1));
    CHECK(fabs(m.mean - mean) <= tol_m, "%s: mean %.9g, want %.9g +- %.3g", what, m.mean, mean,
          tol_m);
    CHECK(fabs(m.var - sd * sd) <= tol_v, "%s: var %.9g, want %.9g +- %.3g", what, m.var, sd * sd,
          tol_v);
}

/* ------------------------------------------------------------------ update-once, exact */

/* 1x1 devices with w_max 1, w_min -1, dw_min 0.125 (all values below are exact binary
 * fractions unless a tolerance says otherwise). */
static rpu_device_params exact_params(rpu_device_type type) {
    rpu_device_params p = params(type);
    no_variation(&p);
    p.w_max = 1;
    p.w_min = -1;
    p.dw_min = 0.125f;
    return p;
}

static void test_update_once_exact(void) {
    rpu_device_state d;
    const float one = 1.0f;

    /* constant_step (§4.2): w ± 0.125, clip */
    rpu_device_params p = exact_params(RPU_DEVICE_CONSTANT_STEP);
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(pulse1(&d, 0.25f, UP, 1, NULL) == 0.375f, "constant up");
        CHECK(pulse1(&d, 0.25f, DOWN, 1, NULL) == 0.125f, "constant down");
        CHECK(pulse1(&d, 0.25f, DOWN, 3, NULL) == -0.125f, "constant 3 down");
        CHECK(pulse1(&d, 0.9375f, UP, 2, NULL) == 1.0f, "constant clips at max_bound");
        CHECK(pulse1(&d, -0.9375f, DOWN, 1, NULL) == -1.0f, "constant clips at min_bound");
        CHECK(rpu_device_normals_per_pulse(&d) == 0, "no c2c normals when dw_min_std = 0");
        rpu_device_free(&d);
    }
    /* up_down 0.5: down_bias -0.5 -> scale_down 0.0625; up_down -0.5 -> scale_up 0.0625 */
    p.up_down = 0.5f;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(d.dwmin_down[0] == 0.0625f && d.dwmin_up[0] == 0.125f, "up_down 0.5 scales");
        CHECK(pulse1(&d, 0.25f, DOWN, 1, NULL) == 0.1875f, "up_down 0.5 down");
        CHECK(pulse1(&d, 0.25f, UP, 1, NULL) == 0.375f, "up_down 0.5 up");
        rpu_device_free(&d);
    }
    p.up_down = -0.5f;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(pulse1(&d, 0.25f, UP, 1, NULL) == 0.3125f, "up_down -0.5 up");
        CHECK(pulse1(&d, 0.25f, DOWN, 1, NULL) == 0.125f, "up_down -0.5 down");
        rpu_device_free(&d);
    }
    /* with noise dw_min_std 0.5 and xi = 1: step 0.125 * 1.5 = 0.1875 */
    p = exact_params(RPU_DEVICE_CONSTANT_STEP);
    p.dw_min_std = 0.5f;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(rpu_device_normals_per_pulse(&d) == 1, "one normal per pulse");
        CHECK(pulse1(&d, 0.25f, UP, 1, &one) == 0.4375f, "constant up with xi = 1");
        float xi2[2] = {1, -1}; /* 0.25 - 0.1875 - 0.0625 */
        CHECK(pulse1(&d, 0.25f, DOWN, 2, xi2) == 0.0f, "constant two noisy downs");
        rpu_device_free(&d);
    }

    /* linear_step (§4.3), gamma_up 0.5, gamma_down 0.25, mean bound reference:
     * slope_up = -0.5*0.125/1 = -0.0625, slope_down = -0.25*0.125/(-1) = 0.03125.
     * w = 0.5 up: 0.5 + (-0.03125 + 0.125) = 0.59375; down: 0.5 - (0.015625 + 0.125) */
    p = exact_params(RPU_DEVICE_LINEAR_STEP);
    p.gamma_up = 0.5f;
    p.gamma_down = 0.25f;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(d.slope_up[0] == -0.0625f && d.slope_down[0] == 0.03125f, "linear slopes %g %g",
              (double)d.slope_up[0], (double)d.slope_down[0]);
        CHECK(pulse1(&d, 0.5f, UP, 1, NULL) == 0.59375f, "linear up");
        CHECK(pulse1(&d, 0.5f, DOWN, 1, NULL) == 0.359375f, "linear down");
        rpu_device_free(&d);
    }
    /* noise 0.5, xi = 1: mult (0.09375)(1.5) = 0.140625; additive -0.03125 + 0.1875 */
    p.dw_min_std = 0.5f;
    p.mult_noise = true;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(pulse1(&d, 0.5f, UP, 1, &one) == 0.640625f, "linear mult-noise up");
        rpu_device_free(&d);
    }
    p.mult_noise = false;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(pulse1(&d, 0.5f, UP, 1, &one) == 0.65625f, "linear additive-noise up");
        rpu_device_free(&d);
    }
    /* reverse_up with the mean reference: r_up = w_min - 0.25 = -1.25,
     * slope_up = -0.5 * 0.125 / -1.25 = 0.05 */
    p = exact_params(RPU_DEVICE_LINEAR_STEP);
    p.gamma_up = 0.5f;
    p.reverse_up = true;
    p.reverse_offset = 0.25f;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK_NEAR(d.slope_up[0], 0.05, 1e-8, "reverse_up slope");
        rpu_device_free(&d);
    }

    /* soft_bounds (§4.4): up 0.125 (1 - w/1), down 0.125 (1 - w/(-1)) */
    p = exact_params(RPU_DEVICE_SOFT_BOUNDS);
    p.gamma_up = 3; /* ignored: soft bounds fix gamma to 1 */
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(d.slope_up[0] == -0.125f && d.slope_down[0] == 0.125f, "soft slopes %g %g",
              (double)d.slope_up[0], (double)d.slope_down[0]);
        CHECK(pulse1(&d, 0.5f, UP, 1, NULL) == 0.5625f, "soft up");
        CHECK(pulse1(&d, 0.5f, DOWN, 1, NULL) == 0.3125f, "soft down");
        CHECK(pulse1(&d, 1.0f, UP, 1, NULL) == 1.0f, "soft up at max is 0");
        CHECK(pulse1(&d, -1.0f, DOWN, 1, NULL) == -1.0f, "soft down at min is 0");
        CHECK(d.granularity == 0.125f, "soft granularity dw_min");
        rpu_device_free(&d);
    }

    /* soft_bounds_reference (§4.4), reference 0.5: the soft bounds act on v = w + 0.5.
     * up from w = 0: v = 0.5 + 0.125 (1 - 0.5) = 0.5625 -> w = 0.0625; down: v = 0.5 -
     * 0.125 (1 + 0.5) = 0.3125 -> w = -0.1875; at w = 0.5 (v = b_max) no step up; v is clipped
     * to the bounds, so w stays within [-1.5, 0.5] */
    p = exact_params(RPU_DEVICE_SOFT_BOUNDS_REFERENCE);
    CHECK(!p.mult_noise, "soft_bounds_reference default: additive noise");
    p.reference_mean = 0.5f;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(d.reference && d.reference[0] == 0.5f, "reference array %g",
              d.reference ? (double)d.reference[0] : -1.0);
        CHECK(rpu_device_array_by_name(&d, "reference") == d.reference, "array named reference");
        CHECK(!d.slope_up && !d.gamma_up, "no slope or gamma arrays");
        CHECK(pulse1(&d, 0.0f, UP, 1, NULL) == 0.0625f, "sbref up");
        CHECK(pulse1(&d, 0.0f, DOWN, 1, NULL) == -0.1875f, "sbref down");
        CHECK(pulse1(&d, 0.5f, UP, 1, NULL) == 0.5f, "sbref at b_max - ref");
        CHECK(pulse1(&d, 0.4375f, UP, 3, NULL) <= 0.5f, "sbref stays below b_max - ref");
        CHECK(pulse1(&d, -1.5f, DOWN, 1, NULL) == -1.5f, "sbref at b_min - ref");
        CHECK(d.granularity == 0.125f, "sbref granularity dw_min");
        rpu_device_free(&d);
    }
    /* noise 0.5, xi = 1, reference 0, w = 0.5 (a = 0.5): additive 0.125 (0.5 + 0.5) =
     * 0.125 -> 0.625; multiplicative 0.125 0.5 1.5 = 0.09375 -> 0.59375 */
    p = exact_params(RPU_DEVICE_SOFT_BOUNDS_REFERENCE);
    p.dw_min_std = 0.5f;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(pulse1(&d, 0.5f, UP, 1, &one) == 0.625f, "sbref additive-noise up");
        rpu_device_free(&d);
    }
    p.mult_noise = true;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(pulse1(&d, 0.5f, UP, 1, &one) == 0.59375f, "sbref mult-noise up");
        rpu_device_free(&d);
    }
    /* symmetry point: up_down 0.5 -> scale_up 0.125, scale_down 0.0625, bounds +-1:
     * sp = (0.125 - 0.0625) / (0.125 + 0.0625) = 1/3, the reference and added to the reset
     * bias; at w = 0 the up and down steps are equal (0.125 (2/3) = 0.0625 (4/3)) */
    p = exact_params(RPU_DEVICE_SOFT_BOUNDS_REFERENCE);
    p.up_down = 0.5f;
    p.subtract_symmetry_point = true;
    p.reset = 0.25f;
    p.reset_dtod = 1e-30f; /* a reset-bias array, values 0.25 */
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK_NEAR(d.reference[0], 1.0 / 3.0, 1e-7, "symmetry point as reference");
        CHECK_NEAR(d.reset_bias[0], 0.25 + 1.0 / 3.0, 1e-7, "symmetry point added to reset bias");
        const float up = pulse1(&d, 0.0f, UP, 1, NULL), dn = pulse1(&d, 0.0f, DOWN, 1, NULL);
        CHECK_NEAR(up, -dn, 1e-7, "equal steps at the symmetry point");
        CHECK_NEAR(up, 0.125 * 2.0 / 3.0, 1e-7, "step at the symmetry point");
        rpu_device_free(&d);
    }
    /* with the reference 0 and no slope variation the model is soft_bounds with additive
     * noise (what aihwkit's ReRamSBPresetDevice reduces to without a symmetry point) */
    {
        rpu_device_params ps = params(RPU_DEVICE_SOFT_BOUNDS),
                          pr = params(RPU_DEVICE_SOFT_BOUNDS_REFERENCE);
        ps.mult_noise = false;
        rpu_device_state a, b;
        if (make(&a, &ps, 4, 5, 9, 2) && make(&b, &pr, 4, 5, 9, 2)) {
            CHECK(memcmp(a.max_bound, b.max_bound, 20 * sizeof(float)) == 0 &&
                      memcmp(a.dwmin_up, b.dwmin_up, 20 * sizeof(float)) == 0,
                  "same common draws as soft_bounds");
            int bad = 0;
            for (int c = 0; c < 20; ++c)
                for (int k = -4; k <= 4; ++k) {
                    const float w = 0.1f * (float)k, xi = 0.3f * (float)k;
                    float wa = w, wb = w;
                    rpu_device_pulses(&a, (size_t)c, &wa, k % 2 ? UP : DOWN, 2, (float[]){xi, -xi});
                    rpu_device_pulses(&b, (size_t)c, &wb, k % 2 ? UP : DOWN, 2, (float[]){xi, -xi});
                    bad += !near(wa, wb, 1e-6);
                }
            CHECK(bad == 0, "soft_bounds_reference (ref 0) == soft_bounds additive: %d differ",
                  bad);
        }
        rpu_device_free(&a);
        rpu_device_free(&b);
    }

    /* soft_bounds_pmax: B = 2/(1 - e^-0.5) = 5.0829882, w_max = 4.0829882,
     * dw_min = B alpha = 0.0025414941, up_down = 1 - 2/B = 0.60653066 (> 0: down bias),
     * scale_down = (1 - 0.60653066) 0.0025414941 = 0.001; up from 0: + 0.0025414941 */
    p = params(RPU_DEVICE_SOFT_BOUNDS_PMAX);
    no_variation(&p);
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK_NEAR(d.par.w_max, 4.0829882, 1e-6, "pmax w_max");
        CHECK(d.par.w_min == -1.0f, "pmax w_min");
        CHECK_NEAR(d.par.dw_min, 0.0025414941, 1e-9, "pmax dw_min");
        CHECK_NEAR(d.par.up_down, 0.60653066, 1e-7, "pmax up_down");
        CHECK_NEAR(d.max_bound[0], 4.0829882, 1e-6, "pmax max_bound");
        CHECK_NEAR(d.dwmin_down[0], 0.001, 1e-9, "pmax dwmin_down");
        CHECK_NEAR(pulse1(&d, 0, UP, 1, NULL), 0.0025414941, 1e-9, "pmax up from 0");
        CHECK_NEAR(pulse1(&d, 0, DOWN, 1, NULL), -0.001, 1e-9, "pmax down from 0");
        rpu_device_free(&d);
    }

    /* exp_step (§4.6): a 0.5, b 0, R 2 -> z = w/2; gamma 4 ln 2: e^(gamma z) = 2 at w = 0.5.
     * up: y = 1 - 0.25*2 = 0.5 -> +0.0625; down: y = 1 - 0.5*0.5 = 0.75 -> -0.09375 */
    p = exact_params(RPU_DEVICE_EXP_STEP);
    p.a = 0.5f;
    p.b = 0.0f;
    p.A_up = 0.25f;
    p.A_down = 0.5f;
    p.gamma_up = p.gamma_down = (float)(4.0 * log(2.0));
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK_NEAR(pulse1(&d, 0.5f, UP, 1, NULL), 0.5625, 1e-6, "exp up");
        CHECK_NEAR(pulse1(&d, 0.5f, DOWN, 1, NULL), 0.40625, 1e-6, "exp down");
        rpu_device_free(&d);
    }
    p.A_up = 4.0f; /* y = max(1 - 8, 0) = 0 */
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(pulse1(&d, 0.5f, UP, 1, NULL) == 0.5f, "exp y floored at 0");
        rpu_device_free(&d);
    }
    /* noise 0.5, xi = 1: simple (0.5 * 1.5) 0.125 = 0.09375; complex with add 0.25 and
     * slope 0.5: 0.5 + 0.0625 + 0.5 (0.0625 + 0.25 + 0.25) = 0.84375 */
    p.A_up = 0.25f;
    p.dw_min_std = 0.5f;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK_NEAR(pulse1(&d, 0.5f, UP, 1, &one), 0.59375, 1e-6, "exp simple noise");
        rpu_device_free(&d);
    }
    p.dw_min_std_add = 0.25f;
    p.dw_min_std_slope = 0.5f;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK_NEAR(pulse1(&d, 0.5f, UP, 1, &one), 0.84375, 1e-6, "exp complex noise");
        /* w = -0.5: z = -0.25, y = 1 - 0.25*0.5 = 0.875, dw = 0.109375;
         * -0.5 + 0.109375 + 0.5 (0.109375 + 0.25 + 0.5 |-0.5|) = -0.0859375 */
        CHECK_NEAR(pulse1(&d, -0.5f, UP, 1, &one), -0.0859375, 1e-6, "exp complex noise, w < 0");
        rpu_device_free(&d);
    }
    /* empty range: skipped (no step and no clip; w set outside the bounds stays) */
    p = exact_params(RPU_DEVICE_EXP_STEP);
    p.w_max = p.w_min = 0;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(pulse1(&d, 0.5f, UP, 3, NULL) == 0.5f, "exp skip when b_max - b_min <= 0");
        rpu_device_free(&d);
    }
    /* granularity at w = 0, defaults: 0.001 (1 - 0.36833 e^(-12.78785 * 0.2425)) */
    p = params(RPU_DEVICE_EXP_STEP);
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK_NEAR(d.granularity, 0.00098342450, 1e-10, "exp granularity");
        rpu_device_free(&d);
    }

    /* pow_step (§4.5), gamma 2, R 2: up at 0.5: 0.125 (0.25)^2; down: 0.125 (0.75)^2 */
    p = exact_params(RPU_DEVICE_POW_STEP);
    p.pow_gamma = 2;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(d.gamma_up[0] == 2.0f && d.gamma_down[0] == 2.0f, "pow gammas");
        CHECK_NEAR(pulse1(&d, 0.5f, UP, 1, NULL), 0.5078125, 1e-7, "pow up");
        CHECK_NEAR(pulse1(&d, 0.5f, DOWN, 1, NULL), 0.4296875, 1e-7, "pow down");
        CHECK(d.granularity == 0.125f * 0.25f, "pow granularity dw_min 0.5^gamma");
        rpu_device_free(&d);
    }
    p.pow_up_down = 0.5f; /* down gamma (1 - 0.5) 2 = 1: down step 0.125 * 0.75 */
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(d.gamma_up[0] == 2.0f && d.gamma_down[0] == 1.0f, "pow_up_down gammas");
        CHECK_NEAR(pulse1(&d, 0.5f, DOWN, 1, NULL), 0.40625, 1e-7, "pow down gamma 1");
        rpu_device_free(&d);
    }
    p = exact_params(RPU_DEVICE_POW_STEP);
    p.w_max = p.w_min = 0;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(pulse1(&d, 0.5f, DOWN, 2, NULL) == 0.5f, "pow skip when R = 0");
        rpu_device_free(&d);
    }

    /* piecewise_step, up [1, 2, 4], down [4, 2, 1] over [-1, 1]: t = (w + 1)/2 * 2 */
    p = exact_params(RPU_DEVICE_PIECEWISE_STEP);
    p.n_piecewise_up = p.n_piecewise_down = 3;
    p.piecewise_up[0] = 1, p.piecewise_up[1] = 2, p.piecewise_up[2] = 4;
    p.piecewise_down[0] = 4, p.piecewise_down[1] = 2, p.piecewise_down[2] = 1;
    if (make(&d, &p, 1, 1, 1, 0)) {
        CHECK(pulse1(&d, 0.0f, UP, 1, NULL) == 0.25f, "piecewise up at node");
        CHECK(pulse1(&d, 0.5f, UP, 1, NULL) == 0.875f, "piecewise up interpolated (3)");
        CHECK(pulse1(&d, 0.5f, DOWN, 1, NULL) == 0.3125f, "piecewise down interpolated (1.5)");
        CHECK(pulse1(&d, -1.0f, DOWN, 1, NULL) == -1.0f, "piecewise clip at min");
        CHECK_NEAR(pulse1(&d, -0.5f, UP, 1, NULL), -0.3125, 1e-7, "piecewise up first segment");
        CHECK(pulse1(&d, 0.9f, UP, 1, NULL) == 1.0f, "piecewise clip at max");
        rpu_device_free(&d);
    }

    /* floating_point / ideal: no pulsed behaviour, no arrays */
    for (int t = RPU_DEVICE_FLOATING_POINT; t <= RPU_DEVICE_IDEAL; ++t) {
        p = params((rpu_device_type)t);
        if (make(&d, &p, 2, 2, 1, 0)) {
            CHECK(!d.pulsed && d.n_arrays == 0 && d.block == NULL, "type %d has no arrays", t);
            CHECK(pulse1(&d, 0.5f, UP, 3, NULL) == 0.5f, "type %d ignores pulses", t);
            CHECK(rpu_device_normals_per_pulse(&d) == 0, "type %d draws no c2c normals", t);
            rpu_device_free(&d);
        }
    }
}

/* ------------------------------------------------------------------ moments with noise */

/* Single pulses from a fixed weight with N normals of stream (seed 20240611, TEST). The
 * step of each device at w0 follows from the formulas; bounds far away (no clipping). */
static void test_moments(void) {
    enum { N = 200000 };
    float *xi = malloc(sizeof(float) * N), *dw = malloc(sizeof(float) * N);
    if (!xi || !dw) {
        CHECK(0, "malloc");
        free(xi);
        free(dw);
        return;
    }
    rpu_rng r;
    rpu_rng_init(&r, 20240611, rpu_stream_id(3, 0, RPU_PURPOSE_TEST));
    rpu_rng_normal_fill(&r, xi, N);
    const double s = 0.3;

    struct {
        rpu_device_type type;
        int mult;
        float w0;
        int sign;
        double mean, sd;
        const char *what;
    } cases[] = {
        /* constant: 0.001 (1 + 0.3 xi) */
        {RPU_DEVICE_CONSTANT_STEP, 1, 0.0f, UP, 0.001, 0.0003, "constant up"},
        {RPU_DEVICE_CONSTANT_STEP, 1, 0.2f, DOWN, -0.001, 0.0003, "constant down"},
        /* linear gamma_up 0.5 (mean ref 0.6) at 0.3: 0.001 (1 - 0.5*0.3/0.6) = 0.00075 */
        {RPU_DEVICE_LINEAR_STEP, 1, 0.3f, UP, 0.00075, 0.00075 * s, "linear mult"},
        {RPU_DEVICE_LINEAR_STEP, 0, 0.3f, UP, 0.00075, 0.001 * s, "linear additive"},
        /* soft bounds down at 0.3: 0.001 (1 + 0.3/0.6) */
        {RPU_DEVICE_SOFT_BOUNDS, 1, 0.3f, DOWN, -0.0015, 0.0015 * s, "soft down"},
        /* pow gamma 1 at 0: 0.001 * (0.6/1.2) */
        {RPU_DEVICE_POW_STEP, 1, 0.0f, UP, 0.0005, 0.0005 * s, "pow up"},
        /* piecewise [1, 3] at 0: factor 2 */
        {RPU_DEVICE_PIECEWISE_STEP, 1, 0.0f, UP, 0.002, 0.002 * s, "piecewise up"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
        rpu_device_params p = params(cases[k].type);
        no_variation(&p);
        p.dw_min_std = (float)s;
        p.mult_noise = cases[k].mult;
        p.gamma_up = cases[k].type == RPU_DEVICE_LINEAR_STEP ? 0.5f : p.gamma_up;
        p.n_piecewise_up = p.n_piecewise_down = 2;
        p.piecewise_up[0] = p.piecewise_down[0] = 1;
        p.piecewise_up[1] = p.piecewise_down[1] = 3;
        rpu_device_state d;
        if (!make(&d, &p, 1, 1, 5, 0)) continue;
        for (long m = 0; m < N; ++m)
            dw[m] = pulse1(&d, cases[k].w0, cases[k].sign, 1, &xi[m]) - cases[k].w0;
        check_moments(dw, N, cases[k].mean, cases[k].sd, cases[k].what);
        rpu_device_free(&d);
    }

    /* exp_step complex noise at w0 = 0.2: z = 2 a w/1.2 + b, dw = y 0.001,
     * sd = 0.3 (|dw| + 0.0002 + 0.001 |w0|) */
    rpu_device_params p = params(RPU_DEVICE_EXP_STEP);
    no_variation(&p);
    p.dw_min_std = (float)s;
    p.dw_min_std_add = 0.0002f;
    p.dw_min_std_slope = 0.001f;
    rpu_device_state d;
    if (make(&d, &p, 1, 1, 5, 0)) {
        double z = 2.0 * 0.244 * 0.2 / 1.2 + 0.2425;
        double y = 1.0 - 0.00081 * exp(12.44625 * z);
        double mean = y * 0.001, sd = s * (mean + 0.0002 + 0.001 * 0.2);
        for (long m = 0; m < N; ++m)
            dw[m] = pulse1(&d, 0.2f, UP, 1, &xi[m]) - 0.2f;
        check_moments(dw, N, mean, sd, "exp complex noise");
        rpu_device_free(&d);
    }
    free(xi);
    free(dw);
}

/* ------------------------------------------------------------------ pulse response */

static void test_pulse_response(void) {
    /* constant_step, no variation, dw_min 0.001, one pulse per call (lr = dw_min, x = 1,
     * d = -1 is sign -1 = up). Each add rounds by at most half an ulp (2^-25 for |w| < 1)
     * and 0.001f differs from 0.001 by 4.7e-11: after k pulses |w - 0.001 k| <= k 2^-24. */
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    no_variation(&p);
    rpu_device_state d;
    if (make(&d, &p, 1, 1, 2, 0)) {
        const double ulp = ldexp(1.0, -24);
        float w = 0;
        double worst = 0;
        for (int k = 1; k <= 700; ++k) {
            w = pulse1(&d, w, UP, 1, NULL);
            if (k <= 600) {
                double e = fabs(w - 0.001 * k) - k * ulp;
                worst = e > worst ? e : worst;
            }
            if (k == 600) CHECK_NEAR(w, 0.6, 600 * ulp, "600 up pulses reach 0.6");
        }
        CHECK(worst <= 0, "constant up staircase off by %g beyond k 2^-24", worst);
        CHECK(w == 0.6f && w == d.max_bound[0], "held at w_max: %.9g", (double)w);
        for (int k = 0; k < 1000; ++k)
            w = pulse1(&d, w, DOWN, 1, NULL);
        CHECK_NEAR(w, -0.4, 1000 * ulp, "1000 down pulses from 0.6");
        rpu_device_free(&d);
    }

    /* soft_bounds: w_k = w_max (1 - (1 - dw_min/w_max)^k). The map contracts, so rounding
     * errors (<= 2^-25 per step) do not grow: |error| <= k 2^-24 is a safe bound. */
    p = params(RPU_DEVICE_SOFT_BOUNDS);
    no_variation(&p);
    if (make(&d, &p, 1, 1, 2, 0)) {
        float w = 0;
        double worst = 0;
        for (int k = 1; k <= 1000; ++k) {
            w = pulse1(&d, w, UP, 1, NULL);
            double want = 0.6 * (1.0 - pow(1.0 - 0.001 / 0.6, k));
            double e = fabs(w - want) - k * ldexp(1.0, -24);
            worst = e > worst ? e : worst;
        }
        CHECK(worst <= 0, "soft bounds response off by %g beyond k 2^-24", worst);
        CHECK_NEAR(w, 0.48683, 1e-5, "soft bounds after 1000 up pulses");
        rpu_device_free(&d);
    }
}

/* ------------------------------------------------------------------ construction */

static rpu_device_params all_features(rpu_device_type type) {
    rpu_device_params p = params(type);
    p.lifetime = 100;
    p.lifetime_dtod = 0.2f;
    p.diffusion = 0.01f;
    p.diffusion_dtod = 0.2f;
    p.reset = 0.1f;
    p.reset_dtod = 0.05f;
    p.write_noise_std = 0.5f;
    p.drift.nu = 0.1f;
    p.drift.nu_dtod = 0.2f;
    p.corrupt_devices_prob = 0.05f;
    p.gamma_up_dtod = 0.1f;
    return p;
}

static void test_construction_reproducible(void) {
    for (int t = RPU_DEVICE_CONSTANT_STEP; t <= RPU_DEVICE_PIECEWISE_STEP; ++t) {
        rpu_device_params p = all_features((rpu_device_type)t);
        rpu_device_state a, b, c, e;
        if (!make(&a, &p, 16, 24, 11, 3)) continue;
        if (!make(&b, &p, 16, 24, 11, 3)) {
            rpu_device_free(&a);
            continue;
        }
        CHECK(a.block_floats == b.block_floats &&
                  memcmp(a.block, b.block, a.block_floats * sizeof(float)) == 0,
              "type %d: same stream gives identical arrays", t);
        if (make(&c, &p, 16, 24, 11, 4)) { /* another tile */
            size_t same = 0, cells = 16 * 24;
            for (size_t k = 0; k < cells; ++k)
                same += a.max_bound[k] == c.max_bound[k] || a.dwmin_up[k] == c.dwmin_up[k];
            /* corrupt cells (prob 0.05) may share 0 steps */
            CHECK(same < cells / 5, "type %d: other tile, %zu of %zu cells equal", t, same, cells);
            rpu_device_free(&c);
        }
        if (make(&e, &p, 16, 24, 12, 3)) { /* another seed */
            CHECK(memcmp(a.max_bound, e.max_bound, 16 * 24 * sizeof(float)) != 0,
                  "type %d: other seed differs", t);
            rpu_device_free(&e);
        }
        rpu_device_free(&a);
        rpu_device_free(&b);
    }
}

/* Replays the §4.1 draw order of a 2x3 constant_step tile by hand: per element (j outer,
 * i inner) xi1 b_max, xi2 b_min, xi3 gain, xi4 r, U5, (U6 if corrupt), xi7, xi8, (xi9 if
 * lifetime > 0); then drift nu (i outer, j inner). */
static void draw_order(float lifetime) {
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    p.up_down = 0.2f;
    p.diffusion = 0.01f;
    p.diffusion_dtod = 0.3f;
    p.reset_dtod = 0.1f;
    p.lifetime = lifetime;
    p.lifetime_dtod = 0.1f;
    p.corrupt_devices_prob = 0.3f;
    p.drift.nu = 0.05f;
    p.drift.nu_dtod = 0.5f;
    rpu_device_state d;
    if (!make(&d, &p, 2, 3, 99, 7)) return;
    rpu_rng r;
    rpu_rng_init(&r, 99, rpu_stream_id(1, 7, RPU_PURPOSE_CONSTRUCT));
    int bad = 0, corrupt = 0;
    for (int j = 0; j < 3; ++j)
        for (int i = 0; i < 2; ++i) {
            int c = i * 3 + j;
            float bmax = 0.6f * (1.0f + 0.3f * rpu_rng_normal(&r));
            float bmin = -0.6f * (1.0f + 0.3f * rpu_rng_normal(&r));
            float gain = 1.0f + 0.3f * rpu_rng_normal(&r);
            float rr = 0.01f * rpu_rng_normal(&r);
            float up = fabsf((0.0f + gain + rr) * 0.001f);
            float dn = fabsf((-0.2f + gain - rr) * 0.001f);
            if (bmin > bmax) {
                float t = bmin;
                bmin = bmax;
                bmax = t;
            }
            bmax = fabsf(bmax);
            bmin = -fabsf(bmin);
            if (0.3f > rpu_rng_uniform(&r)) {
                float lo = fmaxf(bmin, -0.1f), hi = fminf(bmax, 0.1f);
                bmin = bmax = lo + (hi - lo) * rpu_rng_uniform(&r);
                up = dn = 0;
                corrupt++;
            }
            float rho = fabsf(0.01f * (1.0f + 0.3f * rpu_rng_normal(&r)));
            float rb = 0.0f + 0.1f * rpu_rng_normal(&r);
            bad += d.max_bound[c] != bmax || d.min_bound[c] != bmin || d.dwmin_up[c] != up ||
                   d.dwmin_down[c] != dn || d.diffusion_rates[c] != rho || d.reset_bias[c] != rb;
            if (lifetime > 0) { /* xi9 only with a lifetime */
                float t = lifetime * (1.0f + 0.1f * rpu_rng_normal(&r));
                bad += d.decay_scales[c] != (t > 1 ? 1.0f - 1.0f / t : 0.0f);
            }
        }
    for (int c = 0; c < 6; ++c)
        bad += d.drift_nu[c] != 0.05f + 0.5f * 0.05f * rpu_rng_normal(&r);
    CHECK(bad == 0, "lifetime %g: hand-replayed draws differ in %d cells (corrupt cells %d)",
          (double)lifetime, bad, corrupt);
    rpu_device_free(&d);
}

static void test_draw_order(void) {
    draw_order(10.0f);
    draw_order(0.0f);
}

static void stats(const float *x, size_t n, double *mean, double *sd) {
    double s = 0, s2 = 0;
    for (size_t k = 0; k < n; ++k)
        s += x[k];
    *mean = s / (double)n;
    for (size_t k = 0; k < n; ++k)
        s2 += (x[k] - *mean) * (x[k] - *mean);
    *sd = sqrt(s2 / (double)(n - 1));
}

/* mean within 5 se; sd within 5 se of an sd (sd / sqrt(2N)) */
static void check_stats(const float *x, size_t n, double mean, double sd, const char *what) {
    double m, s;
    stats(x, n, &m, &s);
    double tm = 5 * sd / sqrt((double)n), ts = 5 * sd / sqrt(2.0 * (double)n);
    CHECK(fabs(m - mean) <= tm, "%s: mean %.9g want %.9g +- %.3g", what, m, mean, tm);
    CHECK(fabs(s - sd) <= ts, "%s: sd %.9g want %.9g +- %.3g", what, s, sd, ts);
}

/* Device-to-device statistics of 256x256 tiles, construction seed 4242. */
static void test_d2d_statistics(void) {
    const int R = 256, C = 256;
    const size_t N = (size_t)R * C;
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    p.diffusion = 0.01f;
    p.diffusion_dtod = 0.2f;
    p.reset = 0.1f;
    p.reset_dtod = 0.05f;
    p.lifetime = 100;
    p.drift.nu = 0.1f;
    p.drift.nu_dtod = 0.2f;
    rpu_device_state d;
    if (make(&d, &p, R, C, 4242, 1)) {
        /* |.| of enforce_consistency moves these by < 1e-5 (P(xi < -3.3) = 4e-4) */
        check_stats(d.max_bound, N, 0.6, 0.18, "max_bound");
        check_stats(d.min_bound, N, -0.6, 0.18, "min_bound");
        check_stats(d.dwmin_up, N, 0.001, 0.001 * sqrt(0.09 + 0.0001), "dwmin_up");
        check_stats(d.dwmin_down, N, 0.001, 0.001 * sqrt(0.09 + 0.0001), "dwmin_down");
        check_stats(d.diffusion_rates, N, 0.01, 0.002, "diffusion_rates");
        check_stats(d.reset_bias, N, 0.1, 0.05, "reset_bias");
        check_stats(d.drift_nu, N, 0.1, 0.02, "drift_nu");
        int bad = 0;
        for (size_t k = 0; k < N; ++k)
            bad += d.decay_scales[k] != 1.0f - 1.0f / 100.0f || d.max_bound[k] < 0 ||
                   d.min_bound[k] > 0 || d.dwmin_up[k] < 0 || d.dwmin_down[k] < 0;
        CHECK(bad == 0, "decay scale 0.99, consistent bounds and steps (%d bad)", bad);
        rpu_device_free(&d);
    }
    /* soft_bounds_reference: reference mean 0.1, std 0.05; the slopes' extra d2d of 0.2
     * rescales the bounds: w_max / max_bound = |1 + 0.2 xi| (mean 1, std 0.2 up to the
     * 3e-7 of P(xi < -5)), with the common draws (w_max_dtod etc.) at 0 */
    p = params(RPU_DEVICE_SOFT_BOUNDS_REFERENCE);
    no_variation(&p);
    p.w_max = 1.0f;
    p.w_min = -1.0f;
    p.reference_mean = 0.1f;
    p.reference_std = 0.05f;
    p.slope_up_dtod = 0.2f;
    if (make(&d, &p, R, C, 4243, 1)) {
        check_stats(d.reference, N, 0.1, 0.05, "reference");
        float *ratio = malloc(N * sizeof(float));
        for (size_t k = 0; k < N; ++k)
            ratio[k] = 1.0f / d.max_bound[k];
        check_stats(ratio, N, 1.0, 0.2, "w_max / max_bound (slope_up_dtod)");
        int bad = 0;
        for (size_t k = 0; k < N; ++k)
            bad += d.min_bound[k] != -1.0f;
        CHECK(bad == 0, "slope_down_dtod 0 leaves min_bound (%d changed)", bad);
        free(ratio);
        rpu_device_free(&d);
    }
    /* log-normal gain: mean e^(0.045), var (e^0.09 - 1) e^0.09 (+ up_down_dtod^2) */
    p = params(RPU_DEVICE_CONSTANT_STEP);
    p.dw_min_dtod_log_normal = true;
    if (make(&d, &p, R, C, 4242, 2)) {
        double m = exp(0.045), v = (exp(0.09) - 1) * exp(0.09) + 0.0001;
        /* log-normal sd of the sd estimate is larger than sd/sqrt(2N); widen by 2 */
        double mean, sd;
        stats(d.dwmin_up, N, &mean, &sd);
        CHECK(fabs(mean - 0.001 * m) <= 5 * 0.001 * sqrt(v / N), "log-normal mean %g", mean);
        CHECK(fabs(sd - 0.001 * sqrt(v)) <= 10 * 0.001 * sqrt(v / (2.0 * N)), "log-normal sd %g",
              sd);
        rpu_device_free(&d);
    }
    /* corrupt devices (prob 0.1): stuck at a value in [-0.1, 0.1], zero steps */
    p = params(RPU_DEVICE_CONSTANT_STEP);
    p.corrupt_devices_prob = 0.1f;
    p.perfect_bias = true;
    if (make(&d, &p, R, C, 4242, 3)) {
        size_t nc = 0, bad = 0;
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < C - 1; ++j) {
                size_t k = (size_t)i * C + j;
                if (d.dwmin_up[k] == 0 && d.dwmin_down[k] == 0) {
                    nc++;
                    bad += d.max_bound[k] != d.min_bound[k] || fabsf(d.max_bound[k]) > 0.1f;
                }
            }
        double n = (double)R * (C - 1), frac = nc / n;
        CHECK(fabs(frac - 0.1) <= 5 * sqrt(0.09 / n), "corrupt fraction %g", frac);
        CHECK(bad == 0, "corrupt devices stuck inside [-0.1, 0.1] (%zu bad)", bad);
        bad = 0;
        for (int i = 0; i < R; ++i) {
            size_t k = (size_t)i * C + C - 1;
            bad += d.dwmin_up[k] != 0.001f || d.dwmin_down[k] != 0.001f ||
                   d.max_bound[k] != 100.0f * 0.6f || d.min_bound[k] != 100.0f * -0.6f;
        }
        CHECK(bad == 0, "perfect bias column (%zu bad)", bad);
        rpu_device_free(&d);
    }
    /* without enforce_consistency crossed bounds collapse to their midpoint */
    p = params(RPU_DEVICE_CONSTANT_STEP);
    p.enforce_consistency = false;
    p.w_max_dtod = 2;
    p.w_min_dtod = 2;
    if (make(&d, &p, 64, 64, 4242, 4)) {
        size_t crossed = 0, mid = 0;
        for (size_t k = 0; k < 64 * 64; ++k) {
            crossed += d.min_bound[k] > d.max_bound[k];
            mid += d.min_bound[k] == d.max_bound[k];
        }
        CHECK(crossed == 0 && mid > 100, "midpoint rule: %zu crossed, %zu collapsed", crossed, mid);
        rpu_device_free(&d);
    }
    /* pow gammas: gain 1 + 0.1 xi -> mean pow_gamma, sd 0.1 pow_gamma; linear gammas
     * g = 0.5 + 0.05 xi: slope_up = -g dwmin_up / w_max with the mean reference */
    p = params(RPU_DEVICE_POW_STEP);
    p.pow_gamma = 2;
    if (make(&d, &p, R, C, 4242, 5)) {
        check_stats(d.gamma_up, N, 2, 0.2, "gamma_up");
        check_stats(d.gamma_down, N, 2, 0.2, "gamma_down");
        rpu_device_free(&d);
    }
    p = params(RPU_DEVICE_LINEAR_STEP);
    p.gamma_up = 0.5f;
    p.dw_min_dtod = 0;
    p.up_down_dtod = 0;
    if (make(&d, &p, R, C, 4242, 6)) {
        float *g = malloc(sizeof(float) * N);
        if (g) {
            for (size_t k = 0; k < N; ++k)
                g[k] = -d.slope_up[k] * 0.6f / d.dwmin_up[k];
            check_stats(g, N, 0.5, 0.05, "linear gamma_up from slopes");
            free(g);
        }
        rpu_device_free(&d);
    }
}

/* ------------------------------------------------------------------ memory */

static void test_memory(void) {
    const double want[] = {0, 0, 16, 24, 24, 24, 16, 24, 16};
    const char *names[] = {"max_bound", "min_bound", "dwmin_up", "dwmin_down"};
    for (int t = RPU_DEVICE_FLOATING_POINT; t <= RPU_DEVICE_PIECEWISE_STEP; ++t) {
        rpu_device_params p = params((rpu_device_type)t);
        rpu_device_state d;
        if (!make(&d, &p, 8, 12, 1, 0)) continue;
        CHECK(rpu_device_bytes_per_cell(&d) == want[t], "type %d: %g bytes per cell, want %g", t,
              rpu_device_bytes_per_cell(&d), want[t]);
        CHECK(d.block_floats == (size_t)d.n_arrays * 96, "type %d: block = arrays x cells", t);
        const char *off[] = {"decay_scales",       "diffusion_rates", "reset_bias",
                             "persistent_weights", "drift_nu",        "drift_w0"};
        for (int k = 0; k < 6; ++k)
            CHECK(rpu_device_array_by_name(&d, off[k]) == NULL, "type %d: no %s by default", t,
                  off[k]);
        if (d.pulsed)
            for (int k = 0; k < 4; ++k)
                CHECK(rpu_device_array_by_name(&d, names[k]) != NULL, "type %d has %s", t,
                      names[k]);
        int linear = t == RPU_DEVICE_LINEAR_STEP || t == RPU_DEVICE_SOFT_BOUNDS ||
                     t == RPU_DEVICE_SOFT_BOUNDS_PMAX;
        CHECK((rpu_device_array_by_name(&d, "slope_up") != NULL) == linear, "type %d slopes", t);
        CHECK((rpu_device_array_by_name(&d, "gamma_up") != NULL) == (t == RPU_DEVICE_POW_STEP),
              "type %d gammas", t);
        rpu_device_free(&d);
    }
    /* the figure: constant_step 16 bytes of device state + 4 of weight = 20 */
    struct {
        rpu_device_type type;
        const char *feature;
        double bytes;
        const char *array;
    } f[] = {
        {RPU_DEVICE_CONSTANT_STEP, "lifetime", 20, "decay_scales"},
        {RPU_DEVICE_CONSTANT_STEP, "diffusion", 20, "diffusion_rates"},
        {RPU_DEVICE_CONSTANT_STEP, "reset_dtod", 20, "reset_bias"},
        {RPU_DEVICE_CONSTANT_STEP, "write_noise", 16, NULL}, /* no write noise on constant */
        {RPU_DEVICE_LINEAR_STEP, "write_noise", 28, "persistent_weights"},
        {RPU_DEVICE_EXP_STEP, "write_noise", 20, "persistent_weights"},
        {RPU_DEVICE_CONSTANT_STEP, "drift", 32, "drift_prev"},
        {RPU_DEVICE_IDEAL, "drift", 16, "drift_nu"},
        {RPU_DEVICE_IDEAL, "lifetime", 0, NULL},
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; ++k) {
        rpu_device_params p = params(f[k].type);
        if (!strcmp(f[k].feature, "lifetime")) p.lifetime = 10;
        if (!strcmp(f[k].feature, "diffusion")) p.diffusion = 0.01f;
        if (!strcmp(f[k].feature, "reset_dtod")) p.reset_dtod = 0.01f;
        if (!strcmp(f[k].feature, "write_noise")) p.write_noise_std = 1;
        if (!strcmp(f[k].feature, "drift")) p.drift.nu = 0.1f;
        rpu_device_state d;
        if (!make(&d, &p, 8, 12, 1, 0)) continue;
        CHECK(rpu_device_bytes_per_cell(&d) == f[k].bytes, "type %d + %s: %g bytes, want %g",
              (int)f[k].type, f[k].feature, rpu_device_bytes_per_cell(&d), f[k].bytes);
        if (f[k].array)
            CHECK(rpu_device_array_by_name(&d, f[k].array) != NULL, "type %d + %s has %s",
                  (int)f[k].type, f[k].feature, f[k].array);
        for (int a = 0; a < d.n_arrays; ++a) {
            const float *lo = d.block, *hi = d.block + d.block_floats;
            CHECK(d.arrays[a].data >= lo && d.arrays[a].data + 96 <= hi,
                  "array %s inside the block", d.arrays[a].name);
        }
        rpu_device_free(&d);
    }
}

/* ------------------------------------------------------------------ row kernel */

/* The row kernel against rpu_device_pulses cell by cell, bit for bit. 7 x 300 tiles
 * (crossing the kernel's 256-cell chunks), counts 0..40 with half zeros and a few 200s,
 * random signs, weights inside the bounds and some outside; data seed 77. */
static void row_vs_reference(const rpu_device_params *p, const char *what) {
    const int R = 7, C = 300;
    const size_t N = (size_t)R * C;
    rpu_device_state a, b;
    if (!make(&a, p, R, C, 31, 2)) return;
    if (!make(&b, p, R, C, 31, 2)) {
        rpu_device_free(&a);
        return;
    }
    float *wa = malloc(sizeof(float) * N), *wb = malloc(sizeof(float) * N);
    float *u = malloc(sizeof(float) * N * 3);
    uint8_t *cnt = malloc(N);
    int8_t *sg = malloc(N);
    float *xi = malloc(sizeof(float) * (N * 255 + 1));
    float *wn = malloc(sizeof(float) * C);
    if (!wa || !wb || !u || !cnt || !sg || !xi || !wn) {
        CHECK(0, "malloc");
        goto out;
    }
    tl_fill_uniform(u, (int)(N * 3), 0, 1, 77, 1);
    for (size_t k = 0; k < N; ++k) {
        float lo = a.min_bound[k], hi = a.max_bound[k];
        wa[k] = lo + (hi - lo) * u[k];
        if (k % 37 == 0) wa[k] = hi + 0.1f; /* outside: untouched unless pulsed */
        cnt[k] = u[N + k] < 0.5f ? 0 : (uint8_t)(u[N + k] * 80 - 40);
        if (k % 101 == 0) cnt[k] = 200;
        sg[k] = u[2 * N + k] < 0.5f ? 1 : -1;
    }
    memcpy(wb, wa, sizeof(float) * N);
    /* persistent weights (write noise) set identically on both */
    if (a.persistent_weights) {
        rpu_rng s;
        rpu_rng_init(&s, 77, rpu_stream_id(9, 0, RPU_PURPOSE_TEST));
        rpu_device_apply_bounds(&a, wa, &s, 0);
        rpu_device_apply_bounds(&b, wb, &s, 0);
    }
    int npp = rpu_device_normals_per_pulse(&a);
    rpu_rng s;
    rpu_rng_init(&s, 77, rpu_stream_id(9, 1, RPU_PURPOSE_TEST));
    for (int i = 0; i < R; ++i) {
        size_t total = 0;
        for (int j = 0; j < C; ++j)
            total += cnt[(size_t)i * C + j];
        rpu_rng_normal_fill(&s, xi, total * (size_t)npp + 1);
        rpu_rng_normal_fill(&s, wn, (size_t)C);
        /* kernel; xi passed even when npp = 0 (must then be ignored) */
        rpu_device_pulse_row(&a, i, wa + (size_t)i * C, cnt + (size_t)i * C, sg + (size_t)i * C, xi,
                             wn);
        /* reference: hand each cell its normals as the row kernel consumes them, pass by
         * pass (pulse k of every cell with count > k, in column order) */
        float *mine = malloc(sizeof(float) * (size_t)C * 256);
        size_t q = 0;
        for (int k = 0; k < 256 && npp; ++k)
            for (int j = 0; j < C; ++j)
                if (cnt[(size_t)i * C + j] > k) mine[(size_t)j * 256 + k] = xi[q++];
        float *t = b.persistent_weights ? b.persistent_weights : wb;
        for (int j = 0; j < C; ++j) {
            size_t c = (size_t)i * C + j;
            if (!cnt[c]) continue;
            rpu_device_pulses(&b, c, &t[c], sg[c], cnt[c], npp ? mine + (size_t)j * 256 : NULL);
            if (b.persistent_weights) wb[c] = t[c] + b.par.write_noise_std * b.par.dw_min * wn[j];
        }
        free(mine);
    }
    CHECK(memcmp(wa, wb, sizeof(float) * N) == 0, "%s: row kernel == per-cell reference", what);
    if (a.persistent_weights)
        CHECK(memcmp(a.persistent_weights, b.persistent_weights, sizeof(float) * N) == 0,
              "%s: persistent weights equal", what);
    size_t changed = 0;
    for (size_t k = 0; k < N; ++k)
        changed += cnt[k] && wa[k] != wb[k];
    CHECK(changed == 0, "%s", what);
out:
    free(wa);
    free(wb);
    free(u);
    free(cnt);
    free(sg);
    free(xi);
    free(wn);
    rpu_device_free(&a);
    rpu_device_free(&b);
}

static void test_row_kernel(void) {
    char what[128];
    for (int t = RPU_DEVICE_CONSTANT_STEP; t <= RPU_DEVICE_PIECEWISE_STEP; ++t)
        for (int noise = 0; noise < 2; ++noise)
            for (int wnoise = 0; wnoise < 2; ++wnoise)
                for (int variant = 0; variant < 2; ++variant) {
                    rpu_device_params p = params((rpu_device_type)t);
                    p.dw_min_std = noise ? 0.3f : 0.0f;
                    p.write_noise_std = wnoise ? 0.5f : 0.0f;
                    p.dw_min = 0.01f; /* reach the bounds with 200 pulses */
                    if (variant) {
                        p.mult_noise = false;      /* linear/soft: additive noise */
                        p.dw_min_std_add = 0.001f; /* exp: complex noise */
                        p.dw_min_std_slope = 0.01f;
                        p.up_down = 0.3f;
                        p.corrupt_devices_prob = 0.1f;
                    }
                    p.n_piecewise_up = p.n_piecewise_down = 4;
                    for (int k = 0; k < 4; ++k) {
                        p.piecewise_up[k] = 1.0f + 0.5f * k;
                        p.piecewise_down[k] = 2.0f - 0.3f * k;
                    }
                    snprintf(what, sizeof what, "type %d noise %d write noise %d variant %d", t,
                             noise, wnoise, variant);
                    row_vs_reference(&p, what);
                }
}

/* Merged pulses (constant_step): rpu_device_row_passes against rpu_device_merge_ok cell by
 * cell, and rpu_device_pulse_row_merged against the per-cell reference (merged cells:
 * rpu_device_pulses_merged with the normal of their pass 0; the others rpu_device_pulses
 * one pulse at a time with the normal of each pass), bit for bit. Weights over the whole
 * range [min_bound, max_bound] and a little outside, counts 0..40 and some 200, so that
 * merged and single-pulse cells mix; C = 300 (vector groups and tail) and C = 1500 with
 * every weight at a bound (more single-pulse cells than the kernel's list holds). Data
 * seed 78. Also: a device that does not merge gets passes == count and the plain row
 * kernel. */
static void merged_row_case(int C, int at_bound, float sigma, const char *what) {
    const int R = 3;
    const size_t N = (size_t)R * C;
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    p.dw_min = 0.01f;
    p.dw_min_std = sigma;
    rpu_device_state a;
    if (!make(&a, &p, R, C, 41, 3)) return;
    float *wa = malloc(sizeof(float) * N), *wb = malloc(sizeof(float) * N);
    float *u = malloc(sizeof(float) * N * 3), *xi = malloc(sizeof(float) * (N * 255 + 8));
    uint8_t *cnt = malloc(N), *pas = malloc(N);
    int8_t *sg = malloc(N);
    float *mine = malloc(sizeof(float) * (size_t)C * 256);
    tl_fill_uniform(u, (int)(N * 3), 0, 1, 78, 1);
    size_t merged = 0, single = 0;
    for (size_t k = 0; k < N; ++k) {
        float lo = a.min_bound[k], hi = a.max_bound[k];
        wa[k] = lo + (hi - lo) * (1.1f * u[k] - 0.05f);
        cnt[k] = u[N + k] < 0.3f ? 0 : (uint8_t)(u[N + k] * 57 - 17);
        if (k % 53 == 0) cnt[k] = 200;
        sg[k] = u[2 * N + k] < 0.5f ? 1 : -1;
        if (at_bound) {
            wa[k] = sg[k] > 0 ? lo : hi;
            cnt[k] = (uint8_t)(2 + k % 5);
        }
    }
    memcpy(wb, wa, sizeof(float) * N);
    rpu_rng s;
    rpu_rng_init(&s, 78, rpu_stream_id(9, 2, RPU_PURPOSE_TEST));
    int passes_ok = 1;
    for (int i = 0; i < R; ++i) {
        const size_t o = (size_t)i * C;
        size_t P = rpu_device_row_passes(&a, i, wa + o, cnt + o, sg + o, pas + o), sum = 0;
        for (int j = 0; j < C; ++j) {
            const size_t c = o + j;
            const int ok = rpu_device_merge_ok(&a, c, wa[c], sg[c], cnt[c]);
            passes_ok &= pas[c] == (ok ? 1 : cnt[c]);
            sum += pas[c];
            merged += ok;
            single += !ok && cnt[c] > 1;
        }
        passes_ok &= P == sum;
        rpu_rng_normal_fill(&s, xi, P + 1);
        rpu_device_pulse_row_merged(&a, i, wa + o, cnt + o, pas + o, sg + o, xi, NULL);
        size_t q = 0;
        for (int k = 0; k < 256 && sigma > 0; ++k)
            for (int j = 0; j < C; ++j)
                if (pas[o + j] > k) mine[(size_t)j * 256 + k] = xi[q++];
        for (int j = 0; j < C; ++j) {
            const size_t c = o + j;
            if (!cnt[c]) continue;
            const float *z = sigma > 0 ? mine + (size_t)j * 256 : NULL;
            if (pas[c] == 1 && cnt[c] > 1)
                rpu_device_pulses_merged(&a, c, &wb[c], sg[c], cnt[c], z);
            else
                rpu_device_pulses(&a, c, &wb[c], sg[c], cnt[c], z);
        }
    }
    CHECK(passes_ok, "%s: row passes == merge_ok per cell, and their sum", what);
    CHECK(memcmp(wa, wb, sizeof(float) * N) == 0, "%s: merged row kernel == per-cell reference",
          what);
    CHECK(single > (at_bound ? 1100u : 10u) && (at_bound || merged > 10),
          "%s: both kinds of cells occur (%zu merged, %zu single-pulse)", what, merged, single);
    free(wa), free(wb), free(u), free(xi), free(cnt), free(pas), free(sg), free(mine);
    rpu_device_free(&a);
}

static void test_merged_row_kernel(void) {
    merged_row_case(300, 0, 0.3f, "C 300");
    merged_row_case(300, 0, 0.0f, "C 300 without cycle-to-cycle noise");
    merged_row_case(300, 0, 2.0f, "C 300, sigma 2 (steps of either sign)");
    merged_row_case(1500, 1, 0.3f, "C 1500 at the bounds");
    /* merge_ok against the interval rule by hand: dw_min 0.01, no variation, bounds
     * +-0.6, sigma 0.3 (Z sigma = 1.8): n pulses up from w reach [w - 0.8 n s, w + 2.8 n s] */
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    no_variation(&p);
    p.dw_min = 0.01f;
    p.dw_min_std = 0.3f;
    rpu_device_state d;
    if (!make(&d, &p, 1, 1, 1, 1)) return;
    CHECK(rpu_device_merge_ok(&d, 0, 0.0f, UP, 10) && !rpu_device_merge_ok(&d, 0, 0.4f, UP, 10) &&
              rpu_device_merge_ok(&d, 0, 0.31f, UP, 10) &&
              !rpu_device_merge_ok(&d, 0, -0.55f, UP, 10) &&
              rpu_device_merge_ok(&d, 0, -0.5f, UP, 10) &&
              !rpu_device_merge_ok(&d, 0, -0.4f, DOWN, 10) &&
              !rpu_device_merge_ok(&d, 0, 0.0f, UP, 1),
          "merge_ok: 10 pulses up merge from w in [-0.52, 0.32], down from [-0.32, 0.52]; "
          "one pulse never merges");
    rpu_device_free(&d);
    /* a device that does not merge */
    p = params(RPU_DEVICE_SOFT_BOUNDS);
    if (!make(&d, &p, 1, 4, 1, 1)) return;
    float w1[4] = {0.1f, -0.2f, 0.3f, 0}, w2[4];
    memcpy(w2, w1, sizeof w1);
    const uint8_t c4[4] = {3, 0, 5, 1};
    const int8_t s4[4] = {1, -1, -1, 1};
    uint8_t p4[4];
    const float z[9] = {0.1f, -1, 0.5f, 2, -0.3f, 0.7f, 1.1f, -2, 0.2f};
    CHECK(rpu_device_row_passes(&d, 0, w1, c4, s4, p4) == 9 && !rpu_device_merges_pulses(&d) &&
              memcmp(p4, c4, 4) == 0,
          "soft_bounds: passes == counts");
    rpu_device_pulse_row_merged(&d, 0, w1, c4, p4, s4, z, NULL);
    rpu_device_pulse_row(&d, 0, w2, c4, s4, z, NULL);
    CHECK(memcmp(w1, w2, sizeof w1) == 0, "soft_bounds: merged kernel == row kernel");
    rpu_device_free(&d);
}

/* Pulses of both signs merged over a span of vectors: rpu_device_row_span_ok against
 * rpu_device_span_ok cell by cell and rpu_device_row_span against rpu_device_pulses_span
 * with one normal per merged cell in column order, bit for bit; the predicate by hand;
 * without cycle-to-cycle noise the step is exactly n_up up - n_down down; devices that do
 * not merge merge nothing. Data seed 80. */
static void test_span(void) {
    const int R = 2, C = 150;
    const size_t N = (size_t)R * C;
    for (int noise = 0; noise < 2; ++noise) {
        rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
        p.dw_min = 0.01f;
        p.dw_min_std = noise ? 0.5f : 0.0f;
        rpu_device_state a;
        if (!make(&a, &p, R, C, 42, 5)) return;
        float wa[300], wb[300], u[900], xi[300];
        uint16_t nu[300], nd[300];
        uint8_t mg[300];
        tl_fill_uniform(u, 900, 0, 1, 80, 1);
        for (size_t k = 0; k < N; ++k) {
            wa[k] = wb[k] = a.min_bound[k] + (a.max_bound[k] - a.min_bound[k]) * u[k];
            nu[k] = (uint16_t)(u[N + k] * 30);
            nd[k] = (uint16_t)(u[2 * N + k] * 30);
        }
        rpu_rng s;
        rpu_rng_init(&s, 80, rpu_stream_id(9, 4, RPU_PURPOSE_TEST));
        int ok = 1;
        size_t merged = 0;
        for (int i = 0; i < R; ++i) {
            const size_t o = (size_t)i * C;
            size_t m = rpu_device_row_span_ok(&a, i, wa + o, nu + o, nd + o, mg + o), mm = 0;
            for (int j = 0; j < C; ++j) {
                const int want = rpu_device_span_ok(&a, o + j, wa[o + j], nu[o + j], nd[o + j]);
                ok &= mg[o + j] == want;
                mm += (size_t)want;
            }
            ok &= m == mm;
            merged += m;
            rpu_rng_normal_fill(&s, xi, m + 1);
            rpu_device_row_span(&a, i, wa + o, nu + o, nd + o, mg + o, xi);
            size_t q = 0;
            for (int j = 0; j < C; ++j)
                if (mg[o + j])
                    rpu_device_pulses_span(&a, o + j, &wb[o + j], nu[o + j], nd[o + j], xi + q++);
        }
        CHECK(ok, "noise %d: row span predicate == per cell, count returned", noise);
        CHECK(memcmp(wa, wb, sizeof(float) * N) == 0, "noise %d: row span == per cell", noise);
        CHECK(merged > N / 10 && merged < N, "noise %d: %zu of %zu cells merge", noise, merged, N);
        rpu_device_free(&a);
    }
    /* by hand: no variation, dw_min 0.01, bounds +-0.6, sigma 0.3 (fwd 2.8, back 0.8):
     * 10 up and 5 down reach up 0.01 (28 + 4) = 0.32 and down 0.01 (14 + 8) = 0.22 */
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    no_variation(&p);
    p.dw_min = 0.01f;
    p.dw_min_std = 0.3f;
    rpu_device_state d;
    if (!make(&d, &p, 1, 1, 1, 1)) return;
    CHECK(rpu_device_span_ok(&d, 0, 0.27f, 10, 5) && !rpu_device_span_ok(&d, 0, 0.29f, 10, 5) &&
              rpu_device_span_ok(&d, 0, -0.37f, 10, 5) &&
              !rpu_device_span_ok(&d, 0, -0.39f, 10, 5) && !rpu_device_span_ok(&d, 0, 0, 0, 0),
          "span_ok: 10 up and 5 down merge from w in [-0.38, 0.28]; no pulses never");
    rpu_device_free(&d);
    p.dw_min_std = 0;
    if (!make(&d, &p, 1, 1, 1, 1)) return;
    float w = 0.125f;
    rpu_device_pulses_span(&d, 0, &w, 7, 3, NULL);
    CHECK(w == 0.125f + (7.0f * 0.01f - 3.0f * 0.01f), "no noise: w + 7 up - 3 down = %.9g", w);
    rpu_device_free(&d);
    p = params(RPU_DEVICE_SOFT_BOUNDS);
    if (!make(&d, &p, 1, 2, 1, 1)) return;
    const float w2[2] = {0, 0};
    const uint16_t u2[2] = {3, 0}, n2[2] = {0, 1};
    uint8_t m2[2] = {7, 7};
    CHECK(rpu_device_row_span_ok(&d, 0, w2, u2, n2, m2) == 0 && m2[0] == 0 && m2[1] == 0 &&
              !rpu_device_span_ok(&d, 0, 0, 3, 0),
          "soft_bounds does not merge");
    rpu_device_free(&d);
}

/* Row slices of a device state (rpu_device_slice_rows): every whole-array operation on the
 * slices [0, 2), [2, 7), [7, 9) of a 9 x 11 state gives, bit for bit, the whole state's
 * rows (weights, persistent weights, drift state) and the whole state's block count:
 * apply_bounds with write noise, diffusion, decay, reset_columns (wrapping, prob < 1),
 * drift with nu_std and w_noise_std. Seed 79. */
static void test_slices(void) {
    const int R = 9, C = 11, cuts[4] = {0, 2, 7, 9};
    rpu_device_params p = params(RPU_DEVICE_SOFT_BOUNDS);
    p.write_noise_std = 0.5f;
    p.diffusion = 0.01f;
    p.lifetime = 20;
    p.lifetime_dtod = 0.1f;
    p.reset_dtod = 0.05f;
    p.drift.nu = 0.1f;
    p.drift.nu_std = 0.2f;
    p.drift.w_noise_std = 0.01f;
    rpu_device_state a, sl[3];
    if (!make(&a, &p, R, C, 79, 4)) return;
    float w[99], ws[3][99];
    tl_fill_uniform(w, R * C, -0.5f, 0.5f, 79, 1);
    for (int k = 0; k < 3; ++k) {
        CHECK_OK(rpu_device_slice_rows(&a, cuts[k], cuts[k + 1], &sl[k]));
        CHECK(sl[k].row0 == cuts[k] && sl[k].rows_total == R && sl[k].rows == cuts[k + 1] - cuts[k],
              "slice %d: rows [%d, %d) of %d", k, sl[k].row0, sl[k].row0 + sl[k].rows,
              sl[k].rows_total);
        memcpy(ws[k], w + cuts[k] * C, sizeof(float) * (size_t)sl[k].rows * C);
    }
    rpu_rng s;
    rpu_rng_init(&s, 79, rpu_stream_id(9, 3, RPU_PURPOSE_TEST));
    uint64_t blk = 5, used[5], used_s[3][5];
    for (int who = -1; who < 3; ++who) {
        rpu_device_state *d = who < 0 ? &a : &sl[who];
        float *x = who < 0 ? w : ws[who];
        uint64_t *u = who < 0 ? used : used_s[who];
        u[0] = rpu_device_apply_bounds(d, x, &s, blk);
        u[1] = rpu_device_diffuse(d, x, &s, blk + 100);
        u[2] = rpu_device_decay(d, x, 0.5f, &s, blk + 200);
        u[3] = rpu_device_reset_columns(d, x, 9, 4, 0.5f, &s, blk + 300);
        u[4] = rpu_device_drift(d, x, 3.0, &s, blk + 400);
        u[4] += rpu_device_drift(d, x, 5.0, &s, blk + 500);
    }
    size_t bad = 0;
    for (int k = 0; k < 3; ++k) {
        const size_t off = (size_t)cuts[k] * C, m = (size_t)sl[k].rows * C;
        bad += memcmp(w + off, ws[k], m * sizeof(float)) != 0;
        for (int q = 0; q < a.n_arrays; ++q)
            bad += memcmp(a.arrays[q].data + off, sl[k].arrays[q].data, m * sizeof(float)) != 0;
        bad += memcmp(used, used_s[k], sizeof used) != 0;
    }
    CHECK(bad == 0, "slices == the whole state's rows, block counts equal (%zu mismatches)", bad);
    rpu_device_state bad_slice;
    CHECK_STATUS(rpu_device_slice_rows(&a, 5, 10, &bad_slice), RPU_ERR_ARG);
    for (int k = 0; k < 3; ++k)
        rpu_device_free(&sl[k]);
    rpu_device_free(&a);
}

/* ------------------------------------------------------------------ post-update ops */

static void test_decay(void) {
    /* lifetime 10, no d2d: delta = 0.9; reset bias 0.1 + 0.05 xi */
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    no_variation(&p);
    p.lifetime = 10;
    p.reset = 0.1f;
    p.reset_dtod = 0.05f;
    rpu_device_state d;
    const int R = 16, C = 16, N = R * C;
    float w[16 * 16], w0[16 * 16];
    if (make(&d, &p, R, C, 8, 0)) {
        tl_fill_uniform(w0, N, -0.5f, 0.5f, 8, 2);
        memcpy(w, w0, sizeof w);
        CHECK(rpu_device_decay(&d, w, 1.0f, NULL, 0) == 0, "decay draws nothing");
        int bad = 0;
        for (int k = 0; k < N; ++k) {
            double b = d.reset_bias[k];
            bad += !near(w[k], (w0[k] - b) * 0.9 + b, 1e-6);
        }
        CHECK(bad == 0, "decay (w - b) 0.9 + b (%d bad)", bad);
        memcpy(w, w0, sizeof w);
        rpu_device_decay(&d, w, 0.5f, NULL, 0); /* 1 + 0.5 (0.9 - 1) = 0.95 */
        bad = 0;
        for (int k = 0; k < N; ++k) {
            double b = d.reset_bias[k];
            bad += !near(w[k], (w0[k] - b) * 0.95 + b, 1e-6);
        }
        CHECK(bad == 0, "decay alpha 0.5 (%d bad)", bad);
        for (int it = 0; it < 300; ++it)
            rpu_device_decay(&d, w, 1.0f, NULL, 0);
        bad = 0;
        for (int k = 0; k < N; ++k)
            bad += !near(w[k], d.reset_bias[k], 1e-6);
        CHECK(bad == 0, "decay converges to the reset bias (%d bad)", bad);
        rpu_device_free(&d);
    }
    /* lifetime <= 1: delta = 0, one decay lands on the (scalar) reset value */
    p.lifetime = 0.5f;
    p.reset_dtod = 0;
    if (make(&d, &p, R, C, 8, 0)) {
        memcpy(w, w0, sizeof w);
        rpu_device_decay(&d, w, 1.0f, NULL, 0);
        CHECK(w[3] == 0.1f && w[200] == 0.1f, "lifetime 0.5 resets to 0.1: %g", (double)w[3]);
        rpu_device_free(&d);
    }
    /* ideal: w (1 - alpha/lifetime) if lifetime > 1; nothing at lifetime 1 */
    p = params(RPU_DEVICE_IDEAL);
    p.lifetime = 10;
    if (make(&d, &p, R, C, 8, 0)) {
        memcpy(w, w0, sizeof w);
        w[0] = 2.0f; /* no bounds */
        rpu_device_decay(&d, w, 1.0f, NULL, 0);
        CHECK(w[0] == 2.0f * (1.0f - 1.0f / 10.0f) && w[5] == w0[5] * (1.0f - 0.1f),
              "ideal decay: %g", (double)w[0]);
        rpu_device_free(&d);
    }
    p.lifetime = 1;
    if (make(&d, &p, R, C, 8, 0)) {
        memcpy(w, w0, sizeof w);
        rpu_device_decay(&d, w, 1.0f, NULL, 0);
        CHECK(memcmp(w, w0, sizeof w) == 0, "ideal lifetime 1: no decay");
        rpu_device_free(&d);
    }
}

/* Diffusion from w = 0 over 128x128 cells: std rho = 0.01 (pulsed and ideal); post stream
 * seed 9. */
static void test_diffusion(void) {
    const int R = 128, C = 128, N = R * C;
    float *w = calloc((size_t)N, sizeof(float)), *w2 = calloc((size_t)N, sizeof(float));
    if (!w || !w2) {
        CHECK(0, "calloc");
        free(w);
        free(w2);
        return;
    }
    rpu_rng s;
    rpu_rng_init(&s, 9, rpu_stream_id(1, 0, RPU_PURPOSE_POST));
    for (int t = RPU_DEVICE_IDEAL; t <= RPU_DEVICE_CONSTANT_STEP; ++t) {
        rpu_device_params p = params((rpu_device_type)t);
        no_variation(&p);
        p.diffusion = 0.01f;
        rpu_device_state d;
        if (!make(&d, &p, R, C, 8, 0)) continue;
        memset(w, 0, sizeof(float) * (size_t)N);
        uint64_t used = rpu_device_diffuse(&d, w, &s, 1000);
        CHECK(used == rpu_rng_blocks_for((size_t)N), "diffusion uses one normal per cell");
        check_moments(w, N, 0.0, 0.01, t == RPU_DEVICE_IDEAL ? "ideal diffusion" : "diffusion");
        memset(w2, 0, sizeof(float) * (size_t)N);
        rpu_device_diffuse(&d, w2, &s, 1000);
        CHECK(memcmp(w, w2, sizeof(float) * (size_t)N) == 0, "same blocks, same diffusion");
        memset(w2, 0, sizeof(float) * (size_t)N);
        rpu_device_diffuse(&d, w2, &s, 1000 + used);
        CHECK(memcmp(w, w2, sizeof(float) * (size_t)N) != 0, "next blocks differ");
        rpu_device_free(&d);
    }
    /* bounds still apply: with bounds [-0.6, 0.6] and a big rate everything stays inside */
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    p.diffusion = 5;
    rpu_device_state d;
    if (make(&d, &p, R, C, 8, 0)) {
        memset(w, 0, sizeof(float) * (size_t)N);
        rpu_device_diffuse(&d, w, &s, 0);
        int out = 0;
        for (int k = 0; k < N; ++k)
            out += w[k] > d.max_bound[k] || w[k] < d.min_bound[k];
        CHECK(out == 0, "diffusion clips (%d outside)", out);
        rpu_device_free(&d);
    }
    free(w);
    free(w2);
}

static void test_reset(void) {
    const int R = 128, C = 128, N = R * C;
    float *w = malloc(sizeof(float) * (size_t)N);
    if (!w) return;
    rpu_rng s;
    rpu_rng_init(&s, 10, rpu_stream_id(1, 0, RPU_PURPOSE_POST));
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    no_variation(&p);
    p.reset = 0.1f;
    p.reset_std = 0.01f;
    rpu_device_state d;
    if (make(&d, &p, R, C, 8, 0)) {
        for (int k = 0; k < N; ++k)
            w[k] = 0.5f;
        uint64_t used = rpu_device_reset_columns(&d, w, 0, -1, 1.0f, &s, 0);
        CHECK(used == rpu_rng_blocks_for((size_t)N), "reset all: one normal per cell");
        check_moments(w, N, 0.1, 0.01, "reset");
        rpu_device_free(&d);
    }
    /* columns 8, 9, 0 of a 10-column tile (wrapping), all rows */
    if (make(&d, &p, 4, 10, 8, 0)) {
        float v[40];
        for (int k = 0; k < 40; ++k)
            v[k] = 0.5f;
        rpu_device_reset_columns(&d, v, 8, 3, 1.0f, &s, 0);
        int bad = 0;
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 10; ++j) {
                int sel = j == 8 || j == 9 || j == 0;
                float x = v[i * 10 + j];
                bad += sel ? fabsf(x - 0.1f) > 0.06f : x != 0.5f;
            }
        CHECK(bad == 0, "wrapping column reset (%d bad)", bad);
        rpu_device_free(&d);
    }
    /* probability 0.5 */
    if (make(&d, &p, R, C, 8, 0)) {
        for (int k = 0; k < N; ++k)
            w[k] = 0.5f;
        uint64_t used = rpu_device_reset_columns(&d, w, 0, -1, 0.5f, &s, 0);
        CHECK(used == 2 * rpu_rng_blocks_for((size_t)N), "normals then uniforms");
        int n = 0;
        for (int k = 0; k < N; ++k)
            n += w[k] != 0.5f;
        double frac = (double)n / N;
        CHECK(fabs(frac - 0.5) <= 5 * sqrt(0.25 / N), "reset fraction %g", frac);
        rpu_device_free(&d);
    }
    /* ideal: reset_std xi (no bias) */
    p = params(RPU_DEVICE_IDEAL);
    p.reset = 0.3f; /* ignored by ideal devices */
    if (make(&d, &p, R, C, 8, 0)) {
        rpu_device_reset_columns(&d, w, 0, -1, 1.0f, &s, 0);
        check_moments(w, N, 0.0, 0.01, "ideal reset");
        rpu_device_free(&d);
    }
    free(w);
}

static void test_drift(void) {
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    no_variation(&p);
    p.drift.nu = 0.1f;
    rpu_device_state d;
    rpu_rng s;
    rpu_rng_init(&s, 11, rpu_stream_id(1, 0, RPU_PURPOSE_PROGRAM));
    if (make(&d, &p, 1, 3, 8, 0)) {
        float w[3] = {0.5f, -0.3f, 0.0f};
        CHECK(rpu_device_drift(&d, w, 100, &s, 0) == 0, "no noise, no normals");
        CHECK_NEAR(w[0], 0.5 * pow(100, -0.1), 1e-6, "first drift call: w (dt/t0)^-nu");
        CHECK_NEAR(w[1], -0.3 * pow(100, -0.1), 1e-6, "negative weight drifts too");
        CHECK(w[2] == 0.0f, "zero stays zero");
        rpu_device_drift(&d, w, 100, &s, 0);
        CHECK_NEAR(w[0], 0.5 * pow(200, -0.1), 1e-6, "second call: w0 (t_total)^-nu");
        w[0] = 0.2f; /* programmed: the drift restarts from here at t = 250 */
        rpu_device_drift(&d, w, 50, &s, 0);
        CHECK(w[0] == 0.2f, "changed weight restarts the drift");
        CHECK_NEAR(w[1], -0.3 * pow(250, -0.1), 1e-6, "unchanged weight keeps drifting");
        rpu_device_drift(&d, w, 50, &s, 0);
        CHECK_NEAR(w[0], 0.2 * pow(50, -0.1), 1e-6, "drift since the restart");
        rpu_device_drift(&d, w, 0, &s, 0);
        CHECK_NEAR(w[0], 0.2 * pow(50, -0.1), 1e-6, "dt 0 changes nothing");
        rpu_device_free(&d);
    }
    /* t_0 = 10: dt 100 is 10 units; dt below t_0 gives max(t, 1) = 1: no change */
    p.drift.t_0 = 10;
    if (make(&d, &p, 1, 1, 8, 0)) {
        float w = 0.5f;
        rpu_device_drift(&d, &w, 5, &s, 0);
        CHECK(w == 0.5f, "t below t_0: unchanged");
        rpu_device_drift(&d, &w, 95, &s, 0);
        CHECK_NEAR(w, 0.5 * pow(10, -0.1), 1e-6, "t_0 = 10");
        rpu_device_free(&d);
    }
    /* offset a = g_offset wg_ratio + w_offset = 0.1: w = w0 s + a (s - 1) */
    p.drift.t_0 = 1;
    p.drift.g_offset = 0.1f;
    if (make(&d, &p, 1, 1, 8, 0)) {
        float w = 0.5f;
        rpu_device_drift(&d, &w, 100, &s, 0);
        double sc = pow(100, -0.1);
        CHECK_NEAR(w, 0.5 * sc + 0.1 * (sc - 1), 1e-6, "drift with offset");
        rpu_device_free(&d);
    }
    /* ideal device drifts without bounds; nu d2d from construction */
    p = params(RPU_DEVICE_IDEAL);
    p.drift.nu = 0.2f;
    if (make(&d, &p, 1, 1, 8, 0)) {
        float w = 3.0f;
        rpu_device_drift(&d, &w, 1000, &s, 0);
        CHECK_NEAR(w, 3.0 * pow(1000, -0.2), 1e-5, "ideal drift, no clip");
        rpu_device_free(&d);
    }
    /* clip after drift: drift with a negative nu grows the weight to the bound */
    p = params(RPU_DEVICE_CONSTANT_STEP);
    no_variation(&p);
    p.drift.nu = 0.1f;
    p.drift.w_noise_std = 0.01f;
    p.drift.nu_std = 0.1f;
    if (make(&d, &p, 64, 64, 8, 0)) {
        float *w = malloc(sizeof(float) * 64 * 64);
        if (w) {
            for (int k = 0; k < 64 * 64; ++k)
                w[k] = 0.0f;
            uint64_t used = rpu_device_drift(&d, w, 10, &s, 0);
            CHECK(used == 2 * rpu_rng_blocks_for(64 * 64), "nu_std and w_noise ranges");
            check_moments(w, 64 * 64, 0.0, 0.01, "drift w_noise_std");
            free(w);
        }
        rpu_device_free(&d);
    }
}

/* Set-weights clip and write noise (spec §4.1). */
static void test_apply_bounds(void) {
    const int R = 64, C = 64, N = R * C;
    float *w = malloc(sizeof(float) * (size_t)N);
    if (!w) return;
    rpu_rng s;
    rpu_rng_init(&s, 12, rpu_stream_id(1, 0, RPU_PURPOSE_POST));
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    rpu_device_state d;
    if (make(&d, &p, R, C, 8, 0)) {
        tl_fill_uniform(w, N, -2, 2, 12, 1);
        CHECK(rpu_device_apply_bounds(&d, w, &s, 0) == 0, "clip draws nothing");
        int bad = 0, at = 0;
        for (int k = 0; k < N; ++k) {
            bad += w[k] > d.max_bound[k] || w[k] < d.min_bound[k];
            at += w[k] == d.max_bound[k] || w[k] == d.min_bound[k];
        }
        CHECK(bad == 0 && at > N / 4, "set-weights clip (%d outside, %d at a bound)", bad, at);
        rpu_device_free(&d);
    }
    p = params(RPU_DEVICE_SOFT_BOUNDS);
    p.write_noise_std = 2; /* visible = persistent + 2 * 0.001 xi */
    if (make(&d, &p, R, C, 8, 0)) {
        tl_fill_uniform(w, N, -0.2f, 0.2f, 12, 2);
        float *w0 = malloc(sizeof(float) * (size_t)N), *dv = malloc(sizeof(float) * (size_t)N);
        if (w0 && dv) {
            memcpy(w0, w, sizeof(float) * (size_t)N);
            uint64_t used = rpu_device_apply_bounds(&d, w, &s, 0);
            CHECK(used == rpu_rng_blocks_for((size_t)N), "write noise: one normal per cell");
            int bad = 0;
            for (int k = 0; k < N; ++k) {
                float c = w0[k] > d.max_bound[k] ? d.max_bound[k] : w0[k];
                c = c < d.min_bound[k] ? d.min_bound[k] : c;
                bad += d.persistent_weights[k] != c;
                dv[k] = w[k] - d.persistent_weights[k];
            }
            CHECK(bad == 0, "persistent = clipped weights (%d bad)", bad);
            check_moments(dv, N, 0.0, 0.002, "write noise on set");
            /* pulses act on the persistent weight; visible redrawn where pulsed */
            uint8_t cnt[64] = {0};
            int8_t sg[64];
            float wn[64];
            for (int j = 0; j < 64; ++j)
                sg[j] = -1, wn[j] = 1.0f;
            cnt[5] = 3;
            float p5 = d.persistent_weights[5], v6 = w[6];
            float want = p5;
            rpu_device_pulses(&d, 5, &want, UP, 3, NULL); /* xi NULL: no c2c noise */
            rpu_device_pulse_row(&d, 0, w, cnt, sg, NULL, wn);
            CHECK(d.persistent_weights[5] == want, "pulses on the persistent weight");
            CHECK(w[5] == want + 2.0f * 0.001f * 1.0f, "visible redrawn: %g", (double)w[5]);
            CHECK(w[6] == v6, "unpulsed visible weight untouched");
            /* decay redraws every visible weight */
            rpu_device_free(&d);
            p.lifetime = 10;
            if (make(&d, &p, R, C, 8, 0)) {
                memcpy(w, w0, sizeof(float) * (size_t)N);
                rpu_device_apply_bounds(&d, w, &s, 0);
                uint64_t u2 = rpu_device_decay(&d, w, 1.0f, &s, 50000);
                CHECK(u2 == rpu_rng_blocks_for((size_t)N), "decay redraws the write noise");
                for (int k = 0; k < N; ++k)
                    dv[k] = w[k] - d.persistent_weights[k];
                check_moments(dv, N, 0.0, 0.002, "write noise after decay");
            }
        }
        free(w0);
        free(dv);
        rpu_device_free(&d);
    }
    p = params(RPU_DEVICE_LINEAR_STEP);
    p.write_noise_std = 2;
    p.apply_write_noise_on_set = false;
    if (make(&d, &p, R, C, 8, 0)) {
        tl_fill_uniform(w, N, -0.2f, 0.2f, 12, 2);
        CHECK(rpu_device_apply_bounds(&d, w, &s, 0) == 0, "no write noise on set");
        CHECK(memcmp(w, d.persistent_weights, sizeof(float) * (size_t)N) == 0,
              "visible = persistent without write noise on set");
        rpu_device_free(&d);
    }
    free(w);
}

/* ------------------------------------------------------------------ errors */

static void test_errors(void) {
    rpu_device_state d;
    rpu_rng r;
    rpu_rng_init(&r, 1, 1);
    rpu_device_params p = params(RPU_DEVICE_CONSTANT_STEP);
    CHECK_STATUS(rpu_device_create(NULL, &p, 2, 2, &r), RPU_ERR_ARG);
    CHECK_STATUS(rpu_device_create(&d, NULL, 2, 2, &r), RPU_ERR_ARG);
    CHECK_STATUS(rpu_device_create(&d, &p, 2, 2, NULL), RPU_ERR_ARG);
    CHECK_STATUS(rpu_device_create(&d, &p, 0, 2, &r), RPU_ERR_ARG);
    CHECK_STATUS(rpu_device_create(&d, &p, 2, -1, &r), RPU_ERR_ARG);
    CHECK(d.block == NULL && d.n_arrays == 0, "failed create leaves a zeroed state");
    rpu_device_free(&d);
    p.w_min = 0.1f;
    CHECK_STATUS(rpu_device_create(&d, &p, 2, 2, &r), RPU_ERR_CONFIG);
    CHECK(strstr(rpu_last_error(), "device.w_min") != NULL, "names the key: %s", rpu_last_error());
    p = params(RPU_DEVICE_PIECEWISE_STEP);
    p.n_piecewise_up = 2;
    CHECK_STATUS(rpu_device_create(&d, &p, 2, 2, &r), RPU_ERR_CONFIG);
    p = params(RPU_DEVICE_SOFT_BOUNDS_PMAX);
    p.range_max = p.range_min;
    CHECK_STATUS(rpu_device_create(&d, &p, 2, 2, &r), RPU_ERR_CONFIG);
    p = params(RPU_DEVICE_CONSTANT_STEP);
    p.type = (rpu_device_type)42;
    CHECK_STATUS(rpu_device_create(&d, &p, 2, 2, &r), RPU_ERR_CONFIG);
    rpu_device_free(&d);
    rpu_device_free(NULL);
    CHECK(rpu_device_array_by_name(NULL, "max_bound") == NULL, "NULL device");
    CHECK(rpu_device_bytes_per_cell(NULL) == 0, "NULL device bytes");
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_update_once_exact();
    test_moments();
    test_pulse_response();
    test_construction_reproducible();
    test_draw_order();
    test_d2d_statistics();
    test_memory();
    test_row_kernel();
    test_merged_row_kernel();
    test_span();
    test_slices();
    test_decay();
    test_diffusion();
    test_reset();
    test_drift();
    test_apply_bounds();
    test_errors();
    return tl_finish();
}
