/* The tile's weight update (spec §3): exact floating-point updates, and the pulsed update
 * engine — update management, pulse trains as bit masks, coincidences by AND + popcount,
 * device pulses only where coincidences occurred.
 *
 * Each update vector (in batch order) draws its random numbers from the tile's update
 * stream at addresses fixed by (call, vector, region, element): pulse-train uniforms for
 * element j at x_pulses + j*bl_pad; the cycle-to-cycle normals of the vector form one
 * sequence from block c2c on, consumed row by row and, within a row, pulse rank by pulse
 * rank in column order (the contract of rpu_device_pulse_row). The slot-by-slot reference
 * in mpi_tests/ref_update.c uses
 * the same addresses and must give the same floats. */
#include "tile_impl.h"

#include "error_impl.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float abs_max_vec(const float *v, int n) {
    float lane[16] = {0};
    int j = 0;
    for (; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; ++l) {
            float a = fabsf(v[j + l]);
            lane[l] = a > lane[l] ? a : lane[l];
        }
    float m = 0;
    for (; j < n; ++j) m = fabsf(v[j]) > m ? fabsf(v[j]) : m;
    for (int l = 0; l < 16; ++l) m = lane[l] > m ? lane[l] : m;
    return m;
}

/* Pulse-train length and probability scales of one vector (spec §3.3). Returns BL (0: no
 * update); A scales |d|, B scales |x|. */
static int bl_and_scales(const rpu_update_params *up, float g, float lr, float xm, float dm,
                         float *A, float *B) {
    *A = *B = 0;
    if (lr == 0) return 0;
    const bool ublm = up->update_bl_management;
    const bool um = up->update_management || ublm;
    int BL;
    float a;
    if (up->fixed_bl || ublm) {
        BL = up->desired_bl;
        a = sqrtf(lr / (g * (float)BL));
    } else if (g * (float)up->desired_bl < lr) {
        a = 1.0f;
        double bl = ceil((double)lr / (double)g);
        BL = bl < 1 ? 1 : (bl > 1e9 ? 1000000000 : (int)bl);
    } else {
        BL = up->desired_bl;
        a = sqrtf(lr / (g * (float)BL));
    }
    float ax = a, ad = a;
    if (um) {
        if (xm == 0 || dm == 0) return 0;
        float dv = up->um_grad_scale * dm;
        float k = lr * xm * dv / g;
        if (ublm) {
            double ck = ceil((double)k);
            BL = ck < (double)up->desired_bl ? (int)ck : up->desired_bl;
            if (BL < 1) BL = 1;
            ax = ad = sqrtf(lr / (g * (float)BL));
        }
        if (k > (float)up->desired_bl) dv *= (float)up->desired_bl / k;
        ad *= sqrtf(xm / dv);
        ax *= sqrtf(dv / xm);
    }
    *A = ad;
    *B = ax;
    return BL;
}

/* Discretization of a probability with bin res (used as given, spec §3.1 quirk). */
static inline float discretize(float p, float res, bool sto, float u) {
    if (res <= 0) return p;
    return sto ? rintf(p / res + u - 0.5f) * res : rintf(p / res) * res;
}

static inline int8_t sgn(float v) {
    return (int8_t)((v > 0) - (v < 0));
}

/* Workspace of the pulsed engine, carved from one buffer. */
typedef struct {
    float *px, *pd;      /* probabilities [cols], [rows] */
    int8_t *sx, *sd;     /* signs */
    float *ux, *ud;      /* pulse-train uniforms [cols*bl_pad], [rows*bl_pad] */
    float *rx, *rd;      /* rounding uniforms */
    uint64_t *mx, *md;   /* masks [cols*nw], [rows*nw] */
    int16_t *nx, *nd;    /* signed counts (mean_count / implicit) */
    float *fx, *fd;      /* signed implicit probabilities */
    uint8_t *count;      /* [cols] */
    int8_t *sign;        /* [cols] */
    float *xi;           /* normal feed buffer */
    size_t xi_cap;
    float *wn;           /* [cols] */
} engine_ws;

