/* Private: the state of a compound device (compound-devices spec) and its interface to the
 * tile. A compound tile (device.type vector, reference, one_sided, the transfer family,
 * mixed_precision) keeps its
 * visible weight W in the tile's weights (what forward, backward and get_weights use) and
 * here: one device state and one hidden array W_k per sub-device, the compound's weights
 * gamma, its counters, and the streams and IO values of its transfer or refresh reads.
 * tile.c and update.c call the functions below; compound.c calls down into device.c,
 * update.c (rpu_update_pulses) and tile_io.c (rpu_tile_io_read). See compound.c for how a
 * new compound plugs in. Included by tile_impl.h (after rpu_io_state), not on its own. */
#ifndef RPUSIM_COMPOUND_IMPL_H
#define RPUSIM_COMPOUND_IMPL_H

#include "device_impl.h"
#include "error_impl.h"

#include <stdint.h>

/* Named arrays of a compound: per sub-device its arrays (suffix _k) and hidden_weights_k. */
#define RPU_COMPOUND_MAX_ARRAYS (RPU_MAX_UNIT_CELL_DEVICES * (RPU_DEVICE_MAX_ARRAYS + 2))
/* State items of a unit cell inside a compound, and their names' room (compound_cell.c). */
#define RPU_CELL_MAX_ITEMS 48
#define RPU_CELL_ITEM_NAME_MAX 80
#define RPU_COMPOUND_NAME_MAX 40

