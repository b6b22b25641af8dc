#include "bnlab/experiments/normalize.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <ostream>
#include <stdexcept>

#include <fmt/format.h>

#include "bnlab/batchnorm.hpp"
#include "bnlab/data/synthetic.hpp"
#include "bnlab/experiments/output_files.hpp"
#include "bnlab/experiments/plotting.hpp"
#include "bnlab/experiments/step_training.hpp"
#include "experiments/experiment_util.hpp"

namespace bnlab::experiments {
namespace {

using detail::csv_number;
using detail::json_number;
using detail::json_string;

constexpr std::int64_t batch_images = 10;  // the worksheet's first10_data
constexpr double worksheet_epsilon = 1e-8;

std::vector<float> values_of(const Tensor& t) { return {t.data(), t.data() + t.size()}; }

// Per pixel mean and (population) variance over the first `rows` images, in double.
void pixel_statistics(const Tensor& images, std::int64_t rows, std::vector<double>& mean, std::vector<double>& var) {
  const std::int64_t pixels = images.size() / images.dim(0);
  mean.assign(static_cast<std::size_t>(pixels), 0.0);
  var.assign(static_cast<std::size_t>(pixels), 0.0);
  for (std::int64_t n = 0; n < rows; ++n)
    for (std::int64_t j = 0; j < pixels; ++j) mean[j] += images[n * pixels + j];
  for (auto& m : mean) m /= static_cast<double>(rows);
  for (std::int64_t n = 0; n < rows; ++n)
    for (std::int64_t j = 0; j < pixels; ++j) {
      const double d = images[n * pixels + j] - mean[j];
      var[j] += d * d;
    }
  for (auto& v : var) v /= static_cast<double>(rows);
}

// Case 3a: the worksheet's three lines of NumPy, per pixel over the batch, in double.
Tensor batch_normalize_by_formula(const Tensor& batch) {
  std::vector<double> mean, var;
  pixel_statistics(batch, batch.dim(0), mean, var);
  Tensor out(batch.shape(), batch.layout());
  const std::int64_t pixels = batch.size() / batch.dim(0);
  for (std::int64_t n = 0; n < batch.dim(0); ++n)
    for (std::int64_t j = 0; j < pixels; ++j)
      out[n * pixels + j] =
          static_cast<float>((batch[n * pixels + j] - mean[j]) / std::sqrt(var[j] + worksheet_epsilon));
  return out;
}

// Case 3b: tf.nn.batch_normalization(first10, mean, variance, offset 0, scale 1, 1e-8) through
// bnlab's functional form. Each pixel is one feature (the mean has shape (32, 32, 1) in the
// worksheet), so the batch is viewed as NC with 1,024 features.
Tensor batch_normalize_functional(const Tensor& batch) {
  std::vector<double> mean, var;
  pixel_statistics(batch, batch.dim(0), mean, var);
  const std::int64_t pixels = batch.size() / batch.dim(0);
  Tensor mean_t({pixels}), var_t({pixels});
  for (std::int64_t j = 0; j < pixels; ++j) {
    mean_t[j] = static_cast<float>(mean[j]);
    var_t[j] = static_cast<float>(var[j]);
  }
  const Tensor x = batch.clone().reshape({batch.dim(0), pixels}, Layout::NC);
  Tensor y = batch_normalization(x, mean_t, var_t, Tensor(), Tensor(), static_cast<float>(worksheet_epsilon));
  return y.reshape(batch.shape(), batch.layout());
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

// The seed's figure for one case: imshow of images 0 and 4 (grey, each scaled to its own range
// as imshow does) and the histogram of every value.
std::string case_figure_commands(const NormalizeCase& c) {
  const std::int64_t size = c.values.dim(1);
  const std::int64_t pixels = c.values.size() / c.values.dim(0);
  std::string text;
  for (const std::int64_t image : {0, 4}) {
    text += fmt::format("$img{} << EOD\n", image);
    for (std::int64_t r = 0; r < size; ++r) {
      for (std::int64_t col = 0; col < size; ++col)
        fmt::format_to(std::back_inserter(text), "{}{}", col ? " " : "", c.values[image * pixels + r * size + col]);
      text += "\n";
    }
    text += "EOD\n";
  }
  const auto values = values_of(c.values);
  const auto edges = auto_histogram_edges(values);
  const auto counts = histogram_counts(values, edges);
  text += "$hist << EOD\n";
  for (std::size_t i = 0; i < counts.size(); ++i)
    text += fmt::format("{} {} {}\n", (edges[i] + edges[i + 1]) / 2, counts[i], edges[i + 1] - edges[i]);
  text += "EOD\n";
  // Enhanced text would read the '_' of "batch_normalization" as a subscript.
  std::string title;
  for (const char ch : c.description) title += ch == '_' ? std::string("\\_") : std::string(1, ch);
  text += "set multiplot layout 1,3 title " + gnuplot_quote(title) + "\n";
  text += "set palette gray\nset colorbox\nset size ratio -1\nunset key\n";
  text += fmt::format("set xrange [-0.5:{0}-0.5]\nset yrange [{0}-0.5:-0.5]\n", size);
  text += "unset xtics\nunset ytics\n";
  for (const std::int64_t image : {0, 4})
    text += fmt::format("set title \"image {}\"\nplot $img{} matrix with image\n", image, image);
  text += "reset\nset title \"histogram of all values\"\nunset key\nset grid lc rgb \"#dddddd\"\n";
  text += "set style fill solid 0.85 border lc rgb \"#1f4e79\"\nset ylabel \"count\"\n";
  text += "plot $hist using 1:2:3 with boxes lc rgb \"#1f77b4\"\n";
  text += "unset multiplot\n";
  return text;
}

}  // namespace

std::vector<double> auto_histogram_edges(std::vector<float> values) {
  if (values.empty()) throw std::invalid_argument("auto_histogram_edges: no values");
  std::sort(values.begin(), values.end());
  double first = values.front(), last = values.back();
  const double n = static_cast<double>(values.size());
  std::int64_t bins = 1;
  if (last > first) {
    const double sturges = (last - first) / (std::log2(n) + 1.0);
    auto copy = values;
    const double iqr = percentile(copy, 75) - percentile(copy, 25);
    const double fd = 2.0 * iqr * std::pow(n, -1.0 / 3.0);
    const double width = fd > 0 ? std::min(fd, sturges) : sturges;
    bins = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil((last - first) / width)));
  } else {
    first -= 0.5;
    last += 0.5;
  }
  std::vector<double> edges(static_cast<std::size_t>(bins + 1));
  for (std::int64_t i = 0; i <= bins; ++i)
    edges[i] = first + (last - first) * static_cast<double>(i) / static_cast<double>(bins);
  edges.back() = last;
  return edges;
}

