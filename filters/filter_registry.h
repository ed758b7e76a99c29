// Maps a filter entry of flowguard.yaml (already typed by config/) to its factory: the
// built-in filters by type, a plugged filter (filter_plugin.h) through its registered record.
// A new filter is a folder of its own (filters/README.md) and needs nothing here.
#pragma once

#include <memory>

#include "config/config.h"
#include "core/filter.h"
#include "core/stat_set.h"
#include "filters/key_registry.h"
#include "filters/metrics.h"
#include "filters/rate_limit.h"
#include "filters/worker_resources.h"

namespace flowguard::filters {

// What one filter entry shares across all workers of the process (API keys, in-process
// rate-limit counters). Made once, on the main thread, before the workers start.
struct FilterSharedState {
  std::shared_ptr<KeyRegistry> keys;           // auth
  std::shared_ptr<RateLimitShared> rateLimit;  // rate_limit
  std::shared_ptr<MetricsRegistry> metrics;    // metrics
  std::shared_ptr<core::StatSet> pluginStats;  // a plugged filter's declared counters
};

FilterSharedState createSharedState(const config::FilterConfig& filter);

// Called on each worker's thread, once per listener filter entry.
std::unique_ptr<core::FilterFactory> createFilterFactory(const config::FilterConfig& filter,
                                                         const config::ListenerConfig& listener,
                                                         const FilterSharedState& shared,
                                                         WorkerResources& resources);

}  // namespace flowguard::filters
