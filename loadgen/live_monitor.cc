#include "loadgen/live_monitor.h"

#include <fmt/format.h>

namespace flowguard::loadgen {

LiveMonitor::LiveMonitor(std::vector<const ThreadStats*> threads, uint64_t measureStartNs)
    : threads_(std::move(threads)), lastNs_(measureStartNs), measureStartNs_(measureStartNs) {}

IntervalSample LiveMonitor::sample(uint64_t nowNs) {
  IntervalSample s;
  s.elapsedS = nowNs > measureStartNs_ ? static_cast<double>(nowNs - measureStartNs_) / 1e9 : 0;
  s.seconds = nowNs > lastNs_ ? static_cast<double>(nowNs - lastNs_) / 1e9 : 0;
  lastNs_ = nowNs;

  LatencyHistogram now;
  std::array<uint64_t, kMaxStatus> status{};
  for (const ThreadStats* t : threads_) {
    now.merge(t->liveAll);
    for (int i = 0; i < kMaxStatus; ++i) status[i] += t->statusCounts[i].load(std::memory_order_relaxed);
  }
  for (int i = 0; i < kMaxStatus; ++i) {
    uint64_t delta = status[i] - std::min(status[i], previousStatus_[i]);
    s.outcomes[static_cast<size_t>(classify(i))] += delta;
    s.requests += delta;
    s.totalRequests += status[i];
  }
  s.totalErrors = status[0];
  s.total429 = status[429];
  s.totalP99Us = now.valueAtPercentile(99);
  LatencyHistogram interval = now;
  interval.subtract(previous_);
  s.p99Us = interval.valueAtPercentile(99);
  previous_ = now;
  previousStatus_ = status;
  return s;
}

std::string LiveMonitor::logLine(const IntervalSample& s) {
  double rps = s.seconds > 0 ? static_cast<double>(s.requests) / s.seconds : 0;
  auto n = [&](Outcome o) { return s.outcomes[static_cast<size_t>(o)]; };
  return fmt::format("t={:.0f} rps={:.1f} 2xx={} 3xx={} 429={} 4xx={} 5xx={} err={} p99_ms={:.3f}",
                     s.elapsedS, rps, n(Outcome::S2xx), n(Outcome::S3xx), n(Outcome::S429), n(Outcome::S4xx),
                     n(Outcome::S5xx), n(Outcome::Error), static_cast<double>(s.p99Us) / 1000.0);
}

std::string LiveMonitor::progressLine(const IntervalSample& s) {
  double rps = s.seconds > 0 ? static_cast<double>(s.requests) / s.seconds : 0;
  double ratio429 = s.totalRequests > 0
                        ? 100.0 * static_cast<double>(s.total429) / static_cast<double>(s.totalRequests)
                        : 0;
  return fmt::format("[{:4.0f}s] {:.0f} req/s  total {}  errors {}  429 {:.1f}%  p99 {:.2f}ms", s.elapsedS,
                     rps, s.totalRequests, s.totalErrors, ratio429,
                     static_cast<double>(s.totalP99Us) / 1000.0);
}

}  // namespace flowguard::loadgen
