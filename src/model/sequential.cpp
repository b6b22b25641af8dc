#include <algorithm>
#include <cctype>
#include <ostream>
#include <regex>
#include <stdexcept>

#include <fmt/format.h>

#include "bnlab/layers/batch_normalization.hpp"
#include "bnlab/layers/dense.hpp"
#include "bnlab/model.hpp"
#include "model/train_buffers.hpp"

namespace bnlab {

NonFiniteLossError::NonFiniteLossError(int epoch, std::int64_t step, double loss, History history)
    : std::runtime_error(fmt::format("fit: loss became {} at epoch {}, step {}; training stopped before that "
                                     "step's weight update (lower the learning rate or check the inputs)",
                                     loss, epoch + 1, step + 1)),
      epoch_(epoch),
      step_(step),
      loss_(loss),
      history_(std::move(history)) {}

std::string to_snake_case(const std::string& class_name) {
  // Keras's generic_utils.to_snake_case, rule for rule, so automatic names match Keras's.
  static const std::regex word_start("(.)([A-Z][a-z0-9]+)");
  static const std::regex lower_upper("([a-z])([A-Z])");
  std::string s = std::regex_replace(class_name, word_start, "$1_$2");
  s = std::regex_replace(s, lower_upper, "$1_$2");
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!s.empty() && s[0] == '_') s = "private" + s;
  return s;
}

Sequential::Sequential(std::string name) : name_(std::move(name)) {}
Sequential::Sequential(Sequential&&) noexcept = default;
Sequential& Sequential::operator=(Sequential&&) noexcept = default;
Sequential::~Sequential() = default;

Layer& Sequential::add(std::unique_ptr<Layer> layer) {
  if (!layer) throw std::invalid_argument(fmt::format("Sequential '{}': add() got a null layer", name_));
  if (built_)
    throw std::logic_error(fmt::format("Sequential '{}': add({}) after build(); add every layer first", name_,
                                       layer->type_name()));
  auto taken = [&](const std::string& candidate) {
    return std::any_of(layers_.begin(), layers_.end(), [&](const auto& l) { return l->name() == candidate; });
  };
  if (layer->name().empty()) {
    const std::string base = to_snake_case(layer->type_name());
    std::string candidate = base;
    for (int suffix = 1; taken(candidate); ++suffix) candidate = fmt::format("{}_{}", base, suffix);
    layer->set_name(candidate);
  } else if (taken(layer->name())) {
    throw std::invalid_argument(
        fmt::format("Sequential '{}': a layer named '{}' is already in the model", name_, layer->name()));
  }
  layers_.push_back(std::move(layer));
  return *layers_.back();
}

void Sequential::build(const Shape& input_shape, std::uint64_t seed) {
  if (built_) throw std::logic_error(fmt::format("Sequential '{}': build() called twice", name_));
  if (layers_.empty()) throw std::logic_error(fmt::format("Sequential '{}': build() without layers", name_));
  if (input_shape.empty() || input_shape.size() + 1 > static_cast<std::size_t>(Tensor::max_rank))
    throw std::invalid_argument(fmt::format("Sequential '{}': input shape has {} dimensions, expected 1..{}", name_,
                                            input_shape.size(), Tensor::max_rank - 1));
  for (std::int64_t d : input_shape)
    if (d <= 0)
      throw std::invalid_argument(
          fmt::format("Sequential '{}': input shape ({}) has a non-positive dimension", name_, fmt::join(input_shape, ", ")));
  Rng rng(seed);
  Shape shape = input_shape;
  for (auto& layer : layers_) shape = layer->build(shape, rng);
  input_shape_ = input_shape;
  built_ = true;
  trainable_ = trainable_parameters();
  trainable_owner_.clear();
  for (const auto& layer : layers_)
    for (const Parameter* p : layer->parameters())
      if (p->trainable) trainable_owner_.push_back(layer.get());
  // Nothing reads the input gradient of the first layer with trainable parameters, nor runs the
  // backward of the layers before it (PyTorch's autograd skips them alike for an input that
  // does not require grad): for a Dense first layer that is one GEMM in three of its backward.
  first_trained_layer_ = layers_.size();
  for (std::size_t i = 0; i < layers_.size() && first_trained_layer_ == layers_.size(); ++i)
    for (const Parameter* p : layers_[i]->parameters())
      if (p->trainable) first_trained_layer_ = i;
  for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i]->set_input_gradient_needed(i > first_trained_layer_);
  // A first trained BatchNormalization feeding a Dense (the seed's Approach One): the Dense
  // computes the normalization's gamma and beta grads with its own kernel grad from one GEMM,
  // instead of a second GEMM for its input gradient that only they would read.
  if (first_trained_layer_ + 1 < layers_.size())
    if (auto* normalization = dynamic_cast<BatchNormalization*>(layers_[first_trained_layer_].get()))
      if (auto* dense = dynamic_cast<Dense*>(layers_[first_trained_layer_ + 1].get()))
        dense->set_input_normalization(normalization);
}

Layer& Sequential::layer(std::size_t i) {
  if (i >= layers_.size())
    throw std::out_of_range(fmt::format("Sequential '{}': layer {} of {}", name_, i, layers_.size()));
  return *layers_[i];
}
const Layer& Sequential::layer(std::size_t i) const { return const_cast<Sequential*>(this)->layer(i); }

