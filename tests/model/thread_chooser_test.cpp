#include "model/thread_chooser.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

#include "bnlab/model.hpp"
#include "bnlab/models.hpp"
#include "bnlab/optim.hpp"
#include "bnlab/profile.hpp"
#include "model/test_layers.hpp"

namespace bnlab {
namespace {

using detail::ThreadChooser;

// Runs `steps` steps through the chooser, each taking seconds_on(threads), and returns the thread
// count of every step.
template <class Seconds>
std::vector<int> run_steps(ThreadChooser& chooser, int steps, Seconds seconds_on) {
  std::vector<int> used;
  for (int s = 0; s < steps; ++s) {
    used.push_back(chooser.threads());
    chooser.record(seconds_on(used.back()));
  }
  return used;
}

// How many of the steps [begin, end) ran on `threads`.
long count_of(const std::vector<int>& used, int threads, std::size_t begin = 0, std::size_t end = SIZE_MAX) {
  end = std::min(end, used.size());
  begin = std::min(begin, end);
  return std::count(used.begin() + static_cast<std::ptrdiff_t>(begin), used.begin() + static_cast<std::ptrdiff_t>(end),
                    threads);
}

TEST(ThreadChooser, KeepsTheConfiguredCountWhileItIsFasterAndComparesLessOften) {
  ThreadChooser chooser(2, 32);
  const auto used = run_steps(chooser, 2000, [](int threads) { return threads == 2 ? 1.0 : 1.6; });
  // Trials of 16 steps on one thread after 32 steps, then 64, 128, ... (at most 16 x 32 apart).
  ASSERT_EQ(used[31], 2);
  for (int s = 32; s < 48; ++s) EXPECT_EQ(used[static_cast<std::size_t>(s)], 1) << "step " << s;
  EXPECT_EQ(used[48], 2);
  EXPECT_EQ(count_of(used, 1, 48, 48 + 64), 0);
  for (int s = 48 + 64; s < 48 + 64 + 16; ++s) EXPECT_EQ(used[static_cast<std::size_t>(s)], 1) << "step " << s;
  // Once the interval has reached its longest (512 steps), one trial in every 528 steps.
  EXPECT_EQ(count_of(used, 1, used.size() - 528), 16);
}

TEST(ThreadChooser, TakesOneThreadWhenItIsFasterAndGoesBackWhenItIsNot) {
  ThreadChooser chooser(2, 32);
  bool second_core_slow = true;
  auto seconds_on = [&](int threads) { return threads == 1 ? 1.0 : (second_core_slow ? 1.4 : 0.6); };
  auto used = run_steps(chooser, 48, seconds_on);
  EXPECT_EQ(chooser.threads(), 1);  // the trial won: one thread from now on
  used = run_steps(chooser, 32, seconds_on);
  EXPECT_EQ(count_of(used, 1), 32);  // and the first comparison again after 32 steps
  second_core_slow = false;
  used = run_steps(chooser, 16, seconds_on);
  EXPECT_EQ(count_of(used, 2), 16);  // that trial runs two threads, and wins
  EXPECT_EQ(chooser.threads(), 2);
}

TEST(ThreadChooser, ComparesSoonAgainAfterASwitch) {
  ThreadChooser chooser(2, 32);
  bool second_core_slow = false;
  auto seconds_on = [&](int threads) { return threads == 1 ? 1.0 : (second_core_slow ? 1.4 : 0.6); };
  // Two trials that keep two threads (after 32 steps, then 64): the interval has grown to 128.
  auto used = run_steps(chooser, 32 + 16 + 64 + 16, seconds_on);
  EXPECT_EQ(count_of(used, 1), 32);
  second_core_slow = true;
  used = run_steps(chooser, 128 + 16, seconds_on);
  EXPECT_EQ(count_of(used, 1, 128), 16);  // the third trial, 128 steps on
  EXPECT_EQ(chooser.threads(), 1);        // won by one thread
  // The next comparison comes 32 steps after the switch, not 256: a trial on two threads.
  used = run_steps(chooser, 32 + 16, seconds_on);
  EXPECT_EQ(count_of(used, 1, 0, 32), 32);
  EXPECT_EQ(count_of(used, 2, 32), 16);
}

TEST(ThreadChooser, NeedsAFivePercentGainToSwitch) {
  ThreadChooser chooser(4, 32);
  run_steps(chooser, 48, [](int threads) { return threads == 1 ? 0.97 : 1.0; });
  EXPECT_EQ(chooser.threads(), 4);
  ThreadChooser faster(4, 32);
  run_steps(faster, 48, [](int threads) { return threads == 1 ? 0.94 : 1.0; });
  EXPECT_EQ(faster.threads(), 1);
}

TEST(ThreadChooser, MedianIgnoresAnOutlierStep) {
  ThreadChooser chooser(2, 32);
  int step = 0;
  // One step of the trial meets a 100x stall; the median of its 16 steps does not see it.
  run_steps(chooser, 48, [&](int threads) { return threads == 2 ? 1.0 : (step++ == 3 ? 100.0 : 0.5); });
  EXPECT_EQ(chooser.threads(), 1);
}

TEST(ThreadChooser, NeverComparesWithOneThreadOrAnIntervalOfZero) {
  for (auto [configured, interval] : {std::pair{1, 32}, std::pair{2, 0}}) {
    ThreadChooser chooser(configured, interval);
    const auto used = run_steps(chooser, 1000, [](int threads) { return threads == 1 ? 0.1 : 1.0; });
    EXPECT_EQ(count_of(used, configured), 1000) << configured << " threads, interval " << interval;
  }
}

// Every reduction's order is fixed by the shape, never by the thread count (the threads only
// share out independent elements, rows, channels or GEMM tiles), so steps on one thread and on
// two give the same bits: a fit whose chooser compares as often as it can (a trial of 16 steps
// on one thread after the first 16 of its 40) ends with the weights of fixed one- and
// two-thread runs.
std::vector<std::vector<float>> train_seed_model(int threads, std::int64_t interval, std::int64_t* one_thread_steps) {
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  const std::int64_t n = 320;
  Tensor x({n, 28, 28});
  for (std::int64_t i = 0; i < x.size(); ++i) x[i] = pixel(rng) < 0.5f ? 0.0f : pixel(rng);
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % 10);

