#pragma once
// The seed 003 training setup shared by `bnlab train`, `bnlab evaluate` and the comparison:
// Fashion-MNIST with the seed's split (the first `validation` training images are the
// validation set, pixels / 255), an optimizer chosen by name, fit with Keras-style logs and the
// test-set evaluation. Everything here checks its arguments and throws std::invalid_argument
// with a message naming the setting and the value, so a front end only has to print it.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "bnlab/data/fashion_mnist.hpp"
#include "bnlab/model.hpp"
#include "bnlab/optim.hpp"

namespace bnlab::experiments {

// Which Fashion-MNIST examples to use. A limit of 0 means "all"; the limits take the FIRST
// examples (after the validation split for the training set), so a small run is a prefix of
// the full one and reproducible.
struct DataOptions {
  std::filesystem::path data_dir{data::default_fashion_mnist_dir};
  std::int64_t validation = 5000;  // the seed's X_train_full[:5000]
  std::int64_t train_limit = 0;
  std::int64_t test_limit = 0;
};

struct SeedData {
  data::Dataset train;
  data::Dataset validation;  // empty (size 0) when DataOptions::validation is 0
  data::Dataset test;
};

// Throws std::invalid_argument for a negative count or limit, and for a data directory that
// does not exist (naming it and how to get the data).
void check_data_options(const DataOptions& options);
// Loads train, validation and test sets. Throws std::invalid_argument when validation or a
// limit exceeds what the files hold, data::FileError / data::FormatError for missing or broken
// files.
SeedData load_seed_data(const DataOptions& options);
// Only the test set (for evaluating a saved model), honouring test_limit.
data::Dataset load_test_data(const DataOptions& options);

struct TrainingOptions {
  int epochs = 10;
  double learning_rate = 1e-3;
  std::int64_t batch_size = 32;
  std::string optimizer = "sgd";  // one of optimizer_names()
  double momentum = 0.0;          // SGD only
  std::uint64_t seed = 42;        // initial weights and the shuffle order
};

// {"sgd", "adam"}
std::vector<std::string> optimizer_names();
// Throws std::invalid_argument unless epochs >= 1, batch_size >= 1, learning_rate is finite and
// > 0, momentum is in [0, 1) (and 0 for Adam, which has no such setting), and the optimizer is
// one of optimizer_names() (the message lists them).
void check_training_options(const TrainingOptions& options);
std::unique_ptr<Optimizer> make_named_optimizer(const TrainingOptions& options);

struct TrainResult {
  History history;
  EvaluateResult test;
  // Empty when all epochs ran; otherwise why training stopped early (a non-finite loss), in
  // which case history holds the completed epochs and test evaluates the model as it was left.
  std::string stopped;
};

// The batch size of every test-set evaluation (Keras's evaluate() default).
inline constexpr std::int64_t evaluation_batch_size = 32;

// Where a run starts and what it does after each epoch. A run resumed from a checkpoint starts
// at the checkpoint's epoch count with its history (and its model already compiled).
struct TrainingContinuation {
  int initial_epoch = 0;
  History history;  // the epochs before initial_epoch; the result's history starts with them
  // Called after every completed epoch (zero-based) with the whole history so far.
  std::function<void(int epoch, const History& history)> after_epoch;
};

// Compiles model with the named optimizer (unless it is already compiled, as a resumed model
// is) and trains it on data.train (validating on data.validation when not empty), Keras-style
// logs going to out, then evaluates the test set.
// REQUIRES: model is built; options pass check_training_options.
TrainResult train_and_evaluate(Sequential& model, const SeedData& data, const TrainingOptions& options,
                               std::ostream& out, const TrainingContinuation& continuation = {});

// Keras's evaluate line: "loss: 0.4817 - accuracy: 0.8321" (four decimals).
std::string format_evaluation(const EvaluateResult& result);

}  // namespace bnlab::experiments
