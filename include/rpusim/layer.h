/* rpusim — mapped convolution (1d/2d/3d) and mapped linear layers whose tiles are spread
 * over the ranks of a communicator (aihwkit's AnalogConvNdMapped / AnalogLinearMapped,
 * spec §1, §7; DESIGN.md "Distributed model").
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
 * weights [out, in]. */
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

typedef struct {
    int ndim; /* 1, 2 or 3 */
    int in_channels;
    int out_channels;
    int kernel[3]; /* first ndim entries used */
    int stride[3];
    int padding[3];
    int dilation[3];
    int groups; /* in_channels and out_channels divisible by groups */
    bool bias;  /* digital (mapping.digital_bias) or analog bias column */
    rpu_padding_mode padding_mode;
    bool use_indexed;  /* gather patches through a precomputed index table (true) or
                          unfold them with loops (false); results are identical */
    uint32_t layer_id; /* key of the layer's random streams */
    uint64_t seed;     /* run seed */
    rpu_mac_mode mac;  /* analog MAC of the tiles (RPU_MAC_BLAS default) */
} rpu_conv_params;

/* Fills p for an ndim-d convolution in -> out channels with a cubic kernel k: stride 1,
 * padding 0, dilation 1, groups 1, bias on, zeros padding, use_indexed as the default
 * (see README), layer_id 0, seed 0. */
void rpu_conv_params_default(rpu_conv_params *p, int ndim, int in_channels, int out_channels,
                             int k);

/* aihwkit's get_tile_size: (in_channels / groups) * prod(kernel[0..ndim)). */
int rpu_conv_tile_size(int in_channels, int groups, int ndim, const int *kernel);

/* Creates the layer on a duplicate of comm (collective): builds the tile grid from
 * cfg->mapping (spec §1.3), creates the tiles this rank owns, and initialises the weights
 * as PyTorch does (kaiming-uniform a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias
 * the same), drawn from stream (seed, layer_id, 0, RPU_PURPOSE_INIT) so every rank draws
 * the same values. Errors: RPU_ERR_ARG (sizes, NULL), RPU_ERR_MODULE (kernel larger than
 * max_input_size: "tile size too small to fit a single kernel: 9 > 8"; padding mode other
 * than zeros), RPU_ERR_CONFIG (invalid config), RPU_ERR_NOMEM, RPU_ERR_MPI. */
rpu_status rpu_conv_create(MPI_Comm comm, const rpu_conv_params *p, const rpu_config *cfg,
                           rpu_conv **layer);

/* Frees the layer (collective: frees the duplicated communicator); sets *layer to NULL;
 * accepts NULL. */
void rpu_conv_destroy(rpu_conv **layer);

/* Creates a layer and sets the given PyTorch weights [out, in/groups, k...] and bias [out]
 * (NULL: zero) (collective). */
rpu_status rpu_conv_from_digital(MPI_Comm comm, const rpu_conv_params *p, const rpu_config *cfg,
                                 const float *weight, const float *bias, rpu_conv **layer);

/* The weights in PyTorch layout (collective), as rpu_conv_get_weights. */
rpu_status rpu_conv_to_digital(rpu_conv *l, float *weight, float *bias, bool realistic);

/* Output spatial size for an input spatial size (ndim values each):
 * (size + 2 p - d (k - 1) - 1) / s + 1. RPU_ERR_ARG if the input is too small. */
rpu_status rpu_conv_output_size(const rpu_conv *l, const int *in_size, int *out_size);

/* Training mode (default true) keeps inputs and gradients for update and the tiles'
 * gradient masks; eval mode does not (like torch's train()/eval()). Local. */
void rpu_conv_set_training(rpu_conv *l, bool training);

/* Forward (collective): x [n, in_channels, in_size...] -> y [n, out_channels, out_size...]
 * on every rank. Errors: RPU_ERR_ARG (n < 1, NULL, input smaller than the kernel),
 * RPU_ERR_NOMEM, RPU_ERR_MPI. */
rpu_status rpu_conv_forward(rpu_conv *l, const float *x, int n, const int *in_size, float *y);

/* Backward (collective) of the last forward: dy [n, out_channels, out_size...] -> dx
 * [n, in_channels, in_size...] (dx may be NULL when no input gradient is needed; the
 * call is then local). Keeps dy for update and the digital bias gradient. */
rpu_status rpu_conv_backward(rpu_conv *l, const float *dy, float *dx);

/* SGD step (local: owned tiles only, no communication): every owned tile's update from the
 * patches of the last forward input and backward gradient (W <- W - lr dᵀ x through the
 * device model), then its post-update step (decay, diffusion); the digital bias by plain
 * SGD b <- b - lr sum(dy) (replicated on every rank). */
rpu_status rpu_conv_update(rpu_conv *l, float lr);

/* Inference (spec §6.3; inference configs): programs every owned tile with programming
 * repeat `repeat`, or drifts them to t_inference seconds after programming with read-out
 * `draw` and updates their drift compensation (rpu_tile_program / rpu_tile_drift_to).
 * Local: each rank handles its owned tiles; no communication. */
rpu_status rpu_conv_program(rpu_conv *l, uint64_t repeat);
rpu_status rpu_conv_drift(rpu_conv *l, double t_inference, uint32_t draw);

