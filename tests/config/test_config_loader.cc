#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "filters/auth/auth.h"
#include "filters/cors/cors.h"
#include "filters/filter_plugin.h"
#include "filters/metrics/metrics.h"
#include "filters/rate_limit/rate_limit.h"
#include "tests/config/config_test_helpers.h"

using namespace flowguard::config;
using namespace flowguard::config::test;
using namespace std::chrono_literals;

namespace {

// A minimal valid file; tests append to or edit it. Line numbers below refer to it:
//  1 listeners:
//  2   - name: public
//  3     address: 127.0.0.1:8000
//  4     filters:
//  5       - name: router
//  6         routes:
//  7           - match: { prefix: / }
//  8             cluster: backends
//  9 clusters:
// 10   - name: backends
// 11     hosts: [127.0.0.1:9001]
const std::string kMinimal = R"(listeners:
  - name: public
    address: 127.0.0.1:8000
    filters:
      - name: router
        routes:
          - match: { prefix: / }
            cluster: backends
clusters:
  - name: backends
    hosts: [127.0.0.1:9001]
)";

std::string replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("a full config parses every field") {
  auto config = loadOk(R"(# every key once
workers: 4
listeners:
  - name: public
    address: 0.0.0.0:8000
    max_request_body: 5MB
    max_header_bytes: 32KiB
    max_headers: 50
    header_timeout: 250ms
    idle_timeout: 2m
    filters:
      - name: router
        routes:
          - match: { path: /status, methods: [GET, HEAD], host: api.example.com }
            direct_response: { status: 201, body: '{"status":"ok"}', content_type: text/plain }
          - match: { prefix: /proxy }
            cluster: backends
            timeout: 5s
            retries: 0
  - name: internal
    address: "[::1]:8001"
    filters:
      - name: router
        routes:
          - match:
              prefix: /
            cluster: other
clusters:
  - name: backends
    hosts: [127.0.0.1:9001, "127.0.0.1:9002", "[::1]:9003", localhost:9004]
    lb_policy: round_robin
    connect_timeout: 2s
    timeout: 1h
    retries: 3
    max_connections_per_host: 10
    max_idle_per_host: 5
    idle_timeout: 45s
    retry_on: [connect-failure, reset, 5xx, gateway-error]
    per_try_timeout: 2s
    retry_budget: { percent: 0, min_retries: 1000 }
    health_check:
      path: /healthz?deep=1
      interval: 5s
      timeout: 5s
      healthy_threshold: 1
      unhealthy_threshold: 100
      expected_statuses: [204, "200-299", '500', "301-301"]
      initial_state: unhealthy
    outlier_detection:
      consecutive_5xx: 0
      consecutive_connect_failures: 7
      base_ejection_time: 1m
      max_ejection_time: 1m
      max_ejection_percent: 100
    no_healthy_hosts: reject
    circuit_breakers: { max_connections: 1, max_pending_requests: 10000000, max_requests: 77 }
  - name: other
    hosts: [127.0.0.1:9100]
    retry_on: [gateway-error]
    outlier_detection: {}
    circuit_breakers:
      max_requests: 5
  - name: third
    hosts: [127.0.0.1:9100]
)");
  CHECK(config->sourcePath == "t.yaml");
  CHECK(config->workers == 4);
  REQUIRE(config->listeners.size() == 2);
  const ListenerConfig& pub = config->listeners[0];
  CHECK(pub.name == "public");
  CHECK(pub.address.host == "0.0.0.0");
  CHECK(pub.address.port == 8000);
  CHECK(pub.maxRequestBody == 5'000'000);
  CHECK(pub.maxHeaderBytes == 32 * 1024);
  CHECK(pub.maxHeaders == 50);
  CHECK(pub.headerTimeout == 250ms);
  CHECK(pub.idleTimeout == 2min);
  CHECK(pub.location.line == 4);
  CHECK(pub.location.column == 5);
  REQUIRE(pub.filters.size() == 1);
  CHECK(pub.filters[0].name == "router");
  CHECK(pub.filters[0].location.line == 12);
  CHECK(pub.filters[0].location.column == 9);
  const auto* router = std::get_if<RouterConfig>(&pub.filters[0].settings);
  REQUIRE(router);
  REQUIRE(router->routes.size() == 2);

  const Route& status = router->routes[0];
  CHECK(status.match.path == "/status");
  CHECK(status.match.prefix.empty());
  CHECK(status.match.methods == std::vector<std::string>{"GET", "HEAD"});
  CHECK(status.match.host == "api.example.com");
  CHECK(status.cluster.empty());
  REQUIRE(status.directResponse);
  CHECK(status.directResponse->status == 201);
  CHECK(status.directResponse->body == R"({"status":"ok"})");
  CHECK(status.directResponse->contentType == "text/plain");
  CHECK_FALSE(status.timeout);
  CHECK_FALSE(status.retries);
  CHECK(status.location.line == 14);
  CHECK(status.location.column == 13);

  const Route& proxy = router->routes[1];
  CHECK(proxy.match.prefix == "/proxy");
  CHECK(proxy.match.methods.empty());
  CHECK(proxy.match.host.empty());
  CHECK(proxy.cluster == "backends");
  CHECK_FALSE(proxy.directResponse);
  REQUIRE(proxy.timeout);
  CHECK(*proxy.timeout == 5s);
  REQUIRE(proxy.retries);
  CHECK(*proxy.retries == 0);

  const ListenerConfig& internal = config->listeners[1];
  CHECK(internal.address.host == "::1");
  CHECK(internal.address.str() == "[::1]:8001");
  CHECK(std::get<RouterConfig>(internal.filters[0].settings).routes[0].cluster == "other");

  REQUIRE(config->clusters.size() == 3);
  const ClusterConfig* backends = config->findCluster("backends");
  REQUIRE(backends);
  CHECK(backends == &config->clusters[0]);
  REQUIRE(backends->hosts.size() == 4);
  CHECK(backends->hosts[0].str() == "127.0.0.1:9001");
  CHECK(backends->hosts[1].str() == "127.0.0.1:9002");
  CHECK(backends->hosts[2].str() == "[::1]:9003");
  CHECK(backends->hosts[3].str() == "localhost:9004");
  CHECK(backends->lbPolicy == LbPolicy::RoundRobin);
  CHECK(backends->connectTimeout == 2s);
  CHECK(backends->timeout == 1h);
  CHECK(backends->retries == 3);
  CHECK(backends->maxConnectionsPerHost == 10);
  CHECK(backends->maxIdlePerHost == 5);
  CHECK(backends->idleTimeout == 45s);
  CHECK(backends->location.line == 29);
  CHECK(backends->retryOn == (kRetryConnectFailure | kRetryReset | kRetry5xx | kRetryGatewayError));
  REQUIRE(backends->perTryTimeout);
  CHECK(*backends->perTryTimeout == 2s);
  CHECK(backends->retryBudgetPercent == 0);
  CHECK(backends->retryBudgetMinRetries == 1000);
  const HealthCheckConfig& hc = backends->healthCheck;
  CHECK(hc.enabled);
  CHECK(hc.path == "/healthz?deep=1");
  CHECK(hc.interval == 5s);
  CHECK(hc.timeout == 5s);
  CHECK(hc.healthyThreshold == 1);
  CHECK(hc.unhealthyThreshold == 100);
  CHECK(hc.expectedStatuses ==
        std::vector<std::pair<int, int>>{{204, 204}, {200, 299}, {500, 500}, {301, 301}});
  CHECK_FALSE(hc.initiallyHealthy);
  CHECK(hc.location.line == 42);
  CHECK(hc.location.column == 7);
  const OutlierDetectionConfig& od = backends->outlierDetection;
  CHECK(od.enabled);
  CHECK(od.consecutive5xx == 0);
  CHECK(od.consecutiveConnectFailures == 7);
  CHECK(od.baseEjectionTime == 1min);
  CHECK(od.maxEjectionTime == 1min);
  CHECK(od.maxEjectionPercent == 100);
  CHECK(od.location.line == 50);
  CHECK(od.location.column == 7);
  CHECK(backends->noHealthyHosts == NoHealthyHosts::Reject);
  CHECK(backends->circuitBreakers.maxConnections == 1);
  CHECK(backends->circuitBreakers.maxPendingRequests == 10'000'000);
  CHECK(backends->circuitBreakers.maxRequests == 77);

  const ClusterConfig* other = config->findCluster("other");
  REQUIRE(other);
  CHECK(other == &config->clusters[1]);
  CHECK(other->retryOn == kRetryGatewayError);
  CHECK_FALSE(other->perTryTimeout);
  CHECK_FALSE(other->healthCheck.enabled);
  // An empty section turns the feature on with every default.
  CHECK(other->outlierDetection.enabled);
  CHECK(other->outlierDetection.consecutive5xx == 5);
  CHECK(other->outlierDetection.baseEjectionTime == 30s);
  CHECK(other->outlierDetection.location.line == 60);
  CHECK(other->outlierDetection.location.column == 24);
  // Keys left out of a section keep their defaults.
  CHECK(other->circuitBreakers.maxRequests == 5);
  CHECK(other->circuitBreakers.maxConnections == 1024);
  CHECK(other->circuitBreakers.maxPendingRequests == 1024);
  CHECK(config->findCluster("missing") == nullptr);
}

