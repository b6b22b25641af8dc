#pragma once
// Output size and padding of a sliding window along one dimension, Keras/TensorFlow semantics,
// shared by convolution and pooling.
//   valid: no padding; out = floor((in - window) / stride) + 1, needs in >= window.
//   same:  out = ceil(in / stride); the total padding max((out - 1) * stride + window - in, 0)
//          is split with the odd element after (bottom/right), as TensorFlow does (PyTorch's
//          symmetric padding differs there).

#include <cstdint>
#include <string>

namespace bnlab::kernels {

enum class Padding { valid, same };

std::string to_string(Padding padding);
// "valid" or "same" (Keras's strings); anything else throws std::invalid_argument naming it.
Padding parse_padding(const std::string& name, const std::string& caller);

struct WindowDim {
  std::int64_t out = 0;         // output size
  std::int64_t pad_before = 0;  // implicit zeros (or ignored cells, for pooling) before index 0
};

// Throws std::invalid_argument naming `caller` and the value for in < 1, window < 1, stride < 1,
// or a valid window larger than the input.
WindowDim window_dim(std::int64_t in, std::int64_t window, std::int64_t stride, Padding padding,
                     const std::string& caller, const char* dimension_name);

}  // namespace bnlab::kernels
