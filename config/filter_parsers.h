// config/'s table of the filters flowguard.yaml knows, and what a filter parser is given.
// Each filter's YAML keys are parsed by its own function into its own settings. The one filter
// config/ types itself, the router (its routes are the listener's, which every filter may look
// up), is the first row of the table in filter_parsers.cc; a filter in a folder of its own under
// filters/ adds its row at start-up with registerFilterParser (filters/README.md), and its
// settings derive from PluginSettings.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>
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
  // The filters of the listener being parsed that come before this one, with their YAML maps
  // (the router reads them for routes' per_filter settings).
  std::vector<std::pair<std::string, YAML::Node>> earlierFilters = {};
  // Set while a route's per_filter settings are parsed, when the route sets keys of the
  // filter's perRouteTogether (rate_limit: the route has a limit of its own).
  bool routeSetsTogether = false;
};

// `node` is the filter's map: `name:` plus the filter's own keys at the same level. Problems
// are reported through ctx.reader; the returned settings are only used when there were none.
using FilterParseFn = std::function<FilterSettings(const YAML::Node& node, FilterParseContext& ctx)>;

struct FilterParser {
  std::string name;
  // A terminal filter answers the request itself; a listener's chain must end with exactly
  // one of them (today: the router).
  bool terminal = false;
  FilterParseFn parse;
  // The keys a route's `per_filter: { <name>: {...} }` may replace (any plugged filter may
  // also say `disabled: true`). Empty: the filter can only be turned off per route.
  std::vector<std::string> perRouteKeys = {};
  // Keys that go together: a route that sets any of them replaces all of them (rate_limit's
  // rate, burst, limit...: a route's fixed window does not inherit the listener's burst).
  std::vector<std::string> perRouteTogether = {};
  bool plugged = false;  // registered by a filter of its own folder (registerFilterParser)
  // Checks between the filters of one listener, after each was parsed on its own (rate_limit:
  // its overrides must name keys of the listener's auth filter). Null: none.
  std::function<void(const PluginSettings& settings, const std::vector<FilterConfig>& chain,
                     YamlReader& reader)>
      checkChain = {};
  // Why a reload cannot apply the settings to the gateway running `running` (rate_limit: Redis
  // it started without), "" when it can. Null: it always can.
  std::function<std::string(const PluginSettings& settings, const Config& running)> restartNeeded = {};
};

// The built-in rows first, then every registered one, in registration order.
const std::vector<FilterParser>& filterParsers();
const FilterParser* findFilterParser(std::string_view name);

// Adds a plugged filter's row. Called once per filter at start-up, before any config is
// loaded and before any other thread runs; a name already known is a programming error
// (std::logic_error).
void registerFilterParser(FilterParser parser);

// The parse function of a plugged filter: `parse` returns its settings (or null after it
// reported a problem through ctx.reader), wrapped as the FilterSettings alternative.
template <class Settings>
FilterParseFn pluginParser(std::shared_ptr<const Settings> (*parse)(const YAML::Node&, FilterParseContext&)) {
  return [parse](const YAML::Node& node, FilterParseContext& ctx) -> FilterSettings {
    return PluginFilterConfig{parse(node, ctx)};
  };
}

// One function per filter.
FilterSettings parseRouterFilter(const YAML::Node& node, FilterParseContext& ctx);

// Checks between the filters of one listener, after each was parsed on its own: each
// plugged filter's checkChain.
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
