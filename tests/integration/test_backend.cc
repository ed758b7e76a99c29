// flowguard-backend as a black box: the real binary on a free loopback port.
#include <doctest/doctest.h>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_support.h"

using namespace flowguard::test;
using Json = nlohmann::json;

namespace {

std::vector<std::string> backendArgs(uint16_t port, std::string name, std::vector<std::string> extra) {
  std::vector<std::string> args{binaryPath("flowguard-backend"), "--port", std::to_string(port), "--name",
                                std::move(name)};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

struct Backend {
  explicit Backend(std::string name = "b1", std::vector<std::string> extra = {})
      : process(
            startOnFreePort([&](uint16_t p) { return backendArgs(p, name, extra); }, port, "listening on")) {}
  // Every test ends with a clean SIGTERM exit (sanitizer builds report errors as a failure
  // exit status, so this also catches memory errors and leaks in the backend).
  ~Backend() {
    int status = process.stop();
    INFO("backend log tail:\n" << process.logTail());
    CHECK(status == 0);
  }
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  uint16_t port = 0;
  Process process;
};

std::string get(std::string_view path, std::string_view extra = {}) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: backend\r\n" + std::string(extra) + "\r\n";
}

Json json(const HttpResponse& r) {
  return Json::parse(r.body);
}

bool isPattern(const std::string& body) {
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != static_cast<char>('a' + i % 26)) return false;
  }
  return true;
}

// Counts of accepted connections, as the backend sees them (the probe adds one).
uint64_t acceptedConnections(uint16_t port) {
  return json(httpGet(port, "/_stats"))["connections_accepted"].get<uint64_t>();
}

}  // namespace

TEST_CASE("health and startup line") {
  Backend b("alpha");
  HttpResponse r = httpGet(b.port, "/health");
  CHECK(r.status == 200);
  CHECK(r.header("Content-Type") == "application/json");
  Json j = json(r);
  CHECK(j["status"] == "ok");
  CHECK(j["name"] == "alpha");
  CHECK(
      b.process.waitForLog("flowguard-backend alpha listening on 127.0.0.1:" + std::to_string(b.port) + "\n")
          .size() > 0);
}

TEST_CASE("port 0 prints the real port") {
  Process p({binaryPath("flowguard-backend"), "--port", "0", "--name", "zero"});
  std::string log = p.waitForLog("\n");
  const std::string prefix = "flowguard-backend zero listening on 127.0.0.1:";
  REQUIRE(log.rfind(prefix, 0) == 0);
  int port = std::stoi(log.substr(prefix.size()));
  REQUIRE(port > 0);
  REQUIRE(port < 65536);
  CHECK(httpGet(static_cast<uint16_t>(port), "/health").status == 200);
  CHECK(p.stop() == 0);
}

TEST_CASE("request description: method, path, query, headers, body size") {
  Backend b;
  HttpClient c;
  c.connect(b.port);
  c.sendRaw(
      "POST /some/where?x=1&y=two HTTP/1.1\r\nHost: backend\r\nX-Test: abc\r\n"
      "X-Dup: one\r\nx-dup: two\r\nContent-Length: 11\r\n\r\nhello world");
  HttpResponse r = c.readResponse();
  REQUIRE(r.status == 200);
  Json j = json(r);
  CHECK(j["backend"] == "b1");
  CHECK(j["method"] == "POST");
  CHECK(j["path"] == "/some/where");
  CHECK(j["query"] == "x=1&y=two");
  CHECK(j["headers"]["host"] == "backend");
  CHECK(j["headers"]["x-test"] == "abc");
  CHECK(j["headers"]["x-dup"] == Json::array({"one", "two"}));
  CHECK(j["headers"]["content-length"] == "11");
  CHECK(j["body_bytes"] == 11);
  CHECK(j["request_on_connection"] == 1);

  // A chunked body is counted after decoding.
  c.sendRaw(
      "PUT /up HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n");
  Json k = json(c.readResponse());
  CHECK(k["method"] == "PUT");
  CHECK(k["body_bytes"] == 8);
}

