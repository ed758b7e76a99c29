#include "backend/backend_connection.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/backend_server.h"
#include "core/http1_encoder.h"

namespace flowguard::backend {

namespace {

using Json = nlohmann::ordered_json;

// Non-UTF-8 header bytes must not make the dump throw: replace them.
std::string dumpJson(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// /bytes bodies are cut from this buffer; starting at offset % 26 keeps the pattern continuous
// across pieces without copying anything per request.
const char* bytesPattern() {
  static const auto pattern = [] {
    auto buf = std::make_unique<char[]>(Connection::kBytesPiece + 26);
    for (size_t i = 0; i < Connection::kBytesPiece + 26; ++i) buf[i] = bytesPatternAt(i);
    return buf;
  }();
  return pattern.get();
}

bool requestHasBody(const core::RequestHead& head) {
  return head.framing == core::BodyFraming::Chunked ||
         (head.framing == core::BodyFraming::ContentLength && head.contentLength > 0);
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

struct Connection::WriteReq {
  uv_write_t req{};
  Connection* connection = nullptr;
  std::string owned;
  std::string suffix;
  std::array<uv_buf_t, 3> bufs{};
  unsigned nbufs = 0;
  size_t bytes = 0;
};

Connection::Connection(BackendServer& server, uint64_t id)
    : server_(server), id_(id), parser_(core::Http1Parser::Kind::Request, {}) {
  uv_tcp_init(server_.loop(), &tcp_);
  uv_timer_init(server_.loop(), &timer_);
  tcp_.data = this;
  timer_.data = this;
  shutdownReq_.data = this;
  openHandles_ = 2;
}

Connection::~Connection() = default;

void Connection::start() {
  uv_tcp_nodelay(&tcp_, 1);
  updateReading();
  if (!reading_) close();
}

void Connection::close() {
  if (closing_) return;
  closing_ = true;
  reading_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), onHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), onHandleClosed);
}

void Connection::closeWithReset() {
  if (closing_) return;
  closing_ = true;
  reading_ = false;
  // uv_tcp_close_reset sets SO_LINGER 0 and closes; it only refuses while a shutdown is
  // pending, which a reset fault never starts. Fall back to a normal close all the same.
  if (uv_tcp_close_reset(&tcp_, onHandleClosed) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), onHandleClosed);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), onHandleClosed);
}

void Connection::onHandleClosed(uv_handle_t* handle) {
  auto* self = static_cast<Connection*>(handle->data);
  if (--self->openHandles_ == 0) self->server_.connectionClosed(self);  // destroys self
}

void Connection::onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(handle->data);
  if (!self->readBuffer_) self->readBuffer_ = std::make_unique<char[]>(kReadBufferSize);
  *buf = uv_buf_init(self->readBuffer_.get(), kReadBufferSize);
}

void Connection::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(stream->data);
  if (self->closing_) return;
  if (nread > 0) {
    self->onData(buf->base, static_cast<size_t>(nread));
  } else if (nread == UV_EOF) {
    self->onEof();
  } else if (nread < 0) {
    self->close();
  }
}

void Connection::onData(const char* data, size_t len) {
  // Answered and closing, or hanging on purpose: input is discarded.
  if (lingering_ || shuttingDown_ || hanging_) return;
  if (!pending_.empty()) {
    pending_.append(data, len);
    drainPending();
    return;
  }
  inParse_ = true;
  size_t used = parseInput(data, len);
  inParse_ = false;
  if (closing_) return;
  if (used < len && !shuttingDown_ && !hanging_) pending_.assign(data + used, len - used);
  updateReading();
}

void Connection::onEof() {
  readEof_ = true;
  reading_ = false;  // libuv stops reading by itself at EOF
  if (lingering_ || hanging_) {
    close();
    return;
  }
  if (shuttingDown_) return;  // the shutdown callback closes
  if (!parser_.betweenMessages()) {
    // A truncated request (or body being echoed) cannot be answered properly.
    close();
    return;
  }
  // The client half-closed between requests: flush what is queued, then close.
  beginShutdown();
}

