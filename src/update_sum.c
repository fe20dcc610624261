/* Exact updates as sums over blocks of vectors (tile.h, "summed updates").
 *
 * A tile whose update is the exact W <- W - lr G (floating point, ideal and inference
 * tiles; pulse_type none) has a gradient G that is a sum over the batch's vectors. The
 * layer cuts the batch into MAC blocks that depend on the input shape only, computes each
 * block's partial G_b = sum over the block's vectors of d_kᵀ x_k with one GEMM, adds the
 * partials exactly in 64-bit fixed point (fixed_impl.h), rounds the sum once to float and
 * divides its rows by the mapping scales (stored units). Which rank computes
 * which blocks therefore does not change a bit of G: the holders of a tile each compute
 * the blocks of their own samples and add their integers with one MPI_Allreduce. */
#include "error_impl.h"
#include "fixed_impl.h"
#include "tile_impl.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool rpu_tile_update_summable(const rpu_tile *t) {
    return t != NULL && t->cmp == NULL &&
           (!t->dev.pulsed || t->cfg.update.pulse_type == RPU_PULSE_NONE);
}

static rpu_status check_blocks(const rpu_tile *t, const float *x, const float *d, int k0, int k1,
                               int block, rpu_weight_units units, const char *fn) {
    if (!t || (k1 > k0 && (!x || !d))) return RPU_FAIL(RPU_ERR_ARG, "%s: NULL argument", fn);
    if (k0 < 0 || k1 < k0 || block < 1)
        return RPU_FAIL(RPU_ERR_ARG, "%s: vectors [%d, %d) in blocks of %d", fn, k0, k1, block);
    if (k0 % block)
        return RPU_FAIL(RPU_ERR_ARG, "%s: vector %d does not start a block of %d", fn, k0, block);
    if (units != RPU_WEIGHTS_STORED && units != RPU_WEIGHTS_SCALED)
        return RPU_FAIL(RPU_ERR_ARG, "%s: unknown weight units %d", fn, (int)units);
    return RPU_OK;
}

/* max |v| over n floats (NaN ignored: the block sums catch it). Sixteen independent
 * maxima, so that the compiler keeps them in one vector register. */
static float abs_max(const float *v, size_t n) {
    enum { W = 16 };
    float m[W] = {0};
    size_t q = 0;
    for (; q + W <= n; q += W)
        for (int j = 0; j < W; ++j) {
            const float a = fabsf(v[q + j]);
            m[j] = a > m[j] ? a : m[j];
        }
    for (; q < n; ++q) {
        const float a = fabsf(v[q]);
        m[0] = a > m[0] ? a : m[0];
    }
    float r = 0;
    for (int j = 0; j < W; ++j)
        r = m[j] > r ? m[j] : r;
    return r;
}

rpu_status rpu_tile_grad_block_bound(const rpu_tile *t, const float *x, const float *d, int k0,
                                     int k1, int block, rpu_weight_units units, double *bound) {
    RPU_CHECK(check_blocks(t, x, d, k0, k1, block, units, "rpu_tile_grad_block_bound"));
    const int R = t->p.out_size, C = t->p.in_size;
    /* |G_b[i, j]| <= (vectors of the block) max|d| max|x|: each of its terms is at most
     * max|d| max|x| */
    const size_t m = (size_t)(k1 - k0);
    *bound = rpu_tile_grad_max_bound(k0, k1, block, abs_max(d + (size_t)k0 * R, m * R),
                                     abs_max(x + (size_t)k0 * C, m * C));
    return RPU_OK;
}

double rpu_tile_grad_max_bound(int k0, int k1, int block, float dmax, float xmax) {
    const double dm = dmax, xm = xmax;
    const double len = k1 - k0 < block ? k1 - k0 : block;
    /* a margin for the rounding of the GEMM's float partial sums (relative < 2^-20 for any
     * block of fewer than 2^20 vectors) */
    return len * dm * xm * (1.0 + 1.0 / 1024);
}

rpu_status rpu_tile_grad_blocks_add(const rpu_tile *t, const float *x, const float *d, int k0,
                                    int k1, int block, rpu_weight_units units, double up,
                                    int64_t *acc, float *work) {
    RPU_CHECK(check_blocks(t, x, d, k0, k1, block, units, "rpu_tile_grad_blocks_add"));
    if (k1 == k0) return RPU_OK;
    if (!acc || !work)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_grad_blocks_add: NULL accumulator or workspace");
    const int R = t->p.out_size, C = t->p.in_size;
    const size_t cells = (size_t)R * C;
    float *G = work;
    for (int b0 = k0; b0 < k1; b0 += block) {
        const int m = (b0 + block < k1 ? b0 + block : k1) - b0;
        /* G_b = d_bᵀ x_b: [R, C] over the block's m vectors */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, C, m, 1.0f, d + (size_t)b0 * R, R,
                    x + (size_t)b0 * C, C, 0.0f, G, C);
        float check = 0; /* NaN or Inf in any element makes it NaN */
        for (size_t q = 0; q < cells; ++q)
            check += G[q] * 0.0f;
        if (check != 0)
            return RPU_FAIL(RPU_ERR_ARG,
                            "non-finite values in the gradient of a %dx%d tile (NaN or Inf in the "
                            "input or the output gradient)",
                            R, C);
        rpu_to_fixed_add(acc, G, cells, up);
    }
    (void)units; /* the units are applied to the sum (rpu_tile_grad_units) */
    return RPU_OK;
}

void rpu_tile_grad_units(const rpu_tile *t, rpu_weight_units units, float *G) {
    if (!t || !G || units != RPU_WEIGHTS_STORED) return;
    const int R = t->p.out_size, C = t->p.in_size;
    for (int i = 0; i < R; ++i) {
        const float s = t->scales[i];
        if (s == 1.0f) continue;
        float *g = G + (size_t)i * C;
        for (int j = 0; j < C; ++j)
            g[j] /= s;
    }
}

rpu_status rpu_tile_update_by_grad(rpu_tile *t, const float *G, int n, float lr) {
    if (!t || !G) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update_by_grad: NULL argument");
    if (!rpu_tile_update_summable(t))
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_tile_update_by_grad: the tile's update is not exact (pulsed "
                        "devices and compounds update through their device model)");
    if (!(lr >= 0) || !isfinite(lr))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update: learning rate %g must be >= 0", (double)lr);
    if (n < 0) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update_by_grad: batch size %d < 0", n);
    rpu_infer_weights_changed(t);
    if (n == 0 || lr == 0) return RPU_OK; /* as rpu_tile_update: nothing, not even a count */
    t->ucalls++;
    const size_t cells = (size_t)t->p.out_size * t->p.in_size;
    float *w = t->w;
    for (size_t q = 0; q < cells; ++q)
        w[q] -= lr * G[q];
    t->abs_w_valid = 0;
    return RPU_OK;
}
