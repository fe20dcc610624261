/* Tests of the compound devices vector, reference and one_sided (compound spec §2-§4):
 * the hand-computable cases of §11.2 on the deterministic unit device Dg of §11.1, the
 * invariants of §11.9 that apply, the hidden-parameter names (§1.3), construction keyed per
 * sub-device, the random device choice against a binomial bound, and the engine against
 * the slot-by-slot reference of mpi_tests/ref_compound.c. Tiles are local (no collective). */
#include "rpusim/config.h"
#include "rpusim/tile.h"

#include "ref_compound.h"
#include "testlib.h"
#include "tile_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Dg of §11.1: a constant step of g = 2^-6 without any variation, bounds +-100 */
static const float g = 0.015625f;
static const char *const Dg = "type = constant_step\n"
                              "dw_min = 0.015625\n"
                              "dw_min_dtod = 0\n"
                              "dw_min_std = 0\n"
                              "up_down = 0\n"
                              "up_down_dtod = 0\n"
                              "w_min = -100\n"
                              "w_max = 100\n"
                              "w_min_dtod = 0\n"
                              "w_max_dtod = 0\n";

/* Config text: device.type = type, then n sub-devices of the text dev (each line prefixed
 * with device.unit_cell_devices.k.), then extra lines. */
static void make_config(rpu_config *c, const char *type, int n, const char *dev,
                        const char *extra) {
    CHECK_OK(rpu_config_default(c, RPU_KIND_SINGLE));
    char text[8192];
    int pos = snprintf(text, sizeof text, "device.type = %s\n", type);
    for (int k = 0; k < n; ++k) {
        const char *p = dev;
        while (*p) {
            const char *nl = strchr(p, '\n');
            int len = nl ? (int)(nl - p) : (int)strlen(p);
            pos += snprintf(text + pos, sizeof text - (size_t)pos,
                            "device.unit_cell_devices.%d.%.*s\n", k, len, p);
            p += len + (nl ? 1 : 0);
        }
    }
    if (extra) pos += snprintf(text + pos, sizeof text - (size_t)pos, "%s", extra);
    CHECK_OK(rpu_config_parse(c, text, type));
}

static rpu_tile *make_tile(const rpu_config *c, int out, int in, uint64_t seed) {
    rpu_tile_params p;
    rpu_tile_params_default(&p, out, in);
    p.seed = seed;
    p.layer_id = 3;
    p.tile_id = 5;
    rpu_tile *t = NULL;
    rpu_status s = rpu_tile_create(&p, c, &t);
    CHECK(s == RPU_OK, "rpu_tile_create: %s", rpu_last_error());
    return t;
}

/* Choppers of a chopped / dynamic tile set to a mixed pattern (as a checkpoint restore
 * would): in_chopper[j] = j mod 3 == 1, out_chopper[i] = i mod 2 == 0. */
static void set_choppers(rpu_tile *t) {
    rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
    const int n = rpu_tile_state_items(t, it, RPU_TILE_MAX_STATE_ITEMS);
    for (int k = 0; k < n; ++k) {
        const bool in = !strcmp(it[k].name, "in_chopper"), out = !strcmp(it[k].name, "out_chopper");
        if (!in && !out) continue;
        uint64_t *p = it[k].data;
        for (size_t q = 0; q < it[k].count; ++q)
            p[q] = in ? q % 3 == 1 : q % 2 == 0;
    }
}

/* k vector updates of a 1x1 tile with x = [1], d = [dsign * g] (lr 1): exactly one step of g
 * per vector (§11.1), as one call of k vectors or k calls of one. */
static void vectors(rpu_tile *t, int k, float dsign, int one_call) {
    float x[64], d[64];
    for (int v = 0; v < k; ++v) {
        x[v] = 1.0f;
        d[v] = dsign * g;
    }
    if (one_call)
        CHECK_OK(rpu_tile_update(t, x, d, k, 1.0f));
    else
        for (int v = 0; v < k; ++v)
            CHECK_OK(rpu_tile_update(t, x, d, 1, 1.0f));
}

/* ------------------------------------------------------------------------ §11.2 vector */

