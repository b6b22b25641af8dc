// The experiments' building blocks: percentiles and histogram bins against NumPy's numbers,
// the report's encoding, the normalization worksheet's statistics, the MLPs and the step
// trainer, and the request checks behind `bnlab experiment`.

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bnlab/experiments/experiment.hpp"
#include "bnlab/experiments/normalize.hpp"
#include "bnlab/experiments/plotting.hpp"
#include "bnlab/experiments/report.hpp"
#include "bnlab/experiments/step_training.hpp"
#include "bnlab/optim.hpp"
#include "bnlab/profile.hpp"
#include "experiments_support.hpp"
#include "support/temp_dir.hpp"

namespace bnlab::experiments {
namespace {

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(Percentile, MatchesNumpyLinearInterpolation) {
  // np.percentile([5, 1, 4, 2, 3], [0, 15, 50, 85, 100]) = [1, 1.6, 3, 4.4, 5]
  const double p[] = {0, 15, 50, 85, 100};
  const double expected[] = {1, 1.6, 3, 4.4, 5};
  for (int i = 0; i < 5; ++i) {
    std::vector<float> values{5, 1, 4, 2, 3};
    EXPECT_NEAR(percentile(values, p[i]), expected[i], 1e-12) << p[i];
  }
  std::vector<float> none;
  EXPECT_THROW(percentile(none, 50), std::invalid_argument);
  std::vector<float> one{1};
  EXPECT_THROW(percentile(one, 101), std::invalid_argument);
}

TEST(Histogram, AutoBinsMatchNumpy) {
  // np.histogram_bin_edges(np.arange(100), 'auto'): 8 bins of 12.375 (Sturges is narrower).
  std::vector<float> ramp(100);
  for (int i = 0; i < 100; ++i) ramp[i] = static_cast<float>(i);
  const auto edges = auto_histogram_edges(ramp);
  ASSERT_EQ(edges.size(), 9u);
  EXPECT_DOUBLE_EQ(edges[1], 12.375);
  EXPECT_DOUBLE_EQ(edges.back(), 99);
  // np.histogram([0,0,0,0,1,1,1,2,5,9.5,0.25], 'auto') -> counts [8,1,0,0,1,0,0,1] (FD is narrower).
  const std::vector<float> skewed{0, 0, 0, 0, 1, 1, 1, 2, 5, 9.5f, 0.25f};
  const auto skewed_edges = auto_histogram_edges(skewed);
  ASSERT_EQ(skewed_edges.size(), 9u);
  EXPECT_DOUBLE_EQ(skewed_edges[1], 1.1875);
  EXPECT_EQ(histogram_counts(skewed, skewed_edges), (std::vector<std::int64_t>{8, 1, 0, 0, 1, 0, 0, 1}));
  // A constant input: one bin [v - 0.5, v + 0.5], as NumPy.
  const auto constant = auto_histogram_edges(std::vector<float>(10, 3.0f));
  EXPECT_EQ(constant, (std::vector<double>{2.5, 3.5}));
  EXPECT_THROW(auto_histogram_edges({}), std::invalid_argument);
}

TEST(Report, Base64AndEscaping) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x80", 3)), "/wCA");
  EXPECT_EQ(html_escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  const std::string table = html_table({"x", "<y>"}, {{"1", "2 & 3"}});
  EXPECT_NE(table.find("<th>&lt;y&gt;</th>"), std::string::npos);
  EXPECT_NE(table.find("<td>2 &amp; 3</td>"), std::string::npos);
}

TEST(Report, RefusesAMissingFigure) {
  ReportSection section{"s", "S", "", {{"/nonexistent/figure.png", "caption"}}};
  EXPECT_NE(error_of([&] { render_report("t", "", {section}); }).find("/nonexistent/figure.png"), std::string::npos);
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The working directory for one scope.
class WorkingDirectory {
 public:
  explicit WorkingDirectory(const std::filesystem::path& dir) : previous_(std::filesystem::current_path()) {
    std::filesystem::current_path(dir);
  }
  ~WorkingDirectory() { std::filesystem::current_path(previous_); }
  WorkingDirectory(const WorkingDirectory&) = delete;
  WorkingDirectory& operator=(const WorkingDirectory&) = delete;

 private:
  std::filesystem::path previous_;
};

LinePanel panel_with(std::vector<double> y, bool log_x) {
  LinePanel panel = line_panel("t", "x", "y");
  panel.log_x = log_x;
  panel.series.push_back(Series{"s", {1, 2, 4}, std::move(y)});
  return panel;
}

// `bnlab experiment` writes into out/experiments/NAME by default: a relative directory, which
// gnuplot (its -e cd runs before it opens the script) once looked up twice.
TEST(RenderFigure, DrawsIntoARelativeDirectory) {
  if (!plotting_available()) GTEST_SKIP() << "gnuplot not installed";
  bnlab::testing::ScratchDirectory scratch("bnlab_plot");
  const WorkingDirectory inside(scratch.path());
  std::filesystem::create_directories("figures/nested");
  const FigureFiles files =
      render_figure("figures/nested", "line", line_panels_commands({panel_with({1, 2, 3}, false)}, "p"), 400, 300);
  for (const auto& file : {files.png, files.svg, files.script}) EXPECT_GT(std::filesystem::file_size(file), 0u);
  EXPECT_EQ(file_bytes(files.png).substr(1, 3), "PNG");
}

// Every run of a panel diverged: the panel is drawn empty rather than gnuplot failing.
TEST(RenderFigure, DrawsAPanelWithoutAnyFinitePoint) {
  if (!plotting_available()) GTEST_SKIP() << "gnuplot not installed";
  bnlab::testing::ScratchDirectory scratch("bnlab_plot");
  const double nan = std::nan("");
  for (const bool log_x : {false, true})
    EXPECT_NO_THROW(render_figure(
        scratch.path(), log_x ? "empty_log" : "empty",
        line_panels_commands({panel_with({nan, nan, nan}, log_x), line_panel("none", "x", "y")}, "p"), 400, 300));
}

// gnuplot truncates its output as it starts; a rerun that fails must leave the earlier
// figure, its script and nothing else behind.
TEST(RenderFigure, AFailedRerunKeepsTheEarlierFigure) {
  if (!plotting_available()) GTEST_SKIP() << "gnuplot not installed";
  bnlab::testing::ScratchDirectory scratch("bnlab_plot");
  const FigureFiles files =
      render_figure(scratch.path(), "fig", line_panels_commands({panel_with({1, 2, 3}, false)}, "p"), 400, 300);
  const std::string png = file_bytes(files.png), svg = file_bytes(files.svg), script = file_bytes(files.script);
  const std::string error = error_of(
      [&] { render_figure(scratch.path(), "fig", "plot $no_such_datablock using 1:2 with lines\n", 400, 300); });
  EXPECT_NE(error.find("figure fig: gnuplot failed drawing the png"), std::string::npos) << error;
  EXPECT_EQ(file_bytes(files.png), png);
  EXPECT_EQ(file_bytes(files.svg), svg);
  EXPECT_EQ(file_bytes(files.script), script);
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(scratch.path()))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"fig.gnuplot.log", "fig.gp", "fig.png", "fig.svg"}));
}

