/* Restart on another number of ranks (include/rpusim/ckpt.h; DESIGN.md "Checkpoint"):
 * a run of noisy pulsed layers (kind single, constant_step with its default device-to-
 * device variation, IO noise and stochastic pulses) on P ranks takes STEPS_A training steps
 * (forward, backward, update), is saved, and a fresh model on Q ranks loads it and takes
 * STEPS_B more. The outputs of those steps, the final weights (rpu_conv_get_weights) and
 * every dataset of a checkpoint of the final state are bit for bit those of the same run
 * without interruption on P ranks. A control run on Q ranks that continues without loading
 * must differ (so the comparison can fail).
 *
 * Pairs P->Q: 4->2, 2->3, 1->4 as far as they fit into the world size W. Runs with W < 4
 * cannot hold them all; they run the pairs that fit plus W->1 and 1->W (W = 1: 1->1), so
 * every rank count of the CTest matrix restarts across sizes. The ranks of P and Q are the
 * first P and Q ranks of MPI_COMM_WORLD (sub-communicators); rank 0 is in both and
 * compares. A fourth layer uses aihwkit 1.1's tile-array split (rpu_conv_params.split), whose
 * tiles cut kernel blocks.
 *
 * With the argument "compound" the layers use compound devices (compound spec), one type
 * each: conv1 a vector cell (single_random, soft_bounds), conv2 a reference cell, fc a
 * one_sided cell refreshing every update, conv3 a transfer compound (noisy transfer reads,
 * two reads per transfer with wrap-around, resets): every hidden array, counter
 * and stream position must survive the restart, and the continuation on Q ranks must equal
 * the run on P ranks bit for bit. With "transfer2" the same with the buffered transfer
 * family: conv1 buffered_transfer (3 devices, gamma 0.2, noisy reads), conv2 chopped_transfer
 * (random in/out choppers, auto-scale), fc dynamic_transfer (regular and random chopping),
 * conv3 chopped_transfer (gamma 0.3, post-1.1 de-chopped visible weight, regular choppers):
 * buffers, running means, choppers, sweep counters and auto-scale values included. With "mixed"
 * every layer is a mixed_precision compound (quantised, random rows, partial transfers, drift,
 * write noise): the accumulator chi, the counters and the stream positions must survive alike.
 * With "nested" the layers hold unit cells inside compounds (compound spec §1.2): conv1 a
 * transfer of two reference cells (noisy reads, resets), conv2 a chopped compound of a
 * vector cell and a refreshing one_sided cell, conv3 a buffered transfer whose two slow
 * devices are vector cells (diffusion, decay), fc mixed_precision writing a refreshing
 * one_sided cell: the cells' arrays, counters and streams must survive alike. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include "rpusim/ckpt.h"
#include "rpusim/config.h"
#include "rpusim/layer.h"
#include "ckpt_compare.h"
#include "nested_cells.h"
#include "testlib.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STEPS_A 3
#define STEPS_B 3
#define NLAYER 4
#define BATCH 3

static char g_dir[256];
/* argument "compound" (1), "transfer2" (2) or "mixed" (3): compound devices */
static int g_compound;