typedef struct rpu_compound {
    rpu_device_type type;
    int n;          /* sub-devices (reference and one_sided: always 2) */
    int rows, cols; /* the tile's out x in */
    rpu_device_state sub[RPU_MAX_UNIT_CELL_DEVICES];
    float *hidden[RPU_MAX_UNIT_CELL_DEVICES]; /* W_k [rows, cols]; a fully hidden transfer
                                                 compound's last one is the tile's weights */
    float *block;                             /* the owned hidden arrays */
    float gamma[RPU_MAX_UNIT_CELL_DEVICES];   /* W = sum_k gamma_k W_k (unless fully hidden) */
    int fully_hidden;                         /* transfer: gamma == 0 and gamma_{n-1} == 1 */
    float granularity;                        /* of the main pulse trains: mean over all */
    float pulse_granularity; /* > 0: the main pulse trains' instead (a unit cell that is the
                                fast device of a transfer compound: the outer mean, §1.2) */
    /* sub-device k is a unit cell (vector, reference, one_sided; compound spec §1.2
     * "Compounds nest"): cell[k] is its own compound tile of the same shape, whose weights
     * are hidden[k] (its visible weight); sub[k] is then unused (zero). NULL: a single device. */
    struct rpu_tile *cell[RPU_MAX_UNIT_CELL_DEVICES];
    char (*cell_names[RPU_MAX_UNIT_CELL_DEVICES])[RPU_CELL_ITEM_NAME_MAX]; /* its items' names */
    int write_m;     /* the m_batch_info of writes to a unit cell (its refresh period), default 1 */
    /* rpu_compound_cell_update, set by compound.c when a sub-device is a unit cell */
    rpu_status (*cell_update)(struct rpu_tile *cell, const float *x, const float *d, int n, int m,
                              float lr);
    int arrays_full; /* build: more named arrays than RPU_COMPOUND_MAX_ARRAYS */
    /* transfer (§5.2): periods, learning rates per source device, reads per transfer, the
     * read direction's in/out sizes */
    float te[RPU_MAX_UNIT_CELL_DEVICES];
    float tlr[RPU_MAX_UNIT_CELL_DEVICES];
    int n_reads, t_in, t_out, read_dir;
    /* transfer or refresh reads: IO parameters (transfer: NM and BM forced none) and their
     * construction values */
    rpu_io_params read_io;
    rpu_io_state read_state;
    /* counters (checkpointed, compound spec §1.6) */
    uint64_t current_device_idx, current_update_idx;
    uint64_t current_slice_indices[RPU_MAX_UNIT_CELL_DEVICES];
    uint64_t refresh_count;
    uint64_t cnext;  /* next block of the compound stream (choices, selections, resets) */
    uint64_t xnext;  /* next block of the transfer stream (reads and writes) */
    uint64_t xcalls; /* transfer/refresh reads so far */
    uint64_t drift_started[RPU_MAX_UNIT_CELL_DEVICES]; /* mirrors of sub[k].drift_started */
    rpu_rng cstream, xstream;
    /* workspace */
    uint32_t *mask; /* [mask_cap] per vector: the sub-devices it updates */
    size_t mask_cap;
    float *buf; /* [8 * (rows + cols)] read vectors and results */
    /* buffered transfer family (compound_buffered.c, spec §6-§8): buffers (buffered: H_k
     * per source device; chopped: H; dynamic: H, running mean R, past mean P), choppers
     * and switch flags (0/1 per read position), auto-scale maxima, the last pulse-count lr,
     * completed sweeps, the automatic period (> 0: transfer_every < 0 of chopped/dynamic) */
    float *bblock;
    float *hbuf[RPU_MAX_UNIT_CELL_DEVICES];
    float *running_mean, *past_mean;
    uint64_t *in_chopper, *out_chopper, *in_switched; /* [t_in], [t_out], [t_in] */
    float m_x, m_d, lr_cur, count_lr_scale;
    uint64_t transfer_counter;
    uint64_t te_auto;
    float *bws; /* workspace: chopped x [cols], d [rows], read vector, read, write */
    /* chopped / dynamic updates a chunk of vectors at a time (compound.c, chopped_chunks):
     * a plan pass (plan = 1) records the reads' columns (ev_vec, ev_col) and moves only the
     * choppers; the fast device's pass takes the read columns' snapshots (ev_snap
     * [ev_cap][rows]); the replay (replay = 1) reads A's column from snapshot ev_next */
    int chunked;       /* 1 (default): so; 0: vector by vector (the reference, tests) */
    int targets_apart; /* tests: policy-all targets one by one also where nothing merges */
    int plan, replay, plan_vec, n_ev, ev_next, ev_cap;
    int *ev_vec, *ev_col, *ev_excl;
    float *ev_snap, *ev_x, *ev_d, *ev_lr; /* and the chunk's chopped vectors, lrs */
    uint64_t *ev_save; /* the counters, pointers and choppers before a plan (chopped_keep) */
    /* a replay's pulsed writes to C, deferred to one engine call at the end of the chunk
     * (rpu_compound_flush_writes): x [ev_cap][cols], d [ev_cap][rows], each write's first
     * block and the writes' learning rate (the same for all: step * granularity) */
    int n_wr;
    float *wr_x, *wr_d, wr_lr;
    uint64_t *wr_base;
    int n_arrays;
    rpu_device_array arrays[RPU_COMPOUND_MAX_ARRAYS];
    char names[RPU_COMPOUND_MAX_ARRAYS][RPU_COMPOUND_NAME_MAX];
    /* mixed_precision (spec §9, compound_mixed.c): the digital accumulator chi, the transfer
     * granularity epsilon and the row pointer; current_update_idx is its vector counter */
    float *chi;
    float eps;
    uint64_t current_row_index;
} rpu_compound;

/* Builds t->cmp from t->cfg (a compound device.type) for t's shape: sub-device k's
 * device-to-device values drawn from the stream (cseed, layer, tile,
 * RPU_PURPOSE_CONSTRUCT_SUB + k), the transfer/refresh IO values from (seed, layer, tile,
 * RPU_PURPOSE_TRANSFER_IO); hidden weights zero. Errors: RPU_ERR_CONFIG for combinations
 * that need the tile's shape or are not supported (naming the key), RPU_ERR_NOMEM. */
rpu_status rpu_compound_create(rpu_tile *t, uint64_t cseed);
void rpu_compound_free(rpu_tile *t);

/* The tile's weights hold a new visible weight W: applies the compound's set rule (spec
 * §2.4, §3, §4.5, §5.8), then recomputes the visible weight. */
void rpu_compound_set_weights(rpu_tile *t);

/* rpu_tile_update of a compound tile: one update call (spec §1.1) of n vectors x [n, cols],
 * d [n, rows], SGD learning rate lr >= 0 (0: nothing happens, no counter moves). */
rpu_status rpu_compound_tile_update(rpu_tile *t, const float *x, const float *d, int n, float lr);

/* Post-update step (§1.5): diffusion then decay of the sub-devices; returns whether
 * anything ran. */
