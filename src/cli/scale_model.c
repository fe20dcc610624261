/* The alpha-beta + compute model of `rpusim bench scale` (see scale_model.h). */
#include "scale_model.h"

#include "rpusim/net.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ one call */

/* ceil(log2 p) for p >= 1 */
static double log2_ceil(int p) {
    int l = 0;
    while ((1L << l) < p)
        ++l;
    return l;
}

static sm_cost cost(double seconds, double wire, double messages, const char *algo) {
    return (sm_cost){seconds, wire, messages, algo};
}

static sm_cost cheaper(sm_cost a, sm_cost b) {
    return b.seconds < a.seconds ? b : a;
}

/* Allreduce of B bytes among p ranks over one link (alpha a, bandwidth w), the cheapest of
 *   recursive doubling:  ceil(log2 p) (a + B/w)                    (small messages)
 *   Rabenseifner:        2 ceil(log2 p) a + 2 (p-1)/p B/w          (reduce-scatter by
 *                        recursive halving, then allgather by recursive doubling)
 *   ring:                2 (p-1) a + 2 (p-1)/p B/w                 (reduce-scatter and
 *                        allgather around a ring)
 * (Thakur, Rabenseifner and Gropp, "Optimization of collective communication operations in
 * MPICH", 2005; a tuned MPI switches between such algorithms by size.) */
static sm_cost allreduce_flat(int p, double B, sm_link k) {
    if (p <= 1) return cost(0, 0, 0, "local");
    const double L = log2_ceil(p), f = 2.0 * (p - 1) / p;
    sm_cost c = cost(L * (k.alpha + B / k.beta), L * B, L, "recursive doubling");
    c = cheaper(c, cost(2 * L * k.alpha + f * B / k.beta, f * B, 2 * L, "Rabenseifner"));
    c = cheaper(c, cost(2 * (p - 1) * k.alpha + f * B / k.beta, f * B, 2.0 * (p - 1), "ring"));
    return c;
}

/* Broadcast (or, the same shapes reversed, reduce) of B bytes among p ranks: binomial tree
 * ceil(log2 p) (a + B/w), or scatter + allgather (van de Geijn) 2 ceil(log2 p) a +
 * 2 (p-1)/p B/w. */
static sm_cost tree_flat(int p, double B, sm_link k) {
    if (p <= 1) return cost(0, 0, 0, "local");
    const double L = log2_ceil(p), f = 2.0 * (p - 1) / p;
    sm_cost c = cost(L * (k.alpha + B / k.beta), L * B, L, "binomial tree");
    return cheaper(c, cost(2 * L * k.alpha + f * B / k.beta, f * B, 2 * L, "scatter+allgather"));
}

/* Reduce-scatter or allgather of B bytes in all among p ranks: recursive halving /
 * doubling, ceil(log2 p) a + (p-1)/p B/w. */
static sm_cost halving_flat(int p, double B, sm_link k) {
    if (p <= 1) return cost(0, 0, 0, "local");
    const double L = log2_ceil(p), f = (double)(p - 1) / p;
    return cost(L * k.alpha + f * B / k.beta, f * B, L, "recursive halving/doubling");
}

static sm_cost sum2(sm_cost a, sm_cost b, const char *algo) {
    return cost(a.seconds + b.seconds, a.wire_bytes + b.wire_bytes, a.messages + b.messages, algo);
}

