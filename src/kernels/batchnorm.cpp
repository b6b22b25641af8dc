#include "bnlab/kernels/batchnorm.hpp"

#include <fmt/format.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "bnlab/profile.hpp"
#include "kernels/batchnorm_loops.hpp"
#include "kernels/parallel.hpp"
#include "kernels/shape_checks.hpp"
#include "kernels/simd.hpp"

namespace bnlab::kernels {
namespace {

using detail::check_epsilon;
using detail::check_pointer;
using detail::check_shape;

constexpr auto float_bytes = static_cast<std::int64_t>(sizeof(float));
// Below this many elements a parallel region costs more than it saves (the seed MLP's 32x300).
constexpr std::int64_t parallel_threshold = std::int64_t{1} << 15;
// The backward's sums walk rows from a lower size when a row is a multiple of 4 KiB long: the
// register blocks' 16-row tiles then put every row's lines in the same L1 set. From 1 MiB the
// backward of such rows is faster walking, in cache or not (256x1024: 55 against 58-72 us warm,
// 91 against 100-130 cold; 512x1024 and 768x1024 15-20% faster both ways), where 512-channel
// rows (2 KiB) gained 6-10% at best and lost 7% warm at 1024x512.
constexpr std::int64_t sums_row_walk_threshold_bytes = std::int64_t{1} << 20;
constexpr std::int64_t same_set_row_bytes = 4096;
// The pivot is the mean of the first few values of a channel; moments about it stay free of
// cancellation while (mean - pivot)^2 <= pivot_tolerance * variance, else a second pass
// re-centres on the first mean (see docs/batchnorm.md, "Numerics").
constexpr std::int64_t pivot_samples = 16;
constexpr double pivot_tolerance = 16.0;

// How a call is split into tasks. Everything here follows from the shape alone, never from
// the thread count, so the order of every floating-point addition is fixed by the shape.
struct Plan {
  std::int64_t N, C, S, m;
  bool row_order;       // NC, NHWC: channel innermost
  std::int64_t rows;    // N*S rows of C floats (row order)
  std::int64_t groups;  // reduction groups per channel: row ranges (row order) or sample ranges (NCHW)
  bool parallel;
  bool stream;  // non-temporal stores for the output
  bool row_walk;       // statistics and input gradient: the loops' row_walk
  bool sums_row_walk;  // the backward's sums
  // NCHW with enough channels: one task per channel computes its statistics and then its
  // output, so the second read of the channel comes from cache, not memory.
  bool per_channel;

  explicit Plan(const BatchNormShape& shape)
      : N(shape.batch),
        C(shape.channels),
        S(shape.spatial),
        m(shape.batch * shape.spatial),
        row_order(shape.layout != Layout::NCHW),
        rows(shape.batch * shape.spatial) {
    if (row_order) {
      groups = std::clamp<std::int64_t>(rows / 512, 1, 8);
    } else {
      // Few channels cannot feed the threads; split their samples into groups instead.
      groups = std::clamp<std::int64_t>(std::min<std::int64_t>(N, (16 + C - 1) / C), 1, 16);
    }
    parallel = shape.size() >= parallel_threshold;
    const std::int64_t bytes = shape.size() * float_bytes;
    stream = bytes >= loops::streaming_threshold_bytes;
    row_walk = bytes >= loops::row_walk_threshold_bytes;
    const bool same_set_rows = row_order && C * float_bytes % same_set_row_bytes == 0;
    sums_row_walk = row_walk || (same_set_rows && bytes >= sums_row_walk_threshold_bytes);
    per_channel = !row_order && groups == 1;
  }

  std::int64_t range_begin(std::int64_t extent, std::int64_t g) const { return extent * g / groups; }

