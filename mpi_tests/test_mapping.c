/* Tests of the mapping module: aihwkit's split rule (spec §1.3) on its worked examples with
 * hand-written split sizes and tile shapes, no-split and error cases, groups (depthwise),
 * the analog bias column, and tile ownership (LPT): a hand-checked assignment, agreement
 * with a plain linear-scan reference, validity, balance and determinism for 1..8 ranks;
 * aihwkit 1.1's tile-array split (column chunks, cut channels, groups, analog bias rule).
 * Pure computation: every rank runs the same checks. */
#include "rpusim/mapping.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static int split(int size, int max, int group, int *out, int max_out) {
    int n = -1;
    CHECK_OK(rpu_split_sizes(size, max, group, out, max_out, &n));
    return n;
}

static void check_split(const char *label, int size, int max, int group, const int *want,
                        int n_want) {
    int got[64], n = split(size, max, group, got, 64);
    bool same = n == n_want;
    for (int k = 0; same && k < n; ++k)
        same = got[k] == want[k];
    CHECK(same, "%s: split(%d, %d, %d) gives %d chunks [%d, %d, ...], want %d [%d, ...]", label,
          size, max, group, n, n > 0 ? got[0] : -1, n > 1 ? got[1] : -1, n_want, want[0]);
}

/* Checks grid dimensions and, for every tile, its channel ranges and shape against the
 * per-group splits in_sizes (channels) and out_sizes. */
static void check_grid(const char *label, const rpu_tile_grid *g, int groups, int kernel_elems,
                       int analog_bias, const int *in_sizes, int n_in, const int *out_sizes,
                       int n_out) {
    CHECK(g->groups == groups && g->n_in == n_in && g->n_out == n_out &&
              g->n_tiles == groups * n_in * n_out && g->kernel_elems == kernel_elems &&
              g->analog_bias == analog_bias,
          "%s: grid %d groups x %d x %d = %d tiles (k %d, bias %d), want %d x %d x %d", label,
          g->groups, g->n_in, g->n_out, g->n_tiles, g->kernel_elems, g->analog_bias, groups, n_in,
          n_out);
    if (g->n_tiles != groups * n_in * n_out) return;
    int bad = 0;
    for (int gr = 0; gr < groups; ++gr) {
        int in0 = 0;
        for (int i = 0; i < n_in; ++i) {
            int out0 = 0;
            for (int j = 0; j < n_out; ++j) {
                const rpu_tile_slot *s = &g->tiles[(gr * n_in + i) * n_out + j];
                int cols = in_sizes[i] * kernel_elems + (i == 0 ? analog_bias : 0);
                if (s->group != gr || s->in_split != i || s->out_split != j || s->in_ch0 != in0 ||
                    s->in_ch != in_sizes[i] || s->out_ch0 != out0 || s->out_ch != out_sizes[j] ||
                    s->rows != out_sizes[j] || s->cols != cols) {
                    if (bad++ < 3)
                        CHECK(false,
                              "%s: tile (%d,%d,%d): in %d+%d out %d+%d shape %dx%d, want in "
                              "%d+%d out %d+%d shape %dx%d",
                              label, gr, i, j, s->in_ch0, s->in_ch, s->out_ch0, s->out_ch, s->rows,
                              s->cols, in0, in_sizes[i], out0, out_sizes[j], out_sizes[j], cols);
                }
                out0 += out_sizes[j];
            }
            in0 += in_sizes[i];
        }
    }
    CHECK(bad == 0, "%s: %d tiles with wrong channels or shape", label, bad);
}

/* ------------------------------------------------------------------ spec §1.3 examples */

