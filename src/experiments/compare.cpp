#include "bnlab/experiments/compare.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <set>
#include <stdexcept>

#include "bnlab/experiments/output_files.hpp"
#include "bnlab/models.hpp"
#include "bnlab/system.hpp"

namespace bnlab::experiments {
namespace {

// Shortest decimal that reads back to the same double (fmt's default), so the files lose
// nothing; JSON has no NaN or infinity, hence null.
std::string json_number(double value) { return std::isfinite(value) ? fmt::format("{}", value) : "null"; }

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        else
          out += c;
    }
  }
  return out + "\"";
}

std::string json_array(const std::vector<double>& values) {
  std::vector<std::string> parts;
  parts.reserve(values.size());
  for (const double v : values) parts.push_back(json_number(v));
  return fmt::format("[{}]", fmt::join(parts, ", "));
}

// CSV cells: numbers, "nan" where a value is not finite (a diverged run; pandas and NumPy read
// it back as NaN); the caller leaves a cell empty where no value exists (no validation set).
std::string csv_number(double value) { return std::isfinite(value) ? fmt::format("{}", value) : "nan"; }

std::string value_at(const std::vector<double>& values, std::size_t i, const char* format) {
  return i < values.size() ? fmt::format(fmt::runtime(format), values[i]) : std::string("-");
}

}  // namespace

const std::vector<PublishedRun>& published_seed_runs() {
  // Copied from the seed notebook's printed logs (seeds/003); the run is cut off after epoch
  // 10's training metrics, so validation has 9 epochs.
  static const std::vector<PublishedRun> runs = {
      {"baseline",
       "seed 003, Keras, SGD(lr=1e-3), batch 32",
       {1.2819, 0.7955, 0.6816, 0.6217, 0.5832, 0.5553, 0.5338, 0.5173, 0.5040, 0.4924},
       {0.6229, 0.7361, 0.7721, 0.7944, 0.8075, 0.8157, 0.8225, 0.8273, 0.8290, 0.8321},
       {0.8886, 0.7130, 0.6427, 0.5900, 0.5582, 0.5350, 0.5157, 0.5079, 0.4895},
       {0.7160, 0.7656, 0.7898, 0.8064, 0.8202, 0.8238, 0.8304, 0.8284, 0.8386},
       {2, 2, 2, 1, 2, 2, 2, 2, 2, 2}},
      {"bn",
       "seed 003 (Approach One), Keras, SGD(lr=1e-3), batch 32",
       {0.8293, 0.5703, 0.5161, 0.4788, 0.4547, 0.4386, 0.4254, 0.4123, 0.4026, 0.3924},
       {0.7221, 0.8035, 0.8214, 0.8314, 0.8406, 0.8445, 0.8502, 0.8538, 0.8578, 0.8614},
       {0.5539, 0.4792, 0.4425, 0.4212, 0.4051, 0.3931, 0.3829, 0.3759, 0.3691},
       {0.8162, 0.8378, 0.8492, 0.8562, 0.8616, 0.8628, 0.8644, 0.8672, 0.8676},
       {3, 3, 3, 3, 3, 3, 3, 3, 3, 3}},
  };
  return runs;
}

const PublishedRun* find_published_run(const std::string& model) {
  for (const auto& run : published_seed_runs())
    if (run.model == model) return &run;
  return nullptr;
}

double ModelRun::seconds_per_epoch() const {
  const auto& seconds = result.history.seconds;
  if (seconds.empty()) return 0.0;
  double total = 0.0;
  for (const double s : seconds) total += s;
  return total / static_cast<double>(seconds.size());
}

void check_compare_options(const CompareOptions& options) {
  const auto valid = seed_model_names();
  std::set<std::string> seen;
  for (const auto& name : options.models) {
    if (std::find(valid.begin(), valid.end(), name) == valid.end())
      throw std::invalid_argument(fmt::format("unknown model '{}' (valid: {})", name, fmt::join(valid, ", ")));
    if (!seen.insert(name).second) throw std::invalid_argument(fmt::format("model '{}' is listed twice", name));
  }
  check_training_options(options.training);
  check_data_options(options.data);
  if (options.out_dir.empty()) throw std::invalid_argument("the output directory path is empty");
}

