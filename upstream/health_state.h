// The active health-check state machine of one host, without any I/O: feed it each probe
// result, it says whether the host is healthy. A healthy host turns unhealthy after
// `unhealthyThreshold` failures in a row, an unhealthy one healthy again after
// `healthyThreshold` successes in a row (HAProxy's fall / rise).
#pragma once

#include <cstdint>

namespace flowguard::upstream {

class HealthState {
 public:
  HealthState(uint32_t healthyThreshold, uint32_t unhealthyThreshold, bool initiallyHealthy)
      : healthyThreshold_(healthyThreshold), unhealthyThreshold_(unhealthyThreshold), healthy_(initiallyHealthy) {}

  // Records one probe. Returns true when the verdict changed.
  bool record(bool success);

  bool healthy() const { return healthy_; }
  uint32_t successesInARow() const { return successes_; }
  uint32_t failuresInARow() const { return failures_; }

 private:
  uint32_t healthyThreshold_;
  uint32_t unhealthyThreshold_;
  bool healthy_;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
};

}  // namespace flowguard::upstream
