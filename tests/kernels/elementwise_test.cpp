// The small kernels of a training step (activations, the fused Dense passes, bias helpers,
// loss, dropout) against plain scalar loops: the same bits, NaN and signed zeros included, for
// sizes around the 16-lane vectors and on both sides of the thresholds where threads join,
// with one thread and with two.

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bnlab/kernels/activations.hpp"
#include "bnlab/kernels/dropout.hpp"
#include "bnlab/kernels/gemm.hpp"
#include "bnlab/kernels/loss.hpp"

namespace bnlab {
namespace {

using kernels::ActivationKind;

constexpr float nan = std::numeric_limits<float>::quiet_NaN();
constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float alpha = 0.3f;

// Random values with the awkward ones mixed in: both zeros, both infinities, NaN, subnormals.
std::vector<float> awkward_values(std::int64_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  const float specials[] = {0.0f, -0.0f, nan, inf, -inf, 1e-40f, -1e-40f, 1.0f, -1.0f};
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] = i % 7 == 3 ? specials[(i / 7) % std::size(specials)] : normal(gen);
  return v;
}

std::uint32_t bits(float v) {
  std::uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// Equal bits, or both NaN (a NaN's payload is not part of any kernel's contract).
::testing::AssertionResult same_floats(const std::vector<float>& expected, const std::vector<float>& actual) {
  if (expected.size() != actual.size())
    return ::testing::AssertionFailure() << "sizes " << expected.size() << " and " << actual.size();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const bool both_nan = std::isnan(expected[i]) && std::isnan(actual[i]);
    if (!both_nan && bits(expected[i]) != bits(actual[i]))
      return ::testing::AssertionFailure() << "element " << i << ": expected " << expected[i] << " got " << actual[i];
  }
  return ::testing::AssertionSuccess();
}

float scalar_forward(ActivationKind kind, float x) {
  switch (kind) {
    case ActivationKind::linear:
      return x;
    case ActivationKind::relu:
      return x < 0.0f ? 0.0f : x;  // torch.relu: NaN and -0 pass unchanged
    case ActivationKind::leaky_relu:
      return x > 0.0f ? x : alpha * x;
    case ActivationKind::sigmoid: {
      if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
      const float e = std::exp(x);
      return e / (1.0f + e);
    }
    case ActivationKind::tanh:
      return std::tanh(x);
    case ActivationKind::softmax:
      break;
  }
  ADD_FAILURE() << "no elementwise reference for softmax";
  return 0.0f;
}

float scalar_backward(ActivationKind kind, float x, float y, float dy) {
  switch (kind) {
    case ActivationKind::linear:
      return dy;
    case ActivationKind::relu:
      return x <= 0.0f ? 0.0f : dy;  // torch.relu's backward: the gradient passes where x is NaN
    case ActivationKind::leaky_relu:
      return x > 0.0f ? dy : alpha * dy;
    case ActivationKind::sigmoid:
      return dy * y * (1.0f - y);
    case ActivationKind::tanh:
      return dy * (1.0f - y * y);
    case ActivationKind::softmax:
      break;
  }
  ADD_FAILURE() << "no elementwise reference for softmax";
  return 0.0f;
}

void scalar_softmax_forward(std::int64_t rows, std::int64_t cols, const float* x, float* y) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * cols;
    float* out = y + r * cols;
    float max = in[0];
    for (std::int64_t c = 1; c < cols; ++c) max = std::max(max, in[c]);
    float sum = 0.0f;
    for (std::int64_t c = 0; c < cols; ++c) {
      out[c] = std::exp(in[c] - max);
      sum += out[c];
    }
    const float inv_sum = 1.0f / sum;
    for (std::int64_t c = 0; c < cols; ++c) out[c] *= inv_sum;
  }
}

void scalar_softmax_backward(std::int64_t rows, std::int64_t cols, const float* y, const float* dy, float* dx) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float dot = 0.0f;
    for (std::int64_t c = 0; c < cols; ++c) dot += dy[r * cols + c] * y[r * cols + c];
    for (std::int64_t c = 0; c < cols; ++c) dx[r * cols + c] = y[r * cols + c] * (dy[r * cols + c] - dot);
  }
}

