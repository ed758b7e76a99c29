#include "filters/path_redaction.h"

#include "filters/key_registry.h"

namespace flowguard::filters {

std::vector<std::string> keyPathPrefixes(const config::ListenerConfig& listener) {
  std::vector<std::string> prefixes;
  for (const auto& filter : listener.filters) {
    const auto* router = std::get_if<config::RouterConfig>(&filter.settings);
    if (router == nullptr) continue;
    for (const auto& route : router->routes) {
      if (route.handler.kind == config::RouteHandler::KeyMetrics) prefixes.push_back(route.match.prefix);
    }
  }
  return prefixes;
}

std::string_view redactKeyPath(std::string_view path, const std::vector<std::string>& prefixes,
                               std::string& scratch) {
  for (const std::string& prefix : prefixes) {
    if (prefix.empty() || !path.starts_with(prefix) || path.size() == prefix.size()) continue;
    std::string_view rest = path.substr(prefix.size());
    const size_t end = std::min(rest.find('/'), rest.size());
    scratch.assign(path.substr(0, prefix.size()));
    scratch.append(keyPrefix(rest.substr(0, end))).append("…").append(rest.substr(end));
    return scratch;
  }
  return path;
}

}  // namespace flowguard::filters
