#pragma once
// Sparse categorical cross-entropy fused with softmax, and accuracy.
// logits, probabilities, dlogits: rows x classes row-major (NC); labels: int32[rows].
//
// Labels are int32 (not uint8): any class count fits, and it is what a label tensor widened
// once per dataset costs. Every label must lie in [0, classes); a label outside it throws
// std::invalid_argument naming the row and the value, before anything is written.
// Softmax and cross-entropy are fused because log(softmax(z))[y] = z[y] - logsumexp(z) never
// takes the log of an underflowed probability, and d(loss)/dz = softmax(z) - onehot(y) is
// cheaper and exacter than chaining the two backwards. This is what Keras computes for a
// softmax output with from_logits=False too (it reaches through the softmax to its logits).

#include <cstdint>

namespace bnlab::kernels {

// Throws std::invalid_argument unless every label is in [0, classes).
void check_labels(std::int64_t rows, std::int64_t classes, const std::int32_t* labels, const char* caller);

// Writes probabilities (softmax of logits) and sample_losses[rows] = logsumexp(z) - z[label];
// returns their mean. The mean is summed in double in row order: the same value for any
// thread count. rows >= 1, classes >= 1. probabilities may alias logits.
float softmax_cross_entropy_forward(std::int64_t rows, std::int64_t classes, const float* logits,
                                    const std::int32_t* labels, float* probabilities, float* sample_losses);

// dlogits = (probabilities - onehot(labels)) / rows: the gradient of the mean loss.
// dlogits may alias probabilities.
void softmax_cross_entropy_backward(std::int64_t rows, std::int64_t classes, const float* probabilities,
                                    const std::int32_t* labels, float* dlogits);

// Number of rows whose argmax (the first one on ties, as numpy's) equals the label. scores may
// be logits or probabilities.
std::int64_t count_correct(std::int64_t rows, std::int64_t classes, const float* scores, const std::int32_t* labels);

// count_correct / rows.
float accuracy(std::int64_t rows, std::int64_t classes, const float* scores, const std::int32_t* labels);

}  // namespace bnlab::kernels
