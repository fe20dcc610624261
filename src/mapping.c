/* Tile grids of layers (the mapped split of spec §1.3 and aihwkit 1.1's tile array) and
 * their assignment to ranks. */
#include "rpusim/mapping.h"

#include "error_impl.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

rpu_status rpu_split_sizes(int size, int split_max_size, int group_size, int *out, int max_out,
                           int *count) {
    if (!count) return RPU_FAIL(RPU_ERR_ARG, "rpu_split_sizes: count is NULL");
    *count = 0;
    if (size < 1 || group_size < 1)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_split_sizes: size %d and group size %d must be >= 1",
                        size, group_size);
    if (size % group_size != 0)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_split_sizes: size %d is not a multiple of group size %d",
                        size, group_size);
    const int n_units = size / group_size;
    int n_splits = 1;
    if (split_max_size > 0) {
        if (group_size > split_max_size)
            return RPU_FAIL(RPU_ERR_MODULE, "tile size too small to fit a single kernel: %d > %d",
                            group_size, split_max_size);
        const int max_units = split_max_size / group_size;
        n_splits = n_units / max_units + (n_units % max_units != 0);
    }
    if (out) {
        if (n_splits > max_out)
            return RPU_FAIL(RPU_ERR_ARG, "rpu_split_sizes: %d chunks do not fit in %d", n_splits,
                            max_out);
        const int base = n_units / n_splits, extra = n_units % n_splits;
        for (int k = 0; k < n_splits; ++k)
            out[k] = base + (k < extra);
    }
    *count = n_splits;
    return RPU_OK;
}

int64_t rpu_tile_work(const rpu_tile_slot *tile) {
    return tile ? (int64_t)tile->rows * tile->cols : 0;
}

int64_t rpu_tile_grid_cells(const rpu_tile_grid *grid) {
    int64_t cells = 0;
    if (grid && grid->tiles)
        for (int t = 0; t < grid->n_tiles; ++t)
            cells += rpu_tile_work(&grid->tiles[t]);
    return cells;
}

void rpu_tile_grid_free(rpu_tile_grid *grid) {
    if (!grid) return;
    free(grid->tiles);
    memset(grid, 0, sizeof *grid);
}

/* ------------------------------------------------------------------ owners (LPT) */

typedef struct {
    int64_t work;
    int key; /* tie order: (group, out_split, in_split) */
    int tile;
} work_item;

/* Larger work first; equal work: lower tile index first (a total order, so qsort's
 * instability does not matter). */
static int cmp_work_desc(const void *pa, const void *pb) {
    const work_item *a = pa, *b = pb;
    if (a->work != b->work) return a->work > b->work ? -1 : 1;
    return (a->key > b->key) - (a->key < b->key);
}

/* Min-heap of ranks ordered by (load, rank): the root is the least loaded rank, the lowest
 * one among equals — the same choice as a linear scan over the ranks. */
typedef struct {
    int64_t load;
    int rank;
} rank_load;

static int rank_before(const rank_load *a, const rank_load *b) {
    return a->load < b->load || (a->load == b->load && a->rank < b->rank);
}

static void heap_sift_down(rank_load *h, int n, int k) {
    for (;;) {
        int best = k, l = 2 * k + 1, r = l + 1;
        if (l < n && rank_before(&h[l], &h[best])) best = l;
        if (r < n && rank_before(&h[r], &h[best])) best = r;
        if (best == k) return;
        rank_load tmp = h[k];
        h[k] = h[best];
        h[best] = tmp;
        k = best;
    }
}

int rpu_tile_tie_key(const rpu_tile_grid *grid, int t) {
    const rpu_tile_slot *s = &grid->tiles[t];
    return (s->group * grid->n_out + s->out_split) * grid->n_in + s->in_split;
}

/* More ranks than tiles: holders in proportion to work (the highest work per holder gets
 * the next rank; ties: lower tie key), consecutive rank ranges in tile order. */
