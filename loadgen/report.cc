#include "loadgen/report.h"

#include <fmt/format.h>

#include <array>

#include "loadgen/key_prefix.h"

namespace flowguard::loadgen {

namespace {

constexpr std::array<double, 7> kPercentiles = {50, 75, 90, 99, 99.9, 99.99, 100};

std::string percentileName(double p) {
  if (p == 100) return "max";
  return fmt::format("p{}", p);
}

std::string formatMicros(uint64_t us) {
  if (us < 1000) return fmt::format("{}us", us);
  if (us < 1'000'000) return fmt::format("{:.2f}ms", static_cast<double>(us) / 1e3);
  return fmt::format("{:.2f}s", static_cast<double>(us) / 1e6);
}

// A mean is rarely a whole number of µs; below 1 ms its tenths are worth showing.
std::string formatMeanMicros(double us) {
  if (us < 1000) return fmt::format("{:.1f}us", us);
  if (us < 1'000'000) return fmt::format("{:.2f}ms", us / 1e3);
  return fmt::format("{:.2f}s", us / 1e6);
}

std::string formatBytes(double bytes) {
  if (bytes < 1024) return fmt::format("{:.0f}B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.2f}KiB", bytes / 1024);
  if (bytes < 1024.0 * 1024 * 1024) return fmt::format("{:.2f}MiB", bytes / (1024 * 1024));
  return fmt::format("{:.2f}GiB", bytes / (1024.0 * 1024 * 1024));
}

double ratio(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

nlohmann::json histogramJson(const LatencyHistogram& h) {
  nlohmann::json j = {{"count", h.count()}, {"min_us", h.min()}, {"mean_us", h.mean()}, {"max_us", h.max()}};
  for (double p : kPercentiles) {
    if (p != 100) j[percentileName(p) + "_us"] = h.valueAtPercentile(p);
  }
  return j;
}

std::string latencyLine(const std::string& label, const LatencyHistogram& h) {
  std::string out = fmt::format("  {:<12} mean={}", label, formatMeanMicros(h.mean()));
  for (double p : kPercentiles)
    out += fmt::format(" {}={}", percentileName(p), formatMicros(h.valueAtPercentile(p)));
  return out + "\n";
}

}  // namespace

RunFigures computeFigures(const Options& options, const RunTotals& totals, uint64_t measureStartNs,
                          uint64_t endNs) {
  RunFigures f;
  uint64_t last = totals.completed > 0 ? totals.lastDoneNs : endNs;
  f.elapsedS = last > measureStartNs ? static_cast<double>(last - measureStartNs) / 1e9 : 0;
  if (f.elapsedS > 0) {
    f.requestsPerSec = static_cast<double>(totals.completed) / f.elapsedS;
    f.bytesPerSec = static_cast<double>(totals.bytesRead) / f.elapsedS;
  }
  if (options.rate > 0 && totals.sent > 0 && totals.lastSendNs >= measureStartNs) {
    // n sends on schedule span (n-1)/R seconds; adding one interval makes a perfect run read R.
    double span = static_cast<double>(totals.lastSendNs - measureStartNs) / 1e9 + 1.0 / options.rate;
    f.sendRate = static_cast<double>(totals.sent) / span;
  }
  return f;
}

std::optional<std::string> rateWarning(const Options& options, const RunTotals& totals, const RunFigures& f) {
  if (options.rate <= 0) return std::nullopt;
  if (totals.unsent == 0 && f.sendRate >= 0.98 * options.rate) return std::nullopt;
  return fmt::format(
      "warning: target rate not reached: {:.1f} req/s sent of {:.1f} requested ({} due but never sent, "
      "worst send lag {}); add connections (-c) or threads (-t), or the target is saturated",
      f.sendRate, options.rate, totals.unsent, formatMicros(totals.maxSendLagNs / 1000));
}

std::string formatSummary(const Options& options, const RunTotals& totals, const RunFigures& f) {
  std::string out;
  out += fmt::format(
      "Target {} {}: {} connections, {} threads, {}\n", options.method, options.url, options.connections,
      options.threads,
      options.rate > 0 ? fmt::format("open loop at {} req/s", options.rate) : std::string("closed loop"));
  out += fmt::format("  {} requests in {:.2f}s, {} read\n", totals.completed, f.elapsedS,
                     formatBytes(static_cast<double>(totals.bytesRead)));
  out +=
      fmt::format("Requests/sec: {:.2f}\nTransfer/sec: {}\n", f.requestsPerSec, formatBytes(f.bytesPerSec));
  out +=
      "Latency (all requests" + std::string(options.rate > 0 ? ", corrected from the due time" : "") + "):\n";
  out += latencyLine("all", totals.allCorrected);
  if (options.rate > 0) out += latencyLine("uncorrected", totals.allUncorrected);
  for (size_t o = 0; o < kOutcomes; ++o) {
    if (totals.latency[o][0].count() == 0) continue;
    out += latencyLine(std::string(outcomeName(static_cast<Outcome>(o))), totals.latency[o][0]);
  }
  out += "Status codes:";
  for (int s = 1; s < kMaxStatus; ++s) {
    if (totals.statusCounts[s] != 0) out += fmt::format(" {}={}", s, totals.statusCounts[s]);
  }
  if (totals.statusCounts[0] != 0) out += fmt::format(" errors={}", totals.statusCounts[0]);
  out += "\n";
  uint64_t n = totals.completed;
  out += fmt::format("Ratios: 2xx {:.2f}%  429 {:.2f}%  5xx {:.2f}%  errors {:.2f}%\n",
                     100 * ratio(totals.outcomeCount(Outcome::S2xx), n),
                     100 * ratio(totals.outcomeCount(Outcome::S429), n),
                     100 * ratio(totals.outcomeCount(Outcome::S5xx), n),
                     100 * ratio(totals.outcomeCount(Outcome::Error), n));
  if (totals.connectErrors + totals.timeouts != 0) {
    out += fmt::format("Socket errors: connect {}, timeouts {}\n", totals.connectErrors, totals.timeouts);
  }
  if (!options.keys.empty()) {
    out += fmt::format("Per key ({} keys, by prefix):\n", options.keys.size());
    size_t shown = 0;
    for (size_t k = 0; k < options.keys.size() && shown < 20; ++k, ++shown) {
      const KeyCounts& c = totals.perKey[k];
      out += fmt::format("  {}: {} requests, 2xx {}, 429 {}, 5xx {}, errors {}\n", keyPrefix(options.keys[k]),
                         c.total(), c.outcomes[0], c.outcomes[2], c.outcomes[4], c.outcomes[5]);
    }
    if (options.keys.size() > shown)
      out += fmt::format("  ... {} more in --json\n", options.keys.size() - shown);
  }
  return out;
}

nlohmann::json summaryJson(const Options& options, const RunTotals& totals, const RunFigures& f) {
  nlohmann::json j;
  j["target"] = options.url;
  j["method"] = options.method;
  j["connections"] = options.connections;
  j["threads"] = options.threads;
  j["mode"] = options.rate > 0 ? "open" : "closed";
  if (options.rate > 0) {
    j["target_rate"] = options.rate;
    j["send_rate"] = f.sendRate;
    j["unsent"] = totals.unsent;
    j["max_send_lag_us"] = totals.maxSendLagNs / 1000;
    j["rate_reached"] = !rateWarning(options, totals, f).has_value();
  }
  j["requests"] = totals.completed;
  j["sent"] = totals.sent;
  j["responses"] = totals.responses();
  j["elapsed_s"] = f.elapsedS;
  j["requests_per_sec"] = f.requestsPerSec;
  j["bytes_read"] = totals.bytesRead;
  j["bytes_per_sec"] = f.bytesPerSec;
  j["latency"] = histogramJson(totals.allCorrected);
  j["latency_uncorrected"] = histogramJson(totals.allUncorrected);
  nlohmann::json classes = nlohmann::json::object();
  for (size_t o = 0; o < kOutcomes; ++o) {
    std::string name(outcomeName(static_cast<Outcome>(o)));
    classes[name] = {{"count", totals.latency[o][0].count()},
                     {"latency", histogramJson(totals.latency[o][0])},
                     {"latency_uncorrected", histogramJson(totals.latency[o][1])}};
  }
  j["outcomes"] = classes;
  nlohmann::json status = nlohmann::json::object();
  for (int s = 1; s < kMaxStatus; ++s) {
    if (totals.statusCounts[s] != 0) status[std::to_string(s)] = totals.statusCounts[s];
  }
  j["status"] = status;
  uint64_t n = totals.completed;
  j["ratios"] = {{"2xx", ratio(totals.outcomeCount(Outcome::S2xx), n)},
                 {"429", ratio(totals.outcomeCount(Outcome::S429), n)},
                 {"5xx", ratio(totals.outcomeCount(Outcome::S5xx), n)},
                 {"error", ratio(totals.outcomeCount(Outcome::Error), n)}};
  j["errors"] = {
      {"total", totals.statusCounts[0]}, {"connect", totals.connectErrors}, {"timeouts", totals.timeouts}};
  j["reconnects"] = totals.reconnects;
  nlohmann::json keys = nlohmann::json::array();
  for (size_t k = 0; k < options.keys.size(); ++k) {
    const KeyCounts& c = totals.perKey[k];
    // The prefix only: the JSON file is shared and archived, the key must not travel with it.
    nlohmann::json entry = {{"key_prefix", keyPrefix(options.keys[k])}, {"requests", c.total()}};
    for (size_t o = 0; o < kOutcomes; ++o)
      entry[std::string(outcomeName(static_cast<Outcome>(o)))] = c.outcomes[o];
    keys.push_back(entry);
  }
  j["keys"] = keys;
  return j;
}

}  // namespace flowguard::loadgen