static void test_worked_examples(void) {
    rpu_tile_grid g;
    /* in=14, 3x3, max_in=10: max_units 1 -> 14 tiles of one channel (9 inputs each);
     * out=5, max_out=4 -> [3, 2]. */
    {
        const int in[14] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, out[2] = {3, 2};
        check_split("in=14 3x3 max 10", 14 * 9, 10, 9, in, 14);
        check_split("out=5 max 4", 5, 4, 1, out, 2);
        CHECK_OK(rpu_tile_grid_build(14, 5, 1, 9, 0, 10, 4, 1, &g));
        check_grid("14->5 3x3 (10, 4)", &g, 1, 9, 0, in, 14, out, 2);
        CHECK(g.n_tiles == 28 && g.tiles[0].rows == 3 && g.tiles[0].cols == 9 &&
                  g.tiles[1].rows == 2 && g.tiles[1].cols == 9 && g.tiles[27].rows == 2 &&
                  g.tiles[27].in_ch0 == 13,
              "14->5: 28 tiles, 3x9 and 2x9, last one on channel 13");
        rpu_tile_grid_free(&g);
    }
    /* in=5, 3x3, max_in=21: max_units 2 -> [2, 2, 1]; out=5, max_out=3 -> [3, 2]; 6 tiles
     * 3x18 2x18 / 3x18 2x18 / 3x9 2x9. */
    {
        const int in[3] = {2, 2, 1}, out[2] = {3, 2};
        check_split("in=5 3x3 max 21", 45, 21, 9, in, 3);
        check_split("out=5 max 3", 5, 3, 1, out, 2);
        CHECK_OK(rpu_tile_grid_build(5, 5, 1, 9, 0, 21, 3, 1, &g));
        check_grid("5->5 3x3 (21, 3)", &g, 1, 9, 0, in, 3, out, 2);
        const int rows[6] = {3, 2, 3, 2, 3, 2}, cols[6] = {18, 18, 18, 18, 9, 9};
        int ok = g.n_tiles == 6;
        for (int t = 0; ok && t < 6; ++t)
            ok = g.tiles[t].rows == rows[t] && g.tiles[t].cols == cols[t];
        CHECK(ok, "5->5: shapes 3x18 2x18 3x18 2x18 3x9 2x9");
        rpu_tile_grid_free(&g);
    }
    /* in=12, k=4 (1d), max_in=10: 2 channels (8 inputs) per tile -> 6 in-splits; out=13,
     * max_out=6 -> [5, 4, 4]; 18 tiles. */
    {
        const int in[6] = {2, 2, 2, 2, 2, 2}, out[3] = {5, 4, 4};
        check_split("in=12 k=4 max 10", 48, 10, 4, in, 6);
        check_split("out=13 max 6", 13, 6, 1, out, 3);
        CHECK_OK(rpu_tile_grid_build(12, 13, 1, 4, 0, 10, 6, 1, &g));
        check_grid("12->13 k4 (10, 6)", &g, 1, 4, 0, in, 6, out, 3);
        CHECK(g.n_tiles == 18 && g.tiles[0].cols == 8 && g.tiles[0].rows == 5 &&
                  g.tiles[2].rows == 4 && g.tiles[17].in_ch0 == 10 && g.tiles[17].out_ch0 == 9,
              "12->13: 18 tiles of 8 inputs, rows 5,4,4");
        rpu_tile_grid_free(&g);
    }
    /* in=64, 3x3, 512: max_units 56 -> [32, 32] (288 inputs each); out 64 fits. */
    {
        const int in[2] = {32, 32}, out[1] = {64};
        check_split("in=64 3x3 max 512", 576, 512, 9, in, 2);
        CHECK_OK(rpu_tile_grid_build(64, 64, 1, 9, 0, 512, 512, 1, &g));
        check_grid("64->64 3x3 (512, 512)", &g, 1, 9, 0, in, 2, out, 1);
        CHECK(g.tiles[0].cols == 288 && g.tiles[1].cols == 288 && g.tiles[1].in_ch0 == 32,
              "64->64: two 64x288 tiles");
        rpu_tile_grid_free(&g);
    }
    /* Linear 1000 -> 10 (unit 1): [500, 500]; 1030 -> 10 at 512: [344, 343, 343]. */
    {
        const int a[2] = {500, 500}, b[3] = {344, 343, 343}, out[1] = {10};
        check_split("linear 1000 max 512", 1000, 512, 1, a, 2);
        check_split("linear 1030 max 512", 1030, 512, 1, b, 3);
        CHECK_OK(rpu_tile_grid_build(1030, 10, 1, 1, 0, 512, 512, 1, &g));
        check_grid("linear 1030->10", &g, 1, 1, 0, b, 3, out, 1);
        rpu_tile_grid_free(&g);
    }
    /* Exact fit and one over: 512 inputs in one tile, 513 in two. */
    {
        const int one[1] = {512}, two[2] = {257, 256};
        check_split("512 max 512", 512, 512, 1, one, 1);
        check_split("513 max 512", 513, 512, 1, two, 2);
    }
}

/* ------------------------------------------------------------------ no split, errors */

static void test_no_split_and_errors(void) {
    const int all14[1] = {14}, all5[1] = {5};
    check_split("max 0", 126, 0, 9, all14, 1);
    check_split("max -1", 126, -1, 9, all14, 1);
    check_split("out max 0", 5, 0, 1, all5, 1);
    int n = -1;
    CHECK_OK(rpu_split_sizes(126, 10, 9, NULL, 0, &n));
    CHECK(n == 14, "count only: %d chunks, want 14", n);

    int buf[4];
    rpu_clear_error();
    CHECK_STATUS(rpu_split_sizes(27, 8, 9, buf, 4, &n), RPU_ERR_MODULE);
    CHECK(strstr(rpu_last_error(), "tile size too small to fit a single kernel: 9 > 8") != NULL,
          "kernel error message: '%s'", rpu_last_error());
    CHECK(n == 0, "count 0 after an error, got %d", n);
    CHECK_STATUS(rpu_split_sizes(10, 5, 3, buf, 4, &n), RPU_ERR_ARG);   /* not a multiple */
    CHECK_STATUS(rpu_split_sizes(0, 5, 1, buf, 4, &n), RPU_ERR_ARG);    /* size 0 */
    CHECK_STATUS(rpu_split_sizes(9, 5, 0, buf, 4, &n), RPU_ERR_ARG);    /* group 0 */
    CHECK_STATUS(rpu_split_sizes(14, 1, 1, buf, 4, &n), RPU_ERR_ARG);   /* 14 chunks > 4 */
    CHECK_STATUS(rpu_split_sizes(14, 1, 1, buf, 4, NULL), RPU_ERR_ARG); /* no count */

    /* The grid reports the same kernel error, and its message, and stays freeable. */
    rpu_tile_grid g;
    rpu_clear_error();
    CHECK_STATUS(rpu_tile_grid_build(3, 4, 1, 9, 0, 8, 512, 2, &g), RPU_ERR_MODULE);
    CHECK(strstr(rpu_last_error(), "tile size too small to fit a single kernel: 9 > 8") != NULL,
          "grid kernel error message: '%s'", rpu_last_error());
    CHECK(g.tiles == NULL && g.n_tiles == 0, "grid zeroed after an error");
    rpu_tile_grid_free(&g);
    /* kernel fits exactly: 9 <= 9, one channel per tile */
    CHECK_OK(rpu_tile_grid_build(3, 4, 1, 9, 0, 9, 512, 2, &g));
    CHECK(g.n_tiles == 3, "kernel 9, max 9: 3 tiles, got %d", g.n_tiles);
    rpu_tile_grid_free(&g);
    CHECK_STATUS(rpu_tile_grid_build(6, 4, 4, 9, 0, 512, 512, 1, &g), RPU_ERR_ARG);
    CHECK(strstr(rpu_last_error(), "divisible by groups") != NULL, "groups message: '%s'",
          rpu_last_error());
    CHECK_STATUS(rpu_tile_grid_build(0, 4, 1, 9, 0, 512, 512, 1, &g), RPU_ERR_ARG);
    CHECK_STATUS(rpu_tile_grid_build(4, 4, 1, 0, 0, 512, 512, 1, &g), RPU_ERR_ARG);
    CHECK_STATUS(rpu_tile_grid_build(4, 4, 1, 9, 2, 512, 512, 1, &g), RPU_ERR_ARG);
    CHECK_STATUS(rpu_tile_grid_build(4, 4, 1, 9, 0, 512, 512, 0, &g), RPU_ERR_ARG);
    CHECK_STATUS(rpu_tile_grid_build(4, 4, 1, 9, 0, 512, 512, 1, NULL), RPU_ERR_ARG);
    CHECK_STATUS(rpu_assign_owners(NULL, 2), RPU_ERR_ARG);
    CHECK_OK(rpu_tile_grid_build(4, 4, 1, 9, 0, 512, 512, 1, &g));
    CHECK_STATUS(rpu_assign_owners(&g, 0), RPU_ERR_ARG);
    g.tiles[0].owner = 3;
    CHECK_STATUS(rpu_tile_grid_rank_cells(&g, 2, NULL, NULL), RPU_ERR_ARG);
    rpu_tile_grid_free(&g);
    rpu_tile_grid_free(&g); /* twice: zeroed */
    rpu_tile_grid_free(NULL);
}

