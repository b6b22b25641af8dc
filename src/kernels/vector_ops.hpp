#pragma once
// Private to src: the elementwise helpers of the small kernels (activations, bias, optimizers),
// on simd.hpp's 16-lane float vector. A function that uses them is marked BNLAB_MULTIVERSION,
// so the same source runs 4, 2 or 1 registers wide; with -ffp-contract=off every width rounds
// every lane exactly as the scalar expression would.
//
// The tail of a loop (fewer than 16 elements) goes through the same vector code on a padded
// copy instead of a scalar loop (for_vectors), so the tail cannot drift from the body in its NaN
// or signed zero handling.

#include <cstdint>
#include <cstring>

#include "kernels/simd.hpp"

namespace bnlab::kernels::vec {

using simd::f32x16;
using simd::i32x16;
using simd::keep_where;

// value in every lane, bit for bit (simd::broadcast adds it to +0, which turns -0 into +0).
BNLAB_INLINE f32x16 splat(float value) {
  const f32x16 first{value};  // one broadcast instruction, where a lane loop became sixteen
  return __builtin_shufflevector(first, first, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
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

// The lanes of a loop step: Whole loads and stores 16 floats; Part the first n only (the other
// lanes load as +0 and are not stored). A loop body written once over `lanes.load` and
// `lanes.store` serves both the vectors and the tail.
struct Whole {
  BNLAB_INLINE f32x16 load(const float* p) const { return vec::load(p); }
  BNLAB_INLINE void store(float* p, f32x16 v) const { vec::store(p, v); }
};
struct Part {
  std::int64_t n;
  BNLAB_INLINE f32x16 load(const float* p) const { return load_part(p, n); }
  BNLAB_INLINE void store(float* p, f32x16 v) const { store_part(p, v, n); }
};

// body(i, lanes) for i = begin, begin + 16, ... below end: Whole steps, then one Part for a
// tail of fewer than 16. The body must be BNLAB_LAMBDA_INLINE when the caller is multiversioned.
template <class Body>
BNLAB_INLINE void for_vectors(std::int64_t begin, std::int64_t end, Body body) {
  std::int64_t i = begin;
  for (; i + simd::lanes <= end; i += simd::lanes) body(i, Whole{});
  if (i < end) body(i, Part{end - i});
}

// out[i] = op(a[i]) for i < n; out may be a.
template <class Op>
BNLAB_INLINE void map(std::int64_t n, const float* a, float* out, Op op) {
  for_vectors(0, n, [&](std::int64_t i, auto lanes) BNLAB_LAMBDA_INLINE { lanes.store(out + i, op(lanes.load(a + i))); });
}

// out[i] = op(a[i], b[i]) for i < n; out may be a or b.
template <class Op>
BNLAB_INLINE void map(std::int64_t n, const float* a, const float* b, float* out, Op op) {
  for_vectors(0, n, [&](std::int64_t i, auto lanes) BNLAB_LAMBDA_INLINE {
    lanes.store(out + i, op(lanes.load(a + i), lanes.load(b + i)));
  });
}

}  // namespace bnlab::kernels::vec
