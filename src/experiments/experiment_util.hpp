#pragma once
// Helpers shared by the experiments' implementations (not public): number formats for CSV and
// JSON, the data loading they share, wall-clock timing.

#include <chrono>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "bnlab/experiments/experiment.hpp"
#include "bnlab/experiments/output_files.hpp"
#include "bnlab/experiments/report.hpp"
#include "bnlab/experiments/training.hpp"

namespace bnlab::experiments::detail {

// Shortest decimal that reads back to the same double; empty for a missing (non-finite) value,
// which is how spreadsheets and gnuplot read a gap.
inline std::string csv_number(double value) { return std::isfinite(value) ? fmt::format("{}", value) : ""; }

// JSON has no NaN or infinity: a value that is not finite is null.
inline std::string json_number(double value) { return std::isfinite(value) ? fmt::format("{}", value) : "null"; }

inline std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        else
          out += c;
    }
  }
  return out + "\"";
}

inline std::string json_numbers(const std::vector<double>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + json_number(values[i]);
  return out + "]";
}

class Stopwatch {
public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// A fixed number of decimals for tables ("0.8734"); "diverged"-style text for a missing value.
inline std::string fixed(double value, int decimals, std::string_view missing = "-") {
  return std::isfinite(value) ? fmt::format("{:.{}f}", value, decimals) : std::string(missing);
}

// Writes an experiment's own report.html (its one section) and returns what `experiment all`
// gathers into the combined report.
inline ExperimentOutput write_single_report(const std::string& name, const std::filesystem::path& dir,
                                            const std::string& title, ReportSection section) {
  ExperimentOutput output{name, dir, dir / "report.html", std::move(section)};
  write_file_atomically(output.report, render_report(title, "", std::vector<ReportSection>{output.section}));
  return output;
}

}  // namespace bnlab::experiments::detail
