/* Tests of the mapped conv (1d/2d/3d) and linear layers whose tiles are spread over the
 * ranks of a communicator (include/rpusim/layer.h; spec §1, §7; DESIGN.md "Distributed
 * model"). Every rank runs every check.
 *
 * 1. floating_point config: forward, input gradient and weight/bias gradient (recovered
 *    from the weights before and after rpu_conv_update with lr 0.25) against the direct
 *    nested-loop convolution of ref_conv.c, over 1d/2d/3d shapes with stride, padding,
 *    dilation, groups (depthwise too), digital/analog/no bias, odd sizes and small
 *    max_input_size/max_output_size (many tiles); tolerance |got - want| <= 1e-5 (1 +
 *    max|want|). use_indexed true and false give the same bits; backward with dx = NULL
 *    leads to the same update; outputs are the same on every rank. Linear likewise. Per-tile
 *    column-wise weight scaling (omega 0.6): each tile's scales from its own sub-block, the
 *    layer's numbers unchanged.
 * 2. Mapped layer vs one unsplit tile fed the im2col patches built here: perfect IO equal
 *    within 1e-5; default IO noise (quantization off): means over R = 2000 repeats equal
 *    within 5 standard deviations derived from out_noise and each tile's abs-max noise
 *    management, and the pooled sample variances within 10 % of that model.
 * 3. Rank invariance: the same conv2d (9 tiles) and linear layer (9 tiles, analog bias),
 *    kind single (constant_step, default device-to-device variation and IO noise), three
 *    forward/backward/update(lr 0.1) steps on sub-communicators of every size 1..P:
 *    outputs, input gradients and final weights identical bit for bit; also a conv1d with
 *    groups 2, dilation 2, an analog bias and use_indexed false (8 tiles).
 * 4. Tile grids of the worked examples of spec §1.3 (split sizes, tile shapes, owners,
 *    owned tiles, load balance) and rpu_conv_tile_size.
 * 5. Error paths with status and message key words. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "rpusim/config.h"
#include "rpusim/layer.h"
#include "rpusim/mapping.h"
#include "rpusim/tile.h"
#include "ref_conv.h"
#include "testlib.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* |got - want| <= rtol (1 + max|want|) for every element (NaN fails). */
static void check_close(const float *got, const float *want, size_t n, double rtol,
                        const char *what, const char *label) {
    const double tol = rtol * (1 + max_abs(want, n));
    size_t bad = 0, first = 0;
    double worst = 0;
    for (size_t i = 0; i < n; ++i) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= tol)) {
            if (!bad) first = i;
            ++bad;
        }
        if (d > worst || d != d) worst = d;
    }
    CHECK(bad == 0,
          "%s: %s: %zu of %zu values off by more than %.3g; first [%zu] got %.9g want %.9g; "
          "worst |diff| %.3g",
          label, what, bad, n, tol, bad ? first : 0, bad ? (double)got[first] : 0.0,
          bad ? (double)want[first] : 0.0, worst);
}

static size_t count_diff_bits(const float *a, const float *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i)
        bad += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    return bad;
}

static void check_bits(const float *got, const float *want, size_t n, const char *what,
                       const char *label) {
    size_t bad = count_diff_bits(got, want, n);
    size_t first = 0;
    while (bad && first < n && memcmp(&got[first], &want[first], sizeof(float)) == 0)
        ++first;
    CHECK(bad == 0, "%s: %s: %zu of %zu values differ in bits; first [%zu] %.9g vs %.9g", label,
          what, bad, n, first, bad ? (double)got[first] : 0.0, bad ? (double)want[first] : 0.0);
}

/* The same values on every rank of comm (activations are replicated). */
static void check_replicated(MPI_Comm comm, const float *v, size_t n, const char *what,
                             const char *label) {
    float *r = falloc(n);
    memcpy(r, v, n * sizeof(float));
    MPI_Bcast(r, (int)n, MPI_FLOAT, 0, comm);
    size_t bad = count_diff_bits(v, r, n);
    CHECK(bad == 0, "%s: %s: %zu of %zu values differ from rank 0's", label, what, bad, n);
    free(r);
}

static bool ci_contains(const char *hay, const char *needle) {
    size_t ln = strlen(needle);
    for (; *hay; ++hay) {
        size_t i = 0;
        while (i < ln && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            ++i;
        if (i == ln) return true;
    }
    return ln == 0;
}

/* True if the last error message contains any of the '|'-separated words (any case). */
static bool msg_has(const char *alts) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", alts);
    for (char *s = buf, *e; s; s = e) {
        e = strchr(s, '|');
        if (e) *e++ = '\0';
        if (ci_contains(rpu_last_error(), s)) return true;
    }
    return false;
}

#define CHECK_ERR(expr, want, words)                                                               \
    do {                                                                                           \
        rpu_clear_error();                                                                         \
        rpu_status s_ = (expr);                                                                    \
        CHECK(s_ == (want), "%s -> %s, want %s (%s)", #expr, rpu_status_name(s_),                  \
              rpu_status_name(want), rpu_last_error());                                            \
        CHECK(s_ == RPU_OK || msg_has(words), "%s: message \"%s\" has none of \"%s\"", #expr,      \
              rpu_last_error(), words);                                                            \
    } while (0)

/* aihwkit's split rule (spec §1.3), written out here: `size` elements in units of `unit`,
 * chunks of at most max_size elements, balanced, larger first. Chunk sizes in units. */
static int ref_split(int size, int max_size, int unit, int *out) {
    int units = size / unit;
    if (max_size <= 0) {
        out[0] = units;
        return 1;
    }
    int max_units = max_size / unit;
    int ns = (units + max_units - 1) / max_units;
    for (int i = 0; i < ns; ++i)
        out[i] = units / ns + (i < units % ns ? 1 : 0);
    return ns;
}

/* The grid of layer l against the split rule; owners in range, exactly the owned tiles
 * present on this rank with the slot's shape; greedy balance (max - min load <= largest
 * tile). */
static void check_grid(const rpu_conv *l, int in_ch, int out_ch, int groups, int K, int analog,
                       int max_in, int max_out, const char *label) {
    const rpu_tile_grid *g = rpu_conv_grid(l);
    CHECK(g != NULL, "%s: rpu_conv_grid is not NULL", label);
    if (!g) return;
    int ins[256], outs[256];
    int nin = ref_split(in_ch / groups * K, max_in, K, ins);
    int nout = ref_split(out_ch / groups, max_out, 1, outs);
    CHECK(g->groups == groups && g->n_in == nin && g->n_out == nout &&
              g->n_tiles == groups * nin * nout,
          "%s: grid groups %d n_in %d n_out %d n_tiles %d, want %d %d %d %d", label, g->groups,
          g->n_in, g->n_out, g->n_tiles, groups, nin, nout, groups * nin * nout);
    CHECK(g->kernel_elems == K && g->in_per_group == in_ch / groups &&
              g->out_per_group == out_ch / groups && g->analog_bias == analog,
          "%s: grid kernel_elems %d in/group %d out/group %d analog_bias %d, want %d %d %d %d",
          label, g->kernel_elems, g->in_per_group, g->out_per_group, g->analog_bias, K,
          in_ch / groups, out_ch / groups, analog);
    if (g->n_tiles != groups * nin * nout || !g->tiles) return;
    int size, rank;
    MPI_Comm comm = rpu_conv_comm(l);
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &rank);
    double *load = calloc((size_t)size, sizeof(double));
    double max_work = 0;
    int bad_slot = -1, bad_owner = -1, bad_tile = -1;
    for (int grp = 0; grp < groups; ++grp) {
        int ic0 = 0;
        for (int i = 0; i < nin; ++i) {
            int oc0 = 0;
            for (int j = 0; j < nout; ++j) {
                int t = (grp * nin + i) * nout + j;
                const rpu_tile_slot *s = &g->tiles[t];
                int cols = ins[i] * K + (analog && i == 0 ? 1 : 0);
                if (s->group != grp || s->in_split != i || s->out_split != j || s->in_ch0 != ic0 ||
                    s->in_ch != ins[i] || s->out_ch0 != oc0 || s->out_ch != outs[j] ||
                    s->rows != outs[j] || s->cols != cols) {
                    if (bad_slot < 0) {
                        bad_slot = t;
                        CHECK(0,
                              "%s: tile %d slot group %d split (%d,%d) in_ch %d+%d out_ch %d+%d "
                              "shape %dx%d, want group %d split (%d,%d) in_ch %d+%d out_ch "
                              "%d+%d shape %dx%d",
                              label, t, s->group, s->in_split, s->out_split, s->in_ch0, s->in_ch,
                              s->out_ch0, s->out_ch, s->rows, s->cols, grp, i, j, ic0, ins[i], oc0,
                              outs[j], outs[j], cols);
                    }
                }
                if (s->owner < 0 || s->owner >= size) {
                    if (bad_owner < 0) bad_owner = t;
                } else {
                    load[s->owner] += (double)s->rows * s->cols;
                }
                max_work = fmax(max_work, (double)s->rows * s->cols);
                rpu_tile *tile = rpu_conv_tile(l, t);
                bool mine = rpu_tile_holder_index(s, rank, size) >= 0;
                if ((tile != NULL) != mine || (tile && (rpu_tile_out_size(tile) != s->rows ||
                                                        rpu_tile_in_size(tile) != s->cols))) {
                    if (bad_tile < 0) {
                        bad_tile = t;
                        CHECK(0, "%s: tile %d owner %d, rank %d: rpu_conv_tile %s%s (%dx%d)", label,
                              t, s->owner, rank, tile ? "present" : "NULL",
                              mine ? " (owned)" : " (not owned)",
                              tile ? rpu_tile_out_size(tile) : 0,
                              tile ? rpu_tile_in_size(tile) : 0);
                    }
                }
                oc0 += outs[j];
            }
            ic0 += ins[i];
        }
    }
    CHECK(bad_slot < 0, "%s: every tile slot as the split rule (first bad %d)", label, bad_slot);
    CHECK(bad_owner < 0, "%s: every owner within [0, %d) (first bad tile %d)", label, size,
          bad_owner);
    CHECK(bad_tile < 0, "%s: owned tiles present with their shapes (first bad %d)", label,
          bad_tile);
    double lo = load[0], hi = load[0];
    for (int r = 1; r < size; ++r)
        lo = fmin(lo, load[r]), hi = fmax(hi, load[r]);
    CHECK(hi - lo <= max_work,
          "%s: rank loads %g..%g cells differ by more than the largest tile "
          "(%g)",
          label, lo, hi, max_work);
    free(load);
}

/* ------------------------------------------------------------------ 1. floating point */

typedef struct {
    const char *label;
    int ndim, in, out, groups;
    int k[3], s[3], pad[3], dil[3];
    int bias; /* 0 none, 1 digital, 2 analog */
    int max_in, max_out;
    int n;
    int size[3];
} conv_case;

/* 0 none, 1 digital, 2 analog (the tables' column) as the layer's bias kind. */
static rpu_bias bias_kind(int b) {
    return b == 0 ? RPU_BIAS_NONE : (b == 1 ? RPU_BIAS_DIGITAL : RPU_BIAS_ANALOG);
}

static rpu_conv_params case_params(const conv_case *cc, uint64_t seed) {
    rpu_conv_params p;
    rpu_conv_params_default(&p, cc->ndim, cc->in, cc->out, cc->k[0]);
    for (int a = 0; a < 3; ++a) {
        p.kernel[a] = a < cc->ndim ? cc->k[a] : 1;
        p.stride[a] = a < cc->ndim ? cc->s[a] : 1;
        p.padding[a] = a < cc->ndim ? cc->pad[a] : 0;
        p.dilation[a] = a < cc->ndim ? cc->dil[a] : 1;
    }
    p.groups = cc->groups;
    p.bias = bias_kind(cc->bias);
    p.layer_id = 3;
    p.seed = seed;
    return p;
}

static int kernel_elems(const rpu_conv_params *p) {
    int K = 1;
    for (int a = 0; a < p->ndim; ++a)
        K *= p->kernel[a];
    return K;
}

