// Plugged filters (filters/README.md) over real sockets, in front of a real backend:
// ip_filter by the listener's client address (X-Forwarded-For behind trusted proxies),
// server_timing (the README's example filter), and what the admin listener, reload and the
// exit summary do for them with no code of their own.
#include <doctest/doctest.h>

#include <regex>

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

HttpResponse getAs(uint16_t port, const std::string& forwardedFor, const std::string& path = "/echo") {
  HttpClient c;
  c.connect(port);
  c.sendRaw(get(path, forwardedFor.empty() ? "" : "X-Forwarded-For: " + forwardedFor + "\r\n"));
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
        c.sendRaw(get("/echo", "X-Forwarded-For: 203.0.113.5\r\n"));
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
  reloadTo({"{ name: server_timing }"});
  progress();
  CHECK(getAs(gw.port, "198.51.100.1").status == 200);  // no ip_filter any more
  CHECK_FALSE(adminJson(gw.adminPort, "/stats").at("filters").at("test").contains("ip_filter"));
  stop = true;
  for (auto& t : threads) t.join();
  threads.clear();
  INFO("first failure: " << firstFailure);
  CHECK(failed == 0);
  CHECK(ok > 100);

  // With nothing else in flight, exactly: a reconfigured ip_filter counts on from where it was.
  reloadTo({"{ name: ip_filter, allow: [203.0.113.0/24] }"});
  CHECK(getAs(gw.port, "203.0.113.5").status == 200);
  auto allowed = [&] {
    return adminJson(gw.adminPort, "/stats")
        .at("filters")
        .at("test")
        .at("ip_filter")
        .at("allowed")
        .get<uint64_t>();
  };
  const uint64_t counted = allowed();
  reloadTo({"{ name: ip_filter, allow: [203.0.113.0/25] }"});
  for (int i = 0; i < 3; ++i) CHECK(getAs(gw.port, "203.0.113.5").status == 200);
  CHECK(getAs(gw.port, "203.0.113.200").status == 403);
  CHECK(allowed() == counted + 3);
}

}  // namespace
}  // namespace flowguard::test
