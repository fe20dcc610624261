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
 * chunk (update_trains.c), then row by row every vector of the chunk in batch order: the row's
 * pulse counts, its normals, the device's row kernel. Cells do not interact, and each cell still
 * sees its vectors in batch order, so this is the vector-by-vector update; the row's weights and
 * device state stay in cache over the chunk instead of streaming the whole tile through memory once
 * per vector.
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
#include "update_engine.h"

#include "error_impl.h"

#include <cblas.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Whether the d train of row i (slice index) of vector k of the chunk has a slot (the
 * pulse-train types; without one the row has no pulses). */
static bool d_train_any(const engine_ws *e, int Rl, int k, int i) {
    const uint64_t *mdi = e->md + ((size_t)k * Rl + i) * e->NW;
    uint64_t any = 0;
    for (int w = 0; w < e->vi[k].nw; ++w)
        any |= mdi[w];
    return any != 0;
}

/* Whether row i of vector k may pulse: with pulse trains, only if its d train has a slot
 * (row_counts returns 0 otherwise); the count-based types: yes. */
static bool pulses_possible(const engine_ws *e, const call_shape *cs, int k, int i) {
    const rpu_pulse_type pt = cs->up->pulse_type;
    if (pt != RPU_PULSE_STOCHASTIC_COMPRESSED && pt != RPU_PULSE_STOCHASTIC) return true;
    return d_train_any(e, cs->Rl, k, i);
}

/* The first block of vector k's draws: bases[k], or base + k * stride (bases NULL). */
static inline uint64_t vector_first(const uint64_t *bases, uint64_t base, uint64_t stride, int k) {
    return bases ? bases[k] : base + (uint64_t)k * stride;
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
        if (!d_train_any(e, Rl, k, i)) return 0;
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

/* Row i's pulses up and down over the one-slot vectors of the set act (a chunk's vectors,
 * as bits, whose d pulse of row i fires; rpu_engine_one_slot_bits made their column sets)
 * added to nup, ndn [C]: vector k pulses down (sign sd_i sx_j > 0) the columns of
 * x's sign sd_i, up the others. The same counts as row_counts adds. */
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
        const __mmask32 st = C - j >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (C - j)) - 1u);
        __m512i u = _mm512_maskz_loadu_epi16(st, nup + j),
                d = _mm512_maskz_loadu_epi16(st, ndn + j);
        for (int q = 0; q < m; ++q) {
            d = _mm512_mask_add_epi16(d, (__mmask32)(dn[q][w] >> sh), d, one);
            u = _mm512_mask_add_epi16(u, (__mmask32)(upb[q][w] >> sh), u, one);
        }
        _mm512_mask_storeu_epi16(nup + j, st, u);
        _mm512_mask_storeu_epi16(ndn + j, st, d);
    }
