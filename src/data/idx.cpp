#include "bnlab/data/idx.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <climits>
#include <cstring>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "io/files.hpp"

namespace bnlab::data {

DataError::DataError(std::string path, std::string problem)
    : std::runtime_error(fmt::format("{}: {}", path, problem)), path_(std::move(path)), problem_(std::move(problem)) {}

std::string to_string(IdxType type) {
  switch (type) {
    case IdxType::UInt8: return "unsigned byte";
    case IdxType::Int8: return "signed byte";
    case IdxType::Int16: return "short";
    case IdxType::Int32: return "int";
    case IdxType::Float32: return "float";
    case IdxType::Float64: return "double";
  }
  return "unknown";
}

std::size_t element_bytes(IdxType type) {
  switch (type) {
    case IdxType::UInt8:
    case IdxType::Int8: return 1;
    case IdxType::Int16: return 2;
    case IdxType::Int32:
    case IdxType::Float32: return 4;
    case IdxType::Float64: return 8;
  }
  return 0;
}

std::int64_t IdxArray::size() const {
  return std::visit([](const auto& v) { return static_cast<std::int64_t>(v.size()); }, values);
}

double IdxArray::value(std::int64_t index) const {
  return std::visit([index](const auto& v) { return static_cast<double>(v.at(static_cast<std::size_t>(index))); },
                    values);
}

namespace {

constexpr std::uint8_t gzip_magic[2] = {0x1f, 0x8b};

std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

std::optional<IdxType> type_from_code(std::uint8_t code) {
  switch (code) {
    case 0x08: return IdxType::UInt8;
    case 0x09: return IdxType::Int8;
    case 0x0B: return IdxType::Int16;
    case 0x0C: return IdxType::Int32;
    case 0x0D: return IdxType::Float32;
    case 0x0E: return IdxType::Float64;
    default: return std::nullopt;
  }
}

struct IdxHeader {
  IdxType type;
  std::vector<std::int64_t> dims;
  std::size_t header_bytes;
  std::uint64_t element_count;
  std::uint64_t payload_bytes;
};

std::string join_dims(const std::vector<std::int64_t>& dims) {
  return fmt::format("{}", fmt::join(dims, " x "));
}

// Validates everything the header states, including that the element count is below the cap,
// but not the payload length: the gzip reader needs the header before it has the payload.
IdxHeader parse_header(const std::uint8_t* data, std::size_t size, const std::string& name) {
  if (size < 4)
    throw FormatError(name, fmt::format("too short for an IDX header: {} bytes, need at least 4", size));
  if (data[0] != 0 || data[1] != 0)
    throw FormatError(name, fmt::format("bad magic: first two bytes are {:02x} {:02x}, expected 00 00 (not an IDX file)",
                                        data[0], data[1]));
  const auto type = type_from_code(data[2]);
  if (!type)
    throw FormatError(name, fmt::format("unknown type code 0x{:02x} (expected 0x08 unsigned byte, 0x09 signed byte, "
                                        "0x0b short, 0x0c int, 0x0d float or 0x0e double)",
                                        data[2]));
  const int rank = data[3];
  if (rank == 0) throw FormatError(name, "zero dimensions (the fourth header byte must be at least 1)");
  if (rank > max_idx_rank)
    throw FormatError(name, fmt::format("{} dimensions, at most {} are supported", rank, max_idx_rank));
  const std::size_t header_bytes = 4 + 4 * static_cast<std::size_t>(rank);
  if (size < header_bytes)
    throw FormatError(name, fmt::format("truncated header: {} dimensions need {} header bytes, found {}", rank,
                                        header_bytes, size));

  IdxHeader header{*type, {}, header_bytes, 1, 0};
  header.dims.reserve(static_cast<std::size_t>(rank));
  bool any_zero = false;
  for (int i = 0; i < rank; ++i) {
    const std::uint32_t d = load_be32(data + 4 + 4 * static_cast<std::size_t>(i));
    header.dims.push_back(d);
    any_zero = any_zero || d == 0;
  }
  // The count is checked dimension by dimension so that the product can never overflow; a
  // zero dimension makes an empty array, however large the others are.
  if (any_zero) {
    header.element_count = 0;
  } else {
    for (const std::int64_t d : header.dims) {
      const auto du = static_cast<std::uint64_t>(d);
      if (header.element_count > max_idx_elements / du)
        throw FormatError(name, fmt::format("dimensions {} exceed the limit of 2^31 elements", join_dims(header.dims)));
      header.element_count *= du;
    }
    if (header.element_count > max_idx_elements)
      throw FormatError(name, fmt::format("dimensions {} exceed the limit of 2^31 elements", join_dims(header.dims)));
  }
  header.payload_bytes = header.element_count * element_bytes(header.type);
  return header;
}

template <class T, class Bits>
std::vector<T> decode_big_endian(const std::uint8_t* p, std::uint64_t count) {
  std::vector<T> out(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < out.size(); ++i, p += sizeof(T)) {
    Bits bits = 0;
    for (std::size_t b = 0; b < sizeof(T); ++b) bits = static_cast<Bits>((bits << 8) | p[b]);
    out[i] = std::bit_cast<T>(bits);
  }
  return out;
}

IdxArray::Values decode_values(IdxType type, const std::uint8_t* p, std::uint64_t count) {
  switch (type) {
    case IdxType::UInt8: return std::vector<std::uint8_t>(p, p + count);
    case IdxType::Int8: return decode_big_endian<std::int8_t, std::uint8_t>(p, count);
    case IdxType::Int16: return decode_big_endian<std::int16_t, std::uint16_t>(p, count);
    case IdxType::Int32: return decode_big_endian<std::int32_t, std::uint32_t>(p, count);
    case IdxType::Float32: return decode_big_endian<float, std::uint32_t>(p, count);
    case IdxType::Float64: return decode_big_endian<double, std::uint64_t>(p, count);
  }
  return {};
}

bool starts_with_gzip_magic(const std::uint8_t* data, std::size_t size) {
  return size >= 2 && data[0] == gzip_magic[0] && data[1] == gzip_magic[1];
}

struct InflateStream {
  z_stream zs{};
  explicit InflateStream(const std::string& name) {
    // 15 + 16: a gzip wrapper only; a raw zlib stream is not what .gz files hold.
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
      throw FormatError(name, fmt::format("cannot initialise zlib: {}", zs.msg ? zs.msg : "unknown error"));
  }
  ~InflateStream() { inflateEnd(&zs); }
  InflateStream(const InflateStream&) = delete;
  InflateStream& operator=(const InflateStream&) = delete;
};

// Decompresses a gzip file (one or more members, as gzip(1) accepts) into memory. Output
// grows only with bytes actually produced, and stops as soon as it exceeds what the IDX
// header found at its start announces, so a small "gzip bomb" cannot exhaust memory.
std::vector<std::uint8_t> gunzip_idx(const std::uint8_t* data, std::size_t size, const std::string& name) {
  InflateStream stream(name);
  z_stream& zs = stream.zs;
  std::vector<std::uint8_t> out;
  std::optional<IdxHeader> header;
  std::array<std::uint8_t, 1 << 16> chunk;

  const std::uint8_t* next = data;
  std::size_t remaining = size;
  // zlib counts input in uInt; feed large inputs in pieces.
  auto refill = [&] {
    if (zs.avail_in == 0 && remaining > 0) {
      const std::size_t piece = std::min<std::size_t>(remaining, UINT_MAX);
      zs.next_in = const_cast<Bytef*>(next);
      zs.avail_in = static_cast<uInt>(piece);
      next += piece;
      remaining -= piece;
    }
  };
  auto input_left = [&] { return static_cast<std::size_t>(zs.avail_in) + remaining; };

  refill();
  for (;;) {
    zs.next_out = chunk.data();
    zs.avail_out = static_cast<uInt>(chunk.size());
    const int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_MEM_ERROR) throw std::bad_alloc();
    const std::size_t produced = chunk.size() - zs.avail_out;
    out.insert(out.end(), chunk.data(), chunk.data() + produced);

    // A rank byte above the limit is refused by parse_header at once, so this waits for at
    // most 4 + 4 * max_idx_rank bytes before the header is known.
    if (!header && out.size() >= 4 &&
        out.size() >= 4 + 4 * static_cast<std::size_t>(std::min<int>(out[3], max_idx_rank)))
      header = parse_header(out.data(), out.size(), name);
    if (header && out.size() > header->header_bytes + header->payload_bytes)
      throw FormatError(name, fmt::format("trailing garbage: expected {} bytes of data, the decompressed stream holds more",
                                          header->payload_bytes));

    if (rc == Z_STREAM_END) {
      refill();
      if (input_left() == 0) break;
      if (!starts_with_gzip_magic(zs.next_in, zs.avail_in))
        throw FormatError(name, fmt::format("trailing garbage: {} bytes after the end of the gzip stream", input_left()));
      if (inflateReset(&zs) != Z_OK) throw FormatError(name, "corrupt gzip stream: cannot restart for the next member");
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      throw FormatError(name, fmt::format("corrupt gzip stream: {}", zs.msg ? zs.msg : zError(rc)));
    refill();
    // Z_BUF_ERROR means no progress was possible: with no input left, the stream was cut short.
    if (rc == Z_BUF_ERROR && input_left() == 0)
      throw FormatError(name, "corrupt gzip stream: compressed data ends early (truncated file?)");
  }
  return out;
}

}  // namespace

IdxArray parse_idx_buffer(const std::uint8_t* data, std::size_t size, const std::string& name) {
  if (data == nullptr && size != 0) throw std::invalid_argument("parse_idx_buffer: data is null but size is not 0");
  const IdxHeader header = parse_header(data, size, name);
  const std::uint64_t found = size - header.header_bytes;
  if (found < header.payload_bytes)
    throw FormatError(name, fmt::format("truncated: expected {} bytes of data, found {} (dimensions {}, type {})",
                                        header.payload_bytes, found, join_dims(header.dims), to_string(header.type)));
  if (found > header.payload_bytes)
    throw FormatError(name, fmt::format("trailing garbage: expected {} bytes of data, found {} ({} extra)",
                                        header.payload_bytes, found, found - header.payload_bytes));
  IdxArray array;
  array.type = header.type;
  array.dims = header.dims;
  array.values = decode_values(header.type, data + header.header_bytes, header.element_count);
  return array;
}

IdxArray read_idx_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    throw FileError(name, fmt::format("cannot access: {}", ec.message()));
  if (!std::filesystem::exists(status)) throw FileError(name, "no such file");
  if (std::filesystem::is_directory(status)) throw FileError(name, "is a directory, expected an IDX file");

