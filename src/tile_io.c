/* The forward/backward IO model of an analog tile (spec §2.3-§2.7), batched.
 *
 * A batch is processed pass by pass: pass 0 prepares every vector's DAC input, one GEMM
 * computes all analog products, the periphery (noise, ADC, bounds) runs over the batch;
 * vectors whose output saturated under bound management are compacted and redone with
 * halved input until they pass. The per-vector algorithm (kept as a plain reference in
 * mpi_tests/ref_tile.c) and this batched one draw every random number from the same
 * address (call, vector, pass, kind), so they agree bit for bit when the MAC does.
 *
 * Acts on the tile state of tile_impl.h; calls nothing above it (tile.c, inference.c,
 * program.c call it). */
#include "tile_impl.h"

#include "error_impl.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const float *abs_weights(rpu_tile *t) {
    size_t cells = (size_t)t->p.out_size * t->p.in_size;
    if (!t->abs_w) {
        t->abs_w = (float *)malloc(sizeof(float) * cells);
        if (!t->abs_w) return NULL;
        t->abs_w_valid = 0;
    }
    if (!t->abs_w_valid || t->abs_src != t->wsel) {
        for (size_t k = 0; k < cells; ++k)
            t->abs_w[k] = fabsf(t->wsel[k]);
        t->abs_w_valid = 1;
        t->abs_src = t->wsel;
    }
    return t->abs_w;
}

/* ---------------------------------------------------------------- construction values */

/* Resolution normalisation (spec §2.1): res <= 0: none; res > 1: number of steps. */
static float res_abs(float res, float bound) {
    float norm = res < 0 ? 0.0f : (res > 1 ? 1.0f / res : res);
    return norm * 2.0f * bound;
}

static float *alloc_floats(size_t n) {
    return (float *)calloc(n ? n : 1, sizeof(float));
}

rpu_status rpu_io_state_init(const rpu_io_params *io, rpu_io_state *st, int n, rpu_rng *g) {
    st->inp_bound = io->inp_bound > 0 ? io->inp_bound : INFINITY;
    st->out_bound = io->out_bound > 0 ? io->out_bound : INFINITY;
    st->inp_res_abs = io->inp_bound > 0 ? res_abs(io->inp_res, io->inp_bound) : 0.0f;
    st->out_res_abs = io->out_bound > 0 ? res_abs(io->out_res, io->out_bound) : 0.0f;
    st->nlf = 1.0f;
    if (io->is_perfect) return RPU_OK;
    if (io->out_noise_std > 0) {
        if (!(st->out_noise_values = alloc_floats((size_t)n))) goto nomem;
        for (int i = 0; i < n; ++i)
            st->out_noise_values[i] =
                fabsf(io->out_noise * (1.0f + io->out_noise_std * rpu_rng_normal(g)));
    }
    if (io->v_offset_std > 0 || io->r_series > 0) {
        if (!(st->v_offset = alloc_floats((size_t)n))) goto nomem;
        for (int i = 0; i < n; ++i)
            st->v_offset[i] = fmaxf(io->v_offset_std * rpu_rng_normal(g), 0);
    }
    if (io->out_nonlinearity > 0 || io->r_series > 0) {
        if (!(st->nl = alloc_floats((size_t)n))) goto nomem;
        float B = io->out_bound > 0 ? io->out_bound : 1.0f;
        float sd = fmaxf(io->out_nonlinearity_std, 0);
        double mean_abs = 0;
        for (int i = 0; i < n; ++i) {
            st->nl[i] = fabsf(io->out_nonlinearity / B * (1.0f + sd * rpu_rng_normal(g)));
            mean_abs += st->nl[i];
        }
        mean_abs /= n;
        if (io->slope_calibration > 0) {
            float f = 1.0f + ((float)mean_abs + io->r_series) * io->slope_calibration * B;
            st->nlf = f * f;
        }
    }
    return RPU_OK;
nomem:
    return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for IO state of %d outputs", n);
}

void rpu_io_state_free(rpu_io_state *st) {
    free(st->out_noise_values);
    free(st->v_offset);
    free(st->nl);
    st->out_noise_values = st->v_offset = st->nl = NULL;
}

/* ---------------------------------------------------------------- MAC */

/* out[k, :] = op(M) v[k, :] for k < n, where op(M) is M [NO, NI] (forward: v has NI values,
 * out has NO) or Mᵀ (backward: v has NO values, out has NI). */
