/* Tests of the mixed-precision compound (compound spec §9): the worked trace of §11.8 on the
 * deterministic unit device Dg (§11.1) and its quantiser example, the transfer counts of
 * §11.4 (through the row pointer), the invariants of §11.9 that concern it (|chi| < eps
 * right after a row's transfer, W changes only at transfers, lr 0 changes nothing), the
 * hidden-parameter names (§1.3 rule 4), set_weights (§9.5), a binomial bound on stochastic
 * rounding, the random start row, and the errors of wrong combinations, each naming the key.
 * Tiles are local (no collective). */
#include "rpusim/config.h"
#include "rpusim/tile.h"

#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float g = 0.015625f; /* 2^-6 */

/* mixed_precision over one Dg device (§11.1), plus extra lines. */
static void mp_config(rpu_config *c, const char *extra) {
    CHECK_OK(rpu_config_default(c, RPU_KIND_SINGLE));
    char text[4096];
    int pos = snprintf(text, sizeof text,
                       "device.type = mixed_precision\n"
                       "device.unit_cell_devices.0.type = constant_step\n"
                       "device.unit_cell_devices.0.dw_min = 0.015625\n"
                       "device.unit_cell_devices.0.dw_min_dtod = 0\n"
                       "device.unit_cell_devices.0.dw_min_std = 0\n"
                       "device.unit_cell_devices.0.up_down_dtod = 0\n"
                       "device.unit_cell_devices.0.w_min = -100\n"
                       "device.unit_cell_devices.0.w_max = 100\n"
                       "device.unit_cell_devices.0.w_min_dtod = 0\n"
                       "device.unit_cell_devices.0.w_max_dtod = 0\n");
    if (extra) snprintf(text + pos, sizeof text - (size_t)pos, "%s", extra);
    CHECK_OK(rpu_config_parse(c, text, "mixed_precision test"));
}

static const float *chi_of(rpu_tile *t) {
    const float *a = rpu_tile_device_array_by_name(t, "hidden_weights_chi");
    CHECK(a != NULL, "no array hidden_weights_chi");
    return a;
}

/* §11.8: d = 1 row, x = 2 columns, eps = g, lambda = 1, no bins, transfer_every 1, lr 1 */
static void test_trace(void) {
    rpu_config c;
    mp_config(&c, NULL);
    rpu_tile *t = tl_tile(&c, 1, 2, 5);
    if (!t) return;
    /* call 1 (m = 2): chi = [1.5g, 0.5g], W = 0 (no transfer yet) */
    const float x1[4] = {1, 0, 0, 1}, d1[2] = {1.5f * g, 0.5f * g};
    CHECK_OK(rpu_tile_update(t, x1, d1, 2, 1.0f));
    EXPECT_NEAR("call 1 chi_0", chi_of(t)[0], 1.5f * g);
    EXPECT_NEAR("call 1 chi_1", chi_of(t)[1], 0.5f * g);
    EXPECT_NEAR("call 1 W_0", tl_weight_at(t, 0), 0);
    EXPECT_NEAR("call 1 W_1", tl_weight_at(t, 1), 0);
    CHECK(tl_state_item(t, "current_update_index", 0) == 2, "v = %llu after call 1",
          (unsigned long long)tl_state_item(t, "current_update_index", 0));
    /* call 2: zero vector -> transfer at v = 2 (n = [1, 0]); then chi_1 += 0.5g */
    const float x2[4] = {0, 0, 0, 1}, d2[2] = {0, 0.5f * g};
    CHECK_OK(rpu_tile_update(t, x2, d2, 2, 1.0f));
    EXPECT_NEAR("call 2 W_0", tl_weight_at(t, 0), -g);
    EXPECT_NEAR("call 2 W_1", tl_weight_at(t, 1), 0);
    EXPECT_NEAR("call 2 chi_0", chi_of(t)[0], 0.5f * g);
    EXPECT_NEAR("call 2 chi_1", chi_of(t)[1], g);
    /* call 3, first vector zero -> transfer n = [0, 1] */
    const float x3[4] = {0, 0, 0, 0}, d3[2] = {0, 0};
    CHECK_OK(rpu_tile_update(t, x3, d3, 2, 1.0f));
    EXPECT_NEAR("call 3 W_0", tl_weight_at(t, 0), -g);
    EXPECT_NEAR("call 3 W_1", tl_weight_at(t, 1), -g);
    EXPECT_NEAR("call 3 chi_0", chi_of(t)[0], 0.5f * g);
    EXPECT_NEAR("call 3 chi_1", chi_of(t)[1], 0);
    /* lr = 0: nothing changes, no counter moves */
    const uint64_t v = tl_state_item(t, "current_update_index", 0);
    const float x4[2] = {1, 1}, d4[1] = {5 * g};
    CHECK_OK(rpu_tile_update(t, x4, d4, 1, 0.0f));
    CHECK(tl_state_item(t, "current_update_index", 0) == v, "lr 0 advanced the counter");
    EXPECT_NEAR("lr 0 chi_0", chi_of(t)[0], 0.5f * g);
    EXPECT_NEAR("lr 0 W_1", tl_weight_at(t, 1), -g);
    /* set_weights: chi and the counters zeroed (§9.5), the device takes W */
    const float w[2] = {0.25f, -0.5f};
    CHECK_OK(rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED));
    EXPECT_NEAR("set_weights chi_0", chi_of(t)[0], 0);
    CHECK(tl_state_item(t, "current_update_index", 0) == 0 && tl_state_item(t, "current_row_index", 0) == 0,
          "set_weights kept the counters");
    EXPECT_NEAR("set_weights W_0", tl_weight_at(t, 0), 0.25f);
    EXPECT_NEAR("set_weights W_1", tl_weight_at(t, 1), -0.5f);
    rpu_tile_destroy(&t);
}

