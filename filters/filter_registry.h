// Maps a filter entry of flowguard.yaml (already typed by config/) to its factory and its
// shared state: the router by type, every other filter (a folder of its own, filter_plugin.h)
// through its registered record. A new filter needs nothing here (filters/README.md).
#pragma once

#include <memory>

#include "config/config.h"
#include "core/filter.h"
#include "core/stat_set.h"
#include "filters/filter_plugin.h"
#include "filters/worker_resources.h"

namespace flowguard::filters {

// What one filter entry shares across all workers of the process: its declared counters and
// its state. Made once, on the main thread, before the workers start.
struct FilterSharedState {
  std::shared_ptr<core::StatSet> stats;  // a plugged filter's declared counters
  std::shared_ptr<FilterState> state;    // a plugged filter's state, when it has one
};

FilterSharedState createSharedState(const config::FilterConfig& filter);

// The state of `filter` in a reloaded config, whose entry in the previous generation was
// `before` with state `old` (the same filter, in the same listener): what carries over
// carries over (counters go on counting, keys stay published), the rest is made anew.
FilterSharedState carryOverSharedState(const config::FilterConfig& before, const FilterSharedState& old,
                                       const config::FilterConfig& filter);

// The request fields the filter keeps from upstreams (FilterRegistration::secretFields).
std::vector<std::string> secretFields(const config::FilterConfig& filter);

// The line the gateway prints at exit for one entry (`flowguard: <filter> <listener>: ...`),
// or "" for a filter with nothing to report.
std::string exitSummary(std::string_view listener, const config::FilterConfig& filter,
                        const FilterSharedState& shared);

// Called on each worker's thread, once per listener filter entry.
std::unique_ptr<core::FilterFactory> createFilterFactory(const config::FilterConfig& filter,
                                                         const config::ListenerConfig& listener,
                                                         const FilterSharedState& shared,
                                                         WorkerResources& resources);

}  // namespace flowguard::filters
