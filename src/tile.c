/* The analog tile object: creation (weights, construction-time IO values, device state,
 * inference state), weights and mapping scales, the public update and post-update steps,
 * and the state items of checkpoints.
 *
 * The tile owns its state (struct rpu_tile, tile_impl.h); the modules that act on it sit
 * below this file and never call it: tile_io.c (forward/backward IO model), update.c
 * (pulsed update), inference.c (programming, drift, clip/remap/modifier), device.c. */
#include "tile_impl.h"

#include "error_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- create / destroy */

static rpu_status check_io(const rpu_io_params *io, const char *name) {
    if (io->is_perfect) return RPU_OK;
    if (io->mv_type != RPU_MV_ONE_PASS)
        return RPU_FAIL(RPU_ERR_UNSUPPORTED,
                        "%s.mv_type: only one_pass is implemented in this version", name);
    if (io->inp_res > 0 && io->inp_bound <= 0)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s.inp_res = %g needs a finite %s.inp_bound (got %g)",
                        name, (double)io->inp_res, name, (double)io->inp_bound);
    if (io->out_res > 0 && io->out_bound <= 0)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s.out_res = %g needs a finite %s.out_bound (got %g)",
                        name, (double)io->out_res, name, (double)io->out_bound);
    return RPU_OK;
}

static float *alloc_floats(size_t n) {
    return (float *)calloc(n ? n : 1, sizeof(float));
}

static rpu_status init_io_state(rpu_tile *t, int dir, rpu_rng *g) {
    return rpu_io_state_init(io_params(t, dir), &t->io[dir], dir_out(t, dir), g);
}

void rpu_tile_params_default(rpu_tile_params *p, int out_size, int in_size) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->out_size = out_size;
    p->in_size = in_size;
    p->mac = RPU_MAC_BLAS;
}

rpu_status rpu_tile_create(const rpu_tile_params *p, const rpu_config *cfg, rpu_tile **tile) {
    if (!tile) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_create: tile pointer is NULL");
    *tile = NULL;
    if (!p || !cfg) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_create: params or config is NULL");
    if (p->out_size < 1 || p->in_size < 1)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_create: tile size %d x %d (out x in) must be >= 1",
                        p->out_size, p->in_size);
    if ((size_t)p->out_size * (size_t)p->in_size > ((size_t)1 << 31))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_create: tile %d x %d is too large", p->out_size,
                        p->in_size);
    if (p->mac != RPU_MAC_BLAS && p->mac != RPU_MAC_EXACT)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_create: unknown MAC mode %d", (int)p->mac);
    RPU_CHECK(rpu_config_validate(cfg));
    RPU_CHECK(check_io(&cfg->forward, "forward"));
    RPU_CHECK(check_io(&cfg->backward, "backward"));
    if (cfg->update.desired_bl > RPU_UPDATE_MAX_BL)
        return RPU_FAIL(RPU_ERR_CONFIG, "update.desired_bl = %d: at most %d slots are supported",
                        cfg->update.desired_bl, RPU_UPDATE_MAX_BL);

    rpu_tile *t = (rpu_tile *)calloc(1, sizeof *t);
    if (!t) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for a tile");
    t->p = *p;
    t->cfg = *cfg;
    size_t cells = (size_t)p->out_size * (size_t)p->in_size;
    t->w = alloc_floats(cells);
    t->scales = alloc_floats((size_t)p->out_size);
    rpu_status s = RPU_OK;
    if (!t->w || !t->scales) {
        s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory for a %d x %d tile", p->out_size, p->in_size);
        goto fail;
    }
    for (int i = 0; i < p->out_size; ++i)
        t->scales[i] = 1.0f;
    t->wsel = t->w;
    if ((s = rpu_infer_alloc(t)) != RPU_OK) goto fail;
    rpu_rng g;
    rpu_rng_init(&g, p->seed, rpu_stream_id(p->layer_id, p->tile_id, RPU_PURPOSE_IO));
    if ((s = init_io_state(t, DIR_FWD, &g)) != RPU_OK) goto fail;
    if ((s = init_io_state(t, DIR_BWD, &g)) != RPU_OK) goto fail;
    {
        /* devices: construction seed (0: the run seed) keyed by layer and tile */
        uint64_t cseed = cfg->device.construction_seed ? cfg->device.construction_seed : p->seed;
        rpu_rng cons;
        rpu_rng_init(&cons, cseed, rpu_stream_id(p->layer_id, p->tile_id, RPU_PURPOSE_CONSTRUCT));
        /* a compound's tile-level state is an ideal device without arrays; its sub-devices
         * live in t->cmp (compound.c) */
        rpu_device_params placeholder;
        const rpu_device_params *dp = &cfg->device;
        if (rpu_device_type_is_compound(cfg->device.type)) {
            rpu_device_params_default(&placeholder, RPU_DEVICE_IDEAL);
            dp = &placeholder;
        }
        if ((s = rpu_device_create(&t->dev, dp, p->out_size, p->in_size, &cons)) != RPU_OK)
            goto fail;
        if (dp != &cfg->device && (s = rpu_compound_create(t, cseed)) != RPU_OK) goto fail;
    }
    rpu_rng_init(&t->ustream, p->seed, rpu_stream_id(p->layer_id, p->tile_id, RPU_PURPOSE_UPDATE));
    rpu_rng_init(&t->pstream, p->seed, rpu_stream_id(p->layer_id, p->tile_id, RPU_PURPOSE_POST));
    rpu_rng_init(&t->stream[DIR_FWD], p->seed,
                 rpu_stream_id(p->layer_id, p->tile_id, RPU_PURPOSE_FORWARD));
    rpu_rng_init(&t->stream[DIR_BWD], p->seed,
                 rpu_stream_id(p->layer_id, p->tile_id, RPU_PURPOSE_BACKWARD));
    *tile = t;
    return RPU_OK;
