/* Compound devices (compound-devices spec): several analog arrays behind one tile.
 *
 * State (compound_impl.h). The tile's weights are the visible weight W that forward,
 * backward and get_weights use. Sub-device k (0-based, in device.unit_cell_devices order)
 * has its own device state sub[k] (device-to-device values drawn from its own construction
 * stream, keyed by (seed, layer, tile, RPU_PURPOSE_CONSTRUCT_SUB + k)) and its hidden array
 * W_k. After every public operation W = sum_k gamma_k W_k, except for a fully hidden
 * transfer compound whose last device works on W itself (hidden[n-1] is the tile's
 * weights). Checkpoints store every array under aihwkit's hidden-parameter names (the
 * sub-devices' names with suffix _k, then hidden_weights_k, spec §1.3) and the counters,
 * and restore them verbatim.
 *
 * Update (spec §1.1). One update call of m vectors runs as segments between events: the
 * pulse trains of a segment's vectors are made once by the bit-parallel engine
 * (rpu_update_pulses, update.c) and each coincidence goes to the sub-devices the compound
 * routes it to (mask per vector, sign routing; where one target takes every vector of the
 * segment and its pulses merge, policy all or single_fixed on constant_step, each target
 * goes through the single-device engine at its slot, rpu_update_pulses_target, and merges
 * as a single device does); after the vector that completes a period,
 * the event runs (a transfer, a refresh), then the next segment. The position of every
 * event is a function of the vector counter only, and every random number sits at an
 * address fixed by the work (update stream: per vector, one address slot per target;
 * compound stream: one block per draw in order; transfer stream: per read and write), so
 * results do not depend on the rank count. The update is not split by rows over holders:
 * a transfer reads whole columns (rpu_tile_update_row_splittable is false for compounds, so
 * every holder runs the whole update).
 *
 * Adding a compound. A new device.type (config.h enum, its keys in config_table.c with
 * their member in rpu_compound_params grouped by the types that have them, its rules in
 * config_validate.c) plugs in here at five points, each a switch on c->type:
 *   1. build():         which parameters each sub-device is built from, gamma, the derived
 *                       schedule values, extra arrays (buffers: add them to arrays[] so
 *                       they are checkpointed and listed by name);
 *   2. update targets:  pulse-count learning rate, which sub-devices a vector's pulses go
 *                       to (targets + per-vector mask) and how (sign routing);
 *   3. next_event / run_events: the periods and what happens at them (transfer(),
 *                       refresh(); a buffered transfer adds its buffer step there, reading
 *                       through read_vec() and writing through write_vector());
 *   4. set_weights rule, and which devices post-update/reset/drift act on;
 *   5. state items: counters beyond the common ones.
 * A compound with an update of its own (mixed_precision: no pulse trains for x and d, a
 * digital accumulator) lives in its own file (compound_mixed.c) and is called from the
 * switch points above: build(), the set rule, rpu_compound_tile_update and the state items.
 * Reads go through the tile's IO model (rpu_tile_io_read with the compound's read IO and
 * stream), writes through the pulsed engine with the write's own update parameters.
 * The buffered transfer family (buffered_transfer, chopped_transfer, dynamic_transfer)
 * shares the transfer compound's construction, schedule and set rule here and has its
 * buffers, choppers, chopped fast update and transfer reads in compound_buffered.c.
 *
 * Unit cells inside (spec §1.2): a sub-device of a transfer type or of mixed_precision may
 * be a vector, reference or one_sided cell. It is a compound of its own (cell[k], its tile
 * from compound_cell.c, its compound built here by cell_create): hidden[k] is its visible
 * weight, and every operation on sub-device k goes to the cell's own (its update for the
 * main update or a write, its set rule, post-update, reset, drift, state items). */
#include "tile_impl.h"

#include "error_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static size_t cells_of(const rpu_compound *c) {
    return (size_t)c->rows * (size_t)c->cols;
}

static float uniform_draw(rpu_compound *c) {
    float u[4];
    rpu_rng_uniform_at(&c->cstream, c->cnext++, u, 4);
    return u[0];
}

static float normal_draw(rpu_compound *c) {
    float z[4];
    rpu_rng_normal_at(&c->cstream, c->cnext++, z, 4);
    return z[0];
}

/* The visible weight W = sum_k gamma_k W_k (fully hidden: W is the last device's array). */
static void reduce(rpu_tile *t) {
    rpu_compound *c = t->cmp;
    if (c->fully_hidden) { /* W is the last device's; a unit cell keeps its own copy */
        if (c->cell[c->n - 1]) memcpy(t->w, c->hidden[c->n - 1], cells_of(c) * sizeof(float));
        return;
    }
    if (rpu_compound_chopped_reduce(t)) return;
    const size_t cells = cells_of(c);
    for (size_t q = 0; q < cells; ++q) {
        float s = 0;
        for (int k = 0; k < c->n; ++k)
            s += c->gamma[k] * c->hidden[k][q];
        t->w[q] = s;
    }
}

static void add_named(rpu_compound *c, const char *base, int k, float *data) {
    if (c->n_arrays >= RPU_COMPOUND_MAX_ARRAYS) {
        c->arrays_full = 1;
        return;
    }
    const int a = c->n_arrays++;
    snprintf(c->names[a], RPU_COMPOUND_NAME_MAX, "%s_%d", base, k);
    c->arrays[a].name = c->names[a];
    c->arrays[a].data = data;
}

/* Reads and writes of the compound's arrays: compound_io.c (shared with
 * compound_buffered.c). */
static rpu_status read_vec(rpu_tile *t, int k, int dir, const float *v, float *y) {
    return rpu_compound_read(t, k, dir, v, y);
}

static rpu_status write_vector(rpu_tile *t, const rpu_update_params *up, int k, const float *x,
                               const float *d, float lr) {
    return rpu_compound_write(t, up, k, x, d, lr);
}

/* ---------------------------------------------------------------- unit cells inside */

/* Sub-device k is the unit cell of entry `entry` (compound_cell.c allocates its tile; its
 * compound is built here, one level down); writes reach it through c->cell_update. */
static rpu_status cell_create(rpu_tile *t, int k, int entry, const rpu_update_params *up,
                              const char *upkey, uint64_t cseed) {
    if (up->pulse_type == RPU_PULSE_NONE || up->pulse_type == RPU_PULSE_NONE_WITH_DEVICE)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s.pulse_type = %s: device.unit_cell_devices.%d is a unit cell, which "
                        "takes its updates as pulses",
                        upkey, up->pulse_type == RPU_PULSE_NONE ? "none" : "none_with_device",
                        entry);
    uint64_t cs = 0;
    RPU_CHECK(rpu_cell_alloc(t, k, entry, up, cseed, &cs));
    t->cmp->cell_update = rpu_compound_cell_update;
    const rpu_status s = rpu_compound_create(t->cmp->cell[k], cs);
    return s == RPU_OK ? s : rpu_cell_rekey_error(s, entry);
}

