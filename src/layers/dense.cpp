#include "bnlab/layers/dense.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "bnlab/kernels/affine_input.hpp"
#include "bnlab/kernels/gemm.hpp"
#include "bnlab/layers/initializers.hpp"

namespace bnlab {

Dense::Dense(std::int64_t units, const std::string& activation, bool use_bias, std::string kernel_initializer,
             std::string bias_initializer)
    : units_(units),
      use_bias_(use_bias),
      kernel_initializer_(std::move(kernel_initializer)),
      bias_initializer_(std::move(bias_initializer)),
      activation_(detail::parse_activation(activation, "Dense"), kernels::leaky_relu_function_alpha) {
  if (units < 1) throw std::invalid_argument(fmt::format("Dense: units is {}, expected >= 1", units));
  initializers::check(kernel_initializer_, "Dense", "kernel_initializer");
  initializers::check(bias_initializer_, "Dense", "bias_initializer");
}

Shape Dense::build(const Shape& input_shape, Rng& rng) {
  if (input_shape.size() != 1 || input_shape[0] < 1)
    throw std::invalid_argument(fmt::format("{}: input shape is {}, expected (None, features) with features >= 1",
                                            detail::describe(*this), detail::batch_shape_string(input_shape)));
  const std::int64_t features = input_shape[0];
  initializers::create_trainable(kernel_, {features, units_}, kernel_initializer_, features, units_, rng);
  if (use_bias_) initializers::create_trainable(bias_, {units_}, bias_initializer_, units_, units_, rng);
  input_shape_ = input_shape;
  output_shape_ = {units_};
  built_ = true;
  return output_shape_;
}

const Tensor& Dense::forward(const Tensor& x, bool /*training*/) {
  detail::check_input(*this, x, input_shape_, "forward");
  x_ = x;
  const std::int64_t N = x.dim(0), F = input_shape_[0];
  Tensor& z = z_.resize(N, output_shape_, Layout::NC);
  kernels::gemm(false, false, N, units_, F, 1.0f, x.data(), kernel_.value.data(), 0.0f, z.data());
  // Bias and activation in one pass over z.
  return activation_.forward(z, use_bias_ ? bias_.value.data() : nullptr);
}

const Tensor& Dense::backward(const Tensor& dy) {
  detail::check_input(*this, dy, output_shape_, "backward");
  check_backward_batch(dy.dim(0));
  // The activation's derivative and the bias gradient in one pass over dy.
  return backward_affine(activation_.backward(dy, use_bias_ ? bias_.grad.data() : nullptr), false);
}

const Tensor& Dense::backward_from_logits(const Tensor& dlogits) {
  if (activation_.kind() != kernels::ActivationKind::softmax) return backward(dlogits);
  detail::check_input(*this, dlogits, output_shape_, "backward_from_logits");
  check_backward_batch(dlogits.dim(0));
  return backward_affine(dlogits, use_bias_);
}

void Dense::check_backward_batch(std::int64_t batch) const {
  if (!x_.defined() || x_.dim(0) != batch)
    throw std::invalid_argument(fmt::format("{}: backward got a batch of {}, the last forward had {}",
                                            detail::describe(*this), batch, x_.defined() ? x_.dim(0) : 0));
}

const Tensor& Dense::backward_affine(const Tensor& dz, bool sum_bias) {
  if (takes_over_previous_backward()) return backward_through_normalization(dz, sum_bias);
  const std::int64_t N = dz.dim(0), F = input_shape_[0];
  kernels::gemm(true, false, F, units_, N, 1.0f, x_.data(), dz.data(), 0.0f, kernel_.grad.data());
  if (sum_bias) kernels::sum_rows(N, units_, dz.data(), bias_.grad.data());
  if (!input_gradient_needed_) return no_input_gradient();
  Tensor& dx = dx_.resize(N, input_shape_, x_.layout() == Layout::NC ? Layout::NC : Layout::Plain);
  kernels::gemm(false, true, N, F, units_, 1.0f, dz.data(), kernel_.value.data(), 0.0f, dx.data());
  return dx;
}

void Dense::set_input_normalization(BatchNormalization* normalization) {
  detail::require_built(*this, "set_input_normalization");
  if (normalization && (!normalization->built() || normalization->output_shape() != input_shape_))
    throw std::invalid_argument(fmt::format(
        "{}: input normalization {} has output shape {}, expected {}", detail::describe(*this),
        detail::describe(*normalization), detail::batch_shape_string(normalization->output_shape()),
        detail::batch_shape_string(input_shape_)));
  input_normalization_ = normalization;
  if (normalization && !use_bias_ && !column_sums_.defined()) column_sums_ = Tensor({units_});
}

bool Dense::takes_over_previous_backward() const {
  return input_normalization_ && !input_normalization_->input_gradient_needed();
}

const Tensor& Dense::backward_through_normalization(const Tensor& dz, bool sum_bias) {
  const std::int64_t N = dz.dim(0), F = input_shape_[0];
  BatchNormalization& bn = *input_normalization_;
  const Tensor& xhat = bn.normalized_input();
  if (xhat.dim(0) != N)
    throw std::invalid_argument(fmt::format("{}: backward got a batch of {}, the input normalization's last forward had {}",
                                            detail::describe(*this), N, xhat.dim(0)));
  // s = dz's column sums: the bias grad when there is a bias (already summed unless sum_bias).
  float* s = use_bias_ ? bias_.grad.data() : column_sums_.data();
  if (sum_bias || !use_bias_) kernels::sum_rows(N, units_, dz.data(), s);
  kernels::gemm(true, false, F, units_, N, 1.0f, xhat.data(), dz.data(), 0.0f, kernel_.grad.data());
  const BatchNormalizationOptions& o = bn.options();
  kernels::affine_input_gradients(F, units_, kernel_.value.data(), o.scale ? bn.gamma().value.data() : nullptr,
                                  o.center ? bn.beta().value.data() : nullptr, s, kernel_.grad.data(),
                                  o.scale ? bn.gamma().grad.data() : nullptr,
                                  o.center ? bn.beta().grad.data() : nullptr);
  return no_input_gradient();
}

std::vector<Parameter*> Dense::parameters() {
  if (!built_) return {};
  if (use_bias_) return {&kernel_, &bias_};
  return {&kernel_};
}

const Tensor* Dense::softmax_logits() const {
  if (activation_.kind() != kernels::ActivationKind::softmax) return nullptr;
  return &z_.tensor();
}

void Dense::set_activation_alpha(float alpha) { activation_.set_alpha(alpha, detail::describe(*this)); }

LayerConfig Dense::config() const {
  LayerConfig config{{"units", std::to_string(units_)},
                     {"use_bias", use_bias_ ? "true" : "false"},
                     {"kernel_initializer", kernel_initializer_},
                     {"bias_initializer", bias_initializer_}};
  activation_.add_config(config);
  add_regularizer_config(config);
  return config;
}

}  // namespace bnlab
