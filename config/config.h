// flowguard.yaml as plain immutable structs. Parsed once (config_loader.h), then shared
// read-only by every worker through std::shared_ptr<const Config>. Nothing outside config/
// reads YAML: every filter gets its own typed struct from here.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace flowguard::config {

using Duration = std::chrono::milliseconds;

// Where a value came from, for error messages and for filters that want to point at
// their own config (1-based line and column, as editors count).
struct SourceLocation {
  int line = 0;
  int column = 0;
};

struct SocketAddress {
  std::string host;  // IPv4 or IPv6 literal, or "localhost"; "0.0.0.0" binds every address
  uint16_t port = 0;
  std::string str() const;  // "host:port" ("[v6]:port" for IPv6)
};

// ---- router filter -------------------------------------------------------------------

struct RouteMatch {
  std::string prefix;  // path starts with this (exactly one of prefix / path is set)
  std::string path;    // path equals this
  std::vector<std::string> methods;  // empty: any method
  std::string host;    // empty: any Host; otherwise compared case-insensitively, port ignored
};

struct DirectResponse {
  int status = 200;
  std::string body;
  std::string contentType = "application/json";
};

struct Route {
  RouteMatch match;
  std::string cluster;  // set when the route proxies
  std::optional<DirectResponse> directResponse;  // set when the route answers itself
  std::optional<Duration> timeout;  // overrides the cluster's response timeout
  std::optional<int> retries;       // overrides the cluster's retries
  SourceLocation location;
};

struct RouterConfig {
  std::vector<Route> routes;
};

// One entry of a listener's `filters:` list. Later issues add their structs to the variant.
using FilterSettings = std::variant<RouterConfig>;

struct FilterConfig {
  std::string name;  // "router", ...
  FilterSettings settings;
  SourceLocation location;
};

// ---- listeners and clusters ----------------------------------------------------------

struct ListenerConfig {
  std::string name;
  SocketAddress address;
  std::vector<FilterConfig> filters;
  size_t maxHeaderBytes = 16 * 1024;       // request line + headers, over it: 431
  size_t maxHeaders = 100;                 // over it: 431
  uint64_t maxRequestBody = 10ull << 20;   // bytes, over it: 413 (0 = unlimited)
  Duration headerTimeout{10'000};          // first byte to end of headers
  Duration idleTimeout{60'000};            // keep-alive connection with no request
  SourceLocation location;
};

enum class LbPolicy { RoundRobin };

struct ClusterConfig {
  std::string name;
  std::vector<SocketAddress> hosts;
  LbPolicy lbPolicy = LbPolicy::RoundRobin;
  Duration connectTimeout{1'000};
  Duration timeout{15'000};  // upstream response: max silence while waiting/reading, 504
  int retries = 1;           // further hosts tried after a connect failure or early reset
  uint32_t maxConnectionsPerHost = 1024;  // per worker; more requests wait as pending
  uint32_t maxPendingRequests = 1024;     // per worker; beyond it: 503
  uint32_t maxIdlePerHost = 64;           // idle keep-alive connections kept per worker
  Duration idleTimeout{30'000};           // idle pooled connection is closed after this
  SourceLocation location;
};

struct Config {
  std::string sourcePath;  // file it was loaded from, for messages
  unsigned workers = 0;    // 0 = auto (one per core)
  std::vector<ListenerConfig> listeners;
  std::vector<ClusterConfig> clusters;

  const ClusterConfig* findCluster(const std::string& name) const;
};

}  // namespace flowguard::config
