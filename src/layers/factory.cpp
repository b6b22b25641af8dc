#include "bnlab/layers/factory.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <charconv>
#include <cmath>
#include <set>
#include <stdexcept>

#include "bnlab/layers/activation.hpp"
#include "bnlab/layers/batch_normalization.hpp"
#include "bnlab/layers/conv2d.hpp"
#include "bnlab/layers/dense.hpp"
#include "bnlab/layers/dropout.hpp"
#include "bnlab/layers/flatten.hpp"
#include "bnlab/layers/max_pool2d.hpp"
#include "bnlab/layers/sample_normalization.hpp"

namespace bnlab {

namespace {

// Reads typed values from a LayerConfig and, at the end, rejects keys nobody asked for (a
// misspelt key would otherwise silently fall back to the default).
class ConfigReader {
public:
  ConfigReader(std::string type_name, const LayerConfig& config) : type_(std::move(type_name)), config_(config) {}

  const std::string* find(const std::string& key) {
    used_.insert(key);
    const auto it = config_.find(key);
    return it == config_.end() ? nullptr : &it->second;
  }

  std::string get_string(const std::string& key, const std::string& fallback) {
    const std::string* v = find(key);
    return v ? *v : fallback;
  }

  template <typename Int>
  Int get_int(const std::string& key, Int fallback) {
    const std::string* v = find(key);
    if (!v) return fallback;
    return parse_int<Int>(key, *v, *v);
  }

  std::optional<std::uint64_t> get_optional_u64(const std::string& key) {
    const std::string* v = find(key);
    if (!v || *v == "none") return std::nullopt;
    return parse_int<std::uint64_t>(key, *v, *v);
  }

  float get_float(const std::string& key, float fallback) {
    const std::string* v = find(key);
    if (!v) return fallback;
    return parse_float(key, *v);
  }

  std::optional<float> get_optional_float(const std::string& key, std::optional<float> fallback) {
    const std::string* v = find(key);
    if (!v) return fallback;
    if (*v == "none") return std::nullopt;
    return parse_float(key, *v);
  }

  bool get_bool(const std::string& key, bool fallback) {
    const std::string* v = find(key);
    if (!v) return fallback;
    if (*v == "true") return true;
    if (*v == "false") return false;
    throw bad(key, *v, "expected \"true\" or \"false\"");
  }

  std::array<std::int64_t, 2> get_pair(const std::string& key, std::array<std::int64_t, 2> fallback) {
    const std::string* v = find(key);
    if (!v) return fallback;
    const std::size_t comma = v->find(',');
    if (comma == std::string::npos) {
      const auto n = parse_int<std::int64_t>(key, *v, *v);
      return {n, n};
    }
    return {parse_int<std::int64_t>(key, v->substr(0, comma), *v), parse_int<std::int64_t>(key, v->substr(comma + 1), *v)};
  }

  // "a,b,c" (one value or several, comma-separated).
  template <typename Int>
  std::vector<Int> get_int_list(const std::string& key, std::vector<Int> fallback) {
    const std::string* v = find(key);
    if (!v) return fallback;
    std::vector<Int> values;
    std::size_t begin = 0;
    while (true) {
      const std::size_t comma = v->find(',', begin);
      values.push_back(parse_int<Int>(key, v->substr(begin, comma - begin), *v));
      if (comma == std::string::npos) return values;
      begin = comma + 1;
    }
  }

  void finish() const {
    for (const auto& [key, value] : config_)
      if (!used_.count(key))
        throw std::invalid_argument(fmt::format("make_layer: {} has no config key \"{}\" (value \"{}\")", type_, key, value));
  }

private:
  std::invalid_argument bad(const std::string& key, const std::string& value, const char* expected) const {
    return std::invalid_argument(fmt::format("make_layer: {} config {} is \"{}\", {}", type_, key, value, expected));
  }

  template <typename Int>
  Int parse_int(const std::string& key, const std::string& text, const std::string& whole) const {
    Int value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty())
      throw bad(key, whole, "expected an integer");
    return value;
  }

