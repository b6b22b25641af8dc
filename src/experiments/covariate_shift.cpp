#include "bnlab/experiments/covariate_shift.hpp"

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

constexpr std::int64_t hidden_units = 100;

CovariateShiftRun train_one(const CovariateShiftOptions& options, bool batch_norm, const SeedData& data,
                            const Tensor& probe, std::int64_t eval_every, std::ostream& out) {
  CovariateShiftRun run;
  run.network = batch_norm ? "with BN" : "without BN";
  run.batch_norm = batch_norm;
  MlpSpec spec;
  spec.hidden_units = {hidden_units, hidden_units, hidden_units};
  spec.activation = "sigmoid";
  spec.batch_norm = batch_norm;
  spec.init_stddev = options.init_stddev;
  // The same seed for both networks: the same initial kernels and the same batches, so the two
  // differ only by BN.
  Sequential model = make_mlp(spec, options.seed);
  model.compile(std::make_unique<SGD>(options.learning_rate));
  const std::size_t last_sigmoid = hidden_activation_layers(model).back();

  StepTrainer trainer(model, data.train, options.batch_size, options.seed);
  detail::Stopwatch clock;
  double loss_sum = 0;
  std::int64_t loss_steps = 0;
  std::int64_t next_print = options.steps / 10;
  std::vector<float> unit_values(static_cast<std::size_t>(probe.dim(0)));
  out << fmt::format("[covariate-shift] network {}: {} steps of batch {}, SGD lr {}, evaluating every {} steps\n",
                     run.network, options.steps, options.batch_size, options.learning_rate, eval_every);
  out.flush();
  for (std::int64_t step = 1; step <= options.steps; ++step) {
    const double loss = trainer.step();
    if (trainer.diverged()) {
      run.diverged = true;
      out << fmt::format("[covariate-shift] network {}: the loss became {} at step {}; stopped\n", run.network, loss,
                         step);
      break;
    }
    loss_sum += loss;
    ++loss_steps;
    if (step % eval_every != 0 && step != options.steps) continue;
    CovariateShiftRecord record;
    record.step = step;
    record.train_loss = loss_sum / static_cast<double>(loss_steps);
    loss_sum = 0;
    loss_steps = 0;
    // The activation layer's input is the previous layer's output: Dense without BN, the
    // BatchNormalization (inference mode, moving statistics) with it.
    const Tensor& input = forward_through(model, last_sigmoid - 1, probe);
    for (std::int64_t i = 0; i < probe.dim(0); ++i)
      unit_values[static_cast<std::size_t>(i)] = input[i * hidden_units + options.unit];
    record.p15 = percentile(unit_values, 15);
    record.p50 = percentile(unit_values, 50);
    record.p85 = percentile(unit_values, 85);
    record.test_accuracy = accuracy_of(model, data.test);
    run.records.push_back(record);
    if (step >= next_print || step == options.steps) {
      out << fmt::format(
          "[covariate-shift] network {}: step {}/{}  loss {:.4f}  test accuracy {:.4f}  sigmoid input "
          "p15/p50/p85 {:.3f} / {:.3f} / {:.3f}  ({:.1f} s)\n",
          run.network, step, options.steps, record.train_loss, record.test_accuracy, record.p15, record.p50,
          record.p85, clock.seconds());
      out.flush();
      while (next_print <= step) next_print += std::max<std::int64_t>(1, options.steps / 10);
    }
  }
  run.seconds = clock.seconds();
  return run;
}

double final_accuracy(const CovariateShiftRun& run) {
  return run.records.empty() ? std::numeric_limits<double>::quiet_NaN() : run.records.back().test_accuracy;
}

// The first recorded step at which the test accuracy reached `target`; NaN if never.
double steps_to(const CovariateShiftRun& run, double target) {
  for (const auto& r : run.records)
    if (r.test_accuracy >= target) return static_cast<double>(r.step);
  return std::numeric_limits<double>::quiet_NaN();
}

struct Drift {
  double median_min = 0, median_max = 0, width_first = 0, width_last = 0;
};

Drift drift_of(const CovariateShiftRun& run) {
  Drift d;
  if (run.records.empty()) return {NAN, NAN, NAN, NAN};
  d.median_min = d.median_max = run.records.front().p50;
  for (const auto& r : run.records) {
    d.median_min = std::min(d.median_min, r.p50);
    d.median_max = std::max(d.median_max, r.p50);
  }
  d.width_first = run.records.front().p85 - run.records.front().p15;
  d.width_last = run.records.back().p85 - run.records.back().p15;
  return d;
}

}  // namespace