size_t Connection::parseInput(const char* data, size_t len) {
  size_t off = 0;
  while (!blocked()) {
    auto result = parser_.parse(data + off, len - off);
    off += result.consumed;
    switch (result.event) {
      case core::Http1Parser::Event::NeedMore:
        return off;
      case core::Http1Parser::Event::HeadComplete:
        onHead();
        break;
      case core::Http1Parser::Event::Body:
        onBody(parser_.body());
        break;
      case core::Http1Parser::Event::MessageComplete:
        onMessageComplete();
        break;
      case core::Http1Parser::Event::Error:
        onParseError();
        return len;
    }
    if (closing_) return len;
  }
  return off;
}

void Connection::drainPending() {
  inParse_ = true;
  size_t used = parseInput(pending_.data(), pending_.size());
  inParse_ = false;
  if (closing_) return;
  if (shuttingDown_ || hanging_) {
    pending_.clear();
  } else {
    pending_.erase(0, used);
  }
  updateReading();
}

void Connection::resume() {
  if (closing_ || inParse_ || blocked()) return;
  // A head parsed just before blocking (injected latency) may complete with no further
  // byte, so an unfinished message is parsed on even without pending input.
  if (!pending_.empty() || parser_.inBody()) {
    drainPending();
  } else {
    updateReading();
  }
}

bool Connection::blocked() const {
  return closing_ || shuttingDown_ || responseActive_ || queuedBytes_ >= kHighWater;
}

void Connection::updateReading() {
  if (closing_) return;
  bool want;
  if (lingering_ || hanging_) {
    want = !readEof_;  // only to notice the close
  } else {
    want = !blocked() && pending_.empty() && !readEof_;
  }
  if (want == reading_) return;
  if (want) {
    if (uv_read_start(stream(), onAlloc, onRead) != 0) {
      close();
      return;
    }
  } else {
    uv_read_stop(stream());
  }
  reading_ = want;
}

void Connection::onHead() {
  const core::RequestHead& req = parser_.request();
  ++requestsOnConnection_;
  server_.countRequest();
  route_ = matchRoute(req.method, req.path(), req.query());
  requestMinor_ = req.versionMinor;
  keepAlive_ = req.keepAlive;
  headRequest_ = req.method == "HEAD";
  responseStarted_ = false;
  bodyBytes_ = 0;
  echoMode_ = EchoMode::Off;
  faultBody_.clear();
  faultBodyTooLarge_ = false;
  fault_ = faultExempt(route_.kind) ? FaultDecision{} : server_.faults().decideRequest();
  // The body is always read (echoed or discarded), so a client waiting for permission
  // may send it.
  if (req.expectContinue && req.versionMinor >= 1 && requestHasBody(req)) {
    queueWrite("HTTP/1.1 100 Continue\r\n\r\n");
  }
  if (fault_.kind != FaultKind::Hang && fault_.delayMs > 0) {
    // Nothing is answered (not even an echo head) before the latency has passed; parsing
    // stops until then, so the parser's head stays valid for the response.
    latencyWait_ = true;
    responseActive_ = true;
    uv_update_time(server_.loop());  // see RouteKind::Delay for the + 1
    uv_timer_start(&timer_, onTimer, fault_.delayMs + 1, 0);
    return;
  }
  if (route_.kind == RouteKind::Echo && !headRequest_ && fault_.kind == FaultKind::None) {
    startEcho();
  }
}

