// Cross-check of forward, backward and the running statistics against PyTorch's batch_norm,
// through Debian's /usr/bin/python3 with python3-torch. Skips, saying why, where it is absent.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kernels/batchnorm_test_support.hpp"
#include "kernels/torch_support.hpp"

namespace bnlab::testing {
namespace {

namespace fs = std::filesystem;

struct TorchCase {
  Layout layout;
  std::int64_t n, c, h, w;
};

class BatchNormTorch : public ::testing::TestWithParam<TorchCase> {};

TEST_P(BatchNormTorch, ForwardBackwardAndRunningStatisticsMatchPyTorch) {
  const char* python = "/usr/bin/python3";
  if (!fs::exists(python)) GTEST_SKIP() << "Debian's /usr/bin/python3 is absent (scripts/setup.sh installs it)";
  const TorchCase tc = GetParam();
  const BatchNormShape s{tc.n, tc.c, tc.h * tc.w, tc.layout};
  const auto n = static_cast<std::size_t>(s.size()), C = static_cast<std::size_t>(tc.c);
  const fs::path dir = fs::temp_directory_path() / ("bnlab_torch_" + std::to_string(::getpid()) + "_" +
                                                    to_string(tc.layout) + std::to_string(tc.c));
  fs::create_directories(dir);
  const auto x = random_normal(n, 1.5f, 3.0f, 61), dy = random_normal(n, 0.0f, 1.0f, 62);
  const auto gamma = random_normal(C, 1.0f, 0.4f, 63), beta = random_normal(C, 0.0f, 0.4f, 64);
  std::vector<float> running_mean(C, 0.2f), running_var(C, 0.9f);
  write_f32(dir / "x.f32", x);
  write_f32(dir / "dy.f32", dy);
  write_f32(dir / "gamma.f32", gamma);
  write_f32(dir / "beta.f32", beta);
  write_f32(dir / "running_mean.f32", running_mean);
  write_f32(dir / "running_var.f32", running_var);
  const float eps = 1e-5f, momentum = 0.1f;
  const std::string command = std::string(python) + " " + BNLAB_SOURCE_DIR + "/tests/reference/torch_batchnorm.py " +
                              dir.string() + " " + to_string(tc.layout) + " " + std::to_string(tc.n) + " " +
                              std::to_string(tc.c) + " " + std::to_string(tc.h) + " " + std::to_string(tc.w) +
                              " 1e-5 0.1";
  const TorchRun run = run_torch_script(command);
  if (run == TorchRun::unavailable) {
    fs::remove_all(dir);
    GTEST_SKIP() << "PyTorch is not importable by /usr/bin/python3 (apt-get install python3-torch)";
  }
  ASSERT_EQ(run, TorchRun::ok) << command;

  std::vector<float> y(n), mean(C), inv(C), var(C), dx(n), dgamma(C), dbeta(C);
  kernels::batchnorm_forward_training(s, x.data(), gamma.data(), beta.data(), eps, y.data(), mean.data(), inv.data(),
                                      var.data());
  kernels::batchnorm_backward(s, x.data(), dy.data(), gamma.data(), beta.data(), mean.data(), inv.data(), dx.data(),
                              dgamma.data(), dbeta.data());
  kernels::update_running_statistics_pytorch(tc.c, s.count_per_channel(), mean.data(), var.data(), momentum, 1,
                                             running_mean.data(), running_var.data());

  EXPECT_LT(max_abs_diff(y, read_f32(dir / "y.f32", n)), 1e-4);
  EXPECT_LT(max_abs_diff(dx, read_f32(dir / "dx.f32", n)), 1e-4);
  const double sum_tol = 2e-5 * std::sqrt(double(s.count_per_channel())) * 10;
  EXPECT_LT(max_abs_diff(dgamma, read_f32(dir / "dgamma.f32", C)), sum_tol);
  EXPECT_LT(max_abs_diff(dbeta, read_f32(dir / "dbeta.f32", C)), sum_tol);
  EXPECT_LT(max_abs_diff(running_mean, read_f32(dir / "running_mean_out.f32", C)), 1e-5);
  EXPECT_LT(max_abs_diff(running_var, read_f32(dir / "running_var_out.f32", C)), 1e-4);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Layouts, BatchNormTorch,
                         ::testing::Values(TorchCase{Layout::NC, 32, 300, 1, 1}, TorchCase{Layout::NCHW, 4, 17, 9, 7},
                                           TorchCase{Layout::NHWC, 3, 5, 11, 13}),
                         [](const auto& info) { return to_string(info.param.layout); });

}  // namespace
}  // namespace bnlab::testing
