// The copy probe and the cache eviction (src/kernels/memory_probe.hpp) with C linkage, for torch_batchnorm.py's ctypes:
// PyTorch's operations are timed beside the same probe as the C++ drivers'.

#include <cstdint>

#include "kernels/memory_probe.hpp"

extern "C" {

void bnlab_probe_copy_plain(const float* src, float* dst, std::int64_t count) {
  bnlab::bench::copy_plain(src, dst, count);
}

void bnlab_probe_copy_streaming(const float* src, float* dst, std::int64_t count) {
  bnlab::bench::copy_streaming(src, dst, count);
}

void bnlab_probe_evict_caches() { bnlab::bench::evict_caches(); }

}  // extern "C"