TEST_CASE("keep-alive reuses the connection; new connections are counted") {
  Backend b;
  HttpClient c;
  c.connect(b.port);
  c.sendRaw(get("/first"));
  Json one = json(c.readResponse());
  c.sendRaw(get("/second"));
  Json two = json(c.readResponse());
  CHECK(one["connection_id"] == two["connection_id"]);
  CHECK(one["request_on_connection"] == 1);
  CHECK(two["request_on_connection"] == 2);
  CHECK_FALSE(c.peerClosed(Millis(100)));

  HttpClient other;
  other.connect(b.port);
  other.sendRaw(get("/third"));
  Json three = json(other.readResponse());
  CHECK(three["connection_id"] != one["connection_id"]);
  CHECK(three["request_on_connection"] == 1);

  Json stats = json(httpGet(b.port, "/_stats"));
  // waitForPort's probe, c, other and this request.
  CHECK(stats["connections_accepted"] == 4);
  CHECK(stats["requests"] == 4);
}

TEST_CASE("pipelined requests are answered in order") {
  Backend b;
  HttpClient c;
  c.connect(b.port);
  // The first answer is delayed: a server answering out of order would send /p2 first.
  c.sendRaw(get("/delay/100") + get("/p2") + get("/p3"));
  HttpResponse r1 = c.readResponse();
  HttpResponse r2 = c.readResponse();
  HttpResponse r3 = c.readResponse();
  CHECK(json(r1)["path"] == "/delay/100");
  CHECK(json(r1)["delay_ms"] == 100);
  CHECK(json(r2)["path"] == "/p2");
  CHECK(json(r3)["path"] == "/p3");
  CHECK(json(r3)["request_on_connection"] == 3);
  CHECK(json(r1)["connection_id"] == json(r3)["connection_id"]);
}

TEST_CASE("/delay waits at least the given time") {
  Backend b;
  auto start = std::chrono::steady_clock::now();
  HttpResponse r = httpGet(b.port, "/delay/200");
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(r.status == 200);
  CHECK(elapsed >= Millis(200));
}

TEST_CASE("/status/N and bad arguments") {
  Backend b;
  HttpResponse r = httpGet(b.port, "/status/503");
  CHECK(r.status == 503);
  CHECK(json(r)["status"] == 503);
  CHECK(json(r)["backend"] == "b1");
  CHECK(httpGet(b.port, "/status/abc").status == 400);
  CHECK(httpGet(b.port, "/bytes/-1").status == 400);

  // 204 has no body; the connection stays usable.
  HttpClient c;
  c.connect(b.port);
  c.sendRaw(get("/status/204") + get("/status/404"));
  HttpResponse none = c.readResponse();
  CHECK(none.status == 204);
  CHECK(none.body.empty());
  CHECK(c.readResponse().status == 404);
}

TEST_CASE("/bytes/N with Content-Length and chunked") {
  Backend b;
  HttpClient c;
  c.connect(b.port);
  c.sendRaw(get("/bytes/200001"));
  HttpResponse r = c.readResponse();
  CHECK(r.status == 200);
  CHECK(r.header("Content-Length") == "200001");
  CHECK(r.header("Content-Type") == "application/octet-stream");
  CHECK(r.body.size() == 200001);
  CHECK(isPattern(r.body));

  c.sendRaw(get("/bytes/150000?chunked=1"));
  HttpResponse chunked = c.readResponse();
  CHECK(chunked.header("Transfer-Encoding") == "chunked");
  CHECK_FALSE(chunked.hasHeader("Content-Length"));
  CHECK(chunked.body.size() == 150000);
  CHECK(isPattern(chunked.body));

  c.sendRaw(get("/bytes/0"));
  HttpResponse empty = c.readResponse();
  CHECK(empty.header("Content-Length") == "0");
  CHECK(empty.body.empty());

  c.sendRaw("HEAD /bytes/1000 HTTP/1.1\r\nHost: b\r\n\r\n");
  HttpResponse head = c.readResponse(10s, /*headRequest=*/true);
  CHECK(head.header("Content-Length") == "1000");
  CHECK(head.body.empty());

  // Still the same connection after all of that.
  c.sendRaw(get("/after"));
  CHECK(json(c.readResponse())["request_on_connection"] == 5);
}

