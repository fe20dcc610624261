/* Patches of a convolution: im2col for a tile's input vectors and its adjoint col2im for
 * the input gradient (patches_impl.h), each as a plain reference and a fast version that
 * gives the same bits.
 *
 * The fast versions walk the output positions in order and, for each channel and kernel
 * row (kd, kh), copy or add the kernel's width of values at once: a run of kw consecutive
 * columns of the patch row and kw input positions iw0 + kw * dilation. The bounds are
 * checked once per kernel row (a table of the rows' offsets per output row) and once per
 * output column (whether the whole run lies inside the input row); runs of a constant
 * width (dilation 1, kernel width 1..7) are compiled for that width, so a 3- or 5-wide run
 * is a few vector moves instead of one indexed, bounds-checked load per value. Zero
 * padding gives zeros in the gather and nothing in col2im. */
#include "patches_impl.h"

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* The kernel positions [kb, ke) of channel c (within the group) that tile t's columns cover:
 * all K for the mapped split; the tile_array split may cut the first and the last channel
 * of a tile. */
static inline void channel_taps(const rpu_patch_cols *t, int K, int c, int *kb, int *ke) {
    const int first = c * K, b = t->col0 - first, e = t->col0 + t->ncol - first;
    *kb = b > 0 ? b : 0;
    *ke = e < K ? e : K;
}

/* ------------------------------------------------------------------ reference */

void rpu_patch_index(const rpu_patch_geom *g, int32_t *idx) {
    int32_t *ix = idx;
    for (int od = 0; od < g->out3[0]; ++od)
        for (int oh = 0; oh < g->out3[1]; ++oh)
            for (int ow = 0; ow < g->out3[2]; ++ow)
                for (int kd = 0; kd < g->k3[0]; ++kd)
                    for (int kh = 0; kh < g->k3[1]; ++kh)
                        for (int kw = 0; kw < g->k3[2]; ++kw) {
                            int id = od * g->s3[0] - g->p3[0] + kd * g->d3[0];
                            int ih = oh * g->s3[1] - g->p3[1] + kh * g->d3[1];
                            int iw = ow * g->s3[2] - g->p3[2] + kw * g->d3[2];
                            int inside = id >= 0 && id < g->in3[0] && ih >= 0 && ih < g->in3[1] &&
                                         iw >= 0 && iw < g->in3[2];
                            *ix++ = inside ? (int32_t)((id * g->in3[1] + ih) * g->in3[2] + iw) : -1;
                        }
}

void rpu_patch_gather_ref(const rpu_patch_geom *g, const rpu_patch_cols *t, const int32_t *idx,
                          const float *x, float *X) {
    const int C = g->C, K = g->K, cols = t->cols;
    for (int n = 0; n < g->n; ++n) {
        if (idx) {
            for (int p = 0; p < g->Lout; ++p) {
                float *row = X + ((size_t)n * g->Lout + p) * cols;
                const int32_t *ix = idx + (size_t)p * K;
                for (int c = t->in_ch0; c < t->in_ch0 + t->in_ch; ++c) {
                    const float *xc = x + ((size_t)n * C + t->cg + c) * g->Lin;
                    int kb, ke;
                    channel_taps(t, K, c, &kb, &ke);
                    float *dst = row + (c * K + kb - t->col0);
                    for (int k = kb; k < ke; ++k)
                        dst[k - kb] = ix[k] >= 0 ? xc[ix[k]] : 0.0f;
                }
                if (t->bias_col) row[cols - 1] = 1.0f;
            }
            continue;
        }
        /* explicit unfold: loops over output and kernel positions */
        for (int od = 0, p = 0; od < g->out3[0]; ++od)
            for (int oh = 0; oh < g->out3[1]; ++oh)
                for (int ow = 0; ow < g->out3[2]; ++ow, ++p) {
                    float *row = X + ((size_t)n * g->Lout + p) * cols;
                    for (int c = t->in_ch0; c < t->in_ch0 + t->in_ch; ++c) {
                        const float *xc = x + ((size_t)n * C + t->cg + c) * g->Lin;
                        int kb, ke;
                        channel_taps(t, K, c, &kb, &ke);
                        const int base = c * K - t->col0; /* column of kernel position 0 */
                        for (int kd = 0, k = 0; kd < g->k3[0]; ++kd) {
                            const int id = od * g->s3[0] - g->p3[0] + kd * g->d3[0];
                            for (int kh = 0; kh < g->k3[1]; ++kh) {
                                const int ih = oh * g->s3[1] - g->p3[1] + kh * g->d3[1];
                                const int rin =
                                    id >= 0 && id < g->in3[0] && ih >= 0 && ih < g->in3[1];
                                const float *xr =
                                    xc + ((size_t)(rin ? id : 0) * g->in3[1] + (rin ? ih : 0)) *
                                             g->in3[2];
                                for (int kw = 0; kw < g->k3[2]; ++kw, ++k) {
                                    if (k < kb || k >= ke) continue;
                                    const int iw = ow * g->s3[2] - g->p3[2] + kw * g->d3[2];
                                    row[base + k] =
                                        (rin && iw >= 0 && iw < g->in3[2]) ? xr[iw] : 0.0f;
                                }
                            }
                        }
                    }
                    if (t->bias_col) row[cols - 1] = 1.0f;
                }
    }
}

