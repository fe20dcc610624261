/* Tests of the summed exact update (include/rpusim/tile.h "Summed updates", src/update_sum.c):
 *
 * 1. The blocks' fixed-point sum, rounded once (mapping scales 1), equals the gradient
 *    computed here in double (sum over vectors of d_k,i x_k,j)
 *    within 2 float ulps of the largest gradient element per element (the GEMM's float
 *    partial sums round; nothing else does).
 * 2. The sum is order-free and split-free: every cut of the vectors at a block boundary,
 *    each part added into its own accumulator and the accumulators added, gives the same
 *    integers as one call over all vectors (what the holders of a tile do with an
 *    MPI_Allreduce).
 * 3. The bound holds: block x max|d| x max|x| >= every block partial's magnitude
 *    (computed here in double), and is finite for finite inputs; an Inf input gives a
 *    non-finite bound, a NaN input an RPU_ERR_ARG from the sum.
 * 4. rpu_tile_update_by_grad is W - lr G exactly (elementwise float), counts the call, and
 *    refuses a pulsed tile; rpu_tile_update_summable is true for floating_point,
 *    inference and pulse_type none, false for constant_step pulses.
 * 5. Argument errors: a range that does not start a block, NULL accumulator. */
#include "rpusim/config.h"
#include "rpusim/tile.h"
#include "testlib.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { R = 7, C = 13, N = 50, B = 8 }; /* 50 vectors: 6 blocks of 8 and one of 2 */

static rpu_tile *make(rpu_config_kind kind) {
    rpu_config cfg;
    rpu_config_default(&cfg, kind);
    rpu_tile_params tp = {.out_size = R, .in_size = C, .seed = 5, .layer_id = 1, .tile_id = 0};
    rpu_tile *t = NULL;
    CHECK_OK(rpu_tile_create(&tp, &cfg, &t));
    return t;
}

static int scale_of(double bound, int blocks) {
    int e;
    frexp(bound, &e);
    int c = 0;
    while ((1 << c) < blocks)
        ++c;
    return 62 - e - c;
}

static void test_sums(void) {
    rpu_tile *t = make(RPU_KIND_FLOATING_POINT);
    if (!t) return;
    float x[N * C], d[N * R], G[R * C], work[R * C];
    tl_fill_uniform(x, N * C, -1.0f, 1.0f, 11, 1);
    tl_fill_normal(d, N * R, 0.3f, 11, 2);
    double bound = 0;
    CHECK_OK(rpu_tile_grad_block_bound(t, x, d, 0, N, B, RPU_WEIGHTS_STORED, &bound));
    CHECK(isfinite(bound) && bound > 0, "bound %g", bound);
    /* 3: the bound against every block partial in double */
    double pmax = 0;
    for (int b0 = 0; b0 < N; b0 += B)
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < C; ++j) {
                double a = 0;
                for (int k = b0; k < b0 + B && k < N; ++k)
                    a += (double)d[k * R + i] * x[k * C + j];
                if (fabs(a) > pmax) pmax = fabs(a);
            }
    CHECK(pmax <= bound, "block partials up to %g, bound %g", pmax, bound);
    const int S = scale_of(bound, (N + B - 1) / B);
    const double up = ldexp(1.0, S);
    int64_t all[R * C] = {0};
    CHECK_OK(rpu_tile_grad_blocks_add(t, x, d, 0, N, B, RPU_WEIGHTS_STORED, up, all, work));
    /* 2: every cut at a block boundary */
    for (int cut = 0; cut <= N; cut += B) {
        int64_t a1[R * C] = {0}, a2[R * C] = {0};
        CHECK_OK(rpu_tile_grad_blocks_add(t, x, d, 0, cut, B, RPU_WEIGHTS_STORED, up, a1, work));
        CHECK_OK(rpu_tile_grad_blocks_add(t, x, d, cut, N, B, RPU_WEIGHTS_STORED, up, a2, work));
        int same = 1;
        for (int q = 0; q < R * C; ++q)
            same &= a1[q] + a2[q] == all[q];
        CHECK(same, "cut at vector %d: the parts' sums differ from the whole's", cut);
    }
    /* 1: against the gradient in double (a fresh floating-point tile has mapping scales 1,
     * so the stored units leave the sum as it is) */
    for (int q = 0; q < R * C; ++q)
        G[q] = ldexpf((float)all[q], -S);
    rpu_tile_grad_units(t, RPU_WEIGHTS_STORED, G);
    double gmax = 0, err = 0;
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) {
            double a = 0;
            for (int k = 0; k < N; ++k)
                a += (double)d[k * R + i] * x[k * C + j];
            if (fabs(a) > gmax) gmax = fabs(a);
            const double e = fabs(G[i * C + j] - a);
            if (e > err) err = e;
        }
    CHECK(err <= 2 * FLT_EPSILON * gmax, "gradient error %g of max %g", err, gmax);
    /* 4: the update applies W - lr G */
    float w0[R * C], w1[R * C];
    CHECK_OK(rpu_tile_get_weights(t, w0, RPU_WEIGHTS_STORED));
    CHECK(rpu_tile_update_summable(t), "floating_point is summable");
    CHECK_OK(rpu_tile_update_by_grad(t, G, N, 0.25f));
    CHECK_OK(rpu_tile_get_weights(t, w1, RPU_WEIGHTS_STORED));
    int exact = 1;
    for (int q = 0; q < R * C; ++q)
        exact &= w1[q] == w0[q] - 0.25f * G[q];
    CHECK(exact, "update_by_grad is W - lr G elementwise");
    /* 5: errors */
    CHECK_STATUS(rpu_tile_grad_blocks_add(t, x, d, 3, N, B, RPU_WEIGHTS_STORED, up, all, work),
                 RPU_ERR_ARG);
    CHECK_STATUS(rpu_tile_grad_blocks_add(t, x, d, 0, N, B, RPU_WEIGHTS_STORED, up, NULL, work),
                 RPU_ERR_ARG);
    /* 3: Inf and NaN */
    x[17] = INFINITY;
    CHECK_OK(rpu_tile_grad_block_bound(t, x, d, 0, N, B, RPU_WEIGHTS_STORED, &bound));
    CHECK(!isfinite(bound), "an Inf input gives a non-finite bound (%g)", bound);
    x[17] = NAN;
    memset(all, 0, sizeof all);
    CHECK_STATUS(rpu_tile_grad_blocks_add(t, x, d, 0, N, B, RPU_WEIGHTS_STORED, up, all, work),
                 RPU_ERR_ARG);
    rpu_tile_destroy(&t);
}

static void test_kinds(void) {
    rpu_tile *t = make(RPU_KIND_INFERENCE);
    CHECK(t && rpu_tile_update_summable(t), "inference is summable");
    rpu_tile_destroy(&t);
    t = make(RPU_KIND_SINGLE);
    if (!t) return;
    CHECK(!rpu_tile_update_summable(t), "constant_step pulses are not summable");
    float G[R * C] = {0};
    CHECK_STATUS(rpu_tile_update_by_grad(t, G, 1, 0.1f), RPU_ERR_ARG);
    rpu_tile_destroy(&t);
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_SINGLE);
    CHECK_OK(rpu_config_set(&cfg, "update.pulse_type", "none"));
    rpu_tile_params tp = {.out_size = R, .in_size = C, .seed = 5, .layer_id = 1};
    CHECK_OK(rpu_tile_create(&tp, &cfg, &t));
    CHECK(t && rpu_tile_update_summable(t), "pulse_type none is summable");
    rpu_tile_destroy(&t);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_sums();
    test_kinds();
    return tl_finish();
}
