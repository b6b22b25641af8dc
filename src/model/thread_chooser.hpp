#pragma once
// Private to src (fit() and the experiments' StepTrainer): how training chooses, while it runs,
// between the configured OpenMP thread count and one thread.
//
// Why: this project's machines are guests on shared hosts, and for minutes at a time the second
// core is worth less than nothing to a small model. In those phases the seed MLP's epoch on two
// threads took 0.54-0.58 s where one thread took 0.40-0.42 s (and two threads 0.26-0.28 s in the
// other minutes): the single-threaded parts of a step (the BatchNorm calls, the loss, the
// bias passes) ran up to 4x slower beside a second thread that only waited for the next
// parallel region. The host gives no sign of these phases (no steal time), so fit measures:
// every so often it times a few steps on the other thread count and keeps the faster. The order
// of every reduction is fixed by the shape, never by the thread count (threads only share out
// independent elements, rows, channels and GEMM tiles), so the bits do not change.

#include <array>
#include <cstdint>

namespace bnlab::detail {

class ThreadChooser {
 public:
  static constexpr int window = 16;              // steps timed on each side of a comparison
  static constexpr int longest_interval = 16;    // the interval doubles up to this many times the first
  static constexpr double required_gain = 0.95;  // the other count must be more than 5% faster

  // configured: the thread count fit was called with; interval: steps between comparisons, in
  // effect at least `window` (0, or a configured count of 1: never compare, always the configured
  // count).
  ThreadChooser(int configured, std::int64_t interval);
  // Keeps this chooser's state when it was made with these arguments, else starts afresh (fit
  // keeps its chooser from one call to the next, so a caller that runs fit an epoch at a time
  // keeps its choice).
  void prepare(int configured, std::int64_t interval);

  // The thread count for the next step.
  int threads() const { return trial_ ? other() : current_; }
  // The step just run (with threads()) took `seconds`; `sample`: a step like the others (not an
  // epoch's short last one). Steps on one thread, while more are configured, also go into the
  // profile (profile::Section::one_thread_steps).
  void record(double seconds, bool sample = true);

 private:
  int other() const { return current_ == 1 ? configured_ : 1; }
  void decide();

  std::int64_t requested_interval_;  // as given: base_interval_ is clamped, and 0 for one thread
  int configured_;
  int current_;
  std::int64_t base_interval_, interval_, since_decision_ = 0;
  bool trial_ = false;
  std::array<double, window> recent_{};  // the last steps on current_ since the last decision, a ring
  int recent_count_ = 0, recent_next_ = 0;
  std::array<double, window> trial_times_{};
  int trial_count_ = 0;
};

// Sets the calling thread's OpenMP thread count for fit's steps and restores the count fit was
// called with when it returns or throws.
class ThreadCountScope {
 public:
  ThreadCountScope();
  ~ThreadCountScope();
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;
  int configured() const { return configured_; }
  void use(int threads);
  // The caller changed the thread count to `threads` (fit's on_epoch_end): from now on it is the
  // configured count, and it stays set when fit returns, as it would without the chooser.
  void adopt(int threads);

 private:
  int configured_, in_use_;
};

}  // namespace bnlab::detail
