#include "loadgen/register_keys.h"

#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/http1_parser.h"

namespace flowguard::loadgen {

namespace {

using Clock = std::chrono::steady_clock;

// A blocking socket whose every wait has a deadline.
class BlockingSocket {
 public:
  BlockingSocket(const sockaddr_storage& address, Clock::time_point deadline) : deadline_(deadline) {
    fd_ = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    socklen_t len = address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), len) != 0) {
      int err = errno;
      ::close(fd_);
      throw std::runtime_error(std::string("register: connect: ") + std::strerror(err));
    }
  }
  ~BlockingSocket() { ::close(fd_); }
  BlockingSocket(const BlockingSocket&) = delete;
  BlockingSocket& operator=(const BlockingSocket&) = delete;

  void writeAll(const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      wait(POLLOUT);
      ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno != EINTR && errno != EAGAIN) throw std::runtime_error("register: send failed");
      if (n > 0) done += static_cast<size_t>(n);
    }
  }
  // Appends what is available to `out`; false on EOF.
  bool readSome(std::string& out) {
    wait(POLLIN);
    char buf[16 * 1024];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) throw std::runtime_error("register: receive failed");
    out.append(buf, static_cast<size_t>(n));
    return n > 0;
  }

 private:
  void wait(short events) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
      if (left <= 0) throw std::runtime_error("register: timed out");
      pollfd p{fd_, events, 0};
      int rc = ::poll(&p, 1, static_cast<int>(left));
      if (rc > 0) return;
      if (rc < 0 && errno != EINTR) throw std::runtime_error("register: poll failed");
    }
  }

  int fd_ = -1;
  Clock::time_point deadline_;
};

}  // namespace

std::vector<std::string> registerKeys(const sockaddr_storage& address, const TargetUrl& target,
                                      unsigned count, double timeoutS) {
  auto deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeoutS * 1000) * (count + 1));
  BlockingSocket socket(address, deadline);
  core::Http1Parser parser(core::Http1Parser::Kind::Response, core::Http1Parser::Limits{});
  std::vector<std::string> keys;
  std::string buffer;
  for (unsigned i = 0; i < count; ++i) {
    std::string body = nlohmann::json{{"name", "loadgen-" + std::to_string(i)}}.dump();
    socket.writeAll("POST /register HTTP/1.1\r\nHost: " + target.hostHeader +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body);
    int status = 0;
    std::string responseBody;
    bool complete = false;
    bool eof = false;
    // Parse until NeedMore before reading: a head or body chunk that used up the buffer
    // may still be followed by MessageComplete without another byte.
    bool needData = buffer.empty();
    while (!complete) {
      core::Http1Parser::Result r{};
      if (needData && !eof) {
        if (!socket.readSome(buffer)) eof = true;
        needData = false;
        continue;
      }
      if (needData && eof) {
        r = parser.finish();
        if (r.event == core::Http1Parser::Event::NeedMore)
          throw std::runtime_error("register: connection closed");
      } else {
        r = parser.parse(buffer.data(), buffer.size());
      }
      switch (r.event) {
        case core::Http1Parser::Event::NeedMore:
          needData = true;
          break;
        case core::Http1Parser::Event::HeadComplete:
          status = parser.response().status;
          break;
        case core::Http1Parser::Event::Body:
          responseBody.append(parser.body());
          break;
        case core::Http1Parser::Event::MessageComplete:
          complete = true;
          break;
        case core::Http1Parser::Event::Error:
          throw std::runtime_error("register: malformed response: " + parser.errorReason());
      }
      buffer.erase(0, r.consumed);
    }
    if (status != 201 && status != 200) {
      throw std::runtime_error("register: POST /register answered " + std::to_string(status) + ": " +
                               responseBody);
    }
    try {
      keys.push_back(nlohmann::json::parse(responseBody).at("api_key").get<std::string>());
    } catch (const nlohmann::json::exception&) {
      throw std::runtime_error("register: no api_key in the answer: " + responseBody);
    }
    if (!parser.response().keepAlive && i + 1 < count) {
      // The gateway closes after each answer: the rest on fresh connections.
      auto rest = registerKeys(address, target, count - i - 1, timeoutS);
      keys.insert(keys.end(), rest.begin(), rest.end());
      return keys;
    }
  }
  return keys;
}

}  // namespace flowguard::loadgen