static void fp_conv_case(const conv_case *cc, uint64_t seed) {
    const char *label = cc->label;
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.mapping.max_input_size = cc->max_in;
    c.mapping.max_output_size = cc->max_out;
    rpu_conv_params p = case_params(cc, seed);
    const bool def_indexed = p.use_indexed;
    const int K = kernel_elems(&p);
    const int n = cc->n;
    const bool has_bias = cc->bias != 0;
    const size_t nw = (size_t)cc->out * (cc->in / cc->groups) * K;
    const size_t nx = (size_t)n * ref_conv_in_elems(&p, cc->size);
    const size_t ny = (size_t)n * ref_conv_out_elems(&p, cc->size);
    const float lr = 0.25f;

    rpu_conv *L[3] = {NULL, NULL, NULL};
    for (int v = 0; v < 2; ++v) {
        p.use_indexed = v == 1;
        CHECK_OK(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &L[v]));
    }
    p.use_indexed = def_indexed;
    CHECK_OK(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &L[2]));
    if (!L[0] || !L[1] || !L[2]) goto done;

    check_grid(L[0], cc->in, cc->out, cc->groups, K, cc->bias == 2, cc->max_in, cc->max_out, label);
    CHECK(rpu_conv_weight_count(L[0]) == (int)nw, "%s: weight count %d, want %zu", label,
          rpu_conv_weight_count(L[0]), nw);
    {
        const rpu_conv_params *gp = rpu_conv_get_params(L[1]);
        CHECK(gp && gp->ndim == p.ndim && gp->groups == p.groups && gp->use_indexed &&
                  gp->in_channels == p.in_channels && gp->kernel[0] == p.kernel[0],
              "%s: rpu_conv_get_params gives the creation parameters", label);
        int os[3] = {0, 0, 0}, want[3] = {0, 0, 0};
        ref_conv_out_size(&p, cc->size, want);
        CHECK_OK(rpu_conv_output_size(rpu_conv_get_params(L[0]), cc->size, os));
        CHECK(memcmp(os, want, sizeof(int) * (size_t)cc->ndim) == 0,
              "%s: output size %d %d %d, want %d %d %d", label, os[0], os[1], os[2], want[0],
              want[1], want[2]);
    }

    float *w = falloc(nw), *b = falloc((size_t)cc->out), *wg = falloc(nw),
          *bg = falloc((size_t)cc->out), *w0 = falloc(nw), *b0 = falloc((size_t)cc->out);
    float *x = falloc(nx), *dy = falloc(ny), *yr = falloc(ny), *dxr = falloc(nx);
    float *y[2] = {falloc(ny), falloc(ny)}, *dx[2] = {falloc(nx), falloc(nx)};
    float *dwr = falloc(nw), *dbr = falloc((size_t)cc->out);
    float *w1[3] = {falloc(nw), falloc(nw), falloc(nw)};
    float *b1[3] = {falloc((size_t)cc->out), falloc((size_t)cc->out), falloc((size_t)cc->out)};

    /* PyTorch's initialisation, the same on both layers (same seed and layer id) */
    {
        CHECK_OK(rpu_conv_get_weights(L[0], w0, has_bias ? b0 : NULL, RPU_READ_EXACT));
        CHECK_OK(rpu_conv_get_weights(L[1], wg, has_bias ? bg : NULL, RPU_READ_EXACT));
        check_bits(wg, w0, nw, "initial weights of both layers", label);
        double bound = 1.0 / sqrt((double)(cc->in / cc->groups) * K);
        double m = max_abs(w0, nw), mb = has_bias ? max_abs(b0, (size_t)cc->out) : 0;
        CHECK(m <= bound * (1 + 1e-6) && m >= 0.5 * bound && mb <= bound * (1 + 1e-6),
              "%s: initial max|w| %g, max|b| %g, want within U(-%g, %g) and max|w| >= half", label,
              m, mb, bound, bound);
        check_replicated(MPI_COMM_WORLD, w0, nw, "initial weights", label);
    }

    tl_fill_uniform(w, (int)nw, -0.5f, 0.5f, seed, 1);
    tl_fill_uniform(b, cc->out, -0.5f, 0.5f, seed, 2);
    tl_fill_uniform(x, (int)nx, -1, 1, seed, 3);
    tl_fill_uniform(dy, (int)ny, -1, 1, seed, 4);
    for (int v = 0; v < 3; ++v)
        CHECK_OK(rpu_conv_set_weights(L[v], w, has_bias ? b : NULL));
    CHECK_OK(rpu_conv_get_weights(L[0], wg, has_bias ? bg : NULL, RPU_READ_EXACT));
    check_bits(wg, w, nw, "get_weights after set_weights", label);
    if (has_bias) check_bits(bg, b, (size_t)cc->out, "bias after set_weights", label);

    /* forward */
    ref_conv_forward(&p, x, n, cc->size, w, has_bias ? b : NULL, yr);
    for (int v = 0; v < 2; ++v)
        CHECK_OK(rpu_conv_forward(L[v], x, n, cc->size, y[v]));
    check_close(y[0], yr, ny, RTOL, "forward vs nested loops", label);
    check_bits(y[1], y[0], ny, "forward use_indexed true vs false", label);
    check_replicated(MPI_COMM_WORLD, y[0], ny, "forward output", label);
    CHECK_OK(rpu_conv_forward(L[2], x, n, cc->size, yr));

    /* backward */
    ref_conv_backward(&p, dy, n, cc->size, w, dxr);
    for (int v = 0; v < 2; ++v)
        CHECK_OK(rpu_conv_backward(L[v], dy, dx[v]));
    check_close(dx[0], dxr, nx, RTOL, "input gradient vs nested loops", label);
    check_bits(dx[1], dx[0], nx, "input gradient use_indexed true vs false", label);
    check_replicated(MPI_COMM_WORLD, dx[0], nx, "input gradient", label);
    CHECK_OK(rpu_conv_backward(L[2], dy, NULL));

    /* gradients (rpu_conv_get_grad): PyTorch's dW and db, the same bits on every rank and
     * for both patch paths; per owned tile (rpu_conv_get_tile_grad, scales 1 here) the
     * tile's block of dW, with db in the analog bias column of input split 0 */
    ref_conv_weight_grad(&p, x, dy, n, cc->size, dwr, dbr);
    CHECK_OK(rpu_conv_get_grad(L[0], wg, has_bias ? bg : NULL));
    check_close(wg, dwr, nw, RTOL, "weight gradient (get_grad) vs nested loops", label);
    if (has_bias) {
        check_close(bg, dbr, (size_t)cc->out, RTOL, "bias gradient (get_grad)", label);
        /* the rule of layer.c: dy's float values summed in double over (image, position)
         * in that order, rounded once (a float sum would differ; with these data the
         * double sums are exact, so the order itself does not show) */
        const int Lo = ref_conv_out_positions(&p, cc->size);
        float *want = falloc((size_t)cc->out);
        for (int o = 0; o < cc->out; ++o) {
            double acc = 0;
            for (int i = 0; i < n; ++i)
                for (int q = 0; q < Lo; ++q)
                    acc += dy[((size_t)i * cc->out + o) * Lo + q];
            want[o] = (float)acc;
        }
        check_bits(bg, want, (size_t)cc->out, "bias gradient = double sum rounded once", label);
        free(want);
    }
    check_replicated(MPI_COMM_WORLD, wg, nw, "weight gradient", label);
    {
        float *wg1 = falloc(nw), *bg1 = falloc((size_t)cc->out);
        CHECK_OK(rpu_conv_get_grad(L[1], wg1, has_bias ? bg1 : NULL));
        check_bits(wg1, wg, nw, "weight gradient use_indexed true vs false", label);
        CHECK_OK(rpu_conv_get_grad(L[2], wg1, has_bias ? bg1 : NULL));
        check_bits(wg1, wg, nw, "weight gradient after backward(dx = NULL)", label);
        if (has_bias) {
            CHECK_OK(rpu_conv_get_grad(L[2], NULL, bg1)); /* bias only: local */
            check_bits(bg1, bg, (size_t)cc->out, "bias gradient alone", label);
        }
        free(wg1), free(bg1);
        const rpu_tile_grid *g = rpu_conv_grid(L[0]);
        const int Kc = (cc->in / cc->groups) * K;
        for (int t = 0; t < g->n_tiles; ++t) {
            const rpu_tile_slot *ts = &g->tiles[t];
            if (!rpu_conv_tile(L[0], t)) {
                CHECK_STATUS(rpu_conv_get_tile_grad(L[0], t, wg), RPU_ERR_ARG);
                continue;
            }
            float *tg = falloc((size_t)ts->rows * ts->cols),
                  *tr = falloc((size_t)ts->rows * ts->cols);
            for (int r = 0; r < ts->rows; ++r) {
                const int o = ts->group * g->out_per_group + ts->out_ch0 + r;
                memcpy(tr + (size_t)r * ts->cols, dwr + (size_t)o * Kc + (size_t)ts->in_ch0 * K,
                       sizeof(float) * (size_t)ts->in_ch * K);
                if (g->analog_bias && ts->in_split == 0)
                    tr[(size_t)r * ts->cols + ts->cols - 1] = dbr[o];
            }
            CHECK_OK(rpu_conv_get_tile_grad(L[0], t, tg));
            char what[64];
            snprintf(what, sizeof what, "tile %d gradient (get_tile_grad)", t);
            check_close(tg, tr, (size_t)ts->rows * ts->cols, RTOL, what, label);
            free(tg), free(tr);
        }
    }

    /* update: W_new = W - lr dW, an analog bias b_new = b - lr db; the digital bias is left
     * to the caller's optimizer */
    for (int v = 0; v < 3; ++v) {
        CHECK_OK(rpu_conv_update(L[v], lr));
        CHECK_OK(rpu_conv_get_weights(L[v], w1[v], has_bias ? b1[v] : NULL, RPU_READ_EXACT));
    }
    check_bits(w1[1], w1[0], nw, "updated weights use_indexed true vs false", label);
    check_bits(w1[2], w1[def_indexed ? 1 : 0], nw, "updated weights after backward(dx = NULL)",
               label);
    check_replicated(MPI_COMM_WORLD, w1[0], nw, "updated weights", label);
    for (size_t q = 0; q < nw; ++q)
        wg[q] = (w[q] - w1[0][q]) / lr;
    check_close(wg, dwr, nw, RTOL, "weight gradient (W - W_new) / lr vs nested loops", label);
    if (cc->bias == 2) {
        for (int o = 0; o < cc->out; ++o)
            bg[o] = (b[o] - b1[0][o]) / lr;
        check_close(bg, dbr, (size_t)cc->out, RTOL, "analog bias gradient (b - b_new) / lr", label);
        check_bits(b1[1], b1[0], (size_t)cc->out, "updated bias use_indexed true vs false", label);
        check_bits(b1[2], b1[def_indexed ? 1 : 0], (size_t)cc->out,
                   "updated bias after backward(dx = NULL)", label);
    } else if (cc->bias == 1) {
        check_bits(b1[0], b, (size_t)cc->out, "digital bias not changed by update", label);
    }

    /* eval mode: the same forward (floating point has no noise) */
    rpu_conv_set_training(L[0], false);
    CHECK_OK(rpu_conv_forward(L[0], x, n, cc->size, y[1]));
    ref_conv_forward(&p, x, n, cc->size, w1[0], has_bias ? b1[0] : NULL, yr);
    check_close(y[1], yr, ny, RTOL, "eval-mode forward with the updated weights", label);

    free(w), free(b), free(wg), free(bg), free(w0), free(b0), free(x), free(dy), free(yr),
        free(dxr), free(dwr), free(dbr);
    for (int v = 0; v < 2; ++v)
        free(y[v]), free(dx[v]);
    for (int v = 0; v < 3; ++v)
        free(w1[v]), free(b1[v]);
done:
    for (int v = 0; v < 3; ++v)
        rpu_conv_destroy(&L[v]);
    CHECK(!L[0] && !L[1] && !L[2], "%s: destroy sets NULL", label);
}

