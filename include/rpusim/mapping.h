/* rpusim — splitting a layer's logical weight matrix onto a grid of tiles and assigning the
 * tiles to ranks. Two split rules (rpu_split): aihwkit 1.0's mapped layers (spec §1.3) and
 * aihwkit 1.1's TileModuleArray.
 *
 * Pure functions of their arguments: no MPI, no numerics, nothing collective, no global
 * state (safe from any thread on distinct grids). Failures return an rpu_status and leave
 * a message for rpu_last_error(). */
#ifndef RPUSIM_MAPPING_H
#define RPUSIM_MAPPING_H

#include <stdbool.h>
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

/* How a layer's input columns (the unfolded patch of one group: in_channels/groups
 * channels of kernel_elems columns each, column c * kernel_elems + kernel position, as
 * torch's unfold orders them) are split onto tiles. Outputs are split the same way by both
 * (rpu_split_sizes(out_channels/groups, max_output_size, 1)).
 *
 * RPU_SPLIT_MAPPED (0, the default): aihwkit 1.0's AnalogConvNdMapped / AnalogLinearMapped
 *   (spec §1.3): whole channels (kernel blocks) per tile, rpu_split_sizes(in_features,
 *   max_input_size, kernel_elems); a kernel larger than max_input_size is an error.
 * RPU_SPLIT_TILE_ARRAY (1): aihwkit 1.1's TileModuleArray, behind AnalogConv1d/2d/3d and
 *   AnalogLinear when a layer exceeds the tile size (convert_to_analog): the raw column
 *   count in_features = in_channels/groups * kernel_elems is split evenly with no regard to
 *   kernel blocks, n = ceil(in_features / max_input_size) tiles, the first
 *   in_features % n of them one column wider (rpu_split_sizes(in_features, max_input_size,
 *   1)). A tile then covers an arbitrary column range [col0, col0 + ncol) of the patch and
 *   may cut a channel's kernel block. Example: in 4 channels, 3x3 kernel (36 columns),
 *   max_input_size 16: n = 3, columns [12, 12, 12] = channels 0-1 (0..11), 1-2 (12..23),
 *   2-3 (24..35); the mapped split gives [1, 1, 1, 1] channels (9 columns each). aihwkit
 *   1.1 allows only groups = 1 in AnalogConvNd; rpusim applies the rule per group. Its
 *   array always keeps the bias digital: with more than one tile the grid refuses an
 *   analog bias (rpu_bias_for_split gives aihwkit's choice). */
typedef enum { RPU_SPLIT_MAPPED = 0, RPU_SPLIT_TILE_ARRAY = 1 } rpu_split;

/* "mapped" / "tile_array" ("?" for other values). Local (pure). */
const char *rpu_split_name(rpu_split split);
/* The split named s ("mapped" or "tile_array"). Errors: RPU_ERR_ARG (NULL, other names;
 * the message lists the accepted ones). Local (pure). */
rpu_status rpu_split_parse(const char *s, rpu_split *split);

/* aihwkit 1.1's choice between one tile and a TileModuleArray
 * (MappableRPU.get_default_tile_module_class): an array exactly when max_input_size and
 * max_output_size are not both <= 0 and max_input_size < in_features or max_output_size <
 * out_features (so max_input_size 0 with max_output_size > 0 is an array of one tile).
 * Local (pure). */
bool rpu_tile_array_used(int in_features, int out_features, int max_input_size,
                         int max_output_size);

/* One tile of a layer's grid. */
typedef struct {
    int group;           /* convolution group */
    int in_split;        /* index i of the input split */
    int out_split;       /* index j of the output split */
    int in_ch0, in_ch;   /* input channels (within the group) the tile's columns touch:
                            first and count (mapped: exactly its channels) */
    int out_ch0, out_ch; /* first output channel (within the group) and count */
    int col0, ncol;      /* the tile's columns of its group's unfolded patch (without the
                            analog bias column): [col0, col0 + ncol); mapped: in_ch0 *
                            kernel_elems and in_ch * kernel_elems */
    int rows, cols;      /* tile shape: out_ch x (ncol (+1 analog bias on in_split 0)) */
    int owner;           /* rank that owns the tile (writes it to checkpoints) */
    int holders;         /* ranks holding a copy of the tile: owner, owner + 1, ...
                            (mod ranks); > 1 when there are more ranks than tiles
                            (rpu_assign_owners) or when every rank holds every tile
                            (rpu_hold_everywhere). The holders split each batch's forward and
                            backward and keep identical state (DESIGN.md). */
} rpu_tile_slot;

/* The tile grid of a layer: groups x in_splits x out_splits tiles, tile index
 * t = (group * n_in + i) * n_out + j. Every group has the same splits. */
