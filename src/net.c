/* Sequential networks built from an experiment: mapped analog conv/linear layers (spread
 * over the communicator) and replicated digital layers; forward, cross-entropy backward,
 * SGD update. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "experiment_impl.h"

#include "agree_impl.h"
#include "deliver_impl.h"
#include "error_impl.h"
#include "rpusim/digital.h"
#include "rpusim/layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const exp_layer *spec;
    uint32_t id;                  /* position in the network: layer id of its streams */
    int in_c, in_nd, in_sp[3];    /* input shape per sample */
    int out_c, out_nd, out_sp[3]; /* output shape per sample */
    size_t in_n, out_n;           /* elements per sample */
    rpu_conv *conv;               /* conv, or the conv behind lin */
    bool own;                     /* conv reads only each rank's samples (rpu_conv_own_samples) */
    rpu_linear *lin;
    rpu_pool_params pool;
    int32_t *argmax;
    float *mask;
    float *y;           /* output activations [batch, out_n] */
    float *dy;          /* gradient w.r.t. the output */
    float *mom;         /* bias momentum */
    double seconds[3];  /* forward, backward, update time while profiling */
    int *uown;          /* [n_tiles] who updates each tile (rpu_conv_update_begin's owners) */
    rpu_status ustatus; /* its rpu_conv_update_begin's, until rpu_conv_update_end */
} net_layer;