static void mac(const rpu_tile *t, int dir, const float *M, const float *v, int n, float *out) {
    const int NO = t->p.out_size, NI = t->p.in_size;
    if (n <= 0) return;
    if (n == 1) {
        /* one vector with at most one non-zero a at j (a compound's transfer or refresh read
         * of one column or row): a times column (row) j of M. Every product of a sum
         * with one non-zero term is the rounded a * m_ij, so this is the GEMM's (and the
         * double-accumulating loop's) result; + 0.0f turns a product -0 into the sums' +0 */
        const int nout = dir == DIR_FWD ? NO : NI, nin = dir == DIR_FWD ? NI : NO;
        int nz = 0, j = -1;
        for (int q = 0; q < nin && nz < 2; ++q)
            if (v[q] != 0) ++nz, j = q;
        if (nz < 2) {
            const float a = nz ? v[j] : 0.0f;
            if (nz && dir == DIR_FWD && t->col_src && M == t->wsel && j == t->col_j) {
                for (int o = 0; o < nout; ++o)
                    out[o] = a * t->col_src[o] + 0.0f;
                return;
            }
            for (int o = 0; o < nout; ++o)
                out[o] =
                    nz ? a * (dir == DIR_FWD ? M[(size_t)o * NI + j] : M[(size_t)j * NI + o]) + 0.0f
                       : 0.0f;
            return;
        }
    }
    if (t->p.mac == RPU_MAC_BLAS) {
        /* in chunks of 512 vectors from v, whose outputs stay in cache between the zeroing
         * that a GEMM with beta = 0 starts with and the writing of the products; the chunks
         * start at v, and mac_blocked calls this per block of whole samples, so a vector's
         * result still depends only on its block */
        const int nout = dir == DIR_FWD ? NO : NI, nin = dir == DIR_FWD ? NI : NO;
        const int rows = 512;
        for (int k0 = 0; k0 < n; k0 += rows) {
            const int m = n - k0 < rows ? n - k0 : rows;
            const float *vb = v + (size_t)k0 * nin;
            float *ob = out + (size_t)k0 * nout;
            if (dir == DIR_FWD)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, NO, NI, 1.0f, vb, NI, M, NI,
                            0.0f, ob, NO);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, NI, NO, 1.0f, vb, NO, M,
                            NI, 0.0f, ob, NI);
        }
        return;
    }
    for (int k = 0; k < n; ++k) {
        if (dir == DIR_FWD) {
            const float *x = v + (size_t)k * NI;
            for (int i = 0; i < NO; ++i) {
                double acc = 0;
                const float *row = M + (size_t)i * NI;
                for (int j = 0; j < NI; ++j)
                    acc += (double)row[j] * (double)x[j];
                out[(size_t)k * NO + i] = (float)acc;
            }
        } else {
            const float *d = v + (size_t)k * NO;
            for (int j = 0; j < NI; ++j) {
                double acc = 0;
                for (int i = 0; i < NO; ++i)
                    acc += (double)M[(size_t)i * NI + j] * (double)d[i];
                out[(size_t)k * NI + j] = (float)acc;
            }
        }
    }
}

/* The MAC of m active vectors v[a] (absolute batch indices vec[a], ascending) in blocks:
 * vectors share one BLAS call only when they lie in the same block of `block` vectors of
 * the call (vec / block equal). A vector's result then depends only on its block's active
 * vectors, never on which range [k0, k1) of the call this pass computes: a tile whose
 * batch is split over ranks at block boundaries gives the same bits as the whole batch
 * (BLAS kernels are not invariant under splitting M). vec NULL: one call for all. */
static void mac_blocked(const rpu_tile *t, int dir, const float *M, const float *v, int m,
                        const int64_t *vec, int64_t block, float *out) {
    if (!vec || block <= 0) {
        mac(t, dir, M, v, m, out);
        return;
    }
    const size_t vin = (size_t)dir_in(t, dir), vout = (size_t)dir_out(t, dir);
    for (int a = 0; a < m;) {
        const int64_t blk = vec[a] / block;
        int e = a + 1;
        while (e < m && vec[e] / block == blk)
            ++e;
        mac(t, dir, M, v + (size_t)a * vin, e - a, out + (size_t)a * vout);
        a = e;
    }
}

/* ---------------------------------------------------------------- noise management */

/* Branch-free min/max that the compiler vectorises (no NaN semantics needed here). */
static inline float max2(float a, float b) {
    return a > b ? a : b;
}
static inline float min2(float a, float b) {
    return a < b ? a : b;
}
static inline float clampf(float v, float b) {
    return min2(max2(v, -b), b);
}

/* max |x_j|, with 16 independent lanes so the compiler vectorises the reduction. */
static float abs_max(const float *x, int n) {
    float lane[16] = {0};
    int j = 0;
    for (; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; ++l)
            lane[l] = max2(lane[l], fabsf(x[j + l]));
    float m = 0;
    for (; j < n; ++j)
        m = max2(m, fabsf(x[j]));
    for (int l = 0; l < 16; ++l)
        m = max2(m, lane[l]);
    return m;
}

static float thresholded(float v, float thres) {
    return thres > 0 ? fminf(v, thres) : v;
}

/* ABS_MAX_NP_SUM scale of one vector (spec §2.4). */
static float nm_np_sum(const rpu_io_params *io, const rpu_io_state *st, const float *x, int n) {
    float a = thresholded(abs_max(x, n), io->nm_thres);
    float pos = 0, neg = 0;
    for (int j = 0; j < n; ++j) {
        if (x[j] > 0)
            pos += x[j];
        else
            neg += x[j];
    }
    float S = fmaxf(pos, -neg);
    float B = io->out_bound > 0 ? io->out_bound : 1.0f;
    float s = S * io->nm_assumed_wmax / B;
    if (st->inp_res_abs > 0) s = fminf(a / st->inp_res_abs * io->max_bm_res, s);
    return fmaxf(a, s);
}

/* Noise-management value nm[k] of the vectors k in [k0, k1) of a call of n, in batch
 * order. average_abs_max is a running value updated vector by vector over the whole call,
 * so it runs over all n vectors (the tile's state after the call is the same whichever
 * range it computed). */
