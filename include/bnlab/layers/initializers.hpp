#pragma once
// Weight initializers with Keras's names and formulas, drawing from the layer's Rng.
//   glorot_uniform  U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out))      (Keras default)
//   he_normal       truncated normal, stddev = sqrt(2 / fan_in) / 0.87962566103423978, values
//                   beyond 2 stddev redrawn (the constant restores the variance truncation
//                   removes, so the result has variance 2 / fan_in, as Keras's VarianceScaling)
//   zeros, ones
// fan_in/fan_out as Keras computes them: Dense kernel (in, out) -> in, out; Conv2D kernel
// (KH, KW, Cin, Cout) -> KH*KW*Cin, KH*KW*Cout.
// The uniform and normal draws are written here rather than taken from <random>'s
// distributions, whose algorithms the standard leaves to each library: a seed gives the same
// weights with every standard library.

#include <cstdint>
#include <string>

#include "bnlab/layers/layer.hpp"
#include "bnlab/tensor.hpp"

namespace bnlab::initializers {

// True for "glorot_uniform", "he_normal", "zeros", "ones".
bool is_known(const std::string& name);
// Throws std::invalid_argument "<who>: <argument> is \"<name>\", expected one of ..." unless known.
void check(const std::string& name, const std::string& who, const std::string& argument);

// Fills t. fan_in and fan_out >= 1 for glorot_uniform and he_normal. Throws
// std::invalid_argument naming an unknown initializer or a bad fan.
void initialize(const std::string& name, Tensor& t, std::int64_t fan_in, std::int64_t fan_out, Rng& rng);
// A trainable parameter's value of `shape`, filled as initialize(name, ...) does, and its grad of
// the same shape.
void create_trainable(Parameter& p, const Shape& shape, const std::string& name, std::int64_t fan_in,
                      std::int64_t fan_out, Rng& rng);

void glorot_uniform(Tensor& t, std::int64_t fan_in, std::int64_t fan_out, Rng& rng);
void he_normal(Tensor& t, std::int64_t fan_in, Rng& rng);

// The draws everything above is made of: uniform on [0, 1) with 24 random bits (every float
// in the range equally spaced), and a standard normal (Box-Muller, double precision).
float uniform01(Rng& rng);
double standard_normal(Rng& rng);

}  // namespace bnlab::initializers
