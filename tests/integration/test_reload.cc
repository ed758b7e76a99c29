// Hot reload through a real gateway: the config file is rewritten on disk (in place, or
// written to a temp file and renamed over it) and applied by the file watcher, by SIGHUP or
// by the admin listener's POST /reload. Checked from the outside only: no request fails
// while configs alternate under load, a lowered rate limit bites at once, an invalid file
// leaves the old config serving and names file:line:column, and a cluster added by one
// reload and removed by the next serves, finishes its in-flight request and then lets go of
// its upstream connections; a listener moved to another address and new plans and yaml keys
// take effect the same way.
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

HttpResponse call(uint16_t port, const std::string& method, const std::string& path,
                  const std::string& headers = {}) {
  HttpClient c;
  c.connect(port);
  std::string raw = method + " " + path +
                    " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Requested-By: tests\r\n" +
                    headers;
  if (method == "POST") raw += "Content-Length: 0\r\n";
  c.sendRaw(raw + "\r\n");
  return c.readResponse();
}

long elapsedMs(Clock::time_point since) {
  return static_cast<long>(std::chrono::duration_cast<Millis>(Clock::now() - since).count());
}

// 1-based number of the first line of `text` that contains `needle` (0: none).
int lineOf(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  if (at == std::string::npos) return 0;
  int line = 1;
  for (size_t i = 0; i < at; ++i) line += text[i] == '\n' ? 1 : 0;
  return line;
}

// The lines of `text` that contain `needle`, for failure messages.
std::string linesWith(const std::string& text, const std::string& needle) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (line.find(needle) != std::string::npos) out += "  " + line + "\n";
    start = end + 1;
  }
  return out;
}

// A gateway with an admin listener whose config file the test rewrites while it runs. Every
// config it is given keeps the same listener and admin addresses, so every reload applies.
struct ReloadableGateway {
  // The admin listener starts after the listeners: its line is the one to wait for, so a
  // stranger on either port gets both picked again.
  explicit ReloadableGateway(const GatewaySpec& spec)
      : process(startOnFreePort(
            [&](uint16_t p) {
              port = p;
              adminPort = freeTcpPort();
              configPath = writeConfig(dir, yaml(spec));
              return std::vector<std::string>{binaryPath("flowguard"), "-c", configPath};
            },
            port, "flowguard: admin on", dir.path())) {
    process.waitForLog("flowguard: listener test on");
  }
  ~ReloadableGateway() {
    int status = process.stop();
    INFO("gateway log tail:\n" << process.logTail(60));
    INFO("config:\n" << readFile(configPath));
    CHECK(status == 0);
  }
  ReloadableGateway(const ReloadableGateway&) = delete;
  ReloadableGateway& operator=(const ReloadableGateway&) = delete;

  std::string yaml(const GatewaySpec& spec) const { return spec.yaml(port, adminPort); }
  // Truncate and write the file itself (what `echo > file` or a simple editor does).
  void saveInPlace(const std::string& text) const { writeFile(configPath, text); }
  // Write a temp file next to it and rename() it over the config (what vim or an atomic
  // deploy does): the watched inode goes away and a new one takes its place.
  void saveByRename(const std::string& text) const {
    const std::string temp = dir.file("flowguard.yaml.tmp");
    writeFile(temp, text);
    REQUIRE(std::rename(temp.c_str(), configPath.c_str()) == 0);
  }

  Json dump() const {
    HttpResponse r = call(adminPort, "GET", "/config_dump");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    return json(r);
  }
  uint64_t generation() const { return dump().at("generation").get<uint64_t>(); }
  // Polls /config_dump until `done` holds; returns that dump. Fails the test at the deadline.
  Json waitForDump(const std::function<bool(const Json&)>& done, Millis timeout,
                   const std::string& what) const {
    Json last;
    bool reached = waitUntil(
        [&] {
          last = dump();
          return done(last);
        },
        timeout);
    INFO("last /config_dump: " << last.dump());
    INFO("gateway log tail:\n" << process.logTail(20));
    REQUIRE_MESSAGE(reached, "within " << timeout.count() << " ms: " << what);
    return last;
  }
  Json waitForGeneration(uint64_t generation, Millis timeout) const {
    return waitForDump([&](const Json& d) { return d.at("generation").get<uint64_t>() >= generation; },
                       timeout, "generation " + std::to_string(generation));
  }

  TempDir dir;
  uint16_t port = 0;
  uint16_t adminPort = 0;
  std::string configPath;
  Process process;  // declared last: started once the members above exist
};

// ---- 1: alternating configs under load --------------------------------------------------

