/* Tests of the analog tile's forward/backward IO model (spec §2, §7).
 *
 * - hand-computed 1x1 cases (weight 1, input 10) for every bound/resolution/management
 *   combination;
 * - the batched implementation against the per-vector reference (ref_tile.c) bit for bit,
 *   over random shapes and every noise x bound management combination, with noise off
 *   and on (both draw from the same addresses; the MAC is the exact one), cycling DAC/ADC
 *   resolutions (fractions, step counts above 1, none) and stochastic rounding;
 * - noise statistics against bounds derived from the sample size (seeds stated);
 * - weight scaling, gradient mask, all-zero inputs, argument errors. */
#include "rpusim/config.h"
#include "rpusim/tile.h"
#include "ref_tile.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* SingleRPUConfig IO defaults on an ideal device (no weight bounds), so that the weights
 * the tests set are stored as given and only the IO model is under test. */
static rpu_config base_config(void) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    rpu_config_set(&c, "device.type", "ideal");
    return c;
}

static rpu_tile *make_tile(const rpu_config *c, int out, int in, uint64_t seed, uint32_t tile_id,
                           rpu_mac_mode mac) {
    rpu_tile_params p = {.out_size = out,
                         .in_size = in,
                         .seed = seed,
                         .layer_id = 1,
                         .tile_id = tile_id,
                         .mac = mac};
    rpu_tile *t = NULL;
    CHECK_OK(rpu_tile_create(&p, c, &t));
    return t;
}

/* ------------------------------------------------------------------ hand-computed */

/* Expected outputs of a 1x1 tile (w = 1, x = 10, inp_bound 1, noise off) worked out by
 * hand from spec §2.3 for [nm on?][bm on?][out_bound 0.1, 1, 10][res 4, 16, -1]. With
 * res r the DAC step is (1/r)·2·inp_bound and the ADC step (1/r)·2·out_bound. */
static const float hand_expected[2][2][3][3] = {
    /* NM none */
    {/* BM none; out_bound 10: ADC step 5 (res 4) or 1.25 (res 16) */
     {{0.1f, 0.1f, 0.1f}, {1, 1, 1}, {0, 1.25f, 1}},
     /* BM iterative: res 4 stops at once (1 > 0.25/0.5), res 16 at reduction 4
        (4 > 0.25/0.125), no res at reduction 128 (10/128 <= 0.1) */
     {{0.1f, 0.4f, 10}, {1, 1, 1}, {0, 1.25f, 1}}},
    /* NM abs_max: input scaled to 1, output rescaled by 10 */
    {{{1, 1, 1}, {10, 10, 10}, {0, 12.5f, 10}},
     /* res 4: stops at once -> 0.1·10; res 16: reduction 4 -> 0.1·10·4; none: 16 -> 10 */
     {{1, 4, 10}, {10, 10, 10}, {0, 12.5f, 10}}},
};

static void test_hand_computed(void) {
    const float bounds[3] = {0.1f, 1.0f, 10.0f};
    const float res[3] = {4, 16, -1};
    for (int nm = 0; nm < 2; ++nm)
        for (int bm = 0; bm < 2; ++bm)
            for (int b = 0; b < 3; ++b)
                for (int r = 0; r < 3; ++r)
                    for (int mac = 0; mac < 2; ++mac) {
                        rpu_config c = base_config();
                        c.forward.noise_management = nm ? RPU_NM_ABS_MAX : RPU_NM_NONE;
                        c.forward.bound_management = bm ? RPU_BM_ITERATIVE : RPU_BM_NONE;
                        c.forward.out_bound = bounds[b];
                        c.forward.inp_res = res[r];
                        c.forward.out_res = res[r];
                        c.forward.out_noise = 0;
                        rpu_tile *t = make_tile(&c, 1, 1, 7, 0, (rpu_mac_mode)mac);
                        if (!t) continue;
                        float w = 1, x = 10, y = -1;
                        CHECK_OK(rpu_tile_set_weights(t, &w, RPU_WEIGHTS_STORED));
                        CHECK_OK(rpu_tile_forward(t, &x, 1, &y, RPU_MODE_EVAL));
                        float want = hand_expected[nm][bm][b][r];
                        CHECK(fabsf(y - want) <= 1e-6f * fmaxf(1, fabsf(want)),
                              "1x1 nm=%d bm=%d bound=%g res=%g mac=%d: y=%.9g want %g", nm, bm,
                              (double)bounds[b], (double)res[r], mac, (double)y, (double)want);
                        rpu_tile_destroy(&t);
                        CHECK(t == NULL, "destroy sets NULL");
                    }
}

