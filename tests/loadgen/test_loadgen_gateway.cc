// flowguard-loadgen against the real gateway: --register obtains keys from POST /register
// (SQLite key store), the run spreads requests over them through auth and a per-key rate
// limit, and the per-key results add up; and the original tool's first hour, a folder with
// only config.json, run with no arguments, whose ratelimit.log agrees with the gateway's
// own /stats.
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "tests/integration/gateway_fixture.h"
#include "tests/loadgen/response_log_reader.h"

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
    // Reports name a key by its prefix (at most 12 characters, a third of the key), never whole.
    CHECK_FALSE(k.contains("key"));
    std::string prefix = k["key_prefix"];
    CHECK(prefix.rfind("fg_", 0) == 0);
    CHECK(prefix.size() > 3);
    CHECK(prefix.size() <= 12);
    perKey[prefix] = k["requests"];
    sum += k["requests"].get<uint64_t>();
    // Every key was accepted by auth; its own bucket of 5 then ran dry.
    CHECK(k["requests"] == 10);
    CHECK(k["2xx"] == 5);
    CHECK(k["429"] == 5);
    CHECK(k["error"] == 0);
  }
  CHECK(perKey.size() == 4);  // four distinct keys (their random parts start differently)
  CHECK(sum == 40);
  CHECK(out["requests"] == 40);
  CHECK(out["status"]["200"] == 20);
  CHECK(out["status"]["429"] == 20);
}

