// The auth, rate_limit and metrics filters in front of the router, through the real
// gateway and a real backend.
#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

const char* kAuth =
    "{ name: auth, keys: [ { key: secret-key-one, name: one }, { key: secret-key-two, name: two } ], "
    "exempt: [ { path: /open } ] }";
// The exempt path is answered by the gateway itself; everything else is forwarded.
const char* kOpenRoute = "{ match: { path: /open }, direct_response: { status: 200, body: open } }";

GatewaySpec chain(const std::vector<uint16_t>& ports, std::vector<std::string> filters,
                  const std::string& clusterExtra = {}) {
  GatewaySpec spec = proxySpec(ports, clusterExtra);
  spec.routes.insert(spec.routes.begin(), kOpenRoute);
  spec.filters = std::move(filters);
  return spec;
}

std::string getWithKey(std::string_view path, std::string_view key) {
  return get(path, "X-API-Key: " + std::string(key) + "\r\n");
}

}  // namespace

TEST_CASE("auth: missing and unknown keys get 401, valid keys pass without their header") {
  Backend b;
  Gateway gw(chain({b.port}, {kAuth}));
  HttpClient c;
  c.connect(gw.port);

  c.sendRaw(get("/x"));
  HttpResponse missing = c.readResponse();
  checkErrorJson(missing, 401);
  CHECK(json(missing)["error"].get<std::string>().find("missing API key") != std::string::npos);

  c.sendRaw(getWithKey("/x", "not-a-key"));
  checkErrorJson(c.readResponse(), 401);

  c.sendRaw(getWithKey("/x", "secret-key-one"));
  HttpResponse ok = c.readResponse();
  REQUIRE(ok.status == 200);
  CHECK_FALSE(json(ok)["headers"].contains("x-api-key"));  // stripped before the upstream

  c.sendRaw(get("/x", "Authorization: Bearer secret-key-two\r\n"));
  HttpResponse bearer = c.readResponse();
  REQUIRE(bearer.status == 200);
  CHECK_FALSE(json(bearer)["headers"].contains("authorization"));

  c.sendRaw(get("/open"));  // exempt, and answered by the gateway
  HttpResponse open = c.readResponse();
  CHECK(open.status == 200);
  CHECK(open.body == "open");
  CHECK(b.requests() == 2 + 1);  // only the accepted ones reached the backend (+ this probe)
}

TEST_CASE("rate_limit: a token bucket admits its burst, then 429 with Retry-After and RateLimit headers") {
  Backend b;
  Gateway gw(chain({b.port}, {kAuth, "{ name: rate_limit, rate: 1/m, burst: 5 }"}));
  HttpClient c;
  c.connect(gw.port);
  for (int i = 0; i < 5; ++i) {
    c.sendRaw(getWithKey("/x", "secret-key-one"));
    HttpResponse r = c.readResponse();
    REQUIRE(r.status == 200);
    CHECK(r.header("RateLimit-Limit") == "5");
    CHECK(r.header("RateLimit-Remaining") == std::to_string(4 - i));
    CHECK(r.header("X-RateLimit-Remaining") == std::to_string(4 - i));
    CHECK_FALSE(r.header("RateLimit-Reset").empty());
  }
  c.sendRaw(getWithKey("/x", "secret-key-one"));
  HttpResponse limited = c.readResponse();
  checkErrorJson(limited, 429);
  CHECK(json(limited)["error"].get<std::string>().find("key one") != std::string::npos);
  CHECK(limited.header("RateLimit-Remaining") == "0");
  int retryAfter = std::stoi(limited.header("Retry-After"));
  CHECK(retryAfter >= 1);
  CHECK(retryAfter <= 60);
  // Another key has its own bucket.
  c.sendRaw(getWithKey("/x", "secret-key-two"));
  CHECK(c.readResponse().status == 200);
  CHECK(b.requests() == 6 + 1);
}

