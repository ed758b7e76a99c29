// The auth, rate_limit and metrics filters and the top-level redis section.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "config/units.h"
#include "filters/auth/auth.h"
#include "filters/metrics/metrics.h"
#include "filters/rate_limit/rate_limit.h"
#include "tests/config/config_test_helpers.h"

using namespace flowguard::config;
using namespace flowguard::config::test;
using flowguard::filters::RateLimitSettings;
using namespace std::chrono_literals;

namespace {

// A valid chain; tests edit it. Line numbers below refer to it:
//  1 listeners:
//  2   - name: public
//  3     address: 127.0.0.1:8000
//  4     filters:
//  5       - name: auth
//  6         keys:
//  7           - { key: k1, name: demo }
//  8       - name: rate_limit
//  9         rate: 10/s
// 10       - name: metrics
// 11       - name: router
// 12         routes:
// 13           - match: { prefix: / }
// 14             cluster: backends
// 15 clusters:
// 16   - name: backends
// 17     hosts: [127.0.0.1:9001]
const std::string kChain = R"(listeners:
  - name: public
    address: 127.0.0.1:8000
    filters:
      - name: auth
        keys:
          - { key: k1, name: demo }
      - name: rate_limit
        rate: 10/s
      - name: metrics
      - name: router
        routes:
          - match: { prefix: / }
            cluster: backends
clusters:
  - name: backends
    hosts: [127.0.0.1:9001]
)";

std::string replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// kChain with `lines` added after line 9 (inside rate_limit; the first is line 10).
std::string withRateLimit(const std::string& lines) {
  return replace(kChain, "        rate: 10/s\n", "        rate: 10/s\n" + lines);
}
// kChain with `lines` added after line 7 (inside auth; the first is line 8).
std::string withAuth(const std::string& lines) {
  return replace(kChain, "name: demo }\n", "name: demo }\n" + lines);
}
// kChain with `lines` added after line 10 (inside metrics; the first is line 11).
std::string withMetrics(const std::string& lines) {
  return replace(kChain, "      - name: metrics\n", "      - name: metrics\n" + lines);
}

template <class T>
const T& filterAt(const Config& config, size_t listener, size_t index) {
  const T* settings = std::get_if<T>(&config.listeners.at(listener).filters.at(index).settings);
  REQUIRE(settings);
  return *settings;
}

const flowguard::filters::AuthSettings& authAt(const Config& config, size_t listener, size_t index) {
  return pluginSettings<flowguard::filters::AuthSettings>(config.listeners.at(listener).filters.at(index));
}

const flowguard::filters::RateLimitSettings& rateLimitAt(const Config& config, size_t listener,
                                                         size_t index) {
  return pluginSettings<flowguard::filters::RateLimitSettings>(
      config.listeners.at(listener).filters.at(index));
}

const flowguard::filters::MetricsSettings& metricsAt(const Config& config, size_t listener, size_t index) {
  return pluginSettings<flowguard::filters::MetricsSettings>(config.listeners.at(listener).filters.at(index));
}

}  // namespace

TEST_CASE("parseRate") {
  uint64_t requests = 0;
  Duration period{};
  std::string reason;
  CHECK(parseRate("10/s", requests, period, reason));
  CHECK(requests == 10);
  CHECK(period == 1s);
  CHECK(parseRate("1000/m", requests, period, reason));
  CHECK(requests == 1000);
  CHECK(period == 1min);
  CHECK(parseRate("5/h", requests, period, reason));
  CHECK(period == 1h);
  CHECK_FALSE(parseRate("0/s", requests, period, reason));
  CHECK(reason == "the number of requests must be greater than 0");
  CHECK_FALSE(parseRate("10/d", requests, period, reason));
  CHECK(reason == "unknown period 'd' (use s, m or h, e.g. 10/s)");
  for (const char* bad : {"10", "/s", "-1/s", "1.5/s", " 10/s", "ten/s", ""}) {
    CAPTURE(bad);
    CHECK_FALSE(parseRate(bad, requests, period, reason));
    CHECK(reason == "expected requests per period: N/s, N/m or N/h, e.g. 10/s");
  }
  CHECK_FALSE(parseRate("99999999999999999999/s", requests, period, reason));
  CHECK(reason == "too large");
}

