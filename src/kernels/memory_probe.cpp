#include "kernels/memory_probe.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace bnlab::bench {
namespace {

__attribute__((target("avx512f"))) void stream_avx512(const float* src, float* dst, std::int64_t count) {
  std::int64_t i = 0;
  for (; i + 16 <= count; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  for (; i < count; ++i) dst[i] = src[i];
}

__attribute__((target("avx2"))) void stream_avx2(const float* src, float* dst, std::int64_t count) {
  std::int64_t i = 0;
  for (; i + 8 <= count; i += 8) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
  for (; i < count; ++i) dst[i] = src[i];
}

void stream_sse(const float* src, float* dst, std::int64_t count) {
  std::int64_t i = 0;
  for (; i + 4 <= count; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
  for (; i < count; ++i) dst[i] = src[i];
}

using StreamFn = void (*)(const float*, float*, std::int64_t);

StreamFn pick_stream() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return stream_avx512;
  if (__builtin_cpu_supports("avx2")) return stream_avx2;
  return stream_sse;
}

// Chunks of whole cache lines, split statically over the threads.
template <class Copy>
void parallel_copy(const float* src, float* dst, std::int64_t count, Copy copy) {
  constexpr std::int64_t chunk = 16 * 1024;  // floats; multiple of 16 keeps 64-byte alignment
  const std::int64_t chunks = (count + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t begin = c * chunk, n = std::min(chunk, count - begin);
    copy(src + begin, dst + begin, n);
  }
}

}  // namespace

void copy_plain(const float* src, float* dst, std::int64_t count) {
  parallel_copy(src, dst, count, [](const float* s, float* d, std::int64_t n) {
    std::memcpy(d, s, static_cast<std::size_t>(n) * sizeof(float));
  });
}

float read_pass(const float* src, std::int64_t count) {
  // Sixteen independent lanes a line, so neither the adds' latency nor one accumulator limits the
  // reads; vectorized by the compiler (the sum's bits do not matter).
  constexpr std::int64_t chunk = 16 * 1024;
  const std::int64_t chunks = (count + chunk - 1) / chunk;
  float total = 0.0f;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t begin = c * chunk, end = std::min(count, begin + chunk);
    float lanes[16] = {};
    std::int64_t i = begin;
    for (; i + 16 <= end; i += 16)
      for (int k = 0; k < 16; ++k) lanes[k] += src[i + k];
    for (; i < end; ++i) lanes[0] += src[i];
    for (float v : lanes) total += v;
  }
  return total;
}

void evict_caches() {
  constexpr std::int64_t count = (std::int64_t{128} << 20) / sizeof(float);
  static const std::vector<float> buffer(count, 1.0f);
  static volatile float sink = 0.0f;
  float total = 0.0f;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (std::int64_t i = 0; i < count; i += 16) total += buffer[static_cast<std::size_t>(i)];  // one float a line
  sink = sink + total;
}

void copy_streaming(const float* src, float* dst, std::int64_t count) {
  static const StreamFn stream = pick_stream();
  parallel_copy(src, dst, count, stream);
  _mm_sfence();
}

}  // namespace bnlab::bench
