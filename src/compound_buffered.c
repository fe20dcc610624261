/* The buffered transfer family of compound devices (compound-devices spec §6-§8):
 *   buffered_transfer (BufferedTransferCompound, TTv2): the Tiki-Taka v1 schedule, each read
 *     column of a source device accumulated in a floating-point buffer H_k and written to
 *     the next device in steps of its granularity once it crosses a threshold (§6);
 *   chopped_transfer (ChoppedTransferCompound, c-TTv2): two devices; the fast array A
 *     learns the gradient multiplied by chopper signs (input choppers per column, output
 *     choppers per row) that the transfer multiplies back out before the buffer (§7);
 *   dynamic_transfer (DynamicTransferCompound, AGAD): chopped, with the buffer fed by the
 *     read minus a reference, the running mean of the reads of the previous chopper period
 *     (§8).
 * compound.c owns the schedule (which vector completes a period, the slice pointer), the
 * fast update and the reads and writes; this file has what differs: the buffers and
 * choppers, the pulse-count learning rate of the chopped types, the threshold step of a
 * read and the de-chopped visible weight (post-1.1). Random numbers: the chopper flips
 * from the compound stream, one block per draw in the order of the spec; reads and writes
 * from the transfer stream through compound_io.c. */
#include "tile_impl.h"

#include "error_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_chopped(const rpu_compound *c) {
    return c->type == RPU_DEVICE_CHOPPED_TRANSFER || c->type == RPU_DEVICE_DYNAMIC_TRANSFER;
}

static float uniform_draw(rpu_compound *c) {
    float u[4];
    rpu_rng_uniform_at(&c->cstream, c->cnext++, u, 4);
    return u[0];
}

static void add_array(rpu_compound *c, const char *name, float *data) {
    const int a = c->n_arrays++;
    snprintf(c->names[a], RPU_COMPOUND_NAME_MAX, "%s", name);
    c->arrays[a].name = c->names[a];
    c->arrays[a].data = data;
}

/* ---------------------------------------------------------------- construction */

