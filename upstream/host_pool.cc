#include "upstream/host_pool.h"

#include <algorithm>

namespace flowguard::upstream {

HostPool::HostPool(core::Dispatcher& dispatcher, ClusterState& cluster, HostState& host,
                   const sockaddr_storage& sockaddr, PoolSettings settings)
    : dispatcher_(dispatcher), cluster_(cluster), host_(host), sockaddr_(sockaddr), settings_(settings) {}

HostPool::~HostPool() {
  closeAll();
}

bool HostPool::newStream(PoolCallbacks& callbacks, PendingHandle& handle) {
  while (!idle_.empty()) {
    UpstreamConnection* connection = idle_.back();
    idle_.pop_back();
    if (!connection->idle()) continue;  // closed meanwhile
    callbacks.onPoolReady(*connection);
    return false;
  }
  if (!cluster_.acquirePending()) {
    callbacks.onPoolFailure(UpstreamFailure::Overflow);
    return false;
  }
  handle = pending_.insert(pending_.end(), Pending{&callbacks});
  // Each connection being opened is already promised to one waiting request.
  if (connecting_ < pending_.size() && !startConnection() && connections_.empty()) {
    // No connection may be opened (cluster-wide limit) and none of ours will ever free
    // up for this request: fail now rather than wait for a timeout.
    pending_.erase(handle);
    cluster_.releasePending();
    cluster_.stats().add(ClusterStat::OverflowConnections);
    callbacks.onPoolFailure(UpstreamFailure::Overflow);
    return false;
  }
  return true;
}

void HostPool::cancel(PendingHandle handle) {
  pending_.erase(handle);
  cluster_.releasePending();
}

PoolCallbacks* HostPool::popPending() {
  PoolCallbacks* callbacks = pending_.front().callbacks;
  pending_.pop_front();
  cluster_.releasePending();
  return callbacks;
}

bool HostPool::startConnection() {
  if (connections_.size() >= settings_.maxConnections || !cluster_.acquireConnection()) return false;
  auto* connection = new UpstreamConnection(dispatcher_, *this, sockaddr_, settings_.connectTimeout);
  connections_.insert(connection);
  host_.activeConnections.fetch_add(1, std::memory_order_relaxed);
  ++connecting_;
  connection->connect();
  return true;
}

void HostPool::onConnected(UpstreamConnection* connection) {
  --connecting_;
  serveOrPark(connection);
}

void HostPool::forget(UpstreamConnection* connection) {
  if (connections_.erase(connection) > 0) {
    host_.activeConnections.fetch_sub(1, std::memory_order_relaxed);
    cluster_.releaseConnection();
  }
}

void HostPool::onConnectFailed(UpstreamConnection* connection, UpstreamFailure failure) {
  --connecting_;
  forget(connection);
  // The attempt was made for the oldest waiting request: it learns of the failure (and
  // its router may try another host).
  if (!pending_.empty()) popPending()->onPoolFailure(failure);
  // The others still need a connection of their own: try again for them. Waiters that
  // nothing will ever serve (no connection open, none may be opened) fail now rather
  // than hang, since a waiting request has no timer of its own.
  while (pending_.size() > connecting_ && !startConnection()) {
    if (!connections_.empty()) break;  // a busy connection will serve them when free
    popPending()->onPoolFailure(failure);
  }
}

void HostPool::onReleased(UpstreamConnection* connection, bool reusable) {
  if (!reusable) {
    connection->close();
    return;
  }
  serveOrPark(connection);
}

void HostPool::serveOrPark(UpstreamConnection* connection) {
  if (!pending_.empty()) {
    popPending()->onPoolReady(*connection);
    return;
  }
  if (idle_.size() >= settings_.maxIdle) {
    connection->close();
    return;
  }
  connection->makeIdle(settings_.idleTimeout);
  idle_.push_back(connection);
}

void HostPool::onClosed(UpstreamConnection* connection, bool wasConnecting) {
  if (wasConnecting) --connecting_;
  forget(connection);
  auto it = std::find(idle_.begin(), idle_.end(), connection);
  if (it != idle_.end()) idle_.erase(it);
  // A slot freed up: a waiting request may get a connection of its own now.
  if (pending_.size() > connecting_) startConnection();
}

void HostPool::closeAll() {
  while (!pending_.empty()) {
    pending_.pop_front();
    cluster_.releasePending();
  }
  std::vector<UpstreamConnection*> all(connections_.begin(), connections_.end());
  for (auto* connection : all) connection->close();
  idle_.clear();
}

}  // namespace flowguard::upstream
