/* rpusim — one analog crossbar tile: weights [out, in] plus IO state, with aihwkit's
 * forward/backward IO model (spec §2) and weight scaling (spec §7).
 *
 * A tile works on a local batch; nothing here knows about MPI, so every function in this
 * header is local (never collective). Every random number comes from streams keyed by
 * (seed, layer_id, tile_id, purpose), so a tile gives the same numbers whichever rank owns
 * it. A tile is not thread-safe: one thread at a time per tile. */
#ifndef RPUSIM_TILE_H
#define RPUSIM_TILE_H

#include <stdbool.h>
#include <stdint.h>

#include "rpusim/config.h"
#include "rpusim/rng.h"
#include "rpusim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rpu_tile rpu_tile;

/* How the analog multiply-accumulate y = W v is computed. */
typedef enum {
    /* One sgemm for the batch (OpenBLAS). Fastest; the last bits of a vector's result may
     * depend on the batch it was computed in and on the BLAS kernel. */
    RPU_MAC_BLAS = 0,
    /* Each output accumulated in double in input order, then rounded to float: the same
     * bits for a vector whatever the batch, BLAS kernel or machine. Several times slower. */
    RPU_MAC_EXACT = 1
} rpu_mac_mode;

/* Units of the weights passed to rpu_tile_set_weights / rpu_tile_get_weights. */
typedef enum {
    /* the stored (normalised) tile weights; set keeps the mapping scales */
    RPU_WEIGHTS_STORED = 0,
    /* logical weights = stored weights x mapping scales (per row); set computes new
     * mapping scales by weight scaling (mapping.weight_scaling_omega, spec §7) */
    RPU_WEIGHTS_SCALED = 1
} rpu_weight_units;

/* Mode of a forward pass (torch's train()/eval()). */
typedef enum {
    RPU_MODE_TRAIN = 0, /* training: modifier weights, gradient mask kept for backward */
    RPU_MODE_EVAL = 1   /* eval (aihwkit's is_test): stored weights, drift compensation */
} rpu_pass_mode;

typedef struct {
    int out_size;      /* rows (d_size) */
    int in_size;       /* columns (x_size) */
    uint64_t seed;     /* run seed of every random stream of this tile */
    uint32_t layer_id; /* stream key parts */
    uint32_t tile_id;
    rpu_mac_mode mac;
} rpu_tile_params;

/* Fills p for an out x in tile: seed 0, layer_id 0, tile_id 0, RPU_MAC_BLAS. Local. */
void rpu_tile_params_default(rpu_tile_params *p, int out_size, int in_size);

/* Creates a tile with zero weights, mapping scales 1 and its construction-time IO values
 * (out_noise_values, voltage offsets, nonlinearity factors, read asymmetry; spec §2.2)
 * drawn from stream (seed, layer_id, tile_id, RPU_PURPOSE_CONSTRUCT). cfg is copied.
 * Errors: RPU_ERR_ARG (NULL, sizes < 1), RPU_ERR_CONFIG (invalid cfg), RPU_ERR_NOMEM,
 * RPU_ERR_UNSUPPORTED (mv_type other than one_pass). Local. */
rpu_status rpu_tile_create(const rpu_tile_params *p, const rpu_config *cfg, rpu_tile **tile);

/* Frees the tile and sets *tile to NULL; accepts NULL and *tile == NULL. Local. */
void rpu_tile_destroy(rpu_tile **tile);

/* Shape (rows = out, columns = in; 0 for NULL) and the tile's copy of its config. Local. */
int rpu_tile_out_size(const rpu_tile *t);
int rpu_tile_in_size(const rpu_tile *t);
const rpu_config *rpu_tile_config(const rpu_tile *t);

/* Sets the weights w [out, in] (row-major). RPU_WEIGHTS_SCALED: w are logical weights; if
 * mapping.weight_scaling_omega > 0 the stored tile weights are w / alpha with
 * alpha = max|w| / omega (per row if weight_scaling_columnwise; alpha = 1 where 0) and the
 * mapping scales become alpha (omega 0: w is stored as given). RPU_WEIGHTS_STORED: w is
 * stored as given. In both cases without omega the scales stay as they are. Then the
 * device bounds (and write noise) apply. Errors: RPU_ERR_ARG (NULL, a non-finite weight,
 * an unknown units value). Local. */
