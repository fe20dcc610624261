/* rpusim map: how the layers of a network land on tiles and ranks — for each layer the
 * split sizes (spec §1.3), the tile grid with each tile's shape and owner rank, the cell
 * utilisation of the tiles, the bytes of tile state each rank holds, and the bytes each
 * rank sends per forward and backward pass. Pure computation from the mapping module: no
 * MPI is initialised. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "args.h"
#include "budget.h"
#include "cli.h"

#include "rpusim/config.h"
#include "rpusim/layer.h"
#include "rpusim/mapping.h"
#include "rpusim/net.h"
#include "rpusim/tile.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAP_MAX_INT (1 << 24) /* largest accepted number in a layer spec or option */

/* Besides the int64 partial sums, each forward and backward pass of a layer first agrees on
 * the global maximum magnitude (the fixed-point scale) and on errors: one allreduce of two
 * doubles {max, error flag} (src/layer.c, agree_max). */

/* The most work (ranks x (ranks + tiles)) spent on the per-rank volumes of one layer. */
#define MAP_MAX_VOLUME_WORK 4e9

static void usage(FILE *f) {
    fprintf(f, "usage: rpusim map --layer SPEC [--layer SPEC ...] --ranks N [--input SHAPE]\n"
               "                  [--batch N] [--set key=value ...] [--split RULE] [--summary]\n"
               "\n"
               "Prints, for each layer, the split sizes, the tile grid with each tile's shape\n"
               "(out x in) and owner rank, the cell utilisation of the tiles, the bytes of tile\n"
               "state held by each rank and the bytes each rank sends per forward and backward\n"
               "pass, for N ranks.\n"
               "\n"
               "  --layer SPEC    \"conv1d|conv2d|conv3d in=C out=C k=K [stride=S] [padding=P]\n"
               "                  [dilation=D] [groups=G] [bias=0|1] [size=HxW] [split=RULE]\"\n"
               "                  or \"linear in=F out=F [bias=0|1] [split=RULE]\". k, stride,\n"
               "                  padding, dilation take one value (all dimensions) or one per\n"
               "                  dimension (3x5); defaults stride 1, padding 0, dilation 1,\n"
               "                  groups 1, bias 1, split from --split. size= is the layer's\n"
               "                  input spatial size (overrides the shape carried from the\n"
               "                  previous layer, e.g. after pooling).\n"
               "  --ranks N       number of MPI ranks the tiles are spread over (required)\n"
               "  --input SHAPE   input of the first layer without the batch: CxL, CxHxW, CxDxHxW\n"
               "                  (or F for linear); each next layer takes the previous output\n"
               "                  (a linear layer flattens it). Without it, conv layers without\n"
               "                  size= print no communication volumes.\n"
               "  --batch N       images per forward/backward pass (default 1)\n"
               "  --set key=value rpu_config key (kind=... first, then device.type=..., then\n"
               "                  the rest); default config kind single (constant_step)\n"
               "  --split RULE    how inputs are split onto tiles, for layers without split=:\n"
               "                  mapped (default; aihwkit's *Mapped layers: whole channels) or\n"
               "                  tile_array (aihwkit 1.1's AnalogConvNd/AnalogLinear: the\n"
               "                  in/groups x prod(k) columns split evenly, kernels may be cut;\n"
               "                  the bias of a layer of several tiles is digital)\n"
               "  --summary       no per-tile table (split sizes and per-rank totals only)\n"
               "\n"
               "Communication model (the calls of rpusim train, as rpu_net_comm_plan lists them):\n"
               "a rank sends the partial results it computed (outputs in the forward, input\n"
               "gradients in the backward: floats when one tile gives an element, else int64\n"
               "terms) only to the owners of their samples (MPI_Alltoallv; a rank owns a 1/P\n"
               "share of the batch), after agreeing on errors and the scale (ring allreduce of\n"
               "4 or 16 bytes: 2(P-1)/P x bytes); the network gathers every rank's samples of\n"
               "each layer's input (not the first's), of the logits and of each output gradient\n"
               "(not the last's) (ring allgather: (P-1)/P x batch x elements x 4 bytes). The\n"
               "backward counts the input gradient also for a first layer, where a network\n"
               "skips it. On a network of pulsed layers whose tiles all have several holders,\n"
               "each tile may be updated whole by one holder (rpu_update_owners), which alone\n"
               "fetches every sample; where the holders split it by rows, each fetches only its\n"
               "rows of the other samples' output gradients. send_upd_bytes: the update's\n"
               "exchanges (summed gradients, the rows of a split update, and the maxima of its\n"
               "holders' rows). Tile state = cells x bytes per cell (weights + device state) of\n"
               "the configured device.\n");
}

/* ------------------------------------------------------------------ parsing */

/* s[0..len) as an integer in [lo, MAP_MAX_INT]; NULL, or the fault (in buf). */
static const char *int_fault(const char *s, size_t len, int lo, int *out, char *buf, size_t n) {
    char text[32];
    if (len >= sizeof text) return snprintf(buf, n, "too long"), buf;
    memcpy(text, s, len);
    text[len] = '\0';
    long long v;
    const char *fault = cli_int_fault(text, lo, MAP_MAX_INT, &v, buf, n);
    if (!fault) *out = (int)v;
    return fault;
}

/* "3", "3x5", "3,5,7": 1..max values in [lo, MAP_MAX_INT]; returns the count, or -1 with
 * the fault in buf. */
static int parse_dims(const char *s, int lo, int *out, int max, char *buf, size_t n) {
    for (int k = 0;; ++k) {
        const size_t len = strcspn(s, "x,");
        char f[96];
        const char *fault = k < max ? int_fault(s, len, lo, &out[k], f, sizeof f) : NULL;
        if (k >= max) return snprintf(buf, n, "more than %d values", max), -1;
        if (fault) {
            if (max > 1)
                snprintf(buf, n, "value %d '%.*s': %s", k + 1, (int)(len < 32 ? len : 32), s,
                         fault);
            else
                snprintf(buf, n, "%s", fault);
            return -1;
        }
        if (!s[len]) return k + 1;
        s += len + 1;
    }
}