/* §11.8 quantiser: 2x3 tile, n_x_bins 5, n_d_bins 3, deterministic rounding */
static void test_quantiser(void) {
    rpu_config c;
    mp_config(&c, "device.n_x_bins = 5\ndevice.n_d_bins = 3\n"
                  "device.stoc_round_x = false\ndevice.stoc_round_d = false\n");
    rpu_tile *t = tl_tile(&c, 2, 3, 5);
    if (!t) return;
    const float x[3] = {0.3f, -1.0f, 0.6f}, d[2] = {0.2f, -0.05f};
    CHECK_OK(rpu_tile_update(t, x, d, 1, 1.0f));
    const float *chi = chi_of(t);
    const float want[6] = {0.1f, -0.2f, 0.1f, 0, 0, 0};
    for (int k = 0; k < 6; ++k)
        EXPECT_NEAR("quantised chi", chi[k], want[k]);
    rpu_tile_destroy(&t);
}

/* §11.4: transfers after V vectors = floor((V - 1) / (T m)); one row per transfer, so the
 * row pointer counts them (mod rows). */
static void test_counts(void) {
    static const struct {
        int T, m, calls;
    } cases[] = {{1, 1, 5}, {2, 3, 3}, {2, 3, 20}, {3, 2, 10}, {1, 4, 7}};
    for (size_t q = 0; q < sizeof cases / sizeof cases[0]; ++q) {
        char extra[128];
        snprintf(extra, sizeof extra,
                 "device.transfer_every = %d\ndevice.n_rows_per_transfer = 1\n", cases[q].T);
        rpu_config c;
        mp_config(&c, extra);
        const int R = 64, C = 2, m = cases[q].m;
        rpu_tile *t = tl_tile(&c, R, C, 5);
        if (!t) return;
        float *x = calloc((size_t)m * C, sizeof(float)), *d = calloc((size_t)m * R, sizeof(float));
        for (int v = 0; v < m; ++v)
            x[(size_t)v * C] = 1.0f;
        d[0] = g; /* something to transfer now and then */
        for (int k = 0; k < cases[q].calls; ++k)
            CHECK_OK(rpu_tile_update(t, x, d, m, 1.0f));
        const uint64_t V = (uint64_t)cases[q].calls * (uint64_t)m;
        const uint64_t want = (V - 1) / (uint64_t)(cases[q].T * m);
        CHECK(tl_state_item(t, "current_row_index", 0) == want % (uint64_t)R,
              "T %d m %d calls %d: row pointer %llu, want %llu transfers", cases[q].T, m,
              cases[q].calls, (unsigned long long)tl_state_item(t, "current_row_index", 0),
              (unsigned long long)want);
        CHECK(tl_state_item(t, "current_update_index", 0) == V, "vector counter");
        free(x);
        free(d);
        rpu_tile_destroy(&t);
    }
    /* transfer_every 0 and n_rows_per_transfer 0: never */
    static const char *const never[] = {"device.transfer_every = 0\n",
                                        "device.n_rows_per_transfer = 0\n"};
    for (int q = 0; q < 2; ++q) {
        rpu_config c;
        mp_config(&c, never[q]);
        rpu_tile *t = tl_tile(&c, 1, 1, 5);
        if (!t) return;
        const float x[1] = {1}, d[1] = {3 * g};
        for (int k = 0; k < 4; ++k)
            CHECK_OK(rpu_tile_update(t, x, d, 1, 1.0f));
        EXPECT_NEAR("never: W", tl_weight_at(t, 0), 0);
        EXPECT_NEAR("never: chi", chi_of(t)[0], 12 * g);
        rpu_tile_destroy(&t);
    }
}

