/* Tests of the Philox-4x32-10 streams: published known answers, stream independence,
 * O(1) seek, and the distributions against bounds derived from the sample size. */
#include "rpusim/rng.h"
#include "rpusim/status.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Random123 (Salmon et al., SC'11) kat_vectors: counter[4], key[2] -> output[4]. */
static void test_known_answers(void) {
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; ++v) {
        uint32_t out[4];
        rpu_philox4x32_10(kat[v], kat[v] + 4, out);
        for (int k = 0; k < 4; ++k)
            CHECK(out[k] == kat[v][6 + k], "KAT %d word %d: %08x want %08x", v, k, out[k],
                  kat[v][6 + k]);
    }
    /* The stream maps (seed, id, block) onto (key, counter) as documented in rng.h:
     * counter = {block_lo, block_hi, id_lo, id_hi}, key = {seed_lo, seed_hi}. */
    const uint64_t seed = ((uint64_t)0x299f31d0 << 32) | 0xa4093822u;
    const uint64_t id = ((uint64_t)0x03707344 << 32) | 0x13198a2eu;
    const uint64_t block = ((uint64_t)0x05a308d3 << 32) | 0x243f6a88u;
    const uint32_t ctr[4] = {0x243f6a88, 0x05a308d3, 0x13198a2e, 0x03707344};
    uint32_t want[4];
    rpu_philox4x32_10(ctr, kat[2] + 4, want);
    rpu_rng r;
    rpu_rng_init(&r, seed, id);
    rpu_rng_seek(&r, block << 2);
    for (int k = 0; k < 4; ++k) {
        uint32_t w = rpu_rng_u32(&r);
        CHECK(w == want[k], "stream word %d: %08x want %08x", k, w, want[k]);
    }
}

static void test_stream_id(void) {
    CHECK(rpu_stream_id(1, 2, 3) == ((1ull << 40) | (2ull << 16) | 3ull), "packing");
    CHECK(rpu_stream_id(0xFFFFFF, 0xFFFFFF, 0xFFFF) == 0xFFFFFFFFFFFFFFFFull, "full range");
    CHECK(rpu_stream_id(0, 1, 0) != rpu_stream_id(1, 0, 0), "layer/tile distinct");
}

