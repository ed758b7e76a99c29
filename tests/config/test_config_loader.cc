#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "config/config_loader.h"

using namespace flowguard::config;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> errorsOf(const std::string& yaml) {
  LoadResult result = loadConfigText(yaml, "t.yaml");
  std::vector<std::string> out;
  for (const ConfigError& e : result.errors) out.push_back(e.str());
  CHECK(result.ok() == (result.config != nullptr));
  return out;
}

// The one error a snippet must produce, or a failed check listing what came instead.
std::string onlyError(const std::string& yaml) {
  std::vector<std::string> errors = errorsOf(yaml);
  INFO("errors: " << [&] {
    std::string all;
    for (const std::string& e : errors) all += "\n  " + e;
    return all;
  }());
  REQUIRE(errors.size() == 1);
  return errors[0];
}

std::shared_ptr<const Config> loadOk(const std::string& yaml) {
  LoadResult result = loadConfigText(yaml, "t.yaml");
  for (const ConfigError& e : result.errors) FAIL_CHECK(e.str());
  REQUIRE(result.ok());
  REQUIRE(result.config);
  return result.config;
}

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
    max_pending_requests: 0
    max_idle_per_host: 5
    idle_timeout: 45s
  - name: other
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

  REQUIRE(config->clusters.size() == 2);
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
  CHECK(backends->maxPendingRequests == 0);
  CHECK(backends->maxIdlePerHost == 5);
  CHECK(backends->idleTimeout == 45s);
  CHECK(backends->location.line == 29);
  CHECK(config->findCluster("other") == &config->clusters[1]);
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
  CHECK(c.maxPendingRequests == 1024);
  CHECK(c.maxIdlePerHost == 64);
  CHECK(c.idleTimeout == 30s);
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
  CHECK(errors == std::vector<std::string>{
                      "t.yaml:2:5: missing required key 'address' in listener",
                      "t.yaml:3:5: unknown key 'adress' in listener (did you mean 'address'?)"});
  CHECK(onlyError(kMinimal + "    colour: blue\n") == "t.yaml:12:5: unknown key 'colour' in cluster");
  CHECK(onlyError(kMinimal + "listener: []\n") ==
        "t.yaml:12:1: unknown key 'listener' at top level (did you mean 'listeners'?)");
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ prefix: /, metods: [GET] }")) ==
        "t.yaml:7:33: unknown key 'metods' in route match (did you mean 'methods'?)");
  CHECK(onlyError(replace(kMinimal, "        routes:", "        rutes: []\n        routes:")) ==
        "t.yaml:6:9: unknown key 'rutes' in router filter (did you mean 'routes'?)");
  CHECK(onlyError(kMinimal + "    hosts: [127.0.0.1:9002]\n") == "t.yaml:12:5: duplicate key 'hosts' in cluster");
}

TEST_CASE("wrong types say what was expected") {
  CHECK(onlyError("listeners: nope\n") == "t.yaml:1:12: 'listeners' must be a list, got 'nope'");
  CHECK(onlyError("- a\n") == "t.yaml:1:1: the top level must be a map, got a list");
  CHECK(onlyError(replace(kMinimal, "[127.0.0.1:9001]", "127.0.0.1:9001")) ==
        "t.yaml:11:12: 'hosts' must be a list, got '127.0.0.1:9001'");
  CHECK(onlyError(kMinimal + "    retries: [1]\n") == "t.yaml:12:14: 'retries' must be an integer, got a list");
  CHECK(onlyError(kMinimal + "    retries: two\n") == "t.yaml:12:14: 'retries' must be an integer, got 'two'");
  CHECK(onlyError(replace(kMinimal, "name: public", "name: { a: 1 }")) ==
        "t.yaml:2:11: 'name' must be a string, got a map");
  CHECK(onlyError(replace(kMinimal, "address: 127.0.0.1:8000", "address:")) ==
        "t.yaml:3:5: 'address' must be an address such as 127.0.0.1:8000, got no value");
  CHECK(onlyError(replace(kMinimal, "          - match: { prefix: / }\n            cluster: backends\n",
                          "          - /proxy\n")) ==
        "t.yaml:7:13: route must be a map, got '/proxy'");
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
  CHECK(onlyError(replace(kMinimal, "- match: { prefix: / }\n            cluster",
                          "- cluster")) == "t.yaml:7:13: missing required key 'match' in route");
  CHECK(errorsOf(replace(kMinimal, "        routes:\n          - match: { prefix: / }\n            cluster: backends\n",
                         "        other: 1\n")) ==
        std::vector<std::string>{"t.yaml:5:9: missing required key 'routes' in router filter",
                                 "t.yaml:6:9: unknown key 'other' in router filter"});
  CHECK(onlyError("workers: 2\n") == "t.yaml:1:1: missing required key 'listeners' at top level");
  CHECK(onlyError("") == "t.yaml:1:1: config is empty; expected a map with at least 'listeners'");
}