/* §11.9: right after a full transfer |chi| < eps everywhere; W changes only at transfers.
 * Noisy default constant_step device, random x and d, 3 vectors per call, transfer every
 * 2 calls: the first vector of every second call transfers all rows. */
static void test_invariants(void) {
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_parse(&c,
                              "device.type = mixed_precision\ndevice.transfer_every = 2\n"
                              "device.unit_cell_devices.0.type = constant_step\n",
                              "invariants"));
    const int R = 5, C = 7, m = 3;
    rpu_tile *t = tl_tile(&c, R, C, 5);
    if (!t) return;
    const float eps = rpu_tile_granularity(t);
    float x[3 * 7], d[3 * 5], w0[35], w1[35];
    int transfers = 0, changed_without = 0;
    for (int k = 0; k < 12; ++k) {
        tl_fill_uniform(x, m * C, -1, 1, 7, (uint64_t)(2 * k));
        tl_fill_uniform(d, m * R, -0.05f, 0.05f, 7, (uint64_t)(2 * k + 1));
        CHECK_OK(rpu_tile_get_weights(t, w0, RPU_WEIGHTS_STORED));
        const uint64_t v = tl_state_item(t, "current_update_index", 0);
        const bool due = v > 0 && v % (2u * m) == 0;
        CHECK_OK(rpu_tile_update(t, x, d, m, 0.5f));
        CHECK_OK(rpu_tile_get_weights(t, w1, RPU_WEIGHTS_STORED));
        const bool moved = memcmp(w0, w1, sizeof w0) != 0;
        if (due) {
            ++transfers;
            /* chi now = residual + the call's two later vectors: take them out again */
            const float *chi = chi_of(t);
            int bad = 0;
            for (int i = 0; i < R; ++i)
                for (int j = 0; j < C; ++j) {
                    float later = 0;
                    for (int u = 1; u < m; ++u)
                        later += 0.5f * d[u * R + i] * x[u * C + j];
                    bad += fabsf(chi[i * C + j] - later) >= eps * (1 + 1e-4f);
                }
            CHECK(bad == 0, "call %d: %d residuals |chi| >= eps after the transfer", k, bad);
        } else {
            changed_without += moved;
        }
    }
    CHECK(transfers == 5, "%d transfers in 12 calls of 3 with transfer_every 2", transfers);
    CHECK(changed_without == 0, "W changed in %d calls without a transfer", changed_without);
    rpu_tile_destroy(&t);
}

/* §1.3 rule 4: the analog device's names unsuffixed, then hidden_weights_chi (rpusim lists
 * the arrays a device uses; aihwkit lists all 8 of a pulsed device). */
