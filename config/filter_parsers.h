// Internal to config/: the table of filters flowguard.yaml knows. Each filter's YAML keys are
// parsed by its own function into its own struct; adding a filter means adding its struct to
// FilterSettings (config.h), writing its parse function, and adding one row to the table in
// filter_parsers.cc.
#pragma once

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace flowguard::config {

// What a filter parser may look at besides its own node.
struct FilterParseContext {
  YamlReader& reader;
  const std::set<std::string>& clusterNames;  // every cluster the file defines
  const RedisConfig& redis;                   // the top-level `redis:` section, parsed first
  const StorageConfig& storage;               // the top-level `storage:` section, parsed first
  const AdminConfig& admin;                   // the top-level `admin:` section, parsed first
};

// `node` is the filter's map: `name:` plus the filter's own keys at the same level. Problems
// are reported through ctx.reader; the returned settings are only used when there were none.
using FilterParseFn = FilterSettings (*)(const YAML::Node& node, FilterParseContext& ctx);

struct FilterParser {
  std::string_view name;
  // A terminal filter answers the request itself; a listener's chain must end with exactly
  // one of them (today: the router).
  bool terminal;
  FilterParseFn parse;
};

const std::vector<FilterParser>& filterParsers();
const FilterParser* findFilterParser(std::string_view name);

// One function per filter.
FilterSettings parseRouterFilter(const YAML::Node& node, FilterParseContext& ctx);
FilterSettings parseAuthFilter(const YAML::Node& node, FilterParseContext& ctx);
FilterSettings parseRateLimitFilter(const YAML::Node& node, FilterParseContext& ctx);
FilterSettings parseMetricsFilter(const YAML::Node& node, FilterParseContext& ctx);

// Checks between the filters of one listener, after each was parsed on its own: a rate-limit
// override must name a key of the listener's auth filter.
void checkFilterChain(YamlReader& r, const std::vector<FilterConfig>& filters);

// Shared by several filters. A route match (router `match:`, auth `exempt:` entries); `what`
// names the node in a wrong-type message ("'match'"), `noun` in the others ("route match").
RouteMatch parseRouteMatch(const YAML::Node& node, YamlReader& r, std::string_view what,
                           std::string_view noun);
// The limit keys of `map` (algorithm, rate, burst, limit, window); other keys of `map` are the
// caller's to check. `defaultAlgorithm` applies when `algorithm` is absent. The rate_limit
// filter, its overrides and auth keys' `limit:` all use it. False when something was reported.
bool parseRateLimitSpec(YamlReader& r, const YAML::Node& map, RateLimitAlgorithm defaultAlgorithm,
                        RateLimitSpec& out);

// The top-level `redis:` section (not a filter, but shared by filters through the context).
void parseRedis(YamlReader& r, const YAML::Node& node, RedisConfig& out);
// The top-level `storage:` and `plans:` sections.
void parseStorage(YamlReader& r, const YAML::Node& node, StorageConfig& out);
void parsePlans(YamlReader& r, const YAML::Node& node, std::vector<Plan>& out);
void parseRegister(YamlReader& r, const YAML::Node& node, RegisterConfig& out);
void parseAdmin(YamlReader& r, const YAML::Node& node, AdminConfig& out);

}  // namespace flowguard::config
