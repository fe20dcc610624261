/* Slot-by-slot reference of a compound device's pulsed update (compound spec §1.1, §2.3,
 * §3, §4.3, §5.5, §7.3-§7.4 without transfers), for tests: for every update vector, the device
 * choice of the update policy, the pulse trains of spec §3.3-§3.4 with the compound's granularity
 * and pulse-count learning rate (ref_vector_pulses), then for every target sub-device, slot
 * by slot, d pulse by d pulse, x pulse by x pulse, one update-once (rpu_device_pulses with
 * n = 1) — one_sided routing positive coincidences to g- and negative ones to g+ as up
 * steps, chopped / dynamic transfer flipping each cell's sign where its row and column
 * choppers differ, with their auto-scaled pulse-count learning rate — and at the end the
 * visible weight sum_k gamma_k W_k (chopped post-1.1: gamma_0 sigma.A + gamma_1 C). It reads the
 * same random numbers from the same addresses as the engine (compound.c: sub-device q of vector v
 * at slot q of the vector's range), so on a tile built with the same keys it must give the same
 * floats. */
#ifndef RPUSIM_REF_COMPOUND_H
#define RPUSIM_REF_COMPOUND_H

#include "rpusim/tile.h"

/* Applies the update to the compound tile t through the reference. Returns 0 on success, 1
 * for a tile it does not cover (not a compound, mapping lr compensation, an update call
 * during which a transfer or refresh would happen). */
int ref_compound_update(rpu_tile *t, const float *x, const float *d, int n, float lr);

#endif
