/* Private: the patches of a convolution (im2col and its adjoint col2im) for the tiles of a
 * mapped layer (layer.c). Every spatial case is 3-d with unit sizes for the missing
 * dimensions (a linear layer: one patch per sample, kernel 1).
 *
 * A tile's input vectors are its columns [col0, col0 + ncol) of its group's unfolded patch
 * (column c*K + kernel position, kernel positions row-major over (kd, kh, kw)), one row per
 * (image, output position) in the order n*Lout + p, plus a last column of ones for the
 * analog bias when the tile has one. The mapped split gives whole channels; the tile_array
 * split may cut the first and the last channel's kernel block.
 *
 * Two implementations of each direction: the reference (rpu_patch_gather_ref,
 * rpu_patch_col2im_ref: one kernel position at a time, through the index table or explicit
 * bounds, clear to read) and the fast one the layer runs (runs of the kernel's width
 * copied or added at once, bounds checked per kernel row). They give the same bits:
 * the gather copies the same values; the fast col2im adds every element's contributions in
 * the reference's order (ascending output position), see patches.c. mpi_tests/test_patches.c
 * compares them. Nothing here allocates, communicates or fails. */
#ifndef RPUSIM_PATCHES_IMPL_H
#define RPUSIM_PATCHES_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* The shape of a convolution on a batch. */
typedef struct {
    int n;                          /* images */
    int C;                          /* channels of x (all groups) */
    int K;                          /* kernel positions k3[0] * k3[1] * k3[2] */
    int k3[3], s3[3], p3[3], d3[3]; /* kernel, stride, padding, dilation (d, h, w) */
    int in3[3], out3[3];            /* input and output sizes (d, h, w) */
    int Lin, Lout;                  /* positions of one input / output channel plane */
} rpu_patch_geom;

/* The columns of one tile. */
typedef struct {
    int cg;            /* first channel of the tile's group in x */
    int in_ch0, in_ch; /* channels it touches, numbered within the group */
    int col0, ncol;    /* its columns of the group's patch */
    int cols;          /* row width: ncol, + 1 with the analog-bias column */
    int bias_col;      /* the last column is the analog bias input (ones) */
} rpu_patch_cols;

/* Index table idx [Lout * K]: the spatial offset in the input plane of kernel position k
 * of output position p (p * K + k), or -1 for padding. */
void rpu_patch_index(const rpu_patch_geom *g, int32_t *idx);

/* Patches X [n * Lout, cols] of tile t from x [n, C, Lin]. The reference gathers through
 * idx (from rpu_patch_index) or, with idx NULL, by explicit loops over output and kernel
 * positions. */
void rpu_patch_gather(const rpu_patch_geom *g, const rpu_patch_cols *t, const float *x, float *X);
void rpu_patch_gather_ref(const rpu_patch_geom *g, const rpu_patch_cols *t, const int32_t *idx,
                          const float *x, float *X);

/* col2im of image nn of tile t: adds the tile's input-gradient rows DX [n * Lout, cols]
 * (the bias column ignored) into dst [in_ch, Lin] (channels from in_ch0), every element's
 * terms in ascending output position. */
void rpu_patch_col2im(const rpu_patch_geom *g, const rpu_patch_cols *t, const float *DX, int nn,
                      float *dst);
void rpu_patch_col2im_ref(const rpu_patch_geom *g, const rpu_patch_cols *t, const int32_t *idx,
                          const float *DX, int nn, float *dst);

#if defined(__AVX512F__)
#include <immintrin.h>

/* In-register transpose of 16 rows of 16 floats: r[i] becomes column i. */
static inline void rpu_transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int h = 0; h < 2; ++h)
        for (int i = 0; i < 4; ++i) {
            t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
            t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
        }
    for (int i = 0; i < 8; ++i) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
    }
}
#endif

#endif
