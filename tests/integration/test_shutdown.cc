// Graceful shutdown of a real gateway: SIGTERM under load drains (listeners closed at once,
// in-flight requests answered in full with Connection: close, idle connections closed,
// /ready 503 on the admin listener meanwhile, the request log flushed, exit 0), a request
// that outlives drain_timeout is cut at the deadline, and a second signal ends the drain at
// once with status 1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

long elapsedMs(Clock::time_point since) {
  return static_cast<long>(std::chrono::duration_cast<Millis>(Clock::now() - since).count());
}

// Durations here are checked against generous sanity bounds that a loaded CI machine keeps
// (each still tells a working drain from a broken one: an order of events, or far from the
// drain_timeout). bench/timing-bounds.sh runs this with FLOWGUARD_PRECISE_TIMING=1 on a quiet
// machine for the tight figures.
long boundMs(long precise, long sanity) {
  return preciseTiming() ? precise : sanity;
}

HttpResponse call(uint16_t port, const std::string& method, const std::string& path) {
  HttpClient c;
  c.connect(port, 2s);
  c.sendRaw(method + " " + path +
            " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Requested-By: tests\r\n\r\n");
  return c.readResponse(2s);
}

// A gateway whose end the test drives: it sends the signals and judges the exit status
// itself (the destructor only makes sure the process is gone).
struct DrainingGateway {
  DrainingGateway(GatewaySpec spec, const std::vector<std::string>& topLevel) {
    spec.topLevel = topLevel;
    auto argvFor = [&](uint16_t p) {
      adminPort = freeTcpPort();
      configPath = writeConfig(dir, spec.yaml(p, adminPort));
      return std::vector<std::string>{binaryPath("flowguard"), "-c", configPath};
    };
    // The admin listener starts after the listeners: its line is the one to wait for.
    process = std::make_unique<Process>(startOnFreePort(argvFor, port, "flowguard: admin on", dir.path()));
    process->waitForLog("flowguard: listener test on");
  }
  ~DrainingGateway() {
    process->stop(1s);
    INFO("gateway log tail:\n" << process->logTail(40));
  }
  DrainingGateway(const DrainingGateway&) = delete;
  DrainingGateway& operator=(const DrainingGateway&) = delete;

  TempDir dir;
  uint16_t port = 0;
  uint16_t adminPort = 0;
  std::string configPath;
  std::unique_ptr<Process> process;
};

int64_t countRows(const std::string& dbPath, const std::string& table) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(dbPath.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string error = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + dbPath + ": " + error);
  }
  sqlite3_stmt* stmt = nullptr;
  int64_t count = -1;
  if (sqlite3_prepare_v2(db, ("SELECT COUNT(*) FROM " + table).c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    count = sqlite3_column_int64(stmt, 0);
  }
  std::string error = sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (count < 0) throw std::runtime_error("cannot count " + table + " in " + dbPath + ": " + error);
  return count;
}

// How a request ended, as its client saw it.
enum class Outcome {
  Answered,  // a complete response
  NoAnswer,  // the connection ended before any byte of a response (never seen by the gateway)
  Broken,    // anything else: a partial response, a malformed one, a timeout
};

// Sends `request` and reads one response. A connection that the peer ended (EOF or reset)
// before any response byte is NoAnswer; the client's codec tells a truncated response apart
// ("malformed"), and a timeout is Broken too.
Outcome exchange(HttpClient& c, const std::string& request, HttpResponse& response, std::string& error) {
  try {
    c.sendRaw(request, 5s);
  } catch (const std::exception& e) {
    // The peer had closed already: the request never reached the gateway.
    error = e.what();
    return error.find("sendRaw: ") == 0 && error.find("timed out") == std::string::npos ? Outcome::NoAnswer
                                                                                        : Outcome::Broken;
  }
  try {
    response = c.readResponse(10s);
    return Outcome::Answered;
  } catch (const std::exception& e) {
    error = e.what();
    return error.find("connection closed before a response arrived") != std::string::npos ? Outcome::NoAnswer
                                                                                          : Outcome::Broken;
  }
}

bool saysClose(const HttpResponse& r) {
  std::string value = r.header("Connection");
  for (char& ch : value) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return value.find("close") != std::string::npos;
}

