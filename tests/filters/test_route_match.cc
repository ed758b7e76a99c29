#include "filters/path_redaction.h"
#include "filters/route_match.h"
#include "filters/router.h"

#include <doctest/doctest.h>

#include <string>

using namespace flowguard;

namespace {

config::Route prefixRoute(std::string prefix, std::string cluster) {
  config::Route route;
  route.match.prefix = std::move(prefix);
  route.cluster = std::move(cluster);
  return route;
}

config::Route pathRoute(std::string path, std::string cluster) {
  config::Route route;
  route.match.path = std::move(path);
  route.cluster = std::move(cluster);
  return route;
}

core::RequestHead request(std::string method, std::string target, std::string host = "") {
  core::RequestHead head;
  head.method = std::move(method);
  head.target = std::move(target);
  if (!host.empty()) head.headers.add("Host", host);
  return head;
}

// Cluster of the matched route, or "<none>", so failures print something readable.
std::string matched(const config::RouterConfig& config, const core::RequestHead& head) {
  const config::Route* route = filters::matchRoute(config, head);
  return route == nullptr ? "<none>" : route->cluster;
}

}  // namespace

TEST_CASE("prefix routes match by path prefix") {
  config::RouterConfig config;
  config.routes.push_back(prefixRoute("/api", "api"));
  CHECK(matched(config, request("GET", "/api")) == "api");
  CHECK(matched(config, request("GET", "/api/users/1")) == "api");
  CHECK(matched(config, request("GET", "/apiary")) == "api");  // plain string prefix
  CHECK(matched(config, request("GET", "/ap")) == "<none>");
  CHECK(matched(config, request("GET", "/API")) == "<none>");  // paths are case-sensitive
  CHECK(matched(config, request("GET", "/v1/api")) == "<none>");
}

TEST_CASE("exact path routes match the whole path only") {
  config::RouterConfig config;
  config.routes.push_back(pathRoute("/health", "health"));
  CHECK(matched(config, request("GET", "/health")) == "health");
  CHECK(matched(config, request("GET", "/health/")) == "<none>");
  CHECK(matched(config, request("GET", "/healthz")) == "<none>");
  CHECK(matched(config, request("GET", "/heal")) == "<none>");
  CHECK(matched(config, request("GET", "/")) == "<none>");
}

TEST_CASE("the query string is ignored") {
  config::RouterConfig config;
  config.routes.push_back(pathRoute("/health", "health"));
  config.routes.push_back(prefixRoute("/api/", "api"));
  CHECK(matched(config, request("GET", "/health?verbose=1")) == "health");
  CHECK(matched(config, request("GET", "/health?")) == "health");
  CHECK(matched(config, request("GET", "/api/?q=/health")) == "api");
  // a prefix that only appears in the query does not count
  CHECK(matched(config, request("GET", "/x?/api/")) == "<none>");
}

TEST_CASE("absolute-form targets are matched by their path") {
  config::RouterConfig config;
  config.routes.push_back(pathRoute("/health", "health"));
  config.routes.push_back(prefixRoute("/api", "api"));
  CHECK(matched(config, request("GET", "http://gw.example/health?x=1")) == "health");
  CHECK(matched(config, request("GET", "http://gw.example/api/v1")) == "api");
}

TEST_CASE("the first matching route wins") {
  config::RouterConfig config;
  config.routes.push_back(prefixRoute("/api/v1", "v1"));
  config.routes.push_back(pathRoute("/api/status", "status"));
  config.routes.push_back(prefixRoute("/api", "api"));
  config.routes.push_back(prefixRoute("/", "default"));

  CHECK(filters::matchRoute(config, request("GET", "/api/v1/x")) == &config.routes[0]);
  CHECK(filters::matchRoute(config, request("GET", "/api/status")) == &config.routes[1]);
  CHECK(filters::matchRoute(config, request("GET", "/api/status/x")) == &config.routes[2]);
  CHECK(filters::matchRoute(config, request("GET", "/api/v2")) == &config.routes[2]);
  CHECK(filters::matchRoute(config, request("GET", "/other")) == &config.routes[3]);

  SUBCASE("a catch-all first shadows everything after it") {
    config::RouterConfig shadowed;
    shadowed.routes.push_back(prefixRoute("/", "default"));
    shadowed.routes.push_back(prefixRoute("/api", "api"));
    CHECK(filters::matchRoute(shadowed, request("GET", "/api/x")) == &shadowed.routes[0]);
  }
}