static rpu_status assign_holders(rpu_tile_grid *grid, int ranks) {
    const int n = grid->n_tiles;
    for (int extra = ranks - n; extra > 0; --extra) {
        int best = 0;
        for (int t = 1; t < n; ++t) {
            /* work[t] / holders[t] > work[best] / holders[best], in integers (work is cells) */
            const rpu_tile_slot *a = &grid->tiles[t], *b = &grid->tiles[best];
            const int64_t lhs = rpu_tile_work(a) * b->holders;
            const int64_t rhs = rpu_tile_work(b) * a->holders;
            if (lhs > rhs ||
                (lhs == rhs && rpu_tile_tie_key(grid, t) < rpu_tile_tie_key(grid, best)))
                best = t;
        }
        grid->tiles[best].holders++;
    }
    int next = 0;
    for (int t = 0; t < n; ++t) {
        grid->tiles[t].owner = next;
        next += grid->tiles[t].holders;
    }
    return RPU_OK;
}

int rpu_tile_holder_index(const rpu_tile_slot *s, int rank, int ranks) {
    if (!s || ranks < 1 || rank < 0 || rank >= ranks) return -1;
    const int m = ((rank - s->owner) % ranks + ranks) % ranks;
    return m < (s->holders > 0 ? s->holders : 1) ? m : -1;
}

rpu_status rpu_assign_owners(rpu_tile_grid *grid, int ranks) {
    if (!grid || (!grid->tiles && grid->n_tiles > 0) || grid->n_tiles < 0)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_assign_owners: no grid");
    if (ranks < 1) return RPU_FAIL(RPU_ERR_ARG, "rpu_assign_owners: ranks %d < 1", ranks);
    const int n = grid->n_tiles;
    if (n == 0) return RPU_OK;
    for (int t = 0; t < n; ++t)
        grid->tiles[t].holders = 1;
    if (ranks > n) return assign_holders(grid, ranks);
    /* Only the min(ranks, n) lowest ranks can ever receive a tile: while a rank without
     * work exists, the lowest such rank is chosen, so ranks >= n stay idle. */
    const int active = ranks < n ? ranks : n;
    work_item *items = malloc(sizeof *items * (size_t)n);
    rank_load *heap = malloc(sizeof *heap * (size_t)active);
    if (!items || !heap) {
        free(items);
        free(heap);
        return RPU_FAIL(RPU_ERR_NOMEM, "rpu_assign_owners: out of memory for %d tiles", n);
    }
    for (int t = 0; t < n; ++t)
        items[t] = (work_item){rpu_tile_work(&grid->tiles[t]), rpu_tile_tie_key(grid, t), t};
    qsort(items, (size_t)n, sizeof *items, cmp_work_desc);
    for (int r = 0; r < active; ++r)
        heap[r] = (rank_load){0, r}; /* already a valid heap */
    for (int k = 0; k < n; ++k) {
        grid->tiles[items[k].tile].owner = heap[0].rank;
        heap[0].load += items[k].work;
        heap_sift_down(heap, active, 0);
    }
    free(items);
    free(heap);
    return RPU_OK;
}

rpu_status rpu_tile_grid_rank_cells(const rpu_tile_grid *grid, int ranks, int64_t *cells,
                                    int *tiles) {
    if (!grid || (!grid->tiles && grid->n_tiles > 0))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_grid_rank_cells: no grid");
    if (ranks < 1) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_grid_rank_cells: ranks %d < 1", ranks);
    if (cells) memset(cells, 0, sizeof *cells * (size_t)ranks);
    if (tiles) memset(tiles, 0, sizeof *tiles * (size_t)ranks);
    for (int t = 0; t < grid->n_tiles; ++t) {
        const rpu_tile_slot *s = &grid->tiles[t];
        if (s->owner < 0 || s->owner >= ranks)
            return RPU_FAIL(RPU_ERR_ARG,
                            "rpu_tile_grid_rank_cells: tile %d owned by rank %d, "
                            "outside [0, %d)",
                            t, s->owner, ranks);
        const int h = s->holders > 1 ? (s->holders < ranks ? s->holders : ranks) : 1;
        for (int m = 0; m < h; ++m) { /* every holder holds the whole tile */
            const int r = (s->owner + m) % ranks;
            if (cells) cells[r] += rpu_tile_work(s);
            if (tiles) tiles[r] += 1;
        }
    }
    return RPU_OK;
}

