#include "bnlab/layers/batch_normalization.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "bnlab/layers/factory.hpp"
#include "layers/grad_check.hpp"

namespace bnlab {
namespace {

using testing::check_layer_gradients;
using testing::random_tensor;

// gamma and beta away from their 1/0 initial values, so their gradients are really exercised.
void randomize_affine(BatchNormalization& bn, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(0.5f, 1.5f);
  if (bn.options().scale)
    for (std::int64_t i = 0; i < bn.gamma().value.size(); ++i) bn.gamma().value[i] = dist(gen);
  if (bn.options().center)
    for (std::int64_t i = 0; i < bn.beta().value.size(); ++i) bn.beta().value[i] = dist(gen) - 1.0f;
}

// Per-channel biased mean and variance in double; x viewed as rows of `channels` (channels last).
void channel_moments(const Tensor& x, std::int64_t channels, std::vector<double>& mean, std::vector<double>& var) {
  const std::int64_t rows = x.size() / channels;
  mean.assign(channels, 0.0);
  var.assign(channels, 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < channels; ++c) mean[c] += x[r * channels + c];
  for (auto& m : mean) m /= static_cast<double>(rows);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < channels; ++c) var[c] += std::pow(x[r * channels + c] - mean[c], 2);
  for (auto& v : var) v /= static_cast<double>(rows);
}

TEST(BatchNormalization, TrainingGradientsNc) {
  Rng rng(0);
  BatchNormalization bn;
  bn.build({5}, rng);
  randomize_affine(bn, 1);
  testing::GradCheckOptions options;
  options.step = 2e-3;
  EXPECT_GT(check_layer_gradients(bn, random_tensor({6, 5}, Layout::NC, 2, -2.0f, 2.0f), 3, options), 0);
}

TEST(BatchNormalization, TrainingGradientsNhwc) {
  Rng rng(0);
  BatchNormalization bn;
  bn.build({3, 3, 4}, rng);
  EXPECT_EQ(bn.kernel_shape(2).layout, Layout::NHWC);
  EXPECT_EQ(bn.kernel_shape(2).spatial, 9);
  randomize_affine(bn, 4);
  testing::GradCheckOptions options;
  options.step = 2e-3;
  EXPECT_GT(check_layer_gradients(bn, random_tensor({2, 3, 3, 4}, Layout::NHWC, 5, -2.0f, 2.0f), 6, options), 0);
}

TEST(BatchNormalization, TrainingGradientsNchwAndWithoutCenterOrScale) {
  Rng rng(0);
  BatchNormalizationOptions o;
  o.axis = 1;
  o.center = false;
  BatchNormalization bn(o);
  bn.build({3, 2, 4}, rng);
  EXPECT_EQ(bn.kernel_shape(2).layout, Layout::NCHW);
  EXPECT_EQ(bn.kernel_shape(2).channels, 3);
  ASSERT_EQ(bn.parameters().size(), 3u);  // gamma, moving_mean, moving_variance
  randomize_affine(bn, 7);
  testing::GradCheckOptions options;
  options.step = 2e-3;
  EXPECT_GT(check_layer_gradients(bn, random_tensor({3, 3, 2, 4}, Layout::NCHW, 8, -2.0f, 2.0f), 9, options), 0);
  BatchNormalizationOptions plain;
  plain.scale = false;
  BatchNormalization no_gamma(plain);
  no_gamma.build({4}, rng);
  EXPECT_GT(check_layer_gradients(no_gamma, random_tensor({5, 4}, Layout::NC, 10, -2.0f, 2.0f), 11, options), 0);
}

TEST(BatchNormalization, InferenceBackwardHoldsStatisticsConstant) {
  Rng rng(0);
  BatchNormalization bn;
  bn.build({4}, rng);
  randomize_affine(bn, 12);
  for (int c = 0; c < 4; ++c) {
    bn.moving_mean().value[c] = 0.1f * static_cast<float>(c);
    bn.moving_variance().value[c] = 0.5f + 0.25f * static_cast<float>(c);
  }
  testing::GradCheckOptions options;
  options.training = false;
  EXPECT_GT(check_layer_gradients(bn, random_tensor({3, 4}, Layout::NC, 13), 14, options), 0);
}

TEST(BatchNormalization, SeedCheckOnNormalData) {
  // Seed 000: x ~ N(5, 2) of shape (100, 2); the training output has mean ~0 and variance ~1.
  Rng rng(0);
  BatchNormalization bn;
  bn.build({2}, rng);
  Tensor x({100, 2}, Layout::NC);
  std::mt19937_64 gen(42);
  std::normal_distribution<float> normal(5.0f, 2.0f);
  for (std::int64_t i = 0; i < x.size(); ++i) x[i] = normal(gen);
  std::vector<double> mean, var, x_mean, x_var;
  channel_moments(x, 2, x_mean, x_var);
  channel_moments(bn.forward(x, true), 2, mean, var);
  for (int c = 0; c < 2; ++c) {
    EXPECT_NEAR(mean[c], 0.0, 1e-5);
    EXPECT_NEAR(var[c], 1.0, 1e-3);
    // Exactly var / (var + epsilon) with Keras's epsilon 1e-3 (2.5e-4 below 1 at var ~ 4).
    EXPECT_NEAR(var[c], x_var[c] / (x_var[c] + 1e-3), 1e-6);
  }
  // At a variance of 0.01 epsilon takes 9% off: the training forward uses the layer's epsilon.
  for (std::int64_t i = 0; i < x.size(); ++i) x[i] *= 0.05f;
  channel_moments(x, 2, x_mean, x_var);
  channel_moments(bn.forward(x, true), 2, mean, var);
  for (int c = 0; c < 2; ++c) EXPECT_NEAR(var[c], x_var[c] / (x_var[c] + 1e-3), 1e-5);
}

TEST(BatchNormalization, KerasMovingStatistics) {
  Rng rng(0);
  BatchNormalization bn;  // momentum 0.99, epsilon 1e-3
  bn.build({3}, rng);
  const Tensor x1 = random_tensor({8, 3}, Layout::NC, 20, 0.0f, 4.0f);
  const Tensor x2 = random_tensor({8, 3}, Layout::NC, 21, -1.0f, 1.0f);
  std::vector<double> m1, v1, m2, v2;
  channel_moments(x1, 3, m1, v1);
  channel_moments(x2, 3, m2, v2);
  bn.forward(x1, true);
  bn.forward(x2, true);
  for (int c = 0; c < 3; ++c) {
    // From moving_mean = 0, moving_variance = 1, with the biased batch variance.
    const double mean = (0.0 * 0.99 + m1[c] * 0.01) * 0.99 + m2[c] * 0.01;
    const double var = (1.0 * 0.99 + v1[c] * 0.01) * 0.99 + v2[c] * 0.01;
    EXPECT_NEAR(bn.moving_mean().value[c], mean, 1e-6);
    EXPECT_NEAR(bn.moving_variance().value[c], var, 1e-6);
  }
  // Inference normalizes with the moving statistics, and leaves them alone.
  const Tensor& y = bn.forward(x1, false);
  for (int n = 0; n < 8; ++n)
    for (int c = 0; c < 3; ++c) {
      const double expected = (x1[n * 3 + c] - bn.moving_mean().value[c]) /
                              std::sqrt(static_cast<double>(bn.moving_variance().value[c]) + 1e-3);
      EXPECT_NEAR(y[n * 3 + c], expected, 1e-5);
    }
  EXPECT_NEAR(bn.moving_mean().value[0], (m1[0] * 0.01) * 0.99 + m2[0] * 0.01, 1e-6);
}

TEST(BatchNormalization, PyTorchRunningStatisticsWithMomentum) {
  Rng rng(0);
  BatchNormalization bn = BatchNorm1d(3);  // eps 1e-5, momentum 0.1
  bn.build({3}, rng);
  const Tensor x = random_tensor({5, 3}, Layout::NC, 30, 0.0f, 4.0f);
  std::vector<double> mean, var;
  channel_moments(x, 3, mean, var);
  bn.forward(x, true);
  EXPECT_EQ(bn.num_batches_tracked(), 1);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(bn.moving_mean().value[c], 0.1 * mean[c], 1e-6);
    // Unbiased: m / (m - 1) = 5 / 4.
    EXPECT_NEAR(bn.moving_variance().value[c], 0.9 + 0.1 * var[c] * 5.0 / 4.0, 1e-6);
  }
  // Training output uses eps = 1e-5.
  const Tensor& y = bn.forward(x, true);
  EXPECT_NEAR(y[0], (x[0] - mean[0]) / std::sqrt(var[0] + 1e-5), 1e-5);
}

