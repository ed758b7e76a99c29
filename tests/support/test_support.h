// Support for integration tests that start real FlowGuard processes and talk to them over
// loopback. Everything here is blocking and single-threaded (the test thread), and every
// wait has a deadline: a hung peer fails the test instead of hanging it.
//
// Failures throw std::runtime_error with a message saying what was expected (and, for
// processes, the tail of the child's log), which doctest reports as a failed test case.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flowguard::core {
class Http1Parser;
}

namespace flowguard::test {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// A port on 127.0.0.1 that is free and reserved for this test process: below the kernel's
// ephemeral range (so no outgoing connection takes it) and claimed with a lock file that
// parallel test processes respect. The caller binds it (or starts a child that does).
uint16_t freeTcpPort();

// Whether the precise timing bounds apply (FLOWGUARD_PRECISE_TIMING=1, as bench/timing-bounds.sh
// sets on a quiet machine); otherwise tests check durations only against sanity bounds that a
// loaded CI machine keeps.
inline bool preciseTiming() {
  const char* precise = std::getenv("FLOWGUARD_PRECISE_TIMING");
  return precise != nullptr && *precise == '1';
}

// Lower-case hex of any byte sequence (a std::string, a digest array), written here rather than
// taken from the product, so tests that check digests do not share the code they check.
template <typename Bytes>
std::string toHex(const Bytes& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

// A port on 127.0.0.1 where connections are refused for as long as this object lives: a socket
// holds it bound (without SO_REUSEADDR, so nothing else can bind it) and never listens. For
// tests about an upstream or a Redis that is not there: a port merely left closed could be
// taken by anyone meanwhile.
class ClosedPort {
 public:
  ClosedPort();
  ~ClosedPort();
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A listening socket on 127.0.0.1 at a port the kernel picks (SO_REUSEADDR, close-on-exec),
// for servers a test writes itself. Returns the fd and sets `port`; throws when it cannot.
int listenOnLoopback(int backlog, uint16_t& port);

// Path of a built binary under $FLOWGUARD_BIN_DIR (set by ctest): "flowguard-backend" ->
// <bin>/backend/flowguard-backend, "flowguard" -> <bin>/gateway/flowguard,
// "flowguard-loadgen" -> <bin>/loadgen/flowguard-loadgen, anything else -> <bin>/<name>.
// Throws when the variable is unset.
std::string binaryPath(std::string_view name);

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string file(std::string_view name) const;

 private:
  std::string path_;
};

// Sets environment variables for the processes started while it lives, then restores them.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, std::string>& values) {
    for (const auto& [name, value] : values) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, old] : saved_) {
      if (old) {
        ::setenv(name.c_str(), old->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Writes all of `data` to a socket (retrying on EINTR); stops quietly when the peer is gone.
void sendAll(int fd, std::string_view data);

// A blocking connection to 127.0.0.1:port whose receive buffer is only `receiveBuffer` bytes
// (the kernel doubles it): what the test does not read stays in the server's write queue.
int smallWindowConnect(uint16_t port, int receiveBuffer = 16 * 1024);

// Closes a raw socket on every way out of a test, a failed REQUIRE included.
struct ClosedAtExit {
  int fd;
  ~ClosedAtExit() { ::close(fd); }
};

void writeFile(const std::string& path, std::string_view content);
std::string readFile(const std::string& path);  // "" when missing

// A child process with stdout and stderr in one log file, in a process group of its own, and
// killed by the kernel if this process dies first. Destruction stops it (and its group).
class Process {
 public:
  // argv[0] must be a path (no PATH search). logDir empty: a private temp dir.
  explicit Process(std::vector<std::string> argv, std::string logDir = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // The moved-from object no longer owns the child (its destructor does nothing).
  Process(Process&& other) noexcept;

  pid_t pid() const { return pid_; }
  const std::string& logPath() const { return logPath_; }
  std::string logText() const;
  // The last `lines` lines of the log, for failure messages.
  std::string logTail(size_t lines = 30) const;

  // Connects to 127.0.0.1:port until a connection is accepted. Throws (with the log tail)
  // when the process exits first or the deadline passes.
  void waitForPort(uint16_t port, Millis timeout = 10s);
  // Waits until the log contains `needle`; returns the log text. Throws like waitForPort.
  std::string waitForLog(std::string_view needle, Millis timeout = 10s);

  // True while the child has not exited (reaps it when it has).
  bool running();
  // The exit status once exited: the exit code, or 128 + signal number.
  std::optional<int> exitStatus() const { return exitStatus_; }
  // Waits up to timeout for the child to exit by itself; returns its status if it did.
  std::optional<int> waitExit(Millis timeout);
  // SIGTERM to the child's process group, then SIGKILL after killAfter; whatever is left in
  // the group once the child has exited is killed too. Returns the exit status. Idempotent.
  int stop(Millis killAfter = 5s);
  // Sends a signal without waiting.
  void signal(int sig);

 private:
  bool reap(bool block);

  std::unique_ptr<TempDir> ownLogDir_;
  std::string logPath_;
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  std::optional<int> exitStatus_;
  bool groupKilled_ = false;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keepAlive = true;  // as the parser judged the response (Connection, version)

  // First value of the header (case-insensitive name), "" when absent.
  std::string header(std::string_view name) const;
  bool hasHeader(std::string_view name) const;
};

// A blocking HTTP/1.1 client on one loopback connection. Requests are sent raw (the test
// decides every byte); responses are parsed with FlowGuard's own codec in Response mode.
// Bytes after one response stay buffered for the next, so pipelined answers can be read
// one by one.
class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Throws when the connection is refused or not established within timeout.
  void connect(uint16_t port, Millis timeout = 5s);
  void sendRaw(std::string_view data, Millis timeout = 10s);
  // Reads one final response (1xx interim responses are skipped). Throws on timeout, on a
  // malformed response, or when the peer closes mid-response. keepBody false counts body
  // bytes in bodyBytes() without storing them (for very large bodies).
  HttpResponse readResponse(Millis timeout = 10s, bool headRequest = false, bool keepBody = true);
  // Body bytes of the last response read.
  uint64_t bodyBytes() const { return bodyBytes_; }
  // True when the peer closes (EOF or reset) within timeout. Bytes received meanwhile are
  // kept for readResponse.
  bool peerClosed(Millis timeout = 5s);
  void close();
  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }

 private:
  // Reads what is available within the deadline into buffer_; returns bytes read, 0 on EOF.
  // Throws on timeout.
  size_t readSome(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  bool eof_ = false;
  std::string buffer_;  // received, not yet parsed
  std::unique_ptr<core::Http1Parser> parser_;
  uint64_t bodyBytes_ = 0;
};

// One request on a fresh connection with "Connection: close". `headers` are extra fields.
HttpResponse httpGet(uint16_t port, std::string_view path,
                     const std::vector<std::pair<std::string, std::string>>& headers = {},
                     Millis timeout = 10s);

// Starts argvFor(port) on a port from freeTcpPort() and waits until the child logs
// `listeningLine` (a connect alone could reach a stranger on the port). When a process outside
// the suite took the port first and the child says "address already in use", tries again on
// another port (three attempts). Sets `port` to the port in use.
template <typename ArgvFor>
Process startOnFreePort(ArgvFor argvFor, uint16_t& port, std::string_view listeningLine,
                        const std::string& logDir = {}) {
  for (int attempt = 1;; ++attempt) {
    port = freeTcpPort();
    Process process(argvFor(port), logDir);
    try {
      process.waitForPort(port);
      process.waitForLog(listeningLine);
      return process;
    } catch (const std::exception&) {
      if (attempt == 3 || process.logText().find("address already in use") == std::string::npos) throw;
    }
  }
}

// Resident set size and its peak (VmRSS, VmHWM from /proc/PID/status) in bytes; 0 when
// the process is gone.
size_t rssBytes(pid_t pid);
size_t peakRssBytes(pid_t pid);

// The TCP ports (IPv4 and IPv6) the process has listening sockets on: the LISTEN entries of
// /proc/net/tcp{,6} whose socket is one of the process's fds. Tells what the process itself
// listens on, where a connect could reach whoever took a port since.
std::set<uint16_t> listeningPorts(pid_t pid);

void sleepFor(Millis duration);

// Polls `condition` every few milliseconds until it holds or the deadline passes.
template <typename Condition>
bool waitUntil(Condition condition, Millis timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    sleepFor(Millis(10));
  }
}

}  // namespace flowguard::test
