#pragma once
// A scratch directory under the system temp dir, unique per process and test (named
// PREFIX_<pid>_<suite>_<test>), created empty and removed with everything in it afterwards.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace bnlab::testing {

class ScratchDirectory {
 public:
  explicit ScratchDirectory(const std::string& prefix) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string leaf = prefix + "_" + std::to_string(::getpid());
    if (info) leaf += std::string("_") + info->test_suite_name() + "_" + info->name();
    for (char& c : leaf)
      if (c == '/') c = '_';
    path_ = std::filesystem::temp_directory_path() / leaf;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDirectory() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace bnlab::testing
