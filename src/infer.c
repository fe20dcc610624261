/* The inference-drift driver (issue 7): program a trained network's tiles, drift them to
 * a list of times, compensate, evaluate the test set; repeated over independent device
 * realisations, with the repeats spread over groups of ranks. */
#include "agree_impl.h"
#include "error_impl.h"
#include "experiment_impl.h"
#include "net_io_impl.h"

#include "rpusim/layer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rpu_infer_result_free(rpu_infer_result *r) {
    if (!r) return;
    free(r->acc);
    free(r->loss);
    memset(r, 0, sizeof *r);
}

int rpu_infer_default_groups(int ranks, int repeats) {
    if (ranks < 1) ranks = 1;
    if (repeats < 1) repeats = 1;
    return ranks < repeats ? ranks : repeats;
}

/* The state of every owned tile, kept after loading so that each repeat starts from it. */
typedef struct {
    unsigned char *buf;
    size_t bytes;
} snapshot;

/* save != 0: copy the owned tiles' state items into s (allocating); else restore them. */
static rpu_status snap(rpu_net *net, snapshot *sn, int save) {
    size_t off = 0;
    for (int pass = save ? 0 : 1; pass < 2; ++pass) {
        off = 0;
        const int L = rpu_net_analog_count(net);
        for (int k = 0; k < L; ++k) {
            rpu_conv *l = rpu_net_analog_layer(net, k);
            const rpu_tile_grid *g = rpu_conv_grid(l);
            for (int t = 0; t < g->n_tiles; ++t) {
                rpu_tile *tile = rpu_conv_tile(l, t);
                if (!tile) continue;
                rpu_state_item it[RPU_TILE_MAX_STATE_ITEMS];
                const int n = rpu_tile_state_items(tile, it, RPU_TILE_MAX_STATE_ITEMS);
                for (int q = 0; q < n; ++q) {
                    const size_t b = rpu_state_item_bytes(&it[q]);
                    if (pass == 1 && save) memcpy(sn->buf + off, it[q].data, b);
                    if (pass == 1 && !save) memcpy(it[q].data, sn->buf + off, b);
                    off += b;
                }
                if (pass == 1 && !save) rpu_tile_state_loaded(tile);
            }
        }
        if (pass == 0) {
            sn->bytes = off;
            if (!(sn->buf = (unsigned char *)malloc(off ? off : 1)))
                return RPU_FAIL(RPU_ERR_NOMEM, "rpu_infer: out of memory for the tile state");
        }
    }
    return RPU_OK;
}

/* Programs (repeat r) or drifts (time index j) every analog layer; agrees on the group. */
static rpu_status for_layers(rpu_net *net, MPI_Comm gc, int program, uint64_t r, double t,
                             uint32_t j) {
    rpu_status s = RPU_OK;
    const int n = rpu_net_analog_count(net);
    for (int k = 0; k < n && s == RPU_OK; ++k) {
        rpu_conv *l = rpu_net_analog_layer(net, k);
        s = program ? rpu_conv_program(l, r) : rpu_conv_drift(l, t, j);
    }
    return rpu_agree(gc, s);
}

