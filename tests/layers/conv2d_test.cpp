#include "bnlab/layers/conv2d.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>

#include "bnlab/kernels/conv.hpp"
#include "layers/grad_check.hpp"

namespace bnlab {
namespace {

using testing::check_layer_gradients;
using testing::random_tensor;

// TensorFlow's "same" rule: out = ceil(in / stride), the odd padding cell after.
TEST(Conv2DShape, KerasSamePaddingPutsTheOddCellAfter) {
  // 4 wide, kernel 3, stride 2: out 2, total padding (2-1)*2 + 3 - 4 = 1, none before.
  auto s = kernels::conv2d_shape(1, 4, 4, 1, 1, 3, 3, 2, 2, kernels::Padding::same);
  EXPECT_EQ(s.out_height, 2);
  EXPECT_EQ(s.pad_top, 0);
  // 5 wide, kernel 3, stride 2: out 3, total padding 2, one before.
  s = kernels::conv2d_shape(1, 5, 5, 1, 1, 3, 3, 2, 2, kernels::Padding::same);
  EXPECT_EQ(s.out_height, 3);
  EXPECT_EQ(s.pad_top, 1);
  // 28 wide, kernel 5, stride 1: out 28, padding 2 on each side.
  s = kernels::conv2d_shape(1, 28, 28, 1, 1, 5, 5, 1, 1, kernels::Padding::same);
  EXPECT_EQ(s.out_width, 28);
  EXPECT_EQ(s.pad_left, 2);
  // Kernel 4 (even), stride 1: total padding 3, one before, two after.
  s = kernels::conv2d_shape(1, 6, 6, 1, 1, 4, 4, 1, 1, kernels::Padding::same);
  EXPECT_EQ(s.pad_top, 1);
  // Valid: floor((in - k) / stride) + 1.
  s = kernels::conv2d_shape(1, 28, 27, 1, 1, 3, 3, 2, 2, kernels::Padding::valid);
  EXPECT_EQ(s.out_height, 13);
  EXPECT_EQ(s.out_width, 13);
  BNLAB_EXPECT_INVALID(kernels::conv2d_shape(1, 2, 2, 1, 1, 3, 3, 1, 1, kernels::Padding::valid), "height", "2",
                       "valid");
}

// Direct double-precision convolution with TensorFlow's padding, independent of im2col.
Tensor reference_conv(const Tensor& x, const Tensor& kernel, const Tensor* bias, std::int64_t stride,
                      kernels::Padding padding) {
  const std::int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const std::int64_t KH = kernel.dim(0), KW = kernel.dim(1), F = kernel.dim(3);
  std::int64_t OH, OW, top = 0, left = 0;
  if (padding == kernels::Padding::valid) {
    OH = (H - KH) / stride + 1;
    OW = (W - KW) / stride + 1;
  } else {
    OH = (H + stride - 1) / stride;
    OW = (W + stride - 1) / stride;
    top = std::max<std::int64_t>((OH - 1) * stride + KH - H, 0) / 2;
    left = std::max<std::int64_t>((OW - 1) * stride + KW - W, 0) / 2;
  }
  Tensor y({N, OH, OW, F}, Layout::NHWC);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t oh = 0; oh < OH; ++oh)
      for (std::int64_t ow = 0; ow < OW; ++ow)
        for (std::int64_t f = 0; f < F; ++f) {
          double sum = bias ? (*bias)[f] : 0.0;
          for (std::int64_t kh = 0; kh < KH; ++kh)
            for (std::int64_t kw = 0; kw < KW; ++kw) {
              const std::int64_t ih = oh * stride - top + kh, iw = ow * stride - left + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              for (std::int64_t c = 0; c < C; ++c)
                sum += static_cast<double>(x[((n * H + ih) * W + iw) * C + c]) * kernel[((kh * KW + kw) * C + c) * F + f];
            }
          y[((n * OH + oh) * OW + ow) * F + f] = static_cast<float>(sum);
        }
  return y;
}

// (padding, stride, use_bias, activation)
using ConvCase = std::tuple<std::string, int, bool, std::string>;
class Conv2DCases : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2DCases, ForwardMatchesReferenceAndGradientsMatchCentralDifferences) {
  const auto& [padding, stride, use_bias, activation] = GetParam();
  Rng rng(17);
  Conv2D conv(4, {3, 3}, {stride, stride}, padding, activation, use_bias);
  const Shape out = conv.build({7, 6, 3}, rng);
  Parameter* bias = use_bias ? conv.parameters()[1] : nullptr;
  if (bias)
    for (std::int64_t f = 0; f < 4; ++f) bias->value[f] = 0.05f * static_cast<float>(f + 1);
  const Tensor x = random_tensor({2, 7, 6, 3}, Layout::NHWC, 23);
  const Tensor& y = conv.forward(x, true);
  EXPECT_EQ(y.layout(), Layout::NHWC);
  // The activation is checked here too: central differences alone would pass a Conv2D that
  // ignored it in both directions.
  const Tensor expected = reference_conv(x, conv.parameters()[0]->value, bias ? &bias->value : nullptr, stride,
                                         kernels::parse_padding(padding, "test"));
  ASSERT_EQ(y.shape(), expected.shape());
  EXPECT_EQ(out, (Shape{expected.dim(1), expected.dim(2), 4}));
  int negative = 0;
  for (std::int64_t i = 0; i < y.size(); ++i) {
    double z = expected[i];
    negative += z < 0;
    if (activation == "relu") z = std::max(z, 0.0);
    if (activation == "tanh") z = std::tanh(z);
    EXPECT_NEAR(y[i], z, 1e-5) << i;
  }
  EXPECT_GT(negative, 0);  // so that relu had something to do
  EXPECT_GT(check_layer_gradients(conv, x, 29), 0);
}

