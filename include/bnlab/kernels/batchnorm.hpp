#pragma once
// BatchNorm kernels: plain functions over caller-owned float32 buffers, forward and backward
// side by side. No allocation, no I/O, no globals. See docs/batchnorm.md.
//
// Every call views its tensor as N x C x S with S = H*W (S = 1 for NC):
//   NC    x[n][c]          (features innermost; statistics per feature over N)
//   NCHW  x[n][c][s]       (statistics per channel over N*H*W)
//   NHWC  x[n][s][c]       (statistics per channel over N*H*W; same memory order as NC with N*S rows)
// gamma, beta, means, variances and inverse standard deviations are float[C].
//
// Threads: OpenMP, using omp_get_max_threads(). Results are bit-identical for every thread
// count and every vector width: reductions follow a fixed order set by the shape alone.
//
// Errors: std::invalid_argument naming the argument and its value (non-positive dimensions,
// N*C*S whose byte count overflows int64, epsilon <= 0 or not finite, momentum outside [0, 1],
// a required pointer that is null, the unbiased running variance of a single value per
// channel). Non-finite inputs propagate as NaN.

#include <cstdint>
#include <optional>

#include "bnlab/tensor.hpp"

namespace bnlab::kernels {

struct BatchNormShape {
  std::int64_t batch = 0;      // N
  std::int64_t channels = 0;   // C
  std::int64_t spatial = 1;    // S = H*W, 1 for NC
  Layout layout = Layout::NC;  // NC, NCHW or NHWC

  std::int64_t count_per_channel() const { return batch * spatial; }  // m, the reduction size
  std::int64_t size() const { return batch * channels * spatial; }
};

// An activation folded into the kernel to save a pass over memory.
enum class FusedActivation { none, relu };

// Forward in training: batch statistics, normalize, scale, shift (and ReLU when fused).
//   y = act(gamma * (x - mean) * inv_std + beta),  inv_std = 1 / sqrt(var + epsilon)
//   x, y: N*C*S in shape.layout (y may alias x); gamma, beta: C or nullptr (scale/center off:
//   gamma = 1, beta = 0). Writes saved_mean[C] and saved_inv_std[C] (what backward needs) and,
//   when batch_variance is not null, the biased batch variance[C] (for the moving statistics).
// With a single value per channel (m = N*S = 1) the mean is that value and the biased variance
// 0, so y = act(beta), as in Keras (tf.nn.moments); PyTorch's nn.BatchNorm refuses such a batch
// in training, and so do the pytorch-convention layer and update_running_statistics_pytorch.
void batchnorm_forward_training(const BatchNormShape& shape, const float* x, const float* gamma, const float* beta,
                                float epsilon, float* y, float* saved_mean, float* saved_inv_std, float* batch_variance,
                                FusedActivation activation = FusedActivation::none);

// Forward in inference with given statistics (moving statistics, or any mean/variance: this is
// also the functional form, tf.nn.batch_normalization(x, mean, variance, offset, scale, eps)).
//   y = act(gamma * (x - mean) / sqrt(variance + epsilon) + beta)
//   mean, variance: C; gamma, beta: C or nullptr. y may alias x. Any N*S >= 1.
void batchnorm_forward_inference(const BatchNormShape& shape, const float* x, const float* mean, const float* variance,
                                 const float* gamma, const float* beta, float epsilon, float* y,
                                 FusedActivation activation = FusedActivation::none);

// Backward of the training forward, in closed form (m = N*S, xhat = (x - mean) * inv_std):
//   dbeta  = sum(dy'),  dgamma = sum(dy' * xhat)
//   dx     = gamma * inv_std / m * (m * dy' - dbeta - xhat * dgamma)
// where dy' = dy zeroed where y <= 0 when the ReLU is fused (a NaN y lets it pass, as in
// PyTorch; y recomputed from x bit for bit as the
// forward computed it, so nothing but x and dy is read). x, dy, dx: N*C*S; dx may alias dy, or be
// nullptr when only dgamma and dbeta are wanted (a model's first layer, whose input gradient
// nothing reads: one pass over x and dy instead of three). saved_mean, saved_inv_std: C from the
// forward. gamma, beta: C or nullptr as in the forward (beta is read only for the fused ReLU's
// mask). dgamma, dbeta: C outputs, or nullptr to skip; at least one of dx, dgamma, dbeta.
void batchnorm_backward(const BatchNormShape& shape, const float* x, const float* dy, const float* gamma,
                        const float* beta, const float* saved_mean, const float* saved_inv_std, float* dx,
                        float* dgamma, float* dbeta, FusedActivation activation = FusedActivation::none);

// Backward of the inference forward (statistics held constant, as when a frozen BatchNorm is
// fine-tuned): dx = dy' * gamma * inv_std (or nullptr, as above); dgamma, dbeta as above.
// mean, variance: C. Without the fused ReLU, dx is computed from dy alone (x is read only for
// dgamma and dbeta), so it is finite where x is not, as in PyTorch's eval-mode backward.
void batchnorm_backward_inference(const BatchNormShape& shape, const float* x, const float* dy, const float* mean,
                                  const float* variance, const float* gamma, const float* beta, float epsilon,
                                  float* dx, float* dgamma, float* dbeta,
                                  FusedActivation activation = FusedActivation::none);

// Moving statistics, Keras convention (tf.keras.layers.BatchNormalization; momentum 0.99,
// epsilon 1e-3): moving = moving * momentum + batch * (1 - momentum), with the BIASED batch
// variance. momentum in [0, 1].
void update_moving_statistics_keras(std::int64_t channels, const float* batch_mean, const float* batch_variance,
                                    float momentum, float* moving_mean, float* moving_variance);

// Running statistics, PyTorch convention (torch.nn.BatchNorm*; momentum 0.1, eps 1e-5):
// running = (1 - momentum) * running + momentum * batch, with the UNBIASED batch variance
// (biased * m / (m - 1)). momentum = nullopt is PyTorch's momentum=None: a cumulative average
// with factor 1 / num_batches_tracked, where num_batches_tracked counts this batch (call it
// after incrementing). count_per_channel is m = N*S >= 2.
void update_running_statistics_pytorch(std::int64_t channels, std::int64_t count_per_channel, const float* batch_mean,
                                       const float* batch_variance, std::optional<float> momentum,
                                       std::int64_t num_batches_tracked, float* running_mean, float* running_var);

}  // namespace bnlab::kernels
