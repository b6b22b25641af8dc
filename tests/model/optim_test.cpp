#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <limits>
#include <stdexcept>
#include <string>

#include "bnlab/optim.hpp"

namespace bnlab {
namespace {

// One trainable parameter of two elements whose gradient the test sets before each step.
struct OneParameter {
  Parameter p{"kernel", Tensor::from({2}, {1.0f, -2.0f}), Tensor({2}), true};
  std::vector<Parameter*> list{&p};
  void step(Optimizer& opt, float g0, float g1) {
    p.grad[0] = g0;
    p.grad[1] = g1;
    opt.apply(list);
  }
};

// The message of the std::invalid_argument f throws (optim.hpp's promise for bad arguments);
// another exception type gives no message, so a check on the text fails.
template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::exception&) {
    return "(not std::invalid_argument)";
  }
  return "(no exception)";
}

TEST(SGD, PlainStepIsLearningRateTimesGradient) {
  OneParameter w;
  SGD sgd(0.1);
  sgd.build(w.list);
  EXPECT_TRUE(sgd.slots().empty());  // Keras keeps no accumulator without momentum
  w.step(sgd, 0.5f, -3.0f);
  EXPECT_FLOAT_EQ(w.p.value[0], 0.95f);
  EXPECT_FLOAT_EQ(w.p.value[1], -1.7f);
  w.step(sgd, -1.0f, 1.0f);
  EXPECT_FLOAT_EQ(w.p.value[0], 1.05f);
  EXPECT_FLOAT_EQ(w.p.value[1], -1.8f);
  EXPECT_EQ(sgd.iterations(), 2);
}

TEST(SGD, MomentumFollowsKerasVelocityRule) {
  // v = 0.9 v - 0.1 g; w += v.  Grads 0.5, 0.5, -1 on w = 1:
  // v = -0.05, -0.095, 0.0145;  w = 0.95, 0.855, 0.8695.
  OneParameter w;
  SGD sgd(0.1, 0.9);
  sgd.build(w.list);
  ASSERT_EQ(sgd.slots().size(), 1u);
  w.step(sgd, 0.5f, 0.0f);
  EXPECT_NEAR(w.p.value[0], 0.95, 1e-6);
  EXPECT_NEAR(sgd.slots()[0][0], -0.05, 1e-7);
  w.step(sgd, 0.5f, 0.0f);
  EXPECT_NEAR(w.p.value[0], 0.855, 1e-6);
  w.step(sgd, -1.0f, 0.0f);
  EXPECT_NEAR(w.p.value[0], 0.8695, 1e-6);
  EXPECT_NEAR(sgd.slots()[0][0], 0.0145, 1e-7);
  EXPECT_FLOAT_EQ(w.p.value[1], -2.0f);  // zero gradient, zero velocity: no move
}

TEST(SGD, NesterovLooksAhead) {
  // v as above; w += 0.9 v - 0.1 g:  w = 0.905, 0.7695, 0.88255.
  OneParameter w;
  SGD sgd(0.1, 0.9, true);
  sgd.build(w.list);
  w.step(sgd, 0.5f, 0.0f);
  EXPECT_NEAR(w.p.value[0], 0.905, 1e-6);
  w.step(sgd, 0.5f, 0.0f);
  EXPECT_NEAR(w.p.value[0], 0.7695, 1e-6);
  w.step(sgd, -1.0f, 0.0f);
  EXPECT_NEAR(w.p.value[0], 0.88255, 1e-6);
}

