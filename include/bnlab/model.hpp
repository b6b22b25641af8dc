#pragma once
// WHAT THIS OBJECT REPRESENTS
//   A Keras-like Sequential model: an ordered list of layers, a loss (sparse categorical
//   cross-entropy, fused with a final softmax), the accuracy metric and an optimizer; with
//   summary(), fit(), evaluate(), predict() and save()/load().
// CONTRACT
//   add() layers, then build(input_shape, seed) once (per-sample shape, no batch dimension),
//   then compile(optimizer). fit() trains in training mode (batch statistics, dropout on);
//   evaluate() and predict() run in inference mode (moving statistics, dropout off).
//   Inputs x are tensors whose dimension 0 is the sample and whose remaining dimensions equal
//   the input shape; labels are class indices in [0, classes).
//   The loss needs logits: either the last layer ends in softmax (Layer::softmax_logits() is
//   set, and softmax and cross-entropy are fused) or CompileOptions::from_logits says the
//   model's outputs are logits. Anything else is refused with std::invalid_argument, since
//   cross-entropy of probabilities without the logits is neither stable nor what Keras fuses.
//   A training step allocates nothing after the first step of a fit() (batch buffers are
//   reused; layers reuse theirs while the batch size is unchanged).
//   Errors: std::invalid_argument / std::logic_error naming the argument or the missing step;
//   a non-finite training loss stops fit() with NonFiniteLossError; save()/load() throw
//   std::runtime_error naming the file. The file format is in docs/formats.md.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "bnlab/layers/layer.hpp"
#include "bnlab/optim.hpp"
#include "bnlab/tensor.hpp"

