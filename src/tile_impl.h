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
    rpu_device_state dev; /* device models (update, post-update, bounds) */
    rpu_rng ustream;      /* update: pulse trains, cycle-to-cycle and write noise */
    uint64_t unext;       /* next free block of ustream */
    uint64_t ucalls;
    rpu_rng pstream; /* post-update, reset, drift, write noise on set */
    uint64_t pnext;
    unsigned char *uws; /* update workspace */
    size_t uws_cap;
    float *dbuf; /* backward input after scales and mask */
    size_t dbuf_cap;
    int64_t *iws; /* index workspace */
    size_t iws_cap;
    const float *wsel;    /* weights of the running pass: w, or w_fb (modifier) */
    const float *abs_src; /* which weights abs_w holds */
    rpu_infer_state inf;  /* inference and hardware-aware training (inference.c) */
};

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

/* The update engine behind rpu_tile_update (rows [0, R)) and rpu_tile_update_rows. */
rpu_status rpu_tile_update_impl(rpu_tile *t, const float *x, const float *d, int n, float lr,
                                int r0, int r1);

/* Address layout of the update stream for one vector (update.c; the test reference uses
 * the same): regions of blocks relative to the vector's base. */
#define RPU_UPDATE_MAX_BL 255
typedef struct {
    uint64_t x_pulses; /* pulse-train uniforms, one sequence: slot k of x element j at
                          k*cols + j, then slot k of d element i at BL*cols + k*rows + i */
    uint64_t x_round;  /* in uniforms (probability stochastic rounding) */
    uint64_t d_round;  /* out uniforms */
    uint64_t c2c;      /* the vector's cycle-to-cycle normals from block c2c on: row by
                          row, each row pulse rank by pulse rank in column order */
    uint64_t row_c2c;  /* (c2c range = rows * row_c2c blocks) */
    uint64_t write;    /* row i: block write + i*row_write, normal j */
    uint64_t row_write;
    uint64_t total; /* blocks per vector */
} rpu_update_layout;

static inline rpu_update_layout rpu_update_layout_for(int rows, int cols) {
    rpu_update_layout L;
    const uint64_t pad = 256; /* >= RPU_UPDATE_MAX_BL, a multiple of 4 */
    uint64_t R = (uint64_t)rows, C = (uint64_t)cols;
    L.x_pulses = 0;
    L.x_round = L.x_pulses + (C + R) * pad / 4;
    L.d_round = L.x_round + (C + 3) / 4;
    L.c2c = L.d_round + (R + 3) / 4;
    L.row_c2c = C * pad / 4;
    L.write = L.c2c + R * L.row_c2c;
    L.row_write = (C + 3) / 4;
    L.total = L.write + R * L.row_write;
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

/* ---------------------------------------------------------------- tile_io.c */

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
