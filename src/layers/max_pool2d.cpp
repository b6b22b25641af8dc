#include "bnlab/layers/max_pool2d.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace bnlab {

MaxPool2D::MaxPool2D(std::array<std::int64_t, 2> pool_size, std::optional<std::array<std::int64_t, 2>> strides,
                     const std::string& padding)
    : pool_size_(pool_size), strides_(strides.value_or(pool_size)), padding_(kernels::parse_padding(padding, "MaxPool2D")) {
  if (pool_size[0] < 1 || pool_size[1] < 1)
    throw std::invalid_argument(
        fmt::format("MaxPool2D: pool_size is ({}, {}), expected >= 1 in both", pool_size[0], pool_size[1]));
  if (strides_[0] < 1 || strides_[1] < 1)
    throw std::invalid_argument(
        fmt::format("MaxPool2D: strides is ({}, {}), expected >= 1 in both", strides_[0], strides_[1]));
}

kernels::Pool2DShape MaxPool2D::shape_for(std::int64_t batch) const {
  return kernels::pool2d_shape(batch, input_shape_[0], input_shape_[1], input_shape_[2], pool_size_[0], pool_size_[1],
                               strides_[0], strides_[1], padding_);
}

Shape MaxPool2D::build(const Shape& input_shape, Rng& /*rng*/) {
  if (input_shape.size() != 3)
    throw std::invalid_argument(fmt::format("{}: input shape is {}, expected (None, height, width, channels)",
                                            detail::describe(*this), detail::batch_shape_string(input_shape)));
  kernels::Pool2DShape s;
  try {
    s = kernels::pool2d_shape(0, input_shape[0], input_shape[1], input_shape[2], pool_size_[0], pool_size_[1],
                              strides_[0], strides_[1], padding_);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("{}: input shape {}: {}", detail::describe(*this),
                                            detail::batch_shape_string(input_shape), e.what()));
  }
  input_shape_ = input_shape;
  output_shape_ = {s.out_height, s.out_width, s.channels};
  built_ = true;
  return output_shape_;
}

const Tensor& MaxPool2D::forward(const Tensor& x, bool /*training*/) {
  detail::check_input(*this, x, input_shape_, "forward");
  const kernels::Pool2DShape s = shape_for(x.dim(0));
  Tensor& y = y_.resize(s.batch, output_shape_, Layout::NHWC);
  if (static_cast<std::int64_t>(argmax_.size()) < s.output_size()) argmax_.resize(static_cast<std::size_t>(s.output_size()));
  kernels::maxpool2d_forward(s, x.data(), y.data(), argmax_.data());
  forward_batch_ = s.batch;
  return y;
}

const Tensor& MaxPool2D::backward(const Tensor& dy) {
  detail::check_input(*this, dy, output_shape_, "backward");
  if (dy.dim(0) != forward_batch_)
    throw std::invalid_argument(fmt::format("{}: backward got a batch of {}, the last forward had {}",
                                            detail::describe(*this), dy.dim(0), forward_batch_));
  const kernels::Pool2DShape s = shape_for(dy.dim(0));
  Tensor& dx = dx_.resize(s.batch, input_shape_, Layout::NHWC);
  kernels::maxpool2d_backward(s, dy.data(), argmax_.data(), dx.data());
  return dx;
}

LayerConfig MaxPool2D::config() const {
  return {{"pool_size", fmt::format("{},{}", pool_size_[0], pool_size_[1])},
          {"strides", fmt::format("{},{}", strides_[0], strides_[1])},
          {"padding", kernels::to_string(padding_)}};
}

}  // namespace bnlab