// PyTorch's track_running_stats=False: no running statistics (no buffers, nothing
// non-trainable), and inference normalizes with the batch's statistics exactly as training
// does, so its output and its backward are training's; nothing is counted or updated.
TEST(BatchNormalization, PyTorchWithoutRunningStatisticsUsesTheBatchInInference) {
  Rng rng(0);
  BatchNormalization bn = BatchNorm1d(3, 1e-5f, 0.1f, true, false);
  bn.build({3}, rng);
  randomize_affine(bn, 7);
  ASSERT_EQ(bn.parameters().size(), 2u);
  EXPECT_EQ(bn.parameters()[0]->name, "gamma");
  EXPECT_EQ(bn.parameters()[1]->name, "beta");
  const Tensor x = random_tensor({6, 3}, Layout::NC, 31, 2.0f, 3.0f);
  std::vector<double> mean, var;
  channel_moments(x, 3, mean, var);
  const Tensor y_inference = bn.forward(x, false);  // a copy: the layer reuses its buffer
  for (std::int64_t i = 0; i < x.size(); ++i) {
    const std::int64_t c = i % 3;
    const double expected = bn.gamma().value[c] * (x[i] - mean[c]) / std::sqrt(var[c] + 1e-5) + bn.beta().value[c];
    EXPECT_NEAR(y_inference[i], expected, 1e-5) << i;
  }
  const Tensor dy = random_tensor({6, 3}, Layout::NC, 32, 0.0f, 1.0f);
  const Tensor dx_inference = bn.backward(dy);
  const std::vector<float> dgamma_inference(bn.gamma().grad.data(), bn.gamma().grad.data() + 3);
  const Tensor& y_training = bn.forward(x, true);
  for (std::int64_t i = 0; i < x.size(); ++i) EXPECT_EQ(y_training[i], y_inference[i]) << i;
  const Tensor& dx_training = bn.backward(dy);
  for (std::int64_t i = 0; i < x.size(); ++i) EXPECT_EQ(dx_training[i], dx_inference[i]) << i;
  for (int c = 0; c < 3; ++c) EXPECT_EQ(bn.gamma().grad[c], dgamma_inference[static_cast<std::size_t>(c)]);
  // The full batch-statistics gradient in inference too (a frozen-statistics one would differ).
  testing::GradCheckOptions inference;
  inference.training = false;
  inference.step = 2e-3;
  EXPECT_GT(check_layer_gradients(bn, x, 33, inference), 0);
  EXPECT_EQ(bn.num_batches_tracked(), 0);
  BNLAB_EXPECT_INVALID(bn.forward(Tensor({1, 3}, Layout::NC), false), "more than 1 value per channel",
                       "track_running_stats");
  const LayerConfig config = bn.config();
  EXPECT_EQ(config.at("track_running_stats"), "false");
  EXPECT_EQ(config.count("num_batches_tracked"), 0u);
  auto copy = make_layer("BatchNormalization", config);
  copy->build({3}, rng);
  EXPECT_EQ(copy->parameters().size(), 2u);
  EXPECT_FALSE(dynamic_cast<BatchNormalization&>(*copy).options().track_running_stats);
  BatchNormalizationOptions keras;
  keras.track_running_stats = false;
  BNLAB_EXPECT_INVALID(BatchNormalization{keras}, "track_running_stats", "PyTorch convention");
  BatchNormalization images = BatchNorm2d(2, 1e-5f, 0.1f, false, false);
  images.build({2, 3, 3}, rng);
  EXPECT_TRUE(images.parameters().empty());
}

