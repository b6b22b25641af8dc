// Group normalization kernels against a float64 reference: the forward by its definition, the
// backward by central differences of that reference's loss sum(dy * y) (independent of the
// closed form the kernel uses), on every layout and group count, gamma/beta on and off.

#include "bnlab/kernels/group_norm.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/batchnorm_test_support.hpp"
#include "layers/grad_check.hpp"

namespace bnlab::testing {
namespace {

using kernels::GroupNormShape;

// Index of value (n, c, s) in the layout's memory order.
std::int64_t index_of(const GroupNormShape& s, std::int64_t n, std::int64_t c, std::int64_t i) {
  return s.layout == Layout::NCHW ? (n * s.channels + c) * s.spatial + i : (n * s.spatial + i) * s.channels + c;
}

// y by the definition, in double; gamma/beta empty means off.
std::vector<double> reference_forward(const GroupNormShape& s, const std::vector<double>& x,
                                      const std::vector<double>& gamma, const std::vector<double>& beta, double eps) {
  std::vector<double> y(x.size());
  const std::int64_t per_group = s.channels / s.groups;
  for (std::int64_t n = 0; n < s.batch; ++n)
    for (std::int64_t g = 0; g < s.groups; ++g) {
      double sum = 0, squares = 0;
      const double m = static_cast<double>(per_group * s.spatial);
      for (std::int64_t c = g * per_group; c < (g + 1) * per_group; ++c)
        for (std::int64_t i = 0; i < s.spatial; ++i) sum += x[index_of(s, n, c, i)];
      const double mean = sum / m;
      for (std::int64_t c = g * per_group; c < (g + 1) * per_group; ++c)
        for (std::int64_t i = 0; i < s.spatial; ++i) squares += std::pow(x[index_of(s, n, c, i)] - mean, 2);
      const double inv_std = 1.0 / std::sqrt(squares / m + eps);
      for (std::int64_t c = g * per_group; c < (g + 1) * per_group; ++c)
        for (std::int64_t i = 0; i < s.spatial; ++i) {
          const std::int64_t k = index_of(s, n, c, i);
          y[k] = (gamma.empty() ? 1.0 : gamma[c]) * (x[k] - mean) * inv_std + (beta.empty() ? 0.0 : beta[c]);
        }
    }
  return y;
}

double loss(const GroupNormShape& s, const std::vector<double>& x, const std::vector<double>& gamma,
            const std::vector<double>& beta, const std::vector<double>& dy, double eps) {
  const std::vector<double> y = reference_forward(s, x, gamma, beta, eps);
  double l = 0;
  for (std::size_t k = 0; k < y.size(); ++k) l += dy[k] * y[k];
  return l;
}

// d loss / d v[k] for every k, by central differences.
std::vector<double> numeric_gradient(std::vector<double>& v, const std::function<double()>& f) {
  std::vector<double> grad(v.size());
  for (std::size_t k = 0; k < v.size(); ++k) {
    const double saved = v[k], h = 1e-5 * std::max(1.0, std::abs(saved));
    v[k] = saved + h;
    const double up = f();
    v[k] = saved - h;
    const double down = f();
    v[k] = saved;
    grad[k] = (up - down) / (2 * h);
  }
  return grad;
}

struct GroupCase {
  GroupNormShape shape;
  bool affine;
};

class GroupNormReference : public ::testing::TestWithParam<GroupCase> {};

TEST_P(GroupNormReference, ForwardAndBackwardMatchFloat64) {
  const GroupNormShape s = GetParam().shape;
  const bool affine = GetParam().affine;
  const auto n = static_cast<std::size_t>(s.size()), C = static_cast<std::size_t>(s.channels);
  const float eps = 1e-3f;
  const std::vector<float> x = random_normal(n, 2.0f, 3.0f, 11), dy = random_normal(n, 0.0f, 1.0f, 12);
  const std::vector<float> gamma = affine ? random_normal(C, 1.0f, 0.5f, 13) : std::vector<float>{};
  const std::vector<float> beta = affine ? random_normal(C, 0.0f, 0.5f, 14) : std::vector<float>{};
  const auto G = static_cast<std::size_t>(s.batch * s.groups);
  std::vector<float> y(n), mean(G), inv_std(G), dx(n), dgamma(C), dbeta(C);
  kernels::group_norm_forward(s, x.data(), affine ? gamma.data() : nullptr, affine ? beta.data() : nullptr, eps,
                              y.data(), mean.data(), inv_std.data());
  kernels::group_norm_backward(s, x.data(), dy.data(), affine ? gamma.data() : nullptr, mean.data(), inv_std.data(),
                               dx.data(), dgamma.data(), dbeta.data());

  // Without dx (a model's first trained layer) or with one of the parameter grads alone, the
  // parameter grads keep their bits.
  std::vector<float> dgamma_alone(C), dbeta_alone(C);
  kernels::group_norm_backward(s, x.data(), dy.data(), affine ? gamma.data() : nullptr, mean.data(), inv_std.data(),
                               nullptr, dgamma_alone.data(), nullptr);
  kernels::group_norm_backward(s, x.data(), dy.data(), affine ? gamma.data() : nullptr, mean.data(), inv_std.data(),
                               nullptr, nullptr, dbeta_alone.data());
  EXPECT_EQ(dgamma_alone, dgamma);
  EXPECT_EQ(dbeta_alone, dbeta);

  std::vector<double> xd = to_double(x), gd = to_double(gamma), bd = to_double(beta);
  const std::vector<double> dyd = to_double(dy);
  EXPECT_LE(worst_error(y, reference_forward(s, xd, gd, bd, eps), 1e-5, 1e-5), 1.0);
  auto f = [&] { return loss(s, xd, gd, bd, dyd, eps); };
  EXPECT_LE(worst_error(dx, numeric_gradient(xd, f), 1e-4, 1e-3), 1.0);
  if (affine) {
    EXPECT_LE(worst_error(dgamma, numeric_gradient(gd, f), 1e-4, 1e-4), 1.0);
    EXPECT_LE(worst_error(dbeta, numeric_gradient(bd, f), 1e-4, 1e-4), 1.0);
  } else {
    // Without gamma and beta the kernel still gives their gradients at gamma = 1, beta = 0.
    std::vector<double> ones(C, 1.0), zeros(C, 0.0);
    auto at_identity = [&] { return loss(s, xd, ones, zeros, dyd, eps); };
    EXPECT_LE(worst_error(dgamma, numeric_gradient(ones, at_identity), 1e-4, 1e-4), 1.0);
    EXPECT_LE(worst_error(dbeta, numeric_gradient(zeros, at_identity), 1e-4, 1e-4), 1.0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    LayoutsAndGroups, GroupNormReference,
    ::testing::Values(GroupCase{{3, 7, 1, Layout::NC, 1}, true},    // layer normalization of 7 features
                      GroupCase{{2, 6, 1, Layout::NC, 3}, false},   // groups of 2 features
                      GroupCase{{33, 37, 1, Layout::NC, 1}, true},  // two chunks of rows, three folds, vector runs
                      GroupCase{{3, 40, 1, Layout::NC, 2}, false},  // groups of 20: a vector and a tail
                      GroupCase{{2, 6, 5, Layout::NCHW, 2}, true},  //
                      GroupCase{{2, 6, 5, Layout::NHWC, 2}, true},  //
                      GroupCase{{2, 4, 6, Layout::NCHW, 4}, true},  // instance normalization
                      GroupCase{{2, 4, 6, Layout::NHWC, 1}, false},
                      GroupCase{{1, 70, 2, Layout::NHWC, 5}, true}));  // more channels than one block of 64

// The same values in the two image layouts give the same statistics and outputs (to rounding:
// the sums run in another order).
TEST(GroupNorm, ChannelsFirstAndLastAgree) {
  const GroupNormShape first{3, 8, 9, Layout::NCHW, 4}, last{3, 8, 9, Layout::NHWC, 4};
  const auto n = static_cast<std::size_t>(first.size());
  const std::vector<float> x = random_normal(n, 1.0f, 2.0f, 5), dy = random_normal(n, 0.0f, 1.0f, 6);
  std::vector<float> x_last(n), dy_last(n);
  for (std::int64_t b = 0; b < 3; ++b)
    for (std::int64_t c = 0; c < 8; ++c)
      for (std::int64_t i = 0; i < 9; ++i) {
        x_last[index_of(last, b, c, i)] = x[index_of(first, b, c, i)];
        dy_last[index_of(last, b, c, i)] = dy[index_of(first, b, c, i)];
      }
  std::vector<float> y1(n), y2(n), m1(12), m2(12), r1(12), r2(12), dx1(n), dx2(n), dg1(8), dg2(8), db1(8), db2(8);
  kernels::group_norm_forward(first, x.data(), nullptr, nullptr, 1e-5f, y1.data(), m1.data(), r1.data());
  kernels::group_norm_forward(last, x_last.data(), nullptr, nullptr, 1e-5f, y2.data(), m2.data(), r2.data());
  kernels::group_norm_backward(first, x.data(), dy.data(), nullptr, m1.data(), r1.data(), dx1.data(), dg1.data(),
                               db1.data());
  kernels::group_norm_backward(last, x_last.data(), dy_last.data(), nullptr, m2.data(), r2.data(), dx2.data(),
                               dg2.data(), db2.data());
  for (std::size_t g = 0; g < 12; ++g) {
    EXPECT_NEAR(m1[g], m2[g], 1e-5);
    EXPECT_NEAR(r1[g], r2[g], 1e-5);
  }
  for (std::int64_t b = 0; b < 3; ++b)
    for (std::int64_t c = 0; c < 8; ++c)
      for (std::int64_t i = 0; i < 9; ++i) {
        EXPECT_NEAR(y1[index_of(first, b, c, i)], y2[index_of(last, b, c, i)], 1e-5);
        EXPECT_NEAR(dx1[index_of(first, b, c, i)], dx2[index_of(last, b, c, i)], 1e-5);
      }
  for (std::size_t c = 0; c < 8; ++c) {
    EXPECT_NEAR(dg1[c], dg2[c], 1e-4);
    EXPECT_NEAR(db1[c], db2[c], 1e-4);
  }
}

// Large enough to run on two threads: the bits equal one thread's, in each layout (layer norm's
// rows in several chunks of 32).
class GroupNormThreads : public ::testing::TestWithParam<GroupNormShape> {};

TEST_P(GroupNormThreads, SameBitsOnOneAndTwoThreads) {
  const GroupNormShape s = GetParam();
  const std::int64_t C = s.channels, stats = s.batch * s.groups;
  const auto n = static_cast<std::size_t>(s.size());
  const std::vector<float> x = random_normal(n, 0.5f, 2.0f, 7), dy = random_normal(n, 0.0f, 1.0f, 8);
  const std::vector<float> gamma = random_normal(static_cast<std::size_t>(C), 1.0f, 0.3f, 9);
  const std::vector<float> beta = random_normal(static_cast<std::size_t>(C), 0.0f, 0.3f, 10);
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> out(2 * n + 2 * static_cast<std::size_t>(C)), mean(static_cast<std::size_t>(stats)),
        inv_std(static_cast<std::size_t>(stats));
    kernels::group_norm_forward(s, x.data(), gamma.data(), beta.data(), 1e-3f, out.data(), mean.data(), inv_std.data());
    kernels::group_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), inv_std.data(), out.data() + n,
                                 out.data() + 2 * n, out.data() + 2 * n + C);
    omp_set_num_threads(saved);
    return out;
  };
  const std::vector<float> one = run(1), two = run(2);
  EXPECT_TRUE(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
}

INSTANTIATE_TEST_SUITE_P(Layouts, GroupNormThreads,
                         ::testing::Values(GroupNormShape{4, 96, 14 * 14, Layout::NHWC, 8},
                                           GroupNormShape{4, 96, 14 * 14, Layout::NCHW, 8},
                                           GroupNormShape{100, 512, 1, Layout::NC, 1},
                                           GroupNormShape{100, 512, 1, Layout::NC, 4}));

// From 16 MiB the NC outputs are written with non-temporal stores (whole 64-byte lines; the
// rest of a row one by one). A row's y and dx depend only on that row, so the same rows in a
// 32-row call, written with plain stores, must have the same bits. Line-aligned rows of 1024,
// and rows of 1030 in two groups (each group's run starting anywhere in a line).
TEST(GroupNorm, StreamedOutputsEqualTheSameRowsInASmallCall) {
  for (const GroupNormShape s :
       {GroupNormShape{4096, 1024, 1, Layout::NC, 1}, GroupNormShape{4096, 1030, 1, Layout::NC, 2}}) {
    ASSERT_GE(s.size() * 4, std::int64_t{16} << 20) << "not large enough to stream";
    const std::int64_t n = s.size(), C = s.channels, G = s.groups, rows = 32;
    const std::vector<float> x_values = random_normal(static_cast<std::size_t>(n), 1.0f, 2.0f, 31),
                             dy_values = random_normal(static_cast<std::size_t>(n), 0.0f, 1.0f, 32),
                             gamma = random_normal(static_cast<std::size_t>(C), 1.0f, 0.3f, 33),
                             beta = random_normal(static_cast<std::size_t>(C), 0.0f, 1.0f, 34);
    AlignedBuffer x = make_aligned_buffer(n), dy = make_aligned_buffer(n), y = make_aligned_buffer(n),
                  dx = make_aligned_buffer(n);
    std::copy(x_values.begin(), x_values.end(), x.get());
    std::copy(dy_values.begin(), dy_values.end(), dy.get());
    std::vector<float> mean(static_cast<std::size_t>(s.batch * G)), inv_std(mean.size()), dgamma(gamma.size()),
        dbeta(gamma.size());
    // gamma and beta each on and off: the forward loop's four versions, the backward's two.
    for (const int parameters : {0, 1, 2, 3}) {
      const float* g = parameters & 1 ? gamma.data() : nullptr;
      const float* b = parameters & 2 ? beta.data() : nullptr;
      kernels::group_norm_forward(s, x.get(), g, b, 1e-3f, y.get(), mean.data(), inv_std.data());
      kernels::group_norm_backward(s, x.get(), dy.get(), g, mean.data(), inv_std.data(), dx.get(), dgamma.data(),
                                   dbeta.data());
      const GroupNormShape small{rows, C, 1, Layout::NC, G};
      for (const std::int64_t first_row : {std::int64_t{0}, std::int64_t{2048}, s.batch - rows}) {
        const std::int64_t at = first_row * C, count = rows * C;
        std::vector<float> small_y(static_cast<std::size_t>(count)), small_dx(small_y.size()),
            small_mean(static_cast<std::size_t>(rows * G)), small_inv_std(small_mean.size());
        kernels::group_norm_forward(small, x.get() + at, g, b, 1e-3f, small_y.data(), small_mean.data(),
                                    small_inv_std.data());
        kernels::group_norm_backward(small, x.get() + at, dy.get() + at, g, small_mean.data(), small_inv_std.data(),
                                     small_dx.data(), nullptr, nullptr);
        const std::string where =
            fmt::format("C={}, gamma {}, beta {}, rows from {}", C, g ? "on" : "off", b ? "on" : "off", first_row);
        EXPECT_EQ(std::memcmp(small_y.data(), y.get() + at, small_y.size() * sizeof(float)), 0) << "y, " << where;
        EXPECT_EQ(std::memcmp(small_dx.data(), dx.get() + at, small_dx.size() * sizeof(float)), 0) << "dx, " << where;
        EXPECT_EQ(std::memcmp(small_mean.data(), mean.data() + first_row * G, small_mean.size() * sizeof(float)), 0)
            << where;
      }
    }
  }
}

TEST(GroupNorm, LargeMeanSmallSpreadKeepsItsPrecision) {
  for (const Layout layout : {Layout::NC, Layout::NCHW, Layout::NHWC}) {
    const GroupNormShape s{3, 8, layout == Layout::NC ? 1 : 49, layout, 2};
    const auto n = static_cast<std::size_t>(s.size());
    const std::vector<float> x = random_normal(n, 1e4f, 0.1f, 21);
    std::vector<float> y(n), mean(6), inv_std(6);
    kernels::group_norm_forward(s, x.data(), nullptr, nullptr, 1e-5f, y.data(), mean.data(), inv_std.data());
    const std::vector<double> expected = reference_forward(s, to_double(x), {}, {}, 1e-5);
    EXPECT_LE(worst_error(y, expected, 2e-3, 1e-3), 1.0) << to_string(layout);
  }
}

// Scale or center off alone: the forward equals the one with the missing parameter at its
// identity (gamma 1, beta 0; +0 and -0 compare equal), in every layout, with vector runs and tails.
TEST(GroupNorm, GammaOrBetaAloneEqualsTheIdentityParameter) {
  for (const Layout layout : {Layout::NC, Layout::NCHW, Layout::NHWC}) {
    const GroupNormShape s{5, 74, layout == Layout::NC ? 1 : 3, layout, 2};
    const auto n = static_cast<std::size_t>(s.size()), c = static_cast<std::size_t>(s.channels);
    const std::vector<float> x = random_normal(n, 2.0f, 3.0f, 5), gamma = random_normal(c, 1.0f, 0.5f, 6),
                             beta = random_normal(c, 0.0f, 1.0f, 7);
    const std::vector<float> ones(c, 1.0f), zeros(c, 0.0f);
    std::vector<float> y(n), expected(n), mean(10), inv_std(10);
    kernels::group_norm_forward(s, x.data(), gamma.data(), nullptr, 1e-3f, y.data(), mean.data(), inv_std.data());
    kernels::group_norm_forward(s, x.data(), gamma.data(), zeros.data(), 1e-3f, expected.data(), mean.data(),
                                inv_std.data());
    EXPECT_EQ(y, expected) << "gamma alone, " << to_string(layout);
    kernels::group_norm_forward(s, x.data(), nullptr, beta.data(), 1e-3f, y.data(), mean.data(), inv_std.data());
    kernels::group_norm_forward(s, x.data(), ones.data(), beta.data(), 1e-3f, expected.data(), mean.data(),
                                inv_std.data());
    EXPECT_EQ(y, expected) << "beta alone, " << to_string(layout);
  }
}

TEST(GroupNorm, AGroupOfOneValueGivesBeta) {
  const GroupNormShape s{2, 3, 1, Layout::NC, 3};
  const std::vector<float> x{1.0f, -2.0f, 30.0f, 4.0f, 5.0f, 6.0f}, beta{0.5f, -0.25f, 2.0f};
  std::vector<float> y(6), mean(6), inv_std(6);
  kernels::group_norm_forward(s, x.data(), nullptr, beta.data(), 1e-3f, y.data(), mean.data(), inv_std.data());
  for (int k = 0; k < 6; ++k) EXPECT_EQ(y[k], beta[k % 3]);
}

TEST(GroupNorm, BadArgumentsThrowNamingThem) {
  std::vector<float> buffer(64), stats(16);
  float* p = buffer.data();
  BNLAB_EXPECT_INVALID(
      kernels::group_norm_forward({2, 6, 1, Layout::NC, 4}, p, nullptr, nullptr, 1e-3f, p, stats.data(), stats.data()),
      "group_norm_forward", "4 groups", "C=6");
  BNLAB_EXPECT_INVALID(
      kernels::group_norm_forward({2, 6, 1, Layout::NC, 0}, p, nullptr, nullptr, 1e-3f, p, stats.data(), stats.data()),
      "0 groups");
  BNLAB_EXPECT_INVALID(
      kernels::group_norm_forward({2, 6, 1, Layout::NC, 2}, p, nullptr, nullptr, 0.0f, p, stats.data(), stats.data()),
      "epsilon", "0");
  BNLAB_EXPECT_INVALID(kernels::group_norm_forward({2, 6, 1, Layout::NC, 2}, p, nullptr, nullptr, 1e-3f, nullptr,
                                                   stats.data(), stats.data()),
                       "y is null");
  BNLAB_EXPECT_INVALID(
      kernels::group_norm_forward({0, 6, 1, Layout::NC, 2}, p, nullptr, nullptr, 1e-3f, p, stats.data(), stats.data()),
      "empty");
  BNLAB_EXPECT_INVALID(kernels::group_norm_backward({2, 6, 1, Layout::NC, 2}, p, p, nullptr, stats.data(), stats.data(),
                                                    nullptr, nullptr, nullptr),
                       "nothing to compute");
}

}  // namespace
}  // namespace bnlab::testing
