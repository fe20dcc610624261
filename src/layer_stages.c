/* One held tile's forward or backward inside a mapped layer's pass (layer_impl.h): the
 * tile's input vectors made from the layer's input (patches, im2col) or output gradient
 * (gradient rows), the tile's pass, and its results taken into the layer's layout (the
 * output planes; col2im of the input gradient), stage by stage for each MAC block
 * (rpu_tile_forward_staged). A block's vectors and results stay in cache from one stage to
 * the next, where the stages used to run each over the whole batch (19 MB of patches or
 * input-gradient rows for a 32-image batch of a 16-channel 32x32 3x3 convolution). The
 * MAC calls are the same calls on the same values, so every result keeps its bits. */
#include "layer_impl.h"
#include "patches_impl.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* ------------------------------------------------------------------ patches */

/* The batch's patch geometry and tile ts's columns, for patches.c. */
static rpu_patch_geom patch_geom(const rpu_conv *l) {
    rpu_patch_geom g = {
        .n = l->n, .C = l->p.in_channels, .K = l->K, .Lin = l->Lin, .Lout = l->Lout};
    memcpy(g.k3, l->k3, sizeof g.k3);
    memcpy(g.s3, l->s3, sizeof g.s3);
    memcpy(g.p3, l->p3, sizeof g.p3);
    memcpy(g.d3, l->d3, sizeof g.d3);
    memcpy(g.in3, l->in3, sizeof g.in3);
    memcpy(g.out3, l->out3, sizeof g.out3);
    return g;
}

static rpu_patch_cols patch_cols(const rpu_conv *l, const rpu_tile_slot *ts) {
    rpu_patch_cols c = {.cg = ts->group * l->grid.in_per_group,
                        .in_ch0 = ts->in_ch0,
                        .in_ch = ts->in_ch,
                        .col0 = ts->col0,
                        .ncol = ts->ncol,
                        .cols = ts->cols,
                        .bias_col = l->grid.analog_bias && ts->in_split == 0};
    return c;
}

/* max |v| over n floats, NaN ignored (as rpu_tile_grad_block_bound's maxima; max_ps
 * returns its second operand when the first is NaN, as a > m ? a : m does). */
static float abs_max_finite(const float *v, size_t n) {
    size_t q = 0;
    float r = 0;
#if defined(__AVX512F__)
    __m512 m = _mm512_setzero_ps();
    for (; q + 16 <= n; q += 16)
        m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(v + q)), m);
    r = _mm512_reduce_max_ps(m);
#endif
    for (; q < n; ++q) {
        const float a = fabsf(v[q]);
        r = a > r ? a : r;
    }
    return r;
}

/* max |v| over n floats, NaN if any is NaN. */
static float abs_max_nan(const float *v, size_t n) {
    size_t q = 0;
    float r = 0;
    int nan = 0;
#if defined(__AVX512F__)
    __m512 m = _mm512_setzero_ps();
    __mmask16 un = 0;
    for (; q + 16 <= n; q += 16) {
        const __m512 a = _mm512_loadu_ps(v + q);
        un |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
        m = _mm512_max_ps(_mm512_abs_ps(a), m);
    }
    r = _mm512_reduce_max_ps(m);
    nan = un != 0;
#endif
    for (; q < n; ++q) {
        const float a = fabsf(v[q]);
        nan |= a != a;
        r = a > r ? a : r;
    }
    return nan ? NAN : r;
}

/* dst[c * ldd + r] = src[r * lds + c] + 0.0f (which turns -0 into +0), + bias[c] when bias
 * is not NULL, for r < rows, c < cols: 16 x 16 blocks in registers, the edges value by
 * value (the same additions). */
static void transpose(const float *src, size_t lds, float *dst, size_t ldd, int rows, int cols,
                      const float *bias) {
    enum { B = 16 };
    int r0 = 0;
#if defined(__AVX512F__)
    const __m512 zero = _mm512_setzero_ps();
    for (; r0 + B <= rows; r0 += B)
        for (int c0 = 0; c0 + B <= cols; c0 += B) {
            __m512 v[16];
            for (int i = 0; i < B; ++i)
                v[i] = _mm512_loadu_ps(src + (size_t)(r0 + i) * lds + c0);
            rpu_transpose16(v);
            for (int i = 0; i < B; ++i) {
                __m512 o = _mm512_add_ps(v[i], zero);
                if (bias) o = _mm512_add_ps(o, _mm512_set1_ps(bias[c0 + i]));
                _mm512_storeu_ps(dst + (size_t)(c0 + i) * ldd + r0, o);
            }
        }
    const int cdone = cols / B * B; /* the columns the blocks did, for rows < r0 */
#else
    const int cdone = 0;
#endif
    for (int rr = 0; rr < rows; rr += B) {
        const int r1 = rr + B < rows ? rr + B : rows;
        for (int c0 = rr < r0 ? cdone : 0; c0 < cols; c0 += B) {
            const int c1 = c0 + B < cols ? c0 + B : cols;
            for (int c = c0; c < c1; ++c) {
                if (bias)
                    for (int r = rr; r < r1; ++r)
                        dst[(size_t)c * ldd + r] = (src[(size_t)r * lds + c] + 0.0f) + bias[c];
                else
                    for (int r = rr; r < r1; ++r)
                        dst[(size_t)c * ldd + r] = src[(size_t)r * lds + c] + 0.0f;
            }
        }
    }
}

