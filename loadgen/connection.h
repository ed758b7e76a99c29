// One keep-alive client connection of a worker: connect, write a ready request, parse the
// response with FlowGuard's own HTTP/1.1 codec (Response mode), report, repeat. It never
// decides what to send or when: the Worker hands it requests. After an error, a timeout or a
// response that ends the connection it closes and connects again (after a short pause when
// the connect itself failed, so an unreachable target does not spin the CPU).
//
// Threads: the worker's loop thread only. Lifetime: owned by the Worker, which outlives every
// libuv handle of the connection (the tcp handle is allocated per attempt and freed in its
// close callback; the timer lives until shutdown()).
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>

#include "core/http1_parser.h"

namespace flowguard::loadgen {

class Worker;

struct PendingRequest {
  uint64_t dueNs = 0;    // when it should have been sent (open loop); the send time otherwise
  uint64_t sendNs = 0;   // when it was written
  int key = -1;          // index into the keys, -1 without keys
  bool measured = true;  // false during warm-up
};

class Connection {
 public:
  enum class State { Down, Connecting, Idle, Busy, Closing, Shutdown };

  Connection(Worker& worker, uv_loop_t* loop);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void connect();
  // Writes `request` (the worker already stamped it). Only in State::Idle.
  void send(const PendingRequest& request);
  // Closes every handle for good (the run is over).
  void shutdown();
  State state() const { return state_; }

 private:
  static void onConnect(uv_connect_t* req, int status);
  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void onWrite(uv_write_t* req, int status);
  static void onTimer(uv_timer_t* timer);
  static void onClosed(uv_handle_t* handle);

  void onData(const char* data, size_t len);
  void onEof();
  // The in-flight request (if any) failed: report it, then close and reconnect.
  void fail(bool timeout);
  void responseComplete();
  // Closes the socket; once closed, reconnects (after a pause when `pause`) unless the run
  // is over.
  void close(bool pause);

  Worker& worker_;
  uv_loop_t* loop_;
  State state_ = State::Down;
  uv_tcp_t* tcp_ = nullptr;
  uv_connect_t connectReq_{};
  uv_write_t writeReq_{};
  uv_timer_t timer_{};  // request timeout, or the pause before a reconnect
  bool pauseBeforeReconnect_ = false;
  std::unique_ptr<core::Http1Parser> parser_;
  PendingRequest current_;
  int status_ = 0;
  bool keepAlive_ = true;
  char readBuf_[64 * 1024];
};

}  // namespace flowguard::loadgen
