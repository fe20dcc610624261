/* Tests of unit cells inside a compound (compound spec §1.2 "Compounds nest", §1.3 rule 2;
 * compound_cell.c): the hidden-parameter names and their order for a transfer compound of
 * two ReferenceUnitCell(SoftBounds x 2) (the spec's example), a hand-computed Tiki-Taka trace
 * through reference cells whose fast reference is offset, mixed precision on a one_sided
 * cell against the same compound on one device (equal where the theory says so), the
 * config keys of a cell (round trip, errors that name the key), set_weights' lowest-level
 * rule, and that the cell's state and arrays survive a save and load of the tile state.
 * Tiles are local (no collective). */
#include "rpusim/config.h"
#include "rpusim/tile.h"

#include "nested_cells.h"
#include "testlib.h"
#include "tile_impl.h" /* cmp->chunked: the vector-by-vector reference of a chopped update */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float g = 0.015625f; /* 2^-6: sums of a few steps are exact in float */

/* The deterministic unit device Dg (§11.1) under key prefix p. */
static int dg_device(char *out, size_t size, const char *p) {
    return snprintf(out, size,
                    "%stype = constant_step\n%sdw_min = 0.015625\n%sdw_min_dtod = 0\n"
                    "%sdw_min_std = 0\n%sup_down_dtod = 0\n%sw_min = -100\n%sw_max = 100\n"
                    "%sw_min_dtod = 0\n%sw_max_dtod = 0\n",
                    p, p, p, p, p, p, p, p, p);
}

/* Transfer (TTv1) of two reference cells of two Dg devices each, perfect transfer reads,
 * deterministic transfer writes. */
static void nested_transfer_config(rpu_config *c) {
    CHECK_OK(rpu_config_default(c, RPU_KIND_SINGLE));
    char text[8192];
    int pos = snprintf(text, sizeof text,
                       "device.type = transfer\n"
                       "device.transfer_forward.is_perfect = true\n"
                       "device.transfer_update.pulse_type = deterministic_implicit\n");
    for (int k = 0; k < 2; ++k) {
        pos += snprintf(text + pos, sizeof text - (size_t)pos,
                        "device.unit_cell_devices.%d.type = reference\n", k);
        for (int m = 0; m < 2; ++m) {
            char p[96];
            snprintf(p, sizeof p, "device.unit_cell_devices.%d.unit_cell_devices.%d.", k, m);
            pos += dg_device(text + pos, sizeof text - (size_t)pos, p);
        }
    }
    CHECK_OK(rpu_config_parse(c, text, "nested transfer test"));
}

/* One call of one vector x = [1, 0, ...], d = [-g, 0, ...]: one UP step of g on the fast
 * device's (0, 0). */
static void call(rpu_tile *t, int in, int out) {
    float *x = calloc((size_t)in, sizeof(float)), *d = calloc((size_t)out, sizeof(float));
    x[0] = 1.0f;
    d[0] = -g;
    CHECK_OK(rpu_tile_update(t, x, d, 1, 1.0f));
    free(x);
    free(d);
}

