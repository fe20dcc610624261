/* rpusim — digital (non-analog) layers of a network: activations (relu, tanh, sigmoid),
 * max and average pooling (1d/2d/3d), flatten, dropout and the cross-entropy loss
 * (DESIGN.md, module `layer`: "digital layers").
 *
 * These layers run replicated: every rank passes the same input and gets the same output;
 * nothing here communicates, allocates, or keeps state between calls (no function is
 * collective). Every result is a deterministic function of the arguments (fixed loop
 * order; dropout draws from a keyed Philox stream, never from a global generator), so a
 * run is bitwise identical on any number of ranks.
 *
 * Layouts follow PyTorch (float32, row-major) as in rpusim/layer.h: pooling works on
 * [N, C, L], [N, C, H, W] or [N, C, D, H, W] with the spatial sizes given as an int array
 * of ndim entries; logits are [N, K].
 *
 * Errors: functions return RPU_ERR_ARG (with a message from rpu_last_error()) for NULL
 * pointers where data is needed, negative or inconsistent sizes and out-of-range
 * parameters; on an error no output has been written. Unless stated, outputs must not
 * overlap inputs. */
#ifndef RPUSIM_DIGITAL_H
#define RPUSIM_DIGITAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "rpusim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ activations
 *
 * Forward: y[i] = f(x[i]) for i < n. Backward: dx[i] = dy[i] * f'(x[i]), written from the
 * forward's OUTPUT y (so a network keeps only the outputs): relu: dy where y > 0, else 0;
 * tanh: dy (1 - y^2); sigmoid: dy y (1 - y). y may be the same array as x (in place) and
 * dx may be the same array as dy. n = 0 does nothing (pointers may then be NULL).
 *
 * relu: y = max(x, 0); a NaN input stays NaN (as PyTorch). At x = 0 the gradient is 0.
 * tanh: computed in double and rounded once to float (no libm call, so the same bits
 * with any C library): within (0.5 + 2^-14) ulp of the exact tanh, i.e. the correctly
 * rounded value except where tanh(x) lies within ~1e-12 relative of a midpoint between
 * two floats (none on the test's sweep of 4.3 million inputs); tanh(-0) = -0, NaN stays
 * NaN. sigmoid: 1 / (1 + exp(-x)), computed as exp(x) / (1 + exp(x)) for x < 0
 * so that no intermediate overflows. Local. */
rpu_status rpu_relu_forward(const float *x, size_t n, float *y);
rpu_status rpu_relu_backward(const float *y, const float *dy, size_t n, float *dx);
rpu_status rpu_tanh_forward(const float *x, size_t n, float *y);
rpu_status rpu_tanh_backward(const float *y, const float *dy, size_t n, float *dx);
rpu_status rpu_sigmoid_forward(const float *x, size_t n, float *y);
rpu_status rpu_sigmoid_backward(const float *y, const float *dy, size_t n, float *dx);

/* ------------------------------------------------------------------ pooling
 *
 * Windows as PyTorch's MaxPoolNd / AvgPoolNd with ceil_mode = False and dilation 1: along
 * each spatial dimension d
 *     out[d] = floor((in[d] + 2 padding[d] - kernel[d]) / stride[d]) + 1,
 * window o covers input positions o*stride[d] - padding[d] + [0, kernel[d]).
 * Requirements (else RPU_ERR_ARG): 1 <= ndim <= 3; kernel >= 1; stride >= 0 (0 means
 * stride = kernel, PyTorch's default); 0 <= padding <= kernel / 2 (PyTorch's rule, so
 * every window holds at least one real input); in[d] + 2 padding[d] >= kernel[d];
 * one channel plane prod(in) < 2^31.
 *
 * Max pooling pads with -inf: y is the maximum of the real inputs of the window. Its
 * argmax is the flat index (within the input's channel plane, row-major over the spatial
 * dimensions, as PyTorch's return_indices) of the FIRST maximal input in scan order
 * (row-major over the window: depth, then height, then width); ties therefore go to the
 * earliest position and padding is never chosen. A NaN in the window gives NaN and points
 * at the first NaN. The argmax buffer is provided by the caller: int32 [N, C, out...],
 * filled by the forward and read by the backward (it may be NULL in the forward when no
 * backward follows).
 *
 * Average pooling pads with zeros and divides by prod(kernel) (PyTorch's default
 * count_include_pad = True; with ceil_mode = False no window reaches past the padding, so
 * every divisor is prod(kernel)). When exclude_pad is true the divisor is instead the
 * number of real inputs in the window (count_include_pad = False). Window sums are
 * accumulated in double.
 *
 * Backward: dx (fully overwritten, [N, C, in...]) receives, for max pooling, dy of each
 * window added at its argmax; for average pooling dy / divisor added to every real input
 * of the window. Additions run in the fixed order of the output windows. */
typedef struct {
    int ndim;         /* number of spatial dimensions: 1, 2 or 3 */
    int kernel[3];    /* first ndim entries used */
    int stride[3];    /* 0: equal to kernel */
    int padding[3];   /* each side; <= kernel / 2 */
    bool exclude_pad; /* average pooling only: false (default) = count_include_pad */
} rpu_pool_params;

/* Fills p for an ndim-d pooling with a cubic kernel k: stride = kernel, padding 0,
 * count_include_pad. Local (pure). */
void rpu_pool_params_default(rpu_pool_params *p, int ndim, int k);

/* Output spatial sizes out[0..ndim) for input sizes in[0..ndim); checks p and in. Local (pure). */
rpu_status rpu_pool_output_size(const rpu_pool_params *p, const int *in_size, int *out_size);

/* x [n, c, in...] -> y [n, c, out...]; argmax [n, c, out...] or NULL. Local. */
rpu_status rpu_maxpool_forward(const rpu_pool_params *p, const float *x, int n, int c,
                               const int *in_size, float *y, int32_t *argmax);
/* dy [n, c, out...] and the forward's argmax -> dx [n, c, in...]. Indices outside a
 * channel plane give RPU_ERR_ARG. Local. */
rpu_status rpu_maxpool_backward(const rpu_pool_params *p, const float *dy, const int32_t *argmax,
                                int n, int c, const int *in_size, float *dx);
rpu_status rpu_avgpool_forward(const rpu_pool_params *p, const float *x, int n, int c,
                               const int *in_size, float *y);
rpu_status rpu_avgpool_backward(const rpu_pool_params *p, const float *dy, int n, int c,
                                const int *in_size, float *dx);

/* ------------------------------------------------------------------ flatten
 *
 * Flatten [N, C, spatial...] -> [N, C * prod(spatial)] is a no-op on row-major data: the
 * same buffer is read with the new shape, and the gradient passes through unchanged. This
 * helper gives the feature count C * prod(size[0..ndim)) (ndim 0..3); RPU_ERR_ARG if a size
 * is < 1 or the product does not fit an int. Local (pure). */
rpu_status rpu_flatten_features(int c, int ndim, const int *size, int *features);

/* ------------------------------------------------------------------ dropout
 *
 * Training: element i is dropped (y = 0) when u_i < p, else kept and scaled:
 * y = x * (1 / (1 - p)); u_i is the i-th uniform (24-bit, rpu_rng_uniform_at) of the
 * Philox stream with key `seed` and stream id rpu_stream_id(layer_id, 0, RPU_PURPOSE_DATA),
 * starting at block step * 2^32. So the mask is a pure function of (seed, layer_id, step,
 * i): identical on every rank, different for every step, and steps never share random
 * numbers (n <= 2^34 values per step; step < 2^32). Callers that draw other DATA-purpose
 * numbers (shuffling) must use stream ids that no dropout layer_id uses (layer_id is taken
 * modulo 2^24). p = 1 drops everything; p = 0 keeps everything.
 * Eval (training = false): y = x, mask = 1.
 *
 * mask_out [n] (required) receives the factor applied to each element — 0 or 1/(1-p) in
 * training, 1 in eval — so that y[i] = x[i] * mask[i] and the backward is
 * dx[i] = dy[i] * mask[i]. y may be the same array as x; dx may be the same array as dy.
 * Errors: p outside [0, 1] or NaN, step >= 2^32, n > 2^34, NULL pointers (n > 0). Local. */
rpu_status rpu_dropout_forward(const float *x, size_t n, float p, bool training, uint64_t seed,
                               uint32_t layer_id, uint64_t step, float *mask_out, float *y);
/* The same for the elements [first, first + n) of a step's batch: x, mask_out and y are
 * that range (a rank's own samples), and the mask is bitwise the part of the whole call's
 * (first + n <= 2^34). Local. */
rpu_status rpu_dropout_forward_at(const float *x, size_t first, size_t n, float p, bool training,
                                  uint64_t seed, uint32_t layer_id, uint64_t step, float *mask_out,
                                  float *y);
rpu_status rpu_dropout_backward(const float *dy, const float *mask, size_t n, float *dx);

/* ------------------------------------------------------------------ loss
 *
 * Cross-entropy of logits [n, k] against labels [n] (each < k) with a numerically stable
 * log-softmax (PyTorch's CrossEntropyLoss, reduction 'mean'):
 *     m_i = max_j z_ij,  lse_i = m_i + log(sum_j exp(z_ij - m_i)),
 *     loss_i = lse_i - z_i,label,  *loss_mean = (1/n) sum_i loss_i,
 *     dlogits_ij = (softmax_ij - [j == label_i]) / n   (gradient of the MEAN loss),
 * with the exponentials, sums and logarithm in double. *correct counts the rows whose
 * argmax (first maximum on ties) equals the label. dlogits and correct may be NULL
 * (evaluation). Non-finite logits give a NaN or infinite loss, not an error.
 * Errors: n < 1, k < 1, a label >= k, NULL logits/labels/loss_mean. Local. */
rpu_status rpu_cross_entropy(const float *logits, const uint8_t *labels, int n, int k,
                             double *loss_mean, float *dlogits, int *correct);

#ifdef __cplusplus
}
#endif
#endif
