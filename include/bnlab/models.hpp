#pragma once
// The three Fashion-MNIST models of seed 003, built (weights drawn from seed) but not compiled:
// the seed compiles each with SGD(learning_rate=1e-3), sparse categorical cross-entropy and
// accuracy, i.e. model.compile(std::make_unique<SGD>(1e-3)).
//   "baseline"              Flatten(28, 28) -> Dense(300, he_normal) -> LeakyReLU
//                           -> Dense(100, he_normal) -> LeakyReLU -> Dense(10, softmax)
//                           266,610 parameters, all trainable
//   "bn"                    ("Approach One") Flatten -> BatchNormalization -> Dense(300, relu)
//                           -> BN -> Dense(100, relu) -> BN -> Dense(10, softmax)
//                           271,346 parameters, 2,368 of them non-trainable
//   "bn-before-activation"  ("Approach Two") Flatten -> BN -> Dense(300, use_bias=false) -> BN
//                           -> Activation(relu) -> Dense(100, use_bias=false) -> BN
//                           -> Activation(relu) -> Dense(10, softmax)
// Every other argument is Keras's default (glorot_uniform kernels, LeakyReLU alpha 0.3,
// BatchNormalization momentum 0.99 and epsilon 1e-3).

#include <cstdint>
#include <string>
#include <vector>

#include "bnlab/model.hpp"

namespace bnlab {

// Per-sample input shape of the seed's models: one 28 x 28 image, pixels / 255.
inline const Shape seed_model_input_shape{28, 28};

Sequential make_baseline_model(std::uint64_t seed);
Sequential make_bn_model(std::uint64_t seed);
Sequential make_bn_before_activation_model(std::uint64_t seed);

// {"baseline", "bn", "bn-before-activation"}
std::vector<std::string> seed_model_names();
// One of seed_model_names(); anything else throws std::invalid_argument listing them.
Sequential make_seed_model(const std::string& name, std::uint64_t seed);

}  // namespace bnlab