TEST_CASE("routes need exactly one target and exactly one match kind") {
  CHECK(onlyError(replace(kMinimal, "cluster: backends", "cluster: backends\n            direct_response: {}")) ==
        "t.yaml:7:13: route needs exactly one of 'cluster' or 'direct_response'");
  CHECK(onlyError(replace(kMinimal, "            cluster: backends\n", "            retries: 1\n")) ==
        "t.yaml:7:13: route needs exactly one of 'cluster' or 'direct_response'");
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ prefix: /, path: /x }")) ==
        "t.yaml:7:20: route match needs exactly one of 'prefix' or 'path'");
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ methods: [GET] }")) ==
        "t.yaml:7:20: route match needs exactly one of 'prefix' or 'path'");
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ prefix: proxy }")) ==
        "t.yaml:7:30: 'prefix' must start with '/', got 'proxy'");
  CHECK(onlyError(replace(kMinimal, "{ prefix: / }", "{ path: '' }")) ==
        "t.yaml:7:28: 'path' must start with '/', got ''");
  CHECK(onlyError(replace(kMinimal, "        routes:\n          - match: { prefix: / }\n            cluster: backends\n",
                          "        routes: []\n")) == "t.yaml:6:17: router needs at least one route");
}

TEST_CASE("unknown filters") {
  std::string twoFilters = replace(kMinimal, "      - name: router\n", "      - name: rooter\n      - name: router\n");
  CHECK(onlyError(twoFilters) == "t.yaml:5:15: unknown filter 'rooter' (did you mean 'router'?)");
  CHECK(onlyError(replace(twoFilters, "rooter", "auth")) ==
        "t.yaml:5:15: unknown filter 'auth' (known filters: router)");
}

TEST_CASE("the router is the one terminal filter and comes last") {
  // Absent: the filters list itself is reported.
  CHECK(onlyError(replace(kMinimal, "    filters:\n      - name: router\n        routes:\n          - match: { prefix: / }\n            cluster: backends\n",
                          "    filters: []\n")) ==
        "t.yaml:4:14: filter list must end with the 'router' filter (the terminal filter)");
  std::string routes = "        routes:\n          - match: { prefix: / }\n            cluster: backends\n";
  std::string twice = replace(kMinimal, routes, routes + "      - name: router\n" + routes);
  CHECK(errorsOf(twice) == std::vector<std::string>{
                               "t.yaml:5:9: 'router' must be the last filter (it is terminal: filters after it never run)",
                               "t.yaml:9:9: a second terminal filter 'router': a listener has exactly one, at the end"});
  CHECK(errorsOf(replace(twice, "      - name: router\n" + routes + "clusters", "      - name: r0uter\nclusters")) ==
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
        "t.yaml:3:14: invalid address '127.0.0.1' for 'address': no port; expected host:port, e.g. 127.0.0.1:8000");
  CHECK(address("127.0.0.1:0") == "t.yaml:3:14: invalid address '127.0.0.1:0' for 'address': port 0 out of range 1..65535");
  CHECK(address("127.0.0.1:70000") ==
        "t.yaml:3:14: invalid address '127.0.0.1:70000' for 'address': port 70000 out of range 1..65535");
  CHECK(address("example.com:80") ==
        "t.yaml:3:14: invalid address 'example.com:80' for 'address': host 'example.com' is not an IPv4/IPv6 literal or 'localhost'");
  CHECK(address("'::1:80'") ==
        "t.yaml:3:14: invalid address '::1:80' for 'address': an IPv6 host needs brackets, e.g. [::1]:8000");
  CHECK(onlyError(replace(kMinimal, "[127.0.0.1:9001]", "[127.0.0.1:9001, 10.0.0.300:1]")) ==
        "t.yaml:11:29: invalid address '10.0.0.300:1' for 'hosts': host '10.0.0.300' is not an IPv4/IPv6 literal or 'localhost'");
  CHECK(onlyError(replace(kMinimal, "[127.0.0.1:9001]", "[127.0.0.1:9001, 127.0.0.1:9001]")) ==
        "t.yaml:11:29: duplicate host '127.0.0.1:9001' in cluster");
  CHECK(onlyError(replace(kMinimal, "[127.0.0.1:9001]", "[]")) == "t.yaml:11:12: cluster needs at least one host");
}