static void test_fp_conv(void) {
    static const conv_case cases[] = {
        /* 1d */
        {"1d stride 2 pad 1 dil 2, 1 channel per tile",
         1,
         3,
         4,
         1,
         {3},
         {2},
         {1},
         {2},
         1,
         3,
         3,
         2,
         {11}},
        {"1d depthwise k5 pad 2, analog bias", 1, 4, 4, 4, {5}, {1}, {2}, {1}, 2, 0, 0, 3, {9}},
        {"1d groups 2 stride 3, no bias, max_out 1",
         1,
         6,
         4,
         2,
         {2},
         {3},
         {0},
         {1},
         0,
         4,
         1,
         2,
         {13}},
        {"1d one tile (default sizes)", 1, 3, 5, 1, {3}, {1}, {1}, {1}, 1, 512, 512, 2, {7}},
        /* 2d */
        {"2d stride (2,1) pad (1,0) dil (1,2), 2 ch/tile",
         2,
         5,
         6,
         1,
         {3, 3},
         {2, 1},
         {1, 0},
         {1, 2},
         1,
         18,
         4,
         2,
         {7, 9}},
        {"2d groups 3 (depthwise x2) k (3,2), analog bias",
         2,
         3,
         6,
         3,
         {3, 2},
         {1, 1},
         {1, 1},
         {1, 1},
         2,
         6,
         1,
         2,
         {5, 6}},
        {"2d k (2,3) stride (3,2) odd input, analog bias, 1 ch/tile",
         2,
         4,
         3,
         1,
         {2, 3},
         {3, 2},
         {0, 0},
         {1, 1},
         2,
         6,
         2,
         3,
         {8, 7}},
        {"2d depthwise 3x3 pad 1 dil 2",
         2,
         4,
         4,
         4,
         {3, 3},
         {1, 1},
         {1, 1},
         {2, 2},
         1,
         9,
         1,
         2,
         {6, 7}},
        /* 3d */
        {"3d k (2,3,2) stride (1,2,1) pad (1,0,1) dil (2,1,1), 1 ch/tile",
         3,
         2,
         3,
         1,
         {2, 3, 2},
         {1, 2, 1},
         {1, 0, 1},
         {2, 1, 1},
         1,
         12,
         2,
         2,
         {5, 6, 5}},
        {"3d depthwise k3 stride 2 pad 1, analog bias",
         3,
         2,
         2,
         2,
         {3, 3, 3},
         {2, 2, 2},
         {1, 1, 1},
         {1, 1, 1},
         2,
         0,
         0,
         2,
         {5, 5, 4}},
        {"3d groups 2 k (1,2,2) dil (1,2,1), no bias",
         3,
         4,
         6,
         2,
         {1, 2, 2},
         {1, 1, 2},
         {0, 1, 0},
         {1, 2, 1},
         0,
         4,
         2,
         2,
         {3, 5, 5}},
        /* 11 output channels: the bias sums of a block of 8 and of the 3 left over */
        {"2d 3x3 pad 1, 11 outputs, digital bias",
         2,
         3,
         11,
         1,
         {3, 3},
         {1, 1},
         {1, 1},
         {1, 1},
         1,
         0,
         0,
         3,
         {5, 6}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
        fp_conv_case(&cases[i], 1000 + (uint64_t)i);
}

/* Per-tile weight scaling (spec §7): weight_scaling_omega 0.6, column-wise. Each tile
 * stores its sub-block [W | b (analog bias, input split 0)] divided row by row by
 * alpha = max|row| / omega, so the raw tile weights have row maxima omega and the mapping
 * scales are the sub-block row maxima / omega; the layer's logical weights, forward,
 * input gradient and SGD step stay those of the unscaled layer (update divides d by the
 * scales). 2d conv 6 -> 5, 3x3, groups 1, max 18/2: 3 x 3 tiles; seed 1500/1501. */
static void fp_weight_scaling_case(bool analog) {
    const char *label = analog ? "weight scaling omega 0.6 columnwise, analog bias"
                               : "weight scaling omega 0.6 columnwise, digital bias";
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.mapping.max_input_size = 18;
    c.mapping.max_output_size = 2;
    c.mapping.weight_scaling_omega = 0.6f;
    c.mapping.weight_scaling_columnwise = true;
    const uint64_t seed = analog ? 1501 : 1500;
    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, 6, 5, 3);
    p.bias = analog ? RPU_BIAS_ANALOG : RPU_BIAS_DIGITAL;
    p.padding[0] = 1;
    p.stride[1] = 2;
    p.seed = seed;
    const int n = 2, size[2] = {5, 7}, K = 9, in = 6, out = 5;
    const size_t nw = (size_t)out * in * K, nx = (size_t)n * ref_conv_in_elems(&p, size),
                 ny = (size_t)n * ref_conv_out_elems(&p, size);
    const float lr = 0.25f;
    rpu_conv *l = NULL;
    CHECK_OK(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &l));
    if (!l) return;
    float *w = falloc(nw), *b = falloc(out), *w1 = falloc(nw), *b1 = falloc(out);
    float *x = falloc(nx), *dy = falloc(ny), *y = falloc(ny), *yr = falloc(ny), *dx = falloc(nx),
          *dxr = falloc(nx), *dwr = falloc(nw), *dbr = falloc(out);
    tl_fill_uniform(w, (int)nw, -0.5f, 0.5f, seed, 1);
    for (size_t q = 0; q < nw; q += 7)
        w[q] *= 3; /* rows of different ranges */
    tl_fill_uniform(b, out, -2, 2, seed, 2);
    tl_fill_uniform(x, (int)nx, -1, 1, seed, 3);
    tl_fill_uniform(dy, (int)ny, -1, 1, seed, 4);
    CHECK_OK(rpu_conv_set_weights(l, w, b));
    CHECK_OK(rpu_conv_get_weights(l, w1, b1, RPU_READ_EXACT));
    check_close(w1, w, nw, 1e-6, "get_weights after set_weights (scaled back)", label);
    check_close(b1, b, out, 1e-6, "bias after set_weights", label);

    /* owned tiles: raw row maxima omega, scales = sub-block row maxima / omega */
    const rpu_tile_grid *g = rpu_conv_grid(l);
    int bad = 0, owned = 0;
    for (int t = 0; g && t < g->n_tiles; ++t) {
        rpu_tile *tile = rpu_conv_tile(l, t);
        if (!tile) continue;
        ++owned;
        const rpu_tile_slot *s = &g->tiles[t];
        float *raw = falloc((size_t)s->rows * s->cols), *sc = falloc((size_t)s->rows);
        CHECK_OK(rpu_tile_get_weights(tile, raw, RPU_WEIGHTS_STORED));
        CHECK_OK(rpu_tile_get_mapping_scales(tile, sc));
        for (int r = 0; r < s->rows; ++r) {
            const int o = s->out_ch0 + r;
            double m = max_abs(w + ((size_t)o * in + s->in_ch0) * K, (size_t)s->in_ch * K);
            if (analog && s->in_split == 0) m = fmax(m, fabs((double)b[o]));
            double want_scale = m / 0.6, got_raw = max_abs(raw + (size_t)r * s->cols, s->cols);
            if (fabs(sc[r] - want_scale) > 1e-6 * want_scale || fabs(got_raw - 0.6) > 1e-6) {
                if (!bad++)
                    CHECK(0, "%s: tile %d row %d: scale %.9g want %.9g; raw row max %.9g want 0.6",
                          label, t, r, (double)sc[r], want_scale, got_raw);
            }
        }
        free(raw), free(sc);
    }
    CHECK(bad == 0,
          "%s: per-tile column-wise scales from each tile's own sub-block (%d owned "
          "tiles, %d bad rows)",
          label, owned, bad);

    CHECK_OK(rpu_conv_forward(l, x, n, size, y));
    ref_conv_forward(&p, x, n, size, w, b, yr);
    check_close(y, yr, ny, RTOL, "forward vs nested loops", label);
    CHECK_OK(rpu_conv_backward(l, dy, dx));
    ref_conv_backward(&p, dy, n, size, w, dxr);
    check_close(dx, dxr, nx, RTOL, "input gradient vs nested loops", label);
    ref_conv_weight_grad(&p, x, dy, n, size, dwr, dbr);
    /* get_grad: the logical gradient, whatever the scales; get_tile_grad: the tile's block
     * in stored units, row r divided by the tile's scale of row r */
    CHECK_OK(rpu_conv_get_grad(l, w1, b1));
    check_close(w1, dwr, nw, RTOL, "weight gradient (get_grad) vs nested loops", label);
    check_close(b1, dbr, out, RTOL, "bias gradient (get_grad)", label);
    for (int t = 0; g && t < g->n_tiles; ++t) {
        rpu_tile *tile = rpu_conv_tile(l, t);
        if (!tile) continue;
        const rpu_tile_slot *ts = &g->tiles[t];
        float *tg = falloc((size_t)ts->rows * ts->cols), *tr = falloc((size_t)ts->rows * ts->cols),
              *sc = falloc((size_t)ts->rows);
        CHECK_OK(rpu_tile_get_mapping_scales(tile, sc));
        for (int r = 0; r < ts->rows; ++r) {
            const int o = ts->out_ch0 + r;
            for (int j = 0; j < ts->in_ch * K; ++j)
                tr[(size_t)r * ts->cols + j] = dwr[((size_t)o * in + ts->in_ch0) * K + j] / sc[r];
            if (analog && ts->in_split == 0)
                tr[(size_t)r * ts->cols + ts->cols - 1] = dbr[o] / sc[r];
        }
        CHECK_OK(rpu_conv_get_tile_grad(l, t, tg));
        char what[64];
        snprintf(what, sizeof what, "tile %d gradient in stored units (dW / scale)", t);
        check_close(tg, tr, (size_t)ts->rows * ts->cols, RTOL, what, label);
        free(tg), free(tr), free(sc);
    }
    CHECK_OK(rpu_conv_update(l, lr));
    CHECK_OK(rpu_conv_get_weights(l, w1, b1, RPU_READ_EXACT));
    for (size_t q = 0; q < nw; ++q)
        w1[q] = (w[q] - w1[q]) / lr;
    check_close(w1, dwr, nw, RTOL, "weight gradient (W - W_new) / lr vs nested loops", label);
    if (analog) {
        for (int o = 0; o < out; ++o)
            b1[o] = (b[o] - b1[o]) / lr;
        check_close(b1, dbr, out, RTOL, "analog bias gradient (b - b_new) / lr", label);
    } else {
        check_bits(b1, b, (size_t)out, "digital bias not changed by update", label);
    }
    free(w), free(b), free(w1), free(b1), free(x), free(dy), free(y), free(yr), free(dx), free(dxr),
        free(dwr), free(dbr);
    rpu_conv_destroy(&l);
}

/* Linear layer = 1d convolution with kernel 1 on inputs of length 1 ([n, in, 1] has the
 * layout of [n, in]), so the reference is ref_conv's. */
static void fp_linear_case(const char *label, int in, int out, int bias, int max_in, int max_out,
                           int n, uint64_t seed) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.mapping.max_input_size = max_in;
    c.mapping.max_output_size = max_out;
    rpu_linear_params lp;
    rpu_linear_params_default(&lp, in, out);
    lp.bias = bias_kind(bias);
    lp.layer_id = 4;
    lp.seed = seed;
    rpu_conv_params cp;
    rpu_conv_params_default(&cp, 1, in, out, 1);
    const int one = 1;
    const size_t nw = (size_t)in * out;
    const float lr = 0.25f;
    rpu_linear *L = NULL;
    CHECK_OK(rpu_linear_create(MPI_COMM_WORLD, &lp, &c, &L));
    if (!L) return;
    check_grid(rpu_linear_as_conv(L), in, out, 1, 1, bias == 2, max_in, max_out, label);
    float *w = falloc(nw), *b = falloc((size_t)out), *x = falloc((size_t)n * in),
          *dy = falloc((size_t)n * out), *y = falloc((size_t)n * out),
          *yr = falloc((size_t)n * out), *dx = falloc((size_t)n * in),
          *dxr = falloc((size_t)n * in), *dwr = falloc(nw), *dbr = falloc((size_t)out),
          *w1 = falloc(nw), *b1 = falloc((size_t)out);
    tl_fill_uniform(w, (int)nw, -0.5f, 0.5f, seed, 1);
    tl_fill_uniform(b, out, -0.5f, 0.5f, seed, 2);
    tl_fill_uniform(x, n * in, -1, 1, seed, 3);
    tl_fill_uniform(dy, n * out, -1, 1, seed, 4);
    CHECK_OK(rpu_linear_set_weights(L, w, bias ? b : NULL));
    CHECK_OK(rpu_linear_get_weights(L, w1, bias ? b1 : NULL, RPU_READ_EXACT));
    check_bits(w1, w, nw, "get_weights after set_weights", label);
    if (bias) check_bits(b1, b, (size_t)out, "bias after set_weights", label);

    CHECK_OK(rpu_linear_forward(L, x, n, y));
    ref_conv_forward(&cp, x, n, &one, w, bias ? b : NULL, yr);
    check_close(y, yr, (size_t)n * out, RTOL, "forward vs W x + b", label);
    check_replicated(MPI_COMM_WORLD, y, (size_t)n * out, "forward output", label);
    CHECK_OK(rpu_linear_backward(L, dy, dx));
    ref_conv_backward(&cp, dy, n, &one, w, dxr);
    check_close(dx, dxr, (size_t)n * in, RTOL, "input gradient vs Wᵀ dy", label);
    ref_conv_weight_grad(&cp, x, dy, n, &one, dwr, dbr);
    CHECK_OK(rpu_linear_get_grad(L, w1, bias ? b1 : NULL));
    check_close(w1, dwr, nw, RTOL, "weight gradient (get_grad) vs dyᵀ x", label);
    if (bias) check_close(b1, dbr, (size_t)out, RTOL, "bias gradient (get_grad)", label);
    CHECK_OK(rpu_linear_update(L, lr));
    CHECK_OK(rpu_linear_get_weights(L, w1, bias ? b1 : NULL, RPU_READ_EXACT));
    for (size_t q = 0; q < nw; ++q)
        w1[q] = (w[q] - w1[q]) / lr;
    check_close(w1, dwr, nw, RTOL, "weight gradient (W - W_new) / lr vs dyᵀ x", label);
    if (bias == 2) {
        for (int o = 0; o < out; ++o)
            b1[o] = (b[o] - b1[o]) / lr;
        check_close(b1, dbr, (size_t)out, RTOL, "analog bias gradient (b - b_new) / lr", label);
    } else if (bias == 1) {
        check_bits(b1, b, (size_t)out, "digital bias not changed by update", label);
    }
    free(w), free(b), free(x), free(dy), free(y), free(yr), free(dx), free(dxr), free(dwr),
        free(dbr), free(w1), free(b1);
    rpu_linear_destroy(&L);
    CHECK(L == NULL, "%s: destroy sets NULL", label);
}

static void test_fp_linear(void) {
    fp_linear_case("linear 13->7 max 5/3, digital bias", 13, 7, 1, 5, 3, 4, 2001);
    fp_linear_case("linear 13->7 max 5/3, analog bias", 13, 7, 2, 5, 3, 4, 2002);
    fp_linear_case("linear 9->4 one tile, no bias", 9, 4, 0, 0, 0, 3, 2003);
    fp_linear_case("linear 6->5 max 1/1 (30 tiles), digital bias", 6, 5, 1, 1, 1, 2, 2004);
    /* one input split, 150 output splits: at 2 ranks each holds 75 tiles, whose outputs go
     * to the owners of their samples as floats (more channel ranges per rank than the
     * delivery once merged into one span, sending another rank's channels) */
    fp_linear_case("linear 5->300 max 8/2 (150 tiles), digital bias", 5, 300, 1, 8, 2, 3, 2005);
}

/* from_digital / get_weights round trip (PyTorch layout) and the NULL-bias rule: a bias
 * array exactly when the layer has a bias, for from_digital, set_weights, get_weights,
 * get_grad and the digital-bias accessors. */
static void test_digital_round_trip(void) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.mapping.max_input_size = 18;
    c.mapping.max_output_size = 2;
    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, 4, 6, 3);
    p.groups = 2;
    const size_t nw = 6 * 2 * 9;
    float w[6 * 2 * 9], b[6], w2[6 * 2 * 9], b2[6];
    tl_fill_uniform(w, (int)nw, -1, 1, 3001, 1);
    tl_fill_uniform(b, 6, -1, 1, 3001, 2);
    rpu_conv *l = NULL;
    CHECK_OK(rpu_conv_from_digital(MPI_COMM_WORLD, &p, &c, w, b, &l));
    if (l) {
        CHECK_OK(rpu_conv_get_weights(l, w2, b2, RPU_READ_EXACT));
        check_bits(w2, w, nw, "get_weights(from_digital(w)) weights", "conv round trip");
        check_bits(b2, b, 6, "get_weights(from_digital(b)) bias", "conv round trip");
        CHECK_OK(
            rpu_conv_get_weights(l, w2, b2, RPU_READ_REALISTIC)); /* accuracy: test_readout_layer */
        /* the rule, digital bias: NULL is an error everywhere, the accessors work */
        CHECK_ERR(rpu_conv_get_weights(l, w2, NULL, RPU_READ_EXACT), RPU_ERR_ARG, "bias|null");
        CHECK_ERR(rpu_conv_set_weights(l, w, NULL), RPU_ERR_ARG, "bias|null");
        CHECK_ERR(rpu_conv_get_weights(l, w2, b2, (rpu_weight_read)7), RPU_ERR_ARG, "read");
        for (int o = 0; o < 6; ++o)
            b2[o] = (float)o;
        CHECK_OK(rpu_conv_set_digital_bias(l, b2));
        float b3[6];
        CHECK_OK(rpu_conv_get_digital_bias(l, b3));
        check_bits(b3, b2, 6, "set_digital_bias / get_digital_bias", "conv round trip");
        CHECK_ERR(rpu_conv_get_grad(l, NULL, b3), RPU_ERR_ARG, "backward");
        rpu_conv_destroy(&l);
    }
    CHECK_ERR(rpu_conv_from_digital(MPI_COMM_WORLD, &p, &c, w, NULL, &l), RPU_ERR_ARG, "bias");
    CHECK(l == NULL, "from_digital with a missing bias leaves no layer");
    p.bias = RPU_BIAS_NONE;
    CHECK_ERR(rpu_conv_from_digital(MPI_COMM_WORLD, &p, &c, w, b, &l), RPU_ERR_ARG, "no bias");
    CHECK(l == NULL, "from_digital with a bias for a layer without one leaves no layer");
    CHECK_OK(rpu_conv_from_digital(MPI_COMM_WORLD, &p, &c, w, NULL, &l));
    if (l) {
        CHECK_OK(rpu_conv_get_weights(l, w2, NULL, RPU_READ_EXACT));
        check_bits(w2, w, nw, "no-bias layer: weights", "conv round trip");
        CHECK_ERR(rpu_conv_get_weights(l, w2, b2, RPU_READ_EXACT), RPU_ERR_ARG, "no bias");
        CHECK_ERR(rpu_conv_get_digital_bias(l, b2), RPU_ERR_ARG, "digital bias");
        rpu_conv_destroy(&l);
    }
    p.bias = RPU_BIAS_ANALOG; /* an analog bias follows the same rule; no digital accessors */
    CHECK_OK(rpu_conv_from_digital(MPI_COMM_WORLD, &p, &c, w, b, &l));
    if (l) {
        CHECK_OK(rpu_conv_get_weights(l, w2, b2, RPU_READ_EXACT));
        check_bits(b2, b, 6, "analog bias round trip", "conv round trip");
        CHECK_ERR(rpu_conv_get_weights(l, w2, NULL, RPU_READ_EXACT), RPU_ERR_ARG, "bias");
        CHECK_ERR(rpu_conv_set_digital_bias(l, b2), RPU_ERR_ARG, "analog");
        rpu_conv_destroy(&l);
    }
    rpu_linear_params lp;
    rpu_linear_params_default(&lp, 7, 3);
    lp.layer_id = 1;
    c.mapping.max_input_size = 3;
    rpu_linear *ll = NULL;
    CHECK_OK(rpu_linear_from_digital(MPI_COMM_WORLD, &lp, &c, w, b, &ll));
    if (ll) {
        CHECK_OK(rpu_linear_get_weights(ll, w2, b2, RPU_READ_EXACT));
        check_bits(w2, w, 21, "get_weights(from_digital(w)) weights", "linear round trip");
        check_bits(b2, b, 3, "get_weights(from_digital(b)) bias", "linear round trip");
        CHECK_OK(rpu_linear_get_weights(ll, w2, b2,
                                        RPU_READ_REALISTIC)); /* accuracy: test_readout_layer */
        rpu_linear_destroy(&ll);
    }
    CHECK_ERR(rpu_linear_from_digital(MPI_COMM_WORLD, &lp, &c, w, NULL, &ll), RPU_ERR_ARG, "bias");
    CHECK(ll == NULL, "linear from_digital with a missing bias leaves no layer");
}

