#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "bnlab/layers/conv2d.hpp"
#include "bnlab/model.hpp"
#include "bnlab/profile.hpp"
#include "model/test_layers.hpp"

namespace bnlab {
namespace {

using testing::TestBatchNorm;
using testing::TestDense;
using testing::TestFlatten;

// Three Gaussian blobs in 4-D, one per class, far enough apart to be linearly separable.
struct Blobs {
  Tensor x;
  std::vector<std::int32_t> y;
};

Blobs make_blobs(std::int64_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.5f);
  const float centers[3][4] = {{2, 0, 0, 1}, {-2, 2, 0, 0}, {0, -2, 2, -1}};
  Blobs b{Tensor({n, 4}, Layout::NC), std::vector<std::int32_t>(static_cast<std::size_t>(n))};
  for (std::int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(i % 3);
    b.y[static_cast<std::size_t>(i)] = c;
    for (int f = 0; f < 4; ++f) b.x[i * 4 + f] = centers[c][f] + noise(rng);
  }
  return b;
}

Sequential blob_model(std::uint64_t seed, std::unique_ptr<Optimizer> optimizer) {
  Sequential model;
  model.add(std::make_unique<TestDense>(16, "relu"));
  model.add(std::make_unique<TestBatchNorm>());
  model.add(std::make_unique<TestDense>(3, "softmax"));
  model.build({4}, seed);
  model.compile(std::move(optimizer));
  return model;
}

FitOptions quiet(int epochs, std::int64_t batch_size = 16) {
  FitOptions o;
  o.epochs = epochs;
  o.batch_size = batch_size;
  o.verbose = Verbosity::silent;
  return o;
}

TEST(Fit, LearnsASeparableProblem) {
  const Blobs train = make_blobs(300, 1), test = make_blobs(150, 2);
  Sequential model = blob_model(7, std::make_unique<SGD>(0.05, 0.9));
  const EvaluateResult before = model.evaluate(test.x, test.y);
  const History h = model.fit(train.x, train.y, quiet(10));
  const EvaluateResult after = model.evaluate(test.x, test.y);
  EXPECT_GT(h.accuracy.back(), 0.95);
  EXPECT_GT(after.accuracy, 0.95);
  EXPECT_LT(after.loss, before.loss / 4);
  EXPECT_LT(h.loss.back(), h.loss.front());
}

// bench_training's split of a step: with profiling on, fit counts one batch gather and one
// optimizer update a step (the test layers call no kernel, so GEMM and BatchNorm stay at 0;
// tests/kernels/profile_test.cpp counts those); off, nothing.
TEST(Fit, ProfileCountsABatchGatherAndAnUpdateEachStep) {
  const Blobs train = make_blobs(40, 1);
  Sequential model = blob_model(7, std::make_unique<SGD>(0.01));
  auto calls = [](const profile::Totals& t, profile::Section s) { return t.calls[static_cast<std::size_t>(s)]; };
  profile::reset();
  profile::set_enabled(true);
  model.fit(train.x, train.y, quiet(2, 16));  // 3 steps an epoch, the last of 8
  profile::set_enabled(false);
  const profile::Totals on = profile::totals();
  EXPECT_EQ(calls(on, profile::Section::batch), 6);
  EXPECT_EQ(calls(on, profile::Section::optimizer), 6);
  EXPECT_EQ(calls(on, profile::Section::gemm), 0);
  EXPECT_EQ(calls(on, profile::Section::batchnorm), 0);
  EXPECT_GT(on.seconds[static_cast<std::size_t>(profile::Section::optimizer)], 0.0);
  profile::reset();
  model.fit(train.x, train.y, quiet(1, 16));
  const profile::Totals off = profile::totals();
  for (int s = 0; s < profile::section_count; ++s) EXPECT_EQ(off.calls[static_cast<std::size_t>(s)], 0) << s;
}

TEST(Fit, PrintsKerasVerbose2Lines) {
  const Blobs train = make_blobs(55, 1), valid = make_blobs(20, 2);
  Sequential model = blob_model(7, std::make_unique<SGD>(0.01));
  FitOptions o = quiet(3, 32);
  o.verbose = Verbosity::one_line_per_epoch;
  o.validation_x = valid.x;
  o.validation_y = valid.y;
  std::ostringstream out;
  model.fit(train.x, train.y, o, out);
  const std::string text = out.str();
  const std::regex line(
      "Epoch [1-3]/3\n2/2 - [0-9]+s - loss: [0-9]\\.[0-9]{4} - accuracy: [0-9]\\.[0-9]{4} - val_loss: "
      "[0-9]\\.[0-9]{4} - val_accuracy: [0-9]\\.[0-9]{4}\n");
  std::size_t lines = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), line), end; it != end; ++it) ++lines;
  EXPECT_EQ(lines, 3u) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 6) << text;
  EXPECT_EQ(text.rfind("Epoch 1/3\n", 0), 0u) << text;
}

