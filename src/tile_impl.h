/* Private: the analog tile's state, shared by the tile and (later) device/ckpt modules. */
#ifndef RPUSIM_TILE_IMPL_H
#define RPUSIM_TILE_IMPL_H

#include "rpusim/tile.h"

#include <stddef.h>
#include <stdint.h>

/* Passes a vector may take under bound management, and the random-number kinds drawn per
 * pass: they fix the address layout of the forward/backward noise streams (tile.c). */
#define RPU_IO_MAX_PASSES 40
enum { RPU_DRAW_INP_NOISE, RPU_DRAW_INP_ROUND, RPU_DRAW_OUT_NOISE, RPU_DRAW_OUT_ROUND,
       RPU_DRAW_W_NOISE, RPU_DRAW_KINDS };

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

struct rpu_tile {
    rpu_tile_params p;
    rpu_config cfg;
    float *w;      /* [out, in] stored (normalized) weights */
    float *abs_w;  /* |w| cache for ir_drop / pcm_read (NULL until needed) */
    int abs_w_valid;
    float *scales; /* [out] mapping scales */
    rpu_io_state io[2];
    rpu_rng stream[2]; /* forward / backward noise (random access by address) */
    uint64_t next_block[2];
    uint64_t calls[2];
    float nm_aux; /* average_abs_max running value (shared by both directions) */
    int nm_aux_init;
    uint8_t *mask; /* [mask_n, out] gradient mask of the last training forward */
    int mask_n;
    size_t mask_cap;
    float *ws; /* workspace */
    size_t ws_cap;
    float *dbuf; /* backward input after scales and mask */
    size_t dbuf_cap;
    int64_t *iws; /* index workspace */
    size_t iws_cap;
};

/* Address (first Philox block) of the draws of one kind for vector k, pass r of a call of
 * n_call vectors whose base block is `base`, for vectors of up to `dim` values. For one
 * (pass, kind) the vectors of a call are consecutive, so a whole batch draws with one
 * fill. A call reserves rpu_io_call_blocks(dim, n_call) blocks. */
static inline uint64_t rpu_io_draw_block(uint64_t base, int dim, int64_t n_call, int64_t k,
                                         int r, int kind) {
    uint64_t per = (uint64_t)((dim + 3) / 4);
    return base +
           (((uint64_t)r * RPU_DRAW_KINDS + (uint64_t)kind) * (uint64_t)n_call + (uint64_t)k) * per;
}

static inline uint64_t rpu_io_call_blocks(int dim, int64_t n_call) {
    return rpu_io_draw_block(0, dim, n_call, 0, RPU_IO_MAX_PASSES, 0);
}

#endif
