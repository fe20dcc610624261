#include "ref_update.h"

#include "tile_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float amax(const float *v, int n) {
    float m = 0;
    for (int j = 0; j < n; ++j)
        if (fabsf(v[j]) > m) m = fabsf(v[j]);
    return m;
}

static float disc(float p, float res, int sto, float u) {
    if (res <= 0) return p;
    if (sto) return rintf(p / res + u - 0.5f) * res;
    return rintf(p / res) * res;
}

static int sign_of(float v) {
    return v > 0 ? 1 : (v < 0 ? -1 : 0);
}

/* spec §3.3 calculateBlAB */
static int calc_bl_ab(const rpu_update_params *up, float g, float lr, float *a) {
    if (up->fixed_bl || up->update_bl_management) {
        *a = sqrtf(lr / (g * (float)up->desired_bl));
        return up->desired_bl;
    }
    if (g * (float)up->desired_bl < lr) {
        *a = 1;
        int bl = (int)ceil((double)lr / (double)g);
        return bl < 1 ? 1 : bl;
    }
    *a = sqrtf(lr / (g * (float)up->desired_bl));
    return up->desired_bl;
}

void ref_vec_free(ref_vec *v) {
    free(v->px), free(v->pd), free(v->ux), free(v->ud), free(v->count), free(v->sgn);
    memset(v, 0, sizeof *v);
}

int ref_vector_pulses(const rpu_update_params *up, float g, const rpu_rng *rng, int R, int C,
                      const float *x, const float *d, float lr, uint64_t vbase, ref_vec *v) {
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    memset(v, 0, sizeof *v);
    float a, A, B;
    int BL = calc_bl_ab(up, g, lr, &a);
    A = B = a;
    if (up->update_bl_management || up->update_management) {
        float xm = amax(x, C), dm = amax(d, R);
        if (xm == 0 || dm == 0) return 0;
        float dv = up->um_grad_scale * dm;
        float k = lr * xm * dv / g;
        if (up->update_bl_management) {
            BL = (int)ceil((double)k);
            if (BL > up->desired_bl) BL = up->desired_bl;
            if (BL < 1) BL = 1;
            A = B = sqrtf(lr / (g * (float)BL));
        }
        if (k > (float)up->desired_bl) dv *= (float)up->desired_bl / k;
        A *= sqrtf(xm / dv);
        B *= sqrtf(dv / xm);
    }
    if (BL > RPU_UPDATE_MAX_BL) return 1;
    const rpu_pulse_type pt = up->pulse_type;
    if (pt != RPU_PULSE_STOCHASTIC_COMPRESSED && pt != RPU_PULSE_STOCHASTIC &&
        pt != RPU_PULSE_MEAN_COUNT && pt != RPU_PULSE_DETERMINISTIC_IMPLICIT)
        return 1;
    v->BL = BL;
    const int sto = up->sto_round && up->res > 0;
    float *rx = calloc((size_t)C + 4, sizeof(float)), *rd = calloc((size_t)R + 4, sizeof(float));
    if (sto) {
        rpu_rng_uniform_at(rng, vbase + L.x_round, rx, (size_t)C);
        rpu_rng_uniform_at(rng, vbase + L.d_round, rd, (size_t)R);
    }
    v->px = calloc((size_t)C, sizeof(float)), v->pd = calloc((size_t)R, sizeof(float));
    for (int j = 0; j < C; ++j)
        v->px[j] = disc(B * fabsf(x[j]), up->res, sto, rx[j]);
    for (int i = 0; i < R; ++i)
        v->pd[i] = disc(A * fabsf(d[i]), up->res, sto, rd[i]);
    free(rx), free(rd);
    v->count = calloc((size_t)R * C, sizeof(int));
    v->sgn = calloc((size_t)R * C, sizeof(int));
    if (pt == RPU_PULSE_STOCHASTIC_COMPRESSED || pt == RPU_PULSE_STOCHASTIC) {
        /* x trains slot-major (slot k of column j at value k*C + j), d trains row-major
         * (slot k of row i at value i*BL + k), each in its own region */
        v->ux = calloc((size_t)C * BL, sizeof(float));
        v->ud = calloc((size_t)R * BL, sizeof(float));
        rpu_rng_uniform_at(rng, vbase + L.x_pulses, v->ux, (size_t)C * BL);
        rpu_rng_uniform_at(rng, vbase + L.d_pulses, v->ud, (size_t)R * BL);
        for (int k = 0; k < BL; ++k)
            for (int i = 0; i < R; ++i) {
                if (!(v->pd[i] > 0 && v->pd[i] > v->ud[(size_t)i * BL + k])) continue;
                for (int j = 0; j < C; ++j)
                    if (v->px[j] > 0 && v->px[j] > v->ux[(size_t)k * C + j])
                        v->count[(size_t)i * C + j]++;
            }
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < C; ++j)
                v->sgn[(size_t)i * C + j] = sign_of(d[i]) * sign_of(x[j]);
        return 0;
    }
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) {
            float c;
            if (pt == RPU_PULSE_MEAN_COUNT) {
                float nx =
                    fminf(fmaxf(rintf((float)BL * v->px[j]), 0), (float)BL) * (float)sign_of(x[j]);
                float nd =
                    fminf(fmaxf(rintf((float)BL * v->pd[i]), 0), (float)BL) * (float)sign_of(d[i]);
                c = rintf(nd / (float)BL * nx);
            } else {
                float qx = fminf(fmaxf(disc(B * fabsf(x[j]), up->x_res_implicit, 0, 0), 0), 1);
                float qd = fminf(fmaxf(disc(A * fabsf(d[i]), up->d_res_implicit, 0, 0), 0), 1);
                c = rintf((float)BL * ((float)sign_of(d[i]) * qd) * ((float)sign_of(x[j]) * qx));
            }
            v->count[(size_t)i * C + j] = (int)fabsf(c);
            v->sgn[(size_t)i * C + j] = sign_of(c);
        }
    return 0;
}

