// What one appendLogs batch adds to each key's usage row; shared by both backends.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <span>

#include "core/status_class.h"
#include "store/store.h"

namespace flowguard::store {

struct UsageDelta {
  int64_t requests = 0;
  int64_t status2xx = 0;
  int64_t status3xx = 0;
  int64_t status4xx = 0;  // includes the 429s
  int64_t status429 = 0;
  int64_t status5xx = 0;
  int64_t lastUsedMs = std::numeric_limits<int64_t>::min();
};

// Per key id (records without a key are left out). Ordered by key id so that concurrent
// batches of two gateways update the same usage rows in the same order and cannot deadlock.
inline std::map<int64_t, UsageDelta> usageByKey(std::span<const LogRecord> records) {
  std::map<int64_t, UsageDelta> deltas;
  for (const LogRecord& r : records) {
    if (r.keyId == 0) continue;
    UsageDelta& d = deltas[r.keyId];
    ++d.requests;
    core::countStatus(
        r.status, [](int64_t& c) { ++c; }, d.status2xx, d.status3xx, d.status4xx, d.status429, d.status5xx);
    d.lastUsedMs = std::max(d.lastUsedMs, r.timeMs);
  }
  return deltas;
}

}  // namespace flowguard::store
