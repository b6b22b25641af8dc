#pragma once
// Test helpers for the `bnlab` command-line tool: find the binary built beside the tests, run it
// with arguments (stdout and stderr captured separately, no shell in between), write a small
// synthetic Fashion-MNIST directory whose classes a model can learn, and a minimal JSON reader
// to check the files the tool writes.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

#include "support/temp_dir.hpp"

namespace bnlab::cli::testing {

// Test binaries are <build>/tests/test_cli; the tool is <build>/bnlab.
inline std::filesystem::path bnlab_binary() {
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  return self.parent_path().parent_path() / "bnlab";
}

// A directory unique per process and test, removed afterwards.
class TempDir : public bnlab::testing::ScratchDirectory {
 public:
  TempDir() : ScratchDirectory("bnlab_cli") {}
  std::string operator/(const std::string& name) const { return (path() / name).string(); }
};

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct RunResult {
  int status = -1;  // exit status, or -1 if the process did not exit normally
  std::string out;
  std::string err;
};

// Runs bnlab with args; stdout and stderr go to files in scratch (pipes could deadlock on a
// long log), read back afterwards.
inline RunResult run_bnlab(const std::vector<std::string>& args, const std::filesystem::path& scratch) {
  const std::string binary = bnlab_binary().string();
  if (!std::filesystem::exists(binary))
    throw std::runtime_error("bnlab binary not found at " + binary + " (build the bnlab_cli target)");
  const auto out_path = scratch / "stdout.txt";
  const auto err_path = scratch / "stderr.txt";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) throw std::runtime_error("posix_spawn of " + binary + " failed");
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("waitpid failed");
  }
  RunResult result;
  result.status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  result.out = read_text(out_path);
  result.err = read_text(err_path);
  return result;
}

// ---- a synthetic Fashion-MNIST ----------------------------------------------------------

inline void write_be32(std::ofstream& out, std::uint32_t value) {
  const char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16), static_cast<char>(value >> 8),
                         static_cast<char>(value)};
  out.write(bytes, 4);
}

// Image i of class label: dim noise everywhere and a bright 7x7 block whose position (one of
// the 16 cells of a 4x4 grid) is the label, so the classes are separable and a model that sees
// the right labels learns them within a few epochs. A linear congruential generator keeps the
// files identical on every run.
inline void write_synthetic_part(const std::filesystem::path& dir, const std::string& images_name,
                                 const std::string& labels_name, std::uint32_t count, std::uint32_t seed) {
  std::ofstream images(dir / images_name, std::ios::binary);
  std::ofstream labels(dir / labels_name, std::ios::binary);
  images.write("\0\0\x08\x03", 4);
  write_be32(images, count);
  write_be32(images, 28);
  write_be32(images, 28);
  labels.write("\0\0\x08\x01", 4);
  write_be32(labels, count);
  std::uint32_t state = seed;
  auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return state >> 24;  // 0..255
  };
  for (std::uint32_t i = 0; i < count; ++i) {
    const int label = static_cast<int>(next() % 10);
    const int row0 = (label / 4) * 7;
    const int col0 = (label % 4) * 7;
    for (int r = 0; r < 28; ++r)
      for (int c = 0; c < 28; ++c) {
        const bool block = r >= row0 && r < row0 + 7 && c >= col0 && c < col0 + 7;
        const std::uint32_t noise = next() % 64;
        const char pixel = static_cast<char>(block ? 160 + noise : noise);
        images.write(&pixel, 1);
      }
    const char byte = static_cast<char>(label);
    labels.write(&byte, 1);
  }
  if (!images || !labels) throw std::runtime_error("cannot write the synthetic data in " + dir.string());
}

// 700 training images (the first 100 serve as validation with --validation 100), 200 test.
inline void write_synthetic_fashion_mnist(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  write_synthetic_part(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 700, 1);
  write_synthetic_part(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 200, 2);
}

// ---- a minimal JSON reader (RFC 8259 values; numbers as double) --------------------------

struct Json {
  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;

  const Json& at(const std::string& key) const {
    const auto it = object.find(key);
    if (kind != Kind::object || it == object.end()) throw std::runtime_error("JSON: no key '" + key + "'");
    return it->second;
  }
  const Json& operator[](std::size_t i) const {
    if (kind != Kind::array || i >= array.size()) throw std::runtime_error("JSON: no element " + std::to_string(i));
    return array[i];
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : text_(text) {}

  // Throws std::runtime_error with the offset for anything that is not exactly one JSON value.
  Json parse() {
    Json value = parse_value();
    skip_space();
    if (pos_ != text_.size()) fail("trailing characters");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("JSON: " + what + " at offset " + std::to_string(pos_));
  }
  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t'))
      ++pos_;
  }
  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'");
  }
  void expect_word(const std::string& word) {
    if (text_.compare(pos_, word.size(), word) != 0) fail("expected " + word);
    pos_ += word.size();
  }
  std::string parse_string() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) fail("unterminated string");
      const char c = text_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) fail("unterminated escape");
      const char e = text_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          if (pos_ + 4 > text_.size()) fail("short \\u escape");
          const unsigned code = std::stoul(text_.substr(pos_, 4), nullptr, 16);
          pos_ += 4;
          if (code > 0x7f) fail("non-ASCII \\u escape (not needed by these tests)");
          out += static_cast<char>(code);
          break;
        }
        default:
          fail("bad escape");
      }
    }
  }
  double parse_number() {
    const std::size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    auto digits = [&] {
      const std::size_t from = pos_;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
      if (pos_ == from) fail("expected a digit");
    };
    if (pos_ < text_.size() && text_[pos_] == '0')
      ++pos_;
    else
      digits();
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      digits();
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      digits();
    }
    return std::stod(text_.substr(start, pos_ - start));
  }
  Json parse_value() {
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end");
    Json value;
    const char c = text_[pos_];
    if (c == '{') {
      value.kind = Json::Kind::object;
      ++pos_;
      if (consume('}')) return value;
      do {
        skip_space();
        const std::string key = parse_string();
        expect(':');
        if (!value.object.emplace(key, parse_value()).second) fail("duplicate key '" + key + "'");
      } while (consume(','));
      expect('}');
    } else if (c == '[') {
      value.kind = Json::Kind::array;
      ++pos_;
      if (consume(']')) return value;
      do value.array.push_back(parse_value());
      while (consume(','));
      expect(']');
    } else if (c == '"') {
      value.kind = Json::Kind::string;
      value.string = parse_string();
    } else if (c == 't' || c == 'f') {
      value.kind = Json::Kind::boolean;
      value.boolean = c == 't';
      expect_word(c == 't' ? "true" : "false");
    } else if (c == 'n') {
      expect_word("null");
    } else {
      value.kind = Json::Kind::number;
      value.number = parse_number();
    }
    return value;
  }

  const std::string& text_;
  std::size_t pos_ = 0;
};

inline Json parse_json(const std::string& text) { return JsonParser(text).parse(); }

inline std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  if (!text.empty() && text.back() == separator) parts.emplace_back();
  return parts;
}

}  // namespace bnlab::cli::testing