struct rpu_net {
    MPI_Comm comm;
    const rpu_experiment *exp;
    int n_layers;
    net_layer *layers;
    int in_c, in_nd, in_sp[3];
    size_t in_n;
    float *x;   /* copy of the input batch */
    size_t cap; /* batch capacity of the buffers */
    int n;      /* batch of the last forward */
    bool training;
    uint64_t step;
    float *dlogits;
    int ranks, rank;
    int *counts;    /* [2 * ranks] counts and displacements of the gathers of every rank's part */
    /* [n_layers] rpu_update_owners' arguments: the analog layers' grids (else NULL), their
     * update vectors, their uown */
    const rpu_tile_grid **ugrid;
    int64_t *uvec;
    int **uowns;
    bool uplanned;  /* the last training forward announced the layers' uown (plan_updates) */
    bool udeferred; /* the last rpu_net_update ran in two phases (layers' uown hold) */
    bool profiling; /* time every layer (rpu_net_set_profiling) */
    double loss_seconds; /* the loss and its gradient, while profiling */
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *type_name(exp_layer_type t) {
    static const char *names[] = {"conv1d",  "conv2d",  "conv3d",  "linear",  "relu",    "tanh",
                                  "sigmoid", "maxpool", "avgpool", "flatten", "dropout", "?"};
    return names[t];
}

static size_t prod(int c, int nd, const int *sp) {
    size_t n = (size_t)c;
    for (int a = 0; a < nd; ++a)
        n *= (size_t)sp[a];
    return n;
}

static void shape_text(int c, int nd, const int *sp, char *buf, size_t len) {
    int k = snprintf(buf, len, "[%d", c);
    for (int a = 0; a < nd && k > 0 && (size_t)k < len; ++a)
        k += snprintf(buf + k, len - (size_t)k, ", %d", sp[a]);
    if (k > 0 && (size_t)k < len) snprintf(buf + k, len - (size_t)k, "]");
}

/* Shape of one layer from its input shape; creates analog layers (collective). */
static rpu_status build_layer(rpu_net *net, net_layer *L) {
    const rpu_experiment *e = net->exp;
    const exp_layer *s = L->spec;
    char have[96];
    shape_text(L->in_c, L->in_nd, L->in_sp, have, sizeof have);
    L->out_c = L->in_c;
    L->out_nd = L->in_nd;
    memcpy(L->out_sp, L->in_sp, sizeof L->out_sp);
    switch (s->type) {
    case EXP_CONV1D:
    case EXP_CONV2D:
    case EXP_CONV3D: {
        const int nd = (int)s->type - (int)EXP_CONV1D + 1;
        if (L->in_nd != nd)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%s:%d: [layer.%s] %s needs an input with %d spatial dimension(s), "
                            "got %s (per sample)",
                            e->source, s->line, s->name, type_name(s->type), nd, have);
        rpu_conv_params p;
        rpu_conv_params_default(&p, nd, L->in_c, s->out, s->kernel);
        for (int a = 0; a < nd; ++a) {
            p.stride[a] = s->stride;
            p.padding[a] = s->padding;
            p.dilation[a] = s->dilation;
        }
        p.groups = s->groups;
        p.split = s->split;
        p.bias = rpu_bias_for_split(s->bias, &e->cfg, s->split,
                                    rpu_conv_tile_size(L->in_c, s->groups, nd, p.kernel),
                                    s->out / (s->groups > 0 ? s->groups : 1));
        p.layer_id = L->id;
        p.seed = e->run.seed;
        snprintf(p.name, sizeof p.name, "%s", s->name);
        /* the shape first: it needs no layer (and no collective) */
        rpu_status st = rpu_conv_output_size(&p, L->in_sp, L->out_sp);
        if (st == RPU_OK) st = rpu_conv_create(net->comm, &p, &e->cfg, &L->conv);
        if (st != RPU_OK) {
            char inner[1024];
            snprintf(inner, sizeof inner, "%s", rpu_error_message());
            return RPU_FAIL(st == RPU_ERR_ARG ? RPU_ERR_CONFIG : st,
                            "%s:%d: [layer.%s] %s (input %s)", e->source, s->line, s->name, inner,
                            have);
        }
        L->out_c = s->out;
        break;
    }
    case EXP_LINEAR: {
        if (L->in_nd != 0)
            return RPU_FAIL(RPU_ERR_CONFIG,
                            "%s:%d: [layer.%s] linear needs a flat input (add a flatten layer "
                            "before it), got %s",
                            e->source, s->line, s->name, have);
        rpu_linear_params p;
        rpu_linear_params_default(&p, L->in_c, s->out);
        p.split = s->split;
        p.bias = rpu_bias_for_split(s->bias, &e->cfg, s->split, L->in_c, s->out);
        p.layer_id = L->id;
        p.seed = e->run.seed;
        snprintf(p.name, sizeof p.name, "%s", s->name);
        rpu_status st = rpu_linear_create(net->comm, &p, &e->cfg, &L->lin);
        if (st != RPU_OK) {
            char inner[1024];
            snprintf(inner, sizeof inner, "%s", rpu_error_message());
            return RPU_FAIL(st, "%s:%d: [layer.%s] %s", e->source, s->line, s->name, inner);
        }
        L->conv = rpu_linear_as_conv(L->lin);
        L->out_c = s->out;
        break;
    }
    case EXP_MAXPOOL:
    case EXP_AVGPOOL: {
        if (L->in_nd < 1)
            return RPU_FAIL(RPU_ERR_CONFIG, "%s:%d: [layer.%s] %s needs a spatial input, got %s",
                            e->source, s->line, s->name, type_name(s->type), have);
        rpu_pool_params_default(&L->pool, L->in_nd, s->kernel);
        for (int a = 0; a < L->in_nd; ++a) {
            L->pool.stride[a] = s->stride;
            L->pool.padding[a] = s->padding;
        }
        if (rpu_pool_output_size(&L->pool, L->in_sp, L->out_sp) != RPU_OK) {
            char inner[1024];
            snprintf(inner, sizeof inner, "%s", rpu_error_message());
            return RPU_FAIL(RPU_ERR_CONFIG, "%s:%d: [layer.%s] %s (input %s)", e->source, s->line,
                            s->name, inner, have);
        }
        break;
    }
    case EXP_FLATTEN:
        L->out_c = (int)prod(L->in_c, L->in_nd, L->in_sp);
        L->out_nd = 0;
        break;
    default:
        break; /* elementwise: same shape */
    }
    L->in_n = prod(L->in_c, L->in_nd, L->in_sp);
    L->out_n = prod(L->out_c, L->out_nd, L->out_sp);
    if (L->conv)
        RPU_CHECK(rpu_conv_own_samples(rpu_conv_get_params(L->conv), rpu_conv_config(L->conv),
                                       L->in_sp, net->ranks, &L->own));
    if (L->conv && rpu_conv_get_params(L->conv)->bias == RPU_BIAS_DIGITAL &&
        !(L->mom = (float *)calloc((size_t)L->out_c, sizeof(float))))
        return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the bias momentum of layer %s", s->name);
    return RPU_OK;
}

