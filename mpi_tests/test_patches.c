/* Tests of the patch gathering (im2col) and col2im of the mapped layers (src/patches.c,
 * src/patches_impl.h): the fast versions the layers run against the reference versions
 * beside them, bit for bit.
 *
 * For every case (1d/2d/3d, stride, padding wider than the kernel, dilation, kernel widths
 * 1..9, square and rectangular kernels, a kernel of more than 256 rows, a tile_array tile
 * that cuts its first and last channel, a tile of the second group, the analog-bias
 * column, a linear layer's 0-d shape; and shapes of at least 8 output columns with
 * stride and dilation 1 along the width, which the fast versions take in 16 x 16 blocks):
 *   - the fast gather equals the reference through the index table and the reference by
 *     explicit loops, over every element of the patch rows (the buffers start filled
 *     with a sentinel, so an unwritten element shows);
 *   - the fast col2im equals the reference col2im, image by image, added onto a random
 *     starting image, on random terms of mixed magnitude (1e-3..1e3), so that adding an
 *     element's terms in another order than ascending output position changes bits: the
 *     test also checks that a sum in descending order differs for some element of every
 *     case with at least one element of several terms.
 * Local (no communication); the program runs at 1 rank. */
#include "patches_impl.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *label;
    int ndim;
    int C, groups_c0; /* channels of x; first channel of the tile's group */
    int in[3], k[3], s[3], p[3], d[3];
    int n;
    int partial;  /* tile_array tile cutting its first and last channel */
    int bias_col; /* analog-bias column */
} patch_case;

static float *falloc(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) abort();
    return p;
}

/* Geometry of a case as 3-d (leading unit dimensions). */
static rpu_patch_geom geom_of(const patch_case *pc) {
    rpu_patch_geom g;
    memset(&g, 0, sizeof g);
    g.n = pc->n;
    g.C = pc->C;
    g.K = 1;
    g.Lin = g.Lout = 1;
    for (int a = 0; a < 3; ++a) {
        const int src = a - (3 - pc->ndim);
        g.k3[a] = src >= 0 ? pc->k[src] : 1;
        g.s3[a] = src >= 0 ? pc->s[src] : 1;
        g.p3[a] = src >= 0 ? pc->p[src] : 0;
        g.d3[a] = src >= 0 ? pc->d[src] : 1;
        g.in3[a] = src >= 0 ? pc->in[src] : 1;
        g.out3[a] = (g.in3[a] + 2 * g.p3[a] - g.d3[a] * (g.k3[a] - 1) - 1) / g.s3[a] + 1;
        g.K *= g.k3[a];
        g.Lin *= g.in3[a];
        g.Lout *= g.out3[a];
    }
    return g;
}

/* The tile: channels groups_c0.. of x; all of them (mapped), or columns K + 2 .. 3K + 1 of
 * a 4-channel group (partial: cuts channel 1 after 2 positions and channel 3 before its
 * end). */
static rpu_patch_cols cols_of(const patch_case *pc, const rpu_patch_geom *g) {
    rpu_patch_cols c;
    memset(&c, 0, sizeof c);
    c.cg = pc->groups_c0;
    if (pc->partial) {
        c.col0 = g->K + 2;
        c.ncol = 2 * g->K;
        c.in_ch0 = c.col0 / g->K;
        c.in_ch = (c.col0 + c.ncol - 1) / g->K - c.in_ch0 + 1;
    } else {
        c.in_ch0 = 0;
        c.in_ch = pc->C - pc->groups_c0;
        c.col0 = 0;
        c.ncol = c.in_ch * g->K;
    }
    c.bias_col = pc->bias_col;
    c.cols = c.ncol + (pc->bias_col ? 1 : 0);
    return c;
}

/* Random values of magnitude 1e-3..1e3 with random signs. */
static void fill_mixed(float *v, size_t n, uint64_t seed, uint64_t id) {
    float *e = falloc(n);
    tl_fill_uniform(v, (int)n, -1.0f, 1.0f, seed, id);
    tl_fill_uniform(e, (int)n, -3.0f, 3.0f, seed, id + 100);
    for (size_t q = 0; q < n; ++q)
        v[q] *= powf(10.0f, e[q]);
    free(e);
}

