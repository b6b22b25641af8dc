#pragma once
// Input normalizations of seed 001 (cases 1 and 2) and the statistics it prints.
//
// "Per feature" follows NumPy's axis=0: dimension 0 is the batch, and every other element
// position (a pixel of a (N, 32, 32, 1) image set, a column of an (N, C) matrix) is one
// feature normalized over the N examples. "Global" uses one statistic for the whole tensor.
// All statistics are computed in double, in a fixed order, and the result is rounded to float
// once. Variance is the population variance (divide by N), as NumPy's var() and std().
//
// Constant features: where max == min (min-max) or std == 0 (standardization) the formula
// would divide by zero; NumPy gives NaN there. bnlab maps such values to 0 instead: the
// feature carries no information, and 0 is the centre of both output ranges.
//
// REQUIRES (each function): x is defined, has at least one element and dim(0) >= 1, else
// std::invalid_argument; values are finite (NaN or infinity make the result unspecified).
// ENSURES: the result is a new tensor with x's shape and layout; x is unchanged.

#include <cstdint>
#include <string>
#include <vector>

#include "bnlab/tensor.hpp"

namespace bnlab::data {

// (x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0)); values in [0, 1].
Tensor min_max_scale(const Tensor& x);
// (x - x.min()) / (x.max() - x.min()).
Tensor min_max_scale_global(const Tensor& x);
// (x - x.mean(axis=0)) / x.std(axis=0).
Tensor standardize(const Tensor& x);
// (x - x.mean()) / x.std().
Tensor standardize_global(const Tensor& x);

// What seed 001 prints for a data set: shape, max, min, mean and (population) variance.
struct Summary {
  std::vector<std::int64_t> shape;
  double max = 0;
  double min = 0;
  double mean = 0;
  double variance = 0;
};

// Mean and variance use two passes in double (mean first, then squared deviations from it),
// which avoids the cancellation of the one-pass E[x^2] - E[x]^2 formula.
// REQUIRES: x is defined and non-empty, else std::invalid_argument.
Summary summarize(const Tensor& x);

// The seed's printout, one statistic per line:
//   Data Shape: (30, 32, 32, 1)
//   Data Max: 63.48...
//   Data Min: ... / Data Mean: ... / Data Variance: ...
// Numbers use the shortest decimal form that reads back to the same double, as Python prints.
std::string format_summary(const Summary& summary);

}  // namespace bnlab::data