TEST_CASE("omitted fields take the defaults of config.h") {
  auto config = loadOk(kMinimal);
  CHECK(config->workers == 0);
  const ListenerConfig& l = config->listeners.at(0);
  CHECK(l.maxHeaderBytes == 16 * 1024);
  CHECK(l.maxHeaders == 100);
  CHECK(l.maxRequestBody == 10ull << 20);
  CHECK(l.headerTimeout == 10s);
  CHECK(l.idleTimeout == 60s);
  const ClusterConfig& c = config->clusters.at(0);
  CHECK(c.lbPolicy == LbPolicy::RoundRobin);
  CHECK(c.connectTimeout == 1s);
  CHECK(c.timeout == 15s);
  CHECK(c.retries == 1);
  CHECK(c.maxConnectionsPerHost == 1024);
  CHECK(c.maxIdlePerHost == 64);
  CHECK(c.idleTimeout == 30s);
  CHECK(c.retryOn == (kRetryConnectFailure | kRetryReset));
  CHECK_FALSE(c.perTryTimeout);
  CHECK(c.retryBudgetPercent == 20);
  CHECK(c.retryBudgetMinRetries == 3);
  CHECK_FALSE(c.healthCheck.enabled);
  CHECK_FALSE(c.outlierDetection.enabled);
  CHECK(c.noHealthyHosts == NoHealthyHosts::Panic);
  CHECK(c.circuitBreakers.maxConnections == 1024);
  CHECK(c.circuitBreakers.maxPendingRequests == 1024);
  CHECK(c.circuitBreakers.maxRequests == 1024);
  // A section that is present but empty is enabled with the defaults of config.h.
  auto sections = loadOk(kMinimal + "    health_check: {}\n    outlier_detection: {}\n");
  const HealthCheckConfig& hc = sections->clusters.at(0).healthCheck;
  CHECK(hc.enabled);
  CHECK(hc.path == "/health");
  CHECK(hc.interval == 2s);
  CHECK(hc.timeout == 1s);
  CHECK(hc.healthyThreshold == 2);
  CHECK(hc.unhealthyThreshold == 3);
  CHECK(hc.expectedStatuses == std::vector<std::pair<int, int>>{{200, 399}});
  CHECK(hc.initiallyHealthy);
  CHECK(hc.location.line == 12);
  CHECK(hc.location.column == 19);
  const OutlierDetectionConfig& od = sections->clusters.at(0).outlierDetection;
  CHECK(od.enabled);
  CHECK(od.consecutive5xx == 5);
  CHECK(od.consecutiveConnectFailures == 5);
  CHECK(od.baseEjectionTime == 30s);
  CHECK(od.maxEjectionTime == 300s);
  CHECK(od.maxEjectionPercent == 50);
  CHECK(od.location.line == 13);
  const Route& r = std::get<RouterConfig>(l.filters.at(0).settings).routes.at(0);
  CHECK_FALSE(r.timeout);
  CHECK_FALSE(r.retries);

  auto direct = loadOk(replace(kMinimal, "cluster: backends", "direct_response: {}"));
  const Route& d = std::get<RouterConfig>(direct->listeners[0].filters[0].settings).routes[0];
  REQUIRE(d.directResponse);
  CHECK(d.directResponse->status == 200);
  CHECK(d.directResponse->body.empty());
  CHECK(d.directResponse->contentType == "application/json");

  CHECK(loadOk("workers: auto\n" + kMinimal)->workers == 0);
  CHECK(loadOk("workers: 1024\n" + kMinimal)->workers == 1024);
  CHECK(loadOk("workers: '2'\n" + kMinimal)->workers == 2);  // quoted numbers are numbers too
}

