#include "bnlab/batchnorm.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace bnlab {

kernels::BatchNormShape batchnorm_shape_of(const Tensor& x, const char* who) {
  if (!x.defined()) throw std::invalid_argument(fmt::format("{}: x is undefined", who));
  kernels::BatchNormShape shape;
  Layout layout = x.layout();
  if (layout == Layout::Plain && x.rank() == 2) layout = Layout::NC;
  switch (layout) {
    case Layout::NC:
      shape = {x.dim(0), x.dim(1), 1, Layout::NC};
      break;
    case Layout::NCHW:
      shape = {x.dim(0), x.dim(1), x.dim(2) * x.dim(3), Layout::NCHW};
      break;
    case Layout::NHWC:
      shape = {x.dim(0), x.dim(3), x.dim(1) * x.dim(2), Layout::NHWC};
      break;
    default:
      throw std::invalid_argument(fmt::format("{}: x has shape {} and layout {}; expected NC (N, C), NCHW or NHWC", who,
                                              x.shape_string(), to_string(x.layout())));
  }
  if (x.empty()) throw std::invalid_argument(fmt::format("{}: x of shape {} is empty", who, x.shape_string()));
  return shape;
}

static void check_per_channel(const Tensor& t, const char* name, std::int64_t channels, const char* who,
                              bool optional) {
  if (!t.defined()) {
    if (optional) return;
    throw std::invalid_argument(fmt::format("{}: {} is undefined, expected ({},)", who, name, channels));
  }
  if (t.size() != channels)
    throw std::invalid_argument(fmt::format("{}: {} has shape {} ({} elements), expected {} (one per channel)", who,
                                            name, t.shape_string(), t.size(), channels));
}

static const float* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

BatchNormTrainingOutput batch_norm_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                            FusedActivation activation) {
  constexpr const char* who = "batch_norm_training";
  const auto shape = batchnorm_shape_of(x, who);
  check_per_channel(gamma, "gamma", shape.channels, who, true);
  check_per_channel(beta, "beta", shape.channels, who, true);
  BatchNormTrainingOutput out{Tensor(x.shape(), x.layout()), Tensor({shape.channels}), Tensor({shape.channels}),
                              Tensor({shape.channels})};
  kernels::batchnorm_forward_training(shape, x.data(), data_or_null(gamma), data_or_null(beta), epsilon, out.y.data(),
                                      out.mean.data(), out.inv_std.data(), out.variance.data(), activation);
  return out;
}

Tensor batch_normalization(const Tensor& x, const Tensor& mean, const Tensor& variance, const Tensor& offset,
                           const Tensor& scale, float variance_epsilon, FusedActivation activation) {
  constexpr const char* who = "batch_normalization";
  const auto shape = batchnorm_shape_of(x, who);
  check_per_channel(mean, "mean", shape.channels, who, false);
  check_per_channel(variance, "variance", shape.channels, who, false);
  check_per_channel(offset, "offset", shape.channels, who, true);
  check_per_channel(scale, "scale", shape.channels, who, true);
  Tensor y(x.shape(), x.layout());
  kernels::batchnorm_forward_inference(shape, x.data(), mean.data(), variance.data(), data_or_null(scale),
                                       data_or_null(offset), variance_epsilon, y.data(), activation);
  return y;
}

BatchNormGradients batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& beta,
                                       const Tensor& saved_mean, const Tensor& saved_inv_std,
                                       FusedActivation activation) {
  constexpr const char* who = "batch_norm_backward";
  const auto shape = batchnorm_shape_of(x, who);
  if (!dy.defined() || dy.shape() != x.shape())
    throw std::invalid_argument(fmt::format("{}: dy has shape {}, expected the shape of x {}", who,
                                            dy.defined() ? dy.shape_string() : "undefined", x.shape_string()));
  check_per_channel(gamma, "gamma", shape.channels, who, true);
  check_per_channel(beta, "beta", shape.channels, who, true);
  check_per_channel(saved_mean, "saved_mean", shape.channels, who, false);
  check_per_channel(saved_inv_std, "saved_inv_std", shape.channels, who, false);
  BatchNormGradients g{Tensor(x.shape(), x.layout()), {}, {}};
  if (gamma.defined()) g.dgamma = Tensor({shape.channels});
  if (beta.defined()) g.dbeta = Tensor({shape.channels});
  kernels::batchnorm_backward(shape, x.data(), dy.data(), data_or_null(gamma), data_or_null(beta), saved_mean.data(),
                              saved_inv_std.data(), g.dx.data(), g.dgamma.defined() ? g.dgamma.data() : nullptr,
                              g.dbeta.defined() ? g.dbeta.data() : nullptr, activation);
  return g;
}

}  // namespace bnlab
