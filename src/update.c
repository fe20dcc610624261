/* The tile's weight update (spec §3): exact floating-point updates, and the pulsed update
 * engine — update management, pulse trains as bit masks, coincidences by AND + popcount,
 * device pulses only where coincidences occurred.
 *
 * Random numbers. Update vector k of a call draws from the tile's update stream in its own
 * range of blocks, base + k * L.total (tile_impl.h: rpu_update_layout of the whole tile),
 * at addresses fixed by (call, vector, row, slot or pass, column) alone: the x pulse train
 * of column j (slot s at value s*cols + j), the d pulse train of row i (slot s at value
 * i*BL + s), the rounding uniforms of column j and of row i, row i's cycle-to-cycle normals
 * (from block c2c + i*row_c2c, pass by pass in column order), row i's write noise, and the
 * normals of row i's pulses merged over a chunk (block span + i*row_write of the chunk's
 * first vector) and over the pieces of a chopped update's read columns (the span ranges of
 * the chunk's next vectors, pieces_build). No address depends on what other rows drew, so
 * an update of rows
 * [r0, r1) only (rpu_tile_update_rows: holders of a whole tile; rpu_tile_update_slice: a
 * tile that holds only those rows) draws exactly the numbers the whole update draws for
 * them. The slot-by-slot reference in mpi_tests/ref_update.c uses the same addresses and
 * must give the same floats.
 *
 * Order of work. The batch is processed in chunks of rpu_update_chunk() vectors (fixed by
 * the whole tile's shape): first the pulse trains (masks) and signs of every vector of the
 * chunk, then row by row every vector of the chunk in batch order: the row's pulse counts,
 * its normals, the device's row kernel. Cells do not interact, and each cell still sees
 * its vectors in batch order, so this is the vector-by-vector update; the row's weights
 * and device state stay in cache over the chunk instead of streaming the whole tile
 * through memory once per vector.
 *
 * Merged pulses (t->update_per_pulse == 0, the default; constant_step, device_impl.h).
 * First, a cell whose pulses over the whole chunk (n_up up, n_down down) cannot reach a
 * bound in any order takes them as one step with one normal (rpu_device_row_span). The
 * other cells go vector by vector: a cell whose pulses of the vector cannot reach a bound
 * takes them as one step (rpu_device_row_passes: one pass), the rest one pass per pulse;
 * a row's normals of the vector are numbered by passes (pass 0: every cell with pulses;
 * pass p >= 1: the cells with more than p passes). In distribution this is the update with
 * one normal per pulse, with far fewer normals (tested against it in test_update).
 * t->update_per_pulse == 1 draws one normal per pulse. */
#include "tile_impl.h"

#include "error_impl.h"

#include <cblas.h>
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

static inline int8_t sgn(float v) {
    return (int8_t)((v > 0) - (v < 0));
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
static int call_bl(const rpu_update_params *up, float g, float lr) {
    if (up->fixed_bl || up->update_bl_management || !(g * (float)up->desired_bl < lr))
        return up->desired_bl;
    double bl = ceil((double)lr / (double)g);
    return bl < 1 ? 1 : (bl > 1e9 ? 1000000000 : (int)bl);
}

/* Per vector of a chunk: pulse-train length (0: no update) and mask words. */
typedef struct {
    int BL, nw;
    int j0, j1;    /* the columns where x may be non-zero (sparse x: its first and last + 1) */
    float A, B;    /* bl_and_scales's (set by predraw_chunk) */
} vec_info;

/* Uniforms per vector up to which a chunk draws x's (C BL) or d's (Rl BL + 3) pulse-train
 * values in one batch: below it a vector's own fill is short and pays mostly overhead. */
#define PRE_ROOM 256

/* Normals per vector up to which a row's sparse cells' normals are drawn in one batch
 * over the vectors (more: sparse_row draws its own). */
#define HIT_ROOM 16

/* Workspace of the pulsed engine, carved from one buffer (t->uws). C columns, Rl rows of
 * the tile (or slice), K vectors per chunk, NW mask words per element at most. */
typedef struct {
    int K, NW;
    vec_info *vi;  /* [K] */
    uint64_t *mx;  /* [K][NW][C]: word w of column j's train at mx[(k*NW + w)*C + j] */
    int8_t *sx;    /* [K][C] signs of x */
    float *fx;     /* [K][C] signed factors of x (count-based pulse types) */
    uint64_t *md;  /* [K][Rl][NW] */
    int8_t *sd;    /* [K][Rl] */
    float *fd;     /* [K][Rl] */
    float *px;     /* [C] probabilities of the vector being prepared */
    float *pd;     /* [Rl] */
    float *u;      /* uniforms of one draw: [max(C, Rl) * BLmax + 8] */
    uint8_t *cnt;  /* [K][C] pulses of the cells of one row, per vector of the chunk */
    int8_t *sgn;   /* [K][C] their signs */
    long *S;       /* [K] pulses of the row per vector */
    uint8_t *pas;  /* [C] passes (merged pulses) */
    uint16_t *nup; /* [C] pulses up of the row's cells over the chunk */
    uint16_t *ndn; /* [C] pulses down */
    uint8_t *mrg;  /* [C] cells whose pulses over the chunk merge */
    int32_t *lst;  /* [C] the row's other cells with pulses (sparse path) */
    float *pre;    /* [4 Rl] the normals of one block per row (a one-vector write) */
    /* pieces of the read columns of a chunk (snapshots, see pieces_build): NPC at most */
    int npc, pc_ok, ev0, ev1, npart;
    int32_t *pc;        /* [4 NPC]: column, first and last vector, read event of piece p */
    int32_t *rup, *rdn; /* [snap->n] the row's running counts up/down after each read */
    uint8_t *evd;       /* [snap->n] reads snapshot by pieces_merge */
    int32_t *part;      /* [2 C] partly merged columns: column, first single vector */
    float *pcn;         /* [NPC + 8] their normals (one per piece) */
    float *nrm;         /* [(C / 64 + 1) * 256] their normals, 256 per cell */
    float *xi;          /* [C * BLmax + 8] cycle-to-cycle normals of one row for one vector */
    float *wn;          /* [C + 8] write noise of one row */
    /* a chunk's pulse-train uniforms drawn in one batch (predraw_chunk) */
    float *pux, *pud;    /* [K][PRE_ROOM] x's and d's, vector after vector */
    int pre_on;          /* the chunk's vectors were pre-drawn: vi[k].BL, A, B and upre hold */
    const float **upre;  /* [2K] vector k's x uniforms at upre[2k], d's at upre[2k + 1] (or
                            NULL: prepare_vector draws them) */
    int64_t *grp;        /* [K + 1] the vectors of one pulse-train length */
    /* one-slot vectors (BL 1) of a chunk, for rows that only need their counts over the
     * chunk (one_slot_bits): x's columns with a pulse as bit sets, by the sign of x */
    int CW;       /* 64-bit words per column set: (C + 63) / 64 */
    uint64_t *xb; /* [K][2][CW]: vector k's columns with x > 0 at xb[2k CW], x < 0 after */
    long *xs;     /* [K] their number (the pulses of any row whose d pulse fires) */
    /* a row's vectors that pulse its few unmerged cells (the sparse path), and their
     * cycle-to-cycle normals drawn in one batch: HIT_ROOM per vector */
    int64_t *hv; /* [K] their index in the call */
    uint64_t *lm; /* [CW] the row's listed cells as a column set */
    float *hn;   /* [K][HIT_ROOM] */
} engine_ws;

static rpu_status engine_workspace(rpu_tile *t, engine_ws *e, int C, int Rl, int K, int NW,
                                   int BLmax, int NPC) {
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
                      4 * r * sizeof(float),
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
                      ((c + 63) / 64) * sizeof(uint64_t)};
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
    e->hv = ptr[34], e->hn = ptr[35], e->lm = ptr[36];
    return RPU_OK;
}

