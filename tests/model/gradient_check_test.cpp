#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "bnlab/model.hpp"
#include "model/test_layers.hpp"

namespace bnlab {
namespace {

using testing::TestBatchNorm;
using testing::TestDense;
using testing::TestFlatten;
using testing::TestLeakyReLU;

// Central differences of the training-mode loss against compute_gradients() for every
// parameter of a small model. The loss is evaluated in float by the model, so the step is
// large enough (1e-2) that rounding (~1e-7 / 2e-2) stays far below the tolerance; curvature
// error is O(h^2) on a smooth model (LeakyReLU's kink is unlikely to be crossed).
void check_model_gradients(Sequential& model, const Tensor& x, const std::vector<std::int32_t>& y) {
  model.compute_gradients(x, y);
  std::vector<std::vector<float>> analytic;
  for (Parameter* p : model.trainable_parameters()) analytic.emplace_back(p->grad.data(), p->grad.data() + p->grad.size());
  const float h = 1e-2f;
  std::size_t checked = 0;
  const auto params = model.trainable_parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    Parameter& p = *params[i];
    for (std::int64_t j = 0; j < p.value.size(); ++j) {
      const float saved = p.value[j];
      p.value[j] = saved + h;
      const double plus = model.compute_gradients(x, y);
      p.value[j] = saved - h;
      const double minus = model.compute_gradients(x, y);
      p.value[j] = saved;
      const double numeric = (plus - minus) / (2.0 * h);
      const double a = analytic[i][static_cast<std::size_t>(j)];
      EXPECT_NEAR(a, numeric, 2e-3 + 2e-2 * std::fabs(numeric))
          << model.layer(0).name() << " parameter " << i << " (" << p.name << ") element " << j;
      ++checked;
    }
  }
  EXPECT_EQ(static_cast<std::int64_t>(checked), model.count_trainable_params());
}

TEST(GradientCheck, WholeModelWithBatchNormAndFusedSoftmaxLoss) {
  Sequential model;
  model.add(std::make_unique<TestFlatten>());
  model.add(std::make_unique<TestBatchNorm>());
  model.add(std::make_unique<TestDense>(5));
  model.add(std::make_unique<TestBatchNorm>());
  model.add(std::make_unique<TestLeakyReLU>());
  model.add(std::make_unique<TestDense>(3, "softmax"));
  model.build({2, 3}, 9);
  model.compile(std::make_unique<SGD>(0.1));
  // Non-default gamma and beta so that their gradients are not at a symmetric point.
  for (Parameter* p : model.trainable_parameters())
    if (p->name == "gamma" || p->name == "beta")
      for (std::int64_t j = 0; j < p->value.size(); ++j) p->value[j] += 0.1f * static_cast<float>(j % 3) - 0.05f;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0.5f, 1.5f);
  Tensor x({8, 2, 3});
  for (std::int64_t i = 0; i < x.size(); ++i) x[i] = normal(rng);
  const std::vector<std::int32_t> y = {0, 1, 2, 0, 1, 2, 2, 1};
  check_model_gradients(model, x, y);
}

TEST(GradientCheck, FromLogitsModel) {
  Sequential model;
  model.add(std::make_unique<TestDense>(4, "relu"));
  model.add(std::make_unique<TestDense>(3));
  model.build({3}, 2);
  model.compile(std::make_unique<SGD>(0.1), {.from_logits = true});
  std::mt19937_64 rng(4);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Tensor x({6, 3}, Layout::NC);
  for (std::int64_t i = 0; i < x.size(); ++i) x[i] = normal(rng);
  check_model_gradients(model, x, {0, 1, 2, 2, 1, 0});
}

}  // namespace
}  // namespace bnlab
