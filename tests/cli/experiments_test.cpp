// The library behind the training subcommands (bnlab::experiments): option checks, atomic
// output files, the comparison's CSV/JSON/table formats and the seed's published numbers.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include "bnlab/experiments/compare.hpp"
#include "bnlab/experiments/output_files.hpp"
#include "bnlab/experiments/training.hpp"
#include "bnlab/models.hpp"
#include "cli/cli_support.hpp"

namespace bnlab::experiments {
namespace {

using cli::testing::Json;
using cli::testing::parse_json;
using cli::testing::read_text;
using cli::testing::split;
using cli::testing::TempDir;

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(TrainingOptions, DefaultsAreTheSeeds) {
  const TrainingOptions options;
  EXPECT_EQ(options.epochs, 10);
  EXPECT_EQ(options.learning_rate, 1e-3);
  EXPECT_EQ(options.batch_size, 32);
  EXPECT_EQ(options.optimizer, "sgd");
  EXPECT_EQ(options.momentum, 0.0);
  const DataOptions data;
  EXPECT_EQ(data.validation, 5000);
  EXPECT_EQ(data.data_dir, "/usr/share/datasets/fashion-mnist");
  EXPECT_NO_THROW(check_training_options(options));
}

TEST(TrainingOptions, RefusesBadValuesNamingThem) {
  auto refused = [](auto change) {
    TrainingOptions options;
    change(options);
    return error_of([&] { check_training_options(options); });
  };
  EXPECT_EQ(refused([](TrainingOptions& o) { o.epochs = 0; }), "epochs is 0, must be >= 1");
  EXPECT_EQ(refused([](TrainingOptions& o) { o.batch_size = -3; }), "batch size is -3, must be >= 1");
  EXPECT_EQ(refused([](TrainingOptions& o) { o.learning_rate = -0.5; }),
            "learning rate is -0.5, must be a finite number > 0");
  EXPECT_TRUE(has(refused([](TrainingOptions& o) { o.learning_rate = std::numeric_limits<double>::quiet_NaN(); }),
                  "must be a finite number > 0"));
  EXPECT_TRUE(has(refused([](TrainingOptions& o) { o.learning_rate = std::numeric_limits<double>::infinity(); }),
                  "must be a finite number > 0"));
  EXPECT_EQ(refused([](TrainingOptions& o) { o.optimizer = "SGD"; }), "unknown optimizer 'SGD' (valid: sgd, adam)");
  EXPECT_EQ(refused([](TrainingOptions& o) { o.momentum = 1.0; }), "momentum is 1, must be in [0, 1)");
  EXPECT_TRUE(has(refused([](TrainingOptions& o) {
                    o.optimizer = "adam";
                    o.momentum = 0.9;
                  }),
                  "only the sgd optimizer has a momentum setting"));
}

TEST(TrainingOptions, NamedOptimizersCarryTheSettings) {
  TrainingOptions options;
  options.learning_rate = 0.02;
  options.momentum = 0.5;
  const auto sgd = make_named_optimizer(options);
  ASSERT_EQ(sgd->type_name(), "SGD");
  EXPECT_EQ(dynamic_cast<const SGD&>(*sgd).learning_rate(), 0.02);
  EXPECT_EQ(dynamic_cast<const SGD&>(*sgd).momentum(), 0.5);
  options.optimizer = "adam";
  options.momentum = 0;
  const auto adam = make_named_optimizer(options);
  ASSERT_EQ(adam->type_name(), "Adam");
  EXPECT_EQ(dynamic_cast<const Adam&>(*adam).learning_rate(), 0.02);
}

TEST(DataOptions, RefusesNegativeCountsAndMissingDirectories) {
  DataOptions options;
  options.data_dir = "/nonexistent/bnlab-data";
  EXPECT_TRUE(has(error_of([&] { check_data_options(options); }),
                  "Fashion-MNIST data directory '/nonexistent/bnlab-data' does not exist"));
  options.validation = -1;
  EXPECT_EQ(error_of([&] { check_data_options(options); }), "validation size is -1, must be >= 0");
}

TEST(DataOptions, LimitsTakeThePrefixesOfTheSeedSplit) {
  TempDir dir;
  cli::testing::write_synthetic_fashion_mnist(dir.path());
  DataOptions options;
  options.data_dir = dir.path();
  options.validation = 100;
  const SeedData all = load_seed_data(options);
  EXPECT_EQ(all.validation.size(), 100);
  EXPECT_EQ(all.train.size(), 600);
  EXPECT_EQ(all.test.size(), 200);
  options.train_limit = 50;
  options.test_limit = 20;
  const SeedData limited = load_seed_data(options);
  ASSERT_EQ(limited.train.size(), 50);
  ASSERT_EQ(limited.test.size(), 20);
  // The limited sets are the first images of the full ones: training starts after validation.
  EXPECT_EQ(limited.train.images[0], all.train.images[0]);
  EXPECT_EQ(limited.train.labels[49], all.train.labels[49]);
  EXPECT_EQ(limited.test.images[19 * 784 + 400], all.test.images[19 * 784 + 400]);
  const data::Dataset test_only = load_test_data(options);
  EXPECT_EQ(test_only.size(), 20);
  EXPECT_EQ(test_only.labels, limited.test.labels);
}

TEST(OutputFiles, WriteAtomicallyCreatesAndReplacesLeavingNoTemporary) {
  TempDir dir;
  const auto path = dir.path() / "out.csv";
  write_file_atomically(path, "first\n");
  EXPECT_EQ(read_text(path), "first\n");
  write_file_atomically(path, "second, longer\n");
  EXPECT_EQ(read_text(path), "second, longer\n");
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);  // not mkstemp's 0600
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(OutputFiles, AFailedWriteNamesTheFileAndCreatesNothing) {
  TempDir dir;
  const auto path = dir.path() / "missing" / "out.json";
  const std::string message = error_of([&] { write_file_atomically(path, "{}"); });
  EXPECT_TRUE(has(message, path.string())) << message;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "missing"));
}