std::vector<std::int64_t> histogram_counts(const std::vector<float>& values, const std::vector<double>& edges) {
  if (edges.size() < 2) throw std::invalid_argument("histogram_counts: need at least 2 edges");
  const auto bins = static_cast<std::int64_t>(edges.size() - 1);
  std::vector<std::int64_t> counts(static_cast<std::size_t>(bins), 0);
  const double first = edges.front(), last = edges.back();
  for (const float v : values) {
    if (!(v >= first && v <= last)) continue;  // NumPy drops values outside the range
    auto i = static_cast<std::int64_t>((v - first) / (last - first) * static_cast<double>(bins));
    i = std::clamp<std::int64_t>(i, 0, bins - 1);
    // Bins are [a, b) except the last, [a, b]; correct the division's rounding at an edge.
    while (i > 0 && v < edges[i]) --i;
    while (i + 1 < bins && v >= edges[i + 1]) ++i;
    ++counts[i];
  }
  return counts;
}

NormalizeResult compute_normalize(const NormalizeOptions& options, std::ostream& out) {
  NormalizeResult result;
  result.options = options;
  const Tensor images = data::worksheet_images(options.seed);
  const Tensor first10 = images.slice_batch(0, batch_images);
  const std::pair<const char*, const char*> banners[] = {
      {"===================================", "==================================="},
      {"============== Normalized Data ==============", "============================================="},
      {"============== Standardized Data  ==============", "================================================"},
      {"============== Case 3 Implementation ===================", ""},
      {"============== Case 3b bnlab::batch_normalization ===================", "================================="},
  };
  result.cases.push_back({"data", "Data: 30 random 32x32 images", images, {}});
  result.cases.push_back({"case1", "Case 1: min-max normalization (per pixel, over the 30 images)",
                          data::min_max_scale(images), {}});
  result.cases.push_back({"case2", "Case 2: standardization (per pixel, over the 30 images)",
                          data::standardize(images), {}});
  result.cases.push_back({"case3a", "Case 3a: batch normalization of the first 10 images by the formula",
                          batch_normalize_by_formula(first10), {}});
  result.cases.push_back({"case3b", "Case 3b: the same through bnlab::batch_normalization",
                          batch_normalize_functional(first10), {}});
  out << fmt::format("[normalize] seed 001's worksheet: {} random 32x32 images (seed {})\n", images.dim(0),
                     options.seed);
  for (std::size_t i = 0; i < result.cases.size(); ++i) {
    auto& c = result.cases[i];
    c.summary = data::summarize(c.values);
    std::string summary = data::format_summary(c.summary);
    // The seed names the axes of the raw data's shape (only there).
    if (i == 0) summary.insert(summary.find('\n'), "  (# of Images, Image Width, Image Height, Channels)");
    out << "\n" << banners[i].first << "\n" << summary;
    if (*banners[i].second) out << banners[i].second << "\n";
  }
  const Tensor& a = result.cases[3].values;
  const Tensor& b = result.cases[4].values;
  double diff = 0;
  for (std::int64_t i = 0; i < a.size(); ++i) diff = std::max(diff, std::fabs(double{a[i]} - b[i]));
  result.max_abs_difference_3a_3b = diff;
  out << fmt::format("\n[normalize] case 3a vs 3b: largest absolute difference {:.3g}\n", diff);
  out.flush();
  return result;
}

