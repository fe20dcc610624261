/* rpusim — mapped convolution (1d/2d/3d) and mapped linear layers whose tiles are spread
 * over the ranks of a communicator (aihwkit's AnalogConvNdMapped / AnalogLinearMapped,
 * spec §1, §7; DESIGN.md "Distributed model"), and with rpu_conv_params.split =
 * RPU_SPLIT_TILE_ARRAY aihwkit 1.1's AnalogConvNd / AnalogLinear over a TileModuleArray
 * (mapping.h: a tile covers an arbitrary column range of the unfolded patch).
 *
 * A layer duplicates the communicator it is created on. Activations are replicated: every
 * rank passes the same full input and receives the same full output. Each tile is owned by
 * one rank (rpu_tile_grid.owner); forward and backward run the owned tiles and reduce their
 * partial results across ranks; update touches only owned tiles and communicates nothing.
 *
 * Results do not depend on the number of ranks: every random number comes from the
 * tile's own streams (seed, layer_id, tile index), and partial results are summed exactly
 * in 64-bit fixed point (scale 2^S from the global maximum), so the sum does not depend on
 * which rank holds which term.
 *
 * Tensor layouts follow PyTorch (float32, row-major): inputs [N, C, L], [N, C, H, W],
 * [N, C, D, H, W]; conv weights [out, in/groups, k...]; linear [N, in] -> [N, out] with
 * weights [out, in].
 *
 * Conventions of this API (rpusim/rpusim.h lists them for the whole library):
 *   - Collectivity. "Collective" means every rank of the layer's communicator calls the
 *     function, in the same order relative to the layer's other collective calls, with the
 *     same arguments (replicated inputs); "local" means a rank may call it alone.
 *   - Bias. A layer's bias is one of RPU_BIAS_NONE, RPU_BIAS_DIGITAL (a float per output,
 *     added after the tiles, replicated on every rank) or RPU_BIAS_ANALOG (an extra tile
 *     column driven by 1 on the tiles of input split 0), chosen by rpu_conv_params.bias
 *     alone; the layer does not read cfg->mapping.digital_bias (rpu_bias_for_config turns
 *     aihwkit's bias flag + mapping.digital_bias into a kind). Every function that takes a
 *     bias array (set_weights, from_digital, program_weights, get_weights, get_grad,
 *     get/set_digital_bias) follows one rule: the array ([out] floats) is given exactly
 *     when the layer has a bias (any kind) and is NULL when it has none; anything else is
 *     RPU_ERR_ARG. The digital bias is a digital parameter: rpu_conv_update leaves it to
 *     the caller's optimizer (rpu_conv_get_grad gives its gradient,
 *     rpu_conv_set_digital_bias the new values).
 *   - Outputs are written only on success (on an error their contents are unspecified
 *     unless the function says otherwise); no function keeps a pointer to caller memory.
 *   - Errors name the layer (rpu_conv_params.name, else "layer <layer_id>") and, for a
 *     tile's failure, the tile (index and checkpoint key, e.g. "tile 3 (0_1)"). */
#ifndef RPUSIM_LAYER_H
#define RPUSIM_LAYER_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpusim/config.h"
#include "rpusim/mapping.h"
#include "rpusim/status.h"
#include "rpusim/tile.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rpu_conv rpu_conv;

typedef enum {
    RPU_PAD_ZEROS = 0, /* the only mode supported (as aihwkit) */
    RPU_PAD_REFLECT,
    RPU_PAD_REPLICATE,
    RPU_PAD_CIRCULAR
} rpu_padding_mode;

/* Where a layer's bias lives (see the conventions above). */
typedef enum {
    RPU_BIAS_NONE = 0,    /* no bias (torch bias=False) */
    RPU_BIAS_DIGITAL = 1, /* digital bias added after the tiles (aihwkit's mapped layers) */
    RPU_BIAS_ANALOG = 2   /* an analog bias column on the tiles of input split 0 */
} rpu_bias;

/* How rpu_conv_get_weights reads the tiles. */
typedef enum {
    RPU_READ_EXACT = 0,    /* the stored weights times the mapping scales */
    RPU_READ_REALISTIC = 1 /* estimated from noisy read-outs (aihwkit's realistic=True) */
} rpu_weight_read;

/* Longest layer name (for messages), without the terminating NUL. */
#define RPU_LAYER_NAME_MAX 63

