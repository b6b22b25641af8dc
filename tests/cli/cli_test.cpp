// The `bnlab` tool end to end: help, every refusal of bad input (exit 2, "bnlab: error: ..."),
// summary counts, train -> save -> evaluate, and compare's files. Training runs use a small
// synthetic Fashion-MNIST written by the test, so the suite needs no installed data and stays fast.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "bnlab/layers/dense.hpp"
#include "bnlab/model.hpp"
#include "cli/cli_support.hpp"

namespace bnlab::cli::testing {
namespace {

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected to find \"" << part << "\" in:\n" << text;
}

::testing::AssertionResult Lacks(const std::string& text, const std::string& part) {
  if (text.find(part) == std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "did not expect \"" << part << "\" in:\n" << text;
}

class Cli : public ::testing::Test {
 protected:
  RunResult run(const std::vector<std::string>& args) { return run_bnlab(args, scratch_.path()); }

  // Expects exit status 2 and the message on stderr after the common prefix.
  void expect_refused(const std::vector<std::string>& args, const std::string& message) {
    const RunResult result = run(args);
    std::string joined;
    for (const auto& arg : args) joined += arg + " ";
    EXPECT_EQ(result.status, 2) << joined << "\nstdout: " << result.out << "\nstderr: " << result.err;
    EXPECT_EQ(result.err.rfind("bnlab: error: ", 0), 0u) << joined << "\nstderr: " << result.err;
    EXPECT_NE(result.err.find(message), std::string::npos)
        << joined << "\nexpected: " << message << "\nstderr: " << result.err;
  }

  std::string data_dir() {
    if (data_.empty()) {
      data_ = scratch_ / "data";
      write_synthetic_fashion_mnist(data_);
    }
    return data_;
  }

  TempDir scratch_;
  std::string data_;
};

// The digits after "accuracy: " on the line starting "Test: ".
std::string test_line(const std::string& out) {
  std::smatch match;
  const std::regex line(R"(\nTest: (loss: [0-9.e+-]+ - accuracy: [0-9.e+-]+)\n)");
  return std::regex_search(out, match, line) ? match[1].str() : std::string();
}

TEST(CliBinary, IsBuiltBesideTheTests) { EXPECT_TRUE(std::filesystem::exists(bnlab_binary())) << bnlab_binary(); }

TEST_F(Cli, HelpOfEveryCommandExitsZero) {
  for (const std::string command : {"summary", "train", "evaluate", "compare", "demo"}) {
    const RunResult result = run({command, "--help"});
    EXPECT_EQ(result.status, 0) << command << ": " << result.err;
    EXPECT_TRUE(Contains(result.out, "Usage:")) << command;
    EXPECT_TRUE(Contains(result.out, command)) << command;
  }
  const RunResult top = run({"--help"});
  EXPECT_EQ(top.status, 0);
  for (const std::string command : {"summary", "train", "evaluate", "compare"}) EXPECT_TRUE(Contains(top.out, command));
}

TEST_F(Cli, TrainHelpListsItsFlagsAndDefaults) {
  const RunResult result = run({"train", "--help"});
  ASSERT_EQ(result.status, 0);
  for (const std::string flag : {"--model", "--epochs", "--lr", "--batch-size", "--optimizer", "--momentum", "--seed",
                                 "--save", "--data-dir", "--validation", "--train-limit", "--test-limit"})
    EXPECT_TRUE(Contains(result.out, flag));
  EXPECT_TRUE(Contains(result.out, "baseline,bn,bn-before-activation"));
  EXPECT_TRUE(Contains(result.out, "=0.001"));
  EXPECT_TRUE(Contains(result.out, "/usr/share/datasets/fashion-mnist"));
}

TEST_F(Cli, RefusesUnknownFlagsAndMissingArguments) {
  expect_refused({"train", "--model", "bn", "--bogus"}, "--bogus");
  expect_refused({"compare", "--epcohs", "3"}, "--epcohs");
  expect_refused({"train"}, "--model is required");
  expect_refused({"evaluate"}, "--load is required");
  expect_refused({}, "A subcommand is required");
  // CLI11 alone would say "A subcommand is required" without naming the word it did not know.
  expect_refused({"frobnicate"}, "unknown command 'frobnicate' (valid: compare, demo, evaluate, experiment,");
  expect_refused({"--threads", "2", "frobnicate", "--model", "bn"}, "unknown command 'frobnicate'");
}

// CLI11 alone reads integers with strtoll(base 0): "032" as octal 26, "0x10" as 16, and "-1"
// into an unsigned seed as 2^64 - 1. The integer flags take plain decimal digits only.
TEST_F(Cli, IntegerFlagsTakePlainDecimalOnly) {
  expect_refused({"train", "--model", "bn", "--seed", "-1"},
                 "--seed: must be a decimal integer >= 0 (digits only), got '-1'");
  expect_refused({"train", "--model", "bn", "--batch-size", "032"},
                 "--batch-size: must be a decimal integer, got '032'");
  expect_refused({"train", "--model", "bn", "--epochs", "0x10"}, "--epochs: must be a decimal integer, got '0x10'");
  expect_refused({"--threads", "010", "summary", "--model", "bn"}, "--threads: must be a decimal integer, got '010'");
  expect_refused({"experiment", "normalize", "--seed", "-3"}, "--seed: must be a decimal integer >= 0");
  expect_refused({"experiment", "covariate-shift", "--steps", "0x10"},
                 "--steps: must be a decimal integer, got '0x10'");
  expect_refused({"demo", "--seed", "-1"}, "--seed: must be a decimal integer >= 0");
  // Past the type's range CLI11 would store the largest value (strtoll saturates): two seeds,
  // one run.
  expect_refused({"train", "--model", "bn", "--seed", "18446744073709551616"},
                 "--seed: 18446744073709551616 is out of range");
  expect_refused({"train", "--model", "bn", "--batch-size", "99999999999999999999"},
                 "--batch-size: 99999999999999999999 is out of range");
  expect_refused({"experiment", "covariate-shift", "--steps", "99999999999999999999"},
                 "--steps: 99999999999999999999 is out of range");
  expect_refused({"train", "--model", "bn", "--lr", "0x10"}, "--lr: must be a decimal number, got '0x10'");
  expect_refused({"experiment", "normalize", "--out", ""}, "--out: the path is empty");
  EXPECT_EQ(run({"--threads", "2", "summary", "--model", "bn"}).status, 0);
}

TEST_F(Cli, RefusesBadLearningRates) {
  expect_refused({"train", "--model", "bn", "--lr", "-1"}, "--lr: must be a finite number > 0, got -1");
  expect_refused({"train", "--model", "bn", "--lr=-0.5"}, "--lr: must be a finite number > 0, got -0.5");
  expect_refused({"train", "--model", "bn", "--lr", "0"}, "--lr: must be a finite number > 0, got 0");
  expect_refused({"train", "--model", "bn", "--lr", "nan"}, "--lr: must be a finite number > 0");
  expect_refused({"train", "--model", "bn", "--lr", "inf"}, "--lr: must be a finite number > 0");
  expect_refused({"train", "--model", "bn", "--lr", "fast"}, "--lr: must be a number, got 'fast'");
  expect_refused({"compare", "--lr", "-1"}, "--lr: must be a finite number > 0, got -1");
}

TEST_F(Cli, RefusesBadCounts) {
  expect_refused({"train", "--model", "bn", "--batch-size", "0"}, "--batch-size: must be >= 1, got 0");
  expect_refused({"train", "--model", "bn", "--epochs", "0"}, "--epochs: must be >= 1, got 0");
  expect_refused({"train", "--model", "bn", "--epochs", "2.5"}, "--epochs: must be a decimal integer, got '2.5'");
  expect_refused({"compare", "--batch-size", "0"}, "--batch-size: must be >= 1, got 0");
  expect_refused({"compare", "--epochs", "0"}, "--epochs: must be >= 1, got 0");
  expect_refused({"train", "--model", "bn", "--validation", "-1"}, "--validation: must be >= 0, got -1");
  expect_refused({"train", "--model", "bn", "--train-limit", "-5"}, "--train-limit: must be >= 0, got -5");
  expect_refused({"evaluate", "--load", "x", "--test-limit", "-1"}, "--test-limit: must be >= 0, got -1");
}

TEST_F(Cli, RefusesUnknownNamesListingTheValidOnes) {
  expect_refused({"train", "--model", "resnet"},
                 "--model: unknown model 'resnet' (valid: baseline, bn, bn-before-activation)");
  expect_refused({"summary", "--model", "BN"}, "unknown model 'BN' (valid: baseline, bn, bn-before-activation)");
  expect_refused({"compare", "--models", "bn,resnet"},
                 "--models: unknown model 'resnet' (valid: baseline, bn, bn-before-activation)");
  expect_refused({"compare", "--models", "bn,bn", "--data-dir", data_dir()}, "model 'bn' is listed twice");
  // CLI11's own list splitting dropped the empty name of a stray comma.
  expect_refused({"compare", "--models", "bn,"}, "--models: an empty name in the list 'bn,'");
  expect_refused({"compare", "--models", "bn,,baseline"}, "--models: an empty name in the list 'bn,,baseline'");
  expect_refused({"train", "--model", "bn", "--optimizer", "rmsprop"},
                 "--optimizer: unknown optimizer 'rmsprop' (valid: sgd, adam)");
  expect_refused({"train", "--model", "bn", "--momentum", "1"}, "--momentum: must be in [0, 1), got 1");
  expect_refused({"train", "--model", "bn", "--optimizer", "adam", "--momentum", "0.9", "--data-dir", data_dir()},
                 "only the sgd optimizer has a momentum setting");
}

TEST_F(Cli, RefusesAMissingDataDirectory) {
  const std::string missing = scratch_ / "no-such-dir";
  const std::string message = "Fashion-MNIST data directory '" + missing + "' does not exist";
  expect_refused({"train", "--model", "bn", "--data-dir", missing}, message);
  expect_refused({"evaluate", "--load", scratch_ / "model.bnlab", "--data-dir", missing}, message);
  expect_refused({"compare", "--data-dir", missing, "--out", scratch_ / "out"}, message);
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "out")) << "compare created its output before checking the data";
}

