// The rate_limit filter's settings: from YAML (with FILE:LINE:COL errors), back to JSON for
// /config_dump, and the checks that need more than the filter's own map.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "filters/auth/auth.h"
#include "filters/rate_limit/rate_limit.h"
#include "filters/stored_keys.h"

namespace flowguard::filters {

using config::YamlReader;

std::shared_ptr<const RateLimitSettings> parseRateLimit(const YAML::Node& node,
                                                        config::FilterParseContext& ctx) {
  YamlReader& r = ctx.reader;
  auto settings = std::make_shared<RateLimitSettings>();
  RateLimitSettings& config = *settings;
  // A route's settings that set the limit keys (perRouteTogether) have a limit of their own.
  config.ownLimit = ctx.routeSetsTogether;
  r.checkKeys(node, "in rate_limit filter",
              {"name", "algorithm", "rate", "burst", "limit", "window", "by", "per_route", "store",
               "failure_mode", "shadow", "overrides"});
  config::parseRateLimitSpec(r, node, config::RateLimitAlgorithm::TokenBucket, config.limit);
  if (auto by = YamlReader::find(node, "by")) {
    if (auto index = r.choice(*by, "by", "rate limit key", {"api_key", "client_ip"})) {
      config.by = static_cast<RateLimitKeyBy>(*index);
    }
  }
  if (auto perRoute = YamlReader::find(node, "per_route")) {
    if (auto value = r.boolean(*perRoute, "per_route")) config.perRoute = *value;
  }
  if (auto store = YamlReader::find(node, "store")) {
    if (auto index = r.choice(*store, "store", "store", {"local", "redis"})) {
      config.store = static_cast<RateLimitStore>(*index);
      if (config.store == RateLimitStore::Redis && !ctx.redis.configured) {
        r.error(*store,
                "'store: redis' needs a top-level 'redis' section with a url "
                "(e.g. redis: { url: redis://127.0.0.1:6379 }); an empty url turns Redis off");
      }
    }
  }
  if (auto mode = YamlReader::find(node, "failure_mode")) {
    if (auto index = r.choice(*mode, "failure_mode", "failure_mode", {"allow", "deny", "local"})) {
      config.failureMode = static_cast<RateLimitFailureMode>(*index);
    }
  }
  if (auto shadow = YamlReader::find(node, "shadow")) {
    if (auto value = r.boolean(*shadow, "shadow")) config.shadow = *value;
  }
  if (auto overrides = YamlReader::find(node, "overrides")) {
    if (r.expectList(*overrides, "'overrides'")) {
      std::map<std::string, int> firstLine;
      for (const YAML::Node& item : *overrides) {
        RateLimitOverride entry;
        entry.location = YamlReader::location(item);
        if (!r.expectMap(item, "rate_limit override")) continue;
        r.checkKeys(item, "in rate_limit override", {"key", "algorithm", "rate", "burst", "limit", "window"});
        if (auto key = r.require(item, "key", "in rate_limit override")) {
          if (auto name = r.string(*key, "key")) {
            if (name->empty()) {
              r.error(*key, "'key' must not be empty");
            } else if (auto [it, inserted] = firstLine.emplace(*name, entry.location.line); !inserted) {
              r.error(*key,
                      fmt::format("duplicate override for key '{}' (first at line {})", *name, it->second));
            }
            entry.key = std::move(*name);
          }
        }
        config::parseRateLimitSpec(r, item, config.limit.algorithm, entry.limit);
        config.overrides.push_back(std::move(entry));
      }
    }
  }
  return settings;
}

nlohmann::json dumpRateLimit(const RateLimitSettings& s) {
  nlohmann::json overrides = nlohmann::json::array();
  for (const auto& o : s.overrides) overrides.push_back({{"key", o.key}, {"limit", limitToJson(o.limit)}});
  return {{"limit", limitToJson(s.limit)},
          {"by", s.by == RateLimitKeyBy::ApiKey ? "api_key" : "client_ip"},
          {"per_route", s.perRoute},
          {"store", s.store == RateLimitStore::Local ? "local" : "redis"},
          {"failure_mode", s.failureMode == RateLimitFailureMode::Allow  ? "allow"
                           : s.failureMode == RateLimitFailureMode::Deny ? "deny"
                                                                         : "local"},
          {"shadow", s.shadow},
          {"overrides", std::move(overrides)}};
}

void checkRateLimitChain(const RateLimitSettings& settings, const std::vector<config::FilterConfig>& chain,
                         YamlReader& r) {
  // Without an auth filter, requests carry no key name, and overrides are left for a key
  // store to match; with one, a name it does not know is a typo that would never apply.
  const AuthSettings* auth = nullptr;
  for (const config::FilterConfig& filter : chain) {
    if (const AuthSettings* settings = authSettingsOf(filter)) auth = settings;
  }
  if (auth == nullptr) return;
  std::vector<std::string_view> names;
  for (const StaticApiKey& key : auth->keys) names.push_back(key.name);
  for (const RateLimitOverride& entry : settings.overrides) {
    if (entry.key.empty() || std::find(names.begin(), names.end(), entry.key) != names.end()) continue;
    std::string_view suggestion = config::closestMatch(entry.key, names);
    std::string hint = suggestion.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", suggestion);
    r.error(entry.location,
            fmt::format("override key '{}' is not the name of a key in this listener's auth filter{}",
                        entry.key, hint));
  }
}

std::string rateLimitRestartNeeded(const RateLimitSettings& settings, const config::Config& running) {
  if (settings.store == RateLimitStore::Redis && !running.redis.configured) {
    return "store: redis needs a Redis connection, which this gateway started without: "
           "restart it to add the redis section";
  }
  return "";
}

}  // namespace flowguard::filters
