/* The scale model of `rpusim bench scale` (src/cli/scale_model.c) against values worked
 * out by hand from the formulas its header and the README state:
 *   1. the cost of one call: allreduce by recursive doubling / Rabenseifner / ring (the
 *      cheapest), broadcast, hierarchical allreduce across nodes, point-to-point;
 *   2. a step of a one-layer profile (a linear layer of 2 x 2 tiles) on 1, 2 and 4 ranks:
 *      compute from the tiles each rank holds, processor sharing when a node has fewer
 *      cores than busy ranks, the layer's reductions from its communication plan, the
 *      update summed per rank, the replicated rest; the batch scales compute linearly;
 *   3. the units of --bandwidth and --latency.
 * The model is pure computation: one rank is enough. */
#include "testlib.h"

#include "cli/scale_model.h"

#include <math.h>
#include <string.h>

static bool near(double a, double b) {
    return fabs(a - b) <= 1e-9 * (fabs(a) + fabs(b)) + 1e-15;
}

static void test_calls(void) {
    const sm_machine m = {4, 4, {1e-6, 1e9}, {10e-6, 1e8}, 0, {0, 1}};
    /* one rank: nothing */
    sm_cost c = sm_call_cost(&m, RPU_COMM_ALLREDUCE, 1e6, 1);
    CHECK(c.seconds == 0 && c.messages == 0, "allreduce on 1 rank: %g s", c.seconds);
    /* 2 ranks, 8 bytes: recursive doubling, 1 step: alpha + B/beta */
    c = sm_call_cost(&m, RPU_COMM_ALLREDUCE, 8, 2);
    CHECK(near(c.seconds, 1e-6 + 8e-9) && near(c.messages, 1) && near(c.wire_bytes, 8),
          "allreduce 8 B on 2 ranks: %g s, %g messages, %g bytes (%s)", c.seconds, c.messages,
          c.wire_bytes, c.algo);
    /* 4 ranks, 1 MB: doubling 2 (1us + 1ms) = 2.002 ms; Rabenseifner 4 us + 1.5 ms; ring
     * 6 us + 1.5 ms: Rabenseifner, 4 messages, 1.5 MB sent */
    c = sm_call_cost(&m, RPU_COMM_ALLREDUCE, 1e6, 4);
    CHECK(near(c.seconds, 4e-6 + 1.5e-3) && near(c.messages, 4) && near(c.wire_bytes, 1.5e6) &&
              !strcmp(c.algo, "Rabenseifner"),
          "allreduce 1 MB on 4 ranks: %g s (%s)", c.seconds, c.algo);
    /* 3 ranks (not a power of 2): ceil(log2 3) = 2; 64 B: doubling 2 (1us + 64 ns) */
    c = sm_call_cost(&m, RPU_COMM_ALLREDUCE, 64, 3);
    CHECK(near(c.seconds, 2 * (1e-6 + 64e-9)), "allreduce 64 B on 3 ranks: %g s", c.seconds);
    /* broadcast of 1 MB on 4 ranks: binomial 2 (1us + 1ms); scatter + allgather 4 us +
     * 1.5 ms */
    c = sm_call_cost(&m, RPU_COMM_BCAST, 1e6, 4);
    CHECK(near(c.seconds, 4e-6 + 1.5e-3), "bcast 1 MB on 4 ranks: %g s", c.seconds);
    /* 16 ranks on nodes of 4: reduce in the node (scatter+allgather shape: 4 us + 1.5 ms)
     * + allreduce of 4 node leaders over the network (Rabenseifner 40 us + 15 ms) +
     * broadcast in the node (4 us + 1.5 ms) */
    c = sm_call_cost(&m, RPU_COMM_ALLREDUCE, 1e6, 16);
    CHECK(near(c.seconds, 2 * (4e-6 + 1.5e-3) + 40e-6 + 15e-3) && !strcmp(c.algo, "hierarchical"),
          "allreduce 1 MB on 16 ranks in 4 nodes: %g s (%s)", c.seconds, c.algo);
    /* a point-to-point message across nodes */
    c = sm_call_cost(&m, RPU_COMM_SEND, 1e4, 8);
    CHECK(near(c.seconds, 10e-6 + 1e-4), "send 10 kB across nodes: %g s", c.seconds);
    /* the fit replaces the formulas for its group only */
    sm_machine f = m;
    f.fit_group = 4, f.fit = (sm_link){5e-6, 2e9};
    c = sm_call_cost(&f, RPU_COMM_ALLREDUCE, 1e6, 4);
    CHECK(near(c.seconds, 5e-6 + 5e-4), "fitted allreduce on 4 ranks: %g s", c.seconds);
    c = sm_call_cost(&f, RPU_COMM_ALLREDUCE, 1e6, 2);
    CHECK(near(c.seconds, 1e-6 + 1e-3), "other group sizes keep the formulas: %g s", c.seconds);
}

