// What a reload may apply: drain_timeout, the sections that need a restart, and a new file
// made applicable to the running process (restart-only sections kept, needs it cannot meet
// reported at their place).
#include <doctest/doctest.h>

#include "config/live_config.h"
#include "tests/config/config_test_helpers.h"

using namespace flowguard::config;
using namespace flowguard::config::test;

namespace {

const std::string kListener = R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    filters:
      - name: router
        routes: [ { match: { prefix: / }, direct_response: { status: 200 } } ]
)";

}  // namespace

TEST_CASE("drain_timeout: default 15 s, a duration, errors at their place") {
  CHECK(loadOk(kListener)->drainTimeout == Duration(15'000));
  CHECK(loadOk("drain_timeout: 2s\n" + kListener)->drainTimeout == Duration(2'000));
  CHECK(loadOk("drain_timeout: 500ms\n" + kListener)->drainTimeout == Duration(500));
  CHECK(onlyError("drain_timeout: soon\n" + kListener).starts_with("t.yaml:1:16: invalid duration 'soon'"));
  CHECK(onlyError("drain_timeout: 0s\n" + kListener) == "t.yaml:1:16: 'drain_timeout' must be greater than 0, got 0s");
}

TEST_CASE("configs compare by value, not by where they are written") {
  auto a = loadOk(kListener);
  auto b = loadOk("\n\n# moved down\n" + kListener);
  CHECK(a->listeners[0].location.line != b->listeners[0].location.line);
  CHECK(a->listeners[0] == b->listeners[0]);
  auto c = loadOk(R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    filters:
      - name: router
        routes: [ { match: { prefix: / }, direct_response: { status: 201 } } ]
)");
  CHECK_FALSE(a->listeners[0] == c->listeners[0]);
}

TEST_CASE("sections a reload cannot apply are named, and the running ones stay in force") {
  auto running = loadOk("workers: 2\nredis: { url: redis://127.0.0.1:6379 }\nadmin: { address: 127.0.0.1:9901 }\n" +
                        kListener);
  auto next = loadOk("workers: 4\nredis: { url: redis://127.0.0.1:6380 }\nadmin: { address: 127.0.0.1:9902 }\n" +
                     kListener);
  CHECK(sectionsNeedingRestart(*running, *running).empty());
  CHECK(sectionsNeedingRestart(*running, *next) == std::vector<std::string>{"workers", "redis", "admin"});
  std::vector<ConfigError> errors;
  auto applied = applicableConfig(*running, *next, errors);
  CHECK(errors.empty());
  CHECK(applied->workers == 2);
  CHECK(applied->redis.port == 6379);
  CHECK(applied->admin.address.port == 9901);
  CHECK(applied->listeners == next->listeners);
}

TEST_CASE("a reload cannot add what only a restart brings") {
  auto running = loadOk(kListener);
  SUBCASE("a Redis rate limit without a Redis connection") {
    auto next = loadOk(R"(redis: { url: redis://127.0.0.1:6379 }
listeners:
  - name: l
    address: 127.0.0.1:8000
    filters:
      - name: rate_limit
        rate: 10/s
        store: redis
      - name: router
        routes: [ { match: { prefix: / }, direct_response: { status: 200 } } ]
)");
    std::vector<ConfigError> errors;
    applicableConfig(*running, *next, errors);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].str().starts_with("t.yaml:6:9: store: redis needs a Redis connection"));
  }
  SUBCASE("a key-store route without a key store") {
    auto next = loadOk(R"(storage: { url: "sqlite://./x.db" }
listeners:
  - name: l
    address: 127.0.0.1:8000
    filters:
      - name: router
        routes:
          - { match: { path: /register }, handler: register }
)");
    std::vector<ConfigError> errors;
    applicableConfig(*running, *next, errors);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].str().starts_with("t.yaml:8:13: this handler needs the key store"));
  }
}