TEST_CASE("environment variables are expanded in values before typing") {
  REQUIRE(setenv("FG_TEST_PORT", "8123", 1) == 0);
  REQUIRE(setenv("FG_TEST_EMPTY", "", 1) == 0);
  REQUIRE(setenv("FG_TEST_RETRIES", "4", 1) == 0);
  REQUIRE(unsetenv("FG_TEST_UNSET") == 0);
  auto config = loadOk(R"(listeners:
  - name: ${FG_TEST_UNSET:-pub}lic
    address: "127.0.0.1:${FG_TEST_PORT}"
    filters:
      - name: router
        routes:
          - match: { path: /price }
            direct_response: { body: &body "costs $$5, ${FG_TEST_EMPTY:-none}, $${FG_TEST_PORT}, $x" }
          - match: { path: /again }
            direct_response: { body: *body }
clusters:
  - name: backends
    hosts: ["${FG_TEST_UNSET:-127.0.0.1}:${FG_TEST_PORT:-1}"]
    retries: ${FG_TEST_RETRIES}
)");
  const ListenerConfig& l = config->listeners.at(0);
  CHECK(l.name == "public");
  CHECK(l.address.port == 8123);
  const auto& routes = std::get<RouterConfig>(l.filters.at(0).settings).routes;
  // An alias shares its anchor's node: expanded once, so "$${X}" stays the literal "${X}".
  CHECK(routes.at(0).directResponse->body == "costs $5, none, ${FG_TEST_PORT}, $x");
  CHECK(routes.at(1).directResponse->body == "costs $5, none, ${FG_TEST_PORT}, $x");
  CHECK(config->clusters.at(0).hosts.at(0).str() == "127.0.0.1:8123");
  CHECK(config->clusters.at(0).retries == 4);

  CHECK(onlyError(replace(kMinimal, "127.0.0.1:8000", "127.0.0.1:${FG_TEST_UNSET}")) ==
        "t.yaml:3:14: environment variable 'FG_TEST_UNSET' is not set "
        "(use ${FG_TEST_UNSET:-default} to give a default)");
  CHECK(onlyError(replace(kMinimal, "127.0.0.1:8000", "127.0.0.1:${FG_TEST_PORT")) ==
        "t.yaml:3:14: unterminated '${' in '127.0.0.1:${FG_TEST_PORT' (write $$ for a literal $)");
  CHECK(onlyError(replace(kMinimal, "127.0.0.1:8000", "127.0.0.1:${9X}")) ==
        "t.yaml:3:14: invalid environment variable name '9X' in '127.0.0.1:${9X}'");
  // The expanded value is what gets typed, and errors still point at the original node.
  REQUIRE(setenv("FG_TEST_PORT", "99999", 1) == 0);
  CHECK(onlyError(replace(kMinimal, "127.0.0.1:8000", "127.0.0.1:${FG_TEST_PORT}")) ==
        "t.yaml:3:14: invalid address '127.0.0.1:99999' for 'address': port 99999 out of range 1..65535");
}

TEST_CASE("YAML syntax errors carry yaml-cpp's position") {
  CHECK(onlyError("listeners: [a, b\n") == "t.yaml:2:1: YAML syntax error: end of sequence flow not found");
  CHECK(onlyError("listeners:\n  - name: a\n   bad: 1\n") ==
        "t.yaml:3:4: YAML syntax error: end of sequence not found");
}

TEST_CASE("unknown keys, with a suggestion when one is close") {
  std::vector<std::string> errors = errorsOf(replace(kMinimal, "    address:", "    adress:"));
  CHECK(errors ==
        std::vector<std::string>{"t.yaml:2:5: missing required key 'address' in listener",
                                 "t.yaml:3:5: unknown key 'adress' in listener (did you mean 'address'?)"});
  CHECK(onlyError(kMinimal + "    colour: blue\n") == "t.yaml:12:5: unknown key 'colour' in cluster");
  CHECK(onlyError(kMinimal + "listener: []\n") ==
        "t.yaml:12:1: unknown key 'listener' at top level (did you mean 'listeners'?)");
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ prefix: /, metods: [GET] }")) ==
        "t.yaml:7:33: unknown key 'metods' in route match (did you mean 'methods'?)");
  CHECK(onlyError(replace(kMinimal, "        routes:", "        rutes: []\n        routes:")) ==
        "t.yaml:6:9: unknown key 'rutes' in router filter (did you mean 'routes'?)");
  CHECK(onlyError(kMinimal + "    hosts: [127.0.0.1:9002]\n") ==
        "t.yaml:12:5: duplicate key 'hosts' in cluster");
}

TEST_CASE("wrong types say what was expected") {
  CHECK(onlyError("listeners: nope\n") == "t.yaml:1:12: 'listeners' must be a list, got 'nope'");
  CHECK(onlyError("- a\n") == "t.yaml:1:1: the top level must be a map, got a list");
  CHECK(onlyError(replace(kMinimal, "[127.0.0.1:9001]", "127.0.0.1:9001")) ==
        "t.yaml:11:12: 'hosts' must be a list, got '127.0.0.1:9001'");
  CHECK(onlyError(kMinimal + "    retries: [1]\n") ==
        "t.yaml:12:14: 'retries' must be an integer, got a list");
  CHECK(onlyError(kMinimal + "    retries: two\n") ==
        "t.yaml:12:14: 'retries' must be an integer, got 'two'");
  CHECK(onlyError(replace(kMinimal, "name: public", "name: { a: 1 }")) ==
        "t.yaml:2:11: 'name' must be a string, got a map");
  CHECK(onlyError(replace(kMinimal, "address: 127.0.0.1:8000", "address:")) ==
        "t.yaml:3:5: 'address' must be an address such as 127.0.0.1:8000, got no value");
  CHECK(onlyError(replace(kMinimal, "          - match: { prefix: / }\n            cluster: backends\n",
                          "          - /proxy\n")) == "t.yaml:7:13: route must be a map, got '/proxy'");
  // The route's cluster is then undefined too, which is true and worth saying.
  CHECK(errorsOf(replace(kMinimal, "  - name: backends\n    hosts: [127.0.0.1:9001]\n", "  - backends\n")) ==
        std::vector<std::string>{"t.yaml:8:22: route refers to undefined cluster 'backends'",
                                 "t.yaml:10:5: cluster must be a map, got 'backends'"});
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ prefix: /, methods: GET }")) ==
        "t.yaml:7:42: 'methods' must be a list, got 'GET'");
  CHECK(onlyError(kMinimal + "    timeout: {}\n") ==
        "t.yaml:12:14: 'timeout' must be a duration such as 10s, got a map");
}

TEST_CASE("missing required keys point at the map that lacks them") {
  CHECK(onlyError(replace(kMinimal, "    address: 127.0.0.1:8000\n", "")) ==
        "t.yaml:2:5: missing required key 'address' in listener");
  CHECK(onlyError(replace(kMinimal, "  - name: public\n    address", "  - address")) ==
        "t.yaml:2:5: missing required key 'name' in listener");
  CHECK(onlyError(replace(kMinimal, "    hosts: [127.0.0.1:9001]\n", "")) ==
        "t.yaml:10:5: missing required key 'hosts' in cluster");
  CHECK(onlyError(replace(kMinimal, "- match: { prefix: / }\n            cluster", "- cluster")) ==
        "t.yaml:7:13: missing required key 'match' in route");
  CHECK(errorsOf(replace(kMinimal,
                         "        routes:\n          - match: { prefix: / }\n            cluster: backends\n",
                         "        other: 1\n")) ==
        std::vector<std::string>{"t.yaml:5:9: missing required key 'routes' in router filter",
                                 "t.yaml:6:9: unknown key 'other' in router filter"});
  CHECK(onlyError("workers: 2\n") == "t.yaml:1:1: missing required key 'listeners' at top level");
  CHECK(onlyError("") == "t.yaml:1:1: config is empty; expected a map with at least 'listeners'");
}

