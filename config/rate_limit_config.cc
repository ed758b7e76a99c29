// YAML binding of the rate_limit filter, and of the limit block it shares with its overrides
// and with auth keys' `limit:`.
#include <fmt/format.h>

#include <limits>
#include <map>

#include "config/filter_parsers.h"
#include "config/units.h"

namespace flowguard::config {
namespace {

constexpr int64_t kMaxCount = std::numeric_limits<int64_t>::max();

const std::vector<std::string_view> kAlgorithms{"token_bucket", "fixed_window", "sliding_window"};

std::string_view algorithmName(RateLimitAlgorithm algorithm) {
  return kAlgorithms[static_cast<size_t>(algorithm)];
}

}  // namespace

bool parseRateLimitSpec(YamlReader& r, const YAML::Node& map, RateLimitAlgorithm defaultAlgorithm,
                        RateLimitSpec& out) {
  out = RateLimitSpec{};
  out.algorithm = defaultAlgorithm;
  if (auto node = YamlReader::find(map, "algorithm")) {
    std::optional<size_t> index = r.choice(*node, "algorithm", "algorithm", kAlgorithms);
    // Which keys belong depends on the algorithm; checking them against a guess would only
    // add errors the operator did not make.
    if (!index) return false;
    out.algorithm = static_cast<RateLimitAlgorithm>(*index);
  }
  const bool bucket = out.algorithm == RateLimitAlgorithm::TokenBucket;
  bool ok = true;

  // Keys of the other algorithm family are errors, not ignored: an operator who writes
  // `window: 1m` under token_bucket believes a window is in force.
  const std::string_view takes = bucket ? "'rate' and 'burst'" : "'limit' and 'window'";
  for (std::string_view key : bucket ? std::vector<std::string_view>{"limit", "window"}
                                     : std::vector<std::string_view>{"rate", "burst"}) {
    if (auto node = YamlReader::find(map, key)) {
      r.error(*node, fmt::format("'{}' does not apply to {} (it takes {})", key,
                                 algorithmName(out.algorithm), takes));
      ok = false;
    }
  }
  // After a key of the other family, the missing keys of this one are the same mistake;
  // the message above already says which keys to write.
  const std::string context = fmt::format("for algorithm {}", algorithmName(out.algorithm));
  const bool mismatched = !ok;
  auto required = [&](std::string_view key) {
    return mismatched ? YamlReader::find(map, key) : r.require(map, key, context);
  };

  if (bucket) {
    if (auto rate = required("rate")) {
      if (std::optional<std::string> text = r.string(*rate, "rate")) {
        std::string reason;
        if (!parseRate(*text, out.requests, out.period, reason)) {
          r.error(*rate, fmt::format("invalid rate '{}' for 'rate': {}", *text, reason));
          ok = false;
        }
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    out.burst = out.requests;  // a bucket as deep as one period's requests unless told otherwise
    if (auto burst = YamlReader::find(map, "burst")) {
      if (auto value = r.integer(*burst, "burst", 1, kMaxCount)) {
        out.burst = static_cast<uint64_t>(*value);
      } else {
        ok = false;
      }
    }
  } else {
    if (auto limit = required("limit")) {
      if (auto value = r.integer(*limit, "limit", 1, kMaxCount)) {
        out.requests = static_cast<uint64_t>(*value);
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    if (auto window = required("window")) {
      if (auto value = r.positiveDuration(*window, "window")) {
        out.period = *value;
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  return ok;
}

FilterSettings parseRateLimitFilter(const YAML::Node& node, FilterParseContext& ctx) {
  YamlReader& r = ctx.reader;
  RateLimitConfig config;
  r.checkKeys(node, "in rate_limit filter",
              {"name", "algorithm", "rate", "burst", "limit", "window", "by", "per_route", "store",
               "failure_mode", "shadow", "overrides"});
  parseRateLimitSpec(r, node, RateLimitAlgorithm::TokenBucket, config.limit);
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
        r.error(*store, "'store: redis' needs a top-level 'redis' section with a url "
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
        r.checkKeys(item, "in rate_limit override",
                    {"key", "algorithm", "rate", "burst", "limit", "window"});
        if (auto key = r.require(item, "key", "in rate_limit override")) {
          if (auto name = r.string(*key, "key")) {
            if (name->empty()) {
              r.error(*key, "'key' must not be empty");
            } else if (auto [it, inserted] = firstLine.emplace(*name, entry.location.line); !inserted) {
              r.error(*key, fmt::format("duplicate override for key '{}' (first at line {})", *name,
                                        it->second));
            }
            entry.key = std::move(*name);
          }
        }
        parseRateLimitSpec(r, item, config.limit.algorithm, entry.limit);
        config.overrides.push_back(std::move(entry));
      }
    }
  }
  return config;
}

}  // namespace flowguard::config
