/* The tile's weight update (spec §3): exact floating-point updates, and the pulsed update
 * engine — update management, pulse trains as bit masks, coincidences by AND + popcount,
 * device pulses only where coincidences occurred.
 *
 * Each update vector (in batch order) draws its random numbers from the tile's update
 * stream at addresses fixed by (call, vector, region, element): pulse-train uniforms for
 * slot k of x element j at value k*cols + j from block x_pulses, then slot k of d element i
 * at BL*cols + k*rows + i (one fill); the cycle-to-cycle normals of the vector form one
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
    for (; j < n; ++j)
        m = fabsf(v[j]) > m ? fabsf(v[j]) : m;
    for (int l = 0; l < 16; ++l)
        m = lane[l] > m ? lane[l] : m;
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
    float *px, *pd;    /* probabilities [cols], [rows] */
    int8_t *sx, *sd;   /* signs */
    float *ux;         /* pulse-train uniforms [(cols + rows) * BL], slot-major */
    float *rx, *rd;    /* rounding uniforms */
    uint64_t *mx, *md; /* masks [cols*nw], [rows*nw] */
    float *fx, *fd;    /* signed per-element factors (mean_count / implicit) */
    uint8_t *count;    /* [rows * cols] */
    int8_t *sign;      /* [rows * cols] */
    long *rowS;        /* pulses per row [rows] */
    float *xi;         /* normal feed buffer */
    size_t xi_cap;
    float *wn; /* [cols] */
} engine_ws;

static rpu_status engine_workspace(rpu_tile *t, engine_ws *e) {
    const size_t R = (size_t)t->p.out_size, C = (size_t)t->p.in_size;
    const size_t pad = RPU_UPDATE_MAX_BL, nw = 4; /* slots per element at most */
    const size_t feed = (size_t)1 << 17;          /* normals drawn ahead at most (plus one row) */
    const size_t row_max = C * RPU_UPDATE_MAX_BL * 2;
    size_t sizes[] = {C * sizeof(float),
                      R * sizeof(float),
                      C,
                      R,
                      (C + R) * pad * sizeof(float),
                      C * sizeof(float),
                      R * sizeof(float),
                      C * nw * sizeof(uint64_t),
                      R * nw * sizeof(uint64_t),
                      C * sizeof(float),
                      R * sizeof(float),
                      R * C,
                      R * C,
                      R * sizeof(long),
                      (feed + row_max + 8) * sizeof(float),
                      (C + 4) * sizeof(float)};
    const size_t nparts = sizeof sizes / sizeof sizes[0];
    size_t total = 0;
    for (size_t k = 0; k < nparts; ++k)
        total += (sizes[k] + 63) & ~(size_t)63;
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
    e->px = ptr[0], e->pd = ptr[1], e->sx = ptr[2], e->sd = ptr[3], e->ux = ptr[4];
    e->rx = ptr[5], e->rd = ptr[6], e->mx = ptr[7], e->md = ptr[8], e->fx = ptr[9];
    e->fd = ptr[10], e->count = ptr[11], e->sign = ptr[12], e->rowS = ptr[13];
    e->xi = ptr[14], e->wn = ptr[15];
    e->xi_cap = (sizes[14] / sizeof(float)) & ~(size_t)3;
    return RPU_OK;
}

/* Stochastic pulse trains of n elements: bit k of element j is set when p[j] > u[k*n + j]
 * (k < BL; the uniforms are slot-major so each slot's loop runs over contiguous memory);
 * nw words per element. */
static void make_masks(const float *p, const float *u, int n, int BL, int nw, uint64_t *m) {
    memset(m, 0, sizeof(uint64_t) * (size_t)n * nw);
    if (nw == 1) {
        for (int k = 0; k < BL; ++k) {
            const float *uk = u + (size_t)k * n;
            for (int j = 0; j < n; ++j)
                m[j] |= (uint64_t)(p[j] > uk[j]) << k;
        }
        return;
    }
    for (int k = 0; k < BL; ++k) {
        const float *uk = u + (size_t)k * n;
        const int w = k / 64, b = k % 64;
        for (int j = 0; j < n; ++j)
            m[(size_t)j * nw + w] |= (uint64_t)(p[j] > uk[j]) << b;
    }
}

