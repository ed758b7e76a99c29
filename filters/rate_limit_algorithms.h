// Rate-limit arithmetic, with the clock passed in so it can be tested without waiting.
// No I/O, no allocation. Times are milliseconds on a monotonic clock.
#pragma once

#include <atomic>
#include <cstdint>

#include "config/config.h"

namespace flowguard::filters {

struct RateLimitDecision {
  bool allowed = true;
  uint64_t limit = 0;         // RateLimit-Limit: requests per period (token bucket: burst)
  uint64_t remaining = 0;     // RateLimit-Remaining after this request
  uint64_t resetMs = 0;       // RateLimit-Reset: until the limit is fully available again
  uint64_t retryAfterMs = 0;  // when denied: until the next request would be allowed
};

// The state of one counter, updated with compare-and-swap so several workers can decide
// on the same key at once without a lock. For token_bucket (GCRA) `value` is the
// theoretical arrival time in microseconds; for the window algorithms it packs the
// window start and counts (see the .cc).
struct RateLimitCounter {
  std::atomic<int64_t> value{0};
  std::atomic<int64_t> previous{0};    // sliding_window: the previous window's count
  std::atomic<int64_t> lastUsedMs{0};  // for evicting idle counters
  // Set when the store drops this counter (idle, or its limit changed): a worker that cached
  // it must look the key up again, or two counters would count one key.
  std::atomic<bool> evicted{false};
};

// Decides one request against `spec`, updating `counter`. Exact under concurrency: N
// concurrent callers never admit more than the limit allows.
RateLimitDecision decide(RateLimitCounter& counter, const config::RateLimitSpec& spec, int64_t nowMs);

}  // namespace flowguard::filters
