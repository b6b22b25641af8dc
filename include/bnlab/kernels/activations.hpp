#pragma once
// Activation kernels, forward and backward side by side, over caller-owned float buffers.
// Elementwise ones see count floats in any layout; softmax sees rows x cols row-major and
// normalizes each row (the last dimension: classes for NC, channels for NHWC).
// Outputs may alias inputs (y may alias x; dx may alias dy) except where a backward reads x or y
// after writing dx, which none does. No allocation; OpenMP over large buffers; every element is
// computed by the same arithmetic whatever the thread count.
//
// What backward reads: relu and leaky_relu read x (the sign decides, and for alpha = 0 the
// output cannot tell x = 0 from x < 0); sigmoid, tanh and softmax read y (their derivatives are
// cheapest in terms of the output).

#include <cstdint>

namespace bnlab::kernels {

enum class ActivationKind { linear, relu, leaky_relu, sigmoid, tanh, softmax };

// Keras's tf.keras.layers.LeakyReLU default slope.
inline constexpr float default_leaky_relu_alpha = 0.3f;
// The slope of the activation function the name "leaky_relu" selects in Keras
// (keras.activations.leaky_relu, tf.nn.leaky_relu): Dense(..., "leaky_relu") and its kin.
inline constexpr float leaky_relu_function_alpha = 0.2f;

// y = x < 0 ? 0 : x; dx = x <= 0 ? 0 : dy (the derivative at 0 is 0, as in Keras and PyTorch).
// As torch.relu: NaN and -0 pass unchanged, and so does the gradient where x is NaN.
void relu_forward(std::int64_t count, const float* x, float* y);
void relu_backward(std::int64_t count, const float* x, const float* dy, float* dx);

// y = x for x > 0, alpha * x otherwise; dx = dy or alpha * dy.
void leaky_relu_forward(std::int64_t count, float alpha, const float* x, float* y);
void leaky_relu_backward(std::int64_t count, float alpha, const float* x, const float* dy, float* dx);

// y = 1 / (1 + exp(-x)); dx = dy * y * (1 - y).
void sigmoid_forward(std::int64_t count, const float* x, float* y);
void sigmoid_backward(std::int64_t count, const float* y, const float* dy, float* dx);

// y = tanh(x); dx = dy * (1 - y^2).
void tanh_forward(std::int64_t count, const float* x, float* y);
void tanh_backward(std::int64_t count, const float* y, const float* dy, float* dx);

// x, y, dy, dx: rows x cols. y = exp(x - max) / sum(exp(x - max)) per row (the max shift keeps
// exp from overflowing); dx = y * (dy - sum(dy * y)) per row.
void softmax_forward(std::int64_t rows, std::int64_t cols, const float* x, float* y);
void softmax_backward(std::int64_t rows, std::int64_t cols, const float* y, const float* dy, float* dx);

// Dispatch on kind over rows x cols (elementwise kinds ignore the split). linear copies (or does
// nothing when the buffers alias). alpha is used by leaky_relu only.
void activation_forward(ActivationKind kind, std::int64_t rows, std::int64_t cols, float alpha,
                        const float* x, float* y);
void activation_backward(ActivationKind kind, std::int64_t rows, std::int64_t cols, float alpha,
                         const float* x, const float* y, const float* dy, float* dx);

// A Dense layer's work around its GEMMs, one pass over the data instead of two; the results
// are bit-identical to the two-pass forms (same operations on every element, column sums added
// in row order like sum_rows).
// Forward: z += bias per column (rows x cols, bias of cols; no bias when null), then
// y = act(z). For linear, y may be z (then nothing is written besides z).
void bias_activation_forward(ActivationKind kind, std::int64_t rows, std::int64_t cols, float alpha,
                             const float* bias, float* z, float* y);
// Backward: dz = dL/dz from dy (as activation_backward, reading z or y) and, when bias_grad is
// not null, bias_grad = column sums of dz. For linear, dz may be dy (then only the sums are
// computed).
void activation_backward_bias_grad(ActivationKind kind, std::int64_t rows, std::int64_t cols, float alpha,
                                   const float* z, const float* y, const float* dy, float* dz, float* bias_grad);

}  // namespace bnlab::kernels