static void noise_management(rpu_tile *t, const rpu_io_channel *ch, int dir, const float *x, int n,
                             int k0, int k1, float *nm) {
    const rpu_io_params *io = ch->io;
    const int len = dir_in(t, dir);
    if (io->noise_management == RPU_NM_AVERAGE_ABS_MAX) k0 = 0, k1 = n;
    for (int k = k0; k < k1; ++k) {
        const float *v = x + (size_t)k * len;
        float s = 1.0f;
        switch (io->noise_management) {
        case RPU_NM_NONE:
            s = 1.0f;
            break;
        case RPU_NM_ABS_MAX:
            s = thresholded(abs_max(v, len), io->nm_thres);
            break;
        case RPU_NM_MAX: {
            float m = v[0];
            for (int j = 1; j < len; ++j)
                m = max2(m, v[j]);
            s = thresholded(m, io->nm_thres);
            break;
        }
        case RPU_NM_CONSTANT:
            s = io->nm_thres > 0 ? io->nm_thres : 1.0f;
            break;
        case RPU_NM_ABS_MAX_NP_SUM:
            s = nm_np_sum(io, ch->st, v, len);
            break;
        case RPU_NM_AVERAGE_ABS_MAX: {
            float m = abs_max(v, len);
            if (!t->nm_aux_init) {
                t->nm_aux = m;
                t->nm_aux_init = 1;
            } else {
                t->nm_aux = t->nm_aux * (1.0f - io->nm_decay) + io->nm_decay * m;
            }
            s = t->nm_aux;
            break;
        }
        }
        nm[k] = s;
    }
}

/* ---------------------------------------------------------------- one direction */

static inline float quantize(float v, float res, bool sto, float u) {
    if (res <= 0) return v;
    return sto ? rintf(v / res + u - 0.5f) * res : rintf(v / res) * res;
}

/* Workspace: carve float arrays out of one growing buffer. */
static float *workspace(rpu_tile *t, size_t n) {
    if (n > t->ws_cap) {
        float *p = (float *)realloc(t->ws, n * sizeof(float));
        if (!p) return NULL;
        t->ws = p;
        t->ws_cap = n;
    }
    return t->ws;
}

static int grow_index_workspace(rpu_tile *t, size_t n) {
    int64_t *p = (int64_t *)realloc(t->iws, n * sizeof(int64_t));
    if (!p) return 0;
    t->iws = p;
    t->iws_cap = n;
    return 1;
}

/* Inputs or outputs (floats) of the vectors an IO pass handles together at least (the
 * group of whole MAC blocks that io_pass_on carries from the DAC to the output). */
#define IO_GROUP_FLOATS 16384

/* Everything one batch pass needs. */
typedef struct {
    rpu_tile *t;
    const rpu_io_channel *ch; /* parameters, construction values and stream of the pass */
    int dir, nin, nout;
    int n_call;         /* vectors in this call (fixes the draw addresses) */
    int k0, k1;         /* the range of the call's vectors this pass computes */
    int64_t block;      /* MAC block (mac_blocked) */
    uint64_t base;      /* first block of this call's draws */
    int slot;           /* values per vector in a draw buffer (4 * blocks per vector) */
    const int64_t *vec; /* batch index of each active vector */
    int m;              /* active vectors */
    int round;          /* pass number */
} batch_ctx;

/* Draws `len` values of one kind for every active vector into out[a * slot ...] (vector
 * k's values at its own address, whatever else is active): one fill when the whole range
 * [k0, k1) is active and len fills the vectors' rooms (the addresses are consecutive), else
 * one batch of the needed blocks of the active vectors. */
static void draw_rows(const batch_ctx *b, int kind, int len, bool normal, float *out) {
    const rpu_rng *r = b->ch->rng;
    const int dim = addr_dim(b->t);
    const uint64_t first = rpu_io_draw_block(b->base, dim, b->n_call, 0, b->round, kind);
    const uint64_t per = rpu_rng_blocks_for((size_t)b->slot);
    if (b->m == b->k1 - b->k0 && rpu_rng_blocks_for((size_t)len) == per) {
        /* the whole range, whole rooms: consecutive addresses, one fill */
        const size_t total = (size_t)b->m * (size_t)b->slot;
        if (normal)
            rpu_rng_normal_at(r, first + (uint64_t)b->k0 * per, out, total);
        else
            rpu_rng_uniform_at(r, first + (uint64_t)b->k0 * per, out, total);
        return;
    }
    /* some vectors, or a part of each room (the outputs of a tile wider than tall): the
     * needed blocks of the active vectors, strided across them */
    rpu_rng_rows_at(r, first, per, b->vec, (size_t)b->m, (size_t)len, normal, out, (size_t)b->slot);
}

/* Analog non-idealities between the MAC and the ADC for the active vectors (spec §2.3,
 * §2.6): v [m, nin] prepared inputs, y [m, nout] raw products (modified in place).
 * Scratch: tmp_in [m, nin], tmp_out and tmp2 [m, nout], G [m, slot]. */
