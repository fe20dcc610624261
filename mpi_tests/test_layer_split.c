/* Tests of layers with aihwkit 1.1's tile-array split (rpu_conv_params.split =
 * RPU_SPLIT_TILE_ARRAY; include/rpusim/mapping.h): a tile covers an arbitrary column range
 * of its group's unfolded patch, so a channel's kernel block may be cut between tiles.
 * Every rank runs every check.
 *
 * 1. floating_point config: forward, input gradient, weight/bias gradient (get_grad and
 *    per owned tile get_tile_grad against the tile's column block) and the update
 *    (W - lr dW) against the nested-loop convolution of ref_conv.c, for conv1d/2d/3d with
 *    stride, padding, dilation, groups (depthwise too), a kernel larger than
 *    max_input_size, splits that do not divide, a linear layer, and one tile with an
 *    analog bias; each case states the hand-computed column splits and how many input
 *    splits share one channel (grid.in_share), checked on the layer's grid. Tolerance
 *    |got - want| <= 1e-5 (1 + max|want|); use_indexed true and false give the same bits;
 *    results are the same on every rank.
 * 2. Rank invariance: kind single (constant_step, default device-to-device variation and
 *    IO noise), three forward/backward/update steps of a conv2d (12 tiles, cut kernel
 *    blocks) and a grouped, dilated conv1d with use_indexed false (in_share 2), on
 *    sub-communicators of every size 1..P: outputs, input gradients, weight gradients and
 *    weights identical bit for bit.
 * 3. Bias rules and errors: rpu_bias_for_split against aihwkit 1.1's choice of a tile
 *    array; an analog bias on an array of several tiles is refused (RPU_ERR_MODULE); an
 *    unknown split value (RPU_ERR_ARG); the mapped split of the same layer fails where the
 *    kernel is larger than max_input_size, the tile array does not.
 * 4. Checkpoints: a tile-array layer saved after a training step loads into a fresh layer
 *    (weights and the next step's outputs bit for bit); the file describes the split
 *    ("tile_array", in_split_sizes in columns); a tile-array file does not load into a
 *    mapped layer of the same shape and vice versa (model mismatch naming the split); a
 *    file without the split attribute (written before it existed) is read as mapped. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include "rpusim/ckpt.h"
#include "rpusim/config.h"
#include "rpusim/layer.h"
#include "rpusim/mapping.h"
#include "ref_conv.h"
#include "testlib.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RTOL 1e-5

/* ------------------------------------------------------------------ helpers */

static float *falloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) abort();
    return p;
}

static double max_abs(const float *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; ++i)
        m = fmax(m, fabs((double)v[i]));
    return m;
}

static void check_close(const float *got, const float *want, size_t n, const char *what,
                        const char *label) {
    const double tol = RTOL * (1 + max_abs(want, n));
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; ++i)
        if (!(fabs((double)got[i] - (double)want[i]) <= tol)) {
            if (!bad) first = i;
            ++bad;
        }
    CHECK(bad == 0, "%s: %s: %zu of %zu values differ (first [%zu] %g, want %g; tol %g)", label,
          what, bad, n, first, bad ? got[first] : 0.0, bad ? want[first] : 0.0, tol);
}

static size_t count_diff_bits(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; ++i)
        d += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    return d;
}

static void check_bits(const float *got, const float *want, size_t n, const char *what,
                       const char *label) {
    const size_t bad = count_diff_bits(got, want, n);
    CHECK(bad == 0, "%s: %s: %zu of %zu values differ in their bits", label, what, bad, n);
}

