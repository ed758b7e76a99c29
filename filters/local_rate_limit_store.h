// In-process rate-limit counters shared by every worker of this gateway process: exact
// across workers. The key → counter map is striped (one small lock per shard, held only
// to find or insert the entry); the decision itself is a lock-free CAS on the counter.
// Idle counters are evicted so random keys cannot grow memory without bound.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "filters/rate_limit_algorithms.h"

namespace flowguard::filters {

class LocalRateLimitStore {
 public:
  // `maxKeys`: above it, counters idle for longer than their period are evicted first.
  explicit LocalRateLimitStore(size_t maxKeys = 100'000);
  ~LocalRateLimitStore();
  LocalRateLimitStore(const LocalRateLimitStore&) = delete;
  LocalRateLimitStore& operator=(const LocalRateLimitStore&) = delete;

  // Thread-safe.
  RateLimitDecision decide(std::string_view key, const config::RateLimitSpec& spec, int64_t nowMs);
  size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowguard::filters
