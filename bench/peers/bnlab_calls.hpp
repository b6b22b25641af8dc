#pragma once
// bnlab's side of a peer measurement, shared by the two C++ drivers that call it: bnlab's own
// (bnlab_batchnorm.cpp, on its buffers) and oneDNN's (onednn_batchnorm.cpp, bnlab beside oneDNN
// on oneDNN's inputs).

#include "bnlab/kernels/batchnorm.hpp"
#include "peer_common.hpp"

namespace peers {

inline bnlab::kernels::BatchNormShape to_bnlab(const PeerShape& s) {
  const bnlab::Layout layout = s.is("NCHW")   ? bnlab::Layout::NCHW
                               : s.is("NHWC") ? bnlab::Layout::NHWC
                                              : bnlab::Layout::NC;
  return {s.batch, s.channels, s.spatial(), layout};
}

// The kernels of the table on caller-owned buffers (tensors N*C*S, the rest C). The backward
// reads the statistics the last forward_training left in mean and inv_std.
struct BnlabCalls {
  bnlab::kernels::BatchNormShape shape;
  const float *x, *dy, *gamma, *beta, *moving_mean, *moving_variance;
  float *y, *dx, *mean, *inv_std, *variance, *dgamma, *dbeta;

  void forward_training(bnlab::kernels::FusedActivation activation) const {
    bnlab::kernels::batchnorm_forward_training(shape, x, gamma, beta, epsilon, y, mean, inv_std, variance, activation);
  }
  void forward_inference() const {
    bnlab::kernels::batchnorm_forward_inference(shape, x, moving_mean, moving_variance, gamma, beta, epsilon, y);
  }
  void backward(bnlab::kernels::FusedActivation activation) const {
    bnlab::kernels::batchnorm_backward(shape, x, dy, gamma, beta, mean, inv_std, dx, dgamma, dbeta, activation);
  }
};

}  // namespace peers
