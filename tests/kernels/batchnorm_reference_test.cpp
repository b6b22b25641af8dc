// Every BatchNorm kernel variant (layout, center/scale, fused ReLU) against the float64
// reference on random shapes, odd sizes included.

#include "reference/batchnorm_reference.hpp"

#include <gtest/gtest.h>

#include "kernels/batchnorm_test_support.hpp"

namespace bnlab::testing {
namespace {

struct Case {
  BatchNormShape shape;
  bool scale, center, relu;
};

std::string name_of(const Case& c) {
  return describe(c.shape) + (c.scale ? " gamma" : " no-gamma") + (c.center ? " beta" : " no-beta") +
         (c.relu ? " relu" : "");
}

// Channels 1, 3, 17, 300; spatial from 1x1 to 57x57; each layout; options cycled through.
std::vector<Case> cases() {
  std::vector<Case> out;
  const std::int64_t channels[] = {1, 3, 17, 300};
  const std::int64_t sides[][2] = {{1, 1}, {3, 5}, {7, 7}, {13, 11}, {57, 57}};
  int k = 0;
  for (Layout layout : {Layout::NC, Layout::NCHW, Layout::NHWC}) {
    for (std::int64_t c : channels) {
      for (const auto& hw : sides) {
        if (layout == Layout::NC && hw[0] * hw[1] != 1) continue;
        const std::int64_t spatial = hw[0] * hw[1];
        // Keep each case under ~1M values so the float64 reference stays quick.
        std::int64_t batch = layout == Layout::NC ? (c == 300 ? 37 : 64) : 5;
        if (c * spatial * batch > 1'000'000) batch = 2;
        if (batch * spatial < 2) batch = 2;
        ++k;
        out.push_back({{batch, c, spatial, layout}, k % 3 != 1, k % 4 != 2, k % 2 == 0});
      }
    }
  }
  // The seed MLP's layer and a batch of 2 (the smallest legal training batch).
  out.push_back({{32, 300, 1, Layout::NC}, true, true, false});
  out.push_back({{2, 17, 1, Layout::NC}, true, true, true});
  // Over 16 MiB: outputs written with streaming stores; 127x127 planes start off cache lines.
  out.push_back({{8, 33, 127 * 127, Layout::NCHW}, true, true, true});
  out.push_back({{4, 64, 130 * 130, Layout::NHWC}, true, true, false});
  out.push_back({{16384, 272, 1, Layout::NC}, true, false, true});
  // Rows wider than one 64-channel register block, read from memory (16.9 MB): every pass walks
  // them row by row, the sums in chunks of 1024 channels (here a second chunk of 6, a scalar
  // remainder), with 8 row groups. (In cache, 9x1500 in instruction_sets_test and LoopPaths take
  // the register blocks' row tiles.)
  out.push_back({{4100, 1030, 1, Layout::NC}, false, true, true});
  out.push_back({{3, 129, 45, Layout::NHWC}, true, true, false});
  return out;
}

void PrintTo(const Case& c, std::ostream* os) { *os << name_of(c); }

class BatchNormReference : public ::testing::TestWithParam<Case> {};

TEST_P(BatchNormReference, ForwardTrainingBackwardAndInferenceMatchFloat64) {
  const Case tc = GetParam();
  const BatchNormShape& s = tc.shape;
  const auto C = static_cast<std::size_t>(s.channels);
  const auto n = static_cast<std::size_t>(s.size());
  const float eps = 1e-3f;
  const auto x = random_normal(n, 0.7f, 2.5f, 1000 + n);
  const auto dy = random_normal(n, 0.0f, 1.0f, 2000 + n);
  std::vector<float> gamma, beta;
  if (tc.scale) gamma = random_normal(C, 1.0f, 0.5f, 3000 + C);
  if (tc.center) beta = random_normal(C, 0.0f, 0.5f, 4000 + C);
  const FusedActivation act = tc.relu ? FusedActivation::relu : FusedActivation::none;
  const float* g = tc.scale ? gamma.data() : nullptr;
  const float* b = tc.center ? beta.data() : nullptr;

  std::vector<float> y(n), mean(C), inv_std(C), var(C);
  kernels::batchnorm_forward_training(s, x.data(), g, b, eps, y.data(), mean.data(), inv_std.data(), var.data(), act);

  const auto xd = to_double(x), gd = to_double(gamma), bd = to_double(beta);
  const auto ref = reference::forward_training(s, xd, gd, bd, eps, tc.relu);
  EXPECT_LE(worst_error(y, ref.y, 2e-5, 2e-5), 1.0) << name_of(tc);
  EXPECT_LE(worst_error(mean, ref.mean, 1e-5, 1e-5), 1.0) << name_of(tc);
  EXPECT_LE(worst_error(var, ref.variance, 1e-6, 2e-5), 1.0) << name_of(tc);
  EXPECT_LE(worst_error(inv_std, ref.inv_std, 1e-6, 2e-5), 1.0) << name_of(tc);

  // Values whose pre-activation lies within float rounding of 0 may take either side of the
  // ReLU in float32; their gradient is a convention, so they are left out of the comparison
  // and their possible contribution widens the tolerance of the sums.
  const auto pre = reference::forward_training(s, xd, gd, bd, eps, false);
  std::vector<bool> ambiguous(n, false);
  std::vector<double> slack_beta(C, 0.0), slack_gamma(C, 0.0);
  if (tc.relu) {
    for (std::int64_t nn = 0; nn < s.batch; ++nn)
      for (std::int64_t c = 0; c < s.channels; ++c)
        for (std::int64_t i = 0; i < s.spatial; ++i) {
          const auto k = reference::index_of(s, nn, c, i);
          if (std::abs(pre.y[k]) < 1e-5) {
            ambiguous[k] = true;
            slack_beta[c] += std::abs(dy[k]);
            slack_gamma[c] += std::abs(dy[k] * (xd[k] - pre.mean[c]) * pre.inv_std[c]);
          }
        }
  }

  std::vector<float> dx(n), dgamma(C), dbeta(C);
  kernels::batchnorm_backward(s, x.data(), dy.data(), g, b, mean.data(), inv_std.data(), dx.data(), dgamma.data(),
                              dbeta.data(), act);
  const auto rb = reference::backward_training(s, xd, to_double(dy), gd, bd, eps, tc.relu);
  double dx_scale = 0;
  for (double v : rb.dx) dx_scale = std::max(dx_scale, std::abs(v));
  EXPECT_LE(worst_error(dx, rb.dx, 1e-4 * dx_scale + 1e-7, 1e-4, &ambiguous), 1.0) << name_of(tc);
  for (std::size_t c = 0; c < C; ++c) {
    const double tol = 1e-4 * std::sqrt(static_cast<double>(s.count_per_channel())) + 1e-5;
    EXPECT_NEAR(dbeta[c], rb.dbeta[c], tol + slack_beta[c]) << name_of(tc) << " channel " << c;
    EXPECT_NEAR(dgamma[c], rb.dgamma[c], tol + slack_gamma[c]) << name_of(tc) << " channel " << c;
  }

  // Inference with the reference's statistics as the moving statistics.
  std::vector<float> moving_mean(C), moving_var(C), yi(n);
  for (std::size_t c = 0; c < C; ++c) {
    moving_mean[c] = static_cast<float>(ref.mean[c] + 0.1);
    moving_var[c] = static_cast<float>(ref.variance[c] * 1.5);
  }
  kernels::batchnorm_forward_inference(s, x.data(), moving_mean.data(), moving_var.data(), g, b, eps, yi.data(), act);
  const auto ri =
      reference::forward_inference(s, xd, to_double(moving_mean), to_double(moving_var), gd, bd, eps, tc.relu);
  EXPECT_LE(worst_error(yi, ri, 2e-5, 2e-5), 1.0) << name_of(tc);
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchNormReference, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return "case" + std::to_string(info.index);
                         });

TEST(BatchNormInferenceBackward, MatchesClosedForm) {
  const BatchNormShape s{4, 3, 10, Layout::NCHW};
  const auto n = static_cast<std::size_t>(s.size());
  const auto x = random_normal(n, 1.0f, 2.0f, 7), dy = random_normal(n, 0.0f, 1.0f, 8);
  const std::vector<float> mean = {0.5f, -1.0f, 2.0f}, var = {1.0f, 4.0f, 0.25f}, gamma = {1.5f, -0.5f, 2.0f},
                           beta = {0.1f, 0.2f, -0.3f};
  for (bool relu : {false, true}) {
    std::vector<float> dx(n), dgamma(3), dbeta(3);
    kernels::batchnorm_backward_inference(s, x.data(), dy.data(), mean.data(), var.data(), gamma.data(), beta.data(),
                                          1e-3f, dx.data(), dgamma.data(), dbeta.data(),
                                          relu ? FusedActivation::relu : FusedActivation::none);
    std::vector<double> sg(3, 0), sb(3, 0);
    for (std::int64_t nn = 0; nn < s.batch; ++nn)
      for (std::int64_t c = 0; c < 3; ++c)
        for (std::int64_t i = 0; i < s.spatial; ++i) {
          const auto k = reference::index_of(s, nn, c, i);
          const double inv = 1.0 / std::sqrt(double(var[c]) + 1e-3);
          const double xhat = (x[k] - mean[c]) * inv, yv = gamma[c] * xhat + beta[c];
          const double g = relu && yv <= 0 ? 0.0 : dy[k];
          EXPECT_NEAR(dx[k], g * gamma[c] * inv, 1e-5);
          sg[c] += g * xhat;
          sb[c] += g;
        }
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(dgamma[c], sg[c], 1e-4);
      EXPECT_NEAR(dbeta[c], sb[c], 1e-4);
    }
  }
}

}  // namespace
}  // namespace bnlab::testing