struct DrainTally {
  std::atomic<uint64_t> answered{0};
  std::mutex mutex;
  std::vector<std::string> problems;
  void answer() { ++answered; }
  void problem(const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex);
    if (problems.size() < 20) problems.push_back(what);
  }
};

bool completeInfo(const HttpResponse& r, const std::string& path) {
  try {
    return r.status == 200 && Json::parse(r.body).at("path") == path;
  } catch (const std::exception&) {
    return false;
  }
}

// Sends GET /delay/20000 on `client` and returns once the backend has it (each /_stats probe
// counts as one request of its own).
void startHangingRequest(HttpClient& client, uint16_t port, const Backend& backend) {
  client.connect(port);
  const uint64_t before = backend.requests();
  client.sendRaw(get("/delay/20000"));
  uint64_t probes = 0;
  REQUIRE(waitUntil([&] { return backend.requests() >= before + ++probes + 1; }, 3s));
}

}  // namespace

TEST_CASE(
    "shutdown: SIGTERM under load drains: full answers, Connection: close, /ready 503, log flushed, exit 0") {
  Backend b1("b1"), b2("b2"), slowBackend("slow");
  GatewaySpec spec;
  spec.workers = 2;
  spec.routes = {"{ match: { prefix: /delay/ }, cluster: slow }",
                 "{ match: { prefix: / }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", {b1.port, b2.port}, "retries: 0"),
                   clusterYaml("slow", {slowBackend.port}, "retries: 0")};
  TempDir dbDir;
  const std::string dbPath = dbDir.file("drain.db");
  DrainingGateway gw(
      spec, {"drain_timeout: 10s", "storage: { url: \"sqlite://" + dbPath + "\", flush_interval: 50ms }"});

  DrainTally tally;
  std::atomic<bool> signalled{false};
  std::atomic<bool> stop{false};
  Clock::time_point signalAt{};
  std::mutex signalMutex;

  // Keep-alive clients: after the signal each connection must end within the drain, either
  // with a complete answer that says Connection: close or closed while idle between requests.
  struct Ending {
    bool closeAnswer = false;  // the last answer said Connection: close
    long endedAfterSignalMs = -1;
    std::string how;
  };
  std::vector<Ending> endings(4);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < endings.size(); ++k) {
    threads.emplace_back([&, k] {
      HttpClient c;
      try {
        c.connect(gw.port);
      } catch (const std::exception& e) {
        tally.problem(std::string("keep-alive connect: ") + e.what());
        return;
      }
      for (uint64_t i = 0; !stop; ++i) {
        const std::string path = "/ka" + std::to_string(k) + "/" + std::to_string(i);
        HttpResponse r;
        std::string error;
        const Outcome outcome = exchange(c, get(path), r, error);
        if (outcome == Outcome::Broken) {
          tally.problem("keep-alive " + path + ": " + error);
          endings[k].how = "broken: " + error;
          break;
        }
        if (outcome == Outcome::NoAnswer) {
          if (!signalled) tally.problem("keep-alive " + path + " closed before the signal: " + error);
          endings[k].how = "closed before a request: " + error;
          break;
        }
        tally.answer();
        if (!completeInfo(r, path))
          tally.problem("keep-alive " + path + ": incomplete answer " + r.body.substr(0, 200));
        if (!r.keepAlive || saysClose(r)) {
          endings[k].closeAnswer = saysClose(r);
          endings[k].how = "answered with Connection: close";
          if (!signalled) tally.problem("keep-alive " + path + " got Connection: close before the signal");
          if (!c.peerClosed(2s)) tally.problem("keep-alive " + path + ": still open after Connection: close");
          break;
        }
      }
      if (signalled) {
        std::lock_guard<std::mutex> lock(signalMutex);
        endings[k].endedAfterSignalMs = elapsedMs(signalAt);
      }
    });
  }
  // A fresh connection per request, until connections are refused.
  threads.emplace_back([&] {
    for (uint64_t i = 0; !stop; ++i) {
      const std::string path = "/new/" + std::to_string(i);
      HttpClient c;
      try {
        c.connect(gw.port, 2s);
      } catch (const std::exception& e) {
        if (signalled) return;
        tally.problem(std::string("connect before the signal: ") + e.what());
        continue;
      }
      HttpResponse r;
      std::string error;
      const Outcome outcome = exchange(c, get(path, "Connection: close\r\n"), r, error);
      if (outcome == Outcome::Broken) tally.problem("new connection " + path + ": " + error);
      if (outcome == Outcome::NoAnswer && !signalled) tally.problem("new connection " + path + ": " + error);
      if (outcome == Outcome::Answered) {
        tally.answer();
        if (!completeInfo(r, path)) tally.problem("new connection " + path + ": incomplete answer");
      }
    }
  });
  StopAndJoin joiner{stop, threads};

  // An idle keep-alive connection (one answer, then silence) and slow requests in flight.
  HttpClient idle;
  idle.connect(gw.port);
  idle.sendRaw(get("/idle"));
  REQUIRE(completeInfo(idle.readResponse(), "/idle"));
  tally.answer();
  REQUIRE(waitUntil([&] { return tally.answered >= 500; }, 20s));
  // Slow enough that the drain's first steps (ready 503, idle and keep-alive connections
  // closed, listener closed) all happen while these are still in flight, on a loaded machine.
  constexpr long kSlowMs = 4000;
  const std::string slowPath = "/delay/" + std::to_string(kSlowMs);
  std::vector<std::unique_ptr<HttpClient>> slow;
  const uint64_t slowBefore = slowBackend.requests();
  const auto slowSent = Clock::now();
  for (int i = 0; i < 3; ++i) {
    slow.push_back(std::make_unique<HttpClient>());
    slow.back()->connect(gw.port);
    slow.back()->sendRaw(get(slowPath));
  }
  uint64_t probes = 0;
  REQUIRE_MESSAGE(waitUntil([&] { return slowBackend.requests() >= slowBefore + ++probes + 3; }, 2s),
                  "the three slow requests did not reach the slow backend");
  // They must still be running when the signal comes, with time to spare, or this tests nothing.
  REQUIRE(elapsedMs(slowSent) < kSlowMs - 1500);

  CHECK(call(gw.adminPort, "GET", "/ready").status == 200);
  long slowDoneAfterSignalMs = 0;  // the slow answers cannot come before this
  {
    std::lock_guard<std::mutex> lock(signalMutex);
    signalAt = Clock::now();
    signalled = true;
    slowDoneAfterSignalMs =
        kSlowMs - static_cast<long>(std::chrono::duration_cast<Millis>(signalAt - slowSent).count());
  }
  gw.process->signal(SIGTERM);

  // The admin listener stays up and says not ready.
  int readyStatus = 0;
  CHECK_MESSAGE(waitUntil(
                    [&] {
                      try {
                        readyStatus = call(gw.adminPort, "GET", "/ready").status;
                      } catch (const std::exception&) {
                        readyStatus = -1;
                      }
                      return readyStatus == 503;
                    },
                    3s),
                "/ready answered " << readyStatus << " during the drain");
  // The idle connection is closed.
  CHECK_MESSAGE(idle.peerClosed(3s), "an idle keep-alive connection stayed open during the drain");
  // New connections are refused soon after the signal.
  CHECK_MESSAGE(waitUntil([&] { return connectOnce(gw.port) == ECONNREFUSED; }, 3s),
                "the listener still accepts");
  const long refusedAtMs = elapsedMs(signalAt);
  CHECK(connectOnce(gw.port) == ECONNREFUSED);
  CHECK(gw.process->running());  // still draining: the slow requests are not done

  // The slow requests were in flight: complete answers, each with Connection: close.
  for (auto& c : slow) {
    HttpResponse r = c->readResponse(15s);
    tally.answer();
    CHECK(r.status == 200);
    CHECK(completeInfo(r, slowPath));
    CHECK_MESSAGE(saysClose(r), "a response sent during the drain lacks Connection: close");
    CHECK_FALSE(r.keepAlive);
    CHECK(c->peerClosed(2s));
  }
  const std::optional<int> status = gw.process->waitExit(8s);
  const long exitedMs = elapsedMs(signalAt);
  MESSAGE("drain: refused " << refusedAtMs << " ms, exited " << exitedMs << " ms after SIGTERM");
  INFO("refused " << refusedAtMs << " ms, exited " << exitedMs
                  << " ms after SIGTERM; the slow answers were due " << slowDoneAfterSignalMs
                  << " ms after it");
  REQUIRE_MESSAGE(status.has_value(), "the gateway did not exit after its in-flight requests were done");
  CHECK(*status == 0);
  // Out once the slow requests were done, not at drain_timeout (10 s).
  CHECK(exitedMs < boundMs(slowDoneAfterSignalMs + 1000, 9000));
  stop = true;
  for (auto& t : threads) t.join();
  threads.clear();

  for (size_t k = 0; k < endings.size(); ++k) {
    CAPTURE(k);
    INFO("ended: " << endings[k].how << (endings[k].closeAnswer ? " (Connection: close)" : ""));
    CHECK(endings[k].endedAfterSignalMs >= 0);
    // Ended by the drain itself, while the slow requests were still in flight (not at the
    // process's exit after them).
    CHECK(endings[k].endedAfterSignalMs < boundMs(1500, slowDoneAfterSignalMs));
  }
  std::lock_guard<std::mutex> lock(tally.mutex);
  INFO("answered " << tally.answered.load());
  std::string problems;
  for (const auto& p : tally.problems) problems += "  " + p + "\n";
  INFO("problems:\n" << problems);
  CHECK(tally.problems.empty());
  // Every answered request is one row: the log queue was flushed before the exit.
  CHECK(countRows(dbPath, "request_log") == static_cast<int64_t>(tally.answered.load()));
}

