#include "bnlab/experiments/learning_rate.hpp"

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

LearningRateRun train_one(const LearningRateOptions& options, const LearningRateNetwork& network,
                          const SeedData& data, std::int64_t eval_every, std::ostream& out) {
  LearningRateRun run;
  run.network = network;
  run.learning_rate = options.base_learning_rate * network.multiplier;
  MlpSpec spec;
  spec.hidden_units = {300, 100};
  spec.activation = network.activation;
  spec.batch_norm = network.batch_norm;
  // He initialization suits ReLU, Glorot the sigmoid (Keras's default); the same seed gives
  // every network of one activation the same initial kernels and all of them the same batches.
  spec.kernel_initializer = network.activation == "relu" ? "he_normal" : "glorot_uniform";
  Sequential model = make_mlp(spec, options.seed);
  model.compile(std::make_unique<SGD>(run.learning_rate, options.momentum));
  StepTrainer trainer(model, data.train, options.batch_size, options.seed);
  detail::Stopwatch clock;
  double loss_sum = 0;
  std::int64_t loss_steps = 0;
  for (std::int64_t step = 1; step <= options.steps; ++step) {
    const double loss = trainer.step();
    if (trainer.diverged()) {
      run.diverged = true;
      run.diverged_at = step;
      break;
    }
    loss_sum += loss;
    ++loss_steps;
    if (step % eval_every != 0 && step != options.steps) continue;
    run.points.push_back({step, accuracy_of(model, data.validation), loss_sum / static_cast<double>(loss_steps)});
    loss_sum = 0;
    loss_steps = 0;
  }
  run.test_accuracy = run.diverged ? std::numeric_limits<double>::quiet_NaN() : accuracy_of(model, data.test);
  run.seconds = clock.seconds();
  if (run.diverged)
    out << fmt::format("[learning-rate] {:<20} lr {:<8} diverged at step {} (loss not finite); best val accuracy {}\n",
                       network.name, run.learning_rate, run.diverged_at, fixed(run.best_val_accuracy(), 4));
  else
    out << fmt::format("[learning-rate] {:<20} lr {:<8} best val accuracy {:.4f} at step {}, test accuracy {:.4f} "
                       "({:.1f} s)\n",
                       network.name, run.learning_rate, run.best_val_accuracy(), run.best_step(), run.test_accuracy,
                       run.seconds);
  out.flush();
  return run;
}

std::string steps_text(std::int64_t steps) { return steps < 0 ? "never" : fmt::format("{}", steps); }

}  // namespace

std::vector<LearningRateNetwork> learning_rate_networks() {
  return {
      {"Baseline", false, "relu", 1},        {"BN-Baseline", true, "relu", 1},
      {"BN-x5", true, "relu", 5},            {"BN-x30", true, "relu", 30},
      {"BN-x5-Sigmoid", true, "sigmoid", 5}, {"Baseline-x5", false, "relu", 5},
      {"Baseline-x30", false, "relu", 30},   {"Baseline-x5-Sigmoid", false, "sigmoid", 5},
  };
}

double LearningRateRun::best_val_accuracy() const {
  double best = std::numeric_limits<double>::quiet_NaN();
  for (const auto& p : points)
    if (!(p.val_accuracy <= best)) best = p.val_accuracy;
  return best;
}

std::int64_t LearningRateRun::best_step() const {
  std::int64_t step = 0;
  double best = -1;
  for (const auto& p : points)
    if (p.val_accuracy > best) best = p.val_accuracy, step = p.step;
  return step;
}

std::int64_t LearningRateRun::steps_to(double target) const {
  for (const auto& p : points)
    if (p.val_accuracy >= target) return p.step;
  return -1;
}

void check_learning_rate_options(const LearningRateOptions& o) {
  if (o.steps < 1) throw std::invalid_argument(fmt::format("steps is {}, must be >= 1", o.steps));
  if (o.batch_size < 2)
    throw std::invalid_argument(fmt::format(
        "batch size is {}, must be >= 2 (over a single example BatchNormalization outputs only beta)", o.batch_size));
  if (o.eval_every < 0)
    throw std::invalid_argument(fmt::format("eval_every is {}, must be >= 1 (0: automatic)", o.eval_every));
  if (!std::isfinite(o.base_learning_rate) || o.base_learning_rate <= 0)
    throw std::invalid_argument(
        fmt::format("base learning rate is {}, must be a finite number > 0", o.base_learning_rate));
  if (!(o.momentum >= 0 && o.momentum < 1))
    throw std::invalid_argument(fmt::format("momentum is {}, must be in [0, 1)", o.momentum));
  if (!(o.target_accuracy >= 0 && o.target_accuracy <= 1))
    throw std::invalid_argument(
        fmt::format("target accuracy is {}, must be in [0, 1] (0: the Baseline's best)", o.target_accuracy));
  if (o.data.validation < 1)
    throw std::invalid_argument("learning-rate needs a validation split (--validation >= 1) to measure accuracy on");
  check_data_options(o.data);
}