/* ------------------------------------------------------------------ vs reference */

static int compare_bits(const float *a, const float *b, size_t n, const char *what) {
    for (size_t q = 0; q < n; ++q)
        if (memcmp(&a[q], &b[q], sizeof(float)) != 0) {
            CHECK(0, "%s: element %zu differs: %.9g vs %.9g", what, q, (double)a[q], (double)b[q]);
            return 0;
        }
    CHECK(1, "%s", what);
    return 1;
}

/* Runs tile and reference on the same weights/inputs: forward (training, then test) and
 * backward, several calls in a row so the noise addresses advance. */
static void run_against_reference(const rpu_config *c, int out, int in, int n, uint64_t seed,
                                  float wscale, float xscale, const char *label) {
    rpu_tile *t = make_tile(c, out, in, seed, 3, RPU_MAC_EXACT);
    if (!t) return;
    ref_tile r;
    ref_tile_init(&r, c, out, in, seed, 1, 3);
    float *w = malloc(sizeof(float) * (size_t)out * in);
    tl_fill_uniform(w, out * in, -wscale, wscale, seed, 11);
    CHECK_OK(rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED));
    memcpy(r.w, w, sizeof(float) * (size_t)out * in);
    float *x = malloc(sizeof(float) * (size_t)n * in), *d = malloc(sizeof(float) * (size_t)n * out);
    float *y1 = malloc(sizeof(float) * (size_t)n * out),
          *y2 = malloc(sizeof(float) * (size_t)n * out);
    float *dx1 = malloc(sizeof(float) * (size_t)n * in),
          *dx2 = malloc(sizeof(float) * (size_t)n * in);
    char what[256];
    for (int call = 0; call < 3; ++call) {
        tl_fill_uniform(x, n * in, -xscale, xscale, seed + (uint64_t)call, 12);
        if (n > 2) memset(x + in, 0, sizeof(float) * (size_t)in); /* an all-zero vector */
        tl_fill_uniform(d, n * out, -1, 1, seed + (uint64_t)call, 13);
        bool is_test = call == 2;
        CHECK_OK(rpu_tile_forward(t, x, n, y1, is_test ? RPU_MODE_EVAL : RPU_MODE_TRAIN));
        ref_tile_forward(&r, x, n, y2, is_test);
        snprintf(what, sizeof what, "%s forward %dx%d n=%d call %d", label, out, in, n, call);
        compare_bits(y1, y2, (size_t)n * out, what);
        CHECK_OK(rpu_tile_backward(t, d, n, dx1));
        ref_tile_backward(&r, d, n, dx2);
        snprintf(what, sizeof what, "%s backward %dx%d n=%d call %d", label, out, in, n, call);
        compare_bits(dx1, dx2, (size_t)n * in, what);
    }
    if (c->forward.noise_management == RPU_NM_AVERAGE_ABS_MAX)
        CHECK(rpu_tile_nm_running(t) == r.nm_aux, "%s: running abs max %g vs %g", label,
              (double)rpu_tile_nm_running(t), (double)r.nm_aux);
    free(w), free(x), free(d), free(y1), free(y2), free(dx1), free(dx2);
    ref_tile_free(&r);
    rpu_tile_destroy(&t);
}