void rpu_patch_col2im_ref(const rpu_patch_geom *g, const rpu_patch_cols *t, const int32_t *idx,
                          const float *DX, int nn, float *dst) {
    const int K = g->K;
    for (int p = 0; p < g->Lout; ++p) {
        const float *row = DX + ((size_t)nn * g->Lout + p) * t->cols;
        const int32_t *ix = idx + (size_t)p * K;
        for (int c = t->in_ch0; c < t->in_ch0 + t->in_ch; ++c) {
            float *a = dst + (size_t)(c - t->in_ch0) * g->Lin;
            const int base = c * K - t->col0; /* column of kernel position 0 */
            int kb, ke;
            channel_taps(t, K, c, &kb, &ke);
            for (int k = kb; k < ke; ++k)
                if (ix[k] >= 0) a[ix[k]] += row[base + k];
        }
    }
}

/* col2im without the index table, position by position in the reference's order (for
 * kernels too tall for the fast path's kernel-row table). */
static void col2im_slow(const rpu_patch_geom *g, const rpu_patch_cols *t, const float *DX, int nn,
                        float *dst) {
    for (int p = 0; p < g->Lout; ++p) {
        const int ow = p % g->out3[2], oh = p / g->out3[2] % g->out3[1];
        const int od = p / (g->out3[2] * g->out3[1]);
        const float *row = DX + ((size_t)nn * g->Lout + p) * t->cols;
        for (int c = t->in_ch0; c < t->in_ch0 + t->in_ch; ++c) {
            float *a = dst + (size_t)(c - t->in_ch0) * g->Lin;
            int kb, ke;
            channel_taps(t, g->K, c, &kb, &ke);
            for (int k = kb; k < ke; ++k) {
                const int kw = k % g->k3[2], kh = k / g->k3[2] % g->k3[1];
                const int kd = k / (g->k3[2] * g->k3[1]);
                const int id = od * g->s3[0] - g->p3[0] + kd * g->d3[0];
                const int ih = oh * g->s3[1] - g->p3[1] + kh * g->d3[1];
                const int iw = ow * g->s3[2] - g->p3[2] + kw * g->d3[2];
                if (id >= 0 && id < g->in3[0] && ih >= 0 && ih < g->in3[1] && iw >= 0 &&
                    iw < g->in3[2])
                    a[((size_t)id * g->in3[1] + ih) * g->in3[2] + iw] +=
                        row[c * g->K - t->col0 + k];
            }
        }
    }
}

/* ------------------------------------------------------------------ fast */

