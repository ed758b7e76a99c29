// The one place that makes the metrics filter known (filters/README.md). Its counters are
// not declared stats but the series of its MetricsRegistry (per key, route, cluster and host,
// with latency histograms), the filter's state: the admin listener's /stats, /server_stats,
// /metrics/{api-key} and dashboard read them from there.
#include <fmt/format.h>

#include "filters/metrics/metrics.h"

namespace flowguard::filters::plugged {

namespace {

std::unique_ptr<core::FilterFactory> createFactory(const MetricsSettings& settings, FilterContext& context) {
  return std::make_unique<MetricsFilterFactory>(settings, context);
}

std::shared_ptr<MetricsRegistry> createState(const MetricsSettings& settings) {
  return std::make_shared<MetricsRegistry>(settings.maxKeySeries);
}

// A new cap starts the series again: the kept ones may be more than it allows.
bool keepsState(const MetricsSettings& before, const MetricsSettings& after) {
  return before.maxKeySeries == after.maxKeySeries;
}

std::string summary(const MetricsRegistry& registry) {
  const MetricsSnapshot m = registry.totals();
  return fmt::format(" requests={} 2xx={} 3xx={} 4xx={} 429={} 5xx={} local_replies={} p50_us={} p99_us={}",
                     m.total.requests, m.total.status2xx, m.total.status3xx, m.total.status4xx,
                     m.total.status429, m.total.status5xx, m.total.localReplies, m.latencyPercentileUs(0.5),
                     m.latencyPercentileUs(0.99));
}

}  // namespace

void register_metrics() {
  registerFilter(FilterRegistration<MetricsSettings, MetricsRegistry>{
      .name = "metrics",
      .parse = &parseMetrics,
      .createFactory = &createFactory,
      .dump = &dumpMetrics,
      .createState = &createState,
      .keepsState = &keepsState,
      .summary = &summary,
  });
}

}  // namespace flowguard::filters::plugged
