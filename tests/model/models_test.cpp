// The seed 003 models built from the production layers: summaries and counts, a gradient check
// through the real Dense/BatchNormalization/activations and the fused loss, and save/load
// through bnlab::make_layer.
#include "bnlab/models.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bnlab/layers/layers.hpp"
#include "support/temp_dir.hpp"

namespace bnlab {
namespace {

struct Images {
  Tensor x;
  std::vector<std::int32_t> y;
};

// Fashion-MNIST-shaped inputs (pixels in [0, 1]) whose class shows in the brightness of one
// image row, so that a few epochs can learn it.
Images make_images(std::int64_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> pixel(0.0f, 0.5f);
  Images d{Tensor({n, 28, 28}), std::vector<std::int32_t>(static_cast<std::size_t>(n))};
  for (std::int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng() % 10);
    d.y[static_cast<std::size_t>(i)] = c;
    for (int p = 0; p < 784; ++p) d.x[i * 784 + p] = pixel(rng) + (p / 28 == 2 * c + 4 ? 0.5f : 0.0f);
  }
  return d;
}

// Silent fit options: `epochs` epochs of batches of `batch_size`, shuffled by `seed`.
FitOptions quiet_fit(int epochs, std::int64_t batch_size, std::uint64_t seed) {
  FitOptions o;
  o.epochs = epochs;
  o.batch_size = batch_size;
  o.seed = seed;
  o.verbose = Verbosity::silent;
  return o;
}

TEST(SeedModels, BaselineSummary) {
  const std::string expected =
      "Model: \"sequential\"\n"
      "_________________________________________________________________\n"
      "Layer (type)                 Output Shape              Param #   \n"
      "=================================================================\n"
      "flatten (Flatten)            (None, 784)               0         \n"
      "_________________________________________________________________\n"
      "dense (Dense)                (None, 300)               235500    \n"
      "_________________________________________________________________\n"
      "leaky_re_lu (LeakyReLU)      (None, 300)               0         \n"
      "_________________________________________________________________\n"
      "dense_1 (Dense)              (None, 100)               30100     \n"
      "_________________________________________________________________\n"
      "leaky_re_lu_1 (LeakyReLU)    (None, 100)               0         \n"
      "_________________________________________________________________\n"
      "dense_2 (Dense)              (None, 10)                1010      \n"
      "=================================================================\n"
      "Total params: 266,610\n"
      "Trainable params: 266,610\n"
      "Non-trainable params: 0\n"
      "_________________________________________________________________\n";
  EXPECT_EQ(make_seed_model("baseline", 42).summary(), expected);
}

TEST(SeedModels, ApproachOneSummaryAndCountsAreSeed003s) {
  const std::string expected =
      "Model: \"sequential\"\n"
      "_________________________________________________________________\n"
      "Layer (type)                 Output Shape              Param #   \n"
      "=================================================================\n"
      "flatten (Flatten)            (None, 784)               0         \n"
      "_________________________________________________________________\n"
      "batch_normalization (BatchNo (None, 784)               3136      \n"
      "_________________________________________________________________\n"
      "dense (Dense)                (None, 300)               235500    \n"
      "_________________________________________________________________\n"
      "batch_normalization_1 (Batch (None, 300)               1200      \n"
      "_________________________________________________________________\n"
      "dense_1 (Dense)              (None, 100)               30100     \n"
      "_________________________________________________________________\n"
      "batch_normalization_2 (Batch (None, 100)               400       \n"
      "_________________________________________________________________\n"
      "dense_2 (Dense)              (None, 10)                1010      \n"
      "=================================================================\n"
      "Total params: 271,346\n"
      "Trainable params: 268,978\n"
      "Non-trainable params: 2,368\n"
      "_________________________________________________________________\n";
  const Sequential model = make_seed_model("bn", 42);
  EXPECT_EQ(model.summary(), expected);
  EXPECT_EQ(model.count_params(), 271346);
  EXPECT_EQ(model.count_trainable_params(), 268978);
  EXPECT_EQ(model.count_non_trainable_params(), 2368);
}

TEST(SeedModels, ApproachTwoCountsByHand) {
  // BN(784): 4 x 784 = 3136, half of it (moving mean and variance) non-trainable;
  // Dense(784 -> 300) without bias: 235,200; BN(300): 1200; Dense(300 -> 100) without bias:
  // 30,000; BN(100): 400; Dense(100 -> 10) with bias: 1010.
  const std::int64_t total = 3136 + 235200 + 1200 + 30000 + 400 + 1010;
  const std::int64_t non_trainable = 2 * 784 + 2 * 300 + 2 * 100;
  const Sequential model = make_seed_model("bn-before-activation", 42);
  EXPECT_EQ(total, 270946);
  EXPECT_EQ(model.count_params(), total);
  EXPECT_EQ(model.count_non_trainable_params(), non_trainable);
  EXPECT_EQ(model.count_trainable_params(), total - non_trainable);
  const std::string summary = model.summary();
  EXPECT_NE(summary.find("\ndense (Dense)                (None, 300)               235200    \n"), std::string::npos)
      << summary;
  EXPECT_NE(summary.find("\nactivation (Activation)      (None, 300)               0         \n"), std::string::npos);
  EXPECT_NE(summary.find("\nactivation_1 (Activation)    (None, 100)               0         \n"), std::string::npos);
  EXPECT_NE(summary.find("\nTotal params: 270,946\nTrainable params: 268,578\nNon-trainable params: 2,368\n"),
            std::string::npos)
      << summary;
}

TEST(SeedModels, UnknownNameListsTheValidOnes) {
  try {
    make_seed_model("resnet", 1);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'resnet' (valid: baseline, bn, bn-before-activation)"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(make_seed_model("bn", 1).input_shape(), seed_model_input_shape);
}

// Central differences of the training-mode loss on a sample of every trainable tensor. A ReLU
// kink within h of a sample's pre-activation makes the difference quotient meaningless; such a
// point shows as left and right slopes that disagree (a wrong analytic gradient does not: both
// slopes then agree with each other and not with it), and is skipped, up to a few per model.
void check_sampled_gradients(Sequential& model, const Images& data) {
  const double center = model.compute_gradients(data.x, data.y);
  const auto params = model.trainable_parameters();
  std::vector<Tensor> analytic;
  for (Parameter* p : params) analytic.push_back(p->grad.clone());
  std::mt19937_64 pick(17);
  const float h = 1e-3f;
  int checked = 0, kinks = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    Parameter& p = *params[i];
    for (int s = 0; s < 5; ++s) {
      const std::int64_t j = static_cast<std::int64_t>(pick() % static_cast<std::uint64_t>(p.value.size()));
      const float saved = p.value[j];
      p.value[j] = saved + h;
      const double plus = model.compute_gradients(data.x, data.y);
      p.value[j] = saved - h;
      const double minus = model.compute_gradients(data.x, data.y);
      p.value[j] = saved;
      const double tolerance = 1e-3 + 3e-2 * std::fabs((plus - minus) / (2.0 * h));
      if (std::fabs((plus - center) / h - (center - minus) / h) > tolerance) {
        ++kinks;
        continue;
      }
      const double numeric = (plus - minus) / (2.0 * h);
      EXPECT_NEAR(analytic[i][j], numeric, tolerance) << "parameter " << i << " (" << p.name << ") element " << j;
      ++checked;
    }
  }
  EXPECT_LE(kinks, 3);
  EXPECT_GE(checked, static_cast<int>(5 * params.size()) - 3);
}

TEST(SeedModels, GradientsOfTheBatchNormModelsMatchCentralDifferences) {
  const Images data = make_images(8, 5);
  for (const char* name : {"bn", "bn-before-activation"}) {
    SCOPED_TRACE(name);
    Sequential model = make_seed_model(name, 3);
    model.compile(std::make_unique<SGD>(1e-3));
    check_sampled_gradients(model, data);
  }
}

// The first layer with trainable parameters skips its input gradient (Dense(300) in the
// baseline, BatchNormalization(784) in the others); the parameter grads must keep their bits,
// except where Dense(300) takes over BatchNormalization(784)'s backward (Approaches One and
// Two): its
// kernel grad and the normalization's gamma and beta grads come from another GEMM, so they
// agree to rounding.
TEST(SeedModels, SkippingTheFirstInputGradientLeavesEveryGradientsBits) {
  const Images data = make_images(16, 7);
  for (const std::string& name : seed_model_names()) {
    SCOPED_TRACE(name);
    Sequential skipping = make_seed_model(name, 3), computing = make_seed_model(name, 3);
    const std::size_t first = 1;  // Flatten, then the first trained layer in every seed model
    EXPECT_FALSE(skipping.layer(0).input_gradient_needed());
    EXPECT_FALSE(skipping.layer(first).input_gradient_needed());
    EXPECT_TRUE(skipping.layer(first + 1).input_gradient_needed());
    for (std::size_t i = 0; i < computing.size(); ++i) computing.layer(i).set_input_gradient_needed(true);
    skipping.compile(std::make_unique<SGD>(1e-3));
    computing.compile(std::make_unique<SGD>(1e-3));
    EXPECT_EQ(skipping.compute_gradients(data.x, data.y), computing.compute_gradients(data.x, data.y));
    const bool taken_over = skipping.layer(first + 1).takes_over_previous_backward();
    EXPECT_EQ(taken_over, name != "baseline");
    EXPECT_FALSE(computing.layer(first + 1).takes_over_previous_backward());
    const auto a = skipping.trainable_parameters(), b = computing.trainable_parameters();
    ASSERT_EQ(a.size(), b.size());
    // The first three: gamma and beta of BatchNormalization(784), Dense(300)'s kernel. Their
    // rounding is measured against the largest of them: in Approach Two beta's grad is zero up
    // to rounding (the BatchNormalization after Dense(300) cancels any shift of its input).
    const std::size_t rounded = taken_over ? 3 : 0;
    float largest = 0.0f;
    for (std::size_t i = 0; i < rounded; ++i)
      for (std::int64_t j = 0; j < b[i]->grad.size(); ++j) largest = std::max(largest, std::fabs(b[i]->grad[j]));
    for (std::size_t i = 0; i < a.size(); ++i) {
      const std::int64_t n = a[i]->grad.size();
      if (i >= rounded) {
        EXPECT_EQ(std::memcmp(a[i]->grad.data(), b[i]->grad.data(), static_cast<std::size_t>(n) * 4), 0)
            << "parameter " << i << " (" << a[i]->name << ")";
        continue;
      }
      ASSERT_GT(largest, 1e-4f);
      for (std::int64_t j = 0; j < n; ++j)
        ASSERT_NEAR(a[i]->grad[j], b[i]->grad[j], 1e-6f * largest)
            << "parameter " << i << " (" << a[i]->name << ") element " << j;
    }
  }
}

TEST(SeedModels, ApproachOneLearnsAndPredictsOneSample) {
  const Images train = make_images(512, 1), valid = make_images(128, 2);
  Sequential model = make_seed_model("bn", 42);
  model.compile(std::make_unique<SGD>(0.05, 0.9));
  FitOptions o = quiet_fit(3, 32, FitOptions{}.seed);
  o.validation_x = valid.x;
  o.validation_y = valid.y;
  const History h = model.fit(train.x, train.y, o);
  EXPECT_GT(h.val_accuracy.back(), 0.9);
  // Inference mode: one sample alone is normalized by the moving statistics.
  const Tensor all = model.predict(valid.x.slice_batch(0, 4));
  for (std::int64_t i = 0; i < 4; ++i) {
    const Tensor one = model.predict(valid.x.slice_batch(i, i + 1));
    for (int k = 0; k < 10; ++k) EXPECT_NEAR(one[k], all[i * 10 + k], 1e-6);
  }
}

// A copy of `model` through a model file and bnlab::make_layer.
Sequential saved_and_loaded(const Sequential& model) {
  const bnlab::testing::ScratchDirectory dir("bnlab_models");
  const std::string path = (dir.path() / "model.bnlb").string();
  model.save(path);
  return Sequential::load(path);
}

bool same_predictions(Sequential& a, Sequential& b, const Tensor& x) {
  const Tensor pa = a.predict(x), pb = b.predict(x);
  return pa.shape() == pb.shape() && std::memcmp(pa.data(), pb.data(), sizeof(float) * pa.size()) == 0;
}

// Trains both one epoch on from `first` (first epochs done): the same losses and predictions.
void expect_same_next_epoch(Sequential& a, Sequential& b, const Images& train, const Images& test, FitOptions first) {
  FitOptions more = first;
  more.initial_epoch = first.epochs;
  more.epochs = first.epochs + 1;
  const History ha = a.fit(train.x, train.y, more), hb = b.fit(train.x, train.y, more);
  EXPECT_EQ(ha.loss, hb.loss);
  EXPECT_TRUE(same_predictions(a, b, test.x));
}

TEST(SeedModels, SaveLoadThroughTheLayerFactory) {
  const Images train = make_images(96, 1), test = make_images(16, 2);
  const FitOptions o = quiet_fit(1, 32, 4);
  for (const std::string& name : seed_model_names()) {
    SCOPED_TRACE(name);
    Sequential original = make_seed_model(name, 8);
    original.compile(std::make_unique<SGD>(0.01, 0.9));
    original.fit(train.x, train.y, o);
    Sequential loaded = saved_and_loaded(original);
    EXPECT_EQ(loaded.summary(), original.summary());
    EXPECT_TRUE(same_predictions(original, loaded, test.x));
    expect_same_next_epoch(original, loaded, train, test, o);
  }
}

// 33 images in batches of 32 end each epoch on a batch of one, which Keras's BatchNormalization
// normalizes to beta (variance 0) rather than refusing: fit trains through it.
TEST(SeedModels, FitThroughALastBatchOfOne) {
  const Images train = make_images(33, 6);
  const FitOptions o = quiet_fit(2, 32, FitOptions{}.seed);
  for (const std::string& name : seed_model_names()) {
    SCOPED_TRACE(name);
    Sequential model = make_seed_model(name, 3);
    model.compile(std::make_unique<SGD>(1e-3));
    History history;
    ASSERT_NO_THROW(history = model.fit(train.x, train.y, o));
    ASSERT_EQ(history.loss.size(), 2u);
    EXPECT_TRUE(std::isfinite(history.loss[1]));
    const Tensor p = model.predict(train.x);
    for (std::int64_t i = 0; i < p.size(); ++i) ASSERT_TRUE(std::isfinite(p[i]));
  }
}

// Dropout's masks come from (seed, training forwards so far): a model file keeps both, so a
// loaded model draws the next mask of the stream rather than the first again, whether the seed
// was given or drawn from the model's.
TEST(SeedModels, SaveLoadWithDropoutContinuesTheMaskStream) {
  const Images train = make_images(64, 3), test = make_images(16, 4);
  const FitOptions o = quiet_fit(1, 16, 5);
  for (const bool seeded : {true, false}) {
    SCOPED_TRACE(seeded ? "seeded Dropout" : "Dropout seeded by the model");
    Sequential original;
    original.add(std::make_unique<Flatten>());
    original.add(std::make_unique<Dense>(32, "relu"));
    original.add(std::make_unique<Dropout>(0.5f, seeded ? std::optional<std::uint64_t>(7) : std::nullopt));
    original.add(std::make_unique<Dense>(10, "softmax"));
    original.build({28, 28}, 11);
    original.compile(std::make_unique<SGD>(0.05));
    original.fit(train.x, train.y, o);
    Sequential loaded = saved_and_loaded(original);
    const auto& dropout = static_cast<const Dropout&>(loaded.layer(2));
    EXPECT_EQ(dropout.seed(), static_cast<const Dropout&>(original.layer(2)).seed());
    EXPECT_EQ(dropout.mask_step(), 4u);  // 64 / 16 training forwards
    expect_same_next_epoch(original, loaded, train, test, o);
  }
}

}  // namespace
}  // namespace bnlab