/* Applies one vector's pulses (cells with count 0 untouched), slot by slot, d order, x
 * order; with merged pulses (default, constant_step) a cell whose pulses cannot reach a
 * bound (judged on its weight before this vector) takes them as one step, pass 1,
 * otherwise one pass per pulse. */
static void ref_apply(rpu_tile *t, const ref_vec *v, uint64_t vbase) {
    const rpu_device_state *dev = &t->dev;
    const int R = t->p.out_size, C = t->p.in_size, BL = v->BL;
    const size_t cells = (size_t)R * C;
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    float *target = dev->persistent_weights ? dev->persistent_weights : t->w;
    const int merge = !t->update_per_pulse && rpu_device_merges_pulses(dev);
    int *passes = calloc(cells, sizeof(int));
    for (size_t c = 0; c < cells; ++c) {
        passes[c] = v->count[c];
        if (merge && rpu_device_merge_ok(dev, c, target[c], v->sgn[c], v->count[c])) passes[c] = 1;
    }
    /* cycle-to-cycle normals: row i's sequence starts at block c2c + i*row_c2c and is
     * numbered pass by pass (first pass of every cell of the row in column order, then
     * the second passes, ...) */
    const int npp = rpu_device_normals_per_pulse(dev);
    int *used = calloc(cells, sizeof(int));
    size_t *index = calloc(cells * (BL + 1), sizeof(size_t)); /* [cell][pass] */
    float **row_normals = calloc((size_t)R, sizeof(float *));
    for (int i = 0; i < R; ++i) {
        size_t s = 0;
        for (int p = 0; p < BL; ++p)
            for (int j = 0; j < C; ++j)
                if (passes[(size_t)i * C + j] > p)
                    index[((size_t)i * C + j) * (BL + 1) + p] = s++ * npp;
        row_normals[i] = calloc(s * npp + 4, sizeof(float));
        if (s > 0 && npp > 0)
            rpu_rng_normal_at(&t->ustream, vbase + L.c2c + (uint64_t)i * L.row_c2c, row_normals[i],
                              s * npp);
    }
    /* slot by slot, d order, x order (count-based types: pulse number k of every cell in
     * slot k); a merged cell takes all its pulses at its first */
    for (int k = 0; k < BL; ++k)
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < C; ++j) {
                size_t c = (size_t)i * C + j;
                int fires;
                if (v->ux)
                    fires = v->pd[i] > 0 && v->pd[i] > v->ud[(size_t)i * BL + k] && v->px[j] > 0 &&
                            v->px[j] > v->ux[(size_t)k * C + j];
                else
                    fires = k < v->count[c];
                if (!fires || v->count[c] == 0 || v->sgn[c] == 0 || used[c] >= passes[c]) continue;
                const float *xi = npp ? row_normals[i] + index[c * (BL + 1) + used[c]] : NULL;
                if (passes[c] == 1 && v->count[c] > 1)
                    rpu_device_pulses_merged(dev, c, &target[c], v->sgn[c], v->count[c], xi);
                else
                    rpu_device_pulses(dev, c, &target[c], v->sgn[c], 1, xi);
                used[c]++;
            }
    if (dev->persistent_weights) {
        float *wn = calloc((size_t)C + 4, sizeof(float));
        for (int i = 0; i < R; ++i) {
            int any = 0;
            for (int j = 0; j < C; ++j)
                any |= v->count[(size_t)i * C + j] > 0 && v->sgn[(size_t)i * C + j] != 0;
            if (!any) continue;
            rpu_rng_normal_at(&t->ustream, vbase + L.write + (uint64_t)i * L.row_write, wn,
                              (size_t)C);
            for (int j = 0; j < C; ++j) {
                size_t c = (size_t)i * C + j;
                if (v->count[c] > 0)
                    t->w[c] = dev->persistent_weights[c] +
                              dev->par.write_noise_std * dev->par.dw_min * wn[j];
            }
        }
        free(wn);
    }
    for (int i = 0; i < R; ++i)
        free(row_normals[i]);
    free(row_normals), free(index), free(used), free(passes);
}

