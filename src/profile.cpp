#include "bnlab/profile.hpp"

namespace bnlab::profile {
namespace {

std::atomic<bool> on{false};
// Nanoseconds and calls per section; atomics because kernels may be entered from any thread.
std::array<std::atomic<std::int64_t>, section_count> nanoseconds{};
std::array<std::atomic<std::int64_t>, section_count> call_counts{};

}  // namespace

void set_enabled(bool value) { on.store(value, std::memory_order_relaxed); }
bool enabled() { return on.load(std::memory_order_relaxed); }

void reset() {
  for (int i = 0; i < section_count; ++i) {
    nanoseconds[i].store(0);
    call_counts[i].store(0);
  }
}

Totals totals() {
  Totals t;
  for (int i = 0; i < section_count; ++i) {
    t.seconds[i] = static_cast<double>(nanoseconds[i].load()) * 1e-9;
    t.calls[i] = call_counts[i].load();
  }
  return t;
}

void add(Section section, double seconds) {
  const int i = static_cast<int>(section);
  nanoseconds[i].fetch_add(static_cast<std::int64_t>(seconds * 1e9), std::memory_order_relaxed);
  call_counts[i].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace bnlab::profile
