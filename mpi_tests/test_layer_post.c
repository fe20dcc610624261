/* rpu_conv_post_update / rpu_linear_post_update (include/rpusim/layer.h): the post-update
 * step alone, on the owned tiles of every rank.
 *
 * A floating-point device with device.lifetime = 4 decays each weight by the factor
 * 1 - 1/4 in its post-update step (spec §3.5); with the default mapping (no weight
 * scaling) the layer's logical weights are the stored ones. So after one post-update
 * step on every rank, the exact read-out must be fl(w * 0.75) for every weight, bit for
 * bit, on every tile whichever rank owns it (both layers below have 9 tiles), and
 * the digital bias must be untouched. The step needs no kept forward/backward (a fresh
 * layer), and without lifetime it changes nothing. Errors: NULL layer. */
#include "rpusim/config.h"
#include "rpusim/layer.h"
#include "testlib.h"

#include <stdio.h>
#include <string.h>

/* status and a key word of the message */
#define CHECK_ERR(expr, want, word)                                                                \
    do {                                                                                           \
        rpu_clear_error();                                                                         \
        rpu_status s_ = (expr);                                                                    \
        CHECK(s_ == (want) && strstr(rpu_last_error(), word),                                      \
              "%s -> %s (%s), want %s with \"%s\"", #expr, rpu_status_name(s_), rpu_last_error(),  \
              rpu_status_name(want), word);                                                        \
    } while (0)

static void check_same(const float *got, const float *want, int n, const char *what) {
    int bad = -1;
    for (int i = 0; i < n && bad < 0; ++i)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0) bad = i;
    CHECK(bad < 0, "%s: element %d is %.9g, want %.9g", what, bad, bad < 0 ? 0.0 : got[bad],
          bad < 0 ? 0.0 : want[bad]);
}

static void conv_case(float lifetime) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.device.lifetime = lifetime;
    c.mapping.max_input_size = 18; /* 2 channels x 9 per tile */
    c.mapping.max_output_size = 2;
    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, 6, 5, 3); /* 3 input splits x 3 output splits */
    p.layer_id = 7;
    p.seed = 11;
    enum { NW = 5 * 6 * 9 };
    float w[NW], b[5], w2[NW], b2[5], want[NW];
    tl_fill_uniform(w, NW, -1, 1, 4001, 1);
    tl_fill_uniform(b, 5, -1, 1, 4001, 2);
    const float f = lifetime > 1 ? 1.0f - 1.0f / lifetime : 1.0f;
    for (int i = 0; i < NW; ++i)
        want[i] = w[i] * f;
    rpu_conv *l = NULL;
    CHECK_OK(rpu_conv_from_digital(MPI_COMM_WORLD, &p, &c, w, b, &l));
    if (!l) return;
    CHECK(rpu_conv_grid(l)->n_tiles == 9, "conv grid has %d tiles, want 9",
          rpu_conv_grid(l)->n_tiles);
    CHECK_OK(rpu_conv_post_update(l));
    CHECK_OK(rpu_conv_get_weights(l, w2, b2, RPU_READ_EXACT));
    check_same(w2, want, NW, lifetime > 0 ? "conv weights after decay" : "conv weights, no decay");
    check_same(b2, b, 5, "conv digital bias after post_update");
    rpu_conv_destroy(&l);
}

static void linear_case(void) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.device.lifetime = 4;
    c.mapping.max_input_size = 5;
    c.mapping.max_output_size = 3;
    rpu_linear_params p;
    rpu_linear_params_default(&p, 13, 7); /* 3 x 3 tiles */
    p.bias = RPU_BIAS_ANALOG;             /* the bias column decays with the tile */
    enum { NW = 7 * 13 };
    float w[NW], b[7], w2[NW], b2[7], want[NW], wantb[7];
    tl_fill_uniform(w, NW, -1, 1, 4002, 1);
    tl_fill_uniform(b, 7, -1, 1, 4002, 2);
    for (int i = 0; i < NW; ++i)
        want[i] = w[i] * 0.75f;
    for (int i = 0; i < 7; ++i)
        wantb[i] = b[i] * 0.75f;
    rpu_linear *l = NULL;
    CHECK_OK(rpu_linear_from_digital(MPI_COMM_WORLD, &p, &c, w, b, &l));
    if (!l) return;
    CHECK_OK(rpu_linear_post_update(l));
    CHECK_OK(rpu_linear_get_weights(l, w2, b2, RPU_READ_EXACT));
    check_same(w2, want, NW, "linear weights after decay");
    check_same(b2, wantb, 7, "linear analog bias after decay");
    rpu_linear_destroy(&l);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    conv_case(4.0f);
    conv_case(0.0f);
    linear_case();
    CHECK_ERR(rpu_conv_post_update(NULL), RPU_ERR_ARG, "NULL");
    CHECK_ERR(rpu_linear_post_update(NULL), RPU_ERR_ARG, "NULL");
    return tl_finish();
}
