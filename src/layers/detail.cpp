#include "bnlab/layers/detail.hpp"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "bnlab/kernels/gemm.hpp"

namespace bnlab::detail {

Tensor& BatchBuffer::resize(std::int64_t batch, const Shape& sample_shape, Layout layout) {
  const bool fits = storage_.defined() && storage_.layout() == layout && storage_.dim(0) >= batch &&
                    has_sample_shape(storage_, sample_shape);
  if (!fits) {
    Shape shape{batch};
    shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
    storage_ = Tensor(shape, layout);
    view_ = storage_;
  } else if (view_.dim(0) != batch) {
    view_ = storage_.slice_batch(0, batch);
  }
  return view_;
}

Tensor& BatchBuffer::resize_like(const Tensor& like) {
  bool fits = storage_.defined() && storage_.layout() == like.layout() && storage_.rank() == like.rank() &&
              storage_.dim(0) >= like.dim(0);
  for (int i = 1; fits && i < like.rank(); ++i) fits = storage_.dim(i) == like.dim(i);
  if (!fits) {
    storage_ = Tensor(like.shape(), like.layout());
    view_ = storage_;
  } else if (view_.dim(0) != like.dim(0)) {
    view_ = storage_.slice_batch(0, like.dim(0));
  }
  return view_;
}

const Tensor& ActivationStage::forward(const Tensor& z) {
  z_ = z;
  if (kind_ == kernels::ActivationKind::linear) return z_;
  Tensor& y = y_.resize_like(z);
  const std::int64_t cols = z.dim(z.rank() - 1);
  const std::int64_t rows = cols == 0 ? 0 : z.size() / cols;
  kernels::activation_forward(kind_, rows, cols, alpha_, z.data(), y.data());
  return y;
}

const Tensor& ActivationStage::backward(const Tensor& dy) {
  if (kind_ == kernels::ActivationKind::linear) {
    passthrough_ = dy;
    return passthrough_;
  }
  Tensor& dz = dz_.resize_like(dy);
  const std::int64_t cols = dy.dim(dy.rank() - 1);
  const std::int64_t rows = cols == 0 ? 0 : dy.size() / cols;
  kernels::activation_backward(kind_, rows, cols, alpha_, z_.data(), y_.tensor().data(), dy.data(), dz.data());
  return dz;
}

const Tensor& ActivationStage::forward(Tensor& z, const float* bias) {
  z_ = z;
  const std::int64_t cols = z.dim(z.rank() - 1);
  const std::int64_t rows = cols == 0 ? 0 : z.size() / cols;
  if (kind_ == kernels::ActivationKind::linear) {
    if (bias) kernels::add_row_vector(rows, cols, bias, z.data());
    return z_;
  }
  Tensor& y = y_.resize_like(z);
  kernels::bias_activation_forward(kind_, rows, cols, alpha_, bias, z.data(), y.data());
  return y;
}

const Tensor& ActivationStage::backward(const Tensor& dy, float* bias_grad) {
  const std::int64_t cols = dy.dim(dy.rank() - 1);
  const std::int64_t rows = cols == 0 ? 0 : dy.size() / cols;
  if (kind_ == kernels::ActivationKind::linear) {
    if (bias_grad) kernels::sum_rows(rows, cols, dy.data(), bias_grad);
    passthrough_ = dy;
    return passthrough_;
  }
  Tensor& dz = dz_.resize_like(dy);
  kernels::activation_backward_bias_grad(kind_, rows, cols, alpha_, z_.data(), y_.tensor().data(), dy.data(),
                                         dz.data(), bias_grad);
  return dz;
}

std::string describe(const Layer& layer) {
  return layer.name().empty() ? layer.type_name() : fmt::format("{} '{}'", layer.type_name(), layer.name());
}

std::string batch_shape_string(const Shape& sample_shape) {
  std::string s = "(None";
  for (std::int64_t d : sample_shape) s += fmt::format(", {}", d);
  return s + ")";
}

Shape sample_shape_of(const Tensor& x) {
  Shape shape = x.shape();
  shape.erase(shape.begin());
  return shape;
}

bool has_sample_shape(const Tensor& x, const Shape& sample_shape) {
  if (!x.defined() || x.rank() != static_cast<int>(sample_shape.size()) + 1) return false;
  for (std::size_t i = 0; i < sample_shape.size(); ++i)
    if (x.dim(static_cast<int>(i) + 1) != sample_shape[i]) return false;
  return true;
}

std::int64_t element_count(const Layer& layer, const Shape& shape) {
  // A shape read from a model file can be forged; Tensor refuses more than 2^40 elements, so a
  // per-sample shape past that could never be allocated, and its product could overflow.
  constexpr std::int64_t limit = std::int64_t{1} << 40;
  std::int64_t count = 1;
  for (std::int64_t d : shape) {
    if (d < 0 || (d != 0 && count > limit / d))
      throw std::invalid_argument(fmt::format("{}: input shape {} has a negative dimension or more than 2^40 elements "
                                              "per sample",
                                              describe(layer), batch_shape_string(shape)));
    count *= d;
  }
  return count;
}

void require_built(const Layer& layer, const char* call) {
  if (!layer.built()) throw std::logic_error(fmt::format("{}: {} called before build()", describe(layer), call));
}

void check_input(const Layer& layer, const Tensor& x, const Shape& sample_shape, const char* call) {
  require_built(layer, call);
  if (!has_sample_shape(x, sample_shape) || x.dim(0) < 1)
    throw std::invalid_argument(fmt::format("{}: {} got input of shape {}, expected {} with batch >= 1",
                                            describe(layer), call, x.defined() ? x.shape_string() : "(undefined)",
                                            batch_shape_string(sample_shape)));
}

void check_input_rank(const Layer& layer, const Shape& input_shape, int min_rank, int max_rank) {
  const auto rank = static_cast<int>(input_shape.size());
  if (rank < min_rank || rank > max_rank)
    throw std::invalid_argument(fmt::format("{}: input shape is {}, expected {} to {} dimensions after the batch",
                                            describe(layer), batch_shape_string(input_shape), min_rank, max_rank));
}

void check_positive_dimensions(const Layer& layer, const Shape& input_shape) {
  for (std::int64_t d : input_shape)
    if (d < 1)
      throw std::invalid_argument(fmt::format("{}: input shape is {}, expected every dimension >= 1", describe(layer),
                                              batch_shape_string(input_shape)));
}

void check_epsilon(const std::string& who, float epsilon) {
  if (!(epsilon > 0.0f) || !std::isfinite(epsilon))
    throw std::invalid_argument(fmt::format("{}: epsilon is {}, expected a finite value > 0", who, epsilon));
}

ChannelGeometry channel_geometry(const Layer& layer, const Shape& input_shape, int axis) {
  const int rank = static_cast<int>(input_shape.size());
  check_positive_dimensions(layer, input_shape);
  // Keras numbers the axes of the batched tensor: 0 is the batch, rank is the last.
  const int resolved = axis < 0 ? axis + rank + 1 : axis;
  ChannelGeometry geometry;
  if (resolved == rank && rank >= 1) {
    geometry.channels = input_shape[rank - 1];
    geometry.layout = rank == 1 ? Layout::NC : Layout::NHWC;
  } else if (resolved == 1 && rank >= 1) {
    geometry.channels = input_shape[0];
    geometry.layout = Layout::NCHW;
  } else {
    throw std::invalid_argument(
        fmt::format("{}: axis is {} for input {}, expected 1 (channels first) or {} / -1 (channels last)",
                    describe(layer), axis, batch_shape_string(input_shape), rank));
  }
  geometry.spatial = element_count(layer, input_shape) / geometry.channels;
  return geometry;
}

void check_channel_layout(const Layer& layer, const Tensor& x, Layout kernel_layout, int axis) {
  const bool says_where_channels_are = x.layout() == Layout::NCHW || x.layout() == Layout::NHWC;
  if (!says_where_channels_are || kernel_layout == Layout::NC || x.layout() == kernel_layout) return;
  throw std::invalid_argument(fmt::format(
      "{}: forward got input {} in layout {}, but axis {} takes the channels from {}", describe(layer),
      x.shape_string(), to_string(x.layout()), axis,
      kernel_layout == Layout::NCHW ? "dimension 1 (NCHW); Conv2D and MaxPooling2D give channels last (NHWC), "
                                      "which axis -1 (Keras's default) normalizes"
                                    : "the last dimension (NHWC); channels first (NCHW) need axis 1"));
}

void ActivationStage::set_alpha(float alpha, const std::string& who) {
  if (!std::isfinite(alpha))
    throw std::invalid_argument(
        fmt::format("{}: the leaky_relu slope alpha is {}, expected a finite value", who, alpha));
  alpha_ = alpha;
}

void ActivationStage::add_config(LayerConfig& config) const {
  config["activation"] = activation_name(kind_);
  // Files written before this key hold leaky_relu activations of slope 0.3; the key keeps the
  // slope explicit, and a reader that does not know it refuses the file instead of misreading it.
  if (kind_ == kernels::ActivationKind::leaky_relu) config["alpha"] = fmt::format("{}", alpha_);
}

kernels::ActivationKind parse_activation(const std::string& name, const std::string& who) {
  using kernels::ActivationKind;
  if (name == "linear" || name == "none" || name.empty()) return ActivationKind::linear;
  if (name == "relu") return ActivationKind::relu;
  if (name == "leaky_relu") return ActivationKind::leaky_relu;
  if (name == "sigmoid") return ActivationKind::sigmoid;
  if (name == "tanh") return ActivationKind::tanh;
  if (name == "softmax") return ActivationKind::softmax;
  throw std::invalid_argument(fmt::format(
      "{}: activation is \"{}\", expected one of \"linear\", \"relu\", \"leaky_relu\", \"sigmoid\", \"tanh\", "
      "\"softmax\"",
      who, name));
}

std::string activation_name(kernels::ActivationKind kind) {
  using kernels::ActivationKind;
  switch (kind) {
    case ActivationKind::linear: return "linear";
    case ActivationKind::relu: return "relu";
    case ActivationKind::leaky_relu: return "leaky_relu";
    case ActivationKind::sigmoid: return "sigmoid";
    case ActivationKind::tanh: return "tanh";
    case ActivationKind::softmax: return "softmax";
  }
  return "linear";
}

}  // namespace bnlab::detail
