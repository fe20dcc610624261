/* Delivery of partial results to the owners of their samples (deliver_impl.h). */
#include "deliver_impl.h"

#include "error_impl.h"
#include "rpusim/layer.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

void rpu_batch_part(int n, int rank, int size, int *s0, int *s1) {
    if (size < 1 || rank < 0 || rank >= size || n < 0) {
        *s0 = *s1 = 0;
        return;
    }
    *s0 = (int)((int64_t)n * rank / size);
    *s1 = (int)((int64_t)n * (rank + 1) / size);
}

rpu_status rpu_gather_parts(MPI_Comm comm, int P, float *v, int n, size_t per, int *counts) {
    if (P == 1) return RPU_OK;
    if ((size_t)n * per > (size_t)INT_MAX)
        return RPU_FAIL(RPU_ERR_ARG, "more than %d values in one batch's results", INT_MAX);
    int *displs = counts + P;
    for (int q = 0; q < P; ++q) {
        int s0, s1;
        rpu_batch_part(n, q, P, &s0, &s1);
        counts[q] = (int)((size_t)(s1 - s0) * per);
        displs[q] = (int)((size_t)s0 * per);
    }
    const int rc =
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v, counts, displs, MPI_FLOAT, comm);
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        return RPU_FAIL(RPU_ERR_MPI, "MPI_Allgatherv of every rank's samples failed: %s", msg);
    }
    return RPU_OK;
}

bool rpu_conv_own_samples_rule(const rpu_tile_grid *g, int ranks, int64_t Lout, bool batch_split,
                               bool summable) {
    /* every tile held by every rank, one sample per MAC block: rpu_tile_share gives rank q
     * the blocks (samples) rpu_batch_part gives it, in every tile */
    if (!g || g->n_tiles < 1 || !batch_split || !summable || Lout < 1 ||
        rpu_block_samples((int)Lout) != 1)
        return false;
    if (ranks == 1) return g->n_tiles == 1;
    for (int t = 0; t < g->n_tiles; ++t)
        if (g->tiles[t].holders != ranks) return false;
    return true;
}

/* ------------------------------------------------------------------ the table */

int rpu_contrib_reset(rpu_contrib_table *t, int ranks) {
    if (ranks + 1 > t->first_cap) {
        int *f = (int *)realloc(t->first, sizeof(int) * (size_t)(ranks + 1));
        if (!f) return 0;
        t->first = f;
        t->first_cap = ranks + 1;
    }
    t->ranks = ranks;
    t->count = 0;
    t->last = -1;
    return 1;
}

int rpu_contrib_add(rpu_contrib_table *t, int p, rpu_contrib c) {
    if (t->count == t->cap) {
        const int cap = t->cap ? 2 * t->cap : 16;
        rpu_contrib *l = (rpu_contrib *)realloc(t->list, sizeof *l * (size_t)cap);
        if (!l) return 0;
        t->list = l;
        t->cap = cap;
    }
    for (int q = t->last + 1; q <= p; ++q) /* ranks up to p start here (none before) */
        t->first[q] = t->count;
    t->last = p;
    t->list[t->count++] = c;
    return 1;
}

void rpu_contrib_close(rpu_contrib_table *t) {
    for (int q = t->last + 1; q <= t->ranks; ++q)
        t->first[q] = t->count;
    t->last = t->ranks;
}

void rpu_contrib_free(rpu_contrib_table *t) {
    free(t->first);
    free(t->list);
    memset(t, 0, sizeof *t);
}