// /variant answers "variant-A" or "variant-B" from the gateway itself; /whoami goes to one of
// two clusters over the same two backends (the route's cluster shows in /config_dump).
GatewaySpec variantSpec(const std::vector<uint16_t>& ports, bool b) {
  GatewaySpec spec;
  spec.workers = 2;
  spec.routes = {std::string("{ match: { path: /variant }, direct_response: { status: 200, body: ") +
                     (b ? "variant-B" : "variant-A") + " } }",
                 std::string("{ match: { prefix: / }, cluster: ") + (b ? "mirror" : "backends") + " }"};
  spec.clusters = {clusterYaml("backends", ports, "retries: 0"),
                   clusterYaml("mirror", {ports.rbegin(), ports.rend()}, "retries: 0")};
  return spec;
}

struct LoadTally {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> variantA{0};
  std::atomic<uint64_t> variantB{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> connections{0};
  std::mutex mutex;
  std::vector<std::string> failures;  // the first few, for the report

  void fail(const std::string& what) {
    ++failed;
    std::lock_guard<std::mutex> lock(mutex);
    if (failures.size() < 20) failures.push_back(what);
  }
  void judge(const std::string& path, const HttpResponse& r) {
    if (r.status < 200 || r.status > 299) {
      fail("GET " + path + " -> " + std::to_string(r.status) + " " + r.body.substr(0, 200));
      return;
    }
    if (path == "/variant") {
      if (r.body == "variant-A") {
        ++variantA;
      } else if (r.body == "variant-B") {
        ++variantB;
      } else {
        fail("GET /variant -> unexpected body '" + r.body.substr(0, 100) + "'");
        return;
      }
    }
    ++ok;
  }
};

// One keep-alive connection for the whole run: a reload must neither close it nor fail a
// request on it. A connection that ends anyway is a failure, then replaced.
void keepAliveLoad(uint16_t port, const std::atomic<bool>& stop, LoadTally& tally) {
  HttpClient c;
  bool open = false;
  for (uint64_t i = 0; !stop; ++i) {
    const std::string path = i % 2 == 0 ? "/variant" : "/whoami";
    try {
      if (!open) {
        c.connect(port);
        open = true;
        ++tally.connections;
      }
      c.sendRaw(get(path));
      HttpResponse r = c.readResponse(10s);
      tally.judge(path, r);
      if (!r.keepAlive) {
        tally.fail("GET " + path + " on a keep-alive connection was answered with Connection: close");
        open = false;
      }
    } catch (const std::exception& e) {
      tally.fail("keep-alive GET " + path + ": " + e.what());
      open = false;
    }
  }
}

// A fresh connection per request: accept and the start of a request race every swap.
void newConnectionLoad(uint16_t port, const std::atomic<bool>& stop, LoadTally& tally) {
  for (uint64_t i = 0; !stop; ++i) {
    const std::string path = i % 2 == 0 ? "/variant" : "/whoami";
    try {
      tally.judge(path, httpGet(port, path, {}, 10s));
    } catch (const std::exception& e) {
      tally.fail("new-connection GET " + path + ": " + e.what());
    }
  }
}

}  // namespace