ExperimentOutput write_normalize(const NormalizeResult& result) {
  const auto dir = result.options.out_dir;
  std::string csv = "case,description,shape,max,min,mean,variance\n";
  for (const auto& c : result.cases)
    csv += fmt::format("{},\"{}\",\"{}\",{},{},{},{}\n", c.id, c.description, shape_text(c.summary.shape),
                       csv_number(c.summary.max), csv_number(c.summary.min), csv_number(c.summary.mean),
                       csv_number(c.summary.variance));
  write_file_atomically(dir / "normalize.csv", csv);

  std::string json = fmt::format(
      "{{\n  \"format\": \"bnlab-experiment-normalize\",\n  \"version\": 1,\n  \"settings\": {{\"seed\": {}, "
      "\"images\": {}, \"batch_images\": {}, \"epsilon\": {}}},\n  \"max_abs_difference_3a_3b\": {},\n  \"cases\": [\n",
      result.options.seed, result.cases.front().values.dim(0), batch_images, json_number(worksheet_epsilon),
      json_number(result.max_abs_difference_3a_3b));
  for (std::size_t i = 0; i < result.cases.size(); ++i) {
    const auto& c = result.cases[i];
    std::string shape = "[";
    for (std::size_t k = 0; k < c.summary.shape.size(); ++k) shape += (k ? ", " : "") + std::to_string(c.summary.shape[k]);
    json += fmt::format(
        "    {{\"case\": {}, \"description\": {}, \"shape\": {}], \"max\": {}, \"min\": {}, \"mean\": {}, "
        "\"variance\": {}}}{}\n",
        json_string(c.id), json_string(c.description), shape, json_number(c.summary.max), json_number(c.summary.min),
        json_number(c.summary.mean), json_number(c.summary.variance), i + 1 < result.cases.size() ? "," : "");
  }
  json += "  ]\n}\n";
  write_file_atomically(dir / "normalize.json", json);

  ReportSection section{"normalize", "Data normalization (seed 001's worksheet)", "", {}};
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : result.cases) {
    render_figure(dir, "normalize_" + c.id, case_figure_commands(c), 1350, 430);
    rows.push_back({c.description, shape_text(c.summary.shape), fmt::format("{:.6g}", c.summary.max),
                    fmt::format("{:.6g}", c.summary.min), fmt::format("{:.6g}", c.summary.mean),
                    fmt::format("{:.6g}", c.summary.variance)});
    section.figures.push_back({dir / ("normalize_" + c.id + ".png"),
                               c.description + ": images 0 and 4 and the histogram of all values (bins as NumPy's "
                                               "'auto')."});
  }
  section.body_html +=
      html_paragraph(
          "30 random 32x32 images (Gaussian noise times an integer 0..4 plus an integer 0..59 per image, bnlab's "
          "draws), normalized as the worksheet does: per pixel over the images (NumPy's axis=0). Cases 3a and 3b "
          "normalize only the first 10 images, with their own mean and variance and epsilon 1e-8.") +
      html_table({"case", "shape", "max", "min", "mean", "variance"}, rows) +
      html_paragraph(fmt::format(
          "The images look the same in every case (each picture is scaled to its own range, as imshow does); only "
          "the numbers on the axes change: case 1 maps each pixel into [0, 1], cases 2, 3a and 3b give mean 0 and "
          "variance 1 per pixel, hence overall. Cases 3a (formula, double) and 3b (bnlab's float kernels) differ by "
          "at most {:.3g}.",
          result.max_abs_difference_3a_3b));
  return detail::write_single_report("normalize", dir, "bnlab experiment: data normalization", std::move(section));
}

ExperimentOutput run_normalize(const NormalizeOptions& options, std::ostream& out) {
  prepare_output_directory(options.out_dir, "output directory");
  return write_normalize(compute_normalize(options, out));
}

}  // namespace bnlab::experiments