namespace bnlab {

// Keras's History.history: one entry per completed epoch; the val_ vectors stay empty when
// fit() had no validation data. loss and accuracy are the epoch's running means over samples,
// measured during training (before each step's update), as Keras reports them.
struct History {
  std::vector<double> loss;
  std::vector<double> accuracy;
  std::vector<double> val_loss;
  std::vector<double> val_accuracy;
  std::vector<double> seconds;  // wall time of the epoch including validation
  std::size_t epochs() const { return loss.size(); }
};

// Keras's verbose argument; automatic picks progress_bar when the stream is std::cout and
// stdout is a terminal, one_line_per_epoch otherwise.
enum class Verbosity { silent = 0, progress_bar = 1, one_line_per_epoch = 2, automatic = 3 };

// The thread_probe_interval that FitOptions (and experiments::StepTrainer) start with: 256 until
// set_default_thread_probe_interval() changes it for the whole process, as a thread count set
// with omp_set_num_threads() holds for every later call. Negative values are refused
// (std::invalid_argument).
std::int64_t default_thread_probe_interval();
void set_default_thread_probe_interval(std::int64_t steps);

struct FitOptions {
  int epochs = 1;
  std::int64_t batch_size = 32;
  // Validation data, evaluated in inference mode after every epoch; leave x undefined for none.
  Tensor validation_x;
  std::span<const std::int32_t> validation_y;
  bool shuffle = true;
  // Each epoch's shuffle depends only on (seed, its key). Epoch e of a call with initial_epoch
  // = e0 > 0 has the key e, so a run resumed with initial_epoch = e from a checkpoint saved after
  // epoch e sees the same batches as the uninterrupted run. A call with initial_epoch = 0
  // continues after the last key this model's earlier fit calls used (none: 0), so fit with
  // epochs = 1 called in a loop shuffles anew every time, as Keras does, in the orders of one
  // call with epochs = n. (A model made by load() starts again from key 0.)
  std::uint64_t seed = 0;
  int initial_epoch = 0;  // epochs run are initial_epoch .. epochs-1, printed "Epoch e+1/epochs"
  Verbosity verbose = Verbosity::automatic;
  // Called after each epoch with its zero-based index and the history so far; return false to
  // stop training (the history returned then ends with that epoch).
  std::function<bool(int epoch, const History& history)> on_epoch_end;
  // With more than one OpenMP thread configured, fit times `window` (16) steps on one thread
  // after this many steps, keeps whichever count ran faster (by more than 5%), and compares again,
  // twice as late while the choice holds (at most 16x), as soon again after it changes. On a
  // shared host the second core is at times slower than none (docs/performance.md, "Thread
  // count"). The bits of every result are the same for every thread count, so the choice changes
  // only the time. 0: always the configured count. The default is 256, or what
  // set_default_thread_probe_interval() last set (the CLI's --thread-probe-interval).
  std::int64_t thread_probe_interval = default_thread_probe_interval();
};

struct CompileOptions {
  // The model's outputs are logits (no final softmax); the loss applies the softmax itself.
  bool from_logits = false;
};

struct EvaluateResult {
  double loss = 0.0;
  double accuracy = 0.0;
};

// Thrown by fit() when a batch's loss is NaN or infinite. The weights and the optimizer's state
// get no update from that batch; the forward pass has already run in training mode, so layer
// state it keeps (BatchNormalization's moving statistics, Dropout's mask stream) has taken the
// batch in, as in Keras, where TerminateOnNaN stops after the step: a batch with NaN inputs
// leaves NaN moving statistics, and the model should be reloaded from its last good save.
class NonFiniteLossError : public std::runtime_error {
public:
  NonFiniteLossError(int epoch, std::int64_t step, double loss, History history);
  int epoch() const { return epoch_; }              // zero-based
  std::int64_t step() const { return step_; }       // zero-based within the epoch
  double loss() const { return loss_; }
  const History& history() const { return history_; }  // completed epochs only

private:
  int epoch_;
  std::int64_t step_;
  double loss_;
  History history_;
};

// Rebuilds a layer from its saved type name and config (bnlab::make_layer has this signature).
using LayerFactory = std::function<std::unique_ptr<Layer>(const std::string& type_name, const LayerConfig& config)>;

// Keras's automatic layer name base: the class name in snake case ("LeakyReLU" -> "leaky_re_lu",
// "BatchNormalization" -> "batch_normalization", "MaxPooling2D" -> "max_pooling2d").
std::string to_snake_case(const std::string& class_name);

class Sequential {
public:
  explicit Sequential(std::string name = "sequential");
  Sequential(Sequential&&) noexcept;
  Sequential& operator=(Sequential&&) noexcept;
  ~Sequential();

  // Appends a layer. A layer without a name gets Keras's automatic one, unique within this
  // model ("dense", "dense_1", ...); a given name must not repeat. Throws after build().
  Layer& add(std::unique_ptr<Layer> layer);
  // Builds every layer in order from the per-sample input shape, drawing initial weights from
  // one generator seeded with seed.
  void build(const Shape& input_shape, std::uint64_t seed);

  const std::string& name() const { return name_; }
  bool built() const { return built_; }
  std::size_t size() const { return layers_.size(); }
  Layer& layer(std::size_t i);
  const Layer& layer(std::size_t i) const;
  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const;

  std::vector<Parameter*> parameters();            // every layer's, in layer order
  std::vector<Parameter*> trainable_parameters();  // the optimizer's list
  std::int64_t count_params() const;
  std::int64_t count_trainable_params() const;
  std::int64_t count_non_trainable_params() const;

  // Keras 2's model.summary() text, every line ending in '\n'.
  std::string summary() const;
  void summary(std::ostream& out) const;

  // Sets the optimizer (built here for the trainable parameters) and the loss options.
  // Requires build().
  void compile(std::unique_ptr<Optimizer> optimizer, const CompileOptions& options = {});
  bool compiled() const { return optimizer_ != nullptr; }
  Optimizer& optimizer();
  const Optimizer& optimizer() const;
  const CompileOptions& compile_options() const { return compile_options_; }