void rpu_conv_gather_patches(const rpu_conv *l, int t, const float *x, float *X, int s0, int s1) {
    if (s1 <= s0) return;
    const rpu_tile_slot *ts = &l->grid.tiles[t];
    rpu_patch_geom g = patch_geom(l);
    const rpu_patch_cols c = patch_cols(l, ts);
    g.n = s1 - s0;
    rpu_patch_gather(&g, &c, x + (size_t)s0 * l->p.in_channels * l->Lin, X);
}

/* The patches of samples [s0, s1) (rpu_conv_gather_patches); with a summed update in
 * training, each sample's max |patch value| into l->xmax. */
static void gather_to(rpu_conv *l, int t, const float *x, float *X, int s0, int s1) {
    rpu_conv_gather_patches(l, t, x, X, s0, s1);
    if (l->training && l->summable) {
        const size_t per = (size_t)l->Lout * l->grid.tiles[t].cols;
        for (int s = s0; s < s1; ++s)
            l->xmax[(size_t)t * l->n + s] = abs_max_finite(X + (size_t)(s - s0) * per, per);
    }
}

/* Gradient rows of samples [s0, s1) of tile t: D [(s1 - s0) Lout, rows] from dy
 * [n, Cout, Lout], in the tile's rows [r0, r1) (the other columns of D as they were); with
 * maxima (all rows), each sample's max |value| into l->dmax. */
static void grads_to(rpu_conv *l, int t, const float *dy, float *D, int s0, int s1, int r0,
                     int r1) {
    const rpu_tile_slot *ts = &l->grid.tiles[t];
    const int Co = l->p.out_channels;
    const int o0 = ts->group * l->grid.out_per_group + ts->out_ch0;
    const size_t per = (size_t)l->Lout * ts->rows;
    for (int n = s0; n < s1; ++n) {
        float *Dn = D + (size_t)(n - s0) * per;
        transpose(dy + ((size_t)n * Co + o0 + r0) * l->Lout, (size_t)l->Lout, Dn + r0,
                  (size_t)ts->rows, r1 - r0, l->Lout, NULL);
        if (l->training && l->summable) l->dmax[(size_t)t * l->n + n] = abs_max_finite(Dn, per);
    }
}

int rpu_conv_keep_maxima(rpu_conv *l) {
    if (!l->training || !l->summable) return 1;
    const size_t need = sizeof(float) * (size_t)l->grid.n_tiles * (size_t)l->n;
    return grow((void **)&l->xmax, &l->xmax_cap, need) &&
           grow((void **)&l->dmax, &l->dmax_cap, need);
}

void rpu_conv_gather_grads(rpu_conv *l, int t, const float *dy, float *D, int s0, int s1, int r0,
                           int r1) {
    if (s1 > s0 && r1 > r0)
        grads_to(l, t, dy, D + (size_t)s0 * l->Lout * l->grid.tiles[t].rows, s0, s1, r0, r1);
}

/* ------------------------------------------------------------------ stages */

/* NaN-sticky max of a and m (the partial results' bound: a NaN anywhere is reported). */
static inline double max_nan(double m, double a) {
    return (a != a || m != m) ? NAN : (a > m ? a : m);
}

/* The stages of one tile's pass over its vectors [c0 L, c1 L) (its share sh). */
typedef struct {
    rpu_conv *l;
    int t, L;
    bool by_blocks;
    share sh;
    const float *src; /* the layer's input x (forward) or output gradient dy (backward) */
    float *V;         /* the tile's input vectors, all n L rows, or NULL: a block's in vb */
    float *vb;
    bool make; /* it makes each block's vectors (by blocks; else they are made) */
    float *R;  /* the tile's results, all n L rows, or NULL: a block's in rb */
    float *rb;
    float *cur; /* the last piece's results (row cur0) */
    int cur0;
    float *dst; /* n_in 1 (forward) or dx_terms 1 (backward): the layer's result; else the
                   tile's own images (forward: [n, rows, Lout]; backward: [n, in_ch, Lin]) */
    bool direct;
    double lmax; /* the pass's max |result| over its samples [s0, s1) (not direct) */
} stage_ctx;

