#include "bnlab/data/batching.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "data/random.hpp"

namespace bnlab::data {

void fill_epoch_permutation(std::span<std::int64_t> order, std::uint64_t seed, std::int64_t epoch) {
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::mt19937_64 gen(detail::mix64(seed ^ detail::mix64(static_cast<std::uint64_t>(epoch))));
  // Fisher-Yates from the back: position i takes a uniformly chosen element of [0, i].
  for (std::size_t i = order.size(); i > 1; --i) {
    const std::size_t j = detail::uniform_below(gen, i);
    std::swap(order[i - 1], order[j]);
  }
}

std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  if (n < 0) throw std::invalid_argument(fmt::format("epoch_permutation: n is {}, must not be negative", n));
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  fill_epoch_permutation(order, seed, epoch);
  return order;
}

BatchIterator::BatchIterator(std::int64_t num_examples, std::int64_t batch_size, std::uint64_t seed, Order order)
    : batch_size_(batch_size), seed_(seed), mode_(order) {
  if (num_examples < 0)
    throw std::invalid_argument(fmt::format("BatchIterator: num_examples is {}, must not be negative", num_examples));
  if (batch_size < 1)
    throw std::invalid_argument(fmt::format("BatchIterator: batch_size is {}, must be at least 1", batch_size));
  order_.resize(static_cast<std::size_t>(num_examples));
  start_epoch(0);
}

void BatchIterator::start_epoch(std::int64_t epoch) {
  epoch_ = epoch;
  if (mode_ == Order::Shuffled)
    fill_epoch_permutation(order_, seed_, epoch);
  else
    std::iota(order_.begin(), order_.end(), std::int64_t{0});
}

std::int64_t BatchIterator::num_batches() const { return (num_examples() + batch_size_ - 1) / batch_size_; }

std::span<const std::int64_t> BatchIterator::batch(std::int64_t index) const {
  if (index < 0 || index >= num_batches())
    throw std::out_of_range(fmt::format("BatchIterator::batch: index {} outside 0..{}", index, num_batches() - 1));
  const std::int64_t begin = index * batch_size_;
  const std::int64_t end = std::min(begin + batch_size_, num_examples());
  return std::span<const std::int64_t>(order_).subspan(static_cast<std::size_t>(begin),
                                                       static_cast<std::size_t>(end - begin));
}

void gather_rows(const Tensor& source, std::span<const std::int64_t> rows, Tensor& destination) {
  if (!source.defined() || !destination.defined())
    throw std::invalid_argument("gather_rows: source and destination must be defined tensors");
  const auto count = static_cast<std::int64_t>(rows.size());
  if (destination.dim(0) != count)
    throw std::invalid_argument(
        fmt::format("gather_rows: destination has {} rows, {} row indices given", destination.dim(0), count));
  const std::int64_t source_rows = source.dim(0);
  const std::int64_t row_size = source_rows == 0 ? 0 : source.size() / source_rows;
  const std::int64_t destination_row_size = count == 0 ? row_size : destination.size() / count;
  if (destination_row_size != row_size)
    throw std::invalid_argument(fmt::format("gather_rows: source {} has {} elements per row, destination {} has {}",
                                            source.shape_string(), row_size, destination.shape_string(),
                                            destination_row_size));
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t r = rows[static_cast<std::size_t>(i)];
    if (r < 0 || r >= source_rows)
      throw std::out_of_range(fmt::format("gather_rows: row index {} (position {}) outside 0..{}", r, i, source_rows - 1));
    std::memcpy(destination.data() + i * row_size, source.data() + r * row_size,
                static_cast<std::size_t>(row_size) * sizeof(float));
  }
}

void gather_labels(std::span<const std::int32_t> source, std::span<const std::int64_t> rows,
                   std::span<std::int32_t> destination) {
  if (destination.size() != rows.size())
    throw std::invalid_argument(
        fmt::format("gather_labels: destination holds {} labels, {} row indices given", destination.size(), rows.size()));
  const auto source_rows = static_cast<std::int64_t>(source.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= source_rows)
      throw std::out_of_range(
          fmt::format("gather_labels: row index {} (position {}) outside 0..{}", rows[i], i, source_rows - 1));
    destination[i] = source[static_cast<std::size_t>(rows[i])];
  }
}

}  // namespace bnlab::data
