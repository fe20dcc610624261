#include "ref_compound.h"

#include "ref_update.h"
#include "tile_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Target q of a vector: which cells of the vector's pulses it takes and with which sign
 * (mode 0: all as they are; +1: sign > 0 as up; -1: sign < 0 as up). */
static int routed(int mode, int sgn, int *out_sign) {
    if (mode == 0) {
        *out_sign = sgn;
        return sgn != 0;
    }
    *out_sign = -1; /* up */
    return mode > 0 ? sgn > 0 : sgn < 0;
}

/* One vector's pulses applied to device dev with weights w, slot by slot, c2c normals of
 * row i from block qbase + L.c2c + i*L.row_c2c numbered pass by pass (pulse p of every cell
 * of the row with more than p pulses, in column order), then the write noise. */
static void apply(const rpu_device_state *dev, float *w, const ref_vec *v, int mode,
                  const int *sigma, int R, int C, const rpu_rng *rng, uint64_t qbase) {
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    const size_t cells = (size_t)R * C;
    const int BL = v->BL;
    int *cnt = calloc(cells, sizeof(int)), *sg = calloc(cells, sizeof(int));
    for (size_t c = 0; c < cells; ++c) {
        int s;
        if (v->count[c] > 0 && routed(mode, v->sgn[c], &s)) {
            cnt[c] = v->count[c];
            sg[c] = sigma ? s * sigma[c] : s; /* chopped: the cell's chopper sign */
        }
    }
    const int npp = rpu_device_normals_per_pulse(dev);
    float *target = dev->persistent_weights ? dev->persistent_weights : w;
    size_t *index = calloc(cells * (size_t)(BL + 1), sizeof(size_t));
    float **normals = calloc((size_t)R, sizeof(float *));
    for (int i = 0; i < R; ++i) {
        size_t s = 0;
        for (int p = 0; p < BL; ++p)
            for (int j = 0; j < C; ++j)
                if (cnt[(size_t)i * C + j] > p) index[((size_t)i * C + j) * (BL + 1) + p] = s++;
        normals[i] = calloc(s * (size_t)(npp > 0 ? npp : 1) + 4, sizeof(float));
        if (s > 0 && npp > 0)
            rpu_rng_normal_at(rng, qbase + L.c2c + (uint64_t)i * L.row_c2c, normals[i],
                              s * (size_t)npp);
    }
    int *used = calloc(cells, sizeof(int));
    for (int k = 0; k < BL; ++k)
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < C; ++j) {
                const size_t c = (size_t)i * C + j;
                int fires;
                if (v->ux)
                    fires = v->pd[i] > 0 && v->pd[i] > v->ud[(size_t)i * BL + k] && v->px[j] > 0 &&
                            v->px[j] > v->ux[(size_t)k * C + j];
                else
                    fires = k < v->count[c];
                if (!fires || cnt[c] == 0 || used[c] >= cnt[c]) continue;
                const float *xi =
                    npp ? normals[i] + index[c * (BL + 1) + used[c]] * (size_t)npp : NULL;
                rpu_device_pulses(dev, c, &target[c], sg[c], 1, xi);
                used[c]++;
            }
    if (dev->persistent_weights) {
        float *wn = calloc((size_t)C + 4, sizeof(float));
        for (int i = 0; i < R; ++i) {
            int any = 0;
            for (int j = 0; j < C; ++j)
                any |= cnt[(size_t)i * C + j] > 0;
            if (!any) continue;
            rpu_rng_normal_at(rng, qbase + L.write + (uint64_t)i * L.row_write, wn, (size_t)C);
            for (int j = 0; j < C; ++j) {
                const size_t c = (size_t)i * C + j;
                if (cnt[c] > 0)
                    w[c] = dev->persistent_weights[c] +
                           dev->par.write_noise_std * dev->par.dw_min * wn[j];
            }
        }
        free(wn);
    }
    for (int i = 0; i < R; ++i)
        free(normals[i]);
    free(normals), free(index), free(used), free(cnt), free(sg);
}

