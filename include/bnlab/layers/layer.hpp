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

// Keras's L1L2 weight regularizer: the penalty l1 * sum|w| + l2 * sum w^2 on one parameter, added
// to the model's loss (in fit, evaluate and compute_gradients) and its gradient to the
// parameter's. Spelled as Keras's functions: "l1" and "l2" (factor 0.01, Keras's default),
// "l1(F)", "l2(F)", "l1_l2(F1,F2)" (both factors given: Keras 2's and 3's defaults differ).
struct Regularizer {
  double l1 = 0.0;
  double l2 = 0.0;

  bool active() const { return l1 != 0.0 || l2 != 0.0; }
  // Throws std::invalid_argument "<who>: <what> is \"text\", expected ..." for anything else, a
  // factor that is negative, not finite or past float's range (the gradient is float) included.
  static Regularizer parse(const std::string& text, const std::string& who, const std::string& what);
  std::string to_string() const;  // the form parse reads: "l2(0.01)", "l1_l2(0.01,0.001)"
};

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

  // Keras's <parameter>_regularizer arguments: a penalty on the trainable parameter of that name
  // (one of regularizable_parameters(), else std::invalid_argument). A parameter the layer's
  // options leave out (use_bias = false, center = false) is not penalized, as in Keras.
  void set_regularizer(const std::string& parameter, const Regularizer& regularizer);
  // The regularizer set for a parameter name, or nullptr.
  const Regularizer* regularizer(const std::string& parameter) const;
  // Kernel and bias for Dense and Conv2D, gamma and beta for the normalizations; none otherwise.
  virtual std::vector<std::string> regularizable_parameters() const { return {}; }

  bool built() const { return built_; }
  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shape_; }

protected:
  bool built_ = false;
  Shape input_shape_;
  Shape output_shape_;
  bool input_gradient_needed_ = true;

  // Writes "<parameter>_regularizer" for every regularizer set (config() calls it).
  void add_regularizer_config(LayerConfig& config) const;

  // What backward() returns when input_gradient_needed() is false and the layer skipped dL/dx.
  static const Tensor& no_input_gradient() {
    static const Tensor undefined;
    return undefined;
  }

private:
  std::string name_;
  std::map<std::string, Regularizer> regularizers_;
};

}  // namespace bnlab
