#pragma once
// What the PyTorch cross-checks share: raw float32 files for the scripts under tests/reference/,
// and running a script through Debian's /usr/bin/python3, which exits 77 where torch is absent.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace bnlab::testing {

inline void write_f32(const std::filesystem::path& path, const std::vector<float>& v) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  ASSERT_TRUE(out.good()) << path;
}

inline std::vector<float> read_f32(const std::filesystem::path& path, std::size_t n) {
  std::vector<float> v(n);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(float)));
  EXPECT_EQ(static_cast<std::size_t>(in.gcount()), n * sizeof(float)) << path;
  return v;
}

// Largest |a - b|; a NaN on either side makes it NaN, which fails every comparison with a tolerance.
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double difference = std::abs(double(a[i]) - double(b[i]));
    if (!(difference <= worst)) worst = difference;  // NaN counts as worst
  }
  return worst;
}

enum class TorchRun { ok, unavailable, failed };

// Runs a shell command that starts a tests/reference/ script; 77 from it means "no torch here".
inline TorchRun run_torch_script(const std::string& command) {
  const int status = std::system(command.c_str());
  if (!WIFEXITED(status)) return TorchRun::failed;
  if (WEXITSTATUS(status) == 77) return TorchRun::unavailable;
  return WEXITSTATUS(status) == 0 ? TorchRun::ok : TorchRun::failed;
}

}  // namespace bnlab::testing
