#pragma once
// Figures through gnuplot (Debian's gnuplot-nox; scripts/setup.sh installs it). bnlab writes a
// gnuplot script whose data are inline datablocks, so the script alone redraws the figure, and
// runs it twice: once for PNG (pngcairo), once for SVG (images inside the SVG are embedded
// PNGs, so the SVG is self-contained too).
//
// The gnuplot binary is $BNLAB_GNUPLOT when set, else `gnuplot` on PATH. Every failure (no
// gnuplot, a script error, no output) is a std::runtime_error naming the figure and what
// gnuplot printed.

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace bnlab::experiments {

// The gnuplot to run; throws std::runtime_error with the install hint when there is none.
std::filesystem::path gnuplot_executable();
bool plotting_available();

struct FigureFiles {
  std::filesystem::path png;
  std::filesystem::path svg;
  std::filesystem::path script;
};

// Writes dir/stem.gp (the commands below after the terminal settings) and renders
// dir/stem.png and dir/stem.svg at width x height pixels. `commands` is gnuplot text: datablocks
// and plot commands, without `set terminal` or `set output`.
FigureFiles render_figure(const std::filesystem::path& dir, const std::string& stem, const std::string& commands,
                          int width, int height);

// One curve of a line plot; points whose x or y is not finite are left out (a diverged run).
struct Series {
  std::string title;
  std::vector<double> x;
  std::vector<double> y;
  std::string style = "lines lw 2";  // gnuplot's "with" clause, colour included if wanted
};

struct LinePanel {
  std::string title;
  std::string xlabel;
  std::string ylabel;
  std::vector<Series> series;
  bool log_x = false;
  bool has_yrange = false;
  double ymin = 0, ymax = 1;
  std::string key = "bottom right";  // gnuplot's `set key` position
  std::string extra;                 // further gnuplot commands for this panel (e.g. arrows)
};

inline LinePanel line_panel(std::string title, std::string xlabel, std::string ylabel) {
  LinePanel panel;
  panel.title = std::move(title);
  panel.xlabel = std::move(xlabel);
  panel.ylabel = std::move(ylabel);
  return panel;
}

// Gnuplot commands that draw the panels side by side (multiplot, one row) with their data as
// datablocks named $<prefix>_<panel>_<series>.
std::string line_panels_commands(const std::vector<LinePanel>& panels, const std::string& prefix);

// A gnuplot string literal (double quotes; backslashes and quotes escaped).
std::string gnuplot_quote(const std::string& text);

}  // namespace bnlab::experiments
