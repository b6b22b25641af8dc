#include <fmt/format.h>
#include <fmt/ranges.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <numeric>
#include <random>
#include <stdexcept>

#include "bnlab/kernels/activations.hpp"
#include "bnlab/kernels/loss.hpp"
#include "bnlab/kernels/regularization.hpp"
#include "bnlab/model.hpp"
#include "bnlab/profile.hpp"
#include "model/thread_chooser.hpp"
#include "model/train_buffers.hpp"

namespace bnlab {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Keras's Progbar metric format: four decimals, scientific once the value is tiny.
void append_metric(std::string& s, const char* name, double value) {
  s += std::fabs(value) > 1e-3 ? fmt::format(" - {}: {:.4f}", name, value) : fmt::format(" - {}: {:.4e}", name, value);
}

std::string count_prefix(std::int64_t current, std::int64_t target) {
  const int digits = static_cast<int>(std::to_string(target).size());
  return fmt::format("{:>{}}/{}", current, digits, target);
}

// Keras's Progbar (verbose=1 and verbose=2), reproduced for its text, not its internals.
class Progress {
public:
  Progress(std::ostream& out, Verbosity verbosity, std::int64_t target)
      : out_(out), verbosity_(verbosity), target_(target), start_(Clock::now()), last_update_(start_) {}

  // During the epoch: the bar with its ETA, at most every 50 ms (Keras's interval), rewritten
  // in place with '\r'.
  void step(std::int64_t current, double loss, double accuracy) {
    if (verbosity_ != Verbosity::progress_bar) return;
    const auto now = Clock::now();
    if (current > 1 && seconds_between(last_update_, now) < 0.05) return;
    std::string line = bar(current);
    const double per_step = seconds_between(start_, now) / static_cast<double>(current);
    const double eta = per_step * static_cast<double>(target_ - current);
    if (eta > 3600)
      line += fmt::format(" - ETA: {}:{:02d}:{:02d}", static_cast<long>(eta / 3600),
                          static_cast<long>(std::fmod(eta, 3600) / 60), static_cast<long>(std::fmod(eta, 60)));
    else if (eta > 60)
      line += fmt::format(" - ETA: {}:{:02d}", static_cast<long>(eta / 60), static_cast<long>(std::fmod(eta, 60)));
    else
      line += fmt::format(" - ETA: {}s", static_cast<long>(eta));
    append_metric(line, "loss", loss);
    append_metric(line, "accuracy", accuracy);
    write_over(line, false);
    last_update_ = now;
  }

  void finish(double loss, double accuracy, const double* val_loss, const double* val_accuracy) {
    if (verbosity_ == Verbosity::silent) return;
    const double elapsed = seconds_between(start_, Clock::now());
    std::string line;
    if (verbosity_ == Verbosity::progress_bar) {
      line = bar(target_) + fmt::format(" - {:.0f}s", elapsed);
      const double per_step = elapsed / static_cast<double>(target_);
      if (per_step >= 1 || per_step == 0)
        line += fmt::format(" {:.0f}s/step", per_step);
      else if (per_step >= 1e-3)
        line += fmt::format(" {:.0f}ms/step", per_step * 1e3);
      else
        line += fmt::format(" {:.0f}us/step", per_step * 1e6);
    } else {
      line = count_prefix(target_, target_) + fmt::format(" - {:.0f}s", elapsed);
    }
    append_metric(line, "loss", loss);
    append_metric(line, "accuracy", accuracy);
    if (val_loss) append_metric(line, "val_loss", *val_loss);
    if (val_accuracy) append_metric(line, "val_accuracy", *val_accuracy);
    if (verbosity_ == Verbosity::progress_bar)
      write_over(line, true);
    else
      out_ << line << '\n' << std::flush;
  }

private:
  std::string bar(std::int64_t current) const {
    static constexpr std::int64_t width = 30;
    std::string s = count_prefix(current, target_) + " [";
    const std::int64_t filled = width * current / target_;
    if (filled > 0) {
      s.append(static_cast<std::size_t>(filled - 1), '=');
      s += current < target_ ? '>' : '=';
    }
    s.append(static_cast<std::size_t>(width - filled), '.');
    return s + "]";
  }