typedef struct {
    int ndim; /* 1, 2 or 3 */
    int in_channels;
    int out_channels;
    int kernel[3]; /* first ndim entries used */
    int stride[3];
    int padding[3];
    int dilation[3];
    int groups; /* in_channels and out_channels divisible by groups */
    rpu_bias bias;
    rpu_padding_mode padding_mode;
    bool use_indexed;                  /* aihwkit's choice between an index table (true) and
                                          unfold loops (false); kept and checkpointed, but
                                          rpusim gathers patches the same way for both (the
                                          results never depended on it) */
    uint32_t layer_id;                 /* key of the layer's random streams */
    uint64_t seed;                     /* run seed */
    rpu_mac_mode mac;                  /* analog MAC of the tiles (RPU_MAC_BLAS default) */
    char name[RPU_LAYER_NAME_MAX + 1]; /* for messages ("" : "layer <layer_id>") */
    rpu_split split;                   /* how the input columns are split onto tiles (mapping.h):
                                          RPU_SPLIT_MAPPED (0, default; aihwkit's *Mapped classes) or
                                          RPU_SPLIT_TILE_ARRAY (aihwkit 1.1's AnalogConvNd / AnalogLinear).
                                          A property of the layer, not of the rpu_config: in aihwkit the same
                                          rpu_config serves both module kinds. */
} rpu_conv_params;

/* aihwkit's layer bias flag and mapping.digital_bias as a bias kind: NONE without a bias,
 * else DIGITAL when cfg->mapping.digital_bias (aihwkit's default), else ANALOG. cfg NULL:
 * DIGITAL. Local (pure). */
rpu_bias rpu_bias_for_config(bool bias, const rpu_config *cfg);

/* The bias kind aihwkit gives a layer of split `split` with in_features (conv:
 * in_channels/groups * prod(kernel)) and out_features (conv: out_channels/groups): for
 * RPU_SPLIT_MAPPED rpu_bias_for_config; for RPU_SPLIT_TILE_ARRAY DIGITAL when aihwkit 1.1
 * builds a TileModuleArray (rpu_tile_array_used: the array always adds the bias
 * digitally), else rpu_bias_for_config (one tile, whose bias follows
 * mapping.digital_bias). cfg NULL: DIGITAL. Local (pure). */
rpu_bias rpu_bias_for_split(bool bias, const rpu_config *cfg, rpu_split split, int in_features,
                            int out_features);

/* Fills p for an ndim-d convolution (ndim 1, 2 or 3) in -> out channels with a cubic
 * kernel k: stride 1, padding 0, dilation 1, groups 1, digital bias, zeros padding,
 * use_indexed as the default (see README), layer_id 0, seed 0, RPU_MAC_BLAS, name "",
 * mapped split.
 * Local (pure). */
void rpu_conv_params_default(rpu_conv_params *p, int ndim, int in_channels, int out_channels,
                             int k);

/* aihwkit's get_tile_size: (in_channels / groups) * prod(kernel[0..ndim)); 0 for invalid
 * arguments. Local (pure). */
int rpu_conv_tile_size(int in_channels, int groups, int ndim, const int *kernel);

/* Output spatial size of a layer with parameters p for an input spatial size (p->ndim
 * values each): (size + 2 p - d (k - 1) - 1) / s + 1 — without creating the layer.
 * Errors: RPU_ERR_ARG (NULL, ndim outside 1..3, kernel/stride/dilation < 1, padding < 0,
 * an input smaller than the kernel span). Local (pure). */
rpu_status rpu_conv_output_size(const rpu_conv_params *p, const int *in_size, int *out_size);

/* Creates the layer on a duplicate of comm (collective): builds the tile grid from
 * cfg->mapping and p->split (spec §1.3; mapping.h), creates the tiles this rank owns, and
 * initialises the weights as PyTorch does (kaiming-uniform a = sqrt(5):
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias the same), drawn from stream (seed, layer_id, 0,
 * RPU_PURPOSE_INIT) so every rank draws the same values. Errors: RPU_ERR_ARG (sizes, NULL, unknown
 * bias kind or split), RPU_ERR_MODULE (mapped split: kernel larger than max_input_size: "tile size
 * too small to fit a single kernel: 9 > 8"; tile_array split: an analog bias on more than one tile;
 * padding mode other than zeros), RPU_ERR_CONFIG (invalid config), RPU_ERR_NOMEM,
 * RPU_ERR_MPI; the same status and message on every rank. */
rpu_status rpu_conv_create(MPI_Comm comm, const rpu_conv_params *p, const rpu_config *cfg,
                           rpu_conv **layer);

/* Frees the layer (collective: frees the duplicated communicator); sets *layer to NULL;
 * accepts NULL. */
void rpu_conv_destroy(rpu_conv **layer);

/* rpu_conv_create followed by rpu_conv_set_weights(weight [out, in/groups, k...], bias)
 * (collective; bias by the NULL-bias rule). On failure *layer is NULL. aihwkit's
 * to_digital is rpu_conv_get_weights. */
rpu_status rpu_conv_from_digital(MPI_Comm comm, const rpu_conv_params *p, const rpu_config *cfg,
                                 const float *weight, const float *bias, rpu_conv **layer);

/* Training mode (default true) keeps inputs and gradients for update and get_grad and the
 * tiles' gradient masks; eval mode does not (like torch's train()/eval()). Local; set the
 * same mode on every rank. */