rpu_status rpu_compound_buffered_build(rpu_tile *t) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const size_t cells = (size_t)c->rows * (size_t)c->cols;
    const int nb = c->type == RPU_DEVICE_BUFFERED_TRANSFER  ? c->n - 1
                   : c->type == RPU_DEVICE_DYNAMIC_TRANSFER ? 3
                                                            : 1;
    c->bblock = (float *)calloc(cells * (size_t)nb, sizeof(float));
    c->bws = (float *)calloc(3 * (size_t)(c->rows + c->cols) + 8, sizeof(float));
    c->in_chopper = (uint64_t *)calloc((size_t)c->t_in, sizeof(uint64_t));
    c->out_chopper = (uint64_t *)calloc((size_t)c->t_out, sizeof(uint64_t));
    c->in_switched = (uint64_t *)calloc((size_t)c->t_in, sizeof(uint64_t));
    if (!c->bblock || !c->bws || !c->in_chopper || !c->out_chopper || !c->in_switched)
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the transfer buffers of a %dx%d tile",
                        c->rows, c->cols);
    /* names after the sub-devices' (§1.3 rule 3) */
    if (c->type == RPU_DEVICE_DYNAMIC_TRANSFER) {
        c->hbuf[0] = c->bblock;
        c->running_mean = c->bblock + cells;
        c->past_mean = c->bblock + 2 * cells;
        add_array(c, "buffered_FP_weight", c->hbuf[0]);
        add_array(c, "running_mean_weight", c->running_mean);
        add_array(c, "past_mean_weight", c->past_mean);
    } else {
        for (int k = 0; k < nb; ++k) {
            char name[RPU_COMPOUND_NAME_MAX];
            c->hbuf[k] = c->bblock + (size_t)k * cells;
            snprintf(name, sizeof name, "buffered_FP_weight_%d", k);
            add_array(c, name, c->hbuf[k]);
        }
    }
    c->lr_cur = 1.0f;
    c->count_lr_scale = 1.0f;
    if (is_chopped(c)) { /* the chunks of compound.c: at most two reads per vector */
        const size_t K = (size_t)rpu_update_chunk(c->rows, c->cols);
        c->chunked = !c->cell[0]; /* a unit cell as fast device: vector by vector */
        c->ev_cap = (int)(2 * K);
        c->ev_vec = (int *)malloc(sizeof(int) * 2 * K);
        c->ev_col = (int *)malloc(sizeof(int) * 2 * K);
        c->ev_excl = (int *)malloc(sizeof(int) * 2 * K);
        c->ev_snap = (float *)malloc(sizeof(float) * 2 * K * (size_t)c->rows);
        c->ev_x = (float *)malloc(sizeof(float) * K * (size_t)c->cols);
        c->ev_d = (float *)malloc(sizeof(float) * K * (size_t)c->rows);
        c->ev_lr = (float *)malloc(sizeof(float) * K);
        c->wr_x = (float *)malloc(sizeof(float) * 2 * K * (size_t)c->cols);
        c->wr_d = (float *)malloc(sizeof(float) * 2 * K * (size_t)c->rows);
        c->wr_base = (uint64_t *)malloc(sizeof(uint64_t) * 2 * K);
        /* what chopped_keep (compound.c) keeps: 3 counters, the read pointers, choppers */
        c->ev_save =
            (uint64_t *)malloc(sizeof(uint64_t) * (3 + RPU_MAX_UNIT_CELL_DEVICES +
                                                   2 * (size_t)c->t_in + (size_t)c->t_out));
        if (!c->ev_save || !c->ev_vec || !c->ev_col || !c->ev_excl || !c->ev_snap || !c->ev_x ||
            !c->ev_d || !c->ev_lr || !c->wr_x || !c->wr_d || !c->wr_base)
            return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for a chopped compound's chunks");
    }
    /* the automatic period of chopped / dynamic (§7.5): transfer_every < 0 */
    if (is_chopped(c) && cp->transfer_every < 0) {
        const float states = rpu_compound_sub_states(c, 0);
        const float e = roundf(states / (float)c->t_in * fabsf(cp->transfer_every));
        c->te_auto = e >= 1.0f ? (uint64_t)e : 1u;
    }
    if (cp->transfer_update.desired_bl > RPU_UPDATE_MAX_BL)
        return RPU_FAIL(RPU_ERR_CONFIG, "device.transfer_update.desired_bl = %d: at most %d",
                        cp->transfer_update.desired_bl, RPU_UPDATE_MAX_BL);
    return RPU_OK;
}

void rpu_compound_buffered_free(rpu_compound *c) {
    free(c->bblock);
    free(c->bws);
    free(c->ev_vec);
    free(c->ev_col);
    free(c->ev_excl);
    free(c->ev_snap);
    free(c->ev_x);
    free(c->ev_d);
    free(c->ev_lr);
    free(c->wr_x);
    free(c->wr_d);
    free(c->wr_base);
    free(c->ev_save);
    free(c->in_chopper);
    free(c->out_chopper);
    free(c->in_switched);
}

/* ---------------------------------------------------------------- fast update */

/* The choppers on the x side (columns) and d side (rows) of the tile (§7.2). */
static const uint64_t *x_chopper(const rpu_compound *c, const rpu_compound_params *cp) {
    return cp->transfer_columns ? c->in_chopper : c->out_chopper;
}

static const uint64_t *d_chopper(const rpu_compound *c, const rpu_compound_params *cp) {
    return cp->transfer_columns ? c->out_chopper : c->in_chopper;
}

/* Running maximum of §7.4 (aihwkit's updateAutoScale). */
static void auto_scale(float *m, float v, float momentum, int m_batch) {
    if (*m <= 0) {
        *m = v;
        return;
    }
    if (v <= 0) return;
    const float tau = (1.0f - momentum) / (float)m_batch;
    *m = (1.0f - tau) * *m + tau * v;
}

