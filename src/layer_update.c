/* Gradients and the update of a mapped layer (layer.h): the tiles' weight gradients of the
 * last training-mode forward and backward, and the SGD step through the tiles (a summed
 * update added over a tile's holders, a pulsed one split by rows among them). */
#include "fixed_impl.h"
#include "layer_impl.h"

#include <limits.h>

/* Offset of owned tile t's output gradients in dp (the owned tiles' blocks in order). */
static size_t grad_offset(const rpu_conv *l, int t) {
    const size_t M = (size_t)l->n * l->Lout;
    size_t doff = 0;
    for (int u = 0; u < t; ++u)
        if (l->tiles[u]) doff += M * (size_t)l->grid.tiles[u].rows;
    return doff;
}

/* The gradient G [rows, cols] of held tile t with a summable update (rpu_tile_grad_blocks_add):
 * the tile's MAC blocks of the samples this holder contributes, added exactly over the
 * tile's holders (collective on the holders' communicator when there are several: the
 * bound, then the sums; MPI_Allreduce each). The number of blocks and hence the scale
 * depend on the batch and the shape only, so G is the same bits at any rank count. */
static rpu_status summed_grad(const rpu_conv *l, int t, rpu_weight_units units, float *G,
                              int64_t *acc, float *work, float *patches) {
    const rpu_tile_slot *ts = &l->grid.tiles[t];
    const share sh = holder_share(l, t);
    const int L = l->Lout, spb = block_samples(l), block = spb * L;
    const int k0 = sh.s0 * L, k1 = (sh.s1 > sh.s0 ? sh.s1 : sh.s0) * L;
    const float *D = l->dp + grad_offset(l, t);
    const bool shared = ts->holders > 1 && l->have_hcomm;
    if (!G || !patches) acc = NULL; /* reported below, after the holders agree */
    const size_t cells = (size_t)ts->rows * ts->cols;
    double bound = 0;
    rpu_status s = acc && work
                       ? RPU_OK
                       : RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for tile %d's gradient",
                                  l->label, t);
    if (s == RPU_OK) { /* from each sample's maxima, kept when the vectors were made */
        float dm = 0, xm = 0;
        for (int q = sh.s0; q < sh.s1; ++q) {
            const float a = l->dmax[(size_t)t * l->n + q], b = l->xmax[(size_t)t * l->n + q];
            dm = a > dm ? a : dm;
            xm = b > xm ? b : xm;
        }
        bound = rpu_tile_grad_max_bound(k0, k1, block, dm, xm);
    }
    double gmax = bound;
    if (shared) {
        double v[2] = {bound, s != RPU_OK ? 1.0 : 0.0}, g[2];
        const int rc = MPI_Allreduce(v, g, 2, MPI_DOUBLE, MPI_MAX, l->hcomm);
        if (rc != MPI_SUCCESS && s == RPU_OK) s = mpi_fail(rc, "MPI_Allreduce");
        if (s == RPU_OK && g[1] != 0)
            s = RPU_FAIL(RPU_ERR_INTERNAL, "layer %s: another holder of tile %d failed", l->label,
                         t);
        gmax = g[0];
    }
    if (s == RPU_OK && !isfinite(gmax))
        s = RPU_FAIL(RPU_ERR_ARG,
                     "layer %s: non-finite values in tile %d's gradient (NaN or Inf in the input "
                     "or the output gradient)",
                     l->label, t);
    if (s != RPU_OK) return s;
    const int S = rpu_fixed_scale(gmax > 0 ? gmax : 1.0, (l->n + spb - 1) / spb);
    memset(acc, 0, sizeof(int64_t) * cells);
    /* block by block: its patches gathered again from the kept input while its GEMM reads
     * them from cache (the block's sum as one call of the whole range would make it) */
    for (int b0 = k0; b0 < k1 && s == RPU_OK; b0 += block) {
        const int m = (b0 + block < k1 ? b0 + block : k1) - b0;
        rpu_conv_gather_patches(l, t, l->xin, patches, b0 / L, (b0 + m) / L);
        s = tile_error(l, t,
                       rpu_tile_grad_blocks_add(l->tiles[t], patches, D + (size_t)b0 * ts->rows, 0,
                                                m, block, units, rpu_pow2(S), acc, work));
    }
    if (shared) {
        /* a holder that failed here sends zeros: the sums are then wrong on every holder, and
         * the failing one reports */
        const int rc = MPI_Allreduce(MPI_IN_PLACE, acc, (int)cells, MPI_INT64_T, MPI_SUM, l->hcomm);
        if (rc != MPI_SUCCESS && s == RPU_OK) s = mpi_fail(rc, "MPI_Allreduce");
    }
    const float down = rpu_fixed_down(S);
    for (size_t q = 0; q < cells; ++q)
        G[q] = rpu_from_fixed(acc[q], S, down);
    rpu_tile_grad_units(l->tiles[t], units, G);
    return s;
}