TEST_CASE("routes need exactly one target and exactly one match kind") {
  CHECK(onlyError(
            replace(kMinimal, "cluster: backends", "cluster: backends\n            direct_response: {}")) ==
        "t.yaml:7:13: route needs exactly one of 'cluster', 'direct_response' or 'handler'");
  CHECK(onlyError(replace(kMinimal, "            cluster: backends\n", "            retries: 1\n")) ==
        "t.yaml:7:13: route needs exactly one of 'cluster', 'direct_response' or 'handler'");
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ prefix: /, path: /x }")) ==
        "t.yaml:7:20: route match needs exactly one of 'prefix' or 'path'");
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ methods: [GET] }")) ==
        "t.yaml:7:20: route match needs exactly one of 'prefix' or 'path'");
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ prefix: proxy }")) ==
        "t.yaml:7:30: 'prefix' must start with '/', got 'proxy'");
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ path: '' }")) ==
        "t.yaml:7:28: 'path' must start with '/', got ''");
  CHECK(onlyError(replace(
            kMinimal, "        routes:\n          - match: { prefix: / }\n            cluster: backends\n",
            "        routes: []\n")) == "t.yaml:6:17: router needs at least one route");
}

TEST_CASE("unknown filters") {
  std::string twoFilters =
      replace(kMinimal, "      - name: router\n", "      - name: rooter\n      - name: router\n");
  CHECK(onlyError(twoFilters) == "t.yaml:5:15: unknown filter 'rooter' (did you mean 'router'?)");
  CHECK(onlyError(replace(twoFilters, "rooter", "cache")) ==
        "t.yaml:5:15: unknown filter 'cache' (known filters: auth, buffer, cors, headers, ip_filter, "
        "metrics, rate_limit, router, server_timing)");
}

TEST_CASE("the router is the one terminal filter and comes last") {
  // Absent: the filters list itself is reported.
  CHECK(onlyError(replace(kMinimal,
                          "    filters:\n      - name: router\n        routes:\n          - match: { prefix: "
                          "/ }\n            cluster: backends\n",
                          "    filters: []\n")) ==
        "t.yaml:4:14: filter list must end with the 'router' filter (the terminal filter)");
  std::string routes = "        routes:\n          - match: { prefix: / }\n            cluster: backends\n";
  std::string twice = replace(kMinimal, routes, routes + "      - name: router\n" + routes);
  CHECK(errorsOf(twice) ==
        std::vector<std::string>{
            "t.yaml:5:9: 'router' must be the last filter (it is terminal: filters after it never run)",
            "t.yaml:9:9: a second terminal filter 'router': a listener has exactly one, at the end"});
  CHECK(errorsOf(replace(twice, "      - name: router\n" + routes + "clusters",
                         "      - name: r0uter\nclusters")) ==
        std::vector<std::string>{
            "t.yaml:5:9: 'router' must be the last filter (it is terminal: filters after it never run)",
            "t.yaml:9:15: unknown filter 'r0uter' (did you mean 'router'?)"});
}

TEST_CASE("routes must name a defined cluster") {
  CHECK(onlyError(replace(kMinimal, "cluster: backends", "cluster: backend")) ==
        "t.yaml:8:22: route refers to undefined cluster 'backend'");
  // Routes are checked against every cluster of the file, wherever it is defined.
  CHECK(loadOk("clusters:\n  - name: backends\n    hosts: [127.0.0.1:1]\n" +
               kMinimal.substr(0, kMinimal.find("clusters:")))
            ->clusters.size() == 1);
}

TEST_CASE("bad addresses") {
  auto address = [](const std::string& value) {
    return onlyError(replace(kMinimal, "127.0.0.1:8000", value));
  };
  CHECK(address("127.0.0.1") ==
        "t.yaml:3:14: invalid address '127.0.0.1' for 'address': no port; expected host:port, e.g. "
        "127.0.0.1:8000");
  CHECK(address("127.0.0.1:0") ==
        "t.yaml:3:14: invalid address '127.0.0.1:0' for 'address': port 0 out of range 1..65535");
  CHECK(address("127.0.0.1:70000") ==
        "t.yaml:3:14: invalid address '127.0.0.1:70000' for 'address': port 70000 out of range 1..65535");
  CHECK(address("example.com:80") ==
        "t.yaml:3:14: invalid address 'example.com:80' for 'address': host 'example.com' is not an IPv4/IPv6 "
        "literal or 'localhost'");
  CHECK(address("'::1:80'") ==
        "t.yaml:3:14: invalid address '::1:80' for 'address': an IPv6 host needs brackets, e.g. [::1]:8000");
  CHECK(onlyError(replace(kMinimal, "[127.0.0.1:9001]", "[127.0.0.1:9001, 10.0.0.300:1]")) ==
        "t.yaml:11:29: invalid address '10.0.0.300:1' for 'hosts': host '10.0.0.300' is neither an IPv4/IPv6 "
        "literal nor a host name");
  CHECK(onlyError(replace(kMinimal, "[127.0.0.1:9001]", "[127.0.0.1:9001, 127.0.0.1:9001]")) ==
        "t.yaml:11:29: duplicate host '127.0.0.1:9001' in cluster");
  CHECK(onlyError(replace(kMinimal, "[127.0.0.1:9001]", "[]")) ==
        "t.yaml:11:12: cluster needs at least one host");
}

