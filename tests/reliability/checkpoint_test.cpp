// `bnlab train --checkpoint-dir D [--resume]` end to end: training killed with SIGKILL at seeded
// random moments and resumed ends with the same weights, optimizer state and history, bit for
// bit, as a run that was never interrupted; a diverging run stops at once, naming the epoch and
// the step, and leaves the last good checkpoint as it was; the checkpoint file refuses
// corruption with the file's name.

#include "bnlab/experiments/checkpoint.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "bnlab/layers/layers.hpp"
#include "bnlab/models.hpp"
#include "reliability/reliability_support.hpp"

namespace bnlab::reliability {
namespace {

namespace fs = std::filesystem;
using cli::testing::run_bnlab;
using cli::testing::TempDir;
using cli::testing::write_synthetic_part;

constexpr int epochs = 6;

class Checkpoints : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = scratch_.path() / "data";
    fs::create_directories(data_);
    // 1,300 training images (100 of them validation) make an epoch long enough to be hit by a
    // kill, yet the whole run stays at a few seconds.
    write_synthetic_part(data_, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 1300, 1);
    write_synthetic_part(data_, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 100, 2);
  }

  std::vector<std::string> train_args(const std::string& checkpoint_dir, const std::string& save_path,
                                      int run_epochs = epochs, const std::string& lr = "0.05",
                                      const std::string& model = "bn", const fs::path& data = {}) const {
    return {"train",
            "--model",
            model,
            "--epochs",
            std::to_string(run_epochs),
            "--lr",
            lr,
            "--optimizer",
            "sgd",
            "--momentum",
            "0.9",
            "--seed",
            "11",
            "--data-dir",
            (data.empty() ? data_ : data).string(),
            "--validation",
            "100",
            "--checkpoint-dir",
            checkpoint_dir,
            "--save",
            save_path};
  }

  RunResult run(const std::vector<std::string>& args) { return run_bnlab(args, scratch_.path()); }

  TempDir scratch_;
  fs::path data_;
};

void expect_same_history(const History& a, const History& b) {
  // Exact equality of doubles: a resumed run must reproduce the same bits, not nearly them.
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.accuracy, b.accuracy);
  EXPECT_EQ(a.val_loss, b.val_loss);
  EXPECT_EQ(a.val_accuracy, b.val_accuracy);
  EXPECT_EQ(a.seconds.size(), b.seconds.size());
}

