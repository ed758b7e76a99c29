#include "filters/route_match.h"

namespace flowguard::filters {

bool routeMatches(const config::RouteMatch& m, const core::RequestHead& head) {
  return m.matches(head.method, head.path(), m.host.empty() ? std::string_view() : head.headers.get("host"));
}

const config::Route* matchRoute(const config::RouterConfig& config, const core::RequestHead& head) {
  for (const auto& route : config.routes) {
    if (routeMatches(route.match, head)) return &route;
  }
  return nullptr;
}

const config::Route* routeFor(const config::RouterConfig& config, const core::RequestHead& head,
                              core::StreamInfo& info) {
  if (info.routeTable != &config) {
    info.routeTable = &config;
    info.route = matchRoute(config, head);
  }
  return static_cast<const config::Route*>(info.route);
}

bool anyMatches(const std::vector<config::RouteMatch>& matches, const core::RequestHead& head) {
  for (const auto& match : matches) {
    if (routeMatches(match, head)) return true;
  }
  return false;
}

nlohmann::json routeMatchJson(const config::RouteMatch& m) {
  nlohmann::json j = nlohmann::json::object();
  if (!m.prefix.empty()) j["prefix"] = m.prefix;
  if (!m.path.empty()) j["path"] = m.path;
  if (!m.methods.empty()) j["methods"] = m.methods;
  if (!m.host.empty()) j["host"] = m.host;
  return j;
}

}  // namespace flowguard::filters
