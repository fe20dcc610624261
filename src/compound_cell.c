/* Unit cells inside a compound (compound-devices spec §1.2 "Compounds nest", §1.3 rule 2):
 * a transfer-family or mixed_precision compound whose sub-device k is a vector, reference
 * or one_sided cell (config: device.unit_cell_devices.k.type = reference, its own keys
 * device.unit_cell_devices.k.<cell key>, its devices
 * device.unit_cell_devices.k.unit_cell_devices.m.<device key>; rpu_config.cells[k]).
 *
 * Such a sub-device is a compound tile of its own (cell[k], built by rpu_tile_create from a
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
static rpu_status rekey_error(rpu_status code, int entry) {
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

rpu_status rpu_cell_create(rpu_tile *t, int k, int entry, const rpu_update_params *up,
                           uint64_t cseed) {
    rpu_compound *c = t->cmp;
    const rpu_config *cfg = &t->cfg;
    rpu_config *cc = (rpu_config *)malloc(sizeof *cc);
    c->cell_names[k] = malloc(sizeof(*c->cell_names[k]) * RPU_CELL_MAX_ITEMS);
    if (!cc || !c->cell_names[k]) {
        free(cc);
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for unit cell %d of a compound", k);
    }
    /* the cell's config: its type, parameters and devices; the write parameters; no IO,
     * noise model or mapping of its own (it is never read by a forward pass) */
    (void)rpu_config_default(cc, RPU_KIND_SINGLE);
    cc->device.type = cfg->compound.unit_cell_devices[entry].type;
    cc->compound = cfg->cells[entry];
    cc->update = *up;
    cc->forward.is_perfect = true;
    cc->backward.is_perfect = true;
    cc->device.construction_seed = cell_word64(cseed, t, 4u * (uint64_t)k + 2u);
    rpu_tile_params p = t->p;
    p.seed = cell_word64(t->p.seed, t, 4u * (uint64_t)k);
    rpu_tile *cell = NULL;
    const rpu_status s = rpu_tile_create(&p, cc, &cell);
    free(cc);
    if (s != RPU_OK) return rekey_error(s, entry);
    c->cell[k] = cell;
    c->hidden[k] = cell->w;
    return RPU_OK;
}

void rpu_cell_free(rpu_compound *c) {
    for (int k = 0; k < RPU_MAX_UNIT_CELL_DEVICES; ++k) {
        rpu_tile_destroy(&c->cell[k]);
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

int rpu_cell_state_items(rpu_tile *t, int k, rpu_state_item *items, int n, int max) {
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
