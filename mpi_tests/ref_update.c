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

/* One vector; w is the tile's weight matrix, pw the persistent weights (or NULL). */
static int ref_vector(rpu_tile *t, const float *x, const float *d, float lr, uint64_t vbase) {
    const rpu_update_params *up = &t->cfg.update;
    const rpu_device_state *dev = &t->dev;
    const int R = t->p.out_size, C = t->p.in_size;
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    const float g = dev->granularity;
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
    const int sto = up->sto_round && up->res > 0;
    float *rx = calloc((size_t)C + 4, sizeof(float)), *rd = calloc((size_t)R + 4, sizeof(float));
    if (sto) {
        rpu_rng_uniform_at(&t->ustream, vbase + L.x_round, rx, (size_t)C);
        rpu_rng_uniform_at(&t->ustream, vbase + L.d_round, rd, (size_t)R);
    }
    float *px = calloc((size_t)C, sizeof(float)), *pd = calloc((size_t)R, sizeof(float));
    for (int j = 0; j < C; ++j)
        px[j] = disc(B * fabsf(x[j]), up->res, sto, rx[j]);
    for (int i = 0; i < R; ++i)
        pd[i] = disc(A * fabsf(d[i]), up->res, sto, rd[i]);

    /* counts[i][j]: pulses of cell (i, j); their sign: sign(d_i) sign(x_j) or of c_ij */
    int *count = calloc((size_t)R * C, sizeof(int));
    int *sgn = calloc((size_t)R * C, sizeof(int));
    const rpu_pulse_type pt = up->pulse_type;
    float *ux = NULL, *ud = NULL;
    if (pt == RPU_PULSE_STOCHASTIC_COMPRESSED || pt == RPU_PULSE_STOCHASTIC) {
        /* x trains slot-major (slot k of column j at value k*C + j), d trains row-major
         * (slot k of row i at value i*BL + k), each in its own region */
        ux = calloc((size_t)C * BL, sizeof(float));
        ud = calloc((size_t)R * BL, sizeof(float));
        rpu_rng_uniform_at(&t->ustream, vbase + L.x_pulses, ux, (size_t)C * BL);
        rpu_rng_uniform_at(&t->ustream, vbase + L.d_pulses, ud, (size_t)R * BL);
        /* first pass: count the coincidences of every cell, slot by slot */
        for (int k = 0; k < BL; ++k)
            for (int i = 0; i < R; ++i) {
                if (!(pd[i] > 0 && pd[i] > ud[(size_t)i * BL + k])) continue;
                for (int j = 0; j < C; ++j)
                    if (px[j] > 0 && px[j] > ux[(size_t)k * C + j]) count[(size_t)i * C + j]++;
            }
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < C; ++j)
                sgn[(size_t)i * C + j] = sign_of(d[i]) * sign_of(x[j]);
    } else if (pt == RPU_PULSE_MEAN_COUNT || pt == RPU_PULSE_DETERMINISTIC_IMPLICIT) {
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < C; ++j) {
                float c;
                if (pt == RPU_PULSE_MEAN_COUNT) {
                    float nx =
                        fminf(fmaxf(rintf((float)BL * px[j]), 0), (float)BL) * (float)sign_of(x[j]);
                    float nd =
                        fminf(fmaxf(rintf((float)BL * pd[i]), 0), (float)BL) * (float)sign_of(d[i]);
                    c = rintf(nd / (float)BL * nx);
                } else {
                    float qx = fminf(fmaxf(disc(B * fabsf(x[j]), up->x_res_implicit, 0, 0), 0), 1);
                    float qd = fminf(fmaxf(disc(A * fabsf(d[i]), up->d_res_implicit, 0, 0), 0), 1);
                    c = rintf((float)BL * ((float)sign_of(d[i]) * qd) *
                              ((float)sign_of(x[j]) * qx));
                }
                count[(size_t)i * C + j] = (int)fabsf(c);
                sgn[(size_t)i * C + j] = sign_of(c);
            }
    } else {
        free(rx), free(rd), free(px), free(pd), free(count), free(sgn);
        return 1;
    }
    float *target = dev->persistent_weights ? dev->persistent_weights : t->w;
    /* passes of every cell: with merged pulses (default, constant_step) a cell whose
     * pulses cannot reach a bound (judged on its weight before this vector) takes them as
     * one step, pass 1; otherwise one pass per pulse */
    const int merge = !t->update_per_pulse && rpu_device_merges_pulses(dev);
    int *passes = calloc((size_t)R * C, sizeof(int));
    for (size_t c = 0; c < (size_t)R * C; ++c) {
        passes[c] = count[c];
        if (merge && rpu_device_merge_ok(dev, c, target[c], sgn[c], count[c])) passes[c] = 1;
    }
    /* cycle-to-cycle normals: row i's sequence starts at block c2c + i*row_c2c and is
     * numbered pass by pass (first pass of every cell of the row in column order, then
     * the second passes, ...) */
    const int npp = rpu_device_normals_per_pulse(dev);
    int *used = calloc((size_t)R * C, sizeof(int));
    size_t *index = calloc((size_t)R * C * (BL + 1), sizeof(size_t)); /* [cell][pass] */
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
    /* second pass: apply, slot by slot, d order, x order (count-based types: their counts
     * slot by slot, i.e. pulse number k of every cell in slot k); a merged cell takes all
     * its pulses at its first */
    for (int k = 0; k < BL; ++k)
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < C; ++j) {
                size_t c = (size_t)i * C + j;
                int fires;
                if (ux)
                    fires = pd[i] > 0 && pd[i] > ud[(size_t)i * BL + k] && px[j] > 0 &&
                            px[j] > ux[(size_t)k * C + j];
                else
                    fires = k < count[c];
                if (!fires || sgn[c] == 0 || used[c] >= passes[c]) continue;
                const float *xi = npp ? row_normals[i] + index[c * (BL + 1) + used[c]] : NULL;
                if (passes[c] == 1 && count[c] > 1)
                    rpu_device_pulses_merged(dev, c, &target[c], sgn[c], count[c], xi);
                else
                    rpu_device_pulses(dev, c, &target[c], sgn[c], 1, xi);
                used[c]++;
            }
    if (dev->persistent_weights) {
        float *wn = calloc((size_t)C + 4, sizeof(float));
        for (int i = 0; i < R; ++i) {
            int any = 0;
            for (int j = 0; j < C; ++j)
                any |= count[(size_t)i * C + j] > 0 && sgn[(size_t)i * C + j] != 0;
            if (!any) continue;
            rpu_rng_normal_at(&t->ustream, vbase + L.write + (uint64_t)i * L.row_write, wn,
                              (size_t)C);
            for (int j = 0; j < C; ++j) {
                size_t c = (size_t)i * C + j;
                if (count[c] > 0)
                    t->w[c] = dev->persistent_weights[c] +
                              dev->par.write_noise_std * dev->par.dw_min * wn[j];
            }
        }
        free(wn);
    }
    for (int i = 0; i < R; ++i)
        free(row_normals[i]);
    free(row_normals), free(index), free(used), free(passes), free(ux), free(ud);
    free(rx), free(rd), free(px), free(pd), free(count), free(sgn);
    return 0;
}

int ref_update(rpu_tile *t, const float *x, const float *d, int n, float lr) {
    const int R = t->p.out_size, C = t->p.in_size;
    if (lr <= 0 || n == 0) return 0;
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
    int rc = 0;
    for (int k = 0; k < n && rc == 0; ++k) {
        for (int i = 0; i < R; ++i)
            du[i] = d[(size_t)k * R + i] / (t->scales[i] * lr_scale);
        rc = ref_vector(t, x + (size_t)k * C, du, lr * lr_scale, base + (uint64_t)k * L.total);
    }
    free(du);
    return rc;
}
