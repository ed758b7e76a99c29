// ClusterState's circuit breakers and retry budget, and the pure chooseHost() decision.
#include "upstream/cluster_state.h"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

using flowguard::config::ClusterConfig;
using flowguard::config::Config;
using flowguard::upstream::chooseHost;
using flowguard::upstream::ClusterStat;
using flowguard::upstream::ClusterState;
using flowguard::upstream::HostStat;
using flowguard::upstream::HostChoice;

namespace {

ClusterConfig makeCluster(std::string name, int hostCount) {
  ClusterConfig c;
  c.name = std::move(name);
  for (int i = 0; i < hostCount; ++i) {
    c.hosts.push_back({"127.0.0.1", static_cast<uint16_t>(8001 + i)});
  }
  c.circuitBreakers.maxRequests = 3;
  c.circuitBreakers.maxPendingRequests = 2;
  c.circuitBreakers.maxConnections = 4;
  return c;
}

}  // namespace

TEST_CASE("acquireRequest stops at max_requests and counts the overflow") {
  ClusterConfig config = makeCluster("api", 2);
  ClusterState state(config);
  for (int i = 0; i < 3; ++i) CHECK(state.acquireRequest());
  CHECK(state.activeRequests() == 3);
  CHECK(state.stats().value(ClusterStat::OverflowRequests) == 0);
  CHECK_FALSE(state.acquireRequest());
  CHECK_FALSE(state.acquireRequest());
  CHECK(state.stats().value(ClusterStat::OverflowRequests) == 2);
  CHECK(state.activeRequests() == 3);  // a refused request holds no slot
  state.releaseRequest();
  CHECK(state.activeRequests() == 2);
  CHECK(state.acquireRequest());
  CHECK_FALSE(state.acquireRequest());
  CHECK(state.stats().value(ClusterStat::OverflowRequests) == 3);
  // Other breakers are independent.
  CHECK(state.stats().value(ClusterStat::OverflowPending) == 0);
  CHECK(state.pendingRequests() == 0);
}

TEST_CASE("ClusterSlot gives its slot back exactly once, when released or dropped") {
  using flowguard::upstream::ClusterSlot;
  ClusterConfig config = makeCluster("api", 2);
  ClusterState state(config);
  {
    ClusterSlot a, b, c, refused;
    CHECK(a.take(state, ClusterSlot::Kind::Request));
    CHECK(b.take(state, ClusterSlot::Kind::Request));
    CHECK(c.take(state, ClusterSlot::Kind::Request));
    CHECK_FALSE(refused.take(state, ClusterSlot::Kind::Request));  // max_requests: 3
    CHECK_FALSE(refused.held());
    CHECK(state.activeRequests() == 3);
    a.release();
    a.release();  // a second release gives nothing back twice
    CHECK(state.activeRequests() == 2);
    CHECK_FALSE(a.held());
  }
  CHECK(state.activeRequests() == 0);  // b and c went back when dropped; refused had none
}

TEST_CASE("HostAttempt: one active request per open attempt, its outcome recorded once") {
  using flowguard::upstream::HostAttempt;
  using flowguard::upstream::HostState;
  HostState first("127.0.0.1:1", true), second("127.0.0.1:2", true);
  {
    HostAttempt attempt;
    CHECK_FALSE(attempt.takeRecord());  // no attempt yet: nothing to record
    attempt.start(first);
    CHECK(first.stats.value(HostStat::Requests) == 1);
    CHECK(first.activeRequests.load() == 1);
    CHECK(attempt.takeRecord());
    CHECK_FALSE(attempt.takeRecord());  // a second outcome of the same attempt is not counted
    attempt.end();
    attempt.end();  // ending twice gives the active count back once
    CHECK(first.activeRequests.load() == 0);
    attempt.start(second);  // a retry on another host
    CHECK(attempt.takeRecord());
    CHECK(second.activeRequests.load() == 1);
  }
  CHECK(second.activeRequests.load() == 0);  // given back when the request was dropped
  CHECK(first.stats.value(HostStat::Requests) == 1);
  CHECK(second.stats.value(HostStat::Requests) == 1);
}

TEST_CASE("acquirePending stops at max_pending_requests and counts the overflow") {
  ClusterConfig config = makeCluster("api", 2);
  ClusterState state(config);
  CHECK(state.acquirePending());
  CHECK(state.acquirePending());
  CHECK_FALSE(state.acquirePending());
  CHECK(state.stats().value(ClusterStat::OverflowPending) == 1);
  CHECK(state.pendingRequests() == 2);
  state.releasePending();
  CHECK(state.acquirePending());
  CHECK_FALSE(state.acquirePending());
  CHECK(state.stats().value(ClusterStat::OverflowPending) == 2);
  CHECK(state.stats().value(ClusterStat::OverflowRequests) == 0);
}

