// Once a second, on the main thread: what the workers did during the last second (requests,
// status mix, p99), for the --log file and the live progress line on a terminal. Reads only
// the workers' single-writer atomic counters, so it never stops them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "loadgen/latency_histogram.h"
#include "loadgen/run_stats.h"

namespace flowguard::loadgen {

struct IntervalSample {
  double elapsedS = 0;  // since the measurement started
  double seconds = 0;   // length of this interval
  uint64_t requests = 0;
  std::array<uint64_t, kOutcomes> outcomes{};
  uint64_t p99Us = 0;
  // Since the start, for the progress line.
  uint64_t totalRequests = 0;
  uint64_t totalErrors = 0;
  uint64_t total429 = 0;
  uint64_t totalP99Us = 0;
};

class LiveMonitor {
 public:
  LiveMonitor(std::vector<const ThreadStats*> threads, uint64_t measureStartNs);
  IntervalSample sample(uint64_t nowNs);

  // "t=3 rps=1234.0 2xx=... 429=... 4xx=... 5xx=... err=... p99_ms=1.234"
  static std::string logLine(const IntervalSample& s);
  // "[ 3s] 1234 req/s  errors 0  429 12.0%  p99 1.23ms" (no newline)
  static std::string progressLine(const IntervalSample& s);

 private:
  std::vector<const ThreadStats*> threads_;
  uint64_t lastNs_;
  uint64_t measureStartNs_;
  LatencyHistogram previous_;
  std::array<uint64_t, kMaxStatus> previousStatus_{};
};

}  // namespace flowguard::loadgen
