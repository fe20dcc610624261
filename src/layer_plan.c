/* The communication plan of a mapped layer: the MPI calls layer.c issues in a training step,
 * described without running them (layer.h, "communication plan").
 *
 * Keep in step with layer.c: rpu_conv_forward(_part), rpu_conv_backward(_part) and
 * rpu_conv_update. The rules today:
 *   forward:  one input split (grid.n_in == 1): every output element has one contributing
 *             tile, so the ranks agree on the outcome (rpu_agree: MPI_Allreduce of 1 int)
 *             and each float output goes from the rank that computed it to the owner of its
 *             sample (rpu_deliver: one MPI_Alltoallv; a rank's count is what it sends to
 *             others, deliver_impl.h); else: agree_max (MPI_Allreduce of 2 doubles: the
 *             maximum and an error flag) and the int64 partial sums to the owners of their
 *             samples (MPI_Alltoallv); then, for rpu_conv_forward but not for the _part
 *             call, every rank's samples to every rank (MPI_Allgatherv of batch x out x Lout
 *             floats);
 *   backward: with an input gradient only; the same with batch x in x Lin, one contributing
 *             tile per input element when dx_terms = n_out x in_share == 1;
 *             A layer with a bias on more than one rank first gathers the per-sample
 *             bias-gradient sums (MPI_Allgatherv of batch x out doubles), with or without
 *             an input gradient;
 *   update:   for each tile this rank holds with other holders (rpu_tile_slot.holders > 1:
 *             more ranks than tiles, or every tile on every rank): a summed update
 *             (rpu_tile_update_summable): MPI_Allreduce of the bound and an error flag (2
 *             doubles), then of the tile's rows x cols int64 gradient sums, on the
 *             holders' communicator; else one that splits by rows
 *             (rpu_tile_update_row_splittable): rpu_agree on the holders' communicator
 *             (MPI_Allreduce of 1 int) and one MPI_Allgatherv of the tile's rows x cols
 *             floats per array the update writes (rpu_tile_update_arrays); else nothing
 *             (each rank updates its own tiles).
 * mpi_tests/test_comm_plan.c counts the calls of real steps with a PMPI wrapper and fails
 * when this file and layer.c disagree. */
#include "rpusim/layer.h"
#include "rpusim/tile.h"

#include "deliver_impl.h"
#include "error_impl.h"
#include "placement_impl.h"

#include <stdlib.h>

#include <limits.h>
#include <string.h>

const char *rpu_comm_op_name(rpu_comm_op op) {
    static const char *const names[RPU_COMM_N_OPS] = {
        "allreduce", "reduce", "bcast",   "reduce_scatter", "allgather",
        "send",      "recv",   "barrier", "alltoall",       "other"};
    return (int)op >= 0 && (int)op < RPU_COMM_N_OPS ? names[op] : "?";
}

/* Output positions per sample of p on in_size (1 for a linear layer). */
static rpu_status out_positions(const rpu_conv_params *p, const int *in_size, int64_t *Lin,
                                int64_t *Lout) {
    *Lin = *Lout = 1;
    if (p->ndim == 0) return RPU_OK;
    if (!in_size) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_comm_plan: in_size is NULL");
    int out[3] = {1, 1, 1};
    RPU_CHECK(rpu_conv_output_size(p, in_size, out));
    for (int a = 0; a < p->ndim; ++a) {
        *Lin *= in_size[a];
        *Lout *= out[a];
    }
    return RPU_OK;
}

/* The positions per sample, the grid on `ranks` ranks (free it with rpu_tile_grid_free)
 * and the config's properties. */
static rpu_status setup(const rpu_conv_params *p, const rpu_config *cfg, const int *in_size,
                        int ranks, int64_t *Lin, int64_t *Lout, rpu_tile_grid *g, config_props *c) {
    RPU_CHECK(out_positions(p, in_size, Lin, Lout));
    return rpu_conv_place(p, cfg, ranks, g, c);
}

rpu_status rpu_conv_own_samples(const rpu_conv_params *p, const rpu_config *cfg, const int *in_size,
                                int ranks, bool *own) {
    if (!own) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_own_samples: own is NULL");
    *own = false;
    if (!p || !cfg) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_own_samples: params or config is NULL");
    int64_t Lin, Lout;
    rpu_tile_grid g;
    config_props c;
    RPU_CHECK(setup(p, cfg, in_size, ranks, &Lin, &Lout, &g, &c));
    *own = rpu_conv_own_samples_rule(&g, ranks, Lout, c.batch_split && !c.x_all, c.summable);
    rpu_tile_grid_free(&g);
    return RPU_OK;
}

