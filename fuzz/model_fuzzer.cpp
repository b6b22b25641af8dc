// libFuzzer target: the model-file loader (Sequential::load_from_buffer, what load(path) runs on
// a file's contents) on arbitrary bytes. A file that is refused must be refused with a
// std::exception naming the file; a file that loads must give a usable model (summary, counts
// and a forward pass on zeros must work or refuse cleanly). Crashes, hangs and sanitizer
// reports are findings.
//
// Random bytes rarely pass the CRC-32, so the target also loads the input with a correct
// trailer: header and CRC fixed up, the payload taken as it is. Both paths run on every input,
// which lets the fuzzer reach the payload parser and the layer factory.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "bnlab/model.hpp"

namespace {

const std::string input_name = "<fuzz input>";

[[noreturn]] void finding(const char* what, const char* detail) {
  std::fprintf(stderr, "model_fuzzer: %s: %s\n", what, detail);
  std::abort();
}

void exercise(const bnlab::Sequential& loaded) {
  // What loads must save and load again: a refusal here would be a file bnlab cannot reopen.
  bnlab::Sequential model;
  try {
    model = bnlab::Sequential::load_from_buffer(loaded.to_bytes(), "<saved again>");
  } catch (const std::exception& e) {
    finding("a loaded model does not load again after saving", e.what());
  }
  (void)model.summary();
  (void)model.count_params();
  std::int64_t elements = 1;
  for (const std::int64_t d : model.input_shape()) {
    if (d <= 0 || d > 4096) return;
    elements *= d;
  }
  if (elements > (1 << 16) || model.input_shape().size() + 1 > static_cast<std::size_t>(bnlab::Tensor::max_rank))
    return;
  bnlab::Shape shape{2};
  shape.insert(shape.end(), model.input_shape().begin(), model.input_shape().end());
  try {
    (void)model.predict(bnlab::Tensor(shape), 2);
  } catch (const std::invalid_argument&) {
    // A built model predicts whatever it ends in; a refusal here is a shape the loader let through.
  }
}

void load(std::string_view bytes) {
  try {
    exercise(bnlab::Sequential::load_from_buffer(bytes, input_name));
  } catch (const std::exception& e) {
    if (std::string_view(e.what()).find(input_name) == std::string_view::npos)
      finding("error without the file name", e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  load(bytes);
  // Header "BNLB", version 1, the payload size, then the input as payload and its CRC-32.
  std::string fixed("BNLB\x01\0\0\0", 8);
  const std::uint64_t payload = size > 16 ? size - 16 : 0;
  for (int i = 0; i < 8; ++i) fixed.push_back(static_cast<char>(payload >> (8 * i)));
  if (size > 16) fixed.append(bytes.substr(16));
  const auto crc = static_cast<std::uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(fixed.data()), static_cast<uInt>(fixed.size())));
  for (int i = 0; i < 4; ++i) fixed.push_back(static_cast<char>(crc >> (8 * i)));
  load(fixed);
  return 0;
}