void rpu_conv_set_training(rpu_conv *l, bool training);

/* Forward (collective): x [n, in_channels, in_size...] -> y [n, out_channels, out_size...]
 * on every rank. Errors: RPU_ERR_ARG (n < 1, NULL, input smaller than the kernel, NaN or
 * Inf in the partial results), RPU_ERR_NOMEM, RPU_ERR_MPI. */
rpu_status rpu_conv_forward(rpu_conv *l, const float *x, int n, const int *in_size, float *y);

/* Backward (collective) of the last forward: dy [n, out_channels, out_size...] -> dx
 * [n, in_channels, in_size...] (dx may be NULL when no input gradient is needed; the
 * call is then local unless the layer has a bias and more than one rank: every rank sums
 * the bias gradient of its own samples, then they are gathered). Keeps dy (training mode)
 * for update and get_grad, and computes the bias gradient. */
rpu_status rpu_conv_backward(rpu_conv *l, const float *dy, float *dx);

/* Results by parts. Rank r of P owns samples [s0, s1) = rpu_batch_part(n, r, P) of a
 * batch of n: floor(n r / P) to floor(n (r + 1) / P). Local (pure). */
void rpu_batch_part(int n, int rank, int size, int *s0, int *s1);

/* rpu_conv_forward / rpu_conv_backward that deliver each rank only its own samples of the
 * result (collective): the input (x, dy) needs to hold only what this rank's tiles read
 * (the whole batch does; so does an array of the rank's own samples completed by
 * rpu_conv_fetch_input / rpu_conv_fetch_output_grad), but y [n, out, ...] (dx [n, in, ...])
 * is written only for
 * the samples rpu_batch_part(n, rank, size) (bitwise the values rpu_conv_forward /
 * rpu_conv_backward give there); the other samples' elements are unspecified. Only the
 * ranks that computed a value send it, only its owner receives it (one MPI_Alltoallv),
 * where rpu_conv_forward also gathers every part on every rank (MPI_Allgatherv). A
 * network runs its digital layers on its own samples in between (net.c). */
rpu_status rpu_conv_forward_part(rpu_conv *l, const float *x, int n, const int *in_size, float *y);
rpu_status rpu_conv_backward_part(rpu_conv *l, const float *dy, float *dx);

/* Layers that read only their own samples. A layer whose every tile is held by every rank
 * of its communicator (one tile with more ranks than tiles, or the placement of
 * rpu_conv_placement's data-parallel rule; on one rank: a layer of one tile), whose holders
 * split the batch in MAC blocks of one sample
 * (rpu_tile_batch_splittable, an output of at least 32 positions (src/deliver_impl.h) per
 * sample) and whose update is summable (rpu_tile_update_summable: each holder sums the
 * gradient of its own samples' blocks, the holders add them exactly), reads of x and dy
 * only the samples rpu_batch_part(n, rank, size) gives the rank, in every call
 * (rpu_conv_forward(_part), rpu_conv_backward(_part)); the other samples' elements may hold
 * anything. A network then gathers nothing around the layer (net.c). Such a layer's
 * backward adds the per-sample bias-gradient sums of every rank (one MPI_Allgatherv), so
 * it is collective even with dx NULL.
 *   rpu_conv_own_samples_rule  the rule on a grid placed on `ranks` ranks (g->tiles[0]
 *                              .holders), Lout output positions per sample and the config's
 *                              properties. Local (pure).
 *   rpu_conv_own_samples       the rule for a layer of parameters p and config cfg on
 *                              `ranks` ranks and input size in_size (as
 *                              rpu_conv_comm_plan). Errors: those of rpu_conv_placement
 *                              and rpu_conv_output_size. Local (pure). */
bool rpu_conv_own_samples_rule(const rpu_tile_grid *g, int ranks, int64_t Lout, bool batch_split,
                               bool summable);
rpu_status rpu_conv_own_samples(const rpu_conv_params *p, const rpu_config *cfg, const int *in_size,
                                int ranks, bool *own);

