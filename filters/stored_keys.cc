#include "filters/stored_keys.h"

#include <fmt/format.h>

#include <set>
#include <variant>

#include "filters/auth/auth.h"

namespace flowguard::filters {

namespace {

constexpr const char* kAlgorithmNames[] = {"token_bucket", "fixed_window", "sliding_window"};

}  // namespace

nlohmann::json limitToJson(const config::RateLimitSpec& limit) {
  nlohmann::json json = {{"algorithm", kAlgorithmNames[static_cast<size_t>(limit.algorithm)]},
                         {"requests", limit.requests},
                         {"period_ms", limit.period.count()}};
  if (limit.algorithm == config::RateLimitAlgorithm::TokenBucket) json["burst"] = limit.burst;
  return json;
}

std::optional<config::RateLimitSpec> limitFromJson(const nlohmann::json& json) {
  if (!json.is_object()) return std::nullopt;
  config::RateLimitSpec limit;
  const auto algorithm = json.find("algorithm");
  const auto requests = json.find("requests");
  const auto period = json.find("period_ms");
  // Integers of either signedness (nlohmann keeps the type they were written with).
  if (algorithm == json.end() || !algorithm->is_string() || requests == json.end() ||
      !requests->is_number_integer() || period == json.end() || !period->is_number_integer() ||
      requests->get<int64_t>() <= 0 || period->get<int64_t>() <= 0) {
    return std::nullopt;
  }
  bool known = false;
  for (size_t i = 0; i < std::size(kAlgorithmNames); ++i) {
    if (*algorithm == kAlgorithmNames[i]) {
      limit.algorithm = static_cast<config::RateLimitAlgorithm>(i);
      known = true;
    }
  }
  limit.requests = requests->get<uint64_t>();
  limit.period = config::Duration(period->get<int64_t>());
  if (!known || limit.requests == 0 || limit.period.count() <= 0) return std::nullopt;
  limit.burst = limit.requests;
  if (auto burst = json.find("burst"); burst != json.end()) {
    if (!burst->is_number_integer() || burst->get<int64_t>() <= 0) return std::nullopt;
    limit.burst = burst->get<uint64_t>();
  }
  return limit;
}

std::optional<config::RateLimitSpec> StoredKeySet::planLimit(const std::string& plan) const {
  for (const config::Plan& p : plans_) {
    if (p.name == plan) return p.limit;
  }
  return std::nullopt;
}

std::shared_ptr<const KeySnapshot> StoredKeySet::setPlans(std::vector<config::Plan> plans) {
  plans_ = std::move(plans);
  for (auto& [digest, record] : keys_) {
    if (ownLimit_.contains(digest)) continue;
    std::optional<config::RateLimitSpec> limit = planLimit(record->plan);
    if (limit == record->limit) continue;
    auto updated = std::make_shared<ApiKeyRecord>(*record);  // snapshots in use keep the old one
    updated->limit = limit;
    record = std::move(updated);
  }
  return std::make_shared<const KeySnapshot>(keys_);
}

std::vector<store::NewKey> configuredKeys(const config::Config& config, int64_t nowMs) {
  std::vector<store::NewKey> keys;
  std::set<KeyDigest> seen;
  for (const auto& listener : config.listeners) {
    for (const auto& filter : listener.filters) {
      const AuthSettings* auth = authSettingsOf(filter);
      if (auth == nullptr) continue;
      for (const auto& key : auth->keys) {
        store::NewKey row;
        row.digest = digestKey(key.key);
        if (!seen.insert(row.digest).second) continue;
        row.prefix = keyPrefix(key.key);
        row.name = key.name;
        row.plan = key.plan;
        row.createdAtMs = nowMs;
        keys.push_back(std::move(row));
      }
    }
  }
  return keys;
}

std::shared_ptr<const KeySnapshot> StoredKeySet::apply(const std::vector<store::StoredKey>& changed) {
  for (const store::StoredKey& key : changed) {
    // A configured key is the yaml's to authenticate: removed from the file, it must stop
    // working even though its row stays (for its usage).
    if (key.revokedAtMs || key.configured) {
      keys_.erase(key.digest);
      ownLimit_.erase(key.digest);
      continue;
    }
    auto record = std::make_shared<ApiKeyRecord>();
    record->id = fmt::format("key:{}", key.id);
    record->name = key.name.empty() ? key.prefix : key.name;
    record->prefix = key.prefix;
    record->storedKeyId = key.id;
    record->digest = key.digest;
    record->plan = key.plan;
    if (!key.limits.empty()) {
      record->limit = limitFromJson(nlohmann::json::parse(key.limits, nullptr, false));
    }
    if (record->limit) {
      ownLimit_.insert(key.digest);
    } else {
      ownLimit_.erase(key.digest);
      record->limit = planLimit(key.plan);
    }
    keys_.insert_or_assign(key.digest, std::move(record));
  }
  return std::make_shared<const KeySnapshot>(keys_);
}

}  // namespace flowguard::filters