typedef struct {
    int groups, n_in, n_out, n_tiles;
    int kernel_elems;     /* prod(kernel) */
    int in_per_group;     /* input channels per group */
    int out_per_group;    /* output channels per group */
    int analog_bias;      /* 1: an extra input column on the tiles of in_split 0 */
    rpu_split split;      /* the rule the input columns were split by */
    int in_share;         /* most input splits whose columns touch one input channel (1 for
                             the mapped split; > 1 when the tile array cuts a kernel block) */
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

/* rpu_tile_grid_build with a choice of split rule (RPU_SPLIT_MAPPED: the same grid as
 * rpu_tile_grid_build). RPU_SPLIT_TILE_ARRAY: per group, in_features = in_channels/groups *
 * kernel_elems columns split by rpu_split_sizes(in_features, max_input_size, 1); tile
 * (g, i, j) covers columns [col0, col0 + ncol) = the i-th chunk (cols = ncol, + 1 analog
 * bias column on in_split 0 if analog_bias and the grid has one tile), in_ch0/in_ch the
 * channels those columns touch. No kernel-size error: any max_input_size >= 1 fits.
 * Errors: as rpu_tile_grid_build; RPU_ERR_ARG for an unknown split; RPU_ERR_MODULE for an
 * analog bias on a tile array of more than one tile ("... keeps the bias digital"). Local
 * (pure). */
rpu_status rpu_tile_grid_build_split(rpu_split split, int in_channels, int out_channels, int groups,
                                     int kernel_elems, int analog_bias, int max_input_size,
                                     int max_output_size, int ranks, rpu_tile_grid *grid);

/* Frees grid->tiles and zeroes *grid; accepts NULL and a zeroed grid. Local. */
void rpu_tile_grid_free(rpu_tile_grid *grid);

/* Work of one tile: rows x cols (its cells; every tile of a layer sees the same number of
 * patch vectors, so cells x patches orders the tiles the same way). Local (pure). */
int64_t rpu_tile_work(const rpu_tile_slot *tile);

/* Order of tiles of equal work in rpu_assign_owners: (group, out_split, in_split), so that
 * equal tiles of one output split are dealt round-robin and the tiles of one input split
 * (which share their input patches) tend to land on the same rank. Local (pure). */
int rpu_tile_tie_key(const rpu_tile_grid *grid, int t);

/* Assigns owners (and holders). With ranks <= tiles, by longest-processing-time-first:
 * tiles sorted by work (descending; ties: lower rpu_tile_tie_key first) go one by one to
 * the rank with the least work so far (ties: lowest rank); every tile has one holder, its
 * owner; max rank work - min rank work <= the largest tile's work. With more ranks than
 * tiles every rank works: each tile starts with one holder, and each further rank goes to
 * the tile with the most work per holder (ties: lower tie key), so holders are in
 * proportion to work; the tiles then take consecutive rank ranges in tile order (owner =
 * first rank of the range). A pure function of the grid's tile shapes and the rank count.
 * Errors: RPU_ERR_ARG for a NULL grid or ranks < 1, RPU_ERR_NOMEM (owners unchanged).
 * Local (pure). */
rpu_status rpu_assign_owners(rpu_tile_grid *grid, int ranks);

/* Cells (sum of rows x cols) of all tiles of the grid. 0 for NULL. Local (pure). */
int64_t rpu_tile_grid_cells(const rpu_tile_grid *grid);

/* Per-rank totals of the tiles each rank holds (its own and, with holders > 1, the copies):
 * cells[r] (sum of rows x cols) and tiles[r] (tile count) for r in [0, ranks); either
 * output may be NULL. For reports (`rpusim map`) and
 * tests. Errors: RPU_ERR_ARG for a NULL grid, ranks < 1, or a tile whose owner is outside
 * [0, ranks) (outputs then unspecified). Local (pure). */
rpu_status rpu_tile_grid_rank_cells(const rpu_tile_grid *grid, int ranks, int64_t *cells,
                                    int *tiles);

/* Index of `rank` among the holders of tile s (0 = the owner), or -1 if it holds no copy.
 * Local (pure). */
int rpu_tile_holder_index(const rpu_tile_slot *s, int rank, int ranks);

/* Rotates the owners by `offset` (owner <- (owner + offset) mod ranks; holders follow). Layers call
 * it with their layer id, so that a network's small single-tile layers do not all land on rank 0;
 * still a pure function of (grid, ranks, layer id). Local (pure). */
void rpu_rotate_owners(rpu_tile_grid *grid, int ranks, uint32_t offset);

/* Every tile held by every one of `ranks` ranks (holders = ranks; owners unchanged): the
 * data-parallel placement of a layer whose holders split the batch and add their gradients
 * exactly (rpu_conv_placement decides when). Each rank then computes every tile for its own
 * share of the batch, so the tiles' partial results are summed where they are made instead
 * of being reduced across ranks. Local (pure). */
void rpu_hold_everywhere(rpu_tile_grid *grid, int ranks);

/* A vector's own work in a pulsed update (its maxima, train length, draws and skip test),
 * counted in cells of a row, for rpu_update_owners' estimates. */
#define RPU_UPDATE_VECTOR_CELLS 40

/* Who updates each tile of a network whose pulsed updates split among holders (every
 * analog layer's tiles held by several ranks, rows splittable: rpu_conv_update_splits).
 * Layer k of n_layers has grids[k] (NULL: not an analog layer, skipped) placed on `ranks`
 * ranks and an update of vectors[k] vectors (batch x output positions); owners[k][t]
 * becomes the holder index (rpu_tile_holder_index) that updates tile t whole, or -1 where
 * every holder updates its rows (as rpu_conv_update_begin takes them). Either every tile
 * goes whole to one of its holders, dealt largest first (work M (RPU_UPDATE_VECTOR_CELLS +
 * rows + cols) for M vectors; ties: the first tile) to the holder with the least work so
 * far (ties: the lowest rank), or every tile is split by rows (each holder M
 * (RPU_UPDATE_VECTOR_CELLS + (rows + cols) / holders): the vectors' own work repeats on
 * every holder), whichever leaves the busiest rank less work (ties: the split). A network
 * of few tiles per layer, such as the LeNet-5 on 2 ranks, gains when its layers' updates
 * run side by side. A pure function of the grids' shapes and holders, the vectors and the
 * rank count, so every rank computes the same. Errors: RPU_ERR_ARG (NULL arrays,
 * n_layers < 0, ranks < 1), RPU_ERR_NOMEM. Local (pure). */
rpu_status rpu_update_owners(const rpu_tile_grid *const *grids, const int64_t *vectors,
                             int n_layers, int ranks, int *const *owners);

#ifdef __cplusplus
}
#endif
#endif