// The vectorized, threaded updates against the plain loops in Keras's float order, bit for
// bit, for sizes around the 16-lane vectors and the 2^15-element threading threshold.
TEST(Optimizer, UpdatesMatchScalarLoopsBitForBit) {
  const float lr = 0.01f, mu = 0.9f;
  const double beta_1 = 0.9, beta_2 = 0.999, eps = 1e-7;
  for (std::int64_t n : {1, 15, 16, 17, 300, 32768, 32769, 70001}) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE("n " + std::to_string(n) + " threads " + std::to_string(threads));
      const int saved = omp_get_max_threads();
      omp_set_num_threads(threads);
      std::mt19937 gen(static_cast<unsigned>(n));
      std::normal_distribution<float> normal(0.0f, 1.0f);
      std::vector<float> w0(static_cast<std::size_t>(n)), g0(w0.size()), g1(w0.size());
      for (std::size_t i = 0; i < w0.size(); ++i) {
        w0[i] = normal(gen);
        g0[i] = normal(gen);
        g1[i] = i % 5 == 2 ? -0.0f : normal(gen);
      }
      const std::vector<std::int64_t> shape{n};
      auto run = [&](Optimizer& opt) {
        Parameter p{"kernel", Tensor(shape), Tensor(shape), true};
        std::memcpy(p.value.data(), w0.data(), w0.size() * sizeof(float));
        std::vector<Parameter*> list{&p};
        opt.build(list);
        for (const auto* g : {&g0, &g1}) {
          std::memcpy(p.grad.data(), g->data(), g->size() * sizeof(float));
          opt.apply(list);
        }
        return std::vector<float>(p.value.data(), p.value.data() + n);
      };
      auto expect_same = [](const std::vector<float>& expected, const std::vector<float>& actual) {
        ASSERT_EQ(expected.size(), actual.size());
        for (std::size_t i = 0; i < expected.size(); ++i)
          ASSERT_EQ(std::memcmp(&expected[i], &actual[i], sizeof(float)), 0) << i << ": " << expected[i] << " vs " << actual[i];
      };
      std::vector<float> plain = w0, momentum = w0, nesterov = w0, adam = w0;
      std::vector<float> v_m(w0.size(), 0.0f), v_n(w0.size(), 0.0f), m_a(w0.size(), 0.0f), v_a(w0.size(), 0.0f);
      int t = 0;
      for (const auto* g : {&g0, &g1}) {
        ++t;
        const double step = 0.001 * std::sqrt(1.0 - std::pow(beta_2, t)) / (1.0 - std::pow(beta_1, t));
        const float lr_t = static_cast<float>(step), b1 = static_cast<float>(1.0 - beta_1),
                    b2 = static_cast<float>(1.0 - beta_2), e = static_cast<float>(eps);
        for (std::size_t i = 0; i < w0.size(); ++i) {
          const float gi = (*g)[i];
          plain[i] -= gi * lr;
          v_m[i] = v_m[i] * mu - gi * lr;
          momentum[i] += v_m[i];
          v_n[i] = v_n[i] * mu - gi * lr;
          nesterov[i] += v_n[i] * mu - gi * lr;
          m_a[i] += (gi - m_a[i]) * b1;
          v_a[i] += (gi * gi - v_a[i]) * b2;
          adam[i] -= (m_a[i] * lr_t) / (std::sqrt(v_a[i]) + e);
        }
      }
      SGD sgd(lr), sgd_momentum(lr, mu), sgd_nesterov(lr, mu, true);
      Adam adam_opt(0.001, beta_1, beta_2, eps);
      expect_same(plain, run(sgd));
      expect_same(momentum, run(sgd_momentum));
      expect_same(nesterov, run(sgd_nesterov));
      expect_same(adam, run(adam_opt));
      omp_set_num_threads(saved);
    }
  }
}

TEST(Adam, MatchesKerasFormulationForThreeSteps) {
  // Reference computed by hand (float64) with lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) and
  // epsilon added to sqrt(v): lr 0.1, grads (0.5, -3), (0.5, 1), (-1, 0.25) on w = (1, -2).
  OneParameter w;
  Adam adam(0.1);
  adam.build(w.list);
  ASSERT_EQ(adam.slots().size(), 2u);
  w.step(adam, 0.5f, -3.0f);
  EXPECT_NEAR(w.p.value[0], 0.9000006324515321, 2e-6);
  EXPECT_NEAR(w.p.value[1], -1.9000001054091442, 2e-6);
  EXPECT_NEAR(adam.slots()[0][1], -0.3, 1e-7);   // m
  EXPECT_NEAR(adam.slots()[1][1], 0.009, 1e-8);  // v
  w.step(adam, 0.5f, 1.0f);
  EXPECT_NEAR(w.p.value[0], 0.8000010797749726, 2e-6);
  EXPECT_NEAR(w.p.value[1], -1.859978288253541, 2e-6);
  w.step(adam, -1.0f, 0.25f);
  EXPECT_NEAR(w.p.value[0], 0.8075659933132358, 2e-6);
  EXPECT_NEAR(w.p.value[1], -1.8341770260177008, 2e-6);
  EXPECT_NEAR(adam.slots()[0][0], -0.0145, 1e-7);
  EXPECT_NEAR(adam.slots()[1][1], 0.010043509, 1e-8);
  EXPECT_EQ(adam.iterations(), 3);
}

