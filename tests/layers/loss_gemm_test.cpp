#include <gtest/gtest.h>
#include <omp.h>

#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "bnlab/kernels/gemm.hpp"
#include "bnlab/kernels/loss.hpp"
#include "layers/grad_check.hpp"

namespace bnlab {
namespace {

using testing::random_tensor;

double reference_loss(const std::vector<float>& logits, const std::vector<std::int32_t>& labels, std::int64_t classes) {
  const std::int64_t rows = static_cast<std::int64_t>(labels.size());
  double total = 0.0;
  for (std::int64_t r = 0; r < rows; ++r) {
    double max = logits[r * classes];
    for (std::int64_t c = 1; c < classes; ++c) max = std::max(max, static_cast<double>(logits[r * classes + c]));
    double sum = 0.0;
    for (std::int64_t c = 0; c < classes; ++c) sum += std::exp(logits[r * classes + c] - max);
    total += std::log(sum) + max - logits[r * classes + labels[r]];
  }
  return total / static_cast<double>(rows);
}

TEST(SoftmaxCrossEntropy, LossMatchesDoubleReferenceAndGradientCentralDifferences) {
  const std::int64_t rows = 6, classes = 10;
  const Tensor logits_t = random_tensor({rows, classes}, Layout::NC, 1, -4.0f, 4.0f);
  std::vector<float> logits(logits_t.data(), logits_t.data() + logits_t.size());
  const std::vector<std::int32_t> labels{0, 9, 3, 3, 7, 1};
  std::vector<float> probabilities(rows * classes), losses(rows), dlogits(rows * classes);
  const float loss = kernels::softmax_cross_entropy_forward(rows, classes, logits.data(), labels.data(),
                                                            probabilities.data(), losses.data());
  EXPECT_NEAR(loss, reference_loss(logits, labels, classes), 1e-5);
  kernels::softmax_cross_entropy_backward(rows, classes, probabilities.data(), labels.data(), dlogits.data());
  for (std::int64_t i = 0; i < rows * classes; ++i) {
    const float saved = logits[i];
    const double h = 1e-3;
    logits[i] = saved + static_cast<float>(h);
    const double plus = reference_loss(logits, labels, classes);
    logits[i] = saved - static_cast<float>(h);
    const double minus = reference_loss(logits, labels, classes);
    logits[i] = saved;
    const double taken = static_cast<double>(saved + static_cast<float>(h)) - (saved - static_cast<float>(h));
    EXPECT_NEAR(dlogits[i], (plus - minus) / taken, 1e-5) << i;
  }
}

// The header allows dlogits to alias probabilities; in place must equal out of place.
TEST(SoftmaxCrossEntropy, BackwardInPlaceEqualsOutOfPlace) {
  const std::int64_t rows = 5, classes = 7;
  const Tensor logits_t = random_tensor({rows, classes}, Layout::NC, 3, -3.0f, 3.0f);
  const std::vector<std::int32_t> labels{0, 6, 2, 2, 5};
  std::vector<float> probabilities(rows * classes), losses(rows), separate(rows * classes);
  kernels::softmax_cross_entropy_forward(rows, classes, logits_t.data(), labels.data(), probabilities.data(),
                                         losses.data());
  kernels::softmax_cross_entropy_backward(rows, classes, probabilities.data(), labels.data(), separate.data());
  kernels::softmax_cross_entropy_backward(rows, classes, probabilities.data(), labels.data(), probabilities.data());
  for (std::int64_t i = 0; i < rows * classes; ++i) EXPECT_EQ(probabilities[i], separate[i]) << i;
}

TEST(SoftmaxCrossEntropy, StableForExtremeLogits) {
  const std::vector<float> logits{1000.0f, -1000.0f, 0.0f, -1000.0f, 1000.0f, 0.0f};
  const std::vector<std::int32_t> labels{0, 0};
  std::vector<float> probabilities(6), losses(2);
  const float loss =
      kernels::softmax_cross_entropy_forward(2, 3, logits.data(), labels.data(), probabilities.data(), losses.data());
  EXPECT_NEAR(losses[0], 0.0f, 1e-6);
  EXPECT_NEAR(losses[1], 2000.0f, 1e-2);  // a finite loss where log(softmax) would be -inf
  EXPECT_NEAR(loss, 1000.0f, 1e-2);
}

TEST(SoftmaxCrossEntropy, LabelsOutOfRangeThrowNamingRowAndValue) {
  std::vector<float> logits(6, 0.0f), probabilities(6), losses(2);
  const std::vector<std::int32_t> too_big{1, 3};
  BNLAB_EXPECT_INVALID(kernels::softmax_cross_entropy_forward(2, 3, logits.data(), too_big.data(),
                                                              probabilities.data(), losses.data()),
                       "label 3", "row 1", "[0, 3)");
  const std::vector<std::int32_t> negative{-1, 0};
  BNLAB_EXPECT_INVALID(kernels::count_correct(2, 3, logits.data(), negative.data()), "label -1", "row 0");
}

TEST(Accuracy, ArgmaxWithFirstOnTies) {
  const std::vector<float> scores{0.1f, 0.7f, 0.2f,  //
                                  0.5f, 0.5f, 0.0f,  // tie: the first wins
                                  0.3f, 0.3f, 0.4f};
  EXPECT_EQ(kernels::count_correct(3, 3, scores.data(), std::vector<std::int32_t>{1, 0, 2}.data()), 3);
  EXPECT_EQ(kernels::count_correct(3, 3, scores.data(), std::vector<std::int32_t>{1, 1, 0}.data()), 1);
  EXPECT_FLOAT_EQ(kernels::accuracy(3, 3, scores.data(), std::vector<std::int32_t>{0, 0, 2}.data()), 2.0f / 3.0f);
}

TEST(Gemm, AllTransposesMatchDoubleReferenceAcrossTiles) {
  // C is cut along its longer side into tiles with ragged last ones: columns for 70x260,
  // rows for 260x70 (where a tile's rows of A start at A + i * lda, or A + i transposed).
  for (const auto [M, N, K] : {std::array<std::int64_t, 3>{70, 260, 9}, std::array<std::int64_t, 3>{260, 70, 9}}) {
    const kernels::GemmTiling tiling = kernels::gemm_tiling(M, N, K);
    ASSERT_GT(tiling.row_tiles * tiling.col_tiles, 1) << M << "x" << N;
    ASSERT_EQ(tiling.row_tiles > 1, M > N) << M << "x" << N;
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const Tensor A = random_tensor({M * K}, Layout::Plain, 1);
        const Tensor B = random_tensor({K * N}, Layout::Plain, 2);
        Tensor C = Tensor::full({M * N}, 1.0f);
        kernels::gemm(ta, tb, M, N, K, 2.0f, A.data(), B.data(), 0.5f, C.data());
        for (std::int64_t i = 0; i < M; i += 3)
          for (std::int64_t j = 0; j < N; j += 7) {
            double sum = 0.0;
            for (std::int64_t k = 0; k < K; ++k)
              sum += static_cast<double>(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
            EXPECT_NEAR(C[i * N + j], 2.0 * sum + 0.5, 1e-4)
                << M << "x" << N << " " << ta << tb << " " << i << "," << j;
          }
      }
  }
}

TEST(Gemm, BiasHelpersAndBadArguments) {
  const std::vector<float> dy{1, 2, 3, 4, 5, 6};
  std::vector<float> sums(3);
  kernels::sum_rows(2, 3, dy.data(), sums.data());
  EXPECT_EQ(sums, (std::vector<float>{5, 7, 9}));
  std::vector<float> y(6, 1.0f);
  kernels::add_row_vector(2, 3, sums.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{6, 8, 10, 6, 8, 10}));
  float c = 0;
  BNLAB_EXPECT_INVALID(kernels::gemm(false, false, -1, 1, 1, 1.0f, &c, &c, 0.0f, &c), "gemm", "M", "-1");
  BNLAB_EXPECT_INVALID(kernels::gemm(false, false, 2, 2, 2, 1.0f, &c, 1, &c, 2, 0.0f, &c, 2), "gemm", "lda", "1");
  // K = 0 with beta = 0 zeroes C.
  std::vector<float> out(4, 7.0f);
  kernels::gemm(false, false, 2, 2, 0, 1.0f, nullptr, nullptr, 0.0f, out.data());
  EXPECT_EQ(out, (std::vector<float>(4, 0.0f)));
}

}  // namespace
}  // namespace bnlab
