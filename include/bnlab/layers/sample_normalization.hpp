#pragma once
// WHAT THESE OBJECTS REPRESENT
//   The per-sample members of the normalization family (seed 004: "Layer Normalization and
//   Group Normalization"), over kernels/group_norm.hpp. Their statistics come from each sample
//   alone, so training and inference compute the same thing, any batch size works, and there
//   are no moving statistics.
//   LayerNormalization: tf.keras.layers.LayerNormalization(axis=-1, epsilon=1e-3, center,
//     scale, beta_initializer, gamma_initializer) and, through LayerNorm, torch.nn.LayerNorm(
//     normalized_shape, eps=1e-5, elementwise_affine). It normalizes over any of the input's
//     axes but the batch (Keras's default -1, {1, 2, 3} for a whole image, {1} for the first
//     of (N, T, F)); gamma and beta have one value per normalized element, flat in the increasing
//     order of the normalized axes (the flat order of Keras's param_shape, which it reshapes). The last axes are
//     contiguous in memory; other sets go through a copy of each sample into that order and back.
//   GroupNormalization: keras.layers.GroupNormalization(groups=32, axis=-1, epsilon=1e-3, center,
//     scale, initializers) and, through GroupNorm, torch.nn.GroupNorm(num_groups, num_channels,
//     eps=1e-5, affine). Channels on `axis` (last: NC or NHWC; 1: NCHW, as BatchNormalization)
//     fall into `groups` equal groups, each normalized per sample over its channels and the
//     spatial positions; gamma and beta are per channel. groups = -1 is one group per channel
//     (instance normalization, as Keras's -1); groups = 1 normalizes each sample as a whole.
// REQUIRES
//   epsilon > 0 and finite; initializers known to initializers.hpp; build() with a per-sample
//   shape of rank 1..3 and every dimension >= 1; for LayerNormalization, distinct axes of the
//   sample (not the batch, axis 0); for GroupNormalization, groups >= 1 dividing
//   the channels (or -1); normalized_shape / num_channels, when given, equal to the input's.
// ENSURES
//   parameters(): gamma (when scale), beta (when center), both trainable. The variance is the
//   biased one, as in Keras and PyTorch. backward is the full per-group gradient.
//   Violations throw std::invalid_argument naming the layer, the argument and the value.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bnlab/kernels/group_norm.hpp"
#include "bnlab/layers/detail.hpp"
#include "bnlab/layers/layer.hpp"

namespace bnlab {

namespace detail {

// What the two layers share: gamma and beta, the kernel calls, the buffers.
class SampleNormalization : public Layer {
 public:
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
  std::vector<Parameter*> parameters() override;
  std::vector<std::string> regularizable_parameters() const override { return {"gamma", "beta"}; }

  // The kernel's view of a batch of n (valid after build).
  kernels::GroupNormShape kernel_shape(std::int64_t batch) const;
  Parameter& gamma() { return gamma_; }
  Parameter& beta() { return beta_; }

 protected:
  SampleNormalization(const char* type, float epsilon, bool center, bool scale, std::string beta_initializer,
                      std::string gamma_initializer);
  // Completes build(): each sample is rows_per_sample kernel samples of channels x spatial
  // values in layout, normalized in `groups` groups; gamma and beta get `channels` values.
  Shape finish_build(const Shape& input_shape, std::int64_t rows_per_sample, std::int64_t channels,
                     std::int64_t spatial, Layout layout, std::int64_t groups, Rng& rng);
  // Before finish_build: the kernel sees each sample with its axes in `order` (per-sample axes,
  // 0-based), copied there and back; empty (the default) is the input's own order.
  void set_sample_order(std::vector<int> order) { sample_order_ = std::move(order); }
  // Writes epsilon, center, scale and the two initializers.
  void add_config(LayerConfig& config) const;
  virtual void check_layout(const Tensor& x) const = 0;
  Layout kernel_layout() const { return kernel_layout_; }

  float epsilon_;
  bool center_, scale_;
  std::string beta_initializer_, gamma_initializer_;

