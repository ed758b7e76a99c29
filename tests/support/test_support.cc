#include "tests/support/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "core/http1_parser.h"
#include "core/http_message.h"

extern char** environ;

namespace flowguard::test {

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what);
}

std::string errnoText(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Non-blocking connect with a deadline; returns the fd or -1 (errno set).
int connectLoopback(uint16_t port, Millis timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in addr = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) {
      int saved = errno;
      ::close(fd);
      errno = saved;
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
    int err = 0;
    socklen_t len = sizeof(err);
    if (rc <= 0) {
      err = rc == 0 ? ETIMEDOUT : errno;
    } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      err = errno;
    }
    if (err != 0) {
      ::close(fd);
      errno = err;
      return -1;
    }
  }
  return fd;
}

size_t procStatusKb(pid_t pid, std::string_view field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size(), field) == 0 && line.size() > field.size() &&
        line[field.size()] == ':') {
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return 0;
}

}  // namespace

void sleepFor(Millis duration) {
  std::this_thread::sleep_for(duration);
}

int listenOnLoopback(int backlog, uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(errnoText("socket"));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = loopback(0);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, backlog) != 0) {
    std::string error = errnoText("bind/listen on 127.0.0.1");
    ::close(fd);
    fail(error);
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

ClosedPort::ClosedPort() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) fail(errnoText("socket"));
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof(addr);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::string error = errnoText("bind on 127.0.0.1");
    ::close(fd_);
    fail(error);
  }
  port_ = ntohs(addr.sin_port);
}

ClosedPort::~ClosedPort() {
  ::close(fd_);
}

namespace {

// The lowest port the kernel hands out as a source port for outgoing connections.
uint16_t ephemeralPortFloor() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned low = 32768;
  in >> low;
  return static_cast<uint16_t>(low);
}

// Claims `port` for this test process until it exits: a unix socket bound to an abstract name
// derived from the port, which every test process (in any build tree) tries to bind before
// taking the port. An abstract name belongs to the socket, not the file system: it vanishes
// when the process exits, however it exits, so a crashed test leaves nothing behind.
bool claimPortForThisProcess(uint16_t port) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string name = "flowguard-test-port-" + std::to_string(port);
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] == '\0': abstract
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    ::close(fd);
    return false;
  }
  return true;  // the socket stays open (and the name claimed) for the life of the process
}

bool bindable(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(errnoText("socket"));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = loopback(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

// Why not bind to port 0: the kernel picks from the ephemeral range, which it also uses for the
// source ports of outgoing connections, and two test processes running in parallel can be handed
// the same port between its close and the child's bind. Both happened in CI ("address already in
// use" in a backend while another process answered on its port). So ports come from below the
// ephemeral range, and each is claimed with a lock that parallel test processes respect. A
// process that is not a test can still take a port between the check and the child's bind:
// the fixtures that start servers retry with another port when the child cannot bind.
uint16_t freeTcpPort() {
  constexpr uint16_t kLowest = 10000;
  const uint16_t ceiling = std::max<uint16_t>(ephemeralPortFloor(), kLowest + 1000);
  const unsigned span = ceiling - kLowest;
  static unsigned next = static_cast<unsigned>(::getpid()) * 7919u;  // spread processes apart
  for (unsigned tries = 0; tries < span; ++tries) {
    auto port = static_cast<uint16_t>(kLowest + (next++ % span));
    if (bindable(port) && claimPortForThisProcess(port)) return port;
  }
  fail("no free port on 127.0.0.1 below " + std::to_string(ceiling));
}

std::string binaryPath(std::string_view name) {
  const char* dir = std::getenv("FLOWGUARD_BIN_DIR");
  if (dir == nullptr || *dir == '\0') fail("FLOWGUARD_BIN_DIR is not set (run the test via ctest)");
  std::string base(dir);
  if (name == "flowguard-backend") return base + "/backend/flowguard-backend";
  if (name == "flowguard") return base + "/gateway/flowguard";
  if (name == "flowguard-loadgen") return base + "/loadgen/flowguard-loadgen";
  return base + "/" + std::string(name);
}

// ---- TempDir --------------------------------------------------------------------------

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  // The test process's pid is in the name, so the suite's last test (tests/check_leftovers)
  // can tell a directory left behind by a test that died from one a running test still uses.
  std::string pattern =
      fmt::format("{}/flowguard-test-{}-XXXXXX", tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", ::getpid());
  if (::mkdtemp(pattern.data()) == nullptr) fail(errnoText("mkdtemp " + pattern));
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::file(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

int smallWindowConnect(uint16_t port, int receiveBuffer) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(errnoText("socket"));
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receiveBuffer,
               sizeof(receiveBuffer));  // before connect: the window
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const std::string what = errnoText("connect to port " + std::to_string(port));
    ::close(fd);
    fail(what);
  }
  return fd;
}

void sendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void writeFile(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) fail("cannot write " + path);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- Process --------------------------------------------------------------------------

namespace {

// util-linux's setpriv, which every Debian system has (util-linux is essential).
constexpr const char* kSetpriv = "/usr/bin/setpriv";

// The environment for a child: ours, plus FLOWGUARD_SPAWNED_BY=<our pid>. With it, the suite's
// last test (tests/check_leftovers) finds every process a test started (their children inherit
// it) and tells the ones whose test is gone, which leaked, from those of a test still running.
std::vector<std::string> childEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).starts_with("FLOWGUARD_SPAWNED_BY=")) continue;
    env.emplace_back(*e);
  }
  env.push_back(fmt::format("FLOWGUARD_SPAWNED_BY={}", ::getpid()));
  return env;
}

}  // namespace

