/* The mixed-precision compound (device.type = mixed_precision; aihwkit's
 * MixedPrecisionCompound, compound-devices spec §9; Nandakumar et al. 2020).
 *
 * State. One analog device (sub-device 0, from device.unit_cell_devices.0, its
 * device-to-device values drawn from the stream (cseed, layer, tile, RPU_PURPOSE_CONSTRUCT_SUB))
 * whose weights are the tile's weights: the visible W; or a unit cell (built by compound.c,
 * compound_cell.c; its arrays listed under its own names, W a copy of its visible weight,
 * each row write one update call of the cell with m = the rows of the transfer chunk). A digital
 * accumulator chi [rows, cols] (aihwkit's hidden_weights_chi, zero at construction), the vector
 * counter v (current_update_idx, aihwkit's current_update_index) and the row pointer r
 * (current_row_index). The checkpoint arrays are the device's under their unsuffixed names,
 * then hidden_weights_chi (spec §1.3 rule 4); they are restored verbatim (aihwkit ignores chi
 * on import and re-runs set_weights, which zeroes it: a deliberate difference, §1.6).
 *
 * Update (§9.3), per vector of a call of m, in order: x and d are quantised if n_x_bins /
 * n_d_bins > 0 (stochastic rounding draws one uniform per element of x, then of d, from the
 * update stream at an address fixed by the call's block and the vector's place in it);
 * chi += lr qd qx^T; then, if transfer_every * m > 0, v > 0 and v is a multiple of
 * transfer_every * m, a transfer; v advances. No pulse trains are made for x and d.
 *
 * Transfer (§9.4): N rows (n_rows_per_transfer; -1 all) from the row pointer (random_row: a
 * start drawn from the compound stream when N < rows), wrapping; per row i the counts
 * n_j = trunc(chi_ij / eps) are taken out of chi (chi_ij -= n_j eps) and written to the
 * analog device as one pulsed vector update x = n, d = e_i, lr = eps * transfer_lr, with the
 * tile's update parameters and update management and update BL management forced on (draws
 * from the transfer stream at addresses fixed by the write count). A row of zero counts
 * writes nothing. epsilon = device.granularity, or the device's granularity if 0.
 *
 * Not split by rows over holders (compound.c: every holder runs the whole update). Implements
 * the quantisation formula of the spec (CUDA's), not the CPU bug of aihwkit 1.1 when exactly
 * one bin count is set (§9.3). */
#include "tile_impl.h"

#include "error_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_array(rpu_compound *c, const char *name, float *data) {
    const int a = c->n_arrays++;
    snprintf(c->names[a], RPU_COMPOUND_NAME_MAX, "%s", name);
    c->arrays[a].name = c->names[a];
    c->arrays[a].data = data;
}

rpu_status rpu_mixed_build(rpu_tile *t, uint64_t cseed) {
    rpu_compound *c = t->cmp;
    const rpu_config *cfg = &t->cfg;
    const rpu_compound_params *cp = &cfg->compound;
    const rpu_update_params *mu = &cfg->update;
    RPU_CHECK(rpu_compound_check_pulses(mu, RPU_UPDATE_MAX_BL,
                                        "the mixed_precision compound writes its transfers with"));
    c->n = 1;
    if (!c->cell[0]) { /* (a unit cell is built by compound.c before this) */
        rpu_rng cons;
        rpu_rng_init(
            &cons, cseed,
            rpu_stream_id(t->p.layer_id, t->p.tile_id, (uint32_t)RPU_PURPOSE_CONSTRUCT_SUB));
        RPU_CHECK(
            rpu_device_create(&c->sub[0], &cp->unit_cell_devices[0], c->rows, c->cols, &cons));
    }
    c->granularity = rpu_compound_sub_granularity(c, 0);
    c->eps = cp->granularity > 0 ? cp->granularity : c->granularity;
    if (!(c->eps > 0))
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "device.granularity = 0 and the analog device's granularity is %g: the "
                        "mixed_precision transfer needs epsilon > 0 (set device.granularity or "
                        "device.unit_cell_devices.0.dw_min)",
                        (double)c->granularity);
    c->gamma[0] = 1.0f;
    c->fully_hidden = 1; /* W is the analog device's weight */
    const size_t cells = (size_t)c->rows * (size_t)c->cols;
    c->block = (float *)calloc(cells + 1, sizeof(float));
    c->buf = (float *)calloc(8 * (size_t)(c->rows + c->cols) + 16, sizeof(float));
    if (!c->block || !c->buf)
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the accumulator of a %dx%d tile", c->rows,
                        c->cols);
    c->chi = c->block;
    if (c->cell[0]) { /* the cell's arrays under its own names (§1.3 rule 4) */
        const rpu_compound *in = c->cell[0]->cmp;
        for (int a = 0; a < in->n_arrays; ++a)
            add_array(c, in->arrays[a].name, in->arrays[a].data);
    } else {
        c->hidden[0] = t->w;
        for (int a = 0; a < c->sub[0].n_arrays; ++a)
            add_array(c, c->sub[0].arrays[a].name, c->sub[0].arrays[a].data);
    }
    add_array(c, "hidden_weights_chi", c->chi);
    return RPU_OK;
}