TEST_CASE("rate_limit: overrides, fixed windows, client-IP limits and shadow mode") {
  Backend b;
  SUBCASE("an override for one key name") {
    Gateway gw(chain({b.port}, {kAuth,
                                "{ name: rate_limit, rate: 1/m, burst: 1, overrides: [ { key: two, "
                                "rate: 1/m, burst: 3 } ] }"}));
    int oneOk = 0, twoOk = 0;
    for (int i = 0; i < 5; ++i) {
      oneOk += httpGet(gw.port, "/x", {{"X-API-Key", "secret-key-one"}}).status == 200;
      twoOk += httpGet(gw.port, "/x", {{"X-API-Key", "secret-key-two"}}).status == 200;
    }
    CHECK(oneOk == 1);
    CHECK(twoOk == 3);
  }
  SUBCASE("fixed window") {
    Gateway gw(
        chain({b.port}, {kAuth, "{ name: rate_limit, algorithm: fixed_window, limit: 3, window: 1h }"}));
    int ok = 0;
    for (int i = 0; i < 6; ++i) ok += httpGet(gw.port, "/x", {{"X-API-Key", "secret-key-one"}}).status == 200;
    CHECK(ok == 3);
  }
  SUBCASE("anonymous requests are limited by client IP") {
    Gateway gw(chain({b.port}, {kAuth, "{ name: rate_limit, rate: 1/m, burst: 2 }"}));
    int ok = 0;
    for (int i = 0; i < 4; ++i) ok += httpGet(gw.port, "/open").status == 200;
    CHECK(ok == 2);
  }
  SUBCASE("shadow mode counts but never rejects") {
    GatewaySpec spec = chain({b.port}, {kAuth, "{ name: rate_limit, rate: 1/m, burst: 1, shadow: true }"});
    spec.admin = true;
    Gateway gw(spec);
    const uint16_t adminPort = gw.adminPort;
    for (int i = 0; i < 4; ++i) {
      HttpResponse r = httpGet(gw.port, "/x", {{"X-API-Key", "secret-key-one"}});
      CHECK(r.status == 200);
    }
    // The burst of one allowed the first; the other three would have been limited, and are
    // counted as such (the decision is made before the request is forwarded).
    Json limits = adminJson(adminPort, "/stats").at("rate_limit").at("test");
    CAPTURE(limits.dump());
    CHECK(limits.at("allowed") == 1);
    CHECK(limits.at("shadow_limited") == 3);
    CHECK(limits.at("limited") == 0);
  }
}

TEST_CASE("rate_limit per route: a route's own limit counts apart; a route may turn it off") {
  Backend b;
  GatewaySpec spec = chain({b.port}, {kAuth,
                                      "{ name: rate_limit, rate: 1/m, burst: 2, overrides: [ { key: two, "
                                      "rate: 1/m, burst: 50 } ] }"});
  spec.routes.insert(
      spec.routes.begin(),
      {"{ match: { prefix: /search }, cluster: backends, per_filter: { rate_limit: { rate: 1/m, "
       "burst: 4 } } }",
       "{ match: { prefix: /batch }, cluster: backends, per_filter: { rate_limit: { algorithm: "
       "fixed_window, limit: 1, window: 1h } } }",
       "{ match: { prefix: /health-ish }, cluster: backends, per_filter: { rate_limit: { disabled: "
       "true } } }"});
  spec.admin = true;
  Gateway gw(spec);
  auto okCount = [&](const std::string& path, const std::string& key, int tries) {
    int ok = 0;
    for (int i = 0; i < tries; ++i) ok += httpGet(gw.port, path, {{"X-API-Key", key}}).status == 200;
    return ok;
  };
  // The listener's limit: a burst of 2 for key one.
  CHECK(okCount("/x", "secret-key-one", 4) == 2);
  // /search has its own burst of 4, in buckets of its own: key one's spent listener bucket
  // does not matter there, and requests there do not spend the listener's.
  CHECK(okCount("/search/q", "secret-key-one", 6) == 4);
  // The route's limit is everyone's: key two's override (burst 50) does not apply there.
  CHECK(okCount("/search/q", "secret-key-two", 6) == 4);
  CHECK(okCount("/x", "secret-key-two", 6) == 6);
  // A fixed window on one route, while the listener has a token bucket.
  HttpResponse first = httpGet(gw.port, "/batch/1", {{"X-API-Key", "secret-key-one"}});
  CHECK(first.status == 200);
  CHECK(first.header("RateLimit-Limit") == "1");
  HttpResponse second = httpGet(gw.port, "/batch/2", {{"X-API-Key", "secret-key-one"}});
  checkErrorJson(second, 429);
  CHECK(json(second)["error"].get<std::string>().find("1 per 1h (fixed window)") != std::string::npos);
  // Turned off on one route: no limit, no RateLimit headers.
  for (int i = 0; i < 5; ++i) {
    HttpResponse r = httpGet(gw.port, "/health-ish", {{"X-API-Key", "secret-key-one"}});
    REQUIRE(r.status == 200);
    CHECK(r.header("RateLimit-Limit").empty());
  }
  // /config_dump shows each route's own settings.
  Json routes = dumpedRoutes(gw.adminPort, 2);
  CAPTURE(routes.dump());
  CHECK(routes.at(0).at("per_filter").at("rate_limit").at("limit").at("burst") == 4);
  CHECK(routes.at(1).at("per_filter").at("rate_limit").at("limit").at("algorithm") == "fixed_window");
  CHECK(routes.at(2).at("per_filter").at("rate_limit").at("disabled") == true);
}

