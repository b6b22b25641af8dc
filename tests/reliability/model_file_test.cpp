// The model-file loader on files whose checksum is right but whose contents lie: counts that the
// bytes cannot hold, tensor dimensions that do not match the bytes (or overflow when multiplied),
// a payload cut short with the header and checksum made to agree, and a bad shape in an
// otherwise valid file. Each is refused with the file's name and the problem, before anything
// is allocated from the bad number. (Flipped bytes, plain truncation, magic, version and size
// are covered by tests/model/serialization_test.cpp.)

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "bnlab/layers/layers.hpp"
#include "bnlab/model.hpp"

namespace bnlab {
namespace {

const std::string name = "tiny.bnlb";

std::string le(std::uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
  return s;
}

// Makes header and trailer agree with the payload: payload size and CRC-32 recomputed.
std::string with_valid_frame(std::string bytes) {
  bytes.resize(bytes.size() - 4);
  bytes.replace(8, 8, le(bytes.size() - 16, 8));
  const auto crc = static_cast<std::uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  return bytes + le(crc, 4);
}

std::string error_of(const std::string& bytes) {
  try {
    Sequential::load_from_buffer(bytes, name);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(loaded without error)";
}

class LyingModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    Sequential model("tiny");
    model.add(std::make_unique<Dense>(2, "softmax"));
    model.build({3}, 1);
    model.compile(std::make_unique<SGD>(0.1, 0.9));
    bytes_ = model.to_bytes();
    // The kernel tensor: rank 2, dimensions 3 and 2.
    kernel_ = bytes_.find(le(2, 4) + le(3, 8) + le(2, 8));
    ASSERT_NE(kernel_, std::string::npos);
  }
  std::string bytes_;
  std::size_t kernel_ = 0;
};

#define EXPECT_REFUSED(bytes, problem)                                                        \
  do {                                                                                        \
    const std::string message = error_of(bytes);                                              \
    EXPECT_EQ(message.rfind("load '" + name + "': ", 0), 0u) << message;                      \
    EXPECT_NE(message.find(problem), std::string::npos) << message << "\nlacks: " << problem; \
  } while (0)

TEST_F(LyingModelFile, TheUnchangedBytesLoad) {
  EXPECT_EQ(error_of(with_valid_frame(bytes_)), "(loaded without error)");
  EXPECT_TRUE(Sequential::load_from_buffer(bytes_, name).to_bytes() == bytes_);
}

TEST_F(LyingModelFile, ALayerCountTheBytesCannotHold) {
  // name "tiny" (4 + 4 bytes), input rank 1 and one dimension (4 + 8), then the layer count.
  std::string bytes = bytes_;
  const std::size_t count_at = 16 + 8 + 12;
  ASSERT_EQ(bytes.substr(count_at, 4), le(1, 4));
  bytes.replace(count_at, 4, le(0xFFFFFFFFu, 4));
  EXPECT_REFUSED(with_valid_frame(bytes), "layer count is 4294967295, more than the");
}

TEST_F(LyingModelFile, AStringLongerThanTheFile) {
  std::string bytes = bytes_;
  bytes.replace(16, 4, le(0x7FFFFFFFu, 4));  // the model name's length
  EXPECT_REFUSED(with_valid_frame(bytes), "truncated at byte");
}

TEST_F(LyingModelFile, DimensionsThatDoNotMatchTheBytes) {
  std::string bigger = bytes_;
  bigger.replace(kernel_ + 4, 8, le(3000, 8));  // 3000 x 2 floats where 3 x 2 are stored
  EXPECT_REFUSED(with_valid_frame(bigger), "truncated at byte");
  EXPECT_REFUSED(with_valid_frame(bigger), "while reading parameter values");

  std::string smaller = bytes_;
  smaller.replace(kernel_ + 4, 8, le(2, 8));  // 2 x 2: the bytes left over misalign the rest
  // The bytes left over are then read as the next field: here a name whose length runs past the end.
  EXPECT_REFUSED(with_valid_frame(smaller), "truncated at byte");
  EXPECT_REFUSED(with_valid_frame(smaller), "while reading parameter name");
}

TEST_F(LyingModelFile, DimensionsWhoseProductOverflows) {
  // 2^62 x 2^62 elements: multiplied in 64 bits this wraps to 0 and would "fit"; the loader
  // bounds each factor by the bytes left instead.
  std::string bytes = bytes_;
  bytes.replace(kernel_ + 4, 16, le(std::uint64_t{1} << 62, 8) + le(std::uint64_t{1} << 62, 8));
  EXPECT_REFUSED(with_valid_frame(bytes), "while reading parameter values");
  bytes.replace(kernel_ + 4, 8, le(static_cast<std::uint64_t>(-3), 8));
  EXPECT_REFUSED(with_valid_frame(bytes), "negative dimension -3");
}

TEST_F(LyingModelFile, APayloadCutShortWithAHeaderThatAgrees) {
  for (std::size_t keep : {std::size_t{5}, std::size_t{40}, kernel_ - 16 + 10, bytes_.size() - 30}) {
    const std::string cut = with_valid_frame(bytes_.substr(0, 16 + keep) + "CRC!");
    EXPECT_REFUSED(cut, "truncated at byte");
  }
}

TEST_F(LyingModelFile, AnInputShapeThatCannotBeBuilt) {
  std::string bytes = bytes_;
  bytes.replace(16 + 8 + 4, 8, le(static_cast<std::uint64_t>(-5), 8));  // input shape (-5)
  const std::string message = error_of(with_valid_frame(bytes));
  EXPECT_EQ(message, "load '" + name + "': Sequential 'tiny': input shape (-5) has a non-positive dimension");
  bytes.replace(16 + 8 + 4, 8, le(0, 8));  // input shape (0)
  const std::string zero = error_of(with_valid_frame(bytes));
  EXPECT_EQ(zero, "load '" + name + "': Sequential 'tiny': input shape (0) has a non-positive dimension");
}

// Found by fuzz_model: an architecture whose parameters would be far larger than the file (here
// an input of 10^11 features for a Dense layer: an 800 GB kernel) must be refused before the
// rebuilt layer allocates, not after. The loader lets the rebuild create only about what the
// file holds.
TEST_F(LyingModelFile, AnArchitectureFarLargerThanItsWeights) {
  std::string bytes = bytes_;
  bytes.replace(16 + 8 + 4, 8, le(100'000'000'000ull, 8));  // input shape (10^11,)
  EXPECT_REFUSED(with_valid_frame(bytes), "the architecture needs more parameters than the file holds");
}

}  // namespace
}  // namespace bnlab