/* Floats of a MAC block's patches of tile t. */
static size_t block_patches(const rpu_conv *l, int t) {
    return (size_t)block_samples(l) * l->Lout * l->grid.tiles[t].cols;
}

/* summed_grad with workspaces of its own (collective as summed_grad). */
static rpu_status summed_grad_alloc(const rpu_conv *l, int t, rpu_weight_units units, float *G) {
    const size_t cells = (size_t)l->grid.tiles[t].rows * l->grid.tiles[t].cols;
    int64_t *acc = (int64_t *)malloc(sizeof(int64_t) * (cells ? cells : 1));
    float *work = (float *)malloc(sizeof(float) * (cells ? cells : 1));
    float *patches = (float *)malloc(sizeof(float) * (block_patches(l, t) + 1));
    const rpu_status s = summed_grad(l, t, units, G, acc, work, patches);
    free(acc), free(work), free(patches);
    return s;
}

static rpu_status need_kept(const rpu_conv *l, const char *fn) {
    if (!l->have_x || !l->have_dy)
        return RPU_FAIL(RPU_ERR_ARG,
                        "layer %s: %s needs a training-mode forward and backward first (none "
                        "kept since the last forward)",
                        l->label, fn);
    return RPU_OK;
}

/* RPU_OK where this rank kept every sample of held tile t in the last training step (not
 * where another holder was announced as its update owner: rpu_conv_set_update_owners). */
static rpu_status kept_all(const rpu_conv *l, int t, const char *fn) {
    if (keeps_all(l, t)) return RPU_OK;
    if (keeps_rows(l, t)) {
        int r0, r1;
        rpu_conv_update_rows(l, t, &r0, &r1);
        return RPU_FAIL(RPU_ERR_ARG,
                        "layer %s: %s: rank %d kept only rows [%d, %d) of tile %d's output "
                        "gradient (its split by rows was announced: rpu_conv_set_update_owners); "
                        "rpu_conv_get_grad assembles the tile from every holder's rows",
                        l->label, fn, l->rank, r0, r1, t);
    }
    return RPU_FAIL(RPU_ERR_ARG,
                    "layer %s: %s: rank %d kept only its own samples of tile %d, whose update "
                    "owner was announced as holder %d (rpu_conv_set_update_owners)",
                    l->label, fn, l->rank, t, l->kowner[t]);
}

rpu_status rpu_conv_get_tile_grad(const rpu_conv *l, int t, float *grad) {
    if (!l || !grad) return RPU_FAIL(RPU_ERR_ARG, "get_tile_grad: NULL argument");
    if (t < 0 || t >= l->grid.n_tiles || !l->tiles[t])
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: get_tile_grad: tile %d is not owned by rank %d",
                        l->label, t, l->rank);
    RPU_CHECK(need_kept(l, "get_tile_grad"));
    if (l->summable) return summed_grad_alloc(l, t, RPU_WEIGHTS_STORED, grad);
    RPU_CHECK(kept_all(l, t, "get_tile_grad"));
    const size_t M = (size_t)l->n * l->Lout;
    return tile_error(l, t,
                      rpu_tile_weight_grad(l->tiles[t], l->xp + l->xoffs[t],
                                           l->dp + grad_offset(l, t), (int)M, RPU_WEIGHTS_STORED,
                                           grad));
}