static rpu_status analog_extras(const batch_ctx *b, const float *v, float *y, float *tmp_in,
                                float *tmp_out, float *tmp2, float *G) {
    rpu_tile *t = b->t;
    const int dir = b->dir, m = b->m, nin = b->nin, nout = b->nout;
    const rpu_io_params *io = b->ch->io;
    const rpu_io_state *st = b->ch->st;
    if (io->ir_drop > 0) {
        const float *aw = abs_weights(t);
        if (!aw) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for |W|");
        /* a = (n/g_ratio) |W||v|; v' = v (1 - (1 - j/n)^2); y -= c(a) ir_drop W v' */
        for (size_t q = 0; q < (size_t)m * nin; ++q)
            tmp_in[q] = fabsf(v[q]);
        mac_blocked(t, dir, aw, tmp_in, m, b->vec, b->block, tmp_out);
        for (int k = 0; k < m; ++k)
            for (int j = 0; j < nin; ++j) {
                float f = 1.0f - (float)j / (float)nin;
                tmp_in[(size_t)k * nin + j] = v[(size_t)k * nin + j] * (1.0f - f * f);
            }
        mac_blocked(t, dir, t->wsel, tmp_in, m, b->vec, b->block, tmp2);
        const float sc = (float)nin / io->ir_drop_g_ratio;
        for (size_t q = 0; q < (size_t)m * nout; ++q) {
            float ai = sc * tmp_out[q];
            float c = ai * (ai * (0.05f * ai - 0.2f) + 0.5f);
            y[q] -= c * io->ir_drop * tmp2[q];
        }
    }
    if (st->v_offset) {
        const float *vo = st->v_offset;
        const float r = io->r_series;
        for (int k = 0; k < m; ++k) {
            float *yk = y + (size_t)k * nout;
            float yref = 0;
            if (io->v_offset_w_min != 0) {
                float sum = 0;
                for (int j = 0; j < nin; ++j)
                    sum += v[(size_t)k * nin + j];
                yref = -io->v_offset_w_min * sum;
            }
            for (int i = 0; i < nout; ++i) {
                if (io->v_offset_w_min == 0) {
                    yk[i] = r > 0 ? (1.0f - vo[i]) * yk[i] / (1.0f + r * fabsf(yk[i]))
                                  : (1.0f - vo[i]) * yk[i];
                } else if (r > 0) {
                    float s = yk[i] + yref;
                    yk[i] = (1.0f - vo[i]) * s / (1.0f + r * fabsf(s)) -
                            (1.0f + vo[i]) * yref / (1.0f + r * fabsf(yref));
                } else {
                    yk[i] = (1.0f - vo[i]) * yk[i] - 2.0f * vo[i] * yref;
                }
            }
        }
    }
    if (io->w_noise > 0 && io->w_noise_type != RPU_WNOISE_NONE) {
        float *amp = tmp_out;
        if (io->w_noise_type == RPU_WNOISE_PCM_READ) {
            const float *aw = abs_weights(t);
            if (!aw) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for |W|");
            for (size_t q = 0; q < (size_t)m * nin; ++q)
                tmp_in[q] = v[q] * v[q];
            mac_blocked(t, dir, aw, tmp_in, m, b->vec, b->block, amp);
            for (size_t q = 0; q < (size_t)m * nout; ++q)
                amp[q] = sqrtf(max2(amp[q], 0));
        } else {
            for (int k = 0; k < m; ++k) {
                float ss = 0;
                for (int j = 0; j < nin; ++j)
                    ss += v[(size_t)k * nin + j] * v[(size_t)k * nin + j];
                float nrm = sqrtf(ss);
                for (int i = 0; i < nout; ++i)
                    amp[(size_t)k * nout + i] = nrm;
            }
        }
        draw_rows(b, RPU_DRAW_W_NOISE, nout, true, G);
        for (int k = 0; k < m; ++k)
            for (int i = 0; i < nout; ++i)
                y[(size_t)k * nout + i] +=
                    io->w_noise * amp[(size_t)k * nout + i] * G[(size_t)k * b->slot + i];
    }
    return RPU_OK;
}

/* DAC of the active vectors: V[a] = prepare(x[vec[a]] * scale[a]) (spec §2.3). */
static void prepare_inputs(const batch_ctx *b, const float *x, const float *scale, float *V,
                           float *G, float *U) {
    const rpu_io_params *io = b->ch->io;
    const rpu_io_state *st = b->ch->st;
    const int nin = b->nin;
    const float res = st->inp_res_abs, bnd = st->inp_bound;
    const bool sto = io->inp_sto_round && res > 0;
    if (sto) draw_rows(b, RPU_DRAW_INP_ROUND, nin, false, U);
    if (io->inp_noise > 0) draw_rows(b, RPU_DRAW_INP_NOISE, nin, true, G);
    for (int a = 0; a < b->m; ++a) {
        const float *xk = x + (size_t)b->vec[a] * nin;
        float *va = V + (size_t)a * nin;
        const float s = scale[a];
        if (sto) {
            const float *u = U + (size_t)a * b->slot;
            for (int j = 0; j < nin; ++j)
                va[j] = clampf(quantize(xk[j] * s, res, true, u[j]), bnd);
        } else if (res > 0) {
            for (int j = 0; j < nin; ++j)
                va[j] = clampf(rintf(xk[j] * s / res) * res, bnd);
        } else {
            for (int j = 0; j < nin; ++j)
                va[j] = clampf(xk[j] * s, bnd);
        }
        if (io->inp_noise > 0) {
            const float *g = G + (size_t)a * b->slot;
            for (int j = 0; j < nin; ++j)
                va[j] += io->inp_noise * g[j];
        }
        if (io->inp_asymmetry != 0)
            for (int j = 0; j < nin; ++j)
                if (va[j] < 0) va[j] *= (1.0f - io->inp_asymmetry);
    }
}

/* ADC of the active vectors (non-linearity, asymmetry, output noise, quantization,
 * bounds). passed[a] tells whether vector a's output stayed within the bound test. */
