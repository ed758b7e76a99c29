#include "upstream/host_pool.h"

#include <algorithm>

namespace flowguard::upstream {

HostPool::HostPool(core::Dispatcher& dispatcher, std::string address, const sockaddr_storage& sockaddr,
                   PoolSettings settings)
    : dispatcher_(dispatcher), address_(std::move(address)), sockaddr_(sockaddr), settings_(settings) {}

HostPool::~HostPool() { closeAll(); }

bool HostPool::newStream(PoolCallbacks& callbacks, PendingHandle& handle) {
  while (!idle_.empty()) {
    UpstreamConnection* connection = idle_.back();
    idle_.pop_back();
    if (!connection->idle()) continue;  // closed meanwhile
    callbacks.onPoolReady(*connection);
    return false;
  }
  bool canOpen = connections_.size() < settings_.maxConnections;
  // Each connection being opened is already promised to one waiting request.
  if (!canOpen && pending_.size() >= settings_.maxPending) {
    callbacks.onPoolFailure(UpstreamFailure::Overflow);
    return false;
  }
  handle = pending_.insert(pending_.end(), Pending{&callbacks});
  if (canOpen && connecting_ < pending_.size()) startConnection();
  return true;
}

void HostPool::cancel(PendingHandle handle) { pending_.erase(handle); }

void HostPool::startConnection() {
  auto* connection = new UpstreamConnection(dispatcher_, *this, sockaddr_, settings_.connectTimeout);
  connections_.insert(connection);
  ++connecting_;
  connection->connect();
}

void HostPool::onConnected(UpstreamConnection* connection) {
  --connecting_;
  serveOrPark(connection);
}

void HostPool::onConnectFailed(UpstreamConnection* connection, UpstreamFailure failure) {
  --connecting_;
  connections_.erase(connection);
  // The attempt was made for the oldest waiting request: it learns of the failure (and
  // its router may try another host). Later waiters keep waiting for other connections.
  if (pending_.empty()) return;
  PoolCallbacks* callbacks = pending_.front().callbacks;
  pending_.pop_front();
  callbacks->onPoolFailure(failure);
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
    PoolCallbacks* callbacks = pending_.front().callbacks;
    pending_.pop_front();
    callbacks->onPoolReady(*connection);
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
  connections_.erase(connection);
  auto it = std::find(idle_.begin(), idle_.end(), connection);
  if (it != idle_.end()) idle_.erase(it);
  // A slot freed up: a waiting request may get a connection of its own now.
  if (pending_.size() > connecting_ && connections_.size() < settings_.maxConnections) {
    startConnection();
  }
}

void HostPool::closeAll() {
  pending_.clear();
  std::vector<UpstreamConnection*> all(connections_.begin(), connections_.end());
  for (auto* connection : all) connection->close();
  connections_.clear();
  idle_.clear();
}

}  // namespace flowguard::upstream