rpu_status rpu_conv_get_grad(rpu_conv *l, float *weight_grad, float *bias_grad) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "get_grad: NULL layer");
    RPU_CHECK(bias_rule(l, bias_grad, "get_grad", "bias_grad"));
    if (bias_grad && !l->have_bgrad)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: get_grad needs a backward of the last forward",
                        l->label);
    if (!weight_grad) {
        memcpy(bias_grad, l->bias_grad, sizeof(float) * (size_t)l->p.out_channels);
        return RPU_OK;
    }
    /* every rank takes part in the collective below, even after a local failure */
    rpu_status s = need_kept(l, "get_grad");
    const int O = l->p.out_channels, Kc = (l->p.in_channels / l->p.groups) * l->K;
    const size_t nw = (size_t)O * Kc, M = (size_t)l->n * l->Lout;
    /* each value has one owner: a bitwise OR over ranks assembles them exactly */
    uint32_t *bits = (uint32_t *)calloc(nw ? nw : 1, sizeof(uint32_t));
    if (s == RPU_OK && !bits)
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for the weight gradient", l->label);
    for (int t = 0; t < l->grid.n_tiles && s == RPU_OK; ++t) {
        /* (a pulsed tile's values from the holders that kept every sample: with an
         * announced owner, from it alone) */
        const bool rows = !l->summable && keeps_rows(l, t); /* (its rows only) */
        if (!l->tiles[t] || (!l->summable && !keeps_all(l, t) && !rows)) continue;
        const rpu_tile_slot *ts = &l->grid.tiles[t];
        float *g = (float *)malloc(sizeof(float) * (size_t)ts->rows * ts->cols);
        if (!g) {
            s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for the weight gradient",
                         l->label);
            break;
        }
        int r0 = 0, r1 = ts->rows;
        if (rows) rpu_conv_update_rows(l, t, &r0, &r1);
        s = l->summable ? summed_grad_alloc(l, t, RPU_WEIGHTS_SCALED, g)
                        : tile_error(l, t,
                                     rpu_tile_weight_grad_rows(l->tiles[t], l->xp + l->xoffs[t],
                                                               l->dp + grad_offset(l, t), (int)M,
                                                               RPU_WEIGHTS_SCALED, r0, r1, g));
        for (int r = r0; r < r1 && s == RPU_OK; ++r)
            memcpy(bits + (size_t)out_channel(l, ts, r) * Kc + (size_t)ts->col0,
                   g + (size_t)r * ts->cols, sizeof(float) * (size_t)ts->ncol);
        free(g);
    }
    s = agree_ok(l, s);
    if (s == RPU_OK) {
        int rc = MPI_Allreduce(MPI_IN_PLACE, bits, (int)nw, MPI_UINT32_T, MPI_BOR, l->comm);
        if (rc != MPI_SUCCESS) s = mpi_fail(rc, "MPI_Allreduce");
    }
    if (s == RPU_OK) {
        memcpy(weight_grad, bits, sizeof(float) * nw);
        if (bias_grad) memcpy(bias_grad, l->bias_grad, sizeof(float) * (size_t)O);
    }
    free(bits);
    return s;
}

/* Rows [r0, r1) of tile t that its holder m updates: all of them for holder `owner` and
 * none for the others (owner >= 0), or its block of rows (owner -1). */
static void rows_of_holder(const rpu_conv *l, int t, int owner, int m, int *r0, int *r1) {
    const rpu_tile_slot *ts = &l->grid.tiles[t];
    if (owner >= 0) {
        *r0 = m == owner ? 0 : ts->rows;
        *r1 = ts->rows;
        return;
    }
    rpu_holder_rows(ts, l->row_block, m, ts->holders, r0, r1);
}

void rpu_conv_update_rows(const rpu_conv *l, int t, int *r0, int *r1) {
    rows_of_holder(l, t, -1, rpu_tile_holder_index(&l->grid.tiles[t], l->rank, l->size), r0, r1);
}

