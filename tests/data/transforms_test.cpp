#include "bnlab/data/transforms.hpp"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "bnlab/data/synthetic.hpp"

namespace bnlab::data {
namespace {

void expect_values(const Tensor& t, const std::vector<double>& expected) {
  ASSERT_EQ(t.size(), static_cast<std::int64_t>(expected.size()));
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(t[static_cast<std::int64_t>(i)], expected[i], 1e-6) << "index " << i;
}

// Feature 0 varies (1, 3, 5); feature 1 is constant (10).
Tensor two_features() { return Tensor::from({3, 2}, {1, 10, 3, 10, 5, 10}, Layout::NC); }

TEST(Transforms, MinMaxPerFeatureMapsConstantFeatureToZero) {
  const Tensor y = min_max_scale(two_features());
  EXPECT_EQ(y.shape(), (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(y.layout(), Layout::NC);
  expect_values(y, {0.0, 0.0, 0.5, 0.0, 1.0, 0.0});
  EXPECT_EQ(y[1], 0.0f);  // exactly 0, not NaN
}

TEST(Transforms, MinMaxGlobal) {
  // min 1, max 10: (x - 1) / 9
  expect_values(min_max_scale_global(two_features()), {0.0, 1.0, 2.0 / 9, 1.0, 4.0 / 9, 1.0});
}

TEST(Transforms, StandardizePerFeature) {
  // Feature 0: mean 3, population variance 8/3, so (x - 3) / sqrt(8/3) = -sqrt(1.5), 0, sqrt(1.5).
  const double r = std::sqrt(1.5);
  expect_values(standardize(two_features()), {-r, 0.0, 0.0, 0.0, r, 0.0});
}

TEST(Transforms, StandardizeGlobal) {
  // Values 1, 10, 3, 10, 5, 10: mean 6.5, squared deviations sum to 81.5, variance 81.5 / 6.
  const double sd = std::sqrt(81.5 / 6);
  expect_values(standardize_global(two_features()),
                {-5.5 / sd, 3.5 / sd, -3.5 / sd, 3.5 / sd, -1.5 / sd, 3.5 / sd});
}

TEST(Transforms, ConstantTensorBecomesZeros) {
  const Tensor c = Tensor::full({4, 3}, 7.25f);
  for (const Tensor& y : {min_max_scale(c), min_max_scale_global(c), standardize(c), standardize_global(c)})
    for (std::int64_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], 0.0f);
  // A single example: every feature is constant over the batch.
  const Tensor one = Tensor::from({1, 3}, {1, 2, 3});
  const Tensor y = standardize(one);
  for (std::int64_t i = 0; i < 3; ++i) EXPECT_EQ(y[i], 0.0f);
}

TEST(Transforms, FeaturesAreAllPositionsAfterTheBatchAxis) {
  // (2, 1, 1, 2) NHWC: two features (the two channels), two examples.
  const Tensor x = Tensor::from({2, 1, 1, 2}, {0, 100, 4, 300}, Layout::NHWC);
  const Tensor y = min_max_scale(x);
  EXPECT_EQ(y.layout(), Layout::NHWC);
  EXPECT_EQ(y.shape(), x.shape());
  expect_values(y, {0, 0, 1, 1});
  expect_values(standardize(x), {-1, -1, 1, 1});
  // The input is left as it was.
  EXPECT_EQ(x[3], 300.0f);
}

TEST(Transforms, RefusesEmptyOrUndefined) {
  EXPECT_THROW(min_max_scale(Tensor()), std::invalid_argument);
  EXPECT_THROW(standardize(Tensor({0, 3})), std::invalid_argument);
  EXPECT_THROW(standardize_global(Tensor({0})), std::invalid_argument);
  EXPECT_THROW(summarize(Tensor()), std::invalid_argument);
}

TEST(Summary, HandComputed) {
  const Summary s = summarize(Tensor::from({2, 2}, {1, 2, 3, 4}));
  EXPECT_EQ(s.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(s.max, 4.0);
  EXPECT_EQ(s.min, 1.0);
  EXPECT_EQ(s.mean, 2.5);
  EXPECT_EQ(s.variance, 1.25);
}

TEST(Summary, VarianceIsStableWithALargeOffset) {
  // 1e7 + {0, 1, 2, 3}: exact in float; E[x^2] - E[x]^2 in float would lose every digit.
  const Summary s = summarize(Tensor::from({4}, {1e7f, 1e7f + 1, 1e7f + 2, 1e7f + 3}));
  EXPECT_EQ(s.mean, 1e7 + 1.5);
  EXPECT_EQ(s.variance, 1.25);
}

TEST(Summary, FormatsLikeTheSeed) {
  Summary s;
  s.shape = {30, 32, 32, 1};
  s.max = 63.5;
  s.min = -4.0;
  s.mean = 0.1;
  s.variance = 1e-20;
  EXPECT_EQ(format_summary(s),
            "Data Shape: (30, 32, 32, 1)\nData Max: 63.5\nData Min: -4.0\nData Mean: 0.1\nData Variance: 1e-20\n");
  s.shape = {5};
  EXPECT_EQ(format_summary(s).substr(0, 17), "Data Shape: (5,)\n");
}

// The seed's cases 1 and 2 on its worksheet images.
TEST(Transforms, WorksheetCases) {
  const Tensor images = worksheet_images(678);
  const Summary scaled = summarize(min_max_scale(images));
  EXPECT_EQ(scaled.shape, (std::vector<std::int64_t>{30, 32, 32, 1}));
  EXPECT_EQ(scaled.min, 0.0);
  EXPECT_EQ(scaled.max, 1.0);

  const Tensor standardized = standardize(images);
  // Per pixel over the 30 images: mean 0 and variance 1.
  for (std::int64_t p = 0; p < std::int64_t{32} * 32; p += 97) {
    double sum = 0, squares = 0;
    for (std::int64_t i = 0; i < 30; ++i) sum += standardized[i * 1024 + p];
    for (std::int64_t i = 0; i < 30; ++i) {
      const double d = standardized[i * 1024 + p] - sum / 30;
      squares += d * d;
    }
    EXPECT_NEAR(sum / 30, 0.0, 1e-6) << "pixel " << p;
    EXPECT_NEAR(squares / 30, 1.0, 1e-5) << "pixel " << p;
  }
  const Summary global = summarize(standardize_global(images));
  EXPECT_NEAR(global.mean, 0.0, 1e-6);
  EXPECT_NEAR(global.variance, 1.0, 1e-5);
}

}  // namespace
}  // namespace bnlab::data
