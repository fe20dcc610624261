/* Tests of the tile's weight update (spec §3): the bit-parallel engine against the
 * slot-by-slot reference for the same random bits, the expected update against
 * -lr·d xᵀ (bounds derived from the binomial pulse counts), saturation above desired_bl,
 * exact floating-point paths, construction seeds, memory per cell, errors. */
#include "rpusim/config.h"
#include "rpusim/tile.h"
#include "ref_update.h"
#include "testlib.h"
#include "tile_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static rpu_tile *make(const rpu_config *c, int out, int in, uint64_t seed, uint32_t tile_id) {
    rpu_tile_params p = {.out_size = out,
                         .in_size = in,
                         .seed = seed,
                         .layer_id = 2,
                         .tile_id = tile_id,
                         .mac = RPU_MAC_BLAS};
    rpu_tile *t = NULL;
    CHECK_OK(rpu_tile_create(&p, c, &t));
    return t;
}

static void set_device(rpu_config *c, const char *type) {
    CHECK_OK(rpu_config_set(c, "device.type", type));
}

/* The pulse types of the engine's cases. */
static const char *const pulse_types[] = {"stochastic_compressed", "stochastic", "mean_count",
                                          "deterministic_implicit"};
enum { N_PULSE_TYPES = sizeof pulse_types / sizeof pulse_types[0] };

/* The default single-device config with device type dev and pulse type pulse_types[pt]. */
static void device_config(rpu_config *c, const char *dev, int pt) {
    rpu_config_default(c, RPU_KIND_SINGLE);
    set_device(c, dev);
    CHECK_OK(rpu_config_set(c, "update.pulse_type", pulse_types[pt]));
}

/* ------------------------------------------------------------------ engine vs reference */

/* The engine against the reference on two tiles with the same keys: two calls of n
 * vectors (one of them zero), weights U(-wr, wr); per_pulse selects the per-pulse mode
 * (t->update_per_pulse) on both. */
static void engine_case_ws(const rpu_config *c, int out, int in, int n, float lr, uint64_t seed,
                           const char *label, float wr, int per_pulse, int hot, int xsparse,
                           int dsparse) {
    rpu_tile *a = make(c, out, in, seed, 1), *b = make(c, out, in, seed, 1);
    if (!a || !b) return;
    a->update_per_pulse = b->update_per_pulse = per_pulse;
    float *w = malloc(sizeof(float) * out * in), *x = malloc(sizeof(float) * n * in);
    float *d = malloc(sizeof(float) * n * out);
    tl_fill_uniform(w, out * in, -wr, wr, seed, 1);
    /* hot > 0: two cells per row set beyond the bounds (clipped onto them); hot < 0: the
     * cells of every column j with j % 45 == 5, one bound or the other */
    for (int q = 0; hot > 0 && q < out * in; ++q)
        if (q % in == hot || q % in == in - 1 - hot) w[q] = q % in == hot ? 1.0f : -1.0f;
    for (int q = 0; hot < 0 && q < out * in; ++q)
        if (q % in % 45 == 5) w[q] = (q / in + q % in) % 2 ? 1.0f : -1.0f;
    CHECK_OK(rpu_tile_set_weights(a, w, RPU_WEIGHTS_STORED));
    CHECK_OK(rpu_tile_set_weights(b, w, RPU_WEIGHTS_STORED));
    for (int call = 0; call < 2; ++call) {
        tl_fill_uniform(x, n * in, -1, 1, seed + (uint64_t)call, 2);
        tl_fill_uniform(d, n * out, -0.05f, 0.05f, seed + (uint64_t)call, 3);
        if (n > 1) memset(x + in, 0, sizeof(float) * (size_t)in); /* a zero vector */
        /* xsparse, dsparse > 0: about one element in xsparse of x and one in dsparse of d
         * non-zero (vector 0 stays dense) */
        for (int v = 1; v < n; ++v) {
            for (int j = 0; xsparse > 0 && j < in; ++j)
                if ((j + v) % xsparse != 0) x[(size_t)v * in + j] = 0;
            for (int i = 0; dsparse > 0 && i < out; ++i)
                if ((i + 2 * v) % dsparse != 0) d[(size_t)v * out + i] = 0;
        }
        CHECK_OK(rpu_tile_update(a, x, d, n, lr));
        CHECK(ref_update(b, x, d, n, lr) == 0, "%s: reference ran", label);
    }
    float *wa = malloc(sizeof(float) * out * in), *wb = malloc(sizeof(float) * out * in);
    rpu_tile_get_weights(a, wa, RPU_WEIGHTS_STORED);
    rpu_tile_get_weights(b, wb, RPU_WEIGHTS_STORED);
    size_t bad = 0, changed = 0;
    for (int q = 0; q < out * in; ++q) {
        bad += memcmp(&wa[q], &wb[q], sizeof(float)) != 0;
        changed += wa[q] != w[q];
    }
    CHECK(bad == 0, "%s: fast engine == slot-by-slot reference (%zu of %d cells differ)", label,
          bad, out * in);
    CHECK(changed > 0, "%s: the update changed weights (%zu cells)", label, changed);
    const float *pa = rpu_tile_device_array_by_name(a, "persistent_weights");
    const float *pb = rpu_tile_device_array_by_name(b, "persistent_weights");
    if (pa && pb)
        CHECK(memcmp(pa, pb, sizeof(float) * out * in) == 0, "%s: persistent weights equal", label);
    free(w), free(x), free(d), free(wa), free(wb);
    rpu_tile_destroy(&a), rpu_tile_destroy(&b);
}

static void engine_case_w(const rpu_config *c, int out, int in, int n, float lr, uint64_t seed,
                          const char *label, float wr, int per_pulse, int hot) {
    engine_case_ws(c, out, in, n, lr, seed, label, wr, per_pulse, hot, 0, 0);
}

static void engine_case(const rpu_config *c, int out, int in, int n, float lr, uint64_t seed,
                        const char *label) {
    engine_case_w(c, out, in, n, lr, seed, label, 0.3f, 0, 0);
    if (c->device.type == RPU_DEVICE_CONSTANT_STEP) {
        char l2[160];
        snprintf(l2, sizeof l2, "%s, per pulse", label);
        engine_case_w(c, out, in, n, lr, seed, l2, 0.3f, 1, 0);
    }
}

