#include "bnlab/layers/sample_normalization.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "bnlab/layers/initializers.hpp"

namespace bnlab {
namespace detail {
namespace {

// Copies each of `batch` samples of per-sample shape `dims` (row-major, up to three axes)
// between that order and the one listing its axes as `order`: to_order copies into the ordered
// buffer, otherwise back out of it.
void copy_in_order(const float* from, float* to, std::int64_t batch, const Shape& dims, const std::vector<int>& order,
                   bool to_order) {
  const int rank = static_cast<int>(dims.size());
  std::int64_t input_stride[3] = {1, 1, 1}, extent[3] = {1, 1, 1}, step[3] = {0, 0, 0}, sample = 1;
  for (int a = rank - 1; a >= 0; --a) {
    input_stride[a] = sample;
    sample *= dims[static_cast<std::size_t>(a)];
  }
  for (int k = 0; k < rank; ++k) {
    extent[k] = dims[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])];
    step[k] = input_stride[order[static_cast<std::size_t>(k)]];
  }
  for (std::int64_t n = 0; n < batch; ++n) {
    const std::int64_t base = n * sample;
    std::int64_t ordered = base;
    for (std::int64_t i = 0; i < extent[0]; ++i)
      for (std::int64_t j = 0; j < extent[1]; ++j)
        for (std::int64_t k = 0; k < extent[2]; ++k, ++ordered) {
          const std::int64_t input = base + i * step[0] + j * step[1] + k * step[2];
          if (to_order)
            to[ordered] = from[input];
          else
            to[input] = from[ordered];
        }
  }
}

}  // namespace

SampleNormalization::SampleNormalization(const char* type, float epsilon, bool center, bool scale,
                                         std::string beta_initializer, std::string gamma_initializer)
    : epsilon_(epsilon),
      center_(center),
      scale_(scale),
      beta_initializer_(std::move(beta_initializer)),
      gamma_initializer_(std::move(gamma_initializer)) {
  detail::check_epsilon(type, epsilon_);
  initializers::check(beta_initializer_, type, "beta_initializer");
  initializers::check(gamma_initializer_, type, "gamma_initializer");
}

Shape SampleNormalization::finish_build(const Shape& input_shape, std::int64_t rows_per_sample, std::int64_t channels,
                                        std::int64_t spatial, Layout layout, std::int64_t groups, Rng& rng) {
  rows_per_sample_ = rows_per_sample;
  channels_ = channels;
  spatial_ = spatial;
  kernel_layout_ = layout;
  groups_ = groups;
  statistics_shape_ = {rows_per_sample * groups};  // built once: a Shape per forward would allocate
  ordered_shape_.clear();
  for (int axis : sample_order_) ordered_shape_.push_back(input_shape[static_cast<std::size_t>(axis)]);
  if (scale_) initializers::create_trainable(gamma_, {channels}, gamma_initializer_, channels, channels, rng);
  if (center_) initializers::create_trainable(beta_, {channels}, beta_initializer_, channels, channels, rng);
  input_shape_ = input_shape;
  output_shape_ = input_shape;
  built_ = true;
  return output_shape_;
}

kernels::GroupNormShape SampleNormalization::kernel_shape(std::int64_t batch) const {
  return {batch * rows_per_sample_, channels_, spatial_, kernel_layout_, groups_};
}

const Tensor& SampleNormalization::forward(const Tensor& x, bool) {
  check_input(*this, x, input_shape_, "forward");
  check_layout(x);
  const std::int64_t batch = x.dim(0);
  const kernels::GroupNormShape shape = kernel_shape(batch);
  Tensor& y = y_.resize_like(x);
  x_ = x;
  const bool reorder = !sample_order_.empty();
  if (reorder)
    copy_in_order(x.data(), ordered_x_.resize(batch, ordered_shape_, Layout::Plain).data(), batch, input_shape_,
                  sample_order_, true);
  kernels::group_norm_forward(shape, reorder ? ordered_x_.tensor().data() : x.data(),
                              scale_ ? gamma_.value.data() : nullptr, center_ ? beta_.value.data() : nullptr, epsilon_,
                              reorder ? ordered_y_.resize(batch, ordered_shape_, Layout::Plain).data() : y.data(),
                              saved_mean_.resize(batch, statistics_shape_, Layout::Plain).data(),
                              saved_inv_std_.resize(batch, statistics_shape_, Layout::Plain).data());
  if (reorder) copy_in_order(ordered_y_.tensor().data(), y.data(), batch, input_shape_, sample_order_, false);
  return y;
}