void rpu_compound_chopped_vector(rpu_tile *t, const float *x, const float *d, int m, float lr,
                                 float *lr_p, const float **xc, const float **dc) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const int R = c->rows, C = c->cols;
    if (cp->auto_scale) {
        float mx = 0, md = 0;
        for (int j = 0; j < C; ++j)
            mx = fabsf(x[j]) > mx ? fabsf(x[j]) : mx;
        for (int i = 0; i < R; ++i)
            md = fabsf(d[i]) > md ? fabsf(d[i]) : md;
        auto_scale(&c->m_x, mx, cp->auto_momentum, m);
        auto_scale(&c->m_d, md, cp->auto_momentum, m);
    }
    float p;
    if (cp->auto_scale && cp->fast_lr > 0) {
        p = cp->fast_lr * (float)t->cfg.update.desired_bl * rpu_compound_sub_granularity(c, 0);
        if (c->m_x > 0 && c->m_d > 0) p /= c->m_x * c->m_d;
        if (cp->scale_fast_lr) p *= lr; /* post-1.1 */
    } else {
        p = cp->fast_lr > 0 ? (cp->scale_fast_lr ? cp->fast_lr * lr : cp->fast_lr) : lr;
    }
    if (c->type == RPU_DEVICE_DYNAMIC_TRANSFER) p *= c->count_lr_scale;
    c->lr_cur = p;
    *lr_p = p;
    /* the chopped gradient (§7.3): sign flips of x where the x-side chopper is set and of d
     * where the d-side chopper is set give every coincidence the sign sigma_ij */
    float *xs = c->bws, *ds = c->bws + C;
    const uint64_t *xch = x_chopper(c, cp), *dch = d_chopper(c, cp);
    for (int j = 0; j < C; ++j)
        xs[j] = xch[j] ? -x[j] : x[j];
    for (int i = 0; i < R; ++i)
        ds[i] = dch[i] ? -d[i] : d[i];
    *xc = xs;
    *dc = ds;
}

/* ---------------------------------------------------------------- transfers */

/* The transfer learning rate's gamma factor (§6.3, §7.6): gamma_k / gamma_t when both are
 * positive (never when fully hidden). */
static float gamma_factor(const rpu_compound *c, int k, int to) {
    if (c->fully_hidden) return 1.0f;
    return c->gamma[k] > 0 && c->gamma[to] > 0 ? c->gamma[k] / c->gamma[to] : 1.0f;
}

/* The buffer element of output o at read position col (the buffers have the tile's shape). */
static size_t buf_index(const rpu_compound *c, const rpu_compound_params *cp, int o, int col) {
    return cp->transfer_columns ? (size_t)o * (size_t)c->cols + (size_t)col
                                : (size_t)col * (size_t)c->cols + (size_t)o;
}

/* Writes z (the negative step counts) to device to at read position col, LR step * g(to). */
static rpu_status write_steps(rpu_tile *t, int to, int col, float *v, float *z) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const float lr_w = cp->step * rpu_compound_sub_granularity(c, to);
    memset(v, 0, sizeof(float) * (size_t)c->t_in);
    v[col] = 1.0f;
    return cp->transfer_columns ? rpu_compound_write(t, &cp->transfer_update, to, v, z, lr_w)
                                : rpu_compound_write(t, &cp->transfer_update, to, z, v, lr_w);
}

/* TTv2 (§6.3): one read of source k at col. */
static rpu_status buffered_read(rpu_tile *t, int k, int to, int col, float lr_t) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const int out = c->t_out;
    float *v = c->bws, *y = v + c->t_in, *z = y + out;
    const float theta = cp->thres_scale * rpu_compound_sub_granularity(c, to);
    const float mc = cp->momentum < 0 ? 0 : (cp->momentum > 1 ? 1 : cp->momentum);
    const float M = (float)cp->transfer_update.desired_bl;
    memset(v, 0, sizeof(float) * (size_t)c->t_in);
    v[col] = 1.0f;
    RPU_CHECK(rpu_compound_read(t, k, c->read_dir, v, y)); /* scale +1 */
    float *H = c->hbuf[k];
    int any = 0;
    for (int o = 0; o < out; ++o) {
        const size_t e = buf_index(c, cp, o, col);
        const float h = H[e] + y[o] * fabsf(lr_t);
        float n = truncf(h / theta);
        n = n > M ? M : (n < -M ? -M : n);
        if (n != 0) {
            H[e] = cp->forget_buffer ? h * cp->momentum : h - (1.0f - mc) * n * theta;
            any = 1;
        } else {
            H[e] = h;
        }
        z[o] = -n;
    }
    return any ? write_steps(t, to, col, v, z) : RPU_OK;
}