  std::string problem;
  const std::optional<std::string> bytes = io::try_read_regular_file(path, problem);
  if (!bytes) throw FileError(name, problem);
  return parse_idx_file_contents(reinterpret_cast<const std::uint8_t*>(bytes->data()), bytes->size(), name);
}

IdxArray parse_idx_file_contents(const std::uint8_t* data, std::size_t size, const std::string& name) {
  if (data == nullptr && size != 0)
    throw std::invalid_argument("parse_idx_file_contents: data is null but size is not 0");
  if (starts_with_gzip_magic(data, size)) {
    const std::vector<std::uint8_t> plain = gunzip_idx(data, size, name);
    return parse_idx_buffer(plain.data(), plain.size(), name);
  }
  return parse_idx_buffer(data, size, name);
}

Tensor to_tensor(const IdxArray& array, double divisor) {
  if (array.dims.empty() || array.dims.size() > static_cast<std::size_t>(Tensor::max_rank))
    throw std::invalid_argument(
        fmt::format("to_tensor: IDX array has {} dimensions, a Tensor holds 1 to {}", array.dims.size(), Tensor::max_rank));
  if (divisor == 0.0) throw std::invalid_argument("to_tensor: divisor is 0");
  Tensor t(array.dims, Layout::Plain);
  float* out = t.data();
  std::visit(
      [&](const auto& values) {
        using T = typename std::decay_t<decltype(values)>::value_type;
        if constexpr (std::is_same_v<T, std::uint8_t>) {
          // 256 possible inputs: divide once per value, not once per pixel.
          std::array<float, 256> table;
          for (int v = 0; v < 256; ++v) table[v] = static_cast<float>(static_cast<double>(v) / divisor);
          for (std::size_t i = 0; i < values.size(); ++i) out[i] = table[values[i]];
        } else {
          for (std::size_t i = 0; i < values.size(); ++i)
            out[i] = static_cast<float>(static_cast<double>(values[i]) / divisor);
        }
      },
      array.values);
  return t;
}

}  // namespace bnlab::data
