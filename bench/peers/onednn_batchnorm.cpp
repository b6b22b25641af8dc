// oneDNN's side of the peer comparison (scripts/bench_peers.sh): the batch normalization
// primitive of oneDNN 2.6 (Debian libdnnl-dev, C++ API dnnl.hpp) on the shared shapes, timed by
// the rule in peer_common.hpp, beside bnlab's copy probe; and bnlab's kernels timed in turns
// with oneDNN's in this process, on the same inputs.
//
//   onednn_batchnorm [--threads N] [--quick] ...      (see peer_common.hpp)
//
// Every primitive and every buffer (the scratchpads included: user scratchpad mode) is created
// once per shape, outside the timing, as a framework that caches primitives does; the tensors
// are bnlab's allocation (huge pages), the same memory bnlab's own driver runs on; a timed call is
// one primitive::execute plus stream::wait. Memory formats: nchw, nhwc and nc, f32, with the
// user's layout given exactly (no format_tag::any, so no reorder hides in or outside the timing).
// Flags (2.6 has both the old use_scale_shift and the separate use_scale/use_shift; the separate
// ones take gamma and beta as two C-vectors like the other libraries and give diff_scale and
// diff_shift apart):
//   forward_training   use_scale | use_shift                     -> dst, mean, variance
//   forward_inference  use_global_stats | use_scale | use_shift  (mean, variance are inputs)
//   backward           prop_kind::backward, use_scale | use_shift -> diff_src, diff_scale, diff_shift
//   *_relu             the same | fuse_norm_relu; the training forward then writes a workspace
//                      (the ReLU mask) that the backward reads instead of recomputing it
// Threads: this Debian build uses the OpenMP runtime (DNNL_CPU_RUNTIME OMP), so
// omp_set_num_threads sets oneDNN's thread count as it does bnlab's.

#include <omp.h>

#include <cstdio>
#include <exception>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "bnlab/tensor.hpp"
#include "kernels/memory_probe.hpp"
#include "bnlab_calls.hpp"
#include "peer_common.hpp"

namespace {

using dnnl::memory;
using dnnl::normalization_flags;
using dnnl::prop_kind;
using forward = dnnl::batch_normalization_forward;
using backward = dnnl::batch_normalization_backward;

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::all: return "all";
    default: return "other";
  }
}

float* data(const memory& m) { return static_cast<float*>(m.get_data_handle()); }

std::int64_t element_count(const memory::desc& d) {
  return static_cast<std::int64_t>(d.get_size() / sizeof(float));
}

memory::desc data_desc(const peers::PeerShape& s) {
  if (s.is("NC")) return {{s.batch, s.channels}, memory::data_type::f32, memory::format_tag::nc};
  return {{s.batch, s.channels, s.height, s.width},
          memory::data_type::f32,
          s.is("NHWC") ? memory::format_tag::nhwc : memory::format_tag::nchw};
}

