// flowguard-backend's listener: accepts connections on one uv loop and owns every Connection.
//
// Single-threaded: every method runs on the loop thread. The server must outlive uv_run on
// its loop, because connection close callbacks report back to it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "backend/faults.h"
#include "core/uv_handle.h"

namespace flowguard::backend {

class Connection;

struct BackendOptions {
  std::string name = "backend";
  std::string host = "127.0.0.1";
  uint16_t port = 0;             // 0: the kernel picks one; port() tells which
  FaultSettings faults;          // initial fault settings (POST /_fault changes them)
  std::optional<uint64_t> seed;  // fault RNG seed; nullopt: random
};

class BackendServer {
 public:
  BackendServer(uv_loop_t* loop, BackendOptions options);
  ~BackendServer();
  BackendServer(const BackendServer&) = delete;
  BackendServer& operator=(const BackendServer&) = delete;

  // Binds and listens. Returns 0 or a negative libuv error code.
  int start();
  // The bound port (after a successful start()).
  uint16_t port() const { return port_; }
  // Closes the listener and every connection; uv_run returns once their handles are closed.
  void shutdown();

  const BackendOptions& options() const { return options_; }
  uv_loop_t* loop() const { return loop_; }
  uint64_t connectionsAccepted() const { return connectionsAccepted_; }
  // Connections not yet fully closed, the asking one included (tests watch a peer's pool drain).
  uint64_t connectionsOpen() const { return connections_.size(); }
  uint64_t requests() const { return requests_; }
  void countRequest() { ++requests_; }
  // Bytes the kernel took from every connection's writes (a write counts once it completed),
  // so a test can see an upstream held back by a slow reader further down.
  uint64_t bytesSent() const { return bytesSent_; }
  void countBytesSent(uint64_t bytes) { bytesSent_ += bytes; }
  // Responses written to the end (queued whole for the kernel), /_stats and /health ones
  // included, so a test can wait for an answer to have left instead of sleeping.
  uint64_t responses() const { return responses_; }
  void countResponse() { ++responses_; }
  // Shared by all connections: one random sequence and one set of counters per process.
  FaultInjector& faults() { return faults_; }

  // Called by a Connection from its last uv_close callback; destroys it.
  void connectionClosed(Connection* connection);

 private:
  static void onConnection(uv_stream_t* listener, int status);

  uv_loop_t* loop_;
  BackendOptions options_;
  core::UvHandle<uv_tcp_t> listener_;
  bool shuttingDown_ = false;
  uint16_t port_ = 0;
  uint64_t connectionsAccepted_ = 0;
  uint64_t requests_ = 0;
  uint64_t bytesSent_ = 0;
  uint64_t responses_ = 0;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  FaultInjector faults_;
};

}  // namespace flowguard::backend
