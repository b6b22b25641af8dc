// Cross-check of the Keras-convention BatchNormalization layer against Keras itself (TensorFlow's
// tf.keras.layers.BatchNormalization, the framework seed 003 ran): a training call with its
// gradients, the moving statistics after it, and an inference call. TensorFlow is an optional
// PyPI package (scripts/setup_python_checks.sh); the test skips, saying why, where python3
// cannot import it.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <ostream>
#include <string>

#include "bnlab/layers/batch_normalization.hpp"
#include "layers/keras_support.hpp"

namespace bnlab::testing {
namespace {

namespace fs = std::filesystem;

struct KerasCase {
  std::string name;
  Shape batch_shape;  // with the batch dimension first
  Layout layout;
  int axis;
  float momentum, epsilon;
  bool center, scale;
};

// gtest prints a failing case by its name instead of its bytes.
void PrintTo(const KerasCase& c, std::ostream* os) { *os << c.name; }

class BatchNormalizationKeras : public ::testing::TestWithParam<KerasCase> {};

TEST_P(BatchNormalizationKeras, TrainingGradientsMovingStatisticsAndInferenceMatchKeras) {
  const KerasCase kc = GetParam();
  BatchNormalizationOptions o;
  o.axis = kc.axis;
  o.momentum = kc.momentum;
  o.epsilon = kc.epsilon;
  o.center = kc.center;
  o.scale = kc.scale;
  BatchNormalization bn(o);
  Rng rng(0);
  bn.build(Shape(kc.batch_shape.begin() + 1, kc.batch_shape.end()), rng);
  const std::int64_t channels = bn.kernel_shape(1).channels;
  const auto C = static_cast<std::size_t>(channels);

  Tensor x(kc.batch_shape, kc.layout), dy(kc.batch_shape, kc.layout);
  const auto n = static_cast<std::size_t>(x.size());
  const auto x_values = fill_normal(x, 1.5f, 3.0f, 71), dy_values = fill_normal(dy, 0.0f, 1.0f, 72);
  const auto gamma = random_normal(C, 1.0f, 0.4f, 73), beta = random_normal(C, 0.0f, 0.4f, 74);
  const auto moving_mean = random_normal(C, 0.2f, 0.3f, 75);
  auto moving_variance = random_normal(C, 0.0f, 0.3f, 76);
  for (float& v : moving_variance) v = 0.9f + std::abs(v);
  if (kc.scale) std::copy(gamma.begin(), gamma.end(), bn.gamma().value.data());
  if (kc.center) std::copy(beta.begin(), beta.end(), bn.beta().value.data());
  std::copy(moving_mean.begin(), moving_mean.end(), bn.moving_mean().value.data());
  std::copy(moving_variance.begin(), moving_variance.end(), bn.moving_variance().value.data());

  const fs::path dir = fs::temp_directory_path() / ("bnlab_keras_" + std::to_string(::getpid()) + "_" + kc.name);
  fs::create_directories(dir);
  write_f32(dir / "x.f32", x_values);
  write_f32(dir / "dy.f32", dy_values);
  write_f32(dir / "gamma.f32", gamma);
  write_f32(dir / "beta.f32", beta);
  write_f32(dir / "moving_mean.f32", moving_mean);
  write_f32(dir / "moving_variance.f32", moving_variance);
  const std::string arguments = dir.string() + " " + comma_separated(kc.batch_shape) + " " + std::to_string(kc.axis) +
                                " " + std::to_string(kc.momentum) + " " + std::to_string(kc.epsilon) + " " +
                                (kc.center ? "true" : "false") + " " + (kc.scale ? "true" : "false");
  const TorchRun run = run_keras_script("keras_batchnorm.py", arguments);
  if (run == TorchRun::unavailable) {
    fs::remove_all(dir);
    GTEST_SKIP() << "TensorFlow is not importable by python3 (bash scripts/setup_python_checks.sh installs it)";
  }
  ASSERT_EQ(run, TorchRun::ok) << arguments;

  const std::vector<float> y = values_of(bn.forward(x, true));
  const std::vector<float> dx = values_of(bn.backward(dy));
  EXPECT_LT(max_abs_diff(y, read_f32(dir / "y.f32", n)), 1e-4);
  EXPECT_LT(max_abs_diff(dx, read_f32(dir / "dx.f32", n)), 1e-4);
  const double sum_tolerance = 2e-4 * std::sqrt(static_cast<double>(n / C));
  if (kc.scale) EXPECT_LT(max_abs_diff(values_of(bn.gamma().grad), read_f32(dir / "dgamma.f32", C)), sum_tolerance);
  if (kc.center) EXPECT_LT(max_abs_diff(values_of(bn.beta().grad), read_f32(dir / "dbeta.f32", C)), sum_tolerance);
  EXPECT_LT(max_abs_diff(values_of(bn.moving_mean().value), read_f32(dir / "moving_mean_out.f32", C)), 1e-5);
  EXPECT_LT(max_abs_diff(values_of(bn.moving_variance().value), read_f32(dir / "moving_variance_out.f32", C)), 1e-4);
  EXPECT_LT(max_abs_diff(values_of(bn.forward(x, false)), read_f32(dir / "y_inference.f32", n)), 1e-4);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, BatchNormalizationKeras,
    ::testing::Values(KerasCase{"seed_layer", {32, 300}, Layout::NC, -1, 0.99f, 1e-3f, true, true},
                      KerasCase{"images_channels_last", {3, 5, 6, 4}, Layout::NHWC, -1, 0.9f, 1e-3f, true, true},
                      KerasCase{"images_axis_1_no_center", {2, 4, 5, 3}, Layout::NCHW, 1, 0.8f, 1e-2f, false, true},
                      KerasCase{"no_scale", {7, 6}, Layout::NC, -1, 0.5f, 1e-3f, true, false}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace bnlab::testing
