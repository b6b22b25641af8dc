// The row loops take one of two ways over rows wider than 64 channels (batchnorm_loops.hpp,
// row_walk): blocks of registers walking tiles of rows (small tensors, in cache), or the rows
// one after another in address order with float partials in L1 (large ones; below AVX-512 the
// backward's sums take narrow rows that way too). The kernels choose by the tensor's size, so
// a shape only ever takes one of them; here both run on the same rows and
// must give the same bits (every channel adds in the same order either way). tests/CMakeLists.txt
// runs these tests again with BNLAB_MAX_CPU_ISA=avx2 and =x86-64, for the 8- and 4-lane loops.

#include <gtest/gtest.h>
#include <immintrin.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/batchnorm_loops.hpp"
#include "kernels/batchnorm_test_support.hpp"

namespace {

namespace loops = bnlab::kernels::loops;
using bnlab::testing::LineAligned;

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

// Narrow rows (the backward's sums below AVX-512), widths across the 64-channel line, vector
// tails, scalar tails, and the 1024-channel chunks of the partials, whole (1024, 2048) or not;
// row counts below, at and across the 16-row fold.
const RowsCase cases[] = {{33, 40, 48},   {20, 64, 64},    {1, 65, 65},      {17, 65, 80},
                          {16, 300, 300}, {40, 300, 304},  {33, 1030, 1030}, {5, 2051, 2064},
                          {21, 784, 784}, {3, 4100, 4100}, {20, 1024, 1024}, {18, 2048, 2048}};

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

// The instruction set the loops run, in the test's output (the ctest entries cap it).
void record_instruction_set() {
  ::testing::Test::RecordProperty("instruction_set", loops::selected_instruction_set());
  const char* cap = std::getenv("BNLAB_MAX_CPU_ISA");
  std::printf("loops: %s (BNLAB_MAX_CPU_ISA=%s)\n", loops::selected_instruction_set(), cap ? cap : "");
  // The capped ctest entries are only worth running if the cap took: the narrower loops ran.
  const std::string selected = loops::selected_instruction_set();
  __builtin_cpu_init();
  const std::string capped_at = cap ? cap : "";
  const std::string expected = capped_at == "x86-64"                                   ? "x86-64"
                               : capped_at == "avx2" && __builtin_cpu_supports("avx2") ? "avx2"
                               : capped_at == "avx2"                                   ? "x86-64"
                                                                                       : selected;
  EXPECT_EQ(selected, expected);
}

TEST(LoopPaths, SumsWalkingRowsEqualSumsInRegisterBlocksBitForBit) {
  record_instruction_set();
  for (const RowsCase& c : cases) {
    SCOPED_TRACE(name_of(c));
    const RowsInputs in(c, 1);
    const std::size_t w = in.w;
    const std::vector<float>&x = in.x, &dy = in.dy, &pivot = in.channel[0], &scale = in.channel[1],
          &shift = in.channel[2];
    std::vector<double> sums[2][2];
    for (bool row_walk : {false, true}) {
      auto& s = sums[row_walk];
      s[0].assign(w, 0.5);  // the loops add into what is there
      s[1].assign(w, 0.25);
      loops::moments_rows(x.data(), c.rows, c.row_stride, c.width, pivot.data(), s[0].data(), s[1].data(), row_walk);
    }
    EXPECT_TRUE(same_bits(sums[0][0], sums[1][0]) && same_bits(sums[0][1], sums[1][1])) << "moments";
    for (bool relu : {false, true}) {
      for (bool row_walk : {false, true}) {
        auto& s = sums[row_walk];
        s[0].assign(w, 0.0);
        s[1].assign(w, 0.0);
        loops::grad_sums_rows(x.data(), dy.data(), c.rows, c.row_stride, c.width, pivot.data(), scale.data(),
                              shift.data(), relu, s[0].data(), s[1].data(), row_walk);
      }
      EXPECT_TRUE(same_bits(sums[0][0], sums[1][0]) && same_bits(sums[0][1], sums[1][1])) << "relu " << relu;
    }
  }
}

TEST(LoopPaths, InputGradientWalkingRowsEqualsRegisterBlocksBitForBit) {
  record_instruction_set();
  constexpr float marker = -7.0f;
  for (const RowsCase& c : cases) {
    SCOPED_TRACE(name_of(c));
    const RowsInputs in(c, 20);
    const std::size_t n = in.n;
    const std::vector<float>&x = in.x, &dy = in.dy, &mean = in.channel[0], &a = in.channel[1], &b = in.channel[2],
          &k = in.channel[3], &scale = in.channel[4], &shift = in.channel[5];
    // Streaming stores where the rows allow them (the loops fall back to plain ones otherwise).
    for (bool stream : {false, true})
      for (bool relu : {false, true}) {
        // Filled with a marker: the channels past the width must stay untouched either way.
        LineAligned dx[2] = {LineAligned(n, marker), LineAligned(n, marker)};
        for (bool row_walk : {false, true})
          loops::grad_input_rows(x.data(), dy.data(), dx[row_walk].data, c.rows, c.row_stride, c.width, mean.data(),
                                 a.data(), b.data(), k.data(), scale.data(), shift.data(), relu, stream, row_walk);
        _mm_sfence();  // the streaming stores, before the buffers are read
        EXPECT_EQ(std::memcmp(dx[0].data, dx[1].data, n * sizeof(float)), 0) << "relu " << relu << " stream " << stream;
        for (std::int64_t r = 0; r < c.rows; ++r)
          for (std::int64_t ch = c.width; ch < c.row_stride; ++ch)
            ASSERT_EQ(dx[1].data[r * c.row_stride + ch], marker) << "row " << r << " channel " << ch;
      }
  }
}

}  // namespace
