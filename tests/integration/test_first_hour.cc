// The original FlowGuard's users, first hour (issue 17): the root flowguard.yaml as shipped,
// driven only through the FLOWGUARD_* variables docker-compose.yml and scripts/demo set, in
// front of three real backends. Every path of the original's README answers what its users
// expect: /metrics without a key, the admin-only paths say where they live (and never reach
// a backend), the demo key has usage that survives a restart, {"owner": ...} registers. And
// the admin listener off loopback gets a generated token, kept in the state directory.
#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;

namespace {

constexpr const char* kDemoKey = "test-api-key";  // the key the root flowguard.yaml ships

std::string rootConfig() {
  const char* source = std::getenv("FLOWGUARD_SOURCE_DIR");
  REQUIRE_MESSAGE(source, "FLOWGUARD_SOURCE_DIR is not set (run through ctest)");
  return std::string(source) + "/flowguard.yaml";
}

// The root flowguard.yaml with its state (SQLite file, admin token) in `stateDir`.
struct RootGateway {
  RootGateway(const TempDir& stateDir, const std::vector<uint16_t>& backends, const std::string& adminHost,
              std::map<std::string, std::string> extraEnv = {}) {
    // The environment holds the ports, so it is set for each attempt's spawn (and restored
    // when the constructor ends). The admin listener starts last: its line is the one to wait
    // for, so a stranger on either port gets both picked again.
    std::optional<ScopedEnv> scoped;
    auto argvFor = [&](uint16_t p) {
      adminPort = freeTcpPort();
      std::map<std::string, std::string> env = {
          {"FLOWGUARD_WORKERS", "2"},
          {"FLOWGUARD_LISTEN_ADDRESS", "127.0.0.1:" + std::to_string(p)},
          {"FLOWGUARD_ADMIN_ADDRESS", adminHost + ":" + std::to_string(adminPort)},
          {"FLOWGUARD_ADMIN_TOKEN", ""},
          {"FLOWGUARD_STORAGE_URL", "sqlite://" + stateDir.file("flowguard.db")},
          {"FLOWGUARD_STATE_DIR", stateDir.path()},
          {"FLOWGUARD_REDIS_URL", ""},
          {"FLOWGUARD_RATE_LIMIT_STORE", "local"}};
      for (size_t i = 0; i < backends.size(); ++i)
        env["FLOWGUARD_BACKEND_" + std::to_string(i + 1)] = "127.0.0.1:" + std::to_string(backends[i]);
      for (auto& [name, value] : extraEnv) env[name] = value;
      scoped.reset();
      scoped.emplace(env);
      return std::vector<std::string>{binaryPath("flowguard"), "-c", rootConfig()};
    };
    process = std::make_unique<Process>(startOnFreePort(argvFor, port, "flowguard: admin on"));
    process->waitForLog("flowguard: listener public on");
  }
  ~RootGateway() {
    const int status = process->stop();
    INFO("gateway log tail:\n" << process->logTail());
    CHECK(status == 0);
  }

  uint16_t port = 0;
  uint16_t adminPort = 0;
  std::unique_ptr<Process> process;
};

HttpResponse send(uint16_t port, const std::string& method, const std::string& path,
                  const std::vector<std::pair<std::string, std::string>>& headers = {},
                  const std::string& body = {}) {
  HttpClient c;
  c.connect(port);
  std::string raw =
      method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Requested-By: tests\r\n";
  for (const auto& [name, value] : headers) raw += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST") raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  c.sendRaw(raw + "\r\n" + body);
  return c.readResponse();
}

HttpResponse withKey(uint16_t port, const std::string& path, const std::string& key) {
  return send(port, "GET", path, {{"X-API-Key", key}});
}

HttpResponse withBearer(uint16_t port, const std::string& path, const std::string& token) {
  return send(port, "GET", path, {{"Authorization", "Bearer " + token}});
}

// Requests the backends answered that were neither health checks nor these /_stats probes.
int64_t proxiedRequests(const std::vector<Backend*>& backends) {
  int64_t n = 0;
  for (const Backend* b : backends) {
    const Json s = b->stats();
    n += s["requests"].get<int64_t>() - s["health_checks"].get<int64_t>();
  }
  return n;
}

// The token printed in the dashboard URL of the start-up log, or "".
std::string loggedToken(const std::string& log) {
  const std::string marker = "/server#token=";
  const size_t at = log.rfind(marker);
  if (at == std::string::npos) return {};
  const size_t start = at + marker.size();
  return log.substr(start, log.find_first_of(") \n", start) - start);
}

}  // namespace

