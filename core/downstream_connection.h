// One client connection on a public listener: reads bytes, parses HTTP/1.1 requests,
// runs each through the listener's filter chain and writes the response back.
//
// Requests on one connection are handled one at a time: the parser stops after each
// message, so pipelined requests wait in the read buffer and their responses go out in
// order. Phases of the current request:
//   Head     — reading the next request head (header timeout armed)
//   Filters  — head done, filters running; body bytes stay unread
//   Body     — the terminal filter asked for the body; it streams through
//   BodyDone — whole request read; waiting for the response to finish
//   Drain    — response finished early; the rest of the body is read and dropped
//
// Lifetime: created on accept, deleted in the close callback of its last handle. The
// filter chain of a finished request is parked with the dispatcher's deferred deletion,
// because a request usually finishes from inside one of its filters.
#pragma once

#include <memory>
#include <string>

#include <uv.h>

#include "core/connection_limits.h"
#include "core/deadline_timer.h"
#include "core/dispatcher.h"
#include "core/filter_chain.h"
#include "core/http1_parser.h"
#include "core/listener_settings.h"
#include "core/read_buffer.h"
#include "core/stream_writer.h"

namespace flowguard::core {

class DownstreamConnection final : public DownstreamStream, public EndOfIterationFlush {
 public:
  // Accepts one pending connection from `server`; it holds `slot` (its admission, see
  // connection_limits.h) until it is gone. On failure nothing is left behind.
  static void accept(uv_stream_t* server, Dispatcher& dispatcher, std::shared_ptr<ListenerContext> listener,
                     ConnectionSlot slot = {});

  // Close once the current exchange is over (or now, when idle).
  void drain();
  // Close now; an unfinished request is reported to its filters as a downstream reset.
  void close();

  // DownstreamStream
  uv_loop_t* loop() override { return dispatcher_.loop(); }
  void startRequestBody() override;
  void pauseRequestBody() override;
  void resumeRequestBody() override;
  void writeHeaders(ResponseHead& head, bool endStream) override;
  void writeData(std::string_view data, bool endStream) override;
  void writeTrailers(const HeaderMap& trailers) override;
  size_t queuedBytes() const override { return writer_.queuedBytes(); }
  void reset(std::string_view reason) override;

  // EndOfIterationFlush: a response head still held back goes out now, and a pipelined
  // request left waiting by finishRequest() starts.
  void flushNow() override;

 private:
  enum class Phase { Head, Filters, Body, BodyDone, Drain };
  // What the running timer stands for, which decides what its expiry does. One at a time:
  // Head only between requests (no chain), Body and Send only during one.
  enum class TimerMeaning : uint8_t {
    Other,  // idle between requests, a drain, a closing flush
    Head,   // a request head is arriving: 408 if it does not complete in time
    Body,   // the request body timeout runs
    // A response waits above the write watermark (the upstream is paused for it): the idle
    // timeout runs from the last byte the client took (nginx's send_timeout).
    Send,
  };
  // How the body of the response being written goes out; NotStarted until its head.
  enum class ResponseBody : uint8_t { NotStarted, None, Raw, Chunked };

  DownstreamConnection(Dispatcher& dispatcher, std::shared_ptr<ListenerContext> listener);
  ~DownstreamConnection() override;

  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void onTimer(void* self);
  static void onHandleClosed(uv_handle_t* handle);
  void onOneHandleClosed();

  void processInput();
  void onRequestHead();
  void onParseError();
  const HeaderMap* forwardableTrailers();
  void applyTrustPolicy();
  void onResponseComplete();
  void finishRequest();
  // Reads nothing more and closes once the queued answer is written (or at the idle timeout
  // when the client does not read it).
  void closeWhenFlushed();
  void releaseReadBuffer();
  void updateReading();
  void armTimer(std::chrono::milliseconds timeout);
  // Between requests: the header timeout when part of the next head is buffered, else idle.
  void armBetweenRequestsTimer();
  void onWriteEvent(int status);
  void sendErrorAndClose(int status, std::string_view reason);
  bool consumingInput() const;
  bool outputBacklogged() const;
  static void newRequestId(std::string& out);

  Dispatcher& dispatcher_;
  std::shared_ptr<ListenerContext> listener_;  // settings and chain of the listener that accepted us
  ConnectionSlot slot_;                        // released when the connection is deleted
  const ListenerSettings& settings() const { return listener_->settings; }
  uv_tcp_t tcp_;
  DeadlineTimer timer_;  // header timeout, then idle timeout
  int openHandles_ = 0;
  StreamWriter writer_;
  Http1Parser parser_;
  std::string clientIp_;

  ReadBuffer in_;
  bool reading_ = false;
  bool closing_ = false;
  bool draining_ = false;  // shutdown: close after the current exchange
  bool closeAfterResponse_ = false;
  // The client half-closed (EOF) after a complete request: what it sent is answered, then the
  // connection closes. Nothing more is read.
  bool peerFinished_ = false;
  TimerMeaning timerMeaning_ = TimerMeaning::Other;
  void setTimerMeaning(TimerMeaning meaning);  // checks the invariant above in debug builds
  // Between requests, reading stops while more than writeHighWatermark response bytes wait
  // for a client that does not read them (pipelining without reading would otherwise grow
  // the write queue without bound); it resumes when they are gone, or the idle timeout closes.
  bool heldForOutput_ = false;
  bool processing_ = false;  // inside processInput()

  // The current request. head_ and info_ are reused from request to request (their
  // strings and vectors keep their capacity); the chain is made per request.
  RequestHead head_;
  StreamInfo info_;
  HeaderMap trailers_;  // the request trailers that may be forwarded (forward_trailers)
  std::unique_ptr<FilterChain> chain_;
  Phase phase_ = Phase::Head;
  bool bodyPaused_ = false;
  bool bodyDone_ = false;  // the whole request body has been read
  bool continueSent_ = false;
  uint64_t drained_ = 0;

  ResponseBody responseBody_ = ResponseBody::NotStarted;
  bool aboveWatermark_ = false;
  std::string headOut_;    // reused to encode heads
  std::string chunkLine_;  // reused to encode chunk-size lines
  // A response head is held until the first body bytes (or the end of this loop
  // iteration) so both leave in one write: one syscall per small response.
  bool headPending_ = false;
  bool startNextPending_ = false;  // a pipelined request starts at the end of this iteration
};

}  // namespace flowguard::core