/* Kernel rows (kd, kh) per table; a larger kernel takes the reference. G: outputs summed
 * together by the fast col2im. */
enum { MAX_KROWS = 256, G = 4 };

/* Offsets in the input plane of the kernel rows (kd, kh) of output row (od, oh), -1 where
 * the row is padding; returns the number of kernel rows. */
static int kernel_rows(const rpu_patch_geom *g, int od, int oh, int32_t *roff) {
    int r = 0;
    for (int kd = 0; kd < g->k3[0]; ++kd) {
        const int id = od * g->s3[0] - g->p3[0] + kd * g->d3[0];
        for (int kh = 0; kh < g->k3[1]; ++kh, ++r) {
            const int ih = oh * g->s3[1] - g->p3[1] + kh * g->d3[1];
            roff[r] = (id >= 0 && id < g->in3[0] && ih >= 0 && ih < g->in3[1])
                          ? (int32_t)(((size_t)id * g->in3[1] + ih) * g->in3[2])
                          : -1;
        }
    }
    return r;
}

/* Whether tile t's columns are whole channels (always for the mapped split). */
static inline int whole_channels(const rpu_patch_cols *t, int K) {
    return t->col0 % K == 0 && t->ncol % K == 0;
}

/* The gather for runs of KW values: KW a constant 1..7 with dilation 1 (NR = KW: also as
 * many kernel rows, a square 2-d kernel; else NR = 0), or KW = 0: the kernel's width at
 * run time, any dilation. */
static inline void gather_runs(const rpu_patch_geom *g, const rpu_patch_cols *t, const float *x,
                               float *X, const int KW, const int NR) {
    const int kw_n = KW ? KW : g->k3[2], d2 = KW ? 1 : g->d3[2];
    const int K = g->K, W = g->in3[2], OW = g->out3[2], cols = t->cols;
    const int whole = whole_channels(t, K);
    int32_t roff[MAX_KROWS];
    for (int n = 0; n < g->n; ++n)
        for (int od = 0; od < g->out3[0]; ++od)
            for (int oh = 0; oh < g->out3[1]; ++oh) {
                const int nr = kernel_rows(g, od, oh, roff);
                int all_rows = 1;
                for (int r = 0; r < nr; ++r)
                    all_rows &= roff[r] >= 0;
                const size_t p0 = ((size_t)od * g->out3[1] + oh) * OW;
                const float *xt = x + ((size_t)n * g->C + t->cg + t->in_ch0) * g->Lin;
                for (int ow = 0; ow < OW; ++ow) {
                    float *row = X + ((size_t)n * g->Lout + p0 + ow) * cols;
                    const int iw0 = ow * g->s3[2] - g->p3[2];
                    const int inside = iw0 >= 0 && iw0 + (kw_n - 1) * d2 < W;
                    if (t->bias_col) row[cols - 1] = 1.0f;
                    if (KW && whole && all_rows && inside) {
                        /* the common case: every run inside, one after the other */
                        float *d = row + (t->in_ch0 * K - t->col0);
                        const float *sc = xt + iw0;
                        for (int c = 0; c < t->in_ch; ++c, d += K, sc += g->Lin)
                            for (int r = 0; r < (NR ? NR : nr); ++r)
                                memcpy(d + r * KW, sc + roff[r], sizeof(float) * (size_t)KW);
                        continue;
                    }
                    for (int c = t->in_ch0; c < t->in_ch0 + t->in_ch; ++c) {
                        const float *xc = xt + (size_t)(c - t->in_ch0) * g->Lin;
                        int kb, ke;
                        channel_taps(t, K, c, &kb, &ke);
                        for (int r = 0; r < nr; ++r) {
                            const int k0 = r * kw_n; /* kernel position of the run's start */
                            if (k0 + kw_n <= kb || k0 >= ke) continue;
                            const int col = c * K + k0 - t->col0; /* the run's first column */
                            const float *s = roff[r] >= 0 ? xc + roff[r] : NULL;
                            for (int kw = 0; kw < kw_n; ++kw) {
                                const int k = k0 + kw, iw = iw0 + kw * d2;
                                if (k < kb || k >= ke) continue;
                                row[col + kw] = (s && iw >= 0 && iw < W) ? s[iw] : 0.0f;
                            }
                        }
                    }
                }
            }
}