TEST(Normalize, WorksheetStatistics) {
  std::ostringstream log;
  const NormalizeResult result = compute_normalize(NormalizeOptions{}, log);
  ASSERT_EQ(result.cases.size(), 5u);
  EXPECT_EQ(result.cases[0].summary.shape, (std::vector<std::int64_t>{30, 32, 32, 1}));
  // Case 1: every pixel mapped into [0, 1], both ends reached.
  EXPECT_DOUBLE_EQ(result.cases[1].summary.min, 0.0);
  EXPECT_DOUBLE_EQ(result.cases[1].summary.max, 1.0);
  // Cases 2, 3a, 3b: mean 0 and variance 1 per pixel, so overall.
  for (const int c : {2, 3, 4}) {
    EXPECT_NEAR(result.cases[c].summary.mean, 0.0, 1e-6) << result.cases[c].id;
    EXPECT_NEAR(result.cases[c].summary.variance, 1.0, 1e-5) << result.cases[c].id;
  }
  EXPECT_EQ(result.cases[3].summary.shape, (std::vector<std::int64_t>{10, 32, 32, 1}));
  // The functional (float kernels) and the formula (double) agree to float rounding.
  EXPECT_LT(result.max_abs_difference_3a_3b, 1e-5);
  EXPECT_GT(result.cases[0].summary.variance, 10.0);  // the raw images are not normalized
  // The seed's printout.
  EXPECT_NE(
      log.str().find("Data Shape: (30, 32, 32, 1)  (# of Images, Image Width, Image Height, Channels)\nData Max: "),
      std::string::npos);
  EXPECT_NE(log.str().find("============== Case 3 Implementation ==================="), std::string::npos);
}

