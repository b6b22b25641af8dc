// Cross-check of the Keras-convention LayerNormalization and GroupNormalization layers against
// Keras itself (TensorFlow's tf.keras.layers): the output of a call and its gradients for dx,
// gamma and beta. TensorFlow is an optional PyPI package (scripts/setup_python_checks.sh); the
// test skips, saying why, where python3 cannot import it.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>

#include "bnlab/layers/sample_normalization.hpp"
#include "layers/keras_support.hpp"

namespace bnlab::testing {
namespace {

namespace fs = std::filesystem;

struct KerasCase {
  std::string name;
  bool group;         // GroupNormalization, else LayerNormalization
  Shape batch_shape;  // with the batch dimension first
  Layout layout;
  std::vector<int> axis;  // LayerNormalization's list; GroupNormalization's one axis
  std::int64_t groups;
  float epsilon;
  bool center, scale;
};

// gtest prints a failing case by its name instead of its bytes.
void PrintTo(const KerasCase& c, std::ostream* os) { *os << c.name; }

class SampleNormalizationKeras : public ::testing::TestWithParam<KerasCase> {};

TEST_P(SampleNormalizationKeras, OutputAndGradientsMatchKeras) {
  const KerasCase kc = GetParam();
  std::unique_ptr<detail::SampleNormalization> layer;
  if (kc.group) {
    GroupNormalizationOptions o;
    o.groups = kc.groups;
    o.axis = kc.axis[0];
    o.epsilon = kc.epsilon;
    o.center = kc.center;
    o.scale = kc.scale;
    layer = std::make_unique<GroupNormalization>(o);
  } else {
    LayerNormalizationOptions o;
    o.axis = kc.axis;
    o.epsilon = kc.epsilon;
    o.center = kc.center;
    o.scale = kc.scale;
    layer = std::make_unique<LayerNormalization>(o);
  }
  Rng rng(0);
  layer->build(Shape(kc.batch_shape.begin() + 1, kc.batch_shape.end()), rng);
  const Tensor& parameter = kc.scale ? layer->gamma().value : layer->beta().value;
  const auto P = static_cast<std::size_t>(parameter.size());

  Tensor x(kc.batch_shape, kc.layout), dy(kc.batch_shape, kc.layout);
  const auto n = static_cast<std::size_t>(x.size());
  const auto x_values = fill_normal(x, 1.5f, 3.0f, 81), dy_values = fill_normal(dy, 0.0f, 1.0f, 82);
  const auto gamma = random_normal(P, 1.0f, 0.4f, 83), beta = random_normal(P, 0.0f, 0.4f, 84);
  if (kc.scale) std::copy(gamma.begin(), gamma.end(), layer->gamma().value.data());
  if (kc.center) std::copy(beta.begin(), beta.end(), layer->beta().value.data());

  const fs::path dir = fs::temp_directory_path() / ("bnlab_keras_norm_" + std::to_string(::getpid()) + "_" + kc.name);
  fs::create_directories(dir);
  write_f32(dir / "x.f32", x_values);
  write_f32(dir / "dy.f32", dy_values);
  write_f32(dir / "gamma.f32", gamma);
  write_f32(dir / "beta.f32", beta);
  const std::string arguments =
      dir.string() + " " + (kc.group ? "group" : "layer") + " " + comma_separated(kc.batch_shape) + " " +
      comma_separated(std::vector<std::int64_t>(kc.axis.begin(), kc.axis.end())) + " " + std::to_string(kc.groups) +
      " " + std::to_string(kc.epsilon) + " " + (kc.center ? "true" : "false") + " " + (kc.scale ? "true" : "false");
  const TorchRun run = run_keras_script("keras_sample_normalization.py", arguments);
  if (run == TorchRun::unavailable) {
    fs::remove_all(dir);
    GTEST_SKIP() << "TensorFlow is not importable by python3 (bash scripts/setup_python_checks.sh installs it)";
  }
  ASSERT_EQ(run, TorchRun::ok) << arguments;

  EXPECT_LT(max_abs_diff(values_of(layer->forward(x, true)), read_f32(dir / "y.f32", n)), 1e-4);
  EXPECT_LT(max_abs_diff(values_of(layer->backward(dy)), read_f32(dir / "dx.f32", n)), 1e-4);
  const double sum_tolerance = 2e-4 * std::sqrt(static_cast<double>(n / P));
  if (kc.scale) EXPECT_LT(max_abs_diff(values_of(layer->gamma().grad), read_f32(dir / "dgamma.f32", P)), sum_tolerance);
  if (kc.center) EXPECT_LT(max_abs_diff(values_of(layer->beta().grad), read_f32(dir / "dbeta.f32", P)), sum_tolerance);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, SampleNormalizationKeras,
    ::testing::Values(KerasCase{"layer_last_axis", false, {32, 300}, Layout::NC, {-1}, 0, 1e-3f, true, true},
                      KerasCase{"layer_height_width", false, {3, 5, 6, 4}, Layout::NHWC, {1, 2}, 0, 1e-3f, true, true},
                      KerasCase{"layer_no_center", false, {4, 7, 6}, Layout::Plain, {-1}, 0, 1e-2f, false, true},
                      KerasCase{"group_channels_last", true, {3, 5, 6, 8}, Layout::NHWC, {-1}, 4, 1e-3f, true, true},
                      KerasCase{"group_axis_1_no_scale", true, {2, 6, 5, 4}, Layout::NCHW, {1}, 3, 1e-3f, true, false}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace bnlab::testing
