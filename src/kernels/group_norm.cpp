#include "bnlab/kernels/group_norm.hpp"

#include <fmt/format.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/batchnorm_loops.hpp"
#include "kernels/parallel.hpp"
#include "kernels/shape_checks.hpp"

namespace bnlab::kernels {
namespace {

// Below this many values a call runs on the calling thread (a parallel region costs more).
constexpr std::int64_t parallel_threshold = 1 << 15;

// One thread's per-channel and per-group arrays for one sample at a time. Kept per thread and
// only grown, so calls after the widest one allocate nothing.
struct ChannelArrays {
  std::vector<float>& pivot;
  std::vector<float>& centered;
  std::vector<float>& scale;
  std::vector<float>& shift;
  std::vector<double>& sum;
  std::vector<double>& sum_sq;
  explicit ChannelArrays(std::int64_t channels)
      : pivot(grown(pivot_, channels)),
        centered(grown(centered_, channels)),
        scale(grown(scale_, channels)),
        shift(grown(shift_, channels)),
        sum(grown(sum_, channels)),
        sum_sq(grown(sum_sq_, channels)) {}

 private:
  template <class T>
  static std::vector<T>& grown(std::vector<T>& v, std::int64_t count) {
    if (v.size() < static_cast<std::size_t>(count)) v.resize(static_cast<std::size_t>(count));
    return v;
  }
  static thread_local std::vector<float> pivot_, centered_, scale_, shift_;
  static thread_local std::vector<double> sum_, sum_sq_;
};
thread_local std::vector<float> ChannelArrays::pivot_, ChannelArrays::centered_, ChannelArrays::scale_,
    ChannelArrays::shift_;
thread_local std::vector<double> ChannelArrays::sum_, ChannelArrays::sum_sq_;

void check_groups(const GroupNormShape& shape, const char* who) {
  detail::check_shape(BatchNormShape{shape.batch, shape.channels, shape.spatial, shape.layout}, who);
  if (shape.groups < 1 || shape.channels % shape.groups != 0)
    throw std::invalid_argument(fmt::format("{}: groups must be >= 1 and divide the channels, got {} groups for C={}",
                                            who, shape.groups, shape.channels));
}

}  // namespace

void group_norm_forward(const GroupNormShape& shape, const float* x, const float* gamma, const float* beta,
                        float epsilon, float* y, float* saved_mean, float* saved_inv_std) {
  constexpr const char* who = "group_norm_forward";
  check_groups(shape, who);
  detail::check_epsilon(epsilon, who);
  detail::check_pointer(x, "x", who);
  detail::check_pointer(y, "y", who);
  detail::check_pointer(saved_mean, "saved_mean", who);
  detail::check_pointer(saved_inv_std, "saved_inv_std", who);
  const std::int64_t C = shape.channels, S = shape.spatial, G = shape.groups, per_group = shape.channels_per_group();
  const double m = static_cast<double>(shape.count_per_group());
  const bool row_walk = shape.size() * static_cast<std::int64_t>(sizeof(float)) >= loops::row_walk_threshold_bytes;
  // The moments are taken about a pivot, the group's first value (BatchNorm's loops, which sum
  // 16 float lanes into double in a fixed order): var = E[(x - p)^2] - E[x - p]^2 keeps its
  // precision for data far from zero, and one pass suffices.
  auto statistics = [&](std::int64_t n, std::int64_t g, float pivot, double sum, double sum_sq, float& centered,
                        float& inv_std) {
    const double centered_mean = sum / m;
    const double variance = std::max(sum_sq / m - centered_mean * centered_mean, 0.0);
    centered = static_cast<float>(centered_mean);
    inv_std = static_cast<float>(1.0 / std::sqrt(variance + static_cast<double>(epsilon)));
    saved_mean[n * G + g] = static_cast<float>(static_cast<double>(pivot) + centered_mean);
    saved_inv_std[n * G + g] = inv_std;
  };
  const bool parallel = detail::worth_threads(shape.size(), parallel_threshold);
  // NC's y streamed past the caches when large (the image layouts' passes do not stream); each
  // thread fences its own stores before the region ends.
  const bool stream =
      S == 1 && shape.size() * static_cast<std::int64_t>(sizeof(float)) >= loops::streaming_threshold_bytes;
  detail::for_ranges(shape.batch, parallel, 1, [&](std::int64_t first, std::int64_t end) {
    ChannelArrays arrays(C);
    for (std::int64_t n = first; n < end; ++n) {
      const float* xn = x + n * C * S;
      float* yn = y + n * C * S;
      if (shape.layout == Layout::NCHW) {  // a group is per_group whole planes
        for (std::int64_t g = 0; g < G; ++g) {
          const float pivot = xn[g * per_group * S];
          double sum = 0.0, sum_sq = 0.0;
          for (std::int64_t c = g * per_group; c < (g + 1) * per_group; ++c)
            loops::moments_contiguous(xn + c * S, S, pivot, sum, sum_sq);
          float centered, inv_std;
          statistics(n, g, pivot, sum, sum_sq, centered, inv_std);
          for (std::int64_t c = g * per_group; c < (g + 1) * per_group; ++c)
            loops::normalize_contiguous(xn + c * S, yn + c * S, S, pivot, centered, (gamma ? gamma[c] : 1.0f) * inv_std,
                                        beta ? beta[c] : 0.0f, false, false);
        }
        continue;
      }
      if (S == 1) {  // NC: a group is one run of a row's channels
        for (std::int64_t g = 0; g < G; ++g) {
          const std::int64_t c0 = g * per_group;
          const float pivot = xn[c0];
          double sum = 0.0, sum_sq = 0.0;
          loops::moments_contiguous(xn + c0, per_group, pivot, sum, sum_sq, n + 1 < shape.batch ? C : 0);
          float centered, inv_std;
          statistics(n, g, pivot, sum, sum_sq, centered, inv_std);
          loops::normalize_across_channels(xn + c0, gamma ? gamma + c0 : nullptr, beta ? beta + c0 : nullptr, yn + c0,
                                           per_group, pivot, centered, inv_std, stream);
        }
        continue;
      }
      // NHWC: S rows of C channels; each channel's sums over the rows come first, then the group
      // adds its channels.
      for (std::int64_t g = 0; g < G; ++g)
        for (std::int64_t c = g * per_group; c < (g + 1) * per_group; ++c) arrays.pivot[c] = xn[g * per_group];
      std::fill(arrays.sum.begin(), arrays.sum.begin() + C, 0.0);  // the arrays may be longer (they only grow)
      std::fill(arrays.sum_sq.begin(), arrays.sum_sq.begin() + C, 0.0);
      loops::moments_rows(xn, S, C, C, arrays.pivot.data(), arrays.sum.data(), arrays.sum_sq.data(), row_walk);
      for (std::int64_t g = 0; g < G; ++g) {
        double sum = 0.0, sum_sq = 0.0;
        for (std::int64_t c = g * per_group; c < (g + 1) * per_group; ++c) {
          sum += arrays.sum[c];
          sum_sq += arrays.sum_sq[c];
        }
        float centered, inv_std;
        statistics(n, g, arrays.pivot[g * per_group], sum, sum_sq, centered, inv_std);
        for (std::int64_t c = g * per_group; c < (g + 1) * per_group; ++c) {
          arrays.centered[c] = centered;
          arrays.scale[c] = (gamma ? gamma[c] : 1.0f) * inv_std;
          arrays.shift[c] = beta ? beta[c] : 0.0f;
        }
      }
      loops::normalize_rows(xn, yn, S, C, C, arrays.pivot.data(), arrays.centered.data(), arrays.scale.data(),
                            arrays.shift.data(), false, false);
    }
    if (stream) _mm_sfence();
  });
}

void group_norm_backward(const GroupNormShape& shape, const float* x, const float* dy, const float* gamma,
                         const float* saved_mean, const float* saved_inv_std, float* dx, float* dgamma, float* dbeta) {
  constexpr const char* who = "group_norm_backward";
  check_groups(shape, who);
  detail::check_pointer(x, "x", who);
  detail::check_pointer(dy, "dy", who);
  detail::check_pointer(saved_mean, "saved_mean", who);
  detail::check_pointer(saved_inv_std, "saved_inv_std", who);
  if (!dx && !dgamma && !dbeta)
    throw std::invalid_argument(fmt::format("{}: dx, dgamma and dbeta are all null: nothing to compute", who));
  const std::int64_t N = shape.batch, G = shape.groups, C = shape.channels, S = shape.spatial;
  const std::int64_t per_group = shape.channels_per_group();
  const double m = static_cast<double>(shape.count_per_group());
  const bool row_walk = shape.size() * static_cast<std::int64_t>(sizeof(float)) >= loops::row_walk_threshold_bytes;
  const bool parallel = detail::worth_threads(shape.size(), parallel_threshold);
  const bool parameter_grads = dgamma || dbeta;
  // From a group's sums of g = dy * gamma and g * (x - mean):
  //   dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)) = g * inv_std + (x - mean) * b + c.
  auto coefficients = [&](std::int64_t n, std::int64_t g, double sum_g, double sum_g_xc, float& b, float& c) {
    const double inv_std = saved_inv_std[n * G + g];
    b = static_cast<float>(-inv_std * inv_std * inv_std * sum_g_xc / m);
    c = static_cast<float>(-inv_std * sum_g / m);
  };
  // dgamma and dbeta come from partial sums per unit (a chunk of rows, or a sample), kept in a
  // buffer of the calling thread and added over the units in order: the same bits on any
  // thread count. dgamma[c] = sum of dy * xhat, dbeta[c] = sum of dy.
  thread_local std::vector<double> partials;
  auto partial_buffers = [&](std::int64_t units) {
    if (parameter_grads && partials.size() < static_cast<std::size_t>(2 * units * C))
      partials.resize(static_cast<std::size_t>(2 * units * C));
    return parameter_grads ? partials.data() : nullptr;
  };
  auto add_partials = [&](std::int64_t units, const double* unit_dy, const double* unit_dy_xhat) {
    // A block of channels at a time, each unit's run of the block read in address order (a
    // column walk strides C doubles a unit); each channel still adds its units in order.
    constexpr std::int64_t block = 64;
    detail::for_ranges((C + block - 1) / block, parallel, 1, [&](std::int64_t first, std::int64_t end) {
      for (std::int64_t k0 = first * block; k0 < std::min(C, end * block); k0 += block) {
        const std::int64_t width = std::min(block, C - k0);
        double total_dy[block] = {}, total_dy_xhat[block] = {};
        for (std::int64_t u = 0; u < units; ++u)
          for (std::int64_t j = 0; j < width; ++j) {
            total_dy[j] += unit_dy[u * C + k0 + j];
            total_dy_xhat[j] += unit_dy_xhat[u * C + k0 + j];
          }
        for (std::int64_t j = 0; j < width; ++j) {
          if (dgamma) dgamma[k0 + j] = static_cast<float>(total_dy_xhat[j]);
          if (dbeta) dbeta[k0 + j] = static_cast<float>(total_dy[j]);
        }
      }
    });
  };

  if (S == 1) {
    // NC: a group is one run of a row's channels. Rows go in fixed chunks, each adding its rows'
    // dy and dy * xhat into partials of its own, so the tensor is read once: in float over a
    // fold of rows (as BatchNorm's row loops), then into the chunk's double partials.
    constexpr std::int64_t rows_per_chunk = 32, rows_per_fold = 16;
    const std::int64_t chunks = (N + rows_per_chunk - 1) / rows_per_chunk;
    double* chunk_dy = partial_buffers(chunks);
    double* chunk_dy_xhat = parameter_grads ? chunk_dy + chunks * C : nullptr;
    // dx streamed past the caches when large; each thread fences its own stores before the
    // region ends, as BatchNorm's tasks do.
    const bool stream =
        dx && shape.size() * static_cast<std::int64_t>(sizeof(float)) >= loops::streaming_threshold_bytes;
    detail::for_ranges(chunks, parallel, 1, [&](std::int64_t first, std::int64_t end) {
      ChannelArrays arrays(C);
      float* fold_dy = parameter_grads ? arrays.scale.data() : nullptr;
      float* fold_dy_xhat = parameter_grads ? arrays.shift.data() : nullptr;
      for (std::int64_t chunk = first; chunk < end; ++chunk) {
        double* part_dy = parameter_grads ? chunk_dy + chunk * C : nullptr;
        double* part_dy_xhat = parameter_grads ? chunk_dy_xhat + chunk * C : nullptr;
        if (parameter_grads) {
          std::fill(part_dy, part_dy + C, 0.0);
          std::fill(part_dy_xhat, part_dy_xhat + C, 0.0);
        }
        const std::int64_t chunk_end = std::min(N, (chunk + 1) * rows_per_chunk);
        for (std::int64_t fold = chunk * rows_per_chunk; fold < chunk_end; fold += rows_per_fold) {
          if (parameter_grads) {
            std::fill(fold_dy, fold_dy + C, 0.0f);
            std::fill(fold_dy_xhat, fold_dy_xhat + C, 0.0f);
          }
          for (std::int64_t n = fold; n < std::min(chunk_end, fold + rows_per_fold); ++n) {
            const float* xn = x + n * C;
            const float* dyn = dy + n * C;
            for (std::int64_t g = 0; g < G; ++g) {
              const std::int64_t c0 = g * per_group;
              const float mean = saved_mean[n * G + g], inv_std = saved_inv_std[n * G + g];
              double sum_g = 0.0, sum_g_xc = 0.0;
              loops::grad_sums_across_channels(xn + c0, dyn + c0, gamma ? gamma + c0 : nullptr, per_group, mean,
                                               inv_std, sum_g, sum_g_xc, parameter_grads ? fold_dy + c0 : nullptr,
                                               parameter_grads ? fold_dy_xhat + c0 : nullptr, n + 1 < N ? C : 0);
              if (!dx) continue;
              float b, c;
              coefficients(n, g, sum_g, sum_g_xc, b, c);
              loops::grad_input_across_channels(xn + c0, dyn + c0, gamma ? gamma + c0 : nullptr, dx + n * C + c0,
                                                per_group, mean, inv_std, b, c, stream);
            }
          }
          if (parameter_grads)
            for (std::int64_t k = 0; k < C; ++k) {
              part_dy[k] += fold_dy[k];
              part_dy_xhat[k] += fold_dy_xhat[k];
            }
        }
      }
      if (stream) _mm_sfence();
    });
    if (parameter_grads) add_partials(chunks, chunk_dy, chunk_dy_xhat);
    return;
  }

  // Images (NCHW, NHWC): per sample, the sums of dy and dy * (x - mean) per channel over its
  // positions, then per group; they are also the sample's partials for dgamma and dbeta.
  double* sample_dy = partial_buffers(N);
  double* sample_dy_xhat = parameter_grads ? sample_dy + N * C : nullptr;
  detail::for_ranges(N, parallel, 1, [&](std::int64_t first, std::int64_t end) {
    ChannelArrays arrays(C);
    for (std::int64_t n = first; n < end; ++n) {
      const std::int64_t offset = n * C * S;
      const float* xn = x + offset;
      const float* dyn = dy + offset;
      double* sum_dy = arrays.sum.data();
      double* sum_dy_xc = arrays.sum_sq.data();
      std::fill(sum_dy, sum_dy + C, 0.0);
      std::fill(sum_dy_xc, sum_dy_xc + C, 0.0);
      for (std::int64_t k = 0; k < C; ++k) arrays.centered[k] = saved_mean[n * G + k / per_group];
      if (shape.layout == Layout::NCHW) {
        for (std::int64_t k = 0; k < C; ++k)
          loops::grad_sums_contiguous(xn + k * S, dyn + k * S, S, arrays.centered[k], 1.0f, 0.0f, false, sum_dy[k],
                                      sum_dy_xc[k]);
      } else {
        loops::grad_sums_rows(xn, dyn, S, C, C, arrays.centered.data(), arrays.centered.data(), arrays.centered.data(),
                              false, sum_dy, sum_dy_xc, row_walk);
      }
      if (parameter_grads)
        for (std::int64_t k = 0; k < C; ++k) {
          sample_dy[n * C + k] = sum_dy[k];
          sample_dy_xhat[n * C + k] = saved_inv_std[n * G + k / per_group] * sum_dy_xc[k];
        }
      if (!dx) continue;
      for (std::int64_t g = 0; g < G; ++g) {
        double sum_g = 0.0, sum_g_xc = 0.0;
        for (std::int64_t k = g * per_group; k < (g + 1) * per_group; ++k) {
          const double gamma_k = gamma ? gamma[k] : 1.0;
          sum_g += gamma_k * sum_dy[k];
          sum_g_xc += gamma_k * sum_dy_xc[k];
        }
        float b, c;
        coefficients(n, g, sum_g, sum_g_xc, b, c);
        for (std::int64_t k = g * per_group; k < (g + 1) * per_group; ++k) {
          arrays.scale[k] = (gamma ? gamma[k] : 1.0f) * saved_inv_std[n * G + g];  // a
          arrays.shift[k] = b;
          arrays.pivot[k] = c;
        }
      }
      if (shape.layout == Layout::NCHW) {
        for (std::int64_t k = 0; k < C; ++k)
          loops::grad_input_contiguous(xn + k * S, dyn + k * S, dx + offset + k * S, S, arrays.centered[k],
                                       arrays.scale[k], arrays.shift[k], arrays.pivot[k], 1.0f, 0.0f, false, false);
      } else {
        loops::grad_input_rows(xn, dyn, dx + offset, S, C, C, arrays.centered.data(), arrays.scale.data(),
                               arrays.shift.data(), arrays.pivot.data(), arrays.centered.data(), arrays.centered.data(),
                               false, false, row_walk);
      }
    }
  });
  if (parameter_grads) add_partials(N, sample_dy, sample_dy_xhat);
}

}  // namespace bnlab::kernels
