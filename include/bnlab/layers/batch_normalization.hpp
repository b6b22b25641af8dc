#pragma once
// WHAT THIS OBJECT REPRESENTS
//   tf.keras.layers.BatchNormalization, and through BatchNorm1d/BatchNorm2d the same layer with
//   torch.nn.BatchNorm*'s conventions. Per channel c (the `axis` dimension):
//     training:  y = gamma * (x - batch_mean) / sqrt(batch_var + epsilon) + beta, then the
//                moving statistics are updated from the batch's
//     inference: y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta
//   Keras convention: moving = momentum * moving + (1 - momentum) * batch, biased batch
//   variance (momentum 0.99, epsilon 1e-3). PyTorch convention: running = (1 - momentum) *
//   running + momentum * batch, unbiased batch variance, momentum = nullopt for a cumulative
//   average over num_batches_tracked batches (momentum 0.1, eps 1e-5). PyTorch's
//   track_running_stats = false: no running statistics at all, and batch statistics in
//   inference too (the inference formula above then does not apply).
// REQUIRES
//   epsilon > 0 and finite; momentum in [0, 1] (nullopt only with the PyTorch convention);
//   track_running_stats false only with the PyTorch convention;
//   initializers known to initializers.hpp; build() with a per-sample shape of rank
//   min_input_rank..max_input_rank whose `axis` (Keras numbering: 0 is the batch, negative
//   counts from the end) is the last dimension (channels last: {features} -> NC kernel,
//   {H, W, C} -> NHWC kernel) or dimension 1 (channels first: {C, H, W} -> NCHW kernel);
//   num_features, when given, equal to that dimension. Training with the PyTorch convention
//   needs N * H * W >= 2 (its running variance is unbiased), and so does inference without
//   running statistics; with Keras's a single value per channel normalizes to beta (variance
//   0), as Keras does.
// ENSURES
//   parameters() in Keras's order: gamma (when scale), beta (when center), both trainable;
//   moving_mean, moving_variance, non-trainable with undefined grad (2C + 2C for summary());
//   without running statistics only gamma and beta. backward after a forward with batch
//   statistics is the full batch-statistics gradient; after an inference forward with the
//   moving statistics it holds them constant.
//   Violations throw std::invalid_argument naming the layer, the argument and the value.

#include <cstdint>
#include <optional>
#include <string>

#include "bnlab/kernels/batchnorm.hpp"
#include "bnlab/layers/detail.hpp"
#include "bnlab/layers/layer.hpp"

namespace bnlab {

enum class BatchNormConvention { keras, pytorch };

// The member defaults are Keras's; setting `convention` alone keeps them. pytorch_defaults() is
// where a PyTorch-convention layer starts (what BatchNorm1d/2d and a config of convention
// "pytorch" use): the channel axis 1, momentum 0.1, epsilon 1e-5.
struct BatchNormalizationOptions {
  static BatchNormalizationOptions pytorch_defaults();

  int axis = -1;
  std::optional<float> momentum = 0.99f;
  float epsilon = 1e-3f;
  bool center = true;  // beta
  bool scale = true;   // gamma
  std::string beta_initializer = "zeros";
  std::string gamma_initializer = "ones";
  std::string moving_mean_initializer = "zeros";
  std::string moving_variance_initializer = "ones";
  BatchNormConvention convention = BatchNormConvention::keras;
  std::optional<std::int64_t> num_features;  // PyTorch's argument, checked at build
  int min_input_rank = 1;                    // per-sample rank accepted by build
  int max_input_rank = 3;
  // PyTorch's argument: false keeps no running statistics and normalizes with the batch's in
  // inference as in training (PyTorch convention only).
  bool track_running_stats = true;
};

class BatchNormalization : public Layer {
public:
  explicit BatchNormalization(BatchNormalizationOptions options = {});

  std::string type_name() const override { return "BatchNormalization"; }
  Shape build(const Shape& input_shape, Rng& rng) override;
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
  std::vector<Parameter*> parameters() override;
  LayerConfig config() const override;
  std::vector<std::string> regularizable_parameters() const override { return {"gamma", "beta"}; }

  const BatchNormalizationOptions& options() const { return options_; }
  // The kernel's view of a batch of n: channels, spatial size and layout (valid after build).
  kernels::BatchNormShape kernel_shape(std::int64_t batch) const;
  // PyTorch convention: training batches seen (saved in config() so a reloaded cumulative
  // average goes on where it stopped).
  std::int64_t num_batches_tracked() const { return num_batches_tracked_; }
  void set_num_batches_tracked(std::int64_t count);

  // xhat of the last forward, (x - mean) / sqrt(variance + epsilon) with the statistics that
  // forward used (the batch's in training, the moving ones in inference), so that its output
  // was xhat * gamma + beta. Computed on each call into a buffer the layer owns. For a Dense
  // that takes over this layer's parameter gradients (Dense::set_input_normalization).
  const Tensor& normalized_input();

  Parameter& gamma() { return gamma_; }
  Parameter& beta() { return beta_; }
  Parameter& moving_mean() { return moving_mean_; }
  Parameter& moving_variance() { return moving_variance_; }

private:
  BatchNormalizationOptions options_;
  std::int64_t channels_ = 0;
  std::int64_t spatial_ = 1;
  Layout kernel_layout_ = Layout::NC;
  std::int64_t num_batches_tracked_ = 0;
  Parameter gamma_{"gamma", {}, {}, true};
  Parameter beta_{"beta", {}, {}, true};
  Parameter moving_mean_{"moving_mean", {}, {}, false};
  Parameter moving_variance_{"moving_variance", {}, {}, false};
  Tensor saved_mean_;     // (C) batch mean of the last training forward
  Tensor saved_inv_std_;  // (C) 1 / sqrt(batch_var + epsilon)
  Tensor batch_variance_; // (C) biased
  Tensor x_;
  bool last_forward_batch_statistics_ = false;  // training, or inference without running statistics
  detail::BatchBuffer y_;
  detail::BatchBuffer dx_;
  detail::BatchBuffer xhat_;
};

// torch.nn.BatchNorm1d(num_features, eps, momentum, affine, track_running_stats): input (N, C)
// or (N, C, L), one of the two per layer (the shape it was built for).
BatchNormalization BatchNorm1d(std::int64_t num_features, float eps = 1e-5f, std::optional<float> momentum = 0.1f,
                               bool affine = true, bool track_running_stats = true);
// torch.nn.BatchNorm2d(num_features, eps, momentum, affine, track_running_stats): input
// (N, C, H, W), NCHW, of the H and W it was built for.
BatchNormalization BatchNorm2d(std::int64_t num_features, float eps = 1e-5f, std::optional<float> momentum = 0.1f,
                               bool affine = true, bool track_running_stats = true);

}  // namespace bnlab
