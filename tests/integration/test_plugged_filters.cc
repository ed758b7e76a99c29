// Plugged filters (filters/README.md) over real sockets, in front of a real backend:
// ip_filter by the listener's client address (X-Forwarded-For behind trusted proxies),
// server_timing (the README's example filter), and what the admin listener, reload and the
// exit summary do for them with no code of their own.
#include <doctest/doctest.h>

#include <regex>

#include "tests/integration/browser.h"
#include "tests/integration/gateway_fixture.h"

namespace flowguard::test {
namespace {

const std::string kIpFilter =
    "{ name: ip_filter, allow: [203.0.113.0/24, \"2001:db8::/32\"], deny: [203.0.113.66] }";

// The listener believes X-Forwarded-For from the test itself (127.0.0.1).
GatewaySpec ipFilterSpec(uint16_t backend, std::vector<std::string> filters) {
  GatewaySpec spec = proxySpec({backend});
  spec.listener = {"trusted_proxies: [127.0.0.1]"};
  spec.filters = std::move(filters);
  spec.admin = true;
  return spec;
}

// GET `path` with X-Forwarded-For: `forwardedFor` (none when empty) and `extra` header lines.
HttpResponse getAs(uint16_t port, const std::string& forwardedFor, const std::string& extra = {},
                   const std::string& path = "/echo") {
  HttpClient c;
  c.connect(port);
  c.sendRaw(get(path, (forwardedFor.empty() ? "" : "X-Forwarded-For: " + forwardedFor + "\r\n") + extra));
  return c.readResponse();
}

TEST_CASE("ip_filter: the client is the listener's (rightmost untrusted X-Forwarded-For hop); deny wins") {
  Backend b;
  BackendProbe probe{b};
  Gateway gw(ipFilterSpec(b.port, {kIpFilter}));

  struct Case {
    std::string forwardedFor;
    int status;
  };
  const std::vector<Case> cases{
      {"203.0.113.5", 200},                // in allow
      {"2001:db8::5", 200},                // IPv6, in allow
      {"203.0.113.66", 403},               // in allow, but denied: deny wins
      {"", 403},                           // no header: the client is 127.0.0.1, not allowed
      {"198.51.100.1", 403},               // not in allow
      {"203.0.113.5, 198.51.100.1", 403},  // the rightmost untrusted hop is the client
      {"198.51.100.1, 203.0.113.5", 200},  // ... and here it is 203.0.113.5
      {"203.0.113.5, 127.0.0.1", 200},     // a trusted hop is skipped
      {"2001:db9::1", 403},                // outside 2001:db8::/32
  };
  uint64_t allowed = 0;
  for (const Case& c : cases) {
    INFO("X-Forwarded-For: " << c.forwardedFor);
    HttpResponse r = getAs(gw.port, c.forwardedFor);
    if (c.status == 403) {
      checkErrorJson(r, 403);
      CHECK(json(r).at("error") == "client address not allowed");
    } else {
      CHECK(r.status == 200);
      ++allowed;
    }
  }
  // Only the allowed requests reached the backend.
  CHECK(probe.proxiedRequests(probe.read()) == allowed);

  const Json stats = adminJson(gw.adminPort, "/stats");
  INFO(stats.dump());
  CHECK(stats.at("filters").at("test").at("ip_filter") ==
        Json{{"allowed", allowed}, {"denied", cases.size() - allowed}});
  const std::string prometheus = httpGet(gw.adminPort, "/stats/prometheus").body;
  CHECK(prometheus.find("# TYPE flowguard_ip_filter_denied_total counter\n") != std::string::npos);
  CHECK(prometheus.find("flowguard_ip_filter_denied_total{listener=\"test\"} " +
                        std::to_string(cases.size() - allowed) + "\n") != std::string::npos);
  CHECK(prometheus.find("flowguard_ip_filter_allowed_total{listener=\"test\"} " + std::to_string(allowed) +
                        "\n") != std::string::npos);
  const Json dumped =
      adminJson(gw.adminPort, "/config_dump").at("config").at("listeners").at(0).at("filters").at(0);
  CHECK(dumped == Json{{"name", "ip_filter"},
                       {"allow", {"203.0.113.0/24", "2001:db8::/32"}},
                       {"deny", {"203.0.113.66/32"}}});

  // The exit summary lists the declared counters too.
  gw.process.stop();
  CHECK(gw.process.logText().find(fmt::format("flowguard: ip_filter test: allowed={} denied={}\n", allowed,
                                              cases.size() - allowed)) != std::string::npos);
}

// Attacks on the client address: without trusted proxies nothing a client writes moves it,
// and behind them a forged or garbled entry cannot stand in for the real client.
TEST_CASE("ip_filter: forged X-Forwarded-For, X-Real-IP and Forwarded do not let a client in") {
  Backend b;
  BackendProbe probe{b};
  SUBCASE("no trusted proxies: the peer is the client, whatever it claims") {
    GatewaySpec spec = proxySpec({b.port});
    spec.filters = {"{ name: ip_filter, allow: [203.0.113.0/24] }"};
    Gateway gw(spec);
    for (std::string_view forged :
         {"X-Forwarded-For: 203.0.113.5\r\n", "X-Real-IP: 203.0.113.5\r\n", "Forwarded: for=203.0.113.5\r\n",
          "X-Forwarded-For: 203.0.113.5\r\nX-Forwarded-For: 203.0.113.6\r\n",
          "True-Client-IP: 203.0.113.5\r\n"}) {
      INFO(forged);
      HttpClient c;
      c.connect(gw.port);
      c.sendRaw(get("/echo", forged));
      checkErrorJson(c.readResponse(), 403);
    }
    CHECK(probe.proxiedRequests(probe.read()) == 0);
  }
  SUBCASE("behind a trusted proxy: garbage, ports and padding are no address") {
    Gateway gw(ipFilterSpec(b.port, {kIpFilter}));
    struct Case {
      std::string forwardedFor;
      int status;
    };
    for (const Case& c : std::vector<Case>{
             {"203.0.113.5, 203.0.113.5:80", 403},  // "ip:port" is not an address: 127.0.0.1 is the client
             {"203.0.113.5, unknown", 403},         // nor is a word
             {"203.0.113.5, ", 200},                // an empty entry is no hop
             {"203.0.113.5,,, ", 200},              // nor are several
             {"  203.0.113.5  ", 200},              // padding is trimmed
             {"203.0.113.066", 403},                // no octal or zero-padded forms
             {"::ffff:203.0.113.66", 403},          // IPv4-mapped: the IPv4 address it carries, denied
             {"::ffff:203.0.113.5", 200},
             {"[2001:db8::1]", 200},         // a bracketed IPv6 literal
             {"2001:db8::1%eth0", 403},      // a zone is not part of a client address
             {std::string(2000, '1'), 403},  // one huge entry
         }) {
      INFO("X-Forwarded-For: " << c.forwardedFor);
      HttpResponse r = getAs(gw.port, c.forwardedFor);
      CHECK(r.status == c.status);
      if (c.status == 403) checkErrorJson(r, 403);
    }
    // Many hops: the rightmost untrusted one decides, however many came before.
    std::string hops;
    for (int i = 0; i < 500; ++i) hops += "198.51.100." + std::to_string(i % 250) + ", ";
    CHECK(getAs(gw.port, hops + "203.0.113.5").status == 200);
    CHECK(getAs(gw.port, "203.0.113.5, " + hops + "198.51.100.1").status == 403);
  }
}

TEST_CASE("ip_filter and rate_limit by client_ip agree on who the client is") {
  Backend b;
  Gateway gw(ipFilterSpec(b.port, {kIpFilter, "{ name: rate_limit, by: client_ip, rate: 1/m, burst: 1 }"}));
  CHECK(getAs(gw.port, "203.0.113.5").status == 200);
  // The same client through another proxy chain: the same bucket, already empty.
  CHECK(getAs(gw.port, "198.51.100.1, 203.0.113.5").status == 429);
  // Another allowed client has its own bucket; 127.0.0.1 (the peer) never got one.
  CHECK(getAs(gw.port, "203.0.113.6").status == 200);
  CHECK(getAs(gw.port, "203.0.113.6").status == 429);
  const Json stats = adminJson(gw.adminPort, "/stats");
  CHECK(stats.at("filters").at("test").at("ip_filter").at("allowed") == 4);
  CHECK(stats.at("rate_limit").at("test").at("limited") == 2);
}

TEST_CASE("server_timing (the README's example filter) adds its entry after the upstream's") {
  RawUpstream up("HTTP/1.1 200 OK\r\nServer-Timing: db;dur=53\r\nContent-Length: 2\r\n\r\nok");
  GatewaySpec spec = proxySpec({up.port});
  spec.routes.insert(spec.routes.begin(), "{ match: { path: /local }, direct_response: { status: 204 } }");
  spec.filters = {"{ name: server_timing, metric: edge, description: \"flowguard edge\" }"};
  spec.admin = true;
  Gateway gw(spec);
  HttpClient c;
  c.connect(gw.port);
  c.sendRaw(get("/x"));
  HttpResponse r = c.readResponse();
  REQUIRE(r.status == 200);
  std::vector<std::string> timings;
  for (const auto& [name, value] : r.headers) {
    if (name.size() == 13 && strcasecmp(name.c_str(), "server-timing") == 0) timings.push_back(value);
  }
  REQUIRE(timings.size() == 2);
  CHECK(timings[0] == "db;dur=53");
  CHECK(std::regex_match(timings[1], std::regex(R"(edge;dur=\d+\.\d;desc="flowguard edge")")));
  // An answer the gateway gives itself gets one too.
  c.sendRaw(get("/local"));
  HttpResponse local = c.readResponse();
  CHECK(local.status == 204);
  CHECK(local.header("Server-Timing").starts_with("edge;dur="));
  CHECK(up.heads == 1);
  CHECK(
      adminJson(gw.adminPort, "/stats").at("filters").at("test").at("server_timing").at("responses_timed") ==
      2);
}

// Adds, reconfigures and removes plugged filters by editing the file while a keep-alive
// client keeps sending: no request fails, and ip_filter's counters carry over.
TEST_CASE("reload: plugged filters come, change and go under load; their counters carry over") {
  Backend b;
  GatewaySpec spec = ipFilterSpec(b.port, {});
  Gateway gw(spec);
  auto generation = [&] { return adminJson(gw.adminPort, "/config_dump").at("generation").get<uint64_t>(); };
  auto reloadTo = [&](const std::vector<std::string>& filters) {
    const uint64_t before = generation();
    spec.filters = filters;
    writeFile(gw.configPath, spec.yaml(gw.port, gw.adminPort));
    REQUIRE_MESSAGE(waitUntil([&] { return generation() > before; }, 10s), gw.process.logTail(20));
  };

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  std::string firstFailure;
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    HttpClient c;
    c.connect(gw.port);
    while (!stop) {
      try {
        c.sendRaw(get("/echo", "X-Forwarded-For: 203.0.113.5\r\nOrigin: https://app.example.com\r\n"));
        HttpResponse r = c.readResponse();
        if (r.status == 200) {
          ++ok;
          continue;
        }
        if (failed++ == 0) firstFailure = std::to_string(r.status) + " " + r.body;
      } catch (const std::exception& e) {
        if (failed++ == 0) firstFailure = e.what();
        return;
      }
    }
  });
  StopAndJoin joiner{stop, threads};
  auto progress = [&] {
    const uint64_t seen = ok;
    REQUIRE(waitUntil([&] { return ok >= seen + 20; }, 10s));
  };