// Column sums from +0 in row order: sum_rows's documented order.
std::vector<float> scalar_column_sums(std::int64_t rows, std::int64_t cols, const std::vector<float>& m) {
  std::vector<float> sums(static_cast<std::size_t>(cols), 0.0f);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      sums[static_cast<std::size_t>(c)] += m[static_cast<std::size_t>(r * cols + c)];
  return sums;
}

const ActivationKind all_kinds[] = {ActivationKind::linear,  ActivationKind::relu, ActivationKind::leaky_relu,
                                    ActivationKind::sigmoid, ActivationKind::tanh, ActivationKind::softmax};
const ActivationKind elementwise_kinds[] = {ActivationKind::linear, ActivationKind::relu, ActivationKind::leaky_relu,
                                            ActivationKind::sigmoid, ActivationKind::tanh};

// Element counts: empty, shorter than a vector, around 16, a training step's 32x300, and
// around the elementwise thresholds (2^14 and 2^16).
const std::int64_t counts[] = {0, 1, 5, 15, 16, 17, 33, 9600, 16383, 16385, 65535, 65536, 65537, 70001, 200003};

// Runs body once with one thread and once with two.
template <class Body>
void with_one_and_two_threads(Body body) {
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    SCOPED_TRACE("threads " + std::to_string(threads));
    body();
  }
  omp_set_num_threads(saved);
}

TEST(ElementwiseKernels, ActivationsMatchScalarLoops) {
  with_one_and_two_threads([] {
    for (ActivationKind kind : elementwise_kinds)
      for (std::int64_t n : counts) {
        SCOPED_TRACE("kind " + std::to_string(static_cast<int>(kind)) + " count " + std::to_string(n));
        const std::vector<float> x = awkward_values(n, 1), dy = awkward_values(n, 2);
        std::vector<float> y_ref(x.size()), dx_ref(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) y_ref[i] = scalar_forward(kind, x[i]);
        for (std::size_t i = 0; i < x.size(); ++i) dx_ref[i] = scalar_backward(kind, x[i], y_ref[i], dy[i]);
        std::vector<float> y(x.size(), 123.0f), dx(x.size(), 123.0f);
        kernels::activation_forward(kind, 1, n, alpha, x.data(), y.data());
        EXPECT_TRUE(same_floats(y_ref, y));
        kernels::activation_backward(kind, 1, n, alpha, x.data(), y_ref.data(), dy.data(), dx.data());
        EXPECT_TRUE(same_floats(dx_ref, dx));
        // In place: y over x, dx over dy.
        std::vector<float> inplace = x;
        kernels::activation_forward(kind, 1, n, alpha, inplace.data(), inplace.data());
        EXPECT_TRUE(same_floats(y_ref, inplace));
        inplace = dy;
        kernels::activation_backward(kind, 1, n, alpha, x.data(), y_ref.data(), inplace.data(), inplace.data());
        EXPECT_TRUE(same_floats(dx_ref, inplace));
      }
  });
}

// What PyTorch 1.13 printed for torch.relu on these values (and for x.grad after
// y.backward(dy)): NaN and -0 pass unchanged, and so does the gradient where x is NaN.
TEST(ElementwiseKernels, ReluTreatsNanAndNegativeZeroAsTorchReluDoes) {
  const float x[] = {nan, -0.0f, -inf, inf, -nan, 0.0f};
  float y[6];
  kernels::relu_forward(6, x, y);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(bits(y[1]), bits(-0.0f));
  EXPECT_EQ(bits(y[2]), bits(0.0f));
  EXPECT_EQ(y[3], inf);
  EXPECT_TRUE(std::isnan(y[4]));
  EXPECT_EQ(bits(y[5]), bits(0.0f));
  const float dy[] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
  float dx[6];
  kernels::relu_backward(6, x, dy, dx);
  EXPECT_EQ((std::vector<float>(dx, dx + 6)), (std::vector<float>{1, 0, 0, 4, 5, 0}));
  // The Dense layer's fused bias + ReLU passes, on a 1x6 row with a bias of -0 (x + -0 is x,
  // -0 included).
  const float bias[6] = {-0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f};
  float z[6], fused[6], dz[6], sums[6];
  std::copy(x, x + 6, z);
  kernels::bias_activation_forward(ActivationKind::relu, 1, 6, 0.0f, bias, z, fused);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(bits(fused[i]), bits(y[i])) << i;
  kernels::activation_backward_bias_grad(ActivationKind::relu, 1, 6, 0.0f, z, fused, dy, dz, sums);
  EXPECT_EQ((std::vector<float>(dz, dz + 6)), (std::vector<float>{1, 0, 0, 4, 5, 0}));
}