/* ------------------------------------------------------------------ grid */

const char *rpu_split_name(rpu_split split) {
    switch (split) {
    case RPU_SPLIT_MAPPED:
        return "mapped";
    case RPU_SPLIT_TILE_ARRAY:
        return "tile_array";
    }
    return "?";
}

rpu_status rpu_split_parse(const char *s, rpu_split *split) {
    if (!s || !split) return RPU_FAIL(RPU_ERR_ARG, "rpu_split_parse: NULL argument");
    if (!strcmp(s, "mapped"))
        *split = RPU_SPLIT_MAPPED;
    else if (!strcmp(s, "tile_array"))
        *split = RPU_SPLIT_TILE_ARRAY;
    else
        return RPU_FAIL(RPU_ERR_ARG, "unknown split '%.64s' (want mapped or tile_array)", s);
    return RPU_OK;
}

bool rpu_tile_array_used(int in_features, int out_features, int max_input_size,
                         int max_output_size) {
    if (max_input_size <= 0 && max_output_size <= 0) return false;
    return max_input_size < in_features || max_output_size < out_features;
}

rpu_status rpu_tile_grid_build(int in_channels, int out_channels, int groups, int kernel_elems,
                               int analog_bias, int max_input_size, int max_output_size, int ranks,
                               rpu_tile_grid *grid) {
    return rpu_tile_grid_build_split(RPU_SPLIT_MAPPED, in_channels, out_channels, groups,
                                     kernel_elems, analog_bias, max_input_size, max_output_size,
                                     ranks, grid);
}