TEST(OutputFiles, DestinationChecks) {
  TempDir dir;
  EXPECT_NO_THROW(check_file_destination(dir.path() / "model.bnlab", "--save path"));
  EXPECT_TRUE(has(error_of([&] { check_file_destination(dir.path(), "--save path"); }), "is a directory"));
  EXPECT_TRUE(has(error_of([&] { check_file_destination(dir.path() / "a" / "b", "--save path"); }),
                  "the directory '" + (dir.path() / "a").string() + "' does not exist"));
  EXPECT_TRUE(has(error_of([&] { check_file_destination("", "--save path"); }), "empty"));

  const auto nested = dir.path() / "x" / "y";
  EXPECT_NO_THROW(prepare_output_directory(nested, "output directory"));
  EXPECT_TRUE(std::filesystem::is_directory(nested));
  cli::testing::write_synthetic_part(dir.path(), "file", "labels", 1, 1);
  EXPECT_TRUE(has(error_of([&] { prepare_output_directory(dir.path() / "file" / "z", "output directory"); }),
                  "cannot be created"));
}

TEST(PublishedRuns, AreTheSeedsNumbers) {
  const PublishedRun* baseline = find_published_run("baseline");
  const PublishedRun* bn = find_published_run("bn");
  ASSERT_NE(baseline, nullptr);
  ASSERT_NE(bn, nullptr);
  EXPECT_EQ(find_published_run("bn-before-activation"), nullptr);
  EXPECT_EQ(baseline->val_accuracy.size(), 9u);
  EXPECT_EQ(baseline->loss.size(), 10u);
  EXPECT_EQ(baseline->val_accuracy.front(), 0.7160);
  EXPECT_EQ(baseline->val_accuracy.back(), 0.8386);
  EXPECT_EQ(bn->val_accuracy.front(), 0.8162);
  EXPECT_EQ(bn->val_accuracy.back(), 0.8676);
  EXPECT_EQ(bn->accuracy.back(), 0.8614);
  for (const auto& run : published_seed_runs()) {
    const auto names = seed_model_names();
    EXPECT_NE(std::find(names.begin(), names.end(), run.model), names.end()) << run.model;
  }
}

