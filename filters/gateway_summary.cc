#include "filters/gateway_summary.h"

#include <chrono>

namespace flowguard::filters {

namespace {

double ms(uint64_t micros) {
  return static_cast<double>(micros) / 1000.0;
}

int64_t steadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string_view hostHealth(const upstream::HostState& host) {
  if (host.ejected(steadyMs())) return "ejected";
  return host.activeHealthy.load(std::memory_order_relaxed) ? "healthy" : "unhealthy";
}

SummarySources summarySources(const std::vector<std::vector<FilterSharedState>>& listeners,
                              const upstream::ClusterStates* clusters) {
  SummarySources sources;
  sources.clusters = clusters;
  for (const auto& entries : listeners) {
    for (const FilterSharedState& entry : entries) {
      if (auto registry = metricsRegistryOf(entry.state)) sources.metrics.push_back(std::move(registry));
    }
  }
  return sources;
}

MetricsSnapshot sumTotals(const std::vector<std::shared_ptr<MetricsRegistry>>& registries) {
  MetricsSnapshot total;
  for (const auto& registry : registries) {
    if (!registry) continue;
    const MetricsSnapshot s = registry->totals();
    total.total.merge(s.total);
    for (size_t i = 0; i < s.latency.size(); ++i) total.latency[i] += s.latency[i];
    for (size_t i = 0; i < s.upstreamLatency.size(); ++i) total.upstreamLatency[i] += s.upstreamLatency[i];
    total.latencySumUs += s.latencySumUs;
    total.upstreamLatencySumUs += s.upstreamLatencySumUs;
  }
  return total;
}

nlohmann::json latencyPercentilesMs(const std::array<uint64_t, LatencyHistogram::kBuckets>& h) {
  return nlohmann::json{{"p50", ms(LatencyHistogram::percentileOf(h, 0.50))},
                        {"p90", ms(LatencyHistogram::percentileOf(h, 0.90))},
                        {"p99", ms(LatencyHistogram::percentileOf(h, 0.99))},
                        {"p999", ms(LatencyHistogram::percentileOf(h, 0.999))}};
}

nlohmann::json gatewaySummary(const SummarySources& sources) {
  const MetricsSnapshot s = sumTotals(sources.metrics);
  const CountersView& t = s.total;
  auto ratio = [&](uint64_t n) {
    return t.requests ? static_cast<double>(n) / static_cast<double>(t.requests) : 0.0;
  };
  int healthy = 0;
  int total = 0;
  if (sources.clusters != nullptr) {
    for (const auto& [name, cluster] : *sources.clusters) {
      for (const auto& host : cluster->hosts()) {
        ++total;
        healthy += hostHealth(*host) == "healthy" ? 1 : 0;
      }
    }
  }
  nlohmann::json latency = latencyPercentilesMs(s.latency);
  latency["mean"] = t.requests ? ms(s.latencySumUs) / static_cast<double>(t.requests) : 0.0;
  return nlohmann::json{{"status", healthy == total ? "healthy"
                                   : healthy == 0   ? "no healthy hosts"
                                                    : "degraded"},
                        {"requests", t.requests},
                        {"success_ratio", ratio(t.status2xx)},
                        {"rate_limited_ratio", ratio(t.status429)},
                        {"error_ratio", ratio(t.status5xx)},
                        {"latency_ms", std::move(latency)},
                        {"healthy_hosts", healthy},
                        {"total_hosts", total}};
}

}  // namespace flowguard::filters
