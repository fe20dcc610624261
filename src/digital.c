/* Digital layers: activations, pooling, flatten, dropout, cross-entropy (see
 * include/rpusim/digital.h for the contract).
 *
 * Pooling handles every spatial case as 3-d with unit sizes (kernel 1, stride 1, padding 0)
 * for the missing leading dimensions. All loops run in a fixed order and nothing depends on
 * the rank, so results are bitwise reproducible. */
#include "rpusim/digital.h"

#include "rpusim/rng.h"

#include "error_impl.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ activations */

static rpu_status check_ew(const void *a, const void *b, const void *c, size_t n, const char *fn) {
    if (n > 0 && (!a || !b || !c)) return RPU_FAIL(RPU_ERR_ARG, "%s: NULL array", fn);
    return RPU_OK;
}

rpu_status rpu_relu_forward(const float *x, size_t n, float *y) {
    RPU_CHECK(check_ew(x, y, y, n, "rpu_relu_forward"));
    for (size_t i = 0; i < n; ++i)
        y[i] = x[i] <= 0.0f ? 0.0f : x[i]; /* NaN compares false: stays NaN */
    return RPU_OK;
}

rpu_status rpu_relu_backward(const float *y, const float *dy, size_t n, float *dx) {
    RPU_CHECK(check_ew(y, dy, dx, n, "rpu_relu_backward"));
    for (size_t i = 0; i < n; ++i)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    return RPU_OK;
}

/* tanh of a float, computed in double and rounded once: within (0.5 + 1e-5) ulp of the
 * exact value (digital.h), with no call into libm, so that the loop below vectorises and
 * the result does not depend on the C library. With a = |x|:
 *   a < 1/16: the odd Taylor series a - a^3/3 + 2a^5/15 - ... to a^11 (the next term is
 *     below 2e-17 a);
 *   else 1 - 2 / (e + 1) with e = exp(2a) = exp(2a / 128)^128: a Taylor polynomial of
 *     degree 12 on [0, 0.3125] (remainder < 5e-17), then 7 squarings (relative error of e
 *     below 128 * 3 * 2^-53 + 7 * 2^-53 < 5e-14); 1 - 2/(e + 1) loses at most a factor 16
 *     at a = 1/16, so the double result is within 1e-12 relative, 2e-5 float ulp.
 * 2a is clamped to 40 (tanh(20) rounds to 1 in float and in double); a NaN passes through
 * every step (the clamp keeps it), so NaN gives NaN; the sign is copied back, so tanh(-0)
 * = -0. mpi_tests/test_digital.c checks the bound against libm's double tanh over a
 * sweep of all float magnitudes; over every float in [0, 12] (1.09e9 values) 12 results
 * were not the correctly rounded tanh (glibc's tanhf: 5.4 %, up to 2.1 ulp). */
static inline float tanh_rounded(float xf) {
    const double x = xf, a = fabs(x), a2 = a * a;
    const double small =
        a + a * a2 *
                (-1.0 / 3 + a2 * (2.0 / 15 + a2 * (-17.0 / 315 +
                                                   a2 * (62.0 / 2835 + a2 * (-1382.0 / 155925)))));
    double u = 2.0 * a;
    u = u > 40.0 ? 40.0 : u;
    const double v = u * (1.0 / 128);
    double e = 1.0 / 479001600;
    static const double inv_fact[12] = {1.0 / 39916800, 1.0 / 3628800, 1.0 / 362880, 1.0 / 40320,
                                        1.0 / 5040,     1.0 / 720,     1.0 / 120,    1.0 / 24,
                                        1.0 / 6,        1.0 / 2,       1.0,          1.0};
    for (int k = 0; k < 12; ++k)
        e = e * v + inv_fact[k];
    for (int k = 0; k < 7; ++k)
        e *= e;
    const double large = 1.0 - 2.0 / (e + 1.0);
    return (float)copysign(a < 0.0625 ? small : large, x);
}

rpu_status rpu_tanh_forward(const float *x, size_t n, float *y) {
    RPU_CHECK(check_ew(x, y, y, n, "rpu_tanh_forward"));
    for (size_t i = 0; i < n; ++i)
        y[i] = tanh_rounded(x[i]);
    return RPU_OK;
}

