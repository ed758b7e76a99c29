// rate_limit with `store: redis` through real gateway processes and a real redis-server:
// limits enforced from Redis, one limit shared exactly by two gateway replicas, and the
// failure modes while Redis is down, with recovery once it is back.
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "tests/integration/gateway_fixture.h"
#include "tests/support/redis_server.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

const char* kAuth = "{ name: auth, keys: [ { key: secret-key-one, name: one } ] }";

// With an admin listener (Gateway::adminPort), for the rate-limit counters in /stats.
GatewaySpec redisSpec(uint16_t backendPort, std::vector<std::string> filters, const RedisServer& redis,
                      const std::string& timeout, unsigned workers = 1) {
  GatewaySpec spec = proxySpec({backendPort});
  spec.workers = workers;
  spec.filters = std::move(filters);
  spec.topLevel = {"redis: { url: \"redis://127.0.0.1:" + std::to_string(redis.port()) +
                   "/0\", timeout: " + timeout + " }"};
  spec.admin = true;
  return spec;
}

// One command in RESP, straight on a socket: the test asks Redis itself what it holds,
// without going through the code under test.
std::string redisReply(uint16_t port, const std::vector<std::string>& args) {
  HttpClient c;  // only for its connect-with-deadline; the bytes are RESP
  c.connect(port, 2s);
  std::string command = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& arg : args) command += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
  c.sendRaw(command);
  std::string reply;
  pollfd pfd{c.fd(), POLLIN, 0};
  auto deadline = Clock::now() + 2s;
  while (reply.find("\r\n") == std::string::npos) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0 || ::poll(&pfd, 1, static_cast<int>(left)) <= 0)
      throw std::runtime_error("redis: no reply");
    char buf[512];
    ssize_t n = ::recv(c.fd(), buf, sizeof(buf), 0);
    if (n <= 0) throw std::runtime_error("redis: connection closed");
    reply.append(buf, static_cast<size_t>(n));
  }
  return reply.substr(0, reply.find("\r\n"));
}

// Keys in db 0. The fixture's Redis starts empty (no persistence), also after start().
long redisDbSize(uint16_t port) {
  std::string reply = redisReply(port, {"DBSIZE"});
  if (reply.empty() || reply[0] != ':') throw std::runtime_error("redis DBSIZE: " + reply);
  return std::stol(reply.substr(1));
}

struct RateLimitCounters {
  uint64_t allowed = 0;
  uint64_t limited = 0;
  uint64_t shadowLimited = 0;
  uint64_t failureDecisions = 0;
};

// The decisions of listener "test" so far, from the admin listener's /stats (summed over the
// workers; each is counted before its answer is sent, so they are exact once the answers are in).
RateLimitCounters statsCounters(uint16_t adminPort) {
  Json all = adminJson(adminPort, "/stats");
  INFO("/stats rate_limit: " << all["rate_limit"].dump());
  REQUIRE(all["rate_limit"].contains("test"));
  const Json& t = all["rate_limit"]["test"];
  RateLimitCounters c;
  c.allowed = t.at("allowed").get<uint64_t>();
  c.limited = t.at("limited").get<uint64_t>();
  c.shadowLimited = t.at("shadow_limited").get<uint64_t>();
  c.failureDecisions = t.at("failure_mode_decisions").get<uint64_t>();
  return c;
}

struct Timed {
  HttpResponse response;
  Millis elapsed;
};

Timed timedGet(uint16_t port, const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  auto start = Clock::now();
  HttpResponse r = httpGet(port, "/x", headers, 5s);
  return {std::move(r), std::chrono::duration_cast<Millis>(Clock::now() - start)};
}

std::string errorOf(const HttpResponse& r) {
  Json j = json(r);
  return j.value("error", std::string());
}

// A request during the outage must not wait for Redis beyond its timeout.
constexpr Millis kNoHang = 1000ms;

