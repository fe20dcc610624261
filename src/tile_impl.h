/* Private: the analog tile's state and the one internal interface between the files that
 * act on it. The tile (tile.c) owns the state; the files below it act on the state through
 * this header and never call tile.c:
 *
 *     program.c                  realistic write (closed-loop programming)
 *        |
 *     tile.c                     create/destroy, weights, update/post-update, state items
 *        |         \
 *     inference.c   \            programming, drift, compensation, clip/remap/modifier
 *        |           \
 *     tile_io.c    update.c      forward/backward IO model | pulsed update
 *           \        /
 *           device.c, rng.c
 *
 * (an arrow down means "calls"; nothing calls upward). */
#ifndef RPUSIM_TILE_IMPL_H
#define RPUSIM_TILE_IMPL_H

#include "rpusim/tile.h"

#include "device_impl.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Passes a vector may take under bound management, and the random-number kinds drawn per
 * pass: they fix the address layout of the forward/backward noise streams (tile.c). */
#define RPU_IO_MAX_PASSES 40
enum {
    RPU_DRAW_INP_NOISE,
    RPU_DRAW_INP_ROUND,
    RPU_DRAW_OUT_NOISE,
    RPU_DRAW_OUT_ROUND,
    RPU_DRAW_W_NOISE,
    RPU_DRAW_KINDS
};

/* Construction-time IO values of one direction (spec §2.2); NULL when the feature is off. */
typedef struct {
    float *out_noise_values; /* [n_out] */
    float *v_offset;         /* [n_out] */
    float *nl;               /* [n_out] */
    float nlf;               /* slope-calibration factor */
    float inp_res_abs;       /* DAC step (0: none) */
    float out_res_abs;       /* ADC step (0: none) */
    float inp_bound;         /* +inf if <= 0 in config */
    float out_bound;
} rpu_io_state;

#include "compound_impl.h"

typedef struct {
    float *w_fb;        /* [out, in] modifier output (modifier configured) */
    uint64_t fb_valid;  /* w_fb holds a modified copy of the current w */
    uint64_t mod_calls; /* modifier applications so far (draw addresses) */
    float *w_ref;       /* [out, in] reference (target) weights of programming */
    float *w_prog;      /* [out, in] programmed weights */
    float *nu_plus;     /* [out, in] drift exponents of the g+ and g- devices */
    float *nu_minus;
    float *baseline;     /* [out] drift-compensation read-out right after programming */
    float *alpha;        /* [out] compensation factor applied to eval outputs */
    double t_inference;  /* seconds since programming of the current weights */
    uint64_t ref_valid;  /* w_ref holds the weights to program */
    uint64_t programmed; /* w_prog / nu are valid */
    uint64_t repeat;     /* programming repeat (noise stream) of w_prog */
} rpu_infer_state;