  progress();
  reloadTo({kIpFilter});
  progress();
  const uint64_t allowedBefore =
      adminJson(gw.adminPort, "/stats").at("filters").at("test").at("ip_filter").at("allowed");
  CHECK(allowedBefore > 0);
  reloadTo({kIpFilter, "{ name: server_timing }"});
  progress();
  // Reconfigured: another deny entry. The filter stays in place, so its counters go on.
  reloadTo({"{ name: ip_filter, allow: [203.0.113.0/24], deny: [203.0.113.67] }", "{ name: server_timing }"});
  progress();
  const uint64_t allowedAfter =
      adminJson(gw.adminPort, "/stats").at("filters").at("test").at("ip_filter").at("allowed");
  CHECK(allowedAfter > allowedBefore);
  CHECK(getAs(gw.port, "203.0.113.67").status == 403);
  CHECK(getAs(gw.port, "203.0.113.66").status == 200);  // no longer denied
  // cors and headers come in, then change.
  reloadTo({"{ name: ip_filter, allow: [203.0.113.0/24], deny: [203.0.113.67] }", "{ name: server_timing }",
            "{ name: cors, allow_origins: [\"https://app.example.com\"] }",
            "{ name: headers, request: { set: { X-Via-Gateway: one } } }"});
  progress();
  reloadTo({"{ name: cors, allow_origins: [\"https://app.example.com\", \"https://b.example.com\"] }",
            "{ name: headers, request: { set: { X-Via-Gateway: two } } }"});
  progress();
  reloadTo({"{ name: server_timing }"});
  progress();
  CHECK(getAs(gw.port, "198.51.100.1").status == 200);  // no ip_filter any more
  for (const char* gone : {"ip_filter", "cors", "headers"}) {
    CHECK_FALSE(adminJson(gw.adminPort, "/stats").at("filters").at("test").contains(gone));
  }
  stop = true;
  for (auto& t : threads) t.join();
  threads.clear();
  INFO("first failure: " << firstFailure);
  CHECK(failed == 0);
  CHECK(ok > 100);