static void test_against_reference(void) {
    const rpu_noise_management nms[] = {
        RPU_NM_NONE,     RPU_NM_ABS_MAX,        RPU_NM_MAX,
        RPU_NM_CONSTANT, RPU_NM_ABS_MAX_NP_SUM, RPU_NM_AVERAGE_ABS_MAX};
    const rpu_bound_management bms[] = {RPU_BM_NONE, RPU_BM_ITERATIVE, RPU_BM_ITERATIVE_WORST_CASE};
    /* DAC/ADC resolutions (spec §2.1: res <= 0 none, res <= 1 the step as a fraction of the
     * range, res > 1 a number of steps), stochastic rounding, per direction, cycled over the
     * configurations: {inp_res, out_res, sto_round} */
    static const struct {
        float inp, out;
        bool sto;
    } resolutions[] = {
        {1.0f / 126, 1.0f / 510, false}, /* IOParameters() defaults */
        {127, 255, false},               /* step counts */
        {63, 1023, true},                /* step counts, stochastic rounding */
        {2, 2, false},                   /* two steps: a step is the whole bound */
        {0, -1, false},                  /* none */
        {0.05f, 0.125f, true},           /* coarse fractions, stochastic rounding */
        {1, 1, false},                   /* a fraction of 1: one step over the range */
        {4096, 3, true},
    };
    const int n_res = (int)(sizeof resolutions / sizeof resolutions[0]);
    int shape = 0;
    for (int noise = 0; noise < 2; ++noise)
        for (size_t a = 0; a < sizeof nms / sizeof nms[0]; ++a)
            for (size_t b = 0; b < sizeof bms / sizeof bms[0]; ++b, ++shape) {
                rpu_config c = base_config();
                for (int dir = 0; dir < 2; ++dir) {
                    rpu_io_params *io = dir ? &c.backward : &c.forward;
                    io->noise_management = nms[a];
                    io->bound_management = bms[b];
                    io->nm_thres = (shape % 4 == 1) ? 0.7f : 0.0f;
                    io->out_bound = 3.0f; /* make bound management work */
                    if (!noise) io->out_noise = 0;
                    /* the backward takes the next setting, so both directions see all */
                    const int rs = (shape + 3 * dir) % n_res;
                    io->inp_res = resolutions[rs].inp;
                    io->out_res = resolutions[rs].out;
                    io->inp_sto_round = io->out_sto_round = resolutions[rs].sto;
                }
                /* random shapes from the shape counter */
                int out = 1 + (shape * 7) % 23, in = 1 + (shape * 13) % 31, n = 1 + shape % 9;
                char label[96];
                snprintf(label, sizeof label, "nm=%d bm=%d noise=%d inp_res=%g out_res=%g sto=%d",
                         (int)nms[a], (int)bms[b], noise, (double)c.forward.inp_res,
                         (double)c.forward.out_res, (int)c.forward.out_sto_round);
                run_against_reference(&c, out, in, n, 100 + (uint64_t)shape, 0.6f, 2.0f, label);
            }
    /* every non-ideality at once, noise on, stochastic rounding, both MV directions */
    rpu_config c = base_config();
    for (int dir = 0; dir < 2; ++dir) {
        rpu_io_params *io = dir ? &c.backward : &c.forward;
        io->inp_noise = 0.01f;
        io->inp_sto_round = true;
        io->out_sto_round = true;
        io->inp_asymmetry = 0.05f;
        io->out_asymmetry = 0.03f;
        io->out_noise_std = 0.2f;
        io->w_noise = 0.02f;
        io->w_noise_type = dir ? RPU_WNOISE_ADDITIVE_CONSTANT : RPU_WNOISE_PCM_READ;
        io->ir_drop = 1.0f;
        io->out_nonlinearity = 0.5f;
        io->out_nonlinearity_std = 0.1f;
        io->slope_calibration = 0.5f;
        io->v_offset_std = 0.05f;
        io->r_series = dir ? 0.0f : 0.01f;
        io->out_scale = 1.5f;
        io->out_bound = 4.0f;
    }
    run_against_reference(&c, 19, 27, 6, 555, 0.6f, 1.0f, "all non-idealities");
    c.forward.v_offset_w_min = 0;
    c.backward.v_offset_w_min = 0;
    run_against_reference(&c, 8, 5, 4, 556, 0.6f, 1.0f, "v_offset_w_min=0");
    rpu_config p = base_config();
    p.forward.is_perfect = p.backward.is_perfect = true;
    run_against_reference(&p, 9, 14, 5, 557, 1.0f, 3.0f, "is_perfect");
}

