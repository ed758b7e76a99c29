#include "filters/local_rate_limit_store.h"

#include "core/slot_hash.h"

#include <algorithm>
#include <array>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace flowguard::filters {

namespace {

constexpr size_t kShards = 64;
constexpr int64_t kMinIdleMs = 1'000;

// How long after its last use a counter is back to its initial state, so that dropping it
// changes no future decision. Token bucket: TAT is at most burst*T past the last request.
// Sliding window: a count weighs until the end of the window after it.
int64_t restingAfterMs(const config::RateLimitSpec& spec) {
  const int64_t period = std::max<int64_t>(1, spec.period.count());
  int64_t resting = period;
  switch (spec.algorithm) {
    case config::RateLimitAlgorithm::TokenBucket:
      if (spec.requests > 0) {
        const uint64_t burst = spec.burst ? spec.burst : spec.requests;
        // ceil(burst * period / requests), without overflow for sane values.
        const long double ms = static_cast<long double>(burst) * static_cast<long double>(period) /
                               static_cast<long double>(spec.requests);
        resting = std::max(resting, static_cast<int64_t>(std::min<long double>(ms + 1, 1e15L)));
      }
      break;
    case config::RateLimitAlgorithm::FixedWindow:
      break;
    case config::RateLimitAlgorithm::SlidingWindow:
      resting = 2 * period;
      break;
  }
  return std::max(resting, kMinIdleMs);
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct Entry {
  // Shared so a worker deciding on it keeps it alive even if it is evicted meanwhile; the
  // evicted counter then only sees that worker's last decision.
  std::shared_ptr<RateLimitCounter> counter;
  int64_t restingMs = kMinIdleMs;  // from the spec last used with this key
  // The limit the counter was kept for. The same key under another limit (a reload changed
  // it, or the key's plan changed) starts a fresh counter: the state of one algorithm means
  // nothing to another, and a changed limit applies at once. Unchanged limits keep theirs.
  config::RateLimitSpec spec;
};

struct Shard {
  std::mutex mutex;
  std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> entries;
  size_t sweepAt = 0;  // size at which the next eviction pass runs
};

}  // namespace

struct LocalRateLimitStore::Impl {
  explicit Impl(size_t maxKeys)
      : shardCap(std::max<size_t>(1, maxKeys / kShards)), slack(std::max<size_t>(1, shardCap / 8)) {
    for (auto& shard : shards) shard.sweepAt = shardCap + 1;
  }

  // Called with the shard locked, when it has grown past sweepAt. First drops counters that
  // are back at rest; if the shard is still over its cap (many live keys, e.g. a flood of
  // random keys), drops the least recently used ones, which a live key used all the time
  // never is. The next pass waits for at least `slack` more inserts, so the O(n) scan is
  // amortised.
  void evict(Shard& shard, int64_t nowMs) {
    std::erase_if(shard.entries, [nowMs](const auto& kv) {
      const RateLimitCounter& counter = *kv.second.counter;
      if (counter.lastUsedMs.load(std::memory_order_relaxed) >= nowMs - kv.second.restingMs) return false;
      markEvicted(kv.second);
      return true;
    });
    if (shard.entries.size() > shardCap) {
      std::vector<std::pair<int64_t, const std::string*>> byAge;
      byAge.reserve(shard.entries.size());
      for (const auto& [key, entry] : shard.entries) {
        byAge.emplace_back(entry.counter->lastUsedMs.load(std::memory_order_relaxed), &key);
      }
      const size_t drop = shard.entries.size() - shardCap;
      std::nth_element(byAge.begin(), byAge.begin() + static_cast<std::ptrdiff_t>(drop), byAge.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      // Collect the keys first: erasing invalidates the pointers into the map.
      std::vector<std::string> victims;
      victims.reserve(drop);
      for (size_t i = 0; i < drop; ++i) victims.push_back(*byAge[i].second);
      for (const auto& key : victims) {
        auto it = shard.entries.find(key);
        markEvicted(it->second);
        shard.entries.erase(it);
      }
    }
    shard.sweepAt = std::max(shardCap, shard.entries.size() + slack);
  }

  std::shared_ptr<RateLimitCounter> find(std::string_view key, const config::RateLimitSpec& spec,
                                         int64_t nowMs) {
    Shard& shard = shards[StringHash{}(key) % kShards];
    std::lock_guard lock(shard.mutex);
    auto it = shard.entries.find(key);
    if (it == shard.entries.end()) {
      if (shard.entries.size() >= shard.sweepAt) evict(shard, nowMs);
      it = shard.entries.emplace(std::string(key), Entry{nullptr, 0, spec}).first;
    }
    Entry& entry = it->second;
    if (!entry.counter || !(entry.spec == spec)) {
      markEvicted(entry);
      entry.counter = std::make_shared<RateLimitCounter>();
      // A new counter must not look idle before its first decision has run.
      entry.counter->lastUsedMs.store(nowMs, std::memory_order_relaxed);
      entry.spec = spec;
      entry.restingMs = restingAfterMs(spec);
    }
    return entry.counter;
  }

  static void markEvicted(const Entry& entry) {
    if (entry.counter) entry.counter->evicted.store(true, std::memory_order_relaxed);
  }

  size_t size() {
    size_t total = 0;
    for (auto& shard : shards) {
      std::lock_guard lock(shard.mutex);
      total += shard.entries.size();
    }
    return total;
  }

  const size_t shardCap;
  const size_t slack;
  std::array<Shard, kShards> shards;
};

LocalRateLimitStore::LocalRateLimitStore(size_t maxKeys) : impl_(std::make_unique<Impl>(maxKeys)) {}

LocalRateLimitStore::~LocalRateLimitStore() = default;

RateLimitDecision LocalRateLimitStore::decide(std::string_view key, const config::RateLimitSpec& spec,
                                              int64_t nowMs) {
  std::shared_ptr<RateLimitCounter> counter = impl_->find(key, spec, nowMs);
  return filters::decide(*counter, spec, nowMs);
}

size_t LocalRateLimitStore::size() const {
  return impl_->size();
}

RateLimitDecision LocalRateLimitStore::View::decide(std::string_view key, const config::RateLimitSpec& spec,
                                                    int64_t nowMs) {
  if (!entries_) entries_ = std::make_unique<Entry[]>(kSlots);
  Entry& entry = entries_[core::slotHash(key) & (kSlots - 1)];
  // A counter evicted just after this check gets this one decision more, as a worker that
  // had it in hand during the eviction always did: eviction only takes counters at rest.
  if (!entry.counter || entry.counter->evicted.load(std::memory_order_relaxed) || !(entry.spec == spec) ||
      entry.key != key) {
    entry.counter = store_.impl_->find(key, spec, nowMs);
    entry.key.assign(key);
    entry.spec = spec;
  }
  return filters::decide(*entry.counter, spec, nowMs);
}

}  // namespace flowguard::filters
