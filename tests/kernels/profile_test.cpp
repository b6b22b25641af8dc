// The profile's kernel sections (bench_training's GEMM and BatchNorm shares): one call counted
// per kernel entry while profiling is on, none while it is off.

#include <gtest/gtest.h>

#include <vector>

#include "bnlab/kernels/batchnorm.hpp"
#include "bnlab/kernels/gemm.hpp"
#include "bnlab/profile.hpp"

namespace bnlab {
namespace {

std::int64_t calls(profile::Section section) {
  return profile::totals().calls[static_cast<std::size_t>(section)];
}

TEST(Profile, CountsEachKernelCallInItsSectionOnlyWhileOn) {
  const kernels::BatchNormShape shape{8, 4, 1, Layout::NC};
  std::vector<float> x(32, 1.0f), y(32), dx(32), mean(4), inv_std(4), a(8 * 8, 1.0f), c(8 * 8);
  x[3] = 2.0f;
  auto run = [&] {
    kernels::batchnorm_forward_training(shape, x.data(), nullptr, nullptr, 1e-3f, y.data(), mean.data(),
                                        inv_std.data(), nullptr);
    kernels::batchnorm_backward(shape, x.data(), y.data(), nullptr, nullptr, mean.data(), inv_std.data(), dx.data(),
                                nullptr, nullptr);
    kernels::gemm(false, false, 8, 8, 8, 1.0f, a.data(), a.data(), 0.0f, c.data());
  };
  profile::reset();
  run();
  EXPECT_EQ(calls(profile::Section::batchnorm), 0);
  EXPECT_EQ(calls(profile::Section::gemm), 0);
  profile::set_enabled(true);
  run();
  run();
  profile::set_enabled(false);
  EXPECT_EQ(calls(profile::Section::batchnorm), 4);
  EXPECT_EQ(calls(profile::Section::gemm), 2);
  EXPECT_EQ(calls(profile::Section::optimizer), 0);
  EXPECT_EQ(calls(profile::Section::batch), 0);
  EXPECT_EQ(c[0], 8.0f);
  profile::reset();
  EXPECT_EQ(calls(profile::Section::gemm), 0);
}

}  // namespace
}  // namespace bnlab
