// YAML binding of the router filter: `routes:`, each a match plus a cluster or a direct
// response.
#include <fmt/format.h>

#include <algorithm>

#include "config/filter_parsers.h"
#include "config/units.h"
#include "core/http_message.h"

namespace flowguard::config {
namespace {

constexpr int64_t kMaxRetries = 10;

DirectResponse parseDirectResponse(const YAML::Node& node, YamlReader& r) {
  DirectResponse response;
  if (!r.expectMap(node, "'direct_response'")) return response;
  r.checkKeys(node, "in direct_response", {"status", "body", "content_type"});
  if (auto status = YamlReader::find(node, "status")) {
    if (auto value = r.integer(*status, "status", 100, 599)) response.status = static_cast<int>(*value);
  }
  if (auto body = YamlReader::find(node, "body")) {
    if (auto value = r.string(*body, "body")) response.body = std::move(*value);
  }
  if (auto type = YamlReader::find(node, "content_type")) {
    if (auto value = r.string(*type, "content_type")) response.contentType = std::move(*value);
  }
  return response;
}

// In RouteHandler's order, after None.
const std::vector<std::string_view> kHandlers{"register",   "list_keys", "view_logs",  "key_metrics",
                                              "revoke_key", "summary",   "admin_only", "update_key"};

}  // namespace

std::string_view routeHandlerName(RouteHandler kind) {
  const auto index = static_cast<size_t>(kind);
  return index == 0 || index > kHandlers.size() ? "none" : kHandlers[index - 1];
}

namespace {

// `handler: register`, or `handler: { name: key_metrics, any_key: true }`.
HandlerConfig parseHandler(const YAML::Node& node, FilterParseContext& ctx, const RouteMatch& match) {
  YamlReader& r = ctx.reader;
  HandlerConfig handler;
  YAML::Node nameNode = node;
  if (node.IsMap()) {
    r.checkKeys(node, "in handler", {"name", "any_key", "unique_names"});
    auto name = r.require(node, "name", "in handler");
    if (!name) return handler;
    nameNode.reset(*name);  // not `=`: that would overwrite the map node itself
  }
  auto index = r.choice(nameNode, "handler", "handler", kHandlers);
  if (!index) return handler;
  handler.kind = static_cast<RouteHandler>(*index + 1);
  if (node.IsMap()) {
    if (auto anyKey = YamlReader::find(node, "any_key")) {
      if (auto value = r.boolean(*anyKey, "any_key")) handler.anyKey = *value;
      if (handler.kind != RouteHandler::KeyMetrics)
        r.error(*anyKey, "'any_key' applies to the key_metrics handler only");
    }
    if (auto unique = YamlReader::find(node, "unique_names")) {
      if (auto value = r.boolean(*unique, "unique_names")) handler.uniqueNames = *value;
      if (handler.kind != RouteHandler::Register)
        r.error(*unique, "'unique_names' applies to the register handler only");
    }
  }
  if (handler.kind == RouteHandler::AdminOnly && !ctx.admin.configured) {
    r.error(nameNode,
            "handler 'admin_only' names the admin listener's URL: add a top-level 'admin' section "
            "(e.g. admin: { address: 127.0.0.1:9901 })");
  }
  if (usesKeyStore(handler.kind) && !ctx.storage.configured) {
    r.error(nameNode, fmt::format("handler '{}' needs a top-level 'storage' section "
                                  "(e.g. storage: {{ url: sqlite://./flowguard.db }})",
                                  kHandlers[*index]));
  }
  // These two read an argument from the rest of the path.
  const bool takesArgument = handler.kind == RouteHandler::KeyMetrics ||
                             handler.kind == RouteHandler::RevokeKey ||
                             handler.kind == RouteHandler::UpdateKey;
  if (takesArgument && (match.prefix.empty() || match.prefix.back() != '/')) {
    r.error(nameNode,
            fmt::format("handler '{}' reads the {} from the path after the route's prefix: match it "
                        "with a prefix ending in '/', e.g. {{ prefix: {} }}",
                        kHandlers[*index], handler.kind == RouteHandler::KeyMetrics ? "key" : "key id",
                        handler.kind == RouteHandler::KeyMetrics ? "/metrics/" : "/keys/"));
  }
  return handler;
}

// `per_filter: { <filter>: { disabled: true } }`, or some of the keys the filter allows per
// route: they replace the listener's, and the filter's own parser reads the result (so every
// check and error position is the same as for the listener's entry).
void parseFilterPerRoute(const YAML::Node& entry, const std::string& name, const YAML::Node& listenerNode,
                         FilterParseContext& ctx, Route& route) {
  YamlReader& r = ctx.reader;
  const FilterParser* parser = findFilterParser(name);
  if (!r.expectMap(entry, fmt::format("per_filter '{}'", name)) || parser == nullptr) return;
  std::vector<std::string_view> allowed{"disabled"};
  for (const std::string& key : parser->perRouteKeys) allowed.push_back(key);
  std::vector<std::string_view> given;
  for (const auto& item : entry) {
    if (!item.first.IsScalar()) continue;
    const std::string& key = item.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string_view suggestion = closestMatch(key, allowed);
      r.error(item.first,
              fmt::format("'{}' cannot be set per route for filter '{}' (per route: {}){}", key, name,
                          fmt::join(allowed, ", "),
                          suggestion.empty() ? "" : fmt::format("; did you mean '{}'?", suggestion)));
      return;
    }
    given.push_back(key);
  }
  if (given.empty()) {
    r.error(
        entry,
        fmt::format("per_filter '{}' is empty: say 'disabled: true' or give settings for this route", name));
    return;
  }
  RoutePerFilter out;
  out.filter = name;
  out.location = YamlReader::location(entry);
  if (auto disabled = YamlReader::find(entry, "disabled")) {
    if (auto value = r.boolean(*disabled, "disabled")) out.disabled = *value;
  }
  if (given.size() > 1 || given.front() != "disabled") {
    if (out.disabled) {
      r.error(entry,
              fmt::format("per_filter '{}' turns the filter off and sets it: do one or the other", name));
      return;
    }
    // The listener's map with this route's keys in their place (a group of keys that go
    // together is replaced whole when the route sets one of them).
    auto inGroup = [&](const std::string& key) {
      const auto& group = parser->perRouteTogether;
      return std::find(group.begin(), group.end(), key) != group.end();
    };
    bool routeSetsGroup = std::any_of(given.begin(), given.end(),
                                      [&](std::string_view key) { return inGroup(std::string(key)); });
    YAML::Node merged(YAML::NodeType::Map);
    for (const auto& item : listenerNode) {
      const std::string key = item.first.Scalar();
      if (YamlReader::find(entry, key) || (routeSetsGroup && inGroup(key))) continue;
      merged[item.first] = item.second;
    }
    for (const auto& item : entry) {
      if (item.first.Scalar() != "disabled") merged[item.first] = item.second;
    }
    const size_t errorsBefore = r.errors().size();
    ctx.routeSetsTogether = routeSetsGroup;
    FilterSettings settings = parser->parse(merged, ctx);
    ctx.routeSetsTogether = false;
    if (r.errors().size() != errorsBefore) return;
    if (const auto* plugged = std::get_if<PluginFilterConfig>(&settings)) out.settings = plugged->settings;
  }
  route.perFilter.push_back(std::move(out));
}

void parsePerFilter(const YAML::Node& node, FilterParseContext& ctx, Route& route) {
  YamlReader& r = ctx.reader;
  if (!r.expectMap(node, "'per_filter'")) return;
  std::vector<std::string_view> names;
  for (const auto& [name, filterNode] : ctx.earlierFilters) names.push_back(name);
  std::vector<std::string> seen;
  for (const auto& item : node) {
    std::optional<std::string> name = r.string(item.first, "per_filter key");
    if (!name) continue;
    if (std::find(seen.begin(), seen.end(), *name) != seen.end()) {
      r.error(item.first, fmt::format("per_filter '{}' is given twice on this route", *name));
      continue;
    }
    seen.push_back(*name);
    auto earlier = std::find_if(ctx.earlierFilters.begin(), ctx.earlierFilters.end(),
                                [&](const auto& f) { return f.first == *name; });
    if (earlier == ctx.earlierFilters.end()) {
      std::string_view suggestion = closestMatch(*name, names);
      r.error(item.first,
              fmt::format("per_filter '{}': this listener has no filter '{}' before the router ({})", *name,
                          *name,
                          suggestion.empty() ? fmt::format("its filters: {}", fmt::join(names, ", "))
                                             : fmt::format("did you mean '{}'?", suggestion)));
      continue;
    }
    parseFilterPerRoute(item.second, *name, earlier->second, ctx, route);
  }
}

Route parseRoute(const YAML::Node& node, FilterParseContext& ctx) {
  YamlReader& r = ctx.reader;
  Route route;
  route.location = YamlReader::location(node);
  if (!r.expectMap(node, "route")) return route;
  r.checkKeys(node, "in route",
              {"match", "cluster", "direct_response", "handler", "timeout", "retries", "per_filter"});
  if (auto match = r.require(node, "match", "in route")) {
    route.match = parseRouteMatch(*match, r, "'match'", "route match");
  }
  std::optional<YAML::Node> cluster = YamlReader::find(node, "cluster");
  std::optional<YAML::Node> direct = YamlReader::find(node, "direct_response");
  std::optional<YAML::Node> handler = YamlReader::find(node, "handler");
  if (int(cluster.has_value()) + int(direct.has_value()) + int(handler.has_value()) != 1) {
    r.error(node, "route needs exactly one of 'cluster', 'direct_response' or 'handler'");
  }
  if (cluster) {
    if (auto name = r.string(*cluster, "cluster")) {
      if (ctx.clusterNames.count(*name) == 0) {
        r.error(*cluster, fmt::format("route refers to undefined cluster '{}'", *name));
      }
      route.cluster = std::move(*name);
    }
  }
  if (direct) route.directResponse = parseDirectResponse(*direct, r);
  if (handler) route.handler = parseHandler(*handler, ctx, route.match);
  if (auto timeout = YamlReader::find(node, "timeout"))
    route.timeout = r.positiveDuration(*timeout, "timeout");
  if (auto retries = YamlReader::find(node, "retries")) {
    if (auto value = r.integer(*retries, "retries", 0, kMaxRetries)) route.retries = static_cast<int>(*value);
  }
  if (auto perFilter = YamlReader::find(node, "per_filter")) parsePerFilter(*perFilter, ctx, route);
  return route;
}

}  // namespace

