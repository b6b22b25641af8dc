#include "bnlab/kernels/activations.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "bnlab/kernels/gemm.hpp"
#include "kernels/parallel.hpp"
#include "kernels/softmax_row.hpp"
#include "kernels/vector_ops.hpp"

namespace bnlab::kernels {

namespace {

using vec::f32x16;

// Below this many elements, waking the threads costs more than the loop: a vectorized pass
// over 64 K floats takes a few microseconds, about what a fork and join does.
constexpr std::int64_t parallel_threshold = 1 << 16;
// Softmax rows and the exp-based kinds do more per element: threads pay off earlier.
constexpr std::int64_t transcendental_threshold = 1 << 14;

// The loops, one clone per vector width. A block covers [0, n) of pointers already offset
// by the caller's range. The comparisons are the scalar ones of the header's comments, so NaN
// inputs give the same results as those expressions. ReLU treats NaN and -0 as torch.relu
// does: only a value known to be negative becomes 0 (NaN and -0 pass unchanged), and its
// backward zeroes the gradient only where x <= 0 (where x is NaN the gradient passes).
BNLAB_INLINE f32x16 relu_value(f32x16 v) { return vec::select(v < 0.0f, f32x16{}, v); }
BNLAB_INLINE f32x16 relu_gradient(f32x16 x, f32x16 g) { return vec::select(x <= 0.0f, f32x16{}, g); }

BNLAB_MULTIVERSION void relu_forward_block(std::int64_t n, const float* x, float* y) {
  vec::map(n, x, y, [](f32x16 v) BNLAB_LAMBDA_INLINE { return relu_value(v); });
}

BNLAB_MULTIVERSION void relu_backward_block(std::int64_t n, const float* x, const float* dy, float* dx) {
  vec::map(n, x, dy, dx, [](f32x16 v, f32x16 g) BNLAB_LAMBDA_INLINE { return relu_gradient(v, g); });
}

BNLAB_MULTIVERSION void leaky_relu_forward_block(std::int64_t n, float alpha, const float* x, float* y) {
  const f32x16 a = vec::splat(alpha);
  vec::map(n, x, y, [a](f32x16 v) BNLAB_LAMBDA_INLINE { return vec::select(v > 0.0f, v, a * v); });
}

BNLAB_MULTIVERSION void leaky_relu_backward_block(std::int64_t n, float alpha, const float* x, const float* dy,
                                                  float* dx) {
  const f32x16 a = vec::splat(alpha);
  vec::map(n, x, dy, dx, [a](f32x16 v, f32x16 g) BNLAB_LAMBDA_INLINE { return vec::select(v > 0.0f, g, a * g); });
}

// (dy * y) * (1 - y), the scalar expression's order.
BNLAB_MULTIVERSION void sigmoid_backward_block(std::int64_t n, const float* y, const float* dy, float* dx) {
  vec::map(n, y, dy, dx, [](f32x16 v, f32x16 g) BNLAB_LAMBDA_INLINE { return g * v * (1.0f - v); });
}

BNLAB_MULTIVERSION void tanh_backward_block(std::int64_t n, const float* y, const float* dy, float* dx) {
  vec::map(n, y, dy, dx, [](f32x16 v, f32x16 g) BNLAB_LAMBDA_INLINE { return g * (1.0f - v * v); });
}

void softmax_rows(std::int64_t cols, const float* x, float* y, std::int64_t r0, std::int64_t r1) {
  for (std::int64_t r = r0; r < r1; ++r) softmax_row(cols, x + r * cols, y + r * cols);
}

// The kinds the fused Dense passes handle in one sweep; the others (exp-based, softmax's row
// sums) take the two-pass route.
bool fusable(ActivationKind kind) {
  return kind == ActivationKind::linear || kind == ActivationKind::relu || kind == ActivationKind::leaky_relu;
}

template <class Act>
BNLAB_INLINE void bias_act_rows(std::int64_t cols, std::int64_t r0, std::int64_t r1, const float* bias, float* z,
                                float* y, Act act) {
  for (std::int64_t r = r0; r < r1; ++r) {
    float* zr = z + r * cols;
    float* yr = y + r * cols;
    vec::for_vectors(0, cols, [&](std::int64_t c, auto lanes) BNLAB_LAMBDA_INLINE {
      const f32x16 v = lanes.load(zr + c) + lanes.load(bias + c);
      lanes.store(zr + c, v);
      lanes.store(yr + c, act(v));
    });
  }
}

BNLAB_MULTIVERSION void bias_activation_rows(ActivationKind kind, float alpha, std::int64_t cols, std::int64_t r0,
                                             std::int64_t r1, const float* bias, float* z, float* y) {
  const f32x16 a = vec::splat(alpha);
  switch (kind) {
    case ActivationKind::relu:
      return bias_act_rows(cols, r0, r1, bias, z, y, [](f32x16 v) BNLAB_LAMBDA_INLINE { return relu_value(v); });
    case ActivationKind::leaky_relu:
      return bias_act_rows(cols, r0, r1, bias, z, y,
                           [a](f32x16 v) BNLAB_LAMBDA_INLINE { return vec::select(v > 0.0f, v, a * v); });
    default:  // linear
      return bias_act_rows(cols, r0, r1, bias, z, y, [](f32x16 v) BNLAB_LAMBDA_INLINE { return v; });
  }
}

// Columns [c0, c1): dz = grad(z, dy) and sums = column sums of dz, each column's rows added in
// index order starting from +0 (sum_rows's order).
template <class Grad>
BNLAB_INLINE void grad_sum_columns(std::int64_t rows, std::int64_t cols, std::int64_t c0, std::int64_t c1,
                                   const float* z, const float* dy, float* dz, float* sums, Grad grad) {
  vec::for_vectors(c0, c1, [&](std::int64_t c, auto lanes) BNLAB_LAMBDA_INLINE {
    f32x16 acc{};
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t at = r * cols + c;
      const f32x16 d = grad(lanes.load(z + at), lanes.load(dy + at));
      lanes.store(dz + at, d);
      acc += d;
    }
    lanes.store(sums + c, acc);
  });
}

BNLAB_MULTIVERSION void activation_grad_sum_columns(ActivationKind kind, float alpha, std::int64_t rows,
                                                    std::int64_t cols, std::int64_t c0, std::int64_t c1, const float* z,
                                                    const float* dy, float* dz, float* sums) {
  const f32x16 a = vec::splat(alpha);
  switch (kind) {
    case ActivationKind::relu:
      return grad_sum_columns(rows, cols, c0, c1, z, dy, dz, sums,
                              [](f32x16 v, f32x16 g) BNLAB_LAMBDA_INLINE { return relu_gradient(v, g); });
    case ActivationKind::leaky_relu:
      return grad_sum_columns(rows, cols, c0, c1, z, dy, dz, sums,
                              [a](f32x16 v, f32x16 g) BNLAB_LAMBDA_INLINE { return vec::select(v > 0.0f, g, a * g); });
    default:  // linear: z is not read
      return grad_sum_columns(rows, cols, c0, c1, dy, dy, dz, sums,
                              [](f32x16, f32x16 g) BNLAB_LAMBDA_INLINE { return g; });
  }
}

}  // namespace