sm_cost sm_call_cost(const sm_machine *m, rpu_comm_op op, double B, int group) {
    const int R = m->per_node > 0 ? m->per_node : 1;
    const int nodes = (group + R - 1) / R, r = group < R ? group : R;
    const sm_link in = m->node, out = m->net;
    switch (op) {
    case RPU_COMM_ALLREDUCE:
        if (m->fit_group > 0 && group == m->fit_group) {
            const sm_cost f = allreduce_flat(group, B, in); /* bytes and messages */
            return cost(m->fit.alpha + B / m->fit.beta, f.wire_bytes, f.messages,
                        "fitted to the measured allreduces");
        }
        if (nodes <= 1) return allreduce_flat(group, B, in);
        /* hierarchical: reduce within each node, allreduce among the node leaders,
         * broadcast within each node */
        return sum2(sum2(tree_flat(r, B, in), allreduce_flat(nodes, B, out), ""),
                    tree_flat(r, B, in), "hierarchical");
    case RPU_COMM_REDUCE:
    case RPU_COMM_BCAST:
        if (nodes <= 1) return tree_flat(group, B, in);
        return sum2(tree_flat(nodes, B, out), tree_flat(r, B, in), "hierarchical");
    case RPU_COMM_REDUCE_SCATTER:
    case RPU_COMM_ALLGATHER: /* across nodes: as if every rank were on the network */
        return halving_flat(group, B, nodes <= 1 ? in : out);
    case RPU_COMM_ALLTOALL: { /* a rank's partial results to the owners of their samples:
                                 few partners each; modelled as ceil(log2 p) messages (the
                                 latency of a sparse exchange) and its bytes once */
        if (group <= 1) return cost(0, 0, 0, "local");
        const sm_link k = nodes <= 1 ? in : out;
        const double L = log2_ceil(group);
        return cost(L * k.alpha + B / k.beta, B, L, "sparse exchange");
    }
    case RPU_COMM_BARRIER: {
        const double L = log2_ceil(group);
        return cost(L * (nodes <= 1 ? in : out).alpha, 0, L, "dissemination");
    }
    case RPU_COMM_SEND:
    case RPU_COMM_RECV: { /* across nodes when there are several (the pessimistic case) */
        const sm_link k = nodes <= 1 ? in : out;
        return cost(k.alpha + B / k.beta, op == RPU_COMM_SEND ? B : 0, op == RPU_COMM_SEND,
                    "point-to-point");
    }
    default:
        return cost(0, 0, 0, "?");
    }
}

/* ------------------------------------------------------------------ a step */

/* The phase time of per-rank compute C[0..ranks): the slowest rank, or the busiest node's
 * summed compute over its cores when it has more busy ranks than cores. */
static double shared_max(const double *C, int ranks, const sm_machine *m) {
    const int R = m->per_node > 0 ? m->per_node : 1;
    const double cores = m->cores > 0 ? m->cores : 1;
    double worst = 0;
    for (int r0 = 0; r0 < ranks; r0 += R) {
        double sum = 0;
        for (int r = r0; r < r0 + R && r < ranks; ++r) {
            sum += C[r];
            if (C[r] > worst) worst = C[r];
        }
        if (sum / cores > worst) worst = sum / cores;
    }
    return worst;
}

/* Samples [c0, c1) of a batch of n that holder m of h computes (layer.c's holder_share:
 * blocks of whole samples, at least 64 patch vectors each, dealt as evenly as blocks
 * allow), as a fraction of n. */
static double batch_share(int n, int lout, int m, int h) {
    const int spb = (64 + lout - 1) / lout, nb = (n + spb - 1) / spb;
    const long b0 = (long)nb * m / h, b1 = (long)nb * (m + 1) / h;
    const long c0 = b0 * spb < n ? b0 * spb : n, c1 = b1 * spb < n ? b1 * spb : n;
    return (double)(c1 - c0) / n;
}

/* Rows [r0, r1) of `rows` that holder m of h updates (layer.c's holder_rows: blocks of
 * B rows, rpu_tile_update_row_block), as a fraction. */
static double row_share(int rows, int B, int m, int h) {
    const int nb = (rows + B - 1) / B;
    const long b0 = (long)nb * m / h, b1 = (long)nb * (m + 1) / h;
    const long r0 = b0 * B < rows ? b0 * B : rows, r1 = b1 * B < rows ? b1 * B : rows;
    return (double)(r1 - r0) / rows;
}