TEST(BatchNormalization, PyTorchCumulativeAverageWithoutMomentum) {
  Rng rng(0);
  BatchNormalization bn = BatchNorm2d(2, 1e-5f, std::nullopt);
  bn.build({2, 3, 3}, rng);  // (C, H, W)
  EXPECT_EQ(bn.kernel_shape(4).layout, Layout::NCHW);
  const Tensor x1 = random_tensor({4, 2, 3, 3}, Layout::NCHW, 40, 0.0f, 2.0f);
  const Tensor x2 = random_tensor({4, 2, 3, 3}, Layout::NCHW, 41, 2.0f, 6.0f);
  auto channel_mean = [](const Tensor& x, int c) {
    double sum = 0.0;
    for (int n = 0; n < 4; ++n)
      for (int s = 0; s < 9; ++s) sum += x[(n * 2 + c) * 9 + s];
    return sum / 36.0;
  };
  bn.forward(x1, true);
  bn.forward(x2, true);
  EXPECT_EQ(bn.num_batches_tracked(), 2);
  // Momentum None: the plain average of the batch means.
  for (int c = 0; c < 2; ++c)
    EXPECT_NEAR(bn.moving_mean().value[c], (channel_mean(x1, c) + channel_mean(x2, c)) / 2.0, 1e-5);
  EXPECT_EQ(bn.config().at("momentum"), "none");
  EXPECT_EQ(bn.config().at("num_batches_tracked"), "2");
}

