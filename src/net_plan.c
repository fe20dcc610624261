/* The communication plan of a network's training step: its analog layers' plans for
 * results by parts (rpu_conv_comm_plan_parts, src/layer_plan.c) in the order
 * rpu_net_forward, rpu_net_backward and rpu_net_update call the layers (src/net.c), the
 * fetches of what an analog layer reads of other ranks' samples (rpu_conv_fetch_plan): of
 * its input (unless it is the data) in the forward, of its output gradient (unless it is
 * the loss's) in the backward, and the gather of every rank's samples of the logits.
 * Digital layers communicate nothing. */
#include "rpusim/net.h"

#include "error_impl.h"

#include <stdlib.h>

/* Appends layer k's calls of `phase` (from its full plan) to calls; counts them in *n. */
static rpu_status layer_phase(const rpu_net *net, int k, rpu_phase phase, int batch, int ranks,
                              int rank, rpu_comm_call *calls, int max, int *n) {
    rpu_net_layer info;
    RPU_CHECK(rpu_net_layer_info(net, k, &info));
    if (!info.conv) return RPU_OK;
    const rpu_conv_params *p = rpu_conv_get_params(info.conv);
    const rpu_config *cfg = rpu_conv_config(info.conv);
    int m = 0;
    rpu_status s = rpu_conv_comm_plan_parts(p, cfg, batch, info.in_sp, info.input_grad, ranks, rank,
                                            NULL, 0, &m);
    rpu_comm_call *buf =
        s == RPU_OK ? (rpu_comm_call *)malloc(sizeof *buf * (size_t)(m + 1)) : NULL;
    if (s == RPU_OK && !buf) s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory for %d calls", m);
    if (s == RPU_OK)
        s = rpu_conv_comm_plan_parts(p, cfg, batch, info.in_sp, info.input_grad, ranks, rank, buf,
                                     m, &m);
    if (s != RPU_OK) {
        free(buf);
        return rpu_error_prefix(s, "layer %s", info.name);
    }
    for (int q = 0; q < m; ++q) {
        if (buf[q].phase != phase) continue;
        if (calls && *n < max) {
            calls[*n] = buf[q];
            calls[*n].layer = k;
        }
        ++*n;
    }
    free(buf);
    return RPU_OK;
}

/* Appends the fetch of layer k's input (outputs false) or output gradient (true): the
 * status check (rpu_agree, 1 int) and the MPI_Alltoallv (count: elements this rank sends),
 * where the layer fetches at all (rpu_conv_fetch_plan). */
static rpu_status fetch(rpu_comm_call *calls, int max, int *n, int k, rpu_phase phase, int batch,
                        const rpu_net_layer *info, const int *owners, bool outputs, int ranks,
                        int rank) {
    bool issued = false, whole = false;
    int64_t sent = 0;
    RPU_CHECK(rpu_conv_fetch_plan(rpu_conv_get_params(info->conv), rpu_conv_config(info->conv),
                                  batch, info->in_sp, owners, outputs, ranks, rank, &issued,
                                  &whole, &sent));
    if (!issued) return RPU_OK;
    if (whole) {
        if (calls && *n < max)
            calls[*n] = (rpu_comm_call){
                k,
                phase,
                RPU_COMM_ALLGATHER,
                sent,
                4,
                ranks,
                -1,
                outputs ? "every rank's samples of a layer's output gradient (float)"
                        : "every rank's samples of a layer's input (float)"};
        ++*n;
        return RPU_OK;
    }
    if (calls && *n < max)
        calls[*n] = (rpu_comm_call){k,     phase, RPU_COMM_ALLREDUCE,       1, 4,
                                    ranks, -1,    "status (rpu_agree, int)"};
    ++*n;
    if (calls && *n < max)
        calls[*n] = (rpu_comm_call){
            k,
            phase,
            RPU_COMM_ALLTOALL,
            sent,
            4,
            ranks,
            -1,
            outputs ? "the output gradient a rank's tiles read of other ranks' samples (float)"
                    : "the input a rank's tiles read of other ranks' samples (float)"};
    ++*n;
    return RPU_OK;
}

/* Appends the network's MPI_Allgatherv of every rank's samples of layer k's output (the
 * logits) on a batch of `batch`: count = the whole batch's elements. */
static void gather(rpu_comm_call *calls, int max, int *n, int k, rpu_phase phase, int batch,
                   const rpu_net_layer *info, int in, int ranks, const char *what) {
    if (ranks <= 1) return;
    int64_t per = in ? info->in_c : info->out_c;
    const int nd = in ? info->in_nd : info->out_nd;
    for (int a = 0; a < nd; ++a)
        per *= in ? info->in_sp[a] : info->out_sp[a];
    if (calls && *n < max)
        calls[*n] = (rpu_comm_call){k, phase, RPU_COMM_ALLGATHER, per * batch, 4, ranks, -1, what};
    ++*n;
}

/* Whether analog layer info reads only each rank's own samples on `ranks` ranks. */
static rpu_status layer_own(const rpu_net_layer *info, int ranks, bool *own) {
    *own = false;
    if (!info->conv) return RPU_OK;
    return rpu_conv_own_samples(rpu_conv_get_params(info->conv), rpu_conv_config(info->conv),
                                info->in_sp, ranks, own);
}

/* The update owners rpu_net_forward announces to the layers on `ranks` ranks
 * (rpu_conv_update_owners_plan), into owners[k] (free each and the array). */
