// Slow clients against a real gateway: 1,000 slowloris connections (a head trickled one
// byte a second) and 1,000 slow bodies (one body byte a second), all driven from this one
// thread over non-blocking sockets and poll(), while a normal client sends ~200 req/s on
// keep-alive connections. The normal client must not notice (all 200, and a p99 within a
// generous sanity bound here; bench/timing-bounds.sh checks the real target, p99 < 50 ms, on a
// quiet machine); the slow ones are cut at header_timeout / body_timeout, and not later than
// twice that. A cut connection is replaced at once while the normal load runs, so about
// 2,000 slow connections are open the whole time.
#include "tests/integration/gateway_fixture.h"

#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>
#include <mutex>

using namespace flowguard::test;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kSlowEach = 1000;
constexpr auto kHeaderTimeout = 3s;
constexpr auto kBodyTimeout = 4s;
constexpr auto kLoadTime = 5s;

// The precise latency target (FLOWGUARD_PRECISE_TIMING=1, as bench/timing-bounds.sh sets it)
// or a sanity bound that a loaded CI machine keeps: a gateway that stalls its normal clients
// behind the slow ones (a blocking read, a serial accept loop) misses even that.
double p99BoundMs() {
  return preciseTiming() ? 50.0 : 1000.0;
}

enum class Kind { Slowloris, SlowBody };

struct SlowConn {
  Kind kind;
  int fd = -1;
  Clock::time_point opened;
  Clock::time_point nextSend;  // each connection trickles on its own second
  Clock::time_point closedAt;
  bool closed = false;
  std::string received;
};

int connectNonBlocking(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  // Blocking connect: on loopback it completes at once (the backlog is 4096).
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error("connect: " + std::string(std::strerror(err)));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

void sendSome(int fd, std::string_view data) {
  ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);  // a failure shows up as a close
}

