#pragma once
// Keras's L1L2 weight penalty on one parameter's n values w (float32), with factors l1, l2 >= 0:
//   penalty = l1 * sum |w| + l2 * sum w^2        (summed in double, in index order)
//   grad   += l1 * sign(w) + 2 * l2 * w          (sign(0) = 0, as tf.sign; grad may not alias w)

#include <cstdint>

namespace bnlab::kernels {

double regularization_penalty(std::int64_t n, const float* w, double l1, double l2);
void add_regularization_gradient(std::int64_t n, const float* w, double l1, double l2, float* grad);

}  // namespace bnlab::kernels
