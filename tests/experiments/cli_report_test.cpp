// `bnlab experiment`: the whole chain once with tiny settings (`all` on a Fashion-MNIST
// prefix), its files (CSV, JSON, PNG, SVG, gnuplot scripts, reports), the CLI's refusals, and
// the combined report opened in headless Chromium: every figure present and rendered, no
// console output.

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bnlab/experiments/plotting.hpp"
#include "bnlab/experiments/report.hpp"
#include "experiments/experiments_support.hpp"

namespace bnlab::experiments {
namespace {

using cli::testing::Json;
using cli::testing::parse_json;
using cli::testing::read_text;
using cli::testing::run_bnlab;
using cli::testing::RunResult;
using cli::testing::split;
using cli::testing::TempDir;

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool is_png(const std::filesystem::path& path) {
  const std::string bytes = read_text(path);
  return bytes.size() > 1000 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

// The figures every report must hold, by experiment folder.
const std::vector<std::pair<std::string, std::vector<std::string>>>& expected_figures() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> figures{
      {"normalize", {"normalize_data", "normalize_case1", "normalize_case2", "normalize_case3a", "normalize_case3b"}},
      {"covariate-shift", {"covariate_shift"}},
      {"learning-rate", {"learning_rate"}},
      {"batch-size", {"batch_size"}},
  };
  return figures;
}

class ExperimentAll : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    if (!plotting_available()) return;
    scratch_ = std::make_unique<TempDir>();
    const auto data = testing::test_data_dir(scratch_->path());
    std::vector<std::string> args{"experiment", "all", "--out", (scratch_->path() / "out").string(),
                                  "--steps", "30", "--eval-every", "10", "--epochs", "2", "--seed", "7"};
    for (const auto& a : testing::tiny_data_args(data)) args.push_back(a);
    run_ = std::make_unique<RunResult>(run_bnlab(args, scratch_->path()));
  }
  static void TearDownTestSuite() {
    run_.reset();
    scratch_.reset();
  }
  void SetUp() override {
    if (!plotting_available()) GTEST_SKIP() << "gnuplot is not installed (scripts/setup.sh installs gnuplot-nox)";
    ASSERT_EQ(run_->status, 0) << run_->err << "\n" << run_->out;
  }
  static std::filesystem::path out() { return scratch_->path() / "out"; }

  static inline std::unique_ptr<TempDir> scratch_;
  static inline std::unique_ptr<RunResult> run_;
};

TEST_F(ExperimentAll, PrintsProgressAndWritesEveryFile) {
  EXPECT_TRUE(has(run_->out, "[covariate-shift] network with BN: step 30/30"));
  EXPECT_TRUE(has(run_->out, "[learning-rate] network 8/8: Baseline-x5-Sigmoid"));
  EXPECT_TRUE(has(run_->out, "[batch-size] with BN    batch  512"));
  EXPECT_TRUE(has(run_->out, "Data Variance: "));
  EXPECT_TRUE(has(run_->out, "report: " + (out() / "report.html").string()));
  for (const auto& [folder, figures] : expected_figures()) {
    EXPECT_TRUE(std::filesystem::exists(out() / folder / "report.html")) << folder;
    for (const auto& stem : figures) {
      EXPECT_TRUE(is_png(out() / folder / (stem + ".png"))) << stem;
      const std::string svg = read_text(out() / folder / (stem + ".svg"));
      EXPECT_TRUE(has(svg, "<svg") && has(svg, "</svg>")) << stem;
      EXPECT_TRUE(has(read_text(out() / folder / (stem + ".gp")), "$")) << stem;  // data inline
    }
  }
  // No leftovers of atomic writes or gnuplot logs.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(out()))
    EXPECT_FALSE(has(entry.path().filename().string(), ".tmp.") || has(entry.path().filename().string(), ".log"))
        << entry.path();
}

