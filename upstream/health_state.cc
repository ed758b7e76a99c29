#include "upstream/health_state.h"

namespace flowguard::upstream {

bool HealthState::record(bool success) {
  if (success) {
    failures_ = 0;
    ++successes_;
    if (!healthy_ && successes_ >= healthyThreshold_) {
      healthy_ = true;
      return true;
    }
  } else {
    successes_ = 0;
    ++failures_;
    if (healthy_ && failures_ >= unhealthyThreshold_) {
      healthy_ = false;
      return true;
    }
  }
  return false;
}

}  // namespace flowguard::upstream
