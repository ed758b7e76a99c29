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

// Active health checking: the main thread sends `GET path` to every host each interval.
struct HealthCheckConfig {
  bool enabled = false;  // true when the cluster has a health_check section
  std::string path = "/health";
  Duration interval{2'000};
  Duration timeout{1'000};
  uint32_t healthyThreshold = 2;    // consecutive successes to come back (HAProxy's rise)
  uint32_t unhealthyThreshold = 3;  // consecutive failures to be taken out (HAProxy's fall)
  // Inclusive status ranges that count as healthy; YAML: [200, "200-299"]. Default 200-399.
  std::vector<std::pair<int, int>> expectedStatuses{{200, 399}};
  bool initiallyHealthy = true;     // `initial_state: healthy | unhealthy` before the first check
  SourceLocation location;
};

// Passive outlier detection: hosts that keep failing real requests are ejected for a while.
struct OutlierDetectionConfig {
  bool enabled = false;  // true when the cluster has an outlier_detection section
  uint32_t consecutive5xx = 5;              // 0 = off
  uint32_t consecutiveConnectFailures = 5;  // 0 = off
  Duration baseEjectionTime{30'000};        // ejection lasts base × number of ejections...
  Duration maxEjectionTime{300'000};        // ...capped here
  uint32_t maxEjectionPercent = 50;         // never more than this share of hosts at once
  SourceLocation location;
};

// What a retry may be triggered by (bit flags).
enum RetryOn : uint32_t {
  kRetryConnectFailure = 1u << 0,  // connect refused / timed out
  kRetryReset = 1u << 1,           // connection reset before any response byte
  kRetry5xx = 1u << 2,             // any 5xx answer, and per-try timeouts
  kRetryGatewayError = 1u << 3,    // 502, 503, 504 answers, and per-try timeouts
};

enum class NoHealthyHosts { Panic, Reject };

// Cluster-wide limits over all workers; overflow answers 503 and is counted.
struct CircuitBreakersConfig {
  uint32_t maxConnections = 1024;      // open upstream connections
  uint32_t maxPendingRequests = 1024;  // requests waiting for a connection
  uint32_t maxRequests = 1024;         // requests in flight
};

struct ClusterConfig {
  std::string name;
  std::vector<SocketAddress> hosts;
  LbPolicy lbPolicy = LbPolicy::RoundRobin;
  Duration connectTimeout{1'000};
  Duration timeout{15'000};  // upstream response: max silence while waiting/reading, 504
  int retries = 1;           // further attempts, on the conditions in retryOn
  uint32_t retryOn = kRetryConnectFailure | kRetryReset;  // YAML retry_on: [connect-failure, reset, 5xx, gateway-error]
  std::optional<Duration> perTryTimeout;  // each attempt's own limit (retried when retry_on allows)
  uint32_t retryBudgetPercent = 20;  // retries in flight at most this % of requests in flight...
  uint32_t retryBudgetMinRetries = 3;  // ...but always allow this many
  uint32_t maxConnectionsPerHost = 1024;  // per worker; more requests wait as pending
  uint32_t maxIdlePerHost = 64;           // idle keep-alive connections kept per worker
  Duration idleTimeout{30'000};           // idle pooled connection is closed after this
  HealthCheckConfig healthCheck;
  OutlierDetectionConfig outlierDetection;
  NoHealthyHosts noHealthyHosts = NoHealthyHosts::Panic;
  CircuitBreakersConfig circuitBreakers;
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