rpu_status rpu_tanh_backward(const float *y, const float *dy, size_t n, float *dx) {
    RPU_CHECK(check_ew(y, dy, dx, n, "rpu_tanh_backward"));
    for (size_t i = 0; i < n; ++i)
        dx[i] = dy[i] * (1.0f - y[i] * y[i]);
    return RPU_OK;
}

rpu_status rpu_sigmoid_forward(const float *x, size_t n, float *y) {
    RPU_CHECK(check_ew(x, y, y, n, "rpu_sigmoid_forward"));
    for (size_t i = 0; i < n; ++i) {
        float v = x[i];
        if (v >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-v));
        } else {
            float e = expf(v);
            y[i] = e / (1.0f + e);
        }
    }
    return RPU_OK;
}

rpu_status rpu_sigmoid_backward(const float *y, const float *dy, size_t n, float *dx) {
    RPU_CHECK(check_ew(y, dy, dx, n, "rpu_sigmoid_backward"));
    for (size_t i = 0; i < n; ++i)
        dx[i] = dy[i] * y[i] * (1.0f - y[i]);
    return RPU_OK;
}

/* ------------------------------------------------------------------ pooling */

void rpu_pool_params_default(rpu_pool_params *p, int ndim, int k) {
    memset(p, 0, sizeof *p);
    p->ndim = ndim;
    for (int d = 0; d < 3; ++d)
        p->kernel[d] = k;
}

/* The pooling as 3-d: sizes, kernel, stride, padding of dimensions (D, H, W). */
typedef struct {
    int in[3], out[3], k[3], s[3], pad[3];
    size_t lin, lout; /* elements of one channel plane of input / output */
} pool3;

static rpu_status pool_setup(const rpu_pool_params *p, const int *in_size, pool3 *g,
                             const char *fn) {
    memset(g, 0, sizeof *g);
    if (!p || !in_size) return RPU_FAIL(RPU_ERR_ARG, "%s: NULL parameters or sizes", fn);
    if (p->ndim < 1 || p->ndim > 3)
        return RPU_FAIL(RPU_ERR_ARG, "%s: ndim must be 1, 2 or 3, got %d", fn, p->ndim);
    const int lead = 3 - p->ndim;
    int64_t lin = 1, lout = 1;
    for (int d = 0; d < 3; ++d) {
        if (d < lead) {
            g->in[d] = g->out[d] = g->k[d] = g->s[d] = 1;
            g->pad[d] = 0;
            continue;
        }
        const int e = d - lead;
        const int k = p->kernel[e], s = p->stride[e] == 0 ? k : p->stride[e];
        const int pad = p->padding[e], in = in_size[e];
        if (k < 1) return RPU_FAIL(RPU_ERR_ARG, "%s: kernel[%d] = %d must be >= 1", fn, e, k);
        if (p->stride[e] < 0)
            return RPU_FAIL(RPU_ERR_ARG, "%s: stride[%d] = %d must be >= 0 (0: kernel)", fn, e,
                            p->stride[e]);
        if (pad < 0 || pad > k / 2)
            return RPU_FAIL(RPU_ERR_ARG, "%s: padding[%d] = %d must be between 0 and kernel/2 = %d",
                            fn, e, pad, k / 2);
        if (in < 1) return RPU_FAIL(RPU_ERR_ARG, "%s: input size[%d] = %d must be >= 1", fn, e, in);
        if ((int64_t)in + 2 * (int64_t)pad < k)
            return RPU_FAIL(RPU_ERR_ARG,
                            "%s: input size[%d] = %d plus padding 2*%d is smaller than the "
                            "kernel %d",
                            fn, e, in, pad, k);
        g->in[d] = in;
        g->k[d] = k;
        g->s[d] = s;
        g->pad[d] = pad;
        g->out[d] = (int)(((int64_t)in + 2 * (int64_t)pad - k) / s + 1);
        lin *= in;
        lout *= g->out[d];
        if (lin > INT32_MAX)
            return RPU_FAIL(RPU_ERR_ARG, "%s: a channel plane has more than 2^31-1 elements", fn);
    }
    g->lin = (size_t)lin;
    g->lout = (size_t)lout;
    return RPU_OK;
}

