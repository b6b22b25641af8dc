// BatchNorm kernels: finite-difference gradients, the seeds' checks, moving statistics in both
// conventions, numerics, determinism and bad input.

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "bnlab/batchnorm.hpp"
#include "kernels/batchnorm_test_support.hpp"
#include "reference/batchnorm_reference.hpp"

namespace bnlab::testing {
namespace {

// L = sum(r * y) for fixed random r, so dL/dy = r.
double weighted_sum(const std::vector<double>& y, const std::vector<double>& r) {
  double s = 0;
  for (std::size_t i = 0; i < y.size(); ++i) s += y[i] * r[i];
  return s;
}

// Central differences on the float64 reference forward check the seed 000 backward equations
// (which the kernels are compared against) for every layout, with and without ReLU.
TEST(BatchNormGradient, ReferenceBackwardMatchesFiniteDifferences) {
  for (Layout layout : {Layout::NC, Layout::NCHW, Layout::NHWC}) {
    for (bool relu : {false, true}) {
      const BatchNormShape s{3, 2, layout == Layout::NC ? 1 : 4, layout};
      const auto n = static_cast<std::size_t>(s.size());
      auto x = to_double(random_normal(n, 0.3f, 1.5f, 11));
      const auto r = to_double(random_normal(n, 0.0f, 1.0f, 12));
      std::vector<double> gamma = {1.3, -0.7}, beta = {0.2, -0.1};
      const double eps = 1e-3, h = 1e-6;
      const auto analytic = reference::backward_training(s, x, r, gamma, beta, eps, relu);
      auto loss = [&] { return weighted_sum(reference::forward_training(s, x, gamma, beta, eps, relu).y, r); };
      for (std::size_t i = 0; i < n; ++i) {
        const double keep = x[i];
        x[i] = keep + h;
        const double up = loss();
        x[i] = keep - h;
        const double down = loss();
        x[i] = keep;
        EXPECT_NEAR(analytic.dx[i], (up - down) / (2 * h), 1e-6) << to_string(layout) << " relu=" << relu << " i=" << i;
      }
      for (int c = 0; c < 2; ++c) {
        for (auto* p : {&gamma, &beta}) {
          const double keep = (*p)[c];
          (*p)[c] = keep + h;
          const double up = loss();
          (*p)[c] = keep - h;
          const double down = loss();
          (*p)[c] = keep;
          const double expected = p == &gamma ? analytic.dgamma[c] : analytic.dbeta[c];
          EXPECT_NEAR(expected, (up - down) / (2 * h), 1e-6) << to_string(layout) << " relu=" << relu;
        }
      }
    }
  }
}

// Central differences straight through the float32 kernels (step large enough for float).
TEST(BatchNormGradient, KernelBackwardMatchesFiniteDifferencesInFloat) {
  for (Layout layout : {Layout::NC, Layout::NCHW, Layout::NHWC}) {
    for (auto act : {FusedActivation::none, FusedActivation::relu}) {
      const BatchNormShape s{4, 3, layout == Layout::NC ? 1 : 3, layout};
      const auto n = static_cast<std::size_t>(s.size());
      auto x = random_normal(n, 0.0f, 1.0f, 21);
      const auto r = random_normal(n, 0.0f, 1.0f, 22);
      std::vector<float> gamma = {1.2f, 0.8f, -1.1f}, beta = {0.3f, -0.2f, 0.1f};
      std::vector<float> y(n), mean(3), inv(3);
      auto loss = [&] {
        kernels::batchnorm_forward_training(s, x.data(), gamma.data(), beta.data(), 1e-3f, y.data(), mean.data(),
                                            inv.data(), nullptr, act);
        double l = 0;
        for (std::size_t i = 0; i < n; ++i) l += double(y[i]) * r[i];
        return l;
      };
      loss();
      std::vector<float> dx(n), dgamma(3), dbeta(3);
      kernels::batchnorm_backward(s, x.data(), r.data(), gamma.data(), beta.data(), mean.data(), inv.data(), dx.data(),
                                  dgamma.data(), dbeta.data(), act);
      // A step across the ReLU's kink is not a derivative: skip values whose own output is that close to 0.
      const float h = 2e-3f;
      std::vector<float> pre(n);
      kernels::batchnorm_forward_training(s, x.data(), gamma.data(), beta.data(), 1e-3f, pre.data(), mean.data(),
                                          inv.data(), nullptr);
      for (std::size_t i = 0; i < n; ++i) {
        if (act == FusedActivation::relu && std::abs(pre[i]) < 5 * h) continue;
        const float keep = x[i];
        x[i] = keep + h;
        const double up = loss();
        x[i] = keep - h;
        const double down = loss();
        x[i] = keep;
        EXPECT_NEAR(dx[i], (up - down) / (2 * h), 5e-3) << to_string(layout) << " i=" << i;
      }
      for (int c = 0; c < 3; ++c) {
        for (auto* p : {&gamma, &beta}) {
          const float keep = (*p)[c];
          (*p)[c] = keep + h;
          const double up = loss();
          (*p)[c] = keep - h;
          const double down = loss();
          (*p)[c] = keep;
          EXPECT_NEAR(p == &gamma ? dgamma[c] : dbeta[c], (up - down) / (2 * h), 5e-3) << to_string(layout);
        }
      }
    }
  }
}

// Seed 000: x ~ N(5, 2) of shape (100, 2), gamma 1, beta 0, epsilon 1e-8: mean ~0, variance ~1.
TEST(BatchNormSeed000, NormalizedColumnsHaveZeroMeanUnitVariance) {
  const auto x = random_normal(200, 5.0f, 2.0f, 1);
  const Tensor xt = Tensor::from({100, 2}, x, Layout::NC);
  const auto out = batch_norm_training(xt, Tensor::full({2}, 1.0f), Tensor::full({2}, 0.0f), 1e-8f);
  for (int c = 0; c < 2; ++c) {
    double mean = 0, var = 0;
    for (int i = 0; i < 100; ++i) mean += out.y[i * 2 + c] / 100.0;
    for (int i = 0; i < 100; ++i) var += (out.y[i * 2 + c] - mean) * (out.y[i * 2 + c] - mean) / 100.0;
    EXPECT_NEAR(mean, 0.0, 1e-6);
    EXPECT_NEAR(var, 1.0, 1e-5);
    EXPECT_NEAR(out.mean[c], 5.0, 0.5);  // the sample mean of N(5, 2) with 100 draws
  }
}

// Seed 001 cases 3a and 3b: 30 random 32x32 images (randn * randint(5) + randint(60)); the first
// 10 normalized per pixel by the worksheet's own formula equal the kernel's training forward
// (3a) and the functional form with the given mean and variance (3b, tf.nn.batch_normalization).
TEST(BatchNormSeed001, FirstTenImagesByHandEqualKernelAndFunctional) {
  std::mt19937_64 rng(678);
  std::normal_distribution<double> randn(0.0, 1.0);
  std::uniform_int_distribution<int> randint5(0, 4), randint60(0, 59);
  std::vector<double> images(30 * 1024);
  for (int i = 0; i < 30; ++i) {
    const int scale = randint5(rng), offset = randint60(rng);
    for (int p = 0; p < 1024; ++p) images[i * 1024 + p] = randn(rng) * scale + offset;
  }
  const int batch = 10;
  std::vector<double> mean(1024, 0.0), var(1024, 0.0), by_hand(batch * 1024);
  for (int p = 0; p < 1024; ++p) {
    for (int i = 0; i < batch; ++i) mean[p] += images[i * 1024 + p];
    mean[p] /= batch;
    for (int i = 0; i < batch; ++i) var[p] += (images[i * 1024 + p] - mean[p]) * (images[i * 1024 + p] - mean[p]);
    var[p] /= batch;
    for (int i = 0; i < batch; ++i) by_hand[i * 1024 + p] = (images[i * 1024 + p] - mean[p]) / std::sqrt(var[p] + 1e-8);
  }
  // (10, 32, 32, 1) with statistics over axis 0 is (10, 1024) with 1024 features.
  std::vector<float> first10(images.begin(), images.begin() + batch * 1024);
  const Tensor x = Tensor::from({batch, 1024}, first10, Layout::NC);
  const auto case3a = batch_norm_training(x, Tensor(), Tensor(), 1e-8f);
  EXPECT_LE(worst_error(std::vector<float>(case3a.y.data(), case3a.y.data() + x.size()), by_hand, 1e-4, 1e-4), 1.0);

  std::vector<float> meanf(mean.begin(), mean.end()), varf(var.begin(), var.end());
  const Tensor case3b = batch_normalization(x, Tensor::from({1024}, meanf), Tensor::from({1024}, varf),
                                            Tensor::full({1024}, 0.0f), Tensor::full({1024}, 1.0f), 1e-8f);
  EXPECT_LE(worst_error(std::vector<float>(case3b.data(), case3b.data() + x.size()), by_hand, 1e-4, 1e-4), 1.0);
  double m = 0, v = 0;
  for (std::int64_t i = 0; i < case3b.size(); ++i) m += case3b[i] / double(case3b.size());
  for (std::int64_t i = 0; i < case3b.size(); ++i) v += (case3b[i] - m) * (case3b[i] - m) / double(case3b.size());
  EXPECT_NEAR(m, 0.0, 1e-5);
  EXPECT_NEAR(v, 1.0, 1e-3);
}

TEST(BatchNormMovingStatistics, KerasConvention) {
  std::vector<float> moving_mean = {0.0f, 1.0f}, moving_var = {1.0f, 2.0f};
  const std::vector<float> batch_mean = {2.0f, -1.0f}, batch_var = {4.0f, 0.5f};
  kernels::update_moving_statistics_keras(2, batch_mean.data(), batch_var.data(), 0.99f, moving_mean.data(),
                                          moving_var.data());
  EXPECT_NEAR(moving_mean[0], 0.0 * 0.99 + 2.0 * 0.01, 1e-6);
  EXPECT_NEAR(moving_mean[1], 1.0 * 0.99 - 1.0 * 0.01, 1e-6);
  EXPECT_NEAR(moving_var[0], 1.0 * 0.99 + 4.0 * 0.01, 1e-6);  // biased variance, as given
  EXPECT_NEAR(moving_var[1], 2.0 * 0.99 + 0.5 * 0.01, 1e-6);
}

TEST(BatchNormMovingStatistics, PyTorchConventionUsesUnbiasedVariance) {
  std::vector<float> running_mean = {0.0f}, running_var = {1.0f};
  const std::vector<float> batch_mean = {3.0f}, batch_var = {2.0f};  // biased, m = 5
  kernels::update_running_statistics_pytorch(1, 5, batch_mean.data(), batch_var.data(), 0.1f, 1, running_mean.data(),
                                             running_var.data());
  EXPECT_FLOAT_EQ(running_mean[0], 0.9f * 0.0f + 0.1f * 3.0f);
  EXPECT_NEAR(running_var[0], 0.9 * 1.0 + 0.1 * 2.0 * 5.0 / 4.0, 1e-6);
}

TEST(BatchNormMovingStatistics, PyTorchMomentumNoneIsCumulativeAverage) {
  std::vector<float> running_mean = {0.0f}, running_var = {1.0f};
  const float means[] = {1.0f, 2.0f, 6.0f}, vars[] = {3.0f, 6.0f, 9.0f};  // biased, m = 4
  for (int k = 0; k < 3; ++k)
    kernels::update_running_statistics_pytorch(1, 4, &means[k], &vars[k], std::nullopt, k + 1, running_mean.data(),
                                               running_var.data());
  EXPECT_NEAR(running_mean[0], (1.0 + 2.0 + 6.0) / 3.0, 1e-6);
  EXPECT_NEAR(running_var[0], (3.0 + 6.0 + 9.0) / 3.0 * 4.0 / 3.0, 1e-5);
}

// Training statistics feed the moving statistics: the kernel's batch_variance is the biased one.
TEST(BatchNormMovingStatistics, KernelReportsBiasedBatchVariance) {
  const std::vector<float> x = {1.0f, 2.0f, 3.0f, 6.0f};
  std::vector<float> y(4), mean(1), inv(1), var(1);
  kernels::batchnorm_forward_training({4, 1, 1, Layout::NC}, x.data(), nullptr, nullptr, 1e-5f, y.data(), mean.data(),
                                      inv.data(), var.data());
  EXPECT_FLOAT_EQ(mean[0], 3.0f);
  EXPECT_FLOAT_EQ(var[0], 3.5f);  // (4 + 1 + 0 + 9) / 4
  EXPECT_NEAR(inv[0], 1.0 / std::sqrt(3.5 + 1e-5), 1e-7);
}

// Mean 1e4 and standard deviation 0.1 in float32: a one-pass E[x^2] - E[x]^2 would lose every
// digit of the variance; the kernels must stay within 1e-3 of float64.
TEST(BatchNormNumerics, LargeMeanSmallSpreadWithin1e3OfFloat64) {
  for (Layout layout : {Layout::NC, Layout::NCHW, Layout::NHWC}) {
    const BatchNormShape s{64, 5, layout == Layout::NC ? 1 : 49, layout};
    const auto n = static_cast<std::size_t>(s.size());
    const auto x = random_normal(n, 1e4f, 0.1f, 31);
    std::vector<float> y(n), mean(5), inv(5), var(5);
    kernels::batchnorm_forward_training(s, x.data(), nullptr, nullptr, 1e-5f, y.data(), mean.data(), inv.data(),
                                        var.data());
    const auto ref = reference::forward_training(s, to_double(x), {}, {}, 1e-5, false);
    double worst = 0;
    for (std::size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(y[i] - ref.y[i]));
    EXPECT_LT(worst, 1e-3) << to_string(layout);
    for (int c = 0; c < 5; ++c) EXPECT_NEAR(var[c], ref.variance[c], 1e-4 * ref.variance[c]) << to_string(layout);
  }
}

// The first values of a channel (the pivot's sample) far out in the tail: the kernel must notice
// and re-centre rather than report a variance dominated by rounding.
TEST(BatchNormNumerics, OutlyingFirstValuesStillAccurate) {
  const BatchNormShape s{4096, 2, 1, Layout::NC};
  auto x = random_normal(8192, 1e4f, 0.1f, 32);
  for (int i = 0; i < 16; ++i) x[i * 2] = 1.0e4f + 50.0f;  // 500 standard deviations away
  std::vector<float> y(8192), mean(2), inv(2), var(2);
  kernels::batchnorm_forward_training(s, x.data(), nullptr, nullptr, 1e-5f, y.data(), mean.data(), inv.data(),
                                      var.data());
  const auto ref = reference::forward_training(s, to_double(x), {}, {}, 1e-5, false);
  for (int c = 0; c < 2; ++c) EXPECT_NEAR(var[c], ref.variance[c], 1e-4 * ref.variance[c]);
  double worst = 0;
  for (std::size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::abs(y[i] - ref.y[i]));
  EXPECT_LT(worst, 1e-3);
}

TEST(BatchNormNumerics, NonFiniteInputsPropagateAsNaN) {
  for (Layout layout : {Layout::NC, Layout::NCHW, Layout::NHWC}) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      const BatchNormShape s{8, 2, layout == Layout::NC ? 1 : 3, layout};
      const auto n = static_cast<std::size_t>(s.size());
      auto x = random_normal(n, 0.0f, 1.0f, 41);
      x[reference::index_of(s, 3, 1, 0)] = bad;  // one value of channel 1
      for (auto act : {FusedActivation::none, FusedActivation::relu}) {
        std::vector<float> y(n), mean(2), inv(2);
        kernels::batchnorm_forward_training(s, x.data(), nullptr, nullptr, 1e-3f, y.data(), mean.data(), inv.data(),
                                            nullptr, act);
        EXPECT_TRUE(std::isnan(mean[1]) || std::isnan(inv[1])) << to_string(layout);
        EXPECT_TRUE(std::isfinite(mean[0]) && std::isfinite(inv[0]));
        for (std::int64_t nn = 0; nn < s.batch; ++nn)
          for (std::int64_t i = 0; i < s.spatial; ++i) {
            EXPECT_TRUE(std::isnan(y[reference::index_of(s, nn, 1, i)])) << to_string(layout);
            EXPECT_TRUE(std::isfinite(y[reference::index_of(s, nn, 0, i)]));
          }
      }
    }
  }
}

