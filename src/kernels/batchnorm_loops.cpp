// The BatchNorm loops for one instruction set: the build compiles this file three times, with
// -mavx512f, -mavx2 and for baseline x86-64, defining BNLAB_LOOPS_TABLE to a different name each
// time (see batchnorm_loops_table.hpp for why not target_clones). Nothing here may be an
// out-of-line inline or template function shared with other objects (the linker would keep one
// ISA's copy for all): everything is in an anonymous namespace or always inlined, and
// tests/support/isa_objects_test.sh checks the objects define no weak symbols.
#ifndef BNLAB_LOOPS_TABLE
#error "batchnorm_loops.cpp is compiled once per instruction set with BNLAB_LOOPS_TABLE defined (CMakeLists.txt)"
#endif

#include <type_traits>

#include "kernels/batchnorm_loops_table.hpp"
#include "kernels/simd.hpp"

namespace bnlab::kernels::loops {
namespace {

using simd::f32x16;

// Float lanes absorb this many vectors before they are folded into double: short enough that
// float rounding stays near one ulp of a partial sum, long enough that folding costs little.
constexpr int steps_per_fold = 16;
// Rows of the row-order loops accumulated in float before the fold into double.
constexpr std::int64_t rows_per_fold = 16;

// The row-order loops (NC, NHWC: lanes are channels, so the width changes no result) work on
// one register of the instruction set this object is compiled for. The 16-lane f32x16 of the
// contiguous loops, whose lanes fix an order of additions, would be two registers under AVX2,
// and GCC 12 keeps arrays of those in stack slots moved through general registers on every row
// (32x300 forward training 7.0 us with AVX2 against 2.6 with AVX-512).
#if defined(__AVX512F__)
using rvec = f32x16;
#elif defined(__AVX__)
using rvec = float __attribute__((vector_size(32)));
#else
using rvec = float __attribute__((vector_size(16)));
#endif
using rmask = int __attribute__((vector_size(sizeof(rvec))));
constexpr int rlanes = sizeof(rvec) / sizeof(float);
// Registers the loops may fill with per-channel arrays (four left for temporaries).
#if defined(__AVX512F__)
constexpr int free_registers = 28;
#else
constexpr int free_registers = 12;
#endif

BNLAB_INLINE rvec rload(const float* p) {
  rvec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// As simd::load_eager: issued where written, not folded into a masked load.
BNLAB_INLINE rvec rload_eager(const float* p) {
  const rvec v = rload(p);
  asm volatile("" ::: "memory");
  return v;
}
// relu_mask (below) on row vectors.
BNLAB_INLINE rvec rrelu_mask(rvec y, rvec dy) { return (rvec)(~(y <= 0.0f) & (rmask)dy); }
// Non-temporal store of one row vector (part of a line the loop writes whole).
BNLAB_INLINE void rstream(float* p, rvec v) {
#if defined(__AVX512F__)
  _mm512_stream_ps(p, (__m512)v);
#elif defined(__AVX__)
  _mm256_stream_ps(p, (__m256)v);
#else
  _mm_stream_ps(p, (__m128)v);
#endif
}
// Adds the lanes into as many doubles in memory, lane by lane (channel k's float partial into its
// own double total). Through an array below AVX-512, where it compiles to conversions of whole
// registers; with AVX-512 the two 8-double halves (8% faster there than the array's loop).
BNLAB_INLINE void rfold_into(rvec v, double* total) {
#if defined(__AVX512F__)
  simd::f64x8 low, high;
  std::memcpy(&low, total, sizeof low);
  std::memcpy(&high, total + 8, sizeof high);
  simd::widen_add(v, low, high);
  std::memcpy(total, &low, sizeof low);
  std::memcpy(total + 8, &high, sizeof high);
#else
  alignas(64) float values[rlanes];
  std::memcpy(values, &v, sizeof v);
  for (int i = 0; i < rlanes; ++i) total[i] += static_cast<double>(values[i]);
#endif
}

// The contiguous (NCHW) loops take 16 floats, one cache line, a step: as `parts` row vectors,
// whose lanes in order are the line's 16 (for sums, the 16 lanes of simd.hpp's fixed order).
constexpr int parts = simd::lanes / rlanes;
// The 16 lanes' double totals of a contiguous sum, added in lane order (0, 1, ..., 15): the fixed
// order that makes the sum the same at every width.
BNLAB_INLINE double sum_in_lane_order(const double* lanes) {
  double total = 0.0;
  for (int lane = 0; lane < simd::lanes; ++lane) total += lanes[lane];
  return total;
}
// value in every lane, added to +0 as simd::broadcast does.
BNLAB_INLINE rvec rbroadcast(float value) { return rvec{} + value; }

// One run-time choice among the four compiled versions of a body with two flags: calls
// body(std::bool_constant<a>, std::bool_constant<b>).
template <class Body>
BNLAB_INLINE void with_flags(bool a, bool b, Body body) {
  if (a && b)
    body(std::true_type{}, std::true_type{});
  else if (a)
    body(std::true_type{}, std::false_type{});
  else if (b)
    body(std::false_type{}, std::true_type{});
  else
    body(std::false_type{}, std::false_type{});
}

// Rows of up to this many channels are narrow: one block of row vectors covers a whole row,
// registers or not. The elementwise passes take such rows as one tile of all the rows, where
// narrower blocks would each stream the whole tensor (NHWC inference with AVX2 took 1.5 copy
// times in blocks of 16 channels against 1.0 in one of 64), and the sums then walk a fold's rows
// in address order (the AVX2 NHWC backward ran 25% slower in blocks of 16 channels).
constexpr std::int64_t wide_rows_above = 4 * simd::lanes;
constexpr int whole_row_vectors = wide_rows_above / rlanes;

// The largest block of row vectors (at most max_block) whose `arrays` per-channel arrays stay in
// registers for all the rows of a tile. It changes no result: every channel adds in the same order.
constexpr int block_vectors(int arrays, int max_block) {
  int k = max_block;
  while (k > 1 && arrays * k > free_registers) k /= 2;
  return k;
}

// block(c, K) over the whole row vectors of `width` channels: blocks of MaxK vectors, then of
// half as many, down to single vectors. Returns where the scalar remainder starts.
template <int MaxK, class Block>
BNLAB_INLINE std::int64_t for_vector_blocks(std::int64_t width, Block block) {
  std::int64_t c = 0;
  if constexpr (MaxK >= 16)
    for (; c + 16 * rlanes <= width; c += 16 * rlanes) block(c, std::integral_constant<int, 16>{});
  if constexpr (MaxK >= 8)
    for (; c + 8 * rlanes <= width; c += 8 * rlanes) block(c, std::integral_constant<int, 8>{});
  if constexpr (MaxK >= 4)
    for (; c + 4 * rlanes <= width; c += 4 * rlanes) block(c, std::integral_constant<int, 4>{});
  if constexpr (MaxK >= 2)
    for (; c + 2 * rlanes <= width; c += 2 * rlanes) block(c, std::integral_constant<int, 2>{});
  for (; c + rlanes <= width; c += rlanes) block(c, std::integral_constant<int, 1>{});
  return c;
}

// ReLU that lets NaN through, as torch.relu does: only a value known to be negative becomes 0.
BNLAB_INLINE float relu_keep_nan(float v) { return v < 0.0f ? 0.0f : v; }
// The backward mask, as torch.relu's: dy is zeroed where the forward's output was <= 0 (a NaN
// output lets it pass).
BNLAB_INLINE float relu_mask(float y, float dy) { return y <= 0.0f ? 0.0f : dy; }

// One software prefetch per cache line of the next plane (see next_plane in the header).
BNLAB_INLINE void prefetch_line(const float* p, std::int64_t next_plane) {
  if (next_plane != 0) __builtin_prefetch(p + next_plane, 0, 2);
}

// Two sums over a contiguous run of len floats, a line (16 floats, as `parts` row vectors) a
// step: float lanes absorb steps_per_fold lines, then go into 16 double lanes added in lane
// order, and scalar(i, a, b) adds the values after the last whole line in order.
// line(i, a, b) adds the line at i into the part arrays a and b.
template <class Line, class Scalar>
BNLAB_INLINE void contiguous_sums(std::int64_t len, double& sum_a, double& sum_b, Line line, Scalar scalar) {
  alignas(64) double lanes_a[simd::lanes] = {}, lanes_b[simd::lanes] = {};
  std::int64_t i = 0;
  while (i + simd::lanes <= len) {
    rvec a[parts] = {}, b[parts] = {};
    for (int step = 0; step < steps_per_fold && i + simd::lanes <= len; ++step, i += simd::lanes) line(i, a, b);
#pragma GCC unroll 4
    for (int part = 0; part < parts; ++part) {
      rfold_into(a[part], lanes_a + part * rlanes);
      rfold_into(b[part], lanes_b + part * rlanes);
    }
  }
  double total_a = sum_in_lane_order(lanes_a), total_b = sum_in_lane_order(lanes_b);
  for (; i < len; ++i) scalar(i, total_a, total_b);
  sum_a += total_a;
  sum_b += total_b;
}

void moments_contiguous_impl(const float* x, std::int64_t len, float pivot, double& sum, double& sum_sq,
                             std::int64_t next_plane) {
  const rvec p = rbroadcast(pivot);
  contiguous_sums(
      len, sum, sum_sq,
      [&](std::int64_t i, rvec(&s)[parts], rvec(&q)[parts]) BNLAB_LAMBDA_INLINE {
        prefetch_line(x + i, next_plane);
#pragma GCC unroll 4
        for (int part = 0; part < parts; ++part) {
          const rvec d = rload(x + i + part * rlanes) - p;
          s[part] += d;
          q[part] += d * d;
        }
      },
      [&](std::int64_t i, double& s, double& q) BNLAB_LAMBDA_INLINE {
        const float d = x[i] - pivot;
        s += d;
        q += d * d;
      });
}

// One fold (at most rows_per_fold rows) of K vectors of 16 channels, their float accumulators
// in registers. Each channel's order of additions is the same as the scalar remainder loop's
// below: rows in order within the fold, then the fold into double.
template <int K>
BNLAB_INLINE void moments_rows_vectors(const float* x, std::int64_t rows, std::int64_t row_stride, const float* pivot,
                                       double* sum, double* sum_sq) {
  rvec p[K], s[K], q[K];
#pragma GCC unroll 8
  for (int k = 0; k < K; ++k) {
    p[k] = rload(pivot + k * rlanes);
    s[k] = q[k] = rvec{};
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * row_stride;
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) {
      const rvec d = rload(row + k * rlanes) - p[k];
      s[k] += d;
      q[k] += d * d;
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < K; ++k) {
    rfold_into(s[k], sum + k * rlanes);
    rfold_into(q[k], sum_sq + k * rlanes);
  }
}

// task(r0, n) for consecutive tiles [r0, r0 + n) of at most tile_rows rows covering [0, rows).
template <class TileTask>
BNLAB_INLINE void for_tiles(std::int64_t rows, std::int64_t tile_rows, TileTask task) {
  for (std::int64_t r0 = 0; r0 < rows; r0 += tile_rows) task(r0, r0 + tile_rows < rows ? tile_rows : rows - r0);
}

// Sums over rows wider than one register block (64 channels), walked row after row in address
// order: a chunk of channels' float partials in L1 absorb a fold's rows, then go into the
// doubles, and each row's lines are prefetched ahead (prefetch_distance). Every channel adds in the order of
// the register blocks (rows in order within a fold, then the fold into double), so the bits are
// the same. Blocks of channels walked down a fold's rows stride through memory by the row
// length, which the hardware prefetchers follow badly: 4096x1024's statistics from memory took
// 0.43-0.46 ms against 0.31-0.33 this way and 0.27-0.29 for a plain read (in L3, equal).
constexpr std::int64_t wide_chunk = 1024;  // channels: two float partials each, 8 KiB

// How far on the wide-row walks prefetch, in floats: about bytes_ahead of whole rows, at least
// the next row, never past the range's last row (0 on it: the line just read).
BNLAB_INLINE std::int64_t prefetch_distance(std::int64_t r, std::int64_t rows, std::int64_t row_stride,
                                            std::int64_t bytes_ahead) {
  const std::int64_t row_bytes = row_stride * static_cast<std::int64_t>(sizeof(float));
  const std::int64_t wanted = row_bytes >= bytes_ahead ? 1 : bytes_ahead / row_bytes;
  const std::int64_t left = rows - 1 - r;
  return (left < wanted ? left : wanted) * row_stride;
}
// The statistics, which read one tensor, prefetch 8 KiB on (two rows of 4096x1024). In the
// host's fast phase (copy ~100 GB/s) the walk one row ahead ran at 1.12-1.21 copy times where a
// plain read took 0.70, and two or four rows ahead took 1.02-1.11 (synthetic loop, 6 runs); in
// the usual phase (~55 GB/s) one, two and four rows ahead were equal (0.65-0.74). In the kernel,
// 4096x1024 forward training: 16 KiB ahead 0.70-0.75 -> 0.78-0.82 of the copy in the fast
// phase but 0.965 -> 0.93 (medians of 8 rounds) in the usual one; 8 KiB ahead 0.73-0.78 ->
// 0.79-0.85 in the fast phase (4 paired rounds) and 0.91 -> 0.92 (medians, about 30 paired
// rounds) in the usual one. The backward's sums read two tensors: 16 KiB ahead of each was
// 5-20% slower there, so they stay one row ahead.
constexpr std::int64_t statistics_bytes_ahead = 8 << 10;
constexpr std::int64_t one_row_ahead = 0;

// vector(r, c, a, b, ahead) adds row r's channels [c, c + rlanes) into the partials a and b and
// prefetches `ahead` floats further on (prefetch_distance); scalar(r, k, a, b) one channel of the
// width % rlanes left.
template <class Vector, class Scalar>
BNLAB_INLINE void sum_wide_rows(std::int64_t rows, std::int64_t row_stride, std::int64_t width,
                                std::int64_t bytes_ahead, double* total_a, double* total_b, Vector vector,
                                Scalar scalar) {
  alignas(64) float a[wide_chunk], b[wide_chunk];
  for (std::int64_t c0 = 0; c0 < width; c0 += wide_chunk) {
    // (No std::min or std::fill: no template of the standard library may be instantiated out of
    // line in this object, see the top of the file.)
    const std::int64_t n = width - c0 < wide_chunk ? width - c0 : wide_chunk, whole = n / rlanes * rlanes;
    for_tiles(rows, rows_per_fold, [&](std::int64_t r0, std::int64_t tile) BNLAB_LAMBDA_INLINE {
      for (std::int64_t k = 0; k < n; ++k) a[k] = b[k] = 0.0f;
      for (std::int64_t r = r0; r < r0 + tile; ++r) {
        const std::int64_t ahead = prefetch_distance(r, rows, row_stride, bytes_ahead);
        for (std::int64_t c = 0; c < whole; c += rlanes) {
          rvec va = rload(a + c), vb = rload(b + c);
          vector(r, c0 + c, va, vb, ahead);
          std::memcpy(a + c, &va, sizeof va);
          std::memcpy(b + c, &vb, sizeof vb);
        }
        for (std::int64_t k = whole; k < n; ++k) scalar(r, c0 + k, a[k], b[k]);
        // One row at a time (GCC's unroll-and-jam would interleave two rows: a strided walk).
        asm volatile("" ::: "memory");
      }
      for (std::int64_t c = 0; c < whole; c += rlanes) {
        rfold_into(rload(a + c), total_a + c0 + c);
        rfold_into(rload(b + c), total_b + c0 + c);
      }
      for (std::int64_t k = whole; k < n; ++k) {
        total_a[c0 + k] += a[k];
        total_b[c0 + k] += b[k];
      }
    });
  }
}

// One prefetch every 16 channels, a cache line where rows start on one (every row vector under
// AVX-512, every second under AVX2, every fourth in baseline x86-64). On a range's last row ahead
// is 0: the line just read, a no-op rather than a branch.
BNLAB_INLINE void prefetch_row_ahead(const float* p, std::int64_t c, std::int64_t ahead) {
  if (c % simd::lanes == 0) __builtin_prefetch(p + ahead, 0, 3);
}

void moments_rows_impl(const float* x, std::int64_t rows, std::int64_t row_stride, std::int64_t width,
                       const float* pivot, double* sum, double* sum_sq, bool row_walk) {
  if (row_walk && width > wide_rows_above) {
    sum_wide_rows(
        rows, row_stride, width, statistics_bytes_ahead, sum, sum_sq,
        [&](std::int64_t r, std::int64_t c, rvec& s, rvec& q, std::int64_t ahead) BNLAB_LAMBDA_INLINE {
          const float* p = x + r * row_stride + c;
          prefetch_row_ahead(p, c, ahead);
          const rvec d = rload(p) - rload(pivot + c);
          s += d;
          q += d * d;
        },
        [&](std::int64_t r, std::int64_t k, float& s, float& q) BNLAB_LAMBDA_INLINE {
          const float d = x[r * row_stride + k] - pivot[k];
          s += d;
          q += d * d;
        });
    return;
  }
  for_tiles(rows, rows_per_fold, [&](std::int64_t r0, std::int64_t tile) BNLAB_LAMBDA_INLINE {
    const float* xt = x + r0 * row_stride;
    // Wide rows in cache: blocks of 8 vectors (128 channels with AVX-512) where the row is that
    // wide, half as many switches from row to row as blocks of 4. Three arrays of 8 fit
    // AVX-512's 32 registers.
    auto block = [&](std::int64_t c0, auto k) BNLAB_LAMBDA_INLINE {
      moments_rows_vectors<decltype(k)::value>(xt + c0, tile, row_stride, pivot + c0, sum + c0, sum_sq + c0);
    };
    const std::int64_t c = width <= wide_rows_above ? for_vector_blocks<whole_row_vectors>(width, block)
                                                    : for_vector_blocks<block_vectors(3, 8)>(width, block);
    if (c == width) return;
    float s[rlanes] = {}, q[rlanes] = {};
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
    const rvec p = rbroadcast(pivot), m = rbroadcast(centered_mean), sc = rbroadcast(scale), sh = rbroadcast(shift);
    for (; i + simd::lanes <= len; i += simd::lanes) {
      prefetch_line(x + i, next_plane);
#pragma GCC unroll 4
      for (int part = 0; part < parts; ++part) {
        rvec v = ((rload(x + i + part * rlanes) - p) - m) * sc + sh;
        if constexpr (relu) v = v < 0.0f ? rvec{} : v;
        rstream(y + i + part * rlanes, v);
      }
    }
  }
  for (; i < len; ++i) {
    const float v = normalized(x[i], pivot, centered_mean, scale, shift);
    y[i] = relu ? relu_keep_nan(v) : v;
  }
}

void normalize_contiguous_impl(const float* x, float* y, std::int64_t len, float pivot, float centered_mean,
                               float scale, float shift, bool relu, bool stream, std::int64_t next_plane) {
  with_flags(relu, stream, [&](auto relu_on, auto stream_on) BNLAB_LAMBDA_INLINE {
    normalize_contiguous_body<decltype(relu_on)::value, decltype(stream_on)::value>(x, y, len, pivot, centered_mean,
                                                                                    scale, shift, next_plane);
  });
}

// Streaming row by row needs whole lines: rows that start on a line and span whole vectors.
BNLAB_INLINE bool rows_can_stream(const float* y, std::int64_t row_stride, std::int64_t width) {
  return simd::line_aligned(y) && row_stride % simd::lanes == 0 && width % simd::lanes == 0;
}

// Stores one row vector of results: streamed (no read for ownership of the line) or plain.
template <bool stream>
BNLAB_INLINE void store(float* p, rvec v) {
  if constexpr (stream)
    rstream(p, v);
  else
    std::memcpy(p, &v, sizeof v);
}

// Wide rows in cache go through the backward's input-gradient pass in tiles of this many rows,
// all channels of a tile before the next.
constexpr std::int64_t rows_per_tile = 8;

// Rows wider than one register block go row after row in address order, each vector's
// constants loaded from the per-channel arrays (in L1). A tile of rows walked one block of
// channels at a time, the constants in registers, strides through memory by the row length:
// 4096x1024 inference (cold caches) ran at 1.27-1.38 copy times that way, 1.04-1.10 row by row.
// The backward's input-gradient pass goes row by row too for large tensors (row_walk), with each
// line of x and dy prefetched one row ahead: 3-4% faster on 4096x1024 than its tiles of 8 rows
// (6 paired rounds, with and without the ReLU; row by row without the prefetch it had been 10%
// slower with the ReLU). In cache it keeps the tiles, faster there.

// vector(r, c, ahead) for the whole vectors of row r (`ahead`: how far on to prefetch, the
// next row or 0 on the last), scalar(r, k) for its last width % rlanes channels.
template <class Vector, class Scalar>
BNLAB_INLINE void for_wide_rows(std::int64_t rows, std::int64_t row_stride, std::int64_t width, Vector vector,
                                Scalar scalar) {
  const std::int64_t whole = width / rlanes * rlanes;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t ahead = prefetch_distance(r, rows, row_stride, one_row_ahead);
    for (std::int64_t c = 0; c < whole; c += rlanes) vector(r, c, ahead);
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
  rvec p[K], m[K], sc[K], sh[K];
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    p[k] = rload(pivot + k * rlanes);
    m[k] = rload(centered_mean + k * rlanes);
    sc[k] = rload(scale + k * rlanes);
    sh[k] = rload(shift + k * rlanes);
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * row_stride;
    float* out = y + r * row_stride;
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) {
      rvec v = ((rload(in + k * rlanes) - p[k]) - m[k]) * sc[k] + sh[k];
      if constexpr (relu) v = v < 0.0f ? rvec{} : v;
      store<stream>(out + k * rlanes, v);
    }
  }
}

template <bool relu, bool stream>
BNLAB_INLINE void normalize_rows_body(const float* x, float* y, std::int64_t rows, std::int64_t row_stride,
                                      std::int64_t width, const float* pivot, const float* centered_mean,
                                      const float* scale, const float* shift) {
  if (width > wide_rows_above) {
    for_wide_rows(
        rows, row_stride, width,
        [&](std::int64_t r, std::int64_t c, std::int64_t) BNLAB_LAMBDA_INLINE {
          // (No prefetch: one row ahead made no difference here, 6 paired rounds.)
          const float* in = x + r * row_stride;
          rvec v =
              ((rload(in + c) - rload(pivot + c)) - rload(centered_mean + c)) * rload(scale + c) + rload(shift + c);
          if constexpr (relu) v = v < 0.0f ? rvec{} : v;
          store<stream>(y + r * row_stride + c, v);
        },
        [&](std::int64_t r, std::int64_t k) BNLAB_LAMBDA_INLINE {
          const float v = normalized(x[r * row_stride + k], pivot[k], centered_mean[k], scale[k], shift[k]);
          y[r * row_stride + k] = relu ? relu_keep_nan(v) : v;
        });
    return;
  }
  // Narrow rows: one block of registers walks all the rows.
  const std::int64_t c =
      for_vector_blocks<whole_row_vectors>(width, [&](std::int64_t c0, auto k) BNLAB_LAMBDA_INLINE {
        normalize_rows_vectors<relu, stream, decltype(k)::value>(x + c0, y + c0, rows, row_stride, pivot + c0,
                                                                 centered_mean + c0, scale + c0, shift + c0);
      });
  for (std::int64_t r = 0; c < width && r < rows; ++r) {
    const float* in = x + r * row_stride;
    float* out = y + r * row_stride;
    for (std::int64_t k = c; k < width; ++k) {
      const float v = normalized(in[k], pivot[k], centered_mean[k], scale[k], shift[k]);
      out[k] = relu ? relu_keep_nan(v) : v;
    }
  }
}

void normalize_rows_impl(const float* x, float* y, std::int64_t rows, std::int64_t row_stride, std::int64_t width,
                         const float* pivot, const float* centered_mean, const float* scale, const float* shift,
                         bool relu, bool stream) {
  stream = stream && rows_can_stream(y, row_stride, width);
  with_flags(relu, stream, [&](auto relu_on, auto stream_on) BNLAB_LAMBDA_INLINE {
    normalize_rows_body<decltype(relu_on)::value, decltype(stream_on)::value>(x, y, rows, row_stride, width, pivot,
                                                                              centered_mean, scale, shift);
  });
}

template <bool relu>
BNLAB_INLINE void grad_sums_contiguous_body(const float* x, const float* dy, std::int64_t len, float mean, float scale,
                                            float shift, double& sum_dy, double& sum_dy_xc, std::int64_t next_plane) {
  const rvec m = rbroadcast(mean), sc = rbroadcast(scale), sh = rbroadcast(shift);
  contiguous_sums(
      len, sum_dy, sum_dy_xc,
      [&](std::int64_t i, rvec(&a)[parts], rvec(&b)[parts]) BNLAB_LAMBDA_INLINE {
        prefetch_line(x + i, next_plane);
        prefetch_line(dy + i, next_plane);
#pragma GCC unroll 4
        for (int part = 0; part < parts; ++part) {
          const rvec xc = rload(x + i + part * rlanes) - m;
          rvec g = relu ? rload_eager(dy + i + part * rlanes) : rload(dy + i + part * rlanes);
          if constexpr (relu) g = rrelu_mask(xc * sc + sh, g);
          a[part] += g;
          b[part] += g * xc;
        }
      },
      [&](std::int64_t i, double& a, double& b) BNLAB_LAMBDA_INLINE {
        const float xc = x[i] - mean;
        const float g = relu ? relu_mask(xc * scale + shift, dy[i]) : dy[i];
        a += g;
        b += g * xc;
      });
}

void grad_sums_contiguous_impl(const float* x, const float* dy, std::int64_t len, float mean, float scale, float shift,
                               bool relu, double& sum_dy, double& sum_dy_xc, std::int64_t next_plane) {
  if (relu)
    grad_sums_contiguous_body<true>(x, dy, len, mean, scale, shift, sum_dy, sum_dy_xc, next_plane);
  else
    grad_sums_contiguous_body<false>(x, dy, len, mean, scale, shift, sum_dy, sum_dy_xc, next_plane);
}

// The backward's two terms for channels [c, c + rlanes) at x + at and dy + at, in the wide-row
// walks: x - mean, and dy masked by the fused ReLU; each line of x and dy is prefetched
// `ahead` floats on.
struct BackwardTerms {
  rvec xc, g;
};
template <bool relu>
BNLAB_INLINE BackwardTerms backward_terms(const float* x, const float* dy, std::int64_t at, std::int64_t c,
                                          std::int64_t ahead, const float* mean, const float* scale,
                                          const float* shift) {
  prefetch_row_ahead(x + at, c, ahead);
  prefetch_row_ahead(dy + at, c, ahead);
  const rvec xc = rload(x + at) - rload(mean + c);
  rvec g = relu ? rload_eager(dy + at) : rload(dy + at);
  if constexpr (relu) g = rrelu_mask(xc * rload(scale + c) + rload(shift + c), g);
  return {xc, g};
}

template <bool relu, int K>
BNLAB_INLINE void grad_sums_rows_vectors(const float* x, const float* dy, std::int64_t rows, std::int64_t row_stride,
                                         const float* mean, const float* scale, const float* shift, double* sum_dy,
                                         double* sum_dy_xc) {
  rvec m[K], sc[K], sh[K], a[K], b[K];
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    m[k] = rload(mean + k * rlanes);
    sc[k] = rload(scale + k * rlanes);
    sh[k] = rload(shift + k * rlanes);
    a[k] = b[k] = rvec{};
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * row_stride;
    const float* dyr = dy + r * row_stride;
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) {
      const rvec xc = rload(xr + k * rlanes) - m[k];
      rvec g = relu ? rload_eager(dyr + k * rlanes) : rload(dyr + k * rlanes);
      if constexpr (relu) g = rrelu_mask(xc * sc[k] + sh[k], g);
      a[k] += g;
      b[k] += g * xc;
    }
  }
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    rfold_into(a[k], sum_dy + k * rlanes);
    rfold_into(b[k], sum_dy_xc + k * rlanes);
  }
}

