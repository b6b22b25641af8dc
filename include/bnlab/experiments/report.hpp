#pragma once
// The experiments' HTML report: one self-contained file (figures embedded as data: URIs, no
// script or style from the network) that a browser opens from disk.
//
// The page carries a small script that, once the page has loaded, marks every figure
// (img.figure) with data-rendered="yes" when it decoded to an image of natural width > 0 and
// "no" otherwise, and sets on <body> data-figures (the count), data-figures-rendered and
// data-errors (script errors caught on the page). A headless browser's DOM dump then says
// whether every figure rendered (see tests/experiments/report_browser_test.cpp).

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace bnlab::experiments {

struct ReportFigure {
  std::filesystem::path png;  // embedded as data:image/png;base64
  std::string caption;        // plain text
};

// One experiment's part of a report. body_html is trusted HTML made with the helpers below.
struct ReportSection {
  std::string id;     // HTML id, e.g. "covariate-shift"
  std::string title;  // plain text
  std::string body_html;
  std::vector<ReportFigure> figures;
};

std::string html_escape(std::string_view text);
// <p>text</p> with text escaped.
std::string html_paragraph(std::string_view text);
// A table of escaped cells; header row first.
std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
std::string base64_encode(std::string_view bytes);

// The whole page. Throws std::runtime_error naming a figure whose PNG cannot be read.
std::string render_report(const std::string& title, const std::string& intro_html,
                          const std::vector<ReportSection>& sections);

}  // namespace bnlab::experiments