/* Construction-time values are drawn as the spec says (reference draws them itself). */
static void test_construction_values(void) {
    rpu_config c = base_config();
    c.forward.out_noise_std = 0.3f;
    c.backward.out_nonlinearity = 0.2f;
    c.backward.v_offset_std = 0.1f;
    rpu_tile *t = make_tile(&c, 6, 4, 99, 5, RPU_MAC_BLAS);
    if (!t) return;
    ref_tile r;
    ref_tile_init(&r, &c, 6, 4, 99, 1, 5);
    CHECK(rpu_tile_out_noise_values(t, 0) && !rpu_tile_out_noise_values(t, 1), "which arrays");
    compare_bits(rpu_tile_out_noise_values(t, 0), r.out_noise_values[0], 6, "out_noise_values");
    compare_bits(rpu_tile_v_offsets(t, 1), r.v_offset[1], 4, "v_offset");
    compare_bits(rpu_tile_nonlinearity(t, 1), r.nl[1], 4, "nonlinearity");
    int nonneg = 1;
    for (int i = 0; i < 4; ++i)
        nonneg &= rpu_tile_v_offsets(t, 1)[i] >= 0;
    CHECK(nonneg, "v_offset half-rectified");
    ref_tile_free(&r);
    rpu_tile_destroy(&t);
}

/* ------------------------------------------------------------------ statistics */

/* Output noise with defaults except out_res off: y - W x has std out_noise·max|x| under
 * abs_max NM (the noise is added in the normalized domain and scaled back by nm). With
 * N samples the sample std has relative sd 1/sqrt(2N); bound 5/sqrt(2N). Seed 4242. */
static void test_output_noise_std(void) {
    rpu_config c = base_config();
    c.forward.out_res = -1;
    c.forward.inp_res = -1;
    const int out = 8, in = 16, n = 4096;
    rpu_tile *t = make_tile(&c, out, in, 4242, 0, RPU_MAC_BLAS);
    if (!t) return;
    float w[8 * 16], x1[16];
    tl_fill_uniform(w, out * in, -0.3f, 0.3f, 4242, 1);
    tl_fill_uniform(x1, in, -2.5f, 2.5f, 4242, 2);
    x1[3] = 2.5f; /* max|x| = 2.5 */
    CHECK_OK(rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED));
    float *x = malloc(sizeof(float) * (size_t)n * in), *y = malloc(sizeof(float) * (size_t)n * out);
    for (int k = 0; k < n; ++k)
        memcpy(x + (size_t)k * in, x1, sizeof x1);
    CHECK_OK(rpu_tile_forward(t, x, n, y, RPU_MODE_EVAL));
    double ss = 0;
    for (int k = 0; k < n; ++k)
        for (int i = 0; i < out; ++i) {
            double exact = 0;
            for (int j = 0; j < in; ++j)
                exact += (double)w[i * in + j] * x1[j];
            double e = y[(size_t)k * out + i] - exact;
            ss += e * e;
        }
    const double N = (double)n * out;
    double sd = sqrt(ss / N), want = 0.06 * 2.5;
    CHECK(fabs(sd / want - 1) < 5 / sqrt(2 * N), "output noise std %g, want %g (N=%g)", sd, want,
          N);
    free(x), free(y);
    rpu_tile_destroy(&t);
}

/* Quantization error of the DAC (inp_res default 1/126: step h = 2/126) and of the ADC
 * (out_res default 1/510 with out_bound 12: h = 24/510) has rms h/sqrt(12) for inputs
 * spread over many steps. Mean of e^2 over N has sd h^2/sqrt(180 N); bound 5 sd.
 * Seeds 31 and 32. */
