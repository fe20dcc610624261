/* Tests of the checkpoint module (include/rpusim/ckpt.h; DESIGN.md "Checkpoint").
 * Every rank runs every check; files live in a fresh directory under the working directory
 * (removed at the end when everything passed).
 *
 * 1. Round trip, for every device kind (constant_step, linear_step, soft_bounds,
 *    soft_bounds_pmax, exp_step, pow_step, piecewise_step, ideal, floating_point) with
 *    decay, diffusion, reset_dtod, write noise, drift, out_noise_std, v_offset,
 *    out_nonlinearity and average_abs_max noise management on: a model of conv1d (digital
 *    bias), conv2d (groups 2, analog bias), conv3d (no bias) and linear (digital bias)
 *    layers with 2, 2, 2 and 2 x 2 tiles takes one training step, is saved with metadata and extra
 *    arrays, and loaded into freshly created layers whose every state item was first
 *    overwritten with 0xA5 bytes: every item of every owned tile, every digital bias, the
 *    metadata and the arrays are equal bit for bit. The expected feature arrays exist.
 * 2. Serial reader (rank 0): layer descriptions, tile keys, item lists in state-item order,
 *    values equal to the layers' (gathered) weights.
 * 3. Model mismatch: other channels, other rpu_config, other stream seed, other split
 *    sizes, a layer the file lacks, a layer the model lacks -> RPU_ERR_FORMAT naming file
 *    and /layers/<name>, layers untouched.
 * 4. Fault injection on every rank in turn (the last rank also at a later write): the save
 *    fails on every rank with the same message naming file and dataset, <path> and its
 *    rotated copies are unchanged and load to the previous state, no .tmp is left.
 *    keep_last rotation.
 * 5. Corruption (rank 0 edits copies): truncated files, a bit flipped inside a dataset's
 *    data (message names the dataset and the checksum), wrong schema_version, wrong format,
 *    a deleted dataset, a missing file; random bit flips anywhere in the file: either the
 *    load fails and leaves the layers untouched, or it loads exactly the saved state.
 * 6. Argument errors: bad or duplicate layer names, bad array paths, arrays that differ
 *    between ranks, a communicator that is not the layers' -> RPU_ERR_ARG; a missing
 *    directory -> RPU_ERR_IO. A checkpoint of arrays only; an array read with the wrong
 *    element type; a file with layers loaded into a model without them. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, truncate */
#include "rpusim/ckpt.h"
#include "rpusim/config.h"
#include "rpusim/layer.h"
#include "rpusim/tile.h"
#include "testlib.h"

#include <hdf5.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NL 4 /* layers of the test model */

/* AddressSanitizer builds: every collective HDF5 write is ~20x slower (malloc-heavy MPI and
 * HDF5 paths; the corruption part keeps the slow unwinder; far worse on several ranks over
 * 2 cores), so they run the round trip for 4 of the 9 device kinds (one of each family of
 * state arrays) and 12 instead of 40 random bit flips. The code paths are the same. */
#if defined(__SANITIZE_ADDRESS__)
#define LIGHT 1
#else
#define LIGHT 0
#endif

static char g_dir[256];
static char g_path[320]; /* scratch for paths */

static const char *in_dir(const char *name) {
    snprintf(g_path, sizeof g_path, "%s/%s", g_dir, name);
    return g_path;
}

/* ------------------------------------------------------------------ the test model */

typedef struct {
    rpu_conv *c[NL];
    rpu_linear *lin;
    rpu_ckpt_layer ckl[NL];
} model;

static const char *const layer_names[NL] = {"c1", "c2", "c3", "fc"};

/* cfg: digital bias layers use it as is, c2 with mapping.digital_bias false. out_extra
 * changes c1's output channels (a different model); seed_extra its stream seed. */
static int model_create(model *m, const rpu_config *cfg, int out_extra, uint64_t seed_extra) {
    memset(m, 0, sizeof *m);
    rpu_config ca = *cfg;
    ca.mapping.digital_bias = false;
    rpu_conv_params p;
    rpu_conv_params_default(&p, 1, 4, 4 + out_extra, 3);
    p.padding[0] = 1;
    p.layer_id = 1;
    p.seed = 7 + seed_extra;
    rpu_status s = rpu_conv_create(MPI_COMM_WORLD, &p, cfg, &m->c[0]);
    rpu_conv_params_default(&p, 2, 4, 6, 2);
    p.groups = 2;
    p.layer_id = 2;
    p.seed = 7;
    p.bias = RPU_BIAS_ANALOG;
    if (s == RPU_OK) s = rpu_conv_create(MPI_COMM_WORLD, &p, &ca, &m->c[1]);
    rpu_conv_params_default(&p, 3, 2, 3, 2);
    p.bias = RPU_BIAS_NONE;
    p.layer_id = 3;
    p.seed = 7;
    if (s == RPU_OK) s = rpu_conv_create(MPI_COMM_WORLD, &p, cfg, &m->c[2]);
    rpu_linear_params lp;
    rpu_linear_params_default(&lp, 12, 5);
    lp.layer_id = 4;
    lp.seed = 7;
    if (s == RPU_OK) s = rpu_linear_create(MPI_COMM_WORLD, &lp, cfg, &m->lin);
    CHECK(s == RPU_OK, "model create: %s", rpu_last_error());
    if (s != RPU_OK) return 0;
    m->c[3] = rpu_linear_as_conv(m->lin);
    for (int i = 0; i < NL; ++i) {
        m->ckl[i].name = layer_names[i];
        m->ckl[i].layer = m->c[i];
    }
    return 1;
}

static void model_destroy(model *m) {
    for (int i = 0; i < 3; ++i)
        rpu_conv_destroy(&m->c[i]);
    rpu_linear_destroy(&m->lin);
    m->c[3] = NULL;
}

/* One forward/backward/update step of every layer with test data keyed by key. */
static void model_step(model *m, uint64_t key) {
    static const int in3[3][3] = {{10, 0, 0}, {5, 5, 0}, {3, 3, 3}};
    for (int i = 0; i < NL; ++i) {
        rpu_conv *l = m->c[i];
        const rpu_conv_params *p = rpu_conv_get_params(l);
        const int n = 2;
        int xin = p->in_channels, yout = p->out_channels;
        if (i < 3) {
            int os[3];
            CHECK_OK(rpu_conv_output_size(p, in3[i], os));
            for (int d = 0; d < p->ndim; ++d) {
                xin *= in3[i][d];
                yout *= os[d];
            }
        }
        float *x = malloc(sizeof(float) * (size_t)(n * xin));
        float *y = malloc(sizeof(float) * (size_t)(n * yout));
        float *dy = malloc(sizeof(float) * (size_t)(n * yout));
        tl_fill_uniform(x, n * xin, -1, 1, key, (uint64_t)(10 * i + 1));
        tl_fill_uniform(dy, n * yout, -0.2f, 0.2f, key, (uint64_t)(10 * i + 2));
        CHECK_OK(rpu_conv_forward(l, x, n, i < 3 ? in3[i] : NULL, y));
        CHECK_OK(rpu_conv_backward(l, dy, NULL));
        CHECK_OK(rpu_conv_update(l, 0.1f));
        if (p->bias == RPU_BIAS_DIGITAL) { /* the digital bias by plain SGD */
            float b[16], g[16];
            CHECK_OK(rpu_conv_get_digital_bias(l, b));
            CHECK_OK(rpu_conv_get_grad(l, NULL, g));
            for (int c = 0; c < p->out_channels; ++c)
                b[c] -= 0.1f * g[c];
            CHECK_OK(rpu_conv_set_digital_bias(l, b));
        }
        free(x), free(y), free(dy);
    }
}