rpu_status rpu_pool_output_size(const rpu_pool_params *p, const int *in_size, int *out_size) {
    pool3 g;
    RPU_CHECK(pool_setup(p, in_size, &g, "rpu_pool_output_size"));
    if (!out_size) return RPU_FAIL(RPU_ERR_ARG, "rpu_pool_output_size: NULL out_size");
    for (int e = 0; e < p->ndim; ++e)
        out_size[e] = g.out[3 - p->ndim + e];
    return RPU_OK;
}

/* Checks the batch and returns the number of channel planes n*c (0 allowed). */
static rpu_status pool_planes(int n, int c, const pool3 *g, size_t *planes, const char *fn) {
    if (n < 0 || c < 1)
        return RPU_FAIL(RPU_ERR_ARG, "%s: batch %d must be >= 0 and channels %d >= 1", fn, n, c);
    size_t nc = (size_t)n * (size_t)c;
    size_t big = g->lin > g->lout ? g->lin : g->lout;
    if (nc > 0 && big > SIZE_MAX / sizeof(float) / nc)
        return RPU_FAIL(RPU_ERR_ARG, "%s: tensor size overflows", fn);
    *planes = nc;
    return RPU_OK;
}

/* Clipped range [*lo, *hi) of real inputs of window o along one dimension. */
static inline void window(int o, int s, int pad, int k, int in, int *lo, int *hi) {
    int a = o * s - pad, b = a + k;
    *lo = a < 0 ? 0 : a;
    *hi = b > in ? in : b;
}

/* The clipped input window [d0, d1) x [h0, h1) x [w0, w1) of output element q of a plane. */
typedef struct {
    int d0, d1, h0, h1, w0, w1;
} pool_box;

static inline pool_box box_of(const pool3 *g, size_t q) {
    const int ow = (int)(q % (size_t)g->out[2]), oh = (int)(q / (size_t)g->out[2] % g->out[1]);
    const int od = (int)(q / ((size_t)g->out[2] * g->out[1]));
    pool_box b;
    window(od, g->s[0], g->pad[0], g->k[0], g->in[0], &b.d0, &b.d1);
    window(oh, g->s[1], g->pad[1], g->k[1], g->in[1], &b.h0, &b.h1);
    window(ow, g->s[2], g->pad[2], g->k[2], g->in[2], &b.w0, &b.w1);
    return b;
}

/* Max pooling of one channel plane without padding (every window lies inside the plane):
 * the same results as the window-by-window loop of rpu_maxpool_forward, computed one
 * output row (od, oh) at a time with the window's positions in scan order (kd, kh, kw)
 * in the outer loops and the row's windows in the inner one, which vectorises; y and
 * argmax of the row hold the running maximum and its index. A position replaces the
 * maximum when the maximum is not NaN and the value is larger or NaN: the first maximum
 * in scan order, or the first NaN, as in the reference loop. */
/* The running maximum (*b, *bi) takes value v at index i when *b is not NaN and v is
 * larger or NaN (the first maximum in scan order, or the first NaN): !(v <= b) is true
 * when v > b or either is NaN. (Written this way the compiler vectorises the loops.) */
static inline void max_step(float v, int32_t i, float *b, int32_t *bi) {
    const bool take = !(v <= *b) && *b == *b;
    *bi = take ? i : *bi;
    *b = take ? v : *b;
}

/* Max pooling with the classic 2-d 2x2 window, stride 2 along the width and no padding,
 * for all planes: one loop per output row with the four positions in its body (constant
 * strides: the compiler vectorises it). A row's loop runs to a multiple of 8 outputs
 * where the input and output arrays extend that far: the extra outputs belong to the
 * following output rows, which are computed (overwritten) after it, and the extra inputs
 * lie inside the input, so the vector loop needs no scalar remainder (whose compare
 * branches mispredict on real data: with LeNet's 12- and 4-wide rows most of the time
 * went there). */
