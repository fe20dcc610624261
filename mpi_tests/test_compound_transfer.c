/* Tests of the transfer compound (Tiki-Taka v1, compound spec §5): the hand-computable traces
 * of §11.3 on the deterministic unit device Dg (§11.1), the transfer counts and pointers of
 * §11.4 / §5.7, set_weights (§5.8, §11.9), the learning-rate rules (1.1.0 fast_lr and the
 * post-1.1 scale_fast_lr), reads through the transfer IO, binomial bounds on the random
 * column selection and the reset probability, and the errors of combinations that need the
 * tile's shape. Tiles are local (no collective). */
#include "rpusim/config.h"
#include "rpusim/tile.h"

#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float g = 0.015625f; /* 2^-6 */

/* A transfer compound of two Dg devices with perfect transfer reads and deterministic
 * transfer writes (§11.1), plus extra lines. */
static void transfer_config(rpu_config *c, const char *extra) {
    CHECK_OK(rpu_config_default(c, RPU_KIND_SINGLE));
    char text[4096];
    int pos = snprintf(text, sizeof text,
                       "device.type = transfer\n"
                       "device.transfer_forward.is_perfect = true\n"
                       "device.transfer_update.pulse_type = deterministic_implicit\n");
    for (int k = 0; k < 2; ++k)
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
    CHECK_OK(rpu_config_parse(c, text, "transfer test"));
}

/* One call of m vectors, each x = [1, 0, ...] (in values), d = [-g, 0, ...] (out values):
 * one UP step of g on A(0, 0) per vector. */
static void call(rpu_tile *t, int m, int in, int out, float lr) {
    float *x = calloc((size_t)m * in, sizeof(float)), *d = calloc((size_t)m * out, sizeof(float));
    for (int v = 0; v < m; ++v) {
        x[(size_t)v * in] = 1.0f;
        d[(size_t)v * out] = -g;
    }
    CHECK_OK(rpu_tile_update(t, x, d, m, lr));
    free(x);
    free(d);
}

/* §11.3 */
static void test_tiki_taka_trace(void) {
    rpu_config c;
    transfer_config(&c, NULL);
    rpu_tile *t = tl_tile(&c, 1, 1, 3);
    if (!t) return;
    for (int k = 1; k <= 4; ++k) {
        call(t, 1, 1, 1, 1.0f);
        EXPECT_NEAR("TTv1 A", tl_hidden_at(t, 0, 0), k * g);
        EXPECT_NEAR("TTv1 W = C", tl_weight_at(t, 0), g * k * (k + 1) / 2);
        EXPECT_NEAR("TTv1 hidden_weights_1 mirrors W", tl_hidden_at(t, 1, 0), g * k * (k + 1) / 2);
    }
    EXPECT_NEAR("TTv1 k = 4: A", tl_hidden_at(t, 0, 0), 0.0625f);
    EXPECT_NEAR("TTv1 k = 4: W", tl_weight_at(t, 0), 0.15625f);
    /* lr = 0: nothing changes, the counter does not advance */
    const uint64_t u = tl_state_item(t, "current_update_idx", 0);
    call(t, 1, 1, 1, 0.0f);
    CHECK(tl_state_item(t, "current_update_idx", 0) == u, "lr 0 advanced the counter");
    EXPECT_NEAR("TTv1 lr 0: W", tl_weight_at(t, 0), 0.15625f);
    EXPECT_NEAR("TTv1 lr 0: A", tl_hidden_at(t, 0, 0), 0.0625f);
    rpu_tile_destroy(&t);

    /* more than 31 calls: the transfer writes at most BL = 31 pulses */
    transfer_config(&c, NULL);
    t = tl_tile(&c, 1, 1, 3);
    for (int k = 1; k <= 33; ++k)
        call(t, 1, 1, 1, 1.0f);
    EXPECT_NEAR("TTv1 33 calls: W", tl_weight_at(t, 0), g * (31 * 32 / 2 + 31 + 31));
    rpu_tile_destroy(&t);

    /* gamma 0.5: not fully hidden, W = 0.5 A + C */
    transfer_config(&c, "device.gamma = 0.5\n");
    t = tl_tile(&c, 1, 1, 3);
    for (int k = 1; k <= 4; ++k) {
        call(t, 1, 1, 1, 1.0f);
        EXPECT_NEAR("gamma 0.5 W", tl_weight_at(t, 0), 0.5f * k * g + g * k * (k + 1) / 2);
        EXPECT_NEAR("gamma 0.5 C", tl_hidden_at(t, 1, 0), g * k * (k + 1) / 2);
    }
    rpu_tile_destroy(&t);

    /* 1 x 2 tile, x = [1, 0]: the pointer alternates columns 0, 1 (column 1 of A is 0) */
    transfer_config(&c, NULL);
    t = tl_tile(&c, 1, 2, 3);
    for (int k = 1; k <= 4; ++k)
        call(t, 1, 2, 1, 1.0f);
    EXPECT_NEAR("1x2 C00", tl_weight_at(t, 0), 4 * g);
    EXPECT_NEAR("1x2 C01", tl_weight_at(t, 1), 0);
    EXPECT_NEAR("1x2 A00", tl_hidden_at(t, 0, 0), 4 * g);
    CHECK(tl_state_item(t, "current_slice_indices", 0) == 0, "pointer %llu",
          (unsigned long long)tl_state_item(t, "current_slice_indices", 0));
    rpu_tile_destroy(&t);
}

