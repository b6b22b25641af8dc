#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "bnlab/kernels/activations.hpp"
#include "bnlab/kernels/dropout.hpp"
#include "bnlab/layers/activation.hpp"
#include "bnlab/layers/dropout.hpp"
#include "layers/grad_check.hpp"

namespace bnlab {
namespace {

using testing::check_layer_gradients;
using testing::random_tensor;

class ActivationGradient : public ::testing::TestWithParam<std::string> {};

TEST_P(ActivationGradient, MatchesCentralDifferencesOnNcAndNhwc) {
  Rng rng(0);
  Activation nc(GetParam());
  nc.build({9}, rng);
  EXPECT_GT(check_layer_gradients(nc, random_tensor({4, 9}, Layout::NC, 1, -3.0f, 3.0f), 2), 0);
  Activation nhwc(GetParam());
  nhwc.build({3, 2, 5}, rng);
  const Tensor x = random_tensor({2, 3, 2, 5}, Layout::NHWC, 3, -3.0f, 3.0f);
  EXPECT_EQ(nhwc.forward(x, true).layout(), Layout::NHWC);
  EXPECT_GT(check_layer_gradients(nhwc, x, 4), 0);
}

INSTANTIATE_TEST_SUITE_P(Names, ActivationGradient,
                         ::testing::Values("linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"));

TEST(Activation, ValuesAtKnownPoints) {
  const float x[] = {-2.0f, -0.5f, 0.0f, 0.5f, 2.0f};
  float y[5];
  kernels::relu_forward(5, x, y);
  EXPECT_EQ((std::vector<float>(y, y + 5)), (std::vector<float>{0, 0, 0, 0.5f, 2}));
  kernels::leaky_relu_forward(5, 0.3f, x, y);
  EXPECT_FLOAT_EQ(y[0], -0.6f);
  EXPECT_FLOAT_EQ(y[4], 2.0f);
  kernels::sigmoid_forward(5, x, y);
  EXPECT_FLOAT_EQ(y[2], 0.5f);
  EXPECT_NEAR(y[4], 1.0 / (1.0 + std::exp(-2.0)), 1e-7);
  // Both tails stay finite and exact in the limit.
  const float extremes[] = {-1000.0f, 1000.0f};
  kernels::sigmoid_forward(2, extremes, y);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 1.0f);
}

TEST(Activation, SoftmaxIsStableForLargeLogits) {
  const float x[] = {1000.0f, 1001.0f, 1002.0f, -1000.0f, 0.0f, 1000.0f};
  float y[6];
  kernels::softmax_forward(2, 3, x, y);
  const double e0 = std::exp(-2.0), e1 = std::exp(-1.0), sum = e0 + e1 + 1.0;
  EXPECT_NEAR(y[0], e0 / sum, 1e-7);
  EXPECT_NEAR(y[2], 1.0 / sum, 1e-7);
  EXPECT_EQ(y[3], 0.0f);
  EXPECT_NEAR(y[5], 1.0f, 1e-7);
  for (float v : y) EXPECT_TRUE(std::isfinite(v));
}

TEST(Activation, SoftmaxHookExposesInputAndBackwardFromLogitsPassesThrough) {
  Rng rng(0);
  Activation softmax("softmax");
  softmax.build({4}, rng);
  const Tensor x = random_tensor({2, 4}, Layout::NC, 1);
  softmax.forward(x, true);
  ASSERT_NE(softmax.softmax_logits(), nullptr);
  EXPECT_EQ(softmax.softmax_logits()->data(), x.data());
  const Tensor dlogits = random_tensor({2, 4}, Layout::NC, 2);
  EXPECT_EQ(softmax.backward_from_logits(dlogits).data(), dlogits.data());
  Activation relu("relu");
  EXPECT_EQ(relu.softmax_logits(), nullptr);
}

TEST(LeakyReLU, KerasDefaultAlphaAndGradient) {
  LeakyReLU leaky;
  EXPECT_EQ(leaky.type_name(), "LeakyReLU");
  EXPECT_FLOAT_EQ(leaky.alpha(), 0.3f);
  EXPECT_EQ(leaky.config().at("alpha"), "0.3");
  Rng rng(0);
  LeakyReLU custom(0.1f);
  custom.build({6}, rng);
  const Tensor x = Tensor::from({1, 6}, {-2, -1, -0.5f, 0.5f, 1, 2}, Layout::NC);
  const Tensor& y = custom.forward(x, true);
  EXPECT_FLOAT_EQ(y[0], -0.2f);
  EXPECT_FLOAT_EQ(y[5], 2.0f);
  EXPECT_GT(check_layer_gradients(custom, x, 3), 0);
  BNLAB_EXPECT_INVALID(LeakyReLU(std::numeric_limits<float>::quiet_NaN()), "LeakyReLU", "alpha", "nan");
  BNLAB_EXPECT_INVALID(Activation("gelu"), "Activation", "activation", "gelu");
}

TEST(Dropout, InferenceAndRateZeroAreTheIdentityWithoutCopy) {
  Rng rng(0);
  Dropout dropout(0.5f, 7);
  dropout.build({10}, rng);
  const Tensor x = random_tensor({4, 10}, Layout::NC, 1);
  EXPECT_EQ(dropout.forward(x, false).data(), x.data());
  const Tensor dy = random_tensor({4, 10}, Layout::NC, 2);
  EXPECT_EQ(dropout.backward(dy).data(), dy.data());
  Dropout none(0.0f);
  none.build({10}, rng);
  EXPECT_EQ(none.forward(x, true).data(), x.data());
}

TEST(Dropout, GradientWithTheForwardsMaskMatchesCentralDifferences) {
  Rng rng(0);
  Dropout dropout(0.4f, 99);
  dropout.build({3, 4}, rng);
  const Tensor x = random_tensor({5, 3, 4}, Layout::Plain, 1);
  const Tensor y = dropout.forward(x, true).clone();
  const Tensor mask = dropout.mask().clone();
  const float scale = 1.0f / 0.6f;
  for (std::int64_t i = 0; i < mask.size(); ++i) {
    EXPECT_TRUE(mask[i] == 0.0f || mask[i] == scale) << mask[i];
    EXPECT_FLOAT_EQ(y[i], x[i] * mask[i]);
  }
  // With the mask held fixed, y is linear in x: L(x) = sum(x * mask * r), checked through the
  // kernel's forward at x +- h.
  const Tensor r = random_tensor({5, 3, 4}, Layout::Plain, 2);
  const Tensor dx = dropout.backward(r).clone();
  Tensor moved = x.clone(), out({5, 3, 4});
  for (std::int64_t i = 0; i < x.size(); ++i) {
    const float h = 1e-2f;
    moved[i] = x[i] + h;
    kernels::dropout_forward(x.size(), moved.data(), mask.data(), out.data());
    const double plus = testing::weighted_sum(out, r);
    moved[i] = x[i] - h;
    kernels::dropout_forward(x.size(), moved.data(), mask.data(), out.data());
    const double minus = testing::weighted_sum(out, r);
    moved[i] = x[i];
    EXPECT_NEAR(dx[i], (plus - minus) / (2.0 * h), 1e-3) << i;
  }
}

TEST(Dropout, MaskStatisticsFreshPerStepAndSeeded) {
  Rng rng(0);
  Dropout a(0.3f, 5), b(0.3f, 5);
  a.build({1000}, rng);
  b.build({1000}, rng);
  const Tensor x = Tensor::full({10, 1000}, 1.0f, Layout::NC);
  const Tensor first = a.forward(x, true).clone();
  const Tensor second = a.forward(x, true).clone();
  std::int64_t dropped = 0, differ = 0;
  double sum = 0.0;
  for (std::int64_t i = 0; i < x.size(); ++i) {
    dropped += first[i] == 0.0f;
    differ += first[i] != second[i];
    sum += first[i];
  }
  EXPECT_NEAR(static_cast<double>(dropped) / 10000.0, 0.3, 0.015);
  EXPECT_NEAR(sum / 10000.0, 1.0, 0.03);  // inverted dropout keeps the expectation
  EXPECT_GT(differ, 3000);                // a new mask every step
  // The same seed gives the same sequence of masks.
  EXPECT_EQ(std::memcmp(b.forward(x, true).data(), first.data(), first.size() * sizeof(float)), 0);
  // Without a seed, build's rng decides.
  Rng r1(8), r2(8);
  Dropout c(0.5f), d(0.5f);
  c.build({1000}, r1);
  d.build({1000}, r2);
  EXPECT_EQ(c.seed(), d.seed());
}

TEST(Dropout, MaskIsTheSameForAnyThreadCount) {
  std::vector<float> one(1 << 17), two(1 << 17);
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  kernels::dropout_mask(static_cast<std::int64_t>(one.size()), 0.25f, 42, 3, one.data());
  omp_set_num_threads(2);
  kernels::dropout_mask(static_cast<std::int64_t>(two.size()), 0.25f, 42, 3, two.data());
  omp_set_num_threads(before);
  EXPECT_EQ(one, two);
}

TEST(Dropout, BadArgumentsThrowNamingThem) {
  BNLAB_EXPECT_INVALID(Dropout(1.0f), "Dropout", "rate", "1");
  BNLAB_EXPECT_INVALID(Dropout(-0.1f), "Dropout", "rate", "-0.1");
  BNLAB_EXPECT_INVALID(Dropout(std::numeric_limits<float>::quiet_NaN()), "Dropout", "rate", "nan");
  Rng rng(0);
  Dropout dropout(0.5f);
  dropout.build({4}, rng);
  BNLAB_EXPECT_INVALID(dropout.forward(Tensor({2, 5}, Layout::NC), true), "Dropout", "(2, 5)", "(None, 4)");
}

}  // namespace
}  // namespace bnlab