TEST_CASE("bad durations and sizes") {
  CHECK(onlyError(kMinimal + "    timeout: 10\n") ==
        "t.yaml:12:14: invalid duration '10' for 'timeout': duration needs a unit, e.g. 10s");
  CHECK(onlyError(kMinimal + "    connect_timeout: 1d\n") ==
        "t.yaml:12:22: invalid duration '1d' for 'connect_timeout': unknown unit 'd' (use ms, s, m or h)");
  CHECK(onlyError(kMinimal + "    idle_timeout: 99999999999999999h\n") ==
        "t.yaml:12:19: invalid duration '99999999999999999h' for 'idle_timeout': too large");
  CHECK(onlyError(replace(kMinimal, "    filters:", "    max_request_body: 10XB\n    filters:")) ==
        "t.yaml:4:23: invalid size '10XB' for 'max_request_body': unknown unit 'XB' (use B, KB, KiB, MB, "
        "MiB, GB or GiB)");
  CHECK(onlyError(replace(kMinimal, "    filters:", "    max_header_bytes: -1KiB\n    filters:")) ==
        "t.yaml:4:23: invalid size '-1KiB' for 'max_header_bytes': must not be negative");
  CHECK(onlyError(replace(kMinimal, "    filters:", "    max_header_bytes: 0\n    filters:")) ==
        "t.yaml:4:23: 'max_header_bytes' must be at least 1 bytes, got 0");
  // 0 means "unlimited" for the body, so it is accepted there.
  CHECK(loadOk(replace(kMinimal, "    filters:", "    max_request_body: 0\n    filters:"))
            ->listeners[0]
            .maxRequestBody == 0);
}

TEST_CASE("timeouts and counts that must be positive") {
  CHECK(onlyError(kMinimal + "    connect_timeout: 0s\n") ==
        "t.yaml:12:22: 'connect_timeout' must be greater than 0, got 0s");
  CHECK(onlyError(replace(kMinimal, "    filters:", "    header_timeout: 0ms\n    filters:")) ==
        "t.yaml:4:21: 'header_timeout' must be greater than 0, got 0ms");
  CHECK(onlyError(replace(kMinimal, "cluster: backends", "cluster: backends\n            timeout: -1s")) ==
        "t.yaml:9:22: invalid duration '-1s' for 'timeout': must not be negative");
  CHECK(onlyError(replace(kMinimal, "    filters:", "    max_headers: 0\n    filters:")) ==
        "t.yaml:4:18: 'max_headers' must be a positive integer, got 0");
  CHECK(onlyError(kMinimal + "    max_connections_per_host: -3\n") ==
        "t.yaml:12:31: 'max_connections_per_host' must be a positive integer, got -3");
  CHECK(onlyError(kMinimal + "    max_idle_per_host: -1\n") ==
        "t.yaml:12:24: 'max_idle_per_host' must be between 0 and 4294967295, got -1");
  CHECK(onlyError(kMinimal + "    retries: 11\n") ==
        "t.yaml:12:14: 'retries' must be between 0 and 10, got 11");
  CHECK(onlyError(replace(kMinimal, "cluster: backends", "cluster: backends\n            retries: -1")) ==
        "t.yaml:9:22: 'retries' must be between 0 and 10, got -1");
}

TEST_CASE("direct response status, lb_policy and methods") {
  CHECK(onlyError(replace(kMinimal, "cluster: backends", "direct_response: { status: 600 }")) ==
        "t.yaml:8:40: 'status' must be between 100 and 599, got 600");
  CHECK(onlyError(replace(kMinimal, "cluster: backends", "direct_response: { status: 99 }")) ==
        "t.yaml:8:40: 'status' must be between 100 and 599, got 99");
  CHECK(onlyError(kMinimal + "    lb_policy: random\n") ==
        "t.yaml:12:16: unknown lb_policy 'random' (expected one of: round_robin)");
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ prefix: /, methods: [GET, 'PO ST'] }")) ==
        "t.yaml:7:48: invalid HTTP method 'PO ST': expected a token such as GET or POST");
}

TEST_CASE("workers is auto or 1..1024") {
  CHECK(onlyError("workers: 0\n" + kMinimal) ==
        "t.yaml:1:10: 'workers' must be 'auto' or an integer between 1 and 1024, got '0'");
  CHECK(onlyError("workers: 1025\n" + kMinimal) ==
        "t.yaml:1:10: 'workers' must be 'auto' or an integer between 1 and 1024, got '1025'");
  CHECK(onlyError("workers: many\n" + kMinimal) ==
        "t.yaml:1:10: 'workers' must be 'auto' or an integer between 1 and 1024, got 'many'");
  CHECK(onlyError("workers: [1]\n" + kMinimal) ==
        "t.yaml:1:10: 'workers' must be 'auto' or an integer between 1 and 1024, got a list");
}

TEST_CASE("no listeners") {
  CHECK(onlyError("listeners: []\n") == "t.yaml:1:12: no listeners: at least one listener is required");
  CHECK(onlyError("clusters: []\n") == "t.yaml:1:1: missing required key 'listeners' at top level");
}

TEST_CASE("duplicate names and addresses") {
  std::string listener = kMinimal.substr(kMinimal.find("  - name: public"),
                                         kMinimal.find("clusters:") - kMinimal.find("  - name: public"));
  // A second copy of the listener becomes lines 9..15 and the clusters move to line 16.
  std::string twoListeners = replace(kMinimal, "clusters:", listener + "clusters:");
  CHECK(errorsOf(twoListeners) ==
        std::vector<std::string>{"t.yaml:9:11: duplicate listener name 'public' (first defined at line 2)",
                                 "t.yaml:10:14: duplicate listener address '127.0.0.1:8000' (already used by "
                                 "listener 'public' at line 3)"});
  std::string renamed =
      replace(replace(twoListeners,
                      "name: public\n    address: 127.0.0.1:8000\n    filters:\n      - name: router\n       "
                      " routes:\n          - match: { prefix: / }\n            cluster: backends\nclusters",
                      "name: other\n    address: 127.0.0.1:8000\n    filters:\n      - name: router\n        "
                      "routes:\n          - match: { prefix: / }\n            cluster: backends\nclusters"),
              "127.0.0.1:8000", "0.0.0.0:8000");
  CHECK(onlyError(renamed) ==
        "t.yaml:10:14: listener address '127.0.0.1:8000' overlaps '0.0.0.0:8000' of listener 'public' at "
        "line 3");
  CHECK(loadOk(replace(renamed, "0.0.0.0:8000", "0.0.0.0:8001"))->listeners.size() == 2);

  CHECK(onlyError(kMinimal + "  - name: backends\n    hosts: [127.0.0.1:9002]\n") ==
        "t.yaml:12:11: duplicate cluster name 'backends' (first defined at line 10)");
}

TEST_CASE("every error of a file is reported, in file order") {
  std::vector<std::string> errors = errorsOf(R"(workers: none
listeners:
  - name: public
    address: 127.0.0.1
    header_timeout: 10
    filters:
      - name: router
        routes:
          - match: { prefix: x }
            cluster: nowhere
clusters:
  - name: backends
    hosts: [127.0.0.1:9001]
    lb_policy: least_request
    retries: ${FG_TEST_SURELY_UNSET}
)");
  CHECK(errors ==
        std::vector<std::string>{
            "t.yaml:1:10: 'workers' must be 'auto' or an integer between 1 and 1024, got 'none'",
            "t.yaml:4:14: invalid address '127.0.0.1' for 'address': no port; expected host:port, e.g. "
            "127.0.0.1:8000",
            "t.yaml:5:21: invalid duration '10' for 'header_timeout': duration needs a unit, e.g. 10s",
            "t.yaml:9:30: 'prefix' must start with '/', got 'x'",
            "t.yaml:10:22: route refers to undefined cluster 'nowhere'",
            "t.yaml:14:16: unknown lb_policy 'least_request' (expected one of: round_robin)",
            "t.yaml:15:14: environment variable 'FG_TEST_SURELY_UNSET' is not set (use "
            "${FG_TEST_SURELY_UNSET:-default} to give a default)"});
}