/* The same values on every rank of MPI_COMM_WORLD (rank 0's broadcast). */
static void check_replicated(const float *v, size_t n, const char *what, const char *label) {
    float *r = falloc(n);
    memcpy(r, v, n * sizeof(float));
    MPI_Bcast(r, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    check_bits(v, r, n, what, label);
    free(r);
}

static bool msg_has(const char *needle) {
    return strstr(rpu_last_error(), needle) != NULL;
}

/* ------------------------------------------------------------------ 1. floating point */

typedef struct {
    const char *label;
    int ndim; /* 0: linear (checked as a conv1d with kernel 1 over a length-1 input) */
    int in, out, groups;
    int k[3], s[3], pad[3], dil[3];
    int bias; /* 0 none, 1 digital, 2 analog */
    int max_in, max_out;
    int n;
    int size[3];
    /* hand-computed: columns of each input split (per group), output channels of each
     * output split, input splits sharing one channel at most */
    int cols[8], n_in;
    int outs[4], n_out;
    int in_share;
} split_case;

static rpu_conv_params case_params(const split_case *sc) {
    rpu_conv_params p;
    const int nd = sc->ndim ? sc->ndim : 1;
    rpu_conv_params_default(&p, nd, sc->in, sc->out, 1);
    for (int a = 0; a < 3; ++a) {
        p.kernel[a] = a < nd && sc->ndim ? sc->k[a] : 1;
        p.stride[a] = a < nd && sc->ndim ? sc->s[a] : 1;
        p.padding[a] = a < nd && sc->ndim ? sc->pad[a] : 0;
        p.dilation[a] = a < nd && sc->ndim ? sc->dil[a] : 1;
    }
    p.groups = sc->groups;
    p.bias = sc->bias == 0 ? RPU_BIAS_NONE : sc->bias == 1 ? RPU_BIAS_DIGITAL : RPU_BIAS_ANALOG;
    p.layer_id = 4;
    p.seed = 77;
    p.split = RPU_SPLIT_TILE_ARRAY;
    return p;
}

/* The grid against the case's hand-computed splits: split rule, sizes, each tile's column
 * range, touched channels and shape. */
static void check_case_grid(const rpu_conv *l, const split_case *sc, int K) {
    const rpu_tile_grid *g = rpu_conv_grid(l);
    const char *label = sc->label;
    CHECK(g->split == RPU_SPLIT_TILE_ARRAY && g->n_in == sc->n_in && g->n_out == sc->n_out &&
              g->groups == sc->groups && g->in_share == sc->in_share,
          "%s: grid %s %d x %d x %d, in_share %d; want tile_array %d x %d x %d, in_share %d", label,
          rpu_split_name(g->split), g->groups, g->n_in, g->n_out, g->in_share, sc->groups, sc->n_in,
          sc->n_out, sc->in_share);
    if (g->n_in != sc->n_in || g->n_out != sc->n_out || g->groups != sc->groups) return;
    int bad = 0;
    for (int t = 0; t < g->n_tiles; ++t) {
        const rpu_tile_slot *s = &g->tiles[t];
        int col0 = 0, out0 = 0;
        for (int i = 0; i < s->in_split; ++i)
            col0 += sc->cols[i];
        for (int j = 0; j < s->out_split; ++j)
            out0 += sc->outs[j];
        const int ncol = sc->cols[s->in_split];
        const int ch0 = col0 / K, nch = (col0 + ncol - 1) / K - ch0 + 1;
        const int cols = ncol + (sc->bias == 2 && s->in_split == 0);
        if (s->col0 != col0 || s->ncol != ncol || s->in_ch0 != ch0 || s->in_ch != nch ||
            s->out_ch0 != out0 || s->out_ch != sc->outs[s->out_split] ||
            s->rows != sc->outs[s->out_split] || s->cols != cols)
            ++bad;
    }
    CHECK(bad == 0, "%s: %d tiles with other columns, channels or shape than computed by hand",
          label, bad);
}

static void fp_case(const split_case *sc) {
    const char *label = sc->label;
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.mapping.max_input_size = sc->max_in;
    c.mapping.max_output_size = sc->max_out;
    rpu_conv_params p = case_params(sc);
    const int K = p.kernel[0] * (p.ndim > 1 ? p.kernel[1] : 1) * (p.ndim > 2 ? p.kernel[2] : 1);
    const int n = sc->n, O = sc->out, Kc = (sc->in / sc->groups) * K;
    const bool has_bias = sc->bias != 0;
    const int one[3] = {1, 1, 1};
    const int *size = sc->ndim ? sc->size : one;
    const size_t nw = (size_t)O * Kc, nx = (size_t)n * ref_conv_in_elems(&p, size),
                 ny = (size_t)n * ref_conv_out_elems(&p, size);
    const float lr = 0.25f;

    rpu_conv *L[2] = {NULL, NULL};
    rpu_linear *lin = NULL;
    if (sc->ndim == 0) {
        rpu_linear_params lp;
        rpu_linear_params_default(&lp, sc->in, sc->out);
        lp.bias = p.bias;
        lp.layer_id = p.layer_id;
        lp.seed = p.seed;
        lp.split = RPU_SPLIT_TILE_ARRAY;
        CHECK_OK(rpu_linear_create(MPI_COMM_WORLD, &lp, &c, &lin));
        L[0] = rpu_linear_as_conv(lin);
    } else {
        for (int v = 0; v < 2; ++v) {
            p.use_indexed = v == 0;
            CHECK_OK(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &L[v]));
        }
    }
    const int nv = sc->ndim == 0 ? 1 : 2;
    if (!L[0] || (nv == 2 && !L[1])) goto done;
    check_case_grid(L[0], sc, K);

    float *w = falloc(nw), *b = falloc((size_t)O), *wg = falloc(nw), *bg = falloc((size_t)O);
    float *x = falloc(nx), *dy = falloc(ny), *yr = falloc(ny), *dxr = falloc(nx);
    float *dwr = falloc(nw), *dbr = falloc((size_t)O), *w1 = falloc(nw), *b1 = falloc((size_t)O);
    float *y[2] = {falloc(ny), falloc(ny)}, *dx[2] = {falloc(nx), falloc(nx)};
    tl_fill_uniform(w, (int)nw, -0.5f, 0.5f, 91, 1);
    tl_fill_uniform(b, O, -0.5f, 0.5f, 91, 2);
    tl_fill_uniform(x, (int)nx, -1, 1, 91, 3);
    tl_fill_uniform(dy, (int)ny, -1, 1, 91, 4);
    for (int v = 0; v < nv; ++v)
        CHECK_OK(rpu_conv_set_weights(L[v], w, has_bias ? b : NULL));
    CHECK_OK(rpu_conv_get_weights(L[0], wg, has_bias ? bg : NULL, RPU_READ_EXACT));
    check_bits(wg, w, nw, "get_weights after set_weights", label);
    if (has_bias) check_bits(bg, b, (size_t)O, "bias after set_weights", label);

    ref_conv_forward(&p, x, n, size, w, has_bias ? b : NULL, yr);
    for (int v = 0; v < nv; ++v)
        CHECK_OK(rpu_conv_forward(L[v], x, n, sc->ndim ? size : NULL, y[v]));
    check_close(y[0], yr, ny, "forward vs nested loops", label);
    if (nv == 2) check_bits(y[1], y[0], ny, "forward use_indexed true vs false", label);
    check_replicated(y[0], ny, "forward output", label);

    ref_conv_backward(&p, dy, n, size, w, dxr);
    for (int v = 0; v < nv; ++v)
        CHECK_OK(rpu_conv_backward(L[v], dy, dx[v]));
    check_close(dx[0], dxr, nx, "input gradient vs nested loops", label);
    if (nv == 2) check_bits(dx[1], dx[0], nx, "input gradient use_indexed true vs false", label);
    check_replicated(dx[0], nx, "input gradient", label);

    ref_conv_weight_grad(&p, x, dy, n, size, dwr, dbr);
    CHECK_OK(rpu_conv_get_grad(L[0], wg, has_bias ? bg : NULL));
    check_close(wg, dwr, nw, "weight gradient (get_grad) vs nested loops", label);
    if (has_bias) check_close(bg, dbr, (size_t)O, "bias gradient (get_grad)", label);
    check_replicated(wg, nw, "weight gradient", label);
    /* per owned tile: the block of columns [col0, col0 + ncol) of its rows */
    const rpu_tile_grid *g = rpu_conv_grid(L[0]);
    for (int t = 0; t < g->n_tiles; ++t) {
        const rpu_tile_slot *ts = &g->tiles[t];
        if (!rpu_conv_tile(L[0], t)) continue;
        float *tg = falloc((size_t)ts->rows * ts->cols), *tr = falloc((size_t)ts->rows * ts->cols);
        for (int r = 0; r < ts->rows; ++r) {
            const int o = ts->group * g->out_per_group + ts->out_ch0 + r;
            for (int q = 0; q < ts->ncol; ++q)
                tr[(size_t)r * ts->cols + q] = dwr[(size_t)o * Kc + ts->col0 + q];
            if (g->analog_bias && ts->in_split == 0)
                tr[(size_t)r * ts->cols + ts->cols - 1] = dbr[o];
        }
        CHECK_OK(rpu_conv_get_tile_grad(L[0], t, tg));
        char what[64];
        snprintf(what, sizeof what, "tile %d gradient (columns %d..%d)", t, ts->col0,
                 ts->col0 + ts->ncol - 1);
        check_close(tg, tr, (size_t)ts->rows * ts->cols, what, label);
        free(tg), free(tr);
    }

    /* floating point update: W - lr dW (and an analog bias b - lr db) */
    CHECK_OK(rpu_conv_update(L[0], lr));
    CHECK_OK(rpu_conv_get_weights(L[0], w1, has_bias ? b1 : NULL, RPU_READ_EXACT));
    for (size_t q = 0; q < nw; ++q)
        wg[q] = (w[q] - w1[q]) / lr;
    check_close(wg, dwr, nw, "(W - W_new) / lr vs nested loops", label);
    if (sc->bias == 2) {
        for (int o = 0; o < O; ++o)
            bg[o] = (b[o] - b1[o]) / lr;
        check_close(bg, dbr, (size_t)O, "analog bias (b - b_new) / lr", label);
    } else if (sc->bias == 1) {
        check_bits(b1, b, (size_t)O, "digital bias not changed by update", label);
    }
    check_replicated(w1, nw, "updated weights", label);

    free(w), free(b), free(wg), free(bg), free(x), free(dy), free(yr), free(dxr), free(dwr),
        free(dbr), free(w1), free(b1);
    for (int v = 0; v < 2; ++v)
        free(y[v]), free(dx[v]);
done:
    if (lin)
        rpu_linear_destroy(&lin);
    else
        for (int v = 0; v < 2; ++v)
            rpu_conv_destroy(&L[v]);
}