TEST_F(ExperimentAll, CovariateShiftNumbers) {
  const auto rows = split(read_text(out() / "covariate-shift" / "covariate_shift.csv"), '\n');
  ASSERT_GE(rows.size(), 2u);
  EXPECT_EQ(rows[0], "network,step,test_accuracy,p15,p50,p85,train_loss");
  const Json json = parse_json(read_text(out() / "covariate-shift" / "covariate_shift.json"));
  EXPECT_EQ(json.at("format").string, "bnlab-experiment-covariate-shift");
  EXPECT_EQ(json.at("settings").at("steps").number, 30);
  EXPECT_EQ(json.at("settings").at("batch_size").number, 60);
  const auto& networks = json.at("networks").array;
  ASSERT_EQ(networks.size(), 2u);
  EXPECT_EQ(networks[0].at("network").string, "without BN");
  EXPECT_EQ(networks[1].at("network").string, "with BN");
  for (const auto& n : networks) {
    const auto& records = n.at("records").array;
    ASSERT_EQ(records.size(), 3u);  // steps 10, 20, 30
    EXPECT_EQ(records[2].at("step").number, 30);
    for (const auto& r : records) {
      EXPECT_LE(r.at("p15").number, r.at("p50").number);
      EXPECT_LE(r.at("p50").number, r.at("p85").number);
      EXPECT_GE(r.at("test_accuracy").number, 0);
      EXPECT_LE(r.at("test_accuracy").number, 1);
    }
  }
  EXPECT_EQ(rows.size(), 1u + 6u + 1u);  // header, 2 x 3 records, the final newline's empty part
}

TEST_F(ExperimentAll, LearningRateAndBatchSizeTables) {
  const Json lr = parse_json(read_text(out() / "learning-rate" / "learning_rate.json"));
  const auto& networks = lr.at("networks").array;
  ASSERT_EQ(networks.size(), 8u);
  EXPECT_EQ(networks[3].at("network").string, "BN-x30");
  EXPECT_DOUBLE_EQ(networks[3].at("learning_rate").number, 0.045);
  EXPECT_EQ(networks[3].at("points").array.size(), 3u);
  // The target is the Baseline's best, so the Baseline itself reaches it.
  EXPECT_DOUBLE_EQ(lr.at("target_accuracy").number, networks[0].at("best_val_accuracy").number);
  EXPECT_EQ(networks[0].at("steps_to_target").number, networks[0].at("best_step").number);
  EXPECT_EQ(split(read_text(out() / "learning-rate" / "learning_rate_table.csv"), '\n').size(), 1u + 8u + 1u);

  const Json bs = parse_json(read_text(out() / "batch-size" / "batch_size.json"));
  const auto& runs = bs.at("runs").array;
  ASSERT_EQ(runs.size(), 10u);
  const double sizes[] = {4, 16, 32, 128, 512};
  for (std::size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].at("batch_size").number, sizes[i % 5]);
    EXPECT_EQ(runs[i].at("batch_norm").boolean, i < 5);
    EXPECT_DOUBLE_EQ(runs[i].at("learning_rate").number, 0.01 * sizes[i % 5] / 32);
    ASSERT_EQ(runs[i].at("epochs").array.size(), 2u);
    const auto& e = runs[i].at("epochs")[1];
    EXPECT_NEAR(e.at("gap").number, e.at("train_accuracy").number - e.at("val_accuracy").number, 1e-12);
  }
  EXPECT_EQ(bs.at("settings").at("train_examples").number, 600);
}

// Chromium: --dump-dom prints the DOM after the load event, when the report's script has
// marked each figure; console messages (errors included) appear on stderr as ":CONSOLE".
struct BrowserRun {
  int status = -1;
  std::string dom;
  std::string log;
};

std::string chromium_binary() {
  for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (std::filesystem::exists(candidate)) return candidate;
  return "";
}

BrowserRun open_in_chromium(const std::filesystem::path& page, const std::filesystem::path& scratch) {
  const auto profile = scratch / "chromium-profile";
  const auto dom = scratch / "dom.html";
  const auto log = scratch / "chromium.log";
  // fmt rather than std::string operator+: GCC 12 warns falsely (-Wrestrict) on the latter here.
  const std::string command = fmt::format(
      "'{}' --headless --disable-gpu --no-sandbox --no-first-run --user-data-dir='{}' --enable-logging=stderr "
      "--v=0 --virtual-time-budget=5000 --dump-dom 'file://{}' > '{}' 2> '{}'",
      chromium_binary(), profile.string(), std::filesystem::absolute(page).string(), dom.string(), log.string());
  BrowserRun run;
  const int status = std::system(command.c_str());
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.dom = read_text(dom);
  run.log = read_text(log);
  return run;
}