/* The digital bias of l into b (at most 16 values): 1, or 0 without one. */
static int digital_bias(const rpu_conv *l, float *b) {
    return rpu_conv_get_params(l)->bias == RPU_BIAS_DIGITAL &&
           rpu_conv_get_digital_bias(l, b) == RPU_OK;
}

/* FNV hash of this rank's state of the model (owned tiles' items, digital biases). */
static uint64_t layers_hash(model *m, int first, int count) {
    uint64_t h = TL_HASH_START;
    for (int i = first; i < first + count; ++i)
        h = tl_hash_layer_state(h, m->c[i]);
    return h;
}

static uint64_t model_hash(model *m) {
    return layers_hash(m, 0, NL);
}

static void model_poison(model *m) {
    for (int i = 0; i < NL; ++i) {
        const rpu_tile_grid *g = rpu_conv_grid(m->c[i]);
        for (int t = 0; t < g->n_tiles; ++t) {
            rpu_tile *tile = rpu_conv_tile(m->c[i], t);
            if (!tile) continue;
            rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
            const int n = rpu_tile_state_items(tile, it, RPU_TILE_MAX_STATE_ITEMS);
            for (int k = 0; k < n; ++k)
                memset(it[k].data, 0xA5, rpu_state_item_bytes(&it[k]));
        }
        float b[16];
        if (digital_bias(m->c[i], b)) {
            memset(b, 0xA5, sizeof b);
            CHECK_OK(rpu_conv_set_digital_bias(m->c[i], b));
        }
    }
}

/* Every owned item of a and b equal bit for bit (same communicator, same owners). */
static void model_compare(model *a, model *b, const char *label) {
    size_t items = 0, bad = 0;
    char first[160] = "";
    for (int i = 0; i < NL; ++i) {
        const rpu_tile_grid *g = rpu_conv_grid(a->c[i]);
        for (int t = 0; t < g->n_tiles; ++t) {
            rpu_tile *ta = rpu_conv_tile(a->c[i], t), *tb = rpu_conv_tile(b->c[i], t);
            if (!ta || !tb) {
                if (ta || tb) ++bad;
                continue;
            }
            rpu_state_item ia[RPU_TILE_MAX_STATE_ITEMS], ib[RPU_TILE_MAX_STATE_ITEMS];
            const int na = rpu_tile_state_items(ta, ia, RPU_TILE_MAX_STATE_ITEMS);
            const int nb = rpu_tile_state_items(tb, ib, RPU_TILE_MAX_STATE_ITEMS);
            if (na != nb) ++bad;
            for (int k = 0; k < na && k < nb; ++k) {
                ++items;
                if (strcmp(ia[k].name, ib[k].name) || ia[k].count != ib[k].count ||
                    memcmp(ia[k].data, ib[k].data, rpu_state_item_bytes(&ia[k]))) {
                    if (!bad)
                        snprintf(first, sizeof first, "layer %s tile %d item %s", layer_names[i], t,
                                 ia[k].name);
                    ++bad;
                }
            }
        }
        float ba[16], bb[16];
        const int ha = digital_bias(a->c[i], ba), hb = digital_bias(b->c[i], bb);
        if (ha != hb ||
            (ha &&
             memcmp(ba, bb, sizeof(float) * (size_t)rpu_conv_get_params(a->c[i])->out_channels))) {
            if (!bad) snprintf(first, sizeof first, "layer %s digital bias", layer_names[i]);
            ++bad;
        }
    }
    CHECK(bad == 0, "%s: %zu of %zu items differ; first: %s", label, bad, items, first);
}