/* Transfers so far: one read per transfer (n_reads 1), counted by the read calls. */
static uint64_t transfers(rpu_tile *t) {
    return tl_state_item(t, "transfer_read_calls", 0);
}

/* §11.4 / §5.7 on a 2 x 3 tile */
static void test_counts(void) {
    static const struct {
        const char *extra;
        int m[3];
        uint64_t want[3]; /* transfers after each call */
    } cases[] = {
        {"device.transfer_every = 1\n", {32, 32, 32}, {1, 2, 3}},
        {"device.transfer_every = 0.5\n", {10, 10, 10}, {2, 4, 6}},
        {"device.transfer_every = 2\n", {8, 8, 8}, {0, 1, 1}},
        {"device.transfer_every = 0.25\n", {10, 10, 10}, {3, 6, 10}}, /* E = 3: 3, 6, 9, 12, .. */
        {"device.transfer_every = 0.4\ndevice.units_in_mbatch = false\n", {10, 10, 10}, {0, 0, 0}},
        {"device.transfer_every = 2.5\ndevice.units_in_mbatch = false\n", {10, 10, 10}, {3, 6, 10}},
        {"device.transfer_every = 0.5\ndevice.units_in_mbatch = false\n", {4, 4, 4}, {4, 8, 12}},
        {"device.transfer_every = 1\n", {10, 7, 3}, {1, 2, 3}}, /* at u = 10, 14, 18 */
        {"device.transfer_every = 0\n", {10, 10, 10}, {0, 0, 0}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
        rpu_config c;
        transfer_config(&c, cases[k].extra);
        rpu_tile *t = tl_tile(&c, 2, 3, 3);
        if (!t) continue;
        for (int call_i = 0; call_i < 3; ++call_i) {
            call(t, cases[k].m[call_i], 3, 2, 1.0f);
            CHECK(transfers(t) == cases[k].want[call_i],
                  "case %zu (%s) call %d: %llu transfers, "
                  "want %llu",
                  k, cases[k].extra, call_i + 1, (unsigned long long)transfers(t),
                  (unsigned long long)cases[k].want[call_i]);
        }
        /* the pointer: transfers * n_reads mod in */
        CHECK(tl_state_item(t, "current_slice_indices", 0) == cases[k].want[2] % 3, "case %zu: pointer %llu",
              k, (unsigned long long)tl_state_item(t, "current_slice_indices", 0));
        rpu_tile_destroy(&t);
    }
    /* several reads per transfer wrap around the columns: 2 reads of 3 columns: pointer
     * 0 -> 2 -> 1 (reads 2, 0) -> 0 */
    rpu_config c;
    transfer_config(&c, "device.n_reads_per_transfer = 2\n");
    rpu_tile *t = tl_tile(&c, 2, 3, 3);
    const uint64_t want[3] = {2, 1, 0};
    for (int call_i = 0; call_i < 3; ++call_i) {
        call(t, 4, 3, 2, 1.0f);
        CHECK(tl_state_item(t, "current_slice_indices", 0) == want[call_i], "n_reads 2: pointer %llu",
              (unsigned long long)tl_state_item(t, "current_slice_indices", 0));
    }
    CHECK(transfers(t) == 6, "n_reads 2: %llu reads", (unsigned long long)transfers(t));
    rpu_tile_destroy(&t);
    /* rows: the pointer runs over the rows */
    transfer_config(&c, "device.transfer_columns = false\n");
    t = tl_tile(&c, 2, 3, 3);
    call(t, 4, 3, 2, 1.0f);
    CHECK(tl_state_item(t, "current_slice_indices", 0) == 1, "rows: pointer %llu",
          (unsigned long long)tl_state_item(t, "current_slice_indices", 0));
    rpu_tile_destroy(&t);
}

/* §5.5 learning rates: 1.1.0 fast_lr = 1 ignores the SGD lr for A; post-1.1 scale_fast_lr
 * multiplies it; the transfer lr is scaled by the SGD lr (scale_transfer_lr). */
static void test_learning_rates(void) {
    rpu_config c;
    /* SGD lr 0.5, fast_lr 1 (1.1.0): A still gains exactly g per vector; the transfer (lr
     * 0.5) writes rint(BL p_d p_x) = rint(0.5 k) pulses */
    transfer_config(&c, NULL);
    rpu_tile *t = tl_tile(&c, 1, 1, 3);
    call(t, 1, 1, 1, 0.5f);
    call(t, 1, 1, 1, 0.5f);
    EXPECT_NEAR("fast_lr absolute: A", tl_hidden_at(t, 0, 0), 2 * g);
    rpu_tile_destroy(&t);
    /* post-1.1 scale_fast_lr: the A update uses fast_lr * lr = 2 * 0.5 = 1: one g again */
    transfer_config(&c, "device.fast_lr = 2\ndevice.scale_fast_lr = true\n");
    t = tl_tile(&c, 1, 1, 3);
    call(t, 1, 1, 1, 0.5f);
    EXPECT_NEAR("scale_fast_lr: A", tl_hidden_at(t, 0, 0), g);
    rpu_tile_destroy(&t);
    /* without scaling, fast_lr 2 gives two steps per vector */
    transfer_config(&c, "device.fast_lr = 2\n");
    t = tl_tile(&c, 1, 1, 3);
    call(t, 1, 1, 1, 0.5f);
    EXPECT_NEAR("fast_lr 2: A", tl_hidden_at(t, 0, 0), 2 * g);
    rpu_tile_destroy(&t);
    /* transfer_lr 2, scale_transfer_lr false: the write targets 2 * A */
    transfer_config(&c, "device.transfer_lr = 2\ndevice.scale_transfer_lr = false\n");
    t = tl_tile(&c, 1, 1, 3);
    call(t, 1, 1, 1, 0.25f);
    EXPECT_NEAR("transfer_lr 2: C", tl_weight_at(t, 0), 2 * g);
    rpu_tile_destroy(&t);
}

/* §5.8 / §11.9: set_weights zeroes the fast array and writes W / gamma_last to the last */
static void test_set_weights(void) {
    rpu_config c;
    transfer_config(&c, "device.gamma = 0.5\n");
    rpu_tile *t = tl_tile(&c, 1, 2, 3);
    call(t, 3, 2, 1, 1.0f);
    CHECK(tl_hidden_at(t, 0, 0) != 0, "A trained");
    const float w[2] = {0.3f, -0.2f};
    CHECK_OK(rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED));
    EXPECT_NEAR("set: A", tl_hidden_at(t, 0, 0), 0);
    EXPECT_NEAR("set: C", tl_hidden_at(t, 1, 1), -0.2f);
    EXPECT_NEAR("set: W", tl_weight_at(t, 0), 0.3f);
    CHECK(tl_state_item(t, "current_update_idx", 0) == 0 && tl_state_item(t, "current_slice_indices", 0) == 0,
          "set_weights resets the counters");
    rpu_tile_destroy(&t);
    /* gamma_vec [1, 2]: C = W / 2 */
    transfer_config(&c, "device.gamma_vec = 1, 2\n");
    t = tl_tile(&c, 1, 2, 3);
    CHECK_OK(rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED));
    EXPECT_NEAR("gamma_vec: C", tl_hidden_at(t, 1, 0), 0.15f);
    EXPECT_NEAR("gamma_vec: W", tl_weight_at(t, 0), 0.3f);
    rpu_tile_destroy(&t);
    /* three devices: geometric periods (out / n_reads)^k, last period 0 (no_self_transfer):
     * 1 -> 2 transfers happen every 2 vectors on a 2 x 2 tile with te 1 */
    transfer_config(&c, "device.unit_cell_devices.2.type = constant_step\n"
                        "device.units_in_mbatch = false\n");
    t = tl_tile(&c, 2, 2, 3);
    if (t) {
        call(t, 4, 2, 2, 1.0f);
        CHECK(transfers(t) == 4 + 2, "3 devices: %llu reads, want 6",
              (unsigned long long)transfers(t));
        CHECK(tl_state_item(t, "current_slice_indices", 1) == 0 && tl_state_item(t, "current_slice_indices", 0) == 0,
              "3 devices pointers");
    }
    rpu_tile_destroy(&t);
}

