// The /server dashboard in a real browser: headless Chromium loads the page from a running
// gateway's admin listener; every configured host must be rendered, and a host that starts
// failing its health checks must turn unhealthy on the page within a few seconds. A
// screenshot is kept as a test artifact (build dir/test-artifacts/dashboard.png). With
// traffic of known keys and a request log, the page must show nonzero rps, a p99, the
// busiest key by name and the logged requests, and an admin token reaches the API calls
// only through the page's #token= fragment.
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/browser.h"
#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// data-health of the card whose data-host is `address`; nullopt when there is none.
std::optional<std::string> cardHealth(const std::string& dom, const std::string& address) {
  const size_t host = dom.find("data-host=\"" + address + "\"");
  if (host == std::string::npos) return std::nullopt;
  const size_t tagStart = dom.rfind('<', host);
  const size_t tagEnd = dom.find('>', host);
  const std::string tag = dom.substr(tagStart, tagEnd - tagStart);
  const std::string key = "data-health=\"";
  const size_t at = tag.find(key);
  if (at == std::string::npos) return std::nullopt;
  return tag.substr(at + key.size(), tag.find('"', at + key.size()) - at - key.size());
}

// The text of the element with id `id` up to its first child tag ("" when absent): for the
// header tiles, whose value is their only text.
std::string textOf(const std::string& dom, const std::string& id) {
  const size_t at = dom.find("id=\"" + id + "\"");
  if (at == std::string::npos) return {};
  const size_t start = dom.find('>', at);
  if (start == std::string::npos) return {};
  return dom.substr(start + 1, dom.find('<', start) - start - 1);
}

// The inner HTML of the element with id `id` up to the closing tag `close` (e.g. "</tbody>").
std::string innerOf(const std::string& dom, const std::string& id, const std::string& close) {
  const size_t at = dom.find("id=\"" + id + "\"");
  if (at == std::string::npos) return {};
  const size_t start = dom.find('>', at) + 1;
  return dom.substr(start, dom.find(close, start) - start);
}

// The texts of every <td>...</td> in `html`, in order.
std::vector<std::string> cells(const std::string& html) {
  std::vector<std::string> out;
  for (size_t at = html.find("<td"); at != std::string::npos; at = html.find("<td", at + 1)) {
    const size_t start = html.find('>', at) + 1;
    out.push_back(html.substr(start, html.find('<', start) - start));
  }
  return out;
}

// "12.3 ms" / "1.2 s" / "0.45 ms" -> milliseconds; -1 when it is not such a value.
double parseMs(const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    const std::string unit = text.substr(used);
    if (unit == " ms") return v;
    if (unit == " s") return v * 1000;
  } catch (const std::exception&) {
  }
  return -1;
}

