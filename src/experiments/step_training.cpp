#include "bnlab/experiments/step_training.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "bnlab/layers/layers.hpp"
#include "model/thread_chooser.hpp"

namespace bnlab::experiments {

Sequential make_mlp(const MlpSpec& spec, std::uint64_t seed) {
  if (spec.hidden_units.empty()) throw std::invalid_argument("make_mlp: at least one hidden layer is needed");
  for (const auto units : spec.hidden_units)
    if (units < 1) throw std::invalid_argument(fmt::format("make_mlp: a hidden layer has {} units, must be >= 1", units));
  if (spec.activation != "sigmoid" && spec.activation != "relu")
    throw std::invalid_argument(
        fmt::format("make_mlp: activation is '{}', expected 'sigmoid' or 'relu'", spec.activation));
  if (!std::isfinite(spec.init_stddev) || spec.init_stddev < 0)
    throw std::invalid_argument(fmt::format("make_mlp: init_stddev is {}, must be finite and >= 0", spec.init_stddev));

  Sequential model(spec.batch_norm ? "mlp_bn" : "mlp");
  model.add(std::make_unique<Flatten>());
  for (const auto units : spec.hidden_units) {
    model.add(std::make_unique<Dense>(units, "linear", !spec.batch_norm, spec.kernel_initializer));
    if (spec.batch_norm) model.add(std::make_unique<BatchNormalization>());
    model.add(std::make_unique<Activation>(spec.activation));
  }
  model.add(std::make_unique<Dense>(data::fashion_mnist_classes, "softmax", true, spec.kernel_initializer));
  model.build({data::fashion_mnist_image_size, data::fashion_mnist_image_size}, seed);

  if (spec.init_stddev > 0) {
    // A generator of its own, seeded apart from build()'s, so the Gaussian weights depend on
    // the seed alone and not on how many numbers the Keras initializers drew.
    Rng rng(seed ^ 0x5DEECE66DULL);
    for (std::size_t i = 0; i < model.size(); ++i) {
      if (model.layer(i).type_name() != "Dense") continue;
      for (Parameter* p : model.layer(i).parameters()) {
        if (p->name != "kernel") continue;
        for (std::int64_t k = 0; k < p->value.size(); ++k)
          p->value[k] = static_cast<float>(spec.init_stddev * initializers::standard_normal(rng));
      }
    }
  }
  return model;
}

std::vector<std::size_t> hidden_activation_layers(const Sequential& model) {
  std::vector<std::size_t> indices;
  for (std::size_t i = 0; i < model.size(); ++i)
    if (model.layer(i).type_name() == "Activation") indices.push_back(i);
  return indices;
}

const Tensor& forward_through(Sequential& model, std::size_t last_layer, const Tensor& x) {
  if (last_layer >= model.size())
    throw std::invalid_argument(
        fmt::format("forward_through: layer {} requested, the model has {} layers", last_layer, model.size()));
  const Tensor* current = &x;
  for (std::size_t i = 0; i <= last_layer; ++i) current = &model.layer(i).forward(*current, false);
  return *current;
}

StepTrainer::StepTrainer(Sequential& model, const data::Dataset& train, std::int64_t batch_size, std::uint64_t seed,
                         std::int64_t thread_probe_interval)
    : model_(model),
      train_(train),
      batches_(train.size(), std::max<std::int64_t>(batch_size, 1), seed),
      batch_size_(batch_size),
      steps_per_epoch_(batch_size >= 1 ? train.size() / batch_size : 0),
      thread_probe_interval_(thread_probe_interval) {
  if (thread_probe_interval < 0)
    throw std::invalid_argument(fmt::format("thread_probe_interval is {}, must be >= 0", thread_probe_interval));
  if (!model.compiled()) throw std::invalid_argument("StepTrainer: the model is not compiled");
  if (batch_size < 1) throw std::invalid_argument(fmt::format("batch size is {}, must be >= 1", batch_size));
  if (batch_size > train.size())
    throw std::invalid_argument(fmt::format("batch size {} is larger than the {} training examples (use a smaller "
                                            "batch or more training data)",
                                            batch_size, train.size()));
  trainable_ = model.trainable_parameters();
  std::vector<std::int64_t> shape = train.images.shape();
  shape[0] = batch_size;
  batch_x_ = Tensor(shape);
  batch_y_.resize(static_cast<std::size_t>(batch_size));
  batches_.start_epoch(0);
  thread_chooser_ = std::make_unique<detail::ThreadChooser>(omp_get_max_threads(), thread_probe_interval_);
}

StepTrainer::~StepTrainer() = default;

double StepTrainer::step() {
  if (diverged_) throw std::logic_error("StepTrainer::step: the run diverged; no further steps");
  detail::ThreadCountScope thread_count;  // the caller's count again when the step returns
  thread_chooser_->prepare(thread_count.configured(), thread_probe_interval_);
  thread_count.use(thread_chooser_->threads());
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t index = steps_ % steps_per_epoch_;
  if (index == 0 && steps_ > 0) batches_.start_epoch(steps_ / steps_per_epoch_);
  // A batch of the iterator is batch_size long except its last; full batches only (index <
  // floor(N / batch_size)), so it is always batch_size long here.
  const auto rows = batches_.batch(index);
  data::gather_rows(train_.images, rows, batch_x_);
  data::gather_labels(train_.labels, rows, batch_y_);
  const double loss = model_.compute_gradients(batch_x_, batch_y_);
  if (!std::isfinite(loss)) {
    diverged_ = true;
    return loss;
  }
  model_.optimizer().apply(trainable_);
  ++steps_;
  thread_chooser_->record(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return loss;
}

double accuracy_of(Sequential& model, const data::Dataset& set) {
  if (set.size() == 0) return 0.0;
  return model.evaluate(set.images, set.labels, 1000).accuracy;
}

double percentile(std::vector<float>& values, double p) {
  if (values.empty()) throw std::invalid_argument("percentile: no values");
  if (!(p >= 0 && p <= 100)) throw std::invalid_argument(fmt::format("percentile: p is {}, must be in [0, 100]", p));
  std::sort(values.begin(), values.end());
  const double position = p / 100.0 * static_cast<double>(values.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, values.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return static_cast<double>(values[below]) + fraction * (static_cast<double>(values[above]) - values[below]);
}

std::int64_t evaluation_interval(std::int64_t steps, std::int64_t every, std::int64_t points) {
  if (every > 0) return every;
  return std::max<std::int64_t>(1, steps / std::max<std::int64_t>(points, 1));
}

}  // namespace bnlab::experiments
