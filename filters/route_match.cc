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

bool anyMatches(const std::vector<config::RouteMatch>& matches, const core::RequestHead& head) {
  for (const auto& match : matches) {
    if (routeMatches(match, head)) return true;
  }
  return false;
}

}  // namespace flowguard::filters
