/* Rank invariance of training with compound devices (compound spec; DESIGN.md "Distributed
 * model"): a small conv network (conv2d 4 k3 p1, relu, maxpool, flatten, dropout, linear 4;
 * 2 + 16 tiles; IO noise on; synthetic data, seed 21, 96 samples 8x8, 4 classes; 2 epochs,
 * batch 16, momentum 0.5) trained with each compound type on sub-communicators of sizes
 * 1..min(3, P) (twice at size 1 when P = 1): the per-epoch metrics (all but seconds) and every
 * dataset of every tile of the final checkpoints (weights, hidden arrays, counters, stream
 * positions) are identical bit for bit to those of the size-1 run. The types:
 *   vector     single_random over two soft_bounds devices (compound draws per vector)
 *   reference  two constant_step devices
 *   one_sided  constant_step, refresh after every update with noisy reads
 *   transfer   Tiki-Taka v1, soft_bounds fast / constant_step slow, gamma 0.1, noisy
 *              transfer reads, two reads per transfer, resets with probability 0.3
 *   buffered_transfer  TTv2 over three devices, gamma 0.1
 *   chopped_transfer   c-TTv2, random in/out choppers, auto-scale
 *   dynamic_transfer   AGAD, regular and random chopping
 *   mixed_precision  soft_bounds, stochastically quantised x and d, one random row per
 *              transfer
 *   nested_chopped  c-TTv2 whose fast device is a vector cell (single_random) and whose slow
 *              device is a refreshing one_sided cell (compounds of compounds, §1.2)
 *   nested_mixed  mixed_precision writing a refreshing one_sided cell (as
 *              MixedPrecisionPCMPreset), two random rows per transfer
 * Scratch files under RPUSIM_NET_TMP/compound-np<P>, removed at the end unless TEST_NET_KEEP is
 * set; TEST_NET_VERBOSE prints what was compared. */
#include "rpusim/ckpt.h"
#include "rpusim/net.h"
#include "ckpt_compare.h"
#include "nested_cells.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef RPUSIM_NET_TMP
#error "RPUSIM_NET_TMP (a scratch directory in the build tree) must be defined"
#endif

static char g_tmp[900];

static const char *const exp_head =
    "[run]\nseed = 21\nepochs = 2\nbatch_size = 16\nlr = 0.2\nmomentum = 0.5\n"
    "progress_every = 6\ncheckpoint_every = 2\nkeep_checkpoints = 1\n\n"
    "[data]\ndataset = synthetic\nsynthetic_n = 96\nsynthetic_classes = 4\nsynthetic_size = 8\n\n"
    "[layer.conv1]\ntype = conv2d\nout = 4\nkernel = 3\npadding = 1\n"
    "[layer.relu1]\ntype = relu\n"
    "[layer.pool1]\ntype = maxpool\nkernel = 2\n"
    "[layer.flat]\ntype = flatten\n"
    "[layer.drop]\ntype = dropout\np = 0.2\n"
    "[layer.fc]\ntype = linear\nout = 4\n\n"
    "[rpu]\nkind = single\nforward.out_noise = 0.1\n"
    "mapping.max_input_size = 9\nmapping.max_output_size = 2\n";

static const struct {
    const char *name, *rpu;
} types[] = {
    {"vector", "device.type = vector\ndevice.update_policy = single_random\n"
               "device.unit_cell_devices.0.type = soft_bounds\n"
               "device.unit_cell_devices.1.type = soft_bounds\n"},
    {"reference", "device.type = reference\n"
                  "device.unit_cell_devices.0.type = constant_step\n"
                  "device.unit_cell_devices.1.type = constant_step\n"},
    {"one_sided", "device.type = one_sided\ndevice.refresh_every = 1\n"
                  "device.refresh_upper_thres = 0.05\ndevice.refresh_lower_thres = 0.01\n"
                  "device.unit_cell_devices.0.type = constant_step\n"
                  "device.unit_cell_devices.0.w_max = 0.2\n"},
    {"transfer", "device.type = transfer\ndevice.gamma = 0.1\n"
                 "device.n_reads_per_transfer = 2\ndevice.with_reset_prob = 0.3\n"
                 "device.unit_cell_devices.0.type = soft_bounds\n"
                 "device.unit_cell_devices.1.type = constant_step\n"},
    {"buffered_transfer", "device.type = buffered_transfer\ndevice.gamma = 0.1\n"
                          "device.unit_cell_devices.0.type = soft_bounds\n"
                          "device.unit_cell_devices.1.type = constant_step\n"
                          "device.unit_cell_devices.2.type = constant_step\n"},
    {"chopped_transfer", "device.type = chopped_transfer\ndevice.in_chop_prob = 0.3\n"
                         "device.out_chop_prob = 0.1\ndevice.auto_scale = true\n"
                         "device.buffer_granularity = 0.2\n"
                         "device.unit_cell_devices.0.type = soft_bounds\n"
                         "device.unit_cell_devices.1.type = constant_step\n"},
    {"dynamic_transfer", "device.type = dynamic_transfer\ndevice.in_chop_prob = 0.25\n"
                         "device.in_chop_random = true\ndevice.buffer_granularity = 0.2\n"
                         "device.unit_cell_devices.0.type = soft_bounds\n"
                         "device.unit_cell_devices.1.type = constant_step\n"},
    {"mixed_precision", "device.type = mixed_precision\ndevice.n_x_bins = 9\n"
                        "device.n_d_bins = 7\ndevice.n_rows_per_transfer = 1\n"
                        "device.random_row = true\n"
                        "device.unit_cell_devices.0.type = soft_bounds\n"},
    {"nested_chopped",
     "device.type = chopped_transfer\ndevice.in_chop_prob = 0.3\n"
     "device.auto_scale = true\ndevice.buffer_granularity = 0.2\n" TEST_CELLS_VECTOR_AND_ONE_SIDED},
    {"nested_mixed", "device.type = mixed_precision\ndevice.n_rows_per_transfer = 2\n"
                     "device.random_row = true\n"
                     "device.unit_cell_devices.0.type = one_sided\n"
                     "device.unit_cell_devices.0.refresh_every = 1\n"
                     "device.unit_cell_devices.0.refresh_upper_thres = 0.05\n"
                     "device.unit_cell_devices.0.refresh_lower_thres = 0.01\n"
                     "device.unit_cell_devices.0.unit_cell_devices.0.type = constant_step\n"
                     "device.unit_cell_devices.0.unit_cell_devices.0.w_max = 0.2\n"},
};