static void test_names(void) {
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_parse(&c,
                              "device.type = mixed_precision\n"
                              "device.unit_cell_devices.0.type = soft_bounds\n"
                              "device.unit_cell_devices.0.lifetime = 100\n",
                              "names"));
    rpu_tile *t = tl_tile(&c, 3, 4, 5);
    if (!t) return;
    const int n = rpu_tile_device_array_count(t);
    const char *last = NULL;
    rpu_tile_device_array(t, n - 1, &last);
    CHECK(last && strcmp(last, "hidden_weights_chi") == 0, "last array %s", last ? last : "-");
    static const char *const want[] = {"max_bound",    "min_bound", "dwmin_up",  "dwmin_down",
                                       "decay_scales", "slope_up",  "slope_down"};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; ++k)
        CHECK(rpu_tile_device_array_by_name(t, want[k]) != NULL, "no array %s", want[k]);
    for (int k = 0; k < n; ++k) {
        const char *name = NULL;
        rpu_tile_device_array(t, k, &name);
        CHECK(name && !strstr(name, "_0") && strcmp(name, "hidden_weights") != 0,
              "array %d named %s (suffixed or the visible weight)", k, name ? name : "-");
    }
    /* 4 bytes of chi per cell on top of the device's */
    rpu_config s;
    CHECK_OK(rpu_config_default(&s, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_parse(&s, "device.type = soft_bounds\ndevice.lifetime = 100\n", "single"));
    rpu_tile *ts = tl_tile(&s, 3, 4, 5);
    if (ts)
        CHECK(rpu_tile_bytes_per_cell(t) == rpu_tile_bytes_per_cell(ts) + 4.0,
              "bytes per cell %g vs single %g", rpu_tile_bytes_per_cell(t),
              rpu_tile_bytes_per_cell(ts));
    rpu_tile_destroy(&ts);
    rpu_tile_destroy(&t);
}

/* Stochastic rounding is unbiased: x = [0.3, 1] with 5 bins -> wx = 0.5, x/wx = 0.6 rounds to
 * 1 with probability 0.6 (else 0). Over N vectors with d = 1, chi_0 / (0.5 N) estimates it:
 * within 5 standard deviations sqrt(0.24 / N). Also the random start row: with one row per
 * transfer and random_row, the rows visited are spread (every row of 8 hit in 400 draws,
 * probability of a miss < 8 (7/8)^400 ~ 1e-22). */
static void test_stochastic(void) {
    rpu_config c;
    mp_config(&c, "device.n_x_bins = 5\ndevice.transfer_every = 0\n");
    rpu_tile *t = tl_tile(&c, 1, 2, 5);
    if (!t) return;
    const int N = 4000;
    float *x = malloc(sizeof(float) * 2 * (size_t)N), *d = malloc(sizeof(float) * (size_t)N);
    for (int v = 0; v < N; ++v) {
        x[2 * v] = 0.3f;
        x[2 * v + 1] = 1.0f;
        d[v] = 1.0f;
    }
    CHECK_OK(rpu_tile_update(t, x, d, N, 1.0f));
    const double p = chi_of(t)[0] / (0.5 * N);
    CHECK(fabs(p - 0.6) < 5 * sqrt(0.24 / N), "stochastic rounding: P(1) = %g, want 0.6", p);
    EXPECT_NEAR("x = max stays exact", chi_of(t)[1], (float)N);
    free(x);
    free(d);
    rpu_tile_destroy(&t);

    mp_config(&c, "device.n_rows_per_transfer = 1\ndevice.random_row = true\n");
    const int R = 8;
    t = tl_tile(&c, R, 1, 5);
    if (!t) return;
    int hit[8] = {0};
    const float x1[1] = {1};
    float d1[8];
    for (int k = 0; k < 400; ++k) {
        for (int i = 0; i < R; ++i)
            d1[i] = g; /* every row has one count to move */
        CHECK_OK(rpu_tile_update(t, x1, d1, 1, 1.0f));
        if (k == 0) continue;
        /* the row transferred is the one before the pointer */
        const int r = ((int)tl_state_item(t, "current_row_index", 0) + R - 1) % R;
        hit[r]++;
    }
    for (int i = 0; i < R; ++i)
        CHECK(hit[i] > 0, "random_row never chose row %d", i);
    rpu_tile_destroy(&t);
}