/* ------------------------------------------------------------------ groups, analog bias */

static void test_groups_and_bias(void) {
    rpu_tile_grid g;
    /* depthwise 3x3: in = out = groups = 8 -> 8 tiles of 1x9, one per group */
    {
        const int in[1] = {1}, out[1] = {1};
        CHECK_OK(rpu_tile_grid_build(8, 8, 8, 9, 0, 512, 512, 1, &g));
        check_grid("depthwise 8", &g, 8, 9, 0, in, 1, out, 1);
        int ok = g.n_tiles == 8 && g.in_per_group == 1 && g.out_per_group == 1;
        for (int t = 0; ok && t < 8; ++t)
            ok = g.tiles[t].group == t && g.tiles[t].rows == 1 && g.tiles[t].cols == 9 &&
                 g.tiles[t].in_ch0 == 0 && g.tiles[t].out_ch0 == 0;
        CHECK(ok, "depthwise: 8 tiles 1x9, tile t in group t, offsets within the group");
        CHECK(rpu_tile_grid_cells(&g) == 72, "depthwise: 72 cells");
        rpu_tile_grid_free(&g);
    }
    /* 2 groups of 8 -> 4 channels, 3x3, max_in 36 (4 channels): [4, 4]; max_out 3: [2, 2];
     * tile index t = (group * n_in + i) * n_out + j. */
    {
        const int in[2] = {4, 4}, out[2] = {2, 2};
        CHECK_OK(rpu_tile_grid_build(16, 8, 2, 9, 0, 36, 3, 1, &g));
        check_grid("groups 2", &g, 2, 9, 0, in, 2, out, 2);
        const rpu_tile_slot *s = &g.tiles[6]; /* group 1, i 1, j 0 */
        CHECK(g.n_tiles == 8 && s->group == 1 && s->in_split == 1 && s->out_split == 0 &&
                  s->in_ch0 == 4 && s->out_ch0 == 0 && s->rows == 2 && s->cols == 36,
              "groups 2: tile 6 is (g1, i1, j0), channels 4.. within its group, 2x36");
        rpu_tile_grid_free(&g);
    }
    /* analog bias: one more column on the tiles of in_split 0 only, not counted in the
     * split (in=5 3x3 max 21 still [2, 2, 1]). */
    {
        const int in[3] = {2, 2, 1}, out[2] = {3, 2};
        CHECK_OK(rpu_tile_grid_build(5, 5, 1, 9, 1, 21, 3, 1, &g));
        check_grid("analog bias 5->5", &g, 1, 9, 1, in, 3, out, 2);
        CHECK(g.tiles[0].cols == 19 && g.tiles[1].cols == 19 && g.tiles[2].cols == 18 &&
                  g.tiles[4].cols == 9,
              "analog bias: cols 19 19 18 18 9 9");
        rpu_tile_grid_free(&g);
        /* 2 channels of 9 fill max 18 exactly; the bias column makes the tile 19 wide */
        const int in2[1] = {2}, out2[1] = {4};
        CHECK_OK(rpu_tile_grid_build(2, 4, 1, 9, 1, 18, 512, 1, &g));
        check_grid("analog bias at the limit", &g, 1, 9, 1, in2, 1, out2, 1);
        rpu_tile_grid_free(&g);
        /* grouped + analog bias: each group's first in-split carries the bias column */
        const int in3[2] = {1, 1}, out3[1] = {2};
        CHECK_OK(rpu_tile_grid_build(4, 4, 2, 9, 1, 9, 512, 1, &g));
        check_grid("analog bias, 2 groups", &g, 2, 9, 1, in3, 2, out3, 1);
        CHECK(g.tiles[0].cols == 10 && g.tiles[1].cols == 9 && g.tiles[2].cols == 10 &&
                  g.tiles[3].cols == 9,
              "analog bias, 2 groups: cols 10 9 10 9");
        rpu_tile_grid_free(&g);
    }
}