const Tensor& SampleNormalization::backward(const Tensor& dy) {
  check_input(*this, dy, output_shape_, "backward");
  if (!x_.defined() || x_.dim(0) != dy.dim(0))
    throw std::invalid_argument(fmt::format("{}: backward got a batch of {}, the last forward had {}", describe(*this),
                                            dy.dim(0), x_.defined() ? x_.dim(0) : 0));
  float* dgamma = scale_ ? gamma_.grad.data() : nullptr;
  float* dbeta = center_ ? beta_.grad.data() : nullptr;
  // Without gamma and beta there is nothing else to write, so dx is computed regardless.
  const bool skip_dx = !input_gradient_needed_ && (dgamma || dbeta);
  float* dx = skip_dx ? nullptr : dx_.resize_like(dy).data();
  const std::int64_t batch = dy.dim(0);
  const bool reorder = !sample_order_.empty();
  if (reorder)
    copy_in_order(dy.data(), ordered_dy_.resize(batch, ordered_shape_, Layout::Plain).data(), batch, input_shape_,
                  sample_order_, true);
  float* kernel_dx = reorder && dx ? ordered_dx_.resize(batch, ordered_shape_, Layout::Plain).data() : dx;
  kernels::group_norm_backward(kernel_shape(batch), reorder ? ordered_x_.tensor().data() : x_.data(),
                               reorder ? ordered_dy_.tensor().data() : dy.data(),
                               scale_ ? gamma_.value.data() : nullptr, saved_mean_.tensor().data(),
                               saved_inv_std_.tensor().data(), kernel_dx, dgamma, dbeta);
  if (reorder && dx) copy_in_order(kernel_dx, dx, batch, input_shape_, sample_order_, false);
  return skip_dx ? no_input_gradient() : dx_.tensor();
}

std::vector<Parameter*> SampleNormalization::parameters() {
  if (!built_) return {};
  std::vector<Parameter*> params;
  if (scale_) params.push_back(&gamma_);
  if (center_) params.push_back(&beta_);
  return params;
}

void SampleNormalization::add_config(LayerConfig& config) const {
  config["epsilon"] = fmt::format("{}", epsilon_);
  config["center"] = center_ ? "true" : "false";
  config["scale"] = scale_ ? "true" : "false";
  config["beta_initializer"] = beta_initializer_;
  config["gamma_initializer"] = gamma_initializer_;
  add_regularizer_config(config);
}

}  // namespace detail

LayerNormalization::LayerNormalization(LayerNormalizationOptions options)
    : SampleNormalization("LayerNormalization", options.epsilon, options.center, options.scale,
                          options.beta_initializer, options.gamma_initializer),
      options_(std::move(options)) {
  if (options_.normalized_shape &&
      (options_.normalized_shape->empty() ||
       std::any_of(options_.normalized_shape->begin(), options_.normalized_shape->end(), [](auto d) { return d < 1; })))
    throw std::invalid_argument(
        fmt::format("LayerNormalization: normalized_shape is ({}), expected one or more dimensions >= 1",
                    fmt::join(*options_.normalized_shape, ", ")));
  if (options_.axis.empty())
    throw std::invalid_argument("LayerNormalization: axis is empty, expected one or more axes");
}

