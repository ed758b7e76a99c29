// One keep-alive HTTP/1.1 connection to an upstream host, owned by its HostPool.
//
// States: Connecting -> Busy (serving one request for an attached UpstreamCallbacks)
// <-> Idle (in the pool, watched for the peer closing it) -> Closed.
// One timer serves three purposes by state: connect timeout, response timeout (reset on
// every byte read, like nginx's proxy_read_timeout) and idle timeout.
// The object frees itself in its handles' close callbacks, never inside its own callbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <netinet/in.h>
#include <uv.h>

#include "core/deadline_timer.h"
#include "core/dispatcher.h"
#include "core/http1_parser.h"
#include "core/read_buffer.h"
#include "core/stream_writer.h"

namespace flowguard::upstream {

enum class UpstreamFailure {
  ConnectFailed,   // refused, unreachable: safe to try another host
  ConnectTimeout,  // no connection within connect_timeout
  Reset,           // the connection broke (EOF or error) before the response was complete
  Timeout,         // the upstream was silent longer than the response timeout
  BadResponse,     // the response could not be parsed
  Overflow,        // the pool's pending queue is full (circuit breaker)
};

std::string_view failureName(UpstreamFailure failure);

// What a request sees of its upstream connection. Called on the worker thread, from inside
// the connection's read callback: a callee may release or abort the connection.
class UpstreamCallbacks {
 public:
  virtual ~UpstreamCallbacks() = default;
  virtual void onUpstreamHeaders(core::ResponseHead& head, bool endStream) = 0;
  virtual void onUpstreamData(std::string_view data, bool endStream) = 0;
  virtual void onUpstreamTrailers(const core::HeaderMap& trailers) = 0;
  // The connection failed; it is already detached and closing.
  virtual void onUpstreamReset(UpstreamFailure failure) = 0;
  // The request write queue drained below the low watermark.
  virtual void onUpstreamWritable() = 0;
};

class HostPool;

class UpstreamConnection {
 public:
  UpstreamConnection(core::Dispatcher& dispatcher, HostPool& pool, const sockaddr_storage& address,
                     std::chrono::milliseconds connectTimeout);
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  // Begins connecting. Failure is reported to the pool (onConnectFailed), never here.
  void connect();

  // Binds a request. `headRequest`: the response has no body whatever its headers say.
  void attach(UpstreamCallbacks& callbacks, std::chrono::milliseconds responseTimeout, bool headRequest);
  // Sends request bytes (copied only if the kernel does not take them at once).
  void write(const std::string_view* pieces, size_t count);
  size_t queuedBytes() const { return writer_.queuedBytes(); }
  // Backpressure from downstream: stop / restart reading the response.
  void pauseReading();
  void resumeReading();
  // The request is done with this connection. Reusable only when the response was read
  // completely, the whole request was written, and both sides allow keep-alive.
  void release(bool requestComplete);
  // Drops the connection (the request gave up or the client went away).
  void abort();
  // The client went away after the whole request was sent: read the rest of the response
  // and throw it away, then return the connection to the pool, so one impatient client
  // does not cost a new upstream connection. Closes instead when more than a small body
  // is left or the response does not come within the response timeout.
  void discardResponse();

  bool anyResponseBytes() const { return responseBytes_ > 0; }
  bool idle() const { return state_ == State::Idle; }
  // Memory held for reading responses: none while the connection waits in the pool.
  size_t readBufferBytes() const { return in_.capacity(); }
  // Called by the pool.
  void makeIdle(std::chrono::milliseconds idleTimeout);
  void close();

 private:
  enum class State { Connecting, Busy, Idle, Closed };
  static constexpr size_t kWriteLowWatermark = 256 * 1024;

  static void onConnect(uv_connect_t* req, int status);
  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void onTimer(void* self);
  static void onClosed(uv_handle_t* handle);
  void onOneHandleClosed();
  void closeHandles();
  void processInput();
  void parseInput();
  void fail(UpstreamFailure failure);
  void startReading();
  void onWriteEvent(int status);

  HostPool* pool_;  // null once closed
  sockaddr_storage address_;
  std::chrono::milliseconds connectTimeout_;
  std::chrono::milliseconds responseTimeout_{0};
  uv_tcp_t tcp_;
  core::DeadlineTimer timer_;
  uv_connect_t connectReq_;
  int openHandles_ = 0;
  core::StreamWriter writer_;
  core::Http1Parser parser_;
  State state_ = State::Connecting;
  UpstreamCallbacks* callbacks_ = nullptr;
  uint64_t generation_ = 0;  // bumped on every attach/detach: a read loop notices hand-offs
  core::ReadBuffer in_;
  std::vector<std::string_view> bodyPieces_;  // parseInput()'s list, kept for its capacity
  bool reading_ = false;
  bool readPaused_ = false;
  bool parsing_ = false;  // inside processInput()
  bool responseDone_ = false;
  uint64_t responseBytes_ = 0;
  bool wroteAboveLowWatermark_ = false;
  bool connectError_ = false;
  bool discarding_ = false;  // reading a response nobody wants (discardResponse)
  uint64_t discarded_ = 0;   // uv_tcp_connect refused at once; reported from the timer
};

}  // namespace flowguard::upstream