/* Whether tile t's update is split among several holders (rows, or whole by one). */
static bool split_update(const rpu_conv *l, int t) {
    return l->grid.tiles[t].holders > 1 && l->have_hcomm && !l->summable &&
           rpu_tile_update_row_splittable(l->tiles[t]);
}

/* The second phase (collective on hcomm): the holders agree on the first one's status
 * `local`, then every holder gathers everyone's rows of the arrays the update writes. */
static rpu_status share_rows(rpu_conv *l, int t, int owner, rpu_status local) {
    rpu_tile *tile = l->tiles[t];
    const rpu_tile_slot *ts = &l->grid.tiles[t];
    const int h = ts->holders;
    int *counts = (int *)malloc(sizeof(int) * 2 * (size_t)h);
    rpu_status s = local;
    if (s == RPU_OK && !counts)
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory to share tile %d's rows", l->label, t);
    if ((s = rpu_agree(l->hcomm, s)) != RPU_OK) {
        free(counts);
        return s;
    }
    int *displs = counts + h;
    for (int q = 0; q < h; ++q) {
        int a, b;
        rows_of_holder(l, t, owner, q, &a, &b);
        counts[q] = (b - a) * ts->cols;
        displs[q] = a * ts->cols;
    }
    float *arrays[4];
    const int na = rpu_tile_update_arrays(tile, arrays, 4);
    for (int a = 0; a < na && s == RPU_OK; ++a) {
        int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, arrays[a], counts, displs,
                                MPI_FLOAT, l->hcomm);
        if (rc != MPI_SUCCESS) s = mpi_fail(rc, "MPI_Allgatherv");
    }
    rpu_tile_rows_copied(tile);
    free(counts);
    return s;
}

/* Tile t's update, whole (a summed update: collective over its holders; or one holder), or
 * the first phase of a split one (split_update: the caller shares the rows). */
static rpu_status update_tile(rpu_conv *l, int t, size_t doff, float lr, int owner) {
    const rpu_tile_slot *ts = &l->grid.tiles[t];
    const size_t M = (size_t)l->n * l->Lout;
    if (l->summable) {
        /* G and the workspace in obuf, the sums in acc (free after the backward) */
        const size_t cells = (size_t)ts->rows * ts->cols;
        const bool room =
            grow((void **)&l->obuf, &l->obuf_cap, sizeof(float) * 2 * cells) &&
            grow((void **)&l->acc, &l->acc_cap, sizeof(int64_t) * cells) &&
            grow((void **)&l->sbuf, &l->sbuf_cap, sizeof(float) * (block_patches(l, t) + 1));
        float *G = room ? l->obuf : NULL, *work = room ? l->obuf + cells : NULL;
        rpu_status s =
            summed_grad(l, t, RPU_WEIGHTS_STORED, G, room ? l->acc : NULL, work, l->sbuf);
        if (s == RPU_OK) s = tile_error(l, t, rpu_tile_update_by_grad(l->tiles[t], G, (int)M, lr));
        return s;
    }
    /* (an update that cannot be split runs whole on every holder: the same draws from the
     * same streams keep the copies identical without a message) */
    const float *X = l->xp + l->xoffs[t], *D = l->dp + doff;
    if (!split_update(l, t))
        return tile_error(l, t, rpu_tile_update(l->tiles[t], X, D, (int)M, lr));
    if (keeps_rows(l, t)) return RPU_OK; /* in the second phase (rows_kept_update) */
    int r0, r1; /* this rank's rows; the other holders' stay stale until share_rows */
    rows_of_holder(l, t, owner, rpu_tile_holder_index(ts, l->rank, l->size), &r0, &r1);
    return tile_error(l, t, rpu_tile_update_rows(l->tiles[t], X, D, (int)M, lr, r0, r1));
}

/* The update of held tile t by this rank's rows where it kept only those of the other
 * samples' gradients (keeps_rows; collective on the holders): the holders agree on their
 * status so far (`local`, then the maxima's), then every vector's maximum over the tile's
 * rows from the holders' maxima over theirs. */