rpu_status rpu_tile_set_weights(rpu_tile *t, const float *w, rpu_weight_units units);

/* Gets the weights [out, in]: the stored weights times the mapping scales
 * (RPU_WEIGHTS_SCALED) or the raw stored weights (RPU_WEIGHTS_STORED). Errors:
 * RPU_ERR_ARG (NULL, an unknown units value). Local. */
rpu_status rpu_tile_get_weights(const rpu_tile *t, float *w, rpu_weight_units units);

/* Mapping scales [out] (spec §7): output i is multiplied by scales[i]. Local. */
rpu_status rpu_tile_set_mapping_scales(rpu_tile *t, const float *scales);
rpu_status rpu_tile_get_mapping_scales(const rpu_tile *t, float *scales);

/* Forward of a batch: x [n, in] -> y [n, out], each vector an independent analog MVM
 * (spec §2.3-§2.7), then the mapping scales. In training mode (RPU_MODE_TRAIN) the
 * gradient mask |y_tile| >= 0.999·out_scale·out_bound (when forward.out_bound > 0, any kind
 * but floating_point, as aihwkit's tile wrappers) is kept for the next backward.
 * The noise of vector k in pass r (bound management) of a call is drawn from a stream
 * address fixed by (calls before, batch size n, k, r), so results do not depend on how the
 * batch is processed internally. Local. */
rpu_status rpu_tile_forward(rpu_tile *t, const float *x, int n, float *y, rpu_pass_mode mode);

/* Backward of a batch: d [n, out] -> dx [n, in] (= noisy Wᵀ(scales·d), spec §2.3; no bound
 * management). If the last forward was a training forward of the same n, outputs that hit
 * the output bound there get zero gradient. Local. */
rpu_status rpu_tile_backward(rpu_tile *t, const float *d, int n, float *dx);

/* Part of a forward / backward call, for a tile whose batch is split over several ranks
 * that each hold a copy of the tile (rpu_tile_slot.holders): computes the vectors [k0, k1)
 * of a call of n vectors. x (d) and y (dx) are the whole call's arrays [n, ...]; only rows
 * [k0, k1) of the output are written. Every random number is drawn from the address the
 * whole call gives the vector, and the tile's state after the call (noise-stream position,
 * call counters, average_abs_max's running value) is the same whichever range was
 * computed, so the holders stay identical. The analog products are computed in BLAS calls
 * that never mix vectors of different blocks of `block` vectors (k / block); with k0 and
 * k1 multiples of block (or k1 = n), vector k's result is bitwise the same as in any other
 * split of the same call with the same block. rpu_tile_forward / rpu_tile_backward are
 * the part [0, n) with block n. The gradient mask is kept for the range: a backward part
 * must cover the range of the training forward part before it (or lie inside it).
 * Errors: RPU_ERR_ARG (NULL, n < 0, a range outside [0, n], block < 1), as the whole call.
 * Local. */
rpu_status rpu_tile_forward_part(rpu_tile *t, const float *x, int n, int k0, int k1, int block,
                                 float *y, rpu_pass_mode mode);
rpu_status rpu_tile_backward_part(rpu_tile *t, const float *d, int n, int k0, int k1, int block,
                                  float *dx);

/* A part call whose inputs are made and whose results are taken piece by piece, so that a
 * block's inputs, products and results stay in cache between the caller's stages (the
 * mapped layers: the patches of a block in, its col2im out). The tile visits [k0, k1) in
 * pieces [b0, b1), in order: whole MAC blocks (the range cut at multiples of block) when
 * rpu_tile_pass_by_blocks is true for the direction, else the whole range as one piece.
 * For each piece in(ctx, b0, b1) returns where vector b0's inputs are and out(ctx, b0, b1)
 * where its results go (the piece's other vectors follow, one row each; NULL fails the
 * call with RPU_ERR_NOMEM); when the results are final, done(ctx, b0, b1) runs (NULL:
 * nothing; its error ends the call). A one-piece pass may read every row [0, n) of the
 * inputs and write rows of the results through the arrays whose rows k0 in() and out()
 * return, so these must be whole arrays of the call's n rows; the pieces of a pass by blocks
 * may be anywhere (a block's own buffer). Results, tile state and errors are those of
 * rpu_tile_forward_part / rpu_tile_backward_part of the same call (which are this with the
 * whole arrays). Local. */