static void finalize_outputs(const batch_ctx *b, float *Y, float *G, float *U,
                             unsigned char *saturated) {
    const rpu_io_params *io = b->ch->io;
    const rpu_io_state *st = b->ch->st;
    const int nout = b->nout;
    const float ob = st->out_bound, res = st->out_res_abs;
    const bool sto = io->out_sto_round && res > 0;
    draw_rows(b, RPU_DRAW_OUT_NOISE, nout, true, G);
    if (sto) draw_rows(b, RPU_DRAW_OUT_ROUND, nout, false, U);
    for (int a = 0; a < b->m; ++a) {
        float *ya = Y + (size_t)a * nout;
        const float *g = G + (size_t)a * b->slot;
        if (st->nl)
            for (int i = 0; i < nout; ++i)
                ya[i] = st->nlf * ya[i] / (1.0f + fabsf(st->nl[i] * ya[i]));
        if (io->out_asymmetry != 0)
            for (int i = 0; i < nout; ++i)
                if (ya[i] < 0) ya[i] *= (1.0f - io->out_asymmetry);
        if (st->out_noise_values)
            for (int i = 0; i < nout; ++i)
                ya[i] += st->out_noise_values[i] * g[i];
        else
            for (int i = 0; i < nout; ++i)
                ya[i] += io->out_noise * g[i];
        if (sto) {
            const float *u = U + (size_t)a * b->slot;
            for (int i = 0; i < nout; ++i)
                ya[i] = quantize(ya[i], res, true, u[i]);
        } else if (res > 0) {
            for (int i = 0; i < nout; ++i)
                ya[i] = rintf(ya[i] / res) * res;
        }
        int hi = 0, lo = 0;
        for (int i = 0; i < nout; ++i) {
            hi |= ya[i] > ob;
            lo |= ya[i] < -ob;
            ya[i] = clampf(ya[i], ob);
        }
        saturated[a] = hi || (lo && io->bm_test_negative_bound);
    }
}

/* Runs one direction of the IO model on the vectors [k0, k1) of a call of n: x [n, nin]
 * -> rows [k0, k1) of y [n, nout], unscaled by mapping scales (spec §2.3); MAC blocks of
 * `block` vectors (mac_blocked). Bound management only in the forward. */
static rpu_status io_pass_on(rpu_tile *t, const rpu_io_channel *ch, int dir, const float *x, int n,
                             int k0, int k1, int64_t block, float *y) {
    const rpu_io_params *io = ch->io;
    const rpu_io_state *st = ch->st;
    const int nin = dir_in(t, dir), nout = dir_out(t, dir);
    ++*ch->calls;
    if (io->is_perfect) {
        float *yr = y + (size_t)k0 * nout;
        for (int64_t b0 = k0; b0 < k1;) { /* whole blocks, as mac_blocked */
            int64_t b1 = (b0 / block + 1) * block;
            if (b1 > k1) b1 = k1;
            mac(t, dir, t->wsel, x + (size_t)b0 * nin, (int)(b1 - b0), y + (size_t)b0 * nout);
            b0 = b1;
        }
        if (io->out_scale != 1.0f)
            for (size_t q = 0; q < (size_t)(k1 - k0) * nout; ++q)
                yr[q] *= io->out_scale;
        return RPU_OK;
    }
    batch_ctx b = {.t = t,
                   .ch = ch,
                   .dir = dir,
                   .nin = nin,
                   .nout = nout,
                   .n_call = n,
                   .k0 = k0,
                   .k1 = k1,
                   .block = block,
                   .base = *ch->next_block,
                   .slot = 4 * ((addr_dim(t) + 3) / 4)};
    *ch->next_block = b.base + rpu_io_call_blocks(addr_dim(t), n);
    const rpu_bound_management bm = dir == DIR_FWD ? io->bound_management : RPU_BM_NONE;
    const rpu_noise_management nmt = io->noise_management;

    /* Each round works through the active vectors in groups of whole MAC blocks (at least
     * gmin vectors, IO_GROUP_FLOATS values of inputs or outputs, unless the blocks end; at
     * most Gm): the group's inputs, products, noise and outputs stay in cache from the DAC
     * to the copy into y. A vector's values do not depend on the grouping: its draws are
     * at its own addresses and its MAC is its block's call (mac_blocked). */
    const size_t N = (size_t)(k1 - k0);
    const int64_t gmin = IO_GROUP_FLOATS / (nin > nout ? nin : nout) + 1;
    const size_t Gm = (int64_t)N < gmin + block - 1 ? N : (size_t)(gmin + block - 1);
    /* float workspace: nm [n] (absolute index); red, scale [N]; a group's V, tmp_in
     * [Gm, nin], Y, tmp_out, tmp2 [Gm, nout], G, U [Gm, slot] and saturated flags [Gm]
     * bytes. Index workspace: vec [N]. */
    size_t need = (size_t)n + 2 * N + 2 * Gm * nin + 3 * Gm * nout + 2 * Gm * b.slot + (Gm + 3) / 4;
    float *ws = workspace(t, need);
    if (!ws || (N > t->iws_cap && !grow_index_workspace(t, N)))
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for a batch of %d vectors", n);
    float *nm = ws, *red = nm + n, *scale = red + N;
    float *V = scale + N, *tmp_in = V + Gm * nin;
    float *Y = tmp_in + Gm * nin, *tmp_out = Y + Gm * nout, *tmp2 = tmp_out + Gm * nout;
    float *G = tmp2 + Gm * nout, *U = G + Gm * b.slot;
    unsigned char *saturated = (unsigned char *)(U + Gm * b.slot);
    int64_t *vec = t->iws;
    b.vec = vec;

    noise_management(t, ch, dir, x, n, k0, k1, nm);

    /* active vectors; all-zero ones under noise management give exact zeros */
    int m = 0;
    for (int k = k0; k < k1; ++k) {
        if (nmt != RPU_NM_NONE && nm[k] <= 0 && io->inp_noise <= 0) {
            memset(y + (size_t)k * nout, 0, sizeof(float) * (size_t)nout);
            continue;
        }
        vec[m] = k;
        red[m] = 1.0f;
        ++m;
    }
    for (int round = 0; m > 0; ++round) {
        int keep = 0;
        for (int a0 = 0; a0 < m;) {
            int a1 = a0 + 1;
            while (a1 < m && (a1 - a0 < gmin || vec[a1] / block == vec[a1 - 1] / block))
                ++a1;
            batch_ctx g = b;
            g.vec = vec + a0;
            g.m = a1 - a0;
            g.k0 = (int)vec[a0];
            g.k1 = (int)vec[a1 - 1] + 1;
            g.round = round;
            for (int a = a0; a < a1; ++a) {
                const int64_t k = vec[a];
                if (round == 1 && bm == RPU_BM_ITERATIVE_WORST_CASE &&
                    nmt != RPU_NM_ABS_MAX_NP_SUM) {
                    nm[k] = nm_np_sum(io, st, x + (size_t)k * nin, nin);
                    red[a] = 1.0f;
                }
                float s = 1.0f;
                if (nmt != RPU_NM_NONE && nm[k] > 0) s /= nm[k];
                if (bm != RPU_BM_NONE) s /= red[a];
                scale[a] = s;
            }
            prepare_inputs(&g, x, scale + a0, V, G, U);
            mac_blocked(t, dir, t->wsel, V, g.m, g.vec, block, Y);
            RPU_CHECK(analog_extras(&g, V, Y, tmp_in, tmp_out, tmp2, G));
            finalize_outputs(&g, Y, G, U, saturated);
            for (int a = a0; a < a1; ++a) {
                const int64_t k = vec[a];
                const float *ya = Y + (size_t)(a - a0) * nout;
                bool passed = !saturated[a - a0];
                if (bm != RPU_BM_NONE)
                    passed = passed || (int)red[a] > io->max_bm_factor ||
                             (st->inp_res_abs > 0 && red[a] > io->max_bm_res / st->inp_res_abs) ||
                             round + 1 >= RPU_IO_MAX_PASSES;
                else
                    passed = true;
                if (passed) {
                    float nmv = (nmt != RPU_NM_NONE && nm[k] > 0) ? nm[k] : 1.0f;
                    float f = io->out_scale * nmv * (bm != RPU_BM_NONE ? red[a] : 1.0f);
                    float *yk = y + (size_t)k * nout;
                    for (int i = 0; i < nout; ++i)
                        yk[i] = ya[i] * f;
                } else { /* (keep <= a: the group's entries before a are done) */
                    vec[keep] = k;
                    red[keep] = red[a] * 2.0f;
                    ++keep;
                }
            }
            a0 = a1;
        }
        m = keep;
    }
    return RPU_OK;
}

