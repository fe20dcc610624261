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

#include "rpusim/tile.h"

/* Applies the update to t through the reference (t must be a pulsed tile and the pulse
 * type a stochastic or count-based one). Returns 0 on success. */
int ref_update(rpu_tile *t, const float *x, const float *d, int n, float lr);

#endif
