// Keras's weight regularizers (kernel_regularizer, bias_regularizer, gamma_regularizer,
// beta_regularizer): their spelling, the penalty in the reported losses, its gradient by central
// differences of the loss compute_gradients returns, and configs and model files that keep them.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "bnlab/kernels/regularization.hpp"
#include "bnlab/layers/layers.hpp"
#include "bnlab/model.hpp"
#include "layers/grad_check.hpp"
#include "support/temp_dir.hpp"

namespace bnlab {
namespace {

using testing::random_tensor;

TEST(Regularizer, ParsesKerasSpellingsAndRefusesTheRest) {
  const Regularizer l2 = Regularizer::parse("l2", "Dense", "kernel_regularizer");
  EXPECT_EQ(l2.l1, 0.0);
  EXPECT_EQ(l2.l2, 0.01);  // Keras's default factor
  EXPECT_EQ(Regularizer::parse("l1", "Dense", "kernel_regularizer").l1, 0.01);
  const Regularizer both = Regularizer::parse("l1_l2(0.5,0.25)", "Dense", "kernel_regularizer");
  EXPECT_EQ(both.l1, 0.5);
  EXPECT_EQ(both.l2, 0.25);
  for (const char* text : {"l2(0.001)", "l1(3)", "l1_l2(0.5,0.25)"})
    EXPECT_EQ(Regularizer::parse(text, "x", "y").to_string(), text);
  for (const char* bad : {"l3", "l2(-1)", "l2(x)", "l1_l2(0.1)", "l2(nan)", "l2(0.1", "L2(0.1)", ""}) {
    const std::string quoted = "kernel_regularizer is \"" + std::string(bad) + "\"";
    BNLAB_EXPECT_INVALID(Regularizer::parse(bad, "Dense 'd'", "kernel_regularizer"), "Dense 'd'", quoted.c_str());
  }
  BNLAB_EXPECT_INVALID(Regularizer::parse("l2(1e39)", "Dense", "kernel_regularizer"), "l2(1e39)");
  Flatten flatten;
  BNLAB_EXPECT_INVALID(flatten.set_regularizer("kernel", l2), "kernel_regularizer", "Flatten has no parameter");
  // What a file could not load is not set either: negative, NaN, or past float's range.
  Dense kernel_owner(3);
  for (const Regularizer bad : {Regularizer{0.0, -1.0}, Regularizer{std::nan(""), 0.0}, Regularizer{1e39, 0.0}})
    BNLAB_EXPECT_INVALID(kernel_owner.set_regularizer("kernel", bad), "kernel_regularizer", "within float's range");
  Dense dense(3);
  BNLAB_EXPECT_INVALID(dense.set_regularizer("gamma", l2), "gamma_regularizer", "(it has kernel, bias)");
}

TEST(Regularizer, PenaltyAndGradientKernels) {
  const std::vector<float> w{0.5f, -2.0f, 0.0f, 3.0f};
  EXPECT_DOUBLE_EQ(kernels::regularization_penalty(4, w.data(), 0.1, 0.01), 0.1 * 5.5 + 0.01 * 13.25);
  std::vector<float> grad{1.0f, 1.0f, 1.0f, 1.0f};
  kernels::add_regularization_gradient(4, w.data(), 0.1, 0.01, grad.data());
  EXPECT_FLOAT_EQ(grad[0], 1.0f + 0.1f + 0.02f * 0.5f);
  EXPECT_FLOAT_EQ(grad[1], 1.0f - 0.1f - 0.02f * 2.0f);
  EXPECT_FLOAT_EQ(grad[2], 1.0f);  // sign(0) = 0, as tf.sign
  EXPECT_FLOAT_EQ(grad[3], 1.0f + 0.1f + 0.02f * 3.0f);
}

Sequential regularized_model(bool regularize) {
  Sequential model("regularized");
  model.add(std::make_unique<Dense>(6, "relu"));
  model.add(std::make_unique<BatchNormalization>());
  model.add(std::make_unique<Dense>(3, "softmax"));
  if (regularize) {
    model.layer(0).set_regularizer("kernel", Regularizer{0.0, 0.05});
    model.layer(0).set_regularizer("bias", Regularizer{0.02, 0.0});
    model.layer(1).set_regularizer("gamma", Regularizer{0.01, 0.03});
  }
  model.build({4}, 3);
  for (Parameter* p : model.parameters())
    if (p->name == "bias" || p->name == "beta")  // nonzero, so the L1 term has a sign to follow
      for (std::int64_t i = 0; i < p->value.size(); ++i) p->value[i] = 0.1f * static_cast<float>(i % 3) - 0.1f;
  model.compile(std::make_unique<SGD>(0.1));
  return model;
}

// Central differences of compute_gradients' loss against its grads, every third entry of every
// trainable parameter. The moving statistics move on every training forward but do not enter a
// training forward's output, so the loss is a function of the weights alone.
void expect_gradients_match_central_differences(Sequential& model, const Tensor& x,
                                                const std::vector<std::int32_t>& y) {
  model.compute_gradients(x, y);
  std::vector<Tensor> grads;
  for (Parameter* p : model.parameters())
    if (p->trainable) grads.push_back(p->grad.clone());
  std::size_t k = 0;
  for (Parameter* p : model.parameters()) {
    if (!p->trainable) continue;
    for (std::int64_t i = 0; i < p->value.size(); i += 3) {
      const float saved = p->value[i];
      p->value[i] = saved + 1e-3f;
      const double up = model.compute_gradients(x, y);
      p->value[i] = saved - 1e-3f;
      const double down = model.compute_gradients(x, y);
      p->value[i] = saved;
      const double taken = double(saved + 1e-3f) - double(saved - 1e-3f);
      const double numeric = (up - down) / taken;
      EXPECT_NEAR(grads[k][i], numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << p->name << "[" << i << "]";
    }
    ++k;
  }
}

// The loss compute_gradients returns includes the penalty, and the grads are its gradient.
TEST(Regularizer, LossesIncludeThePenaltyAndGradientsMatchCentralDifferences) {
  const Tensor x = random_tensor({8, 4}, Layout::NC, 1, -2.0f, 2.0f);
  const std::vector<std::int32_t> y{0, 1, 2, 0, 1, 2, 0, 1};
  Sequential plain = regularized_model(false), model = regularized_model(true);
  const double penalty = model.regularization_loss();
  double expected = 0.0;
  auto add = [&](const Tensor& w, double l1, double l2) {
    for (std::int64_t i = 0; i < w.size(); ++i) expected += l1 * std::fabs(double(w[i])) + l2 * double(w[i]) * w[i];
  };
  const std::vector<Parameter*> first = model.layer(0).parameters(), second = model.layer(1).parameters();
  add(first[0]->value, 0.0, 0.05);    // Dense kernel
  add(first[1]->value, 0.02, 0.0);    // Dense bias
  add(second[0]->value, 0.01, 0.03);  // BatchNormalization gamma
  EXPECT_NEAR(penalty, expected, 1e-9);
  EXPECT_GT(penalty, 0.0);
  EXPECT_EQ(plain.regularization_loss(), 0.0);
  EXPECT_NEAR(model.evaluate(x, y, 3).loss, plain.evaluate(x, y, 3).loss + penalty, 1e-9);

  expect_gradients_match_central_differences(model, x, y);
}

// Approach One's shape: a first-trained BatchNormalization feeding a Dense, which writes the
// normalization's gamma and beta grads (the takeover); their regularizers' gradient still joins.
TEST(Regularizer, GradientsJoinTheDenseTakeoverOfTheFirstNormalization) {
  Sequential model("takeover");
  model.add(std::make_unique<BatchNormalization>());
  model.add(std::make_unique<Dense>(5, "relu"));
  model.add(std::make_unique<Dense>(3, "softmax"));
  model.layer(0).set_regularizer("gamma", Regularizer{0.0, 0.2});
  model.layer(0).set_regularizer("beta", Regularizer{0.05, 0.1});
  model.build({4}, 5);
  for (std::int64_t i = 0; i < 4; ++i) model.layer(0).parameters()[1]->value[i] = 0.1f * static_cast<float>(i) - 0.15f;
  model.compile(std::make_unique<SGD>(0.1));
  ASSERT_TRUE(model.layer(1).takes_over_previous_backward());
  const Tensor x = random_tensor({8, 4}, Layout::NC, 4, -2.0f, 2.0f);
  expect_gradients_match_central_differences(model, x, {0, 1, 2, 0, 1, 2, 0, 1});
}

// fit's epoch loss is Keras's: each batch's mean cross-entropy plus the penalty before its update.
TEST(Regularizer, FitReportsThePenalizedLossAndShrinksTheWeights) {
  const Tensor x = random_tensor({8, 4}, Layout::NC, 2, -2.0f, 2.0f);
  const std::vector<std::int32_t> y{0, 1, 2, 0, 1, 2, 0, 1};
  Sequential reference = regularized_model(true), model = regularized_model(true);
  const double first_step_loss = reference.compute_gradients(x, y);
  FitOptions options;
  options.epochs = 1;
  options.batch_size = 8;  // one step
  options.shuffle = false;
  options.verbose = Verbosity::silent;
  EXPECT_DOUBLE_EQ(model.fit(x, y, options).loss[0], first_step_loss);
  // A strong L2 on the first kernel alone drives it towards 0 faster than without.
  Sequential strong = regularized_model(false), weak = regularized_model(false);
  strong.layer(0).set_regularizer("kernel", Regularizer{0.0, 1.0});
  options.epochs = 20;
  strong.fit(x, y, options);
  weak.fit(x, y, options);
  auto norm = [](Sequential& m) {
    double sum = 0;
    const Tensor& w = m.parameters()[0]->value;
    for (std::int64_t i = 0; i < w.size(); ++i) sum += double(w[i]) * w[i];
    return sum;
  };
  EXPECT_LT(norm(strong), 0.5 * norm(weak));
}

TEST(Regularizer, ConfigsAndModelFilesKeepThem) {
  Sequential model = regularized_model(true);
  EXPECT_EQ(model.layer(0).config().at("kernel_regularizer"), "l2(0.05)");
  EXPECT_EQ(model.layer(0).config().at("bias_regularizer"), "l1(0.02)");
  EXPECT_EQ(model.layer(1).config().at("gamma_regularizer"), "l1_l2(0.01,0.03)");
  EXPECT_EQ(model.layer(2).config().count("kernel_regularizer"), 0u);
  const auto copy = make_layer("BatchNormalization", model.layer(1).config());
  ASSERT_NE(copy->regularizer("gamma"), nullptr);
  EXPECT_EQ(copy->regularizer("gamma")->l2, 0.03);
  BNLAB_EXPECT_INVALID(make_layer("Dense", {{"units", "2"}, {"kernel_regularizer", "l2(-1)"}}), "kernel_regularizer",
                       "l2(-1)");
  BNLAB_EXPECT_INVALID(make_layer("Flatten", {{"kernel_regularizer", "l2"}}), "no config key \"kernel_regularizer\"");
  testing::ScratchDirectory dir("bnlab_regularizer");
  const std::string path = (dir.path() / "model.bnlb").string();
  model.save(path);
  Sequential loaded = Sequential::load(path);
  EXPECT_EQ(loaded.regularization_loss(), model.regularization_loss());
}

}  // namespace
}  // namespace bnlab
