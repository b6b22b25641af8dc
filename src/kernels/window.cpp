#include "bnlab/kernels/window.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace bnlab::kernels {

std::string to_string(Padding padding) { return padding == Padding::same ? "same" : "valid"; }

Padding parse_padding(const std::string& name, const std::string& caller) {
  if (name == "valid") return Padding::valid;
  if (name == "same") return Padding::same;
  throw std::invalid_argument(fmt::format("{}: padding is \"{}\", expected \"valid\" or \"same\"", caller, name));
}

WindowDim window_dim(std::int64_t in, std::int64_t window, std::int64_t stride, Padding padding,
                     const std::string& caller, const char* dimension_name) {
  if (in < 1) throw std::invalid_argument(fmt::format("{}: input {} is {}, expected >= 1", caller, dimension_name, in));
  if (window < 1)
    throw std::invalid_argument(fmt::format("{}: window {} is {}, expected >= 1", caller, dimension_name, window));
  if (stride < 1)
    throw std::invalid_argument(fmt::format("{}: stride {} is {}, expected >= 1", caller, dimension_name, stride));
  WindowDim d;
  if (padding == Padding::valid) {
    if (in < window)
      throw std::invalid_argument(fmt::format("{}: input {} is {}, smaller than the window {} with padding \"valid\"",
                                              caller, dimension_name, in, window));
    d.out = (in - window) / stride + 1;
  } else {
    d.out = (in + stride - 1) / stride;
    d.pad_before = std::max<std::int64_t>((d.out - 1) * stride + window - in, 0) / 2;
  }
  return d;
}

}  // namespace bnlab::kernels