TEST(BatchNormalization, KerasParameterOrderCountsAndTrainability) {
  Rng rng(0);
  BatchNormalization bn;
  bn.build({784}, rng);
  const auto params = bn.parameters();
  ASSERT_EQ(params.size(), 4u);
  const char* names[] = {"gamma", "beta", "moving_mean", "moving_variance"};
  std::int64_t total = 0, non_trainable = 0;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(params[i]->name, names[i]);
    EXPECT_EQ(params[i]->trainable, i < 2);
    EXPECT_EQ(params[i]->grad.defined(), i < 2);
    total += params[i]->value.size();
    if (!params[i]->trainable) non_trainable += params[i]->value.size();
  }
  EXPECT_EQ(total, 3136);  // the seed's summary: batch_normalization (None, 784) 3136
  EXPECT_EQ(non_trainable, 1568);
  for (std::int64_t i = 0; i < 784; ++i) {
    ASSERT_EQ(params[0]->value[i], 1.0f);
    ASSERT_EQ(params[1]->value[i], 0.0f);
    ASSERT_EQ(params[2]->value[i], 0.0f);
    ASSERT_EQ(params[3]->value[i], 1.0f);
  }
}

TEST(BatchNormalization, BadArgumentsThrowNamingThem) {
  BatchNormalizationOptions o;
  o.epsilon = 0.0f;
  BNLAB_EXPECT_INVALID(BatchNormalization{o}, "BatchNormalization", "epsilon", "0");
  o = {};
  o.momentum = 1.5f;
  BNLAB_EXPECT_INVALID(BatchNormalization{o}, "BatchNormalization", "momentum", "1.5");
  o = {};
  o.momentum = std::nullopt;
  BNLAB_EXPECT_INVALID(BatchNormalization{o}, "BatchNormalization", "momentum", "none");
  o = {};
  o.gamma_initializer = "random";
  BNLAB_EXPECT_INVALID(BatchNormalization{o}, "BatchNormalization", "gamma_initializer", "random");
  Rng rng(0);
  o = {};
  o.axis = 2;
  BatchNormalization middle(o);
  middle.set_name("bn");
  BNLAB_EXPECT_INVALID(middle.build({4, 4, 3}, rng), "BatchNormalization 'bn'", "axis", "2", "(None, 4, 4, 3)");
  o.axis = 0;
  BNLAB_EXPECT_INVALID(BatchNormalization(o).build({4}, rng), "axis", "0");
  BNLAB_EXPECT_INVALID(BatchNorm1d(10).build({12}, rng), "num_features", "10", "12");
  BNLAB_EXPECT_INVALID(BatchNorm2d(3).build({3}, rng), "(None, 3)", "3 to 3");
  BNLAB_EXPECT_INVALID(BatchNorm1d(0), "num_features", "0");
  BatchNormalization bn;
  bn.build({4}, rng);
  // One value per channel in training: PyTorch's convention refuses it (its running variance
  // is unbiased); Keras's is tested below.
  BatchNormalization torch_bn = BatchNorm1d(4);
  torch_bn.build({4}, rng);
  BNLAB_EXPECT_INVALID(torch_bn.forward(Tensor({1, 4}, Layout::NC), true), "BatchNormalization", "(1, 4)",
                       "more than 1 value per channel");
  EXPECT_NO_THROW(torch_bn.forward(Tensor({1, 4}, Layout::NC), false));
  BNLAB_EXPECT_INVALID(bn.forward(Tensor({2, 5}, Layout::NC), true), "(2, 5)", "(None, 4)");
}

