// One configuration and the state every worker shares while it is in force: the cluster
// states (health, ejections, circuit breakers) and each filter entry's shared part (yaml
// keys, in-process rate-limit counters, metrics). Built on the main thread at start-up and
// by each reload, then handed to every worker; nothing in it is replaced afterwards.
//
// A reload builds the next generation from the one in force, carrying over what did not
// change, so a reload loses no state an operator would miss: unchanged clusters keep their
// state object (and so every worker keeps their pools), changed ones keep their hosts'
// health; a listener's rate-limit counters and metrics carry on under the same name.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.h"
#include "core/connection_limits.h"
#include "filters/filter_registry.h"
#include "filters/gateway_summary.h"
#include "upstream/cluster_state.h"

namespace flowguard::gateway {

struct Generation {
  uint64_t number = 1;
  std::shared_ptr<const config::Config> config;
  upstream::ClusterStates clusters;
  // filters[l][f]: listener l's filter entry f (config order).
  std::vector<std::vector<filters::FilterSharedState>> filters;
  // The process's connection limit and overload flag: one object for the life of the process.
  std::shared_ptr<core::OverloadState> overload;
  // connectionLimits[l]: listener l's limit over all workers, carried on under the same name.
  std::vector<std::shared_ptr<core::ConnectionLimit>> connectionLimits;
  // What `handler: summary` reads: every listener's metrics and the cluster states above.
  filters::SummarySources summary;
};

std::shared_ptr<const Generation> makeGeneration(std::shared_ptr<const config::Config> config,
                                                 const Generation* previous);

}  // namespace flowguard::gateway
