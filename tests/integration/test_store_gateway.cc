// The key store through real gateway processes: /register, keys used through the gateway,
// /all_keys, /view_logs and /metrics/{key}, durability over a restart, two gateways sharing
// one database, revocation, a PostgreSQL outage, SQL injection attempts, and the database at
// rest holding no plaintext key. The same cases run against SQLite (a temp file) and a real
// PostgreSQL started by the fixture.
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/gateway_fixture.h"
#include "tests/support/postgres_server.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// One PostgreSQL for the cases that do not stop it; each case gets its own database.
PostgresServer& sharedPostgres() {
  static std::unique_ptr<PostgresServer> server = std::make_unique<PostgresServer>();
  return *server;
}

int databaseCounter = 0;

// A fresh, empty store of the given kind: a URL for flowguard.yaml.
std::string freshStore(const std::string& kind, const TempDir& dir) {
  if (kind == "sqlite") return "sqlite://" + dir.file("keys-" + std::to_string(++databaseCounter) + ".db");
  return sharedPostgres().createDatabase("fg_it_" + std::to_string(++databaseCounter));
}

// auth (register and the operator paths exempt) + rate_limit + router with every handler,
// proxying the rest to `backendPort` without retries.
GatewaySpec storeSpec(uint16_t backendPort, const std::string& storeUrl,
                      const std::string& storageExtra = {}) {
  GatewaySpec spec;
  spec.workers = 2;
  spec.filters = {
      "{ name: auth, keys: [ { key: yaml-static-key-0001, name: static } ], exempt: [ { path: /register }, "
      "{ path: /all_keys }, { path: /view_logs }, { prefix: /keys/ }, { prefix: /any-metrics/ } ] }",
      "{ name: rate_limit, rate: 1000/s, burst: 1000 }"};
  spec.routes = {"{ match: { path: /register, methods: [POST] }, handler: register }",
                 "{ match: { path: /all_keys }, handler: list_keys }",
                 "{ match: { path: /view_logs }, handler: view_logs }",
                 "{ match: { prefix: /keys/, methods: [DELETE] }, handler: revoke_key }",
                 "{ match: { prefix: /metrics/ }, handler: key_metrics }",
                 "{ match: { prefix: /any-metrics/ }, handler: { name: key_metrics, any_key: true } }",
                 "{ match: { prefix: / }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {backendPort}, "retries: 0")};
  spec.topLevel = {
      "storage: { url: \"" + storeUrl + "\", flush_interval: 50ms, key_poll_interval: 100ms" +
          (storageExtra.empty() ? "" : ", " + storageExtra) + " }",
      "plans: { starter: { rate: 1/h, burst: 5 }, big: { rate: 1000/s, burst: 1000, self_service: true } }",
      "register: { per_ip: 1000/h }"};  // these tests register from one address
  return spec;
}

HttpResponse request(uint16_t port, const std::string& method, const std::string& path,
                     const std::string& key = {}, const std::string& body = {}) {
  HttpClient c;
  c.connect(port);
  std::string raw = method + " " + path + " HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n";
  if (!key.empty()) raw += "X-API-Key: " + key + "\r\n";
  if (!body.empty() || method == "POST") {
    raw += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  c.sendRaw(raw + "\r\n" + body);
  return c.readResponse();
}

struct Registered {
  std::string key;
  int64_t id = 0;
  std::string prefix;
};

Registered registerKey(uint16_t port, const std::string& body) {
  HttpResponse r = request(port, "POST", "/register", {}, body);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  Json j = json(r);
  Registered k{j["api_key"].get<std::string>(), j["key_id"].get<int64_t>(), j["prefix"].get<std::string>()};
  CHECK(k.key.rfind("fg_", 0) == 0);
  CHECK(k.key.size() == 35);
  CHECK(k.key.substr(0, k.prefix.size()) == k.prefix);
  CHECK(k.prefix.size() < k.key.size() / 2);
  return k;
}

// The keys /register issued, without the one written in the yaml (listed too, "configured").
Json registeredOnly(const Json& keys) {
  Json out = Json::array();
  int configured = 0;
  for (const Json& k : keys) {
    if (k["configured"] == true) {
      ++configured;
      CHECK(k["name"] == "static");
    } else {
      out.push_back(k);
    }
  }
  CHECK(configured == 1);
  return out;
}

// Polls until the request log holds `count` rows for `query` (writes are batched).
Json logsWhenThere(uint16_t port, const std::string& query, size_t count) {
  Json logs;
  waitUntil(
      [&] {
        HttpResponse r = request(port, "GET", "/view_logs?" + query);
        if (r.status != 200) return false;
        logs = json(r)["logs"];
        return logs.size() >= count;
      },
      5s);
  return logs;
}

void registerUseAndReport(const std::string& kind) {
  TempDir dir;
  Backend backend;
  Gateway gw(storeSpec(backend.port, freshStore(kind, dir)));

  Registered k = registerKey(gw.port, R"({"name": "alice", "plan": "starter"})");
  Json answer = json(request(gw.port, "POST", "/register", {}, R"({"plan": "big"})"));
  CHECK(answer["limits"]["burst"] == 1000);
  CHECK(answer["plan"] == "big");

  // starter: bursts of 5, then nothing for an hour. 3 pass, 2 fail upstream, 2 are limited.
  for (int i = 0; i < 3; ++i) CHECK(request(gw.port, "GET", "/echo", k.key).status == 200);
  backend.setFault(R"({"fail_rate": 1.0})");
  for (int i = 0; i < 2; ++i) CHECK(request(gw.port, "GET", "/echo", k.key).status >= 500);
  backend.setFault(R"({"fail_rate": 0})");
  for (int i = 0; i < 2; ++i) CHECK(request(gw.port, "GET", "/echo", k.key).status == 429);
  CHECK(request(gw.port, "GET", "/echo", "fg_not-a-registered-key-at-all-0000").status == 401);

  Json logs = logsWhenThere(gw.port, "key=" + k.prefix, 7);
  REQUIRE(logs.size() == 7);
  int64_t previousId = INT64_MAX;
  std::map<int, int> statuses;
  for (const Json& row : logs) {
    CHECK(row["id"].get<int64_t>() < previousId);  // newest first
    previousId = row["id"].get<int64_t>();
    CHECK(row["key_prefix"] == k.prefix);
    CHECK(row["path"] == "/echo");
    CHECK(row["method"] == "GET");
    CHECK(row["listener"] == "test");
    ++statuses[row["status"].get<int>()];
  }
  CHECK(statuses[200] == 3);
  CHECK(statuses[429] == 2);
  CHECK(logsWhenThere(gw.port, "key=" + k.prefix + "&status=429", 2).size() == 2);
  CHECK(logsWhenThere(gw.port, "key=" + k.prefix + "&limit=4", 4).size() == 4);
  // The 401 and the registrations are logged too, without a key. Each worker hands its
  // records over in its own batches, so those of the other worker may come a little later.
  bool saw401 = false;
  int registrations = 0;
  waitUntil(
      [&] {
        saw401 = false;
        registrations = 0;
        for (const Json& row : logsWhenThere(gw.port, "limit=1000", 10)) {
          saw401 = saw401 || (row["status"] == 401 && row["key_prefix"] == "");
          registrations += row["path"] == "/register" && row["status"] == 201 ? 1 : 0;
        }
        return saw401 && registrations >= 2;
      },
      5s);
  CHECK(saw401);
  CHECK(registrations == 2);

  // /all_keys: both keys, usage counted, nothing secret.
  HttpResponse listed = request(gw.port, "GET", "/all_keys");
  REQUIRE(listed.status == 200);
  CHECK(listed.body.find(k.key) == std::string::npos);
  Json keys = registeredOnly(json(listed)["keys"]);
  REQUIRE(keys.size() == 2);
  const Json& alice = keys[0]["id"] == k.id ? keys[0] : keys[1];
  CHECK(alice["name"] == "alice");
  CHECK(alice["plan"] == "starter");
  CHECK(alice["requests"]["requests"] == 7);
  CHECK(alice["requests"]["2xx"] == 3);
  CHECK(alice["requests"]["429"] == 2);
  CHECK(alice["requests"]["5xx"] == 2);
  CHECK(alice["last_used_at"].is_string());
  CHECK(alice["revoked_at"].is_null());
  CHECK(json(listed)["total"] == 3);  // the yaml key's row too
  CHECK(json(listed)["active"] == 3);
  CHECK(json(listed)["next_after"].is_null());

  // A page at a time.
  Json first = json(request(gw.port, "GET", "/all_keys?limit=2"));
  REQUIRE(first["keys"].size() == 2);
  REQUIRE(first["next_after"].is_number());
  Json second = json(request(gw.port, "GET", "/all_keys?limit=2&after=" + first["next_after"].dump()));
  REQUIRE(second["keys"].size() == 1);
  CHECK(second["keys"][0]["id"].get<int64_t>() > first["keys"][1]["id"].get<int64_t>());
  CHECK(second["next_after"].is_null());
  CHECK(request(gw.port, "GET", "/all_keys?limit=0").status == 400);
  CHECK(request(gw.port, "GET", "/all_keys?after=x").status == 400);

  // /metrics/{key} on a public listener: only with that key (which the rate limit has
  // exhausted here, so the figures come from the operator's route).
  const std::string bigKey = answer["api_key"].get<std::string>();
  CHECK(request(gw.port, "GET", "/metrics/" + bigKey).status == 401);
  CHECK(request(gw.port, "GET", "/metrics/" + bigKey, "yaml-static-key-0001").status == 403);
  CHECK(request(gw.port, "GET", "/metrics/" + bigKey, k.key).status == 429);
  HttpResponse own = request(gw.port, "GET", "/metrics/" + bigKey, bigKey);
  REQUIRE_MESSAGE(own.status == 200, own.body);
  CHECK(json(own)["plan"] == "big");
  // The figures come from the request log, whose writes are batched: wait until alice's 429
  // just above is in it (her eighth request: 3 2xx, 3 429, 2 5xx).
  REQUIRE(logsWhenThere(gw.port, "key=" + k.prefix, 8).size() == 8);
  HttpResponse m = request(gw.port, "GET", "/any-metrics/" + k.key);
  REQUIRE_MESSAGE(m.status == 200, m.body);
  Json metrics = json(m);
  CHECK(metrics["ratios"]["2xx"].get<double>() == doctest::Approx(3.0 / 8));
  CHECK(metrics["ratios"]["429"].get<double>() == doctest::Approx(3.0 / 8));
  CHECK(metrics["ratios"]["5xx"].get<double>() == doctest::Approx(2.0 / 8));
  CHECK(metrics["latency_ms"]["sample"] == 8);
  CHECK(metrics["latency_ms"]["p50"].get<double>() > 0);
  CHECK(metrics["latency_ms"]["p99"].get<double>() >= metrics["latency_ms"]["p50"].get<double>());
  // The yaml key has a row and usage too: its 403 above was a request made with it (logged
  // by whichever worker took it, so perhaps in a later batch than alice's).
  Json yaml;
  REQUIRE(waitUntil(
      [&] {
        HttpResponse r = request(gw.port, "GET", "/any-metrics/yaml-static-key-0001");
        if (r.status != 200) return false;
        yaml = json(r);
        return yaml["requests"]["requests"] == 1;
      },
      5s));
  CHECK(yaml["name"] == "static");
  CHECK(yaml["configured"] == true);
  CHECK(yaml["requests"]["4xx"] == 1);
  CHECK(request(gw.port, "GET", "/any-metrics/no-such-key-at-all").status == 404);

  // Bad registrations get a 4xx JSON answer and store nothing.
  for (const char* bad : {"{", "[1,2]", R"({"name": 5})", R"({"plan": "gold"})"}) {
    HttpResponse r = request(gw.port, "POST", "/register", {}, bad);
    CHECK_MESSAGE(r.status == 400, bad);
    CHECK(json(r)["error"].is_string());
  }
  CHECK(json(request(gw.port, "GET", "/all_keys"))["count"] == 3);  // alice, the unnamed one, the yaml key
}

void restartKeepsKeys(const std::string& kind) {
  TempDir dir;
  Backend backend;
  const std::string url = freshStore(kind, dir);
  Registered k;
  {
    Gateway first(storeSpec(backend.port, url));
    k = registerKey(first.port, R"({"name": "durable"})");
    CHECK(request(first.port, "GET", "/echo", k.key).status == 200);
  }
  Gateway second(storeSpec(backend.port, url));
  // The first request after start-up already knows the key.
  CHECK(request(second.port, "GET", "/echo", k.key).status == 200);
  // The first gateway's request was written before it exited.
  CHECK(logsWhenThere(second.port, "key=" + k.prefix, 2).size() == 2);
}

// A reload that swaps the yaml key: the old one stops working and its row is revoked with its
// usage kept; the new one gets a row at once.
void yamlKeysFollowReloads(const std::string& kind) {
  TempDir dir;
  Backend backend;
  GatewaySpec spec = storeSpec(backend.port, freshStore(kind, dir));
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  CHECK(request(gw.port, "GET", "/echo", "yaml-static-key-0001").status == 200);
  const std::string oldKey = "key: yaml-static-key-0001, name: static";
  spec.filters[0].replace(spec.filters[0].find(oldKey), oldKey.size(),
                          "key: yaml-other-key-00002, name: other");
  writeFile(gw.configPath, spec.yaml(gw.port, adminPort));  // the file watcher applies it
  // Applied once the admin listener reports generation 2 (not a log line).
  REQUIRE(waitUntil([&] { return adminJson(adminPort, "/stats").at("config").at("generation") == 2; }, 10s));
  CHECK(request(gw.port, "GET", "/echo", "yaml-static-key-0001").status == 401);
  CHECK(request(gw.port, "GET", "/echo", "yaml-other-key-00002").status == 200);
  Json keys;
  REQUIRE(waitUntil(
      [&] {
        keys = json(request(gw.port, "GET", "/all_keys"))["keys"];
        return keys.size() == 2 && keys[0]["revoked_at"].is_string() &&
               keys[0]["requests"]["requests"] == 1 && keys[1]["requests"]["requests"] == 1;
      },
      5s));
  CHECK(keys[0]["name"] == "static");
  CHECK(keys[0]["configured"] == true);
  CHECK(keys[1]["name"] == "other");
  CHECK(keys[1]["configured"] == true);
  CHECK(keys[1]["revoked_at"].is_null());
}

void twoGatewaysShareKeys(const std::string& kind) {
  TempDir dir;
  Backend backend;
  const std::string url = freshStore(kind, dir);
  Gateway a(storeSpec(backend.port, url));
  Gateway b(storeSpec(backend.port, url));
  Registered k = registerKey(a.port, "");
  const auto registered = Clock::now();
  CHECK(request(a.port, "GET", "/echo", k.key).status == 200);  // at once on the issuing gateway
  REQUIRE(waitUntil([&] { return request(b.port, "GET", "/echo", k.key).status == 200; }, 3s));
  MESSAGE("key usable on the other gateway after "
          << std::chrono::duration_cast<Millis>(Clock::now() - registered).count() << " ms");

  HttpResponse revoked = request(b.port, "DELETE", "/keys/" + std::to_string(k.id));
  REQUIRE_MESSAGE(revoked.status == 200, revoked.body);
  CHECK(request(b.port, "GET", "/echo", k.key).status == 401);  // at once where it was revoked
  const auto revokedAt = Clock::now();
  REQUIRE(waitUntil([&] { return request(a.port, "GET", "/echo", k.key).status == 401; }, 3s));
  MESSAGE("revocation effective on the other gateway after "
          << std::chrono::duration_cast<Millis>(Clock::now() - revokedAt).count() << " ms");
  CHECK(request(a.port, "DELETE", "/keys/" + std::to_string(k.id)).status == 409);
  CHECK(request(a.port, "DELETE", "/keys/999999").status == 404);
  CHECK(request(a.port, "DELETE", "/keys/abc").status == 400);
}

void injectionIsData(const std::string& kind) {
  TempDir dir;
  Backend backend;
  Gateway gw(storeSpec(backend.port, freshStore(kind, dir)));
  const std::string evil = "x'); DROP TABLE api_keys; -- \\\" ünïcødé";
  Json body = {{"name", evil}, {"plan", "big"}};
  Registered k = registerKey(gw.port, body.dump());
  const std::string path = "/echo/it's%20a%20'quote'%3B--";
  CHECK(request(gw.port, "GET", path, k.key).status == 200);
  Json keys = registeredOnly(json(request(gw.port, "GET", "/all_keys"))["keys"]);
  REQUIRE(keys.size() == 1);
  CHECK(keys[0]["name"] == evil);
  Json logs = logsWhenThere(gw.port, "key=" + k.prefix, 1);
  REQUIRE(logs.size() == 1);
  CHECK(logs[0]["path"] == path);
  // A filter value that would match everything if it were spliced into SQL matches nothing.
  HttpResponse r = request(gw.port, "GET", "/view_logs?key=%27%20OR%20%271%27%3D%271");
  REQUIRE(r.status == 200);
  CHECK(json(r)["logs"].empty());
  CHECK(request(gw.port, "GET", "/view_logs?limit=0").status == 400);
  CHECK(request(gw.port, "GET", "/view_logs?status=abc").status == 400);
  CHECK(request(gw.port, "GET", "/echo", k.key).status == 200);  // the tables are all still there

  // A request that cannot even be parsed is answered and logged too (without method or path).
  HttpClient raw;
  raw.connect(gw.port);
  raw.sendRaw("GET / HTTP/1.7\r\nHost: x\r\n\r\n");
  CHECK(raw.readResponse().status == 505);
  Json unparsable = logsWhenThere(gw.port, "status=505", 1);
  REQUIRE(unparsable.size() == 1);
  CHECK(unparsable[0]["method"] == "");
  CHECK(unparsable[0]["path"] == "");
  CHECK(unparsable[0]["listener"] == "test");
}

// ---- keys at rest -------------------------------------------------------------------------

// SHA-256 of `text` as lowercase hex, from coreutils' sha256sum: an oracle that is not
// FlowGuard's own digestKey.
std::string sha256Hex(const std::string& text) {
  TempDir dir;
  writeFile(dir.file("in"), text);
  Process p({"/bin/sh", "-c", "exec sha256sum <'" + dir.file("in") + "' >'" + dir.file("out") + "'"},
            dir.path());
  REQUIRE(p.waitExit(10s) == std::optional<int>(0));
  const std::string out = readFile(dir.file("out"));
  REQUIRE(out.size() >= 64);
  return out.substr(0, 64);
}

std::string fromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

// Everything the database holds, as named byte strings: for SQLite the database file and its
// -wal/-shm/-journal companions byte for byte; for PostgreSQL a pg_dump of the database (every
// table's rows, bytea as hex).
std::vector<std::pair<std::string, std::string>> databaseAtRest(const std::string& url,
                                                                const TempDir& dumpDir) {
  std::vector<std::pair<std::string, std::string>> parts;
  const std::string sqlite = "sqlite://";
  if (url.rfind(sqlite, 0) == 0) {
    const std::filesystem::path file = url.substr(sqlite.size());
    for (const auto& entry : std::filesystem::directory_iterator(file.parent_path())) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(file.filename().string(), 0) == 0)
        parts.emplace_back(name, readFile(entry.path().string()));
    }
    REQUIRE(!parts.empty());
    return parts;
  }
  const std::string out = dumpDir.file("dump.sql");
  Process dump({postgresBinDir() + "/pg_dump", "--dbname=" + url, "--file=" + out}, dumpDir.path());
  const std::optional<int> status = dump.waitExit(60s);
  INFO("pg_dump log: " << dump.logTail());
  REQUIRE(status == std::optional<int>(0));
  parts.emplace_back("pg_dump", readFile(out));
  return parts;
}

