#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <limits>
#include <memory>

#include "bnlab/layers/layers.hpp"
#include "layers/grad_check.hpp"

namespace bnlab {
namespace {

// Rebuilds `layer` from its type name and config, builds both from the same seed, and expects
// the same config, the same parameters and the same forward output.
void expect_round_trip(Layer& layer, const Shape& input_shape) {
  SCOPED_TRACE(layer.type_name());
  std::unique_ptr<Layer> copy = make_layer(layer.type_name(), layer.config());
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->type_name(), layer.type_name());
  EXPECT_EQ(copy->config(), layer.config());
  Rng rng_a(123), rng_b(123);
  EXPECT_EQ(layer.build(input_shape, rng_a), copy->build(input_shape, rng_b));
  const auto pa = layer.parameters(), pb = copy->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i]->name, pb[i]->name);
    EXPECT_EQ(pa[i]->trainable, pb[i]->trainable);
    ASSERT_EQ(pa[i]->value.shape(), pb[i]->value.shape());
    EXPECT_EQ(std::memcmp(pa[i]->value.data(), pb[i]->value.data(), pa[i]->value.size() * sizeof(float)), 0);
  }
  Shape batch_shape{3};
  batch_shape.insert(batch_shape.end(), input_shape.begin(), input_shape.end());
  const Tensor x = testing::random_tensor(batch_shape, Layout::Plain, 5);
  const Tensor ya = layer.forward(x, true).clone();
  const Tensor& yb = copy->forward(x, true);
  ASSERT_EQ(ya.shape(), yb.shape());
  EXPECT_EQ(std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)), 0);
}

TEST(Factory, EveryLayerRoundTrips) {
  Dense dense(7, "leaky_relu", false, "he_normal", "ones");
  expect_round_trip(dense, {5});
  Conv2D conv(3, {3, 2}, {2, 1}, "same", "sigmoid", true, "he_normal");
  expect_round_trip(conv, {6, 5, 2});
  MaxPool2D pool({3, 3}, std::array<std::int64_t, 2>{2, 1}, "same");
  expect_round_trip(pool, {5, 5, 2});
  MaxPool2D default_pool;
  expect_round_trip(default_pool, {4, 4, 1});
  EXPECT_EQ(make_layer("MaxPool2D", {})->type_name(), "MaxPooling2D");
  Flatten flatten;
  expect_round_trip(flatten, {4, 3});
  Activation softmax("softmax");
  expect_round_trip(softmax, {6});
  LeakyReLU leaky(0.17f);
  expect_round_trip(leaky, {6});
  Dropout seeded(0.35f, 77);
  expect_round_trip(seeded, {8});
  Dropout unseeded(0.2f);
  expect_round_trip(unseeded, {8});
  BatchNormalizationOptions o;
  o.momentum = 0.9f;
  o.epsilon = 1e-5f;
  o.center = false;
  o.moving_variance_initializer = "zeros";
  BatchNormalization keras_bn(o);
  expect_round_trip(keras_bn, {4, 4, 3});
  BatchNormalization torch_bn = BatchNorm2d(3, 1e-5f, std::nullopt);
  expect_round_trip(torch_bn, {3, 2, 2});
}

TEST(Factory, PyTorchBatchCountSurvivesTheRoundTrip) {
  Rng rng(0);
  BatchNormalization bn = BatchNorm1d(4, 1e-5f, std::nullopt);
  bn.build({4}, rng);
  const Tensor x = testing::random_tensor({3, 4}, Layout::NC, 1);
  bn.forward(x, true);
  bn.forward(x, true);
  const auto copy = make_layer(bn.type_name(), bn.config());
  EXPECT_EQ(dynamic_cast<BatchNormalization&>(*copy).num_batches_tracked(), 2);
}

TEST(Factory, MissingKeysTakeDefaults) {
  const auto bn = make_layer("BatchNormalization", {});
  const auto& options = dynamic_cast<BatchNormalization&>(*bn).options();
  EXPECT_EQ(options.axis, -1);
  EXPECT_FLOAT_EQ(*options.momentum, 0.99f);
  EXPECT_FLOAT_EQ(options.epsilon, 1e-3f);
  const auto torch_bn = make_layer("BatchNormalization", {{"convention", "pytorch"}});
  EXPECT_FLOAT_EQ(*dynamic_cast<BatchNormalization&>(*torch_bn).options().momentum, 0.1f);
  EXPECT_FLOAT_EQ(dynamic_cast<BatchNormalization&>(*torch_bn).options().epsilon, 1e-5f);
  EXPECT_EQ(dynamic_cast<BatchNormalization&>(*torch_bn).options().axis, 1);
  // The options struct's own PyTorch starting point holds the same values.
  const BatchNormalizationOptions torch_defaults = BatchNormalizationOptions::pytorch_defaults();
  EXPECT_EQ(torch_defaults.convention, BatchNormConvention::pytorch);
  EXPECT_EQ(torch_defaults.axis, 1);
  EXPECT_FLOAT_EQ(*torch_defaults.momentum, 0.1f);
  EXPECT_FLOAT_EQ(torch_defaults.epsilon, 1e-5f);
  const auto leaky = make_layer("LeakyReLU", {});
  EXPECT_FLOAT_EQ(dynamic_cast<LeakyReLU&>(*leaky).alpha(), 0.3f);
  const auto dense = make_layer("Dense", {{"units", "10"}});
  EXPECT_EQ(dense->config().at("activation"), "linear");
  EXPECT_EQ(dense->config().at("kernel_initializer"), "glorot_uniform");
}