void Connection::onBody(std::string_view data) {
  bodyBytes_ += data.size();
  if (route_.kind == RouteKind::FaultSet) {
    if (faultBody_.size() + data.size() > kMaxFaultBodyBytes) {
      faultBodyTooLarge_ = true;  // read to the end anyway, then refused with 413
    } else {
      faultBody_.append(data);
    }
    return;
  }
  switch (echoMode_) {
    case EchoMode::Off:
      return;  // counted and dropped: uploads never accumulate
    case EchoMode::Identity:
    case EchoMode::UntilClose:
      queueWrite(std::string(data));
      return;
    case EchoMode::Chunked: {
      if (data.empty()) return;
      std::string out;
      out.reserve(data.size() + 16);
      core::encodeChunkHeader(data.size(), out);
      out.append(data);
      out.append(core::kChunkEnd);
      queueWrite(std::move(out));
      return;
    }
  }
}

void Connection::onMessageComplete() {
  if (echoMode_ != EchoMode::Off) {
    if (echoMode_ == EchoMode::Chunked) {
      std::string out;
      core::encodeLastChunk(nullptr, out);
      queueWrite(std::move(out));
    }
    echoMode_ = EchoMode::Off;
    finishResponse();
    return;
  }
  if (fault_.kind != FaultKind::None) {
    injectFault();
    return;
  }
  switch (route_.kind) {
    case RouteKind::Health:
      if (server_.faults().checkHealth(uv_now(server_.loop()))) {
        sendJson(200, dumpJson(Json{{"status", "ok"}, {"name", server_.options().name}}));
      } else {
        sendJson(503, dumpJson(Json{{"status", "unhealthy"},
                                    {"name", server_.options().name},
                                    {"reason", "injected health failure"}}));
      }
      return;
    case RouteKind::Stats:
      sendJson(200, statsJson());
      return;
    case RouteKind::FaultGet:
    case RouteKind::FaultSet:
      handleFaultRequest();
      return;
    case RouteKind::MethodNotAllowed:
      sendJson(405, dumpJson(Json{{"error", route_.error}, {"status", 405}}), "GET, HEAD, POST");
      return;
    case RouteKind::Status:
      sendJson(static_cast<int>(route_.number),
               dumpJson(Json{{"backend", server_.options().name}, {"status", route_.number}}));
      return;
    case RouteKind::BadArgument:
      sendJson(400, dumpJson(Json{{"error", route_.error}, {"status", 400}}));
      return;
    case RouteKind::Bytes:
      startBytes();
      return;
    case RouteKind::Delay: {
      // Built now: the parser's head is only valid until the next message starts.
      delayedResponse_ = requestInfoJson();
      responseActive_ = true;
      // The loop clock is cached from the start of this iteration and truncated to whole
      // milliseconds; refresh it and add 1 ms so the answer is never early.
      uv_update_time(server_.loop());
      uv_timer_start(&timer_, onTimer, route_.number + 1, 0);
      return;
    }
    case RouteKind::Echo:  // HEAD /echo: describe instead of echoing
    case RouteKind::Info:
      sendJson(200, requestInfoJson());
      return;
  }
}

std::string Connection::statsJson() {
  const FaultCounters& c = server_.faults().counters();
  return dumpJson(Json{{"connections_accepted", server_.connectionsAccepted()},
                       {"connections_open", server_.connectionsOpen()},
                       {"requests", server_.requests()},
                       {"bytes_sent", server_.bytesSent()},
                       {"responses", server_.responses()},
                       {"health_checks", c.healthChecks},
                       {"health_failures", c.healthFailures},
                       {"injected_failures", c.injectedFailures},
                       {"resets", c.resets},
                       {"hangs", c.hangs}});
}

void Connection::handleFaultRequest() {
  FaultInjector& faults = server_.faults();
  if (route_.kind == RouteKind::FaultSet) {
    if (faultBodyTooLarge_) {
      std::string error = fmt::format("/_fault body is larger than {} bytes", kMaxFaultBodyBytes);
      sendJson(413, dumpJson(Json{{"error", error}, {"status", 413}}));
      return;
    }
    FaultSettings next;
    std::string error = applyFaultUpdate(faultBody_, faults.settings(), next);
    faultBody_.clear();
    if (!error.empty()) {
      sendJson(400, dumpJson(Json{{"error", error}, {"status", 400}}));
      return;
    }
    uv_update_time(server_.loop());
    faults.setSettings(next, uv_now(server_.loop()));
    // Operators watching a demo see the change next to the startup line.
    std::string active = describeFaults(next, faults.seed());
    std::printf("flowguard-backend %s faults now: %s\n", server_.options().name.c_str(),
                active.empty() ? "none" : active.c_str());
    std::fflush(stdout);
  }
  sendJson(200, dumpJson(faultSettingsJson(faults.settings(), faults.seed())));
}

