// Bad input to `bnlab` beyond what tests/cli/cli_test.cpp covers: the checkpoint flags, output
// paths that exist on paper but take no files (/proc; root passes every access() check), and
// data files that are there but broken. Each is refused with "bnlab: error: ...", exit status
// 2, before any training, and leaves no file behind.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "reliability/reliability_support.hpp"

namespace bnlab::reliability {
namespace {

namespace fs = std::filesystem;
using cli::testing::run_bnlab;
using cli::testing::TempDir;

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override { cli::testing::write_synthetic_fashion_mnist(data_); }

  // Refused before training, with the message, and nothing under /proc or scratch named `leftover`.
  void expect_refused(std::vector<std::string> args, const std::string& message) {
    const RunResult result = run_bnlab(args, scratch_.path());
    std::string joined;
    for (const auto& arg : args) joined += arg + " ";
    EXPECT_EQ(result.status, 2) << joined << "\n" << result.out << result.err;
    EXPECT_EQ(result.err.rfind("bnlab: error: ", 0), 0u) << joined << "\n" << result.err;
    EXPECT_NE(result.err.find(message), std::string::npos) << joined << "\nexpected: " << message << "\n" << result.err;
    EXPECT_EQ(result.out.find("Epoch 1/"), std::string::npos) << joined << ": refused only after training started";
  }

  std::vector<std::string> train(std::vector<std::string> more) const {
    std::vector<std::string> args{"train",      "--model",      "baseline",     "--epochs", "1",
                                  "--data-dir", data_.string(), "--validation", "100"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  TempDir scratch_;
  fs::path data_ = scratch_.path() / "data";
};

bool proc_has(const std::string& part) {
  for (const auto& entry : fs::directory_iterator("/proc"))
    if (entry.path().filename().string().find(part) != std::string::npos) return true;
  return false;
}

TEST_F(BadInput, CheckpointFlags) {
  expect_refused(train({"--resume"}), "--resume needs --checkpoint-dir");
  const std::string file = scratch_ / "a-file";
  std::ofstream(file) << "x";
  expect_refused(train({"--checkpoint-dir", file}),
                 "--checkpoint-dir '" + file + "' cannot be created: Not a directory");
  expect_refused(train({"--checkpoint-dir", "/proc/bnlab-reliability-ckpt"}),
                 "--checkpoint-dir '/proc/bnlab-reliability-ckpt' cannot be created");
  EXPECT_FALSE(proc_has("bnlab-reliability"));
  expect_refused(train({"--checkpoint-dir", ""}), "--checkpoint-dir: the path is empty");
}

TEST_F(BadInput, OutputPathsThatTakeNoFilesAreRefusedBeforeTraining) {
  // /proc passes access(W_OK) for root; only creating a file tells.
  expect_refused(train({"--save", "/proc/bnlab-reliability-model"}),
                 "--save path '/proc/bnlab-reliability-model': the directory '/proc' is not writable");
  expect_refused({"compare", "--data-dir", data_.string(), "--validation", "100", "--epochs", "1", "--out",
                  "/proc/bnlab-reliability-out"},
                 "output directory '/proc/bnlab-reliability-out' cannot be created");
  EXPECT_FALSE(proc_has("bnlab-reliability"));
  for (const auto& entry : fs::directory_iterator(scratch_.path()))
    EXPECT_EQ(entry.path().filename().string().find(".bnlab-probe."), std::string::npos) << entry.path();
}

TEST_F(BadInput, BrokenDataFilesNameTheFileAndTheProblem) {
  const fs::path images = data_ / "train-images-idx3-ubyte";
  const std::string good = read_text(images);
  std::ofstream(images, std::ios::trunc).flush();  // empty
  expect_refused(train({}), images.string() + ": too short for an IDX header: 0 bytes, need at least 4");
  std::ofstream(images, std::ios::binary | std::ios::trunc) << good.substr(0, good.size() - 100);
  expect_refused(train({}), images.string() + ": truncated: expected 548800 bytes of data, found 548700");
  std::ofstream(images, std::ios::binary | std::ios::trunc) << "\x1f\x8b\x08\x00garbage";
  expect_refused(train({}), images.string() + ": corrupt gzip stream");
  fs::remove(images);
  fs::create_directories(images);  // a directory where the file should be
  expect_refused(train({}), "train-images-idx3-ubyte");
}

TEST_F(BadInput, ThreadCounts) {
  expect_refused({"--threads", "0", "summary", "--model", "bn"}, "--threads: Value 0 not in range 1 to 1024");
  expect_refused({"--threads", "many", "summary", "--model", "bn"}, "--threads");
}

}  // namespace
}  // namespace bnlab::reliability