TEST_CASE("shutdown: a request still running at drain_timeout is cut, and the gateway exits 0 on time") {
  Backend b1("b1");
  DrainingGateway gw(proxySpec({b1.port}, "retries: 0, timeout: 60s"), {"drain_timeout: 2s"});
  HttpClient hanging;
  startHangingRequest(hanging, gw.port, b1);

  const auto signalAt = Clock::now();
  gw.process->signal(SIGTERM);
  const std::optional<int> status = gw.process->waitExit(10s);
  const long exitedMs = elapsedMs(signalAt);
  CAPTURE(exitedMs);
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  MESSAGE("drain_timeout 2 s: exited " << exitedMs << " ms after SIGTERM");
  CHECK(exitedMs >= 1900);                 // the request had its drain_timeout (2 s), no less
  CHECK(exitedMs <= boundMs(2500, 5000));  // and was cut then, not left to its 60 s timeout
  CHECK(hanging.peerClosed(1s));
}

TEST_CASE("shutdown: a second SIGTERM or SIGINT during the drain exits at once with status 1") {
  for (const auto& signals :
       {std::pair{SIGTERM, SIGTERM}, std::pair{SIGINT, SIGINT}, std::pair{SIGINT, SIGTERM}}) {
    // Named copies, not a structured binding: doctest's macros capture them in lambdas,
    // which clang 14 does not allow for bindings.
    const int first = signals.first;
    const int second = signals.second;
    CAPTURE(first);
    CAPTURE(second);
    Backend b1("b1");
    DrainingGateway gw(proxySpec({b1.port}, "retries: 0, timeout: 60s"), {"drain_timeout: 30s"});
    HttpClient hanging;
    startHangingRequest(hanging, gw.port, b1);

    gw.process->signal(first);
    // The drain is under way once /ready says so (and the first signal did not end it).
    REQUIRE(waitUntil(
        [&] {
          try {
            return call(gw.adminPort, "GET", "/ready").status == 503;
          } catch (const std::exception&) {
            return false;
          }
        },
        2s));
    REQUIRE(gw.process->running());
    const auto secondAt = Clock::now();
    gw.process->signal(second);
    const std::optional<int> status = gw.process->waitExit(10s);
    const long exitedMs = elapsedMs(secondAt);
    CAPTURE(exitedMs);
    REQUIRE(status.has_value());
    CHECK(*status == 1);
    MESSAGE("second signal: exited " << exitedMs << " ms after it");
    CHECK(exitedMs < boundMs(1000, 5000));  // at once, not at drain_timeout (30 s)
  }
}