/* True on every rank if any rank has an owned tile listing item `name`. */
static int model_has_item(model *m, const char *name) {
    int has = 0;
    for (int i = 0; i < NL && !has; ++i) {
        const rpu_tile_grid *g = rpu_conv_grid(m->c[i]);
        for (int t = 0; t < g->n_tiles && !has; ++t) {
            rpu_tile *tile = rpu_conv_tile(m->c[i], t);
            if (!tile) continue;
            rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
            const int n = rpu_tile_state_items(tile, it, RPU_TILE_MAX_STATE_ITEMS);
            for (int k = 0; k < n; ++k)
                has |= !strcmp(it[k].name, name);
        }
    }
    int any = 0;
    MPI_Allreduce(&has, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any;
}

static void set_cfg(rpu_config *c, const char *key, const char *value) {
    rpu_status s = rpu_config_set(c, key, value);
    CHECK(s == RPU_OK, "rpu_config_set(%s, %s): %s", key, value, rpu_last_error());
}

/* kind single with the device and every stateful feature on; small tiles. */
static void feature_config(rpu_config *c, const char *device) {
    rpu_config_default(c, RPU_KIND_SINGLE);
    set_cfg(c, "device.type", device);
    const int pulsed = strcmp(device, "floating_point") && strcmp(device, "ideal");
    if (pulsed) {
        set_cfg(c, "device.lifetime", "100");
        set_cfg(c, "device.diffusion", "0.001");
        set_cfg(c, "device.reset_dtod", "0.1");
        set_cfg(c, "device.write_noise_std", "0.1");
    }
    set_cfg(c, "device.drift.nu", "0.05");
    set_cfg(c, "forward.out_noise_std", "0.1");
    set_cfg(c, "forward.v_offset_std", "0.02");
    set_cfg(c, "backward.v_offset_std", "0.02");
    set_cfg(c, "forward.out_nonlinearity", "0.1");
    set_cfg(c, "forward.out_nonlinearity_std", "0.1");
    set_cfg(c, "forward.noise_management", "average_abs_max");
    set_cfg(c, "mapping.max_input_size", "8");
    set_cfg(c, "mapping.max_output_size", "4");
}

/* kind single, constant_step with its defaults (6 datasets per tile), small tiles: the
 * tests that are about the file rather than the state items use it (a save costs a
 * collective write per dataset). */
static void small_config(rpu_config *c) {
    rpu_config_default(c, RPU_KIND_SINGLE);
    set_cfg(c, "mapping.max_input_size", "8");
    set_cfg(c, "mapping.max_output_size", "4");
}

static int msg_has(const char *needle) {
    return strstr(rpu_last_error(), needle) != NULL;
}

/* ------------------------------------------------------------------ 1. round trip */

static void test_round_trip(void) {
    static const char *const devices[] = {"constant_step",    "linear_step", "soft_bounds",
                                          "soft_bounds_pmax", "exp_step",    "pow_step",
                                          "piecewise_step",   "ideal",       "floating_point"};
    for (size_t dv = 0; dv < sizeof devices / sizeof devices[0]; ++dv) {
        if (LIGHT && dv != 0 && dv != 1 && dv != 5 && dv != 8) continue;
        rpu_config cfg;
        feature_config(&cfg, devices[dv]);
        if (!strcmp(devices[dv], "piecewise_step")) {
            set_cfg(&cfg, "device.piecewise_up", "[0.5, 1.0, 1.5]");
            set_cfg(&cfg, "device.piecewise_down", "[1.5, 1.0, 0.5]");
        }
        model a, b;
        if (!model_create(&a, &cfg, 0, 0)) return;
        model_step(&a, 100 + dv);
        const char *path = in_dir("round.h5");
        char config_text[64];
        snprintf(config_text, sizeof config_text, "[run]\ndevice = %s\n", devices[dv]);
        rpu_ckpt_meta meta = {
            .seed = 7, .step = 1234 + (int64_t)dv, .epoch = 3, .config = config_text};
        float hist[6] = {1.5f, -2.25f, 3, 4, 5, 6};
        int64_t order[5] = {4, 3, 2, 1, -7};
        uint8_t bytes[3] = {1, 2, 255};
        rpu_ckpt_array arr[4] = {
            {.path = "train/history/loss",
             .dtype = RPU_CKPT_F32,
             .ndim = 2,
             .dims = {3, 2},
             .data = hist},
            {.path = "train/order", .dtype = RPU_CKPT_I64, .ndim = 1, .dims = {5}, .data = order},
            {.path = "train/bytes", .dtype = RPU_CKPT_U8, .ndim = 1, .dims = {3}, .data = bytes},
            {.path = "train/empty", .dtype = RPU_CKPT_F64, .ndim = 1, .dims = {0}, .data = NULL}};
        CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, path, &meta, a.ckl, NL, arr, 4, NULL));
        if (!model_create(&b, &cfg, 0, 0)) return;
        model_poison(&b);
        rpu_ckpt_array in[5] = {{.path = "train/history/loss", .dtype = RPU_CKPT_F32},
                                {.path = "train/order", .dtype = RPU_CKPT_I64},
                                {.path = "train/bytes", .dtype = RPU_CKPT_U8},
                                {.path = "train/empty", .dtype = RPU_CKPT_F64},
                                {.path = "train/absent", .dtype = RPU_CKPT_F64, .optional = true}};
        rpu_ckpt_info info;
        memset(&info, 0, sizeof info);
        rpu_status s = rpu_ckpt_load(MPI_COMM_WORLD, path, b.ckl, NL, in, 5, &info);
        CHECK(s == RPU_OK, "%s: load: %s", devices[dv], rpu_last_error());
        char label[64];
        snprintf(label, sizeof label, "round trip %s", devices[dv]);
        model_compare(&a, &b, label);
        CHECK(info.schema_version == 1 && info.seed == 7 && info.step == 1234 + (int64_t)dv &&
                  info.epoch == 3 && info.ranks_at_save == tl_size() && info.config &&
                  !strcmp(info.config, config_text) && !strcmp(info.rpusim_version, RPUSIM_VERSION),
              "%s: info schema %d seed %llu step %lld epoch %lld ranks %d version %s config %s",
              devices[dv], info.schema_version, (unsigned long long)info.seed, (long long)info.step,
              (long long)info.epoch, info.ranks_at_save, info.rpusim_version,
              info.config ? info.config : "(null)");
        rpu_ckpt_info_free(&info);
        if (s == RPU_OK) {
            CHECK(in[0].ndim == 2 && in[0].dims[0] == 3 && in[0].dims[1] == 2 && in[0].data &&
                      !memcmp(in[0].data, hist, sizeof hist),
                  "%s: array loss", devices[dv]);
            CHECK(in[1].ndim == 1 && in[1].dims[0] == 5 && in[1].data &&
                      !memcmp(in[1].data, order, sizeof order),
                  "%s: array order", devices[dv]);
            CHECK(in[2].dims[0] == 3 && in[2].data && !memcmp(in[2].data, bytes, 3),
                  "%s: array bytes", devices[dv]);
            CHECK(in[3].ndim == 1 && in[3].dims[0] == 0 && !in[3].data, "%s: empty array",
                  devices[dv]);
            CHECK(in[4].data == NULL && in[4].dims[0] == 0, "%s: optional missing array",
                  devices[dv]);
        }
        for (int k = 0; k < 5; ++k)
            free(in[k].data);
        /* the features really produced their state arrays */
        const int pulsed = dv < 7;
        const char *expect[] = {"weights",          "mapping_scales",    "forward.out_noise_values",
                                "forward.v_offset", "backward.v_offset", "forward.out_nonlinearity",
                                "drift_nu",         "nm_running",        "forward_calls",
                                "update_calls"};
        for (size_t k = 0; k < sizeof expect / sizeof expect[0]; ++k)
            CHECK(model_has_item(&a, expect[k]), "%s: no item %s", devices[dv], expect[k]);
        if (pulsed) {
            const char *pexp[] = {"max_bound", "min_bound", "dwmin_up", "decay_scales",
                                  "diffusion_rates", "reset_bias",
                                  /* write noise: not for constant_step (device.c) */
                                  dv == 0 ? "dwmin_down" : "persistent_weights"};
            for (size_t k = 0; k < sizeof pexp / sizeof pexp[0]; ++k)
                CHECK(model_has_item(&a, pexp[k]), "%s: no item %s", devices[dv], pexp[k]);
        }
        if (!strcmp(devices[dv], "linear_step"))
            CHECK(model_has_item(&a, "slope_up"), "linear_step: no slope_up");
        if (!strcmp(devices[dv], "pow_step"))
            CHECK(model_has_item(&a, "gamma_up"), "pow_step: no gamma_up");
        model_destroy(&a);
        model_destroy(&b);
    }
}

/* Inference state (issue 7): a model of inference tiles with clip, remap and a modifier,
 * trained one step (post-update: modifier copy), programmed (repeat 2) and drifted to one
 * day, saved and loaded into a poisoned model: every item equal (programmed and reference
 * weights, drift exponents, baseline, compensation, t_inference, modifier copy); both then
 * drift to 1e7 s with the same read-out and step once more identically. */
static void test_inference_round_trip(void) {
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_INFERENCE);
    set_cfg(&cfg, "modifier.type", "add_normal");
    set_cfg(&cfg, "modifier.std_dev", "0.05");
    set_cfg(&cfg, "clip.type", "fixed_value");
    set_cfg(&cfg, "clip.fixed_value", "0.8");
    set_cfg(&cfg, "remap.type", "channelwise_symmetric");
    set_cfg(&cfg, "mapping.max_input_size", "8");
    set_cfg(&cfg, "mapping.max_output_size", "3");
    model a, b;
    if (!model_create(&a, &cfg, 0, 0)) return;
    model_step(&a, 900);
    for (int i = 0; i < NL; ++i) {
        CHECK_OK(rpu_conv_program(a.c[i], 2));
        CHECK_OK(rpu_conv_drift(a.c[i], 86400, 1));
    }
    const char *path = in_dir("inference.h5");
    rpu_ckpt_meta meta = {.seed = 7, .step = 1, .epoch = 1, .config = ""};
    CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, path, &meta, a.ckl, NL, NULL, 0, NULL));
    if (!model_create(&b, &cfg, 0, 0)) return;
    model_poison(&b);
    CHECK_OK(rpu_ckpt_load(MPI_COMM_WORLD, path, b.ckl, NL, NULL, 0, NULL));
    model_compare(&a, &b, "inference round trip");
    const char *expect[] = {"programmed_weights", "reference_weights", "drift_nu_plus",
                            "drift_nu_minus",     "drift_baseline",    "drift_alpha",
                            "t_inference",        "programmed",        "fb_weights"};
    for (size_t k = 0; k < sizeof expect / sizeof expect[0]; ++k)
        CHECK(model_has_item(&a, expect[k]), "inference: no item %s", expect[k]);
    for (int i = 0; i < NL; ++i) {
        CHECK_OK(rpu_conv_drift(a.c[i], 1e7, 2));
        CHECK_OK(rpu_conv_drift(b.c[i], 1e7, 2));
    }
    model_compare(&a, &b, "inference: drift after load");
    model_step(&a, 901);
    model_step(&b, 901);
    model_compare(&a, &b, "inference: training step after load");
    model_destroy(&a);
    model_destroy(&b);
}

/* ------------------------------------------------------------------ 2. serial reader */

