#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "bnlab/layers/detail.hpp"
#include "bnlab/layers/layer.hpp"

namespace bnlab {
namespace {

// A factor as Keras takes it (finite, non-negative), within float's range: the gradient is float,
// and a factor of inf times a weight of 0 would be NaN.
bool valid_factor(double value) { return value >= 0.0 && value <= std::numeric_limits<float>::max(); }

bool parse_factor(std::string_view text, double& value) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() && valid_factor(value);
}

}  // namespace

Regularizer Regularizer::parse(const std::string& text, const std::string& who, const std::string& what) {
  auto refuse = [&]() {
    return std::invalid_argument(fmt::format(
        "{}: {} is \"{}\", expected \"l1\", \"l2\", \"l1(F)\", \"l2(F)\" or \"l1_l2(F1,F2)\" with factors >= 0", who,
        what, text));
  };
  // Keras's functions: l1() and l2() default to 0.01.
  if (text == "l1") return {0.01, 0.0};
  if (text == "l2") return {0.0, 0.01};
  const std::size_t open = text.find('(');
  if (open == std::string::npos || text.back() != ')') throw refuse();
  const std::string_view name(text.data(), open);
  const std::string_view arguments(text.data() + open + 1, text.size() - open - 2);
  Regularizer r;
  if (name == "l1" && parse_factor(arguments, r.l1)) return r;
  if (name == "l2" && parse_factor(arguments, r.l2)) return r;
  const std::size_t comma = arguments.find(',');
  if (name == "l1_l2" && comma != std::string_view::npos && parse_factor(arguments.substr(0, comma), r.l1) &&
      parse_factor(arguments.substr(comma + 1), r.l2))
    return r;
  throw refuse();
}

std::string Regularizer::to_string() const {
  if (l2 == 0.0) return fmt::format("l1({})", l1);
  if (l1 == 0.0) return fmt::format("l2({})", l2);
  return fmt::format("l1_l2({},{})", l1, l2);
}

void Layer::set_regularizer(const std::string& parameter, const Regularizer& regularizer) {
  // What parse refuses is refused here too, or a model could be saved that cannot be loaded.
  if (!valid_factor(regularizer.l1) || !valid_factor(regularizer.l2))
    throw std::invalid_argument(
        fmt::format("{}: {}_regularizer has factors l1 {} and l2 {}, expected finite values >= 0 within float's range",
                    detail::describe(*this), parameter, regularizer.l1, regularizer.l2));
  const std::vector<std::string> names = regularizable_parameters();
  if (std::find(names.begin(), names.end(), parameter) == names.end())
    throw std::invalid_argument(fmt::format("{}: {}_regularizer: {} has no parameter \"{}\" to regularize{}",
                                            detail::describe(*this), parameter, type_name(), parameter,
                                            names.empty() ? "" : fmt::format(" (it has {})", fmt::join(names, ", "))));
  if (!regularizer.active()) {
    regularizers_.erase(parameter);
    return;
  }
  regularizers_[parameter] = regularizer;
}

const Regularizer* Layer::regularizer(const std::string& parameter) const {
  const auto it = regularizers_.find(parameter);
  return it == regularizers_.end() ? nullptr : &it->second;
}

void Layer::add_regularizer_config(LayerConfig& config) const {
  for (const auto& [parameter, regularizer] : regularizers_)
    config[parameter + "_regularizer"] = regularizer.to_string();
}

}  // namespace bnlab