/* Fetches (collective). x [n, in_channels, in_size...] (dy [n, out_channels, out...] of
 * the last forward) holds the rank's own samples (rpu_batch_part); afterwards it also
 * holds what the rank's tiles read of the other samples: the tiles' input channels (output
 * channels) for the samples the rank computes, or for the whole batch when a training
 * tile's update takes it (a pulsed update). One MPI_Allreduce of the status and one
 * MPI_Alltoallv: each rank sends only what others need of its samples. Where the tiles
 * read every sample on every rank (a pulsed update's training step with no update owner
 * announced, a forward that reads every vector: rpu_tile_forward_reads_all) the whole
 * array is gathered instead (one MPI_Allgatherv: a tree rather than every owner sending to
 * every holder). With owners announced (rpu_conv_set_update_owners) a tile's owner takes
 * every sample and its other holders those they compute; with a split by rows announced,
 * each holder takes of the output gradient every row of the samples it computes and its
 * own rows of the others (of the input, every sample). Nothing (and no communication)
 * on one rank or for a layer that reads only its own samples. A network
 * calls them before an analog layer's forward_part / backward_part where the digital
 * layers computed only each rank's samples (net.c). rpu_conv_fetch_input sets the batch
 * shape as the forward does. Errors: RPU_ERR_ARG (NULL, n < 1, no forward before
 * fetch_output_grad), RPU_ERR_NOMEM, RPU_ERR_MPI.
 *   rpu_conv_fetch_plan        the elements rank `rank` of `ranks` sends in the fetch of a
 *                              training step's input (outputs false) or output gradient
 *                              (true), layer p, config cfg, batch, in_size as
 *                              rpu_conv_comm_plan, update owners announced as `owners`
 *                              (rpu_conv_set_update_owners; NULL: none); *issued false
 *                              where no fetch happens, *whole true where it is the gather
 *                              of the whole array (*sent: its elements).
 *                              Errors as rpu_conv_comm_plan. Local (pure). */
rpu_status rpu_conv_fetch_input(rpu_conv *l, float *x, int n, const int *in_size);
rpu_status rpu_conv_fetch_output_grad(rpu_conv *l, float *dy);
rpu_status rpu_conv_fetch_plan(const rpu_conv_params *p, const rpu_config *cfg, int batch,
                               const int *in_size, const int *owners, bool outputs, int ranks,
                               int rank, bool *issued, bool *whole, int64_t *sent);

/* The update owners (rpu_conv_set_update_owners) that rpu_net_update (net.h) gives a
 * network's analog layers on `ranks` ranks: layer k of n_layers has parameters ps[k]
 * (NULL: a digital layer), config cfgs[k] and input size in_sizes[k]; owners[k] becomes a
 * malloc'd array of its grid's tiles (free each; NULL for a digital layer): those of
 * rpu_update_owners (mapping.h) with the grids placed on `ranks` ranks and batch x output
 * positions vectors where every analog layer's update splits there
 * (rpu_conv_update_splits), else -1 each (every holder its rows; rpu_net_forward announces
 * either on more than one rank). Errors: RPU_ERR_ARG (NULL arrays, n_layers < 0,
 * batch < 1, ranks < 1), those of rpu_conv_placement and rpu_conv_output_size,
 * RPU_ERR_NOMEM (owners then all NULL). Local (pure). */
rpu_status rpu_conv_update_owners_plan(const rpu_conv_params *const *ps,
                                       const rpu_config *const *cfgs, const int *const *in_sizes,
                                       int n_layers, int batch, int ranks, int **owners);

/* Gradients of the last training-mode forward and backward (spec §1.6, §6.7), as PyTorch
 * computes them for the digital layer: weight_grad [out, in/groups, k...] =
 * sum over images and output positions of dy x-patchᵀ (the gradient w.r.t. the layer's
 * logical weights, independent of mapping scales), bias_grad [out] = sum of dy over images
 * and positions (digital and analog bias alike; NULL-bias rule). A layer whose update is
 * summed (rpu_tile_update_summable: floating_point, inference, pulse_type none) gives the
 * G its update applies: the MAC blocks' GEMM partial sums added exactly in 64-bit fixed
 * point, rounded once to float (tile.h, "Summed updates"); any other gives each value as
 * the sum of exact float products in double, rounded once to float; the bias gradient is
 * the per-sample sums (over positions, in double) added in sample order in double and
 * rounded once. None depends on the rank count. What the tiles do with it depends on the
 * config kind (rpu_tile_weight_grad):
 * floating_point applies it exactly, pulsed devices approximate it by pulse trains, and
 * inference tiles apply it exactly as aihwkit's torch optimizer does.
 * Collective when weight_grad is not NULL (the owners' blocks are gathered exactly); with
 * weight_grad NULL only the bias gradient is copied and the call is local.
 * Errors: RPU_ERR_ARG (NULL layer, bias rule, no training-mode forward and backward since
 * the last forward), RPU_ERR_NOMEM, RPU_ERR_MPI. */
rpu_status rpu_conv_get_grad(rpu_conv *l, float *weight_grad, float *bias_grad);

/* The gradient of owned tile t in the tile's own layout and units: grad [rows, cols] as
 * rpu_tile_weight_grad of the tile's patches and output gradients of the last
 * training-mode forward and backward (cols include the analog bias column of input split
 * 0), i.e. the G of W_tile <- W_tile - lr G that rpu_conv_update applies through the
 * device (for a summed update the block sums of rpu_conv_get_grad, in stored units).
 * Local, except for a summed update of a tile with several holders: collective over the
 * tile's holders (they add their samples' sums). Errors: RPU_ERR_ARG (t not owned by this
 * rank, no kept forward and backward). */