TEST(ElementwiseKernels, SoftmaxMatchesScalarLoopsAcrossTheThreshold) {
  with_one_and_two_threads([] {
    for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {3, 17}, {32, 10}, {1700, 10}, {9, 7001}}) {
      SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols));
      std::vector<float> x = awkward_values(rows * cols, 3);
      for (float& v : x)
        if (!std::isfinite(v)) v = 0.5f;  // softmax of inf or NaN is NaN either way; keep rows finite
      const std::vector<float> dy = awkward_values(rows * cols, 4);
      std::vector<float> y_ref(x.size()), y(x.size()), dx_ref(x.size()), dx(x.size());
      scalar_softmax_forward(rows, cols, x.data(), y_ref.data());
      kernels::softmax_forward(rows, cols, x.data(), y.data());
      EXPECT_TRUE(same_floats(y_ref, y));
      scalar_softmax_backward(rows, cols, y_ref.data(), dy.data(), dx_ref.data());
      kernels::softmax_backward(rows, cols, y_ref.data(), dy.data(), dx.data());
      EXPECT_TRUE(same_floats(dx_ref, dx));
    }
  });
}

// rows x cols shapes: columns around the vector width, a training step's shapes, and
// products on both sides of the bias kernels' 2^16 threshold.
const std::pair<std::int64_t, std::int64_t> shapes[] = {{1, 1},    {2, 3},     {3, 15},    {4, 16},
                                                        {5, 17},   {32, 300},  {32, 100},  {32, 10},
                                                        {7, 9999}, {300, 301}, {256, 256}, {257, 255}};

TEST(ElementwiseKernels, BiasHelpersMatchScalarLoops) {
  with_one_and_two_threads([] {
    for (auto [rows, cols] : shapes) {
      SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols));
      const std::vector<float> m = awkward_values(rows * cols, 5), bias = awkward_values(cols, 6);
      std::vector<float> sums(static_cast<std::size_t>(cols), 123.0f);
      kernels::sum_rows(rows, cols, m.data(), sums.data());
      EXPECT_TRUE(same_floats(scalar_column_sums(rows, cols, m), sums));
      std::vector<float> y = m, y_ref = m;
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c)
          y_ref[static_cast<std::size_t>(r * cols + c)] += bias[static_cast<std::size_t>(c)];
      kernels::add_row_vector(rows, cols, bias.data(), y.data());
      EXPECT_TRUE(same_floats(y_ref, y));
    }
  });
}

TEST(ElementwiseKernels, SumRowsOfNoRowsIsZero) {
  std::vector<float> sums(5, 7.0f);
  kernels::sum_rows(0, 5, nullptr, sums.data());
  EXPECT_EQ(sums, std::vector<float>(5, 0.0f));
}