TEST(Fit, StepCountIncludesThePartialBatchAsKerasDoes) {
  // 55,000 samples in batches of 32: 1718 full batches and one of 24, "1719/1719".
  const std::int64_t n = 55000;
  Tensor x({n, 1}, Layout::NC);
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    y[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % 2);
    x[i] = (i % 2) ? 1.0f : -1.0f;
  }
  Sequential model;
  model.add(std::make_unique<TestDense>(2, "softmax"));
  model.build({1}, 3);
  model.compile(std::make_unique<SGD>(1e-3));
  FitOptions o = quiet(1, 32);
  o.verbose = Verbosity::one_line_per_epoch;
  std::ostringstream out;
  model.fit(x, y, o, out);
  EXPECT_NE(out.str().find("\n1719/1719 - "), std::string::npos) << out.str();
  EXPECT_EQ(model.optimizer().iterations(), 1719);
}

TEST(Fit, ProgressBarRewritesOneLine) {
  const Blobs train = make_blobs(100, 1);
  Sequential model = blob_model(7, std::make_unique<SGD>(0.01));
  FitOptions o = quiet(1, 10);
  o.verbose = Verbosity::progress_bar;
  std::ostringstream out;
  model.fit(train.x, train.y, o, out);
  const std::string text = out.str();
  // The first update is always shown: 1 of 10 steps, 3 of 30 bar cells.
  EXPECT_NE(text.find("\r 1/10 [==>...........................] - ETA: "), std::string::npos) << text;
  const std::regex final_line(
      "\r10/10 \\[==============================\\] - [0-9]+s [0-9]+(s|ms|us)/step - loss: [0-9]\\.[0-9]{4} - "
      "accuracy: [0-9]\\.[0-9]{4} *\n$");
  EXPECT_TRUE(std::regex_search(text, final_line)) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;  // "Epoch 1/1" and the final line
}

TEST(Fit, HistoryHoldsOneEntryPerEpochAndValidationIsEvaluate) {
  const Blobs train = make_blobs(90, 1), valid = make_blobs(30, 2);
  Sequential model = blob_model(7, std::make_unique<SGD>(0.02, 0.5));
  FitOptions o = quiet(4);
  o.validation_x = valid.x;
  o.validation_y = valid.y;
  const History h = model.fit(train.x, train.y, o);
  ASSERT_EQ(h.epochs(), 4u);
  EXPECT_EQ(h.accuracy.size(), 4u);
  EXPECT_EQ(h.val_loss.size(), 4u);
  EXPECT_EQ(h.val_accuracy.size(), 4u);
  EXPECT_EQ(h.seconds.size(), 4u);
  for (std::size_t e = 0; e < 4; ++e) {
    EXPECT_GE(h.accuracy[e], 0.0);
    EXPECT_LE(h.accuracy[e], 1.0);
    EXPECT_GE(h.seconds[e], 0.0);
    // Accuracy is a count over 90 samples.
    EXPECT_NEAR(h.accuracy[e] * 90, std::round(h.accuracy[e] * 90), 1e-9);
  }
  // The last epoch's validation is evaluate() on the final weights in inference mode.
  const EvaluateResult val = model.evaluate(valid.x, valid.y, 16);
  EXPECT_EQ(val.loss, h.val_loss.back());
  EXPECT_EQ(val.accuracy, h.val_accuracy.back());
  const History without = blob_model(7, std::make_unique<SGD>(0.02)).fit(train.x, train.y, quiet(2));
  EXPECT_TRUE(without.val_loss.empty());
}