void rpu_deliver_buf_free(rpu_deliver_buf *b) {
    free(b->send);
    free(b->recv);
    free(b->counts);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ shares */

rpu_share rpu_tile_share(const rpu_tile_grid *g, int t, int rank, int size, int n, int spb,
                         bool batch_split) {
    const rpu_tile_slot *ts = &g->tiles[t];
    const int h = ts->holders, m = rpu_tile_holder_index(ts, rank, size);
    rpu_share r = {0, n, 0, n};
    if (h <= 1) return r;
    if (!batch_split) {
        if (m != 0) r.s1 = 0;
        return r;
    }
    /* a tile held by every rank: blocks in rank order, so that with one sample per block
     * a rank computes exactly its own samples (rpu_batch_part) */
    const int q = h == size ? rank : m;
    const int nb = (n + spb - 1) / spb;
    const int b0 = (int)((int64_t)nb * q / h), b1 = (int)((int64_t)nb * (q + 1) / h);
    r.c0 = r.s0 = b0 * spb < n ? b0 * spb : n;
    r.c1 = r.s1 = b1 * spb < n ? b1 * spb : n;
    return r;
}

typedef struct {
    int rank, t, m; /* m: the rank's holder index of tile t */
    rpu_contrib c;  /* channels set; samples from the rank's share */
} held;

/* by rank, then first channel (runs() merges a rank's ranges in this order), then tile */
static int cmp_held(const void *a, const void *b) {
    const held *x = (const held *)a, *y = (const held *)b;
    if (x->rank != y->rank) return (x->rank > y->rank) - (x->rank < y->rank);
    if (x->c.c0 != y->c.c0) return (x->c.c0 > y->c.c0) - (x->c.c0 < y->c.c0);
    return (x->t > y->t) - (x->t < y->t);
}

int rpu_contrib_build(rpu_contrib_table *tab, const rpu_tile_grid *g, int size, int n, int spb,
                      bool batch_split, bool outputs) {
    return rpu_contrib_build_samples(tab, g, size, n, spb, batch_split, outputs,
                                     RPU_SAMPLES_CONTRIBUTED, NULL, 0);
}

void rpu_holder_rows(const rpu_tile_slot *ts, int B, int m, int h, int *r0, int *r1) {
    const int nb = (ts->rows + B - 1) / B;
    const int b0 = (int)((int64_t)nb * m / h), b1 = (int)((int64_t)nb * (m + 1) / h);
    *r0 = b0 * B < ts->rows ? b0 * B : ts->rows;
    *r1 = b1 * B < ts->rows ? b1 * B : ts->rows;
}

int rpu_contrib_build_samples(rpu_contrib_table *tab, const rpu_tile_grid *g, int size, int n,
                              int spb, bool batch_split, bool outputs, rpu_samples which,
                              const int *owners, int row_block) {
    /* every (holder, tile) pair, twice where a holder of a split update takes its own rows of
     * the samples it does not compute */
    size_t nh = 0;
    for (int t = 0; t < g->n_tiles; ++t)
        nh += (size_t)(g->tiles[t].holders > 1 ? 2 * g->tiles[t].holders : 1);
    held *hs = (held *)malloc(sizeof *hs * (nh ? nh : 1));
    if (!hs || !rpu_contrib_reset(tab, size)) {
        free(hs);
        return 0;
    }
    nh = 0;
    for (int t = 0; t < g->n_tiles; ++t) {
        const rpu_tile_slot *ts = &g->tiles[t];
        const int h = ts->holders > 1 ? ts->holders : 1;
        const rpu_contrib c =
            outputs ? (rpu_contrib){ts->group * g->out_per_group + ts->out_ch0, ts->rows, 0, 0}
                    : (rpu_contrib){ts->group * g->in_per_group + ts->in_ch0, ts->in_ch, 0, 0};
        for (int m = 0; m < h; ++m) {
            const int rank = (ts->owner + m) % size;
            const rpu_share sh = rpu_tile_share(g, t, rank, size, n, spb, batch_split);
            const int own = which == RPU_SAMPLES_UPDATE ? owners[t] : 0;
            const bool updates = which == RPU_SAMPLES_UPDATE && (own < 0 || own == m);
            const bool rows = updates && own < 0 && h > 1 && outputs && row_block > 0;
            const bool all = which == RPU_SAMPLES_ALL || (updates && !rows);
            const bool computed = which == RPU_SAMPLES_COMPUTED || which == RPU_SAMPLES_UPDATE;
            rpu_contrib e = c;
            e.s0 = all ? 0 : computed ? sh.c0 : sh.s0;
            e.s1 = all ? n : computed ? sh.c1 : sh.s1;
            if (e.s1 > e.s0) hs[nh++] = (held){rank, t, m, e};
            if (!rows) continue;
            /* its rows of the update for the whole batch (those of its computed samples are
             * in the entry above already) */
            int r0, r1;
            rpu_holder_rows(ts, row_block, m, h, &r0, &r1);
            e = (rpu_contrib){c.c0 + r0, r1 - r0, 0, n};
            if (r1 > r0) hs[nh++] = (held){rank, t, m, e};
        }
    }
    qsort(hs, nh, sizeof *hs, cmp_held);
    int ok = 1;
    for (size_t k = 0; k < nh && ok; ++k)
        ok = rpu_contrib_add(tab, hs[k].rank, hs[k].c);
    rpu_contrib_close(tab);
    free(hs);
    return ok;
}

/* ------------------------------------------------------------------ runs */

/* Calls f(off, len, arg) for every run of [n, C, L] that rank p computed for the samples
 * of rank q: sample by sample in ascending order, within a sample the union of p's
 * channel ranges that hold it, in ascending order (a rank holding several tiles with the
 * same channels sends their summed terms once). Returns the total length. */
typedef void (*run_fn)(size_t off, size_t len, void *arg);

static int64_t runs(const rpu_contrib_table *t, int p, int q, int n, int C, size_t L, run_fn f,
                    void *arg) {
    int q0, q1;
    rpu_batch_part(n, q, t->ranks, &q0, &q1);
    const rpu_contrib *c = t->list + t->first[p];
    const int k = t->first[p + 1] - t->first[p];
    int64_t total = 0;
    for (int nn = q0; nn < q1; ++nn) {
        /* p's channel ranges that hold sample nn, in ascending start (the table's order),
         * overlapping or adjacent ones merged */
        int lo = 0, hi = -1;
        for (int e = 0; e <= k; ++e) {
            const bool in = e < k && nn >= c[e].s0 && nn < c[e].s1 && c[e].cc > 0;
            if (in && hi >= 0 && c[e].c0 <= hi) {
                if (c[e].c0 + c[e].cc > hi) hi = c[e].c0 + c[e].cc;
                continue;
            }
            if ((in || e == k) && hi >= 0) { /* emit the range so far */
                const size_t off = ((size_t)nn * C + (size_t)lo) * L;
                const size_t len = (size_t)(hi - lo) * L;
                if (f) f(off, len, arg);
                total += (int64_t)len;
                hi = -1;
            }
            if (in) lo = c[e].c0, hi = c[e].c0 + c[e].cc;
        }
    }
    return total;
}

void rpu_deliver_volume(const rpu_contrib_table *t, int me, int n, int C, size_t L, int64_t *sent,
                        int64_t *received) {
    int64_t s = 0, r = 0;
    for (int q = 0; q < t->ranks; ++q) {
        if (q == me) continue;
        s += runs(t, me, q, n, C, L, NULL, NULL);
        r += runs(t, q, me, n, C, L, NULL, NULL);
    }
    if (sent) *sent = s;
    if (received) *received = r;
}

/* Counts and buffers of an exchange with table t: a delivery sends me's runs for each q
 * (runs(t, me, q)) and receives q's for me (runs(t, q, me)); a fetch (reverse) sends each q
 * what q needs of me's samples (runs(t, q, me)) and receives what me needs of q's
 * (runs(t, me, q)). */
static rpu_status prepare(const rpu_contrib_table *t, int me, int n, int C, size_t L, size_t esize,
                          bool reverse, rpu_deliver_buf *buf) {
    const int P = t->ranks;
    if (buf->counts_cap < 4 * P) {
        int *c = (int *)realloc(buf->counts, sizeof(int) * 4 * (size_t)P);
        if (!c) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the delivery to %d ranks", P);
        buf->counts = c;
        buf->counts_cap = 4 * P;
    }
    int *sc = buf->counts, *sd = sc + P, *rc = sd + P, *rd = rc + P;
    int64_t st = 0, rt = 0;
    for (int q = 0; q < P; ++q) {
        const int64_t a = q == me ? 0 : runs(t, me, q, n, C, L, NULL, NULL);
        const int64_t b = q == me ? 0 : runs(t, q, me, n, C, L, NULL, NULL);
        const int64_t s = reverse ? b : a, r = reverse ? a : b;
        if (st + s > INT_MAX || rt + r > INT_MAX)
            return RPU_FAIL(RPU_ERR_ARG,
                            "a delivery of more than %d values per rank (batch %d x %d channels "
                            "x %zu pixels): use a smaller batch",
                            INT_MAX, n, C, L);
        sc[q] = (int)s, sd[q] = (int)st, rc[q] = (int)r, rd[q] = (int)rt;
        st += s, rt += r;
    }
    const size_t sb = (size_t)(st ? st : 1) * esize, rb = (size_t)(rt ? rt : 1) * esize;
    if (sb > buf->send_cap) {
        void *p = realloc(buf->send, sb);
        if (!p) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the delivery (%zu bytes)", sb);
        buf->send = p, buf->send_cap = sb;
    }
    if (rb > buf->recv_cap) {
        void *p = realloc(buf->recv, rb);
        if (!p) return RPU_FAIL(RPU_ERR_NOMEM, "out of memory for the delivery (%zu bytes)", rb);
        buf->recv = p, buf->recv_cap = rb;
    }
    return RPU_OK;
}

rpu_status rpu_deliver_prepare(const rpu_contrib_table *t, int me, int n, int C, size_t L,
                               size_t esize, rpu_deliver_buf *buf) {
    return prepare(t, me, n, C, L, esize, false, buf);
}

rpu_status rpu_fetch_prepare(const rpu_contrib_table *t, int me, int n, int C, size_t L,
                             rpu_deliver_buf *buf) {
    return prepare(t, me, n, C, L, sizeof(float), true, buf);
}

void rpu_fetch_volume(const rpu_contrib_table *t, int me, int n, int C, size_t L, int64_t *sent,
                      int64_t *received) {
    rpu_deliver_volume(t, me, n, C, L, received, sent); /* the delivery's, the other way */
}

typedef struct {
    char *data, *buf;
    size_t esize, pos;
    rpu_deliver_mode mode;
} cursor;

static void pack(size_t off, size_t len, void *arg) {
    cursor *c = (cursor *)arg;
    memcpy(c->buf + c->pos * c->esize, c->data + off * c->esize, len * c->esize);
    c->pos += len;
}

static void unpack(size_t off, size_t len, void *arg) {
    cursor *c = (cursor *)arg;
    if (c->mode == RPU_DELIVER_COPY_FLOAT) {
        memcpy(c->data + off * c->esize, c->buf + c->pos * c->esize, len * c->esize);
    } else {
        int64_t *d = (int64_t *)(void *)c->data + off;
        const int64_t *s = (const int64_t *)(void *)c->buf + c->pos;
        for (size_t i = 0; i < len; ++i)
            d[i] += s[i];
    }
    c->pos += len;
}

/* The exchange of a delivery (reverse false: me's runs for each q out, q's runs for me in)
 * or a fetch (true: what each q needs of me's samples out, what me needs of q's in). */
static rpu_status exchange(MPI_Comm comm, rpu_deliver_mode mode, const rpu_contrib_table *t, int n,
                           int C, size_t L, void *data, rpu_deliver_buf *buf, bool reverse) {
    const int P = t->ranks;
    int me = 0;
    MPI_Comm_rank(comm, &me);
    const size_t esize = mode == RPU_DELIVER_COPY_FLOAT ? sizeof(float) : sizeof(int64_t);
    const MPI_Datatype type = mode == RPU_DELIVER_COPY_FLOAT ? MPI_FLOAT : MPI_INT64_T;
    const int *sc = buf->counts, *sd = sc + P, *rc = sd + P, *rd = rc + P;
    cursor c = {(char *)data, (char *)buf->send, esize, 0, mode};
    for (int q = 0; q < P; ++q)
        if (q != me) runs(t, reverse ? q : me, reverse ? me : q, n, C, L, pack, &c);
    int err = MPI_Alltoallv(buf->send, sc, sd, type, buf->recv, rc, rd, type, comm);
    if (err != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(err, msg, &len);
        return RPU_FAIL(RPU_ERR_MPI, "MPI_Alltoallv failed: %s", msg);
    }
    c.buf = (char *)buf->recv;
    c.pos = 0;
    for (int q = 0; q < P; ++q)
        if (q != me) runs(t, reverse ? me : q, reverse ? q : me, n, C, L, unpack, &c);
    return RPU_OK;
}

rpu_status rpu_deliver(MPI_Comm comm, rpu_deliver_mode mode, const rpu_contrib_table *t, int n,
                       int C, size_t L, void *data, rpu_deliver_buf *buf) {
    return exchange(comm, mode, t, n, C, L, data, buf, false);
}

rpu_status rpu_fetch(MPI_Comm comm, const rpu_contrib_table *t, int n, int C, size_t L, float *data,
                     rpu_deliver_buf *buf) {
    return exchange(comm, RPU_DELIVER_COPY_FLOAT, t, n, C, L, data, buf, true);
}
