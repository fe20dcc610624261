/* The mapped layer's state and the helpers its files share (internal: layer.c, the
 * forward, backward and weights; layer_update.c, the gradients and the update). */
#ifndef RPUSIM_LAYER_IMPL_H
#define RPUSIM_LAYER_IMPL_H

#include "rpusim/layer.h"

#include "agree_impl.h"
#include "deliver_impl.h"
#include "error_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rpu_conv {
    MPI_Comm comm;
    int rank, size;
    /* the holders of this rank's tile (holder index order) when it has several (more ranks
       than tiles), or every rank when every tile is on every rank (rpu_hold_everywhere): they
       add an exact update or split a pulsed one by rows and exchange them (have_hcomm 0:
       none) */
    MPI_Comm hcomm;
    int have_hcomm;
    rpu_conv_params p;
    int ndim; /* 0 for linear */
    rpu_config cfg;
    rpu_tile_grid grid;
    rpu_tile **tiles; /* [n_tiles], NULL where not owned */
    int K;            /* kernel elements */
    int k3[3], s3[3], p3[3], d3[3];
    char label[RPU_LAYER_NAME_MAX + 16]; /* the name, or the layer id, for messages */
    float *bias;                         /* digital bias [out] or NULL */
    float *bias_grad; /* [out] gradient of the bias (either kind) of the last backward */
    bool training;
    int have_bgrad; /* bias_grad is from a backward of the last forward */
    /* last forward / backward */
    int n, in3[3], out3[3], Lin, Lout;
    int have_x, have_dy;
    float *xp, *dp; /* training: patches (pulsed update) and gradients of the owned tiles, tile
                       after tile (tiles of one input split share their patches) */
    float *xin;     /* training with a summed update: the input x [n, C, Lin] (its samples that
                       the tiles read), from which the update gathers its blocks' patches */
    size_t xin_cap;
    size_t *xoffs; /* [n_tiles] offset of each owned tile's patches in xp */
    int *uowner;   /* [n_tiles] announced update owners (rpu_conv_set_update_owners; -1: none) */
    int *kowner;   /* [n_tiles] (after uowner) those of the last forward's shape: its kept data */
    size_t xp_cap, dp_cap;
    /* workspaces */
    float *pbuf; /* patches / gradients of one tile */
    size_t pbuf_cap;
    float *obuf; /* outputs of all owned tiles */
    size_t obuf_cap;
    float *sbuf; /* one tile's pass: its results and input vectors, of a block or the batch */
    size_t sbuf_cap;
    float *xmax, *dmax; /* training with a summed update: [n_tiles, n] each sample's max |patch
                           value| and max |gradient| of a tile (the update's bound) */
    size_t xmax_cap, dmax_cap;
    int64_t *acc;
    size_t acc_cap;
    /* delivery of results to the owners of their samples (deliver_impl.h) */
    rpu_contrib_table ctab;
    rpu_deliver_buf dbuf;
    bool batch_split; /* rpu_tile_batch_splittable of the layer's tiles (a config property) */
    bool summable;    /* rpu_tile_update_summable of the layer's tiles (a config property) */
    bool x_all;       /* rpu_tile_forward_reads_all of the layer's tiles (a config property) */
    bool own;         /* the last forward's shape reads only own samples (rpu_conv_own_samples) */
    bool split;       /* rpu_tile_update_row_splittable of the layer's tiles (a config property) */
    int row_block;    /* rpu_tile_update_row_block of the layer's tiles (a config property) */
    /* owners announced (rpu_conv_set_update_owners with an array, a split update): a tile
     * with owner -1 and several holders is updated by rows, and its holders keep only their
     * rows of the output gradient for the samples they do not compute (uann; kann: as
     * announced before the last forward) */
    bool uann, kann;
    float *umax; /* [n Lout] a split update's maxima of the gradient (rpu_tile_update_row_maxima) */
    size_t umax_cap;
    float ulr;        /* the learning rate of the last rpu_conv_update_begin */
    double *bsum;     /* [n, out] per-sample bias-gradient sums */
    size_t bsum_cap;
    int *bcounts; /* [2 size] counts and displacements of their gather */
    /* realistic read-out: probe rows per input column, and read-outs so far (the same on
     * every rank: the read-out is collective) */
    int readout_oversampling;
    uint64_t readout_calls;
};

struct rpu_linear {
    rpu_conv *c;
};

/* ------------------------------------------------------------------ small helpers */

static inline int grow(void **buf, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return 1;
    void *p = realloc(*buf, bytes);
    if (!p) return 0;
    *buf = p;
    *cap = bytes;
    return 1;
}

static inline rpu_status mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return RPU_FAIL(RPU_ERR_MPI, "%s failed: %s", what, msg);
}

/* What messages call the layer of parameters p: its name, else its layer id. */
static inline void params_label(const rpu_conv_params *p, char *buf, size_t n) {
    if (p->name[0])
        snprintf(buf, n, "%.*s", RPU_LAYER_NAME_MAX, p->name);
    else
        snprintf(buf, n, "%u", p->layer_id);
}

/* The checkpoint key of tile t ("i_j", or "g<g>_i_j" with groups). */
static inline void tile_key(const rpu_conv *l, int t, char *buf, size_t n) {
    const rpu_tile_slot *ts = &l->grid.tiles[t];
    if (l->grid.groups > 1)
        snprintf(buf, n, "g%d_%d_%d", ts->group, ts->in_split, ts->out_split);
    else
        snprintf(buf, n, "%d_%d", ts->in_split, ts->out_split);
}