void relu_forward(std::int64_t count, const float* x, float* y) {
  detail::for_elements(count, parallel_threshold,
                       [&](std::int64_t b, std::int64_t e) { relu_forward_block(e - b, x + b, y + b); });
}

void relu_backward(std::int64_t count, const float* x, const float* dy, float* dx) {
  detail::for_elements(count, parallel_threshold,
                       [&](std::int64_t b, std::int64_t e) { relu_backward_block(e - b, x + b, dy + b, dx + b); });
}

void leaky_relu_forward(std::int64_t count, float alpha, const float* x, float* y) {
  detail::for_elements(count, parallel_threshold,
                       [&](std::int64_t b, std::int64_t e) { leaky_relu_forward_block(e - b, alpha, x + b, y + b); });
}

void leaky_relu_backward(std::int64_t count, float alpha, const float* x, const float* dy, float* dx) {
  detail::for_elements(count, parallel_threshold, [&](std::int64_t b, std::int64_t e) {
    leaky_relu_backward_block(e - b, alpha, x + b, dy + b, dx + b);
  });
}

void sigmoid_forward(std::int64_t count, const float* x, float* y) {
  detail::for_elements(count, transcendental_threshold, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      // exp of a non-positive argument only: no overflow on either tail.
      const float v = x[i];
      if (v >= 0.0f) {
        y[i] = 1.0f / (1.0f + std::exp(-v));
      } else {
        const float ev = std::exp(v);
        y[i] = ev / (1.0f + ev);
      }
    }
  });
}

