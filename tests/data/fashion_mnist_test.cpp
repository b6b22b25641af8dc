#include "bnlab/data/fashion_mnist.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "bnlab/data/idx.hpp"
#include "data/idx_files.hpp"

namespace bnlab::data {
namespace {

using testing::Bytes;
using testing::idx_ubyte;
using testing::TempDir;
using testing::write_gzip;
using testing::write_plain;

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "message: " << (text) << "\nexpected to contain: " << (part)

// n images whose pixel p of image i is (i * 7 + p) % 256, so every value can be predicted.
Bytes images_file(std::uint32_t n, std::uint32_t height = 28, std::uint32_t width = 28) {
  Bytes payload(static_cast<std::size_t>(n) * height * width);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t p = 0; p < std::size_t{height} * width; ++p)
      payload[i * height * width + p] = static_cast<std::uint8_t>((i * 7 + p) % 256);
  return idx_ubyte({n, height, width}, payload);
}

// A data dir with train and test parts: train compressed, test uncompressed, as both occur.
void write_small_fashion_dir(const std::filesystem::path& dir, const Bytes& train_labels_payload) {
  const auto n = static_cast<std::uint32_t>(train_labels_payload.size());
  write_gzip(dir / "train-images-idx3-ubyte.gz", images_file(n));
  write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_ubyte({n}, train_labels_payload));
  write_plain(dir / "t10k-images-idx3-ubyte", images_file(2));
  write_plain(dir / "t10k-labels-idx1-ubyte", idx_ubyte({2}, {9, 0}));
}

TEST(FashionMnist, LoadsGzipAndPlainFiles) {
  TempDir dir;
  write_small_fashion_dir(dir.path(), {9, 0, 3, 7});
  const FashionMnist data = load_fashion_mnist(dir.path());
  EXPECT_EQ(data.train.images.shape(), (std::vector<std::int64_t>{4, 28, 28}));
  EXPECT_EQ(data.train.images.layout(), Layout::Plain);
  EXPECT_EQ(data.train.labels, (std::vector<std::int32_t>{9, 0, 3, 7}));
  EXPECT_EQ(data.test.images.shape(), (std::vector<std::int64_t>{2, 28, 28}));
  EXPECT_EQ(data.test.labels, (std::vector<std::int32_t>{9, 0}));
  // image 3, pixel 100: (3 * 7 + 100) % 256 = 121
  EXPECT_EQ(data.train.images[3 * 784 + 100], static_cast<float>(121.0 / 255.0));
  EXPECT_EQ(data.train.images[0], 0.0f);
  // image 0, pixel 255 -> 255 -> exactly 1
  EXPECT_EQ(data.train.images[255], 1.0f);
}

TEST(FashionMnist, MissingDirectoryNamesItAndTheFix) {
  TempDir dir;
  const auto missing = dir / "not-there";
  try {
    load_fashion_mnist(missing);
    FAIL() << "no exception";
  } catch (const FileError& e) {
    EXPECT_CONTAINS(e.what(), missing.string());
    EXPECT_CONTAINS(e.what(), "train-images-idx3-ubyte");
    EXPECT_CONTAINS(e.what(), "apt-get install dataset-fashion-mnist");
    EXPECT_CONTAINS(e.what(), "--data-dir");
  }
}

TEST(FashionMnist, EmptyDirectoryNamesTheExpectedFile) {
  TempDir dir;
  try {
    load_fashion_mnist(dir.path());
    FAIL() << "no exception";
  } catch (const FileError& e) {
    EXPECT_CONTAINS(e.what(), dir.path().string());
    EXPECT_CONTAINS(e.what(), "train-images-idx3-ubyte.gz (or train-images-idx3-ubyte) not found");
    EXPECT_CONTAINS(e.what(), "apt-get install dataset-fashion-mnist");
    EXPECT_CONTAINS(e.what(), "--data-dir");
  }
  // Train present, test missing: the message names the test file.
  write_small_fashion_dir(dir.path(), {1, 2});
  std::filesystem::remove(dir / "t10k-labels-idx1-ubyte");
  try {
    load_fashion_mnist(dir.path());
    FAIL() << "no exception";
  } catch (const FileError& e) {
    EXPECT_CONTAINS(e.what(), "t10k-labels-idx1-ubyte");
  }
}