static void test_fp(void) {
    /* The column splits: n = ceil(F / max_in) chunks of F / n, the first F % n one wider. */
    /* clang-format off */
    const split_case cases[] = {
        /* 4 ch x 3x3 = 36 columns, max 16: 3 x 12 = channels 0-1, 1-2, 2-3 (channels 1 and 2
         * cut); out 6, max 4: [3, 3] */
        {"conv2d 4->6 3x3 pad 1, max 16/4",
         2, 4, 6, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1, 16, 4, 2, {5, 6},
         {12, 12, 12}, 3, {3, 3}, 2, 2},
        /* 3 ch x 5 = 15 columns, max 4 < kernel 5: [4, 4, 4, 3]; every channel in 2 tiles */
        {"conv1d 3->5 k5 stride 2 pad 2, max 4 < kernel",
         1, 3, 5, 1, {5}, {2}, {2}, {1}, 0, 4, 0, 3, {11},
         {4, 4, 4, 3}, 4, {5}, 1, 2},
        /* 2 ch x 9 = 18 columns, max 4: [4, 4, 4, 3, 3]; channel 0 (0..8) in splits 0-2,
         * channel 1 (9..17) in 2-4; out 3, max 2: [2, 1] */
        {"conv1d 2->3 k9 dilation 2, max 4/2 (a channel in 3 tiles)",
         1, 2, 3, 1, {9}, {1}, {3}, {2}, 1, 4, 2, 2, {14},
         {4, 4, 4, 3, 3}, 5, {2, 1}, 2, 3},
        /* 2 ch x 2x2x3 = 24 columns, max 10: [8, 8, 8]; channel 0 (0..11) in splits 0-1 */
        {"conv3d 2->4 k2x2x3 stride 1x2x1 pad 0x1x1 dil 1x1x2, max 10",
         3, 2, 4, 1, {2, 2, 3}, {1, 2, 1}, {0, 1, 1}, {1, 1, 2}, 1, 10, 512, 2, {3, 5, 7},
         {8, 8, 8}, 3, {4}, 1, 2},
        /* groups 2: per group 2 ch x 3x2 = 12 columns, max 5: [4, 4, 4]; per group out 3,
         * max 2: [2, 1]; 12 tiles */
        {"conv2d 4->6 groups 2 k3x2 dil 2x1, max 5/2",
         2, 4, 6, 2, {3, 2}, {1, 1}, {1, 0}, {2, 1}, 1, 5, 2, 2, {6, 5},
         {4, 4, 4}, 3, {2, 1}, 2, 2},
        /* depthwise: per group 1 ch x 3x3 = 9 columns, max 4: [3, 3, 3]; one channel in
         * all 3 tiles of its group */
        {"depthwise conv2d 3->3 groups 3 k3 pad 1, max 4",
         2, 3, 3, 3, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 0, 4, 0, 2, {4, 4},
         {3, 3, 3}, 3, {1}, 1, 3},
        /* groups 2 and splits that do not divide: per group 3 ch x 2 = 6 columns, max 4:
         * [3, 3] = channels 0-1, 1-2 */
        {"conv1d 6->4 groups 2 k2, max 4/1",
         1, 6, 4, 2, {2}, {1}, {0}, {1}, 1, 4, 1, 2, {7},
         {3, 3}, 2, {1, 1}, 2, 2},
        /* linear 13 -> 7, max 5/3: [5, 4, 4] x [3, 2, 2] (kernel 1: nothing to cut) */
        {"linear 13->7, max 5/3",
         0, 13, 7, 1, {1}, {1}, {0}, {1}, 1, 5, 3, 4, {1},
         {5, 4, 4}, 3, {3, 2, 2}, 3, 1},
        /* one tile: an analog bias column is allowed */
        {"conv2d 2->3 3x3 one tile, analog bias",
         2, 2, 3, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 2, 512, 512, 2, {4, 5},
         {18}, 1, {3}, 1, 1},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
        fp_case(&cases[i]);
}

/* ------------------------------------------------------------------ 2. rank invariance */

#define STEPS 3

typedef struct {
    const char *label;
    int ndim, in, out, groups, k, pad, dil, bias, max_in, max_out, n, size[2];
    bool use_indexed;
    int want_in_share;
} inv_case;

static size_t inv_len(const inv_case *ic, size_t *nw, size_t *nx, size_t *ny) {
    const int K = ic->ndim == 2 ? ic->k * ic->k : ic->k;
    const int L = ic->ndim == 2 ? ic->size[0] * ic->size[1] : ic->size[0];
    *nw = (size_t)ic->out * (ic->in / ic->groups) * K;
    *nx = (size_t)ic->n * ic->in * L; /* padding keeps the size: out L = in L */
    *ny = (size_t)ic->n * ic->out * L;
    return *nw + STEPS * (*ny + *nx + *nw + (size_t)ic->out) + *nw + (size_t)ic->out;
}

/* Initial weights, per step y, dx, dW and db, then final weights and bias into res. */
static void inv_scenario(const inv_case *ic, MPI_Comm comm, float *res, int *in_share) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.mapping.max_input_size = ic->max_in;
    c.mapping.max_output_size = ic->max_out;
    rpu_conv_params p;
    rpu_conv_params_default(&p, ic->ndim, ic->in, ic->out, ic->k);
    p.groups = ic->groups;
    for (int a = 0; a < ic->ndim; ++a)
        p.padding[a] = ic->pad, p.dilation[a] = ic->dil;
    p.bias = ic->bias ? RPU_BIAS_DIGITAL : RPU_BIAS_NONE;
    p.use_indexed = ic->use_indexed;
    p.split = RPU_SPLIT_TILE_ARRAY;
    p.layer_id = 9;
    p.seed = 61;
    size_t nw, nx, ny;
    inv_len(ic, &nw, &nx, &ny);
    rpu_conv *l = NULL;
    CHECK_OK(rpu_conv_create(comm, &p, &c, &l));
    if (!l) return;
    *in_share = rpu_conv_grid(l)->in_share;
    float *x = falloc(nx), *dy = falloc(ny), *bscratch = falloc((size_t)ic->out);
    float *o = res;
    CHECK_OK(rpu_conv_get_weights(l, o, ic->bias ? bscratch : NULL, RPU_READ_EXACT));
    o += nw;
    for (int st = 0; st < STEPS; ++st) {
        tl_fill_uniform(x, (int)nx, -1, 1, 62 + (uint64_t)st, 1);
        tl_fill_uniform(dy, (int)ny, -0.5f, 0.5f, 62 + (uint64_t)st, 2);
        CHECK_OK(rpu_conv_forward(l, x, ic->n, ic->size, o));
        o += ny;
        CHECK_OK(rpu_conv_backward(l, dy, o));
        o += nx;
        CHECK_OK(rpu_conv_get_grad(l, o, ic->bias ? o + nw : NULL));
        o += nw + (size_t)ic->out;
        CHECK_OK(rpu_conv_update(l, 0.1f));
    }
    CHECK_OK(rpu_conv_get_weights(l, o, ic->bias ? o + nw : NULL, RPU_READ_EXACT));
    free(x), free(dy), free(bscratch);
    rpu_conv_destroy(&l);
}

