// Upstream resilience through the real gateway and real fault-injecting backends: active
// health checks, passive ejection, retries and their limits, circuit breakers, and a
// backend killed under load.
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string backendOf(const HttpResponse& r) {
  return json(r).value("backend", std::string());
}

// Sequential GETs on one keep-alive connection; returns how often each backend answered.
std::map<std::string, int> spread(uint16_t port, int count, const std::string& path = "/spread") {
  std::map<std::string, int> counts;
  HttpClient c;
  c.connect(port);
  for (int i = 0; i < count; ++i) {
    c.sendRaw(get(path));
    HttpResponse r = c.readResponse();
    REQUIRE_MESSAGE(r.status == 200, r.body);
    counts[backendOf(r)]++;
  }
  return counts;
}

const char* kFastHealthCheck =
    "health_check: { path: /health, interval: 200ms, timeout: 100ms, healthy_threshold: 2, "
    "unhealthy_threshold: 2 }";

}  // namespace

TEST_CASE("a host failing its health checks gets no traffic, and gets it back after it recovers") {
  Backend b1("b1"), b2("b2"), b3("b3");
  Gateway gw(proxySpec({b1.port, b2.port, b3.port}, kFastHealthCheck));
  CHECK(spread(gw.port, 30).size() == 3);

  auto failedAt = Clock::now();
  b2.setFault(R"({"healthy": false})");
  gw.process.waitForLog("127.0.0.1:" + std::to_string(b2.port) + " is now unhealthy", 5s);
  auto ejectedAfter = std::chrono::duration_cast<Millis>(Clock::now() - failedAt);
  MESSAGE("health-check ejection took " << ejectedAfter.count() << " ms (interval 200ms x 2 + timeout)");
  auto counts = spread(gw.port, 30);
  CHECK(counts.count("b2") == 0);
  CHECK(counts["b1"] == 15);
  CHECK(counts["b3"] == 15);

  b2.setFault(R"({"healthy": true})");
  gw.process.waitForLog("127.0.0.1:" + std::to_string(b2.port) + " is now healthy", 5s);
  CHECK(spread(gw.port, 30)["b2"] == 10);
}

TEST_CASE("no healthy host: reject answers 503, panic still routes") {
  Backend b1("b1");
  b1.setFault(R"({"healthy": false})");
  std::string check = std::string(kFastHealthCheck) + ", ";
  SUBCASE("reject") {
    Gateway gw(proxySpec({b1.port}, check + "no_healthy_hosts: reject"));
    gw.process.waitForLog("is now unhealthy", 5s);
    HttpResponse r = httpGet(gw.port, "/x");
    checkErrorJson(r, 503);
    CHECK(json(r)["error"].get<std::string>().find("no healthy upstream") != std::string::npos);
  }
  SUBCASE("panic") {
    Gateway gw(proxySpec({b1.port}, check + "no_healthy_hosts: panic"));
    gw.process.waitForLog("is now unhealthy", 5s);
    CHECK(httpGet(gw.port, "/x").status == 200);
  }
  SUBCASE("initial_state: unhealthy gets no traffic before the first passing checks") {
    b1.setFault(R"({"healthy": true})");
    Gateway gw(proxySpec({b1.port},
                         "health_check: { interval: 5s, timeout: 1s, initial_state: unhealthy }, "
                         "no_healthy_hosts: reject"));
    checkErrorJson(httpGet(gw.port, "/x"), 503);
  }
}

TEST_CASE("passive outlier detection ejects a host that keeps answering 5xx") {
  Backend bad("bad", {"--fail-rate", "1"}), good("good");
  GatewaySpec spec = proxySpec({bad.port, good.port},
                               "retry_on: [connect-failure], outlier_detection: { consecutive_5xx: 3, "
                               "base_ejection_time: 30s }");
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  int errors = 0;
  HttpClient c;
  c.connect(gw.port);
  for (int i = 0; i < 20; ++i) {
    c.sendRaw(get("/o"));
    HttpResponse r = c.readResponse();
    if (r.status >= 500) ++errors;
  }
  // Round robin sends every other request to "bad" until its third 5xx in a row.
  CHECK(errors == 3);
  CHECK(bad.requests() == 3 + 1);  // + this stats probe
  // The gateway's own count: one ejection (of "bad", the only host with 5xx).
  CHECK(adminJson(adminPort, "/stats").at("clusters").at("backends").at("ejections") == 1);
  CHECK(adminClusterHost(adminPort, "backends", bad.port).at("ejections") == 1);
  CHECK(adminClusterHost(adminPort, "backends", good.port).at("ejections") == 0);
}