TEST_CASE("a full config with every filter and redis key") {
  REQUIRE(setenv("FG_TEST_REDIS_PASSWORD", "from-env", 1) == 0);
  auto config = loadOk(R"(listeners:
  - name: public
    address: 127.0.0.1:8000
    filters:
      - name: auth
        header: X-API-Key
        allow_bearer: false
        strip_header: false
        keys:
          - { key: test-api-key, name: demo, plan: free, limit: { rate: 100/s, burst: 200 } }
          - key: "k2!~"
            name: batch
            limit: { algorithm: sliding_window, limit: 50, window: 10s }
        exempt:
          - { path: /register, methods: [POST] }
          - { prefix: /public, host: api.example.com }
      - name: rate_limit
        algorithm: fixed_window
        limit: 100
        window: 1m
        by: client_ip
        per_route: true
        store: redis
        failure_mode: local
        shadow: true
        overrides:
          - { key: demo, limit: 1000, window: 1h }
          - { key: batch, algorithm: token_bucket, rate: 5/m, burst: 7 }
      - name: metrics
        access_log: { path: /var/log/fg.log, sample: 0.25 }
        max_key_series: 50
      - name: router
        routes:
          - match: { prefix: / }
            cluster: backends
clusters:
  - name: backends
    hosts: [127.0.0.1:9001]
redis:
  url: redis://:secret@[::1]:6380/3
  password: ${FG_TEST_REDIS_PASSWORD:-}
  timeout: 75ms
)");
  unsetenv("FG_TEST_REDIS_PASSWORD");
  const ListenerConfig& l = config->listeners.at(0);
  REQUIRE(l.filters.size() == 4);
  CHECK(l.filters[0].name == "auth");
  CHECK(l.filters[1].name == "rate_limit");
  CHECK(l.filters[2].name == "metrics");
  CHECK(l.filters[3].name == "router");

  const auto& auth = authAt(*config, 0, 0);
  CHECK(auth.header == "x-api-key");
  CHECK_FALSE(auth.allowBearer);
  CHECK_FALSE(auth.stripHeader);
  REQUIRE(auth.keys.size() == 2);
  CHECK(auth.keys[0].key == "test-api-key");
  CHECK(auth.keys[0].name == "demo");
  CHECK(auth.keys[0].plan == "free");
  CHECK(auth.keys[0].location.line == 10);
  CHECK(auth.keys[0].location.column == 13);
  REQUIRE(auth.keys[0].limit);
  CHECK(auth.keys[0].limit->algorithm == RateLimitAlgorithm::TokenBucket);
  CHECK(auth.keys[0].limit->requests == 100);
  CHECK(auth.keys[0].limit->period == 1s);
  CHECK(auth.keys[0].limit->burst == 200);
  CHECK(auth.keys[1].key == "k2!~");
  CHECK(auth.keys[1].name == "batch");
  CHECK(auth.keys[1].plan.empty());
  REQUIRE(auth.keys[1].limit);
  CHECK(auth.keys[1].limit->algorithm == RateLimitAlgorithm::SlidingWindow);
  CHECK(auth.keys[1].limit->requests == 50);
  CHECK(auth.keys[1].limit->period == 10s);
  CHECK(auth.keys[1].limit->burst == 0);
  REQUIRE(auth.exempt.size() == 2);
  CHECK(auth.exempt[0].path == "/register");
  CHECK(auth.exempt[0].methods == std::vector<std::string>{"POST"});
  CHECK(auth.exempt[1].prefix == "/public");
  CHECK(auth.exempt[1].host == "api.example.com");

  const auto& rl = rateLimitAt(*config, 0, 1);
  CHECK(rl.limit.algorithm == RateLimitAlgorithm::FixedWindow);
  CHECK(rl.limit.requests == 100);
  CHECK(rl.limit.period == 1min);
  CHECK(rl.limit.burst == 0);
  CHECK(rl.by == flowguard::filters::RateLimitKeyBy::ClientIp);
  CHECK(rl.perRoute);
  CHECK(rl.store == flowguard::filters::RateLimitStore::Redis);
  CHECK(rl.failureMode == flowguard::filters::RateLimitFailureMode::Local);
  CHECK(rl.shadow);
  REQUIRE(rl.overrides.size() == 2);
  CHECK(rl.overrides[0].key == "demo");
  CHECK(rl.overrides[0].limit.algorithm == RateLimitAlgorithm::FixedWindow);  // the filter's
  CHECK(rl.overrides[0].limit.requests == 1000);
  CHECK(rl.overrides[0].limit.period == 1h);
  CHECK(rl.overrides[0].location.line == 27);
  CHECK(rl.overrides[0].location.column == 13);
  CHECK(rl.overrides[1].key == "batch");
  CHECK(rl.overrides[1].limit.algorithm == RateLimitAlgorithm::TokenBucket);
  CHECK(rl.overrides[1].limit.requests == 5);
  CHECK(rl.overrides[1].limit.period == 1min);
  CHECK(rl.overrides[1].limit.burst == 7);

  const auto& metrics = metricsAt(*config, 0, 2);
  CHECK(metrics.accessLog.enabled);
  CHECK(metrics.accessLog.path == "/var/log/fg.log");
  CHECK(metrics.accessLog.sample == 0.25);
  CHECK(metrics.maxKeySeries == 50);

  const RedisConfig& redis = config->redis;
  CHECK(redis.configured);
  CHECK(redis.host == "::1");
  CHECK(redis.port == 6380);
  CHECK(redis.db == 3);
  CHECK(redis.password == "from-env");  // the key wins over the URL's
  CHECK(redis.timeout == 75ms);
  CHECK(redis.location.line == 40);
  CHECK(redis.location.column == 3);
}

TEST_CASE("omitted filter keys take the defaults of config.h") {
  auto config = loadOk(kChain);
  const auto& auth = authAt(*config, 0, 0);
  CHECK(auth.header == "x-api-key");
  CHECK(auth.allowBearer);
  CHECK(auth.stripHeader);
  REQUIRE(auth.keys.size() == 1);
  CHECK(auth.keys[0].plan.empty());
  CHECK_FALSE(auth.keys[0].limit);
  CHECK(auth.exempt.empty());

  const auto& rl = rateLimitAt(*config, 0, 1);
  CHECK(rl.limit.algorithm == RateLimitAlgorithm::TokenBucket);
  CHECK(rl.limit.requests == 10);
  CHECK(rl.limit.period == 1s);
  CHECK(rl.limit.burst == 10);  // = the rate's N
  CHECK(rl.by == flowguard::filters::RateLimitKeyBy::ApiKey);
  CHECK_FALSE(rl.perRoute);
  CHECK(rl.store == flowguard::filters::RateLimitStore::Local);
  CHECK(rl.failureMode == flowguard::filters::RateLimitFailureMode::Allow);
  CHECK_FALSE(rl.shadow);
  CHECK(rl.overrides.empty());

  const auto& metrics = metricsAt(*config, 0, 2);
  CHECK_FALSE(metrics.accessLog.enabled);
  CHECK(metrics.accessLog.path == "-");
  CHECK(metrics.accessLog.sample == 1.0);
  CHECK(metrics.maxKeySeries == 1000);

  CHECK_FALSE(config->redis.configured);

  // An empty access_log map turns the log on with its defaults; `off` leaves it off.
  auto on = loadOk(withMetrics("        access_log: {}\n"));
  CHECK(metricsAt(*on, 0, 2).accessLog.enabled);
  CHECK(metricsAt(*on, 0, 2).accessLog.path == "-");
  auto off = loadOk(withMetrics("        access_log: off\n"));
  CHECK_FALSE(metricsAt(*off, 0, 2).accessLog.enabled);

  // An auth filter with no keys (they may come from the key store), and no auth at all.
  auto bare = loadOk(replace(kChain, "        keys:\n          - { key: k1, name: demo }\n", ""));
  CHECK(authAt(*bare, 0, 0).keys.empty());
  auto noAuth =
      loadOk(replace(kChain, "      - name: auth\n        keys:\n          - { key: k1, name: demo }\n", ""));
  CHECK(rateLimitAt(*noAuth, 0, 0).by == flowguard::filters::RateLimitKeyBy::ApiKey);

  // redis: only what is given changes.
  auto redis = loadOk(kChain + "redis: { url: redis://localhost }\n");
  CHECK(redis->redis.configured);
  CHECK(redis->redis.host == "localhost");
  CHECK(redis->redis.port == 6379);
  CHECK(redis->redis.db == 0);
  CHECK(redis->redis.password.empty());
  CHECK(redis->redis.timeout == 50ms);
  auto empty = loadOk(kChain + "redis: {}\n");
  CHECK(empty->redis.configured);
  CHECK(empty->redis.host == "127.0.0.1");
  auto withPassword = loadOk(kChain + "redis: { url: 'redis://:p%w@127.0.0.1:7000/', password: '' }\n");
  CHECK(withPassword->redis.password == "p%w");  // an empty `password` keeps the URL's
  CHECK(withPassword->redis.port == 7000);
  CHECK(withPassword->redis.db == 0);
}

