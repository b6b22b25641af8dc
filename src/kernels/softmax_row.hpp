#pragma once
// Private to src: one row's softmax, shared by the softmax activation and the fused softmax
// cross-entropy, so the probabilities the loss reports are the activation's, bit for bit.

#include <cmath>
#include <cstdint>

namespace bnlab::kernels {

struct SoftmaxRow {
  float max;  // the row's maximum, subtracted before exp so that exp cannot overflow
  float sum;  // sum of exp(x - max); the loss is log(sum) - (x[label] - max)
};

// out[c] = exp(in[c] - max) / sum for c < cols (cols >= 1); out may be in.
inline SoftmaxRow softmax_row(std::int64_t cols, const float* in, float* out) {
  float max = in[0];
  for (std::int64_t c = 1; c < cols; ++c) max = in[c] > max ? in[c] : max;
  float sum = 0.0f;
  for (std::int64_t c = 0; c < cols; ++c) {
    out[c] = std::exp(in[c] - max);
    sum += out[c];
  }
  const float inv_sum = 1.0f / sum;
  for (std::int64_t c = 0; c < cols; ++c) out[c] *= inv_sum;
  return {max, sum};
}

}  // namespace bnlab::kernels
