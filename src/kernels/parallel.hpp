#pragma once
// Private to src: how the small kernels (activations, bias, loss, dropout, optimizers) share
// work between threads.
//
// A `#pragma omp parallel for if(false)` still calls GOMP_parallel, which allocates a team
// and runs the body through the outlined function: for the 32x300 tensors of a training step
// that cost more than the loop. These helpers run the loop directly below the threshold (or
// inside another parallel region, or with one thread) and enter OpenMP only above it.

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace bnlab::kernels::detail {

// Whether a parallel region would get more than one thread: not inside another region (no
// nesting) and more than one thread configured. With one, libgomp still allocates a team for
// every region; fit runs steps on one thread when that is faster (src/model/thread_chooser.hpp).
inline bool threads_available() { return !omp_in_parallel() && omp_get_max_threads() > 1; }

// Whether a loop of `work` elements should be spread over the threads.
inline bool worth_threads(std::int64_t work, std::int64_t threshold) { return work > threshold && threads_available(); }

// Runs body(begin, end) over [0, count): once for the whole range when `parallel` is false,
// otherwise once per thread over contiguous ranges whose starts are multiples of `align`
// elements (whole vectors, and no two threads writing one cache line for align >= 16).
template <class Body>
void for_ranges(std::int64_t count, bool parallel, std::int64_t align, Body&& body) {
  if (!parallel) {
    if (count > 0) body(std::int64_t{0}, count);
    return;
  }
#pragma omp parallel
  {
    const std::int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    const std::int64_t units = (count + align - 1) / align;
    const std::int64_t per_thread = (units + threads - 1) / threads;
    const std::int64_t begin = std::min(count, thread * per_thread * align);
    const std::int64_t end = std::min(count, (thread + 1) * per_thread * align);
    if (begin < end) body(begin, end);
  }
}

// Elementwise kernels: every element's result is independent of the cut, so any split gives
// the same bits.
template <class Body>
void for_elements(std::int64_t count, std::int64_t threshold, Body&& body) {
  for_ranges(count, worth_threads(count, threshold), 16, body);
}

}  // namespace bnlab::kernels::detail