TEST_CASE("root flowguard.yaml: the original's paths on the public listener") {
  TempDir state;
  Backend b1("b1"), b2("b2"), b3("b3");
  const std::vector<Backend*> backends{&b1, &b2, &b3};
  RootGateway gw(state, {b1.port, b2.port, b3.port}, "127.0.0.1");

  // Some traffic first, so the summary has something to say.
  for (int i = 0; i < 4; ++i) CHECK(withKey(gw.port, "/proxy", kDemoKey).status == 200);
  CHECK(send(gw.port, "GET", "/proxy").status == 401);

  // GET /metrics: the original's summary, no key needed, nothing secret. A worker counts a
  // request just after its answer is written, so the last may take a moment to show.
  HttpResponse summary;
  Json s;
  int asked = 0;
  REQUIRE(waitUntil(
      [&] {
        summary = send(gw.port, "GET", "/metrics");
        ++asked;
        s = json(summary);
        return summary.status == 200 && s["requests"].get<int>() >= 5 + asked - 1;
      },
      5s));
  CHECK(summary.header("Content-Type") == "application/json");
  // The four proxied, the 401 and the earlier /metrics answers.
  CHECK(s["requests"].get<int>() <= 5 + asked - 1);
  const int counted = s["requests"].get<int>();
  CHECK(s["success_ratio"].get<double>() == doctest::Approx((counted - 1.0) / counted));
  CHECK(s["rate_limited_ratio"] == 0.0);
  CHECK(s["error_ratio"] == 0.0);
  CHECK(s["latency_ms"]["p50"].get<double>() > 0);
  CHECK(s["latency_ms"]["mean"].get<double>() > 0);
  CHECK(s["healthy_hosts"] == 3);
  CHECK(s["total_hosts"] == 3);
  CHECK(s["status"] == "healthy");
  CHECK(summary.body.find(kDemoKey) == std::string::npos);
  // The same figures as the admin listener's /metrics, which counts every /metrics above.
  CHECK(waitUntil([&] { return json(send(gw.adminPort, "GET", "/metrics"))["requests"] == 5 + asked; }, 5s));
  CHECK(send(gw.port, "POST", "/metrics", {}, "{}").status == 401);  // only GET is exempt from auth

  // The admin-only paths: 404 naming the admin URL, with or without a key; no backend sees one.
  const int64_t proxiedBefore = proxiedRequests(backends);
  const std::string admin = "http://127.0.0.1:" + std::to_string(gw.adminPort);
  for (const std::string path : {"/all_keys", "/view_logs", "/server", "/server_stats"}) {
    for (bool key : {false, true}) {
      CAPTURE(path);
      CAPTURE(key);
      HttpResponse r = key ? withKey(gw.port, path, kDemoKey) : send(gw.port, "GET", path);
      checkErrorJson(r, 404);
      CHECK(json(r)["error"] == "served on the admin listener: " + admin + path);
      // And the admin listener does serve it there.
      CHECK(send(gw.adminPort, "GET", path).status == 200);
    }
  }
  HttpResponse withQuery = send(gw.port, "GET", "/view_logs?limit=5");
  CHECK(json(withQuery)["error"] == "served on the admin listener: " + admin + "/view_logs?limit=5");
  // An absolute-form target names the admin listener, not the host it was sent for.
  HttpResponse absolute = send(gw.port, "GET", "http://elsewhere.example/server_stats");
  CHECK(json(absolute)["error"] == "served on the admin listener: " + admin + "/server_stats");
  // Each probe above counts itself once on its backend.
  CHECK(proxiedRequests(backends) - proxiedBefore == 3);

  // {"owner": "alice"}: the original's body names the key.
  HttpResponse reg =
      send(gw.port, "POST", "/register", {{"Content-Type", "application/json"}}, R"({"owner": "alice"})");
  REQUIRE(reg.status == 201);
  Json registered = json(reg);
  CHECK(registered["name"] == "alice");
  CHECK(registered["owner"] == "alice");
  const std::string aliceKey = registered["api_key"];
  CHECK(withKey(gw.port, "/proxy", aliceKey).status == 200);
  Json keys = json(send(gw.adminPort, "GET", "/all_keys"))["keys"];
  REQUIRE(keys.size() == 2);
  CHECK(keys[0]["name"] == "demo");
  CHECK(keys[0]["configured"] == true);
  CHECK(keys[1]["name"] == "alice");
  CHECK(keys[1]["configured"] == false);
}

