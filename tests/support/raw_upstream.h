// A scripted HTTP/1.1 upstream for tests that need answers no real backend gives: partial
// bodies, silence, answers with bytes a parser must refuse. Header-only, on its own thread.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_support.h"

namespace flowguard::test {

// A scripted upstream on a free port: for every request head it reads (a body must not
// contain a blank line) it writes `response` verbatim, then keeps the connection open or,
// with closeAfterResponse, closes it; an empty `response` is never answered (the connection
// is held, or closed unanswered with closeAfterResponse). Counts the heads and the
// connections the peer closed, and keeps every byte received.
class RawUpstream {
 public:
  explicit RawUpstream(std::string response, bool closeAfterResponse = false)
      : response_(std::move(response)), closeAfterResponse_(closeAfterResponse) {
    listenFd_ = listenOnLoopback(16, port);
    thread_ = std::thread([this] { serve(); });
  }
  ~RawUpstream() {
    stop_ = true;
    thread_.join();
    ::close(listenFd_);
  }
  RawUpstream(const RawUpstream&) = delete;
  RawUpstream& operator=(const RawUpstream&) = delete;

  uint16_t port = 0;
  std::atomic<int> heads{0};
  std::atomic<int> closedByPeer{0};
  // Everything received so far, over all connections, in arrival order.
  std::string received() const {
    std::lock_guard<std::mutex> lock(receivedMutex_);
    return received_;
  }

 private:
  void serve() {
    std::vector<int> clients;
    std::vector<std::string> buffers;
    while (!stop_) {
      std::vector<pollfd> fds{{listenFd_, POLLIN, 0}};
      for (int fd : clients) fds.push_back({fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          clients.push_back(fd);
          buffers.emplace_back();
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        size_t k = i - 1;
        char buf[16384];
        ssize_t n = ::recv(clients[k], buf, sizeof(buf), 0);
        if (n <= 0) {
          ++closedByPeer;
          ::close(clients[k]);
          clients[k] = -1;
          continue;
        }
        buffers[k].append(buf, static_cast<size_t>(n));
        {
          std::lock_guard<std::mutex> lock(receivedMutex_);
          received_.append(buf, static_cast<size_t>(n));
        }
        size_t end;
        while ((end = buffers[k].find("\r\n\r\n")) != std::string::npos) {
          buffers[k].erase(0, end + 4);
          ++heads;
          if (!response_.empty()) ::send(clients[k], response_.data(), response_.size(), MSG_NOSIGNAL);
          if (closeAfterResponse_) {
            ::close(clients[k]);
            clients[k] = -1;
            break;
          }
        }
      }
      for (size_t k = clients.size(); k-- > 0;) {
        if (clients[k] < 0) {
          clients.erase(clients.begin() + static_cast<long>(k));
          buffers.erase(buffers.begin() + static_cast<long>(k));
        }
      }
    }
    for (int fd : clients) ::close(fd);
  }

  std::string response_;
  bool closeAfterResponse_;
  int listenFd_ = -1;
  std::atomic<bool> stop_{false};
  mutable std::mutex receivedMutex_;
  std::string received_;
  std::thread thread_;
};

}  // namespace flowguard::test
