// bnlab compare: the seed 003 experiment (baseline vs BatchNorm after vs before the activation),
// its table beside the seed's Keras numbers, and the histories as CSV and JSON.

#include "bnlab/experiments/compare.hpp"

#include <iostream>
#include <string>
#include <vector>

#include "bnlab/models.hpp"
#include "command.hpp"
#include "options.hpp"

namespace bnlab::cli {
namespace {

const RegisterCommand registration{
    {"compare",
     "Train the seed 003 models with the seed's settings (SGD, lr 1e-3, batch 32, 10 epochs) and compare them with "
     "the seed's Keras run; writes history.csv, history.json and table.txt",
     [](CLI::App& app) {
       static experiments::CompareOptions options;
       static std::string out_dir = options.out_dir.string();
       static std::string models;
       // Split here, not by CLI11's delimiter, which drops empty names: "bn," would pass.
       app.add_option("--models", models, "comma-separated subset of the models, in the order to run (default: all)")
           ->check(list_of(one_of(seed_model_names(), "model")));
       add_training_options(app, options.training);
       app.add_option("--out", out_dir, "output directory")->capture_default_str();
       add_data_options(app, options.data, true);
       app.callback([] {
         options.out_dir = out_dir;
         if (!models.empty()) options.models = split_list(models);
         experiments::run_comparison(options, std::cout);
       });
     }}};

}  // namespace
}  // namespace bnlab::cli
