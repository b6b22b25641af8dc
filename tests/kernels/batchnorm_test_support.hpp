#pragma once
// Shared helpers of the BatchNorm kernel tests: random data, float<->double, and a runner that
// calls every kernel on one case.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bnlab/kernels/batchnorm.hpp"

namespace bnlab::testing {

using kernels::BatchNormShape;
using kernels::FusedActivation;

inline std::vector<float> random_normal(std::size_t n, float mean, float stddev, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(mean, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

inline std::string describe(const BatchNormShape& s) {
  return "N=" + std::to_string(s.batch) + " C=" + std::to_string(s.channels) + " S=" + std::to_string(s.spatial) + " " +
         to_string(s.layout);
}

// Largest |a - b| / (abs_tol + rel_tol * |b|); <= 1 passes.
inline double worst_error(const std::vector<float>& a, const std::vector<double>& b, double abs_tol, double rel_tol,
                          const std::vector<bool>* skip = nullptr) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (skip && (*skip)[i]) continue;
    const double e = std::abs(a[i] - b[i]) / (abs_tol + rel_tol * std::abs(b[i]));
    if (!(e <= worst)) worst = e;  // NaN counts as worst
  }
  return worst;
}

// A buffer of n floats starting `past_line` floats after a 64-byte line: on a line, rows of a
// stride of whole lines can take the streaming stores; past it, a kernel's loads of the buffer
// straddle lines.
struct LineAligned {
  std::vector<float> storage;
  float* data;
  explicit LineAligned(std::size_t n, float fill, std::size_t past_line = 0) : storage(n + 16 + past_line, fill) {
    const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
    data = storage.data() + (64 - address % 64) % 64 / sizeof(float) + past_line;
  }
  // A move keeps storage's heap block, so data stays valid; a copy would not.
  LineAligned(LineAligned&&) = default;
  LineAligned(const LineAligned&) = delete;
  LineAligned& operator=(const LineAligned&) = delete;
};

// Runs `body` and checks it throws std::invalid_argument whose message contains every needle.
inline void expect_invalid(const std::function<void()>& body, const std::vector<std::string>& needles) {
  try {
    body();
    ADD_FAILURE() << "expected std::invalid_argument mentioning '" << needles.front() << "'";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    for (const auto& needle : needles)
      EXPECT_NE(what.find(needle), std::string::npos) << "message: " << what << "\nmissing: " << needle;
  }
}

}  // namespace bnlab::testing