typedef struct {
    char text[256]; /* the spec as given, for messages and the report */
    int ndim;       /* 0 linear, 1..3 conv */
    int in, out, groups;
    int kernel[3], stride[3], padding[3], dilation[3];
    bool bias;
    bool has_size;
    int size[3];     /* input spatial size from size= */
    bool has_split;  /* split= given (else the --split default) */
    rpu_split split; /* the layer's split rule */
} layer_spec;

static const char *kind_name(int ndim) {
    static const char *const names[4] = {"linear", "conv1d", "conv2d", "conv3d"};
    return names[ndim];
}

/* Expands a 1-value list to ndim values; false if the count is neither 1 nor ndim. */
static bool expand(int n, int *v, int ndim) {
    if (n == 1)
        for (int d = 1; d < ndim; ++d)
            v[d] = v[0];
    return n == 1 || n == ndim;
}

/* Parses one --layer spec; on error prints a message naming the problem and returns false. */
static bool parse_layer(const char *text, int index, layer_spec *L) {
    memset(L, 0, sizeof *L);
    snprintf(L->text, sizeof L->text, "%s", text);
    L->groups = 1;
    L->bias = true;
    for (int d = 0; d < 3; ++d)
        L->stride[d] = L->dilation[d] = 1;
    const char *p = text;
    p += strspn(p, " \t");
    size_t len = strcspn(p, " \t");
    if (len == 6 && !strncmp(p, "linear", 6))
        L->ndim = 0;
    else if (len == 6 && !strncmp(p, "conv", 4) && p[4] >= '1' && p[4] <= '3' && p[5] == 'd')
        L->ndim = p[4] - '0';
    else {
        fprintf(stderr,
                "rpusim map: layer %d: unknown layer kind '%.*s' (want conv1d, conv2d, conv3d "
                "or linear)\n",
                index, (int)len, p);
        return false;
    }
    const int nd = L->ndim > 0 ? L->ndim : 1;
    bool have_in = false, have_out = false, have_k = false;
    for (p += len;;) {
        p += strspn(p, " \t");
        if (!*p) break;
        len = strcspn(p, " \t");
        const char *eq = memchr(p, '=', len);
        if (!eq) {
            fprintf(stderr, "rpusim map: layer %d: '%.*s': want key=value\n", index, (int)len, p);
            return false;
        }
        const size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
        char key[32], val[128];
        if (klen >= sizeof key || vlen >= sizeof val) {
            fprintf(stderr, "rpusim map: layer %d: '%.*s' is too long\n", index, (int)len, p);
            return false;
        }
        memcpy(key, p, klen), key[klen] = '\0';
        memcpy(val, eq + 1, vlen), val[vlen] = '\0';
        p += len;
        int tmp[4], n = 0;
        bool ok;
        char fault[128] = "";
        const bool conv_only =
            strcmp(key, "in") && strcmp(key, "out") && strcmp(key, "bias") && strcmp(key, "split");
        if (L->ndim == 0 && conv_only) {
            fprintf(stderr,
                    "rpusim map: layer %d: unknown key '%s' for linear (want in, out, bias, "
                    "split)\n",
                    index, key);
            return false;
        }
        if (!strcmp(key, "split")) {
            if (rpu_split_parse(val, &L->split) != RPU_OK) {
                fprintf(stderr,
                        "rpusim map: layer %d: bad value 'split=%s' (want mapped or "
                        "tile_array)\n",
                        index, val);
                return false;
            }
            L->has_split = true;
            continue;
        }
        if (!strcmp(key, "in"))
            ok = have_in = !int_fault(val, vlen, 1, &L->in, fault, sizeof fault);
        else if (!strcmp(key, "out"))
            ok = have_out = !int_fault(val, vlen, 1, &L->out, fault, sizeof fault);
        else if (!strcmp(key, "groups"))
            ok = !int_fault(val, vlen, 1, &L->groups, fault, sizeof fault);
        else if (!strcmp(key, "bias")) {
            ok = !strcmp(val, "0") || !strcmp(val, "1") || !strcmp(val, "true") ||
                 !strcmp(val, "false");
            L->bias = !strcmp(val, "1") || !strcmp(val, "true");
        } else if (!strcmp(key, "k") || !strcmp(key, "kernel")) {
            n = parse_dims(val, 1, L->kernel, nd, fault, sizeof fault);
            ok = have_k = n > 0 && expand(n, L->kernel, nd);
        } else if (!strcmp(key, "stride")) {
            n = parse_dims(val, 1, L->stride, nd, fault, sizeof fault);
            ok = n > 0 && expand(n, L->stride, nd);
        } else if (!strcmp(key, "padding")) {
            n = parse_dims(val, 0, L->padding, nd, fault, sizeof fault);
            ok = n > 0 && expand(n, L->padding, nd);
        } else if (!strcmp(key, "dilation")) {
            n = parse_dims(val, 1, L->dilation, nd, fault, sizeof fault);
            ok = n > 0 && expand(n, L->dilation, nd);
        } else if (!strcmp(key, "size")) {
            n = parse_dims(val, 1, tmp, 4, fault, sizeof fault);
            ok = L->has_size = n == nd;
            for (int d = 0; ok && d < nd; ++d)
                L->size[d] = tmp[d];
        } else {
            fprintf(stderr,
                    "rpusim map: layer %d: unknown key '%s' (want in, out, k, stride, padding, "
                    "dilation, groups, bias, size, split)\n",
                    index, key);
            return false;
        }
        if (!ok) {
            if (!fault[0] && n > 0) snprintf(fault, sizeof fault, "%d values", n);
            fprintf(stderr, "rpusim map: layer %d: bad value '%s=%s'%s%s", index, key, val,
                    fault[0] ? ": " : "", fault);
            if (!strcmp(key, "bias"))
                fprintf(stderr, " (want 0 or 1)\n");
            else if (!strcmp(key, "size"))
                fprintf(stderr, " (want %d positive integers)\n", nd);
            else if (strcmp(key, "in") && strcmp(key, "out") && strcmp(key, "groups"))
                fprintf(stderr, " (want 1 or %d %s integers separated by x)\n", nd,
                        strcmp(key, "padding") ? "positive" : "non-negative");
            else
                fprintf(stderr, " (want a positive integer)\n");
            return false;
        }
    }
    if (!have_in || !have_out || (L->ndim > 0 && !have_k)) {
        fprintf(stderr, "rpusim map: layer %d: missing %s in '%s'\n", index,
                !have_in    ? "in="
                : !have_out ? "out="
                            : "k=",
                text);
        return false;
    }
    long long kernel_elems = 1;
    for (int d = 0; d < L->ndim && kernel_elems <= MAP_MAX_INT; ++d)
        kernel_elems *= L->kernel[d];
    if (kernel_elems > MAP_MAX_INT) {
        fprintf(stderr, "rpusim map: layer %d: the kernel has more than %d elements\n", index,
                MAP_MAX_INT);
        return false;
    }
    if (L->in % L->groups || L->out % L->groups) {
        fprintf(stderr, "rpusim map: layer %d: in=%d and out=%d must be divisible by groups=%d\n",
                index, L->in, L->out, L->groups);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ report */

typedef struct {
    int known; /* spatial size known */
    int c;     /* channels (features for a flat shape) */
    int nd;    /* spatial dimensions (0: flat) */
    int s[3];
} shape;

/* Elements of the spatial size (a double: up to 3 sizes of 3 x 2^24 each). */
static double shape_spatial(const shape *s) {
    double n = 1;
    for (int d = 0; d < s->nd; ++d)
        n *= s->s[d];
    return n;
}

static void format_shape(const shape *s, char *buf, size_t size) {
    int k = snprintf(buf, size, "%d", s->c);
    for (int d = 0; d < s->nd && k > 0 && (size_t)k < size; ++d)
        k += snprintf(buf + k, size - (size_t)k, "x%d", s->s[d]);
}

static void format_dims(const int *v, int n, char *buf, size_t size) {
    int k = 0;
    for (int d = 0; d < n && (size_t)k < size; ++d)
        k += snprintf(buf + k, size - (size_t)k, d ? "x%d" : "%d", v[d]);
}

/* "[2, 2, 1]"; runs of 4 or more equal sizes as "36 (x100)". */
static void print_sizes(FILE *os, const int *v, int n) {
    fprintf(os, "[");
    for (int k = 0; k < n;) {
        int run = 1;
        while (k + run < n && v[k + run] == v[k])
            ++run;
        if (run < 4) run = 1;
        fprintf(os, run > 1 ? "%s%d (x%d)" : "%s%d", k ? ", " : "", v[k], run);
        k += run;
    }
    fprintf(os, "]");
}

/* Bytes one rank sends in a call of its plan (the payload count x type_bytes in the ring
 * algorithms: an allreduce sends 2(P-1)/P of it, an allgather (P-1)/P of the whole;
 * an alltoall exactly its count, which is what the rank sends to others). */
static double send_bytes(const rpu_comm_call *c) {
    const double B = (double)c->count * c->type_bytes, P = c->group;
    switch (c->op) {
    case RPU_COMM_ALLREDUCE:
        return P > 1 ? 2.0 * (P - 1) / P * B : 0;
    case RPU_COMM_ALLGATHER:
    case RPU_COMM_REDUCE_SCATTER:
        return P > 1 ? (P - 1) / P * B : 0;
    default:
        return B;
    }
}

/* Adds rank r's send bytes of layer k (of n_layers) of the map's network, whose step is p's
 * with results by parts (rpu_conv_comm_plan_parts), to fwd and bwd, and the network's
 * gathers around it (rpu_net_gathers_at). Returns 0, or 1 when out of memory. */
static int rank_volumes(const rpu_conv_params *p, const rpu_config *cfg, int batch,
                        const int *in_sp, const int *owners, double in_elems, double out_elems,
                        int ranks, int r, int k, int n_layers, double *fwd, double *bwd,
                        double *upd) {
    int n = 0;
    if (rpu_conv_comm_plan_parts(p, cfg, batch, in_sp, true, ranks, r, NULL, 0, &n) != RPU_OK)
        return 1;
    rpu_comm_call *calls = calloc((size_t)n + 1, sizeof *calls);
    if (!calls ||
        rpu_conv_comm_plan_parts(p, cfg, batch, in_sp, true, ranks, r, calls, n, &n) != RPU_OK) {
        free(calls);
        return 1;
    }
    for (int q = 0; q < n; ++q) {
        if (calls[q].phase == RPU_PHASE_FORWARD) *fwd += send_bytes(&calls[q]);
        if (calls[q].phase == RPU_PHASE_BACKWARD) *bwd += send_bytes(&calls[q]);
        if (calls[q].phase == RPU_PHASE_UPDATE) *upd += send_bytes(&calls[q]);
    }
    /* an announced split by rows: the update's maxima (rpu_conv_update_maxima_plan) */
    rpu_comm_call mc[RPU_UPDATE_MAXIMA_MAX_CALLS];
    int nm = 0;
    if (rpu_conv_update_maxima_plan(p, cfg, batch, in_sp, owners, ranks, r, mc,
                                    RPU_UPDATE_MAXIMA_MAX_CALLS, &nm) != RPU_OK) {
        free(calls);
        return 1;
    }
    for (int q = 0; q < nm && q < RPU_UPDATE_MAXIMA_MAX_CALLS; ++q)
        *upd += send_bytes(&mc[q]);
    free(calls);
    const double ring = ranks > 1 ? (ranks - 1.0) / ranks : 0;
    bool own = false, issued = false, whole = false;
    int64_t sent = 0;
    if (rpu_conv_own_samples(p, cfg, in_sp, ranks, &own) != RPU_OK) return 1;
    const rpu_net_gathers g = rpu_net_gathers_at(k, n_layers, true, own);
    if (g.input && rpu_conv_fetch_plan(p, cfg, batch, in_sp, owners, false, ranks, r, &issued, &whole,
                                       &sent) == RPU_OK)
        *fwd += 4.0 * (double)sent * (whole ? ring : 1.0);
    if (g.logits) *fwd += ring * 4.0 * batch * out_elems;
    if (g.output_grad &&
        rpu_conv_fetch_plan(p, cfg, batch, in_sp, owners, true, ranks, r, &issued, &whole, &sent) == RPU_OK)
        *bwd += 4.0 * (double)sent * (whole ? ring : 1.0);
    (void)in_elems;
    return 0;
}

typedef struct {
    int64_t *cells; /* per rank, summed over layers */
    int *tiles;
    double *fwd, *bwd, *upd; /* per rank send bytes summed over layers */
    bool comm_known;
} totals;

/* The input and output shapes of layer L (number index) after shape cur (errors to stderr).
 * Returns 0 or 2 (a shape that does not fit). */
static int layer_shapes(const layer_spec *L, int index, const shape *cur, shape *in, shape *out) {
    const int nd = L->ndim;
    *in = (shape){0};
    *out = (shape){0};
    in->c = L->in;
    in->nd = nd;
    if (nd == 0) {
        if (cur->known && cur->c * shape_spatial(cur) != L->in) {
            char s[64];
            format_shape(cur, s, sizeof s);
            fprintf(stderr, "rpusim map: layer %d (linear in=%d): the input %s has %.0f features\n",
                    index, L->in, s, cur->c * shape_spatial(cur));
            return 2;
        }
        in->known = 1;
    } else if (L->has_size) {
        in->known = 1;
        memcpy(in->s, L->size, sizeof in->s);
    } else if (cur->known) {
        if (cur->nd != nd || cur->c != L->in) {
            char s[64];
            format_shape(cur, s, sizeof s);
            fprintf(stderr,
                    "rpusim map: layer %d (%s in=%d): the input shape %s does not fit (want "
                    "%d channels and %d spatial dimensions; give size= or fix --input)\n",
                    index, kind_name(nd), L->in, s, L->in, nd);
            return 2;
        }
        *in = *cur;
    }
    out->c = L->out;
    out->nd = nd;
    out->known = in->known;
    for (int d = 0; d < nd && in->known; ++d) {
        const long long span = (long long)L->dilation[d] * (L->kernel[d] - 1) + 1;
        const long long padded = (long long)in->s[d] + 2LL * L->padding[d];
        if (padded < span) {
            char s[64];
            format_shape(in, s, sizeof s);
            fprintf(stderr,
                    "rpusim map: layer %d (%s): input %s is smaller than the kernel (dimension "
                    "%d: %d + 2x%d padding < %lld)\n",
                    index, kind_name(nd), s, d, in->s[d], L->padding[d], span);
            return 2;
        }
        const long long o = (padded - span) / L->stride[d] + 1;
        if (o > INT_MAX) {
            fprintf(stderr,
                    "rpusim map: layer %d (%s): output size %lld in dimension %d is too "
                    "large (at most %d)\n",
                    index, kind_name(nd), o, d, INT_MAX);
            return 2;
        }
        out->s[d] = (int)o;
    }

    return 0;
}

/* Whether layer L's bias is analog under cfg (rpu_bias_for_split). */
static bool layer_analog_bias(const layer_spec *L, const rpu_config *cfg) {
    int kernel_elems = 1;
    for (int d = 0; d < L->ndim; ++d)
        kernel_elems *= L->kernel[d];
    const double in_features = (double)(L->in / L->groups) * kernel_elems;
    return rpu_bias_for_split(L->bias, cfg, L->split,
                              in_features > INT_MAX ? INT_MAX : (int)in_features,
                              L->out / L->groups) == RPU_BIAS_ANALOG;
}

/* The parameters of layer L (number index) as rpusim train builds them. */
static void layer_params(const layer_spec *L, int index, const rpu_config *cfg,
                         rpu_conv_params *p) {
    rpu_conv_params_default(p, L->ndim, L->in, L->out, 1);
    for (int d = 0; d < L->ndim; ++d) {
        p->kernel[d] = L->kernel[d];
        p->stride[d] = L->stride[d];
        p->padding[d] = L->padding[d];
        p->dilation[d] = L->dilation[d];
    }
    p->groups = L->groups;
    p->bias = !L->bias                       ? RPU_BIAS_NONE
              : layer_analog_bias(L, cfg) ? RPU_BIAS_ANALOG
                                          : RPU_BIAS_DIGITAL;
    p->split = L->split;
    p->layer_id = (uint32_t)(index - 1);
}

/* Who updates each tile in rpusim train's steps (rpu_conv_update_owners_plan: whole tiles
 * on a network of pulsed layers that all split among holders), into *owners (NULL where
 * the shapes are not all known or the volumes are not computed). Returns 0, 2 (a shape
 * that does not fit: said on stderr) or 1 (out of memory). */
static int update_owners(const layer_spec *layers, int n_layers, const rpu_config *cfg,
                         int ranks, int batch, const shape *cur0, int ***owners) {
    *owners = NULL;
    rpu_conv_params *p = calloc((size_t)n_layers + 1, sizeof *p);
    shape *in = calloc((size_t)n_layers + 1, sizeof *in);
    const rpu_conv_params **ps = calloc((size_t)n_layers + 1, sizeof *ps);
    const rpu_config **cfgs = calloc((size_t)n_layers + 1, sizeof *cfgs);
    const int **sizes = calloc((size_t)n_layers + 1, sizeof *sizes);
    int rc = p && in && ps && cfgs && sizes ? 0 : 1;
    bool known = (double)ranks * ranks <= MAP_MAX_VOLUME_WORK;
    shape cur = *cur0, out;
    for (int l = 0; l < n_layers && rc == 0; ++l) {
        rc = layer_shapes(&layers[l], l + 1, &cur, &in[l], &out);
        known = known && in[l].known;
        layer_params(&layers[l], l + 1, cfg, &p[l]);
        ps[l] = &p[l], cfgs[l] = cfg, sizes[l] = in[l].s;
        cur = out;
    }
    if (rc == 0 && known) {
        *owners = calloc((size_t)n_layers + 1, sizeof **owners);
        const rpu_status st =
            *owners ? rpu_conv_update_owners_plan(ps, cfgs, sizes, n_layers, batch, ranks, *owners)
                    : RPU_ERR_NOMEM;
        if (st != RPU_OK) {
            free(*owners);
            *owners = NULL;
            if (st == RPU_ERR_NOMEM) rc = 1; /* (other errors: report_layer names them) */
        }
    }
    free(p), free(in), free(ps), free(cfgs), free(sizes);
    if (rc == 1) fprintf(stderr, "rpusim map: out of memory\n");
    return rc;
}

/* Works out shapes, builds the grid and prints one layer to os (errors to stderr). Returns
 * 0, 2 (bad layer) or 1 (out of memory). */
static int report_layer(const layer_spec *L, int index, int n_layers, const rpu_config *cfg,
                        double bpc, int ranks, int batch, bool tile_table, const int *owners,
                        shape *cur, totals *tot, FILE *os) {
    const int nd = L->ndim;
    int kernel_elems = 1;
    for (int d = 0; d < nd; ++d)
        kernel_elems *= L->kernel[d];
    const bool array = L->split == RPU_SPLIT_TILE_ARRAY;
    const bool analog_bias = layer_analog_bias(L, cfg);

    shape in, out;
    const int bad = layer_shapes(L, index, cur, &in, &out);
    if (bad) return bad;

    /* the placement the layers make (owners rotated by their layer id, the position from 0) */
    rpu_conv_params lp;
    layer_params(L, index, cfg, &lp);
    rpu_tile_grid g;
    rpu_status st = rpu_conv_placement(&lp, cfg, ranks, &g);
    if (st != RPU_OK) {
        fprintf(stderr, "rpusim map: layer %d (%s): %s\n", index, L->text, rpu_last_error());
        return st == RPU_ERR_NOMEM ? 1 : 2;
    }

    /* header */
    fprintf(os, "\nlayer %d: %s in=%d out=%d", index, kind_name(nd), L->in, L->out);
    if (nd > 0) {
        char kb[48], sb[48], pb[48], db[48];
        format_dims(L->kernel, nd, kb, sizeof kb);
        format_dims(L->stride, nd, sb, sizeof sb);
        format_dims(L->padding, nd, pb, sizeof pb);
        format_dims(L->dilation, nd, db, sizeof db);
        fprintf(os, " k=%s stride=%s padding=%s dilation=%s groups=%d", kb, sb, pb, db, L->groups);
    }
    fprintf(os, " bias=%s", !L->bias ? "none" : analog_bias ? "analog" : "digital");
    fprintf(os, array ? " split=tile_array\n" : "\n");
    if (in.known) {
        char a[64], b[64];
        format_shape(&in, a, sizeof a);
        format_shape(&out, b, sizeof b);
        fprintf(os, "  input %s -> output %s, batch %d\n", a, b, batch);
    } else {
        fprintf(os, "  input size unknown (no --input or size=): no communication volumes\n");
    }
    if (nd == 0)
        fprintf(os, "  logical weight %d x %d%s\n", g.out_per_group, g.in_per_group,
                analog_bias ? " (+1 analog bias column on in-split 0)" : "");
    else
        fprintf(os, "  logical weight %d x %d per group (%d kernel element%s%s), %d group%s\n",
                g.out_per_group, g.in_per_group * kernel_elems, kernel_elems,
                kernel_elems == 1 ? "" : "s",
                analog_bias ? "; +1 analog bias column on in-split 0" : "", g.groups,
                g.groups == 1 ? "" : "s");
    int *sizes = malloc(sizeof *sizes * (size_t)(g.n_in > g.n_out ? g.n_in : g.n_out));
    if (!sizes) {
        rpu_tile_grid_free(&g);
        fprintf(stderr, "rpusim map: out of memory\n");
        return 1;
    }
    for (int i = 0; i < g.n_in; ++i)
        sizes[i] = array ? g.tiles[i * g.n_out].ncol : g.tiles[i * g.n_out].in_ch;
    fprintf(os, "  in splits (%s):  ", array && nd ? "columns" : nd ? "channels" : "features");
    print_sizes(os, sizes, g.n_in);
    for (int j = 0; j < g.n_out; ++j)
        sizes[j] = g.tiles[j].out_ch;
    fprintf(os, "\n  out splits (%s): ", nd ? "channels" : "features");
    print_sizes(os, sizes, g.n_out);
    free(sizes);
    if (g.groups > 1)
        fprintf(os, "\n  tiles: %d (%d groups x %d in x %d out)\n", g.n_tiles, g.groups, g.n_in,
                g.n_out);
    else
        fprintf(os, "\n  tiles: %d (%d in x %d out)\n", g.n_tiles, g.n_in, g.n_out);

    /* tile table (channel ranges are layer channels, not offsets within the group; the
     * tile_array split adds the tile's columns of its group's unfolded patch) */
    if (tile_table && array)
        fprintf(os, "  %5s %5s %3s %3s  %-11s %-11s %-11s %9s %9s %5s %7s\n", "tile", "group", "i",
                "j", "in_ch", "in_cols", "out_ch", "shape", "cells", "owner", "holders");
    else if (tile_table)
        fprintf(os, "  %5s %5s %3s %3s  %-11s %-11s %9s %9s %5s %7s\n", "tile", "group", "i", "j",
                "in_ch", "out_ch", "shape", "cells", "owner", "holders");
    for (int t = 0; t < g.n_tiles && tile_table; ++t) {
        const rpu_tile_slot *s = &g.tiles[t];
        char ic[32], oc[32], sh[32];
        const int i0 = s->group * g.in_per_group + s->in_ch0;
        const int o0 = s->group * g.out_per_group + s->out_ch0;
        if (s->in_ch == 1)
            snprintf(ic, sizeof ic, "%d", i0);
        else
            snprintf(ic, sizeof ic, "%d-%d", i0, i0 + s->in_ch - 1);
        if (s->out_ch == 1)
            snprintf(oc, sizeof oc, "%d", o0);
        else
            snprintf(oc, sizeof oc, "%d-%d", o0, o0 + s->out_ch - 1);
        snprintf(sh, sizeof sh, "%dx%d", s->rows, s->cols);
        if (array) {
            char cc[32];
            snprintf(cc, sizeof cc, "%d-%d", s->col0, s->col0 + s->ncol - 1);
            fprintf(os, "  %5d %5d %3d %3d  %-11s %-11s %-11s %9s %9lld %5d %7d\n", t, s->group,
                    s->in_split, s->out_split, ic, cc, oc, sh, (long long)rpu_tile_work(s),
                    s->owner, s->holders);
        } else {
            fprintf(os, "  %5d %5d %3d %3d  %-11s %-11s %9s %9lld %5d %7d\n", t, s->group,
                    s->in_split, s->out_split, ic, oc, sh, (long long)rpu_tile_work(s), s->owner,
                    s->holders);
        }
    }

    const int64_t cells = rpu_tile_grid_cells(&g);
    /* a physical tile must also hold the analog bias column, which the split does not
     * count: tile width max_input_size + 1 then */
    const int mi = cfg->mapping.max_input_size, mo = cfg->mapping.max_output_size;
    const int width = mi + (analog_bias ? 1 : 0);
    if (mi > 0 && mo > 0)
        fprintf(os, "  cell utilisation: %lld cells of %d tile%s x %dx%d%s = %.2f%%\n",
                (long long)cells, g.n_tiles, g.n_tiles == 1 ? "" : "s", mo, width,
                analog_bias ? " (max_input_size + 1 bias column)" : "",
                100.0 * (double)cells / ((double)g.n_tiles * width * mo));
    else
        fprintf(os,
                "  cell utilisation: %lld cells; n/a (mapping.max_input_size or "
                "max_output_size <= 0: tiles are not of a fixed size)\n",
                (long long)cells);

    /* per rank */
    int64_t *rc = calloc((size_t)ranks, sizeof *rc);
    int *rt = calloc((size_t)ranks, sizeof *rt);
    if (!rc || !rt) {
        free(rc), free(rt);
        rpu_tile_grid_free(&g);
        fprintf(stderr, "rpusim map: out of memory\n");
        return 1;
    }
    st = rpu_tile_grid_rank_cells(&g, ranks, rc, rt);
    double *fwd = calloc((size_t)ranks * 3, sizeof(double)), *bwd = fwd ? fwd + ranks : NULL,
           *upd = fwd ? fwd + 2 * (size_t)ranks : NULL;
    if (!fwd) st = RPU_ERR_NOMEM;
    /* each rank's plan places the grid and walks every rank's contributions: about
     * ranks x (ranks + tiles) steps in all, beyond which the volumes are left out */
    const bool volumes = (double)ranks * ((double)ranks + g.n_tiles) <= MAP_MAX_VOLUME_WORK;
    if (in.known && !volumes)
        fprintf(os,
                "  send bytes: not computed for %d ranks and %d tiles (more than %.0e "
                "steps of work; fewer ranks give them)\n",
                ranks, g.n_tiles, MAP_MAX_VOLUME_WORK);
    if (in.known && volumes && st == RPU_OK) {
        const double ie = (double)in.c * shape_spatial(&in),
                     oe = (double)out.c * shape_spatial(&out);
        for (int r = 0; r < ranks && st == RPU_OK; ++r)
            if (rank_volumes(&lp, cfg, batch, in.s, owners, ie, oe, ranks, r, index - 1, n_layers,
                             &fwd[r], &bwd[r], &upd[r]))
                st = RPU_ERR_NOMEM;
    } else {
        tot->comm_known = false;
    }
    const bool show = in.known && volumes;
    fprintf(os, "  %5s %6s %10s %14s %14s %14s %14s\n", "rank", "tiles", "cells", "state_bytes",
            "send_fwd_bytes", "send_bwd_bytes", "send_upd_bytes");
    for (int r = 0; r < ranks && st == RPU_OK; ++r) {
        fprintf(os, "  %5d %6d %10lld %14.0f", r, rt[r], (long long)rc[r], (double)rc[r] * bpc);
        if (show)
            fprintf(os, " %14.0f %14.0f %14.0f\n", fwd[r], bwd[r], upd[r]);
        else
            fprintf(os, " %14s %14s %14s\n", "-", "-", "-");
        tot->cells[r] += rc[r];
        tot->tiles[r] += rt[r];
        tot->fwd[r] += fwd[r];
        tot->bwd[r] += bwd[r];
        tot->upd[r] += upd[r];
    }
    free(fwd);
    free(rc), free(rt);
    rpu_tile_grid_free(&g);
    if (st != RPU_OK) {
        fprintf(stderr, "rpusim map: %s\n", rpu_last_error());
        return 1;
    }
    *cur = out;
    return 0;
}

/* ------------------------------------------------------------------ estimate */

#define MAP_LINE_BYTES 80         /* a line of the tile or rank table, about */
#define MAP_BIG_TILES 1000000     /* plans from here on get a one-line estimate first */
#define MAP_BIG_BYTES (64u << 20) /* ... and so do those that need this much memory */

/* Tiles of a layer from its split counts (no grid built); -1 if the split fails (the
 * report then names the error). */
static double layer_tiles(const layer_spec *L, const rpu_config *cfg) {
    int kernel_elems = 1, n_in = 0, n_out = 0;
    for (int d = 0; d < L->ndim; ++d)
        kernel_elems *= L->kernel[d];
    const double ipg = (double)L->in / L->groups * kernel_elems;
    if (ipg > 2147483647.0) return -1;
    const int unit = L->split == RPU_SPLIT_TILE_ARRAY ? 1 : kernel_elems;
    if (rpu_split_sizes((int)ipg, cfg->mapping.max_input_size, unit, NULL, 0, &n_in) != RPU_OK ||
        rpu_split_sizes(L->out / L->groups, cfg->mapping.max_output_size, 1, NULL, 0, &n_out) !=
            RPU_OK)
        return -1;
    return (double)L->groups * n_in * n_out;
}

/* Before the work: the tile count and memory of the whole plan (the largest layer's grid,
 * the report text: tile tables unless --summary, rank tables). Prints one line on stderr
 * when the plan is large (the report on stdout stays as it was) and refuses one that does
 * not fit in memory. Returns 0 or 2. */
static int check_plan(const layer_spec *layers, int n_layers, const rpu_config *cfg, int ranks,
                      bool summary) {
    double tiles = 0, largest = 0;
    for (int l = 0; l < n_layers; ++l) {
        const double t = layer_tiles(&layers[l], cfg);
        if (t < 0) continue;
        tiles += t;
        if (t > largest) largest = t;
    }
    if (tiles > (double)SIZE_MAX / 1024) tiles = (double)SIZE_MAX / 1024;
    cli_budget b = {0, false};
    cli_budget_add(&b, (size_t)largest, sizeof(rpu_tile_slot) + sizeof(int));
    if (!summary) cli_budget_add(&b, (size_t)tiles, MAP_LINE_BYTES);
    cli_budget_add(&b, cli_mul((size_t)ranks, (size_t)n_layers + 1, &b.overflow),
                   MAP_LINE_BYTES + 2 * (sizeof(int64_t) + sizeof(int)));
    const bool big = tiles >= MAP_BIG_TILES || b.overflow || b.bytes >= MAP_BIG_BYTES;
    char what[160];
    snprintf(what, sizeof what, "the plan of %.0f tile%s in %d layer%s on %d rank%s%s", tiles,
             tiles == 1 ? "" : "s", n_layers, n_layers == 1 ? "" : "s", ranks,
             ranks == 1 ? "" : "s", summary ? "" : " (--summary leaves out the tile table)");
    return cli_budget_check("map", what, &b, big ? stderr : NULL);
}

/* ------------------------------------------------------------------ command */

int cli_map(int argc, char **argv) {
    int ranks = 0, batch = 1, n_layers = 0;
    bool summary = false;
    rpu_split split = RPU_SPLIT_MAPPED; /* --split: the default of layers without split= */
    const char *input = NULL;
    layer_spec *layers = calloc((size_t)(argc > 0 ? argc : 1), sizeof *layers);
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_SINGLE);
    int rc = 2;
    if (!layers) {
        fprintf(stderr, "rpusim map: out of memory\n");
        return 1;
    }
    for (int a = 0; a < argc; ++a) {
        const char *k = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            rc = 0;
            goto done;
        }
        if (!strcmp(k, "--summary")) {
            summary = true;
            continue;
        }
        const bool known = !strcmp(k, "--layer") || !strcmp(k, "--ranks") ||
                           !strcmp(k, "--batch") || !strcmp(k, "--input") || !strcmp(k, "--set") ||
                           !strcmp(k, "--split");
        if (!known) {
            fprintf(stderr, "rpusim map: unknown option '%s' (try: rpusim map --help)\n", k);
            goto done;
        }
        if (!v) {
            fprintf(stderr, "rpusim map: missing value for %s\n", k);
            goto done;
        }
        ++a;
        if (!strcmp(k, "--layer")) {
            if (!parse_layer(v, n_layers + 1, &layers[n_layers])) goto done;
            ++n_layers;
        } else if (!strcmp(k, "--ranks") || !strcmp(k, "--batch")) {
            if (!cli_arg_int("map", k, v, 1, MAP_MAX_INT, k[2] == 'r' ? &ranks : &batch)) goto done;
        } else if (!strcmp(k, "--input")) {
            input = v;
        } else if (!strcmp(k, "--split")) {
            if (rpu_split_parse(v, &split) != RPU_OK) {
                fprintf(stderr, "rpusim map: --split '%s': want mapped or tile_array\n", v);
                goto done;
            }
        } else { /* --set key=value */
            const char *eq = strchr(v, '=');
            char key[128];
            if (!eq || eq == v || (size_t)(eq - v) >= sizeof key) {
                fprintf(stderr, "rpusim map: --set '%s': want key=value\n", v);
                goto done;
            }
            memcpy(key, v, (size_t)(eq - v));
            key[eq - v] = '\0';
            if (rpu_config_set(&cfg, key, eq + 1) != RPU_OK) {
                fprintf(stderr, "rpusim map: --set %s: %s\n", v, rpu_last_error());
                goto done;
            }
        }
    }
    if (ranks < 1) {
        fprintf(stderr, "rpusim map: missing --ranks N\n");
        usage(stderr);
        goto done;
    }
    if (n_layers == 0) {
        fprintf(stderr, "rpusim map: no --layer given\n");
        usage(stderr);
        goto done;
    }
    for (int l = 0; l < n_layers; ++l) /* --split may come after the layers */
        if (!layers[l].has_split) layers[l].split = split;
    if (rpu_config_validate(&cfg) != RPU_OK) {
        fprintf(stderr, "rpusim map: invalid config: %s\n", rpu_last_error());
        goto done;
    }
    if (check_plan(layers, n_layers, &cfg, ranks, summary)) goto done;
    shape cur = {0};
    if (input) {
        int dims[4];
        char fault[128];
        int n = parse_dims(input, 1, dims, 4, fault, sizeof fault);
        if (n < 1) {
            fprintf(stderr,
                    "rpusim map: --input '%s': %s; want C, CxL, CxHxW or CxDxHxW (integers in "
                    "1..%d)\n",
                    input, fault, MAP_MAX_INT);
            goto done;
        }
        cur.known = 1;
        cur.c = dims[0];
        cur.nd = n - 1;
        for (int d = 1; d < n; ++d)
            cur.s[d - 1] = dims[d];
    }

    /* bytes per cell of the configured device, from a small tile */
    rpu_tile_params tp = {.out_size = 2, .in_size = 2, .seed = 1, .mac = RPU_MAC_BLAS};
    rpu_tile *tile = NULL;
    if (rpu_tile_create(&tp, &cfg, &tile) != RPU_OK) {
        fprintf(stderr, "rpusim map: cannot create a tile with this config: %s\n",
                rpu_last_error());
        goto done;
    }
    const double bpc = rpu_tile_bytes_per_cell(tile);
    rpu_tile_destroy(&tile);

    /* The report goes to a memory stream first, so an error in a later layer leaves no
     * partial report on stdout. */
    char *text = NULL;
    size_t text_len = 0;
    FILE *os = open_memstream(&text, &text_len);
    totals tot = {calloc((size_t)ranks, sizeof(int64_t)), calloc((size_t)ranks, sizeof(int)),
                  calloc((size_t)ranks, sizeof(double)),  calloc((size_t)ranks, sizeof(double)),
                  calloc((size_t)ranks, sizeof(double)),  true};
    if (!os || !tot.cells || !tot.tiles || !tot.fwd || !tot.bwd || !tot.upd) {
        fprintf(stderr, "rpusim map: out of memory\n");
        rc = 1;
    } else {
        char kind[64] = "?", device[64] = "?";
        rpu_config_get(&cfg, "kind", kind, sizeof kind);
        rpu_config_get(&cfg, "device.type", device, sizeof device);
        fprintf(os, "rpusim map: %d layer%s on %d rank%s, batch %d\n", n_layers,
                n_layers == 1 ? "" : "s", ranks, ranks == 1 ? "" : "s", batch);
        fprintf(os,
                "config: kind %s, device %s: %.0f bytes of state per cell; "
                "mapping.max_input_size %d, mapping.max_output_size %d, mapping.digital_bias "
                "%s\n",
                kind, device, bpc, cfg.mapping.max_input_size, cfg.mapping.max_output_size,
                cfg.mapping.digital_bias ? "true" : "false");
        fprintf(os, "owners: largest tile first to the least loaded rank; with more ranks than "
                    "tiles, holders (copies) in proportion to work split each batch; a "
                    "floating-point convolution of several tiles on every rank (data parallel); "
                    "send bytes: "
                    "a rank's partial results go only to the owners of their samples (alltoallv: "
                    "exact); a layer after the first fetches what its tiles read of other ranks' "
                    "input samples, one before the last of their output gradient (alltoallv: "
                    "exact; none for a layer that reads only its own samples); the logits are "
                    "gathered (ring allgather: (P-1)/P x batch x elements x 4); agreements and "
                    "summed gradients (ring allreduce: 2(P-1)/P x bytes)\n");
        int **owners = NULL;
        rc = update_owners(layers, n_layers, &cfg, ranks, batch, &cur, &owners);
        for (int l = 0; l < n_layers && rc == 0; ++l)
            rc = report_layer(&layers[l], l + 1, n_layers, &cfg, bpc, ranks, batch, !summary,
                              owners ? owners[l] : NULL, &cur, &tot, os);
        for (int l = 0; owners && l < n_layers; ++l)
            free(owners[l]);
        free(owners);
        if (rc == 0 && n_layers > 1) {
            fprintf(os, "\nall layers:\n  %5s %6s %10s %14s %14s %14s %14s\n", "rank", "tiles",
                    "cells", "state_bytes", "send_fwd_bytes", "send_bwd_bytes", "send_upd_bytes");
            for (int r = 0; r < ranks; ++r) {
                fprintf(os, "  %5d %6d %10lld %14.0f", r, tot.tiles[r], (long long)tot.cells[r],
                        (double)tot.cells[r] * bpc);
                if (tot.comm_known)
                    fprintf(os, " %14.0f %14.0f %14.0f\n", tot.fwd[r], tot.bwd[r], tot.upd[r]);
                else
                    fprintf(os, " %14s %14s %14s\n", "-", "-", "-");
            }
        }
    }
    if (os && fclose(os) != 0 && rc == 0) {
        fprintf(stderr, "rpusim map: out of memory\n");
        rc = 1;
    }
    if (rc == 0 && text && fwrite(text, 1, text_len, stdout) != text_len) {
        fprintf(stderr, "rpusim map: cannot write the report\n");
        rc = 1;
    }
    free(text);
    free(tot.cells);
    free(tot.fwd);
    free(tot.bwd);
    free(tot.upd);
    free(tot.tiles);
done:
    free(layers);
    return rc;
}