typedef struct {
    void *ctx;
    const float *(*in)(void *ctx, int b0, int b1);
    float *(*out)(void *ctx, int b0, int b1);
    rpu_status (*done)(void *ctx, int b0, int b1);
} rpu_pass_stages;
rpu_status rpu_tile_forward_staged(rpu_tile *t, int n, int k0, int k1, int block,
                                   rpu_pass_mode mode, const rpu_pass_stages *stages);
rpu_status rpu_tile_backward_staged(rpu_tile *t, int n, int k0, int k1, int block,
                                    const rpu_pass_stages *stages);
/* Whether the tile's forward (backward true: backward) passes go by blocks: the perfect IO
 * model, whose block's products depend on that block's inputs only. Local (pure). */
bool rpu_tile_pass_by_blocks(const rpu_tile *t, bool backward);

/* Whether a batch may be split into parts over holders: false when the backward's noise
 * management (average_abs_max) runs over the masked gradients of every vector, which a
 * holder knows only for its own range. Local (pure). */
bool rpu_tile_batch_splittable(const rpu_tile *t);
/* Whether a forward part reads every vector of x, not only its range: the forward's noise
 * management average_abs_max updates its running value over every vector of the call.
 * Local (pure). */
bool rpu_tile_forward_reads_all(const rpu_tile *t);

/* Weight update of a batch (spec §3): W <- W - lr · d xᵀ for each vector k in batch order,
 * x [n, in], d [n, out] (gradient w.r.t. the tile output; divided by the mapping scales
 * here, spec §7). Pulsed devices go through stochastic pulse trains (update.pulse_type)
 * and their device model; floating_point/ideal devices and pulse_type none update exactly
 * (one GEMM, no bounds); none_with_device applies the exact outer product, then the
 * device bounds. Errors: RPU_ERR_ARG (NULL, n < 0, lr < 0 or not finite),
 * RPU_ERR_UNSUPPORTED (a pulse train longer than 255 slots), RPU_ERR_NOMEM. Local. */
rpu_status rpu_tile_update(rpu_tile *t, const float *x, const float *d, int n, float lr);

/* The update of rows [r0, r1) only, for a tile whose holders split the update
 * (rpu_tile_slot.holders): rows [r0, r1) of the weights change exactly as in
 * rpu_tile_update(t, x, d, n, lr) (x [n, in] and d [n, out] are the whole batch's), the
 * other rows are untouched, and the tile's counters advance as in the whole update, so
 * after the other holders' rows are copied in (the arrays of rpu_tile_update_arrays, then
 * rpu_tile_rows_copied) every holder has the whole update's result. r0 and r1 are
 * multiples of rpu_tile_update_row_block(t) (or the row count). Errors: those of
 * rpu_tile_update, RPU_ERR_ARG (a range not in blocks). Local. */
rpu_status rpu_tile_update_rows(rpu_tile *t, const float *x, const float *d, int n, float lr,
                                int r0, int r1);
/* A split update whose holders keep only their own rows of d. Pulsed update management
 * scales each vector by the maximum |d_i| over all rows of the tile (through the mapping
 * scales, as the update computes it), which no holder then knows alone:
 * rpu_tile_update_row_maxima writes, for each of the n vectors of d [n, out], the maximum
 * over rows [r0, r1) (0 for no rows; NaN skipped as the update skips it); the maximum of the
 * holders' maxima (MPI_MAX: exact) is the whole tile's. rpu_tile_update_rows_max is then
 * rpu_tile_update_rows with those maxima (dmax [n]) instead of the ones of d's other rows,
 * which it does not read: the same rows, bit for bit, as rpu_tile_update_rows with the whole
 * d. Errors: RPU_ERR_ARG (NULL, n < 0, rows outside the tile; for rpu_tile_update_rows_max
 * a compound device, which updates whole tiles) and those of rpu_tile_update_rows. Local. */