/* Appends one call (counting it even when there is no room). */
static void add(rpu_comm_call *calls, int max, int *n, rpu_phase phase, rpu_comm_op op,
                int64_t count, int type_bytes, int group, const char *what) {
    if (calls && *n < max)
        calls[*n] = (rpu_comm_call){-1, phase, op, count, type_bytes, group, -1, what};
    ++*n;
}

/* The calls of one delivered result (forward output or input gradient): with one term per
 * element (one_term), rpu_agree and the floats to the owners; else agree_max and the int64
 * terms; then, unless by parts, the gather of every rank's samples (whole elements). */
static void result_calls(rpu_comm_call *calls, int max, int *n, rpu_phase ph, bool one_term,
                         int64_t sent, int64_t whole, int ranks, bool parts,
                         const char *const what[3]) {
    if (one_term) {
        add(calls, max, n, ph, RPU_COMM_ALLREDUCE, 1, 4, ranks, "status (rpu_agree, int)");
        add(calls, max, n, ph, RPU_COMM_ALLTOALL, sent, 4, ranks, what[0]);
    } else {
        add(calls, max, n, ph, RPU_COMM_ALLREDUCE, 2, 8, ranks,
            "maximum and error flag (2 doubles)");
        add(calls, max, n, ph, RPU_COMM_ALLTOALL, sent, 8, ranks, what[1]);
    }
    if (!parts && ranks > 1) add(calls, max, n, ph, RPU_COMM_ALLGATHER, whole, 4, ranks, what[2]);
}

static rpu_status plan(const rpu_conv_params *p, const rpu_config *cfg, int batch,
                       const int *in_size, bool input_grad, int ranks, int rank, bool parts,
                       rpu_comm_call *calls, int max_calls, int *n_calls) {
    if (!n_calls) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_comm_plan: n_calls is NULL");
    *n_calls = 0;
    if (!p || !cfg) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_comm_plan: params or config is NULL");
    if (batch < 1) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_comm_plan: batch %d < 1", batch);
    if (ranks < 1 || rank < 0 || rank >= ranks)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_comm_plan: rank %d outside [0, %d)", rank, ranks);
    if (max_calls < 0 || (max_calls > 0 && !calls))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_comm_plan: %d calls wanted in a NULL array",
                        max_calls);
    /* spatial elements of the input and the output, the grid, the config's properties */
    int64_t Lin, Lout;
    rpu_tile_grid g;
    config_props c;
    RPU_CHECK(setup(p, cfg, in_size, ranks, &Lin, &Lout, &g, &c));
    rpu_status s = RPU_OK;
    const bool batch_split = c.batch_split, summable = c.summable;
    const int split = c.split, arrays = c.arrays;
    const int n_in = g.n_in, dx_terms = g.n_out * g.in_share;
    const int64_t ny = (int64_t)batch * p->out_channels * Lout;
    const int64_t nx = (int64_t)batch * p->in_channels * Lin;
    const int spb = rpu_block_samples((int)Lout);
    rpu_contrib_table tab = {0};
    int64_t sent = 0;
    int n = 0;
    if (s == RPU_OK && !rpu_contrib_build(&tab, &g, ranks, batch, spb, batch_split, true))
        s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the plan");
    if (s == RPU_OK)
        rpu_deliver_volume(&tab, rank, batch, p->out_channels, (size_t)Lout, &sent, NULL);
    static const char *const fwd_what[3] = {
        "outputs to the owners of their samples (float, one tile per element)",
        "output partial sums to the owners of their samples (int64)",
        "every rank's samples of the output (float)"};
    static const char *const bwd_what[3] = {
        "input gradient to the owners of its samples (float, one tile per element)",
        "input gradient partial sums to the owners of their samples (int64)",
        "every rank's samples of the input gradient (float)"};
    if (s == RPU_OK)
        result_calls(calls, max_calls, &n, RPU_PHASE_FORWARD, n_in == 1, sent, ny, ranks, parts,
                     fwd_what);
    if (s == RPU_OK && ranks > 1 && p->bias != RPU_BIAS_NONE)
        add(calls, max_calls, &n, RPU_PHASE_BACKWARD, RPU_COMM_ALLGATHER,
            (int64_t)batch * p->out_channels, 8, ranks,
            "every rank's per-sample bias-gradient sums (double)");
    if (s == RPU_OK && input_grad) {
        if (!rpu_contrib_build(&tab, &g, ranks, batch, spb, batch_split, false))
            s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the plan");
        else
            rpu_deliver_volume(&tab, rank, batch, p->in_channels, (size_t)Lin, &sent, NULL);
        if (s == RPU_OK)
            result_calls(calls, max_calls, &n, RPU_PHASE_BACKWARD, dx_terms == 1, sent, nx, ranks,
                         parts, bwd_what);
    }
    rpu_contrib_free(&tab);
    /* update: the holders of a tile with a summable update add their blocks' gradients; of
     * one whose update splits by rows share their rows */
    for (int t = 0; t < g.n_tiles && s == RPU_OK; ++t) {
        const rpu_tile_slot *ts = &g.tiles[t];
        if (ts->holders <= 1 || rpu_tile_holder_index(ts, rank, ranks) < 0) continue;
        if (summable) {
            add(calls, max_calls, &n, RPU_PHASE_UPDATE, RPU_COMM_ALLREDUCE, 2, 8, ts->holders,
                "bound of the blocks' gradients and error flag (2 doubles)");
            add(calls, max_calls, &n, RPU_PHASE_UPDATE, RPU_COMM_ALLREDUCE,
                (int64_t)ts->rows * ts->cols, 8, ts->holders, "the holders' gradient sums (int64)");
            continue;
        }
        if (!split) continue;
        add(calls, max_calls, &n, RPU_PHASE_UPDATE, RPU_COMM_ALLREDUCE, 1, 4, ts->holders,
            "status of the holders' row update (rpu_agree, int)");
        for (int a = 0; a < arrays; ++a)
            add(calls, max_calls, &n, RPU_PHASE_UPDATE, RPU_COMM_ALLGATHER,
                (int64_t)ts->rows * ts->cols, 4, ts->holders, "the holders' updated rows (float)");
    }
    rpu_tile_grid_free(&g);
    if (s != RPU_OK) return s;
    *n_calls = n;
    return RPU_OK;
}

