#pragma once
// The memory-bandwidth probe the benchmarks measure the kernels against: a parallel copy with
// plain stores, and one with non-temporal (streaming) stores that skip the read-for-ownership
// of the destination. The probe's floor is the faster of the two.

#include <cstdint>

namespace bnlab::bench {

void copy_plain(const float* src, float* dst, std::int64_t count);
void copy_streaming(const float* src, float* dst, std::int64_t count);  // dst 64-byte aligned

}  // namespace bnlab::bench
