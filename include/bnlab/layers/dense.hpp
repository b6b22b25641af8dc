#pragma once
// WHAT THIS OBJECT REPRESENTS
//   tf.keras.layers.Dense: y = activation(x * kernel + bias), kernel (features, units) as
//   Keras stores it, bias (units).
// REQUIRES
//   units >= 1; activation one of "linear", "relu", "leaky_relu" (alpha 0.2, as Keras's
//   activation function; see set_activation_alpha), "sigmoid",
//   "tanh", "softmax"; initializers known to initializers.hpp; build() with a per-sample shape
//   {features}; forward() with an (N, features) tensor, N >= 1 (layout NC or plain).
// ENSURES
//   forward returns (N, units) in layout NC. parameters(): kernel, then bias when use_bias.
//   With activation "softmax", softmax_logits() is the pre-softmax (N, units) of the last
//   forward and backward_from_logits(dL/dlogits) skips the softmax's own backward.
//   With an input normalization set (Sequential does it when a channels-last
//   BatchNormalization, the model's first trained layer, feeds this layer), backward writes
//   that layer's gamma and beta grads too, from one GEMM instead of two
//   (kernels/affine_input.hpp), and returns no input gradient; the normalization's own
//   backward is then not run. It falls back to the plain path whenever the normalization's
//   input gradient is needed.
//   Violations throw std::invalid_argument naming the layer, the argument and the value.

#include <cstdint>
#include <string>

#include "bnlab/layers/batch_normalization.hpp"
#include "bnlab/layers/detail.hpp"
#include "bnlab/layers/layer.hpp"

namespace bnlab {

class Dense : public Layer {
public:
  explicit Dense(std::int64_t units, const std::string& activation = "linear", bool use_bias = true,
                 std::string kernel_initializer = "glorot_uniform", std::string bias_initializer = "zeros");

  std::string type_name() const override { return "Dense"; }
  Shape build(const Shape& input_shape, Rng& rng) override;
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
  std::vector<Parameter*> parameters() override;
  const Tensor* softmax_logits() const override;
  const Tensor& backward_from_logits(const Tensor& dlogits) override;
  LayerConfig config() const override;
  std::vector<std::string> regularizable_parameters() const override { return {"kernel", "bias"}; }

  std::int64_t units() const { return units_; }
  kernels::ActivationKind activation() const { return activation_.kind(); }
  // The slope of a "leaky_relu" activation: 0.2 as keras.activations.leaky_relu unless set
  // (finite, else std::invalid_argument).
  float activation_alpha() const { return activation_.alpha(); }
  void set_activation_alpha(float alpha);
  bool use_bias() const { return use_bias_; }

  // The BatchNormalization whose output is this layer's input (nullptr: none). Its per-sample
  // shape must be (features,).
  void set_input_normalization(BatchNormalization* normalization);
  // Whether backward computes the input normalization's parameter gradients in place of that
  // layer's own backward (set, and its input gradient not needed).
  bool takes_over_previous_backward() const override;

private:
  // Throws unless the last forward saw a batch of this size.
  void check_backward_batch(std::int64_t batch) const;
  // The GEMMs of backward from dL/dz; sum_bias: the bias gradient is still to be computed.
  const Tensor& backward_affine(const Tensor& dz, bool sum_bias);
  // backward_affine through the input normalization (takes_over_previous_backward()).
  const Tensor& backward_through_normalization(const Tensor& dz, bool sum_bias);

  std::int64_t units_;
  bool use_bias_;
  std::string kernel_initializer_;
  std::string bias_initializer_;
  Parameter kernel_{"kernel", {}, {}, true};
  Parameter bias_{"bias", {}, {}, true};
  Tensor x_;  // the last forward's input, held by handle: its owner keeps it until backward
  detail::BatchBuffer z_;
  detail::ActivationStage activation_;
  detail::BatchBuffer dx_;
  BatchNormalization* input_normalization_ = nullptr;
  Tensor column_sums_;  // (units): dz's column sums when there is no bias grad to hold them
};

}  // namespace bnlab