/* The tile's own forward or backward pass. */
static rpu_status io_pass(rpu_tile *t, int dir, const float *x, int n, int k0, int k1,
                          int64_t block, float *y) {
    const rpu_io_channel ch = {.io = io_params(t, dir),
                               .st = &t->io[dir],
                               .rng = &t->stream[dir],
                               .next_block = &t->next_block[dir],
                               .calls = &t->calls[dir]};
    return io_pass_on(t, &ch, dir, x, n, k0, k1, block, y);
}

rpu_status rpu_tile_io_read(rpu_tile *t, const rpu_io_channel *ch, const float *W, int dir,
                            const float *x, int n, float *y) {
    if (n <= 0) return RPU_OK;
    const float *keep = t->wsel;
    t->wsel = W;
    rpu_status st = io_pass_on(t, ch, dir, x, n, 0, n, n, y);
    t->wsel = keep;
    return st;
}

/* ---------------------------------------------------------------- public passes */

/* Whether every mapping scale is 1 (multiplying by them changes nothing). */
static bool unit_scales(const rpu_tile *t) {
    for (int i = 0; i < t->p.out_size; ++i)
        if (t->scales[i] != 1.0f) return false;
    return true;
}

/* The checks of a part call: NULL arguments, n < 0, the range and the block. */
static rpu_status check_part(const char *fn, const void *t, const void *in, const void *out, int n,
                             int k0, int k1, int block) {
    if (!t || !in || !out) return RPU_FAIL(RPU_ERR_ARG, "%s: NULL argument", fn);
    if (n < 0) return RPU_FAIL(RPU_ERR_ARG, "%s: batch size %d < 0", fn, n);
    if (k0 < 0 || k1 < k0 || k1 > n)
        return RPU_FAIL(RPU_ERR_ARG, "%s: range [%d, %d) outside the batch of %d", fn, k0, k1, n);
    if (block < 1) return RPU_FAIL(RPU_ERR_ARG, "%s: MAC block %d < 1", fn, block);
    return RPU_OK;
}

bool rpu_tile_pass_by_blocks(const rpu_tile *t, bool backward) {
    return t && io_params(t, backward ? DIR_BWD : DIR_FWD)->is_perfect;
}

/* The checks of a staged pass (check_part's, with the stages for the arrays). */
static rpu_status check_staged(const char *fn, const rpu_tile *t, int n, int k0, int k1, int block,
                               const rpu_pass_stages *sg) {
    if (!sg || !sg->in || !sg->out) return RPU_FAIL(RPU_ERR_ARG, "%s: NULL stages", fn);
    return check_part(fn, t, sg, sg, n, k0, k1, block);
}

/* One staged pass: the tile, the call's size, the mode, and the backward's scaled
 * gradients (stage: NULL, or the rows the MAC reads instead of the stages' inputs). */
typedef struct {
    rpu_tile *t;
    int n;
    bool train;
    const float *stage;
} pass_ctx;

/* Work on a piece [b0, b1) of a pass: x its inputs and y its results, each at row b0 of
 * a block (by blocks) or at row 0 of the whole call's arrays (whole is true). */
