#include "tests/support/redis_server.h"

#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string_view>

namespace flowguard::test {

std::string redisServerPath() {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (;;) {
    size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    if (!dir.empty()) {
      std::string candidate = dir + "/redis-server";
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  throw std::runtime_error("redis-server is not installed (apt-get install redis-server)");
}

RedisServer::RedisServer(std::vector<std::string> extraArgs) : extraArgs_(std::move(extraArgs)) {
  // The free port may be taken by someone else before redis binds it: try a few.
  for (int attempt = 0;; ++attempt) {
    port_ = freeTcpPort();
    try {
      start();
      return;
    } catch (const std::exception&) {
      process_.reset();
      if (attempt == 2) throw;
    }
  }
}

RedisServer::~RedisServer() { stop(); }

void RedisServer::start(Millis timeout) {
  if (process_) return;
  std::vector<std::string> argv = {redisServerPath(), "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", dir_.path(),
                                   "--daemonize", "no"};
  argv.insert(argv.end(), extraArgs_.begin(), extraArgs_.end());
  process_ = std::make_unique<Process>(std::move(argv), dir_.path());
  try {
    process_->waitForPort(port_, timeout);
  } catch (...) {
    lastLogTail_ = process_->logTail();
    process_.reset();
    throw;
  }
}

void RedisServer::stop() {
  if (!process_) return;
  process_->stop();
  lastLogTail_ = process_->logTail();
  process_.reset();
}

std::string RedisServer::logTail(size_t lines) const { return process_ ? process_->logTail(lines) : lastLogTail_; }

}  // namespace flowguard::test