struct rpu_tile {
    rpu_tile_params p;
    rpu_config cfg;
    float *w;     /* [out, in] stored (normalized) weights */
    float *abs_w; /* |w| cache for ir_drop / pcm_read (NULL until needed) */
    int abs_w_valid;
    float *scales; /* [out] mapping scales */
    rpu_io_state io[2];
    rpu_rng stream[2]; /* forward / backward noise (random access by address) */
    uint64_t next_block[2];
    uint64_t calls[2];
    float nm_aux; /* average_abs_max running value (shared by both directions) */
    int nm_aux_init;
    uint64_t state_nm_init, state_drift_started; /* mirrors for rpu_tile_state_items */
    uint8_t *mask; /* [mask_n, out] gradient mask of the last training forward */
    int mask_n;
    size_t mask_cap;
    float *ws; /* workspace */
    size_t ws_cap;
    rpu_device_state dev;     /* device models (update, post-update, bounds) */
    struct rpu_compound *cmp; /* compound devices: sub-devices and hidden weights (NULL for a
                                 single device; then dev is an ideal placeholder) */
    rpu_rng ustream;          /* update: pulse trains, cycle-to-cycle and write noise */
    uint64_t unext;           /* next free block of ustream */
    uint64_t ucalls;
    rpu_rng pstream; /* post-update, reset, drift, write noise on set */
    uint64_t pnext;
    unsigned char *uws; /* update workspace (update.c) */
    size_t uws_cap;
    /* 0 (default): the update merges the pulses of a cell that cannot reach a bound
     * (constant_step, device_impl.h); 1: every pulse draws its own cycle-to-cycle normal
     * (the per-pulse reference behaviour; tests) */
    int update_per_pulse;
    /* 0 (default): a chopped update's read columns merge their pulses piece by piece
     * between their reads (update.c, pieces_build); 1: never (tests: the vector-by-vector
     * reference of those columns) */
    int snap_unmerged;
    float *dbuf; /* backward input after scales and mask */
    size_t dbuf_cap;
    int64_t *iws; /* index workspace */
    size_t iws_cap;
    const float *wsel;    /* weights of the running pass: w, or w_fb (modifier) */
    /* a forward one-hot read of column col_j takes that column from col_src [out_size]
     * instead of wsel (a chopped compound's replayed read of a snapshot; tile_io.c mac);
     * NULL: no override */
    const float *col_src;
    int col_j;
    const float *abs_src; /* which weights abs_w holds */
    rpu_infer_state inf;  /* inference and hardware-aware training (inference.c) */
};

/* Frees the workspaces the layers below tile.c grow on a tile (update.c, tile_io.c) and the
 * gradient mask; tile.c's destroy and compound_cell.c's unit-cell tiles. */
static inline void rpu_tile_workspaces_free(struct rpu_tile *t) {
    free(t->uws);
    free(t->abs_w);
    free(t->mask);
    free(t->ws);
    free(t->iws);
    free(t->dbuf);
    t->uws = NULL;
    t->abs_w = t->ws = t->dbuf = NULL;
    t->mask = NULL;
    t->iws = NULL;
}

/* Direction of an IO pass: forward (x -> y through W) or backward (d -> dx through Wᵀ). */
enum { DIR_FWD = 0, DIR_BWD = 1 };

/* The IO parameters of a direction. */
static inline const rpu_io_params *io_params(const rpu_tile *t, int dir) {
    return dir == DIR_FWD ? &t->cfg.forward : &t->cfg.backward;
}

/* Sizes of a direction: n_in values go in, n_out values come out. */
static inline int dir_in(const rpu_tile *t, int dir) {
    return dir == DIR_FWD ? t->p.in_size : t->p.out_size;
}
static inline int dir_out(const rpu_tile *t, int dir) {
    return dir == DIR_FWD ? t->p.out_size : t->p.in_size;
}
/* Values per vector of the draw addresses (the larger of the two sizes). */
static inline int addr_dim(const rpu_tile *t) {
    return t->p.in_size > t->p.out_size ? t->p.in_size : t->p.out_size;
}

/* Address (first Philox block) of the draws of one kind for vector k, pass r of a call of
 * n_call vectors whose base block is `base`, for vectors of up to `dim` values. For one
 * (pass, kind) the vectors of a call are consecutive, so a whole batch draws with one
 * fill. A call reserves rpu_io_call_blocks(dim, n_call) blocks. */
static inline uint64_t rpu_io_draw_block(uint64_t base, int dim, int64_t n_call, int64_t k, int r,
                                         int kind) {
    uint64_t per = (uint64_t)((dim + 3) / 4);
    return base +
           (((uint64_t)r * RPU_DRAW_KINDS + (uint64_t)kind) * (uint64_t)n_call + (uint64_t)k) * per;
}

static inline uint64_t rpu_io_call_blocks(int dim, int64_t n_call) {
    return rpu_io_draw_block(0, dim, n_call, 0, RPU_IO_MAX_PASSES, 0);
}

/* ---------------------------------------------------------------- update.c */

/* The update engine behind rpu_tile_update (rows [0, R)), rpu_tile_update_rows (rows
 * [r0, r1) of a whole tile held by several holders) and rpu_tile_update_rows_max (dmax: the
 * vectors' maxima over all rows, d read in rows [r0, r1) only), tile.h. */
