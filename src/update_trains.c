/* The first phase of the pulsed update engine (spec §3.1-§3.3; the engine's order of work
 * and random addresses are described at the top of update.c): for each vector of a chunk
 * its pulse-train length and probability scales (update management), the probabilities
 * and signs of its columns and of the slice's rows, and their pulse trains as 64-bit masks
 * (stochastic pulse types) or count factors (mean_count, deterministic_implicit), drawn
 * at the vector's own addresses; the batched draw of a chunk's train uniforms
 * (rpu_engine_predraw_chunk); and the column sets of one-slot trains. Local. */
#include "update_engine.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float abs_max_vec(const float *v, int n) {
#if defined(__AVX512F__)
    /* 16 lanes, the tail by a masked load; a NaN is skipped as in the loop below (max_ps
     * returns its second operand when either is NaN) */
    __m512 m16 = _mm512_setzero_ps();
    int j16 = 0;
    for (; j16 + 16 <= n; j16 += 16)
        m16 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(v + j16)), m16);
    if (j16 < n) {
        const __mmask16 tail = (__mmask16)((1u << (n - j16)) - 1u);
        m16 = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(tail, v + j16)), m16);
    }
    return _mm512_reduce_max_ps(m16);
#else
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
#endif
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

/* s[j] = sgn(v[j]) for j < n (NaN: 0). */
static void signs_i8(const float *v, int n, int8_t *s) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    const __m512 zero = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        const __mmask16 in = (__mmask16)(n - j >= 16 ? 0xFFFFu : (1u << (n - j)) - 1u);
        const __m512 a = _mm512_maskz_loadu_ps(in, v + j);
        const __mmask16 gt = _mm512_cmp_ps_mask(a, zero, _CMP_GT_OQ);
        const __mmask16 lt = _mm512_cmp_ps_mask(a, zero, _CMP_LT_OQ);
        const __m128i r =
            _mm_mask_mov_epi8(_mm_maskz_mov_epi8(gt, _mm_set1_epi8(1)), lt, _mm_set1_epi8(-1));
        _mm_mask_storeu_epi8(s + j, in, r);
    }
#else
    for (int j = 0; j < n; ++j)
        s[j] = sgn(v[j]);
#endif
}

/* Pulse-train length of every vector of a call with learning rate lr (calculateBlAB
 * without the update management, which can only shorten it): the bound of the masks. */
int rpu_engine_call_bl(const rpu_update_params *up, float g, float lr) {
    if (up->fixed_bl || up->update_bl_management || !(g * (float)up->desired_bl < lr))
        return up->desired_bl;
    double bl = ceil((double)lr / (double)g);
    return bl < 1 ? 1 : (bl > 1e9 ? 1000000000 : (int)bl);
}

