#pragma once
// Group normalization kernels: the per-sample members of the normalization family seed 004
// names (Layer and Group Normalization; instance normalization is one group per channel).
// Plain functions over caller-owned float32 buffers, forward and backward side by side. No
// allocation, no I/O, no globals.
//
// The tensor is N x C x S as in batchnorm.hpp (NC with S = 1, NCHW, NHWC); its C channels fall
// into G equal groups, group g holding channels [g*C/G, (g+1)*C/G). Statistics are per sample
// and group, over the group's m = (C/G)*S values, so training and inference compute the same
// thing and any batch size works:
//   mean[n*G + g], variance (biased, as PyTorch's group_norm and layer_norm and Keras's),
//   inv_std[n*G + g] = 1 / sqrt(variance + epsilon)
//   y = gamma[c] * (x - mean) * inv_std + beta[c]
// Layer normalization over the last F features of each row is G = 1 on an NC view (N*rows, F).
//
// The passes are BatchNorm's vectorized loops (kernels/batchnorm_loops.hpp: moments about the
// group's first value, 16 float lanes folded into double, the same bits at every vector width).
// Threads: OpenMP over samples (layer normalization: fixed chunks of 32 rows) and, for dgamma
// and dbeta, over channels adding the samples' (chunks') partial sums in order; every sum has an
// order fixed by the shape, so the bits are the same on any thread count. As in BatchNorm's
// loops, a sum starts in float lanes (16 vectors of a run, or 16 rows' terms per channel for
// dgamma and dbeta) and goes on in double, so terms that cancel within one such fold lose what
// float cannot hold. Scratch arrays are kept per thread and only grow.
//
// Errors: std::invalid_argument naming the argument and its value (non-positive dimensions, a
// group count that does not divide C, epsilon <= 0 or not finite, a required pointer that is
// null). Non-finite inputs propagate as NaN.

#include <cstdint>

#include "bnlab/tensor.hpp"

namespace bnlab::kernels {

struct GroupNormShape {
  std::int64_t batch = 0;      // N
  std::int64_t channels = 0;   // C
  std::int64_t spatial = 1;    // S = H*W, 1 for NC
  Layout layout = Layout::NC;  // NC, NCHW or NHWC
  std::int64_t groups = 1;     // G, dividing C

  std::int64_t channels_per_group() const { return channels / groups; }
  std::int64_t count_per_group() const { return channels_per_group() * spatial; }  // m
  std::int64_t size() const { return batch * channels * spatial; }
};

// Forward: x, y: N*C*S in shape.layout (y may alias x); gamma, beta: C or nullptr (scale or
// center off: gamma = 1, beta = 0). Writes saved_mean[N*G] and saved_inv_std[N*G], what
// backward needs. A group of one value (m = 1) has variance 0, so y = beta there.
void group_norm_forward(const GroupNormShape& shape, const float* x, const float* gamma, const float* beta,
                        float epsilon, float* y, float* saved_mean, float* saved_inv_std);

// Backward of the forward, in closed form per group (xhat = (x - mean) * inv_std, g = dy * gamma):
//   dx = inv_std * (g - mean(g) - xhat * mean(g * xhat))   (means over the group's m values)
//   dgamma[c] = sum over n and s of dy * xhat,  dbeta[c] = sum over n and s of dy
// dx, dgamma and dbeta may each be nullptr (not computed), but not all three.
void group_norm_backward(const GroupNormShape& shape, const float* x, const float* dy, const float* gamma,
                         const float* saved_mean, const float* saved_inv_std, float* dx, float* dgamma, float* dbeta);

}  // namespace bnlab::kernels
