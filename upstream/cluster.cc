#include "upstream/cluster.h"

#include <algorithm>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "core/listener.h"

namespace flowguard::upstream {

Cluster::Cluster(core::Dispatcher& dispatcher, std::shared_ptr<ClusterState> state)
    : dispatcher_(dispatcher), state_(std::move(state)) {
  const config::ClusterConfig& config = state_->config();
  PoolSettings settings;
  settings.connectTimeout = config.connectTimeout;
  settings.idleTimeout = config.idleTimeout;
  settings.maxConnections = config.maxConnectionsPerHost;
  settings.maxIdle = config.maxIdlePerHost;
  for (size_t i = 0; i < config.hosts.size(); ++i) {
    hosts_.push_back(
        std::make_unique<HostPool>(dispatcher, *state_, *state_->hosts()[i], state_->address(i), settings));
  }
  scratch_ = std::make_unique<bool[]>(2 * hosts_.size() + 1);
}

HostPool* Cluster::pickHost(const std::vector<const HostPool*>& tried) {
  int64_t now = nowMs();
  size_t n = hosts_.size();
  bool* available = scratch_.get();
  bool* triedFlags = scratch_.get() + n;
  for (size_t i = 0; i < n; ++i) {
    available[i] = hosts_[i]->state().available(now);
    triedFlags[i] = std::find(tried.begin(), tried.end(), hosts_[i].get()) != tried.end();
  }
  bool panic = state_->config().noHealthyHosts == config::NoHealthyHosts::Panic;
  HostChoice choice = chooseHost({available, n}, {triedFlags, n}, cursor_, panic);
  if (choice.index < 0) {
    state_->stats().add(ClusterStat::NoHealthyHost);
    return nullptr;
  }
  if (choice.panic) state_->stats().add(ClusterStat::PanicRouted);
  return hosts_[static_cast<size_t>(choice.index)].get();
}

void Cluster::closeAll() {
  for (auto& host : hosts_) host->closeAll();
}

ClusterManager::ClusterManager(core::Dispatcher& dispatcher, const ClusterStates& states,
                               const ClusterManager* previous) {
  for (const auto& [name, state] : states) {
    std::shared_ptr<Cluster> cluster;
    if (previous != nullptr) {
      if (auto it = previous->clusters_.find(name);
          it != previous->clusters_.end() && &it->second->state() == state.get()) {
        cluster = it->second;
      }
    }
    if (!cluster) cluster = std::make_shared<Cluster>(dispatcher, state);
    clusters_.emplace(name, std::move(cluster));
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