/* ------------------------------------------------------------------ ownership */

/* Reference LPT, written plainly: repeatedly pick the unassigned tile of largest work
 * (among equals the lowest (group, out_split, in_split)), give it to the rank with least
 * work (lowest rank among equals) by scanning all ranks. */
static int tie(const rpu_tile_grid *g, int t) {
    const rpu_tile_slot *s = &g->tiles[t];
    return (s->group * g->n_out + s->out_split) * g->n_in + s->in_split;
}
static void ref_owners(const rpu_tile_grid *g, int ranks, int *owner) {
    int64_t *load = calloc((size_t)ranks, sizeof *load);
    char *done = calloc((size_t)g->n_tiles, 1);
    for (int k = 0; k < g->n_tiles; ++k) {
        int best = -1;
        for (int t = 0; t < g->n_tiles; ++t)
            if (!done[t] &&
                (best < 0 || rpu_tile_work(&g->tiles[t]) > rpu_tile_work(&g->tiles[best]) ||
                 (rpu_tile_work(&g->tiles[t]) == rpu_tile_work(&g->tiles[best]) &&
                  tie(g, t) < tie(g, best))))
                best = t;
        int r = 0;
        for (int q = 1; q < ranks; ++q)
            if (load[q] < load[r]) r = q;
        owner[best] = r;
        done[best] = 1;
        load[r] += rpu_tile_work(&g->tiles[best]);
    }
    free(load);
    free(done);
}

/* Reference holders for more ranks than tiles, by the largest-quotient rule written as a
 * selection: every tile's first quotient work(t) / 1 is taken (each tile needs a holder),
 * then, of the quotients work(t) / k (k >= 2), the ranks - n largest (ties: lower tie key);
 * tile t gets as many holders as it has quotients taken. The tiles then take consecutive
 * rank ranges in tile order. */
static void ref_holders(const rpu_tile_grid *g, int ranks, int *owner, int *holders) {
    const int n = g->n_tiles;
    int *taken = calloc((size_t)n, sizeof *taken); /* quotients of t taken: k = 1..taken */
    for (int t = 0; t < n; ++t)
        taken[t] = 1;
    for (int pick = n; pick < ranks; ++pick) {
        int best = -1;
        for (int t = 0; t < n; ++t) {
            if (best < 0) {
                best = t;
                continue;
            }
            /* work(t) / (taken[t] + 1) vs work(best) / (taken[best] + 1) */
            int64_t a = rpu_tile_work(&g->tiles[t]) * (taken[best] + 1);
            int64_t b = rpu_tile_work(&g->tiles[best]) * (taken[t] + 1);
            if (a > b || (a == b && tie(g, t) < tie(g, best))) best = t;
        }
        taken[best]++;
    }
    for (int t = 0, next = 0; t < n; ++t) {
        owner[t] = next;
        holders[t] = taken[t];
        next += taken[t];
    }
    free(taken);
}

static void check_ownership(const char *label, rpu_tile_grid *g, int ranks) {
    CHECK_OK(rpu_assign_owners(g, ranks));
    const int n = g->n_tiles;
    int *want = malloc(sizeof *want * (size_t)n), *first = malloc(sizeof *first * (size_t)n);
    if (ranks > n) {
        int *hold = malloc(sizeof *hold * (size_t)n);
        ref_holders(g, ranks, want, hold);
        int hdiff = 0, total = 0;
        for (int t = 0; t < n; ++t) {
            hdiff += g->tiles[t].holders != hold[t];
            total += g->tiles[t].holders;
        }
        CHECK(hdiff == 0 && total == ranks,
              "%s P=%d: holders differ from the largest-quotient reference (%d tiles) or do not "
              "sum to P (%d)",
              label, ranks, hdiff, total);
        /* every rank holds exactly one tile */
        for (int r = 0; r < ranks; ++r) {
            int held = 0;
            for (int t = 0; t < n; ++t)
                held += rpu_tile_holder_index(&g->tiles[t], r, ranks) >= 0;
            CHECK(held == 1, "%s P=%d: rank %d holds %d tiles", label, ranks, r, held);
        }
        free(hold);
    } else {
        ref_owners(g, ranks, want);
        int extra = 0;
        for (int t = 0; t < n; ++t)
            extra += g->tiles[t].holders != 1;
        CHECK(extra == 0, "%s P=%d: %d tiles with more than one holder", label, ranks, extra);
    }
    int diff = 0, outside = 0;
    int64_t largest = 0;
    for (int t = 0; t < n; ++t) {
        first[t] = g->tiles[t].owner;
        diff += first[t] != want[t];
        outside += first[t] < 0 || first[t] >= ranks;
        if (rpu_tile_work(&g->tiles[t]) > largest) largest = rpu_tile_work(&g->tiles[t]);
    }
    CHECK(outside == 0, "%s P=%d: %d tiles owned outside [0, P)", label, ranks, outside);
    CHECK(diff == 0, "%s P=%d: %d owners differ from the reference", label, ranks, diff);
    int64_t cells[8];
    int tiles[8];
    CHECK_OK(rpu_tile_grid_rank_cells(g, ranks, cells, tiles));
    int64_t lo = cells[0], hi = cells[0], sum = 0;
    int count = 0, idle = 0;
    for (int r = 0; r < ranks; ++r) {
        if (cells[r] < lo) lo = cells[r];
        if (cells[r] > hi) hi = cells[r];
        sum += cells[r];
        count += tiles[r];
        idle += tiles[r] == 0;
    }
    int64_t held_cells = 0;
    int held = 0;
    for (int t = 0; t < n; ++t) {
        held_cells += rpu_tile_work(&g->tiles[t]) * g->tiles[t].holders;
        held += g->tiles[t].holders;
    }
    CHECK(sum == held_cells && count == held && (ranks > n || held == n),
          "%s P=%d: every tile counted once per holder", label, ranks);
    if (ranks <= n)
        CHECK(hi - lo <= largest, "%s P=%d: work spread %lld > largest tile %lld", label, ranks,
              (long long)(hi - lo), (long long)largest);
    CHECK(idle == 0, "%s P=%d: %d idle ranks with %d tiles", label, ranks, idle, n);
    /* pure function of (grid, P): scrambled owners, reassigned, give the same result; and
     * a freshly built grid of the same layer too */
    for (int t = 0; t < n; ++t)
        g->tiles[t].owner = (t * 7 + 3) % ranks;
    CHECK_OK(rpu_assign_owners(g, ranks));
    int same = 1;
    for (int t = 0; t < n; ++t)
        same &= g->tiles[t].owner == first[t];
    CHECK(same, "%s P=%d: reassignment is deterministic", label, ranks);
    free(want);
    free(first);
}