TEST(FusedDenseKernels, MatchTheTwoPassForms) {
  with_one_and_two_threads([] {
    for (ActivationKind kind : all_kinds)
      for (bool with_bias : {true, false})
        for (auto [rows, cols] : shapes) {
          SCOPED_TRACE("kind " + std::to_string(static_cast<int>(kind)) + (with_bias ? " bias " : " no bias ") +
                       std::to_string(rows) + "x" + std::to_string(cols));
          const std::size_t size = static_cast<std::size_t>(rows * cols);
          std::vector<float> z0 = awkward_values(rows * cols, 7);
          if (kind == ActivationKind::softmax)
            for (float& v : z0)
              if (!std::isfinite(v)) v = -0.25f;
          const std::vector<float> bias = awkward_values(cols, 8), dy = awkward_values(rows * cols, 9);
          const float* b = with_bias ? bias.data() : nullptr;

          // The two-pass forms: bias add, then activation; activation backward, then sum_rows.
          std::vector<float> z_ref = z0, y_ref(size), dz_ref(size), sums_ref(static_cast<std::size_t>(cols), 0.0f);
          if (b) kernels::add_row_vector(rows, cols, b, z_ref.data());
          kernels::activation_forward(kind, rows, cols, alpha, z_ref.data(), y_ref.data());
          kernels::activation_backward(kind, rows, cols, alpha, z_ref.data(), y_ref.data(), dy.data(), dz_ref.data());
          sums_ref = scalar_column_sums(rows, cols, dz_ref);

          std::vector<float> z = z0, y(size, 123.0f), dz(size, 123.0f), sums(static_cast<std::size_t>(cols), 123.0f);
          kernels::bias_activation_forward(kind, rows, cols, alpha, b, z.data(), y.data());
          EXPECT_TRUE(same_floats(z_ref, z));
          EXPECT_TRUE(same_floats(y_ref, y));
          kernels::activation_backward_bias_grad(kind, rows, cols, alpha, z.data(), y.data(), dy.data(), dz.data(),
                                                 with_bias ? sums.data() : nullptr);
          EXPECT_TRUE(same_floats(dz_ref, dz));
          if (with_bias)
            EXPECT_TRUE(same_floats(sums_ref, sums));
          else
            EXPECT_EQ(sums, std::vector<float>(static_cast<std::size_t>(cols), 123.0f));
        }
  });
}

TEST(FusedDenseKernels, LinearInPlaceWritesOnlyZAndTheSums) {
  const std::int64_t rows = 3, cols = 19;
  std::vector<float> z = awkward_values(rows * cols, 10), bias = awkward_values(cols, 11);
  std::vector<float> z_ref = z;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      z_ref[static_cast<std::size_t>(r * cols + c)] += bias[static_cast<std::size_t>(c)];
  kernels::bias_activation_forward(ActivationKind::linear, rows, cols, alpha, bias.data(), z.data(), z.data());
  EXPECT_TRUE(same_floats(z_ref, z));
  std::vector<float> dy = awkward_values(rows * cols, 12), sums(static_cast<std::size_t>(cols));
  const std::vector<float> dy_before = dy;
  kernels::activation_backward_bias_grad(ActivationKind::linear, rows, cols, alpha, z.data(), z.data(), dy.data(),
                                         dy.data(), sums.data());
  EXPECT_TRUE(same_floats(dy_before, dy));
  EXPECT_TRUE(same_floats(scalar_column_sums(rows, cols, dy_before), sums));
}