TEST_F(Checkpoints, KilledAtRandomMomentsAndResumedEqualsAnUninterruptedRun) {
  // The uninterrupted reference, with the time its epochs take.
  const std::string reference_dir = scratch_ / "reference";
  const std::string reference_model = scratch_ / "reference.bnlb";
  const auto start = std::chrono::steady_clock::now();
  const RunResult reference = run(train_args(reference_dir, reference_model));
  const double reference_seconds = seconds_since(start);
  ASSERT_EQ(reference.status, 0) << reference.out << reference.err;
  const experiments::Checkpoint final_reference = experiments::load_checkpoint(reference_dir);
  ASSERT_EQ(final_reference.completed_epochs, epochs);
  ASSERT_EQ(final_reference.history.epochs(), static_cast<std::size_t>(epochs));
  const std::string reference_bytes = read_text(reference_model);
  ASSERT_FALSE(reference_bytes.empty());

  std::mt19937_64 rng(20240601);  // the kill moments are random, but the same in every run
  int killed_mid_training = 0;
  constexpr int trials = 4;
  for (int trial = 0; trial < trials; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const std::string dir = scratch_ / ("run" + std::to_string(trial));
    const std::string model_path = scratch_ / ("run" + std::to_string(trial) + ".bnlb");
    int completed_at_kill = -1;
    {
      Process process(train_args(dir, model_path), scratch_.path());
      const auto launched = std::chrono::steady_clock::now();
      if (trial == 0) {
        // Anywhere in the first part of the run: start-up, data loading or the first epochs.
        std::uniform_real_distribution<double> delay(0.0, 0.5 * reference_seconds);
        std::this_thread::sleep_for(std::chrono::duration<double>(delay(rng)));
      } else {
        // After a random number of completed epochs, a random fraction into the next one: this
        // lands mid-training whatever the machine's speed.
        // The delay is a fraction of this run's own epoch time (measured up to the checkpoint),
        // not the reference's: under load both slow down together. Trial 1 kills at once, so at
        // least one kill surely lands between checkpoints whatever the machine is doing.
        const int after = std::uniform_int_distribution<int>(1, epochs - 2)(rng);
        const double fraction = trial == 1 ? 0.0 : std::uniform_real_distribution<double>(0.0, 0.9)(rng);
        while (process.running() && seconds_since(launched) < 120) {
          std::error_code ec;
          if (fs::exists(experiments::checkpoint_path(dir), ec) &&
              experiments::load_checkpoint(dir).completed_epochs >= after)
            break;
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        const double this_run_epoch_seconds = seconds_since(launched) / after;
        std::this_thread::sleep_for(std::chrono::duration<double>(fraction * this_run_epoch_seconds));
      }
      const bool killed = process.kill();
      std::error_code ec;
      if (fs::exists(experiments::checkpoint_path(dir), ec))
        completed_at_kill = experiments::load_checkpoint(dir).completed_epochs;
      if (killed && completed_at_kill > 0 && completed_at_kill < epochs) ++killed_mid_training;
    }
    SCOPED_TRACE("checkpoint at the kill: " + std::to_string(completed_at_kill) + " epochs");

    std::vector<std::string> resume = train_args(dir, model_path);
    resume.push_back("--resume");
    const RunResult resumed = run(resume);
    ASSERT_EQ(resumed.status, 0) << resumed.out << resumed.err;
    if (completed_at_kill > 0) {
      EXPECT_NE(resumed.out.find("Resuming from the checkpoint in " + dir + " after epoch " +
                                 std::to_string(completed_at_kill)),
                std::string::npos)
          << resumed.out;
      // It trained on from there: a run that printed the line and then started over would end
      // with the same bits (training is deterministic), but its log would begin at epoch 1.
      if (completed_at_kill < epochs) {
        std::smatch first_epoch;
        ASSERT_TRUE(std::regex_search(resumed.out, first_epoch, std::regex("Epoch (\\d+)/" + std::to_string(epochs))))
            << resumed.out;
        EXPECT_EQ(first_epoch[1].str(), std::to_string(completed_at_kill + 1)) << resumed.out;
      }
    }
    const experiments::Checkpoint final_resumed = experiments::load_checkpoint(dir);
    EXPECT_EQ(final_resumed.completed_epochs, epochs);
    expect_same_history(final_resumed.history, final_reference.history);
    EXPECT_TRUE(read_text(model_path) == reference_bytes) << "the resumed model file differs from the reference";
    EXPECT_TRUE(final_resumed.model.to_bytes() == final_reference.model.to_bytes());
    EXPECT_TRUE(temporaries(dir).empty());
  }
  // The point of the test: at least one kill interrupted a run that had checkpoints to resume.
  EXPECT_GE(killed_mid_training, 1);
}

TEST_F(Checkpoints, ResumingWithoutACheckpointStartsFromTheFirstEpoch) {
  const std::string dir = scratch_ / "fresh";
  std::vector<std::string> args = train_args(dir, scratch_ / "fresh.bnlb", 1);
  args.push_back("--resume");
  const RunResult result = run(args);
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_NE(result.out.find("No checkpoint in " + dir + " yet; starting from epoch 1"), std::string::npos);
  EXPECT_EQ(experiments::load_checkpoint(dir).completed_epochs, 1);
}

TEST_F(Checkpoints, ADivergingRunStopsAtOnceAndKeepsTheLastGoodCheckpoint) {
  // The first learning rate (of a rising series) at which the baseline model (no BatchNorm)
  // diverges after at least one completed epoch: the run must stop within the epoch that
  // diverged, and the checkpoint of the epoch before must survive as it was. Noise data keeps
  // the gradients large, so divergence comes after a few epochs rather than at once.
  const fs::path noise = scratch_.path() / "noise";
  write_noise_fashion_mnist(noise, 1300);
  const std::regex stopped(R"(training stopped in epoch (\d+) at step (\d+): the loss became (-?nan|-?inf))");
  bool saw_divergence = false;
  for (const std::string lr : {"0.05", "0.06", "0.07", "0.08", "0.09", "0.1", "0.15", "0.2", "0.3"}) {
    SCOPED_TRACE("--lr " + lr);
    const std::string dir = scratch_ / ("diverge-" + lr);
    const std::string model_path = scratch_ / ("diverge-" + lr + ".bnlb");
    const RunResult result = run(train_args(dir, model_path, epochs, lr, "baseline", noise));
    if (result.status == 0) continue;  // did not diverge within the run
    saw_divergence = true;
    EXPECT_EQ(result.status, 2);
    std::smatch match;
    ASSERT_TRUE(std::regex_search(result.err, match, stopped)) << result.err;
    EXPECT_EQ(result.err.rfind("bnlab: error: ", 0), 0u) << result.err;
    EXPECT_FALSE(fs::exists(model_path)) << "a diverged model must not be saved";
    EXPECT_TRUE(temporaries(dir).empty());
    const int stopped_epoch = std::stoi(match[1].str());
    // Stopped at once: no epoch after the diverging one was started.
    EXPECT_EQ(result.out.find("Epoch " + std::to_string(stopped_epoch + 1) + "/"), std::string::npos) << result.out;
    if (stopped_epoch == 1) {
      EXPECT_FALSE(fs::exists(experiments::checkpoint_path(dir))) << "no epoch completed, so no checkpoint";
      continue;
    }
    EXPECT_NE(result.err.find("the checkpoint in " + dir + " (after epoch " + std::to_string(stopped_epoch - 1) +
                              ") is unchanged"),
              std::string::npos)
        << result.err;
    // The checkpoint is the one of a run that stopped cleanly after the last good epoch.
    const experiments::Checkpoint kept = experiments::load_checkpoint(dir);
    ASSERT_EQ(kept.completed_epochs, stopped_epoch - 1);
    const std::string clean_dir = scratch_ / ("clean-" + lr);
    const RunResult clean =
        run(train_args(clean_dir, scratch_ / ("clean-" + lr + ".bnlb"), stopped_epoch - 1, lr, "baseline", noise));
    ASSERT_EQ(clean.status, 0) << clean.err;
    const experiments::Checkpoint expected = experiments::load_checkpoint(clean_dir);
    expect_same_history(kept.history, expected.history);
    EXPECT_TRUE(kept.model.to_bytes() == expected.model.to_bytes());
    return;
  }
  FAIL() << (saw_divergence ? "every diverging learning rate diverged in the first epoch"
                            : "no learning rate made the baseline diverge");
}

TEST_F(Checkpoints, RefusesToOverwriteOrResumeWithOtherSettings) {
  const std::string dir = scratch_ / "ckpt";
  const RunResult first = run(train_args(dir, scratch_ / "m.bnlb", 1));
  ASSERT_EQ(first.status, 0) << first.err;
  const std::string bytes = read_text(experiments::checkpoint_path(dir));

  const RunResult again = run(train_args(dir, scratch_ / "m.bnlb", 2));
  EXPECT_EQ(again.status, 2);
  EXPECT_NE(again.err.find("--checkpoint-dir '" + dir + "' already holds a checkpoint"), std::string::npos)
      << again.err;

  std::vector<std::string> other_lr = train_args(dir, scratch_ / "m.bnlb", 2, "0.1");
  other_lr.push_back("--resume");
  const RunResult lr = run(other_lr);
  EXPECT_EQ(lr.status, 2);
  EXPECT_NE(lr.err.find("was trained with --lr 0.05, this run asks for --lr 0.1"), std::string::npos) << lr.err;

  std::vector<std::string> other_model = train_args(dir, scratch_ / "m.bnlb", 2, "0.05", "baseline");
  other_model.push_back("--resume");
  const RunResult model = run(other_model);
  EXPECT_EQ(model.status, 2);
  EXPECT_NE(model.err.find("was trained with --model bn, this run asks for --model baseline"), std::string::npos)
      << model.err;

  // --epochs may grow on resume, not shrink (a forgotten flag would fall back to the default).
  const RunResult two = run(train_args(scratch_ / "ckpt2", scratch_ / "m2.bnlb", 2));
  ASSERT_EQ(two.status, 0) << two.err;
  std::vector<std::string> shrink = train_args(scratch_ / "ckpt2", scratch_ / "m2.bnlb", 1);
  shrink.push_back("--resume");
  const RunResult shrunk = run(shrink);
  EXPECT_EQ(shrunk.status, 2);
  EXPECT_NE(shrunk.err.find("belongs to a run of --epochs 2 (2 completed), this run asks for --epochs 1; --epochs "
                            "may grow on resume, not shrink"),
            std::string::npos)
      << shrunk.err;

  // Nothing the refused runs did touched the checkpoint.
  EXPECT_TRUE(read_text(experiments::checkpoint_path(dir)) == bytes);
}

// The checkpoint records a CRC-32 of the training data; a resume with another --data-dir (or
// changed files) would otherwise continue on other data without a word.
TEST_F(Checkpoints, RefusesToResumeOnOtherData) {
  const std::string dir = scratch_ / "ckpt";
  ASSERT_EQ(run(train_args(dir, scratch_ / "m.bnlb", 1)).status, 0);
  const fs::path other = scratch_.path() / "other-data";
  fs::create_directories(other);
  write_synthetic_part(other, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 1300, 3);
  write_synthetic_part(other, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 100, 2);
  std::vector<std::string> resume = train_args(dir, scratch_ / "m.bnlb", 2, "0.05", "bn", other);
  resume.push_back("--resume");
  const RunResult refused = run(resume);
  EXPECT_EQ(refused.status, 2);
  EXPECT_NE(refused.err.find("--resume: the checkpoint in '" + dir + "' was trained on other data"), std::string::npos)
      << refused.err;
  std::vector<std::string> same = train_args(dir, scratch_ / "m.bnlb", 2);
  same.push_back("--resume");
  EXPECT_EQ(run(same).status, 0);
}

TEST_F(Checkpoints, ACorruptCheckpointIsRefusedWithItsName) {
  const std::string dir = scratch_ / "ckpt";
  ASSERT_EQ(run(train_args(dir, scratch_ / "m.bnlb", 1)).status, 0);
  const fs::path path = experiments::checkpoint_path(dir);
  std::string bytes = read_text(path);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x01);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  std::vector<std::string> resume = train_args(dir, scratch_ / "m.bnlb", 2);
  resume.push_back("--resume");
  const RunResult result = run(resume);
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find("checkpoint '" + path.string() + "': checksum mismatch"), std::string::npos) << result.err;
}