/* Values [v, v + m) of the range of stream s that starts at block blk (value v is value
 * v % 4 of block blk + v / 4), drawn into buf (room for m + 3 values); returns where they
 * start in buf. */
static const float *values_at(const rpu_rng *s, uint64_t blk, uint64_t v, size_t m, float *buf,
                              int normal) {
    const size_t skip = (size_t)(v & 3u);
    if (normal)
        rpu_rng_normal_at(s, blk + v / 4, buf, m + skip);
    else
        rpu_rng_uniform_at(s, blk + v / 4, buf, m + skip);
    return buf + skip;
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

/* The call's shape: C columns, rows [r0, r0 + Rl) of R, their weights and device state,
 * the layout of the whole tile. */
typedef struct {
    int C, R, Rl, r0;
    float *w;                    /* the weights of row r0 (rows [r0, r0 + Rl) follow) */
    const rpu_device_state *dev; /* device state whose row 0 is row r0 */
    rpu_update_layout L;
    uint64_t base;               /* first block of the call */
    uint64_t stride;             /* blocks per vector (L.total for a single device) */
    uint64_t qoff;               /* the device noise's offset in a vector's range (0; target q
                                    of a compound: q * L.total) */
    int sign_mode;               /* 0: every coincidence; +1 / -1: one_sided routing */
    const rpu_update_params *up; /* pulse-train parameters */
    float g;                     /* granularity of the pulse trains */
    const rpu_rng *rng;          /* the stream of the draws */
    const float *lrs;            /* per vector learning rates, or NULL: the call's lr */
    const rpu_read_snap *snap;   /* column snapshots and unmerged columns, or NULL */
} call_shape;

/* Phase 1's x side for a vector x [C] with few non-zero elements (k, B and vbase as in
 * prepare_vector): the columns [j0, j1) of its first and last non-zero into e->vi[k]
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
        const float u = sto ? *values_at(cs->rng, vbase + L->x_round, (uint64_t)j, 1, buf, 0) : 0;
        const float p = discretize(B * fabsf(x[j]), up->res, sto, u);
        e->px[j] = p;
        sx[j] = sgn(x[j]);
        if (!trains) continue;
        for (int sl = 0; sl < BL; ++sl) {
            const float us = *values_at(cs->rng, vbase + L->x_pulses,
                                        (uint64_t)sl * (uint64_t)C + (uint64_t)j, 1, buf, 0);
            mx[(size_t)(sl / 64) * C + j] |= (uint64_t)(p > us) << (sl % 64);
        }
    }
}

/* Phase 1 for vector k of the chunk (x: its C inputs, d: its R gradients of the whole
 * tile, vbase: its first block): BL, A, B (spec §3.3), probabilities, signs and pulse
 * trains (or count factors) of the columns and of the slice's rows. */
static void prepare_vector(const rpu_tile *t, engine_ws *e, const call_shape *cs, int k,
                           const float *x, const float *d, float lr, uint64_t vbase, bool sparse) {
    (void)t;
    const rpu_update_params *up = cs->up;
    const int C = cs->C, Rl = cs->Rl, r0 = cs->r0;
    const rpu_update_layout *L = &cs->L;
    float A, B;
    int BL;
    if (e->pre_on) { /* predraw_chunk computed them */
        BL = e->vi[k].BL, A = e->vi[k].A, B = e->vi[k].B;
    } else {
        BL = bl_and_scales(up, cs->g, lr, abs_max_vec(x, C), abs_max_vec(d, cs->R), &A, &B);
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
        if (sto) rr = values_at(cs->rng, vbase + L->x_round, 0, (size_t)C, e->u, 0);
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
                sto ? *values_at(cs->rng, vbase + L->d_round, (uint64_t)(r0 + i), 1, buf, 0) : 0;
            e->pd[i] = discretize(A * fabsf(dl[i]), up->res, sto, u);
            sd[i] = sgn(dl[i]);
            if (!trains || !(e->pd[i] > 0)) continue;
            const float *ud = values_at(cs->rng, vbase + L->d_pulses,
                                        (uint64_t)(r0 + i) * (uint64_t)BL, (size_t)BL, e->u, 0);
            masks_elem_major(e->pd + i, ud, 1, BL, e->NW, md + (size_t)i * e->NW);
        }
    } else {
        if (sto) rr = values_at(cs->rng, vbase + L->d_round, (uint64_t)r0, (size_t)Rl, e->u, 0);
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
                                            : values_at(cs->rng, vbase + L->x_pulses, 0,
                                                        (size_t)C * BL, e->u, 0);
            masks_slot_major(e->px, ux, C, BL, e->vi[k].nw, e->mx + (size_t)k * e->NW * C);
        }
        if (!dsparse) {
            const float *ud =
                pre && pre[1] ? pre[1]
                              : values_at(cs->rng, vbase + L->d_pulses, (uint64_t)r0 * (uint64_t)BL,
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

/* Pulse counts and signs of row i (slice index) for vector k of the chunk into cnt, sg
 * [C] on the columns [j0, j1) (all of them, or a sparse x's only: its other columns have
 * no pulses), and (nup, ndn not NULL) the counts added to the row's pulses up and down over
 * the chunk; returns the row's number of pulses (0: nothing written). */
static long row_counts(const engine_ws *e, const call_shape *cs, int k, int i, int j0, int j1,
                       uint8_t *restrict cnt, int8_t *restrict sg, uint16_t *restrict nup,
                       uint16_t *restrict ndn) {
    const int C = cs->C, Rl = cs->Rl;
    const rpu_pulse_type pt = cs->up->pulse_type;
    long S = 0;
    int j = j0;
    if (pt == RPU_PULSE_STOCHASTIC_COMPRESSED || pt == RPU_PULSE_STOCHASTIC) {
        const int nw = e->vi[k].nw;
        const uint64_t *mdi = e->md + ((size_t)k * Rl + i) * e->NW;
        uint64_t any = 0;
        for (int w = 0; w < nw; ++w)
            any |= mdi[w];
        if (!any) return 0;
        const uint64_t *mx = e->mx + (size_t)k * e->NW * C;
        const int8_t si = e->sd[(size_t)k * Rl + i];
        const int8_t *sx = e->sx + (size_t)k * C;
#if defined(__AVX512VPOPCNTDQ__) && defined(__AVX512BW__) && defined(__AVX512VL__)
        if (nw == 1) {
            /* one mask word per element (BL <= 64): counts, signs, sums in one pass */
            const __m512i m = _mm512_set1_epi64((long long)mdi[0]);
            const __m128i vsi = _mm_set1_epi8(si), zero = _mm_setzero_si128();
            __m512i acc = _mm512_setzero_si512();
            for (; j + 16 <= j1; j += 16) {
                __m512i p0 = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(mx + j), m));
                __m512i p1 =
                    _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(mx + j + 8), m));
                __m512i c32 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(p0)),
                                                 _mm512_cvtepi64_epi32(p1), 1);
                _mm_storeu_si128((__m128i *)(cnt + j), _mm512_cvtepi32_epi8(c32));
                __m128i s8 = _mm_sign_epi8(_mm_loadu_si128((const __m128i *)(sx + j)), vsi);
                _mm_storeu_si128((__m128i *)(sg + j), s8);
                acc = _mm512_add_epi32(acc, c32);
                if (nup) {
                    const __mmask16 down = _mm_cmpgt_epi8_mask(s8, zero);
                    const __m256i c16 = _mm512_cvtepi32_epi16(c32);
                    __m256i u = _mm256_loadu_si256((const __m256i *)(nup + j));
                    __m256i v = _mm256_loadu_si256((const __m256i *)(ndn + j));
                    _mm256_storeu_si256((__m256i *)(nup + j),
                                        _mm256_mask_add_epi16(u, (__mmask16)~down, u, c16));
                    _mm256_storeu_si256((__m256i *)(ndn + j),
                                        _mm256_mask_add_epi16(v, down, v, c16));
                }
            }
            S = _mm512_reduce_add_epi32(acc);
        }
