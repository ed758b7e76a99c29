#include "core/listener.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/downstream_connection.h"

namespace flowguard::core {

int resolveAddress(const std::string& host, uint16_t port, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof(out));
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  if (h.find(':') != std::string::npos) {
    return uv_ip6_addr(h.c_str(), port, reinterpret_cast<sockaddr_in6*>(&out));
  }
  return uv_ip4_addr(h.c_str(), port, reinterpret_cast<sockaddr_in*>(&out));
}

int lookupAddress(const std::string& host, uint16_t port, sockaddr_storage& out, std::string& error) {
  if (resolveAddress(host, port, out) == 0) return 0;  // a literal: no resolver needed
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    error = fmt::format("cannot resolve host '{}': {}", host, rc != 0 ? gai_strerror(rc) : "no address");
    return -1;
  }
  std::memset(&out, 0, sizeof(out));
  std::memcpy(&out, result->ai_addr, result->ai_addrlen);
  ::freeaddrinfo(result);
  return 0;
}

int openListenSocket(const std::string& host, uint16_t port, std::string& error, uint16_t* boundPort) {
  sockaddr_storage addr;
  int rc = resolveAddress(host, port, addr);
  if (rc != 0) {
    error = fmt::format("bad listen address {}:{}: {}", host, port, uv_strerror(rc));
    return rc;
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = fmt::format("socket: {}", std::strerror(errno));
    return -errno;
  }
  auto fail = [&](std::string what) {
    int err = errno;
    ::close(fd);
    error = fmt::format("cannot listen on {}:{}: {}: {}", host, port, what, std::strerror(err));
    return -err;
  };
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) return fail("SO_REUSEPORT");
  socklen_t len = addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) return fail("bind");
  // Listening now, not when libuv gets the socket: connections that arrive in between
  // wait in the backlog instead of being refused.
  if (::listen(fd, 4096) != 0) return fail("listen");
  if (boundPort != nullptr) {
    sockaddr_storage bound{};
    socklen_t boundLen = sizeof(bound);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &boundLen);
    *boundPort = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  return fd;
}

Listener::Listener(Dispatcher& dispatcher, std::shared_ptr<ListenerContext> context)
    : dispatcher_(dispatcher), context_(std::move(context)) {}

Listener::~Listener() {
  stop();
}

int Listener::start() {
  const ListenerSettings& settings = context_->settings;
  int fd = openListenSocket(settings.host, settings.port, error_);
  if (fd < 0) return fd;
  return adopt(fd);
}

int Listener::adopt(int fd) {
  const ListenerSettings& settings = context_->settings;
  sockaddr_storage bound{};
  socklen_t boundLen = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &boundLen);
  boundPort_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  tcp_ = UvHandle<uv_tcp_t>(dispatcher_.loop(), this, uv_tcp_init);
  int rc = tcp_ ? uv_tcp_open(tcp_.get(), fd) : tcp_.error();
  if (rc != 0) ::close(fd);  // libuv did not take the socket
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp_.get()), 4096, &Listener::onConnection);
  if (rc != 0) {
    error_ = fmt::format("cannot listen on {}:{}: {}", settings.host, settings.port, uv_strerror(rc));
    stop();
    return rc;
  }
  return 0;
}

void Listener::stop() {
  tcp_.reset();
}

void Listener::onConnection(uv_stream_t* server, int status) {
  if (status < 0) return;  // EMFILE and friends: the next accept may work
  auto* self = static_cast<Listener*>(server->data);
  ConnectionSlot slot;
  if (!admitConnection(self->context_->connectionLimit, self->context_->overload, slot)) {
    // Over a limit: accept and close at once rather than leave it in the backlog, where it
    // would wait (and fill the queue) until the client gives up.
    UvHandle<uv_tcp_t> tcp(self->dispatcher_.loop(), nullptr, uv_tcp_init);
    if (tcp) uv_accept(server, reinterpret_cast<uv_stream_t*>(tcp.get()));
    return;  // closed as it goes out of scope
  }
  DownstreamConnection::accept(server, self->dispatcher_, self->context_, std::move(slot));
}

}  // namespace flowguard::core