/* The state items of unit cell k (its counters, stream positions and read IO values) under
 * names "unit_cell_devices.k.<name>", appended. */
static int cell_state_items(rpu_tile *t, int k, rpu_state_item *items, int n, int max) {
    rpu_compound *c = t->cmp;
    rpu_tile *cell = c->cell[k];
    rpu_state_item own[RPU_CELL_MAX_ITEMS];
    int m = rpu_compound_state_items(cell, own, 0, RPU_CELL_MAX_ITEMS);
    m = rpu_state_item_add(own, m, RPU_CELL_MAX_ITEMS, "update_next_block", RPU_STATE_U64, 1, 1, 1,
                           &cell->unext);
    m = rpu_state_item_add(own, m, RPU_CELL_MAX_ITEMS, "post_next_block", RPU_STATE_U64, 1, 1, 1,
                           &cell->pnext);
    if (m > RPU_CELL_MAX_ITEMS) m = RPU_CELL_MAX_ITEMS; /* not reached: a cell has ~20 */
    for (int q = 0; q < m; ++q) {
        snprintf(c->cell_names[k][q], RPU_CELL_ITEM_NAME_MAX, "unit_cell_devices.%d.%s", k,
                 own[q].name);
        n = rpu_state_item_add(items, n, max, c->cell_names[k][q], own[q].type, own[q].count,
                               own[q].rows, own[q].cols, own[q].data);
    }
    return n;
}

static int cells_state_items(rpu_tile *t, rpu_state_item *items, int n, int max) {
    for (int k = 0; k < t->cmp->n; ++k)
        if (t->cmp->cell[k]) n = cell_state_items(t, k, items, n, max);
    return n;
}

/* ---------------------------------------------------------------- construction */

static rpu_status check_read_io(const rpu_io_params *io, const char *name) {
    if (io->is_perfect) return RPU_OK;
    if (io->mv_type != RPU_MV_ONE_PASS)
        return RPU_FAIL(RPU_ERR_UNSUPPORTED, "%s.mv_type: only one_pass is implemented", name);
    if (io->ir_drop > 0)
        return RPU_FAIL(RPU_ERR_UNSUPPORTED, "%s.ir_drop = %g: not supported for compound reads",
                        name, (double)io->ir_drop);
    if (io->w_noise > 0 && io->w_noise_type == RPU_WNOISE_PCM_READ)
        return RPU_FAIL(RPU_ERR_UNSUPPORTED,
                        "%s.w_noise_type = pcm_read: not supported for compound reads", name);
    if (io->noise_management == RPU_NM_AVERAGE_ABS_MAX)
        return RPU_FAIL(RPU_ERR_UNSUPPORTED,
                        "%s.noise_management = average_abs_max: not supported for compound reads",
                        name);
    if (io->inp_res > 0 && io->inp_bound <= 0)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s.inp_res = %g needs a finite %s.inp_bound", name,
                        (double)io->inp_res, name);
    if (io->out_res > 0 && io->out_bound <= 0)
        return RPU_FAIL(RPU_ERR_CONFIG, "%s.out_res = %g needs a finite %s.out_bound", name,
                        (double)io->out_res, name);
    return RPU_OK;
}

/* copy_inverted (spec §4.5, read from aihwkit's code): device 1's own base arrays mirrored,
 * its slopes from device 0's. */
static void copy_inverted(rpu_compound *c) {
    rpu_device_state *a = &c->sub[0], *b = &c->sub[1];
    const size_t cells = cells_of(c);
    for (size_t q = 0; q < cells; ++q) {
        float up = b->dwmin_up[q];
        b->dwmin_up[q] = b->dwmin_down[q];
        b->dwmin_down[q] = up;
        float mx = b->max_bound[q];
        b->max_bound[q] = -b->min_bound[q];
        b->min_bound[q] = -mx;
        if (b->reference) b->reference[q] = -b->reference[q];
        if (a->slope_up && b->slope_up) {
            b->slope_down[q] = -a->slope_up[q];
            b->slope_up[q] = -a->slope_down[q];
        }
    }
}

/* Which parameters each sub-device is built from, the weights gamma, the transfer schedule
 * and the read IO (spec §2.1, §3, §4.1, §5.2). */
