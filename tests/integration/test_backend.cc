// flowguard-backend as a black box: the real binary on a free loopback port.
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tests/support/test_support.h"

using namespace flowguard::test;
using Json = nlohmann::json;

namespace {

struct Backend {
  explicit Backend(std::string name = "b1")
      : port(freeTcpPort()),
        process({binaryPath("flowguard-backend"), "--port", std::to_string(port), "--name", name}) {
    process.waitForPort(port);
  }
  // Every test ends with a clean SIGTERM exit (sanitizer builds report errors as a failure
  // exit status, so this also catches memory errors and leaks in the backend).
  ~Backend() {
    int status = process.stop();
    INFO("backend log tail:\n" << process.logTail());
    CHECK(status == 0);
  }
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  uint16_t port;
  Process process;
};

std::string get(std::string_view path, std::string_view extra = {}) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: backend\r\n" + std::string(extra) +
         "\r\n";
}

Json json(const HttpResponse& r) { return Json::parse(r.body); }

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
  CHECK(b.process.waitForLog("flowguard-backend alpha listening on 127.0.0.1:" +
                             std::to_string(b.port) + "\n")
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
  c.sendRaw("POST /some/where?x=1&y=two HTTP/1.1\r\nHost: backend\r\nX-Test: abc\r\n"
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
  c.sendRaw("PUT /up HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n"
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
      c.sendRaw("POST /echo HTTP/1.1\r\nHost: b\r\nContent-Type: application/x-test\r\n"
                "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n");
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
    c.sendRaw("POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: " + std::to_string(kSize) +
              "\r\n\r\n");
    std::string block(1 << 20, 'u');
    for (uint64_t sent = 0; sent < kSize; sent += block.size()) {
      c.sendRaw(std::string_view(block).substr(0, std::min<uint64_t>(block.size(), kSize - sent)),
                120s);
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