TEST_CASE("/echo round trip of 1 MB, with Content-Length and chunked") {
  Backend b;
  std::string payload(1 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + i / 4096);

  HttpClient c;
  c.connect(b.port);
  {
    // Sending and reading at once: the backend stops reading while its echo is unread.
    std::thread sender([&] {
      c.sendRaw(
          "POST /echo HTTP/1.1\r\nHost: b\r\nContent-Type: application/x-test\r\n"
          "Content-Length: " +
          std::to_string(payload.size()) + "\r\n\r\n");
      c.sendRaw(payload);
    });
    HttpResponse r = c.readResponse(30s);
    sender.join();
    CHECK(r.status == 200);
    CHECK(r.header("Content-Length") == std::to_string(payload.size()));
    CHECK(r.header("Content-Type") == "application/x-test");
    CHECK(r.body == payload);
  }
  {
    std::thread sender([&] {
      c.sendRaw("POST /echo HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n");
      for (size_t off = 0; off < payload.size(); off += 100000) {
        size_t n = std::min<size_t>(100000, payload.size() - off);
        char size[32];
        std::snprintf(size, sizeof(size), "%zx\r\n", n);
        c.sendRaw(std::string(size) + payload.substr(off, n) + "\r\n");
      }
      c.sendRaw("0\r\n\r\n");
    });
    HttpResponse r = c.readResponse(30s);
    sender.join();
    CHECK(r.header("Transfer-Encoding") == "chunked");
    CHECK(r.body == payload);
  }
  c.sendRaw(get("/after-echo"));
  CHECK(json(c.readResponse())["request_on_connection"] == 3);
}

