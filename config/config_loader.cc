#include "config/config_loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "config/filter_parsers.h"
#include "config/units.h"
#include "config/yaml_reader.h"

namespace flowguard::config {
namespace {

constexpr int64_t kMaxWorkers = 1024;
constexpr int64_t kMaxRetries = 10;
constexpr int64_t kMaxU32 = std::numeric_limits<uint32_t>::max();
constexpr int64_t kMaxConnections = 10'000'000;

// The set* helpers leave `out` alone when the key is absent. They return false only when the
// key was given but invalid (already reported), so cross-checks between fields skip values
// the operator never meant.
bool setDuration(YamlReader& r, const YAML::Node& map, std::string_view key, Duration& out) {
  if (auto node = YamlReader::find(map, key)) {
    auto value = r.positiveDuration(*node, key);
    if (!value) return false;
    out = *value;
  }
  return true;
}

template <class T>
bool setInteger(YamlReader& r, const YAML::Node& map, std::string_view key, int64_t min, int64_t max,
                T& out) {
  if (auto node = YamlReader::find(map, key)) {
    auto value = r.integer(*node, key, min, max);
    if (!value) return false;
    out = static_cast<T>(*value);
  }
  return true;
}

template <class T>
void setSize(YamlReader& r, const YAML::Node& map, std::string_view key, uint64_t min, T& out) {
  if (auto node = YamlReader::find(map, key)) {
    if (auto value = r.size(*node, key, min)) {
      if (*value > std::numeric_limits<T>::max()) {
        r.error(*node, fmt::format("'{}' is too large", key));
      } else {
        out = static_cast<T>(*value);
      }
    }
  }
}

// A required, non-empty name; the node is kept for duplicate-name messages.
std::optional<YAML::Node> readName(YamlReader& r, const YAML::Node& map, std::string_view context,
                                   std::string& out) {
  std::optional<YAML::Node> node = r.require(map, "name", context);
  if (!node) return std::nullopt;
  std::optional<std::string> name = r.string(*node, "name");
  if (!name) return std::nullopt;
  if (name->empty()) {
    r.error(*node, "'name' must not be empty");
    return std::nullopt;
  }
  out = std::move(*name);
  return node;
}

// Reports the second and later uses of a name, pointing back at the first.
class DuplicateNames {
 public:
  explicit DuplicateNames(std::string_view what) : what_(what) {}
  void add(YamlReader& r, const std::string& name, const YAML::Node& at) {
    auto [it, inserted] = first_.emplace(name, YamlReader::location(at).line);
    if (!inserted) {
      r.error(at, fmt::format("duplicate {} name '{}' (first defined at line {})", what_, name, it->second));
    }
  }

 private:
  std::string_view what_;
  std::map<std::string, int> first_;
};

void parseWorkers(YamlReader& r, const YAML::Node& node, Config& config) {
  if (!r.usable(node)) return;
  if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    if (text == "auto") {
      config.workers = 0;
      return;
    }
    int64_t value = 0;
    std::string reason;
    if (parseInteger(text, value, reason) && value >= 1 && value <= kMaxWorkers) {
      config.workers = static_cast<unsigned>(value);
      return;
    }
  }
  r.error(node, fmt::format("'workers' must be 'auto' or an integer between 1 and {}, got {}", kMaxWorkers,
                            describeNode(node)));
}

// For messages about defaults, in the unit an operator would have written.
std::string showDuration(Duration d) {
  int64_t ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms != 0 && ms % 1'000 == 0) return fmt::format("{}s", ms / 1'000);
  return fmt::format("{}ms", ms);
}

// The value as written when the key is given, else the default with a note saying so.
std::string showSetting(const YAML::Node& map, std::string_view key, Duration value) {
  std::optional<YAML::Node> node = YamlReader::find(map, key);
  if (node && node->IsScalar()) return node->Scalar();
  return fmt::format("{}, the default", showDuration(value));
}

// A map-valued cluster section. `health_check:` with nothing after it would otherwise read
// as "no value", which an operator may have meant as "on, with defaults"; say how to write that.
bool expectSection(YamlReader& r, const YAML::Node& node, std::string_view key) {
  if (node.IsNull() && r.usable(node)) {
    r.error(node, fmt::format("'{}' has no value (write '{}: {{}}' to use the defaults)", key, key));
    return false;
  }
  return r.expectMap(node, fmt::format("'{}'", key));
}