static void test_vector(void) {
    rpu_config c;
    for (int one_call = 0; one_call < 2; ++one_call) {
        /* ALL, default gamma = 1/2: W = kg, both hidden kg */
        make_config(&c, "vector", 2, Dg, NULL);
        rpu_tile *t = make_tile(&c, 1, 1, 1);
        if (!t) return;
        EXPECT_NEAR("vector granularity", rpu_tile_granularity(t), g);
        vectors(t, 5, -1.0f, one_call);
        EXPECT_NEAR("vector ALL W", tl_weight_at(t, 0), 5 * g);
        EXPECT_NEAR("vector ALL hw0", tl_hidden_at(t, 0, 0), 5 * g);
        EXPECT_NEAR("vector ALL hw1", tl_hidden_at(t, 1, 0), 5 * g);
        rpu_tile_destroy(&t);
        /* gamma_vec [1, 1]: W = 2kg */
        make_config(&c, "vector", 2, Dg, "device.gamma_vec = 1, 1\n");
        t = make_tile(&c, 1, 1, 1);
        vectors(t, 5, -1.0f, one_call);
        EXPECT_NEAR("vector gamma 1,1 W", tl_weight_at(t, 0), 10 * g);
        rpu_tile_destroy(&t);
        /* SINGLE_FIXED: W = kg/2, hw1 = 0 */
        make_config(&c, "vector", 2, Dg, "device.update_policy = single_fixed\n");
        t = make_tile(&c, 1, 1, 1);
        vectors(t, 4, -1.0f, one_call);
        EXPECT_NEAR("single_fixed W", tl_weight_at(t, 0), 2 * g);
        EXPECT_NEAR("single_fixed hw0", tl_hidden_at(t, 0, 0), 4 * g);
        EXPECT_NEAR("single_fixed hw1", tl_hidden_at(t, 1, 0), 0);
        rpu_tile_destroy(&t);
        /* SINGLE_SEQUENTIAL from first_update_idx 0: devices 1, 0, 1 */
        make_config(&c, "vector", 2, Dg, "device.update_policy = single_sequential\n");
        t = make_tile(&c, 1, 1, 1);
        vectors(t, 3, -1.0f, one_call);
        EXPECT_NEAR("sequential hw1", tl_hidden_at(t, 1, 0), 2 * g);
        EXPECT_NEAR("sequential hw0", tl_hidden_at(t, 0, 0), g);
        EXPECT_NEAR("sequential W", tl_weight_at(t, 0), 1.5f * g);
        CHECK(rpu_tile_get_hidden_update_index(t) == 1, "sequential current device %d",
              rpu_tile_get_hidden_update_index(t));
        rpu_tile_destroy(&t);
    }
    /* set_weights on SINGLE_FIXED with zero hidden weights reads back W/2 (§2.4) */
    make_config(&c, "vector", 2, Dg, "device.update_policy = single_fixed\n");
    rpu_tile *t = make_tile(&c, 1, 2, 1);
    const float w[2] = {0.5f, -0.25f};
    CHECK_OK(rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED));
    EXPECT_NEAR("single_fixed set W/2", tl_weight_at(t, 0), 0.25f);
    EXPECT_NEAR("single_fixed set W/2", tl_weight_at(t, 1), -0.125f);
    rpu_tile_destroy(&t);
    /* ALL: set_weights writes every device and reads back W */
    make_config(&c, "vector", 3, Dg, NULL);
    t = make_tile(&c, 1, 2, 1);
    CHECK_OK(rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED));
    EXPECT_NEAR("ALL set W", tl_weight_at(t, 0), 0.5f);
    EXPECT_NEAR("ALL set hw2", tl_hidden_at(t, 2, 1), -0.25f);
    rpu_tile_destroy(&t);
}

/* ------------------------------------------------------------------------ §11.2 reference */

static void test_reference(void) {
    rpu_config c;
    make_config(&c, "reference", 2, Dg, NULL);
    rpu_tile *t = make_tile(&c, 1, 1, 1);
    if (!t) return;
    const float r = 0.25f;
    CHECK_OK(rpu_tile_set_hidden_update_index(t, 1));
    CHECK_OK(rpu_tile_set_weights(t, &r, RPU_WEIGHTS_STORED));
    CHECK_OK(rpu_tile_set_hidden_update_index(t, 0));
    EXPECT_NEAR("reference programmed", tl_weight_at(t, 0), -0.25f);
    vectors(t, 3, -1.0f, 0);
    EXPECT_NEAR("reference W", tl_weight_at(t, 0), 3 * g - 0.25f);
    EXPECT_NEAR("reference hw1", tl_hidden_at(t, 1, 0), 0.25f);
    EXPECT_NEAR("reference hw0", tl_hidden_at(t, 0, 0), 3 * g);
    CHECK_STATUS(rpu_tile_set_hidden_update_index(t, 2), RPU_ERR_ARG);
    rpu_tile_destroy(&t);
    /* a single entry is duplicated */
    make_config(&c, "reference", 1, Dg, NULL);
    t = make_tile(&c, 1, 1, 1);
    vectors(t, 2, -1.0f, 1);
    EXPECT_NEAR("reference of one entry", tl_weight_at(t, 0), 2 * g);
    CHECK(rpu_tile_device_array_by_name(t, "hidden_weights_1") != NULL, "duplicated device");
    rpu_tile_destroy(&t);
}

/* ------------------------------------------------------------------------ §11.2 one_sided */

