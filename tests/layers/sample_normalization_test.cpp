// LayerNormalization and GroupNormalization as layers: which values share statistics under
// Keras's and PyTorch's arguments (checked against a direct float64 computation), gradients by
// central differences, parameter counts, the arguments refused, and config round trips.

#include "bnlab/layers/sample_normalization.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>

#include "bnlab/layers/layers.hpp"
#include "bnlab/model.hpp"
#include "layers/grad_check.hpp"
#include "support/temp_dir.hpp"

namespace bnlab {
namespace {

using testing::check_layer_gradients;
using testing::random_tensor;

// y[k] for statistics over the values whose indices `group_of` maps to the same group, without
// gamma and beta: (x - mean) / sqrt(biased variance + eps), in double.
std::vector<double> normalized_by_groups(const Tensor& x, const std::function<std::int64_t(std::int64_t)>& group_of,
                                         double eps) {
  std::map<std::int64_t, std::pair<double, double>> sums;  // group -> (sum, count)
  for (std::int64_t k = 0; k < x.size(); ++k) {
    sums[group_of(k)].first += x[k];
    sums[group_of(k)].second += 1;
  }
  std::map<std::int64_t, double> squares;
  for (std::int64_t k = 0; k < x.size(); ++k) {
    const auto& [sum, count] = sums[group_of(k)];
    squares[group_of(k)] += std::pow(x[k] - sum / count, 2);
  }
  std::vector<double> y(static_cast<std::size_t>(x.size()));
  for (std::int64_t k = 0; k < x.size(); ++k) {
    const auto& [sum, count] = sums[group_of(k)];
    y[static_cast<std::size_t>(k)] = (x[k] - sum / count) / std::sqrt(squares[group_of(k)] / count + eps);
  }
  return y;
}

void expect_near_all(const Tensor& y, const std::vector<double>& expected, double tolerance) {
  ASSERT_EQ(static_cast<std::size_t>(y.size()), expected.size());
  for (std::int64_t k = 0; k < y.size(); ++k) EXPECT_NEAR(y[k], expected[static_cast<std::size_t>(k)], tolerance) << k;
}

TEST(LayerNormalization, KerasDefaultNormalizesEachSamplesFeatures) {
  Rng rng(0);
  LayerNormalization ln;  // axis -1, epsilon 1e-3
  ln.build({7}, rng);
  const Tensor x = random_tensor({5, 7}, Layout::NC, 1, -3.0f, 5.0f);
  expect_near_all(ln.forward(x, true),
                  normalized_by_groups(
                      x, [](std::int64_t k) { return k / 7; }, 1e-3),
                  1e-5);
  // No batch statistics: a sample alone, or in inference, gives its row of the batch's output.
  const Tensor batch_out = ln.forward(x, true).clone();
  const Tensor alone = ln.forward(x.slice_batch(2, 3), false);
  for (int f = 0; f < 7; ++f) EXPECT_EQ(alone[f], batch_out[2 * 7 + f]);
  EXPECT_GT(check_layer_gradients(ln, x, 3), 0);
}

// Keras's LayerNormalization(axis=-1) on images normalizes each pixel's channels; axis
// {1, 2, 3} normalizes the whole sample, with gamma and beta per element (Keras's param_shape).
TEST(LayerNormalization, ImagesPerPixelOrWholeSample) {
  Rng rng(0);
  const Tensor x = random_tensor({2, 3, 4, 5}, Layout::NHWC, 4, -2.0f, 6.0f);
  LayerNormalization per_pixel;
  per_pixel.build({3, 4, 5}, rng);
  EXPECT_EQ(per_pixel.gamma().value.size(), 5);
  expect_near_all(per_pixel.forward(x, true),
                  normalized_by_groups(
                      x, [](std::int64_t k) { return k / 5; }, 1e-3),
                  1e-5);
  LayerNormalizationOptions o;
  o.axis = {1, 2, -1};
  LayerNormalization whole(o);
  whole.build({3, 4, 5}, rng);
  EXPECT_EQ(whole.gamma().value.size(), 60);
  EXPECT_EQ(whole.parameters().size(), 2u);
  expect_near_all(whole.forward(x, true),
                  normalized_by_groups(
                      x, [](std::int64_t k) { return k / 60; }, 1e-3),
                  1e-5);
  whole.gamma().value[7] = 2.0f;
  whole.beta().value[7] = 0.5f;
  const Tensor& y = whole.forward(x, true);
  const std::vector<double> plain = normalized_by_groups(
      x, [](std::int64_t k) { return k / 60; }, 1e-3);
  EXPECT_NEAR(y[60 + 7], 2.0 * plain[60 + 7] + 0.5, 1e-5);
  EXPECT_GT(check_layer_gradients(whole, x, 5), 0);
}

// Keras's LayerNormalization over axes that are not the last ones: axis 1 of (N, T, F)
// normalizes each feature over the steps, gamma and beta per step; {1, 3} of (N, H, W, C) each
// column of pixels' channels, gamma and beta per (row, channel).
TEST(LayerNormalization, AxesThatAreNotTheLastOnes) {
  Rng rng(0);
  LayerNormalizationOptions steps;
  steps.axis = {1};
  LayerNormalization over_steps(steps);
  over_steps.build({4, 3}, rng);
  EXPECT_EQ(over_steps.gamma().value.size(), 4);
  const Tensor x = random_tensor({2, 4, 3}, Layout::Plain, 17, -1.0f, 4.0f);
  // Index (n, t, f) = (n * 4 + t) * 3 + f -> group (n, f).
  expect_near_all(over_steps.forward(x, true),
                  normalized_by_groups(
                      x, [](std::int64_t k) { return k / 12 * 3 + k % 3; }, 1e-3),
                  1e-5);
  over_steps.gamma().value[2] = 3.0f;  // step 2
  over_steps.beta().value[2] = -1.0f;
  const std::vector<double> plain = normalized_by_groups(
      x, [](std::int64_t k) { return k / 12 * 3 + k % 3; }, 1e-3);
  const Tensor& y = over_steps.forward(x, true);
  for (std::int64_t k = 0; k < x.size(); ++k) {
    const bool step_two = k % 12 / 3 == 2;
    EXPECT_NEAR(y[k], step_two ? 3.0 * plain[static_cast<std::size_t>(k)] - 1.0 : plain[static_cast<std::size_t>(k)],
                1e-5)
        << k;
  }
  EXPECT_GT(check_layer_gradients(over_steps, x, 18), 0);

  LayerNormalizationOptions rows_and_channels;
  rows_and_channels.axis = {-1, 1};  // any order: the axes are taken in increasing order
  LayerNormalization columns(rows_and_channels);
  columns.build({3, 4, 2}, rng);
  EXPECT_EQ(columns.gamma().value.size(), 6);
  const Tensor images = random_tensor({2, 3, 4, 2}, Layout::NHWC, 19, -3.0f, 1.0f);
  // Index (n, h, w, c) = ((n * 3 + h) * 4 + w) * 2 + c -> group (n, w).
  expect_near_all(columns.forward(images, true),
                  normalized_by_groups(
                      images, [](std::int64_t k) { return k / 24 * 4 + k / 2 % 4; }, 1e-3),
                  1e-5);
  EXPECT_GT(check_layer_gradients(columns, images, 20), 0);
  const auto copy = make_layer("LayerNormalization", columns.config());
  EXPECT_EQ(copy->config().at("axis"), "-1,1");

  // axis 1 of (N, H, W, C): each (sample, column, channel) over the rows, an order (1, 2, 0)
  // that is not its own inverse; gamma and beta per row.
  LayerNormalizationOptions image_rows;
  image_rows.axis = {1};
  LayerNormalization over_rows(image_rows);
  over_rows.build({3, 4, 2}, rng);
  EXPECT_EQ(over_rows.gamma().value.size(), 3);
  over_rows.gamma().value = Tensor({3}, Layout::Plain);
  for (int h = 0; h < 3; ++h) over_rows.gamma().value[h] = 1.0f + static_cast<float>(h);
  const std::vector<double> by_rows = normalized_by_groups(
      images, [](std::int64_t k) { return k / 24 * 8 + k % 8; }, 1e-3);
  const Tensor& rows_y = over_rows.forward(images, true);
  for (std::int64_t k = 0; k < images.size(); ++k)
    EXPECT_NEAR(rows_y[k], (1.0 + static_cast<double>(k % 24 / 8)) * by_rows[static_cast<std::size_t>(k)], 1e-5) << k;
  EXPECT_GT(check_layer_gradients(over_rows, images, 21), 0);
  // Without the input gradient, gamma's and beta's gradients are the same.
  over_rows.forward(images, true);
  const Tensor dy = random_tensor({2, 3, 4, 2}, Layout::NHWC, 22);
  over_rows.backward(dy);
  const Tensor dgamma = over_rows.gamma().grad.clone(), dbeta = over_rows.beta().grad.clone();
  over_rows.set_input_gradient_needed(false);
  over_rows.backward(dy);
  for (int h = 0; h < 3; ++h) {
    EXPECT_EQ(over_rows.gamma().grad[h], dgamma[h]);
    EXPECT_EQ(over_rows.beta().grad[h], dbeta[h]);
  }
}

TEST(LayerNormalization, PyTorchLayerNormAndRefusals) {
  Rng rng(0);
  LayerNormalization torch_ln = LayerNorm({4, 5}, 1e-5f);
  torch_ln.build({3, 4, 5}, rng);
  const Tensor x = random_tensor({2, 3, 4, 5}, Layout::Plain, 6);
  expect_near_all(torch_ln.forward(x, true),
                  normalized_by_groups(
                      x, [](std::int64_t k) { return k / 20; }, 1e-5),
                  1e-5);
  BNLAB_EXPECT_INVALID(LayerNorm({4, 5}).build({3, 5, 4}, rng), "normalized_shape is (4, 5)", "(None, 3, 5, 4)");
  BNLAB_EXPECT_INVALID(LayerNorm({}), "normalized_shape", "one or more");
  LayerNormalizationOptions middle;
  middle.axis = {0};
  BNLAB_EXPECT_INVALID(LayerNormalization(middle).build({3}, rng), "axis is (0)");
  // More axes than the input has, or the batch among them: refused by name, not a length_error.
  middle.axis = {0, 1};
  BNLAB_EXPECT_INVALID(LayerNormalization(middle).build({3}, rng), "axis is (0, 1)", "not the batch");
  middle.axis = {1, -2};  // the same axis twice
  BNLAB_EXPECT_INVALID(LayerNormalization(middle).build({3, 4}, rng), "axis is (1, -2)", "distinct axes", "1 to 2");
  BNLAB_EXPECT_INVALID(LayerNorm({1, 28, 28}).build({28, 28}, rng), "normalized_shape is (1, 28, 28)",
                       "longer than input (None, 28, 28)");
  BNLAB_EXPECT_INVALID(LayerNormalization().build({3, 0}, rng), "(None, 3, 0)", "every dimension >= 1");
  LayerNormalizationOptions bad;
  bad.epsilon = 0.0f;
  BNLAB_EXPECT_INVALID(LayerNormalization{bad}, "LayerNormalization", "epsilon", "0");
  LayerNormalization no_affine = LayerNorm({5}, 1e-5f, false);
  no_affine.build({5}, rng);
  EXPECT_TRUE(no_affine.parameters().empty());
  EXPECT_GT(check_layer_gradients(no_affine, random_tensor({3, 5}, Layout::NC, 7), 8), 0);
}

// Keras's GroupNormalization on channels-last images: per sample, the group's channels at every
// pixel share one mean and variance.
TEST(GroupNormalization, ChannelsLastGroupsAndInstanceNormalization) {
  Rng rng(0);
  const Tensor x = random_tensor({2, 3, 4, 6}, Layout::NHWC, 9, -1.0f, 4.0f);
  GroupNormalizationOptions o;
  o.groups = 3;
  GroupNormalization gn(o);
  gn.build({3, 4, 6}, rng);
  EXPECT_EQ(gn.gamma().value.size(), 6);
  // Index (n, h, w, c) -> group (n, c / 2).
  expect_near_all(gn.forward(x, true),
                  normalized_by_groups(
                      x, [](std::int64_t k) { return (k / 72) * 3 + (k % 6) / 2; }, 1e-3),
                  1e-5);
  EXPECT_GT(check_layer_gradients(gn, x, 10), 0);
  o.groups = -1;  // one group per channel: instance normalization
  GroupNormalization instance(o);
  instance.build({3, 4, 6}, rng);
  expect_near_all(instance.forward(x, false),
                  normalized_by_groups(
                      x, [](std::int64_t k) { return (k / 72) * 6 + k % 6; }, 1e-3),
                  1e-5);
  o.groups = 4;
  BNLAB_EXPECT_INVALID(GroupNormalization(o).build({3, 4, 6}, rng), "groups is 4", "6 channels", "(None, 3, 4, 6)");
  o.groups = 0;
  BNLAB_EXPECT_INVALID(GroupNormalization{o}, "groups is 0");
  // An NCHW tensor is not what a channels-last layer normalizes.
  BNLAB_EXPECT_INVALID(gn.forward(Tensor({2, 3, 4, 6}, Layout::NCHW), true), "layout NCHW", "need axis 1");
}

TEST(GroupNormalization, PyTorchGroupNormIsChannelsFirst) {
  Rng rng(0);
  GroupNormalization torch_gn = GroupNorm(2, 4);
  torch_gn.build({4, 3, 3}, rng);
  const Tensor x = random_tensor({2, 4, 3, 3}, Layout::NCHW, 11, -1.0f, 3.0f);
  // Index (n, c, h, w) -> group (n, c / 2): 18 contiguous values a group.
  expect_near_all(torch_gn.forward(x, true),
                  normalized_by_groups(
                      x, [](std::int64_t k) { return k / 18; }, 1e-5),
                  1e-5);
  EXPECT_GT(check_layer_gradients(torch_gn, x, 12), 0);
  BNLAB_EXPECT_INVALID(GroupNorm(2, 6).build({4, 3, 3}, rng), "num_channels is 6", "4 channels");
  // After Conv2D (NHWC) a channels-first layer refuses rather than take rows for channels.
  BNLAB_EXPECT_INVALID(torch_gn.forward(Tensor({2, 4, 3, 3}, Layout::NHWC), true), "(2, 4, 3, 3)", "layout NHWC",
                       "axis 1");
  GroupNormalization features = GroupNorm(2, 6);  // (N, C) input: groups of 3 features
  features.build({6}, rng);
  const Tensor f = random_tensor({3, 6}, Layout::NC, 13);
  expect_near_all(features.forward(f, true),
                  normalized_by_groups(
                      f, [](std::int64_t k) { return k / 3; }, 1e-5),
                  1e-5);
}

// torch.nn.InstanceNorm2d/1d: each (sample, channel) plane normalized alone, no parameters
// unless affine, channels first.
TEST(GroupNormalization, PyTorchInstanceNormNormalizesEachPlane) {
  Rng rng(0);
  GroupNormalization instance = InstanceNorm2d(3);
  instance.build({3, 4, 5}, rng);
  EXPECT_EQ(instance.parameters().size(), 0u);
  const Tensor x = random_tensor({2, 3, 4, 5}, Layout::NCHW, 14, 2.0f, 3.0f);
  // Index (n, c, h, w) -> plane (n, c): 20 contiguous values a plane.
  expect_near_all(instance.forward(x, true),
                  normalized_by_groups(
                      x, [](std::int64_t k) { return k / 20; }, 1e-5),
                  1e-5);
  GroupNormalization affine = InstanceNorm2d(3, 1e-3f, true);
  affine.build({3, 4, 5}, rng);
  ASSERT_EQ(affine.parameters().size(), 2u);
  EXPECT_EQ(affine.parameters()[0]->value.size() + affine.parameters()[1]->value.size(), 6);
  EXPECT_GT(check_layer_gradients(affine, x, 15), 0);
  GroupNormalization sequence = InstanceNorm1d(4);  // (N, C, L)
  sequence.build({4, 6}, rng);
  const Tensor s = random_tensor({3, 4, 6}, Layout::Plain, 16);
  expect_near_all(sequence.forward(s, true),
                  normalized_by_groups(
                      s, [](std::int64_t k) { return k / 6; }, 1e-5),
                  1e-5);
  BNLAB_EXPECT_INVALID(InstanceNorm2d(4).build({3, 4, 5}, rng), "num_channels is 4", "3 channels");
  // PyTorch's ranks: 1d takes (N, C, L), 2d (N, C, H, W), each with more than one position.
  BNLAB_EXPECT_INVALID(InstanceNorm1d(16).build({16}, rng), "InstanceNorm1d expects input (N, C, L)", "(None, 16)");
  BNLAB_EXPECT_INVALID(InstanceNorm2d(3).build({3, 20}, rng), "InstanceNorm2d expects input (N, C, H, W)",
                       "(None, 3, 20)");
  BNLAB_EXPECT_INVALID(InstanceNorm1d(3).build({3, 1}, rng), "more than one position", "(None, 3, 1)");
  BNLAB_EXPECT_INVALID(InstanceNorm2d(0), "InstanceNorm2d", "num_features is 0");
  const auto copy = make_layer("GroupNormalization", instance.config());
  EXPECT_EQ(copy->config(), instance.config());
  EXPECT_EQ(instance.config().at("instance_rank"), "3");
  BNLAB_EXPECT_INVALID(make_layer("GroupNormalization", {{"instance_rank", "4"}}), "instance_rank is 4");
}

TEST(SampleNormalization, ConfigsRoundTripThroughTheFactory) {
  Rng rng(0);
  LayerNormalizationOptions lo;
  lo.axis = {-2, -1};
  lo.epsilon = 1e-4f;
  lo.center = false;
  LayerNormalization ln(lo);
  GroupNormalization gn = GroupNorm(3, 6, 1e-5f, false);
  for (Layer* layer : std::vector<Layer*>{&ln, &gn}) {
    const auto copy = make_layer(layer->type_name(), layer->config());
    EXPECT_EQ(copy->config(), layer->config()) << layer->type_name();
  }
  EXPECT_EQ(ln.config().at("axis"), "-2,-1");
  EXPECT_EQ(gn.config().at("num_channels"), "6");
  const auto defaults = make_layer("GroupNormalization", {});
  EXPECT_EQ(defaults->config().at("groups"), "32");
  EXPECT_EQ(defaults->config().at("epsilon"), "0.001");
  BNLAB_EXPECT_INVALID(make_layer("LayerNormalization", {{"axis", "-1,x"}}), "axis", "-1,x");
  BNLAB_EXPECT_INVALID(make_layer("GroupNormalization", {{"momentum", "0.9"}}), "no config key \"momentum\"");
}

// In a model: Keras's summary counts (2 per normalized feature, all trainable), training, and a
// save/load that predicts the same bits.
TEST(SampleNormalization, InAModelSummaryFitAndSaveLoad) {
  Sequential model("normalized");
  model.add(std::make_unique<Conv2D>(4, std::array<std::int64_t, 2>{3, 3}, std::array<std::int64_t, 2>{1, 1}, "same"));
  GroupNormalizationOptions groups;
  groups.groups = 2;
  model.add(std::make_unique<GroupNormalization>(groups));
  model.add(std::make_unique<Flatten>());
  model.add(std::make_unique<Dense>(8, "relu"));
  model.add(std::make_unique<LayerNormalization>());
  model.add(std::make_unique<Dense>(3, "softmax"));
  model.build({5, 5, 1}, 7);
  model.compile(std::make_unique<Adam>(1e-2));
  const std::string summary = model.summary();
  EXPECT_NE(summary.find("group_normalization (GroupNo (None, 5, 5, 4)           8"), std::string::npos) << summary;
  EXPECT_NE(summary.find("layer_normalization (LayerNo (None, 8)                 16"), std::string::npos) << summary;
  // Conv2D 40, GroupNormalization 8, Dense 808, LayerNormalization 16, Dense 27 (Keras 2 cuts the
  // first column at 29 characters).
  EXPECT_NE(summary.find("Total params: 899"), std::string::npos) << summary;
  EXPECT_NE(summary.find("Non-trainable params: 0"), std::string::npos) << summary;

  const Tensor x = random_tensor({12, 5, 5, 1}, Layout::NHWC, 21);
  std::vector<std::int32_t> y(12);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::int32_t>(i % 3);
  FitOptions options;
  options.epochs = 15;
  options.batch_size = 4;
  options.verbose = Verbosity::silent;
  const History history = model.fit(x, y, options);
  EXPECT_LT(history.loss.back(), history.loss.front());

  testing::ScratchDirectory dir("bnlab_sample_normalization");
  const std::string path = (dir.path() / "model.bnlb").string();
  model.save(path);
  Sequential loaded = Sequential::load(path);
  const Tensor a = model.predict(x), b = loaded.predict(x);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(float)), 0);
}

}  // namespace
}  // namespace bnlab
