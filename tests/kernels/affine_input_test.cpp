// kernels::affine_input_gradients against a float64 reference computed the long way: x = xhat *
// gamma + beta materialized, dL/dkernel = x^T dz, dL/dx = dz kernel^T, then dgamma and dbeta
// summed over the batch from dL/dx (what BatchNormalization's own backward does).

#include "bnlab/kernels/affine_input.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "bnlab/kernels/gemm.hpp"

namespace {

struct Case {
  std::int64_t batch, features, units;
  bool scale, center;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.batch << "x" << c.features << " -> " << c.units << (c.scale ? " scale" : "") << (c.center ? " center" : "");
}

struct Result {
  std::vector<float> kernel_grad, dgamma, dbeta;
};

std::vector<float> random_values(std::size_t n, std::mt19937& rng, float spread) {
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

class AffineInputGradients : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case c = GetParam();
    std::mt19937 rng(static_cast<unsigned>(c.batch * 131 + c.features * 7 + c.units));
    xhat = random_values(c.batch * c.features, rng, 1.0f);
    dz = random_values(c.batch * c.units, rng, 0.1f);
    kernel = random_values(c.features * c.units, rng, 0.05f);
    gamma = random_values(c.features, rng, 1.0f);
    beta = random_values(c.features, rng, 1.0f);
  }

  // The fused path as a Dense runs it: P = xhat^T dz by GEMM, s = column sums, then the kernel.
  Result fused(std::int64_t threads) const {
    const Case c = GetParam();
    Result r{std::vector<float>(c.features * c.units), std::vector<float>(c.features, -7.0f),
             std::vector<float>(c.features, -7.0f)};
    std::vector<float> s(c.units);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(static_cast<int>(threads));
    bnlab::kernels::sum_rows(c.batch, c.units, dz.data(), s.data());
    bnlab::kernels::gemm(true, false, c.features, c.units, c.batch, 1.0f, xhat.data(), dz.data(), 0.0f,
                         r.kernel_grad.data());
    bnlab::kernels::affine_input_gradients(c.features, c.units, kernel.data(), c.scale ? gamma.data() : nullptr,
                                           c.center ? beta.data() : nullptr, s.data(), r.kernel_grad.data(),
                                           c.scale ? r.dgamma.data() : nullptr, c.center ? r.dbeta.data() : nullptr);
    omp_set_num_threads(saved);
    return r;
  }

  std::vector<float> xhat, dz, kernel, gamma, beta;
};

TEST_P(AffineInputGradients, MatchTheLongWayInFloat64) {
  const Case c = GetParam();
  const Result r = fused(2);
  std::vector<double> x(c.batch * c.features), dx(c.batch * c.features, 0.0);
  for (std::int64_t n = 0; n < c.batch; ++n)
    for (std::int64_t j = 0; j < c.features; ++j)
      x[n * c.features + j] =
          static_cast<double>(xhat[n * c.features + j]) * (c.scale ? gamma[j] : 1.0) + (c.center ? beta[j] : 0.0);
  for (std::int64_t n = 0; n < c.batch; ++n)
    for (std::int64_t j = 0; j < c.features; ++j)
      for (std::int64_t k = 0; k < c.units; ++k)
        dx[n * c.features + j] += static_cast<double>(dz[n * c.units + k]) * kernel[j * c.units + k];
  for (std::int64_t j = 0; j < c.features; ++j) {
    for (std::int64_t k = 0; k < c.units; ++k) {
      double expected = 0.0, magnitude = 0.0;
      for (std::int64_t n = 0; n < c.batch; ++n) {
        expected += x[n * c.features + j] * dz[n * c.units + k];
        magnitude += std::fabs(x[n * c.features + j] * dz[n * c.units + k]);
      }
      EXPECT_NEAR(r.kernel_grad[j * c.units + k], expected, 1e-6 + 1e-5 * magnitude) << "kernel grad " << j << "," << k;
    }
    double dgamma = 0.0, dbeta = 0.0, magnitude = 0.0;
    for (std::int64_t n = 0; n < c.batch; ++n) {
      dgamma += dx[n * c.features + j] * xhat[n * c.features + j];
      dbeta += dx[n * c.features + j];
      magnitude += std::fabs(dx[n * c.features + j]) * (1.0 + std::fabs(xhat[n * c.features + j]));
    }
    if (c.scale)
      EXPECT_NEAR(r.dgamma[j], dgamma, 1e-6 + 1e-5 * magnitude) << "dgamma " << j;
    else
      EXPECT_EQ(r.dgamma[j], -7.0f) << "dgamma " << j << " written without scale";
    if (c.center)
      EXPECT_NEAR(r.dbeta[j], dbeta, 1e-6 + 1e-5 * magnitude) << "dbeta " << j;
    else
      EXPECT_EQ(r.dbeta[j], -7.0f) << "dbeta " << j << " written without center";
  }
}

TEST_P(AffineInputGradients, SameBitsWithOneAndTwoThreads) {
  const Result one = fused(1), two = fused(2);
  EXPECT_EQ(one.kernel_grad, two.kernel_grad);
  EXPECT_EQ(one.dgamma, two.dgamma);
  EXPECT_EQ(one.dbeta, two.dbeta);
}

// Units below one vector (scalar rows), exactly one and several vectors, a partial last vector
// (the overlapping step), the seed MLP's 784 x 300 (parallel), and scale/center switched off.
INSTANTIATE_TEST_SUITE_P(Shapes, AffineInputGradients,
                         ::testing::Values(Case{4, 3, 5, true, true}, Case{8, 5, 16, true, true},
                                           Case{8, 7, 17, true, true}, Case{6, 9, 47, true, true},
                                           Case{32, 784, 300, true, true}, Case{5, 6, 33, false, true},
                                           Case{5, 6, 33, true, false}, Case{3, 4, 20, false, false}));

TEST(AffineInputGradientsArguments, BadShapesAndMissingBuffersAreNamed) {
  float one = 1.0f;
  try {
    bnlab::kernels::affine_input_gradients(-1, 3, &one, nullptr, nullptr, &one, &one, nullptr, nullptr);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("features=-1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(bnlab::kernels::affine_input_gradients(1, 1, nullptr, nullptr, nullptr, &one, &one, nullptr, nullptr),
               std::invalid_argument);
  // Empty shapes touch nothing.
  bnlab::kernels::affine_input_gradients(0, 5, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
}

}  // namespace