void check_covariate_shift_options(const CovariateShiftOptions& o) {
  if (o.steps < 1) throw std::invalid_argument(fmt::format("steps is {}, must be >= 1", o.steps));
  if (o.batch_size < 2)
    throw std::invalid_argument(fmt::format(
        "batch size is {}, must be >= 2 (over a single example BatchNormalization outputs only beta)", o.batch_size));
  if (o.eval_every < 0) throw std::invalid_argument(fmt::format("eval_every is {}, must be >= 1 (0: automatic)", o.eval_every));
  if (!std::isfinite(o.learning_rate) || o.learning_rate <= 0)
    throw std::invalid_argument(fmt::format("learning rate is {}, must be a finite number > 0", o.learning_rate));
  if (!std::isfinite(o.init_stddev) || o.init_stddev <= 0)
    throw std::invalid_argument(fmt::format("init_stddev is {}, must be a finite number > 0", o.init_stddev));
  if (o.probe_examples < 1)
    throw std::invalid_argument(fmt::format("probe_examples is {}, must be >= 1", o.probe_examples));
  if (o.unit < 0 || o.unit >= hidden_units)
    throw std::invalid_argument(fmt::format("unit is {}, must be in 0..{}", o.unit, hidden_units - 1));
  if (o.data.validation < 1)
    throw std::invalid_argument(
        "covariate-shift needs a validation split (--validation >= 1): its first examples are the fixed held-out "
        "batch whose sigmoid inputs are followed");
  check_data_options(o.data);
}

CovariateShiftResult train_covariate_shift(const CovariateShiftOptions& options, std::ostream& out) {
  check_covariate_shift_options(options);
  CovariateShiftResult result;
  result.options = options;
  result.eval_every = evaluation_interval(options.steps, options.eval_every, 100);
  const SeedData data = load_seed_data(options.data);
  result.probe_examples = std::min(options.probe_examples, data.validation.size());
  result.train_examples = data.train.size();
  result.test_examples = data.test.size();
  const Tensor probe = data.validation.images.slice_batch(0, result.probe_examples);
  out << fmt::format("[covariate-shift] {} training, {} test images; the sigmoid inputs are followed on {} held-out "
                     "(validation) images\n",
                     data.train.size(), data.test.size(), result.probe_examples);
  for (const bool bn : {false, true})
    result.runs.push_back(train_one(options, bn, data, probe, result.eval_every, out));
  return result;
}