TEST_F(Cli, RefusesDataOptionsTheFilesCannotSatisfy) {
  expect_refused({"train", "--model", "bn", "--data-dir", data_dir(), "--validation", "700"},
                 "validation size is 700, but the training file has only 700 images");
  expect_refused({"train", "--model", "bn", "--data-dir", data_dir(), "--validation", "100", "--train-limit", "601"},
                 "train limit is 601, but only 600 training images remain after the 100 validation images");
  expect_refused({"train", "--model", "bn", "--data-dir", data_dir(), "--validation", "100", "--test-limit", "201"},
                 "test limit is 201, but the test set has only 200 images");
  // A directory without the files: the loader names the file it expected.
  std::filesystem::create_directories(scratch_ / "empty");
  expect_refused({"train", "--model", "bn", "--data-dir", scratch_ / "empty"}, "train-images-idx3-ubyte");
}

TEST_F(Cli, RefusesAnUnwritableSavePathBeforeTrainingAndLeavesNoFile) {
  const std::string in_missing_dir = scratch_ / "missing/model.bnlab";
  const RunResult result =
      run({"train", "--model", "bn", "--data-dir", data_dir(), "--validation", "100", "--save", in_missing_dir});
  EXPECT_EQ(result.status, 2);
  EXPECT_TRUE(Contains(result.err, "--save path '" + in_missing_dir + "': the directory '" + (scratch_ / "missing") +
                                       "' does not exist"));
  EXPECT_TRUE(Lacks(result.out, "Epoch 1/")) << "the check should come before training";
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "missing"));

  expect_refused({"train", "--model", "bn", "--data-dir", data_dir(), "--save", scratch_.path().string()},
                 "is a directory, expected a file path");
}