/* The transfer reads go through the tile's IO model with transfer_forward: an ADC step of 1
 * (out_bound 1, out_res 0.5, no output noise) reads |A| < 0.5 as 0, so nothing is
 * transferred, while perfect reads transfer (§11.3). */
static void test_read_io(void) {
    rpu_config c;
    transfer_config(&c, "device.transfer_forward.is_perfect = false\n"
                        "device.transfer_forward.out_noise = 0\n"
                        "device.transfer_forward.out_bound = 1\n"
                        "device.transfer_forward.out_res = 0.5\n");
    rpu_tile *t = tl_tile(&c, 1, 1, 3);
    for (int k = 1; k <= 4; ++k)
        call(t, 1, 1, 1, 1.0f);
    EXPECT_NEAR("coarse ADC: A", tl_hidden_at(t, 0, 0), 4 * g);
    EXPECT_NEAR("coarse ADC: nothing transferred", tl_weight_at(t, 0), 0);
    CHECK(transfers(t) == 4, "coarse ADC: %llu reads", (unsigned long long)transfers(t));
    rpu_tile_destroy(&t);
    /* out_res 0.0078125 (= 1/128 of 2 out_bound 1: steps of 2^-6 = g): reads exact multiples */
    transfer_config(&c, "device.transfer_forward.is_perfect = false\n"
                        "device.transfer_forward.out_noise = 0\n"
                        "device.transfer_forward.out_bound = 1\n"
                        "device.transfer_forward.out_res = 0.0078125\n");
    t = tl_tile(&c, 1, 1, 3);
    for (int k = 1; k <= 4; ++k)
        call(t, 1, 1, 1, 1.0f);
    EXPECT_NEAR("fine ADC: W", tl_weight_at(t, 0), 0.15625f);
    rpu_tile_destroy(&t);
}

