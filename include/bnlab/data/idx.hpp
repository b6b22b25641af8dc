#pragma once
// WHAT THIS MODULE REPRESENTS
//   A reader for IDX files, the format of the MNIST and Fashion-MNIST distributions:
//   a big-endian header (two zero bytes, a type code, the number of dimensions, then one
//   uint32 per dimension) followed by the elements in row-major order, big-endian.
//   Files may be plain or gzip-compressed; gzip is recognised by its magic bytes (1f 8b),
//   not by the file name. The layout and the limits are documented in docs/formats.md,
//   section "IDX input files".
// ENSURES
//   Every malformed input is refused with a FormatError whose message starts with the file
//   name and says what is wrong; a missing or unreadable file gives a FileError. Nothing is
//   allocated from an unchecked header: a plain file's payload is checked against the bytes
//   actually present, and a gzip stream is decompressed incrementally, never beyond the size
//   the (validated) header announces.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "bnlab/tensor.hpp"

namespace bnlab::data {

// Base of the data layer's errors: path() is the file or directory concerned, problem() the
// reason alone; what() is "<path>: <problem>".
class DataError : public std::runtime_error {
public:
  DataError(std::string path, std::string problem);
  const std::string& path() const { return path_; }
  const std::string& problem() const { return problem_; }

private:
  std::string path_;
  std::string problem_;
};

// The file or directory is missing or cannot be read.
class FileError : public DataError {
public:
  using DataError::DataError;
};

// The bytes are not a valid IDX file (or not a valid gzip stream around one).
class FormatError : public DataError {
public:
  using DataError::DataError;
};

// The type codes of the IDX specification (third header byte).
enum class IdxType : std::uint8_t {
  UInt8 = 0x08,
  Int8 = 0x09,
  Int16 = 0x0B,
  Int32 = 0x0C,
  Float32 = 0x0D,
  Float64 = 0x0E,
};

std::string to_string(IdxType type);       // "unsigned byte", "float", ...
std::size_t element_bytes(IdxType type);   // 1, 1, 2, 4, 4, 8

// Limits that keep a hostile header from asking for absurd memory. Real IDX files have 1 to
// 4 dimensions; Fashion-MNIST's largest has 47,040,000 elements.
inline constexpr int max_idx_rank = 8;
inline constexpr std::uint64_t max_idx_elements = std::uint64_t{1} << 31;

// The decoded contents of one IDX file. values holds the alternative matching type, already
// converted to host byte order, with product(dims) elements.
struct IdxArray {
  using Values = std::variant<std::vector<std::uint8_t>, std::vector<std::int8_t>, std::vector<std::int16_t>,
                              std::vector<std::int32_t>, std::vector<float>, std::vector<double>>;

  IdxType type = IdxType::UInt8;
  std::vector<std::int64_t> dims;
  Values values;

  std::int64_t size() const;               // number of elements, product(dims)
  double value(std::int64_t index) const;  // element index converted to double, any type
};

// Parses a complete, uncompressed IDX image held in memory. name is used only in error
// messages (a file path, or a label such as "<fuzz input>"). This is the single parser the
// file reader goes through, and the entry point for a fuzz target.
IdxArray parse_idx_buffer(const std::uint8_t* data, std::size_t size, const std::string& name);

// The whole contents of an IDX file held in memory, plain or gzip-compressed (told apart by the
// gzip magic, as read_idx_file does); name is used only in error messages. The entry point of
// the IDX fuzz target, covering the gzip path that parse_idx_buffer does not.
IdxArray parse_idx_file_contents(const std::uint8_t* data, std::size_t size, const std::string& name);

// Reads an IDX file, plain or gzip-compressed: the file's bytes through parse_idx_file_contents.
IdxArray read_idx_file(const std::filesystem::path& path);

// Converts to a float tensor of the same shape (Layout::Plain): each element is divided by
// divisor in double precision, then rounded to float once, so that to_tensor(a, 255.0) gives
// the same bits as NumPy's `(x / 255.0).astype(np.float32)` in the seed.
// REQUIRES: 1 <= dims.size() <= Tensor::max_rank and divisor != 0, else std::invalid_argument.
Tensor to_tensor(const IdxArray& array, double divisor = 1.0);

}  // namespace bnlab::data