TEST_CASE("bad durations and sizes") {
  CHECK(onlyError(kMinimal + "    timeout: 10\n") ==
        "t.yaml:12:14: invalid duration '10' for 'timeout': duration needs a unit, e.g. 10s");
  CHECK(onlyError(kMinimal + "    connect_timeout: 1d\n") ==
        "t.yaml:12:22: invalid duration '1d' for 'connect_timeout': unknown unit 'd' (use ms, s, m or h)");
  CHECK(onlyError(kMinimal + "    idle_timeout: 99999999999999999h\n") ==
        "t.yaml:12:19: invalid duration '99999999999999999h' for 'idle_timeout': too large");
  CHECK(onlyError(replace(kMinimal, "    filters:", "    max_request_body: 10XB\n    filters:")) ==
        "t.yaml:4:23: invalid size '10XB' for 'max_request_body': unknown unit 'XB' (use B, KB, KiB, MB, MiB, GB or GiB)");
  CHECK(onlyError(replace(kMinimal, "    filters:", "    max_header_bytes: -1KiB\n    filters:")) ==
        "t.yaml:4:23: invalid size '-1KiB' for 'max_header_bytes': must not be negative");
  CHECK(onlyError(replace(kMinimal, "    filters:", "    max_header_bytes: 0\n    filters:")) ==
        "t.yaml:4:23: 'max_header_bytes' must be at least 1 bytes, got 0");
  // 0 means "unlimited" for the body, so it is accepted there.
  CHECK(loadOk(replace(kMinimal, "    filters:", "    max_request_body: 0\n    filters:"))->listeners[0].maxRequestBody == 0);
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
  CHECK(onlyError(kMinimal + "    max_pending_requests: -1\n") ==
        "t.yaml:12:27: 'max_pending_requests' must be between 0 and 4294967295, got -1");
  CHECK(onlyError(kMinimal + "    retries: 11\n") == "t.yaml:12:14: 'retries' must be between 0 and 10, got 11");
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
  std::string listener = kMinimal.substr(kMinimal.find("  - name: public"), kMinimal.find("clusters:") - kMinimal.find("  - name: public"));
  // A second copy of the listener becomes lines 9..15 and the clusters move to line 16.
  std::string twoListeners = replace(kMinimal, "clusters:", listener + "clusters:");
  CHECK(errorsOf(twoListeners) == std::vector<std::string>{
                                      "t.yaml:9:11: duplicate listener name 'public' (first defined at line 2)",
                                      "t.yaml:10:14: duplicate listener address '127.0.0.1:8000' (already used by listener 'public' at line 3)"});
  std::string renamed = replace(replace(twoListeners, "name: public\n    address: 127.0.0.1:8000\n    filters:\n      - name: router\n        routes:\n          - match: { prefix: / }\n            cluster: backends\nclusters",
                                        "name: other\n    address: 127.0.0.1:8000\n    filters:\n      - name: router\n        routes:\n          - match: { prefix: / }\n            cluster: backends\nclusters"),
                                "127.0.0.1:8000", "0.0.0.0:8000");
  CHECK(onlyError(renamed) == "t.yaml:10:14: listener address '127.0.0.1:8000' overlaps '0.0.0.0:8000' of listener 'public' at line 3");
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
  CHECK(errors == std::vector<std::string>{
                      "t.yaml:1:10: 'workers' must be 'auto' or an integer between 1 and 1024, got 'none'",
                      "t.yaml:4:14: invalid address '127.0.0.1' for 'address': no port; expected host:port, e.g. 127.0.0.1:8000",
                      "t.yaml:5:21: invalid duration '10' for 'header_timeout': duration needs a unit, e.g. 10s",
                      "t.yaml:9:30: 'prefix' must start with '/', got 'x'",
                      "t.yaml:10:22: route refers to undefined cluster 'nowhere'",
                      "t.yaml:14:16: unknown lb_policy 'least_request' (expected one of: round_robin)",
                      "t.yaml:15:14: environment variable 'FG_TEST_SURELY_UNSET' is not set (use ${FG_TEST_SURELY_UNSET:-default} to give a default)"});
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

TEST_CASE("the shipped config files load") {
  const char* source = std::getenv("FLOWGUARD_SOURCE_DIR");
  REQUIRE_MESSAGE(source, "FLOWGUARD_SOURCE_DIR is not set (run through ctest)");
  REQUIRE(unsetenv("FG_BENCH_PORT") == 0);
  REQUIRE(unsetenv("FG_BENCH_UPSTREAM_PORT") == 0);

  LoadResult shipped = loadConfigFile(std::string(source) + "/flowguard.yaml");
  for (const ConfigError& e : shipped.errors) FAIL_CHECK(e.str());
  REQUIRE(shipped.ok());
  const Config& config = *shipped.config;
  REQUIRE(config.listeners.size() == 1);
  CHECK(config.listeners[0].name == "public");
  CHECK(config.listeners[0].address.str() == "0.0.0.0:8000");
  const auto& routes = std::get<RouterConfig>(config.listeners[0].filters.at(0).settings).routes;
  REQUIRE(routes.size() == 3);
  CHECK(routes[0].match.path == "/status");
  REQUIRE(routes[0].directResponse);
  CHECK(routes[0].directResponse->body == R"({"status":"ok","service":"flowguard"})");
  CHECK(routes[1].match.prefix == "/proxy");
  CHECK(routes[2].match.prefix == "/");
  const ClusterConfig* backends = config.findCluster("backends");
  REQUIRE(backends);
  CHECK(backends->hosts.size() == 3);
  CHECK(backends->retries == 2);

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