static void test_one_sided(void) {
    rpu_config c;
    make_config(&c, "one_sided", 1, Dg, NULL);
    rpu_tile *t = make_tile(&c, 1, 1, 1);
    if (!t) return;
    vectors(t, 2, -1.0f, 0);
    vectors(t, 1, 1.0f, 0);
    EXPECT_NEAR("one_sided g+", tl_hidden_at(t, 1, 0), 2 * g);
    EXPECT_NEAR("one_sided g-", tl_hidden_at(t, 0, 0), g);
    EXPECT_NEAR("one_sided W", tl_weight_at(t, 0), g);
    const float w = -0.3f;
    CHECK_OK(rpu_tile_set_weights(t, &w, RPU_WEIGHTS_STORED));
    EXPECT_NEAR("one_sided set g+", tl_hidden_at(t, 1, 0), 0);
    EXPECT_NEAR("one_sided set g-", tl_hidden_at(t, 0, 0), 0.3f);
    EXPECT_NEAR("one_sided set W", tl_weight_at(t, 0), -0.3f);
    rpu_tile_destroy(&t);

    /* refresh (rpu_onesided_device_test.cpp): bounds +-1, reset 0, exact refresh writes */
    const char *dev = "type = constant_step\n"
                      "dw_min_dtod = 0\n"
                      "dw_min_std = 0\n"
                      "up_down_dtod = 0\n"
                      "w_min = -1\n"
                      "w_max = 1\n"
                      "w_min_dtod = 0\n"
                      "w_max_dtod = 0\n"
                      "reset = 0\n"
                      "reset_std = 0\n";
    make_config(&c, "one_sided", 1, dev,
                "device.refresh_every = 1\n"
                "device.refresh_forward.is_perfect = true\n"
                "device.refresh_update.pulse_type = none\n");
    t = make_tile(&c, 3, 1, 1);
    if (!t) return;
    float *gp = rpu_tile_device_array_by_name(t, "hidden_weights_1");
    float *gm = rpu_tile_device_array_by_name(t, "hidden_weights_0");
    const float p0[3] = {0.8f, 0.6f, 0.3f}, m0[3] = {0.4f, 0.3f, 0.8f};
    memcpy(gp, p0, sizeof p0);
    memcpy(gm, m0, sizeof m0);
    const float x = 0, d[3] = {0, 0, 0};
    CHECK_OK(rpu_tile_update(t, &x, d, 1, 0.1f));
    const float pw[3] = {0.4f, 0.6f, 0.0f}, mw[3] = {0.0f, 0.3f, 0.5f}, ww[3] = {0.4f, 0.3f, -0.5f};
    for (int i = 0; i < 3; ++i) {
        EXPECT_NEAR("refresh g+", gp[i], pw[i]);
        EXPECT_NEAR("refresh g-", gm[i], mw[i]);
        EXPECT_NEAR("refresh W", tl_weight_at(t, i), ww[i]);
    }
    rpu_tile_destroy(&t);
}

/* ------------------------------------------------------------------------ §11.9 invariants */

/* W = sum gamma_k W_k after updates, post-update steps, resets and set_weights; one_sided
 * hidden arrays never decrease under updates; lr 0 changes nothing. Noisy default devices
 * (d2d and c2c variation) on a 6 x 5 tile. */
static void check_reduce(rpu_tile *t, const float *gamma, int n, const char *what) {
    float w[30];
    CHECK_OK(rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED));
    for (int q = 0; q < 30; ++q) {
        float s = 0;
        for (int k = 0; k < n; ++k)
            s += gamma[k] * tl_hidden_at(t, k, q);
        CHECK(NEAR(w[q], s), "%s: W[%d] = %g, sum gamma_k W_k = %g", what, q, (double)w[q],
              (double)s);
    }
}

static void test_invariants(void) {
    static const struct {
        const char *type, *extra;
        int n;
        float gamma[3];
    } cases[] = {
        {"vector", NULL, 3, {1.0f / 3, 1.0f / 3, 1.0f / 3}},
        {"vector",
         "device.update_policy = single_random\ndevice.gamma_vec = 0.5, 2, -1\n",
         3,
         {0.5f, 2.0f, -1.0f}},
        {"reference", NULL, 2, {1.0f, -1.0f}},
        {"one_sided", NULL, 1, {-1.0f, 1.0f}},
    };
    const char *dev = "type = soft_bounds\nlifetime = 100\ndiffusion = 0.001\n";
    float x[8 * 5], d[8 * 6];
    for (size_t c0 = 0; c0 < sizeof cases / sizeof cases[0]; ++c0) {
        rpu_config c;
        make_config(&c, cases[c0].type, cases[c0].n, dev, cases[c0].extra);
        rpu_tile *t = make_tile(&c, 6, 5, 7);
        if (!t) continue;
        const int nd = strcmp(cases[c0].type, "one_sided") == 0 ? 2 : cases[c0].n;
        float before[2][30];
        for (int step = 0; step < 6; ++step) {
            tl_fill_uniform(x, 8 * 5, -1, 1, 11, (uint64_t)step);
            tl_fill_uniform(d, 8 * 6, -0.2f, 0.2f, 12, (uint64_t)step);
            if (nd == 2)
                for (int k = 0; k < 2; ++k)
                    for (int q = 0; q < 30; ++q)
                        before[k][q] = tl_hidden_at(t, k, q);
            CHECK_OK(rpu_tile_update(t, x, d, 8, 0.05f));
            if (strcmp(cases[c0].type, "one_sided") == 0) {
                int dec = 0;
                for (int k = 0; k < 2; ++k)
                    for (int q = 0; q < 30; ++q)
                        dec += tl_hidden_at(t, k, q) < before[k][q];
                CHECK(dec == 0, "one_sided: %d hidden values decreased in an update", dec);
            }
            check_reduce(t, cases[c0].gamma, nd, cases[c0].type);
            CHECK_OK(rpu_tile_post_update(t));
            check_reduce(t, cases[c0].gamma, nd, "after post_update");
        }
        CHECK_OK(rpu_tile_reset_columns(t, 1, 2, 1.0f));
        check_reduce(t, cases[c0].gamma, nd, "after reset_columns");
        /* lr = 0: nothing changes, no counter moves */
        rpu_state_item a[RPU_TILE_MAX_STATE_ITEMS];
        const int na = rpu_tile_state_items(t, a, RPU_TILE_MAX_STATE_ITEMS);
        size_t bytes = 0;
        for (int k = 0; k < na; ++k)
            bytes += rpu_state_item_bytes(&a[k]);
        unsigned char *snap = malloc(bytes), *p = snap;
        for (int k = 0; k < na; ++k) {
            memcpy(p, a[k].data, rpu_state_item_bytes(&a[k]));
            p += rpu_state_item_bytes(&a[k]);
        }
        CHECK_OK(rpu_tile_update(t, x, d, 8, 0.0f));
        p = snap;
        int same = 1;
        for (int k = 0; k < na; ++k) {
            if (strcmp(a[k].name, "update_calls") != 0)
                same &= memcmp(p, a[k].data, rpu_state_item_bytes(&a[k])) == 0;
            p += rpu_state_item_bytes(&a[k]);
        }
        CHECK(same, "%s: an lr = 0 update changed the state", cases[c0].type);
        free(snap);
        rpu_tile_destroy(&t);
    }
}

