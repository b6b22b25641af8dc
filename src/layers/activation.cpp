#include "bnlab/layers/activation.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace bnlab {

Activation::Activation(const std::string& activation)
    : stage_(detail::parse_activation(activation, "Activation"), kernels::leaky_relu_function_alpha) {}

Shape Activation::build(const Shape& input_shape, Rng& /*rng*/) {
  detail::check_input_rank(*this, input_shape, 1, 3);
  input_shape_ = input_shape;
  output_shape_ = input_shape;
  built_ = true;
  return output_shape_;
}

const Tensor& Activation::forward(const Tensor& x, bool /*training*/) {
  detail::check_input(*this, x, input_shape_, "forward");
  return stage_.forward(x);
}

const Tensor& Activation::backward(const Tensor& dy) {
  detail::check_input(*this, dy, output_shape_, "backward");
  return stage_.backward(dy);
}

const Tensor* Activation::softmax_logits() const {
  if (stage_.kind() != kernels::ActivationKind::softmax) return nullptr;
  return &stage_.input();
}

const Tensor& Activation::backward_from_logits(const Tensor& dlogits) {
  if (stage_.kind() != kernels::ActivationKind::softmax) return backward(dlogits);
  detail::check_input(*this, dlogits, output_shape_, "backward_from_logits");
  dlogits_ = dlogits;
  return dlogits_;
}

LayerConfig Activation::config() const {
  LayerConfig config;
  stage_.add_config(config);
  return config;
}

void Activation::set_activation_alpha(float alpha) { stage_.set_alpha(alpha, detail::describe(*this)); }

LeakyReLU::LeakyReLU(float alpha) : Activation(kernels::ActivationKind::leaky_relu, alpha) {
  if (!std::isfinite(alpha)) throw std::invalid_argument(fmt::format("LeakyReLU: alpha is {}, expected a finite value", alpha));
}

LayerConfig LeakyReLU::config() const { return {{"alpha", fmt::format("{}", alpha())}}; }

}  // namespace bnlab
