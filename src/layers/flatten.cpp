#include "bnlab/layers/flatten.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "bnlab/layers/detail.hpp"

namespace bnlab {

Shape Flatten::build(const Shape& input_shape, Rng& /*rng*/) {
  // Tensor's rank limit of 4 leaves 3 dimensions per sample.
  detail::check_input_rank(*this, input_shape, 1, 3);
  detail::check_positive_dimensions(*this, input_shape);
  input_shape_ = input_shape;
  output_shape_ = {detail::element_count(*this, input_shape)};
  flat_batch_shape_ = {0, output_shape_[0]};
  input_batch_shape_ = {0};
  input_batch_shape_.insert(input_batch_shape_.end(), input_shape.begin(), input_shape.end());
  built_ = true;
  return output_shape_;
}

const Tensor& Flatten::forward(const Tensor& x, bool /*training*/) {
  detail::check_input(*this, x, input_shape_, "forward");
  input_layout_ = x.layout();
  flat_batch_shape_[0] = x.dim(0);
  y_ = x.reshape(flat_batch_shape_, Layout::NC);
  return y_;
}

const Tensor& Flatten::backward(const Tensor& dy) {
  detail::check_input(*this, dy, output_shape_, "backward");
  input_batch_shape_[0] = dy.dim(0);
  const std::size_t rank = input_batch_shape_.size();
  // The layout of the forward's input, when it fits the rank (a plain 4-D input stays plain).
  const bool layout_fits = input_layout_ == Layout::Plain ||
                           (input_layout_ == Layout::NC && rank == 2) ||
                           ((input_layout_ == Layout::NCHW || input_layout_ == Layout::NHWC) && rank == 4);
  dx_ = dy.reshape(input_batch_shape_, layout_fits ? input_layout_ : Layout::Plain);
  return dx_;
}

}  // namespace bnlab