constexpr int kMinStatus = 100;
constexpr int kMaxStatus = 599;

// One `expected_statuses` entry: a status (200) or an inclusive range ("200-299").
std::optional<std::pair<int, int>> parseStatusRange(YamlReader& r, const YAML::Node& item) {
  std::optional<std::string> text = r.string(item, "expected_statuses entry");
  if (!text) return std::nullopt;
  auto status = [&](std::string_view part) -> std::optional<int> {
    int64_t value = 0;
    std::string reason;
    if (!parseInteger(part, value, reason)) return std::nullopt;
    if (value < kMinStatus || value > kMaxStatus) {
      r.error(item, fmt::format("status {} in 'expected_statuses' must be between {} and {}", part,
                                kMinStatus, kMaxStatus));
      return std::nullopt;
    }
    return static_cast<int>(value);
  };
  auto bad = [&] {
    r.error(item, fmt::format("'expected_statuses' entry must be a status such as 200 or a range "
                              "such as \"200-299\", got '{}'",
                              *text));
    return std::nullopt;
  };
  int64_t unused = 0;
  std::string reason;
  size_t dash = text->find('-', 1);  // from 1: a leading '-' is a negative number, not a range
  if (dash == std::string::npos) {
    if (!parseInteger(*text, unused, reason)) return bad();
    std::optional<int> single = status(*text);
    if (!single) return std::nullopt;
    return std::pair{*single, *single};
  }
  std::string_view first = std::string_view(*text).substr(0, dash);
  std::string_view last = std::string_view(*text).substr(dash + 1);
  if (!parseInteger(first, unused, reason) || !parseInteger(last, unused, reason)) return bad();
  std::optional<int> low = status(first);
  if (!low) return std::nullopt;
  std::optional<int> high = status(last);
  if (!high) return std::nullopt;
  if (*low > *high) {
    r.error(item, fmt::format("range '{}' in 'expected_statuses' is empty: its start must not exceed its end",
                              *text));
    return std::nullopt;
  }
  return std::pair{*low, *high};
}

void parseHealthCheck(YamlReader& r, const YAML::Node& node, HealthCheckConfig& hc) {
  hc.location = YamlReader::location(node);
  if (!expectSection(r, node, "health_check")) return;
  hc.enabled = true;
  r.checkKeys(node, "in health_check",
              {"path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold", "expected_statuses",
               "initial_state"});
  if (auto path = YamlReader::find(node, "path")) {
    if (std::optional<std::string> text = r.string(*path, "path")) {
      if (text->empty() || (*text)[0] != '/') {
        r.error(*path, fmt::format("'path' must start with '/', got '{}'", *text));
      } else if (std::any_of(text->begin(), text->end(),
                             [](unsigned char c) { return c <= ' ' || c == 0x7f; })) {
        // It goes verbatim into the probe's request line, where a space or CR/LF would split it.
        r.error(*path, fmt::format("'path' must not contain spaces or control characters, got '{}'", *text));
      } else {
        hc.path = std::move(*text);
      }
    }
  }
  bool intervalOk = setDuration(r, node, "interval", hc.interval);
  bool timeoutOk = setDuration(r, node, "timeout", hc.timeout);
  // A probe still running when the next is due would overlap it; the host's state would
  // then depend on which answer lands first.
  if (intervalOk && timeoutOk && hc.timeout > hc.interval) {
    std::string message =
        fmt::format("health_check 'timeout' ({}) must not exceed 'interval' ({})",
                    showSetting(node, "timeout", hc.timeout), showSetting(node, "interval", hc.interval));
    // Point at what the operator wrote: the timeout, or the interval that undercuts the default.
    std::optional<YAML::Node> at = YamlReader::find(node, "timeout");
    if (!at) at = YamlReader::find(node, "interval");
    r.error(*at, std::move(message));
  }
  setInteger(r, node, "healthy_threshold", 1, 100, hc.healthyThreshold);
  setInteger(r, node, "unhealthy_threshold", 1, 100, hc.unhealthyThreshold);
  if (auto statuses = YamlReader::find(node, "expected_statuses")) {
    if (r.expectList(*statuses, "'expected_statuses'")) {
      if (statuses->size() == 0) {
        r.error(*statuses, "'expected_statuses' must not be empty (no answer could count as healthy)");
      } else {
        std::vector<std::pair<int, int>> ranges;
        bool ok = true;
        for (const YAML::Node& item : *statuses) {
          std::optional<std::pair<int, int>> range = parseStatusRange(r, item);
          if (range) {
            ranges.push_back(*range);
          } else {
            ok = false;
          }
        }
        if (ok) hc.expectedStatuses = std::move(ranges);
      }
    }
  }
  if (auto state = YamlReader::find(node, "initial_state")) {
    if (auto index = r.choice(*state, "initial_state", "initial_state", {"healthy", "unhealthy"})) {
      hc.initiallyHealthy = *index == 0;
    }
  }
}