fail:
    rpu_tile_destroy(&t);
    return s;
}

void rpu_tile_destroy(rpu_tile **tile) {
    if (!tile || !*tile) return;
    rpu_tile *t = *tile;
    for (int d = 0; d < 2; ++d)
        rpu_io_state_free(&t->io[d]);
    rpu_compound_free(t);
    rpu_device_free(&t->dev);
    rpu_tile_workspaces_free(t);
    rpu_infer_free(t);
    free(t->w);
    free(t->scales);
    free(t);
    *tile = NULL;
}

int rpu_tile_out_size(const rpu_tile *t) {
    return t ? t->p.out_size : 0;
}
int rpu_tile_in_size(const rpu_tile *t) {
    return t ? t->p.in_size : 0;
}
const rpu_config *rpu_tile_config(const rpu_tile *t) {
    return t ? &t->cfg : NULL;
}
const float *rpu_tile_out_noise_values(const rpu_tile *t, int dir) {
    return (t && (dir == 0 || dir == 1)) ? t->io[dir].out_noise_values : NULL;
}
const float *rpu_tile_v_offsets(const rpu_tile *t, int dir) {
    return (t && (dir == 0 || dir == 1)) ? t->io[dir].v_offset : NULL;
}
const float *rpu_tile_nonlinearity(const rpu_tile *t, int dir) {
    return (t && (dir == 0 || dir == 1)) ? t->io[dir].nl : NULL;
}
float rpu_tile_nm_running(const rpu_tile *t) {
    return t ? t->nm_aux : 0.0f;
}
uint64_t rpu_tile_forward_calls(const rpu_tile *t) {
    return t ? t->calls[DIR_FWD] : 0;
}
uint64_t rpu_tile_backward_calls(const rpu_tile *t) {
    return t ? t->calls[DIR_BWD] : 0;
}
void rpu_tile_set_calls(rpu_tile *t, uint64_t forward_calls, uint64_t backward_calls) {
    if (!t) return;
    t->calls[DIR_FWD] = forward_calls;
    t->calls[DIR_BWD] = backward_calls;
}

/* ---------------------------------------------------------------- weights */

static rpu_status check_units(rpu_weight_units units, const char *fn) {
    if (units != RPU_WEIGHTS_STORED && units != RPU_WEIGHTS_SCALED)
        return RPU_FAIL(RPU_ERR_ARG, "%s: unknown weight units %d", fn, (int)units);
    return RPU_OK;
}