// Finite values near the top of float's range: the pivot (the mean of a channel's first
// values) and the float partial sums of squares would overflow, though the mean and the
// variance fit a float. Channel 0: values of 2e38 (mean 2e38, variance 0); channel 1:
// +-1.3e19 (variance 1.69e38); channel 2: ordinary values beside them.
TEST(BatchNormNumerics, HugeFiniteValuesGiveFiniteStatistics) {
  for (Layout layout : {Layout::NC, Layout::NCHW, Layout::NHWC}) {
    for (const std::int64_t batch : {2, 16, 40}) {
      const BatchNormShape s{batch, 3, layout == Layout::NC ? 1 : 5, layout};
      const auto n = static_cast<std::size_t>(s.size());
      std::vector<float> x(n);
      std::int64_t k = 0;
      for (std::int64_t nn = 0; nn < s.batch; ++nn)
        for (std::int64_t i = 0; i < s.spatial; ++i, ++k) {
          x[reference::index_of(s, nn, 0, i)] = 2e38f;
          x[reference::index_of(s, nn, 1, i)] = k % 2 ? 1.3e19f : -1.3e19f;
          x[reference::index_of(s, nn, 2, i)] = static_cast<float>(k % 7);
        }
      const double m = static_cast<double>(s.count_per_channel());
      const double mean1 = (m - 2 * std::floor(m / 2)) * -1.3e19 / m;  // an odd count leaves one -1.3e19
      std::vector<float> y(n), mean(3), inv(3), var(3);
      kernels::batchnorm_forward_training(s, x.data(), nullptr, nullptr, 1e-3f, y.data(), mean.data(), inv.data(),
                                          var.data());
      SCOPED_TRACE(to_string(layout) + " N=" + std::to_string(batch));
      EXPECT_EQ(mean[0], 2e38f);
      EXPECT_EQ(var[0], 0.0f);
      EXPECT_NEAR(mean[1], mean1, 1e-6 * 1.3e19);
      EXPECT_NEAR(var[1], 1.69e38 - mean1 * mean1, 1e-6 * 1.69e38);
      for (std::int64_t nn = 0; nn < s.batch; ++nn)
        for (std::int64_t i = 0; i < s.spatial; ++i) {
          EXPECT_EQ(y[reference::index_of(s, nn, 0, i)], 0.0f);
          const float v = x[reference::index_of(s, nn, 1, i)];
          EXPECT_NEAR(y[reference::index_of(s, nn, 1, i)], (v - mean1) / std::sqrt(1.69e38 - mean1 * mean1), 1e-5);
          EXPECT_TRUE(std::isfinite(y[reference::index_of(s, nn, 2, i)]));
        }
    }
  }
}