static void test_ownership(void) {
    rpu_tile_grid g;
    /* Hand-checked: in=5 3x3 max 21, out=5 max 3; works t0..t5 = 54 36 54 36 27 18.
     * P=2: t0->0, t2->1, t1->0 (90), t3->1 (90), t4->0 (117), t5->1 (108).
     * P=3: t0->0, t2->1, t1->2 (36), t3->2 (72), t4->0 (81), t5->1 (72).
     * P=4: t0->0, t2->1, t1->2, t3->3, t4->2 (63), t5->3 (54). */
    CHECK_OK(rpu_tile_grid_build(5, 5, 1, 9, 0, 21, 3, 2, &g));
    const int p2[6] = {0, 0, 1, 1, 0, 1}, p3[6] = {0, 2, 1, 2, 0, 1}, p4[6] = {0, 2, 1, 3, 2, 3};
    const int *want[3] = {p2, p3, p4};
    /* P=7: one rank more than tiles goes to the larger tie of t0, t2 (54 each): t0;
     * P=8: then t2 (54 / 1 > 54 / 2 = 27). Consecutive ranges in tile order. */
    {
        const int h7[6] = {2, 1, 1, 1, 1, 1}, o7[6] = {0, 2, 3, 4, 5, 6};
        const int h8[6] = {2, 1, 2, 1, 1, 1}, o8[6] = {0, 2, 3, 5, 6, 7};
        for (int P = 7; P <= 8; ++P) {
            CHECK_OK(rpu_assign_owners(&g, P));
            int ok = 1;
            for (int t = 0; t < 6; ++t)
                ok &= g.tiles[t].holders == (P == 7 ? h7 : h8)[t] &&
                      g.tiles[t].owner == (P == 7 ? o7 : o8)[t];
            CHECK(ok, "hand-checked holders and owners at P=%d", P);
        }
        CHECK(rpu_tile_holder_index(&g.tiles[2], 4, 8) == 1 &&
                  rpu_tile_holder_index(&g.tiles[2], 3, 8) == 0 &&
                  rpu_tile_holder_index(&g.tiles[2], 5, 8) == -1 &&
                  rpu_tile_holder_index(&g.tiles[0], 7, 8) == -1,
              "holder indices of t2 (ranks 3, 4) at P=8");
        CHECK_OK(rpu_assign_owners(&g, 2));
    }
    for (int P = 2; P <= 4; ++P) {
        if (P != 2) CHECK_OK(rpu_assign_owners(&g, P));
        int ok = 1;
        for (int t = 0; t < 6; ++t)
            ok &= g.tiles[t].owner == want[P - 2][t];
        CHECK(ok, "hand example P=%d: owners %d %d %d %d %d %d", P, g.tiles[0].owner,
              g.tiles[1].owner, g.tiles[2].owner, g.tiles[3].owner, g.tiles[4].owner,
              g.tiles[5].owner);
    }
    int64_t cells[2];
    CHECK_OK(rpu_assign_owners(&g, 2));
    CHECK_OK(rpu_tile_grid_rank_cells(&g, 2, cells, NULL));
    CHECK(cells[0] == 117 && cells[1] == 108, "hand example P=2: cells %lld %lld, want 117 108",
          (long long)cells[0], (long long)cells[1]);
    CHECK_OK(rpu_assign_owners(&g, 1));
    int all0 = 1;
    for (int t = 0; t < 6; ++t)
        all0 &= g.tiles[t].owner == 0;
    CHECK(all0, "P=1: rank 0 owns everything");
    rpu_tile_grid_free(&g);

    /* Properties over several layers and P = 1..8 (and this run's rank count). */
    struct {
        const char *label;
        int in, out, groups, k, bias, max_in, max_out;
    } layers[] = {
        {"14->5 3x3", 14, 5, 1, 9, 0, 10, 4},       {"5->5 3x3", 5, 5, 1, 9, 0, 21, 3},
        {"12->13 k4", 12, 13, 1, 4, 0, 10, 6},      {"64->64 3x3", 64, 64, 1, 9, 0, 512, 512},
        {"depthwise 8", 8, 8, 8, 9, 0, 512, 512},   {"groups 2 bias", 16, 8, 2, 9, 1, 36, 3},
        {"37->29 3x3x3", 37, 29, 1, 27, 1, 100, 7}, {"linear 1030->10", 1030, 10, 1, 1, 0, 512, 4},
    };
    for (size_t c = 0; c < sizeof layers / sizeof layers[0]; ++c) {
        for (int P = 1; P <= 8; ++P) {
            CHECK_OK(rpu_tile_grid_build(layers[c].in, layers[c].out, layers[c].groups, layers[c].k,
                                         layers[c].bias, layers[c].max_in, layers[c].max_out, P,
                                         &g));
            if (!g.tiles) continue;
            /* the grid builder assigned the same owners as assigning afresh */
            int *built = malloc(sizeof *built * (size_t)g.n_tiles);
            for (int t = 0; t < g.n_tiles; ++t)
                built[t] = g.tiles[t].owner;
            check_ownership(layers[c].label, &g, P);
            int same = 1;
            for (int t = 0; t < g.n_tiles; ++t)
                same &= built[t] == g.tiles[t].owner;
            CHECK(same, "%s P=%d: rpu_tile_grid_build assigns the LPT owners", layers[c].label, P);
            free(built);
            rpu_tile_grid_free(&g);
        }
    }
    /* the rank count of this run, as a layer would use it */
    if (tl_size() <= 8) {
        CHECK_OK(rpu_tile_grid_build(14, 5, 1, 9, 0, 10, 4, tl_size(), &g));
        check_ownership("world size", &g, tl_size());
        rpu_tile_grid_free(&g);
    }
}