void parseOutlierDetection(YamlReader& r, const YAML::Node& node, OutlierDetectionConfig& od) {
  od.location = YamlReader::location(node);
  if (!expectSection(r, node, "outlier_detection")) return;
  od.enabled = true;
  r.checkKeys(node, "in outlier_detection",
              {"consecutive_5xx", "consecutive_connect_failures", "base_ejection_time", "max_ejection_time",
               "max_ejection_percent"});
  // Zero turns that trigger off.
  setInteger(r, node, "consecutive_5xx", 0, kMaxU32, od.consecutive5xx);
  setInteger(r, node, "consecutive_connect_failures", 0, kMaxU32, od.consecutiveConnectFailures);
  bool baseOk = setDuration(r, node, "base_ejection_time", od.baseEjectionTime);
  bool maxOk = setDuration(r, node, "max_ejection_time", od.maxEjectionTime);
  if (baseOk && maxOk && od.maxEjectionTime < od.baseEjectionTime) {
    std::string message =
        fmt::format("outlier_detection 'max_ejection_time' ({}) must be at least 'base_ejection_time' ({})",
                    showSetting(node, "max_ejection_time", od.maxEjectionTime),
                    showSetting(node, "base_ejection_time", od.baseEjectionTime));
    std::optional<YAML::Node> at = YamlReader::find(node, "max_ejection_time");
    if (!at) at = YamlReader::find(node, "base_ejection_time");
    r.error(*at, std::move(message));
  }
  setInteger(r, node, "max_ejection_percent", 0, 100, od.maxEjectionPercent);
}

constexpr int64_t kMaxCircuitLimit = 10'000'000;

void parseCircuitBreakers(YamlReader& r, const YAML::Node& node, CircuitBreakersConfig& cb) {
  if (!expectSection(r, node, "circuit_breakers")) return;
  r.checkKeys(node, "in circuit_breakers", {"max_connections", "max_pending_requests", "max_requests"});
  setInteger(r, node, "max_connections", 1, kMaxCircuitLimit, cb.maxConnections);
  setInteger(r, node, "max_pending_requests", 1, kMaxCircuitLimit, cb.maxPendingRequests);
  setInteger(r, node, "max_requests", 1, kMaxCircuitLimit, cb.maxRequests);
}

void parseRetryBudget(YamlReader& r, const YAML::Node& node, ClusterConfig& cluster) {
  if (!expectSection(r, node, "retry_budget")) return;
  r.checkKeys(node, "in retry_budget", {"percent", "min_retries"});
  setInteger(r, node, "percent", 0, 100, cluster.retryBudgetPercent);
  setInteger(r, node, "min_retries", 0, 1000, cluster.retryBudgetMinRetries);
}

void parseRetryOn(YamlReader& r, const YAML::Node& node, ClusterConfig& cluster) {
  static const std::vector<std::string_view> kNames{"connect-failure", "reset", "5xx", "gateway-error"};
  static constexpr uint32_t kFlags[] = {kRetryConnectFailure, kRetryReset, kRetry5xx, kRetryGatewayError};
  if (!r.expectList(node, "'retry_on'")) return;
  if (node.size() == 0) {
    // An empty list would make `retries` silently do nothing.
    r.error(node, "'retry_on' must not be empty (set 'retries: 0' to turn retries off)");
    return;
  }
  uint32_t flags = 0;
  bool ok = true;
  for (const YAML::Node& item : node) {
    std::optional<size_t> index = r.choice(item, "retry_on entry", "retry_on condition", kNames);
    if (!index) {
      ok = false;
      continue;
    }
    if (flags & kFlags[*index]) {
      r.error(item, fmt::format("duplicate retry_on condition '{}'", kNames[*index]));
      ok = false;
      continue;
    }
    flags |= kFlags[*index];
  }
  if (ok) cluster.retryOn = flags;
}