/* ------------------------------------------------------------------ 2. vs one tile */

/* Rows [n*L, cols] <-> [n, cols, L] */
static void to_rows(const float *img, int n, int ch, int L, float *rows) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < ch; ++c)
            for (int q = 0; q < L; ++q)
                rows[((size_t)i * L + q) * ch + c] = img[((size_t)i * ch + c) * L + q];
}
static void from_rows(const float *rows, int n, int ch, int L, float *img) {
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < ch; ++c)
            for (int q = 0; q < L; ++q)
                img[((size_t)i * ch + c) * L + q] = rows[((size_t)i * L + q) * ch + c];
}

static rpu_tile *unsplit_tile(const rpu_config *c, int out, int in, const float *w) {
    rpu_tile_params tp = {.out_size = out,
                          .in_size = in,
                          .seed = 777,
                          .layer_id = 99,
                          .tile_id = 0,
                          .mac = RPU_MAC_BLAS};
    rpu_tile *t = NULL;
    CHECK_OK(rpu_tile_create(&tp, c, &t));
    if (t) CHECK_OK(rpu_tile_set_weights(t, w, RPU_WEIGHTS_STORED));
    return t;
}

/* conv2d 5 -> 6, 3x3, padding 1, no bias; max_in 18 -> input splits [2, 2, 1] channels,
 * max_out 4 -> [3, 3]: 6 tiles. */
static rpu_conv_params vs_params(uint64_t seed) {
    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, 5, 6, 3);
    p.padding[0] = p.padding[1] = 1;
    p.bias = RPU_BIAS_NONE;
    p.layer_id = 7;
    p.seed = seed;
    return p;
}

static void test_perfect_vs_unsplit(const char *device) {
    char label[96];
    snprintf(label, sizeof label, "perfect IO, %s: mapped vs one tile", device);
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    CHECK_OK(rpu_config_set(&c, "device.type", device));
    c.device.w_max_dtod = c.device.w_min_dtod = 0; /* bounds +-0.6; init |w| <= 1/sqrt(45) */
    c.forward.is_perfect = c.backward.is_perfect = true;
    c.mapping.max_input_size = 18;
    c.mapping.max_output_size = 4;
    rpu_conv_params p = vs_params(21);
    const int n = 2, size[2] = {6, 5}, out = 6, in = 5, K = 9;
    const int L = ref_conv_out_positions(&p, size), Lin = size[0] * size[1];
    const size_t nw = (size_t)out * in * K;
    rpu_conv *l = NULL;
    CHECK_OK(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &l));
    if (!l) return;
    float *w = falloc(nw);
    CHECK_OK(rpu_conv_get_weights(l, w, NULL, RPU_READ_EXACT));
    rpu_tile *t = unsplit_tile(&c, out, in * K, w);
    float *x = falloc((size_t)n * in * Lin), *cols = falloc((size_t)n * L * in * K);
    float *y = falloc((size_t)n * out * L), *yt = falloc((size_t)n * out * L),
          *rows = falloc((size_t)n * L * out), *yr = falloc((size_t)n * out * L);
    float *dy = falloc((size_t)n * out * L), *dx = falloc((size_t)n * in * Lin),
          *dxt = falloc((size_t)n * in * Lin), *dcols = falloc((size_t)n * L * in * K);
    tl_fill_uniform(x, n * in * Lin, -1, 1, 22, 1);
    tl_fill_uniform(dy, n * out * L, -1, 1, 22, 2);
    CHECK_OK(rpu_conv_forward(l, x, n, size, y));
    ref_im2col(&p, x, n, size, cols);
    if (t) {
        CHECK_OK(rpu_tile_forward(t, cols, n * L, rows, RPU_MODE_TRAIN));
        from_rows(rows, n, out, L, yt);
        check_close(y, yt, (size_t)n * out * L, RTOL, "forward", label);
    }
    ref_conv_forward(&p, x, n, size, w, NULL, yr);
    check_close(y, yr, (size_t)n * out * L, RTOL, "forward vs nested loops", label);
    CHECK_OK(rpu_conv_backward(l, dy, dx));
    if (t) {
        to_rows(dy, n, out, L, rows);
        CHECK_OK(rpu_tile_backward(t, rows, n * L, dcols));
        ref_col2im(&p, dcols, n, size, dxt);
        check_close(dx, dxt, (size_t)n * in * Lin, RTOL, "input gradient", label);
    }
    free(w), free(x), free(cols), free(y), free(yt), free(rows), free(yr), free(dy), free(dx),
        free(dxt), free(dcols);
    rpu_tile_destroy(&t);
    rpu_conv_destroy(&l);
}

/* Default IO with quantization off (inp_res = out_res = 0), ideal device, no bias: each
 * tile output is W_ij x_i + 0.06 nm_i xi with nm_i = max|x_i| over the tile's chunk of the
 * patch (abs_max noise management; no output reaches the bound 12, so bound management
 * does not rescale). Mapped: var = 0.06^2 sum_i nm_i^2; unsplit: 0.06^2 max|x|^2. The
 * backward likewise with nm_j = max|dy| over each output split j, summed over the splits
 * and over the patch taps col2im adds into one dx element. Over R = 2000 copies of one
 * image (seed 24) the mean of each element must match (a) the other's mean within
 * 5 sqrt((var_m + var_u) / R) and (b) the exact value within 5 sqrt(var_m / R) (both
 * + 1e-5 (1 + |exact|)); the pooled sample variance over all elements must be within
 * [0.9, 1.1] of the model (about 20 standard errors). */
static void compare_noisy(const char *label, const float *sm, const float *su, const float *ex,
                          const double *var_m, const double *var_u, int R, size_t m) {
    /* sm, su: R samples of m elements each; ex: exact values */
    size_t bad_mu = 0, bad_me = 0, first_mu = 0, first_me = 0;
    double pooled_m = 0, pooled_u = 0, model_m = 0, model_u = 0;
    double fm_mu = 0, fu_mu = 0, fsd_mu = 0, fm_me = 0, fsd_me = 0;
    for (size_t e = 0; e < m; ++e) {
        double am = 0, au = 0;
        for (int r = 0; r < R; ++r)
            am += sm[(size_t)r * m + e], au += su[(size_t)r * m + e];
        am /= R, au /= R;
        double vm = 0, vu = 0;
        for (int r = 0; r < R; ++r) {
            double a = sm[(size_t)r * m + e] - am, bb = su[(size_t)r * m + e] - au;
            vm += a * a, vu += bb * bb;
        }
        pooled_m += vm / (R - 1), pooled_u += vu / (R - 1);
        model_m += var_m[e], model_u += var_u[e];
        double slack = RTOL * (1 + fabs((double)ex[e]));
        double sd_mu = sqrt((var_m[e] + var_u[e]) / R), sd_me = sqrt(var_m[e] / R);
        if (!(fabs(am - au) <= 5 * sd_mu + slack)) {
            if (!bad_mu++) first_mu = e, fm_mu = am, fu_mu = au, fsd_mu = sd_mu;
        }
        if (!(fabs(am - ex[e]) <= 5 * sd_me + slack)) {
            if (!bad_me++) first_me = e, fm_me = am, fsd_me = sd_me;
        }
    }
    CHECK(bad_mu == 0,
          "%s: %zu of %zu mean(mapped) - mean(unsplit) beyond 5 sd; first [%zu] %.6g vs %.6g "
          "(sd %.3g)",
          label, bad_mu, m, first_mu, fm_mu, fu_mu, fsd_mu);
    CHECK(bad_me == 0,
          "%s: %zu of %zu mean(mapped) - exact beyond 5 sd; first [%zu] %.6g vs "
          "%.6g (sd %.3g)",
          label, bad_me, m, first_me, fm_me, bad_me ? (double)ex[first_me] : 0.0, fsd_me);
    double rm = pooled_m / model_m, ru = pooled_u / model_u;
    CHECK(rm >= 0.9 && rm <= 1.1,
          "%s: mapped sample variance / per-tile noise model = %.4f, want [0.9, 1.1]", label, rm);
    CHECK(ru >= 0.9 && ru <= 1.1,
          "%s: unsplit sample variance / noise model = %.4f, want [0.9, 1.1]", label, ru);
}

static void test_noisy_means(void) {
    const char *label = "default IO noise: mapped vs one tile";
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    CHECK_OK(rpu_config_set(&c, "device.type", "ideal"));
    c.forward.inp_res = c.forward.out_res = 0;
    c.backward.inp_res = c.backward.out_res = 0;
    c.mapping.max_input_size = 18;
    c.mapping.max_output_size = 4;
    const double sf = c.forward.out_noise, sb = c.backward.out_noise;
    rpu_conv_params p = vs_params(23);
    const int R = 2000, size[2] = {6, 5}, out = 6, in = 5, K = 9;
    const int L = ref_conv_out_positions(&p, size), Lin = size[0] * size[1], W = in * K;
    const size_t nw = (size_t)out * W, my = (size_t)out * L, mx = (size_t)in * Lin;
    rpu_conv *l = NULL;
    CHECK_OK(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &l));
    if (!l) return;
    const rpu_tile_grid *g = rpu_conv_grid(l);
    float *w = falloc(nw);
    CHECK_OK(rpu_conv_get_weights(l, w, NULL, RPU_READ_EXACT));
    rpu_tile *t = unsplit_tile(&c, out, W, w);
    float *x1 = falloc(mx), *dy1 = falloc(my), *x = falloc(R * mx), *dy = falloc(R * my);
    float *cols1 = falloc((size_t)L * W), *cols = falloc((size_t)R * L * W);
    float *ym = falloc(R * my), *yu = falloc(R * my), *rows = falloc((size_t)R * L * out);
    float *dxm = falloc(R * mx), *dxu = falloc(R * mx), *dcols = falloc((size_t)R * L * W);
    float *ex = falloc(my), *exb = falloc(mx);
    double *vm = calloc(my + mx, sizeof(double)), *vu = calloc(my + mx, sizeof(double));
    float *vcol_m = falloc((size_t)L * W), *vcol_u = falloc((size_t)L * W), *vtmp = falloc(mx);
    tl_fill_uniform(x1, (int)mx, -1, 1, 24, 1);
    tl_fill_uniform(dy1, (int)my, -1, 1, 24, 2);
    for (int r = 0; r < R; ++r) {
        memcpy(x + (size_t)r * mx, x1, mx * sizeof(float));
        memcpy(dy + (size_t)r * my, dy1, my * sizeof(float));
    }
    ref_im2col(&p, x1, 1, size, cols1);
    ref_im2col(&p, x, R, size, cols);
    ref_conv_forward(&p, x1, 1, size, w, NULL, ex);
    ref_conv_backward(&p, dy1, 1, size, w, exb);

    /* forward noise model per output (o, q) */
    for (int q = 0; q < L; ++q) {
        const float *pc = cols1 + (size_t)q * W;
        double whole = max_abs(pc, (size_t)W), sum = 0;
        for (int i = 0; g && i < g->n_in; ++i) {
            const rpu_tile_slot *s = &g->tiles[i * g->n_out];
            double m = max_abs(pc + (size_t)s->in_ch0 * K, (size_t)s->in_ch * K);
            sum += m * m;
        }
        for (int o = 0; o < out; ++o) {
            vm[(size_t)o * L + q] = sf * sf * sum;
            vu[(size_t)o * L + q] = sf * sf * whole * whole;
        }
    }
    /* backward: per patch q the noise of every column has variance sb^2 sum_j nm_j^2 */
    for (int q = 0; q < L; ++q) {
        double whole = 0, sum = 0;
        for (int o = 0; o < out; ++o)
            whole = fmax(whole, fabs((double)dy1[(size_t)o * L + q]));
        for (int j = 0; g && j < g->n_out; ++j) {
            const rpu_tile_slot *s = &g->tiles[j];
            double m = 0;
            for (int o = s->out_ch0; o < s->out_ch0 + s->out_ch; ++o)
                m = fmax(m, fabs((double)dy1[(size_t)o * L + q]));
            sum += m * m;
        }
        for (int cidx = 0; cidx < W; ++cidx) {
            vcol_m[(size_t)q * W + cidx] = (float)(sb * sb * sum);
            vcol_u[(size_t)q * W + cidx] = (float)(sb * sb * whole * whole);
        }
    }
    /* padding taps read nothing: their noise does not reach dx (col2im drops them) */
    ref_col2im(&p, vcol_m, 1, size, vtmp);
    for (size_t e = 0; e < mx; ++e)
        vm[my + e] = vtmp[e];
    ref_col2im(&p, vcol_u, 1, size, vtmp);
    for (size_t e = 0; e < mx; ++e)
        vu[my + e] = vtmp[e];

    CHECK_OK(rpu_conv_forward(l, x, R, size, ym));
    CHECK_OK(rpu_conv_backward(l, dy, dxm));
    if (t) {
        CHECK_OK(rpu_tile_forward(t, cols, R * L, rows, RPU_MODE_TRAIN));
        from_rows(rows, R, out, L, yu);
        to_rows(dy, R, out, L, rows);
        CHECK_OK(rpu_tile_backward(t, rows, R * L, dcols));
        ref_col2im(&p, dcols, R, size, dxu);
        char lb[128];
        snprintf(lb, sizeof lb, "%s, forward", label);
        compare_noisy(lb, ym, yu, ex, vm, vu, R, my);
        snprintf(lb, sizeof lb, "%s, backward", label);
        compare_noisy(lb, dxm, dxu, exb, vm + my, vu + my, R, mx);
    }
    free(w), free(x1), free(dy1), free(x), free(dy), free(cols1), free(cols), free(ym), free(yu),
        free(rows), free(dxm), free(dxu), free(dcols), free(ex), free(exb), free(vm), free(vu),
        free(vcol_m), free(vcol_u), free(vtmp);
    rpu_tile_destroy(&t);
    rpu_conv_destroy(&l);
}

