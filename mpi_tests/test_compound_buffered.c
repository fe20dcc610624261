/* Tests of the buffered transfer family (compound spec §6-§8): buffered_transfer (TTv2),
 * chopped_transfer (c-TTv2) and dynamic_transfer (AGAD), on the deterministic unit device Dg
 * of §11.1 (1x1 tiles, x = [1], d = [-g], lr 1, perfect transfer reads, default transfer
 * writes of one pulse): the hand-computed traces of §11.5, §11.6 and §11.7 (fast array,
 * slow array, buffer, running and past means, choppers, sweep counter), the hidden-parameter
 * names and counts of §1.3, the invariants of §11.9 (|H| below the threshold after a read,
 * lr 0 changes nothing, set_weights keeps buffers and choppers), the 1.1.0 and post-1.1
 * visible weights of a chopped compound with gamma != 0 (§7.7), the auto-scaled pulse-count
 * learning rate (§7.4), the automatic period (§7.5), and binomial bounds on the random
 * chopper flips (§7.6, §8.3). Tiles are local (no collective). */
#include "rpusim/config.h"
#include "rpusim/tile.h"

#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float g = 0.015625f; /* 2^-6 */

/* A compound of type `type` over two (n) Dg devices with perfect transfer reads. */
static void dg_config(rpu_config *c, const char *type, int n, const char *extra) {
    CHECK_OK(rpu_config_default(c, RPU_KIND_SINGLE));
    char text[6000];
    int pos = snprintf(text, sizeof text,
                       "device.type = %s\n"
                       "device.transfer_forward.is_perfect = true\n",
                       type);
    for (int k = 0; k < n; ++k)
        pos += snprintf(text + pos, sizeof text - (size_t)pos,
                        "device.unit_cell_devices.%d.type = constant_step\n"
                        "device.unit_cell_devices.%d.dw_min = 0.015625\n"
                        "device.unit_cell_devices.%d.dw_min_dtod = 0\n"
                        "device.unit_cell_devices.%d.dw_min_std = 0\n"
                        "device.unit_cell_devices.%d.up_down_dtod = 0\n"
                        "device.unit_cell_devices.%d.w_min = -100\n"
                        "device.unit_cell_devices.%d.w_max = 100\n"
                        "device.unit_cell_devices.%d.w_min_dtod = 0\n"
                        "device.unit_cell_devices.%d.w_max_dtod = 0\n",
                        k, k, k, k, k, k, k, k, k);
    if (extra) snprintf(text + pos, sizeof text - (size_t)pos, "%s", extra);
    CHECK_OK(rpu_config_parse(c, text, type));
}

/* One call of m vectors x = e_0 (in values), d = dv e_0 (out values). */
static void call_d(rpu_tile *t, int m, int in, int out, float dv, float lr) {
    float *x = calloc((size_t)m * in, sizeof(float)), *d = calloc((size_t)m * out, sizeof(float));
    for (int v = 0; v < m; ++v) {
        x[(size_t)v * in] = 1.0f;
        d[(size_t)v * out] = dv;
    }
    CHECK_OK(rpu_tile_update(t, x, d, m, lr));
    free(x);
    free(d);
}

/* One UP step of g on A(0, 0) per vector (before choppers). */
static void call(rpu_tile *t, int m, int in, int out, float lr) {
    call_d(t, m, in, out, -g, lr);
}

/* ------------------------------------------------------------------ names (§1.3) */

/* A tile of `type` over n soft_bounds sub-devices with every aihwkit array in use
 * (diffusion, lifetime, reset, drift), so that each sub-device lists the 10 names of §1.3. */
static rpu_tile *soft_bounds_tile(const char *type, int n) {
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_set(&c, "device.type", type));
    for (int q = 0; q < n; ++q) {
        static const char *const kv[][2] = {{"type", "soft_bounds"}, {"diffusion", "0.01"},
                                            {"lifetime", "100"},     {"reset_std", "0.01"},
                                            {"reset_dtod", "0.01"},  {"drift.nu", "0.01"}};
        for (size_t i = 0; i < sizeof kv / sizeof kv[0]; ++i) {
            char key[96];
            snprintf(key, sizeof key, "device.unit_cell_devices.%d.%s", q, kv[i][0]);
            CHECK_OK(rpu_config_set(&c, key, kv[i][1]));
        }
    }
    return tl_tile(&c, 2, 3, 5);
}

