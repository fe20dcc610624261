/* Private to the library: the properties of a layer's config that decide where its tiles
 * go and which messages it sends (placement.c; used by layer.c and layer_plan.c). */
#ifndef RPUSIM_PLACEMENT_IMPL_H
#define RPUSIM_PLACEMENT_IMPL_H

#include "rpusim/layer.h"

#include <stdbool.h>

/* Asked of a small tile of the config: whether a tile's holders split the batch
 * (rpu_tile_batch_splittable), whether its forward reads every vector
 * (rpu_tile_forward_reads_all), whether its update is an exact sum
 * (rpu_tile_update_summable) or splits by rows (rpu_tile_update_row_splittable), and how
 * many arrays the update writes (rpu_tile_update_arrays). */
typedef struct {
    bool batch_split, summable, x_all;
    int split, arrays;
} config_props;

/* The properties of cfg for a layer of parameters p (errors: those of rpu_tile_create). */
rpu_status rpu_conv_config_props(const rpu_conv_params *p, const rpu_config *cfg, config_props *c);

#endif