/* The compound device of layer l (1..4) onto cfg (see the file comment). */
static void use_compound(rpu_config *cfg, int l) {
    static const char *const text[4] = {"device.type = vector\n"
                                        "device.update_policy = single_random\n"
                                        "device.unit_cell_devices.0.type = soft_bounds\n"
                                        "device.unit_cell_devices.1.type = soft_bounds\n"
                                        "device.unit_cell_devices.1.dw_min = 0.002\n",
                                        "device.type = reference\n"
                                        "device.unit_cell_devices.0.type = constant_step\n"
                                        "device.unit_cell_devices.1.type = constant_step\n",
                                        "device.type = one_sided\n"
                                        "device.refresh_every = 1\n"
                                        "device.refresh_upper_thres = 0.05\n"
                                        "device.refresh_lower_thres = 0.01\n"
                                        "device.unit_cell_devices.0.type = constant_step\n"
                                        "device.unit_cell_devices.0.w_max = 0.2\n",
                                        "device.type = transfer\n"
                                        "device.gamma = 0.1\n"
                                        "device.n_reads_per_transfer = 2\n"

                                        "device.with_reset_prob = 0.3\n"
                                        "device.fast_lr = 0.5\n"
                                        "device.unit_cell_devices.0.type = soft_bounds\n"
                                        "device.unit_cell_devices.1.type = constant_step\n"
                                        "device.unit_cell_devices.1.drift.nu = 0.01\n"};
    /* argument "mixed": mixed_precision in every layer, each with other options */
    static const char *const mixed[4] = {"device.type = mixed_precision\n"
                                         "device.n_x_bins = 9\n"
                                         "device.n_d_bins = 7\n"
                                         "device.unit_cell_devices.0.type = soft_bounds\n",
                                         "device.type = mixed_precision\n"
                                         "device.n_rows_per_transfer = 1\n"
                                         "device.random_row = true\n"
                                         "device.unit_cell_devices.0.type = constant_step\n",
                                         "device.type = mixed_precision\n"
                                         "device.transfer_every = 2\n"
                                         "device.n_rows_per_transfer = 3\n"
                                         "device.unit_cell_devices.0.type = soft_bounds\n"
                                         "device.unit_cell_devices.0.drift.nu = 0.01\n",
                                         "device.type = mixed_precision\n"
                                         "device.granularity = 0.004\n"
                                         "device.transfer_lr = 0.5\n"
                                         "device.n_x_bins = 5\n"
                                         "device.unit_cell_devices.0.type = linear_step\n"
                                         "device.unit_cell_devices.0.write_noise_std = 0.5\n"};
    /* "transfer2": the buffered transfer family (compound spec §6-§8) */
    static const char *const text2[4] = {"device.type = buffered_transfer\n"
                                         "device.gamma = 0.2\n"
                                         "device.transfer_forward.out_noise = 0.02\n"
                                         "device.unit_cell_devices.0.type = soft_bounds\n"
                                         "device.unit_cell_devices.1.type = constant_step\n"
                                         "device.unit_cell_devices.2.type = constant_step\n",
                                         "device.type = chopped_transfer\n"
                                         "device.in_chop_prob = 0.3\n"
                                         "device.out_chop_prob = 0.2\n"
                                         "device.auto_scale = true\n"
                                         "device.buffer_granularity = 0.3\n"
                                         "device.unit_cell_devices.0.type = soft_bounds\n"
                                         "device.unit_cell_devices.1.type = constant_step\n",
                                         "device.type = dynamic_transfer\n"
                                         "device.in_chop_prob = 0.25\n"
                                         "device.in_chop_random = true\n"
                                         "device.buffer_granularity = 0.3\n"
                                         "device.unit_cell_devices.0.type = constant_step\n"
                                         "device.unit_cell_devices.1.type = constant_step\n",
                                         "device.type = chopped_transfer\n"
                                         "device.gamma = 0.3\n"
                                         "device.dechop_visible_weight = true\n"
                                         "device.transfer_every = 2\n"
                                         "device.in_chop_prob = 0.5\n"
                                         "device.in_chop_random = false\n"
                                         "device.unit_cell_devices.0.type = soft_bounds\n"
                                         "device.unit_cell_devices.1.type = constant_step\n"};
    /* "nested": unit cells inside compounds (compound spec §1.2) */
    static const char *const nested[4] = {
        "device.type = transfer\n"
        "device.with_reset_prob = 0.3\n"
        "device.transfer_forward.out_noise = 0.02\n" TEST_CELLS_TWO_REFERENCE,
        "device.type = chopped_transfer\n"
        "device.in_chop_prob = 0.3\n"
        "device.auto_scale = true\n" TEST_CELLS_VECTOR_AND_ONE_SIDED,
        "device.type = buffered_transfer\n"
        "device.gamma = 0.2\n"
        "device.unit_cell_devices.0.type = soft_bounds\n"
        "device.unit_cell_devices.0.diffusion = 0.01\n"
        "device.unit_cell_devices.1.type = vector\n"
        "device.unit_cell_devices.1.update_policy = single_sequential\n"
        "device.unit_cell_devices.1.unit_cell_devices.0.type = constant_step\n"
        "device.unit_cell_devices.1.unit_cell_devices.0.lifetime = 50\n"
        "device.unit_cell_devices.1.unit_cell_devices.1.type = constant_step\n"
        "device.unit_cell_devices.2.type = vector\n"
        "device.unit_cell_devices.2.update_policy = single_sequential\n"
        "device.unit_cell_devices.2.unit_cell_devices.0.type = constant_step\n"
        "device.unit_cell_devices.2.unit_cell_devices.1.type = constant_step\n",
        "device.type = mixed_precision\n"
        "device.n_rows_per_transfer = 3\n"
        "device.granularity = 0.004\n"
        "device.unit_cell_devices.0.type = one_sided\n"
        "device.unit_cell_devices.0.refresh_every = 1\n"
        "device.unit_cell_devices.0.refresh_upper_thres = 0.05\n"
        "device.unit_cell_devices.0.refresh_lower_thres = 0.01\n"
        "device.unit_cell_devices.0.unit_cell_devices.0.type = constant_step\n"
        "device.unit_cell_devices.0.unit_cell_devices.0.w_max = 0.2\n"};
    const char *const *which = g_compound == 4   ? nested
                               : g_compound == 3 ? mixed
                               : g_compound == 2 ? text2
                                                 : text;
    CHECK_OK(rpu_config_parse(cfg, which[l - 1], "compound"));
}

