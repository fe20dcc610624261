/* Philox-4x32-10 streams and the float transforms built on them.
 *
 * The transforms use their own branch-free approximations of log, sin and cos (no libm),
 * so the numbers are identical on every machine and compiler that follows IEEE-754 single
 * precision, and loops over many values vectorise. */
#include "rpusim/rng.h"

#include <math.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void philox_block(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                uint32_t k1, uint32_t out[4]) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void rpu_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    philox_block(ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1], out);
}

uint64_t rpu_stream_id(uint32_t layer, uint32_t tile, uint32_t purpose) {
    return ((uint64_t)(layer & 0xFFFFFFu) << 40) | ((uint64_t)(tile & 0xFFFFFFu) << 16) |
           (uint64_t)(purpose & 0xFFFFu);
}

void rpu_rng_init(rpu_rng *r, uint64_t seed, uint64_t stream_id) {
    memset(r, 0, sizeof *r);
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->id[0] = (uint32_t)stream_id;
    r->id[1] = (uint32_t)(stream_id >> 32);
}

uint64_t rpu_rng_tell(const rpu_rng *r) {
    return r->pos;
}

void rpu_rng_seek(rpu_rng *r, uint64_t pos) {
    r->pos = pos;
}

static inline void block_at(const rpu_rng *r, uint64_t b, uint32_t out[4]) {
    philox_block((uint32_t)b, (uint32_t)(b >> 32), r->id[0], r->id[1], r->key[0], r->key[1], out);
}

uint32_t rpu_rng_u32(rpu_rng *r) {
    uint64_t b = r->pos >> 2;
    if (!r->have_buf || r->blk != b) {
        block_at(r, b, r->buf);
        r->blk = b;
        r->have_buf = 1;
    }
    return r->buf[r->pos++ & 3u];
}

/* 24 high bits -> [0, 1). */
static inline float u01(uint32_t w) {
    return (float)(w >> 8) * (1.0f / 16777216.0f);
}

/* 24 high bits -> (0, 1]: safe for log. */
static inline float u01_open0(uint32_t w) {
    return (float)((w >> 8) + 1u) * (1.0f / 16777216.0f);
}

float rpu_rng_uniform(rpu_rng *r) {
    return u01(rpu_rng_u32(r));
}

/* Natural log of x in (0, 1]: x = m * 2^e with m in [sqrt(1/2), sqrt(2)),
 * log m = 2 atanh(s), s = (m - 1)/(m + 1), |s| <= 0.1716, odd series to s^9. */
static inline float log_unit(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    /* shift the mantissa range so that m lands in [sqrt(1/2), sqrt(2)) */
    uint32_t shifted = bits + (0x3F800000u - 0x3F3504F3u);
    int e = (int)(shifted >> 23) - 127;
    uint32_t mbits = (shifted & 0x007FFFFFu) + 0x3F3504F3u;
    float m;
    memcpy(&m, &mbits, sizeof m);
    float s = (m - 1.0f) / (m + 1.0f);
    float s2 = s * s;
    float series =
        s *
        (2.0f + s2 * (2.0f / 3.0f + s2 * (2.0f / 5.0f + s2 * (2.0f / 7.0f + s2 * (2.0f / 9.0f)))));
    return series + (float)e * 0.693147180559945f;
}

/* sin and cos of 2*pi*t for t in [0, 1): quadrant reduction then Taylor polynomials on
 * [-pi/4, pi/4]. */
static inline void sincos_turn(float t, float *sn, float *cs) {
    float y = 4.0f * t;
    int q = (int)(y + 0.5f);
    float x = (y - (float)q) * 1.57079632679489662f;
    float x2 = x * x;
    float s =
        x *
        (1.0f + x2 * (-1.0f / 6 + x2 * (1.0f / 120 + x2 * (-1.0f / 5040 + x2 * (1.0f / 362880)))));
    float c =
        1.0f +
        x2 * (-0.5f +
              x2 * (1.0f / 24 + x2 * (-1.0f / 720 + x2 * (1.0f / 40320 + x2 * (-1.0f / 3628800)))));
    q &= 3;
    float ss = (q == 0) ? s : (q == 1) ? c : (q == 2) ? -s : -c;
    float cc = (q == 0) ? c : (q == 1) ? -s : (q == 2) ? -c : s;
    *sn = ss;
    *cs = cc;
}

