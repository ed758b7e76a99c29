#include "filters/local_rate_limit_store.h"

#include <doctest/doctest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace flowguard;
using filters::LocalRateLimitStore;

namespace {

config::RateLimitSpec fixedWindow(uint64_t requests, int64_t periodMs) {
  config::RateLimitSpec s;
  s.algorithm = config::RateLimitAlgorithm::FixedWindow;
  s.requests = requests;
  s.period = config::Duration(periodMs);
  return s;
}

config::RateLimitSpec tokenBucket(uint64_t requests, int64_t periodMs, uint64_t burst) {
  config::RateLimitSpec s;
  s.algorithm = config::RateLimitAlgorithm::TokenBucket;
  s.requests = requests;
  s.period = config::Duration(periodMs);
  s.burst = burst;
  return s;
}

int admitted(LocalRateLimitStore& store, std::string_view key, const config::RateLimitSpec& s, int64_t nowMs,
             int n) {
  int ok = 0;
  for (int i = 0; i < n; ++i) ok += store.decide(key, s, nowMs).allowed ? 1 : 0;
  return ok;
}

// Per-shard capacity is maxKeys/64 plus an eviction slack of max(1, cap/8).
size_t sizeBound(size_t maxKeys) {
  size_t cap = std::max<size_t>(1, maxKeys / 64);
  return 64 * (cap + std::max<size_t>(1, cap / 8));
}

}  // namespace

