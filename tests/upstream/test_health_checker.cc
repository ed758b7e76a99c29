// HealthChecker on a test loop against a real loopback server: `expected_statuses` decides
// what a passing probe is (a 2xx outside the list fails, an expected 503 passes), and a
// /health that accepts the probe and never answers fails after `timeout` instead of leaving
// the host's verdict hanging forever.
#include "upstream/health_checker.h"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "tests/support/raw_upstream.h"
#include "tests/support/test_loop.h"
#include "tests/support/test_support.h"
#include "upstream/cluster_state.h"
#include "upstream/host_state.h"

using namespace std::chrono_literals;
using flowguard::config::ClusterConfig;
using flowguard::config::Duration;
using flowguard::test::RawUpstream;
using flowguard::test::TestLoop;
using flowguard::upstream::ClusterState;
using flowguard::upstream::ClusterStates;
using flowguard::upstream::HealthChecker;
using flowguard::upstream::HostState;

namespace {

// What a /health server answers with `status`: an empty body, and the connection closed
// (the probe sends Connection: close), as RawUpstream(healthAnswer(status), true) does.
std::string healthAnswer(int status) {
  return "HTTP/1.1 " + std::to_string(status) + " Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
}

ClusterConfig checkedCluster(uint16_t port, std::vector<std::pair<int, int>> expected, bool initiallyHealthy,
                             Duration interval, Duration timeout) {
  ClusterConfig c;
  c.name = "api";
  c.hosts.push_back({"127.0.0.1", port});
  c.healthCheck.enabled = true;
  c.healthCheck.path = "/health";
  c.healthCheck.interval = interval;
  c.healthCheck.timeout = timeout;
  c.healthCheck.healthyThreshold = 2;
  c.healthCheck.unhealthyThreshold = 2;
  c.healthCheck.expectedStatuses = std::move(expected);
  c.healthCheck.initiallyHealthy = initiallyHealthy;
  return c;
}

struct CheckRun {
  bool held = false;                           // the condition held before the deadline
  std::chrono::steady_clock::duration took{};  // from start() to then
};

// One cluster's shared state, as the gateway's main thread holds it, and its only host.
struct OneHost {
  explicit OneHost(const ClusterConfig& config) {
    clusters.emplace(config.name, std::make_shared<ClusterState>(config));
    host = clusters.at(config.name)->hosts()[0].get();
  }
  ClusterStates clusters;
  HostState* host = nullptr;
};

// Runs a HealthChecker over `one` until `done(host)` holds (or 10 s pass).
template <typename Done>
CheckRun runChecker(OneHost& one, Done done) {
  TestLoop loop;
  CheckRun run;
  const auto started = std::chrono::steady_clock::now();
  {
    HealthChecker checker(loop.get(), one.clusters);
    checker.start();
    run.held = loop.runUntil([&] { return done(*one.host); }, 10s);
    run.took = std::chrono::steady_clock::now() - started;
    checker.stop();
  }
  CHECK(loop.finish() == 0);  // the checker left no handle (probe socket, timer) open
  return run;
}

}  // namespace

TEST_CASE("health check: a status outside expected_statuses takes the host out") {
  // 204 is a success by HTTP's standards and by the default 200-399, but the config only
  // accepts 200: the probe must fail on the status alone.
  RawUpstream server(healthAnswer(204), /*closeAfterResponse=*/true);
  ClusterConfig config = checkedCluster(server.port, {{200, 200}}, true, Duration{50}, Duration{1000});
  OneHost one(config);
  HostState* host = one.host;
  const CheckRun run = runChecker(one, [](HostState& h) { return !h.activeHealthy.load(); });
  CHECK_MESSAGE(run.held, "host still healthy after 10 s of 204 answers with expected_statuses [200]");
  CHECK(server.heads >= 2);  // the verdict came from answers, not from connect failures
  CHECK(host->lastCheckStatus.load() == 204);
  CHECK(host->checkFailuresInARow.load() >= 2);
}

TEST_CASE("health check: an expected non-2xx status brings the host in") {
  // expected_statuses [503]: a host that answers 503 is what the operator called healthy.
  RawUpstream server(healthAnswer(503), /*closeAfterResponse=*/true);
  ClusterConfig config = checkedCluster(server.port, {{503, 503}}, false, Duration{50}, Duration{1000});
  OneHost one(config);
  HostState* host = one.host;
  const CheckRun run = runChecker(one, [](HostState& h) { return h.activeHealthy.load(); });
  CHECK_MESSAGE(run.held, "host still unhealthy after 10 s of 503 answers with expected_statuses [503]");
  CHECK(server.heads >= 2);
  CHECK(host->lastCheckStatus.load() == 503);
  CHECK(host->checkFailuresInARow.load() == 0);
}

TEST_CASE("health check: the default 200-399 does not accept a 503, nor [503] a 200") {
  // The other half of the two cases above: the same answers flip the verdict when the list
  // does not hold them, so neither passes merely because any answer arrived.
  {
    RawUpstream server(healthAnswer(503), /*closeAfterResponse=*/true);
    ClusterConfig config = checkedCluster(server.port, {{200, 399}}, true, Duration{50}, Duration{1000});
    OneHost one(config);
    HostState* host = one.host;
    const CheckRun run = runChecker(one, [](HostState& h) { return !h.activeHealthy.load(); });
    CHECK_MESSAGE(run.held, "503 accepted by expected_statuses [200-399]");
    CHECK(host->lastCheckStatus.load() == 503);
  }
  {
    RawUpstream server(healthAnswer(200), /*closeAfterResponse=*/true);
    ClusterConfig config = checkedCluster(server.port, {{503, 503}}, false, Duration{50}, Duration{1000});
    OneHost one(config);
    HostState* host = one.host;
    // Starts unhealthy and must stay so: wait for several answered probes, then look.
    const CheckRun run =
        runChecker(one, [&](HostState& h) { return server.heads >= 4 && h.lastCheckStatus.load() == 200; });
    REQUIRE(run.held);
    CHECK_FALSE(host->activeHealthy.load());
    CHECK(host->checkFailuresInARow.load() >= 2);
  }
}

TEST_CASE("health check: a /health that never answers fails after timeout") {
  // The server reads each probe and stays silent. With timeout 300ms and an interval of
  // 100ms, every probe must be given up at its timeout (closing its connection), and two
  // such failures take the host out. Without the timeout the first probe would wait
  // forever and the host would stay healthy.
  RawUpstream server("");  // reads each probe and never answers
  const Duration timeout{300};
  ClusterConfig config = checkedCluster(server.port, {{200, 399}}, true, Duration{100}, timeout);
  OneHost one(config);
  HostState* host = one.host;
  const CheckRun run = runChecker(one, [](HostState& h) { return !h.activeHealthy.load(); });
  CHECK_MESSAGE(run.held, "host still healthy 10 s after its /health stopped answering");
  // Two probes in a row each waited their whole timeout: a verdict sooner would mean the
  // probe was not waiting for an answer at all.
  CHECK(run.took >= 2 * timeout);
  CHECK(host->lastCheckStatus.load() == 0);  // no answer, not a status
  CHECK(host->checkFailuresInARow.load() >= 2);
  // The timed-out probes closed their connections (the server saw them go), so a hung
  // host does not pile up sockets on the checker's side.
  CHECK(flowguard::test::waitUntil([&] { return server.closedByPeer >= 2; }, 5s));
  CHECK(server.heads >= 2);
}