TEST_CASE("rate_limit local store is exact across workers") {
  Backend b;
  GatewaySpec spec = chain({b.port}, {kAuth, "{ name: rate_limit, rate: 1/h, burst: 50 }"});
  spec.workers = 2;
  Gateway gw(spec);
  constexpr int kThreads = 8;
  constexpr int kEach = 20;
  std::atomic<int> ok{0}, limited{0};
  std::mutex failureMutex;
  std::string failure;  // the first request that threw (a thread must not end by throwing)
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      try {
        for (int i = 0; i < kEach; ++i) {
          // A new connection each time, so the kernel spreads them over both workers.
          int status = httpGet(gw.port, "/x", {{"X-API-Key", "secret-key-one"}}).status;
          (status == 200 ? ok : limited)++;
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(failureMutex);
        if (failure.empty()) failure = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE_MESSAGE(failure.empty(), "a client thread failed: " << failure);
  CHECK(ok == 50);
  CHECK(limited == kThreads * kEach - 50);
}

TEST_CASE("metrics: the access log has one JSON line per request with the key prefix only") {
  Backend b;
  TempDir logs;
  std::string logPath = logs.file("access.log");
  GatewaySpec spec = chain({b.port}, {kAuth, "{ name: metrics, access_log: { path: " + logPath + " } }"});
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  CHECK(httpGet(gw.port, "/x", {{"X-API-Key", "secret-key-one"}}).status == 200);
  CHECK(httpGet(gw.port, "/y").status == 401);
  // The listener's counters on /stats. A request is counted when it ends, which may be a
  // moment after the client has its answer: wait for both.
  Json counters;
  REQUIRE(waitUntil(
      [&] {
        return (counters = adminJson(adminPort, "/stats").at("listeners").at("test")).at("requests") == 2;
      },
      10s));
  CAPTURE(counters.dump());
  CHECK(counters.at("2xx") == 1);
  CHECK(counters.at("3xx") == 0);
  CHECK(counters.at("4xx") == 1);
  CHECK(counters.at("429") == 0);
  CHECK(counters.at("5xx") == 0);
  CHECK(counters.at("local_replies") == 1);
  REQUIRE(gw.process.stop() == 0);  // flushes the buffered lines
  std::string text = readFile(logPath);
  CHECK(text.find("secret-key-one") == std::string::npos);  // never the whole key
  std::vector<Json> lines;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(Json::parse(text.substr(start, end - start)));
  }
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["status"] == 200);
  CHECK(lines[0]["key"] == "secr");  // a third of the key at most
  CHECK(lines[0]["key_name"] == "one");
  CHECK(lines[0]["path"] == "/x");
  CHECK_FALSE(lines[0]["upstream"].get<std::string>().empty());
  CHECK(lines[1]["status"] == 401);
  CHECK(lines[1]["local_reply"].get<std::string>().find("missing API key") != std::string::npos);
}