/* §1.3 example: Transfer of two ReferenceUnitCell(SoftBounds x 2). */
static void test_names(void) {
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_parse(&c, "device.type = transfer\n" TEST_CELLS_TWO_REFERENCE, "names"));
    rpu_tile *t = tl_tile(&c, 3, 4, 5);
    if (!t) return;
    /* a single soft_bounds device's arrays (those its features use, in §1.3 rule 5 order) */
    rpu_config cd;
    CHECK_OK(rpu_config_default(&cd, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_set(&cd, "device.type", "soft_bounds"));
    rpu_tile *single = tl_tile(&cd, 3, 4, 5);
    if (!single) {
        rpu_tile_destroy(&t);
        return;
    }
    const int nb = rpu_tile_device_array_count(single);
    static const char *const first[] = {"max_bound", "min_bound", "dwmin_up", "dwmin_down"};
    for (int a = 0; a < 4 && a < nb; ++a) {
        const char *name = NULL;
        rpu_tile_device_array(single, a, &name);
        CHECK(name && strcmp(name, first[a]) == 0, "soft_bounds array %d: %s", a,
              name ? name : "(null)");
    }
    char want[96][48];
    int n = 0;
    for (int k = 0; k < 2; ++k) {
        for (int l = 0; l < 2; ++l) {
            for (int a = 0; a < nb && n < 90; ++a) {
                const char *name = NULL;
                rpu_tile_device_array(single, a, &name);
                snprintf(want[n++], sizeof want[0], "%s_%d_%d", name, l, k);
            }
            snprintf(want[n++], sizeof want[0], "hidden_weights_%d_%d", l, k);
        }
        snprintf(want[n++], sizeof want[0], "hidden_weights_%d", k);
    }
    rpu_tile_destroy(&single);
    CHECK(n == 2 * (2 * (nb + 1) + 1) && nb >= 6, "%d soft_bounds arrays", nb);
    CHECK(rpu_tile_device_array_count(t) == n, "%d arrays, want %d", rpu_tile_device_array_count(t),
          n);
    for (int a = 0; a < n && a < rpu_tile_device_array_count(t); ++a) {
        const char *name = NULL;
        CHECK(rpu_tile_device_array(t, a, &name) && strcmp(name, want[a]) == 0,
              "array %d is %s, want %s", a, name ? name : "(null)", want[a]);
    }
    /* the cell's visible weight is hidden_weights_k = gamma-weighted sum of its devices */
    for (int k = 0; k < 2; ++k) {
        char a0[32], a1[32], hk[32];
        snprintf(a0, sizeof a0, "hidden_weights_0_%d", k);
        snprintf(a1, sizeof a1, "hidden_weights_1_%d", k);
        snprintf(hk, sizeof hk, "hidden_weights_%d", k);
        float *p0 = rpu_tile_device_array_by_name(t, a0),
              *p1 = rpu_tile_device_array_by_name(t, a1);
        float *pk = rpu_tile_device_array_by_name(t, hk);
        CHECK(p0 && p1 && pk, "arrays of cell %d", k);
        if (!(p0 && p1 && pk)) continue;
        p0[5] = 0.25f;
        p1[5] = 0.125f;
        rpu_tile_state_loaded(t);
        EXPECT_NEAR("reference cell W = W0 - W1", pk[5], 0.125f);
    }
    rpu_tile_destroy(&t);
}

/* A Tiki-Taka v1 trace (§11.3) through reference cells: the fast cell A updates its device
 * 0 (single_fixed) and reads A0 - r; C's reference is 0, so W = C0. With r = 0 the trace is
 * the leaf trace W_k = g k (k + 1) / 2; with r = -2g every transfer moves (k + 2) g, so
 * W_k = g (k (k + 1) / 2 + 2k). */
static void test_trace(void) {
    for (int off = 0; off < 2; ++off) {
        rpu_config c;
        nested_transfer_config(&c);
        rpu_tile *t = tl_tile(&c, 1, 1, 3);
        if (!t) return;
        const float r = off ? -2.0f * g : 0.0f;
        float *ref = rpu_tile_device_array_by_name(t, "hidden_weights_1_0");
        CHECK(ref != NULL, "hidden_weights_1_0");
        if (!ref) {
            rpu_tile_destroy(&t);
            return;
        }
        ref[0] = r;
        rpu_tile_state_loaded(t);
        EXPECT_NEAR("A visible after the offset", tl_array_at(t, "hidden_weights_0", 0), -r);
        for (int k = 1; k <= 4; ++k) {
            call(t, 1, 1);
            const float want = g * (float)(k * (k + 1) / 2) + (off ? 2.0f * g * (float)k : 0.0f);
            EXPECT_NEAR("nested TTv1: A0", tl_array_at(t, "hidden_weights_0_0", 0), k * g);
            EXPECT_NEAR("nested TTv1: A visible", tl_array_at(t, "hidden_weights_0", 0), k * g - r);
            EXPECT_NEAR("nested TTv1: A's reference unchanged",
                        tl_array_at(t, "hidden_weights_1_0", 0), r);
            EXPECT_NEAR("nested TTv1: W", tl_weight_at(t, 0), want);
            EXPECT_NEAR("nested TTv1: C0 = W", tl_array_at(t, "hidden_weights_0_1", 0), want);
            EXPECT_NEAR("nested TTv1: C's reference", tl_array_at(t, "hidden_weights_1_1", 0),
                        0.0f);
        }
        CHECK(tl_state_item(t, "unit_cell_devices.0.current_update_idx", 0) == 4,
              "the fast cell counted %g vectors, want 4",
              tl_state_item(t, "unit_cell_devices.0.current_update_idx", 0));
        CHECK(tl_state_item(t, "unit_cell_devices.1.current_update_idx", 0) == 4,
              "the slow cell took %g writes, want 4",
              tl_state_item(t, "unit_cell_devices.1.current_update_idx", 0));
        /* set_weights (§5.8 then the cells' rules, §1.3: the lowest level wins): A's
         * device 0 and C's device 0 take 0 and W; the references keep their values */
        const float w = 0.5f;
        CHECK_OK(rpu_tile_set_weights(t, &w, RPU_WEIGHTS_STORED));
        EXPECT_NEAR("set: W", tl_weight_at(t, 0), w);
        EXPECT_NEAR("set: A0", tl_array_at(t, "hidden_weights_0_0", 0), 0.0f);
        EXPECT_NEAR("set: A's reference kept", tl_array_at(t, "hidden_weights_1_0", 0), r);
        EXPECT_NEAR("set: A visible", tl_array_at(t, "hidden_weights_0", 0), -r);
        EXPECT_NEAR("set: C0", tl_array_at(t, "hidden_weights_0_1", 0), w);
        rpu_tile_destroy(&t);
    }
}