// A single value per channel (fit's last batch when N % batch_size == 1): Keras normalizes it
// (mean = x, biased variance 0, y = beta); the backward is then dx = 0 (to a rounding),
// dgamma = 0, dbeta = dy.
TEST(BatchNormNumerics, ASingleValuePerChannelGivesBeta) {
  for (Layout layout : {Layout::NC, Layout::NCHW, Layout::NHWC}) {
    const BatchNormShape s{1, 20, 1, layout};
    const auto x = random_normal(20, 3.0f, 5.0f, 7), dy = random_normal(20, 0.0f, 1.0f, 8);
    const auto gamma = random_normal(20, 1.0f, 0.5f, 9), beta = random_normal(20, 0.0f, 1.0f, 10);
    for (auto act : {FusedActivation::none, FusedActivation::relu}) {
      std::vector<float> y(20), mean(20), inv(20), var(20, -1.0f), dx(20, -1.0f), dgamma(20, -1.0f), dbeta(20);
      kernels::batchnorm_forward_training(s, x.data(), gamma.data(), beta.data(), 1e-3f, y.data(), mean.data(),
                                          inv.data(), var.data(), act);
      kernels::batchnorm_backward(s, x.data(), dy.data(), gamma.data(), beta.data(), mean.data(), inv.data(), dx.data(),
                                  dgamma.data(), dbeta.data(), act);
      for (int c = 0; c < 20; ++c) {
        SCOPED_TRACE(to_string(layout) + " channel " + std::to_string(c));
        const bool passes = act == FusedActivation::none || beta[c] > 0.0f;
        EXPECT_EQ(mean[c], x[c]);
        EXPECT_EQ(var[c], 0.0f);
        EXPECT_FLOAT_EQ(inv[c], 1.0f / std::sqrt(1e-3f));
        EXPECT_EQ(y[c], passes ? beta[c] : 0.0f);
        // dy * a + c, a = gamma * inv_std and c = -a * dy in float: zero up to one rounding.
        EXPECT_NEAR(dx[c], 0.0f, 1e-6f * std::abs(gamma[c] * inv[c] * dy[c]));
        EXPECT_EQ(dgamma[c], 0.0f);
        EXPECT_EQ(dbeta[c], passes ? dy[c] : 0.0f);
      }
    }
  }
}