rpu_status rpu_tile_grid_build_split(rpu_split split, int in_channels, int out_channels, int groups,
                                     int kernel_elems, int analog_bias, int max_input_size,
                                     int max_output_size, int ranks, rpu_tile_grid *grid) {
    if (!grid) return RPU_FAIL(RPU_ERR_ARG, "rpu_tile_grid_build: grid is NULL");
    memset(grid, 0, sizeof *grid);
    if (split != RPU_SPLIT_MAPPED && split != RPU_SPLIT_TILE_ARRAY)
        return RPU_FAIL(RPU_ERR_ARG, "tile grid: unknown split %d (mapped or tile_array)",
                        (int)split);
    if (in_channels < 1 || out_channels < 1 || groups < 1 || kernel_elems < 1)
        return RPU_FAIL(RPU_ERR_ARG,
                        "tile grid: in_channels %d, out_channels %d, groups %d and kernel "
                        "elements %d must be >= 1",
                        in_channels, out_channels, groups, kernel_elems);
    if (in_channels % groups != 0 || out_channels % groups != 0)
        return RPU_FAIL(RPU_ERR_ARG,
                        "tile grid: in_channels %d and out_channels %d must be divisible by "
                        "groups %d",
                        in_channels, out_channels, groups);
    if (analog_bias != 0 && analog_bias != 1)
        return RPU_FAIL(RPU_ERR_ARG, "tile grid: analog_bias %d is not 0 or 1", analog_bias);
    if (ranks < 1) return RPU_FAIL(RPU_ERR_ARG, "tile grid: ranks %d < 1", ranks);
    const int in_pg = in_channels / groups, out_pg = out_channels / groups;
    const int64_t in_features = (int64_t)in_pg * kernel_elems;
    if (in_features + analog_bias > INT_MAX)
        return RPU_FAIL(RPU_ERR_ARG, "tile grid: %d channels x %d kernel elements is too large",
                        in_pg, kernel_elems);
    /* the split's unit: whole kernel blocks (mapped) or single columns (tile array) */
    const int unit = split == RPU_SPLIT_MAPPED ? kernel_elems : 1;

    int n_in = 0, n_out = 0;
    RPU_CHECK(rpu_split_sizes((int)in_features, max_input_size, unit, NULL, 0, &n_in));
    RPU_CHECK(rpu_split_sizes(out_pg, max_output_size, 1, NULL, 0, &n_out));
    const int64_t n_tiles = (int64_t)groups * n_in * n_out;
    if (n_tiles > INT_MAX)
        return RPU_FAIL(RPU_ERR_ARG, "tile grid: %lld tiles are too many", (long long)n_tiles);
    if (split == RPU_SPLIT_TILE_ARRAY && analog_bias && (int64_t)n_in * n_out > 1)
        return RPU_FAIL(RPU_ERR_MODULE,
                        "tile grid: the tile_array split of %d x %d tiles per group keeps the "
                        "bias digital (aihwkit's TileModuleArray); an analog bias needs a single "
                        "tile",
                        n_in, n_out);

    int *in_sizes = malloc(sizeof *in_sizes * (size_t)n_in);
    int *out_sizes = malloc(sizeof *out_sizes * (size_t)n_out);
    rpu_tile_slot *tiles = calloc((size_t)n_tiles, sizeof *tiles);
    rpu_status st = RPU_OK;
    int cnt = 0;
    if (!in_sizes || !out_sizes || !tiles) {
        st = RPU_FAIL(RPU_ERR_NOMEM, "tile grid: out of memory for %lld tiles", (long long)n_tiles);
        goto fail;
    }
    st = rpu_split_sizes((int)in_features, max_input_size, unit, in_sizes, n_in, &cnt);
    if (st == RPU_OK) st = rpu_split_sizes(out_pg, max_output_size, 1, out_sizes, n_out, &cnt);
    if (st != RPU_OK) goto fail;

    /* in_sizes are in units: columns = units * unit */
    int in_share = 1;
    for (int g = 0; g < groups; ++g) {
        int col0 = 0;
        for (int i = 0; i < n_in; ++i) {
            const int ncol = in_sizes[i] * unit;
            const int ch0 = col0 / kernel_elems, ch1 = (col0 + ncol - 1) / kernel_elems;
            int out0 = 0;
            for (int j = 0; j < n_out; ++j) {
                rpu_tile_slot *s = &tiles[((int64_t)g * n_in + i) * n_out + j];
                s->group = g;
                s->in_split = i;
                s->out_split = j;
                s->in_ch0 = ch0;
                s->in_ch = ch1 - ch0 + 1;
                s->col0 = col0;
                s->ncol = ncol;
                s->out_ch0 = out0;
                s->out_ch = out_sizes[j];
                s->rows = out_sizes[j];
                s->cols = ncol + (i == 0 ? analog_bias : 0);
                s->owner = 0;
                s->holders = 1;
                out0 += out_sizes[j];
            }
            col0 += ncol;
        }
    }
    /* most input splits touching one channel: a channel's first and last columns' splits
     * (the splits are contiguous and in order) */
    for (int c = 0, i0 = 0, i1 = 0; c < in_pg; ++c) {
        const int64_t first = (int64_t)c * kernel_elems, last = first + kernel_elems - 1;
        while (tiles[(int64_t)i0 * n_out].col0 + tiles[(int64_t)i0 * n_out].ncol <= first)
            ++i0;
        if (i1 < i0) i1 = i0;
        while (tiles[(int64_t)i1 * n_out].col0 + tiles[(int64_t)i1 * n_out].ncol <= last)
            ++i1;
        if (i1 - i0 + 1 > in_share) in_share = i1 - i0 + 1;
    }
    grid->groups = groups;
    grid->n_in = n_in;
    grid->n_out = n_out;
    grid->n_tiles = (int)n_tiles;
    grid->kernel_elems = kernel_elems;
    grid->in_per_group = in_pg;
    grid->out_per_group = out_pg;
    grid->analog_bias = analog_bias;
    grid->split = split;
    grid->in_share = in_share;
    grid->tiles = tiles;
    free(in_sizes);
    free(out_sizes);
    st = rpu_assign_owners(grid, ranks);
    if (st != RPU_OK) rpu_tile_grid_free(grid);
    return st;

fail:
    free(in_sizes);
    free(out_sizes);
    free(tiles);
    return st;
}

