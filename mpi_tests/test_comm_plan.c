/* The communication plan (layer.h: rpu_conv_comm_plan, net.h: rpu_net_comm_plan) against
 * the MPI calls of real training steps, counted by a PMPI wrapper (pmpi_count.c, linked
 * into this program): for every rank, every phase (forward, backward, update) and every
 * step, the calls the wrapper saw (operation, element count, bytes per element,
 * communicator size, root/peer) must be the plan's, in the plan's order, and so must their
 * byte totals. The plan is what `rpusim bench scale` models and prints, so this is the
 * guard that keeps its byte counts exact when the layers' communication changes.
 *
 *   1. a network with every reduction rule of layer.c: a single-tile first layer (float
 *      forward, no input gradient), several input and output splits (int64 both ways, 6
 *      tiles: uneven on 4 ranks), a tile-array split that cuts kernel blocks (in_share 2),
 *      a grouped 1x1 conv (float both ways) with an analog bias, dropout, linear layers of
 *      18 tiles and of one tile; batch 5, two steps;
 *   2. the committed experiments examples/lenet5.ini and data/vgg8-synthetic.ini (one step
 *      of a small batch);
 *   3. rpu_conv_placement gives the owners the layers were created with;
 *   4. argument errors of the plan functions; the wrapper's operation names;
 *   5. the layer API with whole results on every rank (rpu_conv_forward / _backward) on
 *      every analog layer of the network of 1.
 * Run at 1-4 ranks (rpusim_add_mpi_test). */
#include "pmpi_count.h"
#include "testlib.h"

#include "rpusim/layer.h"
#include "rpusim/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RPUSIM_SOURCE_DIR
#error "RPUSIM_SOURCE_DIR must name the source tree (for the experiment files)"
#endif

static const char *phase_name(rpu_phase p) {
    return p == RPU_PHASE_FORWARD ? "forward" : p == RPU_PHASE_BACKWARD ? "backward" : "update";
}

/* Compares the recorded calls of one phase with the plan's calls of that phase. */
static void compare_phase(const char *label, int step, const rpu_comm_call *plan, int n_plan,
                          rpu_phase phase) {
    const pc_call *got = NULL;
    const int n_got = pc_calls(&got);
    int n_want = 0;
    long long want_bytes = 0, got_bytes = 0;
    for (int q = 0; q < n_plan; ++q)
        if (plan[q].phase == phase) {
            ++n_want;
            want_bytes += plan[q].count * plan[q].type_bytes;
        }
    for (int q = 0; q < n_got; ++q)
        got_bytes += got[q].count * got[q].type_bytes;
    CHECK(n_got == n_want, "%s step %d %s: %d MPI calls counted, the plan has %d", label, step,
          phase_name(phase), n_got, n_want);
    CHECK(got_bytes == want_bytes, "%s step %d %s: %lld payload bytes counted, the plan has %lld",
          label, step, phase_name(phase), got_bytes, want_bytes);
    int k = 0, bad = 0;
    for (int q = 0; q < n_plan && k < n_got; ++q) {
        const rpu_comm_call *c = &plan[q];
        if (c->phase != phase) continue;
        const pc_call *g = &got[k++];
        const bool same = g->op == (int)c->op && g->count == c->count &&
                          g->type_bytes == c->type_bytes && g->group == c->group &&
                          g->peer == c->peer;
        if (!same && bad++ < 4)
            CHECK(false,
                  "%s step %d %s call %d (layer %d, %s): counted %s of %lld x %d bytes on %d "
                  "ranks (peer %d), planned %s of %lld x %d bytes on %d ranks (peer %d)",
                  label, step, phase_name(phase), k - 1, c->layer, c->what, pc_op_name(g->op),
                  (long long)g->count, g->type_bytes, g->group, g->peer, rpu_comm_op_name(c->op),
                  (long long)c->count, c->type_bytes, c->group, c->peer);
    }
    CHECK(bad == 0, "%s step %d %s: %d calls differ from the plan", label, step, phase_name(phase),
          bad);
}

/* `steps` training steps of net on a batch of n (x: n samples, y: labels), each phase's
 * calls checked against rpu_net_comm_plan for this rank. */
