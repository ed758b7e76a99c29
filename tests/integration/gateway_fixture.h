// Shared pieces of the gateway integration tests: real flowguard-backend processes, a real
// flowguard process started from a flowguard.yaml written into a temp dir, and a scripted
// raw upstream for responses the demo backend cannot produce.
#pragma once

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <csignal>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/raw_upstream.h"
#include "tests/support/test_support.h"

namespace flowguard::test {

using Json = nlohmann::json;

inline std::vector<std::string> backendArgv(const std::string& name, uint16_t port,
                                            const std::vector<std::string>& extra) {
  std::vector<std::string> argv{binaryPath("flowguard-backend"), "--port", std::to_string(port), "--name",
                                name};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

struct Backend {
  // `extra`: more flags, e.g. {"--hang-rate", "1"}.
  explicit Backend(std::string backendName = "b1", const std::vector<std::string>& extra = {})
      : name(std::move(backendName)),
        process(
            startOnFreePort([&](uint16_t p) { return backendArgv(name, p, extra); }, port, "listening on")) {}
  ~Backend() {
    int status = process.stop();
    INFO("backend " << name << " log tail:\n" << process.logTail());
    if (!killed) CHECK(status == 0);
  }
  // SIGKILL, as a crash would: no goodbye on any connection.
  void kill() {
    killed = true;
    process.signal(SIGKILL);
    process.waitExit(5s);
  }
  // POST /_fault with a JSON body (fault knobs at run time).
  void setFault(const std::string& json) const {
    HttpClient c;
    c.connect(port);
    c.sendRaw("POST /_fault HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(json.size()) + "\r\n\r\n" + json);
    HttpResponse r = c.readResponse();
    REQUIRE_MESSAGE(r.status == 200, r.body);
  }
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  // The backend's own counters; the probe itself counts as one connection and one request.
  Json stats() const { return Json::parse(httpGet(port, "/_stats").body); }
  uint64_t connectionsAccepted() const { return stats()["connections_accepted"].get<uint64_t>(); }
  uint64_t requests() const { return stats()["requests"].get<uint64_t>(); }

  std::string name;
  uint16_t port = 0;
  Process process;  // after name and port, which starting it uses
  bool killed = false;
};

// A backend's /_stats read by a test that keeps count of its own probes, so what the
// gateway caused can be told apart from them: each probe is itself one request, and its
// snapshot includes the answers to every earlier probe but not its own. `others`: requests
// the test sent to the backend directly some other way (setFault...), each answered.
struct BackendProbe {
  const Backend& backend;
  uint64_t probes = 0;
  uint64_t others = 0;

  Json read() {
    ++probes;
    return backend.stats();
  }
  // Requests that came through the gateway (health checks and the test's own excluded).
  uint64_t proxiedRequests(const Json& s) const {
    return s.at("requests").get<uint64_t>() - s.at("health_checks").get<uint64_t>() - probes - others;
  }
  // Answers to requests that came through the gateway, as of snapshot `s` (the last read).
  uint64_t proxiedResponses(const Json& s) const {
    return s.at("responses").get<uint64_t>() - s.at("health_checks").get<uint64_t>() - (probes - 1) - others;
  }
};

// The top-level line for an admin listener on host:adminPort, with `options` (e.g. "token: t")
// added to its mapping.
inline std::string adminListenerLine(uint16_t adminPort, const std::string& options = {},
                                     const std::string& host = "127.0.0.1") {
  return "admin: { address: \"" + host + ":" + std::to_string(adminPort) + "\"" +
         (options.empty() ? "" : ", " + options) + " }";
}

inline std::string hostList(const std::vector<uint16_t>& ports) {
  std::string out = "[";
  for (size_t i = 0; i < ports.size(); ++i) {
    if (i > 0) out += ", ";
    out += "127.0.0.1:" + std::to_string(ports[i]);
  }
  return out + "]";
}

// A cluster entry in YAML flow style: { name: N, hosts: [...], <extra> }.
inline std::string clusterYaml(const std::string& name, const std::vector<uint16_t>& ports,
                               const std::string& extra = {}) {
  std::string out = "{ name: " + name + ", hosts: " + hostList(ports);
  if (!extra.empty()) out += ", " + extra;
  return out + " }";
}

// What one test's flowguard.yaml holds. Routes and clusters are YAML flow mappings.
struct GatewaySpec {
  unsigned workers = 1;
  std::vector<std::string> listener;  // extra "key: value" lines for the listener
  std::vector<std::string> filters;   // flow mappings placed before the router, in order
  std::vector<std::string> routes;
  std::vector<std::string> clusters;
  std::vector<std::string> topLevel;  // whole top-level lines appended as given, e.g. "redis: { ... }"
  bool admin = false;                 // an admin listener on a port Gateway picks (Gateway::adminPort)
  std::string adminOptions;           // more settings of that listener, e.g. "token: t"
  std::string adminHost = "127.0.0.1";

  // The file for a listener on `port` and, when adminPort is not 0, an admin listener on it.
  std::string yaml(uint16_t port, uint16_t adminPort = 0) const {
    std::string out = "workers: " + std::to_string(workers) + "\n";
    out += "listeners:\n  - name: test\n    address: 127.0.0.1:" + std::to_string(port) + "\n";
    for (const auto& line : listener) out += "    " + line + "\n";
    out += "    filters:\n";
    for (const auto& filter : filters) out += "      - " + filter + "\n";
    out += "      - name: router\n        routes:\n";
    for (const auto& route : routes) out += "          - " + route + "\n";
    if (!clusters.empty()) {
      out += "clusters:\n";
      for (const auto& cluster : clusters) out += "  - " + cluster + "\n";
    }
    for (const auto& line : topLevel) out += line + "\n";
    if (adminPort != 0) out += adminListenerLine(adminPort, adminOptions, adminHost) + "\n";
    return out;
  }
};

// The usual spec: everything under / goes to cluster "backends".
inline GatewaySpec proxySpec(const std::vector<uint16_t>& ports, const std::string& clusterExtra = {}) {
  GatewaySpec spec;
  spec.routes = {"{ match: { prefix: / }, cluster: backends }"};
  spec.clusters = {clusterYaml("backends", ports, clusterExtra)};
  return spec;
}

inline std::string writeConfig(const TempDir& dir, const std::string& yaml) {
  std::string path = dir.file("flowguard.yaml");
  writeFile(path, yaml);
  return path;
}

// The real gateway on a free port (and with spec.admin, its admin listener on another). Every
// test ends with a SIGTERM that must exit 0.
struct Gateway {
  // The listener's start-up line comes once every worker is listening (the port opens with the
  // first), so a test does not race the other workers. The admin listener starts after the
  // listeners: its line is the one to wait for, so that a stranger on the admin port gets both
  // ports picked again.
  explicit Gateway(const GatewaySpec& spec)
      : process(startOnFreePort(
            [&](uint16_t p) {
              adminPort = spec.admin ? freeTcpPort() : 0;
              configPath = writeConfig(dir, spec.yaml(p, adminPort));
              return std::vector<std::string>{binaryPath("flowguard"), "-c", configPath};
            },
            port, spec.admin ? "flowguard: admin on" : "flowguard: listener test on", dir.path())) {
    process.waitForLog("flowguard: listener test on");
  }
  ~Gateway() {
    int status = process.stop();
    INFO("gateway log tail:\n" << process.logTail());
    INFO("config:\n" << readFile(configPath));
    CHECK(status == 0);
  }
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  TempDir dir;
  uint16_t port = 0;
  uint16_t adminPort = 0;  // 0 without spec.admin
  std::string configPath;
  Process process;  // declared last: started once the members above exist
};

// `flowguard` run to completion with `args` (validate, --version...), stdout and stderr apart.
struct CliResult {
  int status = -1;
  std::string out;
  std::string err;
};

// Runs flowguard with `args`, stdout and stderr into separate files.
inline CliResult runCli(const std::vector<std::string>& args) {
  TempDir dir;
  std::string command = "exec '" + binaryPath("flowguard") + "'";
  for (const auto& a : args) command += " '" + a + "'";
  command += " >'" + dir.file("out") + "' 2>'" + dir.file("err") + "'";
  Process p({"/bin/sh", "-c", command}, dir.path());
  CliResult result;
  auto status = p.waitExit(10s);
  REQUIRE(status.has_value());
  result.status = *status;
  result.out = readFile(dir.file("out"));
  result.err = readFile(dir.file("err"));
  return result;
}

inline Json json(const HttpResponse& r) {
  try {
    return Json::parse(r.body);
  } catch (const std::exception& e) {
    throw std::runtime_error("response body is not JSON (" + std::string(e.what()) +
                             "): " + r.body.substr(0, 300));
  }
}

inline std::string get(std::string_view path, std::string_view extra = {}) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: gw.test\r\n" + std::string(extra) + "\r\n";
}

// `clients` connections that all send GET `path` at once; their answers, in order.
inline std::vector<HttpResponse> concurrentGets(uint16_t port, int clients, std::string_view path) {
  std::vector<std::unique_ptr<HttpClient>> connections;
  for (int i = 0; i < clients; ++i) {
    connections.push_back(std::make_unique<HttpClient>());
    connections.back()->connect(port);
  }
  for (auto& c : connections) c->sendRaw(get(path));
  std::vector<HttpResponse> responses;
  for (auto& c : connections) responses.push_back(c->readResponse(10s));
  return responses;
}

// GET `path` on the gateway's admin listener (see adminListenerLine), as JSON.
inline Json adminJson(uint16_t adminPort, std::string_view path) {
  HttpResponse r = httpGet(adminPort, path);
  if (r.status != 200) {
    std::string what = "admin ";
    what.append(path).append(" answered ").append(std::to_string(r.status)).append(": ");
    what.append(r.body.substr(0, 300));
    throw std::runtime_error(what);
  }
  return json(r);
}

// The routes of the router at `filterIndex` in the first listener, as /config_dump shows them.
inline Json dumpedRoutes(uint16_t adminPort, size_t filterIndex) {
  return adminJson(adminPort, "/config_dump")
      .at("config")
      .at("listeners")
      .at(0)
      .at("filters")
      .at(filterIndex)
      .at("routes");
}

// One host of one cluster as the admin /clusters shows it; throws when it is not there.
inline Json adminClusterHost(uint16_t adminPort, const std::string& cluster, uint16_t hostPort) {
  const std::string address = "127.0.0.1:" + std::to_string(hostPort);
  const Json all = adminJson(adminPort, "/clusters");
  for (const Json& c : all.at("clusters")) {
    if (c.at("name") != cluster) continue;
    for (const Json& h : c.at("hosts")) {
      if (h.at("address") == address) return h;
    }
  }
  std::string what = "no host " + address;
  what.append(" in cluster ").append(cluster).append(" on /clusters: ").append(all.dump().substr(0, 600));
  throw std::runtime_error(what);
}

// A gateway error body: {"error": "...", "status": N, "request_id": "..."}.
inline void checkErrorJson(const HttpResponse& r, int status) {
  CHECK(r.status == status);
  CHECK(r.header("Content-Type") == "application/json");
  Json j = json(r);
  CHECK(j.contains("error"));
  CHECK(j.value("status", 0) == status);
  CHECK(j.contains("request_id"));
  if (j.contains("request_id")) CHECK_FALSE(j["request_id"].get<std::string>().empty());
}

// One blocking connect attempt to 127.0.0.1:port, no retries: 0 when it was accepted, else
// the errno (ECONNREFUSED: nothing listening).
inline int connectOnce(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = rc == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

// Sets `stop` and joins `threads` when it goes out of scope: load threads end on every way
// out of a test, a failed REQUIRE included.
struct StopAndJoin {
  std::atomic<bool>& stop;
  std::vector<std::thread>& threads;
  ~StopAndJoin() {
    stop = true;
    for (auto& t : threads) t.join();
  }
};

inline bool isPattern(std::string_view body, uint64_t offset = 0) {
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != static_cast<char>('a' + (offset + i) % 26)) return false;
  }
  return true;
}

}  // namespace flowguard::test