static void test_independence_and_seek(void) {
    enum { N = 1000 };
    float a[N], b[N];
    rpu_rng s;
    rpu_rng_init(&s, 42, rpu_stream_id(3, 7, RPU_PURPOSE_FORWARD));
    for (int i = 0; i < N; ++i)
        a[i] = rpu_rng_normal(&s);

    /* other streams used in between, interleaved with the same stream restarted */
    rpu_rng o1, o2, s2;
    rpu_rng_init(&o1, 42, rpu_stream_id(3, 8, RPU_PURPOSE_FORWARD));
    rpu_rng_init(&o2, 43, rpu_stream_id(3, 7, RPU_PURPOSE_FORWARD));
    rpu_rng_init(&s2, 42, rpu_stream_id(3, 7, RPU_PURPOSE_FORWARD));
    int same_as_other = 0;
    for (int i = 0; i < N; ++i) {
        float x1 = rpu_rng_normal(&o1), x2 = rpu_rng_normal(&o2);
        b[i] = rpu_rng_normal(&s2);
        same_as_other += (x1 == b[i]) + (x2 == b[i]);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same (seed, id) gives the same numbers");
    CHECK(same_as_other == 0, "other streams differ (%d equal values)", same_as_other);

    /* save a position, draw, restore, draw again */
    rpu_rng_init(&s, 9, 11);
    for (int i = 0; i < 37; ++i)
        (void)rpu_rng_u32(&s);
    uint64_t pos = rpu_rng_tell(&s);
    CHECK(pos == 37, "tell counts words: %llu", (unsigned long long)pos);
    uint32_t w1[100], w2[100];
    for (int i = 0; i < 100; ++i)
        w1[i] = rpu_rng_u32(&s);
    rpu_rng_seek(&s, 1u << 20); /* far away and back */
    (void)rpu_rng_u32(&s);
    rpu_rng_seek(&s, pos);
    for (int i = 0; i < 100; ++i)
        w2[i] = rpu_rng_u32(&s);
    CHECK(memcmp(w1, w2, sizeof w1) == 0, "seek restores the sequence");

    /* a fill starts at the next block boundary and equals random access there */
    float f[10], g[10];
    rpu_rng_init(&s, 5, 6);
    (void)rpu_rng_u32(&s); /* position 1: next boundary is block 1 */
    rpu_rng_normal_fill(&s, f, 10);
    CHECK(rpu_rng_tell(&s) == (1 + 3) * 4, "fill consumed whole blocks: %llu",
          (unsigned long long)rpu_rng_tell(&s));
    rpu_rng_normal_at(&s, 1, g, 10);
    CHECK(memcmp(f, g, sizeof f) == 0, "fill == normal_at");
    rpu_rng_uniform_fill(&s, f, 10);
    rpu_rng_uniform_at(&s, 4, g, 10);
    CHECK(memcmp(f, g, sizeof f) == 0, "uniform fill == uniform_at");
}

/* The fills (rpu_rng_uniform_at / normal_at, vectorised over blocks where the CPU allows)
 * against the one-block cursor path (rpu_rng_uniform / rpu_rng_normal, scalar Philox and
 * Box-Muller): uniform value v of a fill at block b is the cursor's uniform at word 4b + v;
 * normal value 4k + 2h (h = 0, 1) is the cursor's normal at word 4(b + k) + 2h (the cursor
 * returns the first of the pair). Bitwise, over lengths that end inside a block, inside a
 * 16-block vector group and across 64-block chunks, and at a start block whose low word
 * wraps (carry into the high counter word). */
static void test_fill_matches_cursor(void) {
    const uint64_t starts[] = {0, 5, 0xFFFFFFF0ull, (7ull << 32) + 0xFFFFFFFBull};
    const size_t lens[] = {1, 3, 63, 64, 65, 257, 1029};
    float f[1029];
    rpu_rng s, c;
    rpu_rng_init(&s, 0x1234567890ull, rpu_stream_id(9, 3, RPU_PURPOSE_UPDATE));
    c = s;
    int bad_u = 0, bad_n = 0, total = 0;
    for (size_t a = 0; a < sizeof starts / sizeof starts[0]; ++a)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; ++l) {
            const uint64_t b = starts[a];
            const size_t n = lens[l];
            rpu_rng_uniform_at(&s, b, f, n);
            rpu_rng_seek(&c, b << 2);
            for (size_t v = 0; v < n; ++v) {
                float u = rpu_rng_uniform(&c);
                bad_u += memcmp(&u, &f[v], sizeof u) != 0;
            }
            rpu_rng_normal_at(&s, b, f, n);
            for (size_t v = 0; v < n; v += 2) {
                rpu_rng_seek(&c, (b << 2) + v);
                float z = rpu_rng_normal(&c);
                bad_n += memcmp(&z, &f[v], sizeof z) != 0;
            }
            total += (int)n;
        }
    CHECK(bad_u == 0, "uniform fills == cursor uniforms (%d of %d differ)", bad_u, total);
    CHECK(bad_n == 0, "normal fills == cursor normals (%d of %d pairs differ)", bad_n, total / 2);
}

/* rpu_rng_normal_blocks: block q's four normals are rpu_rng_normal_at's of block
 * first + q stride, bitwise; strides 1, 3 and a large one (an update's per-row range), and
 * counts that end inside a 16-block group and cross the 64-block chunks, from a start whose
 * low counter word wraps. */
static void test_normal_blocks(void) {
    const uint64_t strides[] = {1, 3, 12345};
    const size_t counts[] = {1, 7, 16, 70, 130};
    static float z[4 * 130];
    float one[4];
    rpu_rng s;
    rpu_rng_init(&s, 0xabcdefull, rpu_stream_id(4, 2, RPU_PURPOSE_UPDATE));
    int bad = 0, total = 0;
    for (size_t a = 0; a < sizeof strides / sizeof strides[0]; ++a)
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; ++c) {
            const uint64_t first = 0xFFFFFFF0ull - 20 * strides[a];
            rpu_rng_normal_blocks(&s, first, strides[a], counts[c], z);
            for (size_t q = 0; q < counts[c]; ++q) {
                rpu_rng_normal_at(&s, first + q * strides[a], one, 4);
                bad += memcmp(one, z + 4 * q, sizeof one) != 0;
                ++total;
            }
        }
    CHECK(bad == 0, "normal_blocks == normal_at block by block (%d of %d blocks differ)", bad,
          total);
}

/* rpu_rng_normal_block_list: entry q's four normals are rpu_rng_normal_at's of block
 * first + idx[q], bitwise, for lists of runs of consecutive blocks with gaps (as several
 * vectors' ranges), a repeated block and a descending pair, inside one 16-block group and
 * across the 64-block batches, from a start whose low counter word wraps; nothing past the
 * list's 4 n values is written. */
