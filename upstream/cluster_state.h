// A cluster's state shared by every worker and the main thread: its hosts' HostState, the
// outlier detector, the cluster-wide circuit breakers and the retry budget. All counters
// are atomics; no locks.
#pragma once

#include <cassert>

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <iterator>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "core/stat_set.h"
#include "upstream/host_state.h"
#include "upstream/outlier_detector.h"

namespace flowguard::upstream {

// A cluster's counters (cluster.NAME.upstream_rq_... in Envoy's terms), declared once: /stats,
// Prometheus (flowguard_cluster_<name>_total{cluster="NAME"}) and the exit summary are made
// from this table.
enum class ClusterStat {
  Requests,
  Retries,
  RetryBudgetExhausted,
  OverflowRequests,
  OverflowPending,
  OverflowConnections,
  NoHealthyHost,
  PanicRouted,
  Ejections,
  ConnectTimeouts,
  ResponseTimeouts,
};
inline constexpr core::StatDecl kClusterStats[] = {
    {"requests", "Requests routed to a cluster."},
    {"retries", "Retries to another attempt, by cluster."},
    {"retry_budget_exhausted", "Retries not made because the cluster's retry budget was spent."},
    {"overflow_requests", "Requests answered 503 because max_requests was reached."},
    {"overflow_pending", "Requests answered 503 because max_pending_requests was reached."},
    {"overflow_connections",
     "Requests answered 503 because max_connections was reached and none could wait."},
    {"no_healthy_host", "Requests answered 503 because no host was healthy (no_healthy_hosts: reject)."},
    {"panic_routed", "Requests sent to an unhealthy host in panic mode."},
    {"ejections", "Hosts ejected by outlier detection, by cluster."},
    {"connect_timeouts",
     "Upstream timeouts, by cluster and kind (connect: connect_timeout; response: the cluster timeout).",
     "timeouts", "kind=\"connect\""},
    {"response_timeouts", "", "timeouts", "kind=\"response\""},
};
static_assert(std::size(kClusterStats) == static_cast<size_t>(ClusterStat::ResponseTimeouts) + 1,
              "one declaration per ClusterStat, in its order");

class ClusterState {
 public:
  // The state keeps its own copy of `config`, so it may outlive the Config it came from
  // (a reload keeps unchanged clusters). Hosts `previous` had keep their HostState.
  // `addresses` are the hosts' resolved addresses, in config order (see resolveHosts);
  // without them the hosts are resolved here.
  explicit ClusterState(const config::ClusterConfig& config, const ClusterState* previous = nullptr);
  ClusterState(const config::ClusterConfig& config, std::vector<sockaddr_storage> addresses,
               const ClusterState* previous);
  ClusterState(const ClusterState&) = delete;
  ClusterState& operator=(const ClusterState&) = delete;

  const config::ClusterConfig& config() const { return config_; }
  const std::vector<std::shared_ptr<HostState>>& hosts() const { return hosts_; }
  // Where host i is reached: resolved once, on the main thread, when the config was loaded.
  const sockaddr_storage& address(size_t host) const { return addresses_[host]; }
  const std::vector<sockaddr_storage>& addresses() const { return addresses_; }
  OutlierDetector& outlierDetector() { return outlier_; }
  core::StatSet& stats() { return stats_; }
  const core::StatSet& stats() const { return stats_; }

  // Circuit breakers: take a slot, or false when at the limit. Request and pending
  // overflows are counted here; a connection overflow only by the pool, when a request
  // really fails for it (otherwise it just waits for a busy connection).
  bool acquireRequest();
  void releaseRequest() { activeRequests_.fetch_sub(1, std::memory_order_relaxed); }
  bool acquirePending();
  void releasePending() { pendingRequests_.fetch_sub(1, std::memory_order_relaxed); }
  bool acquireConnection();
  void releaseConnection() { activeConnections_.fetch_sub(1, std::memory_order_relaxed); }