static void test_reader(void) {
    rpu_config cfg;
    small_config(&cfg);
    model a;
    if (!model_create(&a, &cfg, 0, 0)) return;
    model_step(&a, 5);
    const char *path = in_dir("reader.h5");
    rpu_ckpt_meta meta = {.seed = 7, .step = 9, .epoch = 1, .config = "x = 1\n"};
    CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, path, &meta, a.ckl, NL, NULL, 0, NULL));
    /* the logical weights of every layer, gathered on every rank */
    float *w[NL];
    for (int i = 0; i < NL; ++i) {
        const size_t nw = (size_t)rpu_conv_weight_count(a.c[i]);
        const rpu_conv_params *cp = rpu_conv_get_params(a.c[i]);
        w[i] = malloc(sizeof(float) * (nw + (size_t)cp->out_channels));
        CHECK_OK(rpu_conv_get_weights(a.c[i], w[i], cp->bias != RPU_BIAS_NONE ? w[i] + nw : NULL,
                                      RPU_READ_EXACT));
    }
    /* item names of a tile in state-item order, from rank 0's first owned tile */
    if (tl_rank() == 0) {
        rpu_ckpt_file *f = NULL;
        CHECK_OK(rpu_ckpt_open(path, &f));
        if (f) {
            CHECK(rpu_ckpt_file_layer_count(f) == NL, "reader: %d layers",
                  rpu_ckpt_file_layer_count(f));
            const rpu_ckpt_info *in = rpu_ckpt_file_info(f);
            CHECK(in->step == 9 && in->epoch == 1 && !strcmp(in->config, "x = 1\n"),
                  "reader: info");
            for (int i = 0; i < NL && i < rpu_ckpt_file_layer_count(f); ++i) {
                rpu_ckpt_layer_desc d;
                CHECK_OK(rpu_ckpt_file_layer(f, i, &d));
                const rpu_tile_grid *g = rpu_conv_grid(a.c[i]);
                CHECK(!strcmp(d.name, layer_names[i]) && d.n_tiles == g->n_tiles &&
                          d.n_in == g->n_in && d.n_out == g->n_out && d.groups == g->groups,
                      "reader: layer %d: %s, %d tiles", i, d.name, d.n_tiles);
                static const char *const types[NL] = {"conv1d", "conv2d", "conv3d", "linear"};
                static const char *const bias[NL] = {"digital", "analog", "none", "digital"};
                CHECK(!strcmp(d.type, types[i]) && !strcmp(d.bias, bias[i]),
                      "reader: layer %d type %s bias %s", i, d.type, d.bias);
                /* the tile weights reassembled against the logical weights: tile (g,i,j)
                 * holds rows out_ch0.., columns in_ch0*K.. of its group block */
                const int K = g->kernel_elems, ipg = g->in_per_group;
                size_t bad = 0;
                for (int t = 0; t < d.n_tiles; ++t) {
                    const rpu_tile_slot *ts = &g->tiles[t];
                    char key[48], p[128];
                    CHECK_OK(rpu_ckpt_tile_key(&d, t, key));
                    double *v = NULL, *sc = NULL;
                    int nd = 0;
                    int64_t dims[RPU_CKPT_MAX_DIMS];
                    snprintf(p, sizeof p, "layers/%s/tiles/%s/weights", d.name, key);
                    CHECK_OK(rpu_ckpt_file_read(f, p, &v, &nd, dims));
                    snprintf(p, sizeof p, "layers/%s/tiles/%s/mapping_scales", d.name, key);
                    CHECK_OK(rpu_ckpt_file_read(f, p, &sc, &nd, dims));
                    if (!v || !sc) break;
                    for (int r = 0; r < ts->rows; ++r)
                        for (int c = 0; c < ts->in_ch * K; ++c) {
                            const int o = ts->group * g->out_per_group + ts->out_ch0 + r;
                            const size_t wi = (size_t)o * ipg * K + (size_t)ts->in_ch0 * K + c;
                            const float got = (float)(v[(size_t)r * ts->cols + c] * sc[r]);
                            bad += got != w[i][wi];
                        }
                    free(v);
                    free(sc);
                    if (t == 0) {
                        rpu_ckpt_item_desc items[64];
                        int n = 0;
                        CHECK_OK(rpu_ckpt_file_tile_items(f, i, t, items, 64, &n));
                        CHECK(n > 10 && !strcmp(items[0].name, "weights") &&
                                  items[0].rows == ts->rows && items[0].cols == ts->cols &&
                                  items[0].dtype == RPU_CKPT_F32 && !items[0].attribute &&
                                  !strcmp(items[n - 1].name, "drift_current_t") &&
                                  items[n - 1].dtype == RPU_CKPT_F64 && items[n - 1].attribute,
                              "reader: layer %d tile 0: %d items, first %s, last %s", i, n,
                              n ? items[0].name : "", n ? items[n - 1].name : "");
                    }
                }
                CHECK(bad == 0, "reader: layer %s: %zu weights differ from get_weights", d.name,
                      bad);
            }
            double *v = NULL;
            int nd;
            int64_t dims[RPU_CKPT_MAX_DIMS];
            CHECK_STATUS(rpu_ckpt_file_read(f, "layers/c1/tiles/9_9/weights", &v, &nd, dims),
                         RPU_ERR_FORMAT);
            CHECK(msg_has("/layers/c1/tiles/9_9/weights") && msg_has("missing"),
                  "reader missing dataset message: %s", rpu_last_error());
            rpu_ckpt_close(&f);
            rpu_ckpt_close(&f); /* NULL is fine */
        }
        rpu_ckpt_file *g = NULL;
        CHECK_STATUS(rpu_ckpt_open(in_dir("nothing.h5"), &g), RPU_ERR_IO);
        CHECK(g == NULL && msg_has("nothing.h5"), "open missing: %s", rpu_last_error());
    }
    for (int i = 0; i < NL; ++i)
        free(w[i]);
    model_destroy(&a);
}

/* ------------------------------------------------------------------ 3. model mismatch */

static void expect_load_fails(model *m, const char *path, rpu_status want, const char *needle1,
                              const char *needle2, const char *label) {
    model_poison(m);
    const uint64_t before = model_hash(m);
    rpu_status s = rpu_ckpt_load(MPI_COMM_WORLD, path, m->ckl, NL, NULL, 0, NULL);
    CHECK(s == want, "%s: load -> %s, want %s (%s)", label, rpu_status_name(s),
          rpu_status_name(want), rpu_last_error());
    CHECK(msg_has(path), "%s: message does not name the file: %s", label, rpu_last_error());
    if (needle1) CHECK(msg_has(needle1), "%s: no '%s' in: %s", label, needle1, rpu_last_error());
    if (needle2) CHECK(msg_has(needle2), "%s: no '%s' in: %s", label, needle2, rpu_last_error());
    CHECK(model_hash(m) == before, "%s: the failed load changed the layers", label);
    /* the same message on every rank */
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", rpu_last_error());
    char root[1024];
    memcpy(root, msg, sizeof root);
    MPI_Bcast(root, sizeof root, MPI_CHAR, 0, MPI_COMM_WORLD);
    CHECK(!strcmp(root, msg), "%s: rank message differs from rank 0's: '%s' vs '%s'", label, msg,
          root);
}