static rpu_status engine_workspace(rpu_tile *t, engine_ws *e) {
    const size_t R = (size_t)t->p.out_size, C = (size_t)t->p.in_size;
    const size_t pad = 256, nw = 4;
    const size_t npp = (size_t)rpu_device_normals_per_pulse(&t->dev);
    size_t sizes[] = {
        C * sizeof(float),        R * sizeof(float),       C,          R,
        C * pad * sizeof(float),  R * pad * sizeof(float), C * sizeof(float), R * sizeof(float),
        C * nw * sizeof(uint64_t), R * nw * sizeof(uint64_t), C * sizeof(int16_t),
        R * sizeof(int16_t),      C * sizeof(float),       R * sizeof(float), C, C,
        (C * RPU_UPDATE_MAX_BL * (npp ? npp : 1) + 8192) * sizeof(float), (C + 4) * sizeof(float)};
    const size_t nparts = sizeof sizes / sizeof sizes[0];
    size_t total = 0;
    for (size_t k = 0; k < nparts; ++k) total += (sizes[k] + 63) & ~(size_t)63;
    if (total > t->uws_cap) {
        unsigned char *p = (unsigned char *)realloc(t->uws, total);
        if (!p) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the update workspace");
        t->uws = p;
        t->uws_cap = total;
    }
    void *ptr[sizeof sizes / sizeof sizes[0]];
    size_t off = 0;
    for (size_t k = 0; k < nparts; ++k) {
        ptr[k] = t->uws + off;
        off += (sizes[k] + 63) & ~(size_t)63;
    }
    e->px = ptr[0], e->pd = ptr[1], e->sx = ptr[2], e->sd = ptr[3];
    e->ux = ptr[4], e->ud = ptr[5], e->rx = ptr[6], e->rd = ptr[7];
    e->mx = ptr[8], e->md = ptr[9], e->nx = ptr[10], e->nd = ptr[11];
    e->fx = ptr[12], e->fd = ptr[13], e->count = ptr[14], e->sign = ptr[15];
    e->xi = ptr[16], e->wn = ptr[17];
    e->xi_cap = sizes[16] / sizeof(float);
    return RPU_OK;
}

/* Stochastic pulse trains of n elements: bit k of element j is set when p[j] > u[j*pad+k]
 * (k < BL); nw words per element. */
static void make_masks(const float *p, const float *u, int n, int BL, int pad, int nw,
                       uint64_t *m) {
    for (int j = 0; j < n; ++j) {
        uint64_t *mj = m + (size_t)j * nw;
        const float pj = p[j];
        const float *uj = u + (size_t)j * pad;
        for (int w = 0; w < nw; ++w) {
            uint64_t bits = 0;
            if (pj > 0) {
                int k0 = 64 * w, k1 = BL < k0 + 64 ? BL : k0 + 64;
                for (int k = k0; k < k1; ++k) bits |= (uint64_t)(pj > uj[k]) << (k - k0);
            }
            mj[w] = bits;
        }
    }
}

/* The vector's cycle-to-cycle normals, drawn ahead in large fills: buf[pos .. have) are
 * the next unused normals, the following ones start at block `next`. */
typedef struct {
    float *buf;
    size_t cap, pos, have;
    uint64_t next;
} normal_feed;

/* Makes n consecutive normals available at f->buf + f->pos. */
static const float *feed_take(const rpu_tile *t, normal_feed *f, size_t n) {
    if (f->have - f->pos < n) {
        size_t keep = f->have - f->pos;
        memmove(f->buf, f->buf + f->pos, keep * sizeof(float));
        size_t want = n - keep;
        size_t room = f->cap - keep;
        size_t get = want < 4096 ? 4096 : want;
        get = (get + 3) & ~(size_t)3;
        if (get > room) get = room & ~(size_t)3;
        rpu_rng_normal_at(&t->ustream, f->next, f->buf + keep, get);
        f->next += get / 4;
        f->pos = 0;
        f->have = keep + get;
    }
    const float *p = f->buf + f->pos;
    f->pos += n;
    return p;
}

/* Applies one row's coincidence counts through the device row kernel, drawing its
 * cycle-to-cycle and write noise. */
static void apply_row(rpu_tile *t, const engine_ws *e, normal_feed *feed,
                      const rpu_update_layout *L, uint64_t vbase, int i) {
    const int C = t->p.in_size;
    const int npp = rpu_device_normals_per_pulse(&t->dev);
    long S = 0;
    for (int j = 0; j < C; ++j) S += e->count[j];
    if (S == 0) return;
    const float *xi = npp > 0 ? feed_take(t, feed, (size_t)S * (size_t)npp) : NULL;
    if (t->dev.persistent_weights)
        rpu_rng_normal_at(&t->ustream, vbase + L->write + (uint64_t)i * L->row_write, e->wn,
                          (size_t)C);
    rpu_device_pulse_row(&t->dev, i, t->w + (size_t)i * C, e->count, e->sign, xi,
                         t->dev.persistent_weights ? e->wn : NULL);
}