double parseNumber(const std::string& text) {
  try {
    return std::stod(text);
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

TEST_CASE("dashboard: every host is on the page, and a failing host turns unhealthy") {
  const std::string chromium = chromiumPath();
  REQUIRE_MESSAGE(!chromium.empty(),
                  "chromium is not installed (apt-get install chromium; scripts/test does)");
  Backend b1("b1"), b2("b2"), b3("b3");
  GatewaySpec spec = proxySpec({b1.port, b2.port, b3.port},
                               "health_check: { path: /health, interval: 200ms, timeout: 150ms, "
                               "healthy_threshold: 1, unhealthy_threshold: 2 }");
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  for (int i = 0; i < 9; ++i) CHECK(httpGet(gw.port, "/echo").status == 200);

  TempDir dir;
  const std::string url = "http://127.0.0.1:" + std::to_string(adminPort) + "/server";
  const std::string addresses[] = {"127.0.0.1:" + std::to_string(b1.port),
                                   "127.0.0.1:" + std::to_string(b2.port),
                                   "127.0.0.1:" + std::to_string(b3.port)};
  std::string dom = dumpDom(chromium, url, dir);
  INFO("dom (start): " << dom.substr(0, 3000));
  CHECK(dom.find("data-updated=\"") != std::string::npos);
  for (const std::string& address : addresses)
    CHECK(cardHealth(dom, address) == std::optional<std::string>("healthy"));
  // The same page by the name localhost: the admin listener's Host check lets it through, and
  // its reads (GET, no token) need nothing a browser would not send (issue 18).
  const std::string byName =
      dumpDom(chromium, "http://localhost:" + std::to_string(adminPort) + "/server", dir);
  INFO("dom (localhost): " << byName.substr(0, 3000));
  CHECK(cardHealth(byName, addresses[0]) == std::optional<std::string>("healthy"));

  // b2 starts failing its health checks: the page must show it within a few seconds.
  b2.setFault(R"({"healthy": false})");
  const auto failedAt = Clock::now();
  bool shown = false;
  while (!shown && Clock::now() - failedAt < 20s) {
    dom = dumpDom(chromium, url, dir);
    shown = cardHealth(dom, addresses[1]) == std::optional<std::string>("unhealthy");
  }
  const auto seconds = std::chrono::duration<double>(Clock::now() - failedAt).count();
  MESSAGE("host shown unhealthy on the page after " << seconds << " s");
  REQUIRE(shown);
  CHECK(seconds < 10);
  CHECK(cardHealth(dom, addresses[0]) == std::optional<std::string>("healthy"));
  CHECK(cardHealth(dom, addresses[2]) == std::optional<std::string>("healthy"));

  // A screenshot for people: laptop size.
  const char* binDir = std::getenv("FLOWGUARD_BIN_DIR");
  REQUIRE(binDir != nullptr);
  const std::string artifacts = std::string(binDir) + "/test-artifacts";
  ::mkdir(artifacts.c_str(), 0755);
  const std::string png = artifacts + "/dashboard.png";
  ::unlink(png.c_str());
  Process shot(chromiumArgv(chromium, {"--hide-scrollbars", "--window-size=1280,900", "--screenshot=" + png},
                            url, dir.file("profile")),
               dir.path());
  REQUIRE(shot.waitExit(60s).has_value());
  const std::string image = readFile(png);
  INFO("chromium log tail:\n" << shot.logTail());
  REQUIRE(image.size() > 1000);
  CHECK(image.substr(1, 3) == "PNG");
  MESSAGE("screenshot: " << png);
}

TEST_CASE("dashboard: rps, p99, busiest keys, log lines, and the admin token from #token=") {
  const std::string chromium = chromiumPath();
  REQUIRE_MESSAGE(!chromium.empty(),
                  "chromium is not installed (apt-get install chromium; scripts/test does)");
  Backend b1("b1");
  TempDir dataDir;
  const std::string adminToken = "dash-admin-token-5b1e0c";
  GatewaySpec spec = proxySpec({b1.port});
  spec.filters = {
      "{ name: auth, keys: [ { key: alpha-key-0123456789, name: alpha-busiest }, "
      "{ key: beta-key-9876543210, name: beta-quiet } ] }",
      "{ name: metrics, access_log: off }"};
  spec.topLevel = {"storage: { url: \"sqlite://" + dataDir.file("flowguard.db") +
                   "\", flush_interval: 50ms }"};
  spec.admin = true;
  spec.adminOptions = "token: " + adminToken;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;

  // Known traffic: alpha is the busiest key by far, beta has a few requests.
  auto send = [&](const std::string& key, const std::string& path) {
    return httpGet(gw.port, path, {{"X-API-Key", key}}).status;
  };
  for (int i = 0; i < 5; ++i) CHECK(send("beta-key-9876543210", "/dash/beta-quiet-path") == 200);
  for (int i = 0; i < 30; ++i) CHECK(send("alpha-key-0123456789", "/dash/alpha-marker-path") == 200);
  // rps needs traffic between two of the page's polls: keep alpha requests going while the
  // browser loads the page (the thread ends, and is joined, on every way out).
  std::atomic<bool> stop{false};
  std::atomic<int> loadFailures{0};
  std::vector<std::thread> threads;
  StopAndJoin joiner{stop, threads};
  threads.emplace_back([&] {
    while (!stop) {
      try {
        if (send("alpha-key-0123456789", "/dash/alpha-marker-path") != 200) ++loadFailures;
      } catch (const std::exception&) {
        ++loadFailures;
      }
      std::this_thread::sleep_for(5ms);  // pacing of the load, not synchronisation
    }
  });
  // The request log is written in batches: wait until the store has some of alpha's lines.
  const std::string bearer = "Bearer " + adminToken;
  REQUIRE(waitUntil(
      [&] {
        HttpResponse r = httpGet(adminPort, "/logs?limit=5", {{"Authorization", bearer}});
        return r.status == 200 && r.body.find("alpha-marker-path") != std::string::npos;
      },
      10s));

  TempDir dir;
  const std::string base = "http://127.0.0.1:" + std::to_string(adminPort) + "/server";

  // Without the token: the page itself loads (it holds no data), every API call is refused
  // and the page says how to pass the token.
  const std::string denied = dumpDom(chromium, base, dir);
  INFO("dom (no token): " << denied.substr(0, 4000));
  // (The page's own script holds these words too: look in the panels' notices only.)
  CHECK(textOf(denied, "hdr-notice").find("unauthorized (401)") != std::string::npos);
  CHECK(textOf(denied, "hdr-notice").find("/server#token=") != std::string::npos);
  CHECK(textOf(denied, "p-logs-notice").find("unauthorized (401)") != std::string::npos);
  CHECK(textOf(denied, "t-requests") == "–");
  CHECK(denied.find("alpha-busiest") == std::string::npos);
  CHECK(denied.find("alpha-marker-path") == std::string::npos);

  // With #token=: the page sends it as Authorization: Bearer on every poll. rps needs two
  // polls whose /stats uptimes (0.1 s steps) differ; under virtual time the polls may all
  // fall within one step, so the page is loaded again (at most 5 times) until the tile
  // shows a rate.
  std::string dom;
  for (int attempt = 0; attempt < 5; ++attempt) {
    dom = dumpDom(chromium, base + "#token=" + adminToken, dir, 10000);
    if (parseNumber(textOf(dom, "t-rps")) > 0) break;
  }
  stop = true;
  INFO("dom (token): " << dom.substr(0, 6000));
  for (const char* notice : {"hdr-notice", "p-keys-notice", "p-hosts-notice", "p-logs-notice"})
    CHECK_MESSAGE(textOf(dom, notice).empty(), notice << ": " << textOf(dom, notice));
  // Requests and rps: nonzero.
  CHECK(parseNumber(textOf(dom, "t-requests")) >= 35);
  const std::string rps = textOf(dom, "t-rps");
  MESSAGE("dashboard rps tile: " << rps << ", p99 tile: " << textOf(dom, "t-p99"));
  CHECK(parseNumber(rps) > 0);
  // p99: a latency value (proxied requests take more than nothing).
  CHECK(parseMs(textOf(dom, "t-p99")) > 0);
  // Busiest keys: alpha first, by name, then beta with its 5 requests.
  const std::vector<std::string> keyCells = cells(innerOf(dom, "keys", "</tbody>"));
  REQUIRE(keyCells.size() >= 10);
  CHECK(keyCells[0] == "alpha-busiest");
  CHECK(parseNumber(keyCells[1]) >= 30);
  CHECK(keyCells[5] == "beta-quiet");
  CHECK(keyCells[6] == "5");
  // Recent requests: lines from the request log, with their path and status.
  const std::string logs = innerOf(dom, "logs", "</section>");
  CHECK(logs.find("alpha-marker-path") != std::string::npos);
  CHECK(logs.find("class=\"log\"") != std::string::npos);
  CHECK(logs.find("no requests logged yet") == std::string::npos);
  // The token never reached the request log (it lives in the fragment, not in a URL path).
  HttpResponse logJson = httpGet(adminPort, "/logs?limit=100", {{"Authorization", bearer}});
  CHECK(logJson.body.find(adminToken) == std::string::npos);
  CHECK(loadFailures == 0);
}
