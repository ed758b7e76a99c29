// The admin listener through a real gateway: after a known sequence of requests, the JSON
// endpoints hold the right shapes and numbers, the Prometheus text passes `promtool check
// metrics` and its counters match, draining flips /ready, secrets never appear in
// /config_dump, store endpoints work on the admin side, and a token guards a non-loopback bind.
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

#include "core/connection_limits.h"
#include "filters/rate_limit/rate_limit.h"
#include "store/store_service.h"
#include "tests/integration/gateway_fixture.h"
#include "upstream/cluster_state.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

HttpResponse call(uint16_t port, const std::string& method, const std::string& path,
                  const std::string& headers = {}, const std::string& body = {}) {
  HttpClient c;
  c.connect(port);
  std::string raw = method + " " + path +
                    " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Requested-By: tests\r\n" +
                    headers;
  if (!body.empty() || method == "POST") raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  c.sendRaw(raw + "\r\n" + body);
  return c.readResponse();
}

// name{labels} value lines of a Prometheus exposition, by the full series text.
std::map<std::string, double> parsePrometheus(const std::string& text) {
  std::map<std::string, double> series;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    series[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return series;
}

}  // namespace

TEST_CASE("admin: stats, clusters, Prometheus, drain, config dump and store endpoints") {
  Backend b1("b1"), b2("b2");
  TempDir dir;
  GatewaySpec spec = proxySpec(
      {b1.port, b2.port}, "retries: 0, health_check: { path: /health, interval: 200ms, timeout: 100ms }");
  spec.workers = 2;
  // The plugged filters too: their counters reach /stats and Prometheus with no admin code.
  spec.filters = {
      "{ name: ip_filter, allow: [127.0.0.0/8] }",
      "{ name: cors, allow_origins: [\"https://app.example.com\"] }",
      "{ name: auth, keys: [ { key: admin-test-key-0001, name: tester } ], exempt: [ { path: /register } ] }",
      "{ name: rate_limit, algorithm: fixed_window, limit: 6, window: 1h }",
      "{ name: metrics }",
      "{ name: headers, response: { set: { X-Gateway: flowguard } } }",
      "{ name: server_timing }"};
  spec.routes.insert(spec.routes.begin(),
                     "{ match: { path: /register, methods: [POST] }, handler: register }");
  spec.topLevel = {"storage: { url: \"sqlite://" + dir.file("admin.db") +
                   "\", password: \"pg-secret-123\", flush_interval: 50ms }"};
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;

  // The known sequence: 6 proxied (limit 6), 2 limited, 3 without a key.
  const std::string key = "X-API-Key: admin-test-key-0001\r\n";
  for (int i = 0; i < 6; ++i) CHECK(call(gw.port, "GET", "/echo", key).status == 200);
  for (int i = 0; i < 2; ++i) CHECK(call(gw.port, "GET", "/echo", key).status == 429);
  for (int i = 0; i < 3; ++i) CHECK(call(gw.port, "GET", "/echo").status == 401);

  // A request counts once its filters' onComplete ran on the worker, which may be a moment
  // after the client has its answer (much more than a moment under ThreadSanitizer).
  Json stats;
  waitUntil(
      [&] {
        stats = json(call(adminPort, "GET", "/stats"));
        return stats["totals"]["requests"] == 11;
      },
      5s);
  CHECK(stats["totals"]["requests"] == 11);
  CHECK(stats["totals"]["2xx"] == 6);
  CHECK(stats["totals"]["429"] == 2);
  CHECK(stats["totals"]["4xx"] == 5);
  CHECK(stats["totals"]["local_replies"] == 5);
  CHECK(stats["workers"] == 2);
  CHECK(stats["draining"] == false);
  CHECK(stats["listeners"]["test"]["requests"] == 11);
  CHECK(stats["listeners"]["test"]["latency_ms"]["p99"].get<double>() > 0);
  CHECK(stats["rate_limit"]["test"]["allowed"] == 6);
  CHECK(stats["rate_limit"]["test"]["limited"] == 2);
  CHECK(stats["clusters"]["backends"]["requests"] == 6);
  CHECK(stats["clusters"]["backends"]["hosts_total"] == 2);
  REQUIRE(stats["keys"].is_array());
  REQUIRE_FALSE(stats["keys"].empty());
  CHECK(stats["keys"][0]["name"] == "tester");  // the busiest key first
  CHECK(stats["keys"][0]["requests"] == 8);
  CHECK(stats["keys"][0]["ratio_429"].get<double>() == doctest::Approx(0.25));
  CHECK(stats["store"]["kind"] == "sqlite");

  // Health checks run every 200 ms; wait for the first round to be on record.
  REQUIRE(waitUntil(
      [&] {
        const Json clusters =
            json(call(adminPort, "GET", "/clusters"));  // named: the loop below reads into it
        for (const Json& h : clusters["clusters"][0]["hosts"]) {
          if (!h["last_check"].is_string()) return false;
        }
        return true;
      },
      5s));
  for (const char* path : {"/clusters", "/server_stats"}) {
    Json clusters = json(call(adminPort, "GET", path));
    REQUIRE(clusters["clusters"].size() == 1);
    const Json& hosts = clusters["clusters"][0]["hosts"];
    REQUIRE(hosts.size() == 2);
    uint64_t requests = 0, ok = 0;
    for (const Json& h : hosts) {
      CHECK(h["health"] == "healthy");
      CHECK(h["last_check_status"] == 200);
      CHECK(h["last_check"].is_string());
      requests += h["requests"].get<uint64_t>();
      ok += h["2xx"].get<uint64_t>();
      CHECK(h["latency_ms"]["p99"].get<double>() > 0);
      CHECK(h["history"].is_array());
    }
    CHECK(requests == 6);
    CHECK(ok == 6);
  }
  // Status mix per second: the sampler runs every second.
  REQUIRE(waitUntil(
      [&] {
        uint64_t total = 0;
        const Json history = json(call(adminPort, "GET", "/stats/history"));
        for (const Json& p : history["points"]) total += p["requests"].get<uint64_t>();
        return total >= 11;
      },
      5s));

  // Prometheus: valid for promtool, and the counters say what /stats says.
  HttpResponse prom = call(adminPort, "GET", "/stats/prometheus");
  REQUIRE(prom.status == 200);
  CHECK(prom.header("content-type").find("text/plain; version=0.0.4") == 0);
  const std::string metricsFile = dir.file("metrics.txt");
  writeFile(metricsFile, prom.body);
  const std::string check =
      "promtool check metrics < " + metricsFile + " > " + dir.file("promtool.out") + " 2>&1";
  const int rc = std::system(check.c_str());
  INFO("promtool: " << readFile(dir.file("promtool.out")));
  CHECK(rc == 0);
  auto series = parsePrometheus(prom.body);
  CHECK(series["flowguard_requests_total{listener=\"test\",status=\"2xx\"}"] == 6);
  CHECK(series["flowguard_requests_total{listener=\"test\",status=\"429\"}"] == 2);
  CHECK(series["flowguard_requests_total{listener=\"test\",status=\"4xx\"}"] == 3);
  CHECK(series["flowguard_request_duration_seconds_count{listener=\"test\"}"] == 11);
  CHECK(series["flowguard_rate_limit_decisions_total{listener=\"test\",outcome=\"limited\"}"] == 2);
  CHECK(series["flowguard_ip_filter_allowed_total{listener=\"test\"}"] == 11);
  CHECK(series["flowguard_ip_filter_denied_total{listener=\"test\"}"] == 0);
  CHECK(series["flowguard_cors_origin_not_allowed_total{listener=\"test\"}"] == 0);
  CHECK(series["flowguard_server_timing_responses_timed_total{listener=\"test\"}"] == 11);
  CHECK(series["flowguard_cluster_requests_total{cluster=\"backends\"}"] == 6);
  // Every declared counter of the rate limiter (filters/rate_limit/rate_limit.h) and of the clusters
  // (upstream/cluster_state.h) has its series, and /stats its key.
  auto checkDeclared = [&](std::span<const flowguard::core::StatDecl> decls, const std::string& prefix,
                           const std::string& owner, const Json& statsKeys) {
    for (const flowguard::core::StatDecl& decl : decls) {
      const std::string family(decl.family.empty() ? decl.name : decl.family);
      const std::string extra = decl.label.empty() ? "" : "," + std::string(decl.label);
      CAPTURE(decl.name);
      CHECK(series.count("flowguard_" + prefix + "_" + family + "_total{" + owner + extra + "}") == 1);
      CHECK(statsKeys.contains(std::string(decl.name)));
    }
  };
  checkDeclared(flowguard::filters::kRateLimitStats, "rate_limit", "listener=\"test\"",
                stats["rate_limit"]["test"]);
  checkDeclared(flowguard::upstream::kClusterStats, "cluster", "cluster=\"backends\"",
                stats["clusters"]["backends"]);
  const std::string host1 = "cluster=\"backends\",host=\"127.0.0.1:" + std::to_string(b1.port) + "\"";
  const std::string host2 = "cluster=\"backends\",host=\"127.0.0.1:" + std::to_string(b2.port) + "\"";
  // Each worker balances on its own: the split between the hosts varies, the sum does not.
  CHECK(series["flowguard_host_requests_total{" + host1 + "}"] +
            series["flowguard_host_requests_total{" + host2 + "}"] ==
        6);
  CHECK(series["flowguard_host_healthy{" + host1 + "}"] == 1);
  CHECK(series["flowguard_host_response_seconds_count{" + host1 + "}"] ==
        series["flowguard_host_requests_total{" + host1 + "}"]);
  CHECK(series["flowguard_host_response_seconds_bucket{" + host1 + ",le=\"+Inf\"}"] ==
        series["flowguard_host_requests_total{" + host1 + "}"]);
  // The declared counters and fields of the hosts (upstream/host_state.h), the listeners'
  // connections (core/connection_limits.h) and the key store (store/store_service.h): a series
  // each, and a key in /clusters or /stats.
  const Json hostJson = adminClusterHost(adminPort, "backends", b1.port);
  checkDeclared(flowguard::upstream::kHostStats, "host", host1, hostJson);
  auto checkFields = [&](const auto& decls, const std::string& labels, const Json& keys) {
    for (const auto& decl : decls) {
      CAPTURE(decl.name);
      CHECK(series.count(std::string(decl.prometheus) + (labels.empty() ? "" : "{" + labels + "}")) == 1);
      CHECK(keys.contains(std::string(decl.name)));
    }
  };
  checkFields(flowguard::upstream::kHostGauges, host1, hostJson);
  checkFields(flowguard::core::kConnectionStats, "listener=\"test\"", stats["listener_connections"]["test"]);
  checkFields(flowguard::store::kStoreStats, "", stats["store"]);
  CHECK(series["flowguard_connections_accepted_total{listener=\"test\"}"] ==
        stats["listener_connections"]["test"]["accepted"].get<double>());

  // Drain on and off.
  CHECK(call(adminPort, "GET", "/ready").status == 200);
  CHECK(call(adminPort, "GET", "/healthcheck/fail").status == 405);  // mutations are POST only
  CHECK(json(call(adminPort, "POST", "/healthcheck/fail"))["draining"] == true);
  CHECK(call(adminPort, "GET", "/ready").status == 503);
  CHECK(json(call(adminPort, "GET", "/stats"))["draining"] == true);
  CHECK(call(adminPort, "POST", "/healthcheck/ok").status == 200);
  CHECK(call(adminPort, "GET", "/ready").status == 200);

  // The config, secrets masked.
  HttpResponse dump = call(adminPort, "GET", "/config_dump");
  REQUIRE(dump.status == 200);
  CHECK(dump.body.find("admin-test-key-0001") == std::string::npos);
  CHECK(dump.body.find("pg-secret-123") == std::string::npos);
  Json config = json(dump)["config"];
  CHECK(config["listeners"][0]["name"] == "test");
  CHECK(config["clusters"][0]["name"] == "backends");
  CHECK(config["storage"]["password"] == "********");

  // The original's summaries, and the dashboard.
  CHECK(json(call(adminPort, "GET", "/status"))["status"] == "ok");
  Json summary = json(call(adminPort, "GET", "/metrics"));
  CHECK(summary["requests"] == 11);
  CHECK(summary["rate_limited_ratio"].get<double>() == doctest::Approx(2.0 / 11));
  HttpResponse page = call(adminPort, "GET", "/server");
  CHECK(page.status == 200);
  CHECK(page.header("content-type").find("text/html") == 0);
  CHECK(page.body.find("<html") != std::string::npos);
  HttpResponse unknown = call(adminPort, "GET", "/nothing-here");
  CHECK(unknown.status == 404);
  CHECK(json(unknown)["error"].get<std::string>().find("GET /help lists them") != std::string::npos);

  // The endpoints list themselves, each with its methods and a line of help: every path this
  // test uses is there, and a wrong method is told the right ones.
  Json help = json(call(adminPort, "GET", "/help"));
  std::map<std::string, std::string> methods;
  for (const Json& e : help.at("endpoints")) {
    methods[e.at("path").get<std::string>()] = e.at("methods").get<std::string>();
    CHECK_FALSE(e.at("help").get<std::string>().empty());
  }
  for (const char* path : {"/server",         "/stats",         "/stats/prometheus",
                           "/stats/history",  "/clusters",      "/server_stats",
                           "/config_dump",    "/reload",        "/ready",
                           "/status",         "/metrics",       "/healthcheck/fail",
                           "/healthcheck/ok", "/keys",          "/all_keys",
                           "/logs",           "/view_logs",     "/keys/{key}/metrics",
                           "/keys/{id}",      "/metrics/{key}", "/help"}) {
    CAPTURE(path);
    CHECK(methods.contains(path));
  }
  CHECK(methods.size() == 21);
  CHECK(methods["/reload"] == "POST");
  CHECK(methods["/keys/{id}"] == "PATCH, DELETE");
  CHECK(methods["/stats"] == "GET");
  CHECK(call(adminPort, "POST", "/help").status == 405);
  HttpResponse wrong = call(adminPort, "PUT", "/keys/1");
  CHECK(wrong.status == 405);
  CHECK(json(wrong)["error"] == "PUT /keys/1 is not allowed here (use PATCH, DELETE)");

  // Store endpoints on the admin side: keys, one key's metrics, revocation, logs.
  HttpResponse reg =
      call(gw.port, "POST", "/register", "Content-Type: application/json\r\n", R"({"name":"adm"})");
  REQUIRE(reg.status == 201);
  const std::string apiKey = json(reg)["api_key"];
  const int64_t id = json(reg)["key_id"];
  CHECK(call(gw.port, "GET", "/echo", "X-API-Key: " + apiKey + "\r\n").status == 200);
  // The yaml key (listed first, with its usage) and the registered one.
  Json keys = json(call(adminPort, "GET", "/keys"));
  REQUIRE(keys["count"] == 2);
  CHECK(keys["keys"][0]["name"] == "tester");
  CHECK(keys["keys"][0]["configured"] == true);
  CHECK(keys["keys"][1]["name"] == "adm");
  CHECK(keys["keys"][1]["configured"] == false);
  CHECK(json(call(adminPort, "GET", "/all_keys"))["count"] == 2);
  CHECK(call(adminPort, "DELETE", "/keys/" + keys["keys"][0]["id"].dump()).status == 409);
  REQUIRE(waitUntil(
      [&] {
        return json(call(adminPort, "GET", "/keys/" + apiKey + "/metrics"))["requests"]["requests"] == 1;
      },
      5s));
  CHECK(json(call(adminPort, "GET", "/metrics/" + apiKey))["name"] == "adm");
  REQUIRE(waitUntil([&] { return json(call(adminPort, "GET", "/logs?limit=5"))["count"] == 5; }, 5s));
  CHECK(json(call(adminPort, "GET", "/view_logs?limit=2"))["count"] == 2);
  CHECK(call(adminPort, "GET", "/keys/" + std::to_string(id)).status == 405);
  CHECK(call(adminPort, "DELETE", "/keys/" + std::to_string(id)).status == 200);
  CHECK(call(gw.port, "GET", "/echo", "X-API-Key: " + apiKey + "\r\n").status == 401);
}