typedef struct {
    rpu_conv *c1, *c2, *c3;
    rpu_linear *fc;
    rpu_ckpt_layer ckl[NLAYER];
} net;

static const int in_hw[2] = {6, 6};

static int net_create(net *m, MPI_Comm comm) {
    memset(m, 0, sizeof *m);
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_SINGLE); /* constant_step, pulsed, IO noise */
    rpu_config_set(&cfg, "mapping.max_input_size", "18");
    rpu_config_set(&cfg, "mapping.max_output_size", "4");
    rpu_config_set(&cfg, "forward.noise_management", "average_abs_max");
    rpu_config ca = cfg;
    ca.mapping.digital_bias = false;
    rpu_config cl[4] = {cfg, ca, cfg, cfg};
    if (g_compound)
        for (int l = 0; l < 4; ++l)
            use_compound(&cl[l], l + 1);
    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, 4, 6, 3); /* 4 -> 6, 3x3: 2 x 2 tiles */
    p.padding[0] = p.padding[1] = 1;
    p.layer_id = 1;
    p.seed = 2024;
    rpu_status s = rpu_conv_create(comm, &p, &cl[0], &m->c1);
    rpu_conv_params_default(&p, 1, 6, 4, 2); /* conv1d over the flattened rows, analog bias */
    p.bias = RPU_BIAS_ANALOG;
    p.layer_id = 2;
    p.seed = 2024;
    if (s == RPU_OK) s = rpu_conv_create(comm, &p, &cl[1], &m->c2);
    rpu_linear_params lp;
    rpu_linear_params_default(&lp, 20, 5);
    lp.layer_id = 3;
    lp.seed = 2024;
    if (s == RPU_OK) s = rpu_linear_create(comm, &lp, &cl[2], &m->fc);
    /* tile array: 3 ch x 3x3 = 27 columns at 8: [7, 7, 7, 6]; out 5 at 4: [3, 2]; 8 tiles */
    rpu_config c8 = cl[3];
    c8.mapping.max_input_size = 8;
    rpu_conv_params_default(&p, 2, 3, 5, 3);
    p.padding[0] = p.padding[1] = 1;
    p.split = RPU_SPLIT_TILE_ARRAY;
    p.layer_id = 4;
    p.seed = 2024;
    if (s == RPU_OK) s = rpu_conv_create(comm, &p, &c8, &m->c3);
    CHECK(s == RPU_OK, "net create: %s", rpu_last_error());
    if (s != RPU_OK) return 0;
    m->ckl[0] = (rpu_ckpt_layer){"conv1", m->c1};
    m->ckl[1] = (rpu_ckpt_layer){"conv2", m->c2};
    m->ckl[2] = (rpu_ckpt_layer){"fc", rpu_linear_as_conv(m->fc)};
    m->ckl[3] = (rpu_ckpt_layer){"conv3", m->c3};
    const rpu_tile_grid *g3 = rpu_conv_grid(m->c3);
    CHECK(g3->split == RPU_SPLIT_TILE_ARRAY && g3->n_tiles == 8 && g3->in_share == 2,
          "conv3: tile array of 8 tiles with cut kernel blocks");
    return 1;
}