  // Pads with spaces when the new line is shorter, so no tail of the old one stays visible.
  void write_over(std::string line, bool final_line) {
    const std::size_t width = line.size();
    if (width < shown_width_) line.append(shown_width_ - width, ' ');
    shown_width_ = width;
    out_ << '\r' << line;
    if (final_line) out_ << '\n';
    out_ << std::flush;
  }

  std::ostream& out_;
  Verbosity verbosity_;
  std::int64_t target_;
  Clock::time_point start_;
  Clock::time_point last_update_;
  std::size_t shown_width_ = 0;
};

// An unbiased index in [0, bound) from the generator's raw 64-bit output; unlike
// std::uniform_int_distribution its result is the same with every standard library.
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound;
  std::uint64_t r;
  do r = rng();
  while (r < threshold);
  return r % bound;
}

// Per-sample losses summed in double in row order, so the epoch's mean does not depend on how
// the batches were cut.
double sum_of(const float* values, std::int64_t count) {
  double total = 0.0;
  for (std::int64_t i = 0; i < count; ++i) total += values[i];
  return total;
}

// A row's first and last cache lines: that walks the page table for the (at most two) pages a
// row of a few KB spans and starts the hardware prefetcher on it. Asking for every line was
// no faster: the core stalls on its miss buffers while issuing them.
void prefetch_row(const float* p, std::int64_t floats) {
  __builtin_prefetch(p, 0, 3);
  __builtin_prefetch(p + floats - 1, 0, 3);
}

void shuffle_for_epoch(std::vector<std::int64_t>& order, std::uint64_t seed, int epoch) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(epoch)};
  std::mt19937_64 rng(seq);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[uniform_below(rng, i)]);
}

}  // namespace

const Tensor& Sequential::forward(const Tensor& x, bool training) {
  const Tensor* h = &x;
  for (auto& layer : layers_) h = &layer->forward(*h, training);
  return *h;
}

const Tensor& Sequential::logits_of_last_forward() const {
  // Only for a model ending in softmax; with from_logits the output of forward() is the logits.
  const Layer& last = *layers_.back();
  const Tensor* logits = last.softmax_logits();
  if (!logits)
    throw std::logic_error(fmt::format("Sequential '{}': layer '{}' ({}) says it ends in softmax but gives no logits",
                                       name_, last.name(), last.type_name()));
  return *logits;
}

void Sequential::backward_from_logits(const Tensor& dlogits) {
  // Down to the first layer with trainable parameters only (see build()).
  if (first_trained_layer_ >= layers_.size()) return;
  Layer& last = *layers_.back();
  const Tensor* grad = compile_options_.from_logits ? &last.backward(dlogits) : &last.backward_from_logits(dlogits);
  for (std::size_t i = layers_.size() - 1; i-- > first_trained_layer_;) {
    if (layers_[i + 1]->takes_over_previous_backward()) return;  // it wrote layer i's grads
    grad = &layers_[i]->backward(*grad);
  }
}

void Sequential::check_inputs(const char* who, const Tensor& x, std::span<const std::int32_t> y,
                              bool need_labels) const {
  if (!x.defined())
    throw std::invalid_argument(fmt::format("Sequential '{}': {}: x is undefined", name_, who));
  Shape per_sample = x.shape();
  per_sample.erase(per_sample.begin());
  if (per_sample != input_shape_)
    throw std::invalid_argument(fmt::format("Sequential '{}': {}: x has shape {}, expected (N, {})", name_, who,
                                            x.shape_string(), fmt::join(input_shape_, ", ")));
  if (x.dim(0) == 0) throw std::invalid_argument(fmt::format("Sequential '{}': {}: x has no samples", name_, who));
  if (!need_labels) return;
  if (static_cast<std::int64_t>(y.size()) != x.dim(0))
    throw std::invalid_argument(
        fmt::format("Sequential '{}': {}: {} labels for {} samples", name_, who, y.size(), x.dim(0)));
  const std::int64_t classes = layers_.back()->output_shape()[0];
  for (std::size_t i = 0; i < y.size(); ++i)
    if (y[i] < 0 || y[i] >= classes)
      throw std::invalid_argument(fmt::format("Sequential '{}': {}: label {} of sample {} is outside [0, {})", name_,
                                              who, y[i], i, classes));
}

