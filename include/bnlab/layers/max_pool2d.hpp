#pragma once
// WHAT THIS OBJECT REPRESENTS
//   tf.keras.layers.MaxPool2D / MaxPooling2D (channels_last): the maximum of each pool_size window.
// REQUIRES
//   pool_size and strides >= 1 (strides default to pool_size, as in Keras), padding "valid" or
//   "same"; build() with {H, W, C}; forward() with (N, H, W, C), N >= 1.
// ENSURES
//   forward returns (N, OH, OW, C) in layout NHWC; backward routes dy to each window's
//   winner (first on ties). No parameters.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bnlab/kernels/pooling.hpp"
#include "bnlab/layers/detail.hpp"
#include "bnlab/layers/layer.hpp"

namespace bnlab {

class MaxPool2D : public Layer {
public:
  explicit MaxPool2D(std::array<std::int64_t, 2> pool_size = {2, 2},
                     std::optional<std::array<std::int64_t, 2>> strides = std::nullopt,
                     const std::string& padding = "valid");

  // Keras's class is MaxPooling2D (MaxPool2D is its alias); summary() prints the class name.
  std::string type_name() const override { return "MaxPooling2D"; }
  Shape build(const Shape& input_shape, Rng& rng) override;
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
  LayerConfig config() const override;

private:
  kernels::Pool2DShape shape_for(std::int64_t batch) const;

  std::array<std::int64_t, 2> pool_size_;
  std::array<std::int64_t, 2> strides_;
  kernels::Padding padding_;
  detail::BatchBuffer y_;
  std::vector<std::int32_t> argmax_;  // grows like the BatchBuffers; never shrinks
  std::int64_t forward_batch_ = 0;
  detail::BatchBuffer dx_;
};

}  // namespace bnlab