static rpu_status rows_kept_update(rpu_conv *l, int t, rpu_status local) {
    const size_t M = (size_t)l->n * l->Lout;
    const float *X = l->xp + l->xoffs[t], *D = l->dp + grad_offset(l, t);
    int r0, r1;
    rpu_conv_update_rows(l, t, &r0, &r1);
    rpu_status s = local;
    if (s == RPU_OK && M > INT_MAX)
        s = RPU_FAIL(RPU_ERR_ARG, "layer %s: %zu update vectors exceed one MPI message", l->label,
                     M);
    if (s == RPU_OK && !grow((void **)&l->umax, &l->umax_cap, sizeof(float) * (M ? M : 1)))
        s = RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for the update's maxima", l->label);
    if (s == RPU_OK)
        s = tile_error(l, t, rpu_tile_update_row_maxima(l->tiles[t], D, (int)M, r0, r1, l->umax));
    RPU_CHECK(rpu_agree(l->hcomm, s));
    const int rc = MPI_Allreduce(MPI_IN_PLACE, l->umax, (int)M, MPI_FLOAT, MPI_MAX, l->hcomm);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce");
    return tile_error(l, t,
                      rpu_tile_update_rows_max(l->tiles[t], X, D, l->umax, (int)M, l->ulr, r0, r1));
}

static rpu_status check_update(rpu_conv *l, float lr) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "update: NULL layer");
    if (!(lr >= 0) || !isfinite(lr))
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: learning rate %g must be >= 0", l->label,
                        (double)lr);
    return need_kept(l, "update");
}

rpu_status rpu_conv_update(rpu_conv *l, float lr) {
    /* (a rank holds one tile whose holders split its update, or tiles of one holder each:
     * the two phases back to back are the tile-by-tile update) */
    const rpu_status s = rpu_conv_update_begin(l, lr, NULL);
    return l ? rpu_conv_update_end(l, NULL, s) : s;
}

bool rpu_conv_update_splits(const rpu_conv *l) {
    if (!l || l->summable || l->grid.n_tiles < 1) return false;
    for (int t = 0; t < l->grid.n_tiles; ++t)
        if (l->grid.tiles[t].holders < 2) return false;
    for (int t = 0; t < l->grid.n_tiles; ++t) /* (a config property: any held tile answers) */
        if (l->tiles[t]) return rpu_tile_update_row_splittable(l->tiles[t]);
    return false;
}

rpu_status rpu_conv_set_update_owners(rpu_conv *l, const int *owners) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "set_update_owners: NULL layer");
    for (int t = 0; owners && t < l->grid.n_tiles; ++t)
        if (owners[t] < -1 || owners[t] >= l->grid.tiles[t].holders)
            return RPU_FAIL(RPU_ERR_ARG,
                            "layer %s: set_update_owners: owner %d of tile %d is none of its %d "
                            "holders (0 .. %d, or -1 for a split by rows)",
                            l->label, owners[t], t, l->grid.tiles[t].holders,
                            l->grid.tiles[t].holders - 1);
    /* only a tile whose update splits has an owner (the others' holders run it whole) */
    const bool rows = !l->summable && l->split;
    for (int t = 0; t < l->grid.n_tiles; ++t)
        l->uowner[t] = owners && rows && l->grid.tiles[t].holders > 1 ? owners[t] : -1;
    l->uann = owners && rows;
    return RPU_OK;
}