Comparison run_comparison(const CompareOptions& options, std::ostream& out) {
  check_compare_options(options);
  const std::vector<std::string> models = options.models.empty() ? seed_model_names() : options.models;

  const SeedData data = load_seed_data(options.data);
  // Created once the data has been read (a bad --data-dir leaves no directory behind), still
  // before any training time is spent.
  prepare_output_directory(options.out_dir, "output directory");
  Comparison comparison;
  comparison.training = options.training;
  comparison.data_dir = options.data.data_dir.string();
  comparison.train_samples = data.train.size();
  comparison.validation_samples = data.validation.size();
  comparison.test_samples = data.test.size();

  const auto& training = options.training;
  out << fmt::format("Seed 003 comparison: {} with {} (learning rate {}{}), batch size {}, {} epochs, seed {}\n",
                     fmt::join(models, ", "), training.optimizer, training.learning_rate,
                     training.momentum != 0 ? fmt::format(", momentum {}", training.momentum) : "", training.batch_size,
                     training.epochs, training.seed);
  out << fmt::format("Fashion-MNIST from {}: {} training, {} validation, {} test images\n", comparison.data_dir,
                     comparison.train_samples, comparison.validation_samples, comparison.test_samples);
  out << system_description() << "; " << training_threads_description() << "\n" << std::flush;

  for (const auto& name : models) {
    out << fmt::format("\n=== {} ===\n", name);
    Sequential model = make_seed_model(name, training.seed);
    model.summary(out);
    ModelRun run;
    run.model = name;
    run.parameters = model.count_params();
    run.trainable_parameters = model.count_trainable_params();
    run.result = train_and_evaluate(model, data, training, out);
    out << "Test: " << format_evaluation(run.result.test) << "\n" << std::flush;
    comparison.runs.push_back(std::move(run));
  }

  const std::string table = format_comparison_table(comparison);
  out << "\n" << table;
  write_comparison_files(comparison, options.out_dir);
  out << fmt::format("\nWrote {}, {} and {}\n", (options.out_dir / "history.csv").string(),
                     (options.out_dir / "history.json").string(), (options.out_dir / "table.txt").string());
  return comparison;
}

std::string format_comparison_table(const Comparison& comparison) {
  std::size_t epochs = 0;
  for (const auto& run : comparison.runs) epochs = std::max(epochs, run.result.history.epochs());
  std::size_t name_width = 5;
  for (const auto& run : comparison.runs) name_width = std::max(name_width, run.model.size());

  std::string table = "Validation accuracy after each epoch: this run (bnlab) beside the seed's Keras run\n";
  std::string header = fmt::format("{:<{}}  {:<6}", "model", name_width, "run");
  for (std::size_t e = 0; e < epochs; ++e) header += fmt::format(" {:>7}", fmt::format("ep{}", e + 1));
  header += fmt::format(" {:>9} {:>8}", "test_acc", "s/epoch");
  table += header + "\n" + std::string(header.size(), '-') + "\n";

  for (const auto& run : comparison.runs) {
    const History& history = run.result.history;
    std::string row = fmt::format("{:<{}}  {:<6}", run.model, name_width, "bnlab");
    for (std::size_t e = 0; e < epochs; ++e) row += fmt::format(" {:>7}", value_at(history.val_accuracy, e, "{:.4f}"));
    row += fmt::format(" {:>9.4f} {:>8.2f}", run.result.test.accuracy, run.seconds_per_epoch());
    table += row + "\n";

    const PublishedRun* published = find_published_run(run.model);
    if (!published) {
      table += fmt::format("{:<{}}  {:<6} (the seed printed no numbers for this model)\n", "", name_width, "keras");
      continue;
    }
    row = fmt::format("{:<{}}  {:<6}", "", name_width, "keras");
    for (std::size_t e = 0; e < epochs; ++e)
      row += fmt::format(" {:>7}", value_at(published->val_accuracy, e, "{:.4f}"));
    double keras_seconds = 0.0;
    for (const double s : published->seconds) keras_seconds += s;
    keras_seconds /= static_cast<double>(published->seconds.size());
    // Keras printed whole seconds on the notebook's (unknown) machine: a rough scale only.
    row += fmt::format(" {:>9} {:>8.2f}", "-", keras_seconds);
    table += row + "\n";

    row = fmt::format("{:<{}}  {:<6}", "", name_width, "diff");
    for (std::size_t e = 0; e < epochs; ++e) {
      const bool both = e < history.val_accuracy.size() && e < published->val_accuracy.size();
      row += fmt::format(" {:>7}", both ? fmt::format("{:+.4f}", history.val_accuracy[e] - published->val_accuracy[e])
                                        : std::string("-"));
    }
    table += row + "\n";
  }
  for (const auto& run : comparison.runs)
    if (!run.result.stopped.empty()) table += fmt::format("note: {} {}\n", run.model, run.result.stopped);
  return table;
}