rpu_status rpu_net_create(MPI_Comm comm, const rpu_experiment *exp, int channels, int ndim,
                          const int *spatial, rpu_net **out) {
    if (!out) return RPU_FAIL(RPU_ERR_ARG, "rpu_net_create: NULL output");
    *out = NULL;
    if (!exp || channels < 1 || ndim < 0 || ndim > 3 || (ndim > 0 && !spatial))
        return RPU_FAIL(RPU_ERR_ARG, "rpu_net_create: bad input shape");
    rpu_net *net = (rpu_net *)calloc(1, sizeof *net);
    if (!net) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    net->comm = comm;
    net->exp = exp;
    net->training = true;
    MPI_Comm_size(comm, &net->ranks);
    MPI_Comm_rank(comm, &net->rank);
    net->counts = (int *)malloc(sizeof(int) * 2 * (size_t)net->ranks);
    rpu_status sc =
        rpu_agree(comm, net->counts ? RPU_OK : RPU_FAIL(RPU_ERR_NOMEM, "out of memory"));
    if (sc != RPU_OK) {
        free(net->counts);
        free(net);
        return sc;
    }
    net->in_c = channels;
    net->in_nd = ndim;
    for (int a = 0; a < ndim; ++a)
        net->in_sp[a] = spatial[a];
    net->in_n = prod(channels, ndim, net->in_sp);
    net->n_layers = exp->n_layers;
    net->layers = (net_layer *)calloc((size_t)exp->n_layers, sizeof(net_layer));
    rpu_status s = net->layers ? RPU_OK : RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    int c = channels, nd = ndim, sp[3] = {1, 1, 1};
    for (int a = 0; a < ndim; ++a)
        sp[a] = spatial[a];
    for (int k = 0; k < net->n_layers && s == RPU_OK; ++k) {
        net_layer *L = &net->layers[k];
        L->spec = &exp->layers[k];
        L->id = (uint32_t)k + 1;
        L->in_c = c, L->in_nd = nd;
        memcpy(L->in_sp, sp, sizeof sp);
        s = build_layer(net, L);
        c = L->out_c, nd = L->out_nd;
        memcpy(sp, L->out_sp, sizeof sp);
    }
    if (s == RPU_OK) {
        const size_t nl = (size_t)net->n_layers;
        net->ugrid = (const rpu_tile_grid **)calloc(nl, sizeof *net->ugrid);
        net->uvec = (int64_t *)calloc(nl, sizeof *net->uvec);
        net->uowns = (int **)calloc(nl, sizeof *net->uowns);
        if (!net->ugrid || !net->uvec || !net->uowns) s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < net->n_layers && s == RPU_OK; ++k) {
        net_layer *L = &net->layers[k];
        if (!L->conv) continue;
        L->uown = (int *)malloc(sizeof(int) * (size_t)rpu_conv_grid(L->conv)->n_tiles);
        if (!L->uown) s = RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
        net->ugrid[k] = rpu_conv_grid(L->conv);
        net->uowns[k] = L->uown;
    }
    s = rpu_agree(comm, s);
    if (s == RPU_OK && nd != 0) {
        const exp_layer *last = &exp->layers[net->n_layers - 1];
        s = RPU_FAIL(RPU_ERR_CONFIG,
                     "%s:%d: [layer.%s] the last layer must give flat class scores (end with "
                     "flatten + linear)",
                     exp->source, last->line, last->name);
    }
    if (s != RPU_OK) {
        rpu_net_destroy(&net);
        return s;
    }
    *out = net;
    return RPU_OK;
}

void rpu_net_destroy(rpu_net **pnet) {
    if (!pnet || !*pnet) return;
    rpu_net *net = *pnet;
    for (int k = 0; net->layers && k < net->n_layers; ++k) {
        net_layer *L = &net->layers[k];
        if (L->lin)
            rpu_linear_destroy(&L->lin);
        else
            rpu_conv_destroy(&L->conv);
        free(L->argmax), free(L->mask), free(L->y), free(L->dy), free(L->mom), free(L->uown);
    }
    free(net->layers);
    free(net->ugrid), free(net->uvec), free(net->uowns);
    free(net->x);
    free(net->dlogits);
    free(net->counts);
    free(net);
    *pnet = NULL;
}

void rpu_net_set_training(rpu_net *net, bool training) {
    if (!net) return;
    net->training = training;
    for (int k = 0; k < net->n_layers; ++k)
        if (net->layers[k].conv) rpu_conv_set_training(net->layers[k].conv, training);
}