rpu_status rpu_tile_set_weights(rpu_tile *t, const float *w, rpu_weight_units units) {
    if (!t || !w) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_set_weights: NULL argument");
    RPU_CHECK(check_units(units, "rpu_tile_set_weights"));
    const int NO = t->p.out_size, NI = t->p.in_size;
    const rpu_mapping_params *m = &t->cfg.mapping;
    for (size_t k = 0; k < (size_t)NO * NI; ++k)
        if (!isfinite(w[k]))
            return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_set_weights: weight (%zu, %zu) is not finite",
                            k / (size_t)NI, k % (size_t)NI);
    if (units == RPU_WEIGHTS_SCALED && m->weight_scaling_omega > 0) {
        float gmax = 0;
        if (!m->weight_scaling_columnwise)
            for (size_t k = 0; k < (size_t)NO * NI; ++k)
                gmax = fmaxf(gmax, fabsf(w[k]));
        for (int i = 0; i < NO; ++i) {
            float amax = gmax;
            if (m->weight_scaling_columnwise) {
                amax = 0;
                for (int j = 0; j < NI; ++j)
                    amax = fmaxf(amax, fabsf(w[(size_t)i * NI + j]));
            }
            float alpha = amax / m->weight_scaling_omega;
            if (alpha == 0) alpha = 1;
            t->scales[i] = alpha;
            for (int j = 0; j < NI; ++j)
                t->w[(size_t)i * NI + j] = w[(size_t)i * NI + j] / alpha;
        }
    } else {
        memcpy(t->w, w, sizeof(float) * (size_t)NO * NI);
    }
    if (t->cmp)
        rpu_compound_set_weights(t);
    else
        t->pnext += rpu_device_apply_bounds(&t->dev, t->w, &t->pstream, t->pnext);
    t->abs_w_valid = 0;
    rpu_infer_weights_changed(t);
    t->inf.fb_valid = 0;
    t->inf.programmed = 0;
    return RPU_OK;
}

rpu_status rpu_tile_get_weights(const rpu_tile *t, float *w, rpu_weight_units units) {
    if (!t || !w) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_get_weights: NULL argument");
    RPU_CHECK(check_units(units, "rpu_tile_get_weights"));
    const int NO = t->p.out_size, NI = t->p.in_size;
    for (int i = 0; i < NO; ++i) {
        float s = units == RPU_WEIGHTS_SCALED ? t->scales[i] : 1.0f;
        for (int j = 0; j < NI; ++j)
            w[(size_t)i * NI + j] = t->w[(size_t)i * NI + j] * s;
    }
    return RPU_OK;
}

rpu_status rpu_tile_set_mapping_scales(rpu_tile *t, const float *scales) {
    if (!t || !scales) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_set_mapping_scales: NULL argument");
    for (int i = 0; i < t->p.out_size; ++i)
        if (!isfinite(scales[i])) return RPU_FAIL(RPU_ERR_ARG, "mapping scale %d is not finite", i);
    memcpy(t->scales, scales, sizeof(float) * (size_t)t->p.out_size);
    return RPU_OK;
}

rpu_status rpu_tile_get_mapping_scales(const rpu_tile *t, float *scales) {
    if (!t || !scales) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_get_mapping_scales: NULL argument");
    memcpy(scales, t->scales, sizeof(float) * (size_t)t->p.out_size);
    return RPU_OK;
}

/* ---------------------------------------------------------------- update and device */

rpu_status rpu_tile_update(rpu_tile *t, const float *x, const float *d, int n, float lr) {
    if (!t || (n > 0 && (!x || !d))) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update: NULL argument");
    if (n < 0) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update: batch size %d < 0", n);
    rpu_infer_weights_changed(t);
    if (t->cmp) return rpu_compound_tile_update(t, x, d, n, lr);
    return rpu_tile_update_impl(t, x, d, NULL, n, lr, 0, t->p.out_size);
}

rpu_status rpu_tile_update_rows(rpu_tile *t, const float *x, const float *d, int n, float lr,
                                int r0, int r1) {
    if (!t || (n > 0 && (!x || !d)))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update_rows: NULL argument");
    if (n < 0) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update_rows: batch size %d < 0", n);
    if (t->cmp && (r0 != 0 || r1 != t->p.out_size))
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_tile_update_rows: rows [%d, %d) of %d: a compound device updates "
                        "whole tiles only (rpu_tile_update_row_splittable)",
                        r0, r1, t->p.out_size);
    rpu_infer_weights_changed(t);
    if (t->cmp) return rpu_compound_tile_update(t, x, d, n, lr);
    return rpu_tile_update_impl(t, x, d, NULL, n, lr, r0, r1);
}