// Keys that used to belong to a cluster, with where they went; accepted by the key check
// so the operator gets this message instead of a bare "unknown key".
struct MovedKey {
  std::string_view key;
  std::string_view message;
};
constexpr MovedKey kMovedClusterKeys[] = {
    {"max_pending_requests",
     "'max_pending_requests' moved into circuit_breakers (where it limits the whole cluster, not each "
     "worker): circuit_breakers: { max_pending_requests: N }"},
};

void reportMovedKeys(YamlReader& r, const YAML::Node& map) {
  for (const MovedKey& moved : kMovedClusterKeys) {
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node key = it->first;
      if (key.IsScalar() && key.Scalar() == moved.key) {
        r.error(key, std::string(moved.message));
        break;  // a repeat is already reported as a duplicate key
      }
    }
  }
}

ClusterConfig parseCluster(YamlReader& r, const YAML::Node& node, DuplicateNames& names) {
  ClusterConfig cluster;
  cluster.location = YamlReader::location(node);
  if (!r.expectMap(node, "cluster")) return cluster;
  r.checkKeys(
      node, "in cluster",
      {"name", "hosts", "lb_policy", "connect_timeout", "timeout", "retries", "retry_on", "per_try_timeout",
       "retry_budget", "max_connections_per_host", "max_idle_per_host", "idle_timeout", "health_check",
       "outlier_detection", "no_healthy_hosts", "circuit_breakers", "max_pending_requests"});
  reportMovedKeys(r, node);
  if (auto nameNode = readName(r, node, "in cluster", cluster.name)) names.add(r, cluster.name, *nameNode);
  if (auto hosts = r.require(node, "hosts", "in cluster")) {
    if (r.expectList(*hosts, "'hosts'")) {
      if (hosts->size() == 0) r.error(*hosts, "cluster needs at least one host");
      for (const YAML::Node& host : *hosts) {
        std::optional<SocketAddress> address = r.address(host, "hosts", HostKind::NameOrLiteral);
        if (!address) continue;
        for (const SocketAddress& known : cluster.hosts) {
          if (known.host == address->host && known.port == address->port) {
            r.error(host, fmt::format("duplicate host '{}' in cluster", address->str()));
          }
        }
        cluster.hosts.push_back(std::move(*address));
      }
    }
  }
  if (auto policy = YamlReader::find(node, "lb_policy")) {
    if (r.choice(*policy, "lb_policy", "lb_policy", {"round_robin"})) cluster.lbPolicy = LbPolicy::RoundRobin;
  }
  setDuration(r, node, "connect_timeout", cluster.connectTimeout);
  setDuration(r, node, "timeout", cluster.timeout);
  setDuration(r, node, "idle_timeout", cluster.idleTimeout);
  setInteger(r, node, "retries", 0, kMaxRetries, cluster.retries);
  if (auto retryOn = YamlReader::find(node, "retry_on")) parseRetryOn(r, *retryOn, cluster);
  if (auto perTry = YamlReader::find(node, "per_try_timeout")) {
    cluster.perTryTimeout = r.positiveDuration(*perTry, "per_try_timeout");
  }
  if (auto budget = YamlReader::find(node, "retry_budget")) parseRetryBudget(r, *budget, cluster);
  setInteger(r, node, "max_connections_per_host", 1, kMaxU32, cluster.maxConnectionsPerHost);
  // Zero is meaningful here: no idle pool.
  setInteger(r, node, "max_idle_per_host", 0, kMaxU32, cluster.maxIdlePerHost);
  if (auto hc = YamlReader::find(node, "health_check")) parseHealthCheck(r, *hc, cluster.healthCheck);
  if (auto od = YamlReader::find(node, "outlier_detection")) {
    parseOutlierDetection(r, *od, cluster.outlierDetection);
  }
  if (auto mode = YamlReader::find(node, "no_healthy_hosts")) {
    if (auto index = r.choice(*mode, "no_healthy_hosts", "no_healthy_hosts", {"panic", "reject"})) {
      cluster.noHealthyHosts = *index == 0 ? NoHealthyHosts::Panic : NoHealthyHosts::Reject;
    }
  }
  if (auto cb = YamlReader::find(node, "circuit_breakers"))
    parseCircuitBreakers(r, *cb, cluster.circuitBreakers);
  return cluster;
}