// The fused ReLU's NaN rule, where one NaN does not poison the statistics (inference): the
// output is NaN where x is, and the backward's mask lets the gradient through there, as
// torch.relu's does after F.batch_norm in eval mode: dbeta counts it. (dx is NaN there, where
// PyTorch's eval-mode dy * gamma * inv_std stays finite: the closed form shared with training
// multiplies x - mean by a coefficient that is 0 in inference. Every other dx is exact.)
TEST(BatchNormNumerics, FusedReluTreatsNanAsTorchReluDoes) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::int64_t batch : {4, 40}) {  // a vector tail and whole vectors of 16 channels
    const BatchNormShape s{batch, 16, 1, Layout::NC};
    const auto n = static_cast<std::size_t>(s.size());
    std::vector<float> x(n), dy(n), y(n), dx(n), dgamma(16), dbeta(16);
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = (i % 3 == 0) ? -1.0f - static_cast<float>(i % 5) : 0.5f + static_cast<float>(i % 7);
      dy[i] = 1.0f + static_cast<float>(i % 11);
    }
    x[2 * 16 + 5] = nan;  // sample 2, channel 5
    const std::vector<float> mean(16, 0.0f), variance(16, 3.0f), gamma(16, 2.0f), beta(16, 0.0f);
    const float eps = 1e-3f;
    kernels::batchnorm_forward_inference(s, x.data(), mean.data(), variance.data(), gamma.data(), beta.data(), eps,
                                         y.data(), FusedActivation::relu);
    kernels::batchnorm_backward_inference(s, x.data(), dy.data(), mean.data(), variance.data(), gamma.data(),
                                          beta.data(), eps, dx.data(), dgamma.data(), dbeta.data(),
                                          FusedActivation::relu);
    const double scale = 2.0 / std::sqrt(3.0 + static_cast<double>(eps));
    double dbeta5 = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const bool is_nan = i == 2 * 16 + 5, negative = !is_nan && x[i] < 0.0f;
      if (is_nan) {
        EXPECT_TRUE(std::isnan(y[i]));
      } else {
        EXPECT_EQ(y[i] == 0.0f, negative) << i;
      }
      if (is_nan) {
        EXPECT_TRUE(std::isnan(dx[i]));
      } else {
        EXPECT_NEAR(dx[i], negative ? 0.0 : dy[i] * scale, 1e-5) << i;
      }
      if (i % 16 == 5 && !negative) dbeta5 += dy[i];
    }
    EXPECT_TRUE(std::isnan(dgamma[5]));
    EXPECT_FLOAT_EQ(dbeta[5], static_cast<float>(dbeta5));
    for (int c = 0; c < 16; ++c) EXPECT_TRUE(c == 5 || (std::isfinite(dgamma[c]) && std::isfinite(dbeta[c]))) << c;
  }
}