rpu_status rpu_tile_update_row_maxima(const rpu_tile *t, const float *d, int n, int r0, int r1,
                                      float *dmax);
rpu_status rpu_tile_update_rows_max(rpu_tile *t, const float *x, const float *d, const float *dmax,
                                    int n, float lr, int r0, int r1);
/* True for every single-device tile (its update may be split by rows); false for compound
 * devices (a transfer or refresh reads whole columns: every holder runs the whole update).
 * Local. */
bool rpu_tile_update_row_splittable(const rpu_tile *t);
/* The rows in which t's update may be cut (rpu_tile_update_rows): RPU_UPDATE_ROW_BLOCK
 * where the update is a BLAS call (no pulses: the exact W -= lr Dᵀ X, and the rank-one
 * updates of pulse_type none_with_device), since a BLAS kernel may give a row other bits
 * when the rows around it change; 1 for the pulsed update, which draws every row's random
 * numbers at addresses of that row's own and touches no other row. A property of the
 * config (the same for every tile of a layer). Local. */
#define RPU_UPDATE_ROW_BLOCK 16
int rpu_tile_update_row_block(const rpu_tile *t);

/* Summed updates (src/update_sum.c). A tile whose update is the exact W <- W - lr G
 * (floating_point / ideal / inference tiles, pulse_type none; no compound) is "summable":
 * G = (sum over vectors of d_kᵀ x_k) / scales can be computed in parts and added. The layer
 * computes the sum over blocks of `block` consecutive vectors (a block size fixed by the
 * input shape, never by the rank count): each block's partial G_b by one GEMM in float,
 * the partials added exactly in 64-bit fixed point at a scale 2^S common to all blocks
 * (the sum does not depend on which rank computed which block), rounded once to float,
 * then its rows divided by the mapping scales. x [n, in], d [n, out] as for
 * rpu_tile_update; vectors [k0, k1) with k0 a multiple of block.
 *   rpu_tile_update_summable   true for such a tile. Local (pure).
 *   rpu_tile_grad_block_bound  *bound >= max over the blocks in [k0, k1) of |G_b|
 *                              (elementwise; block x max|d| x max|x|, not finite when the
 *                              inputs hold Inf): from it and the number of blocks the caller
 *                              chooses S. Local.
 *   rpu_tile_grad_max_bound    the same bound from max|d| and max|x| over the vectors
 *                              [k0, k1) found by the caller (NaN ignored), e.g. while it
 *                              made the vectors. Local (pure).
 *   rpu_tile_grad_blocks_add   acc [out, in] += round(G_b 2^S) for each block in [k0, k1),
 *                              up = 2^S, work [out, in] floats of workspace; RPU_ERR_ARG
 *                              when a partial is not finite. Local.
 *   rpu_tile_grad_units        the rounded sum G [out, in] into the units asked for:
 *                              RPU_WEIGHTS_STORED divides row i by scales_i (the update's
 *                              G), RPU_WEIGHTS_SCALED leaves it (the logical gradient). Local.
 *   rpu_tile_update_by_grad    W <- W - lr G for the G (stored units) of a batch of n vectors
 *                              (counts the update call as rpu_tile_update does; n = 0 or
 *                              lr = 0 change nothing). RPU_ERR_ARG for a tile that is not
 *                              summable. Local.
 * Errors: RPU_ERR_ARG (NULL, ranges, units), RPU_ERR_NOMEM. */
bool rpu_tile_update_summable(const rpu_tile *t);
rpu_status rpu_tile_grad_block_bound(const rpu_tile *t, const float *x, const float *d, int k0,
                                     int k1, int block, rpu_weight_units units, double *bound);
double rpu_tile_grad_max_bound(int k0, int k1, int block, float dmax, float xmax);
rpu_status rpu_tile_grad_blocks_add(const rpu_tile *t, const float *x, const float *d, int k0,
                                    int k1, int block, rpu_weight_units units, double up,
                                    int64_t *acc, float *work);
void rpu_tile_grad_units(const rpu_tile *t, rpu_weight_units units, float *G);
rpu_status rpu_tile_update_by_grad(rpu_tile *t, const float *G, int n, float lr);

