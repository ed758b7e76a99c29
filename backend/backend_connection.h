// One accepted client connection of flowguard-backend.
//
// Ownership: BackendServer owns the Connection (heap, unique_ptr). The Connection owns its
// uv_tcp_t and uv_timer_t as members; close() starts uv_close on both, and the last close
// callback asks the server to destroy the object. Nothing deletes a Connection elsewhere,
// so no libuv or parser callback ever runs on a freed object.
//
// Flow control: requests are handled strictly one at a time, so pipelined requests are
// answered in order. While a response is still being produced (a /delay timer, a /bytes
// stream) or the write queue is above kHighWater, the connection stops parsing and stops
// reading; unparsed bytes wait in pending_. Reading resumes below kLowWater. Memory per
// connection is therefore bounded by one read buffer plus the write-queue high water,
// whatever the body sizes.
//
// Injected faults (see faults.h) are decided when a request head arrives. Latency blocks the
// connection on timer_ before anything is answered (an /echo starts echoing only after it).
// A failure is an ordinary JSON response. A hang reads and drops all further input and never
// answers, until the client closes. A reset queues a head and half of its body, waits until
// libuv has handed that to the kernel, and closes with a TCP RST.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "backend/faults.h"
#include "backend/routes.h"
#include "core/http1_parser.h"
#include "core/http_message.h"

namespace flowguard::backend {

class BackendServer;

class Connection {
 public:
  static constexpr size_t kReadBufferSize = 64 * 1024;
  static constexpr size_t kBytesPiece = 64 * 1024;
  static constexpr size_t kHighWater = 256 * 1024;
  static constexpr size_t kLowWater = 64 * 1024;
  static constexpr uint64_t kLingerMs = 1000;

  Connection(BackendServer& server, uint64_t id);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  // After uv_accept succeeded on stream(): starts reading. Closes itself on failure.
  void start();
  // Abortive close of both handles (pending writes are cancelled). Idempotent.
  void close();
  // Like close(), but the peer gets a TCP RST (SO_LINGER 0) instead of a FIN.
  void closeWithReset();

 private:
  struct WriteReq;
  enum class EchoMode { Off, Identity, Chunked, UntilClose };

  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void onWrite(uv_write_t* req, int status);
  static void onShutdown(uv_shutdown_t* req, int status);
  static void onTimer(uv_timer_t* timer);
  static void onHandleClosed(uv_handle_t* handle);

  void onData(const char* data, size_t len);
  void onEof();
  // Feeds bytes to the parser until it needs more or the connection is blocked; returns
  // how many bytes were used.
  size_t parseInput(const char* data, size_t len);
  void drainPending();
  // After an asynchronous step (write done, timer): continue with buffered or new input.
  void resume();
  void updateReading();
  bool blocked() const;

  void onHead();
  void onBody(std::string_view data);
  void onMessageComplete();
  void onParseError();

  void startEcho();
  void startBytes();
  void pumpBytes();
  void sendJson(int status, const std::string& body, std::string_view allow = {});
  std::string statsJson();
  void handleFaultRequest();
  // Carries out fault_ for a request that has been read completely.
  void injectFault();
  void startHang();
  void startReset();
  void addConnectionHeader(core::ResponseHead& head) const;
  std::string requestInfoJson() const;
  // The current response is fully queued: close when asked to, else take the next request.
  void finishResponse();
  // Flushes queued writes, half-closes, then lingers briefly before closing.
  void beginShutdown();

  void queueWrite(std::string owned);
  void queueWrite(std::string prefix, const char* external, size_t externalLen,
                  std::string_view suffix);
  void submit(std::unique_ptr<WriteReq> req);

  BackendServer& server_;
  uint64_t id_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_shutdown_t shutdownReq_{};
  int openHandles_ = 0;
  core::Http1Parser parser_;
  std::unique_ptr<char[]> readBuffer_;
  std::string pending_;  // received but not yet parsed (only while blocked)

  bool closing_ = false;
  bool shuttingDown_ = false;
  bool lingering_ = false;
  bool hanging_ = false;    // a hang fault: input is dropped, nothing is ever answered
  bool resetting_ = false;  // a reset fault: RST once the partial response is written
  bool latencyWait_ = false;  // timer_ runs an injected latency
  bool reading_ = false;
  bool readEof_ = false;
  bool inParse_ = false;
  size_t queuedBytes_ = 0;

  // The request being handled.
  uint64_t requestsOnConnection_ = 0;
  Route route_;
  int requestMinor_ = 1;
  bool keepAlive_ = true;
  bool headRequest_ = false;
  bool responseStarted_ = false;
  bool responseActive_ = false;  // a response still being produced asynchronously
  uint64_t bodyBytes_ = 0;
  EchoMode echoMode_ = EchoMode::Off;
  std::string delayedResponse_;
  FaultDecision fault_;
  std::string faultBody_;  // POST /_fault body, up to kMaxFaultBodyBytes
  bool faultBodyTooLarge_ = false;
  bool streamingBytes_ = false;
  bool bytesChunked_ = false;
  uint64_t bytesRemaining_ = 0;
  uint64_t bytesOffset_ = 0;
};

}  // namespace flowguard::backend
