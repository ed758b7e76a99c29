// Headless Chromium for the browser tests (the dashboard, CORS from a page of another origin):
// where it is, its command line, and a page's DOM once its scripts ran.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace flowguard::test {

inline std::string chromiumPath() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  return {};
}

inline std::vector<std::string> chromiumArgv(const std::string& chromium, std::vector<std::string> extra,
                                             const std::string& url, const std::string& profileDir,
                                             int budgetMs = 4000) {
  std::vector<std::string> argv{chromium,
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--no-first-run",
                                "--disable-background-networking",
                                "--user-data-dir=" + profileDir,
                                "--virtual-time-budget=" + std::to_string(budgetMs)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  return argv;
}

// The page's DOM once its scripts ran for `budgetMs` of virtual time (chromium prints it on
// stdout; its own log lines on stderr end up in the same file, which does not matter for
// searches in it).
inline std::string dumpDom(const std::string& chromium, const std::string& url, const TempDir& dir,
                           int budgetMs = 4000) {
  Process browser(chromiumArgv(chromium, {"--dump-dom"}, url, dir.file("profile"), budgetMs), dir.path());
  auto status = browser.waitExit(60s);
  INFO("chromium log tail:\n" << browser.logTail());
  REQUIRE_MESSAGE(status.has_value(), "chromium did not finish within 60 s");
  return browser.logText();
}

}  // namespace flowguard::test