static void test_mismatch(void) {
    rpu_config cfg;
    small_config(&cfg);
    model a;
    if (!model_create(&a, &cfg, 0, 0)) return;
    const char *p = in_dir("model.h5");
    char path[320];
    snprintf(path, sizeof path, "%s", p);
    CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, path, NULL, a.ckl, NL, NULL, 0, NULL));
    model b;
    /* other output channels of c1 */
    if (model_create(&b, &cfg, 2, 0)) {
        expect_load_fails(&b, path, RPU_ERR_FORMAT, "/layers/c1", "channels", "other shape");
        model_destroy(&b);
    }
    /* other stream seed of c1 */
    if (model_create(&b, &cfg, 0, 1)) {
        expect_load_fails(&b, path, RPU_ERR_FORMAT, "/layers/c1", "seed", "other seed");
        model_destroy(&b);
    }
    /* other rpu_config (dw_min) */
    rpu_config c2 = cfg;
    set_cfg(&c2, "device.dw_min", "0.002");
    if (model_create(&b, &c2, 0, 0)) {
        expect_load_fails(&b, path, RPU_ERR_FORMAT, "/layers/c1", "device.dw_min", "other config");
        model_destroy(&b);
    }
    /* other tile size: other split sizes */
    rpu_config c3 = cfg;
    set_cfg(&c3, "mapping.max_output_size", "2");
    if (model_create(&b, &c3, 0, 0)) {
        expect_load_fails(&b, path, RPU_ERR_FORMAT, "/layers/c1", "split_sizes", "other splits");
        model_destroy(&b);
    }
    /* a layer the file does not have / a layer the model does not have */
    if (model_create(&b, &cfg, 0, 0)) {
        b.ckl[2].name = "c3x";
        expect_load_fails(&b, path, RPU_ERR_FORMAT, "/layers/c3", "model", "renamed layer");
        b.ckl[2].name = "c3";
        model_poison(&b);
        const uint64_t h = model_hash(&b);
        rpu_status s = rpu_ckpt_load(MPI_COMM_WORLD, path, b.ckl, NL - 1, NULL, 0, NULL);
        CHECK(s == RPU_ERR_FORMAT && msg_has("/layers/fc") && msg_has(path),
              "layer missing from the model: %s: %s", rpu_status_name(s), rpu_last_error());
        CHECK(model_hash(&b) == h, "layer missing from the model: layers changed");
        /* a model with a layer more than the file: save 3 layers, load 4 */
        const char *p3 = in_dir("model3.h5");
        char path3[320];
        snprintf(path3, sizeof path3, "%s", p3);
        CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, path3, NULL, a.ckl, NL - 1, NULL, 0, NULL));
        expect_load_fails(&b, path3, RPU_ERR_FORMAT, "/layers/fc", "no layer", "extra model layer");
        /* a required array that is missing */
        rpu_ckpt_array need = {.path = "train/step_table", .dtype = RPU_CKPT_F64};
        model_poison(&b);
        s = rpu_ckpt_load(MPI_COMM_WORLD, path, b.ckl, NL, &need, 1, NULL);
        CHECK(s == RPU_ERR_FORMAT && msg_has("/train/step_table") && need.data == NULL,
              "missing array: %s: %s", rpu_status_name(s), rpu_last_error());
        CHECK(model_hash(&b) == h, "missing array: layers changed");
        model_destroy(&b);
    }
    model_destroy(&a);
}

/* ------------------------------------------------------------------ 4. fault injection */

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* step of a checkpoint, read by rank 0 with the serial reader; -1 if it cannot be read. */
static long long step_of(const char *p) {
    long long step = -1;
    if (tl_rank() == 0) {
        rpu_ckpt_file *f = NULL;
        if (rpu_ckpt_open(p, &f) == RPU_OK) step = rpu_ckpt_file_info(f)->step;
        rpu_ckpt_close(&f);
    }
    MPI_Bcast(&step, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    return step;
}

/* Only the linear layer (2 x 2 tiles: every rank owns one at 1-4 ranks) is saved here. */
static void test_faults(void) {
    const int L0 = 3, NF = 1;
    rpu_config cfg;
    small_config(&cfg);
    model a, b;
    if (!model_create(&a, &cfg, 0, 0) || !model_create(&b, &cfg, 0, 0)) return;
    char path[320], p1[340], p2[340], p3[340], tmp[340];
    snprintf(path, sizeof path, "%s", in_dir("fault.h5"));
    snprintf(p1, sizeof p1, "%s.1", path);
    snprintf(p2, sizeof p2, "%s.2", path);
    snprintf(p3, sizeof p3, "%s.3", path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    rpu_ckpt_save_opts o;
    rpu_ckpt_save_opts_default(&o);
    o.keep_last = 2;
    /* three good saves: steps 1, 2, 3 -> path (3), .1 (2), .2 (1) */
    uint64_t hash_saved = 0;
    for (int step = 1; step <= 3; ++step) {
        model_step(&a, 200 + (uint64_t)step);
        rpu_ckpt_meta meta = {.seed = 7, .step = step};
        CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, path, &meta, a.ckl + L0, NF, NULL, 0, &o));
        hash_saved = layers_hash(&a, L0, NF);
    }
    CHECK(step_of(path) == 3 && step_of(p1) == 2 && step_of(p2) == 1 && !file_exists(p3) &&
              !file_exists(tmp),
          "keep_last 2: steps %lld %lld %lld, .3 %d, .tmp %d", step_of(path), step_of(p1),
          step_of(p2), file_exists(p3), file_exists(tmp));
    /* keep_last 1 on another file: one previous copy */
    {
        char q[320], q1[340], q2[340];
        snprintf(q, sizeof q, "%s", in_dir("keep1.h5"));
        snprintf(q1, sizeof q1, "%s.1", q);
        snprintf(q2, sizeof q2, "%s.2", q);
        rpu_ckpt_save_opts k1;
        rpu_ckpt_save_opts_default(&k1);
        k1.keep_last = 1;
        for (int step = 1; step <= 3; ++step) {
            rpu_ckpt_meta meta = {.seed = 7, .step = step};
            CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, q, &meta, a.ckl + L0, NF, NULL, 0, &k1));
        }
        CHECK(step_of(q) == 3 && step_of(q1) == 2 && !file_exists(q2),
              "keep_last 1: steps %lld %lld, .2 %d", step_of(q), step_of(q1), file_exists(q2));
    }
    /* keep_last 0 replaces only <path> */
    model_step(&a, 204);
    rpu_ckpt_meta meta4 = {.seed = 7, .step = 4};
    CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, path, &meta4, a.ckl + L0, NF, NULL, 0, NULL));
    hash_saved = layers_hash(&a, L0, NF);
    CHECK(step_of(path) == 4 && step_of(p1) == 2 && step_of(p2) == 1, "keep_last 0");
    /* a failing write on each rank in turn (its first own write, and a later one) */
    model_step(&a, 205);
    for (int r = 0; r < tl_size(); ++r)
        for (int which = 1; which <= (r == tl_size() - 1 ? 3 : 1); which += 2) {
            rpu_ckpt_save_opts f = o;
            f.fail_rank = r;
            f.fail_write = which;
            rpu_ckpt_meta meta = {.seed = 7, .step = 99};
            rpu_status s = rpu_ckpt_save(MPI_COMM_WORLD, path, &meta, a.ckl + L0, NF, NULL, 0, &f);
            CHECK(s == RPU_ERR_IO, "inject rank %d write %d: %s (%s)", r, which, rpu_status_name(s),
                  rpu_last_error());
            CHECK(msg_has("injected") && msg_has(path) && msg_has("/layers/"),
                  "inject rank %d: message %s", r, rpu_last_error());
            char msg[1024], root[1024];
            snprintf(msg, sizeof msg, "%s", rpu_last_error());
            memcpy(root, msg, sizeof root);
            MPI_Bcast(root, sizeof root, MPI_CHAR, 0, MPI_COMM_WORLD);
            CHECK(!strcmp(msg, root), "inject rank %d: messages differ: '%s' vs '%s'", r, msg,
                  root);
            CHECK(!file_exists(tmp), "inject rank %d: .tmp left behind", r);
            CHECK(step_of(path) == 4 && step_of(p1) == 2 && step_of(p2) == 1,
                  "inject rank %d: previous checkpoints changed", r);
            model_poison(&b);
            CHECK_OK(rpu_ckpt_load(MPI_COMM_WORLD, path, b.ckl + L0, NF, NULL, 0, NULL));
            CHECK(layers_hash(&b, L0, NF) == hash_saved,
                  "inject rank %d: previous state not loaded", r);
        }
    /* and the next save works */
    rpu_ckpt_meta meta5 = {.seed = 7, .step = 5};
    CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, path, &meta5, a.ckl + L0, NF, NULL, 0, &o));
    CHECK(step_of(path) == 5 && step_of(p1) == 4 && step_of(p2) == 2, "after faults");
    model_destroy(&a);
    model_destroy(&b);
}

