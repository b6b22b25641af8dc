#include "bnlab/models.hpp"

#include <memory>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bnlab/layers/layers.hpp"

namespace bnlab {

Sequential make_baseline_model(std::uint64_t seed) {
  Sequential model;
  model.add(std::make_unique<Flatten>());
  model.add(std::make_unique<Dense>(300, "linear", true, "he_normal"));
  model.add(std::make_unique<LeakyReLU>());
  model.add(std::make_unique<Dense>(100, "linear", true, "he_normal"));
  model.add(std::make_unique<LeakyReLU>());
  model.add(std::make_unique<Dense>(10, "softmax"));
  model.build(seed_model_input_shape, seed);
  return model;
}

Sequential make_bn_model(std::uint64_t seed) {
  Sequential model;
  model.add(std::make_unique<Flatten>());
  model.add(std::make_unique<BatchNormalization>());
  model.add(std::make_unique<Dense>(300, "relu"));
  model.add(std::make_unique<BatchNormalization>());
  model.add(std::make_unique<Dense>(100, "relu"));
  model.add(std::make_unique<BatchNormalization>());
  model.add(std::make_unique<Dense>(10, "softmax"));
  model.build(seed_model_input_shape, seed);
  return model;
}

Sequential make_bn_before_activation_model(std::uint64_t seed) {
  Sequential model;
  model.add(std::make_unique<Flatten>());
  model.add(std::make_unique<BatchNormalization>());
  // No bias before a BatchNormalization: its beta already shifts, a bias would be a wasted,
  // exactly cancelled parameter.
  model.add(std::make_unique<Dense>(300, "linear", false));
  model.add(std::make_unique<BatchNormalization>());
  model.add(std::make_unique<Activation>("relu"));
  model.add(std::make_unique<Dense>(100, "linear", false));
  model.add(std::make_unique<BatchNormalization>());
  model.add(std::make_unique<Activation>("relu"));
  model.add(std::make_unique<Dense>(10, "softmax"));
  model.build(seed_model_input_shape, seed);
  return model;
}

std::vector<std::string> seed_model_names() { return {"baseline", "bn", "bn-before-activation"}; }

Sequential make_seed_model(const std::string& name, std::uint64_t seed) {
  if (name == "baseline") return make_baseline_model(seed);
  if (name == "bn") return make_bn_model(seed);
  if (name == "bn-before-activation") return make_bn_before_activation_model(seed);
  throw std::invalid_argument(
      fmt::format("make_seed_model: unknown model '{}' (valid: {})", name, fmt::join(seed_model_names(), ", ")));
}

}  // namespace bnlab
