/* Comparison of two checkpoints for the tests. */
#ifndef RPUSIM_TEST_CKPT_COMPARE_H
#define RPUSIM_TEST_CKPT_COMPARE_H

#include <stddef.h>

/* Every tile dataset of checkpoints a and b equal, shapes and values bit for bit, and the
 * same step (local, the read API; failures to open or read are CHECK failures). Returns
 * the number of datasets compared; *bad those that differ, the first one's path in first
 * (cap bytes). */
int tl_ckpt_compare_tiles(const char *a, const char *b, int *bad, char *first, size_t cap);

#endif