TEST_CASE("loadConfigFile reports an unreadable file without a position") {
  LoadResult missing = loadConfigFile("/nonexistent/flowguard.yaml");
  REQUIRE(missing.errors.size() == 1);
  CHECK_FALSE(missing.config);
  CHECK(missing.errors[0].line == 0);
  CHECK(missing.errors[0].str() ==
        std::string("/nonexistent/flowguard.yaml: cannot read config file: ") + std::strerror(ENOENT));
  LoadResult directory = loadConfigFile("/tmp");
  REQUIRE(directory.errors.size() == 1);
  CHECK(directory.errors[0].str() == std::string("/tmp: cannot read config file: ") + std::strerror(EISDIR));
}

TEST_CASE("max_pending_requests moved from the cluster into circuit_breakers") {
  CHECK(onlyError(kMinimal + "    max_pending_requests: 1024\n") ==
        "t.yaml:12:5: 'max_pending_requests' moved into circuit_breakers (where it limits the whole "
        "cluster, not each worker): circuit_breakers: { max_pending_requests: N }");
  CHECK(loadOk(kMinimal + "    circuit_breakers: { max_pending_requests: 3 }\n")
            ->clusters[0]
            .circuitBreakers.maxPendingRequests == 3);
}

TEST_CASE("unknown keys in the new cluster sections") {
  CHECK(onlyError(kMinimal + "    health_check: { intervall: 2s }\n") ==
        "t.yaml:12:21: unknown key 'intervall' in health_check (did you mean 'interval'?)");
  CHECK(onlyError(kMinimal + "    outlier_detection:\n      consecutive_5xxx: 3\n") ==
        "t.yaml:13:7: unknown key 'consecutive_5xxx' in outlier_detection (did you mean 'consecutive_5xx'?)");
  CHECK(onlyError(kMinimal + "    circuit_breakers: { max_request: 5 }\n") ==
        "t.yaml:12:25: unknown key 'max_request' in circuit_breakers (did you mean 'max_requests'?)");
  CHECK(onlyError(kMinimal + "    retry_budget: { percnt: 5 }\n") ==
        "t.yaml:12:21: unknown key 'percnt' in retry_budget (did you mean 'percent'?)");
  CHECK(onlyError(kMinimal + "    helth_check: {}\n") ==
        "t.yaml:12:5: unknown key 'helth_check' in cluster (did you mean 'health_check'?)");
}

TEST_CASE("new cluster keys with the wrong type") {
  CHECK(onlyError(kMinimal + "    health_check: true\n") ==
        "t.yaml:12:19: 'health_check' must be a map, got 'true'");
  CHECK(onlyError(kMinimal + "    outlier_detection:\n") ==
        "t.yaml:12:5: 'outlier_detection' has no value (write 'outlier_detection: {}' to use the defaults)");
  CHECK(onlyError(kMinimal + "    circuit_breakers: [1]\n") ==
        "t.yaml:12:23: 'circuit_breakers' must be a map, got a list");
  CHECK(onlyError(kMinimal + "    retry_on: reset\n") ==
        "t.yaml:12:15: 'retry_on' must be a list, got 'reset'");
  CHECK(onlyError(kMinimal + "    retry_on: [reset, [5xx]]\n") ==
        "t.yaml:12:23: 'retry_on entry' must be a string, got a list");
  CHECK(onlyError(kMinimal + "    per_try_timeout: 2\n") ==
        "t.yaml:12:22: invalid duration '2' for 'per_try_timeout': duration needs a unit, e.g. 10s");
  CHECK(onlyError(kMinimal + "    health_check: { healthy_threshold: two }\n") ==
        "t.yaml:12:40: 'healthy_threshold' must be an integer, got 'two'");
  CHECK(onlyError(kMinimal + "    health_check: { expected_statuses: 200 }\n") ==
        "t.yaml:12:40: 'expected_statuses' must be a list, got '200'");
  CHECK(onlyError(kMinimal + "    health_check: { path: [/a] }\n") ==
        "t.yaml:12:27: 'path' must be a string, got a list");
}

TEST_CASE("retry_on names") {
  CHECK(onlyError(kMinimal + "    retry_on: [reset, 5XX]\n") ==
        "t.yaml:12:23: unknown retry_on condition '5XX' (did you mean '5xx'?)");
  CHECK(onlyError(kMinimal + "    retry_on: [connect-failure, timeout]\n") ==
        "t.yaml:12:33: unknown retry_on condition 'timeout' "
        "(expected one of: connect-failure, reset, 5xx, gateway-error)");
  CHECK(onlyError(kMinimal + "    retry_on: [reset, reset]\n") ==
        "t.yaml:12:23: duplicate retry_on condition 'reset'");
  CHECK(onlyError(kMinimal + "    retry_on: []\n") ==
        "t.yaml:12:15: 'retry_on' must not be empty (set 'retries: 0' to turn retries off)");
}

TEST_CASE("ranges of the new cluster keys") {
  CHECK(onlyError(kMinimal + "    per_try_timeout: 0ms\n") ==
        "t.yaml:12:22: 'per_try_timeout' must be greater than 0, got 0ms");
  CHECK(onlyError(kMinimal + "    retry_budget: { percent: 101 }\n") ==
        "t.yaml:12:30: 'percent' must be between 0 and 100, got 101");
  CHECK(onlyError(kMinimal + "    retry_budget: { min_retries: 1001 }\n") ==
        "t.yaml:12:34: 'min_retries' must be between 0 and 1000, got 1001");
  CHECK(onlyError(kMinimal + "    health_check: { healthy_threshold: 0 }\n") ==
        "t.yaml:12:40: 'healthy_threshold' must be a positive integer, got 0");
  CHECK(onlyError(kMinimal + "    health_check: { unhealthy_threshold: 101 }\n") ==
        "t.yaml:12:42: 'unhealthy_threshold' must be between 1 and 100, got 101");
  CHECK(onlyError(kMinimal + "    health_check: { interval: 0s }\n") ==
        "t.yaml:12:31: 'interval' must be greater than 0, got 0s");
  CHECK(onlyError(kMinimal + "    outlier_detection: { consecutive_5xx: -1 }\n") ==
        "t.yaml:12:43: 'consecutive_5xx' must be between 0 and 4294967295, got -1");
  CHECK(onlyError(kMinimal + "    outlier_detection: { max_ejection_percent: 101 }\n") ==
        "t.yaml:12:48: 'max_ejection_percent' must be between 0 and 100, got 101");
  CHECK(onlyError(kMinimal + "    circuit_breakers: { max_connections: 0 }\n") ==
        "t.yaml:12:42: 'max_connections' must be a positive integer, got 0");
  CHECK(onlyError(kMinimal + "    circuit_breakers: { max_requests: 10000001 }\n") ==
        "t.yaml:12:39: 'max_requests' must be between 1 and 10000000, got 10000001");
}

