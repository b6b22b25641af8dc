// The BatchNorm loops for one instruction set: the build compiles this file three times, with
// -mavx512f, -mavx2 and for baseline x86-64, defining BNLAB_LOOPS_TABLE to a different name each
// time (see batchnorm_loops_table.hpp for why not target_clones). Nothing here may be an
// out-of-line inline or template function shared with other objects (the linker would keep one
// ISA's copy for all): everything is in an anonymous namespace or always inlined, and
// tests/build/isa_objects_test.sh checks the objects define no weak symbols.
#ifndef BNLAB_LOOPS_TABLE
#error "batchnorm_loops.cpp is compiled once per instruction set with BNLAB_LOOPS_TABLE defined (CMakeLists.txt)"
#endif

#include "kernels/batchnorm_loops_table.hpp"
#include "kernels/simd.hpp"

namespace bnlab::kernels::loops {
namespace {

using simd::f32x16;
using simd::f64x8;

// Float lanes absorb this many vectors before they are folded into double: short enough that
// float rounding stays near one ulp of a partial sum, long enough that folding costs little.
constexpr int steps_per_fold = 16;
// Rows of the row-order loops accumulated in float before the fold into double.
constexpr std::int64_t rows_per_fold = 16;

// ReLU that lets NaN through, as torch.relu does: only a value known to be negative becomes 0.
BNLAB_INLINE float relu_keep_nan(float v) { return v < 0.0f ? 0.0f : v; }
// The backward mask: dy passes where the forward's output was positive.
BNLAB_INLINE float relu_mask(float y, float dy) { return y > 0.0f ? dy : 0.0f; }

// One software prefetch per cache line of the next plane (see next_plane in the header).
BNLAB_INLINE void prefetch_line(const float* p, std::int64_t next_plane) {
  if (next_plane != 0) __builtin_prefetch(p + next_plane, 0, 2);
}

void moments_contiguous_impl(const float* x, std::int64_t len, float pivot, double& sum,
                                                double& sum_sq, std::int64_t next_plane) {
  const f32x16 p = simd::broadcast(pivot);
  f64x8 s_low{}, s_high{}, q_low{}, q_high{};
  std::int64_t i = 0;
  while (i + simd::lanes <= len) {
    f32x16 s{}, q{};
    for (int step = 0; step < steps_per_fold && i + simd::lanes <= len; ++step, i += simd::lanes) {
      prefetch_line(x + i, next_plane);
      const f32x16 d = simd::load(x + i) - p;
      s += d;
      q += d * d;
    }
    simd::widen_add(s, s_low, s_high);
    simd::widen_add(q, q_low, q_high);
  }
  double total = simd::sum_lanes(s_low, s_high), total_sq = simd::sum_lanes(q_low, q_high);
  for (; i < len; ++i) {
    const float d = x[i] - pivot;
    total += d;
    total_sq += d * d;
  }
  sum += total;
  sum_sq += total_sq;
}

// Adds 16 float lanes into 16 doubles in memory, lane by lane (the per-channel fold of the
// row-order loops: channel k's float partial goes into its own double total).
BNLAB_INLINE void fold_into(f32x16 v, double* total) {
  f64x8 low, high;
  std::memcpy(&low, total, sizeof low);
  std::memcpy(&high, total + 8, sizeof high);
  simd::widen_add(v, low, high);
  std::memcpy(total, &low, sizeof low);
  std::memcpy(total + 8, &high, sizeof high);
}

// One fold (at most rows_per_fold rows) of K vectors of 16 channels, their float accumulators
// in registers. Each channel's order of additions is the same as the scalar remainder loop's
// below: rows in order within the fold, then the fold into double.
template <int K>
BNLAB_INLINE void moments_rows_vectors(const float* x, std::int64_t rows, std::int64_t row_stride, const float* pivot,
                                       double* sum, double* sum_sq) {
  f32x16 p[K], s[K], q[K];
#pragma GCC unroll 8
  for (int k = 0; k < K; ++k) {
    p[k] = simd::load(pivot + k * simd::lanes);
    s[k] = q[k] = f32x16{};
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * row_stride;
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) {
      const f32x16 d = simd::load(row + k * simd::lanes) - p[k];
      s[k] += d;
      q[k] += d * d;
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < K; ++k) {
    fold_into(s[k], sum + k * simd::lanes);
    fold_into(q[k], sum_sq + k * simd::lanes);
  }
}

// task(r0, n) for consecutive tiles [r0, r0 + n) of at most tile_rows rows covering [0, rows).
template <class TileTask>
BNLAB_INLINE void for_tiles(std::int64_t rows, std::int64_t tile_rows, TileTask task) {
  for (std::int64_t r0 = 0; r0 < rows; r0 += tile_rows) task(r0, r0 + tile_rows < rows ? tile_rows : rows - r0);
}

void moments_rows_impl(const float* x, std::int64_t rows, std::int64_t row_stride,
                                          std::int64_t width, const float* pivot, double* sum, double* sum_sq) {
  for_tiles(rows, rows_per_fold, [&](std::int64_t r0, std::int64_t tile) BNLAB_LAMBDA_INLINE {
    const float* xt = x + r0 * row_stride;
    std::int64_t c = 0;
    // Blocks of 8 vectors (128 channels) where the row is that wide: half as many switches from
    // row to row as blocks of 4, 5-15% faster on 4096x1024 in and out of cache (paired in one
    // process; AVX2 too). The three arrays of 8 still fit AVX-512's 32 registers.
    for (; c + 8 * simd::lanes <= width; c += 8 * simd::lanes)
      moments_rows_vectors<8>(xt + c, tile, row_stride, pivot + c, sum + c, sum_sq + c);
    for (; c + 4 * simd::lanes <= width; c += 4 * simd::lanes)
      moments_rows_vectors<4>(xt + c, tile, row_stride, pivot + c, sum + c, sum_sq + c);
    for (; c + simd::lanes <= width; c += simd::lanes)
      moments_rows_vectors<1>(xt + c, tile, row_stride, pivot + c, sum + c, sum_sq + c);
    if (c == width) return;
    float s[simd::lanes] = {}, q[simd::lanes] = {};
    const std::int64_t rest = width - c;
    for (std::int64_t r = 0; r < tile; ++r) {
      const float* row = xt + r * row_stride + c;
      for (std::int64_t k = 0; k < rest; ++k) {
        const float d = row[k] - pivot[c + k];
        s[k] += d;
        q[k] += d * d;
      }
    }
    for (std::int64_t k = 0; k < rest; ++k) {
      sum[c + k] += s[k];
      sum_sq[c + k] += q[k];
    }
  });
}

BNLAB_INLINE float normalized(float x, float pivot, float centered_mean, float scale, float shift) {
  return ((x - pivot) - centered_mean) * scale + shift;
}

template <bool relu, bool stream>
BNLAB_INLINE void normalize_contiguous_body(const float* x, float* y, std::int64_t len, float pivot,
                                            float centered_mean, float scale, float shift, std::int64_t next_plane) {
  std::int64_t i = 0;
  if constexpr (stream) {
    for (; i < len && !simd::line_aligned(y + i); ++i) {
      const float v = normalized(x[i], pivot, centered_mean, scale, shift);
      y[i] = relu ? relu_keep_nan(v) : v;
    }
    const f32x16 p = simd::broadcast(pivot), m = simd::broadcast(centered_mean), sc = simd::broadcast(scale),
                 sh = simd::broadcast(shift);
    for (; i + simd::lanes <= len; i += simd::lanes) {
      prefetch_line(x + i, next_plane);
      f32x16 v = ((simd::load(x + i) - p) - m) * sc + sh;
      if constexpr (relu) v = v < 0.0f ? f32x16{} : v;
      simd::stream(y + i, v);
    }
  }
  for (; i < len; ++i) {
    const float v = normalized(x[i], pivot, centered_mean, scale, shift);
    y[i] = relu ? relu_keep_nan(v) : v;
  }
}

void normalize_contiguous_impl(const float* x, float* y, std::int64_t len, float pivot,
                                                  float centered_mean, float scale, float shift, bool relu, bool stream,
                                                  std::int64_t next_plane) {
  if (relu && stream)
    normalize_contiguous_body<true, true>(x, y, len, pivot, centered_mean, scale, shift, next_plane);
  else if (relu)
    normalize_contiguous_body<true, false>(x, y, len, pivot, centered_mean, scale, shift, next_plane);
  else if (stream)
    normalize_contiguous_body<false, true>(x, y, len, pivot, centered_mean, scale, shift, next_plane);
  else
    normalize_contiguous_body<false, false>(x, y, len, pivot, centered_mean, scale, shift, next_plane);
}

// Elementwise row loops over rows wider than one register block (64 channels) go through the
// rows in short tiles, all channels of a tile before the next: memory is read in address order
// (a long row walked one 64-channel block at a time for every row would stride by the row length,
// defeating the prefetchers and, at 4 KiB rows, aliasing every load with the stores before it).
constexpr std::int64_t rows_per_tile = 8;

template <class TileTask>
BNLAB_INLINE void for_row_tiles(std::int64_t rows, std::int64_t width, TileTask tile_task) {
  if (width <= 4 * simd::lanes) {
    tile_task(0, rows);
    return;
  }
  for_tiles(rows, rows_per_tile, tile_task);
}

// Streaming row by row needs whole lines: rows that start on a line and span whole vectors.
BNLAB_INLINE bool rows_can_stream(const float* y, std::int64_t row_stride, std::int64_t width) {
  return simd::line_aligned(y) && row_stride % simd::lanes == 0 && width % simd::lanes == 0;
}

// Stores 16 results: streamed (whole line, no read for ownership) or plain.
template <bool stream>
BNLAB_INLINE void store(float* p, f32x16 v) {
  if constexpr (stream)
    simd::stream(p, v);
  else
    std::memcpy(p, &v, sizeof v);
}

// Rows wider than one register block go row after row in address order, each vector's
// constants loaded from the per-channel arrays (in L1). A tile of rows walked one block of
// channels at a time, the constants in registers, strides through memory by the row length:
// 4096x1024 inference (cold caches) ran at 1.27-1.38 copy times that way, 1.04-1.10 row by row.
// (The backward's input-gradient pass, eight arrays of constants with the fused ReLU, stays in
// tiles: row by row it was as fast without the ReLU and 10% slower with it.)
constexpr std::int64_t wide_rows_above = 4 * simd::lanes;  // channels

// vector(r, c) for the whole vectors of row r, scalar(r, k) for its last width % 16 channels.
template <class Vector, class Scalar>
BNLAB_INLINE void for_wide_rows(std::int64_t rows, std::int64_t width, Vector vector, Scalar scalar) {
  const std::int64_t whole = width / simd::lanes * simd::lanes;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < whole; c += simd::lanes) vector(r, c);
    for (std::int64_t k = whole; k < width; ++k) scalar(r, k);
    // One row at a time: GCC's unroll-and-jam would otherwise interleave two rows, a strided walk.
    asm volatile("" ::: "memory");
  }
}

