#pragma once
// Training checkpoints for `bnlab train --checkpoint-dir D [--resume]`: after every epoch the
// whole training state goes into one file, D/checkpoint.bnck, written atomically (temporary
// file in D, fsync, rename, fsync of D), so D always holds the last complete checkpoint and a
// crash at any moment (SIGKILL, power loss) loses at most the epoch in progress.
//
// What a checkpoint holds, and why that is enough to go on bit for bit: the model file (every
// parameter, BatchNormalization's moving statistics, the optimizer's slots and iteration count:
// docs/formats.md, "Model files"), the number of completed epochs, the history so far, and the
// settings the run was started with. The only other state of a seed 003 run is the shuffle
// order, which fit() started at the checkpoint's epoch (FitOptions::initial_epoch) derives from
// (seed, epoch) alone (FitOptions::seed), so no generator state
// needs saving; the seed models have no dropout. The format ("BNCK", version 2; version 1
// still loads) is in docs/formats.md.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "bnlab/experiments/training.hpp"
#include "bnlab/model.hpp"

namespace bnlab::experiments {

inline constexpr std::string_view checkpoint_file_name = "checkpoint.bnck";

// The settings of the run that wrote a checkpoint: a resumed run must repeat them (all but the
// epoch count, which may grow) to continue the same training.
struct CheckpointSettings {
  std::string model;  // a seed model name ("bn", ...)
  TrainingOptions training;
  std::int64_t validation = 0;
  std::int64_t train_limit = 0;
  // CRC-32 of the training images and labels (training_data_crc): a resumed run must train on
  // the same data. 0: not known (checkpoints of format version 1), and then not compared.
  std::uint32_t data_crc = 0;
};

// The CRC-32 of a training set's image values and labels as they are fed to fit (after the
// validation split and any limit). Never 0, so that 0 can mean "not known".
std::uint32_t training_data_crc(const data::Dataset& train);

struct Checkpoint {
  CheckpointSettings settings;
  int completed_epochs = 0;
  History history;   // one entry per completed epoch
  Sequential model;  // compiled, with the optimizer's state after completed_epochs epochs
};

std::filesystem::path checkpoint_path(const std::filesystem::path& directory);

// The file's bytes. REQUIRES: model is compiled; history has completed_epochs entries.
std::string checkpoint_to_bytes(const CheckpointSettings& settings, int completed_epochs, const History& history,
                                const Sequential& model);
// Writes checkpoint_path(directory) atomically (the directory must exist); on failure the
// previous checkpoint is left as it was and std::runtime_error names the file and the step.
void save_checkpoint(const std::filesystem::path& directory, const CheckpointSettings& settings, int completed_epochs,
                     const History& history, const Sequential& model);

// Parses checkpoint bytes; name stands for the file in messages. Every problem (truncation, bad
// magic or version, checksum, a count the bytes cannot hold, a broken embedded model) throws
// std::runtime_error starting "checkpoint '<name>': ".
Checkpoint checkpoint_from_bytes(std::string_view bytes, const std::string& name);
// Reads checkpoint_path(directory); a missing or unreadable file is a std::runtime_error too.
Checkpoint load_checkpoint(const std::filesystem::path& directory);

// Removes the temporaries (checkpoint.bnck.tmp.XXXXXX) a run killed in the middle of a save
// leaves behind; returns how many. When checkpoint.bnck is a symbolic link, the saves replaced
// its target, so the target's temporaries (TARGET.tmp.XXXXXX beside it) go too. Only these
// names are touched.
int remove_stale_checkpoint_temporaries(const std::filesystem::path& directory);

// Throws std::invalid_argument naming the first setting in which `wanted` differs from the
// checkpoint's (as the CLI flag, e.g. "--lr"), when wanted.training.epochs is below the epochs
// the checkpoint has already completed, or when the embedded model is not what the settings
// make (another architecture, another optimizer or its hyperparameters: a forged or mixed-up
// file, since bnlab writes the two together).
void check_resume_settings(const Checkpoint& checkpoint, const CheckpointSettings& wanted,
                           const std::filesystem::path& directory);

}  // namespace bnlab::experiments
