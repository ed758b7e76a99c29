#include "tests/support/postgres_server.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <filesystem>
#include <pqxx/pqxx>
#include <stdexcept>

namespace flowguard::test {

namespace {

constexpr const char* kServiceUser = "postgres";

// Numeric order of the version directories: "15" > "9.6".
bool versionLess(const std::string& a, const std::string& b) {
  auto major = [](const std::string& v) { return std::atof(v.c_str()); };
  return major(a) < major(b);
}

}  // namespace

std::string postgresBinDir() {
  const std::filesystem::path root = "/usr/lib/postgresql";
  std::error_code ec;
  std::string best;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    std::string version = entry.path().filename().string();
    if (::access((entry.path() / "bin" / "postgres").c_str(), X_OK) != 0) continue;
    if (best.empty() || versionLess(best, version)) best = version;
  }
  if (best.empty()) throw std::runtime_error("PostgreSQL is not installed (apt-get install postgresql)");
  return (root / best / "bin").string();
}

std::vector<std::string> PostgresServer::command(std::vector<std::string> argv) const {
  std::vector<std::string> out;
  if (::geteuid() == 0) {
    // Changing the user clears the parent-death signal Process sets, so set it again here.
    out = {"/usr/bin/setpriv",
           std::string("--reuid=") + kServiceUser,
           std::string("--regid=") + kServiceUser,
           "--clear-groups",
           "--pdeathsig",
           "KILL",
           "--"};
  }
  // The caller's working directory may be unreadable for the postgres user.
  std::vector<std::string> chdir = {"/usr/bin/env", "-C", dir_.path()};
  out.insert(out.end(), chdir.begin(), chdir.end());
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

PostgresServer::PostgresServer(Millis timeout) : binDir_(postgresBinDir()), dataDir_(dir_.file("data")) {
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam(kServiceUser);
    if (pw == nullptr)
      throw std::runtime_error("running as root and there is no 'postgres' user to run PostgreSQL");
    if (::chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("cannot hand " + dir_.path() + " to the postgres user");
    }
  }
  {
    Process initdb(command({binDir_ + "/initdb", "-D", dataDir_, "-U", "postgres", "--auth=trust", "-E",
                            "UTF8", "--locale=C", "--no-sync", "--no-instructions"}));
    std::optional<int> status = initdb.waitExit(timeout);
    if (status != 0) {
      std::string tail = initdb.logTail();
      throw std::runtime_error("initdb failed (" +
                               (status ? std::to_string(*status) : std::string("timeout")) + "):\n" + tail);
    }
  }
  // The free port may be taken by someone else before postgres binds it: try a few.
  for (int attempt = 0;; ++attempt) {
    port_ = freeTcpPort();
    try {
      start();
      return;
    } catch (const std::exception&) {
      stop();
      if (attempt == 2) throw;
    }
  }
}

PostgresServer::~PostgresServer() {
  stop();
}

std::string PostgresServer::urlFor(const std::string& database) const {
  return "postgres://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

void PostgresServer::start(Millis timeout) {
  if (process_) return;
  process_ = std::make_unique<Process>(
      command({binDir_ + "/postgres", "-D", dataDir_, "-p", std::to_string(port_), "-k", dir_.path(), "-c",
               "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c",
               "full_page_writes=off"}),
      dir_.path());
  // The port accepts before the server takes queries ("starting up"): wait for a session.
  std::string probe = url() + "?connect_timeout=2";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string lastError;
  for (;;) {
    try {
      pqxx::connection conn(probe);
      return;
    } catch (const std::exception& e) {
      lastError = e.what();
    }
    if (!process_->running() || std::chrono::steady_clock::now() >= deadline) {
      lastLogTail_ = process_->logTail();
      process_->stop();
      process_.reset();
      throw std::runtime_error("postgres did not accept connections on port " + std::to_string(port_) + " (" +
                               lastError + "):\n" + lastLogTail_);
    }
    sleepFor(Millis(50));
  }
}

void PostgresServer::stop() {
  if (!process_) return;
  if (process_->running()) {
    process_->signal(SIGINT);
    process_->waitExit(30s);
  }
  process_->stop();
  lastLogTail_ = process_->logTail();
  process_.reset();
}

std::string PostgresServer::createDatabase(const std::string& name) {
  bool valid = !name.empty() && std::all_of(name.begin(), name.end(),
                                            [](unsigned char c) { return std::isalnum(c) || c == '_'; });
  if (!valid) throw std::invalid_argument("database name '" + name + "' is not [A-Za-z0-9_]+");
  pqxx::connection conn(url());
  pqxx::nontransaction tx(conn);
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  return urlFor(name);
}

std::string PostgresServer::logTail(size_t lines) const {
  return process_ ? process_->logTail(lines) : lastLogTail_;
}

}  // namespace flowguard::test
