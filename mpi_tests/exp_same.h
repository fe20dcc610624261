/* Test helper: are two parsed experiments the same? */
#ifndef RPUSIM_TEST_EXP_SAME_H
#define RPUSIM_TEST_EXP_SAME_H

#include "experiment_impl.h"

#include <stdbool.h>
#include <stddef.h>

/* True if a and b are the same experiment: every run parameter, the config
 * (rpu_config_equal) and every layer specification. On a difference, why (n bytes) names
 * the first one. */
bool exp_same(const rpu_experiment *a, const rpu_experiment *b, char *why, size_t n);

#endif
