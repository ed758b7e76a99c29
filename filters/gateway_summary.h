// The original FlowGuard's GET /metrics: a short JSON summary of the whole gateway (request
// count, 2xx/429/5xx ratios, latency, how many upstream hosts are healthy), with nothing
// secret in it. The admin listener serves it, and so does a public route with
// `handler: summary`, from the same counters: every listener's `metrics` filter and the
// clusters' shared host states, all atomics, read without a lock the request path takes
// (the metrics registry's own lock guards only its list of shards).
#pragma once

#include <array>
#include <memory>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "filters/filter_registry.h"
#include "filters/metrics/metrics.h"
#include "upstream/cluster_state.h"

namespace flowguard::filters {

struct SummarySources {
  std::vector<std::shared_ptr<MetricsRegistry>> metrics;  // every listener's `metrics` filter
  const upstream::ClusterStates* clusters = nullptr;
};

// The sources of a config generation: the metrics filters among its listeners' entries.
SummarySources summarySources(const std::vector<std::vector<FilterSharedState>>& listeners,
                              const upstream::ClusterStates* clusters);

// "healthy", "unhealthy" (active checks) or "ejected" (outlier detection, for now).
std::string_view hostHealth(const upstream::HostState& host);

// Totals and latency histograms summed over `registries`.
MetricsSnapshot sumTotals(const std::vector<std::shared_ptr<MetricsRegistry>>& registries);

// {"p50", "p90", "p99", "p999"} in milliseconds.
nlohmann::json latencyPercentilesMs(const std::array<uint64_t, LatencyHistogram::kBuckets>& histogram);

nlohmann::json gatewaySummary(const SummarySources& sources);

}  // namespace flowguard::filters
