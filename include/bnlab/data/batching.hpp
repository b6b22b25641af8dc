#pragma once
// Seeded mini-batch order and batch assembly.
//
// Each epoch's order is a permutation drawn from std::mt19937_64 seeded with a mix of
// (seed, epoch), so epoch k's order depends only on the seed and k: a run resumed at epoch k
// sees the same batches as one that never stopped. The shuffle is a Fisher-Yates written
// out in the library (not std::shuffle, whose algorithm the standard leaves open), so the
// same seed gives the same order with any standard library.

#include <cstdint>
#include <span>
#include <vector>

#include "bnlab/tensor.hpp"

namespace bnlab::data {

// A permutation of 0..n-1 for the given seed and epoch.
// REQUIRES: n >= 0, else std::invalid_argument.
std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

// Fills order with a permutation of 0..order.size()-1 for (seed, epoch), reusing its memory.
void fill_epoch_permutation(std::span<std::int64_t> order, std::uint64_t seed, std::int64_t epoch);

// WHAT THIS OBJECT REPRESENTS
//   The batches of one epoch over num_examples examples: ceil(num_examples / batch_size)
//   batches of row indices, each batch_size long except possibly the last (as Keras's fit:
//   55,000 examples in batches of 32 give 1,719 batches, the last of 24).
// ENSURES: start_epoch() allocates nothing; batch(i) is a view valid until the next
//   start_epoch() or the iterator's destruction.
class BatchIterator {
public:
  enum class Order { Sequential, Shuffled };

  // REQUIRES: num_examples >= 0, batch_size >= 1, else std::invalid_argument.
  // The iterator starts at epoch 0.
  BatchIterator(std::int64_t num_examples, std::int64_t batch_size, std::uint64_t seed,
                Order order = Order::Shuffled);

  // Sets the order for this epoch (the identity for Order::Sequential).
  void start_epoch(std::int64_t epoch);

  std::int64_t epoch() const { return epoch_; }
  std::int64_t num_examples() const { return static_cast<std::int64_t>(order_.size()); }
  std::int64_t batch_size() const { return batch_size_; }
  std::int64_t num_batches() const;
  // Row indices of batch index (0 <= index < num_batches(), else std::out_of_range).
  std::span<const std::int64_t> batch(std::int64_t index) const;
  // The whole epoch's order.
  std::span<const std::int64_t> order() const { return order_; }

private:
  std::vector<std::int64_t> order_;
  std::int64_t batch_size_;
  std::uint64_t seed_;
  Order mode_;
  std::int64_t epoch_ = 0;
};

// Copies rows[i] of source (dimension 0) into row i of destination, for every i. Allocates
// nothing: destination is the caller's preallocated batch buffer, or a view of its first
// rows for a short last batch (buffer.slice_batch(0, rows.size())).
// REQUIRES: destination.dim(0) == rows.size(); both have the same number of elements per row;
//   every row index is in [0, source.dim(0)); else std::invalid_argument / std::out_of_range
//   naming the values.
void gather_rows(const Tensor& source, std::span<const std::int64_t> rows, Tensor& destination);

// Labels counterpart of gather_rows: destination[i] = source[rows[i]].
// REQUIRES: destination.size() == rows.size(), row indices in range.
void gather_labels(std::span<const std::int32_t> source, std::span<const std::int64_t> rows,
                   std::span<std::int32_t> destination);

}  // namespace bnlab::data