/* ------------------------------------------------------------------ 3. rank invariance */

#define STEPS 3

typedef struct {
    const char *name;
    size_t len;
} section;

/* conv2d 6 -> 10, 3x3, padding 1, digital bias, max_in 18 (2 channels) -> 3 input splits,
 * max_out 4 -> [4, 3, 3]: 9 tiles; input 2 x 6 x 7 x 8; kind single defaults. Results:
 * initial weights, then per step y and dx, then final weights and bias. */
static int conv_scenario_sections(section *s) {
    const int n = 2, in = 6, out = 10, Lin = 7 * 8, L = 7 * 8;
    int k = 0;
    s[k++] = (section){"initial weights", (size_t)out * in * 9};
    for (int st = 0; st < STEPS; ++st) {
        s[k++] = (section){"forward output", (size_t)n * out * L};
        s[k++] = (section){"input gradient", (size_t)n * in * Lin};
        s[k++] = (section){"weight gradient (get_grad)", (size_t)out * in * 9};
    }
    s[k++] = (section){"weights after the updates", (size_t)out * in * 9};
    s[k++] = (section){"bias after the updates", (size_t)out};
    return k;
}

/* Gathers every rank's samples of v [n, per] on every rank: rank q of P holds samples
 * floor(n q / P) to floor(n (q + 1) / P) (the rule layer.h gives for rpu_batch_part,
 * checked here too). */
static void gather_parts(MPI_Comm comm, float *v, int n, size_t per) {
    int P, r;
    MPI_Comm_size(comm, &P);
    MPI_Comm_rank(comm, &r);
    int *counts = malloc(sizeof(int) * 2 * (size_t)P), *displs = counts + P;
    for (int q = 0; q < P; ++q) {
        const int s0 = (int)((long)n * q / P), s1 = (int)((long)n * (q + 1) / P);
        int b0 = -1, b1 = -1;
        rpu_batch_part(n, q, P, &b0, &b1);
        CHECK(b0 == s0 && b1 == s1, "rpu_batch_part(%d, %d, %d) = [%d, %d), want [%d, %d)", n, q, P,
              b0, b1, s0, s1);
        counts[q] = (int)((size_t)(s1 - s0) * per);
        displs[q] = (int)((size_t)s0 * per);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v, counts, displs, MPI_FLOAT, comm);
    free(counts);
}

/* Steps through a layer that reads only its own samples (rpu_conv_own_samples), on more
 * than one rank; the rank-invariance checks want some. */
static int own_steps;

/* A copy of v [n, per] with every sample but this rank's (rpu_batch_part) set to NaN. */
static float *poison_others(MPI_Comm comm, const float *v, int n, size_t per) {
    int P, r, s0, s1;
    MPI_Comm_size(comm, &P);
    MPI_Comm_rank(comm, &r);
    rpu_batch_part(n, r, P, &s0, &s1);
    float *c = falloc((size_t)n * per);
    for (size_t q = 0; q < (size_t)n * per; ++q)
        c[q] = q >= (size_t)s0 * per && q < (size_t)s1 * per ? v[q] : NAN;
    return c;
}

/* One training step of a scenario: forward (output to o), backward (input gradient
 * after it), get_grad (weight gradient after that; bias gradient to b), update with lr 0.1.
 * With parts, through rpu_conv_forward_part / rpu_conv_backward_part (each rank gets its
 * own samples, gathered here), else the calls that give every rank the whole result. A
 * layer that reads only its own samples gets NaN in every other sample of x and dy (in
 * both kinds of step): any read of them would show. Returns o advanced past the three. */
/* Whole-tile updates (rpu_conv_update_begin with owners): 0 off (rpu_conv_update); else
 * each step's tiles are updated whole by holder (whole_step + t) mod holders, which must
 * give the bits of the size-1 run, and an owner that is no holder is refused by every
 * rank (begin and end). 2: the owners are also announced before each forward
 * (rpu_conv_set_update_owners), so that the other holders keep only their samples; steps
 * by parts then give each rank only its own samples of x and dy (the others NaN) and fetch
 * the rest (rpu_conv_fetch_input, rpu_conv_fetch_output_grad); other owners are refused by
 * every rank, and get_tile_grad by the holders that kept a part. */
static int whole_updates, whole_step;

/* The owners of this step's whole-tile update, into own [n_tiles]. */
static void step_owners(const rpu_conv *l, int *own) {
    const rpu_tile_grid *g = rpu_conv_grid(l);
    for (int t = 0; t < g->n_tiles; ++t)
        own[t] = (whole_step + t) % g->tiles[t].holders;
}

static void update_step(rpu_conv *l) {
    if (!whole_updates) {
        CHECK_OK(rpu_conv_update(l, 0.1f));
        return;
    }
    const rpu_tile_grid *g = rpu_conv_grid(l);
    int *own = (int *)malloc(sizeof(int) * (size_t)g->n_tiles);
    if (!own) return;
    for (int t = 0; t < g->n_tiles; ++t)
        own[t] = g->tiles[t].holders;
    rpu_status s = rpu_conv_update_begin(l, 0.1f, own); /* (no holder: refused, nothing done) */
    CHECK(s == RPU_ERR_ARG && msg_has("holders"), "update_begin with owner = holders -> %s (%s)",
          rpu_status_name(s), rpu_last_error());
    s = rpu_conv_update_end(l, own, s);
    CHECK(s == RPU_ERR_ARG, "update_end after a refused begin -> %s", rpu_status_name(s));
    if (whole_updates == 2 && g->tiles[0].holders > 1) {
        /* the announced owners kept every sample: any other split is refused everywhere */
        step_owners(l, own);
        own[0] = (own[0] + 1) % g->tiles[0].holders;
        s = rpu_conv_update_begin(l, 0.1f, own);
        CHECK(s == RPU_ERR_ARG && msg_has("announced"),
              "update_begin with an owner other than the announced one -> %s (%s)",
              rpu_status_name(s), rpu_last_error());
        CHECK(rpu_conv_update_end(l, own, s) == RPU_ERR_ARG, "update_end after it: refused");
        s = rpu_conv_update(l, 0.1f);
        CHECK(s == RPU_ERR_ARG && msg_has("announced"),
              "rpu_conv_update (rows) after announced owners -> %s (%s)", rpu_status_name(s),
              rpu_last_error());
    }
    step_owners(l, own);
    ++whole_step;
    s = rpu_conv_update_begin(l, 0.1f, own);
    CHECK_OK(rpu_conv_update_end(l, own, s));
    free(own);
}

/* whole_updates 2: announces this step's owners (before the forward), or NULL. */
static void announce_owners(rpu_conv *l) {
    if (whole_updates != 2) {
        CHECK_OK(rpu_conv_set_update_owners(l, NULL));
        return;
    }
    const rpu_tile_grid *g = rpu_conv_grid(l);
    int *own = (int *)malloc(sizeof(int) * (size_t)g->n_tiles);
    if (!own) return;
    own[0] = -2;
    CHECK(rpu_conv_set_update_owners(l, own) == RPU_ERR_ARG && msg_has("tile 0"),
          "set_update_owners with owner -2: refused, naming the tile");
    step_owners(l, own);
    CHECK_OK(rpu_conv_set_update_owners(l, own));
    free(own);
}

/* whole_updates 2: a held tile whose announced owner is another holder has kept only this
 * rank's samples: rpu_conv_get_tile_grad refuses it; the owner gets it. */
static void check_tile_grads(const rpu_conv *l, int P) {
    const rpu_tile_grid *g = rpu_conv_grid(l);
    for (int t = 0; whole_updates == 2 && t < g->n_tiles; ++t) {
        const rpu_tile_slot *ts = &g->tiles[t];
        const int m = rpu_tile_holder_index(ts, tl_rank(), P);
        if (m < 0 || ts->holders < 2) continue;
        float *gr = falloc((size_t)ts->rows * ts->cols);
        const rpu_status s = rpu_conv_get_tile_grad(l, t, gr);
        const bool other = m != (whole_step + t) % ts->holders; /* (pulsed: an owner) */
        CHECK(other ? s == RPU_ERR_ARG && msg_has("kept only") : s == RPU_OK,
              "get_tile_grad of tile %d on holder %d -> %s (%s)", t, m, rpu_status_name(s),
              s == RPU_OK ? "" : rpu_last_error());
        free(gr);
    }
}

static float *scenario_step(rpu_conv *l, const float *x, const float *dy, int n, const int *size,
                            float *o, size_t nx, size_t ny, size_t nw, float *b, int parts) {
    bool own = false;
    int P;
    MPI_Comm_size(rpu_conv_comm(l), &P);
    CHECK_OK(rpu_conv_own_samples(rpu_conv_get_params(l), rpu_conv_config(l), size, P, &own));
    float *xo = NULL, *dyo = NULL;
    const bool fetched = parts && whole_updates == 2 && !own && P > 1;
    if ((own || fetched) && P > 1) {
        x = xo = poison_others(rpu_conv_comm(l), x, n, nx / (size_t)n);
        dy = dyo = poison_others(rpu_conv_comm(l), dy, n, ny / (size_t)n);
        own_steps += own;
    }
    announce_owners(l);
    if (parts) {
        for (size_t q = 0; q < ny + nx; ++q)
            o[q] = NAN; /* the other ranks' samples must come from the gathers */
        if (fetched) CHECK_OK(rpu_conv_fetch_input(l, xo, n, size));
        CHECK_OK(rpu_conv_forward_part(l, x, n, size, o));
        gather_parts(rpu_conv_comm(l), o, n, ny / (size_t)n);
        o += ny;
        if (fetched) CHECK_OK(rpu_conv_fetch_output_grad(l, dyo));
        CHECK_OK(rpu_conv_backward_part(l, dy, o));
        gather_parts(rpu_conv_comm(l), o, n, nx / (size_t)n);
        o += nx;
    } else {
        CHECK_OK(rpu_conv_forward(l, x, n, size, o));
        o += ny;
        CHECK_OK(rpu_conv_backward(l, dy, o));
        o += nx;
    }
    CHECK_OK(rpu_conv_get_grad(l, o, b));
    o += nw;
    check_tile_grads(l, P);
    update_step(l);
    free(xo), free(dyo);
    return o;
}

static void conv_scenario(MPI_Comm comm, float *res) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.mapping.max_input_size = 18;
    c.mapping.max_output_size = 4;
    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, 6, 10, 3);
    p.padding[0] = p.padding[1] = 1;
    p.layer_id = 5;
    p.seed = 31;
    const int n = 2, size[2] = {7, 8};
    const size_t nx = (size_t)n * 6 * 56, ny = (size_t)n * 10 * 56, nw = 10 * 6 * 9;
    rpu_conv *l = NULL;
    CHECK_OK(rpu_conv_create(comm, &p, &c, &l));
    if (!l) return;
    float *x = falloc(nx), *dy = falloc(ny), b[10];
    float *o = res;
    CHECK_OK(rpu_conv_get_weights(l, o, b, RPU_READ_EXACT));
    o += nw;
    for (int st = 0; st < STEPS; ++st) {
        tl_fill_uniform(x, (int)nx, -1, 1, 32 + (uint64_t)st, 1);
        tl_fill_uniform(dy, (int)ny, -0.5f, 0.5f, 32 + (uint64_t)st, 2);
        o = scenario_step(l, x, dy, n, size, o, nx, ny, nw, b, st & 1);
    }
    CHECK_OK(rpu_conv_get_weights(l, o, o + nw, RPU_READ_EXACT));
    free(x), free(dy);
    rpu_conv_destroy(&l);
}

/* linear 13 -> 7 with an analog bias column, max 5/3 -> [5,4,4] x [3,2,2]: 9 tiles; n 5. */
static int linear_scenario_sections(section *s) {
    const int n = 5, in = 13, out = 7;
    int k = 0;
    s[k++] = (section){"initial weights", (size_t)out * in};
    for (int st = 0; st < STEPS; ++st) {
        s[k++] = (section){"forward output", (size_t)n * out};
        s[k++] = (section){"input gradient", (size_t)n * in};
        s[k++] = (section){"weight and bias gradient (get_grad)", (size_t)out * in + out};
    }
    s[k++] = (section){"weights after the updates", (size_t)out * in};
    s[k++] = (section){"bias after the updates", (size_t)out};
    return k;
}

static void linear_scenario(MPI_Comm comm, float *res) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.mapping.max_input_size = 5;
    c.mapping.max_output_size = 3;
    rpu_linear_params lp;
    rpu_linear_params_default(&lp, 13, 7);
    lp.bias = RPU_BIAS_ANALOG;
    lp.layer_id = 6;
    lp.seed = 41;
    const int n = 5;
    const size_t nx = (size_t)n * 13, ny = (size_t)n * 7, nw = 13 * 7;
    rpu_linear *l = NULL;
    CHECK_OK(rpu_linear_create(comm, &lp, &c, &l));
    if (!l) return;
    float *x = falloc(nx), *dy = falloc(ny), b[7];
    float *o = res;
    CHECK_OK(rpu_linear_get_weights(l, o, b, RPU_READ_EXACT));
    o += nw;
    for (int st = 0; st < STEPS; ++st) {
        tl_fill_uniform(x, (int)nx, -1, 1, 42 + (uint64_t)st, 1);
        tl_fill_uniform(dy, (int)ny, -0.5f, 0.5f, 42 + (uint64_t)st, 2);
        CHECK_OK(rpu_linear_forward(l, x, n, o));
        o += ny;
        CHECK_OK(rpu_linear_backward(l, dy, o));
        o += nx;
        CHECK_OK(rpu_linear_get_grad(l, o, o + nw));
        o += nw + 7;
        CHECK_OK(rpu_linear_update(l, 0.1f));
    }
    CHECK_OK(rpu_linear_get_weights(l, o, o + nw, RPU_READ_EXACT));
    free(x), free(dy);
    rpu_linear_destroy(&l);
}

