#pragma once
// Seed 001's worksheet: 30 random 32 x 32 images (data::worksheet_images: Gaussian noise times
// an integer 0..4 plus an integer 0..59, per image), then
//   data      the images as drawn
//   case 1    min-max normalization per pixel over the 30 images: (x - min) / (max - min)
//   case 2    standardization per pixel: (x - mean) / std
//   case 3a   batch normalization of the first 10 images by the formula, per pixel over the 10:
//             (x - mean) / sqrt(var + 1e-8), computed here in double
//   case 3b   the same through bnlab's functional batch_normalization (the kernels' inference
//             path, tf.nn.batch_normalization's signature) with the 10 images' mean and variance
// printing for each what the seed prints (shape, max, min, mean, variance) and drawing the
// seed's figure: images 0 and 4 and the histogram of all values (NumPy's bins='auto').
//
// Files in out_dir: normalize.csv (case,description,shape,max,min,mean,variance),
// normalize.json, normalize_<case>.{png,svg,gp} for data, case1, case2, case3a, case3b;
// report.html.

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "bnlab/data/transforms.hpp"
#include "bnlab/experiments/experiment.hpp"
#include "bnlab/tensor.hpp"

namespace bnlab::experiments {

struct NormalizeOptions {
  std::uint64_t seed = 678;  // the worksheet's np.random.seed(678) (bnlab's draws, not NumPy's)
  std::filesystem::path out_dir = "out/experiments/normalize";
};

struct NormalizeCase {
  std::string id;           // "data", "case1", "case2", "case3a", "case3b"
  std::string description;  // the worksheet's heading
  Tensor values;
  data::Summary summary;
};

struct NormalizeResult {
  NormalizeOptions options;
  std::vector<NormalizeCase> cases;
  double max_abs_difference_3a_3b = 0;  // |case 3a - case 3b|, largest over all values
};

// Histogram bins as NumPy's bins='auto': the smaller of the Freedman-Diaconis and Sturges bin
// widths (Sturges alone when the interquartile range is 0), over [min, max]. Returns the bin
// edges (count + 1 values). Throws std::invalid_argument for no values; a constant input gives
// one bin of width 1 around the value, as NumPy does.
std::vector<double> auto_histogram_edges(std::vector<float> values);
std::vector<std::int64_t> histogram_counts(const std::vector<float>& values, const std::vector<double>& edges);

NormalizeResult compute_normalize(const NormalizeOptions& options, std::ostream& out);
ExperimentOutput write_normalize(const NormalizeResult& result);
ExperimentOutput run_normalize(const NormalizeOptions& options, std::ostream& out);

}  // namespace bnlab::experiments