// No piece of a key beyond its public prefix (at most a third of it: the part /all_keys and the
// logs show) is stored, raw or hex-encoded, in any of `parts`; the key's SHA-256 is (so the scan
// provably reads the rows: one that read nothing would pass the first half vacuously).
void checkNoPlaintextKey(const std::vector<std::pair<std::string, std::string>>& parts,
                         const std::string& key) {
  CAPTURE(key);
  const std::string secret = key.substr(key.size() / 3);
  constexpr size_t kWindow = 12;  // twelve characters of a key do not turn up by chance
  REQUIRE(secret.size() >= kWindow);
  for (const auto& part : parts) {
    const std::string& bytes = part.second;
    std::string found;
    for (size_t i = 0; i + kWindow <= secret.size(); ++i) {
      const std::string piece = secret.substr(i, kWindow);
      if (bytes.find(piece) != std::string::npos) found += " '" + piece + "'";
      if (bytes.find(toHex(piece)) != std::string::npos) found += " hex('" + piece + "')";
    }
    CHECK_MESSAGE(found.empty(), part.first << " holds pieces of the plaintext key:" << found);
  }
  const std::string digestHex = sha256Hex(key);
  const std::string digest = fromHex(digestHex);
  bool digestFound = false;
  for (const auto& part : parts) {
    digestFound = digestFound || part.second.find(digest) != std::string::npos ||
                  part.second.find(digestHex) != std::string::npos;
  }
  CHECK_MESSAGE(digestFound, "SHA-256 " << digestHex << " not found in the database");
}