  Sequential model = make_seed_model("bn", 7);
  model.compile(std::make_unique<SGD>(0.01));
  FitOptions options;
  options.epochs = 4;
  options.batch_size = 32;
  options.verbose = Verbosity::silent;
  options.thread_probe_interval = interval;
  options.on_epoch_end = [threads](int, const History&) {
    EXPECT_EQ(omp_get_max_threads(), threads) << "the callback must see the caller's thread count";
    return true;
  };
  profile::reset();
  profile::set_enabled(true);
  model.fit(x, y, options);
  profile::set_enabled(false);
  *one_thread_steps = profile::totals().calls[static_cast<int>(profile::Section::one_thread_steps)];
  EXPECT_EQ(omp_get_max_threads(), threads) << "fit must restore the thread count it was called with";
  omp_set_num_threads(before);

  std::vector<std::vector<float>> weights;
  for (Parameter* p : model.parameters()) weights.emplace_back(p->value.data(), p->value.data() + p->value.size());
  return weights;
}

TEST(FitThreads, StepsOnEitherCountGiveTheSameBits) {
  std::int64_t one_fixed = 0, two_fixed = 0, mixed = 0;
  const auto one = train_seed_model(1, 0, &one_fixed);
  const auto two = train_seed_model(2, 0, &two_fixed);
  const auto switching = train_seed_model(2, 1, &mixed);
  EXPECT_EQ(one_fixed, 0);
  EXPECT_EQ(two_fixed, 0);
  EXPECT_GE(mixed, 16) << "the chooser's trials must have run steps on one thread";
  EXPECT_LT(mixed, 40) << "40 steps in all: some must have run on two threads";
  ASSERT_EQ(one.size(), two.size());
  ASSERT_EQ(one.size(), switching.size());
  for (std::size_t k = 0; k < one.size(); ++k) {
    EXPECT_EQ(std::memcmp(one[k].data(), two[k].data(), one[k].size() * sizeof(float)), 0) << "parameter " << k;
    EXPECT_EQ(std::memcmp(one[k].data(), switching[k].data(), one[k].size() * sizeof(float)), 0) << "parameter " << k;
  }
}

// An identity layer that notes the OpenMP thread count each training forward runs with.
class ThreadRecorder : public testing::TestFlatten {
 public:
  explicit ThreadRecorder(std::vector<int>* seen) : seen_(seen) {}
  const Tensor& forward(const Tensor& x, bool training) override {
    if (training) seen_->push_back(omp_get_max_threads());
    return TestFlatten::forward(x, training);
  }