void rpu_net_set_step(rpu_net *net, uint64_t step) {
    if (net) net->step = step;
}

int rpu_net_outputs(const rpu_net *net) {
    return net && net->n_layers ? net->layers[net->n_layers - 1].out_c : 0;
}

static rpu_status ensure_batch(rpu_net *net, int n) {
    if ((size_t)n <= net->cap) return RPU_OK;
    const size_t N = (size_t)n;
    float *x = (float *)realloc(net->x, sizeof(float) * N * net->in_n);
    if (!x) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for a batch of %d", n);
    net->x = x;
    for (int k = 0; k < net->n_layers; ++k) {
        net_layer *L = &net->layers[k];
        float *y = (float *)realloc(L->y, sizeof(float) * N * L->out_n);
        float *dy = y ? (float *)realloc(L->dy, sizeof(float) * N * L->out_n) : NULL;
        if (y) L->y = y;
        if (dy) L->dy = dy;
        if (!y || !dy) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for a batch of %d", n);
        if (L->spec->type == EXP_MAXPOOL) {
            int32_t *a = (int32_t *)realloc(L->argmax, sizeof(int32_t) * N * L->out_n);
            if (!a) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
            L->argmax = a;
        }
        if (L->spec->type == EXP_DROPOUT) {
            float *m = (float *)realloc(L->mask, sizeof(float) * N * L->out_n);
            if (!m) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
            L->mask = m;
        }
    }
    float *d = (float *)realloc(net->dlogits, sizeof(float) * N * (size_t)rpu_net_outputs(net));
    if (!d) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory");
    net->dlogits = d;
    net->cap = N;
    return RPU_OK;
}

/* Whether every analog layer's update is split among its tiles' holders
 * (rpu_conv_update_splits; the same on every rank: more ranks than tiles, and a config
 * property), so that rpu_net_update can run all their own parts before any exchange. */
static bool all_split(const rpu_net *net) {
    bool any = false;
    for (int k = 0; k < net->n_layers; ++k) {
        const net_layer *L = &net->layers[k];
        if (!L->conv) continue;
        if (!rpu_conv_update_splits(L->conv)) return false;
        any = true;
    }
    return any;
}

/* Before a training forward on a batch of n (collective only in the sense that every rank
 * computes the same): who will update each tile (rpu_update_owners, into the layers' uown;
 * where not every layer's update splits, -1: each layer's holders split theirs by rows),
 * announced to the layers (rpu_conv_set_update_owners), so that only a tile's updating
 * holder keeps and fetches every sample, and the holders of a split by rows only their
 * rows of the output gradient. On one rank, or outside training, the layers hear NULL. */
static rpu_status plan_updates(rpu_net *net, int n) {
    const bool announce = net->training && net->ranks > 1;
    net->uplanned = announce && all_split(net);
    if (net->uplanned) {
        for (int k = 0; k < net->n_layers; ++k)
            net->uvec[k] = (int64_t)n * (int64_t)prod(1, net->layers[k].out_nd,
                                                      net->layers[k].out_sp);
        RPU_CHECK(rpu_update_owners(net->ugrid, net->uvec, net->n_layers, net->ranks, net->uowns));
    } else {
        for (int k = 0; k < net->n_layers; ++k) {
            const net_layer *L = &net->layers[k];
            for (int t = 0; L->conv && t < rpu_conv_grid(L->conv)->n_tiles; ++t)
                L->uown[t] = -1;
        }
    }
    for (int k = 0; k < net->n_layers; ++k) {
        net_layer *L = &net->layers[k];
        if (L->conv) RPU_CHECK(rpu_conv_set_update_owners(L->conv, announce ? L->uown : NULL));
    }
    return RPU_OK;
}

/* Every rank's samples (rpu_batch_part) of v [n, per sample] to every rank (collective). */
static rpu_status gather_parts(const rpu_net *net, float *v, int n, size_t per) {
    return rpu_gather_parts(net->comm, net->ranks, v, n, per, net->counts);
}

/* This rank's samples [s0, s1) of a batch of n (rpu_batch_part on the network's
 * communicator): the samples its digital layers compute. */
static void own_part(const rpu_net *net, int n, int *s0, int *s1) {
    rpu_batch_part(n, net->rank, net->ranks, s0, s1);
}

