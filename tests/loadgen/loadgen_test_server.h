// A tiny HTTP/1.1 server for the loadgen tests, on its own thread: keep-alive, answers GET
// requests (no bodies) with statuses from a repeating pattern, counts every request and the
// X-API-Key values it saw, and can freeze entirely on a fixed cycle (the way wrk2's
// coordinated-omission example pauses its server).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace flowguard::test {

class LoadgenTestServer {
 public:
  struct Settings {
    std::vector<int> statuses{200};
    // Freeze cycle: serve for servePeriod, then answer nothing for freezePeriod, repeat.
    // A zero freezePeriod never freezes.
    std::chrono::milliseconds servePeriod{0};
    std::chrono::milliseconds freezePeriod{0};
  };

  explicit LoadgenTestServer(Settings settings) : settings_(std::move(settings)) {
    listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listenFd_, 512) != 0) {
      throw std::runtime_error("test server: bind/listen failed");
    }
    socklen_t len = sizeof(addr);
    ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    start_ = std::chrono::steady_clock::now();
    thread_ = std::thread([this] { loop(); });
  }
  ~LoadgenTestServer() {
    stop_ = true;
    thread_.join();
    for (auto& c : clients_) ::close(c.fd);
    ::close(listenFd_);
  }
  LoadgenTestServer(const LoadgenTestServer&) = delete;
  LoadgenTestServer& operator=(const LoadgenTestServer&) = delete;

  uint16_t port() const { return port_; }
  uint64_t requests() const { return requests_.load(); }
  std::map<std::string, uint64_t> keysSeen() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return keys_;
  }

 private:
  struct Client {
    int fd;
    std::string buffer;
  };

  void loop() {
    while (!stop_) {
      freezeIfDue();
      std::vector<pollfd> fds;
      fds.push_back({listenFd_, POLLIN, 0});
      for (auto& c : clients_) fds.push_back({c.fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          int one = 1;
          ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          clients_.push_back({fd, {}});
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        Client& c = clients_[i - 1];
        char buf[16384];
        ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
        if (n <= 0) {
          ::close(c.fd);
          c.fd = -1;
          continue;
        }
        c.buffer.append(buf, static_cast<size_t>(n));
        answerComplete(c);
      }
      std::erase_if(clients_, [](const Client& c) { return c.fd < 0; });
    }
  }

  void freezeIfDue() {
    if (settings_.freezePeriod.count() == 0) return;
    auto cycle = settings_.servePeriod + settings_.freezePeriod;
    auto phase = (std::chrono::steady_clock::now() - start_) % cycle;
    if (phase >= settings_.servePeriod) std::this_thread::sleep_for(cycle - phase);
  }

  void answerComplete(Client& c) {
    size_t end;
    std::string out;
    while ((end = c.buffer.find("\r\n\r\n")) != std::string::npos) {
      std::string head = c.buffer.substr(0, end);
      c.buffer.erase(0, end + 4);
      uint64_t n = requests_.fetch_add(1);
      int status = settings_.statuses[n % settings_.statuses.size()];
      size_t k = head.find("\r\nX-API-Key: ");
      if (k != std::string::npos) {
        size_t from = k + 13;
        std::lock_guard<std::mutex> lock(mutex_);
        ++keys_[head.substr(from, head.find("\r\n", from) - from)];
      }
      out += "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 2\r\n\r\nok";
    }
    size_t sent = 0;
    while (sent < out.size()) {
      ssize_t n = ::send(c.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
  }

  Settings settings_;
  int listenFd_ = -1;
  uint16_t port_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::vector<Client> clients_;
  std::atomic<uint64_t> requests_{0};
  mutable std::mutex mutex_;
  std::map<std::string, uint64_t> keys_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace flowguard::test