TEST_CASE("acquireConnection stops at max_connections") {
  ClusterConfig config = makeCluster("api", 2);
  ClusterState state(config);
  for (int i = 0; i < 4; ++i) CHECK(state.acquireConnection());
  CHECK(state.activeConnections() == 4);
  CHECK_FALSE(state.acquireConnection());
  CHECK(state.activeConnections() == 4);
  state.releaseConnection();
  CHECK(state.activeConnections() == 3);
  CHECK(state.acquireConnection());
  CHECK_FALSE(state.acquireConnection());
  // Deliberately not counted here: HostPool counts overflowConnections only when the
  // request has no connection of its own to wait for (see host_pool.cc).
  CHECK(state.stats().value(ClusterStat::OverflowConnections) == 0);
}

TEST_CASE("retry budget: min_retries with nothing in flight") {
  ClusterConfig config = makeCluster("api", 2);
  REQUIRE(config.retryBudgetMinRetries == 3);
  REQUIRE(config.retryBudgetPercent == 20);
  ClusterState state(config);
  CHECK(state.acquireRetry());
  CHECK(state.acquireRetry());
  CHECK(state.acquireRetry());
  CHECK(state.stats().value(ClusterStat::Retries) == 3);
  CHECK(state.stats().value(ClusterStat::RetryBudgetExhausted) == 0);
  CHECK_FALSE(state.acquireRetry());
  CHECK_FALSE(state.acquireRetry());
  CHECK(state.stats().value(ClusterStat::RetryBudgetExhausted) == 2);
  CHECK(state.stats().value(ClusterStat::Retries) == 3);
  state.releaseRetry();
  CHECK(state.acquireRetry());
  CHECK(state.stats().value(ClusterStat::Retries) == 4);
  CHECK_FALSE(state.acquireRetry());
  CHECK(state.stats().value(ClusterStat::RetryBudgetExhausted) == 3);
}

TEST_CASE("retry budget: a percentage of the requests in flight") {
  ClusterConfig config = makeCluster("api", 2);
  config.circuitBreakers.maxRequests = 1000;
  ClusterState state(config);
  for (int i = 0; i < 100; ++i) REQUIRE(state.acquireRequest());
  for (int i = 0; i < 20; ++i) CHECK(state.acquireRetry());
  CHECK(state.stats().value(ClusterStat::Retries) == 20);
  CHECK_FALSE(state.acquireRetry());
  CHECK(state.stats().value(ClusterStat::RetryBudgetExhausted) == 1);

  // Fewer requests in flight shrink the budget (20% of 10 = 2 < min 3).
  ClusterState small(config);
  for (int i = 0; i < 10; ++i) REQUIRE(small.acquireRequest());
  for (int i = 0; i < 3; ++i) CHECK(small.acquireRetry());
  CHECK_FALSE(small.acquireRetry());
}

TEST_CASE("hosts() come from the config with the initial health") {
  SUBCASE("no health check: healthy") {
    ClusterConfig config = makeCluster("api", 3);
    config.healthCheck.enabled = false;
    config.healthCheck.initiallyHealthy = false;  // ignored without health checks
    ClusterState state(config);
    REQUIRE(state.hosts().size() == 3);
    CHECK(state.hosts()[0]->address == "127.0.0.1:8001");
    CHECK(state.hosts()[2]->address == "127.0.0.1:8003");
    for (const auto& h : state.hosts()) {
      CHECK(h->activeHealthy);
      CHECK(h->ejectedUntilMs == 0);
      CHECK(h->available(0));
    }
    CHECK(state.config() == config);  // its own copy: it may outlive the Config
  }
  SUBCASE("health check, initial_state healthy") {
    ClusterConfig config = makeCluster("api", 2);
    config.healthCheck.enabled = true;
    config.healthCheck.initiallyHealthy = true;
    ClusterState state(config);
    for (const auto& h : state.hosts()) CHECK(h->activeHealthy);
  }
  SUBCASE("health check, initial_state unhealthy") {
    ClusterConfig config = makeCluster("api", 2);
    config.healthCheck.enabled = true;
    config.healthCheck.initiallyHealthy = false;
    ClusterState state(config);
    REQUIRE(state.hosts().size() == 2);
    for (const auto& h : state.hosts()) {
      CHECK_FALSE(h->activeHealthy);
      CHECK_FALSE(h->available(0));
    }
  }
}

TEST_CASE("the cluster's outlier detector works on the cluster's own hosts") {
  ClusterConfig config = makeCluster("api", 2);
  config.outlierDetection.enabled = true;
  config.outlierDetection.consecutive5xx = 2;
  config.outlierDetection.baseEjectionTime = flowguard::config::Duration(500);
  ClusterState state(config);
  auto& host = *state.hosts()[1];
  CHECK_FALSE(state.outlierDetector().record(host, flowguard::upstream::AttemptResult::Http5xx, 1000));
  CHECK(state.outlierDetector().record(host, flowguard::upstream::AttemptResult::Http5xx, 1000));
  CHECK(host.ejectedUntilMs == 1500);
  CHECK(state.hosts()[0]->available(1000));
}