static void test_engine_vs_reference(void) {
    const char *devices[] = {
        "constant_step", "linear_step", "soft_bounds",    "soft_bounds_pmax",
        "exp_step",      "pow_step",    "piecewise_step", "soft_bounds_reference"};
    int shape = 0;
    for (size_t dv = 0; dv < sizeof devices / sizeof devices[0]; ++dv)
        for (int pt = 0; pt < N_PULSE_TYPES; ++pt, ++shape) {
            rpu_config c;
            device_config(&c, devices[dv], pt);
            if (c.device.type == RPU_DEVICE_SOFT_BOUNDS_REFERENCE) { /* a reference in use */
                c.device.reference_std = 0.2f;
                c.device.subtract_symmetry_point = true;
                c.device.slope_up_dtod = 0.1f;
                c.device.mult_noise = shape % 2 == 0;
            }
            if (shape % 3 == 1) c.device.dw_min_std = 0; /* no cycle-to-cycle noise */
            if (shape % 4 == 2 && strcmp(devices[dv], "constant_step") != 0)
                c.device.write_noise_std = 2.0f;
            if (shape % 5 == 3) {
                c.update.res = 0.02f;
                c.update.sto_round = true;
            }
            int out = 3 + (shape * 7) % 17, in = 2 + (shape * 11) % 23, n = 1 + shape % 4;
            char label[128];
            snprintf(label, sizeof label, "%s/%s", devices[dv], pulse_types[pt]);
            engine_case(&c, out, in, n, 0.05f + 0.3f * (float)(shape % 3), 300 + (uint64_t)shape,
                        label);
        }
    /* sparse x and d (one element in 12 non-zero): only their pulse trains are drawn, at
     * the same addresses as the dense draw; one and two mask words */
    static const char *sparse_devices[] = {"constant_step", "soft_bounds", "exp_step"};
    for (size_t dv = 0; dv < 3; ++dv)
        for (int pt = 0; pt < 2; ++pt)
            for (int bl = 0; bl < 2; ++bl) {
                rpu_config cs;
                rpu_config_default(&cs, RPU_KIND_SINGLE);
                set_device(&cs, sparse_devices[dv]);
                CHECK_OK(rpu_config_set(&cs, "update.pulse_type",
                                        pt ? "stochastic" : "stochastic_compressed"));
                if (bl) cs.update.desired_bl = 100;
                char label[128];
                snprintf(label, sizeof label, "sparse %s/%s/BL %d", sparse_devices[dv],
                         pt ? "stochastic" : "compressed", bl ? 100 : 31);
                engine_case_ws(&cs, 26, 41, 6, 0.3f, 500 + dv * 4 + (uint64_t)(pt * 2 + bl), label,
                               0.3f, 0, 0, 12, 12);
            }
    /* one non-zero input per vector on 130 columns (every row's pulses on one cell, as in a
     * transfer write) */
    static const char *hot_devices[] = {"constant_step", "soft_bounds", "exp_step"};
    for (size_t dv = 0; dv < 3; ++dv) {
        rpu_config ch;
        rpu_config_default(&ch, RPU_KIND_SINGLE);
        set_device(&ch, hot_devices[dv]);
        char label[128];
        snprintf(label, sizeof label, "one-hot x, %s", hot_devices[dv]);
        engine_case_ws(&ch, 20, 130, 6, 1.0f, 520 + dv, label, 0.3f, 0, 0, 130, 0);
        if (dv == 0)
            engine_case_ws(&ch, 20, 130, 6, 1.0f, 523, "one-hot x, per pulse", 0.3f, 1, 0, 130, 0);
    }
    /* long pulse trains (two mask words), no BL management */
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.update.desired_bl = 100;
    engine_case(&c, 9, 13, 3, 2.0f, 77, "desired_bl=100");
    c.update.update_bl_management = false;
    c.update.update_management = false;
    engine_case(&c, 9, 13, 3, 0.5f, 78, "no update management");
    /* dynamic pulse-train length (update.fixed_bl = false, spec §3.3): without update
     * management BL = max(ceil(lr / g), 1) when g desired_bl < lr (lr 0.05, dw_min 0.001:
     * BL 50 > 31), else desired_bl; with update management and fixed_bl false the same BL
     * and A, B rescaled by the vector's maxima */
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.update.fixed_bl = false;
    c.update.update_bl_management = false;
    c.update.update_management = false;
    engine_case(&c, 7, 11, 3, 0.05f, 81, "fixed_bl=false, BL = ceil(lr/dw_min) = 50");
    engine_case(&c, 7, 11, 3, 0.02f, 82, "fixed_bl=false, BL = desired_bl (lr small)");
    c.update.update_management = true;
    engine_case(&c, 5, 9, 4, 0.05f, 83, "fixed_bl=false with update management");
    /* diffusion/decay/reset arrays present must not change the update itself */
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.device.lifetime = 100;
    c.device.diffusion = 0.01f;
    c.device.reset_dtod = 0.1f;
    engine_case(&c, 6, 5, 2, 0.2f, 79, "with decay/diffusion arrays");
    /* constant_step weights all over [-0.6, 0.6] with bounds near +-0.6 and long trains:
     * merged and single-pulse cells side by side in a row (both modes, with and without
     * cycle-to-cycle noise, 40 columns: the kernels' vector groups and tails) */
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.update.desired_bl = 100;
    for (int pp = 0; pp < 2; ++pp) {
        engine_case_w(&c, 9, 40, 3, 3.0f, 91, pp ? "near bounds, per pulse" : "near bounds, merged",
                      0.6f, pp, 0);
        c.device.dw_min_std = 0;
        engine_case_w(&c, 9, 40, 3, 3.0f, 92,
                      pp ? "near bounds, no c2c, per pulse" : "near bounds, no c2c, merged", 0.6f,
                      pp, 0);
        c.device.dw_min_std = 0.3f;
    }
    /* 128 columns, weights far from the bounds except two cells per row on a bound: the
     * rows' pulses merge over the chunk but for those two, which the engine takes vector
     * by vector from a list (its sparse path) */
    rpu_config_default(&c, RPU_KIND_SINGLE);
    engine_case_w(&c, 6, 128, 5, 1.0f, 93, "two cells per row on a bound", 0.1f, 0, 5);
    c.device.dw_min_std = 0;
    engine_case_w(&c, 6, 128, 5, 1.0f, 94, "two cells per row on a bound, no c2c", 0.1f, 0, 9);
    /* pulse trains of one slot (BL 1) and of about 4 on 200 columns, 70 vectors (chunks of
     * 64 and 6), the cells of five columns 45 apart on a bound: a row's unmerged cells lie
     * far apart, and the engine takes its single pulses on the columns between the first
     * and the last of them */
    rpu_config_default(&c, RPU_KIND_SINGLE);
    engine_case_w(&c, 7, 200, 70, 0.01f, 95, "BL 1, cells on a bound 45 apart", 0.1f, 0, -1);
    engine_case_w(&c, 7, 200, 70, 0.08f, 96, "BL 4, cells on a bound 45 apart", 0.1f, 0, -1);
}

/* ------------------------------------------------------------------ read columns */

/* The fast device's pass of a chopped update (rpu_update_pulses_snap) against the
 * reference ref_update_snap, on a single constant_step tile's own device: n vectors with
 * their own learning rates; reads of `reads` columns after every vector (the column
 * pointer moving by 7, one read repeated at every tenth vector); the cells of every column
 * j with j % bmod == 5 on a bound, so that some pieces cannot merge (bmod >= in: only
 * column 5, read after every vector, so that rows keep few unmerged cells and take the
 * engine's sparse path, with reads between their vectors). Weights and every snapshot bitwise; and
 * the read columns' pieces must have merged somewhere (the same pass with t->snap_unmerged
 * differs). */
static void snap_case(const rpu_config *c, int out, int in, int n, float lr, uint64_t seed,
                      const char *label, int reads, int bmod) {
    rpu_tile *a = make(c, out, in, seed, 1), *b = make(c, out, in, seed, 1);
    rpu_tile *u = make(c, out, in, seed, 1);
    if (!a || !b || !u) return;
    u->snap_unmerged = 1;
    float *w = malloc(sizeof(float) * out * in), *x = malloc(sizeof(float) * n * in);
    float *d = malloc(sizeof(float) * n * out), *lrs = malloc(sizeof(float) * n);
    const int cap = n * (reads + 1);
    int *vec = malloc(sizeof(int) * cap), *col = malloc(sizeof(int) * cap);
    int *excl = malloc(sizeof(int) * cap), *seen = calloc((size_t)in, sizeof(int));
    float *va = malloc(sizeof(float) * cap * out), *vb = malloc(sizeof(float) * cap * out);
    float *vu = malloc(sizeof(float) * cap * out);
    tl_fill_uniform(w, out * in, -0.1f, 0.1f, seed, 1);
    for (int q = 0; q < out * in; ++q)
        if (q % in % bmod == 5) w[q] = (q / in + q % in) % 2 ? 1.0f : -1.0f;
    tl_fill_uniform(x, n * in, -1, 1, seed, 2);
    tl_fill_uniform(d, n * out, -0.05f, 0.05f, seed, 3);
    int nev = 0, nex = 0;
    for (int v = 0; v < n; ++v) {
        lrs[v] = lr * (1.0f + 0.5f * (float)(v % 3));
        for (int r = 0; r < reads + (v % 10 == 0); ++r) {
            vec[nev] = v;
            col[nev] = bmod >= in && r == 0 ? 5 : (v * 7 + (r < reads ? r * 3 : 0)) % in;
            if (!seen[col[nev]]) seen[col[nev]] = 1, excl[nex++] = col[nev];
            ++nev;
        }
    }
    rpu_tile *tiles[3] = {a, b, u};
    for (int q = 0; q < 3; ++q)
        CHECK_OK(rpu_tile_set_weights(tiles[q], w, RPU_WEIGHTS_STORED));
    const rpu_update_layout L = rpu_update_layout_for(out, in);
    const uint64_t base = a->unext;
    for (int q = 0; q < 3; ++q)
        tiles[q]->unext += (uint64_t)n * L.total;
    const rpu_read_snap sa = {
        .n = nev, .vec = vec, .col = col, .val = va, .n_excl = nex, .excl = excl};
    const rpu_read_snap su = {
        .n = nev, .vec = vec, .col = col, .val = vu, .n_excl = nex, .excl = excl};
    const rpu_pulse_target ta = {.dev = &a->dev, .w = a->w}, tu = {.dev = &u->dev, .w = u->w};
    CHECK_OK(rpu_update_pulses_snap(a, &a->cfg.update, a->dev.granularity, base, x, d, n, lrs, &ta,
                                    &sa));
    CHECK_OK(rpu_update_pulses_snap(u, &u->cfg.update, u->dev.granularity, base, x, d, n, lrs, &tu,
                                    &su));
    CHECK(ref_update_snap(b, &b->cfg.update, b->dev.granularity, base, x, d, n, lrs, nev, vec, col,
                          vb) == 0,
          "%s: reference ran", label);
    size_t bad = 0, badv = 0, other = 0;
    for (int q = 0; q < out * in; ++q) {
        bad += memcmp(&a->w[q], &b->w[q], sizeof(float)) != 0;
        other += a->w[q] != u->w[q];
    }
    for (int q = 0; q < nev * out; ++q)
        badv += memcmp(&va[q], &vb[q], sizeof(float)) != 0;
    CHECK(bad == 0, "%s: weights == reference (%zu of %d differ)", label, bad, out * in);
    CHECK(badv == 0, "%s: read values == reference (%zu of %d differ)", label, badv, nev * out);
    CHECK(other > 0, "%s: the pieces merged somewhere (%zu cells differ from unmerged)", label,
          other);
    free(w), free(x), free(d), free(lrs), free(vec), free(col), free(excl), free(seen);
    free(va), free(vb), free(vu);
    rpu_tile_destroy(&a), rpu_tile_destroy(&b), rpu_tile_destroy(&u);
}