/* Adds tile t's compute in phase f (scaled by s) to its holders' C. */
static void add_tile(double *C, int ranks, const rpu_tile_slot *ts, const sm_layer *L, int t, int f,
                     int batch, double s, int owner) {
    const int h = ts->holders > 1 ? ts->holders : 1;
    const double c = L->tile[f][t];
    for (int m = 0; m < h; ++m) {
        const int r = (ts->owner + m) % ranks;
        const int q = h == ranks ? r : m; /* the share's index (rpu_tile_share) */
        if (h == 1) {
            C[r] += c * s;
        } else if (f == RPU_PHASE_UPDATE && L->summable) {
            /* each holder sums the gradient of its own samples' blocks */
            C[r] += c * (L->batch_split ? batch_share(batch, L->lout, q, h) : (m == 0)) * s;
        } else if (f == RPU_PHASE_UPDATE && owner >= 0) {
            C[r] += (m == owner ? c : 0) * s; /* whole by one holder (rpu_update_owners) */
        } else if (f == RPU_PHASE_UPDATE) {
            /* rows split; the part every slice repeats (upd_rep) not */
            const double rep = L->upd_rep ? L->upd_rep[t] : 0;
            const int B = L->row_block > 0 ? L->row_block : RPU_UPDATE_ROW_BLOCK;
            C[r] += (L->row_update ? c * (rep + (1 - rep) * row_share(ts->rows, B, m, h)) : c) * s;
        } else {
            /* the MVMs split by samples; the layer's own work (patches, gradient rows) too
             * where the update is summed (the holder keeps only its samples'), else every
             * holder that updates rows does it for the whole batch (a pulsed update takes
             * all of it; with an owner, only the owner: rpu_conv_set_update_owners) */
            const double mvm = L->mvm[f] ? L->mvm[f][t] : 0;
            const double part = L->batch_split ? batch_share(batch, L->lout, q, h) : 1.0;
            const bool all = !L->summable && (owner < 0 || owner == m);
            C[r] += (mvm * part + (c - mvm) * (all ? 1.0 : part)) * s;
        }
    }
}

/* Elements per sample of an analog layer's input and output. */
static rpu_status layer_elems(const sm_layer *L, double *in, double *out) {
    *in = *out = 0;
    if (!L->p) return RPU_OK;
    int o[3] = {1, 1, 1};
    if (L->p->ndim > 0) {
        const rpu_status s = rpu_conv_output_size(L->p, L->in_size, o);
        if (s != RPU_OK) return s;
    }
    double i = L->p->in_channels, u = L->p->out_channels;
    for (int a = 0; a < L->p->ndim; ++a) {
        i *= L->in_size[a];
        u *= o[a];
    }
    *in = i, *out = u;
    return RPU_OK;
}

/* The update owners of prof's network on `ranks` ranks (rpu_conv_update_owners_plan), into
 * owners[l] (free each and the array). */
static rpu_status plan_owners(const sm_profile *prof, int batch, int ranks, int ***owners) {
    const int L = prof->n_layers;
    const rpu_conv_params **ps = calloc((size_t)L + 1, sizeof *ps);
    const rpu_config **cfgs = calloc((size_t)L + 1, sizeof *cfgs);
    const int **sizes = calloc((size_t)L + 1, sizeof *sizes);
    *owners = calloc((size_t)L + 1, sizeof **owners);
    rpu_status st = ps && cfgs && sizes && *owners ? RPU_OK : RPU_ERR_NOMEM;
    for (int l = 0; l < L && st == RPU_OK; ++l) {
        ps[l] = prof->layers[l].p;
        cfgs[l] = prof->layers[l].cfg;
        sizes[l] = prof->layers[l].in_size;
    }
    if (st == RPU_OK) st = rpu_conv_update_owners_plan(ps, cfgs, sizes, L, batch, ranks, *owners);
    free(ps), free(cfgs), free(sizes);
    return st;
}

/* Per-rank totals of the calls a prediction counts. */
typedef struct {
    double *pay, *wire, *msg;
    int *ncalls;
} tally;

/* One call of `bytes` payload on `group` ranks made by rank r: its totals; returns its
 * seconds. */
static double charge(const sm_machine *m, const tally *t, int r, rpu_comm_op op, double bytes,
                     int group) {
    const sm_cost c = sm_call_cost(m, op, bytes, group);
    t->pay[r] += bytes;
    t->wire[r] += c.wire_bytes;
    t->msg[r] += c.messages;
    t->ncalls[r] += 1;
    return c.seconds;
}

