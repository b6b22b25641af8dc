#include "bnlab/kernels/affine_input.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "kernels/parallel.hpp"
#include "kernels/vector_ops.hpp"

namespace bnlab::kernels {
namespace {

using vec::f32x16;
using vec::i32x16;

// Below this many kernel entries one thread does the pass (a parallel region costs more).
constexpr std::int64_t parallel_threshold = 1 << 15;

// The 16 lanes added as a fixed tree (halves, then quarters, ...): the same bits at every
// vector width.
BNLAB_INLINE float sum_lanes(f32x16 v) {
  const auto h8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                  __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const auto h4 = __builtin_shufflevector(h8, h8, 0, 1, 2, 3) + __builtin_shufflevector(h8, h8, 4, 5, 6, 7);
  const auto h2 = __builtin_shufflevector(h4, h4, 0, 1) + __builtin_shufflevector(h4, h4, 2, 3);
  return h2[0] + h2[1];
}

// Lanes [16 - fresh, 16) set: the new lanes of a row's last vector when it overlaps the one
// before it.
BNLAB_INLINE i32x16 last_lanes(std::int64_t fresh) {
  const i32x16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return lane >= static_cast<int>(simd::lanes - fresh);
}

// One row's step over 16 units at k: the two dot products gain w * p and w * s, and the row's P
// becomes gamma * P + beta * s. Overlap: only the lanes in `fresh` (the others were done by the
// step before and are stored back as read).
template <bool Shift, bool Overlap>
BNLAB_INLINE void step(const float* w, const float* s, float* g, std::int64_t k, i32x16 fresh, f32x16 scale,
                       f32x16 shift, f32x16& w_dot_p, f32x16& w_dot_s) {
  const f32x16 wk = vec::load(w + k), pk = vec::load(g + k), sk = vec::load(s + k);
  const f32x16 grad = Shift ? scale * pk + shift * sk : scale * pk;
  if (Overlap) {
    w_dot_p += vec::keep_where(fresh, wk * pk);
    w_dot_s += vec::keep_where(fresh, wk * sk);
    vec::store(g + k, vec::select(fresh, grad, pk));
  } else {
    w_dot_p += wk * pk;
    w_dot_s += wk * sk;
    vec::store(g + k, grad);
  }
}

template <bool Shift>
BNLAB_INLINE void rows_of(std::int64_t units, std::int64_t j0, std::int64_t j1, const float* kernel, const float* gamma,
                          const float* beta, const float* s, float* kernel_grad, float* dgamma, float* dbeta) {
  // A row whose length is not a multiple of 16 ends with one vector that overlaps the one
  // before it (units >= 16): its new lanes are the last units % 16.
  const std::int64_t whole = units / simd::lanes * simd::lanes, rest = units - whole;
  const i32x16 fresh = last_lanes(rest), unused{};
  for (std::int64_t j = j0; j < j1; ++j) {
    const float* w = kernel + j * units;
    float* g = kernel_grad + j * units;
    const f32x16 scale = vec::splat(gamma ? gamma[j] : 1.0f), shift = vec::splat(Shift ? beta[j] : 0.0f);
    f32x16 w_dot_p{}, w_dot_s{};
    for (std::int64_t k = 0; k < whole; k += simd::lanes)
      step<Shift, false>(w, s, g, k, unused, scale, shift, w_dot_p, w_dot_s);
    if (rest) step<Shift, true>(w, s, g, units - simd::lanes, fresh, scale, shift, w_dot_p, w_dot_s);
    if (dgamma) dgamma[j] = sum_lanes(w_dot_p);
    if (dbeta) dbeta[j] = sum_lanes(w_dot_s);
  }
}

BNLAB_MULTIVERSION void affine_input_rows(std::int64_t units, std::int64_t j0, std::int64_t j1, const float* kernel,
                                          const float* gamma, const float* beta, const float* s, float* kernel_grad,
                                          float* dgamma, float* dbeta) {
  if (beta)
    rows_of<true>(units, j0, j1, kernel, gamma, beta, s, kernel_grad, dgamma, dbeta);
  else
    rows_of<false>(units, j0, j1, kernel, gamma, beta, s, kernel_grad, dgamma, dbeta);
}

// Rows shorter than one vector: the same sums one unit at a time.
void affine_input_rows_scalar(std::int64_t units, std::int64_t j0, std::int64_t j1, const float* kernel,
                              const float* gamma, const float* beta, const float* s, float* kernel_grad, float* dgamma,
                              float* dbeta) {
  for (std::int64_t j = j0; j < j1; ++j) {
    const float scale = gamma ? gamma[j] : 1.0f;
    float w_dot_p = 0.0f, w_dot_s = 0.0f;
    for (std::int64_t k = 0; k < units; ++k) {
      const float w = kernel[j * units + k], p = kernel_grad[j * units + k];
      w_dot_p += w * p;
      w_dot_s += w * s[k];
      kernel_grad[j * units + k] = beta ? scale * p + beta[j] * s[k] : scale * p;
    }
    if (dgamma) dgamma[j] = w_dot_p;
    if (dbeta) dbeta[j] = w_dot_s;
  }
}

}  // namespace

void affine_input_gradients(std::int64_t features, std::int64_t units, const float* kernel, const float* gamma,
                            const float* beta, const float* column_sums, float* kernel_grad, float* dgamma,
                            float* dbeta) {
  if (features < 0 || units < 0)
    throw std::invalid_argument(
        fmt::format("affine_input_gradients: negative shape (features={}, units={})", features, units));
  if (features * units > 0 && (!kernel || !column_sums || !kernel_grad))
    throw std::invalid_argument("affine_input_gradients: kernel, column_sums and kernel_grad must not be null");
  // Rows are split over the threads; a row's sums never are.
  detail::for_ranges(
      features, detail::worth_threads(features * units, parallel_threshold), 1, [&](std::int64_t j0, std::int64_t j1) {
        if (units < simd::lanes)
          affine_input_rows_scalar(units, j0, j1, kernel, gamma, beta, column_sums, kernel_grad, dgamma, dbeta);
        else
          affine_input_rows(units, j0, j1, kernel, gamma, beta, column_sums, kernel_grad, dgamma, dbeta);
      });
}

}  // namespace bnlab::kernels