static void rank_invariance(const inv_case *ic) {
    size_t nw, nx, ny;
    const size_t len = inv_len(ic, &nw, &nx, &ny);
    float *ref = falloc(len), *res = falloc(len);
    const int P = tl_size(), rank = tl_rank();
    for (int s = 1; s <= P; ++s) {
        MPI_Comm sub;
        MPI_Comm_split(MPI_COMM_WORLD, rank < s ? 1 : MPI_UNDEFINED, rank, &sub);
        int in_share = 0;
        if (sub != MPI_COMM_NULL) {
            memset(res, 0, len * sizeof(float));
            inv_scenario(ic, sub, res, &in_share);
            MPI_Comm_free(&sub);
        }
        if (s == 1) {
            if (rank == 0) {
                memcpy(ref, res, len * sizeof(float));
                CHECK(in_share == ic->want_in_share, "%s: in_share %d, want %d", ic->label,
                      in_share, ic->want_in_share);
            }
            MPI_Bcast(ref, (int)len, MPI_FLOAT, 0, MPI_COMM_WORLD);
            const size_t changed = count_diff_bits(ref, ref + len - nw - (size_t)ic->out, nw);
            CHECK(changed > nw / 10, "%s: the updates changed %zu of %zu weights (want > 10 %%)",
                  ic->label, changed, nw);
        } else if (rank < s) {
            const size_t bad = count_diff_bits(res, ref, len);
            size_t first = 0;
            while (bad && first < len && !memcmp(&res[first], &ref[first], sizeof(float)))
                ++first;
            CHECK(bad == 0, "%s: %d ranks vs 1: %zu of %zu values differ (first at %zu)", ic->label,
                  s, bad, len, first);
        }
    }
    free(ref), free(res);
}