TEST_CASE("health_check path, timeout and statuses") {
  CHECK(onlyError(kMinimal + "    health_check: { path: health }\n") ==
        "t.yaml:12:27: 'path' must start with '/', got 'health'");
  CHECK(onlyError(kMinimal + "    health_check: { path: '/a b' }\n") ==
        "t.yaml:12:27: 'path' must not contain spaces or control characters, got '/a b'");
  CHECK(onlyError(kMinimal + "    health_check: { interval: 1s, timeout: 1500ms }\n") ==
        "t.yaml:12:44: health_check 'timeout' (1500ms) must not exceed 'interval' (1s)");
  // The interval alone can undercut the default timeout; the interval is then what to point at.
  CHECK(onlyError(kMinimal + "    health_check:\n      interval: 500ms\n") ==
        "t.yaml:13:17: health_check 'timeout' (1s, the default) must not exceed 'interval' (500ms)");
  CHECK(onlyError(kMinimal + "    health_check: { timeout: 3s }\n") ==
        "t.yaml:12:30: health_check 'timeout' (3s) must not exceed 'interval' (2s, the default)");
  // An invalid interval is reported once, not compared as well.
  CHECK(onlyError(kMinimal + "    health_check: { interval: 1x, timeout: 5s }\n") ==
        "t.yaml:12:31: invalid duration '1x' for 'interval': unknown unit 'x' (use ms, s, m or h)");

  auto statuses = [](const std::string& list) {
    return onlyError(kMinimal + "    health_check:\n      expected_statuses: " + list + "\n");
  };
  CHECK(statuses("[200, 600]") ==
        "t.yaml:13:32: status 600 in 'expected_statuses' must be between 100 and 599");
  CHECK(statuses("[\"200-700\"]") ==
        "t.yaml:13:27: status 700 in 'expected_statuses' must be between 100 and 599");
  CHECK(statuses("[\"99-200\"]") ==
        "t.yaml:13:27: status 99 in 'expected_statuses' must be between 100 and 599");
  CHECK(statuses("[\"300-200\"]") ==
        "t.yaml:13:27: range '300-200' in 'expected_statuses' is empty: its start must not exceed its end");
  CHECK(statuses("[2xx]") ==
        "t.yaml:13:27: 'expected_statuses' entry must be a status such as 200 or a range such as "
        "\"200-299\", got '2xx'");
  CHECK(statuses("[\"200-\"]") ==
        "t.yaml:13:27: 'expected_statuses' entry must be a status such as 200 or a range such as "
        "\"200-299\", got '200-'");
  CHECK(statuses("[-200]") == "t.yaml:13:27: status -200 in 'expected_statuses' must be between 100 and 599");
  CHECK(statuses("[{a: 1}]") == "t.yaml:13:27: 'expected_statuses entry' must be a string, got a map");
  CHECK(statuses("[]") ==
        "t.yaml:13:26: 'expected_statuses' must not be empty (no answer could count as healthy)");
}

TEST_CASE("outlier ejection times") {
  CHECK(
      onlyError(kMinimal + "    outlier_detection: { base_ejection_time: 1m, max_ejection_time: 30s }\n") ==
      "t.yaml:12:69: outlier_detection 'max_ejection_time' (30s) must be at least 'base_ejection_time' (1m)");
  CHECK(onlyError(kMinimal + "    outlier_detection: { base_ejection_time: 10m }\n") ==
        "t.yaml:12:46: outlier_detection 'max_ejection_time' (5m, the default) must be at least "
        "'base_ejection_time' (10m)");
}

TEST_CASE("one-of-a-set values: initial_state, no_healthy_hosts") {
  CHECK(onlyError(kMinimal + "    health_check: { initial_state: healty }\n") ==
        "t.yaml:12:36: unknown initial_state 'healty' (did you mean 'healthy'?)");
  CHECK(onlyError(kMinimal + "    health_check: { initial_state: up }\n") ==
        "t.yaml:12:36: unknown initial_state 'up' (expected one of: healthy, unhealthy)");
  CHECK(onlyError(kMinimal + "    no_healthy_hosts: fail\n") ==
        "t.yaml:12:23: unknown no_healthy_hosts 'fail' (expected one of: panic, reject)");
  CHECK(onlyError(kMinimal + "    no_healthy_hosts: rejct\n") ==
        "t.yaml:12:23: unknown no_healthy_hosts 'rejct' (did you mean 'reject'?)");
  CHECK(loadOk(kMinimal + "    no_healthy_hosts: panic\n")->clusters[0].noHealthyHosts ==
        NoHealthyHosts::Panic);
  CHECK_FALSE(loadOk(kMinimal + "    health_check: { initial_state: unhealthy }\n")
                  ->clusters[0]
                  .healthCheck.initiallyHealthy);
}

