#pragma once
// Conv2D over NHWC (Keras channels_last) by im2col + GEMM, forward and backward side by side.
//   x:       (N, H, W, Cin)            NHWC
//   kernel:  (KH, KW, Cin, Cout)       Keras's HWIO order = a (K, Cout) matrix, K = KH*KW*Cin
//   bias:    (Cout)
//   y, dy:   (N, OH, OW, Cout)         NHWC = an (M, Cout) matrix, M = N*OH*OW
//   columns: (M, K)                    row m = the input patch under output pixel m, in
//                                      (kh, kw, cin) order; zeros where the patch is padding
// So y = columns * kernel + bias is one GEMM, and backward is two more:
//   dkernel = columns^T * dy,  dcolumns = dy * kernel^T,  dx = col2im(dcolumns).
// Determinism: im2col writes disjoint rows; col2im, whose patches overlap, gives each thread
// whole samples and adds in a fixed order; the GEMMs never split K (see gemm.hpp).

#include <cstdint>

#include "bnlab/kernels/window.hpp"

namespace bnlab::kernels {

struct Conv2DShape {
  std::int64_t batch = 0, in_height = 0, in_width = 0, in_channels = 0;
  std::int64_t out_channels = 0, kernel_height = 0, kernel_width = 0;
  std::int64_t stride_height = 1, stride_width = 1;
  std::int64_t pad_top = 0, pad_left = 0;
  std::int64_t out_height = 0, out_width = 0;

  std::int64_t patch_size() const { return kernel_height * kernel_width * in_channels; }  // K
  std::int64_t output_pixels() const { return batch * out_height * out_width; }           // M
  std::int64_t columns_size() const { return output_pixels() * patch_size(); }
};

// Fills the output size and padding from Keras's rules (window.hpp). Throws
// std::invalid_argument naming the argument for non-positive sizes or a valid window that does
// not fit. batch may be 0 when only the per-sample output shape is wanted.
Conv2DShape conv2d_shape(std::int64_t batch, std::int64_t height, std::int64_t width, std::int64_t in_channels,
                         std::int64_t filters, std::int64_t kernel_height, std::int64_t kernel_width,
                         std::int64_t stride_height, std::int64_t stride_width, Padding padding);

// columns (M, K) from x (N, H, W, Cin).
void im2col_nhwc(const Conv2DShape& shape, const float* x, float* columns);
// dx (N, H, W, Cin) = the sum of every patch row of dcolumns (M, K) back at its place; dx is
// overwritten, not accumulated into.
void col2im_nhwc(const Conv2DShape& shape, const float* dcolumns, float* dx);

// y = conv(x, kernel) + bias. bias may be nullptr (use_bias=False). columns is caller-owned
// workspace of columns_size() floats; on return it holds im2col(x), which backward reads.
void conv2d_forward(const Conv2DShape& shape, const float* x, const float* kernel, const float* bias,
                    float* columns, float* y);

// Reads dy, kernel and the columns left by the forward of the same x; overwrites columns with
// dcolumns (so no second M x K buffer is needed; call backward once per forward). Writes
// dkernel (K, Cout), dbias (Cout; skipped when nullptr) and dx (skipped when nullptr, e.g. for
// the first layer, which saves the dcolumns GEMM and col2im).
void conv2d_backward(const Conv2DShape& shape, const float* dy, const float* kernel, float* columns,
                     float* dx, float* dkernel, float* dbias);

}  // namespace bnlab::kernels
