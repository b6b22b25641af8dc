#include "io/files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace bnlab::io {
namespace {

std::string errno_text(int error) { return std::strerror(error); }

std::string_view kind_of(std::filesystem::file_type type) {
  switch (type) {
    case std::filesystem::file_type::directory:
      return "a directory";
    case std::filesystem::file_type::character:
      return "a character device";
    case std::filesystem::file_type::block:
      return "a block device";
    case std::filesystem::file_type::fifo:
      return "a FIFO";
    case std::filesystem::file_type::socket:
      return "a socket";
    default:
      return "not a regular file";
  }
}

std::string_view kind_of_mode(mode_t mode) {
  if (S_ISDIR(mode)) return kind_of(std::filesystem::file_type::directory);
  if (S_ISCHR(mode)) return kind_of(std::filesystem::file_type::character);
  if (S_ISBLK(mode)) return kind_of(std::filesystem::file_type::block);
  if (S_ISFIFO(mode)) return kind_of(std::filesystem::file_type::fifo);
  if (S_ISSOCK(mode)) return kind_of(std::filesystem::file_type::socket);
  return kind_of(std::filesystem::file_type::unknown);
}

std::filesystem::path parent_or_current(const std::filesystem::path& path) {
  const auto parent = path.parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

}  // namespace

std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc) {
  auto* bytes = static_cast<const Bytef*>(data);
  uLong running = crc;
  while (size > 0) {
    const uInt piece = static_cast<uInt>(std::min<std::size_t>(size, std::size_t{1} << 30));
    running = ::crc32(running, bytes, piece);
    bytes += piece;
    size -= piece;
  }
  return static_cast<std::uint32_t>(running);
}

std::string read_regular_file(const std::filesystem::path& path, std::string_view who) {
  const std::string name = path.string();
  auto fail = [&](const std::string& problem) {
    return std::runtime_error(fmt::format("{} '{}': {}", who, name, problem));
  };
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer before fstat can refuse it.
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw fail(fmt::format("cannot open: {}", errno_text(errno)));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    throw fail(fmt::format("cannot stat: {}", errno_text(error)));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    throw fail(fmt::format("is {}, expected a regular file", kind_of_mode(info.st_mode)));
  }
  std::string bytes(static_cast<std::size_t>(info.st_size), '\0');
  std::size_t done = 0;
  // Read to the end even if the file grew since fstat; a regular file never blocks.
  while (true) {
    if (done == bytes.size()) bytes.resize(bytes.size() + 65536);
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw fail(fmt::format("read error after {} bytes: {}", done, errno_text(error)));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  bytes.resize(done);
  return bytes;
}

std::filesystem::path write_target(const std::filesystem::path& path, std::string& problem) {
  problem.clear();
  std::error_code ec;
  const auto link_status = std::filesystem::symlink_status(path, ec);
  if (ec || !std::filesystem::exists(link_status)) return path;
  if (!std::filesystem::is_symlink(link_status)) {
    if (std::filesystem::is_regular_file(link_status)) return path;
    problem = fmt::format("is {}, not a regular file; refusing to replace it", kind_of(link_status.type()));
    return {};
  }
  const auto target = std::filesystem::canonical(path, ec);
  if (ec) {
    problem = fmt::format("is a symbolic link to nothing ({})", ec.message());
    return {};
  }
  const auto status = std::filesystem::status(target, ec);
  if (!ec && std::filesystem::is_regular_file(status)) return target;
  if (!ec && !std::filesystem::exists(status)) return target;
  problem = fmt::format("is a symbolic link to '{}', which is {}, not a regular file; refusing to replace it",
                        target.string(), kind_of(status.type()));
  return {};
}

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes, std::string_view who) {
  std::string problem;
  const std::filesystem::path target = write_target(path, problem);
  if (!problem.empty()) throw std::runtime_error(fmt::format("{} '{}': {}", who, path.string(), problem));
  std::string temp = target.string() + ".tmp.XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0)
    throw std::runtime_error(
        fmt::format("{} '{}': cannot create a temporary file beside it: {}", who, path.string(), errno_text(errno)));
  auto fail = [&](const std::string& step, int error) {
    ::close(fd);
    ::unlink(temp.c_str());
    return std::runtime_error(fmt::format("{} '{}': {} failed: {}; the existing file, if any, is unchanged", who,
                                          path.string(), step, errno_text(error)));
  };
  // mkstemp creates the file 0600; an output is as readable as any other file, or keeps the
  // mode of the file it replaces.
  struct stat old {};
  const mode_t mode = ::stat(target.c_str(), &old) == 0 ? (old.st_mode & 07777) : 0644;
  if (::fchmod(fd, mode) != 0) throw fail("chmod of the temporary file", errno);
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw fail(fmt::format("writing byte {} of {}", written, bytes.size()), errno);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) throw fail("fsync", errno);
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error(fmt::format("{} '{}': close failed: {}", who, path.string(), errno_text(error)));
  }
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error(
        fmt::format("{} '{}': rename of the temporary file failed: {}", who, path.string(), errno_text(error)));
  }
  // The rename survives a crash only once the directory entry itself is on disk.
  const int dir_fd = ::open(parent_or_current(target).c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace bnlab::io