TEST_CASE("methods restrict a route; a route that does not match falls through") {
  config::RouterConfig config;
  config::Route reads = prefixRoute("/items", "reads");
  reads.match.methods = {"GET", "HEAD"};
  config.routes.push_back(reads);
  config::Route writes = prefixRoute("/items", "writes");
  writes.match.methods = {"POST"};
  config.routes.push_back(writes);

  CHECK(matched(config, request("GET", "/items/1")) == "reads");
  CHECK(matched(config, request("HEAD", "/items/1")) == "reads");
  CHECK(matched(config, request("POST", "/items")) == "writes");
  CHECK(matched(config, request("DELETE", "/items/1")) == "<none>");
  // methods are case-sensitive tokens (RFC 9110 9.1)
  CHECK(matched(config, request("get", "/items/1")) == "<none>");
  // the method alone does not match: the path must too
  CHECK(matched(config, request("GET", "/other")) == "<none>");

  config.routes.push_back(prefixRoute("/", "any-method"));
  CHECK(matched(config, request("DELETE", "/items/1")) == "any-method");
}

TEST_CASE("host restricts a route: case-insensitive, port ignored") {
  config::RouterConfig config;
  config::Route api = prefixRoute("/", "api");
  api.match.host = "api.example.com";
  config.routes.push_back(api);

  CHECK(matched(config, request("GET", "/", "api.example.com")) == "api");
  CHECK(matched(config, request("GET", "/", "API.Example.COM")) == "api");
  CHECK(matched(config, request("GET", "/", "api.example.com:8080")) == "api");
  CHECK(matched(config, request("GET", "/", "Api.Example.Com:80")) == "api");
  CHECK(matched(config, request("GET", "/", "www.example.com")) == "<none>");
  CHECK(matched(config, request("GET", "/", "api.example.com.evil.net")) == "<none>");
  CHECK(matched(config, request("GET", "/", "api.example.co")) == "<none>");
  CHECK(matched(config, request("GET", "/", "xapi.example.com:8080")) == "<none>");
  CHECK(matched(config, request("GET", "/")) == "<none>");  // no Host header at all

  SUBCASE("the Host header name itself is case-insensitive") {
    core::RequestHead head = request("GET", "/");
    head.headers.add("HOST", "api.example.com");
    CHECK(matched(config, head) == "api");
  }
  SUBCASE("a route without host matches any Host") {
    config.routes.push_back(prefixRoute("/", "fallback"));
    CHECK(matched(config, request("GET", "/", "www.example.com")) == "fallback");
    CHECK(matched(config, request("GET", "/")) == "fallback");
  }
}

TEST_CASE("IPv6 literal hosts, with and without a port") {
  config::RouterConfig config;
  config::Route local = prefixRoute("/", "v6");
  local.match.host = "[2001:DB8::1]";
  config.routes.push_back(local);

  CHECK(matched(config, request("GET", "/", "[2001:db8::1]:8080")) == "v6");
  CHECK(matched(config, request("GET", "/", "[2001:db8::1]")) == "v6");
  CHECK(matched(config, request("GET", "/", "[2001:DB8::1]:80")) == "v6");
  CHECK(matched(config, request("GET", "/", "[2001:db8::2]:8080")) == "<none>");
  CHECK(matched(config, request("GET", "/", "[2001:db8::1")) == "<none>");  // malformed
}