/* A linear layer 8 -> 8 of 2 x 2 tiles of 4 x 4 (max sizes 4), no bias, no input
 * gradient; tiles cost 1 ms forward, 0.5 ms backward, 0.25 ms update at batch 10, plus a
 * replicated 0.2 ms forward; 0.1 ms replicated outside the layers. */
static void test_step(void) {
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_FLOATING_POINT);
    cfg.mapping.max_input_size = 4;
    cfg.mapping.max_output_size = 4;
    rpu_conv_params p;
    rpu_conv_params_default(&p, 0, 8, 8, 1);
    p.bias = RPU_BIAS_NONE;
    double f[4] = {1e-3, 1e-3, 1e-3, 1e-3}, b[4] = {5e-4, 5e-4, 5e-4, 5e-4},
           u[4] = {2.5e-4, 2.5e-4, 2.5e-4, 2.5e-4};
    sm_layer L = {.name = "fc",
                  .type = "linear",
                  .p = &p,
                  .cfg = &cfg,
                  .in_size = {1, 1, 1},
                  .t1 = {4.2e-3, 2e-3, 1e-3},
                  .fixed = {2e-4, 0, 0},
                  .n_tiles = 4,
                  .tile = {f, b, u},
                  .lout = 1};
    sm_profile prof = {1, &L, 10, 1e-4};
    const sm_machine m = {4, 4, {1e-6, 1e9}, {1e-6, 1e9}, 0, {0, 1}};
    /* the plan: 2 input splits, so the forward agrees on {max, error} (allreduce of 2
     * doubles), then each rank sends its int64 partial sums of the other ranks' samples to
     * them (a sparse exchange: ceil(log2 P) alpha + bytes / beta), and the network gathers
     * the logits (10 x 8 floats). On 2 ranks each rank holds the two tiles of one input
     * split (all 8 output channels): it sends 5 samples x 8 channels (320 bytes). On 4 ranks
     * a rank holds one tile (4 channels, all samples) and sends the samples of the other
     * ranks: 10 - 2 (its own are [0, 2) or [5, 7)) or 10 - 3: at most 8 x 4 x 8 = 256. */
    const double gather2 = sm_call_cost(&m, RPU_COMM_ALLGATHER, 320, 2).seconds;
    const double gather4 = sm_call_cost(&m, RPU_COMM_ALLGATHER, 320, 4).seconds;
    const double comm2 = (1e-6 + 16e-9) + (1e-6 + 320e-9) + gather2;
    const double comm4 = 2 * (1e-6 + 16e-9) + (2e-6 + 256e-9) + gather4; /* doubling, 2 steps */
    double ls[3];
    sm_result r;
    CHECK_OK(sm_predict(&prof, &m, 1, 10, &r, ls));
    CHECK(near(r.step, 4.2e-3 + 2e-3 + 1e-3 + 1e-4) && r.comm == 0 && r.calls == 2 &&
              near(r.payload, 16),
          "1 rank: step %g s, comm %g, %d calls, %g bytes", r.step, r.comm, r.calls, r.payload);
    CHECK(near(ls[0], 4.2e-3) && near(ls[1], 2e-3) && near(ls[2], 1e-3),
          "1 rank: layer times %g %g %g", ls[0], ls[1], ls[2]);
    /* 2 ranks, 2 tiles each */
    CHECK_OK(sm_predict(&prof, &m, 2, 10, &r, NULL));
    CHECK(near(r.step, (2e-4 + 2e-3 + comm2) + 1e-3 + 5e-4 + 1e-4) && near(r.comm, comm2) &&
              r.calls == 3 && near(r.payload, 16 + 320 + 320),
          "2 ranks: step %g s (comm %g, want %g), %d calls, %g bytes", r.step, r.comm, comm2,
          r.calls, r.payload);
    /* 4 ranks, one tile each */
    CHECK_OK(sm_predict(&prof, &m, 4, 10, &r, NULL));
    CHECK(near(r.step, (2e-4 + 1e-3 + comm4) + 5e-4 + 2.5e-4 + 1e-4),
          "4 ranks: step %g s (comm %g, want %g)", r.step, r.comm, comm4);
    /* 4 ranks on 1 core: every phase takes the node's summed compute */
    const sm_machine one = {4, 1, {1e-6, 1e9}, {1e-6, 1e9}, 0, {0, 1}};
    CHECK_OK(sm_predict(&prof, &one, 4, 10, &r, NULL));
    CHECK(near(r.step, (4 * 2e-4 + 4e-3 + comm4) + 2e-3 + 1e-3 + 4 * 1e-4),
          "4 ranks on one core: step %g s", r.step);
    /* batch 20: compute doubles, the exchange and the gather carry twice the elements */
    CHECK_OK(sm_predict(&prof, &m, 2, 20, &r, NULL));
    const double comm2b =
        (1e-6 + 16e-9) + (1e-6 + 640e-9) + sm_call_cost(&m, RPU_COMM_ALLGATHER, 640, 2).seconds;
    CHECK(near(r.step, 2 * (2e-4 + 2e-3 + 1e-3 + 5e-4 + 1e-4) + comm2b),
          "2 ranks, batch 20: step %g s", r.step);
}

