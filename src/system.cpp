#include "bnlab/system.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <fstream>
#include <thread>

#include "bnlab/model.hpp"
#include "kernels/batchnorm_loops.hpp"

namespace bnlab {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

std::string kernel_instruction_set() { return kernels::loops::selected_instruction_set(); }

int thread_count() { return omp_get_max_threads(); }

std::string system_description() {
  return fmt::format("CPU: {} ({} logical cores); kernels: {}; threads: {}", cpu_model(),
                     std::thread::hardware_concurrency(), kernel_instruction_set(), thread_count());
}

std::string training_threads_description() {
  const int threads = thread_count();
  const std::int64_t interval = default_thread_probe_interval();
  if (threads == 1 || interval == 0) return fmt::format("training threads: {} (fixed)", threads);
  return fmt::format("training threads: up to {}, one where timed faster (every {} steps)", threads, interval);
}

}  // namespace bnlab