/* ------------------------------------------------------------------ tile-array split */

/* Checks a tile-array grid: per group the column chunks cols[] (hand-computed), each tile's
 * column range, the channels it touches, its shape, and grid.in_share. */
static void check_array_grid(const char *label, const rpu_tile_grid *g, int groups, int K,
                             int analog_bias, const int *cols, int n_in, const int *outs, int n_out,
                             int in_share) {
    CHECK(g->split == RPU_SPLIT_TILE_ARRAY && g->groups == groups && g->n_in == n_in &&
              g->n_out == n_out && g->n_tiles == groups * n_in * n_out && g->kernel_elems == K &&
              g->in_share == in_share,
          "%s: grid %s %d x %d x %d, in_share %d; want tile_array %d x %d x %d, in_share %d", label,
          rpu_split_name(g->split), g->groups, g->n_in, g->n_out, g->in_share, groups, n_in, n_out,
          in_share);
    if (g->n_tiles != groups * n_in * n_out) return;
    int bad = 0;
    for (int gr = 0; gr < groups; ++gr) {
        int c0 = 0;
        for (int i = 0; i < n_in; ++i) {
            int o0 = 0;
            for (int j = 0; j < n_out; ++j) {
                const rpu_tile_slot *s = &g->tiles[(gr * n_in + i) * n_out + j];
                const int ch0 = c0 / K, nch = (c0 + cols[i] - 1) / K - ch0 + 1;
                const int width = cols[i] + (i == 0 ? analog_bias : 0);
                if (s->group != gr || s->in_split != i || s->out_split != j || s->col0 != c0 ||
                    s->ncol != cols[i] || s->in_ch0 != ch0 || s->in_ch != nch || s->out_ch0 != o0 ||
                    s->out_ch != outs[j] || s->rows != outs[j] || s->cols != width) {
                    if (bad++ < 3)
                        CHECK(false,
                              "%s: tile (%d,%d,%d): cols %d+%d ch %d+%d out %d+%d shape %dx%d, "
                              "want cols %d+%d ch %d+%d out %d+%d shape %dx%d",
                              label, gr, i, j, s->col0, s->ncol, s->in_ch0, s->in_ch, s->out_ch0,
                              s->out_ch, s->rows, s->cols, c0, cols[i], ch0, nch, o0, outs[j],
                              outs[j], width);
                }
                o0 += outs[j];
            }
            c0 += cols[i];
        }
    }
    CHECK(bad == 0, "%s: %d tiles with wrong columns, channels or shape", label, bad);
}

/* aihwkit 1.1's TileModuleArray: the raw column count in/groups x K split into
 * n = ceil(F / max) chunks, the first F % n one column wider, kernel blocks ignored. */