std::string terminalName(const YAML::Node& filter) {
  std::optional<YAML::Node> name = YamlReader::find(filter, "name");
  return name && name->IsScalar() ? name->Scalar() : std::string();
}

void parseFilters(YamlReader& r, const YAML::Node& list, FilterParseContext& ctx,
                  std::vector<FilterConfig>& out) {
  if (!r.expectList(list, "'filters'")) return;
  // Terminal filters with their index. (Never assign one YAML::Node to another: yaml-cpp
  // makes that rebind the target node itself, not the handle.)
  std::vector<std::pair<size_t, YAML::Node>> terminals;
  std::map<std::string, int> seen;  // non-terminal filter name -> line of its first use
  ctx.earlierFilters.clear();       // this listener's, for the router's per_filter
  size_t index = 0;
  for (const YAML::Node& node : list) {
    ++index;
    if (!r.expectMap(node, "filter")) continue;
    std::string name;
    std::optional<YAML::Node> nameNode = readName(r, node, "in filter", name);
    if (!nameNode) continue;
    const FilterParser* parser = findFilterParser(name);
    if (!parser) {
      std::vector<std::string_view> known;
      for (const FilterParser& p : filterParsers()) known.push_back(p.name);
      std::sort(known.begin(), known.end());
      std::string_view suggestion = closestMatch(name, known);
      std::string hint = suggestion.empty() ? fmt::format("known filters: {}", fmt::join(known, ", "))
                                            : fmt::format("did you mean '{}'?", suggestion);
      r.error(*nameNode, fmt::format("unknown filter '{}' ({})", name, hint));
      continue;
    }
    if (parser->terminal) {
      terminals.emplace_back(index, node);  // a second one is reported below
    } else if (auto [it, inserted] = seen.emplace(name, YamlReader::location(node).line); !inserted) {
      // Two of a filter would either apply twice (two rate limits) or leave it unclear
      // which settings win.
      r.error(*nameNode, fmt::format("filter '{}' appears twice in this listener (first at line {}); "
                                     "a filter may appear at most once",
                                     name, it->second));
    }
    out.push_back(FilterConfig{name, parser->parse(node, ctx), YamlReader::location(node)});
    ctx.earlierFilters.emplace_back(name, node);
  }
  checkFilterChain(r, out);
  if (terminals.empty()) {
    std::vector<std::string_view> names;
    for (const FilterParser& p : filterParsers()) {
      if (p.terminal) names.push_back(p.name);
    }
    r.error(list, fmt::format("filter list must end with the '{}' filter (the terminal filter)",
                              fmt::join(names, "' or '")));
    return;
  }
  for (size_t i = 1; i < terminals.size(); ++i) {
    r.error(terminals[i].second,
            fmt::format("a second terminal filter '{}': a listener has exactly one, at the end",
                        terminalName(terminals[i].second)));
  }
  if (terminals.front().first != list.size()) {
    r.error(terminals.front().second,
            fmt::format("'{}' must be the last filter (it is terminal: filters after it never run)",
                        terminalName(terminals.front().second)));
  }
}