Comparison two_epoch_comparison() {
  Comparison comparison;
  comparison.training.epochs = 2;
  comparison.data_dir = "/data/with \"quotes\"";
  comparison.train_samples = 55000;
  comparison.validation_samples = 5000;
  comparison.test_samples = 10000;
  ModelRun baseline;
  baseline.model = "baseline";
  baseline.parameters = 266610;
  baseline.trainable_parameters = 266610;
  baseline.result.history.loss = {1.25, 0.75};
  baseline.result.history.accuracy = {0.625, 0.75};
  baseline.result.history.val_loss = {0.875, 0.5};
  baseline.result.history.val_accuracy = {0.7260, 0.7556};
  baseline.result.history.seconds = {2.0, 4.0};
  baseline.result.test = {0.5, 0.8125};
  ModelRun before;
  before.model = "bn-before-activation";
  before.parameters = 270946;
  before.trainable_parameters = 268578;
  before.result.history.loss = {std::numeric_limits<double>::quiet_NaN()};
  before.result.history.accuracy = {0.5};
  before.result.history.seconds = {1.5};
  before.result.test = {std::numeric_limits<double>::infinity(), 0.25};
  before.result.stopped = "stopped in epoch 2 at step 3: the loss became nan";
  comparison.runs = {baseline, before};
  return comparison;
}

TEST(ComparisonFiles, CsvHasOneRowPerModelAndEpoch) {
  const auto lines = split(comparison_csv(two_epoch_comparison()), '\n');
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "model,epoch,loss,accuracy,val_loss,val_accuracy,seconds");
  EXPECT_EQ(lines[1], "baseline,1,1.25,0.625,0.875,0.726,2");
  EXPECT_EQ(lines[2], "baseline,2,0.75,0.75,0.5,0.7556,4");
  // No validation set: empty cells; a NaN loss is spelled so, not dropped.
  EXPECT_EQ(lines[3], "bn-before-activation,1,nan,0.5,,,1.5");
  EXPECT_EQ(lines[4], "");
}

TEST(ComparisonFiles, JsonIsValidWithNullsForMissingAndNonFiniteValues) {
  const Json json = parse_json(comparison_json(two_epoch_comparison()));
  EXPECT_EQ(json.at("format").string, "bnlab-compare");
  EXPECT_EQ(json.at("version").number, 1);
  EXPECT_EQ(json.at("settings").at("data_dir").string, "/data/with \"quotes\"");
  EXPECT_EQ(json.at("settings").at("train_samples").number, 55000);
  const Json& baseline = json.at("models")[0];
  EXPECT_EQ(baseline.at("seconds_per_epoch").number, 3.0);
  EXPECT_EQ(baseline.at("test_accuracy").number, 0.8125);
  EXPECT_EQ(baseline.at("epochs")[1].at("val_accuracy").number, 0.7556);
  EXPECT_EQ(baseline.at("stopped").kind, Json::Kind::null);
  const Json& before = json.at("models")[1];
  EXPECT_EQ(before.at("non_trainable_parameters").number, 2368);
  EXPECT_EQ(before.at("test_loss").kind, Json::Kind::null);
  EXPECT_EQ(before.at("epochs")[0].at("loss").kind, Json::Kind::null);
  EXPECT_EQ(before.at("epochs")[0].at("val_loss").kind, Json::Kind::null);
  EXPECT_EQ(before.at("stopped").string, "stopped in epoch 2 at step 3: the loss became nan");
  ASSERT_EQ(json.at("published").array.size(), 2u);
  EXPECT_EQ(json.at("published")[1].at("model").string, "bn");
  EXPECT_EQ(json.at("published")[0].at("val_accuracy").array.size(), 9u);
}

TEST(ComparisonFiles, JsonOfNoRunsIsValid) {
  Comparison empty;
  const Json json = parse_json(comparison_json(empty));
  EXPECT_TRUE(json.at("models").array.empty());
}