/* ------------------------------------------------------------------------ names, construction */

static void test_names_and_construction(void) {
    /* §1.3 order: per sub-device its arrays with suffix, then hidden_weights_k (rpusim lists
     * the arrays a device uses: constant_step without decay/diffusion/reset/drift has 4) */
    rpu_config c;
    make_config(&c, "vector", 2, "type = constant_step\n", NULL);
    rpu_tile *t = make_tile(&c, 4, 3, 9);
    if (!t) return;
    static const char *const want[] = {
        "max_bound_0", "min_bound_0", "dwmin_up_0", "dwmin_down_0", "hidden_weights_0",
        "max_bound_1", "min_bound_1", "dwmin_up_1", "dwmin_down_1", "hidden_weights_1"};
    CHECK(rpu_tile_device_array_count(t) == 10, "%d arrays", rpu_tile_device_array_count(t));
    for (int k = 0; k < 10 && k < rpu_tile_device_array_count(t); ++k) {
        const char *name = NULL;
        rpu_tile_device_array(t, k, &name);
        CHECK(name && strcmp(name, want[k]) == 0, "array %d is %s, want %s", k, name ? name : "-",
              want[k]);
    }
    /* soft_bounds adds the slopes (§1.3: ... slope_up_k, slope_down_k, hidden_weights_k) */
    rpu_config c2;
    make_config(&c2, "transfer", 2, "type = soft_bounds\n", NULL);
    rpu_tile *t2 = make_tile(&c2, 4, 3, 9);
    const char *name = NULL;
    if (t2) {
        rpu_tile_device_array(t2, 5, &name);
        CHECK(name && strcmp(name, "slope_down_0") == 0, "soft_bounds array 5: %s",
              name ? name : "-");
        CHECK(rpu_tile_device_array_count(t2) == 14, "%d arrays", rpu_tile_device_array_count(t2));
    }

    /* construction keyed per sub-device: a vector of 3 has the same first two sub-devices as
     * a vector of 2, and sub-devices differ from one another */
    rpu_config c3;
    make_config(&c3, "vector", 3, "type = constant_step\n", NULL);
    rpu_tile *t3 = make_tile(&c3, 4, 3, 9);
    if (t3) {
        const float *a0 = rpu_tile_device_array_by_name(t, "max_bound_0");
        const float *a1 = rpu_tile_device_array_by_name(t, "max_bound_1");
        const float *b0 = rpu_tile_device_array_by_name(t3, "max_bound_0");
        const float *b1 = rpu_tile_device_array_by_name(t3, "max_bound_1");
        CHECK(a0 && a1 && b0 && b1 && !memcmp(a0, b0, 12 * sizeof(float)) &&
                  !memcmp(a1, b1, 12 * sizeof(float)),
              "sub-devices 0 and 1 depend on the number of sub-devices");
        CHECK(a0 && a1 && memcmp(a0, a1, 12 * sizeof(float)) != 0,
              "sub-devices 0 and 1 drew the same values");
    }
    /* construction_seed of the compound keys every sub-device */
    {
        rpu_config c4 = c;
        CHECK_OK(rpu_config_set(&c4, "device.construction_seed", "77"));
        rpu_tile *t4 = make_tile(&c4, 4, 3, 9);
        if (t4) {
            const float *a0 = rpu_tile_device_array_by_name(t, "max_bound_0");
            const float *b0 = rpu_tile_device_array_by_name(t4, "max_bound_0");
            CHECK(memcmp(a0, b0, 12 * sizeof(float)) != 0, "construction_seed ignored");
        }
        rpu_tile_destroy(&t4);
    }
    rpu_tile_destroy(&t);
    rpu_tile_destroy(&t2);
    rpu_tile_destroy(&t3);
}

/* ------------------------------------------------------------------------ statistics */

/* SINGLE_RANDOM picks each of n devices with probability 1/n per vector (compound stream):
 * with Dg every vector adds exactly g to the chosen device, so W_k / g counts the choices.
 * N = 4000, n = 4: each count is Binomial(4000, 1/4), sd = 27.4; the test allows 5 sd (a
 * false failure has probability < 1e-5 per count), and the counts must sum to N. */
