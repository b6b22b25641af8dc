#pragma once
// BN's regularization against the batch size (seed 004: "the bigger the batches, the less the
// regularization effect"). The MLP 784-300-100-10 (ReLU), with BN before each activation and
// without BN, trained at batch sizes 4, 16, 32, 128 and 512 on a training subset small enough
// to overfit (10,000 images by default) for the same number of epochs (the fixed budget: every
// run sees about the same examples the same number of times; an epoch is floor(N / batch) full
// batches of its shuffle, so a batch that does not divide N leaves a few images out of each). SGD with momentum 0.9 and
// the learning rate scaled linearly with the batch size (base_learning_rate at batch 32; Goyal et al.'s rule), which
// keeps the gradient noise of SGD itself about equal across batch sizes, so what changes with the batch is mostly the
// noise of BN's batch statistics. After each epoch both accuracies are measured in inference mode: on the training
// subset and on the validation set; their difference (train - validation) is the generalization gap.
//
// Files in out_dir: batch_size.csv (network,batch_size,learning_rate,epoch,train_accuracy,
// val_accuracy,gap,train_loss), batch_size.json, batch_size.{png,svg,gp}, report.html.

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "bnlab/experiments/experiment.hpp"
#include "bnlab/experiments/training.hpp"

namespace bnlab::experiments {

struct BatchSizeOptions {
  std::vector<std::int64_t> batch_sizes{4, 16, 32, 128, 512};
  int epochs = 15;
  double base_learning_rate = 0.01;  // at batch 32
  std::int64_t reference_batch = 32;
  double momentum = 0.9;
  std::uint64_t seed = 1;
  DataOptions data = default_data();
  std::filesystem::path out_dir = "out/experiments/batch-size";

  // Fashion-MNIST with train_limit 10,000: few enough examples for the networks to overfit.
  static DataOptions default_data() {
    DataOptions d;
    d.train_limit = 10000;
    return d;
  }
};

struct BatchSizeEpoch {
  int epoch = 0;  // from 1
  double train_accuracy = 0;
  double val_accuracy = 0;
  double train_loss = 0;  // mean training-mode loss over the epoch's steps
  double gap() const { return train_accuracy - val_accuracy; }
};

struct BatchSizeRun {
  std::string network;  // "with BN", "without BN"
  bool batch_norm = false;
  std::int64_t batch_size = 0;
  double learning_rate = 0;
  std::vector<BatchSizeEpoch> epochs;
  bool diverged = false;
  double seconds = 0;
};

struct BatchSizeResult {
  BatchSizeOptions options;
  std::int64_t train_examples = 0, validation_examples = 0;
  std::vector<BatchSizeRun> runs;  // with BN at each batch size, then without BN
};

// Throws std::invalid_argument for no batch sizes, a batch size < 2 (BN needs two examples),
// epochs < 1, a bad learning rate or momentum, no validation set, or bad data options; a batch
// larger than the training set is refused when the data are loaded.
void check_batch_size_options(const BatchSizeOptions& options);
// Throws std::invalid_argument, naming both numbers, when the largest batch size exceeds the
// train_examples the data options give.
void check_batch_sizes_fit(const BatchSizeOptions& options, std::int64_t train_examples);
BatchSizeResult train_batch_size(const BatchSizeOptions& options, std::ostream& out);
ExperimentOutput write_batch_size(const BatchSizeResult& result);
ExperimentOutput run_batch_size(const BatchSizeOptions& options, std::ostream& out);

}  // namespace bnlab::experiments
