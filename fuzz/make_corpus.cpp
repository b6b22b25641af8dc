// Writes the seed corpora of the fuzz targets (fuzz/corpus/idx, fuzz/corpus/model): a few small
// valid files and a few broken ones of each kind, so that the fuzzers start from inputs that get
// past the magic and the checksum. The corpora are committed; rerun after a format change:
//   build-fuzz/fuzz/make_corpus fuzz/corpus
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "bnlab/layers/layers.hpp"
#include "bnlab/model.hpp"

namespace {

namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string gzip(const std::string& plain) {
  z_stream zs{};
  if (deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("zlib");
  std::string out(deflateBound(&zs, plain.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  zs.avail_in = static_cast<uInt>(plain.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("zlib deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// type code, dims (big-endian u32), then element_bytes * product(dims) bytes of a counting pattern.
std::string idx(std::uint8_t type, const std::vector<std::uint32_t>& dims, int element_bytes) {
  std::string s{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  std::size_t count = 1;
  for (std::uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>(d >> shift));
    count *= d;
  }
  for (std::size_t i = 0; i < count * static_cast<std::size_t>(element_bytes); ++i)
    s.push_back(static_cast<char>(i * 37 % 251));
  return s;
}

void idx_corpus(const fs::path& dir) {
  fs::create_directories(dir);
  const std::string labels = idx(0x08, {6}, 1);
  const std::string images = idx(0x08, {2, 4, 4}, 1);
  write(dir / "valid-labels", labels);
  write(dir / "valid-images", images);
  write(dir / "valid-int16", idx(0x0B, {2, 3}, 2));
  write(dir / "valid-double", idx(0x0E, {3}, 8));
  write(dir / "valid-images.gz", gzip(images));
  write(dir / "valid-two-members.gz", gzip(labels.substr(0, 7)) + gzip(labels.substr(7)));
  write(dir / "broken-magic", "\x01\x02" + images.substr(2));
  write(dir / "broken-truncated", images.substr(0, images.size() - 5));
  write(dir / "broken-trailing", labels + "xyz");
  write(dir / "broken-huge-dims", idx(0x0D, {65536, 65536, 0}, 4).replace(15, 1, "\x01"));
  const std::string gz = gzip(images);
  write(dir / "broken-truncated.gz", gz.substr(0, gz.size() / 2));
}

bnlab::Sequential dense_model(std::unique_ptr<bnlab::Optimizer> optimizer) {
  bnlab::Sequential model("tiny");
  model.add(std::make_unique<bnlab::Dense>(2, "softmax"));
  model.build({3}, 1);
  if (optimizer) model.compile(std::move(optimizer));
  return model;
}

void model_corpus(const fs::path& dir) {
  fs::create_directories(dir);
  const std::string plain = dense_model(nullptr).to_bytes();
  write(dir / "valid-uncompiled", plain);
  write(dir / "valid-sgd-momentum", dense_model(std::make_unique<bnlab::SGD>(0.1, 0.9)).to_bytes());
  bnlab::Sequential bn("bn");
  bn.add(std::make_unique<bnlab::Flatten>());
  bn.add(std::make_unique<bnlab::BatchNormalization>());
  bn.add(std::make_unique<bnlab::Dense>(3, "relu"));
  bn.add(std::make_unique<bnlab::Activation>("relu"));
  bn.add(std::make_unique<bnlab::Dense>(2, "softmax"));
  bn.build({2, 2}, 2);
  bn.compile(std::make_unique<bnlab::Adam>(0.01));
  const std::string adam = bn.to_bytes();
  write(dir / "valid-bn-adam", adam);
  write(dir / "broken-magic", "PK\x03\x04" + plain.substr(4));
  write(dir / "broken-truncated", adam.substr(0, adam.size() / 2));
  std::string flipped = adam;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x40);
  write(dir / "broken-checksum", flipped);
  write(dir / "broken-extra", plain + "extra");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_corpus DIR (writes DIR/idx and DIR/model)\n";
    return 2;
  }
  try {
    idx_corpus(fs::path(argv[1]) / "idx");
    model_corpus(fs::path(argv[1]) / "model");
  } catch (const std::exception& e) {
    std::cerr << "make_corpus: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