  // With nothing else in flight, exactly: reconfigured filters count on from where they were.
  reloadTo({"{ name: ip_filter, allow: [203.0.113.0/24] }", "{ name: cors, allow_origins: [\"*\"] }",
            "{ name: headers, response: { set: { X-A: a } } }"});
  const std::string origin = "Origin: https://app.example.com\r\n";
  CHECK(getAs(gw.port, "203.0.113.5", origin).status == 200);
  auto counters = [&] { return adminJson(gw.adminPort, "/stats").at("filters").at("test"); };
  const Json counted = counters();
  reloadTo({"{ name: ip_filter, allow: [203.0.113.0/25] }",
            "{ name: cors, allow_origins: [\"https://app.example.com\"] }",
            "{ name: headers, response: { set: { X-A: b } } }"});
  for (int i = 0; i < 3; ++i) {
    HttpResponse r = getAs(gw.port, "203.0.113.5", origin);
    CHECK(r.status == 200);
    CHECK(r.header("Access-Control-Allow-Origin") == "https://app.example.com");
    CHECK(r.header("X-A") == "b");
  }
  CHECK(getAs(gw.port, "203.0.113.200").status == 403);
  const Json now = counters();
  CHECK(now.at("ip_filter").at("allowed") == counted.at("ip_filter").at("allowed").get<uint64_t>() + 3);
  CHECK(now.at("cors").at("allowed") == counted.at("cors").at("allowed").get<uint64_t>() + 3);
  CHECK(now.at("headers").at("responses_edited") ==
        counted.at("headers").at("responses_edited").get<uint64_t>() + 4);
}

