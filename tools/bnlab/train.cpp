// bnlab train: one seed 003 model on Fashion-MNIST with Keras-style logs, then the test set;
// optionally saved (atomically) for `bnlab evaluate`, optionally checkpointed after every epoch
// and resumed from the last checkpoint (--checkpoint-dir, --resume).

#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>

#include "bnlab/experiments/checkpoint.hpp"
#include "bnlab/experiments/output_files.hpp"
#include "bnlab/experiments/training.hpp"
#include "bnlab/models.hpp"
#include "bnlab/system.hpp"
#include "command.hpp"
#include "options.hpp"

namespace bnlab::cli {
namespace {

struct TrainArguments {
  std::string model;
  experiments::TrainingOptions training;
  experiments::DataOptions data;
  std::string save_path;
  std::string checkpoint_dir;
  bool resume = false;
};

void run_train(const TrainArguments& args) {
  // Every check that can fail before training does, so a bad --save path costs no training time.
  experiments::check_training_options(args.training);
  experiments::check_data_options(args.data);
  if (!args.save_path.empty()) experiments::check_file_destination(args.save_path, "--save path");
  if (args.resume && args.checkpoint_dir.empty()) throw std::invalid_argument("--resume needs --checkpoint-dir");
  if (!args.checkpoint_dir.empty()) {
    const auto checkpoint = experiments::checkpoint_path(args.checkpoint_dir);
    std::error_code ec;
    if (std::filesystem::is_directory(args.checkpoint_dir, ec))
      experiments::check_file_destination(checkpoint, "--checkpoint-dir's checkpoint");
    std::error_code save_ec, checkpoint_ec;
    const auto save_file = std::filesystem::weakly_canonical(args.save_path, save_ec);
    const auto checkpoint_file = std::filesystem::weakly_canonical(checkpoint, checkpoint_ec);
    if (!args.save_path.empty() && !save_ec && !checkpoint_ec && save_file == checkpoint_file)
      throw std::invalid_argument(fmt::format(
          "--save '{}' is the checkpoint file of --checkpoint-dir; the model would overwrite the checkpoint",
          args.save_path));
  }

  experiments::CheckpointSettings settings{args.model, args.training, args.data.validation, args.data.train_limit};
  Sequential model = make_seed_model(args.model, args.training.seed);
  experiments::TrainingContinuation continuation;
  std::optional<experiments::Checkpoint> checkpoint;
  if (!args.checkpoint_dir.empty()) {
    std::error_code ec;
    const bool exists = std::filesystem::exists(experiments::checkpoint_path(args.checkpoint_dir), ec);
    if (exists && !args.resume)
      throw std::invalid_argument(fmt::format(
          "--checkpoint-dir '{}' already holds a checkpoint ({}); pass --resume to continue it, or choose another "
          "directory",
          args.checkpoint_dir, experiments::checkpoint_path(args.checkpoint_dir).string()));
    if (exists) checkpoint = experiments::load_checkpoint(args.checkpoint_dir);
  }
  const experiments::SeedData data = experiments::load_seed_data(args.data);
  if (!args.checkpoint_dir.empty()) {
    // The data's fingerprint goes into every checkpoint, and a resumed run must match it (as
    // every other setting, checked together once the data is known).
    settings.data_crc = experiments::training_data_crc(data.train);
    if (checkpoint) {
      experiments::check_resume_settings(*checkpoint, settings, args.checkpoint_dir);
      model = std::move(checkpoint->model);
      continuation.initial_epoch = checkpoint->completed_epochs;
      continuation.history = std::move(checkpoint->history);
    }
    // Created only now that every input has been checked and read.
    experiments::prepare_output_directory(args.checkpoint_dir, "--checkpoint-dir");
    // A run killed while writing a checkpoint leaves its temporary; the checkpoint itself is
    // whole (the rename never happened), so the temporary is only litter.
    if (const int stale = experiments::remove_stale_checkpoint_temporaries(args.checkpoint_dir))
      std::cout << fmt::format("Removed {} unfinished checkpoint temporary file(s) from {}\n", stale,
                               args.checkpoint_dir);
    continuation.after_epoch = [&](int epoch, const History& history) {
      experiments::save_checkpoint(args.checkpoint_dir, settings, epoch + 1, history, model);
    };
    if (args.resume)
      std::cout << (continuation.initial_epoch > 0
                        ? fmt::format("Resuming from the checkpoint in {} after epoch {}\n", args.checkpoint_dir,
                                      continuation.initial_epoch)
                        : fmt::format("No checkpoint in {} yet; starting from epoch 1\n", args.checkpoint_dir));
  }
  const auto& t = args.training;
  std::cout << fmt::format(
      "Training '{}' with {} (learning rate {}{}), batch size {}, {} epochs, seed {}\n", args.model, t.optimizer,
      t.learning_rate, t.momentum != 0 ? fmt::format(", momentum {}", t.momentum) : "", t.batch_size, t.epochs, t.seed);
  std::cout << fmt::format("Fashion-MNIST from {}: {} training, {} validation, {} test images\n",
                           args.data.data_dir.string(), data.train.size(), data.validation.size(), data.test.size());
  std::cout << system_description() << "; " << training_threads_description() << "\n";
  model.summary(std::cout);

  const experiments::TrainResult result =
      experiments::train_and_evaluate(model, data, args.training, std::cout, continuation);
  std::cout << "Test: " << experiments::format_evaluation(result.test) << "\n" << std::flush;
  if (!result.stopped.empty()) {
    const int completed = static_cast<int>(result.history.epochs());
    throw std::runtime_error(fmt::format(
        "training {}{}{}", result.stopped, args.save_path.empty() ? "" : "; the model was not saved",
        args.checkpoint_dir.empty() || completed == 0
            ? ""
            : fmt::format("; the checkpoint in {} (after epoch {}) is unchanged", args.checkpoint_dir, completed)));
  }
  if (!args.save_path.empty()) {
    model.save(args.save_path);
    std::cout << "Saved the model to " << args.save_path << "\n";
  }
}

const RegisterCommand registration{
    {"train",
     "Train a seed 003 model on Fashion-MNIST (Keras-style logs), evaluate it on the test set, optionally save it",
     [](CLI::App& app) {
       static TrainArguments args;
       app.add_option("--model", args.model, "the model to train")
           ->check(one_of(seed_model_names(), "model"))
           ->required();
       add_training_options(app, args.training);
       app.add_option("--optimizer", args.training.optimizer, "the optimizer")
           ->check(one_of(experiments::optimizer_names(), "optimizer"))
           ->capture_default_str();
       app.add_option("--momentum", args.training.momentum, "SGD momentum")
           ->check(in_unit_interval())
           ->capture_default_str();
       app.add_option("--save", args.save_path, "save the trained model here (written atomically)")
           ->check(non_empty_path());
       app.add_option("--checkpoint-dir", args.checkpoint_dir,
                      "write a checkpoint (model, optimizer state, history, epoch) into this directory after every "
                      "epoch, atomically")
           ->check(non_empty_path());
       app.add_flag("--resume", args.resume,
                    "continue from the checkpoint in --checkpoint-dir (same settings; --epochs may grow); starts "
                    "from epoch 1 when there is none yet");
       add_data_options(app, args.data, true);
       app.callback([] { run_train(args); });
     }}};

}  // namespace
}  // namespace bnlab::cli