SlowConn openSlow(Kind kind, uint16_t port) {
  SlowConn c;
  c.kind = kind;
  c.fd = connectNonBlocking(port);
  c.opened = Clock::now();
  c.nextSend = c.opened + 1s;
  if (kind == Kind::Slowloris) {
    sendSome(c.fd, "GET / HTTP/1.1\r\nHost: x\r\n");
  } else {
    sendSome(c.fd, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\na");
  }
  return c;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

TEST_CASE("slow clients: 1,000 slowloris and 1,000 slow bodies are cut; normal clients are not held up") {
  // 2,000 slow sockets plus their replacements here, and as many in the gateway (plus
  // upstream sockets) and the backend, which inherit this limit.
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < 8192 && limit.rlim_max > limit.rlim_cur) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 16384);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  REQUIRE_MESSAGE(limit.rlim_cur >= 6000,
                  "RLIMIT_NOFILE too low for 2,000 slow connections: " << limit.rlim_cur);

  Backend backend;
  GatewaySpec spec = proxySpec(
      {backend.port},
      "circuit_breakers: { max_connections: 8192, max_pending_requests: 8192, max_requests: 8192 }");
  spec.workers = 2;
  spec.listener = {"header_timeout: 3s", "body_timeout: 4s"};
  Gateway gw(spec);

  std::vector<SlowConn> conns;
  conns.reserve(6 * kSlowEach);
  // Opened over about a second, as an attack's connections arrive: their timeouts (and
  // replacements) then come spread out too, instead of all in one loop iteration.
  for (int i = 0; i < kSlowEach; ++i) {
    conns.push_back(openSlow(Kind::Slowloris, gw.port));
    conns.push_back(openSlow(Kind::SlowBody, gw.port));
    if (i % 4 == 3) std::this_thread::sleep_for(4ms);
  }

  // The normal client: 4 keep-alive connections, one GET every 20 ms each.
  std::mutex mutex;
  std::vector<double> latencies;
  std::vector<int> statuses;
  std::string clientError;
  std::atomic<bool> loadDone{false};
  std::vector<std::thread> threads;
  // Joins the normal clients on every way out (a throw below included); they stop at
  // loadDone. Their own failures are caught in the thread and reported after the join.
  StopAndJoin joiner{loadDone, threads};
  const auto loadStart = Clock::now();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      try {
        HttpClient client;
        client.connect(gw.port);
        auto next = loadStart + Millis(5 * t);
        while (!loadDone && Clock::now() - loadStart < kLoadTime) {
          std::this_thread::sleep_until(next);
          next += 20ms;
          const auto sent = Clock::now();
          client.sendRaw(get("/normal"));
          HttpResponse r = client.readResponse(5s);
          const double latency = ms(Clock::now() - sent);
          std::lock_guard lock(mutex);
          latencies.push_back(latency);
          statuses.push_back(r.status);
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        clientError = e.what();
      }
    });
  }

  // The slow clients' loop: one byte a second to each open connection, replacements while
  // the normal load runs, and every close noted with its time.
  size_t openCount = conns.size();
  const auto hardDeadline = loadStart + kLoadTime + 2 * kBodyTimeout + 2s;
  while (Clock::now() < hardDeadline) {
    const bool loadRunning = Clock::now() - loadStart < kLoadTime;
    if (!loadRunning && openCount == 0) break;
    std::vector<pollfd> fds;
    std::vector<size_t> index;
    for (size_t i = 0; i < conns.size(); ++i) {
      if (conns[i].closed) continue;
      fds.push_back({conns[i].fd, POLLIN, 0});
      index.push_back(i);
    }
    ::poll(fds.data(), fds.size(), 10);
    const auto now = Clock::now();
    std::vector<Kind> toReplace;
    for (size_t k = 0; k < fds.size(); ++k) {
      if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      SlowConn& c = conns[index[k]];
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(c.fd, buf, sizeof(buf), 0)) > 0) c.received.append(buf, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        c.closed = true;
        c.closedAt = now;
        ::close(c.fd);
        --openCount;
        if (loadRunning) toReplace.push_back(c.kind);
      }
    }
    for (Kind kind : toReplace) {
      conns.push_back(openSlow(kind, gw.port));
      ++openCount;
    }
    const auto sendTime = Clock::now();
    for (auto& c : conns) {
      if (c.closed || sendTime < c.nextSend) continue;
      c.nextSend += 1s;
      sendSome(c.fd, "a");  // a header-name byte, or a body byte
    }
  }
  loadDone = true;
  for (auto& t : threads) t.join();
  threads.clear();  // joined: nothing left for the joiner
  for (auto& c : conns) {
    if (!c.closed) ::close(c.fd);
  }

  INFO("gateway log tail:\n" << gw.process.logTail());
  CHECK(clientError.empty());
  INFO("client error: " << clientError);
  REQUIRE(latencies.size() >= 900);  // ~250 per connection over 5 s
  const double p50 = percentile(latencies, 0.5), p99 = percentile(latencies, 0.99),
               max = percentile(latencies, 1.0);
  MESSAGE("normal client: " << latencies.size() << " requests, p50 " << p50 << " ms, p99 " << p99
                            << " ms, max " << max << " ms, with " << conns.size()
                            << " slow connections opened in all");
  CHECK(std::all_of(statuses.begin(), statuses.end(), [](int s) { return s == 200; }));
  CHECK(p99 < p99BoundMs());

  int loris = 0, bodies = 0, loris408 = 0, bodies408 = 0, notClosed = 0, early = 0, late = 0;
  std::vector<double> lorisCut, bodyCut;
  for (const auto& c : conns) {
    if (!c.closed) {
      ++notClosed;
      continue;
    }
    const auto lifetime = c.closedAt - c.opened;
    const auto timeout = c.kind == Kind::Slowloris ? kHeaderTimeout : kBodyTimeout;
    if (lifetime < timeout - 100ms) ++early;
    if (lifetime > 2 * timeout) ++late;  // a cut must not wait more than the timeout over
    const bool got408 = c.received.starts_with("HTTP/1.1 408");
    if (c.kind == Kind::Slowloris) {
      ++loris;
      loris408 += got408 ? 1 : 0;
      lorisCut.push_back(ms(lifetime));
    } else {
      ++bodies;
      bodies408 += got408 ? 1 : 0;
      bodyCut.push_back(ms(lifetime));
    }
  }
  MESSAGE("slowloris: " << loris << " cut (" << loris408 << " with 408) after " << percentile(lorisCut, 0.0)
                        << ".." << percentile(lorisCut, 1.0) << " ms; slow bodies: " << bodies << " cut ("
                        << bodies408 << " with 408) after " << percentile(bodyCut, 0.0) << ".."
                        << percentile(bodyCut, 1.0) << " ms");
  CHECK(notClosed == 0);
  CHECK(early == 0);
  CHECK(late == 0);
  CHECK(loris >= kSlowEach);
  CHECK(bodies >= kSlowEach);
  CHECK(loris408 == loris);
  CHECK(bodies408 == bodies);
  for (const auto& c : conns) {
    if (c.kind == Kind::SlowBody && !c.received.starts_with("HTTP/1.1 408")) {
      MESSAGE("a slow body got: " << c.received.substr(0, 300));
      break;
    }
  }
}