static rpu_status build(rpu_tile *t, uint64_t cseed) {
    rpu_compound *c = t->cmp;
    const rpu_config *cfg = &t->cfg;
    const rpu_compound_params *cp = &cfg->compound;
    const rpu_device_params *par[RPU_MAX_UNIT_CELL_DEVICES];
    int n = cp->n_devices;
    switch (c->type) {
    case RPU_DEVICE_VECTOR:
        for (int k = 0; k < n; ++k)
            par[k] = &cp->unit_cell_devices[k];
        break;
    case RPU_DEVICE_REFERENCE: /* a single entry is duplicated */
        par[0] = &cp->unit_cell_devices[0];
        par[1] = &cp->unit_cell_devices[n > 1 ? 1 : 0];
        n = 2;
        break;
    case RPU_DEVICE_ONE_SIDED: /* only the first entry's parameters count */
        par[0] = par[1] = &cp->unit_cell_devices[0];
        n = 2;
        break;
    case RPU_DEVICE_TRANSFER: /* devices 1 .. n-1 from entry 1 */
    case RPU_DEVICE_BUFFERED_TRANSFER:
    case RPU_DEVICE_CHOPPED_TRANSFER:
    case RPU_DEVICE_DYNAMIC_TRANSFER:
        for (int k = 0; k < n; ++k)
            par[k] = &cp->unit_cell_devices[k == 0 ? 0 : 1];
        break;
    case RPU_DEVICE_MIXED_PRECISION: /* its own construction (compound_mixed.c) */
        if (rpu_device_type_is_unit_cell(cp->unit_cell_devices[0].type)) {
            /* a unit cell (e.g. MixedPrecisionPCMPreset's one_sided pair) written with the
             * transfer's update parameters (§9.4: UM and UBLM on) */
            rpu_update_params wu = cfg->update;
            wu.update_management = true;
            wu.update_bl_management = true;
            RPU_CHECK(cell_create(t, 0, 0, &wu, "update", cseed));
        }
        return rpu_mixed_build(t, cseed);
    default:
        return RPU_FAIL(RPU_ERR_INTERNAL, "compound_create: device type %d", (int)c->type);
    }
    c->n = n;
    const rpu_update_params *mu = &cfg->update;
    RPU_CHECK(rpu_compound_check_pulses(mu, RPU_UPDATE_MAX_BL, "compound devices need"));

    /* sub-devices, each from its own construction stream; a unit cell (transfer family
     * only) is a compound tile of its own (compound_cell.c) that the fast device's main
     * update or the transfer writes drive */
    float gsum = 0;
    for (int k = 0; k < n; ++k) {
        if (rpu_device_type_is_unit_cell(par[k]->type)) {
            const int entry = (int)(par[k] - cp->unit_cell_devices);
            RPU_CHECK(cell_create(t, k, entry, k == 0 ? mu : &cp->transfer_update,
                                  k == 0 ? "update" : "device.transfer_update", cseed));
        } else {
            rpu_rng cons;
            rpu_rng_init(&cons, cseed,
                         rpu_stream_id(t->p.layer_id, t->p.tile_id,
                                       (uint32_t)RPU_PURPOSE_CONSTRUCT_SUB + (uint32_t)k));
            RPU_CHECK(rpu_device_create(&c->sub[k], par[k], c->rows, c->cols, &cons));
        }
        gsum += rpu_compound_sub_granularity(c, k);
    }
    c->granularity = gsum / (float)n;
    if (c->cell[0]) c->cell[0]->cmp->pulse_granularity = c->granularity; /* §1.2 */
    if (c->type == RPU_DEVICE_ONE_SIDED && cp->copy_inverted) copy_inverted(c);

    /* gamma */
    for (int k = 0; k < n; ++k)
        c->gamma[k] = cp->n_gamma_vec == n ? cp->gamma_vec[k] : 1.0f / (float)n;
    if (c->type == RPU_DEVICE_ONE_SIDED) {
        c->gamma[0] = -1.0f; /* g- */
        c->gamma[1] = 1.0f;  /* g+ */
    }
    float gamma = cp->gamma;
    if (rpu_device_type_is_transfer(c->type)) {
        if (cp->n_gamma_vec == n) {
            gamma = 0;
            for (int k = 0; k < n - 1; ++k)
                gamma += cp->gamma_vec[k];
        } else {
            for (int k = 0; k < n; ++k)
                c->gamma[k] = powf(cp->gamma, (float)(n - 1 - k)); /* 0^0 = 1 */
        }
        c->fully_hidden = gamma == 0.0f && c->gamma[n - 1] == 1.0f;
    }
    c->current_device_idx = (uint64_t)cp->first_update_idx;

    /* hidden arrays (a fully hidden compound's last device is the tile's weights) */
    const size_t cells = cells_of(c);
    const int owned = c->fully_hidden ? n - 1 : n;
    c->block = (float *)calloc(cells * (size_t)owned + 1, sizeof(float));
    c->buf = (float *)calloc(8 * (size_t)(c->rows + c->cols) + 16, sizeof(float));
    if (!c->block || !c->buf)
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the hidden weights of a %dx%d tile",
                        c->rows, c->cols);
    for (int k = 0; k < owned; ++k)
        if (!c->cell[k]) c->hidden[k] = c->block + (size_t)k * cells;
    if (c->fully_hidden && !c->cell[n - 1]) c->hidden[n - 1] = t->w;
    for (int k = 0; k < n; ++k) {
        if (c->cell[k]) /* the cell's arrays, outer index appended (§1.3 rule 2) */
            for (int a = 0; a < c->cell[k]->cmp->n_arrays; ++a)
                add_named(c, c->cell[k]->cmp->arrays[a].name, k, c->cell[k]->cmp->arrays[a].data);
        else
            for (int a = 0; a < c->sub[k].n_arrays; ++a)
                add_named(c, c->sub[k].arrays[a].name, k, c->sub[k].arrays[a].data);
        add_named(c, "hidden_weights", k, c->hidden[k]);
    }
    if (c->arrays_full)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "device.unit_cell_devices: the compound's devices have more than %d "
                        "arrays in all; use fewer devices",
                        RPU_COMPOUND_MAX_ARRAYS);

    /* transfer schedule (§5.2) and the read IO */
    rpu_rng gio;
    rpu_rng_init(&gio, t->p.seed,
                 rpu_stream_id(t->p.layer_id, t->p.tile_id, RPU_PURPOSE_TRANSFER_IO));
    if (rpu_device_type_is_transfer(c->type)) {
        c->read_dir = cp->transfer_columns ? DIR_FWD : DIR_BWD;
        c->t_in = cp->transfer_columns ? c->cols : c->rows;
        c->t_out = cp->transfer_columns ? c->rows : c->cols;
        if (cp->n_reads_per_transfer > c->t_in)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.n_reads_per_transfer = %d exceeds the %d %s a transfer of "
                            "this %d x %d tile can read",
                            cp->n_reads_per_transfer, c->t_in,
                            cp->transfer_columns ? "columns" : "rows", c->rows, c->cols);
        c->n_reads = cp->n_reads_per_transfer;
        for (int k = 0; k < n; ++k) {
            c->te[k] =
                cp->n_transfer_every_vec == n
                    ? cp->transfer_every_vec[k]
                    : cp->transfer_every * powf((float)c->t_out / (float)c->n_reads, (float)k);
            c->tlr[k] = cp->n_transfer_lr_vec == n ? cp->transfer_lr_vec[k] : cp->transfer_lr;
        }
        if (cp->no_self_transfer) c->te[n - 1] = 0;
        c->read_io = cp->transfer_forward;
        c->read_io.noise_management = RPU_NM_NONE;
        c->read_io.bound_management = RPU_BM_NONE;
        RPU_CHECK(check_read_io(&c->read_io, "device.transfer_forward"));
        RPU_CHECK(rpu_io_state_init(&c->read_io, &c->read_state, c->t_out, &gio));
    } else if (c->type == RPU_DEVICE_ONE_SIDED && cp->refresh_every > 0) {
        if (par[0]->write_noise_std > 0)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "device.unit_cell_devices.0.write_noise_std = %g: a refreshing "
                            "one_sided compound (device.refresh_every > 0) cannot reset devices "
                            "with write noise",
                            (double)par[0]->write_noise_std);
        c->read_dir = DIR_FWD;
        c->read_io = cp->refresh_forward;
        RPU_CHECK(check_read_io(&c->read_io, "device.refresh_forward"));
        RPU_CHECK(rpu_io_state_init(&c->read_io, &c->read_state, c->rows, &gio));
        if (cp->refresh_update.desired_bl > RPU_UPDATE_MAX_BL)
            return RPU_FAIL(RPU_ERR_CONFIG, "device.refresh_update.desired_bl = %d: at most %d",
                            cp->refresh_update.desired_bl, RPU_UPDATE_MAX_BL);
    }
    if (c->type == RPU_DEVICE_TRANSFER && cp->transfer_update.desired_bl > RPU_UPDATE_MAX_BL)
        return RPU_FAIL(RPU_ERR_CONFIG, "device.transfer_update.desired_bl = %d: at most %d",
                        cp->transfer_update.desired_bl, RPU_UPDATE_MAX_BL);
    if (rpu_device_type_is_transfer(c->type) && c->type != RPU_DEVICE_TRANSFER)
        RPU_CHECK(rpu_compound_buffered_build(t)); /* buffers, choppers (compound_buffered.c) */
    return RPU_OK;
}