rpu_status sm_predict(const sm_profile *prof, const sm_machine *m, int ranks, int batch,
                      sm_result *res, double *layer_seconds) {
    memset(res, 0, sizeof *res);
    const double s = (double)batch / prof->batch0;
    double *C = calloc((size_t)ranks, sizeof *C), *U = calloc((size_t)ranks, sizeof *U);
    double *pay = calloc((size_t)ranks, sizeof *pay), *wire = calloc((size_t)ranks, sizeof *wire);
    double *msg = calloc((size_t)ranks, sizeof *msg);
    int *ncalls = calloc((size_t)ranks, sizeof *ncalls), cap = 0;
    rpu_comm_call *calls = NULL;
    rpu_status st = RPU_OK;
    if (!C || !U || !pay || !wire || !msg || !ncalls) st = RPU_ERR_NOMEM;
    const tally T = {pay, wire, msg, ncalls};
    /* who updates each tile (rpu_net_update's owners, announced before the forward) */
    int **owners = NULL;
    if (st == RPU_OK) st = plan_owners(prof, batch, ranks, &owners);
    for (int l = 0; l < prof->n_layers && st == RPU_OK; ++l) {
        const sm_layer *L = &prof->layers[l];
        rpu_tile_grid g = {0};
        if (L->p && (st = rpu_conv_placement(L->p, L->cfg, ranks, &g)) != RPU_OK) break;
        double comm[3] = {0, 0, 0};
        for (int r = 0; L->p && r < ranks && st == RPU_OK; ++r) {
            int n = 0;
            st = rpu_conv_comm_plan_parts(L->p, L->cfg, batch, L->in_size, L->input_grad, ranks, r,
                                          calls, cap, &n);
            if (st == RPU_OK && n > cap) { /* grow and ask again */
                rpu_comm_call *c = realloc(calls, sizeof *c * (size_t)n);
                if (!c) {
                    st = RPU_ERR_NOMEM;
                    break;
                }
                calls = c, cap = n;
                st = rpu_conv_comm_plan_parts(L->p, L->cfg, batch, L->in_size, L->input_grad, ranks,
                                              r, calls, cap, &n);
            }
            double mine[3] = {0, 0, 0};
            for (int q = 0; q < n && st == RPU_OK; ++q)
                mine[calls[q].phase] +=
                    charge(m, &T, r, calls[q].op, (double)calls[q].count * calls[q].type_bytes,
                           calls[q].group);
            /* the network's own calls (net.c): the fetches of what an analog layer after
             * the first reads of other ranks' input samples and one before the last of
             * their output gradient (a status check and an exchange each), the gather of
             * the logits after the last layer */
            if (st == RPU_OK && ranks > 1) {
                double ie = 0, oe = 0;
                st = layer_elems(L, &ie, &oe);
                bool own = false;
                if (st == RPU_OK) st = rpu_conv_own_samples(L->p, L->cfg, L->in_size, ranks, &own);
                const rpu_net_gathers ga = rpu_net_gathers_at(l, prof->n_layers, true, own);
                struct {
                    int f;
                    rpu_comm_op op;
                    double bytes;
                } nc[5];
                int nn = 0;
                for (int o = 0; o < 2 && st == RPU_OK; ++o) {
                    if (!(o ? ga.output_grad : ga.input)) continue;
                    bool issued = false, whole = false;
                    int64_t sent = 0;
                    st = rpu_conv_fetch_plan(L->p, L->cfg, batch, L->in_size, owners[l], o == 1,
                                             ranks, r,
                                             &issued, &whole, &sent);
                    if (st != RPU_OK || !issued) continue;
                    if (whole) { /* the gather of the whole array */
                        nc[nn].f = o, nc[nn].op = RPU_COMM_ALLGATHER, nc[nn++].bytes = 4.0 * sent;
                        continue;
                    }
                    nc[nn].f = o, nc[nn].op = RPU_COMM_ALLREDUCE, nc[nn++].bytes = 4;
                    nc[nn].f = o, nc[nn].op = RPU_COMM_ALLTOALL, nc[nn++].bytes = 4.0 * sent;
                }
                if (ga.logits)
                    nc[nn].f = 0, nc[nn].op = RPU_COMM_ALLGATHER, nc[nn++].bytes = 4.0 * batch * oe;
                /* an announced split by rows: the update's maxima (one tile per holder) */
                enum { MC = RPU_UPDATE_MAXIMA_MAX_CALLS };
                rpu_comm_call mc[MC];
                int nm = 0;
                if (st == RPU_OK && owners[l])
                    st = rpu_conv_update_maxima_plan(L->p, L->cfg, batch, L->in_size, owners[l],
                                                     ranks, r, mc, MC, &nm);
                for (int j = 0; j < nm && j < MC && st == RPU_OK; ++j)
                    mine[RPU_PHASE_UPDATE] += charge(
                        m, &T, r, mc[j].op, (double)mc[j].count * mc[j].type_bytes, mc[j].group);
                for (int j = 0; j < nn && st == RPU_OK; ++j)
                    mine[nc[j].f] += charge(m, &T, r, nc[j].op, nc[j].bytes, ranks);
            }
            for (int f = 0; f < 3; ++f)
                if (mine[f] > comm[f]) comm[f] = mine[f];
        }
        for (int f = 0; f < 3 && st == RPU_OK; ++f) {
            /* a digital layer computes this rank's samples only (rpu_batch_part); an analog
             * layer's own replicated work (patches of the whole batch, ...) runs everywhere */
            for (int r = 0; r < ranks; ++r) {
                int s0 = 0, s1 = batch;
                if (!L->p) rpu_batch_part(batch, r, ranks, &s0, &s1);
                C[r] = L->fixed[f] * s * (double)(s1 - s0) / batch;
            }
            for (int t = 0; L->p && t < g.n_tiles && t < L->n_tiles; ++t)
                add_tile(C, ranks, &g.tiles[t], L, t, f, batch, s, owners[l] ? owners[l][t] : -1);
            if (f == RPU_PHASE_UPDATE) { /* no synchronisation: summed over the layers */
                for (int r = 0; r < ranks; ++r)
                    U[r] += C[r];
                if (layer_seconds) layer_seconds[3 * l + f] = shared_max(C, ranks, m) + comm[f];
                res->comm += comm[f];
                continue;
            }
            const double tc = shared_max(C, ranks, m);
            res->compute += tc;
            res->comm += comm[f];
            if (layer_seconds) layer_seconds[3 * l + f] = tc + comm[f];
        }
        rpu_tile_grid_free(&g);
    }
    if (st == RPU_OK) {
        res->compute += shared_max(U, ranks, m);
        /* the rest of the step (loss, copies) runs on every rank */
        for (int r = 0; r < ranks; ++r)
            C[r] = prof->other * s;
        res->compute += shared_max(C, ranks, m);
        res->step = res->compute + res->comm;
        for (int r = 0; r < ranks; ++r) {
            if (pay[r] > res->payload) res->payload = pay[r];
            if (wire[r] > res->wire_bytes) res->wire_bytes = wire[r];
            if (msg[r] > res->messages) res->messages = msg[r];
            if (ncalls[r] > res->calls) res->calls = ncalls[r];
        }
    }
    for (int l = 0; owners && l < prof->n_layers; ++l)
        free(owners[l]);
    free(owners);
    free(C), free(U), free(pay), free(wire), free(msg), free(ncalls), free(calls);
    return st;
}