rpu_status rpu_conv_comm_plan(const rpu_conv_params *p, const rpu_config *cfg, int batch,
                              const int *in_size, bool input_grad, int ranks, int rank,
                              rpu_comm_call *calls, int max_calls, int *n_calls) {
    return plan(p, cfg, batch, in_size, input_grad, ranks, rank, false, calls, max_calls, n_calls);
}

rpu_status rpu_conv_comm_plan_parts(const rpu_conv_params *p, const rpu_config *cfg, int batch,
                                    const int *in_size, bool input_grad, int ranks, int rank,
                                    rpu_comm_call *calls, int max_calls, int *n_calls) {
    return plan(p, cfg, batch, in_size, input_grad, ranks, rank, true, calls, max_calls, n_calls);
}

rpu_status rpu_conv_fetch_plan(const rpu_conv_params *p, const rpu_config *cfg, int batch,
                               const int *in_size, const int *owners, bool outputs, int ranks,
                               int rank, bool *issued, bool *whole, int64_t *sent) {
    if (!issued || !whole || !sent)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_fetch_plan: NULL result");
    *issued = *whole = false;
    *sent = 0;
    if (!p || !cfg) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_fetch_plan: params or config is NULL");
    if (batch < 1) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_fetch_plan: batch %d < 1", batch);
    if (ranks < 1 || rank < 0 || rank >= ranks)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_fetch_plan: rank %d outside [0, %d)", rank, ranks);
    int64_t Lin, Lout;
    rpu_tile_grid g;
    config_props c;
    RPU_CHECK(setup(p, cfg, in_size, ranks, &Lin, &Lout, &g, &c));
    rpu_status s = RPU_OK;
    int *eff = s == RPU_OK ? (int *)malloc(sizeof(int) * (size_t)(g.n_tiles + 1)) : NULL;
    if (s == RPU_OK && !eff) s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the plan");
    bool announced = false; /* as rpu_conv_set_update_owners keeps them */
    /* an announced split by rows: the holders fetch their rows of the output gradient */
    const bool rows = owners && !c.summable && c.split;
    for (int t = 0; s == RPU_OK && t < g.n_tiles; ++t) {
        const int m = owners ? owners[t] : -1;
        if (m < -1 || m >= g.tiles[t].holders)
            s = RPU_FAIL(RPU_ERR_ARG, "rpu_conv_fetch_plan: owner %d of tile %d is none of its %d "
                         "holders", m, t, g.tiles[t].holders);
        eff[t] = !c.summable && c.split && g.tiles[t].holders > 1 ? m : -1;
        announced = announced || eff[t] >= 0;
    }
    if (s == RPU_OK && ranks > 1 &&
        !rpu_conv_own_samples_rule(&g, ranks, Lout, c.batch_split && !c.x_all, c.summable)) {
        /* as layer.c's fetch, for a training step */
        *whole = (!c.summable && !announced && !(outputs && rows)) || (!outputs && c.x_all);
        if (*whole) {
            *sent = (int64_t)batch * (outputs ? p->out_channels : p->in_channels) *
                    (outputs ? Lout : Lin); /* the whole array (MPI_Allgatherv) */
        } else {
            rpu_contrib_table tab = {0};
            if (!rpu_contrib_build_samples(&tab, &g, ranks, batch, rpu_block_samples((int)Lout),
                                           c.batch_split, outputs,
                                           c.summable ? RPU_SAMPLES_COMPUTED : RPU_SAMPLES_UPDATE,
                                           eff, rows ? c.row_block : 0))
                s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the plan");
            else
                rpu_fetch_volume(&tab, rank, batch, outputs ? p->out_channels : p->in_channels,
                                 (size_t)(outputs ? Lout : Lin), sent, NULL);
            rpu_contrib_free(&tab);
        }
        *issued = s == RPU_OK;
    }
    free(eff);
    rpu_tile_grid_free(&g);
    return s;
}