// After redis.start(): polls (one request per round, at most ~8 s) until the gateway's
// decisions land in the restarted, empty Redis again. Returns the statuses of the polling
// requests, so a caller can account for them.
std::vector<int> waitForRedisDecisions(const Gateway& gw, const RedisServer& redis) {
  std::vector<int> statuses;
  auto deadline = Clock::now() + 8s;
  while (Clock::now() < deadline) {
    Timed t = timedGet(gw.port);
    CHECK(t.elapsed < kNoHang);
    statuses.push_back(t.response.status);
    if (redisDbSize(redis.port()) > 0) return statuses;
    sleepFor(50ms);
  }
  FAIL("the gateway did not use Redis again within 8 s of its restart");
  return statuses;
}

// The bucket now lives in Redis (burst `burst`, some tokens taken by the polling): its
// answers count down by one to 0, then a 429 from the limit itself. Returns the 200s.
int drainRedisBucket(const Gateway& gw, uint64_t burst) {
  std::optional<uint64_t> last;
  int ok = 0;
  for (uint64_t i = 0; i <= burst; ++i) {
    HttpResponse r = httpGet(gw.port, "/x");
    if (r.status == 429) {
      checkErrorJson(r, 429);
      CHECK(errorOf(r).find("rate limit exceeded") != std::string::npos);
      CHECK(r.header("RateLimit-Remaining") == "0");
      CHECK(std::stoi(r.header("Retry-After")) >= 1);
      CHECK(last == uint64_t{0});  // only once the countdown reached 0
      return ok;
    }
    REQUIRE(r.status == 200);
    ++ok;
    CHECK(r.header("RateLimit-Limit") == std::to_string(burst));
    uint64_t remaining = std::stoull(r.header("RateLimit-Remaining"));
    CHECK(remaining < burst - 1);  // the polling took at least one token already
    if (last) CHECK(remaining == *last - 1);
    last = remaining;
  }
  FAIL("no 429 within the burst after Redis came back");
  return ok;
}

}  // namespace

TEST_CASE(
    "rate_limit store: redis admits exactly its burst, then 429 with Retry-After and RateLimit headers") {
  RedisServer redis;
  Backend b;
  // deny: a Redis failure shows up as a missing 200, never as an extra one.
  Gateway gw(redisSpec(
      b.port, {"{ name: rate_limit, rate: 1/m, burst: 5, store: redis, failure_mode: deny }"}, redis, "1s"));
  const uint16_t adminPort = gw.adminPort;
  HttpClient c;
  c.connect(gw.port);
  for (int i = 0; i < 5; ++i) {
    c.sendRaw(get("/x"));
    HttpResponse r = c.readResponse();
    REQUIRE(r.status == 200);
    CHECK(r.header("RateLimit-Limit") == "5");
    CHECK(r.header("RateLimit-Remaining") == std::to_string(4 - i));
    CHECK(r.header("X-RateLimit-Limit") == "5");
    CHECK(r.header("X-RateLimit-Remaining") == std::to_string(4 - i));
    CHECK(std::stoi(r.header("RateLimit-Reset")) >= 1);
    CHECK_FALSE(r.hasHeader("Retry-After"));
  }
  HttpResponse limited = httpGet(gw.port, "/x");
  checkErrorJson(limited, 429);
  CHECK(errorOf(limited).find("rate limit exceeded for client 127.0.0.1") != std::string::npos);
  CHECK(limited.header("RateLimit-Remaining") == "0");
  CHECK(limited.header("X-RateLimit-Remaining") == "0");
  // One token a minute and the bucket just emptied: the next one is under a minute away.
  int retryAfter = std::stoi(limited.header("Retry-After"));
  CHECK(retryAfter >= 1);
  CHECK(retryAfter <= 60);
  CHECK(redisDbSize(redis.port()) == 1);  // one caller, one bucket, held by Redis
  CHECK(b.requests() == 5 + 1);           // the 429 never reached the backend (+ this probe)
  RateLimitCounters counters = statsCounters(adminPort);
  CHECK(counters.allowed == 5);
  CHECK(counters.limited == 1);
  CHECK(counters.failureDecisions == 0);
  CHECK(counters.shadowLimited == 0);
}

