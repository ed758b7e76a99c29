// Issue 18's findings, one regression test each, against real processes: what an attacker
// tried, and what the gateway must answer now. The same probes, as data, run in the
// tests/security replay against the root flowguard.yaml.
#include <regex>
#include <sstream>

#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "security-key-0001";

std::string rootConfigText() {
  const char* source = std::getenv("FLOWGUARD_SOURCE_DIR");
  REQUIRE_MESSAGE(source, "FLOWGUARD_SOURCE_DIR is not set (run through ctest)");
  return readFile(std::string(source) + "/flowguard.yaml");
}

HttpResponse ask(uint16_t port, const std::string& raw) {
  HttpClient c;
  c.connect(port);
  c.sendRaw(raw);
  return c.readResponse();
}

}  // namespace

TEST_CASE("item 1: an exempt entry waives the key only for answers the gateway gives itself") {
  Backend b;
  GatewaySpec spec;
  // The old root file's mistake on purpose: /status exempt for every method, while its route
  // answers only GET and HEAD and the rest falls through to the cluster.
  spec.filters = {std::string("{ name: auth, keys: [ { key: ") + kKey +
                  ", name: one } ], exempt: [ { path: /status }, { prefix: /listed/ } ] }"};
  spec.routes = {
      "{ match: { path: /status, methods: [GET, HEAD] }, direct_response: { status: 200, body: ok } }",
      "{ match: { prefix: /public/ }, cluster: backends, per_filter: { auth: { disabled: true } } }",
      "{ match: { prefix: / }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {b.port})};
  Gateway gw(spec);

  CHECK(ask(gw.port, get("/status")).status == 200);
  for (const std::string method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"}) {
    CAPTURE(method);
    checkErrorJson(ask(gw.port, method + " /status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), 401);
  }
  checkErrorJson(
      ask(gw.port, "POST http://gw.test/status HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0\r\n\r\n"), 401);
  // /listed/ is exempt too, but it is forwarded: the exemption does not apply...
  checkErrorJson(ask(gw.port, get("/listed/x")), 401);
  CHECK(b.requests() == 1);  // none of the above reached the backend (the probe counts itself)

  // ...while a route that disables auth forwards without a key, and a key sent anyway (both
  // ways at once) is stripped all the same.
  HttpResponse open = ask(gw.port, get("/public/y", std::string("X-API-Key: ") + kKey +
                                                        "\r\nAuthorization: Bearer " + kKey + "\r\n"));
  REQUIRE(open.status == 200);
  CHECK_FALSE(json(open)["headers"].contains("x-api-key"));
  CHECK_FALSE(json(open)["headers"].contains("authorization"));
  // With a key, POST /status goes where its route says: the cluster.
  HttpResponse withKey = ask(gw.port, std::string("POST /status HTTP/1.1\r\nHost: x\r\nX-API-Key: ") + kKey +
                                          "\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(withKey.status == 200);
  CHECK(json(withKey)["method"] == "POST");
}

TEST_CASE("item 6: every key carrier is stripped, whichever one authenticated") {
  Backend b;
  GatewaySpec spec = proxySpec({b.port});
  spec.filters = {std::string("{ name: auth, keys: [ { key: ") + kKey + ", name: one } ] }"};
  Gateway gw(spec);
  const std::string both = std::string("X-API-Key: ") + kKey + "\r\nAuthorization: Bearer " + kKey + "\r\n";
  HttpResponse r = ask(gw.port, get("/both", both));
  REQUIRE(r.status == 200);
  CHECK_FALSE(json(r)["headers"].contains("x-api-key"));
  CHECK_FALSE(json(r)["headers"].contains("authorization"));
  // Another scheme is the backend's own business and passes untouched.
  HttpResponse basic = ask(gw.port, get("/basic", std::string("X-API-Key: ") + kKey +
                                                      "\r\nAuthorization: Basic dXNlcjpwYXNz\r\n"));
  REQUIRE(basic.status == 200);
  CHECK(json(basic)["headers"]["authorization"] == "Basic dXNlcjpwYXNz");
}

TEST_CASE("item 1: flowguard validate warns, with file:line:col, about the old root file's exemption") {
  TempDir dir;
  const std::string current = rootConfigText();
  // The root file as it was: /status exempt for every method.
  const std::string fixedEntry = "- { path: /status, methods: [GET, HEAD] }";
  const size_t at = current.find(fixedEntry);
  REQUIRE(at != std::string::npos);
  std::string old = current;
  old.replace(at, fixedEntry.size(), "- { path: /status }");
  const std::string oldPath = dir.file("old-flowguard.yaml");
  writeFile(oldPath, old);
  const int line = static_cast<int>(std::count(old.begin(), old.begin() + static_cast<long>(at), '\n')) + 1;
  const int column = static_cast<int>(at - old.rfind('\n', at)) + 2;  // the '{' after "- "

  CliResult warned = runCli({"validate", "--no-resolve", "-c", oldPath});
  INFO("stderr:\n" << warned.err);
  CHECK(warned.status == 0);  // a warning, not an error: the file still loads
  CHECK(warned.err.find(oldPath + ":" + std::to_string(line) + ":" + std::to_string(column) +
                        ": warning: exempt entry also matches requests that the route at line ") !=
        std::string::npos);
  CHECK(warned.err.find("(e.g. POST /status)") != std::string::npos);
  CHECK(warned.out.find("1 warning above") != std::string::npos);

  const std::string rootPath = dir.file("flowguard.yaml");
  writeFile(rootPath, current);
  CliResult clean = runCli({"validate", "--no-resolve", "-c", rootPath});
  CHECK(clean.status == 0);
  CHECK(clean.err.empty());
}

TEST_CASE("item 8: a fragment gets 400; an absolute-form target is forwarded in origin form") {
  Backend b;
  Gateway gw(proxySpec({b.port}));
  HttpClient c;
  c.connect(gw.port);
  c.sendRaw("POST /status#/../admin HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  HttpResponse fragment = c.readResponse();
  checkErrorJson(fragment, 400);
  CHECK(json(fragment)["error"] == "fragment in request target");
  CHECK(b.requests() == 1);  // the probe only

  HttpResponse absolute =
      ask(gw.port, "GET http://internal.example/abs?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n");
  REQUIRE(absolute.status == 200);
  Json seen = json(absolute);
  CHECK(seen["path"] == "/abs");
  CHECK(seen["query"] == "q=1");
  CHECK(seen["headers"]["host"] == "internal.example");
}

TEST_CASE("item 9: identity headers are believed from trusted proxies only") {
  Backend b;
  SUBCASE("an untrusted client's claims are dropped; its request id kept aside when asked") {
    GatewaySpec spec = proxySpec({b.port});
    spec.listener = {"client_request_id: keep"};
    Gateway gw(spec);
    Json seen = json(ask(gw.port, get("/who",
                                      "X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n"
                                      "Forwarded: for=6.6.6.6\r\nX-Request-Id: attacker-chosen\r\n")));
    CHECK(seen["headers"]["x-forwarded-for"] == "127.0.0.1");
    CHECK_FALSE(seen["headers"].contains("x-real-ip"));
    CHECK_FALSE(seen["headers"].contains("forwarded"));
    CHECK(seen["headers"]["x-request-id"] != "attacker-chosen");
    CHECK(seen["headers"]["x-client-request-id"] == "attacker-chosen");
  }
  SUBCASE("behind trusted proxies: their list is extended, and the client is the rightmost untrusted hop") {
    GatewaySpec spec = proxySpec({b.port});
    // The test client (127.0.0.1) plays the last proxy; 10.0.0.0/24 are proxies before it.
    spec.listener = {"trusted_proxies: [127.0.0.0/8, 10.0.0.0/24]"};
    spec.filters = {"{ name: rate_limit, by: client_ip, rate: 1/h, burst: 1 }"};
    Gateway gw(spec);
    const std::string fromClient =
        "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 10.0.0.5\r\n"
        "X-Request-Id: trace-abc-123\r\nX-Real-IP: 203.0.113.9\r\n";
    Json seen = json(ask(gw.port, get("/one", fromClient)));
    CHECK(seen["headers"]["x-forwarded-for"] == "203.0.113.9, 10.0.0.5, 127.0.0.1");
    CHECK(seen["headers"]["x-request-id"] == "trace-abc-123");
    CHECK(seen["headers"]["x-real-ip"] == "203.0.113.9");
    // The limit is per client, and the client is 203.0.113.9, not the proxy.
    HttpResponse limited = ask(gw.port, get("/two", fromClient));
    checkErrorJson(limited, 429);
    CHECK(json(limited)["error"].get<std::string>().find("client 203.0.113.9") != std::string::npos);
    CHECK(ask(gw.port, get("/three", "X-Forwarded-For: 198.51.100.1\r\n")).status == 200);
    // An entry that is not an address stops the walk at the hop after it.
    HttpResponse garbled = ask(gw.port, get("/four", "X-Forwarded-For: 198.51.100.1, unknown\r\n"));
    CHECK(garbled.status == 200);  // the client is 127.0.0.1 (the last trusted hop), not 198.51.100.1
  }
}

TEST_CASE("item 7: request trailers are dropped by default; forward_trailers passes only safe fields") {
  Backend b;
  const std::string trailers =
      "X-Forwarded-For: 6.6.6.6\r\nX-Api-Key: stolen\r\nContent-Length: 99\r\n"
      "Host: evil\r\nX-Checksum: abc\r\n";
  auto sendChunked = [&](uint16_t port) {
    HttpClient c;
    c.connect(port);
    c.sendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n" +
              trailers + "\r\n");
    return c.readResponse();
  };
  SUBCASE("off by default") {
    Gateway gw(proxySpec({b.port}));
    HttpResponse r = sendChunked(gw.port);
    REQUIRE(r.status == 200);
    CHECK(r.body == "hello");
  }
  SUBCASE("on: forbidden and key-carrying fields are still dropped") {
    RawUpstream up("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    GatewaySpec spec = proxySpec({up.port});
    spec.listener = {"forward_trailers: true"};
    spec.filters = {"{ name: auth, header: X-Api-Key, keys: [ { key: k-0001, name: one } ], exempt: [] }"};
    spec.routes = {"{ match: { prefix: / }, cluster: backends, per_filter: { auth: { disabled: true } } }"};
    Gateway gw(spec);
    REQUIRE(sendChunked(gw.port).status == 200);
    const std::string received = up.received();
    INFO(received);
    CHECK(received.find("\r\n0\r\nX-Checksum: abc\r\n\r\n") != std::string::npos);
    for (const char* name : {"6.6.6.6", "stolen", "Content-Length: 99", "evil"}) {
      CAPTURE(name);
      CHECK(received.find(name) == std::string::npos);
    }
  }
}

TEST_CASE("item 5: no full API key reaches the request log or the access log, whatever the answer") {
  Backend b;
  TempDir dir;
  const std::string accessLog = dir.file("access.log");
  GatewaySpec spec;
  spec.filters = {std::string("{ name: auth, keys: [ { key: ") + kKey +
                      ", name: one } ], exempt: [ { path: /register, methods: [POST] } ] }",
                  "{ name: metrics, access_log: { path: \"" + accessLog + "\" } }"};
  spec.routes = {"{ match: { path: /register, methods: [POST] }, handler: register }",
                 "{ match: { prefix: /metrics/, methods: [GET] }, handler: key_metrics }",
                 "{ match: { prefix: / }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {b.port})};
  spec.topLevel = {"storage: { url: \"sqlite://" + dir.file("keys.db") + "\", flush_interval: 50ms }"};
  std::string registered;
  {
    Gateway gw(spec);
    HttpResponse reg = ask(gw.port,
                           "POST /register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Content-Length: 15\r\n\r\n{\"name\":\"mine\"}");
    REQUIRE(reg.status == 201);
    registered = json(reg)["api_key"];
    auto metrics = [&](const std::string& pathKey, const std::string& sentKey) {
      return ask(gw.port,
                 get("/metrics/" + pathKey, sentKey.empty() ? "" : "X-API-Key: " + sentKey + "\r\n"));
    };
    CHECK(metrics(registered, registered).status == 200);
    CHECK(metrics(kKey, registered).status == 403);  // someone else's key in the path
    CHECK(metrics(registered, "").status == 401);    // no key at all
    CHECK(metrics(kKey, "wrong-key-000000").status == 401);
  }  // stopping the gateway flushes both logs
  for (const std::string& file : {dir.file("keys.db"), accessLog}) {
    CAPTURE(file);
    std::string bytes = readFile(file) + readFile(file + "-wal");
    REQUIRE_FALSE(bytes.empty());
    CHECK(bytes.find(registered) == std::string::npos);
    CHECK(bytes.find(kKey) == std::string::npos);
  }
  const std::string log = readFile(accessLog);
  CHECK(log.find("\"path\":\"/metrics/" + registered.substr(0, std::min<size_t>(12, registered.size() / 3)) +
                 "…\"") != std::string::npos);
  CHECK(log.find("\"path\":\"/metrics/secur…\"") != std::string::npos);  // kKey: a third of 17 chars
}

TEST_CASE("item 2: registered names and configured names live apart") {
  Backend b;
  TempDir dir;
  auto spec = [&](bool withVip) {
    GatewaySpec s;
    std::string keys = withVip ? "keys: [ { key: vip-configured-0001, name: vip } ], " : "";
    s.filters = {"{ name: auth, " + keys + "exempt: [ { path: /register, methods: [POST] } ] }",
                 std::string("{ name: rate_limit, rate: 1/h, burst: 1") +
                     (withVip ? ", overrides: [ { key: vip, rate: 1000/s, burst: 1000 } ]" : "") + " }"};
    s.routes = {"{ match: { path: /register, methods: [POST] }, handler: register }",
                "{ match: { prefix: / }, cluster: backends }"};
    s.clusters = {clusterYaml("backends", {b.port})};
    s.topLevel = {"storage: { url: \"sqlite://" + dir.file("keys.db") + "\", key_poll_interval: 100ms }",
                  "plans: { free: { rate: 1/h, burst: 1 } }"};
    return s;
  };
  auto registerName = [](uint16_t port, const std::string& name) {
    const std::string body = "{\"name\":\"" + name + "\"}";
    return ask(port,
               "POST /register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
  };
  std::string earlyVip;
  {
    // Before the operator configured "vip", a client took the name.
    Gateway gw(spec(false));
    HttpResponse r = registerName(gw.port, "vip");
    REQUIRE(r.status == 201);
    earlyVip = json(r)["api_key"];
  }
  Gateway gw(spec(true));
  HttpResponse taken = registerName(gw.port, "VIP");
  checkErrorJson(taken, 409);
  CHECK(json(taken)["error"] == "the name 'VIP' belongs to a key in flowguard.yaml: choose another name");
  // The override is the configured key's; the registered "vip" keeps its plan's limit.
  for (int i = 0; i < 5; ++i)
    CHECK(ask(gw.port, get("/c", "X-API-Key: vip-configured-0001\r\n")).status == 200);
  CHECK(ask(gw.port, get("/r", "X-API-Key: " + earlyVip + "\r\n")).status == 200);
  checkErrorJson(ask(gw.port, get("/r", "X-API-Key: " + earlyVip + "\r\n")), 429);
}

TEST_CASE("item 3: plans are self-service only when they say so; /register is limited per client address") {
  Backend b;
  TempDir dir;
  GatewaySpec spec;
  spec.filters = {"{ name: auth, exempt: [ { path: /register, methods: [POST] } ] }"};
  spec.routes = {"{ match: { path: /register, methods: [POST] }, handler: register }",
                 "{ match: { prefix: / }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {b.port})};
  spec.topLevel = {
      "storage: { url: \"sqlite://" + dir.file("keys.db") + "\" }",
      "plans: { free: { rate: 10/s }, team: { rate: 50/s, self_service: true }, pro: { rate: 100/s } }",
      "register: { per_ip: 4/h }"};
  Gateway gw(spec);
  auto registerBody = [&](const std::string& body) {
    return ask(gw.port,
               "POST /register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
  };
  HttpResponse pro = registerBody(R"({"plan": "pro"})");
  checkErrorJson(pro, 403);
  CHECK(json(pro)["error"].get<std::string>().starts_with("plan 'pro' is assigned by an operator"));
  HttpResponse team = registerBody(R"({"plan": "team"})");
  REQUIRE(team.status == 201);
  CHECK(json(team)["plan"] == "team");
  HttpResponse byDefault = registerBody("{}");
  REQUIRE(byDefault.status == 201);
  CHECK(json(byDefault)["plan"] == "free");
  CHECK(registerBody(R"({"plan": 5})").status == 400);  // the fourth attempt, refused, still counts
  HttpResponse flood = registerBody("{}");
  checkErrorJson(flood, 429);
  CHECK(json(flood)["error"].get<std::string>().starts_with(
      "too many registrations from 127.0.0.1: 4 per 3600 s"));
}

TEST_CASE("item 4: the admin listener refuses DNS rebinding and cross-site requests") {
  Backend b;
  GatewaySpec spec = proxySpec({b.port});
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  const std::string self = "127.0.0.1:" + std::to_string(adminPort);
  auto admin = [&](const std::string& method, const std::string& path, const std::string& headers) {
    const bool body = method != "GET" && method != "OPTIONS";
    return ask(adminPort, method + " " + path + " HTTP/1.1\r\n" + headers +
                              (body ? "Content-Length: 2\r\n\r\n{}" : "\r\n"));
  };
  auto ready = [&] { return json(admin("GET", "/ready", "Host: " + self + "\r\n"))["ready"] == true; };

  // Reads: its own names only. A rebinding page sends its own domain as Host.
  checkErrorJson(admin("GET", "/all_keys", "Host: attacker.example:" + std::to_string(adminPort) + "\r\n"),
                 421);
  checkErrorJson(admin("GET", "/stats", "Host: 10.9.8.7\r\n"), 421);
  CHECK(admin("GET", "/stats", "Host: " + self + "\r\n").status == 200);
  CHECK(admin("GET", "/stats", "Host: localhost:" + std::to_string(adminPort) + "\r\n").status == 200);
  CHECK(admin("GET", "/stats", "Host: LOCALHOST\r\n").status == 200);
  CHECK(admin("GET", "/server", "Host: localhost\r\n").status == 200);  // the dashboard page

  // Mutations: a simple (form-like) request, a foreign Origin, a preflight: all refused.
  checkErrorJson(admin("POST", "/healthcheck/fail", "Host: " + self + "\r\nContent-Type: text/plain\r\n"),
                 403);
  checkErrorJson(admin("POST", "/healthcheck/fail", "Host: " + self + "\r\n"), 403);
  CHECK(ready());
  checkErrorJson(
      admin("POST", "/healthcheck/fail",
            "Host: " + self + "\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\n"),
      403);
  checkErrorJson(
      admin("POST", "/healthcheck/fail", "Host: " + self + "\r\nOrigin: null\r\nX-Requested-By: x\r\n"), 403);
  HttpResponse preflight =
      admin("OPTIONS", "/reload",
            "Host: " + self +
                "\r\nOrigin: http://evil.example\r\n"
                "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n");
  checkErrorJson(preflight, 403);
  CHECK(preflight.header("Access-Control-Allow-Origin").empty());
  CHECK(preflight.header("Access-Control-Allow-Methods").empty());
  CHECK(ready());
  // The operator's own tools: JSON, or a custom header, from no origin or its own.
  CHECK(
      admin("POST", "/healthcheck/fail", "Host: " + self + "\r\nContent-Type: application/json\r\n").status ==
      200);
  CHECK_FALSE(ready());
  CHECK(admin("POST", "/healthcheck/ok",
              "Host: " + self + "\r\nOrigin: http://" + self + "\r\nX-Requested-By: dashboard\r\n")
            .status == 200);
  CHECK(ready());
}

TEST_CASE("item 3: an operator moves a registered key to a plan that is not self-service") {
  Backend b;
  TempDir dir;
  GatewaySpec spec;
  spec.filters = {"{ name: auth, exempt: [ { path: /register, methods: [POST] } ] }",
                  "{ name: rate_limit, rate: 1/h, burst: 1 }"};
  spec.routes = {"{ match: { path: /register, methods: [POST] }, handler: register }",
                 "{ match: { prefix: / }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {b.port})};
  spec.topLevel = {"storage: { url: \"sqlite://" + dir.file("keys.db") + "\", key_poll_interval: 100ms }",
                   "plans: { free: { rate: 1/h, burst: 1 }, pro: { rate: 100/s, burst: 100 } }"};
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  HttpResponse reg = ask(gw.port, "POST /register HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
  REQUIRE(reg.status == 201);
  const std::string key = json(reg)["api_key"];
  const int64_t id = json(reg)["key_id"];
  CHECK(ask(gw.port, get("/a", "X-API-Key: " + key + "\r\n")).status == 200);
  CHECK(ask(gw.port, get("/a", "X-API-Key: " + key + "\r\n")).status == 429);

  auto patch = [&](const std::string& path, const std::string& body) {
    return ask(adminPort, "PATCH " + path +
                              " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                              "Content-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body);
  };
  checkErrorJson(patch("/keys/" + std::to_string(id), R"({"plan": "platinum"})"), 400);
  checkErrorJson(patch("/keys/" + std::to_string(id), R"({"name": "x"})"), 400);
  checkErrorJson(patch("/keys/999", R"({"plan": "pro"})"), 404);
  HttpResponse moved = patch("/keys/" + std::to_string(id), R"({"plan": "pro"})");
  REQUIRE(moved.status == 200);
  CHECK(json(moved)["plan"] == "pro");
  // Within a key poll, the key has the new plan's limit.
  CHECK(waitUntil([&] { return ask(gw.port, get("/b", "X-API-Key: " + key + "\r\n")).status == 200; }, 5s));
  for (int i = 0; i < 5; ++i) CHECK(ask(gw.port, get("/c", "X-API-Key: " + key + "\r\n")).status == 200);
}