rpu_status rpu_conv_get_tile_grad(const rpu_conv *l, int t, float *grad);

/* SGD step of the analog weights: every held tile's update from the patches of the last
 * forward input and backward gradient (W_tile <- W_tile - lr G through the device model, G
 * as rpu_conv_get_tile_grad), then its post-update step (decay, diffusion, clip, remap,
 * modifier). The digital bias is not touched (see the conventions). Local (no
 * communication) while every tile has one holder; with several (more ranks than tiles, or
 * a floating-point convolution on every rank: rpu_conv_placement), collective over each
 * tile's holders, which add the gradient sums of their own samples (a summed
 * update) or split a pulsed update by rows and gather them; call it on every rank. Errors:
 * RPU_ERR_ARG (lr < 0 or not finite, no kept forward and backward), the tiles' errors (naming the
 * tile). */
rpu_status rpu_conv_update(rpu_conv *l, float lr);

/* Whether the holders of every tile of the layer split its update (every tile has several
 * holders, and the update is pulsed and splits by rows, not a summed update): then
 * rpu_conv_update_begin's owners choose who updates what. The same on every rank of the
 * layer. Local. */
bool rpu_conv_update_splits(const rpu_conv *l);

/* rpu_conv_update in two phases, so that a caller can run several layers' own work before
 * any of them communicates (rpu_net_update). begin: every held tile's update, where a
 * split one (rpu_conv_update_splits) updates only this rank's part: with owners NULL or
 * owners[t] = -1 the holders' blocks of rows, as rpu_conv_update; with owners[t] = m >= 0
 * holder m of tile t all its rows and the other holders none (the result is the same bits
 * whoever computes it). Local for split tiles (where a split by rows was announced,
 * rpu_conv_set_update_owners, the rows are updated by end, after the holders combine the
 * vectors' maxima); a summed update communicates as in rpu_conv_update. end: the holders agree on
 * begin's status `begun` and gather each other's rows (collective over each split tile's holders),
 * then the post-update step. Call end after begin with the same owners on every rank, before
 * anything else uses the layer: between them its tiles' copies differ. Errors as rpu_conv_update;
 * RPU_ERR_ARG for an owner that is not a holder. */
rpu_status rpu_conv_update_begin(rpu_conv *l, float lr, const int *owners);
rpu_status rpu_conv_update_end(rpu_conv *l, const int *owners, rpu_status begun);

/* Announces who will update each tile after the next training-mode forward and backward:
 * owners as rpu_conv_update_begin will get them (copied; NULL: every holder its rows, the
 * default), in effect until changed. Call it on every rank of the layer with the same
 * owners, before the forward (or the fetch of its input). Where a tile's update splits
 * (rpu_conv_update_splits) and owners[t] = m, only holder m keeps (and fetches:
 * rpu_conv_fetch_input, rpu_conv_fetch_output_grad) every sample's patches and output
 * gradients; the others keep those of the samples they compute. rpu_conv_update_begin then
 * refuses (on every rank, before any change) other owners for these tiles (rpu_conv_update,
 * which splits by rows, included), rpu_conv_get_tile_grad refuses such a tile on its other
 * holders, and rpu_conv_get_grad takes tile t's values from holder m. Where owners[t] = -1
 * (a split by rows announced), each holder keeps all patches but of the output gradient
 * only the rows it updates for the samples it does not compute (every row of
 * those it computes); rpu_conv_update_begin then refuses an owner m >= 0 for the tile, and
 * rpu_conv_update_end combines every vector's maximum |gradient| over the holders' rows
 * (an MPI_Allreduce of batch x output positions floats on the tile's holders, after one of
 * the status: rpu_conv_update_maxima_plan) before it updates them;
 * rpu_conv_get_tile_grad refuses the tile and rpu_conv_get_grad takes each holder's rows.
 * Results are the same bits as without it. Errors: RPU_ERR_ARG (NULL layer; an owner
 * outside -1 .. holders - 1 of its tile: nothing changed). Local. */
rpu_status rpu_conv_set_update_owners(rpu_conv *l, const int *owners);

/* The owners rpu_update_owners (mapping.h) gives layers[k] (NULL: skipped) of a network on
 * one communicator, from their grids and their last forward's batch and output positions,
 * into owners[k] [n_tiles]: whole tiles where every layer's update splits
 * (rpu_conv_update_splits) and that estimate favours them, else -1 each. For a caller that
 * runs the layers' updates itself (the Python optimizer): it announces them for the next
 * step (rpu_conv_set_update_owners) and updates with them (rpu_conv_update_begin / _end).
 * The same on every rank. Errors: RPU_ERR_ARG (NULL arrays, a layer without a forward,
 * layers on different rank counts), RPU_ERR_NOMEM. Local. */
rpu_status rpu_conv_update_owners(rpu_conv *const *layers, int n_layers, int *const *owners);

