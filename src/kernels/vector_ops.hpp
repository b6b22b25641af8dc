#pragma once
// Private to src: the elementwise helpers of the small kernels (activations, bias, optimizers),
// on simd.hpp's 16-lane float vector. A function that uses them is marked BNLAB_MULTIVERSION,
// so the same source runs 4, 2 or 1 registers wide; with -ffp-contract=off every width rounds
// every lane exactly as the scalar expression would.
//
// The tail of a loop (fewer than 16 elements) goes through the same vector code on a padded
// copy instead of a scalar loop, so the tail cannot drift from the body in its NaN or signed
// zero handling.

#include <cstdint>
#include <cstring>

#include "kernels/simd.hpp"

namespace bnlab::kernels::vec {

using simd::f32x16;
using simd::i32x16;
using simd::keep_where;

// value in every lane, bit for bit (simd::broadcast adds it to +0, which turns -0 into +0).
BNLAB_INLINE f32x16 splat(float value) {
  f32x16 v;
  for (int i = 0; i < simd::lanes; ++i) v[i] = value;
  return v;
}

BNLAB_INLINE f32x16 load(const float* p) { return simd::load(p); }
BNLAB_INLINE void store(float* p, f32x16 v) { std::memcpy(p, &v, sizeof v); }

BNLAB_INLINE f32x16 load_part(const float* p, std::int64_t n) {
  f32x16 v{};
  std::memcpy(&v, p, static_cast<std::size_t>(n) * sizeof(float));
  return v;
}
BNLAB_INLINE void store_part(float* p, f32x16 v, std::int64_t n) {
  std::memcpy(p, &v, static_cast<std::size_t>(n) * sizeof(float));
}

// a where mask is set, b elsewhere.
BNLAB_INLINE f32x16 select(i32x16 mask, f32x16 a, f32x16 b) {
  return (f32x16)((mask & (i32x16)a) | (~mask & (i32x16)b));
}

// out[i] = op(a[i]) for i < n; out may be a.
template <class Op>
BNLAB_INLINE void map(std::int64_t n, const float* a, float* out, Op op) {
  std::int64_t i = 0;
  for (; i + simd::lanes <= n; i += simd::lanes) store(out + i, op(load(a + i)));
  if (i < n) store_part(out + i, op(load_part(a + i, n - i)), n - i);
}

// out[i] = op(a[i], b[i]) for i < n; out may be a or b.
template <class Op>
BNLAB_INLINE void map(std::int64_t n, const float* a, const float* b, float* out, Op op) {
  std::int64_t i = 0;
  for (; i + simd::lanes <= n; i += simd::lanes) store(out + i, op(load(a + i), load(b + i)));
  if (i < n) store_part(out + i, op(load_part(a + i, n - i), load_part(b + i, n - i)), n - i);
}

}  // namespace bnlab::kernels::vec