static void test_quantization_rms(void) {
    const int n = 20000, dim = 4;
    for (int stage = 0; stage < 2; ++stage) {
        rpu_config c = base_config();
        c.forward.noise_management = RPU_NM_NONE;
        c.forward.bound_management = RPU_BM_NONE;
        c.forward.out_noise = 0;
        float h, gain;
        if (stage == 0) { /* DAC only */
            c.forward.out_res = -1;
            h = 2.0f / 126;
            gain = 1;
        } else { /* ADC only: weights 10·I so outputs span (-10, 10) */
            c.forward.inp_res = -1;
            h = 24.0f / 510;
            gain = 10;
        }
        rpu_tile *t = make_tile(&c, dim, dim, 31 + (uint64_t)stage, 0, RPU_MAC_BLAS);
        if (!t) return;
        float w[16] = {0};
        for (int i = 0; i < dim; ++i)
            w[i * dim + i] = gain;
        CHECK_OK(rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED));
        float *x = malloc(sizeof(float) * (size_t)n * dim),
              *y = malloc(sizeof(float) * (size_t)n * dim);
        tl_fill_uniform(x, n * dim, -0.99f, 0.99f, 31 + (uint64_t)stage, 3);
        CHECK_OK(rpu_tile_forward(t, x, n, y, RPU_MODE_EVAL));
        double ss = 0;
        for (int q = 0; q < n * dim; ++q) {
            double e = (double)y[q] - (double)gain * x[q];
            ss += e * e;
        }
        const double N = (double)n * dim;
        double ms = ss / N, want = (double)h * h / 12, sd = (double)h * h / sqrt(180 * N);
        CHECK(fabs(ms - want) < 5 * sd, "%s quantization: rms %g, want %g", stage ? "ADC" : "DAC",
              sqrt(ms), sqrt(want));
        free(x), free(y);
        rpu_tile_destroy(&t);
    }
}

/* ------------------------------------------------------------------ behaviours */

static void test_zero_vector_and_determinism(void) {
    rpu_config c = base_config(); /* defaults: out_noise 0.06 */
    rpu_tile *t = make_tile(&c, 5, 7, 1, 0, RPU_MAC_EXACT);
    rpu_tile *u = make_tile(&c, 5, 7, 1, 0, RPU_MAC_EXACT);
    rpu_tile *v = make_tile(&c, 5, 7, 1, 1, RPU_MAC_EXACT);
    if (!t || !u || !v) return;
    float w[35], x[3 * 7] = {0}, y[15], y1[5], yv[15];
    tl_fill_uniform(w, 35, -0.5f, 0.5f, 1, 4);
    tl_fill_uniform(x, 7, -1, 1, 1, 5);
    tl_fill_uniform(x + 14, 7, -1, 1, 1, 6);
    rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED);
    rpu_tile_set_weights(u, w, RPU_WEIGHTS_STORED);
    rpu_tile_set_weights(v, w, RPU_WEIGHTS_STORED);
    CHECK_OK(rpu_tile_forward(t, x, 3, y, RPU_MODE_TRAIN));
    int zeros = 1;
    for (int i = 0; i < 5; ++i)
        zeros &= y[5 + i] == 0.0f;
    CHECK(zeros, "all-zero input vector gives exact zeros under noise management");
    /* the same batch in a fresh tile with the same keys: same bits */
    float yu[15];
    CHECK_OK(rpu_tile_forward(u, x, 3, yu, RPU_MODE_TRAIN));
    CHECK(memcmp(yu, y, sizeof yu) == 0, "same keys and batch give the same bits");
    CHECK_OK(rpu_tile_forward(v, x, 3, yv, RPU_MODE_TRAIN));
    CHECK(memcmp(yv, y, sizeof y1) != 0, "another tile id draws other noise");
    /* a second call draws new noise */
    CHECK_OK(rpu_tile_forward(u, x, 3, yu, RPU_MODE_TRAIN));
    memcpy(y1, yu, sizeof y1);
    CHECK(memcmp(y1, y, sizeof y1) != 0, "second call draws new noise");
    CHECK(rpu_tile_forward_calls(u) == 2, "call counter");
    rpu_tile_destroy(&t), rpu_tile_destroy(&u), rpu_tile_destroy(&v);
}

