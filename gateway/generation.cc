#include "gateway/generation.h"

#include <map>
#include <string>

namespace flowguard::gateway {

namespace {

const config::ListenerConfig* findListener(const config::Config& config, const std::string& name) {
  for (const auto& listener : config.listeners) {
    if (listener.name == name) return &listener;
  }
  return nullptr;
}

// The entry of `listener` (index into its filters) that is the `ordinal`-th named `name`, or -1.
int nthNamed(const config::ListenerConfig& listener, const std::string& name, size_t ordinal) {
  for (size_t f = 0; f < listener.filters.size(); ++f) {
    if (listener.filters[f].name == name && ordinal-- == 0) return static_cast<int>(f);
  }
  return -1;
}

// Entry f of `listener` in the new config, given the same listener's entries and states
// in the previous generation: the matching entry there is the one of the same filter
// at the same position among that filter's entries (the first rate_limit stays the first).
filters::FilterSharedState carryOver(const config::FilterConfig& filter, size_t ordinal,
                                     const config::ListenerConfig* previousListener,
                                     const std::vector<filters::FilterSharedState>* previousStates) {
  if (previousListener == nullptr) return filters::createSharedState(filter);
  int old = nthNamed(*previousListener, filter.name, ordinal);
  if (old < 0) return filters::createSharedState(filter);
  return filters::carryOverSharedState(previousListener->filters[static_cast<size_t>(old)],
                                       (*previousStates)[static_cast<size_t>(old)], filter);
}

}  // namespace

std::shared_ptr<const Generation> makeGeneration(std::shared_ptr<const config::Config> config,
                                                 const Generation* previous) {
  auto generation = std::make_shared<Generation>();
  generation->number = previous == nullptr ? 1 : previous->number + 1;
  generation->clusters = upstream::makeClusterStates(*config, previous ? &previous->clusters : nullptr);
  for (const auto& listener : config->listeners) {
    const config::ListenerConfig* previousListener = nullptr;
    const std::vector<filters::FilterSharedState>* previousStates = nullptr;
    if (previous != nullptr) {
      previousListener = findListener(*previous->config, listener.name);
      if (previousListener != nullptr) {
        previousStates =
            &previous->filters[static_cast<size_t>(previousListener - previous->config->listeners.data())];
      }
    }
    auto& states = generation->filters.emplace_back();
    std::map<std::string, size_t> seen;  // entries of each filter name so far
    for (const auto& filter : listener.filters) {
      states.push_back(carryOver(filter, seen[filter.name]++, previousListener, previousStates));
    }
  }
  generation->summary = filters::summarySources(generation->filters, &generation->clusters);
  generation->overload = previous != nullptr ? previous->overload : std::make_shared<core::OverloadState>();
  const config::OverloadConfig& overload = config->overload;
  generation->overload->connections.setMax(overload.maxConnections
                                               ? static_cast<int64_t>(*overload.maxConnections)
                                               : core::defaultProcessConnectionLimit());
  generation->overload->memoryLimit.store(overload.memoryLimit, std::memory_order_relaxed);
  for (const auto& listener : config->listeners) {
    std::shared_ptr<core::ConnectionLimit> limit;
    if (const auto* old = previous ? findListener(*previous->config, listener.name) : nullptr) {
      limit = previous->connectionLimits[static_cast<size_t>(old - previous->config->listeners.data())];
    } else {
      limit = std::make_shared<core::ConnectionLimit>();
    }
    limit->setMax(static_cast<int64_t>(listener.maxConnections));
    generation->connectionLimits.push_back(std::move(limit));
  }
  generation->config = std::move(config);
  return generation;
}

}  // namespace flowguard::gateway
