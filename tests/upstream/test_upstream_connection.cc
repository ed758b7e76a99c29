// UpstreamConnection and HostPool against a real loopback upstream: a response read to its
// end, or thrown away with discardResponse() (the router's answer to a client that went
// away), must give the connection back to the pool as reusable. The regression here: a
// response that arrived whole in one read and was discarded from inside onUpstreamHeaders
// left its connection busy forever, waiting for bytes it had already consumed (an fd leak).
#include "upstream/upstream_connection.h"

#include <doctest/doctest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/dispatcher.h"
#include "core/http_message.h"
#include "tests/support/test_loop.h"
#include "tests/support/test_support.h"
#include "upstream/cluster_state.h"
#include "upstream/host_pool.h"
#include "upstream/host_state.h"

using namespace std::chrono_literals;
using flowguard::core::Dispatcher;
using flowguard::core::HeaderMap;
using flowguard::core::ResponseHead;
using flowguard::upstream::ClusterState;
using flowguard::upstream::HostPool;
using flowguard::upstream::HostState;
using flowguard::upstream::PoolCallbacks;
using flowguard::upstream::PoolSettings;
using flowguard::upstream::UpstreamCallbacks;
using flowguard::upstream::UpstreamConnection;
using flowguard::upstream::UpstreamFailure;

namespace {

constexpr std::string_view kResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
constexpr std::string_view kRequest = "GET /item HTTP/1.1\r\nHost: upstream\r\n\r\n";

// A keep-alive HTTP/1.1 upstream on its own thread: answers every request (a head without
// body) with `response`. With splitAt == 0 each answer is one send(), so the connection
// reads head and body together; otherwise the first splitAt bytes go out alone and the
// rest only after allowRest(), so the body comes in a later read.
class LoopbackUpstream {
 public:
  explicit LoopbackUpstream(std::string_view response, size_t splitAt = 0)
      : response_(response), splitAt_(splitAt) {
    listenFd_ = flowguard::test::listenOnLoopback(16, port_);
    thread_ = std::thread([this] { run(); });
  }
  ~LoopbackUpstream() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    ::close(listenFd_);
  }
  LoopbackUpstream(const LoopbackUpstream&) = delete;
  LoopbackUpstream& operator=(const LoopbackUpstream&) = delete;

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  int requests() const { return requests_.load(); }
  // Lets one held-back answer remainder go out (split mode).
  void allowRest() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++restPermits_;
    }
    cv_.notify_all();
  }

 private:
  bool stopping() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stop_;
  }

  static void sendAll(int fd, std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;  // the peer is gone; it will be noticed on the next poll
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  void answer(int fd) {
    requests_.fetch_add(1);
    if (splitAt_ == 0) {
      sendAll(fd, response_);
      return;
    }
    sendAll(fd, std::string_view(response_).substr(0, splitAt_));
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return stop_ || restPermits_ > 0; });
    if (stop_) return;
    --restPermits_;
    lock.unlock();
    sendAll(fd, std::string_view(response_).substr(splitAt_));
  }

  void run() {
    struct Client {
      int fd;
      std::string buffer;
    };
    std::vector<Client> clients;
    while (!stopping()) {
      std::vector<pollfd> fds;
      fds.push_back({listenFd_, POLLIN, 0});
      for (auto& c : clients) fds.push_back({c.fd, POLLIN, 0});
      // The timeout only bounds how late a stop is noticed.
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          accepted_.fetch_add(1);
          clients.push_back({fd, {}});
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        Client& client = clients[i - 1];
        char buf[4096];
        ssize_t n = ::recv(client.fd, buf, sizeof(buf), 0);
        if (n <= 0) {
          ::close(client.fd);
          client.fd = -1;
          continue;
        }
        client.buffer.append(buf, static_cast<size_t>(n));
        for (size_t end; (end = client.buffer.find("\r\n\r\n")) != std::string::npos;) {
          client.buffer.erase(0, end + 4);
          answer(client.fd);
        }
      }
      std::erase_if(clients, [](const Client& c) { return c.fd < 0; });
    }
    for (auto& c : clients) ::close(c.fd);
  }

  std::string response_;
  size_t splitAt_;
  int listenFd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  int restPermits_ = 0;
};

flowguard::config::ClusterConfig clusterFor(uint16_t port) {
  flowguard::config::ClusterConfig config;
  config.name = "backend";
  config.hosts.push_back({"127.0.0.1", port});
  return config;
}

