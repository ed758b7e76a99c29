// OutlierDetector against hand-built hosts and a fake monotonic clock (the nowMs argument).
#include "upstream/outlier_detector.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "upstream/host_state.h"

using flowguard::config::ClusterConfig;
using flowguard::config::Duration;
using flowguard::upstream::AttemptResult;
using flowguard::upstream::HostState;
using flowguard::upstream::OutlierDetector;

namespace {

constexpr int64_t kBase = 1'000;
constexpr int64_t kMax = 2'500;
constexpr int64_t kStart = 100'000;  // an arbitrary monotonic origin, far from 0

// The detector keeps references to the config and the host list: keep them together.
struct Fixture {
  ClusterConfig cluster;
  std::vector<std::shared_ptr<HostState>> hosts;
  std::unique_ptr<OutlierDetector> detector;

  explicit Fixture(size_t hostCount = 4, uint32_t maxEjectionPercent = 100) {
    cluster.name = "backends";
    auto& od = cluster.outlierDetection;
    od.enabled = true;
    od.consecutive5xx = 3;
    od.consecutiveConnectFailures = 2;
    od.baseEjectionTime = Duration(kBase);
    od.maxEjectionTime = Duration(kMax);
    od.maxEjectionPercent = maxEjectionPercent;
    for (size_t i = 0; i < hostCount; ++i) {
      hosts.push_back(std::make_shared<HostState>("10.0.0." + std::to_string(i + 1) + ":80", true));
    }
    rebuild();
  }
  // After changing `cluster.outlierDetection` (the detector reads it live, but be explicit).
  void rebuild() { detector = std::make_unique<OutlierDetector>(cluster.outlierDetection, hosts); }

  HostState& host(size_t i) { return *hosts[i]; }
  bool record(size_t i, AttemptResult r, int64_t now) { return detector->record(host(i), r, now); }
  // Feeds `n` results; returns how many of them reported an ejection.
  int feed(size_t i, AttemptResult r, int n, int64_t now) {
    int ejected = 0;
    for (int k = 0; k < n; ++k) ejected += record(i, r, now) ? 1 : 0;
    return ejected;
  }
};

}  // namespace

TEST_CASE("consecutive 5xx up to the threshold eject for the base time") {
  Fixture f;
  CHECK_FALSE(f.record(0, AttemptResult::Http5xx, kStart));
  CHECK_FALSE(f.record(0, AttemptResult::Http5xx, kStart));
  CHECK_FALSE(f.host(0).ejected(kStart));
  CHECK(f.host(0).consecutive5xx == 2);
  CHECK(f.record(0, AttemptResult::Http5xx, kStart));
  CHECK(f.host(0).ejectedUntilMs == kStart + kBase);
  CHECK(f.host(0).ejections == 1);
  CHECK(f.host(0).consecutive5xx == 0);  // the count starts over after an ejection
  // Other hosts are untouched.
  CHECK(f.host(1).ejectedUntilMs == 0);
  CHECK(f.host(1).available(kStart));
}

TEST_CASE("available() and ejected() follow the clock") {
  Fixture f;
  CHECK(f.host(0).available(kStart));
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, kStart) == 1);
  CHECK(f.host(0).ejected(kStart));
  CHECK_FALSE(f.host(0).available(kStart));
  CHECK(f.host(0).ejected(kStart + kBase - 1));
  CHECK_FALSE(f.host(0).available(kStart + kBase - 1));
  CHECK_FALSE(f.host(0).ejected(kStart + kBase));
  CHECK(f.host(0).available(kStart + kBase));
  // An actively unhealthy host is unavailable even when not ejected.
  f.host(1).activeHealthy = false;
  CHECK_FALSE(f.host(1).ejected(kStart));
  CHECK_FALSE(f.host(1).available(kStart));
}

