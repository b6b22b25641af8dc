#pragma once
// `bnlab experiment NAME`: the paper's and the seeds' experiments (covariate-shift,
// learning-rate, batch-size, normalize) and `all`, which runs the four and ties their sections
// into one report. Each experiment writes its numbers (CSV, JSON), its figures (PNG, SVG, and
// the gnuplot script that drew them) and a self-contained report.html into its output directory.
//
// The request carries the command-line settings; a setting left unset takes the experiment's
// own default. A setting that does not apply to the named experiment (--epochs for
// covariate-shift, --steps for normalize) is refused rather than silently ignored; `all` hands
// each setting to the experiments it applies to.

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "bnlab/experiments/report.hpp"

namespace bnlab::experiments {

// What one experiment leaves behind, for `all`'s combined report.
struct ExperimentOutput {
  std::string name;
  std::filesystem::path directory;
  std::filesystem::path report;  // directory / "report.html"
  ReportSection section;
};

struct ExperimentRequest {
  std::string name;                // one of experiment_names()
  std::filesystem::path out_dir;   // empty: default_experiment_dir(name)
  std::optional<std::int64_t> steps;       // covariate-shift, learning-rate: training steps per network
  std::optional<std::int64_t> eval_every;  // covariate-shift, learning-rate: steps between evaluations
  std::optional<int> epochs;               // batch-size: epochs per run
  std::optional<std::uint64_t> seed;       // every experiment
  // Fashion-MNIST (covariate-shift, learning-rate, batch-size): as DataOptions in training.hpp.
  std::optional<std::filesystem::path> data_dir;
  std::optional<std::int64_t> validation;
  std::optional<std::int64_t> train_limit;
  std::optional<std::int64_t> test_limit;
};

// {"covariate-shift", "learning-rate", "batch-size", "normalize", "all"}
std::vector<std::string> experiment_names();
// out/experiments/<name>; out/experiments for "all" (each experiment in a folder of its own).
std::filesystem::path default_experiment_dir(const std::string& name);

// Throws std::invalid_argument for an unknown name (listing the valid ones), a setting that does
// not apply, or a value out of range (steps < 1, eval_every < 1, epochs < 1, negative limits).
void check_experiment_request(const ExperimentRequest& request);

// Checks the request, checks that gnuplot is there (before any training), runs the experiment
// with progress on out, and returns the path of the report it wrote.
std::filesystem::path run_experiment(const ExperimentRequest& request, std::ostream& out);

}  // namespace bnlab::experiments