/* Wrong combinations, each naming the key. */
static void test_errors(void) {
    rpu_config c;
    mp_config(&c, NULL);
    rpu_clear_error();
    CHECK(rpu_config_set(&c, "device.n_x_bins", "1") == RPU_OK, "n_x_bins 1 set");
    CHECK(rpu_config_validate(&c) == RPU_ERR_CONFIG && strstr(rpu_last_error(), "device.n_x_bins"),
          "n_x_bins 1: %s", rpu_last_error());
    mp_config(&c, "device.transfer_every = 1.5\n");
    CHECK(rpu_config_validate(&c) == RPU_ERR_CONFIG &&
              strstr(rpu_last_error(), "device.transfer_every"),
          "transfer_every 1.5: %s", rpu_last_error());
    mp_config(&c, "device.unit_cell_devices.1.type = constant_step\n");
    CHECK(rpu_config_validate(&c) == RPU_ERR_CONFIG &&
              strstr(rpu_last_error(), "device.unit_cell_devices"),
          "two devices: %s", rpu_last_error());
    CHECK(rpu_config_set(&c, "device.fast_lr", "0.5") == RPU_ERR_CONFIG &&
              strstr(rpu_last_error(), "device.fast_lr") &&
              strstr(rpu_last_error(), "mixed_precision"),
          "fast_lr on mixed_precision: %s", rpu_last_error());
    CHECK(rpu_config_set(&c, "device.n_rows_per_transfer", "-2") == RPU_ERR_CONFIG &&
              strstr(rpu_last_error(), "device.n_rows_per_transfer"),
          "n_rows_per_transfer -2: %s", rpu_last_error());
    rpu_config tr;
    CHECK_OK(rpu_config_default(&tr, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_set(&tr, "device.type", "transfer"));
    CHECK(rpu_config_set(&tr, "device.n_x_bins", "3") == RPU_ERR_CONFIG &&
              strstr(rpu_last_error(), "device.n_x_bins") &&
              strstr(rpu_last_error(), "mixed_precision"),
          "n_x_bins on transfer: %s", rpu_last_error());
    /* a zero granularity of the device and none given */
    mp_config(&c, "device.unit_cell_devices.0.dw_min = 0\n");
    rpu_tile_params p;
    rpu_tile_params_default(&p, 2, 2);
    rpu_tile *t = NULL;
    rpu_status s = rpu_tile_create(&p, &c, &t);
    CHECK(s != RPU_OK && strstr(rpu_last_error(), "device.granularity"), "zero granularity: %s",
          rpu_last_error());
    rpu_tile_destroy(&t);
    /* with device.granularity it works, and epsilon is that value */
    mp_config(&c, "device.granularity = 0.5\n");
    s = rpu_tile_create(&p, &c, &t);
    CHECK(s == RPU_OK, "granularity given: %s", rpu_last_error());
    if (t) {
        const float x[2] = {1, 0}, d[2] = {0.75f, 0};
        CHECK_OK(rpu_tile_update(t, x, d, 1, 1.0f));
        CHECK_OK(rpu_tile_update(t, x, d, 1, 1.0f));
        /* transfer at v = 1 took trunc(1.5 / 0.5) = 3 units out of chi */
        EXPECT_NEAR("eps = granularity: chi", chi_of(t)[0], 0);
    }
    rpu_tile_destroy(&t);
    mp_config(&c, "update.pulse_type = none\n");
    s = rpu_tile_create(&p, &c, &t);
    CHECK(s == RPU_ERR_CONFIG && strstr(rpu_last_error(), "update.pulse_type"),
          "pulse_type none: %s", rpu_last_error());
    rpu_tile_destroy(&t);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_trace();
    test_quantiser();
    test_counts();
    test_invariants();
    test_names();
    test_stochastic();
    test_errors();
    return tl_finish();
}
