#pragma once
// WHAT THIS OBJECT REPRESENTS
//   A dense float32 tensor of rank 1 to 4 with a named memory layout. Storage is owned,
//   64-byte aligned (one cache line, one AVX-512 register) and shared between a tensor and
//   its views: a view (reshape, batch slice) never copies, and writes through a view are
//   seen by every tensor that shares the storage. Copying a Tensor copies the handle;
//   clone() copies the data.
// Layouts name what each dimension means: NC (batch, features), NCHW (channels outside the
// image plane), NHWC (channels innermost), or Plain (rank 1, or any shape without meaning).

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace bnlab {

enum class Layout { Plain, NC, NCHW, NHWC };

std::string to_string(Layout layout);

class Tensor {
 public:
  static constexpr int max_rank = 4;
  static constexpr std::size_t alignment = 64;

  Tensor() = default;
  // Zero-filled tensor. Throws std::invalid_argument if a dimension is negative, the rank is
  // outside 1..4, or the layout does not fit the rank (NC needs 2, NCHW/NHWC need 4).
  Tensor(std::initializer_list<std::int64_t> shape, Layout layout = Layout::Plain);
  Tensor(const std::vector<std::int64_t>& shape, Layout layout = Layout::Plain);

  static Tensor zeros(const std::vector<std::int64_t>& shape, Layout layout = Layout::Plain);
  static Tensor full(const std::vector<std::int64_t>& shape, float value, Layout layout = Layout::Plain);
  static Tensor from(const std::vector<std::int64_t>& shape, const std::vector<float>& values,
                     Layout layout = Layout::Plain);

  int rank() const { return rank_; }
  Layout layout() const { return layout_; }
  std::int64_t dim(int i) const;
  std::vector<std::int64_t> shape() const { return {shape_.begin(), shape_.begin() + rank_}; }
  std::int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool defined() const { return storage_ != nullptr; }

  // Named dimensions, valid for the layouts that have them.
  std::int64_t batch() const;     // N
  std::int64_t channels() const;  // C (features for NC)
  std::int64_t height() const;
  std::int64_t width() const;

  float* data() { return data_; }
  const float* data() const { return data_; }
  float& operator[](std::int64_t i) { return data_[i]; }
  float operator[](std::int64_t i) const { return data_[i]; }

  // Views without copies.
  Tensor reshape(const std::vector<std::int64_t>& shape, Layout layout = Layout::Plain) const;
  Tensor slice_batch(std::int64_t begin, std::int64_t end) const;  // rows [begin, end) of dim 0
  Tensor with_layout(Layout layout) const;                         // same data, layout renamed

  Tensor clone() const;
  void fill(float value);
  bool shares_storage_with(const Tensor& other) const { return storage_ == other.storage_; }

  std::string shape_string() const;  // "(32, 300)"

 private:
  std::shared_ptr<float> storage_;
  float* data_ = nullptr;
  std::array<std::int64_t, max_rank> shape_{};
  int rank_ = 0;
  std::int64_t size_ = 0;
  Layout layout_ = Layout::Plain;
};

// While one is alive on a thread, Tensors created on that thread draw their elements from a
// fixed budget and throw std::length_error past it. A loader that rebuilds a model from an
// untrusted file sets the budget from what the file holds, so a forged architecture (a Dense
// layer of 10^12 units) is refused before it can ask for terabytes.
class TensorAllocationBudget {
public:
  explicit TensorAllocationBudget(std::int64_t elements);
  ~TensorAllocationBudget();
  TensorAllocationBudget(const TensorAllocationBudget&) = delete;
  TensorAllocationBudget& operator=(const TensorAllocationBudget&) = delete;

private:
  std::int64_t remaining_;
  std::int64_t* previous_;
};

// 64-byte aligned float buffer for kernel scratch and parameters that are not Tensors.
struct AlignedDeleter {
  void operator()(float* p) const;
};
using AlignedBuffer = std::unique_ptr<float[], AlignedDeleter>;
AlignedBuffer make_aligned_buffer(std::int64_t count);  // zero-filled

}  // namespace bnlab