static void check_steps(const char *label, rpu_net *net, const float *x, const uint8_t *y, int n,
                        int steps) {
    int n_plan = 0;
    CHECK_OK(rpu_net_comm_plan(net, n, tl_size(), tl_rank(), NULL, 0, &n_plan));
    rpu_comm_call *plan = calloc((size_t)n_plan + 1, sizeof *plan);
    int n2 = -1;
    CHECK_OK(rpu_net_comm_plan(net, n, tl_size(), tl_rank(), plan, n_plan, &n2));
    CHECK(n2 == n_plan, "%s: the plan's size changed between calls (%d, %d)", label, n_plan, n2);
    CHECK(n_plan > 0, "%s: a network with analog layers communicates", label);
    for (int q = 0; q < n_plan; ++q)
        CHECK(plan[q].layer >= 0 && plan[q].layer < rpu_net_layer_count(net) && plan[q].what,
              "%s: plan call %d names layer %d", label, q, plan[q].layer);
    rpu_net_set_training(net, true);
    for (int s = 0; s < steps; ++s) {
        double loss = 0;
        int correct = 0;
        rpu_net_set_step(net, (uint64_t)s);
        pc_reset();
        pc_record(1);
        rpu_status st = rpu_net_forward(net, x, n, NULL);
        pc_record(0);
        CHECK_OK(st);
        compare_phase(label, s, plan, n_plan, RPU_PHASE_FORWARD);
        pc_reset();
        pc_record(1);
        st = rpu_net_backward(net, y, &loss, &correct);
        pc_record(0);
        CHECK_OK(st);
        compare_phase(label, s, plan, n_plan, RPU_PHASE_BACKWARD);
        pc_reset();
        pc_record(1);
        st = rpu_net_update(net, 0.01f);
        pc_record(0);
        CHECK_OK(st);
        compare_phase(label, s, plan, n_plan, RPU_PHASE_UPDATE);
    }
    free(plan);
}

/* rpu_conv_placement of every analog layer equals the grid the layer was created with. */
static void check_placement(const char *label, rpu_net *net) {
    for (int k = 0; k < rpu_net_layer_count(net); ++k) {
        rpu_net_layer info;
        CHECK_OK(rpu_net_layer_info(net, k, &info));
        if (!info.conv) continue;
        rpu_tile_grid g;
        CHECK_OK(rpu_conv_placement(rpu_conv_get_params(info.conv), rpu_conv_config(info.conv),
                                    tl_size(), &g));
        const rpu_tile_grid *have = rpu_conv_grid(info.conv);
        bool same = g.n_tiles == have->n_tiles && g.n_in == have->n_in && g.n_out == have->n_out &&
                    g.in_share == have->in_share;
        for (int t = 0; same && t < g.n_tiles; ++t)
            same = g.tiles[t].owner == have->tiles[t].owner &&
                   g.tiles[t].rows == have->tiles[t].rows && g.tiles[t].cols == have->tiles[t].cols;
        CHECK(same, "%s layer %s: rpu_conv_placement differs from the layer's grid", label,
              info.name);
        rpu_tile_grid_free(&g);
    }
}

/* Builds exp's network for inputs [c, h, w] on MPI_COMM_WORLD and runs check_steps and
 * check_placement on a batch of n. */
static void run_experiment(const char *label, rpu_experiment *e, int c, int h, int w, int n,
                           int steps, int *tiles_out, int *whole_out) {
    rpu_net *net = NULL;
    const int sp[2] = {h, w};
    CHECK_OK(rpu_net_create(MPI_COMM_WORLD, e, c, 2, sp, &net));
    if (!net) return;
    const int K = rpu_net_outputs(net);
    const size_t per = (size_t)c * h * w;
    float *x = malloc(sizeof(float) * per * (size_t)n);
    uint8_t *y = malloc((size_t)n);
    tl_fill_uniform(x, (int)(per * (size_t)n), 0.0f, 1.0f, 7, 3);
    for (int i = 0; i < n; ++i)
        y[i] = (uint8_t)((i * 7 + 3) % K);
    check_steps(label, net, x, y, n, steps);
    check_placement(label, net);
    if (whole_out) { /* tiles the last update gave whole to one holder */
        *whole_out = 0;
        for (int k = 0; k < rpu_net_layer_count(net); ++k) {
            rpu_net_layer info;
            CHECK_OK(rpu_net_layer_info(net, k, &info));
            for (int t = 0; info.conv && t < rpu_conv_grid(info.conv)->n_tiles; ++t)
                *whole_out += rpu_net_update_owner(net, k, t) >= 0;
        }
    }
    if (tiles_out) {
        *tiles_out = 0;
        for (int k = 0; k < rpu_net_analog_count(net); ++k)
            *tiles_out += rpu_conv_grid(rpu_net_analog_layer(net, k))->n_tiles;
    }
    free(x);
    free(y);
    rpu_net_destroy(&net);
}