TEST(LossKernels, SameResultsWithOneAndTwoThreadsAcrossTheThreshold) {
  for (std::int64_t rows : {1, 32, 3000, 5000}) {
    const std::int64_t classes = 10;
    const std::vector<float> logits = [&] {
      std::vector<float> v = awkward_values(rows * classes, 13);
      for (float& x : v)
        if (!std::isfinite(x)) x = 1.5f;
      return v;
    }();
    std::vector<std::int32_t> labels(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r)
      labels[static_cast<std::size_t>(r)] = static_cast<std::int32_t>((r * 7) % classes);
    std::vector<float> p1(logits.size()), p2(logits.size()), l1(labels.size()), l2(labels.size()), g1(logits.size()),
        g2(logits.size());
    std::int64_t correct[2];
    float loss[2];
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    loss[0] = kernels::softmax_cross_entropy_forward(rows, classes, logits.data(), labels.data(), p1.data(), l1.data());
    kernels::softmax_cross_entropy_backward(rows, classes, p1.data(), labels.data(), g1.data());
    correct[0] = kernels::count_correct(rows, classes, logits.data(), labels.data());
    omp_set_num_threads(2);
    loss[1] = kernels::softmax_cross_entropy_forward(rows, classes, logits.data(), labels.data(), p2.data(), l2.data());
    kernels::softmax_cross_entropy_backward(rows, classes, p2.data(), labels.data(), g2.data());
    correct[1] = kernels::count_correct(rows, classes, logits.data(), labels.data());
    omp_set_num_threads(saved);
    EXPECT_EQ(bits(loss[0]), bits(loss[1])) << rows;
    EXPECT_TRUE(same_floats(p1, p2));
    EXPECT_TRUE(same_floats(l1, l2));
    EXPECT_TRUE(same_floats(g1, g2));
    EXPECT_EQ(correct[0], correct[1]);
    // The count against a direct argmax.
    std::int64_t expected = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      std::int64_t best = 0;
      for (std::int64_t c = 1; c < classes; ++c)
        if (logits[static_cast<std::size_t>(r * classes + c)] > logits[static_cast<std::size_t>(r * classes + best)])
          best = c;
      expected += best == labels[static_cast<std::size_t>(r)] ? 1 : 0;
    }
    EXPECT_EQ(correct[0], expected) << rows;
  }
  std::int32_t bad_label = 10;
  float p[10], l[1];
  const float z[10] = {};
  EXPECT_THROW(kernels::softmax_cross_entropy_forward(1, 10, z, &bad_label, p, l), std::invalid_argument);
}

// Both loss kernels may run in place: the forward with probabilities over the logits, the
// backward with the gradient over the probabilities; the same bits as with separate buffers.
TEST(LossKernels, InPlaceFormsGiveTheSameBits) {
  const std::int64_t rows = 5, classes = 7;
  std::mt19937 gen(17);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(static_cast<std::size_t>(rows * classes));
  for (float& v : logits) v = normal(gen);
  const std::vector<std::int32_t> labels = {0, 6, 3, 3, 1};
  std::vector<float> p(logits.size()), loss(rows), g(logits.size());
  const float mean =
      kernels::softmax_cross_entropy_forward(rows, classes, logits.data(), labels.data(), p.data(), loss.data());
  kernels::softmax_cross_entropy_backward(rows, classes, p.data(), labels.data(), g.data());
  std::vector<float> in_place = logits, in_place_loss(rows);
  const float in_place_mean = kernels::softmax_cross_entropy_forward(rows, classes, in_place.data(), labels.data(),
                                                                     in_place.data(), in_place_loss.data());
  EXPECT_EQ(in_place_mean, mean);
  EXPECT_EQ(in_place_loss, loss);
  EXPECT_EQ(in_place, p);
  kernels::softmax_cross_entropy_backward(rows, classes, in_place.data(), labels.data(), in_place.data());
  EXPECT_EQ(in_place, g);
}

TEST(DropoutKernels, MultiplyMatchesScalarLoopsAndMasksDoNotDependOnThreads) {
  for (std::int64_t n : counts) {
    SCOPED_TRACE("count " + std::to_string(n));
    const std::vector<float> x = awkward_values(n, 14);
    std::vector<float> mask1(x.size()), mask2(x.size()), y(x.size()), y_ref(x.size());
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    kernels::dropout_mask(n, 0.25f, 5, 6, mask1.data());
    omp_set_num_threads(2);
    kernels::dropout_mask(n, 0.25f, 5, 6, mask2.data());
    kernels::dropout_forward(n, x.data(), mask2.data(), y.data());
    omp_set_num_threads(saved);
    EXPECT_TRUE(same_floats(mask1, mask2));
    for (std::size_t i = 0; i < x.size(); ++i) y_ref[i] = x[i] * mask1[i];
    EXPECT_TRUE(same_floats(y_ref, y));
    std::vector<float> dx(x.size());
    kernels::dropout_backward(n, x.data(), mask1.data(), dx.data());
    EXPECT_TRUE(same_floats(y_ref, dx));
  }
}

}  // namespace
}  // namespace bnlab
