#include "filters/route_match.h"

namespace flowguard::filters {

namespace {

std::string_view hostWithoutPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto end = host.find(']');
    return end == std::string_view::npos ? host : host.substr(0, end + 1);
  }
  auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

}  // namespace

bool routeMatches(const config::RouteMatch& m, const core::RequestHead& head) {
  std::string_view path = head.path();
  if (!m.path.empty() ? path != m.path : !path.starts_with(m.prefix)) return false;
  if (!m.methods.empty()) {
    bool found = false;
    for (const auto& method : m.methods) found = found || method == head.method;
    if (!found) return false;
  }
  if (!m.host.empty() && !core::equalsIgnoreCase(hostWithoutPort(head.headers.get("host")), m.host)) return false;
  return true;
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