/* 1. every reduction rule of layer.c in one network; kind single (pulsed updates, run
 * whole by every holder of a tile: at 2-4 ranks the 1-, 2- and 3-tile layers have holders,
 * unevenly at 3 and 4) or floating_point (exact updates added over a tile's holders; the
 * convolutions of several tiles are on every rank: rpu_hold_everywhere) */
static void rules_text(const char *kind, char *text, size_t len) {
    snprintf(text, len,
             "[run]\nseed = 3\n"
             "[rpu]\nkind = %s\n%s"
             "mapping.max_input_size = 20\nmapping.max_output_size = 6\n"
             "mapping.digital_bias = false\n"
             /* 3x10x10 -> 4x9x9: 12 columns, one tile (float forward) */
             "[layer.c1]\ntype = conv2d\nout = 4\nkernel = 2\n"
             "[layer.r1]\ntype = relu\n"
             /* 36 columns in 2-channel splits x 14 outputs in [5, 5, 4]: 6 tiles */
             "[layer.c2]\ntype = conv2d\nout = 14\nkernel = 3\npadding = 1\n"
             "[layer.p1]\ntype = maxpool\nkernel = 2\n"
             /* 14 x 4 = 56 columns in [19, 19, 18]: kernel blocks cut */
             "[layer.c3]\ntype = conv2d\nout = 6\nkernel = 2\nsplit = tile_array\n"
             /* 2 groups of 3 -> 6, 1x1: one tile per group, analog bias */
             "[layer.c4]\ntype = conv2d\nout = 12\nkernel = 1\ngroups = 2\n"
             "[layer.d1]\ntype = dropout\np = 0.25\n"
             "[layer.flat]\ntype = flatten\n"
             /* 108 -> 13: 6 x 3 tiles */
             "[layer.fc1]\ntype = linear\nout = 13\n"
             "[layer.t1]\ntype = tanh\n"
             "[layer.fc2]\ntype = linear\nout = 4\n",
             kind, strcmp(kind, "single") ? "" : "device.type = constant_step\n");
}

static void test_rules(const char *kind) {
    char text[2048];
    rules_text(kind, text, sizeof text);
    rpu_experiment *e = NULL;
    CHECK_OK(rpu_experiment_parse(text, "rules.ini", NULL, 0, &e));
    if (!e) return;
    rpu_net *net = NULL;
    const int sp[2] = {10, 10};
    CHECK_OK(rpu_net_create(MPI_COMM_WORLD, e, 3, 2, sp, &net));
    if (net) { /* the grids this test is about */
        int want[5][3] = {{1, 1, 1}, {2, 3, 1}, {3, 1, 2}, {1, 1, 1}, {6, 3, 1}};
        for (int k = 0; k < 5 && k < rpu_net_analog_count(net); ++k) {
            const rpu_tile_grid *g = rpu_conv_grid(rpu_net_analog_layer(net, k));
            CHECK(g->n_in == want[k][0] && g->n_out == want[k][1] && g->in_share == want[k][2],
                  "rules: analog layer %d has %d x %d splits, in_share %d", k, g->n_in, g->n_out,
                  g->in_share);
        }
        rpu_net_destroy(&net);
    }
    int tiles = 0;
    char label[64];
    snprintf(label, sizeof label, "rules (%s)", kind);
    run_experiment(label, e, 3, 10, 10, 5, 2, &tiles, NULL);
    CHECK(tiles == 1 + 6 + 3 + 2 + 18 + 1, "rules: %d tiles", tiles);
    rpu_experiment_free(&e);
}