/* The post-update step alone (local: owned tiles only, no communication): every owned
 * tile's rpu_tile_post_update (diffusion, decay, clip, remap, modifier), as
 * rpu_conv_update ends with it. For an optimizer step in which the layer is not updated
 * (no gradient since the last step, or learning rate 0): aihwkit's optimizer runs the
 * post-update step of every analog tile once per step, updated or not. Needs no kept
 * forward or backward. Errors: RPU_ERR_ARG (NULL layer), the tiles' errors (naming the
 * tile). */
rpu_status rpu_conv_post_update(rpu_conv *l);

/* Inference (spec §6.3; inference configs): programs every owned tile with programming
 * repeat `repeat`, or drifts them to t_inference seconds after programming with read-out
 * `draw` and updates their drift compensation (rpu_tile_program / rpu_tile_drift_to).
 * Local: each rank handles its owned tiles; no communication. */
rpu_status rpu_conv_program(rpu_conv *l, uint64_t repeat);
rpu_status rpu_conv_drift(rpu_conv *l, double t_inference, uint32_t draw);

/* Sets the weights in PyTorch layout [out, in/groups, k...] and the bias [out] (NULL-bias
 * rule). Collective in the sense that every rank passes the same values (each sets its own
 * tiles; the per-tile weight scaling of spec §7 applies); no communication. */
rpu_status rpu_conv_set_weights(rpu_conv *l, const float *weight, const float *bias);

/* Gets the weights [out, in/groups, k...] and bias [out] (NULL-bias rule), the same on
 * every rank (collective). RPU_READ_EXACT: the stored weights times the mapping scales,
 * gathered exactly from the owners. RPU_READ_REALISTIC (spec §8.1): each tile, in tile
 * order, is estimated from its responses to over_sampling x cols standard-normal probe
 * vectors (stream (seed, layer, tile, RPU_PURPOSE_READOUT), advancing with each read-out;
 * the analog-bias column driven by 1): its owner runs the noisy eval forward (IO model,
 * mapping scales, drift compensation), broadcasts the responses, and the least-squares
 * weights are solved with ScaLAPACK across the layer's communicator (rpu_readout_lstsq).
 * The result is the same on every rank and, to rounding of the solve, on every rank
 * count. The digital bias is returned as is; an analog bias is estimated with the
 * weights. Errors: RPU_ERR_ARG (NULL, bias rule, rank-deficient probes), RPU_ERR_NOMEM,
 * RPU_ERR_MPI. */
rpu_status rpu_conv_get_weights(rpu_conv *l, float *weight, float *bias, rpu_weight_read read);

/* The digital bias [out] (get: copy out; set: copy in). Local; the digital bias is
 * replicated, so set the same values on every rank. Errors: RPU_ERR_ARG (NULL, the layer's
 * bias is not digital: an analog bias is part of the tile weights, use set_weights). */
rpu_status rpu_conv_get_digital_bias(const rpu_conv *l, float *bias);
rpu_status rpu_conv_set_digital_bias(rpu_conv *l, const float *bias);

/* Realistic write (spec §8.2; collective): each owned tile is programmed towards its
 * block of weight/bias (NULL-bias rule) by closed-loop pulsed updates
 * (rpu_tile_program_weights with p; NULL: defaults); the digital bias is set exactly.
 * max_iterations / max_error (NULL: not wanted) receive the largest rounds used and
 * relative read error over all tiles, the same on every rank. Errors are agreed: every
 * rank returns the first failure. */
rpu_status rpu_conv_program_weights(rpu_conv *l, const float *weight, const float *bias,
                                    const rpu_program_params *p, int *max_iterations,
                                    float *max_error);

/* Probe vectors per tile input of the realistic read-out (aihwkit's over_sampling;
 * default 10; 1..1000). Local setting; use the same value on every rank. */
rpu_status rpu_conv_set_readout_oversampling(rpu_conv *l, int over_sampling);

/* Accessors (local; NULL or 0 for a NULL layer): the layer's tile grid (owners for this
 * communicator's size), its duplicated communicator, the tile with grid index t if this
 * rank holds a copy (else NULL; the layer owns it: use it through rpu_tile_*, never destroy it,
 * and call rpu_conv_state_loaded after writing its state items), the creation parameters,
 * the rpu_config (as given at create), whether it is the conv layer behind an rpu_linear
 * (ndim 0: input [n, in], one patch each), and the number of weights
 * (out * in/groups * prod(kernel)). */
const rpu_tile_grid *rpu_conv_grid(const rpu_conv *l);
MPI_Comm rpu_conv_comm(const rpu_conv *l);
rpu_tile *rpu_conv_tile(const rpu_conv *l, int t);
/* Tile t if this rank is its owner (rpu_tile_slot.owner), else NULL: with more ranks than
 * tiles several ranks hold identical copies of a tile (rpu_conv_tile gives each its copy);
 * the owner's is the one that goes to checkpoints. Local. */