ExperimentOutput write_covariate_shift(const CovariateShiftResult& result) {
  const auto& o = result.options;
  const auto dir = o.out_dir;

  std::string csv = "network,step,test_accuracy,p15,p50,p85,train_loss\n";
  for (const auto& run : result.runs)
    for (const auto& r : run.records)
      csv += fmt::format("{},{},{},{},{},{},{}\n", run.network, r.step, csv_number(r.test_accuracy), csv_number(r.p15),
                         csv_number(r.p50), csv_number(r.p85), csv_number(r.train_loss));
  write_file_atomically(dir / "covariate_shift.csv", csv);

  std::string json = "{\n  \"format\": \"bnlab-experiment-covariate-shift\",\n  \"version\": 1,\n";
  json += fmt::format(
      "  \"settings\": {{\"steps\": {}, \"batch_size\": {}, \"eval_every\": {}, \"optimizer\": \"sgd\", "
      "\"learning_rate\": {}, \"init_stddev\": {}, \"hidden_units\": [100, 100, 100], \"activation\": \"sigmoid\", "
      "\"probe_examples\": {}, \"unit\": {}, \"seed\": {}, \"train_limit\": {}, \"test_limit\": {}, "
      "\"validation\": {}}},\n  \"networks\": [\n",
      o.steps, o.batch_size, result.eval_every, json_number(o.learning_rate), json_number(o.init_stddev),
      result.probe_examples, o.unit, o.seed, o.data.train_limit, o.data.test_limit, o.data.validation);
  for (std::size_t n = 0; n < result.runs.size(); ++n) {
    const auto& run = result.runs[n];
    json += fmt::format("    {{\"network\": {}, \"batch_norm\": {}, \"diverged\": {}, \"seconds\": {}, \"records\": [",
                        json_string(run.network), run.batch_norm, run.diverged, json_number(run.seconds));
    for (std::size_t i = 0; i < run.records.size(); ++i) {
      const auto& r = run.records[i];
      json += fmt::format("{}\n      {{\"step\": {}, \"test_accuracy\": {}, \"p15\": {}, \"p50\": {}, \"p85\": {}, "
                          "\"train_loss\": {}}}",
                          i ? "," : "", r.step, json_number(r.test_accuracy), json_number(r.p15), json_number(r.p50),
                          json_number(r.p85), json_number(r.train_loss));
    }
    json += fmt::format("]}}{}\n", n + 1 < result.runs.size() ? "," : "");
  }
  json += "  ]\n}\n";
  write_file_atomically(dir / "covariate_shift.json", json);

  // The figure: the paper's three panels, (a) accuracy, (b) without BN, (c) with BN; (b) and
  // (c) share the y range so the spreads compare at a glance.
  LinePanel accuracy = line_panel("(a) test accuracy", "training steps", "test accuracy");
  accuracy.key = "bottom right";
  // Engineering notation ("10k") keeps step counts up to 50,000 from running into each other.
  accuracy.extra = "set format x \"%.0s%c\"\n";
  double lo = 0, hi = 0;
  bool first = true;
  std::vector<LinePanel> panels{accuracy};
  const char* colors[] = {"#d62728", "#1f77b4"};
  for (std::size_t n = 0; n < result.runs.size(); ++n) {
    const auto& run = result.runs[n];
    Series acc{run.network, {}, {}, fmt::format("lines lw 2 lc rgb \"{}\"", colors[n % 2])};
    Series p15{"15th percentile", {}, {}, "lines lw 1.5 dt 2 lc rgb \"#555555\""};
    Series p50{"50th percentile", {}, {}, "lines lw 2 lc rgb \"#000000\""};
    Series p85{"85th percentile", {}, {}, "lines lw 1.5 dt 2 lc rgb \"#999999\""};
    for (const auto& r : run.records) {
      const double s = static_cast<double>(r.step);
      acc.x.push_back(s), acc.y.push_back(r.test_accuracy);
      p15.x.push_back(s), p15.y.push_back(r.p15);
      p50.x.push_back(s), p50.y.push_back(r.p50);
      p85.x.push_back(s), p85.y.push_back(r.p85);
      for (const double v : {r.p15, r.p85}) {
        if (!std::isfinite(v)) continue;
        lo = first ? v : std::min(lo, v);
        hi = first ? v : std::max(hi, v);
        first = false;
      }
    }
    panels[0].series.push_back(acc);
    LinePanel pct = line_panel(fmt::format("({}) sigmoid input, {}", n == 0 ? 'b' : 'c', run.network),
                               "training steps", fmt::format("input to sigmoid {} of hidden layer 3", o.unit));
    pct.series = {p85, p50, p15};
    pct.extra = accuracy.extra;
    pct.key = "top right";
    panels.push_back(pct);
  }
  if (!first) {
    const double margin = std::max(0.1, 0.15 * (hi - lo));
    for (std::size_t p = 1; p < panels.size(); ++p) {
      panels[p].has_yrange = true;
      panels[p].ymin = lo - margin;
      panels[p].ymax = hi + margin;
    }
  }
  render_figure(dir, "covariate_shift", line_panels_commands(panels, "cs"), 1500, 460);

  // The report section.
  ReportSection section{"covariate-shift", "Covariate shift (the paper's Figure 1)", "", {}};
  std::vector<std::vector<std::string>> rows;
  for (const auto& run : result.runs) {
    const Drift d = drift_of(run);
    rows.push_back({run.network, fixed(final_accuracy(run), 4), fixed(steps_to(run, 0.80), 0, "never"),
                    fixed(steps_to(run, 0.85), 0, "never"),
                    fmt::format("{} .. {}", fixed(d.median_min, 3), fixed(d.median_max, 3)), fixed(d.width_first, 3),
                    fixed(d.width_last, 3), run.diverged ? "diverged" : fmt::format("{:.1f} s", run.seconds)});
  }
  section.body_html +=
      html_paragraph(fmt::format(
          "An MLP of three hidden layers of 100 sigmoid units on Fashion-MNIST, kernels drawn from N(0, {}^2), "
          "trained with plain SGD (learning rate {}) on mini-batches of {} from {} training images for {} steps, with and without "
          "BatchNormalization before each sigmoid. Every {} steps: the test accuracy ({} test images), and the "
          "15th, 50th and 85th percentiles of the input to sigmoid {} of the last hidden layer over {} fixed "
          "held-out images, in inference mode.",
          o.init_stddev, o.learning_rate, o.batch_size, result.train_examples, o.steps, result.eval_every,
          result.test_examples, o.unit, result.probe_examples)) +
      html_table({"network", "final test accuracy", "steps to 0.80", "steps to 0.85", "median range over training",
                  "p85 - p15 first", "p85 - p15 last", "time"},
                 rows) +
      html_paragraph(
          "What to look for: without BN the distribution of the sigmoid's input moves during training (its median "
          "drifts and its spread changes), so the layers above chase a moving target; with BN it stays centred and "
          "of fixed scale, and the network trains faster, as in the paper's Figure 1.");
  section.figures.push_back({dir / "covariate_shift.png",
                             "(a) test accuracy against training steps; (b), (c) 15th, 50th and 85th percentiles of "
                             "the input to one sigmoid of the last hidden layer, without and with BN."});
  return detail::write_single_report("covariate-shift", dir, "bnlab experiment: covariate shift", std::move(section));
}

ExperimentOutput run_covariate_shift(const CovariateShiftOptions& options, std::ostream& out) {
  check_covariate_shift_options(options);
  prepare_output_directory(options.out_dir, "output directory");
  return write_covariate_shift(train_covariate_shift(options, out));
}

}  // namespace bnlab::experiments