rpu_status rpu_engine_workspace(rpu_tile *t, engine_ws *e, int C, int Rl, int K, int NW, int BLmax,
                                int NPC) {
    const size_t c = (size_t)C, r = (size_t)Rl, k = (size_t)K, nw = (size_t)NW, npc = (size_t)NPC;
    const size_t big = (c > r ? c : r) * (size_t)BLmax + 8;
    size_t sizes[] = {k * sizeof(vec_info),
                      k * nw * c * sizeof(uint64_t),
                      k * c,
                      k * c * sizeof(float),
                      k * r * nw * sizeof(uint64_t),
                      k * r,
                      k * r * sizeof(float),
                      c * sizeof(float),
                      r * sizeof(float),
                      big * sizeof(float),
                      k * c,
                      k * c,
                      k * sizeof(long),
                      c,
                      c * sizeof(uint16_t),
                      c * sizeof(uint16_t),
                      c,
                      (c * (size_t)BLmax + 8) * sizeof(float),
                      (c + 8) * sizeof(float),
                      c * sizeof(int32_t),
                      4 * k * r * sizeof(float),
                      4 * npc * sizeof(int32_t),
                      npc * sizeof(int32_t),
                      npc * sizeof(int32_t),
                      npc,
                      2 * c * sizeof(int32_t),
                      (npc + 8) * sizeof(float),
                      (c / 64 + 1) * 256 * sizeof(float),
                      k * PRE_ROOM * sizeof(float),
                      k * PRE_ROOM * sizeof(float),
                      2 * k * sizeof(float *),
                      (k + 1) * sizeof(int64_t),
                      k * 2 * ((c + 63) / 64) * sizeof(uint64_t),
                      k * sizeof(long),
                      k * sizeof(int64_t),
                      (k * HIT_ROOM + 8) * sizeof(float),
                      ((c + 63) / 64) * sizeof(uint64_t),
                      2 * npc * sizeof(uint64_t),
                      (ROW_ROOM + 8) * sizeof(float),
                      (ROW_ROOM / 4) * sizeof(int64_t),
                      k * sizeof(int32_t)};
    const size_t nparts = sizeof sizes / sizeof sizes[0];
    size_t total = 0;
    for (size_t q = 0; q < nparts; ++q)
        total += (sizes[q] + 63) & ~(size_t)63;
    if (total > t->uws_cap) {
        unsigned char *p = (unsigned char *)realloc(t->uws, total);
        if (!p) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the update workspace");
        t->uws = p;
        t->uws_cap = total;
    }
    void *ptr[sizeof sizes / sizeof sizes[0]];
    size_t off = 0;
    for (size_t q = 0; q < nparts; ++q) {
        ptr[q] = t->uws + off;
        off += (sizes[q] + 63) & ~(size_t)63;
    }
    e->K = K, e->NW = NW;
    e->vi = ptr[0], e->mx = ptr[1], e->sx = ptr[2], e->fx = ptr[3], e->md = ptr[4];
    e->sd = ptr[5], e->fd = ptr[6], e->px = ptr[7], e->pd = ptr[8], e->u = ptr[9];
    e->cnt = ptr[10], e->sgn = ptr[11], e->S = ptr[12], e->pas = ptr[13], e->nup = ptr[14];
    e->ndn = ptr[15], e->mrg = ptr[16], e->xi = ptr[17], e->wn = ptr[18], e->lst = ptr[19];
    e->pre = ptr[20], e->pc = ptr[21], e->rup = ptr[22], e->rdn = ptr[23], e->evd = ptr[24];
    e->part = ptr[25], e->pcn = ptr[26], e->nrm = ptr[27];
    e->pux = ptr[28], e->pud = ptr[29], e->upre = ptr[30], e->grp = ptr[31];
    e->CW = (C + 63) / 64, e->xb = ptr[32], e->xs = ptr[33];
    e->hv = ptr[34], e->hn = ptr[35], e->lm = ptr[36], e->evm = ptr[37];
    e->rn = ptr[38], e->rblk = ptr[39], e->roff = ptr[40];
    return RPU_OK;
}

/* Pulse trains with slot-major uniforms (x): bit s of element j is set when p[j] >
 * u[s*n + j]; word w of element j at m[w*n + j]. */
static void masks_slot_major(const float *p, const float *u, int n, int BL, int nw, uint64_t *m) {
    memset(m, 0, sizeof(uint64_t) * (size_t)n * (size_t)nw);
    for (int s = 0; s < BL; ++s) {
        const float *us = u + (size_t)s * n;
        uint64_t *mw = m + (size_t)(s / 64) * n;
        const int b = s % 64;
        for (int j = 0; j < n; ++j)
            mw[j] |= (uint64_t)(p[j] > us[j]) << b;
    }
}

/* Pulse trains with element-major uniforms (d): bit s of element i is set when p[i] >
 * u[i*BL + s]; word w of element i at m[i*NW + w]. */