/* The forward. Activations are distributed by samples: an analog layer fetches what its
 * tiles read of the other ranks' samples (rpu_conv_fetch_input: their input channels for
 * the samples they compute, all samples where a pulsed update needs them; nothing for a
 * layer that reads only its own samples) and delivers each rank its own samples of the
 * output (rpu_conv_forward_part); the digital layers after it compute only those; the
 * logits are gathered from every rank's part at the end. */
rpu_status rpu_net_forward(rpu_net *net, const float *x, int n, float *logits) {
    if (!net || !x || n < 1) return RPU_FAIL(RPU_ERR_ARG, "rpu_net_forward: bad arguments");
    RPU_CHECK(ensure_batch(net, n));
    RPU_CHECK(plan_updates(net, n));
    net->n = n;
    memcpy(net->x, x, sizeof(float) * (size_t)n * net->in_n);
    int s0, s1;
    own_part(net, n, &s0, &s1);
    const int m = s1 - s0;
    float *in = net->x;
    size_t in_n = net->in_n;
    bool whole = true; /* in holds every sample (else only this rank's) */
    for (int k = 0; k < net->n_layers; ++k) {
        net_layer *L = &net->layers[k];
        const size_t cnt = (size_t)m * L->out_n;
        const float *xi = in + (size_t)s0 * in_n; /* this rank's samples */
        float *yo = L->y + (size_t)s0 * L->out_n;
        const double t0 = net->profiling ? now() : 0;
        if (L->conv && !whole && !L->own) RPU_CHECK(rpu_conv_fetch_input(L->conv, in, n, L->in_sp));
        switch (L->spec->type) {
        case EXP_CONV1D:
        case EXP_CONV2D:
        case EXP_CONV3D:
            RPU_CHECK(rpu_conv_forward_part(L->conv, in, n, L->in_sp, L->y));
            break;
        case EXP_LINEAR:
            RPU_CHECK(rpu_linear_forward_part(L->lin, in, n, L->y));
            break;
        case EXP_RELU:
            RPU_CHECK(rpu_relu_forward(xi, cnt, yo));
            break;
        case EXP_TANH:
            RPU_CHECK(rpu_tanh_forward(xi, cnt, yo));
            break;
        case EXP_SIGMOID:
            RPU_CHECK(rpu_sigmoid_forward(xi, cnt, yo));
            break;
        case EXP_MAXPOOL:
            if (m > 0)
                RPU_CHECK(rpu_maxpool_forward(&L->pool, xi, m, L->in_c, L->in_sp, yo,
                                              L->argmax + (size_t)s0 * L->out_n));
            break;
        case EXP_AVGPOOL:
            if (m > 0) RPU_CHECK(rpu_avgpool_forward(&L->pool, xi, m, L->in_c, L->in_sp, yo));
            break;
        case EXP_FLATTEN:
            memcpy(yo, xi, sizeof(float) * cnt);
            break;
        case EXP_DROPOUT:
            RPU_CHECK(rpu_dropout_forward_at(xi, (size_t)s0 * L->out_n, cnt, L->spec->p,
                                             net->training, net->exp->run.seed, L->id, net->step,
                                             L->mask + (size_t)s0 * L->out_n, yo));
            break;
        default:
            return RPU_FAIL(RPU_ERR_INTERNAL, "unknown layer type");
        }
        if (net->profiling) L->seconds[0] += now() - t0;
        in = L->y;
        in_n = L->out_n;
        whole = false;
    }
    /* the logits, whole on every rank (the loss and the metrics use them all) */
    if (!whole) RPU_CHECK(gather_parts(net, in, n, in_n));
    if (logits) memcpy(logits, in, sizeof(float) * (size_t)n * (size_t)rpu_net_outputs(net));
    return RPU_OK;
}

/* The backward, distributed as the forward: an analog layer fetches what its tiles read of
 * the output gradient (rpu_conv_fetch_output_grad) and delivers each rank the input
 * gradient of its own samples; the digital layers below it compute only those. */
