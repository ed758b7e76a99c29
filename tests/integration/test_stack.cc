// scripts/stack end to end: the docker-compose topology as local processes (Redis,
// PostgreSQL, three backends, a gateway on the root flowguard.yaml driven only by FLOWGUARD_*
// variables). A key registered through the gateway is used through /proxy, driven past its
// plan limit (free: 10/s, burst 20), and every request shows up in the admin /stats, the
// admin /logs and PostgreSQL's request_log. SIGTERM must stop the whole stack, exit 0 and
// leave no process behind.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/gateway_fixture.h"

using namespace flowguard::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kAdminToken = "stack-test-admin-token";

// ---- processes under a pid ------------------------------------------------------------

struct ProcInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  unsigned long long startTime = 0;  // clock ticks after boot: tells a reused pid apart
  char state = '?';
  std::string comm;
};

std::optional<ProcInfo> readProc(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  const size_t open = stat.find('('), close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  ProcInfo p;
  p.pid = pid;
  p.comm = stat.substr(open + 1, close - open - 1);
  std::istringstream rest(stat.substr(close + 2));
  std::vector<std::string> fields;  // fields[0] is field 3 (state) of proc(5)
  for (std::string f; rest >> f;) fields.push_back(f);
  if (fields.size() < 20) return std::nullopt;
  p.state = fields[0][0];
  p.ppid = static_cast<pid_t>(std::stol(fields[1]));
  p.startTime = std::stoull(fields[19]);
  return p;
}

// Every live process below `root` (children, grandchildren, ...).
std::vector<ProcInfo> descendants(pid_t root) {
  std::multimap<pid_t, ProcInfo> byParent;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (auto p = readProc(static_cast<pid_t>(std::stol(name)))) byParent.emplace(p->ppid, *p);
  }
  std::vector<ProcInfo> out;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    pid_t parent = todo.back();
    todo.pop_back();
    auto [first, last] = byParent.equal_range(parent);
    for (auto it = first; it != last; ++it) {
      out.push_back(it->second);
      todo.push_back(it->second.pid);
    }
  }
  return out;
}

// The same process (not a reused pid) and not yet dead.
bool stillRunning(const ProcInfo& p) {
  auto now = readProc(p.pid);
  return now && now->startTime == p.startTime && now->state != 'Z' && now->state != 'X';
}

// ---- the stack ------------------------------------------------------------------------

bool portFree(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// A base port whose whole layout (see scripts/stack) is free: below the kernel's ephemeral
// range, where freeTcpPort() of tests running alongside never lands.
uint16_t freeBasePort(int gateways) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(10000, 30000 - 2000);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int base = pick(rng);
    std::vector<int> ports{base + 1001, base + 1002, base + 1003, base + 1379, base + 1432};
    for (int i = 1; i <= gateways; ++i) {
      ports.push_back(base + i - 1);
      ports.push_back(base + 1900 + i);
    }
    bool free = true;
    for (int p : ports) free = free && portFree(static_cast<uint16_t>(p));
    if (free) return static_cast<uint16_t>(base);
  }
  throw std::runtime_error("no free port range for scripts/stack");
}

struct GatewayEndpoints {
  uint16_t port = 0;
  uint16_t adminPort = 0;
  pid_t pid = 0;
};