int rpu_compound_post_update(rpu_tile *t);
void rpu_compound_reset_columns(rpu_tile *t, int start, int count, float prob);
void rpu_compound_drift(rpu_tile *t, double dt);

/* Named arrays (sub-device arrays and hidden weights, §1.3 order and names). */
int rpu_compound_n_arrays(const rpu_compound *c);
const rpu_device_array *rpu_compound_array(const rpu_compound *c, int k);
double rpu_compound_bytes_per_cell(const rpu_compound *c);
float rpu_compound_granularity(const rpu_compound *c);

/* The compound's scalar state items (counters, stream positions, drift clocks, read IO
 * values) appended after items[n]; returns the new count (rpu_state_item_add rules). */
int rpu_compound_state_items(rpu_tile *t, rpu_state_item *items, int n, int max);
void rpu_compound_state_loaded(rpu_tile *t);

/* The mixed-precision compound (compound_mixed.c, spec §9; below compound.c, which calls
 * it at its switch points): construction (the analog device is sub-device
 * 0 and works on the tile's weights), the set rule (chi and the counters zeroed), one update call
 * (d in engine units, lr > 0), and its state items (aihwkit's names). */
rpu_status rpu_mixed_build(rpu_tile *t, uint64_t cseed);
void rpu_mixed_set_weights(rpu_tile *t);
rpu_status rpu_mixed_update(rpu_tile *t, const float *x, const float *d, int n, float lr);
int rpu_mixed_state_items(rpu_tile *t, rpu_state_item *items, int n, int max);

/* ---- unit cells inside a compound (compound_cell.c below compound.c; spec §1.2, §1.3 rule 2)
 *
 * A unit cell is a compound itself, i.e. of compound.c's layer: compound.c creates its
 * compound (rpu_compound_create), updates, frees and lists it; compound_cell.c holds what
 * lies below: its tile and config, its seeds, its granularity. The layers below compound.c
 * that write to a sub-device (compound_io.c, compound_mixed.c) reach a cell through
 * c->cell_update, which compound.c sets. */

/* Allocates cell[k] (and sets hidden[k] to its weights) for sub-device k of t, a unit cell
 * built from entry `entry` of device.unit_cell_devices (t->cfg.cells[entry]): a tile of t's
 * shape whose config is the cell with update parameters up (the parameters of what writes
 * to it: the main update for a transfer compound's fast device, the transfer writes
 * otherwise), whose seeds are drawn from stream (seed, layer, tile, RPU_PURPOSE_CELL) at
 * word 4k (construction: (cseed, ...) at 4k + 2, into *cell_cseed). Its compound is not
 * built yet (rpu_compound_create(cell[k], *cell_cseed)). */
rpu_status rpu_cell_alloc(rpu_tile *t, int k, int entry, const rpu_update_params *up,
                          uint64_t cseed, uint64_t *cell_cseed);
/* Frees the cells' tiles (their compounds already freed). */
void rpu_cell_release(rpu_compound *c);
/* A cell's build error in the outer config's keys ("device.X" ->
 * "device.unit_cell_devices.<entry>.X"); returns code. */
rpu_status rpu_cell_rekey_error(rpu_status code, int entry);

/* Granularity of sub-device k (a unit cell's: the mean of its devices') and its number of
 * states (w_max - w_min) / granularity (a unit cell: the mean over its devices). */
float rpu_compound_sub_granularity(const rpu_compound *c, int k);
float rpu_compound_sub_states(const rpu_compound *c, int k);

/* One update call of the unit cell `cell` (compound.c): n vectors x [n, cols], d [n, rows]
 * in engine units, of a call of m vectors (its periods), learning rate lr != 0 (a negative
 * lr flips the signs; then n must be 1). Its weights are the outer hidden array. This is
 * the function c->cell_update points to. */
rpu_status rpu_compound_cell_update(struct rpu_tile *cell, const float *x, const float *d, int n,
                                    int m, float lr);

/* ---- reads and writes (compound_io.c) */

/* Read of sub-device k through the compound's read IO in direction dir (DIR_FWD: y = W_k v,
 * DIR_BWD: y = W_kᵀ v), the transfer/refresh stream and construction values. */
rpu_status rpu_compound_read(rpu_tile *t, int k, int dir, const float *v, float *y);

