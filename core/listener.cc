#include "core/listener.h"

#include <fcntl.h>
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

Listener::Listener(Dispatcher& dispatcher, const ListenerSettings& settings, ConnectionRegistry& registry)
    : dispatcher_(dispatcher), settings_(settings), registry_(registry) {}

Listener::~Listener() { stop(); }

int Listener::start() {
  sockaddr_storage addr;
  int rc = resolveAddress(settings_.host, settings_.port, addr);
  if (rc != 0) {
    error_ = fmt::format("bad listen address {}:{}: {}", settings_.host, settings_.port, uv_strerror(rc));
    return rc;
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error_ = fmt::format("socket: {}", std::strerror(errno));
    return -errno;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    int err = errno;
    ::close(fd);
    error_ = fmt::format("SO_REUSEPORT: {}", std::strerror(err));
    return -err;
  }
  socklen_t len = addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    int err = errno;
    ::close(fd);
    error_ = fmt::format("cannot listen on {}:{}: {}", settings_.host, settings_.port, std::strerror(err));
    return -err;
  }
  sockaddr_storage bound{};
  socklen_t boundLen = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &boundLen);
  boundPort_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  tcp_ = new uv_tcp_t;
  uv_tcp_init(dispatcher_.loop(), tcp_);
  tcp_->data = this;
  rc = uv_tcp_open(tcp_, fd);
  if (rc != 0) ::close(fd);  // libuv did not take the socket
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp_), 4096, &Listener::onConnection);
  if (rc != 0) {
    error_ = fmt::format("cannot listen on {}:{}: {}", settings_.host, settings_.port, uv_strerror(rc));
    stop();
    return rc;
  }
  return 0;
}

void Listener::stop() {
  if (tcp_ == nullptr) return;
  closeAndDelete(tcp_);
  tcp_ = nullptr;
}

void Listener::onConnection(uv_stream_t* server, int status) {
  if (status < 0) return;  // EMFILE and friends: the next accept may work
  auto* self = static_cast<Listener*>(server->data);
  DownstreamConnection::accept(server, self->dispatcher_, self->settings_, self->registry_);
}

}  // namespace flowguard::core