/* The vector's cycle-to-cycle normals, drawn ahead in large fills (never past the
 * vector's total): buf[pos .. have) are the next unused normals, the following ones start
 * at block `next`, `left` normals are still to be drawn. */
typedef struct {
    float *buf;
    size_t cap, pos, have, left;
    uint64_t next;
} normal_feed;

/* Makes n consecutive normals available at f->buf + f->pos (n <= what is left). */
static const float *feed_take(const rpu_tile *t, normal_feed *f, size_t n) {
    if (f->have - f->pos < n) {
        size_t keep = f->have - f->pos;
        memmove(f->buf, f->buf + f->pos, keep * sizeof(float));
        size_t want = n - keep;
        size_t get = want < 65536 ? 65536 : want;
        if (get > f->left) get = f->left;
        if (get > f->cap - keep) get = f->cap - keep;
        get = (get + 3) & ~(size_t)3; /* whole blocks (cap is a multiple of 4 plus slack) */
        rpu_rng_normal_at(&t->ustream, f->next, f->buf + keep, get);
        f->next += get / 4;
        f->left = f->left > get ? f->left - get : 0;
        f->pos = 0;
        f->have = keep + get;
    }
    const float *p = f->buf + f->pos;
    f->pos += n;
    return p;
}

/* Applies the counts of every row (count/sign [R, C], row totals S[R]) through the device
 * row kernel, drawing the cycle-to-cycle normals (one sequence, row by row) and the write
 * noise. */
static void apply_rows(rpu_tile *t, const engine_ws *e, const rpu_update_layout *L, uint64_t vbase,
                       long total) {
    const int R = t->p.out_size, C = t->p.in_size;
    const int npp = rpu_device_normals_per_pulse(&t->dev);
    normal_feed feed = {.buf = e->xi,
                        .cap = e->xi_cap,
                        .pos = 0,
                        .have = 0,
                        .left = (size_t)total * (size_t)npp,
                        .next = vbase + L->c2c};
    for (int i = 0; i < R; ++i) {
        const long S = e->rowS[i];
        if (S == 0) continue;
        const float *xi = npp > 0 ? feed_take(t, &feed, (size_t)S * (size_t)npp) : NULL;
        if (t->dev.persistent_weights)
            rpu_rng_normal_at(&t->ustream, vbase + L->write + (uint64_t)i * L->row_write, e->wn,
                              (size_t)C);
        rpu_device_pulse_row(&t->dev, i, t->w + (size_t)i * C, e->count + (size_t)i * C,
                             e->sign + (size_t)i * C, xi, t->dev.persistent_weights ? e->wn : NULL);
    }
}

/* Row total of the counts just written for row i. */
static long row_total(const uint8_t *cnt, int C) {
    int S = 0;
    for (int j = 0; j < C; ++j)
        S += cnt[j];
    return S;
}

