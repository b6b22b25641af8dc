#pragma once
// WHAT THIS MODULE REPRESENTS
//   A labelled image set in memory (Dataset) and the Fashion-MNIST loader used by the seed
//   experiments (seed 003): images as float32 in [0, 1] (pixel / 255), labels as int32 class
//   indices 0..9, and the seed's validation split (the first 5,000 training images).
// The files are the four IDX files of Debian's package `dataset-fashion-mnist`, installed in
// /usr/share/datasets/fashion-mnist/; each may be gzip-compressed (name.gz) or not (name).

#include <array>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "bnlab/tensor.hpp"

namespace bnlab::data {

inline constexpr std::string_view default_fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";
inline constexpr int fashion_mnist_classes = 10;
inline constexpr std::int64_t fashion_mnist_image_size = 28;

// Class names by label, as the dataset's documentation gives them ("T-shirt/top", ... "Ankle boot").
const std::array<std::string_view, fashion_mnist_classes>& fashion_mnist_class_names();

// WHAT THIS OBJECT REPRESENTS
//   N examples: images of shape (N, ...) and one int32 label per image.
// INVARIANT: images.dim(0) == labels.size() (when images is defined).
struct Dataset {
  Tensor images;
  std::vector<std::int32_t> labels;

  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }

  // Examples [begin, end). The images are a view sharing storage with this dataset (no copy);
  // the labels are copied. Throws std::out_of_range naming the bounds if they do not fit.
  Dataset slice(std::int64_t begin, std::int64_t end) const;
  // The first n examples (for tests and quick runs); same sharing as slice().
  Dataset subset(std::int64_t first_n) const { return slice(0, first_n); }
};

struct FashionMnist {
  Dataset train;  // 60,000 images (60000, 28, 28)
  Dataset test;   // 10,000 images (10000, 28, 28)
};

// Loads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte from data_dir, each as name.gz or name.
// ENSURES: images are (N, 28, 28), Layout::Plain, value = pixel / 255.0 rounded to float;
//   labels are in 0..9; image and label counts agree.
// Throws FileError (naming the directory and the file expected, and how to install the data)
// if a file is missing, FormatError if a file is malformed or has the wrong type, shape,
// count or a label outside 0..9.
FashionMnist load_fashion_mnist(const std::filesystem::path& data_dir = default_fashion_mnist_dir);

// Loads one images/labels pair, e.g. ("train-images-idx3-ubyte", "train-labels-idx1-ubyte").
Dataset load_fashion_mnist_part(const std::filesystem::path& data_dir, std::string_view images_name,
                                std::string_view labels_name);

struct TrainValidationSplit {
  Dataset train;
  Dataset validation;
};

// The seed's split: validation = the FIRST validation_count examples, train = the rest
// (X_valid, X_train = X_train_full[:5000], X_train_full[5000:]). Views, no copies of images.
// REQUIRES: 0 <= validation_count <= full.size(), else std::invalid_argument.
TrainValidationSplit split_validation(const Dataset& full, std::int64_t validation_count);

}  // namespace bnlab::data
