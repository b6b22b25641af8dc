// bnlab: the command-line tool. Thin glue over the library; each subcommand is its own file.

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "bnlab/model.hpp"
#include "command.hpp"
#include "options.hpp"

namespace bnlab::cli {

std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}

}  // namespace bnlab::cli

int main(int argc, char** argv) {
  using namespace bnlab::cli;
  CLI::App app{"bnlab: batch normalization kernels, a Keras-like training stack, and the seeds' experiments"};
  app.require_subcommand(1);
  // CLI11's parse errors get the same prefix as the library's errors below, so a script (or a
  // person) sees one error format whatever went wrong.
  app.failure_message([](const CLI::App* failed, const CLI::Error& error) {
    return "bnlab: error: " + CLI::FailureMessage::simple(failed, error);
  });
  int threads = 0;
  app.add_option("--threads", threads,
                 "OpenMP threads for kernels and GEMM (default: $BNLAB_THREADS, else OMP_NUM_THREADS, else all cores)")
      ->check(signed_decimal())
      ->check(CLI::Range(1, 1024));
  std::int64_t thread_probe_interval = bnlab::default_thread_probe_interval();
  app.add_option("--thread-probe-interval", thread_probe_interval,
                 "training: time a few steps on one thread after this many and keep the faster thread count "
                 "(results are the same bits either way); 0: always --threads")
      ->check(at_least(0))
      ->capture_default_str();

  auto& all = commands();
  std::sort(all.begin(), all.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  for (const auto& command : all) command.setup(*app.add_subcommand(command.name, command.description));

  app.parse_complete_callback([&] {
    if (threads == 0) {
      if (const char* env = std::getenv("BNLAB_THREADS")) {
        char* end = nullptr;
        const long value = std::strtol(env, &end, 10);
        if (end == env || *end != '\0' || value < 1 || value > 1024)
          throw CLI::ValidationError("BNLAB_THREADS",
                                     std::string("must be an integer in [1, 1024], got '") + env + "'");
        threads = static_cast<int>(value);
      }
    }
    if (threads > 0) omp_set_num_threads(threads);
    bnlab::set_default_thread_probe_interval(thread_probe_interval);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : bad_input_status;
  } catch (const std::exception& e) {
    std::cerr << "bnlab: error: " << e.what() << "\n";
    return bad_input_status;
  }
  return 0;
}