namespace {

HttpResponse adminGet(uint16_t port, const std::string& path) {
  HttpClient c;
  c.connect(port);
  c.sendRaw("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  return c.readResponse();
}

// Runs flowguard-loadgen in `dir` as the original tool was run: from its folder, with
// whatever arguments are given (none at first). Returns its stdout and stderr.
std::string runInFolder(const TempDir& dir, const std::string& args = {}) {
  std::string command = "cd '" + dir.path() + "' && exec '" + binaryPath("flowguard-loadgen") + "' " + args;
  Process loadgen({"/bin/sh", "-c", command});
  auto status = loadgen.waitExit(60s);
  std::string output = loadgen.logText();
  INFO(output);
  REQUIRE(status.has_value());
  REQUIRE(*status == 0);
  return output;
}

}  // namespace

TEST_CASE("no arguments and a config.json: ratelimit.log agrees with the gateway's /stats") {
  // A yaml key with a fixed window of 20: of 60 tries, exactly 20 pass and 40 are limited.
  const std::string key = "loadgen-first-hour-key-0001";  // 27 characters: prefix "loadgen-f"
  const std::string prefix = "loadgen-f";
  Backend backend;
  GatewaySpec spec = proxySpec({backend.port}, "retries: 0");
  spec.filters = {"{ name: auth, keys: [ { key: " + key + ", name: first-hour } ] }",
                  "{ name: rate_limit, algorithm: fixed_window, limit: 20, window: 1h }",
                  "{ name: metrics }"};
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;

  TempDir dir;  // holds only config.json
  const std::string proxyUrl = "http://127.0.0.1:" + std::to_string(gw.port) + "/echo";
  writeFile(dir.file("config.json"),
            R"({"tries": 60, "api_key": ")" + key + R"(", "proxy_url": ")" + proxyUrl + R"("})");
  std::string output = runInFolder(dir);
  INFO(output);
  std::string log = readFile(dir.file("ratelimit.log"));
  INFO(log);
  REQUIRE_FALSE(log.empty());

  // One well-formed line per try, each naming the key by its prefix and the configured URL.
  ResponseLogText parsed = parseResponseLog(log);
  CHECK(parsed.malformed.empty());
  CHECK(parsed.lines == 60);
  CHECK(parsed.status == std::map<std::string, uint64_t>{{"200", 20}, {"429", 40}});
  CHECK(parsed.keys == std::set<std::string>{prefix});
  CHECK(parsed.urls == std::set<std::string>{proxyUrl});

  // The closing summary says what the lines say.
  CHECK(parsed.summaryLast);
  CHECK(parsed.summaryCount("total attempts") == parsed.lines);
  CHECK(parsed.summaryCount("successful (2xx)") == parsed.status["200"]);
  CHECK(parsed.summaryCount("rate-limited (429)") == parsed.status["429"]);
  CHECK(parsed.summaryCount("other errors") == 0);
  CHECK(parsed.summaryCount("status 200") == parsed.status["200"]);
  CHECK(parsed.summaryCount("status 429") == parsed.status["429"]);
  CHECK(parsed.summary.count("status error") == 0);
  // "mean 1.234 ms, p50 1.100 ms, p99 3.400 ms": the mean of the lines; p50 and p99 those of
  // the lines to the histogram's 0.1 % (never below).
  double mean = 0, p50 = 0, p99 = 0;
  REQUIRE(std::sscanf(parsed.summary["latency"].c_str(), "mean %lf ms, p50 %lf ms, p99 %lf ms", &mean, &p50,
                      &p99) == 3);
  CHECK(std::abs(mean - parsed.meanMs()) <= 0.0006);
  // Not a structured binding: clang 14 cannot capture one in doctest's macros.
  for (const std::pair<double, double>& p : {std::pair{p50, 50.0}, std::pair{p99, 99.0}}) {
    const double summary = p.first;
    const double percentile = p.second;
    double exact = static_cast<double>(parsed.percentileUs(percentile)) / 1000.0;
    CAPTURE(percentile);
    CHECK(summary >= exact - 0.0005);
    CHECK(summary <= exact * 1.001 + 0.0005);
  }

  // The gateway counted the same requests.
  Json stats;
  waitUntil(
      [&] {
        stats = json(adminGet(adminPort, "/stats"));
        return stats["totals"]["requests"] == 60;
      },
      5s);
  INFO(stats.dump(2));
  CHECK(stats["totals"]["requests"] == parsed.summaryCount("total attempts"));
  CHECK(stats["totals"]["2xx"] == parsed.summaryCount("successful (2xx)"));
  CHECK(stats["totals"]["429"] == parsed.summaryCount("rate-limited (429)"));
  CHECK(stats["totals"]["4xx"] == parsed.summaryCount("rate-limited (429)"));  // 429 is the only 4xx
  CHECK(stats["totals"]["5xx"] == 0);
  CHECK(stats["listeners"]["test"]["requests"] == 60);
  CHECK(stats["rate_limit"]["test"]["allowed"] == 20);
  CHECK(stats["rate_limit"]["test"]["limited"] == 40);
  REQUIRE(stats["keys"].size() == 1);
  CHECK(stats["keys"][0]["name"] == "first-hour");
  CHECK(stats["keys"][0]["requests"] == 60);
  CHECK(stats["keys"][0]["2xx"] == parsed.status["200"]);
  CHECK(stats["keys"][0]["429"] == parsed.status["429"]);

  // stdout: the per-second lines (plain lines, not a progress line) add up too, and the
  // summary names the key by its prefix.
  SecondLines seconds = parseSecondLines(output);
  CHECK(seconds.lines >= 1);
  CHECK(seconds.sums["2xx"] == 20);
  CHECK(seconds.sums["429"] == 40);
  CHECK(output.find('\r') == std::string::npos);
  CHECK(output.find("  " + prefix + ": 60 requests, 2xx 20, 429 40") != std::string::npos);
  CHECK(output.find("Response log: ratelimit.log") != std::string::npos);

  // Again with --json (still no URL: config.json is read): the window is spent, all 60 are
  // limited, and ratelimit.log starts over.
  std::string again = runInFolder(dir, "--json out.json -c 3");
  INFO(again);
  Json out = Json::parse(readFile(dir.file("out.json")));
  CHECK(out["requests"] == 60);
  CHECK(out["status"]["429"] == 60);
  REQUIRE(out["keys"].size() == 1);
  CHECK(out["keys"][0]["key_prefix"] == prefix);
  CHECK(out["keys"][0]["429"] == 60);
  CHECK(out["latency"]["mean_us"].get<double>() > 0);
  CHECK(out["outcomes"]["429"]["latency"]["mean_us"].get<double>() > 0);
  ResponseLogText second = parseResponseLog(readFile(dir.file("ratelimit.log")));
  CHECK(second.lines == 60);
  CHECK(second.status == std::map<std::string, uint64_t>{{"429", 60}});

  // The whole key is nowhere: not in ratelimit.log, stdout or the JSON.
  for (const std::string* text : {&log, &output, &again}) CHECK(text->find(key) == std::string::npos);
  CHECK(out.dump().find(key) == std::string::npos);
  CHECK(readFile(dir.file("ratelimit.log")).find(key) == std::string::npos);
}
