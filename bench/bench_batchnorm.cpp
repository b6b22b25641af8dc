// BatchNorm kernels (and, after them per shape, the group and layer normalization kernels)
// against the memory-bandwidth limit, measured in one run with one thread count.
//
// For every shape the run first times a copy of the tensor twice, with plain stores and with
// non-temporal (streaming) stores; the faster is the probe's floor. Each kernel then reports its
// time, its effective bandwidth over the minimum traffic (forward-training 3 tensor passes,
// inference 2, backward 5: read x and dy for the sums, read them again and write dx) and
// `vs_copy`, that bandwidth over the probe's. 1.0 means the kernel streams as fast as a copy.
//
//   build/bench/bench_batchnorm [--benchmark_filter=...]     (threads: OMP_NUM_THREADS / BNLAB_THREADS)

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bnlab/kernels/batchnorm.hpp"
#include "bnlab/kernels/group_norm.hpp"
#include "bnlab/system.hpp"
#include "bnlab/tensor.hpp"
#include "kernels/memory_probe.hpp"

namespace {

using bnlab::Layout;
using bnlab::kernels::BatchNormShape;
using bnlab::kernels::FusedActivation;

struct NamedShape {
  const char* name;
  BatchNormShape shape;
};

const NamedShape shapes[] = {
    {"256x64x56x56_NCHW", {256, 64, 56 * 56, Layout::NCHW}},
    {"256x64x56x56_NHWC", {256, 64, 56 * 56, Layout::NHWC}},
    {"64x256x28x28_NCHW", {64, 256, 28 * 28, Layout::NCHW}},
    {"4096x1024_NC", {4096, 1024, 1, Layout::NC}},
    {"32x300_NC", {32, 300, 1, Layout::NC}},
};

// Bytes per second of the probe's floor, per tensor size, filled by the copy benchmarks that run first.
std::map<std::int64_t, double>& probe_floor() {
  static std::map<std::int64_t, double> floor;
  return floor;
}

struct Buffers {
  bnlab::AlignedBuffer x, y, dy, dx, gamma, beta, mean, inv_std, var, dgamma, dbeta;
  explicit Buffers(const BatchNormShape& s)
      : x(bnlab::make_aligned_buffer(s.size())),
        y(bnlab::make_aligned_buffer(s.size())),
        dy(bnlab::make_aligned_buffer(s.size())),
        dx(bnlab::make_aligned_buffer(s.size())),
        gamma(bnlab::make_aligned_buffer(s.channels)),
        beta(bnlab::make_aligned_buffer(s.channels)),
        mean(bnlab::make_aligned_buffer(s.channels)),
        inv_std(bnlab::make_aligned_buffer(s.channels)),
        var(bnlab::make_aligned_buffer(s.channels)),
        dgamma(bnlab::make_aligned_buffer(s.channels)),
        dbeta(bnlab::make_aligned_buffer(s.channels)) {
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.5f, 2.0f);
    // Touch every page from the threads that will use it, as the kernels split the work.
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < s.size(); ++i) y[i] = dx[i] = 0.0f;
    for (std::int64_t i = 0; i < s.size(); ++i) {
      x[i] = normal(rng);
      dy[i] = normal(rng) * 0.1f;
    }
    for (std::int64_t c = 0; c < s.channels; ++c) {
      gamma[c] = 1.0f + 0.01f * static_cast<float>(c % 7);
      beta[c] = 0.1f;
      var[c] = 1.0f;
    }
  }
};

void report(benchmark::State& state, const BatchNormShape& s, int passes) {
  const double bytes = static_cast<double>(s.size()) * sizeof(float) * passes;
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
  state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  const auto it = probe_floor().find(s.size());
  if (it != probe_floor().end()) state.counters["copy_GB/s"] = it->second / 1e9;
  state.counters["threads"] = omp_get_max_threads();
}

void set_ratio(benchmark::State& state, const BatchNormShape& s, int passes, double seconds_per_iteration) {
  const auto it = probe_floor().find(s.size());
  if (it == probe_floor().end() || seconds_per_iteration <= 0) return;
  const double bandwidth = static_cast<double>(s.size()) * sizeof(float) * passes / seconds_per_iteration;
  state.counters["vs_copy"] = bandwidth / it->second;
}

// Times `body` per iteration with a wall clock (Google Benchmark's CPU time would count both threads).
template <class Body>
void run_timed(benchmark::State& state, const BatchNormShape& s, int passes, Body body) {
  double total = 0;
  for (auto _ : state) {
    const double start = omp_get_wtime();
    body();
    benchmark::ClobberMemory();
    const double elapsed = omp_get_wtime() - start;
    state.SetIterationTime(elapsed);
    total += elapsed;
  }
  report(state, s, passes);
  set_ratio(state, s, passes, total / static_cast<double>(state.iterations()));
}

void BM_copy(benchmark::State& state, NamedShape named, bool streaming) {
  const auto& s = named.shape;
  Buffers b(s);
  double total = 0;
  for (auto _ : state) {
    const double start = omp_get_wtime();
    if (streaming)
      bnlab::bench::copy_streaming(b.x.get(), b.y.get(), s.size());
    else
      bnlab::bench::copy_plain(b.x.get(), b.y.get(), s.size());
    benchmark::ClobberMemory();
    const double elapsed = omp_get_wtime() - start;
    state.SetIterationTime(elapsed);
    total += elapsed;
  }
  const double bandwidth =
      2.0 * static_cast<double>(s.size()) * sizeof(float) * static_cast<double>(state.iterations()) / total;
  auto& floor = probe_floor()[s.size()];
  floor = std::max(floor, bandwidth);
  report(state, s, 2);
}

