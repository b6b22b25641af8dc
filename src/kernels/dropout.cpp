#include "bnlab/kernels/dropout.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/parallel.hpp"
#include "kernels/vector_ops.hpp"

namespace bnlab::kernels {

namespace {

constexpr std::uint64_t golden_gamma = 0x9e3779b97f4a7c15ULL;

// SplitMix64's output function: a bijection whose outputs for consecutive inputs pass BigCrush.
std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr std::int64_t parallel_threshold = 1 << 15;

BNLAB_MULTIVERSION void multiply_block(std::int64_t n, const float* a, const float* b, float* out) {
  vec::map(n, a, b, out, [](vec::f32x16 u, vec::f32x16 v) BNLAB_LAMBDA_INLINE { return u * v; });
}

}  // namespace

void dropout_mask(std::int64_t count, float rate, std::uint64_t seed, std::uint64_t stream, float* mask) {
  if (!(rate >= 0.0f && rate < 1.0f))
    throw std::invalid_argument(fmt::format("dropout: rate is {}, expected in [0, 1)", rate));
  const float scale = 1.0f / (1.0f - rate);
  // Compare 53-bit integers, not floats: drop when u < rate with u uniform on [0, 1) in steps of 2^-53.
  const std::uint64_t threshold = static_cast<std::uint64_t>(std::ldexp(static_cast<double>(rate), 53));
  const std::uint64_t key = mix64(seed + golden_gamma * (mix64(stream) + 1));
  detail::for_elements(count, parallel_threshold, [&](std::int64_t begin, std::int64_t end) {
#pragma omp simd
    for (std::int64_t i = begin; i < end; ++i) {
      const std::uint64_t u = mix64(key + golden_gamma * static_cast<std::uint64_t>(i)) >> 11;
      mask[i] = u < threshold ? 0.0f : scale;
    }
  });
}

void dropout_forward(std::int64_t count, const float* x, const float* mask, float* y) {
  detail::for_elements(count, parallel_threshold,
                       [&](std::int64_t b, std::int64_t e) { multiply_block(e - b, x + b, mask + b, y + b); });
}

void dropout_backward(std::int64_t count, const float* dy, const float* mask, float* dx) {
  detail::for_elements(count, parallel_threshold,
                       [&](std::int64_t b, std::int64_t e) { multiply_block(e - b, dy + b, mask + b, dx + b); });
}

}  // namespace bnlab::kernels