static void maxpool_2x2(const pool3 *g, const float *restrict x, float *restrict y,
                        int32_t *restrict argmax, size_t planes) {
    const int OW = g->out[2], W = g->in[2], OWv = (OW + 7) / 8 * 8;
    const size_t nx = planes * g->lin, ny = planes * g->lout;
    for (size_t pl = 0; pl < planes; ++pl)
        for (int oh = 0; oh < g->out[1]; ++oh) {
            const int32_t i0 = oh * g->s[1] * W, i1 = i0 + W; /* row offsets in the plane */
            const size_t in0 = pl * g->lin + (size_t)i0, out0 = pl * g->lout + (size_t)oh * OW;
            const int m = in0 + W + 2 * (size_t)OWv <= nx && out0 + OWv <= ny ? OWv : OW;
            const float *r0 = x + in0, *r1 = r0 + W;
            float *yr = y + out0;
            if (!argmax) {
                for (int ow = 0; ow < m; ++ow) {
                    float b = r0[2 * ow];
                    int32_t bi = 0;
                    max_step(r0[2 * ow + 1], 1, &b, &bi);
                    max_step(r1[2 * ow], 2, &b, &bi);
                    max_step(r1[2 * ow + 1], 3, &b, &bi);
                    yr[ow] = b;
                }
                continue;
            }
            int32_t *a = argmax + out0;
            for (int ow = 0; ow < m; ++ow) {
                float b = r0[2 * ow];
                int32_t bi = i0 + 2 * ow;
                max_step(r0[2 * ow + 1], i0 + 2 * ow + 1, &b, &bi);
                max_step(r1[2 * ow], i1 + 2 * ow, &b, &bi);
                max_step(r1[2 * ow + 1], i1 + 2 * ow + 1, &b, &bi);
                yr[ow] = b;
                a[ow] = bi;
            }
        }
}

static void maxpool_plane_unpadded(const pool3 *g, const float *xp, float *yp, int32_t *ap) {
    const int OW = g->out[2], sw = g->s[2];
    for (int od = 0; od < g->out[0]; ++od)
        for (int oh = 0; oh < g->out[1]; ++oh) {
            const size_t q0 = ((size_t)od * g->out[1] + oh) * (size_t)OW;
            float *y = yp + q0;
            int32_t *a = ap ? ap + q0 : NULL;
            for (int kd = 0; kd < g->k[0]; ++kd)
                for (int kh = 0; kh < g->k[1]; ++kh)
                    for (int kw = 0; kw < g->k[2]; ++kw) {
                        /* flat index of this position in the window of output ow = 0 */
                        const int32_t base = (int32_t)((((size_t)od * g->s[0] + kd) * g->in[1] +
                                                        (size_t)oh * g->s[1] + kh) *
                                                           g->in[2] +
                                                       kw);
                        const float *xr = xp + base;
                        if (kd == 0 && kh == 0 && kw == 0) {
                            for (int ow = 0; ow < OW; ++ow)
                                y[ow] = xr[(size_t)ow * sw];
                            if (a)
                                for (int ow = 0; ow < OW; ++ow)
                                    a[ow] = base + ow * sw;
                        } else if (a) {
                            for (int ow = 0; ow < OW; ++ow) {
                                const float v = xr[(size_t)ow * sw], b = y[ow];
                                const bool take = !(v <= b) && b == b;
                                y[ow] = take ? v : b;
                                a[ow] = take ? base + ow * sw : a[ow];
                            }
                        } else {
                            for (int ow = 0; ow < OW; ++ow) {
                                const float v = xr[(size_t)ow * sw], b = y[ow];
                                const bool take = !(v <= b) && b == b;
                                y[ow] = take ? v : b;
                            }
                        }
                    }
        }
}

