#include "bnlab/experiments/plotting.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "bnlab/experiments/output_files.hpp"

extern char** environ;

namespace bnlab::experiments {
namespace {

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs gnuplot on script with dir as its working directory and the output format set (by -e,
// so the script itself stays relocatable and format-neutral); stdout and stderr go to a log file read back on failure.
void run_gnuplot(const std::filesystem::path& dir, const std::filesystem::path& script, const std::string& format,
                 const std::string& figure) {
  const std::string binary = gnuplot_executable().string();
  const std::string cd = "cd " + gnuplot_quote(dir.string()) + "; format = " + gnuplot_quote(format);
  const auto log = dir / (script.stem().string() + ".gnuplot.log");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<std::string> args{binary, "-e", cd, script.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0)
    throw std::runtime_error(fmt::format("figure {}: cannot start {}: {}", figure, binary, std::strerror(spawned)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error(fmt::format("figure {}: waitpid failed", figure));
  const std::string output = read_all(log);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(fmt::format("figure {}: gnuplot failed (script {}):\n{}", figure, script.string(), output));
  std::error_code ec;
  std::filesystem::remove(log, ec);  // a successful run's log holds only warnings nobody reads
}

std::string number(double value) { return fmt::format("{}", value); }

}  // namespace

std::string gnuplot_quote(const std::string& text) {
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

std::filesystem::path gnuplot_executable() {
  if (const char* env = std::getenv("BNLAB_GNUPLOT"); env && *env) {
    std::filesystem::path path(env);
    if (::access(path.c_str(), X_OK) != 0)
      throw std::runtime_error(fmt::format("BNLAB_GNUPLOT is '{}', which is not an executable file", env));
    return path;
  }
  const char* path_env = std::getenv("PATH");
  std::string paths = path_env ? path_env : "/usr/bin:/bin";
  std::stringstream stream(paths);
  std::string entry;
  while (std::getline(stream, entry, ':')) {
    if (entry.empty()) continue;
    const auto candidate = std::filesystem::path(entry) / "gnuplot";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw std::runtime_error(
      "gnuplot not found: the experiments draw their figures with gnuplot (install Debian's gnuplot-nox, e.g. with "
      "scripts/setup.sh, or set BNLAB_GNUPLOT to the binary)");
}

bool plotting_available() {
  try {
    gnuplot_executable();
    return true;
  } catch (const std::runtime_error&) {
    return false;
  }
}

FigureFiles render_figure(const std::filesystem::path& dir, const std::string& stem, const std::string& commands,
                          int width, int height) {
  FigureFiles files{dir / (stem + ".png"), dir / (stem + ".svg"), dir / (stem + ".gp")};
  // The terminal comes from a variable, so the same script gives the PNG and the SVG (and a
  // reader can run it with `gnuplot -e 'format="svg"' stem.gp`).
  std::string script = fmt::format(
      "# {}: written by bnlab; redraw with gnuplot -e 'format=\"png\"' {}.gp (or \"svg\")\n"
      "if (!exists(\"format\")) format = \"png\"\n"
      "if (format eq \"svg\") {{\n"
      "  set terminal svg size {},{} dynamic enhanced font \"Liberation Sans,11\" background rgb \"white\"\n"
      "}} else {{\n"
      "  set terminal pngcairo size {},{} enhanced font \"Liberation Sans,11\" background rgb \"white\"\n"
      "}}\n"
      "set output \"{}.\" . format\n"
      "set encoding utf8\n"
      "{}\n"
      "unset output\n",
      stem, stem, width, height, width, height, stem, commands);
  write_file_atomically(files.script, script);
  // gnuplot's -e commands run before the script file, so they choose the format.
  for (const char* format : {"png", "svg"}) run_gnuplot(dir, files.script, format, stem);
  for (const auto& file : {files.png, files.svg}) {
    std::error_code ec;
    if (std::filesystem::file_size(file, ec) == 0 || ec)
      throw std::runtime_error(fmt::format("figure {}: gnuplot wrote no {}", stem, file.string()));
  }
  return files;
}

std::string line_panels_commands(const std::vector<LinePanel>& panels, const std::string& prefix) {
  std::string text;
  for (std::size_t p = 0; p < panels.size(); ++p) {
    for (std::size_t s = 0; s < panels[p].series.size(); ++s) {
      const Series& series = panels[p].series[s];
      text += fmt::format("${}_{}_{} << EOD\n", prefix, p, s);
      const std::size_t n = std::min(series.x.size(), series.y.size());
      for (std::size_t i = 0; i < n; ++i)
        if (std::isfinite(series.x[i]) && std::isfinite(series.y[i]))
          text += number(series.x[i]) + " " + number(series.y[i]) + "\n";
      text += "EOD\n";
    }
  }
  text += fmt::format("set multiplot layout 1,{}\n", panels.size());
  text += "set grid lc rgb \"#dddddd\"\nset border lc rgb \"#444444\"\n";
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const LinePanel& panel = panels[p];
    text += "reset\nset grid lc rgb \"#dddddd\"\n";
    text += "set title " + gnuplot_quote(panel.title) + "\n";
    text += "set xlabel " + gnuplot_quote(panel.xlabel) + "\n";
    text += "set ylabel " + gnuplot_quote(panel.ylabel) + "\n";
    text += "set key " + panel.key + " opaque box lc rgb \"#bbbbbb\"\n";
    text += panel.log_x ? "set logscale x 2\n" : "unset logscale x\n";
    if (panel.has_yrange) text += fmt::format("set yrange [{}:{}]\n", number(panel.ymin), number(panel.ymax));
    text += panel.extra;
    if (!panel.extra.empty() && panel.extra.back() != '\n') text += "\n";
    // A series without a finite point would make gnuplot stop with "no valid points";
    // it is drawn as nothing (its title still in the key) through an impossible point instead.
    std::vector<std::string> clauses;
    for (std::size_t s = 0; s < panel.series.size(); ++s) {
      const Series& series = panel.series[s];
      bool any = false;
      for (std::size_t i = 0; i < std::min(series.x.size(), series.y.size()); ++i)
        any = any || (std::isfinite(series.x[i]) && std::isfinite(series.y[i]));
      if (any)
        clauses.push_back(
            fmt::format("${}_{}_{} using 1:2 with {} title {}", prefix, p, s, series.style, gnuplot_quote(series.title)));
      else
        clauses.push_back(fmt::format("NaN with {} title {}", series.style, gnuplot_quote(series.title + " (no data)")));
    }
    if (clauses.empty()) clauses.push_back("NaN notitle");
    text += "plot ";
    for (std::size_t i = 0; i < clauses.size(); ++i) text += (i ? ", \\\n     " : "") + clauses[i];
    text += "\n";
  }
  text += "unset multiplot\n";
  return text;
}

}  // namespace bnlab::experiments