rpu_tile *rpu_conv_tile_owned(const rpu_conv *l, int t);
const rpu_conv_params *rpu_conv_get_params(const rpu_conv *l);
const rpu_config *rpu_conv_config(const rpu_conv *l);
bool rpu_conv_is_linear(const rpu_conv *l);
int rpu_conv_weight_count(const rpu_conv *l);

/* Call after restoring the owned tiles' state items (rpu_tile_state_items): refreshes
 * every owned tile and drops the kept training inputs (local). */
void rpu_conv_state_loaded(rpu_conv *l);

/* ------------------------------------------------------------------ linear */

typedef struct rpu_linear rpu_linear;

typedef struct {
    int in_features;
    int out_features;
    rpu_bias bias;
    uint32_t layer_id;
    uint64_t seed;
    rpu_mac_mode mac;
    char name[RPU_LAYER_NAME_MAX + 1];
    rpu_split split; /* RPU_SPLIT_MAPPED (AnalogLinearMapped) or RPU_SPLIT_TILE_ARRAY
                        (aihwkit 1.1's AnalogLinear); for a linear layer both split the
                        input features evenly by max_input_size (kernel 1), so the grids
                        are equal; the split is stored and checked by checkpoints */
} rpu_linear_params;

/* Fills p for a linear layer in -> out features: digital bias, layer_id 0, seed 0,
 * RPU_MAC_BLAS, name "", mapped split. Local (pure). */
void rpu_linear_params_default(rpu_linear_params *p, int in_features, int out_features);

/* As the rpu_conv_* functions of the same name (same collectivity, errors and bias rule),
 * for AnalogLinearMapped: x [n, in] -> y [n, out], weights [out, in], bias [out]; the
 * input features are split by max_input_size (unit 1). The other operations (program,
 * drift, program_weights, digital bias, tile access) go through rpu_linear_as_conv. */
rpu_status rpu_linear_create(MPI_Comm comm, const rpu_linear_params *p, const rpu_config *cfg,
                             rpu_linear **layer);
void rpu_linear_destroy(rpu_linear **layer);
rpu_status rpu_linear_from_digital(MPI_Comm comm, const rpu_linear_params *p, const rpu_config *cfg,
                                   const float *weight, const float *bias, rpu_linear **layer);
void rpu_linear_set_training(rpu_linear *l, bool training);
rpu_status rpu_linear_forward(rpu_linear *l, const float *x, int n, float *y);
rpu_status rpu_linear_backward(rpu_linear *l, const float *dy, float *dx);
rpu_status rpu_linear_forward_part(rpu_linear *l, const float *x, int n, float *y);
rpu_status rpu_linear_backward_part(rpu_linear *l, const float *dy, float *dx);
rpu_status rpu_linear_get_grad(rpu_linear *l, float *weight_grad, float *bias_grad);
rpu_status rpu_linear_update(rpu_linear *l, float lr);
rpu_status rpu_linear_post_update(rpu_linear *l);
rpu_status rpu_linear_set_weights(rpu_linear *l, const float *weight, const float *bias);
rpu_status rpu_linear_get_weights(rpu_linear *l, float *weight, float *bias, rpu_weight_read read);
/* The conv layer (ndim 0) that implements it (local; owned by the linear layer). */
rpu_conv *rpu_linear_as_conv(rpu_linear *l);

/* ------------------------------------------------------------------ communication plan
 * (src/layer_plan.c)
 *
 * What a layer sends: the MPI calls one rank of a layer's communicator issues in one
 * training step (forward in training mode, backward, update), without running anything.
 * This is the one description of the layer's communication that `rpusim bench scale`
 * models and reports; mpi_tests/test_comm_plan.c counts every MPI call of real steps
 * with a PMPI wrapper and checks them against it at 1-4 ranks. A change of the layer's
 * collectives (layer.c) must change these functions with it. Only the success path is
 * described: a failing rank adds the broadcast of its message (rpu_agree). */

/* The collective or point-to-point operation of a call (blocking or not: MPI_Iallreduce
 * is RPU_COMM_ALLREDUCE). */
typedef enum {
    RPU_COMM_ALLREDUCE = 0,
    RPU_COMM_REDUCE,
    RPU_COMM_BCAST,
    RPU_COMM_REDUCE_SCATTER, /* count: the elements reduced (the sum of the pieces) */
    RPU_COMM_ALLGATHER,      /* count: the elements gathered (the sum of the pieces) */
    RPU_COMM_SEND,
    RPU_COMM_RECV,
    RPU_COMM_BARRIER,
    RPU_COMM_ALLTOALL, /* count: the elements this rank sends to the other ranks */
    RPU_COMM_OTHER     /* any other call (a wrapper's catch-all; never in a plan) */
} rpu_comm_op;
#define RPU_COMM_N_OPS 10