/* The factor a read of A is scaled by before it enters the buffer (§7.6): the pulse-count
 * learning rate over the buffer granularity (automatic and gradient-magnitude corrections
 * included). */
static float read_scale(const rpu_tile *t, float lr_t) {
    const rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const float gA = rpu_compound_sub_granularity(c, 0), gC = rpu_compound_sub_granularity(c, 1);
    float bg = cp->buffer_granularity > 0 ? cp->buffer_granularity : 1.0f;
    bg *= cp->auto_granularity > 0
              ? gA * cp->auto_granularity / ((float)c->t_in * fabsf(cp->transfer_every))
              : gA;
    if (cp->correct_gradient_magnitudes) return fabsf(lr_t) / c->lr_cur / (bg * (gC / gA));
    return fabsf(lr_t) / bg;
}

/* Whether a read of one column through io touches no other weight: its input stays one-hot
 * (no input noise) and no term reads all of |W| (ir_drop, pcm_read weight noise). */
static bool reads_column_only(const rpu_io_params *io) {
    return !(io->inp_noise > 0) && !(io->ir_drop > 0) &&
           !(io->w_noise > 0 && io->w_noise_type == RPU_WNOISE_PCM_READ);
}

rpu_status rpu_compound_read_fast(rpu_tile *t, int col, float *v, float *y, int *planned) {
    rpu_compound *c = t->cmp;
    *planned = c->plan;
    if (c->plan) {
        if (c->n_ev >= c->ev_cap)
            return RPU_FAIL(RPU_ERR_INTERNAL, "chopped update: more than %d reads in a chunk",
                            c->ev_cap);
        c->ev_vec[c->n_ev] = c->plan_vec;
        c->ev_col[c->n_ev++] = col;
        return RPU_OK;
    }
    memset(v, 0, sizeof(float) * (size_t)c->t_in);
    v[col] = 1.0f;
    if (!c->replay) return rpu_compound_read(t, 0, c->read_dir, v, y);
    if (c->ev_next >= c->n_ev || c->ev_col[c->ev_next] != col)
        return RPU_FAIL(RPU_ERR_INTERNAL, "chopped update: read %d (column %d) was not planned",
                        c->ev_next, col);
    /* A's column as it was after the read's vector. A read whose IO uses only that column
     * takes it from the snapshot (tile_io.c's one-hot MAC); else the snapshot is swapped
     * into A and back */
    const int R = c->rows, C = c->cols;
    float *a = c->hidden[0] + col, *snap = c->ev_snap + (size_t)c->ev_next++ * (size_t)R;
    if (reads_column_only(&c->read_io)) {
        t->col_src = snap;
        t->col_j = col;
        const rpu_status st = rpu_compound_read(t, 0, c->read_dir, v, y);
        t->col_src = NULL;
        return st;
    }
    for (int i = 0; i < R; ++i) {
        const float w = a[(size_t)i * C];
        a[(size_t)i * C] = snap[i];
        snap[i] = w;
    }
    const rpu_status st = rpu_compound_read(t, 0, c->read_dir, v, y);
    for (int i = 0; i < R; ++i)
        a[(size_t)i * C] = snap[i];
    return st;
}

