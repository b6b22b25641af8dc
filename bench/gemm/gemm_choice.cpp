// Which GEMM for the seed MLP's shapes: OpenBLAS (Debian's OpenMP build) against oneDNN's
// dnnl_sgemm, each called single-threaded on the same fixed tiles bnlab uses (so any choice
// keeps results independent of the thread count), at 1 and at all threads.
//
//   build/bench/gemm/gemm_choice [--repetitions 200]
// Prints one line per shape and library: microseconds per call and GFLOP/s.

#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bnlab/kernels/gemm.hpp"
#include "bnlab/system.hpp"

namespace {

struct Shape {
  const char* name;
  bool ta, tb;
  int M, N, K;
};

// The seed MLP at batch 32: forward x W for each Dense, dX = dY W^T, dW = X^T dY.
const Shape shapes[] = {
    {"fwd 32x784 * 784x300", false, false, 32, 300, 784},  {"dX  32x300 * 300x784^T", false, true, 32, 784, 300},
    {"dW  784x32^T * 32x300", true, false, 784, 300, 32},  {"fwd 32x300 * 300x100", false, false, 32, 100, 300},
    {"dX  32x100 * 100x300^T", false, true, 32, 300, 100}, {"dW  300x32^T * 32x100", true, false, 300, 100, 32},
    {"fwd 32x100 * 100x10", false, false, 32, 10, 100},
};

template <class Call>
double time_tiled(const Shape& s, int repetitions, const float* A, const float* B, float* C, Call call) {
  const auto tiling = bnlab::kernels::gemm_tiling(s.M, s.N, s.K);
  const int lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N, ldc = s.N;
  const std::int64_t tiles = tiling.row_tiles * tiling.col_tiles;
  // Always inside a parallel region: OpenBLAS and oneDNN then run each call single-threaded.
  // (openblas_set_num_threads would not do: in the OpenMP build it sets the OpenMP thread count.)
  auto once = [&] {
#pragma omp parallel for schedule(static)
    for (std::int64_t t = 0; t < tiles; ++t) {
      const std::int64_t i = (t / tiling.col_tiles) * tiling.tile_rows, j = (t % tiling.col_tiles) * tiling.tile_cols;
      const int rows = static_cast<int>(std::min<std::int64_t>(tiling.tile_rows, s.M - i));
      const int cols = static_cast<int>(std::min<std::int64_t>(tiling.tile_cols, s.N - j));
      const float* a = s.ta ? A + i : A + i * lda;
      const float* b = s.tb ? B + j * ldb : B + j;
      call(s.ta, s.tb, rows, cols, s.K, a, lda, b, ldb, C + i * ldc + j, ldc);
    }
  };
  for (int i = 0; i < 10; ++i) once();
  std::vector<double> samples;
  for (int r = 0; r < 9; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repetitions; ++i) once();
    samples.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / repetitions);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int repetitions = 200;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--repetitions") == 0) repetitions = std::atoi(argv[++i]);
  std::printf("%s\n", bnlab::system_description().c_str());
  std::vector<float> A(784 * 300), B(784 * 300), C(784 * 784);
  for (std::size_t i = 0; i < A.size(); ++i)
    A[i] = static_cast<float>(i % 17) * 0.01f, B[i] = static_cast<float>(i % 13) * 0.02f;

  auto openblas = [](bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c,
                     int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b,
                ldb, 0.0f, c, ldc);
  };
  auto onednn = [](bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c,
                   int ldc) {
    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
  };
  const int max_threads = omp_get_max_threads();
  for (int threads : {1, max_threads}) {
    if (threads == 1 && max_threads == 1 && threads != max_threads) continue;
    omp_set_num_threads(threads);
    double total_openblas = 0, total_onednn = 0;
    for (const auto& s : shapes) {
      const double flop = 2.0 * s.M * s.N * s.K;
      const double t_ob = time_tiled(s, repetitions, A.data(), B.data(), C.data(), openblas);
      const double t_dn = time_tiled(s, repetitions, A.data(), B.data(), C.data(), onednn);
      total_openblas += t_ob;
      total_onednn += t_dn;
      std::printf("threads %d  %-26s openblas %8.2f us %6.1f GFLOP/s   onednn %8.2f us %6.1f GFLOP/s\n", threads,
                  s.name, t_ob * 1e6, flop / t_ob * 1e-9, t_dn * 1e6, flop / t_dn * 1e-9);
    }
    std::printf("threads %d  one MLP step's GEMMs: openblas %.1f us, onednn %.1f us\n", threads, total_openblas * 1e6,
                total_onednn * 1e6);
    if (max_threads == 1) break;
  }
  return 0;
}