  History fit(const Tensor& x, std::span<const std::int32_t> y, const FitOptions& options, std::ostream& out);
  History fit(const Tensor& x, std::span<const std::int32_t> y, const FitOptions& options = {});
  // The loss fit(), evaluate() and compute_gradients() report and minimize is, as Keras's, the
  // mean cross-entropy of the batch (of all samples for evaluate) plus regularization_loss().

  // One training-mode forward and backward on (x, y) without an update: writes every trainable
  // parameter's grad (of the batch-mean loss plus the regularizers' penalty) and returns that
  // loss. What fit() does per step before the optimizer; for gradient checks and custom loops.
  // Training mode also moves BatchNormalization's moving statistics, as a real step would.
  double compute_gradients(const Tensor& x, std::span<const std::int32_t> y);
  EvaluateResult evaluate(const Tensor& x, std::span<const std::int32_t> y, std::int64_t batch_size = 32);
  // Keras's sum(model.losses): the penalty of every regularizer set on a trainable parameter
  // (Layer::set_regularizer), at the current weights; 0 without regularizers.
  double regularization_loss();
  // The model's outputs in inference mode, shape (N, *last layer's output shape), as Keras's
  // predict: a model compiled with from_logits returns its logits (apply kernels::softmax_forward
  // for probabilities). Needs a built model, not a compiled one.
  Tensor predict(const Tensor& x, std::int64_t batch_size = 32);

  // The whole model: architecture, every parameter (moving statistics included), compile
  // options and optimizer state. Written atomically: PATH.tmp.XXXXXX in the same directory,
  // fsync, rename; on failure the temporary is removed and an existing PATH is untouched. A
  // symbolic link at PATH is followed (the file it names is replaced, beside which the
  // temporary goes); a PATH that is a directory, device, FIFO or socket is refused.
  void save(const std::string& path) const;
  // Layers are rebuilt by bnlab::make_layer, or by the given factory.
  static Sequential load(const std::string& path);
  static Sequential load(const std::string& path, const LayerFactory& factory);
  // The bytes save() writes, for a file that carries a model inside (a training checkpoint).
  std::string to_bytes() const;
  // load() from bytes already in memory (what load(path) does after reading the file); name
  // stands for the file in the messages ("load '<name>': ..."). Also the fuzz target's entry.
  static Sequential load_from_buffer(std::string_view bytes, const std::string& name);
  static Sequential load_from_buffer(std::string_view bytes, const std::string& name, const LayerFactory& factory);

private:
  struct TrainBuffers;
  void check_built(const char* who) const;
  void check_compiled(const char* who) const;
  void check_loss_setup(const char* who) const;
  void check_inputs(const char* who, const Tensor& x, std::span<const std::int32_t> y, bool need_labels) const;
  const Tensor& forward(const Tensor& x, bool training);
  const Tensor& logits_of_last_forward() const;
  void backward_from_logits(const Tensor& dlogits);
  // The regularizers' penalty at the current weights, and its gradient added to the parameters'
  // grads (after backward, which writes them, and before the optimizer).
  double regularization_loss_at_current_weights() const;
  void add_regularization_gradients();

  std::string name_;
  std::vector<std::unique_ptr<Layer>> layers_;
  Shape input_shape_;
  bool built_ = false;
  std::unique_ptr<Optimizer> optimizer_;
  CompileOptions compile_options_;
  std::vector<Parameter*> trainable_;
  std::vector<const Layer*> trainable_owner_;  // the layer of each trainable_ entry (its regularizers)
  // The first layer with trainable parameters (layers_.size() when none): backward stops there,
  // and that layer computes no input gradient (build() tells it).
  std::size_t first_trained_layer_ = 0;
  std::unique_ptr<TrainBuffers> buffers_;
  int next_shuffle_key_ = 0;  // one past the last epoch's shuffle key fit used (FitOptions::seed)
};

}  // namespace bnlab
