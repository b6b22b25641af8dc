#include "bnlab/data/synthetic.hpp"

#include <array>
#include <cmath>
#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "data/random.hpp"

namespace bnlab::data {
namespace {

TEST(Random, UniformBelowIsUnbiased) {
  std::mt19937_64 gen(1);
  std::array<int, 5> counts{};
  for (int i = 0; i < 50000; ++i) ++counts.at(detail::uniform_below(gen, 5));
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);  // about 4.5 standard deviations
  EXPECT_EQ(detail::uniform_below(gen, 1), 0u);
}

TEST(Random, NormalHasUnitMomentsAndTheGaussianShape) {
  std::mt19937_64 gen(2);
  detail::NormalSource normal;
  constexpr int n = 200000;
  double sum = 0, squares = 0;
  int within_one = 0, within_two = 0;
  for (int i = 0; i < n; ++i) {
    const double z = normal(gen);
    ASSERT_TRUE(std::isfinite(z));
    sum += z;
    squares += z * z;
    within_one += std::abs(z) < 1;
    within_two += std::abs(z) < 2;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(squares / n, 1.0, 0.015);
  EXPECT_NEAR(within_one / double(n), 0.682689, 0.005);
  EXPECT_NEAR(within_two / double(n), 0.954500, 0.003);
}

TEST(WorksheetImages, ShapeAndDeterminism) {
  const Tensor a = worksheet_images(678);
  EXPECT_EQ(a.shape(), (std::vector<std::int64_t>{30, 32, 32, 1}));
  EXPECT_EQ(a.layout(), Layout::NHWC);
  const Tensor b = worksheet_images(678);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(float) * a.size()), 0);
  const Tensor c = worksheet_images(679);
  EXPECT_NE(std::memcmp(a.data(), c.data(), sizeof(float) * a.size()), 0);
  EXPECT_EQ(worksheet_images(5, 3).dim(0), 3);
  EXPECT_THROW(worksheet_images(5, 0), std::invalid_argument);
}

// Each image is noise * s + o with integer s in 0..4 and o in 0..59: its standard deviation
// is close to s, and an s = 0 image is the constant o.
TEST(WorksheetImages, EachImageIsScaledNoiseAroundAnIntegerOffset) {
  const Tensor images = worksheet_images(678, 300);
  std::array<int, 5> scale_counts{};
  for (std::int64_t i = 0; i < images.dim(0); ++i) {
    const float* image = images.data() + i * 1024;
    double sum = 0, squares = 0;
    for (int p = 0; p < 1024; ++p) sum += image[p];
    const double mean = sum / 1024;
    for (int p = 0; p < 1024; ++p) squares += (image[p] - mean) * (image[p] - mean);
    const double sd = std::sqrt(squares / 1024);
    const double scale = std::round(sd);
    ASSERT_GE(scale, 0);
    ASSERT_LE(scale, 4);
    EXPECT_NEAR(sd, scale, 0.15 * std::max(scale, 1.0)) << "image " << i;
    ++scale_counts[static_cast<std::size_t>(scale)];
    if (scale == 0) {
      EXPECT_EQ(sd, 0.0);
      EXPECT_EQ(image[0], std::round(image[0]));
      EXPECT_GE(image[0], 0.0f);
      EXPECT_LE(image[0], 59.0f);
    } else {
      EXPECT_GT(mean, -1.0);
      EXPECT_LT(mean, 60.0);
    }
  }
  for (int c : scale_counts) EXPECT_GT(c, 30);  // each scale about 60 times in 300
}

}  // namespace
}  // namespace bnlab::data
