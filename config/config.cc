#include "config/config.h"

#include <fmt/format.h>

#include "config/config_loader.h"

namespace flowguard::config {

std::string SocketAddress::str() const {
  // Brackets keep the port separable from an IPv6 literal's own colons.
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
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