RouteMatch parseRouteMatch(const YAML::Node& node, YamlReader& r, std::string_view what,
                           std::string_view noun) {
  RouteMatch match;
  match.location = YamlReader::location(node);
  if (!r.expectMap(node, what)) return match;
  r.checkKeys(node, fmt::format("in {}", noun), {"prefix", "path", "methods", "host"});
  std::optional<YAML::Node> prefix = YamlReader::find(node, "prefix");
  std::optional<YAML::Node> path = YamlReader::find(node, "path");
  if (prefix.has_value() == path.has_value()) {
    r.error(node, fmt::format("{} needs exactly one of 'prefix' or 'path'", noun));
  }
  auto readPath = [&](const std::optional<YAML::Node>& value, std::string_view key, std::string& out) {
    if (!value) return;
    std::optional<std::string> text = r.string(*value, key);
    if (!text) return;
    if (text->empty() || (*text)[0] != '/') {
      r.error(*value, fmt::format("'{}' must start with '/', got '{}'", key, *text));
      return;
    }
    out = std::move(*text);
  };
  readPath(prefix, "prefix", match.prefix);
  readPath(path, "path", match.path);
  if (std::optional<YAML::Node> methods = YamlReader::find(node, "methods")) {
    if (methods->IsSequence()) {
      for (const YAML::Node& item : *methods) {
        std::optional<std::string> method = r.string(item, "methods entry");
        if (!method) continue;
        if (!core::isToken(*method)) {
          r.error(item,
                  fmt::format("invalid HTTP method '{}': expected a token such as GET or POST", *method));
          continue;
        }
        match.methods.push_back(std::move(*method));
      }
    } else {
      r.expectList(*methods, "'methods'");
    }
  }
  if (std::optional<YAML::Node> host = YamlReader::find(node, "host")) {
    if (std::optional<std::string> text = r.string(*host, "host")) {
      if (text->empty()) {
        r.error(*host, "'host' must not be empty (leave it out to match any host)");
      } else {
        match.host = std::move(*text);
      }
    }
  }
  return match;
}

FilterSettings parseRouterFilter(const YAML::Node& node, FilterParseContext& ctx) {
  YamlReader& r = ctx.reader;
  RouterConfig router;
  r.checkKeys(node, "in router filter", {"name", "routes"});
  std::optional<YAML::Node> routes = r.require(node, "routes", "in router filter");
  if (!routes || !r.expectList(*routes, "'routes'")) return router;
  if (routes->size() == 0) r.error(*routes, "router needs at least one route");
  for (const YAML::Node& route : *routes) router.routes.push_back(parseRoute(route, ctx));
  return router;
}

}  // namespace flowguard::config