/* One update vector through the pulsed engine. */
static rpu_status pulsed_vector(rpu_tile *t, const engine_ws *e, const float *x, const float *d,
                                float lr, uint64_t vbase) {
    const rpu_update_params *up = &t->cfg.update;
    const int R = t->p.out_size, C = t->p.in_size;
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    float A, B;
    const float xm = abs_max_vec(x, C), dm = abs_max_vec(d, R);
    const int BL = bl_and_scales(up, t->dev.granularity, lr, xm, dm, &A, &B);
    if (BL == 0) return RPU_OK;
    if (BL > RPU_UPDATE_MAX_BL)
        return RPU_FAIL(RPU_ERR_UNSUPPORTED,
                        "pulse train of %d slots (lr %g / granularity %g) exceeds %d; set "
                        "update.fixed_bl = true or update.update_bl_management = true",
                        BL, (double)lr, (double)t->dev.granularity, RPU_UPDATE_MAX_BL);
    const bool sto = up->sto_round && up->res > 0;
    if (sto) {
        rpu_rng_uniform_at(&t->ustream, vbase + L.x_round, e->rx, (size_t)C);
        rpu_rng_uniform_at(&t->ustream, vbase + L.d_round, e->rd, (size_t)R);
    }
    for (int j = 0; j < C; ++j) {
        e->px[j] = discretize(B * fabsf(x[j]), up->res, sto, sto ? e->rx[j] : 0);
        e->sx[j] = sgn(x[j]);
    }
    for (int i = 0; i < R; ++i) {
        e->pd[i] = discretize(A * fabsf(d[i]), up->res, sto, sto ? e->rd[i] : 0);
        e->sd[i] = sgn(d[i]);
    }
    normal_feed feed = {.buf = e->xi, .cap = e->xi_cap, .pos = 0, .have = 0, .next = vbase + L.c2c};
    const rpu_pulse_type pt = up->pulse_type;
    if (pt == RPU_PULSE_STOCHASTIC_COMPRESSED || pt == RPU_PULSE_STOCHASTIC) {
        const int pad = 4 * ((BL + 3) / 4), nw = (BL + 63) / 64;
        rpu_rng_uniform_at(&t->ustream, vbase + L.x_pulses, e->ux, (size_t)C * pad);
        rpu_rng_uniform_at(&t->ustream, vbase + L.d_pulses, e->ud, (size_t)R * pad);
        make_masks(e->px, e->ux, C, BL, pad, nw, e->mx);
        make_masks(e->pd, e->ud, R, BL, pad, nw, e->md);
        for (int i = 0; i < R; ++i) {
            const uint64_t *mdi = e->md + (size_t)i * nw;
            uint64_t any = 0;
            for (int w = 0; w < nw; ++w) any |= mdi[w];
            if (!any) continue;
            const int8_t si = e->sd[i];
            if (nw == 1) {
                const uint64_t m = mdi[0];
                for (int j = 0; j < C; ++j) e->count[j] = (uint8_t)__builtin_popcountll(m & e->mx[j]);
            } else {
                for (int j = 0; j < C; ++j) {
                    int c = 0;
                    for (int w = 0; w < nw; ++w) c += __builtin_popcountll(mdi[w] & e->mx[(size_t)j * nw + w]);
                    e->count[j] = (uint8_t)c;
                }
            }
            for (int j = 0; j < C; ++j) e->sign[j] = (int8_t)(si * e->sx[j]);
            apply_row(t, e, &feed, &L, vbase, i);
        }
        return RPU_OK;
    }
    /* deterministic counts: mean_count and deterministic_implicit */
    if (pt == RPU_PULSE_MEAN_COUNT) {
        for (int j = 0; j < C; ++j) {
            float c = rintf((float)BL * e->px[j]);
            c = c < 0 ? 0 : (c > (float)BL ? (float)BL : c);
            e->nx[j] = (int16_t)(e->sx[j] * (int)c);
        }
        for (int i = 0; i < R; ++i) {
            float c = rintf((float)BL * e->pd[i]);
            c = c < 0 ? 0 : (c > (float)BL ? (float)BL : c);
            e->nd[i] = (int16_t)(e->sd[i] * (int)c);
        }
        for (int i = 0; i < R; ++i) {
            if (e->nd[i] == 0) continue;
            const float f = (float)e->nd[i] / (float)BL;
            for (int j = 0; j < C; ++j) {
                float c = rintf(f * (float)e->nx[j]);
                e->count[j] = (uint8_t)fabsf(c);
                e->sign[j] = sgn(c);
            }
            apply_row(t, e, &feed, &L, vbase, i);
        }
        return RPU_OK;
    }
    if (pt == RPU_PULSE_DETERMINISTIC_IMPLICIT) {
        for (int j = 0; j < C; ++j) {
            float p = discretize(B * fabsf(x[j]), up->x_res_implicit, false, 0);
            p = p < 0 ? 0 : (p > 1 ? 1 : p);
            e->fx[j] = (float)e->sx[j] * p;
        }
        for (int i = 0; i < R; ++i) {
            float p = discretize(A * fabsf(d[i]), up->d_res_implicit, false, 0);
            p = p < 0 ? 0 : (p > 1 ? 1 : p);
            e->fd[i] = (float)e->sd[i] * p;
        }
        for (int i = 0; i < R; ++i) {
            if (e->fd[i] == 0) continue;
            const float f = (float)BL * e->fd[i];
            for (int j = 0; j < C; ++j) {
                float c = rintf(f * e->fx[j]);
                e->count[j] = (uint8_t)fabsf(c);
                e->sign[j] = sgn(c);
            }
            apply_row(t, e, &feed, &L, vbase, i);
        }
        return RPU_OK;
    }
    return RPU_FAIL(RPU_ERR_INTERNAL, "pulsed engine called with pulse type %d", (int)pt);
}