rpu_status rpu_tile_update_impl(rpu_tile *t, const float *x, const float *d, const float *dmax,
                                int n, float lr, int r0, int r1);

/* The update of a row slice, for tiles that hold only some rows: t holds rows
 * [r0, r0 + t->p.out_size) of a tile of rows_total rows and in_size columns: its weights,
 * a device state made by rpu_device_slice_rows from the whole tile's (row0 = r0,
 * rows_total), its update stream keyed like the whole tile's; d is the whole tile's
 * [n, rows_total] gradient and scales its [rows_total] mapping scales. Does to t's rows
 * exactly what rpu_tile_update of the whole tile does to them, bitwise: the learning-rate
 * compensation and update management use every row of d and scales (max |d| over all
 * rows); every random number of a row is drawn at an address fixed by (call, vector, row,
 * slot or pass, column) (update.c); t->unext advances by the whole tile's layout
 * (n * rpu_update_layout_for(rows_total, in_size).total), t->ucalls by one; the exact path
 * runs its GEMMs in the whole tile's blocks of RPU_UPDATE_ROW_BLOCK rows. Errors as
 * rpu_tile_update, plus RPU_ERR_ARG for rows that are not a slice of the tile or a device
 * state of other rows. Not collective. */
rpu_status rpu_tile_update_slice(rpu_tile *t, const float *x, const float *d, const float *scales,
                                 int n, float lr, int r0, int rows_total);

/* Address layout of the update stream for one vector of a tile of `rows` x `cols` (the
 * whole tile's, also in a row slice; update.c and the test reference use it): regions of
 * blocks relative to the vector's base; "value v" of a region is value v % 4 of its block
 * v / 4. Every draw of row i sits at an address fixed by (vector, i, slot/pass, column). */
#define RPU_UPDATE_MAX_BL 255
typedef struct {
    uint64_t x_pulses; /* pulse-train uniforms of x: slot s of column j at value s*cols + j */
    uint64_t d_pulses; /* of d: slot s of row i at value i*BL + s */
    uint64_t x_round;  /* probability stochastic rounding: column j at value j */
    uint64_t d_round;  /* row i at value i */
    uint64_t c2c;      /* cycle-to-cycle normals of row i from block c2c + i*row_c2c, pass
                          by pass (pass p: one per cell of the row with more than p passes),
                          in column order within a pass */
    uint64_t row_c2c;
    uint64_t write; /* write noise of row i: block write + i*row_write, normal j */
    uint64_t row_write;
    uint64_t span;  /* merged pulses of a chunk of vectors (update.c), in the range of the
                       chunk's first vector: row i from block span + i*row_write, one normal
                       per merged cell in column order; the pieces of a chopped update's read
                       columns (update.c, pieces_build) in the ranges of the chunk's next
                       vectors: piece p at value p % cols of vector 1 + p / cols */
    uint64_t total; /* blocks per vector */
} rpu_update_layout;

/* Update vectors per chunk (update.c) of a tile of rows x cols: a function of the whole
 * tile's shape only, so that every slicing chunks a batch alike (the chunks decide which
 * pulses merge). */
static inline int rpu_update_chunk(int rows, int cols) {
    long k = 65536L / ((long)rows + (long)cols);
    return k < 1 ? 1 : (k > 64 ? 64 : (int)k);
}

static inline rpu_update_layout rpu_update_layout_for(int rows, int cols) {
    rpu_update_layout L;
    const uint64_t pad = 256; /* >= RPU_UPDATE_MAX_BL, a multiple of 4 */
    uint64_t R = (uint64_t)rows, C = (uint64_t)cols;
    L.x_pulses = 0;
    L.d_pulses = L.x_pulses + C * pad / 4;
    L.x_round = L.d_pulses + R * pad / 4;
    L.d_round = L.x_round + (C + 3) / 4;
    L.c2c = L.d_round + (R + 3) / 4;
    L.row_c2c = C * pad / 4;
    L.write = L.c2c + R * L.row_c2c;
    L.row_write = (C + 3) / 4;
    L.span = L.write + R * L.row_write;
    L.total = L.span + R * L.row_write;
    return L;
}