template <bool relu>
BNLAB_INLINE void grad_sums_rows_body(const float* x, const float* dy, std::int64_t rows, std::int64_t row_stride,
                                      std::int64_t width, const float* mean, const float* scale, const float* shift,
                                      double* sum_dy, double* sum_dy_xc, bool row_walk) {
  // Below AVX-512 narrow rows walk this way too: the register block's five arrays of
  // 64 channels (40 registers under AVX2) spill, and the partials in L1 made the AVX2 NHWC
  // backward 13% faster (4 paired rounds; with the ReLU equal). The statistics' three arrays
  // were 6-8% slower this way and stay in registers.
  if (row_walk && (width > wide_rows_above || rlanes < simd::lanes)) {
    sum_wide_rows(
        rows, row_stride, width, one_row_ahead, sum_dy, sum_dy_xc,
        [&](std::int64_t r, std::int64_t c, rvec& a, rvec& b, std::int64_t ahead) BNLAB_LAMBDA_INLINE {
          const BackwardTerms t = backward_terms<relu>(x, dy, r * row_stride + c, c, ahead, mean, scale, shift);
          a += t.g;
          b += t.g * t.xc;
        },
        [&](std::int64_t r, std::int64_t k, float& a, float& b) BNLAB_LAMBDA_INLINE {
          const float xc = x[r * row_stride + k] - mean[k];
          const float g = relu ? relu_mask(xc * scale[k] + shift[k], dy[r * row_stride + k]) : dy[r * row_stride + k];
          a += g;
          b += g * xc;
        });
    return;
  }
  for_tiles(rows, rows_per_fold, [&](std::int64_t r0, std::int64_t tile) BNLAB_LAMBDA_INLINE {
    const float* xt = x + r0 * row_stride;
    const float* dyt = dy + r0 * row_stride;
    auto block = [&](std::int64_t c0, auto k) BNLAB_LAMBDA_INLINE {
      grad_sums_rows_vectors<relu, decltype(k)::value>(xt + c0, dyt + c0, tile, row_stride, mean + c0, scale + c0,
                                                       shift + c0, sum_dy + c0, sum_dy_xc + c0);
    };
    // Narrow rows, or wide ones in cache, in blocks of 64 channels, registers or not (AVX2's
    // register budget would cut them to 16 channels: the AVX2 NHWC backward ran 25% slower).
    const std::int64_t c = for_vector_blocks<whole_row_vectors>(width, block);
    if (c == width) return;
    float a[rlanes] = {}, b[rlanes] = {};
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
                         std::int64_t width, const float* mean, const float* scale, const float* shift, bool relu,
                         double* sum_dy, double* sum_dy_xc, bool row_walk) {
  if (relu)
    grad_sums_rows_body<true>(x, dy, rows, row_stride, width, mean, scale, shift, sum_dy, sum_dy_xc, row_walk);
  else
    grad_sums_rows_body<false>(x, dy, rows, row_stride, width, mean, scale, shift, sum_dy, sum_dy_xc, row_walk);
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
    const rvec m = rbroadcast(mean), va = rbroadcast(a), vb = rbroadcast(b), vc = rbroadcast(c),
               sc = rbroadcast(scale), sh = rbroadcast(shift);
    for (; i + simd::lanes <= len; i += simd::lanes) {
      prefetch_line(x + i, next_plane);
      prefetch_line(dy + i, next_plane);
#pragma GCC unroll 4
      for (int part = 0; part < parts; ++part) {
        const std::int64_t k = i + part * rlanes;
        const rvec xc = rload(x + k) - m;
        rvec g = relu ? rload_eager(dy + k) : rload(dy + k);
        if constexpr (relu) g = rrelu_mask(xc * sc + sh, g);
        rstream(dx + k, g * va + xc * vb + vc);
      }
    }
  }
  for (; i < len; ++i) dx[i] = grad_input<relu>(x[i], dy[i], mean, a, b, c, scale, shift);
}

void grad_input_contiguous_impl(const float* x, const float* dy, float* dx, std::int64_t len, float mean, float a,
                                float b, float c, float scale, float shift, bool relu, bool stream,
                                std::int64_t next_plane) {
  with_flags(relu, stream, [&](auto relu_on, auto stream_on) BNLAB_LAMBDA_INLINE {
    grad_input_contiguous_body<decltype(relu_on)::value, decltype(stream_on)::value>(x, dy, dx, len, mean, a, b, c,
                                                                                     scale, shift, next_plane);
  });
}

template <bool relu, bool stream, int K>
BNLAB_INLINE void grad_input_rows_vectors(const float* x, const float* dy, float* dx, std::int64_t rows,
                                          std::int64_t row_stride, const float* mean, const float* a, const float* b,
                                          const float* c, const float* scale, const float* shift) {
  rvec m[K], va[K], vb[K], vc[K], sc[K], sh[K];
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    m[k] = rload(mean + k * rlanes);
    va[k] = rload(a + k * rlanes);
    vb[k] = rload(b + k * rlanes);
    vc[k] = rload(c + k * rlanes);
    if constexpr (relu) {
      sc[k] = rload(scale + k * rlanes);
      sh[k] = rload(shift + k * rlanes);
    }
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * row_stride;
    const float* dyr = dy + r * row_stride;
    float* dxr = dx + r * row_stride;
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) {
      const rvec xc = rload(xr + k * rlanes) - m[k];
      rvec g = relu ? rload_eager(dyr + k * rlanes) : rload(dyr + k * rlanes);
      if constexpr (relu) g = rrelu_mask(xc * sc[k] + sh[k], g);
      store<stream>(dxr + k * rlanes, g * va[k] + xc * vb[k] + vc[k]);
    }
  }
}

