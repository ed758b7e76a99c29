// What every thread knows about one upstream host. Shared (std::shared_ptr) by the workers,
// which route by it and count into it, and the main thread, which health-checks the host
// and, later, shows it on the admin listener. Only atomics: nobody takes a lock, and a
// reader may see one field a moment newer than another, which is fine for all of these.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/latency_histogram.h"
#include "core/stat_set.h"
#include "core/status_class.h"

namespace flowguard::upstream {

// The host's counters, declared once: /clusters shows each under its name, Prometheus as
// flowguard_host_<name>_total{cluster,host}, and the exit line lists them. (Responses by
// status class are the classifier's, core/status_class.h; the gauges are kHostGauges below.)
enum class HostStat { Requests, Failures, ConnectFailures };
inline constexpr core::StatDecl kHostStats[] = {
    {"requests", "Attempts sent to the host."},
    {"failures", "Attempts to the host that failed (5xx, reset, timeout)."},
    {"connect_failures", "Attempts whose connection to the host could not be made."},
};

struct HostState {
  explicit HostState(std::string hostAddress, bool initiallyHealthy)
      : address(std::move(hostAddress)), activeHealthy(initiallyHealthy) {}

  const std::string address;  // "ip:port"

  // Active health checks (written by the main thread's HealthChecker).
  std::atomic<bool> activeHealthy;
  std::atomic<int64_t> lastCheckUnixMs{0};  // wall-clock time of the last probe, 0 = never
  std::atomic<int> lastCheckStatus{0};      // HTTP status of the last probe, 0 = no answer
  std::atomic<uint32_t> checkFailuresInARow{0};

  // Passive outlier detection (written by workers through OutlierDetector).
  std::atomic<uint32_t> consecutive5xx{0};
  std::atomic<uint32_t> consecutiveConnectFailures{0};
  std::atomic<int64_t> ejectedUntilMs{0};  // monotonic ms (uv_now); 0 = not ejected
  std::atomic<uint32_t> ejections{0};      // times ejected so far (multiplies the ejection time)

  // Traffic (workers).
  core::StatSet stats{kHostStats};
  std::atomic<int64_t> activeRequests{0};
  std::atomic<int64_t> activeConnections{0};
  std::atomic<uint64_t> latencyMsTotal{0};  // sum over answered attempts, for the mean
  std::atomic<uint64_t> latencySamples{0};
  // Answers by status class (an answered attempt counts once), and the time from sending
  // an attempt to its response head, in microseconds.
  std::atomic<uint64_t> status2xx{0};
  std::atomic<uint64_t> status3xx{0};
  std::atomic<uint64_t> status4xx{0};  // including the 429s
  std::atomic<uint64_t> status429{0};
  std::atomic<uint64_t> status5xx{0};
  core::LatencyHistogram latency;

  void recordStatus(int status) {
    auto bump = [](std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); };
    core::countStatus(status, bump, status2xx, status3xx, status4xx, status429, status5xx);
  }

  bool ejected(int64_t nowMs) const { return nowMs < ejectedUntilMs.load(std::memory_order_relaxed); }
  // May new requests go here? (Health checks pass and not ejected.)
  bool available(int64_t nowMs) const {
    return activeHealthy.load(std::memory_order_relaxed) && !ejected(nowMs);
  }
};

// The host's levels, declared once like its counters: /clusters shows each under its name,
// Prometheus as a gauge with the labels {cluster,host}.
inline constexpr core::FieldStatDecl<HostState> kHostGauges[] = {
    {"active_connections", "flowguard_host_active_connections", "Open upstream connections to the host.",
     true, [](const HostState& h) -> int64_t { return h.activeConnections.load(std::memory_order_relaxed); }},
    {"active_requests", "flowguard_host_active_requests", "Attempts in flight on the host.", true,
     [](const HostState& h) -> int64_t { return h.activeRequests.load(std::memory_order_relaxed); }},
};

// One attempt of a request on a host, as the router makes it. While open it counts as one
// of the host's active requests, given back exactly once (when ended, or dropped with the
// request), and its outcome goes to the host's counters and outlier detection at most once.
class HostAttempt {
 public:
  HostAttempt() = default;
  ~HostAttempt() { end(); }
  HostAttempt(const HostAttempt&) = delete;
  HostAttempt& operator=(const HostAttempt&) = delete;

  // Counts a new attempt on `host`; the previous one was ended.
  void start(HostState& host) {
    assert(open_ == nullptr && "an attempt starts after the previous one ended");
    host.stats.add(HostStat::Requests);
    host.activeRequests.fetch_add(1, std::memory_order_relaxed);
    open_ = &host;
    recorded_ = false;
  }
  // True once per attempt: the caller records its outcome now.
  bool takeRecord() {
    if (recorded_) return false;
    recorded_ = true;
    return true;
  }
  // The host no longer counts the attempt as active (its outcome may still be recorded).
  void end() {
    if (open_ == nullptr) return;
    open_->activeRequests.fetch_sub(1, std::memory_order_relaxed);
    open_ = nullptr;
  }

 private:
  HostState* open_ = nullptr;
  bool recorded_ = true;  // before the first attempt there is nothing to record
};

}  // namespace flowguard::upstream