/* With merged pulses: the pulses a cell receives over a chunk of vectors (rpu_update_chunk)
 * merge into one step when no bound is reachable on the way (rpu_device_span_ok, judged on
 * the weight before the chunk); such a cell's counts are then zeroed in every vector of the
 * chunk. Normals: row i from block span + i*row_write of the chunk's first vector, one per
 * merged cell in column order. */
static void ref_span(rpu_tile *t, ref_vec *v, int kn, uint64_t chunk_base, const int *skip) {
    const rpu_device_state *dev = &t->dev;
    const int R = t->p.out_size, C = t->p.in_size;
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    float *target = dev->persistent_weights ? dev->persistent_weights : t->w;
    const int npp = rpu_device_normals_per_pulse(dev);
    float *xi = calloc((size_t)C + 4, sizeof(float));
    for (int i = 0; i < R; ++i) {
        int merged[4096], m = 0, nup[4096], ndn[4096];
        for (int j = 0; j < C && j < 4096; ++j) {
            const size_t c = (size_t)i * C + j;
            nup[j] = ndn[j] = 0;
            for (int k = 0; k < kn; ++k) {
                if (!v[k].count) continue;
                if (v[k].sgn[c] > 0)
                    ndn[j] += v[k].count[c]; /* sign > 0 steps down */
                else
                    nup[j] += v[k].count[c];
            }
            merged[j] = !(skip && skip[j]) && rpu_device_span_ok(dev, c, target[c], nup[j], ndn[j]);
            m += merged[j];
        }
        if (m == 0) continue;
        if (npp)
            rpu_rng_normal_at(&t->ustream, chunk_base + L.span + (uint64_t)i * L.row_write, xi,
                              (size_t)m);
        int q = 0;
        for (int j = 0; j < C; ++j) {
            if (!merged[j]) continue;
            const size_t c = (size_t)i * C + j;
            rpu_device_pulses_span(dev, c, &target[c], nup[j], ndn[j], npp ? xi + q : NULL);
            ++q;
            for (int k = 0; k < kn; ++k)
                if (v[k].count) v[k].count[c] = 0;
        }
    }
    free(xi);
}

