#pragma once
// Where a training step's time goes: wall time spent inside the GEMM and BatchNorm kernels, in
// the optimizer's update and in gathering each batch (Sequential::fit), accumulated while
// profiling is on (off by default; then a scope costs one relaxed load). Kernel entry points
// and fit open a Scope; nested scopes of the same section are not expected.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace bnlab::profile {

// gemm and batchnorm: inside the kernels; optimizer: the update of every trainable array; batch:
// gathering a step's examples (fit); one_thread_steps: whole steps that fit (or an experiment's
// StepTrainer) ran on one thread although more were configured (its calls count the steps; see
// FitOptions::thread_probe_interval).
enum class Section : int { gemm = 0, batchnorm = 1, optimizer = 2, batch = 3, one_thread_steps = 4 };
inline constexpr int section_count = 5;

struct Totals {
  std::array<double, section_count> seconds{};
  std::array<std::int64_t, section_count> calls{};
};

void set_enabled(bool on);
bool enabled();
void reset();
Totals totals();
void add(Section section, double seconds);

class Scope {
 public:
  explicit Scope(Section section) : section_(section), active_(enabled()) {
    if (active_) start_ = std::chrono::steady_clock::now();
  }
  ~Scope() {
    if (active_) add(section_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Section section_;
  bool active_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace bnlab::profile