rpu_status rpu_tile_update_rows_max(rpu_tile *t, const float *x, const float *d, const float *dmax,
                                    int n, float lr, int r0, int r1) {
    if (!t || (n > 0 && (!x || !d || !dmax)))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update_rows_max: NULL argument");
    if (n < 0) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update_rows_max: batch size %d < 0", n);
    if (t->cmp)
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_tile_update_rows_max: a compound device updates whole tiles from "
                        "the whole gradient (rpu_tile_update_row_splittable)");
    rpu_infer_weights_changed(t);
    return rpu_tile_update_impl(t, x, d, dmax, n, lr, r0, r1);
}

int rpu_tile_update_arrays(rpu_tile *t, float **arrays, int max) {
    if (!t) return 0;
    int n = 0;
    if (n < max) arrays[n] = t->w;
    ++n;
    if (t->dev.persistent_weights) {
        if (n < max) arrays[n] = t->dev.persistent_weights;
        ++n;
    }
    return n;
}

void rpu_tile_rows_copied(rpu_tile *t) {
    if (!t) return;
    rpu_infer_weights_changed(t);
    t->abs_w_valid = 0;
}

rpu_status rpu_tile_post_update(rpu_tile *t) {
    if (!t) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_post_update: NULL tile");
    if (t->cmp) {
        if (rpu_compound_post_update(t)) rpu_infer_weights_changed(t);
        t->abs_w_valid = 0;
        return rpu_infer_post_update(t);
    }
    const rpu_device_params *dp = &t->cfg.device;
    if (dp->diffusion > 0) t->pnext += rpu_device_diffuse(&t->dev, t->w, &t->pstream, t->pnext);
    if (dp->lifetime > 0) t->pnext += rpu_device_decay(&t->dev, t->w, 1.0f, &t->pstream, t->pnext);
    if (dp->diffusion > 0 || dp->lifetime > 0) rpu_infer_weights_changed(t);
    t->abs_w_valid = 0;
    return rpu_infer_post_update(t);
}

rpu_status rpu_tile_reset_columns(rpu_tile *t, int start, int count, float prob) {
    if (!t) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_reset_columns: NULL tile");
    if (start < 0 || start >= t->p.in_size)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_reset_columns: start column %d outside [0, %d)",
                        start, t->p.in_size);
    if (!(prob >= 0 && prob <= 1))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_reset_columns: probability %g outside [0, 1]",
                        (double)prob);
    if (t->cmp)
        rpu_compound_reset_columns(t, start, count, prob);
    else
        t->pnext +=
            rpu_device_reset_columns(&t->dev, t->w, start, count, prob, &t->pstream, t->pnext);
    rpu_infer_weights_changed(t);
    t->abs_w_valid = 0;
    return RPU_OK;
}

rpu_status rpu_tile_drift_weights(rpu_tile *t, double dt) {
    if (!t) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_drift_weights: NULL tile");
    if (!(dt >= 0) || !isfinite(dt))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_drift_weights: time step %g must be >= 0", dt);
    if (t->cmp)
        rpu_compound_drift(t, dt);
    else
        t->pnext += rpu_device_drift(&t->dev, t->w, dt, &t->pstream, t->pnext);
    rpu_infer_weights_changed(t);
    t->abs_w_valid = 0;
    return RPU_OK;
}

/* The device arrays of the tile: the device's, or a compound's (its sub-devices' arrays
 * with their index as suffix and the hidden weights, compound spec §1.3). */
static int n_arrays(const rpu_tile *t) {
    return t->cmp ? rpu_compound_n_arrays(t->cmp) : t->dev.n_arrays;
}
static const rpu_device_array *array_at(const rpu_tile *t, int k) {
    return t->cmp ? rpu_compound_array(t->cmp, k) : &t->dev.arrays[k];
}

int rpu_tile_device_array_count(const rpu_tile *t) {
    return t ? n_arrays(t) : 0;
}

float *rpu_tile_device_array(const rpu_tile *t, int index, const char **name) {
    if (!t || index < 0 || index >= n_arrays(t)) return NULL;
    if (name) *name = array_at(t, index)->name;
    return array_at(t, index)->data;
}

float *rpu_tile_device_array_by_name(const rpu_tile *t, const char *name) {
    if (!t || !name) return NULL;
    for (int k = 0; k < n_arrays(t); ++k)
        if (strcmp(array_at(t, k)->name, name) == 0) return array_at(t, k)->data;
    return NULL;
}