  float parse_float(const std::string& key, const std::string& text) const {
    float value = 0.0f;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || !std::isfinite(value))
      throw bad(key, text, "expected a finite number");
    return value;
  }

  std::string type_;
  const LayerConfig& config_;
  std::set<std::string> used_;
};

// A leaky_relu activation's slope: the config's "alpha", or 0.3 for files written before bnlab
// wrote that key (the string's slope then). For other activations the key stays unread, so the
// reader refuses it as unknown.
template <class ActivatedLayer>
std::unique_ptr<Layer> with_activation_alpha(std::unique_ptr<ActivatedLayer> layer, ConfigReader& r) {
  if (layer->activation() == kernels::ActivationKind::leaky_relu)
    layer->set_activation_alpha(r.get_float("alpha", kernels::default_leaky_relu_alpha));
  return layer;
}

std::unique_ptr<Layer> make_dense(ConfigReader& r) {
  const auto units = r.get_int<std::int64_t>("units", 0);
  if (!r.find("units")) throw std::invalid_argument("make_layer: Dense config needs \"units\"");
  return with_activation_alpha(
      std::make_unique<Dense>(units, r.get_string("activation", "linear"), r.get_bool("use_bias", true),
                              r.get_string("kernel_initializer", "glorot_uniform"),
                              r.get_string("bias_initializer", "zeros")),
      r);
}

std::unique_ptr<Layer> make_conv2d(ConfigReader& r) {
  if (!r.find("filters")) throw std::invalid_argument("make_layer: Conv2D config needs \"filters\"");
  if (!r.find("kernel_size")) throw std::invalid_argument("make_layer: Conv2D config needs \"kernel_size\"");
  return with_activation_alpha(
      std::make_unique<Conv2D>(
          r.get_int<std::int64_t>("filters", 0), r.get_pair("kernel_size", {0, 0}), r.get_pair("strides", {1, 1}),
          r.get_string("padding", "valid"), r.get_string("activation", "linear"), r.get_bool("use_bias", true),
          r.get_string("kernel_initializer", "glorot_uniform"), r.get_string("bias_initializer", "zeros")),
      r);
}

std::unique_ptr<Layer> make_max_pool2d(ConfigReader& r) {
  const auto pool_size = r.get_pair("pool_size", {2, 2});
  std::optional<std::array<std::int64_t, 2>> strides;
  if (r.find("strides")) strides = r.get_pair("strides", pool_size);
  return std::make_unique<MaxPool2D>(pool_size, strides, r.get_string("padding", "valid"));
}

// The keys every normalization layer's options share.
template <class Options>
void read_normalization_keys(ConfigReader& r, Options& o) {
  o.epsilon = r.get_float("epsilon", o.epsilon);
  o.center = r.get_bool("center", o.center);
  o.scale = r.get_bool("scale", o.scale);
  o.beta_initializer = r.get_string("beta_initializer", o.beta_initializer);
  o.gamma_initializer = r.get_string("gamma_initializer", o.gamma_initializer);
}

std::unique_ptr<Layer> make_layer_normalization(ConfigReader& r) {
  LayerNormalizationOptions o;
  o.axis = r.get_int_list<int>("axis", o.axis);
  if (r.find("normalized_shape")) o.normalized_shape = r.get_int_list<std::int64_t>("normalized_shape", {});
  read_normalization_keys(r, o);
  return std::make_unique<LayerNormalization>(std::move(o));
}

std::unique_ptr<Layer> make_group_normalization(ConfigReader& r) {
  GroupNormalizationOptions o;
  o.groups = r.get_int<std::int64_t>("groups", o.groups);
  o.axis = r.get_int<int>("axis", o.axis);
  if (r.find("num_channels")) o.num_channels = r.get_int<std::int64_t>("num_channels", 0);
  if (r.find("instance_rank")) o.instance_rank = r.get_int<int>("instance_rank", 0);
  read_normalization_keys(r, o);
  return std::make_unique<GroupNormalization>(std::move(o));
}