TEST_CASE("HTTP/1.0 and Connection: close end the connection") {
  Backend b;
  {
    HttpClient c;
    c.connect(b.port);
    c.sendRaw("GET /old HTTP/1.0\r\n\r\n");
    HttpResponse r = c.readResponse();
    CHECK(r.status == 200);
    CHECK(json(r)["path"] == "/old");
    CHECK(c.peerClosed(5s));
  }
  {
    HttpClient c;
    c.connect(b.port);
    c.sendRaw("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    HttpResponse r = c.readResponse();
    CHECK(r.status == 200);
    CHECK_FALSE(c.peerClosed(Millis(100)));
    c.sendRaw("GET /old2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(json(c.readResponse())["request_on_connection"] == 2);
  }
  {
    HttpClient c;
    c.connect(b.port);
    c.sendRaw(get("/bye", "Connection: close\r\n"));
    HttpResponse r = c.readResponse();
    CHECK(r.header("Connection") == "close");
    CHECK(c.peerClosed(5s));
  }
}

TEST_CASE("invalid requests get 400 and a close") {
  Backend b;
  const char* bad[] = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: b\r\nContent-Length: 1, 2\r\n\r\n",
  };
  for (const char* request : bad) {
    CAPTURE(request);
    HttpClient c;
    c.connect(b.port);
    c.sendRaw(request);
    HttpResponse r = c.readResponse();
    CHECK(r.status == 400);
    CHECK(r.header("Connection") == "close");
    CHECK(Json::parse(r.body).contains("error"));
    CHECK(c.peerClosed(5s));
  }
  // A good request before the bad one is still answered first.
  HttpClient c;
  c.connect(b.port);
  c.sendRaw(get("/good") + "BAD REQUEST LINE\r\n\r\n");
  CHECK(c.readResponse().status == 200);
  CHECK(c.readResponse().status == 400);
  CHECK(c.peerClosed(5s));
}

TEST_CASE("large bodies stream in bounded memory") {
  Backend b;
  constexpr uint64_t kSize = 100'000'000;
  const size_t limit = 64u << 20;  // far below the 100 MB a buffering server would need
  HttpClient c;
  c.connect(b.port);
  c.sendRaw(get("/bytes/" + std::to_string(kSize)));
  HttpResponse r = c.readResponse(120s, false, /*keepBody=*/false);
  CHECK(r.status == 200);
  CHECK(c.bodyBytes() == kSize);

  std::thread sender([&] {
    c.sendRaw("POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: " + std::to_string(kSize) + "\r\n\r\n");
    std::string block(1 << 20, 'u');
    for (uint64_t sent = 0; sent < kSize; sent += block.size()) {
      c.sendRaw(std::string_view(block).substr(0, std::min<uint64_t>(block.size(), kSize - sent)), 120s);
    }
  });
  HttpResponse up = c.readResponse(120s);
  sender.join();
  CHECK(json(up)["body_bytes"] == kSize);
  size_t peak = peakRssBytes(b.process.pid());
  CAPTURE(peak);
  CHECK(peak > 0);
  CHECK(peak < limit);
}

TEST_CASE("SIGTERM exits cleanly, also with open connections") {
  Backend b;
  HttpClient idle;
  idle.connect(b.port);
  idle.sendRaw(get("/x"));
  CHECK(idle.readResponse().status == 200);
  HttpClient waiting;
  waiting.connect(b.port);
  waiting.sendRaw(get("/delay/60000"));
  // Make sure the delayed request has been read before the signal.
  REQUIRE(waitUntil([&] { return acceptedConnections(b.port) >= 4; }, 5s));
  b.process.signal(SIGTERM);
  auto status = b.process.waitExit(5s);
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  CHECK(idle.peerClosed(5s));
  CHECK(waiting.peerClosed(5s));
}

// ---- fault injection -----------------------------------------------------------------------

namespace {

std::string post(std::string_view path, std::string_view body) {
  return "POST " + std::string(path) + " HTTP/1.1\r\nHost: backend\r\nContent-Type: " +
         "application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

// One request on a fresh connection.
HttpResponse request(uint16_t port, const std::string& raw) {
  HttpClient c;
  c.connect(port);
  c.sendRaw(raw);
  return c.readResponse();
}

HttpResponse postFault(uint16_t port, std::string_view body) {
  return request(port, post("/_fault", body));
}

Json stats(uint16_t port) {
  return json(httpGet(port, "/_stats"));
}

bool isInjectedFailure(const HttpResponse& r, std::string_view name) {
  if (r.status != 500 && r.status != 503) return false;
  Json j = json(r);
  return j["error"] == "injected failure" && j["backend"] == name;
}

// Statuses of `count` GETs on one keep-alive connection.
std::vector<int> statusSequence(uint16_t port, int count) {
  HttpClient c;
  c.connect(port);
  std::vector<int> statuses;
  for (int i = 0; i < count; ++i) {
    c.sendRaw(get("/seq/" + std::to_string(i)));
    statuses.push_back(c.readResponse().status);
  }
  return statuses;
}

template <typename F>
Millis timed(F f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start);
}

// Everything the peer sends until it closes; `reset` tells whether it ended with ECONNRESET.
std::string readUntilClosed(int fd, bool& reset, Millis timeout = 5s) {
  std::string data;
  reset = false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left <= Millis(0)) throw std::runtime_error("peer did not close in time");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      data.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return data;
    } else if (errno == ECONNRESET) {
      reset = true;
      return data;
    } else if (errno != EAGAIN && errno != EINTR) {
      throw std::runtime_error("recv failed");
    }
  }
}

}  // namespace

TEST_CASE("fault: startup line lists the active faults after the usual prefix") {
  Backend b("faulty", {"--fail-rate", "1", "--latency", "5:2", "--seed", "5"});
  b.process.waitForLog("flowguard-backend faulty listening on 127.0.0.1:" + std::to_string(b.port) +
                       " faults: fail-rate=1 latency=5+-2ms seed=5\n");
}