/* 7 x 200 (chunks of 64: 150 vectors, a last chunk of 22), one and two reads per vector, BL
 * 1 and about 4; 7 x 9 (every column read several times per chunk); with and without
 * cycle-to-cycle noise. */
static void test_snap_vs_reference(void) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    for (int nz = 0; nz < 2; ++nz) {
        c.device.dw_min_std = nz ? 0.0f : 0.3f;
        const char *tag = nz ? ", no c2c" : "";
        char l[160];
        snprintf(l, sizeof l, "snapshots: 200 columns, BL 1, 1 read%s", tag);
        snap_case(&c, 7, 200, 150, 0.01f, 97, l, 1, 45);
        snprintf(l, sizeof l, "snapshots: 200 columns, BL 4, 2 reads%s", tag);
        snap_case(&c, 7, 200, 150, 0.08f, 98, l, 2, 45);
        snprintf(l, sizeof l, "snapshots: 9 columns, BL 4, 1 read%s", tag);
        snap_case(&c, 7, 9, 150, 0.08f, 99, l, 1, 45);
        snprintf(l, sizeof l, "snapshots: 200 columns, one on a bound, BL 1, 1 read%s", tag);
        snap_case(&c, 7, 200, 150, 0.01f, 96, l, 1, 200);
        snprintf(l, sizeof l, "snapshots: 200 columns, BL 1 and 2, 1 read%s", tag);
        snap_case(&c, 7, 200, 150, 0.015f, 95, l, 1, 45);
        snprintf(l, sizeof l, "snapshots: 200 columns, BL 1 and 2, 2 reads, 3 on bounds%s", tag);
        snap_case(&c, 7, 200, 150, 0.015f, 94, l, 2, 9);
    }
}

/* ------------------------------------------------------------------ a compound's write */

/* One vector through rpu_update_pulses (a compound's transfer or refresh write: one target,
 * one vector) against the slot-by-slot reference of a single device's update per pulse on
 * a tile with the same keys, three calls: x with xnz non-zero elements (0: dense), d with
 * about one row in dsp non-zero (0: dense). The engine takes such an x column by column
 * and the rows' normals in one batch, such a d row by row. */
static void write_case(const rpu_config *c, int out, int in, float lr, uint64_t seed,
                       const char *label, int xnz, int dsp) {
    rpu_tile *a = make(c, out, in, seed, 1), *b = make(c, out, in, seed, 1);
    if (!a || !b) return;
    a->update_per_pulse = b->update_per_pulse = 1;
    float *w = malloc(sizeof(float) * out * in), *x = malloc(sizeof(float) * in);
    float *d = malloc(sizeof(float) * out);
    tl_fill_uniform(w, out * in, -0.3f, 0.3f, seed, 1);
    CHECK_OK(rpu_tile_set_weights(a, w, RPU_WEIGHTS_STORED));
    CHECK_OK(rpu_tile_set_weights(b, w, RPU_WEIGHTS_STORED));
    const rpu_update_layout L = rpu_update_layout_for(out, in);
    for (int call = 0; call < 3; ++call) {
        tl_fill_uniform(x, in, -1, 1, seed + (uint64_t)call, 2);
        tl_fill_uniform(d, out, -0.05f, 0.05f, seed + (uint64_t)call, 3);
        for (int j = 0; xnz > 0 && j < in; ++j) /* xnz columns spread over the row */
            if (j % (in / xnz) != (call * 7) % (in / xnz) || j / (in / xnz) >= xnz) x[j] = 0;
        for (int i = 0; dsp > 0 && i < out; ++i)
            if ((i + call) % dsp != 0) d[i] = 0;
        const rpu_pulse_target tg = {.dev = &a->dev, .w = a->w, .sign_mode = 0};
        CHECK_OK(rpu_update_pulses(a, &a->cfg.update, a->dev.granularity, &a->ustream, a->unext,
                                   L.total, x, d, 1, lr, &tg, 1, NULL));
        a->unext += L.total;
        CHECK(ref_update(b, x, d, 1, lr) == 0, "%s: reference ran", label);
    }
    size_t bad = 0, changed = 0;
    for (int q = 0; q < out * in; ++q) {
        bad += memcmp(&a->w[q], &b->w[q], sizeof(float)) != 0;
        changed += a->w[q] != w[q];
    }
    CHECK(bad == 0, "%s: write == slot-by-slot reference (%zu of %d cells differ)", label, bad,
          out * in);
    CHECK(changed > 0, "%s: the writes changed weights (%zu cells)", label, changed);
    const float *pa = rpu_tile_device_array_by_name(a, "persistent_weights");
    const float *pb = rpu_tile_device_array_by_name(b, "persistent_weights");
    if (pa && pb)
        CHECK(memcmp(pa, pb, sizeof(float) * out * in) == 0, "%s: persistent weights equal", label);
    free(w), free(x), free(d);
    rpu_tile_destroy(&a), rpu_tile_destroy(&b);
}

/* Every device and pulse type, with and without cycle-to-cycle noise, write noise and
 * stochastic rounding; one-hot x (a transfer write), three non-zeros, dense x; dense and
 * sparse d; trains of about 3 and of 31 slots; 37 rows x 130 columns. */
static void test_write_vs_reference(void) {
    const char *devices[] = {"constant_step", "soft_bounds", "exp_step", "pow_step",
                             "soft_bounds_reference"};
    int shape = 0;
    for (size_t dv = 0; dv < sizeof devices / sizeof devices[0]; ++dv)
        for (int pt = 0; pt < N_PULSE_TYPES; ++pt, ++shape) {
            rpu_config c;
            device_config(&c, devices[dv], pt);
            if (shape % 3 == 1) c.device.dw_min_std = 0;
            if (shape % 2 == 1 && dv > 0) c.device.write_noise_std = 2.0f;
            if (shape % 5 == 3) {
                c.update.res = 0.02f;
                c.update.sto_round = true;
            }
            const int xnz[3] = {1, 3, 0}, dsp[3] = {0, 9, 0};
            for (int v = 0; v < 3; ++v)
                for (int l = 0; l < 2; ++l) {
                    char label[200];
                    snprintf(label, sizeof label, "write: %s, %s, %d non-zero x, d %s, lr %g",
                             devices[dv], pulse_types[pt], xnz[v], dsp[v] ? "sparse" : "dense",
                             l ? 1.0 : 0.05);
                    write_case(&c, 37, 130, l ? 1.0f : 0.05f, 700 + (uint64_t)shape * 8 + v * 2 + l,
                               label, xnz[v], dsp[v]);
                }
        }
}

/* ------------------------------------------------------------------ row slices */

static void holder_case(const rpu_config *c, int per_pulse, const char *label);

/* A slice tile holding rows [r0, r1) of tile a, keyed like a (same seed, layer, tile): its
 * weights, device state (rpu_device_slice_rows) and mapping scales are a's rows. */
static rpu_tile *slice_of(const rpu_config *c, const rpu_tile *a, int r0, int r1, uint64_t seed) {
    const int C = a->p.in_size;
    rpu_tile *s = make(c, r1 - r0, C, seed, 1);
    if (!s) return NULL;
    rpu_device_free(&s->dev);
    CHECK_OK(rpu_device_slice_rows(&a->dev, r0, r1, &s->dev));
    CHECK_OK(rpu_tile_set_mapping_scales(s, a->scales + r0));
    memcpy(s->w, a->w + (size_t)r0 * C, sizeof(float) * (size_t)(r1 - r0) * C);
    s->unext = a->unext;
    s->update_per_pulse = a->update_per_pulse;
    return s;
}

/* Row slicing (rpu_tile_update_slice): the update of a R x C tile equals, row by row and
 * bitwise, the updates of its slices [0, a), [a, b), [b, R) (uneven cuts, R and C not
 * multiples of 4 so that the slices' first rows start inside Philox blocks): weights,
 * every device array, and the update stream counter, over two calls. Cases:
 * constant_step (merged and per pulse), soft_bounds, soft_bounds with write noise,
 * linear_step with mean_count pulses and stochastic rounding of the probabilities, exp_step,
 * floating point, pulse type none_with_device with write noise; mapping scales not all 1
 * with the learning-rate compensation on (the slices see the whole tile's d and scales). */
