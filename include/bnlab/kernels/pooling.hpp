#pragma once
// MaxPool2D over NHWC, forward and backward side by side.
//   x, dx:        (N, H, W, C)    NHWC
//   y, dy:        (N, OH, OW, C)  NHWC
//   argmax:       int32 (N, OH, OW, C): the flat index inside its sample (h * W + w) * C + c of
//                 the input that won; what backward needs, so it never rereads x.
// Padding "same" pads with cells that never win (Keras/TensorFlow: padding is ignored, not
// zero), so a window always holds at least one real input. Ties go to the first cell in
// (kh, kw) order. NaN wins and propagates.

#include <cstdint>

#include "bnlab/kernels/window.hpp"

namespace bnlab::kernels {

struct Pool2DShape {
  std::int64_t batch = 0, in_height = 0, in_width = 0, channels = 0;
  std::int64_t pool_height = 0, pool_width = 0, stride_height = 1, stride_width = 1;
  std::int64_t pad_top = 0, pad_left = 0;
  std::int64_t out_height = 0, out_width = 0;

  std::int64_t input_size() const { return batch * in_height * in_width * channels; }
  std::int64_t output_size() const { return batch * out_height * out_width * channels; }
};

// Throws std::invalid_argument naming the argument for non-positive sizes, a valid window that
// does not fit, or a sample too large for int32 indices.
Pool2DShape pool2d_shape(std::int64_t batch, std::int64_t height, std::int64_t width, std::int64_t channels,
                         std::int64_t pool_height, std::int64_t pool_width, std::int64_t stride_height,
                         std::int64_t stride_width, Padding padding);

void maxpool2d_forward(const Pool2DShape& shape, const float* x, float* y, std::int32_t* argmax);
// dx is overwritten: dy routed to the winners, zero elsewhere; overlapping windows add.
void maxpool2d_backward(const Pool2DShape& shape, const float* dy, const std::int32_t* argmax, float* dx);

}  // namespace bnlab::kernels
