/* rpusim — splitting a layer's logical weight matrix onto a grid of tiles (aihwkit's
 * mapped layers, spec §1.3) and assigning the tiles to ranks.
 *
 * Pure functions of their arguments: no MPI, no numerics, nothing collective, no global
 * state (safe from any thread on distinct grids). Failures return an rpu_status and leave
 * a message for rpu_last_error(). */
#ifndef RPUSIM_MAPPING_H
#define RPUSIM_MAPPING_H

#include <stdint.h>

#include "rpusim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* aihwkit's get_split_sizes(size, split_max_size, group_size): splits `size` elements, in
 * units of group_size, into chunks of at most split_max_size elements, balanced, larger
 * chunks first:
 *     n_units = size / group_size, max_units = split_max_size / group_size,
 *     n = ceil(n_units / max_units), chunk k = n_units / n + (k < n_units % n).
 * Writes the chunk sizes IN UNITS (size/group_size units in all) into out[0..*count) (at
 * most max_out). split_max_size <= 0: one chunk of all units. out may be NULL (with any
 * max_out) to ask for the count only.
 * Errors: RPU_ERR_MODULE when group_size > split_max_size > 0 ("tile size too small to fit
 * a single kernel: 9 > 8"), RPU_ERR_ARG for a NULL count, size or group_size < 1, size not
 * a multiple of group_size, or more than max_out chunks (with out not NULL). On error
 * *count (if count is not NULL) is 0. Local (pure). */
rpu_status rpu_split_sizes(int size, int split_max_size, int group_size, int *out, int max_out,
                           int *count);

/* One tile of a layer's grid. */
typedef struct {
    int group;           /* convolution group */
    int in_split;        /* index i of the input split */
    int out_split;       /* index j of the output split */
    int in_ch0, in_ch;   /* first input channel (within the group) and channel count */
    int out_ch0, out_ch; /* first output channel (within the group) and count */
    int rows, cols;      /* tile shape: out_ch x (in_ch * kernel_elems (+1 analog bias)) */
    int owner;           /* rank that owns the tile */
} rpu_tile_slot;

/* The tile grid of a mapped layer: groups x in_splits x out_splits tiles, tile index
 * t = (group * n_in + i) * n_out + j. Every group has the same splits. */
typedef struct {
    int groups, n_in, n_out, n_tiles;
    int kernel_elems;     /* prod(kernel) */
    int in_per_group;     /* input channels per group */
    int out_per_group;    /* output channels per group */
    int analog_bias;      /* 1: an extra input column on the tiles of in_split 0 */
    rpu_tile_slot *tiles; /* n_tiles entries (malloc'ed) */
} rpu_tile_grid;

/* Builds the grid of a layer (aihwkit's mapped layer, spec §1.3, extended to groups):
 * per group, in_channels/groups channels of kernel_elems columns each are split by
 * max_input_size in whole channels (rpu_split_sizes(in_per_group * kernel_elems,
 * max_input_size, kernel_elems)), and out_channels/groups output channels by
 * max_output_size (unit 1). Tile (g, i, j) has rows = out_sizes[j] and
 * cols = in_sizes[i] * kernel_elems, plus one column (the analog bias input, driven by 1)
 * on the tiles of in_split 0 when analog_bias is 1; that column is not counted against
 * max_input_size. Owners for `ranks` ranks by rpu_assign_owners. A linear layer is
 * groups = 1, kernel_elems = 1.
 * Inputs: channel counts >= 1 and divisible by groups >= 1, kernel_elems >= 1,
 * analog_bias 0 or 1, ranks >= 1, grid (output; its previous contents are not freed).
 * Errors: as rpu_split_sizes (RPU_ERR_MODULE: "tile size too small to fit a single kernel:
 * K > M"), RPU_ERR_ARG for the inputs above or a tile wider than INT_MAX columns,
 * RPU_ERR_NOMEM. On error *grid is zeroed (tiles NULL), so rpu_tile_grid_free is safe.
  * Local (pure). */
rpu_status rpu_tile_grid_build(int in_channels, int out_channels, int groups, int kernel_elems,
                               int analog_bias, int max_input_size, int max_output_size, int ranks,
                               rpu_tile_grid *grid);

/* Frees grid->tiles and zeroes *grid; accepts NULL and a zeroed grid. Local. */
void rpu_tile_grid_free(rpu_tile_grid *grid);

/* Work of one tile: rows x cols (its cells; every tile of a layer sees the same number of
 * patch vectors, so cells x patches orders the tiles the same way). Local (pure). */
int64_t rpu_tile_work(const rpu_tile_slot *tile);

/* Order of tiles of equal work in rpu_assign_owners: (group, out_split, in_split), so that
 * equal tiles of one output split are dealt round-robin and the tiles of one input split
 * (which share their input patches) tend to land on the same rank. Local (pure). */
int rpu_tile_tie_key(const rpu_tile_grid *grid, int t);

/* Assigns owners by longest-processing-time-first: tiles sorted by work (descending; ties:
 * lower rpu_tile_tie_key first) go one by one to the rank with the least work so far (ties:
 * lowest rank). A pure function of the grid's tile shapes and the rank count; afterwards
 * max rank work - min rank work <= the largest tile's work. Ranks beyond the tile count
 * own nothing.
 * Errors: RPU_ERR_ARG for a NULL grid or ranks < 1, RPU_ERR_NOMEM (owners unchanged).
  * Local (pure). */
rpu_status rpu_assign_owners(rpu_tile_grid *grid, int ranks);

/* Cells (sum of rows x cols) of all tiles of the grid. 0 for NULL. Local (pure). */
int64_t rpu_tile_grid_cells(const rpu_tile_grid *grid);

/* Per-rank totals of the current owners: cells[r] (sum of rows x cols) and tiles[r] (tile
 * count) for r in [0, ranks); either output may be NULL. For reports (`rpusim map`) and
 * tests. Errors: RPU_ERR_ARG for a NULL grid, ranks < 1, or a tile whose owner is outside
 * [0, ranks) (outputs then unspecified). Local (pure). */
rpu_status rpu_tile_grid_rank_cells(const rpu_tile_grid *grid, int ranks, int64_t *cells,
                                    int *tiles);

/* Rotates the owners by `offset` (owner <- (owner + offset) mod ranks). Layers call it
 * with their layer id, so that a network's small single-tile layers do not all land on
 * rank 0; still a pure function of (grid, ranks, layer id). Local (pure). */
void rpu_rotate_owners(rpu_tile_grid *grid, int ranks, uint32_t offset);

#ifdef __cplusplus
}
#endif
#endif