TEST_F(Cli, ASaveThatFailsAfterTrainingExitsTwoAndLeavesNoFile) {
  // /proc accepts no new files, even from root (for whom a read-only directory would not do):
  // the save itself fails after training, and nothing may be left behind.
  if (!std::filesystem::is_directory("/proc/self")) GTEST_SKIP() << "needs Linux's /proc";
  const RunResult result =
      run({"train", "--model", "baseline", "--epochs", "1", "--data-dir", data_dir(), "--validation", "100",
           "--train-limit", "64", "--test-limit", "32", "--save", "/proc/bnlab-cli-test-model"});
  EXPECT_EQ(result.status, 2) << result.out << result.err;
  EXPECT_EQ(result.err.rfind("bnlab: error: ", 0), 0u) << result.err;
  EXPECT_TRUE(Contains(result.err, "/proc/bnlab-cli-test-model"));
  for (const auto& entry : std::filesystem::directory_iterator("/proc"))
    EXPECT_EQ(entry.path().filename().string().find("bnlab-cli-test-model"), std::string::npos) << entry.path();
}

TEST_F(Cli, EvaluateRefusesAMissingOrBrokenModelFile) {
  expect_refused({"evaluate", "--load", scratch_ / "none.bnlab", "--data-dir", data_dir()}, "none.bnlab");
  {
    std::ofstream broken(scratch_ / "broken.bnlab");
    broken << "not a model";
  }
  expect_refused({"evaluate", "--load", scratch_ / "broken.bnlab", "--data-dir", data_dir()}, "broken.bnlab");
  // A whole model, built for other data: the error names the model file and the data.
  Sequential other;
  other.add(std::make_unique<Dense>(3, "softmax"));
  other.build({5}, 1);
  const std::string other_path = scratch_ / "other.bnlab";
  other.save(other_path);
  expect_refused({"evaluate", "--load", other_path, "--data-dir", data_dir()},
                 "the model in '" + other_path + "' does not fit the Fashion-MNIST test set in '" + data_dir() + "'");
}

