// Requests the gateway must refuse itself (malformed, too large) and its client timeouts.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/gateway_fixture.h"
#include "tests/support/test_support.h"

using namespace flowguard::test;
using Clock = std::chrono::steady_clock;

namespace {

struct Rejection {
  const char* what;
  std::string request;
  int status;
};

std::string manyHeaders(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += "X-H" + std::to_string(i) + ": v\r\n";
  return out;
}

std::string chunked(size_t total, size_t piece) {
  std::string out;
  for (size_t sent = 0; sent < total; sent += piece) {
    size_t n = std::min(piece, total - sent);
    char line[32];
    std::snprintf(line, sizeof(line), "%zx\r\n", n);
    out += line + std::string(n, 'c') + "\r\n";
  }
  return out + "0\r\n\r\n";
}

GatewaySpec limitedSpec(uint16_t backendPort) {
  GatewaySpec spec = proxySpec({backendPort});
  spec.listener = {"max_header_bytes: 1KiB", "max_headers: 10", "max_request_body: 1KiB"};
  return spec;
}

}  // namespace

TEST_CASE("malformed and oversized requests are refused with JSON and a close") {
  Backend b;
  Gateway gw(limitedSpec(b.port));
  const std::vector<Rejection> rejections = {
      {"bad request line", "GARBAGE\r\n\r\n", 400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400},
      {"Content-Length and Transfer-Encoding",
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\n",
       400},
      {"two different Content-Lengths",
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
      {"Content-Length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!", 400},
      {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400},
      {"unknown transfer coding",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n", 501},
      {"head larger than max_header_bytes",
       "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'b') + "\r\n\r\n", 431},
      {"more fields than max_headers", "GET / HTTP/1.1\r\nHost: x\r\n" + manyHeaders(15) + "\r\n", 431},
      {"Content-Length above max_request_body",
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + std::string(2000, 'c'), 413},
  };
  uint64_t before = b.requests();
  for (const auto& rejection : rejections) {
    CAPTURE(rejection.what);
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw(rejection.request);
    HttpResponse r = c.readResponse();
    checkErrorJson(r, rejection.status);
    CHECK(r.header("Connection") == "close");
    CHECK(c.peerClosed(5s));
  }
  // None of them reached the backend: only the second probe was counted.
  CHECK(b.requests() == before + 1);

  // A good request ahead of a bad one on the same connection is still answered.
  HttpClient c;
  c.connect(gw.port);
  c.sendRaw(get("/good") + "BAD LINE\r\n\r\n");
  CHECK(json(c.readResponse())["path"] == "/good");
  checkErrorJson(c.readResponse(), 400);
  CHECK(c.peerClosed(5s));
  CHECK(b.requests() == before + 3);

  // Limits are inclusive: exactly max_request_body and max_headers fields pass.
  HttpClient ok;
  ok.connect(gw.port);
  ok.sendRaw("POST /fits HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n" + std::string(1024, 'c'));
  HttpResponse fits = ok.readResponse();
  CHECK(fits.status == 200);
  CHECK(json(fits)["body_bytes"] == 1024);
  ok.sendRaw("GET /fields HTTP/1.1\r\nHost: x\r\n" + manyHeaders(9) + "\r\n");
  CHECK(ok.readResponse().status == 200);
}

TEST_CASE("a chunked body above max_request_body gets 413 and a close") {
  Backend b;
  Gateway gw(limitedSpec(b.port));
  HttpClient c;
  c.connect(gw.port);
  c.sendRaw("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  c.sendRaw(chunked(2000, 500));
  HttpResponse r = c.readResponse();
  checkErrorJson(r, 413);
  CHECK(r.header("Connection") == "close");
  CHECK(c.peerClosed(5s));

  // A chunked body within the limit passes.
  HttpClient ok;
  ok.connect(gw.port);
  ok.sendRaw("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(1000, 300));
  HttpResponse fits = ok.readResponse();
  CHECK(fits.status == 200);
  CHECK(json(fits)["body_bytes"] == 1000);
}

TEST_CASE("header and idle timeouts") {
  // Different settings, so each subcase tells which timer closed the connection: each must
  // fire no sooner than its setting and no later than twice it. The lower bounds are
  // measured from before the step that starts the timer (it cannot start earlier), the
  // upper ones from the last byte the test sent. This test runs alone (RUN_SERIAL), so
  // twice the setting is room enough for scheduling delays.
  constexpr Millis kHeader{400};
  constexpr Millis kIdle{1200};
  // The gateway's timers run on libuv's loop clock: milliseconds of a coarse monotonic clock
  // read when the loop wakes, which may lag the real time by a few ms (a jiffy), so a timer
  // can end that much before its setting measured on a precise clock.
  constexpr Millis kLoopClockSlack{10};
  Backend b;
  GatewaySpec spec = proxySpec({b.port});
  spec.listener = {"header_timeout: 400ms", "idle_timeout: 1200ms"};
  Gateway gw(spec);

  SUBCASE("a head not finished within header_timeout gets 408 and a close") {
    HttpClient c;
    auto beforeConnect = Clock::now();  // the header timer starts when the gateway accepts
    c.connect(gw.port);
    c.sendRaw("GET /slow HTTP/1.1\r\nHost: x\r\nX-Partial: ");
    auto lastByteSent = Clock::now();
    HttpResponse r = c.readResponse(5s);
    auto answered = Clock::now();
    CAPTURE(std::chrono::duration_cast<Millis>(answered - beforeConnect).count());
    CAPTURE(std::chrono::duration_cast<Millis>(answered - lastByteSent).count());
    checkErrorJson(r, 408);
    CHECK(r.header("Connection") == "close");
    CHECK(c.peerClosed(5s));
    CHECK(answered - beforeConnect >= kHeader - kLoopClockSlack);
    CHECK(answered - lastByteSent <= 2 * kHeader);
    CHECK(b.requests() == 1);  // only the probe
  }
  SUBCASE("a head trickled byte by byte still times out") {
    HttpClient c;
    auto beforeConnect = Clock::now();
    c.connect(gw.port);
    const std::string head = "GET /trickle HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(200, 'a');
    bool closed = false;
    for (size_t i = 0; i < head.size() && !closed; ++i) {
      try {
        c.sendRaw(head.substr(i, 1));
      } catch (const std::exception&) {
        break;  // the gateway closed while we were sending
      }
      closed = c.peerClosed(Millis(20));
    }
    CHECK((closed || c.peerClosed(2s)));
    auto elapsed = Clock::now() - beforeConnect;
    CAPTURE(std::chrono::duration_cast<Millis>(elapsed).count());
    // Each byte is a new arrival, yet none restarts the head's clock (the whole head would
    // take ~4 s), and the idle timer is not the one that fires.
    CHECK(elapsed >= kHeader - kLoopClockSlack);
    CHECK(elapsed < kIdle);
    checkErrorJson(c.readResponse(), 408);
  }
  SUBCASE("an idle keep-alive connection is closed after idle_timeout") {
    HttpClient c;
    c.connect(gw.port);
    auto beforeSend = Clock::now();  // the idle timer starts after the answer is written
    c.sendRaw(get("/one"));
    auto lastByteSent = Clock::now();
    CHECK(c.readResponse().status == 200);
    CHECK(c.peerClosed(5s));
    auto closedAt = Clock::now();
    CAPTURE(std::chrono::duration_cast<Millis>(closedAt - beforeSend).count());
    CHECK(closedAt - beforeSend >= kIdle - kLoopClockSlack);
    CHECK(closedAt - lastByteSent <= 2 * kIdle);
  }
  SUBCASE("a connection that never sends a byte is closed after header_timeout") {
    // The first request is due within the header timeout from the accept.
    HttpClient c;
    auto beforeConnect = Clock::now();
    c.connect(gw.port);
    auto connected = Clock::now();
    CHECK(c.peerClosed(5s));
    auto closedAt = Clock::now();
    CAPTURE(std::chrono::duration_cast<Millis>(closedAt - beforeConnect).count());
    CHECK(closedAt - beforeConnect >= kHeader - kLoopClockSlack);
    CHECK(closedAt - connected <= 2 * kHeader);
  }
  SUBCASE("a connection kept busy is not closed") {
    HttpClient c;
    c.connect(gw.port);
    // Five requests 600 ms apart span 2.4 s: twice the idle timeout, never idle for it.
    for (int i = 0; i < 5; ++i) {
      c.sendRaw(get("/busy"));
      CHECK(c.readResponse().status == 200);
      CHECK_FALSE(c.peerClosed(Millis(600)));
    }
  }
}

TEST_CASE("Expect: 100-continue on a request refused for its size gets no 100") {
  Backend b;
  Gateway gw(limitedSpec(b.port));
  HttpClient c;
  c.connect(gw.port);
  c.sendRaw("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
  HttpResponse r = c.readResponse();
  checkErrorJson(r, 413);
  CHECK(c.peerClosed(5s));
  CHECK(b.requests() == 1);  // only the probe
}

TEST_CASE("concurrent requests queue for the per-host connection limit") {
  Backend b;
  Gateway gw(proxySpec({b.port}, "max_connections_per_host: 4"));
  constexpr int kClients = 40;
  for (const HttpResponse& r : concurrentGets(gw.port, kClients, "/delay/20")) CHECK(r.status == 200);
  uint64_t upstreamConnections = b.connectionsAccepted() - 2;  // minus both probes
  CAPTURE(upstreamConnections);
  CHECK(upstreamConnections >= 1);
  CHECK(upstreamConnections <= 4);
  CHECK(b.requests() == kClients + 2);
}

TEST_CASE("requests beyond max_pending_requests get 503") {
  Backend b;
  Gateway gw(
      proxySpec({b.port}, "max_connections_per_host: 1, circuit_breakers: { max_pending_requests: 2 }"));
  constexpr int kClients = 10;
  // All ten arrive within milliseconds; each holds the only connection for 500 ms.
  int ok = 0, overflow = 0;
  for (const HttpResponse& r : concurrentGets(gw.port, kClients, "/delay/500")) {
    if (r.status == 200) {
      ++ok;
    } else {
      checkErrorJson(r, 503);
      ++overflow;
    }
  }
  CHECK(ok + overflow == kClients);
  CHECK(ok >= 1);
  CHECK(ok <= 3);  // one on the connection, two waiting
  CHECK(overflow >= kClients - 3);
}