// Without the ReLU the inference backward's dx is dy * gamma * inv_std, computed from dy alone:
// finite where x is NaN or infinite, as PyTorch's eval-mode backward, on every layout and on
// the per-channel NCHW path (16 channels and more) as well as the split one.
TEST(BatchNormNumerics, InferenceBackwardInputGradientIsDyTimesScaleWhateverX) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const BatchNormShape s : {BatchNormShape{6, 20, 1, Layout::NC}, BatchNormShape{3, 20, 7, Layout::NHWC},
                                 BatchNormShape{3, 20, 7, Layout::NCHW}, BatchNormShape{3, 2, 40, Layout::NCHW}}) {
    const auto n = static_cast<std::size_t>(s.size()), C = static_cast<std::size_t>(s.channels);
    auto x = random_normal(n, 0.0f, 1.0f, 61);
    const auto dy = random_normal(n, 0.0f, 1.0f, 62), gamma = random_normal(C, 1.0f, 0.3f, 63);
    x[5] = nan;
    x[n - 2] = inf;
    std::vector<float> mean(C, 0.1f), variance(C, 2.0f), beta(C, 0.0f), dx(n), dgamma(C), dbeta(C);
    for (bool with_parameter_grads : {false, true}) {
      kernels::batchnorm_backward_inference(s, x.data(), dy.data(), mean.data(), variance.data(), gamma.data(),
                                            beta.data(), 1e-3f, dx.data(),
                                            with_parameter_grads ? dgamma.data() : nullptr,
                                            with_parameter_grads ? dbeta.data() : nullptr);
      for (std::int64_t nn = 0; nn < s.batch; ++nn)
        for (std::int64_t c = 0; c < s.channels; ++c)
          for (std::int64_t i = 0; i < s.spatial; ++i) {
            const std::int64_t at = reference::index_of(s, nn, c, i);
            const double scale = gamma[static_cast<std::size_t>(c)] / std::sqrt(2.0 + 1e-3);
            ASSERT_NEAR(dx[static_cast<std::size_t>(at)], dy[static_cast<std::size_t>(at)] * scale, 1e-6)
                << to_string(s.layout) << " at " << at;
          }
    }
  }
}

