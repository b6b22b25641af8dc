#pragma once
// What the Keras cross-checks of the layers share: inputs drawn into a tensor, a layer's outputs
// as values, and running a tests/reference/keras_*.py script through `python3` (the PyPI Python
// that scripts/setup_python_checks.sh gives TensorFlow), which exits 77 where TensorFlow is absent.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "bnlab/tensor.hpp"
#include "kernels/batchnorm_test_support.hpp"
#include "kernels/torch_support.hpp"

namespace bnlab::testing {

inline std::vector<float> values_of(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.size()); }

// t filled with normal draws; returns them (what the script reads from a file).
inline std::vector<float> fill_normal(Tensor& t, float mean, float stddev, std::uint64_t seed) {
  const auto values = random_normal(static_cast<std::size_t>(t.size()), mean, stddev, seed);
  std::copy(values.begin(), values.end(), t.data());
  return values;
}

// "3,5,6,4": a shape or an axis list as the scripts take it.
inline std::string comma_separated(const std::vector<std::int64_t>& values) {
  std::string text;
  for (const std::int64_t v : values) text += (text.empty() ? "" : ",") + std::to_string(v);
  return text;
}

// Runs tests/reference/SCRIPT ARGUMENTS; unavailable where python3 or its TensorFlow is absent.
inline TorchRun run_keras_script(const std::string& script, const std::string& arguments) {
  if (std::system("command -v python3 > /dev/null 2>&1") != 0) return TorchRun::unavailable;
  return run_torch_script(std::string("python3 ") + BNLAB_SOURCE_DIR + "/tests/reference/" + script + " " + arguments);
}

}  // namespace bnlab::testing
