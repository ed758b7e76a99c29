#include "config/filter_parsers.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace flowguard::config {

namespace {

std::vector<FilterParser>& parserTable() {
  static std::vector<FilterParser> parsers{
      {"auth", false, &parseAuthFilter},
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
  for (const FilterConfig& filter : filters) {
    const auto* plugged = std::get_if<PluginFilterConfig>(&filter.settings);
    const FilterParser* parser = findFilterParser(filter.name);
    if (plugged != nullptr && plugged->settings != nullptr && parser != nullptr && parser->checkChain) {
      parser->checkChain(*plugged->settings, filters, r);
    }
  }
}

}  // namespace flowguard::config
