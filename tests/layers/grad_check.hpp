#pragma once
// Central-difference gradient checks for layers. The loss is L = sum(y * r) for a fixed random
// r, accumulated in double, so dL/dy = r and a layer's backward(r) must match the numerical
// derivative of L with respect to each input and each trainable parameter.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bnlab/layers/layer.hpp"
#include "bnlab/tensor.hpp"

namespace bnlab::testing {

inline Tensor random_tensor(const std::vector<std::int64_t>& shape, Layout layout, std::uint64_t seed, float low = -1.0f,
                            float high = 1.0f) {
  Tensor t(shape, layout);
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(low, high);
  for (std::int64_t i = 0; i < t.size(); ++i) t[i] = dist(gen);
  return t;
}

inline double weighted_sum(const Tensor& y, const Tensor& r) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < y.size(); ++i) sum += static_cast<double>(y[i]) * static_cast<double>(r[i]);
  return sum;
}

struct GradCheckOptions {
  bool training = true;
  double step = 1e-3;
  double absolute_tolerance = 2e-3;
  double relative_tolerance = 1e-2;
  std::int64_t max_entries = 48;  // entries checked per tensor, spread evenly across it
};

// Indices spread evenly over [0, size): every region of a tensor (first and last rows,
// borders of an image) gets checked without checking every element.
inline std::vector<std::int64_t> sample_indices(std::int64_t size, std::int64_t max_entries) {
  std::vector<std::int64_t> indices;
  if (size <= max_entries) {
    for (std::int64_t i = 0; i < size; ++i) indices.push_back(i);
  } else {
    for (std::int64_t k = 0; k < max_entries; ++k) indices.push_back(k * (size - 1) / (max_entries - 1));
  }
  return indices;
}

// Checks backward's dx and every trainable parameter grad against central differences.
// Returns the number of entries compared (so a test can assert it checked something).
inline std::int64_t check_layer_gradients(Layer& layer, Tensor x, std::uint64_t seed,
                                          const GradCheckOptions& options = {}) {
  const Tensor y0 = layer.forward(x, options.training).clone();
  const Tensor r = random_tensor(y0.shape(), y0.layout(), seed ^ 0x5eedULL);
  const Tensor dx = layer.backward(r).clone();
  EXPECT_EQ(dx.shape(), x.shape()) << layer.type_name() << ": dx shape";
  std::vector<Tensor> grads;
  std::vector<Parameter*> trainable;
  for (Parameter* p : layer.parameters()) {
    if (!p->trainable) continue;
    trainable.push_back(p);
    grads.push_back(p->grad.clone());
  }
  auto loss = [&]() { return weighted_sum(layer.forward(x, options.training), r); };
  std::int64_t compared = 0;
  auto check_tensor = [&](Tensor& values, const Tensor& analytic, const std::string& what) {
    for (std::int64_t i : sample_indices(values.size(), options.max_entries)) {
      const float saved = values[i];
      values[i] = saved + static_cast<float>(options.step);
      const double plus = loss();
      values[i] = saved - static_cast<float>(options.step);
      const double minus = loss();
      values[i] = saved;
      // The step actually taken in float, not the one asked for.
      const double taken = static_cast<double>(saved + static_cast<float>(options.step)) -
                           static_cast<double>(saved - static_cast<float>(options.step));
      const double numeric = (plus - minus) / taken;
      const double tolerance = options.absolute_tolerance + options.relative_tolerance * std::abs(numeric);
      EXPECT_NEAR(analytic[i], numeric, tolerance) << layer.type_name() << " d" << what << "[" << i << "]";
      ++compared;
    }
  };
  check_tensor(x, dx, "x");
  for (std::size_t k = 0; k < trainable.size(); ++k) check_tensor(trainable[k]->value, grads[k], trainable[k]->name);
  return compared;
}

// Expects `statement` to throw std::invalid_argument whose message contains every fragment.
#define BNLAB_EXPECT_INVALID(statement, ...)                                                \
  do {                                                                                      \
    try {                                                                                   \
      statement;                                                                            \
      ADD_FAILURE() << "expected std::invalid_argument from " #statement;                   \
    } catch (const std::invalid_argument& e) {                                              \
      const std::string message = e.what();                                                 \
      for (const char* fragment : {__VA_ARGS__})                                            \
        EXPECT_NE(message.find(fragment), std::string::npos)                                \
            << "message \"" << message << "\" lacks \"" << fragment << "\"";                \
    }                                                                                       \
  } while (0)

}  // namespace bnlab::testing
