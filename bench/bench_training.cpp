// One training epoch of a seed 003 model on the real Fashion-MNIST (batch 32, SGD lr 1e-3,
// 55,000 examples, 1,719 steps), with the step's time split into GEMM, BatchNorm and the rest
// (and, on the human-readable line, the rest's optimizer update and batch gather).
//
//   build/bench/bench_training [--model bn] [--epochs 1] [--threads N] [--data-dir DIR]
// Prints one machine-readable line per epoch: `epoch <model> <seconds> <gemm_s> <bn_s> <rest_s> <steps>`.

#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <string_view>

#include "bnlab/data/fashion_mnist.hpp"
#include "bnlab/model.hpp"
#include "bnlab/models.hpp"
#include "bnlab/optim.hpp"
#include "bnlab/profile.hpp"
#include "bnlab/system.hpp"

int main(int argc, char** argv) {
  std::string model_name = "bn", data_dir(bnlab::data::default_fashion_mnist_dir);
  int epochs = 1;
  std::int64_t thread_probe_interval = bnlab::FitOptions{}.thread_probe_interval;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "bench_training: {} needs a value\n", arg);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--model")
      model_name = value();
    else if (arg == "--epochs")
      epochs = std::atoi(value().c_str());
    else if (arg == "--threads")
      omp_set_num_threads(std::atoi(value().c_str()));
    else if (arg == "--thread-probe-interval")  // 0: always --threads (fit's thread_probe_interval)
      thread_probe_interval = std::atoll(value().c_str());
    else if (arg == "--data-dir")
      data_dir = value();
    else {
      fmt::print(stderr, "bench_training: unknown argument {}\n", arg);
      return 2;
    }
  }
  if (const char* env = std::getenv("BNLAB_THREADS")) omp_set_num_threads(std::atoi(env));
  fmt::print("{}\n", bnlab::system_description());

  const auto data = bnlab::data::load_fashion_mnist(data_dir);
  const auto split = bnlab::data::split_validation(data.train, 5000);
  auto model = bnlab::make_seed_model(model_name, 42);
  model.compile(std::make_unique<bnlab::SGD>(1e-3));

  for (int e = 0; e < epochs; ++e) {
    bnlab::FitOptions options;
    options.epochs = e + 1;
    options.initial_epoch = e;
    options.batch_size = 32;
    options.seed = 42;
    options.verbose = bnlab::Verbosity::silent;
    options.thread_probe_interval = thread_probe_interval;
    bnlab::profile::reset();
    bnlab::profile::set_enabled(true);
    const auto start = std::chrono::steady_clock::now();
    const auto history = model.fit(split.train.images, split.train.labels, options);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bnlab::profile::set_enabled(false);
    const auto t = bnlab::profile::totals();
    const auto seconds_in = [&t](bnlab::profile::Section s) { return t.seconds[static_cast<int>(s)]; };
    const double gemm = seconds_in(bnlab::profile::Section::gemm), bn = seconds_in(bnlab::profile::Section::batchnorm);
    const double optimizer = seconds_in(bnlab::profile::Section::optimizer);
    const double gather = seconds_in(bnlab::profile::Section::batch);
    const std::int64_t one_thread_steps = t.calls[static_cast<int>(bnlab::profile::Section::one_thread_steps)];
    const std::int64_t steps = (split.train.size() + 31) / 32;
    fmt::print("epoch {} {:.4f} {:.4f} {:.4f} {:.4f} {} {}\n", model_name, seconds, gemm, bn, seconds - gemm - bn,
               steps, one_thread_steps);
    fmt::print(
        "  {} epoch {}: {:.3f} s ({:.1f} us/step): GEMM {:.3f} s ({:.0f}%), BatchNorm {:.3f} s ({:.0f}%), "
        "optimizer {:.3f} s, batch gather {:.3f} s, rest {:.3f} s; {} steps on one thread; loss {:.4f} accuracy "
        "{:.4f}\n",
        model_name, e + 1, seconds, seconds / steps * 1e6, gemm, 100 * gemm / seconds, bn, 100 * bn / seconds,
        optimizer, gather, seconds - gemm - bn - optimizer - gather, one_thread_steps, history.loss.back(),
        history.accuracy.back());
  }
  return 0;
}