/* ------------------------------------------------------------------ 5. corruption */

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int ok = a && b;
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0)
        ok = fwrite(buf, 1, n, b) == n;
    if (a) fclose(a);
    if (b && fclose(b) != 0) ok = 0;
    return ok;
}

static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void flip_bit(const char *p, long off, int bit) {
    FILE *f = fopen(p, "r+b");
    if (!f) return;
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ (1 << bit), f);
    fclose(f);
}

/* File offset of dataset `obj`'s first chunk (rank 0, serial HDF5). */
static long chunk_offset(const char *p, const char *obj) {
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, obj, H5P_DEFAULT) : -1;
    hid_t s = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t off[2];
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    if (s >= 0) H5Dget_chunk_info(d, s, 0, off, &mask, &addr, &size);
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    if (f >= 0) H5Fclose(f);
    return addr == HADDR_UNDEF ? -1 : (long)addr;
}

static void test_corruption(void) {
    rpu_config cfg;
    feature_config(&cfg, "constant_step");
    model a, b;
    if (!model_create(&a, &cfg, 0, 0) || !model_create(&b, &cfg, 0, 0)) return;
    model_step(&a, 300);
    char good[320], bad[320];
    snprintf(good, sizeof good, "%s", in_dir("good.h5"));
    snprintf(bad, sizeof bad, "%s", in_dir("bad.h5"));
    CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, good, NULL, a.ckl, NL, NULL, 0, NULL));
    const uint64_t saved = model_hash(&a);
    const long size = tl_rank() == 0 ? file_size(good) : 0;

    /* truncated: to half, to the last byte short, to 100 bytes */
    const long cut[3] = {size / 2, size - 1, 100};
    for (int k = 0; k < 3; ++k) {
        if (tl_rank() == 0) {
            copy_file(good, bad);
            CHECK(truncate(bad, cut[k]) == 0, "truncate");
        }
        MPI_Barrier(MPI_COMM_WORLD);
        char label[64];
        snprintf(label, sizeof label, "truncated to %ld", cut[k]);
        expect_load_fails(&b, bad, RPU_ERR_FORMAT, "truncated", NULL, label);
    }
    /* one bit flipped inside the data of a dataset */
    const char *obj = "/layers/fc/tiles/0_1/weights";
    long off = -1;
    if (tl_rank() == 0) {
        copy_file(good, bad);
        off = chunk_offset(bad, obj);
        CHECK(off > 0, "chunk offset of %s", obj);
        if (off > 0) flip_bit(bad, off + 5, 3);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_load_fails(&b, bad, RPU_ERR_FORMAT, obj, "checksum", "bit flip in weights");
    /* the serial reader rejects it too */
    if (tl_rank() == 0) {
        rpu_ckpt_file *f = NULL;
        CHECK_OK(rpu_ckpt_open(bad, &f));
        double *v = NULL;
        int nd;
        int64_t dims[RPU_CKPT_MAX_DIMS];
        CHECK_STATUS(rpu_ckpt_file_read(f, obj, &v, &nd, dims), RPU_ERR_FORMAT);
        CHECK(msg_has(obj) && msg_has("checksum"), "reader bit flip: %s", rpu_last_error());
        rpu_ckpt_close(&f);
    }
    /* a flip in a small dataset of another layer (mapping scales) */
    const char *obj2 = "/layers/c1/tiles/1_0/mapping_scales";
    if (tl_rank() == 0) {
        copy_file(good, bad);
        off = chunk_offset(bad, obj2);
        if (off > 0) flip_bit(bad, off, 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_load_fails(&b, bad, RPU_ERR_FORMAT, obj2, "checksum", "bit flip in mapping scales");
    /* wrong schema_version, wrong format (valid HDF5 edits) */
    for (int k = 0; k < 2; ++k) {
        if (tl_rank() == 0) {
            copy_file(good, bad);
            hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
            if (k == 0) {
                hid_t at = H5Aopen(f, "schema_version", H5P_DEFAULT);
                int v = 2;
                H5Awrite(at, H5T_NATIVE_INT, &v);
                H5Aclose(at);
            } else {
                H5Adelete(f, "format");
                hid_t t = H5Tcopy(H5T_C_S1);
                H5Tset_size(t, 8);
                hid_t sp = H5Screate(H5S_SCALAR);
                hid_t at = H5Acreate2(f, "format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
                H5Awrite(at, t, "netcdf4");
                H5Aclose(at), H5Sclose(sp), H5Tclose(t);
            }
            H5Fclose(f);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        if (k == 0)
            expect_load_fails(&b, bad, RPU_ERR_FORMAT, "schema_version 2", NULL, "schema 2");
        else
            expect_load_fails(&b, bad, RPU_ERR_FORMAT, "not an rpusim checkpoint", NULL, "format");
    }
    /* a deleted dataset */
    const char *obj3 = "/layers/c2/tiles/g1_0_0/dwmin_up";
    if (tl_rank() == 0) {
        copy_file(good, bad);
        hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
        H5Ldelete(f, obj3, H5P_DEFAULT);
        H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_load_fails(&b, bad, RPU_ERR_FORMAT, obj3, "missing", "deleted dataset");
    /* a deleted 1 x 1 item (an attribute of its tile group), and an extra dataset */
    for (int k = 0; k < 2; ++k) {
        if (tl_rank() == 0) {
            copy_file(good, bad);
            hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
            hid_t g = H5Gopen2(f, "/layers/fc/tiles/1_1", H5P_DEFAULT);
            if (k == 0) {
                H5Adelete(g, "update_calls");
            } else {
                hsize_t d = 1;
                hid_t sp = H5Screate_simple(1, &d, NULL);
                hid_t ds = H5Dcreate2(g, "stray", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                                      H5P_DEFAULT);
                H5Dclose(ds), H5Sclose(sp);
            }
            H5Gclose(g);
            H5Fclose(f);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        if (k == 0)
            expect_load_fails(&b, bad, RPU_ERR_FORMAT, "/layers/fc/tiles/1_1/update_calls",
                              "missing", "deleted attribute");
        else
            expect_load_fails(&b, bad, RPU_ERR_FORMAT, "/layers/fc/tiles/1_1", "stray",
                              "extra dataset");
    }
    /* a missing file, a file that is not HDF5 */
    expect_load_fails(&b, in_dir("none.h5"), RPU_ERR_IO, NULL, NULL, "missing file");
    if (tl_rank() == 0) {
        FILE *f = fopen(bad, "wb");
        fputs("not a checkpoint\n", f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_load_fails(&b, bad, RPU_ERR_FORMAT, NULL, NULL, "text file");

    /* random bit flips anywhere: a load either fails (layers untouched) or is exact */
    int n_fail = 0, n_ok = 0;
    const int flips = LIGHT ? 12 : 40;
    float u[2 * 40];
    tl_fill_uniform(u, 2 * flips, 0, 1, 31, 7);
    for (int k = 0; k < flips; ++k) {
        if (tl_rank() == 0) {
            copy_file(good, bad);
            long o = (long)(u[2 * k] * (float)size);
            if (o >= size) o = size - 1;
            flip_bit(bad, o, (int)(u[2 * k + 1] * 8) & 7);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        model_poison(&b);
        const uint64_t poisoned = model_hash(&b);
        rpu_status s = rpu_ckpt_load(MPI_COMM_WORLD, bad, b.ckl, NL, NULL, 0, NULL);
        if (s == RPU_OK) {
            ++n_ok;
            CHECK(model_hash(&b) == saved, "flip %d: load succeeded with other state", k);
        } else {
            ++n_fail;
            CHECK(model_hash(&b) == poisoned, "flip %d: failed load changed the layers", k);
            CHECK(msg_has(bad), "flip %d: message without the file: %s", k, rpu_last_error());
        }
    }
    if (tl_rank() == 0) printf("random bit flips: %d rejected, %d harmless\n", n_fail, n_ok);
    CHECK(n_fail > flips / 2, "only %d of %d random flips were detected", n_fail, flips);
    model_destroy(&a);
    model_destroy(&b);
}

/* ------------------------------------------------------------------ 6. arguments */

static void test_args(void) {
    rpu_config cfg;
    small_config(&cfg);
    model a;
    if (!model_create(&a, &cfg, 0, 0)) return;
    const char *path = in_dir("args.h5");
    char p[320];
    snprintf(p, sizeof p, "%s", path);
    a.ckl[1].name = "c1";
    CHECK_STATUS(rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, a.ckl, NL, NULL, 0, NULL), RPU_ERR_ARG);
    CHECK(msg_has("twice"), "duplicate name: %s", rpu_last_error());
    a.ckl[1].name = "a/b";
    CHECK_STATUS(rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, a.ckl, NL, NULL, 0, NULL), RPU_ERR_ARG);
    a.ckl[1].name = "..";
    CHECK_STATUS(rpu_ckpt_load(MPI_COMM_WORLD, p, a.ckl, NL, NULL, 0, NULL), RPU_ERR_ARG);
    a.ckl[1].name = "c2";
    float v = 1;
    rpu_ckpt_array arr = {
        .path = "layers/x", .dtype = RPU_CKPT_F32, .ndim = 1, .dims = {1}, .data = &v};
    CHECK_STATUS(rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, a.ckl, NL, &arr, 1, NULL), RPU_ERR_ARG);
    arr.path = "/train/x";
    CHECK_STATUS(rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, a.ckl, NL, &arr, 1, NULL), RPU_ERR_ARG);
    arr.path = "train//x";
    CHECK_STATUS(rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, a.ckl, NL, &arr, 1, NULL), RPU_ERR_ARG);
    /* names that differ between ranks */
    arr.path = tl_rank() == 0 ? "train/a" : "train/b";
    rpu_status s = rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, a.ckl, NL, &arr, 1, NULL);
    CHECK(tl_size() == 1 ? s == RPU_OK : s == RPU_ERR_ARG, "arrays differing between ranks: %s",
          rpu_last_error());
    /* no layers at all: only the caller's arrays */
    {
        double hist[4] = {1, 2, 3, 4};
        rpu_ckpt_array out = {
            .path = "train/h", .dtype = RPU_CKPT_F64, .ndim = 2, .dims = {2, 2}, .data = hist};
        rpu_ckpt_meta meta = {.seed = 1, .step = 2, .epoch = 3, .config = "only arrays"};
        CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, p, &meta, NULL, 0, &out, 1, NULL));
        rpu_ckpt_array in = {.path = "train/h", .dtype = RPU_CKPT_F64};
        rpu_ckpt_info info;
        CHECK_OK(rpu_ckpt_load(MPI_COMM_WORLD, p, NULL, 0, &in, 1, &info));
        CHECK(in.data && in.dims[0] == 2 && in.dims[1] == 2 &&
                  !memcmp(in.data, hist, sizeof hist) && info.step == 2 &&
                  !strcmp(info.config, "only arrays"),
              "arrays only: %s", rpu_last_error());
        free(in.data);
        rpu_ckpt_info_free(&info);
        /* the wrong element type for an array */
        rpu_ckpt_array bad = {.path = "train/h", .dtype = RPU_CKPT_F32};
        CHECK_STATUS(rpu_ckpt_load(MPI_COMM_WORLD, p, NULL, 0, &bad, 1, NULL), RPU_ERR_FORMAT);
        CHECK(msg_has("/train/h") && msg_has("float64") && bad.data == NULL,
              "array type mismatch: %s", rpu_last_error());
        /* a file with layers loaded into a model without them */
        CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, a.ckl, NL, NULL, 0, NULL));
        CHECK_STATUS(rpu_ckpt_load(MPI_COMM_WORLD, p, NULL, 0, NULL, 0, NULL), RPU_ERR_FORMAT);
        CHECK(msg_has("/layers/c1") && msg_has("model"), "extra layers: %s", rpu_last_error());
    }
    /* a directory that does not exist */
    CHECK_STATUS(
        rpu_ckpt_save(MPI_COMM_WORLD, in_dir("no/such/dir.h5"), NULL, a.ckl, NL, NULL, 0, NULL),
        RPU_ERR_IO);
    /* a layer on another communicator */
    if (tl_size() > 1) {
        MPI_Comm half;
        MPI_Comm_split(MPI_COMM_WORLD, tl_rank() % 2, tl_rank(), &half);
        CHECK_STATUS(rpu_ckpt_save(half, p, NULL, a.ckl, NL, NULL, 0, NULL), RPU_ERR_ARG);
        MPI_Comm_free(&half);
    }
    model_destroy(&a);
}