struct PoolWaiter : PoolCallbacks {
  UpstreamConnection* ready = nullptr;
  std::optional<UpstreamFailure> failure;
  void onPoolReady(UpstreamConnection& connection) override { ready = &connection; }
  void onPoolFailure(UpstreamFailure f) override { failure = f; }
};

// One request on one connection, handled like the router does: either read to the end and
// released, or (the client is gone) thrown away with discardResponse() from the head.
class Exchange : public UpstreamCallbacks {
 public:
  enum class Mode { Consume, DiscardOnHeaders };
  explicit Exchange(Mode mode) : mode_(mode) {}

  void start(UpstreamConnection& connection) {
    connection_ = &connection;
    connection.attach(*this, 30s, false);  // far beyond every wait here: no timer decides
    std::string_view request = kRequest;
    connection.write(&request, 1);
  }

  void onUpstreamHeaders(ResponseHead& head, bool endStream) override {
    ++headerCalls;
    status = head.status;
    if (mode_ == Mode::DiscardOnHeaders) {
      discarded = true;
      UpstreamConnection* connection = connection_;
      connection_ = nullptr;
      connection->discardResponse();
      if (afterDiscard) afterDiscard();
      return;
    }
    if (endStream) finish();
  }
  void onUpstreamData(std::string_view data, bool endStream) override {
    if (discarded) ++lateCalls;
    body.append(data);
    if (endStream) finish();
  }
  void onUpstreamTrailers(const HeaderMap&) override {
    if (discarded) ++lateCalls;
    finish();
  }
  void onUpstreamReset(UpstreamFailure failure) override {
    reset = failure;
    connection_ = nullptr;
  }
  void onUpstreamWritable() override {}

  int headerCalls = 0;
  int status = 0;
  std::string body;
  bool ended = false;
  bool discarded = false;
  int lateCalls = 0;  // data or trailers after discardResponse(): must stay 0
  std::optional<UpstreamFailure> reset;
  std::function<void()> afterDiscard;

 private:
  void finish() {
    ended = true;
    UpstreamConnection* connection = connection_;
    connection_ = nullptr;
    if (connection != nullptr) connection->release(true);
  }

  Mode mode_;
  UpstreamConnection* connection_ = nullptr;
};

// A worker's view of one upstream host: loop, dispatcher, cluster state and the host's pool.
struct Harness {
  explicit Harness(LoopbackUpstream& upstream)
      : server(upstream),
        cluster(clusterFor(upstream.port())),
        host(*cluster.hosts().at(0)),
        pool(std::make_unique<HostPool>(dispatcher, cluster, host, cluster.address(0), PoolSettings{})) {}
  ~Harness() {
    if (pool) shutdown();
  }

  // Asks the pool for a connection and waits (up to 5 s) for it. `atOnce` tells whether
  // the pool had an idle one at hand (served inside newStream) or had to open one.
  UpstreamConnection* acquire(bool& atOnce) {
    PoolWaiter waiter;
    HostPool::PendingHandle handle;
    atOnce = !pool->newStream(waiter, handle);
    bool answered = loop.runUntil([&] { return waiter.ready != nullptr || waiter.failure.has_value(); });
    if (!answered) pool->cancel(handle);
    REQUIRE_MESSAGE(answered, "the pool did not answer within 5 s");
    REQUIRE_MESSAGE(waiter.ready != nullptr, "the pool failed: ",
                    waiter.failure ? failureName(*waiter.failure) : std::string_view("?"));
    return waiter.ready;
  }

  // Closes everything; returns uv_loop_close's result (UV_EBUSY when a handle leaked).
  int shutdown() {
    pool.reset();
    dispatcher.close();
    return loop.finish();
  }

  flowguard::test::TestLoop loop;
  Dispatcher dispatcher{loop.get()};
  LoopbackUpstream& server;
  ClusterState cluster;
  HostState& host;
  std::unique_ptr<HostPool> pool;
};