TEST_CASE("reload: 20 alternating reloads by signal, file rename and POST /reload under load lose nothing") {
  Backend b1("b1"), b2("b2");
  const std::vector<uint16_t> ports{b1.port, b2.port};
  ReloadableGateway gw(variantSpec(ports, false));
  Json first = gw.dump();
  REQUIRE(first.at("generation") == 1);
  CHECK(first.at("last_reload").is_null());
  CHECK(first.at("reloads") == Json({{"ok", 0}, {"failed", 0}}));
  REQUIRE(httpGet(gw.port, "/variant").body == "variant-A");

  LoadTally tally;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(keepAliveLoad, gw.port, std::cref(stop), std::ref(tally));
  threads.emplace_back(newConnectionLoad, gw.port, std::cref(stop), std::ref(tally));
  // Stop and join the load on every way out, a failed REQUIRE included.
  StopAndJoin joiner{stop, threads};
  REQUIRE(waitUntil([&] { return tally.ok >= 50; }, 10s));

  // A keep-alive connection that sits idle across each swap: its next request must see the
  // generation the dump reports.
  HttpClient watcher;
  watcher.connect(gw.port);
  uint64_t generation = 1;
  int adminReloads = 0;
  for (int i = 0; i < 20; ++i) {
    const bool toB = i % 2 == 0;
    const std::string text = gw.yaml(variantSpec(ports, toB));
    const std::string marker = toB ? R"("cluster":"mirror")" : R"("cluster":"backends")";
    const uint64_t seenBefore = toB ? tally.variantB.load() : tally.variantA.load();
    CAPTURE(i);
    // Always by rename: an in-place save is briefly empty, and with this much load the test
    // thread can be descheduled for longer than the debounce right there (the in-place case
    // has its own test below, without load).
    switch (i % 3) {
      case 0:
        gw.saveByRename(text);
        gw.process.signal(SIGHUP);
        break;
      case 1:
        gw.saveByRename(text);
        break;
      default: {
        gw.saveByRename(text);
        HttpResponse r = call(gw.adminPort, "POST", "/reload");
        REQUIRE_MESSAGE(r.status == 200, r.body);
        Json answer = json(r);
        CHECK(answer.at("result") == "ok");
        CHECK(answer.at("trigger") == "admin");
        CHECK(answer.at("generation").get<uint64_t>() > generation);
        ++adminReloads;
      }
    }
    // The file watcher may also pick up the save behind a signal or admin reload; wait for
    // the generation that carries this variant.
    Json d = gw.waitForDump(
        [&](const Json& dump) {
          return dump.at("generation").get<uint64_t>() > generation &&
                 dump.at("config").dump().find(marker) != std::string::npos;
        },
        10s, "reload " + std::to_string(i) + " to variant " + (toB ? "B" : "A"));
    CHECK(d.at("last_reload").at("result") == "ok");
    generation = d.at("generation").get<uint64_t>();
    watcher.sendRaw(get("/variant"));
    HttpResponse seen = watcher.readResponse();
    CHECK(seen.body == (toB ? "variant-B" : "variant-A"));
    CHECK(seen.keepAlive);
    // Let the load run on this variant before the next swap.
    const auto& counter = toB ? tally.variantB : tally.variantA;
    CHECK_MESSAGE(waitUntil([&] { return counter.load() >= seenBefore + 10; }, 5s),
                  "variant " << (toB ? "B" : "A") << " was not served after reload " << i);
  }
  stop = true;
  for (auto& t : threads) t.join();
  threads.clear();

  {
    std::lock_guard<std::mutex> lock(tally.mutex);
    std::string report;
    for (const auto& f : tally.failures) report += "  " + f + "\n";
    INFO("failed requests (first 20):\n" << report);
    CHECK(tally.failed == 0);
  }
  INFO("ok " << tally.ok.load() << ", A " << tally.variantA.load() << ", B " << tally.variantB.load());
  CHECK(tally.variantA > 0);
  CHECK(tally.variantB > 0);
  // What the waits above guarantee (50 before, ten of each variant after each reload), not a
  // throughput that a loaded machine may not reach.
  CHECK(tally.ok >= 50 + 20 * 10);
  // Four keep-alive connections for the whole run: no reload closed one.
  CHECK(tally.connections == 4);

  // The last reload (i = 19) went to variant A, and the counters tell the story.
  CHECK(httpGet(gw.port, "/variant").body == "variant-A");
  Json d = gw.dump();
  INFO("reload log lines:\n" << linesWith(gw.process.logText(), "reload"));
  CHECK(d.at("generation").get<uint64_t>() >= 21);
  CHECK(d.at("reloads").at("ok").get<uint64_t>() == d.at("generation").get<uint64_t>() - 1);
  CHECK(d.at("reloads").at("failed") == 0);
  const Json config = adminJson(gw.adminPort, "/stats").at("config");
  INFO("/stats config: " << config.dump());
  const Json& byTrigger = config.at("reloads_ok_by_trigger");
  const uint64_t bySignal = byTrigger.value("signal", uint64_t{0});
  const uint64_t byFile = byTrigger.value("file", uint64_t{0});
  const uint64_t byAdmin = byTrigger.value("admin", uint64_t{0});
  CHECK(byTrigger.size() <= 3);  // no other trigger
  CHECK(bySignal >= 1);
  // The seven renames, and maybe the watcher re-reading a save a signal or POST applied first.
  CHECK(byFile >= 7);
  CHECK(byAdmin == static_cast<uint64_t>(adminReloads));
  CHECK(bySignal + byFile + byAdmin == d.at("generation").get<uint64_t>() - 1);
  CHECK(config.at("generation") == d.at("generation"));
  CHECK(config.at("reloads_ok") == d.at("reloads").at("ok"));
  CHECK(config.at("reloads_failed") == 0);
}

// ---- 2: a lowered rate limit bites at once --------------------------------------------