/* conv1d 4 -> 6, groups 2, k 3, dilation 2, padding 2, analog bias, use_indexed false,
 * max_in 3 (1 channel), max_out 2 -> per group 2 x [2, 1]: 8 tiles; input 3 x 4 x 15. */
static int conv1d_scenario_sections(section *s) {
    const int n = 3, in = 4, out = 6, L = 15;
    int k = 0;
    s[k++] = (section){"initial weights", (size_t)out * 2 * 3};
    for (int st = 0; st < STEPS; ++st) {
        s[k++] = (section){"forward output", (size_t)n * out * L};
        s[k++] = (section){"input gradient", (size_t)n * in * L};
        s[k++] = (section){"weight and bias gradient (get_grad)", (size_t)out * 2 * 3 + out};
    }
    s[k++] = (section){"weights after the updates", (size_t)out * 2 * 3};
    s[k++] = (section){"bias after the updates", (size_t)out};
    return k;
}

static void conv1d_scenario(MPI_Comm comm, float *res) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    c.mapping.max_input_size = 3;
    c.mapping.max_output_size = 2;
    rpu_conv_params p;
    rpu_conv_params_default(&p, 1, 4, 6, 3);
    p.bias = RPU_BIAS_ANALOG;
    p.groups = 2;
    p.dilation[0] = 2;
    p.padding[0] = 2;
    p.use_indexed = false;
    p.layer_id = 8;
    p.seed = 51;
    const int n = 3, size[1] = {15};
    const size_t nx = (size_t)n * 4 * 15, ny = (size_t)n * 6 * 15, nw = 6 * 2 * 3;
    rpu_conv *l = NULL;
    CHECK_OK(rpu_conv_create(comm, &p, &c, &l));
    if (!l) return;
    float *x = falloc(nx), *dy = falloc(ny), b[6];
    float *o = res;
    CHECK_OK(rpu_conv_get_weights(l, o, b, RPU_READ_EXACT));
    o += nw;
    for (int st = 0; st < STEPS; ++st) {
        tl_fill_uniform(x, (int)nx, -1, 1, 52 + (uint64_t)st, 1);
        tl_fill_uniform(dy, (int)ny, -0.5f, 0.5f, 52 + (uint64_t)st, 2);
        CHECK_OK(rpu_conv_forward(l, x, n, size, o));
        o += ny;
        CHECK_OK(rpu_conv_backward(l, dy, o));
        o += nx;
        CHECK_OK(rpu_conv_get_grad(l, o, o + nw));
        o += nw + 6;
        CHECK_OK(rpu_conv_update(l, 0.1f));
    }
    CHECK_OK(rpu_conv_get_weights(l, o, o + nw, RPU_READ_EXACT));
    free(x), free(dy);
    rpu_conv_destroy(&l);
}

/* Few tiles, more ranks: holders split the batch (rpu_tile_slot.holders). conv2d 16 -> 16,
 * 3x3, padding 1, kind single, on 5 samples of 6 x 11 (66 patches: one sample per MAC
 * block, 5 blocks), one tile (case 0, 1) or two input splits (case 2, max_input_size 72:
 * the int64 reduction), forward.out_bound 1 so that bound management repeats vectors and
 * the backward masks saturated outputs; sample 1 is all zeros (patches skipped by noise
 * management), sample 3 large. Case 1: forward noise management average_abs_max (a
 * running value over all vectors). Case 3: linear 300 -> 10, one tile, 150 vectors (3 MAC
 * blocks of 64). Cases 4-6 sum the exact update over the holders' sample blocks: 4 is
 * case 0 as floating_point (one sample per block: a layer that reads only its own samples,
 * NaN elsewhere), 5 case 3 as floating_point with 40 outputs, 6 case 3 as inference
 * (hardware-aware training: the exact update, then the post-update steps with weight
 * noise on every holder); 7 is case 0 with a floating_point device (a summed update) and
 * the forward's average_abs_max (a running value over every vector: each holder's
 * forward reads every sample's patches, so the layer does not read only its own). Cases 8
 * and 9 are case 4 on four tiles (max_input_size 72, max_output_size 8: two input and two
 * output splits), which every rank holds (rpu_hold_everywhere: data parallel, the int64 sum
 * of the input splits made where the sample is computed); case 9 with stride 2 (3 x 6 = 18
 * output positions: four samples per MAC block, so the holders' shares are blocks and the
 * layer does not read only its own samples). Products of 16 /
 * 10 outputs over 144 / 300 inputs: OpenBLAS's sgemm gives other bits for a vector when the batch
 * is cut elsewhere than at the blocks, which these cases detect. */
static int holders_case;

static int holders_sections(section *s) {
    const bool lin = holders_case == 3 || holders_case == 5 || holders_case == 6;
    const size_t n = lin ? 150 : 5, in = lin ? 300 : 16, L = lin ? 1 : 66;
    const size_t Lo = holders_case == 9 ? 18 : L;
    const size_t out = holders_case == 5 ? 40 : lin ? 10 : 16;
    const size_t nw = out * in * (lin ? 1 : 9);
    int k = 0;
    s[k++] = (section){"initial weights", nw};
    for (int st = 0; st < STEPS; ++st) {
        s[k++] = (section){"forward output", n * out * Lo};
        s[k++] = (section){"input gradient", n * in * L};
        s[k++] = (section){"weight gradient (get_grad)", nw};
    }
    s[k++] = (section){"weights after the updates", nw};
    s[k++] = (section){"bias after the updates", out};
    return k;
}

static void holders_scenario(MPI_Comm comm, float *res) {
    whole_step = 0;
    rpu_config c;
    const bool fp = holders_case == 4 || holders_case == 5 || holders_case >= 8;
    rpu_config_default(&c, fp                  ? RPU_KIND_FLOATING_POINT
                           : holders_case == 6 ? RPU_KIND_INFERENCE
                                               : RPU_KIND_SINGLE);
    if (holders_case == 7) { /* a summed update with a forward that reads every vector */
        CHECK_OK(rpu_config_set(&c, "device.type", "floating_point"));
        CHECK_OK(rpu_config_set(&c, "forward.noise_management", "average_abs_max"));
    }
    if (holders_case == 6) {
        CHECK_OK(rpu_config_set(&c, "modifier.type", "add_normal"));
        CHECK_OK(rpu_config_set(&c, "modifier.std_dev", "0.05"));
    }
    if (holders_case < 4) c.forward.out_bound = 1.0f;
    if (holders_case == 1) c.forward.noise_management = RPU_NM_AVERAGE_ABS_MAX;
    if (holders_case == 2 || holders_case >= 8) c.mapping.max_input_size = 72;
    if (holders_case >= 8) c.mapping.max_output_size = 8;
    const bool lin = holders_case == 3 || holders_case == 5 || holders_case == 6;
    const int n = lin ? 150 : 5, in = lin ? 300 : 16, L = lin ? 1 : 66;
    const int Lo = holders_case == 9 ? 18 : L;
    const int out = holders_case == 5 ? 40 : lin ? 10 : 16;
    const int size[2] = {6, 11};
    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, in, out, 3);
    p.padding[0] = p.padding[1] = 1;
    if (holders_case == 9) p.stride[0] = p.stride[1] = 2;
    p.layer_id = 9;
    p.seed = 61;
    rpu_linear_params lp;
    rpu_linear_params_default(&lp, in, out);
    lp.layer_id = 9;
    lp.seed = 61;
    const size_t nx = (size_t)n * in * L, ny = (size_t)n * out * Lo;
    const size_t nw = (size_t)out * in * (lin ? 1 : 9);
    rpu_conv *l = NULL;
    rpu_linear *ll = NULL;
    if (lin) {
        CHECK_OK(rpu_linear_create(comm, &lp, &c, &ll));
        if (!ll) return;
        l = rpu_linear_as_conv(ll);
    } else {
        CHECK_OK(rpu_conv_create(comm, &p, &c, &l));
        if (!l) return;
    }
    const rpu_tile_grid *g = rpu_conv_grid(l);
    int P;
    MPI_Comm_size(comm, &P);
    const int tiles = holders_case >= 8 ? 4 : holders_case == 2 ? 2 : 1;
    CHECK(g->n_tiles == tiles && (P <= g->n_tiles || g->tiles[0].holders > 1),
          "holders case %d: %d tiles, tile 0 has %d holders on %d ranks", holders_case, g->n_tiles,
          g->tiles[0].holders, P);
    for (int t = 0; holders_case >= 8 && t < g->n_tiles; ++t) /* data parallel */
        CHECK(g->tiles[t].holders == P, "holders case %d: tile %d has %d holders on %d ranks",
              holders_case, t, g->tiles[t].holders, P);
    float *x = falloc(nx), *dy = falloc(ny), *b = falloc((size_t)out);
    float *o = res;
    CHECK_OK(rpu_conv_get_weights(l, o, b, RPU_READ_EXACT));
    o += nw;
    for (int st = 0; st < STEPS; ++st) {
        tl_fill_uniform(x, (int)nx, -1, 1, 62 + (uint64_t)st, 1);
        tl_fill_uniform(dy, (int)ny, -0.5f, 0.5f, 62 + (uint64_t)st, 2);
        const size_t per = nx / (size_t)n;
        memset(x + per, 0, sizeof(float) * per); /* sample (vector) 1: zeros */
        for (size_t q = 3 * per; q < 4 * per; ++q)
            x[q] *= 8.0f; /* sample 3: saturates */
        o = scenario_step(l, x, dy, n, lin ? NULL : size, o, nx, ny, nw, b, st & 1);
    }
    CHECK_OK(rpu_conv_get_weights(l, o, o + nw, RPU_READ_EXACT));
    free(x), free(dy), free(b);
    if (lin)
        rpu_linear_destroy(&ll);
    else
        rpu_conv_destroy(&l);
}

/* Runs the scenario on the sub-communicator of ranks 0..s-1 for s = 1..P; the size-1
 * results of rank 0 are broadcast and every participating rank compares its own results
 * bit for bit, section by section. */
static void rank_invariance(const char *label, int (*sections)(section *),
                            void (*scenario)(MPI_Comm, float *)) {
    section sec[2 + 3 * STEPS + 2];
    int ns = sections(sec);
    size_t len = 0;
    for (int i = 0; i < ns; ++i)
        len += sec[i].len;
    float *ref = falloc(len), *res = falloc(len);
    const int P = tl_size(), rank = tl_rank();
    for (int s = 1; s <= P; ++s) {
        MPI_Comm sub;
        MPI_Comm_split(MPI_COMM_WORLD, rank < s ? 1 : MPI_UNDEFINED, rank, &sub);
        if (sub != MPI_COMM_NULL) {
            memset(res, 0, len * sizeof(float));
            scenario(sub, res);
            MPI_Comm_free(&sub);
        }
        if (s == 1) {
            if (rank == 0) memcpy(ref, res, len * sizeof(float));
            MPI_Bcast(ref, (int)len, MPI_FLOAT, 0, MPI_COMM_WORLD);
            /* the scenario does something: updates change weights */
            size_t off_final = len - sec[ns - 1].len - sec[ns - 2].len;
            size_t changed = count_diff_bits(ref, ref + off_final, sec[0].len);
            CHECK(changed > sec[0].len / 10,
                  "%s: the updates changed %zu of %zu weights (want > 10 %%)", label, changed,
                  sec[0].len);
            double m = max_abs(ref, len);
            CHECK(m > 0 && m == m, "%s: results non-trivial (max %g)", label, m);
        } else if (rank < s) {
            size_t off = 0;
            for (int i = 0; i < ns; ++i) {
                size_t bad = count_diff_bits(res + off, ref + off, sec[i].len);
                CHECK(bad == 0, "%s: %d ranks vs 1: section %d (%s): %zu of %zu values differ",
                      label, s, i, sec[i].name, bad, sec[i].len);
                off += sec[i].len;
            }
        }
    }
    free(ref), free(res);
}

/* ------------------------------------------------------------------ 3b. exact reduction */

/* Where several tiles add into one output element, the layer sums their partial results in
 * 64-bit fixed point (scale 2^S from the global maximum): for partials down to ~2^-38 of
 * that maximum the sum is exact, and the result is the correctly rounded float of the
 * exact sum. Checked bit for bit against that definition: floating-point tiles with the
 * exact MAC (each partial is float(sum in double in input order), computed here the same
 * way per tile), inputs / output gradients whose second split is scaled by 1e-6, so the
 * partial results of one element differ by ~1e6 in magnitude, and the reference sum of an
 * element's partials in long double (exact for these few floats), rounded once. Forward
 * (input splits) and backward (output splits, after each tile's col2im in float, whose
 * order is reproduced) of a linear layer and a conv1d, no bias, on every rank count. Seeds
 * 7100, 7101. */
static float ref_partial_sum(const float *p, int n) {
    long double s = 0;
    for (int i = 0; i < n; ++i)
        s += p[i];
    return (float)s;
}