  // The index of a channel's i-th value in traversal order (used to pick the pivot).
  std::int64_t element(std::int64_t c, std::int64_t i) const {
    if (row_order) return i * C + c;
    return ((i / S) * C + c) * S + i % S;
  }
};

// The per-channel arrays of one call (constants, sums, and the groups' partial sums), carved
// from buffers kept per thread that only grow: once a thread has run its widest shape, calls
// allocate nothing. Row order takes all channels of a row in one pass (a row walked one block
// of channels at a time strides through memory: 4096x1024 forward training ran 25% slower).
// Every array starts on a cache line: the loops load them a vector at a time, and a vector at
// 16 bytes past a line (std::vector's alignment) is two lines' loads (4096x1024 forward
// training 10-22% slower, inference 8-11%).
class Scratch {
public:
  Scratch(const Plan& plan, std::int64_t float_arrays, std::int64_t double_arrays)
      : float_stride_(line_multiple<float>(plan.C)),
        double_stride_(line_multiple<double>(plan.C)),
        double_arrays_(double_arrays),
        groups_(plan.groups) {
    thread_local std::vector<float> float_buffer;
    thread_local std::vector<double> double_buffer;
    floats_ = line_aligned(float_buffer, float_arrays * float_stride_);
    doubles_ = line_aligned(double_buffer, (double_arrays + 2 * groups_) * double_stride_);
  }
  float* floats(std::int64_t i) const { return floats_ + i * float_stride_; }
  double* doubles(std::int64_t i) const { return doubles_ + i * double_stride_; }
  // Group g's C partial sums of the first (which = 0) or second (1) quantity of a reduction.
  double* partials(std::int64_t which, std::int64_t g) const {
    return doubles_ + (double_arrays_ + which * groups_ + g) * double_stride_;
  }

private:
  static constexpr std::size_t line_bytes = 64;
  template <class T>
  static std::int64_t line_multiple(std::int64_t count) {
    constexpr auto per_line = static_cast<std::int64_t>(line_bytes / sizeof(T));
    return (count + per_line - 1) / per_line * per_line;
  }
  // The first line-aligned element of `buffer`, grown to hold `count` from there.
  template <class T>
  static T* line_aligned(std::vector<T>& buffer, std::int64_t count) {
    const auto needed = static_cast<std::size_t>(count) + line_bytes / sizeof(T);
    if (buffer.size() < needed) buffer.resize(needed);
    const std::size_t past_line = reinterpret_cast<std::uintptr_t>(buffer.data()) % line_bytes;
    return buffer.data() + (past_line ? (line_bytes - past_line) / sizeof(T) : 0);
  }
  std::int64_t float_stride_, double_stride_, double_arrays_, groups_;
  float* floats_;
  double* doubles_;
};

// The order in which each thread runs its share of the tasks (the shares themselves are
// fixed: contiguous, the first count % threads threads one task more, as OpenMP's static
// schedule splits them). A pass that rereads what the pass before it read goes last_first: its
// share in blocks of about reread_block_bytes of each tensor it reads (one task where a task
// reads more), the last block first, each block's tasks in order. The lines the first pass read
// last are still in the core's L2 and in L3 and come first, where first_to_last would meet each
// line just after the first pass pushed it out; blocks keep each stretch of memory long enough
// for the hardware prefetchers. 256x64x56x56 NHWC (8 paired rounds against first_to_last): 1-10%
// faster in every two-pass kernel; task by task last-first (16 KiB tasks) it had been up to 25%
// slower, and with 256 KiB blocks 0-5% slower than with 1 MiB ones. 4096x1024's backward gained
// 2%, its forward nothing beyond the noise. Every task writes its own part, so the order changes
// no result.
enum class TaskOrder { first_to_last, last_first };
constexpr std::int64_t reread_block_bytes = std::int64_t{1} << 20;

// Runs task(0) .. task(count - 1), spread over the threads when the plan is parallel. Small
// calls run the loop directly: even a parallel region that is switched off costs libgomp a
// team allocation. `fence`: the tasks wrote with streaming stores, which are weakly ordered,
// so each thread fences its own before the region's closing barrier. `task_bytes` (> 0): how
// much of one tensor a task reads, which sizes last_first's blocks.
template <class Task>
void run_tasks(const Plan& plan, std::int64_t count, bool fence, Task task,
               TaskOrder order = TaskOrder::first_to_last, std::int64_t task_bytes = 1) {
  const std::int64_t block = std::max<std::int64_t>(1, reread_block_bytes / task_bytes);
  auto run_share = [&](std::int64_t begin, std::int64_t end) {
    if (order == TaskOrder::last_first) {
      for (std::int64_t block_end = end; block_end > begin; block_end -= block)
        for (std::int64_t t = std::max(begin, block_end - block); t < block_end; ++t) task(t);
    } else {
      for (std::int64_t t = begin; t < end; ++t) task(t);
    }
    if (fence) _mm_sfence();
  };
  if (!plan.parallel || !detail::threads_available()) {
    run_share(0, count);
    return;
  }
#pragma omp parallel
  {
    const std::int64_t threads = omp_get_num_threads(), i = omp_get_thread_num();
    const std::int64_t base = count / threads, extra = count % threads;
    const std::int64_t begin = i * base + std::min(i, extra);
    run_share(begin, begin + base + (i < extra ? 1 : 0));
  }
}

// Sums two per-channel quantities over every channel in the plan's fixed order: each (group,
// channel) task adds into its own partial, and the partials are added in group order.
// rows_task(r0, r1, a, b) covers rows [r0, r1) of every channel; plane_task(n, c, a, b) one
// (sample, channel) plane.
template <class RowsTask, class PlaneTask>
void reduce_channels(const Plan& plan, const Scratch& scratch, double* total_a, double* total_b, RowsTask rows_task,
                     PlaneTask plane_task) {
  const std::int64_t G = plan.groups, width = plan.C;
  if (G == 1) {  // one partial per channel: sum straight into the totals
    std::fill(total_a, total_a + width, 0.0);
    std::fill(total_b, total_b + width, 0.0);
    if (plan.row_order) {
      rows_task(0, plan.rows, total_a, total_b);
    } else {
      run_tasks(plan, width, false, [&](std::int64_t c) {
        for (std::int64_t n = 0; n < plan.N; ++n) plane_task(n, c, total_a[c], total_b[c]);
      });
    }
    return;
  }
  for (std::int64_t g = 0; g < G; ++g) {
    std::fill(scratch.partials(0, g), scratch.partials(0, g) + width, 0.0);
    std::fill(scratch.partials(1, g), scratch.partials(1, g) + width, 0.0);
  }
  if (plan.row_order) {
    run_tasks(plan, G, false, [&](std::int64_t g) {
      rows_task(plan.range_begin(plan.rows, g), plan.range_begin(plan.rows, g + 1), scratch.partials(0, g),
                scratch.partials(1, g));
    });
  } else {
    run_tasks(plan, G * width, false, [&](std::int64_t t) {
      const std::int64_t c = t / G, g = t % G;
      for (std::int64_t n = plan.range_begin(plan.N, g); n < plan.range_begin(plan.N, g + 1); ++n)
        plane_task(n, c, scratch.partials(0, g)[c], scratch.partials(1, g)[c]);
    });
  }
  for (std::int64_t c = 0; c < width; ++c) {
    double a = 0.0, b = 0.0;
    for (std::int64_t g = 0; g < G; ++g) {
      a += scratch.partials(0, g)[c];
      b += scratch.partials(1, g)[c];
    }
    total_a[c] = a;
    total_b[c] = b;
  }
}

void channel_moments(const Plan& plan, const Scratch& scratch, const float* x, const float* pivot, double* sum,
                     double* sum_sq) {
  reduce_channels(
      plan, scratch, sum, sum_sq,
      [&](std::int64_t r0, std::int64_t r1, double* a, double* b) {
        loops::moments_rows(x + r0 * plan.C, r1 - r0, plan.C, plan.C, pivot, a, b, plan.row_walk);
      },
      [&](std::int64_t n, std::int64_t c, double& a, double& b) {
        loops::moments_contiguous(x + (n * plan.C + c) * plan.S, plan.S, pivot[c], a, b);
      });
}

// Elementwise passes: any split gives the same bits, so split for balance alone.
template <class RowsTask, class PlaneTask>
void for_each_part(const Plan& plan, TaskOrder order, RowsTask rows_task, PlaneTask plane_task) {
  if (plan.row_order) {
    constexpr std::int64_t rows_per_task = 64;
    const std::int64_t tasks = (plan.rows + rows_per_task - 1) / rows_per_task;
    run_tasks(
        plan, tasks, plan.stream,
        [&](std::int64_t t) { rows_task(t * rows_per_task, std::min(plan.rows, (t + 1) * rows_per_task)); }, order,
        rows_per_task * plan.C * float_bytes);
  } else {
    run_tasks(
        plan, plan.N * plan.C, plan.stream, [&](std::int64_t t) { plane_task(t / plan.C, t % plan.C); }, order,
        plan.S * float_bytes);
  }
}

// The output pass over the whole tensor, y = act(((x - pivot) - centered_mean) * scale + shift)
// with per-channel arrays of C (y may alias x).
void normalize_all(const Plan& plan, TaskOrder order, const float* x, float* y, const float* pivot,
                   const float* centered_mean, const float* scale, const float* shift, bool relu) {
  for_each_part(
      plan, order,
      [&](std::int64_t r0, std::int64_t r1) {
        const std::int64_t offset = r0 * plan.C;
        loops::normalize_rows(x + offset, y + offset, r1 - r0, plan.C, plan.C, pivot, centered_mean, scale, shift,
                              relu, plan.stream);
      },
      [&](std::int64_t n, std::int64_t c) {
        const std::int64_t offset = (n * plan.C + c) * plan.S;
        loops::normalize_contiguous(x + offset, y + offset, plan.S, pivot[c], centered_mean[c], scale[c], shift[c],
                                    relu, plan.stream);
      });
}

// One task per channel (NCHW, plan.per_channel): `channel_task(c)` reads and writes channel c only.
template <class ChannelTask>
void for_each_channel(const Plan& plan, ChannelTask channel_task) {
  run_tasks(plan, plan.C, plan.stream, channel_task);
}

float value_or(const float* p, std::int64_t i, float fallback) { return p ? p[i] : fallback; }

// The statistics of one channel from its moments about `pivot`, and the constants of its
// output: y = ((x - pivot) - centered_mean) * scale + shift.
struct ChannelStatistics {
  float mean, inv_std, variance, centered_mean, scale, shift;
};

BNLAB_INLINE ChannelStatistics finish_statistics(double sum, double sum_sq, double m, float pivot, float epsilon,
                                                 float gamma, float beta) {
  const double d = sum / m;
  const double var = std::max(sum_sq / m - d * d, 0.0);  // NaN passes through max
  const double inv_std = 1.0 / std::sqrt(var + static_cast<double>(epsilon));
  return {static_cast<float>(pivot + d), static_cast<float>(inv_std),         static_cast<float>(var),
          static_cast<float>(d),         static_cast<float>(gamma * inv_std), beta};
}

// A pivot far from the mean (measured in standard deviations) would make the variance a
// difference of two large numbers; the caller then centres on the first estimate and sums again.
BNLAB_INLINE bool needs_recentre(double sum, double sum_sq, double m) {
  const double d = sum / m, var = sum_sq / m - d * d;
  return std::isfinite(d) && d * d > pivot_tolerance * var;
}

// finish_statistics and needs_recentre over arrays of channels, as flat loops the compiler
// vectorizes (scalar, they were 6 of the 9.5 us of a 32x784 forward): a separate function with
// restrict pointers, since inside the kernel GCC 12 gave up on them ("no vectype").
template <bool Variance>
BNLAB_INLINE void finish_channels_body(std::int64_t width, double m, float epsilon, const double* __restrict sum,
                                       const double* __restrict sum_sq, const float* __restrict pivot,
                                       const float* __restrict gamma, float* __restrict centered_mean,
                                       float* __restrict saved_mean, float* __restrict saved_inv_std,
                                       float* __restrict variance, float* __restrict scale) {
  for (std::int64_t c = 0; c < width; ++c) {
    const ChannelStatistics st =
        finish_statistics(sum[c], sum_sq[c], m, pivot[c], epsilon, gamma ? gamma[c] : 1.0f, 0.0f);
    centered_mean[c] = st.centered_mean;
    saved_mean[c] = st.mean;
    saved_inv_std[c] = st.inv_std;
    if (Variance) variance[c] = st.variance;
    scale[c] = st.scale;
  }
}

BNLAB_MULTIVERSION void finish_channels(std::int64_t width, double m, float epsilon, const double* sum,
                                        const double* sum_sq, const float* pivot, const float* gamma,
                                        float* centered_mean, float* saved_mean, float* saved_inv_std, float* variance,
                                        float* scale) {
  if (variance)
    finish_channels_body<true>(width, m, epsilon, sum, sum_sq, pivot, gamma, centered_mean, saved_mean, saved_inv_std,
                               variance, scale);
  else
    finish_channels_body<false>(width, m, epsilon, sum, sum_sq, pivot, gamma, centered_mean, saved_mean,
                                saved_inv_std, variance, scale);
}

// How many channels satisfy `test`: a count, not a bool, since GCC vectorizes an integer sum
// and not a bool's or.
template <class Test>
BNLAB_INLINE std::int64_t count_where(std::int64_t width, Test test) {
  std::int64_t count = 0;
  for (std::int64_t c = 0; c < width; ++c) count += test(c) ? 1 : 0;
  return count;
}

BNLAB_MULTIVERSION bool any_needs_recentre(std::int64_t width, double m, const double* __restrict sum,
                                           const double* __restrict sum_sq) {
  return count_where(width, [&](std::int64_t c) { return needs_recentre(sum[c], sum_sq[c], m); }) > 0;
}

// The mean of channel c's first pivot_samples values, summed in Sum (float: the pivot; double:
// its repair when the float sum overflows).
template <class Sum>
float mean_of_first_values(const Plan& plan, const float* x, std::int64_t c) {
  const std::int64_t samples = std::min(pivot_samples, plan.m);
  Sum s = 0;
  for (std::int64_t i = 0; i < samples; ++i) s += x[plan.element(c, i)];
  return static_cast<float>(s / static_cast<Sum>(samples));
}

float channel_pivot(const Plan& plan, const float* x, std::int64_t c) {
  return mean_of_first_values<float>(plan, x, c);
}

// The pivots of every channel; in row order the loop runs across channels (vectorized), in
// the same per-channel order of additions as channel_pivot.
void channel_pivots(const Plan& plan, const float* x, float* pivot) {
  const std::int64_t width = plan.C;
  if (!plan.row_order) {
    for (std::int64_t c = 0; c < width; ++c) pivot[c] = channel_pivot(plan, x, c);
    return;
  }
  const std::int64_t samples = std::min(pivot_samples, plan.m);
  std::fill(pivot, pivot + width, 0.0f);
  for (std::int64_t i = 0; i < samples; ++i) {
    const float* row = x + i * plan.C;
    for (std::int64_t c = 0; c < width; ++c) pivot[c] += row[c];
  }
  const float count = static_cast<float>(samples);
  for (std::int64_t c = 0; c < width; ++c) pivot[c] /= count;
}

// Finite values near the top of float's range overflow two float sums whose results fit a
// float: the pivot (two first values of 2e38), and the loops' partial sums of up to 16 squared
// deviations before they reach double (a variance above about 2e37). Such a channel is summed
// again in double, value by value in the channel's order: its pivot, when the float one
// overflowed and the double one does not (a NaN or infinite value stays what it is), and its
// moments. Only channels whose moments came out non-finite are looked at.
BNLAB_INLINE bool unusual_moments(double sum, double sum_sq) { return !std::isfinite(sum) | std::isinf(sum_sq); }

BNLAB_MULTIVERSION bool any_unusual_moments(std::int64_t width, const double* __restrict sum,
                                            const double* __restrict sum_sq) {
  return count_where(width, [&](std::int64_t c) { return unusual_moments(sum[c], sum_sq[c]); }) > 0;
}

void repair_channel_moments(const Plan& plan, const float* x, std::int64_t c, float& pivot, double& sum,
                            double& sum_sq) {
  bool redo = std::isfinite(sum) && std::isinf(sum_sq);
  if (!std::isfinite(pivot)) {
    const float in_double = mean_of_first_values<double>(plan, x, c);
    redo = std::isfinite(in_double);
    if (redo) pivot = in_double;
  }
  if (!redo) return;
  sum = sum_sq = 0.0;
  for (std::int64_t i = 0; i < plan.m; ++i) {
    const double d = static_cast<double>(x[plan.element(c, i)]) - static_cast<double>(pivot);
    sum += d;
    sum_sq += d * d;
  }
}

void repair_moments(const Plan& plan, const float* x, float* pivot, double* sum, double* sum_sq) {
  if (!any_unusual_moments(plan.C, sum, sum_sq)) return;
  for (std::int64_t c = 0; c < plan.C; ++c)
    if (unusual_moments(sum[c], sum_sq[c])) repair_channel_moments(plan, x, c, pivot[c], sum[c], sum_sq[c]);
}

void store_statistics(const ChannelStatistics& st, std::int64_t c, float* saved_mean, float* saved_inv_std,
                      float* batch_variance) {
  saved_mean[c] = st.mean;
  saved_inv_std[c] = st.inv_std;
  if (batch_variance) batch_variance[c] = st.variance;
}

}  // namespace

BNLAB_MULTIVERSION void batchnorm_forward_training(const BatchNormShape& shape, const float* x, const float* gamma,
                                                   const float* beta, float epsilon, float* y, float* saved_mean,
                                                   float* saved_inv_std, float* batch_variance,
                                                   FusedActivation activation) {
  constexpr const char* who = "batchnorm_forward_training";
  const profile::Scope timed(profile::Section::batchnorm);
  check_shape(shape, who);
  check_epsilon(epsilon, who);
  check_pointer(x, "x", who);
  check_pointer(y, "y", who);
  check_pointer(saved_mean, "saved_mean", who);
  check_pointer(saved_inv_std, "saved_inv_std", who);
  const Plan plan(shape);
  const bool relu = activation == FusedActivation::relu;
  const double m = static_cast<double>(plan.m);

  if (plan.per_channel) {
    for_each_channel(plan, [&](std::int64_t c) {
      auto moments = [&](float pivot, double& sum, double& sum_sq) {
        sum = sum_sq = 0.0;
        for (std::int64_t n = 0; n < plan.N; ++n)
          loops::moments_contiguous(x + (n * plan.C + c) * plan.S, plan.S, pivot, sum, sum_sq,
                                    n + 1 < plan.N ? plan.C * plan.S : 0);
      };
      float pivot = channel_pivot(plan, x, c);
      double sum, sum_sq;
      moments(pivot, sum, sum_sq);
      if (unusual_moments(sum, sum_sq)) repair_channel_moments(plan, x, c, pivot, sum, sum_sq);
      if (needs_recentre(sum, sum_sq, m)) {
        pivot = static_cast<float>(pivot + sum / m);
        moments(pivot, sum, sum_sq);
        if (unusual_moments(sum, sum_sq)) repair_channel_moments(plan, x, c, pivot, sum, sum_sq);
      }
      const auto st =
          finish_statistics(sum, sum_sq, m, pivot, epsilon, value_or(gamma, c, 1.0f), value_or(beta, c, 0.0f));
      store_statistics(st, c, saved_mean, saved_inv_std, batch_variance);
      for (std::int64_t n = 0; n < plan.N; ++n) {
        const std::int64_t offset = (n * plan.C + c) * plan.S;
        loops::normalize_contiguous(x + offset, y + offset, plan.S, pivot, st.centered_mean, st.scale, st.shift, relu,
                                    plan.stream, n + 1 < plan.N ? plan.C * plan.S : 0);
      }
    });
    return;
  }

  const std::int64_t width = plan.C;
  Scratch scratch(plan, 4, 2);
  float *pivot = scratch.floats(0), *centered_mean = scratch.floats(1), *scale = scratch.floats(2),
        *shift = scratch.floats(3);
  double *sum = scratch.doubles(0), *sum_sq = scratch.doubles(1);
  channel_pivots(plan, x, pivot);
  channel_moments(plan, scratch, x, pivot, sum, sum_sq);
  repair_moments(plan, x, pivot, sum, sum_sq);

  // Branch-free first, so the common case (no channel to re-centre) vectorizes.
  const bool recentre = any_needs_recentre(width, m, sum, sum_sq);
  if (recentre)
    for (std::int64_t c = 0; c < width; ++c)
      if (needs_recentre(sum[c], sum_sq[c], m)) pivot[c] = static_cast<float>(pivot[c] + sum[c] / m);
  if (recentre) {
    channel_moments(plan, scratch, x, pivot, sum, sum_sq);
    repair_moments(plan, x, pivot, sum, sum_sq);
  }

  finish_channels(width, m, epsilon, sum, sum_sq, pivot, gamma, centered_mean, saved_mean, saved_inv_std,
                  batch_variance, scale);
  if (beta)
    std::copy(beta, beta + width, shift);
  else
    std::fill(shift, shift + width, 0.0f);

  normalize_all(plan, TaskOrder::last_first, x, y, pivot, centered_mean, scale, shift, relu);
}

namespace {
// scale = gamma / sqrt(variance + epsilon) per channel, as a loop the compiler vectorizes.
template <bool Gamma>
BNLAB_INLINE void inference_constants(std::int64_t width, const float* __restrict variance, float epsilon,
                                      const float* __restrict gamma, float* __restrict scale) {
  for (std::int64_t c = 0; c < width; ++c) {
    const double inv_std = 1.0 / std::sqrt(static_cast<double>(variance[c]) + epsilon);
    scale[c] = static_cast<float>((Gamma ? gamma[c] : 1.0f) * inv_std);
  }
}
}  // namespace

BNLAB_MULTIVERSION void batchnorm_forward_inference(const BatchNormShape& shape, const float* x, const float* mean,
                                                    const float* variance, const float* gamma, const float* beta,
                                                    float epsilon, float* y, FusedActivation activation) {
  constexpr const char* who = "batchnorm_forward_inference";
  const profile::Scope timed(profile::Section::batchnorm);
  check_shape(shape, who);
  check_epsilon(epsilon, who);
  check_pointer(x, "x", who);
  check_pointer(y, "y", who);
  check_pointer(mean, "mean", who);
  check_pointer(variance, "variance", who);
  const Plan plan(shape);
  const bool relu = activation == FusedActivation::relu;

  const std::int64_t width = plan.C;
  Scratch scratch(plan, 4, 0);
  float *zero = scratch.floats(0), *scale = scratch.floats(1), *shift = scratch.floats(2),
        *pivot = scratch.floats(3);
  std::copy(mean, mean + width, pivot);
  if (gamma)
    inference_constants<true>(width, variance, epsilon, gamma, scale);
  else
    inference_constants<false>(width, variance, epsilon, gamma, scale);
  std::fill(zero, zero + width, 0.0f);
  if (beta)
    std::copy(beta, beta + width, shift);
  else
    std::fill(shift, shift + width, 0.0f);
  normalize_all(plan, TaskOrder::first_to_last, x, y, pivot, /*centered_mean=*/zero, scale, shift, relu);
}

namespace {

struct BackwardChannel {
  float mean, scale, shift;  // scale and shift recompute y for the fused ReLU's mask
  double inv_std;
};
struct InputGradient {
  float a, b, c;  // dx = dy' * a + (x - mean) * b + c
};

// The per-channel constants of the row-order backward, as flat loops over arrays that the
// compiler vectorizes (per channel through the structs above they ran scalar: a quarter of a
// 32x784 backward). gamma_b: gamma or ones; inv_std from the saved float, or from the variance.
template <bool Gamma, bool SavedInvStd>
BNLAB_INLINE void backward_constants(std::int64_t width, const float* __restrict mean, const float* __restrict inv_std_in,
                                     const float* __restrict variance, float epsilon, const float* __restrict gamma,
                                     const float* __restrict beta, float* __restrict mean_b, float* __restrict gamma_b,
                                     float* __restrict scale, float* __restrict shift, double* __restrict inv_std) {
  for (std::int64_t c = 0; c < width; ++c) {
    const double s = SavedInvStd ? static_cast<double>(inv_std_in[c])
                                 : 1.0 / std::sqrt(static_cast<double>(variance[c]) + epsilon);
    const float g = Gamma ? gamma[c] : 1.0f;
    mean_b[c] = mean[c];
    gamma_b[c] = g;
    scale[c] = static_cast<float>(g * s);
    inv_std[c] = s;
  }
  if (beta)
    std::copy(beta, beta + width, shift);
  else
    std::fill(shift, shift + width, 0.0f);
}

// dgamma, dbeta and dx's a, b, c per channel from the sums (coefficients as in backward_common).
template <class Coefficients>
BNLAB_INLINE void backward_coefficients(std::int64_t width, double m, const float* __restrict gamma_b,
                                        const double* __restrict inv_std, const double* __restrict sum_dy,
                                        const double* __restrict sum_dy_xc, float* __restrict dgamma_b,
                                        float* __restrict dbeta_b, float* __restrict a, float* __restrict b,
                                        float* __restrict k, Coefficients coefficients) {
  for (std::int64_t c = 0; c < width; ++c) {
    dbeta_b[c] = static_cast<float>(sum_dy[c]);
    dgamma_b[c] = static_cast<float>(sum_dy_xc[c] * inv_std[c]);
    double ac, bc, kc;
    coefficients(static_cast<double>(gamma_b[c]), inv_std[c], sum_dy[c], sum_dy_xc[c], m, ac, bc, kc);
    a[c] = static_cast<float>(ac);
    b[c] = static_cast<float>(bc);
    k[c] = static_cast<float>(kc);
  }
}

// The backward of both forwards: per channel, the sums of dy' and dy' * (x - mean), then
// dx = dy' * a + (x - mean) * b + c with a, b, c from `coefficients`. need_sums: whether dx
// needs the sums (training); without them b = c = 0 (inference), and without the fused ReLU dx
// is then dy * a, a pass that reads dy alone: the same bits for finite x, one tensor less to
// read, and a finite dx where x is not (as PyTorch's eval-mode backward).
// Inlined into its multiversioned callers, so its per-channel loops run at their vector width
// (out of line it was compiled once, for baseline x86-64's 2-double SSE registers).
template <class Coefficients>
BNLAB_INLINE void backward_common(const char* who, const BatchNormShape& shape, const float* x, const float* dy, const float* gamma,
                     const float* beta, const float* mean, const float* inv_std_in, const float* variance,
                     float epsilon, float* dx, float* dgamma, float* dbeta, FusedActivation activation, bool need_sums,
                     Coefficients coefficients) {
  check_pointer(x, "x", who);
  check_pointer(dy, "dy", who);
  if (!dx && !dgamma && !dbeta)
    throw std::invalid_argument(fmt::format("{}: dx, dgamma and dbeta are all null: nothing to compute", who));
  const Plan plan(shape);
  const bool relu = activation == FusedActivation::relu;
  const bool dx_from_dy_alone = !need_sums && !relu;
  need_sums = (need_sums && dx) || dgamma || dbeta;

  auto channel = [&](std::int64_t c) {
    const double inv_std =
        inv_std_in ? static_cast<double>(inv_std_in[c]) : 1.0 / std::sqrt(static_cast<double>(variance[c]) + epsilon);
    return BackwardChannel{mean[c], static_cast<float>(value_or(gamma, c, 1.0f) * inv_std), value_or(beta, c, 0.0f),
                           inv_std};
  };
  auto finish = [&](std::int64_t c, const BackwardChannel& ch, double sum_dy, double sum_dy_xc) {
    if (dbeta) dbeta[c] = static_cast<float>(sum_dy);
    if (dgamma) dgamma[c] = static_cast<float>(sum_dy_xc * ch.inv_std);
    double a, b, k;
    coefficients(static_cast<double>(value_or(gamma, c, 1.0f)), ch.inv_std, sum_dy, sum_dy_xc,
                 static_cast<double>(plan.m), a, b, k);
    return InputGradient{static_cast<float>(a), static_cast<float>(b), static_cast<float>(k)};
  };

  if (plan.per_channel) {
    for_each_channel(plan, [&](std::int64_t c) {
      const BackwardChannel ch = channel(c);
      double sum_dy = 0.0, sum_dy_xc = 0.0;
      if (need_sums)
        for (std::int64_t n = 0; n < plan.N; ++n) {
          const std::int64_t offset = (n * plan.C + c) * plan.S;
          loops::grad_sums_contiguous(x + offset, dy + offset, plan.S, ch.mean, ch.scale, ch.shift, relu, sum_dy,
                                      sum_dy_xc, n + 1 < plan.N ? plan.C * plan.S : 0);
        }
      const InputGradient g = finish(c, ch, sum_dy, sum_dy_xc);
      if (!dx) return;  // only dgamma and dbeta wanted
      for (std::int64_t n = 0; n < plan.N; ++n) {
        const std::int64_t offset = (n * plan.C + c) * plan.S, next = n + 1 < plan.N ? plan.C * plan.S : 0;
        if (dx_from_dy_alone)  // ((dy - 0) - 0) * a + 0
          loops::normalize_contiguous(dy + offset, dx + offset, plan.S, 0.0f, 0.0f, g.a, 0.0f, false, plan.stream,
                                      next);
        else
          loops::grad_input_contiguous(x + offset, dy + offset, dx + offset, plan.S, ch.mean, g.a, g.b, g.c,
                                       ch.scale, ch.shift, relu, plan.stream, next);
      }
    });
    return;
  }

  const std::int64_t width = plan.C;
  Scratch scratch(plan, 10, 3);
  float *mean_b = scratch.floats(0), *scale = scratch.floats(1), *shift = scratch.floats(2), *a = scratch.floats(3),
        *b = scratch.floats(4), *c_term = scratch.floats(5), *gamma_b = scratch.floats(6),
        *dgamma_b = scratch.floats(7), *dbeta_b = scratch.floats(8), *zeros = scratch.floats(9);
  double *sum_dy = scratch.doubles(0), *sum_dy_xc = scratch.doubles(1), *inv_std = scratch.doubles(2);
  if (gamma && inv_std_in)
    backward_constants<true, true>(width, mean, inv_std_in, variance, epsilon, gamma, beta, mean_b, gamma_b, scale,
                                   shift, inv_std);
  else if (gamma)
    backward_constants<true, false>(width, mean, inv_std_in, variance, epsilon, gamma, beta, mean_b, gamma_b, scale,
                                    shift, inv_std);
  else if (inv_std_in)
    backward_constants<false, true>(width, mean, inv_std_in, variance, epsilon, gamma, beta, mean_b, gamma_b, scale,
                                    shift, inv_std);
  else
    backward_constants<false, false>(width, mean, inv_std_in, variance, epsilon, gamma, beta, mean_b, gamma_b, scale,
                                     shift, inv_std);
  if (need_sums) {
    reduce_channels(
        plan, scratch, sum_dy, sum_dy_xc,
        [&](std::int64_t r0, std::int64_t r1, double* pa, double* pb) {
          const std::int64_t offset = r0 * plan.C;
          loops::grad_sums_rows(x + offset, dy + offset, r1 - r0, plan.C, width, mean_b, scale, shift, relu, pa, pb,
                                plan.sums_row_walk);
        },
        [&](std::int64_t n, std::int64_t c, double& pa, double& pb) {
          const std::int64_t offset = (n * plan.C + c) * plan.S;
          loops::grad_sums_contiguous(x + offset, dy + offset, plan.S, mean_b[c], scale[c], shift[c], relu, pa, pb);
        });
  } else {
    std::fill(sum_dy, sum_dy + width, 0.0);
    std::fill(sum_dy_xc, sum_dy_xc + width, 0.0);
  }
  backward_coefficients(width, static_cast<double>(plan.m), gamma_b, inv_std, sum_dy, sum_dy_xc, dgamma_b, dbeta_b, a,
                        b, c_term, coefficients);
  if (dgamma) std::copy(dgamma_b, dgamma_b + width, dgamma);
  if (dbeta) std::copy(dbeta_b, dbeta_b + width, dbeta);
  if (!dx) return;  // only dgamma and dbeta wanted
  const TaskOrder after_sums = need_sums ? TaskOrder::last_first : TaskOrder::first_to_last;
  if (dx_from_dy_alone) {  // ((dy - 0) - 0) * a + 0
    std::fill(zeros, zeros + width, 0.0f);
    normalize_all(plan, after_sums, dy, dx, zeros, zeros, a, zeros, false);
    return;
  }
  for_each_part(
      plan, after_sums,
      [&](std::int64_t r0, std::int64_t r1) {
        const std::int64_t offset = r0 * plan.C;
        loops::grad_input_rows(x + offset, dy + offset, dx + offset, r1 - r0, plan.C, width, mean_b, a, b, c_term,
                               scale, shift, relu, plan.stream, plan.row_walk);
      },
      [&](std::int64_t n, std::int64_t c) {
        const std::int64_t offset = (n * plan.C + c) * plan.S;
        loops::grad_input_contiguous(x + offset, dy + offset, dx + offset, plan.S, mean_b[c], a[c], b[c], c_term[c],
                                     scale[c], shift[c], relu, plan.stream);
      });
}

}  // namespace

BNLAB_MULTIVERSION void batchnorm_backward(const BatchNormShape& shape, const float* x, const float* dy,
                                           const float* gamma, const float* beta, const float* saved_mean,
                                           const float* saved_inv_std, float* dx, float* dgamma, float* dbeta,
                                           FusedActivation activation) {
  constexpr const char* who = "batchnorm_backward";
  const profile::Scope timed(profile::Section::batchnorm);
  check_shape(shape, who);
  check_pointer(saved_mean, "saved_mean", who);
  check_pointer(saved_inv_std, "saved_inv_std", who);
  backward_common(
      who, shape, x, dy, gamma, beta, saved_mean, saved_inv_std, nullptr, 1.0f, dx, dgamma, dbeta, activation, true,
      [](double g, double inv_std, double sum_dy, double sum_dy_xc, double m, double& a, double& b, double& c) {
        a = g * inv_std;
        b = -g * inv_std * inv_std * inv_std * sum_dy_xc / m;
        c = -g * inv_std * sum_dy / m;
      });
}

BNLAB_MULTIVERSION void batchnorm_backward_inference(const BatchNormShape& shape, const float* x, const float* dy,
                                                     const float* mean, const float* variance, const float* gamma,
                                                     const float* beta, float epsilon, float* dx, float* dgamma,
                                                     float* dbeta, FusedActivation activation) {
  constexpr const char* who = "batchnorm_backward_inference";
  const profile::Scope timed(profile::Section::batchnorm);
  check_shape(shape, who);
  check_epsilon(epsilon, who);
  check_pointer(mean, "mean", who);
  check_pointer(variance, "variance", who);
  backward_common(who, shape, x, dy, gamma, beta, mean, nullptr, variance, epsilon, dx, dgamma, dbeta, activation,
                  false, [](double g, double inv_std, double, double, double, double& a, double& b, double& c) {
                    a = g * inv_std;
                    b = 0.0;
                    c = 0.0;
                  });
}

namespace {
void check_momentum(float momentum, const char* who) {
  if (!(momentum >= 0.0f && momentum <= 1.0f))
    throw std::invalid_argument(fmt::format("{}: momentum must be in [0, 1], got {}", who, momentum));
}
void check_channels(std::int64_t channels, const char* who) {
  if (channels <= 0) throw std::invalid_argument(fmt::format("{}: channels must be > 0, got {}", who, channels));
}
}  // namespace

void update_moving_statistics_keras(std::int64_t channels, const float* batch_mean, const float* batch_variance,
                                    float momentum, float* moving_mean, float* moving_variance) {
  constexpr const char* who = "update_moving_statistics_keras";
  check_channels(channels, who);
  check_momentum(momentum, who);
  check_pointer(batch_mean, "batch_mean", who);
  check_pointer(batch_variance, "batch_variance", who);
  check_pointer(moving_mean, "moving_mean", who);
  check_pointer(moving_variance, "moving_variance", who);
  for (std::int64_t c = 0; c < channels; ++c) {
    moving_mean[c] = moving_mean[c] * momentum + batch_mean[c] * (1.0f - momentum);
    moving_variance[c] = moving_variance[c] * momentum + batch_variance[c] * (1.0f - momentum);
  }
}

void update_running_statistics_pytorch(std::int64_t channels, std::int64_t count_per_channel, const float* batch_mean,
                                       const float* batch_variance, std::optional<float> momentum,
                                       std::int64_t num_batches_tracked, float* running_mean, float* running_var) {
  constexpr const char* who = "update_running_statistics_pytorch";
  check_channels(channels, who);
  if (count_per_channel < 2)
    throw std::invalid_argument(
        fmt::format("{}: the unbiased variance needs more than 1 value per channel, got {}", who, count_per_channel));
  if (momentum) check_momentum(*momentum, who);
  if (!momentum && num_batches_tracked < 1)
    throw std::invalid_argument(fmt::format(
        "{}: a cumulative average (momentum None) needs num_batches_tracked >= 1, got {}", who, num_batches_tracked));
  check_pointer(batch_mean, "batch_mean", who);
  check_pointer(batch_variance, "batch_variance", who);
  check_pointer(running_mean, "running_mean", who);
  check_pointer(running_var, "running_var", who);
  const double factor = momentum ? static_cast<double>(*momentum) : 1.0 / static_cast<double>(num_batches_tracked);
  const double bessel = static_cast<double>(count_per_channel) / static_cast<double>(count_per_channel - 1);
  for (std::int64_t c = 0; c < channels; ++c) {
    running_mean[c] = static_cast<float>((1.0 - factor) * running_mean[c] + factor * batch_mean[c]);
    running_var[c] = static_cast<float>((1.0 - factor) * running_var[c] + factor * batch_variance[c] * bessel);
  }
}

}  // namespace bnlab::kernels