LearningRateResult train_learning_rate(const LearningRateOptions& options, std::ostream& out) {
  check_learning_rate_options(options);
  LearningRateResult result;
  result.options = options;
  result.eval_every = evaluation_interval(options.steps, options.eval_every, 50);
  const SeedData data = load_seed_data(options.data);
  result.train_examples = data.train.size();
  result.validation_examples = data.validation.size();
  result.test_examples = data.test.size();
  const auto networks = learning_rate_networks();
  out << fmt::format("[learning-rate] {} networks, {} steps each of batch {} from {} training images; validation "
                     "accuracy on {} images every {} steps\n",
                     networks.size(), options.steps, options.batch_size, data.train.size(), data.validation.size(),
                     result.eval_every);
  for (std::size_t i = 0; i < networks.size(); ++i) {
    out << fmt::format("[learning-rate] network {}/{}: {}\n", i + 1, networks.size(), networks[i].name);
    result.runs.push_back(train_one(options, networks[i], data, result.eval_every, out));
  }
  result.target_accuracy = options.target_accuracy > 0 ? options.target_accuracy : result.runs[0].best_val_accuracy();
  return result;
}

ExperimentOutput write_learning_rate(const LearningRateResult& result) {
  const auto& o = result.options;
  const auto dir = o.out_dir;
  const double target = result.target_accuracy;
  const auto& baseline = result.runs.front();

  std::string curves = "network,step,val_accuracy,train_loss\n";
  for (const auto& run : result.runs)
    for (const auto& p : run.points)
      curves += fmt::format("{},{},{},{}\n", run.network.name, p.step, csv_number(p.val_accuracy),
                            csv_number(p.train_loss));
  write_file_atomically(dir / "learning_rate.csv", curves);

  std::string table = "network,batch_norm,activation,multiplier,learning_rate,steps_to_target,best_val_accuracy,"
                      "best_step,test_accuracy,diverged\n";
  for (const auto& run : result.runs) {
    const auto steps = run.steps_to(target);
    table += fmt::format("{},{},{},{},{},{},{},{},{},{}\n", run.network.name, run.network.batch_norm,
                         run.network.activation, run.network.multiplier, run.learning_rate,
                         steps < 0 ? "" : std::to_string(steps), csv_number(run.best_val_accuracy()), run.best_step(),
                         csv_number(run.test_accuracy), run.diverged);
  }
  write_file_atomically(dir / "learning_rate_table.csv", table);

  std::string json = "{\n  \"format\": \"bnlab-experiment-learning-rate\",\n  \"version\": 1,\n";
  json += fmt::format(
      "  \"settings\": {{\"steps\": {}, \"batch_size\": {}, \"eval_every\": {}, \"optimizer\": \"sgd\", "
      "\"momentum\": {}, \"base_learning_rate\": {}, \"hidden_units\": [300, 100], \"seed\": {}, \"train_examples\": "
      "{}, \"validation_examples\": {}, \"test_examples\": {}}},\n  \"target_accuracy\": {},\n  \"networks\": [\n",
      o.steps, o.batch_size, result.eval_every, json_number(o.momentum), json_number(o.base_learning_rate), o.seed,
      result.train_examples, result.validation_examples, result.test_examples, json_number(target));
  for (std::size_t n = 0; n < result.runs.size(); ++n) {
    const auto& run = result.runs[n];
    const auto steps = run.steps_to(target);
    json += fmt::format(
        "    {{\"network\": {}, \"batch_norm\": {}, \"activation\": {}, \"multiplier\": {}, \"learning_rate\": {}, "
        "\"steps_to_target\": {}, \"best_val_accuracy\": {}, \"best_step\": {}, \"test_accuracy\": {}, "
        "\"diverged\": {}, \"diverged_at\": {}, \"seconds\": {},\n     \"points\": [",
        json_string(run.network.name), run.network.batch_norm, json_string(run.network.activation),
        json_number(run.network.multiplier), json_number(run.learning_rate),
        steps < 0 ? "null" : std::to_string(steps), json_number(run.best_val_accuracy()), run.best_step(),
        json_number(run.test_accuracy), run.diverged, run.diverged ? std::to_string(run.diverged_at) : "null",
        json_number(run.seconds));
    for (std::size_t i = 0; i < run.points.size(); ++i)
      json += fmt::format("{}{{\"step\": {}, \"val_accuracy\": {}, \"train_loss\": {}}}", i ? ", " : "",
                          run.points[i].step, json_number(run.points[i].val_accuracy),
                          json_number(run.points[i].train_loss));
    json += fmt::format("]}}{}\n", n + 1 < result.runs.size() ? "," : "");
  }
  json += "  ]\n}\n";
  write_file_atomically(dir / "learning_rate.json", json);

  // Two panels: the paper's five networks, then the same rates without BN; the target as a line.
  const char* colors[] = {"#000000", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#2ca02c", "#d62728", "#9467bd"};
  LinePanel with_bn = line_panel("(a) the paper's networks: Baseline and BN", "training steps", "validation accuracy");
  LinePanel without_bn = line_panel("(b) the same learning rates without BN", "training steps", "validation accuracy");
  double lowest = 1;
  for (std::size_t n = 0; n < result.runs.size(); ++n) {
    const auto& run = result.runs[n];
    Series s{fmt::format("{} (lr {}){}", run.network.name, run.learning_rate, run.diverged ? ", diverged" : ""),
             {},
             {},
             fmt::format("lines lw 2 lc rgb \"{}\"{}", colors[n % 8], run.network.batch_norm || n == 0 ? "" : " dt 2")};
    for (const auto& p : run.points) {
      s.x.push_back(static_cast<double>(p.step));
      s.y.push_back(p.val_accuracy);
    }
    for (std::size_t i = s.y.size() / 10; i < s.y.size(); ++i) lowest = std::min(lowest, s.y[i]);
    if (n < 5) with_bn.series.push_back(s);
    if (n == 0 || n >= 5) without_bn.series.push_back(s);
  }
  for (auto* panel : {&with_bn, &without_bn}) {
    // The lower curves' early steps would otherwise squash the interesting top of the plot.
    panel->has_yrange = true;
    panel->ymin = std::max(0.0, std::floor(std::min(lowest, target - 0.1) * 20) / 20);
    panel->ymax = 1.0;
    panel->extra = "set format x \"%.0s%c\"\n";  // "10k": step counts that do not collide
    if (std::isfinite(target))
      panel->extra += fmt::format(
          "set arrow from graph 0, first {0} to graph 1, first {0} nohead lc rgb \"#888888\" dt 3\n"
          "set label \"target {1:.4f}\" at graph 0.02, first {0} offset 0,0.6 tc rgb \"#666666\"\n",
          target, target);
  }
  render_figure(dir, "learning_rate", line_panels_commands({with_bn, without_bn}, "lr"), 1500, 560);

  ReportSection section{"learning-rate", "Learning rate (the paper's Figure 2, seed 000)", "", {}};
  std::vector<std::vector<std::string>> rows;
  const auto baseline_steps = baseline.steps_to(target);
  for (const auto& run : result.runs) {
    const auto steps = run.steps_to(target);
    std::string speedup = "-";
    if (steps > 0 && baseline_steps > 0) speedup = fmt::format("{:.1f}x", static_cast<double>(baseline_steps) / steps);
    rows.push_back({run.network.name, fmt::format("{}", run.learning_rate), steps_text(steps), speedup,
                    fixed(run.best_val_accuracy(), 4), fixed(run.test_accuracy, 4),
                    run.diverged ? fmt::format("diverged at step {}", run.diverged_at) : "no"});
  }
  section.body_html +=
      html_paragraph(fmt::format(
          "An MLP 784-300-100-10 on Fashion-MNIST ({} training images, validation accuracy on {} held-out images "
          "every {} steps), SGD with momentum {}, mini-batches of {}, {} steps per network. The base learning rate "
          "{} is Inception's in the paper; x5 and x30 are the paper's BN-x5 and BN-x30. The target is {}: {:.4f}.",
          result.train_examples, result.validation_examples, result.eval_every, o.momentum, o.batch_size, o.steps,
          o.base_learning_rate, o.target_accuracy > 0 ? "the given accuracy" : "the Baseline's best validation accuracy",
          target)) +
      html_table({"network", "learning rate", "steps to target", "speed-up vs Baseline", "best val accuracy",
                  "final test accuracy", "diverged"},
                 rows) +
      html_paragraph(
          "The paper's claim: with BN the network reaches the baseline's accuracy in far fewer steps, and tolerates "
          "much higher learning rates (BN-x30), while without BN high rates train worse or diverge; a sigmoid network "
          "trains with BN at all.");
  section.figures.push_back({dir / "learning_rate.png",
                             "Validation accuracy against training steps: (a) Baseline and the BN networks, (b) the "
                             "same learning rates without BN (dashed). Dotted: the target accuracy."});
  return detail::write_single_report("learning-rate", dir, "bnlab experiment: learning rate", std::move(section));
}

ExperimentOutput run_learning_rate(const LearningRateOptions& options, std::ostream& out) {
  check_learning_rate_options(options);
  prepare_output_directory(options.out_dir, "output directory");
  return write_learning_rate(train_learning_rate(options, out));
}

}  // namespace bnlab::experiments