TEST_F(Cli, SummaryPrintsTheSeedCounts) {
  const RunResult bn = run({"summary", "--model", "bn"});
  ASSERT_EQ(bn.status, 0) << bn.err;
  EXPECT_TRUE(Contains(bn.out, "Total params: 271,346\n"));
  EXPECT_TRUE(Contains(bn.out, "Trainable params: 268,978\n"));
  EXPECT_TRUE(Contains(bn.out, "Non-trainable params: 2,368\n"));
  EXPECT_TRUE(Contains(bn.out, "batch_normalization (BatchNo (None, 784)               3136"));

  const RunResult baseline = run({"summary", "--model", "baseline"});
  ASSERT_EQ(baseline.status, 0) << baseline.err;
  EXPECT_TRUE(Contains(baseline.out, "Total params: 266,610\n"));
  EXPECT_TRUE(Contains(baseline.out, "Non-trainable params: 0\n"));

  const RunResult before = run({"summary", "--model", "bn-before-activation"});
  ASSERT_EQ(before.status, 0) << before.err;
  // Approach Two: the two hidden Dense layers lose their 300 + 100 biases.
  EXPECT_TRUE(Contains(before.out, "Total params: 270,946\n"));
  EXPECT_TRUE(Contains(before.out, "Non-trainable params: 2,368\n"));
}

