#include "bnlab/layers/conv2d.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "bnlab/layers/initializers.hpp"

namespace bnlab {

Conv2D::Conv2D(std::int64_t filters, std::array<std::int64_t, 2> kernel_size, std::array<std::int64_t, 2> strides,
               const std::string& padding, const std::string& activation, bool use_bias, std::string kernel_initializer,
               std::string bias_initializer)
    : filters_(filters),
      kernel_size_(kernel_size),
      strides_(strides),
      padding_(kernels::parse_padding(padding, "Conv2D")),
      use_bias_(use_bias),
      kernel_initializer_(std::move(kernel_initializer)),
      bias_initializer_(std::move(bias_initializer)),
      activation_(detail::parse_activation(activation, "Conv2D"), kernels::leaky_relu_function_alpha) {
  if (filters < 1) throw std::invalid_argument(fmt::format("Conv2D: filters is {}, expected >= 1", filters));
  if (kernel_size[0] < 1 || kernel_size[1] < 1)
    throw std::invalid_argument(
        fmt::format("Conv2D: kernel_size is ({}, {}), expected >= 1 in both", kernel_size[0], kernel_size[1]));
  if (strides[0] < 1 || strides[1] < 1)
    throw std::invalid_argument(fmt::format("Conv2D: strides is ({}, {}), expected >= 1 in both", strides[0], strides[1]));
  initializers::check(kernel_initializer_, "Conv2D", "kernel_initializer");
  initializers::check(bias_initializer_, "Conv2D", "bias_initializer");
}

kernels::Conv2DShape Conv2D::shape_for(std::int64_t batch) const {
  return kernels::conv2d_shape(batch, input_shape_[0], input_shape_[1], input_shape_[2], filters_, kernel_size_[0],
                               kernel_size_[1], strides_[0], strides_[1], padding_);
}

Shape Conv2D::build(const Shape& input_shape, Rng& rng) {
  const bool ok = input_shape.size() == 3 && input_shape[0] >= 1 && input_shape[1] >= 1 && input_shape[2] >= 1;
  if (!ok)
    throw std::invalid_argument(fmt::format("{}: input shape is {}, expected (None, height, width, channels)",
                                            detail::describe(*this), detail::batch_shape_string(input_shape)));
  const std::int64_t in_channels = input_shape[2];
  kernels::Conv2DShape s;
  try {
    s = kernels::conv2d_shape(0, input_shape[0], input_shape[1], in_channels, filters_, kernel_size_[0],
                              kernel_size_[1], strides_[0], strides_[1], padding_);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("{}: input shape {}: {}", detail::describe(*this),
                                            detail::batch_shape_string(input_shape), e.what()));
  }
  const std::int64_t receptive_field = kernel_size_[0] * kernel_size_[1];
  initializers::create_trainable(kernel_, {kernel_size_[0], kernel_size_[1], in_channels, filters_},
                                 kernel_initializer_, receptive_field * in_channels, receptive_field * filters_, rng);
  if (use_bias_) initializers::create_trainable(bias_, {filters_}, bias_initializer_, filters_, filters_, rng);
  input_shape_ = input_shape;
  output_shape_ = {s.out_height, s.out_width, filters_};
  columns_per_sample_ = {s.out_height * s.out_width * s.patch_size()};
  built_ = true;
  return output_shape_;
}

const Tensor& Conv2D::forward(const Tensor& x, bool /*training*/) {
  detail::check_input(*this, x, input_shape_, "forward");
  const kernels::Conv2DShape s = shape_for(x.dim(0));
  Tensor& columns = columns_.resize(s.batch, columns_per_sample_, Layout::Plain);
  Tensor& z = z_.resize(s.batch, output_shape_, Layout::NHWC);
  kernels::conv2d_forward(s, x.data(), kernel_.value.data(), use_bias_ ? bias_.value.data() : nullptr,
                          columns.data(), z.data());
  columns_hold_input_ = true;
  return activation_.forward(z);
}

const Tensor& Conv2D::backward(const Tensor& dy) {
  detail::check_input(*this, dy, output_shape_, "backward");
  if (!columns_hold_input_ || columns_.tensor().dim(0) != dy.dim(0))
    throw std::logic_error(fmt::format("{}: backward needs a forward of the same batch before it (and runs once per forward)",
                                       detail::describe(*this)));
  const kernels::Conv2DShape s = shape_for(dy.dim(0));
  const Tensor& dz = activation_.backward(dy);
  float* dx = input_gradient_needed_ ? dx_.resize(s.batch, input_shape_, Layout::NHWC).data() : nullptr;
  kernels::conv2d_backward(s, dz.data(), kernel_.value.data(), columns_.tensor().data(), dx, kernel_.grad.data(),
                           use_bias_ ? bias_.grad.data() : nullptr);
  columns_hold_input_ = false;
  return dx ? dx_.tensor() : no_input_gradient();
}

std::vector<Parameter*> Conv2D::parameters() {
  if (!built_) return {};
  if (use_bias_) return {&kernel_, &bias_};
  return {&kernel_};
}

void Conv2D::set_activation_alpha(float alpha) { activation_.set_alpha(alpha, detail::describe(*this)); }

LayerConfig Conv2D::config() const {
  LayerConfig config{{"filters", std::to_string(filters_)},
                     {"kernel_size", fmt::format("{},{}", kernel_size_[0], kernel_size_[1])},
                     {"strides", fmt::format("{},{}", strides_[0], strides_[1])},
                     {"padding", kernels::to_string(padding_)},
                     {"use_bias", use_bias_ ? "true" : "false"},
                     {"kernel_initializer", kernel_initializer_},
                     {"bias_initializer", bias_initializer_}};
  activation_.add_config(config);
  add_regularizer_config(config);
  return config;
}

}  // namespace bnlab
