// Reads a flowguard-loadgen response log (ratelimit.log, --response-log) back for the tests:
// every response line must have the documented format exactly (loadgen/response_log.h), the
// "# name: value" summary lines are collected by name, and the per-second lines of stdout
// ("t=1 rps=... 2xx=N ...") are summed by class.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace flowguard::test {

struct ResponseLogText {
  uint64_t lines = 0;                          // response lines
  std::vector<std::string> malformed;          // lines that are neither a response nor a summary line
  std::map<std::string, uint64_t> status;      // "200", "429", "error" -> count
  std::set<std::string> keys;                  // the key= values
  std::set<std::string> urls;                  // the url= values
  std::vector<uint64_t> latencyUs;             // latency_ms, as exact µs
  std::map<std::string, std::string> summary;  // "total attempts" -> "60", "status 429" -> "40"
  bool summaryLast = true;                     // no response line after the summary began

  uint64_t summaryCount(const std::string& name) const {
    auto it = summary.find(name);
    return it == summary.end() ? UINT64_MAX : std::stoull(it->second);
  }
  double meanMs() const {
    uint64_t sum = 0;
    for (uint64_t us : latencyUs) sum += us;
    return latencyUs.empty() ? 0 : static_cast<double>(sum) / static_cast<double>(latencyUs.size()) / 1000.0;
  }
  // HdrHistogram's rule on the exact values: the smallest value with round(p % of n) values
  // at or below it.
  uint64_t percentileUs(double p) const {
    if (latencyUs.empty()) return 0;
    std::vector<uint64_t> sorted = latencyUs;
    std::sort(sorted.begin(), sorted.end());
    auto rank = static_cast<uint64_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.5);
    return sorted[std::max<uint64_t>(rank, 1) - 1];
  }
};

inline ResponseLogText parseResponseLog(const std::string& text) {
  static const std::regex line(
      R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z key=(\S+) url=(\S+) status=(\d{3}|error) latency_ms=(\d+)\.(\d{3})$)");
  ResponseLogText out;
  bool inSummary = false;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (l.rfind("# ", 0) == 0) {
      inSummary = true;
      size_t colon = l.find(": ");
      if (colon != std::string::npos) out.summary[l.substr(2, colon - 2)] = l.substr(colon + 2);
    } else if (std::regex_match(l, m, line)) {
      if (inSummary) out.summaryLast = false;
      ++out.lines;
      out.keys.insert(m[1]);
      out.urls.insert(m[2]);
      ++out.status[m[3]];
      out.latencyUs.push_back(std::stoull(m[4]) * 1000 + std::stoull(m[5]));
    } else {
      out.malformed.push_back(l);
    }
  }
  return out;
}

// The per-second lines in `text` (other lines are ignored): how many, and the sum of each
// class ("2xx", "429", "err", ...) over them.
struct SecondLines {
  uint64_t lines = 0;
  std::map<std::string, uint64_t> sums;
};

inline SecondLines parseSecondLines(const std::string& text) {
  static const std::regex line(R"(^t=\d+ rps=[0-9.]+ (.*) p99_ms=[0-9.]+$)");
  static const std::regex pair(R"((\w+)=(\d+))");
  SecondLines out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (!std::regex_match(l, m, line)) continue;
    ++out.lines;
    std::string counts = m[1];
    for (std::sregex_iterator it(counts.begin(), counts.end(), pair), end; it != end; ++it)
      out.sums[(*it)[1]] += std::stoull((*it)[2]);
  }
  return out;
}

}  // namespace flowguard::test
