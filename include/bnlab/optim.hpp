#pragma once
// WHAT THIS OBJECT REPRESENTS
//   A first-order optimizer with Keras's (tf.keras.optimizers, TF 2.x) update rules. It owns
//   its state: per trainable parameter zero or more "slots" (SGD's momentum accumulator,
//   Adam's m and v) and the iteration count, all of which save/load carries so that a
//   resumed run continues bit for bit.
// CONTRACT
//   build(params) is called once with the model's trainable parameters in a fixed order; it
//   creates zeroed slots shaped like each parameter. apply(params) then takes the same list
//   (same order, same shapes), reads every grad and updates every value in place, and
//   increments iterations(). No allocation in apply().
//   Hyperparameters are checked at construction: std::invalid_argument names the argument.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bnlab/layers/layer.hpp"
#include "bnlab/tensor.hpp"

namespace bnlab {

// Everything an optimizer needs to be rebuilt exactly: its hyperparameters by name, the
// iteration count and the slots, parameter-major: slots[p * slot_names.size() + k] is slot k of
// trainable parameter p.
struct OptimizerState {
  std::string type_name;                                       // "SGD", "Adam"
  std::vector<std::pair<std::string, double>> hyperparameters; // e.g. {"learning_rate", 0.001}
  std::int64_t iterations = 0;
  std::vector<std::string> slot_names;                         // e.g. {"m", "v"}
  std::vector<Tensor> slots;
};

class Optimizer {
public:
  virtual ~Optimizer() = default;

  virtual std::string type_name() const = 0;
  virtual std::vector<std::pair<std::string, double>> hyperparameters() const = 0;
  virtual std::vector<std::string> slot_names() const = 0;

  // Creates zeroed slots for params (each must be trainable with a defined grad) and resets the
  // iteration count.
  void build(const std::vector<Parameter*>& params);
  bool built() const { return built_; }
  // One update of every parameter from its grad. Throws std::logic_error before build() and
  // std::invalid_argument if params does not match the list given to build().
  void apply(const std::vector<Parameter*>& params);

  std::int64_t iterations() const { return iterations_; }
  const std::vector<Tensor>& slots() const { return slots_; }

  // A deep copy of the state (slots cloned), and its inverse. set_state checks that the type,
  // slot names, slot count and shapes match this optimizer, which must be built; hyperparameters come
  // from the state's creator (make_optimizer), not from here.
  OptimizerState state() const;
  void set_state(const OptimizerState& state);

protected:
  // Updates one parameter; slot points to its slot_names().size() slots.
  virtual void update(Parameter& param, Tensor* slot, std::int64_t iteration) = 0;

private:
  bool built_ = false;
  std::int64_t iterations_ = 0;
  std::vector<Tensor> slots_;
  std::vector<std::vector<std::int64_t>> shapes_;
  std::size_t slots_per_parameter_ = 0;  // slot_names().size(), which apply() must not rebuild per step
};

// Keras SGD: without momentum  w -= lr * g;
// with momentum                v = momentum * v - lr * g;  w += v
// and Nesterov                 v = momentum * v - lr * g;  w += momentum * v - lr * g.
// learning_rate > 0 and finite; momentum in [0, 1).
class SGD final : public Optimizer {
public:
  explicit SGD(double learning_rate = 0.01, double momentum = 0.0, bool nesterov = false);
  std::string type_name() const override { return "SGD"; }
  std::vector<std::pair<std::string, double>> hyperparameters() const override;
  std::vector<std::string> slot_names() const override;

  double learning_rate() const { return learning_rate_; }
  double momentum() const { return momentum_; }
  bool nesterov() const { return nesterov_; }

protected:
  void update(Parameter& param, Tensor* slot, std::int64_t iteration) override;

private:
  double learning_rate_;
  double momentum_;
  bool nesterov_;
};

// Keras Adam (epsilon added to sqrt(v), the bias correction folded into the step size):
//   t = iterations + 1;  lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
//   m += (g - m) * (1 - beta_1);  v += (g^2 - v) * (1 - beta_2);  w -= lr_t * m / (sqrt(v) + epsilon)
// learning_rate > 0 and finite; beta_1, beta_2 in [0, 1); epsilon > 0 and finite.
class Adam final : public Optimizer {
public:
  explicit Adam(double learning_rate = 1e-3, double beta_1 = 0.9, double beta_2 = 0.999,
                double epsilon = 1e-7);
  std::string type_name() const override { return "Adam"; }
  std::vector<std::pair<std::string, double>> hyperparameters() const override;
  std::vector<std::string> slot_names() const override { return {"m", "v"}; }

  double learning_rate() const { return learning_rate_; }
  double beta_1() const { return beta_1_; }
  double beta_2() const { return beta_2_; }
  double epsilon() const { return epsilon_; }

protected:
  void update(Parameter& param, Tensor* slot, std::int64_t iteration) override;

private:
  double learning_rate_;
  double beta_1_;
  double beta_2_;
  double epsilon_;
};

// Rebuilds an optimizer from a type name and hyperparameters (as in OptimizerState); throws
// std::invalid_argument for an unknown type or a missing/unknown hyperparameter.
std::unique_ptr<Optimizer> make_optimizer(const std::string& type_name,
                                          const std::vector<std::pair<std::string, double>>& hyperparameters);

}  // namespace bnlab