TEST_CASE("fault: fail-rate 1 answers every request 500 or 503; control endpoints are spared") {
  Backend b("b1", {"--fail-rate", "1", "--seed", "1"});
  std::vector<int> statuses = statusSequence(b.port, 20);
  HttpClient c;
  c.connect(b.port);
  for (const char* path : {"/x", "/status/200", "/bytes/10", "/delay/1"}) {
    CAPTURE(path);
    c.sendRaw(get(path));
    CHECK(isInjectedFailure(c.readResponse(), "b1"));
  }
  c.sendRaw(post("/echo", "hello"));
  CHECK(isInjectedFailure(c.readResponse(), "b1"));
  int fiveHundreds = 0;
  for (int s : statuses) {
    CHECK((s == 500 || s == 503));
    fiveHundreds += s == 500;
  }
  // Both statuses occur (fixed seed, so this is no matter of luck).
  CHECK(fiveHundreds > 0);
  CHECK(fiveHundreds < 20);

  CHECK(httpGet(b.port, "/health").status == 200);
  CHECK(httpGet(b.port, "/_fault").status == 200);
  Json s = stats(b.port);
  CHECK(s["injected_failures"] == 25);
  CHECK(s["health_checks"] == 1);
  CHECK(s["health_failures"] == 0);
  CHECK(s["resets"] == 0);
  CHECK(s["hangs"] == 0);
}

TEST_CASE("fault: fail-rate 0.5 mixes answers, reproducibly for a seed") {
  Backend a("b1", {"--fail-rate", "0.5", "--seed", "42"});
  Backend same("b1", {"--fail-rate", "0.5", "--seed", "42"});
  Backend other("b1", {"--fail-rate", "0.5", "--seed", "43"});
  std::vector<int> seqA = statusSequence(a.port, 100);
  std::vector<int> seqSame = statusSequence(same.port, 100);
  std::vector<int> seqOther = statusSequence(other.port, 100);
  int failures = 0;
  for (int s : seqA) {
    CHECK((s == 200 || s == 500 || s == 503));
    failures += s != 200;
  }
  CAPTURE(failures);
  CHECK(failures >= 25);
  CHECK(failures <= 75);
  CHECK(seqA == seqSame);
  CHECK(seqA != seqOther);
  CHECK(stats(a.port)["injected_failures"] == failures);
}

TEST_CASE("fault: latency delays answers (and /echo, and pipelined requests) at least MS - JITTER") {
  {
    Backend b("b1", {"--latency", "200"});
    Millis t = timed([&] { CHECK(httpGet(b.port, "/x").status == 200); });
    CHECK(t >= Millis(200));
  }
  Backend b("b1", {"--latency", "150:50", "--seed", "3"});
  HttpClient c;
  c.connect(b.port);
  for (int i = 0; i < 3; ++i) {
    c.sendRaw(get("/x"));
    Millis t = timed([&] { CHECK(c.readResponse().status == 200); });
    CHECK(t >= Millis(100));
  }
  Millis echo = timed([&] {
    c.sendRaw(post("/echo", "delayed echo"));
    HttpResponse r = c.readResponse();
    CHECK(r.status == 200);
    CHECK(r.body == "delayed echo");
  });
  CHECK(echo >= Millis(100));
  // Pipelined requests each wait their own latency, in order.
  Millis three = timed([&] {
    c.sendRaw(get("/p1") + get("/p2") + get("/p3"));
    CHECK(json(c.readResponse())["path"] == "/p1");
    CHECK(json(c.readResponse())["path"] == "/p2");
    CHECK(json(c.readResponse())["path"] == "/p3");
  });
  CHECK(three >= Millis(300));
}

TEST_CASE("fault: health-fail-rate 1 fails every /health probe, other requests still work") {
  Backend b("b1", {"--health-fail-rate", "1"});
  for (int i = 0; i < 5; ++i) {
    HttpResponse r = httpGet(b.port, "/health");
    CHECK(r.status == 503);
    CHECK(json(r)["status"] == "unhealthy");
    CHECK(json(r)["name"] == "b1");
  }
  CHECK(httpGet(b.port, "/x").status == 200);
  Json s = stats(b.port);
  CHECK(s["health_checks"] == 5);
  CHECK(s["health_failures"] == 5);
  CHECK(s["injected_failures"] == 0);
}