History Sequential::fit(const Tensor& x, std::span<const std::int32_t> y, const FitOptions& options) {
  return fit(x, y, options, std::cout);
}

History Sequential::fit(const Tensor& x, std::span<const std::int32_t> y, const FitOptions& options,
                        std::ostream& out) {
  check_compiled("fit");
  check_loss_setup("fit");
  if (options.epochs < 0) throw std::invalid_argument(fmt::format("fit: epochs is {}, must be >= 0", options.epochs));
  if (options.initial_epoch < 0 || options.initial_epoch > options.epochs)
    throw std::invalid_argument(
        fmt::format("fit: initial_epoch is {}, must be in [0, epochs = {}]", options.initial_epoch, options.epochs));
  if (options.batch_size < 1)
    throw std::invalid_argument(fmt::format("fit: batch_size is {}, must be >= 1", options.batch_size));
  if (options.thread_probe_interval < 0)
    throw std::invalid_argument(
        fmt::format("fit: thread_probe_interval is {}, must be >= 0", options.thread_probe_interval));
  check_inputs("fit", x, y, true);
  const bool validate = options.validation_x.defined();
  if (validate) check_inputs("fit (validation data)", options.validation_x, options.validation_y, true);

  Verbosity verbosity = options.verbose;
  if (verbosity == Verbosity::automatic)
    verbosity = (&out == &std::cout && ::isatty(STDOUT_FILENO)) ? Verbosity::progress_bar : Verbosity::one_line_per_epoch;

  const std::int64_t samples = x.dim(0);
  const std::int64_t capacity = std::min(options.batch_size, samples);
  const std::int64_t steps = (samples + capacity - 1) / capacity;
  const std::int64_t classes = layers_.back()->output_shape()[0];
  const std::int64_t row = x.size() / samples;

  Shape batch_shape = x.shape();
  batch_shape[0] = capacity;
  if (!buffers_) buffers_ = std::make_unique<TrainBuffers>();
  TrainBuffers& buffers = *buffers_;
  if (!buffers.batch_x.defined() || buffers.batch_x.shape() != batch_shape || buffers.batch_x.layout() != x.layout()) {
    buffers.batch_x = Tensor(batch_shape, x.layout());
    buffers.batch_y.assign(static_cast<std::size_t>(capacity), 0);
    buffers.dlogits = Tensor({capacity, classes}, Layout::NC);
    buffers.probabilities = Tensor({capacity, classes}, Layout::NC);
    buffers.sample_losses = Tensor({capacity});
  }

  History history;
  std::vector<std::int64_t> order(static_cast<std::size_t>(samples));
  detail::ThreadCountScope thread_count;
  detail::ThreadChooser& thread_chooser = buffers.thread_chooser;
  thread_chooser.prepare(thread_count.configured(), options.thread_probe_interval);
  const int key_offset = next_shuffle_key_;
  for (int epoch = options.initial_epoch; epoch < options.epochs; ++epoch) {
    if (verbosity != Verbosity::silent) out << fmt::format("Epoch {}/{}\n", epoch + 1, options.epochs) << std::flush;
    const auto epoch_start = Clock::now();
    std::iota(order.begin(), order.end(), std::int64_t{0});
    const int shuffle_key = epoch + (options.initial_epoch == 0 ? key_offset : 0);
    next_shuffle_key_ = std::max(next_shuffle_key_, shuffle_key + 1);
    if (options.shuffle) shuffle_for_epoch(order, options.seed, shuffle_key);

    Progress progress(out, verbosity, steps);
    double loss_sum = 0.0;
    std::int64_t correct = 0;
    std::int64_t seen = 0;
    for (std::int64_t step = 0; step < steps; ++step) {
      thread_count.use(thread_chooser.threads());
      const auto step_start = Clock::now();
      const std::int64_t begin = step * capacity;
      const std::int64_t count = std::min(capacity, samples - begin);
      // Views of the preallocated buffers: copying a Tensor handle allocates nothing.
      Tensor batch_x = count == capacity ? buffers.batch_x : buffers.batch_x.slice_batch(0, count);
      Tensor dlogits = count == capacity ? buffers.dlogits : buffers.dlogits.slice_batch(0, count);
      {
        const profile::Scope gathering(profile::Section::batch);
        for (std::int64_t i = 0; i < count; ++i) {
          const std::int64_t source = order[static_cast<std::size_t>(begin + i)];
          std::memcpy(batch_x.data() + i * row, x.data() + source * row,
                      static_cast<std::size_t>(row) * sizeof(float));
          buffers.batch_y[static_cast<std::size_t>(i)] = y[static_cast<std::size_t>(source)];
        }
        // The next batch's rows are scattered over the whole training set, so its gather would
        // wait on DRAM (and a page walk) for every row; starting those misses now overlaps them
        // with this step (a gather of 32 rows of Fashion-MNIST: about 19 -> 11 us).
        const std::int64_t next_end = std::min(samples, begin + count + capacity);
        for (std::int64_t i = begin + count; row > 0 && i < next_end; ++i)
          prefetch_row(x.data() + order[static_cast<std::size_t>(i)] * row, row);
      }
      const Tensor& output = forward(batch_x, true);
      const Tensor& logits = compile_options_.from_logits ? output : logits_of_last_forward();
      // Probabilities and gradient in separate buffers (the loss kernels would allow them to
      // alias; the pair costs batch x classes floats).
      kernels::softmax_cross_entropy_forward(count, classes, logits.data(), buffers.batch_y.data(),
                                             buffers.probabilities.data(), buffers.sample_losses.data());
      const double batch_loss_sum = sum_of(buffers.sample_losses.data(), count);
      const double penalty = regularization_loss_at_current_weights();
      const double batch_loss = batch_loss_sum / static_cast<double>(count) + penalty;
      if (!std::isfinite(batch_loss)) throw NonFiniteLossError(epoch, step, batch_loss, history);
      const std::int64_t batch_correct = kernels::count_correct(count, classes, logits.data(), buffers.batch_y.data());
      kernels::softmax_cross_entropy_backward(count, classes, buffers.probabilities.data(), buffers.batch_y.data(),
                                              dlogits.data());
      backward_from_logits(dlogits);
      add_regularization_gradients();
      {
        const profile::Scope updating(profile::Section::optimizer);
        optimizer_->apply(trainable_);
      }

      thread_chooser.record(seconds_between(step_start, Clock::now()), count == capacity);

      // Keras's epoch loss: the mean of the batches' losses (penalty included) weighted by size.
      loss_sum += batch_loss_sum + penalty * static_cast<double>(count);
      correct += batch_correct;
      seen += count;
      progress.step(step + 1, loss_sum / static_cast<double>(seen),
                    static_cast<double>(correct) / static_cast<double>(seen));
    }

    const double epoch_loss = loss_sum / static_cast<double>(seen);
    const double epoch_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    history.loss.push_back(epoch_loss);
    history.accuracy.push_back(epoch_accuracy);
    if (validate) {
      const EvaluateResult val = evaluate(options.validation_x, options.validation_y, capacity);
      history.val_loss.push_back(val.loss);
      history.val_accuracy.push_back(val.accuracy);
    }
    history.seconds.push_back(seconds_between(epoch_start, Clock::now()));
    progress.finish(epoch_loss, epoch_accuracy, validate ? &history.val_loss.back() : nullptr,
                    validate ? &history.val_accuracy.back() : nullptr);
    if (options.on_epoch_end) {
      // The caller's code runs with the thread count it set, whatever the steps used; a count
      // it sets there holds for the epochs after, and after fit, as it would without the chooser.
      thread_count.use(thread_count.configured());
      const bool go_on = options.on_epoch_end(epoch, history);
      if (const int now = omp_get_max_threads(); now != thread_count.configured()) {
        thread_count.adopt(now);
        thread_chooser.prepare(now, options.thread_probe_interval);
      }
      if (!go_on) break;
    }
  }
  return history;
}

