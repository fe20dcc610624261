/* Straightforward per-vector reference of the tile's forward/backward IO model, written
 * from spec §2.2-§2.7 line by line, for tests. It draws its random numbers from the same
 * addresses as the library (tile_impl.h: rpu_io_draw_block), computes every analog
 * product as a double-precision sum in index order (= RPU_MAC_EXACT), and processes one
 * vector at a time, every pass from scratch. */
#ifndef RPUSIM_REF_TILE_H
#define RPUSIM_REF_TILE_H

#include "rpusim/config.h"
#include "rpusim/rng.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    rpu_config cfg;
    int out, in;
    float *w;      /* [out, in] stored weights */
    float *scales; /* [out] */
    /* construction values per direction (NULL if off) */
    float *out_noise_values[2], *v_offset[2], *nl[2];
    float nlf[2];
    rpu_rng stream[2];
    uint64_t next_block[2];
    int call_n[2]; /* vectors in the current call */
    float nm_aux;
    int nm_aux_init;
    unsigned char *mask;
    int mask_n;
} ref_tile;

/* Builds the reference for a tile of these sizes and keys; draws construction values. */
int ref_tile_init(ref_tile *r, const rpu_config *cfg, int out, int in, uint64_t seed,
                  uint32_t layer, uint32_t tile);
void ref_tile_free(ref_tile *r);
void ref_tile_forward(ref_tile *r, const float *x, int n, float *y, bool is_test);
void ref_tile_backward(ref_tile *r, const float *d, int n, float *dx);

#endif