static void test_random_choice(void) {
    rpu_config c;
    make_config(&c, "vector", 4, Dg, "device.update_policy = single_random\n");
    rpu_tile *t = make_tile(&c, 1, 1, 21);
    if (!t) return;
    const int N = 4000;
    for (int call = 0; call < N / 50; ++call)
        vectors(t, 50, -1.0f, 1);
    const double sd = sqrt(N * 0.25 * 0.75);
    long total = 0;
    for (int k = 0; k < 4; ++k) {
        const long cnt = lrintf(tl_hidden_at(t, k, 0) / g);
        total += cnt;
        CHECK(fabs((double)cnt - N / 4.0) < 5 * sd, "device %d chosen %ld times of %d (sd %.1f)", k,
              cnt, N, sd);
    }
    CHECK(total == N, "choices sum to %ld, want %d", total, N);
    EXPECT_NEAR("random W", tl_weight_at(t, 0), N * g / 4);
    rpu_tile_destroy(&t);
}

/* ------------------------------------------------------------------------ reference engine */

/* The engine and the slot-by-slot reference give the same floats for the fast-array pulses
 * of every compound type and policy, on noisy devices. */
static void test_against_reference(void) {
    static const struct {
        const char *type, *extra, *dev;
        int n;
    } cases[] = {
        {"vector", NULL, "type = constant_step\n", 2},
        {"vector", "device.update_policy = single_sequential\n", "type = soft_bounds\n", 3},
        {"vector", "device.update_policy = single_random\n", "type = exp_step\n", 3},
        {"vector", "update.pulse_type = deterministic_implicit\n", "type = linear_step\n", 2},
        {"vector", NULL, "type = linear_step\nwrite_noise_std = 0.5\n", 2},
        {"reference", NULL, "type = pow_step\n", 2},
        {"one_sided", NULL, "type = soft_bounds\n", 1},
        {"one_sided", "update.pulse_type = mean_count\n", "type = constant_step\n", 1},
        {"transfer", "device.transfer_every = 0\n", "type = soft_bounds\n", 2},
        {"transfer", "device.transfer_every = 0\ndevice.fast_lr = 0.5\n", "type = constant_step\n",
         2},
        /* the buffered family (§6-§8): choppers set by hand below (no reads in these calls) */
        {"buffered_transfer", "device.transfer_every = 0\n", "type = soft_bounds\n", 3},
        {"chopped_transfer", "device.transfer_every = 0\ndevice.auto_scale = true\n",
         "type = soft_bounds\n", 2},
        {"chopped_transfer",
         "device.transfer_every = 0\ndevice.transfer_columns = false\ndevice.gamma = 0.4\n"
         "device.dechop_visible_weight = true\n",
         "type = constant_step\n", 2},
        {"dynamic_transfer", "device.transfer_every = 0\ndevice.fast_lr = 0.3\n",
         "type = linear_step\n", 2},
    };
    const int R = 7, C = 9, n = 12;
    float x[12 * 9], d[12 * 7];
    const size_t ncases = sizeof cases / sizeof cases[0];
    /* twice: policy-all targets in one engine pass, then one by one (the path of devices
     * whose pulses merge) */
    for (size_t kk = 0; kk < 2 * ncases; ++kk) {
        const size_t k = kk % ncases;
        rpu_config c;
        make_config(&c, cases[k].type, cases[k].n, cases[k].dev, cases[k].extra);
        rpu_tile *a = make_tile(&c, R, C, 5), *b = make_tile(&c, R, C, 5);
        if (!a || !b) {
            rpu_tile_destroy(&a);
            rpu_tile_destroy(&b);
            continue;
        }
        a->cmp->targets_apart = kk >= ncases;
        set_choppers(a);
        set_choppers(b);
        /* the reference takes every pulse on its own: so does the engine here (merged pulses
         * are checked against the single-device engine in test_fast_device_as_single) */
        a->update_per_pulse = b->update_per_pulse = 1;
        for (int call = 0; call < 3; ++call) {
            tl_fill_uniform(x, n * C, -1, 1, 31, (uint64_t)call);
            tl_fill_uniform(d, n * R, -0.5f, 0.5f, 32, (uint64_t)call);
            CHECK_OK(rpu_tile_update(a, x, d, n, 0.02f));
            CHECK(ref_compound_update(b, x, d, n, 0.02f) == 0, "reference refused %s",
                  cases[k].type);
        }
        for (int q = 0; q < rpu_tile_device_array_count(a); ++q) {
            const char *name;
            const float *pa = rpu_tile_device_array(a, q, &name);
            const float *pb = rpu_tile_device_array(b, q, NULL);
            const int bad = memcmp(pa, pb, sizeof(float) * R * C) != 0;
            CHECK(!bad, "case %zu (%s): array %s differs from the reference", k, cases[k].type,
                  name);
        }
        float wa[63], wb[63];
        CHECK_OK(rpu_tile_get_weights(a, wa, RPU_WEIGHTS_STORED));
        CHECK_OK(rpu_tile_get_weights(b, wb, RPU_WEIGHTS_STORED));
        CHECK(memcmp(wa, wb, sizeof wa) == 0, "case %zu (%s): visible weights differ", k,
              cases[k].type);
        /* and something happened (a fully hidden transfer compound's visible weight only
         * changes by transfers) */
        float w0[63] = {0};
        const float *h0 = rpu_tile_device_array_by_name(a, "hidden_weights_0");
        CHECK(h0 && memcmp(h0, w0, sizeof w0) != 0, "case %zu: no update", k);
        rpu_tile_destroy(&a);
        rpu_tile_destroy(&b);
    }
}

