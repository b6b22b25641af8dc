// bnlab train: one seed 003 model on Fashion-MNIST with Keras-style logs, then the test set;
// optionally saved (atomically) for `bnlab evaluate`.

#include <fmt/format.h>

#include <iostream>
#include <stdexcept>
#include <string>

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
};

void run_train(const TrainArguments& args) {
  // Every check that can fail before training does, so a bad --save path costs no training time.
  experiments::check_training_options(args.training);
  experiments::check_data_options(args.data);
  if (!args.save_path.empty()) experiments::check_file_destination(args.save_path, "--save path");

  Sequential model = make_seed_model(args.model, args.training.seed);
  const experiments::SeedData data = experiments::load_seed_data(args.data);
  const auto& t = args.training;
  std::cout << fmt::format(
      "Training '{}' with {} (learning rate {}{}), batch size {}, {} epochs, seed {}\n", args.model, t.optimizer,
      t.learning_rate, t.momentum != 0 ? fmt::format(", momentum {}", t.momentum) : "", t.batch_size, t.epochs, t.seed);
  std::cout << fmt::format("Fashion-MNIST from {}: {} training, {} validation, {} test images\n",
                           args.data.data_dir.string(), data.train.size(), data.validation.size(), data.test.size());
  std::cout << system_description() << "\n";
  model.summary(std::cout);

  const experiments::TrainResult result = experiments::train_and_evaluate(model, data, args.training, std::cout);
  std::cout << "Test: " << experiments::format_evaluation(result.test) << "\n" << std::flush;
  if (!result.stopped.empty())
    throw std::runtime_error(
        fmt::format("training {}{}", result.stopped, args.save_path.empty() ? "" : "; the model was not saved"));
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
       app.add_option("--save", args.save_path, "save the trained model here (written atomically)");
       add_data_options(app, args.data, true);
       app.callback([] { run_train(args); });
     }}};

}  // namespace
}  // namespace bnlab::cli