TEST(Mlp, LayersAndSigmoidInputs) {
  MlpSpec spec;
  spec.batch_norm = true;
  spec.init_stddev = 0.1;
  Sequential model = make_mlp(spec, 3);
  // Flatten, 3 x (Dense, BN, Activation), Dense(softmax).
  ASSERT_EQ(model.size(), 11u);
  EXPECT_EQ(hidden_activation_layers(model), (std::vector<std::size_t>{3, 6, 9}));
  EXPECT_EQ(model.layer(8).type_name(), "BatchNormalization");
  // Kernels from N(0, 0.1^2): the first Dense's 78,400 weights have that spread.
  const Tensor& kernel = model.layer(1).parameters()[0]->value;
  double sum2 = 0;
  for (std::int64_t i = 0; i < kernel.size(); ++i) sum2 += double{kernel[i]} * kernel[i];
  EXPECT_NEAR(std::sqrt(sum2 / kernel.size()), 0.1, 0.002);
  // Reading a hidden layer: the BN output of 4 images has 100 values each; in inference mode
  // with fresh moving statistics (0, 1) it equals the Dense output / sqrt(1 + eps).
  Tensor x({4, 28, 28});
  for (std::int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37 % 255) / 255.0);
  const Tensor dense = forward_through(model, 7, x).clone();
  const Tensor& bn = forward_through(model, 8, x);
  ASSERT_EQ(bn.shape(), (std::vector<std::int64_t>{4, 100}));
  for (std::int64_t i = 0; i < bn.size(); ++i) EXPECT_NEAR(bn[i], dense[i] / std::sqrt(1.001f), 1e-5);
  EXPECT_THROW(forward_through(model, 11, x), std::invalid_argument);
  spec.activation = "tanh";
  EXPECT_NE(error_of([&] { make_mlp(spec, 1); }).find("'tanh'"), std::string::npos);
}

TEST(StepTrainer, TrainsDropsTheRemainderAndChecksTheBatch) {
  data::Dataset set;
  set.images = Tensor({50, 28, 28});
  for (std::int64_t n = 0; n < 50; ++n) {
    const int label = static_cast<int>(n % 2);
    set.labels.push_back(label);
    // Class 1 is bright in the top half, class 0 in the bottom half.
    for (std::int64_t p = 0; p < 784; ++p) set.images[n * 784 + p] = ((p < 392) == (label == 1)) ? 0.9f : 0.1f;
  }
  MlpSpec spec;
  spec.hidden_units = {8};
  spec.activation = "relu";
  spec.batch_norm = true;
  spec.kernel_initializer = "he_normal";
  Sequential model = make_mlp(spec, 1);
  model.compile(std::make_unique<SGD>(0.1));
  EXPECT_NE(error_of([&] { StepTrainer(model, set, 51, 1); }).find("larger than the 50 training examples"),
            std::string::npos);
  StepTrainer trainer(model, set, 16, 1);
  EXPECT_EQ(trainer.steps_per_epoch(), 3);  // 50 / 16, the remainder of 2 dropped
  for (int i = 0; i < 30; ++i) trainer.step();
  EXPECT_EQ(trainer.steps_taken(), 30);
  EXPECT_EQ(trainer.epochs_completed(), 10);
  EXPECT_FALSE(trainer.diverged());
  EXPECT_EQ(accuracy_of(model, set), 1.0);
}

