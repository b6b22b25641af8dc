#pragma once
// Flags shared by the training subcommands (train, evaluate, compare), so each is declared and
// checked the same way everywhere. The validators only reject what the flag's own value makes
// wrong, with the flag in the message ("--lr: must be a finite number > 0, got -1"); the
// library checks again, since it is also called without this CLI.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bnlab/experiments/training.hpp"

namespace bnlab::cli {

inline CLI::Validator finite_positive() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return fmt::format("must be a number, got '{}'", text);
        if (!std::isfinite(value) || value <= 0) return fmt::format("must be a finite number > 0, got {}", text);
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
        return {};
      },
      "FLOAT in [0, 1)");
}

inline CLI::Validator at_least(std::int64_t minimum) {
  return CLI::Validator(
      [minimum](std::string& text) -> std::string {
        std::int64_t value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return fmt::format("must be an integer, got '{}'", text);
        if (value < minimum) return fmt::format("must be >= {}, got {}", minimum, text);
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

inline void add_training_options(CLI::App& app, experiments::TrainingOptions& options) {
  app.add_option("--epochs", options.epochs, "number of epochs")->check(at_least(1))->capture_default_str();
  app.add_option("--lr", options.learning_rate, "learning rate")->check(finite_positive())->capture_default_str();
  app.add_option("--batch-size", options.batch_size, "mini-batch size")->check(at_least(1))->capture_default_str();
  app.add_option("--seed", options.seed, "seed of the initial weights and the shuffle order")->capture_default_str();
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
