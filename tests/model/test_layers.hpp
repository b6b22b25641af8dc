#pragma once
// Small, plainly written layers for the model tests: the model is tested against the Layer
// contract alone, independent of the production layers in src/layers (whose own tests live in
// tests/layers). Naive loops, no kernels; correctness over speed.

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "bnlab/layers/layer.hpp"
#include "bnlab/model.hpp"

namespace bnlab::testing {

inline Shape batch_shape(std::int64_t n, const Shape& per_sample) {
  Shape s{n};
  s.insert(s.end(), per_sample.begin(), per_sample.end());
  return s;
}

// Reuse the tensor while the shape is unchanged, as the Layer contract asks; the comparisons
// avoid Tensor::shape() and braced Shapes, which would allocate on every step.
inline Tensor& ensure(Tensor& t, std::int64_t rows, std::int64_t cols) {
  if (!t.defined() || t.rank() != 2 || t.dim(0) != rows || t.dim(1) != cols) t = Tensor({rows, cols});
  return t;
}
inline Tensor& ensure_like(Tensor& t, const Tensor& like) {
  bool same = t.defined() && t.rank() == like.rank();
  for (int i = 0; same && i < t.rank(); ++i) same = t.dim(i) == like.dim(i);
  if (!same) t = Tensor(like.shape());
  return t;
}

inline float uniform_symmetric(Rng& rng, float limit) {
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return static_cast<float>((2.0 * u - 1.0) * limit);
}

class TestFlatten : public Layer {
public:
  std::string type_name() const override { return "Flatten"; }
  Shape build(const Shape& input_shape, Rng&) override {
    std::int64_t n = 1;
    for (auto d : input_shape) n *= d;
    input_shape_ = input_shape;
    output_shape_ = {n};
    built_ = true;
    return output_shape_;
  }
  const Tensor& forward(const Tensor& x, bool) override {
    y_ = x.reshape({x.dim(0), output_shape_[0]});
    return y_;
  }
  const Tensor& backward(const Tensor& dy) override {
    dx_ = dy.reshape(batch_shape(dy.dim(0), input_shape_));
    return dx_;
  }
  LayerConfig config() const override { return {}; }

private:
  Tensor y_, dx_;
};

// Dense with activation "linear", "relu" or "softmax"; type_name is configurable so the same
// arithmetic can stand in for Keras's LeakyReLU-free seed layers in summary tests.
class TestDense : public Layer {
public:
  explicit TestDense(std::int64_t units, std::string activation = "linear", bool use_bias = true)
      : units_(units), activation_(std::move(activation)), use_bias_(use_bias) {
    if (activation_ != "linear" && activation_ != "relu" && activation_ != "softmax")
      throw std::invalid_argument("TestDense: activation " + activation_);
  }
  std::string type_name() const override { return "Dense"; }
  Shape build(const Shape& input_shape, Rng& rng) override {
    if (input_shape.size() != 1) throw std::invalid_argument("TestDense: needs a flat input");
    in_ = input_shape[0];
    kernel_.value = Tensor({in_, units_});
    kernel_.grad = Tensor({in_, units_});
    const float limit = std::sqrt(6.0f / static_cast<float>(in_ + units_));
    for (std::int64_t i = 0; i < kernel_.value.size(); ++i) kernel_.value[i] = uniform_symmetric(rng, limit);
    if (use_bias_) {
      bias_.value = Tensor({units_});
      bias_.grad = Tensor({units_});
    }
    input_shape_ = input_shape;
    output_shape_ = {units_};
    built_ = true;
    return output_shape_;
  }
  const Tensor& forward(const Tensor& x, bool) override {
    const std::int64_t n = x.dim(0);
    x_ = x;
    ensure(z_, n, units_);
    ensure(y_, n, units_);
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t u = 0; u < units_; ++u) {
        double acc = use_bias_ ? bias_.value[u] : 0.0;
        for (std::int64_t i = 0; i < in_; ++i) acc += double(x[r * in_ + i]) * kernel_.value[i * units_ + u];
        z_[r * units_ + u] = static_cast<float>(acc);
      }
    if (activation_ == "linear") {
      for (std::int64_t i = 0; i < z_.size(); ++i) y_[i] = z_[i];
    } else if (activation_ == "relu") {
      for (std::int64_t i = 0; i < z_.size(); ++i) y_[i] = z_[i] > 0 ? z_[i] : 0.0f;
    } else {
      for (std::int64_t r = 0; r < n; ++r) {
        double max = z_[r * units_], sum = 0;
        for (std::int64_t u = 1; u < units_; ++u) max = std::max<double>(max, z_[r * units_ + u]);
        for (std::int64_t u = 0; u < units_; ++u) sum += std::exp(z_[r * units_ + u] - max);
        for (std::int64_t u = 0; u < units_; ++u) y_[r * units_ + u] = float(std::exp(z_[r * units_ + u] - max) / sum);
      }
    }
    return y_;
  }
  const Tensor& backward(const Tensor& dy) override {
    if (activation_ == "softmax") throw std::logic_error("TestDense: softmax backward goes through the logits");
    ensure_like(dz_, dy);
    for (std::int64_t i = 0; i < dy.size(); ++i)
      dz_[i] = activation_ == "relu" && !(z_[i] > 0) ? 0.0f : dy[i];
    return affine_backward(dz_);
  }
  const Tensor* softmax_logits() const override { return activation_ == "softmax" ? &z_ : nullptr; }
  const Tensor& backward_from_logits(const Tensor& dlogits) override { return affine_backward(dlogits); }
  std::vector<Parameter*> parameters() override {
    if (use_bias_) return {&kernel_, &bias_};
    return {&kernel_};
  }
  LayerConfig config() const override {
    return {{"units", std::to_string(units_)}, {"activation", activation_}, {"use_bias", use_bias_ ? "true" : "false"}};
  }

private:
  const Tensor& affine_backward(const Tensor& dz) {
    const std::int64_t n = dz.dim(0);
    ensure(dx_, n, in_);
    for (std::int64_t i = 0; i < in_; ++i)
      for (std::int64_t u = 0; u < units_; ++u) {
        double acc = 0;
        for (std::int64_t r = 0; r < n; ++r) acc += double(x_[r * in_ + i]) * dz[r * units_ + u];
        kernel_.grad[i * units_ + u] = static_cast<float>(acc);
      }
    if (use_bias_)
      for (std::int64_t u = 0; u < units_; ++u) {
        double acc = 0;
        for (std::int64_t r = 0; r < n; ++r) acc += dz[r * units_ + u];
        bias_.grad[u] = static_cast<float>(acc);
      }
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t i = 0; i < in_; ++i) {
        double acc = 0;
        for (std::int64_t u = 0; u < units_; ++u) acc += double(dz[r * units_ + u]) * kernel_.value[i * units_ + u];
        dx_[r * in_ + i] = static_cast<float>(acc);
      }
    return dx_;
  }

  std::int64_t units_;
  std::string activation_;
  bool use_bias_;
  std::int64_t in_ = 0;
  Parameter kernel_{"kernel", {}, {}, true};
  Parameter bias_{"bias", {}, {}, true};
  Tensor x_, z_, y_, dz_, dx_;
};