/* Appends one state item to items[n] if n < max; returns n + 1 (tile.c, inference.c). */
static inline int rpu_state_item_add(rpu_state_item *items, int n, int max, const char *name,
                                     rpu_state_type type, size_t count, int rows, int cols,
                                     void *data) {
    if (n < max)
        items[n] = (rpu_state_item){
            .name = name, .type = type, .count = count, .rows = rows, .cols = cols, .data = data};
    return n + 1;
}

/* The gradient of an update call in engine units: du = d / (scales * lr_scale) for n vectors of
 * R rows, rows [i0, i1) computed (into the tile's buffer, *du; the others left as they are),
 * and the learning rate lr * lr_scale (*lr_t), lr_scale from the mapping's lr compensation
 * (spec §7); counts the call (t->ucalls). */
rpu_status rpu_update_scaled_gradient(rpu_tile *t, const float *d, const float *scales, int n,
                                      int R, int i0, int i1, float lr, const float **du,
                                      float *lr_t);

/* The pulses of a compound (compound.c) through the pulsed engine: the pulse trains of
 * vectors x [n, C], d [n, R] (the whole tile) with update parameters up, granularity g and
 * pulse-count learning rate lr > 0, drawn from stream rng; vector k's draws sit in its range
 * of blocks base + k * stride with the layout of rpu_update_layout_for(R, C) (pulse trains
 * and rounding at the range's start). Every coincidence count of vector k goes to the
 * targets q whose bit is set in mask[k] (mask NULL: every target): sign_mode 0 as is,
 * +1 only the counts of sign > 0 and -1 only those of sign < 0, both applied as UP steps
 * (one_sided routing, compound spec §4.3). Target q's cycle-to-cycle and write-noise
 * normals of row i come from block base + k*stride + q*L.total + L.c2c + i*L.row_c2c
 * (resp. L.write + i*L.row_write), one normal per pulse (no merged pulses); so stride must
 * be at least ntg * L.total. Rows in order, vectors in batch order per row (cells do not
 * interact). */
typedef struct {
    const rpu_device_state *dev;
    float *w; /* [R, C] the target's (hidden) weights */
    int sign_mode;
} rpu_pulse_target;
rpu_status rpu_update_pulses(rpu_tile *t, const rpu_update_params *up, float g, const rpu_rng *rng,
                             uint64_t base, uint64_t stride, const float *x, const float *d, int n,
                             float lr, const rpu_pulse_target *tg, int ntg, const uint32_t *mask);
/* rpu_update_pulses with vector k's range of blocks starting at bases[k] (bases NULL: base +
 * k * stride), for vectors whose draws are not evenly spaced (a chopped compound's deferred
 * transfer writes, compound_io.c). */
rpu_status rpu_update_pulses_at(rpu_tile *t, const rpu_update_params *up, float g,
                                const rpu_rng *rng, uint64_t base, uint64_t stride,
                                const uint64_t *bases, const float *x, const float *d, int n,
                                float lr, const rpu_pulse_target *tg, int ntg,
                                const uint32_t *mask);

/* The pulses of a compound with one target and every vector updating it (the transfer
 * family's fast device, sign_mode 0), through the single-device engine: the draws of
 * rpu_update_pulses with ntg 1 and stride L.total from the tile's update stream, and, like a
 * single device's update, merged pulses where the target's device merges them and
 * t->update_per_pulse is 0 (then the same floats as rpu_update_pulses). */
rpu_status rpu_update_pulses_one(rpu_tile *t, const rpu_update_params *up, float g, uint64_t base,
                                 const float *x, const float *d, int n, float lr,
                                 const rpu_pulse_target *tg);

/* rpu_update_pulses_one for target q of a compound whose every vector updates every target
 * (sign_mode 0, or one_sided routing): the pulse trains of vector k from the range
 * base + k * stride (as
 * rpu_update_pulses), target q's device noise from its part q * L.total of that range, and
 * merged pulses as rpu_update_pulses_one (per pulse: the same floats as rpu_update_pulses
 * with all targets, since targets do not interact). stride >= (q + 1) L.total. */
