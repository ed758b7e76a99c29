// A real redis-server for integration tests: its own free loopback port, no persistence,
// working files in a private temp dir. stop() and start() again keep the port, so a test
// can simulate an outage and a recovery. Destruction stops the server.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace flowguard::test {

// Full path of redis-server found on $PATH; throws when it is not installed.
std::string redisServerPath();

class RedisServer {
 public:
  // Starts the server and waits until it accepts connections. `extraArgs` are appended to
  // the command line as given, e.g. {"--requirepass", "secret"}.
  explicit RedisServer(std::vector<std::string> extraArgs = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  bool running() const { return process_ != nullptr; }
  // Starts again on the same port (no-op while running); throws when it does not come up.
  void start(Millis timeout = 10s);
  // Stops the server (SIGTERM, then SIGKILL); its clients see the connection close.
  void stop();
  // The server's log, for failure messages.
  std::string logTail(size_t lines = 30) const;

 private:
  TempDir dir_;
  std::vector<std::string> extraArgs_;
  uint16_t port_ = 0;
  std::unique_ptr<Process> process_;
  std::string lastLogTail_;
};

}  // namespace flowguard::test