rpu_status rpu_compound_create(rpu_tile *t, uint64_t cseed) {
    RPU_CHECK(rpu_config_validate(&t->cfg));
    rpu_compound *c = (rpu_compound *)calloc(1, sizeof *c);
    if (!c) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for a compound device");
    t->cmp = c;
    c->type = t->cfg.device.type;
    c->write_m = 1;
    c->rows = t->p.out_size;
    c->cols = t->p.in_size;
    rpu_rng_init(&c->cstream, t->p.seed,
                 rpu_stream_id(t->p.layer_id, t->p.tile_id, RPU_PURPOSE_COMPOUND));
    rpu_rng_init(&c->xstream, t->p.seed,
                 rpu_stream_id(t->p.layer_id, t->p.tile_id, RPU_PURPOSE_TRANSFER));
    return build(t, cseed); /* on error the tile frees c */
}

void rpu_compound_free(rpu_tile *t) {
    rpu_compound *c = t->cmp;
    if (!c) return;
    for (int k = 0; k < RPU_MAX_UNIT_CELL_DEVICES; ++k)
        rpu_device_free(&c->sub[k]);
    rpu_io_state_free(&c->read_state);
    rpu_compound_buffered_free(c);
    for (int k = 0; k < RPU_MAX_UNIT_CELL_DEVICES; ++k)
        if (c->cell[k]) rpu_compound_free(c->cell[k]);
    rpu_cell_release(c);
    free(c->block);
    free(c->buf);
    free(c->mask);
    free(c);
    t->cmp = NULL;
}

/* ---------------------------------------------------------------- set weights */

void rpu_compound_set_weights(rpu_tile *t) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const size_t cells = cells_of(c);
    const int n = c->n;
    c->current_update_idx = 0;
    switch (c->type) {
    case RPU_DEVICE_VECTOR:
    case RPU_DEVICE_REFERENCE:
        /* §2.4: single_fixed writes the current device only, the others every device */
        if (cp->update_policy != RPU_POLICY_SINGLE_FIXED) {
            c->current_device_idx = (uint64_t)cp->first_update_idx;
            for (int k = 0; k < n; ++k)
                memcpy(c->hidden[k], t->w, cells * sizeof(float));
        } else {
            memcpy(c->hidden[c->current_device_idx], t->w, cells * sizeof(float));
        }
        break;
    case RPU_DEVICE_ONE_SIDED: /* §4.5: g+ = max(W, 0), g- = max(-W, 0) */
        for (size_t q = 0; q < cells; ++q) {
            c->hidden[1][q] = t->w[q] > 0 ? t->w[q] : 0.0f;
            c->hidden[0][q] = t->w[q] < 0 ? -t->w[q] : 0.0f;
        }
        break;
    case RPU_DEVICE_TRANSFER: /* §5.8 (the buffered family too: buffers, choppers kept) */
    case RPU_DEVICE_BUFFERED_TRANSFER:
    case RPU_DEVICE_CHOPPED_TRANSFER:
    case RPU_DEVICE_DYNAMIC_TRANSFER:
        for (int k = 0; k < n; ++k)
            c->current_slice_indices[k] = 0;
        for (int k = 0; k < n - 1; ++k)
            memset(c->hidden[k], 0, cells * sizeof(float));
        if (!c->fully_hidden)
            for (size_t q = 0; q < cells; ++q)
                c->hidden[n - 1][q] = t->w[q] / c->gamma[n - 1];
        break;
    case RPU_DEVICE_MIXED_PRECISION: /* §9.5: chi and the counters zeroed */
        rpu_mixed_set_weights(t);
        break;
    default:
        break;
    }
    /* each sub-device's own set rule (bounds, write noise; a unit cell's rule, §1.3: the
     * lowest level wins) */
    if (c->fully_hidden && c->cell[n - 1]) memcpy(c->hidden[n - 1], t->w, cells * sizeof(float));
    for (int k = 0; k < n; ++k)
        if (c->cell[k])
            rpu_compound_set_weights(c->cell[k]);
        else
            t->pnext += rpu_device_apply_bounds(&c->sub[k], c->hidden[k], &t->pstream, t->pnext);
    reduce(t);
}

rpu_status rpu_tile_set_hidden_update_index(rpu_tile *t, int index) {
    if (!t) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_set_hidden_update_index: NULL tile");
    rpu_compound *c = t->cmp;
    if (!c || (c->type != RPU_DEVICE_VECTOR && c->type != RPU_DEVICE_REFERENCE))
        return RPU_OK; /* aihwkit: a no-op for other devices */
    if (index < 0 || index >= c->n)
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_tile_set_hidden_update_index: index %d outside the %d sub-devices",
                        index, c->n);
    c->current_device_idx = (uint64_t)index;
    return RPU_OK;
}

int rpu_tile_get_hidden_update_index(const rpu_tile *t) {
    return t && t->cmp ? (int)t->cmp->current_device_idx : 0;
}

/* ---------------------------------------------------------------- events */

/* A period in vector updates (spec §5.5): units_in_mbatch: ceilf(te * m) (single
 * precision), else round half away from zero; 0 = never. */
static uint64_t period_of(float te, bool units, int m) {
    const float p = units ? ceilf(te * (float)m) : roundf(te);
    return p >= 1.0f ? (uint64_t)p : 0;
}

/* The period of transfers from device k: period_of, or the automatic period of a chopped
 * compound (transfer_every < 0, §7.5) for device 0 and, with self transfers, device 1. */
static uint64_t transfer_period(const rpu_compound *c, const rpu_compound_params *cp, int k,
                                int m) {
    if (c->te_auto > 0 && (k == 0 || !cp->no_self_transfer)) return c->te_auto;
    return period_of(c->te[k], cp->units_in_mbatch, m);
}

/* The vector index (exclusive) after which the next event of this call of n vectors happens,
 * or n; m is the call's size for the periods (m = n but for a unit cell inside a compound). */
static int next_event(const rpu_tile *t, int v, int n, int m) {
    const rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const uint64_t u = c->current_update_idx;
    int64_t best = n;
    uint64_t E[RPU_MAX_UNIT_CELL_DEVICES];
    int ne = 0;
    if (rpu_device_type_is_transfer(c->type))
        for (int k = 0; k < c->n; ++k)
            E[ne++] = transfer_period(c, cp, k, m);
    else if (c->type == RPU_DEVICE_ONE_SIDED && cp->refresh_every > 0)
        E[ne++] = (uint64_t)cp->refresh_every * (cp->units_in_mbatch ? (uint64_t)m : 1u);
    for (int q = 0; q < ne; ++q) {
        if (E[q] == 0) continue;
        const uint64_t next = (u / E[q] + 1) * E[q];
        const int64_t e = (int64_t)v + (int64_t)(next - u);
        if (e < best) best = e;
    }
    return (int)best;
}

