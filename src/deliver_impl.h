/* Delivery of a layer's partial results to the ranks that own their samples (private to
 * the layer module; DESIGN.md "Distributed model").
 *
 * A layer result is an array [n, C, L] (the output: C output channels, L output pixels;
 * the input gradient: C input channels, L input pixels). Rank q of P owns the samples
 * rpu_batch_part(n, q, P) of it. Each rank has computed some blocks of it: channels
 * [c0, c0 + cc) of samples [s0, s1) for every tile it holds (its share of the batch).
 * rpu_deliver sends to every rank q the values this rank computed for q's samples and
 * receives those of its own samples from the ranks that computed them: only contributors
 * send, only owners receive, nothing else moves. Values are either floats with one
 * contributor per element (copied) or int64 fixed-point terms (added: exact and
 * order-free, so the result does not depend on who computed what).
 *
 * Both sides derive the same run list from the same contribution table (a pure function
 * of the tile grid, the batch and the rank count), so no sizes are exchanged. */
#ifndef RPUSIM_DELIVER_IMPL_H
#define RPUSIM_DELIVER_IMPL_H

#include "rpusim/mapping.h"
#include "rpusim/status.h"

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Channels [c0, c0 + cc) of samples [s0, s1) computed by one rank (one held tile). */
typedef struct {
    int c0, cc, s0, s1;
} rpu_contrib;

/* The contributions of every rank: rank p's are list[first[p] .. first[p + 1]), in
 * ascending c0 (rpu_contrib_build sorts them so). */
typedef struct {
    int ranks;
    int *first; /* [ranks + 1] */
    rpu_contrib *list;
    int count, cap, last, first_cap;
} rpu_contrib_table;

/* Empties t for `ranks` ranks (keeps its memory). Returns 0 when out of memory. */
int rpu_contrib_reset(rpu_contrib_table *t, int ranks);
/* Appends a contribution of rank p; ranks are added in ascending order (p >= the last rank
 * added), a rank's contributions in ascending c0. Returns 0 when out of memory. */
int rpu_contrib_add(rpu_contrib_table *t, int p, rpu_contrib c);
/* Ends the table after the last rpu_contrib_add (the ranks after it have none). */
void rpu_contrib_close(rpu_contrib_table *t);
void rpu_contrib_free(rpu_contrib_table *t);

/* Tiles compute their analog products in BLAS calls of whole samples, at least this many
 * vectors (patches) each: a block is a pure function of the input shape, never of the rank
 * count, so a tile's results do not depend on how its holders split the batch. 32, not
 * more: a linear layer's batch of 64 is then two blocks, which two holders share (on the
 * LeNet-5's 512 -> 128 layer at np 2: 0.77 -> 0.50-0.55 ms per step; on one rank the
 * second block's exact gradient sum costs about 0.07 ms more). */
#define RPU_MAC_BLOCK_MIN_VECTORS 32

/* Samples per MAC block of a layer with Lout output pixels per sample. Local (pure). */
static inline int rpu_block_samples(int Lout) {
    return (RPU_MAC_BLOCK_MIN_VECTORS + Lout - 1) / Lout;
}

/* The share of tile t of grid g in a batch of n that rank `rank` of `size` (one of the
 * tile's holders) computes: samples [c0, c1), of which it contributes [s0, s1) to the
 * layer's results. One holder: everything. Several: consecutive runs of whole blocks of
 * spb samples (the tile's MAC blocks), as even as blocks allow; a tile whose batch cannot
 * be split (batch_split false: rpu_tile_batch_splittable) is computed whole by every
 * holder, to keep their states identical, and contributed by its owner. A tile held by
 * every rank gives the blocks in rank order (else in holder order). Local (pure). */
typedef struct {
    int c0, c1, s0, s1;
} rpu_share;
rpu_share rpu_tile_share(const rpu_tile_grid *g, int t, int rank, int size, int n, int spb,
                         bool batch_split);

/* The contributions of every rank of `size` to the results of a layer with grid g on a
 * batch of n (shares as rpu_tile_share): outputs true: each tile's rows (output channels
 * group * out_per_group + out_ch0 ...); false: its input channels (the input gradient).
 * Returns 0 when out of memory. Local (pure). */
int rpu_contrib_build(rpu_contrib_table *t, const rpu_tile_grid *g, int size, int n, int spb,
                      bool batch_split, bool outputs);
/* Which samples of its share a table lists for a (rank, tile): those the rank contributes
 * (rpu_share s0..s1: a delivery's), those it computes (c0..c1: what it needs of the
 * layer's input and output gradient), the whole batch (a tile whose update needs it), or
 * the whole batch for the holders that update the tile and the computed samples for the
 * others (RPU_SAMPLES_UPDATE: owners[t] = -1, every holder; m >= 0, holder m alone).
 * owners is read only for RPU_SAMPLES_UPDATE. row_block > 0 (outputs only): the holders of
 * a tile with owners[t] = -1 and several holders update rows of it
 * (rpu_holder_rows(row_block)) and keep only those: each takes the tile's rows for the
 * samples it computes and its own rows for the whole batch (0: every row). */
