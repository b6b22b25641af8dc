#pragma once
// WHAT THESE OBJECTS REPRESENT
//   tf.keras.layers.Activation(name) and tf.keras.layers.LeakyReLU(alpha): an activation
//   applied on its own, shape unchanged.
// REQUIRES
//   Activation: name one of "linear", "relu", "leaky_relu" (alpha 0.2, Keras's activation
//   function keras.activations.leaky_relu), "sigmoid", "tanh", "softmax" (over the last
//   dimension). LeakyReLU: alpha finite (the Keras layer's default 0.3).
//   build() with a per-sample shape of rank 1 to 3; forward() with (N, *that shape), N >= 1.
// ENSURES
//   forward returns a tensor of x's shape and layout. With "softmax", softmax_logits() is the
//   last forward's input and backward_from_logits(dlogits) returns dlogits. No parameters.

#include <string>

#include "bnlab/layers/detail.hpp"
#include "bnlab/layers/layer.hpp"

namespace bnlab {

class Activation : public Layer {
public:
  explicit Activation(const std::string& activation);

  std::string type_name() const override { return "Activation"; }
  Shape build(const Shape& input_shape, Rng& rng) override;
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
  const Tensor* softmax_logits() const override;
  const Tensor& backward_from_logits(const Tensor& dlogits) override;
  LayerConfig config() const override;

  kernels::ActivationKind activation() const { return stage_.kind(); }
  float alpha() const { return stage_.alpha(); }
  // The slope of "leaky_relu" (finite, else std::invalid_argument).
  void set_activation_alpha(float alpha);

 protected:
  Activation(kernels::ActivationKind kind, float alpha) : stage_(kind, alpha) {}

private:
  detail::ActivationStage stage_;
  Tensor dlogits_;
};

class LeakyReLU : public Activation {
public:
  explicit LeakyReLU(float alpha = kernels::default_leaky_relu_alpha);

  std::string type_name() const override { return "LeakyReLU"; }
  LayerConfig config() const override;
};

}  // namespace bnlab