TEST_CASE("fault: flap-interval alternates /health between 200 and 503") {
  Backend b("b1", {"--flap-interval", "200"});
  bool sawUp = false;
  bool sawDown = false;
  bool sawUpAfterDown = false;
  CHECK(waitUntil(
      [&] {
        int status = httpGet(b.port, "/health").status;
        REQUIRE((status == 200 || status == 503));
        if (status == 200 && sawDown) sawUpAfterDown = true;
        sawUp = sawUp || status == 200;
        sawDown = sawDown || status == 503;
        return sawUp && sawDown && sawUpAfterDown;
      },
      5s));
  Json s = stats(b.port);
  CHECK(s["health_failures"].get<uint64_t>() > 0);
  CHECK(s["health_failures"].get<uint64_t>() < s["health_checks"].get<uint64_t>());
}

TEST_CASE("fault: reset-rate 1 sends half a response, then a TCP reset") {
  Backend b("b1", {"--reset-rate", "1"});
  HttpClient c;
  c.connect(b.port);
  c.sendRaw(get("/x"));
  bool reset = false;
  std::string data = readUntilClosed(c.fd(), reset);
  CAPTURE(data);
  CHECK(reset);
  REQUIRE(data.rfind("HTTP/1.1 200 ", 0) == 0);
  size_t headEnd = data.find("\r\n\r\n");
  REQUIRE(headEnd != std::string::npos);
  size_t clPos = data.find("Content-Length: ");
  REQUIRE(clPos < headEnd);
  size_t announced = std::stoul(data.substr(clPos + 16));
  size_t received = data.size() - headEnd - 4;
  CHECK(announced > 0);
  CHECK(received == announced / 2);

  // The test client, too, sees a response cut short.
  HttpClient d;
  d.connect(b.port);
  d.sendRaw(get("/y"));
  CHECK_THROWS(d.readResponse());
  CHECK(stats(b.port)["resets"] == 2);
}

TEST_CASE("fault: hang-rate 1 reads requests and never answers; control endpoints still do") {
  Backend b("b1", {"--hang-rate", "1"});
  HttpClient c;
  c.connect(b.port);
  c.sendRaw(get("/x") + get("/pipelined"));
  // No byte and no close within 500 ms: the connection is open and silent.
  pollfd p{c.fd(), POLLIN, 0};
  CHECK(::poll(&p, 1, 500) == 0);
  CHECK(httpGet(b.port, "/health").status == 200);
  CHECK(httpGet(b.port, "/_fault").status == 200);
  CHECK(stats(b.port)["hangs"] == 1);
  // More input on the hung connection is read and dropped, still without an answer.
  c.sendRaw(get("/more"));
  CHECK_FALSE(c.peerClosed(Millis(200)));
  CHECK(stats(b.port)["hangs"] == 1);

  HttpClient d;
  d.connect(b.port);
  d.sendRaw(post("/echo", "never echoed"));
  CHECK(waitUntil([&] { return stats(b.port)["hangs"] == 2; }, 5s));
  CHECK_FALSE(d.peerClosed(Millis(200)));
  c.close();
  d.close();
}