static void slice_case(rpu_config *c, int per_pulse, const char *label) {
    const int R = 13, C = 7, n = 5, cuts[4] = {0, 3, 8, 13};
    const uint64_t seed = 808;
    rpu_tile *a = make(c, R, C, seed, 1);
    if (!a) return;
    a->update_per_pulse = per_pulse;
    float w[13 * 7], sc[13], x[5 * 7], d[5 * 13];
    tl_fill_uniform(w, R * C, -0.55f, 0.55f, seed, 1);
    tl_fill_uniform(sc, R, 0.5f, 2.0f, seed, 4);
    CHECK_OK(rpu_tile_set_weights(a, w, RPU_WEIGHTS_STORED));
    CHECK_OK(rpu_tile_set_mapping_scales(a, sc));
    rpu_tile *s[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3; ++k)
        if (!(s[k] = slice_of(c, a, cuts[k], cuts[k + 1], seed))) goto out;
    for (int call = 0; call < 2; ++call) {
        tl_fill_uniform(x, n * C, -1, 1, seed + (uint64_t)call, 2);
        tl_fill_uniform(d, n * R, -0.3f, 0.3f, seed + (uint64_t)call, 3);
        memset(d + R, 0, sizeof(float) * R); /* a vector without update */
        CHECK_OK(rpu_tile_update(a, x, d, n, 0.4f));
        for (int k = 0; k < 3; ++k)
            CHECK_OK(rpu_tile_update_slice(s[k], x, d, sc, n, 0.4f, cuts[k], R));
    }
    size_t bad = 0, changed = 0;
    for (int k = 0; k < 3; ++k) {
        const size_t off = (size_t)cuts[k] * C, m = (size_t)(cuts[k + 1] - cuts[k]) * C;
        bad += memcmp(a->w + off, s[k]->w, m * sizeof(float)) != 0;
        for (int q = 0; q < a->dev.n_arrays; ++q)
            bad += memcmp(a->dev.arrays[q].data + off, s[k]->dev.arrays[q].data,
                          m * sizeof(float)) != 0;
        bad += s[k]->unext != a->unext;
    }
    for (int q = 0; q < R * C; ++q)
        changed += a->w[q] != w[q];
    CHECK(bad == 0, "%s: slices [0,3) [3,8) [8,13) == the whole tile's rows (%zu mismatches)",
          label, bad);
    CHECK(changed > R * C / 4, "%s: the update changed %zu of %d weights", label, changed, R * C);
out:
    for (int k = 0; k < 3; ++k)
        rpu_tile_destroy(&s[k]);
    rpu_tile_destroy(&a);
    holder_case(c, per_pulse, label);
}

/* Holders (rpu_tile_update_rows, tile.h): three copies of a 40 x 7 tile update rows
 * [0, 16), [16, 32), [32, 40) of the same batch (a pulsed update, which splits at any row:
 * [0, 5), [5, 23), [23, 40)); each copy's rows equal the whole update's
 * bitwise (weights and the arrays of rpu_tile_update_arrays), its other rows stay as they
 * were, its counters equal the whole tile's; two calls, the second after copying the
 * holders' rows in (as the layer does). Three more copies do the same from only their own
 * rows of d (the others NaN) and the vectors' maxima over all rows combined from the three
 * rpu_tile_update_row_maxima (rpu_tile_update_rows_max, a holder that kept only its rows). */
static void holder_case(const rpu_config *c, int per_pulse, const char *label) {
    const int R = 40, C = 7, n = 4;
    const uint64_t seed = 809;
    rpu_tile *a = make(c, R, C, seed, 2), *h[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    if (!a) return;
    const int pulsed = a->dev.pulsed && c->update.pulse_type != RPU_PULSE_NONE &&
                       c->update.pulse_type != RPU_PULSE_NONE_WITH_DEVICE;
    const int B = rpu_tile_update_row_block(a);
    CHECK(B == (pulsed ? 1 : RPU_UPDATE_ROW_BLOCK), "%s: row block %d", label, B);
    const int cuts16[4] = {0, 16, 32, 40}, cuts1[4] = {0, 5, 23, 40};
    const int *cuts = pulsed ? cuts1 : cuts16;
    float w[40 * 7], sc[40], x[4 * 7], d[4 * 40], before[40 * 7], dk[4 * 40], mk[3][4], dmax[4];
    tl_fill_uniform(w, R * C, -0.55f, 0.55f, seed, 1);
    tl_fill_uniform(sc, R, 0.5f, 2.0f, seed, 4);
    a->update_per_pulse = per_pulse;
    CHECK_OK(rpu_tile_set_weights(a, w, RPU_WEIGHTS_STORED));
    CHECK_OK(rpu_tile_set_mapping_scales(a, sc));
    for (int k = 0; k < 6; ++k) {
        if (!(h[k] = make(c, R, C, seed, 2))) goto out;
        h[k]->update_per_pulse = per_pulse;
        CHECK_OK(rpu_tile_set_weights(h[k], w, RPU_WEIGHTS_STORED));
        CHECK_OK(rpu_tile_set_mapping_scales(h[k], sc));
    }
    size_t bad = 0, moved = 0;
    for (int call = 0; call < 2; ++call) {
        tl_fill_uniform(x, n * C, -1, 1, seed + (uint64_t)call, 2);
        /* (the second call's small gradients: trains shorter than desired_bl, whose
         * lengths and probabilities follow each vector's maximum) */
        const float ds = call ? 0.005f : 0.3f;
        tl_fill_uniform(d, n * R, -ds, ds, seed + (uint64_t)call, 3);
        memcpy(before, a->w, sizeof before);
        CHECK_OK(rpu_tile_update(a, x, d, n, 0.4f));
        /* the maxima of the holders that keep only their rows, combined */
        for (int k = 0; k < 3; ++k)
            CHECK_OK(rpu_tile_update_row_maxima(h[3 + k], d, n, cuts[k], cuts[k + 1], mk[k]));
        for (int v = 0; v < n; ++v)
            dmax[v] = fmaxf(mk[0][v], fmaxf(mk[1][v], mk[2][v]));
        for (int k = 0; k < 6; ++k) {
            const int r0 = cuts[k % 3], r1 = cuts[k % 3 + 1];
            float *keep = malloc(sizeof before);
            memcpy(keep, h[k]->w, sizeof before);
            if (k < 3) {
                CHECK_OK(rpu_tile_update_rows(h[k], x, d, n, 0.4f, r0, r1));
            } else { /* its rows of d only */
                for (int q = 0; q < n * R; ++q)
                    dk[q] = q % R >= r0 && q % R < r1 ? d[q] : NAN;
                CHECK_OK(rpu_tile_update_rows_max(h[k], x, dk, dmax, n, 0.4f, r0, r1));
            }
            const size_t o = (size_t)r0 * C, m = (size_t)(r1 - r0) * C;
            bad += memcmp(h[k]->w + o, a->w + o, m * sizeof(float)) != 0;
            bad += memcmp(h[k]->w, keep, o * sizeof(float)) != 0;
            bad +=
                memcmp(h[k]->w + o + m, keep + o + m, ((size_t)R * C - o - m) * sizeof(float)) != 0;
            bad += h[k]->unext != a->unext || h[k]->ucalls != a->ucalls;
            float *ha[4], *aa[4];
            const int na = rpu_tile_update_arrays(h[k], ha, 4);
            rpu_tile_update_arrays(a, aa, 4);
            for (int q = 1; q < na; ++q)
                bad += memcmp(ha[q] + o, aa[q] + o, m * sizeof(float)) != 0;
            free(keep);
        }
        for (int q = 0; q < R * C; ++q)
            moved += a->w[q] != before[q];
        /* every holder takes the others' rows (the layer's exchange) */
        for (int k = 0; k < 6; ++k) {
            float *ha[4], *aa[4];
            const int na = rpu_tile_update_arrays(h[k], ha, 4);
            rpu_tile_update_arrays(a, aa, 4);
            for (int q = 0; q < na; ++q)
                memcpy(ha[q], aa[q], sizeof(float) * (size_t)R * C);
            rpu_tile_rows_copied(h[k]);
        }
    }
    CHECK(bad == 0,
          "%s: holders of rows [0,%d) [%d,%d) [%d,40), with the whole d and with their rows "
          "and the maxima, == the whole update (%zu mismatches)",
          label, cuts[1], cuts[1], cuts[2], cuts[2], bad);
    CHECK(moved > (size_t)R * C / 4, "%s: the updates moved %zu weights", label, moved);
out:
    for (int k = 0; k < 6; ++k)
        rpu_tile_destroy(&h[k]);
    rpu_tile_destroy(&a);
}

static void test_row_slices(void) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.mapping.weight_scaling_lr_compensation = true;
    c.update.desired_bl = 70; /* two mask words */
    slice_case(&c, 0, "constant_step, merged");
    slice_case(&c, 1, "constant_step, per pulse");
    c.update.desired_bl = 31;
    set_device(&c, "soft_bounds");
    c.mapping.weight_scaling_lr_compensation = true;
    slice_case(&c, 0, "soft_bounds");
    c.device.write_noise_std = 1.5f;
    slice_case(&c, 0, "soft_bounds with write noise");
    CHECK_OK(rpu_config_set(&c, "update.pulse_type", "none_with_device"));
    slice_case(&c, 0, "soft_bounds with write noise, none_with_device");
    set_device(&c, "linear_step");
    c.mapping.weight_scaling_lr_compensation = true;
    CHECK_OK(rpu_config_set(&c, "update.pulse_type", "mean_count"));
    c.update.res = 0.05f;
    c.update.sto_round = true;
    slice_case(&c, 0, "linear_step, mean_count, stochastic rounding");
    rpu_config_default(&c, RPU_KIND_SINGLE);
    set_device(&c, "exp_step");
    c.update.res = 0.05f;
    c.update.sto_round = true;
    slice_case(&c, 0, "exp_step, stochastic rounding");
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.mapping.weight_scaling_lr_compensation = true;
    slice_case(&c, 0, "floating point");
    /* a slice that is not one */
    rpu_config_default(&c, RPU_KIND_SINGLE);
    rpu_tile *t = make(&c, 4, 3, 1, 1);
    float x[3] = {1, 1, 1}, d[6] = {1, 1, 1, 1, 1, 1}, sc[6] = {1, 1, 1, 1, 1, 1};
    CHECK_STATUS(rpu_tile_update_slice(t, x, d, sc, 1, 0.1f, 3, 6), RPU_ERR_ARG);
    CHECK(strstr(rpu_last_error(), "[3, 7)") && strstr(rpu_last_error(), "6 rows"),
          "names the rows and the tile: %s", rpu_last_error());
    rpu_tile_destroy(&t);
}