static void exact_linear_case(void) {
    const char *label = "exact reduction, linear 8 -> 6, 2 x 2 tiles";
    enum { IN = 8, OUT = 6, N = 5, SPLIT_IN = 4, SPLIT_OUT = 3 };
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.mapping.max_input_size = SPLIT_IN;
    c.mapping.max_output_size = SPLIT_OUT;
    rpu_linear_params lp;
    rpu_linear_params_default(&lp, IN, OUT);
    lp.bias = RPU_BIAS_NONE;
    lp.mac = RPU_MAC_EXACT;
    lp.layer_id = 9;
    float w[OUT * IN], x[N * IN], dy[N * OUT], y[N * OUT], dx[N * IN];
    tl_fill_uniform(w, OUT * IN, -1, 1, 7100, 1);
    tl_fill_uniform(x, N * IN, -1, 1, 7100, 2);
    tl_fill_uniform(dy, N * OUT, -1, 1, 7100, 3);
    for (int n = 0; n < N; ++n) {
        for (int f = SPLIT_IN; f < IN; ++f)
            x[n * IN + f] *= 1e-6f;
        for (int o = SPLIT_OUT; o < OUT; ++o)
            dy[n * OUT + o] *= 1e-6f;
    }
    rpu_linear *l = NULL;
    CHECK_OK(rpu_linear_from_digital(MPI_COMM_WORLD, &lp, &c, w, NULL, &l));
    if (!l) return;
    CHECK(rpu_conv_grid(rpu_linear_as_conv(l))->n_in == 2 &&
              rpu_conv_grid(rpu_linear_as_conv(l))->n_out == 2,
          "%s: 2 input and 2 output splits", label);
    CHECK_OK(rpu_linear_forward(l, x, N, y));
    CHECK_OK(rpu_linear_backward(l, dy, dx));
    size_t bad = 0, wide = 0;
    for (int n = 0; n < N; ++n)
        for (int o = 0; o < OUT; ++o) {
            float part[2];
            for (int i = 0; i < 2; ++i) {
                double acc = 0;
                for (int f = i * SPLIT_IN; f < (i + 1) * SPLIT_IN; ++f)
                    acc += (double)w[o * IN + f] * (double)x[n * IN + f];
                part[i] = (float)acc;
            }
            wide += fabsf(part[0]) >= 1e5f * fabsf(part[1]);
            const float want = ref_partial_sum(part, 2);
            if (memcmp(&want, &y[n * OUT + o], sizeof want)) {
                if (!bad++)
                    CHECK(0,
                          "%s: forward (%d, %d) = %.9g, correctly rounded sum %.9g of %.9g + %.9g",
                          label, n, o, (double)y[n * OUT + o], (double)want, (double)part[0],
                          (double)part[1]);
            }
        }
    CHECK(bad == 0, "%s: forward: %zu of %d outputs differ from the correctly rounded sum", label,
          bad, N * OUT);
    CHECK(wide >= N * OUT / 2, "%s: partial results differ by >= 1e5 in %zu of %d outputs", label,
          wide, N * OUT);
    bad = wide = 0;
    for (int n = 0; n < N; ++n)
        for (int f = 0; f < IN; ++f) {
            float part[2];
            for (int j = 0; j < 2; ++j) {
                double acc = 0;
                for (int o = j * SPLIT_OUT; o < (j + 1) * SPLIT_OUT; ++o)
                    acc += (double)w[o * IN + f] * (double)dy[n * OUT + o];
                part[j] = (float)acc;
            }
            wide += fabsf(part[0]) >= 1e5f * fabsf(part[1]);
            const float want = ref_partial_sum(part, 2);
            if (memcmp(&want, &dx[n * IN + f], sizeof want)) {
                if (!bad++)
                    CHECK(0, "%s: backward (%d, %d) = %.9g, correctly rounded sum %.9g", label, n,
                          f, (double)dx[n * IN + f], (double)want);
            }
        }
    CHECK(bad == 0, "%s: backward: %zu of %d input gradients differ from the correctly rounded sum",
          label, bad, N * IN);
    CHECK(wide >= N * IN / 2, "%s: backward partials differ by >= 1e5 in %zu of %d", label, wide,
          N * IN);
    rpu_linear_destroy(&l);
}

static void exact_conv1d_case(void) {
    const char *label = "exact reduction, conv1d 4 -> 4, k 3, 2 x 2 tiles";
    enum { C = 4, O = 4, K = 3, L = 7, N = 3, PAD = 1, CS = 2, OS = 2 };
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.mapping.max_input_size = CS * K; /* 2 channels per tile */
    c.mapping.max_output_size = OS;
    rpu_conv_params p;
    rpu_conv_params_default(&p, 1, C, O, K);
    p.padding[0] = PAD;
    p.bias = RPU_BIAS_NONE;
    p.mac = RPU_MAC_EXACT;
    p.layer_id = 10;
    const int size[1] = {L};
    float w[O * C * K], x[N * C * L], dy[N * O * L], y[N * O * L], dx[N * C * L];
    tl_fill_uniform(w, O * C * K, -1, 1, 7101, 1);
    tl_fill_uniform(x, N * C * L, -1, 1, 7101, 2);
    tl_fill_uniform(dy, N * O * L, -1, 1, 7101, 3);
    for (int n = 0; n < N; ++n)
        for (int l = 0; l < L; ++l) {
            for (int ch = CS; ch < C; ++ch)
                x[(n * C + ch) * L + l] *= 1e-6f;
            for (int o = OS; o < O; ++o)
                dy[(n * O + o) * L + l] *= 1e-6f;
        }
    rpu_conv *cv = NULL;
    CHECK_OK(rpu_conv_from_digital(MPI_COMM_WORLD, &p, &c, w, NULL, &cv));
    if (!cv) return;
    CHECK(rpu_conv_grid(cv)->n_in == 2 && rpu_conv_grid(cv)->n_out == 2,
          "%s: 2 input and 2 output splits", label);
    CHECK_OK(rpu_conv_forward(cv, x, N, size, y));
    CHECK_OK(rpu_conv_backward(cv, dy, dx));
    size_t bad = 0;
    for (int n = 0; n < N; ++n)
        for (int o = 0; o < O; ++o)
            for (int q = 0; q < L; ++q) { /* output position q (stride 1, same size) */
                float part[2];
                for (int i = 0; i < 2; ++i) {
                    double acc = 0; /* the tile's columns: channel-major, then kernel */
                    for (int ch = i * CS; ch < (i + 1) * CS; ++ch)
                        for (int k = 0; k < K; ++k) {
                            const int pos = q + k - PAD;
                            const float xv = pos >= 0 && pos < L ? x[(n * C + ch) * L + pos] : 0.0f;
                            acc += (double)w[(o * C + ch) * K + k] * (double)xv;
                        }
                    part[i] = (float)acc;
                }
                const float want = ref_partial_sum(part, 2);
                bad += memcmp(&want, &y[(n * O + o) * L + q], sizeof want) != 0;
            }
    CHECK(bad == 0, "%s: forward: %zu of %d outputs differ from the correctly rounded sum", label,
          bad, N * O * L);
    bad = 0;
    for (int n = 0; n < N; ++n)
        for (int ch = 0; ch < C; ++ch)
            for (int pos = 0; pos < L; ++pos) {
                float part[2];
                for (int j = 0; j < 2; ++j) {
                    /* the tile's col2im in float: output positions in order, each adding its
                     * input-gradient value float(sum over the split's outputs in double) */
                    float img = 0.0f;
                    for (int q = 0; q < L; ++q) {
                        const int k = pos - q + PAD;
                        if (k < 0 || k >= K) continue;
                        double acc = 0;
                        for (int o = j * OS; o < (j + 1) * OS; ++o)
                            acc +=
                                (double)w[(o * C + ch) * K + k] * (double)dy[(n * O + o) * L + q];
                        img += (float)acc;
                    }
                    part[j] = img;
                }
                const float want = ref_partial_sum(part, 2);
                bad += memcmp(&want, &dx[(n * C + ch) * L + pos], sizeof want) != 0;
            }
    CHECK(bad == 0, "%s: backward: %zu of %d input gradients differ from the correctly rounded sum",
          label, bad, N * C * L);
    rpu_conv_destroy(&cv);
}

/* One rounding, not two: partials 1, 2^-24, 2^-56 (three input splits of one output) sum
 * exactly to 1 + 2^-24 + 2^-56, just above the midpoint between the floats 1 and 1 + 2^-23,
 * so the correctly rounded sum is 1 + 2^-23. Rounding the int64 sum to double first lands on
 * the midpoint (2^-56 is below half a double ulp there) and then ties to even: 1. */
static void exact_midpoint_case(void) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.mapping.max_input_size = 1;
    rpu_linear_params lp;
    rpu_linear_params_default(&lp, 3, 1);
    lp.bias = RPU_BIAS_NONE;
    lp.mac = RPU_MAC_EXACT;
    const float w[3] = {1.0f, ldexpf(1.0f, -24), ldexpf(1.0f, -56)}, x[3] = {1, 1, 1};
    float y = 0;
    rpu_linear *l = NULL;
    CHECK_OK(rpu_linear_from_digital(MPI_COMM_WORLD, &lp, &c, w, NULL, &l));
    if (!l) return;
    CHECK_OK(rpu_linear_forward(l, x, 1, &y));
    CHECK(y == 1.0f + ldexpf(1.0f, -23),
          "exact reduction: 1 + 2^-24 + 2^-56 rounds once to 1 + 2^-23, got 1 + %.3g",
          (double)(y - 1.0f));
    rpu_linear_destroy(&l);
}

static void test_exact_reduction(void) {
    exact_linear_case();
    exact_conv1d_case();
    exact_midpoint_case();
}

/* ------------------------------------------------------------------ 4. grids */

static void grid_case(const char *label, int ndim, int in, int out, int groups, const int *k,
                      int analog, int max_in, int max_out) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
    c.mapping.max_input_size = max_in;
    c.mapping.max_output_size = max_out;
    rpu_conv_params p;
    rpu_conv_params_default(&p, ndim, in, out, k[0]);
    for (int a = 0; a < ndim; ++a)
        p.kernel[a] = k[a];
    p.groups = groups;
    p.bias = analog ? RPU_BIAS_ANALOG : RPU_BIAS_DIGITAL;
    rpu_conv *l = NULL;
    CHECK_OK(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &l));
    if (!l) return;
    check_grid(l, in, out, groups, kernel_elems(&p), analog, max_in, max_out, label);
    rpu_conv_destroy(&l);
}

static void expect_splits(const rpu_conv *l, const int *ins, int nin, const int *outs, int nout,
                          const char *label) {
    const rpu_tile_grid *g = l ? rpu_conv_grid(l) : NULL;
    bool ok = g && g->n_in == nin && g->n_out == nout && g->tiles;
    for (int i = 0; ok && i < nin; ++i)
        ok = g->tiles[i * nout].in_ch == ins[i];
    for (int j = 0; ok && j < nout; ++j)
        ok = g->tiles[j].out_ch == outs[j];
    CHECK(ok, "%s: split sizes as spec §1.3 (n_in %d, n_out %d)", label, g ? g->n_in : -1,
          g ? g->n_out : -1);
}

static void test_grids(void) {
    const int k33[2] = {3, 3}, k4[1] = {4}, k222[3] = {2, 2, 2};
    /* spec §1.3 worked examples, checked literally */
    struct {
        const char *label;
        int ndim, in, out;
        const int *k;
        int max_in, max_out, nin, nout, ins[16], outs[4];
    } ex[] = {
        {"in=14 3x3 max_in 10; out=5 max_out 4",
         2,
         14,
         5,
         k33,
         10,
         4,
         14,
         2,
         {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
         {3, 2}},
        {"in=5 3x3 max_in 21; out=5 max_out 3", 2, 5, 5, k33, 21, 3, 3, 2, {2, 2, 1}, {3, 2}},
        {"in=12 k=4 (1d) max_in 10; out=13 max_out 6",
         1,
         12,
         13,
         k4,
         10,
         6,
         6,
         3,
         {2, 2, 2, 2, 2, 2},
         {5, 4, 4}},
        {"in=64 3x3 max 512", 2, 64, 16, k33, 512, 512, 2, 1, {32, 32}, {16}},
    };
    for (size_t e = 0; e < sizeof ex / sizeof ex[0]; ++e) {
        grid_case(ex[e].label, ex[e].ndim, ex[e].in, ex[e].out, 1, ex[e].k, 0, ex[e].max_in,
                  ex[e].max_out);
        rpu_config c;
        rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
        c.mapping.max_input_size = ex[e].max_in;
        c.mapping.max_output_size = ex[e].max_out;
        rpu_conv_params p;
        rpu_conv_params_default(&p, ex[e].ndim, ex[e].in, ex[e].out, ex[e].k[0]);
        rpu_conv *l = NULL;
        CHECK_OK(rpu_conv_create(MPI_COMM_WORLD, &p, &c, &l));
        expect_splits(l, ex[e].ins, ex[e].nin, ex[e].outs, ex[e].nout, ex[e].label);
        if (l) {
            const rpu_tile_grid *g = rpu_conv_grid(l);
            CHECK(g && g->tiles[0].rows == ex[e].outs[0] &&
                      g->tiles[0].cols == ex[e].ins[0] * kernel_elems(&p),
                  "%s: first tile %d x %d, want %d x %d", ex[e].label, g ? g->tiles[0].rows : -1,
                  g ? g->tiles[0].cols : -1, ex[e].outs[0], ex[e].ins[0] * kernel_elems(&p));
        }
        rpu_conv_destroy(&l);
    }
    grid_case("groups 2, 8 -> 6, 3x3, max 18/2, analog bias", 2, 8, 6, 2, k33, 1, 18, 2);
    grid_case("3d 3 -> 7, 2x2x2, max_in 17 (2 ch), no output split", 3, 3, 7, 1, k222, 0, 17, 0);
    grid_case("depthwise 2d 6 ch, 3x3, max 9/1", 2, 6, 6, 6, k33, 0, 9, 1);
    grid_case("max_in = kernel elems exactly (9)", 2, 4, 3, 1, k33, 1, 9, 0);
    /* linear: unit 1 */
    {
        rpu_config c;
        rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
        c.mapping.max_input_size = 5;
        c.mapping.max_output_size = 3;
        rpu_linear_params lp;
        rpu_linear_params_default(&lp, 13, 7);
        rpu_linear *l = NULL;
        CHECK_OK(rpu_linear_create(MPI_COMM_WORLD, &lp, &c, &l));
        if (l) {
            check_grid(rpu_linear_as_conv(l), 13, 7, 1, 1, 0, 5, 3, "linear 13 -> 7 max 5/3");
            const int ins[3] = {5, 4, 4}, outs[3] = {3, 2, 2};
            expect_splits(rpu_linear_as_conv(l), ins, 3, outs, 3, "linear 13 -> 7 max 5/3");
        }
        rpu_linear_destroy(&l);
    }
    /* get_tile_size */
    const int k232[3] = {2, 3, 4};
    struct {
        int in, groups, ndim;
        const int *k;
        int want;
    } ts[] = {{14, 1, 2, k33, 126}, {12, 1, 1, k4, 48},   {8, 2, 2, k33, 36},
              {6, 3, 3, k232, 48},  {64, 1, 2, k33, 576}, {5, 5, 1, k4, 4}};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; ++i) {
        int got = rpu_conv_tile_size(ts[i].in, ts[i].groups, ts[i].ndim, ts[i].k);
        CHECK(got == ts[i].want, "rpu_conv_tile_size(%d, %d, %d, k) = %d, want %d", ts[i].in,
              ts[i].groups, ts[i].ndim, got, ts[i].want);
    }
}

/* ------------------------------------------------------------------ 5. errors */