static void net_destroy(net *m) {
    rpu_conv_destroy(&m->c1);
    rpu_conv_destroy(&m->c2);
    rpu_conv_destroy(&m->c3);
    rpu_linear_destroy(&m->fc);
}

/* Output floats of one step (all three layers' outputs concatenated). */
enum {
    Y1 = BATCH * 6 * 36,
    Y2 = BATCH * 4 * 35,
    Y3 = BATCH * 5,
    Y4 = BATCH * 5 * 36,
    YALL = Y1 + Y2 + Y3 + Y4
};

/* One training step of every layer on test data of step `step`; y receives the outputs. The
 * layers are trained independently (each gets its own input), which exercises every tile's
 * forward, backward and update streams. */
static void net_step(net *m, int step, float *y) {
    float x1[BATCH * 4 * 36], d1[Y1], x2[BATCH * 6 * 36], d2[Y2], x3[BATCH * 20], d3[Y3];
    float x4[BATCH * 3 * 36], d4[Y4];
    tl_fill_uniform(x1, BATCH * 4 * 36, -1, 1, 99, (uint64_t)(10 * step + 1));
    tl_fill_uniform(d1, Y1, -0.1f, 0.1f, 99, (uint64_t)(10 * step + 2));
    tl_fill_uniform(x2, BATCH * 6 * 36, -1, 1, 99, (uint64_t)(10 * step + 3));
    tl_fill_uniform(d2, Y2, -0.1f, 0.1f, 99, (uint64_t)(10 * step + 4));
    tl_fill_uniform(x3, BATCH * 20, -1, 1, 99, (uint64_t)(10 * step + 5));
    tl_fill_uniform(d3, Y3, -0.1f, 0.1f, 99, (uint64_t)(10 * step + 6));
    tl_fill_uniform(x4, BATCH * 3 * 36, -1, 1, 99, (uint64_t)(10 * step + 7));
    tl_fill_uniform(d4, Y4, -0.1f, 0.1f, 99, (uint64_t)(10 * step + 8));
    const int l2 = 36;
    CHECK_OK(rpu_conv_forward(m->c1, x1, BATCH, in_hw, y));
    CHECK_OK(rpu_conv_backward(m->c1, d1, NULL));
    CHECK_OK(rpu_conv_update(m->c1, 0.2f));
    CHECK_OK(rpu_conv_forward(m->c2, x2, BATCH, &l2, y + Y1));
    CHECK_OK(rpu_conv_backward(m->c2, d2, NULL));
    CHECK_OK(rpu_conv_update(m->c2, 0.2f));
    CHECK_OK(rpu_linear_forward(m->fc, x3, BATCH, y + Y1 + Y2));
    CHECK_OK(rpu_linear_backward(m->fc, d3, NULL));
    CHECK_OK(rpu_linear_update(m->fc, 0.2f));
    CHECK_OK(rpu_conv_forward(m->c3, x4, BATCH, in_hw, y + Y1 + Y2 + Y3));
    CHECK_OK(rpu_conv_backward(m->c3, d4, NULL));
    CHECK_OK(rpu_conv_update(m->c3, 0.2f));
}

