/* The staged passes of a mapped layer (src/layer_stages.c, rpu_tile_forward_staged /
 * rpu_tile_backward_staged): patches gathered, MAC'ed and delivered block by block must
 * give the bits of the whole-batch computation with the same MAC calls. The reference
 * here does that computation the plain way, over the whole batch, with its own loops:
 * im2col of the batch (ref_im2col), then per tile and per MAC block of `spb` images (the
 * layer's rule: at least 32 vectors) the GEMMs in chunks of 512 vectors that the tile
 * makes (cblas_sgemm called here with the same shapes), the mapping scales, the transpose
 * into the output planes + 0.0f + the digital bias; the input gradient through the
 * transposed GEMMs and a col2im that adds every element's terms in float in ascending
 * output position, starting from zero (with several output splits the tiles' images
 * summed in int64 at the layer's scale); the update's summed gradient from the whole-array
 * bound (rpu_tile_grad_block_bound over all vectors, where the layer keeps each sample's
 * maxima while it makes the vectors) and the block sums of rpu_tile_grad_blocks_add.
 *
 * Cases (floating point: the pass goes by blocks in both directions): one tile with
 * several images per block and a partial last block; one tile with blocks of more than 512
 * vectors (chunks inside a block); two tiles of one input split (their patches shared,
 * each tile's rows delivered directly); mapping scales (weight scaling), which scale the
 * results and the backward's gradients per block; grids of 2 x 2 and 3 x 1 tiles, whose
 * results (input-gradient images) are summed in int64 at the layer's scale (the
 * reference's own loop over the tiles' terms). Each in training mode (forward,
 * backward, update) and in eval mode (forward and backward through a block's own
 * buffers). Outputs and input gradients bit for bit at any rank count; the updated weights
 * bit for bit where each tile has one holder (several holders add their blocks' bound
 * differently: test_layer and the train runs check them). */
#include "fixed_impl.h"
#include "ref_conv.h"
#include "testlib.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *label;
    int in, out, size[2], n, max_in, max_out, bias;
    float omega; /* weight scaling (0: none) */
} stage_case;

static float *falloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) abort();
    return p;
}

static size_t count_diff(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t q = 0; q < n; ++q)
        d += memcmp(&a[q], &b[q], sizeof(float)) != 0;
    return d;
}

/* The MAC of vectors [0, M) in blocks of B and chunks of 512 within a block (the tile's
 * calls): forward Y [M, R] = V W^T (V [M, C]), backward Y [M, C] = V W (V [M, R]). */
static void ref_mac(int fwd, const float *V, int M, int B, const float *W, int R, int C, float *Y) {
    for (int b0 = 0; b0 < M; b0 += B) {
        const int mb = M - b0 < B ? M - b0 : B;
        for (int c0 = 0; c0 < mb; c0 += 512) {
            const int m = mb - c0 < 512 ? mb - c0 : 512;
            const size_t k = (size_t)b0 + c0;
            if (fwd)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, R, C, 1.0f, V + k * C, C, W,
                            C, 0.0f, Y + k * R, R);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, C, R, 1.0f, V + k * R, R,
                            W, C, 0.0f, Y + k * C, C);
        }
    }
}

/* Tap index of output position (oh, ow), kernel (kh, kw) in the input plane, -1 for padding
 * (stride 1, padding 1, 3x3). */
static int tap(int H, int Wd, int oh, int ow, int kh, int kw) {
    const int ih = oh - 1 + kh, iw = ow - 1 + kw;
    return (ih < 0 || ih >= H || iw < 0 || iw >= Wd) ? -1 : ih * Wd + iw;
}

