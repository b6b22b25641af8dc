// Resident memory over ten epochs of training stays flat: after the first epoch (data, model,
// optimizer slots and training buffers all allocated) it may not grow by more than 5%. A leak
// per step or per epoch (a buffer reallocated, a history kept twice, validation buffers never
// freed) shows up here long before a real run of hours runs out of memory.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bnlab/models.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define BNLAB_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BNLAB_UNDER_ASAN 1
#endif
#endif

namespace bnlab {
namespace {

// VmRSS from /proc/self/status, in KiB.
std::int64_t resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

TEST(Memory, TenEpochsKeepResidentMemoryFlat) {
#ifdef BNLAB_UNDER_ASAN
  GTEST_SKIP() << "AddressSanitizer keeps freed memory in quarantine, so resident memory says nothing here";
#endif
  ASSERT_GT(resident_kib(), 0) << "needs /proc/self/status";
  // A Fashion-MNIST-shaped subset: 2,000 training and 500 validation images.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  auto images = [&](std::int64_t n) {
    Tensor t({n, 28, 28});
    for (std::int64_t i = 0; i < t.size(); ++i) t[i] = pixel(rng);
    return t;
  };
  auto labels = [&](std::int64_t n) {
    std::vector<std::int32_t> y(static_cast<std::size_t>(n));
    for (auto& v : y) v = static_cast<std::int32_t>(rng() % 10);
    return y;
  };
  const Tensor x = images(2000), validation_x = images(500);
  const std::vector<std::int32_t> y = labels(2000), validation_y = labels(500);

  Sequential model = make_bn_model(3);
  model.compile(std::make_unique<Adam>(1e-3));
  std::vector<std::int64_t> rss;
  FitOptions options;
  options.epochs = 10;
  options.batch_size = 32;
  options.seed = 1;
  options.verbose = Verbosity::silent;
  options.validation_x = validation_x;
  options.validation_y = validation_y;
  options.on_epoch_end = [&](int, const History&) {
    rss.push_back(resident_kib());
    return true;
  };
  model.fit(x, y, options);
  ASSERT_EQ(rss.size(), 10u);

  const std::int64_t after_first = rss.front();
  const std::int64_t peak = *std::max_element(rss.begin(), rss.end());
  const double growth = 100.0 * static_cast<double>(peak - after_first) / static_cast<double>(after_first);
  std::string series;
  for (std::int64_t kib : rss) series += std::to_string(kib) + " ";
  // The figure quoted in docs/reliability.md.
  std::cout << "VmRSS after each epoch (KiB): " << series << "\nafter epoch 1: " << after_first
            << " KiB, peak: " << peak << " KiB, growth: " << growth << "%\n";
  EXPECT_LE(growth, 5.0) << series;
}

}  // namespace
}  // namespace bnlab