/* mixed_precision (§9) writing a one_sided cell of two Dg devices against the same compound
 * on one Dg device: with deterministic pulses, no bounds in reach and steps of 2^-6, every
 * transfer moves g+ - g- exactly as it moves the single device, so the visible weights are
 * equal float for float; the cell takes one write per row with non-zero counts. */
static void test_mixed_one_sided(void) {
    rpu_config cs, cn;
    char text[4096];
    const char *head = "update.pulse_type = deterministic_implicit\n"
                       "device.type = mixed_precision\n";
    CHECK_OK(rpu_config_default(&cs, RPU_KIND_SINGLE));
    int pos = snprintf(text, sizeof text, "%s", head);
    dg_device(text + pos, sizeof text - (size_t)pos, "device.unit_cell_devices.0.");
    CHECK_OK(rpu_config_parse(&cs, text, "mixed, one device"));
    CHECK_OK(rpu_config_default(&cn, RPU_KIND_SINGLE));
    pos = snprintf(text, sizeof text, "%sdevice.unit_cell_devices.0.type = one_sided\n", head);
    pos += dg_device(text + pos, sizeof text - (size_t)pos,
                     "device.unit_cell_devices.0.unit_cell_devices.0.");
    dg_device(text + pos, sizeof text - (size_t)pos,
              "device.unit_cell_devices.0.unit_cell_devices.1.");
    CHECK_OK(rpu_config_parse(&cn, text, "mixed, one_sided cell"));
    const int R = 3, C = 5, m = 4;
    rpu_tile *ts = tl_tile(&cs, R, C, 7), *tn = tl_tile(&cn, R, C, 7);
    if (!ts || !tn) {
        rpu_tile_destroy(&ts);
        rpu_tile_destroy(&tn);
        return;
    }
    float x[4 * 5], d[4 * 3];
    int moved = 0;
    for (int call_i = 0; call_i < 6; ++call_i) {
        tl_fill_uniform(x, m * C, -1.0f, 1.0f, 11, (uint64_t)call_i);
        tl_fill_uniform(d, m * R, -0.2f, 0.2f, 12, (uint64_t)call_i);
        CHECK_OK(rpu_tile_update(ts, x, d, m, 0.5f));
        CHECK_OK(rpu_tile_update(tn, x, d, m, 0.5f));
        for (int q = 0; q < R * C; ++q) {
            moved |= tl_weight_at(ts, q) != 0.0f;
            CHECK(tl_weight_at(ts, q) == tl_weight_at(tn, q),
                  "call %d cell %d: one device %g, one_sided cell %g", call_i, q,
                  (double)tl_weight_at(ts, q), (double)tl_weight_at(tn, q));
        }
    }
    CHECK(moved, "no transfer moved the weights: the comparison is empty");
    /* W = g+ - g- with g+ = hidden_weights_1, g- = hidden_weights_0 (§4, unsuffixed §1.3 rule 4) */
    for (int q = 0; q < R * C; ++q)
        EXPECT_NEAR("W = g+ - g-", tl_weight_at(tn, q),
                    tl_array_at(tn, "hidden_weights_1", q) -
                        tl_array_at(tn, "hidden_weights_0", q));
    CHECK(tl_state_item(tn, "unit_cell_devices.0.current_update_idx", 0) > 0,
          "the cell took no writes");
    rpu_tile_destroy(&ts);
    rpu_tile_destroy(&tn);
}

