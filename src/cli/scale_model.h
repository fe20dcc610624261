/* The scale model of `rpusim bench scale` (src/cli/scale_model.c): an alpha-beta model of
 * the MPI calls of a training step plus measured compute per tile, predicting the step
 * time of a network on N ranks placed on nodes of R ranks. Pure computation (no MPI): the
 * measurements come from bench_scale.c, the calls from the library's communication plan
 * (rpu_conv_comm_plan, layer.h) and the placement of tiles from rpu_conv_placement.
 *
 * What it models, per training step (forward of every layer in order, loss, backward in
 * reverse order, update):
 *   - compute of rank r in layer l and phase f: C = F(l,f) + sum over the tiles r holds
 *     of c(t,f) (a tile with several holders: each its share of the batch's MVMs, as
 *     layer.c splits it, and of the rows of an exact update), where F is the replicated part
 * (digital layers, and the assembly of the full reduced output or gradient that every rank does)
 * and c the tile's own work (its MVMs and pulsed update, and its share of the layer's patch
 * gathering), measured on one rank at batch b0 and scaled linearly with the batch;
 *   - processor sharing: ranks of a node share its cores, so a phase takes at least the sum
 *     of the node's ranks' compute over its cores;
 *   - forward and backward synchronise at every layer's reduction: a layer's phase takes
 *     the slowest rank's compute plus the slowest rank's communication; the update sends
 *     nothing, so it takes the slowest rank's summed update;
 *   - each call costs alpha per message and bytes / beta, by the formula of the algorithm a
 *     tuned MPI would pick (the cheapest of those named in scale_model.c), within a node
 *     over shared memory, across nodes hierarchically (reduce in the node, allreduce among
 *     node leaders over the network, broadcast in the node).
 * Not modelled: contention of several messages on one link or of ranks on memory
 * bandwidth, overlap of communication with compute, network topology beyond the two
 * levels, noise and stragglers, OS jitter, cache effects of a smaller per-rank working
 * set, a rank count's effect on the per-tile compute (measured here, on this CPU). */
#ifndef RPUSIM_CLI_SCALE_MODEL_H
#define RPUSIM_CLI_SCALE_MODEL_H

#include "rpusim/layer.h"

#include <stdbool.h>

/* A link: latency alpha (s per message) and bandwidth beta (bytes/s). */
typedef struct {
    double alpha, beta;
} sm_link;

/* Where the ranks run: nodes of per_node ranks (rank r on node r / per_node) with `cores`
 * cores each; `node` links ranks of one node (shared memory), `net` the nodes. */
typedef struct {
    int per_node;
    double cores; /* may be fractional: the CPU a job gets on a shared machine */
    sm_link node, net;
    /* optional (fit_group > 0): an allreduce on fit_group ranks costs fit.alpha +
     * bytes / fit.beta, fitted to allreduces measured on that many ranks, instead of the
     * algorithm formulas */
    int fit_group;
    sm_link fit;
} sm_machine;

/* Cost of one call for one rank: seconds, bytes it sends and messages it sends, and the
 * algorithm the model picked (static text). */
typedef struct {
    double seconds, wire_bytes, messages;
    const char *algo;
} sm_cost;

/* Cost of a call of op with a payload of `bytes` on a communicator of `group` ranks placed
 * on consecutive ranks (node by node) of machine m. */
sm_cost sm_call_cost(const sm_machine *m, rpu_comm_op op, double bytes, int group);

/* One layer of the measured network. */
typedef struct {
    const char *name, *type;
    /* analog layers (NULL p for digital ones): what rpu_conv_placement and
     * rpu_conv_comm_plan need to place its tiles and list its calls */
    const rpu_conv_params *p;
    const rpu_config *cfg;
    int in_size[3];
    bool input_grad;
    double t1[3];    /* measured seconds per phase (forward, backward, update), one rank */
    double fixed[3]; /* of which replicated on every rank (a digital layer: all of it) */
    int n_tiles;
    double *tile[3]; /* [n_tiles] seconds of each tile per phase, layer-side share included */
    /* a tile of several holders (rpu_tile_slot.holders: more ranks than tiles, or every
     * tile on every rank): */
    double *mvm[2];   /* NULL, or [n_tiles] the part of tile[0..1] that the holders split by
                         samples (the tile's own MVMs); the rest every holder repeats */
    bool batch_split; /* rpu_tile_batch_splittable: else every holder computes the batch */
    bool summable;    /* rpu_tile_update_summable: the holders split the update by samples */
    bool row_update;  /* rpu_tile_update_row_splittable: else every holder updates whole */
    double *upd_rep;  /* NULL, or [n_tiles] the fraction of tile[2] that every holder of a
                         row-split update repeats (the columns' pulse trains and each vector's
                         preparation); the rest splits by rows */
    int row_block;    /* rpu_tile_update_row_block: the rows in which the update splits */
    int lout;         /* output pixels per sample (1 for linear): the sample blocks */
} sm_layer;

typedef struct {
    int n_layers;
    sm_layer *layers;
    int batch0;   /* the batch the times were measured at */
    double other; /* replicated seconds per step outside the layers (loss, copies) */
} sm_profile;

/* A prediction for one rank count and batch. Per-phase totals are over the layers. */
typedef struct {
    double step;       /* seconds per training step */
    double compute;    /* of which compute (the slowest rank per synchronised phase) */
    double comm;       /* of which communication */
    double payload;    /* bytes given to MPI calls per step, the busiest rank */
    double wire_bytes; /* bytes sent per step by the busiest rank (model's algorithms) */
    double messages;   /* messages sent per step by the busiest rank */
    int calls;         /* MPI calls per step, the busiest rank */
} sm_result;

/* Predicts a step of prof on `ranks` ranks of machine m with batch `batch`; layer_seconds
 * (NULL or 3 x n_layers): each layer's forward and backward (compute + communication) and
 * update (the slowest rank's) seconds. Errors are those of the plan and placement
 * functions (rpu_last_error()), RPU_ERR_NOMEM. */
rpu_status sm_predict(const sm_profile *prof, const sm_machine *m, int ranks, int batch,
                      sm_result *res, double *layer_seconds);

/* "100Gb/s", "12.5GB/s", "800MB/s", "1e9" (bytes/s) -> bytes/s; "1us", "0.5ms", "2e-6" (s)
 * -> seconds. NULL on success, else what is wrong (static text). */
const char *sm_parse_bandwidth(const char *text, double *bytes_per_s);
const char *sm_parse_latency(const char *text, double *seconds);

#endif
