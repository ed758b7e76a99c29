#include "filters/rate_limit_algorithms.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace flowguard;
using filters::RateLimitCounter;
using filters::RateLimitDecision;

namespace {

config::RateLimitSpec spec(config::RateLimitAlgorithm algorithm, uint64_t requests, int64_t periodMs,
                           uint64_t burst = 0) {
  config::RateLimitSpec s;
  s.algorithm = algorithm;
  s.requests = requests;
  s.period = config::Duration(periodMs);
  s.burst = burst;
  return s;
}

config::RateLimitSpec tokenBucket(uint64_t requests, int64_t periodMs, uint64_t burst = 0) {
  return spec(config::RateLimitAlgorithm::TokenBucket, requests, periodMs, burst);
}
config::RateLimitSpec fixedWindow(uint64_t requests, int64_t periodMs) {
  return spec(config::RateLimitAlgorithm::FixedWindow, requests, periodMs);
}
config::RateLimitSpec slidingWindow(uint64_t requests, int64_t periodMs) {
  return spec(config::RateLimitAlgorithm::SlidingWindow, requests, periodMs);
}

// Decides `n` times at `nowMs`; returns how many were admitted.
int admitted(RateLimitCounter& c, const config::RateLimitSpec& s, int64_t nowMs, int n) {
  int ok = 0;
  for (int i = 0; i < n; ++i) ok += filters::decide(c, s, nowMs).allowed ? 1 : 0;
  return ok;
}

// `threads` threads each deciding `perThread` times at the frozen clock `nowMs`.
int admittedConcurrently(RateLimitCounter& c, const config::RateLimitSpec& s, int64_t nowMs, int threads = 4,
                         int perThread = 10'000) {
  std::atomic<int> total{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      int mine = 0;
      for (int i = 0; i < perThread; ++i) mine += filters::decide(c, s, nowMs).allowed ? 1 : 0;
      total += mine;
    });
  }
  go = true;
  for (auto& w : workers) w.join();
  return total.load();
}

}  // namespace