std::string body_attribute(const std::string& dom, const std::string& name) {
  const std::regex body("<body[^>]*\\s" + name + "=\"([^\"]*)\"");
  std::smatch match;
  return std::regex_search(dom, match, body) ? match[1].str() : "(missing)";
}

std::vector<std::string> console_lines(const std::string& log) {
  std::vector<std::string> lines;
  for (const auto& line : split(log, '\n'))
    if (has(line, ":CONSOLE")) lines.push_back(line);
  return lines;
}

TEST_F(ExperimentAll, ReportRendersEveryFigureInChromium) {
  if (chromium_binary().empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it)";
  const auto report = out() / "report.html";
  const std::string html = read_text(report);
  EXPECT_FALSE(has(html, "http://") || has(html, "https://")) << "the report must not load anything from the network";
  std::size_t expected = 0;
  for (const auto& [folder, figures] : expected_figures()) expected += figures.size();

  const BrowserRun browser = open_in_chromium(report, scratch_->path());
  ASSERT_EQ(browser.status, 0) << browser.log;
  EXPECT_EQ(body_attribute(browser.dom, "data-figures"), std::to_string(expected));
  EXPECT_EQ(body_attribute(browser.dom, "data-figures-rendered"), std::to_string(expected));
  EXPECT_EQ(body_attribute(browser.dom, "data-errors"), "0");
  EXPECT_FALSE(has(browser.dom, "data-rendered=\"no\""));
  EXPECT_TRUE(console_lines(browser.log).empty()) << console_lines(browser.log).front();
  for (const char* title : {"Covariate shift", "Learning rate", "Batch size", "Data normalization"})
    EXPECT_TRUE(has(browser.dom, title)) << title;
}

// The same check must see a broken figure and a script error: a report whose one figure is not
// a PNG, with a failing script appended.
TEST_F(ExperimentAll, BrowserCheckDetectsABrokenFigure) {
  if (chromium_binary().empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it)";
  const auto bogus = scratch_->path() / "bogus.png";
  std::ofstream(bogus) << "this is not a PNG";
  std::string html = render_report("broken", "", {ReportSection{"b", "B", "", {{bogus, "not an image"}}}});
  html.insert(html.find("</body>"), "<script>console.error('deliberate'); undefined_function();</script>\n");
  const auto page = scratch_->path() / "broken.html";
  std::ofstream(page) << html;
  const BrowserRun browser = open_in_chromium(page, scratch_->path());
  ASSERT_EQ(browser.status, 0) << browser.log;
  EXPECT_EQ(body_attribute(browser.dom, "data-figures"), "1");
  EXPECT_EQ(body_attribute(browser.dom, "data-figures-rendered"), "0");
  EXPECT_TRUE(has(browser.dom, "data-rendered=\"no\""));
  EXPECT_EQ(body_attribute(browser.dom, "data-errors"), "1");
  EXPECT_FALSE(console_lines(browser.log).empty());
}

TEST(ExperimentCli, BadInputExitsWithStatus2) {
  TempDir scratch;
  const auto unknown = run_bnlab({"experiment", "covariate"}, scratch.path());
  EXPECT_EQ(unknown.status, 2);
  EXPECT_TRUE(has(unknown.err, "bnlab: error: unknown experiment 'covariate' (valid: covariate-shift"))
      << unknown.err;
  const auto zero = run_bnlab({"experiment", "covariate-shift", "--steps", "0"}, scratch.path());
  EXPECT_EQ(zero.status, 2);
  EXPECT_TRUE(has(zero.err, "--steps is 0, must be >= 1")) << zero.err;
  const auto text = run_bnlab({"experiment", "learning-rate", "--steps", "many"}, scratch.path());
  EXPECT_EQ(text.status, 2);
  EXPECT_TRUE(has(text.err, "bnlab: error:")) << text.err;
  const auto wrong = run_bnlab({"experiment", "normalize", "--epochs", "3"}, scratch.path());
  EXPECT_EQ(wrong.status, 2);
  EXPECT_TRUE(has(wrong.err, "--epochs does not apply to normalize")) << wrong.err;
  const auto none = run_bnlab({"experiment"}, scratch.path());
  EXPECT_EQ(none.status, 2);
  // Nothing was trained or written for a refused request.
  EXPECT_FALSE(std::filesystem::exists(scratch.path() / "out"));
}

}  // namespace
}  // namespace bnlab::experiments