rpu_status rpu_maxpool_forward(const rpu_pool_params *p, const float *x, int n, int c,
                               const int *in_size, float *y, int32_t *argmax) {
    static const char fn[] = "rpu_maxpool_forward";
    pool3 g;
    size_t planes = 0;
    RPU_CHECK(pool_setup(p, in_size, &g, fn));
    RPU_CHECK(pool_planes(n, c, &g, &planes, fn));
    if (planes > 0 && (!x || !y)) return RPU_FAIL(RPU_ERR_ARG, "%s: NULL x or y", fn);
    if (g.pad[0] == 0 && g.pad[1] == 0 && g.pad[2] == 0) {
        if (g.k[0] == 1 && g.k[1] == 2 && g.k[2] == 2 && g.s[2] == 2) {
            maxpool_2x2(&g, x, y, argmax, planes);
            return RPU_OK;
        }
        for (size_t pl = 0; pl < planes; ++pl)
            maxpool_plane_unpadded(&g, x + pl * g.lin, y + pl * g.lout,
                                   argmax ? argmax + pl * g.lout : NULL);
        return RPU_OK;
    }
    /* the reference: window by window, clipped to the plane */
    for (size_t pl = 0; pl < planes; ++pl) {
        const float *xp = x + pl * g.lin;
        float *yp = y + pl * g.lout;
        int32_t *ap = argmax ? argmax + pl * g.lout : NULL;
        for (size_t q = 0; q < g.lout; ++q) {
            const pool_box b = box_of(&g, q);
            /* padding <= kernel/2 guarantees a non-empty window */
            int32_t best_i = (int32_t)(((size_t)b.d0 * g.in[1] + b.h0) * g.in[2] + b.w0);
            float best = xp[best_i];
            for (int id = b.d0; id < b.d1 && !isnan(best); ++id)
                for (int ih = b.h0; ih < b.h1 && !isnan(best); ++ih) {
                    size_t row = ((size_t)id * g.in[1] + ih) * g.in[2];
                    for (int iw = b.w0; iw < b.w1; ++iw) {
                        float v = xp[row + iw];
                        if (v > best || isnan(v)) {
                            best = v;
                            best_i = (int32_t)(row + iw);
                            if (isnan(v)) break;
                        }
                    }
                }
            yp[q] = best;
            if (ap) ap[q] = best_i;
        }
    }
    return RPU_OK;
}

rpu_status rpu_maxpool_backward(const rpu_pool_params *p, const float *dy, const int32_t *argmax,
                                int n, int c, const int *in_size, float *dx) {
    static const char fn[] = "rpu_maxpool_backward";
    pool3 g;
    size_t planes = 0;
    RPU_CHECK(pool_setup(p, in_size, &g, fn));
    RPU_CHECK(pool_planes(n, c, &g, &planes, fn));
    if (planes > 0 && (!dy || !argmax || !dx))
        return RPU_FAIL(RPU_ERR_ARG, "%s: NULL dy, argmax or dx", fn);
    for (size_t i = 0; i < planes * g.lout; ++i)
        if (argmax[i] < 0 || (size_t)argmax[i] >= g.lin)
            return RPU_FAIL(RPU_ERR_ARG, "%s: argmax[%zu] = %d outside the channel plane (%zu)", fn,
                            i, (int)argmax[i], g.lin);
    if (planes > 0) memset(dx, 0, planes * g.lin * sizeof *dx);
    for (size_t pl = 0; pl < planes; ++pl) {
        const float *dyp = dy + pl * g.lout;
        const int32_t *ap = argmax + pl * g.lout;
        float *dxp = dx + pl * g.lin;
        for (size_t q = 0; q < g.lout; ++q)
            dxp[ap[q]] += dyp[q];
    }
    return RPU_OK;
}

/* Divisor of a window: prod(kernel), or the count of real inputs with exclude_pad. */
static inline int avg_divisor(const rpu_pool_params *p, const pool3 *g, int nd, int nh, int nw) {
    return p->exclude_pad ? nd * nh * nw : g->k[0] * g->k[1] * g->k[2];
}

