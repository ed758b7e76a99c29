// RedisRateLimiter against a real redis-server: every test drives a real uv loop until a
// condition holds or a deadline passes, and ends by checking that close() left no handle
// open on the loop.
#include <doctest/doctest.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "filters/redis_rate_limiter.h"
#include "tests/support/redis_server.h"
#include "tests/support/test_loop.h"

using namespace std::chrono_literals;
using flowguard::filters::RateLimitDecision;
using flowguard::filters::RedisRateLimiter;
using flowguard::test::Millis;
using flowguard::test::RedisServer;
using flowguard::test::TestLoop;
using Clock = std::chrono::steady_clock;
using Result = std::optional<RateLimitDecision>;

namespace {

flowguard::config::RedisConfig redisConfig(uint16_t port, Millis timeout = 2s) {
  flowguard::config::RedisConfig config;
  config.configured = true;
  config.host = "127.0.0.1";
  config.port = port;
  config.timeout = timeout;
  return config;
}

flowguard::config::RateLimitSpec spec(flowguard::config::RateLimitAlgorithm algorithm, uint64_t requests,
                                      Millis period, uint64_t burst = 0) {
  flowguard::config::RateLimitSpec s;
  s.algorithm = algorithm;
  s.requests = requests;
  s.period = period;
  s.burst = burst;
  return s;
}

constexpr auto kTokenBucket = flowguard::config::RateLimitAlgorithm::TokenBucket;
constexpr auto kFixedWindow = flowguard::config::RateLimitAlgorithm::FixedWindow;
constexpr auto kSlidingWindow = flowguard::config::RateLimitAlgorithm::SlidingWindow;

// A blocking connection for setting up and inspecting Redis behind the limiter's back.
class SyncRedis {
 public:
  explicit SyncRedis(uint16_t port, Millis timeout = 2s) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    c_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    REQUIRE(c_ != nullptr);
    REQUIRE_MESSAGE(c_->err == 0, c_->errstr);
    redisSetTimeout(c_, tv);
  }
  ~SyncRedis() { redisFree(c_); }
  SyncRedis(const SyncRedis&) = delete;
  SyncRedis& operator=(const SyncRedis&) = delete;

  // The reply as text: integers in decimal, errors as "ERR:<message>", nil as "(nil)";
  // nullopt when no reply came (timeout or broken connection).
  std::optional<std::string> tryCommand(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (!reply) return std::nullopt;
    std::string text;
    switch (reply->type) {
      case REDIS_REPLY_INTEGER:
        text = std::to_string(reply->integer);
        break;
      case REDIS_REPLY_NIL:
        text = "(nil)";
        break;
      case REDIS_REPLY_ERROR:
        text = std::string("ERR:") + reply->str;
        break;
      case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < reply->elements; ++i) {
          if (reply->element[i]->type == REDIS_REPLY_STRING)
            text += std::string(reply->element[i]->str) + "\n";
          if (reply->element[i]->type == REDIS_REPLY_INTEGER)
            text += std::to_string(reply->element[i]->integer) + "\n";
        }
        break;
      default:
        text.assign(reply->str, reply->len);
    }
    freeReplyObject(reply);
    return text;
  }
  std::string command(const std::vector<std::string>& args) {
    auto reply = tryCommand(args);
    REQUIRE_MESSAGE(reply.has_value(), "no reply to " << args.front() << ": " << c_->errstr);
    return *reply;
  }
  // Redis's own clock in milliseconds, as the script sees it.
  int64_t timeMs() {
    std::string t = command({"TIME"});  // "seconds\nmicroseconds\n"
    size_t nl = t.find('\n');
    return std::stoll(t.substr(0, nl)) * 1000 + std::stoll(t.substr(nl + 1)) / 1000;
  }

 private:
  redisContext* c_ = nullptr;
};

// Issues one decision and runs the loop until it is answered.
Result decideNow(TestLoop& loop, RedisRateLimiter& limiter, const std::string& key,
                 const flowguard::config::RateLimitSpec& s) {
  std::optional<Result> got;
  limiter.decide(key, s, [&](Result r) { got = r; });
  REQUIRE_MESSAGE(loop.runUntil([&] { return got.has_value(); }, 10s), "no answer for " << key);
  return *got;
}

}  // namespace

