// libFuzzer target: the IDX reader on arbitrary bytes, plain or gzip (parse_idx_file_contents is
// what read_idx_file runs on a file's contents). Malformed input must be refused with an
// exception that names the file; anything else (a crash, a sanitizer report, an error without
// the name, an array whose size disagrees with its dimensions) is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "bnlab/data/idx.hpp"

namespace {

const std::string input_name = "<fuzz input>";

[[noreturn]] void finding(const char* what, const char* detail) {
  std::fprintf(stderr, "idx_fuzzer: %s: %s\n", what, detail);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const bnlab::data::IdxArray array = bnlab::data::parse_idx_file_contents(data, size, input_name);
    // A zero dimension empties the array whatever the others are (and they are then unbounded,
    // so the product is only formed without one); otherwise the product is below 2^31.
    bool empty = false;
    for (const std::int64_t d : array.dims) empty = empty || d == 0;
    std::int64_t product = 1;
    if (empty)
      product = 0;
    else
      for (const std::int64_t d : array.dims) product *= d;
    if (product != array.size()) finding("size disagrees with the dimensions", std::to_string(product).c_str());
    // Reading every element through the public accessor makes ASan check the whole buffer.
    double sum = 0;
    for (std::int64_t i = 0; i < array.size(); ++i) sum += array.value(i);
    if (array.size() > 0 && array.dims.size() <= 4) (void)bnlab::data::to_tensor(array, 255.0);
    (void)sum;
  } catch (const bnlab::data::DataError& e) {
    if (std::string(e.what()).rfind(input_name + ": ", 0) != 0) finding("error without the file name", e.what());
  }
  return 0;
}