void Connection::injectFault() {
  FaultCounters& counters = server_.faults().counters();
  switch (fault_.kind) {
    case FaultKind::None:
      return;
    case FaultKind::Fail:
      ++counters.injectedFailures;
      sendJson(fault_.failStatus, dumpJson(Json{{"error", "injected failure"},
                                                {"backend", server_.options().name},
                                                {"status", fault_.failStatus}}));
      return;
    case FaultKind::Hang:
      ++counters.hangs;
      startHang();
      return;
    case FaultKind::Reset:
      ++counters.resets;
      startReset();
      return;
  }
}

void Connection::startHang() {
  // responseActive_ keeps anything pipelined behind this request from being parsed; input
  // is still read (and dropped) so the client's close is noticed and ends the connection.
  hanging_ = true;
  responseActive_ = true;
  pending_.clear();
  updateReading();
}

void Connection::startReset() {
  // The head announces the full request description; only half of it is ever sent.
  std::string body = requestInfoJson();
  core::ResponseHead head;
  head.status = 200;
  head.headers.add("Content-Type", "application/json");
  head.headers.add("Content-Length", std::to_string(body.size()));
  head.framing = core::BodyFraming::ContentLength;
  head.contentLength = body.size();
  addConnectionHeader(head);
  std::string out;
  core::encodeResponseHead(head, out);
  if (!headRequest_) out.append(body, 0, body.size() / 2);
  responseStarted_ = true;
  responseActive_ = true;
  resetting_ = true;
  // onWrite resets once the kernel has the bytes: a reset with unsent data would drop them.
  queueWrite(std::move(out));
}

void Connection::onParseError() {
  if (responseStarted_) {
    // Part of a response is on the wire already; the only honest signal left is a reset.
    close();
    return;
  }
  int status = parser_.errorStatus() != 0 ? parser_.errorStatus() : 400;
  headRequest_ = false;
  requestMinor_ = 1;
  keepAlive_ = false;
  sendJson(status, dumpJson(Json{{"error", parser_.errorReason()}, {"status", status}}));
}

std::string Connection::requestInfoJson() const {
  const core::RequestHead& req = parser_.request();
  Json headers = Json::object();
  for (const core::Header& h : req.headers) {
    std::string key = lowercase(h.name);
    auto it = headers.find(key);
    if (it == headers.end()) {
      headers[key] = h.value;
    } else if (it->is_array()) {
      it->push_back(h.value);
    } else {
      *it = Json::array({*it, h.value});  // repeated field: all values, in order
    }
  }
  Json info{{"backend", server_.options().name},
            {"method", req.method},
            {"path", req.path()},
            {"query", req.query()},
            {"headers", std::move(headers)},
            {"body_bytes", bodyBytes_},
            {"connection_id", id_},
            {"request_on_connection", requestsOnConnection_}};
  if (route_.kind == RouteKind::Delay) info["delay_ms"] = route_.number;
  return dumpJson(info);
}

void Connection::addConnectionHeader(core::ResponseHead& head) const {
  if (!keepAlive_) {
    head.headers.add("Connection", "close");
  } else if (requestMinor_ == 0) {
    head.headers.add("Connection", "keep-alive");  // 1.0 closes unless told otherwise
  }
  head.keepAlive = keepAlive_;
}