TEST_F(Cli, TrainSaveThenEvaluatePrintTheSameTestResult) {
  const std::string model_path = scratch_ / "model.bnlab";
  const RunResult trained = run({"train", "--model", "bn", "--epochs", "3", "--lr", "0.05", "--data-dir", data_dir(),
                                 "--validation", "100", "--save", model_path});
  ASSERT_EQ(trained.status, 0) << trained.out << trained.err;
  EXPECT_TRUE(Contains(trained.out, "600 training, 100 validation, 200 test images"));
  EXPECT_TRUE(Contains(trained.out, "Total params: 271,346"));
  // Keras's verbose=2 log (the output is a file, not a terminal): 600 / 32 -> 19 steps.
  const std::regex epoch_line(
      R"(Epoch 3/3\n19/19 - \d+s - loss: [0-9.]+ - accuracy: [0-9.]+ - val_loss: [0-9.]+ - val_accuracy: [0-9.]+\n)");
  EXPECT_TRUE(std::regex_search(trained.out, epoch_line)) << trained.out;
  const std::string trained_test = test_line(trained.out);
  ASSERT_FALSE(trained_test.empty()) << trained.out;
  // The synthetic classes are separable; a model that did not learn (labels misaligned with
  // images, no updates) stays near 0.1.
  const double accuracy = std::stod(trained_test.substr(trained_test.find("accuracy: ") + 10));
  EXPECT_GT(accuracy, 0.8) << trained.out;
  ASSERT_TRUE(std::filesystem::exists(model_path));
  for (const auto& entry : std::filesystem::directory_iterator(scratch_.path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();

  const RunResult evaluated = run({"evaluate", "--load", model_path, "--data-dir", data_dir()});
  ASSERT_EQ(evaluated.status, 0) << evaluated.err;
  EXPECT_EQ(test_line(evaluated.out), trained_test) << evaluated.out;
  EXPECT_TRUE(Contains(evaluated.out, "271346 parameters) on 200 test images"));

  const RunResult limited = run({"evaluate", "--load", model_path, "--data-dir", data_dir(), "--test-limit", "50"});
  ASSERT_EQ(limited.status, 0) << limited.err;
  EXPECT_TRUE(Contains(limited.out, "on 50 test images"));
}

TEST_F(Cli, TrainIsReproducibleForASeedAndDependsOnIt) {
  auto train = [&](const std::string& seed, const std::string& optimizer) {
    const RunResult result =
        run({"train", "--model", "baseline", "--epochs", "1", "--data-dir", data_dir(), "--validation", "100",
             "--train-limit", "200", "--seed", seed, "--optimizer", optimizer});
    EXPECT_EQ(result.status, 0) << result.err;
    return test_line(result.out);
  };
  const std::string first = train("7", "sgd");
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(train("7", "sgd"), first);
  EXPECT_NE(train("8", "sgd"), first);
  EXPECT_NE(train("7", "adam"), first);
}

// The global --thread-probe-interval reaches fit: the log's system line says which policy the
// run trained under, and the result is the same bits under either.
TEST_F(Cli, ThreadProbeIntervalSetsTheTrainingThreadPolicy) {
  int runs = 0;
  auto train = [&](const std::vector<std::string>& global) {
    std::vector<std::string> args = global;
    // 600 images in batches of 8: 75 steps, so that a probe interval of 16 runs trials.
    const std::vector<std::string> command{"train",
                                           "--model",
                                           "bn",
                                           "--epochs",
                                           "1",
                                           "--data-dir",
                                           data_dir(),
                                           "--validation",
                                           "100",
                                           "--batch-size",
                                           "8",
                                           "--save",
                                           scratch_ / ("model" + std::to_string(runs++) + ".bnlb")};
    args.insert(args.end(), command.begin(), command.end());
    const RunResult result = run(args);
    EXPECT_EQ(result.status, 0) << result.err;
    return result;
  };
  const RunResult timed = train({"--threads", "2"});
  EXPECT_TRUE(Contains(timed.out, "; training threads: up to 2, one where timed faster (every 256 steps)\n"));
  const RunResult often = train({"--threads", "2", "--thread-probe-interval", "16"});
  EXPECT_TRUE(Contains(often.out, "; training threads: up to 2, one where timed faster (every 16 steps)\n"));
  const RunResult fixed = train({"--threads", "2", "--thread-probe-interval", "0"});
  EXPECT_TRUE(Contains(fixed.out, "; training threads: 2 (fixed)\n"));
  ASSERT_FALSE(test_line(timed.out).empty());
  EXPECT_EQ(test_line(often.out), test_line(timed.out));
  EXPECT_EQ(test_line(fixed.out), test_line(timed.out));
  // The same bits, not only the same four printed decimals: the saved models are identical.
  const std::string timed_model = read_text(scratch_ / "model0.bnlb");
  ASSERT_FALSE(timed_model.empty());
  EXPECT_TRUE(read_text(scratch_ / "model1.bnlb") == timed_model);
  EXPECT_TRUE(read_text(scratch_ / "model2.bnlb") == timed_model);
  expect_refused({"--thread-probe-interval", "-1", "summary", "--model", "bn"},
                 "--thread-probe-interval: must be >= 0, got -1");
  expect_refused({"--thread-probe-interval", "010", "summary", "--model", "bn"},
                 "--thread-probe-interval: must be a decimal integer, got '010'");
}

TEST_F(Cli, CompareWritesMatchingCsvJsonAndTable) {
  const std::string out_dir = scratch_ / "compare";
  const RunResult result = run({"compare", "--epochs", "2", "--data-dir", data_dir(), "--validation", "100",
                                "--train-limit", "160", "--test-limit", "100", "--out", out_dir});
  ASSERT_EQ(result.status, 0) << result.out << result.err;
  for (const std::string model : {"=== baseline ===", "=== bn ===", "=== bn-before-activation ==="})
    EXPECT_TRUE(Contains(result.out, model));
  EXPECT_TRUE(Contains(result.out, "Total params: 266,610"));
  EXPECT_TRUE(Contains(result.out, "Total params: 271,346"));
  EXPECT_TRUE(Contains(result.out, "Epoch 2/2\n5/5 - "));
  // The table sets the seed's Keras numbers beside this run's.
  EXPECT_TRUE(Contains(result.out, "0.7160  0.7656"));
  EXPECT_TRUE(Contains(result.out, "0.8162  0.8378"));
  EXPECT_TRUE(Contains(result.out, "(the seed printed no numbers for this model)"));

  // CSV: header, then one row per model and epoch, in the order run.
  const auto lines = split(read_text(std::filesystem::path(out_dir) / "history.csv"), '\n');
  ASSERT_EQ(lines.size(), 1u + 6u + 1u);  // header, 3 models x 2 epochs, the final newline
  EXPECT_EQ(lines[0], "model,epoch,loss,accuracy,val_loss,val_accuracy,seconds");
  EXPECT_EQ(lines.back(), "");
  const std::vector<std::string> models = {"baseline", "bn", "bn-before-activation"};
  std::vector<std::vector<double>> csv_numbers;
  for (std::size_t row = 0; row < 6; ++row) {
    const auto cells = split(lines[row + 1], ',');
    ASSERT_EQ(cells.size(), 7u) << lines[row + 1];
    EXPECT_EQ(cells[0], models[row / 2]);
    EXPECT_EQ(cells[1], std::to_string(row % 2 + 1));
    std::vector<double> numbers;
    for (std::size_t c = 2; c < 7; ++c) {
      std::size_t used = 0;
      numbers.push_back(std::stod(cells[c], &used));
      EXPECT_EQ(used, cells[c].size()) << cells[c];
      EXPECT_TRUE(std::isfinite(numbers.back()));
    }
    EXPECT_GE(numbers[1], 0.0);  // accuracy
    EXPECT_LE(numbers[1], 1.0);
    EXPECT_GE(numbers[3], 0.0);  // val_accuracy
    EXPECT_LE(numbers[3], 1.0);
    EXPECT_GT(numbers[4], 0.0);  // seconds
    csv_numbers.push_back(numbers);
  }

  // JSON: valid, versioned, and the same numbers as the CSV (both are exact decimal forms).
  const Json json = parse_json(read_text(std::filesystem::path(out_dir) / "history.json"));
  EXPECT_EQ(json.at("format").string, "bnlab-compare");
  EXPECT_EQ(json.at("version").number, 1);
  EXPECT_EQ(json.at("settings").at("epochs").number, 2);
  EXPECT_EQ(json.at("settings").at("learning_rate").number, 0.001);
  EXPECT_EQ(json.at("settings").at("batch_size").number, 32);
  EXPECT_EQ(json.at("settings").at("optimizer").string, "sgd");
  EXPECT_EQ(json.at("settings").at("train_samples").number, 160);
  EXPECT_EQ(json.at("settings").at("validation_samples").number, 100);
  EXPECT_EQ(json.at("settings").at("test_samples").number, 100);
  const Json& runs = json.at("models");
  ASSERT_EQ(runs.array.size(), 3u);
  for (std::size_t m = 0; m < 3; ++m) {
    EXPECT_EQ(runs[m].at("model").string, models[m]);
    EXPECT_EQ(runs[m].at("stopped").kind, Json::Kind::null);
    const double test_accuracy = runs[m].at("test_accuracy").number;
    EXPECT_GE(test_accuracy, 0.0);
    EXPECT_LE(test_accuracy, 1.0);
    ASSERT_EQ(runs[m].at("epochs").array.size(), 2u);
    for (std::size_t e = 0; e < 2; ++e) {
      const Json& epoch = runs[m].at("epochs")[e];
      const auto& expected = csv_numbers[m * 2 + e];
      EXPECT_EQ(epoch.at("epoch").number, static_cast<double>(e + 1));
      EXPECT_EQ(epoch.at("loss").number, expected[0]);
      EXPECT_EQ(epoch.at("accuracy").number, expected[1]);
      EXPECT_EQ(epoch.at("val_loss").number, expected[2]);
      EXPECT_EQ(epoch.at("val_accuracy").number, expected[3]);
      EXPECT_EQ(epoch.at("seconds").number, expected[4]);
    }
  }
  EXPECT_EQ(runs[1].at("non_trainable_parameters").number, 2368);
  EXPECT_EQ(json.at("published")[0].at("val_accuracy")[0].number, 0.7160);
  EXPECT_EQ(json.at("published")[1].at("val_accuracy")[8].number, 0.8676);

  EXPECT_TRUE(Contains(read_text(std::filesystem::path(out_dir) / "table.txt"), "0.8162  0.8378"));
  for (const auto& entry : std::filesystem::directory_iterator(out_dir))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
}

TEST_F(Cli, CompareRunsTheChosenModelsInTheGivenOrder) {
  const std::string out_dir = scratch_ / "subset";
  const RunResult result =
      run({"compare", "--models", "bn-before-activation,baseline", "--epochs", "1", "--data-dir", data_dir(),
           "--validation", "0", "--train-limit", "64", "--test-limit", "32", "--out", out_dir});
  ASSERT_EQ(result.status, 0) << result.out << result.err;
  EXPECT_TRUE(Lacks(result.out, "=== bn ==="));
  EXPECT_LT(result.out.find("=== bn-before-activation ==="), result.out.find("=== baseline ==="));
  // Without a validation set the val_ cells are empty, not zero.
  const auto lines = split(read_text(std::filesystem::path(out_dir) / "history.csv"), '\n');
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[1].rfind("bn-before-activation,1,", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("baseline,1,", 0), 0u) << lines[2];
  EXPECT_EQ(split(lines[1], ',')[4], "");
  EXPECT_EQ(split(lines[1], ',')[5], "");
  const Json json = parse_json(read_text(std::filesystem::path(out_dir) / "history.json"));
  EXPECT_EQ(json.at("models")[0].at("epochs")[0].at("val_accuracy").kind, Json::Kind::null);
}

TEST_F(Cli, CompareRefusesAnOutputPathItCannotCreate) {
  const std::string file = scratch_ / "a-file";
  {
    std::ofstream out(file);
    out << "x";
  }
  expect_refused({"compare", "--data-dir", data_dir(), "--validation", "100", "--out", file + "/sub"},
                 "output directory '" + file + "/sub' cannot be created");
}

}  // namespace
}  // namespace bnlab::cli::testing