static void test_tile_array(void) {
    rpu_tile_grid g;
    /* 4 ch x 3x3 = 36 columns, max 16: n = 3, [12, 12, 12] (channels 0-1, 1-2, 2-3); the
     * mapped split: 1 channel (9 columns) per tile, 4 tiles. out 6 max 4: [3, 3]. */
    {
        const int cols[3] = {12, 12, 12}, outs[2] = {3, 3};
        CHECK_OK(rpu_tile_grid_build_split(RPU_SPLIT_TILE_ARRAY, 4, 6, 1, 9, 0, 16, 4, 1, &g));
        check_array_grid("4->6 3x3 (16, 4)", &g, 1, 9, 0, cols, 3, outs, 2, 2);
        rpu_tile_grid_free(&g);
        CHECK_OK(rpu_tile_grid_build_split(RPU_SPLIT_MAPPED, 4, 6, 1, 9, 0, 16, 4, 1, &g));
        CHECK(g.split == RPU_SPLIT_MAPPED && g.n_in == 4 && g.tiles[2].col0 == 9 &&
                  g.tiles[2].ncol == 9 && g.tiles[2].in_ch0 == 1 && g.in_share == 1,
              "4->6 3x3 mapped: 4 one-channel tiles, columns 9.. for in split 1, in_share 1");
        rpu_tile_grid_free(&g);
    }
    /* sizes that do not divide, the wider chunks first: 3 ch x 5 = 15 columns, max 4: n = 4,
     * [4, 4, 4, 3]; max 4 < kernel 5, which the mapped split refuses */
    {
        const int cols[4] = {4, 4, 4, 3}, outs[1] = {5};
        CHECK_OK(rpu_tile_grid_build_split(RPU_SPLIT_TILE_ARRAY, 3, 5, 1, 5, 0, 4, 0, 2, &g));
        check_array_grid("3->5 k5 (4, 0)", &g, 1, 5, 0, cols, 4, outs, 1, 2);
        rpu_tile_grid_free(&g);
        CHECK_STATUS(rpu_tile_grid_build_split(RPU_SPLIT_MAPPED, 3, 5, 1, 5, 0, 4, 0, 2, &g),
                     RPU_ERR_MODULE);
    }
    /* a channel in 3 tiles: 2 ch x 9 = 18 columns, max 4: n = 5, [4, 4, 4, 3, 3]; out 3,
     * max 2: [2, 1] */
    {
        const int cols[5] = {4, 4, 4, 3, 3}, outs[2] = {2, 1};
        CHECK_OK(rpu_tile_grid_build_split(RPU_SPLIT_TILE_ARRAY, 2, 3, 1, 9, 0, 4, 2, 3, &g));
        check_array_grid("2->3 k9 (4, 2)", &g, 1, 9, 0, cols, 5, outs, 2, 3);
        rpu_tile_grid_free(&g);
    }
    /* 1000 columns at 300: n = 4, [250 x 4]; 1001 at 300: [251, 250, 250, 250];
     * 1003: [251, 251, 251, 250] */
    {
        const int a[4] = {250, 250, 250, 250}, b[4] = {251, 250, 250, 250},
                  c[4] = {251, 251, 251, 250}, outs[1] = {10};
        CHECK_OK(rpu_tile_grid_build_split(RPU_SPLIT_TILE_ARRAY, 1000, 10, 1, 1, 0, 300, 0, 1, &g));
        check_array_grid("linear 1000 (300)", &g, 1, 1, 0, a, 4, outs, 1, 1);
        rpu_tile_grid_free(&g);
        CHECK_OK(rpu_tile_grid_build_split(RPU_SPLIT_TILE_ARRAY, 1001, 10, 1, 1, 0, 300, 0, 1, &g));
        check_array_grid("linear 1001 (300)", &g, 1, 1, 0, b, 4, outs, 1, 1);
        rpu_tile_grid_free(&g);
        CHECK_OK(rpu_tile_grid_build_split(RPU_SPLIT_TILE_ARRAY, 1003, 10, 1, 1, 0, 300, 0, 1, &g));
        check_array_grid("linear 1003 (300)", &g, 1, 1, 0, c, 4, outs, 1, 1);
        rpu_tile_grid_free(&g);
    }
    /* groups: 6 -> 4, groups 2, k 2: per group 3 ch x 2 = 6 columns, max 4: [3, 3]
     * (channels 0-1, 1-2); per group out 2, max 1: [1, 1]; 8 tiles, the same per group */
    {
        const int cols[2] = {3, 3}, outs[2] = {1, 1};
        CHECK_OK(rpu_tile_grid_build_split(RPU_SPLIT_TILE_ARRAY, 6, 4, 2, 2, 0, 4, 1, 4, &g));
        check_array_grid("6->4 g2 k2 (4, 1)", &g, 2, 2, 0, cols, 2, outs, 2, 2);
        CHECK(g.tiles[6].group == 1 && g.tiles[6].col0 == 3 && g.tiles[6].in_ch0 == 1 &&
                  g.tiles[6].in_ch == 2 && g.tiles[6].out_ch0 == 0,
              "6->4 g2: tile 6 = group 1, columns 3..5, channels 1-2 of the group");
        rpu_tile_grid_free(&g);
    }
    /* depthwise 3 -> 3, groups 3, 3x3, max 4: per group [3, 3, 3], in_share 3 */
    {
        const int cols[3] = {3, 3, 3}, outs[1] = {1};
        CHECK_OK(rpu_tile_grid_build_split(RPU_SPLIT_TILE_ARRAY, 3, 3, 3, 9, 0, 4, 0, 2, &g));
        check_array_grid("depthwise 3 3x3 (4, 0)", &g, 3, 9, 0, cols, 3, outs, 1, 3);
        rpu_tile_grid_free(&g);
    }
    /* no limit (max_input_size <= 0): one chunk; a single tile may carry an analog bias */
    {
        const int cols[1] = {36}, outs[1] = {6};
        CHECK_OK(rpu_tile_grid_build_split(RPU_SPLIT_TILE_ARRAY, 4, 6, 1, 9, 1, 0, 0, 1, &g));
        check_array_grid("4->6 3x3 unlimited, analog bias", &g, 1, 9, 1, cols, 1, outs, 1, 1);
        rpu_tile_grid_free(&g);
    }
    /* an analog bias on an array of several tiles: aihwkit keeps it digital */
    CHECK_STATUS(rpu_tile_grid_build_split(RPU_SPLIT_TILE_ARRAY, 4, 6, 1, 9, 1, 16, 0, 1, &g),
                 RPU_ERR_MODULE);
    CHECK(strstr(rpu_last_error(), "keeps the bias digital") != NULL, "analog bias: %s",
          rpu_last_error());
    CHECK(g.tiles == NULL && g.n_tiles == 0, "failed build leaves a zeroed grid");
    CHECK_STATUS(rpu_tile_grid_build_split((rpu_split)2, 4, 6, 1, 9, 0, 16, 0, 1, &g), RPU_ERR_ARG);
    /* owners: 6 equal tiles of 3 x 12 on 3 ranks, dealt in (out split, in split) order */
    {
        CHECK_OK(rpu_tile_grid_build_split(RPU_SPLIT_TILE_ARRAY, 4, 6, 1, 9, 0, 16, 4, 3, &g));
        const int want[6] = {0, 0, 1, 1, 2, 2};
        int ok = g.n_tiles == 6;
        for (int t = 0; ok && t < 6; ++t)
            ok = g.tiles[t].owner == want[t];
        CHECK(ok, "4->6 3x3 array on 3 ranks: owners 0 0 1 1 2 2");
        check_ownership("tile array", &g, 3);
        rpu_tile_grid_free(&g);
    }
}