rpu_status rpu_tile_update_impl(rpu_tile *t, const float *x, const float *d, int n, float lr) {
    const int R = t->p.out_size, C = t->p.in_size;
    const rpu_update_params *up = &t->cfg.update;
    if (!(lr >= 0) || !isfinite(lr))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update: learning rate %g must be >= 0", (double)lr);
    if (n == 0 || lr == 0) return RPU_OK;

    /* logical SGD through the mapping scales (spec §7): d / (scales · lr_scale), lr · lr_scale */
    float lr_scale = 1.0f;
    if (t->cfg.mapping.weight_scaling_lr_compensation) {
        double mean = 0;
        for (int i = 0; i < R; ++i) mean += t->scales[i];
        mean /= R;
        if (mean > 0) lr_scale = (float)(1.0 / mean);
    }
    const size_t dn = (size_t)n * R;
    if (dn > t->dbuf_cap) {
        float *p = (float *)realloc(t->dbuf, dn * sizeof(float));
        if (!p) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for an update batch of %d", n);
        t->dbuf = p;
        t->dbuf_cap = dn;
    }
    float *du = t->dbuf;
    for (int k = 0; k < n; ++k)
        for (int i = 0; i < R; ++i)
            du[(size_t)k * R + i] = d[(size_t)k * R + i] / (t->scales[i] * lr_scale);
    const float lr_t = lr * lr_scale;
    t->ucalls++;

    if (!t->dev.pulsed || up->pulse_type == RPU_PULSE_NONE) {
        /* exact W -= lr Dᵀ X, no bounds */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, C, n, -lr_t, du, R, x, C, 1.0f,
                    t->w, C);
        t->abs_w_valid = 0;
        return RPU_OK;
    }
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    const uint64_t base = t->unext;
    t->unext += (uint64_t)n * L.total;
    if (up->pulse_type == RPU_PULSE_NONE_WITH_DEVICE) {
        for (int k = 0; k < n; ++k) {
            cblas_sger(CblasRowMajor, R, C, -lr_t, du + (size_t)k * R, 1, x + (size_t)k * C, 1,
                       t->w, C);
            rpu_device_apply_bounds(&t->dev, t->w, &t->ustream, base + (uint64_t)k * L.total + L.write);
        }
        t->abs_w_valid = 0;
        return RPU_OK;
    }
    engine_ws e;
    RPU_CHECK(engine_workspace(t, &e));
    for (int k = 0; k < n; ++k)
        RPU_CHECK(pulsed_vector(t, &e, x + (size_t)k * C, du + (size_t)k * R, lr_t,
                                base + (uint64_t)k * L.total));
    t->abs_w_valid = 0;
    return RPU_OK;
}