void rpu_mixed_set_weights(rpu_tile *t) {
    rpu_compound *c = t->cmp;
    memset(c->chi, 0, sizeof(float) * (size_t)c->rows * (size_t)c->cols);
    c->current_update_idx = 0;
    c->current_row_index = 0;
}

/* q = v quantised to n_bins bins (§9.3) with stochastic rounding offsets u (NULL: none). */
static void quantise(const float *v, int len, int n_bins, const float *u, float *q) {
    const float h = (float)(n_bins / 2);
    float amax = 0;
    for (int j = 0; j < len; ++j)
        amax = fmaxf(amax, fabsf(v[j]));
    float w = amax / h;
    if (w == 0) w = 1.0f;
    for (int j = 0; j < len; ++j) {
        float k = rintf(v[j] / w + (u ? u[j] - 0.5f : 0.0f));
        k = k > h ? h : (k < -h ? -h : k);
        q[j] = k * w;
    }
}

/* The write of one row: W -= lr d x^T with d = e_i (x the counts), pulsed through the engine
 * with update parameters up and the device's granularity, draws from the transfer stream
 * (one block range per write). A negative lr flips the signs (spec §1.1). */
static rpu_status write_row(rpu_tile *t, const rpu_update_params *up, const float *x, float *e,
                            int i, float lr) {
    rpu_compound *c = t->cmp;
    e[i] = lr < 0 ? -1.0f : 1.0f;
    if (c->cell[0]) { /* one update call of the unit cell; the chunk is its m (§9.4) */
        const rpu_status s = c->cell_update(c->cell[0], x, e, 1, c->write_m, fabsf(lr));
        e[i] = 0.0f;
        return s;
    }
    const rpu_update_layout L = rpu_update_layout_for(c->rows, c->cols);
    const rpu_pulse_target tg = {.dev = &c->sub[0], .w = c->hidden[0], .sign_mode = 0};
    const uint64_t base = c->xnext;
    c->xnext += L.total;
    const rpu_status s = rpu_update_pulses(t, up, c->sub[0].granularity, &c->xstream, base, L.total,
                                           x, e, 1, fabsf(lr), &tg, 1, NULL);
    e[i] = 0.0f;
    return s;
}

/* One transfer (§9.4). */
static rpu_status transfer(rpu_tile *t) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const float lambda = cp->transfer_lr;
    if (cp->n_rows_per_transfer == 0 || lambda == 0) return RPU_OK;
    const int R = c->rows, C = c->cols;
    const int N =
        cp->n_rows_per_transfer < 0 || cp->n_rows_per_transfer > R ? R : cp->n_rows_per_transfer;
    int start = (int)c->current_row_index;
    if (cp->random_row && N < R) {
        float u[4];
        rpu_rng_uniform_at(&c->cstream, c->cnext++, u, 4);
        const int s = (int)floorf(u[0] * (float)R);
        start = s < 0 ? 0 : (s > R - 1 ? R - 1 : s);
    }
    rpu_update_params up = t->cfg.update;
    up.update_management = true;
    up.update_bl_management = true;
    float *nv = c->buf, *e = c->buf + C; /* [C] counts, [R] unit vector */
    memset(e, 0, sizeof(float) * (size_t)R);
    const float eps = c->eps;
    const int first = N < R - start ? N : R - start; /* rows of the chunk before the wrap */
    for (int q = 0; q < N; ++q) {
        const int i = (start + q) % R;
        c->write_m = q < first ? first : N - first; /* the chunk's rows: a cell's m (§9.4) */
        float *chi = c->chi + (size_t)i * C;
        int any = 0;
        for (int j = 0; j < C; ++j) {
            const float k = truncf(chi[j] / eps);
            nv[j] = k;
            if (k != 0) {
                chi[j] -= k * eps;
                any = 1;
            }
        }
        if (!any) continue;
        RPU_CHECK(write_row(t, &up, nv, e, i, eps * lambda));
    }
    c->current_row_index = (uint64_t)((start + N) % R);
    return RPU_OK;
}