/* One chunk of a transfer (spec §5.5 readAndUpdate): cnt reads from source k starting at
 * start, each written to device to. */
static rpu_status transfer_chunk(rpu_tile *t, int k, int to, int start, int cnt, float lr_t) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    c->write_m = cnt; /* a unit cell's call of the chunk's writes */
    if (c->type != RPU_DEVICE_TRANSFER)
        return rpu_compound_buffered_chunk(t, k, to, start, cnt, lr_t); /* §6-§8 */
    if (lr_t == 0 || to == k) return RPU_OK;
    const int R = c->rows, C = c->cols;
    float *v = c->buf, *y = c->buf + (R + C);
    for (int q = 0; q < cnt; ++q) {
        const int col = start + q;
        memset(v, 0, sizeof(float) * (size_t)c->t_in);
        v[col] = 1.0f;
        RPU_CHECK(read_vec(t, k, c->read_dir, v, y));
        for (int i = 0; i < c->t_out; ++i)
            y[i] = -y[i]; /* output scale -1 (TTv1) */
        /* a reset draw for every read; resets only with columns */
        const float u = uniform_draw(c);
        if (u < cp->with_reset_prob && cp->transfer_columns) {
            if (c->cell[k])
                rpu_compound_reset_columns(c->cell[k], start, cnt, 1.0f);
            else
                c->cnext += rpu_device_reset_columns(&c->sub[k], c->hidden[k], start, cnt, 1.0f,
                                                     &c->cstream, c->cnext);
        }
        if (cp->transfer_columns)
            RPU_CHECK(write_vector(t, &cp->transfer_update, to, v, y, lr_t));
        else
            RPU_CHECK(write_vector(t, &cp->transfer_update, to, y, v, lr_t));
    }
    return RPU_OK;
}

/* A transfer from device k to device to (spec §5.5). */
static rpu_status transfer(rpu_tile *t, int k, int to, float lr) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const int in = c->t_in, r = c->n_reads;
    int s = (int)c->current_slice_indices[k];
    if (cp->random_selection) {
        int q = (int)floorf(uniform_draw(c) * (float)in);
        s = q < 0 ? 0 : (q > in - 1 ? in - 1 : q);
    }
    const float lr_t = c->tlr[k] * (cp->scale_transfer_lr ? lr : 1.0f);
    if (in - s < r) {
        RPU_CHECK(transfer_chunk(t, k, to, s, in - s, lr_t));
        RPU_CHECK(transfer_chunk(t, k, to, 0, r - (in - s), lr_t));
    } else {
        RPU_CHECK(transfer_chunk(t, k, to, s, r, lr_t));
    }
    c->current_slice_indices[k] = (uint64_t)((s + r) % in);
    return RPU_OK;
}

/* Reset of one cell of device k (spec §4.4): bias + reset_std xi, clipped. */
static void reset_cell(rpu_compound *c, int k, size_t q) {
    rpu_device_state *d = &c->sub[k];
    const float b = d->reset_bias ? d->reset_bias[q] : d->par.reset;
    float w = b;
    if (d->par.reset_std > 0) w += d->par.reset_std * normal_draw(c);
    w = w > d->max_bound[q] ? d->max_bound[q] : w;
    w = w < d->min_bound[q] ? d->min_bound[q] : w;
    c->hidden[k][q] = w;
}

/* OneSided refresh (spec §4.4): returns the number of refreshed cells. */
static rpu_status refresh(rpu_tile *t, long *hits_out) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const int R = c->rows, C = c->cols;
    const float a = fabsf(c->sub[1].par.w_max), b = fabsf(c->sub[0].par.w_max);
    const float up = cp->refresh_upper_thres, lo = cp->refresh_lower_thres;
    float *v = c->buf, *p = v + C, *qv = p + R, *vp = qv + R;
    float *vq = vp + R; /* buf has 8 (R + C) floats; write_vector uses those from 6 (R + C) */
    long hits = 0;
    uint8_t *hit = (uint8_t *)(vq + R);
    for (int j = 0; j < C; ++j) {
        memset(v, 0, sizeof(float) * (size_t)C);
        v[j] = 1.0f;
        RPU_CHECK(read_vec(t, 1, DIR_FWD, v, p));  /* g+ */
        RPU_CHECK(read_vec(t, 0, DIR_FWD, v, qv)); /* g- */
        int any_p = 0, any_q = 0, nh = 0;
        for (int i = 0; i < R; ++i) {
            vp[i] = vq[i] = 0;
            const bool h = p[i] > qv[i] ? (p[i] / a > up && qv[i] / b > lo)
                                        : (p[i] / a > lo && qv[i] / b > up);
            hit[i] = h;
            if (!h) continue;
            ++nh;
            if (p[i] > qv[i]) {
                vp[i] = p[i] - qv[i];
                any_p = 1;
            } else {
                vq[i] = qv[i] - p[i];
                any_q = 1;
            }
        }
        if (nh == 0) continue;
        hits += nh;
        for (int i = 0; i < R; ++i)
            if (hit[i]) reset_cell(c, 1, (size_t)i * C + j);
        for (int i = 0; i < R; ++i)
            if (hit[i]) reset_cell(c, 0, (size_t)i * C + j);
        if (any_p) RPU_CHECK(write_vector(t, &cp->refresh_update, 1, v, vp, -1.0f));
        if (any_q) RPU_CHECK(write_vector(t, &cp->refresh_update, 0, v, vq, -1.0f));
    }
    *hits_out = hits;
    return RPU_OK;
}

/* The events due at the current vector counter (after a vector of a call of m). */
static rpu_status run_events(rpu_tile *t, float lr, int m) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const uint64_t u = c->current_update_idx;
    if (rpu_device_type_is_transfer(c->type)) {
        for (int k = 0; k < c->n; ++k) {
            const uint64_t E = transfer_period(c, cp, k, m);
            if (E > 0 && u % E == 0) RPU_CHECK(transfer(t, k, k + 1 < c->n ? k + 1 : c->n - 1, lr));
        }
    } else if (c->type == RPU_DEVICE_ONE_SIDED && cp->refresh_every > 0) {
        const uint64_t E = (uint64_t)cp->refresh_every * (cp->units_in_mbatch ? (uint64_t)m : 1u);
        if (u % E == 0) {
            long hits = 0;
            RPU_CHECK(refresh(t, &hits));
            c->refresh_count += (uint64_t)hits;
        }
    }
    return RPU_OK;
}

/* ---------------------------------------------------------------- update */