/* The [out, in] float arrays an update writes (the weights, and the persistent weights of
 * devices with write noise) into arrays[0..max); returns how many there are. With
 * rpu_tile_rows_copied (after writing rows into them: drops the caches derived from the
 * weights) the layer copies holders' rows between them. Local. */
int rpu_tile_update_arrays(rpu_tile *t, float **arrays, int max);
void rpu_tile_rows_copied(rpu_tile *t);

/* The weight gradient of a batch that rpu_tile_update(x, d, n, lr) acts on (spec §1.6,
 * §6.7, §7), x [n, in], d [n, out] as for the update, grad [out, in]:
 *   RPU_WEIGHTS_STORED  grad = sum over k of (d_k / scales)ᵀ x_k, the gradient in the
 *                       tile's stored units: the update's target is W <- W - lr grad;
 *   RPU_WEIGHTS_SCALED  grad = sum over k of d_kᵀ x_k, the gradient w.r.t. the logical
 *                       weights (stored x scales), what PyTorch computes for the digital
 *                       layer.
 * Each element is a sum of exact products of floats (d_k,i / scales_i rounded to float as
 * the update rounds it) accumulated in double in batch order, rounded once to float. What
 * the tile does with it depends on the config kind:
 *   floating_point (and pulse_type none, ideal devices): the update applies W - lr grad
 *     exactly (one GEMM, no bounds), as aihwkit's FloatingPointTile;
 *   single (pulsed devices): the stochastic pulse trains change W by -lr grad in
 *     expectation where update management does not clip and the device steps are
 *     symmetric and state independent (spec §3.3); aihwkit's AnalogTile never forms grad,
 *     it hands x and d to the pulsed update;
 *   inference: grad (stored units) is what aihwkit's InferenceTile stores as the gradient
 *     of its shared weights (d divided by the mapping scales, summed over all vectors) for
 *     a torch optimizer; rpu_tile_update applies W - lr grad exactly, then the post-update
 *     step clips/remaps/modifies. With a weight modifier the forward and backward used the
 *     modified copy, but the gradient goes to W (straight through).
 * d is the gradient w.r.t. the tile output before the backward's output-bound mask (the
 * mask affects only the input gradient, as in aihwkit). weight_scaling_lr_compensation
 * changes the learning rate of pulsed updates, not grad. n = 0 gives zeros.
 * Errors: RPU_ERR_ARG (NULL, n < 0, unknown units), RPU_ERR_NOMEM. Local. */
rpu_status rpu_tile_weight_grad(const rpu_tile *t, const float *x, const float *d, int n,
                                rpu_weight_units units, float *grad);
/* Rows [r0, r1) of rpu_tile_weight_grad's result into the same rows of grad [out, in] (the
 * other rows become 0); d is read in those rows only (a split update's holder keeps only
 * its own rows of d). Errors: those of rpu_tile_weight_grad, RPU_ERR_ARG (rows outside the
 * tile). Local. */
rpu_status rpu_tile_weight_grad_rows(const rpu_tile *t, const float *x, const float *d, int n,
                                     rpu_weight_units units, int r0, int r1, float *grad);

/* Post-update step after each optimizer step (spec §3.5, §6.4-§6.6): diffusion, then
 * decay (alpha 1), then weight clipping (clip.*), remapping (remap.*; the mapping scales
 * absorb the factor) and the weight modifier (modifier.*), which makes the copy of the
 * weights that training forwards and backwards use (eval forwards use the stored weights
 * unless modifier.enable_during_test), as configured. Local. */
rpu_status rpu_tile_post_update(rpu_tile *t);

/* Resets columns start .. start+count-1 (wrapping; count < 0: all), each device with
 * probability prob, to its reset bias plus reset_std noise (spec §3.5). Local. */
rpu_status rpu_tile_reset_columns(rpu_tile *t, int start, int count, float prob);

/* Device drift by dt (device.drift parameters, spec §4.1). Local. */
rpu_status rpu_tile_drift_weights(rpu_tile *t, double dt);

/* ------------------------------------------------------------------ realistic write (§8.2) */

