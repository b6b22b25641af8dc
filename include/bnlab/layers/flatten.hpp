#pragma once
// WHAT THIS OBJECT REPRESENTS
//   tf.keras.layers.Flatten: (N, d1, ..., dk) -> (N, d1*...*dk), a view of the same memory.
// REQUIRES
//   build() with a per-sample shape of rank 1 to 3; forward() with (N, *that shape), N >= 1.
// ENSURES
//   forward returns an NC view sharing x's storage; backward returns a view of dy in x's shape
//   and layout. Nothing is copied and nothing allocated. No parameters.

#include <string>

#include "bnlab/layers/layer.hpp"

namespace bnlab {

class Flatten : public Layer {
public:
  Flatten() = default;

  std::string type_name() const override { return "Flatten"; }
  Shape build(const Shape& input_shape, Rng& rng) override;
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
  LayerConfig config() const override { return {}; }

private:
  Layout input_layout_ = Layout::Plain;
  // (N, features) and (N, *input_shape): kept so that a step reshapes without building a vector.
  Shape flat_batch_shape_;
  Shape input_batch_shape_;
  Tensor y_;
  Tensor dx_;
};

}  // namespace bnlab