// Keras-convention BatchNormalization over (N, C): momentum 0.99, epsilon 1e-3, the biased
// batch variance for both normalization and the moving variance.
class TestBatchNorm : public Layer {
public:
  std::string type_name() const override { return "BatchNormalization"; }
  Shape build(const Shape& input_shape, Rng&) override {
    c_ = input_shape.at(0);
    gamma_.value = Tensor::full({c_}, 1.0f);
    gamma_.grad = Tensor({c_});
    beta_.value = Tensor({c_});
    beta_.grad = Tensor({c_});
    moving_mean_.value = Tensor({c_});
    moving_variance_.value = Tensor::full({c_}, 1.0f);
    mean_ = Tensor({c_});
    inv_std_ = Tensor({c_});
    input_shape_ = output_shape_ = input_shape;
    built_ = true;
    return output_shape_;
  }
  const Tensor& forward(const Tensor& x, bool training) override {
    const std::int64_t n = x.dim(0);
    x_ = x;
    ensure_like(y_, x);
    for (std::int64_t c = 0; c < c_; ++c) {
      double mean = moving_mean_.value[c], var = moving_variance_.value[c];
      if (training) {
        double s = 0, ss = 0;
        for (std::int64_t r = 0; r < n; ++r) s += x[r * c_ + c];
        mean = s / n;
        for (std::int64_t r = 0; r < n; ++r) ss += (x[r * c_ + c] - mean) * (x[r * c_ + c] - mean);
        var = ss / n;
        moving_mean_.value[c] = float(moving_mean_.value[c] * 0.99 + mean * 0.01);
        moving_variance_.value[c] = float(moving_variance_.value[c] * 0.99 + var * 0.01);
      }
      mean_[c] = float(mean);
      inv_std_[c] = float(1.0 / std::sqrt(var + 1e-3));
      for (std::int64_t r = 0; r < n; ++r)
        y_[r * c_ + c] = float(gamma_.value[c] * (x[r * c_ + c] - mean) * inv_std_[c] + beta_.value[c]);
    }
    return y_;
  }
  const Tensor& backward(const Tensor& dy) override {
    const std::int64_t n = dy.dim(0);
    ensure_like(dx_, dy);
    for (std::int64_t c = 0; c < c_; ++c) {
      double dbeta = 0, dgamma = 0;
      for (std::int64_t r = 0; r < n; ++r) {
        const double xhat = (x_[r * c_ + c] - mean_[c]) * double(inv_std_[c]);
        dbeta += dy[r * c_ + c];
        dgamma += dy[r * c_ + c] * xhat;
      }
      gamma_.grad[c] = float(dgamma);
      beta_.grad[c] = float(dbeta);
      for (std::int64_t r = 0; r < n; ++r) {
        const double xhat = (x_[r * c_ + c] - mean_[c]) * double(inv_std_[c]);
        dx_[r * c_ + c] =
            float(gamma_.value[c] * inv_std_[c] / n * (n * double(dy[r * c_ + c]) - dbeta - xhat * dgamma));
      }
    }
    return dx_;
  }
  std::vector<Parameter*> parameters() override { return {&gamma_, &beta_, &moving_mean_, &moving_variance_}; }
  LayerConfig config() const override { return {}; }

private:
  std::int64_t c_ = 0;
  Parameter gamma_{"gamma", {}, {}, true};
  Parameter beta_{"beta", {}, {}, true};
  Parameter moving_mean_{"moving_mean", {}, {}, false};
  Parameter moving_variance_{"moving_variance", {}, {}, false};
  Tensor x_, y_, dx_, mean_, inv_std_;
};