std::string comparison_csv(const Comparison& comparison) {
  std::string csv = "model,epoch,loss,accuracy,val_loss,val_accuracy,seconds\n";
  for (const auto& run : comparison.runs) {
    const History& h = run.result.history;
    for (std::size_t e = 0; e < h.epochs(); ++e) {
      const bool validated = e < h.val_loss.size();
      csv += fmt::format("{},{},{},{},{},{},{}\n", run.model, e + 1, csv_number(h.loss[e]), csv_number(h.accuracy[e]),
                         validated ? csv_number(h.val_loss[e]) : "", validated ? csv_number(h.val_accuracy[e]) : "",
                         csv_number(h.seconds[e]));
    }
  }
  return csv;
}

std::string comparison_json(const Comparison& comparison) {
  const auto& t = comparison.training;
  std::string json = "{\n  \"format\": \"bnlab-compare\",\n  \"version\": 1,\n";
  json += fmt::format(
      "  \"settings\": {{\"epochs\": {}, \"learning_rate\": {}, \"batch_size\": {}, \"optimizer\": {}, "
      "\"momentum\": {}, \"seed\": {}, \"data_dir\": {}, \"train_samples\": {}, \"validation_samples\": {}, "
      "\"test_samples\": {}}},\n",
      t.epochs, json_number(t.learning_rate), t.batch_size, json_string(t.optimizer), json_number(t.momentum), t.seed,
      json_string(comparison.data_dir), comparison.train_samples, comparison.validation_samples,
      comparison.test_samples);
  json += "  \"models\": [";
  for (std::size_t m = 0; m < comparison.runs.size(); ++m) {
    const ModelRun& run = comparison.runs[m];
    const History& h = run.result.history;
    json += m == 0 ? "\n" : ",\n";
    json += fmt::format(
        "    {{\"model\": {}, \"parameters\": {}, \"trainable_parameters\": {}, \"non_trainable_parameters\": {}, "
        "\"test_loss\": {}, \"test_accuracy\": {}, \"seconds_per_epoch\": {}, \"stopped\": {},\n     \"epochs\": [",
        json_string(run.model), run.parameters, run.trainable_parameters, run.parameters - run.trainable_parameters,
        json_number(run.result.test.loss), json_number(run.result.test.accuracy), json_number(run.seconds_per_epoch()),
        run.result.stopped.empty() ? "null" : json_string(run.result.stopped));
    for (std::size_t e = 0; e < h.epochs(); ++e) {
      const bool validated = e < h.val_loss.size();
      json += fmt::format(
          "{}\n       {{\"epoch\": {}, \"loss\": {}, \"accuracy\": {}, \"val_loss\": {}, \"val_accuracy\": {}, "
          "\"seconds\": {}}}",
          e == 0 ? "" : ",", e + 1, json_number(h.loss[e]), json_number(h.accuracy[e]),
          validated ? json_number(h.val_loss[e]) : "null", validated ? json_number(h.val_accuracy[e]) : "null",
          json_number(h.seconds[e]));
    }
    json += h.epochs() == 0 ? "]}" : "\n     ]}";
  }
  json += comparison.runs.empty() ? "],\n" : "\n  ],\n";
  json += "  \"published\": [";
  const auto& published = published_seed_runs();
  for (std::size_t p = 0; p < published.size(); ++p) {
    const PublishedRun& run = published[p];
    json += fmt::format(
        "{}\n    {{\"model\": {}, \"source\": {}, \"loss\": {}, \"accuracy\": {}, \"val_loss\": {}, "
        "\"val_accuracy\": {}, \"seconds\": {}}}",
        p == 0 ? "" : ",", json_string(run.model), json_string(run.source), json_array(run.loss),
        json_array(run.accuracy), json_array(run.val_loss), json_array(run.val_accuracy), json_array(run.seconds));
  }
  json += "\n  ]\n}\n";
  return json;
}

void write_comparison_files(const Comparison& comparison, const std::filesystem::path& directory) {
  write_file_atomically(directory / "history.csv", comparison_csv(comparison));
  write_file_atomically(directory / "history.json", comparison_json(comparison));
  write_file_atomically(directory / "table.txt", format_comparison_table(comparison));
}

}  // namespace bnlab::experiments
