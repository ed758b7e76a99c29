// flowguard-loadgen against the real gateway: --register obtains keys from POST /register
// (SQLite key store), the run spreads requests over them through auth and a per-key rate
// limit, and the per-key results add up.
#include <map>
#include <string>

#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;

TEST_CASE("--register N obtains N keys and the per-key counts add up") {
  TempDir dir;
  Backend backend;
  GatewaySpec spec;
  spec.filters = {"{ name: auth, exempt: [ { path: /register } ] }",
                  "{ name: rate_limit, rate: 1/h, burst: 5 }"};
  spec.routes = {"{ match: { path: /register, methods: [POST] }, handler: register }",
                 "{ match: { prefix: / }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {backend.port}, "retries: 0")};
  spec.topLevel = {"storage: { url: \"sqlite://" + dir.file("k.db") + "\", key_poll_interval: 100ms }"};
  Gateway gw(spec);

  std::string command = "exec '" + binaryPath("flowguard-loadgen") + "' --register 4 -n 40 -c 2 --json '" +
                        dir.file("out.json") + "' http://127.0.0.1:" + std::to_string(gw.port) + "/echo";
  Process loadgen({"/bin/sh", "-c", command});
  auto status = loadgen.waitExit(60s);
  INFO(loadgen.logText());
  REQUIRE(status.has_value());
  REQUIRE(*status == 0);
  Json out = Json::parse(readFile(dir.file("out.json")));
  REQUIRE(out["keys"].size() == 4);
  std::map<std::string, uint64_t> perKey;
  uint64_t sum = 0;
  for (const auto& k : out["keys"]) {
    std::string key = k["key"];
    CHECK(key.rfind("fg_", 0) == 0);
    perKey[key] = k["requests"];
    sum += k["requests"].get<uint64_t>();
    // Every key was accepted by auth; its own bucket of 5 then ran dry.
    CHECK(k["requests"] == 10);
    CHECK(k["2xx"] == 5);
    CHECK(k["429"] == 5);
    CHECK(k["error"] == 0);
  }
  CHECK(perKey.size() == 4);  // four distinct keys
  CHECK(sum == 40);
  CHECK(out["requests"] == 40);
  CHECK(out["status"]["200"] == 20);
  CHECK(out["status"]["429"] == 20);
}
