// The row loops take one of two ways over rows wider than 64 channels (batchnorm_loops.hpp,
// from_memory): blocks of registers walking tiles of rows for tensors in cache, or a walk in
// address order with float partials in L1 for tensors read from memory. The kernels choose by
// the tensor's size, so a shape only ever takes one of them; here both run on the same rows and
// must give the same bits (every channel adds in the same order either way).

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/batchnorm_loops.hpp"

namespace {

namespace loops = bnlab::kernels::loops;

std::vector<float> normal_values(std::size_t n, float mean, float spread, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(mean, spread);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

struct RowsCase {
  std::int64_t rows, width, row_stride;  // the stride leaves channels outside the width untouched
};

// Widths across the 64-channel line, vector tails, scalar tails and the 1024-channel chunks of
// the partials; row counts below, at and across the 16-row fold.
const RowsCase cases[] = {{1, 65, 65},      {17, 65, 80},    {16, 300, 300}, {40, 300, 304},
                          {33, 1030, 1030}, {5, 2051, 2064}, {21, 784, 784}, {3, 4100, 4100}};

std::string name_of(const RowsCase& c) {
  return std::to_string(c.rows) + "x" + std::to_string(c.width) + " stride " + std::to_string(c.row_stride);
}

// x and dy over the case's rows, and per-channel arrays: the first like means (near x's mean),
// the others near 1, 0, 0, 1 and 0 (scale-, shift- and coefficient-like).
struct RowsInputs {
  std::size_t n, w;
  std::vector<float> x, dy, channel[6];
  RowsInputs(const RowsCase& c, unsigned seed)
      : n(static_cast<std::size_t>(c.rows * c.row_stride)), w(static_cast<std::size_t>(c.width)) {
    x = normal_values(n, 3.0f, 2.0f, seed);
    dy = normal_values(n, 0.0f, 1.0f, seed + 1);
    const float centres[6] = {3.0f, 1.0f, 0.0f, 0.0f, 1.0f, 0.0f};
    for (int i = 0; i < 6; ++i) channel[i] = normal_values(w, centres[i], 0.3f, seed + 2 + i);
  }
};

TEST(LoopPaths, SumsFromMemoryEqualSumsInCacheBitForBit) {
  for (const RowsCase& c : cases) {
    SCOPED_TRACE(name_of(c));
    const RowsInputs in(c, 1);
    const std::size_t w = in.w;
    const std::vector<float>&x = in.x, &dy = in.dy, &pivot = in.channel[0], &scale = in.channel[1],
          &shift = in.channel[2];
    std::vector<double> sums[2][2];
    for (bool from_memory : {false, true}) {
      auto& s = sums[from_memory];
      s[0].assign(w, 0.5);  // the loops add into what is there
      s[1].assign(w, 0.25);
      loops::moments_rows(x.data(), c.rows, c.row_stride, c.width, pivot.data(), s[0].data(), s[1].data(), from_memory);
    }
    EXPECT_TRUE(same_bits(sums[0][0], sums[1][0]) && same_bits(sums[0][1], sums[1][1])) << "moments";
    for (bool relu : {false, true}) {
      for (bool from_memory : {false, true}) {
        auto& s = sums[from_memory];
        s[0].assign(w, 0.0);
        s[1].assign(w, 0.0);
        loops::grad_sums_rows(x.data(), dy.data(), c.rows, c.row_stride, c.width, pivot.data(), scale.data(),
                              shift.data(), relu, s[0].data(), s[1].data(), from_memory);
      }
      EXPECT_TRUE(same_bits(sums[0][0], sums[1][0]) && same_bits(sums[0][1], sums[1][1])) << "relu " << relu;
    }
  }
}

TEST(LoopPaths, InputGradientFromMemoryEqualsInCacheBitForBit) {
  for (const RowsCase& c : cases) {
    SCOPED_TRACE(name_of(c));
    const RowsInputs in(c, 20);
    const std::size_t n = in.n;
    const std::vector<float>&x = in.x, &dy = in.dy, &mean = in.channel[0], &a = in.channel[1], &b = in.channel[2],
          &k = in.channel[3], &scale = in.channel[4], &shift = in.channel[5];
    for (bool relu : {false, true}) {
      // Filled with a marker: the channels past the width must stay untouched either way.
      std::vector<float> dx[2] = {std::vector<float>(n, -7.0f), std::vector<float>(n, -7.0f)};
      for (bool from_memory : {false, true})
        loops::grad_input_rows(x.data(), dy.data(), dx[from_memory].data(), c.rows, c.row_stride, c.width, mean.data(),
                               a.data(), b.data(), k.data(), scale.data(), shift.data(), relu,
                               /*stream=*/false, from_memory);
      EXPECT_TRUE(same_bits(dx[0], dx[1])) << "relu " << relu;
    }
  }
}

}  // namespace