/* Write of one vector to sub-device k: W_k -= lr d xᵀ (x [cols], d [rows]) with update
 * parameters up, pulsed through the engine with device k's granularity and draws from the
 * transfer stream (pulse type none: exact, then clipped to the device's bounds); a negative
 * lr flips every sign (spec §1.1). */
rpu_status rpu_compound_write(rpu_tile *t, const rpu_update_params *up, int k, const float *x,
                              const float *d, float lr);

/* During a chopped replay (c->replay) the pulsed writes to C are only recorded, with the
 * blocks each would have drawn (the stream position moves as if written); this makes them,
 * in one engine call, rows in order and the writes in order per row: the same floats as
 * writing each at once, since nothing reads C in between and cells do not interact. A
 * no-op without recorded writes. */
rpu_status rpu_compound_flush_writes(rpu_tile *t, const rpu_update_params *up);

/* ---- the buffered transfer family (compound_buffered.c): buffered_transfer (TTv2, spec §6),
 * chopped_transfer (c-TTv2, §7), dynamic_transfer (AGAD, §8). compound.c calls these at
 * its switch points for those types; they read and write through compound_io.c. */

/* After the sub-devices and hidden arrays exist: the buffers (named arrays appended after
 * the sub-devices', §1.3 rule 3), choppers, counters and the automatic period. */
rpu_status rpu_compound_buffered_build(rpu_tile *t);
void rpu_compound_buffered_free(rpu_compound *c);

/* chopped_transfer / dynamic_transfer, before vector x [cols], d [rows] of a call of m
 * vectors with SGD lr: the auto-scale statistics and the pulse-count learning rate (§7.4,
 * §8.3; stored as lr_cur) into *lr_p, and the chopped vectors (x-side chopper on x, d-side
 * on d, §7.3) into *xc, *dc. */
void rpu_compound_chopped_vector(rpu_tile *t, const float *x, const float *d, int m, float lr,
                                 float *lr_p, const float **xc, const float **dc);

/* One transfer chunk of the buffered family (§6.3, §7.6, §8.3): cnt reads from source k
 * starting at column (row) start, each thresholded through the buffer and written to
 * device to; lr_t is the transfer learning rate before the gamma factor. */
rpu_status rpu_compound_buffered_chunk(rpu_tile *t, int k, int to, int start, int cnt, float lr_t);

/* The read of A's column col inside a chopped read (§7.6, §8.3), v [t_in] its workspace: in
 * a plan pass records it (col and the vector) and sets *planned (the caller skips the read
 * and the buffer); in a replay reads the column's snapshot into y through the IO model of
 * rpu_compound_read; else rpu_compound_read. */
rpu_status rpu_compound_read_fast(rpu_tile *t, int col, float *v, float *y, int *planned);

/* The post-1.1 de-chopped visible weight W = gamma_0 sigma.A + gamma_1 C (§7.7); returns
 * false when the default reduction applies (not chopped/dynamic, fully hidden, or
 * device.dechop_visible_weight off). */
bool rpu_compound_chopped_reduce(rpu_tile *t);

/* State items of the family (choppers, counters, auto-scale values), appended. */
int rpu_compound_buffered_state_items(rpu_tile *t, rpu_state_item *items, int n, int max);

/* A compound writes its arrays with pulse trains: pulse_type none / none_with_device are
 * refused (aihwkit replaces the compound by an ideal device then), and so is a pulse train
 * longer than the engine's max_bl (RPU_UPDATE_MAX_BL). `what` names the compound in the
 * message. */
static inline rpu_status rpu_compound_check_pulses(const rpu_update_params *mu, int max_bl,
                                                   const char *what) {
    if (mu->pulse_type == RPU_PULSE_NONE || mu->pulse_type == RPU_PULSE_NONE_WITH_DEVICE)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "update.pulse_type = %s: %s pulsed updates (aihwkit replaces the compound "
                        "by an ideal device then)",
                        mu->pulse_type == RPU_PULSE_NONE ? "none" : "none_with_device", what);
    if (mu->desired_bl > max_bl)
        return RPU_FAIL(RPU_ERR_CONFIG, "update.desired_bl = %d: at most %d", mu->desired_bl,
                        max_bl);
    return RPU_OK;
}

#endif