void noPlaintextKeysAtRest(const std::string& kind) {
  TempDir dir;
  Backend backend;
  const std::string url = freshStore(kind, dir);
  Gateway gw(storeSpec(backend.port, url));
  const std::string yamlKey = "yaml-static-key-0001";
  Registered a = registerKey(gw.port, R"({"name": "at-rest-a", "plan": "big"})");
  Registered b = registerKey(gw.port, R"({"plan": "big"})");
  // Used every way a key reaches the gateway: the header, and in the path of /metrics/{key}
  // (which the request log must redact).
  for (const std::string& key : {a.key, b.key, yamlKey}) {
    CHECK(request(gw.port, "GET", "/echo", key).status == 200);
    CHECK(request(gw.port, "GET", "/any-metrics/" + key).status == 200);
  }
  CHECK(request(gw.port, "GET", "/metrics/" + a.key, a.key).status == 200);
  // Wait until the request log holds a's rows (echo, any-metrics, metrics): what it writes is
  // in the files now.
  REQUIRE(logsWhenThere(gw.port, "key=" + a.prefix, 2).size() >= 2);
  TempDir dumps;
  {
    INFO("while the gateway runs");
    const auto parts = databaseAtRest(url, dumps);
    for (const std::string& key : {a.key, b.key, yamlKey}) checkNoPlaintextKey(parts, key);
  }
  REQUIRE(gw.process.stop() == 0);  // every batch written, the files closed
  {
    INFO("after the gateway stopped");
    const auto parts = databaseAtRest(url, dumps);
    for (const std::string& key : {a.key, b.key, yamlKey}) checkNoPlaintextKey(parts, key);
  }
}

}  // namespace

