// Scale-out: three gateway processes share one Redis (rate limits) and one PostgreSQL (request
// log). One API key driven through all three at once, as fast as possible, must be admitted
// about as often as its limit says in total, not three times as often: a sliding window of 600
// per hour, so a run that crosses a window boundary still admits ~600 (±2%).
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/gateway_fixture.h"
#include "tests/support/postgres_server.h"
#include "tests/support/redis_server.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kGateways = 3;
constexpr int kThreadsPerGateway = 3;
constexpr int kRequests = 2000;
constexpr int kLimit = 600;
constexpr const char* kKey = "scale-out-key-0001";

GatewaySpec scaleSpec(uint16_t backendPort, const RedisServer& redis, const std::string& storageUrl) {
  GatewaySpec spec = proxySpec({backendPort}, "retries: 0");
  spec.workers = 2;
  // A generous Redis timeout and failure_mode deny: a slow Redis can only lower the count, and
  // shows in failure_mode_decisions.
  spec.filters = {std::string("{ name: auth, keys: [ { key: ") + kKey + ", name: scale } ] }",
                  "{ name: rate_limit, algorithm: sliding_window, limit: " + std::to_string(kLimit) +
                      ", window: 1h, by: api_key, store: redis, failure_mode: deny }"};
  spec.topLevel = {
      "redis: { url: \"redis://127.0.0.1:" + std::to_string(redis.port()) + "/0\", timeout: 2s }",
      "storage: { url: \"" + storageUrl + "\", flush_interval: 50ms }"};
  spec.admin = true;
  return spec;
}

struct Tally {
  std::atomic<int> admitted{0};
  std::atomic<int> limited{0};
  std::atomic<int> other{0};
  std::atomic<int> errors{0};
};

}  // namespace

TEST_CASE("scale-out: three gateways, one Redis, one PostgreSQL: one key's limit holds across all of them") {
  RedisServer redis;
  PostgresServer postgres;
  const std::string storageUrl = postgres.createDatabase("flowguard_scale_out");
  Backend backend;

  Tally tally[kGateways];
  uint64_t allowedByStats[kGateways] = {0, 0, 0};
  {
    std::vector<std::unique_ptr<Gateway>> gateways;
    std::vector<uint16_t> adminPorts;
    for (int g = 0; g < kGateways; ++g) {
      gateways.push_back(std::make_unique<Gateway>(scaleSpec(backend.port, redis, storageUrl)));
      adminPorts.push_back(gateways.back()->adminPort);
    }

    // Every thread connects first, then all start together; each takes request slots from one
    // shared counter until kRequests have been sent.
    std::atomic<int> slots{0};
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    {
      StopAndJoin joiner{stop, threads};
      for (int g = 0; g < kGateways; ++g) {
        for (int t = 0; t < kThreadsPerGateway; ++t) {
          threads.emplace_back([&, g] {
            const uint16_t port = gateways[g]->port;
            const std::string request =
                "GET /scale HTTP/1.1\r\nHost: gw.test\r\nX-API-Key: " + std::string(kKey) + "\r\n\r\n";
            HttpClient client;
            try {
              client.connect(port);
            } catch (const std::exception&) {
              tally[g].errors++;
            }
            ready++;
            while (!go && !stop) std::this_thread::yield();
            while (!stop && slots.fetch_add(1) < kRequests) {
              try {
                if (!client.connected()) client.connect(port);
                client.sendRaw(request);
                HttpResponse r = client.readResponse();
                if (r.status == 200) {
                  tally[g].admitted++;
                } else if (r.status == 429 && !r.header("Retry-After").empty()) {
                  tally[g].limited++;
                } else {
                  tally[g].other++;
                }
                if (!r.keepAlive) client.close();
              } catch (const std::exception&) {
                tally[g].errors++;
                client.close();
              }
            }
          });
        }
      }
      REQUIRE(waitUntil([&] { return ready.load() == kGateways * kThreadsPerGateway; }, 10s));
      const auto start = Clock::now();
      go = true;
      for (auto& t : threads) t.join();
      threads.clear();
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      MESSAGE(kRequests << " requests through " << kGateways << " gateways in " << seconds << " s");
    }

    for (int g = 0; g < kGateways; ++g) {
      Json stats = json(httpGet(adminPorts[g], "/stats"));
      const Json& rl = stats["rate_limit"]["test"];
      allowedByStats[g] = rl["allowed"].get<uint64_t>();
      CHECK(rl["failure_mode_decisions"] == 0);
      CHECK(rl["limited"] == tally[g].limited.load());
    }
    // The gateways stop here (SIGTERM, exit 0 checked by the fixture) and flush their logs.
  }

  int admitted = 0, limited = 0;
  std::string split;
  for (int g = 0; g < kGateways; ++g) {
    admitted += tally[g].admitted;
    limited += tally[g].limited;
    split += (g ? ", gateway " : "gateway ") + std::to_string(g + 1) + ": " +
             std::to_string(tally[g].admitted.load());
    CHECK(tally[g].other == 0);
    CHECK(tally[g].errors == 0);
    CHECK_MESSAGE(tally[g].admitted > 0, "gateway " << g + 1 << " admitted nothing");
    CHECK(allowedByStats[g] == static_cast<uint64_t>(tally[g].admitted));
  }
  MESSAGE("admitted " << admitted << " of " << kRequests << " (limit " << kLimit << "): " << split);
  CHECK(admitted + limited == kRequests);
  CHECK(admitted >= kLimit * 98 / 100);
  CHECK(admitted <= kLimit * 102 / 100);
  CHECK(backend.requests() == static_cast<uint64_t>(admitted) + 1);  // + the /_stats probe

  // All three gateways logged into the one request_log.
  pqxx::connection conn(storageUrl);
  pqxx::work tx(conn);
  std::map<int, int> rows;
  for (const auto& row :
       tx.exec("SELECT status, count(*) FROM request_log WHERE path = '/scale' GROUP BY status")) {
    rows[row[0].as<int>()] = row[1].as<int>();
  }
  CHECK(rows[200] == admitted);
  CHECK(rows[429] == limited);
  CHECK(rows.size() == 2);
}
