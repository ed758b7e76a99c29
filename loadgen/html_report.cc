#include "loadgen/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "loadgen/key_prefix.h"

namespace flowguard::loadgen {

namespace {

constexpr double kWidth = 720;
constexpr double kHeight = 260;
constexpr double kMargin = 50;
constexpr size_t kMaxKeysShown = 20;  // the per-key chart; --json has every key

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

double ms(double micros) {
  return micros / 1000.0;
}

// A band of a stacked chart, a bar of a grouped one, or a line: a name and its colour.
struct Legend {
  std::string name;
  std::string color;
};

// The status classes a rate-limit test is about, in stacking order (bottom first). 3xx are
// folded into the admitted band: through a gateway a redirect is an answer, not a refusal.
struct StatusBand {
  Legend legend;
  std::vector<Outcome> outcomes;
};

const std::vector<StatusBand>& statusBands() {
  static const std::vector<StatusBand> bands = {
      {{"2xx (and 3xx)", "#2ca02c"}, {Outcome::S2xx, Outcome::S3xx}},
      {{"429 rate-limited", "#ff7f0e"}, {Outcome::S429}},
      {{"other 4xx", "#9467bd"}, {Outcome::S4xx}},
      {{"5xx", "#d62728"}, {Outcome::S5xx}},
      {{"error (no response)", "#7f7f7f"}, {Outcome::Error}},
  };
  return bands;
}

std::string svgOpen(double width, double height, const std::string& title) {
  return fmt::format(
             R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">)",
             width, height) +
         fmt::format(R"(<text x="{}" y="20" font-size="14">{}</text>)", kMargin, escape(title));
}

// A row of coloured squares and names, from (x, y) rightwards.
std::string legendRow(const std::vector<Legend>& items, double x, double y) {
  std::string svg;
  for (const Legend& item : items) {
    svg += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="10" height="10" fill="{}"/>)", x, y - 9,
                       item.color);
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}">{}</text>)", x + 14, y, escape(item.name));
    x += 24 + 6.5 * static_cast<double>(item.name.size());
  }
  return svg;
}

// The plot area of a chart with a linear y axis from 0 to maxY (10 % headroom added).
struct Plot {
  double left = kMargin;
  double top = kMargin;
  double width = kWidth - 2 * kMargin;
  double height = kHeight - 2 * kMargin;
  double maxY = 1;

  explicit Plot(double largestY) : maxY(largestY > 0 ? largestY * 1.1 : 1) {}
  double bottom() const { return top + height; }
  double y(double value) const { return bottom() - value / maxY * height; }

  // Both axes, and five labelled ticks on y.
  std::string axes(const std::string& yUnit) const {
    std::string svg = fmt::format(
        R"(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#444"/><line x1="{0}" y1="{3}" x2="{0}" y2="{1}" stroke="#444"/>)",
        left, bottom(), left + width, top);
    for (int i = 0; i <= 4; ++i) {
      double value = maxY * i / 4;
      svg += fmt::format(R"(<text x="{}" y="{:.1f}" text-anchor="end">{:.3g}{}</text>)", left - 4,
                         y(value) + 4, value, yUnit);
    }
    return svg;
  }
};

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
  Plot plot(maxY);
  auto px = [&](double x) { return plot.left + x / maxX * plot.width; };
  std::string svg = svgOpen(kWidth, kHeight, title) + plot.axes(yUnit);
  for (double x : xTicks) {
    if (x > maxX) continue;
    svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)", px(x), plot.bottom() + 14,
                       xLabel(x));
  }
  double legendX = kWidth - kMargin - 150;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    std::string path;
    for (auto [x, y] : s.points)
      path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", px(x), plot.y(y));
    svg += fmt::format(R"(<path d="{}" fill="none" stroke="{}" stroke-width="2"/>)", path, s.color);
    svg += fmt::format(R"(<text x="{}" y="{}" fill="{}">{}</text>)", legendX, 20 + 14 * i, s.color,
                       escape(s.name));
  }
  return svg + "</svg>\n";
}