/* The final logical weights of all layers, concatenated (collective on the net's comm). */
static float *net_weights(net *m, size_t *n) {
    size_t tot = 0;
    for (int i = 0; i < NLAYER; ++i)
        tot += (size_t)rpu_conv_weight_count(m->ckl[i].layer) +
               (size_t)rpu_conv_get_params(m->ckl[i].layer)->out_channels;
    float *w = calloc(tot, sizeof(float)), *p = w;
    for (int i = 0; i < NLAYER; ++i) {
        rpu_conv *l = m->ckl[i].layer;
        const size_t nw = (size_t)rpu_conv_weight_count(l);
        CHECK_OK(rpu_conv_get_weights(
            l, p, rpu_conv_get_params(l)->bias != RPU_BIAS_NONE ? p + nw : NULL, RPU_READ_EXACT));
        p += nw + (size_t)rpu_conv_get_params(l)->out_channels;
    }
    *n = tot;
    return w;
}

static size_t count_diff(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; ++i)
        d += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    return d;
}

static void run_pair(int P, int Q) {
    const int rank = tl_rank();
    MPI_Comm cp, cq;
    MPI_Comm_split(MPI_COMM_WORLD, rank < P ? 0 : MPI_UNDEFINED, rank, &cp);
    MPI_Comm_split(MPI_COMM_WORLD, rank < Q ? 0 : MPI_UNDEFINED, rank, &cq);
    char mid[320], ref_final[320], re_final[320];
    snprintf(mid, sizeof mid, "%s/mid_%d_%d.h5", g_dir, P, Q);
    snprintf(ref_final, sizeof ref_final, "%s/ref_%d_%d.h5", g_dir, P, Q);
    snprintf(re_final, sizeof re_final, "%s/re_%d_%d.h5", g_dir, P, Q);
    float *yref = calloc((size_t)STEPS_B * YALL, sizeof(float));
    float *yre = calloc((size_t)STEPS_B * YALL, sizeof(float));
    float *yctl = calloc((size_t)STEPS_B * YALL, sizeof(float));
    float *wref = NULL, *wre = NULL;
    size_t nref = 0, nre = 0;
    net m;
    /* uninterrupted on P ranks; the interrupted run's first part (also on P) saves */
    if (cp != MPI_COMM_NULL) {
        if (net_create(&m, cp)) {
            for (int s = 0; s < STEPS_A + STEPS_B; ++s)
                net_step(&m, s, s >= STEPS_A ? yref + (size_t)(s - STEPS_A) * YALL : yctl);
            wref = net_weights(&m, &nref);
            rpu_ckpt_meta meta = {.seed = 2024, .step = STEPS_A + STEPS_B};
            CHECK_OK(rpu_ckpt_save(cp, ref_final, &meta, m.ckl, NLAYER, NULL, 0, NULL));
            net_destroy(&m);
        }
        if (net_create(&m, cp)) {
            for (int s = 0; s < STEPS_A; ++s)
                net_step(&m, s, yre);
            rpu_ckpt_meta meta = {.seed = 2024, .step = STEPS_A};
            CHECK_OK(rpu_ckpt_save(cp, mid, &meta, m.ckl, NLAYER, NULL, 0, NULL));
            net_destroy(&m);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    /* restart on Q ranks; and the control without loading */
    if (cq != MPI_COMM_NULL) {
        if (net_create(&m, cq)) {
            rpu_ckpt_info info;
            CHECK_OK(rpu_ckpt_load(cq, mid, m.ckl, NLAYER, NULL, 0, &info));
            CHECK(info.step == STEPS_A && info.ranks_at_save == P,
                  "%d->%d: info step %lld ranks %d", P, Q, (long long)info.step,
                  info.ranks_at_save);
            rpu_ckpt_info_free(&info);
            for (int s = STEPS_A; s < STEPS_A + STEPS_B; ++s)
                net_step(&m, s, yre + (size_t)(s - STEPS_A) * YALL);
            wre = net_weights(&m, &nre);
            rpu_ckpt_meta meta = {.seed = 2024, .step = STEPS_A + STEPS_B};
            CHECK_OK(rpu_ckpt_save(cq, re_final, &meta, m.ckl, NLAYER, NULL, 0, NULL));
            net_destroy(&m);
        }
        if (net_create(&m, cq)) {
            for (int s = STEPS_A; s < STEPS_A + STEPS_B; ++s)
                net_step(&m, s, yctl + (size_t)(s - STEPS_A) * YALL);
            net_destroy(&m);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        const size_t dy = count_diff(yref, yre, (size_t)STEPS_B * YALL);
        CHECK(dy == 0, "%d->%d: %zu of %d outputs after the restart differ", P, Q, dy,
              STEPS_B * YALL);
        CHECK(wref && wre && nref == nre && count_diff(wref, wre, nref) == 0,
              "%d->%d: %zu of %zu final weights differ", P, Q,
              wref && wre && nref == nre ? count_diff(wref, wre, nref) : nref, nref);
        const size_t dc = count_diff(yref, yctl, (size_t)STEPS_B * YALL);
        CHECK(dc > (size_t)YALL, "%d->%d: control without load differs in only %zu outputs", P, Q,
              dc);
        int bad = 0;
        char first[320] = "";
        const int n = tl_ckpt_compare_tiles(ref_final, re_final, &bad, first, sizeof first);
        CHECK(n > 30 && bad == 0, "%d->%d: %d of %d datasets of the final state differ (first %s)",
              P, Q, bad, n, first);
        printf("restart %d -> %d: %d outputs, %zu weights, %d datasets identical\n", P, Q,
               STEPS_B * YALL, nref, n);
    }
    free(yref), free(yre), free(yctl), free(wref), free(wre);
    if (cp != MPI_COMM_NULL) MPI_Comm_free(&cp);
    if (cq != MPI_COMM_NULL) MPI_Comm_free(&cq);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    g_compound = argc > 1 && strcmp(argv[1], "compound") == 0    ? 1
                 : argc > 1 && strcmp(argv[1], "transfer2") == 0 ? 2
                 : argc > 1 && strcmp(argv[1], "mixed") == 0     ? 3
                 : argc > 1 && strcmp(argv[1], "nested") == 0    ? 4
                                                                 : 0;
    const int W = tl_size();
    if (tl_rank() == 0) {
        snprintf(g_dir, sizeof g_dir, "ckpt_restart%s_np%d_XXXXXX",
                 g_compound == 4   ? "_nested"
                 : g_compound == 3 ? "_mixed"
                 : g_compound == 2 ? "_transfer2"
                 : g_compound      ? "_compound"
                                   : "",
                 W);
        if (!mkdtemp(g_dir)) g_dir[0] = '\0';
    }
    MPI_Bcast(g_dir, sizeof g_dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    CHECK(g_dir[0] != '\0', "mkdtemp");
    int pairs[8][2], np = 0;
    const int want[3][2] = {{4, 2}, {2, 3}, {1, 4}};
    for (int k = 0; k < 3; ++k)
        if (want[k][0] <= W && want[k][1] <= W) {
            pairs[np][0] = want[k][0];
            pairs[np][1] = want[k][1];
            ++np;
        }
    if (W < 4) { /* the required pairs need 4 ranks: restart across the sizes that fit */
        if (W == 1) {
            pairs[np][0] = 1, pairs[np][1] = 1, ++np;
        } else {
            pairs[np][0] = W, pairs[np][1] = 1, ++np;
            pairs[np][0] = 1, pairs[np][1] = W, ++np;
        }
    }
    for (int k = 0; k < np; ++k)
        run_pair(pairs[k][0], pairs[k][1]);
    const int rank = tl_rank();
    const int rc = tl_finish();
    if (rc == 0 && rank == 0) tl_remove_dir(g_dir);
    return rc;
}
