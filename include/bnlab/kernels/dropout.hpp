#pragma once
// Inverted dropout: in training each element is kept with probability 1 - rate and scaled by
// 1 / (1 - rate), so the expected output equals the input and inference is the identity.
//   mask, x, y, dy, dx: count floats, any layout; each mask value is 0 or 1 / (1 - rate).
// The mask is a pure function of (seed, stream, index): a counter-based generator (SplitMix64
// finalizer), so it is the same for every thread count and needs no generator state. The
// caller advances `stream` (e.g. once per training step) to draw a fresh mask.

#include <cstdint>

namespace bnlab::kernels {

// rate in [0, 1); throws std::invalid_argument naming the rate otherwise.
void dropout_mask(std::int64_t count, float rate, std::uint64_t seed, std::uint64_t stream, float* mask);
// y = x * mask (y may alias x).
void dropout_forward(std::int64_t count, const float* x, const float* mask, float* y);
// dx = dy * mask (dx may alias dy).
void dropout_backward(std::int64_t count, const float* dy, const float* mask, float* dx);

}  // namespace bnlab::kernels