double Sequential::compute_gradients(const Tensor& x, std::span<const std::int32_t> y) {
  check_loss_setup("compute_gradients");
  check_inputs("compute_gradients", x, y, true);
  const std::int64_t rows = x.dim(0);
  const std::int64_t classes = layers_.back()->output_shape()[0];
  Tensor probabilities({rows, classes}, Layout::NC);
  Tensor dlogits({rows, classes}, Layout::NC);
  Tensor sample_losses({rows});
  const Tensor& output = forward(x, true);
  const Tensor& logits = compile_options_.from_logits ? output : logits_of_last_forward();
  kernels::softmax_cross_entropy_forward(rows, classes, logits.data(), y.data(), probabilities.data(),
                                         sample_losses.data());
  kernels::softmax_cross_entropy_backward(rows, classes, probabilities.data(), y.data(), dlogits.data());
  backward_from_logits(dlogits);
  add_regularization_gradients();
  return sum_of(sample_losses.data(), rows) / static_cast<double>(rows) + regularization_loss_at_current_weights();
}

EvaluateResult Sequential::evaluate(const Tensor& x, std::span<const std::int32_t> y, std::int64_t batch_size) {
  check_loss_setup("evaluate");
  if (batch_size < 1) throw std::invalid_argument(fmt::format("evaluate: batch_size is {}, must be >= 1", batch_size));
  check_inputs("evaluate", x, y, true);
  const std::int64_t samples = x.dim(0);
  const std::int64_t classes = layers_.back()->output_shape()[0];
  const std::int64_t rows = std::min(batch_size, samples);
  Tensor probabilities({rows, classes});
  Tensor sample_losses({rows});
  double loss_sum = 0.0;
  std::int64_t correct = 0;
  for (std::int64_t begin = 0; begin < samples; begin += batch_size) {
    const std::int64_t end = std::min(samples, begin + batch_size);
    const Tensor& output = forward(x.slice_batch(begin, end), false);
    const Tensor& logits = compile_options_.from_logits ? output : logits_of_last_forward();
    kernels::softmax_cross_entropy_forward(end - begin, classes, logits.data(), y.data() + begin, probabilities.data(),
                                           sample_losses.data());
    loss_sum += sum_of(sample_losses.data(), end - begin);
    correct += kernels::count_correct(end - begin, classes, logits.data(), y.data() + begin);
  }
  return {loss_sum / static_cast<double>(samples) + regularization_loss_at_current_weights(),
          static_cast<double>(correct) / static_cast<double>(samples)};
}