ListenerConfig parseListener(YamlReader& r, const YAML::Node& node, FilterParseContext& ctx,
                             DuplicateNames& names, std::optional<YAML::Node>& addressNode) {
  ListenerConfig listener;
  listener.location = YamlReader::location(node);
  if (!r.expectMap(node, "listener")) return listener;
  r.checkKeys(node, "in listener",
              {"name", "address", "filters", "max_request_body", "max_header_bytes", "max_headers",
               "header_timeout", "idle_timeout", "body_timeout", "max_connections", "buffer_limit",
               "forward_trailers", "trusted_proxies", "client_request_id"});
  if (auto nameNode = readName(r, node, "in listener", listener.name)) {
    names.add(r, listener.name, *nameNode);
  }
  if (auto address = r.require(node, "address", "in listener")) {
    if (auto value = r.address(*address, "address")) {
      listener.address = std::move(*value);
      addressNode.emplace(*address);
    }
  }
  if (auto filters = r.require(node, "filters", "in listener")) {
    parseFilters(r, *filters, ctx, listener.filters);
  }
  setSize(r, node, "max_request_body", 0, listener.maxRequestBody);
  setSize(r, node, "max_header_bytes", 1, listener.maxHeaderBytes);
  setInteger(r, node, "max_headers", 1, kMaxU32, listener.maxHeaders);
  setDuration(r, node, "header_timeout", listener.headerTimeout);
  setDuration(r, node, "idle_timeout", listener.idleTimeout);
  setDuration(r, node, "body_timeout", listener.bodyTimeout);
  setInteger(r, node, "max_connections", 0, kMaxConnections, listener.maxConnections);
  // Below a few KiB every answer would stop the connection's reads; that is a typo, not a policy.
  setSize(r, node, "buffer_limit", 4 * 1024, listener.bufferLimit);
  if (auto trailers = YamlReader::find(node, "forward_trailers")) {
    if (auto value = r.boolean(*trailers, "forward_trailers")) listener.forwardTrailers = *value;
  }
  if (auto proxies = YamlReader::find(node, "trusted_proxies")) {
    if (auto ranges = r.ipRanges(*proxies, "trusted_proxies")) listener.trustedProxies = std::move(*ranges);
  }
  if (auto clientId = YamlReader::find(node, "client_request_id")) {
    if (auto index = r.choice(*clientId, "client_request_id", "client_request_id setting", {"drop", "keep"}))
      listener.keepClientRequestId = *index == 1;
  }
  return listener;
}

void parseOverload(YamlReader& r, const YAML::Node& node, OverloadConfig& out) {
  out.location = YamlReader::location(node);
  if (!r.expectMap(node, "'overload'")) return;
  r.checkKeys(node, "in overload", {"max_connections", "memory_limit", "check_interval"});
  if (auto max = YamlReader::find(node, "max_connections")) {
    if (auto value = r.integer(*max, "max_connections", 0, kMaxConnections))
      out.maxConnections = static_cast<uint64_t>(*value);
  }
  setSize(r, node, "memory_limit", 0, out.memoryLimit);
  setDuration(r, node, "check_interval", out.checkInterval);
}

bool isWildcard(const std::string& host) {
  return host == "0.0.0.0" || host == "::";
}

// Two listeners on one port collide when the hosts are equal or one is a wildcard: with
// SO_REUSEPORT the kernel would quietly split connections between them instead of failing.
void checkListenerAddresses(YamlReader& r, const std::vector<ListenerConfig>& listeners,
                            const std::vector<std::optional<YAML::Node>>& addressNodes) {
  for (size_t i = 0; i < listeners.size(); ++i) {
    if (!addressNodes[i]) continue;
    const SocketAddress& a = listeners[i].address;
    for (size_t j = 0; j < i; ++j) {
      if (!addressNodes[j]) continue;
      const SocketAddress& b = listeners[j].address;
      if (a.port != b.port) continue;
      int line = YamlReader::location(*addressNodes[j]).line;
      if (a.host == b.host) {
        r.error(*addressNodes[i],
                fmt::format("duplicate listener address '{}' (already used by listener '{}' at line {})",
                            a.str(), listeners[j].name, line));
        break;
      }
      if (isWildcard(a.host) || isWildcard(b.host)) {
        r.error(*addressNodes[i],
                fmt::format("listener address '{}' overlaps '{}' of listener '{}' at line {}", a.str(),
                            b.str(), listeners[j].name, line));
        break;
      }
    }
  }
}

