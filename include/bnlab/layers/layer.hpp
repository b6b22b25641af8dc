#pragma once
// WHAT THIS OBJECT REPRESENTS
//   One layer of a Sequential model: its parameters (trainable weights and non-trainable
//   state such as BatchNorm's moving statistics), the activations it caches for backward,
//   and its configuration (for summary() and save/load). The arithmetic lives in kernels/.
// CONTRACT
//   build() is called once, with the per-sample input shape (no batch dimension), before any
//   forward; it creates and initializes the parameters from rng and returns the per-sample
//   output shape. forward() and backward() return references to buffers the layer owns and
//   reuses while the batch size is unchanged, so a training step allocates nothing after the
//   first. backward(dy) follows forward(x, training=true) on the same batch; it writes (not
//   accumulates) every trainable parameter's grad and returns dL/dx, unless the model said it
//   needs no input gradient (set_input_gradient_needed(false)), or the layer takes over the
//   previous layer's backward (takes_over_previous_backward()): then it may skip dL/dx and
//   return an undefined tensor.
//   Bad shapes throw std::invalid_argument naming the layer, the shape seen and the shape expected.

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bnlab/tensor.hpp"

namespace bnlab {

using Rng = std::mt19937_64;
using Shape = std::vector<std::int64_t>;  // per-sample shape, batch dimension excluded

struct Parameter {
  std::string name;  // "kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"
  Tensor value;
  Tensor grad;       // same shape as value; undefined for non-trainable parameters
  bool trainable = true;
};

// A layer's configuration as string key/values: printed nowhere, saved with the model and
// handed back to the layer factory on load (see model/serialization).
using LayerConfig = std::map<std::string, std::string>;

class Layer {
public:
  virtual ~Layer() = default;

  virtual std::string type_name() const = 0;  // Keras's class name: "Dense", "BatchNormalization"
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  virtual Shape build(const Shape& input_shape, Rng& rng) = 0;
  virtual const Tensor& forward(const Tensor& x, bool training) = 0;
  virtual const Tensor& backward(const Tensor& dy) = 0;

  virtual std::vector<Parameter*> parameters() { return {}; }

  // For a layer that ends in softmax (Dense or Activation with activation "softmax"): the
  // pre-softmax values of the last forward, so the loss can fuse softmax with cross-entropy
  // (stable, and dL/dlogits = p - onehot); nullptr for every other layer.
  virtual const Tensor* softmax_logits() const { return nullptr; }
  // Backward given dL/dlogits instead of dL/dy; only for layers whose softmax_logits() is set.
  virtual const Tensor& backward_from_logits(const Tensor& dlogits) { return backward(dlogits); }
  virtual LayerConfig config() const = 0;

  // Whether backward() must compute dL/dx. Sequential turns it off for its first layer with
  // trainable parameters, whose input gradient nothing reads (Dense then skips one GEMM in
  // three, BatchNormalization two passes in three). On by default.
  void set_input_gradient_needed(bool needed) { input_gradient_needed_ = needed; }
  bool input_gradient_needed() const { return input_gradient_needed_; }

  // Whether backward() also writes the parameter gradients of the layer before it, so that
  // layer's backward must not run (Dense after a first-trained BatchNormalization: one GEMM
  // gives its kernel grad and the normalization's gamma and beta grads). Off by default.
  virtual bool takes_over_previous_backward() const { return false; }

  bool built() const { return built_; }
  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shape_; }

protected:
  bool built_ = false;
  Shape input_shape_;
  Shape output_shape_;
  bool input_gradient_needed_ = true;

  // What backward() returns when input_gradient_needed() is false and the layer skipped dL/dx.
  static const Tensor& no_input_gradient() {
    static const Tensor undefined;
    return undefined;
  }

private:
  std::string name_;
};

}  // namespace bnlab