// Why a process group and a parent-death signal: a test that fails, throws or is killed by
// ctest's timeout must not leave servers running. The group lets stop() reach the children a
// process starts itself (Chromium's renderers, PostgreSQL's backends); the parent-death signal
// (set by setpriv just before it executes the program) kills the child when this process dies
// without running any destructor. The signal is tied to the thread that starts the child, so
// start processes from the test's main thread (or one that outlives them).
Process::Process(std::vector<std::string> argv, std::string logDir) : argv_(std::move(argv)) {
  if (argv_.empty()) fail("Process: empty argv");
  if (::access(argv_[0].c_str(), X_OK) != 0) fail(errnoText("cannot start " + argv_[0]));
  if (logDir.empty()) {
    ownLogDir_ = std::make_unique<TempDir>();
    logDir = ownLogDir_->path();
  }
  std::string base = std::filesystem::path(argv_[0]).filename().string();
  logPath_ = logDir + "/" + base + "-" + std::to_string(::getpid()) + "-" +
             std::to_string(Clock::now().time_since_epoch().count()) + ".log";

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, logPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);  // a group of its own, led by the child

  std::vector<std::string> command;
  if (::access(kSetpriv, X_OK) == 0) command = {kSetpriv, "--pdeathsig", "KILL", "--"};
  command.insert(command.end(), argv_.begin(), argv_.end());
  std::vector<char*> args;
  for (std::string& a : command) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> environment = childEnvironment();
  std::vector<char*> envp;
  for (std::string& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  int rc = ::posix_spawn(&pid_, command[0].c_str(), &actions, &attributes, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    pid_ = -1;
    fail("cannot start " + argv_[0] + ": " + std::strerror(rc));
  }
}

Process::Process(Process&& other) noexcept
    : ownLogDir_(std::move(other.ownLogDir_)),
      logPath_(std::move(other.logPath_)),
      argv_(std::move(other.argv_)),
      pid_(std::exchange(other.pid_, -1)),
      exitStatus_(std::exchange(other.exitStatus_, std::nullopt)),
      groupKilled_(other.groupKilled_) {}

Process::~Process() {
  try {
    stop();
  } catch (...) {
    // A destructor must not throw; the child is killed in stop() before anything can throw.
  }
}

std::string Process::logText() const {
  return readFile(logPath_);
}

std::string Process::logTail(size_t lines) const {
  std::string text = logText();
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos > 0; ++n) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      pos = 0;
      break;
    }
    pos = nl;
  }
  return text.substr(pos);
}