static void test_rank_invariance(void) {
    /* clang-format off */
    /* 6 ch x 3x3 = 54 columns, max 16: [14, 14, 13, 13]; out 10, max 4: [4, 3, 3]; 12
     * tiles; channel 1 (9..17) in splits 0-1 */
    const inv_case a = {"conv2d 6->10 3x3 pad 1 tile array (12 tiles)",
                        2, 6, 10, 1, 3, 1, 1, 1, 16, 4, 2, {7, 8}, true, 2};
    /* groups 2: per group 2 ch x 3 = 6 columns, max 2: [2, 2, 2] = channels 0, 0-1, 1;
     * per group out 3, max 2: [2, 1]; 12 tiles */
    const inv_case b = {"conv1d 4->6 groups 2 k3 dil 2 pad 2 use_indexed false (12 tiles)",
                        1, 4, 6, 2, 3, 2, 2, 0, 2, 2, 3, {15}, false, 2};
    /* one output split, channels cut: 3 ch x 5 = 15 columns, max 4: [4, 4, 4, 3]; each
     * input element gets the col2im of 2 tiles (the exact int64 sum, not the float one) */
    const inv_case c = {"conv1d 3->5 k5 pad 2, one output split (4 tiles)",
                        1, 3, 5, 1, 5, 2, 1, 1, 4, 0, 2, {9}, true, 2};
    /* clang-format on */
    rank_invariance(&a);
    rank_invariance(&b);
    rank_invariance(&c);
}