TEST_CASE("makeClusterStates builds one state per cluster") {
  Config config;
  config.clusters.push_back(makeCluster("api", 2));
  config.clusters.push_back(makeCluster("auth", 1));
  config.clusters.back().healthCheck.enabled = true;
  config.clusters.back().healthCheck.initiallyHealthy = false;
  auto states = flowguard::upstream::makeClusterStates(config);
  REQUIRE(states.size() == 2);
  REQUIRE(states.count("api") == 1);
  REQUIRE(states.count("auth") == 1);
  CHECK(states["api"]->config() == config.clusters[0]);
  CHECK(states["auth"]->config() == config.clusters[1]);
  CHECK(states["api"]->hosts().size() == 2);
  REQUIRE(states["auth"]->hosts().size() == 1);
  CHECK_FALSE(states["auth"]->hosts()[0]->activeHealthy);
  CHECK(states["api"]->hosts()[0]->activeHealthy);
  // Each state has its own breakers.
  CHECK(states["api"]->acquireRequest());
  CHECK(states["auth"]->activeRequests() == 0);

  CHECK(flowguard::upstream::makeClusterStates(Config{}).empty());
}

// ---- chooseHost ----

namespace {

template <size_t N>
HostChoice choose(const std::array<bool, N>& available, const std::array<bool, N>& tried, size_t& cursor,
                  bool panic = false) {
  return chooseHost(std::span<const bool>(available), std::span<const bool>(tried), cursor, panic);
}

}  // namespace

TEST_CASE("chooseHost: round robin from the cursor over available hosts") {
  std::array<bool, 3> available{true, true, true};
  std::array<bool, 3> tried{false, false, false};
  size_t cursor = 0;
  std::vector<int> order;
  for (int i = 0; i < 7; ++i) {
    HostChoice c = choose(available, tried, cursor);
    CHECK_FALSE(c.panic);
    order.push_back(c.index);
  }
  CHECK(order == std::vector<int>{0, 1, 2, 0, 1, 2, 0});
  CHECK(cursor == 1);

  size_t fromTwo = 2;
  CHECK(choose(available, tried, fromTwo).index == 2);
  CHECK(fromTwo == 0);  // wraps
  CHECK(choose(available, tried, fromTwo).index == 0);
  CHECK(fromTwo == 1);
}

TEST_CASE("chooseHost: skips unavailable hosts and moves the cursor past the choice") {
  std::array<bool, 4> available{true, false, false, true};
  std::array<bool, 4> tried{false, false, false, false};
  size_t cursor = 1;
  HostChoice c = choose(available, tried, cursor);
  CHECK(c.index == 3);
  CHECK_FALSE(c.panic);
  CHECK(cursor == 0);
  c = choose(available, tried, cursor);
  CHECK(c.index == 0);
  CHECK(cursor == 1);
  c = choose(available, tried, cursor);
  CHECK(c.index == 3);
}

TEST_CASE("chooseHost: prefers an untried available host, then falls back to a tried one") {
  std::array<bool, 3> available{true, true, false};
  std::array<bool, 3> tried{true, false, false};
  size_t cursor = 0;  // host 0 is next in turn, but already tried by this request
  HostChoice c = choose(available, tried, cursor);
  CHECK(c.index == 1);
  CHECK_FALSE(c.panic);
  CHECK(cursor == 2);

  tried[1] = true;  // every available host tried: retry one of them rather than give up
  c = choose(available, tried, cursor);
  CHECK(c.index == 0);
  CHECK_FALSE(c.panic);
  CHECK(cursor == 1);
  c = choose(available, tried, cursor, /*panic=*/true);  // panic does not matter while any is available
  CHECK(c.index == 1);
  CHECK_FALSE(c.panic);
}

TEST_CASE("chooseHost: no available host") {
  std::array<bool, 3> available{false, false, false};
  std::array<bool, 3> tried{false, true, false};

  SUBCASE("without panic: none") {
    size_t cursor = 1;
    HostChoice c = choose(available, tried, cursor, false);
    CHECK(c.index == -1);
    CHECK_FALSE(c.panic);
    CHECK(cursor == 1);
  }
  SUBCASE("with panic: an untried host first, then a tried one") {
    size_t cursor = 1;  // host 1 is next but tried
    HostChoice c = choose(available, tried, cursor, true);
    CHECK(c.index == 2);
    CHECK(c.panic);
    CHECK(cursor == 0);
    c = choose(available, tried, cursor, true);
    CHECK(c.index == 0);
    CHECK(c.panic);
    CHECK(cursor == 1);

    tried = {true, true, true};
    c = choose(available, tried, cursor, true);
    CHECK(c.index == 1);
    CHECK(c.panic);
    CHECK(cursor == 2);
  }
}

