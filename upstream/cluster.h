// A cluster as one worker sees it: its hosts, each with this worker's connection pool,
// and the round-robin cursor. The shared part (health, ejections, circuit breakers) is
// the ClusterState every worker points to.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "core/dispatcher.h"
#include "upstream/cluster_state.h"
#include "upstream/host_pool.h"

namespace flowguard::upstream {

class Cluster {
 public:
  Cluster(core::Dispatcher& dispatcher, std::shared_ptr<ClusterState> state);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const config::ClusterConfig& config() const { return state_->config(); }
  const std::string& name() const { return state_->config().name; }
  ClusterState& state() { return *state_; }

  // The next host for a request that already failed on `tried` (see chooseHost()).
  // Null when no host may be used (no_healthy_hosts: reject and none is available).
  HostPool* pickHost(const std::vector<const HostPool*>& tried);

  // Milliseconds on the worker loop's monotonic clock, as outlier ejections use.
  int64_t nowMs() const { return static_cast<int64_t>(uv_now(dispatcher_.loop())); }

  const std::vector<std::unique_ptr<HostPool>>& hosts() const { return hosts_; }
  void closeAll();

 private:
  core::Dispatcher& dispatcher_;
  std::shared_ptr<ClusterState> state_;
  std::vector<std::unique_ptr<HostPool>> hosts_;
  size_t cursor_ = 0;
  std::unique_ptr<bool[]> scratch_;  // pickHost's per-host flags: available, then tried
};

// Every cluster of one worker, by name. A reload builds a new manager from the previous
// one: clusters whose shared state was kept are the same Cluster objects (their pools and
// round-robin cursor carry on); the others are new. A Cluster lives as long as a manager
// holds it, so the pools of a removed cluster close when the last request of the old
// configuration is done.
class ClusterManager {
 public:
  ClusterManager(core::Dispatcher& dispatcher, const ClusterStates& states, const ClusterManager* previous = nullptr);
  Cluster* find(const std::string& name);
  void closeAll();

 private:
  std::unordered_map<std::string, std::shared_ptr<Cluster>> clusters_;
};

}  // namespace flowguard::upstream