rpu_status rpu_net_backward(rpu_net *net, const uint8_t *labels, double *loss, int *correct) {
    if (!net || !labels || !loss || net->n < 1)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_net_backward: needs a forward first");
    const int n = net->n, K = rpu_net_outputs(net);
    net_layer *last = &net->layers[net->n_layers - 1];
    const double tl = net->profiling ? now() : 0;
    RPU_CHECK(rpu_cross_entropy(last->y, labels, n, K, loss, last->dy, correct));
    if (net->profiling) net->loss_seconds += now() - tl;
    int s0, s1;
    own_part(net, n, &s0, &s1);
    const int m = s1 - s0;
    bool whole = true; /* the output gradient L->dy holds every sample (else only ours) */
    for (int k = net->n_layers - 1; k >= 0; --k) {
        net_layer *L = &net->layers[k];
        float *dx = k ? net->layers[k - 1].dy : NULL; /* no input gradient for the data */
        const size_t cnt = (size_t)m * L->out_n, in_n = k ? net->layers[k - 1].out_n : 0;
        if (!dx && !L->conv) break; /* a digital first layer: no gradient for the data */
        const float *dyo = L->dy + (size_t)s0 * L->out_n, *yo = L->y + (size_t)s0 * L->out_n;
        float *dxi = dx ? dx + (size_t)s0 * in_n : NULL;
        const double t0 = net->profiling ? now() : 0;
        if (L->conv && !whole && !L->own) RPU_CHECK(rpu_conv_fetch_output_grad(L->conv, L->dy));
        switch (L->spec->type) {
        case EXP_CONV1D:
        case EXP_CONV2D:
        case EXP_CONV3D:
        case EXP_LINEAR:
            RPU_CHECK(rpu_conv_backward_part(L->conv, L->dy, dx));
            break;
        case EXP_RELU:
            RPU_CHECK(rpu_relu_backward(yo, dyo, cnt, dxi));
            break;
        case EXP_TANH:
            RPU_CHECK(rpu_tanh_backward(yo, dyo, cnt, dxi));
            break;
        case EXP_SIGMOID:
            RPU_CHECK(rpu_sigmoid_backward(yo, dyo, cnt, dxi));
            break;
        case EXP_MAXPOOL:
            if (m > 0)
                RPU_CHECK(rpu_maxpool_backward(&L->pool, dyo, L->argmax + (size_t)s0 * L->out_n, m,
                                               L->in_c, L->in_sp, dxi));
            break;
        case EXP_AVGPOOL:
            if (m > 0) RPU_CHECK(rpu_avgpool_backward(&L->pool, dyo, m, L->in_c, L->in_sp, dxi));
            break;
        case EXP_FLATTEN:
            memcpy(dxi, dyo, sizeof(float) * cnt);
            break;
        case EXP_DROPOUT:
            RPU_CHECK(rpu_dropout_backward(dyo, L->mask + (size_t)s0 * L->out_n, cnt, dxi));
            break;
        default:
            return RPU_FAIL(RPU_ERR_INTERNAL, "unknown layer type");
        }
        if (net->profiling) L->seconds[1] += now() - t0;
        whole = false;
        if (!dx) break; /* first layer: nothing below */
    }
    return RPU_OK;
}

/* The digital bias of layer L by SGD with the run's momentum (a digital parameter). */
static rpu_status bias_step(rpu_net *net, net_layer *L, float lr) {
    const float mu = net->exp->run.momentum;
    float *b = (float *)malloc(sizeof(float) * 2 * (size_t)L->out_c), *g = b + L->out_c;
    if (!b) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the bias of layer %s", L->spec->name);
    rpu_status s = rpu_conv_get_digital_bias(L->conv, b);
    if (s == RPU_OK) s = rpu_conv_get_grad(L->conv, NULL, g);
    if (s == RPU_OK) {
        for (int c = 0; c < L->out_c; ++c) {
            if (mu > 0) {
                L->mom[c] = mu * L->mom[c] + g[c];
                b[c] -= lr * L->mom[c];
            } else {
                b[c] -= lr * g[c];
            }
        }
        s = rpu_conv_set_digital_bias(L->conv, b);
    }
    free(b);
    return s;
}