void parseConfig(YamlReader& r, const YAML::Node& root, Config& config) {
  if (root.IsNull()) {
    r.error(SourceLocation{1, 1}, "config is empty; expected a map with at least 'listeners'");
    return;
  }
  if (!r.expectMap(root, "the top level")) return;
  r.checkKeys(root, "at top level",
              {"workers", "listeners", "clusters", "redis", "storage", "plans", "register", "admin",
               "drain_timeout", "overload", "state_dir"});
  if (auto workers = YamlReader::find(root, "workers")) parseWorkers(r, *workers, config);
  if (auto overload = YamlReader::find(root, "overload")) parseOverload(r, *overload, config.overload);
  if (auto drain = YamlReader::find(root, "drain_timeout")) {
    if (auto value = r.positiveDuration(*drain, "drain_timeout")) config.drainTimeout = *value;
  }
  if (auto stateDir = YamlReader::find(root, "state_dir")) {
    if (auto text = r.string(*stateDir, "state_dir")) {
      if (text->empty()) {
        r.error(*stateDir, "'state_dir' must not be empty (\".\" is the working directory)");
      } else {
        config.stateDir = std::move(*text);
      }
    }
  }

  // Clusters first, so routes anywhere in the file can be checked against their names.
  std::set<std::string> clusterNames;
  if (auto clusters = YamlReader::find(root, "clusters")) {
    if (r.expectList(*clusters, "'clusters'")) {
      DuplicateNames names("cluster");
      for (const YAML::Node& node : *clusters) {
        config.clusters.push_back(parseCluster(r, node, names));
        if (!config.clusters.back().name.empty()) clusterNames.insert(config.clusters.back().name);
      }
    }
  }

  // Also before listeners: `store: redis` needs to know whether the section exists.
  if (auto redis = YamlReader::find(root, "redis")) parseRedis(r, *redis, config.redis);
  // And `handler:` routes need the storage section.
  if (auto storage = YamlReader::find(root, "storage")) parseStorage(r, *storage, config.storage);
  if (auto plans = YamlReader::find(root, "plans")) parsePlans(r, *plans, config.plans);
  if (auto registration = YamlReader::find(root, "register"))
    parseRegister(r, *registration, config.registration);
  if (auto admin = YamlReader::find(root, "admin")) parseAdmin(r, *admin, config.admin);

  std::optional<YAML::Node> listeners = r.require(root, "listeners", "at top level");
  if (!listeners || !r.expectList(*listeners, "'listeners'")) return;
  if (listeners->size() == 0) {
    r.error(*listeners, "no listeners: at least one listener is required");
    return;
  }
  FilterParseContext ctx{r, clusterNames, config.redis, config.storage, config.admin};
  DuplicateNames names("listener");
  std::vector<std::optional<YAML::Node>> addressNodes;
  for (const YAML::Node& node : *listeners) {
    addressNodes.emplace_back();
    config.listeners.push_back(parseListener(r, node, ctx, names, addressNodes.back()));
  }
  checkListenerAddresses(r, config.listeners, addressNodes);
}

}  // namespace

LoadResult loadConfigText(const std::string& text, const std::string& sourceName) {
  YamlReader reader(sourceName);
  auto config = std::make_shared<Config>();
  config->sourcePath = sourceName;
  try {
    YAML::Node root = YAML::Load(text);
    expandEnvironment(root, reader);
    parseConfig(reader, root, *config);
  } catch (const YAML::ParserException& e) {
    reader.error(e.mark, fmt::format("YAML syntax error: {}", e.msg));
  } catch (const YAML::Exception& e) {
    // The reader never subscripts a node of the wrong kind; this is a safety net, not a path.
    reader.error(e.mark, fmt::format("cannot read config: {}", e.msg));
  }

  LoadResult result;
  result.warnings = std::move(reader.warnings());
  if (!reader.errors().empty()) {
    result.errors = std::move(reader.errors());
    // Cross-checks (duplicates) run after the main pass; file order reads best.
    std::stable_sort(result.errors.begin(), result.errors.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                       return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    return result;
  }
  result.config = std::move(config);
  return result;
}

std::optional<std::string> readConfigFile(const std::string& path, ConfigError& error) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  std::string text;
  int err = 0;
  if (!file) {
    err = errno;
  } else {
    errno = 0;
    char buffer[8192];
    size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
    // fopen succeeds on a directory; the read then fails with EISDIR.
    if (std::ferror(file)) err = errno != 0 ? errno : EIO;
    std::fclose(file);
  }
  if (err != 0) {
    error = ConfigError{path, 0, 0, fmt::format("cannot read config file: {}", std::strerror(err))};
    return std::nullopt;
  }
  return text;
}

LoadResult loadConfigFile(const std::string& path) {
  ConfigError error;
  std::optional<std::string> text = readConfigFile(path, error);
  if (!text) {
    LoadResult result;
    result.errors.push_back(std::move(error));
    return result;
  }
  return loadConfigText(*text, path);
}

}  // namespace flowguard::config
