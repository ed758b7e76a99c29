// In-process rate-limit counters shared by every worker of this gateway process: exact
// across workers. The key → counter map is striped (one small lock per shard, held only
// to find or insert the entry); the decision itself is a lock-free CAS on the counter.
// Idle counters are evicted so random keys cannot grow memory without bound.
//
// Workers decide through a View, which remembers the counters it used lately: a key seen
// before is decided with a hash, a compare and the counter's CAS, without the shard's lock
// or map (no lock on the request path in the steady state).
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

  // One worker's cache in front of the store: a direct-mapped table (a key has one slot, a
  // new key takes it over, so no set of keys makes a lookup slow). An entry is used only
  // for the limit it was found with, and only while the store has not evicted its counter.
  // One thread only.
  class View {
   public:
    static constexpr size_t kSlots = 256;  // a power of two
    explicit View(LocalRateLimitStore& store) : store_(store) {}
    RateLimitDecision decide(std::string_view key, const config::RateLimitSpec& spec, int64_t nowMs);

   private:
    struct Entry {
      std::string key;
      config::RateLimitSpec spec;
      std::shared_ptr<RateLimitCounter> counter;
    };
    LocalRateLimitStore& store_;
    std::unique_ptr<Entry[]> entries_;  // allocated on first use
  };

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowguard::filters