std::vector<double> timeTicks(const std::vector<IntervalSample>& seconds) {
  std::vector<double> ticks;
  double last = seconds.empty() ? 1 : seconds.back().elapsedS;
  double step = std::max(1.0, std::ceil(last / 10));
  for (double t = 0; t <= last; t += step) ticks.push_back(t);
  return ticks;
}

std::string secondsLabel(double x) {
  return fmt::format("{:.0f}s", x);
}

// The status mix over the run: one stacked bar per interval (the last one may be shorter),
// as responses per second of each band, so a partial last second is not drawn too low.
std::string statusMixChart(const std::vector<IntervalSample>& seconds) {
  const auto& bands = statusBands();
  auto bandCount = [](const IntervalSample& s, const StatusBand& band) {
    uint64_t n = 0;
    for (Outcome o : band.outcomes) n += s.outcomes[static_cast<size_t>(o)];
    return n;
  };
  double maxRate = 0;
  double maxX = 1;
  for (const IntervalSample& s : seconds) {
    if (s.seconds <= 0) continue;
    maxRate = std::max(maxRate, static_cast<double>(s.requests) / s.seconds);
    maxX = std::max(maxX, s.elapsedS);
  }
  Plot plot(maxRate);
  plot.top = kMargin + 10;  // room for the legend row
  plot.height -= 10;
  auto px = [&](double t) { return plot.left + t / maxX * plot.width; };
  std::string svg = svgOpen(kWidth, kHeight, "responses per second by status class") + plot.axes("");
  std::vector<Legend> legends;
  for (const StatusBand& band : bands) legends.push_back(band.legend);
  svg += legendRow(legends, kMargin, 40);
  for (const IntervalSample& s : seconds) {
    if (s.seconds <= 0) continue;
    double x0 = px(std::max(0.0, s.elapsedS - s.seconds));
    double barWidth = px(s.elapsedS) - x0;
    if (barWidth > 3) barWidth -= 1;  // a hairline gap between seconds
    double stacked = 0;
    for (const StatusBand& band : bands) {
      double rate = static_cast<double>(bandCount(s, band)) / s.seconds;
      if (rate <= 0) continue;
      svg += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"/>)", x0,
                         plot.y(stacked + rate), barWidth, plot.y(stacked) - plot.y(stacked + rate),
                         band.legend.color);
      stacked += rate;
    }
  }
  for (double t : timeTicks(seconds)) {
    if (t > maxX) continue;
    svg += fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle">{}</text>)", px(t), plot.bottom() + 14,
                       secondsLabel(t));
  }
  return svg + "</svg>\n";
}

// Per key (by prefix, the busiest first): a horizontal bar of admitted (2xx and 3xx), limited
// (429) and anything else, with the counts written after it.
std::string perKeyChart(const Options& options, const RunTotals& totals) {
  std::vector<size_t> order(options.keys.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return totals.perKey[a].total() > totals.perKey[b].total(); });
  if (order.size() > kMaxKeysShown) order.resize(kMaxKeysShown);

  constexpr double kRowHeight = 22;
  constexpr double kLabelWidth = 110;
  constexpr double kCountsWidth = 280;  // "123456 admitted, 123456 limited, 1234 other"
  double height = kMargin + kRowHeight * static_cast<double>(order.size()) + 10;
  double barSpace = kWidth - kLabelWidth - kCountsWidth - 10;
  uint64_t largest = 1;
  for (size_t k : order) largest = std::max(largest, totals.perKey[k].total());

  const Legend admitted{"2xx admitted", "#2ca02c"};
  const Legend limited{"429 limited", "#ff7f0e"};
  const Legend other{"other", "#7f7f7f"};
  std::string svg = svgOpen(kWidth, height, "per key: admitted vs rate-limited");
  svg += legendRow({admitted, limited, other}, kMargin, 40);
  for (size_t row = 0; row < order.size(); ++row) {
    const KeyCounts& c = totals.perKey[order[row]];
    auto n = [&](Outcome o) { return c.outcomes[static_cast<size_t>(o)]; };
    uint64_t ok = n(Outcome::S2xx) + n(Outcome::S3xx);
    uint64_t refused = n(Outcome::S429);
    uint64_t rest = c.total() - ok - refused;
    double y = kMargin + kRowHeight * static_cast<double>(row);
    svg += fmt::format(R"(<text x="{}" y="{:.1f}" text-anchor="end" font-family="monospace">{}</text>)",
                       kLabelWidth - 6, y + 14, escape(keyPrefix(options.keys[order[row]])));
    double x = kLabelWidth;
    for (auto [count, legend] :
         {std::pair{ok, &admitted}, std::pair{refused, &limited}, std::pair{rest, &other}}) {
      double w = barSpace * static_cast<double>(count) / static_cast<double>(largest);
      if (w <= 0) continue;
      svg += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{}" fill="{}"/>)", x, y + 3, w,
                         kRowHeight - 6, legend->color);
      x += w;
    }
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}">{} admitted, {} limited, {} other</text>)", x + 6,
                       y + 14, ok, refused, rest);
  }
  return svg + "</svg>\n";
}

