/* rpusim — counter-based random streams (Philox-4x32-10, Salmon et al. SC'11).
 *
 * A stream is keyed by (seed, stream id). Block b of the stream is
 * Philox4x32-10(counter = {b_lo, b_hi, id_lo, id_hi}, key = {seed_lo, seed_hi}): four
 * 32-bit words. The stream's position counts 32-bit words consumed; jumping to any
 * position is O(1), so a position can be saved and restored exactly. Streams never share
 * state, so the numbers of one stream do not depend on how many others were used.
 *
 * Stream ids are built from (layer, tile, purpose) with rpu_stream_id(). Nothing here is
 * collective or allocates. */
#ifndef RPUSIM_RNG_H
#define RPUSIM_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The raw generator: out = Philox4x32-10(ctr, key). Local (pure). */
void rpu_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Purposes of the streams of a tile/layer (part of the stream id). */
typedef enum {
    RPU_PURPOSE_CONSTRUCT = 1,    /* device-to-device and IO construction draws */
    RPU_PURPOSE_FORWARD = 2,      /* forward-pass noise */
    RPU_PURPOSE_BACKWARD = 3,     /* backward-pass noise */
    RPU_PURPOSE_UPDATE = 4,       /* pulse trains, cycle-to-cycle noise */
    RPU_PURPOSE_POST = 5,         /* decay, diffusion, modifiers */
    RPU_PURPOSE_PROGRAM = 6,      /* programming / drift / read noise */
    RPU_PURPOSE_DATA = 7,         /* shuffling, dropout */
    RPU_PURPOSE_INIT = 8,         /* weight initialisation */
    RPU_PURPOSE_IO = 9,           /* construction-time IO values (out_noise_values, ...) */
    RPU_PURPOSE_READOUT = 10,     /* probe inputs of the realistic weight read-out */
    RPU_PURPOSE_COMPOUND = 11,    /* a compound device's own draws: device choice, random
                                     column selection, resets of transfers and refreshes */
    RPU_PURPOSE_TRANSFER = 12,    /* compound transfer/refresh reads (IO noise) and writes */
    RPU_PURPOSE_TRANSFER_IO = 13, /* construction-time values of the transfer/refresh IO */
    RPU_PURPOSE_CELL = 14,        /* the seeds of the unit cells inside a compound */
    RPU_PURPOSE_TEST = 15,        /* tests and benchmarks */
    /* construction draws of sub-device k of a compound: RPU_PURPOSE_CONSTRUCT_SUB + k */
    RPU_PURPOSE_CONSTRUCT_SUB = 256
} rpu_rng_purpose;

/* Stream id = layer (bits 63..40) | tile (bits 39..16) | purpose (bits 15..0).
 * layer and tile are taken modulo 2^24. Local (pure). */
uint64_t rpu_stream_id(uint32_t layer, uint32_t tile, uint32_t purpose);

typedef struct {
    uint32_t key[2]; /* from the seed */
    uint32_t id[2];  /* stream id */
    uint64_t pos;    /* next 32-bit word to use */
    uint64_t blk;    /* block held in buf (valid if have_buf) */
    uint32_t buf[4];
    int have_buf;
} rpu_rng;

/* Starts stream (seed, stream_id) at position 0. Local. */
void rpu_rng_init(rpu_rng *r, uint64_t seed, uint64_t stream_id);

/* Position (32-bit words consumed) and O(1) jump to a saved position. Local. */
uint64_t rpu_rng_tell(const rpu_rng *r);
void rpu_rng_seek(rpu_rng *r, uint64_t pos);

/* Next raw 32-bit word. Local. */
uint32_t rpu_rng_u32(rpu_rng *r);

/* Uniform float in [0, 1): 24 random bits (consumes one word). Local. */
float rpu_rng_uniform(rpu_rng *r);

/* Standard normal (Box-Muller on two words; consumes two words). Local. */
float rpu_rng_normal(rpu_rng *r);

/* Fill n values. The fills start at the next block boundary (a partly used block is
 * skipped) and consume whole blocks, so a fill of n values produced at block b is the same
 * whatever was drawn before; uniform: one word per value; normal: four normals per block
 * (two Box-Muller pairs). Local. */
void rpu_rng_uniform_fill(rpu_rng *r, float *out, size_t n);
void rpu_rng_normal_fill(rpu_rng *r, float *out, size_t n);

/* Random access without a cursor: values at block offset `block` of stream (r's key and
 * id), independent of r's position. Used where each vector of a batch draws from its own
 * addressed sub-range so that batched and per-vector code give identical numbers.
 * Local (reads r only). */
void rpu_rng_normal_at(const rpu_rng *r, uint64_t block, float *out, size_t n);
void rpu_rng_uniform_at(const rpu_rng *r, uint64_t block, float *out, size_t n);

/* The four normals of each of n blocks first, first + stride, ..., first + (n-1) stride:
 * out[4q .. 4q+3] are those of block first + q stride, the values rpu_rng_normal_at(r,
 * first + q stride, ., 4) gives (one batch for draws scattered at a fixed stride, e.g. one
 * per row or per vector of an update). Local (reads r only). */
void rpu_rng_normal_blocks(const rpu_rng *r, uint64_t first, uint64_t stride, size_t n, float *out);

/* The four normals of each of n blocks first + idx[q] (idx[q] >= 0, any order and gaps):
 * out[4q .. 4q+3] are those of rpu_rng_normal_at(r, first + idx[q], ., 4). One batch of
 * 16-block groups over a list of blocks, e.g. the consecutive blocks of several vectors'
 * ranges one after the other, which then read their values at their blocks' offsets in
 * out. Local (reads r only). */
void rpu_rng_normal_block_list(const rpu_rng *r, uint64_t first, const int64_t *idx, size_t n,
                               float *out);

/* Values [0, len) of `rows` ranges of blocks: row a starts at block first + i_a per, with
 * i_a = a (idx NULL) or idx[a] (idx[a] >= 0); its values, written to out + a ostride, are
 * those of rpu_rng_normal_at (normal != 0) or rpu_rng_uniform_at(r, first + i_a per, .,
 * len). One batch for draws laid out with a fixed room per vector of which a call needs
 * only a part (e.g. the out_size output noises of vectors whose address room is in_size
 * values), or only some vectors. Local (reads r only). */
void rpu_rng_rows_at(const rpu_rng *r, uint64_t first, uint64_t per, const int64_t *idx, size_t rows,
                     size_t len, int normal, float *out, size_t ostride);

/* Blocks (4 words) needed for n values of normal_at / uniform_at. Local (pure). */
static inline uint64_t rpu_rng_blocks_for(size_t n) {
    return (uint64_t)((n + 3) / 4);
}

#ifdef __cplusplus
}
#endif
#endif