static const float *fwd_in(void *arg, int b0, int b1) {
    stage_ctx *c = (stage_ctx *)arg;
    const size_t cols = (size_t)c->l->grid.tiles[c->t].cols;
    const int s0 = b0 / c->L, s1 = b1 / c->L;
    if (c->make) gather_to(c->l, c->t, c->src, c->V ? c->V + (size_t)b0 * cols : c->vb, s0, s1);
    return c->V ? c->V + (size_t)b0 * cols : c->vb;
}

static const float *bwd_in(void *arg, int b0, int b1) {
    stage_ctx *c = (stage_ctx *)arg;
    const size_t rows = (size_t)c->l->grid.tiles[c->t].rows;
    if (c->make)
        grads_to(c->l, c->t, c->src, c->V ? c->V + (size_t)b0 * rows : c->vb, b0 / c->L, b1 / c->L,
                 0, (int)rows);
    return c->V ? c->V + (size_t)b0 * rows : c->vb;
}

static float *stage_out(stage_ctx *c, int b0, size_t width) {
    c->cur = c->R ? c->R + (size_t)b0 * width : c->rb;
    c->cur0 = b0;
    return c->cur;
}

static float *fwd_out(void *arg, int b0, int b1) {
    (void)b1;
    stage_ctx *c = (stage_ctx *)arg;
    return stage_out(c, b0, (size_t)c->l->grid.tiles[c->t].rows);
}

static float *bwd_out(void *arg, int b0, int b1) {
    (void)b1;
    stage_ctx *c = (stage_ctx *)arg;
    return stage_out(c, b0, (size_t)c->l->grid.tiles[c->t].cols);
}

/* The samples of piece [b0, b1) that this rank contributes. */
static void piece_samples(const stage_ctx *c, int b0, int b1, int *s0, int *s1) {
    *s0 = b0 / c->L > c->sh.s0 ? b0 / c->L : c->sh.s0;
    *s1 = b1 / c->L < c->sh.s1 ? b1 / c->L : c->sh.s1;
}

/* Forward results into the output planes: y [n, Cout, Lout] (+ the digital bias, as the
 * owner of the sample would add it), or the tile's images [n, rows, Lout]. */
static rpu_status fwd_done(void *arg, int b0, int b1) {
    stage_ctx *c = (stage_ctx *)arg;
    const rpu_conv *l = c->l;
    const rpu_tile_slot *ts = &l->grid.tiles[c->t];
    const int Co = l->p.out_channels, o0 = ts->group * l->grid.out_per_group + ts->out_ch0;
    const size_t Lo = (size_t)l->Lout, per = Lo * ts->rows;
    int s0, s1;
    piece_samples(c, b0, b1, &s0, &s1);
    for (int s = s0; s < s1; ++s) {
        const float *Y = c->cur + ((size_t)s * c->L - c->cur0) * ts->rows;
        if (c->direct) {
            transpose(Y, (size_t)ts->rows, c->dst + ((size_t)s * Co + o0) * Lo, Lo, l->Lout,
                      ts->rows, l->bias ? l->bias + o0 : NULL);
        } else {
            c->lmax = max_nan(c->lmax, abs_max_nan(Y, per));
            transpose(Y, (size_t)ts->rows, c->dst + (size_t)s * per, Lo, l->Lout, ts->rows, NULL);
        }
    }
    return RPU_OK;
}

/* Backward results through col2im (every element's terms in ascending output position,
 * patches_impl.h) into dx [n, C, Lin] or the tile's images [n, in_ch, Lin]. */
static rpu_status bwd_done(void *arg, int b0, int b1) {
    stage_ctx *c = (stage_ctx *)arg;
    const rpu_conv *l = c->l;
    const rpu_tile_slot *ts = &l->grid.tiles[c->t];
    const rpu_patch_geom g = patch_geom(l);
    const rpu_patch_cols pc = patch_cols(l, ts);
    const int C = l->p.in_channels, c0 = ts->group * l->grid.in_per_group + ts->in_ch0;
    const size_t Li = (size_t)l->Lin, img = (size_t)ts->in_ch * Li;
    const size_t per = (size_t)l->Lout * ts->cols;
    int s0, s1;
    piece_samples(c, b0, b1, &s0, &s1);
    for (int s = s0; s < s1; ++s) {
        const float *DX = c->cur + ((size_t)s * c->L - c->cur0) * ts->cols;
        float *d = c->direct ? c->dst + ((size_t)s * C + c0) * Li : c->dst + (size_t)s * img;
        if (!c->direct) c->lmax = max_nan(c->lmax, abs_max_nan(DX, per));
        memset(d, 0, sizeof(float) * img);
        rpu_patch_col2im(&g, &pc, DX, 0, d);
    }
    return RPU_OK;
}

