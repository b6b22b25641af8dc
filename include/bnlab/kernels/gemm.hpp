#pragma once
// Matrix multiply: a thin wrapper over oneDNN's sgemm (dnnl_sgemm), row-major, plus the bias helpers
// that travel with it (add a row vector, sum the rows). No allocation.
//
// Threads: C is cut into tiles fixed by the shape (gemm_tiling), spread over
// OpenMP threads, one single-threaded sgemm each, so C has the same bits for every thread count
// (the library's own threading does not promise that). Different CPU kernels (AVX2 versus
// AVX-512) may still give different bits.
//
// Errors: std::invalid_argument naming the argument and its value (negative dimensions, a
// leading dimension smaller than the row, a dimension beyond the BLAS integer range).

#include <cstdint>

namespace bnlab::kernels {

// How gemm cuts C (M x N) into tiles: a function of the shape only.
struct GemmTiling {
  std::int64_t tile_rows, tile_cols, row_tiles, col_tiles;
};
GemmTiling gemm_tiling(std::int64_t M, std::int64_t N, std::int64_t K);

// C (M x N) = alpha * op(A) * op(B) + beta * C, all row-major; op(A) is M x K, op(B) is K x N.
// lda, ldb, ldc are the row strides of A, B, C as stored (A stored K x M when transposed).
// beta = 0 ignores the old contents of C (NaN included).
void gemm(bool transpose_a, bool transpose_b, std::int64_t M, std::int64_t N, std::int64_t K,
          float alpha, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
          float beta, float* C, std::int64_t ldc);

// Contiguous operands: lda = transpose_a ? M : K, ldb = transpose_b ? K : N, ldc = N.
void gemm(bool transpose_a, bool transpose_b, std::int64_t M, std::int64_t N, std::int64_t K,
          float alpha, const float* A, const float* B, float beta, float* C);

// y (rows x cols) += bias (cols) on every row.
void add_row_vector(std::int64_t rows, std::int64_t cols, const float* bias, float* y);

// sums (cols) = column sums of dy (rows x cols), the bias gradient. Rows are added in index
// order, one accumulator per column, so the result does not depend on the thread count.
void sum_rows(std::int64_t rows, std::int64_t cols, const float* dy, float* sums);

}  // namespace bnlab::kernels