TEST_CASE("sqlite: register, use a key, see it in /all_keys, /view_logs and /metrics/{key}") {
  registerUseAndReport("sqlite");
}
TEST_CASE("postgres: register, use a key, see it in /all_keys, /view_logs and /metrics/{key}") {
  registerUseAndReport("postgres");
}
TEST_CASE("sqlite: registered keys survive a gateway restart") {
  restartKeepsKeys("sqlite");
}
TEST_CASE("postgres: registered keys survive a gateway restart") {
  restartKeepsKeys("postgres");
}
TEST_CASE("sqlite: a reload that swaps the yaml key revokes the old one's row and adds the new one's") {
  yamlKeysFollowReloads("sqlite");
}
TEST_CASE("postgres: a reload that swaps the yaml key revokes the old one's row and adds the new one's") {
  yamlKeysFollowReloads("postgres");
}
TEST_CASE("sqlite: two gateways on one database share keys and revocations") {
  twoGatewaysShareKeys("sqlite");
}
TEST_CASE("postgres: two gateways on one database share keys and revocations") {
  twoGatewaysShareKeys("postgres");
}
TEST_CASE("sqlite: the database files hold key digests, never a plaintext key") {
  noPlaintextKeysAtRest("sqlite");
}
TEST_CASE("postgres: the database holds key digests, never a plaintext key") {
  noPlaintextKeysAtRest("postgres");
}
TEST_CASE("sqlite: SQL injection attempts are stored and matched as data") {
  injectionIsData("sqlite");
}
TEST_CASE("postgres: SQL injection attempts are stored and matched as data") {
  injectionIsData("postgres");
}