/* rpu_update_owners against hand-computed work (RPU_UPDATE_VECTOR_CELLS = 40): grids on 2
 * ranks of one tile each, held by both ranks. */
static void test_update_owners(void) {
    CHECK(RPU_UPDATE_VECTOR_CELLS == 40, "the vector cost is 40 cells (the numbers below)");
    rpu_tile_grid a, b;
    /* conv1 of the LeNet-5 (16 x 25, 36864 vectors) and conv2 (32 x 400, 4096 vectors): whole
     * tiles cost 36864 (40 + 41) = 2985984 and 4096 (40 + 432) = 1769472 + 163840 = 1933312;
     * split by rows each rank 36864 (40 + 20.5) + 4096 (40 + 216) = 3278848. Whole tiles
     * win: the larger to rank 0 (holder 0: both empty, the lowest rank), the other to rank 1
     * (holder 1). */
    CHECK_OK(rpu_tile_grid_build(1, 16, 1, 25, 0, 512, 512, 2, &a));
    CHECK_OK(rpu_tile_grid_build(16, 32, 1, 25, 0, 512, 512, 2, &b));
    CHECK(a.n_tiles == 1 && b.n_tiles == 1 && a.tiles[0].holders == 2 &&
              b.tiles[0].holders == 2 && a.tiles[0].rows * a.tiles[0].cols == 400 &&
              b.tiles[0].rows * b.tiles[0].cols == 12800,
          "two one-tile grids held by both ranks");
    int oa[1] = {7}, ob[1] = {7}, *own[3] = {oa, NULL, ob};
    const rpu_tile_grid *gs[3] = {&a, NULL, &b};
    const int64_t vec[3] = {36864, 999, 4096};
    CHECK_OK(rpu_update_owners(gs, vec, 3, 2, own));
    CHECK(oa[0] == 0 && ob[0] == 1, "LeNet conv1 / conv2: owners %d %d, want 0 1", oa[0], ob[0]);
    /* swapped order: the larger tile is dealt first wherever it is */
    const rpu_tile_grid *gs2[2] = {&b, &a};
    const int64_t vec2[2] = {4096, 36864};
    int *own2[2] = {ob, oa};
    CHECK_OK(rpu_update_owners(gs2, vec2, 2, 2, own2));
    CHECK(oa[0] == 0 && ob[0] == 1, "swapped layers: owners %d %d, want 0 1", oa[0], ob[0]);
    /* one layer: whole 2985984 > split 36864 x 60.5 = 2230272: rows */
    CHECK_OK(rpu_update_owners(gs, vec, 1, 2, own));
    CHECK(oa[0] == -1, "one layer: split by rows (owner %d)", oa[0]);
    rpu_tile_grid_free(&a);
    rpu_tile_grid_free(&b);
    /* linear 500 -> 500 and 1 -> 1, 10 vectors each: whole max 10 (40 + 1000) = 10400,
     * split 10 (40 + 500) + 10 (40 + 1) = 5810: rows */
    CHECK_OK(rpu_tile_grid_build(500, 500, 1, 1, 0, 512, 512, 2, &a));
    CHECK_OK(rpu_tile_grid_build(1, 1, 1, 1, 0, 512, 512, 2, &b));
    const int64_t ten[2] = {10, 10};
    const rpu_tile_grid *gs3[2] = {&a, &b};
    int *own3[2] = {oa, ob};
    CHECK_OK(rpu_update_owners(gs3, ten, 2, 2, own3));
    CHECK(oa[0] == -1 && ob[0] == -1, "a large and a tiny tile: split by rows (%d %d)", oa[0],
          ob[0]);
    CHECK_STATUS(rpu_update_owners(NULL, ten, 2, 2, own3), RPU_ERR_ARG);
    CHECK_STATUS(rpu_update_owners(gs3, ten, 2, 0, own3), RPU_ERR_ARG);
    CHECK_STATUS(rpu_update_owners(gs3, ten, -1, 2, own3), RPU_ERR_ARG);
    rpu_tile_grid_free(&a);
    rpu_tile_grid_free(&b);
}

int main(int argc, char **argv) {
    tl_init(&argc, &argv);
    test_update_owners();
    test_worked_examples();
    test_no_split_and_errors();
    test_groups_and_bias();
    test_ownership();
    test_tile_array();
    return tl_finish();
}