/* ------------------------------------------------------------------ merged pulses */

static int cmp_f64(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Two-sample Kolmogorov-Smirnov statistic of a[na] and b[nb] (both sorted here). */
static double ks2(double *a, size_t na, double *b, size_t nb) {
    qsort(a, na, sizeof *a, cmp_f64);
    qsort(b, nb, sizeof *b, cmp_f64);
    size_t i = 0, j = 0;
    double dmax = 0;
    while (i < na && j < nb) {
        const double v = a[i] < b[j] ? a[i] : b[j];
        while (i < na && a[i] <= v)
            ++i;
        while (j < nb && b[j] <= v)
            ++j;
        const double dd = fabs((double)i / na - (double)j / nb);
        dmax = dd > dmax ? dd : dmax;
    }
    return dmax;
}

/* Merged pulses (default for constant_step) against one normal per pulse: the same
 * distribution. A 64 x 64 constant_step tile without device variation (dw_min 0.001,
 * bounds +-0.6), cycle-to-cycle sigma 2 (steps of either sign in 31 % of the pulses, so a
 * bound hit on the way changes the outcome a lot), mean_count pulses with every cell
 * receiving exactly BL pulses per vector (p_x = p_d = 1), their sign given per vector by
 * dsign (+1: down). A call has nvec vectors (one chunk). Even columns start at w = 0
 * (far: their pulses merge), odd columns at w_near, where a path crosses -0.6 in a good
 * part of the cases (single pulses, clipped on the way; their normals sit at other
 * addresses in the two modes). 12 calls per mode, N = 24576 samples per class and mode,
 * seeds seed (merged) and seed + 1 (per pulse). Bounds (each fails with p < 1e-3 for a
 * correct engine): two-sample KS D < 1.95 sqrt(2/N) per class; far class against the
 * model N(-(n_down - n_up) dw_min, (n_down + n_up) (sigma dw_min)^2): mean within
 * 5 sd/sqrt(N), sd within 5/sqrt(2N) relative, one-sample KS D < 1.95/sqrt(N). The near
 * class would fail the KS bound if its cells were merged (checked by hand: D = 0.17 in
 * both cases with every cell merged). */
static void merged_case(int BL, int nvec, const float *dsign, float w_near, uint64_t seed,
                        const char *label) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.device.dw_min = 0.001f;
    c.device.dw_min_std = 2.0f;
    c.device.dw_min_dtod = c.device.up_down_dtod = 0;
    c.device.w_max_dtod = c.device.w_min_dtod = 0;
    CHECK_OK(rpu_config_set(&c, "update.pulse_type", "mean_count"));
    c.update.desired_bl = BL;
    c.update.fixed_bl = true;
    c.update.update_bl_management = false;
    c.update.update_management = false;
    const int R = 64, C = 64, calls = 12;
    const size_t N = (size_t)calls * R * C / 2;
    const float lr = 0.001f * (float)BL; /* A = B = sqrt(lr / (dw_min BL)) = 1 */
    float *w0 = malloc(sizeof(float) * R * C), *w = malloc(sizeof(float) * R * C);
    float *x = malloc(sizeof(float) * (size_t)nvec * C), *d = malloc(sizeof(float) * nvec * R);
    int n_down = 0, n_up = 0;
    for (int k = 0; k < nvec; ++k) {
        for (int j = 0; j < C; ++j)
            x[k * C + j] = 1.0f;
        for (int i = 0; i < R; ++i)
            d[k * R + i] = dsign[k];
        n_down += dsign[k] > 0 ? BL : 0;
        n_up += dsign[k] > 0 ? 0 : BL;
    }
    for (int q = 0; q < R * C; ++q)
        w0[q] = (q % C) % 2 ? w_near : 0.0f;
    double *smp[2][2]; /* [mode][class] */
    for (int m = 0; m < 2; ++m)
        for (int k = 0; k < 2; ++k)
            smp[m][k] = malloc(sizeof(double) * N);
    for (int mode = 0; mode < 2; ++mode) {
        rpu_tile *t = make(&c, R, C, seed + (uint64_t)mode, 0);
        if (!t) return;
        t->update_per_pulse = mode;
        size_t got[2] = {0, 0};
        for (int call = 0; call < calls; ++call) {
            CHECK_OK(rpu_tile_set_weights(t, w0, RPU_WEIGHTS_STORED));
            CHECK_OK(rpu_tile_update(t, x, d, nvec, lr));
            rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED);
            for (int q = 0; q < R * C; ++q) {
                const int k = (q % C) % 2;
                smp[mode][k][got[k]++] = w[q];
            }
        }
        rpu_tile_destroy(&t);
    }
    const double crit2 = 1.95 * sqrt(2.0 / (double)N), crit1 = 1.95 / sqrt((double)N);
    /* far class against the model */
    const double mu = -(n_down - n_up) * 0.001, sd = sqrt((double)(n_down + n_up)) * 2.0 * 0.001;
    double mean = 0, var = 0;
    for (size_t q = 0; q < N; ++q)
        mean += smp[0][0][q];
    mean /= (double)N;
    for (size_t q = 0; q < N; ++q)
        var += (smp[0][0][q] - mean) * (smp[0][0][q] - mean);
    var /= (double)(N - 1);
    CHECK(fabs(mean - mu) < 5 * sd / sqrt((double)N), "%s, merged, far: mean %.7g, model %.7g",
          label, mean, mu);
    CHECK(fabs(sqrt(var) / sd - 1) < 5 / sqrt(2.0 * (double)N),
          "%s, merged, far: sd %.6g, model %.6g", label, sqrt(var), sd);
    double *tmp = malloc(sizeof(double) * N);
    memcpy(tmp, smp[0][0], sizeof(double) * N);
    qsort(tmp, N, sizeof *tmp, cmp_f64);
    double d1 = 0;
    for (size_t q = 0; q < N; ++q) {
        const double F = 0.5 * erfc(-(tmp[q] - mu) / (sd * sqrt(2.0)));
        const double e = fmax(fabs(F - (double)q / N), fabs(F - (double)(q + 1) / N));
        d1 = e > d1 ? e : d1;
    }
    CHECK(d1 < crit1, "%s, merged, far: KS against the model D = %.4g (bound %.4g)", label, d1,
          crit1);
    const char *cls[2] = {"far (merged)", "near a bound (single pulses)"};
    for (int k = 0; k < 2; ++k) {
        const double D = ks2(smp[0][k], N, smp[1][k], N);
        CHECK(D < crit2, "%s, %s: merged mode vs per pulse: KS D = %.4g (bound %.4g)", label,
              cls[k], D, crit2);
    }
    /* the near class really is shaped by the bound: many cells end on it */
    size_t on = 0;
    for (size_t q = 0; q < N; ++q)
        on += smp[1][1][q] == -0.6f;
    CHECK(on > N / 10 && on < N * 9 / 10, "%s, near class: %zu of %zu cells end on the bound",
          label, on, N);
    free(tmp), free(w0), free(w), free(x), free(d);
    for (int m = 0; m < 2; ++m)
        for (int k = 0; k < 2; ++k)
            free(smp[m][k]);
}

/* One vector of 20 down pulses per call (merged within the vector), and four vectors of
 * 5 pulses down, up, down, down per call (merged over the chunk: 15 down, 5 up). */
static void test_merged_distribution(void) {
    const float one[1] = {1.0f}, mixed[4] = {1.0f, -1.0f, 1.0f, 1.0f};
    merged_case(20, 1, one, -0.58f, 5150, "1 vector x 20 pulses");
    merged_case(5, 4, mixed, -0.59f, 5152, "4 vectors x 5 pulses, mixed signs");
}

/* ------------------------------------------------------------------ expectation */

/* Kind single with a constant_step device without variation (dtod 0, cycle-to-cycle 0)
 * and wide bounds (+-100): every pulse moves a weight by exactly dw_min. */
static void noiseless_constant_step(rpu_config *c) {
    rpu_config_default(c, RPU_KIND_SINGLE);
    c->device.dw_min_dtod = 0;
    c->device.up_down_dtod = 0;
    c->device.dw_min_std = 0;
    c->device.w_max = 100;
    c->device.w_min = -100;
    c->device.w_max_dtod = c->device.w_min_dtod = 0;
}

/* A constant_step device without variation (dtod 0, c2c 0, wide bounds). One vector with
 * k = lr·max|x|·max|d|/dw_min < desired_bl, repeated M times from W = 0. Per update and
 * cell the pulse count is Binomial(BL, p_d p_x) with BL p_d p_x = lr|d_i||x_j|/dw_min, so
 * the mean change over M updates has sd dw_min·sqrt(BL p (1-p) / M); bound 5 sd + 1e-6.
 * Seed 4040. */