#endif
        /* the rest (all of the row without the fused pass): simple loops that vectorise */
        const uint64_t m0 = mdi[0];
        for (int q = j; q < j1; ++q)
            cnt[q] = (uint8_t)__builtin_popcountll(m0 & mx[q]);
        for (int w = 1; w < nw; ++w) {
            const uint64_t mw = mdi[w];
            const uint64_t *mxw = mx + (size_t)w * C;
            for (int q = j; q < j1; ++q)
                cnt[q] = (uint8_t)(cnt[q] + __builtin_popcountll(mw & mxw[q]));
        }
        for (int q = j; q < j1; ++q)
            sg[q] = (int8_t)(si * sx[q]);
    } else {
        const float f = e->fd[(size_t)k * Rl + i];
        if (f == 0) return 0;
        const float *fx = e->fx + (size_t)k * C;
        for (int q = j0; q < j1; ++q) {
            float c = rintf(f * fx[q]);
            cnt[q] = (uint8_t)fabsf(c);
            sg[q] = sgn(c);
        }
    }
    for (int q = j; q < j1; ++q) {
        S += cnt[q];
        if (nup) {
            const uint16_t c = cnt[q], down = sg[q] > 0;
            nup[q] = (uint16_t)(nup[q] + (down ? 0 : c));
            ndn[q] = (uint16_t)(ndn[q] + (down ? c : 0));
        }
    }
    return S;
}

/* Vector k's x trains of one slot (BL 1) as the column sets e->xb (columns with a pulse
 * and x > 0, then x < 0) and their size e->xs[k]. With one slot, a row whose d pulse fires
 * pulses exactly these cells, once each, with the sign sd_i sx_j: row_counts without the
 * per-row pass over the columns. */
static void one_slot_bits(engine_ws *e, int C, int k) {
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

/* Row i's pulses up and down over the one-slot vectors of the set act (a chunk's vectors,
 * as bits, whose d pulse of row i fires; one_slot_bits made their column sets) into nup,
 * ndn [C], overwritten: vector k pulses down (sign sd_i sx_j > 0) the columns of x's sign
 * sd_i, up the others. The same counts as row_counts adds. */
static void one_slot_counts(const engine_ws *e, int C, int Rl, int i, uint64_t act,
                            uint16_t *restrict nup, uint16_t *restrict ndn) {
    const int CW = e->CW;
    const uint64_t *dn[64], *upb[64];
    int m = 0;
    for (; act; act &= act - 1) {
        const int k = __builtin_ctzll(act);
        const uint64_t *b = e->xb + (size_t)k * 2 * CW;
        const size_t minus = e->sd[(size_t)k * Rl + i] < 0; /* (0 or 1, no branch) */
        dn[m] = b + minus * CW;
        upb[m++] = b + (1 - minus) * CW;
    }
#if defined(__AVX512F__) && defined(__AVX512BW__)
    /* 32 columns a block, the counts in registers over the vectors */
    const __m512i one = _mm512_set1_epi16(1);
    for (int j = 0; j < C; j += 32) {
        const int w = j / 64, sh = j % 64;
        __m512i u = _mm512_setzero_si512(), d = _mm512_setzero_si512();
        for (int q = 0; q < m; ++q) {
            d = _mm512_mask_add_epi16(d, (__mmask32)(dn[q][w] >> sh), d, one);
            u = _mm512_mask_add_epi16(u, (__mmask32)(upb[q][w] >> sh), u, one);
        }
        const __mmask32 st = C - j >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (C - j)) - 1u);
        _mm512_mask_storeu_epi16(nup + j, st, u);
        _mm512_mask_storeu_epi16(ndn + j, st, d);
    }
#else
    memset(nup, 0, sizeof(uint16_t) * (size_t)C);
    memset(ndn, 0, sizeof(uint16_t) * (size_t)C);
    for (int q = 0; q < m; ++q)
        for (int w = 0; w < CW; ++w) {
            for (uint64_t b = dn[q][w]; b; b &= b - 1)
                ++ndn[64 * w + __builtin_ctzll(b)];
            for (uint64_t b = upb[q][w]; b; b &= b - 1)
                ++nup[64 * w + __builtin_ctzll(b)];
        }
#endif
}

/* Vector k's counts and signs of row i in the columns lst[0 .. nl) only, as row_counts
 * writes them (a vector whose row counts one_slot_counts took). */
static void counts_at(const engine_ws *e, const call_shape *cs, int k, int i, const int32_t *lst,
                      int nl, uint8_t *restrict cnt, int8_t *restrict sg) {
    const int C = cs->C, Rl = cs->Rl;
    const uint64_t *mdi = e->md + ((size_t)k * Rl + i) * e->NW;
    const uint64_t *mx = e->mx + (size_t)k * e->NW * C;
    const int8_t si = e->sd[(size_t)k * Rl + i], *sx = e->sx + (size_t)k * C;
    for (int q = 0; q < nl; ++q) {
        const int j = lst[q];
        int c = 0;
        for (int w = 0; w < e->vi[k].nw; ++w)
            c += __builtin_popcountll(mdi[w] & mx[(size_t)w * C + j]);
        cnt[j] = (uint8_t)c;
        sg[j] = (int8_t)(si * sx[j]);
    }
}

/* One_sided routing (compound spec §4.3): the counts of the cells whose sign is that of
 * sign_mode (+1: sign > 0, -1: sign < 0) into out (may be cnt), the others 0; returns their
 * sum. The caller applies them as steps up. */
static long keep_sign(const uint8_t *cnt, const int8_t *sg, int C, int sign_mode, uint8_t *out) {
    const int8_t want = sign_mode > 0 ? 1 : -1;
    unsigned sum = 0;
    for (int j = 0; j < C; ++j) /* simple loops that vectorise */
        out[j] = (uint8_t)(cnt[j] & (uint8_t) - (sg[j] == want));
    for (int j = 0; j < C; ++j)
        sum += out[j];
    return (long)sum;
}

/* row_counts for a target that takes one sign only (cs->sign_mode, keep_sign), all as steps
 * up; with merge, adds them to the row's pulses up. */
static long routed_counts(engine_ws *e, const call_shape *cs, int k, int i, bool merge) {
    const int C = cs->C;
    uint8_t *cnt = e->cnt + (size_t)k * C;
    int8_t *sg = e->sgn + (size_t)k * C;
    if (row_counts(e, cs, k, i, 0, cs->C, cnt, sg, NULL, NULL) == 0) return 0;
    const long S = keep_sign(cnt, sg, C, cs->sign_mode, cnt);
    for (int j = 0; j < C; ++j)
        sg[j] = -1; /* up */
    if (merge)
        for (int j = 0; j < C; ++j)
            e->nup[j] = (uint16_t)(e->nup[j] + cnt[j]);
    return S;
}

/* Vector k's pulses of the few cells e->lst[0 .. nl) of row i (in column order; the row's
 * other cells have no pulses left), cell by cell through the device's reference functions:
 * the same floats and normals as the row kernel (pass by pass in column order). */
