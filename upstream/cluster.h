// A cluster as one worker sees it: its hosts, each with this worker's connection pool,
// and the round-robin cursor. Worker-local: no locks.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "core/dispatcher.h"
#include "upstream/host_pool.h"

namespace flowguard::upstream {

class Cluster {
 public:
  // `config` must outlive the cluster (the gateway keeps the Config alive).
  Cluster(core::Dispatcher& dispatcher, const config::ClusterConfig& config);

  const config::ClusterConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }

  // Round robin over the hosts, skipping `tried` (the hosts this request already failed
  // on) while untried ones remain. Null only for a cluster without hosts.
  HostPool* pickHost(const std::vector<const HostPool*>& tried);

  const std::vector<std::unique_ptr<HostPool>>& hosts() const { return hosts_; }
  void closeAll();

 private:
  const config::ClusterConfig& config_;
  std::vector<std::unique_ptr<HostPool>> hosts_;
  size_t next_ = 0;
};

// Every cluster of one worker, by name.
class ClusterManager {
 public:
  ClusterManager(core::Dispatcher& dispatcher, const std::vector<config::ClusterConfig>& clusters);
  Cluster* find(const std::string& name);
  void closeAll();

 private:
  std::unordered_map<std::string, std::unique_ptr<Cluster>> clusters_;
};

}  // namespace flowguard::upstream