/* BLAS and exact MAC agree to float round-off (noise and quantization off). */
static void test_blas_vs_exact(void) {
    rpu_config c = base_config();
    for (int dir = 0; dir < 2; ++dir) {
        rpu_io_params *io = dir ? &c.backward : &c.forward;
        io->out_noise = 0;
        io->inp_res = -1;
        io->out_res = -1;
        io->out_bound = 100;
    }
    const int out = 64, in = 96, n = 37;
    rpu_tile *a = make_tile(&c, out, in, 3, 0, RPU_MAC_BLAS),
             *b = make_tile(&c, out, in, 3, 0, RPU_MAC_EXACT);
    if (!a || !b) return;
    float *w = malloc(sizeof(float) * out * in), *x = malloc(sizeof(float) * n * in);
    float *ya = malloc(sizeof(float) * n * out), *yb = malloc(sizeof(float) * n * out);
    float *da = malloc(sizeof(float) * n * in), *db = malloc(sizeof(float) * n * in);
    tl_fill_uniform(w, out * in, -0.6f, 0.6f, 3, 1);
    tl_fill_uniform(x, n * in, -1, 1, 3, 2);
    rpu_tile_set_weights(a, w, RPU_WEIGHTS_STORED), rpu_tile_set_weights(b, w, RPU_WEIGHTS_STORED);
    CHECK_OK(rpu_tile_forward(a, x, n, ya, RPU_MODE_EVAL));
    CHECK_OK(rpu_tile_forward(b, x, n, yb, RPU_MODE_EVAL));
    double md = 0;
    for (int q = 0; q < n * out; ++q)
        md = fmax(md, fabs(ya[q] - yb[q]));
    CHECK(md < 1e-4, "forward BLAS vs exact max diff %g", md);
    CHECK_OK(rpu_tile_backward(a, ya, n, da));
    CHECK_OK(rpu_tile_backward(b, ya, n, db));
    md = 0;
    for (int q = 0; q < n * in; ++q)
        md = fmax(md, fabs(da[q] - db[q]));
    CHECK(md < 1e-4, "backward BLAS vs exact max diff %g", md);
    free(w), free(x), free(ya), free(yb), free(da), free(db);
    rpu_tile_destroy(&a), rpu_tile_destroy(&b);
}

/* is_perfect forward equals W x times out_scale times mapping scales; backward Wᵀ d. */
static void test_perfect_and_scaling(void) {
    rpu_config c = base_config();
    c.forward.is_perfect = c.backward.is_perfect = true;
    c.mapping.weight_scaling_omega = 0.5f;
    for (int colwise = 0; colwise < 2; ++colwise) {
        c.mapping.weight_scaling_columnwise = colwise;
        rpu_tile *t = make_tile(&c, 3, 4, 1, 0, RPU_MAC_EXACT);
        if (!t) return;
        const float w[12] = {1, -2, 0.5f, 0, 0.25f, 0.1f, -0.2f, 0.05f, 0, 0, 0, 0};
        CHECK_OK(rpu_tile_set_weights(t, w, RPU_WEIGHTS_SCALED));
        float raw[12], back[12], s[3];
        rpu_tile_get_weights(t, raw, RPU_WEIGHTS_STORED);
        rpu_tile_get_weights(t, back, RPU_WEIGHTS_SCALED);
        rpu_tile_get_mapping_scales(t, s);
        /* hand: global max 2 -> alpha 4; rows: 2/0.5=4, 0.25/0.5=0.5, 0 -> 1 */
        const float want_s[2][3] = {{4, 4, 4}, {4, 0.5f, 1}};
        for (int i = 0; i < 3; ++i)
            CHECK(s[i] == want_s[colwise][i], "colwise=%d scale %d = %g", colwise, i, (double)s[i]);
        float m = 0;
        for (int q = 0; q < 12; ++q) {
            m = fmaxf(m, fabsf(raw[q]));
            CHECK(fabsf(back[q] - w[q]) <= 1e-7f, "get(scaled) returns the set weights");
        }
        CHECK(fabsf(m - 0.5f) < 1e-7f, "max stored |w| = omega: %g", (double)m);
        float x[4] = {1, 2, 3, 4}, y[3], d[3] = {1, -1, 2}, dx[4];
        CHECK_OK(rpu_tile_forward(t, x, 1, y, RPU_MODE_TRAIN));
        for (int i = 0; i < 3; ++i) {
            float e = 0;
            for (int j = 0; j < 4; ++j)
                e += w[i * 4 + j] * x[j];
            CHECK(fabsf(y[i] - e) < 1e-5f, "perfect forward %d: %g vs %g", i, (double)y[i],
                  (double)e);
        }
        CHECK_OK(rpu_tile_backward(t, d, 1, dx));
        for (int j = 0; j < 4; ++j) {
            float e = 0;
            for (int i = 0; i < 3; ++i)
                e += w[i * 4 + j] * d[i];
            CHECK(fabsf(dx[j] - e) < 1e-5f, "perfect backward %d: %g vs %g", j, (double)dx[j],
                  (double)e);
        }
        rpu_tile_destroy(&t);
    }
}

