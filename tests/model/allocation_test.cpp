// A training step allocates nothing after the first: counted through the global operator new,
// replaced here for the whole test_model binary (it only counts while a test asks it to).
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "bnlab/models.hpp"
#include "model/test_layers.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
// GCC 12 flags free() in a replaced operator delete as mismatched with new, not seeing that
// the operator new above is the one that paired it with malloc.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace bnlab {
namespace {

long allocations_during_fit(Sequential& model, std::int64_t samples, const Shape& per_sample,
                            std::int64_t thread_probe_interval = FitOptions{}.thread_probe_interval) {
  Shape shape{samples};
  shape.insert(shape.end(), per_sample.begin(), per_sample.end());
  Tensor x(shape);
  for (std::int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 101) / 101.0f;
  std::vector<std::int32_t> y(static_cast<std::size_t>(samples));
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::int32_t>(i % 3);
  FitOptions o;
  o.epochs = 1;
  o.batch_size = 16;
  o.verbose = Verbosity::silent;
  o.thread_probe_interval = thread_probe_interval;
  allocations = 0;
  counting = true;
  model.fit(x, y, o);
  counting = false;
  return allocations.load();
}

// The same fit with three times the steps must allocate exactly as often: whatever a fit
// allocates (its history, the shuffle order) is per call, not per step.
void expect_no_allocation_per_step(Sequential& model, const Shape& per_sample) {
  allocations_during_fit(model, 32, per_sample);  // first steps: layers size their buffers
  const long short_run = allocations_during_fit(model, 32, per_sample);
  const long long_run = allocations_during_fit(model, 96, per_sample);
  EXPECT_EQ(long_run, short_run);
}

TEST(Allocation, NonePerTrainingStepWithStandInLayers) {
  Sequential model;
  model.add(std::make_unique<testing::TestDense>(8, "relu"));
  model.add(std::make_unique<testing::TestBatchNorm>());
  model.add(std::make_unique<testing::TestDense>(3, "softmax"));
  model.build({5}, 1);
  model.compile(std::make_unique<Adam>());
  expect_no_allocation_per_step(model, {5});
}

// fit's trials of one thread against two (src/model/thread_chooser.hpp) switch the OpenMP thread
// count every few steps here: 40 steps against 120, both with trials.
TEST(Allocation, NonePerTrainingStepWhileFitComparesThreadCounts) {
  const int before = omp_get_max_threads();
  omp_set_num_threads(2);
  Sequential model;
  model.add(std::make_unique<testing::TestDense>(8, "relu"));
  model.add(std::make_unique<testing::TestDense>(3, "softmax"));
  model.build({5}, 1);
  model.compile(std::make_unique<SGD>(1e-3));
  allocations_during_fit(model, 640, {5}, 1);
  const long short_run = allocations_during_fit(model, 640, {5}, 1);
  const long long_run = allocations_during_fit(model, 1920, {5}, 1);
  omp_set_num_threads(before);
  EXPECT_EQ(long_run, short_run);
}

TEST(Allocation, NoneFromTheModelPerTrainingStepWithSeedModel) {
  Sequential model = make_seed_model("bn", 1);
  model.compile(std::make_unique<SGD>(1e-3, 0.9));
  expect_no_allocation_per_step(model, seed_model_input_shape);
}

// The regularizers' penalty and gradient (looked up per parameter every step) allocate nothing.
TEST(Allocation, NonePerTrainingStepWithRegularizers) {
  Sequential model = make_seed_model("bn", 1);
  model.layer(2).set_regularizer("kernel", Regularizer{0.0, 1e-4});
  model.layer(1).set_regularizer("gamma", Regularizer{1e-5, 0.0});
  model.compile(std::make_unique<SGD>(1e-3));
  ASSERT_GT(model.regularization_loss(), 0.0);
  expect_no_allocation_per_step(model, seed_model_input_shape);
}

}  // namespace
}  // namespace bnlab