  // Retry budget: a retry may start while retries in flight stay below
  // max(min_retries, percent × requests in flight). Counts it when allowed.
  bool acquireRetry();
  void releaseRetry() { activeRetries_.fetch_sub(1, std::memory_order_relaxed); }

  int64_t activeRequests() const { return activeRequests_.load(std::memory_order_relaxed); }
  int64_t pendingRequests() const { return pendingRequests_.load(std::memory_order_relaxed); }
  int64_t activeConnections() const { return activeConnections_.load(std::memory_order_relaxed); }

 private:
  const config::ClusterConfig config_;
  std::vector<sockaddr_storage> addresses_;
  std::vector<std::shared_ptr<HostState>> hosts_;
  OutlierDetector outlier_;
  core::StatSet stats_{kClusterStats};
  std::atomic<int64_t> activeRequests_{0};
  std::atomic<int64_t> pendingRequests_{0};
  std::atomic<int64_t> activeConnections_{0};
  std::atomic<int64_t> activeRetries_{0};
};

// Every cluster's shared state, by name. Built on the main thread, at start-up and on each
// reload. With `previous` (the states in force), a cluster whose config did not change
// keeps its state object, and so its health, counters and every worker's pools; a changed
// cluster gets a new state that keeps the HostState of hosts it still has.
// Host names are resolved here (blocking: the main thread, when a config is loaded, as nginx
// does for its upstreams); a name that does not resolve throws std::runtime_error naming the
// cluster and the host (HostResolutionError). A cluster whose hosts now resolve elsewhere counts as changed.
using ClusterStates = std::unordered_map<std::string, std::shared_ptr<ClusterState>>;
ClusterStates makeClusterStates(const config::Config& config, const ClusterStates* previous = nullptr);

// A host name that does not resolve, and the cluster it belongs to (for FILE:LINE:COL).
struct HostResolutionError : std::runtime_error {
  HostResolutionError(std::string clusterName, const std::string& message)
      : std::runtime_error(message), cluster(std::move(clusterName)) {}
  std::string cluster;
};

// Every host of `config`, resolved (IP literals without the resolver). Throws
// HostResolutionError.
std::vector<sockaddr_storage> resolveHosts(const config::ClusterConfig& config);

// The load-balancing decision, without I/O so it can be unit-tested. Round robin from
// `cursor` over hosts that are `available` and not yet `tried` by this request; then over
// available ones even if tried (a fresh connection may work); then, when no host is
// available, over all hosts if `panic` (as Envoy does below its panic threshold).
// Returns the index, or -1 (no host, or none available without panic).
struct HostChoice {
  int index = -1;
  bool panic = false;  // chosen although not available
};
HostChoice chooseHost(std::span<const bool> available, std::span<const bool> tried, size_t& cursor,
                      bool panic);

// A request's hold on one of its cluster's circuit-breaker counts: its max_requests slot or its
// retry-budget slot. Given back exactly once, when released or dropped, so no path through the
// router can keep one or give one back twice.
class ClusterSlot {
 public:
  enum class Kind { Request, Retry };
  ClusterSlot() = default;
  ~ClusterSlot() { release(); }
  ClusterSlot(const ClusterSlot&) = delete;
  ClusterSlot& operator=(const ClusterSlot&) = delete;

  // Takes a slot (counted as acquireRequest / acquireRetry count); false at the limit.
  bool take(ClusterState& state, Kind kind) {
    assert(state_ == nullptr && "a slot is taken once");
    if (!(kind == Kind::Request ? state.acquireRequest() : state.acquireRetry())) return false;
    state_ = &state;
    kind_ = kind;
    return true;
  }
  bool held() const { return state_ != nullptr; }
  void release() {
    if (state_ == nullptr) return;
    if (kind_ == Kind::Request) {
      state_->releaseRequest();
    } else {
      state_->releaseRetry();
    }
    state_ = nullptr;
  }

 private:
  ClusterState* state_ = nullptr;
  Kind kind_ = Kind::Request;
};

}  // namespace flowguard::upstream