/* Box-Muller: two words -> two standard normals. */
static inline void box_muller(uint32_t a, uint32_t b, float *z0, float *z1) {
    float rad = sqrtf(-2.0f * log_unit(u01_open0(a)));
    float sn, cs;
    sincos_turn(u01(b), &sn, &cs);
    *z0 = rad * cs;
    *z1 = rad * sn;
}

float rpu_rng_normal(rpu_rng *r) {
    uint32_t a = rpu_rng_u32(r);
    uint32_t b = rpu_rng_u32(r);
    float z0, z1;
    box_muller(a, b, &z0, &z1);
    return z0;
}

#define FILL_CHUNK 64 /* blocks per batch of raw words (a multiple of 16) */
#define FILL_SHORT 16 /* up to this many values: block by block (fill_at) */

/* Philox of blocks first + i_k stride for k in [0, nblk) of r, where i_k = k (idx NULL) or
 * idx[k], structure-of-arrays: c[l][k] is word l of block first + k stride. The round loop is
 * written per 16 blocks with AVX-512 where the compiler targets it (the 32x32 -> 64-bit
 * products as even/odd vpmuludq pairs) and as plain C otherwise; both are the integer
 * arithmetic of philox_block, so the words are identical (test_rng checks the fills
 * against the one-block cursor path). */
static inline void blocks_soa(const rpu_rng *r, uint64_t first, uint64_t stride, const int64_t *idx,
                              size_t nblk, uint32_t c[4][FILL_CHUNK]) {
    size_t k = 0;
#if defined(__AVX512F__)
    const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
    const __mmask16 odd = 0xAAAA;
    /* whole groups of 16 (c has room: FILL_CHUNK is a multiple of 16); the words past
     * nblk are computed and not used */
    for (; k < nblk; k += 16) {
        __m512i x0, x1; /* the lanes' counters */
        if (stride == 1 && !idx) {
            /* low words b + l (carry into the high word handled per lane) */
            const uint64_t b = first + k;
            const __m512i lane =
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            x0 = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)b), lane);
            const __mmask16 carry =
                _mm512_cmplt_epu32_mask(x0, _mm512_set1_epi32((int)(uint32_t)b));
            x1 = _mm512_mask_add_epi32(_mm512_set1_epi32((int)(uint32_t)(b >> 32)), carry,
                                       _mm512_set1_epi32((int)(uint32_t)(b >> 32)),
                                       _mm512_set1_epi32(1));
        } else {
            /* b = first + i stride in two halves of 8 lanes (i = k + l or idx[k + l]; lanes
             * past nblk take i = 0), split into low and high words */
            __m512i b8[2];
            for (int h = 0; h < 2; ++h) {
                const size_t kh = k + 8 * (size_t)h;
                __m512i i8;
                if (idx) {
                    const size_t left = kh < nblk ? nblk - kh : 0;
                    const __mmask8 in = (__mmask8)(left >= 8 ? 0xFFu : (1u << left) - 1u);
                    i8 = _mm512_maskz_loadu_epi64(in, (const void *)(idx + (kh < nblk ? kh : 0)));
                } else {
                    i8 = _mm512_add_epi64(_mm512_set1_epi64((long long)kh),
                                          _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
                }
#if defined(__AVX512DQ__)
                const __m512i p = _mm512_mullo_epi64(i8, _mm512_set1_epi64((long long)stride));
#else
                /* 64 x 64 -> low 64 bits from 32-bit halves */
                const __m512i sv = _mm512_set1_epi64((long long)stride);
                const __m512i p = _mm512_add_epi64(
                    _mm512_mul_epu32(i8, sv),
                    _mm512_slli_epi64(
                        _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(i8, 32), sv),
                                         _mm512_mul_epu32(i8, _mm512_srli_epi64(sv, 32))),
                        32));
#endif
                b8[h] = _mm512_add_epi64(_mm512_set1_epi64((long long)first), p);
            }
            x0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(b8[0])),
                                    _mm512_cvtepi64_epi32(b8[1]), 1);
            x1 = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srli_epi64(b8[0], 32))),
                _mm512_cvtepi64_epi32(_mm512_srli_epi64(b8[1], 32)), 1);
        }
        __m512i x2 = _mm512_set1_epi32((int)r->id[0]), x3 = _mm512_set1_epi32((int)r->id[1]);
        uint32_t k0 = r->key[0], k1 = r->key[1];
        for (int round = 0; round < 10; ++round) {
            if (round > 0) {
                k0 += PHILOX_W0;
                k1 += PHILOX_W1;
            }
            /* even lanes: products of the low halves; odd lanes: of the high halves */
            __m512i pe0 = _mm512_mul_epu32(x0, m0),
                    po0 = _mm512_mul_epu32(_mm512_srli_epi64(x0, 32), m0);
            __m512i pe1 = _mm512_mul_epu32(x2, m1),
                    po1 = _mm512_mul_epu32(_mm512_srli_epi64(x2, 32), m1);
            __m512i hi0 = _mm512_mask_blend_epi32(odd, _mm512_srli_epi64(pe0, 32), po0);
            __m512i lo0 = _mm512_mask_blend_epi32(odd, pe0, _mm512_slli_epi64(po0, 32));
            __m512i hi1 = _mm512_mask_blend_epi32(odd, _mm512_srli_epi64(pe1, 32), po1);
            __m512i lo1 = _mm512_mask_blend_epi32(odd, pe1, _mm512_slli_epi64(po1, 32));
            __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, x1), _mm512_set1_epi32((int)k0));
            __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, x3), _mm512_set1_epi32((int)k1));
            x0 = n0;
            x1 = lo1;
            x2 = n2;
            x3 = lo0;
        }
        /* (memcpy: one vector store, and visibly a write to static analysers) */
        memcpy(c[0] + k, &x0, sizeof x0);
        memcpy(c[1] + k, &x1, sizeof x1);
        memcpy(c[2] + k, &x2, sizeof x2);
        memcpy(c[3] + k, &x3, sizeof x3);
    }
