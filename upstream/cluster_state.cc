#include "upstream/cluster_state.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "core/listener.h"

namespace flowguard::upstream {

namespace {

// A host the previous generation of the cluster already had keeps its state (health
// verdict, ejection, counters, latency); the others start fresh.
std::vector<std::shared_ptr<HostState>> makeHosts(const config::ClusterConfig& config,
                                                  const ClusterState* previous) {
  std::vector<std::shared_ptr<HostState>> hosts;
  bool initiallyHealthy = !config.healthCheck.enabled || config.healthCheck.initiallyHealthy;
  for (const auto& host : config.hosts) {
    const std::string address = host.str();
    std::shared_ptr<HostState> kept;
    if (previous != nullptr) {
      for (const auto& old : previous->hosts()) {
        if (old->address == address) kept = old;
      }
    }
    if (kept) {
      // Without active checks nobody would ever bring a host marked down back.
      if (!config.healthCheck.enabled) kept->activeHealthy.store(true, std::memory_order_relaxed);
      hosts.push_back(std::move(kept));
    } else {
      hosts.push_back(std::make_shared<HostState>(address, initiallyHealthy));
    }
  }
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

ClusterState::ClusterState(const config::ClusterConfig& config, const ClusterState* previous)
    : ClusterState(config, resolveHosts(config), previous) {}

ClusterState::ClusterState(const config::ClusterConfig& config, std::vector<sockaddr_storage> addresses,
                           const ClusterState* previous)
    : config_(config),
      addresses_(std::move(addresses)),
      hosts_(makeHosts(config_, previous)),
      outlier_(config_.outlierDetection, hosts_) {}

std::vector<sockaddr_storage> resolveHosts(const config::ClusterConfig& config) {
  std::vector<sockaddr_storage> addresses(config.hosts.size());
  for (size_t i = 0; i < config.hosts.size(); ++i) {
    std::string error;
    if (core::lookupAddress(config.hosts[i].host, config.hosts[i].port, addresses[i], error) != 0) {
      throw HostResolutionError(config.name, fmt::format("cluster {}: {}", config.name, error));
    }
  }
  return addresses;
}

bool ClusterState::acquireRequest() {
  if (acquire(activeRequests_, config_.circuitBreakers.maxRequests)) return true;
  stats_.add(ClusterStat::OverflowRequests);
  return false;
}

bool ClusterState::acquirePending() {
  if (acquire(pendingRequests_, config_.circuitBreakers.maxPendingRequests)) return true;
  stats_.add(ClusterStat::OverflowPending);
  return false;
}

bool ClusterState::acquireConnection() {
  return acquire(activeConnections_, config_.circuitBreakers.maxConnections);
}

bool ClusterState::acquireRetry() {
  int64_t active = activeRequests_.load(std::memory_order_relaxed);
  int64_t limit = std::max<int64_t>(config_.retryBudgetMinRetries, active * config_.retryBudgetPercent / 100);
  if (acquire(activeRetries_, static_cast<uint32_t>(limit))) {
    stats_.add(ClusterStat::Retries);
    return true;
  }
  stats_.add(ClusterStat::RetryBudgetExhausted);
  return false;
}

ClusterStates makeClusterStates(const config::Config& config, const ClusterStates* previous) {
  ClusterStates states;
  for (const auto& cluster : config.clusters) {
    std::shared_ptr<ClusterState> old;
    if (previous != nullptr) {
      if (auto it = previous->find(cluster.name); it != previous->end()) old = it->second;
    }
    std::vector<sockaddr_storage> addresses = resolveHosts(cluster);
    auto sameAddresses = [&] {
      return std::equal(addresses.begin(), addresses.end(), old->addresses().begin(), old->addresses().end(),
                        [](const sockaddr_storage& a, const sockaddr_storage& b) {
                          return std::memcmp(&a, &b, sizeof(a)) == 0;
                        });
    };
    if (old && old->config() == cluster && sameAddresses()) {
      states.emplace(cluster.name, std::move(old));  // unchanged: same state, same pools
    } else {
      states.emplace(cluster.name, std::make_shared<ClusterState>(cluster, std::move(addresses), old.get()));
    }
  }
  return states;
}

HostChoice chooseHost(std::span<const bool> available, std::span<const bool> tried, size_t& cursor,
                      bool panic) {
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
