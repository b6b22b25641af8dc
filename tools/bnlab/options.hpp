#pragma once
// Flags shared by the training subcommands (train, evaluate, compare), so each is declared and
// checked the same way everywhere. The validators only reject what the flag's own value makes
// wrong, with the flag in the message ("--lr: must be a finite number > 0, got -1"); the
// library checks again, since it is also called without this CLI.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bnlab/experiments/training.hpp"

namespace bnlab::cli {

// CLI11 reads floating-point flags with strtod, which also takes hex ("0x10" is 16), "inf" and
// "nan"; the flags take decimal notation only (digits, one point, an exponent).
inline bool is_decimal_number(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
  });
}

inline CLI::Validator finite_positive() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return fmt::format("must be a number, got '{}'", text);
        if (!std::isfinite(value) || value <= 0) return fmt::format("must be a finite number > 0, got {}", text);
        if (!is_decimal_number(text)) return fmt::format("must be a decimal number, got '{}'", text);
        return {};
      },
      "FLOAT > 0");
}

inline CLI::Validator in_unit_interval() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return fmt::format("must be a number, got '{}'", text);
        if (!(value >= 0 && value < 1)) return fmt::format("must be in [0, 1), got {}", text);
        if (!is_decimal_number(text)) return fmt::format("must be a decimal number, got '{}'", text);
        return {};
      },
      "FLOAT in [0, 1)");
}

// CLI11 reads integers with strtoll(text, base 0): "010" as octal 8, "0x10" as 16, and into an
// unsigned "-1" as 2^64 - 1. Integer flags take plain decimal: digits (a minus sign where
// negative values exist), no leading zero.
inline bool is_plain_decimal(const std::string& text, bool signed_value) {
  const std::size_t start = signed_value && !text.empty() && text[0] == '-' ? 1 : 0;
  if (text.size() == start) return false;
  if (text[start] == '0' && text.size() > start + 1) return false;
  return std::all_of(text.begin() + static_cast<std::ptrdiff_t>(start), text.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// The value of plain decimal text, or nothing when it does not fit T: CLI11 would store a
// saturated value (strtoll's LLONG_MAX) for a larger one, and two seeds would train one run.
template <class T>
std::optional<T> decimal_value(const std::string& text) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// An unsigned integer flag (seeds): plain decimal digits.
inline CLI::Validator unsigned_decimal() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (!is_plain_decimal(text, false))
          return fmt::format("must be a decimal integer >= 0 (digits only), got '{}'", text);
        if (!decimal_value<std::uint64_t>(text))
          return fmt::format("{} is out of range (at most 18446744073709551615)", text);
        return {};
      },
      "UINT");
}

// A signed integer flag whose range is checked elsewhere: plain decimal.
inline CLI::Validator signed_decimal() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (!is_plain_decimal(text, true)) return fmt::format("must be a decimal integer, got '{}'", text);
        if (!decimal_value<std::int64_t>(text)) return fmt::format("{} is out of range", text);
        return {};
      },
      "INT");
}

// An empty path would otherwise read as "flag not given" and silently use the default.
inline CLI::Validator non_empty_path() {
  return CLI::Validator(
      [](std::string& text) { return text.empty() ? std::string("the path is empty") : std::string(); }, "PATH");
}

inline CLI::Validator at_least(std::int64_t minimum) {
  return CLI::Validator(
      [minimum](std::string& text) -> std::string {
        if (!is_plain_decimal(text, true)) return fmt::format("must be a decimal integer, got '{}'", text);
        const std::optional<std::int64_t> value = decimal_value<std::int64_t>(text);
        if (!value) return fmt::format("{} is out of range", text);
        if (*value < minimum) return fmt::format("must be >= {}, got {}", minimum, text);
        return {};
      },
      fmt::format("INT >= {}", minimum));
}

// A name from a fixed list; the message lists the valid ones.
inline CLI::Validator one_of(std::vector<std::string> names, std::string what) {
  const std::string description = fmt::format("{{{}}}", fmt::join(names, ","));
  return CLI::Validator(
      [names = std::move(names), what = std::move(what)](std::string& text) -> std::string {
        if (std::find(names.begin(), names.end(), text) != names.end()) return {};
        return fmt::format("unknown {} '{}' (valid: {})", what, text, fmt::join(names, ", "));
      },
      description);
}

// "a,b,c" as {"a", "b", "c"}; empty names stay (",a" gives {"", "a"}) for list_of to refuse.
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> names(1);
  for (const char c : text) {
    if (c == ',') {
      names.emplace_back();
    } else {
      names.back() += c;
    }
  }
  return names;
}

// A comma-separated list whose every name passes `each`. CLI11's own delimiter drops empty
// names, so "bn," or "bn,,baseline" would pass as if the typo were not there.
inline CLI::Validator list_of(CLI::Validator each) {
  return CLI::Validator(
      [each](std::string& text) -> std::string {
        for (std::string name : split_list(text)) {
          if (name.empty()) return fmt::format("an empty name in the list '{}'", text);
          if (std::string error = each(name); !error.empty()) return error;
        }
        return {};
      },
      "NAME[,NAME...]");
}

inline void add_training_options(CLI::App& app, experiments::TrainingOptions& options) {
  app.add_option("--epochs", options.epochs, "number of epochs")->check(at_least(1))->capture_default_str();
  app.add_option("--lr", options.learning_rate, "learning rate")->check(finite_positive())->capture_default_str();
  app.add_option("--batch-size", options.batch_size, "mini-batch size")->check(at_least(1))->capture_default_str();
  app.add_option("--seed", options.seed, "seed of the initial weights and the shuffle order")
      ->check(unsigned_decimal())
      ->capture_default_str();
}

inline void add_data_options(CLI::App& app, experiments::DataOptions& options, bool training_data) {
  app.add_option("--data-dir", options.data_dir, "directory with the four Fashion-MNIST IDX files (.gz or plain)")
      ->capture_default_str();
  if (training_data) {
    app.add_option("--validation", options.validation,
                   "the first N training images are the validation set (the seed's split); 0: none")
        ->check(at_least(0))
        ->capture_default_str();
    app.add_option("--train-limit", options.train_limit,
                   "train on the first N remaining training images only (0: all; for quick runs)")
        ->check(at_least(0))
        ->capture_default_str();
  }
  app.add_option("--test-limit", options.test_limit, "evaluate on the first N test images only (0: all)")
      ->check(at_least(0))
      ->capture_default_str();
}

}  // namespace bnlab::cli