TEST(FashionMnist, RefusesInconsistentFiles) {
  TempDir dir;
  write_small_fashion_dir(dir.path(), {1, 2, 3});
  write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_ubyte({2}, {1, 2}));
  try {
    load_fashion_mnist(dir.path());
    FAIL() << "no exception";
  } catch (const FormatError& e) {
    EXPECT_CONTAINS(e.what(), (dir / "train-labels-idx1-ubyte.gz").string());
    EXPECT_CONTAINS(e.what(), "2 labels for 3 images");
  }

  write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_ubyte({3}, {1, 10, 3}));
  try {
    load_fashion_mnist(dir.path());
    FAIL() << "no exception";
  } catch (const FormatError& e) {
    EXPECT_CONTAINS(e.what(), "label 10 at index 1 is outside 0..9");
  }

  write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_ubyte({3, 1}, {1, 2, 3}));
  try {
    load_fashion_mnist(dir.path());
    FAIL() << "no exception";
  } catch (const FormatError& e) {
    EXPECT_CONTAINS(e.what(), "expected unsigned byte labels of shape (N), found unsigned byte of shape (3, 1)");
  }

  write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_ubyte({3}, {1, 2, 3}));
  write_gzip(dir / "train-images-idx3-ubyte.gz", images_file(3, 28, 27));
  try {
    load_fashion_mnist(dir.path());
    FAIL() << "no exception";
  } catch (const FormatError& e) {
    EXPECT_CONTAINS(e.what(), (dir / "train-images-idx3-ubyte.gz").string());
    EXPECT_CONTAINS(e.what(), "shape (3, 28, 27)");
  }

  // A truncated file under the .gz name: read as plain (no gzip magic) and refused.
  write_plain(dir / "train-images-idx3-ubyte.gz", {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2});
  try {
    load_fashion_mnist(dir.path());
    FAIL() << "no exception";
  } catch (const FormatError& e) {
    EXPECT_CONTAINS(e.what(), "truncated: expected 2352 bytes of data, found 2");
  }
}

TEST(FashionMnist, SplitTakesTheFirstExamplesForValidation) {
  TempDir dir;
  write_small_fashion_dir(dir.path(), {0, 1, 2, 3, 4, 5});
  const Dataset full = load_fashion_mnist(dir.path()).train;
  const TrainValidationSplit split = split_validation(full, 2);
  EXPECT_EQ(split.validation.size(), 2);
  EXPECT_EQ(split.train.size(), 4);
  EXPECT_EQ(split.validation.labels, (std::vector<std::int32_t>{0, 1}));
  EXPECT_EQ(split.train.labels, (std::vector<std::int32_t>{2, 3, 4, 5}));
  EXPECT_EQ(split.validation.images.shape(), (std::vector<std::int64_t>{2, 28, 28}));
  EXPECT_EQ(split.train.images.shape(), (std::vector<std::int64_t>{4, 28, 28}));
  // Views: the train part's first image is the full set's third, at the same address.
  EXPECT_EQ(split.train.images.data(), full.images.data() + std::ptrdiff_t{2} * 784);
  EXPECT_TRUE(split.train.images.shares_storage_with(full.images));

  EXPECT_EQ(full.subset(3).labels, (std::vector<std::int32_t>{0, 1, 2}));
  EXPECT_EQ(full.subset(3).images.dim(0), 3);
  EXPECT_EQ(full.slice(1, 1).size(), 0);
  EXPECT_THROW(full.subset(7), std::out_of_range);
  EXPECT_THROW(full.slice(3, 2), std::out_of_range);
  EXPECT_THROW(split_validation(full, 7), std::invalid_argument);
  EXPECT_THROW(split_validation(full, -1), std::invalid_argument);
  EXPECT_EQ(split_validation(full, 0).train.size(), 6);
}

