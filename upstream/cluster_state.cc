#include "upstream/cluster_state.h"

#include <algorithm>

namespace flowguard::upstream {

namespace {

std::vector<std::shared_ptr<HostState>> makeHosts(const config::ClusterConfig& config) {
  std::vector<std::shared_ptr<HostState>> hosts;
  bool initiallyHealthy = !config.healthCheck.enabled || config.healthCheck.initiallyHealthy;
  for (const auto& host : config.hosts) hosts.push_back(std::make_shared<HostState>(host.str(), initiallyHealthy));
  return hosts;
}

bool acquire(std::atomic<int64_t>& counter, uint32_t limit) {
  if (counter.fetch_add(1, std::memory_order_relaxed) >= static_cast<int64_t>(limit)) {
    counter.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

}  // namespace

ClusterState::ClusterState(const config::ClusterConfig& config)
    : config_(config), hosts_(makeHosts(config)), outlier_(config.outlierDetection, hosts_) {}

bool ClusterState::acquireRequest() {
  if (acquire(activeRequests_, config_.circuitBreakers.maxRequests)) return true;
  counters_.overflowRequests.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool ClusterState::acquirePending() {
  if (acquire(pendingRequests_, config_.circuitBreakers.maxPendingRequests)) return true;
  counters_.overflowPending.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool ClusterState::acquireConnection() {
  return acquire(activeConnections_, config_.circuitBreakers.maxConnections);
}

bool ClusterState::acquireRetry() {
  int64_t active = activeRequests_.load(std::memory_order_relaxed);
  int64_t limit = std::max<int64_t>(config_.retryBudgetMinRetries, active * config_.retryBudgetPercent / 100);
  if (acquire(activeRetries_, static_cast<uint32_t>(limit))) {
    counters_.retries.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  counters_.retryBudgetExhausted.fetch_add(1, std::memory_order_relaxed);
  return false;
}

ClusterStates makeClusterStates(const config::Config& config) {
  ClusterStates states;
  for (const auto& cluster : config.clusters) states.emplace(cluster.name, std::make_shared<ClusterState>(cluster));
  return states;
}

HostChoice chooseHost(std::span<const bool> available, std::span<const bool> tried, size_t& cursor, bool panic) {
  size_t n = available.size();
  if (n == 0) return {};
  auto pass = [&](auto accept) -> int {
    for (size_t i = 0; i < n; ++i) {
      size_t index = (cursor + i) % n;
      if (accept(index)) {
        cursor = (index + 1) % n;
        return static_cast<int>(index);
      }
    }
    return -1;
  };
  if (int i = pass([&](size_t k) { return available[k] && !tried[k]; }); i >= 0) return {i, false};
  if (int i = pass([&](size_t k) { return available[k]; }); i >= 0) return {i, false};
  if (!panic) return {};
  if (int i = pass([&](size_t k) { return !tried[k]; }); i >= 0) return {i, true};
  return {pass([](size_t) { return true; }), true};
}

}  // namespace flowguard::upstream