#endif
    for (; k < nblk + (16 - nblk % 16) % 16; ++k) { /* whole groups of 16, as fill_at uses */
        const uint64_t i = idx ? (k < nblk ? (uint64_t)idx[k] : 0) : (uint64_t)k;
        uint64_t b = first + i * stride;
        uint32_t out[4];
        philox_block((uint32_t)b, (uint32_t)(b >> 32), r->id[0], r->id[1], r->key[0], r->key[1],
                     out);
        for (int l = 0; l < 4; ++l)
            c[l][k] = out[l];
    }
}

/* The values of nblk blocks (first, first + stride, ...) from their words c, in stream
 * order (block k's 4 values at z[4k]): uniform (normal = 0) or normal. Over whole groups
 * of 16 blocks (vector loops without scalar tails; blocks_soa computed their words). */
static inline void block_values(uint32_t c[4][FILL_CHUNK], size_t nblk, int normal, float *z) {
    const size_t n16 = nblk + (16 - nblk % 16) % 16;
    if (normal) {
        for (size_t k = 0; k < n16; ++k) {
            box_muller(c[0][k], c[1][k], &z[4 * k], &z[4 * k + 1]);
            box_muller(c[2][k], c[3][k], &z[4 * k + 2], &z[4 * k + 3]);
        }
    } else {
        for (size_t k = 0; k < n16; ++k)
            for (int l = 0; l < 4; ++l)
                z[4 * k + l] = u01(c[l][k]);
    }
}

/* Fill out[0..n) from blocks first, first+1, ...: uniform (normal = 0) or normal. Block k
 * gives values 4k .. 4k+3: its words in order (uniform), or the Box-Muller pairs of words
 * (0, 1) and (2, 3) (normal). */
static void fill_at(const rpu_rng *r, uint64_t first, float *out, size_t n, int normal) {
    if (n <= FILL_SHORT) {
        /* a few values (the pulse engine's per-row draws): only their blocks, one by one;
         * the same integer words and the same float operations as the batched path (no
         * contraction, no libm), so the same values */
        float z[4];
        for (size_t done = 0; done < n; done += 4) {
            uint32_t w[4];
            block_at(r, first++, w);
            if (normal) {
                box_muller(w[0], w[1], &z[0], &z[1]);
                box_muller(w[2], w[3], &z[2], &z[3]);
            } else {
                for (int l = 0; l < 4; ++l)
                    z[l] = u01(w[l]);
            }
            const size_t m = n - done < 4 ? n - done : 4;
            memcpy(out + done, z, m * sizeof *out);
        }
        return;
    }
    uint32_t c[4][FILL_CHUNK];
    float z[4 * FILL_CHUNK]; /* the values in stream order */
    size_t done = 0;
    uint64_t b = first;
    while (done < n) {
        size_t want = n - done;
        size_t nblk = (want + 3) / 4;
        if (nblk > FILL_CHUNK) nblk = FILL_CHUNK;
        blocks_soa(r, b, 1, NULL, nblk, c);
        block_values(c, nblk, normal, z);
        const size_t nval = nblk * 4 < want ? nblk * 4 : want;
        memcpy(out + done, z, nval * sizeof *out);
        done += nval;
        b += nblk;
    }
}

