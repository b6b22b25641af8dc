#include "bnlab/tensor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include <sys/mman.h>

namespace bnlab {

std::string to_string(Layout layout) {
  switch (layout) {
    case Layout::Plain:
      return "plain";
    case Layout::NC:
      return "NC";
    case Layout::NCHW:
      return "NCHW";
    case Layout::NHWC:
      return "NHWC";
  }
  return "unknown";
}

void AlignedDeleter::operator()(float* p) const { std::free(p); }

namespace {
thread_local std::int64_t* allocation_budget = nullptr;
}  // namespace

TensorAllocationBudget::TensorAllocationBudget(std::int64_t elements)
    : remaining_(elements), previous_(allocation_budget) {
  allocation_budget = &remaining_;
}

TensorAllocationBudget::~TensorAllocationBudget() { allocation_budget = previous_; }

static void draw_from_budget(std::int64_t elements) {
  if (!allocation_budget) return;
  if (elements > *allocation_budget)
    throw std::length_error(fmt::format("a tensor of {} elements exceeds the {} elements left in this budget",
                                        elements, *allocation_budget));
  *allocation_budget -= elements;
}

static constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;

static float* allocate_aligned(std::int64_t count) {
  // aligned_alloc needs a size that is a multiple of the alignment; round up, and never ask for 0.
  std::size_t bytes = static_cast<std::size_t>(std::max<std::int64_t>(count, 1)) * sizeof(float);
  // Buffers of a huge page or more start on a huge-page boundary and ask the kernel for
  // transparent huge pages (Debian's default mode is madvise): a 200 MB activation then needs
  // about 100 TLB entries instead of 50,000, and the zero fill below faults 512 times less.
  const bool huge = bytes >= huge_page_bytes;
  const std::size_t alignment = huge ? huge_page_bytes : Tensor::alignment;
  bytes = (bytes + alignment - 1) / alignment * alignment;
  void* p = std::aligned_alloc(alignment, bytes);
  if (!p) throw std::bad_alloc();
  if (huge) ::madvise(p, bytes, MADV_HUGEPAGE);  // advice only: where THP is off, small pages it is
  std::memset(p, 0, bytes);
  return static_cast<float*>(p);
}

AlignedBuffer make_aligned_buffer(std::int64_t count) {
  if (count < 0) throw std::invalid_argument(fmt::format("make_aligned_buffer: count {} is negative", count));
  return AlignedBuffer(allocate_aligned(count));
}

static void check_layout_rank(Layout layout, int rank) {
  const bool ok = layout == Layout::Plain || (layout == Layout::NC && rank == 2) ||
                  ((layout == Layout::NCHW || layout == Layout::NHWC) && rank == 4);
  if (!ok)
    throw std::invalid_argument(
        fmt::format("Tensor: layout {} does not fit rank {} (NC needs 2 dimensions, NCHW and NHWC need 4)",
                    to_string(layout), rank));
}

static std::int64_t checked_size(const std::vector<std::int64_t>& shape) {
  if (shape.empty() || shape.size() > static_cast<std::size_t>(Tensor::max_rank))
    throw std::invalid_argument(fmt::format("Tensor: rank {} is outside 1..{}", shape.size(), Tensor::max_rank));
  std::int64_t size = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0)
      throw std::invalid_argument(fmt::format("Tensor: dimension {} is {}, must not be negative", i, shape[i]));
    if (shape[i] != 0 && size > (std::int64_t{1} << 40) / shape[i])
      throw std::invalid_argument("Tensor: shape has more than 2^40 elements");
    size *= shape[i];
  }
  return size;
}

Tensor::Tensor(std::initializer_list<std::int64_t> shape, Layout layout)
    : Tensor(std::vector<std::int64_t>(shape), layout) {}

Tensor::Tensor(const std::vector<std::int64_t>& shape, Layout layout) {
  size_ = checked_size(shape);
  rank_ = static_cast<int>(shape.size());
  check_layout_rank(layout, rank_);
  layout_ = layout;
  std::copy(shape.begin(), shape.end(), shape_.begin());
  draw_from_budget(size_);
  storage_ = std::shared_ptr<float>(allocate_aligned(size_), AlignedDeleter{});
  data_ = storage_.get();
}

