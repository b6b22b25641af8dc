#pragma once
// Building blocks the layer classes share; not part of the user-facing API.

#include <cstdint>
#include <string>

#include "bnlab/kernels/activations.hpp"
#include "bnlab/layers/layer.hpp"
#include "bnlab/tensor.hpp"

namespace bnlab::detail {

// A layer-owned output or gradient buffer viewed at the current batch size. The storage grows
// only when a batch is larger than every batch before it, so alternating sizes (the short last
// batch of an epoch, a validation pass) allocate nothing after the first time each size is seen.
class BatchBuffer {
public:
  // The view of `batch` rows of sample_shape in layout; its data pointer may change when the
  // storage grows, so take it after every resize.
  Tensor& resize(std::int64_t batch, const Shape& sample_shape, Layout layout);
  // The same for the shape and layout of `like`.
  Tensor& resize_like(const Tensor& like);
  Tensor& tensor() { return view_; }
  const Tensor& tensor() const { return view_; }

private:
  Tensor storage_;
  Tensor view_;
};

// The activation ending a Dense or Conv2D layer, or making an Activation layer. Softmax
// normalizes over the last dimension.
class ActivationStage {
public:
  ActivationStage() = default;
  ActivationStage(kernels::ActivationKind kind, float alpha) : kind_(kind), alpha_(alpha) {}

  kernels::ActivationKind kind() const { return kind_; }
  float alpha() const { return alpha_; }
  // The slope of leaky_relu; `who` names the layer in the error for a non-finite one.
  void set_alpha(float alpha, const std::string& who);
  // Keras's config keys: "activation", and "alpha" for leaky_relu.
  void add_config(LayerConfig& config) const;

  // y = act(z). z is kept by handle for backward, so its buffer must not change before then.
  // For linear the result is z itself.
  const Tensor& forward(const Tensor& z);
  // dL/dz from dL/dy for the z and y of the last forward. For linear the result is dy itself.
  const Tensor& backward(const Tensor& dy);
  // Dense's fused passes (kernels::bias_activation_forward and activation_backward_bias_grad):
  // forward adds bias (per last-dimension column, or nothing when null) to z in place before
  // the activation; backward also writes the column sums of dL/dz into bias_grad when it is
  // not null. Results and kept state are those of the unfused calls.
  const Tensor& forward(Tensor& z, const float* bias);
  const Tensor& backward(const Tensor& dy, float* bias_grad);

  const Tensor& input() const { return z_; }

private:
  kernels::ActivationKind kind_ = kernels::ActivationKind::linear;
  float alpha_ = kernels::default_leaky_relu_alpha;
  Tensor z_;
  Tensor passthrough_;
  BatchBuffer y_;
  BatchBuffer dz_;
};

// "Dense 'dense_1'" for a named layer, "Dense" otherwise: the prefix of every error message.
std::string describe(const Layer& layer);
// "(None, 28, 28, 1)": a per-sample shape as Keras prints it.
std::string batch_shape_string(const Shape& sample_shape);
// The shape of x without its first (batch) dimension.
Shape sample_shape_of(const Tensor& x);
// x.rank() == sample_shape.size() + 1 and x's dimensions after the first equal sample_shape;
// compares in place, so it allocates nothing (a training step must not).
bool has_sample_shape(const Tensor& x, const Shape& sample_shape);
std::int64_t element_count(const Layer& layer, const Shape& shape);  // throws past 2^40

// Throws std::invalid_argument "<layer>: input shape is (None, ...), expected <min> to <max>
// dimensions after the batch" for a per-sample rank outside [min_rank, max_rank].
void check_input_rank(const Layer& layer, const Shape& input_shape, int min_rank, int max_rank);
// Throws std::invalid_argument "<layer>: input shape is (None, ...), expected every dimension >= 1".
void check_positive_dimensions(const Layer& layer, const Shape& input_shape);
// Throws std::invalid_argument "<who>: epsilon is <value>, expected a finite value > 0".
void check_epsilon(const std::string& who, float epsilon);

// Throws std::logic_error unless the layer was built.
void require_built(const Layer& layer, const char* call);
// Throws std::invalid_argument unless x is (batch, *sample_shape) with batch >= 1.
void check_input(const Layer& layer, const Tensor& x, const Shape& sample_shape, const char* call);
// Where a layer with a channel axis finds its channels in a per-sample input shape: `axis` in
// Keras numbering (0 is the batch, negative counts from the end) must be the last dimension
// (channels last: {features} -> NC, {..., C} -> NHWC) or dimension 1 (channels first:
// {C, ...} -> NCHW); spatial is the product of the other dimensions. Anything else throws
// std::invalid_argument naming the layer, the axis and the shape.
struct ChannelGeometry {
  std::int64_t channels = 0;
  std::int64_t spatial = 1;
  Layout layout = Layout::NC;
};
ChannelGeometry channel_geometry(const Layer& layer, const Shape& input_shape, int axis);
// For a layer with a channel axis (`axis` in Keras numbering, read as kernel_layout NC, NCHW or
// NHWC): throws std::invalid_argument when x says its channels are elsewhere (an NHWC tensor
// into an axis-1 layer, as BatchNorm2d after Conv2D, would take image rows for channels).
void check_channel_layout(const Layer& layer, const Tensor& x, Layout kernel_layout, int axis);

// Activation names as Keras spells them: "linear" (also accepted: "none", ""), "relu",
// "leaky_relu", "sigmoid", "tanh", "softmax". Unknown names throw std::invalid_argument
// "<who>: activation is \"<name>\", expected one of ...".
kernels::ActivationKind parse_activation(const std::string& name, const std::string& who);
std::string activation_name(kernels::ActivationKind kind);

}  // namespace bnlab::detail