static void sparse_row(const rpu_tile *t, engine_ws *e, const call_shape *cs, int i, int k, int nl,
                       float *dev_row, uint64_t vbase, int merge, const float *pre) {
    const rpu_device_state *dev = cs->dev;
    const int C = cs->C;
    const uint8_t *cnt = e->cnt + (size_t)k * C;
    const int8_t *sg = e->sgn + (size_t)k * C;
    const size_t c0 = (size_t)i * C;
    size_t P = 0;
    unsigned maxp = 0;
    for (int q = 0; q < nl; ++q) {
        const int j = e->lst[q], n = cnt[j];
        const unsigned p = merge && rpu_device_merge_ok(dev, c0 + (size_t)j, dev_row[j], sg[j], n)
                               ? 1u
                               : (unsigned)n;
        e->pas[q] = (uint8_t)p;
        P += p;
        maxp = p > maxp ? p : maxp;
    }
    if (P == 0) return;
    const int npp = rpu_device_normals_per_pulse(dev);
    if (npp > 0) {
        const float *xi =
            pre ? pre
                : values_at(&t->ustream,
                            vbase + cs->L.c2c + (uint64_t)(cs->r0 + i) * cs->L.row_c2c, 0, P,
                            e->xi, 1);
        for (unsigned p = 0; p < maxp; ++p)
            for (int q = 0; q < nl; ++q)
                if (e->pas[q] > p) e->nrm[(size_t)q * 256 + p] = *xi++;
    }
    for (int q = 0; q < nl; ++q) {
        const int j = e->lst[q], n = cnt[j];
        if (n == 0) continue;
        const float *z = npp > 0 ? e->nrm + (size_t)q * 256 : NULL;
        if (e->pas[q] == 1 && n > 1)
            rpu_device_pulses_merged(dev, c0 + (size_t)j, &dev_row[j], sg[j], n, z);
        else
            rpu_device_pulses(dev, c0 + (size_t)j, &dev_row[j], sg[j], n, z);
    }
}

/* Row i (slice index) after vector v of the call: its values in the snapshot columns read
 * after v (snapshots *ev, ... whose vector is v; *ev advances past them). */
static inline void take_snapshots(const call_shape *cs, int i, int v, const float *w_row, int *ev,
                                  const uint8_t *done) {
    const rpu_read_snap *s = cs->snap;
    if (!s) return;
    for (; *ev < s->n && s->vec[*ev] == v; ++*ev)
        if (!done || !done[*ev])
            s->val[(size_t)*ev * (size_t)cs->R + (size_t)(cs->r0 + i)] = w_row[s->col[*ev]];
}

/* Pieces of the read columns (snapshots) of a chunk of kn vectors. A read column's value
 * after its read vector is read, so its pulses cannot merge over the whole chunk; they
 * merge piece by piece instead. The pieces of column j are the runs of vectors between its
 * reads: [0, v1], [v1 + 1, v2], ..., [v_last + 1, kn - 1]. In each row, from the first
 * piece on, a piece whose pulses (n_up, n_down over the piece) cannot reach a bound from
 * the cell's weight at the piece's start takes them as one step (rpu_device_pulses_span),
 * and the reads at its end see the result; from the first piece that could reach a bound,
 * the cell pulses vector by vector to the chunk's end, as the other unmerged cells. The
 * normal of piece p (numbered column by column in snap->excl order, each column's pieces
 * in vector order) is value p % C of the span range of vector k0 + 1 + p / C (span ranges
 * are used only at a chunk's first vector), so the pieces need (P - 1) / C + 2 <= kn
 * vectors; with fewer (pc_ok 0) every read column pulses vector by vector.
 * pieces_build lists them for the chunk whose snapshots are [ev0, ev1): column, first and
 * last vector, the read event at the end (-1: the chunk's end). */
static void pieces_build(engine_ws *e, const call_shape *cs, int k0, int kn, int ev0) {
    const rpu_read_snap *s = cs->snap;
    int ev1 = ev0;
    while (ev1 < s->n && s->vec[ev1] < k0 + kn)
        ++ev1;
    e->ev0 = ev0, e->ev1 = ev1;
    int np = 0;
    for (int q = 0; q < s->n_excl; ++q) {
        const int j = s->excl[q];
        int a = 0;
        for (int v = ev0; v < ev1; ++v) {
            const int r = s->vec[v] - k0;
            if (s->col[v] != j || r < a) continue;
            int32_t *pc = e->pc + 4 * (size_t)np++;
            pc[0] = j, pc[1] = a, pc[2] = r, pc[3] = v;
            a = r + 1;
        }
        if (a <= kn - 1) {
            int32_t *pc = e->pc + 4 * (size_t)np++;
            pc[0] = j, pc[1] = a, pc[2] = kn - 1, pc[3] = -1;
        }
    }
    e->npc = np;
    e->pc_ok = np > 0 && kn >= 2 && (np - 1) / cs->C + 2 <= kn;
}

/* Row i: the read columns' pieces (pieces_build), after the row's counts (nup, ndn: the
 * chunk's; e->rup, e->rdn: the running counts right after each read event) and the other
 * cells' merged step. A column whose every piece merged is marked merged (e->mrg); one that
 * stopped at a piece pulses vector by vector from that piece's first vector (e->part;
 * pieces_take_counts takes its counts of the vectors before out).
 * The reads of merged pieces are snapshot here (e->evd marks them). Returns the number of
 * columns marked merged. */
static int pieces_merge(rpu_tile *t, engine_ws *e, const call_shape *cs, int k0, int i,
                        float *dev_row) {
    const rpu_read_snap *s = cs->snap;
    const rpu_device_state *dev = cs->dev;
    const int C = cs->C;
    const size_t row = (size_t)(cs->r0 + i);
    const int npp = rpu_device_normals_per_pulse(dev);
    int drawn = 0, merged = 0;
    e->npart = 0;
    memset(e->evd + e->ev0, 0, (size_t)(e->ev1 - e->ev0));
    for (int p0 = 0; p0 < e->npc;) {
        const int j = e->pc[4 * p0];
        int p1 = p0;
        while (p1 < e->npc && e->pc[4 * p1] == j)
            ++p1;
        float w = dev_row[j];
        int tu = 0, td = 0, from = -1;
        for (int p = p0; p < p1 && from < 0; ++p) {
            const int32_t *pc = e->pc + 4 * (size_t)p;
            const int ev = pc[3];
            const int u = ev >= 0 ? e->rup[ev] : e->nup[j], d = ev >= 0 ? e->rdn[ev] : e->ndn[j];
            const int nu = u - tu, nd = d - td;
            if (nu + nd > 0) {
                if (!rpu_device_span_ok(dev, (size_t)i * C + j, w, nu, nd)) {
                    from = pc[1];
                    break;
                }
                if (npp > 0 && !drawn) {
                    for (int v = 0; v * C < e->npc; ++v) {
                        const int m = e->npc - v * C < C ? e->npc - v * C : C;
                        rpu_rng_normal_at(&t->ustream,
                                          cs->base + (uint64_t)(k0 + 1 + v) * cs->stride +
                                              cs->qoff + cs->L.span + row * cs->L.row_write,
                                          e->pcn + (size_t)v * C, (size_t)m);
                    }
                    drawn = 1;
                }
                rpu_device_pulses_span(dev, (size_t)i * C + j, &w, nu, nd,
                                       npp > 0 ? e->pcn + p : NULL);
            }
            tu = u, td = d;
            for (int v = ev; v >= 0 && v < e->ev1 && s->vec[v] == s->vec[ev]; ++v)
                if (s->col[v] == j) {
                    s->val[(size_t)v * (size_t)cs->R + row] = w;
                    e->evd[v] = 1;
                }
        }
        dev_row[j] = w;
        if (from < 0) {
            e->mrg[j] = 1;
            ++merged;
        } else if (from > 0) {
            e->part[2 * e->npart] = j, e->part[2 * e->npart + 1] = from;
            ++e->npart;
        }
        p0 = p1;
    }
    return merged;
}

/* The counts of the partly merged read columns (pieces_merge) before their first single
 * vector: out of cnt and S. */
