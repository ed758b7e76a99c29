// The keep-alive connections of one worker to one upstream host, with the per-host
// circuit-breaker limits: at most maxConnections open, at most maxPending requests
// waiting for one. Worker-local: no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_set>
#include <vector>

#include <netinet/in.h>

#include "core/dispatcher.h"
#include "upstream/upstream_connection.h"

namespace flowguard::upstream {

struct PoolSettings {
  std::chrono::milliseconds connectTimeout{1000};
  std::chrono::milliseconds idleTimeout{30'000};
  uint32_t maxConnections = 1024;
  uint32_t maxPending = 1024;
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

  HostPool(core::Dispatcher& dispatcher, std::string address, const sockaddr_storage& sockaddr,
           PoolSettings settings);
  ~HostPool();
  HostPool(const HostPool&) = delete;
  HostPool& operator=(const HostPool&) = delete;

  // With an idle connection at hand, calls onPoolReady before returning (and returns
  // false). Over the limits, calls onPoolFailure(Overflow) before returning (false).
  // Otherwise the request waits and `handle` can cancel it (returns true).
  bool newStream(PoolCallbacks& callbacks, PendingHandle& handle);
  void cancel(PendingHandle handle);

  const std::string& address() const { return address_; }
  size_t openConnections() const { return connections_.size(); }
  size_t idleConnections() const { return idle_.size(); }
  size_t pendingRequests() const { return pending_.size(); }
  void closeAll();

  // From UpstreamConnection.
  void onConnected(UpstreamConnection* connection);
  void onConnectFailed(UpstreamConnection* connection, UpstreamFailure failure);
  void onReleased(UpstreamConnection* connection, bool reusable);
  void onClosed(UpstreamConnection* connection, bool wasConnecting);

 private:
  void startConnection();
  void serveOrPark(UpstreamConnection* connection);

  core::Dispatcher& dispatcher_;
  std::string address_;
  sockaddr_storage sockaddr_;
  PoolSettings settings_;
  std::unordered_set<UpstreamConnection*> connections_;  // every open one; they free themselves
  std::vector<UpstreamConnection*> idle_;                // LIFO: the warmest first
  std::list<Pending> pending_;
  size_t connecting_ = 0;
};

}  // namespace flowguard::upstream