TEST_CASE("fault: /_fault reports and changes faults at run time") {
  Backend b("b1", {"--seed", "9"});
  Json initial = json(httpGet(b.port, "/_fault"));
  CHECK(initial == Json{{"fail_rate", 0.0},
                        {"latency_ms", 0},
                        {"latency_jitter_ms", 0},
                        {"health_fail_rate", 0.0},
                        {"flap_interval_ms", 0},
                        {"reset_rate", 0.0},
                        {"hang_rate", 0.0},
                        {"healthy", nullptr},
                        {"seed", 9}});
  CHECK(httpGet(b.port, "/x").status == 200);

  HttpResponse set = postFault(b.port, R"({"fail_rate": 1, "latency_ms": 120})");
  REQUIRE(set.status == 200);
  Json now = json(set);
  CHECK(now["fail_rate"] == 1.0);
  CHECK(now["latency_ms"] == 120);
  CHECK(now["reset_rate"] == 0.0);
  CHECK(json(httpGet(b.port, "/_fault")) == now);
  Millis t = timed([&] { CHECK(isInjectedFailure(httpGet(b.port, "/x"), "b1")); });
  CHECK(t >= Millis(120));

  // A subset keeps the other fields.
  now = json(postFault(b.port, R"({"fail_rate": 0})"));
  CHECK(now["fail_rate"] == 0.0);
  CHECK(now["latency_ms"] == 120);
  now = json(postFault(b.port, R"({"latency_ms": 0, "healthy": false})"));
  CHECK(now["healthy"] == false);
  CHECK(httpGet(b.port, "/x").status == 200);
  CHECK(httpGet(b.port, "/health").status == 503);
  // A forced state overrides the automatic one both ways.
  postFault(b.port, R"({"health_fail_rate": 1, "healthy": true})");
  CHECK(httpGet(b.port, "/health").status == 200);
  now = json(postFault(b.port, R"({"healthy": null})"));
  CHECK(now["healthy"].is_null());
  CHECK(httpGet(b.port, "/health").status == 503);
  postFault(b.port, R"({"health_fail_rate": 0, "reset_rate": 1})");
  CHECK(httpGet(b.port, "/health").status == 200);
  CHECK_THROWS(httpGet(b.port, "/x"));
  postFault(b.port, R"({"reset_rate": 0, "hang_rate": 1})");
  HttpClient hung;
  hung.connect(b.port);
  hung.sendRaw(get("/x"));
  pollfd p{hung.fd(), POLLIN, 0};
  CHECK(::poll(&p, 1, 300) == 0);
  now = json(postFault(b.port, R"({"hang_rate": 0})"));
  CHECK(now == initial);
  CHECK(httpGet(b.port, "/x").status == 200);

  Json s = stats(b.port);
  CHECK(s["injected_failures"] == 1);
  CHECK(s["resets"] == 1);
  CHECK(s["hangs"] == 1);
  CHECK(s["health_failures"] == 2);
  CHECK(s["health_checks"] == 4);
}

TEST_CASE("fault: bad /_fault requests get 400 (413, 405) and change nothing") {
  Backend b("b1", {"--seed", "1"});
  Json before = json(httpGet(b.port, "/_fault"));
  const char* bad[] = {
      "",
      "{",
      "[]",
      "0.5",
      R"({"fail_rate": -0.1})",
      R"({"fail_rate": 1.5})",
      R"({"fail_rate": "0.5"})",
      R"({"hang_rate": true})",
      R"({"reset_rate": null})",
      R"({"latency_ms": -1})",
      R"({"latency_ms": 1.5})",
      R"({"latency_ms": 600001})",
      R"({"latency_jitter_ms": "10"})",
      R"({"flap_interval_ms": -5})",
      R"({"healthy": "yes"})",
      R"({"failrate": 1})",
      // Valid fields are not applied when another is bad.
      R"({"fail_rate": 1, "health_fail_rate": 2})",
  };
  HttpClient c;
  c.connect(b.port);
  for (const char* body : bad) {
    CAPTURE(body);
    c.sendRaw(post("/_fault", body));
    HttpResponse r = c.readResponse();
    CHECK(r.status == 400);
    CHECK(r.header("Content-Type") == "application/json");
    REQUIRE_NOTHROW(json(r));
    CHECK(json(r)["error"].is_string());
    CHECK_FALSE(json(r)["error"].get<std::string>().empty());
  }
  CHECK(json(request(b.port, post("/_fault", R"({"nope": 1})")))["error"].get<std::string>().find("nope") !=
        std::string::npos);
  CHECK(json(request(b.port, post("/_fault", R"({"fail_rate": 7})")))["error"].get<std::string>().find(
            "fail_rate") != std::string::npos);

  HttpResponse big = request(b.port, post("/_fault", std::string(100 * 1024, ' ')));
  CHECK(big.status == 413);
  HttpResponse put = request(b.port, "PUT /_fault HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n");
  CHECK(put.status == 405);
  CHECK(put.header("Allow") == "GET, HEAD, POST");

  CHECK(json(httpGet(b.port, "/_fault")) == before);
  CHECK(httpGet(b.port, "/x").status == 200);
}