std::unique_ptr<Layer> make_batch_normalization(ConfigReader& r) {
  BatchNormalizationOptions o;
  const std::string convention = r.get_string("convention", "keras");
  if (convention == "pytorch") {
    // Missing keys take the defaults BatchNorm1d/2d share under PyTorch's convention; the input
    // ranks stay open to both.
    o = BatchNormalizationOptions::pytorch_defaults();
  } else if (convention != "keras") {
    throw std::invalid_argument(
        fmt::format("make_layer: BatchNormalization config convention is \"{}\", expected \"keras\" or \"pytorch\"",
                    convention));
  }
  o.axis = r.get_int<int>("axis", o.axis);
  o.momentum = r.get_optional_float("momentum", o.momentum);
  read_normalization_keys(r, o);
  o.moving_mean_initializer = r.get_string("moving_mean_initializer", o.moving_mean_initializer);
  o.moving_variance_initializer = r.get_string("moving_variance_initializer", o.moving_variance_initializer);
  if (r.find("num_features")) o.num_features = r.get_int<std::int64_t>("num_features", 0);
  o.min_input_rank = r.get_int<int>("min_input_rank", o.min_input_rank);
  o.max_input_rank = r.get_int<int>("max_input_rank", o.max_input_rank);
  o.track_running_stats = r.get_bool("track_running_stats", o.track_running_stats);
  auto layer = std::make_unique<BatchNormalization>(std::move(o));
  layer->set_num_batches_tracked(r.get_int<std::int64_t>("num_batches_tracked", 0));
  return layer;
}

}  // namespace

std::vector<std::string> known_layer_types() {
  return {"Activation",         "BatchNormalization", "Conv2D",    "Dense",       "Dropout", "Flatten",
          "GroupNormalization", "LayerNormalization", "LeakyReLU", "MaxPooling2D"};
}

std::unique_ptr<Layer> make_layer(const std::string& type_name, const LayerConfig& config) {
  ConfigReader r(type_name, config);
  std::unique_ptr<Layer> layer;
  if (type_name == "Dense") {
    layer = make_dense(r);
  } else if (type_name == "Conv2D") {
    layer = make_conv2d(r);
  } else if (type_name == "MaxPooling2D" || type_name == "MaxPool2D") {
    layer = make_max_pool2d(r);
  } else if (type_name == "Flatten") {
    layer = std::make_unique<Flatten>();
  } else if (type_name == "Activation") {
    if (!r.find("activation")) throw std::invalid_argument("make_layer: Activation config needs \"activation\"");
    layer = with_activation_alpha(std::make_unique<Activation>(r.get_string("activation", "")), r);
  } else if (type_name == "LeakyReLU") {
    layer = std::make_unique<LeakyReLU>(r.get_float("alpha", kernels::default_leaky_relu_alpha));
  } else if (type_name == "Dropout") {
    if (!r.find("rate")) throw std::invalid_argument("make_layer: Dropout config needs \"rate\"");
    const float rate = r.get_float("rate", 0.0f);
    auto dropout = std::make_unique<Dropout>(rate, r.get_optional_u64("seed"));
    const std::optional<std::uint64_t> mask_seed = r.get_optional_u64("mask_seed");
    const std::optional<std::uint64_t> mask_step = r.get_optional_u64("mask_step");
    if (mask_seed || mask_step) dropout->resume_mask_stream(mask_seed, mask_step.value_or(0));
    layer = std::move(dropout);
  } else if (type_name == "BatchNormalization") {
    layer = make_batch_normalization(r);
  } else if (type_name == "LayerNormalization") {
    layer = make_layer_normalization(r);
  } else if (type_name == "GroupNormalization") {
    layer = make_group_normalization(r);
  } else {
    throw std::invalid_argument(fmt::format("make_layer: unknown layer type \"{}\", expected one of {}", type_name,
                                            fmt::join(known_layer_types(), ", ")));
  }
  for (const std::string& parameter : layer->regularizable_parameters())
    if (const std::string* text = r.find(parameter + "_regularizer"))
      layer->set_regularizer(parameter,
                             Regularizer::parse(*text, "make_layer: " + type_name, parameter + "_regularizer"));
  r.finish();
  return layer;
}

}  // namespace bnlab