typedef struct {
    float learning_rate; /* of the programming updates (default 0.1) */
    int max_iter;        /* update rounds at most (default 10000) */
    float tolerance;     /* stop when mean |Y - T| / max |T| < tolerance (default 0.01) */
    float w_init;        /* start from weights U(-w_init, w_init) (default 0.01) */
} rpu_program_params;

/* Fills aihwkit's program_weights defaults. Local. */
void rpu_program_params_default(rpu_program_params *p);

/* Writes the logical weights w [out, in] the way a chip is programmed (spec §8.2; local):
 * the mapping scales and stored targets are those of rpu_tile_set_weights(w, true); the
 * stored weights start from U(-w_init, w_init) (stream (seed, layer, tile, INIT)) and each
 * round reads the tile with a noisy forward of the identity (Y), stops when
 * mean |Y - T| / max |T| < tolerance (T the targets) or after max_iter rounds, and
 * otherwise applies the tile's own update (pulsed for pulsed devices) with x = I, d = Y - T
 * and the given learning rate, in stored units. p NULL: defaults. iterations and error
 * (NULL: not wanted) receive the rounds used and the final relative error; not reaching
 * the tolerance is not an error. Errors: RPU_ERR_ARG, RPU_ERR_NOMEM, those of the update. */
rpu_status rpu_tile_program_weights(rpu_tile *t, const float *w, const rpu_program_params *p,
                                    int *iterations, float *error);

/* ------------------------------------------------------------------ inference (spec §6) */

/* Programs the tile (inference config only; local): the reference weights (the stored
 * weights when first programmed after they last changed by set_weights or training) are
 * converted to a single conductance pair per cell (noise_model.g_max, g_min), given
 * programming noise and drift exponents drawn from the stream of programming repeat
 * `repeat` (< 4095; each repeat is an independent device realisation), and written back
 * as the stored weights; then the drift-compensation baseline is read with a noisy
 * forward of the identity. noise_model.type none programs exactly (no drift). The forward
 * and backward noise streams move to a region reserved for the repeat (block
 * (repeat + 1) << 50), so a repeat's IO noise does not depend on what ran before.
 * Errors: RPU_ERR_CONFIG (not an inference config), RPU_ERR_ARG, RPU_ERR_NOMEM. */
rpu_status rpu_tile_program(rpu_tile *t, uint64_t repeat);

/* Sets the stored weights to the programmed weights drifted to t_inference seconds after
 * programming, with 1/f read noise of read-out `draw` (< 2^24; the same draw of the same
 * repeat gives the same noise), then the compensation factor baseline / read-out (spec
 * §6.3), applied to eval forwards. Programs repeat 0 first if not programmed (local). */
rpu_status rpu_tile_drift_to(rpu_tile *t, double t_inference, uint32_t draw);

/* Inference state (local): whether the tile is programmed, the seconds since programming
 * of its current weights, the drift compensation factors [out] (1 until drifted; NULL
 * without inference state), and the weight modifier's forward/backward copy [out, in] used
 * by training forwards (NULL while there is none: no modifier, or not applied since the
 * weights last changed). */
bool rpu_tile_programmed(const rpu_tile *t);
double rpu_tile_t_inference(const rpu_tile *t);
const float *rpu_tile_compensation(const rpu_tile *t);
const float *rpu_tile_fb_weights(const rpu_tile *t);

/* Per-cell device state arrays ([out, in] floats each) by index 0..count-1 with their
 * aihwkit names (max_bound, min_bound, dwmin_up, dwmin_down, ...). Only the arrays the
 * configured features use exist. A compound device (device.type vector, reference,
 * one_sided, transfer, buffered_transfer, chopped_transfer, dynamic_transfer) lists aihwkit's
 * hidden parameters (compound spec §1.3): per sub-device k its arrays with suffix _k (max_bound_0,
 * ...), then hidden_weights_k (its hidden weights W_k; for a fully hidden transfer compound
 * hidden_weights_{n-1} is the visible weight itself), then the transfer buffers of
 * buffered_transfer and chopped_transfer (buffered_FP_weight_k) or dynamic_transfer
 * (buffered_FP_weight, running_mean_weight, past_mean_weight). rpu_tile_device_array returns NULL
 * for an unknown index. Local. */
