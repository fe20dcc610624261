/* Slot-by-slot reference of the pulsed update (spec §3.3-§3.4), for tests: the same
 * update as rpu_tile_update, written as the spec describes it — for every update vector,
 * for every slot, for every d pulse in d order, for every x pulse in x order, one device
 * update-once (rpu_device_pulses with n = 1). With merged pulses (t->update_per_pulse 0,
 * constant_step): per chunk of rpu_update_chunk() vectors, a cell whose pulses over the
 * chunk cannot reach a bound takes them as one step first (rpu_device_pulses_span); then,
 * vector by vector, a cell whose pulses of the vector cannot reach a bound takes them as
 * one step at its first (rpu_device_pulses_merged). It draws the same random numbers from
 * the same addresses (tile_impl.h: rpu_update_layout), so on a tile built with the same
 * keys it must give the same floats. */
#ifndef RPUSIM_REF_UPDATE_H
#define RPUSIM_REF_UPDATE_H

#include "rpusim/config.h"
#include "rpusim/rng.h"
#include "rpusim/tile.h"

#include <stdint.h>

/* One update vector's pulses (spec §3.3-§3.4): BL (0: no update), probabilities,
 * pulse-train uniforms (for the slot-by-slot order) and per cell the pulse count and sign. */
typedef struct {
    int BL;
    float *px, *pd;   /* [C], [R] */
    float *ux, *ud;   /* x trains slot-major [BL][C], d trains row-major [R][BL]; NULL for the
                         count-based pulse types */
    int *count, *sgn; /* [R][C] */
} ref_vec;

/* The pulses of one vector x [C], d [R] of a tile of R x C with update parameters up,
 * granularity g and learning rate lr, drawn from rng in the vector's range starting at block
 * vbase (layout of rpu_update_layout_for(R, C)). Returns 1 for a refused pulse type or BL.
 * ref_vec_free releases v. */
int ref_vector_pulses(const rpu_update_params *up, float g, const rpu_rng *rng, int R, int C,
                      const float *x, const float *d, float lr, uint64_t vbase, ref_vec *v);
void ref_vec_free(ref_vec *v);

/* Applies the update to t through the reference (t must be a pulsed tile and the pulse
 * type a stochastic or count-based one). Returns 0 on success. */
int ref_update(rpu_tile *t, const float *x, const float *d, int n, float lr);

/* The fast device's pass of a chopped update (rpu_update_pulses_snap on a single tile's own
 * device and weights: update parameters up, granularity g, draws from t's update stream at
 * base, vector k with learning rate lrs[k], d in engine units), with read events (vec[e],
 * col[e]) in vector order: val[e * R + i] gets row i of column col[e] after vector vec[e].
 * With merged pulses, the read columns (in order of first appearance) stay out of each
 * chunk's merged step; per row, each one's pieces (the runs of the chunk's vectors between
 * its reads: [0, v1], [v1 + 1, v2], ..., up to the chunk's end) are merged in order while
 * their pulses cannot reach a bound from the cell's weight at the piece's start, with the
 * normal of piece p (numbered column by column, each column's in vector order) at value
 * p % C of the span range of vector k0 + 1 + p / C; the reads at a merged piece's end see
 * its result; from the first piece that could reach a bound, the cell pulses vector by
 * vector. A chunk with P pieces does this only if (P - 1) / C + 2 <= kn. Returns 0 on
 * success. */
int ref_update_snap(rpu_tile *t, const rpu_update_params *up, float g, uint64_t base,
                    const float *x, const float *d, int n, const float *lrs, int nev,
                    const int *vec, const int *col, float *val);

#endif