TEST_CASE("filters: unknown keys, with a suggestion") {
  CHECK(onlyError(withAuth("        strip_headers: true\n")) ==
        "t.yaml:8:9: unknown key 'strip_headers' in auth filter (did you mean 'strip_header'?)");
  CHECK(onlyError(replace(kChain, "name: demo }", "name: demo, plna: x }")) ==
        "t.yaml:7:36: unknown key 'plna' in auth key (did you mean 'plan'?)");
  CHECK(onlyError(replace(kChain, "name: demo }", "name: demo, limit: { rate: 1/s, brust: 2 } }")) ==
        "t.yaml:7:56: unknown key 'brust' in key limit (did you mean 'burst'?)");
  CHECK(onlyError(withAuth("        exempt: [{ path: /x, method: [GET] }]\n")) ==
        "t.yaml:8:30: unknown key 'method' in exempt entry (did you mean 'methods'?)");
  CHECK(onlyError(withRateLimit("        shadw: true\n")) ==
        "t.yaml:10:9: unknown key 'shadw' in rate_limit filter (did you mean 'shadow'?)");
  CHECK(onlyError(withRateLimit("        overrides: [{ key: demo, rate: 1/s, bust: 3 }]\n")) ==
        "t.yaml:10:45: unknown key 'bust' in rate_limit override (did you mean 'burst'?)");
  CHECK(onlyError(withMetrics("        max_key_serie: 5\n")) ==
        "t.yaml:11:9: unknown key 'max_key_serie' in metrics filter (did you mean 'max_key_series'?)");
  CHECK(onlyError(withMetrics("        access_log: { path: x, smaple: 0.5 }\n")) ==
        "t.yaml:11:32: unknown key 'smaple' in access_log (did you mean 'sample'?)");
  CHECK(onlyError(kChain + "redis: { url: redis://localhost, timout: 1s }\n") ==
        "t.yaml:18:34: unknown key 'timout' in redis (did you mean 'timeout'?)");
  CHECK(onlyError(kChain + "rediss: {}\n") ==
        "t.yaml:18:1: unknown key 'rediss' at top level (did you mean 'redis'?)");
  CHECK(onlyError(replace(kChain, "name: metrics", "name: metric")) ==
        "t.yaml:10:15: unknown filter 'metric' (did you mean 'metrics'?)");
}

TEST_CASE("filters: wrong types") {
  CHECK(onlyError(withAuth("        allow_bearer: yes\n")) ==
        "t.yaml:8:23: 'allow_bearer' must be true or false, got 'yes'");
  CHECK(onlyError(withAuth("        strip_header: [true]\n")) ==
        "t.yaml:8:23: 'strip_header' must be true or false, got a list");
  CHECK(onlyError(replace(kChain, "          - { key: k1, name: demo }\n", "          - k1\n")) ==
        "t.yaml:7:13: auth key must be a map, got 'k1'");
  CHECK(onlyError(replace(kChain, "          - { key: k1, name: demo }\n", "          k1\n")) ==
        "t.yaml:7:11: 'keys' must be a list, got 'k1'");
  CHECK(onlyError(replace(kChain, "name: demo }", "name: demo, limit: 10 }")) ==
        "t.yaml:7:43: 'limit' must be a map, got '10'");
  CHECK(onlyError(withAuth("        exempt: [/x]\n")) ==
        "t.yaml:8:18: 'exempt' entry must be a map, got '/x'");
  CHECK(onlyError(withRateLimit("        burst: lots\n")) ==
        "t.yaml:10:16: 'burst' must be an integer, got 'lots'");
  CHECK(onlyError(withRateLimit("        per_route: 1\n")) ==
        "t.yaml:10:20: 'per_route' must be true or false, got '1'");
  CHECK(onlyError(withRateLimit("        overrides: { key: demo }\n")) ==
        "t.yaml:10:20: 'overrides' must be a list, got a map");
  CHECK(onlyError(withMetrics("        access_log: on\n")) ==
        "t.yaml:11:21: 'access_log' must be a map such as { path: \"-\" } or 'off', got 'on'");
  CHECK(onlyError(withMetrics("        access_log: { sample: half }\n")) ==
        "t.yaml:11:31: 'sample' must be a number, got 'half'");
  CHECK(onlyError(kChain + "redis: redis://localhost\n") ==
        "t.yaml:18:8: 'redis' must be a map, got 'redis://localhost'");
  CHECK(onlyError(kChain + "redis: { timeout: 50 }\n") ==
        "t.yaml:18:19: invalid duration '50' for 'timeout': duration needs a unit, e.g. 10s");
}

TEST_CASE("filters: missing required keys") {
  CHECK(onlyError(replace(kChain, "{ key: k1, name: demo }", "{ key: k1 }")) ==
        "t.yaml:7:13: missing required key 'name' in auth key");
  CHECK(onlyError(replace(kChain, "{ key: k1, name: demo }", "{ name: demo }")) ==
        "t.yaml:7:13: missing required key 'key' in auth key");
  CHECK(onlyError(replace(kChain, "        rate: 10/s\n", "")) ==
        "t.yaml:8:9: missing required key 'rate' for algorithm token_bucket");
  CHECK(errorsOf(replace(kChain, "        rate: 10/s\n", "        algorithm: fixed_window\n")) ==
        std::vector<std::string>{"t.yaml:8:9: missing required key 'limit' for algorithm fixed_window",
                                 "t.yaml:8:9: missing required key 'window' for algorithm fixed_window"});
  CHECK(onlyError(withRateLimit("        overrides: [{ rate: 1/s }]\n")) ==
        "t.yaml:10:21: missing required key 'key' in rate_limit override");
  CHECK(onlyError(replace(kChain, "name: demo }", "name: demo, limit: { burst: 5 } }")) ==
        "t.yaml:7:43: missing required key 'rate' for algorithm token_bucket");
}

