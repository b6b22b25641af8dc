#pragma once
// The paper's Figure 1 (Ioffe & Szegedy 2015, section 4.1) on Fashion-MNIST instead of MNIST:
// an MLP of three hidden layers of 100 sigmoid units, kernels from a small Gaussian, trained
// with and without BatchNormalization (BN between each Dense and its sigmoid, no bias: beta
// takes its place) on mini-batches of 60 for 50,000 steps. Every K steps it records
//   (a) the test accuracy, and
//   (b, c) the 15th, 50th and 85th percentiles of the input to one sigmoid of the last hidden
//       layer over a fixed batch of held-out examples (the first `probe_examples` of the
//       validation split, never trained on), in inference mode: for the plain network that is
//       the Dense output, for the BN network the BatchNormalization output (with its moving
//       statistics), i.e. what the sigmoid receives in each case.
// Records start at step K (not 0): before ~1/(1 - momentum) = 100 steps the BN layer's moving
// statistics are still their initial 0 and 1 and would show the unnormalized input instead.
//
// Files in out_dir: covariate_shift.csv (network,step,test_accuracy,p15,p50,p85,train_loss),
// covariate_shift.json, covariate_shift.{png,svg,gp}, report.html.

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "bnlab/experiments/experiment.hpp"
#include "bnlab/experiments/training.hpp"

namespace bnlab::experiments {

struct CovariateShiftOptions {
  std::int64_t steps = 50000;
  std::int64_t batch_size = 60;
  std::int64_t eval_every = 0;  // 0: steps / 100 (at least 1)
  double learning_rate = 0.5;   // plain SGD; the paper does not give its rate
  double init_stddev = 0.1;     // the paper's "small random Gaussian values"
  std::int64_t probe_examples = 1000;
  std::int64_t unit = 0;        // which sigmoid of the last hidden layer
  std::uint64_t seed = 1;
  DataOptions data;             // validation 5000: the probe batch comes from it
  std::filesystem::path out_dir = "out/experiments/covariate-shift";
};

struct CovariateShiftRecord {
  std::int64_t step = 0;
  double test_accuracy = 0;
  double p15 = 0, p50 = 0, p85 = 0;
  double train_loss = 0;  // mean training loss over the steps since the previous record
};

struct CovariateShiftRun {
  std::string network;  // "without BN", "with BN"
  bool batch_norm = false;
  std::vector<CovariateShiftRecord> records;
  bool diverged = false;
  double seconds = 0;
};

struct CovariateShiftResult {
  CovariateShiftOptions options;
  std::int64_t eval_every = 0;
  std::int64_t probe_examples = 0;
  std::int64_t train_examples = 0;
  std::int64_t test_examples = 0;
  std::vector<CovariateShiftRun> runs;  // without BN, then with BN
};

// Throws std::invalid_argument for steps, batch_size, probe_examples < 1, a negative eval_every,
// unit outside 0..99, a non-positive or non-finite learning rate or init_stddev, no validation
// set, or bad data options.
void check_covariate_shift_options(const CovariateShiftOptions& options);
CovariateShiftResult train_covariate_shift(const CovariateShiftOptions& options, std::ostream& out);
// Writes the files above (the directory must exist) and returns the report section.
ExperimentOutput write_covariate_shift(const CovariateShiftResult& result);
ExperimentOutput run_covariate_shift(const CovariateShiftOptions& options, std::ostream& out);

}  // namespace bnlab::experiments
