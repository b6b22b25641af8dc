#include "bnlab/optim.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kernels/parallel.hpp"
#include "kernels/vector_ops.hpp"

namespace bnlab {

namespace {

void check_learning_rate(const char* who, double learning_rate) {
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate))
    throw std::invalid_argument(
        fmt::format("{}: learning_rate is {}, must be positive and finite", who, learning_rate));
}

void check_unit_interval(const char* who, const char* name, double value) {
  if (!(value >= 0.0 && value < 1.0))
    throw std::invalid_argument(fmt::format("{}: {} is {}, must be in [0, 1)", who, name, value));
}

// Compares without Tensor::shape(), which builds a vector: apply() runs every step and must not
// allocate.
bool has_shape(const Tensor& t, const std::vector<std::int64_t>& shape) {
  if (t.rank() != static_cast<int>(shape.size())) return false;
  for (int i = 0; i < t.rank(); ++i)
    if (t.dim(i) != shape[static_cast<std::size_t>(i)]) return false;
  return true;
}

namespace vec = kernels::vec;

// Updates of fewer elements run on the calling thread: a fork and join costs about what a
// vectorized pass over 32 K floats does.
constexpr std::int64_t update_parallel_threshold = 1 << 15;

// The update loops, one clone per vector width; float arithmetic in Keras's order
// (training_ops' ApplyGradientDescent and ApplyKerasMomentum), so the bits match a float32
// Keras run step for step, and every width computes them alike (-ffp-contract=off).
BNLAB_MULTIVERSION void sgd_block(std::int64_t n, float lr, const float* g, float* w) {
  const vec::f32x16 rate = vec::splat(lr);
  vec::map(n, w, g, w, [rate](vec::f32x16 wv, vec::f32x16 gv) BNLAB_LAMBDA_INLINE { return wv - gv * rate; });
}

BNLAB_MULTIVERSION void sgd_momentum_block(std::int64_t n, float lr, float momentum, bool nesterov, const float* g,
                                           float* v, float* w) {
  const vec::f32x16 rate = vec::splat(lr), mu = vec::splat(momentum);
  vec::for_vectors(0, n, [&](std::int64_t i, auto lanes) BNLAB_LAMBDA_INLINE {
    vec::f32x16 vv = lanes.load(v + i), wv = lanes.load(w + i);
    const vec::f32x16 gv = lanes.load(g + i);
    vv = vv * mu - gv * rate;
    wv += nesterov ? vv * mu - gv * rate : vv;
    lanes.store(v + i, vv);
    lanes.store(w + i, wv);
  });
}

}  // namespace

void Optimizer::build(const std::vector<Parameter*>& params) {
  const std::size_t per_param = slot_names().size();
  std::vector<Tensor> slots;
  std::vector<std::vector<std::int64_t>> shapes;
  slots.reserve(params.size() * per_param);
  for (std::size_t p = 0; p < params.size(); ++p) {
    const Parameter* param = params[p];
    if (!param || !param->trainable || !param->value.defined() || !param->grad.defined())
      throw std::invalid_argument(fmt::format(
          "{}: parameter {} ({}) is not a trainable parameter with a gradient", type_name(), p,
          param ? param->name : std::string("null")));
    shapes.push_back(param->value.shape());
    for (std::size_t k = 0; k < per_param; ++k) slots.emplace_back(param->value.shape());
  }
  slots_ = std::move(slots);
  shapes_ = std::move(shapes);
  slots_per_parameter_ = per_param;
  iterations_ = 0;
  built_ = true;
}

void Optimizer::apply(const std::vector<Parameter*>& params) {
  if (!built_) throw std::logic_error(fmt::format("{}: apply() before build()", type_name()));
  if (params.size() != shapes_.size())
    throw std::invalid_argument(fmt::format("{}: apply() got {} parameters, build() got {}", type_name(),
                                            params.size(), shapes_.size()));
  const std::size_t per_param = slots_per_parameter_;
  for (std::size_t p = 0; p < params.size(); ++p) {
    Parameter& param = *params[p];
    if (param.value.size() != param.grad.size() || !has_shape(param.value, shapes_[p]))
      throw std::invalid_argument(fmt::format("{}: parameter {} ({}) has shape {} and grad {}, built with ({})",
                                              type_name(), p, param.name, param.value.shape_string(),
                                              param.grad.shape_string(), fmt::join(shapes_[p], ", ")));
    update(param, per_param ? &slots_[p * per_param] : nullptr, iterations_);
  }
  ++iterations_;
}

OptimizerState Optimizer::state() const {
  OptimizerState s;
  s.type_name = type_name();
  s.hyperparameters = hyperparameters();
  s.iterations = iterations_;
  s.slot_names = slot_names();
  s.slots.reserve(slots_.size());
  for (const Tensor& t : slots_) s.slots.push_back(t.clone());
  return s;
}

void Optimizer::set_state(const OptimizerState& s) {
  if (s.type_name != type_name())
    throw std::invalid_argument(fmt::format("{}: state is for optimizer {}", type_name(), s.type_name));
  if (s.slot_names != slot_names())
    throw std::invalid_argument(fmt::format("{}: state has slots [{}], expected [{}]", type_name(),
                                            fmt::join(s.slot_names, ", "), fmt::join(slot_names(), ", ")));
  if (s.iterations < 0)
    throw std::invalid_argument(fmt::format("{}: state has iterations {}", type_name(), s.iterations));
  if (!built_) throw std::logic_error(fmt::format("{}: set_state() before build()", type_name()));
  if (s.slots.size() != slots_.size())
    throw std::invalid_argument(
        fmt::format("{}: state has {} slots, this optimizer has {}", type_name(), s.slots.size(), slots_.size()));
  for (std::size_t i = 0; i < slots_.size(); ++i)
    if (s.slots[i].shape() != slots_[i].shape())
      throw std::invalid_argument(fmt::format("{}: state slot {} has shape {}, expected {}", type_name(), i,
                                              s.slots[i].shape_string(), slots_[i].shape_string()));
  std::vector<Tensor> slots;
  slots.reserve(s.slots.size());
  for (const Tensor& t : s.slots) slots.push_back(t.clone());
  slots_ = std::move(slots);
  iterations_ = s.iterations;
}