template <bool relu, bool stream>
BNLAB_INLINE void grad_input_rows_body(const float* x, const float* dy, float* dx, std::int64_t rows,
                                       std::int64_t row_stride, std::int64_t width, const float* mean, const float* a,
                                       const float* b, const float* c, const float* scale, const float* shift,
                                       bool row_walk) {
  if (row_walk && width > wide_rows_above) {
    for_wide_rows(
        rows, row_stride, width,
        [&](std::int64_t r, std::int64_t k, std::int64_t ahead) BNLAB_LAMBDA_INLINE {
          const BackwardTerms t = backward_terms<relu>(x, dy, r * row_stride + k, k, ahead, mean, scale, shift);
          store<stream>(dx + r * row_stride + k, t.g * rload(a + k) + t.xc * rload(b + k) + rload(c + k));
        },
        [&](std::int64_t r, std::int64_t k) BNLAB_LAMBDA_INLINE {
          const std::int64_t i = r * row_stride + k;
          dx[i] = grad_input<relu>(x[i], dy[i], mean[k], a[k], b[k], c[k], scale[k], shift[k]);
        });
    return;
  }
  // Narrow rows, or wide ones in cache: blocks of registers walk tiles of rows (all the rows
  // when narrow).
  const std::int64_t tile_rows = width <= wide_rows_above ? rows : rows_per_tile;
  for_tiles(rows, tile_rows, [&](std::int64_t r0, std::int64_t tile) BNLAB_LAMBDA_INLINE {
    const std::int64_t at = r0 * row_stride;
    auto block = [&](std::int64_t c0, auto k) BNLAB_LAMBDA_INLINE {
      grad_input_rows_vectors<relu, stream, decltype(k)::value>(x + at + c0, dy + at + c0, dx + at + c0, tile,
                                                                row_stride, mean + c0, a + c0, b + c0, c + c0,
                                                                scale + c0, shift + c0);
    };
    const std::int64_t k0 = width <= wide_rows_above ? for_vector_blocks<whole_row_vectors>(width, block)
                                                     : for_vector_blocks<block_vectors(6, 4)>(width, block);
    for (std::int64_t r = r0; k0 < width && r < r0 + tile; ++r) {
      const float* xr = x + r * row_stride;
      const float* dyr = dy + r * row_stride;
      float* dxr = dx + r * row_stride;
      for (std::int64_t k = k0; k < width; ++k)
        dxr[k] = grad_input<relu>(xr[k], dyr[k], mean[k], a[k], b[k], c[k], scale[k], shift[k]);
    }
  });
}