/* Config: every key of a cell round-trips through the text; wrong combinations are refused
 * with the key named. */
static void test_config(void) {
    rpu_config c, back;
    nested_transfer_config(&c);
    CHECK_OK(rpu_config_set(&c, "device.unit_cell_devices.1.first_update_idx", "1"));
    CHECK_OK(rpu_config_set(&c, "device.unit_cell_devices.0.unit_cell_devices.1.dw_min", "0.5"));
    char *text = NULL;
    CHECK_OK(rpu_config_to_text(&c, &text));
    CHECK(text && strstr(text, "device.unit_cell_devices.1.first_update_idx = 1\n"),
          "the cell's key is written");
    CHECK(text && strstr(text, "device.unit_cell_devices.0.unit_cell_devices.1.dw_min = 0.5\n"),
          "the cell's device key is written");
    CHECK_OK(rpu_config_default(&back, RPU_KIND_FLOATING_POINT));
    CHECK_OK(rpu_config_parse(&back, text, "round trip"));
    CHECK(rpu_config_equal(&c, &back), "the config does not round-trip");
    free(text);
    CHECK_OK(
        rpu_config_set(&back, "device.unit_cell_devices.1.unit_cell_devices.0.dw_min", "0.25"));
    CHECK(!rpu_config_equal(&c, &back), "a changed device of a cell compares equal");

    struct {
        const char *key, *value, *want;
    } bad[] = {
        {"device.unit_cell_devices.0.dw_min", "0.1",
         "unit_cell_devices.0.unit_cell_devices.M.dw_min"},
        {"device.unit_cell_devices.0.transfer_every", "2", "not a parameter"},
        {"device.unit_cell_devices.0.unit_cell_devices.0.type", "reference", "single devices"},
        {"device.unit_cell_devices.0.unit_cell_devices.2.dw_min", "0.1", "does not exist"},
        {"device.unit_cell_devices.0.unit_cell_devices.x.dw_min", "0.1", "unit_cell_devices.M"},
        {"device.unit_cell_devices.0.refresh_every", "1", "not a parameter"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        rpu_config k = c;
        const rpu_status s = rpu_config_set(&k, bad[i].key, bad[i].value);
        CHECK(s == RPU_ERR_CONFIG && strstr(rpu_last_error(), bad[i].key) &&
                  strstr(rpu_last_error(), bad[i].want),
              "%s = %s: %s (want the key and \"%s\")", bad[i].key, bad[i].value, rpu_last_error(),
              bad[i].want);
    }
    /* cells nest only in transfer compounds and mixed_precision */
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_parse(&c,
                              "device.type = vector\n"
                              "device.unit_cell_devices.0.type = reference\n"
                              "device.unit_cell_devices.0.unit_cell_devices.0.type = soft_bounds\n",
                              "vector of cells"));
    CHECK(rpu_config_validate(&c) == RPU_ERR_CONFIG &&
              strstr(rpu_last_error(), "device.unit_cell_devices.0.type = reference"),
          "a vector of cells: %s", rpu_last_error());
    /* a cell's own rules name its keys */
    nested_transfer_config(&c);
    CHECK_OK(rpu_config_set(&c, "device.unit_cell_devices.1.first_update_idx", "1"));
    CHECK_OK(rpu_config_set(&c, "device.unit_cell_devices.1.gamma_vec", "1, 2, 3"));
    CHECK(rpu_config_validate(&c) == RPU_ERR_CONFIG &&
              strstr(rpu_last_error(), "device.unit_cell_devices.1.gamma_vec"),
          "a cell's gamma_vec: %s", rpu_last_error());
    /* a cell takes pulses: exact transfer writes are refused at tile creation, naming the key */
    nested_transfer_config(&c);
    CHECK_OK(rpu_config_set(&c, "device.transfer_update.pulse_type", "none"));
    {
        rpu_tile_params p;
        rpu_tile_params_default(&p, 2, 3);
        rpu_tile *t = NULL;
        CHECK(rpu_tile_create(&p, &c, &t) == RPU_ERR_CONFIG &&
                  strstr(rpu_last_error(), "device.transfer_update.pulse_type = none") &&
                  strstr(rpu_last_error(), "device.unit_cell_devices.1"),
              "exact writes to a cell: %s", rpu_last_error());
        rpu_tile_destroy(&t);
    }
    nested_transfer_config(&c);
    CHECK_OK(rpu_config_set(&c, "device.unit_cell_devices.0.unit_cell_devices.1.w_min", "0.5"));
    CHECK(rpu_config_validate(&c) == RPU_ERR_CONFIG &&
              strstr(rpu_last_error(), "device.unit_cell_devices.0.unit_cell_devices.1.w_min"),
          "a cell's device: %s", rpu_last_error());
}