// K vectors of 16 channels whose constants stay in registers for all the rows.
template <bool relu, bool stream, int K>
BNLAB_INLINE void normalize_rows_vectors(const float* x, float* y, std::int64_t rows, std::int64_t row_stride,
                                         const float* pivot, const float* centered_mean, const float* scale,
                                         const float* shift) {
  f32x16 p[K], m[K], sc[K], sh[K];
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    p[k] = simd::load(pivot + k * simd::lanes);
    m[k] = simd::load(centered_mean + k * simd::lanes);
    sc[k] = simd::load(scale + k * simd::lanes);
    sh[k] = simd::load(shift + k * simd::lanes);
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * row_stride;
    float* out = y + r * row_stride;
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) {
      f32x16 v = ((simd::load(in + k * simd::lanes) - p[k]) - m[k]) * sc[k] + sh[k];
      if constexpr (relu) v = v < 0.0f ? f32x16{} : v;
      store<stream>(out + k * simd::lanes, v);
    }
  }
}

template <bool relu, bool stream>
BNLAB_INLINE void normalize_rows_body(const float* x, float* y, std::int64_t rows, std::int64_t row_stride,
                                      std::int64_t width, const float* pivot, const float* centered_mean,
                                      const float* scale, const float* shift) {
  if (width > wide_rows_above) {
    for_wide_rows(
        rows, width,
        [&](std::int64_t r, std::int64_t c) BNLAB_LAMBDA_INLINE {
          const float* in = x + r * row_stride;
          f32x16 v = ((simd::load(in + c) - simd::load(pivot + c)) - simd::load(centered_mean + c)) *
                         simd::load(scale + c) +
                     simd::load(shift + c);
          if constexpr (relu) v = v < 0.0f ? f32x16{} : v;
          store<stream>(y + r * row_stride + c, v);
        },
        [&](std::int64_t r, std::int64_t k) BNLAB_LAMBDA_INLINE {
          const float v = normalized(x[r * row_stride + k], pivot[k], centered_mean[k], scale[k], shift[k]);
          y[r * row_stride + k] = relu ? relu_keep_nan(v) : v;
        });
    return;
  }
  for_row_tiles(rows, width, [&](std::int64_t r0, std::int64_t tile) BNLAB_LAMBDA_INLINE {
    const float* xt = x + r0 * row_stride;
    float* yt = y + r0 * row_stride;
    std::int64_t c = 0;
    for (; c + 4 * simd::lanes <= width; c += 4 * simd::lanes)
      normalize_rows_vectors<relu, stream, 4>(xt + c, yt + c, tile, row_stride, pivot + c, centered_mean + c,
                                              scale + c, shift + c);
    for (; c + simd::lanes <= width; c += simd::lanes)
      normalize_rows_vectors<relu, stream, 1>(xt + c, yt + c, tile, row_stride, pivot + c, centered_mean + c,
                                              scale + c, shift + c);
    for (std::int64_t r = 0; c < width && r < tile; ++r) {
      const float* in = xt + r * row_stride;
      float* out = yt + r * row_stride;
      for (std::int64_t k = c; k < width; ++k) {
        const float v = normalized(in[k], pivot[k], centered_mean[k], scale[k], shift[k]);
        out[k] = relu ? relu_keep_nan(v) : v;
      }
    }
  });
}