rpu_status rpu_net_update(rpu_net *net, float lr) {
    if (!net) return RPU_FAIL(RPU_ERR_ARG, "rpu_net_update: NULL network");
    net->udeferred = net->uplanned;
    if (net->udeferred) {
        /* every layer's own part first (the owners of plan_updates), then the exchanges in
         * layer order: the calls of rpu_conv_update's, later */
        rpu_status first = RPU_OK;
        for (int k = 0; k < net->n_layers; ++k) {
            net_layer *L = &net->layers[k];
            if (!L->conv) continue;
            const double t0 = net->profiling ? now() : 0;
            L->ustatus = rpu_conv_update_begin(L->conv, lr, L->uown);
            if (net->profiling) L->seconds[2] += now() - t0;
        }
        for (int k = 0; k < net->n_layers; ++k) { /* every rank calls every end (collective) */
            net_layer *L = &net->layers[k];
            if (!L->conv) continue;
            const double t0 = net->profiling ? now() : 0;
            rpu_status s = rpu_conv_update_end(L->conv, L->uown, L->ustatus);
            if (s == RPU_OK && rpu_conv_get_params(L->conv)->bias == RPU_BIAS_DIGITAL)
                s = bias_step(net, L, lr);
            if (net->profiling) L->seconds[2] += now() - t0;
            if (first == RPU_OK) first = s;
        }
        return first;
    }
    for (int k = 0; k < net->n_layers; ++k) {
        net_layer *L = &net->layers[k];
        if (!L->conv) continue;
        const double t0 = net->profiling ? now() : 0;
        RPU_CHECK(rpu_conv_update(L->conv, lr)); /* the analog weights, through the tiles */
        if (rpu_conv_get_params(L->conv)->bias != RPU_BIAS_DIGITAL) {
            if (net->profiling) L->seconds[2] += now() - t0;
            continue;
        }
        RPU_CHECK(bias_step(net, L, lr));
        if (net->profiling) L->seconds[2] += now() - t0;
    }
    return RPU_OK;
}

int rpu_net_update_owner(const rpu_net *net, int k, int t) {
    if (!net || !net->udeferred || k < 0 || k >= net->n_layers || !net->layers[k].conv) return -1;
    if (t < 0 || t >= rpu_conv_grid(net->layers[k].conv)->n_tiles) return -1;
    return net->layers[k].uown[t];
}

void rpu_net_set_profiling(rpu_net *net, bool on) {
    if (!net) return;
    net->profiling = on;
    net->loss_seconds = 0;
    for (int k = 0; k < net->n_layers; ++k)
        memset(net->layers[k].seconds, 0, sizeof net->layers[k].seconds);
}

double rpu_net_loss_seconds(const rpu_net *net) {
    return net ? net->loss_seconds : 0;
}

int rpu_net_layer_count(const rpu_net *net) {
    return net ? net->n_layers : 0;
}

rpu_status rpu_net_layer_info(const rpu_net *net, int k, rpu_net_layer *info) {
    if (!net || !info) return RPU_FAIL(RPU_ERR_ARG, "rpu_net_layer_info: NULL argument");
    if (k < 0 || k >= net->n_layers)
        return RPU_FAIL(RPU_ERR_ARG, "rpu_net_layer_info: layer %d outside [0, %d)", k,
                        net->n_layers);
    const net_layer *L = &net->layers[k];
    memset(info, 0, sizeof *info);
    info->name = L->spec->name;
    info->type = type_name(L->spec->type);
    info->in_c = L->in_c, info->in_nd = L->in_nd;
    info->out_c = L->out_c, info->out_nd = L->out_nd;
    memcpy(info->in_sp, L->in_sp, sizeof info->in_sp);
    memcpy(info->out_sp, L->out_sp, sizeof info->out_sp);
    info->conv = L->conv;
    info->input_grad = k > 0; /* rpu_net_backward: no input gradient for the data */
    memcpy(info->seconds, L->seconds, sizeof info->seconds);
    return RPU_OK;
}

int rpu_net_analog_count(const rpu_net *net) {
    int c = 0;
    for (int k = 0; net && k < net->n_layers; ++k)
        c += net->layers[k].conv != NULL;
    return c;
}

static net_layer *analog_at(const rpu_net *net, int idx) {
    for (int k = 0; net && k < net->n_layers; ++k)
        if (net->layers[k].conv && idx-- == 0) return &net->layers[k];
    return NULL;
}

const char *rpu_net_analog_name(const rpu_net *net, int k) {
    net_layer *L = analog_at(net, k);
    return L ? L->spec->name : NULL;
}

struct rpu_conv *rpu_net_analog_layer(rpu_net *net, int k) {
    net_layer *L = analog_at(net, k);
    return L ? L->conv : NULL;
}

float *rpu_net_momentum(rpu_net *net, int k, int *n) {
    net_layer *L = analog_at(net, k);
    if (n) *n = (L && L->mom) ? L->out_c : 0;
    return L ? L->mom : NULL;
}