TEST_CASE("rate_limit store: redis: two gateways share one limit exactly") {
  RedisServer redis;
  Backend b;
  // Same listener name ("test") and same API key in both: one descriptor, one bucket.
  // A generous timeout and deny: a slow Redis can only lower the count, and shows in the
  // failure counters.
  const std::string limit = "{ name: rate_limit, rate: 1/h, burst: 200, store: redis, failure_mode: deny }";
  Gateway gwA(redisSpec(b.port, {kAuth, limit}, redis, "2s", 2));
  Gateway gwB(redisSpec(b.port, {kAuth, limit}, redis, "2s", 2));
  const uint16_t adminA = gwA.adminPort, adminB = gwB.adminPort;
  const uint16_t ports[2] = {gwA.port, gwB.port};

  constexpr int kThreads = 6;
  constexpr int kEach = 100;  // 600 requests, 300 per gateway
  std::atomic<int> ok[2] = {0, 0};
  std::atomic<int> limited{0}, limitedWithRetryAfter{0}, other{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const int g = (t + i) % 2;
        try {
          HttpResponse r = httpGet(ports[g], "/x", {{"X-API-Key", "secret-key-one"}});
          if (r.status == 200) {
            ok[g]++;
          } else if (r.status == 429) {
            limited++;
            if (!r.header("Retry-After").empty()) limitedWithRetryAfter++;
          } else {
            other++;
          }
        } catch (const std::exception&) {
          errors++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  const int okA = ok[0], okB = ok[1], total = okA + okB;
  INFO("200s: " << okA << " via A + " << okB << " via B");
  CHECK(errors.load() == 0);
  CHECK(other.load() == 0);
  CHECK(total >= 198);  // the ±1% bound...
  CHECK(total <= 202);
  CHECK(total == 200);  // ...and the exact answer one atomic script per decision gives
  CHECK(limited.load() == kThreads * kEach - 200);
  CHECK(limitedWithRetryAfter.load() == limited.load());
  CHECK(redisDbSize(redis.port()) == 1);  // both replicas used the same key
  CHECK(b.requests() == static_cast<uint64_t>(total) + 1);

  RateLimitCounters a = statsCounters(adminA);
  RateLimitCounters bb = statsCounters(adminB);
  CHECK(a.allowed + a.limited == kThreads * kEach / 2);  // every request decided by Redis...
  CHECK(bb.allowed + bb.limited == kThreads * kEach / 2);
  CHECK(a.allowed == static_cast<uint64_t>(okA));
  CHECK(bb.allowed == static_cast<uint64_t>(okB));
  CHECK(a.failureDecisions == 0);  // ...none by the failure mode
  CHECK(bb.failureDecisions == 0);
}

TEST_CASE("rate_limit store: redis: failure modes while Redis is down, Redis again once it is back") {
  constexpr uint64_t kBurst = 5;
  RedisServer redis;
  Backend b;
  auto filter = [&](const std::string& mode) {
    return "{ name: rate_limit, rate: 1/h, burst: " + std::to_string(kBurst) +
           ", store: redis, failure_mode: " + mode + " }";
  };

  SUBCASE("allow: requests pass, none waits") {
    Gateway gw(redisSpec(b.port, {filter("allow")}, redis, "250ms"));
    const uint16_t adminPort = gw.adminPort;
    for (uint64_t i = 0; i < kBurst; ++i) REQUIRE(httpGet(gw.port, "/x").status == 200);
    REQUIRE(httpGet(gw.port, "/x").status == 429);  // the Redis bucket is empty

    redis.stop();
    constexpr int kOutage = 10;
    for (int i = 0; i < kOutage; ++i) {
      Timed t = timedGet(gw.port);
      CHECK(t.response.status == 200);  // over the limit, but the limit is unknown
      CHECK(t.elapsed < kNoHang);
    }

    redis.start();
    std::vector<int> polls = waitForRedisDecisions(gw, redis);
    for (int status : polls) CHECK(status == 200);  // allowed by Redis's fresh bucket or the failure mode
    int drained = drainRedisBucket(gw, kBurst);
    CHECK(redisDbSize(redis.port()) == 1);
    RateLimitCounters c = statsCounters(adminPort);
    INFO("polling requests: " << polls.size() << ", 200s after: " << drained);
    CHECK(c.failureDecisions >= kOutage);
    CHECK(c.limited == 2);  // the one before the outage and the one after: both from Redis
    CHECK(c.allowed >= kBurst + static_cast<uint64_t>(drained));
  }

  SUBCASE("deny: requests get 429 at once") {
    Gateway gw(redisSpec(b.port, {filter("deny")}, redis, "250ms"));
    const uint16_t adminPort = gw.adminPort;
    for (int i = 0; i < 2; ++i) REQUIRE(httpGet(gw.port, "/x").status == 200);

    redis.stop();
    constexpr int kOutage = 6;
    for (int i = 0; i < kOutage; ++i) {
      Timed t = timedGet(gw.port);
      checkErrorJson(t.response, 429);
      CHECK(t.elapsed < kNoHang);
    }
    CHECK(b.requests() == 2 + 1);

    redis.start();
    std::vector<int> polls = waitForRedisDecisions(gw, redis);
    // Only Redis can allow: the last poll reached the fresh bucket (a 200), the ones
    // before it were denied.
    CHECK(polls.back() == 200);
    for (size_t i = 0; i + 1 < polls.size(); ++i) CHECK(polls[i] == 429);
    int drained = drainRedisBucket(gw, kBurst);
    RateLimitCounters c = statsCounters(adminPort);
    CHECK(c.failureDecisions >= kOutage);
    CHECK(c.limited == 1);  // failure-mode 429s are not counted as limited
    CHECK(c.allowed == 2 + 1 + static_cast<uint64_t>(drained));
  }

  SUBCASE("local: the in-process limit applies, counted from a fresh local bucket") {
    Gateway gw(redisSpec(b.port, {filter("local")}, redis, "250ms"));
    const uint16_t adminPort = gw.adminPort;
    // Two tokens taken in Redis: the local bucket does not know about them.
    for (int i = 0; i < 2; ++i) REQUIRE(httpGet(gw.port, "/x").status == 200);

    redis.stop();
    constexpr int kOutage = 8;
    int ok = 0, limited = 0;
    for (int i = 0; i < kOutage; ++i) {
      Timed t = timedGet(gw.port);
      CHECK(t.elapsed < kNoHang);
      if (t.response.status == 200) {
        ++ok;
        CHECK(limited == 0);  // the burst first, then only 429s
        CHECK(t.response.header("RateLimit-Remaining") ==
              std::to_string(kBurst - 1 - static_cast<uint64_t>(i)));
      } else {
        checkErrorJson(t.response, 429);
        CHECK(errorOf(t.response).find("rate limit exceeded") != std::string::npos);
        CHECK(std::stoi(t.response.header("Retry-After")) >= 1);
        ++limited;
      }
    }
    CHECK(ok == static_cast<int>(kBurst));
    CHECK(limited == kOutage - static_cast<int>(kBurst));

    redis.start();
    std::vector<int> polls = waitForRedisDecisions(gw, redis);
    // The local bucket is empty: a 200 can only come from the restarted Redis.
    CHECK(polls.back() == 200);
    int localLimitedPolls = 0;
    for (size_t i = 0; i + 1 < polls.size(); ++i) {
      CHECK(polls[i] == 429);
      ++localLimitedPolls;
    }
    int drained = drainRedisBucket(gw, kBurst);
    RateLimitCounters c = statsCounters(adminPort);
    CHECK(c.failureDecisions >= kOutage);
    // Local 429s (outage and polling) plus the final one from Redis.
    CHECK(c.limited == static_cast<uint64_t>(limited + localLimitedPolls + 1));
    CHECK(c.allowed == 2 + kBurst + 1 + static_cast<uint64_t>(drained));
  }
}
