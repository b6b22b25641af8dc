#include "bnlab/kernels/activations.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace bnlab::kernels {

namespace {
// Below this many elements, waking threads costs more than the loop.
constexpr std::int64_t parallel_threshold = 1 << 15;
}  // namespace

void relu_forward(std::int64_t count, const float* x, float* y) {
#pragma omp parallel for simd schedule(static) if (count > parallel_threshold)
  for (std::int64_t i = 0; i < count; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(std::int64_t count, const float* x, const float* dy, float* dx) {
#pragma omp parallel for simd schedule(static) if (count > parallel_threshold)
  for (std::int64_t i = 0; i < count; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

void leaky_relu_forward(std::int64_t count, float alpha, const float* x, float* y) {
#pragma omp parallel for simd schedule(static) if (count > parallel_threshold)
  for (std::int64_t i = 0; i < count; ++i) y[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
}

void leaky_relu_backward(std::int64_t count, float alpha, const float* x, const float* dy, float* dx) {
#pragma omp parallel for simd schedule(static) if (count > parallel_threshold)
  for (std::int64_t i = 0; i < count; ++i) dx[i] = x[i] > 0.0f ? dy[i] : alpha * dy[i];
}

void sigmoid_forward(std::int64_t count, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (count > parallel_threshold)
  for (std::int64_t i = 0; i < count; ++i) {
    // exp of a non-positive argument only: no overflow on either tail.
    const float v = x[i];
    if (v >= 0.0f) {
      y[i] = 1.0f / (1.0f + std::exp(-v));
    } else {
      const float e = std::exp(v);
      y[i] = e / (1.0f + e);
    }
  }
}

void sigmoid_backward(std::int64_t count, const float* y, const float* dy, float* dx) {
#pragma omp parallel for simd schedule(static) if (count > parallel_threshold)
  for (std::int64_t i = 0; i < count; ++i) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

void tanh_forward(std::int64_t count, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (count > parallel_threshold)
  for (std::int64_t i = 0; i < count; ++i) y[i] = std::tanh(x[i]);
}

void tanh_backward(std::int64_t count, const float* y, const float* dy, float* dx) {
#pragma omp parallel for simd schedule(static) if (count > parallel_threshold)
  for (std::int64_t i = 0; i < count; ++i) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

void softmax_forward(std::int64_t rows, std::int64_t cols, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (rows * cols > parallel_threshold)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * cols;
    float* out = y + r * cols;
    float max = in[0];
    for (std::int64_t c = 1; c < cols; ++c) max = std::max(max, in[c]);
    float sum = 0.0f;
    for (std::int64_t c = 0; c < cols; ++c) {
      out[c] = std::exp(in[c] - max);
      sum += out[c];
    }
    const float inv_sum = 1.0f / sum;
    for (std::int64_t c = 0; c < cols; ++c) out[c] *= inv_sum;
  }
}

void softmax_backward(std::int64_t rows, std::int64_t cols, const float* y, const float* dy, float* dx) {
#pragma omp parallel for schedule(static) if (rows * cols > parallel_threshold)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* p = y + r * cols;
    const float* g = dy + r * cols;
    float* out = dx + r * cols;
    float dot = 0.0f;
    for (std::int64_t c = 0; c < cols; ++c) dot += g[c] * p[c];
    for (std::int64_t c = 0; c < cols; ++c) out[c] = p[c] * (g[c] - dot);
  }
}

void activation_forward(ActivationKind kind, std::int64_t rows, std::int64_t cols, float alpha,
                        const float* x, float* y) {
  const std::int64_t count = rows * cols;
  switch (kind) {
    case ActivationKind::linear:
      if (x != y && count > 0) std::memcpy(y, x, static_cast<std::size_t>(count) * sizeof(float));
      return;
    case ActivationKind::relu: return relu_forward(count, x, y);
    case ActivationKind::leaky_relu: return leaky_relu_forward(count, alpha, x, y);
    case ActivationKind::sigmoid: return sigmoid_forward(count, x, y);
    case ActivationKind::tanh: return tanh_forward(count, x, y);
    case ActivationKind::softmax: return softmax_forward(rows, cols, x, y);
  }
}

void activation_backward(ActivationKind kind, std::int64_t rows, std::int64_t cols, float alpha,
                         const float* x, const float* y, const float* dy, float* dx) {
  const std::int64_t count = rows * cols;
  switch (kind) {
    case ActivationKind::linear:
      if (dy != dx && count > 0) std::memcpy(dx, dy, static_cast<std::size_t>(count) * sizeof(float));
      return;
    case ActivationKind::relu: return relu_backward(count, x, dy, dx);
    case ActivationKind::leaky_relu: return leaky_relu_backward(count, alpha, x, dy, dx);
    case ActivationKind::sigmoid: return sigmoid_backward(count, y, dy, dx);
    case ActivationKind::tanh: return tanh_backward(count, y, dy, dx);
    case ActivationKind::softmax: return softmax_backward(rows, cols, y, dy, dx);
  }
}

}  // namespace bnlab::kernels
