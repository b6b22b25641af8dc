#pragma once
// Helpers of the reliability tests: a bnlab process that can be killed while it runs, a
// synthetic Fashion-MNIST large enough that an epoch takes a measurable time, and file checks.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/cli_support.hpp"

namespace bnlab::reliability {

using cli::testing::bnlab_binary;
using cli::testing::read_text;
using cli::testing::RunResult;

// A running bnlab; its output goes to files in scratch.
class Process {
 public:
  Process(const std::vector<std::string>& args, const std::filesystem::path& scratch) {
    const std::string binary = bnlab_binary().string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string out = (scratch / "killed-stdout.txt").string();
    const std::string err = (scratch / "killed-stderr.txt").string();
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    const int spawned = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) throw std::runtime_error("posix_spawn of " + binary + " failed");
  }
  ~Process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // True while the process has not exited.
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == 0) return true;
    record(status);
    return false;
  }
  // SIGKILL, then reaps it. Returns true if the signal ended it (false: it had already exited).
  bool kill() {
    if (!running()) return false;
    ::kill(pid_, SIGKILL);
    wait();
    return killed_by_signal_;
  }
  void wait() {
    int status = 0;
    while (pid_ > 0 && ::waitpid(pid_, &status, 0) < 0)
      if (errno != EINTR) throw std::runtime_error("waitpid failed");
    if (pid_ > 0) record(status);
  }
  int exit_status() const { return exit_status_; }

 private:
  void record(int status) {
    killed_by_signal_ = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    pid_ = 0;
  }
  pid_t pid_ = 0;
  bool killed_by_signal_ = false;
  int exit_status_ = -1;
};

// A Fashion-MNIST-shaped data set of pure noise with random labels: nothing to learn, so the
// gradients stay large and a learning rate near the edge of stability diverges only after some
// epochs (on learnable data a run either diverges at once or converges for good).
inline void write_noise_fashion_mnist(const std::filesystem::path& dir, std::uint32_t train_count) {
  std::filesystem::create_directories(dir);
  std::uint32_t state = 12345;
  auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return state >> 24;
  };
  auto part = [&](const std::string& images_name, const std::string& labels_name, std::uint32_t count) {
    std::ofstream images(dir / images_name, std::ios::binary);
    std::ofstream labels(dir / labels_name, std::ios::binary);
    images.write("\0\0\x08\x03", 4);
    cli::testing::write_be32(images, count);
    cli::testing::write_be32(images, 28);
    cli::testing::write_be32(images, 28);
    labels.write("\0\0\x08\x01", 4);
    cli::testing::write_be32(labels, count);
    for (std::uint32_t i = 0; i < count * 28 * 28; ++i) images.put(static_cast<char>(next()));
    for (std::uint32_t i = 0; i < count; ++i) labels.put(static_cast<char>(next() % 10));
    if (!images || !labels) throw std::runtime_error("cannot write the noise data in " + dir.string());
  };
  part("train-images-idx3-ubyte", "train-labels-idx1-ubyte", train_count);
  part("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 100);
}

// Files in dir whose name contains ".tmp." (an atomic write's temporary).
inline std::vector<std::string> temporaries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  if (!std::filesystem::is_directory(dir)) return names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) names.push_back(entry.path().string());
  return names;
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace bnlab::reliability