/* col2im for runs of KW values (KW, NR as gather_runs). Output positions in ascending
 * order; at one output position an input element receives at most one term (distinct
 * kernel positions reach distinct inputs), so every element gets its terms in ascending
 * output position, as in rpu_patch_col2im_ref. */
static inline void col2im_runs(const rpu_patch_geom *g, const rpu_patch_cols *t, const float *DX,
                               int nn, float *dst, const int KW, const int NR) {
    const int kw_n = KW ? KW : g->k3[2], d2 = KW ? 1 : g->d3[2];
    const int K = g->K, W = g->in3[2], OW = g->out3[2], cols = t->cols;
    const int whole = whole_channels(t, K);
    int32_t roff[MAX_KROWS];
    for (int od = 0; od < g->out3[0]; ++od)
        for (int oh = 0; oh < g->out3[1]; ++oh) {
            const int nr = kernel_rows(g, od, oh, roff);
            int all_rows = 1;
            for (int r = 0; r < nr; ++r)
                all_rows &= roff[r] >= 0;
            const size_t p0 = ((size_t)od * g->out3[1] + oh) * OW;
            /* stride 1: the interior outputs [lo, hi) in groups of G, their terms summed in
             * registers (an input element's terms from consecutive outputs, in output
             * order), written back once per group instead of once per output */
            int lo = OW, hi = OW;
            if (KW && whole && all_rows && g->s3[2] == 1) {
                lo = g->p3[2] < OW ? g->p3[2] : OW;
                hi = W - KW + 1 + g->p3[2] < OW ? W - KW + 1 + g->p3[2] : OW;
                if (hi < lo) hi = lo;
            }
            for (int ow = 0; ow < OW; ++ow) {
                if (ow == lo) {
                    const int nr_c = NR ? NR : nr;
                    for (; ow + G <= hi; ow += G) {
                        const float *row = DX + ((size_t)nn * g->Lout + p0 + ow) * cols +
                                           (t->in_ch0 * K - t->col0);
                        float *a = dst + (ow - g->p3[2]);
                        for (int c = 0; c < t->in_ch; ++c, row += K, a += g->Lin)
                            for (int r = 0; r < nr_c; ++r) {
                                float acc[G + KW - 1];
                                float *ar = a + roff[r];
                                for (int j = 0; j < G + KW - 1; ++j)
                                    acc[j] = ar[j];
                                for (int q = 0; q < G; ++q)
                                    for (int kw = 0; kw < KW; ++kw)
                                        acc[q + kw] += row[(size_t)q * cols + r * KW + kw];
                                for (int j = 0; j < G + KW - 1; ++j)
                                    ar[j] = acc[j];
                            }
                    }
                    if (ow >= OW) break;
                }
                const float *row = DX + ((size_t)nn * g->Lout + p0 + ow) * cols;
                const int iw0 = ow * g->s3[2] - g->p3[2];
                const int inside = iw0 >= 0 && iw0 + (kw_n - 1) * d2 < W;
                if (KW && whole && all_rows && inside) {
                    const float *s = row + (t->in_ch0 * K - t->col0);
                    float *a = dst + iw0;
                    for (int c = 0; c < t->in_ch; ++c, s += K, a += g->Lin)
                        for (int r = 0; r < (NR ? NR : nr); ++r)
                            for (int kw = 0; kw < KW; ++kw)
                                a[roff[r] + kw] += s[r * KW + kw];
                    continue;
                }
                for (int c = t->in_ch0; c < t->in_ch0 + t->in_ch; ++c) {
                    float *a = dst + (size_t)(c - t->in_ch0) * g->Lin;
                    int kb, ke;
                    channel_taps(t, K, c, &kb, &ke);
                    for (int r = 0; r < nr; ++r) {
                        const int k0 = r * kw_n;
                        if (roff[r] < 0 || k0 + kw_n <= kb || k0 >= ke) continue;
                        const int col = c * K + k0 - t->col0; /* the run's first column */
                        float *ar = a + roff[r];
                        for (int kw = 0; kw < kw_n; ++kw) {
                            const int k = k0 + kw, iw = iw0 + kw * d2;
                            if (k >= kb && k < ke && iw >= 0 && iw < W) ar[iw] += row[col + kw];
                        }
                    }
                }
            }
        }
}