bool Process::reap(bool block) {
  if (pid_ < 0 || exitStatus_) return true;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  if (r < 0) {
    exitStatus_ = -1;  // not our child any more; nothing left to wait for
    return true;
  }
  exitStatus_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

bool Process::running() {
  return !reap(false);
}

std::optional<int> Process::waitExit(Millis timeout) {
  waitUntil([&] { return reap(false); }, timeout);
  return exitStatus_;
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

int Process::stop(Millis killAfter) {
  if (pid_ < 0) return -1;
  if (running()) {
    ::kill(-pid_, SIGTERM);  // the whole group: a browser's or a database's children too
    if (!waitExit(killAfter)) {
      ::kill(-pid_, SIGKILL);
      reap(true);
    }
  }
  // Whatever the leader left behind in its group goes with it. The group id cannot be handed
  // to a new process while a member is alive, and with no member left this finds nothing
  // (done once: long after, the number could name a new group).
  if (!groupKilled_) ::kill(-pid_, SIGKILL);
  groupKilled_ = true;
  return *exitStatus_;
}

void Process::waitForPort(uint16_t port, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!running()) {
      fail(argv_[0] + " exited with status " + std::to_string(*exitStatus_) + " before listening on port " +
           std::to_string(port) + "; log tail:\n" + logTail());
    }
    int fd = connectLoopback(port, Millis(200));
    if (fd >= 0) {
      ::close(fd);
      return;
    }
    if (Clock::now() >= deadline) {
      fail(argv_[0] + " is not accepting on port " + std::to_string(port) + " after " +
           std::to_string(timeout.count()) + " ms; log tail:\n" + logTail());
    }
    sleepFor(Millis(20));
  }
}

std::string Process::waitForLog(std::string_view needle, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    std::string text = logText();
    if (text.find(needle) != std::string::npos) return text;
    if (!running()) {
      fail(argv_[0] + " exited with status " + std::to_string(*exitStatus_) + " before logging '" +
           std::string(needle) + "'; log tail:\n" + logTail());
    }
    if (Clock::now() >= deadline) {
      fail(argv_[0] + " did not log '" + std::string(needle) + "' within " + std::to_string(timeout.count()) +
           " ms; log tail:\n" + logTail());
    }
    sleepFor(Millis(20));
  }
}

// ---- HTTP client ----------------------------------------------------------------------

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (core::equalsIgnoreCase(n, name)) return v;
  }
  return {};
}

bool HttpResponse::hasHeader(std::string_view name) const {
  for (const auto& h : headers) {
    if (core::equalsIgnoreCase(h.first, name)) return true;
  }
  return false;
}

HttpClient::HttpClient() = default;

HttpClient::~HttpClient() {
  close();
}

void HttpClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  eof_ = false;
  buffer_.clear();
  parser_.reset();
}

void HttpClient::connect(uint16_t port, Millis timeout) {
  close();
  fd_ = connectLoopback(port, timeout);
  if (fd_ < 0) fail(errnoText("connect 127.0.0.1:" + std::to_string(port)));
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  parser_ =
      std::make_unique<core::Http1Parser>(core::Http1Parser::Kind::Response, core::Http1Parser::Limits{});
}

void HttpClient::sendRaw(std::string_view data, Millis timeout) {
  if (fd_ < 0) fail("sendRaw: not connected");
  auto deadline = Clock::now() + timeout;
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, remainingMs(deadline)) == 0) fail("sendRaw: timed out (peer not reading)");
      continue;
    }
    fail(errnoText("sendRaw"));
  }
}

size_t HttpClient::readSome(Clock::time_point deadline) {
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      buffer_.append(buf, static_cast<size_t>(n));
      return static_cast<size_t>(n);
    }
    if (n == 0) {
      eof_ = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) {
      eof_ = true;
      return 0;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) fail(errnoText("recv"));
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, remainingMs(deadline));
    if (rc == 0) fail("readResponse: timed out waiting for data");
  }
}