void Connection::sendJson(int status, const std::string& body, std::string_view allow) {
  core::ResponseHead head;
  head.status = status;
  bool bodyless = status == 204 || status == 304;
  head.headers.add("Content-Type", "application/json");
  if (!allow.empty()) head.headers.add("Allow", allow);
  if (status != 204) head.headers.add("Content-Length", std::to_string(bodyless ? 0 : body.size()));
  head.framing = bodyless ? core::BodyFraming::None : core::BodyFraming::ContentLength;
  head.contentLength = bodyless ? 0 : body.size();
  addConnectionHeader(head);
  std::string out;
  core::encodeResponseHead(head, out);
  if (!bodyless && !headRequest_) out.append(body);
  responseStarted_ = true;
  queueWrite(std::move(out));
  finishResponse();
}

void Connection::startEcho() {
  const core::RequestHead& req = parser_.request();
  core::ResponseHead head;
  head.status = 200;
  std::string_view type = req.headers.get("Content-Type");
  head.headers.add("Content-Type", type.empty() ? "application/octet-stream" : type);
  if (req.framing == core::BodyFraming::Chunked && req.versionMinor >= 1) {
    head.headers.add("Transfer-Encoding", "chunked");
    head.framing = core::BodyFraming::Chunked;
    echoMode_ = EchoMode::Chunked;
  } else if (req.framing == core::BodyFraming::Chunked) {
    keepAlive_ = false;  // no chunked responses to HTTP/1.0: the close ends the body
    head.framing = core::BodyFraming::UntilClose;
    echoMode_ = EchoMode::UntilClose;
  } else {
    uint64_t length = req.framing == core::BodyFraming::ContentLength ? req.contentLength : 0;
    head.headers.add("Content-Length", std::to_string(length));
    head.framing = core::BodyFraming::ContentLength;
    head.contentLength = length;
    echoMode_ = EchoMode::Identity;
  }
  addConnectionHeader(head);
  std::string out;
  core::encodeResponseHead(head, out);
  responseStarted_ = true;
  queueWrite(std::move(out));
}

void Connection::startBytes() {
  core::ResponseHead head;
  head.status = 200;
  head.headers.add("Content-Type", "application/octet-stream");
  bytesChunked_ = false;
  if (route_.chunked && requestMinor_ >= 1) {
    head.headers.add("Transfer-Encoding", "chunked");
    head.framing = core::BodyFraming::Chunked;
    bytesChunked_ = true;
  } else if (route_.chunked) {
    keepAlive_ = false;
    head.framing = core::BodyFraming::UntilClose;
  } else {
    head.headers.add("Content-Length", std::to_string(route_.number));
    head.framing = core::BodyFraming::ContentLength;
    head.contentLength = route_.number;
  }
  addConnectionHeader(head);
  std::string out;
  core::encodeResponseHead(head, out);
  responseStarted_ = true;
  queueWrite(std::move(out));
  if (headRequest_) {
    finishResponse();
    return;
  }
  bytesRemaining_ = route_.number;
  bytesOffset_ = 0;
  streamingBytes_ = true;
  responseActive_ = true;
  pumpBytes();
}

void Connection::pumpBytes() {
  while (streamingBytes_ && !closing_ && queuedBytes_ < kHighWater) {
    if (bytesRemaining_ == 0) {
      if (bytesChunked_) {
        std::string out;
        core::encodeLastChunk(nullptr, out);
        queueWrite(std::move(out));
      }
      streamingBytes_ = false;
      responseActive_ = false;
      finishResponse();
      return;
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(kBytesPiece, bytesRemaining_));
    const char* piece = bytesPattern() + bytesOffset_ % 26;
    std::string prefix;
    if (bytesChunked_) core::encodeChunkHeader(n, prefix);
    queueWrite(std::move(prefix), piece, n, bytesChunked_ ? core::kChunkEnd : std::string_view());
    bytesRemaining_ -= n;
    bytesOffset_ += n;
  }
}

void Connection::finishResponse() {
  server_.countResponse();
  responseStarted_ = false;  // the next request starts from a clean slate
  if (closing_) return;
  if (!keepAlive_) beginShutdown();
}