TEST_CASE("algorithm and limit keys must agree") {
  CHECK(onlyError(withRateLimit("        window: 1m\n")) ==
        "t.yaml:10:17: 'window' does not apply to token_bucket (it takes 'rate' and 'burst')");
  CHECK(onlyError(replace(
            kChain, "        rate: 10/s\n",
            "        algorithm: sliding_window\n        limit: 5\n        window: 1s\n        burst: 3\n")) ==
        "t.yaml:12:16: 'burst' does not apply to sliding_window (it takes 'limit' and 'window')");
  // An override takes the filter's algorithm unless it names its own.
  std::string window = replace(kChain, "        rate: 10/s\n",
                               "        algorithm: fixed_window\n        limit: 5\n        window: 1s\n");
  CHECK(onlyError(replace(window, "        window: 1s\n",
                          "        window: 1s\n        overrides: [{ key: demo, rate: 9/s }]\n")) ==
        "t.yaml:12:40: 'rate' does not apply to fixed_window (it takes 'limit' and 'window')");
  CHECK(loadOk(replace(
      window, "        window: 1s\n",
      "        window: 1s\n        overrides: [{ key: demo, algorithm: token_bucket, rate: 9/s }]\n")));
  CHECK(onlyError(replace(kChain, "rate: 10/s", "algorithm: leaky_bucket")) ==
        "t.yaml:9:20: unknown algorithm 'leaky_bucket' (expected one of: token_bucket, fixed_window, "
        "sliding_window)");
  CHECK(onlyError(replace(kChain, "rate: 10/s", "algorithm: token_bukket\n        rate: 10/s")) ==
        "t.yaml:9:20: unknown algorithm 'token_bukket' (did you mean 'token_bucket'?)");
}

TEST_CASE("limit values: rate, burst, limit, window") {
  CHECK(onlyError(replace(kChain, "rate: 10/s", "rate: 0/s")) ==
        "t.yaml:9:15: invalid rate '0/s' for 'rate': the number of requests must be greater than 0");
  CHECK(onlyError(replace(kChain, "rate: 10/s", "rate: 10/d")) ==
        "t.yaml:9:15: invalid rate '10/d' for 'rate': unknown period 'd' (use s, m or h, e.g. 10/s)");
  CHECK(
      onlyError(replace(kChain, "rate: 10/s", "rate: 10")) ==
      "t.yaml:9:15: invalid rate '10' for 'rate': expected requests per period: N/s, N/m or N/h, e.g. 10/s");
  CHECK(onlyError(withRateLimit("        burst: 0\n")) ==
        "t.yaml:10:16: 'burst' must be a positive integer, got 0");
  std::string window = replace(kChain, "        rate: 10/s\n",
                               "        algorithm: fixed_window\n        limit: 5\n        window: 1s\n");
  CHECK(onlyError(replace(window, "limit: 5", "limit: 0")) ==
        "t.yaml:10:16: 'limit' must be a positive integer, got 0");
  CHECK(onlyError(replace(window, "window: 1s", "window: 0s")) ==
        "t.yaml:11:17: 'window' must be greater than 0, got 0s");
  CHECK(errorsOf(replace(window, "        window: 1s\n", "")) ==
        std::vector<std::string>{"t.yaml:8:9: missing required key 'window' for algorithm fixed_window"});
  CHECK(errorsOf(replace(replace(window, "        window: 1s\n", ""), "limit: 5", "limit: x")) ==
        std::vector<std::string>{"t.yaml:8:9: missing required key 'window' for algorithm fixed_window",
                                 "t.yaml:10:16: 'limit' must be an integer, got 'x'"});
}

TEST_CASE("rate_limit choices and the redis store") {
  CHECK(onlyError(withRateLimit("        by: apikey\n")) ==
        "t.yaml:10:13: unknown rate limit key 'apikey' (did you mean 'api_key'?)");
  CHECK(onlyError(withRateLimit("        failure_mode: open\n")) ==
        "t.yaml:10:23: unknown failure_mode 'open' (expected one of: allow, deny, local)");
  CHECK(onlyError(withRateLimit("        store: memory\n")) ==
        "t.yaml:10:16: unknown store 'memory' (expected one of: local, redis)");
  CHECK(onlyError(withRateLimit("        store: redis\n")) ==
        "t.yaml:10:16: 'store: redis' needs a top-level 'redis' section with a url (e.g. redis: { url: "
        "redis://127.0.0.1:6379 }); an empty url turns Redis off");
  // An empty url (an unset ${FLOWGUARD_REDIS_URL:-}) is no Redis: a local store is fine, redis is not.
  CHECK_FALSE(loadOk(withRateLimit("") + "redis: { url: \"\" }\n")->redis.configured);
  CHECK(onlyError(withRateLimit("        store: redis\n") + "redis: { url: \"\" }\n")
            .starts_with("t.yaml:10:16: 'store: redis' needs a top-level 'redis' section with a url"));
  // Redis and upstream hosts may be host names (a compose service, a DNS name).
  CHECK(loadOk(withRateLimit("        store: redis\n") + "redis: { url: redis://redis:6379/0 }\n")
            ->redis.host == "redis");
  // The section may come after the listeners in the file.
  CHECK(loadOk(withRateLimit("        store: redis\n") + "redis: { url: redis://127.0.0.1:6379 }\n"));
  // A broken section is reported once, not again at `store`.
  CHECK(onlyError(withRateLimit("        store: redis\n") + "redis: []\n") ==
        "t.yaml:19:8: 'redis' must be a map, got a list");
}

TEST_CASE("auth header, keys and names") {
  CHECK(onlyError(withAuth("        header: X API Key\n")) ==
        "t.yaml:8:17: 'header' must be a header name such as X-API-Key, got 'X API Key'");
  CHECK(onlyError(withAuth("        header: ''\n")) ==
        "t.yaml:8:17: 'header' must be a header name such as X-API-Key, got ''");
  CHECK(authAt(*loadOk(withAuth("        header: X-Token\n")), 0, 0).header == "x-token");
  CHECK(onlyError(replace(kChain, "key: k1,", "key: '',")) == "t.yaml:7:20: 'key' must not be empty");
  // The key itself never appears in a message.
  CHECK(onlyError(replace(kChain, "key: k1,", "key: 'k 1',")) ==
        "t.yaml:7:20: 'key' must be visible ASCII characters (no spaces, control or non-ASCII characters)");
  CHECK(onlyError(replace(kChain, "key: k1,", "key: \"k\\u00e9\",")) ==
        "t.yaml:7:20: 'key' must be visible ASCII characters (no spaces, control or non-ASCII characters)");
  CHECK(onlyError(replace(kChain, "name: demo }", "name: '' }")) == "t.yaml:7:30: 'name' must not be empty");
  CHECK(onlyError(withAuth("          - { key: k2, name: demo }\n")) ==
        "t.yaml:8:30: duplicate auth key name 'demo' (first defined at line 7)");
  CHECK(onlyError(withAuth("          - { key: k1, name: other }\n")) ==
        "t.yaml:8:20: duplicate auth key value (the key at line 7 has the same one)");
  CHECK(onlyError(withAuth("        exempt: [{ path: /x, prefix: /y }]\n")) ==
        "t.yaml:8:18: exempt entry needs exactly one of 'prefix' or 'path'");
  CHECK(onlyError(withAuth("        exempt: [{ path: x }]\n")) ==
        "t.yaml:8:26: 'path' must start with '/', got 'x'");
}