/* The part of a training step a call belongs to. */
typedef enum { RPU_PHASE_FORWARD = 0, RPU_PHASE_BACKWARD, RPU_PHASE_UPDATE } rpu_phase;

/* One MPI call of one rank. Its payload is count x type_bytes bytes (what the call is
 * given; the bytes an MPI library moves on the wire depend on its algorithm). */
typedef struct {
    int layer;       /* network layer index (rpu_net_comm_plan); -1 from rpu_conv_comm_plan */
    rpu_phase phase; /* forward, backward or update */
    rpu_comm_op op;
    int64_t count;    /* elements given to the call on this rank */
    int type_bytes;   /* bytes per element (MPI_Type_size) */
    int group;        /* ranks of the communicator it runs on */
    int peer;         /* root of a rooted collective, peer of a point-to-point call; else -1 */
    const char *what; /* what it carries (static text), e.g. "output partial sums (int64)" */
} rpu_comm_call;

/* "allreduce", "reduce", ... ("?" for other values). Local (pure). */
const char *rpu_comm_op_name(rpu_comm_op op);

/* The tile grid of a layer of parameters p and config cfg created on `ranks` ranks, with
 * the owners and holders rpu_conv_create gives the tiles: rpu_tile_grid_build_split (one
 * holder per tile, spare ranks as extra holders), then, for a convolution of several tiles
 * whose holders split the batch and add their gradients exactly (a floating-point config:
 * rpu_tile_batch_splittable, rpu_tile_update_summable, not rpu_tile_forward_reads_all),
 * every tile on every rank (rpu_hold_everywhere: data parallel, no partial products cross
 * ranks), then owners rotated by p->layer_id: what each rank holds and computes. Free with
 * rpu_tile_grid_free. Errors: RPU_ERR_ARG (NULL, ranks < 1, bad parameters), those of the
 * grid (rpu_tile_grid_build_split) and of a tile of cfg (rpu_tile_create), RPU_ERR_NOMEM.
 * Local (pure). */
rpu_status rpu_conv_placement(const rpu_conv_params *p, const rpu_config *cfg, int ranks,
                              rpu_tile_grid *grid);

/* The calls rank `rank` of a layer's communicator of `ranks` ranks issues in one training
 * step on a batch of `batch` samples of spatial size in_size (the first p->ndim entries;
 * ignored for a linear layer, p->ndim 0): the forward's, then the backward's (none for the
 * input gradient when input_grad is false: rpu_conv_backward with dx NULL), then the
 * update's, in the order the layer issues them. Writes min(total, max_calls) calls to
 * calls (may be NULL with max_calls 0 to ask for the count) and the total to *n_calls.
 * Errors: RPU_ERR_ARG (NULL p, cfg or n_calls, batch < 1, rank outside [0, ranks), an
 * input smaller than the kernel), those of rpu_conv_placement. Local (pure). */
rpu_status rpu_conv_comm_plan(const rpu_conv_params *p, const rpu_config *cfg, int batch,
                              const int *in_size, bool input_grad, int ranks, int rank,
                              rpu_comm_call *calls, int max_calls, int *n_calls);
/* The same for a step through rpu_conv_forward_part / rpu_conv_backward_part (no gathering
 * of the parts). Local (pure). */
rpu_status rpu_conv_comm_plan_parts(const rpu_conv_params *p, const rpu_config *cfg, int batch,
                                    const int *in_size, bool input_grad, int ranks, int rank,
                                    rpu_comm_call *calls, int max_calls, int *n_calls);

/* The calls of a training step's update (rpu_conv_update_end) that an announced split by
 * rows adds before the rows are shared (owners non-NULL as rpu_conv_set_update_owners took
 * them; a tile whose owner is -1 and which has several holders): for each such tile that
 * rank `rank` of `ranks` holds, on its holders, the status (rpu_agree: MPI_Allreduce of 1
 * int) and one MPI_Allreduce (MPI_MAX) of batch x output positions floats, every vector's
 * maximum over the tile's rows (rpu_tile_update_row_maxima). Into calls (up to
 * max_calls; *n_calls: how many), layer p, config cfg, batch and in_size as
 * rpu_conv_comm_plan. At most RPU_UPDATE_MAXIMA_MAX_CALLS calls: a rank holds at most one
 * tile of several holders per layer of pulsed updates. Errors as rpu_conv_comm_plan. Local
 * (pure). */
#define RPU_UPDATE_MAXIMA_MAX_CALLS 2
rpu_status rpu_conv_update_maxima_plan(const rpu_conv_params *p, const rpu_config *cfg, int batch,
                                       const int *in_size, const int *owners, int ranks, int rank,
                                       rpu_comm_call *calls, int max_calls, int *n_calls);

#ifdef __cplusplus
}
#endif
#endif