/* What a plan pass moves and then undoes: the counters, the compound stream's position,
 * the read pointers and the choppers; save: into c->ev_save, else back from it. (The
 * auto-scale values and the pulse-count lr are not undone: the replay does not recompute
 * them, see chopped_chunks.) */
static void chopped_keep(rpu_compound *c, bool save) {
    const size_t in = (size_t)c->t_in * sizeof(uint64_t), out = (size_t)c->t_out * sizeof(uint64_t);
    const struct {
        void *live;
        size_t bytes;
    } f[] = {{&c->transfer_counter, sizeof c->transfer_counter},
             {&c->cnext, sizeof c->cnext},
             {&c->current_update_idx, sizeof c->current_update_idx},
             {c->current_slice_indices, sizeof c->current_slice_indices},
             {c->in_chopper, in},
             {c->in_switched, in},
             {c->out_chopper, out}};
    unsigned char *kept = (unsigned char *)c->ev_save;
    for (size_t q = 0; q < sizeof f / sizeof f[0]; ++q) {
        if (save)
            memcpy(kept, f[q].live, f[q].bytes);
        else
            memcpy(f[q].live, kept, f[q].bytes);
        kept += f[q].bytes;
    }
}

/* chopped_transfer / dynamic_transfer (transfer_columns): the n vectors of a call in chunks
 * of K (rpu_update_chunk). A transfer reads a column of A after every vector; the reads
 * write only C, and the choppers and the learning rate of every vector depend on no
 * weight. So for each chunk: (1) a plan pass runs the vectors' bookkeeping and the events
 * with the reads recorded, not made (compound_buffered.c), and is undone; (2) one pass of
 * the fast device's engine over the chunk's chopped vectors, each with its own learning
 * rate, keeps the columns read after each vector (rpu_update_pulses_snap); (3) the replay
 * runs the events again, each read seeing its snapshot and its vector's pulse-count lr
 * (the auto-scale values stay where the plan left them). Without merged
 * pulses this is the vector-by-vector update float for float (test_compound); with them, A's
 * other columns take the chunk's pulses as a single device's update does. */
static rpu_status chopped_chunks(rpu_tile *t, const float *x, const float *d, int n, float lr,
                                 uint64_t base, uint64_t stride, const rpu_pulse_target *tg) {
    rpu_compound *c = t->cmp;
    const rpu_compound_params *cp = &t->cfg.compound;
    const int R = c->rows, C = c->cols;
    const int K = rpu_update_chunk(R, C);
    for (int v0 = 0; v0 < n; v0 += K) {
        const int kn = n - v0 < K ? n - v0 : K;
        chopped_keep(c, true);
        c->plan = 1;
        c->n_ev = 0;
        rpu_status st = RPU_OK;
        for (int k = 0; k < kn && st == RPU_OK; ++k) {
            const float *xc, *dc;
            rpu_compound_chopped_vector(t, x + (size_t)(v0 + k) * C, d + (size_t)(v0 + k) * R, n,
                                        lr, &c->ev_lr[k], &xc, &dc);
            memcpy(c->ev_x + (size_t)k * C, xc, sizeof(float) * (size_t)C);
            memcpy(c->ev_d + (size_t)k * R, dc, sizeof(float) * (size_t)R);
            c->plan_vec = k;
            c->current_update_idx++;
            st = run_events(t, lr, n);
        }
        c->plan = 0;
        chopped_keep(c, false);
        RPU_CHECK(st);
        int ne = 0; /* the read columns, once each */
        for (int e = 0; e < c->n_ev; ++e) {
            int seen = 0;
            for (int q = 0; q < ne && !seen; ++q)
                seen = c->ev_excl[q] == c->ev_col[e];
            if (!seen) c->ev_excl[ne++] = c->ev_col[e];
        }
        const rpu_read_snap snap = {.n = c->n_ev,
                                    .vec = c->ev_vec,
                                    .col = c->ev_col,
                                    .val = c->ev_snap,
                                    .n_excl = ne,
                                    .excl = c->ev_excl};
        RPU_CHECK(rpu_update_pulses_snap(t, &t->cfg.update, c->granularity,
                                         base + (uint64_t)v0 * stride, c->ev_x, c->ev_d, kn,
                                         c->ev_lr, tg, &snap));
        c->replay = 1;
        c->ev_next = 0;
        for (int k = 0; k < kn && st == RPU_OK; ++k) {
            c->lr_cur = c->ev_lr[k]; /* what rpu_compound_chopped_vector set for vector k */
            c->current_update_idx++;
            st = run_events(t, lr, n);
        }
        if (st == RPU_OK) st = rpu_compound_flush_writes(t, &cp->transfer_update);
        c->n_wr = 0;
        c->replay = 0;
        RPU_CHECK(st);
        if (c->ev_next != c->n_ev)
            return RPU_FAIL(RPU_ERR_INTERNAL, "chopped update: %d of %d planned reads made",
                            c->ev_next, c->n_ev);
    }
    return RPU_OK;
}

/* One update call of n vectors, d in engine units (divided by the mapping scales), lr > 0;
 * m: the call's size for the periods (n, but for a unit cell inside a compound). */