void Connection::beginShutdown() {
  if (closing_ || shuttingDown_) return;
  shuttingDown_ = true;
  pending_.clear();
  updateReading();
  if (uv_shutdown(&shutdownReq_, stream(), onShutdown) != 0) close();
}

void Connection::onShutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<Connection*>(req->data);
  if (self->closing_) return;
  if (status < 0 || self->readEof_) {
    self->close();
    return;
  }
  // Closing with unread input makes the kernel send a reset, which can destroy the response
  // still in flight to the client. Read and drop input until the client closes, briefly.
  self->lingering_ = true;
  uv_timer_start(&self->timer_, onTimer, kLingerMs, 0);
  self->updateReading();
}

void Connection::onTimer(uv_timer_t* timer) {
  auto* self = static_cast<Connection*>(timer->data);
  if (self->closing_) return;
  if (self->lingering_) {
    self->close();
    return;
  }
  if (self->latencyWait_) {
    self->latencyWait_ = false;
    self->responseActive_ = false;
    if (self->route_.kind == RouteKind::Echo && !self->headRequest_ &&
        self->fault_.kind == FaultKind::None) {
      self->startEcho();
    }
    self->resume();  // reads the rest of the request; its completion answers
    return;
  }
  // A /delay response is due.
  self->responseActive_ = false;
  std::string body = std::move(self->delayedResponse_);
  self->delayedResponse_.clear();
  self->sendJson(200, body);
  self->resume();
}

void Connection::queueWrite(std::string owned) {
  auto req = std::make_unique<WriteReq>();
  req->owned = std::move(owned);
  req->bufs[0] = uv_buf_init(req->owned.data(), static_cast<unsigned>(req->owned.size()));
  req->nbufs = 1;
  req->bytes = req->owned.size();
  submit(std::move(req));
}

void Connection::queueWrite(std::string prefix, const char* external, size_t externalLen,
                            std::string_view suffix) {
  auto req = std::make_unique<WriteReq>();
  req->owned = std::move(prefix);
  req->suffix = std::string(suffix);
  if (!req->owned.empty()) {
    req->bufs[req->nbufs++] = uv_buf_init(req->owned.data(), static_cast<unsigned>(req->owned.size()));
  }
  // libuv only reads the buffer; the const_cast is its C API, not a write.
  req->bufs[req->nbufs++] = uv_buf_init(const_cast<char*>(external), static_cast<unsigned>(externalLen));
  if (!req->suffix.empty()) {
    req->bufs[req->nbufs++] = uv_buf_init(req->suffix.data(), static_cast<unsigned>(req->suffix.size()));
  }
  req->bytes = req->owned.size() + externalLen + req->suffix.size();
  submit(std::move(req));
}

void Connection::submit(std::unique_ptr<WriteReq> req) {
  if (closing_ || req->bytes == 0) return;
  req->connection = this;
  req->req.data = req.get();
  size_t bytes = req->bytes;
  int rc = uv_write(&req->req, stream(), req->bufs.data(), req->nbufs, onWrite);
  if (rc != 0) {
    close();  // the callback will not run: req is freed here
    return;
  }
  queuedBytes_ += bytes;
  req.release();  // owned by libuv until onWrite
}

void Connection::onWrite(uv_write_t* uvReq, int status) {
  std::unique_ptr<WriteReq> req(static_cast<WriteReq*>(uvReq->data));
  Connection* self = req->connection;
  self->queuedBytes_ -= req->bytes;
  if (status == 0) self->server_.countBytesSent(req->bytes);
  req.reset();
  if (self->closing_) return;  // cancelled by close(); the close callback follows
  if (status < 0) {
    self->close();
    return;
  }
  if (self->resetting_) {
    if (self->queuedBytes_ == 0) self->closeWithReset();
    return;
  }
  if (self->streamingBytes_) self->pumpBytes();
  if (self->queuedBytes_ < kLowWater) self->resume();
}

}  // namespace flowguard::backend