TEST_CASE("the shipped config files load") {
  const char* source = std::getenv("FLOWGUARD_SOURCE_DIR");
  REQUIRE_MESSAGE(source, "FLOWGUARD_SOURCE_DIR is not set (run through ctest)");
  REQUIRE(unsetenv("FG_BENCH_PORT") == 0);
  REQUIRE(unsetenv("FG_BENCH_UPSTREAM_PORT") == 0);
  REQUIRE(unsetenv("FLOWGUARD_STORAGE_URL") == 0);
  REQUIRE(unsetenv("FLOWGUARD_ADMIN_ADDRESS") == 0);
  REQUIRE(unsetenv("FLOWGUARD_ADMIN_TOKEN") == 0);
  REQUIRE(unsetenv("FLOWGUARD_STATE_DIR") == 0);

  REQUIRE(unsetenv("FLOWGUARD_CORS_ORIGIN") == 0);
  flowguard::filters::registerPluggedFilters();  // the root file has cors, a filter of its own folder

  LoadResult shipped = loadConfigFile(std::string(source) + "/flowguard.yaml");
  for (const ConfigError& e : shipped.errors) FAIL_CHECK(e.str());
  REQUIRE(shipped.ok());
  const Config& config = *shipped.config;
  REQUIRE(config.listeners.size() == 1);
  CHECK(config.listeners[0].name == "public");
  CHECK(config.admin.configured);
  CHECK(config.admin.address.str() == "127.0.0.1:9901");
  CHECK(config.admin.token.empty());
  CHECK_FALSE(config.admin.tokenRequired);
  CHECK(config.stateDir == ".");
  // The embedded default: SQLite in the working directory, two plans.
  CHECK(config.storage.configured);
  CHECK(config.storage.url == "sqlite://./flowguard.db");
  CHECK(config.storage.requestLog);
  CHECK(config.storage.flushInterval == 200ms);
  REQUIRE(config.plans.size() == 2);
  CHECK(config.plans[0].name == "free");
  CHECK(config.plans[0].limit.requests == 10);
  CHECK(config.plans[0].limit.burst == 20);
  CHECK(config.plans[1].name == "pro");
  CHECK(config.listeners[0].address.str() == "0.0.0.0:8000");
  const std::vector<FilterConfig>& filters = config.listeners[0].filters;
  REQUIRE(filters.size() == 5);
  CHECK(filters[0].name == "cors");
  const auto* cors = dynamic_cast<const flowguard::filters::cors::Settings*>(
      std::get<PluginFilterConfig>(filters[0].settings).settings.get());
  REQUIRE(cors != nullptr);
  CHECK(cors->allowsOrigin("http://localhost:3000"));
  CHECK_FALSE(cors->allowsOrigin("http://localhost:3001"));
  const auto& auth = pluginSettings<flowguard::filters::AuthSettings>(filters[1]);
  CHECK(auth.header == "x-api-key");
  REQUIRE(auth.keys.size() == 1);
  CHECK(auth.keys[0].key == "test-api-key");
  CHECK(auth.keys[0].name == "demo");
  // The gateway's own answers need no key, as in the original FlowGuard.
  REQUIRE(auth.exempt.size() == 7);
  CHECK(auth.exempt[0].path == "/status");
  // Only what its route answers: other methods fall through to the cluster (issue 18).
  CHECK(auth.exempt[0].methods == std::vector<std::string>{"GET", "HEAD"});
  CHECK(auth.exempt[1].path == "/register");
  CHECK(auth.exempt[1].methods == std::vector<std::string>{"POST"});
  CHECK(auth.exempt[2].path == "/metrics");
  CHECK(auth.exempt[2].methods == std::vector<std::string>{"GET", "HEAD"});
  for (size_t i = 3; i < 7; ++i) CHECK(auth.exempt[i].methods.empty());
  const auto& limits = pluginSettings<flowguard::filters::RateLimitSettings>(filters[2]);
  CHECK(limits.limit.algorithm == RateLimitAlgorithm::TokenBucket);
  CHECK(limits.limit.requests == 10);
  CHECK(limits.limit.period == 1s);
  CHECK(limits.limit.burst == 20);
  CHECK(limits.by == flowguard::filters::RateLimitKeyBy::ApiKey);
  CHECK(limits.store == flowguard::filters::RateLimitStore::Local);
  CHECK_FALSE(pluginSettings<flowguard::filters::MetricsSettings>(filters[3]).accessLog.enabled);
  CHECK_FALSE(config.redis.configured);
  const auto& routes = std::get<RouterConfig>(filters[4].settings).routes;
  REQUIRE(routes.size() == 10);
  CHECK(routes[0].match.path == "/status");
  REQUIRE(routes[0].directResponse);
  CHECK(routes[0].directResponse->body == R"({"status":"ok","service":"flowguard"})");
  CHECK(routes[1].match.path == "/metrics");
  CHECK(routes[1].handler.kind == RouteHandler::Summary);
  // Every path the original served on its one port and that is the operator's here: each
  // exempt from auth (above) and answered by admin_only, so none reaches a backend.
  std::vector<std::string> adminOnly;
  for (size_t i = 2; i < 6; ++i) {
    CHECK(routes[i].handler.kind == RouteHandler::AdminOnly);
    adminOnly.push_back(routes[i].match.path);
    CHECK(auth.exempt[i + 1].path == routes[i].match.path);
  }
  CHECK(adminOnly == std::vector<std::string>{"/all_keys", "/view_logs", "/server", "/server_stats"});
  CHECK(routes[6].match.path == "/register");
  CHECK(routes[6].handler.kind == RouteHandler::Register);
  CHECK_FALSE(routes[6].handler.uniqueNames);
  CHECK(routes[7].match.prefix == "/metrics/");
  CHECK(routes[7].handler.kind == RouteHandler::KeyMetrics);
  CHECK_FALSE(routes[7].handler.anyKey);
  CHECK(routes[8].match.prefix == "/proxy");
  CHECK(routes[9].match.prefix == "/");
  const ClusterConfig* backends = config.findCluster("backends");
  REQUIRE(backends);
  CHECK(backends->hosts.size() == 3);
  CHECK(backends->retries == 2);
  CHECK(backends->retryOn == (kRetryConnectFailure | kRetryReset | kRetryGatewayError));
  CHECK(backends->healthCheck.enabled);
  CHECK(backends->healthCheck.path == "/health");
  CHECK(backends->healthCheck.interval == 2s);
  CHECK(backends->healthCheck.timeout == 1s);
  CHECK(backends->healthCheck.healthyThreshold == 2);
  CHECK(backends->healthCheck.unhealthyThreshold == 3);
  CHECK(backends->outlierDetection.enabled);
  CHECK(backends->outlierDetection.consecutive5xx == 5);
  CHECK(backends->outlierDetection.consecutiveConnectFailures == 3);
  CHECK(backends->outlierDetection.baseEjectionTime == 10s);
  CHECK(backends->noHealthyHosts == NoHealthyHosts::Panic);
  CHECK(backends->circuitBreakers.maxPendingRequests == 1024);

  LoadResult bench = loadConfigFile(std::string(source) + "/bench/flowguard-bench.yaml");
  for (const ConfigError& e : bench.errors) FAIL_CHECK(e.str());
  REQUIRE(bench.ok());
  CHECK(bench.config->workers == 1);
  CHECK(bench.config->listeners.at(0).address.str() == "127.0.0.1:18080");
  CHECK(bench.config->clusters.at(0).hosts.at(0).str() == "127.0.0.1:18081");

  REQUIRE(setenv("FG_BENCH_PORT", "28080", 1) == 0);
  REQUIRE(setenv("FG_BENCH_UPSTREAM_PORT", "28081", 1) == 0);
  LoadResult moved = loadConfigFile(std::string(source) + "/bench/flowguard-bench.yaml");
  REQUIRE(moved.ok());
  CHECK(moved.config->listeners.at(0).address.port == 28080);
  CHECK(moved.config->clusters.at(0).hosts.at(0).port == 28081);
  unsetenv("FG_BENCH_PORT");
  unsetenv("FG_BENCH_UPSTREAM_PORT");
}