/* The floats of the block buffers of tile t's pass (width values per vector): a block of
 * vectors by blocks, else the call's n L. */
static size_t stage_rows(const rpu_conv *l, bool by_blocks) {
    const size_t M = (size_t)l->n * l->Lout, blk = (size_t)block_samples(l) * l->Lout;
    return by_blocks && blk < M ? blk : M;
}

rpu_status rpu_conv_tile_forward(rpu_conv *l, int t, const float *x, float *X, int make, int g0,
                                 int g1, float *dst, int direct, double *lmax) {
    const rpu_tile_slot *ts = &l->grid.tiles[t];
    const bool by = rpu_tile_pass_by_blocks(l->tiles[t], false);
    const size_t rows = stage_rows(l, by);
    const share sh = holder_share(l, t);
    const int L = l->Lout;
    if (!grow((void **)&l->sbuf, &l->sbuf_cap,
              sizeof(float) * (rows * (size_t)ts->rows + (X ? 0 : rows * (size_t)ts->cols) + 1)))
        return RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for a batch of %d", l->label, l->n);
    stage_ctx c = {.l = l,
                   .t = t,
                   .L = L,
                   .by_blocks = by,
                   .sh = sh,
                   .src = x,
                   .V = X,
                   .vb = l->sbuf + rows * (size_t)ts->rows,
                   .make = make && by,
                   .R = by ? NULL : l->sbuf,
                   .rb = l->sbuf,
                   .dst = dst,
                   .direct = direct,
                   .lmax = 0};
    /* a whole-range pass reads its patches gathered here; by blocks, the pass gathers the
     * computed samples and the others are gathered here (a holder keeps every sample's
     * patches for the update) */
    if (make && !by) {
        gather_to(l, t, x, X + (size_t)g0 * L * ts->cols, g0, g1);
    } else if (make && X) {
        const int a1 = g0 < sh.c0 ? (g1 < sh.c0 ? g1 : sh.c0) : g0;
        gather_to(l, t, x, X + (size_t)g0 * L * ts->cols, g0, a1);
        const int a = sh.c1 > g0 ? sh.c1 : g0;
        gather_to(l, t, x, X + (size_t)a * L * ts->cols, a, g1);
    }
    const rpu_pass_stages sg = {&c, fwd_in, fwd_out, fwd_done};
    rpu_status s = rpu_tile_forward_staged(l->tiles[t], (int)((size_t)l->n * L), sh.c0 * L,
                                           sh.c1 * L, block_samples(l) * L,
                                           l->training ? RPU_MODE_TRAIN : RPU_MODE_EVAL, &sg);
    if (!direct) *lmax = max_nan(*lmax, c.lmax);
    return tile_error(l, t, s);
}

rpu_status rpu_conv_tile_backward(rpu_conv *l, int t, const float *dy, float *D, float *dst,
                                  int direct, double *lmax) {
    const rpu_tile_slot *ts = &l->grid.tiles[t];
    const bool by = rpu_tile_pass_by_blocks(l->tiles[t], true);
    const size_t rows = stage_rows(l, by);
    const share sh = holder_share(l, t);
    const int L = l->Lout;
    if (!grow((void **)&l->sbuf, &l->sbuf_cap,
              sizeof(float) * (rows * (size_t)ts->cols + (D ? 0 : rows * (size_t)ts->rows) + 1)))
        return RPU_FAIL(RPU_ERR_NOMEM, "layer %s: out of memory for a batch of %d", l->label, l->n);
    stage_ctx c = {.l = l,
                   .t = t,
                   .L = L,
                   .by_blocks = by,
                   .sh = sh,
                   .src = dy,
                   .V = D ? D : (by ? NULL : l->sbuf + rows * (size_t)ts->cols),
                   .vb = l->sbuf + rows * (size_t)ts->cols,
                   .make = !D && by,
                   .R = by ? NULL : l->sbuf,
                   .rb = l->sbuf,
                   .dst = dst,
                   .direct = direct,
                   .lmax = 0};
    if (!D && !by) rpu_conv_gather_grads(l, t, dy, c.V, sh.c0, sh.c1, 0, ts->rows);
    const rpu_pass_stages sg = {&c, bwd_in, bwd_out, bwd_done};
    rpu_status s = rpu_tile_backward_staged(l->tiles[t], (int)((size_t)l->n * L), sh.c0 * L,
                                            sh.c1 * L, block_samples(l) * L, &sg);
    if (!direct) *lmax = max_nan(*lmax, c.lmax);
    return tile_error(l, t, s);
}