uint16_t portOf(const std::string& url) {  // http://127.0.0.1:PORT
  return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

// scripts/stack as a child process. Destruction stops it on every path: SIGTERM, and if the
// script does not finish, SIGKILL for it and everything it started.
class Stack {
 public:
  Stack(int gateways, const std::vector<std::string>& extra) {
    const char* source = std::getenv("FLOWGUARD_SOURCE_DIR");
    const char* bin = std::getenv("FLOWGUARD_BIN_DIR");
    if (!source || !bin)
      throw std::runtime_error("FLOWGUARD_SOURCE_DIR/FLOWGUARD_BIN_DIR unset (run via ctest)");
    ::setenv("BUILD_DIR", bin, 1);  // the binaries ctest built, for --no-build
    std::vector<std::string> argv{std::string(source) + "/scripts/stack",
                                  "--no-build",
                                  "--gateways",
                                  std::to_string(gateways),
                                  "--base-port",
                                  std::to_string(freeBasePort(gateways))};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<Process>(argv);
    // initdb dominates; a loaded machine may need a while.
    try {
      parse(process_->waitForLog("stack: ready", 120s));
      snapshot();
    } catch (...) {
      shutdown();  // no destructor runs for a constructor that throws
      throw;
    }
  }
  ~Stack() { shutdown(); }
  void shutdown() {
    if (!process_) return;
    if (process_->running()) {
      snapshot();
      process_->signal(SIGTERM);
      if (!process_->waitExit(60s)) process_->signal(SIGKILL);
    }
    process_->stop();
    // Whatever the script left behind (also after a test already checked and complained).
    for (const ProcInfo& p : known_) {
      if (stillRunning(p)) ::kill(p.pid, SIGKILL);
    }
    // And its work dir, which a killed script could not remove.
    if (!logDir.empty()) {
      const std::filesystem::path work = std::filesystem::path(logDir).parent_path();
      std::error_code ec;
      if (work.filename().string().rfind("flowguard-stack-", 0) == 0) std::filesystem::remove_all(work, ec);
    }
  }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  Process& process() { return *process_; }
  // The processes the script runs now; each is also killed by the destructor if it outlives
  // the script.
  std::vector<ProcInfo> snapshot() {
    std::vector<ProcInfo> now = descendants(process_->pid());
    known_.insert(known_.end(), now.begin(), now.end());
    return now;
  }

  std::vector<GatewayEndpoints> gateways;
  std::map<std::string, pid_t> servicePids;  // "redis", "postgres", "backend1", "gateway1", ...
  std::vector<uint16_t> backendPorts;
  uint16_t redisPort = 0;
  std::string postgresUrl;  // postgres://flowguard@127.0.0.1:PORT/flowguard
  std::string postgresPassword;
  std::string logDir;

 private:
  void parse(const std::string& log) {
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream in(line);
      std::string prefix, kind, word;
      in >> prefix >> kind;
      if (prefix != "stack:") continue;
      std::vector<std::string> rest;
      while (in >> word) rest.push_back(word);
      auto pidAfter = [&](size_t i) { return static_cast<pid_t>(std::stol(rest.at(i))); };
      if (kind == "gateway") {  // gateway N URL admin URL pid P
        gateways.push_back({portOf(rest.at(1)), portOf(rest.at(3)), pidAfter(5)});
        servicePids["gateway" + rest.at(0)] = pidAfter(5);
      } else if (kind == "backend") {  // backend N URL pid P
        backendPorts.push_back(portOf(rest.at(1)));
        servicePids["backend" + rest.at(0)] = pidAfter(3);
      } else if (kind == "redis") {  // redis redis://127.0.0.1:PORT/0 pid P
        const std::string& url = rest.at(0);
        const size_t colon = url.rfind(':');
        redisPort = static_cast<uint16_t>(std::stoi(url.substr(colon + 1, url.find('/', colon) - colon - 1)));
        servicePids["redis"] = pidAfter(2);
      } else if (kind == "postgres") {  // postgres URL password PW pid P
        postgresUrl = rest.at(0);
        postgresPassword = rest.at(2);
        servicePids["postgres"] = pidAfter(4);
      } else if (kind == "logs") {
        logDir = rest.at(0);
      }
    }
  }

  std::unique_ptr<Process> process_;
  std::vector<ProcInfo> known_;
};

// ---- HTTP -----------------------------------------------------------------------------

HttpResponse call(uint16_t port, const std::string& method, const std::string& path,
                  const std::vector<std::string>& headers = {}, const std::string& body = {}) {
  HttpClient c;
  c.connect(port);
  std::string raw = method + " " + path + " HTTP/1.1\r\nHost: stack.test\r\nConnection: close\r\n";
  for (const auto& h : headers) raw += h + "\r\n";
  if (method == "POST")
    raw += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  c.sendRaw(raw + "\r\n" + body);
  return c.readResponse();
}

HttpResponse admin(uint16_t port, const std::string& path) {
  return call(port, "GET", path, {std::string("Authorization: Bearer ") + kAdminToken});
}