TEST_CASE("postgres stopped mid-run: proxying goes on, /register is 503, logs resume after recovery") {
  PostgresServer pg;
  Backend backend;
  const std::string url = pg.createDatabase("fg_outage");
  // A queue of 20 records: the outage below overflows it. One worker, so records reach the
  // queue in the order the requests were made and "the newest" is well defined.
  GatewaySpec spec = storeSpec(backend.port, url, "log_queue: 20");
  spec.workers = 1;
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  // The store's counters, from the admin listener (its requests are not in the request log).
  auto store = [&] { return adminJson(adminPort, "/stats").at("store"); };
  Registered k = registerKey(gw.port, R"({"name": "before", "plan": "big"})");
  // The registration's record is written before the outage: the queue starts empty.
  Json s;
  REQUIRE_MESSAGE(waitUntil(
                      [&] {
                        s = store();
                        return s["logs_written"] == 1 && s["logs_queued"] == 0;
                      },
                      5s),
                  s.dump());
  CHECK(s["available"] == true);
  CHECK(s["outages"] == 0);

  pg.stop();
  // Known keys keep working; everything is answered, nothing hangs.
  HttpResponse reg = request(gw.port, "POST", "/register", {}, "{}");
  CHECK(reg.status == 503);
  CHECK(json(reg)["error"].get<std::string>().find("unavailable") != std::string::npos);
  CHECK(request(gw.port, "GET", "/all_keys").status == 503);
  constexpr int kOutage = 40;
  for (int i = 0; i < kOutage; ++i) {
    CHECK(request(gw.port, "GET", "/echo/outage-" + std::to_string(i), k.key).status == 200);
  }
  // 42 records for a queue of 20 while the database is gone: 22 dropped, the oldest.
  REQUIRE_MESSAGE(waitUntil(
                      [&] {
                        s = store();
                        return s["logs_queued"].get<uint64_t>() + s["logs_dropped"].get<uint64_t>() ==
                               kOutage + 2;
                      },
                      5s),
                  s.dump());
  CHECK(s["available"] == false);
  CHECK(s["logs_queued"] == 20);
  CHECK(s["logs_dropped"] == kOutage + 2 - 20);
  CHECK(s["outages"] == 1);

  pg.start();
  // Recovery, seen in the counters (no request is made, so nothing new is queued): the queue
  // is written out, and exactly it. (logs_queued drops to 0 when the store thread takes a
  // batch, before it is written: wait for the written count.)
  REQUIRE_MESSAGE(waitUntil(
                      [&] {
                        s = store();
                        return s["available"] == true && s["logs_queued"] == 0 &&
                               s["logs_written"].get<uint64_t>() >= 1 + 20;
                      },
                      20s),
                  s.dump());
  CHECK(s["logs_written"] == 1 + 20);
  CHECK(s["logs_dropped"] == kOutage + 2 - 20);
  CHECK(s["outages"] == 1);
  // The survivors are the newest 20: outage-20 .. outage-39, newest first; the 503s and the
  // older echoes went.
  Json logs = adminJson(adminPort, "/view_logs?limit=1000").at("logs");
  std::vector<std::string> paths;
  for (const Json& row : logs) paths.push_back(row["path"].get<std::string>());
  std::vector<std::string> expected;
  for (int i = kOutage - 1; i >= kOutage - 20; --i) expected.push_back("/echo/outage-" + std::to_string(i));
  expected.push_back("/register");  // from before the outage
  std::string seen;
  for (const std::string& path : paths) seen += " " + path;
  INFO("logged paths, newest first:" << seen);
  CHECK(paths == expected);

  // New registrations work again, and requests after it reach the log.
  REQUIRE(waitUntil([&] { return request(gw.port, "POST", "/register", {}, "{}").status == 201; }, 15s));
  CHECK(request(gw.port, "GET", "/echo/after", k.key).status == 200);
  Json after;
  const bool sawAfter = waitUntil(
      [&] {
        HttpResponse v = request(gw.port, "GET", "/view_logs?limit=1000&key=" + k.prefix);
        if (v.status != 200) return false;
        after = json(v)["logs"];
        return !after.empty() && after[0]["path"] == "/echo/after";
      },
      10s);
  CHECK(sawAfter);
  CHECK(after.size() == 21);
}