/* c-TTv2 (§7.6): one read of A at col, then the chopper updates and the sweep counter. */
static rpu_status chopped_read(rpu_tile *t, int col, float lr_t) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const int in = c->t_in, out = c->t_out;
    float *v = c->bws, *y = v + in, *z = y + out;
    float kappa = read_scale(t, lr_t);
    const float mc = 1.0f - (cp->momentum < 0 ? 0 : (cp->momentum > 1 ? 1 : cp->momentum));
    const float M = (float)cp->transfer_update.desired_bl;
    int planned;
    RPU_CHECK(rpu_compound_read_fast(t, col, v, y, &planned));
    float *H = c->hbuf[0];
    const uint64_t cin = c->in_chopper[col];
    int any = 0;
    for (int o = 0; !planned && o < out; ++o) {
        const size_t e = buf_index(c, cp, o, col);
        const float val = y[o] * kappa;
        float h = (cp->no_buffer ? 0.0f : H[e]) + (cin != c->out_chopper[o] ? -val : val);
        float n = 0;
        if (fabsf(h) >= 1.0f) {
            n = truncf(h);
            n = n > M ? M : (n < -M ? -M : n);
            h = cp->forget_buffer ? h * cp->momentum : h - mc * n;
            any = 1;
        }
        H[e] = h;
        z[o] = -n;
    }
    if (any) RPU_CHECK(write_steps(t, 1, col, v, z));
    if (cp->in_chop_prob > 0) {
        if (cp->in_chop_random) {
            if (uniform_draw(c) < cp->in_chop_prob) c->in_chopper[col] ^= 1u;
        } else {
            int P = (int)ceilf(1.0f / cp->in_chop_prob);
            P = P < 2 ? 2 : P;
            if (c->transfer_counter % (uint64_t)P == (uint64_t)P - 1) c->in_chopper[col] ^= 1u;
        }
    }
    if (col == in - 1 && cp->out_chop_prob > 0)
        for (int o = 0; o < out; ++o)
            if (uniform_draw(c) < cp->out_chop_prob) c->out_chopper[o] ^= 1u;
    if (col == in - 1) c->transfer_counter++;
    return RPU_OK;
}

/* AGAD (§8.3): one read of A at col against the reference of the chopper period. */
static rpu_status dynamic_read(rpu_tile *t, int col, float lr_t) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const int in = c->t_in, out = c->t_out;
    float *v = c->bws, *y = v + in, *z = y + out;
    int Ns = cp->in_chop_prob > 0 ? (int)ceilf(1.0f / cp->in_chop_prob) : 2;
    Ns = Ns < 2 ? 2 : Ns;
    const uint64_t cs = c->transfer_counter % (uint64_t)Ns + 1u;
    float beta = cp->tail_weightening / (float)Ns;
    beta = beta > 1.0f ? 1.0f : beta;
    const bool sw = c->in_switched[col] != 0;
    c->in_switched[col] = 0;
    const float gA = rpu_compound_sub_granularity(c, 0);
    float kappa = read_scale(t, lr_t);
    if (cp->experimental_correct_accumulation) {
        const float lim = (float)cs < 1.0f / gA ? (float)cs : 1.0f / gA;
        kappa /= lim;
    }
    const float M = (float)cp->transfer_update.desired_bl;
    const float cap = M * cp->buffer_cap;
    int planned;
    RPU_CHECK(rpu_compound_read_fast(t, col, v, y, &planned));
    float *H = c->hbuf[0], *Rm = c->running_mean, *Pm = c->past_mean;
    const uint64_t cin = c->in_chopper[col];
    int any = 0;
    for (int o = 0; !planned && o < out; ++o) {
        const size_t e = buf_index(c, cp, o, col);
        float mp = Pm[e];
        if (sw) {
            mp = Rm[e];
            Pm[e] = mp;
        }
        const float val = (y[o] - mp) * kappa;
        float h = H[e] + (cin != c->out_chopper[o] ? -val : val);
        float n = 0;
        if (fabsf(h) >= 1.0f) {
            n = truncf(h);
            n = n > M ? M : (n < -M ? -M : n);
            if (cp->forget_buffer) {
                h *= cp->momentum;
            } else {
                h -= (1.0f - cp->momentum) * n;
                if (cap > 0) h = h > cap ? cap : (h < -cap ? -cap : h);
            }
            any = 1;
        }
        H[e] = h;
        z[o] = -n;
        Rm[e] = (1.0f - beta) * Rm[e] + beta * y[o];
    }
    if (any && c->transfer_counter > (uint64_t)Ns) RPU_CHECK(write_steps(t, 1, col, v, z));
    bool flip = cs == (uint64_t)Ns;
    if (cp->in_chop_random && uniform_draw(c) < cp->in_chop_prob) flip = true;
    if (flip) {
        c->in_chopper[col] ^= 1u;
        c->in_switched[col] = 1u;
    }
    if (col == in - 1) c->transfer_counter++;
    return RPU_OK;
}