/* One non-zero input per vector on 130 columns (the shape of a transfer write: every row's
 * pulses on one cell): the engine gives the reference's floats, for the targets of one
 * shared pass and target by target. */
static void test_one_hot_against_reference(void) {
    static const char *types[] = {"vector", "one_sided"};
    enum { R = 6, C = 130, N = 6 };
    static float x[N * C], d[N * R];
    for (int ty = 0; ty < 2; ++ty)
        for (int apart = 0; apart < 2; ++apart) {
            rpu_config c;
            make_config(&c, types[ty], ty ? 1 : 2, "type = soft_bounds\n", NULL);
            rpu_tile *a = make_tile(&c, R, C, 9), *b = make_tile(&c, R, C, 9);
            if (!a || !b) {
                rpu_tile_destroy(&a);
                rpu_tile_destroy(&b);
                continue;
            }
            a->update_per_pulse = b->update_per_pulse = 1;
            a->cmp->targets_apart = apart;
            for (int call = 0; call < 2; ++call) {
                memset(x, 0, sizeof x);
                for (int v = 0; v < N; ++v)
                    x[v * C + (17 * v + 5 * call) % C] = 0.4f + 0.1f * (float)v;
                tl_fill_uniform(d, N * R, -0.5f, 0.5f, 33, (uint64_t)call);
                CHECK_OK(rpu_tile_update(a, x, d, N, 0.05f));
                CHECK(ref_compound_update(b, x, d, N, 0.05f) == 0, "reference refused %s",
                      types[ty]);
            }
            for (int q = 0; q < rpu_tile_device_array_count(a); ++q) {
                const char *name;
                const float *pa = rpu_tile_device_array(a, q, &name);
                const float *pb = rpu_tile_device_array(b, q, NULL);
                CHECK(memcmp(pa, pb, sizeof(float) * R * C) == 0,
                      "one-hot %s (targets apart %d): array %s differs from the reference",
                      types[ty], apart, name);
            }
            const float *h0 = rpu_tile_device_array_by_name(a, "hidden_weights_0");
            const float *h1 = rpu_tile_device_array_by_name(a, "hidden_weights_1");
            int moved = 0;
            for (int e = 0; h0 && h1 && e < R * C; ++e)
                moved += h0[e] != 0 || h1[e] != 0;
            CHECK(moved > 0, "one-hot %s: no update", types[ty]);
            rpu_tile_destroy(&a);
            rpu_tile_destroy(&b);
        }
}

/* The fast device of the transfer family takes its pulses through the single-device engine:
 * with transfers off and the fast learning rate equal to the SGD one, its hidden_weights_0
 * equals, float for float, the weights of a single-device tile with the same device state,
 * the same keys and the same updates (chopped and dynamic too: with no reads, a chunk of
 * vectors is one engine pass), with merged pulses (constant_step) and without. */
static void test_fast_device_as_single(void) {
    static const struct {
        const char *type, *extra;
    } cases[] = {
        {"transfer", ""},
        {"buffered_transfer", ""},
        {"chopped_transfer", "device.in_chop_prob = 0\ndevice.out_chop_prob = 0\n"},
        {"dynamic_transfer", "device.in_chop_prob = 0\ndevice.out_chop_prob = 0\n"},
    };
    static const char *devs[] = {"type = constant_step\ndw_min_std = 0.3\n",
                                 "type = soft_bounds\ndw_min_std = 0.3\n"};
    const int R = 7, C = 9, n = 12;
    float x[12 * 9], d[12 * 7], zero[63] = {0};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k)
        for (int dv = 0; dv < 2; ++dv)
            for (int per_pulse = 0; per_pulse < 2; ++per_pulse) {
                char extra[512];
                snprintf(extra, sizeof extra,
                         "device.transfer_every = 0\ndevice.fast_lr = 1\n"
                         "device.scale_fast_lr = true\n%s",
                         cases[k].extra);
                rpu_config cc, cs;
                make_config(&cc, cases[k].type, 2, devs[dv], extra);
                CHECK_OK(rpu_config_default(&cs, RPU_KIND_SINGLE));
                CHECK_OK(rpu_config_parse(&cs,
                                          dv ? "device.type = soft_bounds\n"
                                               "device.dw_min_std = 0.3\n"
                                             : "device.type = constant_step\n"
                                               "device.dw_min_std = 0.3\n",
                                          "single"));
                rpu_tile *a = make_tile(&cc, R, C, 5), *s = make_tile(&cs, R, C, 5);
                if (!a || !s) {
                    rpu_tile_destroy(&a);
                    rpu_tile_destroy(&s);
                    continue;
                }
                /* the single tile gets the fast device's state and its (zero) weights */
                rpu_device_state *fd = &a->cmp->sub[0];
                CHECK(fd->n_arrays == s->dev.n_arrays, "case %zu: arrays %d / %d", k, fd->n_arrays,
                      s->dev.n_arrays);
                for (int q = 0; q < fd->n_arrays && q < s->dev.n_arrays; ++q)
                    memcpy(s->dev.arrays[q].data, fd->arrays[q].data, sizeof(float) * R * C);
                CHECK_OK(rpu_tile_set_weights(s, zero, RPU_WEIGHTS_STORED));
                CHECK(a->cmp->granularity == s->dev.granularity, "case %zu: granularity %g / %g", k,
                      (double)a->cmp->granularity, (double)s->dev.granularity);
                a->update_per_pulse = s->update_per_pulse = per_pulse;
                for (int call = 0; call < 3; ++call) {
                    tl_fill_uniform(x, n * C, -1, 1, 41, (uint64_t)call);
                    tl_fill_uniform(d, n * R, -0.5f, 0.5f, 42, (uint64_t)call);
                    CHECK_OK(rpu_tile_update(a, x, d, n, 0.02f));
                    CHECK_OK(rpu_tile_update(s, x, d, n, 0.02f));
                }
                const float *h0 = rpu_tile_device_array_by_name(a, "hidden_weights_0");
                float ws[63];
                CHECK_OK(rpu_tile_get_weights(s, ws, RPU_WEIGHTS_STORED));
                CHECK(h0 && memcmp(h0, ws, sizeof ws) == 0,
                      "%s of %s, per pulse %d: the fast device differs from the single device",
                      cases[k].type, dv ? "soft_bounds" : "constant_step", per_pulse);
                CHECK(memcmp(ws, zero, sizeof ws) != 0, "case %zu: no update", k);
                rpu_tile_destroy(&a);
                rpu_tile_destroy(&s);
            }
}

