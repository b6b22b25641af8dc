// bnlab experiment NAME: the paper's and the seeds' experiments with their numbers, figures and
// HTML report (bnlab::experiments::run_experiment does the work).

#include "bnlab/experiments/experiment.hpp"

#include <cstdint>
#include <iostream>
#include <optional>
#include <string>

#include "command.hpp"
#include "options.hpp"

namespace bnlab::cli {
namespace {

// CLI11 fills plain values; an option counts as given only when it appeared on the command
// line, so an experiment's own defaults apply otherwise (and a flag that does not apply can be
// refused).
template <typename T>
void copy_if_given(CLI::Option* option, const T& value, std::optional<T>& target) {
  if (option->count() > 0) target = value;
}

const RegisterCommand registration{
    {"experiment",
     "Run one of the paper's and the seeds' BatchNorm experiments (covariate-shift, learning-rate, batch-size, "
     "normalize) or all of them; writes CSV, JSON, PNG/SVG figures and a self-contained report.html",
     [](CLI::App& app) {
       static std::string name;
       static std::string out_dir;
       static std::int64_t steps = 0, eval_every = 0, validation = 0, train_limit = 0, test_limit = 0;
       static int epochs = 0;
       static std::uint64_t seed = 0;
       static std::string data_dir;
       app.add_option("name", name, "covariate-shift, learning-rate, batch-size, normalize or all")->required();
       app.add_option("--out", out_dir, "output directory (default: out/experiments/NAME; out/experiments for all)")
           ->check(non_empty_path());
       auto* steps_option = app.add_option(
           "--steps", steps, "training steps per network (covariate-shift: default 50000; learning-rate: 20000)");
       auto* eval_option = app.add_option("--eval-every", eval_every,
                                          "steps between evaluations (default: about 100 points per run for "
                                          "covariate-shift, 50 for learning-rate)");
       auto* epochs_option = app.add_option("--epochs", epochs, "batch-size: epochs per run (default 15)");
       auto* seed_option =
           app.add_option("--seed", seed, "seed of weights, batches and random images")->check(unsigned_decimal());
       auto* data_option = app.add_option("--data-dir", data_dir, "directory with the Fashion-MNIST IDX files");
       auto* validation_option =
           app.add_option("--validation", validation, "the first N training images are the validation set (5000)");
       auto* train_option = app.add_option("--train-limit", train_limit,
                                           "train on the first N remaining training images only (0: all; "
                                           "batch-size defaults to 10000)");
       auto* test_option = app.add_option("--test-limit", test_limit, "evaluate on the first N test images (0: all)");
       // The ranges are the experiments' own checks; here only the spelling of the numbers.
       for (auto* option : {steps_option, eval_option, epochs_option, validation_option, train_option, test_option})
         option->check(signed_decimal());
       app.callback([=] {
         experiments::ExperimentRequest request;
         request.name = name;
         request.out_dir = out_dir;
         copy_if_given(steps_option, steps, request.steps);
         copy_if_given(eval_option, eval_every, request.eval_every);
         copy_if_given(epochs_option, epochs, request.epochs);
         copy_if_given(seed_option, seed, request.seed);
         copy_if_given(validation_option, validation, request.validation);
         copy_if_given(train_option, train_limit, request.train_limit);
         copy_if_given(test_option, test_limit, request.test_limit);
         if (data_option->count() > 0) request.data_dir = data_dir;
         const auto report = experiments::run_experiment(request, std::cout);
         std::cout << "report: " << report.string() << "\n";
       });
     }}};

}  // namespace
}  // namespace bnlab::cli
