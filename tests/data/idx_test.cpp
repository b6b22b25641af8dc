#include "bnlab/data/idx.hpp"

#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <string>

#include <gtest/gtest.h>

#include "data/idx_files.hpp"

namespace bnlab::data {
namespace {

using testing::Bytes;
using testing::idx_header;
using testing::idx_ubyte;
using testing::TempDir;
using testing::write_gzip;
using testing::write_plain;

// The message of the E thrown by f, or a test failure if f throws nothing or something else.
template <class E>
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type, message: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no exception thrown";
  return {};
}

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "message: " << (text) << "\nexpected to contain: " << (part)

// Reads path and expects a FormatError naming the file and containing problem.
void expect_format_error(const std::filesystem::path& path, const std::string& problem) {
  const std::string message = message_of<FormatError>([&] { read_idx_file(path); });
  EXPECT_CONTAINS(message, path.string());
  EXPECT_CONTAINS(message, problem);
}

const Bytes small_ubyte = idx_ubyte({2, 3}, {0, 1, 2, 127, 128, 255});

void expect_small_ubyte(const IdxArray& a) {
  EXPECT_EQ(a.type, IdxType::UInt8);
  EXPECT_EQ(a.dims, (std::vector<std::int64_t>{2, 3}));
  ASSERT_EQ(a.size(), 6);
  EXPECT_EQ(std::get<std::vector<std::uint8_t>>(a.values), (std::vector<std::uint8_t>{0, 1, 2, 127, 128, 255}));
  EXPECT_EQ(a.value(5), 255.0);
}

TEST(Idx, ReadsPlainUnsignedBytes) {
  TempDir dir;
  write_plain(dir / "a.idx", small_ubyte);
  expect_small_ubyte(read_idx_file(dir / "a.idx"));
}

TEST(Idx, ReadsGzipUnsignedBytes) {
  TempDir dir;
  write_gzip(dir / "a.idx.gz", small_ubyte);
  expect_small_ubyte(read_idx_file(dir / "a.idx.gz"));
}

TEST(Idx, DetectsGzipByMagicNotByName) {
  TempDir dir;
  write_gzip(dir / "compressed.idx", small_ubyte);
  write_plain(dir / "plain.gz", small_ubyte);
  expect_small_ubyte(read_idx_file(dir / "compressed.idx"));
  expect_small_ubyte(read_idx_file(dir / "plain.gz"));
}

TEST(Idx, ReadsConcatenatedGzipMembers) {
  TempDir dir;
  // gzip(1) accepts several members back to back; the reader must too.
  const Bytes first(small_ubyte.begin(), small_ubyte.begin() + 7);
  const Bytes second(small_ubyte.begin() + 7, small_ubyte.end());
  write_gzip(dir / "1.gz", first);
  write_gzip(dir / "2.gz", second);
  Bytes joined = testing::read_all(dir / "1.gz");
  const Bytes tail = testing::read_all(dir / "2.gz");
  joined.insert(joined.end(), tail.begin(), tail.end());
  write_plain(dir / "joined.gz", joined);
  expect_small_ubyte(read_idx_file(dir / "joined.gz"));
}

TEST(Idx, DecodesEveryTypeBigEndian) {
  TempDir dir;
  {
    Bytes b = idx_header(0x09, {3});
    b.insert(b.end(), {0xFF, 0x80, 0x7F});
    write_plain(dir / "i8", b);
    const IdxArray a = read_idx_file(dir / "i8");
    EXPECT_EQ(a.type, IdxType::Int8);
    EXPECT_EQ(std::get<std::vector<std::int8_t>>(a.values), (std::vector<std::int8_t>{-1, -128, 127}));
  }
  {
    Bytes b = idx_header(0x0B, {2});
    b.insert(b.end(), {0x01, 0x02, 0xFF, 0xFE});
    write_plain(dir / "i16", b);
    const IdxArray a = read_idx_file(dir / "i16");
    EXPECT_EQ(a.type, IdxType::Int16);
    EXPECT_EQ(std::get<std::vector<std::int16_t>>(a.values), (std::vector<std::int16_t>{258, -2}));
  }
  {
    Bytes b = idx_header(0x0C, {2});
    b.insert(b.end(), {0x01, 0x02, 0x03, 0x04, 0xFF, 0xFF, 0xFF, 0xFB});
    write_gzip(dir / "i32", b);
    const IdxArray a = read_idx_file(dir / "i32");
    EXPECT_EQ(a.type, IdxType::Int32);
    EXPECT_EQ(std::get<std::vector<std::int32_t>>(a.values), (std::vector<std::int32_t>{16909060, -5}));
  }
  {
    // 1.5f = 0x3FC00000, -2.25f = 0xC0100000
    Bytes b = idx_header(0x0D, {1, 2});
    b.insert(b.end(), {0x3F, 0xC0, 0x00, 0x00, 0xC0, 0x10, 0x00, 0x00});
    write_plain(dir / "f32", b);
    const IdxArray a = read_idx_file(dir / "f32");
    EXPECT_EQ(a.type, IdxType::Float32);
    EXPECT_EQ(std::get<std::vector<float>>(a.values), (std::vector<float>{1.5f, -2.25f}));
  }
  {
    // pi = 0x400921FB54442D18
    Bytes b = idx_header(0x0E, {1});
    b.insert(b.end(), {0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18});
    write_plain(dir / "f64", b);
    const IdxArray a = read_idx_file(dir / "f64");
    EXPECT_EQ(a.type, IdxType::Float64);
    EXPECT_EQ(std::get<std::vector<double>>(a.values).at(0), std::numbers::pi);
    EXPECT_EQ(a.value(0), std::numbers::pi);
  }
}

TEST(Idx, ZeroDimensionGivesEmptyArray) {
  const Bytes b = idx_header(0x08, {0, 28, 28});
  const IdxArray a = parse_idx_buffer(b.data(), b.size(), "empty");
  EXPECT_EQ(a.size(), 0);
  EXPECT_EQ(a.dims, (std::vector<std::int64_t>{0, 28, 28}));
}

TEST(Idx, ToTensorDividesInDouble) {
  const IdxArray a = parse_idx_buffer(small_ubyte.data(), small_ubyte.size(), "small");
  const Tensor t = to_tensor(a, 255.0);
  EXPECT_EQ(t.shape(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(t.layout(), Layout::Plain);
  EXPECT_EQ(t[0], 0.0f);
  EXPECT_EQ(t[2], static_cast<float>(2.0 / 255.0));
  EXPECT_EQ(t[3], static_cast<float>(127.0 / 255.0));
  EXPECT_EQ(t[5], 1.0f);

  Bytes b = idx_header(0x0B, {2});
  b.insert(b.end(), {0xFF, 0xFE, 0x00, 0x07});
  const Tensor s = to_tensor(parse_idx_buffer(b.data(), b.size(), "shorts"));
  EXPECT_EQ(s[0], -2.0f);
  EXPECT_EQ(s[1], 7.0f);
}

TEST(Idx, ToTensorRefusesRankAboveFourAndZeroDivisor) {
  Bytes b = idx_header(0x08, {1, 1, 1, 1, 1});
  b.push_back(3);
  const IdxArray rank5 = parse_idx_buffer(b.data(), b.size(), "rank5");
  EXPECT_EQ(rank5.dims.size(), 5u);
  EXPECT_THROW(to_tensor(rank5), std::invalid_argument);
  const IdxArray small = parse_idx_buffer(small_ubyte.data(), small_ubyte.size(), "small");
  EXPECT_THROW(to_tensor(small, 0.0), std::invalid_argument);
}

// --- refusals -------------------------------------------------------------------------

TEST(IdxErrors, MissingFileAndDirectory) {
  TempDir dir;
  const auto missing = dir / "nope.idx";
  std::string message = message_of<FileError>([&] { read_idx_file(missing); });
  EXPECT_CONTAINS(message, missing.string());
  EXPECT_CONTAINS(message, "no such file");

  message = message_of<FileError>([&] { read_idx_file(dir.path()); });
  EXPECT_CONTAINS(message, dir.path().string());
  EXPECT_CONTAINS(message, "is a directory");
}

TEST(IdxErrors, FileErrorIsARuntimeError) {
  TempDir dir;
  EXPECT_THROW(read_idx_file(dir / "nope"), std::runtime_error);
}

TEST(IdxErrors, HeaderProblems) {
  TempDir dir;
  struct Case {
    const char* file;
    Bytes bytes;
    const char* problem;
  };
  const Case cases[] = {
      {"empty", {}, "too short for an IDX header: 0 bytes"},
      {"short", {0, 0, 8}, "too short for an IDX header: 3 bytes"},
      {"magic", {0x01, 0x00, 0x08, 0x01, 0, 0, 0, 1, 7}, "bad magic: first two bytes are 01 00"},
      {"magic2", {0x00, 0x05, 0x08, 0x01, 0, 0, 0, 1, 7}, "bad magic"},
      {"type", {0, 0, 0x0A, 1, 0, 0, 0, 1, 7}, "unknown type code 0x0a"},
      {"type_ff", {0, 0, 0xFF, 1, 0, 0, 0, 1, 7}, "unknown type code 0xff"},
      {"rank0", {0, 0, 0x08, 0}, "zero dimensions"},
      {"rank9", idx_header(0x08, {1, 1, 1, 1, 1, 1, 1, 1, 1}), "9 dimensions, at most 8"},
      {"rank255", {0, 0, 0x08, 255}, "255 dimensions"},
      {"header_cut", {0, 0, 0x08, 3, 0, 0, 0, 1, 0, 0}, "truncated header: 3 dimensions need 16 header bytes, found 10"},
      {"overflow", idx_header(0x08, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}), "exceed the limit of 2^31 elements"},
      {"too_large", idx_header(0x08, {65536, 32768, 2}), "dimensions 65536 x 32768 x 2 exceed the limit"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    write_plain(dir / c.file, c.bytes);
    expect_format_error(dir / c.file, c.problem);
  }
}

TEST(IdxErrors, HugeHeaderWithoutDataIsTruncatedNotAllocated) {
  TempDir dir;
  // Exactly at the cap (2^31 doubles would be 16 GiB): refused from the file size alone.
  write_plain(dir / "huge", idx_header(0x0E, {65536, 32768}));
  expect_format_error(dir / "huge", "truncated: expected 17179869184 bytes of data, found 0");
  write_gzip(dir / "huge.gz", idx_header(0x0E, {65536, 32768}));
  expect_format_error(dir / "huge.gz", "truncated: expected 17179869184 bytes of data, found 0");
}

TEST(IdxErrors, PayloadLengthPlain) {
  TempDir dir;
  write_plain(dir / "short", idx_ubyte({2, 3}, {1, 2, 3, 4}));
  expect_format_error(dir / "short", "truncated: expected 6 bytes of data, found 4");
  write_plain(dir / "long", idx_ubyte({2, 3}, {1, 2, 3, 4, 5, 6, 7, 8}));
  expect_format_error(dir / "long", "trailing garbage: expected 6 bytes of data, found 8 (2 extra)");
  Bytes ints = idx_header(0x0C, {3});
  ints.insert(ints.end(), 8, 0);
  write_plain(dir / "ints", ints);
  expect_format_error(dir / "ints", "truncated: expected 12 bytes of data, found 8");
}

TEST(IdxErrors, PayloadLengthGzip) {
  TempDir dir;
  write_gzip(dir / "short.gz", idx_ubyte({2, 3}, {1, 2, 3, 4}));
  expect_format_error(dir / "short.gz", "truncated: expected 6 bytes of data, found 4");
  write_gzip(dir / "long.gz", idx_ubyte({2, 3}, {1, 2, 3, 4, 5, 6, 7}));
  expect_format_error(dir / "long.gz", "trailing garbage: expected 6 bytes of data");
  write_gzip(dir / "magic.gz", {7, 7, 8, 1, 0, 0, 0, 1, 1});
  expect_format_error(dir / "magic.gz", "bad magic");
}

TEST(IdxErrors, GzipBombStopsAtTheHeaderSize) {
  TempDir dir;
  // 64 MiB of zeros compress to about 64 KiB; the header announces 6 bytes.
  Bytes bomb = idx_ubyte({2, 3}, {});
  bomb.resize(bomb.size() + (std::size_t{64} << 20), 0);
  write_gzip(dir / "bomb.gz", bomb);
  EXPECT_LT(std::filesystem::file_size(dir / "bomb.gz"), std::uintmax_t{1} << 20);
  expect_format_error(dir / "bomb.gz", "trailing garbage: expected 6 bytes of data, the decompressed stream holds more");
}

TEST(IdxErrors, CorruptGzipStreams) {
  TempDir dir;
  write_gzip(dir / "good.gz", idx_ubyte({4, 4}, Bytes(16, 42)));
  const Bytes good = testing::read_all(dir / "good.gz");
  ASSERT_GT(good.size(), 20u);

  Bytes bad_crc = good;
  bad_crc[bad_crc.size() - 8] ^= 0xFF;  // the CRC-32 in the gzip trailer
  write_plain(dir / "crc.gz", bad_crc);
  expect_format_error(dir / "crc.gz", "corrupt gzip stream");

  write_plain(dir / "cut.gz", Bytes(good.begin(), good.begin() + good.size() / 2));
  expect_format_error(dir / "cut.gz", "corrupt gzip stream: compressed data ends early");

  write_plain(dir / "magic_only.gz", {0x1f, 0x8b});
  expect_format_error(dir / "magic_only.gz", "corrupt gzip stream");

  Bytes bad_method = good;
  bad_method[2] = 0x07;  // compression method must be 8 (deflate)
  write_plain(dir / "method.gz", bad_method);
  expect_format_error(dir / "method.gz", "corrupt gzip stream");

  Bytes trailing = good;
  trailing.insert(trailing.end(), {'x', 'y', 'z'});
  write_plain(dir / "trailing.gz", trailing);
  expect_format_error(dir / "trailing.gz", "trailing garbage: 3 bytes after the end of the gzip stream");
}

// Every prefix and every single-byte corruption of a valid file is either read or refused
// with a FormatError naming the file: never a crash, never another exception.
TEST(IdxErrors, EveryPrefixAndByteFlipIsHandled) {
  TempDir dir;
  const Bytes plain = idx_ubyte({3, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
  write_gzip(dir / "g.gz", plain);
  const Bytes gz = testing::read_all(dir / "g.gz");
  for (const Bytes* source : {&plain, &gz}) {
    for (std::size_t cut = 0; cut < source->size(); ++cut) {
      write_plain(dir / "cut", Bytes(source->begin(), source->begin() + cut));
      const std::string message = message_of<FormatError>([&] { read_idx_file(dir / "cut"); });
      EXPECT_CONTAINS(message, (dir / "cut").string()) << " cut at " << cut;
    }
    for (std::size_t at = 0; at < source->size(); ++at) {
      for (std::uint8_t flip : {0x01, 0x80, 0xFF}) {
        Bytes b = *source;
        b[at] ^= flip;
        write_plain(dir / "flip", b);
        try {
          read_idx_file(dir / "flip");
        } catch (const FormatError& e) {
          EXPECT_CONTAINS(e.what(), (dir / "flip").string());
        }
      }
    }
  }
}

TEST(IdxErrors, ParseBufferUsesTheGivenName) {
  const std::string message =
      message_of<FormatError>([] { parse_idx_buffer(nullptr, 0, "<fuzz input>"); });
  EXPECT_EQ(message, "<fuzz input>: too short for an IDX header: 0 bytes, need at least 4");
  const Bytes b = idx_ubyte({2}, {1});
  try {
    parse_idx_buffer(b.data(), b.size(), "mem");
    ADD_FAILURE() << "no exception";
  } catch (const FormatError& e) {
    EXPECT_EQ(e.path(), "mem");
    EXPECT_EQ(std::string(e.problem()).rfind("truncated: expected 2 bytes of data, found 1", 0), 0u) << e.problem();
  }
}

}  // namespace
}  // namespace bnlab::data