/* The four normals of each of n blocks first + i_q stride (i_q = q, or idx[q]) into
 * out[4q .. 4q+3], 64 blocks per Philox batch (rpu_rng_normal_blocks, _block_list). */
static void normals_of_blocks(const rpu_rng *r, uint64_t first, uint64_t stride, const int64_t *idx,
                              size_t n, float *out) {
    uint32_t c[4][FILL_CHUNK];
    float z[4 * FILL_CHUNK];
    for (size_t done = 0; done < n;) {
        const size_t nblk = n - done < FILL_CHUNK ? n - done : FILL_CHUNK;
        if (idx)
            blocks_soa(r, first, stride, idx + done, nblk, c);
        else
            blocks_soa(r, first + (uint64_t)done * stride, stride, NULL, nblk, c);
        block_values(c, nblk, 1, z);
        memcpy(out + 4 * done, z, 4 * nblk * sizeof *out);
        done += nblk;
    }
}

void rpu_rng_normal_blocks(const rpu_rng *r, uint64_t first, uint64_t stride, size_t n,
                           float *out) {
    normals_of_blocks(r, first, stride, NULL, n, out);
}

void rpu_rng_normal_block_list(const rpu_rng *r, uint64_t first, const int64_t *idx, size_t n,
                               float *out) {
    normals_of_blocks(r, first, 1, idx, n, out);
}

void rpu_rng_rows_at(const rpu_rng *r, uint64_t first, uint64_t per, const int64_t *idx, size_t rows,
                     size_t len, int normal, float *out, size_t ostride) {
    if (rows <= 2) {
        /* one or two rows (a compound's transfer read): each along its own consecutive
         * blocks, the contract's values; the batch across rows below computes a group of
         * 16 blocks for each block of a row */
        for (size_t a = 0; a < rows; ++a)
            fill_at(r, first + (uint64_t)(idx ? idx[a] : (int64_t)a) * per, out + a * ostride, len,
                    normal);
        return;
    }
    uint32_t c[4][FILL_CHUNK];
    float z[4 * FILL_CHUNK];
    const size_t nb = (len + 3) / 4;
    /* block q of FILL_CHUNK rows at a time: one strided Philox batch across the rows */
    for (size_t k0 = 0; k0 < rows; k0 += FILL_CHUNK) {
        const size_t nr = rows - k0 < FILL_CHUNK ? rows - k0 : FILL_CHUNK;
        for (size_t q = 0; q < nb; ++q) {
            if (idx)
                blocks_soa(r, first + q, per, idx + k0, nr, c);
            else
                blocks_soa(r, first + (uint64_t)k0 * per + q, per, NULL, nr, c);
            block_values(c, nr, normal, z);
            const size_t m = len - 4 * q < 4 ? len - 4 * q : 4;
            float *o = out + k0 * ostride + 4 * q;
            if (m == 4)
                for (size_t kk = 0; kk < nr; ++kk)
                    memcpy(o + kk * ostride, z + 4 * kk, 4 * sizeof *out);
            else
                for (size_t kk = 0; kk < nr; ++kk)
                    memcpy(o + kk * ostride, z + 4 * kk, m * sizeof *out);
        }
    }
}

void rpu_rng_normal_at(const rpu_rng *r, uint64_t block, float *out, size_t n) {
    fill_at(r, block, out, n, 1);
}

void rpu_rng_uniform_at(const rpu_rng *r, uint64_t block, float *out, size_t n) {
    fill_at(r, block, out, n, 0);
}

static void fill_cursor(rpu_rng *r, float *out, size_t n, int normal) {
    uint64_t b = (r->pos + 3) >> 2; /* next block boundary */
    fill_at(r, b, out, n, normal);
    r->pos = (b + rpu_rng_blocks_for(n)) << 2;
}

void rpu_rng_uniform_fill(rpu_rng *r, float *out, size_t n) {
    fill_cursor(r, out, n, 0);
}

void rpu_rng_normal_fill(rpu_rng *r, float *out, size_t n) {
    fill_cursor(r, out, n, 1);
}
