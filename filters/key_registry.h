// The API keys the auth filter accepts, as an immutable snapshot: SHA-256 of the key →
// record. Whoever learns of new keys (the config, later the key store) builds a new
// snapshot and publishes it; each worker keeps a View that re-reads the snapshot only when
// the registry's version number moved, so the request path costs one relaxed atomic load
// and takes no lock. Lookups compare digests, never the plaintext key (the auth filter keeps
// the keys it accepted lately in a RecentKeys cache in front of this).
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.h"
#include "core/filter.h"

namespace flowguard::filters {

using KeyDigest = std::array<unsigned char, 32>;

// SHA-256 of `key`.
KeyDigest digestKey(std::string_view key);

struct ApiKeyRecord : core::AuthenticatedKey {
  std::string plan;
  std::optional<config::RateLimitSpec> limit;  // the key's own limit, if any
};

struct KeyDigestHash {
  size_t operator()(const KeyDigest& d) const {
    size_t h;
    static_assert(sizeof(h) <= sizeof(KeyDigest));
    __builtin_memcpy(&h, d.data(), sizeof(h));  // a digest is already uniformly spread
    return h;
  }
};

using KeySnapshot = std::unordered_map<KeyDigest, std::shared_ptr<const ApiKeyRecord>, KeyDigestHash>;

class KeyRegistry {
 public:
  explicit KeyRegistry(std::shared_ptr<const KeySnapshot> initial = std::make_shared<const KeySnapshot>())
      : snapshot_(std::move(initial)) {}

  // Any thread. Rare: a new set of keys.
  void publish(std::shared_ptr<const KeySnapshot> snapshot) {
    std::atomic_store(&snapshot_, std::move(snapshot));
    version_.fetch_add(1, std::memory_order_release);
  }

  // One worker's cached view.
  class View {
   public:
    explicit View(const KeyRegistry& registry) : registry_(registry) {}
    // The record for a presented key, or null.
    std::shared_ptr<const ApiKeyRecord> find(std::string_view key) { return find(digestKey(key)); }
    std::shared_ptr<const ApiKeyRecord> find(const KeyDigest& digest) {
      refresh();
      auto it = snapshot_->find(digest);
      return it == snapshot_->end() ? nullptr : it->second;
    }
    // Takes up the registry's latest snapshot if one was published since the last call;
    // true when it did (what this view answered before may be stale).
    bool refresh() {
      uint64_t version = registry_.version_.load(std::memory_order_acquire);
      if (snapshot_ && version == version_) return false;
      snapshot_ = std::atomic_load(&registry_.snapshot_);
      version_ = version;
      return true;
    }

   private:
    const KeyRegistry& registry_;
    std::shared_ptr<const KeySnapshot> snapshot_;
    uint64_t version_ = 0;
  };

 private:
  std::shared_ptr<const KeySnapshot> snapshot_;
  std::atomic<uint64_t> version_{1};
};

// What the logs may show of a key: its first characters (12 at most, a third at most).
std::string keyPrefix(std::string_view key);

}  // namespace flowguard::filters