Tensor Tensor::zeros(const std::vector<std::int64_t>& shape, Layout layout) { return Tensor(shape, layout); }

Tensor Tensor::full(const std::vector<std::int64_t>& shape, float value, Layout layout) {
  Tensor t(shape, layout);
  t.fill(value);
  return t;
}

Tensor Tensor::from(const std::vector<std::int64_t>& shape, const std::vector<float>& values, Layout layout) {
  Tensor t(shape, layout);
  if (static_cast<std::int64_t>(values.size()) != t.size())
    throw std::invalid_argument(fmt::format("Tensor::from: {} values given for shape {} ({} elements)", values.size(),
                                            t.shape_string(), t.size()));
  std::copy(values.begin(), values.end(), t.data_);
  return t;
}

std::int64_t Tensor::dim(int i) const {
  if (i < 0) i += rank_;
  if (i < 0 || i >= rank_) throw std::out_of_range(fmt::format("Tensor::dim: index {} for rank {}", i, rank_));
  return shape_[i];
}

std::int64_t Tensor::batch() const {
  if (layout_ == Layout::Plain) throw std::logic_error("Tensor::batch: a plain tensor has no batch dimension");
  return shape_[0];
}
std::int64_t Tensor::channels() const {
  switch (layout_) {
    case Layout::NC:
    case Layout::NCHW:
      return shape_[1];
    case Layout::NHWC:
      return shape_[3];
    default:
      throw std::logic_error("Tensor::channels: a plain tensor has no channel dimension");
  }
}
std::int64_t Tensor::height() const {
  if (layout_ == Layout::NCHW) return shape_[2];
  if (layout_ == Layout::NHWC) return shape_[1];
  throw std::logic_error("Tensor::height: only NCHW and NHWC tensors have a height");
}
std::int64_t Tensor::width() const {
  if (layout_ == Layout::NCHW) return shape_[3];
  if (layout_ == Layout::NHWC) return shape_[2];
  throw std::logic_error("Tensor::width: only NCHW and NHWC tensors have a width");
}

Tensor Tensor::reshape(const std::vector<std::int64_t>& shape, Layout layout) const {
  const std::int64_t size = checked_size(shape);
  if (size != size_)
    throw std::invalid_argument(
        fmt::format("Tensor::reshape: cannot view {} ({} elements) as {} elements", shape_string(), size_, size));
  check_layout_rank(layout, static_cast<int>(shape.size()));
  Tensor view = *this;
  view.rank_ = static_cast<int>(shape.size());
  view.shape_ = {};
  std::copy(shape.begin(), shape.end(), view.shape_.begin());
  view.layout_ = layout;
  return view;
}

Tensor Tensor::slice_batch(std::int64_t begin, std::int64_t end) const {
  if (rank_ == 0) throw std::logic_error("Tensor::slice_batch: tensor is undefined");
  if (begin < 0 || end < begin || end > shape_[0])
    throw std::out_of_range(
        fmt::format("Tensor::slice_batch: [{}, {}) is outside dimension 0 of size {}", begin, end, shape_[0]));
  const std::int64_t row = shape_[0] == 0 ? 0 : size_ / shape_[0];
  Tensor view = *this;
  view.shape_[0] = end - begin;
  view.size_ = row * (end - begin);
  view.data_ = data_ + begin * row;
  return view;
}

Tensor Tensor::with_layout(Layout layout) const {
  check_layout_rank(layout, rank_);
  Tensor view = *this;
  view.layout_ = layout;
  return view;
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor copy(shape(), layout_);
  std::copy(data_, data_ + size_, copy.data_);
  return copy;
}

void Tensor::fill(float value) { std::fill(data_, data_ + size_, value); }

std::string Tensor::shape_string() const {
  std::string s = "(";
  for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + (rank_ == 1 ? ",)" : ")");
}

}  // namespace bnlab
