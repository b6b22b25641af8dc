#pragma once
// The inner loops of the BatchNorm kernels, one per (pass, memory order). The public functions
// in batchnorm.cpp validate, split the work into tasks and combine partial sums; these loops
// touch the data. Each is compiled once per vector width (AVX-512, AVX2, baseline x86-64) and
// chosen at load time (GCC function multi-versioning, src/kernels/simd.hpp).
//
// Two memory orders cover the three layouts:
//   contiguous: one (n, c) plane of an NCHW tensor, len = H*W floats of one channel
//   rows:       NC and NHWC, `rows` rows of `row_stride` floats; the loop covers `width`
//               channels starting at the pointer it is given (the kernels pass whole rows)
//
// Determinism: a reduction over a contiguous plane uses 16 float lanes whatever the vector
// width (a 16-lane vector type that the compiler splits into 1, 2 or 4 registers), folded into
// double every 16 steps and across lanes in lane order; a reduction over rows is per channel,
// so vectorizing across channels does not change any channel's order of additions.

#include <cstdint>

namespace bnlab::kernels::loops {

// next_plane (contiguous loops): the distance in floats from this plane to the one the caller
// reads next, or 0. NCHW's planes of one channel lie C*H*W floats apart, each too short for the
// hardware prefetcher to get going, so the loops prefetch the next plane while they read this one.
//
// Moments about a pivot: sum += sum(x - pivot), sum_sq += sum((x - pivot)^2).
void moments_contiguous(const float* x, std::int64_t len, float pivot, double& sum, double& sum_sq,
                        std::int64_t next_plane = 0);
void moments_rows(const float* x, std::int64_t rows, std::int64_t row_stride, std::int64_t width, const float* pivot,
                  double* sum, double* sum_sq, bool row_walk);

// stream: write the output with non-temporal stores where whole 64-byte lines allow (the caller
// sets it for outputs too large to stay in cache, and fences before the output is read).
// row_walk (row loops): walk rows wider than 64 channels one after another in address order,
// with the sums' float partials in L1 and software prefetches one row ahead (below AVX-512 the
// backward's sums walk narrow rows that way too), instead of blocks of registers over tiles of
// rows. The caller decides by the tensor's size: the walk is faster for tensors read from
// memory, the blocks for small ones in cache (32x300 forward training 2.2 against 2.5 us).
// Either way the same bits.
// y = act(((x - pivot) - centered_mean) * scale + shift). Subtracting the pivot first keeps
// the float32 result exact when the mean is large against the spread (mean 1e4, std 0.1).
void normalize_contiguous(const float* x, float* y, std::int64_t len, float pivot, float centered_mean, float scale,
                          float shift, bool relu, bool stream, std::int64_t next_plane = 0);
void normalize_rows(const float* x, float* y, std::int64_t rows, std::int64_t row_stride, std::int64_t width,
                    const float* pivot, const float* centered_mean, const float* scale, const float* shift, bool relu,
                    bool stream);

// Backward sums: sum_dy += sum(dy'), sum_dy_xc += sum(dy' * (x - mean)), where dy' is dy zeroed
// where (x - mean) * scale + shift <= 0 when relu is set (NaN lets it pass).
void grad_sums_contiguous(const float* x, const float* dy, std::int64_t len, float mean, float scale, float shift,
                          bool relu, double& sum_dy, double& sum_dy_xc, std::int64_t next_plane = 0);
void grad_sums_rows(const float* x, const float* dy, std::int64_t rows, std::int64_t row_stride, std::int64_t width,
                    const float* mean, const float* scale, const float* shift, bool relu, double* sum_dy,
                    double* sum_dy_xc, bool row_walk);

// dx = dy' * a + (x - mean) * b + c  (dy' as above; scale and shift only serve the mask).
void grad_input_contiguous(const float* x, const float* dy, float* dx, std::int64_t len, float mean, float a, float b,
                           float c, float scale, float shift, bool relu, bool stream, std::int64_t next_plane = 0);
void grad_input_rows(const float* x, const float* dy, float* dx, std::int64_t rows, std::int64_t row_stride,
                     std::int64_t width, const float* mean, const float* a, const float* b, const float* c,
                     const float* scale, const float* shift, bool relu, bool stream, bool row_walk);

// Layer norm and group norm on NC: a run of one sample's channels that share one mean and
// inverse standard deviation, gamma and beta per channel (null: 1 and 0).
// Forward: y = ((x - pivot) - centered_mean) * inv_std * gamma + beta; stream as above.
void normalize_across_channels(const float* x, const float* gamma, const float* beta, float* y, std::int64_t len,
                               float pivot, float centered_mean, float inv_std, bool stream);
// Backward, with g = dy * gamma.
// Sums: sum_g += sum(g), sum_g_xc += sum(g * (x - mean)), in the contiguous loops' fixed lane
// order. Where acc_dy is not null it also adds each channel's dbeta and dgamma terms in float:
// acc_dy[k] += dy[k], acc_dy_xhat[k] += dy[k] * ((x[k] - mean) * inv_std). next_run: as
// next_plane, the distance to the run the caller reads next (the next row's), or 0.
void grad_sums_across_channels(const float* x, const float* dy, const float* gamma, std::int64_t len, float mean,
                               float inv_std, double& sum_g, double& sum_g_xc, float* acc_dy, float* acc_dy_xhat,
                               std::int64_t next_run = 0);
// dx = g * inv_std + (x - mean) * b + c; stream as above.
void grad_input_across_channels(const float* x, const float* dy, const float* gamma, float* dx, std::int64_t len,
                                float mean, float inv_std, float b, float c, bool stream);

// Tensors at least this large walk their wide rows in address order (the loops' row_walk) in
// the statistics and the input-gradient pass; smaller ones use blocks of registers. Measured
// on 1024-channel rows, 2 threads: from memory the walk wins at every size from 1 MiB, but in
// cache the statistics in blocks are faster up to 2 MiB (35 against 42-53 us for 512 rows, warm)
// and equal from 4 MiB (59-66 us either way, 1024 rows). 32x300: 2.2 us in blocks, 2.5 walking.
inline constexpr std::int64_t row_walk_threshold_bytes = std::int64_t{4} << 20;

// Outputs at least this large are written with non-temporal stores (the loops' stream): they
// cannot stay in cache for the next layer anyway, and streaming skips the read-for-ownership of
// every line.
inline constexpr std::int64_t streaming_threshold_bytes = std::int64_t{16} << 20;

// The widest instruction set the loops run with on this CPU: "avx512f", "avx2" or "x86-64".
const char* selected_instruction_set();

}  // namespace bnlab::kernels::loops
