// Active health checks, run on the main thread's loop so workers never wait on them.
// Every host of every cluster with a health_check section gets `GET path` on a fresh
// connection each interval (first probes spread over one interval, so a restart does not
// probe everything at once). A probe passes when an answer with an expected status
// arrives within the timeout. Verdicts go through HealthState and are published in the
// host's shared HostState::activeHealthy, which workers read when balancing.
#pragma once

#include <memory>
#include <set>
#include <vector>

#include <uv.h>

#include "upstream/cluster_state.h"

namespace flowguard::upstream {

class HealthProbe;

class HealthChecker {
 public:
  HealthChecker(uv_loop_t* loop, const ClusterStates& clusters);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  void start();
  // After a reload: clusters whose state was kept keep their probes (and their rise/fall
  // counts); removed or changed clusters' probes stop; new ones start.
  void update(const ClusterStates& clusters);
  // Stops probing and closes every handle; the loop can then end.
  void stop();

 private:
  void addProbes(const ClusterStates& clusters, const std::set<const ClusterState*>& skip);

  uv_loop_t* loop_;
  bool started_ = false;
  std::vector<HealthProbe*> probes_;  // each frees itself after stop()
};

}  // namespace flowguard::upstream
