/* Unit cells inside a compound (compound-devices spec §1.2 "Compounds nest", §1.3 rule 2):
 * a transfer-family or mixed_precision compound whose sub-device k is a vector, reference
 * or one_sided cell (config: device.unit_cell_devices.k.type = reference, its own keys
 * device.unit_cell_devices.k.<cell key>, its devices
 * device.unit_cell_devices.k.unit_cell_devices.m.<device key>; rpu_config.cells[k]).
 *
 * Such a sub-device is a compound tile of its own (cell[k], built here (cell_tile) from a
 * config whose device is the cell): its weights are the outer hidden array W_k, its visible
 * weight. Everything the outer compound does to W_k goes through the cell's own rules:
 * a write is one update call of the cell (its policy, sign routing, refresh), the set rule,
 * post-update, reset and drift are the cell's. Its seeds are drawn per k from the outer
 * tile's stream RPU_PURPOSE_CELL, so its draws are keyed by (seed, layer, tile, k) like
 * everything else and do not depend on the rank count. Its arrays appear in the outer list
 * with the outer index appended (max_bound_0_1, hidden_weights_1_0, ...; §1.3 rule 2), its
 * counters as state items "unit_cell_devices.k.<name>".
 *
 * The cell's update parameters are those of what writes to it: the outer main update for
 * the fast device of a transfer compound (whose pulse trains use the outer compound's mean
 * granularity, §1.2), the transfer writes (transfer_update) for the slow devices, the
 * mixed-precision transfer writes (the update parameters with UM and UBLM on) for the
 * analog device of mixed_precision. A call's m (the cell's refresh period with
 * units_in_mbatch) is the outer call's m for the fast device, and the number of writes of
 * the transfer chunk for a written device (spec §9.4: a OneSided cell refreshes once per
 * full transfer). */
#include "tile_impl.h"

#include "error_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two 32-bit words of stream (key, layer, tile, RPU_PURPOSE_CELL) from word pos on. */
static uint64_t cell_word64(uint64_t key, const rpu_tile *t, uint64_t pos) {
    rpu_rng r;
    rpu_rng_init(&r, key, rpu_stream_id(t->p.layer_id, t->p.tile_id, RPU_PURPOSE_CELL));
    rpu_rng_seek(&r, pos);
    const uint64_t hi = rpu_rng_u32(&r);
    return hi << 32 | rpu_rng_u32(&r);
}

/* The cell's error in the outer config's keys: "device.X" becomes
 * "device.unit_cell_devices.<entry>.X". */
rpu_status rpu_cell_rekey_error(rpu_status code, int entry) {
    char msg[1024], to[40];
    snprintf(to, sizeof to, "device.unit_cell_devices.%d.", entry);
    const char *m = rpu_error_message();
    size_t o = 0;
    while (*m && o + sizeof to < sizeof msg) {
        if (strncmp(m, "device.", 7) == 0) {
            o += (size_t)snprintf(msg + o, sizeof msg - o, "%s", to);
            m += 7;
        } else {
            msg[o++] = *m++;
        }
    }
    msg[o] = '\0';
    return rpu_error_set(code, msg, NULL);
}

/* A unit cell's tile holds what its compound uses of a tile (config, shape, weights, update
 * and post streams keyed as a tile's, the workspaces update.c and tile_io.c grow), without
 * the forward/backward IO and inference state, which a cell never uses. */
static void cell_tile_release(rpu_tile *cell) {
    if (!cell) return;
    rpu_tile_workspaces_free(cell);
    free(cell->w);
    free(cell->scales);
    free(cell);
}

rpu_status rpu_cell_alloc(rpu_tile *t, int k, int entry, const rpu_update_params *up,
                          uint64_t cseed, uint64_t *cell_cseed) {
    rpu_compound *c = t->cmp;
    const rpu_config *cfg = &t->cfg;
    rpu_tile *cell = (rpu_tile *)calloc(1, sizeof *cell);
    c->cell_names[k] = malloc(sizeof(*c->cell_names[k]) * RPU_CELL_MAX_ITEMS);
    const size_t cells = (size_t)c->rows * (size_t)c->cols;
    if (cell) {
        cell->w = (float *)calloc(cells + 1, sizeof(float));
        cell->scales = (float *)malloc(sizeof(float) * (size_t)c->rows);
    }
    if (!cell || !cell->w || !cell->scales || !c->cell_names[k]) {
        cell_tile_release(cell);
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for unit cell %d of a %d x %d compound", k,
                        c->rows, c->cols);
    }
    /* its config: the cell's type, parameters and devices; the write parameters; no IO,
     * noise model or mapping of its own (no forward pass reads it) */
    rpu_config *cc = &cell->cfg;
    (void)rpu_config_default(cc, RPU_KIND_SINGLE);
    cc->device.type = cfg->compound.unit_cell_devices[entry].type;
    cc->compound = cfg->cells[entry];
    cc->update = *up;
    cc->forward.is_perfect = true;
    cc->backward.is_perfect = true;
    cc->device.construction_seed = cell_word64(cseed, t, 4u * (uint64_t)k + 2u);
    cell->p = t->p;
    cell->p.seed = cell_word64(t->p.seed, t, 4u * (uint64_t)k);
    for (int i = 0; i < c->rows; ++i)
        cell->scales[i] = 1.0f;
    cell->wsel = cell->w;
    const rpu_tile_params *p = &cell->p;
    rpu_rng_init(&cell->ustream, p->seed,
                 rpu_stream_id(p->layer_id, p->tile_id, RPU_PURPOSE_UPDATE));
    rpu_rng_init(&cell->pstream, p->seed, rpu_stream_id(p->layer_id, p->tile_id, RPU_PURPOSE_POST));
    c->cell[k] = cell;
    c->hidden[k] = cell->w;
    *cell_cseed = cc->device.construction_seed;
    return RPU_OK;
}

void rpu_cell_release(rpu_compound *c) {
    for (int k = 0; k < RPU_MAX_UNIT_CELL_DEVICES; ++k) {
        cell_tile_release(c->cell[k]);
        c->cell[k] = NULL;
        free(c->cell_names[k]);
        c->cell_names[k] = NULL;
    }
}

float rpu_compound_sub_granularity(const rpu_compound *c, int k) {
    return c->cell[k] ? c->cell[k]->cmp->granularity : c->sub[k].granularity;
}

float rpu_compound_sub_states(const rpu_compound *c, int k) {
    const rpu_compound *in = c->cell[k] ? c->cell[k]->cmp : NULL;
    const rpu_device_state *d = in ? in->sub : &c->sub[k];
    const int n = in ? in->n : 1;
    float s = 0;
    for (int m = 0; m < n; ++m)
        s += (d[m].par.w_max - d[m].par.w_min) / d[m].granularity;
    return s / (float)n;
}