static void test_names(void) {
    static const struct {
        const char *type;
        int n, count;
        const char *last[3];
    } cases[] = {
        {"buffered_transfer", 3, 35, {"buffered_FP_weight_0", "buffered_FP_weight_1", NULL}},
        {"chopped_transfer", 2, 23, {"buffered_FP_weight_0", NULL, NULL}},
        {"dynamic_transfer",
         2,
         25,
         {"buffered_FP_weight", "running_mean_weight", "past_mean_weight"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
        rpu_tile *t = soft_bounds_tile(cases[k].type, cases[k].n);
        if (!t) continue;
        const int n = rpu_tile_device_array_count(t);
        int nl = 0;
        while (nl < 3 && cases[k].last[nl])
            ++nl;
        /* aihwkit's count (§1.3) has 11 names per soft_bounds sub-device (with hidden_weights_k);
         * rpusim lists the arrays its devices use (more for drift), so the count is the transfer
         * compound's of the same sub-devices plus the buffers */
        rpu_tile *tt = soft_bounds_tile("transfer", cases[k].n);
        const int nt = tt ? rpu_tile_device_array_count(tt) : -1;
        rpu_tile_destroy(&tt);
        CHECK(n == nt + nl,
              "%s: %d hidden parameters, want %d (transfer's %d + %d buffers; "
              "aihwkit %d)",
              cases[k].type, n, nt + nl, nt, nl, cases[k].count);
        CHECK(cases[k].count == 11 * cases[k].n + nl, "%s: aihwkit count", cases[k].type);
        for (int q = 0; q < nl; ++q) {
            const char *name = NULL;
            rpu_tile_device_array(t, n - nl + q, &name);
            CHECK(name && strcmp(name, cases[k].last[q]) == 0, "%s: array %d is %s, want %s",
                  cases[k].type, n - nl + q, name ? name : "(null)", cases[k].last[q]);
        }
        /* sub-device names before the buffers: max_bound_0 first, hidden_weights_{n-1} last */
        const char *name = NULL;
        rpu_tile_device_array(t, n - nl - 1, &name);
        char want[32];
        snprintf(want, sizeof want, "hidden_weights_%d", cases[k].n - 1);
        CHECK(name && strcmp(name, want) == 0, "%s: array before the buffers %s", cases[k].type,
              name ? name : "(null)");
        rpu_tile_device_array(t, 0, &name);
        CHECK(name && strcmp(name, "max_bound_0") == 0, "%s: first array %s", cases[k].type,
              name ? name : "(null)");
        rpu_tile_destroy(&t);
    }
}

/* ------------------------------------------------------------------ §11.5 buffered */

static void test_buffered_traces(void) {
    static const struct {
        const char *extra;
        const char *what;
        int mode; /* 0: H = 0; 1: H = g k(k-1)/2; 2: H_k = 0.1 (H_{k-1} + k g) */
    } cases[] = {
        {"device.momentum = 0\n", "momentum 0, forget", 0},
        {"device.momentum = 0\ndevice.forget_buffer = false\n", "momentum 0, no forget", 1},
        {NULL, "default momentum 0.1, forget", 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
        rpu_config c;
        dg_config(&c, "buffered_transfer", 2, cases[k].extra);
        rpu_tile *t = tl_tile(&c, 1, 1, 5);
        if (!t) continue;
        double H = 0;
        for (int v = 1; v <= 6; ++v) {
            call(t, 1, 1, 1, 1.0f);
            if (cases[k].mode == 1) H = g * v * (v - 1) / 2.0;
            if (cases[k].mode == 2) H = 0.1 * (H + v * (double)g);
            EXPECT_NEAR(cases[k].what, tl_array_at(t, "hidden_weights_0", 0), v * g);
            EXPECT_NEAR(cases[k].what, tl_weight_at(t, 0), v * g);
            EXPECT_NEAR(cases[k].what, tl_array_at(t, "buffered_FP_weight_0", 0), H);
        }
        rpu_tile_destroy(&t);
    }
    /* lr = 0 calls change nothing (§11.9) */
    rpu_config c;
    dg_config(&c, "buffered_transfer", 2, NULL);
    rpu_tile *t = tl_tile(&c, 1, 1, 5);
    call(t, 3, 1, 1, 1.0f);
    const float h = tl_array_at(t, "buffered_FP_weight_0", 0), w = tl_weight_at(t, 0),
                a = tl_array_at(t, "hidden_weights_0", 0);
    call(t, 3, 1, 1, 0.0f);
    CHECK(tl_array_at(t, "buffered_FP_weight_0", 0) == h && tl_weight_at(t, 0) == w &&
              tl_array_at(t, "hidden_weights_0", 0) == a,
          "lr 0 changed the buffered compound");
    /* set_weights (§5.8, §11.9): A zeroed, W = C = the new weight, the buffer kept */
    const float nw = 0.25f;
    CHECK_OK(rpu_tile_set_weights(t, &nw, RPU_WEIGHTS_STORED));
    EXPECT_NEAR("set_weights A", tl_array_at(t, "hidden_weights_0", 0), 0);
    EXPECT_NEAR("set_weights W", tl_weight_at(t, 0), 0.25);
    EXPECT_NEAR("set_weights buffer kept", tl_array_at(t, "buffered_FP_weight_0", 0), h);
    rpu_tile_destroy(&t);
}

/* §11.9: with forget and momentum 0 every buffer element is below the threshold after a
 * read (buffered: |H| < thres_scale g; chopped / dynamic: |H| < 1), on a 3 x 4 tile with
 * varied gradients, n = 3 devices for buffered (two buffers). */
static void test_buffer_bounds(void) {
    static const char *const types[] = {"buffered_transfer", "chopped_transfer",
                                        "dynamic_transfer"};
    for (int ti = 0; ti < 3; ++ti) {
        rpu_config c;
        dg_config(&c, types[ti], ti == 0 ? 3 : 2,
                  ti == 0 ? "device.momentum = 0\ndevice.thres_scale = 2\n"
                          : "device.in_chop_prob = 0.3\ndevice.buffer_granularity = 2.5\n");
        rpu_tile *t = tl_tile(&c, 3, 4, 5);
        if (!t) continue;
        float x[8 * 4], d[8 * 3];
        double worst = 0;
        for (int call_i = 0; call_i < 30; ++call_i) {
            for (int q = 0; q < 8 * 4; ++q)
                x[q] = (float)((q * 7 + call_i * 3) % 9 - 4) / 4.0f;
            for (int q = 0; q < 8 * 3; ++q)
                d[q] = (float)((q * 5 + call_i) % 7 - 3) * g;
            CHECK_OK(rpu_tile_update(t, x, d, 8, 1.0f));
            const char *names[2] = {ti == 2 ? "buffered_FP_weight" : "buffered_FP_weight_0",
                                    ti == 0 ? "buffered_FP_weight_1" : NULL};
            for (int b = 0; b < 2 && names[b]; ++b) {
                const float *H = rpu_tile_device_array_by_name(t, names[b]);
                CHECK(H != NULL, "%s: no %s", types[ti], names[b]);
                for (int q = 0; H && q < 12; ++q) {
                    const double lim = ti == 0 ? 2.0 * g : 1.0;
                    if (fabs(H[q]) / lim > worst) worst = fabs(H[q]) / lim;
                }
            }
        }
        CHECK(worst < 1.0, "%s: max |H| / threshold = %g after reads", types[ti], worst);
        CHECK(worst > 0.0, "%s: buffers never used", types[ti]);
        rpu_tile_destroy(&t);
    }
}

/* ------------------------------------------------------------------ §11.6 chopped */

static void test_chopped_traces(void) {
    rpu_config c;
    /* without choppers: identical to 11.5 (A = C = k g, H = 0) */
    dg_config(&c, "chopped_transfer", 2, "device.in_chop_prob = 0\n");
    rpu_tile *t = tl_tile(&c, 1, 1, 5);
    for (int v = 1; t && v <= 5; ++v) {
        call(t, 1, 1, 1, 1.0f);
        EXPECT_NEAR("no chopper A", tl_array_at(t, "hidden_weights_0", 0), v * g);
        EXPECT_NEAR("no chopper C", tl_weight_at(t, 0), v * g);
        EXPECT_NEAR("no chopper H", tl_array_at(t, "buffered_FP_weight_0", 0), 0);
    }
    rpu_tile_destroy(&t);
    /* regular choppers with period 2 */
    dg_config(&c, "chopped_transfer", 2,
              "device.in_chop_prob = 1\ndevice.in_chop_random = false\n");
    t = tl_tile(&c, 1, 1, 5);
    static const float A[6] = {1, 2, 1, 0, 1, 2}, C[6] = {1, 2, 1, 1, 2, 3};
    static const int chop[6] = {0, 1, 1, 0, 0, 1}; /* c_in after each read */
    for (int v = 0; t && v < 6; ++v) {
        call(t, 1, 1, 1, 1.0f);
        char what[64];
        snprintf(what, sizeof what, "chopped vector %d", v + 1);
        EXPECT_NEAR(what, tl_array_at(t, "hidden_weights_0", 0), A[v] * g);
        EXPECT_NEAR(what, tl_weight_at(t, 0), C[v] * g);
        EXPECT_NEAR(what, tl_array_at(t, "buffered_FP_weight_0", 0), 0);
        CHECK(tl_state_item(t, "in_chopper", 0) == chop[v], "%s: c_in %g", what, tl_state_item(t, "in_chopper", 0));
        CHECK(tl_state_item(t, "transfer_counter", 0) == v + 1, "%s: T %g", what,
              tl_state_item(t, "transfer_counter", 0));
    }
    /* set_weights: A zeroed, choppers and counter kept */
    const float nw = -0.5f;
    CHECK_OK(rpu_tile_set_weights(t, &nw, RPU_WEIGHTS_STORED));
    EXPECT_NEAR("chopped set_weights A", tl_array_at(t, "hidden_weights_0", 0), 0);
    EXPECT_NEAR("chopped set_weights W", tl_weight_at(t, 0), -0.5);
    CHECK(tl_state_item(t, "in_chopper", 0) == 1 && tl_state_item(t, "transfer_counter", 0) == 6,
          "set_weights kept the choppers and the counter");
    rpu_tile_destroy(&t);
}

/* §7.7: gamma 0.5 (W = 0.5 A + C, transfers at lr 0.5 by gamma_0 / gamma_1), regular
 * choppers of period 2. By hand (kappa = 0.5 / g): v1 A = g, h = 0.5; v2 A = 2g, h = 1.5 ->
 * C = g, H = 0, c_in set; v3 A = g (chopped step down), h = -0.5. After v3 the 1.1.0 visible
 * weight is 0.5 g + g = 1.5 g (stored A), the post-1.1 one 0.5 (-g) + g = 0.5 g. */
static void test_chopped_visible_weight(void) {
    for (int post = 0; post < 2; ++post) {
        rpu_config c;
        dg_config(&c, "chopped_transfer", 2,
                  post ? "device.gamma = 0.5\ndevice.in_chop_prob = 1\ndevice.in_chop_random = "
                         "false\ndevice.dechop_visible_weight = true\n"
                       : "device.gamma = 0.5\ndevice.in_chop_prob = 1\ndevice.in_chop_random = "
                         "false\n");
        rpu_tile *t = tl_tile(&c, 1, 1, 5);
        if (!t) continue;
        call(t, 1, 1, 1, 1.0f);
        EXPECT_NEAR("gamma 0.5 v1 H", tl_array_at(t, "buffered_FP_weight_0", 0), 0.5);
        EXPECT_NEAR("gamma 0.5 v1 W", tl_weight_at(t, 0), 0.5 * g);
        call(t, 2, 1, 1, 1.0f);
        EXPECT_NEAR("gamma 0.5 v3 A", tl_array_at(t, "hidden_weights_0", 0), g);
        EXPECT_NEAR("gamma 0.5 v3 C", tl_array_at(t, "hidden_weights_1", 0), g);
        EXPECT_NEAR("gamma 0.5 v3 H", tl_array_at(t, "buffered_FP_weight_0", 0), -0.5);
        CHECK(tl_state_item(t, "in_chopper", 0) == 1, "c_in set after read 2");
        EXPECT_NEAR(post ? "post-1.1 de-chopped W" : "1.1.0 W", tl_weight_at(t, 0), post ? 0.5 * g : 1.5 * g);
        rpu_tile_destroy(&t);
    }
    /* post-1.1 on a 2 x 3 tile with mixed choppers: W_ij = 0.5 sigma_ij A_ij + C_ij per
     * element (random choppers, in and out) */
    rpu_config c;
    dg_config(&c, "chopped_transfer", 2,
              "device.gamma = 0.5\ndevice.in_chop_prob = 0.5\ndevice.out_chop_prob = 0.5\n"
              "device.dechop_visible_weight = true\n");
    rpu_tile *t = tl_tile(&c, 2, 3, 5);
    float x[4 * 3], d[4 * 2];
    int mixed = 0;
    for (int call_i = 0; t && call_i < 12; ++call_i) {
        for (int q = 0; q < 12; ++q)
            x[q] = (float)((q + call_i) % 3 - 1);
        for (int q = 0; q < 8; ++q)
            d[q] = (float)((q * 3 + call_i) % 5 - 2) * g;
        CHECK_OK(rpu_tile_update(t, x, d, 4, 1.0f));
        float w[6];
        CHECK_OK(rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED));
        const int in_mixed =
            tl_state_item(t, "in_chopper", 0) + tl_state_item(t, "in_chopper", 1) + tl_state_item(t, "in_chopper", 2);
        const int out_mixed = tl_state_item(t, "out_chopper", 0) + tl_state_item(t, "out_chopper", 1);
        mixed += in_mixed % 3 != 0 && out_mixed == 1;
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 3; ++j) {
                const double s = tl_state_item(t, "in_chopper", j) != tl_state_item(t, "out_chopper", i) ? -1 : 1;
                const double want = 0.5 * s * tl_array_at(t, "hidden_weights_0", i * 3 + j) +
                                    tl_array_at(t, "hidden_weights_1", i * 3 + j);
                EXPECT_NEAR("post-1.1 per element", w[i * 3 + j], want);
            }
    }
    CHECK(mixed > 0, "no call ended with mixed choppers");
    rpu_tile_destroy(&t);
}

/* §7.4: auto_scale with fast_lr 1: the pulse-count lr is fast_lr * BL * g(A) / (m_x m_d);
 * the first vector (m_x = 1, m_d = g) gives lr 31, so BL management makes 31 certain pulses
 * (A = 31 g instead of g); the second (|d| = 2g, m batch 1) moves m_d to 0.99 g + 0.01 * 2g. */
static void test_auto_scale(void) {
    rpu_config c;
    dg_config(&c, "chopped_transfer", 2,
              "device.auto_scale = true\ndevice.in_chop_prob = 0\ndevice.transfer_every = 1000\n");
    rpu_tile *t = tl_tile(&c, 1, 1, 5);
    if (!t) return;
    call(t, 1, 1, 1, 1.0f);
    EXPECT_NEAR("auto_scale A", tl_array_at(t, "hidden_weights_0", 0), 31 * g);
    EXPECT_NEAR("auto_scale m_x", tl_state_item(t, "m_x", 0), 1.0);
    EXPECT_NEAR("auto_scale m_d", tl_state_item(t, "m_d", 0), g);
    EXPECT_NEAR("auto_scale lr", tl_state_item(t, "tmp_count_lr", 0), 31.0);
    call_d(t, 1, 1, 1, -2 * g, 1.0f);
    const double md = 0.99 * g + 0.01 * 2 * g;
    EXPECT_NEAR("auto_scale m_d 2", tl_state_item(t, "m_d", 0), md);
    EXPECT_NEAR("auto_scale lr 2", tl_state_item(t, "tmp_count_lr", 0), 31.0 * g / md);
    rpu_tile_destroy(&t);
    /* without auto_scale: lr_cur is the fast lr (1.1.0: fast_lr = 1 whatever the SGD lr) */
    dg_config(&c, "chopped_transfer", 2, "device.in_chop_prob = 0\n");
    t = tl_tile(&c, 1, 1, 5);
    call(t, 1, 1, 1, 0.5f);
    EXPECT_NEAR("fast lr", tl_state_item(t, "tmp_count_lr", 0), 1.0);
    EXPECT_NEAR("fast lr A", tl_array_at(t, "hidden_weights_0", 0), g);
    rpu_tile_destroy(&t);
    /* post-1.1 scale_fast_lr: fast_lr 2 * lr 0.5 */
    dg_config(&c, "chopped_transfer", 2,
              "device.in_chop_prob = 0\ndevice.fast_lr = 2\ndevice.scale_fast_lr = true\n");
    t = tl_tile(&c, 1, 1, 5);
    call(t, 1, 1, 1, 0.5f);
    EXPECT_NEAR("scale_fast_lr", tl_state_item(t, "tmp_count_lr", 0), 1.0);
    rpu_tile_destroy(&t);
}

/* §7.5: transfer_every < 0: period round(num_states(A) / in * |te|) vector updates; Dg with
 * bounds +-1 has 2 / g = 128 states, on 4 columns and te -1: every 32 vectors. */
static void test_auto_period(void) {
    rpu_config c;
    dg_config(&c, "chopped_transfer", 2,
              "device.transfer_every = -1\ndevice.in_chop_prob = 0\n"
              "device.unit_cell_devices.0.w_min = -1\ndevice.unit_cell_devices.0.w_max = 1\n");
    rpu_tile *t = tl_tile(&c, 1, 4, 5);
    if (!t) return;
    call(t, 31, 4, 1, 1.0f);
    CHECK(tl_state_item(t, "transfer_read_calls", 0) == 0, "auto period: %g reads after 31",
          tl_state_item(t, "transfer_read_calls", 0));
    call(t, 1, 4, 1, 1.0f);
    CHECK(tl_state_item(t, "transfer_read_calls", 0) == 1, "auto period: %g reads after 32",
          tl_state_item(t, "transfer_read_calls", 0));
    call(t, 64, 4, 1, 1.0f);
    CHECK(tl_state_item(t, "transfer_read_calls", 0) == 3, "auto period: %g reads after 96",
          tl_state_item(t, "transfer_read_calls", 0));
    rpu_tile_destroy(&t);
}

/* §11.4: chopped defaults (units_in_mbatch false, te 1): one read per vector, T = floor(N /
 * in) completed sweeps after N vectors, the pointer at N mod in; te 2 (a read every second
 * vector): N / 2 reads. */
static void test_chopped_schedule(void) {
    rpu_config c;
    dg_config(&c, "chopped_transfer", 2, NULL);
    rpu_tile *t = tl_tile(&c, 2, 3, 5);
    if (!t) return;
    call(t, 4, 3, 2, 1.0f);
    call(t, 3, 3, 2, 1.0f);
    CHECK(tl_state_item(t, "transfer_read_calls", 0) == 7, "chopped: %g reads after 7 vectors",
          tl_state_item(t, "transfer_read_calls", 0));
    CHECK(tl_state_item(t, "transfer_counter", 0) == 2, "chopped: T = %g after 7 vectors on 3 columns",
          tl_state_item(t, "transfer_counter", 0));
    CHECK(tl_state_item(t, "current_slice_indices", 0) == 1, "chopped: pointer %g",
          tl_state_item(t, "current_slice_indices", 0));
    rpu_tile_destroy(&t);
    dg_config(&c, "dynamic_transfer", 2, "device.transfer_every = 2\n");
    t = tl_tile(&c, 2, 3, 5);
    call(t, 10, 3, 2, 1.0f);
    CHECK(tl_state_item(t, "transfer_read_calls", 0) == 5 && tl_state_item(t, "transfer_counter", 0) == 1,
          "dynamic te 2: %g reads, T %g", tl_state_item(t, "transfer_read_calls", 0),
          tl_state_item(t, "transfer_counter", 0));
    rpu_tile_destroy(&t);
}

/* §11.9: not fully hidden (buffered over 3 devices with gamma 0.5: gamma = [0.25, 0.5, 1];
 * chopped gamma 0.3, 1.1.0 visible weight), after updates, a decaying post-update step and
 * set_weights: W = sum_k gamma_k hidden_weights_k (float tolerance). */
static void test_gamma_invariant(void) {
    static const struct {
        const char *type;
        int n;
        const char *extra;
        float gamma[3];
    } cases[] = {
        {"buffered_transfer", 3, "device.gamma = 0.5\n", {0.25f, 0.5f, 1.0f}},
        {"chopped_transfer", 2, "device.gamma = 0.3\ndevice.in_chop_prob = 0.5\n", {0.3f, 1.0f, 0}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
        rpu_config c;
        char extra[300];
        snprintf(extra, sizeof extra,
                 "%sdevice.unit_cell_devices.0.lifetime = 50\n"
                 "device.unit_cell_devices.1.lifetime = 80\n",
                 cases[k].extra);
        dg_config(&c, cases[k].type, cases[k].n, extra);
        rpu_tile *t = tl_tile(&c, 2, 3, 5);
        if (!t) continue;
        float x[4 * 3], d[4 * 2];
        for (int step = 0; step < 6; ++step) {
            for (int q = 0; q < 12; ++q)
                x[q] = (float)((q + step) % 3 - 1);
            for (int q = 0; q < 8; ++q)
                d[q] = (float)((q * 3 + step) % 5 - 2) * g;
            CHECK_OK(rpu_tile_update(t, x, d, 4, 1.0f));
            if (step == 4) {
                const float w6[6] = {0.1f, -0.2f, 0.3f, 0, 0.05f, -0.4f};
                CHECK_OK(rpu_tile_set_weights(t, w6, RPU_WEIGHTS_STORED));
            } else {
                CHECK_OK(rpu_tile_post_update(t));
            }
            float w[6];
            CHECK_OK(rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED));
            for (int q = 0; q < 6; ++q) {
                double want = 0;
                for (int dv = 0; dv < cases[k].n; ++dv) {
                    char name[32];
                    snprintf(name, sizeof name, "hidden_weights_%d", dv);
                    want += cases[k].gamma[dv] * tl_array_at(t, name, q);
                }
                CHECK(fabs(w[q] - want) < 1e-6, "%s step %d cell %d: W %.9g, sum gamma W_k %.9g",
                      cases[k].type, step, q, (double)w[q], want);
            }
        }
        rpu_tile_destroy(&t);
    }
}

/* §7.8: without choppers, auto_granularity 0 and uncorrected magnitudes, chopped with
 * buffer_granularity b equals buffered with thres_scale b (equal devices) and the same
 * momentum / forget / step / schedule: the same A and C, and buffers related by the units
 * (chopped H counts thresholds: H_buffered = H_chopped * b g). On a 3 x 4 tile with varied
 * gradients, for forget and for momentum 0.3 without forget; lr 0.5. */
static void test_chopped_equals_buffered(void) {
    for (int mode = 0; mode < 2; ++mode) {
        const char *common = mode ? "device.momentum = 0.3\ndevice.forget_buffer = false\n"
                                  : "device.momentum = 0\n";
        char ec[400], eb[400];
        snprintf(ec, sizeof ec, "%sdevice.in_chop_prob = 0\ndevice.buffer_granularity = 1.5\n",
                 common);
        snprintf(eb, sizeof eb, "%sdevice.thres_scale = 1.5\ndevice.units_in_mbatch = false\n",
                 common);
        rpu_config cc, cb;
        dg_config(&cc, "chopped_transfer", 2, ec);
        dg_config(&cb, "buffered_transfer", 2, eb);
        rpu_tile *tc = tl_tile(&cc, 3, 4, 5), *tb = tl_tile(&cb, 3, 4, 5);
        if (!tc || !tb) {
            rpu_tile_destroy(&tc);
            rpu_tile_destroy(&tb);
            continue;
        }
        float x[5 * 4], d[5 * 3];
        for (int step = 0; step < 12; ++step) {
            for (int q = 0; q < 20; ++q)
                x[q] = (float)((q * 7 + step * 3) % 9 - 4) / 4.0f;
            for (int q = 0; q < 15; ++q)
                d[q] = (float)((q * 5 + step) % 7 - 3) * g;
            CHECK_OK(rpu_tile_update(tc, x, d, 5, 0.5f));
            CHECK_OK(rpu_tile_update(tb, x, d, 5, 0.5f));
        }
        const char *names[2] = {"hidden_weights_0", "hidden_weights_1"};
        for (int k = 0; k < 2; ++k)
            CHECK(!memcmp(rpu_tile_device_array_by_name(tc, names[k]),
                          rpu_tile_device_array_by_name(tb, names[k]), 12 * sizeof(float)),
                  "mode %d: %s of chopped and buffered differ", mode, names[k]);
        int moved = 0;
        for (int q = 0; q < 12; ++q) {
            const double hc = tl_array_at(tc, "buffered_FP_weight_0", q) * 1.5 * g;
            EXPECT_NEAR("buffer units", tl_array_at(tb, "buffered_FP_weight_0", q), hc);
            moved += tl_array_at(tb, "hidden_weights_1", q) != 0;
        }
        CHECK(moved > 3, "mode %d: only %d cells of C written", mode, moved);
        rpu_tile_destroy(&tc);
        rpu_tile_destroy(&tb);
    }
}

/* ------------------------------------------------------------------ §11.7 dynamic */

static void test_dynamic_trace(void) {
    rpu_config c;
    dg_config(&c, "dynamic_transfer", 2, "device.in_chop_prob = 0.5\n");
    rpu_tile *t = tl_tile(&c, 1, 1, 5);
    if (!t) return;
    static const float A[6] = {1, 2, 1, 0, 1, 2}, C[6] = {0, 0, 0, 1, 2, 3};
    static const float Rm[6] = {1, 2, 1, 0, 1, 2}, Pm[6] = {0, 0, 2, 2, 0, 0};
    static const int chop[6] = {0, 1, 1, 0, 0, 1};
    for (int v = 0; v < 6; ++v) {
        call(t, 1, 1, 1, 1.0f);
        char what[64];
        snprintf(what, sizeof what, "AGAD vector %d", v + 1);
        EXPECT_NEAR(what, tl_array_at(t, "hidden_weights_0", 0), A[v] * g);
        EXPECT_NEAR(what, tl_weight_at(t, 0), C[v] * g);
        EXPECT_NEAR(what, tl_array_at(t, "buffered_FP_weight", 0), 0);
        EXPECT_NEAR(what, tl_array_at(t, "running_mean_weight", 0), Rm[v] * g); /* beta = 1 */
        EXPECT_NEAR(what, tl_array_at(t, "past_mean_weight", 0), Pm[v] * g);
        CHECK(tl_state_item(t, "in_chopper", 0) == chop[v], "%s: c_in %g", what, tl_state_item(t, "in_chopper", 0));
        CHECK(tl_state_item(t, "transfer_counter", 0) == v + 1, "%s: T", what);
        if (v == 2) EXPECT_NEAR("AGAD: C = 0 after 3 vectors", tl_weight_at(t, 0), 0);
    }
    rpu_tile_destroy(&t);
    /* tail_weightening 1 with Ns 2: beta 0.5, R = 0.5 R + 0.5 y: after 2 vectors
     * R = 0.5 (0.5 g) + 0.5 (2 g) = 1.25 g */
    dg_config(&c, "dynamic_transfer", 2,
              "device.in_chop_prob = 0.5\ndevice.tail_weightening = 1\n");
    t = tl_tile(&c, 1, 1, 5);
    call(t, 2, 1, 1, 1.0f);
    EXPECT_NEAR("AGAD beta 0.5", tl_array_at(t, "running_mean_weight", 0), 1.25 * g);
    rpu_tile_destroy(&t);
}

/* ------------------------------------------------------------------ statistics */

/* Random chopper flips, against binomial bounds of 5 standard deviations (a false failure
 * has probability < 1e-5 per count), N reads each:
 *  - chopped in_chop_prob 0.3, random: the input chopper of the one column flips after a
 *    read with probability 0.3 (one U per read);
 *  - chopped out_chop_prob 0.2 on a 3 x 1 tile (every read completes a sweep): each output
 *    chopper flips with probability 0.2 per read;
 *  - dynamic in_chop_prob 0.25 (Ns = 4) with in_chop_random: at the reads with cs < Ns the
 *    chopper flips with probability 0.25 (and always at cs = Ns). */
static void test_statistics(void) {
    enum { N = 2000 };
    rpu_config c;
    dg_config(&c, "chopped_transfer", 2, "device.in_chop_prob = 0.3\n");
    rpu_tile *t = tl_tile(&c, 1, 1, 5);
    long flips = 0;
    double prev = 0;
    for (int k = 0; t && k < N; ++k) {
        call(t, 1, 1, 1, 1.0f);
        const double s = tl_state_item(t, "in_chopper", 0);
        flips += s != prev;
        prev = s;
    }
    double sd = sqrt(N * 0.3 * 0.7);
    CHECK(fabs((double)flips - 0.3 * N) < 5 * sd, "in_chop_prob 0.3: %ld flips in %d (sd %.1f)",
          flips, N, sd);
    rpu_tile_destroy(&t);

    dg_config(&c, "chopped_transfer", 2, "device.in_chop_prob = 0\ndevice.out_chop_prob = 0.2\n");
    t = tl_tile(&c, 3, 1, 5);
    long of[3] = {0};
    double op[3] = {0};
    for (int k = 0; t && k < N; ++k) {
        call(t, 1, 1, 3, 1.0f);
        for (int o = 0; o < 3; ++o) {
            const double s = tl_state_item(t, "out_chopper", o);
            of[o] += s != op[o];
            op[o] = s;
        }
    }
    sd = sqrt(N * 0.2 * 0.8);
    for (int o = 0; o < 3; ++o)
        CHECK(fabs((double)of[o] - 0.2 * N) < 5 * sd,
              "out_chop_prob 0.2: output %d flipped %ld times in %d (sd %.1f)", o, of[o], N, sd);
    rpu_tile_destroy(&t);

    dg_config(&c, "dynamic_transfer", 2,
              "device.in_chop_prob = 0.25\ndevice.in_chop_random = true\n");
    t = tl_tile(&c, 1, 1, 5);
    long rf = 0, rn = 0, regular_missed = 0;
    prev = 0;
    for (int k = 0; t && k < N; ++k) {
        const int cs = k % 4 + 1; /* T before read k is k */
        call(t, 1, 1, 1, 1.0f);
        const double s = tl_state_item(t, "in_chopper", 0);
        if (cs == 4) {
            regular_missed += s == prev;
        } else {
            rf += s != prev;
            rn++;
        }
        prev = s;
    }
    CHECK(regular_missed == 0, "dynamic: %ld regular switches missed", regular_missed);
    sd = sqrt(rn * 0.25 * 0.75);
    CHECK(fabs((double)rf - 0.25 * rn) < 5 * sd, "dynamic random: %ld flips in %ld (sd %.1f)", rf,
          rn, sd);
    rpu_tile_destroy(&t);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_names();
    test_buffered_traces();
    test_buffer_bounds();
    test_chopped_traces();
    test_chopped_visible_weight();
    test_auto_scale();
    test_auto_period();
    test_chopped_schedule();
    test_chopped_equals_buffered();
    test_gamma_invariant();
    test_dynamic_trace();
    test_statistics();
    return tl_finish();
}
