#pragma once
// The analogue of the paper's Figure 2 / Table (Ioffe & Szegedy 2015, section 4.2; the figure of
// seed 000): BN lets a network train at much higher learning rates. An MLP 784-300-100-10 on
// Fashion-MNIST, SGD with momentum 0.9 (as Inception), base learning rate 0.0015 (the paper's
// Inception rate; BN-x5 = 0.0075, BN-x30 = 0.045, the paper's numbers), mini-batches of 32:
//   Baseline                no BN, ReLU, base rate            (the paper's "Inception")
//   BN-Baseline             BN before each ReLU, base rate
//   BN-x5, BN-x30           BN, 5x and 30x the base rate
//   BN-x5-Sigmoid           BN, sigmoid instead of ReLU, 5x
//   Baseline-x5, Baseline-x30, Baseline-x5-Sigmoid   the same rates without BN
// Every K steps the validation accuracy is measured (inference mode). The table gives, per
// network, the steps to reach the target accuracy (by default the Baseline's best validation
// accuracy, as the paper measures against Inception's best, 72.2%) and the best accuracy.
//
// Files in out_dir: learning_rate.csv (network,step,val_accuracy,train_loss),
// learning_rate_table.csv (network,batch_norm,activation,multiplier,learning_rate,
// steps_to_target,best_val_accuracy,best_step,test_accuracy,diverged), learning_rate.json,
// learning_rate.{png,svg,gp}, report.html.

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "bnlab/experiments/experiment.hpp"
#include "bnlab/experiments/training.hpp"

namespace bnlab::experiments {

struct LearningRateNetwork {
  std::string name;
  bool batch_norm = false;
  std::string activation = "relu";
  double multiplier = 1;
};

// The eight networks above, in that order (the paper's five first).
std::vector<LearningRateNetwork> learning_rate_networks();

struct LearningRateOptions {
  std::int64_t steps = 20000;
  std::int64_t batch_size = 32;
  std::int64_t eval_every = 0;  // 0: steps / 50 (at least 1)
  double base_learning_rate = 0.0015;
  double momentum = 0.9;
  double target_accuracy = 0;  // 0: the Baseline's best validation accuracy
  std::uint64_t seed = 1;
  DataOptions data;
  std::filesystem::path out_dir = "out/experiments/learning-rate";
};

struct LearningRatePoint {
  std::int64_t step = 0;
  double val_accuracy = 0;
  double train_loss = 0;  // mean over the steps since the previous point
};

struct LearningRateRun {
  LearningRateNetwork network;
  double learning_rate = 0;
  std::vector<LearningRatePoint> points;
  bool diverged = false;
  std::int64_t diverged_at = 0;  // step whose loss was not finite
  double test_accuracy = 0;      // of the final model
  double seconds = 0;
  double best_val_accuracy() const;  // NaN when there is no point
  std::int64_t best_step() const;    // 0 when there is no point
  // First evaluated step whose validation accuracy >= target; -1 when none.
  std::int64_t steps_to(double target) const;
};

struct LearningRateResult {
  LearningRateOptions options;
  std::int64_t eval_every = 0;
  double target_accuracy = 0;  // as used
  std::int64_t train_examples = 0, validation_examples = 0, test_examples = 0;
  std::vector<LearningRateRun> runs;
};

// Throws std::invalid_argument for steps or batch_size < 2 / 1, a negative eval_every, a bad
// learning rate, momentum outside [0, 1), a target outside [0, 1], no validation set, or bad
// data options.
void check_learning_rate_options(const LearningRateOptions& options);
LearningRateResult train_learning_rate(const LearningRateOptions& options, std::ostream& out);
ExperimentOutput write_learning_rate(const LearningRateResult& result);
ExperimentOutput run_learning_rate(const LearningRateOptions& options, std::ostream& out);

}  // namespace bnlab::experiments