// ---- per-route settings --------------------------------------------------------------------

TEST_CASE("per_filter: routes turn ip_filter off, give it their own allow list, and their own headers") {
  Backend b;
  BackendProbe probe{b};
  GatewaySpec spec = proxySpec({b.port});
  spec.listener = {"trusted_proxies: [127.0.0.1]"};
  spec.filters = {"{ name: ip_filter, allow: [203.0.113.0/24] }",
                  "{ name: headers, response: { set: { X-Which: listener } } }"};
  spec.routes = {
      "{ match: { prefix: /public/ }, cluster: backends, per_filter: { ip_filter: { disabled: true }, "
      "headers: { response: { set: { X-Which: public } } } } }",
      "{ match: { prefix: /lan/ }, cluster: backends, per_filter: { ip_filter: { allow: [198.51.100.0/24] } "
      "} }",
      "{ match: { prefix: / }, cluster: backends }"};
  spec.admin = true;
  Gateway gw(spec);
  struct Case {
    std::string client, path;
    int status;
    std::string which;
  };
  uint64_t proxied = 0;
  for (const Case& c : std::vector<Case>{
           {"198.51.100.1", "/public/x", 200, "public"},  // ip_filter off on this route
           {"203.0.113.5", "/public/x", 200, "public"},
           {"198.51.100.1", "/lan/x", 200, "listener"},  // the route's own allow list
           {"203.0.113.5", "/lan/x", 403, "listener"},   // ... instead of the listener's
           {"203.0.113.5", "/other", 200, "listener"},   // the listener's settings elsewhere
           {"198.51.100.1", "/other", 403, "listener"},  // a refusal still gets the response edits
       }) {
    INFO(c.client << " " << c.path);
    HttpResponse r = getAs(gw.port, c.client, "", c.path);
    CHECK(r.status == c.status);
    CHECK(r.header("X-Which") == c.which);
    if (c.status == 200) ++proxied;
  }
  CHECK(probe.proxiedRequests(probe.read()) == proxied);
  const Json routes = dumpedRoutes(gw.adminPort, 2);
  CHECK(routes.at(0).at("per_filter").at("ip_filter") == Json{{"disabled", true}});
  CHECK(routes.at(1).at("per_filter").at("ip_filter").at("allow") == Json{"198.51.100.0/24"});
  // Counters are the filter's, whichever settings a request got.
  CHECK(adminJson(gw.adminPort, "/stats").at("filters").at("test").at("ip_filter") ==
        Json{{"allowed", 2}, {"denied", 2}});
}