/* Stochastic parts (compound stream), against binomial bounds of 5 standard deviations
 * (a false failure has probability < 1e-5 per count):
 *  - random_selection: the column read by a transfer is uniform over the 4 columns; the
 *    pointer after a transfer is (column + 1) mod 4, so its values count the choices;
 *  - with_reset_prob 0.3: A (reset 0, reset_std 0) is reset after a read with probability
 *    0.3; a call that ends with A = 0 counts one reset. N = 2000 calls each. */
static void test_statistics(void) {
    enum { N = 2000 };
    rpu_config c;
    transfer_config(&c, "device.random_selection = true\n");
    rpu_tile *t = tl_tile(&c, 1, 4, 3);
    long hist[4] = {0};
    for (int k = 0; t && k < N; ++k) {
        call(t, 1, 4, 1, 1.0f);
        const uint64_t s = tl_state_item(t, "current_slice_indices", 0);
        if (s < 4) hist[s]++;
    }
    const double sd = sqrt(N * 0.25 * 0.75);
    for (int j = 0; j < 4; ++j)
        CHECK(fabs((double)hist[j] - N / 4.0) < 5 * sd,
              "random_selection: column %d chosen %ld times of %d (sd %.1f)", (j + 3) % 4, hist[j],
              N, sd);
    rpu_tile_destroy(&t);

    transfer_config(&c, "device.with_reset_prob = 0.3\n"
                        "device.unit_cell_devices.0.reset = 0\n"
                        "device.unit_cell_devices.0.reset_std = 0\n");
    t = tl_tile(&c, 1, 1, 3);
    long resets = 0;
    for (int k = 0; t && k < N; ++k) {
        call(t, 1, 1, 1, 1.0f);
        resets += tl_hidden_at(t, 0, 0) == 0.0f;
    }
    const double sd2 = sqrt(N * 0.3 * 0.7);
    CHECK(fabs((double)resets - 0.3 * N) < 5 * sd2,
          "with_reset_prob 0.3: %ld resets of %d (sd %.1f)", resets, N, sd2);
    rpu_tile_destroy(&t);
}

static void test_errors(void) {
    rpu_config c;
    transfer_config(&c, "device.n_reads_per_transfer = 4\n");
    rpu_tile_params p;
    rpu_tile_params_default(&p, 5, 3);
    rpu_tile *t = NULL;
    rpu_clear_error();
    CHECK_STATUS(rpu_tile_create(&p, &c, &t), RPU_ERR_CONFIG);
    CHECK(strstr(rpu_last_error(), "device.n_reads_per_transfer") != NULL &&
              strstr(rpu_last_error(), "3 columns") != NULL,
          "message: %s", rpu_last_error());
    transfer_config(&c, "device.transfer_forward.is_perfect = false\n"
                        "device.transfer_forward.ir_drop = 1\n");
    CHECK_STATUS(rpu_tile_create(&p, &c, &t), RPU_ERR_UNSUPPORTED);
    CHECK(strstr(rpu_last_error(), "device.transfer_forward.ir_drop") != NULL, "message: %s",
          rpu_last_error());
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_tiki_taka_trace();
    test_counts();
    test_learning_rates();
    test_set_weights();
    test_read_io();
    test_statistics();
    test_errors();
    return tl_finish();
}
