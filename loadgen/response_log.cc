#include "loadgen/response_log.h"

#include <fmt/format.h>

#include <ctime>
#include <iterator>
#include <stdexcept>

namespace flowguard::loadgen {

std::string isoTimeUtc(uint64_t unixNs) {
  std::time_t seconds = static_cast<std::time_t>(unixNs / 1'000'000'000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, unixNs / 1'000'000 % 1000);
}

void appendResponseLine(std::string& out, uint64_t unixNs, std::string_view keyPrefix, std::string_view url,
                        int status, uint64_t latencyUs) {
  auto statusText = status == 0 ? std::string("error") : std::to_string(status);
  fmt::format_to(std::back_inserter(out), "{} key={} url={} status={} latency_ms={}.{:03}\n",
                 isoTimeUtc(unixNs), keyPrefix, url, statusText, latencyUs / 1000, latencyUs % 1000);
}

std::string responseLogSummary(const RunTotals& totals) {
  uint64_t successful = totals.outcomeCount(Outcome::S2xx);
  uint64_t limited = totals.outcomeCount(Outcome::S429);
  const LatencyHistogram& latency = totals.allCorrected;
  auto ms = [](double us) { return us / 1000.0; };
  std::string out = "# summary\n";
  out += fmt::format("# total attempts: {}\n", totals.completed);
  out += fmt::format("# successful (2xx): {}\n", successful);
  out += fmt::format("# rate-limited (429): {}\n", limited);
  out += fmt::format("# other errors: {}\n", totals.completed - successful - limited);
  out += fmt::format("# latency: mean {:.3f} ms, p50 {:.3f} ms, p99 {:.3f} ms\n", ms(latency.mean()),
                     ms(static_cast<double>(latency.valueAtPercentile(50))),
                     ms(static_cast<double>(latency.valueAtPercentile(99))));
  for (int s = 1; s < kMaxStatus; ++s) {
    if (totals.statusCounts[s] != 0) out += fmt::format("# status {}: {}\n", s, totals.statusCounts[s]);
  }
  if (totals.statusCounts[0] != 0) out += fmt::format("# status error: {}\n", totals.statusCounts[0]);
  return out;
}

ResponseLog::ResponseLog(const std::string& path, std::string url, std::vector<std::string> keyPrefixes)
    : url_(std::move(url)), keyPrefixes_(std::move(keyPrefixes)), file_(std::fopen(path.c_str(), "w")) {
  if (file_ == nullptr) throw std::runtime_error("cannot write " + path);
}

ResponseLog::~ResponseLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void ResponseLog::flush(std::string& buffer) {
  if (buffer.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (std::fwrite(buffer.data(), 1, buffer.size(), file_) != buffer.size()) failed_ = true;
  }
  buffer.clear();
}

bool ResponseLog::finish(const RunTotals& totals) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string summary = responseLogSummary(totals);
  if (std::fwrite(summary.data(), 1, summary.size(), file_) != summary.size()) failed_ = true;
  if (std::fclose(file_) != 0) failed_ = true;
  file_ = nullptr;
  return !failed_;
}

}  // namespace flowguard::loadgen