/* One tile (linear 8 -> 40, floating point) on 2 ranks: two holders. The forward (4 ms, of
 * which 3 ms MVMs), the backward (2 ms) and the summed update (1 ms) split by sample blocks
 * (64 vectors: batch 128 in 2 blocks, one each): a summed update keeps only the holder's
 * samples, so the layer's own work splits too; the plan adds the holders' bound (2
 * doubles) and their gradient sums (40 x 8 int64), an allreduce each. */
static void test_holders(void) {
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_FLOATING_POINT);
    cfg.mapping.max_input_size = 64;
    cfg.mapping.max_output_size = 64;
    rpu_conv_params p;
    rpu_conv_params_default(&p, 0, 8, 40, 1);
    p.bias = RPU_BIAS_NONE;
    double f[1] = {4e-3}, b[1] = {2e-3}, u[1] = {1e-3}, mf[1] = {3e-3}, mb[1] = {2e-3};
    sm_layer L = {.name = "fc",
                  .type = "linear",
                  .p = &p,
                  .cfg = &cfg,
                  .in_size = {1, 1, 1},
                  .t1 = {4e-3, 2e-3, 1e-3},
                  .n_tiles = 1,
                  .tile = {f, b, u},
                  .mvm = {mf, mb},
                  .batch_split = true,
                  .summable = true,
                  .row_update = true,
                  .lout = 1};
    sm_profile prof = {1, &L, 128, 0};
    const sm_machine m = {4, 4, {1e-6, 1e9}, {1e-6, 1e9}, 0, {0, 1}};
    sm_result r;
    CHECK_OK(sm_predict(&prof, &m, 2, 128, &r, NULL));
    /* forward: 2 ms, the 1-int check, the exchange of outputs (nothing to send: each
     * holder's block of 64 samples is its own part; one alpha) and the network's gather of
     * the logits (128 x 40 floats); backward: 1 ms, no exchange (no input gradient);
     * update: 0.5 ms, then the allreduces of 16 and 40 x 8 x 8 = 2560 bytes (2 ranks: one
     * alpha + bytes / beta each) */
    const double comm = (1e-6 + 4e-9) + 1e-6 +
                        sm_call_cost(&m, RPU_COMM_ALLGATHER, 20480, 2).seconds + (1e-6 + 16e-9) +
                        (1e-6 + 2560e-9);
    CHECK(near(r.step, 2e-3 + 1e-3 + 0.5e-3 + comm) && r.calls == 5,
          "2 holders: step %g s (want %g), %d calls", r.step, 2e-3 + 1e-3 + 0.5e-3 + comm, r.calls);
    /* batch 10 is one block: holder 0 computes it all */
    CHECK_OK(sm_predict(&prof, &m, 2, 10, &r, NULL));
    const double s = 10.0 / 128;
    CHECK(near(r.compute, (4e-3 + 2e-3 + 1e-3) * s), "2 holders, one block: compute %g s",
          r.compute);
    /* an update split by rows (a pulsed one: 16-row blocks of 40 rows, shares 0.4 and 0.6);
     * the holders then repeat the layer's own work of the forward (1 ms) for the batch */
    L.summable = false;
    CHECK_OK(sm_predict(&prof, &m, 2, 128, &r, NULL));
    CHECK(near(r.compute, 2.5e-3 + 1e-3 + 0.6e-3), "update by rows: compute %g s", r.compute);
    /* a quarter of the update repeated by every slice (the columns' pulse trains): the
     * slowest holder takes 0.25 + 0.75 x 0.6 of 1 ms */
    double rep = 0.25;
    L.upd_rep = &rep;
    CHECK_OK(sm_predict(&prof, &m, 2, 128, &r, NULL));
    CHECK(near(r.compute, 2.5e-3 + 1e-3 + (0.25 + 0.75 * 0.6) * 1e-3),
          "update by rows, a quarter repeated: compute %g s", r.compute);
    L.upd_rep = NULL;
    /* a pulsed update is not split: every holder updates whole */
    L.row_update = false;
    CHECK_OK(sm_predict(&prof, &m, 2, 128, &r, NULL));
    CHECK(near(r.compute, 2.5e-3 + 1e-3 + 1e-3), "whole update: compute %g s", r.compute);
}