// The second half every case shares: the next request must find `first` idle in the pool,
// get it back without a new connection, and be answered on it.
void checkReusedForNextRequest(Harness& h, UpstreamConnection* first) {
  // Idle in the pool, it must not hold its 64 KiB read buffer: memory follows the requests
  // being read, not the size of the pool.
  CHECK_MESSAGE(first->readBufferBytes() == 0, "a pooled connection still holds its read buffer");
  bool atOnce = false;
  UpstreamConnection* second = h.acquire(atOnce);
  CHECK_MESSAGE(atOnce, "the pool had no idle connection: the first one never came back");
  CHECK_MESSAGE(second == first, "the second request did not get the first connection");

  Exchange next(Exchange::Mode::Consume);
  next.start(*second);
  REQUIRE(h.loop.runUntil([&] { return next.ended || next.reset.has_value(); }));
  CHECK_FALSE(next.reset.has_value());
  CHECK(next.status == 200);
  CHECK(next.body == "ok");

  // The upstream answered both requests on one TCP connection.
  CHECK(h.server.requests() == 2);
  CHECK(h.server.accepted() == 1);
  CHECK(h.host.activeConnections.load() == 1);
  CHECK(h.cluster.activeConnections() == 1);
}

}  // namespace

TEST_CASE("a response read to its end returns the connection to the pool for the next request") {
  LoopbackUpstream server(kResponse);
  Harness h(server);

  bool atOnce = true;
  UpstreamConnection* first = h.acquire(atOnce);
  CHECK_FALSE(atOnce);  // a fresh pool has to connect

  Exchange exchange(Exchange::Mode::Consume);
  exchange.start(*first);
  REQUIRE(h.loop.runUntil([&] { return exchange.ended || exchange.reset.has_value(); }));
  CHECK_FALSE(exchange.reset.has_value());
  CHECK(exchange.headerCalls == 1);
  CHECK(exchange.status == 200);
  CHECK(exchange.body == "ok");
  // Released from inside the read callback that completed the response.
  REQUIRE(h.host.activeConnections.load() == 1);
  CHECK(first->idle());

  checkReusedForNextRequest(h, first);
  CHECK(h.shutdown() == 0);
}

TEST_CASE("a whole response discarded from onUpstreamHeaders returns the connection to the pool") {
  // Head and body in one send(), so one read: processInput has consumed the complete
  // response before it calls onUpstreamHeaders, where discardResponse() is called (the
  // router does so when the client is gone by the time its answer is written).
  LoopbackUpstream server(kResponse);
  Harness h(server);

  bool atOnce = true;
  UpstreamConnection* first = h.acquire(atOnce);
  CHECK_FALSE(atOnce);

  Exchange exchange(Exchange::Mode::DiscardOnHeaders);
  exchange.start(*first);
  REQUIRE(h.loop.runUntil([&] { return exchange.headerCalls > 0 || exchange.reset.has_value(); }));
  CHECK_FALSE(exchange.reset.has_value());
  CHECK(exchange.status == 200);
  CHECK(exchange.lateCalls == 0);  // nothing reaches callbacks that discarded the response
  // Nothing is left to read: discardResponse() must have handed the connection back at once,
  // not left it busy waiting for bytes that already came (the response timer is 30 s away).
  REQUIRE(h.host.activeConnections.load() == 1);  // still open, so `first` is still alive
  CHECK_MESSAGE(first->idle(), "the discarded connection is still busy instead of idle in its pool");

  checkReusedForNextRequest(h, first);
  CHECK(h.shutdown() == 0);
}

TEST_CASE("a response discarded before its body arrived is read to its end, then reused") {
  // The path that already worked: the head comes alone, the body only after the callbacks
  // discarded the response, so the connection must read and drop it before going idle.
  constexpr size_t headBytes = kResponse.size() - 2;
  LoopbackUpstream server(kResponse, headBytes);
  Harness h(server);

  bool atOnce = true;
  UpstreamConnection* first = h.acquire(atOnce);
  CHECK_FALSE(atOnce);

  Exchange exchange(Exchange::Mode::DiscardOnHeaders);
  exchange.afterDiscard = [&] { server.allowRest(); };
  exchange.start(*first);
  REQUIRE(h.loop.runUntil([&] { return exchange.headerCalls > 0 || exchange.reset.has_value(); }));
  CHECK_FALSE(exchange.reset.has_value());
  CHECK(exchange.status == 200);
  // The body is on its way; the connection stays open and becomes idle once it is read.
  // (activeConnections drops to 0 when it closes instead, before it frees itself.)
  REQUIRE(h.loop.runUntil([&] { return h.host.activeConnections.load() == 0 || first->idle(); }));
  REQUIRE(h.host.activeConnections.load() == 1);
  CHECK(first->idle());
  CHECK(exchange.lateCalls == 0);

  server.allowRest();  // for the second answer, which the consumer reads normally
  checkReusedForNextRequest(h, first);
  CHECK(h.shutdown() == 0);
}