// The same bits with 1, 2 and 3 threads, and from run to run, on shapes large enough to go parallel.
TEST(BatchNormDeterminism, SameBitsForEveryThreadCount) {
  const BatchNormShape shapes[] = {{64, 3, 1024, Layout::NCHW},
                                   {16, 64, 256, Layout::NCHW},
                                   {32, 48, 300, Layout::NHWC},
                                   {4096, 300, 1, Layout::NC},
                                   {1024, 70, 1, Layout::NC}};
  for (const auto& s : shapes) {
    const auto n = static_cast<std::size_t>(s.size());
    const auto C = static_cast<std::size_t>(s.channels);
    const auto x = random_normal(n, 3.0f, 2.0f, 51), dy = random_normal(n, 0.0f, 1.0f, 52);
    const auto gamma = random_normal(C, 1.0f, 0.3f, 53), beta = random_normal(C, 0.0f, 0.3f, 54);
    auto run = [&](int threads) {
      omp_set_num_threads(threads);
      std::vector<float> out(3 * n + 5 * C);
      float* y = out.data();
      float* dx = y + n;
      float* dx_relu = dx + n;
      float* stats = dx_relu + n;
      kernels::batchnorm_forward_training(s, x.data(), gamma.data(), beta.data(), 1e-3f, y, stats, stats + C,
                                          stats + 2 * C, FusedActivation::relu);
      kernels::batchnorm_backward(s, x.data(), dy.data(), gamma.data(), beta.data(), stats, stats + C, dx,
                                  stats + 3 * C, stats + 4 * C);
      kernels::batchnorm_backward(s, x.data(), dy.data(), gamma.data(), beta.data(), stats, stats + C, dx_relu, nullptr,
                                  nullptr, FusedActivation::relu);
      return out;
    };
    const auto one = run(1), two = run(2), three = run(3), again = run(2);
    omp_set_num_threads(2);
    EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0) << describe(s);
    EXPECT_EQ(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)), 0) << describe(s);
    EXPECT_EQ(std::memcmp(two.data(), again.data(), one.size() * sizeof(float)), 0) << describe(s);
  }
}