static void test_errors(void) {
    rpu_config c;
    rpu_config_default(&c, RPU_KIND_SINGLE);
    rpu_conv_params p;
    rpu_conv *l = NULL;
    const MPI_Comm W = MPI_COMM_WORLD;

    /* kernel larger than a tile */
    rpu_conv_params_default(&p, 2, 4, 3, 3);
    c.mapping.max_input_size = 8;
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_MODULE,
              "tile size too small to fit a single kernel: 9 > 8");
    CHECK(l == NULL, "failed create leaves the layer NULL");
    c.mapping.max_input_size = 512;
    p.padding_mode = RPU_PAD_REFLECT;
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_MODULE, "padding");
    p.padding_mode = RPU_PAD_CIRCULAR;
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_MODULE, "padding");
    /* shapes */
    rpu_conv_params_default(&p, 2, 4, 3, 3);
    p.groups = 2; /* 3 output channels */
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_ARG, "group");
    rpu_conv_params_default(&p, 2, 3, 4, 3);
    p.groups = 2; /* 3 input channels */
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_ARG, "group");
    p.groups = 0;
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_ARG, "group");
    rpu_conv_params_default(&p, 2, 4, 4, 3);
    p.ndim = 0;
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_ARG, "ndim|dim");
    p.ndim = 4;
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_ARG, "ndim|dim");
    rpu_conv_params_default(&p, 2, 4, 4, 3);
    p.kernel[1] = 0;
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_ARG, "kernel");
    rpu_conv_params_default(&p, 3, 4, 4, 3);
    p.stride[2] = 0;
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_ARG, "stride");
    rpu_conv_params_default(&p, 1, 4, 4, 3);
    p.dilation[0] = 0;
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_ARG, "dilation");
    rpu_conv_params_default(&p, 1, 4, 4, 3);
    p.padding[0] = -1;
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_ARG, "padding");
    rpu_conv_params_default(&p, 1, 0, 4, 3);
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_ARG, "channel");
    rpu_conv_params_default(&p, 1, 4, 0, 3);
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_ARG, "channel");
    /* config */
    rpu_conv_params_default(&p, 2, 4, 4, 3);
    c.forward.inp_bound = 2; /* with noise management abs_max */
    CHECK_ERR(rpu_conv_create(W, &p, &c, &l), RPU_ERR_CONFIG, "inp_bound");
    rpu_config_default(&c, RPU_KIND_SINGLE);
    /* NULL pointers */
    CHECK_ERR(rpu_conv_create(W, NULL, &c, &l), RPU_ERR_ARG, "null");
    CHECK_ERR(rpu_conv_create(W, &p, NULL, &l), RPU_ERR_ARG, "null");
    CHECK_ERR(rpu_conv_create(W, &p, &c, NULL), RPU_ERR_ARG, "null");
    CHECK(l == NULL, "no layer after the failed creates");
    rpu_conv_destroy(NULL);
    rpu_conv_destroy(&l);

    /* on a valid layer */
    CHECK_OK(rpu_conv_create(W, &p, &c, &l));
    if (l) {
        const int sz[2] = {5, 5}, small[2] = {2, 5}, zero[2] = {0, 5};
        float x[2 * 4 * 25] = {0}, y[2 * 4 * 9] = {0}, dx[2 * 4 * 25], w[4 * 4 * 9], b[4];
        int os[2];
        tl_fill_uniform(x, 2 * 4 * 25, -1, 1, 51, 1);
        CHECK_ERR(rpu_conv_backward(l, y, dx), RPU_ERR_ARG, "forward");
        CHECK_ERR(rpu_conv_forward(l, x, 0, sz, y), RPU_ERR_ARG, "batch|n =|n <|n must|size");
        CHECK_ERR(rpu_conv_forward(l, x, -1, sz, y), RPU_ERR_ARG, "batch|n =|n <|n must|size");
        CHECK_ERR(rpu_conv_forward(l, x, 1, small, y), RPU_ERR_ARG, "small|kernel|size");
        CHECK_ERR(rpu_conv_forward(l, x, 1, zero, y), RPU_ERR_ARG, "small|kernel|size");
        CHECK_ERR(rpu_conv_output_size(rpu_conv_get_params(l), small, os), RPU_ERR_ARG,
                  "small|kernel|size");
        CHECK_ERR(rpu_conv_forward(NULL, x, 1, sz, y), RPU_ERR_ARG, "null");
        CHECK_ERR(rpu_conv_forward(l, NULL, 1, sz, y), RPU_ERR_ARG, "null");
        CHECK_ERR(rpu_conv_forward(l, x, 1, NULL, y), RPU_ERR_ARG, "null");
        CHECK_ERR(rpu_conv_forward(l, x, 1, sz, NULL), RPU_ERR_ARG, "null");
        CHECK_ERR(rpu_conv_get_weights(NULL, w, b, RPU_READ_REALISTIC), RPU_ERR_ARG, "null");
        CHECK_ERR(rpu_conv_get_weights(NULL, w, b, RPU_READ_EXACT), RPU_ERR_ARG, "null");
        CHECK_ERR(rpu_conv_set_weights(NULL, w, b), RPU_ERR_ARG, "null");
        CHECK_ERR(rpu_conv_update(NULL, 0.1f), RPU_ERR_ARG, "null");
        CHECK_ERR(rpu_conv_backward(NULL, y, dx), RPU_ERR_ARG, "null");
        CHECK_OK(rpu_conv_forward(l, x, 2, sz, y));
        CHECK_ERR(rpu_conv_backward(l, NULL, dx), RPU_ERR_ARG, "null");
        CHECK_OK(rpu_conv_backward(l, y, dx)); /* still usable after the errors */
        CHECK_OK(rpu_conv_update(l, 0.1f));
        rpu_conv_destroy(&l);
    }

    /* output sizes from the parameters alone (no layer) */
    {
        rpu_conv_params q;
        rpu_conv_params_default(&q, 3, 2, 2, 3);
        q.stride[1] = 2;
        q.padding[2] = 1;
        q.dilation[0] = 2;
        const int in3[3] = {9, 9, 9};
        int o3[3] = {0, 0, 0};
        CHECK_OK(rpu_conv_output_size(&q, in3, o3));
        /* (9 - 2*2 - 1)/1 + 1 = 5; (9 - 3)/2 + 1 = 4; (9 + 2 - 3)/1 + 1 = 9 */
        CHECK(o3[0] == 5 && o3[1] == 4 && o3[2] == 9,
              "output size from params: %d %d %d, want 5 4 9", o3[0], o3[1], o3[2]);
        q.ndim = 0;
        CHECK_ERR(rpu_conv_output_size(&q, in3, o3), RPU_ERR_ARG, "ndim");
        CHECK_ERR(rpu_conv_output_size(NULL, in3, o3), RPU_ERR_ARG, "null");
    }

    /* messages name the layer (its name, else its id) and a failing tile with its key; the
     * source location is kept apart (rpu_last_error_location) and appended only in Debug
     * builds or with RPUSIM_ERROR_LOCATION set */
    {
        rpu_config_default(&c, RPU_KIND_FLOATING_POINT);
        c.mapping.max_input_size = 18;
        rpu_conv_params q;
        rpu_conv_params_default(&q, 2, 4, 4, 3); /* 2 input splits */
        snprintf(q.name, sizeof q.name, "%s", "features.conv7");
        CHECK_OK(rpu_conv_create(W, &q, &c, &l));
        if (l) {
            const int small[2] = {2, 5};
            float x[4 * 25] = {0}, y[4 * 9], w[4 * 4 * 9], b[4] = {0};
            unsetenv("RPUSIM_ERROR_LOCATION");
            CHECK_ERR(rpu_conv_forward(l, x, 1, small, y), RPU_ERR_ARG, "features.conv7");
            const char *where = rpu_last_error_location();
            CHECK(strstr(where, "layer.c:") == where && atoi(where + 8) > 0,
                  "location of the failure: '%s'", where);
            char tail[160];
            snprintf(tail, sizeof tail, " [%s]", where);
            const char *m = rpu_last_error();
            const bool has_tail =
                strlen(m) > strlen(tail) && !strcmp(m + strlen(m) - strlen(tail), tail);
#ifdef RPUSIM_TEST_DEBUG_BUILD
            CHECK(has_tail, "Debug build: the message ends in the location: %s", m);
#else
            CHECK(!has_tail && !strstr(m, "layer.c"), "no source location in the message: %s", m);
#endif
            setenv("RPUSIM_ERROR_LOCATION", "1", 1);
            CHECK_ERR(rpu_conv_forward(l, x, 1, small, y), RPU_ERR_ARG, "features.conv7");
            m = rpu_last_error();
            snprintf(tail, sizeof tail, " [%s]", rpu_last_error_location());
            CHECK(strlen(m) > strlen(tail) && !strcmp(m + strlen(m) - strlen(tail), tail),
                  "RPUSIM_ERROR_LOCATION=1: the message ends in the location: %s", m);
            unsetenv("RPUSIM_ERROR_LOCATION");
            /* a tile's failure: a non-finite weight of the second input split (tile 1 = 1_0) */
            tl_fill_uniform(w, 4 * 4 * 9, -1, 1, 61, 1);
            w[2 * 9 + 4] = NAN; /* output 0, input channel 2 */
            rpu_status st = rpu_conv_set_weights(l, w, b);
            if (rpu_conv_tile(l, 1)) {
                CHECK(st == RPU_ERR_ARG && msg_has("features.conv7, tile 1 (1_0)") &&
                          msg_has("not finite"),
                      "a tile's error names the layer and the tile: %s", rpu_last_error());
            }
            rpu_conv_destroy(&l);
        }
        rpu_conv_params_default(&q, 2, 4, 4, 3);
        q.layer_id = 12;
        c.mapping.max_input_size = 8;
        CHECK_ERR(rpu_conv_create(W, &q, &c, &l), RPU_ERR_MODULE, "layer 12");
        rpu_config_default(&c, RPU_KIND_SINGLE);
    }

    /* linear */
    rpu_linear_params lp;
    rpu_linear_params_default(&lp, 0, 3);
    rpu_linear *ll = NULL;
    CHECK_ERR(rpu_linear_create(W, &lp, &c, &ll), RPU_ERR_ARG, "feature|size");
    lp.in_features = 4;
    lp.out_features = 0;
    CHECK_ERR(rpu_linear_create(W, &lp, &c, &ll), RPU_ERR_ARG, "feature|size");
    lp.out_features = 3;
    CHECK_ERR(rpu_linear_create(W, NULL, &c, &ll), RPU_ERR_ARG, "null");
    CHECK_ERR(rpu_linear_create(W, &lp, NULL, &ll), RPU_ERR_ARG, "null");
    CHECK_ERR(rpu_linear_create(W, &lp, &c, NULL), RPU_ERR_ARG, "null");
    c.backward.inp_bound = 0.5f;
    CHECK_ERR(rpu_linear_create(W, &lp, &c, &ll), RPU_ERR_CONFIG, "inp_bound");
    rpu_config_default(&c, RPU_KIND_SINGLE);
    rpu_linear_destroy(NULL);
    rpu_linear_destroy(&ll);
    CHECK_OK(rpu_linear_create(W, &lp, &c, &ll));
    if (ll) {
        float x[8] = {0.1f, 0.2f, -0.3f, 0.4f, 0.5f, -0.6f, 0.7f, 0.8f}, y[6] = {0}, dx[8];
        CHECK_ERR(rpu_linear_backward(ll, y, dx), RPU_ERR_ARG, "forward");
        CHECK_ERR(rpu_linear_forward(ll, x, 0, y), RPU_ERR_ARG, "batch|n =|n <|n must|size");
        CHECK_ERR(rpu_linear_forward(ll, NULL, 2, y), RPU_ERR_ARG, "null");
        CHECK_ERR(rpu_linear_forward(ll, x, 2, NULL), RPU_ERR_ARG, "null");
        CHECK_ERR(rpu_linear_forward(NULL, x, 2, y), RPU_ERR_ARG, "null");
        CHECK_ERR(rpu_conv_set_readout_oversampling(rpu_linear_as_conv(ll), 0), RPU_ERR_ARG,
                  "over_sampling");
        CHECK_OK(rpu_linear_forward(ll, x, 2, y));
        CHECK_OK(rpu_linear_backward(ll, y, dx));
        rpu_linear_destroy(&ll);
    }
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    double t0 = MPI_Wtime();
    test_grids();
    test_errors();
    test_fp_conv();
    fp_weight_scaling_case(false);
    fp_weight_scaling_case(true);
    test_fp_linear();
    test_digital_round_trip();
    test_perfect_vs_unsplit("ideal");
    test_perfect_vs_unsplit("constant_step");
    test_noisy_means();
    test_exact_reduction();
    rank_invariance("rank invariance conv2d 6->10 (9 tiles)", conv_scenario_sections,
                    conv_scenario);
    rank_invariance("rank invariance linear 13->7 analog bias (9 tiles)", linear_scenario_sections,
                    linear_scenario);
    rank_invariance("rank invariance conv1d groups 2 dilation 2 analog bias unfold (8 tiles)",
                    conv1d_scenario_sections, conv1d_scenario);
    const char *holder_labels[10] = {
        "rank invariance with holders: conv2d 16->16 (1 tile, bound management, masks)",
        "rank invariance with holders: conv2d 16->16 (1 tile, average_abs_max)",
        "rank invariance with holders: conv2d 16->16 (2 tiles, int64 reduction)",
        "rank invariance with holders: linear 300->10 (1 tile, 150 vectors)",
        "rank invariance with holders: conv2d 16->16 floating_point (summed update, own samples)",
        "rank invariance with holders: linear 300->40 floating_point (summed update, 3 blocks)",
        "rank invariance with holders: linear 300->10 inference (weight noise after updates)",
        "rank invariance with holders: conv2d 16->16 floating_point device, average_abs_max",
        "rank invariance with holders: conv2d 16->16 floating_point (4 tiles on every rank, own "
        "samples)",
        "rank invariance with holders: conv2d 16->16 stride 2 floating_point (4 tiles on every "
        "rank, 4 samples per block)"};
    for (holders_case = 0; holders_case < 10; ++holders_case)
        rank_invariance(holder_labels[holders_case], holders_sections, holders_scenario);
    /* the pulsed cases again, each tile updated whole by one holder (rotating) */
    whole_updates = 1;
    for (holders_case = 0; holders_case < 4; ++holders_case) {
        char label[160];
        snprintf(label, sizeof label, "%s, whole-tile updates", holder_labels[holders_case]);
        rank_invariance(label, holders_sections, holders_scenario);
    }
    /* and with the owners announced before the forward: only they keep every sample */
    whole_updates = 2;
    for (holders_case = 0; holders_case < 4; ++holders_case) {
        char label[160];
        snprintf(label, sizeof label, "%s, announced whole-tile updates",
                 holder_labels[holders_case]);
        rank_invariance(label, holders_sections, holders_scenario);
    }
    whole_updates = 0;
    /* the floating-point conv with holders reads only its own samples at 2..P ranks */
    CHECK(tl_size() == 1 || own_steps > 0, "no step through a layer that reads own samples");
    if (tl_rank() == 0) printf("test_layer: %.2f s\n", MPI_Wtime() - t0);
    return tl_finish();
}