TEST_CASE("store: different keys are independent, the same key is shared") {
  LocalRateLimitStore store;
  const auto s = fixedWindow(2, 1'000);
  CHECK(store.size() == 0);
  CHECK(admitted(store, "alice", s, 0, 5) == 2);
  CHECK(admitted(store, "bob", s, 0, 5) == 2);
  CHECK(store.size() == 2);
  // The same key again (a different string object) reaches the same counter.
  std::string alice = "alice";
  CHECK_FALSE(store.decide(alice, s, 10).allowed);
  CHECK(store.size() == 2);
  CHECK(admitted(store, alice, s, 1'000, 5) == 2);
}

// Four threads decide on one shared key, with `ownKeys` keys of their own on the side (so
// shard locks are contended, and a view's slots are taken over now and then), straight on
// the store or each through a View of its own. Returns how many shared requests got in.
static int sharedKeyAdmitted(LocalRateLimitStore& store, bool throughViews, int ownKeys) {
  const auto s = tokenBucket(10, 1'000, 1'000);
  std::atomic<int> total{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      LocalRateLimitStore::View view(store);
      auto decide = [&](std::string_view key) {
        return (throughViews ? view.decide(key, s, 5'000) : store.decide(key, s, 5'000)).allowed;
      };
      int mine = 0;
      for (int i = 0; i < 10'000; ++i) {
        mine += decide("shared") ? 1 : 0;
        decide("own-" + std::to_string(t) + "-" + std::to_string(i % ownKeys));
      }
      total += mine;
    });
  }
  for (auto& w : workers) w.join();
  return total.load();
}

TEST_CASE("store: concurrent workers on one key admit exactly the limit") {
  LocalRateLimitStore store;
  CHECK(sharedKeyAdmitted(store, false, 100) == 1'000);
  CHECK(store.size() == 1 + 4 * 100);
}

TEST_CASE("store: a flood of random keys stays bounded and does not reset a live key") {
  const size_t maxKeys = 640;
  LocalRateLimitStore store(maxKeys);
  const auto flood = fixedWindow(1, 1'000);
  const auto live = fixedWindow(100, 1'000);
  std::mt19937_64 rng(42);
  size_t largest = 0;
  for (int64_t t = 0; t < 20'000; ++t) {
    for (int i = 0; i < 10; ++i) store.decide("random-" + std::to_string(rng()), flood, t);
    largest = std::max(largest, store.size());
  }
  CHECK(largest <= sizeBound(maxKeys));
  CHECK(largest >= maxKeys / 2);

  // Same again with a live key used every ms: exactly 100 admitted in each window, which
  // fails if its counter is ever dropped and recreated mid-window.
  int liveAdmitted = 0;
  for (int64_t t = 20'000; t < 30'000; ++t) {
    for (int i = 0; i < 10; ++i) store.decide("random-" + std::to_string(rng()), flood, t);
    liveAdmitted += store.decide("live", live, t).allowed ? 1 : 0;
    if (t % 1'000 == 999) {
      CHECK(liveAdmitted == 100);
      liveAdmitted = 0;
    }
    REQUIRE(store.size() <= sizeBound(maxKeys));
  }
}

TEST_CASE("store: idle counters go first, a counter not yet at rest is kept") {
  const size_t maxKeys = 640;  // 10 per shard
  LocalRateLimitStore store(maxKeys);
  // One request per minute: this key's counter matters for 60 s after its use.
  const auto slow = tokenBucket(1, 60'000, 1);
  CHECK(store.decide("slow", slow, 0).allowed);
  // 1000 short-lived keys, one every 10 ms: about 100 live at a time (1.6 per shard), the
  // rest idle, so each shard overflows its 10 entries with idle counters, which go. A
  // plain least-recently-used eviction would drop "slow" (the oldest entry) instead.
  const auto flood = fixedWindow(1, 1'000);
  for (int i = 0; i < 1'000; ++i) store.decide("k" + std::to_string(i), flood, 20'000 + 10 * i);
  CHECK(store.size() < 64 * 10);
  CHECK_FALSE(store.decide("slow", slow, 30'000).allowed);
  CHECK(store.decide("slow", slow, 60'000).allowed);
}

TEST_CASE("store: concurrent eviction while deciding is safe and bounded") {
  const size_t maxKeys = 128;
  LocalRateLimitStore store(maxKeys);
  const auto s = fixedWindow(5, 100);
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 20'000; ++i) {
        const int64_t now = i / 10;
        store.decide("hot-" + std::to_string(rng() % 300), s, now);
        store.decide("t" + std::to_string(t) + "-" + std::to_string(i), s, now);
      }
    });
  }
  for (auto& w : workers) w.join();
  CHECK(store.size() <= sizeBound(maxKeys));
}

TEST_CASE("store: a changed limit starts a fresh counter, an unchanged one keeps its state") {
  LocalRateLimitStore store;
  const auto generous = tokenBucket(1000, 1'000, 1000);
  CHECK(admitted(store, "k", generous, 0, 600) == 600);
  // Same limit (another object, as a reload builds it): the 600 still count.
  const auto sameAgain = tokenBucket(1000, 1'000, 1000);
  CHECK(admitted(store, "k", sameAgain, 0, 600) == 400);
  // Lowered to a fixed window of 3: a token-bucket state means nothing to it; 3 at once.
  const auto strict = fixedWindow(3, 60'000);
  CHECK(admitted(store, "k", strict, 1, 10) == 3);
  CHECK(admitted(store, "k", strict, 2, 10) == 0);
  CHECK(store.size() == 1);
}

// ---- View: one worker's cache in front of the store -----------------------------------------

TEST_CASE("view: workers deciding through their own views still admit exactly the limit") {
  LocalRateLimitStore store;
  CHECK(sharedKeyAdmitted(store, true, 500) == 1'000);
  CHECK(store.size() == 1 + 4 * 500);
}

TEST_CASE("view: a counter the store evicted is not used again; a changed limit is seen by every view") {
  const size_t maxKeys = 64;  // one entry per shard
  LocalRateLimitStore store(maxKeys);
  LocalRateLimitStore::View a(store);
  LocalRateLimitStore::View b(store);
  const auto s = fixedWindow(2, 1'000);

  SUBCASE("eviction") {
    CHECK(a.decide("k", s, 0).allowed);
    // "k" idles past its window while a flood of other keys makes every shard evict.
    for (int i = 0; i < 2'000; ++i) store.decide("flood-" + std::to_string(i), s, 5'000);
    // Were view a still on the dropped counter, a and b would count "k" apart: 2 each.
    int admittedNow = 0;
    for (int i = 0; i < 3; ++i) {
      admittedNow += a.decide("k", s, 6'000).allowed ? 1 : 0;
      admittedNow += b.decide("k", s, 6'000).allowed ? 1 : 0;
    }
    CHECK(admittedNow == 2);
  }
  SUBCASE("changed limit") {
    const auto generous = tokenBucket(1000, 1'000, 1000);
    int first = 0;
    for (int i = 0; i < 600; ++i) first += a.decide("k", generous, 0).allowed ? 1 : 0;
    CHECK(first == 600);
    // b brings another limit (a fresh counter), then the first one back (fresh again). View a
    // still holds the first counter under the very same limit: it must see it was dropped,
    // or it would admit its 400 left on top of the new counter's 1000.
    CHECK(b.decide("k", fixedWindow(3, 60'000), 1).allowed);
    int after = 0;
    for (int i = 0; i < 1'000; ++i) {
      after += b.decide("k", generous, 1).allowed ? 1 : 0;
      after += a.decide("k", generous, 1).allowed ? 1 : 0;
    }
    CHECK(after == 1'000);
  }
}
