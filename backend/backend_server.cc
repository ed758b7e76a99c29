#include "backend/backend_server.h"

#include "backend/backend_connection.h"

namespace flowguard::backend {

BackendServer::BackendServer(uv_loop_t* loop, BackendOptions options)
    : loop_(loop),
      options_(std::move(options)),
      faults_(options_.faults, options_.seed ? *options_.seed : randomSeed(), uv_now(loop)) {}

// The loop has stopped by now (see the header), so every handle is closed already.
BackendServer::~BackendServer() = default;

int BackendServer::start() {
  listener_ = core::UvHandle<uv_tcp_t>(loop_, this, uv_tcp_init);
  if (!listener_) return listener_.error();
  int rc = 0;

  sockaddr_storage addr{};
  if (uv_ip4_addr(options_.host.c_str(), options_.port, reinterpret_cast<sockaddr_in*>(&addr)) != 0) {
    rc = uv_ip6_addr(options_.host.c_str(), options_.port, reinterpret_cast<sockaddr_in6*>(&addr));
    if (rc != 0) return rc;
  }
  rc = uv_tcp_bind(listener_.get(), reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc != 0) return rc;
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_.get()), SOMAXCONN, onConnection);
  if (rc != 0) return rc;

  sockaddr_storage bound{};
  int len = sizeof(bound);
  rc = uv_tcp_getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  if (rc != 0) return rc;
  port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return 0;
}

void BackendServer::shutdown() {
  if (shuttingDown_) return;
  shuttingDown_ = true;
  listener_.reset();
  // close() only schedules the close; erasing happens in the callbacks, after this loop.
  for (auto& [raw, connection] : connections_) connection->close();
}

void BackendServer::connectionClosed(Connection* connection) {
  connections_.erase(connection);
}

void BackendServer::onConnection(uv_stream_t* listener, int status) {
  auto* self = static_cast<BackendServer*>(listener->data);
  if (status < 0 || self->shuttingDown_) return;
  auto connection = std::make_unique<Connection>(*self, self->connectionsAccepted_ + 1);
  Connection* raw = connection.get();
  self->connections_.emplace(raw, std::move(connection));
  if (uv_accept(listener, raw->stream()) != 0) {
    raw->close();
    return;
  }
  ++self->connectionsAccepted_;
  raw->start();
}

}  // namespace flowguard::backend
