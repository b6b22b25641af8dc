#pragma once
// Test helpers: build IDX images byte by byte (independently of the reader) and write them
// as plain or gzip files (via zlib's gz* API) into a per-test temporary directory.

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "support/temp_dir.hpp"

namespace bnlab::data::testing {

using Bytes = std::vector<std::uint8_t>;

inline void append_be32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

inline Bytes idx_header(std::uint8_t type_code, std::initializer_list<std::uint32_t> dims) {
  Bytes out = {0, 0, type_code, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims) append_be32(out, d);
  return out;
}

inline Bytes idx_ubyte(std::initializer_list<std::uint32_t> dims, const Bytes& payload) {
  Bytes out = idx_header(0x08, dims);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// A directory under the system temp dir, unique per process and test, removed afterwards.
class TempDir : public bnlab::testing::ScratchDirectory {
 public:
  TempDir() : ScratchDirectory("bnlab_data") {}
  std::filesystem::path operator/(const std::string& name) const { return path() / name; }
};

inline void write_plain(const std::filesystem::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline void write_gzip(const std::filesystem::path& path, const Bytes& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  if (!file) throw std::runtime_error("gzopen failed for " + path.string());
  const int written = bytes.empty() ? 0 : gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
  const int closed = gzclose(file);
  if (written != static_cast<int>(bytes.size()) || closed != Z_OK)
    throw std::runtime_error("gzwrite failed for " + path.string());
}

inline Bytes read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace bnlab::data::testing
