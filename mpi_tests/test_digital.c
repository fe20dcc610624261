/* Tests of the digital layers (include/rpusim/digital.h): activations, max/avg pooling
 * (1d/2d/3d), flatten, dropout and cross-entropy.
 *
 * Forwards are compared with straightforward references written here (plain loops; the
 * pooling reference walks every kernel position of every window with explicit -inf / zero
 * padding, independently of the library's 3-d lifting). Backwards are compared with
 * central finite differences of a scalar L(x) = sum_q w_q f(x)_q with random weights w
 * (so dy = w); the step and tolerance are given at each test. Every rank runs every check
 * and the replicated outputs are compared bitwise with rank 0's. */
#include "rpusim/digital.h"
#include "rpusim/rng.h"
#include "rpusim/status.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rank 0's bytes broadcast and compared with this rank's (replicated results). */
static bool same_on_all_ranks(const void *buf, size_t bytes) {
    unsigned char *r0 = malloc(bytes ? bytes : 1);
    memcpy(r0, buf, bytes);
    MPI_Bcast(r0, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    int same = memcmp(r0, buf, bytes) == 0, all = 0;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    free(r0);
    return all == 1;
}

/* Values on a grid of 2^-8 so that x +- h (h = 2^-7) is exact in float. */
static void fill_grid(float *x, int n, float lo, float hi, uint64_t seed, uint64_t id) {
    tl_fill_uniform(x, n, lo, hi, seed, id);
    for (int i = 0; i < n; ++i)
        x[i] = roundf(x[i] * 256.0f) / 256.0f;
}

/* ------------------------------------------------------------------ activations */

typedef enum { ACT_RELU, ACT_TANH, ACT_SIGMOID } act_kind;
static const char *act_name[] = {"relu", "tanh", "sigmoid"};

static rpu_status act_fwd(act_kind k, const float *x, size_t n, float *y) {
    return k == ACT_RELU   ? rpu_relu_forward(x, n, y)
           : k == ACT_TANH ? rpu_tanh_forward(x, n, y)
                           : rpu_sigmoid_forward(x, n, y);
}

static rpu_status act_bwd(act_kind k, const float *y, const float *dy, size_t n, float *dx) {
    return k == ACT_RELU   ? rpu_relu_backward(y, dy, n, dx)
           : k == ACT_TANH ? rpu_tanh_backward(y, dy, n, dx)
                           : rpu_sigmoid_backward(y, dy, n, dx);
}

/* Reference in double from the textbook definitions. */
static double act_ref(act_kind k, double x) {
    if (k == ACT_RELU) return x > 0 ? x : 0;
    if (k == ACT_TANH) {
        if (fabs(x) > 20) return x > 0 ? 1 : -1;
        double e = exp(2 * x);
        return (e - 1) / (e + 1);
    }
    return 1.0 / (1.0 + exp(-x));
}

/* Forward: within 2 float ulps (relative 2.5e-7) of the double reference, plus extreme
 * inputs (+-1e4, +-100) that must stay finite. Backward (from the output y): central
 * differences of the library's own forward with h = 2^-7 on inputs on a 2^-8 grid
 * (exact perturbations); |dx - fd| <= 2e-4 + 1e-3 |fd|. For relu, inputs within h of 0
 * are skipped (the kink). In-place calls (y = x, dx = dy) give the same results. */
static void test_activations(void) {
    enum { N = 600 };
    float x[N], y[N], w[N], dx[N], tmp[N];
    for (int k = 0; k < 3; ++k) {
        fill_grid(x, N, -6.0f, 6.0f, 100 + (uint64_t)k, 1);
        x[0] = 1e4f, x[1] = -1e4f, x[2] = 100.0f, x[3] = -100.0f, x[4] = 0.0f;
        tl_fill_uniform(w, N, -1.0f, 1.0f, 200 + (uint64_t)k, 2);
        CHECK_OK(act_fwd((act_kind)k, x, N, y));
        int bad = 0;
        for (int i = 0; i < N; ++i) {
            double r = act_ref((act_kind)k, x[i]);
            if (!(fabs(y[i] - r) <= 2.5e-7 * fabs(r) + 1e-38)) {
                if (bad++ < 3)
                    CHECK(false, "%s(%g) = %.9g, reference %.9g", act_name[k], (double)x[i],
                          (double)y[i], r);
            }
        }
        CHECK(bad == 0, "%s forward matches the reference (%d of %d differ)", act_name[k], bad, N);
        memcpy(tmp, x, sizeof x);
        CHECK_OK(act_fwd((act_kind)k, tmp, N, tmp));
        CHECK(memcmp(tmp, y, sizeof y) == 0, "%s forward in place", act_name[k]);
        CHECK(same_on_all_ranks(y, sizeof y), "%s forward identical on all ranks", act_name[k]);

        CHECK_OK(act_bwd((act_kind)k, y, w, N, dx));
        const float h = 1.0f / 128;
        int fd_bad = 0, fd_n = 0;
        for (int i = 5; i < N; ++i) {
            if (k == ACT_RELU && fabsf(x[i]) <= h) continue;
            float xp = x[i] + h, xm = x[i] - h, yp, ym;
            act_fwd((act_kind)k, &xp, 1, &yp);
            act_fwd((act_kind)k, &xm, 1, &ym);
            double fd = (double)w[i] * ((double)yp - ym) / (2.0 * h);
            fd_n++;
            if (!(fabs(dx[i] - fd) <= 2e-4 + 1e-3 * fabs(fd))) {
                if (fd_bad++ < 3)
                    CHECK(false, "%s backward at x = %g: %.7g, finite difference %.7g", act_name[k],
                          (double)x[i], (double)dx[i], fd);
            }
        }
        CHECK(fd_bad == 0 && fd_n > N / 2, "%s backward = finite differences (%d of %d bad)",
              act_name[k], fd_bad, fd_n);
        memcpy(tmp, w, sizeof w);
        CHECK_OK(act_bwd((act_kind)k, y, tmp, N, tmp));
        CHECK(memcmp(tmp, dx, sizeof dx) == 0, "%s backward in place", act_name[k]);
        for (int i = 0; i < 5; ++i)
            CHECK(isfinite(y[i]) && isfinite(dx[i]), "%s finite at x = %g", act_name[k],
                  (double)x[i]);
    }
    /* relu specifics: gradient 0 at 0 and for negatives, NaN propagates */
    float z[3] = {0.0f, -2.0f, NAN}, yz[3], g[3] = {1, 1, 1}, gz[3];
    CHECK_OK(rpu_relu_forward(z, 3, yz));
    CHECK_OK(rpu_relu_backward(yz, g, 3, gz));
    CHECK(yz[0] == 0 && yz[1] == 0 && isnan(yz[2]), "relu(0, -2, NaN) = (0, 0, NaN)");
    CHECK(gz[0] == 0 && gz[1] == 0, "relu gradient 0 at 0 and below");
    CHECK_OK(rpu_tanh_forward(NULL, 0, NULL));
    CHECK_STATUS(rpu_sigmoid_forward(NULL, 3, yz), RPU_ERR_ARG);
    CHECK_STATUS(rpu_relu_backward(yz, NULL, 3, gz), RPU_ERR_ARG);
}

/* tanh against libm's double tanh (itself within 1 double ulp, 2^-52 relative): the
 * bound stated in digital.h, |y - tanh(x)| <= (0.5 + 2^-14) ulp, where ulp is the
 * spacing of floats at |tanh(x)| (2^(e-23) for 2^e <= |tanh(x)| < 2^(e+1), 2^-149 for
 * subnormals), on a sweep of every 257th float from 0 to 12 (tanh rounds to 1 from ~9.01
 * on) with the sign flipped on every other one (tanh is odd; -x gives exactly -y), plus
 * +-0 (sign kept), subnormals, +-inf, NaN, huge values. The fraction of values that are
 * not the correctly rounded tanh is printed. */
static void test_tanh_bound(void) {
    enum { B = 4096 };
    static float x[B], y[B];
    uint32_t top;
    const float twelve = 12.0f;
    memcpy(&top, &twelve, sizeof top);
    double worst = 0;
    float worst_x = 0;
    long total = 0, not_cr = 0, odd_bad = 0;
    uint32_t bits = 0;
    while (bits <= top) {
        int m = 0;
        for (; m < B && bits <= top; ++m, bits += 257) {
            memcpy(&x[m], &bits, sizeof bits);
            if (m & 1) x[m] = -x[m];
        }
        CHECK_OK(rpu_tanh_forward(x, (size_t)m, y));
        for (int i = 0; i < m; ++i) {
            const double r = tanh((double)x[i]);
            const double ulp = fabs(r) < 0x1p-126 ? 0x1p-149 : ldexp(1.0, ilogb(r) - 23);
            const double err = fabs((double)y[i] - r) / ulp;
            if (!(err <= worst)) {
                worst = err;
                worst_x = x[i];
            }
            not_cr += y[i] != (float)r;
            float neg = -x[i], yn;
            rpu_tanh_forward(&neg, 1, &yn);
            odd_bad += yn != -y[i] || signbit(yn) == signbit(y[i]);
            ++total;
        }
    }
    CHECK(worst <= 0.5 + 0x1p-14,
          "tanh: max error %.6f ulp (at x = %a) <= 0.5 + 2^-14 over %ld "
          "values",
          worst, (double)worst_x, total);
    CHECK(odd_bad == 0, "tanh(-x) = -tanh(x) bitwise (%ld differ)", odd_bad);
    if (tl_rank() == 0)
        printf("tanh: %ld of %ld values not correctly rounded, max error %.6f ulp\n", not_cr, total,
               worst);
    const float sp[] = {0.0f,     -0.0f,     0x1p-149f, -0x1p-149f, 0x1p-127f, 1e-20f,
                        INFINITY, -INFINITY, 1e30f,     -3e38f,     9.5f,      0.0625f};
    const float want[] = {0.0f, -0.0f, 0x1p-149f, -0x1p-149f, 0x1p-127f, 1e-20f,
                          1.0f, -1.0f, 1.0f,      -1.0f,      1.0f,      (float)tanh(0.0625)};
    enum { NS = sizeof sp / sizeof sp[0] };
    float ys[NS];
    CHECK_OK(rpu_tanh_forward(sp, NS, ys));
    CHECK(memcmp(ys, want, sizeof ys) == 0, "tanh of special values (+-0 keep their sign)");
    const float q = NAN;
    float yq = 0;
    CHECK_OK(rpu_tanh_forward(&q, 1, &yq));
    CHECK(isnan(yq), "tanh(NaN) = NaN");
}

/* ------------------------------------------------------------------ pooling */

typedef struct {
    rpu_pool_params p;
    int in[3];
    int out_want[3]; /* PyTorch's formula, by hand */
    int n, c;
    const char *label;
} pool_case;

static size_t prod(const int *v, int nd) {
    size_t r = 1;
    for (int d = 0; d < nd; ++d)
        r *= (size_t)v[d];
    return r;
}

/* Reference: every window, every kernel position; padding is -inf (max) or 0 (avg). The
 * max keeps the first strictly larger value in window scan order; a padded position never
 * replaces a real one since real inputs are > -inf; the first NaN of the window wins and
 * stays. Avg divides by prod(kernel) or, with exclude_pad, by the number of real
 * positions. */
static void ref_pool(const pool_case *pc, bool maxp, const float *x, float *y, int32_t *am) {
    const int nd = pc->p.ndim;
    int k[3], s[3], pd[3];
    for (int d = 0; d < nd; ++d) {
        k[d] = pc->p.kernel[d];
        s[d] = pc->p.stride[d] ? pc->p.stride[d] : k[d];
        pd[d] = pc->p.padding[d];
    }
    const size_t lin = prod(pc->in, nd), lout = prod(pc->out_want, nd), kk = prod(k, nd);
    for (size_t pl = 0; pl < (size_t)pc->n * pc->c; ++pl) {
        for (size_t q = 0; q < lout; ++q) {
            int o[3];
            size_t rem = q;
            for (int d = nd - 1; d >= 0; --d) {
                o[d] = (int)(rem % (size_t)pc->out_want[d]);
                rem /= (size_t)pc->out_want[d];
            }
            float best = -INFINITY;
            int32_t bi = -1;
            double sum = 0;
            int real = 0;
            for (size_t r = 0; r < kk; ++r) {
                int t[3];
                size_t rr = r;
                for (int d = nd - 1; d >= 0; --d) {
                    t[d] = (int)(rr % (size_t)k[d]);
                    rr /= (size_t)k[d];
                }
                bool inside = true;
                size_t flat = 0;
                for (int d = 0; d < nd; ++d) {
                    int pos = o[d] * s[d] - pd[d] + t[d];
                    if (pos < 0 || pos >= pc->in[d]) inside = false;
                    flat = flat * (size_t)pc->in[d] + (size_t)(pos < 0 ? 0 : pos);
                }
                float v = inside ? x[pl * lin + flat] : (maxp ? -INFINITY : 0.0f);
                real += inside;
                if (!isnan(best) && (v > best || isnan(v))) {
                    best = v;
                    bi = (int32_t)flat;
                }
                sum += v;
            }
            if (maxp) {
                y[pl * lout + q] = best;
                am[pl * lout + q] = bi;
            } else {
                y[pl * lout + q] = (float)(sum / (pc->p.exclude_pad ? real : (double)kk));
            }
        }
    }
}

static double pool_loss(const pool_case *pc, bool maxp, const float *x, const float *w, float *ybuf,
                        int32_t *abuf) {
    if (maxp)
        rpu_maxpool_forward(&pc->p, x, pc->n, pc->c, pc->in, ybuf, abuf);
    else
        rpu_avgpool_forward(&pc->p, x, pc->n, pc->c, pc->in, ybuf);
    size_t m = (size_t)pc->n * pc->c * prod(pc->out_want, pc->p.ndim);
    double L = 0;
    for (size_t q = 0; q < m; ++q)
        L += (double)w[q] * ybuf[q];
    return L;
}

/* One case: output size; forward vs reference (max: bitwise values and indices; avg:
 * |y - ref| <= 1e-6 (|ref| + 1)); backward vs central differences, h = 2^-10 on inputs
 * that are distinct multiples of 2^-7 for max (so no window's order changes and x +- h is
 * exact) and uniform inputs for avg (linear, so only round-off: tolerance 1e-4 abs). A
 * second max run on inputs with many ties (values in {0, 1, 2}) checks the first-max rule
 * against the reference. */
static void pool_case_run(const pool_case *pc, uint64_t seed) {
    const int nd = pc->p.ndim;
    int out[3] = {0, 0, 0};
    CHECK_OK(rpu_pool_output_size(&pc->p, pc->in, out));
    CHECK(memcmp(out, pc->out_want, sizeof(int) * (size_t)nd) == 0,
          "%s: output size (%d %d %d), want (%d %d %d)", pc->label, out[0], out[1], out[2],
          pc->out_want[0], pc->out_want[1], pc->out_want[2]);
    const size_t lin = prod(pc->in, nd), lout = prod(pc->out_want, nd);
    const size_t nx = (size_t)pc->n * pc->c * lin, ny = (size_t)pc->n * pc->c * lout;
    float *x = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny);
    float *yr = malloc(sizeof(float) * ny), *w = malloc(sizeof(float) * ny);
    float *dx = malloc(sizeof(float) * nx), *xs = malloc(sizeof(float) * nx);
    int32_t *am = malloc(sizeof(int32_t) * ny), *amr = malloc(sizeof(int32_t) * ny);
    int32_t *ab = malloc(sizeof(int32_t) * ny);
    tl_fill_uniform(w, (int)ny, -1.0f, 1.0f, seed, 3);

    for (int maxp = 1; maxp >= 0; --maxp) {
        const char *kind = maxp ? "maxpool" : "avgpool";
        if (maxp) {
            /* distinct values k * 2^-7 in a shuffled order */
            for (size_t i = 0; i < nx; ++i)
                x[i] = ((float)i - (float)nx / 2) / 128.0f;
            rpu_rng r;
            rpu_rng_init(&r, seed, rpu_stream_id(9, 0, RPU_PURPOSE_TEST));
            for (size_t i = nx - 1; i > 0; --i) {
                size_t j = rpu_rng_u32(&r) % (i + 1);
                float t = x[i];
                x[i] = x[j], x[j] = t;
            }
            CHECK_OK(rpu_maxpool_forward(&pc->p, x, pc->n, pc->c, pc->in, y, am));
            ref_pool(pc, true, x, yr, amr);
            CHECK(memcmp(y, yr, sizeof(float) * ny) == 0, "%s %s: values = reference", pc->label,
                  kind);
            CHECK(memcmp(am, amr, sizeof(int32_t) * ny) == 0, "%s %s: argmax = reference",
                  pc->label, kind);
            CHECK(same_on_all_ranks(y, sizeof(float) * ny), "%s %s: same on all ranks", pc->label,
                  kind);
            CHECK_OK(rpu_maxpool_backward(&pc->p, w, am, pc->n, pc->c, pc->in, dx));
        } else {
            tl_fill_uniform(x, (int)nx, -2.0f, 2.0f, seed, 4);
            CHECK_OK(rpu_avgpool_forward(&pc->p, x, pc->n, pc->c, pc->in, y));
            ref_pool(pc, false, x, yr, NULL);
            int bad = 0;
            for (size_t q = 0; q < ny; ++q)
                bad += !(fabsf(y[q] - yr[q]) <= 1e-6f * (fabsf(yr[q]) + 1));
            CHECK(bad == 0, "%s %s: values = reference (%d differ)", pc->label, kind, bad);
            CHECK_OK(rpu_avgpool_backward(&pc->p, w, pc->n, pc->c, pc->in, dx));
        }
        const float h = 1.0f / 1024;
        int bad = 0;
        memcpy(xs, x, sizeof(float) * nx);
        for (size_t i = 0; i < nx; ++i) {
            xs[i] = x[i] + h;
            double lp = pool_loss(pc, maxp, xs, w, yr, ab);
            xs[i] = x[i] - h;
            double lm = pool_loss(pc, maxp, xs, w, yr, ab);
            xs[i] = x[i];
            double fd = (lp - lm) / (2.0 * h);
            if (!(fabs(dx[i] - fd) <= 1e-4 + 1e-4 * fabs(fd)) && bad++ < 3)
                CHECK(false, "%s %s: dx[%zu] = %.7g, finite difference %.7g", pc->label, kind, i,
                      (double)dx[i], fd);
        }
        CHECK(bad == 0, "%s %s: backward = finite differences (%d of %zu bad)", pc->label, kind,
              bad, nx);
    }
    /* ties: few distinct values */
    tl_fill_uniform(x, (int)nx, 0.0f, 3.0f, seed, 5);
    for (size_t i = 0; i < nx; ++i)
        x[i] = floorf(x[i]);
    CHECK_OK(rpu_maxpool_forward(&pc->p, x, pc->n, pc->c, pc->in, y, am));
    ref_pool(pc, true, x, yr, amr);
    CHECK(memcmp(y, yr, sizeof(float) * ny) == 0 && memcmp(am, amr, sizeof(int32_t) * ny) == 0,
          "%s: ties go to the first maximum in scan order", pc->label);
    /* NaNs: about one input in 8 (some windows hold several, some start with one): y is
     * NaN where the window holds one and the argmax points at its first NaN; the values
     * are the same without argmax */
    tl_fill_uniform(x, (int)nx, -1.0f, 1.0f, seed, 6);
    tl_fill_uniform(xs, (int)nx, 0.0f, 1.0f, seed, 7);
    for (size_t i = 0; i < nx; ++i)
        if (xs[i] < 0.125f) x[i] = NAN;
    CHECK_OK(rpu_maxpool_forward(&pc->p, x, pc->n, pc->c, pc->in, y, am));
    ref_pool(pc, true, x, yr, amr);
    CHECK(memcmp(y, yr, sizeof(float) * ny) == 0 && memcmp(am, amr, sizeof(int32_t) * ny) == 0,
          "%s: the first NaN of a window wins", pc->label);
    CHECK_OK(rpu_maxpool_forward(&pc->p, x, pc->n, pc->c, pc->in, yr, NULL));
    CHECK(memcmp(y, yr, sizeof(float) * ny) == 0, "%s: the same maxima without argmax", pc->label);
    free(x), free(y), free(yr), free(w), free(dx), free(xs), free(am), free(amr), free(ab);
}

