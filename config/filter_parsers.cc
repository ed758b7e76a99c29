#include "config/filter_parsers.h"

#include <fmt/format.h>

#include <algorithm>

namespace flowguard::config {

const std::vector<FilterParser>& filterParsers() {
  static const std::vector<FilterParser> kParsers{
      {"auth", false, &parseAuthFilter},
      {"rate_limit", false, &parseRateLimitFilter},
      {"metrics", false, &parseMetricsFilter},
      {"router", true, &parseRouterFilter},
  };
  return kParsers;
}

const FilterParser* findFilterParser(std::string_view name) {
  for (const FilterParser& parser : filterParsers()) {
    if (parser.name == name) return &parser;
  }
  return nullptr;
}

void checkFilterChain(YamlReader& r, const std::vector<FilterConfig>& filters) {
  const AuthConfig* auth = nullptr;
  for (const FilterConfig& filter : filters) {
    if (auto* settings = std::get_if<AuthConfig>(&filter.settings)) auth = settings;
  }
  // Without an auth filter, requests carry no key name, and overrides are left for a key
  // store to match; with one, a name it does not know is a typo that would never apply.
  if (!auth) return;
  std::vector<std::string_view> names;
  for (const StaticApiKey& key : auth->keys) names.push_back(key.name);
  for (const FilterConfig& filter : filters) {
    const auto* limits = std::get_if<RateLimitConfig>(&filter.settings);
    if (!limits) continue;
    for (const RateLimitOverride& entry : limits->overrides) {
      if (entry.key.empty() || std::find(names.begin(), names.end(), entry.key) != names.end()) continue;
      std::string_view suggestion = closestMatch(entry.key, names);
      std::string hint = suggestion.empty() ? std::string()
                                            : fmt::format(" (did you mean '{}'?)", suggestion);
      r.error(entry.location,
              fmt::format("override key '{}' is not the name of a key in this listener's auth filter{}",
                          entry.key, hint));
    }
  }
}

}  // namespace flowguard::config
