#pragma once
// What the peer drivers (bnlab_batchnorm, onednn_batchnorm and torch_batchnorm.py) share, so
// that their numbers measure the same thing: the shapes, the operation names, the input data,
// the command line, the timing rule and the output format. torch_batchnorm.py mirrors this file
// line for line; a change here must be made there too.
//
// Output, one line per measurement, parsed by merge_peers.py:
//   <library> <operation> <shape> <milliseconds per call> copy_plain=<ms> copy_streaming=<ms>
// (the copy probe timed beside the operation, sample by sample: see time_paired)
// and, after the timing, lines that let the merge check that every library computed the same
// thing (sums of absolute values in double, layout independent):
//   # check <library> <operation> <shape> <name>=<value> ...
// Every other line starting with '#' is a comment for the reader.

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace peers {

struct PeerShape {
  const char* name;   // as printed: "256x64x56x56_NCHW"
  std::int64_t batch, channels, height, width;  // height = width = 1 for NC
  const char* layout; // "NCHW", "NHWC" or "NC"

  std::int64_t spatial() const { return height * width; }
  std::int64_t size() const { return batch * channels * height * width; }
  bool is(const char* l) const { return std::strcmp(layout, l) == 0; }
};

inline const std::vector<PeerShape>& shapes() {
  static const std::vector<PeerShape> all = {
      {"256x64x56x56_NCHW", 256, 64, 56, 56, "NCHW"},
      {"256x64x56x56_NHWC", 256, 64, 56, 56, "NHWC"},
      {"64x256x28x28_NCHW", 64, 256, 28, 28, "NCHW"},
      {"4096x1024_NC", 4096, 1024, 1, 1, "NC"},
      {"32x300_NC", 32, 300, 1, 1, "NC"},
  };
  return all;
}

// The same epsilon, parameters and statistics in every library.
inline constexpr float epsilon = 1e-5f;
inline float gamma_value(std::int64_t c) { return 1.0f + 0.01f * static_cast<float>(c % 7); }
inline constexpr float beta_value = 0.1f;
inline constexpr float inference_mean = 0.5f;      // the "moving" statistics for inference
inline constexpr float inference_variance = 1.5f;

// Input data from an integer hash of the memory index, so that every library (and Python) gets
// bit-identical tensors without sharing a random generator: x uniform in [-1.5, 2.5), dy uniform
// in [-0.2, 0.2). The products stay below 2^63, so Python's int64 arithmetic gives the same bits.
inline float input_value(std::int64_t i) {
  const std::uint64_t h = (static_cast<std::uint64_t>(i) * 2654435761ull) & 0xffffffffull;
  return static_cast<float>(0.5 + 4.0 * (static_cast<double>(h) / 4294967296.0 - 0.5));
}
inline float gradient_value(std::int64_t i) {
  const std::uint64_t h = (static_cast<std::uint64_t>(i + 12345) * 2246822519ull) & 0xffffffffull;
  return static_cast<float>(0.4 * (static_cast<double>(h) / 4294967296.0 - 0.5));
}

// Fills with the threads that will later use the memory (first touch places the pages), in
// memory order; the hash makes the values independent of the layout's meaning.
inline void fill_input(float* x, std::int64_t count) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < count; ++i) x[i] = input_value(i);
}
inline void fill_gradient(float* dy, std::int64_t count) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < count; ++i) dy[i] = gradient_value(i);
}
inline void fill_zero(float* p, std::int64_t count) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < count; ++i) p[i] = 0.0f;
}

inline double sum_abs(const float* p, std::int64_t count) {
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (std::int64_t i = 0; i < count; ++i) total += std::fabs(static_cast<double>(p[i]));
  return total;
}

struct Options {
  int threads = 2;
  int warmup = 3;
  int repetitions = 21;         // odd, so the median is one measured sample
  double min_sample_ms = 1.0;   // see calls_per_sample
  std::string only_shape;       // empty: all shapes
  bool warm_cache = false;      // --warm-cache: no eviction between samples (see cold_cache_for)
};

// Shapes of 1 MiB and more are timed with cold caches: every sample is one call, made after
// evict_caches(), for the probe and the operations alike. Otherwise a tensor smaller than L3
// (4096x1024 is 16.8 MB against 32 MiB) stays in it from one call to the next, more of it for a
// copy (2 tensors) than for a backward (3), and the table would compare cache states rather than
// memory traffic. Smaller shapes (32x300) live in cache in a training step and are timed there.
inline bool cold_cache_for(const Options& o, const PeerShape& s) {
  return !o.warm_cache && s.size() * static_cast<std::int64_t>(sizeof(float)) >= (std::int64_t{1} << 20);
}

inline void usage(const char* program) {
  std::fprintf(stderr,
               "usage: %s [--threads N] [--warmup N] [--repetitions N] [--min-sample-ms X] "
               "[--shape NAME] [--quick] [--warm-cache]\n"
               "  --quick: warm-up 1, repetitions 3 (checks that it runs; not a measurement)\n",
               program);
}