TEST_CASE("per_filter: a route turns metrics off, also for the answers an earlier filter gives there") {
  Backend b;
  GatewaySpec spec = proxySpec({b.port});
  spec.filters = {"{ name: auth, keys: [ { key: metrics-route-key-0001, name: tester } ] }",
                  "{ name: metrics }"};
  spec.routes = {
      "{ match: { prefix: /quiet/ }, cluster: backends, per_filter: { metrics: { disabled: true } } }",
      "{ match: { prefix: / }, cluster: backends }"};
  spec.admin = true;
  Gateway gw(spec);
  const std::string key = "X-API-Key: metrics-route-key-0001\r\n";
  for (int i = 0; i < 3; ++i) CHECK(getAs(gw.port, "", key, "/quiet/x").status == 200);
  CHECK(getAs(gw.port, "", "", "/quiet/x").status == 401);  // auth answers before metrics
  for (int i = 0; i < 2; ++i) CHECK(getAs(gw.port, "", key, "/counted").status == 200);
  CHECK(getAs(gw.port, "", "", "/counted").status == 401);
  // A request counts once its onComplete ran, which may be a moment after its answer.
  Json listener;
  waitUntil(
      [&] {
        listener = adminJson(gw.adminPort, "/stats").at("listeners").at("test");
        return listener.at("requests") == 3 && listener.at("4xx") == 1;
      },
      5s);
  CHECK(listener.at("requests") == 3);
  CHECK(listener.at("4xx") == 1);
  CHECK(dumpedRoutes(gw.adminPort, 2).at(0).at("per_filter").at("metrics") == Json{{"disabled", true}});
  // The exit line says what the filter's state (its registry) counted.
  gw.process.stop();
  CHECK(gw.process.logText().find(
            "flowguard: metrics test: requests=3 2xx=2 3xx=0 4xx=1 429=0 5xx=0 local_replies=1 p50_us=") !=
        std::string::npos);
}

// ---- buffer (the request-data phase over sockets) -------------------------------------------

TEST_CASE(
    "buffer: the upstream sees nothing until the whole body is in; over the limit is 413 and never sent") {
  RawUpstream up("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  GatewaySpec spec = proxySpec({up.port});
  spec.filters = {"{ name: buffer, max_request_bytes: 64 }"};
  spec.routes.insert(
      spec.routes.begin(),
      "{ match: { prefix: /stream }, cluster: backends, per_filter: { buffer: { disabled: true } } }");
  spec.admin = true;
  Gateway gw(spec);
  const std::string body = "{\"items\":[1,2,3],\"note\":\"sent in two parts\"}";

  SUBCASE("a slow upload is held by the gateway, then goes up whole") {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
              "\r\n\r\n" + body.substr(0, 10));
    sleepFor(300ms);
    CHECK(up.received().empty());  // not even the head: no upstream connection is tied up
    c.sendRaw(body.substr(10));
    HttpResponse r = c.readResponse();
    CHECK(r.status == 200);
    CHECK(up.heads == 1);
    CHECK(up.received().ends_with("\r\n\r\n" + body));
    CHECK(adminJson(gw.adminPort, "/stats").at("filters").at("test").at("buffer").at("requests_buffered") ==
          1);
  }
  SUBCASE("a chunked upload with trailers, too") {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    sleepFor(200ms);
    CHECK(up.received().empty());
    c.sendRaw("6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n");
    HttpResponse r = c.readResponse();
    CHECK(r.status == 200);
    // The scripted upstream answers as soon as it has a head, so the 200 can reach the client
    // before the body's bytes reach the upstream's record.
    CHECK(waitUntil(
        [&] {
          const std::string got = up.received();
          return got.find("hello") != std::string::npos && got.find(" world") != std::string::npos;
        },
        5s));
  }
  SUBCASE("a route that turns it off streams as before") {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw("POST /stream HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
              "\r\n\r\n" + body.substr(0, 10));
    // Without the filter, the head goes up before the body is complete: this is what the
    // checks above would see if the filter did nothing.
    CHECK(waitUntil([&] { return up.received().find("POST /stream") != std::string::npos; }, 5s));
    c.sendRaw(body.substr(10));
    CHECK(c.readResponse().status == 200);
  }
  SUBCASE("Content-Length over the limit: 413 at once, nothing read or sent") {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 65\r\n\r\n");
    HttpResponse r = c.readResponse();
    CHECK(r.status == 413);
    CHECK(r.body.find("65 bytes is over the buffer filter's 64-byte limit") != std::string::npos);
    CHECK(up.heads == 0);
  }
  SUBCASE("a chunked body that grows over the limit: 413 when it does, nothing sent") {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" +
              std::string(64, 'a') + "\r\n");
    sleepFor(100ms);
    c.sendRaw("1\r\nb\r\n");
    HttpResponse r = c.readResponse();
    CHECK(r.status == 413);
    CHECK(r.body.find("64-byte filter buffer limit") != std::string::npos);
    CHECK(up.received().empty());
    // Counted when the request completes, which on the worker's thread may come just after
    // the client has read the answer.
    CHECK(waitUntil(
        [&] {
          return adminJson(gw.adminPort, "/stats")
                     .at("filters")
                     .at("test")
                     .at("buffer")
                     .at("requests_too_large") == 1;
        },
        5s));
  }
  SUBCASE("requests without a body pass straight through") {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw(get("/x"));
    CHECK(c.readResponse().status == 200);
    CHECK(adminJson(gw.adminPort, "/stats").at("filters").at("test").at("buffer").at("requests_buffered") ==
          0);
  }
}

