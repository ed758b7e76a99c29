// A real PostgreSQL server for integration tests: a fresh cluster (initdb, trust auth) in a
// private temp dir, listening on 127.0.0.1 at a free port with its unix socket inside the
// temp dir, fsync off. stop() and start() again keep the port and the data, so a test can
// simulate an outage and a recovery. Destruction stops the server and removes its files.
//
// initdb and postgres refuse to run as root: when the test runs as root, both run as the
// `postgres` system user (setpriv), and the temp dir is handed to that user ($TMPDIR must
// then be reachable for that user; /tmp is).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tests/support/test_support.h"

namespace flowguard::test {

// The newest /usr/lib/postgresql/<version>/bin; throws when PostgreSQL is not installed.
std::string postgresBinDir();

class PostgresServer {
 public:
  // Runs initdb and starts the server; throws (with the log tail) when it does not come up.
  explicit PostgresServer(Millis timeout = 120s);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  uint16_t port() const { return port_; }
  bool running() const { return process_ != nullptr; }
  // postgres://postgres@127.0.0.1:PORT/postgres (the superuser, trust auth, no password).
  std::string url() const { return urlFor("postgres"); }
  std::string urlFor(const std::string& database) const;
  // Creates an empty database (name: letters, digits, '_') and returns its URL.
  std::string createDatabase(const std::string& name);

  // Starts again on the same port and data (no-op while running); waits until it accepts
  // connections, throws when it does not within timeout.
  void start(Millis timeout = 60s);
  // Fast shutdown (SIGINT: clients are disconnected), SIGKILL if it takes too long.
  void stop();
  std::string logTail(size_t lines = 30) const;

 private:
  // argv run as the postgres user when we are root, with the temp dir as working dir.
  std::vector<std::string> command(std::vector<std::string> argv) const;

  TempDir dir_;
  std::string binDir_;
  std::string dataDir_;
  uint16_t port_ = 0;
  std::unique_ptr<Process> process_;
  std::string lastLogTail_;
};

}  // namespace flowguard::test
