// Counts C++ heap allocations across a training step: after the first step at a batch size (and
// after the first time each batch size is seen), forward and backward must allocate nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "bnlab/layers/layers.hpp"
#include "layers/grad_check.hpp"

namespace {
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// GCC 12 flags free() in a replaced operator delete as mismatched with new, not seeing that
// the operator new above is the one that paired it with malloc.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace bnlab {
namespace {

TEST(Allocation, TrainingStepAllocatesNothingAfterWarmUp) {
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<Conv2D>(4, std::array<std::int64_t, 2>{3, 3}, std::array<std::int64_t, 2>{1, 1},
                                            "same", "relu"));
  layers.push_back(std::make_unique<BatchNormalization>());
  layers.push_back(std::make_unique<LeakyReLU>());
  GroupNormalizationOptions groups;
  groups.groups = 2;
  layers.push_back(std::make_unique<GroupNormalization>(groups));
  LayerNormalizationOptions over_rows;  // not the last axis: the samples are copied in the kernel's order
  over_rows.axis = {1};
  layers.push_back(std::make_unique<LayerNormalization>(over_rows));
  layers.push_back(std::make_unique<MaxPool2D>());
  layers.push_back(std::make_unique<Dropout>(0.25f, 3));
  layers.push_back(std::make_unique<Flatten>());
  layers.push_back(std::make_unique<Dense>(16, "linear", false));
  layers.push_back(std::make_unique<BatchNormalization>(BatchNorm1d(16)));
  layers.push_back(std::make_unique<Activation>("tanh"));
  layers.push_back(std::make_unique<LayerNormalization>());
  layers.push_back(std::make_unique<Dense>(5, "softmax"));
  Rng rng(1);
  Shape shape{8, 8, 2};
  for (auto& layer : layers) shape = layer->build(shape, rng);

  const Tensor x_full = testing::random_tensor({6, 8, 8, 2}, Layout::NHWC, 2);
  const Tensor dlogits_full = testing::random_tensor({6, 5}, Layout::NC, 3);
  // Inference pass through the whole stack, as evaluate() does between epochs.
  auto infer = [&](std::int64_t batch) {
    const Tensor x = x_full.slice_batch(0, batch);
    const Tensor* y = &x;
    for (auto& layer : layers) y = &layer->forward(*y, false);
  };
  auto train = [&](std::int64_t batch) {
    const Tensor x = x_full.slice_batch(0, batch);
    const Tensor dlogits = dlogits_full.slice_batch(0, batch);
    const Tensor* y = &x;
    for (auto& layer : layers) y = &layer->forward(*y, true);
    const Tensor* dy = &layers.back()->backward_from_logits(dlogits);
    for (std::size_t i = layers.size() - 1; i-- > 0;) dy = &layers[i]->backward(*dy);
  };
  const long start = allocations.load();
  train(6);
  train(4);  // the short last batch
  infer(6);
  EXPECT_GT(allocations.load() - start, 0);  // the counter sees the first step's buffers
  const long before = allocations.load();
  train(6);
  train(4);
  train(6);
  infer(4);
  EXPECT_EQ(allocations.load() - before, 0);
}

}  // namespace
}  // namespace bnlab