void sigmoid_backward(std::int64_t count, const float* y, const float* dy, float* dx) {
  detail::for_elements(count, parallel_threshold,
                       [&](std::int64_t b, std::int64_t e) { sigmoid_backward_block(e - b, y + b, dy + b, dx + b); });
}

void tanh_forward(std::int64_t count, const float* x, float* y) {
  detail::for_elements(count, transcendental_threshold, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) y[i] = std::tanh(x[i]);
  });
}

void tanh_backward(std::int64_t count, const float* y, const float* dy, float* dx) {
  detail::for_elements(count, parallel_threshold,
                       [&](std::int64_t b, std::int64_t e) { tanh_backward_block(e - b, y + b, dy + b, dx + b); });
}

void softmax_forward(std::int64_t rows, std::int64_t cols, const float* x, float* y) {
  detail::for_ranges(rows, detail::worth_threads(rows * cols, transcendental_threshold), 1,
                     [&](std::int64_t r0, std::int64_t r1) { softmax_rows(cols, x, y, r0, r1); });
}

void softmax_backward(std::int64_t rows, std::int64_t cols, const float* y, const float* dy, float* dx) {
  detail::for_ranges(rows, detail::worth_threads(rows * cols, parallel_threshold), 1,
                     [&](std::int64_t r0, std::int64_t r1) {
                       for (std::int64_t r = r0; r < r1; ++r) {
                         const float* p = y + r * cols;
                         const float* g = dy + r * cols;
                         float* out = dx + r * cols;
                         float dot = 0.0f;
                         for (std::int64_t c = 0; c < cols; ++c) dot += g[c] * p[c];
                         for (std::int64_t c = 0; c < cols; ++c) out[c] = p[c] * (g[c] - dot);
                       }
                     });
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

void bias_activation_forward(ActivationKind kind, std::int64_t rows, std::int64_t cols, float alpha, const float* bias,
                             float* z, float* y) {
  if (!bias) return activation_forward(kind, rows, cols, alpha, z, y);
  if (!fusable(kind)) {
    add_row_vector(rows, cols, bias, z);
    return activation_forward(kind, rows, cols, alpha, z, y);
  }
  detail::for_ranges(
      rows, detail::worth_threads(rows * cols, parallel_threshold), 1,
      [&](std::int64_t r0, std::int64_t r1) { bias_activation_rows(kind, alpha, cols, r0, r1, bias, z, y); });
}

void activation_backward_bias_grad(ActivationKind kind, std::int64_t rows, std::int64_t cols, float alpha,
                                   const float* z, const float* y, const float* dy, float* dz, float* bias_grad) {
  if (!bias_grad) return activation_backward(kind, rows, cols, alpha, z, y, dy, dz);
  if (!fusable(kind)) {
    activation_backward(kind, rows, cols, alpha, z, y, dy, dz);
    return sum_rows(rows, cols, dz, bias_grad);
  }
  // Threads take disjoint column ranges (whole vectors), each walking every row.
  detail::for_ranges(cols, detail::worth_threads(rows * cols, parallel_threshold), simd::lanes,
                     [&](std::int64_t c0, std::int64_t c1) {
                       activation_grad_sum_columns(kind, alpha, rows, cols, c0, c1, z, dy, dz, bias_grad);
                     });
}

}  // namespace bnlab::kernels
