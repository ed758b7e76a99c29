#include "config/config.h"

#include <fmt/format.h>

#include "config/config_loader.h"

namespace flowguard::config {

std::string SocketAddress::str() const {
  // Brackets keep the port separable from an IPv6 literal's own colons.
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

namespace {

std::string_view hostWithoutPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto end = host.find(']');
    return end == std::string_view::npos ? host : host.substr(0, end + 1);
  }
  auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

bool RouteMatch::matches(std::string_view method, std::string_view requestPath,
                         std::string_view requestHost) const {
  if (!path.empty() ? requestPath != path : !requestPath.starts_with(prefix)) return false;
  if (!methods.empty()) {
    bool found = false;
    for (const auto& m : methods) found = found || m == method;
    if (!found) return false;
  }
  return host.empty() || equalsIgnoreCase(hostWithoutPort(requestHost), host);
}

bool usesKeyStore(RouteHandler kind) {
  return kind != RouteHandler::None && kind != RouteHandler::Summary && kind != RouteHandler::AdminOnly;
}

std::string AdminConfig::localUrl() const {
  SocketAddress reachable = address;
  if (reachable.host == "0.0.0.0") reachable.host = "127.0.0.1";
  if (reachable.host == "::") reachable.host = "::1";
  return "http://" + reachable.str();
}

const ClusterConfig* Config::findCluster(const std::string& name) const {
  for (const ClusterConfig& cluster : clusters) {
    if (cluster.name == name) return &cluster;
  }
  return nullptr;
}

const Plan* Config::findPlan(std::string_view name) const {
  for (const Plan& plan : plans) {
    if (plan.name == name) return &plan;
  }
  return nullptr;
}

std::string ConfigError::str() const {
  if (line <= 0) return fmt::format("{}: {}", file, message);
  return fmt::format("{}:{}:{}: {}", file, line, column, message);
}

}  // namespace flowguard::config