TEST_CASE("a success between 5xx resets the count") {
  Fixture f;
  CHECK(f.feed(0, AttemptResult::Http5xx, 2, kStart) == 0);
  CHECK_FALSE(f.record(0, AttemptResult::Success, kStart));
  CHECK(f.host(0).consecutive5xx == 0);
  CHECK(f.feed(0, AttemptResult::Http5xx, 2, kStart) == 0);
  CHECK_FALSE(f.host(0).ejected(kStart));
  CHECK(f.record(0, AttemptResult::Http5xx, kStart));
  CHECK(f.host(0).ejected(kStart));
}

TEST_CASE("gateway failures count like 5xx") {
  Fixture f;
  CHECK_FALSE(f.record(0, AttemptResult::GatewayFailure, kStart));
  CHECK_FALSE(f.record(0, AttemptResult::Http5xx, kStart));
  CHECK(f.record(0, AttemptResult::GatewayFailure, kStart));
  CHECK(f.host(0).ejectedUntilMs == kStart + kBase);

  Fixture g;
  CHECK(g.feed(1, AttemptResult::GatewayFailure, 3, kStart) == 1);
  CHECK(g.host(1).ejected(kStart));
}

TEST_CASE("connect failures have their own threshold") {
  Fixture f;  // consecutiveConnectFailures = 2, consecutive5xx = 3
  CHECK_FALSE(f.record(0, AttemptResult::ConnectFailure, kStart));
  CHECK(f.host(0).consecutiveConnectFailures == 1);
  CHECK(f.host(0).consecutive5xx == 0);  // not counted as a 5xx
  CHECK(f.record(0, AttemptResult::ConnectFailure, kStart));
  CHECK(f.host(0).ejectedUntilMs == kStart + kBase);

  SUBCASE("a success in between resets it") {
    Fixture g;
    CHECK_FALSE(g.record(0, AttemptResult::ConnectFailure, kStart));
    CHECK_FALSE(g.record(0, AttemptResult::Success, kStart));
    CHECK(g.host(0).consecutiveConnectFailures == 0);
    CHECK_FALSE(g.record(0, AttemptResult::ConnectFailure, kStart));
    CHECK_FALSE(g.host(0).ejected(kStart));
    CHECK(g.record(0, AttemptResult::ConnectFailure, kStart));
  }
  SUBCASE("5xx and connect failures are counted apart") {
    Fixture g;
    g.cluster.outlierDetection.consecutiveConnectFailures = 5;
    g.cluster.outlierDetection.consecutive5xx = 5;
    CHECK(g.feed(0, AttemptResult::Http5xx, 4, kStart) == 0);
    CHECK(g.feed(0, AttemptResult::ConnectFailure, 4, kStart) == 0);
    CHECK_FALSE(g.host(0).ejected(kStart));
    CHECK(g.record(0, AttemptResult::ConnectFailure, kStart));
  }
}

TEST_CASE("each further ejection lasts base x ejections, capped at the max") {
  Fixture f;  // base 1000, max 2500
  int64_t now = kStart;
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, now) == 1);
  CHECK(f.host(0).ejectedUntilMs == now + kBase);

  now += kBase;  // back now; fails again at once (no success, so no decay)
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, now) == 1);
  CHECK(f.host(0).ejections == 2);
  CHECK(f.host(0).ejectedUntilMs == now + 2 * kBase);

  now += 2 * kBase;
  CHECK(f.feed(0, AttemptResult::ConnectFailure, 2, now) == 1);
  CHECK(f.host(0).ejections == 3);
  CHECK(f.host(0).ejectedUntilMs == now + kMax);  // 3000 capped to 2500

  now += kMax;
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, now) == 1);
  CHECK(f.host(0).ejections == 4);
  CHECK(f.host(0).ejectedUntilMs == now + kMax);
}

TEST_CASE("an ejected host is not ejected again while out") {
  Fixture f;
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, kStart) == 1);
  // Answers of requests still in flight keep coming while it is out.
  CHECK(f.feed(0, AttemptResult::Http5xx, 10, kStart + 10) == 0);
  CHECK(f.feed(0, AttemptResult::ConnectFailure, 10, kStart + kBase - 1) == 0);
  CHECK(f.host(0).ejectedUntilMs == kStart + kBase);
  CHECK(f.host(0).ejections == 1);
}

