#include "upstream/cluster.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "core/listener.h"

namespace flowguard::upstream {

Cluster::Cluster(core::Dispatcher& dispatcher, const config::ClusterConfig& config) : config_(config) {
  PoolSettings settings;
  settings.connectTimeout = config.connectTimeout;
  settings.idleTimeout = config.idleTimeout;
  settings.maxConnections = config.maxConnectionsPerHost;
  settings.maxPending = config.maxPendingRequests;
  settings.maxIdle = config.maxIdlePerHost;
  for (const auto& host : config.hosts) {
    sockaddr_storage address;
    if (core::resolveAddress(host.host, host.port, address) != 0) {
      throw std::runtime_error(fmt::format("cluster {}: bad host address {}", config.name, host.str()));
    }
    hosts_.push_back(std::make_unique<HostPool>(dispatcher, host.str(), address, settings));
  }
}

HostPool* Cluster::pickHost(const std::vector<const HostPool*>& tried) {
  if (hosts_.empty()) return nullptr;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    HostPool* host = hosts_[next_].get();
    next_ = (next_ + 1) % hosts_.size();
    if (std::find(tried.begin(), tried.end(), host) == tried.end()) return host;
  }
  // Every host failed once already: a retry may still succeed on a fresh connection
  // (a pooled one the host had just closed), so take the next one in turn.
  HostPool* host = hosts_[next_].get();
  next_ = (next_ + 1) % hosts_.size();
  return host;
}

void Cluster::closeAll() {
  for (auto& host : hosts_) host->closeAll();
}

ClusterManager::ClusterManager(core::Dispatcher& dispatcher, const std::vector<config::ClusterConfig>& clusters) {
  for (const auto& cluster : clusters) {
    clusters_.emplace(cluster.name, std::make_unique<Cluster>(dispatcher, cluster));
  }
}

Cluster* ClusterManager::find(const std::string& name) {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second.get();
}

void ClusterManager::closeAll() {
  for (auto& [name, cluster] : clusters_) cluster->closeAll();
}

}  // namespace flowguard::upstream
