#include "bnlab/kernels/pooling.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace bnlab::kernels {

Pool2DShape pool2d_shape(std::int64_t batch, std::int64_t height, std::int64_t width, std::int64_t channels,
                         std::int64_t pool_height, std::int64_t pool_width, std::int64_t stride_height,
                         std::int64_t stride_width, Padding padding) {
  if (batch < 0) throw std::invalid_argument(fmt::format("max_pool2d: batch is {}, expected >= 0", batch));
  if (channels < 1) throw std::invalid_argument(fmt::format("max_pool2d: channels is {}, expected >= 1", channels));
  const WindowDim rows = window_dim(height, pool_height, stride_height, padding, "max_pool2d", "height");
  const WindowDim cols = window_dim(width, pool_width, stride_width, padding, "max_pool2d", "width");
  if (height * width * channels > std::numeric_limits<std::int32_t>::max())
    throw std::invalid_argument(fmt::format("max_pool2d: a sample of {}x{}x{} is too large for int32 indices",
                                            height, width, channels));
  Pool2DShape s;
  s.batch = batch;
  s.in_height = height;
  s.in_width = width;
  s.channels = channels;
  s.pool_height = pool_height;
  s.pool_width = pool_width;
  s.stride_height = stride_height;
  s.stride_width = stride_width;
  s.pad_top = rows.pad_before;
  s.pad_left = cols.pad_before;
  s.out_height = rows.out;
  s.out_width = cols.out;
  return s;
}

void maxpool2d_forward(const Pool2DShape& s, const float* x, float* y, std::int32_t* argmax) {
  const std::int64_t C = s.channels;
  const std::int64_t image_size = s.in_height * s.in_width * C;
#pragma omp parallel for collapse(2) schedule(static) if (s.output_size() > (1 << 14))
  for (std::int64_t n = 0; n < s.batch; ++n) {
    for (std::int64_t oh = 0; oh < s.out_height; ++oh) {
      const float* image = x + n * image_size;
      // The window clipped to the image: padding cells are skipped rather than compared.
      const std::int64_t h0 = std::max<std::int64_t>(oh * s.stride_height - s.pad_top, 0);
      const std::int64_t h1 = std::min(oh * s.stride_height - s.pad_top + s.pool_height, s.in_height);
      for (std::int64_t ow = 0; ow < s.out_width; ++ow) {
        const std::int64_t w0 = std::max<std::int64_t>(ow * s.stride_width - s.pad_left, 0);
        const std::int64_t w1 = std::min(ow * s.stride_width - s.pad_left + s.pool_width, s.in_width);
        const std::int64_t out = ((n * s.out_height + oh) * s.out_width + ow) * C;
        float* best = y + out;
        std::int32_t* where = argmax + out;
        const std::int32_t first = static_cast<std::int32_t>((h0 * s.in_width + w0) * C);
        for (std::int64_t c = 0; c < C; ++c) {
          best[c] = image[first + c];
          where[c] = first + static_cast<std::int32_t>(c);
        }
        for (std::int64_t h = h0; h < h1; ++h) {
          for (std::int64_t w = w0; w < w1; ++w) {
            const std::int32_t base = static_cast<std::int32_t>((h * s.in_width + w) * C);
            for (std::int64_t c = 0; c < C; ++c) {
              const float v = image[base + c];
              // v != v: a NaN takes the cell and, comparing false afterwards, keeps it.
              if (v > best[c] || (v != v && best[c] == best[c])) {
                best[c] = v;
                where[c] = base + static_cast<std::int32_t>(c);
              }
            }
          }
        }
      }
    }
  }
}

void maxpool2d_backward(const Pool2DShape& s, const float* dy, const std::int32_t* argmax, float* dx) {
  const std::int64_t image_size = s.in_height * s.in_width * s.channels;
  const std::int64_t out_per_sample = s.out_height * s.out_width * s.channels;
  // Whole samples per thread: overlapping windows add into the same input only within a sample.
#pragma omp parallel for schedule(static) if (s.input_size() > (1 << 14))
  for (std::int64_t n = 0; n < s.batch; ++n) {
    float* image = dx + n * image_size;
    std::fill(image, image + image_size, 0.0f);
    const float* g = dy + n * out_per_sample;
    const std::int32_t* where = argmax + n * out_per_sample;
    for (std::int64_t i = 0; i < out_per_sample; ++i) image[where[i]] += g[i];
  }
}

}  // namespace bnlab::kernels
