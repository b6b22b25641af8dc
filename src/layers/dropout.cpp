#include "bnlab/layers/dropout.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "bnlab/kernels/dropout.hpp"

namespace bnlab {

Dropout::Dropout(float rate, std::optional<std::uint64_t> seed) : rate_(rate), configured_seed_(seed) {
  if (!(rate >= 0.0f && rate < 1.0f))
    throw std::invalid_argument(fmt::format("Dropout: rate is {}, expected in [0, 1)", rate));
  if (seed) seed_ = *seed;
}

Shape Dropout::build(const Shape& input_shape, Rng& rng) {
  detail::check_input_rank(*this, input_shape, 1, 3);
  seed_ = configured_seed_ ? *configured_seed_ : rng();
  step_ = 0;
  if (resume_) {
    if (resume_->seed) seed_ = *resume_->seed;
    step_ = resume_->step;
    resume_.reset();
  }
  input_shape_ = input_shape;
  output_shape_ = input_shape;
  built_ = true;
  return output_shape_;
}

const Tensor& Dropout::forward(const Tensor& x, bool training) {
  detail::check_input(*this, x, input_shape_, "forward");
  masked_ = training && rate_ > 0.0f;
  if (!masked_) {
    forward_passthrough_ = x;
    return forward_passthrough_;
  }
  Tensor& mask = mask_.resize_like(x);
  Tensor& y = y_.resize_like(x);
  kernels::dropout_mask(x.size(), rate_, seed_, step_++, mask.data());
  kernels::dropout_forward(x.size(), x.data(), mask.data(), y.data());
  return y;
}

const Tensor& Dropout::backward(const Tensor& dy) {
  detail::check_input(*this, dy, output_shape_, "backward");
  if (!masked_) {
    backward_passthrough_ = dy;
    return backward_passthrough_;
  }
  if (dy.dim(0) != mask_.tensor().dim(0))
    throw std::invalid_argument(fmt::format("{}: backward got a batch of {}, the last forward had {}",
                                            detail::describe(*this), dy.dim(0), mask_.tensor().dim(0)));
  Tensor& dx = dx_.resize_like(dy);
  kernels::dropout_backward(dy.size(), dy.data(), mask_.tensor().data(), dx.data());
  return dx;
}

void Dropout::resume_mask_stream(std::optional<std::uint64_t> seed, std::uint64_t step) {
  resume_ = MaskStream{seed, step};
}

LayerConfig Dropout::config() const {
  LayerConfig config{{"rate", fmt::format("{}", rate_)}};
  if (configured_seed_) config["seed"] = std::to_string(*configured_seed_);
  if (built_) {
    if (!configured_seed_) config["mask_seed"] = std::to_string(seed_);
    config["mask_step"] = std::to_string(step_);
  }
  return config;
}

}  // namespace bnlab