static void masks_elem_major(const float *p, const float *u, int n, int BL, int NW, uint64_t *m) {
    if (NW == 1) {
        /* one word per element, branch-free (p <= 0 sets no bit: u >= 0) */
        for (int i = 0; i < n; ++i) {
            const float *ui = u + (size_t)i * BL;
            uint64_t w = 0;
            for (int s = 0; s < BL; ++s)
                w |= (uint64_t)(p[i] > ui[s]) << s;
            m[i] = w;
        }
        return;
    }
    for (int i = 0; i < n; ++i) {
        const float *ui = u + (size_t)i * BL;
        uint64_t *mi = m + (size_t)i * NW;
        for (int w = 0; w < NW; ++w)
            mi[w] = 0;
        if (!(p[i] > 0)) continue;
        for (int s = 0; s < BL; ++s)
            mi[s / 64] |= (uint64_t)(p[i] > ui[s]) << (s % 64);
    }
}

/* Whether a pulse probability decides its bits without a draw: p >= 1 sets every slot and
 * p <= 0 (or NaN) none, whatever the uniform u in [0, 1) (a bit is p > u). */
static inline bool certain(float p) {
    return p >= 1.0f || !(p > 0.0f);
}

/* The element-major trains of n probabilities that are all certain (masks_elem_major's
 * bits without its uniforms); false, writing nothing, if one is not. */
static bool masks_elem_certain(const float *p, int n, int BL, int NW, uint64_t *m) {
    for (int i = 0; i < n; ++i)
        if (!certain(p[i])) return false;
    for (int i = 0; i < n; ++i)
        for (int w = 0; w < NW; ++w) {
            const int b = BL - 64 * w; /* slots of word w */
            m[(size_t)i * NW + w] =
                !(p[i] > 0.0f) || b <= 0 ? 0 : (b >= 64 ? ~0ull : (1ull << b) - 1ull);
        }
    return true;
}

/* Phase 1's x side for a vector x [C] with few non-zero elements (k, B and vbase as in
 * rpu_engine_prepare_vector): the columns [j0, j1) of its first and last non-zero into e->vi[k]
 * (nothing else when they are the whole row) and, for each non-zero x[j], p_x(j), the sign
 * and (stochastic pulse types) its pulse train from its own values of the draws, at the
 * addresses of the dense path (rounding uniform x_round + j, slot s at x_pulses + s C + j).
 * A zero element has p_x = 0 (or -0), no pulses and sign 0, as in the dense path; so the
 * trains, signs and (count-based) factors are the dense path's. */
static void sparse_x(engine_ws *e, const call_shape *cs, int k, const float *x, float B,
                     uint64_t vbase) {
    const int C = cs->C;
    int a = C, b = 0, nz = 0;
    for (int j = 0; j < C; ++j)
        if (x[j] != 0) a = a < j ? a : j, b = j + 1, ++nz;
    if (a >= b) a = b = 0;
    if (b - a == C || nz * 8 > C) return; /* dense enough for the whole-row draws */
    e->vi[k].j0 = a, e->vi[k].j1 = b;
    const rpu_update_params *up = cs->up;
    const rpu_update_layout *L = &cs->L;
    const bool sto = up->sto_round && up->res > 0;
    const int BL = e->vi[k].BL, NW = e->NW;
    const bool trains =
        up->pulse_type == RPU_PULSE_STOCHASTIC_COMPRESSED || up->pulse_type == RPU_PULSE_STOCHASTIC;
    int8_t *sx = e->sx + (size_t)k * C;
    uint64_t *mx = e->mx + (size_t)k * NW * C;
    memset(sx, 0, (size_t)C);
    if (trains)
        for (int w = 0; w < e->vi[k].nw; ++w)
            memset(mx + (size_t)w * C, 0, sizeof(uint64_t) * (size_t)C);
    float buf[8];
    for (int j = a; j < b; ++j) {
        if (x[j] == 0) {
            e->px[j] = 0;
            continue;
        }
        const float u =
            sto ? *rpu_rng_values_at(cs->rng, vbase + L->x_round, (uint64_t)j, 1, buf, 0) : 0;
        const float p = discretize(B * fabsf(x[j]), up->res, sto, u);
        e->px[j] = p;
        sx[j] = sgn(x[j]);
        if (!trains) continue;
        if (certain(p)) { /* every slot (p > 0 here: x[j] != 0 and B > 0 unless p is 0) */
            for (int sl = 0; p > 0.0f && sl < BL; ++sl)
                mx[(size_t)(sl / 64) * C + j] |= 1ull << (sl % 64);
            continue;
        }
        for (int sl = 0; sl < BL; ++sl) {
            const float us = *rpu_rng_values_at(
                cs->rng, vbase + L->x_pulses, (uint64_t)sl * (uint64_t)C + (uint64_t)j, 1, buf, 0);
            mx[(size_t)(sl / 64) * C + j] |= (uint64_t)(p > us) << (sl % 64);
        }
    }
}

