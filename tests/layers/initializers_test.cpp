#include <gtest/gtest.h>

#include <cmath>

#include "bnlab/layers/initializers.hpp"
#include "layers/grad_check.hpp"

namespace bnlab {
namespace {

struct Moments {
  double mean = 0.0, variance = 0.0, max_abs = 0.0;
};

Moments moments(const Tensor& t) {
  Moments m;
  for (std::int64_t i = 0; i < t.size(); ++i) m.mean += t[i];
  m.mean /= static_cast<double>(t.size());
  for (std::int64_t i = 0; i < t.size(); ++i) {
    m.variance += std::pow(t[i] - m.mean, 2);
    m.max_abs = std::max(m.max_abs, std::abs(static_cast<double>(t[i])));
  }
  m.variance /= static_cast<double>(t.size());
  return m;
}

TEST(Initializers, GlorotUniformLimitMeanAndVariance) {
  Rng rng(1);
  Tensor w({784, 300});
  initializers::initialize("glorot_uniform", w, 784, 300, rng);
  const double limit = std::sqrt(6.0 / (784.0 + 300.0));
  const Moments m = moments(w);
  EXPECT_LE(m.max_abs, limit);
  EXPECT_GT(m.max_abs, 0.999 * limit);
  EXPECT_NEAR(m.mean, 0.0, 1e-3);
  EXPECT_NEAR(m.variance, limit * limit / 3.0, 0.01 * limit * limit / 3.0);  // U(-l, l): l^2 / 3
}

TEST(Initializers, HeNormalTruncatedAtTwoStddevWithVarianceTwoOverFanIn) {
  Rng rng(2);
  Tensor w({784, 300});
  initializers::initialize("he_normal", w, 784, 300, rng);
  const double stddev = std::sqrt(2.0 / 784.0) / 0.87962566103423978;
  const Moments m = moments(w);
  EXPECT_LE(m.max_abs, 2.0 * stddev * (1 + 1e-6));
  EXPECT_GT(m.max_abs, 1.99 * stddev);
  EXPECT_NEAR(m.mean, 0.0, 1e-4);
  EXPECT_NEAR(m.variance, 2.0 / 784.0, 0.01 * 2.0 / 784.0);
}

TEST(Initializers, ZerosOnesAndDeterminism) {
  Rng rng(3);
  Tensor t({10});
  initializers::initialize("ones", t, 1, 1, rng);
  for (std::int64_t i = 0; i < 10; ++i) EXPECT_EQ(t[i], 1.0f);
  initializers::initialize("zeros", t, 1, 1, rng);
  for (std::int64_t i = 0; i < 10; ++i) EXPECT_EQ(t[i], 0.0f);
  Rng a(9), b(9);
  Tensor x({100}), y({100});
  initializers::he_normal(x, 10, a);
  initializers::he_normal(y, 10, b);
  for (std::int64_t i = 0; i < 100; ++i) ASSERT_EQ(x[i], y[i]);
}

TEST(Initializers, StandardNormalAndUniformDraws) {
  Rng rng(4);
  double sum = 0.0, sum_sq = 0.0;
  float lo = 1.0f, hi = 0.0f;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double z = initializers::standard_normal(rng);
    sum += z;
    sum_sq += z * z;
    const float u = initializers::uniform01(rng);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum_sq / n, 1.0, 0.01);
  EXPECT_GE(lo, 0.0f);
  EXPECT_LT(hi, 1.0f);
  EXPECT_LT(lo, 1e-4f);
  EXPECT_GT(hi, 1.0f - 1e-4f);
}

TEST(Initializers, UnknownNamesAndBadFansThrow) {
  Rng rng(5);
  Tensor t({4});
  BNLAB_EXPECT_INVALID(initializers::initialize("lecun_normal", t, 2, 2, rng), "lecun_normal", "glorot_uniform");
  BNLAB_EXPECT_INVALID(initializers::check("orthogonal", "Dense", "kernel_initializer"), "Dense", "kernel_initializer",
                       "orthogonal");
  BNLAB_EXPECT_INVALID(initializers::glorot_uniform(t, 0, 2, rng), "glorot_uniform", "fan_in", "0");
  EXPECT_TRUE(initializers::is_known("he_normal"));
  EXPECT_FALSE(initializers::is_known("he_uniform"));
}

}  // namespace
}  // namespace bnlab