/* The chopped types update a chunk of vectors in one pass of the engine, reading A's
 * columns from snapshots (compound.c, chopped_chunks). Where no pulses merge (soft_bounds;
 * constant_step per pulse) that is the vector-by-vector update (c->chunked = 0) float for
 * float: every array and every state item. With merged pulses (constant_step) the read
 * columns merge only piece by piece between their reads (update.c, pieces_build); with
 * dw_min_std = 0, A then agrees with the vector-by-vector update to rounding, and here the
 * reads, buffers, choppers and C are equal. */
static void test_chunked_reads(void) {
    static const char *types[] = {"chopped_transfer", "dynamic_transfer"};
    static const struct {
        const char *dev;
        int per_pulse, merged;
    } devs[] = {{"type = soft_bounds\ndw_min_std = 0.3\nwrite_noise_std = 0.2\n", 0, 0},
                {"type = constant_step\ndw_min_std = 0.3\n", 1, 0},
                {"type = constant_step\ndw_min_std = 0\n", 0, 1}};
    /* the second: buffers that keep their remainders and reads scaled by each vector's
     * pulse-count lr, so that every read's value (not only its sign) matters */
    static const char *chops[] = {"device.in_chop_random = true\n",
                                  "device.in_chop_random = false\n"
                                  "device.correct_gradient_magnitudes = true\n"
                                  "device.forget_buffer = false\n"
                                  "device.buffer_granularity = 1000\n"};
    const int R = 7, C = 9, n = 150; /* chunks of 64, 64, 22 vectors */
    float x[150 * 9], d[150 * 7];
    for (int ty = 0; ty < 2; ++ty)
        for (size_t dv = 0; dv < sizeof devs / sizeof devs[0]; ++dv)
            for (int ch = 0; ch < 2; ++ch) {
                char extra[512];
                snprintf(extra, sizeof extra,
                         "device.transfer_every = 1\ndevice.in_chop_prob = 0.3\n"
                         "device.out_chop_prob = 0.2\ndevice.auto_scale = true\n"
                         "device.fast_lr = 0.5\ndevice.no_self_transfer = false\n"
                         "device.units_in_mbatch = false\n%s",
                         chops[ch]);
                rpu_config cfg;
                make_config(&cfg, types[ty], 2, devs[dv].dev, extra);
                rpu_tile *a = make_tile(&cfg, R, C, 5), *b = make_tile(&cfg, R, C, 5);
                if (!a || !b) {
                    rpu_tile_destroy(&a);
                    rpu_tile_destroy(&b);
                    continue;
                }
                CHECK(rpu_update_chunk(R, C) == 64, "chunk %d", rpu_update_chunk(R, C));
                b->cmp->chunked = 0;
                a->update_per_pulse = b->update_per_pulse = devs[dv].per_pulse;
                float w0[63];
                tl_fill_uniform(w0, R * C, -0.3f, 0.3f, 40, 0);
                CHECK_OK(rpu_tile_set_weights(a, w0, RPU_WEIGHTS_STORED));
                CHECK_OK(rpu_tile_set_weights(b, w0, RPU_WEIGHTS_STORED));
                float c0[63];
                const float *c1 = rpu_tile_device_array_by_name(a, "hidden_weights_1");
                if (c1) memcpy(c0, c1, sizeof c0);
                for (int call = 0; call < 3; ++call) {
                    tl_fill_uniform(x, n * C, -1, 1, 41, (uint64_t)call);
                    tl_fill_uniform(d, n * R, -0.5f, 0.5f, 42, (uint64_t)call);
                    CHECK_OK(rpu_tile_update(a, x, d, n, 0.05f));
                    CHECK_OK(rpu_tile_update(b, x, d, n, 0.05f));
                }
                const char *what = types[ty];
                CHECK(rpu_tile_device_array_count(a) == rpu_tile_device_array_count(b),
                      "%s: arrays", what);
                int differ = 0;
                for (int q = 0; q < rpu_tile_device_array_count(a); ++q) {
                    const char *name = NULL;
                    const float *pa = rpu_tile_device_array(a, q, &name);
                    const float *pb = rpu_tile_device_array_by_name(b, name);
                    if (!pa || !pb) continue;
                    const bool fast = !strcmp(name, "hidden_weights_0");
                    for (int e = 0; e < R * C; ++e) {
                        const bool ok = devs[dv].merged && fast
                                            ? fabsf(pa[e] - pb[e]) <= 1e-5f
                                            : memcmp(&pa[e], &pb[e], sizeof(float)) == 0;
                        if (!ok && differ++ < 5)
                            CHECK(0,
                                  "%s, device %zu, choppers %d: %s[%d] %.9g, vector by vector %.9g",
                                  what, dv, ch, name, e, (double)pa[e], (double)pb[e]);
                    }
                }
                float wa[63], wb[63];
                CHECK_OK(rpu_tile_get_weights(a, wa, RPU_WEIGHTS_STORED));
                CHECK_OK(rpu_tile_get_weights(b, wb, RPU_WEIGHTS_STORED));
                CHECK(memcmp(wa, wb, sizeof wa) == 0, "%s, device %zu: visible weights", what, dv);
                rpu_state_item ia[64], ib[64];
                const int na = rpu_tile_state_items(a, ia, 64),
                          nb = rpu_tile_state_items(b, ib, 64);
                CHECK(na == nb && na <= 64, "%s: state items %d / %d", what, na, nb);
                for (int q = 0; q < na && q < nb && q < 64; ++q) {
                    const size_t sz = ia[q].type == RPU_STATE_F32 ? 4 : 8;
                    if (devs[dv].merged && !strcmp(ia[q].name, "hidden_weights_0"))
                        continue; /* A: compared to rounding above */
                    CHECK(ia[q].count == ib[q].count &&
                              memcmp(ia[q].data, ib[q].data, sz * ia[q].count) == 0,
                          "%s, device %zu, choppers %d: state item %s differs", what, dv, ch,
                          ia[q].name);
                }
                /* the test must see transfers and chopper flips */
                CHECK(tl_state_item(a, "transfer_counter", 0) >= 3, "%s: %g sweeps", what,
                      tl_state_item(a, "transfer_counter", 0));
                float amax = 0;
                for (int e = 0; c1 && e < R * C; ++e)
                    amax = fmaxf(amax, fabsf(c1[e] - c0[e]));
                CHECK(amax > 0, "%s, device %zu: C never written", what, dv);
                if (ch == 1) { /* remainders kept in the buffer */
                    const float *hb = rpu_tile_device_array_by_name(a, ty ? "buffered_FP_weight"
                                                                          : "buffered_FP_weight_0");
                    int kept = 0;
                    for (int e = 0; hb && e < R * C; ++e)
                        kept += hb[e] != 0 && hb[e] != truncf(hb[e]);
                    CHECK(kept > 0, "%s, device %zu: no buffer remainders", what, dv);
                }
                rpu_tile_destroy(&a);
                rpu_tile_destroy(&b);
            }
}

