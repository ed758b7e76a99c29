// flowguard as a black box: the real gateway binary in front of real flowguard-backend
// processes, each test with its own flowguard.yaml and free loopback ports.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/gateway_fixture.h"
#include "tests/support/test_support.h"

using namespace flowguard::test;
using Clock = std::chrono::steady_clock;

namespace {

// Reads raw bytes from the client socket until `terminator` arrived (used to see an interim
// 100 Continue, which readResponse skips). The client's parser buffer must be empty.
std::string readRawUntil(HttpClient& c, std::string_view terminator, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  std::string got;
  while (got.find(terminator) == std::string::npos) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) throw std::runtime_error("readRawUntil: timed out; got: " + got);
    pollfd p{c.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(c.fd(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) throw std::runtime_error("readRawUntil: connection closed; got: " + got);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Header values as the backend reports them: a string, or an array when repeated.
std::string headerSeen(const Json& request, const std::string& name) {
  const Json& headers = request["headers"];
  if (!headers.contains(name)) return {};
  const Json& v = headers[name];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

TEST_CASE("a proxied request keeps method, path, query, Host and gets forwarding headers") {
  Backend b("b1");
  Gateway gw(proxySpec({b.port}));
  HttpClient c;
  c.connect(gw.port);
  c.sendRaw(
      "POST /some/where?x=1&y=two HTTP/1.1\r\nHost: api.example.com\r\n"
      "X-Forwarded-For: 10.1.2.3\r\nX-Custom: kept\r\n"
      "Connection: keep-alive, X-Secret\r\nX-Secret: hidden\r\nKeep-Alive: timeout=5\r\n"
      "TE: trailers\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\n"
      "Content-Length: 5\r\n\r\nhello");
  HttpResponse r = c.readResponse();
  REQUIRE(r.status == 200);
  Json j = json(r);
  CHECK(j["backend"] == "b1");
  CHECK(j["method"] == "POST");
  CHECK(j["path"] == "/some/where");
  CHECK(j["query"] == "x=1&y=two");
  CHECK(j["body_bytes"] == 5);
  CHECK(headerSeen(j, "host") == "api.example.com");
  CHECK(headerSeen(j, "x-custom") == "kept");
  // The client is not a trusted proxy (the listener trusts none): its own entry is dropped.
  CHECK(headerSeen(j, "x-forwarded-for") == "127.0.0.1");
  CHECK(headerSeen(j, "x-forwarded-proto") == "http");
  std::string generatedId = headerSeen(j, "x-request-id");
  CHECK(generatedId.size() >= 16);
  // Hop-by-hop fields, and the one the client's Connection header named, stay here.
  for (const char* name : {"x-secret", "keep-alive", "te", "upgrade", "proxy-connection"}) {
    CAPTURE(name);
    CHECK_FALSE(j["headers"].contains(name));
  }
  CHECK(headerSeen(j, "connection").find("x-secret") == std::string::npos);
  CHECK(headerSeen(j, "connection").find("X-Secret") == std::string::npos);

  // Same client connection: a client-supplied X-Request-Id is replaced (the client is not
  // trusted), a missing X-Forwarded-For is created, and every request gets its own id.
  c.sendRaw(get("/second", "X-Request-Id: trace-abc-123\r\n"));
  Json k = json(c.readResponse());
  CHECK(k["path"] == "/second");
  CHECK(headerSeen(k, "x-request-id") != "trace-abc-123");
  CHECK_FALSE(k["headers"].contains("x-client-request-id"));
  CHECK(headerSeen(k, "x-forwarded-for") == "127.0.0.1");
  CHECK(headerSeen(k, "x-forwarded-proto") == "http");
  CHECK(headerSeen(k, "host") == "gw.test");

  c.sendRaw(get("/third"));
  Json l = json(c.readResponse());
  CHECK_FALSE(headerSeen(l, "x-request-id").empty());
  CHECK(headerSeen(l, "x-request-id") != generatedId);

  // A spoofed X-Forwarded-Proto is replaced, not passed on next to ours.
  c.sendRaw(get("/fourth", "X-Forwarded-Proto: https\r\n"));
  CHECK(headerSeen(json(c.readResponse()), "x-forwarded-proto") == "http");
}

TEST_CASE("hop-by-hop headers of the upstream response are not passed to the client") {
  RawUpstream up(
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n"
      "Connection: keep-alive, X-Up-Secret\r\nX-Up-Secret: s\r\nKeep-Alive: timeout=5\r\n"
      "Proxy-Connection: keep-alive\r\nUpgrade: foo\r\nX-Up-Kept: k\r\n\r\nok");
  Gateway gw(proxySpec({up.port}));
  HttpClient c;
  c.connect(gw.port);
  c.sendRaw(get("/x"));
  HttpResponse r = c.readResponse();
  CHECK(r.status == 200);
  CHECK(r.body == "ok");
  CHECK(r.header("X-Up-Kept") == "k");
  CHECK(r.header("Content-Type") == "text/plain");
  CHECK_FALSE(r.hasHeader("X-Up-Secret"));
  CHECK_FALSE(r.hasHeader("Keep-Alive"));
  CHECK_FALSE(r.hasHeader("Proxy-Connection"));
  CHECK_FALSE(r.hasHeader("Upgrade"));
  CHECK(r.header("Connection").find("X-Up-Secret") == std::string::npos);
  // The upstream's hop-by-hop fields do not make the client connection unusable.
  c.sendRaw(get("/y"));
  CHECK(c.readResponse().body == "ok");
  CHECK(up.heads == 2);
}

TEST_CASE("round robin spreads requests evenly over three backends") {
  Backend b1("b1"), b2("b2"), b3("b3");
  Gateway gw(proxySpec({b1.port, b2.port, b3.port}));
  HttpClient c;
  c.connect(gw.port);
  std::map<std::string, int> counts;
  for (int i = 0; i < 30; ++i) {
    c.sendRaw(get("/rr/" + std::to_string(i)));
    HttpResponse r = c.readResponse();
    REQUIRE(r.status == 200);
    counts[json(r)["backend"].get<std::string>()]++;
  }
  CHECK(counts.size() == 3);
  CHECK(counts["b1"] == 10);
  CHECK(counts["b2"] == 10);
  CHECK(counts["b3"] == 10);
}

TEST_CASE("upstream keep-alive: many requests share few backend connections") {
  Backend b;
  Gateway gw(proxySpec({b.port}));
  {
    HttpClient c;
    c.connect(gw.port);
    for (int i = 1; i <= 50; ++i) {
      c.sendRaw(get("/ka"));
      HttpResponse r = c.readResponse();
      REQUIRE(r.status == 200);
      CHECK(r.keepAlive);
    }
  }
  // Also across client connections: the pool belongs to the worker, not the client.
  for (int i = 0; i < 10; ++i) CHECK(httpGet(gw.port, "/fresh-client").status == 200);
  // Accepted: the startup probe, the gateway's connections, and this stats probe.
  uint64_t upstreamConnections = b.connectionsAccepted() - 2;
  CAPTURE(upstreamConnections);
  CHECK(upstreamConnections >= 1);
  CHECK(upstreamConnections <= 2);
  CHECK(b.requests() == 60 + 2);  // the connectionsAccepted probe and this one
}

TEST_CASE("a client that leaves before the answer does not cost an upstream connection") {
  Backend b;
  Gateway gw(proxySpec({b.port}));
  REQUIRE(httpGet(gw.port, "/warm").status == 200);  // one pooled upstream connection
  BackendProbe probe{b};
  {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw(get("/delay/1000"));
    // The backend counts a request at its head: once it has this one, the client hangs up
    // (well within the second the answer takes).
    REQUIRE(waitUntil([&] { return probe.proxiedRequests(probe.read()) == 2; }, 10s));
  }
  // The gateway reads the late answer, drops it, and keeps the connection. The next request
  // goes out once the backend has written that answer: it is then in the gateway's socket,
  // and the gateway reads it before a request on a connection opened after it arrived.
  REQUIRE(waitUntil([&] { return probe.proxiedResponses(probe.read()) == 2; }, 10s));
  REQUIRE(httpGet(gw.port, "/after").status == 200);
  // Accepted: the startup probe, the gateway's connections, the probes and this one.
  uint64_t upstreamConnections = b.connectionsAccepted() - 2 - probe.probes;
  CHECK(upstreamConnections == 1);
}

TEST_CASE("a client that half-closes after its requests still gets every answer, then EOF") {
  Backend b;
  Gateway gw(proxySpec({b.port}));
  HttpClient c;
  c.connect(gw.port);
  // Two pipelined requests, then FIN: it reaches the gateway long before the slow first
  // answer does, and must not cancel what was sent in full.
  c.sendRaw(get("/delay/200") + get("/second"));
  REQUIRE(::shutdown(c.fd(), SHUT_WR) == 0);
  HttpResponse r1 = c.readResponse();
  HttpResponse r2 = c.readResponse();
  CHECK(json(r1)["path"] == "/delay/200");
  CHECK(json(r2)["path"] == "/second");
  CHECK(c.peerClosed(Millis(2000)));
}

TEST_CASE("EOF in the middle of a request closes the connection without an answer") {
  Backend b;
  Gateway gw(proxySpec({b.port}));
  for (const std::string& partial :
       {std::string("POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 10\r\n\r\nabc"),
        std::string("GET /half HTTP/1.1\r\nHost: gw.te")}) {
    CAPTURE(partial);
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw(partial);
    REQUIRE(::shutdown(c.fd(), SHUT_WR) == 0);
    CHECK(c.peerClosed(Millis(2000)));
    CHECK_THROWS(c.readResponse(Millis(100)));  // closed before any answer
  }
  REQUIRE(httpGet(gw.port, "/after").status == 200);  // and the gateway still serves
}

TEST_CASE("a dead host is skipped by retries; all hosts dead gives 502") {
  SUBCASE("one of three hosts refuses connections") {
    Backend b1("b1"), b2("b2");
    ClosedPort dead;
    Gateway gw(proxySpec({b1.port, dead.port(), b2.port}, "retries: 2"));
    std::map<std::string, int> counts;
    HttpClient c;
    c.connect(gw.port);
    for (int i = 0; i < 30; ++i) {
      c.sendRaw(get("/failover"));
      HttpResponse r = c.readResponse();
      REQUIRE(r.status == 200);
      counts[json(r)["backend"].get<std::string>()]++;
    }
    CHECK(counts.size() == 2);
    CHECK(counts["b1"] + counts["b2"] == 30);
    CHECK(counts["b1"] > 0);
    CHECK(counts["b2"] > 0);
  }
  SUBCASE("every host refuses connections") {
    ClosedPort dead1, dead2, dead3;
    Gateway gw(proxySpec({dead1.port(), dead2.port(), dead3.port()}, "retries: 2"));
    HttpResponse r = httpGet(gw.port, "/nobody-home");
    checkErrorJson(r, 502);
  }
  SUBCASE("the only host refuses connections, retries left over") {
    ClosedPort dead;
    Gateway gw(proxySpec({dead.port()}, "retries: 2"));
    HttpResponse r = httpGet(gw.port, "/nobody-home");
    checkErrorJson(r, 502);
  }
}

TEST_CASE("a slow upstream response times out with 504") {
  Backend b;
  GatewaySpec spec = proxySpec({b.port});
  spec.routes.insert(spec.routes.begin(), "{ match: { prefix: /delay }, cluster: backends, timeout: 300ms }");
  Gateway gw(spec);
  auto start = Clock::now();
  HttpResponse r = httpGet(gw.port, "/delay/2000");
  auto elapsed = Clock::now() - start;
  checkErrorJson(r, 504);
  CHECK(elapsed >= Millis(250));
  CHECK(elapsed < Millis(1500));
  // Within the timeout it is a normal answer.
  CHECK(httpGet(gw.port, "/delay/50").status == 200);
}

TEST_CASE("pipelined requests are answered in order on one connection") {
  Backend b;
  GatewaySpec spec = proxySpec({b.port});
  spec.routes.insert(spec.routes.begin(),
                     "{ match: { path: /direct }, direct_response: { status: 200, body: direct, "
                     "content_type: text/plain } }");
  Gateway gw(spec);
  HttpClient c;
  c.connect(gw.port);
  // The first answer is slow: a gateway answering out of order would send the rest first.
  c.sendRaw(get("/delay/100") + "POST /p2 HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 7\r\n\r\npayload" +
            get("/p3"));
  HttpResponse r1 = c.readResponse();
  HttpResponse r2 = c.readResponse();
  HttpResponse r3 = c.readResponse();
  CHECK(json(r1)["path"] == "/delay/100");
  CHECK(json(r2)["path"] == "/p2");
  CHECK(json(r2)["method"] == "POST");
  CHECK(json(r2)["body_bytes"] == 7);
  CHECK(json(r3)["path"] == "/p3");

  // Direct responses wait for the proxied answers before them.
  c.sendRaw(get("/delay/100") + get("/direct") + get("/p5") + get("/direct"));
  HttpResponse d1 = c.readResponse();
  HttpResponse d2 = c.readResponse();
  HttpResponse d3 = c.readResponse();
  HttpResponse d4 = c.readResponse();
  CHECK(json(d1)["path"] == "/delay/100");
  CHECK(d2.body == "direct");
  CHECK(json(d3)["path"] == "/p5");
  CHECK(d4.body == "direct");
  CHECK_FALSE(c.peerClosed(Millis(100)));
  // waitForPort's probe and this one: all seven requests came over one client connection.
  CHECK(b.requests() == 5 + 1);
}

TEST_CASE("HTTP/1.0, Connection: close and Expect: 100-continue") {
  Backend b;
  Gateway gw(proxySpec({b.port}));
  SUBCASE("HTTP/1.0 without Host is answered, then the connection closes") {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw("GET /old HTTP/1.0\r\n\r\n");
    HttpResponse r = c.readResponse();
    CHECK(r.status == 200);
    CHECK(json(r)["path"] == "/old");
    CHECK(c.peerClosed(5s));
  }
  SUBCASE("HTTP/1.0 gets a chunked upstream body delimited by the close") {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw("GET /bytes/5000?chunked=1 HTTP/1.0\r\n\r\n");
    HttpResponse r = c.readResponse();
    CHECK(r.status == 200);
    CHECK(r.header("Transfer-Encoding").empty());
    CHECK(r.body.size() == 5000);
    CHECK(isPattern(r.body));
    CHECK(c.peerClosed(5s));
  }
  SUBCASE("Connection: close is honoured") {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw(get("/bye", "Connection: close\r\n"));
    HttpResponse r = c.readResponse();
    CHECK(r.status == 200);
    CHECK(r.header("Connection") == "close");
    CHECK(c.peerClosed(5s));
  }
  SUBCASE("Expect: 100-continue gets an interim 100, then the answer") {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw(
        "POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\n"
        "Expect: 100-continue\r\n\r\n");
    std::string interim = readRawUntil(c, "\r\n\r\n", 5s);
    CHECK(interim.rfind("HTTP/1.1 100", 0) == 0);
    CHECK(interim.size() == interim.find("\r\n\r\n") + 4);  // nothing after the 100 yet
    c.sendRaw("hello");
    HttpResponse r = c.readResponse();
    REQUIRE(r.status == 200);
    Json j = json(r);
    CHECK(j["body_bytes"] == 5);
    CHECK_FALSE(j["headers"].contains("expect"));
    // The connection stays usable.
    c.sendRaw(get("/after"));
    CHECK(json(c.readResponse())["path"] == "/after");
  }
}

TEST_CASE("route matching: no route, direct responses, methods and host") {
  Backend b;
  GatewaySpec spec;
  spec.routes = {
      "{ match: { path: /direct }, direct_response: { status: 418, body: 'short and stout', "
      "content_type: text/plain } }",
      "{ match: { prefix: /only-post, methods: [POST, PUT] }, direct_response: { status: 201, "
      "body: posted, content_type: text/plain } }",
      "{ match: { prefix: /vhost, host: api.example.com }, direct_response: { status: 200, "
      "body: vhost } }",
      "{ match: { prefix: /api }, cluster: backends }",
  };
  spec.clusters = {clusterYaml("backends", {b.port})};
  Gateway gw(spec);
  HttpClient c;
  c.connect(gw.port);
  auto ask = [&](const std::string& request) {
    c.sendRaw(request);
    return c.readResponse();
  };

  HttpResponse direct = ask(get("/direct"));
  CHECK(direct.status == 418);
  CHECK(direct.body == "short and stout");
  CHECK(direct.header("Content-Type") == "text/plain");
  CHECK(direct.header("Content-Length") == "15");

  checkErrorJson(ask(get("/direct/sub")), 404);  // path: is exact
  checkErrorJson(ask(get("/nothing/here")), 404);

  CHECK(ask("POST /only-post HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd").status == 201);
  CHECK(ask("PUT /only-post/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").body == "posted");
  checkErrorJson(ask(get("/only-post")), 404);

  HttpResponse vhost = ask("GET /vhost HTTP/1.1\r\nHost: API.Example.com:8080\r\n\r\n");
  CHECK(vhost.status == 200);
  CHECK(vhost.body == "vhost");
  CHECK(vhost.header("Content-Type") == "application/json");  // the documented default
  checkErrorJson(ask("GET /vhost HTTP/1.1\r\nHost: other.example.com\r\n\r\n"), 404);

  HttpResponse api = ask(get("/api/v1?q=1"));
  CHECK(api.status == 200);
  CHECK(json(api)["path"] == "/api/v1");
  CHECK(json(api)["query"] == "q=1");
  // Local answers never reached the backend; the connection survived all of them.
  CHECK_FALSE(c.peerClosed(Millis(50)));
  CHECK(b.requests() == 1 + 1);
}

TEST_CASE("flowguard validate, --version and --help") {
  TempDir dir;
  std::string good = dir.file("good.yaml");
  writeFile(good, proxySpec({freeTcpPort()}).yaml(freeTcpPort()));
  CliResult ok = runCli({"validate", "-c", good});
  CHECK(ok.status == 0);
  CHECK(ok.out.find(good + ": ok (") != std::string::npos);
  CHECK(ok.err.empty());

  std::string bad = dir.file("bad.yaml");
  writeFile(bad,
            "workers: 1\n"
            "listeners:\n"
            "  - name: test\n"
            "    address: 127.0.0.1:99999\n"
            "    bogus_key: 1\n"
            "    filters:\n"
            "      - name: router\n"
            "        routes:\n"
            "          - { match: { prefix: / }, cluster: nowhere }\n");
  CliResult errors = runCli({"validate", "-c", bad});
  CHECK(errors.status == 1);
  INFO("stderr:\n" << errors.err);
  std::istringstream lines(errors.err);
  std::string line;
  int located = 0;
  const std::regex pattern("^" + std::regex_replace(bad, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                           R"(:\d+:\d+: .+)");
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    CAPTURE(line);
    CHECK(std::regex_match(line, pattern));
    ++located;
  }
  CHECK(located >= 3);  // port out of range, unknown key, unknown cluster
  CHECK(errors.err.find(bad + ":4:") != std::string::npos);
  CHECK(errors.err.find(bad + ":5:") != std::string::npos);

  CliResult version = runCli({"--version"});
  CHECK(version.status == 0);
  CHECK(std::regex_search(version.out + version.err, std::regex(R"(\d+\.\d+)")));

  CliResult help = runCli({"--help"});
  CHECK(help.status == 0);
  CHECK(help.out.find("validate") != std::string::npos);

  // Starting with an invalid file fails the same way, without listening.
  CliResult start = runCli({"-c", bad});
  CHECK(start.status == 1);
  CHECK(start.err.find(bad + ":4:") != std::string::npos);
}

TEST_CASE("SIGTERM drains: an in-flight request completes and the gateway exits 0") {
  Backend b;
  Gateway gw(proxySpec({b.port}));
  HttpClient idle;
  idle.connect(gw.port);
  idle.sendRaw(get("/warm"));
  REQUIRE(idle.readResponse().status == 200);

  HttpClient slow;
  slow.connect(gw.port);
  slow.sendRaw(get("/delay/500"));
  // The backend has the request (the probe counts itself, and /warm).
  REQUIRE(waitUntil([&] { return b.requests() >= 3; }, 5s));
  auto start = Clock::now();
  gw.process.signal(SIGTERM);
  HttpResponse r = slow.readResponse(5s);
  CHECK(r.status == 200);
  CHECK(json(r)["delay_ms"] == 500);
  CHECK(slow.peerClosed(5s));
  CHECK(idle.peerClosed(5s));
  auto status = gw.process.waitExit(5s);
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  CHECK(Clock::now() - start < 4s);  // drained when done, not at the drain deadline
}

TEST_CASE("workers: 2 share the listener and both serve requests") {
  Backend b;
  GatewaySpec spec = proxySpec({b.port});
  spec.workers = 2;
  Gateway gw(spec);
  gw.process.waitForLog("(2 workers)");
  // The kernel spreads connections over the two SO_REUSEPORT sockets by their address hash.
  // Each worker has its own upstream pool, so requests on 24 client connections, one after
  // another, open exactly one backend connection per worker that accepted any of them.
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < 24; ++i) {
    clients.push_back(std::make_unique<HttpClient>());
    clients.back()->connect(gw.port);
  }
  for (auto& c : clients) {
    c->sendRaw(get("/w"));
    REQUIRE(c->readResponse().status == 200);
  }
  uint64_t upstreamConnections = b.connectionsAccepted() - 2;
  // All 24 on one worker has probability 2^-23.
  CHECK(upstreamConnections == 2);
}

TEST_CASE("upstream statuses, HEAD and a POST body pass through unchanged") {
  Backend b1("b1"), b2("b2");
  ClosedPort dead;
  Gateway gw(proxySpec({dead.port(), b1.port, b2.port}, "retries: 2"));
  HttpClient c;
  c.connect(gw.port);
  // A 5xx answer is an answer: passed on, not retried on another host.
  c.sendRaw(get("/status/503"));
  HttpResponse r = c.readResponse();
  CHECK(r.status == 503);
  CHECK(json(r)["status"] == 503);
  c.sendRaw(get("/status/204"));
  HttpResponse none = c.readResponse();
  CHECK(none.status == 204);
  CHECK(none.body.empty());

  c.sendRaw("HEAD /bytes/1000 HTTP/1.1\r\nHost: gw.test\r\n\r\n");
  HttpResponse head = c.readResponse(10s, /*headRequest=*/true);
  CHECK(head.status == 200);
  CHECK(head.header("Content-Length") == "1000");
  CHECK(head.body.empty());

  // A request body survives a connect failure on the way (no byte reached the dead host).
  for (int i = 0; i < 6; ++i) {
    c.sendRaw("POST /post HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 11\r\n\r\nhello world");
    HttpResponse p = c.readResponse();
    REQUIRE(p.status == 200);
    CHECK(json(p)["body_bytes"] == 11);
    CHECK(json(p)["method"] == "POST");
  }
  CHECK_FALSE(c.peerClosed(Millis(50)));
  // Each request above reached exactly one backend once (each count includes its own probe).
  CHECK(b1.requests() + b2.requests() == 9 + 2);
}

TEST_CASE("an upstream that closes without answering: 502, retried only when safe") {
  RawUpstream up("", /*closeAfterResponse=*/true);
  Gateway gw(proxySpec({up.port}, "retries: 1"));
  {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw(get("/get"));
    checkErrorJson(c.readResponse(), 502);
  }
  // GET is idempotent: the reset was retried once.
  CHECK(waitUntil([&] { return up.heads == 2; }, 2s));
  {
    HttpClient c;
    c.connect(gw.port);
    c.sendRaw("POST /post HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\n\r\nhello");
    checkErrorJson(c.readResponse(), 502);
  }
  // POST had reached the upstream: not sent a second time.
  CHECK_FALSE(waitUntil([&] { return up.heads > 3; }, Millis(200)));
  CHECK(up.heads == 3);
}

TEST_CASE("an upstream closing mid-response closes the client connection") {
  RawUpstream up("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", /*closeAfterResponse=*/true);
  // Retries on a reset are allowed (and the GET is idempotent), so only the bytes already
  // sent to the client keep the gateway from trying again.
  GatewaySpec spec = proxySpec({up.port}, "retries: 2, retry_on: [connect-failure, reset]");
  spec.admin = true;
  Gateway gw(spec);
  const uint16_t adminPort = gw.adminPort;
  auto retries = [&] { return adminJson(adminPort, "/stats").at("clusters").at("backends").at("retries"); };
  HttpClient c;
  c.connect(gw.port);
  c.sendRaw(get("/truncated"));
  auto start = Clock::now();
  // The client must learn that the body is incomplete: a close, not a hang.
  CHECK_THROWS_WITH(c.readResponse(5s), doctest::Contains("closed"));
  CHECK(Clock::now() - start < 4s);
  // Response bytes had reached the client: not retried. The gateway decides on a retry
  // before it closes the client, so the counter is final now; the upstream saw one head.
  CHECK(retries() == 0);
  CHECK(up.heads == 1);
  // The gateway itself is fine.
  HttpClient other;
  other.connect(gw.port);
  other.sendRaw(get("/again"));
  CHECK_THROWS_WITH(other.readResponse(5s), doctest::Contains("closed"));
  CHECK(retries() == 0);
  CHECK(up.heads == 2);
}

TEST_CASE("a backend restart does not break pooled connections") {
  auto first = std::make_unique<Backend>("first");
  uint16_t port = first->port;
  Gateway gw(proxySpec({port}));
  HttpClient c;
  c.connect(gw.port);
  c.sendRaw(get("/before"));
  CHECK(json(c.readResponse())["backend"] == "first");
  first.reset();  // the gateway's pooled connection to it is closed now

  Process second({binaryPath("flowguard-backend"), "--port", std::to_string(port), "--name", "second"});
  second.waitForPort(port);
  for (int i = 0; i < 3; ++i) {
    c.sendRaw(get("/after"));
    HttpResponse r = c.readResponse();
    REQUIRE(r.status == 200);
    CHECK(json(r)["backend"] == "second");
  }
  CHECK(second.stop() == 0);
}

TEST_CASE("SIGTERM right after the port opens still drains and exits 0") {
  // An orchestrator may stop the gateway as soon as its port answers. The gateway must
  // not accept connections before its SIGTERM handling is in place, or such a stop kills
  // it (status 143) instead of draining.
  ClosedPort upstream;  // never reached: no request is sent
  GatewaySpec spec = proxySpec({upstream.port()});
  spec.workers = 2;
  for (int attempt = 0; attempt < 10; ++attempt) {
    CAPTURE(attempt);
    TempDir dir;
    uint16_t port = freeTcpPort();
    std::string config = writeConfig(dir, spec.yaml(port));
    Process gw({binaryPath("flowguard"), "-c", config}, dir.path());
    // Probe without pauses so the signal follows the first accepted connection closely.
    bool open = false;
    auto deadline = Clock::now() + 10s;
    while (!open && Clock::now() < deadline && gw.running()) open = connectOnce(port) == 0;
    REQUIRE(open);
    gw.signal(SIGTERM);
    auto status = gw.waitExit(10s);
    INFO("gateway log:\n" << gw.logText());
    REQUIRE(status.has_value());
    REQUIRE(*status == 0);
  }
}
