#include "bnlab/experiments/report.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace bnlab::experiments {
namespace {

std::string read_binary(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("report: cannot read figure '{}'", path.string()));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (bytes.str().empty()) throw std::runtime_error(fmt::format("report: figure '{}' is empty", path.string()));
  return bytes.str();
}

constexpr std::string_view style = R"(
body { font-family: "Liberation Sans", Arial, sans-serif; max-width: 1250px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2.2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #bbb; padding: .25em .6em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; }
nav ul { columns: 2; }
)";

// Runs at the load event, when every data: image has been decoded or has failed.
constexpr std::string_view check_script = R"(
(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message || e)); });
  window.addEventListener('load', function () {
    var images = document.querySelectorAll('img.figure');
    var rendered = 0;
    for (var i = 0; i < images.length; i++) {
      var ok = images[i].complete && images[i].naturalWidth > 0 && images[i].naturalHeight > 0;
      images[i].setAttribute('data-rendered', ok ? 'yes' : 'no');
      if (ok) rendered++;
    }
    document.body.setAttribute('data-figures', String(images.length));
    document.body.setAttribute('data-figures-rendered', String(rendered));
    document.body.setAttribute('data-errors', String(errors.length));
  });
})();
)";

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string html_paragraph(std::string_view text) { return "<p>" + html_escape(text) + "</p>\n"; }

std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string html = "<table>\n<tr>";
  for (const auto& cell : header) html += "<th>" + html_escape(cell) + "</th>";
  html += "</tr>\n";
  for (const auto& row : rows) {
    html += "<tr>";
    for (const auto& cell : row) html += "<td>" + html_escape(cell) + "</td>";
    html += "</tr>\n";
  }
  return html + "</table>\n";
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string render_report(const std::string& title, const std::string& intro_html,
                          const std::vector<ReportSection>& sections) {
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<title>" + html_escape(title) + "</title>\n<style>" + std::string(style) + "</style>\n";
  html += "<script>" + std::string(check_script) + "</script>\n</head>\n<body>\n";
  html += "<h1>" + html_escape(title) + "</h1>\n" + intro_html;
  if (sections.size() > 1) {
    html += "<nav><ul>\n";
    for (const auto& section : sections)
      html += fmt::format("<li><a href=\"#{}\">{}</a></li>\n", html_escape(section.id), html_escape(section.title));
    html += "</ul></nav>\n";
  }
  for (const auto& section : sections) {
    html += fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n", html_escape(section.id), html_escape(section.title));
    html += section.body_html;
    for (const auto& figure : section.figures) {
      html += fmt::format(
          "<figure><img class=\"figure\" alt=\"{}\" src=\"data:image/png;base64,{}\">"
          "<figcaption>{}</figcaption></figure>\n",
          html_escape(figure.caption), base64_encode(read_binary(figure.png)), html_escape(figure.caption));
    }
    html += "</section>\n";
  }
  html += "</body>\n</html>\n";
  return html;
}

}  // namespace bnlab::experiments