void run_shape(const peers::PeerShape& s, const peers::Options& o, const dnnl::engine& engine,
               dnnl::stream& stream) {
  const memory::desc md = data_desc(s);
  const std::int64_t n = s.size(), c = s.channels;
  const auto scale_shift = normalization_flags::use_scale | normalization_flags::use_shift;
  const auto with_relu = scale_shift | normalization_flags::fuse_norm_relu;

  // A user-managed scratchpad, allocated below with the other buffers: with the default
  // (library) mode oneDNN may allocate its scratch per execute, which a framework holding its
  // buffers would not time.
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

  const forward::primitive_desc training_pd(
      forward::desc(prop_kind::forward_training, md, peers::epsilon, scale_shift), attr, engine);
  const forward::primitive_desc inference_pd(
      forward::desc(prop_kind::forward_inference, md, peers::epsilon,
                    scale_shift | normalization_flags::use_global_stats),
      attr, engine);
  const backward::primitive_desc backward_pd(
      backward::desc(prop_kind::backward, md, md, peers::epsilon, scale_shift), attr, engine, training_pd);
  const forward::primitive_desc training_relu_pd(
      forward::desc(prop_kind::forward_training, md, peers::epsilon, with_relu), attr, engine);
  const backward::primitive_desc backward_relu_pd(
      backward::desc(prop_kind::backward, md, md, peers::epsilon, with_relu), attr, engine, training_relu_pd);

  // Buffers, allocated once and reused by every call. The tensors are bnlab's allocation (2 MiB
  // aligned, huge pages where the kernel grants them) handed to oneDNN: both libraries then run
  // on the same kind of memory, the probe too, which can only favour oneDNN against its own
  // allocation. probe_out is the probe's destination, so no output is overwritten by a copy.
  const bnlab::AlignedBuffer tensors[] = {bnlab::make_aligned_buffer(n), bnlab::make_aligned_buffer(n),
                                          bnlab::make_aligned_buffer(n), bnlab::make_aligned_buffer(n),
                                          bnlab::make_aligned_buffer(n), bnlab::make_aligned_buffer(n),
                                          bnlab::make_aligned_buffer(n)};
  const memory x(md, engine, tensors[0].get()), y(md, engine, tensors[1].get()), dy(md, engine, tensors[2].get()),
      dx(md, engine, tensors[3].get());
  float* probe_out = tensors[6].get();
  const memory::desc stat_md = training_pd.mean_desc();
  const memory mean(stat_md, engine), variance(stat_md, engine), moving_mean(stat_md, engine),
      moving_variance(stat_md, engine);
  const memory::desc channel_md({s.channels}, memory::data_type::f32, memory::format_tag::x);
  const memory gamma(channel_md, engine), beta(channel_md, engine), dgamma(channel_md, engine),
      dbeta(channel_md, engine);
  const memory workspace(training_relu_pd.workspace_desc(), engine);
  const memory training_scratch(training_pd.scratchpad_desc(), engine),
      inference_scratch(inference_pd.scratchpad_desc(), engine), backward_scratch(backward_pd.scratchpad_desc(), engine),
      training_relu_scratch(training_relu_pd.scratchpad_desc(), engine),
      backward_relu_scratch(backward_relu_pd.scratchpad_desc(), engine);

  peers::fill_input(data(x), n);
  peers::fill_gradient(data(dy), n);
  peers::fill_zero(data(y), n);
  peers::fill_zero(data(dx), n);
  for (std::int64_t k = 0; k < c; ++k) {
    data(gamma)[k] = peers::gamma_value(k);
    data(beta)[k] = peers::beta_value;
    data(moving_mean)[k] = peers::inference_mean;
    data(moving_variance)[k] = peers::inference_variance;
  }
  if (element_count(stat_md) != c) throw std::runtime_error("oneDNN: statistics descriptor is not C floats");

  // Which implementation oneDNN chose (a JIT kernel for the ISA, or the slow reference "ref:any",
  // which would make any comparison meaningless).
  std::printf("# onednn %s implementations: forward_training %s, forward_inference %s, backward %s, "
              "forward_training_relu %s, backward_relu %s\n",
              s.name, training_pd.impl_info_str(), inference_pd.impl_info_str(), backward_pd.impl_info_str(),
              training_relu_pd.impl_info_str(), backward_relu_pd.impl_info_str());

  const forward training(training_pd), inference(inference_pd), training_relu(training_relu_pd);
  const backward backward_plain(backward_pd), backward_relu(backward_relu_pd);

  using Args = std::unordered_map<int, memory>;
  const Args training_args = {{DNNL_ARG_SRC, x},         {DNNL_ARG_DST, y},
                              {DNNL_ARG_SCALE, gamma},   {DNNL_ARG_SHIFT, beta},
                              {DNNL_ARG_MEAN, mean},     {DNNL_ARG_VARIANCE, variance},
                              {DNNL_ARG_SCRATCHPAD, training_scratch}};
  Args training_relu_args = training_args;
  training_relu_args[DNNL_ARG_WORKSPACE] = workspace;
  training_relu_args[DNNL_ARG_SCRATCHPAD] = training_relu_scratch;
  const Args inference_args = {{DNNL_ARG_SRC, x},           {DNNL_ARG_DST, y},
                               {DNNL_ARG_SCALE, gamma},     {DNNL_ARG_SHIFT, beta},
                               {DNNL_ARG_MEAN, moving_mean}, {DNNL_ARG_VARIANCE, moving_variance},
                               {DNNL_ARG_SCRATCHPAD, inference_scratch}};
  const Args backward_args = {{DNNL_ARG_SRC, x},           {DNNL_ARG_DIFF_DST, dy},
                              {DNNL_ARG_MEAN, mean},       {DNNL_ARG_VARIANCE, variance},
                              {DNNL_ARG_SCALE, gamma},     {DNNL_ARG_SHIFT, beta},
                              {DNNL_ARG_DIFF_SRC, dx},     {DNNL_ARG_DIFF_SCALE, dgamma},
                              {DNNL_ARG_DIFF_SHIFT, dbeta}, {DNNL_ARG_SCRATCHPAD, backward_scratch}};
  Args backward_relu_args = backward_args;
  backward_relu_args[DNNL_ARG_WORKSPACE] = workspace;
  backward_relu_args[DNNL_ARG_SCRATCHPAD] = backward_relu_scratch;

  auto run = [&](const dnnl::primitive& p, const Args& args) {
    p.execute(stream, args);
    stream.wait();
  };
  // bnlab beside oneDNN in this process: the same input buffers (x, dy, gamma, beta, the moving
  // statistics), its own outputs, calls taken in turns with oneDNN's and the copy probe's
  // (peer_common.hpp's time_in_turns). The most direct comparison there is; the table shows it
  // next to the one across processes.
  const memory bnlab_y(md, engine, tensors[4].get()), bnlab_dx(md, engine, tensors[5].get());
  std::vector<float> bnlab_mean(c), bnlab_inv_std(c), bnlab_variance(c), bnlab_dgamma(c), bnlab_dbeta(c);
  const peers::BnlabCalls bnlab{.shape = peers::to_bnlab(s),
                                .x = data(x),
                                .dy = data(dy),
                                .gamma = data(gamma),
                                .beta = data(beta),
                                .moving_mean = data(moving_mean),
                                .moving_variance = data(moving_variance),
                                .y = data(bnlab_y),
                                .dx = data(bnlab_dx),
                                .mean = bnlab_mean.data(),
                                .inv_std = bnlab_inv_std.data(),
                                .variance = bnlab_variance.data(),
                                .dgamma = bnlab_dgamma.data(),
                                .dbeta = bnlab_dbeta.data()};
  using bnlab::kernels::FusedActivation;

  // The copy probe beside every operation: x into a buffer of its own, as in the other drivers.
  auto plain = [&] { bnlab::bench::copy_plain(data(x), probe_out, n); };
  auto streaming = [&] { bnlab::bench::copy_streaming(data(x), probe_out, n); };
  const std::function<void()> evict = peers::cold_cache_for(o, s) ? bnlab::bench::evict_caches : nullptr;
  auto timed = [&](const char* op, const dnnl::primitive& p, const Args& args, std::function<void()> bnlab_op) {
    const std::vector<double> ms =
        peers::time_in_turns(o, {plain, streaming, [&] { run(p, args); }, bnlab_op}, evict);
    peers::print_result("onednn", op, s, {ms[2], ms[0], ms[1]});
    peers::print_result("bnlab_beside_onednn", op, s, {ms[3], ms[0], ms[1]});
  };
  auto check_forward = [&](const char* op) {
    std::printf("# check onednn %s %s sum_abs_y=%.9e\n", op, s.name, peers::sum_abs(data(y), n));
  };
  auto check_backward = [&](const char* op) {
    std::printf("# check onednn %s %s sum_abs_dx=%.9e sum_abs_dgamma=%.9e sum_abs_dbeta=%.9e\n", op, s.name,
                peers::sum_abs(data(dx), n), peers::sum_abs(data(dgamma), c), peers::sum_abs(data(dbeta), c));
  };

  timed("forward_training", training, training_args, [&] { bnlab.forward_training(FusedActivation::none); });
  check_forward("forward_training");
  timed("forward_inference", inference, inference_args, [&] { bnlab.forward_inference(); });
  check_forward("forward_inference");
  // mean/variance still hold the training forward's batch statistics: inference reads its own.
  timed("backward", backward_plain, backward_args, [&] { bnlab.backward(FusedActivation::none); });
  check_backward("backward");
  timed("forward_training_relu", training_relu, training_relu_args,
        [&] { bnlab.forward_training(FusedActivation::relu); });
  check_forward("forward_training_relu");
  timed("backward_relu", backward_relu, backward_relu_args, [&] { bnlab.backward(FusedActivation::relu); });
  check_backward("backward_relu");
}

}  // namespace

int main(int argc, char** argv) {
  const peers::Options o = peers::parse_options(argc, argv);
  omp_set_num_threads(o.threads);
  const dnnl_version_t* v = dnnl_version();
  std::printf("# oneDNN %d.%d.%d (%s), effective CPU ISA %s\n", v->major, v->minor, v->patch, v->hash,
              isa_name(dnnl::get_effective_cpu_isa()));
  peers::print_header("onednn", o);
  try {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    for (const auto& s : peers::shapes())
      if (o.only_shape.empty() || o.only_shape == s.name) run_shape(s, o, engine, stream);
  } catch (const dnnl::error& e) {
    std::fprintf(stderr, "onednn_batchnorm: %s (status %d)\n", e.what(), static_cast<int>(e.status));
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "onednn_batchnorm: %s\n", e.what());
    return 1;
  }
  return 0;
}