/* Extra arrays of 1..RPU_CKPT_MAX_DIMS dimensions (the Python front end stores torch
 * tensors of any rank): each round-trips through save and load with its shape and values,
 * reads back through the serial reader with the same shape, passes rpu_ckpt_verify, and a
 * 3-d array of more than one chunk keeps its values (chunks of whole leading indices).
 * With check_shape, load refuses a dataset of another shape (nothing loaded). Bad shapes
 * are refused with a message naming the array. */
static void test_arrays_nd(void) {
    const char *p = in_dir("nd.h5");
    enum { N = RPU_CKPT_MAX_DIMS };
    rpu_ckpt_array out[N + 2];
    float *vals[N];
    memset(out, 0, sizeof out);
    char names[N + 2][32];
    for (int nd = 1; nd <= N; ++nd) {
        rpu_ckpt_array *a = &out[nd - 1];
        snprintf(names[nd - 1], sizeof names[0], "torch/nd%d/x", nd);
        a->path = names[nd - 1];
        a->dtype = RPU_CKPT_F32;
        a->ndim = nd;
        int64_t n = 1;
        for (int d = 0; d < nd; ++d) {
            a->dims[d] = 1 + (d + nd) % 3; /* 1, 2 or 3: every position of a dim > 1 */
            n *= a->dims[d];
        }
        vals[nd - 1] = (float *)malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; ++i)
            vals[nd - 1][i] = (float)(i * 7 + nd) - 0.5f;
        a->data = vals[nd - 1];
    }
    /* empty (one dimension 0) and larger than a chunk (CK_CHUNK_ELEMS = 2^20 elements) */
    const int64_t big[3] = {3, 700, 1000};
    uint8_t *bigv = (uint8_t *)malloc((size_t)(big[0] * big[1] * big[2]));
    for (int64_t i = 0; i < big[0] * big[1] * big[2]; ++i)
        bigv[i] = (uint8_t)((i * 31 + 7) % 251);
    out[N] = (rpu_ckpt_array){
        .path = "torch/empty", .dtype = RPU_CKPT_I64, .ndim = 3, .dims = {2, 0, 4}, .data = NULL};
    out[N + 1] = (rpu_ckpt_array){.path = "torch/big",
                                  .dtype = RPU_CKPT_U8,
                                  .ndim = 3,
                                  .dims = {big[0], big[1], big[2]},
                                  .data = bigv};
    CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, NULL, 0, out, N + 2, NULL));
    rpu_ckpt_array in[N + 2];
    memset(in, 0, sizeof in);
    for (int k = 0; k < N + 2; ++k) {
        in[k].path = out[k].path;
        in[k].dtype = out[k].dtype;
    }
    rpu_status s = rpu_ckpt_load(MPI_COMM_WORLD, p, NULL, 0, in, N + 2, NULL);
    CHECK(s == RPU_OK, "nd arrays: load: %s", rpu_last_error());
    for (int k = 0; s == RPU_OK && k < N + 2; ++k) {
        int64_t n = 1;
        int same = in[k].ndim == out[k].ndim;
        for (int d = 0; d < RPU_CKPT_MAX_DIMS; ++d) {
            same &= in[k].dims[d] == (d < out[k].ndim ? out[k].dims[d] : 0);
            if (d < out[k].ndim) n *= out[k].dims[d];
        }
        CHECK(same, "%s: shape after load (ndim %d)", out[k].path, in[k].ndim);
        const size_t bytes = (size_t)n * (out[k].dtype == RPU_CKPT_U8 ? 1 : 4);
        CHECK(n == 0 ? in[k].data == NULL : in[k].data && !memcmp(in[k].data, out[k].data, bytes),
              "%s: values after load", out[k].path);
    }
    for (int k = 0; k < N + 2; ++k)
        free(in[k].data);
    /* the serial reader and the verifier see the same shapes and values */
    if (tl_rank() == 0) {
        rpu_ckpt_file *f = NULL;
        CHECK_OK(rpu_ckpt_open(p, &f));
        int64_t objs = 0;
        CHECK_OK(rpu_ckpt_verify(f, &objs));
        for (int k = 0; f && k < N + 2; ++k) {
            double *v = NULL;
            int nd = 0;
            int64_t dims[RPU_CKPT_MAX_DIMS];
            CHECK_OK(rpu_ckpt_file_read(f, out[k].path, &v, &nd, dims));
            int64_t n = 1;
            int same = nd == out[k].ndim;
            for (int d = 0; d < RPU_CKPT_MAX_DIMS; ++d) {
                same &= dims[d] == (d < out[k].ndim ? out[k].dims[d] : 0);
                if (d < out[k].ndim) n *= out[k].dims[d];
            }
            for (int64_t i = 0; same && i < n; ++i)
                same = out[k].dtype == RPU_CKPT_U8
                           ? v[i] == (double)((const uint8_t *)out[k].data)[i]
                           : v[i] == (double)((const float *)out[k].data)[i];
            CHECK(same, "%s: serial reader (ndim %d)", out[k].path, nd);
            free(v);
        }
        rpu_ckpt_close(&f);
    }
    /* check_shape: the shape passed must be the file's, else nothing is loaded */
    {
        rpu_ckpt_array chk[2] = {{.path = "torch/nd3/x", .dtype = RPU_CKPT_F32},
                                 {.path = "torch/big", .dtype = RPU_CKPT_U8}};
        for (int k = 0; k < 2; ++k) {
            chk[k].check_shape = true;
            chk[k].ndim = out[k == 0 ? 2 : N + 1].ndim;
            memcpy(chk[k].dims, out[k == 0 ? 2 : N + 1].dims, sizeof chk[k].dims);
        }
        CHECK_OK(rpu_ckpt_load(MPI_COMM_WORLD, p, NULL, 0, chk, 2, NULL));
        CHECK(chk[0].data && chk[1].data && !memcmp(chk[1].data, bigv, 3 * 700 * 1000),
              "check_shape, right shapes");
        free(chk[0].data);
        free(chk[1].data);
        chk[0].data = chk[1].data = NULL;
        chk[0].ndim = 3;
        chk[0].dims[2] = 4; /* [1, 2, 4] against the file's [1, 2, 3] */
        CHECK_STATUS(rpu_ckpt_load(MPI_COMM_WORLD, p, NULL, 0, chk, 2, NULL), RPU_ERR_FORMAT);
        CHECK(msg_has("/torch/nd3/x") && msg_has("shape is [1, 2, 3], expected [1, 2, 4]") &&
                  !chk[0].data && !chk[1].data,
              "check_shape, wrong dim: %s", rpu_last_error());
        chk[0].ndim = 2; /* 2 dimensions against 3 */
        CHECK_STATUS(rpu_ckpt_load(MPI_COMM_WORLD, p, NULL, 0, chk, 2, NULL), RPU_ERR_FORMAT);
        CHECK(msg_has("/torch/nd3/x") && msg_has("3 dimensions, expected 2") && !chk[0].data,
              "check_shape, wrong ndim: %s", rpu_last_error());
    }
    /* bad shapes: refused before anything is written, naming the array */
    float one = 1;
    rpu_ckpt_array bad = {.path = "torch/bad", .dtype = RPU_CKPT_F32, .ndim = 0, .data = &one};
    CHECK_STATUS(rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, NULL, 0, &bad, 1, NULL), RPU_ERR_ARG);
    CHECK(msg_has("torch/bad") && msg_has("ndim 0"), "ndim 0: %s", rpu_last_error());
    bad.ndim = RPU_CKPT_MAX_DIMS + 1;
    CHECK_STATUS(rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, NULL, 0, &bad, 1, NULL), RPU_ERR_ARG);
    CHECK(msg_has("torch/bad") && msg_has("ndim 9"), "ndim 9: %s", rpu_last_error());
    bad.ndim = 3;
    bad.dims[0] = 1;
    bad.dims[1] = -2;
    bad.dims[2] = 1;
    CHECK_STATUS(rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, NULL, 0, &bad, 1, NULL), RPU_ERR_ARG);
    CHECK(msg_has("torch/bad") && msg_has("dims[1] = -2"), "negative dim: %s", rpu_last_error());
    bad.dims[1] = INT64_MAX / 2;
    bad.dims[2] = 3;
    CHECK_STATUS(rpu_ckpt_save(MPI_COMM_WORLD, p, NULL, NULL, 0, &bad, 1, NULL), RPU_ERR_ARG);
    CHECK(msg_has("torch/bad") && msg_has("dims[2] = 3"), "overflow: %s", rpu_last_error());
    /* the file saved above is intact after the refused saves */
    rpu_ckpt_array again = {.path = "torch/nd3/x", .dtype = RPU_CKPT_F32};
    CHECK_OK(rpu_ckpt_load(MPI_COMM_WORLD, p, NULL, 0, &again, 1, NULL));
    CHECK(again.ndim == 3 && again.data && !memcmp(again.data, vals[2], 2 * sizeof(float)),
          "file after refused saves");
    free(again.data);
    for (int nd = 1; nd <= N; ++nd)
        free(vals[nd - 1]);
    free(bigv);
}