/* One update vector through the pulsed engine: counts of every cell first, then one
 * pass of the device kernels. */
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
    const rpu_pulse_type pt = up->pulse_type;
    long total = 0;
    if (pt == RPU_PULSE_STOCHASTIC_COMPRESSED || pt == RPU_PULSE_STOCHASTIC) {
        const int nw = (BL + 63) / 64;
        /* one fill: the x trains (slot-major), then the d trains */
        rpu_rng_uniform_at(&t->ustream, vbase + L.x_pulses, e->ux, (size_t)(C + R) * BL);
        make_masks(e->px, e->ux, C, BL, nw, e->mx);
        make_masks(e->pd, e->ux + (size_t)C * BL, R, BL, nw, e->md);
        for (int i = 0; i < R; ++i) {
            const uint64_t *mdi = e->md + (size_t)i * nw;
            uint8_t *cnt = e->count + (size_t)i * C;
            int8_t *sg = e->sign + (size_t)i * C;
            uint64_t any = 0;
            for (int w = 0; w < nw; ++w)
                any |= mdi[w];
            if (!any) {
                e->rowS[i] = 0;
                continue;
            }
            const int8_t si = e->sd[i];
            /* simple separate loops: each vectorises */
            if (nw == 1) {
                const uint64_t m = mdi[0];
                for (int j = 0; j < C; ++j)
                    cnt[j] = (uint8_t)__builtin_popcountll(m & e->mx[j]);
            } else {
                for (int j = 0; j < C; ++j) {
                    int c = 0;
                    for (int w = 0; w < nw; ++w)
                        c += __builtin_popcountll(mdi[w] & e->mx[(size_t)j * nw + w]);
                    cnt[j] = (uint8_t)c;
                }
            }
            for (int j = 0; j < C; ++j)
                sg[j] = (int8_t)(si * e->sx[j]);
            total += e->rowS[i] = row_total(cnt, C);
        }
    } else if (pt == RPU_PULSE_MEAN_COUNT || pt == RPU_PULSE_DETERMINISTIC_IMPLICIT) {
        /* signed per-element factors: n_x(j) (mean_count) or p_x(j) (implicit) */
        const bool mean = pt == RPU_PULSE_MEAN_COUNT;
        for (int j = 0; j < C; ++j) {
            float v;
            if (mean) {
                v = rintf((float)BL * e->px[j]);
                v = v < 0 ? 0 : (v > (float)BL ? (float)BL : v);
            } else {
                v = discretize(B * fabsf(x[j]), up->x_res_implicit, false, 0);
                v = v < 0 ? 0 : (v > 1 ? 1 : v);
            }
            e->fx[j] = (float)e->sx[j] * v;
        }
        for (int i = 0; i < R; ++i) {
            float v;
            if (mean) {
                v = rintf((float)BL * e->pd[i]);
                v = v < 0 ? 0 : (v > (float)BL ? (float)BL : v);
                e->fd[i] = (float)e->sd[i] * v / (float)BL; /* c_ij = rint(n_d/BL · n_x) */
            } else {
                v = discretize(A * fabsf(d[i]), up->d_res_implicit, false, 0);
                v = v < 0 ? 0 : (v > 1 ? 1 : v);
                e->fd[i] = (float)BL * ((float)e->sd[i] * v); /* c_ij = rint(BL p_d p_x) */
            }
        }
        for (int i = 0; i < R; ++i) {
            uint8_t *cnt = e->count + (size_t)i * C;
            int8_t *sg = e->sign + (size_t)i * C;
            const float f = e->fd[i];
            if (f == 0) {
                e->rowS[i] = 0;
                continue;
            }
            for (int j = 0; j < C; ++j) {
                float c = rintf(f * e->fx[j]);
                cnt[j] = (uint8_t)fabsf(c);
                sg[j] = sgn(c);
            }
            total += e->rowS[i] = row_total(cnt, C);
        }
    } else {
        return RPU_FAIL(RPU_ERR_INTERNAL, "pulsed engine called with pulse type %d", (int)pt);
    }
    if (total > 0) apply_rows(t, e, &L, vbase, total);
    return RPU_OK;
}

bool rpu_tile_update_row_splittable(const rpu_tile *t) {
    return t && (!t->dev.pulsed || t->cfg.update.pulse_type == RPU_PULSE_NONE);
}