static rpu_status compound_update(rpu_tile *t, const float *x, const float *d, int n, int m,
                                  float lr) {
    rpu_compound *c = t->cmp;
    const rpu_config *cfg = &t->cfg;
    const rpu_compound_params *cp = &cfg->compound;
    if (n <= 0 || lr == 0) return RPU_OK;
    const int R = c->rows, C = c->cols;
    if ((size_t)n > c->mask_cap) {
        uint32_t *m = (uint32_t *)realloc(c->mask, sizeof(uint32_t) * (size_t)n);
        if (!m) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for an update of %d vectors", n);
        c->mask = m;
        c->mask_cap = (size_t)n;
    }
    /* targets and the pulse-count learning rate (§1.1 table) */
    rpu_pulse_target tg[RPU_MAX_UNIT_CELL_DEVICES];
    int ntg = c->n;
    float lr_p = lr;
    rpu_update_policy policy = RPU_POLICY_ALL;
    switch (c->type) {
    case RPU_DEVICE_VECTOR:
    case RPU_DEVICE_REFERENCE:
        for (int k = 0; k < c->n; ++k)
            tg[k] = (rpu_pulse_target){.dev = &c->sub[k], .w = c->hidden[k], .sign_mode = 0};
        policy = cp->update_policy;
        break;
    case RPU_DEVICE_ONE_SIDED: /* §4.3: d-sign x x-sign > 0 -> up on g- (0), < 0 -> up on g+ */
        tg[0] = (rpu_pulse_target){.dev = &c->sub[0], .w = c->hidden[0], .sign_mode = 1};
        tg[1] = (rpu_pulse_target){.dev = &c->sub[1], .w = c->hidden[1], .sign_mode = -1};
        break;
    case RPU_DEVICE_TRANSFER: /* §5.5: the fast device only, with the fast learning rate */
    case RPU_DEVICE_BUFFERED_TRANSFER:
    case RPU_DEVICE_CHOPPED_TRANSFER: /* (chopped: per vector below, §7.4) */
    case RPU_DEVICE_DYNAMIC_TRANSFER:
        ntg = 1;
        tg[0] = (rpu_pulse_target){.dev = &c->sub[0], .w = c->hidden[0], .sign_mode = 0};
        if (cp->fast_lr > 0) lr_p = cp->scale_fast_lr ? cp->fast_lr * lr : cp->fast_lr;
        break;
    default:
        return RPU_FAIL(RPU_ERR_INTERNAL, "compound update: device type %d", (int)c->type);
    }
    /* per vector: which targets (init_cycle of the policies, §2.3) */
    const uint32_t all = ntg >= 32 ? ~0u : ((1u << ntg) - 1u);
    for (int v = 0; v < n; ++v) {
        switch (policy) {
        case RPU_POLICY_ALL:
            c->mask[v] = all;
            break;
        case RPU_POLICY_SINGLE_FIXED:
            c->mask[v] = 1u << c->current_device_idx;
            break;
        case RPU_POLICY_SINGLE_SEQUENTIAL:
            c->current_device_idx = (c->current_device_idx + 1) % (uint64_t)c->n;
            c->mask[v] = 1u << c->current_device_idx;
            break;
        case RPU_POLICY_SINGLE_RANDOM: {
            int k = (int)floorf(uniform_draw(c) * (float)c->n);
            k = k < 0 ? 0 : (k >= c->n ? c->n - 1 : k);
            c->current_device_idx = (uint64_t)k;
            c->mask[v] = 1u << k;
            break;
        }
        }
    }
    const rpu_update_layout L = rpu_update_layout_for(R, C);
    const uint64_t stride = (uint64_t)ntg * L.total;
    const uint64_t base = t->unext;
    t->unext += (uint64_t)n * stride;
    const bool chopped =
        c->type == RPU_DEVICE_CHOPPED_TRANSFER || c->type == RPU_DEVICE_DYNAMIC_TRANSFER;
    if (chopped && c->chunked && cp->transfer_columns && !c->cell[0]) {
        RPU_CHECK(chopped_chunks(t, x, d, n, lr, base, stride, tg));
        reduce(t);
        return RPU_OK;
    }
    /* targets whose pulses merge take them target by target through the single-device
     * engine; otherwise one pass makes the pulse trains once for all (the same floats) */
    bool merges = !t->update_per_pulse && !c->cell[0];
    for (int q = 0; q < ntg && merges; ++q)
        merges = rpu_device_merges_pulses(tg[q].dev);
    const float g = c->pulse_granularity > 0 ? c->pulse_granularity : c->granularity;
    const bool apart = ntg == 1 || merges || c->targets_apart;
    for (int v = 0; v < n;) {
        int e = next_event(t, v, n, m);
        const float *xv = x + (size_t)v * C, *dv = d + (size_t)v * R;
        float lr_v = lr_p;
        if (chopped) { /* vector by vector: auto-scale lr and choppers (compound_buffered.c) */
            e = v + 1;
            rpu_compound_chopped_vector(t, xv, dv, m, lr, &lr_v, &xv, &dv);
        }
        if (c->cell[0]) /* the fast device is a unit cell: its own update (compound_cell.c) */
            RPU_CHECK(rpu_compound_cell_update(c->cell[0], xv, dv, e - v, m, lr_v));
        else if (policy == RPU_POLICY_ALL && apart) /* each as a single device */
            for (int q = 0; q < ntg; ++q)
                RPU_CHECK(rpu_update_pulses_target(t, &cfg->update, g, base + (uint64_t)v * stride,
                                                   stride, q, xv, dv, e - v, lr_v, &tg[q]));
        else if (policy == RPU_POLICY_SINGLE_FIXED && merges) /* one target the call long */
            RPU_CHECK(rpu_update_pulses_target(t, &cfg->update, g, base + (uint64_t)v * stride,
                                               stride, (int)c->current_device_idx, xv, dv, e - v,
                                               lr_v, &tg[c->current_device_idx]));
        else
            RPU_CHECK(rpu_update_pulses(t, &cfg->update, g, &t->ustream,
                                        base + (uint64_t)v * stride, stride, xv, dv, e - v, lr_v,
                                        tg, ntg, c->mask + v));
        c->current_update_idx += (uint64_t)(e - v);
        RPU_CHECK(run_events(t, lr, m));
        v = e;
    }
    reduce(t);
    return RPU_OK;
}

rpu_status rpu_compound_tile_update(rpu_tile *t, const float *x, const float *d, int n, float lr) {
    if (!(lr >= 0) || !isfinite(lr))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_update: learning rate %g must be >= 0", (double)lr);
    if (n == 0 || lr == 0) return RPU_OK;
    const float *du = NULL;
    float lr_t = 0;
    RPU_CHECK(rpu_update_scaled_gradient(t, d, t->scales, n, t->p.out_size, 0, t->p.out_size, lr,
                                         &du, &lr_t));
    rpu_status st = t->cmp->type == RPU_DEVICE_MIXED_PRECISION
                        ? rpu_mixed_update(t, x, du, n, lr_t)
                        : compound_update(t, x, du, n, n, lr_t);
    if (t->cmp->type == RPU_DEVICE_MIXED_PRECISION) reduce(t); /* a unit cell's W */
    t->abs_w_valid = 0;
    return st;
}

rpu_status rpu_compound_cell_update(rpu_tile *cell, const float *x, const float *d, int n, int m,
                                    float lr) {
    rpu_compound *c = cell->cmp;
    if (n <= 0 || lr == 0) return RPU_OK;
    if (lr < 0) { /* a write with flipped signs (one vector) */
        if (n != 1)
            return RPU_FAIL(RPU_ERR_INTERNAL, "unit cell update: negative lr with %d vectors", n);
        float *neg = c->buf + 7 * (size_t)(c->rows + c->cols); /* apart from refresh, writes */
        for (int i = 0; i < c->rows; ++i)
            neg[i] = -d[i];
        d = neg;
        lr = -lr;
    }
    const rpu_status st = compound_update(cell, x, d, n, m, lr);
    cell->abs_w_valid = 0;
    return st;
}

/* ---------------------------------------------------------------- post-update, reset, drift */

/* The sub-devices the whole-array operations act on: all, except reset of a transfer
 * compound (the fast device only, §1.5). */