// A parameterless elementwise layer standing in for LeakyReLU (alpha 0.3) / Activation.
class TestLeakyReLU : public Layer {
public:
  explicit TestLeakyReLU(std::string type = "LeakyReLU") : type_(std::move(type)) {}
  std::string type_name() const override { return type_; }
  Shape build(const Shape& input_shape, Rng&) override {
    input_shape_ = output_shape_ = input_shape;
    built_ = true;
    return output_shape_;
  }
  const Tensor& forward(const Tensor& x, bool) override {
    x_ = x;
    ensure_like(y_, x);
    for (std::int64_t i = 0; i < x.size(); ++i) y_[i] = x[i] > 0 ? x[i] : 0.3f * x[i];
    return y_;
  }
  const Tensor& backward(const Tensor& dy) override {
    ensure_like(dx_, dy);
    for (std::int64_t i = 0; i < dy.size(); ++i) dx_[i] = x_[i] > 0 ? dy[i] : 0.3f * dy[i];
    return dx_;
  }
  LayerConfig config() const override { return {{"type", type_}}; }

private:
  std::string type_;
  Tensor x_, y_, dx_;
};

inline std::unique_ptr<Layer> make_test_layer(const std::string& type, const LayerConfig& config) {
  if (type == "Flatten") return std::make_unique<TestFlatten>();
  if (type == "BatchNormalization") return std::make_unique<TestBatchNorm>();
  if (type == "Dense")
    return std::make_unique<TestDense>(std::stoll(config.at("units")), config.at("activation"),
                                       config.at("use_bias") == "true");
  if (config.count("type")) return std::make_unique<TestLeakyReLU>(config.at("type"));
  return nullptr;
}

}  // namespace bnlab::testing
