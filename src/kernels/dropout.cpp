#include "bnlab/kernels/dropout.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace bnlab::kernels {

namespace {

constexpr std::uint64_t golden_gamma = 0x9e3779b97f4a7c15ULL;

// SplitMix64's output function: a bijection whose outputs for consecutive inputs pass BigCrush.
std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

void dropout_mask(std::int64_t count, float rate, std::uint64_t seed, std::uint64_t stream, float* mask) {
  if (!(rate >= 0.0f && rate < 1.0f))
    throw std::invalid_argument(fmt::format("dropout: rate is {}, expected in [0, 1)", rate));
  const float scale = 1.0f / (1.0f - rate);
  // Compare 53-bit integers, not floats: drop when u < rate with u uniform on [0, 1) in steps of 2^-53.
  const std::uint64_t threshold = static_cast<std::uint64_t>(std::ldexp(static_cast<double>(rate), 53));
  const std::uint64_t key = mix64(seed + golden_gamma * (mix64(stream) + 1));
#pragma omp parallel for simd schedule(static) if (count > (1 << 15))
  for (std::int64_t i = 0; i < count; ++i) {
    const std::uint64_t u = mix64(key + golden_gamma * static_cast<std::uint64_t>(i)) >> 11;
    mask[i] = u < threshold ? 0.0f : scale;
  }
}

void dropout_forward(std::int64_t count, const float* x, const float* mask, float* y) {
#pragma omp parallel for simd schedule(static) if (count > (1 << 15))
  for (std::int64_t i = 0; i < count; ++i) y[i] = x[i] * mask[i];
}

void dropout_backward(std::int64_t count, const float* dy, const float* mask, float* dx) {
#pragma omp parallel for simd schedule(static) if (count > (1 << 15))
  for (std::int64_t i = 0; i < count; ++i) dx[i] = dy[i] * mask[i];
}

}  // namespace bnlab::kernels
