#pragma once
// The training loop the paper's and the seeds' experiments need and Sequential::fit does not
// give: one SGD step at a time, so an experiment can evaluate every K steps (the paper counts
// steps, not epochs), read a hidden layer's output between steps, and record a diverging run
// instead of losing it. Also the MLPs those experiments train.
//
// Batches: each epoch is a seeded permutation (data::BatchIterator, so a seed gives the same
// batches everywhere) cut into floor(N / batch_size) full batches; the short remainder is
// dropped, because BatchNormalization's statistics over a remainder of one or two examples
// would be degenerate (one example has variance 0: every output is beta) and would make the
// batch size, the very thing some experiments vary, differ from step to step.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bnlab/data/batching.hpp"
#include "bnlab/data/fashion_mnist.hpp"
#include "bnlab/model.hpp"

namespace bnlab::detail {
class ThreadChooser;
}

namespace bnlab::experiments {

// A multilayer perceptron on 28 x 28 images: Flatten, then per hidden layer
//   without BN:  Dense(units, use_bias=true)  -> Activation(activation)
//   with BN:     Dense(units, use_bias=false) -> BatchNormalization -> Activation(activation)
// (BN before the nonlinearity, as the paper places it; beta replaces the bias), then
// Dense(10, softmax). The activation is a separate layer so that its input, the quantity the
// paper's Figure 1 follows, can be read with forward_through().
struct MlpSpec {
  std::vector<std::int64_t> hidden_units{100, 100, 100};
  std::string activation = "sigmoid";  // "sigmoid" or "relu"
  bool batch_norm = false;
  // > 0: every kernel drawn from N(0, init_stddev^2) (the paper's "small random Gaussian
  // values"); 0: the Dense layer's kernel_initializer below.
  double init_stddev = 0.0;
  std::string kernel_initializer = "glorot_uniform";
};

// Builds (weights from seed) but does not compile. Throws std::invalid_argument for no hidden
// layer, a unit count < 1, an unknown activation or a negative / non-finite init_stddev.
Sequential make_mlp(const MlpSpec& spec, std::uint64_t seed);

// Indices (into the model's layers) of the hidden Activation layers, first to last.
std::vector<std::size_t> hidden_activation_layers(const Sequential& model);

// Runs layers 0..last_layer of model in inference mode on x and returns the output of
// last_layer (a buffer owned by that layer, valid until its next forward). Moves no
// statistics: BatchNormalization uses its moving mean and variance, as at test time.
const Tensor& forward_through(Sequential& model, std::size_t last_layer, const Tensor& x);

// WHAT THIS OBJECT REPRESENTS
//   Mini-batch training of a compiled model on a data set, one optimizer step per step().
// REQUIRES: model built and compiled; 1 <= batch_size <= train.size() (else
//   std::invalid_argument naming both). The data set must outlive the trainer.
class StepTrainer {
public:
  // thread_probe_interval: as FitOptions's; steps run on one thread while that is measured
  // faster, and the caller's thread count is back when step() returns (the evaluations between
  // steps run on it).
  StepTrainer(Sequential& model, const data::Dataset& train, std::int64_t batch_size, std::uint64_t seed,
              std::int64_t thread_probe_interval = FitOptions{}.thread_probe_interval);
  ~StepTrainer();
  StepTrainer(const StepTrainer&) = delete;
  StepTrainer& operator=(const StepTrainer&) = delete;

  // Trains on the next batch and returns its mean loss. A non-finite loss applies no update,
  // sets diverged() and is returned; step() must not be called again after that.
  double step();

  std::int64_t steps_taken() const { return steps_; }
  std::int64_t steps_per_epoch() const { return steps_per_epoch_; }
  // Epochs fully trained (steps_taken() / steps_per_epoch()).
  std::int64_t epochs_completed() const { return steps_ / steps_per_epoch_; }
  bool diverged() const { return diverged_; }

private:
  Sequential& model_;
  const data::Dataset& train_;
  std::vector<Parameter*> trainable_;
  data::BatchIterator batches_;
  Tensor batch_x_;
  std::vector<std::int32_t> batch_y_;
  std::int64_t batch_size_;
  std::int64_t steps_per_epoch_;
  std::int64_t steps_ = 0;
  bool diverged_ = false;
  std::int64_t thread_probe_interval_;
  std::unique_ptr<detail::ThreadChooser> thread_chooser_;
};

// Accuracy in inference mode (moving statistics) over the whole set, in batches of 1,000 for
// speed; 0 for an empty set.
double accuracy_of(Sequential& model, const data::Dataset& set);

// The p-th percentile (0 <= p <= 100) of values by linear interpolation between the closest
// ranks (NumPy's default method). Sorts values. Throws std::invalid_argument for no values or
// p outside [0, 100].
double percentile(std::vector<float>& values, double p);

// "every" > 0 as given; 0 means about `points` evaluations over the run: max(1, steps / points).
std::int64_t evaluation_interval(std::int64_t steps, std::int64_t every, std::int64_t points);

}  // namespace bnlab::experiments
