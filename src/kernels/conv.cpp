#include "bnlab/kernels/conv.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "bnlab/kernels/gemm.hpp"

namespace bnlab::kernels {

Conv2DShape conv2d_shape(std::int64_t batch, std::int64_t height, std::int64_t width, std::int64_t in_channels,
                         std::int64_t filters, std::int64_t kernel_height, std::int64_t kernel_width,
                         std::int64_t stride_height, std::int64_t stride_width, Padding padding) {
  if (batch < 0) throw std::invalid_argument(fmt::format("conv2d: batch is {}, expected >= 0", batch));
  if (in_channels < 1)
    throw std::invalid_argument(fmt::format("conv2d: input channels is {}, expected >= 1", in_channels));
  if (filters < 1) throw std::invalid_argument(fmt::format("conv2d: filters is {}, expected >= 1", filters));
  const WindowDim rows = window_dim(height, kernel_height, stride_height, padding, "conv2d", "height");
  const WindowDim cols = window_dim(width, kernel_width, stride_width, padding, "conv2d", "width");
  Conv2DShape s;
  s.batch = batch;
  s.in_height = height;
  s.in_width = width;
  s.in_channels = in_channels;
  s.out_channels = filters;
  s.kernel_height = kernel_height;
  s.kernel_width = kernel_width;
  s.stride_height = stride_height;
  s.stride_width = stride_width;
  s.pad_top = rows.pad_before;
  s.pad_left = cols.pad_before;
  s.out_height = rows.out;
  s.out_width = cols.out;
  return s;
}

void im2col_nhwc(const Conv2DShape& s, const float* x, float* columns) {
  const std::int64_t K = s.patch_size();
  const std::int64_t C = s.in_channels;
  const std::size_t run_bytes = static_cast<std::size_t>(C) * sizeof(float);
#pragma omp parallel for collapse(2) schedule(static) if (s.columns_size() > (1 << 15))
  for (std::int64_t n = 0; n < s.batch; ++n) {
    for (std::int64_t oh = 0; oh < s.out_height; ++oh) {
      const float* image = x + n * s.in_height * s.in_width * C;
      for (std::int64_t ow = 0; ow < s.out_width; ++ow) {
        float* row = columns + ((n * s.out_height + oh) * s.out_width + ow) * K;
        for (std::int64_t kh = 0; kh < s.kernel_height; ++kh) {
          const std::int64_t ih = oh * s.stride_height - s.pad_top + kh;
          for (std::int64_t kw = 0; kw < s.kernel_width; ++kw) {
            const std::int64_t iw = ow * s.stride_width - s.pad_left + kw;
            float* dst = row + (kh * s.kernel_width + kw) * C;
            // NHWC keeps a pixel's channels contiguous, so each patch cell is one memcpy.
            if (ih < 0 || ih >= s.in_height || iw < 0 || iw >= s.in_width)
              std::memset(dst, 0, run_bytes);
            else
              std::memcpy(dst, image + (ih * s.in_width + iw) * C, run_bytes);
          }
        }
      }
    }
  }
}

void col2im_nhwc(const Conv2DShape& s, const float* dcolumns, float* dx) {
  const std::int64_t K = s.patch_size();
  const std::int64_t C = s.in_channels;
  const std::int64_t image_size = s.in_height * s.in_width * C;
  // One sample per thread: patches overlap inside a sample only, so no two threads add to the
  // same element and each element's additions follow the (oh, ow, kh, kw) order.
#pragma omp parallel for schedule(static) if (s.columns_size() > (1 << 15))
  for (std::int64_t n = 0; n < s.batch; ++n) {
    float* image = dx + n * image_size;
    std::fill(image, image + image_size, 0.0f);
    for (std::int64_t oh = 0; oh < s.out_height; ++oh) {
      for (std::int64_t ow = 0; ow < s.out_width; ++ow) {
        const float* row = dcolumns + ((n * s.out_height + oh) * s.out_width + ow) * K;
        for (std::int64_t kh = 0; kh < s.kernel_height; ++kh) {
          const std::int64_t ih = oh * s.stride_height - s.pad_top + kh;
          if (ih < 0 || ih >= s.in_height) continue;
          for (std::int64_t kw = 0; kw < s.kernel_width; ++kw) {
            const std::int64_t iw = ow * s.stride_width - s.pad_left + kw;
            if (iw < 0 || iw >= s.in_width) continue;
            const float* src = row + (kh * s.kernel_width + kw) * C;
            float* dst = image + (ih * s.in_width + iw) * C;
            for (std::int64_t c = 0; c < C; ++c) dst[c] += src[c];
          }
        }
      }
    }
  }
}

void conv2d_forward(const Conv2DShape& s, const float* x, const float* kernel, const float* bias, float* columns,
                    float* y) {
  const std::int64_t M = s.output_pixels(), K = s.patch_size(), F = s.out_channels;
  im2col_nhwc(s, x, columns);
  gemm(false, false, M, F, K, 1.0f, columns, kernel, 0.0f, y);
  if (bias) add_row_vector(M, F, bias, y);
}

void conv2d_backward(const Conv2DShape& s, const float* dy, const float* kernel, float* columns, float* dx,
                     float* dkernel, float* dbias) {
  const std::int64_t M = s.output_pixels(), K = s.patch_size(), F = s.out_channels;
  gemm(true, false, K, F, M, 1.0f, columns, dy, 0.0f, dkernel);
  if (dbias) sum_rows(M, F, dy, dbias);
  if (!dx) return;
  // columns has been read for the last time: reuse it for dcolumns.
  gemm(false, true, M, K, F, 1.0f, dy, kernel, 0.0f, columns);
  col2im_nhwc(s, columns, dx);
}

}  // namespace bnlab::kernels
