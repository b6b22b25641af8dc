#pragma once
// The BatchNorm loops of one instruction set, as a table of functions. batchnorm_loops.cpp is
// compiled three times (-mavx512f, -mavx2, baseline x86-64), each object defining one table;
// batchnorm_loops_dispatch.cpp picks the widest the CPU supports, once, and the public functions
// of batchnorm_loops.hpp call through it.
//
// Why not GCC's target_clones, as the other kernels: a clone cannot tell at compile time which
// instruction set it is compiled for, so simd::stream had to issue four 16-byte non-temporal
// stores in every clone. Compiled with -mavx512f it issues one 64-byte store, and a normalize
// pass streaming a 16 MiB output ran 10% faster (0.98 against 1.10 copy times, cold caches).

#include "kernels/batchnorm_loops.hpp"

namespace bnlab::kernels::loops {

struct LoopTable {
  decltype(&loops::moments_contiguous) moments_contiguous;
  decltype(&loops::moments_rows) moments_rows;
  decltype(&loops::normalize_contiguous) normalize_contiguous;
  decltype(&loops::normalize_rows) normalize_rows;
  decltype(&loops::grad_sums_contiguous) grad_sums_contiguous;
  decltype(&loops::grad_sums_rows) grad_sums_rows;
  decltype(&loops::grad_input_contiguous) grad_input_contiguous;
  decltype(&loops::grad_input_rows) grad_input_rows;
  decltype(&loops::normalize_across_channels) normalize_across_channels;
  decltype(&loops::grad_sums_across_channels) grad_sums_across_channels;
  decltype(&loops::grad_input_across_channels) grad_input_across_channels;
};

extern const LoopTable table_avx512f;
extern const LoopTable table_avx2;
extern const LoopTable table_baseline;

}  // namespace bnlab::kernels::loops