void BM_forward_training(benchmark::State& state, NamedShape named, FusedActivation act) {
  const auto& s = named.shape;
  Buffers b(s);
  run_timed(state, s, 3, [&] {
    bnlab::kernels::batchnorm_forward_training(s, b.x.get(), b.gamma.get(), b.beta.get(), 1e-5f, b.y.get(),
                                               b.mean.get(), b.inv_std.get(), b.var.get(), act);
  });
}

void BM_forward_inference(benchmark::State& state, NamedShape named) {
  const auto& s = named.shape;
  Buffers b(s);
  run_timed(state, s, 2, [&] {
    bnlab::kernels::batchnorm_forward_inference(s, b.x.get(), b.mean.get(), b.var.get(), b.gamma.get(), b.beta.get(),
                                                1e-5f, b.y.get());
  });
}

void BM_backward(benchmark::State& state, NamedShape named, FusedActivation act) {
  const auto& s = named.shape;
  Buffers b(s);
  bnlab::kernels::batchnorm_forward_training(s, b.x.get(), b.gamma.get(), b.beta.get(), 1e-5f, b.y.get(), b.mean.get(),
                                             b.inv_std.get(), b.var.get());
  run_timed(state, s, 5, [&] {
    bnlab::kernels::batchnorm_backward(s, b.x.get(), b.dy.get(), b.gamma.get(), b.beta.get(), b.mean.get(),
                                       b.inv_std.get(), b.dx.get(), b.dgamma.get(), b.dbeta.get(), act);
  });
}

// The normalization family on the same tensors: group normalization (32 groups) on the image
// shapes, layer normalization (one group of all features) on NC. Minimum traffic as BatchNorm's:
// forward 3 passes, backward 5.
bnlab::kernels::GroupNormShape group_shape(const BatchNormShape& s) {
  return {s.batch, s.channels, s.spatial, s.layout, s.layout == Layout::NC ? 1 : 32};
}

void BM_group_norm_forward(benchmark::State& state, NamedShape named) {
  const auto& s = named.shape;
  Buffers b(s);
  const auto g = group_shape(s);
  auto mean = bnlab::make_aligned_buffer(g.batch * g.groups), inv_std = bnlab::make_aligned_buffer(g.batch * g.groups);
  run_timed(state, s, 3, [&] {
    bnlab::kernels::group_norm_forward(g, b.x.get(), b.gamma.get(), b.beta.get(), 1e-5f, b.y.get(), mean.get(),
                                       inv_std.get());
  });
}

void BM_group_norm_backward(benchmark::State& state, NamedShape named) {
  const auto& s = named.shape;
  Buffers b(s);
  const auto g = group_shape(s);
  auto mean = bnlab::make_aligned_buffer(g.batch * g.groups), inv_std = bnlab::make_aligned_buffer(g.batch * g.groups);
  bnlab::kernels::group_norm_forward(g, b.x.get(), b.gamma.get(), b.beta.get(), 1e-5f, b.y.get(), mean.get(),
                                     inv_std.get());
  run_timed(state, s, 5, [&] {
    bnlab::kernels::group_norm_backward(g, b.x.get(), b.dy.get(), b.gamma.get(), mean.get(), inv_std.get(), b.dx.get(),
                                        b.dgamma.get(), b.dbeta.get());
  });
}

void register_all() {
  for (const auto& named : shapes) {
    const std::string n = named.name;
    // fmt rather than std::string operator+: GCC 12 warns falsely (-Wrestrict) on the latter.
    auto name = [&](const char* op) { return fmt::format("{}/{}", op, n); };
    benchmark::RegisterBenchmark(name("copy_plain").c_str(), BM_copy, named, false)->UseManualTime();
    benchmark::RegisterBenchmark(name("copy_streaming").c_str(), BM_copy, named, true)->UseManualTime();
    benchmark::RegisterBenchmark(name("forward_training").c_str(), BM_forward_training, named, FusedActivation::none)
        ->UseManualTime();
    benchmark::RegisterBenchmark(name("forward_inference").c_str(), BM_forward_inference, named)->UseManualTime();
    benchmark::RegisterBenchmark(name("backward").c_str(), BM_backward, named, FusedActivation::none)->UseManualTime();
    benchmark::RegisterBenchmark(name("forward_training_relu").c_str(), BM_forward_training, named,
                                 FusedActivation::relu)
        ->UseManualTime();
    benchmark::RegisterBenchmark(name("backward_relu").c_str(), BM_backward, named, FusedActivation::relu)
        ->UseManualTime();
    const char* family = named.shape.layout == Layout::NC ? "layer_norm" : "group_norm32";
    benchmark::RegisterBenchmark(fmt::format("{}_forward/{}", family, n).c_str(), BM_group_norm_forward, named)
        ->UseManualTime();
    benchmark::RegisterBenchmark(fmt::format("{}_backward/{}", family, n).c_str(), BM_group_norm_backward, named)
        ->UseManualTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* env = std::getenv("BNLAB_THREADS")) omp_set_num_threads(std::atoi(env));
  benchmark::AddCustomContext("bnlab_system", bnlab::system_description());
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
