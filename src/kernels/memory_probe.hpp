#pragma once
// The memory-bandwidth probe the benchmarks measure the kernels against: a parallel copy with
// plain stores, and one with non-temporal (streaming) stores that skip the read-for-ownership
// of the destination. The probe's floor is the faster of the two.

#include <cstdint>

namespace bnlab::bench {

void copy_plain(const float* src, float* dst, std::int64_t count);
void copy_streaming(const float* src, float* dst, std::int64_t count);  // dst 64-byte aligned

// Reads a buffer four times the L3 of this machine's kind (128 MiB) with every thread, so that
// what a timed call touched before is no longer in any cache: a cold-cache measurement (as
// oneDNN's benchdnn --cold-cache) for a tensor that would otherwise stay in L3 from one call to
// the next. Not timed itself; the buffer is allocated and filled on the first call.
void evict_caches();

// One read pass over src (a sum, returned so the reads cannot be dropped): what the passes of a
// kernel that only read (a BatchNorm's statistics) can cost at best, beside a copy.
float read_pass(const float* src, std::int64_t count);

}  // namespace bnlab::bench
