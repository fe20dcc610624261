/* Reference convolution for the layer tests: direct nested loops (over image, output
 * channel, output position, input channel of the group, kernel offsets) in double, with
 * zero padding, stride, dilation and groups, for 1d/2d/3d. Slow and obvious on purpose;
 * nothing here calls the library except for the parameter struct it reads.
 *
 * Layouts as PyTorch: x [n, in_channels, size...], y [n, out_channels, out_size...],
 * w [out_channels, in_channels/groups, kernel...] (flattened: column c*K + kernel
 * position, kernel position row-major over the kernel dims), b [out_channels]. */
#ifndef RPUSIM_REF_CONV_H
#define RPUSIM_REF_CONV_H

#include "rpusim/layer.h"

#include <stddef.h>

/* Output spatial sizes (ndim values); returns 0, or -1 when an output size would be < 1. */
int ref_conv_out_size(const rpu_conv_params *p, const int *in_size, int *out_size);

/* Elements of one input image (C * prod(in_size)) and of one output image. */
size_t ref_conv_in_elems(const rpu_conv_params *p, const int *in_size);
size_t ref_conv_out_elems(const rpu_conv_params *p, const int *in_size);
/* Output positions per image (prod(out_size)). */
int ref_conv_out_positions(const rpu_conv_params *p, const int *in_size);

/* y = conv(x, w) + b (b may be NULL). */
void ref_conv_forward(const rpu_conv_params *p, const float *x, int n, const int *in_size,
                      const float *w, const float *b, float *y);

/* dx = gradient w.r.t. x of sum(y * dy) (transposed convolution, scattered back). */
void ref_conv_backward(const rpu_conv_params *p, const float *dy, int n, const int *in_size,
                       const float *w, float *dx);

/* dw = sum over images and positions of dy * x-patch; db[o] = sum of dy over images and
 * positions (db may be NULL). */
void ref_conv_weight_grad(const rpu_conv_params *p, const float *x, const float *dy, int n,
                          const int *in_size, float *dw, float *db);

/* im2col for groups == 1: cols [n * L, in_channels * K], row (image * L + position),
 * column c * K + kernel position, zeros for padding taps. */
void ref_im2col(const rpu_conv_params *p, const float *x, int n, const int *in_size, float *cols);

/* The adjoint of ref_im2col: dx [n, C, size...] = sum of dcols entries onto their taps. */
void ref_col2im(const rpu_conv_params *p, const float *dcols, int n, const int *in_size, float *dx);

#endif