void normalize_rows_impl(const float* x, float* y, std::int64_t rows, std::int64_t row_stride,
                                            std::int64_t width, const float* pivot, const float* centered_mean,
                                            const float* scale, const float* shift, bool relu, bool stream) {
  stream = stream && rows_can_stream(y, row_stride, width);
  if (relu && stream)
    normalize_rows_body<true, true>(x, y, rows, row_stride, width, pivot, centered_mean, scale, shift);
  else if (relu)
    normalize_rows_body<true, false>(x, y, rows, row_stride, width, pivot, centered_mean, scale, shift);
  else if (stream)
    normalize_rows_body<false, true>(x, y, rows, row_stride, width, pivot, centered_mean, scale, shift);
  else
    normalize_rows_body<false, false>(x, y, rows, row_stride, width, pivot, centered_mean, scale, shift);
}

template <bool relu>
BNLAB_INLINE void grad_sums_contiguous_body(const float* x, const float* dy, std::int64_t len, float mean, float scale,
                                            float shift, double& sum_dy, double& sum_dy_xc, std::int64_t next_plane) {
  const f32x16 m = simd::broadcast(mean), sc = simd::broadcast(scale), sh = simd::broadcast(shift);
  f64x8 a_low{}, a_high{}, b_low{}, b_high{};
  std::int64_t i = 0;
  while (i + simd::lanes <= len) {
    f32x16 a{}, b{};
    for (int step = 0; step < steps_per_fold && i + simd::lanes <= len; ++step, i += simd::lanes) {
      prefetch_line(x + i, next_plane);
      prefetch_line(dy + i, next_plane);
      const f32x16 xc = simd::load(x + i) - m;
      f32x16 g = relu ? simd::load_eager(dy + i) : simd::load(dy + i);
      if constexpr (relu) g = simd::keep_where(xc * sc + sh > 0.0f, g);
      a += g;
      b += g * xc;
    }
    simd::widen_add(a, a_low, a_high);
    simd::widen_add(b, b_low, b_high);
  }
  double total_a = simd::sum_lanes(a_low, a_high), total_b = simd::sum_lanes(b_low, b_high);
  for (; i < len; ++i) {
    const float xc = x[i] - mean;
    const float g = relu ? relu_mask(xc * scale + shift, dy[i]) : dy[i];
    total_a += g;
    total_b += g * xc;
  }
  sum_dy += total_a;
  sum_dy_xc += total_b;
}