TEST_CASE("max_ejection_percent bounds how many hosts are out at once") {
  SUBCASE("4 hosts at 50%: at most 2") {
    Fixture f(4, 50);
    const int64_t second = kStart + kBase / 2;  // host 1 goes out half a period after host 0
    CHECK(f.feed(0, AttemptResult::Http5xx, 3, kStart) == 1);
    CHECK(f.feed(1, AttemptResult::Http5xx, 3, second) == 1);
    CHECK(f.feed(2, AttemptResult::Http5xx, 3, second) == 0);
    CHECK(f.feed(3, AttemptResult::ConnectFailure, 2, second) == 0);
    CHECK_FALSE(f.host(2).ejected(second));
    CHECK_FALSE(f.host(3).ejected(second));
    CHECK(f.host(2).ejections == 0);

    // Once host 0 is back there is room again: host 2's next failure ejects it.
    int64_t later = kStart + kBase;
    CHECK_FALSE(f.host(0).ejected(later));
    CHECK(f.host(1).ejected(later));
    CHECK(f.record(2, AttemptResult::Http5xx, later));
    CHECK(f.host(2).ejectedUntilMs == later + kBase);
    // Hosts 1 and 2 are out now: host 3 still has to wait.
    CHECK_FALSE(f.record(3, AttemptResult::Http5xx, later));
    CHECK(f.feed(3, AttemptResult::Http5xx, 3, later) == 0);
  }
  SUBCASE("4 hosts at 10%: still 1") {
    Fixture f(4, 10);
    CHECK(f.feed(0, AttemptResult::Http5xx, 3, kStart) == 1);
    CHECK(f.feed(1, AttemptResult::Http5xx, 3, kStart) == 0);
    CHECK_FALSE(f.host(1).ejected(kStart));
  }
  SUBCASE("a single host at 50% may be ejected") {
    Fixture f(1, 50);
    CHECK(f.feed(0, AttemptResult::Http5xx, 3, kStart) == 1);
  }
  SUBCASE("0% never ejects") {
    Fixture f(4, 0);
    CHECK(f.feed(0, AttemptResult::Http5xx, 10, kStart) == 0);
    CHECK(f.feed(1, AttemptResult::ConnectFailure, 10, kStart) == 0);
    CHECK(f.host(0).ejectedUntilMs == 0);
  }
}

TEST_CASE("a zero consecutive threshold turns that detector off") {
  Fixture f;
  f.cluster.outlierDetection.consecutive5xx = 0;
  CHECK(f.feed(0, AttemptResult::Http5xx, 50, kStart) == 0);
  CHECK(f.feed(0, AttemptResult::GatewayFailure, 50, kStart) == 0);
  CHECK_FALSE(f.host(0).ejected(kStart));
  // The connect-failure detector still works.
  CHECK(f.feed(1, AttemptResult::ConnectFailure, 2, kStart) == 1);

  Fixture g;
  g.cluster.outlierDetection.consecutiveConnectFailures = 0;
  CHECK(g.feed(0, AttemptResult::ConnectFailure, 50, kStart) == 0);
  CHECK_FALSE(g.host(0).ejected(kStart));
  CHECK(g.feed(1, AttemptResult::Http5xx, 3, kStart) == 1);
}

TEST_CASE("a disabled detector never ejects") {
  Fixture f;
  f.cluster.outlierDetection.enabled = false;
  f.rebuild();
  for (auto r : {AttemptResult::Http5xx, AttemptResult::GatewayFailure, AttemptResult::ConnectFailure}) {
    CHECK(f.feed(0, r, 50, kStart) == 0);
  }
  CHECK(f.host(0).ejectedUntilMs == 0);
  CHECK(f.host(0).ejections == 0);
  CHECK(f.host(0).available(kStart));
}

