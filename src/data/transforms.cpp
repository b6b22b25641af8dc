#include "bnlab/data/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace bnlab::data {

namespace {

struct Extent {
  std::int64_t rows;
  std::int64_t features;
};

Extent check_input(const Tensor& x, const char* function) {
  if (!x.defined() || x.empty())
    throw std::invalid_argument(fmt::format("{}: input tensor is {}", function, x.defined() ? "empty" : "undefined"));
  return {x.dim(0), x.size() / x.dim(0)};
}

// out = (x - offset) / divisor per feature, with divisor 0 meaning "constant feature" -> 0.
void apply_affine(const Tensor& x, const std::vector<double>& offset, const std::vector<double>& divisor, Tensor& out) {
  const std::int64_t features = static_cast<std::int64_t>(offset.size());
  const std::int64_t rows = x.size() / features;
  const float* in = x.data();
  float* o = out.data();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t f = 0; f < features; ++f) {
      const std::int64_t i = r * features + f;
      o[i] = divisor[f] == 0.0 ? 0.0f : static_cast<float>((static_cast<double>(in[i]) - offset[f]) / divisor[f]);
    }
}

Tensor min_max_with(const Tensor& x, std::int64_t features) {
  const std::int64_t rows = x.size() / features;
  std::vector<double> low(features), range(features);
  const float* in = x.data();
  for (std::int64_t f = 0; f < features; ++f) low[f] = range[f] = in[f];  // range holds the max until the end
  for (std::int64_t r = 1; r < rows; ++r)
    for (std::int64_t f = 0; f < features; ++f) {
      const double v = in[r * features + f];
      low[f] = std::min(low[f], v);
      range[f] = std::max(range[f], v);
    }
  for (std::int64_t f = 0; f < features; ++f) range[f] -= low[f];
  Tensor out(x.shape(), x.layout());
  apply_affine(x, low, range, out);
  return out;
}

Tensor standardize_with(const Tensor& x, std::int64_t features) {
  const std::int64_t rows = x.size() / features;
  const float* in = x.data();
  std::vector<double> mean(features, 0.0), deviation(features, 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t f = 0; f < features; ++f) mean[f] += in[r * features + f];
  for (std::int64_t f = 0; f < features; ++f) mean[f] /= static_cast<double>(rows);
  // Second pass over deviations from the mean: exact 0 for a constant feature (the mean of
  // identical floats is exact in double), so the constant-feature test below is reliable.
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t f = 0; f < features; ++f) {
      const double d = in[r * features + f] - mean[f];
      deviation[f] += d * d;
    }
  for (std::int64_t f = 0; f < features; ++f) deviation[f] = std::sqrt(deviation[f] / static_cast<double>(rows));
  Tensor out(x.shape(), x.layout());
  apply_affine(x, mean, deviation, out);
  return out;
}

}  // namespace

Tensor min_max_scale(const Tensor& x) { return min_max_with(x, check_input(x, "min_max_scale").features); }

Tensor min_max_scale_global(const Tensor& x) {
  check_input(x, "min_max_scale_global");
  return min_max_with(x, 1);
}

Tensor standardize(const Tensor& x) { return standardize_with(x, check_input(x, "standardize").features); }

Tensor standardize_global(const Tensor& x) {
  check_input(x, "standardize_global");
  return standardize_with(x, 1);
}

Summary summarize(const Tensor& x) {
  check_input(x, "summarize");
  const float* in = x.data();
  const std::int64_t n = x.size();
  Summary s;
  s.shape = x.shape();
  s.min = s.max = in[0];
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = in[i];
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
    sum += v;
  }
  s.mean = sum / static_cast<double>(n);
  double squares = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double d = in[i] - s.mean;
    squares += d * d;
  }
  s.variance = squares / static_cast<double>(n);
  return s;
}

namespace {

// Python's repr of a float: shortest round-trip digits, as fmt gives, but an integral value
// keeps a ".0" ("4.0", not "4") so the printout reads like the seed's.
std::string python_float(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".ein") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

std::string format_summary(const Summary& summary) {
  // Python's tuple form: a one-element shape prints as "(5,)".
  const std::string shape =
      fmt::format("({}{})", fmt::join(summary.shape, ", "), summary.shape.size() == 1 ? "," : "");
  return fmt::format("Data Shape: {}\nData Max: {}\nData Min: {}\nData Mean: {}\nData Variance: {}\n", shape,
                     python_float(summary.max), python_float(summary.min), python_float(summary.mean),
                     python_float(summary.variance));
}

}  // namespace bnlab::data