// ---- headers ------------------------------------------------------------------------------

HttpResponse send(uint16_t port, const std::string& raw) {
  HttpClient c;
  c.connect(port);
  c.sendRaw(raw);
  return c.readResponse();
}

TEST_CASE(
    "headers: request edits reach the backend, response edits the client; clients cannot forge set fields") {
  RawUpstream up(
      "HTTP/1.1 200 OK\r\nServer: secret-stack/1.2\r\nX-Powered-By: php\r\nContent-Length: 2\r\n\r\nok");
  GatewaySpec spec = proxySpec({up.port});
  spec.listener = {"trusted_proxies: [127.0.0.1]"};
  spec.filters = {
      "{ name: auth, keys: [ { key: secret-key-one, name: one } ] }",
      "{ name: headers, request: { set: { X-Client-IP: \"%CLIENT_IP%\", X-Consumer: \"%API_KEY_NAME%\", "
      "X-Tenant: \"t-%REQ(X-Tenant-Name)%\" }, add: { Via: \"1.1 flowguard\" }, remove: [X-Debug] }, "
      "response: { set: { X-Upstream: \"%UPSTREAM_HOST%\", X-Request-Id: \"%REQUEST_ID%\" }, "
      "remove: [Server, X-Powered-By] } }"};
  spec.admin = true;
  Gateway gw(spec);
  HttpResponse r = send(gw.port, get("/x",
                                     "X-API-Key: secret-key-one\r\nX-Forwarded-For: 203.0.113.5\r\n"
                                     "X-Client-IP: 6.6.6.6\r\nX-Consumer: admin\r\nX-Debug: 1\r\n"
                                     "X-Tenant-Name: acme\r\nVia: 1.0 corp-proxy\r\n"));
  REQUIRE(r.status == 200);
  const std::string received = up.received();
  INFO(received);
  // set replaced what the client sent; the client's own Via is kept and ours appended.
  CHECK(received.find("X-Client-IP: 203.0.113.5\r\n") != std::string::npos);
  CHECK(received.find("6.6.6.6") == std::string::npos);
  CHECK(received.find("X-Consumer: one\r\n") != std::string::npos);
  CHECK(received.find("X-Consumer: admin") == std::string::npos);
  CHECK(received.find("X-Tenant: t-acme\r\n") != std::string::npos);
  CHECK(received.find("X-Debug") == std::string::npos);
  CHECK(received.find("Via: 1.0 corp-proxy\r\n") != std::string::npos);
  CHECK(received.find("Via: 1.1 flowguard\r\n") != std::string::npos);
  CHECK(received.find("secret-key-one") == std::string::npos);  // auth still strips the key
  CHECK_FALSE(r.hasHeader("Server"));
  CHECK_FALSE(r.hasHeader("X-Powered-By"));
  CHECK(r.header("X-Upstream") == "127.0.0.1:" + std::to_string(up.port));
  CHECK(r.header("X-Request-Id").size() == 36);
  // A local reply (401, no key) gets the response edits too; its X-Upstream stays unset.
  HttpResponse denied = send(gw.port, get("/x"));
  CHECK(denied.status == 401);
  CHECK_FALSE(denied.hasHeader("X-Upstream"));
  CHECK(denied.header("X-Request-Id") == json(denied).at("request_id").get<std::string>());
  // The 401 came from auth, before the headers filter's request phase; its answer still passed.
  CHECK(adminJson(gw.adminPort, "/stats").at("filters").at("test").at("headers") ==
        Json{{"requests_edited", 1}, {"responses_edited", 2}});
}

// ---- cors ---------------------------------------------------------------------------------

const std::string kCors =
    "{ name: cors, allow_origins: [\"https://app.example.com\", \"https://*.example.org\"], "
    "allow_methods: [GET, POST], allow_headers: [X-API-Key, X-Custom], expose_headers: "
    "[RateLimit-Remaining], "
    "max_age: 10m }";

std::string preflight(const std::string& origin, const std::string& method, const std::string& headers) {
  return "OPTIONS /api/data HTTP/1.1\r\nHost: gw.test\r\nOrigin: " + origin +
         "\r\nAccess-Control-Request-Method: " + method +
         (headers.empty() ? "" : "\r\nAccess-Control-Request-Headers: " + headers) + "\r\n\r\n";
}

