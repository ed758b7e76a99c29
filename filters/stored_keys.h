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
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "filters/key_registry.h"
#include "store/store.h"

namespace flowguard::filters {

class StoredKeySet {
 public:
  explicit StoredKeySet(const config::Config& config) : config_(config) {}
  // Applies issued and revoked keys; returns the snapshot to publish.
  std::shared_ptr<const KeySnapshot> apply(const std::vector<store::StoredKey>& changed);

 private:
  const config::Config& config_;
  KeySnapshot keys_;
};

// A limit as JSON: {"algorithm": "token_bucket", "requests": 10, "period_ms": 1000,
// "burst": 20} (burst for token buckets only), and back (nullopt when malformed).
nlohmann::json limitToJson(const config::RateLimitSpec& limit);
std::optional<config::RateLimitSpec> limitFromJson(const nlohmann::json& json);

}  // namespace flowguard::filters