TEST_CASE("chooseHost: no hosts at all") {
  std::array<bool, 0> none{};
  size_t cursor = 5;
  CHECK(choose(none, none, cursor, false).index == -1);
  HostChoice c = choose(none, none, cursor, true);
  CHECK(c.index == -1);
  CHECK_FALSE(c.panic);
}

TEST_CASE("chooseHost: a cursor beyond the host count wraps instead of overrunning") {
  std::array<bool, 3> available{true, true, true};
  std::array<bool, 3> tried{false, false, false};
  size_t cursor = 4;  // e.g. the cluster shrank
  HostChoice c = choose(available, tried, cursor);
  CHECK(c.index == 1);
  CHECK(cursor == 2);
}

TEST_CASE("a reload keeps unchanged clusters and the hosts of changed ones") {
  Config before;
  before.clusters.push_back(makeCluster("api", 2));
  before.clusters.push_back(makeCluster("auth", 2));
  before.clusters.push_back(makeCluster("gone", 1));
  before.clusters[1].healthCheck.enabled = true;
  auto old = flowguard::upstream::makeClusterStates(before);
  old["auth"]->hosts()[0]->activeHealthy = false;
  old["auth"]->hosts()[1]->stats.add(HostStat::Requests, 7);
  old["api"]->hosts()[0]->stats.add(HostStat::Requests, 3);

  Config after;
  after.clusters.push_back(makeCluster("api", 2));
  after.clusters.back().location = {40, 3};          // moved in the file: still the same cluster
  after.clusters.push_back(makeCluster("auth", 3));  // one host more: changed
  after.clusters.back().healthCheck.enabled = true;
  after.clusters.push_back(makeCluster("new", 1));
  auto next = flowguard::upstream::makeClusterStates(after, &old);

  REQUIRE(next.size() == 3);
  CHECK(next["api"] == old["api"]);  // the same state object: pools and breakers carry on
  CHECK(next["api"]->hosts()[0]->stats.value(HostStat::Requests) == 3);
  REQUIRE(next["auth"] != old["auth"]);
  REQUIRE(next["auth"]->hosts().size() == 3);
  // The hosts it kept are the same HostState: health verdict and counters survive.
  CHECK(next["auth"]->hosts()[0] == old["auth"]->hosts()[0]);
  CHECK_FALSE(next["auth"]->hosts()[0]->activeHealthy);
  CHECK(next["auth"]->hosts()[1]->stats.value(HostStat::Requests) == 7);
  CHECK(next["auth"]->hosts()[2]->stats.value(HostStat::Requests) == 0);
  CHECK(next["auth"]->hosts()[2]->activeHealthy);  // initial state of a new host
  CHECK(next.count("gone") == 0);
  CHECK(next["new"]->hosts().size() == 1);

  SUBCASE("a host marked down by health checks comes back when the checks are removed") {
    Config unchecked = after;
    unchecked.clusters[1].healthCheck.enabled = false;
    auto third = flowguard::upstream::makeClusterStates(unchecked, &next);
    CHECK(third["auth"]->hosts()[0] == old["auth"]->hosts()[0]);
    CHECK(third["auth"]->hosts()[0]->activeHealthy);
  }
}

TEST_CASE("hosts may be names, resolved when the state is made; a name that does not resolve is an error") {
  char name[256] = {0};
  REQUIRE(gethostname(name, sizeof(name) - 1) == 0);
  ClusterConfig config = makeCluster("api", 1);
  config.hosts.push_back({name, 8002});  // this machine's own name, from /etc/hosts
  std::vector<sockaddr_storage> addresses = flowguard::upstream::resolveHosts(config);
  REQUIRE(addresses.size() == 2);
  CHECK(addresses[0].ss_family == AF_INET);
  CHECK(ntohs(reinterpret_cast<const sockaddr_in&>(addresses[0]).sin_port) == 8001);
  CHECK((addresses[1].ss_family == AF_INET || addresses[1].ss_family == AF_INET6));
  ClusterState state(config);
  CHECK(state.hosts()[1]->address == std::string(name) + ":8002");  // shown as written

  config.hosts.push_back({"no-such-host.invalid", 80});  // .invalid never resolves (RFC 2606)
  try {
    flowguard::upstream::resolveHosts(config);
    FAIL("no-such-host.invalid resolved");
  } catch (const flowguard::upstream::HostResolutionError& e) {
    CHECK(e.cluster == "api");
    CHECK(std::string(e.what()).starts_with("cluster api: cannot resolve host 'no-such-host.invalid'"));
  }
}
