// Cross-check of the group normalization kernels (group, instance and layer normalization)
// against PyTorch's group_norm and layer_norm, through Debian's /usr/bin/python3 with
// python3-torch. Skips, saying why, where it is absent.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "bnlab/kernels/group_norm.hpp"
#include "kernels/batchnorm_test_support.hpp"
#include "kernels/torch_support.hpp"

namespace bnlab::testing {
namespace {

namespace fs = std::filesystem;

struct TorchGroupCase {
  const char* kind;  // "group" or "layer"
  Layout layout;
  std::int64_t n, c, h, w, groups;
};

class GroupNormTorch : public ::testing::TestWithParam<TorchGroupCase> {};

TEST_P(GroupNormTorch, ForwardAndBackwardMatchPyTorch) {
  const char* python = "/usr/bin/python3";
  if (!fs::exists(python)) GTEST_SKIP() << "Debian's /usr/bin/python3 is absent (scripts/setup.sh installs it)";
  const TorchGroupCase tc = GetParam();
  const kernels::GroupNormShape s{tc.n, tc.c, tc.h * tc.w, tc.layout, tc.groups};
  const auto n = static_cast<std::size_t>(s.size()), C = static_cast<std::size_t>(tc.c);
  const fs::path dir = fs::temp_directory_path() / ("bnlab_torch_gn_" + std::to_string(::getpid()) + "_" + tc.kind +
                                                    to_string(tc.layout) + std::to_string(tc.groups));
  fs::create_directories(dir);
  const auto x = random_normal(n, 1.5f, 3.0f, 71), dy = random_normal(n, 0.0f, 1.0f, 72);
  const auto gamma = random_normal(C, 1.0f, 0.4f, 73), beta = random_normal(C, 0.0f, 0.4f, 74);
  write_f32(dir / "x.f32", x);
  write_f32(dir / "dy.f32", dy);
  write_f32(dir / "gamma.f32", gamma);
  write_f32(dir / "beta.f32", beta);
  const float eps = 1e-5f;
  const std::string command = std::string(python) + " " + BNLAB_SOURCE_DIR + "/tests/reference/torch_group_norm.py " +
                              dir.string() + " " + tc.kind + " " + to_string(tc.layout) + " " + std::to_string(tc.n) +
                              " " + std::to_string(tc.c) + " " + std::to_string(tc.h) + " " + std::to_string(tc.w) +
                              " " + std::to_string(tc.groups) + " 1e-5";
  const TorchRun run = run_torch_script(command);
  if (run == TorchRun::unavailable) {
    fs::remove_all(dir);
    GTEST_SKIP() << "PyTorch is not importable by /usr/bin/python3 (apt-get install python3-torch)";
  }
  ASSERT_EQ(run, TorchRun::ok) << command;

  const auto statistics = static_cast<std::size_t>(tc.n * tc.groups);
  std::vector<float> y(n), mean(statistics), inv_std(statistics), dx(n), dgamma(C), dbeta(C);
  kernels::group_norm_forward(s, x.data(), gamma.data(), beta.data(), eps, y.data(), mean.data(), inv_std.data());
  kernels::group_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), inv_std.data(), dx.data(),
                               dgamma.data(), dbeta.data());
  EXPECT_LT(max_abs_diff(y, read_f32(dir / "y.f32", n)), 1e-4);
  EXPECT_LT(max_abs_diff(dx, read_f32(dir / "dx.f32", n)), 1e-4);
  const double sum_tol = 2e-4 * std::sqrt(double(tc.n * tc.h * tc.w));
  EXPECT_LT(max_abs_diff(dgamma, read_f32(dir / "dgamma.f32", C)), sum_tol);
  EXPECT_LT(max_abs_diff(dbeta, read_f32(dir / "dbeta.f32", C)), sum_tol);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(KindsAndLayouts, GroupNormTorch,
                         ::testing::Values(TorchGroupCase{"group", Layout::NCHW, 3, 6, 5, 4, 3},
                                           TorchGroupCase{"group", Layout::NHWC, 2, 8, 7, 3, 2},
                                           TorchGroupCase{"group", Layout::NCHW, 2, 4, 6, 6,
                                                          4},  // instance normalization
                                           TorchGroupCase{"layer", Layout::NC, 32, 300, 1, 1, 1}),
                         [](const auto& info) {
                           return std::string(info.param.kind) + "_" + to_string(info.param.layout) + "_" +
                                  std::to_string(info.param.groups);
                         });

}  // namespace
}  // namespace bnlab::testing