#else
    (void)C; /* (the bit loop visits the set columns only) */
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
                : rpu_rng_values_at(&t->ustream,
                                    vbase + cs->L.c2c + (uint64_t)(cs->r0 + i) * cs->L.row_c2c, 0,
                                    P, e->xi, 1);
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
    /* the merged steps of rpu_device_span_ok / rpu_device_pulses_span inline (a merging
     * device: pieces exist only then) */
    const size_t c0 = (size_t)i * C;
    const float *up = dev->dwmin_up + c0, *dn = dev->dwmin_down + c0;
    const float *lo = dev->min_bound + c0, *hi = dev->max_bound + c0;
    const float sigma = dev->par.dw_min_std;
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
                if (!rpu_span_ok(w, up[j], dn[j], lo[j], hi[j], (float)nu, (float)nd, sigma)) {
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
                w = rpu_span_step(w, up[j], dn[j], lo[j], hi[j], (float)nu, (float)nd, sigma,
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

/* Whether one-slot vector k (rpu_engine_one_slot_bits) pulses column j of a row whose d
 * pulse fires. */
static inline bool one_slot_hits(const engine_ws *e, int k, int j) {
    const uint64_t *b = e->xb + (size_t)k * 2 * e->CW;
    return (((b[j / 64] | b[e->CW + j / 64]) >> (j % 64)) & 1u) != 0;
}

/* The vectors of one (one-slot, as bits) up to each read of the chunk's [ev0, ev1) whose x
 * pulses the read column, x > 0 and x < 0, as bits into e->evm: a row's running counts at
 * the reads then take a few bit operations (pieces_running). The same for every row. */
static void pieces_one_slot(engine_ws *e, const call_shape *cs, int k0, uint64_t one) {
    const rpu_read_snap *s = cs->snap;
    const int CW = e->CW;
    for (int ev = e->ev0; ev < e->ev1; ++ev) {
        const int j = s->col[ev], r = s->vec[ev] - k0, w = j / 64, sh = j % 64;
        const uint64_t upto = r >= 63 ? ~0ull : (2ull << r) - 1u;
        uint64_t P = 0, N = 0;
        for (uint64_t a = one & upto; a; a &= a - 1) {
            const int k = __builtin_ctzll(a);
            const uint64_t *b = e->xb + (size_t)k * 2 * CW;
            P |= ((b[w] >> sh) & 1u) << k;
            N |= ((b[CW + w] >> sh) & 1u) << k;
        }
        e->evm[2 * (size_t)ev] = P, e->evm[2 * (size_t)ev + 1] = N;
    }
}

/* Row i's running counts up and down of the read columns right after each read of the
 * chunk (e->rup, e->rdn, holding those of the vectors whose counts are written): plus the
 * lazy one-slot vectors', as the pulse-by-pulse sums of row_counts give them, from e->evm
 * and the signs of their d pulses (vector k pulses down the columns of x's sign sd_i,
 * one_slot_counts). */
static void pieces_running(engine_ws *e, const call_shape *cs, int i, uint64_t lazy) {
    const int Rl = cs->Rl;
    uint64_t neg = 0; /* the lazy vectors whose d pulse of row i is negative */
    for (uint64_t a = lazy; a; a &= a - 1) {
        const int k = __builtin_ctzll(a);
        neg |= (uint64_t)(e->sd[(size_t)k * Rl + i] < 0) << k;
    }
    for (int ev = e->ev0; ev < e->ev1; ++ev) {
        const uint64_t P = e->evm[2 * (size_t)ev] & lazy, N = e->evm[2 * (size_t)ev + 1] & lazy;
        e->rup[ev] += __builtin_popcountll((N & ~neg) | (P & neg));
        e->rdn[ev] += __builtin_popcountll((P & ~neg) | (N & neg));
    }
}

/* The counts of the partly merged read columns (pieces_merge) before their first single
 * vector: out of cnt and S. A lazy one-slot vector (*lazy) that pulses such a column there
 * gets its counts of row i written first (and leaves *lazy); the others have none there. */
static void pieces_take_counts(engine_ws *e, const call_shape *cs, int i, uint64_t *lazy) {
    const int C = cs->C;
    for (int q = 0; q < e->npart; ++q) {
        const int j = e->part[2 * q], from = e->part[2 * q + 1];
        for (int v = 0; v < from; ++v) {
            if ((*lazy >> v) & 1u) {
                if (!one_slot_hits(e, v, j)) continue;
                row_counts(e, cs, v, i, 0, C, e->cnt + (size_t)v * C, e->sgn + (size_t)v * C, NULL,
                           NULL);
                *lazy &= ~(1ull << v);
            }
            if (!e->S[v]) continue; /* (its counts were not written) */
            e->S[v] -= e->cnt[(size_t)v * C + j];
            e->cnt[(size_t)v * C + j] = 0;
        }
    }
}

/* The cycle-to-cycle normals of one row of vectors k, k + 1, ... of the chunk in one batch
 * of blocks: vector v's e->S[v] npp values (npp normals per pulse), those of its range at
 * block first + (v - k) stride (first: vector k's), at e->rn + e->roff[v], as long as the
 * batch holds ROW_ROOM values. Returns the end of the run: the first vector not drawn (k
 * when vector k alone needs more; its caller draws it itself). */
static int row_normals(const rpu_rng *rng, engine_ws *e, uint64_t first, uint64_t stride, int k,
                       int kn, int npp) {
    size_t nb = 0;
    int v = k;
    for (; v < kn; ++v) {
        if (!e->S[v]) continue;
        const size_t need = (size_t)rpu_rng_blocks_for((size_t)e->S[v] * (size_t)npp);
        if (4 * (nb + need) > ROW_ROOM) break;
        const int64_t b0 = (int64_t)((uint64_t)(v - k) * stride);
        e->roff[v] = (int32_t)(4 * nb);
        for (size_t q = 0; q < need; ++q)
            e->rblk[nb + q] = b0 + (int64_t)q;
        nb += need;
    }
    if (nb) rpu_rng_normal_block_list(rng, first, e->rblk, nb, e->rn);
    return v;
}

/* The pulsed update of the slice's rows for a batch x [n, C], d [n, R] (engine units). */
static rpu_status pulsed_batch(rpu_tile *t, const float *x, const float *d, int n, float lr,
                               const call_shape *cs) {
    const rpu_update_params *up = cs->up;
    const rpu_pulse_type pt = up->pulse_type;
    if (pt != RPU_PULSE_STOCHASTIC_COMPRESSED && pt != RPU_PULSE_STOCHASTIC &&
        pt != RPU_PULSE_MEAN_COUNT && pt != RPU_PULSE_DETERMINISTIC_IMPLICIT)
        return RPU_FAIL(RPU_ERR_INTERNAL, "pulsed engine called with pulse type %d", (int)pt);
    int BLmax = rpu_engine_call_bl(up, cs->g, lr);
    for (int k = 0; cs->lrs && k < n; ++k) {
        const int b = rpu_engine_call_bl(up, cs->g, cs->lrs[k]);
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
    RPU_CHECK(rpu_engine_workspace(t, &e, C, Rl, (int)K, NW, BLmax, NPC));
    const rpu_update_layout *L = &cs->L;
    const rpu_device_state *dev = cs->dev;
    const int npp = rpu_device_normals_per_pulse(dev);
    const bool merge = !t->update_per_pulse && rpu_device_merges_pulses(dev);
    const bool trains = pt == RPU_PULSE_STOCHASTIC_COMPRESSED || pt == RPU_PULSE_STOCHASTIC;
    for (int k0 = 0; k0 < n; k0 += (int)K) {
        const int kn = n - k0 < (int)K ? n - k0 : (int)K;
        e.chunk0 = k0;
        rpu_engine_predraw_chunk(&e, cs, k0, kn, x + (size_t)k0 * C, d + (size_t)k0 * R, lr);
        for (int k = 0; k < kn; ++k)
            rpu_engine_prepare_vector(t, &e, cs, k, x + (size_t)(k0 + k) * C,
                                      d + (size_t)(k0 + k) * R, cs->lrs ? cs->lrs[k0 + k] : lr,
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
        if (merge && trains && !cs->sign_mode)
            for (int q = 0; q < nact; ++q) {
                const int k = (int)e.grp[q];
                if (e.vi[k].BL != 1) continue;
                rpu_engine_one_slot_bits(&e, C, k);
                one |= 1ull << k;
            }
        if (e.pc_ok && one) pieces_one_slot(&e, cs, k0, one);
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
            int evr = ev0;     /* (pieces) */
            uint64_t lazy = 0; /* vectors whose counts of the row are not written yet */
            if (!cs->sign_mode && trains) {
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
                /* the vectors whose counts are written, in order; the running counts of
                 * the columns read after each vector (pieces): theirs first */
                for (uint64_t a = act & ~one; a; a &= a - 1) {
                    const int k = __builtin_ctzll(a);
                    for (; e.pc_ok && evr < e.ev1 && cs->snap->vec[evr] < k0 + k; ++evr)
                        e.rup[evr] = e.nup[cs->snap->col[evr]],
                        e.rdn[evr] = e.ndn[cs->snap->col[evr]];
                    e.S[k] =
                        row_counts(&e, cs, k, i, 0, C, e.cnt + (size_t)k * C, e.sgn + (size_t)k * C,
                                   merge ? e.nup : NULL, merge ? e.ndn : NULL);
                    any += e.S[k];
                }
                for (; e.pc_ok && evr < e.ev1; ++evr)
                    e.rup[evr] = e.nup[cs->snap->col[evr]], e.rdn[evr] = e.ndn[cs->snap->col[evr]];
                /* the one-slot vectors' counts added (and to the running counts) */
                lazy = act & one;
                if (lazy) one_slot_counts(&e, C, Rl, i, lazy, e.nup, e.ndn);
                for (uint64_t a = lazy; a; a &= a - 1) {
                    const int k = __builtin_ctzll(a);
                    e.S[k] = e.xs[k];
                    any += e.xs[k];
                }
                if (e.pc_ok && lazy) pieces_running(&e, cs, i, lazy);
            } else {
                for (int k = 0; k < kn; ++k) {
                    if (cs->sign_mode) {
                        e.S[k] = e.vi[k].BL ? routed_counts(&e, cs, k, i, merge) : 0;
                    } else {
                        e.S[k] = e.vi[k].BL ? row_counts(&e, cs, k, i, 0, C, e.cnt + (size_t)k * C,
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
                        xi = rpu_rng_values_at(&t->ustream,
                                               cs->base + (uint64_t)k0 * cs->stride + cs->qoff +
                                                   L->span + row * L->row_write,
                                               0, M * (size_t)npp, e.xi, 1);
                    rpu_device_row_span(dev, i, dev_row, e.nup, e.ndn, e.mrg, xi);
                }
                int rmerged = 0; /* read columns merged piece by piece */
                if (e.pc_ok) {
                    rmerged = pieces_merge(t, &e, cs, k0, i, dev_row);
                    pieces_take_counts(&e, cs, i, &lazy);
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
                    /* the vectors that pulse a listed cell (the others leave the row as it
                     * is), and their normals in one batch: at most their pulses' number
                     * (sparse_row uses one per pass) */
                    int nh = 0;
                    size_t need = 0;
                    if (lazy && nl > 0) { /* the listed cells as a column set (one-slot vectors) */
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
                                        cs->base + cs->qoff + L->c2c + row * L->row_c2c, cs->stride,
                                        e.hv, (size_t)nh, need, 1, e.hn, HIT_ROOM);
                    /* each pulsing vector in order, the reads of the vectors before it
                     * (snapshots) first */
                    int k = 0;
                    for (int h = 0; h < nh; ++h) {
                        const int kh = (int)(e.hv[h] - k0);
                        for (; cs->snap && k < kh; ++k)
                            take_snapshots(cs, i, k0 + k, w_row, &ev, done);
                        sparse_row(t, &e, cs, i, kh, nl, dev_row,
                                   cs->base + (uint64_t)(k0 + kh) * cs->stride + cs->qoff, merge,
                                   pre ? e.hn + (size_t)h * HIT_ROOM : NULL);
                    }
                    for (; cs->snap && k < kn; ++k)
                        take_snapshots(cs, i, k0 + k, w_row, &ev, done);
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
            int rk = 0; /* the vectors [.., rk) whose normals of the row are in e.rn */
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
                if (npp > 0) {
                    /* without merging a vector needs S normals per pulse: those of the next
                     * vectors too, in one batch */
                    const uint64_t c2c = vbase + L->c2c + row * L->row_c2c;
                    if (!merge && k >= rk)
                        rk = row_normals(&t->ustream, &e, c2c, cs->stride, k, kn, npp);
                    xi = !merge && k < rk
                             ? e.rn + e.roff[k]
                             : rpu_rng_values_at(&t->ustream, c2c, 0, P * (size_t)npp, e.xi, 1);
                }
                const float *wn = NULL;
                if (dev->persistent_weights)
                    wn = rpu_rng_values_at(&t->ustream, vbase + L->write + row * L->row_write, 0,
                                           (size_t)C, e.wn, 1);
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
    return rpu_update_pulses_at(t, up, g, rng, base, stride, NULL, x, d, n, lr, tg, ntg, mask);
}

rpu_status rpu_update_pulses_at(rpu_tile *t, const rpu_update_params *up, float g,
                                const rpu_rng *rng, uint64_t base, uint64_t stride,
                                const uint64_t *bases, const float *x, const float *d, int n,
                                float lr, const rpu_pulse_target *tg, int ntg,
                                const uint32_t *mask) {
    const rpu_pulse_type pt = up->pulse_type;
    if (pt != RPU_PULSE_STOCHASTIC_COMPRESSED && pt != RPU_PULSE_STOCHASTIC &&
        pt != RPU_PULSE_MEAN_COUNT && pt != RPU_PULSE_DETERMINISTIC_IMPLICIT)
        return RPU_FAIL(RPU_ERR_INTERNAL, "pulsed engine called with pulse type %d", (int)pt);
    if (n <= 0 || lr == 0) return RPU_OK;
    const int BLmax = rpu_engine_call_bl(up, g, lr);
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
    RPU_CHECK(rpu_engine_workspace(t, &e, C, R, K < 2 ? 2 : (int)K, NW, BLmax, 0));
    const rpu_update_layout *L = &cs.L;
    /* the signs of a routed target's counts: all up */
    int8_t *up_signs = e.sgn + (size_t)C;
    memset(up_signs, -1, (size_t)C);
    /* one target that draws normals per pulse: sparse vectors pre-draw their rows' first */
    const bool pre_target = ntg == 1 && rpu_device_normals_per_pulse(tg[0].dev) > 0;
    for (int k0 = 0; k0 < n; k0 += (int)K) {
        const int kn = n - k0 < (int)K ? n - k0 : (int)K;
        e.chunk0 = k0;
        for (int k = 0; k < kn; ++k)
            rpu_engine_prepare_vector(t, &e, &cs, k, x + (size_t)(k0 + k) * C,
                                      d + (size_t)(k0 + k) * R, lr,
                                      vector_first(bases, base, stride, k0 + k), true);
        /* a vector of a sparse x to one target (a compound's write): its rows' few normals
         * from one batch of their first blocks */
        for (int k = 0; k < kn; ++k) {
            e.vi[k].pre = pre_target && e.vi[k].BL && e.vi[k].j1 - e.vi[k].j0 < C &&
                          (!mask || (mask[k0 + k] & 1u));
            if (!e.vi[k].pre) continue;
            /* only the rows whose d train has a slot can pulse (row_counts); when at most
             * two can, their blocks alone (the same values as the batch of all rows) */
            const uint64_t first = vector_first(bases, base, stride, k0 + k) + L->c2c;
            float *pk = e.pre + 4 * (size_t)k * (size_t)R;
            int live = 0;
            for (int i = 0; i < R && live <= 2; ++i)
                live += pulses_possible(&e, &cs, k, i);
            if (live <= 2) {
                for (int i = 0; i < R; ++i)
                    if (pulses_possible(&e, &cs, k, i))
                        rpu_rng_normal_at(rng, first + (uint64_t)i * L->row_c2c,
                                          pk + 4 * (size_t)i, 4);
            } else {
                rpu_rng_normal_blocks(rng, first, L->row_c2c, (size_t)R, pk);
            }
        }
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
                const uint64_t vbase = vector_first(bases, base, stride, k0 + k);
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
                    if (e.vi[k].pre && (size_t)S * (size_t)npp <= 4)
                        xi = e.pre + 4 * ((size_t)k * (size_t)R + (size_t)i);
                    else if (npp > 0)
                        xi = rpu_rng_values_at(rng, qb + L->c2c + (uint64_t)i * L->row_c2c, 0,
                                               (size_t)S * (size_t)npp, e.xi, 1);
                    const float *wn = NULL;
                    if (dev->persistent_weights)
                        wn = rpu_rng_values_at(rng, qb + L->write + (uint64_t)i * L->row_write,
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

/* The factor the mapping's lr compensation divides d by and multiplies lr with (spec §7):
 * 1 / mean(scales), or 1 without the compensation. */
static float lr_scale_of(const rpu_tile *t, const float *scales, int R) {
    if (!t->cfg.mapping.weight_scaling_lr_compensation) return 1.0f;
    double mean = 0;
    for (int i = 0; i < R; ++i)
        mean += scales[i];
    mean /= R;
    return mean > 0 ? (float)(1.0 / mean) : 1.0f;
}

rpu_status rpu_update_scaled_gradient(rpu_tile *t, const float *d, const float *scales, int n,
                                      int R, int i0, int i1, float lr, const float **du_out,
                                      float *lr_out) {
    /* logical SGD through the mapping scales (spec §7): d / (scales · lr_scale), lr · lr_scale */
    const float lr_scale = lr_scale_of(t, scales, R);
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
        for (int i = i0; i < i1; ++i)
            du[(size_t)k * R + i] = d[(size_t)k * R + i] / (scales[i] * lr_scale);
    *lr_out = lr * lr_scale;
    t->ucalls++;
    return RPU_OK;
}

rpu_status rpu_tile_update_row_maxima(const rpu_tile *t, const float *d, int n, int r0, int r1,
                                      float *dmax) {
    if (!t || (n > 0 && (!d || !dmax)))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update_row_maxima: NULL argument");
    const int R = t->p.out_size;
    if (n < 0 || r0 < 0 || r1 > R || r0 > r1)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update_row_maxima: batch %d, rows [%d, %d) of %d", n,
                        r0, r1, R);
    /* the values the update computes (rpu_update_scaled_gradient), their maximum as the
     * update takes it (update_trains.c: from 0, a NaN skipped): a maximum is exact, so the
     * maximum of the holders' maxima is the whole tile's */
    const float lr_scale = lr_scale_of(t, t->scales, R);
    for (int k = 0; k < n; ++k) {
        float m = 0;
        for (int i = r0; i < r1; ++i) {
            const float a = fabsf(d[(size_t)k * R + i] / (t->scales[i] * lr_scale));
            m = a > m ? a : m;
        }
        dmax[k] = m;
    }
    return RPU_OK;
}

/* The update of rows [r0, r0 + Rl) of a tile of R rows whose weights start at w (row r0)
 * and whose device state is dev (row 0 = row r0): d [n, R] and scales [R] of the whole
 * tile. */
static rpu_status update_core(rpu_tile *t, const float *x, const float *d, const float *dmax,
                              const float *scales, int n, float lr, float *w, rpu_device_state *dev,
                              int Rl, int r0, int R) {
    const int C = t->p.in_size;
    const rpu_update_params *up = &t->cfg.update;
    if (!(lr >= 0) || !isfinite(lr))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update: learning rate %g must be >= 0", (double)lr);
    if (n == 0 || lr == 0) return RPU_OK;

    const float *du = NULL;
    float lr_t = 0;
    /* (with the maxima given, d's other rows may be anything: they are not read) */
    RPU_CHECK(rpu_update_scaled_gradient(t, d, scales, n, R, dmax ? r0 : 0, dmax ? r0 + Rl : R, lr,
                                         &du, &lr_t));

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
                     .rng = &t->ustream,
                     .dmax = dmax};
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

rpu_status rpu_tile_update_impl(rpu_tile *t, const float *x, const float *d, const float *dmax,
                                int n, float lr, int r0, int r1) {
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
    return update_core(t, x, d, dmax, t->scales, n, lr, t->w + (size_t)r0 * C, &view, r1 - r0, r0,
                       R);
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
    return update_core(t, x, d, NULL, scales, n, lr, t->w, &t->dev, Rl, r0, rows_total);
}

rpu_status rpu_tile_weight_grad_rows(const rpu_tile *t, const float *x, const float *d, int n,
                                     rpu_weight_units units, int r0, int r1, float *grad) {
    if (!t || !grad || (n > 0 && (!x || !d)))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_weight_grad: NULL argument");
    if (n < 0) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_weight_grad: batch size %d < 0", n);
    if (units != RPU_WEIGHTS_STORED && units != RPU_WEIGHTS_SCALED)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_weight_grad: unknown weight units %d", (int)units);
    const int R = t->p.out_size, C = t->p.in_size;
    if (r0 < 0 || r1 > R || r0 > r1)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_weight_grad: rows [%d, %d) of %d", r0, r1, R);
    const size_t cells = (size_t)R * C;
    double *acc = (double *)calloc(cells, sizeof(double));
    if (!acc)
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the weight gradient of a %dx%d tile", R,
                        C);
    for (int k = 0; k < n; ++k) {
        const float *xk = x + (size_t)k * C, *dk = d + (size_t)k * R;
        for (int i = r0; i < r1; ++i) {
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

rpu_status rpu_tile_weight_grad(const rpu_tile *t, const float *x, const float *d, int n,
                                rpu_weight_units units, float *grad) {
    return rpu_tile_weight_grad_rows(t, x, d, n, units, 0, t ? t->p.out_size : 0, grad);
}
