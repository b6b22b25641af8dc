#include "bnlab/experiments/output_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

namespace bnlab::experiments {
namespace {

std::string errno_text(int error) { return std::strerror(error); }

std::filesystem::path parent_or_current(const std::filesystem::path& path) {
  const auto parent = path.parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

// access(W_OK) says yes to root everywhere, and to anyone on a read-only mount or in /proc;
// creating (and removing) a file is the check that holds, and it costs no training time.
std::string creation_error(const std::filesystem::path& directory) {
  std::string probe = (directory / ".bnlab-probe.XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) return errno_text(errno);
  ::close(fd);
  ::unlink(probe.c_str());
  return {};
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, std::string_view contents) {
  std::string temp = path.string() + ".tmp.XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0)
    throw std::runtime_error(
        fmt::format("write '{}': cannot create a temporary file beside it: {}", path.string(), errno_text(errno)));
  auto fail = [&](const std::string& step, int error) {
    ::close(fd);
    ::unlink(temp.c_str());
    return std::runtime_error(fmt::format("write '{}': {} failed: {}; the existing file, if any, is unchanged",
                                          path.string(), step, errno_text(error)));
  };
  // mkstemp creates the file 0600; an output file should be as readable as any other (or keep
  // the mode of the file it replaces).
  struct stat old {};
  const mode_t mode = ::stat(path.c_str(), &old) == 0 ? (old.st_mode & 07777) : 0644;
  if (::fchmod(fd, mode) != 0) throw fail("chmod of the temporary file", errno);
  std::size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw fail(fmt::format("writing byte {} of {}", written, contents.size()), errno);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) throw fail("fsync", errno);
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error(fmt::format("write '{}': close failed: {}", path.string(), errno_text(error)));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error(
        fmt::format("write '{}': rename of the temporary file failed: {}", path.string(), errno_text(error)));
  }
  // The rename survives a crash only once the directory entry itself is on disk.
  const int dir_fd = ::open(parent_or_current(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void check_file_destination(const std::filesystem::path& path, std::string_view what) {
  if (path.empty()) throw std::invalid_argument(fmt::format("{}: the path is empty", what));
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw std::invalid_argument(fmt::format("{} '{}' is a directory, expected a file path", what, path.string()));
  const auto parent = parent_or_current(path);
  if (!std::filesystem::is_directory(parent, ec))
    throw std::invalid_argument(
        fmt::format("{} '{}': the directory '{}' does not exist", what, path.string(), parent.string()));
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