int ref_update(rpu_tile *t, const float *x, const float *d, int n, float lr) {
    const int R = t->p.out_size, C = t->p.in_size;
    if (lr <= 0 || n == 0) return 0;
    if (C > 4096) return 1;
    float lr_scale = 1;
    if (t->cfg.mapping.weight_scaling_lr_compensation) {
        double mean = 0;
        for (int i = 0; i < R; ++i)
            mean += t->scales[i];
        mean /= R;
        if (mean > 0) lr_scale = (float)(1.0 / mean);
    }
    float *du = malloc(sizeof(float) * (size_t)R);
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    const uint64_t base = t->unext;
    t->unext += (uint64_t)n * L.total;
    t->ucalls++;
    const int merge = !t->update_per_pulse && rpu_device_merges_pulses(&t->dev);
    const int K = rpu_update_chunk(R, C);
    ref_vec *v = calloc((size_t)K, sizeof(ref_vec));
    int rc = 0;
    for (int k0 = 0; k0 < n && rc == 0; k0 += K) {
        const int kn = n - k0 < K ? n - k0 : K;
        for (int k = 0; k < kn && rc == 0; ++k) {
            for (int i = 0; i < R; ++i)
                du[i] = d[(size_t)(k0 + k) * R + i] / (t->scales[i] * lr_scale);
            rc = ref_vector_pulses(&t->cfg.update, t->dev.granularity, &t->ustream, R, C,
                                   x + (size_t)(k0 + k) * C, du, lr * lr_scale,
                                   base + (uint64_t)(k0 + k) * L.total, &v[k]);
        }
        if (rc == 0 && merge) ref_span(t, v, kn, base + (uint64_t)k0 * L.total, NULL);
        for (int k = 0; k < kn; ++k) {
            if (rc == 0 && v[k].BL > 0) ref_apply(t, &v[k], base + (uint64_t)(k0 + k) * L.total);
            ref_vec_free(&v[k]);
        }
    }
    free(v), free(du);
    return rc;
}

/* The read columns' pieces of one chunk (k0, kn vectors v[], events [e0, e1) of the call's
 * nev): see ref_update.h. */
static void ref_pieces(rpu_tile *t, ref_vec *v, int k0, int kn, uint64_t base, int ncol,
                       const int *cols, const int *vec, const int *col, int e0, int e1, float *val,
                       unsigned char *done) {
    const rpu_device_state *dev = &t->dev;
    const int R = t->p.out_size, C = t->p.in_size;
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    const int npp = rpu_device_normals_per_pulse(dev);
    /* the pieces, column by column: first and last vector (chunk-relative) */
    const size_t np = (size_t)(ncol + e1 - e0 + 1);
    int *pa = malloc(sizeof(int) * 3 * np);
    if (!pa) return;
    int *pb = pa + np, *pcol = pa + 2 * np;
    int P = 0;
    for (int q = 0; q < ncol; ++q) {
        int a = 0;
        for (int r = 0; r < kn; ++r) {
            int read = 0;
            for (int e = e0; e < e1; ++e)
                read |= vec[e] == k0 + r && col[e] == cols[q];
            if (!read) continue;
            pa[P] = a, pb[P] = r, pcol[P] = cols[q], ++P;
            a = r + 1;
        }
        if (a < kn) pa[P] = a, pb[P] = kn - 1, pcol[P] = cols[q], ++P;
    }
    if (P == 0 || kn < 2 || (P - 1) / C + 2 > kn) {
        free(pa);
        return; /* no room for their normals: every read column pulses vector by vector */
    }
    float *z = calloc((size_t)P + 4, sizeof(float));
    for (int i = 0; z && i < R; ++i) {
        for (int p = 0; npp && p < P; ++p) {
            float tmp[4];
            const uint64_t blk = base + (uint64_t)(k0 + 1 + p / C) * L.total + L.span +
                                 (uint64_t)i * L.row_write + (uint64_t)(p % C) / 4;
            rpu_rng_normal_at(&t->ustream, blk, tmp, 4);
            z[p] = tmp[(p % C) % 4];
        }
        int stopped = 0; /* the column's pieces stopped merging */
        for (int p = 0; p < P; ++p) {
            const int j = pcol[p];
            if (p > 0 && pcol[p - 1] != j) stopped = 0;
            if (stopped) continue;
            const size_t c = (size_t)i * C + j;
            int nu = 0, nd = 0;
            for (int k = pa[p]; k <= pb[p]; ++k) {
                if (!v[k].count || v[k].count[c] == 0) continue;
                if (v[k].sgn[c] > 0)
                    nd += v[k].count[c];
                else
                    nu += v[k].count[c];
            }
            if (nu + nd > 0) {
                if (!rpu_device_span_ok(dev, c, t->w[c], nu, nd)) {
                    stopped = 1;
                    continue;
                }
                rpu_device_pulses_span(dev, c, &t->w[c], nu, nd, npp ? z + p : NULL);
                for (int k = pa[p]; k <= pb[p]; ++k)
                    if (v[k].count) v[k].count[c] = 0;
            }
            for (int e = e0; e < e1; ++e) /* the reads at the piece's end */
                if (vec[e] == k0 + pb[p] && col[e] == j) {
                    val[(size_t)e * R + i] = t->w[c];
                    done[(size_t)e * R + i] = 1;
                }
        }
    }
    free(z), free(pa);
}

