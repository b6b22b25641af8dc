#pragma once
// The seed 003 experiment: train the seed's three Fashion-MNIST models (baseline MLP, "Approach
// One" with BatchNormalization after each activation, "Approach Two" with BN before the
// activation) with the same data, optimizer and seed, and set their validation curves beside
// the numbers the seed's Keras run printed.
//
// Output files (written atomically into the output directory):
//   history.csv   one row per model and epoch, header
//                 model,epoch,loss,accuracy,val_loss,val_accuracy,seconds
//                 (epoch counts from 1; val_ columns are empty when there is no validation set;
//                 numbers in the shortest decimal form that reads back to the same double)
//   history.json  {"format": "bnlab-compare", "version": 1, "settings": {...},
//                  "models": [{"model", "parameters", "trainable_parameters",
//                  "non_trainable_parameters", "test_loss", "test_accuracy", "seconds_per_epoch",
//                  "stopped", "epochs": [{"epoch", "loss", "accuracy", "val_loss",
//                  "val_accuracy", "seconds"}, ...]}, ...],
//                  "published": [{"model", "source", "loss": [...], "accuracy": [...],
//                  "val_loss": [...], "val_accuracy": [...], "seconds": [...]}, ...]}
//                 non-finite numbers and missing validation values are null
//   table.txt     the table format_comparison_table() prints

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "bnlab/experiments/training.hpp"

namespace bnlab::experiments {

// What the seed's Keras run printed for one model (seed 003, `verbose=2` logs): per epoch
// training loss and accuracy, validation loss and accuracy, and the whole seconds Keras
// printed. The notebook's output is cut off in epoch 10, so the val_ vectors have 9 entries and
// the others 10.
struct PublishedRun {
  std::string model;  // one of seed_model_names()
  std::string source;
  std::vector<double> loss;
  std::vector<double> accuracy;
  std::vector<double> val_loss;
  std::vector<double> val_accuracy;
  std::vector<double> seconds;
};

// The seed's published runs: "baseline" and "bn" (Approach One). Approach Two's cell printed
// no numbers, so "bn-before-activation" has none.
const std::vector<PublishedRun>& published_seed_runs();
const PublishedRun* find_published_run(const std::string& model);  // nullptr if none

struct CompareOptions {
  std::vector<std::string> models;  // a subset of seed_model_names(), in the order to run; empty: all
  TrainingOptions training;         // the seed's: SGD, lr 1e-3, batch 32, 10 epochs
  DataOptions data;
  std::filesystem::path out_dir = "out/compare";
};

struct ModelRun {
  std::string model;
  std::int64_t parameters = 0;
  std::int64_t trainable_parameters = 0;
  TrainResult result;
  double seconds_per_epoch() const;  // mean over the completed epochs; 0 if none
};

struct Comparison {
  TrainingOptions training;
  std::string data_dir;
  std::int64_t train_samples = 0;
  std::int64_t validation_samples = 0;
  std::int64_t test_samples = 0;
  std::vector<ModelRun> runs;
};

// Throws std::invalid_argument for an unknown or repeated model name (listing the valid ones),
// bad training or data options, or an empty output directory path.
void check_compare_options(const CompareOptions& options);

// Checks the options, prepares the output directory (before any training, so a bad path fails
// at once), loads the data, then per model prints a header, the summary, the Keras-style log
// and the test result to out; finally prints format_comparison_table() and writes the files
// above. Returns what it printed.
Comparison run_comparison(const CompareOptions& options, std::ostream& out);

// Per model two rows, bnlab's and the seed's Keras run, with the validation accuracy after each
// epoch, the test accuracy and the seconds per epoch; a third row with the difference
// (bnlab - Keras) where both have a number.
std::string format_comparison_table(const Comparison& comparison);
std::string comparison_csv(const Comparison& comparison);
std::string comparison_json(const Comparison& comparison);
// Writes history.csv, history.json and table.txt into directory (which must exist).
void write_comparison_files(const Comparison& comparison, const std::filesystem::path& directory);

}  // namespace bnlab::experiments