/* ------------------------------------------------------------------------ errors */

static void test_errors(void) {
    rpu_config c;
    make_config(&c, "vector", 2, Dg, "update.pulse_type = none\n");
    rpu_tile_params p;
    rpu_tile_params_default(&p, 2, 2);
    rpu_tile *t = NULL;
    rpu_clear_error();
    CHECK_STATUS(rpu_tile_create(&p, &c, &t), RPU_ERR_CONFIG);
    CHECK(strstr(rpu_last_error(), "update.pulse_type") != NULL, "message: %s", rpu_last_error());
    make_config(&c, "transfer", 1, Dg, NULL);
    CHECK_STATUS(rpu_tile_create(&p, &c, &t), RPU_ERR_CONFIG);
    CHECK(strstr(rpu_last_error(), "device.unit_cell_devices") != NULL, "message: %s",
          rpu_last_error());
    make_config(&c, "one_sided", 1, "type = soft_bounds\nwrite_noise_std = 1\n",
                "device.refresh_every = 1\n");
    CHECK_STATUS(rpu_tile_create(&p, &c, &t), RPU_ERR_CONFIG);
    CHECK(strstr(rpu_last_error(), "write_noise_std") != NULL, "message: %s", rpu_last_error());
    /* the update of a compound is not split by rows */
    make_config(&c, "vector", 2, Dg, NULL);
    rpu_tile_params_default(&p, 32, 2);
    CHECK_OK(rpu_tile_create(&p, &c, &t));
    CHECK(!rpu_tile_update_row_splittable(t), "compound update splittable by rows");
    float x[2] = {1, 1}, d[32] = {0};
    CHECK_STATUS(rpu_tile_update_rows(t, x, d, 1, 0.1f, 0, 16), RPU_ERR_ARG);
    rpu_tile_destroy(&t);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_vector();
    test_reference();
    test_one_sided();
    test_invariants();
    test_names_and_construction();
    test_random_choice();
    test_against_reference();
    test_fast_device_as_single();
    test_chunked_reads();
    test_one_hot_against_reference();
    test_errors();
    return tl_finish();
}