static void run_case(const stage_case *sc, int training, uint64_t seed) {
    char label[160];
    snprintf(label, sizeof label, "%s, %s", sc->label, training ? "training" : "eval");
    rpu_config cfg;
    rpu_config_default(&cfg, RPU_KIND_FLOATING_POINT);
    cfg.mapping.max_input_size = sc->max_in;
    cfg.mapping.max_output_size = sc->max_out;
    if (sc->omega > 0) {
        cfg.mapping.weight_scaling_omega = sc->omega;
        cfg.mapping.weight_scaling_columnwise = true;
    }
    rpu_conv_params p;
    rpu_conv_params_default(&p, 2, sc->in, sc->out, 3);
    p.padding[0] = p.padding[1] = 1;
    p.bias = sc->bias ? RPU_BIAS_DIGITAL : RPU_BIAS_NONE;
    p.seed = seed;
    const int n = sc->n, H = sc->size[0], Wd = sc->size[1], L = H * Wd, K = 9;
    const int CK = sc->in * K, O = sc->out, M = n * L;
    const int spb = (32 + L - 1) / L, B = spb * L, nblocks = (n + spb - 1) / spb;
    const size_t nx = (size_t)n * sc->in * L, ny = (size_t)n * O * L, nw = (size_t)O * CK;
    const float lr = 0.5f;
    rpu_conv *l = NULL;
    CHECK_OK(rpu_conv_create(MPI_COMM_WORLD, &p, &cfg, &l));
    if (!l) return;
    const rpu_tile_grid *g = rpu_conv_grid(l);
    CHECK(g->n_tiles == g->n_in * g->n_out && g->n_out == (O + sc->max_out - 1) / sc->max_out,
          "%s: %d tiles (%d x %d)", label, g->n_tiles, g->n_in, g->n_out);
    float *x = falloc(nx), *dy = falloc(ny), *w = falloc(nw), *b = falloc((size_t)O);
    float *y = falloc(ny), *dx = falloc(nx), *yr = falloc(ny), *dxr = falloc(nx);
    float *X = falloc((size_t)M * CK), *D = falloc((size_t)M * O);
    float *DX = falloc((size_t)M * CK), *wl = falloc(nw), *wr = falloc(nw);
    float *scales = falloc((size_t)O);
    tl_fill_uniform(x, (int)nx, -1, 1, seed, 1);
    tl_fill_uniform(dy, (int)ny, -1, 1, seed, 2);
    tl_fill_uniform(w, (int)nw, -0.5f, 0.5f, seed, 3);
    tl_fill_uniform(b, O, -0.5f, 0.5f, seed, 4);
    x[5] = -0.0f; /* a -0 input: +0 in the outputs as in the reference */
    /* the largest inputs in the last image, the largest gradients in image 1: the update's
     * bound (max|x| times max|d|) needs the maxima of every image */
    for (size_t q = nx - nx / n; q < nx; ++q)
        x[q] *= 64.0f;
    for (size_t q = ny / n; q < 2 * ny / n; ++q)
        dy[q] *= 64.0f;
    /* input channel 1 tiny: its gradient sums lie far below the bound, where the fixed-point
     * sums round them, so another bound (scale) changes their bits */
    for (int s = 0; s < n; ++s)
        for (int q = 0; q < L; ++q)
            x[((size_t)s * sc->in + 1) * L + q] *= 1e-9f;
    /* output channel 0's weights and input channel 2's tiny: their results and input
     * gradients lie far below the sums' bound, where the int64 terms are rounded */
    for (int q = 0; q < CK; ++q)
        w[q] *= 1e-12f;
    for (int o = 0; o < O && sc->in > 2; ++o)
        for (int k = 0; k < K; ++k)
            w[(size_t)o * CK + 2 * K + k] *= 1e-12f;
    CHECK_OK(rpu_conv_set_weights(l, w, sc->bias ? b : NULL));
    rpu_conv_set_training(l, training);
    /* the stored weights and the scales: of the tile every rank holds (omega), else the
     * logical weights (scales 1) */
    for (int o = 0; o < O; ++o)
        scales[o] = 1.0f;
    if (sc->omega > 0) {
        rpu_tile *t0 = rpu_conv_tile(l, 0);
        CHECK(t0 != NULL, "%s: the tile is held by every rank", label);
        if (t0) {
            CHECK_OK(rpu_tile_get_weights(t0, w, RPU_WEIGHTS_STORED));
            CHECK_OK(rpu_tile_get_mapping_scales(t0, scales));
        }
        int unit = 1;
        for (int o = 0; o < O; ++o)
            unit &= scales[o] == 1.0f;
        CHECK(!unit, "%s: the mapping scales are not all 1", label);
    }

    /* tile t's patches X_t [M, cols] (its channels' columns of X) and weights W_t [rows, cols] */
    ref_im2col(&p, x, n, sc->size, X);
    float **Xt = calloc((size_t)g->n_tiles, sizeof(float *)),
          **Wt = calloc((size_t)g->n_tiles, sizeof(float *));
    if (!Xt || !Wt) abort();
    for (int t = 0; t < g->n_tiles; ++t) {
        const rpu_tile_slot *ts = &g->tiles[t];
        Xt[t] = falloc((size_t)M * ts->cols);
        Wt[t] = falloc((size_t)ts->rows * ts->cols);
        for (int k = 0; k < M; ++k)
            memcpy(Xt[t] + (size_t)k * ts->cols, X + (size_t)k * CK + (size_t)ts->in_ch0 * K,
                   sizeof(float) * (size_t)ts->cols);
        for (int r = 0; r < ts->rows; ++r)
            memcpy(Wt[t] + (size_t)r * ts->cols,
                   w + (size_t)(ts->out_ch0 + r) * CK + (size_t)ts->in_ch0 * K,
                   sizeof(float) * (size_t)ts->cols);
    }

    /* reference forward: one input split: each tile's scaled results + 0.0f + the bias;
     * several: the tiles' results summed in int64 at the layer's scale (max |result| over
     * n_in terms), rounded once, + the bias */
    float *yimg = falloc(ny * (size_t)g->n_tiles);
    double gmax = 0;
    for (int t = 0; t < g->n_tiles; ++t) {
        const rpu_tile_slot *ts = &g->tiles[t];
        float *Yt = falloc((size_t)M * ts->rows);
        ref_mac(1, Xt[t], M, B, Wt[t], ts->rows, ts->cols, Yt);
        for (int k = 0; k < M; ++k)
            for (int r = 0; r < ts->rows; ++r) {
                const int o = ts->out_ch0 + r;
                float v = Yt[(size_t)k * ts->rows + r];
                if (scales[o] != 1.0f) v *= scales[o];
                gmax = fabsf(v) > gmax ? fabsf(v) : gmax;
                yimg[ny * t + ((size_t)(k / L) * O + o) * L + k % L] = v;
            }
        free(Yt);
    }
    {
        const int S = rpu_fixed_scale(gmax > 0 ? gmax : 1.0, g->n_in);
        const double up = rpu_pow2(S);
        const float down = rpu_fixed_down(S);
        for (size_t q = 0; q < ny; ++q) {
            const int o = (int)(q / L % O);
            const float bo = sc->bias ? b[o] : 0.0f;
            if (g->n_in == 1) {
                float v = 0;
                for (int t = 0; t < g->n_tiles; ++t)
                    if (o >= g->tiles[t].out_ch0 && o < g->tiles[t].out_ch0 + g->tiles[t].rows)
                        v = yimg[ny * t + q];
                v = v + 0.0f;
                yr[q] = sc->bias ? v + bo : v;
            } else {
                int64_t a = 0;
                for (int t = 0; t < g->n_tiles; ++t)
                    if (o >= g->tiles[t].out_ch0 && o < g->tiles[t].out_ch0 + g->tiles[t].rows)
                        a += rpu_to_fixed(yimg[ny * t + q], up);
                yr[q] = rpu_from_fixed(a, S, down) + bo;
            }
        }
    }
    free(yimg);
    CHECK_OK(rpu_conv_forward(l, x, n, sc->size, y));
    size_t bad = count_diff(y, yr, ny);
    CHECK(bad == 0, "%s: forward = whole-batch reference bit for bit (%zu of %zu differ)", label,
          bad, ny);

    /* reference input gradient: per tile its rows' transposed GEMMs and a float col2im of
     * its channels (ascending output position, from zero); one output split: each
     * element's one image; several: the images summed in int64 at the layer's scale
     * (max |DX| times K, over n_out terms) */
    for (int k = 0; k < M; ++k)
        for (int o = 0; o < O; ++o)
            D[(size_t)k * O + o] = dy[((size_t)(k / L) * O + o) * L + k % L];
    float *img = falloc(nx * (size_t)g->n_tiles);
    gmax = 0;
    for (int t = 0; t < g->n_tiles; ++t) {
        const rpu_tile_slot *ts = &g->tiles[t];
        float *Dt = falloc((size_t)M * ts->rows), *T = img + nx * t;
        for (int k = 0; k < M; ++k)
            for (int r = 0; r < ts->rows; ++r) {
                const int o = ts->out_ch0 + r;
                const float d = D[(size_t)k * O + o];
                Dt[(size_t)k * ts->rows + r] = scales[o] != 1.0f ? d * scales[o] : d;
            }
        ref_mac(0, Dt, M, B, Wt[t], ts->rows, ts->cols, DX);
        for (size_t q = 0; q < (size_t)M * ts->cols; ++q)
            gmax = fabsf(DX[q]) > gmax ? fabsf(DX[q]) : gmax;
        for (int s = 0; s < n; ++s)
            for (int oh = 0; oh < H; ++oh)
                for (int ow = 0; ow < Wd; ++ow) {
                    const float *row = DX + ((size_t)s * L + oh * Wd + ow) * ts->cols;
                    for (int c = 0; c < ts->in_ch; ++c)
                        for (int k = 0; k < K; ++k) {
                            const int i = tap(H, Wd, oh, ow, k / 3, k % 3);
                            if (i >= 0)
                                T[((size_t)s * sc->in + ts->in_ch0 + c) * L + i] += row[c * K + k];
                        }
                }
        free(Dt);
    }
    {
        const int S = rpu_fixed_scale(gmax > 0 ? gmax * K : 1.0, g->n_out);
        const double up = rpu_pow2(S);
        const float down = rpu_fixed_down(S);
        for (size_t q = 0; q < nx; ++q) {
            const int c = (int)(q / L % sc->in);
            int64_t a = 0;
            float v = 0;
            for (int t = 0; t < g->n_tiles; ++t)
                if (c >= g->tiles[t].in_ch0 && c < g->tiles[t].in_ch0 + g->tiles[t].in_ch) {
                    a += rpu_to_fixed(img[nx * t + q], up);
                    v = img[nx * t + q];
                }
            dxr[q] = g->n_out == 1 ? v : rpu_from_fixed(a, S, down);
        }
    }
    free(img);
    CHECK_OK(rpu_conv_backward(l, dy, dx));
    bad = count_diff(dx, dxr, nx);
    CHECK(bad == 0, "%s: input gradient = whole-batch reference bit for bit (%zu of %zu differ)",
          label, bad, nx);
    if (!training) goto done;

    /* reference update: per tile the summed gradient of the whole batch */
    int one_holder = 1;
    for (int t = 0; t < g->n_tiles; ++t)
        one_holder &= g->tiles[t].holders == 1;
    float *gl = falloc(nw), *gr = falloc(nw), *bgl = falloc((size_t)O);
    CHECK_OK(rpu_conv_get_grad(l, gl, sc->bias ? bgl : NULL));
    CHECK_OK(rpu_conv_update(l, lr));
    for (int t = 0; t < g->n_tiles; ++t) {
        const rpu_tile_slot *ts = &g->tiles[t];
        rpu_tile *tr = tl_tile(&cfg, ts->rows, ts->cols, seed);
        if (!tr) continue;
        const size_t cells = (size_t)ts->rows * ts->cols;
        float *Dt = falloc((size_t)M * ts->rows), *G = falloc(cells), *work = falloc(cells);
        int64_t *acc = calloc(cells, sizeof(int64_t));
        if (!acc) abort();
        for (int k = 0; k < M; ++k)
            for (int r = 0; r < ts->rows; ++r)
                Dt[(size_t)k * ts->rows + r] = D[(size_t)k * O + ts->out_ch0 + r];
        CHECK_OK(rpu_tile_set_weights(tr, Wt[t], RPU_WEIGHTS_STORED));
        CHECK_OK(rpu_tile_set_mapping_scales(tr, scales + ts->out_ch0));
        double bound = 0;
        CHECK_OK(rpu_tile_grad_block_bound(tr, Xt[t], Dt, 0, M, B, RPU_WEIGHTS_STORED, &bound));
        const int S = rpu_fixed_scale(bound > 0 ? bound : 1.0, nblocks);
        CHECK_OK(rpu_tile_grad_blocks_add(tr, Xt[t], Dt, 0, M, B, RPU_WEIGHTS_STORED, rpu_pow2(S),
                                          acc, work));
        const float down = rpu_fixed_down(S);
        for (size_t q = 0; q < cells; ++q)
            G[q] = rpu_from_fixed(acc[q], S, down);
        for (int r = 0; r < ts->rows; ++r) /* logical units */
            memcpy(gr + (size_t)(ts->out_ch0 + r) * CK + (size_t)ts->in_ch0 * K,
                   G + (size_t)r * ts->cols, sizeof(float) * (size_t)ts->cols);
        rpu_tile_grad_units(tr, RPU_WEIGHTS_STORED, G);
        CHECK_OK(rpu_tile_update_by_grad(tr, G, M, lr));
        CHECK_OK(rpu_tile_get_weights(tr, G, RPU_WEIGHTS_SCALED));
        for (int r = 0; r < ts->rows; ++r)
            memcpy(wr + (size_t)(ts->out_ch0 + r) * CK + (size_t)ts->in_ch0 * K,
                   G + (size_t)r * ts->cols, sizeof(float) * (size_t)ts->cols);
        free(Dt), free(G), free(work), free(acc);
        rpu_tile_destroy(&tr);
    }
    CHECK_OK(rpu_conv_get_weights(l, wl, sc->bias ? b : NULL, RPU_READ_EXACT));
    const size_t gbad = count_diff(gl, gr, nw);
    bad = count_diff(wl, wr, nw);
    if (one_holder)
        CHECK(gbad == 0,
              "%s: weight gradient = whole-batch reference bit for bit (%zu of %zu "
              "differ)",
              label, gbad, nw);
    free(gl), free(gr), free(bgl);
    if (one_holder)
        CHECK(bad == 0,
              "%s: updated weights = whole-batch reference bit for bit (%zu of %zu "
              "differ)",
              label, bad, nw);
    else {
        size_t far = 0;
        for (size_t q = 0; q < nw; ++q)
            far += fabsf(wl[q] - wr[q]) > 1e-6f * (1.0f + fabsf(wr[q]));
        CHECK(far == 0, "%s: updated weights (several holders) vs reference (%zu far)", label, far);
    }
done:
    for (int t = 0; t < g->n_tiles; ++t)
        free(Xt[t]), free(Wt[t]);
    free(Xt), free(Wt);
    free(x), free(dy), free(w), free(b), free(y), free(dx), free(yr), free(dxr), free(X), free(D),
        free(DX), free(wl), free(wr), free(scales);
    rpu_conv_destroy(&l);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    const stage_case cases[] = {
        {"one tile, 4x4: 4 images a block, a partial last block", 3, 5, {4, 4}, 10, 512, 512, 1, 0},
        {"one tile, 24x24: blocks of 576 vectors (512 + 64)", 2, 3, {24, 24}, 3, 512, 512, 0, 0},
        {"two tiles of one input split, 5x6", 3, 5, {5, 6}, 7, 512, 3, 1, 0},
        {"one tile, weight scaling 0.6 columnwise", 3, 4, {4, 4}, 9, 512, 512, 1, 0.6f},
        {"2 x 2 tiles (input and output splits), 4x5", 4, 5, {4, 5}, 6, 18, 3, 1, 0},
        {"3 input splits x 1, 6x6", 5, 3, {6, 6}, 5, 18, 512, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
        for (int training = 1; training >= 0; --training)
            run_case(&cases[i], training, 3100 + i);
    return tl_finish();
}
