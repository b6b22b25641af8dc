// bnlab summary: the Keras-style summary of one of the seed 003 models.

#include <iostream>

#include "bnlab/models.hpp"
#include "command.hpp"
#include "options.hpp"

namespace bnlab::cli {
namespace {

const RegisterCommand registration{
    {"summary", "Print the Keras-style summary of a seed 003 model (layers, output shapes, parameter counts)",
     [](CLI::App& app) {
       static std::string model = "bn";
       app.add_option("--model", model, "the model")->check(one_of(seed_model_names(), "model"))->required();
       app.callback([] {
         // The seed does not matter for the summary (it only draws the weights); 42 is the seed's.
         make_seed_model(model, 42).summary(std::cout);
       });
     }}};

}  // namespace
}  // namespace bnlab::cli