TEST(Fit, SameSeedSameRunOtherSeedOtherShuffle) {
  const Blobs train = make_blobs(64, 1);
  FitOptions o = quiet(3);
  o.seed = 11;
  const History a = blob_model(7, std::make_unique<SGD>(0.05)).fit(train.x, train.y, o);
  const History b = blob_model(7, std::make_unique<SGD>(0.05)).fit(train.x, train.y, o);
  EXPECT_EQ(a.loss, b.loss);
  o.seed = 12;
  const History c = blob_model(7, std::make_unique<SGD>(0.05)).fit(train.x, train.y, o);
  EXPECT_NE(a.loss, c.loss);
}

TEST(Fit, CallbackSeesEveryEpochAndCanStop) {
  const Blobs train = make_blobs(48, 1);
  Sequential model = blob_model(7, std::make_unique<SGD>(0.05));
  std::vector<int> seen;
  FitOptions o = quiet(5);
  o.on_epoch_end = [&](int epoch, const History& h) {
    seen.push_back(epoch);
    EXPECT_EQ(h.epochs(), seen.size());
    return epoch < 1;
  };
  const History h = model.fit(train.x, train.y, o);
  EXPECT_EQ(seen, (std::vector<int>{0, 1}));
  EXPECT_EQ(h.epochs(), 2u);
}

// Every parameter of a and b, value for value.
void expect_same_weights(Sequential& a, Sequential& b) {
  const auto pa = a.parameters(), pb = b.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i)
    for (std::int64_t j = 0; j < pa[i]->value.size(); ++j) ASSERT_EQ(pa[i]->value[j], pb[i]->value[j]) << pa[i]->name;
}

// Three epochs in one fit call: what the runs split over several calls are compared with.
struct WholeRun {
  static FitOptions options() {
    FitOptions o = quiet(3);
    o.seed = 5;
    return o;
  }
  static Sequential model() { return blob_model(7, std::make_unique<SGD>(0.05, 0.9)); }
  Blobs train = make_blobs(60, 1);
  Sequential whole = model();
  History full = whole.fit(train.x, train.y, options());
};

TEST(Fit, InitialEpochResumesTheNumberingAndTheShuffle) {
  WholeRun run;
  const Blobs& train = run.train;
  FitOptions o = WholeRun::options();
  Sequential split = WholeRun::model();
  o.epochs = 2;
  split.fit(train.x, train.y, o);
  o.epochs = 3;
  o.initial_epoch = 2;
  o.verbose = Verbosity::one_line_per_epoch;
  std::ostringstream out;
  const History rest = split.fit(train.x, train.y, o, out);
  EXPECT_EQ(out.str().rfind("Epoch 3/3\n", 0), 0u) << out.str();
  ASSERT_EQ(rest.epochs(), 1u);
  EXPECT_EQ(rest.loss[0], run.full.loss[2]);
  expect_same_weights(run.whole, split);
}

// Keras reshuffles on every epoch, whatever the calls: fit(epochs = 1) in a loop trains on the
// orders of one call with epochs = 3, not on epoch 0's order three times.
TEST(Fit, RepeatedCallsShuffleAnewInTheOrdersOfOneCall) {
  WholeRun run;
  const Blobs& train = run.train;
  FitOptions o = WholeRun::options();
  Sequential looped = WholeRun::model();
  o.epochs = 1;
  std::vector<double> losses;
  for (int call = 0; call < 3; ++call) losses.push_back(looped.fit(train.x, train.y, o).loss[0]);
  EXPECT_EQ(losses, run.full.loss);
  expect_same_weights(run.whole, looped);

  // After those keys (0, 1, 2), a call from initial_epoch 0 goes on with 3, as does the Keras
  // idiom fit(initial_epoch = 3, epochs = 4).
  o.epochs = 1;
  const double next_from_zero = looped.fit(train.x, train.y, o).loss[0];
  o.initial_epoch = 3;
  o.epochs = 4;
  const double next_as_epoch_three = run.whole.fit(train.x, train.y, o).loss[0];
  EXPECT_EQ(next_from_zero, next_as_epoch_three);
}

