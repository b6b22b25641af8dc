#pragma once
// The backward of a Dense whose input is a per-feature affine map of a normalized tensor,
// x = xhat * gamma + beta (a BatchNormalization's output), when nothing needs the gradient of
// xhat itself (the normalization is the model's first trained layer). Then
//   dL/dkernel = x^T dz = diag(gamma) P + beta s^T,          P = xhat^T dz, s = column sums of dz
//   dL/dgamma_j = sum_n dL/dx[n,j] xhat[n,j] = sum_k kernel[j,k] P[j,k]
//   dL/dbeta_j  = sum_n dL/dx[n,j]           = sum_k kernel[j,k] s_k
// so one GEMM (P) gives all three, where the plain path needs two (x^T dz and dL/dx = dz
// kernel^T) and the normalization's own pass over dL/dx. No allocation.

#include <cstdint>

namespace bnlab::kernels {

// Shapes: kernel, kernel_grad (features x units), row-major; gamma, beta, dgamma, dbeta
// (features); column_sums (units). kernel_grad holds P on entry and dL/dkernel on return.
// gamma null means 1 (no scale), beta null means 0 (no center); dgamma or dbeta null: not
// wanted. Each feature's sums run over the units in a fixed order, so the bits do not depend on
// the thread count.
void affine_input_gradients(std::int64_t features, std::int64_t units, const float* kernel, const float* gamma,
                            const float* beta, const float* column_sums, float* kernel_grad, float* dgamma,
                            float* dbeta);

}  // namespace bnlab::kernels