/* Phase 1 for vector k of the chunk (x: its C inputs, d: its R gradients of the whole
 * tile, vbase: its first block): BL, A, B (spec §3.3), probabilities, signs and pulse
 * trains (or count factors) of the columns and of the slice's rows. */
void rpu_engine_prepare_vector(const rpu_tile *t, engine_ws *e, const call_shape *cs, int k,
                               const float *x, const float *d, float lr, uint64_t vbase,
                               bool sparse) {
    (void)t;
    const rpu_update_params *up = cs->up;
    const int C = cs->C, Rl = cs->Rl, r0 = cs->r0;
    const rpu_update_layout *L = &cs->L;
    float A, B;
    int BL;
    if (e->pre_on) { /* rpu_engine_predraw_chunk computed them */
        BL = e->vi[k].BL, A = e->vi[k].A, B = e->vi[k].B;
    } else {
        BL = bl_and_scales(up, cs->g, lr, abs_max_vec(x, C),
                           cs->dmax ? cs->dmax[e->chunk0 + k] : abs_max_vec(d, cs->R), &A,
                           &B);
    }
    e->vi[k].BL = BL;
    e->vi[k].nw = (BL + 63) / 64;
    e->vi[k].j0 = 0, e->vi[k].j1 = C;
    if (BL == 0) return;
    const float *dl = d + r0; /* the slice's rows */
    int nzd = 0;
    for (int i = 0; sparse && i < Rl; ++i)
        nzd += dl[i] != 0;
    /* a sparse d: the draws of its non-zero rows only (each row's own values; a zero row has
     * p_d = +-0, no pulses, sign 0, as in the dense path) */
    const bool dsparse = sparse && nzd * 8 <= Rl;
    if (sparse) {
        sparse_x(e, cs, k, x, B, vbase);
        sparse = e->vi[k].j1 - e->vi[k].j0 < C;
    }
    const bool sto = up->sto_round && up->res > 0;
    const float *rr = NULL;
    int8_t *sx = e->sx + (size_t)k * C;
    if (!sparse) {
        if (sto) rr = rpu_rng_values_at(cs->rng, vbase + L->x_round, 0, (size_t)C, e->u, 0);
        if (up->res > 0)
            for (int j = 0; j < C; ++j)
                e->px[j] = discretize(B * fabsf(x[j]), up->res, sto, sto ? rr[j] : 0);
        else /* (discretize is the identity) */
            for (int j = 0; j < C; ++j)
                e->px[j] = B * fabsf(x[j]);
        signs_i8(x, C, sx);
    }
    int8_t *sd = e->sd + (size_t)k * Rl;
    const rpu_pulse_type pt = up->pulse_type;
    const bool trains = pt == RPU_PULSE_STOCHASTIC_COMPRESSED || pt == RPU_PULSE_STOCHASTIC;
    if (dsparse) {
        uint64_t *md = e->md + (size_t)k * Rl * e->NW;
        float buf[8];
        for (int i = 0; i < Rl; ++i) {
            e->pd[i] = 0, sd[i] = 0;
            for (int w = 0; trains && w < e->NW; ++w)
                md[(size_t)i * e->NW + w] = 0;
            if (dl[i] == 0) continue;
            const float u =
                sto ? *rpu_rng_values_at(cs->rng, vbase + L->d_round, (uint64_t)(r0 + i), 1, buf, 0)
                    : 0;
            e->pd[i] = discretize(A * fabsf(dl[i]), up->res, sto, u);
            sd[i] = sgn(dl[i]);
            if (!trains || !(e->pd[i] > 0)) continue;
            if (certain(e->pd[i])) {
                masks_elem_certain(e->pd + i, 1, BL, e->NW, md + (size_t)i * e->NW);
                continue;
            }
            const float *ud =
                rpu_rng_values_at(cs->rng, vbase + L->d_pulses, (uint64_t)(r0 + i) * (uint64_t)BL,
                                  (size_t)BL, e->u, 0);
            masks_elem_major(e->pd + i, ud, 1, BL, e->NW, md + (size_t)i * e->NW);
        }
    } else {
        if (sto)
            rr = rpu_rng_values_at(cs->rng, vbase + L->d_round, (uint64_t)r0, (size_t)Rl, e->u, 0);
        if (up->res > 0)
            for (int i = 0; i < Rl; ++i)
                e->pd[i] = discretize(A * fabsf(dl[i]), up->res, sto, sto ? rr[i] : 0);
        else
            for (int i = 0; i < Rl; ++i)
                e->pd[i] = A * fabsf(dl[i]);
        signs_i8(dl, Rl, sd);
    }
    if (trains) {
        const float *const *pre = e->pre_on ? e->upre + 2 * k : NULL;
        if (!sparse) {
            const float *ux = pre && pre[0] ? pre[0]
                                            : rpu_rng_values_at(cs->rng, vbase + L->x_pulses, 0,
                                                                (size_t)C * BL, e->u, 0);
            masks_slot_major(e->px, ux, C, BL, e->vi[k].nw, e->mx + (size_t)k * e->NW * C);
        }
        if (!dsparse && !masks_elem_certain(e->pd, Rl, BL, e->NW, e->md + (size_t)k * Rl * e->NW)) {
            const float *ud = pre && pre[1] ? pre[1]
                                            : rpu_rng_values_at(cs->rng, vbase + L->d_pulses,
                                                                (uint64_t)r0 * (uint64_t)BL,
                                                                (size_t)Rl * BL, e->u, 0);
            masks_elem_major(e->pd, ud, Rl, BL, e->NW, e->md + (size_t)k * Rl * e->NW);
        }
        return;
    }
    /* count-based: signed factors n_x(j) (mean_count) or p_x(j) (implicit), and per row
     * n_d(i)/BL or BL p_d(i), so that c_ij = rint(fd_i fx_j) (spec §3.4) */
    const bool mean = pt == RPU_PULSE_MEAN_COUNT;
    float *fx = e->fx + (size_t)k * C, *fd = e->fd + (size_t)k * Rl;
    for (int j = 0; j < C; ++j) {
        if (sparse && x[j] == 0) { /* x's zeros: factor 0 (every formula below gives +-0) */
            fx[j] = 0;
            continue;
        }
        float v;
        if (mean) {
            v = rintf((float)BL * e->px[j]);
            v = v < 0 ? 0 : (v > (float)BL ? (float)BL : v);
        } else {
            v = discretize(B * fabsf(x[j]), up->x_res_implicit, false, 0);
            v = v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        fx[j] = (float)sx[j] * v;
    }
    for (int i = 0; i < Rl; ++i) {
        float v;
        if (mean) {
            v = rintf((float)BL * e->pd[i]);
            v = v < 0 ? 0 : (v > (float)BL ? (float)BL : v);
            fd[i] = (float)sd[i] * v / (float)BL; /* c_ij = rint(n_d/BL · n_x) */
        } else {
            v = discretize(A * fabsf(dl[i]), up->d_res_implicit, false, 0);
            v = v < 0 ? 0 : (v > 1 ? 1 : v);
            fd[i] = (float)BL * ((float)sd[i] * v); /* c_ij = rint(BL p_d p_x) */
        }
    }
}

/* Vector k's x trains of one slot (BL 1) as the column sets e->xb (columns with a pulse
 * and x > 0, then x < 0) and their size e->xs[k]. With one slot, a row whose d pulse fires
 * pulses exactly these cells, once each, with the sign sd_i sx_j: row_counts without the
 * per-row pass over the columns. */
void rpu_engine_one_slot_bits(engine_ws *e, int C, int k) {
    const uint64_t *mx = e->mx + (size_t)k * e->NW * C;
    const int8_t *sx = e->sx + (size_t)k * C;
    uint64_t *pos = e->xb + (size_t)k * 2 * e->CW, *neg = pos + e->CW;
    long n = 0;
    for (int w = 0; w < e->CW; ++w) {
        const int j0 = 64 * w, j1 = C < j0 + 64 ? C : j0 + 64;
        uint64_t p = 0, m = 0;
        int j = j0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
        const __m512i one = _mm512_set1_epi64(1);
        const __m128i zero = _mm_setzero_si128();
        for (; j + 16 <= j1; j += 16) {
            const uint64_t b = (uint64_t)_mm512_test_epi64_mask(_mm512_loadu_si512(mx + j), one) |
                               (uint64_t)_mm512_test_epi64_mask(_mm512_loadu_si512(mx + j + 8), one)
                                   << 8;
            const __m128i s = _mm_loadu_si128((const __m128i *)(sx + j));
            p |= (b & _mm_cmpgt_epi8_mask(s, zero)) << (j - j0);
            m |= (b & _mm_cmplt_epi8_mask(s, zero)) << (j - j0);
        }
#endif
        for (; j < j1; ++j) {
            const uint64_t b = mx[j] & 1u;
            p |= (b & (uint64_t)(sx[j] > 0)) << (j - j0);
            m |= (b & (uint64_t)(sx[j] < 0)) << (j - j0);
        }
        pos[w] = p, neg[w] = m;
        n += __builtin_popcountll(p) + __builtin_popcountll(m);
    }
    e->xs[k] = n;
}

/* The vectors of vi[k0 ..] whose train length equals vi[k0].BL, into e->grp, and as bits
 * into *done (a chunk has at most 64 vectors); returns their number. */
static int bl_group(engine_ws *e, int k0, int kn, uint64_t *done) {
    const int BL = e->vi[k0].BL;
    int g = 0;
    for (int q = k0; q < kn; ++q)
        if (e->vi[q].BL == BL) e->grp[g++] = q, *done |= 1ull << q;
    return g;
}

/* The pulse-train uniforms of vectors [k0, k0 + kn) of a call (x [kn, C], d [kn, R]) in
 * one batch per train length, for the vectors whose own draws would be short (at most
 * PRE_ROOM values): for each length BL, blocks q of those vectors' d ranges (the slice's
 * Rl BL values at d_pulses + r0 BL) and x ranges (C BL values at x_pulses) are strided
 * across the vectors (rpu_rng_rows_at), so the values are those rpu_engine_prepare_vector would
 * draw itself. A vector whose d trains have no pulse in the slice's rows (known from its d uniforms
 * when update.res is 0: bit s of row i is set when A |d_i| > u) pulses no cell of the slice: its BL
 * is set to 0 and its x trains are not made, which leaves the slice's result as it was (with small
 * gradients most vectors of a conv layer's update have no pulse at all). Sets e->upre (NULL
 * entries: rpu_engine_prepare_vector draws). Dense path, trains only. */
void rpu_engine_predraw_chunk(engine_ws *e, const call_shape *cs, int k0, int kn, const float *x,
                              const float *d, float lr) {
    const rpu_update_params *up = cs->up;
    const int C = cs->C, R = cs->R, Rl = cs->Rl, r0 = cs->r0;
    e->pre_on = 0;
    if (up->pulse_type != RPU_PULSE_STOCHASTIC_COMPRESSED && up->pulse_type != RPU_PULSE_STOCHASTIC)
        return;
    /* each vector's train length, as rpu_engine_prepare_vector will compute it */
    for (int k = 0; k < kn; ++k) {
        const float lrk = cs->lrs ? cs->lrs[k0 + k] : lr;
        vec_info *v = &e->vi[k];
        const float dm = cs->dmax ? cs->dmax[k0 + k] : abs_max_vec(d + (size_t)k * R, R);
        v->BL = bl_and_scales(up, cs->g, lrk, abs_max_vec(x + (size_t)k * C, C), dm, &v->A,
                              &v->B);
        e->upre[2 * k] = e->upre[2 * k + 1] = NULL;
    }
    e->pre_on = 1;
    const float **pre = e->upre;
    const rpu_update_layout *L = &cs->L;
    const uint64_t first = cs->base + (uint64_t)k0 * cs->stride;
    size_t od = 0;     /* used rows of pud */
    uint64_t done = 0; /* the vectors whose length was seen */
    for (int k = 0; k < kn; ++k) {
        const int BL = e->vi[k].BL;
        if (BL <= 0 || ((done >> k) & 1u)) continue;
        const int g = bl_group(e, k, kn, &done);
        const uint64_t v0 = (uint64_t)r0 * (uint64_t)BL; /* the slice's first value */
        const size_t skip = (size_t)(v0 & 3u), nd = skip + (size_t)Rl * (size_t)BL;
        if (nd > PRE_ROOM) continue;
        rpu_rng_rows_at(cs->rng, first + L->d_pulses + v0 / 4, cs->stride, e->grp, (size_t)g, nd, 0,
                        e->pud + od * PRE_ROOM, PRE_ROOM);
        for (int a = 0; a < g; ++a) {
            const int q = (int)e->grp[a];
            const float *u = e->pud + (od + (size_t)a) * PRE_ROOM + skip;
            pre[2 * q + 1] = u;
            if (up->res > 0) continue; /* (the trains use discretized probabilities) */
            const float A = e->vi[q].A, *dq = d + (size_t)q * R + r0;
            int hit = 0;
            if (BL == 1) /* (a loop the compiler vectorizes) */
                for (int i = 0; i < Rl; ++i)
                    hit |= A * fabsf(dq[i]) > u[i];
            else
                for (int i = 0; i < Rl; ++i) {
                    const float p = A * fabsf(dq[i]);
                    for (int sl = 0; sl < BL; ++sl)
                        hit |= p > u[(size_t)i * BL + sl];
                }
            if (!hit) e->vi[q].BL = 0;
        }
        od += (size_t)g;
    }
    size_t ox = 0; /* used rows of pux */
    done = 0;
    for (int k = 0; k < kn; ++k) {
        const int BL = e->vi[k].BL;
        if (BL <= 0 || ((done >> k) & 1u)) continue;
        const int g = bl_group(e, k, kn, &done);
        const size_t nx = (size_t)C * (size_t)BL;
        if (nx > PRE_ROOM) continue;
        rpu_rng_rows_at(cs->rng, first + L->x_pulses, cs->stride, e->grp, (size_t)g, nx, 0,
                        e->pux + ox * PRE_ROOM, PRE_ROOM);
        for (int a = 0; a < g; ++a)
            pre[2 * e->grp[a]] = e->pux + (ox + (size_t)a) * PRE_ROOM;
        ox += (size_t)g;
    }
}
