#include "bnlab/data/fashion_mnist.hpp"

#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bnlab/data/idx.hpp"

namespace bnlab::data {

const std::array<std::string_view, fashion_mnist_classes>& fashion_mnist_class_names() {
  static constexpr std::array<std::string_view, fashion_mnist_classes> names = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  return names;
}

Dataset Dataset::slice(std::int64_t begin, std::int64_t end) const {
  if (begin < 0 || end < begin || end > size())
    throw std::out_of_range(fmt::format("Dataset::slice: [{}, {}) does not fit a dataset of {} examples", begin, end, size()));
  Dataset part;
  if (images.defined()) part.images = images.slice_batch(begin, end);
  part.labels.assign(labels.begin() + begin, labels.begin() + end);
  return part;
}

namespace {

constexpr const char* install_hint =
    "install it with `apt-get install dataset-fashion-mnist`, or point --data-dir at a directory holding the "
    "Fashion-MNIST IDX files";

// Debian ships the files gzip-compressed; a user may have unpacked them. Prefer .gz, as the
// package installs it.
std::filesystem::path find_part(const std::filesystem::path& data_dir, std::string_view name) {
  std::error_code ec;
  if (!std::filesystem::is_directory(data_dir, ec))
    throw FileError(data_dir.string(), fmt::format("Fashion-MNIST directory does not exist (expected {}.gz in it); {}",
                                                   name, install_hint));
  std::filesystem::path gz = data_dir / (std::string(name) + ".gz");
  std::filesystem::path plain = data_dir / std::string(name);
  if (std::filesystem::exists(gz, ec)) return gz;
  if (std::filesystem::exists(plain, ec)) return plain;
  throw FileError(data_dir.string(),
                  fmt::format("Fashion-MNIST file {}.gz (or {}) not found in this directory; {}", name, name, install_hint));
}

}  // namespace

Dataset load_fashion_mnist_part(const std::filesystem::path& data_dir, std::string_view images_name,
                                std::string_view labels_name) {
  const std::filesystem::path images_path = find_part(data_dir, images_name);
  const std::filesystem::path labels_path = find_part(data_dir, labels_name);

  const IdxArray images = read_idx_file(images_path);
  if (images.type != IdxType::UInt8 || images.dims.size() != 3 || images.dims[1] != fashion_mnist_image_size ||
      images.dims[2] != fashion_mnist_image_size)
    throw FormatError(images_path.string(),
                      fmt::format("expected unsigned byte images of shape (N, 28, 28), found {} of shape ({})",
                                  to_string(images.type), fmt::join(images.dims, ", ")));
  const IdxArray labels = read_idx_file(labels_path);
  if (labels.type != IdxType::UInt8 || labels.dims.size() != 1)
    throw FormatError(labels_path.string(), fmt::format("expected unsigned byte labels of shape (N), found {} of shape ({})",
                                                        to_string(labels.type), fmt::join(labels.dims, ", ")));
  if (labels.dims[0] != images.dims[0])
    throw FormatError(labels_path.string(), fmt::format("{} labels for {} images in {}", labels.dims[0], images.dims[0],
                                                        images_path.string()));

  Dataset dataset;
  const auto& raw_labels = std::get<std::vector<std::uint8_t>>(labels.values);
  dataset.labels.reserve(raw_labels.size());
  for (std::size_t i = 0; i < raw_labels.size(); ++i) {
    if (raw_labels[i] >= fashion_mnist_classes)
      throw FormatError(labels_path.string(),
                        fmt::format("label {} at index {} is outside 0..{}", raw_labels[i], i, fashion_mnist_classes - 1));
    dataset.labels.push_back(raw_labels[i]);
  }
  dataset.images = to_tensor(images, 255.0);
  return dataset;
}

FashionMnist load_fashion_mnist(const std::filesystem::path& data_dir) {
  FashionMnist data;
  data.train = load_fashion_mnist_part(data_dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte");
  data.test = load_fashion_mnist_part(data_dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
  return data;
}

TrainValidationSplit split_validation(const Dataset& full, std::int64_t validation_count) {
  if (validation_count < 0 || validation_count > full.size())
    throw std::invalid_argument(fmt::format("split_validation: validation_count is {}, the dataset has {} examples",
                                            validation_count, full.size()));
  return {full.slice(validation_count, full.size()), full.slice(0, validation_count)};
}

}  // namespace bnlab::data