typedef void (*piece_fn)(pass_ctx *pc, const float *x, float *y, int b0, int b1, bool whole);

/* The pieces of a staged pass over [k0, k1): whole MAC blocks when the pass is by blocks
 * (the perfect IO model: each block's products are one mac call, then out_scale, as
 * io_pass_on), else the whole range through io_pass, whose arrays then hold the call's n
 * rows (the stages' pointers to row k0 taken back to row 0). before runs on a piece's
 * inputs before its products, after on its results before the stages' done. */
static rpu_status staged_pass(pass_ctx *pc, int dir, int k0, int k1, int block,
                              const rpu_pass_stages *sg, piece_fn before, piece_fn after) {
    rpu_tile *t = pc->t;
    const rpu_io_params *io = io_params(t, dir);
    const size_t nin = (size_t)dir_in(t, dir), nout = (size_t)dir_out(t, dir);
    if (!io->is_perfect) {
        const float *x = sg->in(sg->ctx, k0, k1);
        float *y = sg->out(sg->ctx, k0, k1);
        if (!x || !y) return RPU_FAIL(RPU_ERR_NOMEM, "no arrays for a pass of %d vectors", pc->n);
        const float *x0 = x - (size_t)k0 * nin;
        float *y0 = y - (size_t)k0 * nout;
        if (before) before(pc, x0, y0, k0, k1, true);
        RPU_CHECK(io_pass(t, dir, pc->stage ? pc->stage : x0, pc->n, k0, k1, block, y0));
        if (after) after(pc, x0, y0, k0, k1, true);
        return sg->done ? sg->done(sg->ctx, k0, k1) : RPU_OK;
    }
    ++t->calls[dir]; /* one call, as io_pass_on counts it */
    for (int64_t b0 = k0; b0 < k1;) {
        int64_t b1 = (b0 / block + 1) * block;
        if (b1 > k1) b1 = k1;
        const float *x = sg->in(sg->ctx, (int)b0, (int)b1);
        float *y = sg->out(sg->ctx, (int)b0, (int)b1);
        if (!x || !y) return RPU_FAIL(RPU_ERR_NOMEM, "no arrays for a pass of %d vectors", pc->n);
        const int m = (int)(b1 - b0);
        if (before) before(pc, x, y, (int)b0, (int)b1, false);
        mac(t, dir, t->wsel, pc->stage ? pc->stage : x, m, y);
        if (io->out_scale != 1.0f)
            for (size_t q = 0; q < (size_t)m * nout; ++q)
                y[q] *= io->out_scale;
        if (after) after(pc, x, y, (int)b0, (int)b1, false);
        if (sg->done) RPU_CHECK(sg->done(sg->ctx, (int)b0, (int)b1));
        b0 = b1;
    }
    return RPU_OK;
}

/* The forward's gradient mask and mapping scales (or drift compensation) on the results of
 * vectors [b0, b1). */
static void forward_finish(pass_ctx *pc, const float *x, float *y, int b0, int b1, bool whole) {
    (void)x;
    rpu_tile *t = pc->t;
    const int NO = t->p.out_size;
    const rpu_io_params *io = &t->cfg.forward;
    float *yb = whole ? y + (size_t)b0 * NO : y; /* row b0 */
    const size_t cells = (size_t)(b1 - b0) * NO;
    if (pc->train && io->out_bound > 0 && t->cfg.kind != RPU_KIND_FLOATING_POINT) {
        /* as aihwkit's RPUCuda tile wrappers: every config with a forward section
         * (not floating_point), is_perfect or not, when out_bound > 0; otherwise nothing is
         * masked (mask_n 0: the backward passes every gradient) */
        const float lim = 0.999f * io->out_scale * io->out_bound;
        uint8_t *mask = t->mask + (size_t)b0 * NO;
        for (size_t q = 0; q < cells; ++q)
            mask[q] = (uint8_t)(fabsf(yb[q]) >= lim);
    }
    /* drift compensation of programmed weights, eval only (spec §6.3) */
    const float *alpha = (!pc->train && t->inf.programmed && t->inf.alpha &&
                          t->cfg.drift_compensation != RPU_DRIFT_COMP_NONE)
                             ? t->inf.alpha
                             : NULL;
    if (!alpha && unit_scales(t)) return; /* y * 1 = y */
    for (int k = b0; k < b1; ++k) {
        float *yk = yb + (size_t)(k - b0) * NO;
        if (alpha)
            for (int i = 0; i < NO; ++i)
                yk[i] *= alpha[i] * t->scales[i];
        else
            for (int i = 0; i < NO; ++i)
                yk[i] *= t->scales[i];
    }
}

rpu_status rpu_tile_forward_staged(rpu_tile *t, int n, int k0, int k1, int block,
                                   rpu_pass_mode mode, const rpu_pass_stages *sg) {
    RPU_CHECK(check_staged("rpu_tile_forward", t, n, k0, k1, block, sg));
    if (mode != RPU_MODE_TRAIN && mode != RPU_MODE_EVAL)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_forward: unknown mode %d", (int)mode);
    const bool is_test = mode == RPU_MODE_EVAL;
    if (n == 0) return RPU_OK;
    const rpu_io_params *io = &t->cfg.forward;
    const bool masking = !is_test && io->out_bound > 0 && t->cfg.kind != RPU_KIND_FLOATING_POINT;
    const size_t cells = (size_t)n * t->p.out_size;
    if (masking && cells > t->mask_cap) {
        uint8_t *p = (uint8_t *)realloc(t->mask, cells);
        if (!p) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the gradient mask");
        t->mask = p;
        t->mask_cap = cells;
    }
    t->mask_n = masking ? n : 0;
    pass_ctx pc = {t, n, !is_test, NULL};
    /* the modifier's copy in training (and in eval with enable_during_test) */
    const bool fb = t->inf.fb_valid && (!is_test || t->cfg.modifier.enable_during_test);
    t->wsel = fb ? t->inf.w_fb : t->w;
    rpu_status st = staged_pass(&pc, DIR_FWD, k0, k1, block, sg, NULL, forward_finish);
    t->wsel = t->w;
    return st;
}