/* ------------------------------------------------------------------ 3. bias and errors */

static void test_bias_and_errors(void) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.mapping.digital_bias = false;
    c.mapping.max_input_size = 16;
    c.mapping.max_output_size = 4;
    /* aihwkit 1.1: an array when max_in < in or max_out < out (not both limits 0); the
     * array's bias is digital, a single tile's follows mapping.digital_bias */
    CHECK(rpu_bias_for_split(true, &c, RPU_SPLIT_TILE_ARRAY, 36, 6) == RPU_BIAS_DIGITAL,
          "bias_for_split: array of 36 x 6 at 16/4 -> digital");
    CHECK(rpu_bias_for_split(true, &c, RPU_SPLIT_TILE_ARRAY, 16, 4) == RPU_BIAS_ANALOG,
          "bias_for_split: 16 x 4 fits one tile -> analog (digital_bias false)");
    CHECK(rpu_bias_for_split(true, &c, RPU_SPLIT_MAPPED, 36, 6) == RPU_BIAS_ANALOG,
          "bias_for_split: mapped -> as the config (analog)");
    CHECK(rpu_bias_for_split(false, &c, RPU_SPLIT_TILE_ARRAY, 36, 6) == RPU_BIAS_NONE,
          "bias_for_split: no bias");
    CHECK(rpu_tile_array_used(36, 6, 16, 4) && !rpu_tile_array_used(36, 6, 36, 6) &&
              !rpu_tile_array_used(36, 6, 0, 0) && rpu_tile_array_used(36, 6, 0, 512) &&
              rpu_tile_array_used(4, 6, 16, 4),
          "rpu_tile_array_used: aihwkit's predicate");

    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, 4, 6, 3);
    p.split = RPU_SPLIT_TILE_ARRAY;
    p.bias = RPU_BIAS_ANALOG;
    snprintf(p.name, sizeof p.name, "arr");
    rpu_conv *l = NULL;
    CHECK_STATUS(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &l), RPU_ERR_MODULE);
    CHECK(msg_has("layer arr") && msg_has("keeps the bias digital"),
          "analog bias on a 3 x 2 tile array: message names the layer and the rule: %s",
          rpu_last_error());
    CHECK(l == NULL, "failed create leaves NULL");
    p.bias = RPU_BIAS_DIGITAL;
    p.split = (rpu_split)7;
    CHECK_STATUS(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &l), RPU_ERR_ARG);
    CHECK(msg_has("unknown split 7"), "unknown split named: %s", rpu_last_error());
    /* kernel (9) larger than max_input_size (8): the mapped split cannot place it, the
     * tile array cuts it: 36 columns in ceil(36 / 8) = 5 chunks [8, 7, 7, 7, 7] */
    c.mapping.max_input_size = 8;
    p.split = RPU_SPLIT_MAPPED;
    CHECK_STATUS(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &l), RPU_ERR_MODULE);
    CHECK(msg_has("tile size too small to fit a single kernel: 9 > 8"), "mapped: %s",
          rpu_last_error());
    p.split = RPU_SPLIT_TILE_ARRAY;
    CHECK_OK(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &l));
    if (l) {
        const rpu_tile_grid *g = rpu_conv_grid(l);
        CHECK(g->n_in == 5 && g->tiles[0].ncol == 8 && g->tiles[g->n_out].ncol == 7 &&
                  g->tiles[4 * g->n_out].col0 == 29,
              "tile array of 36 columns at 8: [8, 7, 7, 7, 7]");
    }
    rpu_conv_destroy(&l);
    rpu_split sp;
    CHECK_STATUS(rpu_split_parse("tiles", &sp), RPU_ERR_ARG);
    CHECK(msg_has("tiles") && msg_has("mapped or tile_array"), "parse error: %s", rpu_last_error());
    CHECK(rpu_split_parse("tile_array", &sp) == RPU_OK && sp == RPU_SPLIT_TILE_ARRAY &&
              !strcmp(rpu_split_name(sp), "tile_array") &&
              rpu_split_parse("mapped", &sp) == RPU_OK && sp == RPU_SPLIT_MAPPED,
          "split names round trip");
}