static void test_unbiased_and_saturation(void) {
    rpu_config c;
    noiseless_constant_step(&c);
    const int out = 4, in = 5, M = 4000;
    rpu_tile *t = make(&c, out, in, 4040, 0);
    if (!t) return;
    const float x[5] = {1.0f, -0.5f, 0.25f, 0.8f, -0.1f};
    const float d[4] = {0.01f, -0.004f, 0.007f, -0.01f};
    const float lr = 1.0f, g = 0.001f; /* k = 1·1·0.01/0.001 = 10 < 31 */
    float *xs = malloc(sizeof(float) * in * M), *ds = malloc(sizeof(float) * out * M);
    for (int m = 0; m < M; ++m) {
        memcpy(xs + (size_t)m * in, x, sizeof x);
        memcpy(ds + (size_t)m * out, d, sizeof d);
    }
    CHECK_OK(rpu_tile_update(t, xs, ds, M, lr));
    float w[20];
    rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED);
    const float BL = 10; /* update BL management: BL = ceil(k) */
    for (int i = 0; i < out; ++i)
        for (int j = 0; j < in; ++j) {
            double want = -(double)lr * d[i] * x[j];
            double p = (double)lr * fabs(d[i] * x[j]) / g / BL;
            double sd = g * sqrt(BL * p * (1 - p) / M);
            double got = w[i * in + j] / M;
            /* plus float round-off: BL·M additions, each within half an ulp of |w| */
            double roundoff =
                BL * 0.5 * (nextafterf(fabsf(w[i * in + j]), INFINITY) - fabsf(w[i * in + j]));
            CHECK(fabs(got - want) <= 5 * sd + roundoff, "mean dW(%d,%d) = %g, want %g (sd %g)", i,
                  j, got, want, sd);
        }
    rpu_tile_destroy(&t);

    /* saturation: k = 10·1·0.01/0.001 = 100 > 31: the largest |x|, |d| pair fires in every
     * slot (31 pulses per update), a cell with half |x| and full |d| fires with p_x < 1 */
    t = make(&c, out, in, 4041, 0);
    CHECK_OK(rpu_tile_update(t, xs, ds, 10, 10.0f));
    rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED);
    CHECK(fabsf(w[0 * in + 0] + 10 * 31 * g) < 1e-5f, "saturated cell moved by %g, want %g",
          (double)w[0], -10 * 31 * (double)g);
    CHECK(fabsf(w[3 * in + 0] - 10 * 31 * g) < 1e-5f, "saturated cell (d<0) moved by %g",
          (double)w[3 * in]);
    CHECK(fabsf(w[0 * in + 1]) < 10 * 31 * g, "non-saturated cell moved less: %g", (double)w[1]);
    free(xs), free(ds);
    rpu_tile_destroy(&t);
}

/* Dynamic pulse-train length (update.fixed_bl = false, no update / BL management; spec
 * §3.3): A = B = 1 and BL = ceil(lr / dw_min) when dw_min desired_bl < lr. A constant_step
 * device without variation or noise, dw_min 0.001:
 *   - a cell with |x| = |d| = 1 fires in every slot: one update moves it by exactly
 *     -BL dw_min, for lr 0.05 by -50 dw_min (floor would give 49);
 *   - unbiased: a cell with p = |d||x| moves by BL dw_min p = lr |d||x| in expectation; over
 *     M = 4000 updates of the vector x, d the mean is within 5 sd (sd as in
 *     test_unbiased_and_saturation) of -lr d x, plus float round-off; BL 49 would be off by
 *     2 % (9 sd for p = 0.5);
 *   - the limit: BL = ceil(lr / dw_min) above 255 slots is refused with
 *     RPU_ERR_UNSUPPORTED naming the length; 255 itself is accepted. Seeds 4050-4053. */
static void test_dynamic_bl(void) {
    rpu_config c;
    noiseless_constant_step(&c);
    c.update.fixed_bl = false;
    c.update.update_bl_management = false;
    c.update.update_management = false;
    const float g = 0.001f;

    /* exact BL from a cell that fires in every slot */
    rpu_tile *t = make(&c, 2, 3, 4050, 0);
    if (!t) return;
    const float x1[3] = {1.0f, 0.0f, -1.0f}, d1[2] = {1.0f, 0.0f};
    CHECK_OK(rpu_tile_update(t, x1, d1, 1, 0.05f));
    float w1[6];
    rpu_tile_get_weights(t, w1, RPU_WEIGHTS_STORED);
    CHECK(fabsf(w1[0] + 50 * g) < 1e-6f && fabsf(w1[2] - 50 * g) < 1e-6f,
          "fixed_bl false, lr 0.05 / dw_min 0.001: a cell with p = 1 moved by %g and %g, want "
          "-/+ %g (BL = ceil(50.0) = 50 slots)",
          (double)w1[0], (double)w1[2], 50 * (double)g);
    CHECK(w1[1] == 0 && w1[3] == 0 && w1[4] == 0 && w1[5] == 0, "cells with p = 0 stay");
    rpu_tile_destroy(&t);

    /* lr / g = 12.4: BL stays desired_bl = 31 with A = B = sqrt(lr / (g BL)) < 1 */
    t = make(&c, 2, 3, 4051, 0);
    if (!t) return;
    const float x2[3] = {0.5f, 0.0f, 0.0f}, d2[2] = {0.5f, 0.0f};
    CHECK_OK(rpu_tile_update(t, x2, d2, 1, 0.0124f));
    rpu_tile_get_weights(t, w1, RPU_WEIGHTS_STORED);
    CHECK(w1[0] <= 0 && w1[0] >= -31 * g - 1e-6f, "lr below g desired_bl: at most 31 pulses (%g)",
          (double)w1[0]);
    rpu_tile_destroy(&t);

    /* unbiased: M updates in chunks of 100 from W = 0 (small |W|: little round-off) */
    const int out = 4, in = 5, M = 4000, chunk = 100;
    t = make(&c, out, in, 4052, 0);
    if (!t) return;
    const float x[5] = {1.0f, -0.5f, 0.25f, 0.8f, -0.1f};
    const float d[4] = {1.0f, -0.4f, 0.7f, -0.9f};
    const float lr = 0.05f;
    const double BL = ceil((double)lr / (double)g); /* 50 */
    float *xs = malloc(sizeof(float) * in * chunk), *ds = malloc(sizeof(float) * out * chunk);
    for (int m = 0; m < chunk; ++m) {
        memcpy(xs + (size_t)m * in, x, sizeof x);
        memcpy(ds + (size_t)m * out, d, sizeof d);
    }
    float w[20], zero[20] = {0};
    double sum[20] = {0}, roundoff[20] = {0};
    for (int k = 0; k < M / chunk; ++k) {
        CHECK_OK(rpu_tile_set_weights(t, zero, RPU_WEIGHTS_STORED));
        CHECK_OK(rpu_tile_update(t, xs, ds, chunk, lr));
        rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED);
        for (int q = 0; q < out * in; ++q) {
            sum[q] += w[q];
            /* BL·chunk additions, each within half an ulp of |w| */
            roundoff[q] += BL * chunk * 0.5 * (nextafterf(fabsf(w[q]), INFINITY) - fabsf(w[q]));
        }
    }
    for (int i = 0; i < out; ++i)
        for (int j = 0; j < in; ++j) {
            const double p = fabs((double)d[i] * x[j]); /* A = B = 1 */
            const double want = -BL * g * p * (d[i] * x[j] > 0 ? 1 : -1);
            const double sd = g * sqrt(BL * p * (1 - p) / M);
            const double got = sum[i * in + j] / M;
            CHECK(fabs(want + (double)lr * d[i] * x[j]) < 1e-7 * fabs(want) + 1e-12,
                  "BL dw_min p = lr |d x|");
            CHECK(fabs(got - want) <= 5 * sd + roundoff[i * in + j] / M,
                  "fixed_bl false: mean dW(%d,%d) = %.6g, want %.6g (sd %.2g)", i, j, got, want,
                  sd);
        }
    free(xs), free(ds);
    rpu_tile_destroy(&t);

    /* the pulse-train limit */
    c.device.dw_min = 0.0009765625f; /* 2^-10: lr / dw_min exact */
    t = make(&c, 2, 2, 4053, 0);
    if (!t) return;
    const float x3[2] = {1.0f, 1.0f}, d3[2] = {1.0f, 1.0f};
    CHECK_OK(rpu_tile_update(t, x3, d3, 1, 255 * 0.0009765625f)); /* BL 255: allowed */
    rpu_tile_get_weights(t, w1, RPU_WEIGHTS_STORED);
    CHECK(fabsf(w1[0] + 255 * 0.0009765625f) < 1e-6f, "BL 255: a p = 1 cell moved by %g",
          (double)w1[0]);
    rpu_clear_error();
    CHECK_STATUS(rpu_tile_update(t, x3, d3, 1, 256 * 0.0009765625f), RPU_ERR_UNSUPPORTED);
    CHECK(strstr(rpu_last_error(), "256 slots") && strstr(rpu_last_error(), "255") &&
              strstr(rpu_last_error(), "fixed_bl"),
          "a too long pulse train is named with its length, the limit and the fix: %s",
          rpu_last_error());
    rpu_tile_destroy(&t);
}