TEST(Fit, NonFiniteLossStopsWithEpochAndStep) {
  Blobs train = make_blobs(64, 1);
  train.x[40 * 4 + 2] = std::numeric_limits<float>::quiet_NaN();  // sample 40: batch 3 of 16
  // No ReLU in front: the loss check should not depend on how an activation treats NaN.
  Sequential model;
  model.add(std::make_unique<TestDense>(3, "softmax"));
  model.build({4}, 7);
  model.compile(std::make_unique<SGD>(0.05));
  FitOptions o = quiet(2);
  o.shuffle = false;
  try {
    model.fit(train.x, train.y, o);
    FAIL() << "fit accepted a NaN loss";
  } catch (const NonFiniteLossError& e) {
    EXPECT_EQ(e.epoch(), 0);
    EXPECT_EQ(e.step(), 2);
    EXPECT_TRUE(std::isnan(e.loss()));
    EXPECT_EQ(e.history().epochs(), 0u);
    EXPECT_NE(std::string(e.what()).find("epoch 1, step 3"), std::string::npos) << e.what();
  }
  // The failing step applied no update: only the two steps before it moved the optimizer.
  EXPECT_EQ(model.optimizer().iterations(), 2);
  for (const Parameter* p : model.parameters())
    for (std::int64_t j = 0; j < p->value.size(); ++j) ASSERT_TRUE(std::isfinite(p->value[j])) << p->name;
}