// StepTrainer times steps on one thread against the caller's count as fit does
// (src/model/thread_chooser.hpp); the bits are the same either way, and the caller's count is
// back after every step.
TEST(StepTrainer, StepsOnOneThreadGiveTheSameBits) {
  data::Dataset set;
  set.images = Tensor({50, 28, 28});
  for (std::int64_t i = 0; i < set.images.size(); ++i) set.images[i] = static_cast<float>((i * 37 % 255) / 255.0);
  for (int n = 0; n < 50; ++n) set.labels.push_back(n % 10);
  MlpSpec spec;
  spec.hidden_units = {32, 16};
  spec.activation = "relu";
  spec.batch_norm = true;
  auto train = [&](std::int64_t interval, std::int64_t* one_thread_steps) {
    Sequential model = make_mlp(spec, 3);
    model.compile(std::make_unique<SGD>(0.05));
    StepTrainer trainer(model, set, 16, 1, interval);
    profile::reset();
    profile::set_enabled(true);
    for (int i = 0; i < 40; ++i) {
      trainer.step();
      EXPECT_EQ(omp_get_max_threads(), 2) << "step " << i;
    }
    profile::set_enabled(false);
    *one_thread_steps = profile::totals().calls[static_cast<int>(profile::Section::one_thread_steps)];
    std::vector<std::vector<float>> weights;
    for (Parameter* p : model.parameters()) weights.emplace_back(p->value.data(), p->value.data() + p->value.size());
    return weights;
  };
  const int before = omp_get_max_threads();
  omp_set_num_threads(2);
  std::int64_t fixed_one_thread = 0, probing_one_thread = 0;
  const auto fixed = train(0, &fixed_one_thread);
  const auto probing = train(1, &probing_one_thread);
  omp_set_num_threads(before);
  EXPECT_EQ(fixed_one_thread, 0);
  EXPECT_GE(probing_one_thread, 16);  // the trial after the first 16 steps
  ASSERT_EQ(fixed.size(), probing.size());
  for (std::size_t k = 0; k < fixed.size(); ++k)
    EXPECT_EQ(std::memcmp(fixed[k].data(), probing[k].data(), fixed[k].size() * sizeof(float)), 0) << "parameter " << k;
  EXPECT_THROW(train(-1, &fixed_one_thread), std::invalid_argument);
}

TEST(ExperimentRequest, RefusesBadInputWithClearMessages) {
  auto refused = [](auto change) {
    ExperimentRequest r;
    r.name = "covariate-shift";
    change(r);
    return error_of([&] { check_experiment_request(r); });
  };
  EXPECT_EQ(refused([](ExperimentRequest& r) { r.name = "covariate"; }),
            "unknown experiment 'covariate' (valid: covariate-shift, learning-rate, batch-size, normalize, all)");
  EXPECT_EQ(refused([](ExperimentRequest& r) { r.steps = 0; }), "--steps is 0, must be >= 1");
  EXPECT_EQ(refused([](ExperimentRequest& r) { r.steps = -5; }), "--steps is -5, must be >= 1");
  EXPECT_EQ(refused([](ExperimentRequest& r) { r.eval_every = 0; }), "--eval-every is 0, must be >= 1");
  EXPECT_EQ(refused([](ExperimentRequest& r) { r.epochs = 3; }),
            "--epochs does not apply to covariate-shift (it trains for --steps)");
  EXPECT_EQ(refused([](ExperimentRequest& r) {
              r.name = "normalize";
              r.steps = 10;
            }),
            "--steps does not apply to normalize (it trains nothing)");
  EXPECT_EQ(refused([](ExperimentRequest& r) {
              r.name = "normalize";
              r.train_limit = 10;
            }),
            "the Fashion-MNIST options do not apply to normalize (it uses random images)");
  EXPECT_EQ(refused([](ExperimentRequest& r) {
              r.name = "batch-size";
              r.epochs = 0;
            }),
            "--epochs is 0, must be >= 1");
  EXPECT_NE(refused([](ExperimentRequest& r) { r.validation = 0; }).find("needs a validation split"),
            std::string::npos);
  EXPECT_NE(refused([](ExperimentRequest& r) { r.data_dir = "/nonexistent/data"; }).find("/nonexistent/data"),
            std::string::npos);
  EXPECT_EQ(refused([](ExperimentRequest& r) { r.steps = 10; }), "(no exception)");
  EXPECT_EQ(default_experiment_dir("learning-rate"), "out/experiments/learning-rate");
  EXPECT_EQ(default_experiment_dir("all"), "out/experiments");
}

// `all` runs batch-size last: a training set smaller than its largest batch (512) is refused
// before the first experiment, not after minutes of the others' training.
TEST(ExperimentRequest, AllRefusesATrainingSetSmallerThanTheLargestBatchFirst) {
  bnlab::testing::ScratchDirectory scratch("bnlab_all");
  ExperimentRequest r;
  r.name = "all";
  r.out_dir = scratch.path() / "out";
  r.data_dir = testing::test_data_dir(scratch.path());
  r.validation = 100;
  r.train_limit = 300;
  std::ostringstream out;
  if (!plotting_available()) GTEST_SKIP() << "gnuplot not installed";
  EXPECT_EQ(error_of([&] { run_experiment(r, out); }),
            "batch size 512 is larger than the 300 training images (raise --train-limit or drop that batch size)");
  EXPECT_EQ(out.str(), "");  // nothing ran
}

}  // namespace
}  // namespace bnlab::experiments