Shape LayerNormalization::build(const Shape& input_shape, Rng& rng) {
  const int rank = static_cast<int>(input_shape.size());
  const std::string shape = detail::batch_shape_string(input_shape);
  detail::check_input_rank(*this, input_shape, 1, 3);
  detail::check_positive_dimensions(*this, input_shape);
  if (options_.normalized_shape && options_.normalized_shape->size() > input_shape.size())
    throw std::invalid_argument(fmt::format("{}: normalized_shape is ({}), longer than input {} without its batch",
                                            detail::describe(*this), fmt::join(*options_.normalized_shape, ", "),
                                            shape));
  std::vector<int> axes;
  for (int a : options_.axis) axes.push_back(a < 0 ? a + rank + 1 : a);
  std::sort(axes.begin(), axes.end());
  // Any of the sample's axes (1 .. rank), each once; never the batch (0), whose samples are
  // normalized one by one.
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end() || axes.front() < 1 || axes.back() > rank)
    throw std::invalid_argument(fmt::format(
        "{}: axis is ({}) for input {}, expected distinct axes of the sample, 1 to {} (or -{} to -1), not the batch",
        detail::describe(*this), fmt::join(options_.axis, ", "), shape, rank, rank));
  // The kernel sees each sample as rows (the other axes, in order) of the normalized elements
  // (the normalized axes, in order): the input's own order when those are the last axes.
  std::vector<int> order;
  Shape leading, normalized;
  for (int a = 1; a <= rank; ++a)
    if (!std::binary_search(axes.begin(), axes.end(), a)) {
      order.push_back(a - 1);
      leading.push_back(input_shape[static_cast<std::size_t>(a - 1)]);
    }
  for (int a : axes) {
    order.push_back(a - 1);
    normalized.push_back(input_shape[static_cast<std::size_t>(a - 1)]);
  }
  if (options_.normalized_shape && *options_.normalized_shape != normalized)
    throw std::invalid_argument(fmt::format(
        "{}: normalized_shape is ({}), but input {} has ({}) on the normalized axes", detail::describe(*this),
        fmt::join(*options_.normalized_shape, ", "), shape, fmt::join(normalized, ", ")));
  const bool own_order = std::is_sorted(order.begin(), order.end());
  set_sample_order(own_order ? std::vector<int>{} : order);
  const std::int64_t features = detail::element_count(*this, normalized);
  const std::int64_t rows = leading.empty() ? 1 : detail::element_count(*this, leading);
  return finish_build(input_shape, rows, features, 1, Layout::NC, 1, rng);
}

LayerConfig LayerNormalization::config() const {
  LayerConfig config{{"axis", fmt::format("{}", fmt::join(options_.axis, ","))}};
  if (options_.normalized_shape)
    config["normalized_shape"] = fmt::format("{}", fmt::join(*options_.normalized_shape, ","));
  add_config(config);
  return config;
}

GroupNormalization::GroupNormalization(GroupNormalizationOptions options)
    : SampleNormalization("GroupNormalization", options.epsilon, options.center, options.scale,
                          options.beta_initializer, options.gamma_initializer),
      options_(std::move(options)) {
  if (options_.groups < 1 && options_.groups != -1)
    throw std::invalid_argument(
        fmt::format("GroupNormalization: groups is {}, expected >= 1 (or -1: one group per channel)", options_.groups));
  if (options_.num_channels && *options_.num_channels < 1)
    throw std::invalid_argument(
        fmt::format("GroupNormalization: num_channels is {}, expected >= 1", *options_.num_channels));
  if (options_.instance_rank && *options_.instance_rank != 2 && *options_.instance_rank != 3)
    throw std::invalid_argument(
        fmt::format("GroupNormalization: instance_rank is {}, expected 2 (InstanceNorm1d) or 3 "
                    "(InstanceNorm2d)",
                    *options_.instance_rank));
}