// The kernels copy the per-channel arrays into line-aligned scratch (vector loads of arrays at
// 16 bytes past a line split every load: 4096x1024 forward training ran 15-20% slower). Whatever
// the alignment of the caller's arrays and tensors, every kernel gives the same bits.
TEST(BatchNormDeterminism, SameBitsWhateverTheAlignmentOfTheArrays) {
  const BatchNormShape shapes[] = {{64, 1024, 1, Layout::NC}, {32, 300, 1, Layout::NC}, {8, 80, 9, Layout::NHWC}};
  for (const auto& s : shapes) {
    const auto n = static_cast<std::size_t>(s.size());
    const auto C = static_cast<std::size_t>(s.channels);
    const auto x = random_normal(n, 3.0f, 2.0f, 71), dy = random_normal(n, 0.0f, 1.0f, 72);
    const auto gamma = random_normal(C, 1.0f, 0.3f, 73), beta = random_normal(C, 0.0f, 0.3f, 74);
    const auto moving_mean = random_normal(C, 3.0f, 0.5f, 75), moving_variance = random_normal(C, 4.0f, 0.5f, 76);
    // Every input and output `shift` floats past the start of a 64-byte line.
    auto run = [&](std::size_t shift) {
      auto place = [shift](const std::vector<float>& v) {
        LineAligned placed(v.size(), 0.0f, shift);
        std::copy(v.begin(), v.end(), placed.data);
        return placed;
      };
      const LineAligned xs = place(x), dys = place(dy), gs = place(gamma), bs = place(beta);
      const LineAligned mms = place(moving_mean), mvs = place(moving_variance);
      LineAligned outs(4 * n + 7 * C, 0.0f, shift);
      float* y = outs.data;
      float* y_inference = y + n;
      float* dx = y_inference + n;
      float* dx_inference = dx + n;
      float* stats = dx_inference + n;
      const float *xp = xs.data, *dyp = dys.data, *g = gs.data, *b = bs.data;
      kernels::batchnorm_forward_training(s, xp, g, b, 1e-3f, y, stats, stats + C, stats + 2 * C);
      kernels::batchnorm_forward_inference(s, xp, mms.data, mvs.data, g, b, 1e-3f, y_inference,
                                           FusedActivation::relu);
      kernels::batchnorm_backward(s, xp, dyp, g, b, stats, stats + C, dx, stats + 3 * C, stats + 4 * C,
                                  FusedActivation::relu);
      kernels::batchnorm_backward_inference(s, xp, dyp, mms.data, mvs.data, g, b, 1e-3f, dx_inference, stats + 5 * C,
                                            stats + 6 * C);
      return std::vector<float>(y, y + 4 * n + 7 * C);
    };
    const auto aligned = run(0);
    for (const std::size_t shift : {1, 4, 7}) {
      const auto shifted = run(shift);
      EXPECT_EQ(std::memcmp(aligned.data(), shifted.data(), aligned.size() * sizeof(float)), 0)
          << describe(s) << ", arrays " << shift << " floats past a line";
    }
  }
}

// dx = nullptr (a model's first layer): the same dgamma and dbeta bits as with dx, for both
// backwards, every layout and the fused ReLU; all three outputs null is refused.
TEST(BatchNormBackward, ParameterGradientsAloneHaveTheSameBits) {
  const BatchNormShape shapes[] = {{8, 5, 49, Layout::NCHW}, {6, 37, 20, Layout::NHWC}, {32, 784, 1, Layout::NC}};
  for (const auto& s : shapes)
    for (const FusedActivation act : {FusedActivation::none, FusedActivation::relu})
      for (const bool training : {true, false}) {
        SCOPED_TRACE(describe(s) + (act == FusedActivation::relu ? " relu" : "") + (training ? " training" : " inference"));
        const auto n = static_cast<std::size_t>(s.size());
        const auto C = static_cast<std::size_t>(s.channels);
        const auto x = random_normal(n, 1.0f, 2.0f, 61), dy = random_normal(n, 0.0f, 1.0f, 62);
        const auto gamma = random_normal(C, 1.0f, 0.3f, 63), beta = random_normal(C, 0.0f, 0.3f, 64);
        std::vector<float> y(n), dx(n), mean(C), inv_std(C), variance(C);
        kernels::batchnorm_forward_training(s, x.data(), gamma.data(), beta.data(), 1e-3f, y.data(), mean.data(),
                                            inv_std.data(), variance.data(), act);
        auto run = [&](float* dx_or_null, float* dgamma, float* dbeta) {
          if (training)
            kernels::batchnorm_backward(s, x.data(), dy.data(), gamma.data(), beta.data(), mean.data(), inv_std.data(),
                                        dx_or_null, dgamma, dbeta, act);
          else
            kernels::batchnorm_backward_inference(s, x.data(), dy.data(), mean.data(), variance.data(), gamma.data(),
                                                  beta.data(), 1e-3f, dx_or_null, dgamma, dbeta, act);
        };
        std::vector<float> with_dx(2 * C), alone(2 * C, -1.0f), dbeta_only(C, -1.0f);
        run(dx.data(), with_dx.data(), with_dx.data() + C);
        run(nullptr, alone.data(), alone.data() + C);
        run(nullptr, nullptr, dbeta_only.data());
        EXPECT_EQ(std::memcmp(with_dx.data(), alone.data(), 2 * C * sizeof(float)), 0);
        EXPECT_EQ(std::memcmp(with_dx.data() + C, dbeta_only.data(), C * sizeof(float)), 0);
        EXPECT_THROW(run(nullptr, nullptr, nullptr), std::invalid_argument);
      }
}