/* ------------------------------------------------------------------ weight gradient */

/* rpu_tile_weight_grad (tile.h): with mapping scales s (1.5, 0.5, 2 on a 3 x 4 tile)
 * RPU_WEIGHTS_SCALED gives sum_k d_k x_kᵀ and RPU_WEIGHTS_STORED sum_k (d_k / s)ᵀ x_k, both
 * against hand sums in double; the floating-point and inference kinds' update moves the
 * stored weights by exactly -lr G (stored units; float rounding of one GEMM); a pulsed
 * constant_step update with the same x, d is unbiased around -lr G (5 sd over 2000
 * repeats of the batch, chunked; dw_min 0.001, no variation). Seed 4060. */
static void test_weight_grad(void) {
    const int out = 3, in = 4, n = 2;
    const float x[8] = {1, 0.5f, -1, 0.25f, -0.5f, 1, 0.75f, 0};
    const float d[6] = {0.5f, -0.25f, 0.125f, 0.25f, 0, -0.5f};
    const float sc[3] = {1.5f, 0.5f, 2.0f};
    double gs[12], gl[12];
    for (int i = 0; i < out; ++i)
        for (int j = 0; j < in; ++j) {
            gs[i * in + j] = gl[i * in + j] = 0;
            for (int k = 0; k < n; ++k) {
                gl[i * in + j] += (double)d[k * out + i] * x[k * in + j];
                gs[i * in + j] += (double)(d[k * out + i] / sc[i]) * x[k * in + j];
            }
        }
    const float lr = 0.01f;
    const rpu_config_kind kinds[3] = {RPU_KIND_FLOATING_POINT, RPU_KIND_INFERENCE, RPU_KIND_SINGLE};
    for (int v = 0; v < 3; ++v) {
        rpu_config c;
        if (kinds[v] == RPU_KIND_SINGLE)
            noiseless_constant_step(&c); /* dw_min 0.001 */
        else
            rpu_config_default(&c, kinds[v]);
        rpu_tile *t = make(&c, out, in, 4060, 0);
        if (!t) return;
        CHECK_OK(rpu_tile_set_mapping_scales(t, sc));
        float g[12], w0[12] = {0}, w[12];
        CHECK_OK(rpu_tile_weight_grad(t, x, d, n, RPU_WEIGHTS_SCALED, g));
        for (int q = 0; q < 12; ++q)
            CHECK(g[q] == (float)gl[q], "kind %d: logical gradient (%d) %g, want %g", v, q,
                  (double)g[q], gl[q]);
        CHECK_OK(rpu_tile_weight_grad(t, x, d, n, RPU_WEIGHTS_STORED, g));
        for (int q = 0; q < 12; ++q)
            CHECK(g[q] == (float)gs[q], "kind %d: stored-units gradient (%d) %g, want %g", v, q,
                  (double)g[q], gs[q]);
        if (v < 2) { /* exact update: W - lr G */
            CHECK_OK(rpu_tile_set_weights(t, w0, RPU_WEIGHTS_STORED));
            CHECK_OK(rpu_tile_update(t, x, d, n, lr));
            rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED);
            for (int q = 0; q < 12; ++q)
                CHECK(fabsf(w[q] + lr * g[q]) <= 1e-7f * (1 + fabsf(lr * g[q])),
                      "kind %d: the update moved cell %d by %g, want -lr G = %g", v, q,
                      (double)w[q], -(double)lr * g[q]);
        } else { /* pulsed: unbiased around -lr G */
            const int R = 2000, chunk = 100;
            float xs[8 * 100], ds[6 * 100];
            for (int k = 0; k < chunk; ++k) {
                memcpy(xs + (size_t)k * 8, x, sizeof x);
                memcpy(ds + (size_t)k * 6, d, sizeof d);
            }
            double sum[12] = {0};
            for (int r = 0; r < R / chunk; ++r) {
                CHECK_OK(rpu_tile_set_weights(t, w0, RPU_WEIGHTS_STORED));
                CHECK_OK(rpu_tile_update(t, xs, ds, n * chunk, lr));
                rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED);
                for (int q = 0; q < 12; ++q)
                    sum[q] += w[q];
            }
            /* per vector and cell at most desired_bl pulses of dw_min, each a Bernoulli
             * event: the sd of the mean change is below dw_min sqrt(31 / 4 / reps) */
            const double sd = 0.001 * sqrt(31.0 / 4 / ((double)R * n));
            for (int q = 0; q < 12; ++q)
                CHECK(fabs(sum[q] / R + (double)lr * g[q]) <= 5 * n * sd,
                      "pulsed: mean change of cell %d over %d repeats %g, want -lr G = %g", q, R,
                      sum[q] / R, -(double)lr * g[q]);
        }
        rpu_tile_destroy(&t);
    }
    CHECK_STATUS(rpu_tile_weight_grad(NULL, x, d, n, RPU_WEIGHTS_STORED, NULL), RPU_ERR_ARG);
}

/* ------------------------------------------------------------------ exact paths */

static void test_exact_paths(void) {
    const int out = 3, in = 4, n = 2;
    const float x[8] = {1, 2, -1, 0.5f, 0, -2, 1, 1};
    const float d[6] = {0.5f, -1, 0.25f, 1, 0, -0.5f};
    const float w0[12] = {0.1f,  0.2f,  0.3f, 0.4f,  -0.1f, -0.2f,
                          -0.3f, -0.4f, 0.5f, 0.55f, -0.5f, 0};
    const float lr = 0.1f;
    float want[12];
    for (int i = 0; i < out; ++i)
        for (int j = 0; j < in; ++j) {
            double s = w0[i * in + j];
            for (int k = 0; k < n; ++k)
                s -= (double)lr * d[k * out + i] * x[k * in + j];
            want[i * in + j] = (float)s;
        }
    for (int variant = 0; variant < 4; ++variant) {
        rpu_config c;
        rpu_config_default(&c, variant == 0 ? RPU_KIND_FLOATING_POINT : RPU_KIND_SINGLE);
        if (variant == 1) set_device(&c, "ideal");
        if (variant == 2) CHECK_OK(rpu_config_set(&c, "update.pulse_type", "none"));
        if (variant == 3) CHECK_OK(rpu_config_set(&c, "update.pulse_type", "none_with_device"));
        rpu_tile *t = make(&c, out, in, 5, 0);
        if (!t) return;
        float w[12];
        CHECK_OK(rpu_tile_set_weights(t, w0, RPU_WEIGHTS_STORED));
        rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED); /* after the device's bounds */
        float start[12];
        memcpy(start, w, sizeof w);
        CHECK_OK(rpu_tile_update(t, x, d, n, lr));
        rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED);
        for (int q = 0; q < 12; ++q) {
            float e = want[q] - w0[q] + start[q];
            if (variant == 3) {
                const float *mx = rpu_tile_device_array_by_name(t, "max_bound");
                const float *mn = rpu_tile_device_array_by_name(t, "min_bound");
                /* none_with_device: outer product per vector, then clip (vector by vector) */
                float v = start[q];
                int i = q / in, j = q % in;
                for (int k = 0; k < n; ++k) {
                    v -= lr * d[k * out + i] * x[k * in + j];
                    v = fminf(fmaxf(v, mn[q]), mx[q]);
                }
                e = v;
            }
            CHECK(fabsf(w[q] - e) < 1e-6f, "variant %d cell %d: %g want %g", variant, q,
                  (double)w[q], (double)e);
        }
        if (variant == 2) { /* none on a pulsed device: no bounds */
            float big_x[4] = {100, 0, 0, 0}, big_d[3] = {-100, 0, 0};
            CHECK_OK(rpu_tile_update(t, big_x, big_d, 1, 1.0f));
            rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED);
            CHECK(w[0] > 1000, "pulse_type none ignores the device bounds: %g", (double)w[0]);
        }
        rpu_tile_destroy(&t);
    }
}

/* ------------------------------------------------------------------ construction, memory */