int ref_update_snap(rpu_tile *t, const rpu_update_params *up, float g, uint64_t base,
                    const float *x, const float *d, int n, const float *lrs, int nev,
                    const int *vec, const int *col, float *val) {
    const int R = t->p.out_size, C = t->p.in_size;
    if (C > 4096) return 1;
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    const int merge = !t->update_per_pulse && rpu_device_merges_pulses(&t->dev);
    const int K = rpu_update_chunk(R, C);
    int *cols = malloc(sizeof(int) * (size_t)(nev + 1)), ncol = 0; /* read columns, first seen */
    int *skip = calloc((size_t)C, sizeof(int));
    unsigned char *done = calloc((size_t)nev * (size_t)R + 1, 1);
    ref_vec *v = calloc((size_t)K, sizeof(ref_vec));
    if (!cols || !skip || !done || !v) {
        free(cols), free(skip), free(done), free(v);
        return 1;
    }
    for (int e = 0; e < nev; ++e)
        if (!skip[col[e]]) skip[col[e]] = 1, cols[ncol++] = col[e];
    int rc = 0;
    for (int k0 = 0; k0 < n && rc == 0; k0 += K) {
        const int kn = n - k0 < K ? n - k0 : K;
        int e0 = 0, e1;
        while (e0 < nev && vec[e0] < k0)
            ++e0;
        for (e1 = e0; e1 < nev && vec[e1] < k0 + kn; ++e1) {
        }
        for (int k = 0; k < kn && rc == 0; ++k)
            rc = ref_vector_pulses(up, g, &t->ustream, R, C, x + (size_t)(k0 + k) * C,
                                   d + (size_t)(k0 + k) * R, lrs[k0 + k],
                                   base + (uint64_t)(k0 + k) * L.total, &v[k]);
        if (rc == 0 && merge) {
            ref_span(t, v, kn, base + (uint64_t)k0 * L.total, skip);
            ref_pieces(t, v, k0, kn, base, ncol, cols, vec, col, e0, e1, val, done);
        }
        for (int k = 0; k < kn; ++k) {
            if (rc == 0 && v[k].BL > 0) ref_apply(t, &v[k], base + (uint64_t)(k0 + k) * L.total);
            for (int e = e0; e < e1; ++e)
                for (int i = 0; vec[e] == k0 + k && i < R; ++i)
                    if (!done[(size_t)e * R + i])
                        val[(size_t)e * R + i] = t->w[(size_t)i * C + col[e]];
            ref_vec_free(&v[k]);
        }
    }
    free(cols), free(skip), free(done), free(v);
    return rc;
}