#define MAX_EP 4
typedef struct {
    int n;
    rpu_epoch_metrics m[MAX_EP];
} run_log;

static void on_epoch(void *ctx, const rpu_epoch_metrics *m) {
    run_log *r = ctx;
    if (r->n < MAX_EP) r->m[r->n] = *m;
    r->n++;
}

static bool same_metrics(const rpu_epoch_metrics *a, const rpu_epoch_metrics *b) {
    return a->epoch == b->epoch && !memcmp(&a->train_loss, &b->train_loss, sizeof(double)) &&
           !memcmp(&a->train_acc, &b->train_acc, sizeof(double)) &&
           !memcmp(&a->test_loss, &b->test_loss, sizeof(double)) &&
           !memcmp(&a->test_acc, &b->test_acc, sizeof(double));
}

static void run_type(int ti) {
    const int P = tl_size(), maxs = P < 3 ? P : 3;
    const int runs = P == 1 ? 2 : maxs;
    char text[4096];
    snprintf(text, sizeof text, "%s%s", exp_head, types[ti].rpu);
    run_log logs[3];
    char ck[3][1100];
    memset(logs, 0, sizeof logs);
    for (int r = 0; r < runs; ++r) {
        const int size = P == 1 ? 1 : r + 1;
        char o_dir[1100], o_ck[1200];
        snprintf(o_dir, sizeof o_dir, "run.output_dir=%s/%s-%d", g_tmp, types[ti].name, r);
        snprintf(ck[r], sizeof ck[r], "%s/%s-%d/ck.h5", g_tmp, types[ti].name, r);
        snprintf(o_ck, sizeof o_ck, "run.checkpoint=%.1100s", ck[r]);
        const char *ov[2] = {o_dir, o_ck};
        MPI_Comm sub = MPI_COMM_NULL;
        MPI_Comm_split(MPI_COMM_WORLD, tl_rank() < size ? 0 : MPI_UNDEFINED, tl_rank(), &sub);
        if (sub != MPI_COMM_NULL) {
            rpu_experiment *e = NULL;
            rpu_status s = rpu_experiment_parse(text, types[ti].name, ov, 2, &e);
            CHECK(s == RPU_OK, "%s: parse: %s", types[ti].name, rpu_last_error());
            if (s == RPU_OK) {
                rpu_train_hooks h = {.on_epoch = on_epoch, .ctx = &logs[r]};
                s = rpu_train(sub, e, NULL, &h);
                CHECK(s == RPU_OK, "%s size %d: train -> %s: %s", types[ti].name, size,
                      rpu_status_name(s), rpu_last_error());
                CHECK(logs[r].n == 2, "%s size %d: %d epochs", types[ti].name, size, logs[r].n);
                rpu_experiment_free(&e);
            }
            MPI_Comm_free(&sub);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    if (tl_rank() != 0) return;
    for (int k = 0; k < logs[0].n && k < MAX_EP; ++k)
        CHECK(isfinite(logs[0].m[k].train_loss) && logs[0].m[k].train_acc > 0,
              "%s: epoch %d trained (loss %g)", types[ti].name, k + 1, logs[0].m[k].train_loss);
    for (int r = 1; r < runs; ++r) {
        bool same = logs[r].n == logs[0].n;
        for (int k = 0; same && k < logs[0].n && k < MAX_EP; ++k)
            same = same_metrics(&logs[0].m[k], &logs[r].m[k]);
        CHECK(same, "%s: run %d (size %d) metrics == size 1 metrics bit for bit", types[ti].name, r,
              P == 1 ? 1 : r + 1);
        int bad = 0;
        char first[320] = "";
        const int n = tl_ckpt_compare_tiles(ck[0], ck[r], &bad, first, sizeof first);
        CHECK(n > 50 && bad == 0, "%s: run %d: %d of %d tile datasets differ (first %s)",
              types[ti].name, r, bad, n, first);
        if (getenv("TEST_NET_VERBOSE"))
            printf("%s: size %d == size 1: %d datasets, loss %.9g\n", types[ti].name,
                   P == 1 ? 1 : r + 1, n, logs[r].m[1].train_loss);
    }
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    snprintf(g_tmp, sizeof g_tmp, "%s/compound-np%d", RPUSIM_NET_TMP, tl_size());
    tl_remove_tree(g_tmp);
    if (tl_rank() == 0) {
        mkdir(RPUSIM_NET_TMP, 0777);
        mkdir(g_tmp, 0777);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    for (int ti = 0; ti < (int)(sizeof types / sizeof types[0]); ++ti)
        run_type(ti);
    MPI_Barrier(MPI_COMM_WORLD);
    if (!getenv("TEST_NET_KEEP")) tl_remove_tree(g_tmp);
    return tl_finish();
}
