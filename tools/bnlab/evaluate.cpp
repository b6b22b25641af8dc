// bnlab evaluate: a saved model's loss and accuracy on the Fashion-MNIST test set.

#include <fmt/format.h>

#include <iostream>
#include <stdexcept>
#include <string>

#include "bnlab/experiments/training.hpp"
#include "bnlab/model.hpp"
#include "command.hpp"
#include "options.hpp"

namespace bnlab::cli {
namespace {

struct EvaluateArguments {
  std::string load_path;
  experiments::DataOptions data;
};

void run_evaluate(const EvaluateArguments& args) {
  experiments::check_data_options(args.data);
  Sequential model = Sequential::load(args.load_path);
  const data::Dataset test = experiments::load_test_data(args.data);
  std::cout << fmt::format("Model '{}' from {} ({} parameters) on {} test images from {}\n", model.name(),
                           args.load_path, model.count_params(), test.size(), args.data.data_dir.string());
  EvaluateResult result;
  try {
    result = model.evaluate(test.images, test.labels, experiments::evaluation_batch_size);
  } catch (const std::invalid_argument& e) {
    // A model trained on other data: say which model and which data disagree.
    throw std::invalid_argument(fmt::format("the model in '{}' does not fit the Fashion-MNIST test set in '{}': {}",
                                            args.load_path, args.data.data_dir.string(), e.what()));
  }
  std::cout << "Test: " << experiments::format_evaluation(result) << "\n";
}

const RegisterCommand registration{
    {"evaluate", "Evaluate a saved model (bnlab train --save) on the Fashion-MNIST test set", [](CLI::App& app) {
       static EvaluateArguments args;
       app.add_option("--load", args.load_path, "the saved model")->required();
       add_data_options(app, args.data, false);
       app.callback([] { run_evaluate(args); });
     }}};

}  // namespace
}  // namespace bnlab::cli
