#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <cstring>

#include "bnlab/kernels/activations.hpp"
#include "bnlab/layers/batch_normalization.hpp"
#include "bnlab/layers/dense.hpp"
#include "layers/grad_check.hpp"

namespace bnlab {
namespace {

using testing::check_layer_gradients;
using testing::random_tensor;

// Dense forward against a double-precision y = act(x W + b) written out directly.
TEST(Dense, ForwardMatchesDoubleReference) {
  Rng rng(7);
  Dense dense(5, "tanh");
  ASSERT_EQ(dense.build({4}, rng), (Shape{5}));
  Parameter& kernel = *dense.parameters()[0];
  Parameter& bias = *dense.parameters()[1];
  for (std::int64_t i = 0; i < bias.value.size(); ++i) bias.value[i] = 0.1f * static_cast<float>(i);
  const Tensor x = random_tensor({3, 4}, Layout::NC, 1);
  const Tensor& y = dense.forward(x, false);
  ASSERT_EQ(y.shape(), (Shape{3, 5}));
  EXPECT_EQ(y.layout(), Layout::NC);
  for (int n = 0; n < 3; ++n)
    for (int u = 0; u < 5; ++u) {
      double z = bias.value[u];
      for (int f = 0; f < 4; ++f) z += static_cast<double>(x[n * 4 + f]) * kernel.value[f * 5 + u];
      EXPECT_NEAR(y[n * 5 + u], std::tanh(z), 1e-6);
    }
}

class DenseGradient : public ::testing::TestWithParam<std::string> {};

TEST_P(DenseGradient, MatchesCentralDifferences) {
  for (bool use_bias : {true, false}) {
    Rng rng(11);
    Dense dense(6, GetParam(), use_bias);
    dense.build({7}, rng);
    EXPECT_EQ(dense.parameters().size(), use_bias ? 2u : 1u);
    const Tensor x = random_tensor({5, 7}, Layout::NC, 3);
    EXPECT_GT(check_layer_gradients(dense, x, 21), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Activations, DenseGradient,
                         ::testing::Values("linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"));

TEST(Dense, SoftmaxExposesLogitsAndBackwardFromLogitsSkipsSoftmax) {
  Rng rng(5);
  Dense dense(4, "softmax");
  dense.build({3}, rng);
  const Tensor x = random_tensor({2, 3}, Layout::NC, 9);
  const Tensor y = dense.forward(x, true).clone();
  const Tensor* logits = dense.softmax_logits();
  ASSERT_NE(logits, nullptr);
  ASSERT_EQ(logits->shape(), (Shape{2, 4}));
  // y is the softmax of the logits.
  for (int n = 0; n < 2; ++n) {
    double sum = 0.0;
    for (int c = 0; c < 4; ++c) sum += std::exp(static_cast<double>((*logits)[n * 4 + c]));
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(y[n * 4 + c], std::exp((*logits)[n * 4 + c]) / sum, 1e-6);
  }
  // Through the logits, dx = dlogits * W^T exactly, with no softmax Jacobian in between.
  const Tensor dlogits = random_tensor({2, 4}, Layout::NC, 10);
  const Tensor dx = dense.backward_from_logits(dlogits).clone();
  const Tensor& kernel = dense.parameters()[0]->value;
  for (int n = 0; n < 2; ++n)
    for (int f = 0; f < 3; ++f) {
      double expected = 0.0;
      for (int u = 0; u < 4; ++u) expected += static_cast<double>(dlogits[n * 4 + u]) * kernel[f * 4 + u];
      EXPECT_NEAR(dx[n * 3 + f], expected, 1e-5);
    }
  const Tensor& dbias = dense.parameters()[1]->grad;
  for (int u = 0; u < 4; ++u) EXPECT_FLOAT_EQ(dbias[u], dlogits[u] + dlogits[4 + u]);

  Dense relu(4, "relu");
  relu.build({3}, rng);
  EXPECT_EQ(relu.softmax_logits(), nullptr);
}

TEST(Dense, BuffersAreReusedAcrossStepsAndBatchSizes) {
  Rng rng(1);
  Dense dense(8, "relu");
  dense.build({4}, rng);
  const Tensor x32 = random_tensor({32, 4}, Layout::NC, 2);
  const Tensor x24 = x32.slice_batch(0, 24);
  const float* y_data = dense.forward(x32, true).data();
  const float* dx_data = dense.backward(random_tensor({32, 8}, Layout::NC, 3)).data();
  // A smaller batch (the last one of an epoch) and the full size again: same memory.
  EXPECT_EQ(dense.forward(x24, true).data(), y_data);
  EXPECT_EQ(dense.backward(random_tensor({24, 8}, Layout::NC, 4)).data(), dx_data);
  EXPECT_EQ(dense.forward(x32, true).data(), y_data);
  EXPECT_EQ(dense.forward(x24, true).dim(0), 24);
}

TEST(Dense, SameBitsForOneAndTwoThreads) {
  auto run = [](int threads) {
    omp_set_num_threads(threads);
    Rng rng(3);
    Dense dense(64, "sigmoid");
    dense.build({300}, rng);
    const Tensor x = random_tensor({256, 300}, Layout::NC, 4);
    Tensor y = dense.forward(x, true).clone();
    Tensor dx = dense.backward(random_tensor({256, 64}, Layout::NC, 5)).clone();
    return std::vector<Tensor>{y, dx, dense.parameters()[0]->grad.clone(), dense.parameters()[1]->grad.clone()};
  };
  const int before = omp_get_max_threads();
  const auto one = run(1);
  const auto two = run(2);
  omp_set_num_threads(before);
  for (std::size_t k = 0; k < one.size(); ++k)
    EXPECT_EQ(std::memcmp(one[k].data(), two[k].data(), one[k].size() * sizeof(float)), 0) << "tensor " << k;
}

TEST(Dense, BadArgumentsThrowNamingThem) {
  BNLAB_EXPECT_INVALID(Dense(0), "Dense", "units", "0");
  BNLAB_EXPECT_INVALID(Dense(3, "swish"), "Dense", "activation", "swish");
  BNLAB_EXPECT_INVALID(Dense(3, "relu", true, "lecun"), "Dense", "kernel_initializer", "lecun");
  BNLAB_EXPECT_INVALID(Dense(3, "relu", true, "zeros", "uniform"), "Dense", "bias_initializer", "uniform");
  Rng rng(0);
  Dense dense(3);
  dense.set_name("dense_1");
  BNLAB_EXPECT_INVALID(dense.build({28, 28}, rng), "Dense 'dense_1'", "(None, 28, 28)");
  dense.build({4}, rng);
  BNLAB_EXPECT_INVALID(dense.forward(Tensor({2, 5}, Layout::NC), true), "Dense 'dense_1'", "(2, 5)", "(None, 4)");
  EXPECT_THROW(Dense(3).forward(Tensor({2, 4}, Layout::NC), true), std::logic_error);
}

TEST(Dense, KerasParameterCountsOfTheSeedModels) {
  Rng rng(42);
  Dense d1(300, "relu"), d2(100, "relu"), d3(10, "softmax");
  d1.build({784}, rng);
  d2.build({300}, rng);
  d3.build({100}, rng);
  auto count = [](Layer& l) {
    std::int64_t n = 0;
    for (Parameter* p : l.parameters()) n += p->value.size();
    return n;
  };
  EXPECT_EQ(count(d1), 235500);
  EXPECT_EQ(count(d2), 30100);
  EXPECT_EQ(count(d3), 1010);
  Dense no_bias(300, "linear", false);
  no_bias.build({784}, rng);
  EXPECT_EQ(count(no_bias), 235200);
}

}  // namespace
}  // namespace bnlab

namespace bnlab {
namespace {

// A BatchNormalization whose own backward must not run: the Dense after it took it over.
class NoBackwardBatchNormalization : public BatchNormalization {
public:
  using BatchNormalization::BatchNormalization;
  const Tensor& backward(const Tensor&) override {
    throw std::logic_error("the normalization's backward ran although the Dense took it over");
  }
};

struct TakeoverCase {
  bool training, use_bias, scale, center;
  std::string activation;
};

void PrintTo(const TakeoverCase& c, std::ostream* os) {
  *os << (c.training ? "training" : "inference") << (c.use_bias ? " bias" : " no-bias") << (c.scale ? " scale" : "")
      << (c.center ? " center" : "") << " " << c.activation;
}

class DenseTakeover : public ::testing::TestWithParam<TakeoverCase> {};

// BatchNormalization (first trained layer, no input gradient) -> Dense with the takeover
// against the same two layers run separately: the Dense's kernel and bias grads and the
// normalization's gamma and beta grads agree to rounding, and the normalization's backward
// does not run.
TEST_P(DenseTakeover, MatchesTheTwoBackwardsRunSeparately) {
  const TakeoverCase c = GetParam();
  BatchNormalizationOptions o;
  o.scale = c.scale;
  o.center = c.center;
  o.momentum = 0.5f;
  NoBackwardBatchNormalization fused_bn(o);
  BatchNormalization plain_bn(o);
  Dense fused_dense(21, c.activation, c.use_bias), plain_dense(21, c.activation, c.use_bias);
  for (Layer* layer : std::initializer_list<Layer*>{&fused_bn, &plain_bn}) {
    Rng rng(3);
    layer->build({19}, rng);
  }
  for (Layer* layer : std::initializer_list<Layer*>{&fused_dense, &plain_dense}) {
    Rng rng(4);
    layer->build({19}, rng);
  }
  // Parameters away from their initial 1 and 0, and moving statistics away from the batch's.
  for (BatchNormalization* bn : {static_cast<BatchNormalization*>(&fused_bn), &plain_bn}) {
    if (c.scale) bn->gamma().value = random_tensor({19}, Layout::Plain, 8, 0.5f, 1.5f);
    if (c.center) bn->beta().value = random_tensor({19}, Layout::Plain, 9);
    bn->moving_mean().value = random_tensor({19}, Layout::Plain, 10);
    bn->moving_variance().value = random_tensor({19}, Layout::Plain, 11, 0.5f, 2.0f);
  }
  fused_bn.set_input_gradient_needed(false);
  fused_dense.set_input_normalization(&fused_bn);
  ASSERT_TRUE(fused_dense.takes_over_previous_backward());
  ASSERT_FALSE(plain_dense.takes_over_previous_backward());

  const Tensor x = random_tensor({7, 19}, Layout::NC, 12, -2.0f, 3.0f);
  const Tensor dy = random_tensor({7, 21}, Layout::NC, 13);
  fused_dense.forward(fused_bn.forward(x, c.training), c.training);
  plain_dense.forward(plain_bn.forward(x, c.training), c.training);
  EXPECT_FALSE(fused_dense.backward(dy).defined());
  plain_bn.backward(plain_dense.backward(dy));

  auto expect_close = [](const Tensor& got, const Tensor& want, const char* what) {
    float largest = 0.0f;
    for (std::int64_t i = 0; i < want.size(); ++i) largest = std::max(largest, std::fabs(want[i]));
    ASSERT_GT(largest, 0.0f) << what;
    for (std::int64_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 2e-6f * largest) << what << " element " << i;
  };
  const auto fused = fused_dense.parameters(), plain = plain_dense.parameters();
  for (std::size_t i = 0; i < fused.size(); ++i) expect_close(fused[i]->grad, plain[i]->grad, "dense grad");
  if (c.scale) expect_close(fused_bn.gamma().grad, plain_bn.gamma().grad, "gamma grad");
  if (c.center) expect_close(fused_bn.beta().grad, plain_bn.beta().grad, "beta grad");

  // Once the normalization's input gradient is needed again, the Dense goes back to the plain
  // path and returns its input gradient.
  fused_bn.set_input_gradient_needed(true);
  EXPECT_FALSE(fused_dense.takes_over_previous_backward());
  EXPECT_TRUE(fused_dense.backward(dy).defined());
}

INSTANTIATE_TEST_SUITE_P(Cases, DenseTakeover,
                         ::testing::Values(TakeoverCase{true, true, true, true, "relu"},
                                           TakeoverCase{true, false, true, true, "linear"},
                                           TakeoverCase{false, true, true, true, "tanh"},
                                           TakeoverCase{true, true, false, true, "softmax"},
                                           TakeoverCase{true, false, true, false, "relu"}));

TEST(DenseTakeover, TheNormalizationMustMatchTheInputShape) {
  Rng rng(1);
  BatchNormalization bn;
  Dense dense(3);
  dense.build({4}, rng);
  EXPECT_THROW(dense.set_input_normalization(&bn), std::invalid_argument);  // not built
  bn.build({5}, rng);
  try {
    dense.set_input_normalization(&bn);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(None, 5)"), std::string::npos) << e.what();
  }
  Dense unbuilt(3);
  EXPECT_THROW(unbuilt.set_input_normalization(nullptr), std::logic_error);
}

}  // namespace
}  // namespace bnlab
