// What the admin listener reports, gathered from the state the workers share: cluster and
// host states (health, ejections, connections, answers, latency), each listener's metrics
// and rate-limit counters, and the key store's counters. Everything is read on the main
// thread from atomics; nothing here takes a lock the request path takes.
//
// sample() runs once a second (a timer of the admin server) and keeps the recent past: the
// status mix per second for the last five minutes and, per host, the request rate and p99
// latency per second for the last minute. That is what rates ("rps") and the dashboard's
// charts are made of.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "config/live_config.h"
#include "core/connection_limits.h"
#include "core/latency_histogram.h"
#include "core/stat_set.h"
#include "filters/filter_registry.h"
#include "filters/gateway_summary.h"
#include "filters/metrics/metrics.h"
#include "store/store_service.h"
#include "upstream/cluster_state.h"

namespace flowguard::admin {

// One listener's shared counters (null when it has no such filter).
struct ListenerSources {
  std::string name;
  std::shared_ptr<filters::MetricsRegistry> metrics;
  std::shared_ptr<core::ConnectionLimit> connections;  // admission over all workers; may be null
  // The declared counters of the listener's plugged filters (filters/filter_plugin.h), in chain order.
  struct FilterStats {
    std::string filter;  // its name in flowguard.yaml
    std::shared_ptr<const core::StatSet> stats;
  };
  std::vector<FilterStats> filterStats;
};

// A listener's sources, from its filter entries' shared states (`connections` left null).
ListenerSources listenerSources(const config::ListenerConfig& listener,
                                const std::vector<filters::FilterSharedState>& entries);

struct StatsSources {
  const config::LiveConfig* live = nullptr;  // the config in force and its reload history
  const upstream::ClusterStates* clusters = nullptr;
  std::vector<ListenerSources> listeners;
  store::StoreService* store = nullptr;  // null without `storage:`
  unsigned workers = 0;
  std::shared_ptr<core::OverloadState> overload;  // process-wide limits and the overload flag; may be null
};

class AdminStats {
 public:
  explicit AdminStats(StatsSources sources);
  // After a reload: the new generation's clusters and listeners. History of hosts that are
  // gone is dropped; hosts kept by the reload keep theirs.
  void setSources(StatsSources sources);

  // Once a second, on the main thread.
  void sample();

  nlohmann::json stats() const;     // GET /stats
  nlohmann::json clusters() const;  // GET /clusters
  nlohmann::json history() const;   // GET /stats/history
  nlohmann::json summary() const;   // GET /metrics: the original's short JSON summary
  std::string prometheus() const;   // GET /stats/prometheus (text format 0.0.4)

  void setDraining(bool draining) { draining_ = draining; }
  bool draining() const { return draining_; }

 private:
  struct HostHistory {
    uint64_t lastRequests = 0;
    std::array<uint64_t, core::LatencyHistogram::kBuckets> lastLatency{};
    double rps = 0;
    struct Point {
      int64_t t;
      double rps;
      double p99Ms;
    };
    std::deque<Point> points;  // oldest first, at most 60
  };
  struct StatusPoint {
    int64_t t;
    uint64_t requests, s2xx, s4xx, s429, s5xx;
  };

  // Totals over every listener's metrics.
  filters::MetricsSnapshot totalSnapshot() const;
  filters::SummarySources summarySources() const;

  StatsSources sources_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool draining_ = false;
  std::map<const upstream::HostState*, HostHistory> hosts_;
  filters::CountersView lastTotals_;
  std::deque<StatusPoint> statusHistory_;  // oldest first, at most 300
};

}  // namespace flowguard::admin
