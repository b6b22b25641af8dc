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

// Closes the descriptor on every way out, exceptions (a failed allocation) included.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::string errno_text(int error) { return std::strerror(error); }

std::filesystem::path parent_or_current(const std::filesystem::path& path) {
  const auto parent = path.parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

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

std::optional<std::string> try_read_regular_file(const std::filesystem::path& path, std::string& problem) {
  const std::string name = path.string();
  problem.clear();
  auto fail = [&](std::string text) {
    problem = std::move(text);
    return std::nullopt;
  };
  // stat first: open() of a socket fails with ENXIO, which would hide what the path is.
  struct stat info {};
  if (::stat(name.c_str(), &info) == 0 && !S_ISREG(info.st_mode))
    return fail(fmt::format("is {}, expected a regular file", kind_of_mode(info.st_mode)));
  // O_NONBLOCK: a FIFO put in place since the stat must not make open() wait for a writer
  // before fstat can refuse it.
  const FileDescriptor fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return fail(fmt::format("cannot open: {}", errno_text(errno)));
  if (::fstat(fd.get(), &info) != 0) return fail(fmt::format("cannot stat: {}", errno_text(errno)));
  if (!S_ISREG(info.st_mode)) return fail(fmt::format("is {}, expected a regular file", kind_of_mode(info.st_mode)));
  std::string bytes;
  try {
    bytes.resize(static_cast<std::size_t>(info.st_size));
    std::size_t done = 0;
    // Read to the end even if the file grew since fstat; a regular file never blocks.
    while (true) {
      if (done == bytes.size()) bytes.resize(bytes.size() + 65536);
      const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail(fmt::format("read error after {} bytes: {}", done, errno_text(errno)));
      }
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    bytes.resize(done);
  } catch (const std::length_error&) {
    return fail(fmt::format("{} bytes do not fit in memory", info.st_size));
  } catch (const std::bad_alloc&) {
    return fail(fmt::format("{} bytes do not fit in memory", info.st_size));
  }
  return bytes;
}

std::string read_regular_file(const std::filesystem::path& path, std::string_view who) {
  std::string problem;
  std::optional<std::string> bytes = try_read_regular_file(path, problem);
  if (!bytes) throw std::runtime_error(fmt::format("{} '{}': {}", who, path.string(), problem));
  return std::move(*bytes);
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
  // canonical() resolves relative links against the link's own directory, and needs the target.
  const auto target = std::filesystem::canonical(path, ec);
  if (ec == std::errc::no_such_file_or_directory) {
    problem = "is a symbolic link to nothing";
    return {};
  }
  if (ec) {
    problem = fmt::format("is a symbolic link that cannot be resolved: {}", ec.message());
    return {};
  }
  const auto status = std::filesystem::status(target, ec);
  if (!ec && std::filesystem::is_regular_file(status)) return target;
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