/* ------------------------------------------------------------------ 4. checkpoints */

static char g_dir[256];

/* conv2d 4 -> 6, 3x3, padding 1, digital bias, max 16/4; kind single (noisy pulsed) */
static rpu_conv *ck_layer(rpu_split split) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.mapping.max_input_size = 16;
    c.mapping.max_output_size = 4;
    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, 4, 6, 3);
    p.padding[0] = p.padding[1] = 1;
    p.split = split;
    p.layer_id = 2;
    p.seed = 5;
    rpu_conv *l = NULL;
    CHECK_OK(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &l));
    return l;
}

enum { CK_N = 2, CK_X = CK_N * 4 * 25, CK_Y = CK_N * 6 * 25, CK_W = 6 * 4 * 9 };

static void ck_step(rpu_conv *l, int step, float *y) {
    float x[CK_X], dy[CK_Y];
    const int size[2] = {5, 5};
    tl_fill_uniform(x, CK_X, -1, 1, 300, (uint64_t)step);
    tl_fill_uniform(dy, CK_Y, -0.2f, 0.2f, 301, (uint64_t)step);
    CHECK_OK(rpu_conv_forward(l, x, CK_N, size, y));
    CHECK_OK(rpu_conv_backward(l, dy, NULL));
    CHECK_OK(rpu_conv_update(l, 0.2f));
}

static void expect_mismatch(rpu_split model_split, const char *path, const char *needle,
                            const char *label) {
    rpu_conv *m = ck_layer(model_split);
    if (!m) return;
    rpu_ckpt_layer ckl = {"conv", m};
    const rpu_status s = rpu_ckpt_load(MPI_COMM_WORLD, path, &ckl, 1, NULL, 0, NULL);
    CHECK(s == RPU_ERR_FORMAT && msg_has("/layers/conv") && msg_has("model mismatch") &&
              msg_has(needle),
          "%s: load -> %s: %s (want a model mismatch with '%s')", label, rpu_status_name(s),
          rpu_last_error(), needle);
    rpu_conv_destroy(&m);
}

