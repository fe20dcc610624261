/* Reads and writes of a compound device's arrays (compound-devices spec §1.7): a read of
 * sub-device k through the compound's read IO (transfer_forward or refresh_forward, its
 * stream and construction values) and a write of one vector to sub-device k through the
 * pulsed engine with the write's own update parameters (transfer stream). Used by
 * compound.c (transfers, refreshes) and compound_buffered.c (the buffered transfer family);
 * see compound_impl.h. */
#include "tile_impl.h"

#include "error_impl.h"

#include <string.h>

/* Reads of the compound's read IO (transfer_forward or refresh_forward): op(W_k) v. */
rpu_status rpu_compound_read(rpu_tile *t, int k, int dir, const float *v, float *y) {
    rpu_compound *c = t->cmp;
    const rpu_io_channel ch = {.io = &c->read_io,
                               .st = &c->read_state,
                               .rng = &c->xstream,
                               .next_block = &c->xnext,
                               .calls = &c->xcalls};
    return rpu_tile_io_read(t, &ch, c->hidden[k], dir, v, 1, y);
}

/* One write of device k: the update W_k -= lr d xᵀ of one vector (x [cols], d [rows]) with
 * update parameters up (pulsed through the engine with device k's granularity, draws from
 * the transfer stream; pulse type none: exact, then clipped to the device's bounds). A
 * negative lr flips every sign (spec §1.1). */
rpu_status rpu_compound_write(rpu_tile *t, const rpu_update_params *up, int k, const float *x,
                              const float *d, float lr) {
    rpu_compound *c = t->cmp;
    if (lr == 0) return RPU_OK;
    if (c->cell[k]) /* a unit cell: one update call of it (compound_cell.c) */
        return c->cell_update(c->cell[k], x, d, 1, c->write_m, lr);
    const int R = c->rows, C = c->cols;
    float *w = c->hidden[k];
    const rpu_device_state *dev = &c->sub[k];
    if (up->pulse_type == RPU_PULSE_NONE || up->pulse_type == RPU_PULSE_NONE_WITH_DEVICE) {
        for (int i = 0; i < R; ++i) {
            if (d[i] == 0) continue;
            for (int j = 0; j < C; ++j) {
                if (x[j] == 0) continue;
                const size_t q = (size_t)i * C + j;
                float v = w[q] - lr * d[i] * x[j];
                v = v > dev->max_bound[q] ? dev->max_bound[q] : v;
                v = v < dev->min_bound[q] ? dev->min_bound[q] : v;
                w[q] = v;
                if (dev->persistent_weights) dev->persistent_weights[q] = v;
            }
        }
        return RPU_OK;
    }
    const float *dd = d;
    if (lr < 0) {
        float *neg = c->buf + 6 * (size_t)(R + C); /* apart from the callers' vectors */
        for (int i = 0; i < R; ++i)
            neg[i] = -d[i];
        dd = neg;
        lr = -lr;
    }
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    const rpu_pulse_target tg = {.dev = dev, .w = w, .sign_mode = 0};
    const uint64_t base = c->xnext;
    c->xnext += L.total;
    if (c->replay && k == 1 && c->wr_x) { /* deferred to rpu_compound_flush_writes */
        if (c->n_wr > 0 && lr != c->wr_lr) RPU_CHECK(rpu_compound_flush_writes(t, up));
        if (c->n_wr >= c->ev_cap)
            return RPU_FAIL(RPU_ERR_INTERNAL, "chopped update: more than %d writes in a chunk",
                            c->ev_cap);
        memcpy(c->wr_x + (size_t)c->n_wr * C, x, sizeof(float) * (size_t)C);
        memcpy(c->wr_d + (size_t)c->n_wr * R, dd, sizeof(float) * (size_t)R);
        c->wr_base[c->n_wr++] = base;
        c->wr_lr = lr;
        return RPU_OK;
    }
    return rpu_update_pulses(t, up, dev->granularity, &c->xstream, base, L.total, x, dd, 1, lr, &tg,
                             1, NULL);
}

rpu_status rpu_compound_flush_writes(rpu_tile *t, const rpu_update_params *up) {
    rpu_compound *c = t->cmp;
    if (c->n_wr == 0) return RPU_OK;
    const int n = c->n_wr;
    c->n_wr = 0;
    const rpu_device_state *dev = &c->sub[1];
    const rpu_pulse_target tg = {.dev = dev, .w = c->hidden[1], .sign_mode = 0};
    return rpu_update_pulses_at(t, up, dev->granularity, &c->xstream, 0, 0, c->wr_base, c->wr_x,
                                c->wr_d, n, c->wr_lr, &tg, 1, NULL);
}