// ---- the file format, in memory ------------------------------------------------------------

class CheckpointBytes : public ::testing::Test {
 protected:
  void SetUp() override {
    model_.add(std::make_unique<Dense>(3, "softmax"));
    model_.build({4}, 1);
    model_.compile(std::make_unique<Adam>(0.01));
    history_.loss = {1.5, 1.25};
    history_.accuracy = {0.5, 0.75};
    history_.seconds = {0.1, 0.2};
    settings_.model = "tiny";
    settings_.training.epochs = 5;
    settings_.validation = 0;
    bytes_ = experiments::checkpoint_to_bytes(settings_, 2, history_, model_);
  }
  std::string error_of(const std::string& bytes) {
    try {
      experiments::checkpoint_from_bytes(bytes, "ck.bnck");
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "(no error)";
  }
  Sequential model_;
  History history_;
  experiments::CheckpointSettings settings_;
  std::string bytes_;
};

// bnlab writes the settings and the model together; a file whose two disagree (forged, or put
// together from two runs) would continue another model, or another rate, under this run's banner.
TEST(CheckpointModel, MustBeWhatItsSettingsDescribe) {
  experiments::CheckpointSettings settings;
  settings.model = "bn";
  settings.training.epochs = 3;
  settings.training.learning_rate = 1e-3;
  History history;
  history.loss = {1.0};
  history.accuracy = {0.5};
  history.seconds = {0.1};
  auto resume_error_of = [&](Sequential model, double rate) {
    model.compile(std::make_unique<SGD>(rate));
    const auto checkpoint =
        experiments::checkpoint_from_bytes(experiments::checkpoint_to_bytes(settings, 1, history, model), "ck.bnck");
    try {
      experiments::check_resume_settings(checkpoint, settings, "ck");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  auto resume_error = [&](const std::string& model_name, double rate) {
    return resume_error_of(make_seed_model(model_name, settings.training.seed), rate);
  };
  // The same shapes and counts as "bn", with another activation in its first Dense layer.
  auto bn_with = [](const std::string& first_activation) {
    Sequential model;
    model.add(std::make_unique<Flatten>());
    model.add(std::make_unique<BatchNormalization>());
    model.add(std::make_unique<Dense>(300, first_activation));
    model.add(std::make_unique<BatchNormalization>());
    model.add(std::make_unique<Dense>(100, "relu"));
    model.add(std::make_unique<BatchNormalization>());
    model.add(std::make_unique<Dense>(10, "softmax"));
    model.build(seed_model_input_shape, 3);
    return model;
  };
  EXPECT_EQ(resume_error("bn", 1e-3), "(no error)");
  EXPECT_EQ(resume_error_of(bn_with("relu"), 1e-3), "(no error)");
  EXPECT_NE(resume_error_of(bn_with("sigmoid"), 1e-3).find("is not the 'bn' model"), std::string::npos);
  EXPECT_NE(resume_error("baseline", 1e-3).find("the model in the checkpoint in 'ck' is not the 'bn' model"),
            std::string::npos);
  EXPECT_NE(resume_error("bn", 0.5).find("the optimizer in the checkpoint in 'ck' is SGD"), std::string::npos);
}

// A killed save leaves its temporary beside the file it was replacing: in the checkpoint
// directory, or beside the target when checkpoint.bnck is a symbolic link. Only the checkpoint's
// own temporaries go.
TEST(CheckpointTemporaries, StaleOnesAreRemovedBesideTheFileOrTheLinksTarget) {
  TempDir scratch;
  auto touch = [](const fs::path& path) { std::ofstream(path) << "partial"; };
  const fs::path plain = scratch.path() / "plain";
  fs::create_directories(plain);
  touch(plain / "checkpoint.bnck.tmp.a1b2c3");
  touch(plain / "checkpoint.bnck.tmp.a1b2c3d");  // not mkstemp's six characters
  touch(plain / "model.bnlab.tmp.a1b2c3");       // another file's temporary
  EXPECT_EQ(experiments::remove_stale_checkpoint_temporaries(plain), 1);
  EXPECT_FALSE(fs::exists(plain / "checkpoint.bnck.tmp.a1b2c3"));
  EXPECT_TRUE(fs::exists(plain / "checkpoint.bnck.tmp.a1b2c3d"));
  EXPECT_TRUE(fs::exists(plain / "model.bnlab.tmp.a1b2c3"));

  const fs::path elsewhere = scratch.path() / "elsewhere";
  const fs::path linked = scratch.path() / "linked";
  fs::create_directories(elsewhere);
  fs::create_directories(linked);
  touch(elsewhere / "run.bnck");
  touch(elsewhere / "run.bnck.tmp.XyZ123");
  touch(elsewhere / "checkpoint.bnck.tmp.XyZ123");  // not what the link's saves would leave
  fs::create_symlink("../elsewhere/run.bnck", linked / "checkpoint.bnck");
  touch(linked / "checkpoint.bnck.tmp.Qw3rty");
  EXPECT_EQ(experiments::remove_stale_checkpoint_temporaries(linked), 2);
  EXPECT_FALSE(fs::exists(elsewhere / "run.bnck.tmp.XyZ123"));
  EXPECT_FALSE(fs::exists(linked / "checkpoint.bnck.tmp.Qw3rty"));
  EXPECT_TRUE(fs::exists(elsewhere / "run.bnck"));
  EXPECT_TRUE(fs::exists(elsewhere / "checkpoint.bnck.tmp.XyZ123"));
  EXPECT_TRUE(fs::is_symlink(linked / "checkpoint.bnck"));
}

TEST_F(CheckpointBytes, RoundTrip) {
  const experiments::Checkpoint c = experiments::checkpoint_from_bytes(bytes_, "ck.bnck");
  EXPECT_EQ(c.settings.model, "tiny");
  EXPECT_EQ(c.settings.training.epochs, 5);
  EXPECT_EQ(c.completed_epochs, 2);
  EXPECT_EQ(c.history.loss, history_.loss);
  EXPECT_EQ(c.history.accuracy, history_.accuracy);
  EXPECT_TRUE(c.history.val_loss.empty());
  EXPECT_TRUE(c.model.to_bytes() == model_.to_bytes());
}

// Version 1 had no data CRC: such files still load, with data_crc 0 (not compared on resume).
TEST_F(CheckpointBytes, AVersionOneFileStillLoads) {
  settings_.data_crc = 0x12345678;
  std::string v2 = experiments::checkpoint_to_bytes(settings_, 2, history_, model_);
  EXPECT_EQ(experiments::checkpoint_from_bytes(v2, "ck.bnck").settings.data_crc, 0x12345678u);
  const std::size_t crc_at = 16 + (8 + settings_.model.size()) + 24 + (8 + settings_.training.optimizer.size()) + 32;
  std::string v1 = v2.substr(0, crc_at) + v2.substr(crc_at + 4, v2.size() - crc_at - 8);
  v1[4] = 1;
  const std::uint64_t payload = v1.size() - 16;
  for (int i = 0; i < 8; ++i) v1[8 + i] = static_cast<char>(payload >> (8 * i));
  const auto crc =
      static_cast<std::uint32_t>(::crc32(0L, reinterpret_cast<const Bytef*>(v1.data()), static_cast<uInt>(v1.size())));
  for (int i = 0; i < 4; ++i) v1.push_back(static_cast<char>(crc >> (8 * i)));
  const experiments::Checkpoint c = experiments::checkpoint_from_bytes(v1, "ck.bnck");
  EXPECT_EQ(c.settings.data_crc, 0u);
  EXPECT_EQ(c.completed_epochs, 2);
  EXPECT_TRUE(c.model.to_bytes() == model_.to_bytes());
  v1[4] = 3;
  EXPECT_NE(error_of(v1).find("unsupported version 3"), std::string::npos);
}

// The writer holds itself to the reader's rule: no checkpoint is written that cannot be read back.
TEST_F(CheckpointBytes, AHistoryWithAShortColumnIsNotWritten) {
  History short_validation = history_;
  short_validation.val_loss = {0.5};
  short_validation.val_accuracy = {0.5};
  EXPECT_THROW(experiments::checkpoint_to_bytes(settings_, 2, short_validation, model_), std::invalid_argument);
  History short_seconds = history_;
  short_seconds.seconds.pop_back();
  EXPECT_THROW(experiments::checkpoint_to_bytes(settings_, 2, short_seconds, model_), std::invalid_argument);
}

TEST_F(CheckpointBytes, RefusesTruncationMagicChecksumAndSize) {
  for (std::size_t size : {std::size_t{0}, std::size_t{10}, std::size_t{40}, bytes_.size() - 1}) {
    const std::string message = error_of(bytes_.substr(0, size));
    EXPECT_EQ(message.rfind("checkpoint 'ck.bnck': ", 0), 0u) << message;
  }
  EXPECT_NE(error_of("BNLB" + bytes_.substr(4)).find("bad magic"), std::string::npos);
  std::string flipped = bytes_;
  flipped[30] = static_cast<char>(flipped[30] ^ 4);
  EXPECT_NE(error_of(flipped).find("checksum mismatch"), std::string::npos);
  EXPECT_NE(error_of(bytes_ + "x").find("does not match"), std::string::npos);
}

}  // namespace
}  // namespace bnlab::reliability