/* The tile state (arrays and items) of a trained nested tile, written into a fresh tile of
 * the same config and seed, continues identically (what a checkpoint restart does). */
static void test_state_restore(void) {
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(rpu_config_parse(
        &c,
        "device.type = chopped_transfer\ndevice.in_chop_prob = 0.3\ndevice.auto_scale = true\n"
        "device.transfer_forward.out_noise = 0.05\n" TEST_CELLS_VECTOR_AND_ONE_SIDED,
        "restore"));
    const int R = 4, C = 6, m = 8;
    rpu_tile *a = tl_tile(&c, R, C, 9), *b = tl_tile(&c, R, C, 9);
    if (!a || !b) {
        rpu_tile_destroy(&a);
        rpu_tile_destroy(&b);
        return;
    }
    float x[8 * 6], d[8 * 4];
    for (int k = 0; k < 5; ++k) {
        tl_fill_uniform(x, m * C, -1.0f, 1.0f, 21, (uint64_t)k);
        tl_fill_uniform(d, m * R, -0.5f, 0.5f, 22, (uint64_t)k);
        CHECK_OK(rpu_tile_update(a, x, d, m, 0.1f));
    }
    rpu_state_item ia[RPU_TILE_MAX_STATE_ITEMS], ib[RPU_TILE_MAX_STATE_ITEMS];
    const int na = rpu_tile_state_items(a, ia, RPU_TILE_MAX_STATE_ITEMS);
    const int nb = rpu_tile_state_items(b, ib, RPU_TILE_MAX_STATE_ITEMS);
    CHECK(na == nb && na <= RPU_TILE_MAX_STATE_ITEMS, "items %d and %d", na, nb);
    int cell_items = 0;
    for (int i = 0; i < na && i < nb; ++i) {
        CHECK(strcmp(ia[i].name, ib[i].name) == 0, "item %d: %s vs %s", i, ia[i].name, ib[i].name);
        cell_items += strncmp(ia[i].name, "unit_cell_devices.", 18) == 0;
        memcpy(ib[i].data, ia[i].data, rpu_state_item_bytes(&ia[i]));
    }
    CHECK(cell_items >= 10, "%d state items of the cells", cell_items);
    rpu_tile_state_loaded(b);
    for (int k = 5; k < 10; ++k) {
        tl_fill_uniform(x, m * C, -1.0f, 1.0f, 21, (uint64_t)k);
        tl_fill_uniform(d, m * R, -0.5f, 0.5f, 22, (uint64_t)k);
        CHECK_OK(rpu_tile_update(a, x, d, m, 0.1f));
        CHECK_OK(rpu_tile_update(b, x, d, m, 0.1f));
    }
    int same = 1;
    for (int i = 0; i < na && i < nb; ++i)
        same &= memcmp(ia[i].data, ib[i].data, rpu_state_item_bytes(&ia[i])) == 0;
    CHECK(same, "the restored tile's state differs after 5 more updates");
    /* the cells' own streams: a tile with another seed differs */
    rpu_tile *o = tl_tile(&c, R, C, 10);
    if (o) {
        for (int k = 0; k < 10; ++k) {
            tl_fill_uniform(x, m * C, -1.0f, 1.0f, 21, (uint64_t)k);
            tl_fill_uniform(d, m * R, -0.5f, 0.5f, 22, (uint64_t)k);
            CHECK_OK(rpu_tile_update(o, x, d, m, 0.1f));
        }
        int diff = 0;
        for (int q = 0; q < R * C; ++q)
            diff |= tl_weight_at(o, q) != tl_weight_at(a, q);
        CHECK(diff, "another seed gave the same weights");
    }
    rpu_tile_destroy(&o);
    rpu_tile_destroy(&a);
    rpu_tile_destroy(&b);
}

/* A chopped (or dynamic) compound whose fast device is a single soft_bounds device and whose
 * slow device is a reference cell: the chunked update (one engine pass per chunk, reads from
 * snapshots, compound.c chopped_chunks) writes the cell exactly as the vector-by-vector
 * update does: every array and state item float for float (soft_bounds merges no pulses). */