rpu_status rpu_conv_update_begin(rpu_conv *l, float lr, const int *owners) {
    RPU_CHECK(check_update(l, lr));
    l->ulr = lr;
    /* the owners first, of every tile (the same verdict on every rank, before any change) */
    for (int t = 0; t < l->grid.n_tiles; ++t) {
        const int owner = owners ? owners[t] : -1, h = l->grid.tiles[t].holders;
        if (owner < -1 || owner >= h)
            return RPU_FAIL(RPU_ERR_ARG,
                            "layer %s: update_begin: owner %d of tile %d is none of its %d holders "
                            "(0 .. %d, or -1 for a split by rows)",
                            l->label, owner, t, h, h - 1);
        /* (the holders kept only their rows of the samples they do not compute) */
        if (l->kann && l->kowner[t] < 0 && owner >= 0 && h > 1)
            return RPU_FAIL(RPU_ERR_ARG,
                            "layer %s: update_begin: owner %d of tile %d, whose split by rows "
                            "was announced before the forward (rpu_conv_set_update_owners): its "
                            "holders kept only their rows",
                            l->label, owner, t);
        /* (the other holders kept only their samples: rpu_conv_set_update_owners) */
        if (l->kowner[t] >= 0 && owner != l->kowner[t])
            return RPU_FAIL(RPU_ERR_ARG,
                            "layer %s: update_begin: owner %d of tile %d differs from holder %d, "
                            "announced before the forward (rpu_conv_set_update_owners), the one "
                            "that kept every sample",
                            l->label, owner, t, l->kowner[t]);
    }
    const size_t M = (size_t)l->n * l->Lout;
    size_t doff = 0;
    rpu_status s = RPU_OK;
    for (int t = 0; t < l->grid.n_tiles && s == RPU_OK; ++t) {
        if (!l->tiles[t]) continue;
        s = update_tile(l, t, doff, lr, owners ? owners[t] : -1);
        doff += M * (size_t)l->grid.tiles[t].rows;
    }
    return s;
}

rpu_status rpu_conv_update_end(rpu_conv *l, const int *owners, rpu_status begun) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "update_end: NULL layer");
    rpu_status s = begun;
    for (int t = 0; t < l->grid.n_tiles; ++t) {
        if (!l->tiles[t]) continue;
        if (split_update(l, t)) {
            if (keeps_rows(l, t)) s = rows_kept_update(l, t, s);
            s = share_rows(l, t, owners ? owners[t] : -1, s);
        }
        if (s == RPU_OK) s = tile_error(l, t, rpu_tile_post_update(l->tiles[t]));
    }
    return s;
}

rpu_status rpu_conv_post_update(rpu_conv *l) {
    if (!l) return RPU_FAIL(RPU_ERR_ARG, "post_update: NULL layer");
    for (int t = 0; t < l->grid.n_tiles; ++t) {
        if (!l->tiles[t]) continue;
        RPU_CHECK(tile_error(l, t, rpu_tile_post_update(l->tiles[t])));
    }
    return RPU_OK;
}

rpu_status rpu_conv_update_owners(rpu_conv *const *layers, int n_layers, int *const *owners) {
    if (!layers || !owners || n_layers < 0)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_update_owners: NULL arrays or %d layers", n_layers);
    const rpu_tile_grid **grids = (const rpu_tile_grid **)calloc((size_t)n_layers + 1, sizeof *grids);
    int64_t *vec = (int64_t *)calloc((size_t)n_layers + 1, sizeof *vec);
    rpu_status s = grids && vec ? RPU_OK : RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    int ranks = 0;
    bool splits = true, any = false; /* as rpu_net_update: every layer's update splits */
    for (int k = 0; k < n_layers && s == RPU_OK; ++k) {
        const rpu_conv *l = layers[k];
        if (!l) continue;
        if (!owners[k]) s = RPU_FAIL(RPU_ERR_ARG, "rpu_conv_update_owners: owners[%d] is NULL", k);
        else if (l->n < 1)
            s = RPU_FAIL(RPU_ERR_ARG, "layer %s: rpu_conv_update_owners before any forward",
                         l->label);
        else if (ranks && l->size != ranks)
            s = RPU_FAIL(RPU_ERR_ARG,
                         "layer %s: rpu_conv_update_owners: %d ranks, the layers before %d",
                         l->label, l->size, ranks);
        if (s != RPU_OK) break;
        ranks = l->size;
        grids[k] = &l->grid;
        vec[k] = (int64_t)l->n * l->Lout;
        splits = splits && rpu_conv_update_splits(l);
        any = true;
        for (int t = 0; t < l->grid.n_tiles; ++t)
            owners[k][t] = -1;
    }
    if (s == RPU_OK && any && splits && ranks > 1)
        s = rpu_update_owners(grids, vec, n_layers, ranks, owners);
    free(grids), free(vec);
    return s;
}