static void test_normal_block_list(void) {
    const size_t counts[] = {1, 5, 16, 17, 64, 150};
    static int64_t idx[150];
    static float z[4 * 150 + 8];
    float one[4];
    size_t m = 0;
    for (int run = 0; m < 150; ++run) /* runs of 1..7 blocks, 2 + run apart */
        for (int b = 0; b < 1 + run % 7 && m < 150; ++b)
            idx[m++] = 40 * run + (run % 3 ? 2 : 0) + b;
    idx[10] = idx[9];         /* the same block twice */
    idx[20] = idx[21] + 1000; /* out of order */
    rpu_rng s;
    rpu_rng_init(&s, 0xfeedull, rpu_stream_id(6, 1, RPU_PURPOSE_UPDATE));
    int bad = 0, over = 0, total = 0;
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; ++c) {
        const uint64_t first = 0xFFFFFF00ull;
        for (size_t q = 0; q < sizeof z / sizeof z[0]; ++q)
            z[q] = -99.0f;
        rpu_rng_normal_block_list(&s, first, idx, counts[c], z);
        for (size_t q = 0; q < counts[c]; ++q) {
            rpu_rng_normal_at(&s, first + (uint64_t)idx[q], one, 4);
            bad += memcmp(one, z + 4 * q, sizeof one) != 0;
            ++total;
        }
        for (size_t q = 4 * counts[c]; q < sizeof z / sizeof z[0]; ++q)
            over += z[q] != -99.0f;
    }
    CHECK(bad == 0, "normal_block_list == normal_at block by block (%d of %d blocks differ)", bad,
          total);
    CHECK(over == 0, "normal_block_list writes only 4 n values (%d written past)", over);
}

/* rpu_rng_rows_at: row a's len values are rpu_rng_normal_at's / uniform_at's of block
 * first + i_a per (i_a = a, or an index list with gaps), bitwise, and nothing past len in a
 * row is written; lengths inside and at a block's end, row counts inside a 16-block group
 * and across the 64-row batches, from a start whose low counter word wraps. */
static void test_rows_at(void) {
    const size_t lens[] = {1, 4, 6, 16, 17};
    const size_t rows[] = {1, 15, 64, 131};
    static float out[131 * 24], one[24];
    static int64_t idx[131];
    for (int a = 0; a < 131; ++a)
        idx[a] = 3 * a + (a % 5 == 0) + 1000; /* ascending with gaps, as active vectors */
    rpu_rng s;
    rpu_rng_init(&s, 0x5eedull, rpu_stream_id(2, 7, RPU_PURPOSE_FORWARD));
    int bad = 0, over = 0, total = 0;
    for (int list = 0; list < 2; ++list)
        for (int normal = 0; normal < 2; ++normal)
            for (size_t a = 0; a < sizeof lens / sizeof lens[0]; ++a)
                for (size_t c = 0; c < sizeof rows / sizeof rows[0]; ++c) {
                    const uint64_t per = 6, first = 0xFFFFF000ull; /* room 24 values */
                    const size_t ostride = 24;
                    for (size_t q = 0; q < sizeof out / sizeof out[0]; ++q)
                        out[q] = -99.0f;
                    rpu_rng_rows_at(&s, first, per, list ? idx : NULL, rows[c], lens[a], normal,
                                    out, ostride);
                    for (size_t k = 0; k < rows[c]; ++k) {
                        const uint64_t blk = first + (list ? (uint64_t)idx[k] : k) * per;
                        if (normal)
                            rpu_rng_normal_at(&s, blk, one, lens[a]);
                        else
                            rpu_rng_uniform_at(&s, blk, one, lens[a]);
                        bad += memcmp(one, out + k * ostride, lens[a] * sizeof(float)) != 0;
                        for (size_t v = lens[a]; v < ostride; ++v)
                            over += out[k * ostride + v] != -99.0f;
                        ++total;
                    }
                }
    CHECK(bad == 0, "rows_at == normal_at / uniform_at row by row (%d of %d rows differ)", bad,
          total);
    CHECK(over == 0, "rows_at writes only len values per row (%d written past)", over);
}

/* Our normals use polynomial log/sin/cos: compare with libm's Box-Muller on the same
 * words. Bound: |error| <= 2e-5 (float round-off of the series, |z| <= 5.8). */