/* A tile's failure, with the layer and the tile in front of the tile's message. */
static inline rpu_status tile_error(const rpu_conv *l, int t, rpu_status s) {
    if (s == RPU_OK) return s;
    char key[48];
    tile_key(l, t, key, sizeof key);
    return rpu_error_prefix(s, "layer %s, tile %d (%s)", l->label, t, key);
}

/* The NULL-bias rule (layer.h): an array exactly when the layer has a bias. */
static inline rpu_status bias_rule(const rpu_conv *l, const void *bias, const char *fn,
                                   const char *arg) {
    const bool has = l->p.bias != RPU_BIAS_NONE;
    if (has && !bias)
        return RPU_FAIL(RPU_ERR_ARG, "layer %s: %s: %s is NULL, but the layer has a%s bias",
                        l->label, fn, arg, l->p.bias == RPU_BIAS_ANALOG ? "n analog" : " digital");
    if (!has && bias)
        return RPU_FAIL(RPU_ERR_ARG,
                        "layer %s: %s: %s given, but the layer has no bias (pass NULL)", l->label,
                        fn, arg);
    return RPU_OK;
}

/* Global output channel of row r of tile ts. */
static inline int out_channel(const rpu_conv *l, const rpu_tile_slot *ts, int r) {
    return ts->group * l->grid.out_per_group + ts->out_ch0 + r;
}

/* Every rank learns whether any rank failed before the next collective: every rank gets
 * the status and message of the lowest failing rank (rpu_agree). */
static inline rpu_status agree_ok(rpu_conv *l, rpu_status local) {
    return rpu_agree(l->comm, local);
}

/* ------------------------------------------------------------------ holders' shares */

/* Samples per MAC block of the last forward's shape. */
static inline int block_samples(const rpu_conv *l) {
    return rpu_block_samples(l->Lout);
}

/* This rank's share of held tile t in the last forward's batch (rpu_tile_share). */
typedef rpu_share share;

static inline share holder_share(const rpu_conv *l, int t) {
    return rpu_tile_share(&l->grid, t, l->rank, l->size, l->n, block_samples(l), l->batch_split);
}

/* Whether this rank keeps every sample of held tile t for a training step: the tile's update
 * is pulsed (not summable) and no owner is announced for it (rpu_conv_set_update_owners with
 * NULL: every holder updates rows, or the update does not split and each runs it whole; a
 * tile of one holder), or this
 * rank is the owner announced before the last forward (kowner). */
static inline bool keeps_all(const rpu_conv *l, int t) {
    if (!l->training || l->summable) return false;
    const int m = l->kowner[t];
    if (m < 0) return !l->kann || l->grid.tiles[t].holders < 2;
    return m == rpu_tile_holder_index(&l->grid.tiles[t], l->rank, l->size);
}

/* Whether this rank keeps only its update rows of tile t's output gradient for the samples
 * it does not compute (a training tile whose split by rows was announced: kann), and all of
 * its patches. */
static inline bool keeps_rows(const rpu_conv *l, int t) {
    return l->training && !l->summable && l->kann && l->kowner[t] < 0 &&
           l->grid.tiles[t].holders > 1 &&
           rpu_tile_holder_index(&l->grid.tiles[t], l->rank, l->size) >= 0;
}

/* ------------------------------------------------------------------ layer_stages.c */

/* Grows l->xmax and l->dmax for the batch when the layer keeps the update's maxima
 * (training, summed update); 0 when out of memory. */
int rpu_conv_keep_maxima(rpu_conv *l);

/* Patches of samples [s0, s1) of tile t from x [n, C, Lin] into X [(s1 - s0) Lout, cols]. */
void rpu_conv_gather_patches(const rpu_conv *l, int t, const float *x, float *X, int s0, int s1);

/* Gradient rows of samples [s0, s1) of tile t into their rows of D [n Lout, rows] from dy
 * [n, Cout, Lout], the tile's rows [r0, r1) of each (and their maxima, when kept: all rows). */
void rpu_conv_gather_grads(rpu_conv *l, int t, const float *dy, float *D, int s0, int s1, int r0,
                           int r1);

/* Rows [r0, r1) of held tile t that this rank updates in a split by rows (layer_update.c). */
void rpu_conv_update_rows(const rpu_conv *l, int t, int *r0, int *r1);

/* Held tile t's forward of this rank's share, stage by stage per MAC block
 * (rpu_tile_forward_staged): X the tile's patches [n Lout, cols] (kept for a pulsed update,
 * or pbuf for a pass that does not go by blocks), or NULL for a block's buffer (by blocks),
 * gathered here from x when make (samples [g0, g1): the computed ones and those the update
 * needs). The results of the samples it contributes go to dst: with
 * direct, the layer's output y [n, Cout, Lout] (+ the digital bias); else the tile's own
 * output planes [n, rows, Lout], with *lmax raised to their max |value| (NaN sticky). */
rpu_status rpu_conv_tile_forward(rpu_conv *l, int t, const float *x, float *X, int make, int g0,
                                 int g1, float *dst, int direct, double *lmax);

/* Held tile t's backward of this rank's share: its gradient rows D [n Lout, rows] (kept by a
 * training backward) or NULL to make them from dy per block; col2im of the contributed
 * samples into dst: with direct, dx [n, C, Lin] (the tile's channels); else the tile's own
 * images [n, in_ch, Lin], with *lmax raised to the max |input-gradient row value|. */
rpu_status rpu_conv_tile_backward(rpu_conv *l, int t, const float *dy, float *D, float *dst,
                                  int direct, double *lmax);

#endif
