#include "upstream/outlier_detector.h"

#include <algorithm>

namespace flowguard::upstream {

bool OutlierDetector::record(HostState& host, AttemptResult result, int64_t nowMs) {
  if (!config_.enabled) return false;
  // Answers to requests sent before the ejection say nothing new: counting them would
  // re-eject the host on its first failure after it comes back.
  if (host.ejected(nowMs)) return false;
  switch (result) {
    case AttemptResult::Success: {
      host.consecutive5xx.store(0, std::memory_order_relaxed);
      host.consecutiveConnectFailures.store(0, std::memory_order_relaxed);
      // A host that has behaved for a whole base ejection time since it came back earns
      // one ejection off its multiplier. Moving ejectedUntilMs to now (still "not
      // ejected") makes the next reduction wait another base period.
      uint32_t ejections = host.ejections.load(std::memory_order_relaxed);
      int64_t until = host.ejectedUntilMs.load(std::memory_order_relaxed);
      if (ejections > 0 && nowMs - until >= config_.baseEjectionTime.count() &&
          host.ejectedUntilMs.compare_exchange_strong(until, nowMs)) {
        host.ejections.fetch_sub(1, std::memory_order_relaxed);
      }
      return false;
    }
    case AttemptResult::Http5xx:
    case AttemptResult::GatewayFailure: {
      host.consecutiveConnectFailures.store(0, std::memory_order_relaxed);
      uint32_t count = host.consecutive5xx.fetch_add(1, std::memory_order_relaxed) + 1;
      if (config_.consecutive5xx > 0 && count >= config_.consecutive5xx) return eject(host, nowMs);
      return false;
    }
    case AttemptResult::ConnectFailure: {
      uint32_t count = host.consecutiveConnectFailures.fetch_add(1, std::memory_order_relaxed) + 1;
      if (config_.consecutiveConnectFailures > 0 && count >= config_.consecutiveConnectFailures) {
        return eject(host, nowMs);
      }
      return false;
    }
  }
  return false;
}

size_t OutlierDetector::ejectedCount(int64_t nowMs) const {
  return static_cast<size_t>(
      std::count_if(hosts_.begin(), hosts_.end(), [nowMs](const auto& h) { return h->ejected(nowMs); }));
}

bool OutlierDetector::eject(HostState& host, int64_t nowMs) {
  int64_t until = host.ejectedUntilMs.load(std::memory_order_relaxed);
  if (nowMs < until) return false;  // already out
  size_t allowed = hosts_.size() * config_.maxEjectionPercent / 100;
  if (config_.maxEjectionPercent > 0) allowed = std::max<size_t>(allowed, 1);
  if (ejectedCount(nowMs) >= allowed) return false;
  uint32_t times = host.ejections.load(std::memory_order_relaxed) + 1;
  int64_t duration = std::min<int64_t>(config_.baseEjectionTime.count() * times, config_.maxEjectionTime.count());
  // Another worker may be ejecting the same host right now: only one of them wins.
  if (!host.ejectedUntilMs.compare_exchange_strong(until, nowMs + duration)) return false;
  host.ejections.fetch_add(1, std::memory_order_relaxed);
  host.consecutive5xx.store(0, std::memory_order_relaxed);
  host.consecutiveConnectFailures.store(0, std::memory_order_relaxed);
  return true;
}

}  // namespace flowguard::upstream
