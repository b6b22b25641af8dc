#include "bnlab/kernels/loss.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/parallel.hpp"
#include "kernels/softmax_row.hpp"

namespace bnlab::kernels {

namespace {

constexpr std::int64_t parallel_threshold = 1 << 15;

void check_dims(std::int64_t rows, std::int64_t classes, const char* caller) {
  if (rows < 1) throw std::invalid_argument(fmt::format("{}: rows is {}, expected >= 1", caller, rows));
  if (classes < 1) throw std::invalid_argument(fmt::format("{}: classes is {}, expected >= 1", caller, classes));
}

}  // namespace

void check_labels(std::int64_t rows, std::int64_t classes, const std::int32_t* labels, const char* caller) {
  for (std::int64_t r = 0; r < rows; ++r)
    if (labels[r] < 0 || labels[r] >= classes)
      throw std::invalid_argument(
          fmt::format("{}: label {} at row {} is outside [0, {}) (classes)", caller, labels[r], r, classes));
}

namespace {

void cross_entropy_rows(std::int64_t r0, std::int64_t r1, std::int64_t classes, const float* logits,
                        const std::int32_t* labels, float* probabilities, float* sample_losses) {
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* z = logits + r * classes;
    // Read the label's logit first: when probabilities aliases logits the softmax overwrites it.
    const float z_label = z[labels[r]];
    const SoftmaxRow row = softmax_row(classes, z, probabilities + r * classes);
    sample_losses[r] = std::log(row.sum) - (z_label - row.max);
  }
}

void cross_entropy_grad_rows(std::int64_t r0, std::int64_t r1, std::int64_t classes, const float* probabilities,
                             const std::int32_t* labels, float inv_rows, float* dlogits) {
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* p = probabilities + r * classes;
    float* g = dlogits + r * classes;
    // Read the label's probability first: when dlogits aliases probabilities the loop overwrites it.
    const float p_label = p[labels[r]];
    for (std::int64_t c = 0; c < classes; ++c) g[c] = p[c] * inv_rows;
    g[labels[r]] = (p_label - 1.0f) * inv_rows;
  }
}

std::int64_t correct_rows(std::int64_t r0, std::int64_t r1, std::int64_t classes, const float* scores,
                          const std::int32_t* labels) {
  std::int64_t correct = 0;
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* s = scores + r * classes;
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < classes; ++c)
      if (s[c] > s[best]) best = c;
    correct += best == labels[r] ? 1 : 0;
  }
  return correct;
}

}  // namespace

float softmax_cross_entropy_forward(std::int64_t rows, std::int64_t classes, const float* logits,
                                    const std::int32_t* labels, float* probabilities, float* sample_losses) {
  check_dims(rows, classes, "softmax_cross_entropy_forward");
  check_labels(rows, classes, labels, "softmax_cross_entropy_forward");
  detail::for_ranges(rows, detail::worth_threads(rows * classes, parallel_threshold), 1,
                     [&](std::int64_t r0, std::int64_t r1) {
                       cross_entropy_rows(r0, r1, classes, logits, labels, probabilities, sample_losses);
                     });
  double total = 0.0;
  for (std::int64_t r = 0; r < rows; ++r) total += sample_losses[r];
  return static_cast<float>(total / static_cast<double>(rows));
}

void softmax_cross_entropy_backward(std::int64_t rows, std::int64_t classes, const float* probabilities,
                                    const std::int32_t* labels, float* dlogits) {
  check_dims(rows, classes, "softmax_cross_entropy_backward");
  check_labels(rows, classes, labels, "softmax_cross_entropy_backward");
  const float inv_rows = 1.0f / static_cast<float>(rows);
  detail::for_ranges(rows, detail::worth_threads(rows * classes, parallel_threshold), 1,
                     [&](std::int64_t r0, std::int64_t r1) {
                       cross_entropy_grad_rows(r0, r1, classes, probabilities, labels, inv_rows, dlogits);
                     });
}

std::int64_t count_correct(std::int64_t rows, std::int64_t classes, const float* scores, const std::int32_t* labels) {
  check_dims(rows, classes, "count_correct");
  check_labels(rows, classes, labels, "count_correct");
  std::int64_t correct = 0;
  detail::for_ranges(rows, detail::worth_threads(rows * classes, parallel_threshold), 1,
                     [&](std::int64_t r0, std::int64_t r1) {
                       const std::int64_t mine = correct_rows(r0, r1, classes, scores, labels);
#pragma omp atomic
                       correct += mine;
                     });
  return correct;
}

float accuracy(std::int64_t rows, std::int64_t classes, const float* scores, const std::int32_t* labels) {
  return static_cast<float>(static_cast<double>(count_correct(rows, classes, scores, labels)) /
                            static_cast<double>(rows));
}

}  // namespace bnlab::kernels