rpu_status rpu_compound_buffered_chunk(rpu_tile *t, int k, int to, int start, int cnt, float lr_t) {
    rpu_compound *c = t->cmp;
    if (c->type == RPU_DEVICE_BUFFERED_TRANSFER) {
        if (to == k || k >= c->n - 1) return RPU_OK;
        lr_t *= gamma_factor(c, k, to);
        if (lr_t == 0) return RPU_OK;
        for (int q = 0; q < cnt; ++q)
            RPU_CHECK(buffered_read(t, k, to, start + q, lr_t));
        return RPU_OK;
    }
    /* chopped / dynamic: always A -> C whatever the devices of the event (aihwkit's CPU
     * ignores them; with no_self_transfer = false a self transfer of C is an extra A -> C
     * read, §7.1); one read per chunk (n_reads_per_transfer = 1, validated) */
    lr_t *= gamma_factor(c, 0, 1);
    if (lr_t == 0) return RPU_OK;
    for (int q = 0; q < cnt; ++q)
        RPU_CHECK(c->type == RPU_DEVICE_DYNAMIC_TRANSFER ? dynamic_read(t, start + q, lr_t)
                                                         : chopped_read(t, start + q, lr_t));
    return RPU_OK;
}

/* ---------------------------------------------------------------- visible weight */

bool rpu_compound_chopped_reduce(rpu_tile *t) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    if (!is_chopped(c) || c->fully_hidden || !cp->dechop_visible_weight) return false;
    const uint64_t *xch = x_chopper(c, cp), *dch = d_chopper(c, cp);
    const int R = c->rows, C = c->cols;
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) {
            const size_t q = (size_t)i * C + j;
            const float a = xch[j] != dch[i] ? -c->hidden[0][q] : c->hidden[0][q];
            t->w[q] = c->gamma[0] * a + c->gamma[1] * c->hidden[1][q];
        }
    return true;
}

/* ---------------------------------------------------------------- state */

int rpu_compound_buffered_state_items(rpu_tile *t, rpu_state_item *items, int n, int max) {
    rpu_compound *c = t->cmp;
    if (!is_chopped(c)) return n;
    n = rpu_state_item_add(items, n, max, "in_chopper", RPU_STATE_U64, (size_t)c->t_in, c->t_in, 1,
                           c->in_chopper);
    n = rpu_state_item_add(items, n, max, "out_chopper", RPU_STATE_U64, (size_t)c->t_out, c->t_out,
                           1, c->out_chopper);
    n = rpu_state_item_add(items, n, max, "tmp_count_lr", RPU_STATE_F32, 1, 1, 1, &c->lr_cur);
    n = rpu_state_item_add(items, n, max, "m_x", RPU_STATE_F32, 1, 1, 1, &c->m_x);
    n = rpu_state_item_add(items, n, max, "m_d", RPU_STATE_F32, 1, 1, 1, &c->m_d);
    n = rpu_state_item_add(items, n, max, "transfer_counter", RPU_STATE_U64, 1, 1, 1,
                           &c->transfer_counter);
    if (c->type == RPU_DEVICE_DYNAMIC_TRANSFER) {
        n = rpu_state_item_add(items, n, max, "in_chopper_switched", RPU_STATE_U64, (size_t)c->t_in,
                               c->t_in, 1, c->in_switched);
        n = rpu_state_item_add(items, n, max, "count_lr_scale", RPU_STATE_F32, 1, 1, 1,
                               &c->count_lr_scale);
    }
    return n;
}
