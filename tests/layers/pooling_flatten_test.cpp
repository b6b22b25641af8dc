#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "bnlab/layers/flatten.hpp"
#include "bnlab/layers/max_pool2d.hpp"
#include "layers/grad_check.hpp"

namespace bnlab {
namespace {

using testing::check_layer_gradients;

// Distinct values 0.05 apart in random order: no ties, and no finite-difference step of 1e-3
// can change a window's winner.
Tensor distinct_tensor(const Shape& shape, Layout layout, std::uint64_t seed) {
  Tensor t(shape, layout);
  std::vector<int> order(static_cast<std::size_t>(t.size()));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  for (std::int64_t i = 0; i < t.size(); ++i) t[i] = 0.05f * static_cast<float>(order[i]) - 1.0f;
  return t;
}

TEST(MaxPool2D, ForwardMatchesHandWorkedExample) {
  // One 4x4 single-channel image, 2x2 windows, stride 2.
  Rng rng(0);
  MaxPool2D pool;
  EXPECT_EQ(pool.build({4, 4, 1}, rng), (Shape{2, 2, 1}));
  const Tensor x = Tensor::from({1, 4, 4, 1},
                                {1, 2, 5, 3,   //
                                 4, 0, 1, 1,   //
                                 -1, -2, 7, 8, //
                                 -3, -4, 9, 6},
                                Layout::NHWC);
  const Tensor& y = pool.forward(x, false);
  EXPECT_EQ(y.layout(), Layout::NHWC);
  EXPECT_EQ((std::vector<float>(y.data(), y.data() + 4)), (std::vector<float>{4, 5, -1, 9}));
  const Tensor& dx = pool.backward(Tensor::from({1, 2, 2, 1}, {10, 20, 30, 40}, Layout::NHWC));
  EXPECT_EQ((std::vector<float>(dx.data(), dx.data() + 16)),
            (std::vector<float>{0, 0, 20, 0, 10, 0, 0, 0, 30, 0, 0, 0, 0, 0, 40, 0}));
}

TEST(MaxPool2D, SamePaddingIgnoresPaddingCells) {
  // 3x3 image of negative values, 2x2 windows, stride 2, "same": out 2x2, the padding after.
  // Zero padding would win every border window; Keras ignores the padding instead.
  Rng rng(0);
  MaxPool2D pool({2, 2}, std::nullopt, "same");
  EXPECT_EQ(pool.build({3, 3, 1}, rng), (Shape{2, 2, 1}));
  const Tensor x = Tensor::from({1, 3, 3, 1}, {-1, -2, -3, -4, -5, -6, -7, -8, -9}, Layout::NHWC);
  const Tensor& y = pool.forward(x, false);
  EXPECT_EQ((std::vector<float>(y.data(), y.data() + 4)), (std::vector<float>{-1, -3, -7, -9}));
}

TEST(MaxPool2D, GradientsMatchCentralDifferences) {
  struct Case {
    std::array<std::int64_t, 2> pool;
    std::optional<std::array<std::int64_t, 2>> strides;
    std::string padding;
  };
  for (const Case& c : {Case{{2, 2}, std::nullopt, "valid"}, Case{{3, 3}, std::array<std::int64_t, 2>{2, 2}, "same"},
                        Case{{3, 2}, std::array<std::int64_t, 2>{1, 1}, "valid"},
                        Case{{2, 2}, std::nullopt, "same"}}) {
    Rng rng(0);
    MaxPool2D pool(c.pool, c.strides, c.padding);
    pool.build({5, 6, 3}, rng);
    const Tensor x = distinct_tensor({2, 5, 6, 3}, Layout::NHWC, 31);
    testing::GradCheckOptions options;
    options.max_entries = 180;  // every input: winners, losers and overlapping windows
    EXPECT_EQ(check_layer_gradients(pool, x, 37, options), 180) << c.padding;
  }
}

TEST(MaxPool2D, BadArgumentsThrowNamingThem) {
  BNLAB_EXPECT_INVALID(MaxPool2D({0, 2}), "MaxPool2D", "pool_size", "(0, 2)");
  BNLAB_EXPECT_INVALID(MaxPool2D({2, 2}, std::array<std::int64_t, 2>{2, 0}), "MaxPool2D", "strides", "(2, 0)");
  BNLAB_EXPECT_INVALID(MaxPool2D({2, 2}, std::nullopt, "causal"), "MaxPool2D", "padding", "causal");
  Rng rng(0);
  MaxPool2D pool;
  BNLAB_EXPECT_INVALID(pool.build({10}, rng), "MaxPooling2D", "(None, 10)");
  BNLAB_EXPECT_INVALID(MaxPool2D({3, 3}).build({2, 2, 1}, rng), "MaxPooling2D", "(None, 2, 2, 1)");
}

// A model file can carry any input shape; fuzz_model found one whose element count overflowed.
TEST(Flatten, RefusesAShapeTooLargeToCount) {
  Rng rng(0);
  Flatten flatten;
  BNLAB_EXPECT_INVALID(flatten.build({125370095370242, 131072}, rng), "Flatten", "2^40");
  BNLAB_EXPECT_INVALID(flatten.build({1 << 20, 1 << 20, 2}, rng), "Flatten", "(None, 1048576, 1048576, 2)");
}

TEST(Flatten, IsAViewBothWays) {
  Rng rng(0);
  Flatten flatten;
  EXPECT_EQ(flatten.build({28, 28}, rng), (Shape{784}));
  const Tensor x = testing::random_tensor({3, 28, 28}, Layout::Plain, 1);
  const Tensor& y = flatten.forward(x, true);
  EXPECT_EQ(y.shape(), (Shape{3, 784}));
  EXPECT_EQ(y.layout(), Layout::NC);
  EXPECT_EQ(y.data(), x.data());
  const Tensor dy = testing::random_tensor({3, 784}, Layout::NC, 2);
  const Tensor& dx = flatten.backward(dy);
  EXPECT_EQ(dx.shape(), x.shape());
  EXPECT_EQ(dx.data(), dy.data());
}

TEST(Flatten, GradientIsTheIdentityAndKeepsNhwcLayout) {
  Rng rng(0);
  Flatten flatten;
  flatten.build({2, 3, 4}, rng);
  const Tensor x = testing::random_tensor({2, 2, 3, 4}, Layout::NHWC, 3);
  EXPECT_GT(check_layer_gradients(flatten, x, 4), 0);
  flatten.forward(x, true);
  EXPECT_EQ(flatten.backward(Tensor({2, 24}, Layout::NC)).layout(), Layout::NHWC);
}

TEST(Flatten, BadInputThrows) {
  Rng rng(0);
  Flatten flatten;
  flatten.set_name("flatten");
  BNLAB_EXPECT_INVALID(flatten.build({1, 2, 3, 4}, rng), "Flatten 'flatten'", "(None, 1, 2, 3, 4)");
  flatten.build({28, 28}, rng);
  BNLAB_EXPECT_INVALID(flatten.forward(Tensor({3, 784}, Layout::NC), false), "Flatten 'flatten'", "(3, 784)",
                       "(None, 28, 28)");
}

}  // namespace
}  // namespace bnlab
