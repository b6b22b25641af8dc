#include "bnlab/kernels/group_norm.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/parallel.hpp"
#include "kernels/shape_checks.hpp"

namespace bnlab::kernels {
namespace {

// Below this many values a call runs on the calling thread (a parallel region costs more).
constexpr std::int64_t parallel_threshold = 1 << 15;

void check_groups(const GroupNormShape& shape, const char* who) {
  detail::check_shape(BatchNormShape{shape.batch, shape.channels, shape.spatial, shape.layout}, who);
  if (shape.groups < 1 || shape.channels % shape.groups != 0)
    throw std::invalid_argument(fmt::format("{}: groups must be >= 1 and divide the channels, got {} groups for C={}",
                                            who, shape.groups, shape.channels));
}

// Calls visit(offset, channel, length, channel_step) for each contiguous run of the values of
// sample n's group g: value j of a run sits at offset + j and belongs to channel
// channel + j * channel_step. NCHW: one run per channel of the group (its S values); NC and
// NHWC: one run per spatial position (the group's C/G channels). Runs come in memory order.
template <class Visit>
inline void for_each_run(const GroupNormShape& s, std::int64_t n, std::int64_t g, Visit&& visit) {
  const std::int64_t per_group = s.channels_per_group(), first = g * per_group;
  if (s.layout == Layout::NCHW) {
    for (std::int64_t c = first; c < first + per_group; ++c) visit((n * s.channels + c) * s.spatial, c, s.spatial, 0);
  } else {
    for (std::int64_t i = 0; i < s.spatial; ++i) visit((n * s.spatial + i) * s.channels + first, first, per_group, 1);
  }
}

// Runs body(sample, group) for every pair, spread over the threads when the tensor is large.
template <class Body>
void for_each_group(const GroupNormShape& s, Body&& body) {
  const bool parallel = detail::worth_threads(s.size(), parallel_threshold);
  detail::for_ranges(s.batch * s.groups, parallel, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t t = begin; t < end; ++t) body(t / s.groups, t % s.groups);
  });
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
  const double m = static_cast<double>(shape.count_per_group());
  for_each_group(shape, [&](std::int64_t n, std::int64_t g) {
    // Two passes, the second over the deviations from the mean: no cancellation for data far
    // from zero (the one-pass E[x^2] - E[x]^2 loses it all for pixels of 0..255).
    double sum = 0.0;
    for_each_run(shape, n, g, [&](std::int64_t offset, std::int64_t, std::int64_t length, std::int64_t) {
      for (std::int64_t j = 0; j < length; ++j) sum += x[offset + j];
    });
    const double mean = sum / m;
    double squares = 0.0;
    for_each_run(shape, n, g, [&](std::int64_t offset, std::int64_t, std::int64_t length, std::int64_t) {
      for (std::int64_t j = 0; j < length; ++j) {
        const double d = x[offset + j] - mean;
        squares += d * d;
      }
    });
    const float mean_f = static_cast<float>(mean);
    const float inv_std = static_cast<float>(1.0 / std::sqrt(squares / m + static_cast<double>(epsilon)));
    saved_mean[n * shape.groups + g] = mean_f;
    saved_inv_std[n * shape.groups + g] = inv_std;
    for_each_run(shape, n, g, [&](std::int64_t offset, std::int64_t channel, std::int64_t length, std::int64_t step) {
      for (std::int64_t j = 0; j < length; ++j) {
        const std::int64_t c = channel + j * step;
        const float xhat = (x[offset + j] - mean_f) * inv_std;
        y[offset + j] = (gamma ? gamma[c] : 1.0f) * xhat + (beta ? beta[c] : 0.0f);
      }
    });
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
  const std::int64_t G = shape.groups, C = shape.channels, S = shape.spatial;
  const std::int64_t per_group = shape.channels_per_group();
  if (dx) {
    const double m = static_cast<double>(shape.count_per_group());
    for_each_group(shape, [&](std::int64_t n, std::int64_t g) {
      const float mean = saved_mean[n * G + g], inv_std = saved_inv_std[n * G + g];
      double sum_g = 0.0, sum_g_xhat = 0.0;
      for_each_run(shape, n, g, [&](std::int64_t offset, std::int64_t channel, std::int64_t length, std::int64_t step) {
        for (std::int64_t j = 0; j < length; ++j) {
          const double grad = static_cast<double>(dy[offset + j]) * (gamma ? gamma[channel + j * step] : 1.0f);
          sum_g += grad;
          sum_g_xhat += grad * ((x[offset + j] - mean) * inv_std);
        }
      });
      const float mean_g = static_cast<float>(sum_g / m), mean_g_xhat = static_cast<float>(sum_g_xhat / m);
      for_each_run(shape, n, g, [&](std::int64_t offset, std::int64_t channel, std::int64_t length, std::int64_t step) {
        for (std::int64_t j = 0; j < length; ++j) {
          const float grad = dy[offset + j] * (gamma ? gamma[channel + j * step] : 1.0f);
          const float xhat = (x[offset + j] - mean) * inv_std;
          dx[offset + j] = inv_std * (grad - mean_g - xhat * mean_g_xhat);
        }
      });
    });
  }
  if (!dgamma && !dbeta) return;
  // Per channel, over samples then positions in that order whatever the layout or the threads.
  // Channels-last rows are walked in blocks of channels, so each row's block is read at once.
  constexpr std::int64_t block = 64;
  const bool parallel = detail::worth_threads(shape.size(), parallel_threshold);
  detail::for_ranges((C + block - 1) / block, parallel, 1, [&](std::int64_t first_block, std::int64_t end_block) {
    for (std::int64_t b = first_block; b < end_block; ++b) {
      const std::int64_t c0 = b * block, width = std::min(block, C - c0);
      double sum_dy[block] = {}, sum_dy_xhat[block] = {};
      for (std::int64_t n = 0; n < shape.batch; ++n) {
        if (shape.layout == Layout::NCHW) {
          for (std::int64_t k = 0; k < width; ++k) {
            const std::int64_t c = c0 + k, statistic = n * G + c / per_group;
            const float mean = saved_mean[statistic], inv_std = saved_inv_std[statistic];
            const float* xs = x + (n * C + c) * S;
            const float* dys = dy + (n * C + c) * S;
            for (std::int64_t i = 0; i < S; ++i) {
              sum_dy[k] += dys[i];
              sum_dy_xhat[k] += static_cast<double>(dys[i]) * ((xs[i] - mean) * inv_std);
            }
          }
          continue;
        }
        for (std::int64_t i = 0; i < S; ++i) {
          const float* xs = x + (n * S + i) * C + c0;
          const float* dys = dy + (n * S + i) * C + c0;
          for (std::int64_t k = 0; k < width; ++k) {
            const std::int64_t statistic = n * G + (c0 + k) / per_group;
            sum_dy[k] += dys[k];
            sum_dy_xhat[k] +=
                static_cast<double>(dys[k]) * ((xs[k] - saved_mean[statistic]) * saved_inv_std[statistic]);
          }
        }
      }
      for (std::int64_t k = 0; k < width; ++k) {
        if (dgamma) dgamma[c0 + k] = static_cast<float>(sum_dy_xhat[k]);
        if (dbeta) dbeta[c0 + k] = static_cast<float>(sum_dy[k]);
      }
    }
  });
}

}  // namespace bnlab::kernels
