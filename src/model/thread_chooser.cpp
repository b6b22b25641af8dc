#include "model/thread_chooser.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "bnlab/model.hpp"
#include "bnlab/profile.hpp"

namespace bnlab::detail {
namespace {

// The median of n <= window step times (the upper middle one for even n): one step that met a
// page fault or a preempted core moves it little.
double median(std::array<double, ThreadChooser::window> times, int n) {
  auto middle = times.begin() + n / 2;
  std::nth_element(times.begin(), middle, times.begin() + n);
  return *middle;
}

}  // namespace

ThreadChooser::ThreadChooser(int configured, std::int64_t interval)
    : requested_interval_(interval),
      configured_(std::max(1, configured)),
      current_(configured_),
      // Capped so that doubling it can never overflow; no fit runs 2^40 steps.
      base_interval_(configured_ > 1 ? std::clamp<std::int64_t>(interval, 0, std::int64_t{1} << 40) : 0),
      interval_(base_interval_) {}

void ThreadChooser::prepare(int configured, std::int64_t interval) {
  if (std::max(1, configured) != configured_ || interval != requested_interval_)
    *this = ThreadChooser(configured, interval);
}

void ThreadChooser::record(double seconds, bool sample) {
  if (threads() < configured_ && profile::enabled()) profile::add(profile::Section::one_thread_steps, seconds);
  if (base_interval_ == 0 || !sample) return;
  if (trial_) {
    trial_times_[static_cast<std::size_t>(trial_count_++)] = seconds;
    if (trial_count_ == window) decide();
    return;
  }
  recent_[static_cast<std::size_t>(recent_next_)] = seconds;
  recent_next_ = (recent_next_ + 1) % window;
  recent_count_ = std::min(window, recent_count_ + 1);
  // The window holds only steps since the last decision, on the count chosen then.
  if (++since_decision_ >= interval_ && recent_count_ == window) {
    trial_ = true;
    trial_count_ = 0;
  }
}

void ThreadChooser::decide() {
  trial_ = false;
  since_decision_ = 0;
  const bool switch_count = median(trial_times_, window) < required_gain * median(recent_, recent_count_);
  recent_count_ = 0;
  recent_next_ = 0;
  if (switch_count) {
    current_ = other();
    interval_ = base_interval_;
  } else {
    // The choice held: compare less often, so that a steady phase costs little.
    interval_ = std::min(interval_ * 2, base_interval_ * longest_interval);
  }
}

ThreadCountScope::ThreadCountScope() : configured_(omp_get_max_threads()), in_use_(configured_) {}

ThreadCountScope::~ThreadCountScope() {
  if (in_use_ != configured_) omp_set_num_threads(configured_);
}

void ThreadCountScope::adopt(int threads) {
  configured_ = threads;
  in_use_ = threads;
}

void ThreadCountScope::use(int threads) {
  if (threads == in_use_) return;
  omp_set_num_threads(threads);
  in_use_ = threads;
}

}  // namespace bnlab::detail

namespace bnlab {
namespace {

std::atomic<std::int64_t> thread_probe_interval_default{256};

}  // namespace

std::int64_t default_thread_probe_interval() { return thread_probe_interval_default.load(std::memory_order_relaxed); }

void set_default_thread_probe_interval(std::int64_t steps) {
  if (steps < 0)
    throw std::invalid_argument(
        fmt::format("thread_probe_interval is {}, must be >= 0 (0: always the configured thread count)", steps));
  thread_probe_interval_default.store(steps, std::memory_order_relaxed);
}

}  // namespace bnlab