HttpResponse HttpClient::readResponse(Millis timeout, bool headRequest, bool keepBody) {
  if (fd_ < 0 || !parser_) fail("readResponse: not connected");
  auto deadline = Clock::now() + timeout;
  HttpResponse response;
  bodyBytes_ = 0;
  parser_->setRequestWasHead(headRequest);
  size_t offset = 0;
  for (;;) {
    core::Http1Parser::Result result{};
    if (offset < buffer_.size() || !eof_) {
      result = parser_->parse(buffer_.data() + offset, buffer_.size() - offset);
    } else {
      result = parser_->finish();
      if (result.event == core::Http1Parser::Event::NeedMore) {
        fail("readResponse: connection closed before a response arrived");
      }
    }
    offset += result.consumed;
    switch (result.event) {
      case core::Http1Parser::Event::NeedMore:
        buffer_.erase(0, offset);
        offset = 0;
        if (eof_) continue;  // let finish() judge the truncated message
        readSome(deadline);
        break;
      case core::Http1Parser::Event::HeadComplete: {
        const core::ResponseHead& head = parser_->response();
        response.status = head.status;
        response.keepAlive = head.keepAlive;
        response.headers.clear();
        for (const core::Header& h : head.headers) response.headers.emplace_back(h.name, h.value);
        break;
      }
      case core::Http1Parser::Event::Body:
        bodyBytes_ += parser_->body().size();
        if (keepBody) response.body.append(parser_->body());
        break;
      case core::Http1Parser::Event::MessageComplete:
        buffer_.erase(0, offset);
        offset = 0;
        // Interim responses (100 Continue) precede the real one; 101 ends HTTP/1.1.
        if (response.status >= 100 && response.status < 200 && response.status != 101) {
          response = HttpResponse{};
          bodyBytes_ = 0;
          parser_->setRequestWasHead(headRequest);
          break;
        }
        return response;
      case core::Http1Parser::Event::Error:
        fail("readResponse: malformed response (" + std::to_string(parser_->errorStatus()) + " " +
             parser_->errorReason() + ")");
    }
  }
}

bool HttpClient::peerClosed(Millis timeout) {
  if (fd_ < 0) return true;
  if (eof_) return true;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, remainingMs(deadline));
    if (rc == 0) return false;
    if (rc < 0 && errno == EINTR) continue;
    // Readable: data (kept for readResponse), EOF or reset.
    char buf[64 * 1024];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      eof_ = true;
      return true;
    }
    if (n > 0) buffer_.append(buf, static_cast<size_t>(n));
  }
}

HttpResponse httpGet(uint16_t port, std::string_view path,
                     const std::vector<std::pair<std::string, std::string>>& headers, Millis timeout) {
  HttpClient client;
  client.connect(port, timeout);
  std::string request =
      "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  request += "Connection: close\r\n\r\n";
  client.sendRaw(request, timeout);
  return client.readResponse(timeout);
}

// ---- /proc ----------------------------------------------------------------------------

size_t rssBytes(pid_t pid) {
  return procStatusKb(pid, "VmRSS") * 1024;
}

size_t peakRssBytes(pid_t pid) {
  return procStatusKb(pid, "VmHWM") * 1024;
}

std::set<uint16_t> listeningPorts(pid_t pid) {
  // The process's sockets, by inode: its fds link to "socket:[INODE]".
  std::set<std::string> inodes;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pid), error)) {
    const std::string target = std::filesystem::read_symlink(entry.path(), error).string();
    if (target.starts_with("socket:[")) inodes.insert(target.substr(8, target.size() - 9));
  }
  // Lines: "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...",
  // with local_address as HEXADDR:HEXPORT and st 0A for LISTEN.
  std::set<uint16_t> ports;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::istringstream in(readFile(table));
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
      if (state != "0A" || !inodes.contains(inode)) continue;
      ports.insert(static_cast<uint16_t>(std::stoul(local.substr(local.rfind(':') + 1), nullptr, 16)));
    }
  }
  return ports;
}

}  // namespace flowguard::test
