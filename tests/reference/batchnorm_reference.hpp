#pragma once
// Float64 BatchNorm, written from the seed's equations in the plainest form (two passes,
// explicit indexing), as the independent reference for every kernel variant.

#include <cmath>
#include <cstdint>
#include <vector>

#include "bnlab/kernels/batchnorm.hpp"

namespace bnlab::reference {

using kernels::BatchNormShape;

inline std::int64_t index_of(const BatchNormShape& s, std::int64_t n, std::int64_t c, std::int64_t i) {
  if (s.layout == Layout::NCHW) return (n * s.channels + c) * s.spatial + i;
  return (n * s.spatial + i) * s.channels + c;  // NC (spatial 1) and NHWC
}

struct Forward {
  std::vector<double> y, mean, variance, inv_std;
};

// gamma/beta empty = scale/center off. relu folds max(0, .) into y.
inline Forward forward_training(const BatchNormShape& s, const std::vector<double>& x, const std::vector<double>& gamma,
                                const std::vector<double>& beta, double eps, bool relu) {
  Forward f;
  const auto C = s.channels;
  const double m = static_cast<double>(s.batch * s.spatial);
  f.y.resize(x.size());
  f.mean.assign(C, 0.0);
  f.variance.assign(C, 0.0);
  f.inv_std.assign(C, 0.0);
  for (std::int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (std::int64_t n = 0; n < s.batch; ++n)
      for (std::int64_t i = 0; i < s.spatial; ++i) sum += x[index_of(s, n, c, i)];
    const double mu = sum / m;
    double sq = 0;
    for (std::int64_t n = 0; n < s.batch; ++n)
      for (std::int64_t i = 0; i < s.spatial; ++i)
        sq += (x[index_of(s, n, c, i)] - mu) * (x[index_of(s, n, c, i)] - mu);
    const double var = sq / m, inv = 1.0 / std::sqrt(var + eps);
    f.mean[c] = mu;
    f.variance[c] = var;
    f.inv_std[c] = inv;
    const double g = gamma.empty() ? 1.0 : gamma[c], b = beta.empty() ? 0.0 : beta[c];
    for (std::int64_t n = 0; n < s.batch; ++n)
      for (std::int64_t i = 0; i < s.spatial; ++i) {
        const auto k = index_of(s, n, c, i);
        const double v = g * (x[k] - mu) * inv + b;
        f.y[k] = relu ? (v < 0 ? 0 : v) : v;
      }
  }
  return f;
}

inline std::vector<double> forward_inference(const BatchNormShape& s, const std::vector<double>& x,
                                             const std::vector<double>& mean, const std::vector<double>& var,
                                             const std::vector<double>& gamma, const std::vector<double>& beta,
                                             double eps, bool relu) {
  std::vector<double> y(x.size());
  for (std::int64_t c = 0; c < s.channels; ++c) {
    const double inv = 1.0 / std::sqrt(var[c] + eps);
    const double g = gamma.empty() ? 1.0 : gamma[c], b = beta.empty() ? 0.0 : beta[c];
    for (std::int64_t n = 0; n < s.batch; ++n)
      for (std::int64_t i = 0; i < s.spatial; ++i) {
        const auto k = index_of(s, n, c, i);
        const double v = g * (x[k] - mean[c]) * inv + b;
        y[k] = relu ? (v < 0 ? 0 : v) : v;
      }
  }
  return y;
}

struct Backward {
  std::vector<double> dx, dgamma, dbeta;
};

// The seed 000 backward equations, term by term (dL/dxhat, dL/dvar, dL/dmu, dL/dx).
inline Backward backward_training(const BatchNormShape& s, const std::vector<double>& x, const std::vector<double>& dy,
                                  const std::vector<double>& gamma, const std::vector<double>& beta, double eps,
                                  bool relu) {
  const Forward f = forward_training(s, x, gamma, beta, eps, false);
  Backward b;
  const auto C = s.channels;
  const double m = static_cast<double>(s.batch * s.spatial);
  b.dx.resize(x.size());
  b.dgamma.assign(C, 0.0);
  b.dbeta.assign(C, 0.0);
  for (std::int64_t c = 0; c < C; ++c) {
    const double g = gamma.empty() ? 1.0 : gamma[c];
    const double mu = f.mean[c], var = f.variance[c];
    auto dyp = [&](std::int64_t k) { return relu && f.y[k] <= 0 ? 0.0 : dy[k]; };  // f.y is pre-ReLU here
    double dvar = 0, dmu = 0, sum_xc = 0;
    for (std::int64_t n = 0; n < s.batch; ++n)
      for (std::int64_t i = 0; i < s.spatial; ++i) {
        const auto k = index_of(s, n, c, i);
        const double dxhat = dyp(k) * g;
        dvar += dxhat * (x[k] - mu) * -0.5 * std::pow(var + eps, -1.5);
        dmu += dxhat * -1.0 / std::sqrt(var + eps);
        sum_xc += x[k] - mu;
        b.dgamma[c] += dyp(k) * (x[k] - mu) / std::sqrt(var + eps);
        b.dbeta[c] += dyp(k);
      }
    dmu += dvar * -2.0 / m * sum_xc;
    for (std::int64_t n = 0; n < s.batch; ++n)
      for (std::int64_t i = 0; i < s.spatial; ++i) {
        const auto k = index_of(s, n, c, i);
        b.dx[k] = dyp(k) * g / std::sqrt(var + eps) + dvar * 2.0 / m * (x[k] - mu) + dmu / m;
      }
  }
  (void)beta;
  return b;
}

}  // namespace bnlab::reference