double Sequential::regularization_loss() {
  check_built("regularization_loss");
  return regularization_loss_at_current_weights();
}

double Sequential::regularization_loss_at_current_weights() const {
  double penalty = 0.0;
  for (std::size_t i = 0; i < trainable_.size(); ++i)
    if (const Regularizer* r = trainable_owner_[i]->regularizer(trainable_[i]->name))
      penalty +=
          kernels::regularization_penalty(trainable_[i]->value.size(), trainable_[i]->value.data(), r->l1, r->l2);
  return penalty;
}

void Sequential::add_regularization_gradients() {
  for (std::size_t i = 0; i < trainable_.size(); ++i)
    if (const Regularizer* r = trainable_owner_[i]->regularizer(trainable_[i]->name))
      kernels::add_regularization_gradient(trainable_[i]->value.size(), trainable_[i]->value.data(), r->l1, r->l2,
                                           trainable_[i]->grad.data());
}

Tensor Sequential::predict(const Tensor& x, std::int64_t batch_size) {
  check_built("predict");
  if (batch_size < 1) throw std::invalid_argument(fmt::format("predict: batch_size is {}, must be >= 1", batch_size));
  check_inputs("predict", x, {}, false);
  const std::int64_t samples = x.dim(0);
  Shape shape{samples};
  const Shape& per_sample = layers_.back()->output_shape();
  shape.insert(shape.end(), per_sample.begin(), per_sample.end());
  Tensor outputs;
  for (std::int64_t begin = 0; begin < samples; begin += batch_size) {
    const std::int64_t end = std::min(samples, begin + batch_size);
    const Tensor& output = forward(x.slice_batch(begin, end), false);
    if (begin == 0) outputs = Tensor(shape, output.layout());
    if (output.size() * samples != outputs.size() * (end - begin))
      throw std::logic_error(fmt::format("predict: layer '{}' returned {} for a batch of {}", layers_.back()->name(),
                                         output.shape_string(), end - begin));
    std::copy(output.data(), output.data() + output.size(), outputs.data() + begin * (outputs.size() / samples));
  }
  return outputs;
}

}  // namespace bnlab