static void test_units(void) {
    double v = 0;
    CHECK(!sm_parse_bandwidth("100Gb/s", &v) && near(v, 12.5e9), "100Gb/s: %g", v);
    CHECK(!sm_parse_bandwidth("12.5GB/s", &v) && near(v, 12.5e9), "12.5GB/s: %g", v);
    CHECK(!sm_parse_bandwidth("800 MB/s", &v) && near(v, 8e8), "800 MB/s: %g", v);
    CHECK(!sm_parse_bandwidth("1e9", &v) && near(v, 1e9), "1e9: %g", v);
    CHECK(sm_parse_bandwidth("100Gbit", &v) != NULL, "100Gbit refused");
    CHECK(sm_parse_bandwidth("-1GB/s", &v) != NULL, "-1GB/s refused");
    CHECK(sm_parse_bandwidth("inf", &v) != NULL, "inf refused");
    CHECK(!sm_parse_latency("1us", &v) && near(v, 1e-6), "1us: %g", v);
    CHECK(!sm_parse_latency("0.5ms", &v) && near(v, 5e-4), "0.5ms: %g", v);
    CHECK(!sm_parse_latency("2e-6", &v) && near(v, 2e-6), "2e-6: %g", v);
    CHECK(sm_parse_latency("1 fortnight", &v) != NULL, "1 fortnight refused");
    CHECK(sm_parse_latency("", &v) != NULL, "empty refused");
}

/* A digital layer (1 ms forward, 0.4 ms backward at batch 10) computes only a rank's own
 * samples (floor(10 r / P) ...): on 3 ranks the busiest has 4 of 10; no communication of
 * its own. */
static void test_digital_parts(void) {
    sm_layer L = {.name = "act", .type = "tanh", .t1 = {1e-3, 4e-4, 0}, .fixed = {1e-3, 4e-4, 0}};
    sm_profile prof = {1, &L, 10, 0};
    const sm_machine m = {4, 4, {1e-6, 1e9}, {1e-6, 1e9}, 0, {0, 1}};
    sm_result r;
    CHECK_OK(sm_predict(&prof, &m, 3, 10, &r, NULL));
    CHECK(near(r.compute, 0.4 * (1e-3 + 4e-4)) && r.comm == 0 && r.calls == 0,
          "digital layer on 3 ranks: compute %g s (want %g), comm %g, %d calls", r.compute,
          0.4 * (1e-3 + 4e-4), r.comm, r.calls);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_calls();
    test_step();
    test_digital_parts();
    test_holders();
    test_units();
    return tl_finish();
}
