#pragma once
// WHAT THIS OBJECT REPRESENTS
//   tf.keras.layers.Conv2D with data_format "channels_last": y = activation(conv(x, kernel) +
//   bias), kernel (KH, KW, Cin, filters) as Keras stores it, bias (filters).
// REQUIRES
//   filters >= 1, kernel_size and strides >= 1 in both dimensions, padding "valid" or "same"
//   (Keras semantics, see kernels/window.hpp), activation and initializers as for Dense;
//   build() with a per-sample shape {H, W, Cin}; forward() with (N, H, W, Cin), N >= 1.
// ENSURES
//   forward returns (N, OH, OW, filters) in layout NHWC. parameters(): kernel, then bias when
//   use_bias. Glorot fans are Keras's: KH*KW*Cin and KH*KW*filters.
//   The im2col buffer (N*OH*OW x KH*KW*Cin floats) is kept from forward to backward and
//   reused as backward's scratch, so backward may run once per forward.

#include <array>
#include <cstdint>
#include <string>

#include "bnlab/kernels/conv.hpp"
#include "bnlab/layers/detail.hpp"
#include "bnlab/layers/layer.hpp"

namespace bnlab {

class Conv2D : public Layer {
public:
  Conv2D(std::int64_t filters, std::array<std::int64_t, 2> kernel_size, std::array<std::int64_t, 2> strides = {1, 1},
         const std::string& padding = "valid", const std::string& activation = "linear", bool use_bias = true,
         std::string kernel_initializer = "glorot_uniform", std::string bias_initializer = "zeros");

  std::string type_name() const override { return "Conv2D"; }
  Shape build(const Shape& input_shape, Rng& rng) override;
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
  std::vector<Parameter*> parameters() override;
  LayerConfig config() const override;
  std::vector<std::string> regularizable_parameters() const override { return {"kernel", "bias"}; }

  std::int64_t filters() const { return filters_; }
  kernels::ActivationKind activation() const { return activation_.kind(); }
  // As Dense's: the slope of a "leaky_relu" activation, 0.2 unless set.
  float activation_alpha() const { return activation_.alpha(); }
  void set_activation_alpha(float alpha);
  std::array<std::int64_t, 2> kernel_size() const { return kernel_size_; }
  std::array<std::int64_t, 2> strides() const { return strides_; }
  kernels::Padding padding() const { return padding_; }

private:
  kernels::Conv2DShape shape_for(std::int64_t batch) const;

  std::int64_t filters_;
  std::array<std::int64_t, 2> kernel_size_;
  std::array<std::int64_t, 2> strides_;
  kernels::Padding padding_;
  bool use_bias_;
  std::string kernel_initializer_;
  std::string bias_initializer_;
  Parameter kernel_{"kernel", {}, {}, true};
  Parameter bias_{"bias", {}, {}, true};
  detail::BatchBuffer columns_;
  Shape columns_per_sample_;  // {OH*OW*KH*KW*Cin}
  bool columns_hold_input_ = false;  // false once backward has reused them as scratch
  detail::BatchBuffer z_;
  detail::ActivationStage activation_;
  detail::BatchBuffer dx_;
};

}  // namespace bnlab