static void run_case(const patch_case *pc, uint64_t seed) {
    const rpu_patch_geom g = geom_of(pc);
    const rpu_patch_cols t = cols_of(pc, &g);
    const size_t nx = (size_t)g.n * g.C * g.Lin, rows = (size_t)g.n * g.Lout;
    const size_t nX = rows * (size_t)t.cols, nimg = (size_t)t.in_ch * g.Lin;
    float *x = falloc(nx), *X = falloc(nX), *Xi = falloc(nX), *Xu = falloc(nX);
    float *DX = falloc(nX), *img0 = falloc(nimg), *a = falloc(nimg), *b = falloc(nimg);
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)g.Lout * g.K);
    if (!idx) abort();
    tl_fill_uniform(x, (int)nx, -1.0f, 1.0f, seed, 1);
    rpu_patch_index(&g, idx);
    for (size_t q = 0; q < nX; ++q)
        X[q] = Xi[q] = Xu[q] = 12345.0f;
    rpu_patch_gather(&g, &t, x, X);
    rpu_patch_gather_ref(&g, &t, idx, x, Xi);
    rpu_patch_gather_ref(&g, &t, NULL, x, Xu);
    size_t bad = 0, unset = 0;
    for (size_t q = 0; q < nX; ++q) {
        bad += memcmp(&X[q], &Xi[q], sizeof(float)) != 0 || memcmp(&X[q], &Xu[q], sizeof(float));
        unset += X[q] == 12345.0f;
    }
    CHECK(bad == 0 && unset == 0,
          "%s: gather = reference (indexed and explicit): %zu of %zu differ, %zu unwritten",
          pc->label, bad, nX, unset);

    fill_mixed(DX, nX, seed, 2);
    fill_mixed(img0, nimg, seed, 3);
    bad = 0;
    size_t multi = 0, order_shows = 0;
    for (int nn = 0; nn < g.n; ++nn) {
        memcpy(a, img0, sizeof(float) * nimg);
        memcpy(b, img0, sizeof(float) * nimg);
        rpu_patch_col2im(&g, &t, DX, nn, a);
        rpu_patch_col2im_ref(&g, &t, idx, DX, nn, b);
        for (size_t q = 0; q < nimg; ++q)
            bad += memcmp(&a[q], &b[q], sizeof(float)) != 0;
        /* the same terms in descending output position: the order matters for these data */
        memcpy(b, img0, sizeof(float) * nimg);
        int *terms = calloc(nimg, sizeof(int));
        if (!terms) abort();
        for (int p = g.Lout - 1; p >= 0; --p) {
            const float *row = DX + ((size_t)nn * g.Lout + p) * t.cols;
            for (int c = t.in_ch0; c < t.in_ch0 + t.in_ch; ++c)
                for (int k = 0; k < g.K; ++k) {
                    const int col = c * g.K + k - t.col0;
                    const int32_t i = idx[(size_t)p * g.K + k];
                    if (col < 0 || col >= t.ncol || i < 0) continue;
                    b[(size_t)(c - t.in_ch0) * g.Lin + i] += row[col];
                    terms[(size_t)(c - t.in_ch0) * g.Lin + i]++;
                }
        }
        for (size_t q = 0; q < nimg; ++q) {
            multi += terms[q] > 1;
            order_shows += memcmp(&a[q], &b[q], sizeof(float)) != 0;
        }
        free(terms);
    }
    CHECK(bad == 0, "%s: col2im = reference bit for bit (%zu of %zu differ)", pc->label, bad,
          nimg * g.n);
    if (multi > 0)
        CHECK(order_shows > 0,
              "%s: the data tell the summation orders apart (%zu of %zu elements differ in "
              "descending order)",
              pc->label, order_shows, multi);
    free(x), free(X), free(Xi), free(Xu), free(DX), free(img0), free(a), free(b), free(idx);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    const patch_case cases[] = {
        {"2d 3x3 pad 1 (bench conv)", 2, 5, 0, {7, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 2, 0, 0},
        {"2d 5x5 no padding (LeNet)", 2, 3, 0, {12, 12}, {5, 5}, {1, 1}, {0, 0}, {1, 1}, 2, 0, 0},
        {"2d 3x3 stride 2 pad 1, odd", 2, 2, 0, {9, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 3, 0, 1},
        {"2d 3x3 dilation 2 pad 2", 2, 3, 0, {8, 9}, {3, 3}, {1, 1}, {2, 2}, {2, 2}, 2, 0, 0},
        {"2d 2x4 stride (1,3) pad (1,2)",
         2,
         2,
         0,
         {6, 11},
         {2, 4},
         {1, 3},
         {1, 2},
         {1, 1},
         2,
         0,
         0},
        {"2d 1x9 pad 4 (wide run)", 2, 2, 0, {3, 12}, {1, 9}, {1, 1}, {0, 4}, {1, 1}, 2, 0, 1},
        {"2d 3x3 padding 3 > kernel", 2, 2, 0, {4, 5}, {3, 3}, {1, 1}, {3, 3}, {1, 1}, 2, 0, 0},
        {"1d k4 stride 3 pad 2", 1, 3, 0, {13}, {4}, {3}, {2}, {1}, 2, 0, 0},
        {"1d k1 (pointwise)", 1, 4, 0, {5}, {1}, {1}, {0}, {1}, 2, 0, 1},
        {"3d k(2,3,3) s(1,2,1) p(1,1,1)",
         3,
         2,
         0,
         {3, 5, 6},
         {2, 3, 3},
         {1, 2, 1},
         {1, 1, 1},
         {1, 1, 1},
         2,
         0,
         0},
        {"3d k(17,17,1): 289 kernel rows",
         3,
         1,
         0,
         {18, 17, 3},
         {17, 17, 1},
         {1, 1, 1},
         {0, 0, 0},
         {1, 1, 1},
         1,
         0,
         0},
        {"tile_array tile cutting two channels",
         2,
         4,
         0,
         {6, 7},
         {3, 3},
         {1, 1},
         {1, 1},
         {1, 1},
         2,
         1,
         1},
        {"second group (channels 3..5 of 6)",
         2,
         6,
         3,
         {5, 5},
         {3, 3},
         {1, 1},
         {1, 1},
         {1, 1},
         2,
         0,
         0},
        {"tile_array cut, 5x5 kernel", 2, 4, 0, {7, 7}, {5, 5}, {1, 1}, {0, 0}, {1, 1}, 2, 1, 0},
        {"linear (0-d)", 0, 7, 0, {0}, {0}, {0}, {0}, {0}, 3, 0, 1},
        /* widths of 32 output columns and more (SIMD_MIN_WIDTH) with stride and dilation 1
         * along the width: the 16 x 16 block path (full and partial blocks of columns and of
         * outputs); the LeNet-5 conv2 width (20) below it takes the runs */
        {"2d 3x3 pad 1, 16 ch 32x32 (bench conv)",
         2,
         16,
         0,
         {32, 32},
         {3, 3},
         {1, 1},
         {1, 1},
         {1, 1},
         2,
         0,
         0},
        {"2d 3x3 pad 1, 7 ch 5x37, bias column",
         2,
         7,
         0,
         {5, 37},
         {3, 3},
         {1, 1},
         {1, 1},
         {1, 1},
         2,
         0,
         1},
        {"2d 5x5 no padding 12x24 (LeNet conv2 width)",
         2,
         6,
         0,
         {12, 24},
         {5, 5},
         {1, 1},
         {0, 0},
         {1, 1},
         2,
         0,
         0},
        {"2d 3x5 stride (2,1) pad (1,6) > kernel",
         2,
         3,
         0,
         {7, 29},
         {3, 5},
         {2, 1},
         {1, 6},
         {1, 1},
         2,
         0,
         1},
        {"2d 3x3 dilation (2,1) pad 1", 2, 3, 0, {9, 34}, {3, 3}, {1, 1}, {1, 1}, {2, 1}, 2, 0, 0},
        {"tile_array cut, 3x3, 32 wide", 2, 4, 0, {6, 32}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 2, 1, 1},
        {"1d k3 pad 1, 40 wide, second group", 1, 6, 2, {40}, {3}, {1}, {1}, {1}, 3, 0, 0},
        {"3d k(2,3,4) p(1,1,2) 31 wide",
         3,
         2,
         0,
         {3, 4, 31},
         {2, 3, 4},
         {1, 1, 1},
         {1, 1, 2},
         {1, 1, 1},
         2,
         0,
         0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
        run_case(&cases[i], 900 + i);
    return tl_finish();
}