TEST(FashionMnist, ClassNames) {
  EXPECT_EQ(fashion_mnist_class_names()[0], "T-shirt/top");
  EXPECT_EQ(fashion_mnist_class_names()[9], "Ankle boot");
}

// --- the real data set, when Debian's dataset-fashion-mnist is installed ------------------

class RealFashionMnist : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    const std::filesystem::path dir(default_fashion_mnist_dir);
    std::error_code ec;
    if (std::filesystem::exists(dir / "train-images-idx3-ubyte.gz", ec) ||
        std::filesystem::exists(dir / "train-images-idx3-ubyte", ec))
      data_ = new FashionMnist(load_fashion_mnist(dir));
  }
  static void TearDownTestSuite() {
    delete data_;
    data_ = nullptr;
  }
  void SetUp() override {
    if (!data_)
      GTEST_SKIP() << "Fashion-MNIST not found in " << default_fashion_mnist_dir
                   << " (apt-get install dataset-fashion-mnist)";
  }
  static FashionMnist* data_;
};
FashionMnist* RealFashionMnist::data_ = nullptr;

TEST_F(RealFashionMnist, SizesAndShapes) {
  EXPECT_EQ(data_->train.images.shape(), (std::vector<std::int64_t>{60000, 28, 28}));
  EXPECT_EQ(data_->train.size(), 60000);
  EXPECT_EQ(data_->test.images.shape(), (std::vector<std::int64_t>{10000, 28, 28}));
  EXPECT_EQ(data_->test.size(), 10000);
}

TEST_F(RealFashionMnist, KnownFirstLabelsAndBalancedClasses) {
  EXPECT_EQ(data_->train.labels[0], 9);  // "Ankle boot"
  EXPECT_EQ(data_->test.labels[0], 9);
  EXPECT_EQ(fashion_mnist_class_names()[data_->train.labels[0]], "Ankle boot");
  // The data set is balanced: 6,000 training and 1,000 test images per class.
  std::array<int, 10> train_counts{}, test_counts{};
  for (auto label : data_->train.labels) ++train_counts.at(label);
  for (auto label : data_->test.labels) ++test_counts.at(label);
  for (int c = 0; c < 10; ++c) {
    EXPECT_EQ(train_counts[c], 6000) << "class " << c;
    EXPECT_EQ(test_counts[c], 1000) << "class " << c;
  }
}

TEST_F(RealFashionMnist, PixelsAreScaledToUnitRange) {
  for (const Dataset* part : {&data_->train, &data_->test}) {
    const float* p = part->images.data();
    const auto [lo, hi] = std::minmax_element(p, p + part->images.size());
    EXPECT_EQ(*lo, 0.0f);
    EXPECT_EQ(*hi, 1.0f);
    // Every value is k / 255 for an integer k.
    for (std::int64_t i = 0; i < part->images.size(); i += 997) {
      const double k = static_cast<double>(p[i]) * 255.0;
      EXPECT_NEAR(k, std::round(k), 1e-4) << "index " << i;
    }
  }
}

TEST_F(RealFashionMnist, SeedSplit) {
  const TrainValidationSplit split = split_validation(data_->train, 5000);
  EXPECT_EQ(split.train.size(), 55000);
  EXPECT_EQ(split.validation.size(), 5000);
  EXPECT_EQ(split.train.images.dim(0), 55000);
  EXPECT_EQ(split.validation.images.dim(0), 5000);
  EXPECT_EQ(split.validation.labels[0], 9);
  EXPECT_EQ(split.validation.images.data(), data_->train.images.data());
  EXPECT_EQ(split.train.labels[0], data_->train.labels[5000]);
  EXPECT_EQ(split.train.images.data(), data_->train.images.data() + std::ptrdiff_t{5000} * 784);
}

}  // namespace
}  // namespace bnlab::data