double rpu_tile_bytes_per_cell(const rpu_tile *t) {
    if (!t) return 0;
    return sizeof(float) +
           (t->cmp ? rpu_compound_bytes_per_cell(t->cmp) : rpu_device_bytes_per_cell(&t->dev));
}

float rpu_tile_granularity(const rpu_tile *t) {
    return t ? (t->cmp ? rpu_compound_granularity(t->cmp) : t->dev.granularity) : 0;
}

/* ---------------------------------------------------------------- state */

int rpu_tile_state_items(rpu_tile *t, rpu_state_item *items, int max) {
    if (!t || (!items && max > 0)) return 0;
    const int NO = t->p.out_size, NI = t->p.in_size;
    const size_t cells = (size_t)NO * NI;
    int n = 0;
    n = rpu_state_item_add(items, n, max, "weights", RPU_STATE_F32, cells, NO, NI, t->w);
    for (int k = 0; k < n_arrays(t); ++k)
        n = rpu_state_item_add(items, n, max, array_at(t, k)->name, RPU_STATE_F32, cells, NO, NI,
                               array_at(t, k)->data);
    if (t->cmp) n = rpu_compound_state_items(t, items, n, max);
    n = rpu_state_item_add(items, n, max, "mapping_scales", RPU_STATE_F32, (size_t)NO, NO, 1,
                           t->scales);
    static const char *const names[2][3] = {
        {"forward.out_noise_values", "forward.v_offset", "forward.out_nonlinearity"},
        {"backward.out_noise_values", "backward.v_offset", "backward.out_nonlinearity"}};
    for (int d = 0; d < 2; ++d) {
        const int len = dir_out(t, d);
        float *arr[3] = {t->io[d].out_noise_values, t->io[d].v_offset, t->io[d].nl};
        for (int k = 0; k < 3; ++k)
            if (arr[k])
                n = rpu_state_item_add(items, n, max, names[d][k], RPU_STATE_F32, (size_t)len, len,
                                       1, arr[k]);
    }
    n = rpu_state_item_add(items, n, max, "nm_running", RPU_STATE_F32, 1, 1, 1, &t->nm_aux);
    n = rpu_state_item_add(items, n, max, "nm_running_init", RPU_STATE_U64, 1, 1, 1,
                           &t->state_nm_init);
    n = rpu_state_item_add(items, n, max, "forward_calls", RPU_STATE_U64, 1, 1, 1,
                           &t->calls[DIR_FWD]);
    n = rpu_state_item_add(items, n, max, "backward_calls", RPU_STATE_U64, 1, 1, 1,
                           &t->calls[DIR_BWD]);
    n = rpu_state_item_add(items, n, max, "forward_next_block", RPU_STATE_U64, 1, 1, 1,
                           &t->next_block[DIR_FWD]);
    n = rpu_state_item_add(items, n, max, "backward_next_block", RPU_STATE_U64, 1, 1, 1,
                           &t->next_block[DIR_BWD]);
    n = rpu_state_item_add(items, n, max, "update_calls", RPU_STATE_U64, 1, 1, 1, &t->ucalls);
    n = rpu_state_item_add(items, n, max, "update_next_block", RPU_STATE_U64, 1, 1, 1, &t->unext);
    n = rpu_state_item_add(items, n, max, "post_next_block", RPU_STATE_U64, 1, 1, 1, &t->pnext);
    n = rpu_state_item_add(items, n, max, "drift_started", RPU_STATE_U64, 1, 1, 1,
                           &t->state_drift_started);
    n = rpu_state_item_add(items, n, max, "drift_current_t", RPU_STATE_F64, 1, 1, 1,
                           &t->dev.drift_current_t);
    n = rpu_infer_state_items(t, items, n, max);
    /* the int flags are mirrored into uint64 fields so that the items have one type each */
    t->state_nm_init = (uint64_t)t->nm_aux_init;
    t->state_drift_started = (uint64_t)t->dev.drift_started;
    return n;
}

void rpu_tile_state_loaded(rpu_tile *t) {
    if (!t) return;
    if (t->cmp) rpu_compound_state_loaded(t);
    t->nm_aux_init = t->state_nm_init != 0;
    t->dev.drift_started = t->state_drift_started != 0;
    t->abs_w_valid = 0;
    t->abs_src = NULL;
    t->mask_n = 0;
}