rpu_status rpu_avgpool_forward(const rpu_pool_params *p, const float *x, int n, int c,
                               const int *in_size, float *y) {
    static const char fn[] = "rpu_avgpool_forward";
    pool3 g;
    size_t planes = 0;
    RPU_CHECK(pool_setup(p, in_size, &g, fn));
    RPU_CHECK(pool_planes(n, c, &g, &planes, fn));
    if (planes > 0 && (!x || !y)) return RPU_FAIL(RPU_ERR_ARG, "%s: NULL x or y", fn);
    for (size_t pl = 0; pl < planes; ++pl) {
        const float *xp = x + pl * g.lin;
        float *yp = y + pl * g.lout;
        for (size_t q = 0; q < g.lout; ++q) {
            const pool_box b = box_of(&g, q);
            double sum = 0.0;
            for (int id = b.d0; id < b.d1; ++id)
                for (int ih = b.h0; ih < b.h1; ++ih) {
                    size_t row = ((size_t)id * g.in[1] + ih) * g.in[2];
                    for (int iw = b.w0; iw < b.w1; ++iw)
                        sum += xp[row + iw];
                }
            yp[q] = (float)(sum / avg_divisor(p, &g, b.d1 - b.d0, b.h1 - b.h0, b.w1 - b.w0));
        }
    }
    return RPU_OK;
}

rpu_status rpu_avgpool_backward(const rpu_pool_params *p, const float *dy, int n, int c,
                                const int *in_size, float *dx) {
    static const char fn[] = "rpu_avgpool_backward";
    pool3 g;
    size_t planes = 0;
    RPU_CHECK(pool_setup(p, in_size, &g, fn));
    RPU_CHECK(pool_planes(n, c, &g, &planes, fn));
    if (planes > 0 && (!dy || !dx)) return RPU_FAIL(RPU_ERR_ARG, "%s: NULL dy or dx", fn);
    if (planes > 0) memset(dx, 0, planes * g.lin * sizeof *dx);
    for (size_t pl = 0; pl < planes; ++pl) {
        const float *dyp = dy + pl * g.lout;
        float *dxp = dx + pl * g.lin;
        for (size_t q = 0; q < g.lout; ++q) {
            const pool_box b = box_of(&g, q);
            float share = dyp[q] / (float)avg_divisor(p, &g, b.d1 - b.d0, b.h1 - b.h0, b.w1 - b.w0);
            for (int id = b.d0; id < b.d1; ++id)
                for (int ih = b.h0; ih < b.h1; ++ih) {
                    size_t row = ((size_t)id * g.in[1] + ih) * g.in[2];
                    for (int iw = b.w0; iw < b.w1; ++iw)
                        dxp[row + iw] += share;
                }
        }
    }
    return RPU_OK;
}

/* ------------------------------------------------------------------ flatten */

rpu_status rpu_flatten_features(int c, int ndim, const int *size, int *features) {
    if (!features || (ndim > 0 && !size))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_flatten_features: NULL size or features");
    if (ndim < 0 || ndim > 3)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_flatten_features: ndim must be 0..3, got %d", ndim);
    if (c < 1) return RPU_FAIL(RPU_ERR_ARG, "rpu_flatten_features: channels %d must be >= 1", c);
    int64_t f = c;
    for (int d = 0; d < ndim; ++d) {
        if (size[d] < 1)
            return RPU_FAIL(RPU_ERR_ARG, "rpu_flatten_features: size[%d] = %d must be >= 1", d,
                            size[d]);
        f *= size[d];
        if (f > INT32_MAX)
            return RPU_FAIL(RPU_ERR_ARG, "rpu_flatten_features: more than 2^31-1 features");
    }
    *features = (int)f;
    return RPU_OK;
}

/* ------------------------------------------------------------------ dropout */

rpu_status rpu_dropout_forward(const float *x, size_t n, float p, bool training, uint64_t seed,
                               uint32_t layer_id, uint64_t step, float *mask_out, float *y) {
    return rpu_dropout_forward_at(x, 0, n, p, training, seed, layer_id, step, mask_out, y);
}

