#include "bnlab/experiments/training.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <stdexcept>
#include <system_error>

namespace bnlab::experiments {
namespace {

void check_data_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw std::invalid_argument(fmt::format(
        "Fashion-MNIST data directory '{}' does not exist (install Debian's dataset-fashion-mnist, which puts the "
        "data in {}, or give the directory that holds train-images-idx3-ubyte[.gz] and the three other files)",
        dir.string(), data::default_fashion_mnist_dir));
}

// Keras's Progbar number format: four decimals, scientific once the value is tiny.
std::string keras_number(double value) {
  return std::fabs(value) > 1e-3 ? fmt::format("{:.4f}", value) : fmt::format("{:.4e}", value);
}

}  // namespace

void check_data_options(const DataOptions& options) {
  if (options.validation < 0)
    throw std::invalid_argument(fmt::format("validation size is {}, must be >= 0", options.validation));
  if (options.train_limit < 0)
    throw std::invalid_argument(fmt::format("train limit is {}, must be >= 0 (0: all)", options.train_limit));
  if (options.test_limit < 0)
    throw std::invalid_argument(fmt::format("test limit is {}, must be >= 0 (0: all)", options.test_limit));
  check_data_directory(options.data_dir);
}

data::Dataset load_test_data(const DataOptions& options) {
  check_data_options(options);
  data::Dataset test =
      data::load_fashion_mnist_part(options.data_dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
  if (options.test_limit > test.size())
    throw std::invalid_argument(
        fmt::format("test limit is {}, but the test set has only {} images", options.test_limit, test.size()));
  if (options.test_limit > 0) test = test.subset(options.test_limit);
  return test;
}

SeedData load_seed_data(const DataOptions& options) {
  check_data_options(options);
  data::FashionMnist all = data::load_fashion_mnist(options.data_dir);
  // Checked here rather than left to split_validation, whose message cannot say that at least
  // one training image must remain.
  if (options.validation >= all.train.size())
    throw std::invalid_argument(
        fmt::format("validation size is {}, but the training file has only {} images "
                    "(at least one must remain for training)",
                    options.validation, all.train.size()));
  data::TrainValidationSplit split = data::split_validation(all.train, options.validation);
  SeedData result;
  result.validation = std::move(split.validation);
  result.train = std::move(split.train);
  if (options.train_limit > result.train.size())
    throw std::invalid_argument(
        fmt::format("train limit is {}, but only {} training images remain after the "
                    "{} validation images",
                    options.train_limit, result.train.size(), options.validation));
  if (options.train_limit > 0) result.train = result.train.subset(options.train_limit);
  if (options.test_limit > all.test.size())
    throw std::invalid_argument(
        fmt::format("test limit is {}, but the test set has only {} images", options.test_limit, all.test.size()));
  result.test = options.test_limit > 0 ? all.test.subset(options.test_limit) : std::move(all.test);
  return result;
}

std::vector<std::string> optimizer_names() { return {"sgd", "adam"}; }

void check_training_options(const TrainingOptions& options) {
  if (options.epochs < 1) throw std::invalid_argument(fmt::format("epochs is {}, must be >= 1", options.epochs));
  if (options.batch_size < 1)
    throw std::invalid_argument(fmt::format("batch size is {}, must be >= 1", options.batch_size));
  if (!std::isfinite(options.learning_rate) || options.learning_rate <= 0)
    throw std::invalid_argument(fmt::format("learning rate is {}, must be a finite number > 0", options.learning_rate));
  const auto names = optimizer_names();
  if (std::find(names.begin(), names.end(), options.optimizer) == names.end())
    throw std::invalid_argument(
        fmt::format("unknown optimizer '{}' (valid: {})", options.optimizer, fmt::join(names, ", ")));
  if (!(options.momentum >= 0 && options.momentum < 1))
    throw std::invalid_argument(fmt::format("momentum is {}, must be in [0, 1)", options.momentum));
  if (options.optimizer != "sgd" && options.momentum != 0)
    throw std::invalid_argument(
        fmt::format("momentum is {}, but only the sgd optimizer has a momentum setting", options.momentum));
}

std::unique_ptr<Optimizer> make_named_optimizer(const TrainingOptions& options) {
  check_training_options(options);
  if (options.optimizer == "adam") return std::make_unique<Adam>(options.learning_rate);
  return std::make_unique<SGD>(options.learning_rate, options.momentum);
}

namespace {

void append_history(History& to, const History& from) {
  auto append = [](std::vector<double>& a, const std::vector<double>& b) { a.insert(a.end(), b.begin(), b.end()); };
  append(to.loss, from.loss);
  append(to.accuracy, from.accuracy);
  append(to.val_loss, from.val_loss);
  append(to.val_accuracy, from.val_accuracy);
  append(to.seconds, from.seconds);
}

}  // namespace

TrainResult train_and_evaluate(Sequential& model, const SeedData& data, const TrainingOptions& options,
                               std::ostream& out, const TrainingContinuation& continuation) {
  check_training_options(options);
  if (data.train.size() == 0) throw std::invalid_argument("train_and_evaluate: the training set is empty");
  if (data.test.size() == 0) throw std::invalid_argument("train_and_evaluate: the test set is empty");
  if (continuation.initial_epoch < 0 || continuation.initial_epoch > options.epochs ||
      continuation.history.epochs() != static_cast<std::size_t>(continuation.initial_epoch))
    throw std::invalid_argument(fmt::format(
        "train_and_evaluate: initial epoch {} with a history of {} epochs, for a run of {} epochs",
        continuation.initial_epoch, continuation.history.epochs(), options.epochs));
  if (!model.compiled()) model.compile(make_named_optimizer(options));

  FitOptions fit;
  fit.epochs = options.epochs;
  fit.batch_size = options.batch_size;
  fit.seed = options.seed;
  fit.initial_epoch = continuation.initial_epoch;
  if (continuation.after_epoch)
    fit.on_epoch_end = [&](int epoch, const History& history) {
      History all = continuation.history;
      append_history(all, history);
      continuation.after_epoch(epoch, all);
      return true;
    };
  if (data.validation.size() > 0) {
    fit.validation_x = data.validation.images;
    fit.validation_y = data.validation.labels;
  }

  TrainResult result;
  result.history = continuation.history;
  try {
    append_history(result.history, model.fit(data.train.images, data.train.labels, fit, out));
  } catch (const NonFiniteLossError& e) {
    // A diverging run is a result worth reporting (e.g. too high a learning rate without BN),
    // not a reason to lose the epochs that did complete.
    append_history(result.history, e.history());
    result.stopped =
        fmt::format("stopped in epoch {} at step {}: the loss became {}", e.epoch() + 1, e.step() + 1, e.loss());
    out << "Training " << result.stopped << "\n";
  }
  // Keras's evaluate() default batch, whatever the training batch: `bnlab evaluate` of the saved
  // model then sums the test losses in the same order and prints the same digits.
  result.test = model.evaluate(data.test.images, data.test.labels, evaluation_batch_size);
  return result;
}

std::string format_evaluation(const EvaluateResult& result) {
  return fmt::format("loss: {} - accuracy: {}", keras_number(result.loss), keras_number(result.accuracy));
}

}  // namespace bnlab::experiments
