#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "kernels/batchnorm_loops.hpp"
#include "kernels/batchnorm_loops_table.hpp"

namespace bnlab::kernels::loops {
namespace {

struct Choice {
  const LoopTable* table;
  const char* name;
};

// The widest instruction set the CPU (and the OS, for the AVX registers' state) supports, as
// GCC's target_clones resolvers choose it for the other kernels, capped by BNLAB_MAX_CPU_ISA
// (as oneDNN's ONEDNN_MAX_CPU_ISA): "avx2" or "x86-64" run the narrower loops on a wider CPU,
// which is how the tests check that every version computes the same bits.
Choice choose() {
  __builtin_cpu_init();
  int cap = 2;  // 2: avx512f, 1: avx2, 0: x86-64
  if (const char* env = std::getenv("BNLAB_MAX_CPU_ISA"); env && *env) {
    const std::string_view value(env);
    if (value == "avx2")
      cap = 1;
    else if (value == "x86-64")
      cap = 0;
    else if (value != "avx512f")  // warned, not thrown: the first call may be inside a parallel region
      fmt::print(stderr, "bnlab: BNLAB_MAX_CPU_ISA is '{}', expected one of avx512f, avx2, x86-64; ignored\n", value);
  }
  if (cap >= 2 && __builtin_cpu_supports("avx512f")) return {&table_avx512f, "avx512f"};
  if (cap >= 1 && __builtin_cpu_supports("avx2")) return {&table_avx2, "avx2"};
  return {&table_baseline, "x86-64"};
}

const Choice& chosen() {
  static const Choice choice = choose();
  return choice;
}

}  // namespace

void moments_contiguous(const float* x, std::int64_t len, float pivot, double& sum, double& sum_sq,
                        std::int64_t next_plane) {
  chosen().table->moments_contiguous(x, len, pivot, sum, sum_sq, next_plane);
}
void moments_rows(const float* x, std::int64_t rows, std::int64_t row_stride, std::int64_t width, const float* pivot,
                  double* sum, double* sum_sq, bool row_walk) {
  chosen().table->moments_rows(x, rows, row_stride, width, pivot, sum, sum_sq, row_walk);
}
void normalize_contiguous(const float* x, float* y, std::int64_t len, float pivot, float centered_mean, float scale,
                          float shift, bool relu, bool stream, std::int64_t next_plane) {
  chosen().table->normalize_contiguous(x, y, len, pivot, centered_mean, scale, shift, relu, stream, next_plane);
}
void normalize_rows(const float* x, float* y, std::int64_t rows, std::int64_t row_stride, std::int64_t width,
                    const float* pivot, const float* centered_mean, const float* scale, const float* shift, bool relu,
                    bool stream) {
  chosen().table->normalize_rows(x, y, rows, row_stride, width, pivot, centered_mean, scale, shift, relu, stream);
}
void grad_sums_contiguous(const float* x, const float* dy, std::int64_t len, float mean, float scale, float shift,
                          bool relu, double& sum_dy, double& sum_dy_xc, std::int64_t next_plane) {
  chosen().table->grad_sums_contiguous(x, dy, len, mean, scale, shift, relu, sum_dy, sum_dy_xc, next_plane);
}
void grad_sums_rows(const float* x, const float* dy, std::int64_t rows, std::int64_t row_stride, std::int64_t width,
                    const float* mean, const float* scale, const float* shift, bool relu, double* sum_dy,
                    double* sum_dy_xc, bool row_walk) {
  chosen().table->grad_sums_rows(x, dy, rows, row_stride, width, mean, scale, shift, relu, sum_dy, sum_dy_xc,
                                 row_walk);
}
void grad_input_contiguous(const float* x, const float* dy, float* dx, std::int64_t len, float mean, float a, float b,
                           float c, float scale, float shift, bool relu, bool stream, std::int64_t next_plane) {
  chosen().table->grad_input_contiguous(x, dy, dx, len, mean, a, b, c, scale, shift, relu, stream, next_plane);
}
void grad_input_rows(const float* x, const float* dy, float* dx, std::int64_t rows, std::int64_t row_stride,
                     std::int64_t width, const float* mean, const float* a, const float* b, const float* c,
                     const float* scale, const float* shift, bool relu, bool stream, bool row_walk) {
  chosen().table->grad_input_rows(x, dy, dx, rows, row_stride, width, mean, a, b, c, scale, shift, relu, stream,
                                  row_walk);
}

void normalize_across_channels(const float* x, const float* gamma, const float* beta, float* y, std::int64_t len,
                               float pivot, float centered_mean, float inv_std, bool stream) {
  chosen().table->normalize_across_channels(x, gamma, beta, y, len, pivot, centered_mean, inv_std, stream);
}
void grad_sums_across_channels(const float* x, const float* dy, const float* gamma, std::int64_t len, float mean,
                               float inv_std, double& sum_g, double& sum_g_xc, float* acc_dy, float* acc_dy_xhat,
                               std::int64_t next_run) {
  chosen().table->grad_sums_across_channels(x, dy, gamma, len, mean, inv_std, sum_g, sum_g_xc, acc_dy, acc_dy_xhat,
                                            next_run);
}
void grad_input_across_channels(const float* x, const float* dy, const float* gamma, float* dx, std::int64_t len,
                                float mean, float inv_std, float b, float c, bool stream) {
  chosen().table->grad_input_across_channels(x, dy, gamma, dx, len, mean, inv_std, b, c, stream);
}

const char* selected_instruction_set() { return chosen().name; }

}  // namespace bnlab::kernels::loops