TEST_CASE("5xx answers are retried on another host when retry_on says so") {
  Backend bad("bad", {"--fail-rate", "1"}), good("good");
  SUBCASE("retry_on: [5xx]") {
    Gateway gw(proxySpec({bad.port, good.port}, "retries: 1, retry_on: [5xx]"));
    auto counts = spread(gw.port, 10);
    CHECK(counts["good"] == 10);
  }
  SUBCASE("without 5xx in retry_on the answer passes through") {
    Gateway gw(proxySpec({bad.port, good.port}, "retries: 1, retry_on: [connect-failure, reset]"));
    int failures = 0;
    for (int i = 0; i < 10; ++i) failures += httpGet(gw.port, "/x").status >= 500 ? 1 : 0;
    CHECK(failures == 5);
  }
}

TEST_CASE("a hanging upstream: 504 after the timeout, or success on another host with retries") {
  Backend hang("hang", {"--hang-rate", "1"}), good("good");
  SUBCASE("no other host: 504") {
    Gateway gw(proxySpec({hang.port}, "timeout: 300ms"));
    auto start = Clock::now();
    HttpResponse r = httpGet(gw.port, "/h");
    checkErrorJson(r, 504);
    CHECK(Clock::now() - start >= 250ms);
  }
  SUBCASE("per_try_timeout and gateway-error retries reach the good host") {
    Gateway gw(proxySpec({hang.port, good.port},
                         "timeout: 5s, per_try_timeout: 300ms, retries: 1, retry_on: [gateway-error]"));
    for (int i = 0; i < 4; ++i) {
      HttpResponse r = httpGet(gw.port, "/h");
      REQUIRE_MESSAGE(r.status == 200, r.body);
      CHECK(backendOf(r) == "good");
    }
  }
  SUBCASE("a POST is not retried after it reached the hanging host") {
    Gateway gw(proxySpec({hang.port, good.port},
                         "timeout: 5s, per_try_timeout: 300ms, retries: 1, retry_on: [gateway-error]"));
    int timeouts = 0;
    for (int i = 0; i < 2; ++i) {
      HttpClient c;
      c.connect(gw.port);
      c.sendRaw("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
      HttpResponse r = c.readResponse(5s);
      if (r.status == 504) ++timeouts;
    }
    CHECK(timeouts == 1);  // round robin: one of the two went to the hanging host
  }
}

TEST_CASE("circuit breaker: requests beyond max_requests get 503") {
  Backend b("b1");
  GatewaySpec spec = proxySpec({b.port}, "circuit_breakers: { max_requests: 2 }");
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  constexpr int kClients = 6;
  int ok = 0, overflow = 0;
  for (const HttpResponse& r : concurrentGets(gw.port, kClients, "/delay/400")) {
    if (r.status == 200) {
      ++ok;
    } else {
      checkErrorJson(r, 503);
      CHECK(json(r)["error"].get<std::string>().find("max_requests") != std::string::npos);
      ++overflow;
    }
  }
  CHECK(ok == 2);
  CHECK(overflow == kClients - 2);
  // The slots come back: the cluster serves again once those are done.
  CHECK(httpGet(gw.port, "/after").status == 200);
  // The gateway counted each refusal as a max_requests overflow, and nothing else.
  Json cluster = adminJson(adminPort, "/stats").at("clusters").at("backends");
  CHECK(cluster.at("overflow_requests") == kClients - 2);
  CHECK(cluster.at("overflow_pending") == 0);
  CHECK(cluster.at("overflow_connections") == 0);
  CHECK(cluster.at("requests") == 2 + 1);  // admitted ones only: the two, then /after
}

namespace {

// Steady GET load over `connections` keep-alive connections until `stop`; counts answers.
// A thread that fails outside a request (it cannot connect) records why and ends; the
// failure is reported after the join. The destructor joins, so every way out of a test
// (a failed REQUIRE included) ends the threads.
struct Load {
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> errors{0};
  std::mutex failureMutex;
  std::string failure;  // the first thread failure, "" when none
  std::vector<std::thread> threads;

  Load(uint16_t port, int connections) {
    for (int i = 0; i < connections; ++i) {
      threads.emplace_back([this, port] {
        try {
          run(port);
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(failureMutex);
          if (failure.empty()) failure = e.what();
        }
      });
    }
  }
  ~Load() { finish(); }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  void run(uint16_t port) {
    auto c = std::make_unique<HttpClient>();
    c->connect(port);
    while (!stop) {
      try {
        c->sendRaw(get("/delay/10"));
        HttpResponse r = c->readResponse(10s);
        (r.status == 200 ? ok : errors)++;
        if (r.status != 200) note(std::to_string(r.status) + " " + r.body);
        if (r.keepAlive) continue;
      } catch (const std::exception& e) {
        errors++;  // the gateway closed on us: also a client-visible error
        note(e.what());
      }
      c = std::make_unique<HttpClient>();
      c->connect(port);
    }
  }
  void note(const std::string& what) {
    std::lock_guard<std::mutex> lock(failureMutex);
    if (errorLog.size() < 10) errorLog.push_back(what);
  }
  std::vector<std::string> errorLog;  // what the first errors were, for the failure message

  // Stops and joins (idempotent); returns the first thread failure, "" when none.
  std::string finish() {
    stop = true;
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
    std::lock_guard<std::mutex> lock(failureMutex);
    return failure;
  }
};

struct KillResult {
  int ok = 0;
  int errors = 0;
  uint64_t inFlight = 0;         // requests b2 held (read, unanswered) when it was killed
  uint64_t retries = 0;          // the gateway's /stats retry counter for the cluster
  uint64_t connectFailures = 0;  // attempts that found no listener, over all hosts (/clusters)
  uint64_t sentToHosts = 0;      // requests the three backends received from the gateway
  int resetsFromB2 = 0;          // client errors that are b2's connection resets
};

uint64_t u64(const Json& j) {
  return j.get<uint64_t>();
}

// Three backends behind the gateway and steady load from `connections` clients. Then the
// second backend stops answering (it reads each request and holds it), every client ends
// up with its one request waiting there, and b2 is killed with SIGKILL: the requests in
// flight on it at that moment are exactly the ones it holds, counted by b2 itself. The load
// goes on over the other two (new requests to b2 are connect failures, always retried).
KillResult killOneUnderLoad(const std::string& retryOn, int connections) {
  Backend b1("b1"), b2("b2"), b3("b3");
  // The retry budget is out of the way (min_retries well above the three clients): a
  // request may still hold its budget slot for a moment after its client has the answer,
  // so a floor of three could refuse a connect-failure retry that this test counts on.
  GatewaySpec spec =
      proxySpec({b1.port, b2.port, b3.port},
                std::string(kFastHealthCheck) +
                    ", retries: 2, retry_budget: { percent: 20, min_retries: 10 }, retry_on: " + retryOn);
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  Load load(gw.port, connections);
  REQUIRE(waitUntil([&] { return load.ok >= 30; }, 20s));  // traffic over all three hosts

  b2.setFault(R"({"hang_rate": 1})");  // its /health still passes: it stays in rotation
  BackendProbe probe2{b2};
  probe2.others = 1;  // the setFault
  Json atKill;
  // Round robin gives every client b2 within a few requests; a client waiting there sends
  // nothing more, so once b2 holds `connections` requests nothing changes until the kill.
  REQUIRE(waitUntil(
      [&] { return u64((atKill = probe2.read()).at("hangs")) == static_cast<uint64_t>(connections); }, 20s));
  KillResult result;
  result.inFlight = u64(atKill.at("hangs"));
  // The gateway agrees: that many attempts open on b2, no client has seen an error yet.
  CHECK(adminClusterHost(adminPort, "backends", b2.port).at("active_requests") == connections);
  CHECK(load.errors == 0);
  const uint64_t sentToB2 = probe2.proxiedRequests(atKill);

  const int okAtKill = load.ok;
  b2.kill();
  REQUIRE(waitUntil([&] { return load.ok >= okAtKill + 50; }, 20s));
  std::string failure = load.finish();
  CHECK_MESSAGE(failure.empty(), "a load thread failed: " << failure);

  for (const std::string& e : load.errorLog) {
    MESSAGE("client error: " << e);
    const bool fromB2 = e.find(":" + std::to_string(b2.port) + ": connection reset") != std::string::npos;
    result.resetsFromB2 += fromB2 ? 1 : 0;
  }
  result.ok = load.ok;
  result.errors = load.errors;
  result.retries = u64(adminJson(adminPort, "/stats").at("clusters").at("backends").at("retries"));
  for (uint16_t port : {b1.port, b2.port, b3.port}) {
    result.connectFailures += u64(adminClusterHost(adminPort, "backends", port).at("connect_failures"));
  }
  BackendProbe probe1{b1}, probe3{b3};
  result.sentToHosts =
      sentToB2 + probe1.proxiedRequests(probe1.read()) + probe3.proxiedRequests(probe3.read());
  MESSAGE("retry_on " << retryOn << ": " << result.ok << " ok, " << result.errors << " errors, "
                      << result.inFlight << " in flight on b2 at the kill, " << result.retries << " retries, "
                      << result.connectFailures << " connect failures, " << result.sentToHosts
                      << " requests reached a backend");
  return result;
}

}  // namespace

TEST_CASE("a backend killed under load: errors only for requests in flight on it, none with retries") {
  constexpr int kConnections = 3;
  SUBCASE("retries on reset: no client sees an error") {
    KillResult result = killOneUnderLoad("[connect-failure, reset]", kConnections);
    CHECK(result.inFlight == kConnections);
    CHECK(result.ok > 50);
    CHECK(result.errors == 0);
    // Every request lost with b2 was sent again: the gateway counted the retries, and the
    // backends together received exactly that many requests more than the clients sent.
    // (Every connect failure to the dead b2 is retried too, once; so is a request whose
    // connection b2's kernel still completed while SIGKILL tore it down, up to one per
    // client: b2 never read those, so they count as retries but not as sent to b2.)
    CHECK(result.retries >= result.connectFailures + result.inFlight);
    CHECK(result.retries <= result.connectFailures + result.inFlight + kConnections);
    CHECK(result.sentToHosts == static_cast<uint64_t>(result.ok + result.errors) + result.inFlight);
  }
  SUBCASE("no retry on reset: at most the requests in flight on the dead host fail") {
    KillResult result = killOneUnderLoad("[connect-failure]", kConnections);
    CHECK(result.inFlight == kConnections);
    CHECK(result.ok > 50);
    // Errors only for requests b2 had when it died; new requests to it are connect
    // failures, retried. Each of those it held fails (a reset is not retried here), and so
    // may a request whose connection b2's kernel still completed while SIGKILL tore it down
    // (seen under ASan, whose teardown is slow): at most one per client, never read by b2.
    const int lateResets = result.errors - static_cast<int>(result.inFlight);
    CHECK(lateResets >= 0);
    CHECK(lateResets <= kConnections);
    CHECK(result.resetsFromB2 == result.errors);  // every error is b2's reset
    // Nothing was sent twice: the only retries were for connect failures, and the backends
    // received exactly what the clients sent, less what only b2's kernel took.
    CHECK(result.retries == result.connectFailures);
    CHECK(result.sentToHosts == static_cast<uint64_t>(result.ok + result.errors - lateResets));
  }
}

TEST_CASE("requests waiting for a connection to a dead host all fail fast, none hang") {
  // One connection per host: three requests queue behind one connect attempt. When it is
  // refused, the first gets the failure and the pool must try again for the others (or
  // fail them) instead of leaving them waiting with no timer.
  ClosedPort dead;
  Gateway gw(proxySpec({dead.port()}, "retries: 0, max_connections_per_host: 1"));
  auto start = Clock::now();
  for (const HttpResponse& r : concurrentGets(gw.port, 3, "/dead")) checkErrorJson(r, 502);
  CHECK(Clock::now() - start < 5s);
}