TEST_CASE("overrides name keys of the listener's auth filter") {
  CHECK(onlyError(withRateLimit("        overrides:\n          - { key: demo, rate: 1/s }\n          - { "
                                "key: dmeo, rate: 1/s }\n")) ==
        "t.yaml:12:13: override key 'dmeo' is not the name of a key in this listener's auth filter (did you "
        "mean 'demo'?)");
  CHECK(onlyError(withRateLimit("        overrides: [{ key: nobody, rate: 1/s }]\n")) ==
        "t.yaml:10:21: override key 'nobody' is not the name of a key in this listener's auth filter");
  CHECK(onlyError(withRateLimit("        overrides:\n          - { key: demo, rate: 1/s }\n          - { "
                                "key: demo, rate: 2/s }\n")) ==
        "t.yaml:12:20: duplicate override for key 'demo' (first at line 11)");
  // Also when the auth filter comes after rate_limit in the chain.
  std::string swapped =
      replace(kChain, "      - name: auth\n        keys:\n          - { key: k1, name: demo }\n", "");
  swapped = replace(swapped, "      - name: metrics\n",
                    "      - name: metrics\n      - name: auth\n        keys: [{ key: k1, name: demo }]\n");
  CHECK(onlyError(
            replace(swapped, "rate: 10/s\n", "rate: 10/s\n        overrides: [{ key: x, rate: 1/s }]\n")) ==
        "t.yaml:7:21: override key 'x' is not the name of a key in this listener's auth filter");
  // Without an auth filter in the listener, names are not checked (a key store may know them).
  std::string noAuth =
      replace(kChain, "      - name: auth\n        keys:\n          - { key: k1, name: demo }\n", "");
  auto config = loadOk(
      replace(noAuth, "rate: 10/s\n", "rate: 10/s\n        overrides: [{ key: anyone, rate: 1/s }]\n"));
  CHECK(rateLimitAt(*config, 0, 0).overrides.at(0).key == "anyone");
}

TEST_CASE("a filter appears at most once per listener") {
  CHECK(
      onlyError(replace(kChain, "      - name: router\n", "      - name: metrics\n      - name: router\n")) ==
      "t.yaml:11:15: filter 'metrics' appears twice in this listener (first at line 10); a filter may appear "
      "at "
      "most once");
  // Two listeners may each have one.
  std::string second = R"(  - name: other
    address: 127.0.0.1:8001
    filters:
      - name: metrics
      - name: router
        routes: [{ match: { prefix: / }, cluster: backends }]
)";
  CHECK(loadOk(replace(kChain, "clusters:\n", second + "clusters:\n"))->listeners.size() == 2);
  // Non-terminal filters may not follow the router.
  CHECK(onlyError(replace(replace(kChain, "      - name: metrics\n", ""), "clusters:\n",
                          "      - name: metrics\nclusters:\n")) ==
        "t.yaml:10:9: 'router' must be the last filter (it is terminal: filters after it never run)");
}

TEST_CASE("metrics values") {
  CHECK(onlyError(withMetrics("        access_log: { sample: 0 }\n")) ==
        "t.yaml:11:31: 'sample' must be greater than 0 and at most 1, got 0");
  CHECK(onlyError(withMetrics("        access_log: { sample: 1.5 }\n")) ==
        "t.yaml:11:31: 'sample' must be greater than 0 and at most 1, got 1.5");
  CHECK(onlyError(withMetrics("        access_log: { path: '' }\n")) ==
        "t.yaml:11:29: 'path' must not be empty (use \"-\" for stdout)");
  CHECK(onlyError(withMetrics("        max_key_series: -1\n")) ==
        "t.yaml:11:25: 'max_key_series' must be between 0 and 4294967295, got -1");
  CHECK(metricsAt(*loadOk(withMetrics("        max_key_series: 0\n")), 0, 2).maxKeySeries == 0);
}

TEST_CASE("redis url") {
  auto urlError = [](const std::string& url) {
    return onlyError(kChain + "redis: { url: '" + url + "' }\n");
  };
  CHECK(urlError("http://127.0.0.1:6379") ==
        "t.yaml:18:15: invalid Redis URL for 'url': must start with redis://, e.g. redis://127.0.0.1:6379/0");
  CHECK(urlError("rediss://127.0.0.1") ==
        "t.yaml:18:15: invalid Redis URL for 'url': rediss:// (TLS) is not supported");
  // The password is never echoed.
  CHECK(urlError("redis://user:hunter2@127.0.0.1") ==
        "t.yaml:18:15: invalid Redis URL for 'url': a user name is not supported; write "
        "redis://:password@host:port");
  CHECK(urlError("redis://127.0.0.1:0") ==
        "t.yaml:18:15: invalid Redis URL for 'url': port 0 out of range 1..65535");
  CHECK(urlError("redis://cache_internal") ==
        "t.yaml:18:15: invalid Redis URL for 'url': host 'cache_internal' is neither an IPv4/IPv6 literal "
        "nor a "
        "host name");
  CHECK(loadOk(kChain + "redis: { url: 'redis://cache.internal' }\n")->redis.host == "cache.internal");
  CHECK(urlError("redis://127.0.0.1/x") ==
        "t.yaml:18:15: invalid Redis URL for 'url': the database after '/' must be a number such as 0");
  CHECK(urlError("redis://") ==
        "t.yaml:18:15: invalid Redis URL for 'url': no host; expected redis://host:port");
  auto v6 = loadOk(kChain + "redis: { url: 'redis://[::1]' }\n");
  CHECK(v6->redis.host == "::1");
  CHECK(v6->redis.port == 6379);
}

// ---- storage, plans and route handlers ---------------------------------------------------

namespace {

// A listener whose router serves `routes` (flow mappings), with `top` lines appended.
std::string handlerConfig(const std::vector<std::string>& routes, const std::string& top) {
  std::string yaml =
      "listeners:\n  - name: l\n    address: 127.0.0.1:8000\n    filters:\n"
      "      - name: router\n        routes:\n";
  for (const auto& route : routes) yaml += "          - " + route + "\n";
  return yaml + top;
}

const std::string kStorage = "storage: { url: \"sqlite://./k.db\" }\n";
// A router that answers everything itself, for sections that need no route of their own.
const std::vector<std::string> kAnswerAll = {"{ match: { prefix: / }, direct_response: { status: 200 } }"};

}  // namespace