/* 5. the layer API that gives every rank the whole result (rpu_conv_forward and
 * rpu_conv_backward: the Python front end's calls) against rpu_conv_comm_plan, for every
 * analog layer of the rules network on a batch of 5 */
static void test_layer_api(const char *kind) {
    char text[2048], label[96];
    rules_text(kind, text, sizeof text);
    rpu_experiment *e = NULL;
    CHECK_OK(rpu_experiment_parse(text, "rules.ini", NULL, 0, &e));
    rpu_net *net = NULL;
    const int sp[2] = {10, 10}, n = 5;
    if (e) CHECK_OK(rpu_net_create(MPI_COMM_WORLD, e, 3, 2, sp, &net));
    for (int k = 0; net && k < rpu_net_layer_count(net); ++k) {
        rpu_net_layer info;
        CHECK_OK(rpu_net_layer_info(net, k, &info));
        if (!info.conv) continue;
        snprintf(label, sizeof label, "layer API (%s) %s", kind, info.name);
        size_t nin = (size_t)n * info.in_c, nout = (size_t)n * info.out_c;
        for (int a = 0; a < info.in_nd; ++a)
            nin *= (size_t)info.in_sp[a];
        for (int a = 0; a < info.out_nd; ++a)
            nout *= (size_t)info.out_sp[a];
        float *x = malloc(sizeof(float) * nin), *dx = malloc(sizeof(float) * nin);
        float *y = malloc(sizeof(float) * nout), *dy = malloc(sizeof(float) * nout);
        tl_fill_uniform(x, nin, -1, 1, 77, (uint64_t)k);
        tl_fill_uniform(dy, nout, -0.1f, 0.1f, 78, (uint64_t)k);
        int n_plan = 0;
        const rpu_conv_params *p = rpu_conv_get_params(info.conv);
        const rpu_config *cfg = rpu_conv_config(info.conv);
        CHECK_OK(rpu_conv_comm_plan(p, cfg, n, info.in_sp, info.input_grad, tl_size(), tl_rank(),
                                    NULL, 0, &n_plan));
        rpu_comm_call *plan = calloc((size_t)n_plan + 1, sizeof *plan);
        CHECK_OK(rpu_conv_comm_plan(p, cfg, n, info.in_sp, info.input_grad, tl_size(), tl_rank(),
                                    plan, n_plan, &n_plan));
        rpu_conv_set_training(info.conv, true);
        pc_reset();
        pc_record(1);
        rpu_status st = rpu_conv_forward(info.conv, x, n, info.in_sp, y);
        pc_record(0);
        CHECK_OK(st);
        compare_phase(label, 0, plan, n_plan, RPU_PHASE_FORWARD);
        pc_reset();
        pc_record(1);
        st = rpu_conv_backward(info.conv, dy, info.input_grad ? dx : NULL);
        pc_record(0);
        CHECK_OK(st);
        compare_phase(label, 0, plan, n_plan, RPU_PHASE_BACKWARD);
        pc_reset();
        pc_record(1);
        st = rpu_conv_update(info.conv, 0.01f);
        pc_record(0);
        CHECK_OK(st);
        compare_phase(label, 0, plan, n_plan, RPU_PHASE_UPDATE);
        free(plan), free(x), free(dx), free(y), free(dy);
    }
    rpu_net_destroy(&net);
    rpu_experiment_free(&e);
}