 private:
  std::int64_t rows_per_sample_ = 1;
  std::int64_t channels_ = 0;
  std::int64_t spatial_ = 1;
  Layout kernel_layout_ = Layout::NC;
  std::int64_t groups_ = 1;
  Shape statistics_shape_;  // per sample: {rows_per_sample * groups}
  Parameter gamma_{"gamma", {}, {}, true};
  Parameter beta_{"beta", {}, {}, true};
  std::vector<int> sample_order_;
  Shape ordered_shape_;  // per sample, its axes in sample_order_
  Tensor x_;
  BatchBuffer ordered_x_, ordered_y_, ordered_dy_, ordered_dx_;  // with sample_order_: the kernel's copies
  BatchBuffer y_;
  BatchBuffer dx_;
  BatchBuffer saved_mean_;     // (N, rows_per_sample * groups)
  BatchBuffer saved_inv_std_;  // (N, rows_per_sample * groups)
};

}  // namespace detail

struct LayerNormalizationOptions {
  std::vector<int> axis{-1};  // Keras numbering (0 is the batch; negative counts from the end)
  float epsilon = 1e-3f;
  bool center = true;  // beta
  bool scale = true;   // gamma
  std::string beta_initializer = "zeros";
  std::string gamma_initializer = "ones";
  std::optional<Shape> normalized_shape;  // PyTorch's argument: the last dimensions, checked at build
};

class LayerNormalization : public detail::SampleNormalization {
 public:
  explicit LayerNormalization(LayerNormalizationOptions options = {});

  std::string type_name() const override { return "LayerNormalization"; }
  Shape build(const Shape& input_shape, Rng& rng) override;
  LayerConfig config() const override;
  const LayerNormalizationOptions& options() const { return options_; }

 private:
  void check_layout(const Tensor&) const override {}
  LayerNormalizationOptions options_;
};

struct GroupNormalizationOptions {
  std::int64_t groups = 32;  // -1: one group per channel
  int axis = -1;             // the channel axis, Keras numbering: last, or 1 (channels first)
  float epsilon = 1e-3f;
  bool center = true;
  bool scale = true;
  std::string beta_initializer = "zeros";
  std::string gamma_initializer = "ones";
  std::optional<std::int64_t> num_channels;  // PyTorch's argument, checked at build
  // PyTorch's InstanceNorm1d (2) and InstanceNorm2d (3): the per-sample rank (C, L) or
  // (C, H, W) it takes, with more than one position per channel; checked at build.
  std::optional<int> instance_rank;
};

class GroupNormalization : public detail::SampleNormalization {
 public:
  explicit GroupNormalization(GroupNormalizationOptions options = {});

  std::string type_name() const override { return "GroupNormalization"; }
  Shape build(const Shape& input_shape, Rng& rng) override;
  LayerConfig config() const override;
  const GroupNormalizationOptions& options() const { return options_; }

 private:
  void check_layout(const Tensor& x) const override;
  GroupNormalizationOptions options_;
};

// torch.nn.LayerNorm(normalized_shape, eps, elementwise_affine): the last dimensions.
LayerNormalization LayerNorm(Shape normalized_shape, float eps = 1e-5f, bool elementwise_affine = true);
// torch.nn.GroupNorm(num_groups, num_channels, eps, affine): input (N, C, *), channels first.
GroupNormalization GroupNorm(std::int64_t num_groups, std::int64_t num_channels, float eps = 1e-5f, bool affine = true);
// torch.nn.InstanceNorm1d / InstanceNorm2d(num_features, eps, affine): one group per channel,
// input (N, C, L) / (N, C, H, W), channels first; affine off by default, as PyTorch's. PyTorch's
// default track_running_stats=False is the only mode: the statistics are each sample's, in
// training and inference alike (with running statistics it would be a per-channel BatchNorm in
// inference, which BatchNorm1d/BatchNorm2d are).
GroupNormalization InstanceNorm1d(std::int64_t num_features, float eps = 1e-5f, bool affine = false);
GroupNormalization InstanceNorm2d(std::int64_t num_features, float eps = 1e-5f, bool affine = false);

}  // namespace bnlab