TEST_CASE("token bucket admits exactly the burst, then denies with a retry-after") {
  RedisServer redis;
  TestLoop loop;
  RedisRateLimiter limiter(loop.get(), redisConfig(redis.port()));
  limiter.start();

  // Sent before the connection is up: they wait behind the handshake (EVAL, no SHA yet).
  const auto s = spec(kTokenBucket, 10, 60s, 5);  // one token per 6 s, bursts of 5
  std::vector<Result> results;
  for (int i = 0; i < 6; ++i)
    CHECK(limiter.decide("user-1", s, [&](Result r) { results.push_back(r); }) != 0);
  REQUIRE(loop.runUntil([&] { return results.size() == 6; }, 10s));
  CHECK(limiter.connected());
  for (int i = 0; i < 5; ++i) {
    REQUIRE(results[i].has_value());
    CHECK(results[i]->allowed);
    CHECK(results[i]->limit == 5);
    CHECK(results[i]->remaining == static_cast<uint64_t>(4 - i));
    CHECK(results[i]->retryAfterMs == 0);
  }
  REQUIRE(results[5].has_value());
  CHECK_FALSE(results[5]->allowed);
  CHECK(results[5]->remaining == 0);
  CHECK(results[5]->retryAfterMs > 0);
  CHECK(results[5]->retryAfterMs <= 6000);
  CHECK(results[5]->resetMs >= results[5]->retryAfterMs);

  // Once connected, by SHA: still denied, and other keys are independent.
  Result again = decideNow(loop, limiter, "user-1", s);
  REQUIRE(again.has_value());
  CHECK_FALSE(again->allowed);
  Result other = decideNow(loop, limiter, "user-2", s);
  REQUIRE(other.has_value());
  CHECK(other->allowed);
  CHECK(other->remaining == 4);

  // The key carries a hash tag and an expiry.
  SyncRedis sync(redis.port());
  CHECK(sync.command({"EXISTS", "{fg:user-1}"}) == "1");
  const int64_t ttl = std::stoll(sync.command({"PTTL", "{fg:user-1}"}));
  CHECK(ttl > 0);
  CHECK(ttl <= 120'000);

  limiter.close();
  limiter.close();  // idempotent
  CHECK(loop.finish() == 0);
}

TEST_CASE("fixed window admits the limit per window") {
  RedisServer redis;
  TestLoop loop;
  RedisRateLimiter limiter(loop.get(), redisConfig(redis.port()));
  limiter.start();
  const Millis period = 1h;
  const auto s = spec(kFixedWindow, 3, period);
  std::string key = "fw";
  Result first = decideNow(loop, limiter, key, s);
  REQUIRE(first.has_value());
  if (first->resetMs < 10'000) {
    // Too close to the end of the hour for the next requests to share the window.
    loop.runFor(Millis(first->resetMs + 50));
    key = "fw-next";
    first = decideNow(loop, limiter, key, s);
    REQUIRE(first.has_value());
  }
  CHECK(first->allowed);
  CHECK(first->limit == 3);
  CHECK(first->remaining == 2);
  CHECK(first->resetMs > 0);
  CHECK(first->resetMs <= static_cast<uint64_t>(period.count()));
  Result second = decideNow(loop, limiter, key, s);
  Result third = decideNow(loop, limiter, key, s);
  Result fourth = decideNow(loop, limiter, key, s);
  REQUIRE((second && third && fourth));
  CHECK(second->allowed);
  CHECK(second->remaining == 1);
  CHECK(third->allowed);
  CHECK(third->remaining == 0);
  CHECK_FALSE(fourth->allowed);
  CHECK(fourth->remaining == 0);
  CHECK(fourth->retryAfterMs == fourth->resetMs);
  CHECK(fourth->retryAfterMs > 0);
  CHECK(fourth->retryAfterMs <= first->resetMs);

  limiter.close();
  CHECK(loop.finish() == 0);
}

TEST_CASE("sliding window weighs the previous window by its remaining share") {
  RedisServer redis;
  TestLoop loop;
  RedisRateLimiter limiter(loop.get(), redisConfig(redis.port()));
  limiter.start();
  SyncRedis sync(redis.port());
  const int64_t period = 3'600'000;
  const uint64_t requests = 10;
  const auto s = spec(kSlidingWindow, requests, Millis(period));

  // Previous window full (10), nothing yet in this one: a request is admitted while
  // 10 * (P - e) + c * P < 10 * P, i.e. c < 10 * e / P. Bracket e by Redis's clock. Should the
  // hour turn during the twelve decisions, the bracket means nothing: again with a new key
  // (the hour cannot turn twice in a row).
  bool weighed = false;
  for (int attempt = 0; attempt < 2 && !weighed; ++attempt) {
    const std::string key = "sw-" + std::to_string(attempt);
    const int64_t before = sync.timeMs();
    const int64_t index = before / period;
    sync.command({"HSET", "{fg:" + key + "}", "w", std::to_string(index - 1), "c", "10", "p", "0"});
    std::vector<Result> results;
    for (int i = 0; i < 12; ++i) results.push_back(decideNow(loop, limiter, key, s));
    const int64_t after = sync.timeMs();
    if (after / period != index) continue;
    weighed = true;
    auto expectedAt = [&](int64_t now) {
      const int64_t e = now - index * period;  // c admitted while c * P < 10 * e
      int64_t n = (static_cast<int64_t>(requests) * e + period - 1) / period;
      return std::min<int64_t>(n, static_cast<int64_t>(requests));
    };
    int64_t admitted = 0;
    for (const Result& r : results) {
      REQUIRE(r.has_value());
      admitted += r->allowed ? 1 : 0;
    }
    CHECK(admitted >= expectedAt(before));
    CHECK(admitted <= expectedAt(after));
    const Result& last = results.back();
    CHECK_FALSE(last->allowed);
    CHECK(last->limit == requests);
    CHECK(last->retryAfterMs > 0);
    CHECK(last->retryAfterMs <= static_cast<uint64_t>(2 * period));
  }
  CHECK_MESSAGE(weighed, "the window rolled over during both attempts");

  // A fresh key with no history: exactly the limit (again with a new key should the hour turn).
  const auto small = spec(kSlidingWindow, 2, Millis(period));
  bool counted = false;
  for (int attempt = 0; attempt < 2 && !counted; ++attempt) {
    const std::string key = "sw-fresh-" + std::to_string(attempt);
    Result a = decideNow(loop, limiter, key, small);
    Result b = decideNow(loop, limiter, key, small);
    Result c = decideNow(loop, limiter, key, small);
    REQUIRE((a && b && c));
    if (c->resetMs > a->resetMs) continue;  // the time to the window's end only shrinks within one
    counted = true;
    CHECK(a->allowed);
    CHECK(a->remaining == 1);
    CHECK(b->allowed);
    CHECK(b->remaining == 0);
    CHECK_FALSE(c->allowed);
  }
  CHECK_MESSAGE(counted, "the window rolled over during both attempts");

  limiter.close();
  CHECK(loop.finish() == 0);
}

TEST_CASE("limiters on different loops share one limit through Redis") {
  RedisServer redis;
  const auto s = spec(kTokenBucket, 10, 60s);  // burst = 10
  std::atomic<int> admitted{0};
  std::atomic<int> answered{0};
  std::atomic<int> failures{0};
  auto worker = [&] {
    TestLoop loop;
    RedisRateLimiter limiter(loop.get(), redisConfig(redis.port()));
    limiter.start();
    int mine = 0;
    for (int i = 0; i < 15; ++i) {
      limiter.decide("shared", s, [&](Result r) {
        ++mine;
        ++answered;
        if (!r) ++failures;
        if (r && r->allowed) ++admitted;
      });
    }
    if (!loop.runUntil([&] { return mine == 15; }, 10s)) ++failures;
    limiter.close();
    if (loop.finish() != 0) ++failures;
  };
  std::thread a(worker);
  std::thread b(worker);
  a.join();
  b.join();
  CHECK(failures == 0);
  CHECK(answered == 30);
  CHECK(admitted == 10);
}

TEST_CASE("NOSCRIPT: the script is loaded again and the decision retried") {
  RedisServer redis;
  TestLoop loop;
  RedisRateLimiter limiter(loop.get(), redisConfig(redis.port()));
  limiter.start();
  REQUIRE(loop.runUntil([&] { return limiter.connected(); }, 10s));
  const auto s = spec(kTokenBucket, 5, 60s);
  Result first = decideNow(loop, limiter, "ns", s);
  REQUIRE(first.has_value());
  CHECK(first->remaining == 4);

  SyncRedis sync(redis.port());
  CHECK(sync.command({"SCRIPT", "FLUSH"}) == "OK");
  Result second = decideNow(loop, limiter, "ns", s);
  REQUIRE(second.has_value());
  CHECK(second->allowed);
  CHECK(second->remaining == 3);  // the counter survived; only the script was gone
  CHECK(sync.command({"INFO", "errorstats"}).find("errorstat_NOSCRIPT:count=1") != std::string::npos);
  Result third = decideNow(loop, limiter, "ns", s);
  REQUIRE(third.has_value());
  CHECK(third->remaining == 2);

  limiter.close();
  CHECK(loop.finish() == 0);
}

TEST_CASE("Redis down: decisions fail fast; after a restart they work again") {
  RedisServer redis;
  TestLoop loop;
  RedisRateLimiter limiter(loop.get(), redisConfig(redis.port()));
  limiter.start();
  REQUIRE(loop.runUntil([&] { return limiter.connected(); }, 10s));
  const auto s = spec(kTokenBucket, 100, 1s);
  REQUIRE(decideNow(loop, limiter, "down", s).has_value());

  redis.stop();
  const auto t0 = Clock::now();
  std::optional<Result> got;
  limiter.decide("down", s, [&](Result r) { got = r; });
  REQUIRE(loop.runUntil([&] { return got.has_value(); }, 5s));
  CHECK(Clock::now() - t0 < 500ms);
  CHECK_FALSE(got->has_value());
  REQUIRE(loop.runUntil([&] { return !limiter.connected(); }, 2s));

  // Known down: answered before decide() returns.
  bool called = false;
  Result syncResult = RateLimitDecision{};
  CHECK(limiter.decide("down", s, [&](Result r) {
    called = true;
    syncResult = r;
  }) == 0);
  CHECK(called);
  CHECK_FALSE(syncResult.has_value());
  loop.runFor(300ms);  // a few reconnect attempts against the closed port
  CHECK_FALSE(limiter.connected());

  redis.start();
  // Backoff after this short outage is well under 2 s; allow for a loaded machine.
  REQUIRE(loop.runUntil([&] { return limiter.connected(); }, 10s));
  Result after = decideNow(loop, limiter, "down", s);
  REQUIRE(after.has_value());
  CHECK(after->allowed);

  limiter.close();
  CHECK(loop.finish() == 0);
}

TEST_CASE("nothing listening: the refused connect fails pending decisions at once") {
  const flowguard::test::ClosedPort closed;
  const uint16_t port = closed.port();
  TestLoop loop;
  // A decision timeout far above the bound below: only noticing the refusal is fast enough.
  RedisRateLimiter limiter(loop.get(), redisConfig(port, 5s));
  limiter.start();
  std::optional<Result> got;
  const auto t0 = Clock::now();
  limiter.decide("nobody", spec(kTokenBucket, 1, 1s), [&](Result r) { got = r; });
  REQUIRE(loop.runUntil([&] { return got.has_value(); }, 10s));
  CHECK(Clock::now() - t0 < 500ms);
  CHECK_FALSE(got->has_value());
  CHECK_FALSE(limiter.connected());
  bool called = false;
  CHECK(limiter.decide("nobody", spec(kTokenBucket, 1, 1s), [&](Result r) {
    called = true;
    CHECK_FALSE(r.has_value());
  }) == 0);
  CHECK(called);
  loop.runFor(500ms);  // reconnect attempts come and go without trouble
  limiter.close();
  CHECK(loop.finish() == 0);
}

TEST_CASE("a slow Redis: the decision times out, the late reply is ignored") {
  RedisServer redis({"--enable-debug-command", "local"});
  TestLoop loop;
  const Millis timeout = 100ms;
  RedisRateLimiter limiter(loop.get(), redisConfig(redis.port(), timeout));
  limiter.start();
  REQUIRE(loop.runUntil([&] { return limiter.connected(); }, 10s));
  const auto s = spec(kTokenBucket, 100, 1s);
  REQUIRE(decideNow(loop, limiter, "slow", s).has_value());

  std::atomic<bool> slept{false};
  std::thread sleeper([&] {
    SyncRedis blocker(redis.port(), 5s);
    blocker.command({"DEBUG", "SLEEP", "1"});
    slept = true;
  });
  // Wait until Redis is really blocked: a PING then gets no answer within 30 ms.
  bool blocked = false;
  for (int i = 0; i < 100 && !blocked && !slept; ++i) {
    SyncRedis probe(redis.port(), 30ms);
    blocked = !probe.tryCommand({"PING"}).has_value();
    if (!blocked) std::this_thread::sleep_for(5ms);
  }
  REQUIRE(blocked);

  int calls = 0;
  Result result = RateLimitDecision{};
  uv_update_time(loop.get());
  const auto t0 = Clock::now();
  CHECK(limiter.decide("slow", s, [&](Result r) {
    ++calls;
    result = r;
  }) != 0);
  REQUIRE(loop.runUntil([&] { return calls > 0; }, 5s));
  const auto elapsed = Clock::now() - t0;
  CHECK(elapsed >= timeout - 10ms);
  CHECK(elapsed < 600ms);
  CHECK_FALSE(result.has_value());

  // The sleep ends, the late reply arrives and goes nowhere; the connection stays usable.
  REQUIRE(loop.runUntil([&] { return slept.load(); }, 5s));
  sleeper.join();
  Result after = decideNow(loop, limiter, "slow", s);
  REQUIRE(after.has_value());
  CHECK(after->allowed);
  CHECK(calls == 1);
  CHECK(limiter.connected());

  limiter.close();
  CHECK(loop.finish() == 0);
}

TEST_CASE("cancel and close: dropped callbacks are never called") {
  RedisServer redis;
  TestLoop loop;
  RedisRateLimiter limiter(loop.get(), redisConfig(redis.port()));
  limiter.start();
  REQUIRE(loop.runUntil([&] { return limiter.connected(); }, 10s));
  const auto s = spec(kFixedWindow, 100, 1h);

  bool cancelledCalled = false;
  const auto handle = limiter.decide("c", s, [&](Result) { cancelledCalled = true; });
  REQUIRE(handle != 0);
  limiter.cancel(handle);
  limiter.cancel(handle);  // twice is harmless
  limiter.cancel(0);
  // Redis answers in order: once a later decision is back, the cancelled one's reply came.
  Result later = decideNow(loop, limiter, "c", s);
  REQUIRE(later.has_value());
  // Cancelled before its batch left at the end of the iteration: it cost nothing.
  CHECK(later->remaining == 99);
  CHECK_FALSE(cancelledCalled);

  // close() with decisions in flight drops them too.
  int closedCalls = 0;
  for (int i = 0; i < 3; ++i) limiter.decide("c", s, [&](Result) { ++closedCalls; });
  limiter.close();
  loop.runFor(100ms);
  CHECK(closedCalls == 0);
  CHECK(limiter.decide("c", s, [&](Result r) {
    CHECK_FALSE(r.has_value());
    ++closedCalls;
  }) == 0);
  CHECK(closedCalls == 1);
  CHECK(loop.finish() == 0);
}

TEST_CASE("one iteration's requests of a key are decided by one script call, in order") {
  RedisServer redis;
  TestLoop loop;
  RedisRateLimiter limiter(loop.get(), redisConfig(redis.port()));
  limiter.start();
  REQUIRE(loop.runUntil([&] { return limiter.connected(); }, 10s));
  SyncRedis sync(redis.port());
  CHECK(sync.command({"CONFIG", "RESETSTAT"}) == "OK");

  // Four keys interleaved, 40 requests each, all asked for before the loop runs again.
  const auto bucket = spec(kTokenBucket, 10, 1h, 25);  // burst 25, next token in 6 min
  const auto window = spec(kFixedWindow, 7, 1h);
  const auto sliding = spec(kSlidingWindow, 5, 1h);  // a fresh key: exactly 5 per window
  std::vector<std::string> keys = {"batch-a", "batch-b", "batch-w", "batch-s"};
  std::vector<std::vector<Result>> results(keys.size());
  // The first answer for batch-b cancels b's last request, which is in the same batch: that
  // one must never be called back.
  RedisRateLimiter::Handle bLast = 0;
  for (int i = 0; i < 40; ++i) {
    for (size_t k = 0; k < keys.size(); ++k) {
      auto h = limiter.decide(keys[k],
                              k == 2   ? window
                              : k == 3 ? sliding
                                       : bucket,
                              [&, k](Result r) {
                                results[k].push_back(r);
                                if (k == 1 && results[k].size() == 1) limiter.cancel(bLast);
                              });
      REQUIRE(h != 0);
      if (k == 1) bLast = h;
    }
  }
  REQUIRE(loop.runUntil(
      [&] {
        return results[0].size() == 40 && results[2].size() == 40 && results[3].size() == 40 &&
               results[1].size() == 39;
      },
      10s));
  loop.runFor(50ms);
  CHECK(results[1].size() == 39);

  auto admittedIn = [](const std::vector<Result>& rs) {
    int n = 0;
    for (const Result& r : rs) {
      REQUIRE(r.has_value());
      n += r->allowed ? 1 : 0;
    }
    return n;
  };
  CHECK(admittedIn(results[0]) == 25);
  CHECK(admittedIn(results[2]) == 7);
  // In order: the first 25 pass with 24, 23, ... 0 left; then the rest are refused.
  for (int i = 0; i < 40; ++i) {
    const Result& r = results[0][static_cast<size_t>(i)];
    CHECK(r->allowed == (i < 25));
    CHECK(r->limit == 25);
    CHECK(r->remaining == static_cast<uint64_t>(i < 25 ? 24 - i : 0));
    if (i < 25) {
      CHECK(r->retryAfterMs == 0);
      // The bucket is full again 6 min per spent token later.
      CHECK(r->resetMs <= static_cast<uint64_t>(i + 1) * 360'000);
      CHECK(r->resetMs > static_cast<uint64_t>(i) * 360'000);
    } else {
      CHECK(r->retryAfterMs > 0);
      CHECK(r->retryAfterMs <= 360'000);
    }
  }
  for (int i = 0; i < 40; ++i) {
    const Result& r = results[2][static_cast<size_t>(i)];
    CHECK(r->allowed == (i < 7));
    CHECK(r->remaining == static_cast<uint64_t>(i < 7 ? 6 - i : 0));
  }
  for (int i = 0; i < 40; ++i) {
    const Result& r = results[3][static_cast<size_t>(i)];
    CHECK(r->allowed == (i < 5));
    CHECK(r->remaining == static_cast<uint64_t>(i < 5 ? 4 - i : 0));
    if (i >= 5) CHECK(r->retryAfterMs > 0);
  }
  // One call per key, not one per request (160 decisions).
  const std::string stats = sync.command({"INFO", "commandstats"});
  const auto at = stats.find("cmdstat_evalsha:calls=");
  REQUIRE(at != std::string::npos);
  const int calls = std::stoi(stats.substr(at + 22));
  CHECK(calls >= 4);
  CHECK(calls <= 6);

  limiter.close();
  CHECK(loop.finish() == 0);
}

TEST_CASE("a callback may close the limiter") {
  RedisServer redis;
  TestLoop loop;
  auto limiter = std::make_unique<RedisRateLimiter>(loop.get(), redisConfig(redis.port()));
  limiter->start();
  const auto s = spec(kTokenBucket, 100, 1s);
  int calls = 0;
  for (int i = 0; i < 3; ++i) {
    limiter->decide("cb", s, [&](Result) {
      ++calls;
      limiter.reset();  // the first answer destroys it; the other two are dropped
    });
  }
  REQUIRE(loop.runUntil([&] { return calls > 0; }, 10s));
  loop.runFor(100ms);
  CHECK(calls == 1);
  CHECK(loop.finish() == 0);
}

TEST_CASE("password and database") {
  RedisServer redis({"--requirepass", "s3cret"});
  TestLoop loop;
  auto config = redisConfig(redis.port());
  config.password = "s3cret";
  config.db = 3;
  RedisRateLimiter limiter(loop.get(), config);
  limiter.start();
  Result r = decideNow(loop, limiter, "authed", spec(kTokenBucket, 5, 1s));
  REQUIRE(r.has_value());
  CHECK(r->allowed);
  SyncRedis sync(redis.port());
  CHECK(sync.command({"AUTH", "s3cret"}) == "OK");
  CHECK(sync.command({"EXISTS", "{fg:authed}"}) == "0");
  CHECK(sync.command({"SELECT", "3"}) == "OK");
  CHECK(sync.command({"EXISTS", "{fg:authed}"}) == "1");
  limiter.close();

  // A wrong password: never up, decisions answered with nullopt.
  auto wrong = config;
  wrong.password = "nope";
  RedisRateLimiter denied(loop.get(), wrong);
  denied.start();
  Result d = RateLimitDecision{};
  bool called = false;
  denied.decide("authed", spec(kTokenBucket, 5, 1s), [&](Result x) {
    called = true;
    d = x;
  });
  REQUIRE(loop.runUntil([&] { return called; }, 5s));
  CHECK_FALSE(d.has_value());
  CHECK_FALSE(denied.connected());
  denied.close();
  CHECK(loop.finish() == 0);
}