void grad_sums_contiguous_impl(const float* x, const float* dy, std::int64_t len, float mean,
                                                  float scale, float shift, bool relu, double& sum_dy,
                                                  double& sum_dy_xc, std::int64_t next_plane) {
  if (relu)
    grad_sums_contiguous_body<true>(x, dy, len, mean, scale, shift, sum_dy, sum_dy_xc, next_plane);
  else
    grad_sums_contiguous_body<false>(x, dy, len, mean, scale, shift, sum_dy, sum_dy_xc, next_plane);
}

template <bool relu, int K>
BNLAB_INLINE void grad_sums_rows_vectors(const float* x, const float* dy, std::int64_t rows, std::int64_t row_stride,
                                         const float* mean, const float* scale, const float* shift, double* sum_dy,
                                         double* sum_dy_xc) {
  f32x16 m[K], sc[K], sh[K], a[K], b[K];
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    m[k] = simd::load(mean + k * simd::lanes);
    sc[k] = simd::load(scale + k * simd::lanes);
    sh[k] = simd::load(shift + k * simd::lanes);
    a[k] = b[k] = f32x16{};
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * row_stride;
    const float* dyr = dy + r * row_stride;
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) {
      const f32x16 xc = simd::load(xr + k * simd::lanes) - m[k];
      f32x16 g = relu ? simd::load_eager(dyr + k * simd::lanes) : simd::load(dyr + k * simd::lanes);
      if constexpr (relu) g = simd::keep_where(xc * sc[k] + sh[k] > 0.0f, g);
      a[k] += g;
      b[k] += g * xc;
    }
  }
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    fold_into(a[k], sum_dy + k * simd::lanes);
    fold_into(b[k], sum_dy_xc + k * simd::lanes);
  }
}