/* 2. the committed experiments, on synthetic inputs of their shape */
static void test_files(void) {
    const char *ov_lenet[] = {"run.batch_size=3"};
    rpu_experiment *e = NULL;
    CHECK_OK(rpu_experiment_load(RPUSIM_SOURCE_DIR "/examples/lenet5.ini", ov_lenet, 1, &e));
    if (e) run_experiment("examples/lenet5.ini", e, 1, 28, 28, 3, 1, NULL, NULL);
    rpu_experiment_free(&e);
    int tiles = 0;
    CHECK_OK(rpu_experiment_load(RPUSIM_SOURCE_DIR "/data/vgg8-synthetic.ini", NULL, 0, &e));
    if (e) {
        const rpu_run_params *r = rpu_experiment_run(e);
        CHECK(r->synthetic_channels == 3 && r->synthetic_size == 32,
              "vgg8-synthetic: 3 x 32 x 32 synthetic inputs (got %d x %d)", r->synthetic_channels,
              r->synthetic_size);
        run_experiment("data/vgg8-synthetic.ini", e, 3, 32, 32, 2, 1, &tiles, NULL);
        CHECK(tiles == 39, "vgg8-synthetic: %d tiles, want 39", tiles);
    }
    rpu_experiment_free(&e);
    /* the aihwkit-layout LeNet-5 with pulsed updates: on 2 ranks its four tiles are updated
     * whole by one holder each (rpu_update_owners), announced before the forward, so that
     * only a tile's updating holder fetches every sample (rpu_conv_set_update_owners); on 3
     * and 4 ranks the rows split */
    const char *ov_aih[] = {"run.batch_size=8"};
    CHECK_OK(rpu_experiment_load(RPUSIM_SOURCE_DIR "/data/fashion-lenet5-aihwkit.ini", ov_aih, 1,
                                 &e));
    if (e) {
        int whole = -1;
        run_experiment("data/fashion-lenet5-aihwkit.ini", e, 1, 28, 28, 8, 2, NULL, &whole);
        CHECK(whole == (tl_size() == 2 ? 4 : 0),
              "fashion-lenet5-aihwkit on %d ranks: %d tiles updated whole, want %d", tl_size(),
              whole, tl_size() == 2 ? 4 : 0);
    }
    rpu_experiment_free(&e);
}

/* 4. arguments and names */
static void test_arguments(void) {
    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, 4, 6, 3);
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_SINGLE);
    const int in[2] = {5, 5};
    int n = -1;
    CHECK_STATUS(rpu_conv_comm_plan(&p, &cfg, 2, in, true, 3, 3, NULL, 0, &n), RPU_ERR_ARG);
    CHECK(n == 0, "a failed plan counts 0 calls (got %d)", n);
    CHECK_STATUS(rpu_conv_comm_plan(&p, &cfg, 0, in, true, 3, 0, NULL, 0, &n), RPU_ERR_ARG);
    CHECK_STATUS(rpu_conv_comm_plan(&p, &cfg, 2, NULL, true, 3, 0, NULL, 0, &n), RPU_ERR_ARG);
    CHECK_STATUS(rpu_conv_comm_plan(NULL, &cfg, 2, in, true, 3, 0, NULL, 0, &n), RPU_ERR_ARG);
    CHECK_STATUS(rpu_conv_comm_plan(&p, &cfg, 2, in, true, 3, 0, NULL, 0, NULL), RPU_ERR_ARG);
    const int tiny[2] = {1, 1};
    CHECK_STATUS(rpu_conv_comm_plan(&p, &cfg, 2, tiny, true, 3, 0, NULL, 0, &n), RPU_ERR_ARG);
    /* a short array gets the first calls and the full count: the one tile (6 x 36) has all
     * three ranks as holders, so forward and backward (rpu_agree, the delivery to the owners
     * of the samples, the gather of every rank's samples: 3 + 3 calls), the backward's
     * gather of the per-sample bias-gradient sums (1) and the split pulsed update
     * (rpu_agree, then the weights' rows gathered) */
    rpu_comm_call one[1];
    CHECK_OK(rpu_conv_comm_plan(&p, &cfg, 2, in, true, 3, 1, one, 1, &n));
    CHECK(n == 9 && one[0].phase == RPU_PHASE_FORWARD && one[0].layer == -1,
          "one of %d calls written", n);
    CHECK_STATUS(rpu_net_comm_plan(NULL, 2, 1, 0, NULL, 0, &n), RPU_ERR_ARG);
    rpu_tile_grid g;
    CHECK_STATUS(rpu_conv_placement(&p, &cfg, 0, &g), RPU_ERR_ARG);
    for (int op = 0; op < RPU_COMM_N_OPS; ++op)
        CHECK(!strcmp(pc_op_name(op), rpu_comm_op_name((rpu_comm_op)op)),
              "operation %d: the wrapper says %s, the library %s", op, pc_op_name(op),
              rpu_comm_op_name((rpu_comm_op)op));
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_rules("single");
    test_rules("floating_point");
    test_files();
    test_arguments();
    test_layer_api("single");
    test_layer_api("floating_point");
    return tl_finish();
}