int ref_compound_update(rpu_tile *t, const float *x, const float *d, int n, float lr) {
    rpu_compound *c = t->cmp;
    if (!c || t->cfg.mapping.weight_scaling_lr_compensation) return 1;
    if (lr <= 0 || n == 0) return 0;
    const rpu_compound_params *cp = &t->cfg.compound;
    const int R = t->p.out_size, C = t->p.in_size;
    /* no events in this call */
    if (rpu_device_type_is_transfer(c->type)) {
        for (int k = 0; k < c->n; ++k)
            if (c->te[k] > 0) return 1;
        if (c->te_auto > 0) return 1;
    }
    const bool chopped =
        c->type == RPU_DEVICE_CHOPPED_TRANSFER || c->type == RPU_DEVICE_DYNAMIC_TRANSFER;
    if (c->type == RPU_DEVICE_ONE_SIDED && cp->refresh_every > 0) return 1;
    t->ucalls++;
    /* targets (sub-device, routing) and the pulse-count learning rate */
    int ntg = c->n, mode[RPU_MAX_UNIT_CELL_DEVICES] = {0};
    float lr_p = lr;
    if (c->type == RPU_DEVICE_ONE_SIDED) {
        mode[0] = 1;  /* g-: the decreasing coincidences */
        mode[1] = -1; /* g+: the increasing ones */
    } else if (rpu_device_type_is_transfer(c->type)) {
        ntg = 1;
        if (cp->fast_lr > 0) lr_p = cp->scale_fast_lr ? cp->fast_lr * lr : cp->fast_lr;
    }
    /* chopped: sigma_ij = -1 where the row's and the column's choppers differ (compound spec
     * §7.2: columns mode pairs out_chopper[i] with in_chopper[j], rows mode in with out) */
    int *sigma = NULL;
    if (chopped) {
        sigma = malloc(sizeof(int) * (size_t)R * C);
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < C; ++j) {
                const uint64_t a = cp->transfer_columns ? c->out_chopper[i] : c->in_chopper[i];
                const uint64_t b = cp->transfer_columns ? c->in_chopper[j] : c->out_chopper[j];
                sigma[(size_t)i * C + j] = a == b ? 1 : -1;
            }
    }
    const rpu_update_policy policy =
        (c->type == RPU_DEVICE_VECTOR || c->type == RPU_DEVICE_REFERENCE) ? cp->update_policy
                                                                          : RPU_POLICY_ALL;
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    const uint64_t stride = (uint64_t)ntg * L.total, base = t->unext;
    t->unext += (uint64_t)n * stride;
    float *du = malloc(sizeof(float) * (size_t)R);
    int rc = 0;
    for (int v = 0; v < n && rc == 0; ++v) {
        int only = -1; /* the single device of this vector, -1: all targets */
        if (policy == RPU_POLICY_SINGLE_FIXED) {
            only = (int)c->current_device_idx;
        } else if (policy == RPU_POLICY_SINGLE_SEQUENTIAL) {
            c->current_device_idx = (c->current_device_idx + 1) % (uint64_t)c->n;
            only = (int)c->current_device_idx;
        } else if (policy == RPU_POLICY_SINGLE_RANDOM) {
            float u[4];
            rpu_rng_uniform_at(&c->cstream, c->cnext++, u, 4);
            only = (int)floorf(u[0] * (float)c->n);
            if (only >= c->n) only = c->n - 1;
            c->current_device_idx = (uint64_t)only;
        }
        for (int i = 0; i < R; ++i)
            du[i] = d[(size_t)v * R + i] / t->scales[i];
        if (chopped) { /* §7.4 pulse-count lr: running maxima, auto-scale */
            float mx = 0, md = 0;
            for (int j = 0; j < C; ++j)
                mx = fmaxf(mx, fabsf(x[(size_t)v * C + j]));
            for (int i = 0; i < R; ++i)
                md = fmaxf(md, fabsf(du[i]));
            if (cp->auto_scale) {
                float *m[2] = {&c->m_x, &c->m_d};
                const float val[2] = {mx, md};
                for (int q = 0; q < 2; ++q) {
                    if (*m[q] <= 0)
                        *m[q] = val[q];
                    else if (val[q] > 0)
                        *m[q] = (1 - (1 - cp->auto_momentum) / (float)n) * *m[q] +
                                (1 - cp->auto_momentum) / (float)n * val[q];
                }
            }
            if (cp->auto_scale && cp->fast_lr > 0) {
                lr_p = cp->fast_lr * (float)t->cfg.update.desired_bl * c->sub[0].granularity;
                if (c->m_x > 0 && c->m_d > 0) lr_p /= c->m_x * c->m_d;
                if (cp->scale_fast_lr) lr_p *= lr;
            }
            if (c->type == RPU_DEVICE_DYNAMIC_TRANSFER) lr_p *= c->count_lr_scale;
            c->lr_cur = lr_p;
        }
        ref_vec pv;
        const uint64_t vbase = base + (uint64_t)v * stride;
        rc = ref_vector_pulses(&t->cfg.update, c->granularity, &t->ustream, R, C, x + (size_t)v * C,
                               du, lr_p, vbase, &pv);
        if (rc == 0 && pv.BL > 0)
            for (int q = 0; q < ntg; ++q)
                if (only < 0 || only == q)
                    apply(&c->sub[q], c->hidden[q], &pv, mode[q], sigma, R, C, &t->ustream,
                          vbase + (uint64_t)q * L.total);
        ref_vec_free(&pv);
        c->current_update_idx++;
    }
    free(du);
    if (!c->fully_hidden && chopped && cp->dechop_visible_weight) { /* §7.7 post-1.1 */
        for (size_t q = 0; q < (size_t)R * C; ++q)
            t->w[q] =
                c->gamma[0] * (float)sigma[q] * c->hidden[0][q] + c->gamma[1] * c->hidden[1][q];
        free(sigma);
        return rc;
    }
    free(sigma);
    if (!c->fully_hidden)
        for (size_t q = 0; q < (size_t)R * C; ++q) {
            float s = 0;
            for (int k = 0; k < c->n; ++k)
                s += c->gamma[k] * c->hidden[k][q];
            t->w[q] = s;
        }
    return rc;
}