template <bool relu>
BNLAB_INLINE void grad_sums_rows_body(const float* x, const float* dy, std::int64_t rows, std::int64_t row_stride,
                                      std::int64_t width, const float* mean, const float* scale, const float* shift,
                                      double* sum_dy, double* sum_dy_xc) {
  for_tiles(rows, rows_per_fold, [&](std::int64_t r0, std::int64_t tile) BNLAB_LAMBDA_INLINE {
    const float* xt = x + r0 * row_stride;
    const float* dyt = dy + r0 * row_stride;
    std::int64_t c = 0;
    for (; c + 4 * simd::lanes <= width; c += 4 * simd::lanes)
      grad_sums_rows_vectors<relu, 4>(xt + c, dyt + c, tile, row_stride, mean + c, scale + c, shift + c, sum_dy + c,
                                      sum_dy_xc + c);
    for (; c + simd::lanes <= width; c += simd::lanes)
      grad_sums_rows_vectors<relu, 1>(xt + c, dyt + c, tile, row_stride, mean + c, scale + c, shift + c, sum_dy + c,
                                      sum_dy_xc + c);
    if (c == width) return;
    float a[simd::lanes] = {}, b[simd::lanes] = {};
    const std::int64_t rest = width - c;
    for (std::int64_t r = 0; r < tile; ++r) {
      const float* xr = xt + r * row_stride + c;
      const float* dyr = dyt + r * row_stride + c;
      for (std::int64_t k = 0; k < rest; ++k) {
        const float xc = xr[k] - mean[c + k];
        const float g = relu ? relu_mask(xc * scale[c + k] + shift[c + k], dyr[k]) : dyr[k];
        a[k] += g;
        b[k] += g * xc;
      }
    }
    for (std::int64_t k = 0; k < rest; ++k) {
      sum_dy[c + k] += a[k];
      sum_dy_xc[c + k] += b[k];
    }
  });
}