TEST(BatchNormBadInput, KernelsNameTheArgument) {
  const std::vector<float> x(16, 1.0f);
  std::vector<float> y(16), mean(4), inv(4), var(4);
  using kernels::batchnorm_forward_training;
  expect_invalid(
      [&] {
        batchnorm_forward_training({0, 4, 1, Layout::NC}, x.data(), nullptr, nullptr, 1e-3f, y.data(), mean.data(),
                                   inv.data(), nullptr);
      },
      {"empty", "N=0"});
  expect_invalid(
      [&] {
        batchnorm_forward_training({4, -1, 1, Layout::NC}, x.data(), nullptr, nullptr, 1e-3f, y.data(), mean.data(),
                                   inv.data(), nullptr);
      },
      {"negative"});
  // A byte count past int64 (the product alone would wrap, and the loops would walk past x).
  expect_invalid(
      [&] {
        batchnorm_forward_training({std::int64_t{1} << 62, 4, 1, Layout::NC}, x.data(), nullptr, nullptr, 1e-3f,
                                   y.data(), mean.data(), inv.data(), nullptr);
      },
      {"overflows", "N=4611686018427387904", "C=4"});
  expect_invalid(
      [&] {
        kernels::batchnorm_forward_inference({std::int64_t{1} << 40, std::int64_t{1} << 21, 1, Layout::NC}, x.data(),
                                             mean.data(), var.data(), nullptr, nullptr, 1e-3f, y.data());
      },
      {"overflows"});
  for (float eps : {0.0f, -1e-3f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()})
    expect_invalid(
        [&] {
          batchnorm_forward_training({4, 4, 1, Layout::NC}, x.data(), nullptr, nullptr, eps, y.data(), mean.data(),
                                     inv.data(), nullptr);
        },
        {"epsilon"});
  expect_invalid(
      [&] {
        batchnorm_forward_training({4, 4, 1, Layout::NC}, nullptr, nullptr, nullptr, 1e-3f, y.data(), mean.data(),
                                   inv.data(), nullptr);
      },
      {"x is null"});
  expect_invalid(
      [&] {
        batchnorm_forward_training({4, 2, 2, Layout::NC}, x.data(), nullptr, nullptr, 1e-3f, y.data(), mean.data(),
                                   inv.data(), nullptr);
      },
      {"NC has no spatial extent"});
  expect_invalid(
      [&] {
        kernels::batchnorm_forward_inference({4, 4, 1, Layout::NC}, x.data(), mean.data(), nullptr, nullptr, nullptr,
                                             1e-3f, y.data());
      },
      {"variance is null"});
  for (float momentum : {-0.1f, 1.5f, std::numeric_limits<float>::quiet_NaN()}) {
    expect_invalid(
        [&] { kernels::update_moving_statistics_keras(4, mean.data(), var.data(), momentum, mean.data(), var.data()); },
        {"momentum"});
    expect_invalid(
        [&] {
          kernels::update_running_statistics_pytorch(4, 8, mean.data(), var.data(), momentum, 1, mean.data(),
                                                     var.data());
        },
        {"momentum"});
  }
  expect_invalid(
      [&] {
        kernels::update_running_statistics_pytorch(4, 1, mean.data(), var.data(), 0.1f, 1, mean.data(), var.data());
      },
      {"more than 1 value per channel"});
}

TEST(BatchNormBadInput, TensorFrontNamesShapes) {
  const Tensor x({8, 3}, Layout::NC);
  expect_invalid([&] { batch_norm_training(x, Tensor({4}), Tensor(), 1e-3f); }, {"gamma", "(4,)", "expected 3"});
  expect_invalid([&] { batch_norm_training(x, Tensor(), Tensor({2}), 1e-3f); }, {"beta", "expected 3"});
  expect_invalid([&] { batch_norm_training(Tensor({0, 3}, Layout::NC), Tensor(), Tensor(), 1e-3f); }, {"empty"});
  expect_invalid([&] { batch_norm_training(Tensor({2, 3, 4}), Tensor(), Tensor(), 1e-3f); }, {"(2, 3, 4)", "NCHW"});
  expect_invalid([&] { batch_normalization(x, Tensor({3}), Tensor({5}), Tensor(), Tensor(), 1e-3f); },
                 {"variance", "expected 3"});
  const auto out = batch_norm_training(x, Tensor::full({3}, 1.0f), Tensor({3}), 1e-3f);
  expect_invalid(
      [&] {
        batch_norm_backward(x, Tensor({8, 4}, Layout::NC), Tensor(), Tensor(), out.mean, out.inv_std);
      },
      {"dy", "(8, 4)", "(8, 3)"});
}

}  // namespace
}  // namespace bnlab::testing