rpu_status rpu_dropout_forward_at(const float *x, size_t first, size_t n, float p, bool training,
                                  uint64_t seed, uint32_t layer_id, uint64_t step, float *mask_out,
                                  float *y) {
    static const char fn[] = "rpu_dropout_forward";
    if (n > 0 && (!x || !mask_out || !y)) return RPU_FAIL(RPU_ERR_ARG, "%s: NULL array", fn);
    if (!(p >= 0.0f && p <= 1.0f))
        return RPU_FAIL(RPU_ERR_ARG, "%s: p = %g must be in [0, 1]", fn, (double)p);
    if (step >> 32)
        return RPU_FAIL(RPU_ERR_ARG, "%s: step %llu must be < 2^32", fn, (unsigned long long)step);
    if ((uint64_t)first + n > ((uint64_t)1 << 34))
        return RPU_FAIL(RPU_ERR_ARG, "%s: values up to %zu exceed 2^34 per step", fn, first + n);
    if (!training) {
        for (size_t i = 0; i < n; ++i) {
            mask_out[i] = 1.0f;
            y[i] = x[i];
        }
        return RPU_OK;
    }
    rpu_rng r;
    rpu_rng_init(&r, seed, rpu_stream_id(layer_id, 0, RPU_PURPOSE_DATA));
    /* uniforms straight into the mask, then turned into factors in place: value i of the
     * step is value i % 4 of block (step << 32) + i / 4; a start inside a block takes that
     * block's tail first */
    const uint64_t block = (step << 32) + first / 4;
    const size_t head = first % 4 ? 4 - first % 4 : 0, h = head < n ? head : n;
    if (h) {
        float four[4];
        rpu_rng_uniform_at(&r, block, four, 4);
        memcpy(mask_out, four + first % 4, sizeof(float) * h);
    }
    if (n > h) rpu_rng_uniform_at(&r, block + (h ? 1 : 0), mask_out + h, n - h);
    const float scale = p < 1.0f ? (float)(1.0 / (1.0 - (double)p)) : 0.0f;
    for (size_t i = 0; i < n; ++i) {
        mask_out[i] = mask_out[i] < p ? 0.0f : scale;
        y[i] = x[i] * mask_out[i];
    }
    return RPU_OK;
}

rpu_status rpu_dropout_backward(const float *dy, const float *mask, size_t n, float *dx) {
    RPU_CHECK(check_ew(dy, mask, dx, n, "rpu_dropout_backward"));
    for (size_t i = 0; i < n; ++i)
        dx[i] = dy[i] * mask[i];
    return RPU_OK;
}

/* ------------------------------------------------------------------ loss */

rpu_status rpu_cross_entropy(const float *logits, const uint8_t *labels, int n, int k,
                             double *loss_mean, float *dlogits, int *correct) {
    static const char fn[] = "rpu_cross_entropy";
    if (!logits || !labels || !loss_mean)
        return RPU_FAIL(RPU_ERR_ARG, "%s: NULL logits, labels or loss_mean", fn);
    if (n < 1 || k < 1)
        return RPU_FAIL(RPU_ERR_ARG, "%s: batch %d and classes %d must be >= 1", fn, n, k);
    for (int i = 0; i < n; ++i)
        if (labels[i] >= k)
            return RPU_FAIL(RPU_ERR_ARG, "%s: label[%d] = %d is not below the class count %d", fn,
                            i, (int)labels[i], k);
    double total = 0.0;
    int ok = 0;
    const double inv_n = 1.0 / n;
    for (int i = 0; i < n; ++i) {
        const float *z = logits + (size_t)i * k;
        int am = 0;
        for (int j = 1; j < k; ++j)
            if (z[j] > z[am]) am = j;
        const double m = z[am];
        double s = 1.0; /* exp(z_am - m) */
        for (int j = 0; j < k; ++j)
            if (j != am) s += exp((double)z[j] - m);
        const double log_s = log(s);
        total += (m - (double)z[labels[i]]) + log_s; /* m - z first: exact for floats */
        ok += am == labels[i];
        if (dlogits) {
            float *g = dlogits + (size_t)i * k;
            for (int j = 0; j < k; ++j) {
                double pj = exp((double)z[j] - m - log_s);
                g[j] = (float)((pj - (j == labels[i] ? 1.0 : 0.0)) * inv_n);
            }
        }
    }
    *loss_mean = total * inv_n;
    if (correct) *correct = ok;
    return RPU_OK;
}