TEST_CASE("the ejection multiplier decays after a quiet base period") {
  Fixture f;
  int64_t now = kStart;
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, now) == 1);
  now += kBase;
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, now) == 1);
  REQUIRE(f.host(0).ejections == 2);
  const int64_t back = now + 2 * kBase;  // when the second ejection ends
  REQUIRE(f.host(0).ejectedUntilMs == back);

  // Successes while ejected, right after return and just short of a base period: no decay.
  CHECK_FALSE(f.record(0, AttemptResult::Success, back - 1));
  CHECK_FALSE(f.record(0, AttemptResult::Success, back));
  CHECK_FALSE(f.record(0, AttemptResult::Success, back + kBase - 1));
  CHECK(f.host(0).ejections == 2);

  // A full base period after coming back: one off, and only one.
  CHECK_FALSE(f.record(0, AttemptResult::Success, back + kBase));
  CHECK(f.host(0).ejections == 1);
  CHECK_FALSE(f.host(0).ejected(back + kBase));
  CHECK(f.host(0).available(back + kBase));
  CHECK_FALSE(f.record(0, AttemptResult::Success, back + kBase));
  CHECK_FALSE(f.record(0, AttemptResult::Success, back + 2 * kBase - 1));
  CHECK(f.host(0).ejections == 1);

  // The next base period earns the next one; it never goes below zero.
  CHECK_FALSE(f.record(0, AttemptResult::Success, back + 2 * kBase));
  CHECK(f.host(0).ejections == 0);
  CHECK_FALSE(f.record(0, AttemptResult::Success, back + 10 * kBase));
  CHECK(f.host(0).ejections == 0);
  CHECK(f.host(0).available(back + 10 * kBase));

  // With the multiplier back at zero the next ejection is a first one again.
  const int64_t t = back + 10 * kBase;
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, t) == 1);
  CHECK(f.host(0).ejections == 1);
  CHECK(f.host(0).ejectedUntilMs == t + kBase);
}

TEST_CASE("decay waits for a long quiet period only once per base period") {
  // One success long after return lowers by one, not by the number of periods elapsed.
  Fixture f;
  f.cluster.outlierDetection.maxEjectionTime = Duration(10 * kBase);  // no cap in the way
  int64_t now = kStart;
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, now) == 1);
  now += kBase;
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, now) == 1);
  now += 2 * kBase;
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, now) == 1);
  REQUIRE(f.host(0).ejections == 3);
  const int64_t back = f.host(0).ejectedUntilMs;
  CHECK_FALSE(f.record(0, AttemptResult::Success, back + 5 * kBase));
  CHECK(f.host(0).ejections == 2);
  // The next ejection is the third again (3 x base), not the fourth.
  const int64_t t = back + 5 * kBase + 1;
  CHECK(f.feed(0, AttemptResult::Http5xx, 3, t) == 1);
  CHECK(f.host(0).ejections == 3);
  CHECK(f.host(0).ejectedUntilMs == t + 3 * kBase);
}

TEST_CASE("failures reported while a host is ejected do not count toward the next ejection") {
  // Requests sent before the ejection may still fail afterwards; once the host is back,
  // one more failure must not eject it again at once.
  flowguard::config::OutlierDetectionConfig config;
  config.enabled = true;
  config.consecutive5xx = 2;
  config.consecutiveConnectFailures = 0;
  config.baseEjectionTime = std::chrono::milliseconds(1000);
  config.maxEjectionTime = std::chrono::milliseconds(10000);
  config.maxEjectionPercent = 100;
  std::vector<std::shared_ptr<flowguard::upstream::HostState>> hosts{
      std::make_shared<flowguard::upstream::HostState>("h:1", true)};
  flowguard::upstream::OutlierDetector detector(config, hosts);
  auto& host = *hosts[0];
  using flowguard::upstream::AttemptResult;
  CHECK_FALSE(detector.record(host, AttemptResult::Http5xx, 0));
  CHECK(detector.record(host, AttemptResult::Http5xx, 0));  // ejected until 1000
  for (int i = 0; i < 5; ++i) CHECK_FALSE(detector.record(host, AttemptResult::Http5xx, 500));
  CHECK_FALSE(detector.record(host, AttemptResult::Http5xx, 1000));  // back: first failure only
  CHECK(host.available(1000));
  CHECK(detector.record(host, AttemptResult::Http5xx, 1001));  // second in a row: out again
}