namespace {

GatewaySpec limitSpec(uint16_t backendPort, const std::string& limit, const std::string& extraRoute = {}) {
  GatewaySpec spec;
  spec.workers = 2;
  spec.filters = {"{ name: auth, keys: [ { key: reload-key-0001, name: reloader } ] }",
                  "{ name: rate_limit, " + limit + " }"};
  if (!extraRoute.empty()) spec.routes.push_back(extraRoute);
  spec.routes.push_back("{ match: { prefix: / }, cluster: backends }");
  spec.clusters = {clusterYaml("backends", {backendPort}, "retries: 0")};
  return spec;
}

const std::string kGenerous = "rate: 1000/s, burst: 1000";
// An hour, not a minute: windows are aligned to the clock, and a minute boundary falling
// between the requests and the check after a reload (seen under TSan) refilled the window.
const std::string kThreePerHour = "algorithm: fixed_window, limit: 3, window: 1h";

std::vector<int> keyedStatuses(uint16_t port, int count) {
  std::vector<int> statuses;
  for (int i = 0; i < count; ++i) {
    HttpClient c;
    c.connect(port);
    c.sendRaw(get("/echo", "X-API-Key: reload-key-0001\r\nConnection: close\r\n"));
    HttpResponse r = c.readResponse();
    if (r.status == 429) CHECK_FALSE(r.header("Retry-After").empty());
    statuses.push_back(r.status);
  }
  return statuses;
}

}  // namespace

TEST_CASE("reload: a lowered rate limit applies as soon as the save is seen, by rename and in place") {
  Backend b1("b1");
  ReloadableGateway gw(limitSpec(b1.port, kGenerous));
  CHECK(keyedStatuses(gw.port, 5) == std::vector<int>(5, 200));
  const std::vector<int> threeThenLimited{200, 200, 200, 429};

  for (const bool inPlace : {false, true}) {
    CAPTURE(inPlace);
    const uint64_t generation = gw.generation();
    const std::string lowered = gw.yaml(limitSpec(b1.port, kThreePerHour));
    const auto saved = Clock::now();
    if (inPlace) {
      gw.saveInPlace(lowered);
    } else {
      gw.saveByRename(lowered);
    }
    // The watcher's debounce is 100 ms and applying takes milliseconds: the deadline and the
    // bound below are generous sanity bounds (the test runs alone, RUN_SERIAL), only a watcher
    // that missed the save or a reload that waits for something else fails them.
    Json d = gw.waitForGeneration(generation + 1, 5s);
    INFO("applied " << elapsedMs(saved) << " ms after the save");
    CHECK(d.at("last_reload").at("trigger") == "file");
    CHECK(d.at("last_reload").at("result") == "ok");
    CHECK(d.at("last_reload").at("generation") == generation + 1);
    // A changed limit starts from a fresh counter: three pass, the fourth is limited.
    CHECK(keyedStatuses(gw.port, 4) == threeThenLimited);
    CHECK(elapsedMs(saved) < 5000);

    // Back to generous (a change again: fresh and generous) for the next round.
    gw.saveByRename(gw.yaml(limitSpec(b1.port, kGenerous)));
    gw.waitForGeneration(generation + 2, 10s);
    CHECK(keyedStatuses(gw.port, 5) == std::vector<int>(5, 200));
  }

  // A reload that leaves the limit alone keeps the counter: after 3 + 1 on a fresh window,
  // a reload that only adds a route still finds the key limited.
  const uint64_t generation = gw.generation();
  gw.saveInPlace(gw.yaml(limitSpec(b1.port, kThreePerHour)));
  gw.waitForGeneration(generation + 1, 10s);
  CHECK(keyedStatuses(gw.port, 4) == threeThenLimited);
  gw.saveByRename(gw.yaml(limitSpec(
      b1.port, kThreePerHour, "{ match: { path: /extra }, direct_response: { status: 200, body: x } }")));
  gw.waitForGeneration(generation + 2, 10s);
  CHECK(keyedStatuses(gw.port, 1) == std::vector<int>{429});

  // Saving the same bytes again, in place or by rename, is no change: no reload at all. The
  // watcher counts each save it read back unchanged; once it has seen one (the debounce may
  // fold both into one read), a reload would have happened already.
  const Json before = gw.dump();
  const uint64_t unchangedBefore =
      adminJson(gw.adminPort, "/stats").at("config").at("file_saves_unchanged").get<uint64_t>();
  const std::string same = readFile(gw.configPath);
  gw.saveInPlace(same);
  gw.saveByRename(same);
  Json config;
  CHECK_MESSAGE(waitUntil(
                    [&] {
                      config = adminJson(gw.adminPort, "/stats").at("config");
                      return config.at("file_saves_unchanged").get<uint64_t>() > unchangedBefore ||
                             config.at("generation") != before.at("generation");
                    },
                    10s),
                "the watcher did not read the same-bytes saves: " << config.dump());
  const Json after = gw.dump();
  CHECK(after.at("generation") == before.at("generation"));
  CHECK(after.at("reloads") == before.at("reloads"));
  CHECK(after.at("last_reload") == before.at("last_reload"));
  CHECK(keyedStatuses(gw.port, 1) == std::vector<int>{429});
}