static void test_pool_cases(void) {
    pool_case cases[] = {
        /* 1-d: stride < kernel with padding; odd size; out = (11 + 2 - 3) / 2 + 1 = 6 */
        {{1, {3}, {2}, {1}, false}, {11}, {6}, 2, 3, "1d k3 s2 p1 L11"},
        /* 1-d: stride 1, kernel 4, padding 2: (9 + 4 - 4) / 1 + 1 = 10 */
        {{1, {4}, {1}, {2}, false}, {9}, {10}, 1, 2, "1d k4 s1 p2 L9"},
        /* 1-d default stride (= kernel), odd size floors: (7 - 2) / 2 + 1 = 3 */
        {{1, {2}, {0}, {0}, false}, {7}, {3}, 2, 2, "1d k2 default stride L7"},
        /* 2-d: rectangular kernel, stride != kernel, padding, odd sizes:
         * H: (7 + 2 - 3) / 2 + 1 = 4; W: (9 + 2 - 2) / 3 + 1 = 4 */
        {{2, {3, 2}, {2, 3}, {1, 1}, false}, {7, 9}, {4, 4}, 2, 3, "2d k(3,2) s(2,3) p(1,1)"},
        /* 2-d: 2x2 default stride on 5x5 (floor): 2x2 */
        {{2, {2, 2}, {0, 0}, {0, 0}, false}, {5, 5}, {2, 2}, 3, 2, "2d k2 5x5"},
        /* 2-d: overlapping 3x3 stride 1 padding 1 (same size) */
        {{2, {3, 3}, {1, 1}, {1, 1}, false}, {6, 5}, {6, 5}, 1, 2, "2d k3 s1 p1"},
        /* 3-d: D: (5 + 2 - 2) / 1 + 1 = 6; H: (6 + 2 - 3) / 2 + 1 = 3; W: (7 - 3) / 3 + 1 = 2 */
        {{3, {2, 3, 3}, {1, 2, 3}, {1, 1, 0}, false},
         {5, 6, 7},
         {6, 3, 2},
         2,
         2,
         "3d k(2,3,3) s(1,2,3) p(1,1,0)"},
        /* 3-d cube default stride: 3x3x3 from 7x6x9 -> 2x2x3 */
        {{3, {3, 3, 3}, {0, 0, 0}, {0, 0, 0}, false}, {7, 6, 9}, {2, 2, 3}, 1, 3, "3d k3"},
        /* without padding (the vectorised path of maxpool): LeNet's 2x2 on 24x24 and on
         * an odd 9x7 plane, overlapping 3x3 stride 1, stride larger than the kernel, 1-d
         * and 3-d */
        {{2, {2, 2}, {0, 0}, {0, 0}, false}, {24, 24}, {12, 12}, 2, 3, "2d k2 24x24"},
        {{2, {2, 2}, {0, 0}, {0, 0}, false}, {9, 7}, {4, 3}, 1, 2, "2d k2 9x7"},
        {{2, {3, 3}, {1, 1}, {0, 0}, false}, {6, 8}, {4, 6}, 2, 2, "2d k3 s1 no padding"},
        {{2, {2, 3}, {3, 4}, {0, 0}, false}, {8, 11}, {3, 3}, 1, 2, "2d k(2,3) s(3,4)"},
        {{1, {3}, {2}, {0}, false}, {12}, {5}, 2, 2, "1d k3 s2 no padding"},
        {{3, {2, 2, 3}, {1, 2, 2}, {0, 0, 0}, false},
         {3, 5, 7},
         {2, 2, 3},
         2,
         2,
         "3d k(2,2,3) s(1,2,2) no padding"},
        /* avg with count_include_pad = False */
        {{2, {3, 3}, {2, 2}, {1, 1}, true}, {5, 6}, {3, 3}, 2, 2, "2d k3 s2 p1 exclude_pad"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
        pool_case_run(&cases[i], 500 + i);
}

/* Hand-computed 1-d example with ties: x = [1, 3, 3, 2, 5, 5], kernel 2, stride 1 ->
 * y = [3, 3, 3, 5, 5], argmax = [1, 1, 2, 4, 4] (first maximum); dy = 1 everywhere ->
 * dx = [0, 2, 1, 0, 2, 0]. Avg of the same with kernel 3, stride 3, padding 1 (zeros,
 * divisor 3): windows [pad, 1, 3], [3, 2, 5] -> y = [4/3, 10/3]. */
static void test_pool_hand(void) {
    rpu_pool_params p;
    rpu_pool_params_default(&p, 1, 2);
    p.stride[0] = 1;
    const int L = 6;
    const float x[6] = {1, 3, 3, 2, 5, 5}, dy[5] = {1, 1, 1, 1, 1};
    float y[5], dx[6];
    int32_t am[5];
    CHECK_OK(rpu_maxpool_forward(&p, x, 1, 1, &L, y, am));
    const float yw[5] = {3, 3, 3, 5, 5}, dxw[6] = {0, 2, 1, 0, 2, 0};
    const int32_t amw[5] = {1, 1, 2, 4, 4};
    CHECK(memcmp(y, yw, sizeof y) == 0, "hand maxpool values");
    CHECK(memcmp(am, amw, sizeof am) == 0,
          "hand maxpool argmax: first maximum on ties "
          "(%d %d %d %d %d)",
          am[0], am[1], am[2], am[3], am[4]);
    CHECK_OK(rpu_maxpool_backward(&p, dy, am, 1, 1, &L, dx));
    CHECK(memcmp(dx, dxw, sizeof dx) == 0, "hand maxpool backward");
    CHECK_OK(rpu_maxpool_forward(&p, x, 1, 1, &L, y, NULL)); /* argmax optional */

    rpu_pool_params_default(&p, 1, 3);
    p.padding[0] = 1;
    float ya[2];
    CHECK_OK(rpu_avgpool_forward(&p, x, 1, 1, &L, ya));
    CHECK(fabsf(ya[0] - 4.0f / 3) < 1e-6f && fabsf(ya[1] - 10.0f / 3) < 1e-6f,
          "hand avgpool with zero padding: %g %g, want 4/3 10/3", (double)ya[0], (double)ya[1]);
    /* max padding is -inf: all-negative inputs next to the padding */
    const float xn[3] = {-5, -1, -7};
    const int L3 = 3;
    float yn[3];
    int32_t an[3];
    rpu_pool_params_default(&p, 1, 2);
    p.padding[0] = 1;
    CHECK_OK(rpu_maxpool_forward(&p, xn, 1, 1, &L3, yn, an));
    CHECK(yn[0] == -5 && yn[1] == -1 && an[0] == 0 && an[1] == 1,
          "maxpool pads with -inf: (%g %g), want (-5 -1)", (double)yn[0], (double)yn[1]);
    /* NaN propagates */
    const float xq[4] = {1, NAN, 3, 2};
    const int L4 = 4;
    CHECK_OK(rpu_maxpool_forward(&p, xq, 1, 1, &L4, yn, an));
    CHECK(yn[0] == 1 && isnan(yn[1]) && an[1] == 1 && yn[2] == 2, "maxpool NaN propagates");
}

static void test_pool_errors(void) {
    rpu_pool_params p;
    int in[3] = {5, 5, 5}, out[3];
    float x[125] = {0}, y[125];
    int32_t am[125] = {0};
    rpu_pool_params_default(&p, 0, 2);
    CHECK_STATUS(rpu_pool_output_size(&p, in, out), RPU_ERR_ARG);
    rpu_pool_params_default(&p, 4, 2);
    CHECK_STATUS(rpu_pool_output_size(&p, in, out), RPU_ERR_ARG);
    rpu_pool_params_default(&p, 2, 3);
    p.padding[1] = 2; /* > kernel / 2 */
    CHECK_STATUS(rpu_maxpool_forward(&p, x, 1, 1, in, y, am), RPU_ERR_ARG);
    CHECK(strstr(rpu_last_error(), "padding") != NULL, "names padding: %s", rpu_last_error());
    rpu_pool_params_default(&p, 2, 3);
    p.stride[0] = -1;
    CHECK_STATUS(rpu_avgpool_forward(&p, x, 1, 1, in, y), RPU_ERR_ARG);
    rpu_pool_params_default(&p, 1, 6); /* kernel larger than the input */
    CHECK_STATUS(rpu_pool_output_size(&p, in, out), RPU_ERR_ARG);
    rpu_pool_params_default(&p, 2, 0);
    CHECK_STATUS(rpu_pool_output_size(&p, in, out), RPU_ERR_ARG);
    rpu_pool_params_default(&p, 2, 2);
    CHECK_STATUS(rpu_maxpool_forward(&p, x, 1, 0, in, y, am), RPU_ERR_ARG);
    CHECK_STATUS(rpu_maxpool_forward(&p, NULL, 1, 1, in, y, am), RPU_ERR_ARG);
    CHECK_STATUS(rpu_maxpool_backward(&p, y, NULL, 1, 1, in, x), RPU_ERR_ARG);
    am[3] = 25; /* outside a 5x5 plane */
    CHECK_STATUS(rpu_maxpool_backward(&p, y, am, 1, 1, in, x), RPU_ERR_ARG);
    int bad_in[2] = {5, 0};
    CHECK_STATUS(rpu_pool_output_size(&p, bad_in, out), RPU_ERR_ARG);
    CHECK_OK(rpu_maxpool_forward(&p, NULL, 0, 1, in, NULL, NULL)); /* empty batch */
}

/* ------------------------------------------------------------------ flatten */

static void test_flatten(void) {
    int f = 0, s2[2] = {4, 5}, s3[3] = {2, 3, 7}, bad[2] = {4, 0},
        huge[3] = {1 << 12, 1 << 12, 1 << 8};
    CHECK_OK(rpu_flatten_features(3, 2, s2, &f));
    CHECK(f == 60, "flatten 3x4x5 = 60 features, got %d", f);
    CHECK_OK(rpu_flatten_features(2, 3, s3, &f));
    CHECK(f == 84, "flatten 2x2x3x7 = 84, got %d", f);
    CHECK_OK(rpu_flatten_features(10, 0, NULL, &f));
    CHECK(f == 10, "flatten of flat input keeps the size, got %d", f);
    CHECK_STATUS(rpu_flatten_features(3, 2, bad, &f), RPU_ERR_ARG);
    CHECK_STATUS(rpu_flatten_features(1, 3, huge, &f), RPU_ERR_ARG);
    CHECK_STATUS(rpu_flatten_features(0, 2, s2, &f), RPU_ERR_ARG);
}

/* ------------------------------------------------------------------ dropout */

/* n = 100000, p = 0.3, seed 2024, layer 5, step 7: the dropped count D ~ Binomial(n, p)
 * must satisfy |D - n p| <= 5 sqrt(n p (1 - p)) (= 725; a false failure has probability
 * ~6e-7). Kept elements are x / (1 - p) exactly (as float scale), dropped ones 0. The same
 * (seed, layer, step) gives an identical mask (also for a shorter prefix and on every rank);
 * another step, layer or seed gives a different one (expected 2 p (1 - p) n = 42000
 * differing positions; required > 30000). Eval is the identity with mask 1. Backward:
 * dx = dy * mask, and central differences (h = 2^-7, inputs on a 2^-8 grid, tolerance
 * 1e-5 abs) of L = sum w y with the mask held by the key. */
static void test_dropout(void) {
    enum { N = 100000 };
    const float p = 0.3f;
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    float *m1 = malloc(sizeof(float) * N), *m2 = malloc(sizeof(float) * N);
    float *y2 = malloc(sizeof(float) * N);
    tl_fill_uniform(x, N, -2.0f, 2.0f, 31, 1);
    CHECK_OK(rpu_dropout_forward(x, N, p, true, 2024, 5, 7, m1, y));
    const float scale = (float)(1.0 / (1.0 - (double)p));
    long dropped = 0, bad_scale = 0;
    for (int i = 0; i < N; ++i) {
        if (m1[i] == 0.0f) {
            dropped++;
            bad_scale += y[i] != 0.0f;
        } else {
            bad_scale += m1[i] != scale || y[i] != x[i] * scale;
        }
    }
    double mean = (double)N * p, bound = 5 * sqrt((double)N * p * (1 - p));
    CHECK(fabs((double)dropped - mean) <= bound, "dropped %ld of %d, want %g +- %g", dropped, N,
          mean, bound);
    CHECK(bad_scale == 0, "kept elements scaled by 1/(1-p), dropped are 0 (%ld bad)", bad_scale);
    CHECK(same_on_all_ranks(m1, sizeof(float) * N), "dropout mask identical on all ranks");

    CHECK_OK(rpu_dropout_forward(x, N, p, true, 2024, 5, 7, m2, y2));
    CHECK(memcmp(m1, m2, sizeof(float) * N) == 0 && memcmp(y, y2, sizeof(float) * N) == 0,
          "same (seed, layer, step): same mask and output");
    CHECK_OK(rpu_dropout_forward(x, 1000, p, true, 2024, 5, 7, m2, y2));
    CHECK(memcmp(m1, m2, sizeof(float) * 1000) == 0, "mask element i does not depend on n");
    memcpy(y2, x, sizeof(float) * N);
    CHECK_OK(rpu_dropout_forward(y2, N, p, true, 2024, 5, 7, m2, y2));
    CHECK(memcmp(y, y2, sizeof(float) * N) == 0, "dropout in place");
    /* a range of the step's elements (a rank's samples in a network): the whole call's
     * mask and output there, at every start within a block of 4 and across blocks */
    {
        static const size_t first[] = {0, 1, 2, 3, 4, 5, 7, 4097, 99990};
        static const size_t len[] = {10, 1, 2, 3, 777, 4, 0, 513, 10};
        long bad_part = 0;
        for (int k = 0; k < 9; ++k) {
            CHECK_OK(rpu_dropout_forward_at(x + first[k], first[k], len[k], p, true, 2024, 5, 7, m2,
                                            y2));
            bad_part += memcmp(m2, m1 + first[k], sizeof(float) * len[k]) != 0 ||
                        memcmp(y2, y + first[k], sizeof(float) * len[k]) != 0;
        }
        CHECK(bad_part == 0,
              "dropout of elements [first, first + n): the whole mask's part "
              "(%ld of 9 ranges differ)",
              bad_part);
    }

    struct {
        uint64_t seed;
        uint32_t layer;
        uint64_t step;
        const char *what;
    } other[] = {{2024, 5, 8, "step"}, {2024, 6, 7, "layer"}, {2025, 5, 7, "seed"}};
    for (int k = 0; k < 3; ++k) {
        CHECK_OK(rpu_dropout_forward(x, N, p, true, other[k].seed, other[k].layer, other[k].step,
                                     m2, y2));
        long differ = 0;
        for (int i = 0; i < N; ++i)
            differ += (m1[i] == 0) != (m2[i] == 0);
        CHECK(differ > 30000, "another %s gives another mask (%ld positions differ)", other[k].what,
              differ);
    }

    CHECK_OK(rpu_dropout_forward(x, N, p, false, 2024, 5, 7, m2, y2));
    long not_id = 0;
    for (int i = 0; i < N; ++i)
        not_id += m2[i] != 1.0f || memcmp(&y2[i], &x[i], sizeof(float)) != 0;
    CHECK(not_id == 0, "eval: identity, mask 1 (%ld differ)", not_id);
    CHECK_OK(rpu_dropout_forward(x, N, 0.0f, true, 1, 1, 1, m2, y2));
    CHECK(memcmp(y2, x, sizeof(float) * N) == 0, "p = 0 keeps everything unscaled");
    CHECK_OK(rpu_dropout_forward(x, N, 1.0f, true, 1, 1, 1, m2, y2));
    long nz = 0;
    for (int i = 0; i < N; ++i)
        nz += y2[i] != 0.0f;
    CHECK(nz == 0, "p = 1 drops everything (%ld nonzero)", nz);

    /* backward */
    enum { M = 300 };
    float xs[M], w[M], mk[M], ys[M], dx[M];
    fill_grid(xs, M, -2.0f, 2.0f, 41, 1);
    tl_fill_uniform(w, M, -1.0f, 1.0f, 41, 2);
    CHECK_OK(rpu_dropout_forward(xs, M, 0.5f, true, 9, 3, 11, mk, ys));
    CHECK_OK(rpu_dropout_backward(w, mk, M, dx));
    const float h = 1.0f / 128;
    int bad = 0;
    for (int i = 0; i < M; ++i) {
        float xp[M], mp[M], yp[M];
        memcpy(xp, xs, sizeof xp);
        xp[i] = xs[i] + h;
        rpu_dropout_forward(xp, M, 0.5f, true, 9, 3, 11, mp, yp);
        double lp = 0, lm = 0;
        for (int j = 0; j < M; ++j)
            lp += (double)w[j] * yp[j];
        xp[i] = xs[i] - h;
        rpu_dropout_forward(xp, M, 0.5f, true, 9, 3, 11, mp, yp);
        for (int j = 0; j < M; ++j)
            lm += (double)w[j] * yp[j];
        double fd = (lp - lm) / (2.0 * h);
        bad += !(fabs(dx[i] - fd) <= 1e-5);
    }
    CHECK(bad == 0, "dropout backward = finite differences (%d of %d bad)", bad, M);

    CHECK_STATUS(rpu_dropout_forward(x, N, -0.1f, true, 1, 1, 1, m2, y2), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dropout_forward(x, N, 1.5f, true, 1, 1, 1, m2, y2), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dropout_forward(x, N, NAN, true, 1, 1, 1, m2, y2), RPU_ERR_ARG);
    CHECK_STATUS(rpu_dropout_forward(x, N, 0.5f, true, 1, 1, (uint64_t)1 << 32, m2, y2),
                 RPU_ERR_ARG);
    CHECK_STATUS(rpu_dropout_forward(x, N, 0.5f, true, 1, 1, 1, NULL, y2), RPU_ERR_ARG);
    free(x), free(y), free(m1), free(m2), free(y2);
}

/* ------------------------------------------------------------------ cross-entropy */

/* Hand-computed 2x3 example: logits [[1, 2, 3], [1, 1, 1]], labels [2, 0].
 * Row 0: log-sum-exp = 3 + log(1 + e^-1 + e^-2) = 3.40760596444438, loss 0.40760596444438;
 * softmax (e^-2, e^-1, 1) / (1 + e^-1 + e^-2) = (0.0900305731703805, 0.244728471054798,
 * 0.665240955774822). Row 1: log 3 = 1.09861228866811, softmax 1/3 each.
 * Mean loss 0.753109126556245; dlogits = (softmax - onehot) / 2. Correct: row 0 (argmax 2)
 * and row 1 (three-way tie -> first maximum 0 = label) = 2. */
static void test_ce_hand(void) {
    const float z[6] = {1, 2, 3, 1, 1, 1};
    const uint8_t lab[2] = {2, 0};
    double loss = 0;
    float g[6];
    int correct = -1;
    CHECK_OK(rpu_cross_entropy(z, lab, 2, 3, &loss, g, &correct));
    CHECK(fabs(loss - 0.753109126556245) < 1e-12, "2x3 loss %.15g, want 0.753109126556245", loss);
    const double gw[6] = {0.0900305731703805 / 2,
                          0.244728471054798 / 2,
                          (0.665240955774822 - 1) / 2,
                          (1.0 / 3 - 1) / 2,
                          1.0 / 6,
                          1.0 / 6};
    for (int j = 0; j < 6; ++j)
        CHECK(fabs(g[j] - gw[j]) < 1e-7, "2x3 dlogits[%d] = %.9g, want %.9g", j, (double)g[j],
              gw[j]);
    CHECK(correct == 2, "2x3 correct = %d, want 2 (first maximum on the tie)", correct);
    double loss2 = 0;
    CHECK_OK(rpu_cross_entropy(z, lab, 2, 3, &loss2, NULL, NULL));
    CHECK(loss2 == loss, "dlogits and correct optional");
}

/* Gradient: N = 4, K = 7, logits U(-3, 3); central differences of the mean loss with
 * h = 2^-8 (the actual float step zp - zm is the divisor); |g - fd| <= 2e-5. */
static void test_ce_gradient(void) {
    enum { N = 4, K = 7 };
    float z[N * K], g[N * K];
    uint8_t lab[N] = {0, 6, 3, 3};
    tl_fill_uniform(z, N * K, -3.0f, 3.0f, 77, 1);
    double loss;
    CHECK_OK(rpu_cross_entropy(z, lab, N, K, &loss, g, NULL));
    int bad = 0;
    const float h = 1.0f / 256;
    for (int i = 0; i < N * K; ++i) {
        float zs[N * K];
        memcpy(zs, z, sizeof zs);
        double lp, lm;
        float zp = z[i] + h, zm = z[i] - h;
        zs[i] = zp;
        rpu_cross_entropy(zs, lab, N, K, &lp, NULL, NULL);
        zs[i] = zm;
        rpu_cross_entropy(zs, lab, N, K, &lm, NULL, NULL);
        double fd = (lp - lm) / ((double)zp - zm);
        if (!(fabs(g[i] - fd) <= 2e-5) && bad++ < 3)
            CHECK(false, "dlogits[%d] = %.8g, finite difference %.8g", i, (double)g[i], fd);
    }
    CHECK(bad == 0, "cross-entropy gradient = finite differences (%d bad)", bad);
    CHECK(same_on_all_ranks(g, sizeof g) && same_on_all_ranks(&loss, sizeof loss),
          "cross-entropy identical on all ranks");
}

/* Stability: integer logits shifted by +-1e4 (exact in float) give the same loss (to 1e-12
 * relative) and gradient (to 1e-7) as unshifted; a row [1e4, 1e4-1, 1e4-3] with label 1 has
 * loss 1 + log(1 + e^-1 + e^-3) = 1.34901221676819; everything finite. */
static void test_ce_stability(void) {
    const float base[6] = {0, -1, -3, 2, 7, -5};
    const uint8_t lab[2] = {1, 2};
    float z[6], g0[6], g1[6];
    double l0, l1;
    CHECK_OK(rpu_cross_entropy(base, lab, 2, 3, &l0, g0, NULL));
    for (int s = -1; s <= 1; s += 2) {
        for (int j = 0; j < 6; ++j)
            z[j] = base[j] + (float)s * 1e4f;
        int correct = -1;
        CHECK_OK(rpu_cross_entropy(z, lab, 2, 3, &l1, g1, &correct));
        CHECK(isfinite(l1) && fabs(l1 - l0) <= 1e-12 * fabs(l0),
              "logits shifted by %+g: loss %.15g, unshifted %.15g", s * 1e4, l1, l0);
        int gbad = 0;
        for (int j = 0; j < 6; ++j)
            gbad += !(isfinite(g1[j]) && fabsf(g1[j] - g0[j]) <= 1e-7f);
        CHECK(gbad == 0, "logits shifted by %+g: same finite gradient", s * 1e4);
        CHECK(correct == 0, "shifted: correct = %d, want 0", correct);
    }
    const float big[3] = {1e4f, 1e4f - 1, 1e4f - 3};
    const uint8_t one = 1;
    CHECK_OK(rpu_cross_entropy(big, &one, 1, 3, &l1, g1, NULL));
    CHECK(fabs(l1 - 1.34901221676819) < 1e-12,
          "loss of [1e4, 1e4-1, 1e4-3] = %.15g, want "
          "1.34901221676819",
          l1);
    float sum = g1[0] + g1[1] + g1[2];
    CHECK(fabsf(sum) < 1e-7f, "gradient row sums to 0 (%g)", (double)sum);
}

static void test_ce_errors(void) {
    const float z[6] = {0};
    const uint8_t bad[2] = {0, 3}, ok[2] = {0, 1};
    double l;
    CHECK_STATUS(rpu_cross_entropy(z, bad, 2, 3, &l, NULL, NULL), RPU_ERR_ARG);
    CHECK(strstr(rpu_last_error(), "label") != NULL, "names the label: %s", rpu_last_error());
    CHECK_STATUS(rpu_cross_entropy(z, ok, 0, 3, &l, NULL, NULL), RPU_ERR_ARG);
    CHECK_STATUS(rpu_cross_entropy(z, ok, 2, 0, &l, NULL, NULL), RPU_ERR_ARG);
    CHECK_STATUS(rpu_cross_entropy(NULL, ok, 2, 3, &l, NULL, NULL), RPU_ERR_ARG);
    CHECK_STATUS(rpu_cross_entropy(z, ok, 2, 3, NULL, NULL, NULL), RPU_ERR_ARG);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_activations();
    test_tanh_bound();
    test_pool_cases();
    test_pool_hand();
    test_pool_errors();
    test_flatten();
    test_dropout();
    test_ce_hand();
    test_ce_gradient();
    test_ce_stability();
    test_ce_errors();
    return tl_finish();
}