TEST(ComparisonTable, SetsKerasBesideBnlabWithTheDifference) {
  const std::string table = format_comparison_table(two_epoch_comparison());
  const auto lines = split(table, '\n');
  ASSERT_GE(lines.size(), 8u) << table;
  EXPECT_TRUE(has(lines[1], "ep1") && has(lines[1], "ep2") && has(lines[1], "test_acc") && has(lines[1], "s/epoch"))
      << table;
  EXPECT_TRUE(has(table, "baseline              bnlab   0.7260  0.7556    0.8125     3.00\n")) << table;
  EXPECT_TRUE(has(table, "keras   0.7160  0.7656         -     1.90\n")) << table;
  EXPECT_TRUE(has(table, "diff   +0.0100 -0.0100\n")) << table;
  // Epochs the model did not run, or that have no validation, show "-".
  EXPECT_TRUE(has(table, "bn-before-activation  bnlab        -       -    0.2500     1.50\n")) << table;
  EXPECT_TRUE(has(table, "(the seed printed no numbers for this model)")) << table;
  EXPECT_TRUE(has(table, "note: bn-before-activation stopped in epoch 2")) << table;
}

TEST(ComparisonTable, ShowsDashesBeyondThePublishedEpochs) {
  Comparison comparison = two_epoch_comparison();
  comparison.runs.resize(1);
  auto& h = comparison.runs[0].result.history;
  for (int e = 2; e < 10; ++e) {
    h.loss.push_back(0.5);
    h.accuracy.push_back(0.8);
    h.val_loss.push_back(0.5);
    h.val_accuracy.push_back(0.8);
    h.seconds.push_back(1.0);
  }
  const std::string table = format_comparison_table(comparison);
  // Epoch 10: the seed's log is cut off before its validation numbers.
  EXPECT_TRUE(has(table, "0.8386       -         -     1.90\n")) << table;
  EXPECT_TRUE(has(table, "-0.0386       -\n")) << table;  // ep9: 0.8 - 0.8386; ep10: nothing to compare
}

TEST(TrainAndEvaluate, ADivergingRunKeepsItsCompletedEpochsAndSaysWhy) {
  // Random images with labels, and a learning rate that makes the logits overflow: fit stops
  // with a non-finite loss, and the result says so instead of throwing the history away.
  SeedData data;
  data.train.images = Tensor({64, 28, 28});
  data.test.images = Tensor({16, 28, 28});
  std::uint32_t state = 3;
  for (Tensor* t : {&data.train.images, &data.test.images})
    for (std::int64_t i = 0; i < t->size(); ++i) {
      state = state * 1664525u + 1013904223u;
      (*t)[i] = static_cast<float>(state >> 8) / 16777216.0f;
    }
  for (int i = 0; i < 64; ++i) data.train.labels.push_back(i % 10);
  for (int i = 0; i < 16; ++i) data.test.labels.push_back(i % 10);
  TrainingOptions options;
  options.epochs = 3;
  options.learning_rate = 1e30;
  Sequential model = make_seed_model("baseline", 1);
  std::ostringstream log;
  const TrainResult result = train_and_evaluate(model, data, options, log);
  EXPECT_FALSE(result.stopped.empty()) << log.str();
  EXPECT_TRUE(has(result.stopped, "the loss became")) << result.stopped;
  EXPECT_LT(result.history.epochs(), 3u);
  EXPECT_TRUE(has(log.str(), "Training stopped in epoch")) << log.str();
}

TEST(TrainAndEvaluate, LearnsTheSyntheticClasses) {
  TempDir dir;
  cli::testing::write_synthetic_fashion_mnist(dir.path());
  DataOptions data_options;
  data_options.data_dir = dir.path();
  data_options.validation = 100;
  const SeedData data = load_seed_data(data_options);
  TrainingOptions options;
  options.epochs = 2;
  options.learning_rate = 0.05;
  Sequential model = make_seed_model("bn-before-activation", 42);
  std::ostringstream log;
  const TrainResult result = train_and_evaluate(model, data, options, log);
  EXPECT_TRUE(result.stopped.empty());
  ASSERT_EQ(result.history.epochs(), 2u);
  EXPECT_EQ(result.history.val_accuracy.size(), 2u);
  EXPECT_GT(result.test.accuracy, 0.8) << log.str();
  EXPECT_TRUE(has(log.str(), "Epoch 2/2\n")) << log.str();
  EXPECT_EQ(format_evaluation({0.48171, 0.83214}), "loss: 0.4817 - accuracy: 0.8321");
}

}  // namespace
}  // namespace bnlab::experiments