// ---- 3: an invalid file changes nothing and says where it is wrong ---------------------

namespace {

GatewaySpec serveSpec(uint16_t backendPort, const std::string& variant, const std::string& clusterExtra) {
  GatewaySpec spec;
  spec.workers = 2;
  spec.routes = {"{ match: { path: /variant }, direct_response: { status: 200, body: " + variant + " } }",
                 "{ match: { prefix: / }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {backendPort}, clusterExtra)};
  return spec;
}

bool anyContains(const Json& errors, const std::string& needle) {
  if (!errors.is_array()) return false;
  for (const Json& e : errors) {
    if (e.is_string() && e.get<std::string>().find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("reload: an invalid file keeps the old config serving and names file:line:column") {
  Backend b1("b1");
  ReloadableGateway gw(serveSpec(b1.port, "variant-A", "connect_timeout: 1s"));
  REQUIRE(httpGet(gw.port, "/variant").body == "variant-A");

  // A bad value on a known line and column.
  const std::string invalid = gw.yaml(serveSpec(b1.port, "variant-B", "connect_timeout: soon"));
  const int line = lineOf(invalid, "connect_timeout: soon");
  REQUIRE(line > 0);
  const size_t lineStart = invalid.rfind('\n', invalid.find("connect_timeout: soon")) + 1;
  const size_t column = invalid.find("soon", lineStart) - lineStart + 1;
  const std::string where = "flowguard.yaml:" + std::to_string(line) + ":";
  const std::string whereColumn = where + std::to_string(column) + ":";
  CAPTURE(whereColumn);

  gw.saveInPlace(invalid);
  Json d = gw.waitForDump([](const Json& dump) { return !dump.at("last_reload").is_null(); }, 10s,
                          "a reload attempt after the invalid save");
  const Json& attempt = d.at("last_reload");
  CHECK(attempt.at("trigger") == "file");
  CHECK(attempt.at("result") == "error");
  CHECK(attempt.at("generation") == 1);
  REQUIRE(attempt.at("at").is_string());
  CHECK(std::regex_search(attempt.at("at").get<std::string>(),
                          std::regex(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})")));
  CHECK(d.at("generation") == 1);
  CHECK(d.at("reloads") == Json({{"ok", 0}, {"failed", 1}}));
  INFO("errors: " << attempt.at("errors").dump());
  CHECK(anyContains(attempt.at("errors"), where));
  CHECK(anyContains(attempt.at("errors"), whereColumn));
  CHECK(anyContains(attempt.at("errors"), "connect_timeout"));
  // The config in force is still the old one, in the dump and on the wire.
  CHECK(d.at("config").dump().find("\"connect_timeout_ms\":1000") != std::string::npos);
  CHECK(httpGet(gw.port, "/variant").body == "variant-A");
  CHECK(httpGet(gw.port, "/whoami").status == 200);
  const std::string log = gw.process.waitForLog("flowguard: reload (file) failed: ", 10s);
  CHECK(log.find(where) != std::string::npos);

  // The admin trigger answers the same errors with a 400, and changes nothing.
  HttpResponse r = call(gw.adminPort, "POST", "/reload");
  CHECK(r.status == 400);
  Json answer = json(r);
  CHECK(answer.at("result") == "error");
  CHECK(answer.at("generation") == 1);
  CHECK(anyContains(answer.at("errors"), whereColumn));
  CHECK(gw.dump().at("last_reload").at("trigger") == "admin");

  // So does SIGHUP, in the log.
  gw.process.signal(SIGHUP);
  gw.process.waitForLog("flowguard: reload (signal) failed: ", 10s);
  d = gw.waitForDump([](const Json& dump) { return dump.at("reloads").at("failed") == 3; }, 10s,
                     "three failed reloads");
  CHECK(d.at("last_reload").at("trigger") == "signal");
  CHECK(d.at("generation") == 1);

  // Broken YAML syntax, by rename: still the file's name in the error, still serving.
  std::string broken = gw.yaml(serveSpec(b1.port, "variant-B", "connect_timeout: 2s"));
  broken.replace(broken.find("connect_timeout: 2s }"), 21, "connect_timeout: 2s");
  gw.saveByRename(broken);
  d = gw.waitForDump([](const Json& dump) { return dump.at("reloads").at("failed") == 4; }, 10s,
                     "the syntax error's failed reload");
  INFO("errors: " << d.at("last_reload").at("errors").dump());
  CHECK(anyContains(d.at("last_reload").at("errors"), "flowguard.yaml:"));
  CHECK(httpGet(gw.port, "/variant").body == "variant-A");

  // A valid save applies.
  gw.saveByRename(gw.yaml(serveSpec(b1.port, "variant-B", "connect_timeout: 2s")));
  d = gw.waitForGeneration(2, 10s);
  CHECK(d.at("last_reload").at("result") == "ok");
  CHECK(d.at("last_reload").at("trigger") == "file");
  CHECK(d.at("last_reload").at("errors").empty());
  CHECK(d.at("reloads") == Json({{"ok", 1}, {"failed", 4}}));
  CHECK(d.at("config").dump().find("\"connect_timeout_ms\":2000") != std::string::npos);
  CHECK(httpGet(gw.port, "/variant").body == "variant-B");
  CHECK(gw.process.logText().find("flowguard: reload (file): generation 2 applied") != std::string::npos);
}

// ---- 4: a cluster added, used, and removed under an in-flight request ------------------

namespace {

GatewaySpec extraSpec(uint16_t mainPort, uint16_t extraPort, bool withExtra) {
  GatewaySpec spec;
  spec.workers = 1;  // one pool per host: connection counts are exact
  if (withExtra) spec.routes.push_back("{ match: { prefix: /delay/ }, cluster: extra }");
  spec.routes.push_back("{ match: { path: /whoami }, cluster: backends }");
  spec.clusters = {clusterYaml("backends", {mainPort}, "retries: 0")};
  if (withExtra) spec.clusters.push_back(clusterYaml("extra", {extraPort}, "retries: 0"));
  return spec;
}

uint64_t connectionsOpen(const Backend& b) {
  return b.stats().at("connections_open").get<uint64_t>();
}

// Requests the backend has begun and not yet answered whole (its /_stats probe is counted as
// begun and not answered, hence the - 1): the event a test waits for instead of sleeping.
uint64_t inFlight(const Backend& b) {
  const Json s = b.stats();
  return s.at("requests").get<uint64_t>() - s.at("responses").get<uint64_t>() - 1;
}

}  // namespace

TEST_CASE(
    "reload: a cluster added by reload serves; removed, it finishes in-flight work and closes its pool") {
  Backend b1("b1"), b3("b3");
  ReloadableGateway gw(extraSpec(b1.port, b3.port, false));
  HttpClient kept;  // a keep-alive client across both reloads
  kept.connect(gw.port);
  auto ask = [&](const std::string& path) {
    kept.sendRaw(get(path));
    HttpResponse r = kept.readResponse();
    CHECK(r.keepAlive);
    return r;
  };
  HttpResponse r = ask("/whoami");
  REQUIRE(r.status == 200);
  CHECK(json(r).at("backend") == "b1");
  CHECK(ask("/delay/1").status == 404);
  const uint64_t b1Accepted = b1.connectionsAccepted();  // its own probe included

  gw.saveByRename(gw.yaml(extraSpec(b1.port, b3.port, true)));
  gw.waitForDump(
      [](const Json& d) {
        return d.at("generation") == 2 &&
               d.at("config").dump().find(R"("name":"extra")") != std::string::npos;
      },
      10s, "generation 2 with cluster extra");
  // The next request on the old keep-alive connection runs the new routes.
  r = ask("/delay/1");
  REQUIRE(r.status == 200);
  CHECK(json(r).at("backend") == "b3");
  CHECK(json(r).at("path") == "/delay/1");
  CHECK(json(ask("/whoami")).at("backend") == "b1");
  // The unchanged cluster kept its pooled connection: b1 saw no new one but this probe.
  CHECK(b1.connectionsAccepted() == b1Accepted + 1);

  // A slow request through the new cluster, in flight at b3 before the cluster goes away.
  HttpClient slow;
  slow.connect(gw.port);
  slow.sendRaw(get("/delay/3000"));
  REQUIRE(waitUntil([&] { return inFlight(b3) == 1; }, 10s));
  CHECK(connectionsOpen(b3) >= 2);  // this probe and the gateway's connection

  gw.saveByRename(gw.yaml(extraSpec(b1.port, b3.port, false)));
  gw.waitForDump(
      [](const Json& d) {
        return d.at("generation") == 3 &&
               d.at("config").dump().find(R"("name":"extra")") == std::string::npos;
      },
      10s, "generation 3 without cluster extra");
  // Observed, not assumed from the clock: b3 has not finished the slow answer, so the removal
  // landed while it was in flight (3 s leaves plenty of room even on a loaded machine).
  REQUIRE_MESSAGE(inFlight(b3) == 1, "the removal must land while /delay/3000 is in flight");
  CHECK(ask("/delay/1").status == 404);
  CHECK(httpGet(gw.port, "/delay/1").status == 404);

  r = slow.readResponse(10s);
  CHECK(r.status == 200);
  CHECK(json(r).at("backend") == "b3");
  CHECK(json(r).at("delay_ms") == 3000);
  // Its work done, the removed cluster's connections close: only the probe is left at b3.
  uint64_t open = 0;
  CHECK_MESSAGE(waitUntil(
                    [&] {
                      open = connectionsOpen(b3);
                      return open == 1;
                    },
                    10s),
                "b3 still has " << open << " connections (the probe included)");
  CHECK(json(ask("/whoami")).at("backend") == "b1");
  CHECK(b1.connectionsAccepted() == b1Accepted + 2);
  CHECK(gw.dump().at("reloads") == Json({{"ok", 2}, {"failed", 0}}));
}

// ---- 5: health of an unchanged cluster survives a reload ------------------------------

TEST_CASE("reload: an unchanged cluster keeps its hosts' health and its health checks") {
  Backend b1("b1");
  auto spec = [&](const std::string& variant) {
    GatewaySpec s = serveSpec(b1.port, variant,
                              "retries: 0, health_check: { path: /health, interval: 300ms, timeout: 200ms, "
                              "healthy_threshold: 2, unhealthy_threshold: 2 }");
    s.workers = 1;
    return s;
  };
  ReloadableGateway gw(spec("variant-A"));
  auto hostHealth = [&] {
    return json(call(gw.adminPort, "GET", "/clusters")).at("clusters").at(0).at("hosts").at(0).at("health");
  };
  REQUIRE(waitUntil([&] { return hostHealth() == "healthy"; }, 10s));
  b1.setFault(R"({"healthy": false})");
  REQUIRE(waitUntil([&] { return hostHealth() == "unhealthy"; }, 10s));

  // A reload that leaves the cluster alone: a fresh host would start healthy and need two
  // failed checks (600 ms) to be unhealthy again, so this look comes well before that.
  gw.saveByRename(gw.yaml(spec("variant-B")));
  gw.waitForGeneration(2, 10s);
  CHECK(hostHealth() == "unhealthy");
  CHECK(httpGet(gw.port, "/variant").body == "variant-B");
  // The checks still run after the reload: the host comes back.
  b1.setFault(R"({"healthy": null})");
  CHECK(waitUntil([&] { return hostHealth() == "healthy"; }, 10s));
}

// ---- 6: a listener moves to another address ---------------------------------------------

TEST_CASE("reload: a listener moved to a new address serves there; the old one finishes and closes") {
  Backend b1("b1");
  GatewaySpec spec = proxySpec({b1.port}, "retries: 0");
  spec.filters = {"{ name: metrics }"};
  ReloadableGateway gw(spec);
  const uint16_t oldPort = gw.port;
  const uint16_t newPort = freeTcpPort();

  HttpClient idle;  // keep-alive, between requests when the reload lands
  idle.connect(oldPort);
  idle.sendRaw(get("/before"));
  REQUIRE(idle.readResponse().status == 200);
  HttpClient slow;  // a request in flight on the old address
  slow.connect(oldPort);
  slow.sendRaw(get("/delay/3000"));
  // In flight once b1 has it (not after a guessed sleep).
  REQUIRE(waitUntil([&] { return inFlight(b1) == 1; }, 10s));
  const auto requestsBefore =
      json(call(gw.adminPort, "GET", "/stats")).at("listeners").at("test").at("requests");

  std::string text = gw.yaml(spec);
  const std::string oldAddress = "127.0.0.1:" + std::to_string(oldPort);
  REQUIRE(text.find(oldAddress) != std::string::npos);
  text.replace(text.find(oldAddress), oldAddress.size(), "127.0.0.1:" + std::to_string(newPort));
  gw.saveByRename(text);
  gw.waitForGeneration(2, 10s);
  // The move landed while the slow request was still in flight (observed, not assumed).
  REQUIRE_MESSAGE(inFlight(b1) == 1, "the move must land while /delay/3000 is in flight");

  CHECK(httpGet(newPort, "/after").status == 200);
  // The old socket is closed (the new one was listening before it went). Asked of the
  // gateway's own sockets: a connect to the old port could reach whoever took it since.
  const std::set<uint16_t> listening = listeningPorts(gw.process.pid());
  CHECK(listening.contains(newPort));
  CHECK_FALSE(listening.contains(oldPort));
  // The idle connection is closed, the one in flight gets its whole answer, then closes.
  CHECK(idle.peerClosed(2s));
  HttpResponse r = slow.readResponse(10s);
  CHECK(r.status == 200);
  CHECK(json(r).at("delay_ms") == 3000);
  CHECK_FALSE(r.keepAlive);
  CHECK(slow.peerClosed(2s));
  // Same listener name: its metrics carried on over the move.
  const auto requestsAfter =
      json(call(gw.adminPort, "GET", "/stats")).at("listeners").at("test").at("requests");
  CHECK(requestsAfter.get<uint64_t>() >= requestsBefore.get<uint64_t>() + 2);
  gw.port = newPort;  // for the fixture's goodbye
}

// ---- 7: plans and yaml keys ---------------------------------------------------------------

TEST_CASE("reload: new plans reach registered keys, yaml keys are added and removed") {
  Backend b1("b1");
  TempDir data;
  auto spec = [&](const std::string& yamlKey, const std::string& plan) {
    GatewaySpec s = proxySpec({b1.port}, "retries: 0");
    s.filters = {
        "{ name: auth, keys: [ { key: " + yamlKey + ", name: yaml } ], exempt: [ { path: /register } ] }",
        "{ name: rate_limit, rate: 1000/s, burst: 1000 }"};
    s.routes.insert(s.routes.begin(), "{ match: { path: /register, methods: [POST] }, handler: register }");
    s.topLevel = {"storage: { url: \"sqlite://" + data.file("keys.db") + "\", key_poll_interval: 100ms }",
                  "plans: { free: " + plan + " }"};
    return s;
  };
  ReloadableGateway gw(spec("yaml-key-one-0001", "{ rate: 1000/s, burst: 1000 }"));
  auto keyed = [&](const std::string& key) {
    return httpGet(gw.port, "/whoami", {{"X-API-Key", key}}).status;
  };
  HttpResponse reg = call(gw.port, "POST", "/register");
  REQUIRE_MESSAGE(reg.status == 201, reg.body);
  const std::string registered = json(reg).at("api_key").get<std::string>();
  for (int i = 0; i < 5; ++i) REQUIRE(keyed(registered) == 200);
  CHECK(keyed("yaml-key-one-0001") == 200);
  CHECK(keyed("yaml-key-two-0002") == 401);

  gw.saveByRename(gw.yaml(spec("yaml-key-two-0002", "{ algorithm: fixed_window, limit: 2, window: 1m }")));
  gw.waitForGeneration(2, 10s);
  // The registered key's plan is now 2 a minute: a fresh counter under the new limit.
  CHECK(keyed(registered) == 200);
  CHECK(keyed(registered) == 200);
  CHECK(keyed(registered) == 429);
  CHECK(keyed("yaml-key-one-0001") == 401);
  CHECK(keyed("yaml-key-two-0002") == 200);
  // What /register hands out now says so, too.
  HttpResponse second = call(gw.port, "POST", "/register");
  REQUIRE_MESSAGE(second.status == 201, second.body);
  CHECK(json(second).at("limits").at("requests") == 2);
}

// ---- 8: upstream host names -----------------------------------------------------------------

TEST_CASE("reload: upstream host names resolve at load; one that does not is refused at its place") {
  Backend b1("b1");
  char name[256] = {0};
  REQUIRE(gethostname(name, sizeof(name) - 1) == 0);  // this machine's name, from /etc/hosts
  auto spec = [&](const std::string& host) {
    GatewaySpec s;
    s.workers = 1;
    s.routes = {"{ match: { prefix: / }, cluster: named }"};
    s.clusters = {"{ name: named, hosts: [\"" + host + "\"], retries: 0 }"};
    return s;
  };
  ReloadableGateway gw(spec(std::string(name) + ":" + std::to_string(b1.port)));
  HttpResponse r = httpGet(gw.port, "/whoami");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(json(r).at("backend") == "b1");

  const std::string text = gw.yaml(spec("no-such-host.invalid:80"));
  gw.saveByRename(text);
  Json d = gw.waitForDump([](const Json& dump) { return !dump.at("last_reload").is_null(); }, 10s,
                          "a reload attempt");
  CHECK(d.at("last_reload").at("result") == "error");
  const std::string where = "flowguard.yaml:" + std::to_string(lineOf(text, "name: named")) + ":";
  CHECK(anyContains(d.at("last_reload").at("errors"), where));
  CHECK(anyContains(d.at("last_reload").at("errors"), "cannot resolve host 'no-such-host.invalid'"));
  CHECK(d.at("generation") == 1);
  CHECK(httpGet(gw.port, "/whoami").status == 200);  // still the running config
}
