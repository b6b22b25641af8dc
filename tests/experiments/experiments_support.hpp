#pragma once
// Shared by the experiments' tests: one run of `bnlab experiment all` with tiny settings, made
// once per test binary (it is the slow part) and read by several tests.

#include <filesystem>
#include <string>
#include <vector>

#include "cli/cli_support.hpp"

namespace bnlab::experiments::testing {

// The real Fashion-MNIST where installed (a prefix of it, through the limits below), else the
// synthetic stand-in from the CLI tests, which has exactly 700 training and 200 test images.
inline std::filesystem::path test_data_dir(const std::filesystem::path& scratch) {
  const std::filesystem::path real = "/usr/share/datasets/fashion-mnist";
  if (std::filesystem::exists(real / "train-images-idx3-ubyte.gz")) return real;
  const auto synthetic = scratch / "fashion-mnist";
  cli::testing::write_synthetic_fashion_mnist(synthetic);
  return synthetic;
}

// Tiny settings: 600 training images (so batch 512 fits), 100 validation, 200 test images.
inline std::vector<std::string> tiny_data_args(const std::filesystem::path& data_dir) {
  return {"--data-dir", data_dir.string(), "--validation", "100", "--train-limit", "600", "--test-limit", "200"};
}

}  // namespace bnlab::experiments::testing
