#include "bnlab/kernels/regularization.hpp"

#include <cmath>

namespace bnlab::kernels {

double regularization_penalty(std::int64_t n, const float* w, double l1, double l2) {
  double absolute = 0.0, squares = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    absolute += std::fabs(static_cast<double>(w[i]));
    squares += static_cast<double>(w[i]) * w[i];
  }
  return l1 * absolute + l2 * squares;
}

void add_regularization_gradient(std::int64_t n, const float* w, double l1, double l2, float* grad) {
  const float a = static_cast<float>(l1), b = static_cast<float>(2.0 * l2);
  for (std::int64_t i = 0; i < n; ++i) {
    const float sign = w[i] > 0.0f ? 1.0f : w[i] < 0.0f ? -1.0f : 0.0f;
    grad[i] += a * sign + b * w[i];
  }
}

}  // namespace bnlab::kernels
