#include "bnlab/kernels/gemm.hpp"

#include <fmt/format.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "bnlab/profile.hpp"
#include "kernels/parallel.hpp"
#include "kernels/vector_ops.hpp"

namespace bnlab::kernels {

namespace {

// oneDNN's sgemm takes dnnl_dim_t (int64) sizes, but its kernels index with int: stay in int range.
dnnl_dim_t to_blas(std::int64_t value, const char* name) {
  if (value < 0 || value > std::numeric_limits<int>::max())
    throw std::invalid_argument(
        fmt::format("gemm: {} is {}, expected 0..{}", name, value, std::numeric_limits<int>::max()));
  return static_cast<dnnl_dim_t>(value);
}

void check_leading(std::int64_t ld, std::int64_t row, const char* name) {
  // BLAS requires ld >= max(1, row) even for empty matrices.
  if (ld < std::max<std::int64_t>(row, 1))
    throw std::invalid_argument(fmt::format("gemm: {} is {}, smaller than the stored row of {}", name, ld, row));
}

}  // namespace

GemmTiling gemm_tiling(std::int64_t M, std::int64_t N, std::int64_t K) {
  // Enough equal tiles to keep two (or four) threads busy, few enough that each sgemm stays
  // large: the count follows the work, the cut the longer side of C. Eight tiles instead of
  // four made the seed MLP's first forward GEMM 15% slower on two threads (43 against 37 us;
  // every tile packs the whole A again), and the epoch 6-7%.
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const std::int64_t parts = work < (1 << 17) ? 1 : work < (1 << 21) ? 2 : 4;
  auto chunk = [parts](std::int64_t extent) {
    const std::int64_t c = (extent + parts - 1) / parts;
    return std::max<std::int64_t>((c + 7) / 8 * 8, 1);  // whole 32-byte vectors per tile row
  };
  GemmTiling t{M, N, 1, 1};
  if (parts == 1) return t;
  if (M >= N) {
    t.tile_rows = chunk(M);
    t.row_tiles = (M + t.tile_rows - 1) / t.tile_rows;
  } else {
    t.tile_cols = chunk(N);
    t.col_tiles = (N + t.tile_cols - 1) / t.tile_cols;
  }
  return t;
}

void gemm(bool transpose_a, bool transpose_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
          const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  const profile::Scope timed(profile::Section::gemm);
  to_blas(M, "M");
  to_blas(N, "N");
  const dnnl_dim_t k = to_blas(K, "K");
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
  // The GEMM is oneDNN's sgemm (JIT kernels for the CPU's widest vectors; about twice
  // OpenBLAS 0.3.21 on the seed's shapes, docs/performance.md). Its own threading would make
  // C's bits depend on the thread count, so C is cut into tiles fixed by the shape alone and
  // each tile is one sgemm call made inside an OpenMP region, where oneDNN runs it on the
  // calling thread: every thread count computes every tile alike. With threads to spare the
  // region is opened even for a single tile, or oneDNN would thread that tile itself.
  const GemmTiling tiling = gemm_tiling(M, N, K);
  const char op_a = transpose_a ? 'T' : 'N';
  const char op_b = transpose_b ? 'T' : 'N';
  const dnnl_dim_t lda_b = to_blas(lda, "lda"), ldb_b = to_blas(ldb, "ldb"), ldc_b = to_blas(ldc, "ldc");
  const std::int64_t tiles = tiling.row_tiles * tiling.col_tiles;
  dnnl_status_t failure = dnnl_success;
  auto tile = [&](std::int64_t t) {
    const std::int64_t i = (t / tiling.col_tiles) * tiling.tile_rows, j = (t % tiling.col_tiles) * tiling.tile_cols;
    const dnnl_dim_t rows = std::min(tiling.tile_rows, M - i);
    const dnnl_dim_t cols = std::min(tiling.tile_cols, N - j);
    const float* a = transpose_a ? A + i : A + i * lda;
    const float* b = transpose_b ? B + j * ldb : B + j;
    return dnnl_sgemm(op_a, op_b, rows, cols, k, alpha, a, lda_b, b, ldb_b, beta, C + i * ldc + j, ldc_b);
  };
  if (!detail::threads_available()) {  // one thread: oneDNN runs single-threaded without a region
    for (std::int64_t t = 0; t < tiles && failure == dnnl_success; ++t) failure = tile(t);
  } else {
#pragma omp parallel for schedule(static)
    for (std::int64_t t = 0; t < tiles; ++t) {
      const dnnl_status_t status = tile(t);
      if (status != dnnl_success) {
#pragma omp critical(bnlab_gemm_failure)
        failure = status;
      }
    }
  }
  if (failure != dnnl_success)
    throw std::runtime_error(fmt::format("gemm: oneDNN's sgemm failed with status {} (M={}, N={}, K={})",
                                         static_cast<int>(failure), M, N, K));
}

void gemm(bool transpose_a, bool transpose_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
          const float* A, const float* B, float beta, float* C) {
  // BLAS wants a leading dimension of at least 1 even for an empty operand.
  const std::int64_t lda = std::max<std::int64_t>(transpose_a ? M : K, 1);
  const std::int64_t ldb = std::max<std::int64_t>(transpose_b ? K : N, 1);
  gemm(transpose_a, transpose_b, M, N, K, alpha, A, lda, B, ldb, beta, C, std::max<std::int64_t>(N, 1));
}

namespace {

using vec::f32x16;

constexpr std::int64_t bias_parallel_threshold = 1 << 16;

BNLAB_MULTIVERSION void add_row_vector_rows(std::int64_t cols, std::int64_t r0, std::int64_t r1, const float* bias,
                                            float* y) {
  for (std::int64_t r = r0; r < r1; ++r)
    vec::map(cols, y + r * cols, bias, y + r * cols, [](f32x16 v, f32x16 b) BNLAB_LAMBDA_INLINE { return v + b; });
}

// Columns [c0, c1): 16 columns at a time, each lane one column's accumulator walking the rows
// in order from +0.
BNLAB_MULTIVERSION void sum_rows_columns(std::int64_t rows, std::int64_t cols, std::int64_t c0, std::int64_t c1,
                                         const float* dy, float* sums) {
  vec::for_vectors(c0, c1, [&](std::int64_t c, auto lanes) BNLAB_LAMBDA_INLINE {
    f32x16 acc{};
    for (std::int64_t r = 0; r < rows; ++r) acc += lanes.load(dy + r * cols + c);
    lanes.store(sums + c, acc);
  });
}

}  // namespace

void add_row_vector(std::int64_t rows, std::int64_t cols, const float* bias, float* y) {
  detail::for_ranges(rows, detail::worth_threads(rows * cols, bias_parallel_threshold), 1,
                     [&](std::int64_t r0, std::int64_t r1) { add_row_vector_rows(cols, r0, r1, bias, y); });
}

void sum_rows(std::int64_t rows, std::int64_t cols, const float* dy, float* sums) {
  // Threads take disjoint column ranges and each walks every row in order: the same additions
  // in the same order for any thread count, while the inner loop stays contiguous.
  detail::for_ranges(cols, detail::worth_threads(rows * cols, bias_parallel_threshold), simd::lanes,
                     [&](std::int64_t c0, std::int64_t c1) { sum_rows_columns(rows, cols, c0, c1, dy, sums); });
}

}  // namespace bnlab::kernels
