// The keep-alive connections of one worker to one upstream host. Limits: at most
// maxConnections open by this worker to this host, and the cluster-wide circuit breakers
// (connections and pending requests over all workers, in ClusterState). Worker-local
// apart from those atomics: no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_set>
#include <vector>

#include <netinet/in.h>

#include "core/dispatcher.h"
#include "upstream/cluster_state.h"
#include "upstream/host_state.h"
#include "upstream/upstream_connection.h"

namespace flowguard::upstream {

struct PoolSettings {
  std::chrono::milliseconds connectTimeout{1000};
  std::chrono::milliseconds idleTimeout{30'000};
  uint32_t maxConnections = 1024;  // this worker, this host
  uint32_t maxIdle = 64;
};

// Answer to HostPool::newStream. Exactly one of the two is called, exactly once, unless
// the request was cancelled first.
class PoolCallbacks {
 public:
  virtual ~PoolCallbacks() = default;
  virtual void onPoolReady(UpstreamConnection& connection) = 0;
  virtual void onPoolFailure(UpstreamFailure failure) = 0;
};

class HostPool {
 public:
  struct Pending {
    PoolCallbacks* callbacks;
  };
  using PendingHandle = std::list<Pending>::iterator;

  HostPool(core::Dispatcher& dispatcher, ClusterState& cluster, HostState& host, const sockaddr_storage& sockaddr,
           PoolSettings settings);
  ~HostPool();
  HostPool(const HostPool&) = delete;
  HostPool& operator=(const HostPool&) = delete;

  // With an idle connection at hand, calls onPoolReady before returning (and returns
  // false). Over the limits, calls onPoolFailure(Overflow) before returning (false).
  // Otherwise the request waits and `handle` can cancel it (returns true).
  bool newStream(PoolCallbacks& callbacks, PendingHandle& handle);
  void cancel(PendingHandle handle);

  const std::string& address() const { return host_.address; }
  HostState& state() { return host_; }
  void closeAll();

  // From UpstreamConnection.
  void onConnected(UpstreamConnection* connection);
  void onConnectFailed(UpstreamConnection* connection, UpstreamFailure failure);
  void onReleased(UpstreamConnection* connection, bool reusable);
  void onClosed(UpstreamConnection* connection, bool wasConnecting);

 private:
  bool startConnection();
  // Drops a connection from the books (this pool's set, host and cluster counters).
  void forget(UpstreamConnection* connection);
  void serveOrPark(UpstreamConnection* connection);
  PoolCallbacks* popPending();

  core::Dispatcher& dispatcher_;
  ClusterState& cluster_;
  HostState& host_;
  sockaddr_storage sockaddr_;
  PoolSettings settings_;
  std::unordered_set<UpstreamConnection*> connections_;  // every open one; they free themselves
  std::vector<UpstreamConnection*> idle_;                // LIFO: the warmest first
  std::list<Pending> pending_;
  size_t connecting_ = 0;
};

}  // namespace flowguard::upstream
