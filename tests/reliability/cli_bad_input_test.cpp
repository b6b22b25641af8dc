// Bad input to `bnlab` beyond what tests/cli/cli_test.cpp covers: the checkpoint flags, output
// paths that exist on paper but take no files (/proc; root passes every access() check), and
// data files that are there but broken. Each is refused with "bnlab: error: ...", exit status
// 2, before any training, and leaves no file behind.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "bnlab/layers/dense.hpp"
#include "bnlab/model.hpp"
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

// A FIFO blocks a read until a writer comes, and an atomic write renames a file over whatever
// is at the path (as root: /dev/null). Only regular files are read or replaced; a symbolic link
// is followed and stays a link.
TEST_F(BadInput, OnlyRegularFilesAreReadOrReplaced) {
  const fs::path fifo = scratch_.path() / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  expect_refused(train({"--save", fifo.string()}),
                 "--save path '" + fifo.string() + "' is a FIFO, not a regular file; refusing to replace it");
  EXPECT_TRUE(fs::is_fifo(fifo));
  expect_refused({"evaluate", "--load", fifo.string(), "--data-dir", data_.string()},
                 "load '" + fifo.string() + "': is a FIFO, expected a regular file");
  expect_refused({"evaluate", "--load", scratch_.path().string(), "--data-dir", data_.string()},
                 "load '" + scratch_.path().string() + "': is a directory, expected a regular file");
  const fs::path dangling = scratch_.path() / "dangling";
  fs::create_symlink(scratch_.path() / "missing", dangling);
  expect_refused(train({"--save", dangling.string()}),
                 "--save path '" + dangling.string() + "' is a symbolic link to nothing");
  const fs::path labels = data_ / "t10k-labels-idx1-ubyte";
  fs::remove(labels);
  ASSERT_EQ(::mkfifo(labels.c_str(), 0644), 0);
  expect_refused(train({}), labels.string() + ": is a FIFO, expected a regular file");
}

TEST_F(BadInput, ASaveThroughASymbolicLinkReplacesItsTarget) {
  // An absolute link, and a relative one (resolved against the link's own directory).
  const fs::path target = scratch_.path() / "model.bnlb";
  const fs::path absolute = scratch_.path() / "absolute.bnlb", relative = scratch_.path() / "relative.bnlb";
  fs::create_symlink(target, absolute);
  fs::create_symlink("model.bnlb", relative);
  for (const fs::path& link : {absolute, relative}) {
    SCOPED_TRACE(link.string());
    std::ofstream(target) << "old";
    const RunResult result = run_bnlab(train({"--save", link.string()}), scratch_.path());
    ASSERT_EQ(result.status, 0) << result.err;
    EXPECT_TRUE(fs::is_symlink(link));
    EXPECT_NE(read_text(target), "old");
    EXPECT_EQ(run_bnlab({"evaluate", "--load", link.string(), "--data-dir", data_.string()}, scratch_.path()).status,
              0);
  }
}

// The library's own save and load, not only the CLI's checks before them.
TEST_F(BadInput, SaveAndLoadRefuseAFifoThemselves) {
  const fs::path fifo = scratch_.path() / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  Sequential model;
  model.add(std::make_unique<Dense>(2, "softmax"));
  model.build({3}, 1);
  try {
    model.save(fifo.string());
    FAIL() << "save replaced a FIFO";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("save '" + fifo.string() + "': is a FIFO, not a regular file"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(fs::is_fifo(fifo));
  try {
    Sequential::load(fifo.string());
    FAIL() << "load read a FIFO";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("load '" + fifo.string() + "': is a FIFO, expected a regular file"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(BadInput, SavePathsThatCannotHoldTheModel) {
  const fs::path checkpoints = scratch_.path() / "checkpoints";
  fs::create_directories(checkpoints);
  expect_refused(
      train({"--checkpoint-dir", checkpoints.string(), "--save", (checkpoints / "checkpoint.bnck").string()}),
      "is the checkpoint file of --checkpoint-dir");
  const fs::path file = scratch_.path() / "a-file";
  std::ofstream(file) << "x";
  expect_refused(train({"--save", (file / "model.bnlb").string()}), "'" + file.string() + "' is not a directory");
}

// Sets an environment variable for the bnlab runs of one scope, then puts back what was there.
class ScopedEnvironment {
 public:
  // value nullptr: unset for the scope.
  ScopedEnvironment(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnvironment() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnvironment(const ScopedEnvironment&) = delete;
  ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The environment's thread counts take the same spelling and limit as --threads.
TEST_F(BadInput, ThreadCounts) {
  expect_refused({"--threads", "0", "summary", "--model", "bn"}, "--threads: Value 0 not in range 1 to 1024");
  expect_refused({"--threads", "many", "summary", "--model", "bn"}, "--threads");
  for (const char* value : {"+2", " 2", "02", "1025"}) {
    const ScopedEnvironment threads("BNLAB_THREADS", value);
    expect_refused({"summary", "--model", "bn"},
                   std::string("BNLAB_THREADS: must be an integer in [1, 1024], got '") + value + "'");
  }
  // libgomp crashed in the first parallel region with 99999.
  const ScopedEnvironment no_bnlab_threads("BNLAB_THREADS", nullptr);
  const ScopedEnvironment threads("OMP_NUM_THREADS", "99999");
  expect_refused({"summary", "--model", "bn"}, "OMP_NUM_THREADS: gives 99999 threads, more than 1024");
  EXPECT_EQ(run_bnlab({"--threads", "2", "summary", "--model", "bn"}, scratch_.path()).status, 0);
}

}  // namespace
}  // namespace bnlab::reliability
