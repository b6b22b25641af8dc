#include <gtest/gtest.h>

#include <cmath>
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

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
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
