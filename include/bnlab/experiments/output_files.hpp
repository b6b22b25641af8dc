#pragma once
// Output files of the experiments (histories, tables) and the checks that let a long run fail
// before it starts rather than after minutes of training.

#include <filesystem>
#include <string_view>

namespace bnlab::experiments {

// Writes contents to path atomically: a temporary PATH.tmp.XXXXXX in the same directory is
// written, flushed to disk and renamed over path, so a reader sees the old file or the whole new
// one, never a part. On any failure the temporary is removed, path is left as it was, and
// std::runtime_error names the file and the failing step. The parent directory must exist. A
// symbolic link is followed (its target is replaced); a path that exists and is not a regular
// file (a device, FIFO, socket, directory) is refused before anything is written.
void write_file_atomically(const std::filesystem::path& path, std::string_view contents);

// Throws std::invalid_argument naming `what` and path unless a file could be created at path:
// path is not an existing directory, its parent directory exists and is writable.
// (A check, not a guarantee: the final write can still fail, e.g. when the disk fills up.)
void check_file_destination(const std::filesystem::path& path, std::string_view what);

// Creates directory (and missing parents) and throws std::invalid_argument naming `what` and
// the directory if that fails or the directory is not writable.
void prepare_output_directory(const std::filesystem::path& directory, std::string_view what);

}  // namespace bnlab::experiments