INSTANTIATE_TEST_SUITE_P(PaddingStrideBias, Conv2DCases,
                         ::testing::Values(ConvCase{"valid", 1, true, "linear"}, ConvCase{"same", 1, true, "linear"},
                                           ConvCase{"valid", 2, true, "linear"}, ConvCase{"same", 2, false, "linear"},
                                           ConvCase{"same", 1, false, "relu"}, ConvCase{"same", 2, true, "tanh"}));

TEST(Conv2D, BackwardRunsOncePerForward) {
  Rng rng(1);
  Conv2D conv(2, {3, 3}, {1, 1}, "same");
  conv.build({5, 5, 1}, rng);
  const Tensor x = random_tensor({2, 5, 5, 1}, Layout::NHWC, 2);
  conv.forward(x, true);
  const Tensor dy = random_tensor({2, 5, 5, 2}, Layout::NHWC, 3);
  conv.backward(dy);
  // The im2col buffer became backward's scratch: a second backward would read garbage.
  EXPECT_THROW(conv.backward(dy), std::logic_error);
}

// As a model's first trained layer (set_input_gradient_needed(false)): no dx, the same grads.
TEST(Conv2D, WithoutInputGradientTheKernelAndBiasGradsKeepTheirBits) {
  auto grads = [](bool input_gradient) {
    Rng rng(4);
    Conv2D conv(3, {3, 3}, {2, 2}, "same", "relu");
    conv.build({7, 7, 2}, rng);
    conv.set_input_gradient_needed(input_gradient);
    conv.forward(random_tensor({3, 7, 7, 2}, Layout::NHWC, 6), true);
    const Tensor& dx = conv.backward(random_tensor({3, 4, 4, 3}, Layout::NHWC, 7));
    EXPECT_EQ(dx.defined(), input_gradient);
    return std::vector<Tensor>{conv.parameters()[0]->grad.clone(), conv.parameters()[1]->grad.clone()};
  };
  const auto with_dx = grads(true), without = grads(false);
  for (std::size_t k = 0; k < with_dx.size(); ++k)
    EXPECT_EQ(std::memcmp(with_dx[k].data(), without[k].data(), with_dx[k].size() * sizeof(float)), 0) << "tensor " << k;
}

TEST(Conv2D, SameBitsForOneAndTwoThreads) {
  auto run = [](int threads) {
    omp_set_num_threads(threads);
    Rng rng(3);
    Conv2D conv(16, {3, 3}, {1, 1}, "same", "relu");
    conv.build({28, 28, 8}, rng);
    const Tensor x = random_tensor({16, 28, 28, 8}, Layout::NHWC, 4);
    Tensor y = conv.forward(x, true).clone();
    Tensor dx = conv.backward(random_tensor({16, 28, 28, 16}, Layout::NHWC, 5)).clone();
    return std::vector<Tensor>{y, dx, conv.parameters()[0]->grad.clone(), conv.parameters()[1]->grad.clone()};
  };
  const int before = omp_get_max_threads();
  const auto one = run(1);
  const auto two = run(2);
  omp_set_num_threads(before);
  for (std::size_t k = 0; k < one.size(); ++k)
    EXPECT_EQ(std::memcmp(one[k].data(), two[k].data(), one[k].size() * sizeof(float)), 0) << "tensor " << k;
}

TEST(Conv2D, KerasGlorotFansAndParameterShapes) {
  Rng rng(5);
  Conv2D conv(32, {3, 3});
  conv.build({28, 28, 1}, rng);
  const Tensor& kernel = conv.parameters()[0]->value;
  EXPECT_EQ(kernel.shape(), (Shape{3, 3, 1, 32}));
  // limit = sqrt(6 / (9 * 1 + 9 * 32))
  const float limit = std::sqrt(6.0f / (9.0f + 288.0f));
  float max_abs = 0.0f;
  for (std::int64_t i = 0; i < kernel.size(); ++i) max_abs = std::max(max_abs, std::abs(kernel[i]));
  EXPECT_LE(max_abs, limit);
  EXPECT_GT(max_abs, 0.9f * limit);
  EXPECT_EQ(conv.output_shape(), (Shape{26, 26, 32}));
}

TEST(Conv2D, BadArgumentsThrowNamingThem) {
  BNLAB_EXPECT_INVALID(Conv2D(0, {3, 3}), "Conv2D", "filters", "0");
  BNLAB_EXPECT_INVALID(Conv2D(4, {0, 3}), "Conv2D", "kernel_size", "(0, 3)");
  BNLAB_EXPECT_INVALID(Conv2D(4, {3, 3}, {1, -1}), "Conv2D", "strides", "(1, -1)");
  BNLAB_EXPECT_INVALID(Conv2D(4, {3, 3}, {1, 1}, "full"), "Conv2D", "padding", "full");
  BNLAB_EXPECT_INVALID(Conv2D(4, {3, 3}, {1, 1}, "same", "gelu"), "Conv2D", "activation", "gelu");
  Rng rng(0);
  Conv2D conv(4, {3, 3});
  BNLAB_EXPECT_INVALID(conv.build({784}, rng), "Conv2D", "(None, 784)");
  BNLAB_EXPECT_INVALID(Conv2D(4, {5, 5}).build({3, 3, 1}, rng), "Conv2D", "(None, 3, 3, 1)", "height");
  conv.build({8, 8, 2}, rng);
  BNLAB_EXPECT_INVALID(conv.forward(Tensor({1, 8, 8, 3}, Layout::NHWC), false), "Conv2D", "(1, 8, 8, 3)",
                       "(None, 8, 8, 2)");
}

}  // namespace
}  // namespace bnlab