void grad_sums_rows_impl(const float* x, const float* dy, std::int64_t rows, std::int64_t row_stride,
                                            std::int64_t width, const float* mean, const float* scale,
                                            const float* shift, bool relu, double* sum_dy, double* sum_dy_xc) {
  if (relu)
    grad_sums_rows_body<true>(x, dy, rows, row_stride, width, mean, scale, shift, sum_dy, sum_dy_xc);
  else
    grad_sums_rows_body<false>(x, dy, rows, row_stride, width, mean, scale, shift, sum_dy, sum_dy_xc);
}

template <bool relu>
BNLAB_INLINE float grad_input(float x, float dy, float mean, float a, float b, float c, float scale, float shift) {
  const float xc = x - mean;
  const float g = relu ? relu_mask(xc * scale + shift, dy) : dy;
  return g * a + xc * b + c;
}

template <bool relu, bool stream>
BNLAB_INLINE void grad_input_contiguous_body(const float* x, const float* dy, float* dx, std::int64_t len, float mean,
                                             float a, float b, float c, float scale, float shift,
                                             std::int64_t next_plane) {
  std::int64_t i = 0;
  if constexpr (stream) {
    for (; i < len && !simd::line_aligned(dx + i); ++i)
      dx[i] = grad_input<relu>(x[i], dy[i], mean, a, b, c, scale, shift);
    const f32x16 m = simd::broadcast(mean), va = simd::broadcast(a), vb = simd::broadcast(b), vc = simd::broadcast(c),
                 sc = simd::broadcast(scale), sh = simd::broadcast(shift);
    for (; i + simd::lanes <= len; i += simd::lanes) {
      prefetch_line(x + i, next_plane);
      prefetch_line(dy + i, next_plane);
      const f32x16 xc = simd::load(x + i) - m;
      f32x16 g = relu ? simd::load_eager(dy + i) : simd::load(dy + i);
      if constexpr (relu) g = simd::keep_where(xc * sc + sh > 0.0f, g);
      simd::stream(dx + i, g * va + xc * vb + vc);
    }
  }
  for (; i < len; ++i) dx[i] = grad_input<relu>(x[i], dy[i], mean, a, b, c, scale, shift);
}

void grad_input_contiguous_impl(const float* x, const float* dy, float* dx, std::int64_t len,
                                                   float mean, float a, float b, float c, float scale, float shift,
                                                   bool relu, bool stream, std::int64_t next_plane) {
  if (relu && stream)
    grad_input_contiguous_body<true, true>(x, dy, dx, len, mean, a, b, c, scale, shift, next_plane);
  else if (relu)
    grad_input_contiguous_body<true, false>(x, dy, dx, len, mean, a, b, c, scale, shift, next_plane);
  else if (stream)
    grad_input_contiguous_body<false, true>(x, dy, dx, len, mean, a, b, c, scale, shift, next_plane);
  else
    grad_input_contiguous_body<false, false>(x, dy, dx, len, mean, a, b, c, scale, shift, next_plane);
}