#if defined(__AVX512F__)
/* ------------------------------------------------------------------ 16 x 16 blocks
 *
 * Stride 1 and dilation 1 along the width: column j of a tile's patch rows (channel c,
 * kernel row r, kernel column kw) over 16 consecutive output columns ow0.. is 16
 * consecutive values of input row r of channel c, from iw = ow0 - pad + kw (zeros where
 * iw leaves the row). The gather loads such a vector for each of 16 columns, transposes
 * the 16 x 16 block in registers and stores 16 patch rows' pieces; col2im transposes the
 * input-gradient rows' blocks into column vectors and adds each to its 16 input elements.
 * An input element receives at one output row one term per kernel column kw, from output
 * column iw + pad - kw: col2im adds the columns of a (channel, kernel row) in descending
 * kw and the blocks of output columns in ascending order, so every element still gets its
 * terms in ascending output position, the reference's order. */

enum { SIMD_MAX_COLS = 512 };

/* Output columns from which the 16 x 16 path pays: on the LeNet-5's conv layers (8 and 24
 * output columns, pulsed) it was slower than the runs (bench scale, conv2's backward 3.9 ->
 * 4.9 ms), on bench conv's 32 faster. */
enum { SIMD_MIN_WIDTH = 32 };

/* Whether the 16 x 16 path takes a shape: stride and dilation 1 along the width, at least
 * SIMD_MIN_WIDTH output columns, a kernel at most 16 wide, a table of at most SIMD_MAX_COLS
 * columns. */
static int simd_shape(const rpu_patch_geom *g, const rpu_patch_cols *t) {
    return g->s3[2] == 1 && g->d3[2] == 1 && g->out3[2] >= SIMD_MIN_WIDTH && g->k3[2] <= 16 &&
           t->ncol <= SIMD_MAX_COLS && g->k3[0] * g->k3[1] <= MAX_KROWS;
}

/* Column j of the tile: its channel's plane (offset from channel in_ch0), its kernel row and
 * its kernel column. */
typedef struct {
    int32_t plane;
    int16_t r, kw;
} simd_col;

static void simd_columns(const rpu_patch_geom *g, const rpu_patch_cols *t, simd_col *cl) {
    for (int j = 0; j < t->ncol; ++j) {
        const int col = t->col0 + j, c = col / g->K, k = col % g->K;
        cl[j].plane = (int32_t)((c - t->in_ch0) * g->Lin);
        cl[j].r = (int16_t)(k / g->k3[2]);
        cl[j].kw = (int16_t)(k % g->k3[2]);
    }
}

/* The lanes l < nv of output columns ow0 + l whose input column ow0 + l - pad + kw lies in
 * the row [0, W). */