rpu_status rpu_update_pulses_target(rpu_tile *t, const rpu_update_params *up, float g,
                                    uint64_t base, uint64_t stride, int q, const float *x,
                                    const float *d, int n, float lr, const rpu_pulse_target *tg);

/* Column snapshots of an update call (rpu_update_pulses_snap): for e < n, the column col[e]
 * of the target's weights right after vector vec[e] of the call (vec non-decreasing) into
 * val[e * R + row]. The excl[0 .. n_excl) columns (at least those of col) never take a
 * chunk's pulses as one merged step, so that their values between vectors exist. */
typedef struct {
    int n;
    const int *vec, *col;
    float *val;
    int n_excl;
    const int *excl;
} rpu_read_snap;

/* rpu_update_pulses_one with a learning rate per vector (lrs[k] >= 0, vector k) and the
 * snapshots snap (or NULL): the same floats as n calls of one vector each where no pulses
 * merge (see rpu_update_pulses_one); where they merge, the snapshot columns never merge
 * pulses of different vectors. */
rpu_status rpu_update_pulses_snap(rpu_tile *t, const rpu_update_params *up, float g, uint64_t base,
                                  const float *x, const float *d, int n, const float *lrs,
                                  const rpu_pulse_target *tg, const rpu_read_snap *snap);

/* ---------------------------------------------------------------- tile.c */

/* Draws the construction-time IO values of one set of IO parameters for n outputs from g
 * (spec §2.2; the tile's forward and backward, a compound's transfer/refresh reads), and
 * frees them. */
rpu_status rpu_io_state_init(const rpu_io_params *io, rpu_io_state *st, int n, rpu_rng *g);
void rpu_io_state_free(rpu_io_state *st);

/* ---------------------------------------------------------------- tile_io.c */

/* One read channel of the IO model: its parameters, construction-time values, noise stream
 * and the stream's block counter and call counter (advanced by every pass). The tile's
 * forward and backward passes use their own; a compound's transfer and refresh reads
 * (compound.c) bring theirs. */
typedef struct {
    const rpu_io_params *io;
    const rpu_io_state *st;
    const rpu_rng *rng;
    uint64_t *next_block;
    uint64_t *calls;
} rpu_io_channel;

/* The IO model (spec §2.3) of direction dir (DIR_FWD: y = W x, DIR_BWD: y = Wᵀ x) on
 * weights W [out, in] (not the tile's) through channel ch, for n vectors. The channel's
 * parameters must not use ir_drop or w_noise_type pcm_read (they read |W| of the tile's
 * weights) nor noise_management average_abs_max (the tile's running value). */
rpu_status rpu_tile_io_read(rpu_tile *t, const rpu_io_channel *ch, const float *W, int dir,
                            const float *x, int n, float *y);

/* The analog forward of the stored weights without mapping scales or compensation
 * (advances the forward noise stream like any forward). rpu_tile_forward and
 * rpu_tile_backward (public) are defined there too. */
rpu_status rpu_tile_forward_raw(rpu_tile *t, const float *x, int n, float *y);

/* ---------------------------------------------------------------- inference.c */

/* Allocation of the inference state for the config (create), freeing,
 * the post-update steps clip -> remap -> modifier, state items, and the weights a pass
 * uses (w_fb in training when a modifier ran, else w). */
rpu_status rpu_infer_alloc(rpu_tile *t);
void rpu_infer_free(rpu_tile *t);
rpu_status rpu_infer_post_update(rpu_tile *t);
int rpu_infer_state_items(rpu_tile *t, rpu_state_item *items, int n, int max);
/* The stored weights changed (update, set_weights, reset, drift): the programming
 * reference and the modifier copy are stale. */
static inline void rpu_infer_weights_changed(rpu_tile *t) {
    t->inf.ref_valid = 0;
    t->abs_src = NULL;
}
#endif
