#pragma once
// BatchNorm on Tensors: the checked, allocating front of the kernels in kernels/batchnorm.hpp.
// The tensor's layout says which axis holds the channels: NC (features), NCHW, NHWC. A plain
// rank-2 tensor is taken as NC. An undefined Tensor for gamma or beta means scale or center off.
// Every shape mismatch throws std::invalid_argument naming the argument, its shape and the
// shape expected.

#include <optional>

#include "bnlab/kernels/batchnorm.hpp"
#include "bnlab/tensor.hpp"

namespace bnlab {

using kernels::FusedActivation;

// The kernel geometry of x, or an exception naming `who` and what is wrong.
kernels::BatchNormShape batchnorm_shape_of(const Tensor& x, const char* who);

struct BatchNormTrainingOutput {
  Tensor y;
  Tensor mean;      // (C): batch mean, saved for backward
  Tensor inv_std;   // (C): 1 / sqrt(biased batch variance + epsilon), saved for backward
  Tensor variance;  // (C): biased batch variance, for the moving statistics
};

BatchNormTrainingOutput batch_norm_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                                            FusedActivation activation = FusedActivation::none);

// The functional form with given statistics, as tf.nn.batch_normalization(x, mean, variance,
// offset, scale, variance_epsilon); also BatchNorm's inference forward.
Tensor batch_normalization(const Tensor& x, const Tensor& mean, const Tensor& variance, const Tensor& offset,
                           const Tensor& scale, float variance_epsilon,
                           FusedActivation activation = FusedActivation::none);

struct BatchNormGradients {
  Tensor dx, dgamma, dbeta;  // dgamma/dbeta undefined when gamma/beta were
};

BatchNormGradients batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& beta,
                                       const Tensor& saved_mean, const Tensor& saved_inv_std,
                                       FusedActivation activation = FusedActivation::none);

}  // namespace bnlab