/* The stages of a pass over the whole arrays x [n, in] and y [n, out] of a part call. */
typedef struct {
    const float *x;
    float *y;
    size_t nin, nout;
} whole_arrays;

static const float *whole_in(void *ctx, int b0, int b1) {
    (void)b1;
    const whole_arrays *a = (const whole_arrays *)ctx;
    return a->x + (size_t)b0 * a->nin;
}

static float *whole_out(void *ctx, int b0, int b1) {
    (void)b1;
    const whole_arrays *a = (const whole_arrays *)ctx;
    return a->y + (size_t)b0 * a->nout;
}

rpu_status rpu_tile_forward_part(rpu_tile *t, const float *x, int n, int k0, int k1, int block,
                                 float *y, rpu_pass_mode mode) {
    RPU_CHECK(check_part("rpu_tile_forward", t, x, y, n, k0, k1, block));
    whole_arrays a = {x, y, (size_t)t->p.in_size, (size_t)t->p.out_size};
    const rpu_pass_stages sg = {&a, whole_in, whole_out, NULL};
    return rpu_tile_forward_staged(t, n, k0, k1, block, mode, &sg);
}

rpu_status rpu_tile_forward(rpu_tile *t, const float *x, int n, float *y, rpu_pass_mode mode) {
    return rpu_tile_forward_part(t, x, n, 0, n, n > 0 ? n : 1, y, mode);
}

rpu_status rpu_tile_forward_raw(rpu_tile *t, const float *x, int n, float *y) {
    if (n <= 0) return RPU_OK;
    t->wsel = t->w;
    return io_pass(t, DIR_FWD, x, n, 0, n, n, y);
}

/* The backward's gradients of vectors [b0, b1) scaled by the mapping scales and masked,
 * into the tile's buffer (rows of the whole call), which the MAC then reads. noise
 * management average_abs_max reads every vector of a whole-range pass, so that pass
 * scales all. */
static void backward_prepare(pass_ctx *pc, const float *x, float *y, int b0, int b1, bool whole) {
    (void)y;
    rpu_tile *t = pc->t;
    const int NO = t->p.out_size, n = pc->n;
    const bool masked = t->mask_n == n;
    const bool all = whole && t->cfg.backward.noise_management == RPU_NM_AVERAGE_ABS_MAX;
    const int a0 = all ? 0 : b0, a1 = all ? n : b1;
    const int x0 = whole ? 0 : b0; /* the row x points at */
    float *dd = t->dbuf;
    for (int k = a0; k < a1; ++k)
        for (int i = 0; i < NO; ++i) {
            const size_t q = (size_t)k * NO + i;
            dd[q] = (masked && t->mask[q]) ? 0.0f : x[(size_t)(k - x0) * NO + i] * t->scales[i];
        }
    pc->stage = whole ? dd : dd + (size_t)b0 * NO;
}

rpu_status rpu_tile_backward_staged(rpu_tile *t, int n, int k0, int k1, int block,
                                    const rpu_pass_stages *sg) {
    RPU_CHECK(check_staged("rpu_tile_backward", t, n, k0, k1, block, sg));
    if (n == 0) return RPU_OK;
    const bool scaled = t->mask_n == n || !unit_scales(t); /* else d * 1 = d: no copy */
    const size_t cells = (size_t)n * t->p.out_size;
    if (scaled && cells > t->dbuf_cap) {
        float *p = (float *)realloc(t->dbuf, cells * sizeof(float));
        if (!p) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for a backward batch of %d", n);
        t->dbuf = p;
        t->dbuf_cap = cells;
    }
    pass_ctx pc = {t, n, false, NULL};
    t->wsel = t->inf.fb_valid ? t->inf.w_fb : t->w;
    rpu_status st =
        staged_pass(&pc, DIR_BWD, k0, k1, block, sg, scaled ? backward_prepare : NULL, NULL);
    t->wsel = t->w;
    return st;
}

rpu_status rpu_tile_backward_part(rpu_tile *t, const float *d, int n, int k0, int k1, int block,
                                  float *dx) {
    RPU_CHECK(check_part("rpu_tile_backward", t, d, dx, n, k0, k1, block));
    whole_arrays a = {d, dx, (size_t)t->p.out_size, (size_t)t->p.in_size};
    const rpu_pass_stages sg = {&a, whole_in, whole_out, NULL};
    return rpu_tile_backward_staged(t, n, k0, k1, block, &sg);
}

rpu_status rpu_tile_backward(rpu_tile *t, const float *d, int n, float *dx) {
    return rpu_tile_backward_part(t, d, n, 0, n, n > 0 ? n : 1, dx);
}

bool rpu_tile_batch_splittable(const rpu_tile *t) {
    return t && t->cfg.backward.noise_management != RPU_NM_AVERAGE_ABS_MAX;
}

bool rpu_tile_forward_reads_all(const rpu_tile *t) {
    return t && t->cfg.forward.noise_management == RPU_NM_AVERAGE_ABS_MAX;
}