rpu_status rpu_tile_update_impl(rpu_tile *t, const float *x, const float *d, int n, float lr,
                                int r0, int r1) {
    const int R = t->p.out_size, C = t->p.in_size;
    if (r0 < 0 || r1 > R || r0 > r1 || (r0 % RPU_UPDATE_ROW_BLOCK && r0 != R) ||
        (r1 % RPU_UPDATE_ROW_BLOCK && r1 != R))
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_tile_update_rows: rows [%d, %d) of %d not in blocks of %d", r0, r1, R,
                        RPU_UPDATE_ROW_BLOCK);
    if ((r0 != 0 || r1 != R) && !rpu_tile_update_row_splittable(t))
        return RPU_FAIL(RPU_ERR_UNSUPPORTED,
                        "rpu_tile_update_rows: the pulsed update cannot be split by rows yet");
    const rpu_update_params *up = &t->cfg.update;
    if (!(lr >= 0) || !isfinite(lr))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update: learning rate %g must be >= 0", (double)lr);
    if (n == 0 || lr == 0) return RPU_OK;

    /* logical SGD through the mapping scales (spec §7): d / (scales · lr_scale), lr · lr_scale */
    float lr_scale = 1.0f;
    if (t->cfg.mapping.weight_scaling_lr_compensation) {
        double mean = 0;
        for (int i = 0; i < R; ++i)
            mean += t->scales[i];
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
        /* exact W -= lr Dᵀ X, no bounds, in GEMMs of RPU_UPDATE_ROW_BLOCK rows: a row's result
         * is then the same whichever rows a call updates (holders split by these blocks) */
        for (int i0 = r0; i0 < r1; i0 += RPU_UPDATE_ROW_BLOCK) {
            const int rows = r1 - i0 < RPU_UPDATE_ROW_BLOCK ? r1 - i0 : RPU_UPDATE_ROW_BLOCK;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, C, n, -lr_t, du + i0, R, x,
                        C, 1.0f, t->w + (size_t)i0 * C, C);
        }
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
            rpu_device_apply_bounds(&t->dev, t->w, &t->ustream,
                                    base + (uint64_t)k * L.total + L.write);
        }
        t->abs_w_valid = 0;
        return RPU_OK;
    }
    engine_ws e = {0};
    RPU_CHECK(engine_workspace(t, &e));
    for (int k = 0; k < n; ++k)
        RPU_CHECK(pulsed_vector(t, &e, x + (size_t)k * C, du + (size_t)k * R, lr_t,
                                base + (uint64_t)k * L.total));
    t->abs_w_valid = 0;
    return RPU_OK;
}

rpu_status rpu_tile_weight_grad(const rpu_tile *t, const float *x, const float *d, int n,
                                rpu_weight_units units, float *grad) {
    if (!t || !grad || (n > 0 && (!x || !d)))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_weight_grad: NULL argument");
    if (n < 0) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_weight_grad: batch size %d < 0", n);
    if (units != RPU_WEIGHTS_STORED && units != RPU_WEIGHTS_SCALED)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_weight_grad: unknown weight units %d", (int)units);
    const int R = t->p.out_size, C = t->p.in_size;
    const size_t cells = (size_t)R * C;
    double *acc = (double *)calloc(cells, sizeof(double));
    if (!acc)
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the weight gradient of a %dx%d tile", R,
                        C);
    for (int k = 0; k < n; ++k) {
        const float *xk = x + (size_t)k * C, *dk = d + (size_t)k * R;
        for (int i = 0; i < R; ++i) {
            /* d / scales rounded to float, as the update (with lr_scale 1) rounds it */
            const float di = units == RPU_WEIGHTS_STORED ? dk[i] / t->scales[i] : dk[i];
            const double dd = di;
            double *row = acc + (size_t)i * C;
            for (int j = 0; j < C; ++j)
                row[j] += dd * (double)xk[j]; /* exact: 24 + 24 bits < 53 */
        }
    }
    for (size_t q = 0; q < cells; ++q)
        grad[q] = (float)acc[q];
    free(acc);
    return RPU_OK;
}
