// Passive outlier detection: hosts that keep failing real requests are ejected from load
// balancing for base_ejection_time × (times ejected), capped at max_ejection_time, but
// never more than max_ejection_percent of the cluster at once (at least one host may
// always be ejected when the percentage is above zero). Workers call record() after
// every attempt; the state lives in the shared HostState atomics.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.h"
#include "upstream/host_state.h"

namespace flowguard::upstream {

enum class AttemptResult {
  Success,         // an answer below 500
  Http5xx,         // the host answered 5xx
  ConnectFailure,  // refused or timed out connecting
  GatewayFailure,  // reset, timeout or unparseable answer: counted like a 5xx
};

class OutlierDetector {
 public:
  OutlierDetector(const config::OutlierDetectionConfig& config,
                  const std::vector<std::shared_ptr<HostState>>& clusterHosts)
      : config_(config), hosts_(clusterHosts) {}

  // Returns true when this result ejected the host. `nowMs` is monotonic (uv_now).
  bool record(HostState& host, AttemptResult result, int64_t nowMs);

 private:
  bool eject(HostState& host, int64_t nowMs);
  size_t ejectedCount(int64_t nowMs) const;

  const config::OutlierDetectionConfig& config_;
  const std::vector<std::shared_ptr<HostState>>& hosts_;
};

}  // namespace flowguard::upstream
