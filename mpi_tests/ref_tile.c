#include "ref_tile.h"

#include "tile_impl.h" /* random-number addresses only */

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *zalloc(int n) {
    return (float *)calloc((size_t)n, sizeof(float));
}

static const rpu_io_params *iop(const ref_tile *r, int dir) {
    return dir == 0 ? &r->cfg.forward : &r->cfg.backward;
}

int ref_tile_init(ref_tile *r, const rpu_config *cfg, int out, int in, uint64_t seed,
                  uint32_t layer, uint32_t tile) {
    memset(r, 0, sizeof *r);
    r->cfg = *cfg;
    r->out = out;
    r->in = in;
    r->w = zalloc(out * in);
    r->scales = zalloc(out);
    for (int i = 0; i < out; ++i)
        r->scales[i] = 1;
    rpu_rng g;
    rpu_rng_init(&g, seed, rpu_stream_id(layer, tile, RPU_PURPOSE_IO));
    for (int dir = 0; dir < 2; ++dir) {
        const rpu_io_params *io = iop(r, dir);
        int n = dir == 0 ? out : in;
        r->nlf[dir] = 1;
        if (io->is_perfect) continue;
        if (io->out_noise_std > 0) {
            r->out_noise_values[dir] = zalloc(n);
            for (int i = 0; i < n; ++i) {
                float xi = rpu_rng_normal(&g);
                r->out_noise_values[dir][i] = fabsf(io->out_noise * (1 + io->out_noise_std * xi));
            }
        }
        if (io->v_offset_std > 0 || io->r_series > 0) {
            r->v_offset[dir] = zalloc(n);
            for (int i = 0; i < n; ++i) {
                float v = io->v_offset_std * rpu_rng_normal(&g);
                r->v_offset[dir][i] = v > 0 ? v : 0;
            }
        }
        if (io->out_nonlinearity > 0 || io->r_series > 0) {
            r->nl[dir] = zalloc(n);
            float B = io->out_bound > 0 ? io->out_bound : 1;
            float sd = io->out_nonlinearity_std > 0 ? io->out_nonlinearity_std : 0;
            double sum = 0;
            for (int i = 0; i < n; ++i) {
                float xi = rpu_rng_normal(&g);
                r->nl[dir][i] = fabsf(io->out_nonlinearity / B * (1 + sd * xi));
                sum += r->nl[dir][i];
            }
            if (io->slope_calibration > 0) {
                float f = 1 + ((float)(sum / n) + io->r_series) * io->slope_calibration * B;
                r->nlf[dir] = f * f;
            }
        }
    }
    rpu_rng_init(&r->stream[0], seed, rpu_stream_id(layer, tile, RPU_PURPOSE_FORWARD));
    rpu_rng_init(&r->stream[1], seed, rpu_stream_id(layer, tile, RPU_PURPOSE_BACKWARD));
    return 0;
}

void ref_tile_free(ref_tile *r) {
    for (int d = 0; d < 2; ++d) {
        free(r->out_noise_values[d]);
        free(r->v_offset[d]);
        free(r->nl[d]);
    }
    free(r->w);
    free(r->scales);
    free(r->mask);
    memset(r, 0, sizeof *r);
}

/* W (dir 0) or W^T (dir 1) times v, each result a double sum in index order. */
static float mac1(const ref_tile *r, int dir, const float *M, const float *v, int i) {
    double acc = 0;
    if (dir == 0)
        for (int j = 0; j < r->in; ++j)
            acc += (double)M[i * r->in + j] * (double)v[j];
    else
        for (int o = 0; o < r->out; ++o)
            acc += (double)M[o * r->in + i] * (double)v[o];
    return (float)acc;
}

static float res_norm(float res) {
    if (res < 0) return 0;
    if (res > 1) return 1 / res;
    return res;
}

static float amax(const float *x, int n) {
    float m = 0;
    for (int j = 0; j < n; ++j)
        if (fabsf(x[j]) > m) m = fabsf(x[j]);
    return m;
}