TEST(Optimizer, StateRoundTripContinuesIdentically) {
  OneParameter a, b;
  Adam first(0.05), second(0.05);
  first.build(a.list);
  a.step(first, 0.3f, -0.7f);
  a.step(first, -0.1f, 0.2f);
  b.p.value = a.p.value.clone();
  second.build(b.list);
  second.set_state(first.state());
  EXPECT_EQ(second.iterations(), 2);
  a.step(first, 0.4f, 0.4f);
  b.step(second, 0.4f, 0.4f);
  EXPECT_EQ(a.p.value[0], b.p.value[0]);
  EXPECT_EQ(a.p.value[1], b.p.value[1]);
  // state() is a deep copy, not a view of the live slots.
  OptimizerState snapshot = first.state();
  snapshot.slots[0][0] = 1234.0f;
  EXPECT_NE(first.slots()[0][0], 1234.0f);
}

TEST(Optimizer, SetStateRefusesMismatches) {
  OneParameter w;
  SGD momentum(0.1, 0.5), plain(0.1);
  momentum.build(w.list);
  plain.build(w.list);
  EXPECT_NE(message_of([&] { plain.set_state(momentum.state()); }).find("slots"), std::string::npos);
  Adam adam;
  adam.build(w.list);
  EXPECT_NE(message_of([&] { adam.set_state(momentum.state()); }).find("SGD"), std::string::npos);
  Adam unbuilt;
  EXPECT_THROW(unbuilt.set_state(adam.state()), std::logic_error);
  EXPECT_THROW(unbuilt.apply(w.list), std::logic_error);
}

TEST(Optimizer, ApplyChecksTheParameterList) {
  OneParameter w, other;
  SGD sgd(0.1);
  sgd.build(w.list);
  std::vector<Parameter*> two{&w.p, &other.p};
  EXPECT_THROW(sgd.apply(two), std::invalid_argument);
  Parameter frozen{"moving_mean", Tensor({2}), {}, false};
  std::vector<Parameter*> with_frozen{&frozen};
  EXPECT_THROW(sgd.build(with_frozen), std::invalid_argument);
}

TEST(Optimizer, HyperparametersAreValidatedByName) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_NE(message_of([] { SGD sgd(0.0); }).find("learning_rate"), std::string::npos);
  EXPECT_NE(message_of([&] { SGD sgd(nan); }).find("learning_rate"), std::string::npos);
  EXPECT_NE(message_of([&] { SGD sgd(inf); }).find("learning_rate"), std::string::npos);
  EXPECT_NE(message_of([] { SGD sgd(0.1, 1.0); }).find("momentum"), std::string::npos);
  EXPECT_NE(message_of([] { SGD sgd(0.1, -0.1); }).find("momentum"), std::string::npos);
  EXPECT_NE(message_of([] { Adam adam(-1e-3); }).find("learning_rate"), std::string::npos);
  EXPECT_NE(message_of([] { Adam adam(1e-3, 1.0); }).find("beta_1"), std::string::npos);
  EXPECT_NE(message_of([] { Adam adam(1e-3, 0.9, 1.5); }).find("beta_2"), std::string::npos);
  EXPECT_NE(message_of([] { Adam adam(1e-3, 0.9, 0.999, 0.0); }).find("epsilon"), std::string::npos);
  EXPECT_NO_THROW(SGD(1e-3, 0.0, true));
}

TEST(Optimizer, MakeOptimizerRebuildsFromHyperparameters) {
  SGD sgd(0.02, 0.8, true);
  auto copy = make_optimizer("SGD", sgd.hyperparameters());
  auto* rebuilt = dynamic_cast<SGD*>(copy.get());
  ASSERT_NE(rebuilt, nullptr);
  EXPECT_EQ(rebuilt->learning_rate(), 0.02);
  EXPECT_EQ(rebuilt->momentum(), 0.8);
  EXPECT_TRUE(rebuilt->nesterov());
  Adam adam(0.003, 0.8, 0.99, 1e-6);
  auto* adam_copy = dynamic_cast<Adam*>(make_optimizer("Adam", adam.hyperparameters()).release());
  ASSERT_NE(adam_copy, nullptr);
  EXPECT_EQ(adam_copy->beta_2(), 0.99);
  EXPECT_EQ(adam_copy->epsilon(), 1e-6);
  delete adam_copy;
  EXPECT_NE(message_of([] { make_optimizer("RMSprop", {}); }).find("SGD, Adam"), std::string::npos);
  EXPECT_NE(message_of([] { make_optimizer("SGD", {{"learning_rate", 0.1}}); }).find("momentum"), std::string::npos);
  EXPECT_NE(message_of([] {
              make_optimizer("SGD", {{"learning_rate", 0.1}, {"momentum", 0}, {"nesterov", 0}, {"decay", 1}});
            }).find("decay"),
            std::string::npos);
}

}  // namespace
}  // namespace bnlab