void grad_input_rows_impl(const float* x, const float* dy, float* dx, std::int64_t rows, std::int64_t row_stride,
                          std::int64_t width, const float* mean, const float* a, const float* b, const float* c,
                          const float* scale, const float* shift, bool relu, bool stream, bool row_walk) {
  stream = stream && rows_can_stream(dx, row_stride, width);
  with_flags(relu, stream, [&](auto relu_on, auto stream_on) BNLAB_LAMBDA_INLINE {
    grad_input_rows_body<decltype(relu_on)::value, decltype(stream_on)::value>(x, dy, dx, rows, row_stride, width, mean,
                                                                               a, b, c, scale, shift, row_walk);
  });
}

// Layer norm's forward over one row's run of channels (header).
template <bool has_gamma, bool has_beta, bool stream>
BNLAB_INLINE void normalize_across_channels_body(const float* x, const float* gamma, const float* beta, float* y,
                                                 std::int64_t len, float pivot, float centered_mean, float inv_std) {
  auto scalar = [&](std::int64_t i) BNLAB_LAMBDA_INLINE {
    float v = ((x[i] - pivot) - centered_mean) * inv_std;
    if constexpr (has_gamma) v = v * gamma[i];
    if constexpr (has_beta) v = v + beta[i];
    y[i] = v;
  };
  std::int64_t i = 0;
  if constexpr (stream)  // whole lines only: up to the first line boundary one by one
    for (; i < len && !simd::line_aligned(y + i); ++i) scalar(i);
  const rvec p = rbroadcast(pivot), m = rbroadcast(centered_mean), s = rbroadcast(inv_std);
  constexpr std::int64_t step = stream ? simd::lanes : rlanes;
  for (; i + step <= len; i += step) {
#pragma GCC unroll 4
    for (std::int64_t k = i; k < i + step; k += rlanes) {
      rvec v = ((rload(x + k) - p) - m) * s;
      if constexpr (has_gamma) v = v * rload(gamma + k);
      if constexpr (has_beta) v = v + rload(beta + k);
      store<stream>(y + k, v);
    }
  }
  for (; i < len; ++i) scalar(i);
}