static float np_sum_scale(const rpu_io_params *io, float inp_res, const float *x, int n) {
    float a = amax(x, n);
    if (io->nm_thres > 0 && a > io->nm_thres) a = io->nm_thres;
    float pos = 0, neg = 0;
    for (int j = 0; j < n; ++j) {
        if (x[j] > 0)
            pos += x[j];
        else
            neg += x[j];
    }
    float S = pos > -neg ? pos : -neg;
    float s = S * io->nm_assumed_wmax / (io->out_bound > 0 ? io->out_bound : 1);
    if (inp_res > 0) {
        float c = a / inp_res * io->max_bm_res;
        if (c < s) s = c;
    }
    return a > s ? a : s;
}

/* One vector, one direction (spec §2.3 pseudo code). */
static void mvm(ref_tile *r, int dir, const float *x, float *y, uint64_t base, int64_t k) {
    const rpu_io_params *io = iop(r, dir);
    const int nin = dir == 0 ? r->in : r->out, nout = dir == 0 ? r->out : r->in;
    const int dim = r->in > r->out ? r->in : r->out;
    if (io->is_perfect) {
        for (int i = 0; i < nout; ++i)
            y[i] = io->out_scale * mac1(r, dir, r->w, x, i);
        return;
    }
    const float inp_res = io->inp_bound > 0 ? res_norm(io->inp_res) * 2 * io->inp_bound : 0;
    const float out_res = io->out_bound > 0 ? res_norm(io->out_res) * 2 * io->out_bound : 0;
    const float ibound = io->inp_bound > 0 ? io->inp_bound : INFINITY;
    const float obound = io->out_bound > 0 ? io->out_bound : INFINITY;
    const rpu_noise_management NM = io->noise_management;
    const rpu_bound_management BM = dir == 0 ? io->bound_management : RPU_BM_NONE;

    float nm = 1;
    switch (NM) {
    case RPU_NM_NONE:
        break;
    case RPU_NM_ABS_MAX:
        nm = amax(x, nin);
        if (io->nm_thres > 0 && nm > io->nm_thres) nm = io->nm_thres;
        break;
    case RPU_NM_MAX:
        nm = x[0];
        for (int j = 1; j < nin; ++j)
            if (x[j] > nm) nm = x[j];
        if (io->nm_thres > 0 && nm > io->nm_thres) nm = io->nm_thres;
        break;
    case RPU_NM_CONSTANT:
        nm = io->nm_thres > 0 ? io->nm_thres : 1;
        break;
    case RPU_NM_ABS_MAX_NP_SUM:
        nm = np_sum_scale(io, inp_res, x, nin);
        break;
    case RPU_NM_AVERAGE_ABS_MAX:
        if (!r->nm_aux_init) {
            r->nm_aux = amax(x, nin);
            r->nm_aux_init = 1;
        } else {
            r->nm_aux = r->nm_aux * (1 - io->nm_decay) + io->nm_decay * amax(x, nin);
        }
        nm = r->nm_aux;
        break;
    }
    if (NM != RPU_NM_NONE && nm <= 0 && io->inp_noise <= 0) {
        for (int i = 0; i < nout; ++i)
            y[i] = 0;
        return;
    }
    float *v = zalloc(nin), *g = zalloc(dim), *u = zalloc(dim), *tmp = zalloc(nin);
    float reduction = 0.5f;
    int round = 0;
    float scale = 1;
    bool passed;
    do {
        reduction *= 2;
        if (round == 1 && BM == RPU_BM_ITERATIVE_WORST_CASE && NM != RPU_NM_ABS_MAX_NP_SUM) {
            nm = np_sum_scale(io, inp_res, x, nin);
            reduction = 1;
        }
        const int pass = round;
        round += 1;
        scale = 1;
        if (NM != RPU_NM_NONE && nm > 0) scale /= nm;
        if (BM != RPU_BM_NONE) scale /= reduction;
        /* DAC */
        if (io->inp_sto_round && inp_res > 0)
            rpu_rng_uniform_at(
                &r->stream[dir],
                rpu_io_draw_block(base, dim, r->call_n[dir], k, pass, RPU_DRAW_INP_ROUND), u,
                (size_t)nin);
        if (io->inp_noise > 0)
            rpu_rng_normal_at(
                &r->stream[dir],
                rpu_io_draw_block(base, dim, r->call_n[dir], k, pass, RPU_DRAW_INP_NOISE), g,
                (size_t)nin);
        for (int j = 0; j < nin; ++j) {
            float vj = x[j] * scale;
            if (inp_res > 0) {
                if (io->inp_sto_round)
                    vj = rintf(vj / inp_res + u[j] - 0.5f) * inp_res;
                else
                    vj = rintf(vj / inp_res) * inp_res;
            }
            if (vj > ibound) vj = ibound;
            if (vj < -ibound) vj = -ibound;
            if (io->inp_noise > 0) vj += io->inp_noise * g[j];
            if (io->inp_asymmetry != 0 && vj < 0) vj *= 1 - io->inp_asymmetry;
            v[j] = vj;
        }
        /* analog MAC and non-idealities */
        for (int i = 0; i < nout; ++i)
            y[i] = mac1(r, dir, r->w, v, i);
        if (io->ir_drop > 0) {
            float *aw = zalloc(r->out * r->in);
            for (int q = 0; q < r->out * r->in; ++q)
                aw[q] = fabsf(r->w[q]);
            for (int j = 0; j < nin; ++j)
                tmp[j] = fabsf(v[j]);
            float *a = zalloc(nout), *yp = zalloc(nout);
            for (int i = 0; i < nout; ++i)
                a[i] = (float)nin / io->ir_drop_g_ratio * mac1(r, dir, aw, tmp, i);
            for (int j = 0; j < nin; ++j) {
                float f = 1 - (float)j / (float)nin;
                tmp[j] = v[j] * (1 - f * f);
            }
            for (int i = 0; i < nout; ++i)
                yp[i] = mac1(r, dir, r->w, tmp, i);
            for (int i = 0; i < nout; ++i) {
                float c = a[i] * (a[i] * (0.05f * a[i] - 0.2f) + 0.5f);
                y[i] -= c * io->ir_drop * yp[i];
            }
            free(aw);
            free(a);
            free(yp);
        }
        if (r->v_offset[dir]) {
            const float *vo = r->v_offset[dir];
            const float rs = io->r_series;
            float yref = 0;
            if (io->v_offset_w_min != 0) {
                float sum = 0;
                for (int j = 0; j < nin; ++j)
                    sum += v[j];
                yref = -io->v_offset_w_min * sum;
            }
            for (int i = 0; i < nout; ++i) {
                if (io->v_offset_w_min == 0)
                    y[i] =
                        rs > 0 ? (1 - vo[i]) * y[i] / (1 + rs * fabsf(y[i])) : (1 - vo[i]) * y[i];
                else if (rs > 0)
                    y[i] = (1 - vo[i]) * (y[i] + yref) / (1 + rs * fabsf(y[i] + yref)) -
                           (1 + vo[i]) * yref / (1 + rs * fabsf(yref));
                else
                    y[i] = (1 - vo[i]) * y[i] - 2 * vo[i] * yref;
            }
        }
        if (io->w_noise > 0 && io->w_noise_type != RPU_WNOISE_NONE) {
            rpu_rng_normal_at(
                &r->stream[dir],
                rpu_io_draw_block(base, dim, r->call_n[dir], k, pass, RPU_DRAW_W_NOISE), g,
                (size_t)nout);
            if (io->w_noise_type == RPU_WNOISE_ADDITIVE_CONSTANT) {
                float ss = 0;
                for (int j = 0; j < nin; ++j)
                    ss += v[j] * v[j];
                for (int i = 0; i < nout; ++i)
                    y[i] += io->w_noise * sqrtf(ss) * g[i];
            } else {
                float *aw = zalloc(r->out * r->in);
                for (int q = 0; q < r->out * r->in; ++q)
                    aw[q] = fabsf(r->w[q]);
                for (int j = 0; j < nin; ++j)
                    tmp[j] = v[j] * v[j];
                for (int i = 0; i < nout; ++i) {
                    float s2 = mac1(r, dir, aw, tmp, i);
                    y[i] += io->w_noise * sqrtf(s2 > 0 ? s2 : 0) * g[i];
                }
                free(aw);
            }
        }
        /* ADC */
        rpu_rng_normal_at(&r->stream[dir],
                          rpu_io_draw_block(base, dim, r->call_n[dir], k, pass, RPU_DRAW_OUT_NOISE),
                          g, (size_t)nout);
        if (io->out_sto_round && out_res > 0)
            rpu_rng_uniform_at(
                &r->stream[dir],
                rpu_io_draw_block(base, dim, r->call_n[dir], k, pass, RPU_DRAW_OUT_ROUND), u,
                (size_t)nout);
        passed = true;
        for (int i = 0; i < nout; ++i) {
            float yi = y[i];
            if (r->nl[dir]) yi = r->nlf[dir] * yi / (1 + fabsf(r->nl[dir][i] * yi));
            if (io->out_asymmetry != 0 && yi < 0) yi *= 1 - io->out_asymmetry;
            float sigma = r->out_noise_values[dir] ? r->out_noise_values[dir][i] : io->out_noise;
            yi += sigma * g[i];
            if (out_res > 0) {
                if (io->out_sto_round)
                    yi = rintf(yi / out_res + u[i] - 0.5f) * out_res;
                else
                    yi = rintf(yi / out_res) * out_res;
            }
            if (yi > obound) {
                yi = obound;
                passed = false;
            }
            if (yi < -obound) {
                yi = -obound;
                passed = passed && !io->bm_test_negative_bound;
            }
            y[i] = yi;
        }
        if (BM != RPU_BM_NONE)
            passed = passed || (int)reduction > io->max_bm_factor ||
                     (inp_res > 0 && reduction > io->max_bm_res / inp_res) ||
                     round >= RPU_IO_MAX_PASSES;
        else
            passed = true;
    } while (!passed);
    float nmv = (NM != RPU_NM_NONE && nm > 0) ? nm : 1;
    float f = io->out_scale * nmv * (BM != RPU_BM_NONE ? reduction : 1);
    for (int i = 0; i < nout; ++i)
        y[i] *= f;
    free(v);
    free(g);
    free(u);
    free(tmp);
}

