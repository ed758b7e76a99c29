#include "loadgen/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace flowguard::loadgen {

namespace {

constexpr double kWidth = 720;
constexpr double kHeight = 260;
constexpr double kMargin = 50;

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

struct Series {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;
};

// A line chart with linear axes from 0 to the largest x and y; `xLabel(x)` names x ticks.
template <typename XLabel>
std::string lineChart(const std::string& title, const std::string& yUnit, const std::vector<Series>& series,
                      XLabel xLabel, const std::vector<double>& xTicks) {
  double maxX = 0;
  double maxY = 0;
  for (const auto& s : series) {
    for (auto [x, y] : s.points) {
      maxX = std::max(maxX, x);
      maxY = std::max(maxY, y);
    }
  }
  if (maxX <= 0) maxX = 1;
  if (maxY <= 0) maxY = 1;
  maxY *= 1.1;
  double plotW = kWidth - 2 * kMargin;
  double plotH = kHeight - 2 * kMargin;
  auto px = [&](double x) { return kMargin + x / maxX * plotW; };
  auto py = [&](double y) { return kHeight - kMargin - y / maxY * plotH; };
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">)",
      kWidth, kHeight);
  svg += fmt::format(R"(<text x="{}" y="20" font-size="14">{}</text>)", kMargin, escape(title));
  svg += fmt::format(
      R"(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#444"/><line x1="{0}" y1="{3}" x2="{0}" y2="{1}" stroke="#444"/>)",
      kMargin, kHeight - kMargin, kWidth - kMargin, kMargin);
  for (int i = 0; i <= 4; ++i) {
    double y = maxY * i / 4;
    svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{:.3g}{}</text>)", kMargin - 4, py(y) + 4, y,
                       yUnit);
  }
  for (double x : xTicks) {
    if (x > maxX) continue;
    svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)", px(x), kHeight - kMargin + 14,
                       xLabel(x));
  }
  double legendX = kWidth - kMargin - 150;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    std::string path;
    for (auto [x, y] : s.points)
      path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", px(x), py(y));
    svg += fmt::format(R"(<path d="{}" fill="none" stroke="{}" stroke-width="2"/>)", path, s.color);
    svg += fmt::format(R"(<text x="{}" y="{}" fill="{}">{}</text>)", legendX, 20 + 14 * i, s.color,
                       escape(s.name));
  }
  return svg + "</svg>\n";
}

}  // namespace

std::string htmlReport(const Options& options, const RunTotals& totals, const RunFigures& figures,
                       const std::vector<IntervalSample>& seconds) {
  Series rps{"requests/s", "#1f77b4", {}};
  Series p99{"p99 (ms)", "#d62728", {}};
  for (const IntervalSample& s : seconds) {
    if (s.seconds <= 0) continue;
    rps.points.emplace_back(s.elapsedS, static_cast<double>(s.requests) / s.seconds);
    p99.points.emplace_back(s.elapsedS, static_cast<double>(s.p99Us) / 1000.0);
  }
  std::vector<double> timeTicks;
  double last = seconds.empty() ? 1 : seconds.back().elapsedS;
  double step = std::max(1.0, std::ceil(last / 10));
  for (double t = 0; t <= last; t += step) timeTicks.push_back(t);
  auto seconds_label = [](double x) { return fmt::format("{:.0f}s", x); };

  // HdrHistogram's percentile plot: x = log10(1 / (1 - p)), so 90 %, 99 %, 99.9 % are evenly spaced.
  Series corrected{"corrected (ms)", "#d62728", {}};
  Series uncorrected{"uncorrected (ms)", "#2ca02c", {}};
  for (double x = 0; x <= 5.0001; x += 0.05) {
    double p = 100.0 * (1.0 - std::pow(10.0, -x));
    corrected.points.emplace_back(x, static_cast<double>(totals.allCorrected.valueAtPercentile(p)) / 1000.0);
    uncorrected.points.emplace_back(x,
                                    static_cast<double>(totals.allUncorrected.valueAtPercentile(p)) / 1000.0);
  }
  auto percentileLabel = [](double x) {
    static const char* names[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
    return std::string(names[static_cast<int>(std::lround(x))]);
  };
  std::vector<Series> distribution{corrected};
  if (options.rate > 0) distribution.push_back(uncorrected);

  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>flowguard-loadgen report</title>"
      "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}</style>"
      "</head><body>\n";
  html += fmt::format("<h1>flowguard-loadgen: {} {}</h1>\n", escape(options.method), escape(options.url));
  html += fmt::format(
      "<p>{} requests in {:.2f} s: {:.1f} req/s. p50 {:.3f} ms, p99 {:.3f} ms, max {:.3f} ms.</p>\n",
      totals.completed, figures.elapsedS, figures.requestsPerSec,
      totals.allCorrected.valueAtPercentile(50) / 1000.0, totals.allCorrected.valueAtPercentile(99) / 1000.0,
      totals.allCorrected.max() / 1000.0);
  html += "<h2>Over time</h2>\n";
  html += lineChart("requests per second", "", {rps}, seconds_label, timeTicks);
  html += lineChart("p99 latency per second", "ms", {p99}, seconds_label, timeTicks);
  html += "<h2>Latency by percentile</h2>\n";
  html += lineChart("latency by percentile", "ms", distribution, percentileLabel, {0, 1, 2, 3, 4, 5});
  html += "<h2>Summary</h2>\n<pre>" + escape(formatSummary(options, totals, figures)) + "</pre>\n";
  return html + "</body></html>\n";
}

}  // namespace flowguard::loadgen