/* ------------------------------------------------------------------ units */

/* number, then the unit (blanks around it allowed); NULL or the fault */
static const char *split_unit(const char *text, double *v, const char **unit) {
    if (!text || !*text) return "empty";
    char *end = NULL;
    *v = strtod(text, &end);
    if (end == text) return "not a number";
    if (!isfinite(*v) || !(*v > 0)) return "must be a positive finite number";
    while (*end == ' ')
        ++end;
    *unit = end;
    return NULL;
}

const char *sm_parse_bandwidth(const char *text, double *out) {
    double v;
    const char *u;
    const char *f = split_unit(text, &v, &u);
    if (f) return f;
    static const struct {
        const char *name;
        double factor;
    } units[] = {{"", 1},          {"B/s", 1},       {"KB/s", 1e3},    {"MB/s", 1e6},
                 {"GB/s", 1e9},    {"TB/s", 1e12},   {"b/s", 0.125},   {"Kb/s", 125.0},
                 {"Mb/s", 1.25e5}, {"Gb/s", 1.25e8}, {"Tb/s", 1.25e11}};
    for (size_t k = 0; k < sizeof units / sizeof *units; ++k)
        if (!strcmp(u, units[k].name)) {
            *out = v * units[k].factor;
            return NULL;
        }
    return "unknown unit (want b/s, Kb/s, Mb/s, Gb/s, Tb/s for bits or B/s, KB/s, MB/s, GB/s, "
           "TB/s for bytes; K = 1000)";
}

const char *sm_parse_latency(const char *text, double *out) {
    double v;
    const char *u;
    const char *f = split_unit(text, &v, &u);
    if (f) return f;
    static const struct {
        const char *name;
        double factor;
    } units[] = {{"", 1}, {"s", 1}, {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}};
    for (size_t k = 0; k < sizeof units / sizeof *units; ++k)
        if (!strcmp(u, units[k].name)) {
            *out = v * units[k].factor;
            return NULL;
        }
    return "unknown unit (want s, ms, us or ns)";
}