static void test_against_libm(void) {
    rpu_rng s, raw;
    rpu_rng_init(&s, 77, 1);
    rpu_rng_init(&raw, 77, 1);
    float z[4096];
    rpu_rng_normal_fill(&s, z, 4096);
    double maxerr = 0;
    for (int k = 0; k < 4096; k += 2) {
        uint32_t a = rpu_rng_u32(&raw), b = rpu_rng_u32(&raw);
        double u1 = ((a >> 8) + 1.0) / 16777216.0, u2 = (b >> 8) / 16777216.0;
        double rad = sqrt(-2.0 * log(u1));
        double e0 = fabs(rad * cos(6.283185307179586 * u2) - z[k]);
        double e1 = fabs(rad * sin(6.283185307179586 * u2) - z[k + 1]);
        if (e0 > maxerr) maxerr = e0;
        if (e1 > maxerr) maxerr = e1;
    }
    CHECK(maxerr < 2e-5, "normals match libm Box-Muller: max err %g", maxerr);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Moments and Kolmogorov-Smirnov with seed 2024, n = 2^20. Bounds: mean within
 * 5 sigma/sqrt(n); variance within 5 sqrt(2/n) (normal) or 5 sqrt(1/180/n)·... (uniform);
 * KS D < 1.95/sqrt(n) (p = 0.001). A correct generator fails with p < 1e-3. */
static void test_distributions(void) {
    const int n = 1 << 20;
    float *x = malloc(sizeof(float) * (size_t)n);
    rpu_rng s;
    rpu_rng_init(&s, 2024, rpu_stream_id(1, 2, RPU_PURPOSE_TEST));
    rpu_rng_uniform_fill(&s, x, (size_t)n);
    double m = 0, v = 0, lo = 1, hi = 0;
    for (int i = 0; i < n; ++i) {
        m += x[i];
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    m /= n;
    for (int i = 0; i < n; ++i)
        v += (x[i] - m) * (x[i] - m);
    v /= n - 1;
    CHECK(lo >= 0 && hi < 1, "uniform range [%g, %g]", lo, hi);
    CHECK(fabs(m - 0.5) < 5 * sqrt(1.0 / 12 / n), "uniform mean %g", m);
    /* var of the sample variance of U(0,1): (1/80 - 1/144)/n */
    CHECK(fabs(v - 1.0 / 12) < 5 * sqrt((1.0 / 80 - 1.0 / 144) / n), "uniform var %g", v);
    qsort(x, (size_t)n, sizeof(float), cmp_float);
    double d = 0;
    for (int i = 0; i < n; i += 97) {
        double e1 = fabs((i + 1.0) / n - x[i]), e0 = fabs((double)i / n - x[i]);
        if (e1 > d) d = e1;
        if (e0 > d) d = e0;
    }
    CHECK(d < 1.95 / sqrt(n), "uniform KS D = %g", d);

    rpu_rng_normal_fill(&s, x, (size_t)n);
    double m1 = 0, m2 = 0, m4 = 0;
    long tail = 0;
    for (int i = 0; i < n; ++i) {
        m1 += x[i];
        m2 += (double)x[i] * x[i];
        m4 += (double)x[i] * x[i] * x[i] * x[i];
        tail += fabsf(x[i]) > 3.0f;
    }
    m1 /= n;
    m2 /= n;
    m4 /= n;
    CHECK(fabs(m1) < 5 / sqrt(n), "normal mean %g", m1);
    CHECK(fabs(m2 - 1) < 5 * sqrt(2.0 / n), "normal var %g", m2);
    CHECK(fabs(m4 - 3) < 5 * sqrt(96.0 / n), "normal 4th moment %g", m4); /* var(z^4)=105-9 */
    double p3 = erfc(3 / sqrt(2.0));
    CHECK(fabs((double)tail / n - p3) < 5 * sqrt(p3 * (1 - p3) / n), "P(|z|>3) = %g vs %g",
          (double)tail / n, p3);
    qsort(x, (size_t)n, sizeof(float), cmp_float);
    d = 0;
    for (int i = 0; i < n; i += 97) {
        double F = 0.5 * erfc(-x[i] / sqrt(2.0));
        double e1 = fabs((i + 1.0) / n - F), e0 = fabs((double)i / n - F);
        if (e1 > d) d = e1;
        if (e0 > d) d = e0;
    }
    CHECK(d < 1.95 / sqrt(n), "normal KS D = %g", d);
    free(x);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_known_answers();
    test_stream_id();
    test_independence_and_seek();
    test_fill_matches_cursor();
    test_normal_blocks();
    test_normal_block_list();
    test_rows_at();
    test_against_libm();
    test_distributions();
    return tl_finish();
}