void rpu_rotate_owners(rpu_tile_grid *grid, int ranks, uint32_t offset) {
    if (!grid || !grid->tiles || ranks < 1) return;
    const int shift = (int)(offset % (uint32_t)ranks);
    for (int t = 0; t < grid->n_tiles; ++t)
        grid->tiles[t].owner = (grid->tiles[t].owner + shift) % ranks;
}

void rpu_hold_everywhere(rpu_tile_grid *grid, int ranks) {
    if (!grid || !grid->tiles || ranks < 1) return;
    for (int t = 0; t < grid->n_tiles; ++t)
        grid->tiles[t].holders = ranks;
}

/* ------------------------------------------------------------------ update owners */

/* The estimated pulsed-update work of tile ts on m vectors for each of h holders that split
 * it by rows (h 1: the whole tile). */
static double update_work(const rpu_tile_slot *ts, int64_t m, int h) {
    return (double)m * (RPU_UPDATE_VECTOR_CELLS + (double)(ts->rows + ts->cols) / h);
}

rpu_status rpu_update_owners(const rpu_tile_grid *const *grids, const int64_t *vectors,
                             int n_layers, int ranks, int *const *owners) {
    if (!grids || !vectors || !owners || n_layers < 0 || ranks < 1)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_update_owners: NULL arrays, %d layers or %d ranks",
                        n_layers, ranks);
    double *load = (double *)calloc((size_t)ranks, sizeof(double));
    if (!load) return RPU_FAIL(RPU_ERR_NOMEM, "rpu_update_owners: out of memory");
    double split_max = 0, whole_max = 0;
    for (int k = 0; k < n_layers; ++k) { /* the rows split: work per rank */
        const rpu_tile_grid *g = grids[k];
        for (int t = 0; g && t < g->n_tiles; ++t) {
            const rpu_tile_slot *ts = &g->tiles[t];
            owners[k][t] = -1;
            for (int r = 0; r < ranks; ++r)
                if (rpu_tile_holder_index(ts, r, ranks) >= 0)
                    load[r] += update_work(ts, vectors[k], ts->holders);
        }
    }
    for (int r = 0; r < ranks; ++r) {
        split_max = load[r] > split_max ? load[r] : split_max;
        load[r] = 0;
    }
    for (;;) { /* the largest tile not yet dealt (ties: the first), to its least loaded holder */
        const rpu_tile_slot *bs = NULL;
        int bk = -1, bt = -1;
        double bw = -1;
        for (int k = 0; k < n_layers; ++k) {
            const rpu_tile_grid *g = grids[k];
            for (int t = 0; g && t < g->n_tiles; ++t) {
                const double w = update_work(&g->tiles[t], vectors[k], 1);
                if (owners[k][t] == -1 && w > bw) bk = k, bt = t, bw = w, bs = &g->tiles[t];
            }
        }
        if (!bs) break;
        int best = -1, bm = -1;
        for (int r = 0; r < ranks; ++r) {
            const int m = rpu_tile_holder_index(bs, r, ranks);
            if (m >= 0 && (best < 0 || load[r] < load[best])) best = r, bm = m;
        }
        load[best] += bw;
        whole_max = load[best] > whole_max ? load[best] : whole_max;
        owners[bk][bt] = bm;
    }
    free(load);
    if (whole_max < split_max) return RPU_OK;
    for (int k = 0; k < n_layers; ++k) /* the rows split after all */
        for (int t = 0; grids[k] && t < grids[k]->n_tiles; ++t)
            owners[k][t] = -1;
    return RPU_OK;
}