TEST_CASE("storage, plans and handlers: a full example") {
  auto config = loadOk(handlerConfig(
      {"{ match: { path: /register, methods: [POST] }, handler: register }",
       "{ match: { prefix: /metrics/ }, handler: { name: key_metrics, any_key: true } }",
       "{ match: { prefix: /keys/ }, handler: revoke_key }",
       "{ match: { path: /all_keys }, handler: list_keys }",
       "{ match: { path: /view_logs }, handler: view_logs }"},
      "storage:\n  url: postgres://fg@127.0.0.1:5432/fg\n  password: pw\n  request_log: false\n"
      "  log_queue: 500\n  flush_interval: 1s\n  key_poll_interval: 2s\n"
      "plans:\n  free: { rate: 5/s }\n  team: { algorithm: fixed_window, limit: 100, window: 1m }\n"));
  CHECK(config->storage.configured);
  CHECK(config->storage.url == "postgres://fg@127.0.0.1:5432/fg");
  CHECK(config->storage.password == "pw");
  CHECK_FALSE(config->storage.requestLog);
  CHECK(config->storage.logQueue == 500);
  CHECK(config->storage.flushInterval == 1s);
  CHECK(config->storage.keyPollInterval == 2s);
  REQUIRE(config->plans.size() == 2);
  CHECK(config->plans[0].name == "free");  // in file order: the first is the default
  CHECK(config->plans[0].limit.requests == 5);
  CHECK(config->plans[0].limit.burst == 5);
  CHECK(config->plans[1].limit.algorithm == RateLimitAlgorithm::FixedWindow);
  CHECK(config->findPlan("team") == &config->plans[1]);
  CHECK(config->findPlan("gold") == nullptr);
  const auto& routes = std::get<RouterConfig>(config->listeners[0].filters[0].settings).routes;
  CHECK(routes[0].handler.kind == RouteHandler::Register);
  CHECK(routes[1].handler.kind == RouteHandler::KeyMetrics);
  CHECK(routes[1].handler.anyKey);
  CHECK(routes[2].handler.kind == RouteHandler::RevokeKey);
  CHECK(routes[3].handler.kind == RouteHandler::ListKeys);
  CHECK(routes[4].handler.kind == RouteHandler::ViewLogs);
  CHECK(routes[0].cluster.empty());

  // Defaults.
  auto defaults = loadOk(handlerConfig({"{ match: { path: /r }, handler: register }"}, kStorage));
  CHECK(defaults->storage.requestLog);
  CHECK(defaults->storage.logQueue == 100'000);
  CHECK(defaults->storage.flushInterval == 200ms);
  CHECK(defaults->storage.keyPollInterval == 250ms);
  CHECK(defaults->plans.empty());
}

TEST_CASE("storage, plans and handlers: errors point at the line") {
  CHECK(onlyError(handlerConfig({"{ match: { path: /r }, handler: register }"}, "")) ==
        "t.yaml:7:45: handler 'register' needs a top-level 'storage' section (e.g. storage: { url: "
        "sqlite://./flowguard.db })");
  CHECK(onlyError(handlerConfig({"{ match: { path: /r }, handler: regster }"}, kStorage)) ==
        "t.yaml:7:45: unknown handler 'regster' (did you mean 'register'?)");
  CHECK(onlyError(handlerConfig(
            {"{ match: { path: /r }, handler: register, direct_response: { status: 200 } }"}, kStorage)) ==
        "t.yaml:7:13: route needs exactly one of 'cluster', 'direct_response' or 'handler'");
  CHECK(onlyError(handlerConfig({"{ match: { path: /m }, handler: key_metrics }"}, kStorage)) ==
        "t.yaml:7:45: handler 'key_metrics' reads the key from the path after the route's prefix: match it "
        "with a prefix ending in '/', e.g. { prefix: /metrics/ }");
  CHECK(onlyError(handlerConfig({"{ match: { prefix: /k/ }, handler: { name: list_keys, any_key: true } }"},
                                kStorage)) ==
        "t.yaml:7:76: 'any_key' applies to the key_metrics handler only");
  CHECK(onlyError(handlerConfig({"{ match: { prefix: /k/ }, handler: { any_key: true } }"}, kStorage)) ==
        "t.yaml:7:48: missing required key 'name' in handler");
  CHECK(onlyError(
            handlerConfig({"{ match: { path: /r }, handler: register }"}, "storage: { url: mysql://x }\n")) ==
        "t.yaml:8:17: invalid storage URL for 'url': must start with sqlite:// or postgres://, e.g. "
        "sqlite://./flowguard.db");
  CHECK(onlyError(handlerConfig({"{ match: { path: /r }, handler: register }"},
                                "storage: { log_queue: 0, url: \"sqlite://x\" }\n"))
            .find("log_queue") != std::string::npos);
  CHECK(onlyError(handlerConfig({"{ match: { path: /r }, handler: register }"},
                                kStorage + "plans: { free: { rate: 10/s, window: 1m } }\n")) ==
        "t.yaml:9:38: 'window' does not apply to token_bucket (it takes 'rate' and 'burst')");
  CHECK(onlyError(handlerConfig({"{ match: { path: /r }, handler: register }"},
                                kStorage + "plans: { free: { rate: 10/s, colour: red } }\n"))
            .find("unknown key 'colour' in plan 'free'") != std::string::npos);
  CHECK(onlyError(handlerConfig({"{ match: { path: /r }, handler: register }"}, kStorage + "plans: [free]\n"))
            .find("'plans' must be a map") != std::string::npos);
}

TEST_CASE("handlers without the key store: summary and admin_only; register's unique_names") {
  auto config =
      loadOk(handlerConfig({"{ match: { path: /metrics }, handler: summary }",
                            "{ match: { path: /all_keys }, handler: admin_only }",
                            "{ match: { path: /r }, handler: { name: register, unique_names: true } }"},
                           kStorage + "admin: {}\n"));
  const auto& routes = std::get<RouterConfig>(config->listeners[0].filters[0].settings).routes;
  CHECK(routes[0].handler.kind == RouteHandler::Summary);
  CHECK(routes[1].handler.kind == RouteHandler::AdminOnly);
  CHECK(routes[2].handler.uniqueNames);
  CHECK(routeHandlerName(RouteHandler::AdminOnly) == "admin_only");
  CHECK(routeHandlerName(RouteHandler::None) == "none");
  // summary needs neither storage nor admin.
  CHECK(loadOk(handlerConfig({"{ match: { path: /metrics }, handler: summary }"}, "")));
  CHECK(onlyError(handlerConfig({"{ match: { path: /all_keys }, handler: admin_only }"}, "")) ==
        "t.yaml:7:52: handler 'admin_only' names the admin listener's URL: add a top-level 'admin' section "
        "(e.g. admin: { address: 127.0.0.1:9901 })");
  CHECK(onlyError(handlerConfig({"{ match: { path: /m }, handler: { name: summary, unique_names: true } }"},
                                "")) == "t.yaml:7:76: 'unique_names' applies to the register handler only");
}

TEST_CASE("admin: the URL a person on the gateway's machine opens") {
  AdminConfig admin;
  admin.address = {"0.0.0.0", 9901};
  CHECK(admin.localUrl() == "http://127.0.0.1:9901");
  admin.address = {"::", 9902};
  CHECK(admin.localUrl() == "http://[::1]:9902");
  admin.address = {"10.1.2.3", 9903};
  CHECK(admin.localUrl() == "http://10.1.2.3:9903");
  admin.address = {"127.0.0.1", 9904};
  CHECK(admin.localUrl() == "http://127.0.0.1:9904");
}

TEST_CASE("admin: address, token, and a token required off loopback") {
  auto config = loadOk(handlerConfig(kAnswerAll, "admin: { address: 127.0.0.1:9911 }\n"));
  CHECK(config->admin.configured);
  CHECK(config->admin.address.port == 9911);
  CHECK_FALSE(config->admin.tokenRequired);
  auto defaults = loadOk(handlerConfig(kAnswerAll, "admin: {}\n"));
  CHECK(defaults->admin.address.str() == "127.0.0.1:9901");
  auto none = loadOk(handlerConfig(kAnswerAll, ""));
  CHECK_FALSE(none->admin.configured);
  auto tokened = loadOk(handlerConfig(kAnswerAll, "admin: { address: 0.0.0.0:9901, token: t0k3n }\n"));
  CHECK(tokened->admin.token == "t0k3n");
  CHECK(tokened->admin.tokenRequired);
  // Off loopback without a token: valid, the gateway generates one at start (state_dir).
  auto generated = loadOk(handlerConfig(kAnswerAll, "admin: { address: 0.0.0.0:9901 }\n"));
  CHECK(generated->admin.token.empty());
  CHECK(generated->admin.tokenRequired);
  CHECK(generated->stateDir == ".");
  auto stateDir = loadOk(handlerConfig(kAnswerAll, "state_dir: /var/lib/flowguard\n"));
  CHECK(stateDir->stateDir == "/var/lib/flowguard");
  CHECK(onlyError(handlerConfig(kAnswerAll, "state_dir: ''\n")).find("'state_dir' must not be empty") !=
        std::string::npos);
  CHECK(onlyError(handlerConfig(kAnswerAll, "admin: { adress: 127.0.0.1:1 }\n"))
            .find("unknown key 'adress' in admin") != std::string::npos);
}

TEST_CASE("auth exemptions: a warning for entries that also match requests a cluster route serves") {
  // Routes: GET/HEAD /status answered by the gateway, the rest forwarded.
  const std::string routes = replace(kChain, "          - match: { prefix: / }\n",
                                     "          - match: { path: /status, methods: [GET, HEAD] }\n"
                                     "            direct_response: { status: 200, body: ok }\n"
                                     "          - match: { prefix: / }\n");
  auto warnings = [](const std::string& yaml) {
    LoadResult result = loadConfigText(yaml, "t.yaml");
    REQUIRE(result.ok());
    std::vector<std::string> out;
    for (const auto& w : result.warnings) out.push_back(w.str());
    return out;
  };
  const std::string anyMethod =
      replace(routes, "name: demo }\n", "name: demo }\n        exempt: [ { path: /status } ]\n");
  auto found = warnings(anyMethod);
  REQUIRE(found.size() == 1);
  CHECK(
      found[0].starts_with("t.yaml:8:19: warning: exempt entry also matches requests that the route at "
                           "line 16 forwards to cluster 'backends' (e.g. POST /status)"));
  // Narrowed to what its route answers: nothing to say.
  CHECK(warnings(replace(routes, "name: demo }\n",
                         "name: demo }\n        exempt: [ { path: /status, methods: [GET] } ]\n"))
            .empty());
  // A prefix entry is tried against the routes under it.
  auto prefixed =
      warnings(replace(routes, "name: demo }\n", "name: demo }\n        exempt: [ { prefix: /st } ]\n"));
  REQUIRE(prefixed.size() == 1);
  CHECK(prefixed[0].find("(e.g. GET /st)") != std::string::npos);
  // A route that disables auth itself is what the entry meant: no warning.
  CHECK(warnings(
            replace(anyMethod, "            cluster: backends\n",
                    "            cluster: backends\n            per_filter: { auth: { disabled: true } }\n"))
            .empty());
}

TEST_CASE("routes: per_filter") {
  const std::string base = replace(kChain, "            cluster: backends\n",
                                   "            cluster: backends\n            per_filter: PER\n");
  LoadResult ok = loadConfigText(replace(base, "PER", "{ auth: { disabled: true } }"), "t.yaml");
  REQUIRE(ok.ok());
  const auto& router = std::get<RouterConfig>(ok.config->listeners[0].filters.back().settings);
  CHECK(router.routes[0].perFilterFor("auth")->disabled);
  // A route's own rate limit: the keys it gives replace the listener's.
  LoadResult own =
      loadConfigText(replace(base, "PER", "{ rate_limit: { rate: 100/s, burst: 200 } }"), "t.yaml");
  REQUIRE(own.ok());
  const auto* entry = std::get<RouterConfig>(own.config->listeners[0].filters.back().settings)
                          .routes[0]
                          .perFilterFor("rate_limit");
  REQUIRE(entry != nullptr);
  const auto& routeLimit = dynamic_cast<const RateLimitSettings&>(*entry->settings);
  CHECK(routeLimit.limit.requests == 100);
  CHECK(routeLimit.limit.burst == 200);
  CHECK(routeLimit.limit.period == Duration(1000));
  CHECK(routeLimit.ownLimit);
  // Only shadow on this route: the listener's limit (and its overrides) in the route's buckets.
  LoadResult shadow = loadConfigText(replace(base, "PER", "{ rate_limit: { shadow: true } }"), "t.yaml");
  REQUIRE(shadow.ok());
  const auto& shadowSettings = dynamic_cast<const RateLimitSettings&>(
      *std::get<RouterConfig>(shadow.config->listeners[0].filters.back().settings)
           .routes[0]
           .perFilterFor("rate_limit")
           ->settings);
  CHECK_FALSE(shadowSettings.ownLimit);
  CHECK(shadowSettings.shadow);
  CHECK(shadowSettings.limit.requests == 10);
  // A fixed window replaces the listener's token bucket whole (its rate would not apply).
  LoadResult window = loadConfigText(
      replace(base, "PER",
              "{ rate_limit: { algorithm: fixed_window, limit: 5, window: 1m }, auth: { disabled: true } }"),
      "t.yaml");
  REQUIRE_MESSAGE(window.ok(), (window.errors.empty() ? "" : window.errors[0].str()));
  const auto& windowRouter = std::get<RouterConfig>(window.config->listeners[0].filters.back().settings);
  CHECK(windowRouter.routes[0].perFilterFor("auth")->disabled);
  const auto& windowLimit =
      dynamic_cast<const RateLimitSettings&>(*windowRouter.routes[0].perFilterFor("rate_limit")->settings);
  CHECK(windowLimit.limit.algorithm == RateLimitAlgorithm::FixedWindow);
  CHECK(windowLimit.limit.requests == 5);
  CHECK(windowLimit.limit.period == Duration(60'000));
  LoadResult off = loadConfigText(replace(base, "PER", "{ rate_limit: { disabled: true } }"), "t.yaml");
  REQUIRE(off.ok());
  CHECK(std::get<RouterConfig>(off.config->listeners[0].filters.back().settings)
            .routes[0]
            .perFilterFor("rate_limit")
            ->disabled);
  CHECK(onlyError(replace(base, "PER", "{ rate_limit: { store: redis } }")) ==
        "t.yaml:15:41: 'store' cannot be set per route for filter 'rate_limit' (per route: disabled, "
        "algorithm, rate, burst, limit, window, by, shadow)");
  CHECK(onlyError(replace(base, "PER", "{ rate_limit: { rate: fast } }"))
            .starts_with("t.yaml:15:47: invalid rate 'fast' for 'rate'"));
  CHECK(
      onlyError(replace(base, "PER", "{ rate_limit: {} }")) ==
      "t.yaml:15:39: per_filter 'rate_limit' is empty: say 'disabled: true' or give settings for this route");
  CHECK(onlyError(replace(base, "PER", "{ auth: { disable: true } }")) ==
        "t.yaml:15:35: 'disable' cannot be set per route for filter 'auth' (per route: disabled); did you "
        "mean 'disabled'?");
  CHECK(onlyError(replace(base, "PER", "{ auth: { disabled: yes } }")).find("t.yaml:15:45: ") == 0);
  // Without an auth filter in the listener the setting would do nothing.
  std::string noAuth =
      replace(replace(base, "PER", "{ auth: { disabled: true } }"),
              "      - name: auth\n        keys:\n          - { key: k1, name: demo }\n", "");
  CHECK(onlyError(noAuth) ==
        "t.yaml:12:27: per_filter 'auth': this listener has no filter 'auth' before the "
        "router (its filters: rate_limit, metrics)");
}

TEST_CASE("listeners: forward_trailers, trusted_proxies, client_request_id") {
  auto withListener = [](const std::string& lines) {
    return replace(kChain, "    address: 127.0.0.1:8000\n", "    address: 127.0.0.1:8000\n" + lines);
  };
  LoadResult defaults = loadConfigText(kChain, "t.yaml");
  REQUIRE(defaults.ok());
  CHECK_FALSE(defaults.config->listeners[0].forwardTrailers);
  CHECK(defaults.config->listeners[0].trustedProxies.empty());
  CHECK_FALSE(defaults.config->listeners[0].keepClientRequestId);

  LoadResult set = loadConfigText(withListener("    forward_trailers: true\n"
                                               "    trusted_proxies: [10.0.0.0/8, \"::1\"]\n"
                                               "    client_request_id: keep\n"),
                                  "t.yaml");
  REQUIRE(set.ok());
  const ListenerConfig& l = set.config->listeners[0];
  CHECK(l.forwardTrailers);
  REQUIRE(l.trustedProxies.size() == 2);
  CHECK(l.trustedProxies[0].str() == "10.0.0.0/8");
  CHECK(l.trustedProxies[1].str() == "::1/128");
  CHECK(l.keepClientRequestId);

  CHECK(onlyError(withListener("    trusted_proxies: [10.0.0.0/8, 10.1.2.3/8]\n")) ==
        "t.yaml:4:35: '10.1.2.3/8' has bits set after its /8 prefix (did you mean the network address?)");
  CHECK(onlyError(withListener("    trusted_proxies: [proxy.internal]\n")) ==
        "t.yaml:4:23: 'proxy.internal' is not an IP address or CIDR range (e.g. 10.0.0.0/8, ::1/128)");
  CHECK(onlyError(withListener("    client_request_id: trust\n")).starts_with("t.yaml:4:24: "));
}

TEST_CASE("plans: self_service, by default the first plan only; register: per_ip") {
  LoadResult plans = loadConfigText(kChain +
                                        "plans:\n  free: { rate: 1/s }\n  pro: { rate: 9/s }\n"
                                        "  team: { rate: 5/s, self_service: true }\n",
                                    "t.yaml");
  REQUIRE(plans.ok());
  REQUIRE(plans.config->plans.size() == 3);
  CHECK(plans.config->plans[0].selfService);
  CHECK_FALSE(plans.config->plans[1].selfService);
  CHECK(plans.config->plans[2].selfService);
  // Five attempts per hour unless said otherwise.
  REQUIRE(plans.config->registration.perIp.has_value());
  CHECK(plans.config->registration.perIp->requests == 5);
  CHECK(plans.config->registration.perIp->period == std::chrono::hours(1));

  LoadResult perMinute = loadConfigText(kChain + "register: { per_ip: 3/m }\n", "t.yaml");
  REQUIRE(perMinute.ok());
  CHECK(perMinute.config->registration.perIp->requests == 3);
  CHECK(perMinute.config->registration.perIp->period == std::chrono::minutes(1));
  LoadResult off = loadConfigText(kChain + "register: { per_ip: off }\n", "t.yaml");
  REQUIRE(off.ok());
  CHECK_FALSE(off.config->registration.perIp.has_value());
  CHECK(onlyError(kChain + "register: { per_ip: lots }\n")
            .starts_with("t.yaml:18:21: 'per_ip' must be a rate"));
  CHECK(onlyError(kChain + "register: { per_host: 3/m }\n")
            .starts_with("t.yaml:18:13: unknown key 'per_host'"));
}