Shape GroupNormalization::build(const Shape& input_shape, Rng& rng) {
  const std::string shape = detail::batch_shape_string(input_shape);
  detail::check_input_rank(*this, input_shape, 1, 3);
  if (options_.instance_rank) {
    const char* expected = *options_.instance_rank == 2 ? "InstanceNorm1d expects input (N, C, L)"
                                                        : "InstanceNorm2d expects input (N, C, H, W)";
    if (static_cast<int>(input_shape.size()) != *options_.instance_rank)
      throw std::invalid_argument(fmt::format("{}: {}, got {}", detail::describe(*this), expected, shape));
    if (detail::element_count(*this, input_shape) == input_shape.front())
      throw std::invalid_argument(
          fmt::format("{}: {} with more than one position per channel, got {}: each channel would normalize one value",
                      detail::describe(*this), expected, shape));
  }
  const detail::ChannelGeometry geometry = detail::channel_geometry(*this, input_shape, options_.axis);
  if (options_.num_channels && *options_.num_channels != geometry.channels)
    throw std::invalid_argument(fmt::format("{}: num_channels is {}, but input {} has {} channels on axis {}",
                                            detail::describe(*this), *options_.num_channels, shape, geometry.channels,
                                            options_.axis));
  const std::int64_t groups = options_.groups == -1 ? geometry.channels : options_.groups;
  if (geometry.channels % groups != 0)
    throw std::invalid_argument(fmt::format("{}: groups is {}, which does not divide the {} channels of input {}",
                                            detail::describe(*this), groups, geometry.channels, shape));
  return finish_build(input_shape, 1, geometry.channels, geometry.spatial, geometry.layout, groups, rng);
}

void GroupNormalization::check_layout(const Tensor& x) const {
  detail::check_channel_layout(*this, x, kernel_layout(), options_.axis);
}

LayerConfig GroupNormalization::config() const {
  LayerConfig config{{"groups", std::to_string(options_.groups)}, {"axis", std::to_string(options_.axis)}};
  if (options_.num_channels) config["num_channels"] = std::to_string(*options_.num_channels);
  if (options_.instance_rank) config["instance_rank"] = std::to_string(*options_.instance_rank);
  add_config(config);
  return config;
}

LayerNormalization LayerNorm(Shape normalized_shape, float eps, bool elementwise_affine) {
  LayerNormalizationOptions o;
  o.axis.clear();
  for (int k = -static_cast<int>(normalized_shape.size()); k < 0; ++k) o.axis.push_back(k);
  o.epsilon = eps;
  o.center = elementwise_affine;
  o.scale = elementwise_affine;
  o.normalized_shape = std::move(normalized_shape);
  return LayerNormalization(std::move(o));
}

namespace {

// torch.nn.GroupNorm's arguments as options: channels first.
GroupNormalizationOptions pytorch_group_norm(std::int64_t num_groups, std::int64_t num_channels, float eps,
                                             bool affine) {
  GroupNormalizationOptions o;
  o.groups = num_groups;
  o.axis = 1;
  o.epsilon = eps;
  o.center = affine;
  o.scale = affine;
  o.num_channels = num_channels;
  return o;
}

GroupNormalization instance_norm(const char* name, int rank, std::int64_t num_features, float eps, bool affine) {
  if (num_features < 1)
    throw std::invalid_argument(fmt::format("{}: num_features is {}, expected >= 1", name, num_features));
  GroupNormalizationOptions o = pytorch_group_norm(num_features, num_features, eps, affine);
  o.instance_rank = rank;
  return GroupNormalization(std::move(o));
}

}  // namespace

GroupNormalization GroupNorm(std::int64_t num_groups, std::int64_t num_channels, float eps, bool affine) {
  return GroupNormalization(pytorch_group_norm(num_groups, num_channels, eps, affine));
}

GroupNormalization InstanceNorm1d(std::int64_t num_features, float eps, bool affine) {
  return instance_norm("InstanceNorm1d", 2, num_features, eps, affine);
}

GroupNormalization InstanceNorm2d(std::int64_t num_features, float eps, bool affine) {
  return instance_norm("InstanceNorm2d", 3, num_features, eps, affine);
}

}  // namespace bnlab
