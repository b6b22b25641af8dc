#include "bnlab/kernels/gemm.hpp"

#include <cblas.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace bnlab::kernels {

namespace {

blasint to_blas(std::int64_t value, const char* name) {
  if (value < 0 || value > std::numeric_limits<blasint>::max())
    throw std::invalid_argument(
        fmt::format("gemm: {} is {}, expected 0..{}", name, value, std::numeric_limits<blasint>::max()));
  return static_cast<blasint>(value);
}

void check_leading(std::int64_t ld, std::int64_t row, const char* name) {
  // BLAS requires ld >= max(1, row) even for empty matrices.
  if (ld < std::max<std::int64_t>(row, 1))
    throw std::invalid_argument(fmt::format("gemm: {} is {}, smaller than the stored row of {}", name, ld, row));
}

}  // namespace

void gemm(bool transpose_a, bool transpose_b, std::int64_t M, std::int64_t N, std::int64_t K,
          float alpha, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
          float beta, float* C, std::int64_t ldc) {
  const blasint m = to_blas(M, "M"), n = to_blas(N, "N"), k = to_blas(K, "K");
  check_leading(lda, transpose_a ? M : K, "lda");
  check_leading(ldb, transpose_b ? K : N, "ldb");
  check_leading(ldc, N, "ldc");
  if (M == 0 || N == 0) return;
  if (K == 0) {
    // The reference BLAS leaves C untouched for K = 0 only when beta = 1; make beta = 0 mean zero.
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
              m, n, k, alpha, A, to_blas(lda, "lda"), B, to_blas(ldb, "ldb"), beta, C, to_blas(ldc, "ldc"));
}

void gemm(bool transpose_a, bool transpose_b, std::int64_t M, std::int64_t N, std::int64_t K,
          float alpha, const float* A, const float* B, float beta, float* C) {
  gemm(transpose_a, transpose_b, M, N, K, alpha, A, transpose_a ? M : K, B, transpose_b ? K : N, beta, C, N);
}

void add_row_vector(std::int64_t rows, std::int64_t cols, const float* bias, float* y) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = y + r * cols;
    for (std::int64_t c = 0; c < cols; ++c) row[c] += bias[c];
  }
}

void sum_rows(std::int64_t rows, std::int64_t cols, const float* dy, float* sums) {
  // Threads take disjoint column blocks and each walks every row in order: the same additions
  // in the same order for any thread count, while the inner loop stays contiguous.
  constexpr std::int64_t block = 64;
  const std::int64_t blocks = (cols + block - 1) / block;
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16) && blocks > 1)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t begin = b * block, end = std::min(cols, begin + block);
    for (std::int64_t c = begin; c < end; ++c) sums[c] = 0.0f;
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* row = dy + r * cols;
      for (std::int64_t c = begin; c < end; ++c) sums[c] += row[c];
    }
  }
}

}  // namespace bnlab::kernels