static rpu_status plan_owners(const rpu_net *net, int batch, int ranks, int ***owners) {
    const int L = rpu_net_layer_count(net);
    rpu_net_layer *info = (rpu_net_layer *)calloc((size_t)L + 1, sizeof *info);
    const rpu_conv_params **ps = (const rpu_conv_params **)calloc((size_t)L + 1, sizeof *ps);
    const rpu_config **cfgs = (const rpu_config **)calloc((size_t)L + 1, sizeof *cfgs);
    const int **sizes = (const int **)calloc((size_t)L + 1, sizeof *sizes);
    *owners = (int **)calloc((size_t)L + 1, sizeof **owners);
    rpu_status s = info && ps && cfgs && sizes && *owners
                       ? RPU_OK
                       : RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the plan");
    for (int k = 0; k < L && s == RPU_OK; ++k) {
        s = rpu_net_layer_info(net, k, &info[k]);
        if (s != RPU_OK || !info[k].conv) continue;
        ps[k] = rpu_conv_get_params(info[k].conv);
        cfgs[k] = rpu_conv_config(info[k].conv);
        sizes[k] = info[k].in_sp;
    }
    if (s == RPU_OK) s = rpu_conv_update_owners_plan(ps, cfgs, sizes, L, batch, ranks, *owners);
    free(info), free(ps), free(cfgs), free(sizes);
    return s;
}

rpu_net_gathers rpu_net_gathers_at(int k, int n_layers, bool analog, bool own) {
    rpu_net_gathers g = {analog && !own && k > 0, k == n_layers - 1,
                         analog && !own && k < n_layers - 1};
    return g;
}

/* rpu_net_comm_plan's calls, with the update owners of plan_owners. */
static rpu_status plan_calls(const rpu_net *net, int batch, int ranks, int rank, int **owners,
                             rpu_comm_call *calls, int max_calls, int *np) {
    const int L = rpu_net_layer_count(net);
    int n = 0;
    rpu_net_layer info;
    for (int k = 0; k < L; ++k) {
        RPU_CHECK(rpu_net_layer_info(net, k, &info));
        bool own = false;
        RPU_CHECK(layer_own(&info, ranks, &own));
        const rpu_net_gathers g = rpu_net_gathers_at(k, L, info.conv != NULL, own);
        if (g.input && ranks > 1)
            RPU_CHECK(fetch(calls, max_calls, &n, k, RPU_PHASE_FORWARD, batch, &info, owners[k],
                            false, ranks, rank));
        RPU_CHECK(layer_phase(net, k, RPU_PHASE_FORWARD, batch, ranks, rank, calls, max_calls, &n));
        if (g.logits)
            gather(calls, max_calls, &n, k, RPU_PHASE_FORWARD, batch, &info, 0, ranks,
                   "every rank's samples of the logits (float)");
    }
    for (int k = L - 1; k >= 0; --k) {
        RPU_CHECK(rpu_net_layer_info(net, k, &info));
        if (k == 0 && !info.conv) break; /* no gradient for the data */
        bool own = false;
        RPU_CHECK(layer_own(&info, ranks, &own));
        if (rpu_net_gathers_at(k, L, info.conv != NULL, own).output_grad && ranks > 1)
            RPU_CHECK(fetch(calls, max_calls, &n, k, RPU_PHASE_BACKWARD, batch, &info, owners[k],
                            true, ranks, rank));
        RPU_CHECK(
            layer_phase(net, k, RPU_PHASE_BACKWARD, batch, ranks, rank, calls, max_calls, &n));
    }
    /* the update: each layer's exchanges in layer order (rpu_conv_update_end), where a split
     * by rows was announced first the maxima */
    for (int k = 0; k < L; ++k) {
        RPU_CHECK(rpu_net_layer_info(net, k, &info));
        if (info.conv && owners[k]) {
            int m = 0;
            RPU_CHECK(rpu_conv_update_maxima_plan(
                rpu_conv_get_params(info.conv), rpu_conv_config(info.conv), batch, info.in_sp,
                owners[k], ranks, rank, calls && n < max_calls ? calls + n : NULL,
                calls && n < max_calls ? max_calls - n : 0, &m));
            for (int q = n; calls && q < n + m && q < max_calls; ++q)
                calls[q].layer = k;
            n += m;
        }
        RPU_CHECK(layer_phase(net, k, RPU_PHASE_UPDATE, batch, ranks, rank, calls, max_calls, &n));
    }
    *np = n;
    return RPU_OK;
}

rpu_status rpu_net_comm_plan(const rpu_net *net, int batch, int ranks, int rank,
                             rpu_comm_call *calls, int max_calls, int *n_calls) {
    if (!n_calls) return RPU_FAIL(RPU_ERR_ARG, "rpu_net_comm_plan: n_calls is NULL");
    *n_calls = 0;
    if (!net) return RPU_FAIL(RPU_ERR_ARG, "rpu_net_comm_plan: net is NULL");
    if (max_calls < 0 || (max_calls > 0 && !calls))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_net_comm_plan: %d calls wanted in a NULL array",
                        max_calls);
    const int L = rpu_net_layer_count(net);
    int n = 0;
    int **owners = NULL;
    rpu_status s = plan_owners(net, batch, ranks, &owners);
    if (s == RPU_OK) s = plan_calls(net, batch, ranks, rank, owners, calls, max_calls, &n);
    for (int k = 0; owners && k < L; ++k)
        free(owners[k]);
    free(owners);
    if (s == RPU_OK) *n_calls = n;
    return s;
}
