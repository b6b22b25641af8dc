#include "bnlab/layers/batch_normalization.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "bnlab/layers/initializers.hpp"

namespace bnlab {

BatchNormalizationOptions BatchNormalizationOptions::pytorch_defaults() {
  BatchNormalizationOptions o;
  o.convention = BatchNormConvention::pytorch;
  o.axis = 1;
  o.momentum = 0.1f;
  o.epsilon = 1e-5f;
  return o;
}

BatchNormalization::BatchNormalization(BatchNormalizationOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  detail::check_epsilon("BatchNormalization", o.epsilon);
  if (o.momentum && !(*o.momentum >= 0.0f && *o.momentum <= 1.0f))
    throw std::invalid_argument(fmt::format("BatchNormalization: momentum is {}, expected in [0, 1]", *o.momentum));
  if (!o.momentum && o.convention == BatchNormConvention::keras)
    throw std::invalid_argument(
        "BatchNormalization: momentum is none (a cumulative average), which only the PyTorch convention has");
  if (!o.track_running_stats && o.convention == BatchNormConvention::keras)
    throw std::invalid_argument(
        "BatchNormalization: track_running_stats is false (batch statistics in inference), which only the PyTorch "
        "convention has");
  if (o.num_features && *o.num_features < 1)
    throw std::invalid_argument(fmt::format("BatchNormalization: num_features is {}, expected >= 1", *o.num_features));
  if (o.min_input_rank < 1 || o.max_input_rank > 3 || o.min_input_rank > o.max_input_rank)
    throw std::invalid_argument(fmt::format("BatchNormalization: input ranks {}..{} are outside 1..3",
                                            o.min_input_rank, o.max_input_rank));
  initializers::check(o.beta_initializer, "BatchNormalization", "beta_initializer");
  initializers::check(o.gamma_initializer, "BatchNormalization", "gamma_initializer");
  initializers::check(o.moving_mean_initializer, "BatchNormalization", "moving_mean_initializer");
  initializers::check(o.moving_variance_initializer, "BatchNormalization", "moving_variance_initializer");
}

Shape BatchNormalization::build(const Shape& input_shape, Rng& rng) {
  detail::check_input_rank(*this, input_shape, options_.min_input_rank, options_.max_input_rank);
  const detail::ChannelGeometry geometry = detail::channel_geometry(*this, input_shape, options_.axis);
  channels_ = geometry.channels;
  spatial_ = geometry.spatial;
  kernel_layout_ = geometry.layout;
  if (options_.num_features && *options_.num_features != channels_)
    throw std::invalid_argument(fmt::format("{}: num_features is {}, but input {} has {} channels on axis {}",
                                            detail::describe(*this), *options_.num_features,
                                            detail::batch_shape_string(input_shape), channels_, options_.axis));
  const std::int64_t C = channels_;
  if (options_.scale) initializers::create_trainable(gamma_, {C}, options_.gamma_initializer, C, C, rng);
  if (options_.center) initializers::create_trainable(beta_, {C}, options_.beta_initializer, C, C, rng);
  if (options_.track_running_stats) {
    moving_mean_.value = Tensor({C});
    moving_variance_.value = Tensor({C});
    initializers::initialize(options_.moving_mean_initializer, moving_mean_.value, C, C, rng);
    initializers::initialize(options_.moving_variance_initializer, moving_variance_.value, C, C, rng);
  }
  saved_mean_ = Tensor({C});
  saved_inv_std_ = Tensor({C});
  batch_variance_ = Tensor({C});
  input_shape_ = input_shape;
  output_shape_ = input_shape;
  built_ = true;
  return output_shape_;
}

kernels::BatchNormShape BatchNormalization::kernel_shape(std::int64_t batch) const {
  return {batch, channels_, spatial_, kernel_layout_};
}

const Tensor& BatchNormalization::forward(const Tensor& x, bool training) {
  detail::check_input(*this, x, input_shape_, "forward");
  detail::check_channel_layout(*this, x, kernel_layout_, options_.axis);
  const kernels::BatchNormShape shape = kernel_shape(x.dim(0));
  const float* gamma = options_.scale ? gamma_.value.data() : nullptr;
  const float* beta = options_.center ? beta_.value.data() : nullptr;
  // Without running statistics inference normalizes with the batch's, as PyTorch does.
  const bool batch_statistics = training || !options_.track_running_stats;
  // Keras normalizes a single value per channel (its biased variance is 0, the output beta);
  // PyTorch refuses it, since its running variance is unbiased. Refused before any state
  // changes: a backward after it must not pair this input with the last forward's statistics.
  if (batch_statistics && options_.convention == BatchNormConvention::pytorch && shape.count_per_channel() < 2)
    throw std::invalid_argument(
        fmt::format("{}: expected more than 1 value per channel when {} (PyTorch's convention: the running variance is "
                    "unbiased), got input {} ({} per channel)",
                    detail::describe(*this),
                    training ? "training" : "normalizing with batch statistics (track_running_stats false)",
                    x.shape_string(), shape.count_per_channel()));
  Tensor& y = y_.resize_like(x);
  x_ = x;
  last_forward_batch_statistics_ = batch_statistics;
  if (!batch_statistics) {
    kernels::batchnorm_forward_inference(shape, x.data(), moving_mean_.value.data(), moving_variance_.value.data(),
                                         gamma, beta, options_.epsilon, y.data());
    return y;
  }
  kernels::batchnorm_forward_training(shape, x.data(), gamma, beta, options_.epsilon, y.data(), saved_mean_.data(),
                                      saved_inv_std_.data(), batch_variance_.data());
  if (!training || !options_.track_running_stats) return y;
  if (options_.convention == BatchNormConvention::keras) {
    kernels::update_moving_statistics_keras(channels_, saved_mean_.data(), batch_variance_.data(), *options_.momentum,
                                            moving_mean_.value.data(), moving_variance_.value.data());
  } else {
    ++num_batches_tracked_;
    kernels::update_running_statistics_pytorch(channels_, shape.count_per_channel(), saved_mean_.data(),
                                               batch_variance_.data(), options_.momentum, num_batches_tracked_,
                                               moving_mean_.value.data(), moving_variance_.value.data());
  }
  return y;
}

const Tensor& BatchNormalization::backward(const Tensor& dy) {
  detail::check_input(*this, dy, output_shape_, "backward");
  if (!x_.defined() || x_.dim(0) != dy.dim(0))
    throw std::invalid_argument(fmt::format("{}: backward got a batch of {}, the last forward had {}",
                                            detail::describe(*this), dy.dim(0), x_.defined() ? x_.dim(0) : 0));
  const kernels::BatchNormShape shape = kernel_shape(dy.dim(0));
  const float* gamma = options_.scale ? gamma_.value.data() : nullptr;
  const float* beta = options_.center ? beta_.value.data() : nullptr;
  float* dgamma = options_.scale ? gamma_.grad.data() : nullptr;
  float* dbeta = options_.center ? beta_.grad.data() : nullptr;
  // Without center and scale there are no grads to write, so the input gradient is computed
  // whatever the model said (the kernels need at least one output).
  const bool skip_dx = !input_gradient_needed_ && (dgamma || dbeta);
  float* dx = skip_dx ? nullptr : dx_.resize_like(dy).data();
  if (last_forward_batch_statistics_)
    kernels::batchnorm_backward(shape, x_.data(), dy.data(), gamma, beta, saved_mean_.data(), saved_inv_std_.data(),
                                dx, dgamma, dbeta);
  else
    kernels::batchnorm_backward_inference(shape, x_.data(), dy.data(), moving_mean_.value.data(),
                                          moving_variance_.value.data(), gamma, beta, options_.epsilon, dx, dgamma,
                                          dbeta);
  return skip_dx ? no_input_gradient() : dx_.tensor();
}

const Tensor& BatchNormalization::normalized_input() {
  if (!x_.defined())
    throw std::logic_error(fmt::format("{}: normalized_input() before any forward", detail::describe(*this)));
  const kernels::BatchNormShape shape = kernel_shape(x_.dim(0));
  Tensor& xhat = xhat_.resize_like(x_);
  // The inference kernel without gamma and beta is exactly (x - mean) / sqrt(variance + eps).
  const float* mean = last_forward_batch_statistics_ ? saved_mean_.data() : moving_mean_.value.data();
  const float* variance = last_forward_batch_statistics_ ? batch_variance_.data() : moving_variance_.value.data();
  kernels::batchnorm_forward_inference(shape, x_.data(), mean, variance, nullptr, nullptr, options_.epsilon,
                                       xhat.data());
  return xhat;
}

std::vector<Parameter*> BatchNormalization::parameters() {
  if (!built_) return {};
  std::vector<Parameter*> params;
  if (options_.scale) params.push_back(&gamma_);
  if (options_.center) params.push_back(&beta_);
  if (options_.track_running_stats) {
    params.push_back(&moving_mean_);
    params.push_back(&moving_variance_);
  }
  return params;
}

void BatchNormalization::set_num_batches_tracked(std::int64_t count) {
  if (count < 0)
    throw std::invalid_argument(
        fmt::format("{}: num_batches_tracked is {}, expected >= 0", detail::describe(*this), count));
  num_batches_tracked_ = count;
}

LayerConfig BatchNormalization::config() const {
  const auto& o = options_;
  LayerConfig config{{"axis", std::to_string(o.axis)},
                     {"momentum", o.momentum ? fmt::format("{}", *o.momentum) : "none"},
                     {"epsilon", fmt::format("{}", o.epsilon)},
                     {"center", o.center ? "true" : "false"},
                     {"scale", o.scale ? "true" : "false"},
                     {"beta_initializer", o.beta_initializer},
                     {"gamma_initializer", o.gamma_initializer},
                     {"moving_mean_initializer", o.moving_mean_initializer},
                     {"moving_variance_initializer", o.moving_variance_initializer},
                     {"convention", o.convention == BatchNormConvention::keras ? "keras" : "pytorch"}};
  if (o.num_features) config["num_features"] = std::to_string(*o.num_features);
  if (o.min_input_rank != 1) config["min_input_rank"] = std::to_string(o.min_input_rank);
  if (o.max_input_rank != 3) config["max_input_rank"] = std::to_string(o.max_input_rank);
  if (!o.track_running_stats) config["track_running_stats"] = "false";
  if (o.convention == BatchNormConvention::pytorch && o.track_running_stats)
    config["num_batches_tracked"] = std::to_string(num_batches_tracked_);
  add_regularizer_config(config);
  return config;
}

namespace {

BatchNormalization pytorch_batch_norm(std::int64_t num_features, float eps, std::optional<float> momentum, bool affine,
                                      bool track_running_stats, int min_rank, int max_rank) {
  BatchNormalizationOptions o = BatchNormalizationOptions::pytorch_defaults();
  o.momentum = momentum;
  o.epsilon = eps;
  o.center = affine;
  o.scale = affine;
  o.track_running_stats = track_running_stats;
  o.num_features = num_features;
  o.min_input_rank = min_rank;
  o.max_input_rank = max_rank;
  return BatchNormalization(std::move(o));
}

}  // namespace

BatchNormalization BatchNorm1d(std::int64_t num_features, float eps, std::optional<float> momentum, bool affine,
                               bool track_running_stats) {
  return pytorch_batch_norm(num_features, eps, momentum, affine, track_running_stats, 1, 2);
}

BatchNormalization BatchNorm2d(std::int64_t num_features, float eps, std::optional<float> momentum, bool affine,
                               bool track_running_stats) {
  return pytorch_batch_norm(num_features, eps, momentum, affine, track_running_stats, 3, 3);
}

}  // namespace bnlab
