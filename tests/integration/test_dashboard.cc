// The /server dashboard in a real browser: headless Chromium loads the page from a running
// gateway's admin listener; every configured host must be rendered, and a host that starts
// failing its health checks must turn unhealthy on the page within a few seconds. A
// screenshot is kept as a test artifact (build dir/test-artifacts/dashboard.png).
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>

#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

std::string chromiumPath() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  return {};
}

std::vector<std::string> chromiumArgv(const std::string& chromium, std::vector<std::string> extra,
                                      const std::string& url, const std::string& profileDir) {
  std::vector<std::string> argv{chromium,
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--no-first-run",
                                "--disable-background-networking",
                                "--user-data-dir=" + profileDir,
                                "--virtual-time-budget=4000"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  return argv;
}

// The page's DOM after a few of its polls (chromium prints it on stdout; its own log lines
// on stderr end up in the same file, which does not matter for the searches below).
std::string dumpDom(const std::string& chromium, const std::string& url, const TempDir& dir) {
  Process browser(chromiumArgv(chromium, {"--dump-dom"}, url, dir.file("profile")), dir.path());
  auto status = browser.waitExit(60s);
  INFO("chromium log tail:\n" << browser.logTail());
  REQUIRE_MESSAGE(status.has_value(), "chromium did not finish within 60 s");
  return browser.logText();
}

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

}  // namespace

TEST_CASE("dashboard: every host is on the page, and a failing host turns unhealthy") {
  const std::string chromium = chromiumPath();
  REQUIRE_MESSAGE(!chromium.empty(),
                  "chromium is not installed (apt-get install chromium; scripts/test does)");
  Backend b1("b1"), b2("b2"), b3("b3");
  const uint16_t adminPort = freeTcpPort();
  GatewaySpec spec = proxySpec({b1.port, b2.port, b3.port},
                               "health_check: { path: /health, interval: 200ms, timeout: 150ms, "
                               "healthy_threshold: 1, unhealthy_threshold: 2 }");
  spec.topLevel = {"admin: { address: \"127.0.0.1:" + std::to_string(adminPort) + "\" }"};
  Gateway gw(spec);
  gw.process.waitForLog("flowguard: admin on");
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