inline Options parse_options(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> const char* {
    if (i + 1 >= argc) {
      usage(argv[0]);
      std::exit(2);
    }
    return argv[++i];
  };
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") o.threads = std::atoi(value(i));
    else if (a == "--warmup") o.warmup = std::atoi(value(i));
    else if (a == "--repetitions") o.repetitions = std::atoi(value(i));
    else if (a == "--min-sample-ms") o.min_sample_ms = std::atof(value(i));
    else if (a == "--shape") o.only_shape = value(i);
    else if (a == "--warm-cache") o.warm_cache = true;
    else if (a == "--quick")
      quick = true;
    else {
      usage(argv[0]);
      std::exit(2);
    }
  }
  // --quick wins over --warmup and --repetitions wherever it stands, as in torch_batchnorm.py,
  // so every driver of one bench_peers run takes the same number of samples.
  if (quick) {
    o.warmup = 1;
    o.repetitions = 3;
  }
  if (o.threads < 1 || o.warmup < 1 || o.repetitions < 1 || o.min_sample_ms < 0) {
    std::fprintf(stderr, "%s: --threads, --warmup and --repetitions must be >= 1, --min-sample-ms >= 0\n",
                 argv[0]);
    std::exit(2);
  }
  return o;
}

inline double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Calls per sample for `body`, from its fastest of `warmup` calls (which also warm caches, lazy
// initialization and the allocator's pools): one call of the small shapes takes microseconds,
// close to the clock's own cost and to scheduler noise, so a sample is as many back-to-back calls
// as make it last at least min_sample_ms; the large shapes are one call per sample.
template <class Body>
std::int64_t calls_per_sample(const Options& o, Body& body) {
  double fastest = 1e300;
  for (int i = 0; i < o.warmup; ++i) {
    const double start = now_ms();
    body();
    fastest = std::min(fastest, now_ms() - start);
  }
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(o.min_sample_ms / std::max(fastest, 1e-6))));
}

inline double median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  const std::size_t n = samples.size();
  return n % 2 == 1 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

// Milliseconds per call of each body, timed in turns: every one of `repetitions` samples runs
// each body once (one sample's worth of calls), starting with a different body each time so
// that none always follows the same one, and the result is each body's median. Bodies timed in
// turns see the same minutes of the machine; the median, not the mean, so one preempted sample
// does not move the result. With `evict` (cold caches, see cold_cache_for) a sample is one call,
// and evict() runs, untimed, before each.
inline std::vector<double> time_in_turns(const Options& o, const std::vector<std::function<void()>>& bodies,
                                         const std::function<void()>& evict = nullptr) {
  std::vector<std::int64_t> calls;
  for (auto body : bodies) {
    const std::int64_t warm = calls_per_sample(o, body);  // the warm-up calls run either way
    calls.push_back(evict ? 1 : warm);
  }
  std::vector<std::vector<double>> samples(bodies.size());
  for (int r = 0; r < o.repetitions; ++r)
    for (std::size_t turn = 0; turn < bodies.size(); ++turn) {
      const std::size_t b = (turn + static_cast<std::size_t>(r)) % bodies.size();
      if (evict) evict();
      const double start = now_ms();
      for (std::int64_t k = 0; k < calls[b]; ++k) bodies[b]();
      samples[b].push_back((now_ms() - start) / static_cast<double>(calls[b]));
    }
  std::vector<double> medians;
  for (auto& s : samples) medians.push_back(median(std::move(s)));
  return medians;
}

// An operation's milliseconds per call and, measured in the same seconds, the copy probe's: the
// plain and the streaming copy of the library's own input tensor into a buffer of the probe's.
struct PairedTiming {
  double ms;            // the operation
  double plain_ms;      // plain copy of the same tensor
  double streaming_ms;  // copy with non-temporal stores
};

// The plain copy, the streaming copy and the operation, timed in turns. Timing the probe beside
// every operation, sample by sample, is what makes ratios across processes meaningful on this
// host: the memory bandwidth a guest gets moves by up to 2x from one minute to the next, so a
// probe measured once per shape, or an operation in another library's process half a minute
// later, compares different machines.
inline PairedTiming time_paired(const Options& o, std::function<void()> body, std::function<void()> plain,
                                std::function<void()> streaming, const std::function<void()>& evict = nullptr) {
  const std::vector<double> ms = time_in_turns(o, {plain, streaming, body}, evict);
  return {ms[2], ms[0], ms[1]};
}

inline void print_result(const char* library, const char* operation, const PeerShape& s, const PairedTiming& t) {
  std::printf("%s %s %s %.6f copy_plain=%.6f copy_streaming=%.6f\n", library, operation, s.name, t.ms, t.plain_ms,
              t.streaming_ms);
  std::fflush(stdout);
}

inline void print_header(const char* library, const Options& o) {
  std::printf("# %s: threads %d (omp_get_max_threads %d), warm-up %d, repetitions %d, min sample %.3g ms, %s\n",
              library, o.threads, omp_get_max_threads(), o.warmup, o.repetitions, o.min_sample_ms,
              o.warm_cache ? "warm caches" : "cold caches for tensors of 1 MiB and more");
}

}  // namespace peers