// A refused forward leaves the layer as the last accepted one left it: the backward of a batch
// of one after it is refused by its size, not computed from the one input and the previous
// batch's statistics, and the running statistics and count are untouched.
TEST(BatchNormalization, RefusedForwardLeavesTheLastForwardsState) {
  Rng rng(0);
  BatchNormalization bn = BatchNorm1d(3);
  bn.build({3}, rng);
  Tensor x({4, 3}, Layout::NC);
  for (std::int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7) % 5) - 1.5f;
  bn.forward(x, true);
  const std::vector<float> mean(bn.moving_mean().value.data(), bn.moving_mean().value.data() + 3);
  Tensor one({1, 3}, Layout::NC);
  one.fill(40.0f);
  BNLAB_EXPECT_INVALID(bn.forward(one, true), "more than 1 value per channel");
  Tensor dy_one({1, 3}, Layout::NC);
  dy_one.fill(1.0f);
  BNLAB_EXPECT_INVALID(bn.backward(dy_one), "batch of 1", "last forward had 4");
  EXPECT_EQ(bn.num_batches_tracked(), 1);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(bn.moving_mean().value[c], mean[static_cast<std::size_t>(c)]);
  Tensor dy({4, 3}, Layout::NC);
  dy.fill(1.0f);
  const Tensor& dx = bn.backward(dy);  // still the accepted batch's backward: dx of a constant dy is 0
  for (std::int64_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx[i], 0.0f, 1e-6f);
}

// BatchNorm2d (axis 1) after Conv2D, whose output is NHWC, builds when the image height equals
// the filter count; it must then refuse the NHWC tensor rather than normalize image rows.
TEST(BatchNormalization, RefusesATensorWhoseLayoutContradictsTheAxis) {
  Rng rng(0);
  BatchNormalization torch_bn = BatchNorm2d(4);
  torch_bn.build({4, 4, 4}, rng);
  const Tensor nhwc({2, 4, 4, 4}, Layout::NHWC), nchw({2, 4, 4, 4}, Layout::NCHW), plain({2, 4, 4, 4});
  BNLAB_EXPECT_INVALID(torch_bn.forward(nhwc, true), "(2, 4, 4, 4)", "layout NHWC", "axis 1", "axis -1");
  EXPECT_NO_THROW(torch_bn.forward(nchw, true));
  EXPECT_NO_THROW(torch_bn.forward(plain, true));
  BatchNormalization keras_bn;
  keras_bn.build({4, 4, 4}, rng);
  BNLAB_EXPECT_INVALID(keras_bn.forward(nchw, false), "layout NCHW", "axis -1", "need axis 1");
  EXPECT_NO_THROW(keras_bn.forward(nhwc, false));
}

// Keras trains on a batch of one (fit's last batch when N % batch_size == 1): the mean is the
// value, the biased variance 0, so the output is beta, the moving variance decays towards 0,
// and the backward gives dx = 0 (to a rounding), dgamma = 0, dbeta = dy.
TEST(BatchNormalization, KerasConventionTrainsOnASingleValuePerChannel) {
  Rng rng(0);
  BatchNormalization bn;
  bn.build({3}, rng);
  bn.beta().value[1] = 0.25f;
  const Tensor x = Tensor::from({1, 3}, {1.0f, -2.0f, 30.0f}, Layout::NC);
  const Tensor y = bn.forward(x, true);
  EXPECT_EQ(std::vector<float>(y.data(), y.data() + 3), (std::vector<float>{0.0f, 0.25f, 0.0f}));
  const Tensor& moving_mean = bn.moving_mean().value;
  const Tensor& moving_variance = bn.moving_variance().value;
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(moving_mean[c], 0.01f * x[c], 1e-5f * std::abs(x[c]));  // momentum 0.99, from 0
    EXPECT_FLOAT_EQ(moving_variance[c], 0.99f);                         // from 1, towards 0
  }
  const Tensor dy = Tensor::from({1, 3}, {0.5f, -1.0f, 2.0f}, Layout::NC);
  const Tensor dx = bn.backward(dy);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(dx[c], 0.0f, 1e-6f * std::abs(dy[c]) / std::sqrt(1e-3f));  // one rounding
    EXPECT_EQ(bn.gamma().grad[c], 0.0f);
    EXPECT_EQ(bn.beta().grad[c], dy[c]);
  }
}

}  // namespace
}  // namespace bnlab