static void test_chunked_writes_to_a_cell(void) {
    static const char *types[] = {"chopped_transfer", "dynamic_transfer"};
    const int R = 5, C = 7, n = 90; /* chunks of 64 and 26 vectors */
    float x[90 * 7], d[90 * 5];
    for (int ty = 0; ty < 2; ++ty) {
        rpu_config c;
        CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
        char text[2048];
        snprintf(text, sizeof text,
                 "device.type = %s\ndevice.in_chop_prob = 0.3\ndevice.auto_scale = true\n"
                 "device.fast_lr = 0.5\ndevice.buffer_granularity = 0.1\n"
                 "device.transfer_forward.out_noise = 0.02\n"
                 "device.unit_cell_devices.0.type = soft_bounds\n"
                 "device.unit_cell_devices.0.write_noise_std = 0.2\n"
                 "device.unit_cell_devices.1.type = reference\n"
                 "device.unit_cell_devices.1.unit_cell_devices.0.type = constant_step\n"
                 "device.unit_cell_devices.1.unit_cell_devices.1.type = constant_step\n",
                 types[ty]);
        CHECK_OK(rpu_config_parse(&c, text, "chunked writes"));
        rpu_tile *a = tl_tile(&c, R, C, 13), *b = tl_tile(&c, R, C, 13);
        if (!a || !b) {
            rpu_tile_destroy(&a);
            rpu_tile_destroy(&b);
            return;
        }
        CHECK(a->cmp->chunked == 1, "%s with a leaf fast device is chunked", types[ty]);
        b->cmp->chunked = 0;
        for (int call = 0; call < 3; ++call) {
            tl_fill_uniform(x, n * C, -1, 1, 51, (uint64_t)call);
            tl_fill_uniform(d, n * R, -0.5f, 0.5f, 52, (uint64_t)call);
            CHECK_OK(rpu_tile_update(a, x, d, n, 0.05f));
            CHECK_OK(rpu_tile_update(b, x, d, n, 0.05f));
        }
        rpu_state_item ia[RPU_TILE_MAX_STATE_ITEMS], ib[RPU_TILE_MAX_STATE_ITEMS];
        const int na = rpu_tile_state_items(a, ia, RPU_TILE_MAX_STATE_ITEMS);
        const int nb = rpu_tile_state_items(b, ib, RPU_TILE_MAX_STATE_ITEMS);
        CHECK(na == nb, "%s: %d and %d state items", types[ty], na, nb);
        for (int q = 0; q < na && q < nb; ++q)
            CHECK(!strcmp(ia[q].name, ib[q].name) && ia[q].count == ib[q].count &&
                      !memcmp(ia[q].data, ib[q].data, rpu_state_item_bytes(&ia[q])),
                  "%s: %s differs from the vector-by-vector update", types[ty], ia[q].name);
        CHECK(tl_state_item(a, "unit_cell_devices.1.current_update_idx", 0) > 0,
              "%s: the cell took no writes", types[ty]);
        rpu_tile_destroy(&a);
        rpu_tile_destroy(&b);
    }
}

/* A reference cell (single_fixed: every vector of a call updates the same device) whose
 * devices merge pulses (constant_step) updates that device through the single-device engine
 * (compound.c): with dw_min_std = 0 it agrees with the per-pulse update to rounding and the
 * reference device is untouched; with cycle-to-cycle noise the two draw differently (the
 * merged path is the one taken). Alone and as the fast device of a transfer compound. */