TEST_CASE("token bucket admits exactly the burst at once, then one per emission interval") {
  RateLimitCounter c;
  const auto s = tokenBucket(10, 1'000, 20);  // T = 100 ms, tau = 1900 ms

  for (uint64_t i = 0; i < 20; ++i) {
    RateLimitDecision d = filters::decide(c, s, 0);
    REQUIRE(d.allowed);
    CHECK(d.limit == 20);
    CHECK(d.remaining == 19 - i);
    CHECK(d.resetMs == 100 * (i + 1));  // until the bucket is full again
  }
  RateLimitDecision denied = filters::decide(c, s, 0);
  CHECK_FALSE(denied.allowed);
  CHECK(denied.remaining == 0);
  CHECK(denied.retryAfterMs == 100);
  CHECK(denied.resetMs == 2'000);

  SUBCASE("retry-after shrinks as time passes and is never 0") {
    CHECK(filters::decide(c, s, 99).retryAfterMs == 1);
    CHECK_FALSE(filters::decide(c, s, 99).allowed);
  }
  SUBCASE("after T exactly one more") {
    CHECK(admitted(c, s, 100, 5) == 1);
    RateLimitDecision d = filters::decide(c, s, 100);
    CHECK(d.retryAfterMs == 100);
  }
  SUBCASE("after a second, ten tokens are back") {
    RateLimitDecision d = filters::decide(c, s, 1'000);
    CHECK(d.allowed);
    CHECK(d.remaining == 9);
    CHECK(d.resetMs == 1'100);
    CHECK(admitted(c, s, 1'000, 20) == 9);
  }
  SUBCASE("after burst*T the bucket is full again") {
    RateLimitDecision d = filters::decide(c, s, 2'000);
    CHECK(d.remaining == 19);
    CHECK(d.resetMs == 100);
    CHECK(admitted(c, s, 2'000, 30) == 19);
  }
}

TEST_CASE("token bucket burst defaults to requests") {
  RateLimitCounter c;
  const auto s = tokenBucket(5, 1'000);
  RateLimitDecision first = filters::decide(c, s, 0);
  CHECK(first.limit == 5);
  CHECK(first.remaining == 4);
  CHECK(admitted(c, s, 0, 10) == 4);
}

TEST_CASE("token bucket sustained rate over a simulated minute is rate*60 + burst") {
  RateLimitCounter c;
  const auto s = tokenBucket(10, 1'000, 20);
  int ok = 0;
  // Three attempts every millisecond over [0, 60 s]: the burst at 0, then one every 100 ms.
  for (int64_t t = 0; t <= 60'000; ++t) ok += admitted(c, s, t, 3);
  CHECK(ok == 10 * 60 + 20);
}

TEST_CASE("token bucket keeps sub-millisecond precision for rates that do not divide the period") {
  RateLimitCounter c;
  const auto s = tokenBucket(3, 1'000, 1);  // T = 333.333 ms
  CHECK(filters::decide(c, s, 0).allowed);
  RateLimitDecision d = filters::decide(c, s, 0);
  CHECK_FALSE(d.allowed);
  CHECK(d.retryAfterMs == 334);  // rounded up: retrying at 333 ms would still be refused
  CHECK_FALSE(filters::decide(c, s, 333).allowed);
  CHECK(filters::decide(c, s, 334).allowed);

  // With a burst, TAT keeps its microseconds: exactly 3/s on average, plus the burst.
  RateLimitCounter c2;
  const auto s2 = tokenBucket(3, 1'000, 3);
  int ok = 0;
  for (int64_t t = 0; t < 60'000; ++t) ok += admitted(c2, s2, t, 2);
  // Admission n (0-based) happens once n*T - tau <= now: n <= (59999 ms + 666.666 ms) / T.
  CHECK(ok == 182);
}

TEST_CASE("fixed window: limit per window aligned to the period, retry-after = time to window end") {
  RateLimitCounter c;
  const auto s = fixedWindow(5, 1'000);
  for (uint64_t i = 0; i < 5; ++i) {
    RateLimitDecision d = filters::decide(c, s, 10);
    REQUIRE(d.allowed);
    CHECK(d.limit == 5);
    CHECK(d.remaining == 4 - i);
    CHECK(d.resetMs == 990);
  }
  RateLimitDecision denied = filters::decide(c, s, 10);
  CHECK_FALSE(denied.allowed);
  CHECK(denied.remaining == 0);
  CHECK(denied.retryAfterMs == 990);
  CHECK(denied.resetMs == 990);

  CHECK_FALSE(filters::decide(c, s, 999).allowed);  // last ms of the window
  CHECK(filters::decide(c, s, 999).retryAfterMs == 1);
  RateLimitDecision next = filters::decide(c, s, 1'000);  // first ms of the next one
  CHECK(next.allowed);
  CHECK(next.remaining == 4);
  CHECK(next.resetMs == 1'000);
  CHECK(admitted(c, s, 1'500, 10) == 4);
  CHECK(admitted(c, s, 7'250, 10) == 5);  // a later window, skipping several
  CHECK(filters::decide(c, s, 7'250).retryAfterMs == 750);
}

TEST_CASE("fixed window: the edge burst is allowed (up to 2x across a boundary)") {
  RateLimitCounter c;
  const auto s = fixedWindow(100, 60'000);
  CHECK(admitted(c, s, 59'999, 150) == 100);
  CHECK(admitted(c, s, 60'000, 150) == 100);
}

TEST_CASE("fixed window: a worker with a stale clock counts into the counter's newer window") {
  RateLimitCounter c;
  const auto s = fixedWindow(1, 1'000);
  CHECK(filters::decide(c, s, 2'000).allowed);
  RateLimitDecision stale = filters::decide(c, s, 1'999);
  CHECK_FALSE(stale.allowed);
  CHECK(stale.retryAfterMs == 1'001);
}

TEST_CASE("sliding window weights the previous window by the share still inside the period") {
  RateLimitCounter c;
  const auto s = slidingWindow(10, 1'000);
  CHECK(admitted(c, s, 100, 10) == 10);
  RateLimitDecision full = filters::decide(c, s, 100);
  CHECK_FALSE(full.allowed);
  // Next window, e = 1 ms: 10 * 999/1000 + 0 < 10. At e = 0 the weight is still 10.
  CHECK(full.retryAfterMs == 901);

  SUBCASE("at the first ms of the next window the previous one still weighs fully") {
    CHECK_FALSE(filters::decide(c, s, 1'000).allowed);
    CHECK(filters::decide(c, s, 1'001).allowed);
  }
  SUBCASE("halfway into the next window half of the previous count still weighs") {
    RateLimitDecision d = filters::decide(c, s, 1'500);
    CHECK(d.allowed);
    CHECK(d.limit == 10);
    CHECK(d.remaining == 4);
    CHECK(admitted(c, s, 1'500, 10) == 4);
    RateLimitDecision denied = filters::decide(c, s, 1'500);
    CHECK_FALSE(denied.allowed);
    CHECK(denied.retryAfterMs == 1);  // at e = 501: 10*499 + 5*1000 < 10*1000
    CHECK(filters::decide(c, s, 1'501).allowed);
  }
  SUBCASE("late in the next window the estimate before each request must stay under the limit") {
    RateLimitDecision d = filters::decide(c, s, 1'950);  // weight 0.5
    CHECK(d.remaining == 9);
    CHECK(admitted(c, s, 1'950, 20) == 9);
  }
  SUBCASE("a window two periods later ignores the old count") {
    CHECK(admitted(c, s, 2'000, 20) == 10);
  }
  SUBCASE("an empty window in between weighs nothing") {
    CHECK_FALSE(filters::decide(c, s, 1'000).allowed);  // moves the counter to window 1
    CHECK(admitted(c, s, 2'000, 20) == 10);
  }
}

TEST_CASE("zero requests admits nothing") {
  RateLimitCounter c;
  for (auto algo : {config::RateLimitAlgorithm::TokenBucket, config::RateLimitAlgorithm::FixedWindow,
                    config::RateLimitAlgorithm::SlidingWindow}) {
    RateLimitDecision d = filters::decide(c, spec(algo, 0, 1'000), 0);
    CHECK_FALSE(d.allowed);
    CHECK(d.retryAfterMs >= 1);
  }
}

TEST_CASE("decide records the last use") {
  RateLimitCounter c;
  filters::decide(c, fixedWindow(1, 1'000), 1'234);
  filters::decide(c, fixedWindow(1, 1'000), 1'234);
  CHECK(c.lastUsedMs.load() == 1'234);
  filters::decide(c, fixedWindow(1, 1'000), 1'200);  // an older clock does not move it back
  CHECK(c.lastUsedMs.load() == 1'234);
}

TEST_CASE("concurrent decides on one key admit exactly the limit") {
  SUBCASE("token bucket") {
    RateLimitCounter c;
    CHECK(admittedConcurrently(c, tokenBucket(10, 1'000, 1'000), 5'000) == 1'000);
  }
  SUBCASE("fixed window") {
    RateLimitCounter c;
    CHECK(admittedConcurrently(c, fixedWindow(1'000, 1'000), 5'000) == 1'000);
  }
  SUBCASE("sliding window") {
    RateLimitCounter c;
    CHECK(admittedConcurrently(c, slidingWindow(1'000, 1'000), 5'000) == 1'000);
  }
  SUBCASE("sliding window, all threads racing to roll into the next window") {
    RateLimitCounter c;
    const auto s = slidingWindow(1'000, 1'000);
    CHECK(admitted(c, s, 4'100, 2'000) == 1'000);
    // Halfway into the next window the 1000 of the previous one weigh 500.
    CHECK(admittedConcurrently(c, s, 5'500) == 500);
  }
}

TEST_CASE("concurrent decides with moving clocks never exceed the limit") {
  // Each thread has its own clock running 0..2999 ms, so windows roll while others decide.
  const int threads = 4;
  auto run = [&](const config::RateLimitSpec& s) {
    RateLimitCounter c;
    std::atomic<int> total{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        int mine = 0;
        for (int64_t now = 0; now < 3'000; ++now) mine += admitted(c, s, now + t % 2, 3);
        total += mine;
      });
    }
    for (auto& w : workers) w.join();
    return total.load();
  };
  // Windows 0..3 are the only ones ever reached, 0..2 are saturated. (Once a fast thread
  // moved the counter to window 3, slower ones count into it too.)
  int fixed = run(fixedWindow(100, 1'000));
  CHECK(fixed >= 300);
  CHECK(fixed <= 400);
  // Token bucket 100/s, burst 100 (T = 10 ms, tau = 990 ms), clocks up to 3000 ms:
  // admission n needs n*T - tau <= 3000 ms, so at most 400.
  int bucket = run(tokenBucket(100, 1'000, 100));
  CHECK(bucket <= 400);
  CHECK(bucket >= 390);
  // Sliding window: no window ever holds more than the limit itself.
  int sliding = run(slidingWindow(100, 1'000));
  CHECK(sliding <= 400);
  CHECK(sliding >= 250);
}
