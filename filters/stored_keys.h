// Keys from the key store (storage:) as the auth filter sees them: a KeySnapshot kept on the
// store thread and updated change by change (a key issued or revoked touches one entry, the
// other records are shared with the previous snapshot), published to one KeyRegistry that
// every auth filter consults after its own yaml keys. A key's limit is its own
// override (api_keys.limits) if it has one, else its plan's from flowguard.yaml, else none
// (the rate_limit filter's default applies).
#pragma once

#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "filters/key_registry.h"
#include "store/store.h"

namespace flowguard::filters {

// Not thread-safe: the caller serialises apply() and setPlans() (and publishes in the same order).
class StoredKeySet {
 public:
  explicit StoredKeySet(std::vector<config::Plan> plans) : plans_(std::move(plans)) {}
  explicit StoredKeySet(const config::Config& config) : plans_(config.plans) {}
  // Applies issued and revoked keys; returns the snapshot to publish.
  std::shared_ptr<const KeySnapshot> apply(const std::vector<store::StoredKey>& changed);
  // A reload changed `plans:`: keys without a limit of their own take their plan's new one.
  std::shared_ptr<const KeySnapshot> setPlans(std::vector<config::Plan> plans);

 private:
  std::optional<config::RateLimitSpec> planLimit(const std::string& plan) const;

  std::vector<config::Plan> plans_;
  KeySnapshot keys_;
  // Keys with api_keys.limits set: their limit does not follow their plan.
  std::unordered_set<KeyDigest, KeyDigestHash> ownLimit_;
};

// The keys written in flowguard.yaml (every auth filter's `keys:`, each once), as rows for
// StoreService::setConfiguredKeys.
std::vector<store::NewKey> configuredKeys(const config::Config& config, int64_t nowMs);

// A limit as JSON: {"algorithm": "token_bucket", "requests": 10, "period_ms": 1000,
// "burst": 20} (burst for token buckets only), and back (nullopt when malformed).
nlohmann::json limitToJson(const config::RateLimitSpec& limit);
std::optional<config::RateLimitSpec> limitFromJson(const nlohmann::json& json);

}  // namespace flowguard::filters
