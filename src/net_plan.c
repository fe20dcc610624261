/* The communication plan of a network's training step: its analog layers' plans
 * (rpu_conv_comm_plan, src/layer_plan.c) in the order rpu_net_forward, rpu_net_backward
 * and rpu_net_update call the layers (src/net.c). Digital layers communicate nothing. */
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
    rpu_status s =
        rpu_conv_comm_plan(p, cfg, batch, info.in_sp, info.input_grad, ranks, rank, NULL, 0, &m);
    rpu_comm_call *buf =
        s == RPU_OK ? (rpu_comm_call *)malloc(sizeof *buf * (size_t)(m + 1)) : NULL;
    if (s == RPU_OK && !buf) s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory for %d calls", m);
    if (s == RPU_OK)
        s = rpu_conv_comm_plan(p, cfg, batch, info.in_sp, info.input_grad, ranks, rank, buf, m, &m);
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
    for (int k = 0; k < L; ++k)
        RPU_CHECK(layer_phase(net, k, RPU_PHASE_FORWARD, batch, ranks, rank, calls, max_calls, &n));
    for (int k = L - 1; k >= 0; --k)
        RPU_CHECK(
            layer_phase(net, k, RPU_PHASE_BACKWARD, batch, ranks, rank, calls, max_calls, &n));
    for (int k = 0; k < L; ++k)
        RPU_CHECK(layer_phase(net, k, RPU_PHASE_UPDATE, batch, ranks, rank, calls, max_calls, &n));
    *n_calls = n;
    return RPU_OK;
}