int rpu_tile_device_array_count(const rpu_tile *t);
float *rpu_tile_device_array(const rpu_tile *t, int index, const char **name);
float *rpu_tile_device_array_by_name(const rpu_tile *t, const char *name);

/* Memory per cell: weights plus device state, in bytes. Local. */
double rpu_tile_bytes_per_cell(const rpu_tile *t);

/* Weight granularity of the device (dw_min for most; spec §3.3; a compound's: the mean of
 * its sub-devices', which its main pulse trains use, compound spec §1.2). Local. */
float rpu_tile_granularity(const rpu_tile *t);

/* aihwkit's set_hidden_update_index / get_hidden_update_index (compound spec §2.4): the
 * sub-device that a vector or reference compound with update_policy single_fixed updates and
 * that set_weights writes. A no-op (RPU_OK) for other devices. Errors: RPU_ERR_ARG for a NULL
 * tile or an index outside the sub-devices. Local. */
rpu_status rpu_tile_set_hidden_update_index(rpu_tile *t, int index);
int rpu_tile_get_hidden_update_index(const rpu_tile *t);

/* Construction-time IO values of the forward (dir 0) or backward (dir 1) pass, each of
 * length out_size (backward: in_size); NULL when the feature is off. For tests and the
 * checkpoint module. Local. */
const float *rpu_tile_out_noise_values(const rpu_tile *t, int dir);
const float *rpu_tile_v_offsets(const rpu_tile *t, int dir);
const float *rpu_tile_nonlinearity(const rpu_tile *t, int dir);

/* Running noise-management value of average_abs_max (shared by forward and backward). Local. */
float rpu_tile_nm_running(const rpu_tile *t);

/* Positions of the tile's forward/backward noise streams (calls made so far), so that a
 * checkpoint can restore them. Local. */
uint64_t rpu_tile_forward_calls(const rpu_tile *t);
uint64_t rpu_tile_backward_calls(const rpu_tile *t);
void rpu_tile_set_calls(rpu_tile *t, uint64_t forward_calls, uint64_t backward_calls);

/* ------------------------------------------------------------------ state (checkpoints) */

typedef enum {
    RPU_STATE_F32 = 0, /* float */
    RPU_STATE_U64 = 1, /* uint64_t */
    RPU_STATE_F64 = 2  /* double */
} rpu_state_type;

/* One named piece of a tile's state. `data` points into the tile: reading it saves the
 * state, writing `count` values into it (then rpu_tile_state_loaded) restores it. Arrays
 * of cells have rows x cols = out x in; vectors rows = count, cols = 1; scalars 1 x 1. */
typedef struct {
    const char *name;
    rpu_state_type type;
    size_t count;
    int rows, cols;
    void *data;
} rpu_state_item;

#define RPU_TILE_MAX_STATE_ITEMS 384

/* Bytes of an item's data (4 per float, 8 per uint64 or double). Local (pure). */
static inline size_t rpu_state_item_bytes(const rpu_state_item *it) {
    return it->count * (it->type == RPU_STATE_F32 ? 4u : 8u);
}

/* Lists everything needed to continue the tile bit for bit (local): "weights"; the device
 * arrays by their aihwkit names (max_bound, min_bound, dwmin_up, ...); "mapping_scales";
 * the construction-time IO values that exist ("forward.out_noise_values",
 * "forward.v_offset", "forward.out_nonlinearity", the same for "backward."); and the
 * scalars "nm_running", "nm_running_init", "forward_calls", "backward_calls",
 * "forward_next_block", "backward_next_block", "update_calls", "update_next_block",
 * "post_next_block", "drift_started", "drift_current_t". Which items exist depends only on
 * the tile's shape and config, so every tile built from the same config lists the same
 * names in the same order. Returns the number of items written to items (at most max). */
int rpu_tile_state_items(rpu_tile *t, rpu_state_item *items, int max);

/* Call after writing state through the items: refreshes derived caches (local). */
void rpu_tile_state_loaded(rpu_tile *t);

#ifdef __cplusplus
}
#endif
#endif
