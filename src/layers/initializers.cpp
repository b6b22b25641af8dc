#include "bnlab/layers/initializers.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>

#include <fmt/format.h>

namespace bnlab::initializers {

namespace {

void check_fan(std::int64_t fan, const char* name, const std::string& initializer) {
  if (fan < 1) throw std::invalid_argument(fmt::format("{} initializer: {} is {}, expected >= 1", initializer, name, fan));
}

}  // namespace

bool is_known(const std::string& name) {
  return name == "glorot_uniform" || name == "he_normal" || name == "zeros" || name == "ones";
}

void check(const std::string& name, const std::string& who, const std::string& argument) {
  if (!is_known(name))
    throw std::invalid_argument(fmt::format(
        "{}: {} is \"{}\", expected one of \"glorot_uniform\", \"he_normal\", \"zeros\", \"ones\"", who, argument, name));
}

float uniform01(Rng& rng) { return static_cast<float>(rng() >> 40) * 0x1.0p-24f; }

double standard_normal(Rng& rng) {
  // Box-Muller with 53-bit uniforms; u1 in (0, 1] keeps the log finite.
  const double u1 = (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53;
  const double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

void glorot_uniform(Tensor& t, std::int64_t fan_in, std::int64_t fan_out, Rng& rng) {
  check_fan(fan_in, "fan_in", "glorot_uniform");
  check_fan(fan_out, "fan_out", "glorot_uniform");
  const float limit = static_cast<float>(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)));
  float* w = t.data();
  for (std::int64_t i = 0; i < t.size(); ++i) w[i] = (2.0f * uniform01(rng) - 1.0f) * limit;
}

void he_normal(Tensor& t, std::int64_t fan_in, Rng& rng) {
  check_fan(fan_in, "fan_in", "he_normal");
  // The standard deviation of a standard normal truncated to [-2, 2] is 0.8796...; dividing by
  // it makes the truncated draw's variance 2 / fan_in, as Keras's VarianceScaling does.
  const double stddev = std::sqrt(2.0 / static_cast<double>(fan_in)) / 0.87962566103423978;
  float* w = t.data();
  for (std::int64_t i = 0; i < t.size(); ++i) {
    double z = standard_normal(rng);
    while (std::abs(z) > 2.0) z = standard_normal(rng);
    w[i] = static_cast<float>(z * stddev);
  }
}

void create_trainable(Parameter& p, const Shape& shape, const std::string& name, std::int64_t fan_in,
                      std::int64_t fan_out, Rng& rng) {
  p.value = Tensor(shape);
  p.grad = Tensor(shape);
  initialize(name, p.value, fan_in, fan_out, rng);
}

void initialize(const std::string& name, Tensor& t, std::int64_t fan_in, std::int64_t fan_out, Rng& rng) {
  if (name == "glorot_uniform") return glorot_uniform(t, fan_in, fan_out, rng);
  if (name == "he_normal") return he_normal(t, fan_in, rng);
  if (name == "zeros") return t.fill(0.0f);
  if (name == "ones") return t.fill(1.0f);
  check(name, "initialize", "initializer");
}

}  // namespace bnlab::initializers