rpu_status rpu_mixed_update(rpu_tile *t, const float *x, const float *d, int n, float lr) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    if (n <= 0 || lr == 0) return RPU_OK;
    const int R = c->rows, C = c->cols;
    const bool qxon = cp->n_x_bins > 0, qdon = cp->n_d_bins > 0;
    /* the quantiser's draws: per vector one block range for x, then one for d */
    const uint64_t bx = rpu_rng_blocks_for((size_t)C), bd = rpu_rng_blocks_for((size_t)R);
    const uint64_t qstride = bx + bd;
    const uint64_t base = t->unext;
    if (qxon || qdon) t->unext += (uint64_t)n * qstride;
    const uint64_t T = (uint64_t)cp->transfer_every * (uint64_t)n;
    /* scratch past the transfer's [C + R] (buf holds 8 (R + C) floats) */
    float *qx = c->buf + (R + C), *qd = qx + C, *u = qd + R;
    for (int v = 0; v < n; ++v) {
        const float *xv = x + (size_t)v * C, *dv = d + (size_t)v * R;
        if (qxon) {
            const float *ux = NULL;
            if (cp->stoc_round_x) {
                rpu_rng_uniform_at(&t->ustream, base + (uint64_t)v * qstride, u, (size_t)C);
                ux = u;
            }
            quantise(xv, C, cp->n_x_bins, ux, qx);
            xv = qx;
        }
        if (qdon) {
            const float *ud = NULL;
            if (cp->stoc_round_d) {
                rpu_rng_uniform_at(&t->ustream, base + (uint64_t)v * qstride + bx, u, (size_t)R);
                ud = u;
            }
            quantise(dv, R, cp->n_d_bins, ud, qd);
            dv = qd;
        }
        for (int i = 0; i < R; ++i) {
            const float a = lr * dv[i];
            if (a == 0) continue;
            float *chi = c->chi + (size_t)i * C;
            for (int j = 0; j < C; ++j)
                chi[j] += a * xv[j];
        }
        const uint64_t vc = c->current_update_idx;
        if (T > 0 && vc > 0 && vc % T == 0) RPU_CHECK(transfer(t));
        c->current_update_idx = vc + 1;
    }
    return RPU_OK;
}

int rpu_mixed_state_items(rpu_tile *t, rpu_state_item *items, int n, int max) {
    rpu_compound *c = t->cmp;
    n = rpu_state_item_add(items, n, max, "current_update_index", RPU_STATE_U64, 1, 1, 1,
                           &c->current_update_idx);
    n = rpu_state_item_add(items, n, max, "current_row_index", RPU_STATE_U64, 1, 1, 1,
                           &c->current_row_index);
    n = rpu_state_item_add(items, n, max, "compound_next_block", RPU_STATE_U64, 1, 1, 1, &c->cnext);
    n = rpu_state_item_add(items, n, max, "transfer_next_block", RPU_STATE_U64, 1, 1, 1, &c->xnext);
    if (c->sub[0].drift_nu) {
        c->drift_started[0] = (uint64_t)c->sub[0].drift_started;
        n = rpu_state_item_add(items, n, max, "drift_started_0", RPU_STATE_U64, 1, 1, 1,
                               &c->drift_started[0]);
        n = rpu_state_item_add(items, n, max, "drift_current_t_0", RPU_STATE_F64, 1, 1, 1,
                               &c->sub[0].drift_current_t);
    }
    return n;
}
