/* Where a mapped layer's tiles go (layer.h rpu_conv_placement): the grid of its split rule,
 * one holder per tile and spare ranks as extra holders (mapping.h rpu_assign_owners), every
 * tile on every rank for a data-parallel layer (rpu_hold_everywhere), owners rotated by
 * layer id. layer.c creates its tiles on this placement; the plans (layer_plan.c) and the
 * reports (rpusim map, bench scale) read it. */
#include "rpusim/layer.h"
#include "rpusim/tile.h"

#include "error_impl.h"
#include "placement_impl.h"

#include <string.h>

/* Kernel elements of p (1 for a linear layer). */
static int kernel_elems(const rpu_conv_params *p) {
    int K = 1;
    for (int a = 0; a < p->ndim; ++a)
        K *= p->kernel[a];
    return K;
}

static rpu_status config_props_of(const rpu_conv_params *p, const rpu_config *cfg,
                                  config_props *c) {
    rpu_tile_params tp = {.out_size = 2, .in_size = 2, .seed = 1, .mac = p->mac};
    rpu_tile *probe = NULL;
    RPU_CHECK(rpu_tile_create(&tp, cfg, &probe));
    float *a[8];
    c->batch_split = rpu_tile_batch_splittable(probe);
    c->split = rpu_tile_update_row_splittable(probe);
    c->row_block = rpu_tile_update_row_block(probe);
    c->summable = rpu_tile_update_summable(probe);
    c->x_all = rpu_tile_forward_reads_all(probe);
    c->arrays = rpu_tile_update_arrays(probe, a, 8);
    rpu_tile_destroy(&probe);
    return RPU_OK;
}

/* Whether a layer's tiles go to every rank (rpu_hold_everywhere) rather than one holder
 * each: a convolution of several tiles (a single tile already has every spare rank as a
 * holder) whose holders split the batch (batch_split, a forward that reads only the
 * computed vectors) and add their gradients exactly (summable: floating point). Each rank
 * then runs every tile on its share of the batch: no partial output or input gradient
 * crosses ranks, and the update adds each tile's gradient over the ranks (an allreduce of
 * its cells), where one holder per tile reduces the whole batch's outputs and input
 * gradients (batch x channels x positions int64 each way). */
static bool replicates(const rpu_conv_params *p, const config_props *c, int n_tiles, int ranks) {
    return ranks > 1 && n_tiles > 1 && p->ndim >= 1 && c->batch_split && !c->x_all && c->summable;
}

rpu_status rpu_conv_place(const rpu_conv_params *p, const rpu_config *cfg, int ranks,
                          rpu_tile_grid *grid, config_props *c) {
    if (!grid) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_placement: grid is NULL");
    memset(grid, 0, sizeof *grid);
    if (!p || !cfg) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_placement: params or config is NULL");
    if (ranks < 1) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_placement: ranks %d < 1", ranks);
    if (p->ndim < 0 || p->ndim > 3)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_placement: ndim %d is not 0..3", p->ndim);
    for (int a = 0; a < p->ndim; ++a)
        if (p->kernel[a] < 1)
            return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_placement: kernel %d in dimension %d < 1",
                            p->kernel[a], a);
    /* as conv_create: the grid for the communicator's size, owners rotated by layer id */
    RPU_CHECK(rpu_tile_grid_build_split(p->split, p->in_channels, p->out_channels, p->groups,
                                        kernel_elems(p), p->bias == RPU_BIAS_ANALOG,
                                        cfg->mapping.max_input_size, cfg->mapping.max_output_size,
                                        ranks, grid));
    const rpu_status s = config_props_of(p, cfg, c);
    if (s != RPU_OK) {
        rpu_tile_grid_free(grid);
        return s;
    }
    if (replicates(p, c, grid->n_tiles, ranks)) rpu_hold_everywhere(grid, ranks);
    rpu_rotate_owners(grid, ranks, p->layer_id);
    return RPU_OK;
}

rpu_status rpu_conv_placement(const rpu_conv_params *p, const rpu_config *cfg, int ranks,
                              rpu_tile_grid *grid) {
    config_props c;
    return rpu_conv_place(p, cfg, ranks, grid, &c);
}
