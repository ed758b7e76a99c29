// Security replay (issue 18): the attack probes of probes.yaml, sent byte for byte to a real
// flowguard started from the root flowguard.yaml (the file users run), in front of three
// recording upstreams. Each probe says what the client must get back and what the backends
// must (not) receive. The probes are data so that new filters and protocols can be put
// through the same list.
//
// A probe marked `open: "item N"` is a finding that is not fixed yet: it must fail, and the
// test fails once it passes, so the marks cannot go stale (as corpora_deviations.txt).

#include <doctest/doctest.h>

#include <poll.h>
#include <sys/socket.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include "core/http1_parser.h"
#include "core/http_message.h"
#include "tests/integration/gateway_fixture.h"

namespace flowguard::test {
namespace {

namespace fs = std::filesystem;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kDemoKey = "test-api-key";  // the key the root flowguard.yaml ships
// Every request the harness sends is at least this far apart: the root config limits each key
// (and each anonymous IP) to 10/s with bursts of 20, and a 429 nobody asked for would make
// probes pass or fail by accident.
constexpr Millis kPace{100};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string replaceAll(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// ---- the recording upstreams -------------------------------------------------------------------

struct Recorded {
  std::string requestLine;
  Fields headers;
  std::string body;
  Fields trailers;
};

// One log for all three upstreams, in arrival order: a probe's request and the sentinel after
// it may land on different hosts (round robin), and only one order says which came first.
class RecordLog {
 public:
  void add(Recorded r) {
    std::lock_guard lock(mutex_);
    records_.push_back(std::move(r));
  }
  std::vector<Recorded> snapshot() {
    std::lock_guard lock(mutex_);
    return records_;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    records_.clear();
  }

 private:
  std::mutex mutex_;
  std::vector<Recorded> records_;
};

// A backend on a free loopback port that records every request as it arrived (FlowGuard's
// parser only splits the bytes) and answers 200 {"ok":true}, keep-alive. The gateway's
// active health checks (GET /health) are answered but not recorded.
class RecordingUpstream {
 public:
  explicit RecordingUpstream(RecordLog& log) : log_(log) {
    listenFd_ = listenOnLoopback(64, port);
    thread_ = std::thread([this] { serve(); });
  }
  ~RecordingUpstream() {
    stop_ = true;
    thread_.join();
    ::close(listenFd_);
  }
  RecordingUpstream(const RecordingUpstream&) = delete;
  RecordingUpstream& operator=(const RecordingUpstream&) = delete;

  uint16_t port = 0;

 private:
  struct Conn {
    int fd = -1;
    std::string buf;
    std::unique_ptr<core::Http1Parser> parser;
    Recorded cur;
    bool head = false;
    bool health = false;
  };

  // Returns false when the connection is to be closed.
  bool onData(Conn& c) {
    size_t off = 0;
    for (;;) {
      auto r = c.parser->parse(c.buf.data() + off, c.buf.size() - off);
      off += r.consumed;
      if (r.event == core::Http1Parser::Event::NeedMore) break;
      if (r.event == core::Http1Parser::Event::Error) return false;
      if (r.event == core::Http1Parser::Event::HeadComplete) {
        const core::RequestHead& h = c.parser->request();
        c.cur = Recorded{};
        c.cur.requestLine = h.method + " " + h.target + " HTTP/1." + std::to_string(h.versionMinor);
        for (const auto& f : h.headers) c.cur.headers.emplace_back(f.name, f.value);
        c.head = h.method == "HEAD";
        c.health = h.method == "GET" && h.path() == "/health";
      } else if (r.event == core::Http1Parser::Event::Body) {
        c.cur.body.append(c.parser->body());
      } else {  // MessageComplete
        for (const auto& f : c.parser->trailers()) c.cur.trailers.emplace_back(f.name, f.value);
        if (!c.health) log_.add(c.cur);  // recorded before answering: the answer proves arrival
        sendAll(c.fd, c.head
                          ? "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
                          : "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                            "11\r\n\r\n{\"ok\":true}");
      }
    }
    c.buf.erase(0, off);
    return true;
  }

  void serve() {
    std::vector<Conn> conns;
    while (!stop_) {
      std::vector<pollfd> fds{{listenFd_, POLLIN, 0}};
      for (const Conn& c : conns) fds.push_back({c.fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          Conn c;
          c.fd = fd;
          c.parser = std::make_unique<core::Http1Parser>(core::Http1Parser::Kind::Request,
                                                         core::Http1Parser::Limits{});
          conns.push_back(std::move(c));
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        Conn& c = conns[i - 1];
        char buf[65536];
        ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
        if (n > 0) c.buf.append(buf, static_cast<size_t>(n));
        if (n <= 0 || !onData(c)) {
          ::close(c.fd);
          c.fd = -1;
        }
      }
      std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
    }
    for (const Conn& c : conns) ::close(c.fd);
  }

  RecordLog& log_;
  int listenFd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// ---- probes.yaml -------------------------------------------------------------------------------

struct UpstreamExpect {
  bool none = false;  // `upstream: none`: no backend received anything
  std::optional<std::string> requestLine;
  Fields headers;    // present, and every field of that name has exactly this value
  Fields headerNot;  // no field of that name carries this value (as the whole or a list element)
  std::vector<std::string> absentHeaders, absentTrailers;
  bool noTrailers = false;
  std::map<std::string, int> headerCount;
};

struct Expect {
  std::optional<int> status;
  std::optional<UpstreamExpect> upstream;
  Fields headers;
  std::vector<std::string> absentHeaders;
  std::optional<std::string> bodyContains;
  bool closed = false;
};

struct Step {
  std::string listener;
  std::string request;
  Expect expect;
  int repeatStatus = 0, repeatMax = 0;  // repeat_until
};

struct Probe {
  std::string name, open, check;
  int item = 0;
  std::vector<Step> steps;
};

// A typo in a key must not silently drop an expectation.
void onlyKeys(const YAML::Node& map, std::set<std::string> allowed, const std::string& where) {
  REQUIRE_MESSAGE(map.IsMap(), "probes.yaml: " << where << " is not a map");
  for (const auto& entry : map) {
    const std::string key = entry.first.as<std::string>();
    REQUIRE_MESSAGE(allowed.count(key) > 0, "probes.yaml: unknown key '" << key << "' in " << where);
  }
}

std::vector<std::string> strings(const YAML::Node& n) {
  std::vector<std::string> out;
  for (const auto& item : n) out.push_back(lower(item.as<std::string>()));
  return out;
}

Fields fieldMap(const YAML::Node& n) {
  Fields out;
  for (const auto& entry : n)
    out.emplace_back(lower(entry.first.as<std::string>()), entry.second.as<std::string>());
  return out;
}

Expect parseExpect(const YAML::Node& n, const std::string& where) {
  Expect e;
  if (!n) return e;
  onlyKeys(n, {"status", "upstream", "headers", "absent_headers", "body_contains", "closed"}, where);
  if (n["status"]) e.status = n["status"].as<int>();
  if (n["headers"]) e.headers = fieldMap(n["headers"]);
  if (n["absent_headers"]) e.absentHeaders = strings(n["absent_headers"]);
  if (n["body_contains"]) e.bodyContains = n["body_contains"].as<std::string>();
  if (n["closed"]) e.closed = n["closed"].as<bool>();
  if (const YAML::Node u = n["upstream"]) {
    UpstreamExpect up;
    if (u.IsScalar()) {
      REQUIRE_MESSAGE(u.as<std::string>() == "none",
                      "probes.yaml: upstream: must be none or a map in " << where);
      up.none = true;
    } else {
      onlyKeys(u,
               {"request_line", "headers", "header_not", "absent_headers", "absent_trailers", "trailers",
                "header_count"},
               where + " upstream");
      if (u["request_line"]) up.requestLine = u["request_line"].as<std::string>();
      if (u["headers"]) up.headers = fieldMap(u["headers"]);
      if (u["header_not"]) up.headerNot = fieldMap(u["header_not"]);
      if (u["absent_headers"]) up.absentHeaders = strings(u["absent_headers"]);
      if (u["absent_trailers"]) up.absentTrailers = strings(u["absent_trailers"]);
      if (u["trailers"]) {
        REQUIRE_MESSAGE(u["trailers"].as<std::string>() == "none", "probes.yaml: trailers: must be none");
        up.noTrailers = true;
      }
      for (const auto& entry : u["header_count"])
        up.headerCount[lower(entry.first.as<std::string>())] = entry.second.as<int>();
    }
    e.upstream = up;
  }
  return e;
}

std::vector<Probe> loadProbes(const std::string& path) {
  std::vector<Probe> probes;
  std::set<std::string> names;
  for (const YAML::Node& n : YAML::LoadFile(path)) {
    Probe p;
    p.name = n["name"] ? n["name"].as<std::string>() : std::string();
    REQUIRE_MESSAGE(!p.name.empty(), "probes.yaml: a probe without a name");
    REQUIRE_MESSAGE(names.insert(p.name).second, "probes.yaml: two probes named '" << p.name << "'");
    onlyKeys(n, {"name", "item", "listener", "request", "expect", "steps", "open", "check"},
             "'" + p.name + "'");
    p.item = n["item"] ? n["item"].as<int>() : 0;
    p.open = n["open"] ? n["open"].as<std::string>() : std::string();
    p.check = n["check"] ? n["check"].as<std::string>() : std::string();
    const std::string listener = n["listener"] ? n["listener"].as<std::string>() : "public";
    if (!p.check.empty()) {
      REQUIRE_MESSAGE(p.check == "keys_not_stored", "probes.yaml: unknown check '" << p.check << "'");
      probes.push_back(std::move(p));
      continue;
    }
    REQUIRE_MESSAGE(n["request"].IsDefined() != n["steps"].IsDefined(),
                    "probes.yaml: '" << p.name << "' needs either request: or steps:");
    if (n["request"]) {
      p.steps.push_back({listener, n["request"].as<std::string>(), parseExpect(n["expect"], p.name), 0, 0});
    } else {
      for (const YAML::Node& s : n["steps"]) {
        onlyKeys(s, {"listener", "request", "expect", "repeat_until"}, "a step of '" + p.name + "'");
        Step step{s["listener"] ? s["listener"].as<std::string>() : listener, s["request"].as<std::string>(),
                  parseExpect(s["expect"], p.name), 0, 0};
        if (const YAML::Node r = s["repeat_until"]) {
          step.repeatStatus = r["status"].as<int>();
          step.repeatMax = r["max"].as<int>();
        }
        p.steps.push_back(std::move(step));
      }
    }
    for (const Step& s : p.steps)
      REQUIRE_MESSAGE((s.listener == "public" || s.listener == "admin"),
                      "probes.yaml: listener must be public or admin in '" << p.name << "'");
    probes.push_back(std::move(p));
  }
  return probes;
}

// ---- the gateway under test ----------------------------------------------------------------------

std::string sourceDir() {
  const char* source = std::getenv("FLOWGUARD_SOURCE_DIR");
  REQUIRE_MESSAGE(source, "FLOWGUARD_SOURCE_DIR is not set (run through ctest)");
  return source;
}

struct Outcome {
  HttpResponse response;
  bool closed = false;
};

class Replay {
 public:
  Replay() : up1_(log_), up2_(log_), up3_(log_) {
    // The environment holds the ports, so it is set for each attempt's spawn. The admin
    // listener starts last: its line is the one to wait for, so a stranger on either port
    // gets both picked again.
    std::optional<ScopedEnv> env;
    auto argvFor = [&](uint16_t publicPort) {
      adminPort_ = freeTcpPort();
      env.reset();
      env.emplace(std::map<std::string, std::string>{
          {"FLOWGUARD_WORKERS", "1"},
          {"FLOWGUARD_LISTEN_ADDRESS", "127.0.0.1:" + std::to_string(publicPort)},
          {"FLOWGUARD_ADMIN_ADDRESS", "127.0.0.1:" + std::to_string(adminPort_)},
          {"FLOWGUARD_ADMIN_TOKEN", ""},
          {"FLOWGUARD_BACKEND_1", "127.0.0.1:" + std::to_string(up1_.port)},
          {"FLOWGUARD_BACKEND_2", "127.0.0.1:" + std::to_string(up2_.port)},
          {"FLOWGUARD_BACKEND_3", "127.0.0.1:" + std::to_string(up3_.port)},
          {"FLOWGUARD_STORAGE_URL", "sqlite://" + state_.file("flowguard.db")},
          {"FLOWGUARD_STATE_DIR", state_.path()},
          {"FLOWGUARD_REDIS_URL", ""},
          {"FLOWGUARD_RATE_LIMIT_STORE", "local"}});
      return std::vector<std::string>{binaryPath("flowguard"), "-c", sourceDir() + "/flowguard.yaml"};
    };
    gateway_ = std::make_unique<Process>(startOnFreePort(argvFor, publicPort_, "flowguard: admin on"));
    placeholders_ = {{"{KEY}", kDemoKey},
                     {"{ADMIN}", "127.0.0.1:" + std::to_string(adminPort_)},
                     {"{PUBLIC}", "127.0.0.1:" + std::to_string(publicPort_)}};
    keys_.insert(kDemoKey);
    // All three hosts healthy first: the probes should meet the gateway in its normal state.
    const bool healthy = waitUntil(
        [&] {
          HttpResponse r = send("admin", "GET /stats HTTP/1.1\r\nHost: {ADMIN}\r\n\r\n").response;
          return r.status == 200 && json(r)["clusters"]["backends"]["hosts_healthy"] == 3;
        },
        20s);
    REQUIRE_MESSAGE(healthy, "the backends never became healthy; gateway log:\n" << gateway_->logTail());
    Outcome reg = send("public",
                       "POST /register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                       "Content-Length: {LEN}\r\n\r\n{\"name\":\"replay-setup\"}");
    REQUIRE_MESSAGE(reg.response.status == 201, reg.response.body);
    placeholders_.emplace_back("{REGISTERED_KEY}", json(reg.response)["api_key"].get<std::string>());
  }

  ~Replay() {
    if (!stopped_) stopGateway();
  }

  // Drains the gateway (which flushes the request log); its exit status must be 0.
  void stopGateway() {
    const int status = gateway_->stop();
    INFO("gateway log tail:\n" << gateway_->logTail());
    CHECK(status == 0);
    stopped_ = true;
  }

  std::string substitute(std::string s) const {
    for (const auto& entry : placeholders_) s = replaceAll(s, entry.first, entry.second);
    return s;
  }

  // One request on a new connection, placeholders and Content-Length: {LEN} filled in.
  Outcome send(const std::string& listener, const std::string& templ, bool expectClose = false) {
    std::string bytes = substitute(templ);
    const size_t bodyAt = bytes.find("\r\n\r\n");
    if (bodyAt != std::string::npos)
      bytes = replaceAll(bytes, "{LEN}", std::to_string(bytes.size() - bodyAt - 4));
    auto wait = lastSend_ + kPace - std::chrono::steady_clock::now();
    if (wait > Millis(0)) std::this_thread::sleep_for(wait);
    lastSend_ = std::chrono::steady_clock::now();
    HttpClient client;
    client.connect(listener == "admin" ? adminPort_ : publicPort_);
    client.sendRaw(bytes);
    Outcome out;
    out.response = client.readResponse(5s, bytes.starts_with("HEAD "));
    if (expectClose) out.closed = client.peerClosed(2s);
    // Every key /register hands out takes part in the final check.
    if (out.response.status / 100 == 2 && bytes.find(" /register ") != std::string::npos) {
      Json j = Json::parse(out.response.body, nullptr, false);
      if (j.is_object() && j.contains("api_key") && j["api_key"].is_string())
        keys_.insert(j["api_key"].get<std::string>());
    }
    return out;
  }

  // Sends a keyed request the backends will certainly get and waits until one records it:
  // the probe's own request, sent and answered before, would have arrived by then. Returns
  // what was recorded before the sentinel.
  std::vector<Recorded> upstreamSeenBeforeSentinel() {
    const std::string target = "/proxy/sentinel-" + std::to_string(++sentinels_);
    const std::string request = "GET " + target + " HTTP/1.1\r\nHost: localhost\r\nX-API-Key: {KEY}\r\n\r\n";
    for (int attempt = 0; attempt < 10 && send("public", request).response.status == 429; ++attempt)
      sleepFor(200ms);
    std::vector<Recorded> seen;
    const bool arrived = waitUntil(
        [&] {
          seen = log_.snapshot();
          for (size_t i = 0; i < seen.size(); ++i) {
            if (seen[i].requestLine.find(target + " ") != std::string::npos) {
              seen.resize(i);
              return true;
            }
          }
          return false;
        },
        5s);
    if (!arrived) throw std::runtime_error("the sentinel request " + target + " never reached a backend");
    return seen;
  }

  std::string runStep(const Step& step);
  std::string runProbe(const Probe& probe);
  std::string checkKeysNotStored();

  bool stopped() const { return stopped_; }

 private:
  TempDir state_;
  RecordLog log_;
  RecordingUpstream up1_, up2_, up3_;
  uint16_t publicPort_ = 0, adminPort_ = 0;
  std::unique_ptr<Process> gateway_;
  Fields placeholders_;
  std::set<std::string> keys_;
  std::chrono::steady_clock::time_point lastSend_{};
  int sentinels_ = 0;
  bool stopped_ = false;
};

// ---- checking one answer -----------------------------------------------------------------------

std::string describe(const Recorded& r) {
  std::string out = r.requestLine;
  for (const auto& f : r.headers) out += " | " + f.first + ": " + f.second;
  for (const auto& f : r.trailers) out += " | trailer " + f.first + ": " + f.second;
  return out;
}

std::vector<std::string> valuesOf(const Fields& fields, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& f : fields)
    if (lower(f.first) == name) out.push_back(f.second);
  return out;
}

std::string checkUpstream(const UpstreamExpect& e, const std::vector<Recorded>& seen) {
  if (e.none) {
    if (seen.empty()) return {};
    return std::to_string(seen.size()) +
           " request(s) reached a backend, expected none; first: " + describe(seen.front());
  }
  if (seen.size() != 1) return std::to_string(seen.size()) + " request(s) reached the backends, expected 1";
  const Recorded& r = seen.front();
  const std::string what = " (backend got: " + describe(r) + ")";
  if (e.requestLine && r.requestLine != *e.requestLine)
    return "backend request line '" + r.requestLine + "', expected '" + *e.requestLine + "'" + what;
  for (const auto& h : e.headers) {
    const std::vector<std::string> values = valuesOf(r.headers, h.first);
    if (values.empty()) return "backend did not get " + h.first + what;
    for (const std::string& v : values)
      if (v != h.second) return "backend got " + h.first + ": " + v + ", expected " + h.second + what;
  }
  for (const auto& h : e.headerNot) {
    for (const std::string& v : valuesOf(r.headers, h.first)) {
      std::stringstream list(v);
      for (std::string element; std::getline(list, element, ',');)
        if (trim(element) == h.second) return "backend got " + h.first + ": " + v + what;
    }
  }
  for (const std::string& name : e.absentHeaders)
    if (!valuesOf(r.headers, name).empty()) return "backend got header " + name + what;
  for (const std::string& name : e.absentTrailers)
    if (!valuesOf(r.trailers, name).empty()) return "backend got trailer " + name + what;
  if (e.noTrailers && !r.trailers.empty())
    return "backend got " + std::to_string(r.trailers.size()) + " trailer field(s)" + what;
  for (const auto& count : e.headerCount) {
    const size_t n = valuesOf(r.headers, count.first).size();
    if (n != static_cast<size_t>(count.second))
      return "backend got " + std::to_string(n) + " " + count.first + " field(s), expected " +
             std::to_string(count.second) + what;
  }
  return {};
}

std::string checkResponse(const Replay& replay, const Expect& e, const Outcome& out) {
  const HttpResponse& r = out.response;
  const std::string what = " (answer " + std::to_string(r.status) + ": " + r.body.substr(0, 200) + ")";
  if (e.status && r.status != *e.status)
    return "status " + std::to_string(r.status) + ", expected " + std::to_string(*e.status) + what;
  if (r.status >= 400) {
    // An error the gateway makes is JSON with an "error" field, whichever filter refuses.
    Json j = Json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("error"))
      return "error answer is not JSON with an \"error\" field" + what;
  }
  for (const auto& h : e.headers) {
    if (!r.hasHeader(h.first)) return "response has no " + h.first + what;
    if (r.header(h.first) != replay.substitute(h.second))
      return "response " + h.first + ": " + r.header(h.first) + ", expected " + h.second;
  }
  for (const std::string& name : e.absentHeaders)
    if (r.hasHeader(name)) return "response has " + name + ": " + r.header(name);
  if (e.bodyContains && r.body.find(replay.substitute(*e.bodyContains)) == std::string::npos)
    return "body lacks '" + *e.bodyContains + "'" + what;
  if (e.closed && !out.closed) return "the gateway kept the connection open";
  return {};
}

UpstreamExpect substituted(const Replay& replay, UpstreamExpect e) {
  if (e.requestLine) e.requestLine = replay.substitute(*e.requestLine);
  for (auto& h : e.headers) h.second = replay.substitute(h.second);
  for (auto& h : e.headerNot) h.second = replay.substitute(h.second);
  return e;
}

// ---- running probes ----------------------------------------------------------------------------

std::string Replay::runStep(const Step& step) {
  log_.clear();
  Outcome out;
  if (step.repeatMax > 0) {
    int sent = 0;
    do {
      out = send(step.listener, step.request);
    } while (out.response.status != step.repeatStatus && ++sent < step.repeatMax);
    if (out.response.status != step.repeatStatus)
      return std::to_string(step.repeatMax) + " requests, none answered " +
             std::to_string(step.repeatStatus) + " (last: " + std::to_string(out.response.status) + ")";
    Expect e = step.expect;
    e.status = step.repeatStatus;
    return checkResponse(*this, e, out);
  }
  out = send(step.listener, step.request, step.expect.closed);
  if (std::string failure = checkResponse(*this, step.expect, out); !failure.empty()) return failure;
  if (!step.expect.upstream) return {};
  return checkUpstream(substituted(*this, *step.expect.upstream), upstreamSeenBeforeSentinel());
}

// Every step runs even after one failed (a later step may put the gateway back in its normal
// state for the next probes); the first failure is the probe's.
std::string Replay::runProbe(const Probe& probe) {
  std::string first;
  for (size_t i = 0; i < probe.steps.size(); ++i) {
    std::string failure;
    try {
      failure = runStep(probe.steps[i]);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty() && first.empty())
      first = (probe.steps.size() > 1 ? "step " + std::to_string(i + 1) + ": " : std::string()) + failure;
  }
  return first;
}

// No whole key may be at rest anywhere: not in the database files (the request log, the key
// table), not in the gateway's own output. Run after stopGateway so every batch is flushed.
std::string Replay::checkKeysNotStored() {
  REQUIRE(stopped_);
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(state_.path()))
    if (entry.path().filename().string().starts_with("flowguard.db")) files.push_back(entry.path().string());
  REQUIRE_MESSAGE(!files.empty(), "no database file in " << state_.path());
  files.push_back(gateway_->logPath());
  std::string found;
  for (const std::string& file : files) {
    const std::string bytes = readFile(file);
    for (const std::string& key : keys_) {
      if (bytes.find(key) != std::string::npos)
        found += (found.empty() ? "" : "; ") + fs::path(file).filename().string() + " contains " +
                 key.substr(0, 6) + "...";
    }
  }
  return found;
}

}  // namespace

TEST_CASE("security replay: issue 18's attack probes against the root flowguard.yaml") {
  const auto started = std::chrono::steady_clock::now();
  const std::vector<Probe> probes = loadProbes(sourceDir() + "/tests/security/probes.yaml");
  REQUIRE(!probes.empty());
  Replay replay;

  int passed = 0, open = 0, failed = 0;
  auto judge = [&](const Probe& probe, const std::string& failure) {
    const std::string label = "probe '" + probe.name + "' (item " + std::to_string(probe.item) + ")";
    if (!probe.open.empty()) {
      if (failure.empty()) {
        FAIL_CHECK("probe '" << probe.name << "' passes now: remove its open: field");
        ++failed;
      } else {
        MESSAGE("still open (" << probe.open << "): " << label << ": " << failure);
        ++open;
      }
    } else if (failure.empty()) {
      ++passed;
    } else {
      FAIL_CHECK(label << ": " << failure);
      ++failed;
    }
  };
  // Request probes in file order, then the checks on what the run left behind.
  for (const Probe& probe : probes)
    if (probe.check.empty()) judge(probe, replay.runProbe(probe));
  replay.stopGateway();
  for (const Probe& probe : probes)
    if (!probe.check.empty()) judge(probe, replay.checkKeysNotStored());

  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
          .count();
  MESSAGE(probes.size() << " probes, " << passed << " passed, " << open << " open, " << failed << " failed ("
                        << ms << " ms)");
}

}  // namespace flowguard::test