/* ------------------------------------------------------------------ main */

typedef void (*test_fn)(void);
static void test_round_trips(void) {
    test_round_trip();
    test_inference_round_trip();
    test_arrays_nd();
}

static const test_fn tests[6] = {test_round_trips, test_reader,     test_mismatch,
                                 test_faults,      test_corruption, test_args};

/* Usage: test_ckpt [PARTS], PARTS a string of the test numbers to run (default "123456"). */
int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    const char *parts = argc > 1 ? argv[1] : "123456";
    if (tl_rank() == 0) {
        snprintf(g_dir, sizeof g_dir, "ckpt_test_np%d_XXXXXX", tl_size());
        if (!mkdtemp(g_dir)) g_dir[0] = '\0';
    }
    MPI_Bcast(g_dir, sizeof g_dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    CHECK(g_dir[0] != '\0', "mkdtemp");
    double t[7] = {MPI_Wtime(), 0, 0, 0, 0, 0, 0};
    for (int k = 0; k < 6; ++k) {
        if (strchr(parts, '1' + k)) tests[k]();
        t[k + 1] = MPI_Wtime();
    }
    if (tl_rank() == 0)
        printf("seconds: round trip %.2f, reader %.2f, mismatch %.2f, faults %.2f, corruption "
               "%.2f, arguments %.2f\n",
               t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3], t[5] - t[4], t[6] - t[5]);
    const int rank = tl_rank();
    const int rc = tl_finish();                     /* the same on every rank */
    if (rc == 0 && rank == 0) tl_remove_dir(g_dir); /* keep the files of a failing run */
    return rc;
}