rpu_status rpu_infer(MPI_Comm comm, const rpu_experiment *e, const char *checkpoint,
                     const rpu_infer_params *p, rpu_infer_result *res) {
    if (!e || !checkpoint || !p || !res || !p->times)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_infer: NULL argument");
    memset(res, 0, sizeof *res);
    if (p->n_times < 1 || p->repeats < 1 || p->repeats > RPU_INFER_MAX_REPEATS)
        return RPU_FAIL(RPU_ERR_ARG,
                        "rpu_infer: %d times and %d repeats (need >= 1 time, 1..%d repeats)",
                        p->n_times, p->repeats, RPU_INFER_MAX_REPEATS);
    for (int j = 0; j < p->n_times; ++j)
        if (!(p->times[j] >= 0) || p->times[j] > RPU_INFER_MAX_TIME)
            return RPU_FAIL(RPU_ERR_ARG,
                            "rpu_infer: t_inference %g (entry %d) is outside [0, %g] seconds",
                            p->times[j], j + 1, RPU_INFER_MAX_TIME);
    if (e->cfg.kind != RPU_KIND_INFERENCE)
        return RPU_FAIL(RPU_ERR_CONFIG,
                        "%s: rpusim infer needs [rpu] kind = inference (programming and drift "
                        "act on inference tiles)",
                        e->source);
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    int G = p->groups > 0 ? p->groups : rpu_infer_default_groups(P, p->repeats);
    if (G > P)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_infer: %d groups need at least %d ranks (have %d)", G, G,
                        P);
    const int color = (int)((long)rank * G / P);
    MPI_Comm gc;
    if (MPI_Comm_split(comm, color, rank, &gc) != MPI_SUCCESS)
        return RPU_FAIL(RPU_ERR_MPI, "rpu_infer: MPI_Comm_split failed");
    int grank;
    MPI_Comm_rank(gc, &grank);

    const size_t cells = (size_t)p->repeats * p->n_times;
    res->repeats = p->repeats;
    res->n_times = p->n_times;
    res->groups = G;
    res->acc = (double *)calloc(cells, sizeof(double));
    res->loss = (double *)calloc(cells, sizeof(double));
    double *acc = (double *)calloc(2 * cells, sizeof(double));
    rpu_dataset test = {0};
    rpu_net *net = NULL;
    rpu_status s = RPU_OK;
    if (!res->acc || !res->loss || !acc) s = RPU_FAIL(RPU_ERR_NOMEM, "rpu_infer: out of memory");
    s = rpu_agree(gc, s);
    if (s == RPU_OK) s = net_open(gc, e, checkpoint, &test, &net);
    snapshot sn = {NULL, 0};
    if (s == RPU_OK) s = rpu_agree(gc, snap(net, &sn, 1));
    for (int r = 0; r < p->repeats && s == RPU_OK; ++r) {
        if (r % G != color) continue;
        snap(net, &sn, 0); /* every repeat starts from the checkpoint's state */
        s = for_layers(net, gc, 1, (uint64_t)r, 0, 0);
        for (int j = 0; j < p->n_times && s == RPU_OK; ++j) {
            s = for_layers(net, gc, 0, 0, p->times[j], (uint32_t)j);
            double loss = 0, a = 0;
            if (s == RPU_OK) s = net_evaluate(net, &test, e->run.batch_size, &loss, &a, NULL);
            if (s == RPU_OK && grank == 0) {
                acc[(size_t)r * p->n_times + j] = a;
                acc[cells + (size_t)r * p->n_times + j] = loss;
            }
            if (s == RPU_OK && p->on_result) p->on_result(p->ctx, r, j, a, loss);
        }
    }
    /* every group must have succeeded; then gather the table (one writer per entry) */
    s = rpu_agree(comm, s);
    if (s == RPU_OK && acc) {
        MPI_Allreduce(MPI_IN_PLACE, acc, (int)(2 * cells), MPI_DOUBLE, MPI_SUM, comm);
        memcpy(res->acc, acc, sizeof(double) * cells);
        memcpy(res->loss, acc + cells, sizeof(double) * cells);
    }
    free(acc);
    free(sn.buf);
    rpu_net_destroy(&net);
    rpu_dataset_free(&test);
    MPI_Comm_free(&gc);
    if (s != RPU_OK) rpu_infer_result_free(res);
    return s;
}

/* ------------------------------------------------------------------ read-out report */

rpu_status rpu_readout_report(MPI_Comm comm, const rpu_experiment *e, const char *checkpoint,
                              int over_sampling, rpu_readout_layer_report *out, int max,
                              int *n_out) {
    if (!e || !checkpoint || !out || !n_out)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_readout_report: NULL argument");
    *n_out = 0;
    rpu_net *net = NULL;
    rpu_status s = net_open(comm, e, checkpoint, NULL, &net);
    const int L = s == RPU_OK ? rpu_net_analog_count(net) : 0;
    for (int k = 0; k < L && k < max && s == RPU_OK; ++k) {
        rpu_conv *l = rpu_net_analog_layer(net, k);
        const int nw = rpu_conv_weight_count(l), O = rpu_conv_get_params(l)->out_channels;
        /* exact and realistic weights, then the two biases (read, not compared) */
        float *w = (float *)malloc(sizeof(float) * ((size_t)nw + (size_t)O) * 2);
        if (!w) {
            s = RPU_FAIL(RPU_ERR_NOMEM, "rpu_readout_report: out of memory");
            break;
        }
        const bool has_bias = rpu_conv_get_params(l)->bias != RPU_BIAS_NONE;
        float *b = w + 2 * (size_t)nw;
        s = rpu_conv_set_readout_oversampling(l, over_sampling);
        if (s == RPU_OK) s = rpu_conv_get_weights(l, w, has_bias ? b : NULL, RPU_READ_EXACT);
        if (s == RPU_OK)
            s = rpu_conv_get_weights(l, w + nw, has_bias ? b + O : NULL, RPU_READ_REALISTIC);
        if (s == RPU_OK) {
            rpu_readout_layer_report *r = &out[k];
            memset(r, 0, sizeof *r);
            snprintf(r->name, sizeof r->name, "%s", rpu_net_analog_name(net, k));
            r->tiles = rpu_conv_grid(l)->n_tiles;
            r->weights = nw;
            double ae = 0, aw = 0, mx = 0;
            for (int q = 0; q < nw; ++q) {
                const double d = fabs((double)w[nw + q] - w[q]);
                ae += d;
                aw += fabs((double)w[q]);
                mx = d > mx ? d : mx;
            }
            r->mean_abs_err = ae / nw;
            r->max_abs_err = mx;
            r->mean_abs_w = aw / nw;
            r->rel_err = aw > 0 ? ae / aw : 0;
            *n_out = k + 1;
        }
        free(w);
    }
    rpu_net_destroy(&net);
    return s;
}
