// bnlab's side of the peer comparison (scripts/bench_peers.sh): the BatchNorm kernels of
// include/bnlab/kernels/batchnorm.hpp on the shared shapes, timed by the rule in peer_common.hpp,
// plus the memory-copy probe on the same tensor size so the table can show each kernel against
// what the machine can stream.
//
//   bnlab_batchnorm [--threads N] [--quick] ...      (see peer_common.hpp)
//
// Lines: "bnlab <op> <shape> <ms> copy_plain=<ms> copy_streaming=<ms>" (a copy moves 2 tensor
// passes), "# check ..." and "# bandwidth ..." comments (what the merged table shows, for reading
// the raw output).

#include <omp.h>

#include <cstdio>
#include <exception>
#include <vector>

#include "bnlab/system.hpp"
#include "bnlab/tensor.hpp"
#include "kernels/memory_probe.hpp"
#include "bnlab_calls.hpp"
#include "peer_common.hpp"

namespace {

using bnlab::AlignedBuffer;
using bnlab::make_aligned_buffer;
using bnlab::kernels::BatchNormShape;
using bnlab::kernels::FusedActivation;

// Minimum traffic per operation in tensor passes (docs/batchnorm.md): forward in training reads
// x for the statistics, reads it again and writes y; inference reads x and writes y; backward
// reads x and dy for the sums, reads them again and writes dx. The fused ReLU adds no pass.
struct Operation {
  const char* name;
  int passes;
};

void run_shape(const peers::PeerShape& ps, const peers::Options& o) {
  const BatchNormShape s = peers::to_bnlab(ps);
  const std::int64_t n = s.size(), c = s.channels;
  AlignedBuffer x = make_aligned_buffer(n), y = make_aligned_buffer(n), dy = make_aligned_buffer(n),
                dx = make_aligned_buffer(n), probe_out = make_aligned_buffer(n);
  AlignedBuffer gamma = make_aligned_buffer(c), beta = make_aligned_buffer(c), mean = make_aligned_buffer(c),
                inv_std = make_aligned_buffer(c), variance = make_aligned_buffer(c),
                moving_mean = make_aligned_buffer(c), moving_variance = make_aligned_buffer(c),
                dgamma = make_aligned_buffer(c), dbeta = make_aligned_buffer(c);
  peers::fill_input(x.get(), n);
  peers::fill_gradient(dy.get(), n);
  peers::fill_zero(y.get(), n);
  peers::fill_zero(dx.get(), n);
  for (std::int64_t k = 0; k < c; ++k) {
    gamma[k] = peers::gamma_value(k);
    beta[k] = peers::beta_value;
    moving_mean[k] = peers::inference_mean;
    moving_variance[k] = peers::inference_variance;
  }
  const double bytes_per_pass = static_cast<double>(n) * sizeof(float);

  // The probe: the faster of a plain and a streaming copy of x (into a buffer of its own, so no
  // output is overwritten) is the floor the kernels are held to, timed beside each operation
  // (peer_common.hpp's time_paired).
  auto plain = [&] { bnlab::bench::copy_plain(x.get(), probe_out.get(), n); };
  auto streaming = [&] { bnlab::bench::copy_streaming(x.get(), probe_out.get(), n); };
  auto report = [&](const Operation& op, const peers::PairedTiming& t) {
    peers::print_result("bnlab", op.name, ps, t);
    const double copy_gbps = 2 * bytes_per_pass / (std::min(t.plain_ms, t.streaming_ms) * 1e6);
    const double gbps = op.passes * bytes_per_pass / (t.ms * 1e6);
    std::printf("# bandwidth bnlab %s %s: %.2f GB/s over %d passes, copy %.2f GB/s beside it, %.2f of the probe\n",
                op.name, ps.name, gbps, op.passes, copy_gbps, gbps / copy_gbps);
  };
  const std::function<void()> evict = peers::cold_cache_for(o, ps) ? bnlab::bench::evict_caches : nullptr;
  auto timed = [&](auto&& body) { return peers::time_paired(o, body, plain, streaming, evict); };

  // A read-only pass beside the copies, for the reader: on this host reading a tensor costs about
  // two thirds of copying it, so a kernel that reads twice and writes once (forward training,
  // without cache reuse) cannot reach the copy's bandwidth over its 3 passes.
  volatile float read_sink = 0.0f;
  const std::vector<double> probe_ms = peers::time_in_turns(
      o, {plain, streaming, [&] { read_sink = read_sink + bnlab::bench::read_pass(x.get(), n); }}, evict);
  std::printf("# bandwidth probe %s: copy %.2f GB/s (plain %.2f, streaming %.2f), a read-only pass %.2f GB/s\n",
              ps.name, 2 * bytes_per_pass / (std::min(probe_ms[0], probe_ms[1]) * 1e6),
              2 * bytes_per_pass / (probe_ms[0] * 1e6), 2 * bytes_per_pass / (probe_ms[1] * 1e6),
              bytes_per_pass / (probe_ms[2] * 1e6));
  const peers::BnlabCalls bnlab{.shape = s,
                                 .x = x.get(),
                                 .dy = dy.get(),
                                 .gamma = gamma.get(),
                                 .beta = beta.get(),
                                 .moving_mean = moving_mean.get(),
                                 .moving_variance = moving_variance.get(),
                                 .y = y.get(),
                                 .dx = dx.get(),
                                 .mean = mean.get(),
                                 .inv_std = inv_std.get(),
                                 .variance = variance.get(),
                                 .dgamma = dgamma.get(),
                                 .dbeta = dbeta.get()};
  auto check_forward = [&](const char* op) {
    std::printf("# check bnlab %s %s sum_abs_y=%.9e\n", op, ps.name, peers::sum_abs(y.get(), n));
  };
  auto check_backward = [&](const char* op) {
    std::printf("# check bnlab %s %s sum_abs_dx=%.9e sum_abs_dgamma=%.9e sum_abs_dbeta=%.9e\n", op, ps.name,
                peers::sum_abs(dx.get(), n), peers::sum_abs(dgamma.get(), c), peers::sum_abs(dbeta.get(), c));
  };

  report({"forward_training", 3}, timed([&] { bnlab.forward_training(FusedActivation::none); }));
  check_forward("forward_training");
  report({"forward_inference", 2}, timed([&] { bnlab.forward_inference(); }));
  check_forward("forward_inference");
  // The backward reads saved_mean/saved_inv_std as the training forward above left them.
  report({"backward", 5}, timed([&] { bnlab.backward(FusedActivation::none); }));
  check_backward("backward");
  report({"forward_training_relu", 3}, timed([&] { bnlab.forward_training(FusedActivation::relu); }));
  check_forward("forward_training_relu");
  report({"backward_relu", 5}, timed([&] { bnlab.backward(FusedActivation::relu); }));
  check_backward("backward_relu");
}

}  // namespace

int main(int argc, char** argv) {
  const peers::Options o = peers::parse_options(argc, argv);
  omp_set_num_threads(o.threads);
  std::printf("# %s\n", bnlab::system_description().c_str());
  peers::print_header("bnlab", o);
  try {
    for (const auto& s : peers::shapes())
      if (o.only_shape.empty() || o.only_shape == s.name) run_shape(s, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bnlab_batchnorm: %s\n", e.what());
    return 1;
  }
  return 0;
}
