// Keys from the key store (storage:) as the auth filter sees them: a KeySnapshot built on
// the store thread whenever the set of active keys changes, published to one KeyRegistry
// that every auth filter consults after its own yaml keys. A key's limit is its own
// override (api_keys.limits) if it has one, else its plan's from flowguard.yaml, else none
// (the rate_limit filter's default applies).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "filters/key_registry.h"
#include "store/store.h"

namespace flowguard::filters {

std::shared_ptr<const KeySnapshot> storedKeySnapshot(const std::vector<store::StoredKey>& active,
                                                     const config::Config& config);

// A limit as JSON: {"algorithm": "token_bucket", "requests": 10, "period_ms": 1000,
// "burst": 20} (burst for token buckets only), and back (nullopt when malformed).
nlohmann::json limitToJson(const config::RateLimitSpec& limit);
std::optional<config::RateLimitSpec> limitFromJson(const nlohmann::json& json);

}  // namespace flowguard::filters