// Latency per outcome class: p50, mean and p99 side by side for each class that occurred.
std::string latencyByClassChart(const RunTotals& totals) {
  const std::vector<Legend> figures = {{"p50", "#9ecae1"}, {"mean", "#3182bd"}, {"p99", "#08519c"}};
  std::vector<size_t> classes;
  double largest = 0;
  for (size_t o = 0; o < kOutcomes; ++o) {
    const LatencyHistogram& h = totals.latency[o][0];
    if (h.count() == 0) continue;
    classes.push_back(o);
    largest = std::max({largest, ms(h.mean()), ms(static_cast<double>(h.valueAtPercentile(99)))});
  }
  Plot plot(largest);
  plot.top = kMargin + 10;
  plot.height -= 10;
  std::string svg = svgOpen(kWidth, kHeight, "latency by outcome class") + plot.axes("ms");
  svg += legendRow(figures, kMargin, 40);
  double groupWidth = plot.width / static_cast<double>(std::max<size_t>(classes.size(), 1));
  double barWidth = std::min(40.0, groupWidth / 4);
  for (size_t g = 0; g < classes.size(); ++g) {
    const LatencyHistogram& h = totals.latency[classes[g]][0];
    double values[] = {ms(static_cast<double>(h.valueAtPercentile(50))), ms(h.mean()),
                       ms(static_cast<double>(h.valueAtPercentile(99)))};
    double center = plot.left + groupWidth * (static_cast<double>(g) + 0.5);
    for (size_t i = 0; i < 3; ++i) {
      double x = center + (static_cast<double>(i) - 1.5) * barWidth;
      svg += fmt::format(
          R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"><title>{} {:.3f} ms</title></rect>)",
          x, plot.y(values[i]), barWidth - 2, plot.bottom() - plot.y(values[i]), figures[i].color,
          figures[i].name, values[i]);
    }
    svg += fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle">{} ({})</text>)", center,
                       plot.bottom() + 14, outcomeName(static_cast<Outcome>(classes[g])), h.count());
  }
  return svg + "</svg>\n";
}

std::string latencyByClassTable(const RunTotals& totals) {
  std::string html =
      "<table><tr><th>class</th><th>responses</th><th>mean ms</th><th>p50 ms</th><th>p99 ms</th><th>max "
      "ms</th></tr>\n";
  auto row = [&](const std::string& name, const LatencyHistogram& h) {
    html += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{:.3f}</td><td>{:.3f}</td><td>{:.3f}</td><td>{:.3f}</td></tr>\n", name,
        h.count(), ms(h.mean()), ms(static_cast<double>(h.valueAtPercentile(50))),
        ms(static_cast<double>(h.valueAtPercentile(99))), ms(static_cast<double>(h.max())));
  };
  for (size_t o = 0; o < kOutcomes; ++o) {
    if (totals.latency[o][0].count() != 0)
      row(std::string(outcomeName(static_cast<Outcome>(o))), totals.latency[o][0]);
  }
  row("all", totals.allCorrected);
  return html + "</table>\n";
}

}  // namespace

