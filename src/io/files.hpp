#pragma once
// Private to src: whole-file reads and atomic writes, shared by model files, checkpoints and the
// experiments' outputs, so that every one of them refuses the same paths with the same words.
//
// Only regular files are read or replaced. A FIFO would block a read forever and a device
// never end one; replacing a device, FIFO or socket by renaming a file over it (what an atomic
// write does) would destroy it, and as root that includes /dev/null. A symbolic link is
// followed: the file it names is read or replaced, and the link stays a link.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace bnlab::io {

// The whole of the regular file at path. Throws std::runtime_error "<who> '<path>': <problem>"
// when it does not exist, is not a regular file (naming what it is), or cannot be read.
std::string read_regular_file(const std::filesystem::path& path, std::string_view who);
// The same without the exception: the bytes, or nothing with `problem` saying why (no prefix),
// for callers with error types of their own.
std::optional<std::string> try_read_regular_file(const std::filesystem::path& path, std::string& problem);

// Writes bytes to path atomically: a temporary PATH.tmp.XXXXXX beside the file is written,
// fsync'ed and renamed over it, then the directory is fsync'ed, so a reader sees the old file or
// the whole new one. Throws std::runtime_error "<who> '<path>': ..." naming the failing step,
// with path left as it was and no temporary behind, and before writing anything when path
// exists and is not a regular file or is a link to nothing.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes, std::string_view who);

// strerror's text for an errno value.
std::string errno_text(int error);
// The directory a path's file is in: its parent, or "." for a bare file name.
std::filesystem::path parent_or_current(const std::filesystem::path& path);

// zlib's CRC-32 of size bytes, continuing from crc (0 to start); any size, where zlib takes a uInt.
std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0);

// The path an atomic write would replace: path itself, or the file a symbolic link at path
// names. Empty with `problem` set when path exists and is something other than a regular file
// (or a link to nothing); a path that does not exist is returned as it is.
std::filesystem::path write_target(const std::filesystem::path& path, std::string& problem);

}  // namespace bnlab::io