int rpu_compound_post_update(rpu_tile *t) {
    rpu_compound *c = t->cmp;
    int diff = 0, life = 0, ran = 0;
    for (int k = 0; k < c->n; ++k) {
        if (c->cell[k]) { /* a unit cell: its own post-update step (its own stream) */
            ran |= rpu_compound_post_update(c->cell[k]);
            continue;
        }
        diff |= c->sub[k].par.diffusion > 0;
        life |= c->sub[k].par.lifetime > 0;
    }
    if (diff)
        for (int k = 0; k < c->n; ++k)
            if (!c->cell[k])
                t->pnext += rpu_device_diffuse(&c->sub[k], c->hidden[k], &t->pstream, t->pnext);
    if (life)
        for (int k = 0; k < c->n; ++k)
            if (!c->cell[k])
                t->pnext += rpu_device_decay(&c->sub[k], c->hidden[k], 1.0f, &t->pstream, t->pnext);
    ran |= diff || life;
    if (ran) reduce(t);
    return ran;
}

void rpu_compound_reset_columns(rpu_tile *t, int start, int count, float prob) {
    rpu_compound *c = t->cmp;
    const int last = rpu_device_type_is_transfer(c->type) ? 1 : c->n;
    for (int k = 0; k < last; ++k)
        if (c->cell[k])
            rpu_compound_reset_columns(c->cell[k], start, count, prob);
        else
            t->pnext += rpu_device_reset_columns(&c->sub[k], c->hidden[k], start, count, prob,
                                                 &t->pstream, t->pnext);
    reduce(t);
}

void rpu_compound_drift(rpu_tile *t, double dt) {
    rpu_compound *c = t->cmp;
    for (int k = 0; k < c->n; ++k)
        if (c->cell[k])
            rpu_compound_drift(c->cell[k], dt);
        else
            t->pnext += rpu_device_drift(&c->sub[k], c->hidden[k], dt, &t->pstream, t->pnext);
    reduce(t);
}

/* ---------------------------------------------------------------- arrays and state */

int rpu_compound_n_arrays(const rpu_compound *c) {
    return c->n_arrays;
}

const rpu_device_array *rpu_compound_array(const rpu_compound *c, int k) {
    return &c->arrays[k];
}

double rpu_compound_bytes_per_cell(const rpu_compound *c) {
    double b = 0;
    for (int k = 0; k < c->n; ++k)
        b += c->cell[k] ? sizeof(float) + rpu_compound_bytes_per_cell(c->cell[k]->cmp) /* W_k */
                        : rpu_device_bytes_per_cell(&c->sub[k]) +
                              ((c->fully_hidden && k == c->n - 1) ? 0.0 : (double)sizeof(float));
    if (c->chi) b += sizeof(float); /* mixed_precision's accumulator */
    const int nb = c->type == RPU_DEVICE_BUFFERED_TRANSFER  ? c->n - 1
                   : c->type == RPU_DEVICE_CHOPPED_TRANSFER ? 1
                   : c->type == RPU_DEVICE_DYNAMIC_TRANSFER ? 3
                                                            : 0;
    return b + (double)nb * sizeof(float); /* buffers */
}

float rpu_compound_granularity(const rpu_compound *c) {
    return c->granularity;
}

int rpu_compound_state_items(rpu_tile *t, rpu_state_item *items, int n, int max) {
    rpu_compound *c = t->cmp;
    if (c->type == RPU_DEVICE_MIXED_PRECISION)
        return cells_state_items(t, items, rpu_mixed_state_items(t, items, n, max), max);
    n = rpu_state_item_add(items, n, max, "current_device_idx", RPU_STATE_U64, 1, 1, 1,
                           &c->current_device_idx);
    n = rpu_state_item_add(items, n, max, "current_update_idx", RPU_STATE_U64, 1, 1, 1,
                           &c->current_update_idx);
    n = rpu_state_item_add(items, n, max, "current_slice_indices", RPU_STATE_U64, (size_t)c->n,
                           c->n, 1, c->current_slice_indices);
    n = rpu_state_item_add(items, n, max, "refresh_count", RPU_STATE_U64, 1, 1, 1,
                           &c->refresh_count);
    n = rpu_state_item_add(items, n, max, "compound_next_block", RPU_STATE_U64, 1, 1, 1, &c->cnext);
    n = rpu_state_item_add(items, n, max, "transfer_next_block", RPU_STATE_U64, 1, 1, 1, &c->xnext);
    n = rpu_state_item_add(items, n, max, "transfer_read_calls", RPU_STATE_U64, 1, 1, 1,
                           &c->xcalls);
    static const char *const drift_started[] = {
        "drift_started_0", "drift_started_1", "drift_started_2", "drift_started_3",
        "drift_started_4", "drift_started_5", "drift_started_6", "drift_started_7"};
    static const char *const drift_t[] = {
        "drift_current_t_0", "drift_current_t_1", "drift_current_t_2", "drift_current_t_3",
        "drift_current_t_4", "drift_current_t_5", "drift_current_t_6", "drift_current_t_7"};
    _Static_assert(RPU_MAX_UNIT_CELL_DEVICES == 8, "drift item names");
    for (int k = 0; k < c->n; ++k) {
        if (!c->sub[k].drift_nu) continue;
        c->drift_started[k] = (uint64_t)c->sub[k].drift_started;
        n = rpu_state_item_add(items, n, max, drift_started[k], RPU_STATE_U64, 1, 1, 1,
                               &c->drift_started[k]);
        n = rpu_state_item_add(items, n, max, drift_t[k], RPU_STATE_F64, 1, 1, 1,
                               &c->sub[k].drift_current_t);
    }
    n = cells_state_items(t, items, n, max);
    n = rpu_compound_buffered_state_items(t, items, n, max);
    const char *rname =
        rpu_device_type_is_transfer(c->type) ? "transfer_forward" : "refresh_forward";
    static const char *const tnames[2][3] = {
        {"transfer_forward.out_noise_values", "transfer_forward.v_offset",
         "transfer_forward.out_nonlinearity"},
        {"refresh_forward.out_noise_values", "refresh_forward.v_offset",
         "refresh_forward.out_nonlinearity"}};
    const int which = strcmp(rname, "transfer_forward") == 0 ? 0 : 1;
    const int len = c->read_dir == DIR_FWD ? c->rows : c->cols;
    float *arr[3] = {c->read_state.out_noise_values, c->read_state.v_offset, c->read_state.nl};
    for (int k = 0; k < 3; ++k)
        if (arr[k])
            n = rpu_state_item_add(items, n, max, tnames[which][k], RPU_STATE_F32, (size_t)len, len,
                                   1, arr[k]);
    return n;
}

void rpu_compound_state_loaded(rpu_tile *t) {
    rpu_compound *c = t->cmp;
    for (int k = 0; k < c->n; ++k)
        if (c->cell[k]) { /* its visible weight from its restored arrays */
            rpu_compound_state_loaded(c->cell[k]);
            reduce(c->cell[k]);
        } else
            c->sub[k].drift_started = c->drift_started[k] != 0;
}
