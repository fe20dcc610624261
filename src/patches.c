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

#include <string.h>

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
