// Upstream resilience through the real gateway and real fault-injecting backends: active
// health checks, passive ejection, retries and their limits, circuit breakers, and a
// backend killed under load.
#include <atomic>
#include <map>
#include <thread>

#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string backendOf(const HttpResponse& r) { return json(r).value("backend", std::string()); }

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
    Gateway gw(proxySpec({b1.port}, "health_check: { interval: 5s, timeout: 1s, initial_state: unhealthy }, "
                                    "no_healthy_hosts: reject"));
    checkErrorJson(httpGet(gw.port, "/x"), 503);
  }
}

TEST_CASE("passive outlier detection ejects a host that keeps answering 5xx") {
  Backend bad("bad", {"--fail-rate", "1"}), good("good");
  Gateway gw(proxySpec({bad.port, good.port},
                       "retry_on: [connect-failure], outlier_detection: { consecutive_5xx: 3, "
                       "base_ejection_time: 30s }"));
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
  REQUIRE(gw.process.stop() == 0);
  CHECK(gw.process.logText().find("ejections=1 ") != std::string::npos);
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
  Gateway gw(proxySpec({b.port}, "circuit_breakers: { max_requests: 2 }"));
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
  // The overflow counter, reported at exit until the admin listener exists.
  REQUIRE(gw.process.stop() == 0);
  CHECK(gw.process.logText().find("overflow_requests=4 ") != std::string::npos);
}

namespace {

// Steady GET load over `connections` keep-alive connections until `stop`; counts answers.
struct Load {
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;

  Load(uint16_t port, int connections) {
    for (int i = 0; i < connections; ++i) {
      threads.emplace_back([this, port] {
        auto c = std::make_unique<HttpClient>();
        c->connect(port);
        while (!stop) {
          try {
            c->sendRaw(get("/delay/10"));
            HttpResponse r = c->readResponse(10s);
            (r.status == 200 ? ok : errors)++;
            if (r.keepAlive) continue;
          } catch (const std::exception&) {
            errors++;  // the gateway closed on us: also a client-visible error
          }
          c = std::make_unique<HttpClient>();
          c->connect(port);
        }
      });
    }
  }
  void finish() {
    stop = true;
    for (auto& t : threads) t.join();
  }
};

}  // namespace

namespace {

struct KillResult {
  int ok;
  int errors;
};

// Three backends behind the gateway, steady load from `connections` clients, and the
// second backend killed with SIGKILL half a second in.
KillResult killOneUnderLoad(const std::string& retryOn, int connections) {
  Backend b1("b1"), b2("b2"), b3("b3");
  Gateway gw(proxySpec({b1.port, b2.port, b3.port},
                       std::string(kFastHealthCheck) + ", retries: 2, retry_on: " + retryOn));
  Load load(gw.port, connections);
  sleepFor(500ms);
  b2.kill();
  sleepFor(1000ms);
  load.finish();
  MESSAGE("retry_on " << retryOn << ": " << load.ok.load() << " ok, " << load.errors.load() << " errors");
  return {load.ok.load(), load.errors.load()};
}

}  // namespace

TEST_CASE("a backend killed under load: errors only for requests in flight on it, none with retries") {
  constexpr int kConnections = 4;
  SUBCASE("retries on reset: no client sees an error") {
    KillResult result = killOneUnderLoad("[connect-failure, reset]", kConnections);
    CHECK(result.ok > 50);
    CHECK(result.errors == 0);
  }
  SUBCASE("no retry on reset: at most the requests in flight on the dead host fail") {
    KillResult result = killOneUnderLoad("[connect-failure]", kConnections);
    CHECK(result.ok > 50);
    // Each client connection has at most one request in flight, so at most that many
    // were on the dead host when it died; new requests to it are connect failures, retried.
    CHECK(result.errors <= kConnections);
  }
}

TEST_CASE("requests waiting for a connection to a dead host all fail fast, none hang") {
  // One connection per host: three requests queue behind one connect attempt. When it is
  // refused, the first gets the failure and the pool must try again for the others (or
  // fail them) instead of leaving them waiting with no timer.
  Gateway gw(proxySpec({freeTcpPort()}, "retries: 0, max_connections_per_host: 1"));
  auto start = Clock::now();
  for (const HttpResponse& r : concurrentGets(gw.port, 3, "/dead")) checkErrorJson(r, 502);
  CHECK(Clock::now() - start < 5s);
}