TEST_CASE("admin: a non-loopback bind needs the token, and every request must carry it") {
  Backend b1("b1");
  GatewaySpec spec = proxySpec({b1.port});
  spec.admin = true;
  spec.adminHost = "0.0.0.0";
  spec.adminOptions = "token: \"s3cret-admin-token\"";
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  CHECK(call(adminPort, "GET", "/stats").status == 401);
  CHECK(call(adminPort, "GET", "/stats", "Authorization: Bearer wrong-token\r\n").status == 401);
  CHECK(call(adminPort, "GET", "/clusters", "Authorization: Basic czNjcmV0\r\n").status == 401);
  CHECK(call(adminPort, "GET", "/server").status == 200);  // the page; its requests carry the token
  HttpResponse ok = call(adminPort, "GET", "/stats", "Authorization: Bearer s3cret-admin-token\r\n");
  CHECK(ok.status == 200);
  CHECK(json(ok)["store"].is_null());
  Json dump = json(call(adminPort, "GET", "/config_dump", "Authorization: Bearer s3cret-admin-token\r\n"));
  CHECK(dump["config"]["admin"]["token"] == "********");
  // Without a store the key endpoints say so.
  CHECK(call(adminPort, "GET", "/keys", "Authorization: Bearer s3cret-admin-token\r\n").status == 503);
}
