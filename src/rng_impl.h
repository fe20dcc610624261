/* A helper of the library's random draws (private): values from the middle of an
 * addressed range. Local (reads the stream only). */
#ifndef RPUSIM_RNG_IMPL_H
#define RPUSIM_RNG_IMPL_H

#include "rpusim/rng.h"

#include <stddef.h>
#include <stdint.h>

/* Values [v, v + m) of the range of stream s that starts at block blk (value v is value
 * v % 4 of block blk + v / 4): uniform (normal 0) or normal, drawn into buf (room for
 * m + 3 values); returns where they start in buf. */
static inline const float *rpu_rng_values_at(const rpu_rng *s, uint64_t blk, uint64_t v, size_t m,
                                             float *buf, int normal) {
    const size_t skip = (size_t)(v & 3u);
    if (normal)
        rpu_rng_normal_at(s, blk + v / 4, buf, m + skip);
    else
        rpu_rng_uniform_at(s, blk + v / 4, buf, m + skip);
    return buf + skip;
}

#endif