static inline __mmask16 simd_lanes(int ow0, int nv, int kw, int pad, int W) {
    int lo = pad - kw - ow0, hi = W + pad - kw - ow0;
    lo = lo > 0 ? lo : 0;
    hi = hi < nv ? hi : nv;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* p + off without forming an out-of-range pointer in C terms (a masked load or store reads
 * or writes only its lanes inside the array). */
static inline float *simd_at(const float *p, ptrdiff_t off) {
    return (float *)(uintptr_t)((uintptr_t)p + (uintptr_t)(off * (ptrdiff_t)sizeof(float)));
}


/* lanes[kw]: simd_lanes of every kernel column kw < KW for the block of output columns
 * from ow0 (nv of them). */
static inline void simd_block_lanes(int ow0, int nv, int KW, int pad, int W, __mmask16 *lanes) {
    for (int kw = 0; kw < KW; ++kw)
        lanes[kw] = simd_lanes(ow0, nv, kw, pad, W);
}

static void gather_simd(const rpu_patch_geom *g, const rpu_patch_cols *t, const float *x,
                        float *X) {
    simd_col cl[SIMD_MAX_COLS];
    simd_columns(g, t, cl);
    const int W = g->in3[2], OW = g->out3[2], pad = g->p3[2], ncol = t->ncol, cols = t->cols;
    int32_t roff[MAX_KROWS];
    __mmask16 lanes[16];
    for (int n = 0; n < g->n; ++n)
        for (int od = 0; od < g->out3[0]; ++od)
            for (int oh = 0; oh < g->out3[1]; ++oh) {
                kernel_rows(g, od, oh, roff);
                const size_t p0 = ((size_t)od * g->out3[1] + oh) * OW;
                const float *xt = x + ((size_t)n * g->C + t->cg + t->in_ch0) * g->Lin;
                float *Xr = X + ((size_t)n * g->Lout + p0) * cols;
                for (int ow0 = 0; ow0 < OW; ow0 += 16) {
                    const int nv = OW - ow0 < 16 ? OW - ow0 : 16;
                    simd_block_lanes(ow0, nv, g->k3[2], pad, W, lanes);
                    const float *xo = simd_at(xt, (ptrdiff_t)ow0 - pad);
                    for (int j0 = 0; j0 < ncol; j0 += 16) {
                        const int nj = ncol - j0 < 16 ? ncol - j0 : 16;
                        __m512 v[16];
                        for (int i = 0; i < 16; ++i) {
                            v[i] = _mm512_setzero_ps();
                            if (i >= nj) continue;
                            const simd_col c = cl[j0 + i];
                            if (roff[c.r] < 0) continue;
                            v[i] = _mm512_maskz_loadu_ps(
                                lanes[c.kw], simd_at(xo, (ptrdiff_t)c.plane + roff[c.r] + c.kw));
                        }
                        rpu_transpose16(v);
                        const __mmask16 cm = (__mmask16)((1u << nj) - 1u);
                        for (int l = 0; l < nv; ++l)
                            _mm512_mask_storeu_ps(Xr + (size_t)(ow0 + l) * cols + j0, cm, v[l]);
                    }
                }
                if (t->bias_col)
                    for (int ow = 0; ow < OW; ++ow)
                        Xr[(size_t)ow * cols + cols - 1] = 1.0f;
            }
}

/* The runs of columns of one channel and kernel row (kernel columns kw0 .. kw0 + len - 1). */
typedef struct {
    int32_t j, plane;
    int16_t r, kw0, len;
} simd_run;

static int simd_runs(const rpu_patch_cols *t, int KW, const simd_col *cl, simd_run *run) {
    int nr = 0;
    for (int j = 0; j < t->ncol;) {
        const int e0 = j + (KW - cl[j].kw), e = e0 < t->ncol ? e0 : t->ncol;
        run[nr++] = (simd_run){j, cl[j].plane, cl[j].r, cl[j].kw, (int16_t)(e - j)};
        j = e;
    }
    return nr;
}

/* Adds the column vectors T of one block of output columns into the input rows, run by
 * run (a channel's kernel row): its 16 + KW - 1 input elements in two registers, its
 * columns added in descending kw (column kw's lane l goes to element l + kw: the column
 * rotated by kw lanes, the low part masked into the first register, the wrapped part into
 * the second). mlo, mhi: the elements each kw adds to. KWC: the kernel width as a
 * constant for whole runs (0: any). */
static inline void add_runs(const simd_run *run, int nrun, const int32_t *roff, const __m512 *T,
                            const __m512i *rotate, const __mmask16 *mlo, const __mmask16 *mhi,
                            const float *base, const int KWC) {
    __mmask16 all_lo = 0, all_hi = 0;
    for (int k = 0; k < KWC; ++k)
        all_lo |= mlo[k], all_hi |= mhi[k];
    for (int q = 0; q < nrun; ++q) {
        const simd_run u = run[q];
        if (roff[u.r] < 0) continue;
        float *a = simd_at(base, (ptrdiff_t)u.plane + roff[u.r]);
        const __m512 *Tu = T + u.j - u.kw0;
        if (KWC && u.kw0 == 0 && u.len == KWC) {
            __m512 lo = _mm512_maskz_loadu_ps(all_lo, a);
            __m512 hi = _mm512_maskz_loadu_ps(all_hi, simd_at(a, 16));
            for (int k = KWC - 1; k >= 0; --k) {
                const __m512 rot = _mm512_permutexvar_ps(rotate[k], Tu[k]);
                lo = _mm512_mask_add_ps(lo, mlo[k], lo, rot);
                hi = _mm512_mask_add_ps(hi, mhi[k], hi, rot);
            }
            _mm512_mask_storeu_ps(a, all_lo, lo);
            _mm512_mask_storeu_ps(simd_at(a, 16), all_hi, hi);
            continue;
        }
        __mmask16 ml = 0, mh = 0;
        for (int k = u.kw0; k < u.kw0 + u.len; ++k)
            ml |= mlo[k], mh |= mhi[k];
        __m512 lo = _mm512_maskz_loadu_ps(ml, a);
        __m512 hi = _mm512_maskz_loadu_ps(mh, simd_at(a, 16));
        for (int k = u.kw0 + u.len - 1; k >= u.kw0; --k) {
            const __m512 rot = _mm512_permutexvar_ps(rotate[k], Tu[k]);
            lo = _mm512_mask_add_ps(lo, mlo[k], lo, rot);
            hi = _mm512_mask_add_ps(hi, mhi[k], hi, rot);
        }
        _mm512_mask_storeu_ps(a, ml, lo);
        _mm512_mask_storeu_ps(simd_at(a, 16), mh, hi);
    }
}

static void col2im_simd(const rpu_patch_geom *g, const rpu_patch_cols *t, const float *DX, int nn,
                        float *dst) {
    simd_col cl[SIMD_MAX_COLS];
    simd_run run[SIMD_MAX_COLS];
    simd_columns(g, t, cl);
    const int W = g->in3[2], OW = g->out3[2], pad = g->p3[2], ncol = t->ncol, cols = t->cols;
    const int KW = g->k3[2], nrun = simd_runs(t, KW, cl, run);
    int32_t roff[MAX_KROWS];
    __m512 T[SIMD_MAX_COLS];
    __m512i rotate[16]; /* lane i takes lane (i - kw) mod 16 */
    for (int kw = 0; kw < 16; ++kw) {
        int32_t idx[16];
        for (int i = 0; i < 16; ++i)
            idx[i] = (i - kw + 16) % 16;
        rotate[kw] = _mm512_loadu_si512(idx);
    }
    __mmask16 lanes[16], mlo[16], mhi[16];
    for (int od = 0; od < g->out3[0]; ++od)
        for (int oh = 0; oh < g->out3[1]; ++oh) {
            kernel_rows(g, od, oh, roff);
            const size_t p0 = ((size_t)od * g->out3[1] + oh) * OW;
            const float *Dr = DX + ((size_t)nn * g->Lout + p0) * cols;
            for (int ow0 = 0; ow0 < OW; ow0 += 16) {
                const int nv = OW - ow0 < 16 ? OW - ow0 : 16;
                simd_block_lanes(ow0, nv, KW, pad, W, lanes);
                for (int kw = 0; kw < KW; ++kw) {
                    mlo[kw] = (__mmask16)(lanes[kw] << kw);
                    mhi[kw] = (__mmask16)((unsigned)lanes[kw] >> (16 - kw));
                }
                for (int j0 = 0; j0 < ncol; j0 += 16) {
                    const int nj = ncol - j0 < 16 ? ncol - j0 : 16;
                    const __mmask16 cm = (__mmask16)((1u << nj) - 1u);
                    __m512 v[16];
                    for (int l = 0; l < 16; ++l)
                        v[l] = l < nv
                                   ? _mm512_maskz_loadu_ps(cm, Dr + (size_t)(ow0 + l) * cols + j0)
                                   : _mm512_setzero_ps();
                    rpu_transpose16(v);
                    for (int i = 0; i < nj; ++i)
                        T[j0 + i] = v[i];
                }
                const float *base = simd_at(dst, (ptrdiff_t)ow0 - pad);
                if (KW == 3)
                    add_runs(run, nrun, roff, T, rotate, mlo, mhi, base, 3);
                else
                    add_runs(run, nrun, roff, T, rotate, mlo, mhi, base, 0);
            }
        }
}
#endif

/* The run width the fast paths are compiled for (0: at run time) and whether the kernel is
 * a square 2-d one (its kernel-row count is then the same constant). */
static int const_width(const rpu_patch_geom *g, int *square) {
    *square = g->k3[0] == 1 && g->k3[1] == g->k3[2];
    return g->d3[2] == 1 && g->k3[2] <= 7 ? g->k3[2] : 0;
}

void rpu_patch_gather(const rpu_patch_geom *g, const rpu_patch_cols *t, const float *x, float *X) {
    if (g->k3[0] * g->k3[1] > MAX_KROWS) {
        rpu_patch_gather_ref(g, t, NULL, x, X);
        return;
    }
#if defined(__AVX512F__)
    if (simd_shape(g, t)) {
        gather_simd(g, t, x, X);
        return;
    }
#endif
    int sq;
    switch (const_width(g, &sq)) {
    case 1:
        gather_runs(g, t, x, X, 1, sq ? 1 : 0);
        break;
    case 2:
        gather_runs(g, t, x, X, 2, sq ? 2 : 0);
        break;
    case 3:
        gather_runs(g, t, x, X, 3, sq ? 3 : 0);
        break;
    case 4:
        gather_runs(g, t, x, X, 4, sq ? 4 : 0);
        break;
    case 5:
        gather_runs(g, t, x, X, 5, sq ? 5 : 0);
        break;
    case 6:
        gather_runs(g, t, x, X, 6, 0);
        break;
    case 7:
        gather_runs(g, t, x, X, 7, 0);
        break;
    default:
        gather_runs(g, t, x, X, 0, 0);
        break;
    }
}

void rpu_patch_col2im(const rpu_patch_geom *g, const rpu_patch_cols *t, const float *DX, int nn,
                      float *dst) {
    if (g->k3[0] * g->k3[1] > MAX_KROWS) {
        col2im_slow(g, t, DX, nn, dst);
        return;
    }
#if defined(__AVX512F__)
    if (simd_shape(g, t)) {
        col2im_simd(g, t, DX, nn, dst);
        return;
    }
#endif
    int sq;
    switch (const_width(g, &sq)) {
    case 1:
        col2im_runs(g, t, DX, nn, dst, 1, sq ? 1 : 0);
        break;
    case 2:
        col2im_runs(g, t, DX, nn, dst, 2, sq ? 2 : 0);
        break;
    case 3:
        col2im_runs(g, t, DX, nn, dst, 3, sq ? 3 : 0);
        break;
    case 4:
        col2im_runs(g, t, DX, nn, dst, 4, sq ? 4 : 0);
        break;
    case 5:
        col2im_runs(g, t, DX, nn, dst, 5, sq ? 5 : 0);
        break;
    case 6:
        col2im_runs(g, t, DX, nn, dst, 6, 0);
        break;
    case 7:
        col2im_runs(g, t, DX, nn, dst, 7, 0);
        break;
    default:
        col2im_runs(g, t, DX, nn, dst, 0, 0);
        break;
    }
}