// One command in RESP straight on a socket: what Redis itself holds, not what the gateway says.
std::string redisReply(uint16_t port, const std::string& command) {
  HttpClient c;  // only for its connect and send with deadlines; the bytes are RESP
  c.connect(port, 2s);
  c.sendRaw("*1\r\n$" + std::to_string(command.size()) + "\r\n" + command + "\r\n");
  std::string reply;
  const auto deadline = Clock::now() + 5s;
  while (reply.find("\r\n") == std::string::npos && Clock::now() < deadline) {
    char buf[256];
    ssize_t n = ::recv(c.fd(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) break;
    if (n > 0)
      reply.append(buf, static_cast<size_t>(n));
    else
      sleepFor(Millis(5));
  }
  return reply.substr(0, reply.find("\r\n"));
}

// Requests each demo backend answered other than its health checks and this probe.
uint64_t proxiedByBackend(uint16_t port) {
  Json s = json(httpGet(port, "/_stats"));
  return s["requests"].get<uint64_t>() - s["health_checks"].get<uint64_t>() - 1;
}

}  // namespace

TEST_CASE("scripts/stack: register, proxy, plan limit, /stats, request_log in PostgreSQL, clean stop") {
  Stack stack(1, {"--admin-token", kAdminToken});
  REQUIRE(stack.gateways.size() == 1);
  REQUIRE(stack.backendPorts.size() == 3);
  REQUIRE_FALSE(stack.postgresUrl.empty());
  const uint16_t gw = stack.gateways[0].port;
  const uint16_t adm = stack.gateways[0].adminPort;
  INFO("stack log tail:\n" << stack.process().logTail());

  // The admin token from the environment is enforced.
  CHECK(call(adm, "GET", "/stats").status == 401);
  REQUIRE(admin(adm, "/stats").status == 200);

  HttpResponse registered = call(gw, "POST", "/register", {}, R"({"name": "stack-test"})");
  REQUIRE_MESSAGE(registered.status == 201, registered.body);
  const Json reg = json(registered);
  const std::string key = reg["api_key"].get<std::string>();
  const std::string prefix = reg["prefix"].get<std::string>();
  CHECK(reg["plan"] == "free");
  CHECK(reg["limits"]["burst"] == 20);

  // One keep-alive connection: proxied to the backends until the plan limit answers 429.
  HttpClient client;
  client.connect(gw);
  std::map<std::string, int> byBackend;
  int admitted = 0, limited = 0, requests = 0, other = 0;
  std::vector<int> statuses;
  const auto start = Clock::now();
  while (limited < 5 && requests < 500) {
    const std::string path = "/proxy/item-" + std::to_string(requests);
    client.sendRaw("GET " + path + " HTTP/1.1\r\nHost: stack.test\r\nX-API-Key: " + key + "\r\n\r\n");
    HttpResponse r = client.readResponse();
    ++requests;
    statuses.push_back(r.status);
    if (r.status == 200) {
      ++admitted;
      Json body = json(r);
      CHECK(body["path"] == path);
      CHECK_FALSE(body["headers"].contains("x-api-key"));  // auth strips it
      ++byBackend[body["backend"].get<std::string>()];
    } else if (r.status == 429) {
      ++limited;
      CHECK(std::atoi(r.header("Retry-After").c_str()) >= 1);
      CHECK(r.hasHeader("RateLimit-Limit"));
    } else {
      ++other;
      INFO("unexpected answer " << r.status << ": " << r.body);
      CHECK(false);
    }
    if (!r.keepAlive) client.connect(gw);
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::string split;
  for (const auto& [name, n] : byBackend) split += " " + name + "=" + std::to_string(n);
  MESSAGE(requests << " requests in " << elapsed << " s: " << admitted << " admitted, " << limited
                   << " limited; backends:" << split);
  REQUIRE(limited == 5);
  CHECK(other == 0);
  // /stats: everything the public listener answered (the /register included).
  Json stats = json(admin(adm, "/stats"));
  uint64_t rlLimited = 0, rlFailureDecisions = 0;
  for (const auto& [listener, counters] : stats["rate_limit"].items()) {
    rlLimited += counters["limited"].get<uint64_t>();
    rlFailureDecisions += counters["failure_mode_decisions"].get<uint64_t>();
  }

  // The free plan: a full bucket of 20, then 10/s. The root yaml's failure_mode is local: a
  // decision Redis did not answer within its 50ms goes to an in-process bucket of the same
  // size, which (only then, and the counter says so) may admit up to as much again.
  for (size_t i = 0; i < 20; ++i) CHECK(statuses[i] == 200);
  const int bound = 20 + static_cast<int>(10 * elapsed) + 1;
  if (rlFailureDecisions == 0) {
    CHECK(admitted <= bound);
  } else {
    MESSAGE(rlFailureDecisions << " decisions without Redis (slow machine?)");
    CHECK(admitted <= 2 * bound);
  }
  for (const auto& [name, n] : byBackend) {
    CHECK((name == "backend1" || name == "backend2" || name == "backend3"));
  }
  // The backends saw exactly the admitted requests (no retries, nothing limited got through).
  uint64_t proxied = 0;
  for (uint16_t port : stack.backendPorts) proxied += proxiedByBackend(port);
  CHECK(proxied == static_cast<uint64_t>(admitted));

  CHECK(stats["totals"]["requests"] == requests + 1);
  CHECK(stats["totals"]["429"] == limited);
  CHECK(stats["totals"]["2xx"] == admitted + 1);
  CHECK(rlLimited == static_cast<uint64_t>(limited));
  CHECK(stats["clusters"]["backends"]["requests"] == admitted);
  CHECK(stats["store"]["kind"] == "postgres");
  // The limit lives in the stack's Redis (FLOWGUARD_RATE_LIMIT_STORE=redis took effect).
  const std::string dbsize = redisReply(stack.redisPort, "DBSIZE");
  INFO("redis DBSIZE: " << dbsize);
  CHECK(dbsize.size() > 1);
  CHECK(dbsize.rfind(":", 0) == 0);
  CHECK(std::atoi(dbsize.c_str() + 1) >= 1);

  // The request log through the admin listener (written in batches: wait for it)...
  Json logs;
  CHECK(waitUntil(
      [&] {
        logs = json(admin(adm, "/logs?limit=1000&key=" + prefix))["logs"];
        return logs.size() >= static_cast<size_t>(requests);
      },
      10s));
  CHECK(logs.size() == static_cast<size_t>(requests));
  CHECK(json(admin(adm, "/view_logs?limit=1000&status=429&key=" + prefix))["logs"].size() ==
        static_cast<size_t>(limited));

  // ...and straight from PostgreSQL.
  std::map<int, int> rows;
  {
    const std::string url = stack.postgresUrl.substr(0, stack.postgresUrl.find('@')) + ":" +
                            stack.postgresPassword + stack.postgresUrl.substr(stack.postgresUrl.find('@'));
    pqxx::connection conn(url + "?connect_timeout=5");
    pqxx::work tx(conn);
    for (const auto& row : tx.exec_params(
             "SELECT status, count(*) FROM request_log WHERE key_prefix = $1 AND path LIKE '/proxy/item-%' "
             "GROUP BY status",
             prefix)) {
      rows[row[0].as<int>()] = row[1].as<int>();
    }
    CHECK(
        tx.exec1("SELECT count(*) FROM request_log WHERE path = '/register' AND status = 201")[0].as<int>() ==
        1);
  }
  CHECK(rows[200] == admitted);
  CHECK(rows[429] == limited);
  CHECK(rows.size() == 2);

  // SIGTERM: everything the stack started goes, the script exits 0 and removes its work dir.
  std::vector<ProcInfo> started = stack.snapshot();
  std::set<pid_t> startedPids;
  for (const ProcInfo& p : started) startedPids.insert(p.pid);
  for (const auto& service : stack.servicePids) {
    CHECK_MESSAGE(startedPids.count(service.second) == 1, service.first);
  }
  CHECK(stack.servicePids.size() == 6);  // redis, postgres, 3 backends, 1 gateway
  stack.process().signal(SIGTERM);
  std::optional<int> status = stack.process().waitExit(60s);
  REQUIRE_MESSAGE(status.has_value(), "scripts/stack still running 60 s after SIGTERM");
  CHECK(*status == 0);
  const std::string log = stack.process().logText();
  CHECK(log.find("stack: stopped") != std::string::npos);
  for (const ProcInfo& p : started)
    CHECK_MESSAGE(!stillRunning(p), p.comm << " (pid " << p.pid << ") left behind");
  REQUIRE_FALSE(stack.logDir.empty());
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path(stack.logDir).parent_path()));
}