template <bool relu, bool stream, int K>
BNLAB_INLINE void grad_input_rows_vectors(const float* x, const float* dy, float* dx, std::int64_t rows,
                                          std::int64_t row_stride, const float* mean, const float* a, const float* b,
                                          const float* c, const float* scale, const float* shift) {
  f32x16 m[K], va[K], vb[K], vc[K], sc[K], sh[K];
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    m[k] = simd::load(mean + k * simd::lanes);
    va[k] = simd::load(a + k * simd::lanes);
    vb[k] = simd::load(b + k * simd::lanes);
    vc[k] = simd::load(c + k * simd::lanes);
    if constexpr (relu) {
      sc[k] = simd::load(scale + k * simd::lanes);
      sh[k] = simd::load(shift + k * simd::lanes);
    }
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * row_stride;
    const float* dyr = dy + r * row_stride;
    float* dxr = dx + r * row_stride;
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) {
      const f32x16 xc = simd::load(xr + k * simd::lanes) - m[k];
      f32x16 g = relu ? simd::load_eager(dyr + k * simd::lanes) : simd::load(dyr + k * simd::lanes);
      if constexpr (relu) g = simd::keep_where(xc * sc[k] + sh[k] > 0.0f, g);
      store<stream>(dxr + k * simd::lanes, g * va[k] + xc * vb[k] + vc[k]);
    }
  }
}

template <bool relu, bool stream>
BNLAB_INLINE void grad_input_rows_body(const float* x, const float* dy, float* dx, std::int64_t rows,
                                       std::int64_t row_stride, std::int64_t width, const float* mean, const float* a,
                                       const float* b, const float* c, const float* scale, const float* shift) {
  for_row_tiles(rows, width, [&](std::int64_t r0, std::int64_t tile) BNLAB_LAMBDA_INLINE {
    const float* xt = x + r0 * row_stride;
    const float* dyt = dy + r0 * row_stride;
    float* dxt = dx + r0 * row_stride;
    std::int64_t k0 = 0;
    for (; k0 + 4 * simd::lanes <= width; k0 += 4 * simd::lanes)
      grad_input_rows_vectors<relu, stream, 4>(xt + k0, dyt + k0, dxt + k0, tile, row_stride, mean + k0, a + k0,
                                               b + k0, c + k0, scale + k0, shift + k0);
    for (; k0 + simd::lanes <= width; k0 += simd::lanes)
      grad_input_rows_vectors<relu, stream, 1>(xt + k0, dyt + k0, dxt + k0, tile, row_stride, mean + k0, a + k0,
                                               b + k0, c + k0, scale + k0, shift + k0);
    for (std::int64_t r = 0; k0 < width && r < tile; ++r) {
      const float* xr = xt + r * row_stride;
      const float* dyr = dyt + r * row_stride;
      float* dxr = dxt + r * row_stride;
      for (std::int64_t k = k0; k < width; ++k)
        dxr[k] = grad_input<relu>(xr[k], dyr[k], mean[k], a[k], b[k], c[k], scale[k], shift[k]);
    }
  });
}

void grad_input_rows_impl(const float* x, const float* dy, float* dx, std::int64_t rows,
                                             std::int64_t row_stride, std::int64_t width, const float* mean,
                                             const float* a, const float* b, const float* c, const float* scale,
                                             const float* shift, bool relu, bool stream) {
  stream = stream && rows_can_stream(dx, row_stride, width);
  if (relu && stream)
    grad_input_rows_body<true, true>(x, dy, dx, rows, row_stride, width, mean, a, b, c, scale, shift);
  else if (relu)
    grad_input_rows_body<true, false>(x, dy, dx, rows, row_stride, width, mean, a, b, c, scale, shift);
  else if (stream)
    grad_input_rows_body<false, true>(x, dy, dx, rows, row_stride, width, mean, a, b, c, scale, shift);
  else
    grad_input_rows_body<false, false>(x, dy, dx, rows, row_stride, width, mean, a, b, c, scale, shift);
}

}  // namespace

// This file is compiled once per instruction set (CMakeLists.txt: -mavx512f, -mavx2, baseline),
// each object defining its own table; batchnorm_loops_dispatch.cpp picks one at run time.
extern const LoopTable BNLAB_LOOPS_TABLE;
const LoopTable BNLAB_LOOPS_TABLE = {
    moments_contiguous_impl, moments_rows_impl,    normalize_contiguous_impl, normalize_rows_impl,
    grad_sums_contiguous_impl, grad_sums_rows_impl, grad_input_contiguous_impl, grad_input_rows_impl,
};

}  // namespace bnlab::kernels::loops