const Shape& Sequential::output_shape() const {
  check_built("output_shape");
  return layers_.back()->output_shape();
}

std::vector<Parameter*> Sequential::parameters() {
  std::vector<Parameter*> all;
  for (auto& layer : layers_)
    for (Parameter* p : layer->parameters()) all.push_back(p);
  return all;
}

std::vector<Parameter*> Sequential::trainable_parameters() {
  std::vector<Parameter*> trainable;
  for (Parameter* p : parameters())
    if (p->trainable) trainable.push_back(p);
  return trainable;
}

namespace {
std::int64_t count(const std::vector<std::unique_ptr<Layer>>& layers, int which) {  // 0 all, 1 trainable, 2 not
  std::int64_t total = 0;
  for (const auto& layer : layers)
    for (const Parameter* p : layer->parameters())
      if (which == 0 || (which == 1) == p->trainable) total += p->value.size();
  return total;
}

std::int64_t count_layer(Layer& layer) {
  std::int64_t total = 0;
  for (const Parameter* p : layer.parameters()) total += p->value.size();
  return total;
}

// Keras's print_row: each field is cut at its column's right edge, and the character before
// the next field is forced to a space, which is how "batch_normalization (BatchNormalization)"
// becomes "batch_normalization (BatchNo ".
std::string summary_row(const std::vector<std::string>& fields) {
  static constexpr std::size_t positions[] = {29, 55, 65};
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line.back() = ' ';
    line += fields[i];
    line.resize(positions[i], ' ');
  }
  return line;
}

// Python's '{:,}'.
std::string with_thousands(std::int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}
}  // namespace

std::int64_t Sequential::count_params() const { return count(layers_, 0); }
std::int64_t Sequential::count_trainable_params() const { return count(layers_, 1); }
std::int64_t Sequential::count_non_trainable_params() const { return count(layers_, 2); }

std::string Sequential::summary() const {
  check_built("summary");
  const std::string underline(65, '_');
  const std::string double_line(65, '=');
  std::string s = fmt::format("Model: \"{}\"\n", name_);
  s += underline + "\n";
  s += summary_row({"Layer (type)", "Output Shape", "Param #"}) + "\n";
  s += double_line + "\n";
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    Layer& layer = *layers_[i];
    const std::string shape = fmt::format("(None, {})", fmt::join(layer.output_shape(), ", "));
    s += summary_row({fmt::format("{} ({})", layer.name(), layer.type_name()), shape,
                      std::to_string(count_layer(layer))}) +
         "\n";
    s += (i + 1 == layers_.size() ? double_line : underline) + "\n";
  }
  s += fmt::format("Total params: {}\n", with_thousands(count_params()));
  s += fmt::format("Trainable params: {}\n", with_thousands(count_trainable_params()));
  s += fmt::format("Non-trainable params: {}\n", with_thousands(count_non_trainable_params()));
  s += underline + "\n";
  return s;
}

void Sequential::summary(std::ostream& out) const { out << summary(); }

void Sequential::compile(std::unique_ptr<Optimizer> optimizer, const CompileOptions& options) {
  check_built("compile");
  if (!optimizer) throw std::invalid_argument(fmt::format("Sequential '{}': compile() got a null optimizer", name_));
  compile_options_ = options;
  check_loss_setup("compile");
  optimizer->build(trainable_);
  optimizer_ = std::move(optimizer);
}

Optimizer& Sequential::optimizer() {
  check_compiled("optimizer");
  return *optimizer_;
}

const Optimizer& Sequential::optimizer() const {
  check_compiled("optimizer");
  return *optimizer_;
}

void Sequential::check_built(const char* who) const {
  if (!built_) throw std::logic_error(fmt::format("Sequential '{}': {}() before build()", name_, who));
}

void Sequential::check_compiled(const char* who) const {
  check_built(who);
  if (!optimizer_) throw std::logic_error(fmt::format("Sequential '{}': {}() before compile()", name_, who));
}

void Sequential::check_loss_setup(const char* who) const {
  check_built(who);
  const Layer& last = *layers_.back();
  if (last.output_shape().size() != 1)
    throw std::invalid_argument(fmt::format(
        "Sequential '{}': {}: sparse categorical cross-entropy needs a last layer with output (None, classes), "
        "'{}' gives (None, {})",
        name_, who, last.name(), fmt::join(last.output_shape(), ", ")));
  const bool ends_in_softmax = model_detail::ends_in_softmax(last);
  if (compile_options_.from_logits && ends_in_softmax)
    throw std::invalid_argument(fmt::format(
        "Sequential '{}': {}: from_logits is set but the last layer '{}' applies softmax; its outputs are "
        "probabilities, not logits",
        name_, who, last.name()));
  if (!compile_options_.from_logits && !ends_in_softmax)
    throw std::invalid_argument(fmt::format(
        "Sequential '{}': {}: the last layer '{}' ({}) does not end in softmax; cross-entropy on probabilities "
        "without their logits is not supported: add activation \"softmax\" or compile with from_logits",
        name_, who, last.name(), last.type_name()));
}

}  // namespace bnlab