static uint64_t take_range(ref_tile *r, int dir, int n) {
    uint64_t base = r->next_block[dir];
    if (!iop(r, dir)->is_perfect)
        r->next_block[dir] = base + rpu_io_call_blocks(r->in > r->out ? r->in : r->out, n);
    r->call_n[dir] = n;
    return base;
}

void ref_tile_forward(ref_tile *r, const float *x, int n, float *y, bool is_test) {
    uint64_t base = take_range(r, 0, n);
    free(r->mask);
    r->mask = (unsigned char *)calloc((size_t)n * r->out + 1, 1);
    r->mask_n = is_test ? 0 : n;
    const rpu_io_params *io = &r->cfg.forward;
    for (int k = 0; k < n; ++k) {
        float *yk = y + (size_t)k * r->out;
        mvm(r, 0, x + (size_t)k * r->in, yk, base, k);
        for (int i = 0; i < r->out; ++i) {
            if (r->cfg.kind != RPU_KIND_FLOATING_POINT && io->out_bound > 0 &&
                fabsf(yk[i]) >= 0.999f * io->out_scale * io->out_bound)
                r->mask[(size_t)k * r->out + i] = 1;
            yk[i] *= r->scales[i];
        }
    }
}

void ref_tile_backward(ref_tile *r, const float *d, int n, float *dx) {
    uint64_t base = take_range(r, 1, n);
    float *dd = zalloc(r->out);
    for (int k = 0; k < n; ++k) {
        for (int i = 0; i < r->out; ++i) {
            bool m = r->mask_n == n && r->mask[(size_t)k * r->out + i];
            dd[i] = m ? 0 : d[(size_t)k * r->out + i] * r->scales[i];
        }
        mvm(r, 1, dd, dx + (size_t)k * r->in, base, k);
    }
    free(dd);
}
