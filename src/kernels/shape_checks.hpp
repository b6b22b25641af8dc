#pragma once
// Private to src: the argument checks the normalization kernels share, so that BatchNorm and
// group normalization refuse a bad shape, epsilon or buffer with the same words.

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "bnlab/kernels/batchnorm.hpp"

namespace bnlab::kernels::detail {

inline void check_shape(const BatchNormShape& shape, const char* who) {
  if (shape.layout != Layout::NC && shape.layout != Layout::NCHW && shape.layout != Layout::NHWC)
    throw std::invalid_argument(
        fmt::format("{}: layout {} is not one of NC, NCHW, NHWC", who, to_string(shape.layout)));
  if (shape.batch < 0 || shape.channels < 0 || shape.spatial < 0)
    throw std::invalid_argument(
        fmt::format("{}: negative dimension (N={}, C={}, H*W={})", who, shape.batch, shape.channels, shape.spatial));
  if (shape.batch == 0 || shape.channels == 0 || shape.spatial == 0)
    throw std::invalid_argument(
        fmt::format("{}: input is empty (N={}, C={}, H*W={})", who, shape.batch, shape.channels, shape.spatial));
  if (shape.layout == Layout::NC && shape.spatial != 1)
    throw std::invalid_argument(fmt::format("{}: layout NC has no spatial extent, got H*W={}", who, shape.spatial));
  // Every index and byte count below is N*C*S or less, in bytes: it must fit an int64.
  std::int64_t count = 0, bytes = 0;
  if (__builtin_mul_overflow(shape.batch, shape.channels, &count) ||
      __builtin_mul_overflow(count, shape.spatial, &count) ||
      __builtin_mul_overflow(count, static_cast<std::int64_t>(sizeof(float)), &bytes))
    throw std::invalid_argument(fmt::format("{}: N*C*H*W overflows a 64-bit byte count (N={}, C={}, H*W={})", who,
                                            shape.batch, shape.channels, shape.spatial));
}

inline void check_epsilon(float epsilon, const char* who) {
  if (!(epsilon > 0.0f) || !std::isfinite(epsilon))
    throw std::invalid_argument(fmt::format("{}: epsilon must be a finite value > 0, got {}", who, epsilon));
}

inline void check_pointer(const void* p, const char* name, const char* who) {
  if (!p) throw std::invalid_argument(fmt::format("{}: {} is null", who, name));
}

}  // namespace bnlab::kernels::detail