TEST_CASE("path, method and host must all match") {
  config::RouterConfig config;
  config::Route route = pathRoute("/login", "auth");
  route.match.methods = {"POST"};
  route.match.host = "auth.example.com";
  config.routes.push_back(route);

  CHECK(matched(config, request("POST", "/login", "auth.example.com:443")) == "auth");
  CHECK(matched(config, request("GET", "/login", "auth.example.com")) == "<none>");
  CHECK(matched(config, request("POST", "/login/", "auth.example.com")) == "<none>");
  CHECK(matched(config, request("POST", "/login", "example.com")) == "<none>");
}

TEST_CASE("no match returns null") {
  config::RouterConfig empty;
  CHECK(filters::matchRoute(empty, request("GET", "/")) == nullptr);

  config::RouterConfig config;
  config.routes.push_back(prefixRoute("/api", "api"));
  config.routes.push_back(pathRoute("/health", "health"));
  CHECK(filters::matchRoute(config, request("GET", "/")) == nullptr);
  CHECK(filters::matchRoute(config, request("GET", "/healthcheck")) == nullptr);
}

TEST_CASE("routeFor matches once per request and keeps the answer on the stream") {
  config::RouterConfig config;
  config.routes.push_back(prefixRoute("/api", "api"));
  config.routes.push_back(prefixRoute("/", "web"));
  core::StreamInfo info;
  core::RequestHead head = request("GET", "/api/x");
  const config::Route* first = filters::routeFor(config, head, info);
  REQUIRE(first != nullptr);
  CHECK(first->cluster == "api");
  // Kept: the filters after it get the same answer without matching again...
  head.target = "/web";
  CHECK(filters::routeFor(config, head, info) == first);
  // ...until a filter that changed what routes match on clears it,
  info.clearRouteCache();
  CHECK(filters::routeFor(config, head, info)->cluster == "web");
  // another table is matched on its own,
  config::RouterConfig other;
  other.routes.push_back(prefixRoute("/web", "other"));
  CHECK(filters::routeFor(other, head, info)->cluster == "other");
  // and "no route" is kept too; the next request starts afresh.
  head.target = "/nothing";
  info.clearRouteCache();
  CHECK(filters::routeFor(other, head, info) == nullptr);
  head.target = "/web";
  CHECK(filters::routeFor(other, head, info) == nullptr);
  info.reset();
  CHECK(filters::routeFor(other, head, info) != nullptr);
}

TEST_CASE("path redaction: the key after a key_metrics route's prefix is cut to its display prefix") {
  config::ListenerConfig listener;
  config::RouterConfig router;
  config::Route keyMetrics = prefixRoute("/metrics/", "");
  keyMetrics.handler.kind = config::RouteHandler::KeyMetrics;
  router.routes = {prefixRoute("/proxy", "backends"), keyMetrics, prefixRoute("/", "backends")};
  listener.filters.push_back(config::FilterConfig{"router", router, {}});
  const std::vector<std::string> prefixes = filters::keyPathPrefixes(listener);
  REQUIRE(prefixes == std::vector<std::string>{"/metrics/"});

  std::string scratch;
  CHECK(filters::redactKeyPath("/metrics/fg_0123456789abcdefghijklmnopqrstuv", prefixes, scratch) ==
        "/metrics/fg_01234567…");
  CHECK(filters::redactKeyPath("/metrics/test-api-key", prefixes, scratch) == "/metrics/test…");
  CHECK(filters::redactKeyPath("/metrics/secret-key/extra", prefixes, scratch) == "/metrics/sec…/extra");
  // Other paths, and the prefix alone, are logged as they are.
  CHECK(filters::redactKeyPath("/metrics/", prefixes, scratch) == "/metrics/");
  CHECK(filters::redactKeyPath("/metrics", prefixes, scratch) == "/metrics");
  CHECK(filters::redactKeyPath("/proxy/metrics/x", prefixes, scratch) == "/proxy/metrics/x");
}