TEST_CASE(
    "cors: preflights answered before auth, grants on allowed origins only, upstream grants taken back") {
  RawUpstream up(
      "HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\nVary: Accept-Encoding\r\nContent-Length: "
      "2\r\n\r\nok");
  GatewaySpec spec = proxySpec({up.port});
  spec.filters = {kCors, "{ name: auth, keys: [ { key: secret-key-one, name: one } ] }",
                  "{ name: rate_limit, rate: 10/s, burst: 20 }"};
  spec.admin = true;
  Gateway gw(spec);

  SUBCASE("an allowed preflight: 204 with the grants, no key needed, nothing upstream") {
    HttpResponse r =
        send(gw.port, preflight("https://app.example.com", "POST", "x-api-key, X-Custom, content-type"));
    CHECK(r.status == 204);
    CHECK_FALSE(r.hasHeader("Content-Length"));
    CHECK(r.body.empty());
    CHECK(r.header("Access-Control-Allow-Origin") == "https://app.example.com");
    CHECK(r.header("Access-Control-Allow-Methods") == "GET, POST");
    CHECK(r.header("Access-Control-Allow-Headers") == "x-api-key, x-custom");
    CHECK(r.header("Access-Control-Max-Age") == "600");
    CHECK_FALSE(r.hasHeader("Access-Control-Allow-Credentials"));
    CHECK(r.header("Vary") == "Origin");
    // HEAD is not listed, but a CORS-safelisted method needs no listing (Fetch).
    CHECK(send(gw.port, preflight("https://app.example.com", "HEAD", "x-api-key")).status == 204);
    HttpResponse wildcard = send(gw.port, preflight("https://eu.api.example.org", "GET", ""));
    CHECK(wildcard.status == 204);
    CHECK(wildcard.header("Access-Control-Allow-Origin") == "https://eu.api.example.org");
    CHECK(up.heads == 0);
  }
  SUBCASE("refused preflights: 403 JSON naming why, no grant") {
    struct Case {
      std::string origin, method, headers, error;
    };
    for (const Case& c : std::vector<Case>{
             {"https://evil.example.com", "GET", "", "CORS: origin not allowed"},
             {"https://example.org", "GET", "", "CORS: origin not allowed"},
             {"https://app.example.com.evil.net", "GET", "", "CORS: origin not allowed"},
             {"https://app.example.com", "DELETE", "", "CORS: method DELETE not allowed"},
             {"https://app.example.com", "GET", "x-api-key, x-admin",
              "CORS: request header x-admin not allowed"},
         }) {
      INFO(c.origin << " " << c.method << " " << c.headers);
      HttpResponse r = send(gw.port, preflight(c.origin, c.method, c.headers));
      checkErrorJson(r, 403);
      CHECK(json(r).at("error") == c.error);
      CHECK_FALSE(r.hasHeader("Access-Control-Allow-Origin"));
      CHECK(r.header("Vary") == "Origin");
    }
    CHECK(up.heads == 0);
    CHECK(adminJson(gw.adminPort, "/stats").at("filters").at("test").at("cors").at("preflights_rejected") ==
          5);
  }
  SUBCASE(
      "actual requests: the origin's grant and exposed headers; other origins get none, not even the "
      "upstream's") {
    HttpResponse r =
        send(gw.port, get("/api/data", "Origin: https://app.example.com\r\nX-API-Key: secret-key-one\r\n"));
    CHECK(r.status == 200);
    CHECK(r.header("Access-Control-Allow-Origin") == "https://app.example.com");
    CHECK(r.header("Access-Control-Expose-Headers") == "RateLimit-Remaining");
    CHECK(r.hasHeader("RateLimit-Remaining"));
    int varies = 0;
    for (const auto& [name, value] : r.headers) varies += strcasecmp(name.c_str(), "vary") == 0 ? 1 : 0;
    CHECK(varies == 2);  // the upstream's Vary and ours
    HttpResponse other =
        send(gw.port, get("/api/data", "Origin: https://evil.example.com\r\nX-API-Key: secret-key-one\r\n"));
    CHECK(other.status == 200);
    CHECK_FALSE(other.hasHeader("Access-Control-Allow-Origin"));  // the upstream's "*" is taken back
    CHECK_FALSE(other.hasHeader("Access-Control-Expose-Headers"));
    // Without an Origin it is not a CORS request: nothing added, nothing taken.
    HttpResponse plain = send(gw.port, get("/api/data", "X-API-Key: secret-key-one\r\n"));
    CHECK(plain.header("Access-Control-Allow-Origin") == "*");
    // An OPTIONS without Access-Control-Request-Method is no preflight: auth decides.
    CHECK(send(gw.port,
               "OPTIONS /api/data HTTP/1.1\r\nHost: gw.test\r\nOrigin: https://app.example.com\r\n\r\n")
              .status == 401);
    const Json stats = adminJson(gw.adminPort, "/stats").at("filters").at("test").at("cors");
    CHECK(stats.at("allowed") == 2);
    CHECK(stats.at("origin_not_allowed") == 1);
  }
}