// ---- SGD ------------------------------------------------------------------------------------

SGD::SGD(double learning_rate, double momentum, bool nesterov)
    : learning_rate_(learning_rate), momentum_(momentum), nesterov_(nesterov) {
  check_learning_rate("SGD", learning_rate);
  check_unit_interval("SGD", "momentum", momentum);
}

std::vector<std::pair<std::string, double>> SGD::hyperparameters() const {
  return {{"learning_rate", learning_rate_}, {"momentum", momentum_}, {"nesterov", nesterov_ ? 1.0 : 0.0}};
}

// Keras creates the momentum accumulator only when momentum is nonzero.
std::vector<std::string> SGD::slot_names() const {
  if (momentum_ > 0.0) return {"momentum"};
  return {};
}

void SGD::update(Parameter& param, Tensor* slot, std::int64_t /*iteration*/) {
  const float lr = static_cast<float>(learning_rate_);
  float* w = param.value.data();
  const float* g = param.grad.data();
  const std::int64_t n = param.value.size();
  float* v = slot ? slot[0].data() : nullptr;
  const float momentum = static_cast<float>(momentum_);
  const bool nesterov = nesterov_;
  kernels::detail::for_elements(n, update_parallel_threshold, [&](std::int64_t b, std::int64_t e) {
    if (!v)
      sgd_block(e - b, lr, g + b, w + b);
    else
      sgd_momentum_block(e - b, lr, momentum, nesterov, g + b, v + b, w + b);
  });
}

// ---- Adam -----------------------------------------------------------------------------------

Adam::Adam(double learning_rate, double beta_1, double beta_2, double epsilon)
    : learning_rate_(learning_rate), beta_1_(beta_1), beta_2_(beta_2), epsilon_(epsilon) {
  check_learning_rate("Adam", learning_rate);
  check_unit_interval("Adam", "beta_1", beta_1);
  check_unit_interval("Adam", "beta_2", beta_2);
  if (!(epsilon > 0.0) || !std::isfinite(epsilon))
    throw std::invalid_argument(fmt::format("Adam: epsilon is {}, must be positive and finite", epsilon));
}

std::vector<std::pair<std::string, double>> Adam::hyperparameters() const {
  return {{"learning_rate", learning_rate_}, {"beta_1", beta_1_}, {"beta_2", beta_2_}, {"epsilon", epsilon_}};
}

void Adam::update(Parameter& param, Tensor* slot, std::int64_t iteration) {
  // The step size with both bias corrections is one scalar per step; computing it in double
  // keeps beta^t accurate for large t before the single rounding to float.
  const double t = static_cast<double>(iteration + 1);
  const double step = learning_rate_ * std::sqrt(1.0 - std::pow(beta_2_, t)) / (1.0 - std::pow(beta_1_, t));
  const float lr_t = static_cast<float>(step);
  const float one_minus_beta_1 = static_cast<float>(1.0 - beta_1_);
  const float one_minus_beta_2 = static_cast<float>(1.0 - beta_2_);
  const float epsilon = static_cast<float>(epsilon_);
  float* w = param.value.data();
  const float* g = param.grad.data();
  float* m = slot[0].data();
  float* v = slot[1].data();
  kernels::detail::for_elements(param.value.size(), update_parallel_threshold, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      m[i] += (g[i] - m[i]) * one_minus_beta_1;
      v[i] += (g[i] * g[i] - v[i]) * one_minus_beta_2;
      w[i] -= (m[i] * lr_t) / (std::sqrt(v[i]) + epsilon);
    }
  });
}

// ---- factory --------------------------------------------------------------------------------

std::unique_ptr<Optimizer> make_optimizer(const std::string& type_name,
                                          const std::vector<std::pair<std::string, double>>& hyperparameters) {
  auto take = [&](std::vector<std::string> names) {
    std::vector<double> values(names.size());
    std::vector<bool> seen(names.size(), false);
    for (const auto& [key, value] : hyperparameters) {
      std::size_t i = 0;
      while (i < names.size() && names[i] != key) ++i;
      if (i == names.size())
        throw std::invalid_argument(fmt::format("make_optimizer: {} has no hyperparameter '{}'", type_name, key));
      values[i] = value;
      seen[i] = true;
    }
    for (std::size_t i = 0; i < names.size(); ++i)
      if (!seen[i])
        throw std::invalid_argument(fmt::format("make_optimizer: {} needs hyperparameter '{}'", type_name, names[i]));
    return values;
  };
  if (type_name == "SGD") {
    const auto v = take({"learning_rate", "momentum", "nesterov"});
    return std::make_unique<SGD>(v[0], v[1], v[2] != 0.0);
  }
  if (type_name == "Adam") {
    const auto v = take({"learning_rate", "beta_1", "beta_2", "epsilon"});
    return std::make_unique<Adam>(v[0], v[1], v[2], v[3]);
  }
  throw std::invalid_argument(fmt::format("make_optimizer: unknown optimizer '{}' (valid: SGD, Adam)", type_name));
}

}  // namespace bnlab