typedef enum {
    RPU_SAMPLES_CONTRIBUTED,
    RPU_SAMPLES_COMPUTED,
    RPU_SAMPLES_ALL,
    RPU_SAMPLES_UPDATE
} rpu_samples;
int rpu_contrib_build_samples(rpu_contrib_table *t, const rpu_tile_grid *g, int size, int n,
                              int spb, bool batch_split, bool outputs, rpu_samples which,
                              const int *owners, int row_block);

/* Rows [r0, r1) of tile ts that its holder m of h updates in a split update: consecutive
 * runs of whole blocks of B rows, as even as blocks allow. Local (pure). */
void rpu_holder_rows(const rpu_tile_slot *ts, int B, int m, int h, int *r0, int *r1);

/* Every rank's samples (rpu_batch_part) of v [n, per sample] to every rank of comm (size
 * P): one MPI_Allgatherv (collective). counts has room for 2 P ints (no allocation here,
 * so nothing can fail on one rank only). Errors: RPU_ERR_ARG (more than INT_MAX values),
 * RPU_ERR_MPI. */
rpu_status rpu_gather_parts(MPI_Comm comm, int P, float *v, int n, size_t per, int *counts);

/* Reusable buffers of rpu_deliver. */
typedef struct {
    void *send, *recv;
    size_t send_cap, recv_cap;
    int *counts; /* [4 * ranks]: send counts, send displs, recv counts, recv displs */
    int counts_cap;
} rpu_deliver_buf;
void rpu_deliver_buf_free(rpu_deliver_buf *b);

typedef enum { RPU_DELIVER_COPY_FLOAT, RPU_DELIVER_ADD_INT64 } rpu_deliver_mode;

/* Elements (values) of [n, C, L] that this rank sends to others and receives from others
 * in rpu_deliver with table t (what MPI_Alltoallv is given: the sums of its send and
 * receive counts). Local. */
void rpu_deliver_volume(const rpu_contrib_table *t, int me, int n, int C, size_t L, int64_t *sent,
                        int64_t *received);

/* Sizes buf for rpu_deliver with table t on rank `me` (element size esize: 4 for floats, 8
 * for int64). Call it before the collective that agrees on errors (the layer's agree_ok /
 * agree_max), so that a failure here is known to every rank before the exchange. Errors:
 * RPU_ERR_NOMEM, RPU_ERR_ARG (more than INT_MAX values for one peer). Local. */
rpu_status rpu_deliver_prepare(const rpu_contrib_table *t, int me, int n, int C, size_t L,
                               size_t esize, rpu_deliver_buf *buf);

/* data [n, C, L] holds this rank's contributions (float values, or int64 terms summed over
 * the tiles it holds); on return the elements of its samples rpu_batch_part(n, me, P) hold
 * the complete result: for floats the one contributor's value, for int64 the sum of every
 * rank's terms. The other samples' elements are left as they were. buf must have been
 * prepared (rpu_deliver_prepare) for the same arguments. One MPI_Alltoallv on comm
 * (collective). Errors: RPU_ERR_MPI. */
rpu_status rpu_deliver(MPI_Comm comm, rpu_deliver_mode mode, const rpu_contrib_table *t, int n,
                       int C, size_t L, void *data, rpu_deliver_buf *buf);

/* Fetch: the reverse of a delivery. Table t lists what every rank needs of an array
 * [n, C, L] (rpu_contrib_build_samples: its tiles' channels, the samples it computes);
 * every rank holds the elements of its own samples (rpu_batch_part). rpu_fetch sends each
 * rank what it needs of this rank's samples and receives what this rank needs of the
 * others' (one MPI_Alltoallv of floats, collective); afterwards data holds every element
 * this rank needs, its other elements as they were. rpu_fetch_prepare sizes buf first
 * (local; errors RPU_ERR_NOMEM, RPU_ERR_ARG: more than INT_MAX values); rpu_fetch_volume
 * gives the elements this rank sends and receives (local). */
rpu_status rpu_fetch_prepare(const rpu_contrib_table *t, int me, int n, int C, size_t L,
                             rpu_deliver_buf *buf);
rpu_status rpu_fetch(MPI_Comm comm, const rpu_contrib_table *t, int n, int C, size_t L, float *data,
                     rpu_deliver_buf *buf);
void rpu_fetch_volume(const rpu_contrib_table *t, int me, int n, int C, size_t L, int64_t *sent,
                      int64_t *received);

#endif
