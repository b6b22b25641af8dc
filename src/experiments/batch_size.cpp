#include "bnlab/experiments/batch_size.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <ostream>
#include <stdexcept>

#include <fmt/format.h>

#include "bnlab/experiments/output_files.hpp"
#include "bnlab/experiments/plotting.hpp"
#include "bnlab/experiments/step_training.hpp"
#include "bnlab/optim.hpp"
#include "experiments/experiment_util.hpp"

namespace bnlab::experiments {
namespace {

using detail::csv_number;
using detail::fixed;
using detail::json_number;
using detail::json_string;

BatchSizeRun train_one(const BatchSizeOptions& options, bool batch_norm, std::int64_t batch_size,
                       const SeedData& data, std::ostream& out) {
  BatchSizeRun run;
  run.network = batch_norm ? "with BN" : "without BN";
  run.batch_norm = batch_norm;
  run.batch_size = batch_size;
  run.learning_rate =
      options.base_learning_rate * static_cast<double>(batch_size) / static_cast<double>(options.reference_batch);
  MlpSpec spec;
  spec.hidden_units = {300, 100};
  spec.activation = "relu";
  spec.batch_norm = batch_norm;
  spec.kernel_initializer = "he_normal";
  Sequential model = make_mlp(spec, options.seed);
  model.compile(std::make_unique<SGD>(run.learning_rate, options.momentum));
  StepTrainer trainer(model, data.train, batch_size, options.seed);
  detail::Stopwatch clock;
  for (int epoch = 1; epoch <= options.epochs && !run.diverged; ++epoch) {
    double loss_sum = 0;
    for (std::int64_t s = 0; s < trainer.steps_per_epoch(); ++s) {
      const double loss = trainer.step();
      if (trainer.diverged()) {
        run.diverged = true;
        break;
      }
      loss_sum += loss;
    }
    if (run.diverged) break;
    BatchSizeEpoch e;
    e.epoch = epoch;
    e.train_loss = loss_sum / static_cast<double>(trainer.steps_per_epoch());
    e.train_accuracy = accuracy_of(model, data.train);
    e.val_accuracy = accuracy_of(model, data.validation);
    run.epochs.push_back(e);
  }
  run.seconds = clock.seconds();
  if (run.epochs.empty())
    out << fmt::format("[batch-size] {:<10} batch {:>4} lr {:<8} diverged in epoch 1\n", run.network, batch_size,
                       run.learning_rate);
  else {
    const auto& last = run.epochs.back();
    out << fmt::format("[batch-size] {:<10} batch {:>4} lr {:<8} epoch {}: train accuracy {:.4f}, validation "
                       "{:.4f}, gap {:+.4f}{} ({:.1f} s)\n",
                       run.network, batch_size, run.learning_rate, last.epoch, last.train_accuracy, last.val_accuracy,
                       last.gap(), run.diverged ? ", then diverged" : "", run.seconds);
  }
  out.flush();
  return run;
}

double final_gap(const BatchSizeRun& run) {
  return run.epochs.empty() || run.diverged ? std::numeric_limits<double>::quiet_NaN() : run.epochs.back().gap();
}

}  // namespace

void check_batch_size_options(const BatchSizeOptions& o) {
  if (o.batch_sizes.empty()) throw std::invalid_argument("batch-size: no batch sizes given");
  for (const auto b : o.batch_sizes)
    if (b < 2)
      throw std::invalid_argument(fmt::format(
          "batch size is {}, must be >= 2 (over a single example BatchNormalization outputs only beta)", b));
  if (o.epochs < 1) throw std::invalid_argument(fmt::format("epochs is {}, must be >= 1", o.epochs));
  if (!std::isfinite(o.base_learning_rate) || o.base_learning_rate <= 0)
    throw std::invalid_argument(
        fmt::format("base learning rate is {}, must be a finite number > 0", o.base_learning_rate));
  if (o.reference_batch < 1)
    throw std::invalid_argument(fmt::format("reference batch is {}, must be >= 1", o.reference_batch));
  if (!(o.momentum >= 0 && o.momentum < 1))
    throw std::invalid_argument(fmt::format("momentum is {}, must be in [0, 1)", o.momentum));
  if (o.data.validation < 1)
    throw std::invalid_argument("batch-size needs a validation split (--validation >= 1) to measure the gap on");
  check_data_options(o.data);
}

void check_batch_sizes_fit(const BatchSizeOptions& options, std::int64_t train_examples) {
  const auto largest = *std::max_element(options.batch_sizes.begin(), options.batch_sizes.end());
  if (largest > train_examples)
    throw std::invalid_argument(
        fmt::format("batch size {} is larger than the {} training images (raise "
                    "--train-limit or drop that batch size)",
                    largest, train_examples));
}

BatchSizeResult train_batch_size(const BatchSizeOptions& options, std::ostream& out) {
  check_batch_size_options(options);
  BatchSizeResult result;
  result.options = options;
  const SeedData data = load_seed_data(options.data);
  result.train_examples = data.train.size();
  result.validation_examples = data.validation.size();
  check_batch_sizes_fit(options, data.train.size());
  out << fmt::format("[batch-size] {} epochs over {} training images per run (the same examples for every batch "
                     "size); learning rate {} x batch / {}; validation on {} images\n",
                     options.epochs, data.train.size(), options.base_learning_rate, options.reference_batch,
                     data.validation.size());
  for (const bool bn : {true, false})
    for (const auto b : options.batch_sizes) result.runs.push_back(train_one(options, bn, b, data, out));
  return result;
}

ExperimentOutput write_batch_size(const BatchSizeResult& result) {
  const auto& o = result.options;
  const auto dir = o.out_dir;

  std::string csv = "network,batch_size,learning_rate,epoch,train_accuracy,val_accuracy,gap,train_loss\n";
  for (const auto& run : result.runs)
    for (const auto& e : run.epochs)
      csv += fmt::format("{},{},{},{},{},{},{},{}\n", run.network, run.batch_size, run.learning_rate, e.epoch,
                         csv_number(e.train_accuracy), csv_number(e.val_accuracy), csv_number(e.gap()),
                         csv_number(e.train_loss));
  write_file_atomically(dir / "batch_size.csv", csv);

  std::string json = "{\n  \"format\": \"bnlab-experiment-batch-size\",\n  \"version\": 1,\n";
  json += fmt::format(
      "  \"settings\": {{\"epochs\": {}, \"budget\": \"same number of epochs\", \"optimizer\": \"sgd\", "
      "\"momentum\": {}, \"base_learning_rate\": {}, \"reference_batch\": {}, \"learning_rate_rule\": \"linear in "
      "the batch size\", \"hidden_units\": [300, 100], \"seed\": {}, \"train_examples\": {}, "
      "\"validation_examples\": {}}},\n  \"runs\": [\n",
      o.epochs, json_number(o.momentum), json_number(o.base_learning_rate), o.reference_batch, o.seed,
      result.train_examples, result.validation_examples);
  for (std::size_t n = 0; n < result.runs.size(); ++n) {
    const auto& run = result.runs[n];
    json += fmt::format(
        "    {{\"network\": {}, \"batch_norm\": {}, \"batch_size\": {}, \"learning_rate\": {}, \"diverged\": {}, "
        "\"seconds\": {}, \"final_gap\": {},\n     \"epochs\": [",
        json_string(run.network), run.batch_norm, run.batch_size, json_number(run.learning_rate), run.diverged,
        json_number(run.seconds), json_number(final_gap(run)));
    for (std::size_t i = 0; i < run.epochs.size(); ++i) {
      const auto& e = run.epochs[i];
      json += fmt::format("{}{{\"epoch\": {}, \"train_accuracy\": {}, \"val_accuracy\": {}, \"gap\": {}, "
                          "\"train_loss\": {}}}",
                          i ? ", " : "", e.epoch, json_number(e.train_accuracy), json_number(e.val_accuracy),
                          json_number(e.gap()), json_number(e.train_loss));
    }
    json += fmt::format("]}}{}\n", n + 1 < result.runs.size() ? "," : "");
  }
  json += "  ]\n}\n";
  write_file_atomically(dir / "batch_size.json", json);

  // (a) the final gap against the batch size for both networks; (b), (c) the gap per epoch.
  LinePanel gap = line_panel("(a) generalization gap after the last epoch", "batch size", "train - validation accuracy");
  gap.log_x = true;
  gap.key = "top left";
  LinePanel bn_epochs = line_panel("(b) gap per epoch, with BN", "epoch", "train - validation accuracy");
  LinePanel plain_epochs = line_panel("(c) gap per epoch, without BN", "epoch", "train - validation accuracy");
  bn_epochs.key = plain_epochs.key = "top left";
  Series bn_gap{"with BN", {}, {}, "linespoints lw 2 pt 7 lc rgb \"#1f77b4\""};
  Series plain_gap{"without BN", {}, {}, "linespoints lw 2 pt 5 dt 2 lc rgb \"#d62728\""};
  const char* colors[] = {"#440154", "#3b528b", "#21918c", "#5ec962", "#d4a017", "#e6550d", "#969696"};
  double lo = 0, hi = 0;
  for (const auto& run : result.runs) {
    (run.batch_norm ? bn_gap : plain_gap).x.push_back(static_cast<double>(run.batch_size));
    (run.batch_norm ? bn_gap : plain_gap).y.push_back(final_gap(run));
    const auto index = static_cast<std::size_t>(
        std::find(o.batch_sizes.begin(), o.batch_sizes.end(), run.batch_size) - o.batch_sizes.begin());
    Series curve{fmt::format("batch {}", run.batch_size), {}, {},
                 fmt::format("linespoints lw 2 pt 7 ps 0.6 lc rgb \"{}\"", colors[index % 7])};
    for (const auto& e : run.epochs) {
      curve.x.push_back(e.epoch);
      curve.y.push_back(e.gap());
      lo = std::min(lo, e.gap());
      hi = std::max(hi, e.gap());
    }
    (run.batch_norm ? bn_epochs : plain_epochs).series.push_back(curve);
  }
  gap.series = {bn_gap, plain_gap};
  for (auto* panel : {&bn_epochs, &plain_epochs}) {
    panel->extra = "set xtics 1\n";  // whole epochs
    panel->has_yrange = true;
    panel->ymin = lo - 0.01;
    panel->ymax = hi + 0.01;
  }
  render_figure(dir, "batch_size", line_panels_commands({gap, bn_epochs, plain_epochs}, "bs"), 1500, 460);

  ReportSection section{"batch-size", "Batch size and BN's regularization (seed 004)", "", {}};
  std::vector<std::vector<std::string>> rows;
  for (const auto b : o.batch_sizes) {
    std::vector<std::string> row{fmt::format("{}", b)};
    for (const bool bn : {true, false}) {
      const BatchSizeRun* run = nullptr;
      for (const auto& r : result.runs)
        if (r.batch_size == b && r.batch_norm == bn) run = &r;
      if (!run || run->epochs.empty() || run->diverged) {
        row.insert(row.end(), {"diverged", "-", "-"});
        continue;
      }
      const auto& e = run->epochs.back();
      row.insert(row.end(), {fixed(e.train_accuracy, 4), fixed(e.val_accuracy, 4), fixed(e.gap(), 4)});
    }
    rows.push_back(row);
  }
  section.body_html +=
      html_paragraph(fmt::format(
          "The MLP 784-300-100-10 (ReLU) with BN before each activation and without BN, trained for {} epochs "
          "(the fixed budget: every run sees the same {} training images {} times, less what full batches leave "
          "over each epoch) at each batch size, SGD with "
          "momentum {} and learning rate {} x batch / {} (linear scaling). Accuracies in inference mode after the "
          "last epoch, on the training images and on {} validation images; the gap is their difference.",
          o.epochs, result.train_examples, o.epochs, o.momentum, o.base_learning_rate, o.reference_batch,
          result.validation_examples)) +
      html_table(
          {"batch size", "BN: train", "BN: validation", "BN: gap", "no BN: train", "no BN: validation", "no BN: gap"},
          rows) +
      html_paragraph(
          "Seed 004: BN's batch statistics add noise that regularizes a little, and less the larger the batch. "
          "If so, BN's gap grows with the batch size, and the difference to the network without BN shrinks.");
  section.figures.push_back({dir / "batch_size.png",
                             "(a) train - validation accuracy after the last epoch against the batch size; (b), (c) "
                             "the gap epoch by epoch with and without BN."});
  return detail::write_single_report("batch-size", dir, "bnlab experiment: batch size", std::move(section));
}

ExperimentOutput run_batch_size(const BatchSizeOptions& options, std::ostream& out) {
  check_batch_size_options(options);
  prepare_output_directory(options.out_dir, "output directory");
  return write_batch_size(train_batch_size(options, out));
}

}  // namespace bnlab::experiments
