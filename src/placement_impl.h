/* Private to the library: the properties of a layer's config that decide where its tiles
 * go and which messages it sends (placement.c; used by layer.c and layer_plan.c). */
#ifndef RPUSIM_PLACEMENT_IMPL_H
#define RPUSIM_PLACEMENT_IMPL_H

#include "rpusim/layer.h"

#include <stdbool.h>

/* Asked of a small tile of the config: whether a tile's holders split the batch
 * (rpu_tile_batch_splittable), whether its forward reads every vector
 * (rpu_tile_forward_reads_all), whether its update is an exact sum
 * (rpu_tile_update_summable) or splits by rows (rpu_tile_update_row_splittable) and in
 * blocks of how many (rpu_tile_update_row_block), and how many arrays the update writes
 * (rpu_tile_update_arrays). */
typedef struct {
    bool batch_split, summable, x_all;
    int split, row_block, arrays;
} config_props;

/* rpu_conv_placement that also gives the properties of cfg it decided by (*c; errors also
 * those of rpu_tile_create), so that a plan asks the config once. */
rpu_status rpu_conv_place(const rpu_conv_params *p, const rpu_config *cfg, int ranks,
                          rpu_tile_grid *grid, config_props *c);

#endif