std::string htmlReport(const Options& options, const RunTotals& totals, const RunFigures& figures,
                       const std::vector<IntervalSample>& seconds) {
  Series rps{"requests/s", "#1f77b4", {}};
  Series p99{"p99 (ms)", "#d62728", {}};
  for (const IntervalSample& s : seconds) {
    if (s.seconds <= 0) continue;
    rps.points.emplace_back(s.elapsedS, static_cast<double>(s.requests) / s.seconds);
    p99.points.emplace_back(s.elapsedS, ms(static_cast<double>(s.p99Us)));
  }
  std::vector<double> ticks = timeTicks(seconds);

  // HdrHistogram's percentile plot: x = log10(1 / (1 - p)), so 90 %, 99 %, 99.9 % are evenly spaced.
  Series corrected{"corrected (ms)", "#d62728", {}};
  Series uncorrected{"uncorrected (ms)", "#2ca02c", {}};
  for (double x = 0; x <= 5.0001; x += 0.05) {
    double p = 100.0 * (1.0 - std::pow(10.0, -x));
    corrected.points.emplace_back(x, ms(static_cast<double>(totals.allCorrected.valueAtPercentile(p))));
    uncorrected.points.emplace_back(x, ms(static_cast<double>(totals.allUncorrected.valueAtPercentile(p))));
  }
  auto percentileLabel = [](double x) {
    static const char* names[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
    return std::string(names[static_cast<int>(std::lround(x))]);
  };
  std::vector<Series> distribution{corrected};
  if (options.rate > 0) distribution.push_back(uncorrected);

  auto share = [&](Outcome o) {
    uint64_t n = totals.outcomeCount(o);
    double percent =
        totals.completed == 0 ? 0 : 100.0 * static_cast<double>(n) / static_cast<double>(totals.completed);
    return fmt::format("{} ({:.1f}%)", n, percent);
  };

  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>flowguard-loadgen report</title>"
      "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}"
      "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
      "</style></head><body>\n";
  html += fmt::format("<h1>flowguard-loadgen: {} {}</h1>\n", escape(options.method), escape(options.url));
  html += fmt::format(
      "<p>{} requests in {:.2f} s: {:.1f} req/s. Latency mean {:.3f} ms, p50 {:.3f} ms, p99 {:.3f} ms, max "
      "{:.3f} ms.</p>\n",
      totals.completed, figures.elapsedS, figures.requestsPerSec, ms(totals.allCorrected.mean()),
      ms(static_cast<double>(totals.allCorrected.valueAtPercentile(50))),
      ms(static_cast<double>(totals.allCorrected.valueAtPercentile(99))),
      ms(static_cast<double>(totals.allCorrected.max())));
  html +=
      fmt::format("<p>Admitted (2xx): {}. Rate-limited (429): {}. 5xx: {}. No response: {}.</p>\n",
                  share(Outcome::S2xx), share(Outcome::S429), share(Outcome::S5xx), share(Outcome::Error));

  html += "<h2>Status mix over time</h2>\n" + statusMixChart(seconds);
  html += "<h2>Per key</h2>\n";
  if (options.keys.empty()) {
    html += "<p>No API key was sent.</p>\n";
  } else {
    html += perKeyChart(options, totals);
    if (options.keys.size() > kMaxKeysShown)
      html += fmt::format("<p>The {} busiest of {} keys; --json has every key.</p>\n", kMaxKeysShown,
                          options.keys.size());
  }
  html += "<h2>Latency by outcome class</h2>\n" + latencyByClassChart(totals) + latencyByClassTable(totals);
  html += "<h2>Over time</h2>\n";
  html += lineChart("requests per second", "", {rps}, secondsLabel, ticks);
  html += lineChart("p99 latency per second", "ms", {p99}, secondsLabel, ticks);
  html += "<h2>Latency by percentile</h2>\n";
  html += lineChart("latency by percentile", "ms", distribution, percentileLabel, {0, 1, 2, 3, 4, 5});
  html += "<h2>Summary</h2>\n<pre>" + escape(formatSummary(options, totals, figures)) + "</pre>\n";
  return html + "</body></html>\n";
}

}  // namespace flowguard::loadgen