void normalize_across_channels_impl(const float* x, const float* gamma, const float* beta, float* y, std::int64_t len,
                                    float pivot, float centered_mean, float inv_std, bool stream) {
  with_flags(gamma, beta, [&](auto gamma_on, auto beta_on) BNLAB_LAMBDA_INLINE {
    if (stream)
      normalize_across_channels_body<decltype(gamma_on)::value, decltype(beta_on)::value, true>(
          x, gamma, beta, y, len, pivot, centered_mean, inv_std);
    else
      normalize_across_channels_body<decltype(gamma_on)::value, decltype(beta_on)::value, false>(
          x, gamma, beta, y, len, pivot, centered_mean, inv_std);
  });
}

// Layer norm's backward over one row's run of channels (header). The float partials of
// acc_dy and acc_dy_xhat are read and written in place: the run is in L1 after the first pass.
template <bool has_gamma, bool accumulate>
BNLAB_INLINE void grad_sums_across_channels_body(const float* x, const float* dy, const float* gamma, std::int64_t len,
                                                 float mean, float inv_std, double& sum_g, double& sum_g_xc,
                                                 float* acc_dy, float* acc_dy_xhat, std::int64_t next_run) {
  const rvec m = rbroadcast(mean), s = rbroadcast(inv_std);
  contiguous_sums(
      len, sum_g, sum_g_xc,
      [&](std::int64_t i, rvec(&a)[parts], rvec(&b)[parts]) BNLAB_LAMBDA_INLINE {
        prefetch_line(x + i, next_run);
        prefetch_line(dy + i, next_run);
#pragma GCC unroll 4
        for (int part = 0; part < parts; ++part) {
          const std::int64_t k = i + part * rlanes;
          const rvec xc = rload(x + k) - m;
          const rvec d = rload(dy + k);
          if constexpr (accumulate) {
            store<false>(acc_dy + k, rload(acc_dy + k) + d);
            store<false>(acc_dy_xhat + k, rload(acc_dy_xhat + k) + d * (xc * s));
          }
          const rvec g = has_gamma ? d * rload(gamma + k) : d;
          a[part] += g;
          b[part] += g * xc;
        }
      },
      [&](std::int64_t i, double& a, double& b) BNLAB_LAMBDA_INLINE {
        const float xc = x[i] - mean;
        const float d = dy[i];
        if constexpr (accumulate) {
          acc_dy[i] += d;
          acc_dy_xhat[i] += d * (xc * inv_std);
        }
        const float g = has_gamma ? d * gamma[i] : d;
        a += g;
        b += g * xc;
      });
}

