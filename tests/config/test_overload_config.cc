#include <doctest/doctest.h>

#include <string>

#include "config/config_loader.h"
#include "tests/config/config_test_helpers.h"

using namespace flowguard::config;
using namespace flowguard::config::test;
using namespace std::chrono_literals;

namespace {

// Line 1 is `overload:` when a test prepends one; the listener starts at line 2 or later.
std::string withListener(const std::string& listenerExtra, const std::string& top = {}) {
  return top + R"(listeners:
  - name: public
    address: 127.0.0.1:8000
)" + listenerExtra +
         R"(    filters:
      - name: router
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
)";
}

}  // namespace

TEST_CASE("overload and listener limits: defaults") {
  auto config = loadOk(withListener(""));
  const ListenerConfig& l = config->listeners.at(0);
  CHECK(l.maxConnections == 0);
  CHECK(l.bodyTimeout == 60s);
  CHECK(l.bufferLimit == 1u << 20);
  CHECK_FALSE(config->overload.maxConnections.has_value());  // auto: half of RLIMIT_NOFILE
  CHECK(config->overload.memoryLimit == 0);
  CHECK(config->overload.checkInterval == 1s);
}

TEST_CASE("overload and listener limits: every field parses") {
  auto config = loadOk(withListener("    max_connections: 500\n    body_timeout: 5s\n    buffer_limit: 64KiB\n",
                                    "overload: { max_connections: 2000, memory_limit: 512MiB, check_interval: "
                                    "250ms }\n"));
  const ListenerConfig& l = config->listeners.at(0);
  CHECK(l.maxConnections == 500);
  CHECK(l.bodyTimeout == 5s);
  CHECK(l.bufferLimit == 64u * 1024);
  REQUIRE(config->overload.maxConnections.has_value());
  CHECK(*config->overload.maxConnections == 2000);
  CHECK(config->overload.memoryLimit == 512ull << 20);
  CHECK(config->overload.checkInterval == 250ms);
}

TEST_CASE("overload: zero means no limit where that is meaningful") {
  auto config = loadOk(withListener("    max_connections: 0\n", "overload: { max_connections: 0, memory_limit: 0 }\n"));
  CHECK(config->listeners.at(0).maxConnections == 0);
  REQUIRE(config->overload.maxConnections.has_value());
  CHECK(*config->overload.maxConnections == 0);
  CHECK(config->overload.memoryLimit == 0);
}

TEST_CASE("overload and listener limits: errors name file:line:col") {
  CHECK(onlyError(withListener("    max_connections: -1\n")).starts_with("t.yaml:4:22: "));
  CHECK(onlyError(withListener("    max_connections: lots\n")).starts_with("t.yaml:4:22: "));
  CHECK(onlyError(withListener("    body_timeout: 0s\n")).starts_with("t.yaml:4:19: "));
  CHECK(onlyError(withListener("    body_timeout: 10\n")).starts_with("t.yaml:4:19: "));
  std::string tooSmall = onlyError(withListener("    buffer_limit: 1KiB\n"));
  CHECK(tooSmall.starts_with("t.yaml:4:19: "));
  CHECK(tooSmall.find("buffer_limit") != std::string::npos);
  CHECK(onlyError(withListener("    buffer_limit: -5\n")).starts_with("t.yaml:4:19: "));

  std::string e = onlyError(withListener("", "overload: { memory_limit: 12XB }\n"));
  CHECK(e.starts_with("t.yaml:1:27: "));
  CHECK(e.find("memory_limit") != std::string::npos);
  e = onlyError(withListener("", "overload: { check_interval: 0ms }\n"));
  CHECK(e.starts_with("t.yaml:1:29: "));
  e = onlyError(withListener("", "overload: { max_connection: 10 }\n"));
  CHECK(e.starts_with("t.yaml:1:13: "));
  CHECK(e.find("max_connections") != std::string::npos);  // the suggestion
  e = onlyError(withListener("", "overload: [1, 2]\n"));
  CHECK(e.starts_with("t.yaml:1:11: "));
  e = onlyError(withListener("", "overload: { max_connections: 20000000 }\n"));
  CHECK(e.starts_with("t.yaml:1:30: "));
}
