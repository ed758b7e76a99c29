// flowguard.yaml as plain immutable structs. Parsed once (config_loader.h), then shared
// read-only by every worker through std::shared_ptr<const Config>. YAML is read only here and
// by the parsers plugged filters register (filters/README.md): every filter gets its own
// typed struct.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/filter_plugin.h"
#include "core/ip_range.h"

namespace flowguard::config {

using Duration = std::chrono::milliseconds;

// Where a value came from, for error messages and for filters that want to point at
// their own config (1-based line and column, as editors count).
struct SourceLocation {
  int line = 0;
  int column = 0;
  // Where a value is written is not part of the value: a reload that only moves a cluster
  // down the file leaves it unchanged (and its pools and health state in place).
  friend bool operator==(const SourceLocation&, const SourceLocation&) { return true; }
};

struct SocketAddress {
  std::string host;  // IPv4 or IPv6 literal, or "localhost"; "0.0.0.0" binds every address
  uint16_t port = 0;
  std::string str() const;  // "host:port" ("[v6]:port" for IPv6)
  bool operator==(const SocketAddress&) const = default;
};

// ---- router filter -------------------------------------------------------------------

struct RouteMatch {
  std::string prefix;                // path starts with this (exactly one of prefix / path is set)
  std::string path;                  // path equals this
  std::vector<std::string> methods;  // empty: any method
  std::string host;                  // empty: any Host; otherwise compared case-insensitively, port ignored
  SourceLocation location;
  // `host` is the request's Host header as sent (a port in it is ignored).
  bool matches(std::string_view method, std::string_view path, std::string_view host) const;
  bool operator==(const RouteMatch&) const = default;
};

struct DirectResponse {
  int status = 200;
  std::string body;
  std::string contentType = "application/json";
  bool operator==(const DirectResponse&) const = default;
};

// Answers the gateway computes itself, by route. From the key store (storage:):
//   register     POST: issues a new API key (201 {api_key, key_id, prefix, limits})
//   list_keys    GET: every stored key with its usage (never the key or its hash)
//   view_logs    GET ?limit=N&key=PREFIX&status=S: the request log, newest first
//   key_metrics  GET <prefix>{api-key}: one key's counts, ratios and latency percentiles
//   revoke_key   DELETE <prefix>{id}: the key stops working within a second
//   update_key   PATCH <prefix>{id} {"plan": "pro"}: an operator moves a key to another plan
// From the gateway's own counters:
//   summary      GET: the original FlowGuard's /metrics (ratios, latency, healthy hosts)
//   admin_only   any: 404 naming the admin listener's URL for this path (/all_keys...)
enum class RouteHandler {
  None,
  Register,
  ListKeys,
  ViewLogs,
  KeyMetrics,
  RevokeKey,
  Summary,
  AdminOnly,
  UpdateKey
};

// Whether the handler answers from the key store (and so needs `storage:`).
bool usesKeyStore(RouteHandler kind);
// Its name in flowguard.yaml ("register", ...; "none").
std::string_view routeHandlerName(RouteHandler kind);

struct HandlerConfig {
  RouteHandler kind = RouteHandler::None;
  // key_metrics: answer for any key. Off, a caller sees only the key it authenticated with
  // (the auth filter must run before the router); for trusted listeners only.
  bool anyKey = false;
  // register: a name (or the original's "owner") already held by an active key gets 409.
  bool uniqueNames = false;
  bool operator==(const HandlerConfig&) const = default;
};

// `per_filter: { <filter>: {...} }` of a route, for a filter in its own folder or rate_limit:
// off on this route, or other settings here (the listener's, with the keys given on the route
// replaced).
struct RoutePerFilter {
  std::string filter;                              // its name in the listener's chain
  bool disabled = false;                           // `disabled: true`
  std::shared_ptr<const PluginSettings> settings;  // null: the listener's settings
  SourceLocation location;
  bool operator==(const RoutePerFilter& other) const {
    return filter == other.filter && disabled == other.disabled &&
           PluginFilterConfig{settings} == PluginFilterConfig{other.settings};
  }
};

struct Route {
  RouteMatch match;
  std::string cluster;                           // set when the route proxies
  std::optional<DirectResponse> directResponse;  // set when the route answers itself
  HandlerConfig handler;                         // set (kind != None) when a store handler answers
  std::optional<Duration> timeout;               // overrides the cluster's response timeout
  std::optional<int> retries;                    // overrides the cluster's retries
  // `per_filter:` the filters this route turns off or gives settings of its own. (Auth off
  // here: requests need no key, whatever the route serves; an auth `exempt` entry only waives
  // the key for the answers the gateway gives itself.)
  std::vector<RoutePerFilter> perFilter;
  SourceLocation location;
  bool operator==(const Route&) const = default;
  // This route's entry for `filter`, or null.
  const RoutePerFilter* perFilterFor(std::string_view filter) const {
    for (const RoutePerFilter& entry : perFilter) {
      if (entry.filter == filter) return &entry;
    }
    return nullptr;
  }
  // True when the route turns `filter` off (`per_filter: { <filter>: { disabled: true } }`).
  bool disables(std::string_view filter) const {
    const RoutePerFilter* entry = perFilterFor(filter);
    return entry != nullptr && entry->disabled;
  }
};

struct RouterConfig {
  std::vector<Route> routes;
  bool operator==(const RouterConfig&) const = default;
};

// ---- rate limits, auth, metrics -----------------------------------------------------------

enum class RateLimitAlgorithm { TokenBucket, FixedWindow, SlidingWindow };

// One limit. token_bucket: `requests` per `period` sustained, bursts up to `burst`.
// fixed_window / sliding_window: at most `requests` per `period` (the window).
// YAML: { algorithm: token_bucket, rate: 10/s, burst: 20 } or
//       { algorithm: fixed_window, limit: 100, window: 1m }
struct RateLimitSpec {
  RateLimitAlgorithm algorithm = RateLimitAlgorithm::TokenBucket;
  uint64_t requests = 0;
  Duration period{1'000};
  uint64_t burst = 0;  // token bucket only; 0 in YAML means "= requests"
  bool operator==(const RateLimitSpec&) const = default;
};

// One entry of a listener's `filters:` list: one of the filters config/ types itself, or a
// filter from a folder of its own under filters/ (filter_plugin.h).
using FilterSettings = std::variant<RouterConfig, PluginFilterConfig>;

struct FilterConfig {
  std::string name;  // "router", ...
  FilterSettings settings;
  SourceLocation location;
  bool operator==(const FilterConfig&) const = default;
};

// ---- listeners and clusters ----------------------------------------------------------

struct ListenerConfig {
  std::string name;
  SocketAddress address;
  std::vector<FilterConfig> filters;
  size_t maxHeaderBytes = 16 * 1024;      // request line + headers, over it: 431
  size_t maxHeaders = 100;                // over it: 431
  uint64_t maxRequestBody = 10ull << 20;  // bytes, over it: 413 (0 = unlimited)
  Duration headerTimeout{10'000};         // first byte to end of headers
  Duration idleTimeout{60'000};           // keep-alive connection with no request
  // End of the head to end of the body: a body trickled slower is cut (408). A total, not
  // the silence between reads (nginx's client_body_timeout), which one byte a second never trips.
  Duration bodyTimeout{60'000};
  // Open connections of this listener over all workers; more are accepted and closed at once
  // (counted). 0 = no limit of its own: the process-wide overload.max_connections still holds.
  uint64_t maxConnections = 0;
  // Response bytes a connection may queue for a client that reads slowly (Envoy's
  // per_connection_buffer_limit_bytes). Above it the router stops reading the upstream and a
  // pipelining client's next request is not read, until half of it has been written.
  size_t bufferLimit = 1 << 20;
  // Request trailers (fields after a chunked body) go upstream only when this is on, and never
  // those RFC 9110 6.5.1 forbids in trailers or that carry identity or keys (as nginx: off).
  bool forwardTrailers = false;
  // Peers whose X-Forwarded-For, X-Request-Id, X-Real-IP and Forwarded are believed. From
  // anyone else those are dropped (X-Forwarded-For restarts with the peer's address, the
  // request id is generated). With trusted peers, the client address is the rightmost
  // X-Forwarded-For entry that is not a trusted proxy.
  std::vector<core::IpRange> trustedProxies;
  // An untrusted client's own X-Request-Id: dropped, or forwarded as X-Client-Request-Id.
  bool keepClientRequestId = false;
  SourceLocation location;
  bool operator==(const ListenerConfig&) const = default;
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
  bool initiallyHealthy = true;  // `initial_state: healthy | unhealthy` before the first check
  SourceLocation location;
  bool operator==(const HealthCheckConfig&) const = default;
};

// Passive outlier detection: hosts that keep failing real requests are ejected for a while.
struct OutlierDetectionConfig {
  bool enabled = false;                     // true when the cluster has an outlier_detection section
  uint32_t consecutive5xx = 5;              // 0 = off
  uint32_t consecutiveConnectFailures = 5;  // 0 = off
  Duration baseEjectionTime{30'000};        // ejection lasts base × number of ejections...
  Duration maxEjectionTime{300'000};        // ...capped here
  uint32_t maxEjectionPercent = 50;         // never more than this share of hosts at once
  SourceLocation location;
  bool operator==(const OutlierDetectionConfig&) const = default;
};

// What a retry may be triggered by (bit flags).
enum RetryOn : uint32_t {
  kRetryConnectFailure = 1u << 0,  // connect refused / timed out
  kRetryReset = 1u << 1,           // connection reset before any response byte
  kRetry5xx = 1u << 2,             // any 5xx answer, and per-try timeouts
  kRetryGatewayError = 1u << 3,    // 502, 503, 504 answers, per-try timeouts, connect failures
};

enum class NoHealthyHosts { Panic, Reject };

// Cluster-wide limits over all workers; overflow answers 503 and is counted.
struct CircuitBreakersConfig {
  uint32_t maxConnections = 1024;      // open upstream connections
  uint32_t maxPendingRequests = 1024;  // requests waiting for a connection
  uint32_t maxRequests = 1024;         // requests in flight
  bool operator==(const CircuitBreakersConfig&) const = default;
};

struct ClusterConfig {
  std::string name;
  std::vector<SocketAddress> hosts;
  LbPolicy lbPolicy = LbPolicy::RoundRobin;
  Duration connectTimeout{1'000};
  Duration timeout{15'000};  // upstream response: max silence while waiting/reading, 504
  int retries = 1;           // further attempts, on the conditions in retryOn
  uint32_t retryOn =
      kRetryConnectFailure | kRetryReset;  // YAML retry_on: [connect-failure, reset, 5xx, gateway-error]
  std::optional<Duration> perTryTimeout;   // each attempt's own limit (retried when retry_on allows)
  uint32_t retryBudgetPercent = 20;        // retries in flight at most this % of requests in flight...
  uint32_t retryBudgetMinRetries = 3;      // ...but always allow this many
  uint32_t maxConnectionsPerHost = 1024;   // per worker; more requests wait as pending
  uint32_t maxIdlePerHost = 64;            // idle keep-alive connections kept per worker
  Duration idleTimeout{30'000};            // idle pooled connection is closed after this
  HealthCheckConfig healthCheck;
  OutlierDetectionConfig outlierDetection;
  NoHealthyHosts noHealthyHosts = NoHealthyHosts::Panic;
  CircuitBreakersConfig circuitBreakers;
  SourceLocation location;
  bool operator==(const ClusterConfig&) const = default;
};

// redis: { url: redis://host:port/db, password: ..., timeout: 50ms }
struct RedisConfig {
  bool configured = false;
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  uint32_t db = 0;
  std::string password;  // may come from ${ENV}
  Duration timeout{50};  // per decision; then failure_mode applies
  SourceLocation location;
  bool operator==(const RedisConfig&) const = default;
};

// storage: { url: sqlite://./flowguard.db, request_log: on, ... }: API keys issued by
// /register and the request log live in this database.
struct StorageConfig {
  bool configured = false;
  std::string url;                // sqlite://PATH or postgres://user@host:port/db
  std::string password;           // replaces the URL's password when set (may come from ${ENV})
  bool requestLog = true;         // write every request of every listener to request_log
  uint64_t logQueue = 100'000;    // records held while the database is slow or down
  Duration flushInterval{200};    // request-log batches are written at least this often
  Duration keyPollInterval{250};  // keys issued/revoked by other gateways show up this fast
  SourceLocation location;
  bool operator==(const StorageConfig&) const = default;
};

// admin: { address: 127.0.0.1:9901, token: ... }: the operator's listener (stats,
// Prometheus, cluster health, keys, logs, the /server dashboard), on the main thread. Absent:
// no admin listener. Off loopback a token is required, sent as Authorization: Bearer; when
// the file gives none, the gateway generates one at its first start and keeps it in
// `state_dir` (as Jupyter does), so a container needs no secret set by hand.
struct AdminConfig {
  bool configured = false;
  SocketAddress address{"127.0.0.1", 9901};
  std::string token;           // as written; "" = none given
  bool tokenRequired = false;  // the address is not a loopback one
  SourceLocation location;
  // "http://127.0.0.1:9901": where a person on the gateway's own machine reaches it (a
  // wildcard address becomes loopback: 0.0.0.0 is not an address to browse to).
  std::string localUrl() const;
  bool operator==(const AdminConfig&) const = default;
};

// plans: { free: { rate: 10/s, burst: 20 }, ... }: the limits a key issued by /register
// gets. The first plan is the default.
struct Plan {
  std::string name;
  RateLimitSpec limit;
  // Whether POST /register may ask for it. Default: only the first plan; the others are
  // given by an operator (admin PATCH /keys/{id} {"plan": ...}).
  bool selfService = false;
  SourceLocation location;
  bool operator==(const Plan&) const = default;
};

// register: { per_ip: 5/h }: how many keys one client address may ask POST /register for
// (every attempt counts), per gateway process. Without it a client could mint a key per token
// of its anonymous rate limit and multiply its limit.
struct RegisterConfig {
  std::optional<RateLimitSpec> perIp =
      RateLimitSpec{RateLimitAlgorithm::FixedWindow, 5, Duration{3'600'000}, 0};
  SourceLocation location;
  bool operator==(const RegisterConfig&) const = default;
};

// overload: { max_connections: 10000, memory_limit: 512MiB, check_interval: 1s }: what the
// process as a whole takes on. Applied by a reload like the listeners.
struct OverloadConfig {
  // Open downstream connections over every listener and worker; more are accepted and closed
  // at once. Unset: half the process's RLIMIT_NOFILE soft limit (each proxied connection may
  // need an upstream socket too, and accept() failing with EMFILE is worse than a clean
  // close); 0: no limit.
  std::optional<uint64_t> maxConnections;
  // Resident set size above which the gateway sheds load: new connections are closed, new
  // requests get 503 {"error":"overloaded"}; it recovers below 90% of it. 0 = off.
  uint64_t memoryLimit = 0;
  Duration checkInterval{1'000};  // how often the RSS is sampled
  SourceLocation location;
  bool operator==(const OverloadConfig&) const = default;
};

struct Config {
  std::string sourcePath;  // file it was loaded from, for messages
  unsigned workers = 0;    // 0 = auto (one per core)
  std::vector<ListenerConfig> listeners;
  std::vector<ClusterConfig> clusters;
  RedisConfig redis;
  StorageConfig storage;
  std::vector<Plan> plans;
  RegisterConfig registration;
  AdminConfig admin;
  OverloadConfig overload;
  // SIGTERM/SIGINT: how long in-flight requests may take to finish before they are cut.
  Duration drainTimeout{15'000};
  // Where the gateway keeps what it makes itself (the generated admin token); relative to
  // the working directory, like the default SQLite file.
  std::string stateDir = ".";

  const Plan* findPlan(std::string_view name) const;

  const ClusterConfig* findCluster(const std::string& name) const;
};

}  // namespace flowguard::config
