#pragma once
// Rebuilds a layer from its type name and configuration:
//   make_layer(layer.type_name(), layer.config()) is an unbuilt layer equivalent to `layer`
//   (same configuration; weights come from build() or from a saved model).
// "MaxPool2D" is accepted as Keras's alias of "MaxPooling2D".
// Keys missing from config take the constructor's defaults. An unknown type, an unknown key or
// a value that does not parse or is out of range throws std::invalid_argument naming it.
// Config values: integers and floats in decimal ("0.99", "1e-05"), booleans "true"/"false",
// pairs "3,3" (or "3" for both), strings as the constructors take them, "none" for an absent
// optional (BatchNormalization's momentum).

#include <memory>
#include <string>
#include <vector>

#include "bnlab/layers/layer.hpp"

namespace bnlab {

std::unique_ptr<Layer> make_layer(const std::string& type_name, const LayerConfig& config);

// The type names make_layer knows, in a fixed order.
std::vector<std::string> known_layer_types();

}  // namespace bnlab
