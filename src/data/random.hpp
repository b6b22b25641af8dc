#pragma once
// Portable random draws for the data layer. std::mt19937_64's output is fixed by the C++
// standard, but std::uniform_int_distribution, std::normal_distribution and std::shuffle are
// not (libstdc++ and libc++ differ), so the draws built on it are written out here: the
// same seed then gives the same shuffles and the same synthetic data with any library.

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>

namespace bnlab::data::detail {

// SplitMix64's finalizer: spreads nearby inputs (seed, seed + 1, epoch 0, 1, ...) over the
// whole 64-bit range before they seed a generator.
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Uniform integer in [0, bound), bound >= 1, without modulo bias: values below 2^64 mod bound
// are rejected, so each residue has the same number of preimages.
inline std::uint64_t uniform_below(std::mt19937_64& gen, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const std::uint64_t r = gen();
    if (r >= threshold) return r % bound;
  }
}

// Uniform double in (0, 1]: 53 random bits, shifted by one step so that log() never sees 0.
inline double uniform_open_closed(std::mt19937_64& gen) {
  return (static_cast<double>(gen() >> 11) + 1.0) * 0x1.0p-53;
}

// Standard normal draws by the Box-Muller transform; each pair of uniforms yields two
// normals, the second kept for the next call.
class NormalSource {
public:
  double operator()(std::mt19937_64& gen) {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double radius = std::sqrt(-2.0 * std::log(uniform_open_closed(gen)));
    const double angle = 2.0 * std::numbers::pi * uniform_open_closed(gen);
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

private:
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace bnlab::data::detail
