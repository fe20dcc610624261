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
    return rpu_update_pulses(t, up, dev->granularity, &c->xstream, base, L.total, x, dd, 1, lr, &tg,
                             1, NULL);
}