/* Saturated outputs of a training forward get no gradient (spec §2.3 periphery); bound
 * management never runs in the backward. */
static void test_mask_and_backward_bm(void) {
    rpu_config c = base_config();
    c.forward.noise_management = RPU_NM_NONE;
    c.forward.bound_management = RPU_BM_NONE;
    c.forward.out_bound = 1;
    c.forward.out_noise = 0;
    c.backward.out_noise = 0;
    rpu_tile *t = make_tile(&c, 2, 1, 1, 0, RPU_MAC_EXACT);
    if (!t) return;
    const float w[2] = {1, 0.25f};
    rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED);
    float x = 10, y[2], d[2] = {1, 1}, dx;
    CHECK_OK(rpu_tile_forward(t, &x, 1, y, RPU_MODE_TRAIN));
    CHECK(y[0] == 1 && y[1] != 1, "first output saturates: %g %g", (double)y[0], (double)y[1]);
    CHECK_OK(rpu_tile_backward(t, d, 1, &dx));
    /* only the unsaturated output's gradient flows: 0.25·1 (backward NM abs_max, DAC
       step 2/126 represents 1 exactly, ADC step 24/510: rint(0.25/0.0470588)=5 -> 0.235) */
    float want = rintf(0.25f / (24.0f / 510)) * (24.0f / 510);
    CHECK(fabsf(dx - want) < 1e-6f, "masked backward dx=%g want %g", (double)dx, (double)want);
    CHECK_OK(rpu_tile_forward(t, &x, 1, y, RPU_MODE_EVAL));
    CHECK_OK(rpu_tile_backward(t, d, 1, &dx));
    want = rintf(1.25f / (24.0f / 510)) * (24.0f / 510);
    CHECK(fabsf(dx - want) < 1e-6f, "unmasked after test forward dx=%g want %g", (double)dx,
          (double)want);
    rpu_tile_destroy(&t);

    /* the mask also applies to a perfect forward (out_bound 12 > 0), not to floating point */
    for (int fp = 0; fp < 2; ++fp) {
        rpu_config pc = base_config();
        pc.kind = fp ? RPU_KIND_FLOATING_POINT : RPU_KIND_SINGLE;
        pc.forward.is_perfect = pc.backward.is_perfect = true;
        rpu_tile *tp = make_tile(&pc, 2, 1, 1, 0, RPU_MAC_EXACT);
        const float wp[2] = {20, 0.5f};
        rpu_tile_set_weights(tp, wp, RPU_WEIGHTS_STORED);
        float xp = 1, yp[2], dp[2] = {1, 1}, dxp;
        CHECK_OK(rpu_tile_forward(tp, &xp, 1, yp, RPU_MODE_TRAIN));
        CHECK(yp[0] == 20, "perfect forward is not clipped: %g", (double)yp[0]);
        CHECK_OK(rpu_tile_backward(tp, dp, 1, &dxp));
        CHECK(dxp == (fp ? 20.5f : 0.5f), "kind %d: perfect backward after |y| >= 0.999*12: %g", fp,
              (double)dxp);
        rpu_tile_destroy(&tp);
    }

    /* backward with bound management configured equals backward without */
    rpu_config a = base_config(), b = base_config();
    a.backward.bound_management = RPU_BM_ITERATIVE;
    b.backward.bound_management = RPU_BM_NONE;
    a.backward.out_bound = b.backward.out_bound = 0.5f;
    rpu_tile *ta = make_tile(&a, 6, 5, 9, 0, RPU_MAC_EXACT),
             *tb = make_tile(&b, 6, 5, 9, 0, RPU_MAC_EXACT);
    float ww[30], dd[12], da[10], db[10];
    tl_fill_uniform(ww, 30, -0.6f, 0.6f, 9, 1);
    tl_fill_uniform(dd, 12, -1, 1, 9, 2);
    rpu_tile_set_weights(ta, ww, RPU_WEIGHTS_STORED),
        rpu_tile_set_weights(tb, ww, RPU_WEIGHTS_STORED);
    CHECK_OK(rpu_tile_backward(ta, dd, 2, da));
    CHECK_OK(rpu_tile_backward(tb, dd, 2, db));
    CHECK(memcmp(da, db, sizeof da) == 0, "no bound management in the backward");
    rpu_tile_destroy(&ta), rpu_tile_destroy(&tb);
}