void grad_sums_across_channels_impl(const float* x, const float* dy, const float* gamma, std::int64_t len, float mean,
                                    float inv_std, double& sum_g, double& sum_g_xc, float* acc_dy, float* acc_dy_xhat,
                                    std::int64_t next_run) {
  with_flags(gamma, acc_dy, [&](auto gamma_on, auto accumulate) BNLAB_LAMBDA_INLINE {
    grad_sums_across_channels_body<decltype(gamma_on)::value, decltype(accumulate)::value>(
        x, dy, gamma, len, mean, inv_std, sum_g, sum_g_xc, acc_dy, acc_dy_xhat, next_run);
  });
}

template <bool has_gamma, bool stream>
BNLAB_INLINE void grad_input_across_channels_body(const float* x, const float* dy, const float* gamma, float* dx,
                                                  std::int64_t len, float mean, float inv_std, float b, float c) {
  auto scalar = [&](std::int64_t i) BNLAB_LAMBDA_INLINE {
    const float g = has_gamma ? dy[i] * gamma[i] : dy[i];
    dx[i] = g * inv_std + (x[i] - mean) * b + c;
  };
  std::int64_t i = 0;
  if constexpr (stream)  // whole lines only: up to the first line boundary one by one
    for (; i < len && !simd::line_aligned(dx + i); ++i) scalar(i);
  const rvec m = rbroadcast(mean), va = rbroadcast(inv_std), vb = rbroadcast(b), vc = rbroadcast(c);
  constexpr std::int64_t step = stream ? simd::lanes : rlanes;
  for (; i + step <= len; i += step) {
#pragma GCC unroll 4
    for (std::int64_t k = i; k < i + step; k += rlanes) {
      const rvec g = has_gamma ? rload(dy + k) * rload(gamma + k) : rload(dy + k);
      store<stream>(dx + k, g * va + (rload(x + k) - m) * vb + vc);
    }
  }
  for (; i < len; ++i) scalar(i);
}

void grad_input_across_channels_impl(const float* x, const float* dy, const float* gamma, float* dx, std::int64_t len,
                                     float mean, float inv_std, float b, float c, bool stream) {
  with_flags(gamma, stream, [&](auto gamma_on, auto stream_on) BNLAB_LAMBDA_INLINE {
    grad_input_across_channels_body<decltype(gamma_on)::value, decltype(stream_on)::value>(x, dy, gamma, dx, len, mean,
                                                                                           inv_std, b, c);
  });
}

}  // namespace

// This file is compiled once per instruction set (CMakeLists.txt: -mavx512f, -mavx2, baseline),
// each object defining its own table; batchnorm_loops_dispatch.cpp picks one at run time.
extern const LoopTable BNLAB_LOOPS_TABLE;
const LoopTable BNLAB_LOOPS_TABLE = {
    moments_contiguous_impl,         moments_rows_impl,
    normalize_contiguous_impl,       normalize_rows_impl,
    grad_sums_contiguous_impl,       grad_sums_rows_impl,
    grad_input_contiguous_impl,      grad_input_rows_impl,
    normalize_across_channels_impl,  grad_sums_across_channels_impl,
    grad_input_across_channels_impl,
};

}  // namespace bnlab::kernels::loops