TEST_CASE("root flowguard.yaml: the demo key's usage is counted and survives a restart") {
  TempDir state;
  Backend b1("b1"), b2("b2"), b3("b3");
  const std::vector<uint16_t> ports{b1.port, b2.port, b3.port};
  int64_t expected = 0;  // every request made with the demo key, /metrics/{key} ones included
  int64_t demoId = 0;
  {
    RootGateway gw(state, ports, "127.0.0.1");
    for (int i = 0; i < 5; ++i) CHECK(withKey(gw.port, "/proxy", kDemoKey).status == 200);
    expected += 5;
    // The log is written in batches: ask until it shows (each answer counts too). Slowly,
    // so the demo key's bucket (10/s, bursts of 20) never runs dry.
    Json usage;
    for (int attempt = 0; attempt < 50; ++attempt) {
      HttpResponse r = withKey(gw.port, std::string("/metrics/") + kDemoKey, kDemoKey);
      ++expected;
      REQUIRE(r.status == 200);
      usage = json(r);
      if (usage["requests"]["requests"].get<int64_t>() >= 5) break;
      sleepFor(100ms);
    }
    REQUIRE(usage["requests"]["requests"].get<int64_t>() >= 5);
    CHECK(usage["name"] == "demo");
    CHECK(usage["configured"] == true);
    CHECK(usage["prefix"] == "test");
    CHECK(usage["requests"]["2xx"].get<int64_t>() >= 5);
    demoId = usage["id"];

    // Listed with the others, never revocable through the API.
    Json keys = json(send(gw.adminPort, "GET", "/all_keys"))["keys"];
    REQUIRE(keys.size() == 1);
    CHECK(keys[0]["configured"] == true);
    HttpResponse revoke = send(gw.adminPort, "DELETE", "/keys/" + std::to_string(demoId));
    checkErrorJson(revoke, 409);
    CHECK(json(revoke)["error"].get<std::string>().find("flowguard.yaml") != std::string::npos);
    CHECK(withKey(gw.port, "/proxy", kDemoKey).status == 200);
    ++expected;
  }  // drained: the request log is flushed before the exit

  RootGateway again(state, ports, "127.0.0.1");
  HttpResponse r = withKey(again.port, std::string("/metrics/") + kDemoKey, kDemoKey);
  REQUIRE(r.status == 200);
  Json usage = json(r);
  CHECK(usage["id"] == demoId);  // the same row, not a new one
  CHECK(usage["requests"]["requests"] == expected);
  CHECK(usage["requests"]["429"] == 0);
}