// The name "leaky_relu" is Keras's activation function, slope 0.2; the LeakyReLU layer's default
// is 0.3. Files written before the "alpha" key meant 0.3 by the name, and still load that way.
TEST(Factory, LeakyReluActivationsKeepTheirSlope) {
  Dense dense(4, "leaky_relu");
  EXPECT_FLOAT_EQ(dense.activation_alpha(), 0.2f);
  EXPECT_EQ(dense.config().at("alpha"), "0.2");
  EXPECT_FLOAT_EQ(Activation("leaky_relu").alpha(), 0.2f);
  EXPECT_FLOAT_EQ(Conv2D(2, {1, 1}, {1, 1}, "valid", "leaky_relu").activation_alpha(), 0.2f);
  EXPECT_FLOAT_EQ(LeakyReLU().alpha(), 0.3f);
  EXPECT_EQ(Dense(4, "relu").config().count("alpha"), 0u);

  dense.set_activation_alpha(0.05f);
  expect_round_trip(dense, {3});
  Activation activation("leaky_relu");
  activation.set_activation_alpha(0.125f);
  expect_round_trip(activation, {3});

  const auto old_dense = make_layer("Dense", {{"units", "4"}, {"activation", "leaky_relu"}});
  EXPECT_FLOAT_EQ(dynamic_cast<Dense&>(*old_dense).activation_alpha(), 0.3f);
  const auto old_conv = make_layer("Conv2D", {{"filters", "2"}, {"kernel_size", "1,1"}, {"activation", "leaky_relu"}});
  EXPECT_FLOAT_EQ(dynamic_cast<Conv2D&>(*old_conv).activation_alpha(), 0.3f);
  const auto old_activation = make_layer("Activation", {{"activation", "leaky_relu"}});
  EXPECT_FLOAT_EQ(dynamic_cast<Activation&>(*old_activation).alpha(), 0.3f);
  BNLAB_EXPECT_INVALID(make_layer("Dense", {{"units", "4"}, {"activation", "relu"}, {"alpha", "0.2"}}), "Dense",
                       "alpha");
  BNLAB_EXPECT_INVALID(make_layer("Dense", {{"units", "4"}, {"activation", "leaky_relu"}, {"alpha", "inf"}}), "Dense",
                       "alpha");
  EXPECT_THROW(dense.set_activation_alpha(std::numeric_limits<float>::quiet_NaN()), std::invalid_argument);

  // y = 0.2 x below zero, as keras.activations.leaky_relu(x) and tf.nn.leaky_relu(x).
  Rng rng(1);
  Dense identity(1, "leaky_relu", false, "ones");
  identity.build({1}, rng);
  Tensor x({2, 1});
  x[0] = -2.0f;
  x[1] = 3.0f;
  const Tensor& y = identity.forward(x, false);
  EXPECT_FLOAT_EQ(y[0], -0.4f);
  EXPECT_FLOAT_EQ(y[1], 3.0f);
}

TEST(Factory, BadTypesKeysAndValuesThrowNamingThem) {
  BNLAB_EXPECT_INVALID(make_layer("GRU", {}), "GRU", "Dense");
  BNLAB_EXPECT_INVALID(make_layer("Dense", {{"units", "ten"}}), "Dense", "units", "ten");
  BNLAB_EXPECT_INVALID(make_layer("Dense", {{"units", "10"}, {"unit", "5"}}), "Dense", "unit");
  BNLAB_EXPECT_INVALID(make_layer("Dense", {}), "Dense", "units");
  BNLAB_EXPECT_INVALID(make_layer("Dense", {{"units", "-3"}}), "Dense", "units", "-3");
  BNLAB_EXPECT_INVALID(make_layer("Dense", {{"units", "3"}, {"use_bias", "yes"}}), "use_bias", "yes");
  BNLAB_EXPECT_INVALID(make_layer("Conv2D", {{"filters", "3"}, {"kernel_size", "3,x"}}), "kernel_size", "3,x");
  BNLAB_EXPECT_INVALID(make_layer("Dropout", {{"rate", "1.5"}}), "Dropout", "rate", "1.5");
  BNLAB_EXPECT_INVALID(make_layer("Dropout", {{"rate", "0.5"}, {"seed", "-1"}}), "seed", "-1");
  BNLAB_EXPECT_INVALID(make_layer("BatchNormalization", {{"momentum", "nan"}}), "momentum", "nan");
  BNLAB_EXPECT_INVALID(make_layer("BatchNormalization", {{"convention", "mxnet"}}), "convention", "mxnet");
  BNLAB_EXPECT_INVALID(make_layer("Activation", {{"activation", "elu"}}), "Activation", "elu");
}

}  // namespace
}  // namespace bnlab
