#include "bnlab/experiments/experiment.hpp"

#include <algorithm>
#include <ostream>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bnlab/experiments/batch_size.hpp"
#include "bnlab/experiments/covariate_shift.hpp"
#include "bnlab/experiments/learning_rate.hpp"
#include "bnlab/experiments/normalize.hpp"
#include "bnlab/experiments/output_files.hpp"
#include "bnlab/experiments/plotting.hpp"
#include "experiments/experiment_util.hpp"

namespace bnlab::experiments {
namespace {

bool uses_steps(const std::string& name) { return name == "covariate-shift" || name == "learning-rate" || name == "all"; }
bool uses_epochs(const std::string& name) { return name == "batch-size" || name == "all"; }
bool uses_data(const std::string& name) { return name != "normalize"; }

void apply_data(const ExperimentRequest& r, DataOptions& data) {
  if (r.data_dir) data.data_dir = *r.data_dir;
  if (r.validation) data.validation = *r.validation;
  if (r.train_limit) data.train_limit = *r.train_limit;
  if (r.test_limit) data.test_limit = *r.test_limit;
}

std::filesystem::path dir_for(const ExperimentRequest& r, const std::string& name) {
  if (r.name == "all") return (r.out_dir.empty() ? default_experiment_dir("all") : r.out_dir) / name;
  return r.out_dir.empty() ? default_experiment_dir(name) : r.out_dir;
}

// Each experiment's options from the request: its defaults, overridden by what was given.
CovariateShiftOptions covariate_shift_options(const ExperimentRequest& r) {
  CovariateShiftOptions o;
  if (r.steps) o.steps = *r.steps;
  if (r.eval_every) o.eval_every = *r.eval_every;
  if (r.seed) o.seed = *r.seed;
  apply_data(r, o.data);
  o.out_dir = dir_for(r, "covariate-shift");
  return o;
}

LearningRateOptions learning_rate_options(const ExperimentRequest& r) {
  LearningRateOptions o;
  if (r.steps) o.steps = *r.steps;
  if (r.eval_every) o.eval_every = *r.eval_every;
  if (r.seed) o.seed = *r.seed;
  apply_data(r, o.data);
  o.out_dir = dir_for(r, "learning-rate");
  return o;
}

BatchSizeOptions batch_size_options(const ExperimentRequest& r) {
  BatchSizeOptions o;
  if (r.epochs) o.epochs = *r.epochs;
  if (r.seed) o.seed = *r.seed;
  apply_data(r, o.data);
  o.out_dir = dir_for(r, "batch-size");
  return o;
}

NormalizeOptions normalize_options(const ExperimentRequest& r) {
  NormalizeOptions o;
  if (r.seed) o.seed = *r.seed;
  o.out_dir = dir_for(r, "normalize");
  return o;
}

}  // namespace

std::vector<std::string> experiment_names() {
  return {"covariate-shift", "learning-rate", "batch-size", "normalize", "all"};
}

std::filesystem::path default_experiment_dir(const std::string& name) {
  return name == "all" ? std::filesystem::path("out/experiments") : std::filesystem::path("out/experiments") / name;
}

void check_experiment_request(const ExperimentRequest& r) {
  const auto names = experiment_names();
  if (std::find(names.begin(), names.end(), r.name) == names.end())
    throw std::invalid_argument(fmt::format("unknown experiment '{}' (valid: {})", r.name, fmt::join(names, ", ")));
  if (r.steps && !uses_steps(r.name))
    throw std::invalid_argument(fmt::format("--steps does not apply to {} ({})", r.name,
                                            r.name == "batch-size" ? "it trains for --epochs" : "it trains nothing"));
  if (r.eval_every && !uses_steps(r.name))
    throw std::invalid_argument(fmt::format("--eval-every does not apply to {}", r.name));
  if (r.epochs && !uses_epochs(r.name))
    throw std::invalid_argument(fmt::format("--epochs does not apply to {} ({})", r.name,
                                            r.name == "normalize" ? "it trains nothing" : "it trains for --steps"));
  if ((r.data_dir || r.validation || r.train_limit || r.test_limit) && !uses_data(r.name))
    throw std::invalid_argument(
        fmt::format("the Fashion-MNIST options do not apply to {} (it uses random images)", r.name));
  if (r.steps && *r.steps < 1) throw std::invalid_argument(fmt::format("--steps is {}, must be >= 1", *r.steps));
  if (r.eval_every && *r.eval_every < 1)
    throw std::invalid_argument(fmt::format("--eval-every is {}, must be >= 1", *r.eval_every));
  if (r.epochs && *r.epochs < 1) throw std::invalid_argument(fmt::format("--epochs is {}, must be >= 1", *r.epochs));
  // The experiments' own checks, on the options they would run with.
  if (r.name == "covariate-shift" || r.name == "all") check_covariate_shift_options(covariate_shift_options(r));
  if (r.name == "learning-rate" || r.name == "all") check_learning_rate_options(learning_rate_options(r));
  if (r.name == "batch-size" || r.name == "all") check_batch_size_options(batch_size_options(r));
}

std::filesystem::path run_experiment(const ExperimentRequest& r, std::ostream& out) {
  check_experiment_request(r);
  gnuplot_executable();  // throws with the install hint before minutes of training
  if (r.name == "covariate-shift") return run_covariate_shift(covariate_shift_options(r), out).report;
  if (r.name == "learning-rate") return run_learning_rate(learning_rate_options(r), out).report;
  if (r.name == "batch-size") return run_batch_size(batch_size_options(r), out).report;
  if (r.name == "normalize") return run_normalize(normalize_options(r), out).report;

  // all: every output directory is prepared first, so a bad path fails before any training.
  const auto root = r.out_dir.empty() ? default_experiment_dir("all") : r.out_dir;
  for (const auto& name : {"covariate-shift", "learning-rate", "batch-size", "normalize"})
    prepare_output_directory(root / name, "output directory");
  // batch-size runs last; its largest batch is checked against the data it will get now, not
  // after the others have trained for minutes.
  const BatchSizeOptions batch_size = batch_size_options(r);
  check_batch_sizes_fit(batch_size, load_seed_data(batch_size.data).train.size());
  detail::Stopwatch clock;
  std::vector<ExperimentOutput> outputs;
  outputs.push_back(run_normalize(normalize_options(r), out));
  outputs.push_back(run_covariate_shift(covariate_shift_options(r), out));
  outputs.push_back(run_learning_rate(learning_rate_options(r), out));
  outputs.push_back(run_batch_size(batch_size, out));
  std::vector<ReportSection> sections;
  std::string links;
  for (const auto& o : outputs) {
    sections.push_back(o.section);
    links += fmt::format("<li>{}: <code>{}</code></li>\n", html_escape(o.section.title),
                         html_escape(std::filesystem::relative(o.directory, root).string()));
  }
  const std::string intro =
      html_paragraph(
          "What BatchNorm does, in four experiments: the paper's Figure 1 (internal covariate shift) and learning-rate "
          "figure, seed 004's regularization against batch size, and seed 001's normalization worksheet. Every "
          "number is in the CSV and JSON files beside the figures (PNG, SVG and the gnuplot scripts that drew "
          "them), one folder per experiment:") +
      "<ul>\n" + links + "</ul>\n";
  const auto report = root / "report.html";
  write_file_atomically(report, render_report("bnlab: what BatchNorm does", intro, sections));
  out << fmt::format("[all] four experiments in {:.0f} s; report: {}\n", clock.seconds(), report.string());
  return report;
}

}  // namespace bnlab::experiments