/* Weights in PyTorch layout [out, in/groups, k...] and bias [out] (NULL: unchanged /
 * not wanted). set: collective only in the sense that every rank must pass the same
 * values (each sets its own tiles; the per-tile weight scaling of spec §7 applies).
 * get: collective. realistic false: the stored weights times the mapping scales, gathered
 * exactly from the owners. realistic true (spec §8.1): each tile, in tile order, is
 * estimated from its responses to over_sampling x cols standard-normal probe vectors
 * (stream (seed, layer, tile, RPU_PURPOSE_READOUT), advancing with each read-out; the
 * analog-bias column driven by 1): its owner runs the noisy eval forward (IO model,
 * mapping scales, drift compensation), broadcasts the responses, and the least-squares
 * weights are solved with ScaLAPACK across the layer's communicator (rpu_readout_lstsq).
 * The result is the same on every rank and, to rounding of the solve, on every rank
 * count. The digital bias is returned as is; an analog bias is estimated with the
 * weights. Errors: RPU_ERR_NOMEM, RPU_ERR_ARG (rank-deficient probes), RPU_ERR_MPI. */
rpu_status rpu_conv_set_weights(rpu_conv *l, const float *weight, const float *bias);
rpu_status rpu_conv_get_weights(rpu_conv *l, float *weight, float *bias, bool realistic);
/* Realistic write (spec §8.2; collective): each owned tile is programmed towards its
 * block of weight/bias by closed-loop pulsed updates (rpu_tile_program_weights with p;
 * NULL: defaults); the digital bias is set exactly. max_iterations / max_error (NULL: not
 * wanted) receive the largest rounds used and relative read error over all tiles, the
 * same on every rank. Errors are agreed: every rank returns the first failure. */
rpu_status rpu_conv_program_weights(rpu_conv *l, const float *weight, const float *bias,
                                    const rpu_program_params *p, int *max_iterations,
                                    float *max_error);
/* Probe vectors per tile input of the realistic read-out (aihwkit's over_sampling;
 * default 10; 1..1000). Local setting; use the same value on every rank. */
rpu_status rpu_conv_set_readout_oversampling(rpu_conv *l, int over_sampling);

/* The layer's tile grid (owners for this communicator's size), its communicator, the
 * tile with grid index t if this rank owns it (else NULL), and the digital bias and its
 * gradient from the last backward (NULL without a digital bias). */
const rpu_tile_grid *rpu_conv_grid(const rpu_conv *l);
MPI_Comm rpu_conv_comm(const rpu_conv *l);
rpu_tile *rpu_conv_tile(const rpu_conv *l, int t);
float *rpu_conv_bias(rpu_conv *l);
const float *rpu_conv_bias_grad(const rpu_conv *l);
const rpu_conv_params *rpu_conv_get_params(const rpu_conv *l);
/* The layer's rpu_config (as given at create). */
const rpu_config *rpu_conv_config(const rpu_conv *l);
/* True for the conv layer behind an rpu_linear (ndim 0: input [n, in], one patch each). */
bool rpu_conv_is_linear(const rpu_conv *l);
/* Call after restoring the owned tiles' state items (rpu_tile_state_items): refreshes
 * every owned tile and drops the kept training inputs (local). */
void rpu_conv_state_loaded(rpu_conv *l);
/* Number of weights (out * in/groups * prod(kernel)). */
int rpu_conv_weight_count(const rpu_conv *l);

/* ------------------------------------------------------------------ linear */

typedef struct rpu_linear rpu_linear;

typedef struct {
    int in_features;
    int out_features;
    bool bias;
    uint32_t layer_id;
    uint64_t seed;
    rpu_mac_mode mac;
} rpu_linear_params;

/* As the rpu_conv_* functions, for AnalogLinearMapped: x [n, in] -> y [n, out], weights
 * [out, in], bias [out]; the input features are split by max_input_size (unit 1). */
rpu_status rpu_linear_create(MPI_Comm comm, const rpu_linear_params *p, const rpu_config *cfg,
                             rpu_linear **layer);
void rpu_linear_destroy(rpu_linear **layer);
rpu_status rpu_linear_from_digital(MPI_Comm comm, const rpu_linear_params *p, const rpu_config *cfg,
                                   const float *weight, const float *bias, rpu_linear **layer);
rpu_status rpu_linear_to_digital(rpu_linear *l, float *weight, float *bias, bool realistic);
void rpu_linear_set_training(rpu_linear *l, bool training);
rpu_status rpu_linear_forward(rpu_linear *l, const float *x, int n, float *y);
rpu_status rpu_linear_backward(rpu_linear *l, const float *dy, float *dx);
rpu_status rpu_linear_update(rpu_linear *l, float lr);
rpu_status rpu_linear_set_weights(rpu_linear *l, const float *weight, const float *bias);
rpu_status rpu_linear_get_weights(rpu_linear *l, float *weight, float *bias, bool realistic);
/* The conv layer (ndim 0) that implements it, for the grid/tile accessors above. */
rpu_conv *rpu_linear_as_conv(rpu_linear *l);

#ifdef __cplusplus
}
#endif
#endif
