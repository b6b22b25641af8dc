#include "bnlab/experiments/output_files.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

#include "io/files.hpp"

namespace bnlab::experiments {
namespace {

// access(W_OK) says yes to root everywhere, and to anyone on a read-only mount or in /proc;
// creating (and removing) a file is the check that holds, and it costs no training time.
std::string creation_error(const std::filesystem::path& directory) {
  std::string probe = (directory / ".bnlab-probe.XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) return io::errno_text(errno);
  ::close(fd);
  ::unlink(probe.c_str());
  return {};
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, std::string_view contents) {
  io::write_file_atomically(path, contents, "write");
}

void check_file_destination(const std::filesystem::path& path, std::string_view what) {
  if (path.empty()) throw std::invalid_argument(fmt::format("{}: the path is empty", what));
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw std::invalid_argument(fmt::format("{} '{}' is a directory, expected a file path", what, path.string()));
  std::string problem;
  const std::filesystem::path target = io::write_target(path, problem);
  if (!problem.empty()) throw std::invalid_argument(fmt::format("{} '{}' {}", what, path.string(), problem));
  const auto parent = io::parent_or_current(target);
  if (!std::filesystem::exists(parent, ec))
    throw std::invalid_argument(
        fmt::format("{} '{}': the directory '{}' does not exist", what, path.string(), parent.string()));
  if (!std::filesystem::is_directory(parent, ec))
    throw std::invalid_argument(fmt::format("{} '{}': '{}' is not a directory", what, path.string(), parent.string()));
  if (const std::string error = creation_error(parent); !error.empty())
    throw std::invalid_argument(fmt::format("{} '{}': the directory '{}' is not writable: {}", what, path.string(),
                                            parent.string(), error));
}

void prepare_output_directory(const std::filesystem::path& directory, std::string_view what) {
  if (directory.empty()) throw std::invalid_argument(fmt::format("{}: the path is empty", what));
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec)
    throw std::invalid_argument(fmt::format("{} '{}' cannot be created: {}", what, directory.string(), ec.message()));
  if (!std::filesystem::is_directory(directory, ec))
    throw std::invalid_argument(fmt::format("{} '{}' is not a directory", what, directory.string()));
  if (const std::string error = creation_error(directory); !error.empty())
    throw std::invalid_argument(fmt::format("{} '{}' is not writable: {}", what, directory.string(), error));
}

}  // namespace bnlab::experiments