TEST(Fit, ArgumentsAreChecked) {
  const Blobs train = make_blobs(30, 1);
  Sequential model = blob_model(7, std::make_unique<SGD>(0.05));
  std::vector<std::int32_t> short_labels(train.y.begin(), train.y.end() - 1);
  EXPECT_THROW(model.fit(train.x, short_labels, quiet(1)), std::invalid_argument);
  std::vector<std::int32_t> bad = train.y;
  bad[5] = 3;
  try {
    model.fit(train.x, bad, quiet(1));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("label 3 of sample 5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model.fit(train.x, train.y, quiet(1, 0)), std::invalid_argument);
  EXPECT_THROW(model.fit(Tensor({30, 5}), train.y, quiet(1)), std::invalid_argument);
  FitOptions o = quiet(2);
  o.initial_epoch = 3;
  EXPECT_THROW(model.fit(train.x, train.y, o), std::invalid_argument);
  Sequential uncompiled;
  uncompiled.add(std::make_unique<TestDense>(3, "softmax"));
  uncompiled.build({4}, 0);
  EXPECT_THROW(uncompiled.fit(train.x, train.y, quiet(1)), std::logic_error);
}

TEST(Predict, InferenceModeUsesMovingStatistics) {
  const Blobs train = make_blobs(120, 1), test = make_blobs(9, 3);
  Sequential model = blob_model(7, std::make_unique<SGD>(0.05, 0.9));
  model.fit(train.x, train.y, quiet(3));
  std::vector<std::vector<float>> before;
  for (const Parameter* p : model.parameters()) before.emplace_back(p->value.data(), p->value.data() + p->value.size());

  const Tensor all = model.predict(test.x, 4);
  ASSERT_EQ(all.shape(), (Shape{9, 3}));
  for (std::int64_t i = 0; i < 9; ++i) {
    double sum = 0;
    for (int k = 0; k < 3; ++k) sum += all[i * 3 + k];
    EXPECT_NEAR(sum, 1.0, 1e-5);
    // One sample alone gives the same row: a batch of one uses the moving statistics, not its own.
    const Tensor one = model.predict(test.x.slice_batch(i, i + 1));
    for (int k = 0; k < 3; ++k) EXPECT_FLOAT_EQ(one[k], all[i * 3 + k]);
  }
  model.evaluate(test.x, test.y, 2);
  // Neither predict nor evaluate moved a parameter or a moving statistic.
  const auto params = model.parameters();
  for (std::size_t i = 0; i < params.size(); ++i)
    for (std::int64_t j = 0; j < params[i]->value.size(); ++j) ASSERT_EQ(params[i]->value[j], before[i][j]);
}

// As Keras's predict: the model's own outputs, logits for a from_logits model (not their
// softmax), from any built model, compiled or not, whatever its last layer's shape.
TEST(Predict, ReturnsTheModelsOutputsAsKerasDoes) {
  Sequential model;
  model.add(std::make_unique<TestDense>(3));
  model.build({4}, 1);
  const Blobs data = make_blobs(6, 1);
  const Tensor logits = model.layer(0).forward(data.x, false);
  const Tensor uncompiled = model.predict(data.x, 4);
  ASSERT_EQ(uncompiled.shape(), (Shape{6, 3}));
  for (std::int64_t i = 0; i < logits.size(); ++i) EXPECT_EQ(uncompiled[i], logits[i]);
  model.compile(std::make_unique<SGD>(0.1), {.from_logits = true});
  const Tensor p = model.predict(data.x);
  for (std::int64_t i = 0; i < logits.size(); ++i) EXPECT_EQ(p[i], logits[i]);
  const History h = model.fit(data.x, data.y, quiet(2, 3));
  EXPECT_EQ(h.epochs(), 2u);
  EXPECT_TRUE(std::isfinite(h.loss.back()));

  // A feature extractor: per-sample output (2, 2, 2), no loss possible, still predicts.
  Sequential features;
  features.add(std::make_unique<Conv2D>(2, std::array<std::int64_t, 2>{2, 2}));
  features.build({3, 3, 1}, 5);
  Tensor images({5, 3, 3, 1}, Layout::NHWC);
  for (std::int64_t i = 0; i < images.size(); ++i) images[i] = std::sin(float(i));
  const Tensor out = features.predict(images, 2);
  ASSERT_EQ(out.shape(), (Shape{5, 2, 2, 2}));
  EXPECT_EQ(out.layout(), Layout::NHWC);
  const Tensor whole = features.layer(0).forward(images, false);
  for (std::int64_t i = 0; i < whole.size(); ++i) EXPECT_EQ(out[i], whole[i]);
  EXPECT_THROW(Sequential().predict(images), std::logic_error);
}

TEST(Evaluate, LossIsTheMeanCrossEntropyOverSamples) {
  Sequential model;
  model.add(std::make_unique<TestFlatten>());
  model.add(std::make_unique<TestDense>(3, "softmax"));
  model.build({2, 2}, 4);
  model.compile(std::make_unique<SGD>(0.1));
  const Blobs data = make_blobs(7, 5);
  const Tensor x = data.x.reshape({7, 2, 2});
  const Tensor p = model.predict(x, 3);
  double expected = 0;
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < 7; ++i) {
    const std::int32_t label = data.y[static_cast<std::size_t>(i)];
    expected -= std::log(double(p[i * 3 + label]));
    int best = 0;
    for (int k = 1; k < 3; ++k)
      if (p[i * 3 + k] > p[i * 3 + best]) best = k;
    correct += best == label;
  }
  // Batch size must not matter: the loss is a mean over samples, not over batches.
  for (std::int64_t batch : {1, 3, 7, 100}) {
    const EvaluateResult r = model.evaluate(x, data.y, batch);
    EXPECT_NEAR(r.loss, expected / 7, 1e-5) << batch;
    EXPECT_DOUBLE_EQ(r.accuracy, double(correct) / 7) << batch;
  }
}

}  // namespace
}  // namespace bnlab