static void pieces_take_counts(engine_ws *e, int C) {
    for (int q = 0; q < e->npart; ++q) {
        const int j = e->part[2 * q], from = e->part[2 * q + 1];
        for (int v = 0; v < from; ++v) {
            if (!e->S[v]) continue; /* (its counts were not written) */
            e->S[v] -= e->cnt[(size_t)v * C + j];
            e->cnt[(size_t)v * C + j] = 0;
        }
    }
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
 * across the vectors (rpu_rng_rows_at), so the values are those prepare_vector would draw
 * itself. A vector whose d trains have no pulse in the slice's rows (known from its d
 * uniforms when update.res is 0: bit s of row i is set when A |d_i| > u) pulses no cell of
 * the slice: its BL is set to 0 and its x trains are not made, which leaves the slice's
 * result as it was (with small gradients most vectors of a conv layer's update have no
 * pulse at all). Sets e->upre (NULL entries: prepare_vector draws). Dense path, trains
 * only. */
static void predraw_chunk(engine_ws *e, const call_shape *cs, int k0, int kn, const float *x,
                          const float *d, float lr) {
    const rpu_update_params *up = cs->up;
    const int C = cs->C, R = cs->R, Rl = cs->Rl, r0 = cs->r0;
    e->pre_on = 0;
    if (up->pulse_type != RPU_PULSE_STOCHASTIC_COMPRESSED && up->pulse_type != RPU_PULSE_STOCHASTIC)
        return;
    /* each vector's train length, as prepare_vector will compute it */
    for (int k = 0; k < kn; ++k) {
        const float lrk = cs->lrs ? cs->lrs[k0 + k] : lr;
        vec_info *v = &e->vi[k];
        v->BL = bl_and_scales(up, cs->g, lrk, abs_max_vec(x + (size_t)k * C, C),
                              abs_max_vec(d + (size_t)k * R, R), &v->A, &v->B);
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
        rpu_rng_rows_at(cs->rng, first + L->d_pulses + v0 / 4, cs->stride, e->grp, (size_t)g, nd,
                        0, e->pud + od * PRE_ROOM, PRE_ROOM);
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

/* The pulsed update of the slice's rows for a batch x [n, C], d [n, R] (engine units). */
static rpu_status pulsed_batch(rpu_tile *t, const float *x, const float *d, int n, float lr,
                               const call_shape *cs) {
    const rpu_update_params *up = cs->up;
    const rpu_pulse_type pt = up->pulse_type;
    if (pt != RPU_PULSE_STOCHASTIC_COMPRESSED && pt != RPU_PULSE_STOCHASTIC &&
        pt != RPU_PULSE_MEAN_COUNT && pt != RPU_PULSE_DETERMINISTIC_IMPLICIT)
        return RPU_FAIL(RPU_ERR_INTERNAL, "pulsed engine called with pulse type %d", (int)pt);
    int BLmax = call_bl(up, cs->g, lr);
    for (int k = 0; cs->lrs && k < n; ++k) {
        const int b = call_bl(up, cs->g, cs->lrs[k]);
        if (b > BLmax) BLmax = b, lr = cs->lrs[k];
    }
    if (BLmax > RPU_UPDATE_MAX_BL)
        return RPU_FAIL(RPU_ERR_UNSUPPORTED,
                        "pulse train of %d slots (lr %g / granularity %g) exceeds %d; set "
                        "update.fixed_bl = true or update.update_bl_management = true",
                        BLmax, (double)lr, (double)cs->g, RPU_UPDATE_MAX_BL);
    const int C = cs->C, R = cs->R, Rl = cs->Rl;
    const int NW = (BLmax + 63) / 64;
    /* vectors per chunk: fixed by the whole tile's shape (the chunks decide which pulses
     * merge, so every slicing must chunk alike) */
    long K = rpu_update_chunk(R, C);
    if (K > n) K = n;
    engine_ws e = {0};
    const int NPC = cs->snap ? cs->snap->n + cs->snap->n_excl : 0;
    RPU_CHECK(engine_workspace(t, &e, C, Rl, (int)K, NW, BLmax, NPC));
    const rpu_update_layout *L = &cs->L;
    const rpu_device_state *dev = cs->dev;
    const int npp = rpu_device_normals_per_pulse(dev);
    const bool merge = !t->update_per_pulse && rpu_device_merges_pulses(dev);
    const bool trains = pt == RPU_PULSE_STOCHASTIC_COMPRESSED || pt == RPU_PULSE_STOCHASTIC;
    for (int k0 = 0; k0 < n; k0 += (int)K) {
        const int kn = n - k0 < (int)K ? n - k0 : (int)K;
        predraw_chunk(&e, cs, k0, kn, x + (size_t)k0 * C, d + (size_t)k0 * R, lr);
        for (int k = 0; k < kn; ++k)
            prepare_vector(t, &e, cs, k, x + (size_t)(k0 + k) * C, d + (size_t)(k0 + k) * R,
                           cs->lrs ? cs->lrs[k0 + k] : lr,
                           cs->base + (uint64_t)(k0 + k) * cs->stride, false);
        /* the chunk's vectors that pulse (BL > 0), in order */
        int nact = 0;
        for (int k = 0; k < kn; ++k)
            if (e.vi[k].BL > 0) e.grp[nact++] = k;
        int ev0 = 0; /* the chunk's first snapshot */
        while (cs->snap && ev0 < cs->snap->n && cs->snap->vec[ev0] < k0)
            ++ev0;
        e.npc = e.pc_ok = 0;
        if (cs->snap && merge && !cs->sign_mode && !t->snap_unmerged)
            pieces_build(&e, cs, k0, kn, ev0);
        /* the one-slot vectors: their rows' counts over the chunk come from column sets
         * (one_slot_counts), their per-vector counts only where a cell does not merge */
        uint64_t one = 0;
        if (merge && trains && !cs->sign_mode && !e.pc_ok)
            for (int q = 0; q < nact; ++q) {
                const int k = (int)e.grp[q];
                if (e.vi[k].BL != 1) continue;
                one_slot_bits(&e, C, k);
                one |= 1ull << k;
            }
        for (int i = 0; i < Rl; ++i) {
            float *w_row = cs->w + (size_t)i * C;
            float *dev_row =
                dev->persistent_weights ? dev->persistent_weights + (size_t)i * C : w_row;
            const uint64_t row = (uint64_t)(cs->r0 + i);
            long any = 0;
            int j0 = 0, j1 = C; /* the columns that take pulses vector by vector */
            if (merge) {
                memset(e.nup, 0, sizeof(uint16_t) * (size_t)C);
                memset(e.ndn, 0, sizeof(uint16_t) * (size_t)C);
            }
            int evr = ev0; /* (pieces) */
            uint64_t lazy = 0; /* vectors whose counts of the row are not written yet */
            if (!cs->sign_mode && !e.pc_ok && trains) {
                /* the vectors whose d train of this row has a pulse, as bits (a chunk has at
                 * most 64 vectors), visited in order: no branch per empty (vector, row) */
                uint64_t act = 0;
                for (int q = 0; q < nact; ++q) {
                    const int k = (int)e.grp[q];
                    const uint64_t *mdi = e.md + ((size_t)k * Rl + i) * e.NW;
                    uint64_t a = mdi[0];
                    for (int w = 1; w < e.vi[k].nw; ++w)
                        a |= mdi[w];
                    act |= (uint64_t)(a != 0) << k;
                }
                memset(e.S, 0, sizeof(long) * (size_t)kn);
                lazy = act & one;
                if (lazy) one_slot_counts(&e, C, Rl, i, lazy, e.nup, e.ndn);
                for (uint64_t a = lazy; a; a &= a - 1) {
                    const int k = __builtin_ctzll(a);
                    e.S[k] = e.xs[k];
                    any += e.xs[k];
                }
                for (act &= ~one; act; act &= act - 1) {
                    const int k = __builtin_ctzll(act);
                    e.S[k] = row_counts(&e, cs, k, i, 0, C, e.cnt + (size_t)k * C,
                                        e.sgn + (size_t)k * C, merge ? e.nup : NULL,
                                        merge ? e.ndn : NULL);
                    any += e.S[k];
                }
            } else {
                for (int k = 0; k < kn; ++k) {
                    if (cs->sign_mode) {
                        e.S[k] = e.vi[k].BL ? routed_counts(&e, cs, k, i, merge) : 0;
                    } else {
                        e.S[k] = e.vi[k].BL ? row_counts(&e, cs, k, i, 0, C,
                                                         e.cnt + (size_t)k * C,
                                                         e.sgn + (size_t)k * C,
                                                         merge ? e.nup : NULL, merge ? e.ndn : NULL)
                                            : 0;
                    }
                    any += e.S[k];
                    /* the running counts of the columns read right after vector k (pieces) */
                    for (; e.pc_ok && evr < e.ev1 && cs->snap->vec[evr] == k0 + k; ++evr)
                        e.rup[evr] = e.nup[cs->snap->col[evr]],
                        e.rdn[evr] = e.ndn[cs->snap->col[evr]];
                }
            }
            int ev = ev0;
            const uint8_t *done = NULL; /* reads snapshot by pieces_merge */
            if (!any) {
                for (int k = 0; k < kn; ++k)
                    take_snapshots(cs, i, k0 + k, w_row, &ev, done);
                continue;
            }
            if (merge) {
                /* a cell's pulses over the chunk as one step where no bound is reachable
                 * (not the snapshot columns: they are read between vectors) */
                size_t M = rpu_device_row_span_ok(dev, i, dev_row, e.nup, e.ndn, e.mrg);
                for (int q = 0; cs->snap && q < cs->snap->n_excl; ++q) {
                    const int j = cs->snap->excl[q];
                    M -= e.mrg[j];
                    e.mrg[j] = 0;
                }
                if (M > 0) {
                    const float *xi = NULL;
                    if (npp > 0)
                        xi = values_at(&t->ustream,
                                       cs->base + (uint64_t)k0 * cs->stride + cs->qoff + L->span +
                                           row * L->row_write,
                                       0, M * (size_t)npp, e.xi, 1);
                    rpu_device_row_span(dev, i, dev_row, e.nup, e.ndn, e.mrg, xi);
                }
                int rmerged = 0; /* read columns merged piece by piece */
                if (e.pc_ok) {
                    rmerged = pieces_merge(t, &e, cs, k0, i, dev_row);
                    pieces_take_counts(&e, C);
                    done = e.evd;
                }
                /* the cells left (pulses, not merged) and the columns [j0, j1) they span */
                int nl = 0;
                j0 = C, j1 = 0;
                for (int j = 0; j < C; ++j) {
                    e.lst[nl] = j;
                    const int left = !e.mrg[j] && (e.nup[j] | e.ndn[j]);
                    nl += left;
                    if (left) j0 = j0 < j ? j0 : j, j1 = j + 1;
                }
                if (nl * 64 <= C) {
                    /* few cells left: vector by vector over a list of them */
                    if (!cs->snap && nl == 0) continue; /* (no pulse left, nothing to read) */
                    /* the vectors that pulse a listed cell (the others leave the row as it
                     * is), and their normals in one batch: at most their pulses' number
                     * (sparse_row uses one per pass) */
                    int nh = 0;
                    size_t need = 0;
                    if (lazy) { /* the listed cells as a column set, for the one-slot vectors */
                        memset(e.lm, 0, sizeof(uint64_t) * (size_t)e.CW);
                        for (int q = 0; q < nl; ++q)
                            e.lm[e.lst[q] / 64] |= 1ull << (e.lst[q] % 64);
                    }
                    for (int k = 0; nl > 0 && k < kn; ++k) {
                        if (!e.S[k]) continue;
                        uint8_t *cnt = e.cnt + (size_t)k * C;
                        size_t pk = 0;
                        if ((lazy >> k) & 1u) {
                            /* one pulse on each listed cell of x's column set */
                            const uint64_t *b = e.xb + (size_t)k * 2 * e.CW;
                            for (int w = 0; w < e.CW; ++w)
                                pk += (size_t)__builtin_popcountll((b[w] | b[e.CW + w]) & e.lm[w]);
                            if (!pk) continue;
                            counts_at(&e, cs, k, i, e.lst, nl, cnt, e.sgn + (size_t)k * C);
                        } else {
                            for (int q = 0; q < nl; ++q)
                                pk += cnt[e.lst[q]];
                            if (!pk) continue;
                        }
                        e.hv[nh++] = k0 + k;
                        need = pk > need ? pk : need;
                    }
                    const bool pre = npp > 0 && nh > 0 && need <= HIT_ROOM;
                    if (pre)
                        rpu_rng_rows_at(&t->ustream,
                                        cs->base + cs->qoff + L->c2c + row * L->row_c2c,
                                        cs->stride, e.hv, (size_t)nh, need, 1, e.hn, HIT_ROOM);
                    for (int h = 0; h < nh && !cs->snap; ++h) { /* (no snapshots: these only) */
                        const int k = (int)(e.hv[h] - k0);
                        sparse_row(t, &e, cs, i, k, nl, dev_row,
                                   cs->base + (uint64_t)(k0 + k) * cs->stride + cs->qoff, merge,
                                   pre ? e.hn + (size_t)h * HIT_ROOM : NULL);
                    }
                    for (int h = 0, k = 0; cs->snap && k < kn; ++k) {
                        if (h < nh && e.hv[h] == k0 + k) {
                            sparse_row(t, &e, cs, i, k, nl, dev_row,
                                       cs->base + (uint64_t)(k0 + k) * cs->stride + cs->qoff,
                                       merge, pre ? e.hn + (size_t)h * HIT_ROOM : NULL);
                            ++h;
                        }
                        take_snapshots(cs, i, k0 + k, w_row, &ev, done);
                    }
                    continue;
                }
                for (; lazy; lazy &= lazy - 1) {
                    const int k = __builtin_ctzll(lazy);
                    row_counts(&e, cs, k, i, 0, C, e.cnt + (size_t)k * C, e.sgn + (size_t)k * C,
                               NULL, NULL);
                }
                for (int k = 0; (M > 0 || rmerged > 0) && k < kn; ++k) {
                    if (!e.S[k]) continue;
                    uint8_t *cnt = e.cnt + (size_t)k * C;
                    long S = 0;
                    for (int j = j0; j < j1; ++j) {
                        cnt[j] = e.mrg[j] ? 0 : cnt[j];
                        S += cnt[j];
                    }
                    e.S[k] = S;
                }
            }
            for (int k = 0; k < kn; ++k) {
                const long S = e.S[k];
                if (S == 0) {
                    take_snapshots(cs, i, k0 + k, w_row, &ev, done);
                    continue;
                }
                const uint8_t *cnt = e.cnt + (size_t)k * C;
                const int8_t *sg = e.sgn + (size_t)k * C;
                const uint64_t vbase = cs->base + (uint64_t)(k0 + k) * cs->stride + cs->qoff;
                const size_t P =
                    merge ? rpu_device_row_passes_range(dev, i, j0, j1, dev_row, cnt, sg, e.pas)
                          : (size_t)S;
                const float *xi = NULL;
                if (npp > 0)
                    xi = values_at(&t->ustream, vbase + L->c2c + row * L->row_c2c, 0,
                                   P * (size_t)npp, e.xi, 1);
                const float *wn = NULL;
                if (dev->persistent_weights)
                    wn = values_at(&t->ustream, vbase + L->write + row * L->row_write, 0, (size_t)C,
                                   e.wn, 1);
                if (merge)
                    rpu_device_pulse_row_merged_range(dev, i, j0, j1, w_row, cnt, e.pas, sg, xi,
                                                      wn ? wn + j0 : NULL);
                else
                    rpu_device_pulse_row_range(dev, i, j0, j1, w_row, cnt, sg, xi,
                                               wn ? wn + j0 : NULL);
                take_snapshots(cs, i, k0 + k, w_row, &ev, done);
            }
        }
    }
    return RPU_OK;
}

rpu_status rpu_update_pulses(rpu_tile *t, const rpu_update_params *up, float g, const rpu_rng *rng,
                             uint64_t base, uint64_t stride, const float *x, const float *d, int n,
                             float lr, const rpu_pulse_target *tg, int ntg, const uint32_t *mask) {
    const rpu_pulse_type pt = up->pulse_type;
    if (pt != RPU_PULSE_STOCHASTIC_COMPRESSED && pt != RPU_PULSE_STOCHASTIC &&
        pt != RPU_PULSE_MEAN_COUNT && pt != RPU_PULSE_DETERMINISTIC_IMPLICIT)
        return RPU_FAIL(RPU_ERR_INTERNAL, "pulsed engine called with pulse type %d", (int)pt);
    if (n <= 0 || lr == 0) return RPU_OK;
    const int BLmax = call_bl(up, g, lr);
    if (BLmax > RPU_UPDATE_MAX_BL)
        return RPU_FAIL(RPU_ERR_UNSUPPORTED,
                        "pulse train of %d slots (lr %g / granularity %g) exceeds %d; set "
                        "fixed_bl = true or update_bl_management = true",
                        BLmax, (double)lr, (double)g, RPU_UPDATE_MAX_BL);
    const int C = t->p.in_size, R = t->p.out_size;
    call_shape cs = {.C = C,
                     .R = R,
                     .Rl = R,
                     .r0 = 0,
                     .w = NULL,
                     .dev = NULL,
                     .L = rpu_update_layout_for(R, C),
                     .base = base,
                     .stride = stride,
                     .up = up,
                     .g = g,
                     .rng = rng};
    const int NW = (BLmax + 63) / 64;
    long K = rpu_update_chunk(R, C);
    if (K > n) K = n;
    engine_ws e = {0};
    /* at least two count rows: the row's counts and the target's */
    RPU_CHECK(engine_workspace(t, &e, C, R, K < 2 ? 2 : (int)K, NW, BLmax, 0));
    const rpu_update_layout *L = &cs.L;
    /* the signs of a routed target's counts: all up */
    int8_t *up_signs = e.sgn + (size_t)C;
    memset(up_signs, -1, (size_t)C);
    for (int k0 = 0; k0 < n; k0 += (int)K) {
        const int kn = n - k0 < (int)K ? n - k0 : (int)K;
        for (int k = 0; k < kn; ++k)
            prepare_vector(t, &e, &cs, k, x + (size_t)(k0 + k) * C, d + (size_t)(k0 + k) * R, lr,
                           base + (uint64_t)(k0 + k) * stride, true);
        /* one vector of a sparse x to one target (a compound's write): the rows' few normals
         * from one batch of their first blocks */
        const bool pre_rows = kn == 1 && ntg == 1 && e.vi[0].BL && e.vi[0].j1 - e.vi[0].j0 < C &&
                              rpu_device_normals_per_pulse(tg[0].dev) > 0 &&
                              (!mask || (mask[k0] & 1u));
        if (pre_rows)
            rpu_rng_normal_blocks(rng, base + (uint64_t)k0 * stride + L->c2c, L->row_c2c, (size_t)R,
                                  e.pre);
        for (int i = 0; i < R; ++i) {
            for (int k = 0; k < kn; ++k) {
                if (!e.vi[k].BL) continue;
                /* the columns where x may pulse: the whole row, or a sparse x's few */
                const int j0 = e.vi[k].j0, j1 = e.vi[k].j1, m = j1 - j0;
                if (m <= 0) continue;
                uint8_t *cnt = e.cnt;
                int8_t *sg = e.sgn;
                const long Sall = row_counts(&e, &cs, k, i, j0, j1, cnt, sg, NULL, NULL);
                if (Sall == 0) continue;
                const uint64_t vbase = base + (uint64_t)(k0 + k) * stride;
                const uint32_t msk = mask ? mask[k0 + k] : ~0u;
                for (int q = 0; q < ntg; ++q) {
                    if (!((msk >> q) & 1u)) continue;
                    const rpu_device_state *dev = tg[q].dev;
                    /* the target's counts: all, or one sign as up steps (one_sided) */
                    const uint8_t *cq = cnt;
                    const int8_t *sq = sg;
                    long S = Sall;
                    if (tg[q].sign_mode != 0) {
                        uint8_t *cf = e.cnt + (size_t)C;
                        S = keep_sign(cnt + j0, sg + j0, m, tg[q].sign_mode, cf + j0);
                        cq = cf;
                        sq = up_signs;
                    }
                    if (S == 0) continue;
                    const uint64_t qb = vbase + (uint64_t)q * L->total;
                    const int npp = rpu_device_normals_per_pulse(dev);
                    const float *xi = NULL;
                    if (pre_rows && (size_t)S * (size_t)npp <= 4)
                        xi = e.pre + 4 * (size_t)i;
                    else if (npp > 0)
                        xi = values_at(rng, qb + L->c2c + (uint64_t)i * L->row_c2c, 0,
                                       (size_t)S * (size_t)npp, e.xi, 1);
                    const float *wn = NULL;
                    if (dev->persistent_weights)
                        wn = values_at(rng, qb + L->write + (uint64_t)i * L->row_write,
                                       (uint64_t)j0, (size_t)m, e.wn, 1);
                    rpu_device_pulse_row_range(dev, i, j0, j1, tg[q].w + (size_t)i * C, cq, sq, xi,
                                               wn);
                }
            }
        }
    }
    return RPU_OK;
}

/* The whole-tile call shape of compound target tg (number q) at base, stride blocks per
 * vector (0: L.total). */
static call_shape target_shape(rpu_tile *t, const rpu_update_params *up, float g, uint64_t base,
                               uint64_t stride, int q, const rpu_pulse_target *tg) {
    const int C = t->p.in_size, R = t->p.out_size;
    call_shape cs = {.C = C,
                     .R = R,
                     .Rl = R,
                     .r0 = 0,
                     .w = tg->w,
                     .dev = tg->dev,
                     .L = rpu_update_layout_for(R, C),
                     .base = base,
                     .stride = stride,
                     .up = up,
                     .g = g,
                     .rng = &t->ustream,
                     .sign_mode = tg->sign_mode};
    if (cs.stride == 0) cs.stride = cs.L.total;
    cs.qoff = (uint64_t)q * cs.L.total;
    return cs;
}

rpu_status rpu_update_pulses_target(rpu_tile *t, const rpu_update_params *up, float g,
                                    uint64_t base, uint64_t stride, int q, const float *x,
                                    const float *d, int n, float lr, const rpu_pulse_target *tg) {
    if (n <= 0 || lr == 0) return RPU_OK;
    const call_shape cs = target_shape(t, up, g, base, stride, q, tg);
    if (cs.stride < cs.qoff + cs.L.total)
        return RPU_FAIL(RPU_ERR_INTERNAL, "update target %d outside a vector's %llu blocks", q,
                        (unsigned long long)cs.stride);
    return pulsed_batch(t, x, d, n, lr, &cs);
}

rpu_status rpu_update_pulses_one(rpu_tile *t, const rpu_update_params *up, float g, uint64_t base,
                                 const float *x, const float *d, int n, float lr,
                                 const rpu_pulse_target *tg) {
    return rpu_update_pulses_target(t, up, g, base, 0, 0, x, d, n, lr, tg);
}

rpu_status rpu_update_pulses_snap(rpu_tile *t, const rpu_update_params *up, float g, uint64_t base,
                                  const float *x, const float *d, int n, const float *lrs,
                                  const rpu_pulse_target *tg, const rpu_read_snap *snap) {
    if (n <= 0) return RPU_OK;
    for (int e = 1; snap && e < snap->n; ++e)
        if (snap->vec[e] < snap->vec[e - 1])
            return RPU_FAIL(RPU_ERR_INTERNAL, "update snapshots out of vector order");
    call_shape cs = target_shape(t, up, g, base, 0, 0, tg);
    cs.lrs = lrs;
    cs.snap = snap;
    return pulsed_batch(t, x, d, n, 0.0f, &cs);
}

bool rpu_tile_update_row_splittable(const rpu_tile *t) {
    /* every single-device update: the pulsed engine draws each row's numbers at addresses of
     * their own. Compounds are not: a transfer reads whole columns and writes them to all
     * rows, a refresh likewise, so every holder runs the whole update */
    return t != NULL && t->cmp == NULL;
}

int rpu_tile_update_row_block(const rpu_tile *t) {
    if (!t) return RPU_UPDATE_ROW_BLOCK;
    const rpu_pulse_type pt = t->cfg.update.pulse_type;
    return t->dev.pulsed && pt != RPU_PULSE_NONE && pt != RPU_PULSE_NONE_WITH_DEVICE
               ? 1
               : RPU_UPDATE_ROW_BLOCK;
}

rpu_status rpu_update_scaled_gradient(rpu_tile *t, const float *d, const float *scales, int n,
                                      int R, float lr, const float **du_out, float *lr_out) {
    /* logical SGD through the mapping scales (spec §7): d / (scales · lr_scale), lr · lr_scale,
     * over every row of the tile */
    float lr_scale = 1.0f;
    if (t->cfg.mapping.weight_scaling_lr_compensation) {
        double mean = 0;
        for (int i = 0; i < R; ++i)
            mean += scales[i];
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
    *du_out = du;
    for (int k = 0; k < n; ++k)
        for (int i = 0; i < R; ++i)
            du[(size_t)k * R + i] = d[(size_t)k * R + i] / (scales[i] * lr_scale);
    *lr_out = lr * lr_scale;
    t->ucalls++;
    return RPU_OK;
}

/* The update of rows [r0, r0 + Rl) of a tile of R rows whose weights start at w (row r0)
 * and whose device state is dev (row 0 = row r0): d [n, R] and scales [R] of the whole
 * tile. */
static rpu_status update_core(rpu_tile *t, const float *x, const float *d, const float *scales,
                              int n, float lr, float *w, rpu_device_state *dev, int Rl, int r0,
                              int R) {
    const int C = t->p.in_size;
    const rpu_update_params *up = &t->cfg.update;
    if (!(lr >= 0) || !isfinite(lr))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update: learning rate %g must be >= 0", (double)lr);
    if (n == 0 || lr == 0) return RPU_OK;

    const float *du = NULL;
    float lr_t = 0;
    RPU_CHECK(rpu_update_scaled_gradient(t, d, scales, n, R, lr, &du, &lr_t));

    if (!dev->pulsed || up->pulse_type == RPU_PULSE_NONE) {
        /* exact W -= lr Dᵀ X, no bounds, in GEMMs of the whole tile's blocks of
         * RPU_UPDATE_ROW_BLOCK rows: a row's result is then the same whichever rows a call
         * updates */
        const int r1 = r0 + Rl;
        for (int i0 = r0; i0 < r1;) {
            const int next = (i0 / RPU_UPDATE_ROW_BLOCK + 1) * RPU_UPDATE_ROW_BLOCK;
            const int rows = (next < r1 ? next : r1) - i0;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, C, n, -lr_t, du + i0, R, x,
                        C, 1.0f, w + (size_t)(i0 - r0) * C, C);
            i0 += rows;
        }
        t->abs_w_valid = 0;
        return RPU_OK;
    }
    call_shape cs = {.C = C,
                     .R = R,
                     .Rl = Rl,
                     .r0 = r0,
                     .w = w,
                     .dev = dev,
                     .L = rpu_update_layout_for(R, C),
                     .base = t->unext,
                     .up = up,
                     .g = t->dev.granularity,
                     .rng = &t->ustream};
    cs.stride = cs.L.total;
    t->unext += (uint64_t)n * cs.L.total;
    if (up->pulse_type == RPU_PULSE_NONE_WITH_DEVICE) {
        for (int k = 0; k < n; ++k) {
            cblas_sger(CblasRowMajor, Rl, C, -lr_t, du + (size_t)k * R + r0, 1, x + (size_t)k * C,
                       1, w, C);
            rpu_device_apply_bounds(dev, w, &t->ustream,
                                    cs.base + (uint64_t)k * cs.L.total + cs.L.write);
        }
        t->abs_w_valid = 0;
        return RPU_OK;
    }
    rpu_status st = pulsed_batch(t, x, du, n, lr_t, &cs);
    t->abs_w_valid = 0;
    return st;
}

rpu_status rpu_tile_update_impl(rpu_tile *t, const float *x, const float *d, int n, float lr,
                                int r0, int r1) {
    const int R = t->p.out_size, C = t->p.in_size, B = rpu_tile_update_row_block(t);
    if (r0 < 0 || r1 > R || r0 > r1 || (r0 % B && r0 != R) || (r1 % B && r1 != R))
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_tile_update_rows: rows [%d, %d) of %d not in blocks of %d", r0, r1, R,
                        B);
    if (!(lr >= 0) || !isfinite(lr))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update: learning rate %g must be >= 0", (double)lr);
    if (t->cmp && (r0 != 0 || r1 != R))
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_tile_update_rows: rows [%d, %d) of %d: a compound device (%s) "
                        "updates whole tiles only",
                        r0, r1, R,
                        rpu_device_type_is_transfer(t->cfg.device.type)    ? "transfer"
                        : t->cfg.device.type == RPU_DEVICE_MIXED_PRECISION ? "mixed_precision"
                                                                           : "unit cell");
    if (r0 == r1) {
        /* no rows: the counters still advance as in the whole update */
        if (n > 0 && lr > 0) {
            t->ucalls++;
            if (t->dev.pulsed && t->cfg.update.pulse_type != RPU_PULSE_NONE)
                t->unext += (uint64_t)n * rpu_update_layout_for(R, C).total;
        }
        return RPU_OK;
    }
    rpu_device_state view;
    RPU_CHECK(rpu_device_rows_view(&t->dev, r0, r1, &view));
    return update_core(t, x, d, t->scales, n, lr, t->w + (size_t)r0 * C, &view, r1 - r0, r0, R);
}

rpu_status rpu_tile_update_slice(rpu_tile *t, const float *x, const float *d, const float *scales,
                                 int n, float lr, int r0, int rows_total) {
    const int Rl = t->p.out_size;
    if (t->cmp)
        return RPU_FAIL(RPU_ERR_UNSUPPORTED,
                        "rpu_tile_update_slice: compound devices cannot be split by rows");
    if (r0 < 0 || rows_total < Rl || r0 > rows_total - Rl || !scales || t->dev.row0 != r0 ||
        (t->dev.pulsed && t->dev.rows_total != rows_total))
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_tile_update_slice: rows [%d, %d) are not a slice of a tile of %d "
                        "rows (the device state holds rows from %d of %d)",
                        r0, r0 + Rl, rows_total, t->dev.row0, t->dev.rows_total);
    return update_core(t, x, d, scales, n, lr, t->w, &t->dev, Rl, r0, rows_total);
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
