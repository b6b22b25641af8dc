// bnlab: the command-line tool. Thin glue over the library; each subcommand is its own file.

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

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
        // The same spelling as --threads: plain decimal digits.
        const std::string text = env;
        const long value = is_plain_decimal(text, false) && text.size() <= 4 ? std::stol(text) : 0;
        if (value < 1 || value > 1024)
          throw CLI::ValidationError("BNLAB_THREADS", "must be an integer in [1, 1024], got '" + text + "'");
        threads = static_cast<int>(value);
      }
    }
    // OMP_NUM_THREADS is libgomp's to read; past about 10^4 threads its parallel regions crash
    // or fail to start, so hold it to the same limit as --threads.
    if (threads == 0 && std::getenv("OMP_NUM_THREADS") != nullptr && omp_get_max_threads() > 1024)
      throw CLI::ValidationError("OMP_NUM_THREADS", "gives " + std::to_string(omp_get_max_threads()) +
                                                        " threads, more than 1024; use --threads N or BNLAB_THREADS");
    if (threads > 0) omp_set_num_threads(threads);
    bnlab::set_default_thread_probe_interval(thread_probe_interval);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports "A subcommand is required" for `bnlab bogus`; name the word it did not know.
    const auto extra = app.remaining();
    const bool no_command = dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && app.get_subcommands().empty();
    if (no_command && !extra.empty() && !extra.front().starts_with("-")) {
      std::string valid;
      for (const auto& command : all) valid += (valid.empty() ? "" : ", ") + command.name;
      std::cerr << "bnlab: error: unknown command '" << extra.front() << "' (valid: " << valid << ")\n";
      return bad_input_status;
    }
    const int status = app.exit(e);
    return status == 0 ? 0 : bad_input_status;
  } catch (const std::exception& e) {
    std::cerr << "bnlab: error: " << e.what() << "\n";
    return bad_input_status;
  }
  return 0;
}