rpu_status rpu_conv_update_maxima_plan(const rpu_conv_params *p, const rpu_config *cfg, int batch,
                                       const int *in_size, const int *owners, int ranks, int rank,
                                       rpu_comm_call *calls, int max_calls, int *n_calls) {
    if (!n_calls) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_update_maxima_plan: n_calls is NULL");
    *n_calls = 0;
    if (!p || !cfg)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_update_maxima_plan: params or config is NULL");
    if (batch < 1 || ranks < 1 || rank < 0 || rank >= ranks)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_update_maxima_plan: batch %d, rank %d of %d", batch,
                        rank, ranks);
    int64_t Lin, Lout;
    rpu_tile_grid g;
    config_props c;
    RPU_CHECK(setup(p, cfg, in_size, ranks, &Lin, &Lout, &g, &c));
    /* as layer_update.c's rows_kept_update for a holder that keeps its rows (keeps_rows) */
    for (int t = 0; owners && !c.summable && c.split && t < g.n_tiles; ++t) {
        const rpu_tile_slot *ts = &g.tiles[t];
        if (owners[t] >= 0 || ts->holders < 2 || rpu_tile_holder_index(ts, rank, ranks) < 0)
            continue;
        add(calls, max_calls, n_calls, RPU_PHASE_UPDATE, RPU_COMM_ALLREDUCE, 1, 4, ts->holders,
            "status of the holders' maxima (rpu_agree, int)");
        add(calls, max_calls, n_calls, RPU_PHASE_UPDATE, RPU_COMM_ALLREDUCE, (int64_t)batch * Lout,
            4, ts->holders, "every vector's maximum |gradient| over the holders' rows (float)");
    }
    rpu_tile_grid_free(&g);
    return RPU_OK;
}

rpu_status rpu_conv_update_owners_plan(const rpu_conv_params *const *ps,
                                       const rpu_config *const *cfgs, const int *const *in_sizes,
                                       int n_layers, int batch, int ranks, int **owners) {
    if (!ps || !cfgs || !in_sizes || !owners || n_layers < 0 || batch < 1 || ranks < 1)
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_conv_update_owners_plan: NULL arrays, %d layers, batch %d or %d ranks",
                        n_layers, batch, ranks);
    for (int k = 0; k < n_layers; ++k)
        owners[k] = NULL;
    rpu_tile_grid *g = (rpu_tile_grid *)calloc((size_t)n_layers + 1, sizeof *g);
    const rpu_tile_grid **gp = (const rpu_tile_grid **)calloc((size_t)n_layers + 1, sizeof *gp);
    int64_t *vec = (int64_t *)calloc((size_t)n_layers + 1, sizeof *vec);
    rpu_status s = g && gp && vec ? RPU_OK : RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the plan");
    bool splits = ranks > 1, any = false; /* as rpu_net_update: every analog layer splits */
    for (int k = 0; k < n_layers && s == RPU_OK; ++k) {
        if (!ps[k]) continue;
        int64_t Lin, Lout;
        config_props c;
        s = setup(ps[k], cfgs[k], in_sizes[k], ranks, &Lin, &Lout, &g[k], &c);
        if (s == RPU_OK) gp[k] = &g[k], vec[k] = (int64_t)batch * Lout;
        for (int t = 0; s == RPU_OK && t < g[k].n_tiles; ++t)
            splits = splits && !c.summable && c.split && g[k].tiles[t].holders > 1;
        any = true;
        owners[k] = s == RPU_OK ? (int *)malloc(sizeof(int) * ((size_t)g[k].n_tiles + 1)) : NULL;
        if (s == RPU_OK && !owners[k]) s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the plan");
        for (int t = 0; s == RPU_OK && t < g[k].n_tiles; ++t)
            owners[k][t] = -1;
    }
    if (s == RPU_OK && splits && any) s = rpu_update_owners(gp, vec, n_layers, ranks, owners);
    for (int k = 0; g && k < n_layers; ++k)
        rpu_tile_grid_free(&g[k]);
    free(g), free(gp), free(vec);
    if (s != RPU_OK)
        for (int k = 0; k < n_layers; ++k)
            free(owners[k]), owners[k] = NULL;
    return s;
}
