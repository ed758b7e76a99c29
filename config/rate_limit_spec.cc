// YAML binding of a rate limit (algorithm, rate, burst, limit, window): the rate_limit filter's
// default and overrides, auth keys' `limit:`, and the key store's plans all use it.
#include <fmt/format.h>

#include <limits>

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
      r.error(*node, fmt::format("'{}' does not apply to {} (it takes {})", key, algorithmName(out.algorithm),
                                 takes));
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

}  // namespace flowguard::config