// A page of one origin (http://localhost:PORT/page) calls the gateway on another
// (http://127.0.0.1:PORT/api/data) with fetch and custom headers, in headless Chromium: it
// reads the answer only when the gateway allows its origin and every header it sends.
TEST_CASE("cors: a real browser's cross-origin fetch works only when the gateway allows it") {
  const std::string chromium = chromiumPath();
  REQUIRE_MESSAGE(!chromium.empty(),
                  "chromium is not installed (apt-get install chromium; scripts/test does)");
  Backend b;
  BackendProbe probe{b};
  GatewaySpec spec = proxySpec({b.port});
  spec.admin = true;
  spec.filters = {
      "{ name: auth, keys: [ { key: secret-key-one, name: one } ], exempt: [ { path: /page } ] }"};
  Gateway gw(spec);
  const std::string api = "http://127.0.0.1:" + std::to_string(gw.port) + "/api/data";
  const std::string page =
      "<!doctype html><html><body><div id=out>pending</div><script>"
      "fetch('" +
      api +
      "', {headers: {'X-API-Key': 'secret-key-one', 'X-Custom': 'yes'}})"
      ".then(r => r.text().then(t => { document.getElementById('out').textContent = 'STATUS ' + r.status + ' "
      "' + t; }))"
      ".catch(e => { document.getElementById('out').textContent = 'BLOCKED ' + e; });"
      "</script></body></html>";
  const std::string pageRoute =
      "{ match: { path: /page }, direct_response: { status: 200, content_type: "
      "\"text/html\", body: " +
      Json(page).dump() + " } }";
  const std::string pageOrigin = "http://localhost:" + std::to_string(gw.port);
  auto reconfigure = [&](const std::string& cors) {
    const uint64_t before = adminJson(gw.adminPort, "/config_dump").at("generation").get<uint64_t>();
    GatewaySpec next = spec;
    next.routes.insert(next.routes.begin(), pageRoute);
    next.filters.insert(next.filters.begin(), cors);
    writeFile(gw.configPath, next.yaml(gw.port, gw.adminPort));
    REQUIRE_MESSAGE(
        waitUntil(
            [&] { return adminJson(gw.adminPort, "/config_dump").at("generation").get<uint64_t>() > before; },
            10s),
        gw.process.logTail(20));
  };
  auto fetchFromPage = [&] {
    TempDir dir;
    const std::string dom = dumpDom(chromium, pageOrigin + "/page", dir, 3000);
    const size_t at = dom.find("<div id=\"out\">");
    REQUIRE_MESSAGE(at != std::string::npos, dom.substr(0, 2000));
    return dom.substr(at + 14, dom.find("</div>", at) - at - 14);
  };

  reconfigure("{ name: cors, allow_origins: [\"" + pageOrigin +
              "\"], allow_headers: [X-API-Key, X-Custom] }");
  const std::string allowed = fetchFromPage();
  CHECK_MESSAGE(allowed.starts_with("STATUS 200 "), allowed);
  CHECK_MESSAGE(allowed.find("\"x-custom\":\"yes\"") != std::string::npos, allowed);  // the backend's echo
  const uint64_t reached = probe.proxiedRequests(probe.read());
  CHECK(reached == 1);

  reconfigure(
      "{ name: cors, allow_origins: [\"http://example.com\"], allow_headers: [X-API-Key, X-Custom] }");
  const std::string otherOrigin = fetchFromPage();
  CHECK_MESSAGE(otherOrigin.starts_with("BLOCKED TypeError"), otherOrigin);

  reconfigure("{ name: cors, allow_origins: [\"" + pageOrigin + "\"], allow_headers: [X-API-Key] }");
  const std::string missingHeader = fetchFromPage();
  CHECK_MESSAGE(missingHeader.starts_with("BLOCKED TypeError"), missingHeader);
  // Refused preflights kept the real requests from being sent at all.
  CHECK(probe.proxiedRequests(probe.read()) == reached);
  const Json cors = adminJson(gw.adminPort, "/stats").at("filters").at("test").at("cors");
  CHECK(cors.at("preflights") == 1);
  CHECK(cors.at("preflights_rejected") == 2);
}

}  // namespace
}  // namespace flowguard::test
