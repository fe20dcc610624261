/* The communication plan of a mapped layer: the MPI calls layer.c issues in a training step,
 * described without running them (layer.h, "communication plan").
 *
 * Keep in step with layer.c: rpu_conv_forward, rpu_conv_backward and rpu_conv_update. The
 * rules today:
 *   forward:  one input split (grid.n_in == 1): every output element has one contributing
 *             tile, so the ranks agree on the outcome (rpu_agree: MPI_Allreduce of 1 int)
 *             and add float outputs (MPI_Allreduce of batch x out x Lout floats);
 *             else: agree_max (MPI_Allreduce of 2 doubles: the maximum and an error flag)
 *             and the exact reduction (MPI_Allreduce of batch x out x Lout int64);
 *   backward: with an input gradient only; one contributing tile per input element
 *             (dx_terms = n_out x in_share == 1): 1 int + batch x in x Lin floats; else 2
 *             doubles + batch x in x Lin int64;
 *   update:   for each tile this rank holds with other holders (more ranks than tiles,
 *             rpu_tile_slot.holders > 1) whose update splits by rows
 *             (rpu_tile_update_row_splittable): rpu_agree on the holders' communicator
 *             (MPI_Allreduce of 1 int) and one MPI_Allgatherv of the tile's rows x cols
 *             floats per array the update writes (rpu_tile_update_arrays); else nothing
 *             (each rank updates its own tiles).
 * mpi_tests/test_comm_plan.c counts the calls of real steps with a PMPI wrapper and fails
 * when this file and layer.c disagree. */
#include "rpusim/layer.h"
#include "rpusim/tile.h"

#include "error_impl.h"

#include <limits.h>
#include <string.h>

const char *rpu_comm_op_name(rpu_comm_op op) {
    static const char *const names[RPU_COMM_N_OPS] = {"allreduce",      "reduce",    "bcast",
                                                      "reduce_scatter", "allgather", "send",
                                                      "recv",           "barrier",   "other"};
    return (int)op >= 0 && (int)op < RPU_COMM_N_OPS ? names[op] : "?";
}

/* Kernel elements of p (1 for a linear layer). */
static int kernel_elems(const rpu_conv_params *p) {
    int K = 1;
    for (int a = 0; a < p->ndim; ++a)
        K *= p->kernel[a];
    return K;
}

rpu_status rpu_conv_placement(const rpu_conv_params *p, const rpu_config *cfg, int ranks,
                              rpu_tile_grid *grid) {
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
    rpu_rotate_owners(grid, ranks, p->layer_id);
    return RPU_OK;
}

/* Appends one call (counting it even when there is no room). */
static void add(rpu_comm_call *calls, int max, int *n, rpu_phase phase, rpu_comm_op op,
                int64_t count, int type_bytes, int group, const char *what) {
    if (calls && *n < max)
        calls[*n] = (rpu_comm_call){-1, phase, op, count, type_bytes, group, -1, what};
    ++*n;
}

rpu_status rpu_conv_comm_plan(const rpu_conv_params *p, const rpu_config *cfg, int batch,
                              const int *in_size, bool input_grad, int ranks, int rank,
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
    /* spatial elements of the input and the output */
    int64_t Lin = 1, Lout = 1;
    if (p->ndim > 0) {
        if (!in_size) return RPU_FAIL(RPU_ERR_ARG, "rpu_conv_comm_plan: in_size is NULL");
        int out[3] = {1, 1, 1};
        RPU_CHECK(rpu_conv_output_size(p, in_size, out));
        for (int a = 0; a < p->ndim; ++a) {
            Lin *= in_size[a];
            Lout *= out[a];
        }
    }
    rpu_tile_grid g;
    RPU_CHECK(rpu_conv_placement(p, cfg, ranks, &g));
    const int n_in = g.n_in, dx_terms = g.n_out * g.in_share;
    const int64_t ny = (int64_t)batch * p->out_channels * Lout;
    const int64_t nx = (int64_t)batch * p->in_channels * Lin;
    int n = 0;
    if (n_in == 1) {
        add(calls, max_calls, &n, RPU_PHASE_FORWARD, RPU_COMM_ALLREDUCE, 1, 4, ranks,
            "status (rpu_agree, int)");
        add(calls, max_calls, &n, RPU_PHASE_FORWARD, RPU_COMM_ALLREDUCE, ny, 4, ranks,
            "outputs (float, one tile per element)");
    } else {
        add(calls, max_calls, &n, RPU_PHASE_FORWARD, RPU_COMM_ALLREDUCE, 2, 8, ranks,
            "maximum and error flag (2 doubles)");
        add(calls, max_calls, &n, RPU_PHASE_FORWARD, RPU_COMM_ALLREDUCE, ny, 8, ranks,
            "output partial sums (int64)");
    }
    if (input_grad) {
        if (dx_terms == 1) {
            add(calls, max_calls, &n, RPU_PHASE_BACKWARD, RPU_COMM_ALLREDUCE, 1, 4, ranks,
                "status (rpu_agree, int)");
            add(calls, max_calls, &n, RPU_PHASE_BACKWARD, RPU_COMM_ALLREDUCE, nx, 4, ranks,
                "input gradient (float, one tile per element)");
        } else {
            add(calls, max_calls, &n, RPU_PHASE_BACKWARD, RPU_COMM_ALLREDUCE, 2, 8, ranks,
                "maximum and error flag (2 doubles)");
            add(calls, max_calls, &n, RPU_PHASE_BACKWARD, RPU_COMM_ALLREDUCE, nx, 8, ranks,
                "input gradient partial sums (int64)");
        }
    }
    /* update: the holders of a tile whose update splits by rows share their rows; whether
     * it splits and how many arrays it writes are properties of the config, asked of a
     * small tile of it */
    rpu_status s = RPU_OK;
    int split = -1, arrays = 0;
    for (int t = 0; t < g.n_tiles && s == RPU_OK; ++t) {
        const rpu_tile_slot *ts = &g.tiles[t];
        if (ts->holders <= 1 || rpu_tile_holder_index(ts, rank, ranks) < 0) continue;
        if (split < 0) {
            rpu_tile_params tp = {.out_size = 2, .in_size = 2, .seed = 1, .mac = p->mac};
            rpu_tile *probe = NULL;
            s = rpu_tile_create(&tp, cfg, &probe);
            if (s != RPU_OK) break;
            float *a[8];
            split = rpu_tile_update_row_splittable(probe);
            arrays = rpu_tile_update_arrays(probe, a, 8);
            rpu_tile_destroy(&probe);
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