TEST_CASE("admin off loopback without a token: generated once, kept in state_dir, required") {
  TempDir state;
  Backend b1("b1"), b2("b2"), b3("b3");
  const std::vector<uint16_t> ports{b1.port, b2.port, b3.port};
  std::string token;
  {
    RootGateway gw(state, ports, "0.0.0.0");
    const std::string log = gw.process->waitForLog("#token=");
    token = loggedToken(log);
    REQUIRE(token.size() == 32);
    CHECK(log.find("one was generated into " + state.file("admin-token")) != std::string::npos);
    CHECK(readFile(state.file("admin-token")) == token + "\n");
    struct stat st {};
    REQUIRE(::stat(state.file("admin-token").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    CHECK(send(gw.adminPort, "GET", "/stats").status == 401);
    CHECK(withBearer(gw.adminPort, "/stats", "not-the-token").status == 401);
    CHECK(withBearer(gw.adminPort, "/stats", token).status == 200);
    CHECK(withBearer(gw.adminPort, "/all_keys", token).status == 200);
    // The dashboard page itself loads without it (it reads the token from #token=...).
    CHECK(send(gw.adminPort, "GET", "/server").status == 200);
    Json dump = json(withBearer(gw.adminPort, "/config_dump", token));
    CHECK(dump["config"]["admin"]["token"] == "generated, kept in state_dir");
    CHECK(dump.dump().find(token) == std::string::npos);
  }
  {
    // A restart keeps it.
    RootGateway gw(state, ports, "0.0.0.0");
    const std::string log = gw.process->waitForLog("#token=");
    CHECK(loggedToken(log) == token);
    CHECK(log.find("it is the one kept in " + state.file("admin-token")) != std::string::npos);
    CHECK(withBearer(gw.adminPort, "/stats", token).status == 200);
    CHECK(send(gw.adminPort, "GET", "/stats").status == 401);
  }
  {
    // FLOWGUARD_ADMIN_TOKEN overrides it, and an operator's own token never goes to the log.
    RootGateway gw(state, ports, "0.0.0.0", {{"FLOWGUARD_ADMIN_TOKEN", "operator-chosen-secret"}});
    CHECK(withBearer(gw.adminPort, "/stats", "operator-chosen-secret").status == 200);
    CHECK(withBearer(gw.adminPort, "/stats", token).status == 401);
    const std::string log = gw.process->logText();
    CHECK(log.find("#token=") == std::string::npos);
    CHECK(log.find("operator-chosen-secret") == std::string::npos);
  }
  CHECK(readFile(state.file("admin-token")) == token + "\n");  // left as it was
}

TEST_CASE("admin on loopback without a token: none is generated") {
  TempDir state;
  Backend b1("b1"), b2("b2"), b3("b3");
  RootGateway gw(state, {b1.port, b2.port, b3.port}, "127.0.0.1");
  CHECK(send(gw.adminPort, "GET", "/stats").status == 200);
  CHECK(gw.process->logText().find("#token=") == std::string::npos);
  struct stat st {};
  CHECK(::stat(state.file("admin-token").c_str(), &st) != 0);
}

TEST_CASE("a state_dir that cannot hold the token stops the start with a clear message") {
  TempDir state;
  writeFile(state.file("not-a-dir"), "a file where the state directory should be\n");
  Backend b1("b1");
  ScopedEnv env({{"FLOWGUARD_WORKERS", "1"},
                 {"FLOWGUARD_LISTEN_ADDRESS", "127.0.0.1:" + std::to_string(freeTcpPort())},
                 {"FLOWGUARD_ADMIN_ADDRESS", "0.0.0.0:" + std::to_string(freeTcpPort())},
                 {"FLOWGUARD_ADMIN_TOKEN", ""},
                 {"FLOWGUARD_STORAGE_URL", "sqlite://" + state.file("flowguard.db")},
                 {"FLOWGUARD_STATE_DIR", state.file("not-a-dir") + "/sub"},
                 {"FLOWGUARD_BACKEND_1", "127.0.0.1:" + std::to_string(b1.port)},
                 {"FLOWGUARD_BACKEND_2", "127.0.0.1:" + std::to_string(freeTcpPort())},
                 {"FLOWGUARD_BACKEND_3", "127.0.0.1:" + std::to_string(freeTcpPort())}});
  Process gateway({binaryPath("flowguard"), "-c", rootConfig()});
  auto status = gateway.waitExit(10s);
  INFO(gateway.logText());
  REQUIRE(status.has_value());
  CHECK(*status != 0);
  CHECK(gateway.logText().find("needs a token: cannot read " + state.file("not-a-dir") +
                               "/sub/admin-token: Not a directory") != std::string::npos);
}

TEST_CASE("register: unique_names refuses a name an active key holds (409), off by default") {
  TempDir dir;
  Backend backend;
  auto spec = [&](bool unique) {
    GatewaySpec s;
    s.filters = {"{ name: auth, exempt: [ { path: /register }, { prefix: /keys/ } ] }"};
    s.routes = {std::string("{ match: { path: /register, methods: [POST] }, handler: { name: register, "
                            "unique_names: ") +
                    (unique ? "true" : "false") + " } }",
                "{ match: { prefix: /keys/, methods: [DELETE] }, handler: revoke_key }",
                "{ match: { prefix: / }, cluster: backends }"};
    s.clusters = {clusterYaml("backends", {backend.port})};
    s.topLevel = {"storage: { url: \"sqlite://" + dir.file("keys.db") + "\" }",
                  "register: { per_ip: 100/h }"};
    return s;
  };
  auto registerAs = [](uint16_t port, const std::string& body) {
    return send(port, "POST", "/register", {{"Content-Type", "application/json"}}, body);
  };
  {
    Gateway lenient(spec(false));
    CHECK(registerAs(lenient.port, R"({"owner": "bob"})").status == 201);
    CHECK(registerAs(lenient.port, R"({"name": "bob"})").status == 201);
  }
  Gateway strict(spec(true));
  HttpResponse first = registerAs(strict.port, R"({"owner": "carol"})");
  REQUIRE(first.status == 201);
  HttpResponse again = registerAs(strict.port, R"({"name": "carol"})");
  checkErrorJson(again, 409);
  CHECK(json(again)["error"].get<std::string>().find("already named 'carol'") != std::string::npos);
  CHECK(registerAs(strict.port, R"({"owner": "bob"})").status == 409);  // bob holds two keys already
  // "name" wins over "owner" when both are given.
  HttpResponse both = registerAs(strict.port, R"({"name": "dave", "owner": "carol"})");
  REQUIRE(both.status == 201);
  CHECK(json(both)["name"] == "dave");
  // Unnamed keys never clash; a revoked key frees its name.
  CHECK(registerAs(strict.port, "{}").status == 201);
  CHECK(registerAs(strict.port, "{}").status == 201);
  CHECK(send(strict.port, "DELETE", "/keys/" + std::to_string(json(first)["key_id"].get<int64_t>())).status ==
        200);
  CHECK(registerAs(strict.port, R"({"owner": "carol"})").status == 201);
  CHECK(registerAs(strict.port, R"({"owner": 7})").status == 400);
}