static void test_checkpoint(void) {
    char arr[320], map[320];
    snprintf(arr, sizeof arr, "%s/array.h5", g_dir);
    snprintf(map, sizeof map, "%s/mapped.h5", g_dir);
    rpu_conv *a = ck_layer(RPU_SPLIT_TILE_ARRAY), *mp = ck_layer(RPU_SPLIT_MAPPED);
    if (!a || !mp) goto out;
    float y[CK_Y], y2[CK_Y], w[CK_W], w2[CK_W], b[6], b2[6];
    ck_step(a, 0, y);
    ck_step(mp, 0, y);
    rpu_ckpt_layer ca = {"conv", a}, cm = {"conv", mp};
    CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, arr, NULL, &ca, 1, NULL, 0, NULL));
    CHECK_OK(rpu_ckpt_save(MPI_COMM_WORLD, map, NULL, &cm, 1, NULL, 0, NULL));
    /* round trip: a fresh tile-array layer continues as the saved one */
    rpu_conv *r = ck_layer(RPU_SPLIT_TILE_ARRAY);
    if (r) {
        rpu_ckpt_layer cr = {"conv", r};
        CHECK_OK(rpu_ckpt_load(MPI_COMM_WORLD, arr, &cr, 1, NULL, 0, NULL));
        CHECK_OK(rpu_conv_get_weights(a, w, b, RPU_READ_EXACT));
        CHECK_OK(rpu_conv_get_weights(r, w2, b2, RPU_READ_EXACT));
        check_bits(w2, w, CK_W, "weights after load", "tile-array checkpoint");
        ck_step(a, 1, y);
        ck_step(r, 1, y2);
        check_bits(y2, y, CK_Y, "next step's output after load", "tile-array checkpoint");
        rpu_conv_destroy(&r);
    }
    /* the file describes the split: columns [12, 12, 12] x [3, 3] */
    if (tl_rank() == 0) {
        rpu_ckpt_file *f = NULL;
        CHECK_OK(rpu_ckpt_open(arr, &f));
        rpu_ckpt_layer_desc d;
        if (f && rpu_ckpt_file_layer(f, 0, &d) == RPU_OK)
            CHECK(!strcmp(d.split, "tile_array") && d.n_in == 3 && d.in_split_sizes[0] == 12 &&
                      d.in_split_sizes[1] == 12 && d.in_split_sizes[2] == 12 && d.n_out == 2 &&
                      d.out_split_sizes[0] == 3 && d.n_tiles == 6,
                  "tile-array file: split %s, %d in splits [%d, ...]", d.split, d.n_in,
                  d.in_split_sizes[0]);
        rpu_ckpt_close(&f);
        CHECK_OK(rpu_ckpt_open(map, &f));
        if (f && rpu_ckpt_file_layer(f, 0, &d) == RPU_OK)
            CHECK(!strcmp(d.split, "mapped") && d.n_in == 4 && d.in_split_sizes[0] == 1,
                  "mapped file: split %s, %d in splits [%d, ...] channels", d.split, d.n_in,
                  d.in_split_sizes[0]);
        rpu_ckpt_close(&f);
    }
    /* a layer saved with one split does not load into the other */
    expect_mismatch(RPU_SPLIT_MAPPED, arr, "split is tile_array in the file, mapped in the model",
                    "tile-array file into a mapped layer");
    expect_mismatch(RPU_SPLIT_TILE_ARRAY, map,
                    "split is mapped in the file, tile_array in the model",
                    "mapped file into a tile-array layer");
    /* a file from before the split attribute: read as mapped */
    if (tl_rank() == 0) {
        hid_t f = H5Fopen(map, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t g = f >= 0 ? H5Gopen2(f, "/layers/conv", H5P_DEFAULT) : -1;
        CHECK(g >= 0 && H5Adelete(g, "split") >= 0, "delete the split attribute");
        if (g >= 0) H5Gclose(g);
        if (f >= 0) H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    r = ck_layer(RPU_SPLIT_MAPPED);
    if (r) {
        rpu_ckpt_layer cr = {"conv", r};
        CHECK_OK(rpu_ckpt_load(MPI_COMM_WORLD, map, &cr, 1, NULL, 0, NULL));
        CHECK_OK(rpu_conv_get_weights(mp, w, b, RPU_READ_EXACT));
        CHECK_OK(rpu_conv_get_weights(r, w2, b2, RPU_READ_EXACT));
        check_bits(w2, w, CK_W, "weights after load", "file without the split attribute");
        rpu_conv_destroy(&r);
    }
    expect_mismatch(RPU_SPLIT_TILE_ARRAY, map,
                    "split is mapped in the file, tile_array in the model",
                    "file without the split attribute into a tile-array layer");
out:
    rpu_conv_destroy(&a);
    rpu_conv_destroy(&mp);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    if (tl_rank() == 0) {
        snprintf(g_dir, sizeof g_dir, "layer_split_np%d_XXXXXX", tl_size());
        if (!mkdtemp(g_dir)) g_dir[0] = '\0';
    }
    MPI_Bcast(g_dir, sizeof g_dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    CHECK(g_dir[0] != '\0', "mkdtemp");
    test_fp();
    test_rank_invariance();
    test_bias_and_errors();
    if (g_dir[0]) test_checkpoint();
    const int rank = tl_rank();
    const int rc = tl_finish();
    if (rc == 0 && rank == 0) tl_remove_dir(g_dir);
    return rc;
}