static void test_construction_and_memory(void) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.device.construction_seed = 1234;
    rpu_tile *a = make(&c, 16, 12, 1, 7), *b = make(&c, 16, 12, 999, 7),
             *o = make(&c, 16, 12, 1, 8);
    if (!a || !b || !o) return;
    CHECK(rpu_tile_device_array_count(a) == 4, "default constant_step: 4 arrays, got %d",
          rpu_tile_device_array_count(a));
    for (int k = 0; k < rpu_tile_device_array_count(a); ++k) {
        const char *name;
        const float *pa = rpu_tile_device_array(a, k, &name);
        const float *pb = rpu_tile_device_array_by_name(b, name);
        const float *po = rpu_tile_device_array_by_name(o, name);
        CHECK(pb && memcmp(pa, pb, sizeof(float) * 16 * 12) == 0,
              "%s: same construction seed and tile -> identical (run seed differs)", name);
        CHECK(po && memcmp(pa, po, sizeof(float) * 16 * 12) != 0, "%s: other tile -> different",
              name);
    }
    CHECK(rpu_tile_bytes_per_cell(a) <= 20.0, "default constant_step: %g bytes per cell (<= 20)",
          rpu_tile_bytes_per_cell(a));
    CHECK(!rpu_tile_device_array_by_name(a, "decay_scales") &&
              !rpu_tile_device_array_by_name(a, "diffusion_rates") &&
              !rpu_tile_device_array_by_name(a, "persistent_weights"),
          "no arrays for features that are off");
    rpu_tile_destroy(&a), rpu_tile_destroy(&b), rpu_tile_destroy(&o);
    /* construction_seed 0: the run seed keys the devices */
    c.device.construction_seed = 0;
    a = make(&c, 4, 4, 11, 0);
    b = make(&c, 4, 4, 12, 0);
    CHECK(memcmp(rpu_tile_device_array(a, 0, NULL), rpu_tile_device_array(b, 0, NULL),
                 sizeof(float) * 16) != 0,
          "construction_seed 0 uses the run seed");
    rpu_tile_destroy(&a), rpu_tile_destroy(&b);
}

/* Post-update step (spec §3.5): decay toward the reset bias by delta = 1 - 1/lifetime,
 * diffusion with std rho; nothing when both are off. Seed 606. Diffusion bound: the sample
 * std of N = 4096 changes is within 5/sqrt(2N) relative of rho (no cell near a bound). */
static void test_post_update(void) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.device.w_max_dtod = c.device.w_min_dtod = 0;
    const int out = 64, in = 64, N = out * in;
    float *w0 = malloc(sizeof(float) * N), *w = malloc(sizeof(float) * N);
    tl_fill_uniform(w0, N, -0.3f, 0.3f, 606, 1);
    for (int variant = 0; variant < 3; ++variant) {
        c.device.lifetime = variant == 0 ? 10.0f : 0.0f;
        c.device.diffusion = variant == 1 ? 0.01f : 0.0f;
        rpu_tile *t = make(&c, out, in, 606, 0);
        if (!t) return;
        CHECK_OK(rpu_tile_set_weights(t, w0, RPU_WEIGHTS_STORED));
        CHECK_OK(rpu_tile_post_update(t));
        rpu_tile_get_weights(t, w, RPU_WEIGHTS_STORED);
        if (variant == 0) {
            double md = 0;
            for (int q = 0; q < N; ++q)
                md = fmax(md, fabs(w[q] - 0.9 * w0[q]));
            CHECK(md < 1e-6, "decay: w = 0.9 w0 (lifetime 10, reset 0): max dev %g", md);
        } else if (variant == 1) {
            double ss = 0;
            for (int q = 0; q < N; ++q)
                ss += (double)(w[q] - w0[q]) * (w[q] - w0[q]);
            double sd = sqrt(ss / N);
            CHECK(fabs(sd / 0.01 - 1) < 5 / sqrt(2.0 * N), "diffusion std %g, want 0.01", sd);
        } else {
            CHECK(memcmp(w, w0, sizeof(float) * N) == 0, "no decay, no diffusion: unchanged");
        }
        rpu_tile_destroy(&t);
    }
    free(w0), free(w);
}

/* The state items restore a tile completely: a fresh tile with the same keys (as a
 * restart re-creates it), its state first overwritten with garbage, that receives A's
 * items continues exactly as A (forward noise, update pulses, post-update, drift). */
static void test_state_round_trip(void) {
    const char *devices[] = {"constant_step", "soft_bounds", "pow_step",
                             "exp_step",      "ideal",       "soft_bounds_reference"};
    for (size_t dv = 0; dv < sizeof devices / sizeof devices[0]; ++dv) {
        rpu_config c;
        rpu_config_default(&c, RPU_KIND_SINGLE);
        set_device(&c, devices[dv]);
        c.device.lifetime = 50;
        c.device.diffusion = 0.001f;
        c.device.drift.nu = 0.05f;
        c.forward.out_noise_std = 0.1f;
        c.forward.noise_management = RPU_NM_AVERAGE_ABS_MAX;
        c.backward.v_offset_std = 0.02f;
        if (dv == 1) c.device.write_noise_std = 1.0f;
        const int out = 7, in = 9, n = 3;
        rpu_tile *a = make(&c, out, in, 71, 4), *b = make(&c, out, in, 71, 4);
        if (!a || !b) return;
        float w[63], x[27], d[21], ya[21], yb[21];
        tl_fill_uniform(w, 63, -0.3f, 0.3f, 71, 1);
        tl_fill_uniform(x, 27, -1, 1, 71, 2);
        tl_fill_uniform(d, 21, -0.05f, 0.05f, 71, 3);
        rpu_tile_set_weights(a, w, RPU_WEIGHTS_STORED);
        CHECK_OK(rpu_tile_forward(a, x, n, ya, RPU_MODE_TRAIN));
        CHECK_OK(rpu_tile_update(a, x, d, n, 0.2f));
        CHECK_OK(rpu_tile_post_update(a));
        CHECK_OK(rpu_tile_drift_weights(a, 2.0));
        rpu_state_item ia[RPU_TILE_MAX_STATE_ITEMS], ib[RPU_TILE_MAX_STATE_ITEMS];
        int na = rpu_tile_state_items(a, ia, RPU_TILE_MAX_STATE_ITEMS);
        int nb = rpu_tile_state_items(b, ib, RPU_TILE_MAX_STATE_ITEMS);
        CHECK(na == nb && na <= RPU_TILE_MAX_STATE_ITEMS, "%s: item counts %d %d", devices[dv], na,
              nb);
        int bytes_ok = 1;
        for (int k = 0; k < na && k < nb; ++k) {
            bytes_ok &= !strcmp(ia[k].name, ib[k].name) && ia[k].count == ib[k].count &&
                        ia[k].type == ib[k].type;
            size_t sz = ia[k].type == RPU_STATE_F32 ? 4 : 8;
            memset(ib[k].data, 0x3f, ib[k].count * sz);
            memcpy(ib[k].data, ia[k].data, ia[k].count * sz);
        }
        CHECK(bytes_ok, "%s: same names, sizes and types", devices[dv]);
        rpu_tile_state_loaded(b);
        for (int step = 0; step < 2; ++step) {
            CHECK_OK(rpu_tile_forward(a, x, n, ya, RPU_MODE_TRAIN));
            CHECK_OK(rpu_tile_forward(b, x, n, yb, RPU_MODE_TRAIN));
            CHECK(memcmp(ya, yb, sizeof ya) == 0, "%s: forward after restore", devices[dv]);
            float da[27], db[27];
            CHECK_OK(rpu_tile_backward(a, d, n, da));
            CHECK_OK(rpu_tile_backward(b, d, n, db));
            CHECK(memcmp(da, db, sizeof da) == 0, "%s: backward after restore", devices[dv]);
            CHECK_OK(rpu_tile_update(a, x, d, n, 0.2f));
            CHECK_OK(rpu_tile_update(b, x, d, n, 0.2f));
            CHECK_OK(rpu_tile_post_update(a));
            CHECK_OK(rpu_tile_post_update(b));
            CHECK_OK(rpu_tile_drift_weights(a, 1.0));
            CHECK_OK(rpu_tile_drift_weights(b, 1.0));
        }
        float wa[63], wb[63];
        rpu_tile_get_weights(a, wa, RPU_WEIGHTS_STORED);
        rpu_tile_get_weights(b, wb, RPU_WEIGHTS_STORED);
        CHECK(memcmp(wa, wb, sizeof wa) == 0, "%s: weights after restore and two steps",
              devices[dv]);
        rpu_tile_destroy(&a), rpu_tile_destroy(&b);
    }
}

static void test_errors(void) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    rpu_tile *t = make(&c, 2, 2, 1, 0);
    float x[2] = {1, 1}, d[2] = {1, 1};
    CHECK_STATUS(rpu_tile_update(t, x, d, 1, -0.1f), RPU_ERR_ARG);
    CHECK(strstr(rpu_last_error(), "learning rate") != NULL, "names the problem: %s",
          rpu_last_error());
    CHECK_STATUS(rpu_tile_update(t, x, d, -1, 0.1f), RPU_ERR_ARG);
    CHECK_STATUS(rpu_tile_update(t, NULL, d, 1, 0.1f), RPU_ERR_ARG);
    CHECK_STATUS(rpu_tile_reset_columns(t, 5, 1, 1.0f), RPU_ERR_ARG);
    rpu_tile_destroy(&t);
    c.update.desired_bl = 300;
    rpu_tile_params p = {.out_size = 2, .in_size = 2};
    CHECK_STATUS(rpu_tile_create(&p, &c, &t), RPU_ERR_CONFIG);
    CHECK(strstr(rpu_last_error(), "update.desired_bl") != NULL, "names the key: %s",
          rpu_last_error());
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_engine_vs_reference();
    test_write_vs_reference();
    test_snap_vs_reference();
    test_row_slices();
    test_merged_distribution();
    test_unbiased_and_saturation();
    test_dynamic_bl();
    test_weight_grad();
    test_exact_paths();
    test_construction_and_memory();
    test_post_update();
    test_state_round_trip();
    test_errors();
    return tl_finish();
}