static void test_errors(void) {
    rpu_config c = base_config();
    rpu_tile *t = NULL;
    rpu_tile_params p = {.out_size = 0, .in_size = 3};
    CHECK_STATUS(rpu_tile_create(&p, &c, &t), RPU_ERR_ARG);
    CHECK(strstr(rpu_last_error(), "0 x 3") != NULL, "message names the size: %s",
          rpu_last_error());
    CHECK_STATUS(rpu_tile_create(NULL, &c, &t), RPU_ERR_ARG);
    p.out_size = 2;
    c.forward.mv_type = RPU_MV_POS_NEG_SEPARATE;
    CHECK_STATUS(rpu_tile_create(&p, &c, &t), RPU_ERR_UNSUPPORTED);
    CHECK(strstr(rpu_last_error(), "forward.mv_type") != NULL, "names the key: %s",
          rpu_last_error());
    c = base_config();
    c.forward.inp_bound = -1;
    c.forward.noise_management = RPU_NM_NONE;
    CHECK_STATUS(rpu_tile_create(&p, &c, &t), RPU_ERR_CONFIG);
    CHECK(strstr(rpu_last_error(), "forward.inp_res") != NULL, "names the key: %s",
          rpu_last_error());
    c = base_config();
    CHECK_OK(rpu_tile_create(&p, &c, &t));
    float x[3] = {0}, y[2];
    CHECK_STATUS(rpu_tile_forward(t, x, -1, y, RPU_MODE_EVAL), RPU_ERR_ARG);
    CHECK_STATUS(rpu_tile_forward(t, NULL, 1, y, RPU_MODE_EVAL), RPU_ERR_ARG);
    float bad[6] = {0, 0, NAN, 0, 0, 0};
    CHECK_STATUS(rpu_tile_set_weights(t, bad, RPU_WEIGHTS_STORED), RPU_ERR_ARG);
    CHECK(strstr(rpu_last_error(), "(0, 2)") != NULL, "names the element: %s", rpu_last_error());
    rpu_tile_destroy(&t);
    rpu_tile_destroy(&t); /* NULL is fine */
    rpu_tile_destroy(NULL);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_hand_computed();
    test_against_reference();
    test_construction_values();
    test_output_noise_std();
    test_quantization_rms();
    test_zero_vector_and_determinism();
    test_blas_vs_exact();
    test_perfect_and_scaling();
    test_mask_and_backward_bm();
    test_errors();
    return tl_finish();
}