 private:
  std::vector<int>* seen_;
};

struct RecordedFit {
  std::vector<int> step_threads;
  int threads_after = 0;
};

RecordedFit fit_recording_threads(int threads, std::int64_t interval, int epochs,
                                  const std::function<bool(int, const History&)>& on_epoch_end = nullptr) {
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  RecordedFit r;
  r.step_threads.reserve(1024);
  Sequential model;
  model.add(std::make_unique<ThreadRecorder>(&r.step_threads));
  model.add(std::make_unique<testing::TestDense>(3, "softmax"));
  model.build({4}, 1);
  model.compile(std::make_unique<SGD>(0.01));
  Tensor x({320, 4});
  for (std::int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) * 0.1f;
  std::vector<std::int32_t> y(320);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::int32_t>(i % 3);
  FitOptions options;
  options.epochs = epochs;
  options.batch_size = 8;  // 40 steps an epoch
  options.verbose = Verbosity::silent;
  options.thread_probe_interval = interval;
  options.on_epoch_end = on_epoch_end;
  model.fit(x, y, options);
  r.threads_after = omp_get_max_threads();
  omp_set_num_threads(before);
  return r;
}

TEST(FitThreads, TrialStepsRunOnOneThread) {
  const RecordedFit r = fit_recording_threads(2, 1, 1);
  ASSERT_EQ(r.step_threads.size(), 40u);
  // 16 steps on two threads fill the window, then 16 trial steps on one; whichever wins, the
  // caller's count is back after fit.
  for (std::size_t s = 0; s < 16; ++s) EXPECT_EQ(r.step_threads[s], 2) << "step " << s;
  for (std::size_t s = 16; s < 32; ++s) EXPECT_EQ(r.step_threads[s], 1) << "step " << s;
  EXPECT_EQ(r.threads_after, 2);
}

TEST(FitThreads, ACountSetInTheCallbackHoldsAfterwards) {
  // The callback sets one thread after the first epoch: the later epochs run on it, and it is
  // still set when fit returns, as without the chooser.
  const RecordedFit r = fit_recording_threads(2, 0, 3, [](int epoch, const History&) {
    if (epoch == 0) omp_set_num_threads(1);
    return true;
  });
  ASSERT_EQ(r.step_threads.size(), 120u);
  EXPECT_EQ(r.step_threads[39], 2);
  for (std::size_t s = 40; s < 120; ++s) EXPECT_EQ(r.step_threads[s], 1) << "step " << s;
  EXPECT_EQ(r.threads_after, 1);
}

TEST(FitThreads, ANegativeIntervalIsRefused) {
  Sequential model = make_seed_model("bn", 7);
  model.compile(std::make_unique<SGD>(0.01));
  FitOptions options;
  options.thread_probe_interval = -1;
  options.verbose = Verbosity::silent;
  Tensor x({4, 28, 28});
  const std::vector<std::int32_t> y{0, 1, 2, 3};
  try {
    model.fit(x, y, options);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("thread_probe_interval is -1"), std::string::npos) << e.what();
  }
}

// The process-wide default (the CLI's --thread-probe-interval) is what a FitOptions starts with.
TEST(FitThreads, TheDefaultIntervalIsSetForTheProcess) {
  EXPECT_EQ(default_thread_probe_interval(), 256);
  EXPECT_EQ(FitOptions{}.thread_probe_interval, 256);
  set_default_thread_probe_interval(0);
  EXPECT_EQ(FitOptions{}.thread_probe_interval, 0);
  set_default_thread_probe_interval(64);
  EXPECT_EQ(FitOptions{}.thread_probe_interval, 64);
  EXPECT_THROW(set_default_thread_probe_interval(-1), std::invalid_argument);
  EXPECT_EQ(default_thread_probe_interval(), 64);
  set_default_thread_probe_interval(256);
}

}  // namespace
}  // namespace bnlab
