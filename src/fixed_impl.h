/* Exact, order-free sums of floats in 64-bit fixed point (internal; layer.c, update_sum.c).
 *
 * A set of float terms is summed exactly by converting each term to an integer at a common
 * scale 2^S and adding the integers: the sum does not depend on the order of the additions
 * nor on how the terms are split between ranks (an MPI_Allreduce of int64 with MPI_SUM is
 * exact). S is chosen from a bound on the terms' magnitude and their count so that no sum
 * overflows; the terms keep at least 62 - log2(count) - 1 significant bits below the bound,
 * far more than a float's 24. */
#ifndef RPUSIM_FIXED_IMPL_H
#define RPUSIM_FIXED_IMPL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#endif

/* Scale exponent for sums of `terms` values of magnitude < 2^e (gmax < 2^e): the sum stays
 * below 2^62. */
static inline int rpu_fixed_scale(double gmax, long terms) {
    int e;
    frexp(gmax, &e); /* gmax < 2^e */
    int c = 0;
    while ((1L << c) < terms)
        ++c;
    return 62 - e - c;
}

/* 2^S as a double (exact for |S| < 1023). */
static inline double rpu_pow2(int S) {
    return ldexp(1.0, S);
}

/* a · 2^-S as a float with one rounding: the int64 -> float conversion rounds the exact sum
 * once (to nearest), the power-of-two scaling is exact, so the result is the correctly
 * rounded sum of the fixed-point terms. (Going through double would round twice.) down is
 * rpu_fixed_down(S): 2^-S as a float when that is a normal float (then (float)a · down, with
 * |(float)a| >= 1, is exact and vectorises), else 0 and ldexpf does the scaling. */
static inline float rpu_fixed_down(int S) {
    return (S >= -127 && S <= 126) ? ldexpf(1.0f, -S) : 0.0f;
}
static inline float rpu_from_fixed(int64_t a, int S, float down) {
    return down != 0.0f ? (float)a * down : ldexpf((float)a, -S);
}

/* v · 2^S rounded to the nearest integer (the product is exact). */
static inline int64_t rpu_to_fixed(float v, double scale) {
    return (int64_t)llrint((double)v * scale);
}

/* a[q] += rpu_to_fixed(v[q], scale) for q < n: eight at a time with AVX-512DQ (the same
 * exact product and the same conversion: round to nearest even, out-of-range values giving
 * INT64_MIN as llrint's cvtsd2si does). */
static inline void rpu_to_fixed_add(int64_t *a, const float *v, size_t n, double scale) {
    size_t q = 0;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
    const __m512d sc = _mm512_set1_pd(scale);
    for (; q + 8 <= n; q += 8) {
        const __m512d d = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(v + q)), sc);
        const __m512i f = _mm512_cvt_roundpd_epi64(d, _MM_FROUND_CUR_DIRECTION);
        _mm512_storeu_si512(a + q, _mm512_add_epi64(_mm512_loadu_si512(a + q), f));
    }
#endif
    for (; q < n; ++q)
        a[q] += rpu_to_fixed(v[q], scale);
}

#endif
