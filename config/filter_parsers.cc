#include "config/filter_parsers.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace flowguard::config {

namespace {

std::shared_ptr<const PluginSettings> rateLimitRouteSettings(FilterSettings parsed, bool ownLimit) {
  auto settings = std::make_shared<RateLimitRouteSettings>();
  settings->config = std::get<RateLimitConfig>(std::move(parsed));
  settings->ownLimit = ownLimit;
  return settings;
}

std::vector<FilterParser>& parserTable() {
  static std::vector<FilterParser> parsers{
      {"auth", false, &parseAuthFilter},
      {"rate_limit",
       false,
       &parseRateLimitFilter,
       {"algorithm", "rate", "burst", "limit", "window", "by", "shadow"},
       {"algorithm", "rate", "burst", "limit", "window", "overrides"},
       &rateLimitRouteSettings},
      {"router", true, &parseRouterFilter},
  };
  return parsers;
}

}  // namespace

const std::vector<FilterParser>& filterParsers() {
  return parserTable();
}

const FilterParser* findFilterParser(std::string_view name) {
  for (const FilterParser& parser : filterParsers()) {
    if (parser.name == name) return &parser;
  }
  return nullptr;
}

void registerFilterParser(FilterParser parser) {
  if (findFilterParser(parser.name) != nullptr) {
    throw std::logic_error(fmt::format("filter '{}' is registered twice", parser.name));
  }
  parser.plugged = true;
  parserTable().push_back(std::move(parser));
}

namespace {

// The auth filter waives the key of an exempt request only when the gateway answers it
// itself (a cluster route still needs the key), so an entry that also matches requests a
// cluster route serves does not do what it says. Found by trying, for each entry, every
// kind of request it matches: its methods (or all common ones and every method a route
// names), its path (or its prefix and every route path or prefix under it), its host (or
// none, and every host a route names).
void warnExemptionsReachingClusters(YamlReader& r, const AuthConfig& auth, const RouterConfig& router) {
  std::vector<std::string> allMethods{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"};
  for (const Route& route : router.routes) {
    for (const std::string& m : route.match.methods) {
      if (std::find(allMethods.begin(), allMethods.end(), m) == allMethods.end()) allMethods.push_back(m);
    }
  }
  for (const RouteMatch& entry : auth.exempt) {
    std::vector<std::string> methods = entry.methods.empty() ? allMethods : entry.methods;
    std::vector<std::string> paths;
    if (!entry.path.empty()) {
      paths.push_back(entry.path);
    } else {
      paths = {entry.prefix, entry.prefix + "x"};
      for (const Route& route : router.routes) {
        for (const std::string& p : {route.match.path, route.match.prefix, route.match.prefix + "x"}) {
          if (p.starts_with(entry.prefix)) paths.push_back(p);
        }
      }
    }
    std::vector<std::string> hosts{entry.host};
    if (entry.host.empty()) {
      for (const Route& route : router.routes) {
        if (!route.match.host.empty()) hosts.push_back(route.match.host);
      }
    }
    const Route* reached = nullptr;
    std::string example;
    for (const std::string& method : methods) {
      for (const std::string& path : paths) {
        for (const std::string& host : hosts) {
          const Route* route = nullptr;
          for (const Route& candidate : router.routes) {
            if (candidate.match.matches(method, path, host)) {
              route = &candidate;
              break;
            }
          }
          if (reached == nullptr && route != nullptr && !route->cluster.empty() && !route->authDisabled) {
            reached = route;
            example = fmt::format("{} {}{}", method, path, host.empty() ? "" : " (Host: " + host + ")");
          }
        }
      }
    }
    if (reached == nullptr) continue;
    r.warning(entry.location,
              fmt::format("exempt entry also matches requests that the route at line {} forwards to "
                          "cluster '{}' (e.g. {}); an exemption applies only to answers the gateway "
                          "gives itself, so those still need a key. Narrow the entry (methods:, path:) "
                          "or, to forward them without a key, give that route "
                          "per_filter: {{ auth: {{ disabled: true }} }}",
                          reached->location.line, reached->cluster, example));
  }
}

}  // namespace

void checkFilterChain(YamlReader& r, const std::vector<FilterConfig>& filters) {
  const AuthConfig* auth = nullptr;
  const RouterConfig* router = nullptr;
  for (const FilterConfig& filter : filters) {
    if (auto* settings = std::get_if<AuthConfig>(&filter.settings)) auth = settings;
    if (auto* settings = std::get_if<RouterConfig>(&filter.settings)) router = settings;
  }
  if (router != nullptr) {
    for (const Route& route : router->routes) {
      if (route.authDisabled && auth == nullptr) {
        r.error(route.location, "route sets per_filter auth, but this listener has no auth filter");
      }
    }
    if (auth != nullptr) warnExemptionsReachingClusters(r, *auth, *router);
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
      std::string hint =
          suggestion.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", suggestion);
      r.error(entry.location,
              fmt::format("override key '{}' is not the name of a key in this listener's auth filter{}",
                          entry.key, hint));
    }
  }
}

}  // namespace flowguard::config
