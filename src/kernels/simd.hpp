#pragma once
// Run-time choice of vector width without -march=native: a function marked BNLAB_MULTIVERSION
// is compiled for AVX-512, AVX2 and baseline x86-64, and the dynamic loader binds the widest
// one the CPU supports (GCC's target_clones, resolved through an ifunc once per process).
// The kernels compute the same bits in every version: they use a 16-lane vector type for
// reductions (split by the compiler into however many registers the width has), and
// -ffp-contract=off keeps FMA from changing the rounding in the wider versions only.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(BNLAB_NO_MULTIVERSION)
#define BNLAB_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BNLAB_MULTIVERSION
#endif

#define BNLAB_INLINE inline __attribute__((always_inline))
// For lambdas called from a multiversioned function: a lambda is a function of its own, compiled
// for baseline x86-64; only inlined into the multiversioned caller does it run at its width.
#define BNLAB_LAMBDA_INLINE __attribute__((always_inline))

namespace bnlab::simd {

constexpr int lanes = 16;
using f32x16 = float __attribute__((vector_size(64)));
using f64x8 = double __attribute__((vector_size(64)));
using i32x16 = int __attribute__((vector_size(64)));  // a comparison's lanes: -1 (true) or 0

BNLAB_INLINE f32x16 load(const float* p) {
  f32x16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

BNLAB_INLINE f32x16 broadcast(float value) { return f32x16{} + value; }

// Adds the 16 float lanes into two 8-lane double accumulators (lanes 0-7 and 8-15).
BNLAB_INLINE void widen_add(f32x16 v, f64x8& low, f64x8& high) {
  low += __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), f64x8);
  high += __builtin_convertvector(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), f64x8);
}

// Non-temporal store of 16 floats to a 64-byte aligned address: a whole cache line written
// without reading it first. One 64-byte store where the file is compiled for AVX-512 (the
// per-instruction-set BatchNorm loops), else 32- or 16-byte stores that the CPU's
// write-combining buffer merges into one line (in a target_clones clone only SSE's movntps is
// known to exist: four stores, measured 10% slower on a streamed 16 MiB output).
BNLAB_INLINE void stream(float* p, f32x16 v) {
#if defined(__AVX512F__)
  _mm512_stream_ps(p, (__m512)v);
#elif defined(__AVX__)
  _mm256_stream_ps(p, (__m256)__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7));
  _mm256_stream_ps(p + 8, (__m256)__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
#else
  _mm_stream_ps(p, (__m128)__builtin_shufflevector(v, v, 0, 1, 2, 3));
  _mm_stream_ps(p + 4, (__m128)__builtin_shufflevector(v, v, 4, 5, 6, 7));
  _mm_stream_ps(p + 8, (__m128)__builtin_shufflevector(v, v, 8, 9, 10, 11));
  _mm_stream_ps(p + 12, (__m128)__builtin_shufflevector(v, v, 12, 13, 14, 15));
#endif
}

// v where the mask is set, +0 elsewhere (a NaN in v is dropped where the mask is clear).
BNLAB_INLINE f32x16 keep_where(i32x16 mask, f32x16 v) { return (f32x16)(mask & (i32x16)v); }

// A load issued where it is written. Without the barrier the compiler folds `keep_where(mask,
// load(p))` into a masked load that cannot start before the mask is known: the load of dy
// waited for x to arrive, the two streams' cache misses no longer overlapped, and the fused
// BN+ReLU backward ran 1.5x slower than the plain one.
BNLAB_INLINE f32x16 load_eager(const float* p) {
  const f32x16 v = load(p);
  asm volatile("" ::: "memory");
  return v;
}

BNLAB_INLINE bool line_aligned(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 63) == 0; }

}  // namespace bnlab::simd