static void test_single_fixed_merges(void) {
    for (int nested = 0; nested < 2; ++nested)
        for (int noisy = 0; noisy < 2; ++noisy) {
            rpu_config c;
            CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
            char text[1024];
            const char *p = nested ? "device.unit_cell_devices.0." : "device.";
            snprintf(text, sizeof text,
                     "%s%stype = reference\n"
                     "%sunit_cell_devices.0.type = constant_step\n"
                     "%sunit_cell_devices.0.dw_min_std = %s\n"
                     "%sunit_cell_devices.1.type = constant_step\n%s",
                     nested ? "device.type = transfer\ndevice.transfer_every = 0\n" : "", p, p, p,
                     noisy ? "0.3" : "0", p,
                     nested ? "device.unit_cell_devices.1.type = constant_step\n" : "");
            CHECK_OK(rpu_config_parse(&c, text, "single_fixed"));
            const int R = 6, C = 8, n = 40;
            rpu_tile *a = tl_tile(&c, R, C, 17), *b = tl_tile(&c, R, C, 17);
            if (!a || !b) {
                rpu_tile_destroy(&a);
                rpu_tile_destroy(&b);
                return;
            }
            rpu_tile *cb = nested ? b->cmp->cell[0] : b; /* the reference cell's tile */
            cb->update_per_pulse = 1;
            float x[40 * 8], d[40 * 6];
            for (int call = 0; call < 3; ++call) {
                tl_fill_uniform(x, n * C, -1, 1, 61, (uint64_t)call);
                tl_fill_uniform(d, n * R, -0.3f, 0.3f, 62, (uint64_t)call);
                CHECK_OK(rpu_tile_update(a, x, d, n, 0.1f));
                CHECK_OK(rpu_tile_update(b, x, d, n, 0.1f));
            }
            const char *d0 = nested ? "hidden_weights_0_0" : "hidden_weights_0";
            const char *d1 = nested ? "hidden_weights_1_0" : "hidden_weights_1";
            int moved = 0, near = 1, same = 1, ref_same = 1;
            for (int q = 0; q < R * C; ++q) {
                const float wa = tl_array_at(a, d0, q), wb = tl_array_at(b, d0, q);
                moved |= wa != 0.0f;
                near &= fabsf(wa - wb) <= 1e-5f;
                same &= wa == wb;
                ref_same &= tl_array_at(a, d1, q) == 0.0f && tl_array_at(b, d1, q) == 0.0f;
            }
            CHECK(moved, "nested %d noisy %d: the device did not move", nested, noisy);
            CHECK(ref_same, "nested %d noisy %d: the reference device moved", nested, noisy);
            if (noisy)
                CHECK(!same, "nested %d: merged and per-pulse updates drew alike", nested);
            else
                CHECK(near, "nested %d: merged and per-pulse updates differ beyond rounding",
                      nested);
            rpu_tile_destroy(&a);
            rpu_tile_destroy(&b);
        }
}

/* A unit cell written by mixed precision counts one update call of m = the rows of the
 * transfer chunk per row write (spec §9.4): a one_sided cell with refresh_every = 1 and
 * units_in_mbatch refreshes once per full transfer, not after every row. Each refresh reads
 * g+ and g- column by column (2 C reads), so after w row writes the cell has made
 * 2 C floor(w / R) reads. */
static void test_refresh_once_per_transfer(void) {
    rpu_config c;
    CHECK_OK(rpu_config_default(&c, RPU_KIND_SINGLE));
    CHECK_OK(
        rpu_config_parse(&c,
                         "device.type = mixed_precision\n"
                         "device.unit_cell_devices.0.type = one_sided\n"
                         "device.unit_cell_devices.0.refresh_every = 1\n"
                         "device.unit_cell_devices.0.refresh_forward.is_perfect = true\n"
                         "device.unit_cell_devices.0.unit_cell_devices.0.type = constant_step\n",
                         "refresh once"));
    const int R = 4, C = 3, m = 2;
    rpu_tile *t = tl_tile(&c, R, C, 23);
    if (!t) return;
    float x[2 * 3], d[2 * 4];
    for (int call = 0; call < 5; ++call) {
        for (int q = 0; q < m * C; ++q)
            x[q] = 1.0f;
        for (int q = 0; q < m * R; ++q)
            d[q] = q % 2 ? 0.5f : -0.5f; /* the same every call: counts in every row */
        CHECK_OK(rpu_tile_update(t, x, d, m, 1.0f));
    }
    const double writes = tl_state_item(t, "unit_cell_devices.0.current_update_idx", 0);
    const double reads = tl_state_item(t, "unit_cell_devices.0.transfer_read_calls", 0);
    CHECK(writes >= 2 * R, "%g row writes: want at least two full transfers", writes);
    CHECK(reads == 2.0 * C * (double)((long)writes / R),
          "%g refresh reads after %g row writes of %d rows: want %g (one refresh per transfer)",
          reads, writes, R, 2.0 * C * (double)((long)writes / R));
    rpu_tile_destroy(&t);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    if (tl_rank() == 0) {
        test_names();
        test_trace();
        test_mixed_one_sided();
        test_config();
        test_state_restore();
        test_chunked_writes_to_a_cell();
        test_single_fixed_merges();
        test_refresh_once_per_transfer();
    }
    return tl_finish();
}
