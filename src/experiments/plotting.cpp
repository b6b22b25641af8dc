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

// Runs gnuplot on script with dir as its working directory, the output format and file set
// by -e (so the script itself stays relocatable and format-neutral); stdout and stderr go to a
// log file read back on failure. gnuplot runs its -e commands before it opens the script, so
// after the `cd` a relative script path would be looked up inside dir: both are made absolute.
void run_gnuplot(const std::filesystem::path& dir, const std::filesystem::path& script, const std::string& format,
                 const std::string& output_file, const std::string& figure) {
  const std::string binary = gnuplot_executable().string();
  const std::filesystem::path absolute_dir = std::filesystem::absolute(dir);
  const std::string setup = "cd " + gnuplot_quote(absolute_dir.string()) + "; format = " + gnuplot_quote(format) +
                            "; output_file = " + gnuplot_quote(output_file);
  const auto log = absolute_dir / (figure + ".gnuplot.log");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<std::string> args{binary, "-e", setup, std::filesystem::absolute(script).string()};
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
    throw std::runtime_error(
        fmt::format("figure {}: gnuplot failed drawing the {} (log {}):\n{}", figure, format, log.string(), output));
  std::error_code ec;
  std::filesystem::remove(log, ec);  // a successful run's log holds only warnings nobody reads; a failed one stays
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
  // The terminal and the output file come from variables, so the same script gives the PNG and
  // the SVG (and a reader can run it with `gnuplot -e 'format="svg"' stem.gp`).
  std::string script = fmt::format(
      "# {}: written by bnlab; redraw with gnuplot -e 'format=\"png\"' {}.gp (or \"svg\")\n"
      "if (!exists(\"format\")) format = \"png\"\n"
      "if (!exists(\"output_file\")) output_file = \"{}.\" . format\n"
      "if (format eq \"svg\") {{\n"
      "  set terminal svg size {},{} dynamic enhanced font \"Liberation Sans,11\" background rgb \"white\"\n"
      "}} else {{\n"
      "  set terminal pngcairo size {},{} enhanced font \"Liberation Sans,11\" background rgb \"white\"\n"
      "}}\n"
      "set output output_file\n"
      "set encoding utf8\n"
      "{}\n"
      "unset output\n",
      stem, stem, stem, width, height, width, height, commands);
  // gnuplot truncates its output file as it starts, so the script and both figures go to
  // temporaries first, renamed over the old files once both formats have succeeded: a failed
  // or killed rerun leaves the earlier figure and its script whole.
  const std::string temporary_suffix = fmt::format(".tmp.{}", ::getpid());
  const std::vector<std::pair<std::filesystem::path, std::filesystem::path>> renames{
      {dir / (files.script.filename().string() + temporary_suffix), files.script},
      {dir / (files.png.filename().string() + temporary_suffix), files.png},
      {dir / (files.svg.filename().string() + temporary_suffix), files.svg}};
  try {
    write_file_atomically(renames[0].first, script);
    for (std::size_t i = 1; i < renames.size(); ++i) {
      const auto& [temporary, final_file] = renames[i];
      run_gnuplot(dir, renames[0].first, i == 1 ? "png" : "svg", temporary.filename().string(), stem);
      std::error_code ec;
      if (std::filesystem::file_size(temporary, ec) == 0 || ec)
        throw std::runtime_error(fmt::format("figure {}: gnuplot wrote no {}", stem, final_file.string()));
    }
    for (const auto& [temporary, final_file] : renames) std::filesystem::rename(temporary, final_file);
  } catch (...) {
    std::error_code ec;
    for (const auto& [temporary, final_file] : renames) std::filesystem::remove(temporary, ec);
    throw;
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
    bool panel_has_data = false;
    for (std::size_t s = 0; s < panel.series.size(); ++s) {
      const Series& series = panel.series[s];
      bool any = false;
      for (std::size_t i = 0; i < std::min(series.x.size(), series.y.size()); ++i)
        any = any || (std::isfinite(series.x[i]) && std::isfinite(series.y[i]));
      panel_has_data = panel_has_data || any;
      if (any)
        clauses.push_back(
            fmt::format("${}_{}_{} using 1:2 with {} title {}", prefix, p, s, series.style, gnuplot_quote(series.title)));
      else
        clauses.push_back(fmt::format("NaN with {} title {}", series.style, gnuplot_quote(series.title + " (no data)")));
    }
    if (clauses.empty()) clauses.push_back("NaN notitle");
    // With no finite point in the whole panel gnuplot cannot autoscale ("all points y value
    // undefined!") and fails: the panel is drawn empty on fixed ranges instead.
    if (!panel_has_data) {
      if (!panel.has_yrange) text += "set yrange [0:1]\n";
      if (panel.log_x) text += "set xrange [1:2]\n";
    }
    text += "plot ";
    for (std::size_t i = 0; i < clauses.size(); ++i) text += (i ? ", \\\n     " : "") + clauses[i];
    text += "\n";
  }
  text += "unset multiplot\n";
  return text;
}

}  // namespace bnlab::experiments
